-- moongate configuration: a Lua file that returns a table. Start the
-- server with it (`make run`, or `build/moongate config.lua`); check it
-- without starting with `build/moongate --check config.lua`. Every key is
-- listed, with its default and range, by `build/moongate --help`.

return {
	-- Addresses to listen on. 127.0.0.1 accepts local clients only; to
	-- expose the server, use 0.0.0.0 (every IPv4 interface), [::] (IPv6)
	-- or one interface's address, and open the ports in the firewall.
	-- "?encrypt=0" after a URL: that listener authenticates but does not
	-- encrypt. "raw://HOST:PORT": plain KCP clients (unauthenticated).
	listen = {
		"udp://127.0.0.1:7777",
		"tcp://127.0.0.1:7777", -- the fallback when UDP is blocked
	},

	-- Lua services, called in this order (docs/LUA_API.md), found in
	-- service_path (relative to this file).
	services = { "echo" },
	service_path = { "service" },

	-- The server's secrets (cookie keys). Created on the first run with
	-- mode 0600; keep it out of version control. false: in memory only.
	secrets = "moongate.secret",

	session = {
		mtu = 1200,            -- bytes of one UDP packet
		heartbeat_ms = 1000,   -- ping interval
		busy_heartbeat_ms = 5000, -- ping interval while traffic flows both ways
		timeout_ms = 10000,    -- no packet from the client this long: closed
		watermark = 4194304,   -- bytes waiting to be sent: "backpressure" past it
		msg_max = 0,           -- largest reliable message (0: KCP's limit)
	},

	-- KCP profile of every session: the "fast" profile of classic KCP.
	kcp = {
		nodelay = 1,   -- 0 normal RTO growth, 1 fast, 2 fast with gentler backoff
		interval = 10, -- flush period in ms
		resend = 2,    -- fast retransmit after this many later acks (0 off)
		nc = 1,        -- 1 disables congestion control
		sndwnd = 128,  -- send window, in segments
		rcvwnd = 128,  -- receive window, in segments
		minrto = 5,    -- smallest retransmission timeout, ms: the RTO follows
		               -- the RTT (srtt + max(4 x rttvar, 2 ms)) down to it
	},

	net = {
		frame_max = 2048,         -- largest TCP frame
		hello_timeout_ms = 10000, -- a TCP connection without a session
	},

	-- The admin console: `build/moongate admin unix:moongate.admin help`
	-- (status, sessions, reload...). A Unix socket (mode 0600) beside this
	-- file, or tcp://127.0.0.1:PORT; never a public address. Each server
	-- process needs its own. "" or false: none.
	admin = "unix:moongate.admin",

	lua = {
		budget_ms = 50,        -- a callback running longer is reported in the log
		timers_max = 1000000,  -- timers pending at once
		watch_ms = 0,          -- > 0: reload changed service files, looked for this often
		queue_max = 256,       -- events of a session waiting behind its callback that waits
		waits_max = 100000,    -- callbacks waiting at once (sleep, redis, http)
	},

	-- moongate.redis (docs/LUA_API.md): none by default; with a url the
	-- login service keeps players and revocations there (docs/SERVICES.md).
	-- redis = { url = "redis://127.0.0.1:6379/0", timeout_ms = 2000 },

	-- moongate.http: outbound requests (a game's backend)
	http = { timeout_ms = 5000, max_size = 1048576, queue_max = 1000 },

	log = {
		level = "info",  -- error, warn, info or debug
		format = "text", -- or json: one object per line
	},
}
