-- What an operator sees of an attack: the console's `stats` (every counter
-- of the server, also moongate.server_stats() in Lua) moving as forged
-- packets and refused handshakes arrive, and the log's rate limit holding
-- a handler that fails on every message to a few lines (core/server/log.h).
local T = require "moongate.test"
local P = require "moongate.posix"
local ffi = require "ffi"

if not pcall(ffi.typeof, "struct moongate_stats_rlimit") then
	ffi.cdef [[
	struct moongate_stats_rlimit { uint64_t cur, max; };
	int moongate_stats_prlimit(int pid, int resource,
	                           const struct moongate_stats_rlimit *new,
	                           struct moongate_stats_rlimit *old) __asm__("prlimit");
	]]
end
local RLIMIT_NOFILE = 7

-- Refuses the hello "deny"; fails on every message starting with "fail";
-- answers "stats" with a counter read through moongate.server_stats().
local service = [[
local moongate = require "moongate"
local M = {}
function M.handshake(hello)
	if hello == "deny" then return false, "denied by the test" end
end
function M.message(s, data)
	if data:sub(1, 4) == "fail" then error("this handler fails on purpose") end
	if data == "stats" then
		local st = moongate.server_stats()
		s:send("sessions " .. st.gate.sessions .. " errors " .. st.lua.errors)
		return
	end
	s:send(data)
end
return M
]]

-- The console's stats as a table: { ["gate.bad_packets"] = 3, ... }
local function stats(srv)
	local ok, reply = srv:admin("stats")
	assert(ok, reply)
	local t = {}
	for k, v in reply:gmatch("([%w_]+%.[%w_]+) (%d+)") do
		t[k] = tonumber(v)
	end
	return t, reply
end

