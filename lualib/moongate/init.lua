-- moongate: the Lua side of the server (docs/LUA_API.md).
--
--   local moongate = require "moongate"
--   moongate.after(1000, function() moongate.info("a second later") end)
--
-- Inside the server, the runtime's functions (timers, broadcast, session
-- lookup, log, stats) come from the C module "moongate.core". Outside it
-- (a busted spec, a bot), require "moongate" still gives the version and
-- the JSON codec.
local M = {}

M.version = "0.1.0"
M.json = require "moongate.json"

local ok, core = pcall(require, "moongate.core")
if ok then
	for k, v in pairs(core) do
		M[k] = v
	end
	M.in_server = true
else
	M.in_server = false
end

-- moongate.info([keys,] fmt, ...): keys (a table: event, session, room,
-- peer) become fields of the line in JSON logs
local function logger(level)
	return function(fmt, ...)
		if not M.log then
			return
		end
		if type(fmt) == "table" then
			return M.log(level, string.format(...), fmt)
		end
		local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
		M.log(level, msg)
	end
end

-- moongate.state(name): a table kept for the life of the server, across
-- hot reloads: a service keeps its state here, not in module locals.
local states = {}
function M.state(name)
	assert(type(name) == "string", "state: a name expected")
	local t = states[name]
	if not t then
		t = {}
		states[name] = t
	end
	return t
end

-- moongate.command(name, help, fn): a command of the admin console
function M.command(name, help, fn)
	return require("moongate.admin").command(name, help, fn)
end

-- moongate.status(): what the status page shows, as a table (sessions,
-- rtt_ms, loss, totals, closes, counters, lua, services); nil outside
-- the server
function M.status()
	local s = M.status_json and M.status_json()
	return s and M.json.decode(s) or nil
end

-- moongate.on_metrics(name, fn): samples for the operators' endpoint
-- (lualib/moongate/metrics.lua)
function M.on_metrics(name, fn)
	return require("moongate.metrics").on_metrics(name, fn)
end

-- moongate.info("player %s joined", name): string.format, then the log
M.debug = logger("debug")
M.info = logger("info")
M.warn = logger("warn")
M.error = logger("error")

return M
