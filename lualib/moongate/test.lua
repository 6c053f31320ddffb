-- moongate.test: start real moongate servers and drive clients from busted
-- specs (after Kong's spec helpers).
--
--   local T = require "moongate.test"
--   lazy_setup(function() srv = T.start_server{ services = {"echo"} } end)
--   lazy_teardown(T.stop_all)
--   it("echoes", function()
--     local cl = assert(T.connect(srv, "udp"))
--     cl:wait_open()
--     cl:send("hi")
--     assert.equal("hi", cl:wait_message())
--   end)
--
-- The server binary is $MOONGATE_BIN (default "build/moongate"). A server
-- is ready when it printed "moongate: ready" (its ports are read from the
-- "moongate: listening" lines before it); every wait has a deadline and
-- runs poll(2), never a sleep. Linux only (fork/exec through LuaJIT's ffi).
--
-- This file: servers, processes, teardown. Its siblings, which it loads
-- and which add to T: test_client.lua (T.connect, the cl: methods, T.wait,
-- T.wait_open), test_metrics.lua (T.http_get, srv:scrape, srv:metric),
-- test_backends.lua (T.start_redis, T.start_http_backend: documented there
-- and in docs/LUA_API.md). The API below is the whole harness's.
--
-- T.start_server(opts) -> srv            opts, all optional:
--   services     list of service names          (config.lua `services`)
--   service_path list of directories, made absolute; the temp dir (inline
--                services) comes first, the repo's service/ dir (or
--                $MOONGATE_SERVICE_DIR) last
--   inline       { name = "lua source" }: written as TMPDIR/name.lua
--   config       table deep-merged into the generated config.lua
--   args         extra command-line arguments, e.g. {"--set", "k=v"}
--   transports   {"udp", "tcp"} (default): one --listen 127.0.0.1:0 each
--   listen       instead: the --listen addresses, e.g. {"udp://10.77.1.2:7000"}
--   bin          the server binary ($MOONGATE_BIN or build/moongate)
--   wrap         a command the server runs under, e.g. {"ip", "netns",
--                "exec", NS} (it must exec the server: the pid is the
--                server's)
--   admin        true: the admin console on tcp://127.0.0.1:0
--   ready_ms     deadline for "moongate: ready" (10000)
-- srv.udp, srv.tcp   ports;  srv.pid;  srv.dir  the temp dir;  srv.key
--                     the server key (hex), which T.connect pins
-- srv.admin_url      "tcp://127.0.0.1:PORT" or "unix:PATH", when the
--                    server printed "moongate: admin ..."
-- srv:url(transport)                 "udp://127.0.0.1:PORT"
-- srv:admin(cmd, [ms]) -> ok, reply  runs `$MOONGATE_BIN admin --timeout ms
--                                    URL cmd` (ms: 5000); ok: exit status 0;
--                                    reply: stdout without the last line end.
--                                    Raises when the console does not answer
-- srv:scrape([path]) -> body         GET /metrics (or path) of its metrics
--                                    endpoint (config metrics = "127.0.0.1:0")
-- srv:metric(name, [labels]) -> n    a sample of /metrics (labels: a text
--                                    the sample's labels contain)
-- T.http_get(port, path, [ms]) -> status, body, headers   (127.0.0.1)
-- srv:hup()                          SIGHUP: reload the changed services
-- srv:write_service(name, source)    (re)writes TMPDIR/name.lua, the inline
--                                    service's file, atomically (a rename)
-- srv:log()                          its stderr so far
-- srv:wait_log(pattern, [ms]) -> line  the first log line after the mark
--                                    matching the Lua pattern that no
--                                    earlier wait_log returned; steps every
--                                    live test client while it waits;
--                                    raises after ms (5000)
-- srv:mark_log()                     from now on wait_log looks only at
--                                    lines written after this call (the
--                                    mark starts at the log's start, and
--                                    again after srv:restart)
-- srv:restart([sig], [ms]) -> status  kill -9 (or sig "TERM") and start
--                                    again: same config, secrets, ports
-- srv:stop([ms]) -> status, line     SIGTERM; after ms (10000) SIGKILL.
--   status: the exit code, or 128 + signal; line: its "stopped:" log line
--   or nil. Steps every live test client meanwhile (so they see the
--   close). Copies a sanitizer report in the log to stderr. Removes the
--   temp dir (kept when $MOONGATE_TEST_KEEP is set). Idempotent.
-- T.stop_server(srv)   srv:stop()
-- T.stop_all()         close every test client, stop every server and
--                      every tracked process (moongate.netem), release
--                      the clients
--
-- T.connect(srv_or_url, transport, hello, opts) -> cl | nil, err
--   transport "udp" (default) or "tcp" when given a server; hello ""
--   by default; opts go to moongate.client.connect (given a server, its
--   key, srv.key, is pinned unless opts.server_key is false or set), but
--   opts.worker = SLOT: a worker hint, added to the url ("?worker=").
--   cl records events:
--   cl.opened (boolean), cl.messages (strings), cl.datagrams ({data=,
--   seq=}), cl.closed (nil or {code=, reason=, remote=}), cl.moves (nil or
--   how many moves the library followed), cl.events (every event table,
--   in order), cl.c (the moongate.client object).
--   cl:send(s), cl:send_unreliable(s) (nil, "offline" while the session
--   is offline: the datagram was dropped), cl:close([code, reason]),
--   cl:state(), cl:stats(), cl:release(), cl:step([ms]) -> events
--   cl:wait_open([ms]): the session opened. That is not a login: the
--     login service refuses after open (the close event follows it), so
--     with login wait for cl:wait_login()
--   cl:wait_login([ms]) -> the {"op":"login"} message (raises with the
--     close code and reason when the login was refused)
--   cl:wait_message([ms]) -> the next unread message (reading is in
--     order: cl.read counts the messages read before the first unread one)
--   cl:wait_op(op, [ms]) -> the first unread message that is a JSON
--     object with this "op", decoded; the messages it passes over stay
--     unread, for the next wait_message or wait_op
--   cl:wait_close([ms]) -> cl.closed, cl:wait(cond, [ms], what)
-- T.wait(cond, [ms], cl...) -> cond's value: steps the clients until
--   cond() returns a true value; raises after ms saying what was awaited.
--   cond is called after every batch of events, and at least every 50 ms.
--   To let time pass on the server without a sleep, wait on the clock:
--   local t0 = T.now_ms(); T.wait(function() return T.now_ms() - t0 >= 2000 end, 3000, cl)
-- T.now_ms() -> a monotonic clock in milliseconds
--
-- Defaults a spec meets (docs/LUA_API.md, "require moongate.test"): every
-- wait 5000 ms; ready_ms 10000; srv:admin 5000; srv:stop 10000, then
-- SIGKILL. The server's own: session.timeout_ms 10000 (a silent client
-- goes offline, or closes when resume is off), heartbeat_ms 1000,
-- resume_grace_ms 30000 (offline this long, then closed "expired"; 0: no
-- resume, so netem's cut closes the session), linger_ms 2000; login
-- keep_s 600 and cookie_ttl_s 86400; room hold_ms 60000; handshake rate
-- 10/s with a burst of 20 and per_ip_max 64 from one address (every test
-- client comes from 127.0.0.1).
--
-- For other harness modules (moongate.netem uses them):
-- T.spawn(argv, errlog) -> pid, fd   fork + execv argv[1]; stdout into
--                                    the pipe fd, stderr into errlog
-- T.read_lines(fd, ms, fn) -> true | nil, "timeout" | "eof" | err
--                                    reads fd until fn(line) is true
-- T.reap(pid, ms) -> status | nil    waitpid, stepping the test clients
-- T.kill(pid, sig), T.poll(fds, ms)  kill(2); poll(2) for input, bounded
-- T.track(obj), T.untrack(obj)       T.stop_all calls obj:before_stop()
--                                    (if any) before the clients close,
--                                    and obj:stop() after the servers
-- T.sanitizer_report(log, argv)      copies a sanitizer report in log
--                                    to stderr; true if there was one
-- T.repo_dir(), T.tail(s, n)

local bit = require "bit"
local ffi = require "ffi"
local client = require "moongate.client"

local P = require "moongate.posix"

local O_RDONLY, O_WRONLY, O_CREAT, O_TRUNC, O_CLOEXEC =
	P.O_RDONLY, P.O_WRONLY, P.O_CREAT, P.O_TRUNC, P.O_CLOEXEC
local SIGHUP, SIGKILL, SIGTERM, WNOHANG, EINTR, EAGAIN =
	P.SIGHUP, P.SIGKILL, P.SIGTERM, P.WNOHANG, P.EINTR, P.EAGAIN
local POLLIN = P.POLLIN
local PR_SET_PDEATHSIG = P.PR_SET_PDEATHSIG

local DEFAULT_WAIT = 5000

local T = {}

local servers = {}   -- started, not yet stopped: srv -> true
local tracked = {}   -- other processes (T.track), in order

local function now_ms()
	return client.now() / 1000
end
T.now_ms = now_ms

local errstr = P.errstr

-- Block up to ms (>= 0) on the fds (may be empty): the bounded wait under
-- every loop here.
local function poll_fds(fds, ms)
	ms = math.max(0, math.floor(ms))
	local n = #fds
	local p = P.pollfd(math.max(n, 1))
	for i = 1, n do
		p[i - 1].fd = fds[i]
		p[i - 1].events = POLLIN
	end
	return P.poll(p, n, ms)
end

-- Read the pipe fd line by line until on_line(line) returns true: true;
-- or nil and "timeout" (after ms), "eof", or the read error.
local function read_lines(fd, ms, on_line)
	local deadline = now_ms() + ms
	local out, buf = "", ffi.new("char[4096]")
	while true do
		local line, rest = out:match("^([^\n]*)\n(.*)$")
		if line then
			out = rest
			if on_line(line) then
				return true
			end
		else
			local left = deadline - now_ms()
			if left <= 0 then
				return nil, "timeout"
			end
			if poll_fds({ fd }, left) > 0 then
				local n = tonumber(P.read(fd, buf, 4096))
				local e = ffi.errno()
				if n == 0 then
					return nil, "eof"
				elseif n > 0 then
					out = out .. ffi.string(buf, n)
				elseif e ~= EINTR and e ~= EAGAIN then
					return nil, "reading: " .. errstr()
				end
			end
		end
	end
end
T.read_lines = read_lines
T.poll = poll_fds

local function cwd()
	local buf = ffi.new("char[4096]")
	assert(P.getcwd(buf, 4096) ~= nil, "getcwd failed")
	return ffi.string(buf)
end

local function absolute(path)
	if path:sub(1, 1) == "/" then
		return path
	end
	return cwd() .. "/" .. path:gsub("^%./", "")
end

local function read_file(path)
	local f = io.open(path, "rb")
	if not f then
		return ""
	end
	local s = f:read("*a")
	f:close()
	return s
end

local function write_file(path, s)
	local f = assert(io.open(path, "wb"))
	assert(f:write(s))
	assert(f:close())
end

local function tail(s, nlines)
	local lines = {}
	for line in s:gmatch("[^\n]+") do
		lines[#lines + 1] = line
	end
	local from = math.max(1, #lines - (nlines or 20) + 1)
	return table.concat(lines, "\n", from)
end

local function shell_quote(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The repo root: this file is lualib/moongate/test.lua in it.
local function repo_dir()
	local src = debug.getinfo(1, "S").source
	local path = src:sub(1, 1) == "@" and src:sub(2) or "lualib/moongate/test.lua"
	local dir = path:match("^(.*)/lualib/moongate/test%.lua$") or
		(path == "lualib/moongate/test.lua" and ".") or
		path:match("^(.*)/[^/]*$") or "."
	return absolute(dir)
end

-- ---- config.lua ------------------------------------------------------------

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
	local nil not or repeat return then true until while]]):gmatch("%a+") do
	keywords[w] = true
end

local serialize

local function serialize_key(k)
	if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then
		return k
	end
	return "[" .. serialize(k, "", {}) .. "]"
end

-- v as Lua source; tables with sorted keys, arrays as lists.
function serialize(v, indent, seen)
	local t = type(v)
	if t == "string" then
		return (string.format("%q", v):gsub("\n", "n"))
	elseif t == "number" then
		assert(v == v and v ~= math.huge and v ~= -math.huge,
			"config: cannot write " .. tostring(v))
		if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
			return string.format("%d", v)
		end
		return string.format("%.17g", v)
	elseif t == "boolean" then
		return tostring(v)
	elseif t ~= "table" then
		error("config: cannot write a " .. t, 0)
	end
	assert(not seen[v], "config: a table refers to itself")
	seen[v] = true
	local inner = indent .. "\t"
	local parts = {}
	local n = #v
	for i = 1, n do
		parts[#parts + 1] = inner .. serialize(v[i], inner, seen)
	end
	local keys = {}
	for k in pairs(v) do
		if not (type(k) == "number" and k >= 1 and k <= n and k == math.floor(k)) then
			keys[#keys + 1] = k
		end
	end
	table.sort(keys, function(a, b)
		if type(a) == type(b) then
			return a < b
		end
		return type(a) == "number"
	end)
	for _, k in ipairs(keys) do
		parts[#parts + 1] = inner .. serialize_key(k) .. " = " ..
			serialize(v[k], inner, seen)
	end
	seen[v] = nil
	if #parts == 0 then
		return "{}"
	end
	return "{\n" .. table.concat(parts, ",\n") .. ",\n" .. indent .. "}"
end
T.serialize = function(v) return serialize(v, "", {}) end

-- b merged into a copy of a: tables recursively, anything else replaces.
local function merge(a, b)
	local r = {}
	for k, v in pairs(a) do
		r[k] = v
	end
	for k, v in pairs(b or {}) do
		if type(v) == "table" and type(r[k]) == "table" and #v == 0 and next(v) then
			r[k] = merge(r[k], v)
		else
			r[k] = v
		end
	end
	return r
end

-- ---- processes ---------------------------------------------------------------

local function mkdtemp()
	local base = os.getenv("TMPDIR") or "/tmp"
	local template = base .. "/moongate-test.XXXXXX"
	local buf = ffi.new("char[?]", #template + 1)
	ffi.copy(buf, template)
	if P.mkdtemp(buf) == nil then
		error("mkdtemp " .. template .. ": " .. errstr(), 2)
	end
	return ffi.string(buf)
end

-- Decode a waitpid status: the exit code, or 128 + the signal.
local function exit_status(st)
	local sig = bit.band(st, 0x7f)
	if sig == 0 then
		return bit.band(bit.rshift(st, 8), 0xff)
	end
	return 128 + sig
end

-- fork + execv with stdout into a pipe and stderr into errlog. Returns the
-- pid and the pipe's read end.
local function spawn(argv, errlog)
	local cargv = ffi.new("char *[?]", #argv + 1)
	local keep = {}
	for i, a in ipairs(argv) do
		local s = ffi.new("char[?]", #a + 1)
		ffi.copy(s, a)
		keep[i] = s
		cargv[i - 1] = s
	end
	cargv[#argv] = nil
	local fds = ffi.new("int[2]")
	if P.pipe2(fds, O_CLOEXEC) ~= 0 then
		error("pipe2: " .. errstr(), 2)
	end
	local pid = P.fork()
	if pid < 0 then
		local e = errstr()
		P.close(fds[0])
		P.close(fds[1])
		error("fork: " .. e, 2)
	end
	if pid == 0 then
		-- the child: nothing here may return into the test runner
		pcall(function()
			-- killed with the test runner, whatever happens to it
			P.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
			local null = P.open("/dev/null", O_RDONLY, 0)
			local err = P.open(errlog,
				bit.bor(O_WRONLY, O_CREAT, O_TRUNC), 420)
			if null < 0 or err < 0 then
				return
			end
			P.dup2(null, 0)
			P.dup2(fds[1], 1)
			P.dup2(err, 2)
			P.execv(cargv[0], cargv)
		end)
		P.exit(127)
	end
	P.close(fds[1])
	keep = nil
	return pid, fds[0]
end

-- The test clients: T.connect, the cl: methods, T.wait, T.wait_open
-- (lualib/moongate/test_client.lua). pump(ms) steps every live one.
local clients = require("moongate.test_client")(T, { now_ms = now_ms,
	poll_fds = poll_fds, DEFAULT_WAIT = DEFAULT_WAIT })
local pump = clients.pump

-- waitpid until the child is gone or ms passed; the status, or nil.
-- While waiting, steps every live test client (they answer the server's
-- CLOSE and record the close event).
local function reap(pid, ms)
	local st = ffi.new("int[1]")
	local deadline = now_ms() + ms
	while true do
		local r = P.waitpid(pid, st, WNOHANG)
		if r == pid then
			return exit_status(st[0])
		end
		if r < 0 and ffi.errno() ~= EINTR then
			return nil, "waitpid: " .. errstr()
		end
		local left = deadline - now_ms()
		if left <= 0 then
			return nil, "timeout"
		end
		pump(math.min(left, 5))
	end
end

T.spawn = spawn
T.reap = reap
T.tail = tail
T.repo_dir = repo_dir

function T.kill(pid, sig)
	return P.kill(pid, sig or SIGTERM)
end

-- A sanitizer report in a process's log goes to stderr (ctest's log,
-- which make test-asan searches).
function T.sanitizer_report(log, argv)
	if log:match("ERROR: AddressSanitizer") or
		log:match("ERROR: LeakSanitizer") or
		log:match("runtime error:") then
		io.stderr:write("moongate.test: sanitizer report in the log of ",
			table.concat(argv or {}, " "), "\n", log, "\n")
		return true
	end
	return false
end

-- ---- servers -----------------------------------------------------------------

local Server = {}
Server.__index = Server

local start_keys = { services = true, service_path = true, inline = true,
	config = true, args = true, transports = true, ready_ms = true, listen = true, wrap = true, bin = true,
	admin = true }

-- Start srv.argv and read its stdout until "moongate: ready" (ports, key,
-- admin address): nil, or why it did not get there.
local function launch(srv, ready_ms)
	-- a new process writes a new log (spawn truncates it): wait_log
	-- starts again from its first line
	srv.log_mark, srv.log_taken = 0, {}
	local ok, err = pcall(function()
		srv.pid, srv.out = spawn(srv.argv, srv.log_path)
	end)
	if not ok then
		return tostring(err), true
	end
	servers[srv] = true
	srv.listening = {}
	local first = {}
	local ready, why = read_lines(srv.out, ready_ms, function(line)
		local proto, host, port = line:match("^moongate: listening (%a+) (%S+) (%d+)$")
		if proto then
			port = tonumber(port)
			srv.listening[#srv.listening + 1] = { proto, host, port }
			if not first[proto] then
				first[proto] = true
				srv[proto] = port
				srv.host = srv.host or host
			end
		end
		srv.key = line:match("^moongate: key (%x+)$") or srv.key
		local mh, mp = line:match("^moongate: metrics (%S+) (%d+)$")
		if mh and not srv.metrics_port then
			srv.metrics_host, srv.metrics_port = mh, tonumber(mp)
		end
		local kind, where = line:match("^moongate: admin (%a+) (.+)$")
		if kind == "unix" then
			srv.admin_url = "unix:" .. where
		elseif kind == "tcp" then
			local host, port = where:match("^(%S+) (%d+)$")
			srv.admin_port = tonumber(port)
			srv.admin_url = ("tcp://%s:%s"):format(
				host:find(":", 1, true) and "[" .. host .. "]" or host, port)
		end
		return line == "moongate: ready"
	end)
	if ready then
		return nil
	elseif why == "timeout" then
		return "no \"moongate: ready\" within " .. ready_ms .. " ms"
	elseif why == "eof" then
		return "the server exited before \"moongate: ready\""
	end
	return "its stdout: " .. why
end

function T.start_server(opts)
	opts = opts or {}
	for k in pairs(opts) do
		if not start_keys[k] then
			error("start_server: unknown option '" .. tostring(k) .. "'", 2)
		end
	end
	local bin = opts.bin or os.getenv("MOONGATE_BIN") or "build/moongate"
	if not io.open(bin, "rb") then
		error("start_server: no server binary at " .. bin ..
			" (set MOONGATE_BIN)", 2)
	end
	local dir = mkdtemp()
	local srv = setmetatable({ dir = dir, bin = bin, files = {},
		log_path = dir .. "/server.log",
		config_path = dir .. "/config.lua" }, Server)

	-- inline services, then config.lua
	for name, src in pairs(opts.inline or {}) do
		if type(name) ~= "string" or not name:match("^[%w_]+$") then
			error("start_server: inline service names are identifiers", 2)
		end
		local path = dir .. "/" .. name .. ".lua"
		write_file(path, src)
		srv.files[#srv.files + 1] = path
	end
	local path = { dir }
	for _, p in ipairs(opts.service_path or {}) do
		path[#path + 1] = absolute(p)
	end
	path[#path + 1] = absolute(os.getenv("MOONGATE_SERVICE_DIR") or
		(repo_dir() .. "/service"))
	local transports = opts.transports or { "udp", "tcp" }
	local listen = {}
	for _, t in ipairs(transports) do
		if t ~= "udp" and t ~= "tcp" then
			error("start_server: transport '" .. tostring(t) .. "'", 2)
		end
		listen[t] = { host = "127.0.0.1", port = 0 }
	end
	local cfg = merge({
		listen = listen,      -- the --listen options below win
		services = opts.services,
		service_path = path,
		secrets = dir .. "/secret",
	}, opts.config)
	write_file(srv.config_path, "-- written by moongate.test\nreturn " ..
		serialize(cfg, "", {}) .. "\n")
	srv.files[#srv.files + 1] = srv.config_path
	srv.files[#srv.files + 1] = srv.log_path
	srv.files[#srv.files + 1] = dir .. "/secret"

	local argv = {}
	for _, a in ipairs(opts.wrap or {}) do
		argv[#argv + 1] = tostring(a)
	end
	argv[#argv + 1] = bin
	for _, t in ipairs(opts.listen or transports) do
		argv[#argv + 1] = "--listen"
		argv[#argv + 1] = opts.listen and t or t .. "://127.0.0.1:0"
	end
	if opts.admin then
		argv[#argv + 1] = "--set"
		argv[#argv + 1] = "admin=tcp://127.0.0.1:0"
	end
	for _, a in ipairs(opts.args or {}) do
		argv[#argv + 1] = tostring(a)
	end
	argv[#argv + 1] = srv.config_path
	srv.argv = argv

	local why, spawn_failed = launch(srv, opts.ready_ms or 10000)
	if spawn_failed then
		srv:remove_dir()
		error("start_server: " .. why, 2)
	end
	if why then
		srv:stop(2000)
		error(("start_server: %s (exit status %s%s)\n%s\n--- server log (tail) ---\n%s"):format(
			why, tostring(srv.status), srv.status == 127 and ": not executable?" or "",
			table.concat(argv, " "), tail(srv.stopped_log or "", 30)), 2)
	end
	return srv
end

function Server:url(transport)
	transport = transport or "udp"
	local port = self[transport]
	if not port then
		error("server has no " .. tostring(transport) .. " listener", 2)
	end
	local host = self.host or "127.0.0.1"
	if host:find(":", 1, true) then
		host = "[" .. host .. "]"
	end
	return transport .. "://" .. host .. ":" .. port
end

-- One console command through the client mode of the binary: the exit
-- status comes back as the last line, since LuaJIT's popen close does not
-- give it.
function Server:admin(cmd, ms)
	if not self.admin_url then
		error("srv:admin: this server has no admin console (admin = true)", 2)
	end
	ms = ms or DEFAULT_WAIT
	local sh = ("%s admin --timeout %d %s %s 2>&1; echo \"exit:$?\""):format(
		shell_quote(self.bin), ms, shell_quote(self.admin_url),
		shell_quote(cmd))
	local f = assert(io.popen(sh, "r"))
	local out = f:read("*a")
	f:close()
	local text, status = out:match("^(.-)\n?exit:(%d+)\n$")
	status = tonumber(status)
	if status ~= 0 and status ~= 1 then
		error(("srv:admin %q: no answer (exit status %s): %s"):format(cmd,
			tostring(status), text or out), 2)
	end
	return status == 0, text
end

-- T.http_get, srv:scrape, srv:metric (lualib/moongate/test_metrics.lua)
require("moongate.test_metrics")(T, Server, { P = P, now_ms = now_ms,
	DEFAULT_WAIT = DEFAULT_WAIT })

function Server:hup()
	return P.kill(self.pid, SIGHUP)
end

function Server:write_service(name, source)
	if type(name) ~= "string" or not name:match("^[%w_]+$") then
		error("write_service: service names are identifiers", 2)
	end
	local path = self.dir .. "/" .. name .. ".lua"
	write_file(path .. ".tmp", source)
	assert(os.rename(path .. ".tmp", path))
	for _, f in ipairs(self.files) do
		if f == path then
			return path
		end
	end
	self.files[#self.files + 1] = path
	return path
end

function Server:log()
	if self.stopped_log then
		return self.stopped_log
	end
	return read_file(self.log_path)
end

-- Lines written from now on are the only ones wait_log looks at: mark,
-- then act, then wait for what the action logs.
function Server:mark_log()
	local log = self:log()
	local last = 0 -- the end of the last whole line
	while true do
		local nl = log:find("\n", last + 1, true)
		if not nl then
			break
		end
		last = nl
	end
	self.log_mark = last
	return last
end

-- The first whole line after the mark that matches and that no wait_log
-- returned before (log_taken: the offsets of those), or nil.
local function find_line(srv, pattern)
	local log = srv:log()
	local taken = srv.log_taken
	local at = srv.log_mark + 1
	while true do
		local s, e, line = log:find("([^\n]*)\n", at)
		if not s then
			return nil
		end
		if not taken[s] and line:match(pattern) then
			taken[s] = true
			return line
		end
		at = e + 1
	end
end

function Server:wait_log(pattern, ms)
	ms = ms or DEFAULT_WAIT
	local deadline = now_ms() + ms
	while true do
		local line = find_line(self, pattern)
		if line then
			return line
		end
		local left = deadline - now_ms()
		if left <= 0 or self.stopped then
			error(("timed out after %d ms waiting for a server log line " ..
				"matching %q (after the mark, not returned before)\n" ..
				"--- server log (tail) ---\n%s"):format(
				ms, pattern, tail(self:log(), 30)), 2)
		end
		-- the clients go on meanwhile: their sends, acks and the server's
		-- answers are often what the awaited line is about
		pump(math.min(left, 10))
	end
end

function Server:remove_dir()
	if os.getenv("MOONGATE_TEST_KEEP") then
		return
	end
	for _, f in ipairs(self.files) do
		os.remove(f)
	end
	if not os.remove(self.dir) and self.dir:match("/moongate%-test%.[%w]+$") then
		-- files the server made: the dir is ours (mkdtemp)
		os.execute("rm -rf -- " .. shell_quote(self.dir))
	end
end

function Server:stop(ms)
	if self.stopped then
		return self.status, self.stopped_line
	end
	self.stopped = true
	servers[self] = nil
	ms = ms or 10000
	local status
	if self.pid and self.pid > 0 then
		P.kill(self.pid, SIGTERM)
		status = reap(self.pid, ms)
		if not status then
			P.kill(self.pid, SIGKILL)
			status = reap(self.pid, 5000) or -1
			self.killed = true
		end
	end
	if self.out then
		P.close(self.out)
		self.out = nil
	end
	self.stopped_log = read_file(self.log_path)
	for line in self.stopped_log:gmatch("[^\n]+") do
		if line:match("stopped:") then
			self.stopped_line = line:match("(stopped:.*)$")
		end
	end
	T.sanitizer_report(self.stopped_log, self.argv)
	self.status = status
	self:remove_dir()
	return self.status, self.stopped_line
end

-- srv:restart([sig], [ms]) -> status: kill(2) the server with sig
-- (default SIGKILL: a crash; "TERM" a graceful stop), reap it (ms, 10000),
-- and start it again with the same config, secrets file and ports, as a
-- supervisor would. Returns the old process's exit status; raises if the
-- new one does not get ready.
function Server:restart(sig, ms)
	if self.stopped then
		error("restart: the server was stopped", 2)
	end
	sig = sig == "TERM" and SIGTERM or sig == "HUP" and SIGHUP or SIGKILL
	P.kill(self.pid, sig)
	local status = reap(self.pid, ms or 10000)
	if not status then
		P.kill(self.pid, SIGKILL)
		status = reap(self.pid, 5000) or -1
	end
	servers[self] = nil
	if self.out then
		P.close(self.out)
		self.out = nil
	end
	-- the new process's log starts afresh; this one's is checked now
	T.sanitizer_report(read_file(self.log_path), self.argv)
	-- the same ports: "--listen udp://127.0.0.1:0" becomes the port it had
	for i, a in ipairs(self.argv) do
		local t = a:match("^(%a+)://127%.0%.0%.1:0$")
		if t and self[t] and self.argv[i - 1] == "--listen" then
			self.argv[i] = ("%s://127.0.0.1:%d"):format(t, self[t])
		end
	end
	self.restarts = (self.restarts or 0) + 1
	local why = launch(self, 10000)
	if why then
		self:stop(2000)
		error("restart: " .. why .. "\n--- server log (tail) ---\n" ..
			tail(self.stopped_log or "", 30), 2)
	end
	return status
end

function T.stop_server(srv)
	return srv:stop()
end

-- ---- teardown ----------------------------------------------------------------

function T.track(obj)
	T.untrack(obj)
	tracked[#tracked + 1] = obj
	return obj
end

function T.untrack(obj)
	for i = #tracked, 1, -1 do
		if tracked[i] == obj then
			table.remove(tracked, i)
		end
	end
end

function T.stop_all()
	-- tracked helpers first get ready (moongate.netem stops breaking the
	-- network, so that the goodbyes below get through)
	local helpers = { unpack(tracked) }
	for _, obj in ipairs(helpers) do
		if obj.before_stop then
			pcall(obj.before_stop, obj)
		end
	end
	-- clients close first: their sessions end at once on the server,
	-- which then stops without waiting for them
	clients.close_all()
	local list = {}
	for srv in pairs(servers) do
		list[#list + 1] = srv
	end
	for _, srv in ipairs(list) do
		srv:stop()
	end
	for _, obj in ipairs(helpers) do
		if obj.teardown then obj:teardown() else obj:stop() end
	end
	clients.release_all()
end

-- T.start_redis and T.start_http_backend (lualib/moongate/test_backends.lua),
-- with the process helpers above
require("moongate.test_backends")(T, { P = P, mkdtemp = mkdtemp, spawn = spawn,
	reap = reap, read_lines = read_lines, read_file = read_file,
	shell_quote = shell_quote, poll_fds = poll_fds, now_ms = now_ms,
	repo_dir = repo_dir, SIGTERM = SIGTERM, SIGKILL = SIGKILL })

return T
