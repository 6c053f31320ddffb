-- moongate default configuration. A Lua file that returns a table; it runs
-- as is (`luajit config.lua`), and `moongate config.lua` will read it.
--
-- Not every key is used yet: today the server is the KCP core only; the
-- listeners and the session layer arrive with issue 3.

return {
	-- Addresses to listen on. 127.0.0.1 accepts local clients only; to
	-- expose the server, use "0.0.0.0" (all IPv4 interfaces), "::" (IPv6)
	-- or one interface's address, and open the ports in the firewall.
	listen = {
		udp = { host = "127.0.0.1", port = 7777 },
		tcp = { host = "127.0.0.1", port = 7777 }, -- fallback when UDP is blocked
	},

	-- KCP profile of every session (see core/kcp.h for each knob).
	-- This is the "fast" profile of classic KCP: nodelay on, 10 ms flush,
	-- fast retransmit after 2 later acks, no congestion window.
	kcp = {
		nodelay = 1,   -- 0 normal RTO growth, 1 fast, 2 fast with gentler backoff
		interval = 10, -- flush period in ms (10..5000)
		resend = 2,    -- fast retransmit after this many later acks (0 off)
		nc = 1,        -- 1 disables congestion control
		sndwnd = 128,  -- send window, in segments
		rcvwnd = 128,  -- receive window, in segments (at least 128)
		mtu = 1400,    -- largest datagram, in bytes (50..65535)
	},

	-- "error", "warn", "info" or "debug".
	log_level = "info",
}
