-- arena: a small authoritative game, run by the room service (mode
-- "arena"). Players move on a grid; the server ticks at 20 Hz, moves
-- everyone by the input they last sent, scores the coin, and sends the
-- state of the whole room to every member each tick.
--
-- Change a rule below and save: with lua.watch_ms set (config.lua here
-- sets it), the server reloads this file and every live room plays by the
-- new rule from its next tick. Nobody is disconnected. A mistake (a
-- syntax error) is refused, logged with the line, and the old rule stays.
--
-- Client -> server: "m DX DY" (DX, DY in -1..1), reliable or unreliable.
-- Server -> client, reliable, every tick:
--   {"op":"state","tick":N,"speed":1,"coin":[x,y],"players":[[id,x,y,score],...]}
local moongate = require "moongate"
local json = require "moongate.json"

local M = {}

-- ---- the rules -------------------------------------------------------------
M.tick_rate = 20     -- ticks per second
M.capacity = 8       -- players per room
local SIZE = 16      -- the grid is SIZE x SIZE cells
local SPEED = 1      -- cells a player moves per tick
local COIN = 1       -- points for a coin
-- -------------------------------------------------------------------------------

local function clamp(v)
	return math.max(0, math.min(SIZE - 1, v))
end

local function place_coin(st)
	st.coin = { math.random(0, SIZE - 1), math.random(0, SIZE - 1) }
end

function M.init(room)
	room.state.players = {}
	place_coin(room.state)
end

function M.join(room, p)
	room.state.players[p.id] = { x = math.random(0, SIZE - 1), y = math.random(0, SIZE - 1),
		dx = 0, dy = 0, score = p.data.score or 0 }
end

function M.leave(room, p)
	local me = room.state.players[p.id]
	if me then
		p.data.score = me.score -- kept with the player (service login)
	end
	room.state.players[p.id] = nil
end

function M.message(room, p, data)
	local dx, dy = data:match("^m (%-?%d) (%-?%d)$")
	local me = room.state.players[p.id]
	if not dx or not me then
		return
	end
	me.dx = math.max(-1, math.min(1, tonumber(dx)))
	me.dy = math.max(-1, math.min(1, tonumber(dy)))
end

function M.tick(room, tick)
	local st = room.state
	local list = {}
	for id, me in pairs(st.players) do
		me.x = clamp(me.x + me.dx * SPEED)
		me.y = clamp(me.y + me.dy * SPEED)
		if me.x == st.coin[1] and me.y == st.coin[2] then
			me.score = me.score + COIN
			place_coin(st)
		end
		list[#list + 1] = { id, me.x, me.y, me.score }
	end
	table.sort(list, function(a, b) return a[1] < b[1] end)
	room:broadcast(json.encode({ op = "state", tick = tick, speed = SPEED,
		coin = st.coin, players = list }))
end

-- Called on the new code before it replaces the old: a chance to migrate
-- room.state. An error here refuses the reload.
function M.reload()
	moongate.info("arena: rules now: size %d, speed %d, coin %d", SIZE, SPEED, COIN)
end

return M
