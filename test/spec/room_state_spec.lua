-- A room's logic state that outlives its process (docs/SERVICES.md, "Held
-- seats"): with the login service's Redis store, a logic module's
-- M.save(room) goes into the room's directory entry (at room:save(), every
-- M.save_ms, when a member's session closes, at an upgrade's drain
-- deadline) and M.restore(room, saved) gets it back when the room is made
-- again: after kill -9, after SIGTERM, on the new worker of an upgrade.
-- Also: the "rooms" list spans every worker (the directory).
local T = require "moongate.test"
local json = require "moongate.json"

-- "counter": counts "inc" messages; params.save: room:save() at each one
-- (answering "saved" or why not); params.big: a state above state_max
local COUNTER = [[
local moongate = require "moongate"
local M = { tick_rate = 20 }
function M.init(room, params)
	room.state.count = 0
	room.state.label = params.label
	room.state.save = params.save
	room.state.big = params.big
end
function M.message(room, player, data)
	if data == "inc" then
		room.state.count = room.state.count + 1
		local note = ""
		if room.state.save then
			local ok, err = room:save()
			note = ok and " saved" or (" not saved: " .. tostring(err))
		end
		room:send(player, ("count %d tick %d%s"):format(room.state.count, room.tick, note))
	elseif data == "get" then
		room:send(player, ("count %d label %s tick %d worker %d"):format(room.state.count,
			tostring(room.state.label), room.tick, moongate.worker or 0))
	end
end
function M.save(room)
	if room.state.big then return string.rep("x", 70000) end
	return { count = room.state.count, label = room.state.label, save = room.state.save }
end
function M.restore(room, saved)
	room.state.count = saved.count
	room.state.label = saved.label
	room.state.save = saved.save
	room.state.restored = true
end
return M
]]

local function start(rd, extra, room_settings)
	local rs = { modes = { counter = "counter" }, hold_ms = 600000 }
	for k, v in pairs(room_settings or {}) do rs[k] = v end
	local cfg = { redis = { url = rd.url }, settings = { room = rs } }
	for k, v in pairs(extra or {}) do cfg[k] = v end
	return T.start_server{ services = { "login", "room" }, inline = { counter = COUNTER },
		config = cfg }
end

local function login(srv, hello, transport, opts)
	local cl = T.connect(srv, transport or "udp", json.encode(hello), opts)
	return cl, cl:wait_login()
end

-- The next unread message matching a Lua pattern (its captures).
local function reply(cl, pattern, ms)
	return unpack(cl:wait(function()
		for k = cl.read + 1, #cl.messages do
			local got = { cl.messages[k]:match(pattern) }
			if got[1] then
				cl.read = k
				return got
			end
		end
	end, ms or 5000, pattern))
end

local function create(cl, params)
	assert(cl:send(json.encode({ op = "create", mode = "counter", capacity = 4, params = params })))
	return cl:wait_op("joined").room
end

