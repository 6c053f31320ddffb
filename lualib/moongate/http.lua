-- moongate.http: outbound HTTP(S) from a callback, on the server's loop
-- (libcurl's multi interface). docs/LUA_API.md, "HTTP". A request makes
-- the callback wait for the response; the server goes on meanwhile.
--
--   local http = require "moongate.http"
--   local res, err = http.request{ url = "https://accounts.example/check",
--       method = "POST", headers = { ["content-type"] = "application/json" },
--       body = json.encode(hello), timeout_ms = 2000 }
--   if res and res.status == 200 then ... res.body, res.headers["etag"] end
--
-- res = { status =, headers = { lower-case name = value }, body =,
-- seconds = }; nil, err when no response came (timeout, refused, too
-- large: max_size, TLS). A status of 4xx or 5xx is a response, not an
-- error. Defaults from config.lua's http = { timeout_ms = 5000,
-- connect_timeout_ms = 2000, max_size = 1048576, queue_max = 1000 }.
local core = require "moongate.core"

local M = {}

-- http.request{ url, method, headers, body, timeout_ms, max_size, follow }
function M.request(opts)
	if type(opts) ~= "table" then
		error("moongate.http.request: a table of options expected", 2)
	end
	return core.http_request(opts)
end

function M.get(url, opts)
	local o = {}
	for k, v in pairs(opts or {}) do o[k] = v end
	o.url = url
	return core.http_request(o)
end

function M.post(url, body, opts)
	local o = {}
	for k, v in pairs(opts or {}) do o[k] = v end
	o.url, o.body, o.method = url, body, o.method or "POST"
	return core.http_request(o)
end

return M
