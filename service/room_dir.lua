-- room_dir: the room service's directory in Redis (docs/SERVICES.md,
-- "Held seats" and "Rooms across workers and nodes"). Used by room.lua
-- only; reloaded with it (room.lua calls it through this table).
--
-- When the login service keeps players in Redis (login.store_prefix()),
-- each room is there too: prefix .. "room:" .. ID, a hash of mode,
-- capacity, members, meta (JSON), token, where the room lives (node =
-- node_id, worker = moongate.worker, url = node_url), and what its logic
-- saved (state: JSON of M.save's value, tick, params: JSON of the create
-- params), written when the room opens and when its members change,
-- deleted when it closes. It expires 2 x hold_ms after its last write, and
-- a live room writes it again every hold_ms / 2, so the room of a crashed
-- process goes when the seats held in it would. Beside the entries:
--   prefix .. "open:" .. MODE   ids of rooms with a free seat, scored by
--                               their members (quick match)
--   prefix .. "list:" .. MODE   ids of every room of the mode, scored by
--   prefix .. "list"            id (the "rooms" list across workers/nodes)
-- (an id whose entry expired is taken out by the reader). Room ids come
-- from INCR prefix .. "room_id": unique across restarts and processes.
-- Never fatal: an error is logged, or returned.
local moongate = require "moongate"
local json = require "moongate.json"
local redis = require "moongate.redis"

local D = {}

function D.prefix()
	local login = package.loaded.login
	return login and login.store_prefix and login.store_prefix() or nil
end

local function hold_ms()
	return moongate.settings("room").hold_ms or 60000
end

