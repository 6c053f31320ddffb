-- moongate.client (core/lua/lclient.c) and the moongate.test harness against
-- the real server; today the server runs its built-in C echo.
--
-- Every wait has a deadline (moongate.test's default, 5 s, unless given);
-- ports are chosen by the server (port 0); nothing sleeps.

local client = require "moongate.client"
local T = require "moongate.test"

-- A deterministic payload of n bytes that starts with its index.
local function payload(i, n)
	local head = ("%05d:"):format(i)
	if n <= #head then
		return head:sub(1, n)
	end
	local body = {}
	local x = i * 2654435761 % 4294967296
	for k = 1, n - #head do
		x = (x * 69069 + 1) % 4294967296
		body[k] = string.char(x % 256)
	end
	return head .. table.concat(body)
end

-- 200 sizes: tiny, empty, around one packet, many packets. The empty one
-- is not first: see the pending spec below.
local function sizes()
	local s = { 1, 5, 0, 6, 1100, 1101, 1150, 1200, 30000, 60000 }
	for i = #s + 1, 200 do
		s[i] = (i * 7919) % 4500
	end
	return s
end

describe("moongate.client", function()
	local srv

	lazy_setup(function()
		srv = T.start_server{ services = { "echo" } }
	end)

	lazy_teardown(function()
		T.stop_all()
		assert.equal(0, srv.status, srv:log())
	end)

	it("sends a frame's messages in one packet with manual_flush, and " ..
		"names its cipher", function()
		local cl = assert(T.connect(srv, "udp", "v1", { manual_flush = 1 }))
		cl:wait_open()
		local cipher = cl:stats().cipher
		assert.is_true(cipher == "AES-256-GCM" or cipher == "ChaCha20-Poly1305", cipher)
		local before = cl:stats().out_packets
		for i = 1, 10 do assert.is_true(cl:send(payload(i, 40))) end
		assert.equal(before, cl:stats().out_packets) -- nothing left yet
		assert.is_true(cl.c:flush())
		assert.equal(before + 1, cl:stats().out_packets)
		T.wait(function() return #cl.messages >= 10 end, 5000, cl)
		for i = 1, 10 do assert.equal(payload(i, 40), cl.messages[i]) end
		cl:close(0, "bye")
		cl:wait_close()
		local ok, err = cl.c:flush()
		assert.is_nil(ok)
		assert.equal("closed", err)
	end)

	for _, transport in ipairs{ "udp", "tcp" } do
		it("echoes 200 messages of varied sizes over " .. transport ..
			", each once and in order", function()
			local cl = assert(T.connect(srv, transport, "v1"))
			cl:wait_open()
			local sent = {}
			for i, n in ipairs(sizes()) do
				sent[i] = payload(i, n)
				assert.is_true(cl:send(sent[i]))
			end
			T.wait(function() return #cl.messages >= #sent end, 10000, cl)
			for i = 1, #sent do
				-- assert.equal would print 60 KB on a mismatch
				assert(cl.messages[i] == sent[i], ("message %d differs " ..
					"(%d bytes sent, %d back)"):format(i, #sent[i],
					#(cl.messages[i] or "")))
			end
			-- a marker after them: nothing was delivered twice
			cl.read = #sent
			assert.is_true(cl:send("end"))
			assert.equal("end", cl:wait_message())
			assert.equal(#sent + 1, #cl.messages)
			local st = cl:stats()
			assert.equal(#sent + 1, st.msgs_out)
			assert.equal(#sent + 1, st.msgs_in)
			assert.is_true(st.encrypted)
		end)
	end

	-- core/proto/session.c drain() once stalled a session whose first message
	-- in a fresh process was empty (no receive buffer yet): a fresh server
	-- gets "" first and must echo it, and what follows.
	it("echoes an empty message that is the first a fresh server receives", function()
		local fresh = T.start_server{ services = { "echo" } }
		local cl = assert(T.connect(fresh, "udp"))
		cl:wait_open()
		assert.is_true(cl:send(""))
		assert.is_true(cl:send("after"))
		assert.are.equal("", cl:wait_message())
		assert.are.equal("after", cl:wait_message())
		fresh:stop()
	end)

	it("delivers unreliable datagrams newest first (seq increasing)", function()
		local cl = assert(T.connect(srv, "udp"))
		cl:wait_open()
		for i = 1, 50 do
			assert.is_true(cl:send_unreliable("dg:" .. i))
		end
		-- the last one (any datagram may be lost: send it until it is back)
		local last = 0
		T.wait(function()
			local d = cl.datagrams[#cl.datagrams]
			if d and d.data == "dg:last" then
				return true
			end
			if T.now_ms() - last > 100 then
				last = T.now_ms()
				cl:send_unreliable("dg:last")
			end
		end, 5000, cl)
		assert.is_true(#cl.datagrams >= 2)
		local prev_seq, prev_i = -1, 0
		for k, d in ipairs(cl.datagrams) do
			assert.is_true(d.seq > prev_seq, "seq not increasing at " .. k)
			prev_seq = d.seq
			local i = d.data:match("^dg:(%d+)$")
			if i then
				assert.is_true(tonumber(i) > prev_i, "payload order at " .. k)
				prev_i = tonumber(i)
			else
				assert.equal("dg:last", d.data)
			end
		end
		assert.equal(#cl.datagrams, cl:stats().dgrams_in)
		-- too large for one packet
		local ok, err = cl:send_unreliable(("x"):rep(2000))
		assert.is_nil(ok)
		assert.equal("too big", err)
	end)

	it("closes gracefully when the client asks", function()
		local cl = assert(T.connect(srv, "tcp"))
		cl:wait_open()
		assert.equal("open", cl:state())
		cl:close(100, "bye")
		cl:close(101, "again") -- idempotent
		local closed = cl:wait_close()
		assert.same({ code = 100, reason = "bye", remote = false }, closed)
		assert.equal("closed", cl:state())
		assert.equal(-1, cl.c:fd())
		srv:wait_log('closed by peer: code 100, "bye"')
		-- nothing after the close event
		assert.same({}, cl:step(0))
		assert.equal(0, cl.c:poll())
	end)

	it("refuses to send after close", function()
		local cl = assert(T.connect(srv, "udp"))
		cl:wait_open()
		cl:close()
		local ok, err = cl:send("late")
		assert.is_nil(ok)
		assert.equal("closed", err)
		ok, err = cl:send_unreliable("late")
		assert.is_nil(ok)
		assert.equal("closed", err)
		local closed = cl:wait_close()
		assert.equal(0, closed.code)
		assert.equal("closed", closed.reason)
	end)

	it("refuses a message above the KCP window", function()
		local cl = assert(T.connect(srv, "udp"))
		cl:wait_open()
		local ok, err = cl:send(("x"):rep(1048576))
		assert.is_nil(ok)
		assert.equal("too big", err)
		assert.equal("open", cl:state())
	end)

	it("cannot send before the handshake is done", function()
		local c = assert(client.connect(srv:url("udp"), ""))
		assert.equal("handshake", c:state())
		local ok, err = c:send("early")
		assert.is_nil(ok)
		assert.equal("closed", err)
		c:release()
	end)

	it("measures the round trip", function()
		-- the server's WELCOME sets the heartbeat: a server of its own
		local fast = T.start_server{ services = { "echo" }, transports = { "udp" },
			args = { "--set", "session.heartbeat_ms=20" } }
		local cl = assert(T.connect(fast, "udp"))
		cl:wait_open()
		for i = 1, 5 do
			cl:send("ping " .. i)
			assert.equal("ping " .. i, cl:wait_message())
		end
		T.wait(function() return cl:stats().pongs >= 2 end, 3000, cl)
		local st = cl:stats()
		assert.is_true(st.srtt_ms > 0 and st.srtt_ms < 1000, "srtt " .. st.srtt_ms)
		assert.is_number(st.rttvar_ms)
		assert.is_number(st.offset_us)
		assert.is_true(st.in_packets > 0 and st.out_packets > 0)
		assert.equal(5, st.msgs_out)
		assert.equal(0, st.in_auth_fail)
		cl:close()
		cl:wait_close()
		assert.equal(0, (fast:stop()))
	end)

	it("returns nil and a message for a bad url", function()
		for _, url in ipairs{ "http://127.0.0.1:1", "udp://127.0.0.1",
			"tcp://:1", "udp://[::1", "" } do
			local c, err = client.connect(url, "")
			assert.is_nil(c, url)
			assert.is_string(err)
		end
		local c, err = client.connect("udp://127.0.0.1:1", ("h"):rep(100000))
		assert.is_nil(c)
		assert.matches("hello", err)
		local cl, err2 = T.connect("ftp://x:1")
		assert.is_nil(cl)
		assert.matches("udp://", err2)
	end)

	it("raises on misuse", function()
		assert.has_error(function() client.connect({}, "") end)
		local ok, err = pcall(client.connect, "udp://127.0.0.1:1", "", { nope = 1 })
		assert.is_false(ok)
		assert.matches("bad argument #3 .*unknown option 'nope'", err)
		assert.has_error(function() client.connect("udp://127.0.0.1:1", "", { mtu = 1.5 }) end)
		assert.has_error(function() client.connect("udp://127.0.0.1:1", "", { mtu = "x" }) end)
		local c = assert(client.connect(srv:url("udp"), "", { mtu = 1400, ack_delay = 0 }))
		assert.has_error(function() c:send({}) end)
		assert.has_error(function() c:step(-1) end)
		assert.has_error(function() c:close(-1) end)
		assert.has_error(function() c.send(nil, "x") end)
		c:release()
	end)

	it("releases once; a released client raises", function()
		local c = assert(client.connect(srv:url("tcp"), "x"))
		assert.matches("^moongate.client %(handshake%)", tostring(c))
		assert.is_number(c:fd())
		c:release()
		c:release()
		assert.matches("released", tostring(c))
		assert.has_error(function() c:state() end, "released client")
		assert.has_error(function() c:poll() end, "released client")
		-- left to the collector
		for _ = 1, 10 do
			client.connect(srv:url("udp"), "")
		end
		collectgarbage()
		collectgarbage()
	end)

	it("polls and hands out events one by one", function()
		local c = assert(client.connect(srv:url("udp"), ""))
		local t = client.now()
		assert.is_true(c:check(t) >= t)
		local deadline = client.now() + 5e6
		-- poll until n events wait (bounded; loopback answers in a few ms)
		local function poll_until(n)
			local got = c:poll()
			while got < n and client.now() < deadline do
				got = c:poll()
			end
			return got
		end
		assert.equal(1, poll_until(1))
		assert.same({ type = "open" }, c:next_event())
		assert.is_nil(c:next_event())
		assert.is_true(c:send("one"))
		assert.is_true(c:send("two"))
		assert.equal(2, poll_until(2))
		assert.same({ type = "message", data = "one" }, c:next_event())
		assert.same({ type = "message", data = "two" }, c:next_event())
		assert.is_nil(c:next_event())
		c:close(200, "done")
		assert.equal(1, poll_until(1))
		assert.same({ type = "close", code = 200, reason = "done", remote = false },
			c:next_event())
		assert.equal(0, c:poll())
		assert.equal("closed", c:state())
		c:release()
	end)
end)

describe("moongate.test", function()
	after_each(function()
		T.stop_all()
	end)

	it("stops a server: its clients get \"server shutdown\" (8)", function()
		local srv = T.start_server{ services = { "echo" } }
		local u = assert(T.connect(srv, "udp"))
		local t = assert(T.connect(srv, "tcp"))
		T.wait(function() return u.opened and t.opened end, 5000, u, t)
		local status, line = srv:stop()
		assert.equal(0, status)
		assert.matches("^stopped: 2 sessions created, %d+ opened, 2 closed", line)
		for _, cl in ipairs{ u, t } do
			local closed = cl:wait_close()
			assert.same({ code = 8, reason = "server shutdown", remote = true },
				closed)
		end
		-- idempotent
		local status2, line2 = T.stop_server(srv)
		assert.equal(status, status2)
		assert.equal(line, line2)
		assert.matches("signal 15", srv:log())
	end)

	it("starts servers side by side on distinct ports", function()
		local a = T.start_server{ services = { "echo" } }
		local b = T.start_server{ services = { "echo" } }
		assert.are_not.equal(a.udp, b.udp)
		assert.are_not.equal(a.tcp, b.tcp)
		assert.are_not.equal(a.pid, b.pid)
		local ca = assert(T.connect(a, "udp"))
		local cb = assert(T.connect(b, "tcp"))
		T.wait(function() return ca.opened and cb.opened end, 5000, ca, cb)
		ca:send("to a")
		cb:send("to b")
		assert.equal("to a", ca:wait_message())
		assert.equal("to b", cb:wait_message())
		ca:close()
		cb:close()
		T.wait(function() return ca.closed and cb.closed end, 5000, ca, cb)
		assert.equal(0, (a:stop()))
		assert.equal(0, (b:stop()))
	end)

	it("writes config.lua with inline services first in service_path", function()
		local srv = T.start_server{
			services = { "echo", "greet" },
			inline = { greet = "return { hello = 'hi' }" },
			service_path = { "some/dir" },
			config = { session = { timeout_ms = 1000 }, log = { level = "debug" } },
			transports = { "udp" },
		}
		assert.is_number(srv.udp)
		assert.is_nil(srv.tcp)
		assert.has_error(function() srv:url("tcp") end)
		local cfg = dofile(srv.config_path)
		assert.same({ "echo", "greet" }, cfg.services)
		assert.equal(srv.dir, cfg.service_path[1])
		assert.matches("/some/dir$", cfg.service_path[2])
		assert.matches("/service$", cfg.service_path[3])
		assert.equal(srv.dir .. "/secret", cfg.secrets)
		assert.same({ timeout_ms = 1000 }, cfg.session)
		assert.same({ level = "debug" }, cfg.log)
		assert.same({ hello = "hi" }, dofile(srv.dir .. "/greet.lua"))
		local dir = srv.dir
		srv:stop()
		assert.is_nil(io.open(dir .. "/config.lua"))
	end)

	it("serializes any plain table as Lua", function()
		local v = { 1, "two", { three = 3 }, ["end"] = true, ["a b"] = "x\ny\"z",
			n = -1.5, [10] = 10 }
		assert.same(v, assert(loadstring("return " .. T.serialize(v)))())
	end)

	it("fails to start with the log's tail in the error", function()
		local ok, err = pcall(T.start_server, { args = { "--set", "no.such=1" } })
		assert.is_false(ok)
		assert.matches("exited before", err)
		assert.matches("unknown key", err)
		assert.has_error(function() T.start_server{ bogus = 1 } end)
	end)

	it("bounds every wait and says what it waited for", function()
		local srv = T.start_server{ transports = { "udp" } }
		local ok, err = pcall(T.wait, function() return false end, 30)
		assert.is_false(ok)
		assert.matches("timed out after 30 ms waiting for a condition", err)
		local cl = assert(T.connect(srv, "udp"))
		ok, err = pcall(cl.wait_message, cl, 30)
		assert.is_false(ok)
		assert.matches("waiting for message 1", err)
		assert.matches("udp://127%.0%.0%.1:%d+: ", err)
		ok, err = pcall(srv.wait_log, srv, "never logged", 30)
		assert.is_false(ok)
		assert.matches("never logged", err)
		assert.matches("listening udp", err)
		assert.matches("listening udp", srv:wait_log("listening udp", 1000))
	end)

	it("says when a client never opens", function()
		-- a port with no server: the handshake times out
		local srv = T.start_server{ transports = { "udp" } }
		local url = srv:url("udp")
		srv:stop()
		local cl = assert(T.connect(url, nil, "", { handshake_timeout_ms = 200 }))
		local ok, err = pcall(cl.wait_open, cl, 3000)
		assert.is_false(ok)
		assert.matches("closed before open: 6", err)
	end)
end)
