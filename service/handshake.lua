-- handshake: who may open a session. Runs before any session exists
-- (docs/SERVICES.md). It refuses, with the reason sent to the client:
--   4100 a protocol version outside [version_min, version_max]
--   4101 too many handshakes from one source (a token bucket: `rate` per
--        second, bursts of `burst`)
--   4102 too many open sessions from one source (`per_ip_max`)
--   4103 a banned address (`ban`: exact IPs, IPv4 or IPv6 CIDR prefixes)
-- A source is an IPv4 address or an IPv6 /64: one host usually holds a
-- whole /64, so keying the limits by exact IPv6 address would let it walk
-- around them.
-- The hello is a JSON object; its "v" is the client's protocol version.
--
-- settings.handshake in config.lua (all optional):
--   { version_min = 1, version_max = 1, rate = 10, burst = 20,
--     per_ip_max = 64, ban = { "203.0.113.7", "198.51.100.0/24",
--     "2001:db8:bad::/48" },
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

-- "2001:db8::1" -> { 0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 }, or nil. Accepts
-- "::", a trailing dotted IPv4 ("::ffff:1.2.3.4") and a zone ("%eth0").
local function ipv6(ip)
	ip = ip:gsub("%%.*$", "")
	if not ip:match("^[%x:%.]+$") or not ip:find(":", 1, true) then
		return nil
	end
	local v4 = ip:match(":(%d+%.%d+%.%d+%.%d+)$")
	if v4 then  -- the last 32 bits as two groups
		local n = ipv4(v4)
		if not n then
			return nil
		end
		ip = ip:sub(1, #ip - #v4) ..
			string.format("%x:%x", math.floor(n / 65536), n % 65536)
	end
	if ip:find("%.") then
		return nil
	end
	local function groups(part)
		local g = {}
		if part == "" then
			return g
		end
		for h in (part .. ":"):gmatch("([^:]*):") do
			if not h:match("^%x%x?%x?%x?$") then
				return nil
			end
			g[#g + 1] = tonumber(h, 16)
		end
		return g
	end
	local head, rest = ip:match("^(.-)::(.*)$")
	local a, b
	if head then
		if rest:find("::", 1, true) then
			return nil
		end
		a, b = groups(head), groups(rest)
	else
		a, b = groups(ip), {}
	end
	if not a or not b then
		return nil
	end
	local n = #a + #b
	if (head and n > 7) or (not head and n ~= 8) then
		return nil
	end
	local out = {}
	for _, x in ipairs(a) do out[#out + 1] = x end
	for _ = 1, 8 - n do out[#out + 1] = 0 end
	for _, x in ipairs(b) do out[#out + 1] = x end
	return out
end
M.ipv6 = ipv6

-- The groups of g kept by a prefix of bits, the rest zero.
local function masked(g, bits)
	local out = {}
	for i = 1, 8 do
		local keep = math.max(0, math.min(16, bits - (i - 1) * 16))
		local size = 2 ^ (16 - keep)
		out[i] = g[i] - g[i] % size
	end
	return out
end

local function v6text(g)
	return string.format("%x:%x:%x:%x:%x:%x:%x:%x", unpack(g))
end

-- The source an address counts under: the IPv4 address, or its IPv6 /64
-- ("2001:db8:1:2::/64").
local function source_of(ip)
	if ipv4(ip) then
		return ip
	end
	local g = ipv6(ip)
	if not g then
		return ip
	end
	return string.format("%x:%x:%x:%x::/64", g[1], g[2], g[3], g[4])
end
M.source_of = source_of

-- A ban entry: { text =, ip = exact IPv4 } or { text =, net =, size = }
-- (IPv4 prefix) or { text =, v6 = masked groups, bits = } (IPv6, exact
-- when bits is 128).
local function parse_ban(text)
	local addr, bits = text:match("^([^/]+)/(%d+)$")
	if text:find("/", 1, true) and not addr then
		return nil, "not an address or a CIDR prefix: " .. text
	end
	addr = addr or text
	bits = bits and tonumber(bits)
	local n = ipv4(addr)
	if n then
		if not bits then
			return { text = text, ip = addr }
		end
		if bits > 32 then
			return nil, "not an IPv4 prefix: " .. text
		end
		local size = 2 ^ (32 - bits)
		return { text = text, net = n - n % size, size = size }
	end
	local g = ipv6(addr)
	if g then
		bits = bits or 128
		if bits > 128 then
			return nil, "not an IPv6 prefix: " .. text
		end
		return { text = text, v6 = masked(g, bits), bits = bits }
	end
	return nil, "not an IPv4 or IPv6 address or CIDR prefix: " .. text
end
M.parse_ban = parse_ban

local function banned(ip)
	local n = ipv4(ip)
	local g = not n and ipv6(ip)
	for _, b in pairs(S.bans) do
		if b.ip == ip or (b.net and n and n >= b.net and n < b.net + b.size) then
			return b.text
		end
		if b.v6 and g and v6text(masked(g, b.bits)) == v6text(b.v6) then
			return b.text
		end
	end
end
M.banned = banned

-- The state kept across reloads: bans, buckets, counts.
S.buckets = S.buckets or {}   -- source -> { tokens =, t = }
S.nbuckets = S.nbuckets or 0
S.open = S.open or {}         -- source -> sessions open
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
	local src = source_of(ip)
	if not take_token(src, cfg, moongate.now()) then
		moongate.warn("handshake: %s refused: over %s handshakes/s from %s", ip,
			cfg.rate, src)
		return false, "too many connection attempts: wait a moment", M.RATE
	end
	if (S.open[src] or 0) >= cfg.per_ip_max then
		moongate.warn("handshake: %s refused: %d sessions open from %s", ip,
			S.open[src], src)
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
	local src = source_of(ip_of(session:addr() or "?"))
	session.ip = src  -- the source it counts under
	S.open[src] = (S.open[src] or 0) + 1
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
