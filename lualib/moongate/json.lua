-- moongate.json: JSON for messages, on lua-cjson (Debian's lua-cjson).
--
--   local json = require "moongate.json"
--   local s = json.encode({ x = 1, name = "ann" })
--   local t, err = json.decode(s)   -- nil, err on bad input: never raises
--
-- Bad input from the network must not raise inside a callback, so decode
-- returns nil and a message instead. encode raises on values JSON cannot
-- hold (functions, sparse arrays): that is a bug in the caller.
local cjson = require "cjson"

local codec = cjson.new()
codec.encode_sparse_array(false)
codec.decode_max_depth(64)
codec.encode_max_depth(64)

local M = {}

M.null = codec.null

function M.encode(v)
	return codec.encode(v)
end

function M.decode(s)
	if type(s) ~= "string" then
		return nil, "json: expected a string, got " .. type(s)
	end
	local ok, v = pcall(codec.decode, s)
	if not ok then
		return nil, tostring(v)
	end
	return v
end

return M
