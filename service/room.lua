-- room: rooms with capacity and metadata, each run by a game logic module
-- at its own tick rate, with state sync and frame sync (docs/SERVICES.md).
-- Needs the login service before it in `services` (a member is a player).
--
-- Client requests (JSON on the reliable stream) and their replies:
--   {"op":"rooms"[,"mode":"arena"][,"after":ID]} -> {"op":"rooms","rooms":[...][,"more":true]}
--   {"op":"create","mode":"relay","capacity":8,"meta":{...},"params":{...}}
--                                           -> {"op":"created","room":3} then joined
--   {"op":"join","room":3}                  -> {"op":"joined",...}
--   {"op":"join","mode":"arena"}            -> quick match: a free seat or a new room
--   {"op":"leave"}                          -> {"op":"left","room":3,"reason":"left"}
--   a failure                               -> {"op":"error","req":"join","reason":"room is full"}
-- A request with a field of the wrong kind (a "room" that is not a
-- number, a "meta" that is not an object...) gets an error too.
-- Members hear {"op":"member","event":"join"|"leave"|"away"|"back","id":7,"name":"ann"}.
-- Any other reliable message starting with "{" (a JSON object with an op
-- the room does not know, or no op, or not JSON) from a player in no room
-- is answered {"op":"error"[,"req":OP],"reason":...} and taken: a game
-- service with JSON ops of its own for players outside rooms is listed
-- before "room" in `services`. A seated player's goes to the room's
-- logic (M.message), or gets that error when the logic has no message.
-- Anything else a member sends goes to the room's logic (message), except:
--   state-sync rooms: datagrams are states, relayed newest-wins each tick
--     to the other members (moongate.relay: bundles "S...", moongate.sync);
--   frame-sync rooms: reliable messages starting with "I" are inputs,
--     collected per frame and sent to every member each tick ("F...").
--
-- A member whose session goes offline or closes keeps its seat for
-- settings.room.hold_ms; logging in again with the cookie (service login)
-- puts it back in the seat: {"op":"joined", ..., "rejoined":true}. A
-- frame-sync member then catches up from the frame history (from the
-- frame after the "frame" N its hello says it has, else from the first
-- one it was not sent), or gets {"op":"resync",...}. joined's "frame" is
-- the first frame the member receives next.
--
-- The seat a player holds is part of its login record (player.held_seat,
-- saved by login.save): with Redis (service login's store) it survives a
-- restart or a crash of the server. A cookie login after one finds its
-- room gone from memory: the room is made again (same id, mode, capacity
-- and meta) and the player seated in
-- it, "rejoined" (init with its params, then restore with the logic's
-- saved state); the next members of that room coming back join it. A
-- room whose id was taken meanwhile by another room (its token differs)
-- is gone: {"op":"left","room":ID,"reason":"room gone"}.
--
-- A logic module (settings.room.modes maps a mode to a module name):
--   M.tick_rate = 20             ticks per second (1..100)
--   M.sync = "state"|"frame"|nil
--   M.grid = 0                   state sync: grid cell size (0: no grid filter)
--   M.init(room, params)         M.join_attempt(room, player, meta) -> ok, reason
--   M.join(room, player)         M.leave(room, player, reason)
--   M.away(room, player)         M.back(room, player)
--   M.tick(room, tick)           M.message(room, player, data, reliable, seq)
--   M.filter(room, receiver_id, sender_ids) -> ids   (state sync interest)
--   M.snapshot(room, player) -> string               (frame sync resync)
--   M.dispose(room)
--   M.save(room) -> value        M.restore(room, value)   M.save_ms
--     (with the directory: the state that outlives this process, written
--     beside the room's entry; docs/SERVICES.md, "A room's state")
-- Every callback is optional and runs under pcall: an error is logged
-- with the room and the traceback, and the room goes on.
--
-- settings.room (all optional):
--   { modes = { relay = "room_relay", lockstep = "room_lockstep" },
--     rooms_max = 10000, capacity_max = 64, hold_ms = 60000,
--     client_create = true, meta_max = 1024, history = 256, list_max = 50,
--     route = true, move_ms = 10000, save_ms = 0, state_max = 65536 }
--   move_ms: how long a seat reserved for a player moved to the room's
--   worker or node waits for it (see "rooms on other workers and nodes")
--   route: a member's datagrams in a state-sync room go into the room's
--   relay in C (relay:route), without a Lua callback per state; false:
--   through M.message (services listed before "room" then see them too)
local moongate = require "moongate"
local json = require "moongate.json"

local S = moongate.state("room")

-- login.save(player), when the login service is loaded: the held seat in
-- the player's record (Redis). Never fatal: a callback that cannot wait
-- (a module's loading) or a Redis error is logged.
local function save(p)
	local login = package.loaded.login
	if not (login and login.save) then
		return
	end
	local ok, err = pcall(login.save, p)
	if not ok then
		moongate.debug("room: seat of %s not saved: %s", tostring(p.uid), tostring(err))
	end
end

local function wall_ms()
	return math.floor(moongate.time() * 1000)
end

-- The room directory in Redis (service/room_dir.lua): called through its
-- table, so that a reload of room_dir takes effect here.
local D = require "room_dir"
local store_prefix = D.prefix
local redis = require "moongate.redis"

-- What a player's record says of its seat (player.held_seat).
local function seat_record(room, p, hold_until)
	return { room = room.id, token = room.token, seat = p.seat, mode = room.mode,
		capacity = room.capacity, meta = room.meta, ["until"] = hold_until }
end
local M = {}

S.rooms = S.rooms or {}     -- id -> room
S.tick_hist = S.tick_hist or {} -- mode -> { n, sum, b }: tick durations
S.relay_done = S.relay_done or {} -- mode -> relay counters of closed rooms

local RELAY_COUNTERS = { puts = "moongate_relay_states_in_total",
	relayed = "moongate_relay_states_out_total", datagrams = "moongate_relay_datagrams_total",
	bytes = "moongate_relay_bytes_total" }
local RELAY_HELP = { puts = "states members sent into state-sync rooms' relays",
	relayed = "states relayed to members (one per receiver): out / in is the fan-out",
	datagrams = "datagrams the relays sent", bytes = "bytes the relays sent" }
S.nrooms = S.nrooms or 0
S.next_id = S.next_id or 0

local default_modes = { relay = "room_relay", lockstep = "room_lockstep" }

local function config()
	local c = moongate.settings("room")
	local modes = {}
	for k, v in pairs(default_modes) do
		modes[k] = v
	end
	for k, v in pairs(c.modes or {}) do
		modes[k] = v
	end
	return {
		modes = modes,
		rooms_max = c.rooms_max or 10000,
		capacity_max = c.capacity_max or 64,
		hold_ms = c.hold_ms or 60000,
		move_ms = c.move_ms or 10000,
		client_create = c.client_create ~= false,
		meta_max = c.meta_max or 1024,
		history = c.history or 256,
		list_max = c.list_max or 50,
		route = c.route ~= false,
		state_max = c.state_max or 65536,
		save_ms = c.save_ms or 0,
	}
end

-- The methods of room objects: M.Room, patched in place by a reload. Live
-- rooms reach them through a metatable made once (kept in the state), so
-- they get the new methods only when a reload is accepted.
local Room = {}
M.Room = Room
if not S.meta then
	S.meta = { __index = function(_, k) return M.Room[k] end }
end

local function send(session, t)
	if session and session:alive() then
		session:send(json.encode(t))
	end
end

-- Call logic[cb](room, ...) under pcall; returns its results, or nil
-- after logging the error.
local function call(room, cb, ...)
	local fn = room.logic[cb]
	if not fn then
		return
	end
	local r = { xpcall(fn, debug.traceback, room, ...) }
	if not r[1] then
		moongate.error({ room = room.id, event = "error" }, "room %d (%s): %s failed: %s", room.id, room.mode, cb, tostring(r[2]))
		return
	end
	return unpack(r, 2, table.maxn(r))
end

-- What the logic saves of the room (M.save's value) as JSON, or nil and
-- why: no M.save, it failed (logged), it returned nil, its value is not
-- JSON, or it is above state_max bytes (logged: the last one saved stays).
local function saved_state(room)
	if not room.logic.save then
		return nil, "the logic has no save"
	end
	local v = call(room, "save")
	if v == nil then
		return nil, "save returned nothing"
	end
	local ok, js = pcall(json.encode, v)
	local max = config().state_max
	if not ok or #js > max then
		local why = not ok and ("not JSON: " .. tostring(js))
			or ("%d bytes, above settings.room.state_max %d"):format(#js, max)
		moongate.warn({ room = room.id, event = "room_state" }, "room %d (%s): state not saved: %s",
			room.id, room.mode, why)
		return nil, why
	end
	return js
end

-- The room's directory entry, with the logic's state when it saves one.
local function dir_write(room)
	if store_prefix() then
		return D.write(room, (saved_state(room)))
	end
end

function Room:members()
	local out = {}
	for _, p in pairs(self.seats) do
		out[#out + 1] = p
	end
	table.sort(out, function(a, b) return a.seat < b.seat end)
	return out
end

function Room:sessions()
	local out = {}
	for _, p in pairs(self.seats) do
		if p.session and p.session:alive() then
			out[#out + 1] = p.session
		end
	end
	return out
end

function Room:count()
	return self.n
end

function Room:send(player, data, unreliable)
	local s = player.session
	if not s then
		return nil, "away"
	end
	if unreliable then
		return s:send_unreliable(data)
	end
	return s:send(data)
end

function Room:broadcast(data, unreliable)
	return moongate.broadcast(self:sessions(), data, unreliable)
end

function Room:position(player, x, y)
	if self.relay then
		self.relay:position(player.id, x, y)
	end
end

-- The logic's leave gets "kicked"; the player hears {"op":"left",
-- "room":ID,"reason":"kicked"[,"detail":reason]}.
function Room:kick(player, reason)
	if player.room ~= self then
		return nil, "not in this room"
	end
	return M.leave(player, "kicked", reason)
end

-- Save the room's state in the directory now (M.save; with the login
-- service's Redis store): true, or nil and why. Waits for Redis.
function Room:save()
	if not store_prefix() then
		return nil, "no room directory (the login service keeps no Redis store)"
	end
	if self.closed or self.moved then
		return nil, "the room is not here any more"
	end
	local js, why = saved_state(self)
	if not js then
		return nil, why
	end
	return D.write(self, js)
end

function Room:close(reason)
	M.close_room(self, reason or "closed")
end

local function info(room)
	return { id = room.id, mode = room.mode, members = room.n,
		capacity = room.capacity, meta = room.meta }
end

local function member_info(p)
	return { id = p.id, name = p.name, seat = p.seat, away = p.away or nil }
end

local function tell(room, event, p)
	local msg = json.encode({ op = "member", room = room.id, event = event, id = p.id,
		name = p.name, seat = p.seat })
	local list = {}
	for _, q in pairs(room.seats) do
		if q ~= p and q.session and q.session:alive() then
			list[#list + 1] = q.session
		end
	end
	moongate.broadcast(list, msg)
end

-- frame: the first frame the member receives next (frame sync; the
-- current one by default, where a new member starts).
local function joined_msg(room, p, rejoined, frame)
	local members = {}
	for _, q in ipairs(room:members()) do
		members[#members + 1] = member_info(q)
	end
	return { op = "joined", room = room.id, mode = room.mode, seat = p.seat, id = p.id,
		tick_rate = room.tick_rate, sync = room.sync, tick = room.tick,
		frame = room.frames and (frame or room.frames:frame()) or nil,
		members = members, meta = room.meta, rejoined = rejoined or nil }
end

-- The room's tick: the logic, then the relay or the frame. The timer calls
-- M.tick_room through the module table, so a reload of this file takes
-- effect for live rooms at their next tick.
local clock = moongate.clock or os.clock
local TICK_LE = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1 }

-- A tick's duration (seconds) into its mode's histogram and the room's
-- moving average (the status page's top rooms).
local function tick_time(room, dt)
	local h = S.tick_hist[room.mode]
	if not h then
		h = { n = 0, sum = 0, b = {} }
		for i = 1, #TICK_LE + 1 do h.b[i] = 0 end
		S.tick_hist[room.mode] = h
	end
	local i = 1
	while i <= #TICK_LE and dt > TICK_LE[i] do i = i + 1 end
	h.b[i] = h.b[i] + 1
	h.n = h.n + 1
	h.sum = h.sum + dt
	room.tick_avg = room.tick_avg and room.tick_avg * 0.9 + dt * 0.1 or dt
end

function M.tick_room(room)
	if room.closed then
		return
	end
	local t0 = clock()
	M.tick_once(room)
	tick_time(room, clock() - t0)
end

function M.tick_once(room)
	room.tick = room.tick + 1
	call(room, "tick", room.tick)
	if room.relay then
		local filter = room.logic.filter
		if filter then
			room.relay:flush(function(rid, ids)
				local ok, keep = xpcall(filter, debug.traceback, room, rid, ids)
				if not ok then
					moongate.error({ room = room.id, event = "error" }, "room %d (%s): filter failed: %s", room.id, room.mode, keep)
					return nil
				end
				return keep
			end)
		else
			room.relay:flush()
		end
	end
	if room.frames then
		room.frames:step()
	end
end

-- Create a room (from a service of the game, or a client's "create").
-- Returns the room, or nil and the reason.
function M.create(mode, opts)
	opts = opts or {}
	local cfg = config()
	local modname = cfg.modes[mode]
	if not modname then
		return nil, "no such mode: " .. tostring(mode)
	end
	if S.nrooms >= cfg.rooms_max then
		return nil, "too many rooms"
	end
	local ok, logic = pcall(require, modname)
	if not ok or type(logic) ~= "table" then
		moongate.error("room: mode %s: module %s: %s", mode, modname, tostring(logic))
		return nil, "mode " .. mode .. " is broken"
	end
	local capacity = tonumber(opts.capacity) or logic.capacity or 8
	if capacity < 1 or capacity > cfg.capacity_max or capacity % 1 ~= 0 then
		return nil, "capacity: 1.." .. cfg.capacity_max
	end
	local meta = opts.meta
	if meta ~= nil and (type(meta) ~= "table" or #json.encode(meta) > cfg.meta_max) then
		return nil, "meta: a table of at most " .. cfg.meta_max .. " bytes of JSON"
	end
	local rate = tonumber(logic.tick_rate) or 20
	if rate < 1 or rate > 100 then
		return nil, "mode " .. mode .. ": tick_rate must be 1..100"
	end
	local id = opts.id
	if id ~= nil then -- a room made again (a held seat after a restart)
		if S.rooms[id] then
			return nil, "room " .. id .. " exists"
		end
		S.next_id = math.max(S.next_id, id)
	else
		id = D.new_id(S)
		if S.rooms[id] then -- a held room made again meanwhile took it
			return nil, "room id " .. id .. " taken: try again"
		end
	end
	local room = setmetatable({ id = id, mode = mode, logic = logic,
		-- tells this room from one with the same id before a restart
		token = opts.token or string.format("%d.%d", id, wall_ms()),
		capacity = capacity, meta = meta or {}, seats = {}, n = 0, tick = 0,
		tick_rate = rate, sync = logic.sync, state = {}, created = moongate.now() }, S.meta)
	if logic.sync == "state" then
		room.relay = moongate.relay{ grid = logic.grid or 0, radius = logic.radius or 1 }
	elseif logic.sync == "frame" then
		room.frames = moongate.frames{ history = logic.history or cfg.history }
	end
	S.rooms[room.id] = room
	S.nrooms = S.nrooms + 1
	local params = opts.params or {}
	local okp, pjs = pcall(json.encode, params)
	room.params_json = okp and #pjs <= cfg.state_max and pjs or nil -- (made again with them)
	call(room, "init", params)
	if opts.saved then -- made again from the directory: what the logic saved
		local okd, v = pcall(json.decode, opts.saved)
		if okd and v ~= nil and logic.restore then
			call(room, "restore", v)
		end
		room.tick = tonumber(opts.tick) or 0
	end
	room.timer = moongate.every(math.floor(1000 / rate + 0.5), function(t)
		if room.closed then
			t:cancel()
		else
			M.tick_room(room)
		end
	end)
	moongate.info({ room = room.id, event = "room_open" }, "room %d (%s) created, capacity %d, %d Hz", room.id, mode, capacity, rate)
	dir_write(room)
	local save_ms = tonumber(logic.save_ms) or cfg.save_ms
	if logic.save and save_ms > 0 and store_prefix() then
		-- checkpoints: a crash loses at most save_ms of the logic's state
		room.save_timer = moongate.every(math.max(50, math.floor(save_ms)), function(t)
			if room.closed or room.moved then
				t:cancel()
			else
				dir_write(room)
			end
		end)
	end
	if store_prefix() and not S.dir_timer then
		-- keeps the directory's entries of live rooms from expiring
		S.dir_timer = moongate.every(math.max(1000, math.floor(config().hold_ms / 2)), function()
			for _, r in pairs(S.rooms) do
				dir_write(r)
			end
		end)
	end
	return room
end

function M.close_room(room, reason)
	if room.closed then
		return
	end
	room.closed = true -- first: the last leave must not close it again
	room.timer:cancel()
	if room.save_timer then
		room.save_timer:cancel()
	end
	for _, p in ipairs(room:members()) do
		M.leave(p, reason)
	end
	call(room, "dispose")
	if room.relay then -- its counters stay in the metrics
		local st, done = room.relay:stats(), S.relay_done[room.mode] or {}
		for k in pairs(RELAY_COUNTERS) do done[k] = (done[k] or 0) + (st[k] or 0) end
		S.relay_done[room.mode] = done
	end
	S.rooms[room.id] = nil
	S.nrooms = S.nrooms - 1
	D.drop(room)
	moongate.info({ room = room.id, event = "room_close" }, "room %d (%s) closed: %s", room.id, room.mode, reason)
end

-- Seat a player (opts.seat: that seat if free; opts.rejoined: the joined
-- message says so). Returns the room, or nil and the reason.
function M.join(player, room, meta, opts)
	opts = opts or {}
	if player.room then
		return nil, "already in room " .. player.room.id
	end
	if room.closed then
		return nil, "no such room"
	end
	if room.n >= room.capacity then
		return nil, "room is full"
	end
	if room.logic.join_attempt then
		-- an error refuses (fail closed), as false does
		local done, r1, r2 = xpcall(room.logic.join_attempt, debug.traceback, room, player, meta)
		if not done then
			moongate.error({ room = room.id, event = "error" }, "room %d (%s): join_attempt failed: %s", room.id, room.mode, tostring(r1))
			return nil, "refused by the room (server error)"
		end
		if r1 == false then
			return nil, r2 or "refused by the room"
		end
	end
	local seat = opts.seat
	if not seat or room.seats[seat] or seat > room.capacity then
		seat = 1
		while room.seats[seat] do
			seat = seat + 1
		end
	end
	room.seats[seat] = player
	room.n = room.n + 1
	player.room, player.seat, player.away = room, seat, nil
	if room.relay then
		room.relay:add(player.id, player.session)
		if player.session and config().route then
			room.relay:route(player.id, player.session)
		end
	end
	if room.frames then
		room.frames:add(player.id, player.session)
	end
	-- the directory first: a quick match elsewhere that follows this
	-- player's "joined" counts it
	dir_write(room)
	send(player.session, joined_msg(room, player, opts.rejoined))
	tell(room, "join", player)
	call(room, "join", player)
	player.held_seat = seat_record(room, player)
	save(player)
	return room
end

-- ---- rooms on other workers and nodes -------------------------------------
-- A room lives in one worker. A player whose session is elsewhere is
-- moved there (docs/SERVICES.md, "Rooms across workers and nodes"): the
-- seat is reserved in its record (held_seat with move = true, for
-- settings.room.move_ms), then login.move closes its session with a move
-- to the room's worker (and node_url, on another node) whose hello is a
-- fresh cookie; the client library connects there, logs in with it, and
-- the cookie login seats it (restore_seat). The reservation is a promise,
-- not a lock: a room that filled meanwhile answers "room is full" there.

-- Move player to the room of directory entry d (back: to the seat it
-- held there, counted in d.members).
local function move_to(player, d, meta, back, match)
	local login = package.loaded.login
	if not (login and login.move) then
		return nil, "no such room"
	end
	if not back and d.members >= d.capacity then
		return nil, "room is full"
	end
	local url
	if d.node ~= moongate.node_id then
		if (d.url or "") == "" then
			return nil, "room " .. d.id .. " is on node " .. tostring(d.node)
				.. ", which has no node_url"
		end
		url = d.url
	end
	local ok, meta_ = pcall(json.decode, d.meta or "{}")
	player.held_seat = { room = d.id, token = d.token, mode = d.mode, capacity = d.capacity,
		meta = ok and type(meta_) == "table" and meta_ or {}, join_meta = meta,
		["until"] = wall_ms() + config().move_ms, move = true,
		seat = back and back.seat or nil, back = back and true or nil,
		match = match }
	local moved, err = login.move(player, { worker = d.worker, url = url })
	if not moved then
		player.held_seat = nil
		return nil, err
	end
	moongate.info({ room = d.id, event = "room_move" }, "room %d: %s moved to its worker %s%s",
		d.id, tostring(player.uid), tostring(d.worker), url and (" on " .. url) or "")
	return true
end

-- Quick match: the fullest room of this mode with a free seat (with Redis,
-- on any worker or node: the player is moved there), or a new one here
-- (when clients may create rooms).
function M.match(player, mode, meta, local_only)
	if player.room then
		return nil, "already in room " .. player.room.id
	end
	local best, created
	for _, r in pairs(S.rooms) do
		if r.mode == mode and r.n < r.capacity and not r.closed
			and (not best or r.n > best.n or (r.n == best.n and r.id < best.id)) then
			best = r
		end
	end
	if config().modes[mode] then
		local d = not local_only and D.match(mode)
		if d and not D.is_here(d) and (not best or d.members > best.n) then
			local ok, err = move_to(player, d, meta, nil, mode)
			if ok then
				return "moved"
			end
			moongate.debug("room: quick match: no move to room %d: %s", d.id, tostring(err))
		end
	end
	if not best then
		if not config().client_create then
			return nil, "no room of mode " .. tostring(mode) .. " has a free seat"
		end
		local err
		best, err = M.create(mode, {})
		if not best then
			return nil, err
		end
		created = true
	end
	local ok, err = M.join(player, best, meta)
	if not ok and created and best.n == 0 then
		M.close_room(best, "empty")
	end
	return ok, err
end

-- Take a player out of its room (reason: "left", "expired", "kicked",
-- "logout", or the room's closing reason; detail: said to the player with
-- it, as "detail" of its "left").
function M.leave(player, reason, detail)
	local room = player.room
	if not room then
		return nil, "not in a room"
	end
	if player.hold then
		player.hold:cancel()
		player.hold = nil
	end
	room.seats[player.seat] = nil
	room.n = room.n - 1
	if room.relay then
		room.relay:remove(player.id)
	end
	if room.frames then
		room.frames:remove(player.id)
	end
	player.room, player.away = nil, nil
	player.held_seat = nil
	send(player.session, { op = "left", room = room.id, reason = reason, detail = detail })
	tell(room, "leave", player)
	call(room, "leave", player, reason)
	player.seat = nil
	if not player.logged_out then
		save(player)
	end
	dir_write(room)
	if room.n == 0 and not room.closed and not room.logic.keep_empty then -- (close_room sets closed first)
		M.close_room(room, "empty")
	end
	return true
end

local function away(player)
	local room = player.room
	if room and not player.away then
		player.away = true
		tell(room, "away", player)
		call(room, "away", player)
	end
end

-- The player is back on a live session (resume or a cookie login).
local function back(player, session, from_frame)
	local room = player.room
	if not room then
		return
	end
	if player.hold then
		player.hold:cancel()
		player.hold = nil
	end
	if room.relay then
		room.relay:add(player.id, session)
		if config().route then
			room.relay:route(player.id, session)
		end
	end
	if room.frames then
		local f = room.frames
		-- on the new session, from the frame the client says it needs, or
		-- the first one this member was not sent
		f:add(player.id, session, from_frame or f:next(player.id))
		local ok = f:catch_up(player.id)
		if not ok then
			local snap = call(room, "snapshot", player)
			f:add(player.id, session, f:frame())
			send(session, { op = "resync", room = room.id, frame = f:frame(), snapshot = snap })
		end
	end
	if player.away then
		player.away = nil
		tell(room, "back", player)
		call(room, "back", player)
	end
	if player.held_seat and player.held_seat["until"] then
		player.held_seat = seat_record(room, player)
		save(player)
	end
end

-- ---- service callbacks ------------------------------------------------------

-- A cookie login whose record holds a seat in a room this process does
-- not have (a restart): the room made again, the player seated.
local function restore_seat(session, p)
	local h = p.held_seat
	if type(h) ~= "table" or type(h.room) ~= "number" then
		return
	end
	if h["until"] and h["until"] < wall_ms() then
		p.held_seat = nil -- its hold ran out (while the server was down)
		save(p)
		return
	end
	local room = S.rooms[h.room]
	local err
	if not room then
		-- not here: the directory (Redis) says where it lives. Elsewhere:
		-- the player goes there. Here, or nowhere after a crash (its entry
		-- expired, or no Redis): made again here. A move for a room whose
		-- entry is gone: it closed meanwhile.
		local d = D.read(h.room) -- (waits: another login may make it)
		room = S.rooms[h.room]
		if room then
			d = nil -- made again meanwhile (another member came back)
		elseif d and d.token ~= h.token then
			err = "room gone"
		elseif d and not D.is_here(d) then
			local ok, merr = move_to(p, d, h.join_meta, h)
			if ok then
				return -- seated there
			end
			err = "room unreachable (" .. tostring(merr) .. ")"
		elseif not d and h.move then
			err = "room gone" -- moved here for a room that closed meanwhile
		else
			local params
			if d and d.params then
				local okp, v = pcall(json.decode, d.params)
				params = okp and type(v) == "table" and v or nil
			end
			room, err = M.create(h.mode, { id = h.room, token = h.token,
				capacity = h.capacity, meta = h.meta, params = params,
				saved = d and d.state, tick = d and d.tick })
			if room then
				moongate.info({ room = room.id, event = "room_restore" },
					"room %d (%s) made again for %s, who held seat %s", room.id,
					room.mode, tostring(p.uid), tostring(h.seat))
			else
				err = "room gone (" .. tostring(err) .. ")"
			end
		end
	end
	if room and room.token ~= h.token then
		room, err = nil, "room gone"
	end
	if room then
		local ok
		ok, err = M.join(p, room, h.join_meta, { seat = h.seat,
			rejoined = not h.move or h.back })
		if ok then
			return
		end
	end
	p.held_seat = nil
	if h.match and type(h.match) == "string" then
		-- moved by a quick match to a room that filled (or closed) on the
		-- way: the match goes on here, without another move
		local ok = M.match(p, h.match, h.join_meta, true)
		if ok then
			return
		end
	end
	save(p)
	if h.move and not h.back then -- a join that did not happen: its answer
		send(session, { op = "error", req = "join", room = h.room, reason = err })
		return
	end
	send(session, { op = "left", room = h.room, reason = err })
end

-- A member coming back to a frame-sync room: the first frame it gets,
-- the one after the frame N its hello says it has ("frame": N, from 0 up
-- to the last frame made), else the first one it was not sent. nil when
-- that frame left the history: a resync follows, from the current frame.
local function rejoin_frame(room, p, had)
	local f = room.frames
	local cur = f:frame()
	local from
	if type(had) == "number" and had % 1 == 0 and had >= 0 and had < cur then
		from = had + 1
	else
		from = f:next(p.id) or cur
	end
	if from < cur and not f:get(from) then
		return nil
	end
	return from
end

function M.connect(session, hello)
	local p = session.player
	if p and not p.room and p.held_seat then
		restore_seat(session, p)
		return
	end
	if not p or not p.room then
		return
	end
	-- a cookie login of a player whose seat is held: back in its seat
	local room, from = p.room, nil
	if room.frames then
		local h = json.decode(hello)
		from = rejoin_frame(room, p, type(h) == "table" and h.frame or nil)
	end
	send(session, joined_msg(room, p, true, from))
	back(p, session, from)
end

function M.offline(session)
	local p = session.player
	if p and p.session == session then
		away(p)
	end
end

function M.resume(session)
	local p = session.player
	if p and p.session == session and p.room then
		back(p, session, nil)
	end
end

function M.close(session)
	local p = session.player
	if not p or not p.room or (p.session and p.session ~= session) then
		return -- not seated, or it already moved to a newer session
	end
	if p.moved_away then
		return -- moved with its seat: its record is the new place's
	end
	if p.logged_out then
		M.leave(p, "logout")
		return
	end
	away(p)
	if p.hold then
		p.hold:cancel()
	end
	local hold
	local hold_ms = config().hold_ms
	p.held_seat = seat_record(p.room, p, wall_ms() + hold_ms)
	save(p)
	dir_write(p.room) -- (at a shutdown: the logic's state as it ends)
	hold = moongate.after(hold_ms, function()
		if p.hold ~= hold then
			return -- replaced or cancelled meanwhile
		end
		p.hold = nil
		if not p.session and p.room then
			M.leave(p, "expired")
		end
	end)
	p.hold = hold
end

local requests = { rooms = true, create = true, join = true, leave = true, logout = true }

-- What is wrong with a request's fields, or nil: each field absent or of
-- its kind (a JSON null is of no kind: refused).
local fields = {
	rooms = { after = "number", mode = "string" },
	create = { mode = "string", capacity = "number", meta = "table", params = "table" },
	join = { room = "number", mode = "string", meta = "table" },
}
local kinds = { number = "a number", string = "a string", table = "an object" }

local function malformed(m)
	local want = fields[m.op]
	if not want then
		return nil
	end
	local names = {}
	for k in pairs(want) do
		names[#names + 1] = k
	end
	table.sort(names)
	for _, k in ipairs(names) do
		local v = m[k]
		if v ~= nil and type(v) ~= want[k] then
			return ("%s: \"%s\" must be %s"):format(m.op, k, kinds[want[k]])
		end
	end
	if m.op == "create" and m.mode == nil then
		return "create: \"mode\" is required"
	elseif m.op == "join" and m.room == nil and m.mode == nil then
		return "join: \"room\" (an id) or \"mode\" (quick match) is required"
	end
	return nil
end

local function handle(session, p, m)
	local op = m.op
	local bad = malformed(m)
	if bad then
		send(session, { op = "error", req = op, reason = bad })
		return
	end
	if op == "rooms" then
		-- at most list_max rooms per reply (a reply must fit a message):
		-- those with an id above "after", of "mode" if given; with the
		-- directory, every worker's and node's rooms
		local after, mode = tonumber(m.after) or 0, m.mode
		local dl, dmore = D.list(after, mode, config().list_max)
		if dl then
			send(session, { op = "rooms", rooms = dl, more = dmore or nil })
			return
		end
		local ids = {}
		for id, r in pairs(S.rooms) do
			if id > after and (mode == nil or r.mode == mode) then
				ids[#ids + 1] = id
			end
		end
		table.sort(ids)
		local list, max = {}, config().list_max
		for i = 1, math.min(#ids, max) do
			list[i] = info(S.rooms[ids[i]])
		end
		send(session, { op = "rooms", rooms = list, more = #ids > max or nil })
		return
	end
	local ok, err
	if op == "logout" then
		-- the login service answered and is closing the session; the seat
		-- is given up now, not when the close completes
		if p.room then
			M.leave(p, "logout")
		end
		return
	elseif op == "create" then
		if not config().client_create then
			err = "clients may not create rooms"
		elseif p.room then
			err = "already in room " .. p.room.id
		else
			local room
			room, err = M.create(m.mode, { capacity = m.capacity, meta = m.meta, params = m.params })
			if room then
				send(session, { op = "created", room = room.id })
				ok, err = M.join(p, room, m.meta)
				if not ok and room.n == 0 then
					M.close_room(room, "empty")
				end
			end
		end
	elseif op == "join" and m.room == nil and m.mode ~= nil then
		ok, err = M.match(p, m.mode, m.meta)
	elseif op == "join" then
		local room = S.rooms[m.room]
		local d = not room and p.room == nil and D.read(m.room)
		if d and not D.is_here(d) then
			ok, err = move_to(p, d, m.meta) -- on another worker or node
		elseif not room then
			err = "no such room"
		else
			ok, err = M.join(p, room, m.meta)
		end
	elseif op == "leave" then
		ok, err = M.leave(p, "left")
	end
	if err then
		send(session, { op = "error", req = op, reason = err })
	end
end

function M.message(session, data, reliable, seq)
	local p = session.player
	if not p then
		return
	end
	local room = p.room
	local seated = room and p.session == session
	if reliable and data:byte(1) == 123 then -- '{': maybe a request
		local m, err = json.decode(data)
		if type(m) == "table" and requests[m.op] then
			handle(session, p, m)
			return true
		end
		-- not one of ours: the logic's, if the player is seated and the
		-- logic takes messages; else the client hears why nobody answers
		if not seated or not room.logic.message then
			local op = type(m) == "table" and m.op or nil
			local reason
			if type(m) ~= "table" then
				reason = "not a JSON object: " .. tostring(err)
			elseif op == nil then
				reason = "a request needs an \"op\""
			elseif type(op) ~= "string" then
				reason = "\"op\" must be a string"
			else
				reason = ("unknown op %s (the room service's: rooms, create, join, leave%s)")
					:format(json.encode(op), seated and "; this room's logic takes no messages" or "")
			end
			send(session, { op = "error", req = type(op) == "string" and op or nil, reason = reason })
			return true
		end
	end
	if not seated then
		return
	end
	if not reliable and room.relay then
		room.relay:put(p.id, seq, data)
		return true
	end
	if reliable and room.frames and data:byte(1) == 73 then -- 'I'
		local ok, err = room.frames:input(p.id, data:sub(2))
		if not ok then
			send(session, { op = "error", req = "input", reason = err })
		end
		return true
	end
	call(room, "message", p, data, reliable, seq)
	return true
end

-- Console: rooms, room close
moongate.command("room", "room close ID [reason]: close a room (its members leave with the reason)",
	function(args)
		local sub, id = args[1], tonumber(args[2] or "")
		if sub ~= "close" or not id then
			return nil, "usage: room close ID [reason]"
		end
		local room = S.rooms[id]
		if not room then
			return nil, "no room " .. args[2]
		end
		local reason = #args > 2 and table.concat(args, " ", 3) or "closed by an operator"
		local n = room.n
		M.close_room(room, reason)
		return ("room %d closed: %s (%d members left)"):format(id, reason, n)
	end)

moongate.command("rooms", "rooms: one line per room: id mode members/capacity tick", function()
	local out = {}
	for _, r in pairs(S.rooms) do
		local names = {}
		for _, p in ipairs(r:members()) do
			names[#names + 1] = p.name .. (p.away and "(away)" or "")
		end
		out[#out + 1] = string.format("%d %s %d/%d tick %d %s", r.id, r.mode, r.n, r.capacity,
			r.tick, table.concat(names, ","))
	end
	table.sort(out)
	out[#out + 1] = #out .. " rooms"
	return table.concat(out, "\n")
end)

function M.rooms()
	return S.rooms
end

function M.get(id)
	return S.rooms[id]
end

-- An upgrade's drain deadline (moongate.on_drain): every room of this
-- worker goes to the new worker of its slot, its members with it: the
-- directory entry is pointed there first, then each connected member is
-- moved with its seat (login.move); the first to arrive makes the room
-- again there (same id and token; its logic starts afresh, from init).
-- Members offline now come back there with their cookie.
if moongate.on_drain then
	moongate.on_drain("room", function(worker)
		local login = package.loaded.login
		local prefix = store_prefix()
		if not (prefix and login and login.move) then
			return -- no directory: the rooms end with this worker
		end
		local rooms, players, list = 0, 0, {}
		for _, room in pairs(S.rooms) do -- (a list first: each move waits)
			list[#list + 1] = room
		end
		for _, room in ipairs(list) do
			if not room.closed and not room.moved then
				room.moved = true
				local js = saved_state(room) -- (nil: the last one saved stays)
				local ok = pcall(function()
					local cmd = { "HSET", prefix .. "room:" .. room.id, "worker", worker,
						"tick", room.tick }
					if js then
						cmd[#cmd + 1] = "state"
						cmd[#cmd + 1] = js
					end
					assert(redis.connect():call(unpack(cmd)))
				end)
				if ok then
					rooms = rooms + 1
					for _, p in ipairs(room:members()) do
						if p.session and p.session:alive() then
							local h = seat_record(room, p, wall_ms() + config().move_ms)
							h.move, h.back = true, true
							p.held_seat = h
							if login.move(p, { worker = worker }) then
								players = players + 1
							end
						end
					end
				else
					room.moved = nil
				end
			end
		end
		moongate.info("room: drain deadline: %d room(s), %d player(s) moved to worker %d",
			rooms, players, worker)
	end)
end

-- The operators' endpoint (config `metrics`): rooms and members by mode,
-- tick durations by mode (a histogram), the 10 rooms with the slowest
-- ticks (moving average), for the status page.
moongate.on_metrics("room", function()
	local out, rooms, members = {}, {}, {}
	local slow = {}
	for _, r in pairs(S.rooms) do
		rooms[r.mode] = (rooms[r.mode] or 0) + 1
		members[r.mode] = (members[r.mode] or 0) + r.n
		if r.tick_avg then slow[#slow + 1] = r end
	end
	for mode, n in pairs(rooms) do
		out[#out + 1] = { name = "moongate_rooms", value = n, labels = { mode = mode },
			help = "rooms, by mode" }
		out[#out + 1] = { name = "moongate_room_members", value = members[mode],
			labels = { mode = mode }, help = "seated players, by mode" }
	end
	for mode, h in pairs(S.tick_hist) do
		local acc = 0
		for i = 1, #TICK_LE do
			acc = acc + h.b[i]
			out[#out + 1] = { family = "moongate_room_tick_seconds", type = "histogram",
				name = "moongate_room_tick_seconds_bucket", value = acc,
				labels = { mode = mode, le = string.format("%g", TICK_LE[i]) },
				help = "a room tick's duration (logic, relay flush, frame), by mode" }
		end
		out[#out + 1] = { family = "moongate_room_tick_seconds", type = "histogram",
			name = "moongate_room_tick_seconds_bucket", value = h.n, labels = { mode = mode, le = "+Inf" } }
		out[#out + 1] = { family = "moongate_room_tick_seconds", type = "histogram",
			name = "moongate_room_tick_seconds_sum", value = h.sum, labels = { mode = mode } }
		out[#out + 1] = { family = "moongate_room_tick_seconds", type = "histogram",
			name = "moongate_room_tick_seconds_count", value = h.n, labels = { mode = mode } }
	end
	local relay = {}
	for mode, done in pairs(S.relay_done) do
		local t = {}
		for k, v in pairs(done) do t[k] = v end
		relay[mode] = t
	end
	for _, r in pairs(S.rooms) do
		if r.relay then
			local st, t = r.relay:stats(), relay[r.mode] or {}
			for k in pairs(RELAY_COUNTERS) do t[k] = (t[k] or 0) + (st[k] or 0) end
			relay[r.mode] = t
		end
	end
	for mode, t in pairs(relay) do
		for k, name in pairs(RELAY_COUNTERS) do
			out[#out + 1] = { name = name, value = t[k] or 0, type = "counter",
				labels = { mode = mode }, help = RELAY_HELP[k] }
		end
	end
	table.sort(slow, function(a, b) return a.tick_avg > b.tick_avg end)
	for i = 1, math.min(10, #slow) do
		local r = slow[i]
		out[#out + 1] = { name = "moongate_room_tick_ms", value = r.tick_avg * 1000,
			labels = { room = r.id, mode = r.mode, members = r.n },
			help = "the 10 rooms with the slowest ticks: a moving average, ms" }
	end
	return out
end)

return M
