-- moongate.sync: decode what moongate.relay and moongate.frames send
-- (docs/PROTOCOL.md, "Game service payloads"). Pure Lua: it runs in a
-- game client or a bot as well as in the server.
--
--   local sync = require "moongate.sync"
--   if sync.is_states(d) then
--     local tick, states = assert(sync.decode_states(d))
--     for _, s in ipairs(states) do apply(s.id, s.seq, s.data) end
--   end
--
-- A decoder never raises on bad input: it returns nil and a reason.
local M = {}

local byte, sub = string.byte, string.sub

local STATES, FRAME = 0x53, 0x46 -- 'S', 'F'

local function u16(s, i)
	local a, b = byte(s, i, i + 1)
	return a + b * 256
end

local function u32(s, i)
	local a, b, c, d = byte(s, i, i + 3)
	return a + b * 256 + c * 65536 + d * 16777216
end

-- A varint (LEB128: 7 bits a byte, low group first) at s[i..n] of at
-- most max bytes and a value at most lim, without a needless last byte 0:
-- value, next position | nil, err
local function var(s, i, n, max, lim)
	local v, mul = 0, 1
	for k = 0, max - 1 do
		if i + k > n then
			return nil, "truncated"
		end
		local b = byte(s, i + k)
		if b < 128 then
			if k > 0 and b == 0 then
				return nil, "bad varint"
			end
			v = v + b * mul
			if v > lim then
				return nil, "bad varint"
			end
			return v, i + k + 1
		end
		v = v + (b - 128) * mul
		mul = mul * 128
	end
	return nil, "bad varint"
end

-- is_states(s), is_frame(s): by the first byte only
function M.is_states(s)
	return type(s) == "string" and byte(s, 1) == STATES
end

function M.is_frame(s)
	return type(s) == "string" and byte(s, 1) == FRAME
end

-- decode_states(s) -> tick, { {id=, seq=, data=}, ... } | nil, err
-- u8 'S' | u32 tick | u8 count | count x (varint id | varint len | data)
-- An entry's seq is the bundle's tick: what a member's states are numbered
-- by (each newer than any before it from that member, in this room).
function M.decode_states(s)
	if type(s) ~= "string" then
		return nil, "not a string"
	end
	local n = #s
	if n < 6 then
		return nil, "truncated"
	end
	if byte(s, 1) ~= STATES then
		return nil, "not a state bundle"
	end
	local tick, count = u32(s, 2), byte(s, 6)
	local out, pos = {}, 7
	for k = 1, count do
		local id, len
		id, pos = var(s, pos, n, 5, 4294967295)
		if not id then
			return nil, pos
		end
		len, pos = var(s, pos, n, 3, 65535)
		if not len then
			return nil, pos
		end
		local last = pos + len - 1
		if last > n then
			return nil, "truncated"
		end
		out[k] = { id = id, seq = tick, data = sub(s, pos, last) }
		pos = last + 1
	end
	if pos ~= n + 1 then
		return nil, "trailing bytes"
	end
	return tick, out
end

-- decode_frame(s) -> frame, { {id=, data=}, ... } | nil, err
-- u8 'F' | u32 frame | u16 count | count x (u32 id | u16 len | data)
function M.decode_frame(s)
	if type(s) ~= "string" then
		return nil, "not a string"
	end
	local n = #s
	if n < 7 then
		return nil, "truncated"
	end
	if byte(s, 1) ~= FRAME then
		return nil, "not a frame"
	end
	local frame, count = u32(s, 2), u16(s, 6)
	local out, pos = {}, 8
	for k = 1, count do
		if pos + 5 > n then
			return nil, "truncated"
		end
		local last = pos + 5 + u16(s, pos + 4)
		if last > n then
			return nil, "truncated"
		end
		out[k] = { id = u32(s, pos), data = sub(s, pos + 6, last) }
		pos = last + 1
	end
	if pos ~= n + 1 then
		return nil, "trailing bytes"
	end
	return frame, out
end

return M
