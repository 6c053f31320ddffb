-- Sessions that survive a mobile network: the proof of issue 5 against
-- the real server, through moongate-netem.
--
-- One client, 10,000 reliable messages each way (client -> server, and
-- the server's echo back), while the link loses 20% of UDP datagrams both
-- ways; during the run UDP is blocked (the client moves to TCP), unblocked
-- (it moves back), the client's address changes (netem rebinds), and the
-- whole network goes dark for 5 s (both sides go offline, then resume).
-- Every message must arrive exactly once and in order, on both sides, and
-- the service must have seen offline, resume and path events.
--
-- Deterministic where it matters: loss comes from netem's seeded PRNG;
-- what is asserted (exactly once, in order, the events) does not depend on
-- timing. Every wait has a deadline; the outage is the only wall-time wait.

local T = require "moongate.test"
local netem = require "moongate.netem"

-- Echo with checks: the service verifies the order of what it receives
-- and logs every path event; "report" answers the count and the errors.
local CHECKER = [[
local moongate = require "moongate"
local svc = {}
function svc.connect(session)
	session.next, session.bad = 0, 0
	session:send("id " .. session:id())
end
function svc.message(session, data, reliable)
	if not reliable then return end
	if data == "give up when offline" then
		session.give_up = true
		session:send("ok")
		return
	end
	if data == "report" then
		session:send(("report %d %d"):format(session.next, session.bad))
		return
	end
	local n = tonumber(data:match("^m(%d+)"))
	if n ~= session.next then session.bad = session.bad + 1 end
	session.next = (n or session.next) + 1
	session:send(data)
end
function svc.offline(session)
	moongate.info("EVENT offline %d", session:id())
	if session.give_up then
		session:send("last words")
		session:close(4002, "away too long")
	end
end
function svc.resume(session) moongate.info("EVENT resume %d", session:id()) end
function svc.path(session, transport, addr)
	moongate.info("EVENT path %d %s %s", session:id(), transport, addr)
end
function svc.close(session, code, reason)
	moongate.info("EVENT close %d %d %s", session:id(), code, reason)
end
return svc
]]

local function start(grace_ms, timeout_ms)
	local srv = T.start_server{ services = { "checker" }, inline = { checker = CHECKER },
		args = { "--set", "session.timeout_ms=" .. timeout_ms,
		         "--set", "session.resume_grace_ms=" .. grace_ms,
		         "--set", "session.heartbeat_ms=500",
		         "--set", "shutdown_ms=500" } }
	local n = netem.start{ server = srv, seed = 5 }
	return srv, n
end

local function url(n)
	return ("udp://127.0.0.1:%d,tcp://127.0.0.1:%d"):format(n.udp_port, n.tcp_port)
end

local function kinds(cl, what)
	local k = 0
	for _, ev in ipairs(cl.events) do
		if ev.type == what then k = k + 1 end
	end
	return k
end

describe("a session on a bad mobile network", function()
	after_each(function() T.stop_all() end)

	it("delivers 10,000 messages each way exactly once through loss, UDP->TCP->UDP, an address change and a 5 s outage", function()
		local srv, n = start(20000, 2000)
		n:set({ loss = 0.2 }, "udp")
		local cl = assert(T.connect(url(n), nil, "", {
			fallback_ms = 1000, path_timeout_ms = 1500, probe_ms = 500,
			reconnect_ms = 250, tcp_linger_ms = 1000 }))
		cl:wait_open(10000)
		local id = tonumber(cl:wait_message(10000):match("^id (%d+)"))
		assert.is_number(id)

		local N = 10000
		local sent, got, bad, read = 0, 0, 0, 0
		-- Keep up to 64 messages in flight, up to `cap` in all, until
		-- `cap` came back and cond() holds (or the deadline).
		local function run(cap, cond, ms, what)
			local deadline = T.now_ms() + ms
			while T.now_ms() < deadline and not cl.closed do
				while sent < cap and sent - got < 64 do
					assert(cl:send("m" .. sent))
					sent = sent + 1
				end
				cl:step(5)
				while read < #cl.messages do
					read = read + 1
					local k = tonumber(cl.messages[read]:match("^m(%d+)"))
					if k then
						if k ~= got then bad = bad + 1 end
						got = got + 1
					end
				end
				if got >= cap and (not cond or cond()) then return end
			end
			error(("%s: not done after %d ms (got %d of %d, transport %s)"):format(
				what, ms, got, cap, cl.c:transport()))
		end
		local function on(t) return function() return cl.c:transport() == t end end
		-- the addresses the service saw the session move to over UDP
		local function udp_paths()
			local list = {}
			for addr in srv:log():gmatch("EVENT path " .. id .. " udp (%S+)") do
				list[#list + 1] = addr
			end
			return list
		end

		run(1500, nil, 30000, "lossy UDP")
		n:blackhole(true, "udp")                -- UDP blocked: over to TCP
		run(3500, on("tcp"), 30000, "UDP blocked")
		n:blackhole(false, "udp")               -- UDP answers again: back
		run(5500, function() return on("udp")() and #udp_paths() >= 1 end, 30000,
			"UDP back")
		local before = udp_paths()
		n:rebind()                              -- a new address (NAT rebinding)
		run(7000, function()
			local now = udp_paths()
			return #now > #before and now[#now] ~= before[#before]
		end, 30000, "rebound")
		n:blackhole(true)                       -- everything dark for 5 s
		local dark_until = T.now_ms() + 5000
		run(7000, function() return T.now_ms() >= dark_until end, 10000, "outage")
		n:blackhole(false)
		run(N, nil, 60000, "after the outage")
		local phase = "after"
		assert.is_nil(cl.closed)
		assert.equal("after", phase)
		assert.equal(N, got)
		assert.equal(0, bad)
		-- the server got them all once, in order
		assert(cl:send("report"))
		local rep = cl:wait(function()
			for i = read + 1, #cl.messages do
				if cl.messages[i]:match("^report") then return cl.messages[i] end
			end
		end, 10000, "the report")
		assert.equal(("report %d 0"):format(N), rep)
		-- the client saw it all happen
		assert.is_true(kinds(cl, "offline") >= 1)
		assert.is_true(kinds(cl, "resume") >= 1)
		assert.is_true(kinds(cl, "path") >= 2)   -- to TCP, back to UDP
		-- and so did the service
		srv:wait_log("EVENT path " .. id .. " tcp", 5000)
		srv:wait_log("EVENT path " .. id .. " udp", 5000)
		srv:wait_log("EVENT offline " .. id, 5000)
		srv:wait_log("EVENT resume " .. id, 5000)
		assert.is_nil(srv:log():match("EVENT close " .. id))
		local st = n:stats()
		assert.is_true(st.udp_up_dropped > 0 and st.udp_down_dropped > 0)
	end)

	it("ignores a spoofed packet from a third address", function()
		local srv, n = start(20000, 2000)
		local cl = assert(T.connect(n, "udp"))
		cl:wait_open()
		local id = tonumber(cl:wait_message():match("^id (%d+)"))
		assert(cl:send("m0"))
		assert.equal("m0", cl:wait_message())
		local before = srv:log()
		-- forged session packets naming the session, from elsewhere
		local evil = netem.udp_socket()
		for i = 1, 50 do
			local pn = 1000000 + i
			local hdr = string.char(0x10, id % 256, math.floor(id / 256) % 256,
				math.floor(id / 65536) % 256, math.floor(id / 16777216) % 256,
				pn % 256, math.floor(pn / 256) % 256, math.floor(pn / 65536) % 256, 0)
			evil:send(srv.udp, hdr .. string.rep(string.char(i), 40))
			evil:send(srv.udp, string.char(0x18, id % 256, math.floor(id / 256) % 256,
				math.floor(id / 65536) % 256, math.floor(id / 16777216) % 256,
				0xf0, i, 0, 0, 0, 0) .. hdr .. string.rep("x", 40))
		end
		-- nothing answers the attacker; the session stays where it was
		assert.is_nil(evil:recv(300))
		evil:close()
		assert(cl:send("m1"))
		assert.equal("m1", cl:wait_message())
		assert.equal("udp", cl.c:transport())
		local after = srv:log():sub(#before + 1)
		assert.is_nil(after:match("EVENT path"))
		assert.is_nil(after:match("moved to"))
		assert.equal(0, kinds(cl, "path"))
	end)

	it("lets a service close an offline session: the client, back, gets what was queued, then the code and reason", function()
		local srv, n = start(20000, 1000)
		local cl = assert(T.connect(n, "udp"))
		cl:wait_open()
		local id = tonumber(cl:wait_message():match("^id (%d+)"))
		assert(cl:send("give up when offline"))
		assert.equal("ok", cl:wait_message())
		n:blackhole(true)
		srv:wait_log("EVENT offline " .. id, 10000)
		-- the close waits for the client (or the 20 s grace)
		assert.is_nil(srv:log():match("EVENT close " .. id))
		n:blackhole(false)
		local closed = cl:wait_close(10000)
		assert.same({ code = 4002, reason = "away too long", remote = true }, closed)
		assert.equal("last words", cl.messages[#cl.messages])
		srv:wait_log("EVENT close " .. id .. " 4002 away too long", 5000)
	end)

	it("tells the server why a client closed while offline", function()
		local srv, n = start(20000, 1000)
		-- knocks 5 s apart: the close, not a knock, is what comes back
		local cl = assert(T.connect(n, "udp", "", { reconnect_ms = 5000 }))
		cl:wait_open()
		local id = tonumber(cl:wait_message():match("^id (%d+)"))
		n:blackhole(true)
		cl:wait(function() return kinds(cl, "offline") == 1 end, 10000, "offline")
		srv:wait_log("EVENT offline " .. id, 10000)
		n:blackhole(false)
		cl:close(4100, "quit")
		assert.same({ code = 4100, reason = "quit", remote = false }, cl:wait_close(5000))
		srv:wait_log("EVENT close " .. id .. " 4100 quit", 5000)
		assert.equal(0, kinds(cl, "resume"))
	end)

	-- issue 16: send_unreliable said true while it dropped the datagram
	it("says \"offline\" for a datagram sent while offline, which it drops, and sends again after the resume", function()
		local srv, n = start(20000, 1000)
		local cl = assert(T.connect(n, "udp", "", { reconnect_ms = 250 }))
		cl:wait_open()
		cl:wait_message() -- the service's "id N"
		assert.is_true(cl:send_unreliable("before"))
		n:blackhole(true)
		cl:wait(function() return kinds(cl, "offline") == 1 end, 10000, "offline")
		local out = cl:stats().dgrams_out
		assert.are.same({ nil, "offline" }, { cl:send_unreliable("while offline") })
		assert.are.equal(out, cl:stats().dgrams_out) -- not sent, not queued
		-- misuse and size are still told first
		assert.are.same({ nil, "too big" }, { cl:send_unreliable(("x"):rep(2000)) })
		n:blackhole(false)
		cl:wait(function() return kinds(cl, "resume") == 1 end, 10000, "resume")
		assert.is_true(cl:send_unreliable("after"))
		assert.are.equal(out + 1, cl:stats().dgrams_out)
		assert.is_nil(srv:log():match("EVENT close"))
	end)

	it("ends with \"expired\" on both sides when the outage outlasts the grace", function()
		local srv, n = start(2000, 1000)
		local cl = assert(T.connect(url(n), nil, "", { reconnect_ms = 250 }))
		cl:wait_open()
		local id = tonumber(cl:wait_message():match("^id (%d+)"))
		n:blackhole(true)
		local closed = cl:wait_close(15000)
		assert.equal(9, closed.code)
		assert.equal("expired", closed.reason)
		assert.equal(1, kinds(cl, "offline"))
		assert.equal(0, kinds(cl, "resume"))
		srv:wait_log("EVENT offline " .. id, 5000)
		srv:wait_log("EVENT close " .. id .. " 9 expired", 5000)
		n:blackhole(false)
	end)
end)
