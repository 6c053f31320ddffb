-- handshake: who may open a session. Runs before any session exists
-- (docs/SERVICES.md). It refuses, with the reason sent to the client:
--   4100 a protocol version outside [version_min, version_max]
--   4101 too many handshakes from one IP (a token bucket: `rate` per
--        second, bursts of `burst`)
--   4102 too many open sessions from one IP (`per_ip_max`)
--   4103 a banned address (`ban`: exact IPs or IPv4 CIDR prefixes)
-- The hello is a JSON object; its "v" is the client's protocol version.
--
-- settings.handshake in config.lua (all optional):
--   { version_min = 1, version_max = 1, rate = 10, burst = 20,
--     per_ip_max = 64, ban = { "203.0.113.7", "198.51.100.0/24" },
--     ips_max = 100000 }
-- Console: `ban IP|CIDR`, `unban IP|CIDR`, `bans`.
local moongate = require "moongate"
local json = require "moongate.json"

local S = moongate.state("handshake")
local M = {}

M.VERSION = 4100
M.RATE = 4101
M.PER_IP = 4102
M.BANNED = 4103

local function config()
	local c = moongate.settings("handshake")
	return {
		version_min = c.version_min or 1,
		version_max = c.version_max or 1,
		rate = c.rate or 10,
		burst = c.burst or 20,
		per_ip_max = c.per_ip_max or 64,
		ips_max = c.ips_max or 100000,
		ban = c.ban or {},
	}
end

-- "1.2.3.4:5" -> "1.2.3.4"; "[::1]:5" -> "::1"; "[::ffff:1.2.3.4]:5" (an
-- IPv4 client of a dual-stack listener) -> "1.2.3.4". IPv6 in lower case.
local function ip_of(addr)
	local ip = addr:match("^%[(.-)%]:%d+$") or addr:match("^(.-):%d+$") or addr
	ip = ip:lower()
	return ip:match("^::ffff:(%d+%.%d+%.%d+%.%d+)$") or ip
end
M.ip_of = ip_of

local function ipv4(ip)
	local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
	if not a then
		return nil
	end
	a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
	if a > 255 or b > 255 or c > 255 or d > 255 then
		return nil
	end
	return ((a * 256 + b) * 256 + c) * 256 + d
end

-- A ban entry: { text =, ip = exact } or { text =, net =, bits = }
local function parse_ban(text)
	local ip, bits = text:match("^([%d%.]+)/(%d+)$")
	if text:find("/", 1, true) and not ip then
		return nil, "only IPv4 prefixes are supported: " .. text
	end
	if ip then
		local n, b = ipv4(ip), tonumber(bits)
		if not n or b > 32 then
			return nil, "not an IPv4 prefix: " .. text
		end
		local size = 2 ^ (32 - b)
		return { text = text, net = n - n % size, size = size }
	end
	if ipv4(text) then
		return { text = text, ip = text }
	end
	-- IPv6: written the way the server shows addresses (compressed, lower
	-- case: "2001:db8::1"); prefixes are IPv4 only
	if text:find(":", 1, true) and text:match("^[%x:]+$") and #text <= 39 then
		return { text = text, ip = text:lower() }
	end
	return nil, "not an IPv4 or IPv6 address, or an IPv4 prefix: " .. text
end

local function banned(ip)
	local n = ipv4(ip)
	for _, b in pairs(S.bans) do
		if b.ip == ip or (b.net and n and n >= b.net and n < b.net + b.size) then
			return b.text
		end
	end
end

-- The state kept across reloads: bans, buckets, counts.
S.buckets = S.buckets or {}   -- ip -> { tokens =, t = }
S.nbuckets = S.nbuckets or 0
S.open = S.open or {}         -- ip -> sessions open
if not S.bans then
	S.bans = {}
	for _, text in ipairs(config().ban) do
		local b, err = parse_ban(text)
		if not b then
			error("settings.handshake.ban: " .. err)
		end
		S.bans[text] = b
	end
end

local function take_token(ip, cfg, now)
	local b = S.buckets[ip]
	if not b then
		if S.nbuckets >= cfg.ips_max then
			-- full: forget the buckets that refilled (idle addresses)
			for k, v in pairs(S.buckets) do
				if v.tokens + (now - v.t) / 1000 * cfg.rate >= cfg.burst then
					S.buckets[k] = nil
					S.nbuckets = S.nbuckets - 1
				end
			end
			if S.nbuckets >= cfg.ips_max then
				return false
			end
		end
		b = { tokens = cfg.burst, t = now }
		S.buckets[ip] = b
		S.nbuckets = S.nbuckets + 1
	end
	b.tokens = math.min(cfg.burst, b.tokens + (now - b.t) / 1000 * cfg.rate)
	b.t = now
	if b.tokens < 1 then
		return false
	end
	b.tokens = b.tokens - 1
	return true
end

function M.handshake(hello, peer)
	local cfg = config()
	local ip = ip_of(peer.addr)
	local ban = banned(ip)
	if ban then
		moongate.info("handshake: %s refused: banned (%s)", ip, ban)
		return false, "banned", M.BANNED
	end
	if not take_token(ip, cfg, moongate.now()) then
		moongate.warn("handshake: %s refused: over %s handshakes/s", ip, cfg.rate)
		return false, "too many connection attempts: wait a moment", M.RATE
	end
	if (S.open[ip] or 0) >= cfg.per_ip_max then
		moongate.warn("handshake: %s refused: %d sessions open", ip, S.open[ip])
		return false, "too many sessions from your address", M.PER_IP
	end
	local h = json.decode(hello)
	local v = type(h) == "table" and tonumber(h.v)
	if not v then
		return false, "hello: a JSON object with the protocol version \"v\" expected", M.VERSION
	end
	if v < cfg.version_min then
		return false, string.format("client too old: protocol %d, the server needs %d..%d",
			v, cfg.version_min, cfg.version_max), M.VERSION
	end
	if v > cfg.version_max then
		return false, string.format("client too new: protocol %d, the server speaks %d..%d",
			v, cfg.version_min, cfg.version_max), M.VERSION
	end
end

function M.connect(session)
	local ip = ip_of(session:addr() or "?")
	session.ip = ip
	S.open[ip] = (S.open[ip] or 0) + 1
end

function M.close(session)
	local ip = session.ip
	if ip and S.open[ip] then
		S.open[ip] = S.open[ip] - 1
		if S.open[ip] <= 0 then
			S.open[ip] = nil
		end
	end
end

moongate.command("ban", "ban IP|CIDR: refuse new sessions from it (open ones stay)", function(args)
	local b, err = parse_ban(args[1] or "")
	if not b then
		return nil, err
	end
	S.bans[b.text] = b
	moongate.info("handshake: banned %s", b.text)
	return "banned " .. b.text
end)

moongate.command("unban", "unban IP|CIDR", function(args)
	local t = args[1] or ""
	if not S.bans[t] then
		return nil, "not banned: " .. t
	end
	S.bans[t] = nil
	moongate.info("handshake: unbanned %s", t)
	return "unbanned " .. t
end)

moongate.command("bans", "bans: the banned addresses", function()
	local out = {}
	for t in pairs(S.bans) do
		out[#out + 1] = t
	end
	table.sort(out)
	out[#out + 1] = #out .. " bans"
	return table.concat(out, "\n")
end)

return M
