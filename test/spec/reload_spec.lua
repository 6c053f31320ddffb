-- Hot reload under play (issue 6): four bots play the arena at 20 Hz in
-- two rooms while its rule changes live; a reload with a syntax error is
-- refused and the old rule keeps working. No session drops, no tick is
-- missed: every bot sees every tick number, in order.
local T = require "moongate.test"
local json = require "moongate.json"

local function read(path)
	local f = assert(io.open(path, "rb"))
	local s = f:read("*a")
	f:close()
	return s
end

local function write(path, s)
	local f = assert(io.open(path, "wb"))
	f:write(s)
	f:close()
end

describe("hot reload while bots play", function()
	local srv, bots
	local arena = read(T.repo_dir() .. "/examples/arena/arena.lua")
	assert(arena:find("local SPEED = 1", 1, true), "examples/arena/arena.lua changed: update this spec")

	lazy_setup(function()
		srv = T.start_server{
			services = { "handshake", "login", "room" },
			inline = { arena = arena },
			config = { settings = { room = { modes = { arena = "arena" } } } },
		}
		bots = {}
		for i = 1, 4 do
			local b = T.connect(srv, i % 2 == 0 and "tcp" or "udp", json.encode({ v = 1, name = "bot" .. i }))
			b.read_states, b.ticks, b.gaps, b.speeds = 0, 0, 0, {}
			bots[i] = b
		end
	end)
	lazy_teardown(T.stop_all)

	-- Step every bot; each state it gets is checked (the tick follows the
	-- last one) and answered with a move, as a game client would.
	local function play(until_fn, ms)
		T.wait(function()
			for _, b in ipairs(bots) do
				assert(not b.closed, "a bot was closed: " .. json.encode(b.closed or {}))
				while b.read_states < #b.messages do
					b.read_states = b.read_states + 1
					local m = json.decode(b.messages[b.read_states])
					if m and m.op == "login" then
						b.id = m.id
					elseif m and m.op == "joined" then
						b.room = m.room
					elseif m and m.op == "state" then
						if b.last and m.tick ~= b.last + 1 then
							b.gaps = b.gaps + 1
						end
						b.last, b.ticks = m.tick, b.ticks + 1
						b.speed = m.speed
						b.speeds[m.speed] = (b.speeds[m.speed] or 0) + 1
						assert(b:send_unreliable("m 1 0"))
					end
				end
			end
			return until_fn()
		end, ms, unpack(bots))
	end

	local function all(pred)
		return function()
			for _, b in ipairs(bots) do
				if not pred(b) then
					return false
				end
			end
			return true
		end
	end

	it("changes a rule for every live room, then refuses a broken file", function()
		-- two rooms of two: bots 1 and 3 create, 2 and 4 join theirs
		play(all(function(b) return b.id end), 5000)
		for _, i in ipairs({ 1, 3 }) do
			assert(bots[i]:send(json.encode({ op = "create", mode = "arena", capacity = 2 })))
		end
		play(function() return bots[1].room and bots[3].room end, 5000)
		assert(bots[2]:send(json.encode({ op = "join", room = bots[1].room })))
		assert(bots[4]:send(json.encode({ op = "join", room = bots[3].room })))
		assert.are_not.equal(bots[1].room, bots[3].room)
		play(all(function(b) return b.ticks >= 20 end), 10000) -- a second of play
		assert.is_true(all(function(b) return b.speed == 1 end)())

		-- the rule changes: everyone moves 2 cells per tick from the next tick on
		local path = srv.dir .. "/arena.lua"
		write(path, (arena:gsub("local SPEED = 1", "local SPEED = 2")))
		srv:hup()
		play(all(function(b) return b.speed == 2 end), 5000)
		assert.truthy(srv:log():find("reload: arena reloaded", 1, true))
		local at = {}
		for i, b in ipairs(bots) do at[i] = b.ticks end
		play(all(function(b) return b.ticks >= 20 + at[1] end), 10000)

		-- a broken file: refused with the file and the line, old rule stays
		write(path, (arena:gsub("local SPEED = 1", "local SPEED = = 3")))
		srv:hup()
		local line
		for n, l in ipairs((function() local t = {} for x in arena:gmatch("[^\n]*\n") do t[#t + 1] = x end return t end)()) do
			if l:find("local SPEED = 1", 1, true) then line = n end
		end
		play(function() return srv:log():find("reload: arena refused", 1, true) end, 5000)
		assert.truthy(srv:log():find("arena.lua:" .. line .. ":", 1, true))
		for i, b in ipairs(bots) do at[i] = b.ticks end
		play(all(function(b) return b.ticks >= 20 + at[1] end), 10000)
		for _, b in ipairs(bots) do
			assert.are.equal(2, b.speed)
			assert.are.equal(0, b.gaps)          -- no tick missed
			assert.is_nil(b.closed)              -- no session dropped
			for _, ev in ipairs(b.events) do
				assert.are_not.equal("offline", ev.type)
			end
		end
	end)
end)