describe("room state that outlives its process", function()
	after_each(function() T.stop_all() end)

	it("comes back after kill -9 as room:save left it, with its params and tick", function()
		local rd = T.start_redis()
		local srv = start(rd)
		local ann, a = login(srv, { v = 1, name = "ann" })
		local room = create(ann, { label = "dust", save = true })
		local tick
		for i = 1, 3 do
			assert(ann:send("inc"))
			local n, t, note = reply(ann, "^count (%d+) tick (%d+)(.*)$")
			assert.are.equal(tostring(i), n)
			assert.are.equal(" saved", note)
			tick = tonumber(t)
		end
		local st = json.decode(rd:cli("HGET", "moongate:room:" .. room, "state"))
		assert.are.equal(3, st.count)

		srv:restart("KILL")

		local ann2 = login(srv, { v = 1, cookie = a.cookie })
		local rj = ann2:wait_op("joined")
		assert.is_true(rj.rejoined)
		assert.are.equal(room, rj.room)
		assert(ann2:send("get"))
		local n, label, t = reply(ann2, "^count (%d+) label (%S+) tick (%d+)")
		assert.are.equal("3", n) -- (without the state: 0)
		assert.are.equal("dust", label) -- init got the room's params again
		assert.is_true(tonumber(t) >= tick, "the tick goes on from the saved one")
	end)

	it("is saved when the members' sessions close at a SIGTERM, without room:save", function()
		local rd = T.start_redis()
		local srv = start(rd)
		local ann, a = login(srv, { v = 1, name = "ann" })
		local bob, b = login(srv, { v = 1, name = "bob" }, "tcp")
		local room = create(ann, { label = "term" })
		assert(bob:send(json.encode({ op = "join", room = room })))
		bob:wait_op("joined")
		for i = 1, 2 do
			assert(ann:send("inc"))
			assert.are.equal(tostring(i), (reply(ann, "^count (%d+)")))
		end
		assert(bob:send("inc"))
		assert.are.equal("3", (reply(bob, "^count (%d+)")))

		srv:restart("TERM")

		local bob2 = login(srv, { v = 1, cookie = b.cookie })
		assert.are.equal(room, bob2:wait_op("joined").room)
		assert(bob2:send("get"))
		assert.are.equal("3", (reply(bob2, "^count (%d+)")))
		local ann2 = login(srv, { v = 1, cookie = a.cookie })
		assert.are.equal(2, #ann2:wait_op("joined").members)
		assert(ann2:send("inc"))
		assert.are.equal("4", (reply(ann2, "^count (%d+)")))
	end)

	it("is checkpointed every save_ms, and refused above state_max with the reason", function()
		local rd = T.start_redis()
		local srv = start(rd, nil, { save_ms = 100, state_max = 4096 })
		local ann = login(srv, { v = 1, name = "ann" })
		local room = create(ann, {})
		for _ = 1, 5 do assert(ann:send("inc")) end
		assert.are.equal("5", (reply(ann, "^count (5)")))
		-- no room:save: the checkpoint timer writes it
		T.wait(function()
			local s = rd:cli("HGET", "moongate:room:" .. room, "state")
			return s ~= "" and json.decode(s).count == 5
		end, 5000, ann)
		-- a state above state_max: room:save says why, the log too, and
		-- the last state saved stays
		local bob = login(srv, { v = 1, name = "bob" })
		local big = create(bob, { big = true, save = true })
		assert(bob:send("inc"))
		local why = select(3, reply(bob, "^count (%d+) tick (%d+) not saved: (.*)$"))
		assert.truthy(why:find("state_max 4096", 1, true), why)
		srv:wait_log("room " .. big .. " %(counter%): state not saved: 70002 bytes")
		assert.are.equal(5, json.decode(rd:cli("HGET", "moongate:room:" .. room, "state")).count)
	end)

	it("goes with the room to the new worker at an upgrade's drain deadline", function()
		local rd = T.start_redis()
		local srv = start(rd, { workers = 2, upgrade_drain_ms = 1500 })
		local ann = login(srv, { v = 1, name = "ann" }, "udp", { worker = 0 })
		local room = create(ann, { label = "up" })
		for _ = 1, 4 do assert(ann:send("inc")) end
		assert.are.equal("4", (reply(ann, "^count (4)")))
		srv:mark_log()
		T.kill(srv.pid, 12) -- SIGUSR2: moongate upgrade
		srv:wait_log("workers: upgrade: 2 new workers serve", 30000)
		ann:wait(function() return (ann.moves or 0) >= 1 end, 15000, "the move")
		local j = ann:wait_op("joined", 10000)
		while not j.rejoined do j = ann:wait_op("joined", 10000) end
		assert.are.equal(room, j.room)
		assert(ann:send("get"))
		local n, label, _, w = reply(ann, "^count (%d+) label (%S+) tick (%d+) worker (%d+)")
		assert.are.equal("2", w) -- worker 0's successor
		assert.are.equal("4", n)
		assert.are.equal("up", label)
	end)

	it("lists the rooms of every worker", function()
		local rd = T.start_redis()
		local srv = start(rd, { workers = 2 })
		local a = login(srv, { v = 1, name = "a" }, "udp", { worker = 0 })
		local b = login(srv, { v = 1, name = "b" }, "udp", { worker = 1 })
		local c = login(srv, { v = 1, name = "c" }, "tcp", { worker = 1 })
		local ra = create(a, {})
		local rb = create(b, {})
		assert(c:send(json.encode({ op = "create", mode = "relay", capacity = 2 })))
		local rc = c:wait_op("joined").room
		-- the directory is written right after the replies to the players
		-- (eventually consistent across workers): asked until it says so
		local function list_until(req, cond)
			local last
			a:wait(function()
				assert(a:send(json.encode(req)))
				last = a:wait_op("rooms").rooms
				return cond(last)
			end, 5000, "the list " .. json.encode(req))
			return last
		end
		list_until({ op = "rooms" }, function(l)
			local ids = {}
			for _, r in ipairs(l) do ids[r.id] = r end
			return ids[ra] and ids[rb] and ids[rc] and ids[rb].members == 1
		end)
		-- by mode, and paged after an id
		local l = list_until({ op = "rooms", mode = "counter", after = math.min(ra, rb) },
			function(l) return #l == 1 end)
		assert.are.equal(math.max(ra, rb), l[1].id)
		-- a room that closes leaves the list
		assert(b:send(json.encode({ op = "leave" })))
		b:wait_op("left")
		l = list_until({ op = "rooms", mode = "counter" }, function(l) return #l == 1 end)
		assert.are.equal(ra, l[1].id)
	end)
end)