-- Write room's entry. saved: { state = JSON, tick = n } or nil (the
-- logic saves nothing, or its state did not fit: the last one stays).
function D.write(room, saved)
	local prefix = D.prefix()
	if not prefix or room.closed or room.moved then
		return
	end
	local key = prefix .. "room:" .. room.id
	local open = prefix .. "open:" .. room.mode
	local hset = { "HSET", key, "mode", room.mode, "capacity", room.capacity,
		"members", room.n, "meta", json.encode(room.meta), "token", room.token,
		"node", moongate.node_id, "worker", moongate.worker or 0,
		"url", moongate.node_url or "", "tick", room.tick }
	if room.params_json then
		hset[#hset + 1] = "params"
		hset[#hset + 1] = room.params_json
	end
	if saved then
		hset[#hset + 1] = "state"
		hset[#hset + 1] = saved
	end
	local ok, err = pcall(function()
		local _, errs = redis.connect():pipeline({ hset,
			{ "PEXPIRE", key, 2 * hold_ms() },
			room.n < room.capacity and { "ZADD", open, room.n, room.id }
				or { "ZREM", open, room.id },
			{ "ZADD", prefix .. "list:" .. room.mode, room.id, room.id },
			{ "ZADD", prefix .. "list", room.id, room.id } })
		if errs then
			for i = 1, 5 do
				if errs[i] then return errs[i] end
			end
		end
	end)
	if not ok or err then
		moongate.warn("room %d: directory not written in Redis: %s", room.id,
			tostring(err))
		return nil, tostring(err)
	end
	return true
end

function D.drop(room)
	local prefix = D.prefix()
	if prefix and not room.moved then -- (a moved room's entry is the new worker's)
		pcall(function()
			redis.connect():pipeline({ { "DEL", prefix .. "room:" .. room.id },
				{ "ZREM", prefix .. "open:" .. room.mode, room.id },
				{ "ZREM", prefix .. "list:" .. room.mode, room.id },
				{ "ZREM", prefix .. "list", room.id } })
		end)
	end
end

-- An entry as HGETALL returned it (a flat list), or nil when incomplete.
local function entry(id, t)
	if type(t) ~= "table" or #t == 0 then
		return nil
	end
	local h = { id = id }
	for i = 1, #t - 1, 2 do
		h[t[i]] = t[i + 1]
	end
	h.capacity, h.members, h.worker = tonumber(h.capacity), tonumber(h.members), tonumber(h.worker)
	h.tick = tonumber(h.tick)
	if not (h.capacity and h.members and h.token and h.mode) then
		return nil
	end
	return h
end

-- The entry of room id: { mode, capacity, members, meta, token, node,
-- worker, url, tick, state, params } or nil (none, or no Redis; nil, err
-- on an error).
function D.read(id)
	local prefix = D.prefix()
	if not prefix then
		return nil
	end
	local ok, t, err = pcall(function()
		return redis.connect():call("HGETALL", prefix .. "room:" .. id)
	end)
	if not ok or not t then
		return nil, tostring(ok and err or t)
	end
	return entry(id, t)
end

-- Is an entry this process's?
function D.is_here(d)
	return d.node == moongate.node_id and d.worker == (moongate.worker or 0)
end

-- A room id: Redis's counter when the directory is there, else this
-- process's (never one of its live rooms).
function D.new_id(S)
	local prefix = D.prefix()
	if prefix then
		local ok, id = pcall(function()
			return redis.connect():call("INCR", prefix .. "room_id")
		end)
		if ok and type(id) == "number" then
			S.next_id = math.max(S.next_id, id)
			return id
		end
	end
	S.next_id = S.next_id + 1
	while S.rooms[S.next_id] do
		S.next_id = S.next_id + 1
	end
	return S.next_id
end

-- Quick match: the fullest room of mode with a free seat on any worker or
-- node (entries that expired are taken out of the set). nil when there is
-- none, or no Redis, or Redis failed (then the match stays in this
-- process).
function D.match(mode)
	local prefix = D.prefix()
	if not prefix then
		return nil
	end
	local open = prefix .. "open:" .. mode
	local ok, ids = pcall(function()
		return redis.connect():call("ZREVRANGE", open, 0, 15)
	end)
	if not ok or type(ids) ~= "table" then
		return nil
	end
	local best
	for _, sid in ipairs(ids) do
		local id = tonumber(sid)
		local d = id and D.read(id)
		if not d then
			pcall(function() redis.connect():call("ZREM", open, sid) end)
		elseif d.mode == mode and d.members < d.capacity
			and (not best or d.members > best.members
				or (d.members == best.members and d.id < best.id)) then
			best = d
		end
	end
	return best
end

-- The "rooms" list across workers and nodes: at most max entries with an
-- id above after (of mode if given), in id order, and whether there are
-- more; nil (no Redis, or an error: the caller lists its own rooms).
function D.list(after, mode, max)
	local prefix = D.prefix()
	if not prefix then
		return nil
	end
	local set = prefix .. (mode and ("list:" .. mode) or "list")
	local ok, res = pcall(function()
		local c = redis.connect()
		local ids = c:call("ZRANGEBYSCORE", set, "(" .. after, "+inf", "LIMIT", 0, max + 1)
		if type(ids) ~= "table" then
			return nil
		end
		local cmds = {}
		for i = 1, math.min(#ids, max) do
			cmds[i] = { "HGETALL", prefix .. "room:" .. ids[i] }
		end
		local replies = #cmds > 0 and c:pipeline(cmds) or {}
		local list, gone = {}, {}
		for i = 1, #cmds do
			local id = tonumber(ids[i])
			local d = id and entry(id, replies[i])
			if d then
				local okm, meta = pcall(json.decode, d.meta or "{}")
				list[#list + 1] = { id = id, mode = d.mode, members = d.members,
					capacity = d.capacity, meta = okm and type(meta) == "table" and meta or {} }
			else
				gone[#gone + 1] = ids[i]
			end
		end
		for _, sid in ipairs(gone) do -- expired (a crashed process's)
			c:call("ZREM", set, sid)
		end
		return { list = list, more = #ids > max }
	end)
	if not ok or not res then
		return nil
	end
	return res.list, res.more
end

return D
