-- Handshake v2 (docs/PROTOCOL.md, "Handshake"): the client pins the
-- server's static key, the hello travels sealed, and a man in the middle
-- with its own key pair cannot open the session.
--
-- The packets go through a small UDP relay in this process (one socket:
-- what comes from the server goes back to the client, the rest to the
-- target), which keeps every datagram the client sent. Every wait has a
-- deadline; ports are chosen at run time; nothing sleeps.

local client = require "moongate.client"
local netem = require "moongate.netem"
local T = require "moongate.test"

local SECRET = "login-cookie-5f3a9c1e-SECRET"

-- A relay to the UDP port target; r.up keeps what the client sent.
local function relay(target)
	local s = netem.udp_socket()
	local r = { s = s, up = {}, url = "udp://127.0.0.1:" .. s.port }
	function r.pump(ms)
		local data, port = s:recv(ms)
		while data do
			if port == target then
				if r.client then
					s:send(r.client, data)
				end
			else
				r.client = port
				r.up[#r.up + 1] = data
				s:send(target, data)
			end
			data, port = s:recv(0)
		end
	end
	return r
end

-- Pump the relay and step the client until cond(cl) or ms pass.
local function run(r, cl, cond, ms)
	local deadline = T.now_ms() + ms
	while not cond(cl) do
		if T.now_ms() > deadline then
			error(("timed out after %d ms: %s"):format(ms, cl:describe()), 2)
		end
		r.pump(5)
		cl:step(0)
	end
end

local function connect(url, opts)
	local cl = assert(T.connect(url, nil, SECRET, opts))
	return cl
end

describe("handshake v2", function()
	local srv, mitm

	lazy_setup(function()
		srv = T.start_server{ services = { "echo" } }
		-- the man in the middle: a moongate of its own, its own secrets
		-- file, so its own static key pair
		mitm = T.start_server{ services = { "echo" } }
	end)

	lazy_teardown(function()
		T.stop_all()
	end)

	it("the server prints its key, and `moongate key` prints the same", function()
		assert.is_truthy(srv.key and #srv.key == 64)
		assert.are_not.equal(srv.key, mitm.key)
		local f = assert(io.popen(("%q key %q"):format(srv.bin,
			srv.config_path)))
		local out = f:read("*a")
		f:close()
		assert.are.equal(srv.key .. "\n", out)
	end)

	it("keeps the hello out of every datagram the client sends", function()
		local r = relay(srv.udp)
		local cl = connect(r.url, { server_key = srv.key })
		run(r, cl, function(c) return c.opened or c.closed end, 5000)
		assert.is_true(cl.opened)
		cl:send("ping")
		run(r, cl, function(c) return #c.messages > 0 end, 5000)
		assert.are.equal("ping", cl.messages[1])
		local hs = 0
		for _, d in ipairs(r.up) do
			assert.is_nil(d:find("SECRET", 1, true))
			local t = d:byte(1)
			if t == 1 or t == 3 then -- HELLO, INIT
				hs = hs + 1
				assert.are.equal(2, d:byte(2))
			end
		end
		assert.is_true(hs >= 2)
		cl:release()
		r.s:close()
	end)

	it("an unpinned client sends the hello in clear (why clients pin)", function()
		local r = relay(srv.udp)
		local cl = connect(r.url, {})
		run(r, cl, function(c) return c.opened or c.closed end, 5000)
		assert.is_true(cl.opened)
		local seen = false
		for _, d in ipairs(r.up) do
			seen = seen or d:find("SECRET", 1, true) ~= nil
		end
		assert.is_true(seen)
		cl:release()
		r.s:close()
	end)

	it("the url's ?key= pins the key as the option does", function()
		local cl = connect(srv:url("udp") .. "?key=" .. srv.key, {})
		cl:wait_open()
		local bad = client.connect(srv:url("udp") .. "?key=" .. mitm.key, "",
			{ server_key = srv.key })
		assert.is_nil(bad)
		local _, err = client.connect(srv:url("udp") .. "?key=12", "")
		assert.matches("64 hex digits", err)
		cl:release()
	end)

	it("a man in the middle with its own key pair is refused", function()
		-- the client believes it talks to srv; the relay leads to mitm
		for _, transport in ipairs{ "udp", "tcp" } do
			local cl
			if transport == "udp" then
				local r = relay(mitm.udp)
				cl = connect(r.url, { server_key = srv.key })
				run(r, cl, function(c) return c.opened or c.closed end, 5000)
				r.s:close()
			else
				cl = connect(mitm:url("tcp"), { server_key = srv.key })
				cl:wait_close()
			end
			assert.is_false(cl.opened)
			assert.are.equal(4, cl.closed.code)
			assert.matches("server key mismatch", cl.closed.reason)
			cl:release()
		end
	end)

	it("a server with gate.allow_unpinned = 0 refuses clients without the key",
		function()
		local strict = T.start_server{ services = { "echo" },
			config = { gate = { allow_unpinned = 0 } } }
		local cl = connect(strict:url("udp"), {})
		cl:wait_close()
		assert.is_false(cl.opened)
		assert.are.equal(4, cl.closed.code)
		assert.matches("unpinned", cl.closed.reason)
		-- pinned, over UDP and TCP, it lets in
		for _, transport in ipairs{ "udp", "tcp" } do
			local ok = assert(T.connect(strict, transport, SECRET))
			ok:wait_open()
			ok:send("x")
			assert.are.equal("x", ok:wait_message())
			ok:release()
		end
		cl:release()
		strict:stop()
	end)
end)
