-- The room service (docs/SERVICES.md): lifecycle, capacity, metadata,
-- state sync (newest wins) and frame sync (every frame, in order, and a
-- resumed member catching up).
local T = require "moongate.test"
local json = require "moongate.json"
local sync = require "moongate.sync"

local function login(srv, name, transport, opts)
	local cl = T.connect(srv, transport or "udp", json.encode({ v = 1, name = name }), opts)
	local m = cl:wait_login() -- open is not a login: a refusal raises here
	cl.id, cl.cookie = m.id, m.cookie
	return cl
end

-- A logic that logs every callback it gets, in order.
local life = [[
local moongate = require "moongate"
local M = { tick_rate = 50, capacity = 2 }
local function log(what) moongate.info("life: %s", what) end
function M.init(room, params) room.state.word = params.word; log("init " .. tostring(params.word)) end
function M.join_attempt(room, p, meta)
	log("join_attempt " .. p.name)
	if p.name == "mallory" then return false, "not you" end
	return true
end
function M.join(room, p) log("join " .. p.name) end
function M.tick(room, n) if n == 1 then log("tick 1") end end
function M.message(room, p, data, reliable) log("message " .. p.name .. " " .. data); room:broadcast(room.state.word .. ":" .. data) end
function M.leave(room, p, why) log("leave " .. p.name .. " " .. why) end
function M.dispose(room) log("dispose") end
return M
]]

