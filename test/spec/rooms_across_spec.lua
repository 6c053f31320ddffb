-- Rooms across workers (issue 17): a room lives in one worker; a player
-- whose session sits on another worker is moved there (close code 11,
-- followed by the client library: a "moved" event, then "open" and a
-- cookie login on the room's worker) with its seat reserved in its Redis
-- record. Worker hints (?worker=N) put each client's session on a chosen
-- worker, so the placement is not left to the kernel's hash.
local T = require "moongate.test"
local json = require "moongate.json"
local sync = require "moongate.sync"

local WHO = [[
local svc = {}
function svc.message(session, data)
	if data == "id" then
		session:send(tostring(session:id()))
		return true
	end
end
return svc
]]

local function start(rd, extra)
	local cfg = { workers = 2, redis = { url = rd.url } }
	for k, v in pairs(extra or {}) do cfg[k] = v end
	return T.start_server{ services = { "who", "login", "room" }, inline = { who = WHO },
		config = cfg }
end

-- The worker of cl's session (its id's low byte).
local function worker_of(cl)
	local before = #cl.messages
	-- (right after a move the new session may still be in its handshake:
	-- the library holds the message and sends it once it is open)
	assert(cl:send("id"))
	local m = cl:wait(function()
		for i = before + 1, #cl.messages do
			if cl.messages[i]:match("^%d+$") then return cl.messages[i] end
		end
	end, 5000, "its session id")
	return tonumber(m) % 256
end

