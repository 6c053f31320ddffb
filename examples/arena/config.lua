-- The arena example: `build/moongate examples/arena/config.lua`, then
-- `luajit examples/arena/bot.lua` (README.md here).
return {
	listen = { "udp://127.0.0.1:7788", "tcp://127.0.0.1:7788" },
	services = { "handshake", "login", "room" },
	service_path = { ".", "../../service" },  -- arena.lua here, the rest shipped
	secrets = false,
	settings = {
		room = { modes = { arena = "arena" }, hold_ms = 30000 },
	},
	lua = { watch_ms = 500 },  -- save arena.lua: reloaded within half a second
	admin = "unix:arena.admin", -- build/moongate admin unix:examples/arena/arena.admin rooms
	log = { level = "info" },
}
