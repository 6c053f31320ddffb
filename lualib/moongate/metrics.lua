-- moongate.metrics: what the services add to the operators' endpoint
-- (config `metrics`: /metrics in Prometheus text, /status.json for the
-- status page; docs/LUA_API.md, "moongate.on_metrics").
--
--   moongate.on_metrics("lobby", function()
--     return { { name = "game_lobby_players", value = n, type = "gauge",
--                help = "players in the lobby", labels = { region = "eu" } } }
--   end)
--
-- A histogram's samples name their family: { family = "game_wait_seconds",
-- name = "game_wait_seconds_bucket", labels = { le = "0.1" }, value = n,
-- type = "histogram" }, then _sum and _count; HELP and TYPE go once, on
-- the family. A hook runs at each scrape, between two packets, and must not wait
-- (no Redis, no sleep): it reads what the service keeps. One hook per
-- name; a reloaded module replaces its own. A hook that fails is logged
-- and left out; a sample with a bad name or a value that is not a number
-- is left out.
local M = {}

local hooks = {}

function M.on_metrics(name, fn)
	assert(type(name) == "string", "on_metrics: a name expected")
	assert(fn == nil or type(fn) == "function", "on_metrics: a function or nil expected")
	hooks[name] = fn
end

local function valid(name)
	return type(name) == "string" and name:match("^[a-zA-Z_:][a-zA-Z0-9_:]*$") ~= nil
end

local function esc(v)
	return (tostring(v):gsub('[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

-- Every hook's samples, checked.
function M.collect()
	local out = {}
	local names = {}
	for hname in pairs(hooks) do
		names[#names + 1] = hname
	end
	table.sort(names)
	for _, hname in ipairs(names) do
		local ok, list = pcall(hooks[hname])
		if not ok then
			local moongate = require "moongate"
			moongate.warn("metrics: hook %s failed: %s", hname, tostring(list))
		elseif type(list) == "table" then
			for _, s in ipairs(list) do
				if type(s) == "table" and valid(s.name) and tonumber(s.value) then
					out[#out + 1] = s
				end
			end
		end
	end
	return out
end

-- Prometheus text of every hook's samples: HELP and TYPE once a name.
function M.text()
	local samples = M.collect()
	local by, order = {}, {}
	for _, s in ipairs(samples) do
		local fam = valid(s.family) and s.family or s.name
		if not by[fam] then
			by[fam] = {}
			order[#order + 1] = fam
		end
		table.insert(by[fam], s)
	end
	local out = {}
	for _, fam in ipairs(order) do
		local name = fam
		local first = by[fam][1]
		local t = first.type
		if t ~= "counter" and t ~= "gauge" and t ~= "histogram" and t ~= "summary" then
			t = "gauge"
		end
		out[#out + 1] = ("# HELP %s %s\n# TYPE %s %s\n"):format(name,
			tostring(first.help or name):gsub("\n", " "), name, t)
		for _, s in ipairs(by[fam]) do
			local labels = {}
			if type(s.labels) == "table" then
				local keys = {}
				for k in pairs(s.labels) do
					if valid(k) then keys[#keys + 1] = k end
				end
				table.sort(keys)
				for _, k in ipairs(keys) do
					labels[#labels + 1] = k .. '="' .. esc(s.labels[k]) .. '"'
				end
			end
			out[#out + 1] = ("%s%s %.17g\n"):format(s.name,
				#labels > 0 and "{" .. table.concat(labels, ",") .. "}" or "",
				tonumber(s.value))
		end
	end
	return table.concat(out)
end

-- The same as JSON (an array of {name, value, labels, type, help}).
function M.json()
	local list = {}
	for i, s in ipairs(M.collect()) do
		list[i] = { name = s.name, value = tonumber(s.value), labels = s.labels,
			type = s.type, help = s.help }
	end
	return require("moongate.json").encode(list)
end

return M
