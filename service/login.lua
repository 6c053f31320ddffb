-- login: who the player is, and a login cookie to come back with
-- (docs/SERVICES.md).
--
-- The client logs in with its hello (one round trip): a JSON object with
-- either its credentials, checked by the game's authenticate function,
-- or the cookie a previous login gave it:
--   {"v":1, "name":"ann"}            credentials (what authenticate reads)
--   {"v":1, "cookie":"1.616e6e...."} the cookie of an earlier login
-- The first message the session receives is then
--   {"op":"login", "uid":"dev:ann", "id":7, "name":"ann", "cookie":"...",
--    "expires":1795000000, "restored":false}
-- or the session is closed with the reason (codes 4110..4113).
--
-- The cookie is "2.<uid hex>.<name hex>.<issued ms>.<expires s>.<HMAC-SHA-256
-- hex>" (version 1, without the name, is still read), signed with a key
-- derived from the server secret (moongate.sign), checked in constant time
-- (moongate.verify). A cookie still works after its session is gone
-- (grace expired, app restarted): the player comes back with the same uid
-- and id, the data the game kept in player.data, and (service room) the
-- seat held for it. After a restart of the server (a crash, a deploy:
-- clients learn it at once from the stateless reset, close code 10) the
-- cookie still logs in to the same uid and name; without Redis with fresh
-- data (what was kept lived in the old process's memory). {"op":"logout"}
-- ends the session and revokes every cookie issued to that uid until then.
--
-- With Redis (config.lua's redis = { url = ... }; settings.login.store =
-- "redis", the default when a url is configured): each player's record
-- (uid, id, name, the data it kept, the seat it holds) and every
-- revocation live in Redis, under settings.login.prefix ("moongate:"), so
-- they survive a restart or a crash: a cookie login restores the player
-- (restored = true) and a revoked cookie stays refused. A record is saved
-- at login, close and logout, and when a service calls login.save(player)
-- (after a change worth keeping across a crash); a closed player's record
-- expires keep_s after its close (or when its held seat does). While Redis
-- is down, logins are refused ("login unavailable: try again", 4111): a
-- revocation cannot be checked, nor a record kept. Without Redis the
-- revocations live in memory: a restart forgets them; a deployment that
-- must not accept a logged-out cookie after a restart sets
-- cookies_survive_restart = false, and every cookie from before the
-- server's start is refused, saying so.
--
-- settings.login (all optional):
--   { cookie_ttl_s = 86400, keep_s = 600, players_max = 100000,
--     token_key = nil, audience = nil, token_max = 400,
--     cookies_survive_restart = true, store = "redis" | "memory",
--     prefix = "moongate:" }
-- keep_s: how long a player whose session closed stays in memory (its
-- data and seat); a cookie after that logs in with fresh data.
--
-- Login tokens (docs/SERVICES.md, "Login tokens"): with token_key (the
-- Ed25519 public key of the game's web backend, base64url or hex) the
-- hello may carry {"v":1, "token":"<payload>.<signature>"}, signed by the
-- backend; it is checked here with libsodium, calling nobody. Name-only
-- development logins are then refused.
local moongate = require "moongate"
local json = require "moongate.json"
local redis = require "moongate.redis"

local S = moongate.state("login")
local M = {}

M.BAD_HELLO = 4110
M.REFUSED = 4111      -- authenticate said no
M.BAD_COOKIE = 4112   -- forged, malformed, expired or revoked
M.ELSEWHERE = 4113    -- the same uid logged in on another session
M.BAD_TOKEN = 4114    -- forged, malformed, expired, too long or for another audience

S.players = S.players or {}   -- uid -> player
S.nplayers = S.nplayers or 0
S.next_id = S.next_id or 0
S.revoked = S.revoked or {}   -- uid -> logout time (ms): cookies issued before are void
S.nrevoked = S.nrevoked or 0
-- When this process started (a hot reload keeps it): with
-- cookies_survive_restart = false, cookies issued before are refused.
S.started = S.started or math.floor(moongate.time() * 1000)
-- Cookies issued before this are void: a revocation list overflow.
S.not_before = S.not_before or 0

local function hex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function unhex(h)
	if #h % 2 == 1 or h:find("[^%x]") then
		return nil
	end
	return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- settings.login.token_key: 32 bytes as 64 hex digits or 43 base64url
-- characters (a trailing "=" allowed); anything else stops the service.
local function token_key(k)
	local raw
	if type(k) == "string" and #k == 64 then
		raw = unhex(k)
	elseif type(k) == "string" then
		raw = moongate.base64url_decode((k:gsub("=$", "")))
	end
	if not raw or #raw ~= 32 then
		error("settings.login.token_key: an Ed25519 public key of 32 bytes, "
			.. "as 64 hex digits or 43 base64url characters, expected", 0)
	end
	return raw
end

local function config()
	local c = moongate.settings("login")
	local cfg = {
		cookie_ttl_s = c.cookie_ttl_s or 86400,
		keep_s = c.keep_s or 600,
		players_max = c.players_max or 100000,
		token_max = c.token_max or 400,
		audience = c.audience,
		cookies_survive_restart = c.cookies_survive_restart ~= false,
		prefix = c.prefix or "moongate:",
	}
	if c.store ~= nil and c.store ~= "redis" and c.store ~= "memory" then
		error("settings.login.store: \"redis\" or \"memory\"", 0)
	end
	if c.store == "redis" and not redis.configured() then
		error("settings.login.store = \"redis\" needs redis = { url = ... } in config.lua", 0)
	end
	cfg.redis = c.store ~= "memory" and redis.configured()
	if c.token_key ~= nil then
		if S.token_key_text ~= c.token_key then -- decoded once per key
			S.token_key_raw = token_key(c.token_key)
			S.token_key_text = c.token_key
		end
		cfg.token_key = S.token_key_raw
		if type(cfg.audience) ~= "string" or cfg.audience == "" then
			error("settings.login.audience: the name of this server or deployment "
				.. "is required with token_key (a token names the audience it is for)", 0)
		end
		if type(cfg.token_max) ~= "number" or cfg.token_max < 1 then
			error("settings.login.token_max: a positive number of bytes expected", 0)
		end
	end
	return cfg
end

-- The development login: any name is a user. Replace it with
-- login.authenticate = function(hello, session) ... end in a service of
-- the game (loaded after this one): return uid [, name], or nil, reason.
local function dev_authenticate(hello)
	local name = hello.name
	if type(name) ~= "string" or not name:match("^[%w_%-]+$") or #name > 32 then
		return nil, "a name of 1-32 letters, digits, _ or - is required"
	end
	moongate.info("login: development login accepts any name: %s (set login.authenticate)", name)
	return "dev:" .. name, name
end
M.dev_authenticate = dev_authenticate
-- A bad token_key or a missing audience stops the server here, at load.
local cfg0 = config()
if not S.announced then
	S.announced = true
	if cfg0.token_key then
		moongate.info("login: login tokens for audience %q; name-only logins refused", cfg0.audience)
	else
		moongate.warn("login: development login (any name is accepted); a game sets login.authenticate")
	end
end

-- The context every token signature covers before the payload: a
-- signature made for another protocol or purpose never passes as a token.
M.TOKEN_CONTEXT = "moongate-token-v1\0"

-- Check a login token: uid, name, or nil and the reason. The payload is
-- JSON-decoded only after its signature verifies.
function M.check_token(token, cfg)
	cfg = cfg or config()
	if not cfg.token_key then
		return nil, "login tokens are not enabled on this server"
	end
	if type(token) ~= "string" then
		return nil, "bad token: a string expected"
	end
	if #token > cfg.token_max then
		return nil, string.format("bad token: too long (%d bytes, at most %d)",
			#token, cfg.token_max)
	end
	local p64, s64 = token:match("^([%w_%-]+)%.([%w_%-]+)$")
	local payload = p64 and moongate.base64url_decode(p64)
	local sig = s64 and moongate.base64url_decode(s64)
	if not payload or not sig then
		return nil, "bad token: malformed (base64url payload \".\" base64url signature)"
	end
	if not moongate.verify_ed25519(cfg.token_key, M.TOKEN_CONTEXT .. payload, sig) then
		return nil, "bad token: signature does not verify (signed by another key, or altered)"
	end
	local t = payload:find("^%s*{") and json.decode(payload)
	if type(t) ~= "table" then
		return nil, "bad token: the payload is not a JSON object"
	end
	local uid = t.uid
	if type(uid) == "number" and uid == math.floor(uid) and math.abs(uid) < 2^53 then
		uid = string.format("%d", uid)
	end
	if type(uid) ~= "string" or uid == "" or #uid > 128 then
		return nil, "bad token: uid must be a string of 1-128 bytes"
	end
	local name = t.name
	if name ~= nil and (type(name) ~= "string" or name == "" or #name > 64) then
		return nil, "bad token: name must be a string of 1-64 bytes"
	end
	if type(t.exp) ~= "number" then
		return nil, "bad token: exp (expiry, unix seconds) is required"
	end
	if moongate.time() >= t.exp then
		return nil, "token expired: get a new one"
	end
	if t.aud ~= cfg.audience then
		return nil, string.format("bad token: for audience %q, not this server (%q)",
			tostring(t.aud), cfg.audience)
	end
	return uid, name or uid
end

function M.cookie(uid, now_ms, ttl_s, name)
	local expires = math.floor(moongate.time() + ttl_s)
	-- issued strictly after any revocation of this uid (same millisecond)
	local r = S.revoked[uid]
	local issued = math.max(now_ms, (r and r.t or 0) + 1, S.not_before + 1)
	local body = string.format("2.%s.%s.%d.%d", hex(uid), hex(name or ""), issued, expires)
	return body .. "." .. hex(moongate.sign(body, "login-cookie")), expires
end

-- Check a cookie: uid, issued_ms, name (nil in a version 1 cookie), or
-- nil and the reason.
function M.check_cookie(cookie, cfg)
	cfg = cfg or config()
	if type(cookie) ~= "string" or #cookie > 512 then
		return nil, "bad cookie"
	end
	local body, mac = cookie:match("^(1%.%x+%.%d+%.%d+)%.(%x+)$")
	if not body then
		body, mac = cookie:match("^(2%.%x+%.%x*%.%d+%.%d+)%.(%x+)$")
	end
	local tag = mac and unhex(mac)
	if not body or not tag or not moongate.verify(body, tag, "login-cookie") then
		return nil, "bad cookie"
	end
	local uidh, nameh, issued, expires
	if body:byte(1) == 49 then -- "1"
		uidh, issued, expires = body:match("^1%.(%x+)%.(%d+)%.(%d+)$")
	else
		uidh, nameh, issued, expires = body:match("^2%.(%x+)%.(%x*)%.(%d+)%.(%d+)$")
	end
	local uid, name = unhex(uidh), nameh and unhex(nameh)
	issued, expires = tonumber(issued), tonumber(expires)
	if not uid or (nameh and not name) then
		return nil, "bad cookie"
	end
	if moongate.time() >= expires then
		return nil, "cookie expired: log in again"
	end
	local revoked = S.revoked[uid]
	if revoked and issued <= revoked.t then
		return nil, "cookie revoked (logged out): log in again"
	end
	if issued <= S.not_before then
		return nil, "cookie void (the server's revocation list overflowed): log in again"
	end
	-- (strictly before: a cookie issued in the millisecond this process
	-- started is its own; an earlier process's are all older)
	if not cfg.cookies_survive_restart and issued < S.started then
		return nil, "cookie from before the server restarted "
			.. "(login.cookies_survive_restart is off): log in again"
	end
	return uid, issued, name ~= "" and name or nil
end

-- ---- the Redis store (cfg.redis) -------------------------------------------
-- prefix .. "player:" .. uid   hash: id, name, data (JSON), seat (JSON)
-- prefix .. "revoked:" .. uid  the logout time (ms); expires with the
--                              cookies it voids (cookie_ttl_s)
-- prefix .. "next_id"          the last player id given (INCR)

local function rkey(cfg, kind, uid)
	return cfg.prefix .. kind .. ":" .. uid
end

-- The record of uid: { id, name, data, seat } or false; nil, err when
-- Redis could not say.
local function load_record(cfg, uid)
	local r = redis.connect()
	local t, err = r:call("HGETALL", rkey(cfg, "player", uid))
	if not t then
		return nil, err
	end
	if #t == 0 then
		return false
	end
	local h = {}
	for i = 1, #t - 1, 2 do
		h[t[i]] = t[i + 1]
	end
	local data = h.data and json.decode(h.data)
	local seat = h.seat and h.seat ~= "" and json.decode(h.seat) or nil
	return { id = tonumber(h.id), name = h.name, data = type(data) == "table" and data or {},
		seat = type(seat) == "table" and seat or nil }
end

-- Save p's record; ttl_s: it expires then (a closed player), or nil: kept.
local function save_record(cfg, p, ttl_s)
	local key = rkey(cfg, "player", p.uid)
	local ok, data = pcall(json.encode, p.data or {})
	if not ok then
		moongate.error("login: %s: player.data cannot be saved: %s", p.uid, tostring(data))
		data = "{}"
	end
	local seat = p.held_seat and json.encode(p.held_seat) or ""
	local cmds = { { "HSET", key, "id", p.id, "name", p.name, "data", data, "seat", seat } }
	cmds[2] = ttl_s and { "EXPIRE", key, math.max(1, math.ceil(ttl_s)) } or { "PERSIST", key }
	local _, errs = redis.connect():pipeline(cmds)
	local err = errs and (errs[1] or errs[2])
	if err then
		moongate.warn("login: %s: record not saved in Redis: %s", p.uid, err)
		return nil, err
	end
	return true
end

-- The logout time of uid (ms) in Redis, 0 when none; nil, err.
local function revoked_at(cfg, uid)
	local v, err = redis.connect():call("GET", rkey(cfg, "revoked", uid))
	if err then
		return nil, err
	end
	return tonumber(v) or 0
end

local function wall_ms()
	return math.floor(moongate.time() * 1000)
end

-- ---- presence (Redis): where each player is logged in ---------------------
-- prefix .. "presence:" .. uid: a hash of node (node_id), worker, session;
-- a login elsewhere (another node or worker) tells the old one through
-- Redis pub/sub on its channel, prefix .. "node:" .. NODE .. ":" .. WORKER,
-- and the old session closes with 4113 "logged in elsewhere".

local function my_channel(cfg)
	return cfg.prefix .. "node:" .. moongate.node_id .. ":" .. (moongate.worker or 0)
end

-- The old place of uid told to let it go (when it is not here), then this
-- place written. Never fatal: logged.
local function claim_presence(cfg, uid, session)
	local r = redis.connect()
	local key = rkey(cfg, "presence", uid)
	local t = r:call("HGETALL", key)
	local h = {}
	for i = 1, #(t or {}) - 1, 2 do
		h[t[i]] = t[i + 1]
	end
	local here = tostring(moongate.node_id) .. ":" .. tostring(moongate.worker or 0)
	if h.node and h.node .. ":" .. tostring(h.worker) ~= here then
		local ch = cfg.prefix .. "node:" .. h.node .. ":" .. tostring(h.worker)
		r:call("PUBLISH", ch, json.encode({ op = "kick", uid = uid,
			session = tonumber(h.session), by = here }))
	end
	local _, errs = r:pipeline({
		{ "HSET", key, "node", moongate.node_id, "worker", moongate.worker or 0,
			"session", session:id(), "at", wall_ms() },
		{ "EXPIRE", key, cfg.cookie_ttl_s } })
	if errs and (errs[1] or errs[2]) then
		moongate.warn("login: %s: presence not written: %s", uid, errs[1] or errs[2])
	end
end

local function drop_presence(cfg, uid, session)
	local key = rkey(cfg, "presence", uid)
	local r = redis.connect()
	local sid = r:call("HGET", key, "session")
	local node = r:call("HGET", key, "node")
	if tonumber(sid) == session:id() and node == moongate.node_id then
		r:call("DEL", key)
	end
end

-- Where uid is logged in: { node =, worker =, session = } or nil (Redis
-- only; nil, err when Redis could not say).
function M.where(uid)
	local cfg = config()
	if not cfg.redis then
		local p = S.players[uid]
		return p and p.session and { node = moongate.node_id, worker = moongate.worker or 0,
			session = p.session:id() } or nil
	end
	local t, err = redis.connect():call("HGETALL", rkey(cfg, "presence", uid))
	if not t then
		return nil, err
	end
	if #t == 0 then
		return nil
	end
	local h = {}
	for i = 1, #t - 1, 2 do
		h[t[i]] = t[i + 1]
	end
	return { node = h.node, worker = tonumber(h.worker), session = tonumber(h.session) }
end

-- A message on this node's channel: another node logged a player in.
function M.on_node_message(data)
	local m = json.decode(data)
	if type(m) ~= "table" or m.op ~= "kick" or type(m.uid) ~= "string" then
		return
	end
	local p = S.players[m.uid]
	if p and p.session and p.session:alive() and p.session:id() == m.session then
		local old = p.session
		p.moved_away = true -- its record is the new place's now: not saved here
		old:close(M.ELSEWHERE, "logged in elsewhere")
		moongate.info("login: %s logged in on %s: session %08x closed", m.uid,
			tostring(m.by), old:id())
	end
end

local function forget(uid)
	if S.players[uid] then
		S.players[uid] = nil
		S.nplayers = S.nplayers - 1
	end
end

-- Drop players whose session closed more than keep_s ago, and
-- revocations older than any cookie they could void.
local function prune(cfg)
	local now = moongate.now()
	for uid, p in pairs(S.players) do
		if not p.session and p.closed_at and now - p.closed_at > cfg.keep_s * 1000
			and not p.room then
			forget(uid)
		end
	end
	local oldest = wall_ms() - cfg.cookie_ttl_s * 1000
	for uid, r in pairs(S.revoked) do
		if r.t < oldest then
			S.revoked[uid] = nil
			S.nrevoked = S.nrevoked - 1
		end
	end
end

local function revoke(uid, cfg)
	if not S.revoked[uid] then
		if S.nrevoked >= cfg.players_max then
			prune(cfg)
		end
		if S.nrevoked >= cfg.players_max then
			-- still full: void every cookie issued so far instead of
			-- forgetting one revocation (fail safe; everyone logs in again)
			S.not_before = wall_ms()
			S.revoked, S.nrevoked = {}, 0
			moongate.warn("login: revocation list full: every cookie issued so far is void")
			return
		end
		S.nrevoked = S.nrevoked + 1
	end
	S.revoked[uid] = { t = wall_ms() }
	if cfg.redis then
		local key = rkey(cfg, "revoked", uid)
		local _, errs = redis.connect():pipeline({
			{ "SET", key, S.revoked[uid].t, "EX", cfg.cookie_ttl_s },
			{ "DEL", rkey(cfg, "player", uid) } })
		if errs and (errs[1] or errs[2]) then
			moongate.error("login: %s: the logout could not be written to Redis (%s): "
				.. "its cookies stay revoked in this process only", uid, errs[1] or errs[2])
		end
	end
end

-- Save a player's record now (Redis: data and held seat survive a crash
-- from here on); without Redis, nothing to do. true, or nil, err.
function M.save(p)
	local cfg = config()
	if not cfg.redis or not p or p.logged_out then
		return true
	end
	return save_record(cfg, p, M.record_ttl(p, cfg))
end

-- Send p, connected here, to another worker or node (to.worker: a slot,
-- moongate.worker there; to.url: that node's node_url, nil for this
-- node): its record saved first, with whatever the caller put in it (the
-- room service, a reserved seat), then its session closed with a move
-- (session:move) whose hello is a fresh cookie, which the client library
-- follows and logs in with there. Needs the Redis store (the record is how
-- the player gets there). true, or nil and the reason.
function M.move(p, to)
	local cfg = config()
	if not cfg.redis then
		return nil, "moving a player needs the Redis store (settings.login.store)"
	end
	local s = p.session
	if not (s and s:alive()) then
		return nil, "not connected"
	end
	local ok, err = save_record(cfg, p, cfg.cookie_ttl_s)
	if not ok then
		return nil, "not moved: the record could not be saved (" .. tostring(err) .. ")"
	end
	if p.session ~= s or not s:alive() then
		return nil, "not connected" -- it went while the record was saved
	end
	-- a cookie without the name (the record has it): the move must fit
	-- a close reason
	local cookie = M.cookie(p.uid, wall_ms(), cfg.cookie_ttl_s)
	local moved, merr = s:move({ worker = to.worker, url = to.url,
		hello = json.encode({ v = 1, cookie = cookie }) })
	if not moved then
		return nil, merr
	end
	p.moved_away = true -- the record is the new place's now: not saved here
	moongate.info("login: %s moved to %s worker %s", p.uid, to.url or "this node",
		tostring(to.worker))
	return true
end

-- The Redis key prefix when players live in Redis (the room service keeps
-- its directory beside them), or nil.
function M.store_prefix()
	local cfg = config()
	return cfg.redis and cfg.prefix or nil
end

-- How long p's record lives in Redis from now, s: a connected player's
-- cookie_ttl_s (a bound for a crash that never ran close), a closed
-- one's keep_s, or longer while its seat is held.
function M.record_ttl(p, cfg)
	cfg = cfg or config()
	if p.session then
		return cfg.cookie_ttl_s
	end
	local ttl = cfg.keep_s
	local seat = p.held_seat
	if seat and seat["until"] then
		ttl = math.max(ttl, (seat["until"] - wall_ms()) / 1000)
	end
	return ttl
end

-- The player of a session (nil before login).
function M.player(session)
	return session.player
end

-- The player of a uid, connected or kept.
function M.find(uid)
	return S.players[uid]
end

-- Every player in memory (connected or kept), by uid.
function M.players()
	return S.players
end

function M.connect(session, hello)
	local cfg = config()
	local h = json.decode(hello)
	if type(h) ~= "table" then
		return false, "hello: a JSON object expected", M.BAD_HELLO
	end
	local uid, name, restored, err, issued
	if h.cookie ~= nil then
		uid, err, name = M.check_cookie(h.cookie, cfg)
		if not uid then
			moongate.info("login: session %08x: %s", session:id(), err)
			return false, err, M.BAD_COOKIE
		end
		issued = err
		restored = true
	elseif h.token ~= nil then
		uid, name = M.check_token(h.token, cfg)
		if not uid then
			moongate.info("login: session %08x: %s", session:id(), name)
			return false, name, M.BAD_TOKEN
		end
	elseif cfg.token_key and not M.authenticate then
		moongate.info("login: session %08x: no token", session:id())
		return false, "a login token is required (this server refuses name-only logins)",
			M.REFUSED
	else
		local auth = M.authenticate or dev_authenticate
		local ok
		ok, uid, name = xpcall(auth, debug.traceback, h, session)
		if not ok then
			moongate.error("login: authenticate failed: %s", tostring(uid))
			return false, "login unavailable: try again", M.REFUSED
		end
		if not uid then
			return false, name or "login refused", M.REFUSED
		end
		uid = tostring(uid)
		if #uid > 128 then
			return false, "login: a uid of at most 128 bytes", M.REFUSED
		end
	end
	-- a cookie logged out elsewhere (another process, before a restart)
	if cfg.redis and h.cookie ~= nil then
		local t, rerr = revoked_at(cfg, uid)
		if not t then
			moongate.error("login: session %08x: revocations unavailable (Redis: %s)",
				session:id(), rerr)
			return false, "login unavailable: try again", M.REFUSED
		end
		if t > 0 and issued <= t then
			moongate.info("login: session %08x: cookie revoked (logged out)", session:id())
			return false, "cookie revoked (logged out): log in again", M.BAD_COOKIE
		end
	end
	local p = S.players[uid]
	if p and not p.session and p.closed_at and not p.room
		and moongate.now() - p.closed_at > cfg.keep_s * 1000 then
		forget(uid) -- kept past keep_s: a fresh start, as documented
		p = nil
	end
	if p and cfg.redis and not p.session and not p.room then
		-- kept here, but another worker or node may have changed its
		-- record since (a move, a login there): Redis has the truth
		forget(uid)
		p = nil
	end
	restored = p ~= nil
	if not p then
		if S.nplayers >= cfg.players_max then
			prune(cfg)
			if S.nplayers >= cfg.players_max then
				return false, "server full", M.REFUSED
			end
		end
		local rec, id
		if cfg.redis then
			local rerr
			rec, rerr = load_record(cfg, uid)
			if rec == nil then
				moongate.error("login: session %08x: %s's record unavailable (Redis: %s)",
					session:id(), uid, rerr)
				return false, "login unavailable: try again", M.REFUSED
			end
			if rec and rec.id then
				id = rec.id
			else
				id, rerr = redis.connect():call("INCR", cfg.prefix .. "next_id")
				if not id then
					moongate.error("login: session %08x: no player id (Redis: %s)", session:id(), rerr)
					return false, "login unavailable: try again", M.REFUSED
				end
			end
			-- waited: the same uid may have logged in meanwhile
			p = S.players[uid]
		end
		if not p then
			if not id then
				S.next_id = S.next_id + 1
				id = S.next_id
			end
			p = { uid = uid, id = id, name = (rec and rec.name) or name or uid,
				data = rec and rec.data or {}, held_seat = rec and rec.seat or nil }
			S.players[uid] = p
			S.nplayers = S.nplayers + 1
			restored = rec and true or false
		else
			restored = true
		end
	end
	if p.session and p.session:alive() and p.session ~= session then
		local old = p.session
		p.session = nil
		old.player = nil
		old:close(M.ELSEWHERE, "logged in elsewhere")
		moongate.info("login: %s moved from session %08x to %08x", uid, old:id(), session:id())
	end
	if not session:alive() then
		return -- closed while it waited (its callbacks end with it)
	end
	if name then
		p.name = name
	end
	p.session = session
	p.closed_at = nil
	session.player = p
	session.uid = uid
	if cfg.redis then
		p.moved_away = nil
		save_record(cfg, p, cfg.cookie_ttl_s)
		claim_presence(cfg, uid, session)
	end
	local cookie, expires = M.cookie(uid, wall_ms(), cfg.cookie_ttl_s, p.name)
	session:send(json.encode({ op = "login", uid = uid, id = p.id, name = p.name,
		cookie = cookie, expires = expires, restored = restored }))
	moongate.info("login: %s (id %d) on session %08x%s%s", uid, p.id, session:id(),
		h.cookie ~= nil and ", with a cookie" or h.token ~= nil and ", with a token" or "",
		restored and " (restored)" or "")
end

function M.message(session, data, reliable)
	if not reliable or data:byte(1) ~= 123 then -- '{'
		return
	end
	if not data:find('"op"%s*:%s*"logout"') then
		return
	end
	local m = json.decode(data)
	if type(m) ~= "table" or m.op ~= "logout" then
		return
	end
	local p = session.player
	if p then
		revoke(p.uid, config())
		p.logged_out = true
		p.session = nil
		forget(p.uid) -- a login from now on starts afresh
		moongate.info("login: %s logged out", p.uid)
	end
	session:send(json.encode({ op = "logout" }))
	session:close(0, "logged out")
	-- not taken: the services after this one see the logout too (the room
	-- service gives the seat up now)
end

function M.close(session)
	local p = session.player
	if p and p.session == session then
		p.session = nil
		p.closed_at = moongate.now()
		local cfg = config()
		if p.logged_out then
			forget(p.uid)
		elseif p.moved_away then
			forget(p.uid) -- logged in on another node: its record is theirs
			return
		elseif cfg.redis then
			-- kept keep_s, or as long as its held seat (the room service
			-- saves the seat in its own close, after this one)
			save_record(cfg, p, M.record_ttl(p, cfg))
		end
		if cfg.redis then
			drop_presence(cfg, p.uid, session)
		end
	end
end

-- this node's channel: logins on other nodes of players logged in here
-- (subscribed on the loop's first turn: no I/O while modules load)
if cfg0.redis and not S.node_sub then
	S.node_sub = true
	moongate.after(0, function()
		S.node_sub = redis.subscribe(my_channel(config()), function(data)
			M.on_node_message(data)
		end)
	end)
end

-- An upgrade's drain deadline: every player connected here and in no room
-- (the room service moves its members with their seats) goes to the new
-- worker of this slot, with its cookie (M.move).
if moongate.on_drain then
	moongate.on_drain("login", function(worker)
		local n, list = 0, {}
		for _, p in pairs(S.players) do -- (a list first: each move waits)
			list[#list + 1] = p
		end
		for _, p in ipairs(list) do
			if p.session and p.session:alive() and not p.room then
				if M.move(p, { worker = worker }) then
					n = n + 1
				end
			end
		end
		moongate.info("login: drain deadline: %d player(s) moved to worker %d", n, worker)
	end)
end

S.pruner = S.pruner or moongate.every(60000, function()
	M.prune()
end)
function M.prune()
	prune(config())
end

-- The operators' endpoint: players in this process, connected or kept.
moongate.on_metrics("login", function()
	local on, kept = 0, 0
	for _, p in pairs(S.players) do
		if p.session then on = on + 1 else kept = kept + 1 end
	end
	return {
		{ name = "moongate_players", value = on, labels = { state = "connected" },
			help = "players of the login service in this process" },
		{ name = "moongate_players", value = kept, labels = { state = "kept" } },
	}
end)

return M
