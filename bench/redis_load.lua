-- bench/redis_load.lua - what Redis sees per player (bench/redis_load_bench.sh
-- starts the server and Redis): --players clients log in, quick-match into
-- lockstep rooms (on a server with workers, players are moved to the room's
-- worker), send inputs at --hz for --seconds, then leave and close. Redis's
-- total_commands_processed (INFO stats, through redis-cli) is read between
-- the phases. Prints
--   RESULT bench=redis_load players=N seconds=S per_login=... per_match=... moves=M per_player_s=... per_leave=...
-- per_login and per_match and per_leave: commands per player for that
-- phase; per_player_s: commands per player per second while they play.
local client = require "moongate.client"
local json = require "moongate.json"
local ffi = require "ffi"

local opt = { players = 200, seconds = 20, hz = 20 }
local i = 1
while i <= #arg do
	local k, v = arg[i], arg[i + 1]
	if k == "--url" then opt.url = v
	elseif k == "--key" then opt.key = v
	elseif k == "--redis" then opt.redis = v
	elseif k == "--players" then opt.players = tonumber(v)
	elseif k == "--seconds" then opt.seconds = tonumber(v)
	elseif k == "--hz" then opt.hz = tonumber(v)
	else error("redis_load: unknown option " .. tostring(k)) end
	i = i + 2
end
assert(opt.url and opt.key and opt.redis, "--url, --key and --redis (socket) are needed")

ffi.cdef [[
struct rl_pollfd { int fd; short events; short revents; };
int poll(struct rl_pollfd *fds, unsigned long n, int timeout);
]]
local pfds = ffi.new("struct rl_pollfd[?]", 2 * opt.players + 8)
local function now_ms() return client.now() / 1000 end

-- Redis's command count (the INFO that reads it is one more)
local function redis_commands()
	local f = assert(io.popen("redis-cli -s " .. opt.redis .. " INFO stats"))
	local s = f:read("*a")
	f:close()
	return assert(tonumber(s:match("total_commands_processed:(%d+)")), "no INFO from Redis")
end

local ps = {}
for k = 1, opt.players do
	local c = assert(client.connect(opt.url, json.encode({ v = 1, name = "rl" .. k .. "_" .. os.time() }),
		{ server_key = opt.key }))
	ps[k] = { c = c, logins = 0, joined = false, moves = 0 }
end

-- Step every client once (waiting up to ms for any socket); fn(p, ev) per event.
local function step(ms, fn)
	local n = 0
	for _, p in ipairs(ps) do
		if p.c then
			local fd = p.c:fd()
			if fd >= 0 then
				pfds[n].fd, pfds[n].events, pfds[n].revents = fd, 1, 0
				n = n + 1
			end
		end
	end
	ffi.C.poll(pfds, n, ms)
	for _, p in ipairs(ps) do
		if p.c then
			for _, ev in ipairs(p.c:step(0)) do
				if ev.type == "message" and ev.data:byte(1) == 123 then
					local m = json.decode(ev.data)
					if type(m) == "table" then
						if m.op == "login" then p.logins = p.logins + 1 end
						if m.op == "joined" then p.joined = true end
						if m.op == "error" then
							io.stderr:write("redis_load: error: ", ev.data, "\n")
						end
					end
				elseif ev.type == "moved" then
					p.moves = p.moves + 1
				elseif ev.type == "close" then
					p.closed = ev
				end
				if fn then fn(p, ev) end
			end
		end
	end
end

local function wait(cond, ms, what)
	local deadline = now_ms() + ms
	while not cond() do
		if now_ms() > deadline then
			error("redis_load: " .. what .. ": not done in " .. ms .. " ms")
		end
		step(10)
	end
end

local function all(f)
	return function()
		for _, p in ipairs(ps) do
			if not f(p) then return false end
		end
		return true
	end
end

local r0 = redis_commands()
wait(all(function(p) return p.logins >= 1 end), 60000, "logins")
local r1 = redis_commands()
-- quick match one at a time (in one process it is serialized; here a
-- player matched before the next asks, so rooms fill as they would)
for _, p in ipairs(ps) do
	assert(p.c:send(json.encode({ op = "join", mode = "lockstep" })))
	wait(function() return p.joined end, 20000, "a join")
end
local r2 = redis_commands()
local moves = 0
for _, p in ipairs(ps) do moves = moves + p.moves end
-- play: inputs at hz for seconds
local t0 = now_ms()
local next_send = t0
local seq = 0
while now_ms() - t0 < opt.seconds * 1000 do
	if now_ms() >= next_send then
		seq = seq + 1
		for _, p in ipairs(ps) do
			p.c:send("I" .. seq)
		end
		next_send = next_send + 1000 / opt.hz
	end
	step(math.max(0, math.floor(next_send - now_ms())))
end
local played = (now_ms() - t0) / 1000
local r3 = redis_commands()
for _, p in ipairs(ps) do
	p.c:send(json.encode({ op = "leave" }))
	p.c:close()
end
wait(all(function(p) return p.closed end), 20000, "closes")
-- the close callbacks' saves come after the close events: a moment more
local settle = now_ms()
while now_ms() - settle < 500 do step(10) end
local r4 = redis_commands()
local n = opt.players
print(("RESULT bench=redis_load players=%d seconds=%.1f per_login=%.2f per_match=%.2f moves=%d per_player_s=%.4f per_leave=%.2f"):format(
	n, played, (r1 - r0 - 1) / n, (r2 - r1 - 1) / n, moves, (r3 - r2 - 1) / (n * played),
	(r4 - r3 - 1) / n))
