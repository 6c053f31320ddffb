-- A bot that plays the arena: it logs in, quick-matches into an arena room,
-- and walks towards the coin. Run from the repository root:
--   luajit examples/arena/bot.lua [--url auto://127.0.0.1:7788] [--bots 4] [--seconds 0]
-- (--seconds 0: until Ctrl-C). Once a second it prints what it sees.
local here = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/"
local root = here .. "../../"
package.path = root .. "lualib/?.lua;" .. root .. "lualib/?/init.lua;" .. package.path
package.cpath = root .. "build/lua/?.so;" .. package.cpath

local client = require "moongate.client"
local json = require "moongate.json"

local opts = { url = "auto://127.0.0.1:7788", bots = 4, seconds = 0, name = "bot" }
local i = 1
while i <= #arg do
	local k = arg[i]:match("^%-%-(%w+)$")
	if not k or opts[k] == nil or not arg[i + 1] then
		io.stderr:write("usage: luajit examples/arena/bot.lua [--url URL] [--bots N] [--seconds S] [--name PREFIX]\n")
		os.exit(2)
	end
	opts[k] = type(opts[k]) == "number" and tonumber(arg[i + 1]) or arg[i + 1]
	i = i + 2
end

local bots = {}
for n = 1, opts.bots do
	local c = assert(client.connect(opts.url, json.encode({ v = 1, name = opts.name .. n })))
	bots[n] = { c = c, n = n, ticks = 0, gaps = 0 }
end

local function now_ms()
	return client.now() / 1000
end

local start = now_ms()
local report = start + 1000
local running = true
while running do
	for _, b in ipairs(bots) do
		-- the first bot waits up to 5 ms for its socket: the loop's pace
		for _, ev in ipairs(b.c:step(b.n == 1 and 5 or 0)) do
			if ev.type == "message" then
				local m = json.decode(ev.data)
				if m and m.op == "login" then
					b.id = m.id
					b.c:send(json.encode({ op = "join", mode = "arena" }))
				elseif m and m.op == "joined" then
					b.room = m.room
				elseif m and m.op == "state" then
					if b.last and m.tick ~= b.last + 1 then
						b.gaps = b.gaps + 1
					end
					b.last, b.ticks, b.speed = m.tick, b.ticks + 1, m.speed
					for _, p in ipairs(m.players) do
						if p[1] == b.id then
							b.x, b.y, b.score = p[2], p[3], p[4]
						end
					end
					if b.x then -- walk towards the coin
						local dx = m.coin[1] > b.x and 1 or m.coin[1] < b.x and -1 or 0
						local dy = m.coin[2] > b.y and 1 or m.coin[2] < b.y and -1 or 0
						b.c:send_unreliable(("m %d %d"):format(dx, dy))
					end
				elseif m and m.op == "error" then
					print(("bot %d: %s: %s"):format(b.n, m.req, m.reason))
				end
			elseif ev.type == "close" then
				print(("bot %d closed: %s"):format(b.n, ev.reason))
				running = false
			end
		end
	end
	local t = now_ms()
	if t >= report then
		report = report + 1000
		local parts = {}
		for _, b in ipairs(bots) do
			parts[#parts + 1] = ("bot%d room %s tick %s speed %s score %s gaps %d"):format(
				b.n, tostring(b.room), tostring(b.last), tostring(b.speed), tostring(b.score), b.gaps)
		end
		print(table.concat(parts, " | "))
	end
	if opts.seconds > 0 and t - start >= opts.seconds * 1000 then
		running = false
	end
end
for _, b in ipairs(bots) do
	b.c:close(0, "bye")
end
