-- bench/netbench.lua - shared by the LuaJIT benchmarks that drive a real
-- server through moongate-netem (resume_bench.lua, reconnect_bench.lua,
-- fec_loss_bench.lua; docs/BENCHMARKS.md, "Resume, reconnect and FEC").
--
-- A bench script starts with
--
--   local B = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/netbench.lua")
--
-- which sets package.path / package.cpath (unless LUA_PATH / LUA_CPATH
-- are set) and MOONGATE_BIN / MOONGATE_NETEM_BIN (unless set) to this
-- repository's lualib/ and build/, so `luajit bench/x.lua` runs from any
-- directory.
--
-- B.options(defaults, argv) -> opts   defaults overridden by the
--   environment (the key in upper case) and then by KEY=value arguments
-- B.flow(id, size) -> f          one client's numbered message stream:
--   f:payload(now_us) -> s       the next message: "id seq t_us " + padding
--   f:sent(seq, now_us)          c:send took it
--   f:echo(data, now_us) -> seq, latency_ms | nil   an echo: checks the id,
--                                counts duplicates and order
--   f.nsent, f.nrecv, f.dups, f.ooo (echoes older than one already
--   received), f.lat (latencies, ms)
--   f:lost() -> sent and never echoed
-- B.run(cond, players, ms, due)  T.wait(cond) over the players' live
--   clients (p.cl), again after every change of the client list (cond
--   may return "changed"), until cond returns true; raises after ms.
--   due() (optional): when the bench next has something to do, in
--   client.now() microseconds, so that the wait wakes up then
-- B.rcvbuf_errors() -> n         the system's UDP RcvbufErrors so far
--   (/proc/net/snmp; 0 when unreadable): datagrams the kernel dropped
--   because a socket's receive buffer was full, in any process
-- B.percentiles(list) -> { n, p50, p99, max, mean }   nearest rank
-- B.fmt(x)                       a number as "%.1f", or "n/a"
-- B.result(fields)               prints "RESULT k=v ..." in the given order
--                                (fields: an array of { key, value })

local ffi = require "ffi"

local src = debug.getinfo(1, "S").source
local dir = src:sub(1, 1) == "@" and (src:sub(2):match("^(.*)/[^/]*$") or ".") or "."
local repo = dir .. "/.."

if not os.getenv("LUA_PATH") then
	package.path = repo .. "/lualib/?.lua;" .. repo .. "/lualib/?/init.lua;" .. package.path
end
if not os.getenv("LUA_CPATH") then
	package.cpath = repo .. "/build/lua/?.so;" .. package.cpath
end

-- (the struct only guards against declaring setenv twice)
if not pcall(ffi.typeof, "struct netbench_guard") then
	ffi.cdef [[
	struct netbench_guard { int unused; };
	int netbench_setenv(const char *name, const char *value, int overwrite) __asm__("setenv");
	]]
end
-- moongate.test and moongate.netem read these. Without either, this
-- repository's build/; moongate.netem finds moongate-netem beside
-- $MOONGATE_BIN by itself.
if not os.getenv("MOONGATE_BIN") and not os.getenv("MOONGATE_NETEM_BIN") then
	ffi.C.netbench_setenv("MOONGATE_NETEM_BIN", repo .. "/build/moongate-netem", 0)
end
ffi.C.netbench_setenv("MOONGATE_BIN", repo .. "/build/moongate", 0)

local T = require "moongate.test"

local B = { T = T, dir = dir, repo = repo }

