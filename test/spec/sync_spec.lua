-- moongate.relay and moongate.frames against a real server: a room
-- service that relays every datagram as state and steps a lockstep frame
-- every 50 ms, three clients, and the client-side decoder
-- (require "moongate.sync").
local T = require "moongate.test"
local json = require "moongate.json"
local sync = require "moongate.sync"
local client = require "moongate.client"

local unpack = table.unpack or unpack

-- Reliable messages are inputs, except "!command" ones, which answer with
-- a JSON object (frames start with 'F', so the two never mix up).
local ROOM = [[
local moongate = require "moongate"
local json = require "moongate.json"
local svc = {}
local relay = moongate.relay{}
local frames = moongate.frames{ history = 16 }
local held = false -- "!hold": the tick does not flush the relay

local function reply(session, t) session:send(json.encode(t)) end

function svc.connect(session)
	relay:add(session:id(), session)
	frames:add(session:id(), session)
end

function svc.close(session)
	relay:remove(session:id())
	frames:remove(session:id())
end

local commands = {}
function commands.stats(session)
	reply(session, { id = session:id(), relay = relay:stats(),
		frames = frames:stats(), frame = frames:frame() })
end
function commands.hold(session) held = true; reply(session, { held = true }) end
function commands.go(session) held = false; reply(session, { held = false }) end
-- leave the frames: every frame from now on is missed
function commands.leave(session)
	frames:remove(session:id())
	reply(session, { left = frames:frame() })
end
-- back, as of frame n, and catch up from there
function commands.rejoin(session, n)
	frames:add(session:id(), session, n)
	local ok, sent = frames:catch_up(session:id())
	reply(session, { ok = ok, sent = sent, next = frames:next(session:id()) })
end
function commands.catch(session, n)
	local ok, r = frames:catch_up(session:id(), n)
	reply(session, { ok = ok, r = r, next = frames:next(session:id()) })
end
-- flush now with a filter: "drop" gives the caller nothing; "error"
-- raises (the relay refuses a change from inside its own filter)
function commands.flushf(session, _, mode)
	local me = session:id()
	local sent = relay:flush(function(receiver, ids)
		if mode == "error" then relay:put(me, 1, "x") end
		if receiver == me then return {} end
		assert(#ids == 2)
		return { ids[2], 12345, ids[1], ids[2] } -- noise is ignored
	end)
	reply(session, { sent = sent })
end
function commands.options(session)
	local ok, err = pcall(moongate.relay, { gird = 1 })
	local ok2, err2 = pcall(moongate.frames, { input_max = 0 })
	reply(session, { err = tostring(err), err2 = tostring(err2), ok = ok or ok2,
		entry_max_ok = pcall(moongate.relay, { entry_max = 1157 }),
		entry_max_big = pcall(moongate.relay, { entry_max = 1158 }) })
end

function svc.message(session, data, reliable, seq)
	local id = session:id()
	if not reliable then
		relay:put(id, seq, data)
		return true
	end
	local cmd, n, arg = data:match("^!(%a+)%s*(%d*)%s*(%a*)")
	if cmd then
		commands[cmd](session, tonumber(n), arg)
	else
		assert(frames:input(id, data))
	end
	return true
end

moongate.every(50, function()
	if not held then relay:flush() end
	frames:step()
end)

return svc
]]

-- The next JSON reply of cl (frames and other messages are skipped);
-- cl.jread is the index of that reply in cl.messages.
local function reply(cl, all)
	local r
	T.wait(function()
		for i = (cl.jread or 0) + 1, #cl.messages do
			cl.jread = i
			local m = cl.messages[i]
			if m:sub(1, 1) == "{" then
				r = json.decode(m)
				return true
			end
		end
	end, 5000, unpack(all))
	return r
end

-- Let ms pass while every client keeps stepping.
local function pause(ms, all)
	local t_end = client.now() + ms * 1000
	T.wait(function() return client.now() >= t_end end, ms + 5000, unpack(all))
end

local function command(cl, line, all)
	assert(cl:send("!" .. line))
	return reply(cl, all or { cl })
end

-- Every state cl received: { {tick=, id=, seq=, data=}, ... }
local function states_of(cl)
	local out = {}
	for _, d in ipairs(cl.datagrams) do
		assert.is_true(sync.is_states(d.data))
		local tick, list = sync.decode_states(d.data)
		assert(tick, list)
		for _, s in ipairs(list) do
			out[#out + 1] = { tick = tick, id = s.id, seq = s.seq, data = s.data }
		end
	end
	return out
end

-- Every frame cl received (up to message upto), in arrival order:
-- { {n=, inputs=}, ... }
local function frames_of(cl, upto)
	local out = {}
	for i = 1, upto or #cl.messages do
		local m = cl.messages[i]
		if sync.is_frame(m) then
			local n, inputs = sync.decode_frame(m)
			assert(n, inputs)
			out[#out + 1] = { n = n, inputs = inputs }
		end
	end
	return out
end

-- Frames in order with no gap and no repeat, from the first one received.
local function assert_consecutive(list, who)
	for i = 2, #list do
		assert(list[i].n == list[i - 1].n + 1, ("%s: frame %d after %d"):format(
			who, list[i].n, list[i - 1].n))
	end
end

-- How many times each input (data) appears in the frames.
local function input_counts(list)
	local seen = {}
	for _, f in ipairs(list) do
		for _, e in ipairs(f.inputs) do
			seen[e.data] = (seen[e.data] or 0) + 1
		end
	end
	return seen
end

describe("moongate.relay and moongate.frames", function()
	local srv, cls, ids
	lazy_setup(function()
		srv = T.start_server{ services = { "room" }, inline = { room = ROOM } }
		cls, ids = {}, {}
		for i = 1, 3 do
			cls[i] = T.connect(srv, "udp", "p" .. i)
		end
		for i = 1, 3 do
			cls[i]:wait_open()
			ids[i] = command(cls[i], "stats", cls).id
		end
	end)
	lazy_teardown(T.stop_all)

	it("relays only the newest state of a tick, never to its sender", function()
		command(cls[1], "hold", cls)
		for i = 1, 3 do
			for k = 1, 5 do
				assert(cls[i]:send_unreliable(("%d:%d"):format(i, k)))
			end
		end
		T.wait(function()
			return command(cls[1], "stats", cls).relay.puts >= 15
		end, 5000, unpack(cls))
		local st = command(cls[1], "stats", cls).relay
		assert.are.equal(15, st.puts)
		assert.are.equal(12, st.superseded)
		command(cls[1], "go", cls)
		T.wait(function()
			for i = 1, 3 do
				if #states_of(cls[i]) < 2 then return false end
			end
			return true
		end, 5000, unpack(cls))
		for i = 1, 3 do
			local got = states_of(cls[i])
			assert.are.equal(2, #got)
			for _, s in ipairs(got) do
				assert.are_not.equal(ids[i], s.id)
				local from
				for j = 1, 3 do if ids[j] == s.id then from = j end end
				assert.is_not_nil(from)
				assert.are.equal(("%d:5"):format(from), s.data)
				assert.are.equal(s.tick, s.seq) -- numbered by the relay: its tick
			end
			assert.are.equal(got[1].tick, got[2].tick)
		end

		-- more states across ticks: per sender, seq only grows
		for k = 6, 12 do
			for i = 1, 3 do
				assert(cls[i]:send_unreliable(("%d:%d"):format(i, k)))
			end
			pause(20, cls)
		end
		T.wait(function()
			for i = 1, 3 do
				local last = {}
				for _, s in ipairs(states_of(cls[i])) do last[s.id] = s.data end
				for j = 1, 3 do
					if j ~= i and last[ids[j]] ~= ("%d:12"):format(j) then return false end
				end
			end
			return true
		end, 5000, unpack(cls))
		for i = 1, 3 do
			local last = {}
			for _, s in ipairs(states_of(cls[i])) do
				assert.are_not.equal(ids[i], s.id)
				assert.is_true(s.seq > (last[s.id] or -1))
				last[s.id] = s.seq
			end
		end
	end)

	it("narrows with a filter, and keeps all when the filter fails", function()
		command(cls[1], "hold", cls)
		local puts = command(cls[1], "stats", cls).relay.puts
		local before = {}
		for i = 1, 3 do
			before[i] = #cls[i].datagrams
			assert(cls[i]:send_unreliable("f" .. i))
		end
		T.wait(function()
			return command(cls[1], "stats", cls).relay.puts >= puts + 3
		end, 5000, unpack(cls))
		-- cls[1] gets nothing, the others one datagram each, in the
		-- filter's order
		assert.are.equal(2, command(cls[1], "flushf 0 drop", cls).sent)
		T.wait(function()
			return #cls[2].datagrams > before[2] and #cls[3].datagrams > before[3]
		end, 5000, unpack(cls))
		for i = 2, 3 do
			local _, list = sync.decode_states(cls[i].datagrams[before[i] + 1].data)
			assert.are.equal(2, #list)
			assert.are_not.equal(list[1].id, list[2].id)
			assert.are_not.equal(ids[i], list[1].id)
		end
		assert.are.equal(before[1], #cls[1].datagrams)

		-- an error in the filter: logged, every receiver gets everything
		for i = 1, 3 do
			assert(cls[i]:send_unreliable("g" .. i))
		end
		T.wait(function()
			return command(cls[1], "stats", cls).relay.puts >= puts + 6
		end, 5000, unpack(cls))
		assert.are.equal(3, command(cls[1], "flushf 0 error", cls).sent)
		srv:wait_log("relay: filter failed, receiver %d+ %(it gets every candidate%): " ..
			".-cannot be changed from inside its own flush filter", 5000)
		assert.truthy(srv:log():find("stack traceback", 1, true))
		command(cls[1], "go", cls)

		local r = command(cls[1], "options", cls)
		assert.truthy(r.err:find("moongate.relay: unknown option 'gird'", 1, true), r.err)
		assert.truthy(r.err2:find("input_max must be an integer in [1, 65535]", 1, true), r.err2)
		assert.is_false(r.ok)
		assert.is_true(r.entry_max_ok)
		assert.is_false(r.entry_max_big)
	end)

	it("delivers every frame in order with each input exactly once", function()
		local sent = {}
		for k = 1, 10 do
			for i = 1, 3 do
				local d = ("in %d.%d"):format(i, k)
				assert(cls[i]:send(d))
				sent[#sent + 1] = d
			end
			if k % 3 == 0 then -- some in one frame, some across frames
				pause(30, cls)
			end
		end
		T.wait(function()
			for i = 1, 3 do
				local seen = input_counts(frames_of(cls[i]))
				for _, d in ipairs(sent) do
					if not seen[d] then return false end
				end
			end
			return true
		end, 5000, unpack(cls))
		for i = 1, 3 do
			local list = frames_of(cls[i])
			assert_consecutive(list, "client " .. i)
			local seen = input_counts(list)
			for _, d in ipairs(sent) do
				assert.are.equal(1, seen[d], d)
			end
			-- a sender's inputs in the order it sent them
			local last = {}
			for _, f in ipairs(list) do
				for _, e in ipairs(f.inputs) do
					local who, k = e.data:match("^in (%d)%.(%d+)$")
					if who then
						k = tonumber(k)
						assert.is_true(k > (last[who] or 0))
						last[who] = k
						assert.are.equal(ids[tonumber(who)], e.id)
					end
				end
			end
		end
	end)

	it("catches a member up after it was left behind", function()
		local a, b = cls[1], cls[2]
		local left = command(a, "leave", cls).left
		-- frames go on without a, and b's inputs land in them
		for k = 1, 4 do
			assert(b:send("gap " .. k))
			pause(30, cls)
		end
		T.wait(function()
			local list = frames_of(b)
			return list[#list].n >= left + 4
		end, 5000, unpack(cls))
		local r = command(a, "rejoin " .. left, cls)
		assert.is_true(r.ok)
		assert.is_true(r.sent >= 4)
		-- the catch-up frames came before the reply, in order
		local list = frames_of(a, a.jread)
		assert_consecutive(list, "client 1")
		assert.are.equal(r.next, list[#list].n + 1)
		local seen = input_counts(list)
		for k = 1, 4 do
			assert.are.equal(1, seen["gap " .. k])
		end
		-- and the stream goes on from there
		T.wait(function()
			local l = frames_of(a)
			return l[#l].n >= r.next + 2
		end, 5000, unpack(cls))
		assert_consecutive(frames_of(a), "client 1")

		-- history = 16: once 17 frames are made, frame 0 is gone; nothing
		-- is sent, next stays
		T.wait(function() return command(a, "stats", cls).frame > 17 end, 5000, unpack(cls))
		local before = #frames_of(a)
		local c = command(a, "catch 0", cls)
		assert.is_false(c.ok)
		assert.are.equal("too far behind", c.r)
		local list2 = frames_of(a)
		assert_consecutive(list2, "client 1")
		assert.is_true(#list2 >= before)
	end)
end)
