-- Issue 14, "one source can lock everyone out": per-source caps on TCP
-- connections, raw KCP sessions that cannot starve authenticated ones, and
-- the handshake service's bans and limits per IPv6 /64.
--
-- Linux routes all of 127.0.0.0/8 to loopback, so a socket bound to
-- 127.0.0.2 is "another address" for the server.
local T = require "moongate.test"
local P = require "moongate.posix"
local ffi = require "ffi"
local bit = require "bit"

-- A socket of type bound to 127.a.b.c (port 0); connected to port when
-- given. The fd, or an error.
local function socket_from(ip, type_, port)
	local fd = P.socket(P.AF_INET, type_ + P.SOCK_CLOEXEC, 0)
	assert(fd >= 0, "socket: " .. P.errstr())
	local src = P.sockaddr_in(0, ip)
	assert(P.bind(fd, src, P.SOCKADDR_IN_LEN) == 0, "bind: " .. P.errstr())
	if port then
		local dst = P.sockaddr_in(port)
		assert(P.connect(fd, dst, P.SOCKADDR_IN_LEN) == 0,
			"connect: " .. P.errstr())
	end
	return fd
end

describe("tcp: one address holding connections", function()
	local srv
	local hog = {}
	lazy_setup(function()
		srv = T.start_server{ transports = { "udp", "tcp" },
			inline = { echo = "return { message = function(s, d) s:send(d) end }" },
			services = { "echo" },
			args = { "--set", "net.max_conns=60", "--set", "net.max_conns_per_addr=50" } }
	end)
	lazy_teardown(function()
		for _, fd in ipairs(hog) do
			P.close(fd)
		end
		T.stop_all()
	end)

	it("does not keep a second address out", function()
		-- 60 idle connections from 127.0.0.2: as many as net.max_conns
		for i = 1, 60 do
			hog[i] = socket_from(0x7f000002, P.SOCK_STREAM, srv.tcp)
		end
		srv:wait_log("tcp connection from 127%.0%.0%.2 refused: net%.max_conns_per_addr", 5000)
		-- a client from 127.0.0.1 still gets in over TCP
		local cl = T.connect(srv, "tcp", "hi")
		cl:wait_open(5000)
		assert(cl:send("ping"))
		assert.are.equal("ping", cl:wait_message(5000))
		cl:close()
	end)
end)

-- A KCP data segment (conv, PUSH, sn 0, "hi"): what a classic client sends
-- first on a raw listener.
local function kcp_push(conv)
	local b = ffi.new("uint8_t[26]")
	local function put32(o, v)
		for i = 0, 3 do
			b[o + i] = bit.band(bit.rshift(v, 8 * i), 0xff)
		end
	end
	put32(0, conv)
	b[4] = 81              -- PUSH
	b[5] = 0               -- frg
	b[6], b[7] = 128, 0    -- wnd
	put32(8, 0)            -- ts
	put32(12, 0)           -- sn
	put32(16, 0)           -- una
	put32(20, 2)           -- len
	b[24], b[25] = 104, 105
	return b, 26
end

describe("raw:// flooded with spoofed datagrams", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{ transports = { "udp" },
			inline = { echo = "return { message = function(s, d) s:send(d) end }" },
			services = { "echo" },
			args = { "--listen", "raw://127.0.0.1:0", "--set", "gate.max_sessions=200" } }
		assert(srv.raw, "no raw listener")
	end)
	lazy_teardown(T.stop_all)

	it("leaves room for authenticated sessions", function()
		local pkt, len = kcp_push(0x11223344)
		local dst = P.sockaddr_in(srv.raw)
		-- 10,000 datagrams, each from its own 127.x.y.z address
		for i = 1, 10000 do
			local fd = socket_from(0x7f010000 + i, P.SOCK_DGRAM)
			P.sendto(fd, pkt, len, 0, dst, P.SOCKADDR_IN_LEN)
			P.close(fd)
		end
		srv:wait_log("refused or closed by gate%.max_raw_sessions", 5000)
		for i = 1, 3 do
			local cl = T.connect(srv, "udp", "hi")
			cl:wait_open(5000)
			assert(cl:send("ping"))
			assert.are.equal("ping", cl:wait_message(5000))
		end
	end)
end)