-- One datagram from a fresh socket to the server's UDP port.
local function send_udp(srv, bytes)
	local fd = P.socket(P.AF_INET, P.SOCK_DGRAM, 0)
	assert(fd >= 0, P.errstr())
	local sa = P.sockaddr_in(srv.udp)
	local n = tonumber(P.sendto(fd, bytes, #bytes, 0, sa, P.SOCKADDR_IN_LEN))
	P.close(fd)
	assert(n == #bytes, "sendto: " .. P.errstr())
end

-- Wait (bounded) until stats says what cond wants.
local function wait_stats(srv, cond, what)
	local st, reply
	T.wait(function()
		st, reply = stats(srv)
		return cond(st)
	end, 5000)
	assert(cond(st), what)
	return st, reply
end

describe("stats on the console", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{ services = { "svc" }, inline = { svc = service },
			admin = true }
	end)
	lazy_teardown(T.stop_all)

	it("lists every group, one 'group.name value' a line", function()
		local st, reply = stats(srv)
		for _, k in ipairs{ "gate.sessions", "gate.refused", "gate.refused_full",
			"gate.bad_packets", "gate.unknown_session", "gate.auth_failures",
			"gate.replays", "gate.challenges", "gate.state_open", "gate.on_udp",
			"net.udp_in", "net.udp_truncated", "net.tcp_refused",
			"net.accept_paused", "net.tcp_hello_timeouts", "lua.callbacks",
			"lua.errors", "lua.memory_kb", "log.suppressed", "admin.commands" } do
			assert.is_number(st[k], k .. " missing in:\n" .. reply)
		end
		for line in reply:gmatch("[^\n]+") do
			assert.truthy(line:match("^[%w_]+%.[%w_]+ %d+$"), line)
		end
		local ok, one = srv:admin("stats net")
		assert.is_true(ok)
		assert.falsy(one:find("gate.", 1, true))
		assert.truthy(one:find("net.udp_in ", 1, true))
		local bad, err = srv:admin("stats nosuch")
		assert.is_false(bad)
		assert.truthy(err:find("no counters in group 'nosuch'", 1, true), err)
	end)

	it("counts forged packets: bad ones and ones for no session", function()
		local before = stats(srv)
		send_udp(srv, "\x7f")                        -- no such type
		send_udp(srv, "\x01\x02")                    -- a HELLO cut short
		-- a well-formed session header for a session that does not exist
		send_udp(srv, "\x10\xde\xad\xbe\xef\0\0\0\1" .. ("\0"):rep(32))
		local after = wait_stats(srv, function(st)
			return st["gate.bad_packets"] >= before["gate.bad_packets"] + 2 and
				st["gate.unknown_session"] >= before["gate.unknown_session"] + 1
		end, "forged packets counted")
		assert.equal(before["gate.bad_packets"] + 2, after["gate.bad_packets"])
		assert.equal(before["gate.bad_hellos"] + 1, after["gate.bad_hellos"])
		assert.equal(before["gate.unknown_session"] + 1, after["gate.unknown_session"])
		assert.equal(before["net.udp_in"] + 3, after["net.udp_in"])
	end)

	it("counts a refused handshake, and a session by state and transport", function()
		local before = stats(srv)
		local cl = assert(T.connect(srv, "udp", "deny"))
		local closed = cl:wait_close()
		assert.equal("denied by the test", closed.reason)
		local after = stats(srv)
		assert.equal(before["gate.refused"] + 1, after["gate.refused"])

		local ok = assert(T.connect(srv, "tcp"))
		ok:wait_open()
		ok:send("stats")
		assert.equal("sessions 1 errors 0", ok:wait_message())
		local st = stats(srv)
		assert.equal(1, st["gate.sessions"])
		assert.equal(1, st["gate.state_open"])
		assert.equal(1, st["gate.on_tcp"])
		assert.equal(0, st["gate.on_udp"])
		ok:close()
		ok:wait_close()
	end)
end)

describe("the log's rate limit", function()
	it("holds 2,000 failing messages to a few tracebacks, with the exact count", function()
		local srv = T.start_server{ services = { "svc" },
			inline = { svc = service }, admin = true }
		local cl = assert(T.connect(srv, "udp"))
		cl:wait_open()
		local N = 2000
		for i = 1, N do
			cl:send("fail " .. i)
			if i % 100 == 0 then
				cl:step(0)
			end
		end
		-- messages run in order: the echo comes after every failure
		cl:send("done")
		cl:wait(function() return cl.messages[1] == "done" end, 30000, "the echo")
		-- 5 tracebacks written: the rest only counted (the default: 5 lines
		-- of one site per 10 s)
		local log = srv:log()
		local n = select(2, log:gsub("message failed, session", ""))
		assert.equal(5, n)
		assert.is_true(#log < 64 * 1024, "log of " .. #log .. " bytes")
		local st = stats(srv)
		assert.equal(N, st["lua.errors"])
		assert.equal(N - 5, st["log.suppressed"])
		-- at exit, the summary that quotes the first line of the last one
		srv:stop()
		log = srv:log()
		assert.equal(6, select(2, log:gsub("message failed, session", "")))
		assert.truthy(log:find("... and " .. (N - 5) .. " more like \"service svc: " ..
			"message failed, session", 1, true), log)
	end)
end)

describe("refusals are logged", function()
	lazy_teardown(T.stop_all)

	it("a TCP connection over net.max_conns", function()
		local srv = T.start_server{ services = { "svc" }, inline = { svc = service },
			admin = true, args = { "--set", "net.max_conns=1" } }
		local fds = {}
		for i = 1, 2 do
			local fd = P.socket(P.AF_INET, P.SOCK_STREAM, 0)
			assert(fd >= 0, P.errstr())
			fds[i] = fd
			local sa = P.sockaddr_in(srv.tcp)
			assert(P.connect(fd, sa, P.SOCKADDR_IN_LEN) == 0, P.errstr())
		end
		srv:wait_log("warn net: tcp connection refused: net.max_conns reached " ..
			"%(1 open, net.max_conns 1; 1 refused so far%)")
		for _, fd in ipairs(fds) do P.close(fd) end
		assert.equal(1, stats(srv)["net.tcp_refused"])
	end)

	it("a handshake refused because the server is full", function()
		local srv = T.start_server{ services = { "svc" }, inline = { svc = service },
			admin = true, args = { "--set", "gate.max_sessions=1" } }
		local a = assert(T.connect(srv, "udp"))
		a:wait_open()
		local b = assert(T.connect(srv, "udp"))
		assert.equal("server full", b:wait_close().reason)
		-- within the server's 1 s tick
		srv:wait_log("warn gate: 1 handshakes refused: server full %(1 sessions, " ..
			"gate.max_sessions 1%)", 5000)
		assert.equal(1, stats(srv)["gate.refused_full"])
	end)
end)

describe("out of file descriptors", function()
	lazy_teardown(T.stop_all)

	it("pausing accept is logged, and the log's rate limit holds the storm", function()
		local srv = T.start_server{ services = { "svc" }, inline = { svc = service },
			args = { "--set", "log.window_ms=1000" } }
		-- the running server gets a low descriptor limit: what it has open
		-- and a few more
		local lim = ffi.new("struct moongate_stats_rlimit", { 48, 48 })
		assert.equal(0, ffi.C.moongate_stats_prlimit(srv.pid, RLIMIT_NOFILE, lim, nil))
		local fds = {}
		for i = 1, 64 do
			local fd = P.socket(P.AF_INET, P.SOCK_STREAM, 0)
			assert(fd >= 0, P.errstr())
			fds[i] = fd
			-- completes in the kernel's backlog, accepted or not
			assert(P.connect(fd, P.sockaddr_in(srv.tcp), P.SOCKADDR_IN_LEN) == 0,
				P.errstr())
		end
		srv:wait_log("warn net: accepting paused for 100 ms: Too many open files " ..
			"%(%d+ tcp connections open; 1 pauses so far%)")
		-- every 100 ms the listener tries again and pauses again: 5 lines a
		-- window, then the count
		srv:wait_log("warn %.%.%. and %d+ more like \"net: accepting paused for " ..
			"100 ms: Too many open files", 5000)
		for _, fd in ipairs(fds) do P.close(fd) end
		local log = srv:log()
		local first = log:match("^(.-%.%.%. and %d+ more like \"net: accepting)")
		assert.equal(5, select(2, first:gsub("warn net: accepting paused", "")))
	end)
end)
