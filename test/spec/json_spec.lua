-- moongate.json (docs/LUA_API.md, "require moongate.json"): encode raises
-- on values JSON cannot hold, sparse arrays included, however few their
-- holes (issue 16: cjson wrote {[1]=1,[3]=3} as [1,null,3]); decode never
-- raises.
local json = require "moongate.json"

describe("moongate.json", function()
	it("raises on a sparse array, saying where the hole is", function()
		local ok, err = pcall(json.encode, { [1] = 1, [3] = 3 })
		assert.is_false(ok)
		assert.matches("json.encode: sparse array at the top: index 2 is missing of 1..3",
			err, 1, true)
		ok, err = pcall(json.encode, { players = { { 1 }, { [2] = "b" } } })
		assert.is_false(ok)
		assert.matches("sparse array at players[2]: index 1 is missing of 1..2", err, 1, true)
		-- a very sparse one too (cjson's own error before), with the same words
		ok, err = pcall(json.encode, { room = { [1] = 1, [1000] = 2 } })
		assert.is_false(ok)
		assert.matches("sparse array at room: index 2 is missing of 1..1000", err, 1, true)
	end)

	it("names the caller's line, not its own", function()
		local ok, err = pcall(function()
			local s = json.encode({ [2] = true }) -- (not a tail call: this frame stays)
			return s
		end)
		assert.is_false(ok)
		assert.matches("json_spec%.lua:%d+: json%.encode: sparse array", err)
	end)

	it("encodes dense arrays, json.null holes and objects as before", function()
		assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
		assert.are.equal("[1,null,3]", json.encode({ 1, json.null, 3 }))
		assert.are.equal("{}", json.encode({}))
		local t = json.decode(json.encode({ [1] = "a", x = 2 })) -- mixed keys: an object
		assert.are.same({ ["1"] = "a", x = 2 }, t)
		assert.are.equal('{"a":{"b":[true]}}', json.encode({ a = { b = { true } } }))
	end)

	it("raises on a function, and decode returns nil, err", function()
		assert.is_false((pcall(json.encode, { f = print })))
		local v, err = json.decode("{bad")
		assert.is_nil(v)
		assert.is_string(err)
	end)
end)