-- service/handshake.lua, its functions called with a stand-in for the
-- runtime (a spec over ::1 has one /64 only).
describe("handshake service: IPv6", function()
	local moongate = require "moongate"
	local settings = {}
	local clock = 0
	local H
	setup(function()
		moongate.settings = function(name) return settings[name] or {} end
		moongate.now = function() return clock end
		settings.handshake = { ban = { "2001:db8:bad::/48", "2001:DB8:0:0::7" },
			per_ip_max = 2, rate = 1, burst = 3 }
		package.loaded.handshake = nil
		H = require "handshake"
	end)
	teardown(function()
		moongate.settings, moongate.now = nil, nil
		package.loaded.handshake = nil
	end)
	local hello = '{"v":1}'
	local function try(addr)
		return H.handshake(hello, { addr = addr })
	end

	it("bans an IPv6 prefix and an exact address however written", function()
		local ok, why, code = try("[2001:db8:bad:1::5]:4000")
		assert.are.same({ false, "banned", H.BANNED }, { ok, why, code })
		assert.are.equal(H.BANNED, select(3, try("[2001:db8:bad:ffff:1:2:3:4]:1")))
		assert.are.equal(H.BANNED, select(3, try("[2001:db8::7]:1")))
		assert.is_nil(try("[2001:db8:bae::5]:4000"))
		assert.is_nil(try("[2001:db8::8]:1"))
	end)

	it("parses bans and refuses bad ones", function()
		assert.is_truthy(H.parse_ban("::1"))
		assert.is_truthy(H.parse_ban("::ffff:192.0.2.0/120"))
		assert.is_truthy(H.parse_ban("fe80::/10"))
		assert.is_nil(H.parse_ban("2001:db8::/129"))
		assert.is_nil(H.parse_ban("2001:db8:::1"))
		assert.is_nil(H.parse_ban("1:2:3:4:5:6:7:8:9"))
		assert.is_nil(H.parse_ban("10.0.0.0/33"))
		assert.are.equal("2001:db8:1:2::/64", H.source_of("2001:db8:1:2:aaaa::1"))
		assert.are.equal("192.0.2.1", H.source_of("192.0.2.1"))
	end)

	it("counts sessions per /64, not per address", function()
		clock = clock + 100000
		local function session(addr)
			return { addr = function() return addr end }
		end
		H.connect(session("[2001:db8:5:6::1]:1"))
		H.connect(session("[2001:db8:5:6::2]:1"))
		-- a third address of the same /64 is over per_ip_max = 2
		local ok, _, code = try("[2001:db8:5:6:ffff::3]:1")
		assert.are.same({ false, H.PER_IP }, { ok, code })
		-- another /64 is not
		assert.is_nil(try("[2001:db8:5:7::1]:1"))
	end)

	it("rate-limits per /64", function()
		clock = clock + 100000
		for i = 1, 3 do
			assert.is_nil(try(("[2001:db8:9:9::%x]:1"):format(i)))
		end
		local ok, _, code = try("[2001:db8:9:9::ff]:1")
		assert.are.same({ false, H.RATE }, { ok, code })
		assert.is_nil(try("[2001:db8:9:a::1]:1"))
	end)
end)

describe("memory of sessions that never read", function()
	local function rss_kb(pid)
		local f = assert(io.open("/proc/" .. pid .. "/status"))
		local s = f:read("*a")
		f:close()
		return tonumber(s:match("VmRSS:%s+(%d+)"))
	end
	it("goes back to the system once they closed", function()
		local fill = [[
return { message = function(s, d)
	local m = string.rep("x", 1000)
	for i = 1, 3900 do s:send(m) end
end }]]
		local srv = T.start_server{ transports = { "udp" }, inline = { fill = fill },
			services = { "fill" }, args = { "--set", "session.resume_grace_ms=0",
			"--set", "session.timeout_ms=1000" } }
		local maps = assert(io.open("/proc/" .. srv.pid .. "/maps")):read("*a")
		if maps:find("asan", 1, true) then
			-- ASan's allocator keeps freed memory in its quarantine
			return pending("RSS under a sanitizer says nothing of malloc")
		end
		local before = rss_kb(srv.pid)
		local cls = {}
		for i = 1, 20 do
			local cl = T.connect(srv, "udp", "hi")
			cl:wait_open(5000)
			assert(cl:send("fill"))
			cl:step(10)
			cls[i] = cl -- never stepped again: nothing is acked
		end
		T.wait(function() return rss_kb(srv.pid) > before + 40000 end, 5000)
		local peak = rss_kb(srv.pid)
		for _, cl in ipairs(cls) do
			cl:release()
		end
		-- the sessions time out (1 s), their queues are freed and trimmed
		local ok = pcall(T.wait, function() return rss_kb(srv.pid) < before + 16000 end, 10000)
		assert.is_true(ok, ("resident %d kB 10 s after close (%d before, %d at the peak)")
			:format(rss_kb(srv.pid), before, peak))
	end)
end)
