-- moongate: the Lua side of the server.
--
-- A placeholder for now: the Lua runtime (services, callbacks, timers,
-- send/broadcast) arrives after the session layer. It only tells the
-- version, which matches `moongate --version`.
local M = {}

M.version = "0.1.0"

return M
