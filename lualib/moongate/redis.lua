-- moongate.redis: Redis from a callback, on the server's loop (hiredis).
-- docs/LUA_API.md, "Redis". A call makes the callback wait for the reply;
-- the server goes on meanwhile.
--
--   local redis = require "moongate.redis"
--   local r = redis.connect()                -- config.lua's redis.url
--   local v, err = r:call("GET", "player:7") -- v: the value (nil: none)
--   local vals, errs = r:pipeline({ { "INCR", "n" }, { "GET", "n" } })
--   redis.subscribe("news", function(data, channel) ... end)
--
-- One connection per url for the whole process (calls are pipelined on
-- it); made on first use, never closed; reconnected with backoff when it
-- drops. While it is down a call returns nil and the reason at once.
local core = require "moongate.core"

local M = {}

-- An element of an array reply that was nil.
M.null = core.redis_null

local clients = {}

local function url_of(url)
	url = url or core.redis_url
	if not url or url == "" then
		error("moongate.redis: no Redis configured (redis = { url = " ..
			"\"redis://127.0.0.1:6379\" } in config.lua) and no url given", 3)
	end
	return url
end

-- The client of url (default: config.lua's redis.url), made on first use.
function M.connect(url)
	url = url_of(url)
	local c = clients[url]
	if not c then
		c = core.redis_client(url)
		clients[url] = c
	end
	return c
end

-- Whether a url is configured (redis.url in config.lua).
function M.configured()
	return core.redis_url ~= nil and core.redis_url ~= ""
end

-- fn(data, channel) for every message published on channel (pattern:
-- PSUBSCRIBE), run as a callback (it may wait; messages do not wait for
-- each other). A subscriber is a connection of its own; its subscription
-- is made again after a reconnect. Returns the subscriber (its stats()).
function M.subscribe(channel, fn, opts)
	opts = opts or {}
	return core.redis_subscribe(url_of(opts.url), channel, fn, opts.pattern and true or false)
end

return M
