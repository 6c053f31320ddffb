-- bench/login_bench.lua - logins per second against a running server
-- (bench/login_bench.sh starts it): keeps --inflight logins going, each a
-- new client (handshake v2 with the pinned key) whose hello names a new
-- player, waits for the login service's {"op":"login"} reply, closes, and
-- starts the next, for --seconds. Prints
--   RESULT bench=login mode=... logins=N seconds=S logins_per_s=... p50_ms=... p99_ms=... failed=F server_cpu=... logins_per_server_cpu_s=... bot_cpu=...
-- server CPU from /proc/PID/stat (--server-pid), over the measured time.
local client = require "moongate.client"
local json = require "moongate.json"
local ffi = require "ffi"

local opt = { url = nil, key = nil, inflight = 64, seconds = 10, pid = nil, mode = "?",
	warmup = 1 }
local i = 1
while i <= #arg do
	local k, v = arg[i], arg[i + 1]
	if k == "--url" then opt.url = v
	elseif k == "--key" then opt.key = v
	elseif k == "--inflight" then opt.inflight = tonumber(v)
	elseif k == "--seconds" then opt.seconds = tonumber(v)
	elseif k == "--warmup" then opt.warmup = tonumber(v)
	elseif k == "--server-pid" then opt.pid = v
	elseif k == "--mode" then opt.mode = v
	else error("login_bench: unknown option " .. tostring(k)) end
	i = i + 2
end
assert(opt.url, "--url udp://HOST:PORT")

local hz = 100 -- CLK_TCK
local function cpu_ticks(pid)
	local f = io.open("/proc/" .. pid .. "/stat")
	if not f then return 0 end
	local s = f:read("*a")
	f:close()
	local rest = s:match("%) (.*)$")
	local fields = {}
	for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
	return tonumber(fields[12]) + tonumber(fields[13])
end

ffi.cdef [[
struct lb_pollfd { int fd; short events; short revents; };
int poll(struct lb_pollfd *fds, unsigned long n, int timeout);
]]
local pfds = ffi.new("struct lb_pollfd[1024]")
local function now_ms() return client.now() / 1000 end

local live = {}   -- c -> { t0 = ms }
local n_live = 0
local serial = 0
local done, failed = 0, 0
local lat = {}
local measuring = false
local t_start = now_ms()
local t_measure, t_end = t_start + opt.warmup * 1000, t_start + (opt.warmup + opt.seconds) * 1000
local cpu0, bot0
local stamp = tostring(os.time())

local function start_one()
	serial = serial + 1
	local hello = json.encode({ v = 1, name = "b" .. stamp .. "_" .. serial })
	local c, err = client.connect(opt.url, hello, { server_key = opt.key })
	if not c then
		failed = failed + 1
		return
	end
	live[c] = { t0 = now_ms() }
	n_live = n_live + 1
end

local function finish(c, ok)
	local t = live[c]
	live[c] = nil
	n_live = n_live - 1
	if ok then
		if measuring then
			done = done + 1
			lat[#lat + 1] = now_ms() - t.t0
		end
		c:close(0, "bye")
	elseif measuring then
		failed = failed + 1
	end
	c:release()
end

while true do
	local now = now_ms()
	if not measuring and now >= t_measure then
		measuring = true
		cpu0 = opt.pid and cpu_ticks(opt.pid) or 0
		bot0 = os.clock()
	end
	if now >= t_end then break end
	while n_live < opt.inflight do start_one() end
	local any = false
	for c, t in pairs(live) do
		local evs = c:step(0)
		for _, ev in ipairs(evs) do
			any = true
			if ev.type == "message" then
				local m = json.decode(ev.data)
				if m and m.op == "login" then finish(c, true) break end
			elseif ev.type == "close" then
				finish(c, false)
				break
			end
		end
		if live[c] and now - t.t0 > 10000 then finish(c, false) end
	end
	if not any then -- wait for any client's socket, at most 1 ms
		local n = 0
		for c in pairs(live) do
			local fd = c:fd()
			if fd and fd >= 0 and n < 1024 then
				pfds[n].fd, pfds[n].events, pfds[n].revents = fd, 1, 0
				n = n + 1
			end
		end
		ffi.C.poll(pfds, n, 1)
	end
end
local elapsed = (now_ms() - t_measure) / 1000
local cpu = opt.pid and (cpu_ticks(opt.pid) - cpu0) / hz / elapsed or -1
local bot = (os.clock() - bot0) / elapsed
for c in pairs(live) do c:release() end
table.sort(lat)
local function pct(p) return #lat > 0 and lat[math.max(1, math.ceil(#lat * p))] or 0 end
print(("RESULT bench=login mode=%s logins=%d seconds=%.1f logins_per_s=%.0f p50_ms=%.1f p99_ms=%.1f failed=%d server_cpu=%.2f logins_per_server_cpu_s=%.0f bot_cpu=%.2f inflight=%d")
	:format(opt.mode, done, elapsed, done / elapsed, pct(0.5), pct(0.99), failed, cpu,
		cpu > 0 and done / elapsed / cpu or 0, bot, opt.inflight))
