-- moongate.netem: break the network on purpose in a busted spec. Starts
-- moongate-netem (tools/netem/) between the test clients and a server,
-- and steers it over its control channel.
--
--   local T = require "moongate.test"
--   local netem = require "moongate.netem"
--   local srv = T.start_server{ services = { "echo" } }
--   local n = netem.start{ server = srv, seed = 1 }
--   local cl = T.connect(n, "udp")          -- through netem
--   n:set{ loss = 0.2, delay = 30 }          -- both ways, UDP and TCP
--   n:set_down{ delay = 50 }                 -- server -> client only
--   n:blackhole(true); n:clear()
--   T.stop_all()                             -- stops n as well
--
-- netem.start(opts) -> n                      opts, all optional:
--   server     a moongate.test server: its udp and tcp ports are the
--              targets (unless udp/tcp say otherwise)
--   udp, tcp   "HOST:PORT" targets; one proxy each
--   seed       the PRNG seed (an integer; default: from the clock)
--   set        initial settings: "loss=0.1 delay=20" or { loss = 0.1 }
--   args       extra command-line arguments, e.g. {"--udp-idle", "5"}
--   bin        the binary ($MOONGATE_NETEM_BIN, or moongate-netem beside
--              $MOONGATE_BIN, or build/moongate-netem in the repo)
--   ready_ms   deadline for "moongate-netem: ready" (5000)
-- n.udp_port, n.tcp_port, n.control_port, n.pid, n.seed
-- n:url(t), n:udp_url(), n:tcp_url()  "udp://127.0.0.1:PORT" (so
--   T.connect(n, "tcp") connects through netem)
-- n:command(line) -> text after "ok" | nil, error text (raises only
--   when the control channel fails)
-- n:set(s_or_t [, scope]), n:set_up(x), n:set_down(x): `set` with a
--   scope ("up", "down", "udp", "tcp up"...); raise on an "error" reply
-- n:clear(), n:stall(), n:unstall(), n:blackhole(on [, scope]),
-- n:refuse(on), n:rebind() -> mappings, n:cut() -> conns,
-- n:reset() -> conns, n:stats() -> table, n:settings() -> table
-- n:log()  its stderr;  n:stop([ms]) -> status  (idempotent)
-- netem.stop_all()  stops every netem still running
-- netem.udp_socket() -> s  a plain UDP socket on 127.0.0.1 to play a
--   server or a client by hand: s.port, s:send(port, data),
--   s:recv([ms]) -> data, port | nil, s:close()
--
-- Every wait is bounded (the control reply: 5000 ms). Linux only.

local bit = require "bit"
local ffi = require "ffi"
local T = require "moongate.test"

local P = require "moongate.posix"

local AF_INET, SOCK_STREAM, SOCK_DGRAM = P.AF_INET, P.SOCK_STREAM, P.SOCK_DGRAM
local SOCK_NONBLOCK, SOCK_CLOEXEC, MSG_NOSIGNAL =
	P.SOCK_NONBLOCK, P.SOCK_CLOEXEC, P.MSG_NOSIGNAL
local EINTR, EAGAIN = P.EINTR, P.EAGAIN
local SIGKILL = P.SIGKILL
local REPLY_MS = 5000

local netem = {}
local running = {}   -- n -> true until stopped

local function errstr()
	return (P.errstr())
end

local ntohs = P.ntohs
local sockaddr = P.sockaddr_in