describe("rooms", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "login", "room" },
			inline = { life = life },
			config = { settings = { room = { modes = { life = "life" }, list_max = 2 } } },
		}
	end)
	lazy_teardown(T.stop_all)

	it("calls the logic in order: init, join_attempt, join, tick, message, leave, dispose", function()
		local a = login(srv, "ann")
		local b = login(srv, "bob")
		local m = login(srv, "mallory")
		assert(a:send(json.encode{ op = "create", mode = "life", meta = { map = "dust" },
			params = { word = "hi" } }))
		local room = a:wait_op("created").room
		local joined = a:wait_op("joined")
		assert.are.same({ room, 1, "life", { map = "dust" } },
			{ joined.room, joined.seat, joined.mode, joined.meta })

		assert(m:send(json.encode{ op = "join", room = room }))
		local refused = m:wait_op("error")
		assert.are.same({ "join", "not you" }, { refused.req, refused.reason })
		assert(b:send(json.encode{ op = "rooms" }))
		local list = b:wait_op("rooms").rooms
		assert.are.same({ { id = room, mode = "life", members = 1, capacity = 2, meta = { map = "dust" } } }, list)
		assert(b:send(json.encode{ op = "join", room = room }))
		assert.are.equal(2, b:wait_op("joined").seat)
		assert.are.equal("join", a:wait_op("member").event)
		-- full
		assert(m:send(json.encode{ op = "join", room = room }))
		assert.are.equal("room is full", m:wait_op("error").reason)

		srv:wait_log("life: tick 1", 5000) -- ticks run on their own timer
		assert(a:send("ping"))
		T.wait(function()
			for _, s in ipairs(b.messages) do if s == "hi:ping" then return true end end
		end, 5000, a, b)
		assert(a:send(json.encode{ op = "leave" }))
		assert.are.equal("left", a:wait_op("left").reason)
		assert(b:send(json.encode{ op = "leave" }))
		b:wait_op("left")
		srv:wait_log("life: dispose", 5000)

		-- the ticks run on their own timer: "tick 1" comes after the room
		-- was made and its first member joined, before the message (the
		-- test waited for it), wherever the joins of the others fell
		local order, tick_at = {}, nil
		for line in srv:log():gmatch("[^\n]+") do
			local what = line:match("life: (.*)$")
			if what == "tick 1" then
				tick_at = #order
			elseif what then
				order[#order + 1] = what
			end
		end
		assert.are.same({ "init hi", "join_attempt ann", "join ann", "join_attempt mallory",
			"join_attempt bob", "join bob", "message ann ping", "leave ann left",
			"leave bob left", "dispose" }, order)
		assert(tick_at and tick_at >= 3 and tick_at <= 6,
			"tick 1 after 'join ann' and before the message; after " .. tostring(tick_at) .. " events")
		for _, cl in ipairs({ a, b, m }) do
			cl:close()
			cl:wait_close()
		end
	end)

	it("lists rooms a page at a time", function()
		local owners = {}
		for i = 1, 3 do
			owners[i] = login(srv, "own" .. i)
			assert(owners[i]:send(json.encode{ op = "create", mode = "life", meta = { n = i } }))
			owners[i]:wait_op("joined")
		end
		local a = login(srv, "lister")
		local seen = {}
		local after = 0
		repeat
			assert(a:send(json.encode{ op = "rooms", mode = "life", after = after }))
			local page = a:wait_op("rooms")
			assert(#page.rooms <= 2)
			for _, r in ipairs(page.rooms) do
				assert(r.id > after)
				after = r.id
				seen[#seen + 1] = r.meta.n
			end
		until not page.more
		assert.are.same({ 1, 2, 3 }, seen)
		for _, cl in ipairs(owners) do
			cl:close()
			cl:wait_close()
		end
		a:close()
	end)

	it("refuses bad requests with a reason", function()
		local a = login(srv, "ann")
		assert(a:send(json.encode{ op = "join", room = 999 }))
		assert.are.equal("no such room", a:wait_op("error").reason)
		assert(a:send(json.encode{ op = "create", mode = "nope" }))
		assert.are.equal("no such mode: nope", a:wait_op("error").reason)
		assert(a:send(json.encode{ op = "create", mode = "life", capacity = 1000 }))
		assert.matches("capacity", a:wait_op("error").reason)
		assert(a:send(json.encode{ op = "leave" }))
		assert.are.equal("not in a room", a:wait_op("error").reason)
		a:close()
		a:wait_close()
	end)
end)

-- ---- state sync and frame sync ------------------------------------------------

local slow_relay = [[ return { tick_rate = 2, sync = "state" } ]]
local relay20 = [[ return { tick_rate = 20, sync = "state" } ]]
local lockstep = [[ return { tick_rate = 20, sync = "frame", history = 256 } ]]
local short = [[ return { tick_rate = 20, sync = "frame", history = 4,
	snapshot = function(room, p) return "snap for " .. p.name end } ]]

describe("sync", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "login", "room" },
			inline = { slow_relay = slow_relay, relay20 = relay20, lockstep = lockstep, short = short },
			config = {
				session = { timeout_ms = 300, heartbeat_ms = 100, resume_grace_ms = 10000 },
				settings = { room = { modes = { slow_relay = "slow_relay", relay20 = "relay20",
					lockstep = "lockstep", short = "short" } } },
			},
		}
	end)
	lazy_teardown(T.stop_all)

	local function room_of(mode, names)
		local cls = {}
		for i, n in ipairs(names) do
			cls[i] = login(srv, n)
		end
		assert(cls[1]:send(json.encode{ op = "create", mode = mode }))
		local room = cls[1]:wait_op("created").room
		cls[1]:wait_op("joined")
		for i = 2, #cls do
			assert(cls[i]:send(json.encode{ op = "join", room = room }))
			cls[i]:wait_op("joined")
		end
		return cls, room
	end

	it("relays the newest state of each member once per tick, never back to its sender", function()
		local cls = room_of("slow_relay", { "sa", "sb", "sc" })
		local a, b, c = cls[1], cls[2], cls[3]
		local got = { [b] = {}, [c] = {}, [a] = {} }
		local function collect(cl)
			for _, d in ipairs(cl.datagrams) do
				if not d.seen then
					d.seen = true
					local tick, entries = sync.decode_states(d.data)
					assert(tick, "not a state bundle")
					for _, e in ipairs(entries) do
						local list = got[cl]
						list[#list + 1] = e
					end
				end
			end
		end
		-- three bursts of 5 states; the room ticks twice a second
		local last
		for burst = 1, 3 do
			for k = 1, 5 do
				assert(a:send_unreliable(("state %d.%d"):format(burst, k)))
			end
			last = ("state %d.5"):format(burst)
			T.wait(function()
				collect(b); collect(c)
				local lb, lc = got[b][#got[b]], got[c][#got[c]]
				return lb and lb.data == last and lc and lc.data == last
			end, 5000, a, b, c)
		end
		collect(a)
		assert.are.equal(0, #got[a])            -- never its own state
		for _, cl in ipairs({ b, c }) do
			local prev = -1
			for _, e in ipairs(got[cl]) do
				assert.are.equal(a.id, e.id)
				assert(e.seq > prev, "a stale or repeated state was relayed")
				prev = e.seq
			end
			-- superseded states were dropped: at most 2 of each burst of 5
			-- (2 when a tick fell inside the burst)
			assert(#got[cl] <= 6, "expected at most 6 states, got " .. #got[cl])
		end
	end)

	-- issue 16: a cookie login is a new session whose datagrams are
	-- numbered from 1 again; what the other members get from that member
	-- must still be newer than anything they got from it before
	it("keeps a member's states newer across a cookie login on a new session", function()
		local cls = room_of("relay20", { "ka", "kb" })
		local a, b = cls[1], cls[2]
		local last -- the newest entry b got from a
		local function newest_is(want)
			return function()
				for _, d in ipairs(b.datagrams) do
					if not d.seen then
						d.seen = true
						local tick, entries = sync.decode_states(d.data)
						assert(tick, entries)
						for _, e in ipairs(entries) do
							assert.are.equal(a.id, e.id)
							assert(not last or e.seq > last.seq, ("%q (seq %d) after %q (seq %d): "
								.. "not newer"):format(e.data, e.seq, last and last.data or "", last and last.seq or 0))
							last = e
						end
					end
				end
				return last and last.data == want
			end
		end
		for k = 1, 5 do
			assert(a:send_unreliable("first " .. k))
		end
		T.wait(newest_is("first 5"), 5000, a, b)
		-- a's app closes (its seat is held) and logs in again with its cookie
		a:close()
		a:wait_close()
		local a2 = T.connect(srv, "udp", json.encode{ v = 1, cookie = a.cookie })
		assert.are.equal(a.id, a2:wait_op("login").id)
		assert.is_true(a2:wait_op("joined").rejoined)
		for k = 1, 2 do
			assert(a2:send_unreliable("second " .. k))
		end
		T.wait(newest_is("second 2"), 5000, a2, b)
		a2:close()
		b:close()
	end)

	it("sends every frame to every member in order, and a resumed member catches up", function()
		local cls = room_of("lockstep", { "fa", "fb", "fc" })
		local a, b, c = cls[1], cls[2], cls[3]
		local function frames(cl)
			cl.frames = cl.frames or {}
			cl.fread = cl.fread or 0
			while cl.fread < #cl.messages do
				cl.fread = cl.fread + 1
				local s = cl.messages[cl.fread]
				if sync.is_frame(s) then
					local n, entries = sync.decode_frame(s)
					assert(n, "a bad frame")
					cl.frames[#cl.frames + 1] = { n = n, entries = entries }
				end
			end
			return cl.frames
		end
		local sent = 0
		local function input(cl, k)
			assert(cl:send("I" .. cl.id .. ":" .. k))
			sent = sent + 1
		end
		for k = 1, 5 do
			input(a, k); input(b, k); input(c, k)
			T.wait(function() return #frames(a) >= k * 2 end, 5000, a, b, c)
		end
		-- c goes quiet: the server takes it offline and leaves it behind
		local offline_before = select(2, srv:log():gsub("offline: waiting", ""))
		T.wait(function()
			return select(2, srv:log():gsub("offline: waiting", "")) > offline_before
		end, 5000, a, b)
		local behind = #frames(a)
		for k = 6, 10 do
			input(a, k); input(b, k)
			T.wait(function() return #frames(a) >= behind + (k - 5) * 2 end, 5000, a, b)
		end
		-- c comes back: resumed, and caught up from the history
		T.wait(function()
			local fa, fc = frames(a), frames(c)
			return #fc > 0 and fc[#fc].n >= fa[#fa].n
		end, 10000, a, b, c)
		local seen = {}
		for _, cl in ipairs({ a, b, c }) do
			local fs = frames(cl)
			for i = 2, #fs do
				assert.are.equal(fs[i - 1].n + 1, fs[i].n) -- every frame, in order
			end
			for _, f in ipairs(fs) do
				for _, e in ipairs(f.entries) do
					seen[cl] = seen[cl] or {}
					assert.is_nil(seen[cl][e.data], "an input twice: " .. e.data)
					seen[cl][e.data] = f.n
				end
			end
		end
		-- every input reached every member, in the same frame
		for _, cl in ipairs({ a, b, c }) do
			local n = 0
			for data, f in pairs(seen[cl]) do
				n = n + 1
				assert.are.equal(seen[a][data], f)
			end
			assert.are.equal(sent, n)
		end
		assert.truthy(srv:log():find("resumed", 1, true))
	end)

	it("sends a resync to a member further behind than the history", function()
		local cls = room_of("short", { "ra", "rb" })
		local a, b = cls[1], cls[2]
		local offline_before = select(2, srv:log():gsub("offline: waiting", ""))
		T.wait(function()
			return select(2, srv:log():gsub("offline: waiting", "")) > offline_before
		end, 5000, a)
		local t0 = #a.messages
		T.wait(function() return #a.messages >= t0 + 10 end, 5000, a) -- 10 frames > history 4
		local m = b:wait_op("resync", 10000)
		assert.are.equal("snap for rb", m.snapshot)
		assert.is_number(m.frame)
	end)
end)

-- relay:route (docs/LUA_API.md): a state-sync member's datagrams go into
-- the relay in C, so a service listed before "room" does not see them;
-- once the member leaves, its datagrams reach the services again.
local spy = [[
local moongate = require "moongate"
local M = { seen = 0 }
function M.message(session, data, reliable)
	if reliable and data == "seen?" then
		session:send("seen " .. M.seen)
		return true
	end
	if not reliable then M.seen = M.seen + 1 end
end
return M
]]

describe("routed states", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "spy", "login", "room" }, admin = true,
			inline = { spy = spy, fast_relay = [[ return { tick_rate = 20, sync = "state" } ]] },
			config = { settings = { room = { modes = { fast_relay = "fast_relay" } } } },
		}
	end)
	lazy_teardown(T.stop_all)

	local function seen(cl)
		local n0 = #cl.messages
		assert(cl:send("seen?"))
		cl:wait(function()
			for i = n0 + 1, #cl.messages do
				if cl.messages[i]:match("^seen ") then return true end
			end
		end, 5000, "the spy's count")
		for i = #cl.messages, n0 + 1, -1 do
			local n = cl.messages[i]:match("^seen (%d+)$")
			if n then return tonumber(n) end
		end
	end

	it("skips the Lua callbacks while routed, and stops with the member", function()
		local a, b = login(srv, "ra"), login(srv, "rb")
		assert(a:send(json.encode{ op = "create", mode = "fast_relay" }))
		local room = a:wait_op("created").room
		a:wait_op("joined")
		assert(b:send(json.encode{ op = "join", room = room }))
		b:wait_op("joined")
		for k = 1, 5 do
			assert(a:send_unreliable("state " .. k))
		end
		T.wait(function()
			for _, d in ipairs(b.datagrams) do
				local _, entries = sync.decode_states(d.data)
				for _, e in ipairs(entries or {}) do
					if e.data == "state 5" then return true end
				end
			end
		end, 5000, a, b)
		assert.are.equal(0, seen(a))
		local ok, reply = srv:admin("stats lua")
		assert(ok, reply)
		local routed = tonumber(reply:match("lua%.routed (%d+)"))
		assert(routed and routed >= 5, reply)
		-- leaving ends the route: the spy sees what a sends now
		assert(a:send(json.encode{ op = "leave" }))
		a:wait_op("left")
		for k = 1, 3 do
			assert(a:send_unreliable("after " .. k))
		end
		a:wait(function() return seen(a) == 3 end, 5000, "3 datagrams seen by the spy")
	end)
end)