describe("rooms across workers", function()
	after_each(function() T.stop_all() end)

	it("put a handshake on the worker its hint names", function()
		local rd = T.start_redis()
		local srv = start(rd)
		for _, tr in ipairs({ "udp", "tcp" }) do
			for w = 0, 1 do
				for i = 1, 4 do
					local cl = T.connect(srv, tr, json.encode({ v = 1, name = tr .. w .. i }),
						{ worker = w })
					cl:wait_login()
					assert.are.equal(w, worker_of(cl))
				end
			end
		end
	end)

	it("move a player to the room's worker: every member gets every frame", function()
		local rd = T.start_redis()
		local srv = start(rd)
		-- four players on worker 0, four on worker 1
		local cls = {}
		for i = 1, 8 do
			local w = (i - 1) % 2
			cls[i] = T.connect(srv, "udp", json.encode({ v = 1, name = "p" .. i }), { worker = w })
			cls[i]:wait_login()
			assert.are.equal(w, worker_of(cls[i]))
		end
		-- the first makes a lockstep room on worker 0; the others join it
		-- by id or by quick match
		assert(cls[1]:send(json.encode({ op = "create", mode = "lockstep", capacity = 8 })))
		local room = cls[1]:wait_op("joined").room
		for i = 2, 8 do
			local req = i % 4 == 2 and { op = "join", room = room } or { op = "join", mode = "lockstep" }
			assert(cls[i]:send(json.encode(req)))
			local j = cls[i]:wait_op("joined", 10000)
			assert.are.equal(room, j.room)
		end
		for i = 1, 8 do
			local w = (i - 1) % 2
			-- the players of worker 1 were moved (once), those of worker 0 not
			assert.are.equal(w == 1 and 1 or nil, cls[i].moves)
			assert.are.equal(0, worker_of(cls[i]))
			assert.is_nil(cls[i].closed)
		end
		-- every member: 40 frames in a row, no gap, each with every
		-- member's input of that frame once the inputs flow
		local t0 = T.now_ms()
		local first = {}
		local n = {}
		for i = 1, 8 do n[i] = 0 end
		T.wait(function()
			for i = 1, 8 do
				local cl = cls[i]
				for k = cl.read + 1, #cl.messages do
					local f = cl.messages[k]
					if sync.is_frame(f) then
						local fr = sync.decode_frame(f)
						if first[i] then
							assert.are.equal(first[i] + n[i], fr, "member " .. i .. ": a gap")
						else
							first[i] = fr
						end
						n[i] = n[i] + 1
					end
				end
				cl.read = #cl.messages
			end
			for i = 1, 8 do
				if n[i] < 40 then return false end
			end
			return true
		end, 10000, unpack(cls))
		assert.is_true(T.now_ms() - t0 < 10000)
		-- an input of a member moved from worker 1 reaches a member that
		-- never moved, and the other way round
		assert(cls[2]:send("Ifrom2")) -- (the frame carries the input without its "I")
		assert(cls[1]:send("Ifrom1"))
		local function saw(cl, what)
			return cl:wait(function()
				for k = 1, #cl.messages do
					local f = cl.messages[k]
					if sync.is_frame(f) then
						local _, ins = sync.decode_frame(f)
						for _, e in ipairs(ins) do
							if e.data == what then return true end
						end
					end
				end
			end, 5000, what)
		end
		assert.is_true(saw(cls[1], "from2"))
		assert.is_true(saw(cls[2], "from1"))
		assert.is_true(saw(cls[8], "from1"))
	end)

	it("hold what the game sends between the move and the new session's open, and send it there first", function()
		local rd = T.start_redis()
		local srv = start(rd)
		local a = T.connect(srv, "udp", json.encode({ v = 1, name = "a" }), { worker = 0 })
		a:wait_login()
		assert(a:send(json.encode({ op = "create", mode = "lockstep", capacity = 4 })))
		local r = a:wait_op("joined").room
		for _, tr in ipairs({ "udp", "tcp" }) do
			local b = T.connect(srv, tr, json.encode({ v = 1, name = "b" .. tr }), { worker = 1 })
			b:wait_login()
			assert(b:send(json.encode({ op = "join", room = r })))
			b:wait(function() return b.moves == 1 end, 10000, "the move")
			-- the poll that handed out "moved" started the new handshake: not open yet
			assert.are.equal("handshake", b:state())
			local before = #b.messages
			for i = 1, 3 do
				local ok, e = b:send("id")
				assert.is_true(ok, tr .. ": message " .. i .. " held: " .. tostring(e))
			end
			local ok, err = b:send_unreliable("x")
			assert.is_nil(ok)
			assert.matches("offline", err)
			-- the three answers come from the room's worker, in order, after the open
			local ids = b:wait(function()
				local got = {}
				for k = before + 1, #b.messages do
					if b.messages[k]:match("^%d+$") then got[#got + 1] = b.messages[k] end
				end
				return #got == 3 and got
			end, 10000, "three answers")
			for i = 1, 3 do
				assert.are.equal(0, tonumber(ids[i]) % 256)
			end
			assert.are.equal(r, b:wait_op("joined", 10000).room)
			assert.is_nil(b.closed)
		end
	end)

	it("kill -9 of a room's worker: the other worker's room plays on, its members come back to their seats", function()
		local rd = T.start_redis()
		local srv = start(rd)
		-- room r0 on worker 0 (p1 there, p2 moved from worker 1); room r1
		-- on worker 1 (q1 there, q2 moved from worker 0)
		local function player(name, w)
			local cl = T.connect(srv, "udp", json.encode({ v = 1, name = name }), { worker = w })
			return cl, cl:wait_login()
		end
		local p1 = player("p1", 0)
		local p2 = player("p2", 1)
		local q1, lq1 = player("q1", 1)
		local q2, lq2 = player("q2", 0)
		assert(p1:send(json.encode({ op = "create", mode = "lockstep", capacity = 4 })))
		local r0 = p1:wait_op("joined").room
		assert(q1:send(json.encode({ op = "create", mode = "lockstep", capacity = 4 })))
		local r1 = q1:wait_op("joined").room
		assert(p2:send(json.encode({ op = "join", room = r0 })))
		assert.are.equal(r0, p2:wait_op("joined", 10000).room)
		assert(q2:send(json.encode({ op = "join", room = r1 })))
		assert.are.equal(r1, q2:wait_op("joined", 10000).room)
		assert.are.equal(0, worker_of(p2))
		assert.are.equal(1, worker_of(q2))
		local all = { p1, p2, q1, q2 }
		for _, cl in ipairs(all) do cl.read = #cl.messages end
		-- r0's frames, counted without a gap through worker 1's death
		local last, seen = {}, {}
		local function count()
			for i, cl in ipairs({ p1, p2 }) do
				for k = cl.read + 1, #cl.messages do
					local f = cl.messages[k]
					if sync.is_frame(f) then
						local fr = sync.decode_frame(f)
						assert(not last[i] or fr == last[i] + 1, "a gap in r0's frames")
						last[i], seen[i] = fr, (seen[i] or 0) + 1
					end
				end
				cl.read = #cl.messages
			end
		end
		local pid = tonumber(srv:log():match("workers: worker 1 started, pid (%d+)"))
		srv:mark_log()
		T.kill(pid, 9)
		srv:wait_log("workers: worker 1 started, pid %d+", 5000)
		q1:send("Iping")
		q2:send("Iping")
		T.wait(function()
			count()
			return q1.closed and q2.closed
		end, 10000, unpack(all))
		assert.are.equal(10, q1.closed.code)
		assert.are.equal(10, q2.closed.code)
		-- back with their cookies, on whichever worker the kernel picks:
		-- in their seats of r1, which is made again on its worker
		local back = {}
		for i, l in ipairs({ lq1, lq2 }) do
			back[i] = T.connect(srv, "udp", json.encode({ v = 1, cookie = l.cookie }))
			local m = back[i]:wait_login()
			assert.are.equal(l.id, m.id)
		end
		for i = 1, 2 do
			local j = back[i]:wait_op("joined", 10000)
			assert.are.equal(r1, j.room)
			assert.is_true(j.rejoined)
		end
		assert.are.equal(worker_of(back[1]), worker_of(back[2]))
		-- r1 plays to both; r0 never stopped
		assert(back[1]:send("Iback"))
		back[2]:wait(function()
			for k = 1, #back[2].messages do
				local f = back[2].messages[k]
				if sync.is_frame(f) then
					local _, ins = sync.decode_frame(f)
					for _, e in ipairs(ins) do
						if e.data == "back" then return true end
					end
				end
			end
		end, 5000, "q1's input in q2's frames")
		local before = { seen[1] or 0, seen[2] or 0 }
		T.wait(function()
			count()
			return (seen[1] or 0) >= before[1] + 10 and (seen[2] or 0) >= before[2] + 10
		end, 5000, p1, p2, back[1], back[2])
		assert.is_nil(p1.closed)
		assert.is_nil(p2.closed)
	end)

	it("an upgrade's drain deadline moves rooms and players to the new workers", function()
		local rd = T.start_redis()
		local srv = start(rd, { upgrade_drain_ms = 1500 })
		local function player(name, w, tr)
			local cl = T.connect(srv, tr or "udp", json.encode({ v = 1, name = name }), { worker = w })
			return cl, cl:wait_login()
		end
		local p1 = player("p1", 0)
		local p2 = player("p2", 1)
		local p3 = player("p3", 0, "tcp")
		local q = player("q", 1)
		assert(p1:send(json.encode({ op = "create", mode = "lockstep", capacity = 4 })))
		local room = p1:wait_op("joined").room
		for _, cl in ipairs({ p2, p3 }) do
			assert(cl:send(json.encode({ op = "join", room = room })))
			assert.are.equal(room, cl:wait_op("joined", 10000).room)
		end
		local all = { p1, p2, p3, q }
		local moved_before = {}
		for i, cl in ipairs(all) do moved_before[i] = cl.moves or 0 end
		srv:mark_log()
		T.kill(srv.pid, 12) -- SIGUSR2: moongate upgrade
		srv:wait_log("workers: upgrade: 2 new workers serve", 30000)
		-- at the deadline every player is moved to the new worker of its slot
		T.wait(function()
			for i, cl in ipairs(all) do
				if (cl.moves or 0) <= moved_before[i] then return false end
			end
			return true
		end, 15000, unpack(all))
		for _, cl in ipairs({ p1, p2, p3 }) do
			local j = cl:wait_op("joined", 10000)
			while j.room ~= room or not j.rejoined do j = cl:wait_op("joined", 10000) end
			assert.are.equal(2, worker_of(cl)) -- the room's worker 0 -> 2
		end
		assert.are.equal(3, worker_of(q)) -- q's worker 1 -> 3
		for _, cl in ipairs(all) do
			assert.is_nil(cl.closed)
		end
		-- the room plays on in its new worker, for every member
		assert(p3:send("Iafter"))
		for _, cl in ipairs({ p1, p2 }) do
			cl:wait(function()
				for k = 1, #cl.messages do
					local f = cl.messages[k]
					if sync.is_frame(f) then
						local _, ins = sync.decode_frame(f)
						for _, e in ipairs(ins) do
							if e.data == "after" then return true end
						end
					end
				end
			end, 5000, "p3's input after the move")
		end
		-- no tick missed: every member's frames run without a gap from its
		-- join to its move (the old worker ticked through the upgrade), and
		-- from the room made again in the new worker on
		for _, cl in ipairs({ p1, p2, p3 }) do
			local last, n = nil, 0
			for _, ev in ipairs(cl.events) do
				if ev.type == "moved" then
					last = nil
				elseif ev.type == "message" and sync.is_frame(ev.data) then
					local fr = sync.decode_frame(ev.data)
					assert(last == nil or fr == last + 1, "a tick missed")
					last, n = fr, n + 1
				end
			end
			assert.is_true(n >= 30, "only " .. n .. " frames")
		end
		srv:wait_log("workers: worker 0 %(pid %d+%) exited with status 0", 10000)
		srv:wait_log("workers: worker 1 %(pid %d+%) exited with status 0", 10000)
	end)

	it("say why a move cannot be made, and keep the player where it is", function()
		local rd = T.start_redis()
		local srv = start(rd)
		local a = T.connect(srv, "udp", json.encode({ v = 1, name = "a" }), { worker = 0 })
		local b = T.connect(srv, "udp", json.encode({ v = 1, name = "b" }), { worker = 1 })
		a:wait_login()
		b:wait_login()
		assert(a:send(json.encode({ op = "create", mode = "relay", capacity = 1 })))
		local room = a:wait_op("joined").room
		-- (the directory is written after "joined" is sent: a join read
		-- before would move b, to be told "room is full" there)
		T.wait(function() return rd:cli("HGET", "moongate:room:" .. room, "members") == "1" end,
			5000, a, b)
		assert(b:send(json.encode({ op = "join", room = room })))
		local e = b:wait_op("error")
		assert.are.equal("room is full", e.reason)
		assert.is_nil(b.moves)
		assert.are.equal(1, worker_of(b))
		assert(b:send(json.encode({ op = "join", room = 999999 })))
		assert.are.equal("no such room", b:wait_op("error").reason)
	end)
end)