-- "loss=0.1 delay=20" from { loss = 0.1, delay = 20 } (sorted keys).
local function settings(x, what)
	if type(x) == "string" then
		return x
	end
	if type(x) ~= "table" then
		error(what .. ": a string or a table expected", 3)
	end
	local parts = {}
	for k, v in pairs(x) do
		if type(k) ~= "string" or not k:match("^[%a_]+$") then
			error(what .. ": bad key " .. tostring(k), 3)
		end
		if type(v) == "boolean" then
			v = v and 1 or 0
		end
		v = tostring(v)
		if v:find("[%s=]") then
			error(what .. ": bad value for " .. k .. ": " .. v, 3)
		end
		parts[#parts + 1] = k .. "=" .. v
	end
	table.sort(parts)
	return table.concat(parts, " ")
end

local function parse_kv(s)
	local t = {}
	for k, v in s:gmatch("(%S+)=(%S+)") do
		t[k] = tonumber(v) or v
	end
	return t
end

local function default_bin()
	local env = os.getenv("MOONGATE_NETEM_BIN")
	if env then
		return env
	end
	local srv_bin = os.getenv("MOONGATE_BIN")
	if srv_bin then
		return (srv_bin:match("^(.*)/[^/]*$") or ".") .. "/moongate-netem"
	end
	return T.repo_dir() .. "/build/moongate-netem"
end

local function target(v, what)
	if type(v) == "number" then
		return "127.0.0.1:" .. v
	end
	if type(v) ~= "string" or not v:match(":%d+$") then
		error("netem.start: " .. what .. " wants \"HOST:PORT\"", 3)
	end
	return v
end

-- ---- the process -----------------------------------------------------------

local Netem = {}
Netem.__index = Netem

local start_keys = { server = true, udp = true, tcp = true, seed = true,
	set = true, args = true, bin = true, ready_ms = true }

function netem.start(opts)
	opts = opts or {}
	for k in pairs(opts) do
		if not start_keys[k] then
			error("netem.start: unknown option '" .. tostring(k) .. "'", 2)
		end
	end
	local udp, tcp = opts.udp, opts.tcp
	if opts.server then
		local host = opts.server.host or "127.0.0.1"
		if host:find(":", 1, true) then
			host = "[" .. host .. "]"
		end
		udp = udp or (opts.server.udp and host .. ":" .. opts.server.udp)
		tcp = tcp or (opts.server.tcp and host .. ":" .. opts.server.tcp)
	end
	if not udp and not tcp then
		error("netem.start: a server, udp or tcp target is needed", 2)
	end
	local bin = opts.bin or default_bin()
	local f = io.open(bin, "rb")
	if not f then
		error("netem.start: no moongate-netem at " .. bin ..
			" (build it, or set MOONGATE_NETEM_BIN)", 2)
	end
	f:close()

	local argv = { bin }
	if udp then
		argv[#argv + 1] = "--udp"
		argv[#argv + 1] = "127.0.0.1:0=" .. target(udp, "udp")
	end
	if tcp then
		argv[#argv + 1] = "--tcp"
		argv[#argv + 1] = "127.0.0.1:0=" .. target(tcp, "tcp")
	end
	argv[#argv + 1] = "--control"
	argv[#argv + 1] = "127.0.0.1:0"
	if opts.seed then
		if type(opts.seed) ~= "number" or opts.seed < 0 or opts.seed % 1 ~= 0 then
			error("netem.start: seed wants a non-negative integer", 2)
		end
		argv[#argv + 1] = "--seed"
		argv[#argv + 1] = ("%d"):format(opts.seed)
	end
	if opts.set then
		argv[#argv + 1] = "--set"
		argv[#argv + 1] = settings(opts.set, "netem.start: set")
	end
	for _, a in ipairs(opts.args or {}) do
		argv[#argv + 1] = tostring(a)
	end

	local n = setmetatable({ argv = argv, bin = bin, log_path = os.tmpname() }, Netem)
	n.pid, n.out = T.spawn(argv, n.log_path)
	running[n] = true
	T.track(n)

	local ready_ms = opts.ready_ms or 5000
	local ok, why = T.read_lines(n.out, ready_ms, function(line)
		local proto, port = line:match("^moongate%-netem: (%a+) %S+ (%d+)")
		if proto == "udp" or proto == "tcp" or proto == "control" then
			n[proto .. "_port"] = n[proto .. "_port"] or tonumber(port)
		end
		local seed = line:match("^moongate%-netem: seed (%d+)$")
		if seed then
			n.seed = seed -- a string: 64 bits do not fit a Lua number
		end
		return line == "moongate-netem: ready"
	end)
	if not ok then
		n:stop(1000)
		error(("netem.start: %s (exit status %s)\n%s\n--- its log ---\n%s"):format(
			why == "eof" and "it exited before \"moongate-netem: ready\"" or
			why == "timeout" and ("no \"moongate-netem: ready\" within " .. ready_ms .. " ms") or why,
			tostring(n.status), table.concat(argv, " "), T.tail(n.stopped_log or "", 20)), 2)
	end
	return n
end

function Netem:url(transport)
	transport = transport or "udp"
	local port = self[transport .. "_port"]
	if not port then
		error("netem has no " .. tostring(transport) .. " proxy", 2)
	end
	return transport .. "://127.0.0.1:" .. port
end

function Netem:udp_url() return self:url("udp") end
function Netem:tcp_url() return self:url("tcp") end

function Netem:log()
	if self.stopped_log then
		return self.stopped_log
	end
	local f = io.open(self.log_path, "rb")
	if not f then
		return ""
	end
	local s = f:read("*a")
	f:close()
	return s
end

function Netem:close_control()
	if self.ctl then
		P.close(self.ctl)
		self.ctl = nil
	end
end

function Netem:stop(ms)
	if self.stopped then
		return self.status
	end
	self.stopped = true
	running[self] = nil
	T.untrack(self)
	self:close_control()
	if self.pid and self.pid > 0 then
		T.kill(self.pid)
		self.status = T.reap(self.pid, ms or 5000)
		if not self.status then
			T.kill(self.pid, SIGKILL)
			self.status = T.reap(self.pid, 5000) or -1
		end
	end
	if self.out then
		P.close(self.out)
		self.out = nil
	end
	self.stopped_log = self:log()
	T.sanitizer_report(self.stopped_log, self.argv)
	if not os.getenv("MOONGATE_TEST_KEEP") then
		os.remove(self.log_path)
	end
	return self.status
end

function netem.stop_all()
	local list = {}
	for n in pairs(running) do
		list[#list + 1] = n
	end
	for _, n in ipairs(list) do
		n:stop()
	end
end

-- ---- the control channel -------------------------------------------------

function Netem:fail(what)
	local msg = ("moongate.netem: %s\n--- its log (tail) ---\n%s"):format(what,
		T.tail(self:log(), 20))
	self:close_control()
	error(msg, 3)
end

function Netem:connect_control()
	if self.stopped then
		error("moongate.netem: stopped", 3)
	end
	local fd = P.socket(AF_INET, bit.bor(SOCK_STREAM, SOCK_CLOEXEC), 0)
	if fd < 0 then
		self:fail("socket: " .. errstr())
	end
	-- loopback: a blocking connect ends at once
	if P.connect(fd, sockaddr(self.control_port), 16) < 0 then
		local e = errstr()
		P.close(fd)
		self:fail("connect to the control port: " .. e)
	end
	self.ctl = fd
	self.inbuf = ""
end

-- One command, one reply line, within REPLY_MS.
function Netem:command(line)
	if type(line) ~= "string" or line:find("[\r\n]") then
		error("netem: a command is one line", 2)
	end
	if not self.ctl then
		self:connect_control()
	end
	local s = line .. "\n"
	local off = 0
	while off < #s do
		local n = tonumber(P.send(self.ctl, ffi.cast("const char *", s) + off,
			#s - off, MSG_NOSIGNAL))
		if n < 0 then
			self:fail("sending \"" .. line .. "\": " .. errstr())
		end
		off = off + n
	end
	local deadline = T.now_ms() + REPLY_MS
	local buf = ffi.new("char[4096]")
	while not self.inbuf:find("\n", 1, true) do
		local left = deadline - T.now_ms()
		if left <= 0 then
			self:fail(("no reply to \"%s\" within %d ms"):format(line, REPLY_MS))
		end
		if T.poll({ self.ctl }, left) > 0 then
			local n = tonumber(P.recv(self.ctl, buf, 4096, 0))
			if n == 0 then
				self:fail("the control channel closed (did it exit?) after \"" .. line .. "\"")
			elseif n > 0 then
				self.inbuf = self.inbuf .. ffi.string(buf, n)
			elseif ffi.errno() ~= EINTR and ffi.errno() ~= EAGAIN then
				self:fail("reading the reply: " .. errstr())
			end
		end
	end
	local reply, rest = self.inbuf:match("^([^\n]*)\n(.*)$")
	self.inbuf = rest
	local ok = reply:match("^ok ?(.*)$")
	if ok then
		return ok
	end
	return nil, reply:match("^error ?(.*)$") or reply
end

-- A command that must succeed.
function Netem:must(line)
	local r, err = self:command(line)
	if not r then
		error(("moongate.netem: %s: %s"):format(line, err), 3)
	end
	return r
end

local function scoped(scope, s)
	if scope then
		return "set " .. scope .. " " .. s
	end
	return "set " .. s
end

function Netem:set(x, scope)
	self:must(scoped(scope, settings(x, "netem:set")))
	return self
end

function Netem:set_up(x) self:must(scoped("up", settings(x, "netem:set_up"))) return self end
function Netem:set_down(x) self:must(scoped("down", settings(x, "netem:set_down"))) return self end
function Netem:clear() self:must("clear") return self end
function Netem:stall() self:must("stall") return self end
function Netem:unstall() self:must("unstall") return self end

function Netem:blackhole(on, scope)
	self:must(scoped(scope, "blackhole=" .. (on and 1 or 0)))
	return self
end

function Netem:refuse(on)
	self:must("set tcp refuse=" .. (on and 1 or 0))
	return self
end

function Netem:rebind() return tonumber(self:must("rebind"):match("rebound=(%d+)")) end
function Netem:cut() return tonumber(self:must("cut"):match("cut=(%d+)")) end
function Netem:reset() return tonumber(self:must("reset"):match("reset=(%d+)")) end
function Netem:stats() return parse_kv(self:must("stats")) end
function Netem:settings() return parse_kv(self:must("show")) end

-- T.stop_all: stop breaking the network, so that the goodbyes get through.
function Netem:before_stop()
	if not self.stopped then
		self:command("clear")
	end
end

-- ---- a plain UDP socket ----------------------------------------------------

local Udp = {}
Udp.__index = Udp

function netem.udp_socket()
	local fd = P.socket(AF_INET,
		bit.bor(SOCK_DGRAM, SOCK_NONBLOCK, SOCK_CLOEXEC), 0)
	if fd < 0 then
		error("udp_socket: " .. errstr(), 2)
	end
	local sa = sockaddr(0)
	local len = ffi.new("uint32_t[1]", 16)
	if P.bind(fd, sa, 16) < 0 or
		P.getsockname(fd, sa, len) < 0 then
		local e = errstr()
		P.close(fd)
		error("udp_socket: " .. e, 2)
	end
	return setmetatable({ fd = fd, port = ntohs(sa.port),
		buf = ffi.new("char[65536]") }, Udp)
end

function Udp:send(port, data)
	local n = P.sendto(self.fd, data, #data, 0, sockaddr(port), 16)
	if n < 0 then
		return nil, errstr()
	end
	return true
end

-- The next datagram and its sender's port, or nil after ms (default 0).
function Udp:recv(ms)
	local deadline = T.now_ms() + (ms or 0)
	while true do
		local sa = P.sockaddr_in()
		local len = ffi.new("uint32_t[1]", 16)
		local n = tonumber(P.recvfrom(self.fd, self.buf, 65536, 0, sa, len))
		if n >= 0 then
			return ffi.string(self.buf, n), ntohs(sa.port)
		end
		local left = deadline - T.now_ms()
		if left <= 0 then
			return nil
		end
		T.poll({ self.fd }, left)
	end
end

function Udp:close()
	if self.fd then
		P.close(self.fd)
		self.fd = nil
	end
end

return netem