function B.options(defaults, argv)
	local o = {}
	for k, v in pairs(defaults) do
		local env = os.getenv(k:upper())
		if env and env ~= "" then
			v = tonumber(env) or env
		end
		o[k] = v
	end
	for _, a in ipairs(argv or {}) do
		local k, v = a:match("^([%w_]+)=(.*)$")
		if not k or defaults[k:lower()] == nil then
			local keys = {}
			for name in pairs(defaults) do keys[#keys + 1] = name end
			table.sort(keys)
			io.stderr:write(("usage: %s [KEY=value ...]; keys (also from the environment, upper case): %s\n")
				:format(arg and arg[0] or "bench", table.concat(keys, " ")))
			os.exit(2)
		end
		o[k:lower()] = tonumber(v) or v
	end
	return o
end

-- ---- a numbered message stream ------------------------------------------

local Flow = {}
Flow.__index = Flow

function B.flow(id, size)
	return setmetatable({ id = id, size = size or 32, seq = 0, at = {}, got = {},
		nsent = 0, nrecv = 0, dups = 0, ooo = 0, last = 0, lat = {} }, Flow)
end

-- The next message (not yet counted as sent: call f:sent if c:send took it).
function Flow:payload(now_us)
	local head = ("%d %d %d "):format(self.id, self.seq + 1, now_us)
	if #head < self.size then
		head = head .. ("x"):rep(self.size - #head)
	end
	return head, self.seq + 1
end

function Flow:sent(seq, now_us)
	self.seq = seq
	self.at[seq] = now_us
	self.nsent = self.nsent + 1
end

-- An echo: the seq and its latency in ms, or nil when it is not one of
-- ours (another message of the service).
function Flow:echo(data, now_us)
	local id, seq, t = data:match("^(%d+) (%d+) (%d+) ")
	if not id then
		return nil
	end
	id, seq, t = tonumber(id), tonumber(seq), tonumber(t)
	assert(id == self.id, ("flow %d got flow %d's message"):format(self.id, id))
	assert(self.at[seq] == t, ("flow %d: echo %d carries a time never sent"):format(self.id, seq))
	if self.got[seq] then
		self.dups = self.dups + 1
		return seq, nil
	end
	self.got[seq] = true
	self.nrecv = self.nrecv + 1
	if seq < self.last then -- a gap is a loss, not a reordering
		self.ooo = self.ooo + 1
	end
	self.last = math.max(self.last, seq)
	local ms = (now_us - t) / 1000
	self.lat[#self.lat + 1] = ms
	return seq, ms
end

function Flow:lost()
	return self.nsent - self.nrecv
end

-- ---- the loop --------------------------------------------------------------

-- cond() returns true (done), "changed" (a player's client was replaced:
-- wait again over the new list) or a false value (go on).
-- T.wait steps what it is given as clients: an object with a field c that
-- answers step, fd and check. This one has no socket and is due when the
-- bench is, so the wait does not sleep past a send (it would otherwise
-- sleep until a client's timer, up to 50 ms).
local function clock(due)
	local c = {}
	function c.step() return {} end
	function c.fd() return -1 end
	function c.check(_, now) return due() or now + 50000 end
	return { c = c, step = function() return {} end,
		describe = function() return "the bench's clock" end }
end

function B.run(cond, players, ms, due)
	local deadline = T.now_ms() + ms
	while true do
		local list = { due and clock(due) or nil }
		for _, p in ipairs(players) do
			if p.cl and p.cl.c then
				list[#list + 1] = p.cl
			end
		end
		local left = deadline - T.now_ms()
		if left <= 0 then
			error("netbench: the run did not end within " .. ms .. " ms", 2)
		end
		local r
		T.wait(function()
			r = cond()
			return r
		end, left, unpack(list))
		if r == true then
			return
		end
	end
end

-- ---- figures ---------------------------------------------------------------

function B.rcvbuf_errors()
	local f = io.open("/proc/net/snmp")
	if not f then
		return 0
	end
	local names, values
	for line in f:lines() do
		if line:match("^Udp: %a") then
			names = line
		elseif line:match("^Udp: %d") then
			values = line
		end
	end
	f:close()
	if not names or not values then
		return 0
	end
	local i, col = 0, nil
	for w in names:gmatch("%S+") do
		if w == "RcvbufErrors" then col = i end
		i = i + 1
	end
	i = 0
	for w in values:gmatch("%S+") do
		if i == col then return tonumber(w) or 0 end
		i = i + 1
	end
	return 0
end

function B.percentiles(list)
	local v = {}
	local sum = 0
	for i, x in ipairs(list) do
		v[i] = x
		sum = sum + x
	end
	table.sort(v)
	local n = #v
	local function rank(q)
		if n == 0 then
			return nil
		end
		return v[math.max(1, math.ceil(q * n))]
	end
	return { n = n, p50 = rank(0.5), p99 = rank(0.99), max = v[n],
		min = v[1], mean = n > 0 and sum / n or nil }
end

function B.fmt(x, f)
	if x == nil then
		return "n/a"
	end
	return (f or "%.1f"):format(x)
end

function B.result(fields)
	local parts = { "RESULT" }
	for _, kv in ipairs(fields) do
		parts[#parts + 1] = kv[1] .. "=" .. tostring(kv[2])
	end
	print(table.concat(parts, " "))
	io.stdout:flush()
end

function B.log(fmt, ...)
	io.stderr:write(("[%7.1f s] "):format((T.now_ms() - B.t0) / 1000), fmt:format(...), "\n")
	io.stderr:flush()
end
B.t0 = T.now_ms()

return B
