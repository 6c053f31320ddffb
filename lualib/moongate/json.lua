-- moongate.json: JSON for messages, on lua-cjson (Debian's lua-cjson).
--
--   local json = require "moongate.json"
--   local s = json.encode({ x = 1, name = "ann" })
--   local t, err = json.decode(s)   -- nil, err on bad input: never raises
--
-- Bad input from the network must not raise inside a callback, so decode
-- returns nil and a message instead. encode raises on values JSON cannot
-- hold (functions, sparse arrays): that is a bug in the caller.
--
-- A sparse array is a table whose keys are all integers >= 1 (what cjson
-- writes as an array) with a hole: {[1]=1, [3]=3}. cjson would write a
-- few holes as null and raise only past its own ratio, so encode looks
-- for holes first and raises for every one, naming where it is. A table
-- with any other key is an object ({[1]=1, x=2} -> {"1":1,"x":2}).
local cjson = require "cjson"

local codec = cjson.new()
codec.encode_sparse_array(false)
codec.decode_max_depth(64)
codec.encode_max_depth(64)

local M = {}

M.null = codec.null

local MAX_DEPTH = 64 -- deeper is cjson's error; this walk stops there too

-- The first sparse array under v (v included), as a message; nil when
-- none. where: the path so far ("" at the top).
local function find_hole(v, where, depth)
	if depth > MAX_DEPTH then
		return nil
	end
	local n, max, array = 0, 0, true
	for k, x in pairs(v) do
		n = n + 1
		if array then
			if type(k) == "number" and k >= 1 and k == math.floor(k) then
				if k > max then
					max = k
				end
			else
				array = false
			end
		end
		if type(x) == "table" then
			local key
			if type(k) == "string" and k:match("^[%a_][%w_]*$") then
				key = "." .. k
			else
				key = "[" .. (type(k) == "string" and ("%q"):format(k) or tostring(k)) .. "]"
			end
			local err = find_hole(x, where .. key, depth + 1)
			if err then
				return err
			end
		end
	end
	if array and max > n then
		local hole = 1
		while v[hole] ~= nil do
			hole = hole + 1
		end
		return ("json.encode: sparse array at %s: index %d is missing of 1..%d " ..
			"(JSON arrays have no holes: fill it with json.null, or use string keys)")
			:format(where == "" and "the top" or (where:gsub("^%.", "")), hole, max)
	end
end

function M.encode(v)
	if type(v) == "table" then
		local err = find_hole(v, "", 1)
		if err then
			error(err, 2)
		end
	end
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
