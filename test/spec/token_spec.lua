-- Login tokens (docs/SERVICES.md, "Login tokens"): a game's web backend
-- signs {uid, name, exp, aud} with Ed25519; the login service checks the
-- token with login.token_key, calling nobody, and refuses name-only logins.
--
-- The test signer is libsodium through LuaJIT's FFI (libsodium is a build
-- dependency); one case signs with examples/token_signer.py (PyNaCl) to
-- prove the two agree, and is skipped, saying so, without python3-nacl.
local T = require "moongate.test"
local json = require "moongate.json"
local ffi = require "ffi"

ffi.cdef [[
int sodium_init(void);
int crypto_sign_seed_keypair(unsigned char *pk, unsigned char *sk, const unsigned char *seed);
int crypto_sign_detached(unsigned char *sig, unsigned long long *siglen,
	const unsigned char *m, unsigned long long mlen, const unsigned char *sk);
]]
local sodium = (function()
	for _, name in ipairs{ "sodium", "libsodium.so.23", "libsodium.so" } do
		local ok, lib = pcall(ffi.load, name)
		if ok then
			return lib
		end
	end
	error("token_spec: libsodium not found (scripts/deps.sh installs libsodium-dev)")
end)()
assert(sodium.sodium_init() >= 0)

local CONTEXT = "moongate-token-v1\0"

local function b64url(s)
	local abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	local out = {}
	for i = 1, #s, 3 do
		local a, b, c = s:byte(i, i + 2)
		local n = a * 65536 + (b or 0) * 256 + (c or 0)
		local k = c and 4 or b and 3 or 2
		for j = 1, k do
			local v = math.floor(n / 2 ^ (18 - 6 * (j - 1))) % 64
			out[#out + 1] = abc:sub(v + 1, v + 1)
		end
	end
	return table.concat(out)
end

local function hex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- A key pair from a 32-byte seed: { seed, pk, sk }
local function keypair(seed)
	local pk, sk = ffi.new("unsigned char[32]"), ffi.new("unsigned char[64]")
	assert(sodium.crypto_sign_seed_keypair(pk, sk, seed) == 0)
	return { seed = seed, pk = ffi.string(pk, 32), sk = sk }
end

local function sign(key, payload)
	local sig = ffi.new("unsigned char[64]")
	local msg = CONTEXT .. payload
	assert(sodium.crypto_sign_detached(sig, nil, msg, #msg, key.sk) == 0)
	return ffi.string(sig, 64)
end

-- A token for these claims (a JSON object), signed by key.
local function token(key, claims)
	local payload = json.encode(claims)
	return b64url(payload) .. "." .. b64url(sign(key, payload))
end

local backend = keypair(string.rep("\7", 32))   -- the key the server trusts
local intruder = keypair(string.rep("\9", 32))  -- anybody else's
local AUD = "test-eu-1"

local hello = function(t) t.v = t.v or 1; return json.encode(t) end

-- The close of a client that should be refused.
local function refused(srv, h)
	local cl = T.connect(srv, "udp", hello(h))
	return cl:wait_close()
end

-- A python3 with PyNaCl, or nil (Debian's python3-nacl is for /usr/bin).
local function python_nacl()
	for _, py in ipairs{ "/usr/bin/python3", "python3" } do
		local ok = os.execute(py .. " -c 'import nacl.signing' >/dev/null 2>&1")
		if ok == 0 or ok == true then
			return py
		end
	end
end

local function run(cmd)
	local f = assert(io.popen(cmd .. " 2>&1"))
	local out = f:read("*a")
	local ok = f:close()
	return out, ok
end

describe("login tokens", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "handshake", "login" },
			config = { settings = {
				login = { token_key = b64url(backend.pk), audience = AUD },
				handshake = { rate = 1000, burst = 1000 }, -- many logins from 127.0.0.1
			} },
		}
	end)
	lazy_teardown(T.stop_all)

	it("logs in with a token: the token's uid and name, then restores the player", function()
		local tk = token(backend, { uid = "u-1001", name = "ann", exp = os.time() + 60, aud = AUD })
		local a = T.connect(srv, "udp", hello{ token = tk })
		local login = a:wait_op("login")
		assert.are.same({ "u-1001", "ann", false }, { login.uid, login.name, login.restored })
		assert.matches("^2%.%x+%.%x*%.%d+%.%d+%.%x+$", login.cookie)
		srv:wait_log("login: u%-1001 %(id %d+%) on session %x+, with a token", 2000)
		a:close()
		a:wait_close()
		-- the same token again (TCP this time) finds the player kept
		local b = T.connect(srv, "tcp", hello{ token = tk })
		local again = b:wait_op("login")
		assert.are.same({ "u-1001", login.id, true }, { again.uid, again.id, again.restored })
		b:close()
		b:wait_close()
		-- and the cookie a token login gave works like any cookie
		local c = T.connect(srv, "udp", hello{ cookie = again.cookie })
		assert.are.same({ "u-1001", true }, { c:wait_op("login").uid, true })
		c:close()
		c:wait_close()
	end)

	it("accepts the test vector of docs/SERVICES.md, byte for byte", function()
		-- seed 07 x 32, payload as printed there, Ed25519 being deterministic
		assert.are.equal("6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw", b64url(backend.pk))
		local payload = '{"uid":"u-1001","name":"ann","exp":4102444800,"aud":"test-eu-1"}'
		local vector = "eyJ1aWQiOiJ1LTEwMDEiLCJuYW1lIjoiYW5uIiwiZXhwIjo0MTAyNDQ0ODAwLCJhdWQiOiJ0ZXN0LWV1LTEifQ"
			.. ".QakA7zaKIEHvXczPkw-YCX3CJA5W3G409dAbQDJms-ZvQtWDJojtBG7d1MZVOiy3O3fptJrg1EuEKZidyN5lCQ"
		assert.are.equal(vector, b64url(payload) .. "." .. b64url(sign(backend, payload)))
		local a = T.connect(srv, "udp", hello{ token = vector })
		assert.are.equal("u-1001", a:wait_op("login").uid)
		a:close()
		a:wait_close()
	end)

	it("accepts a numeric uid, and the uid as the name when there is none", function()
		local a = T.connect(srv, "udp", hello{ token = token(backend,
			{ uid = 77, exp = os.time() + 60, aud = AUD }) })
		local login = a:wait_op("login")
		assert.are.same({ "77", "77" }, { login.uid, login.name })
		a:close()
		a:wait_close()
	end)

	it("refuses a name-only login when token_key is set", function()
		local c = refused(srv, { name = "mallory" })
		assert.are.same({ 4111, "a login token is required (this server refuses name-only logins)" },
			{ c.code, c.reason })
	end)

	it("refuses an expired token", function()
		local c = refused(srv, { token = token(backend,
			{ uid = "u-1", name = "old", exp = os.time() - 1, aud = AUD }) })
		assert.are.same({ 4114, "token expired: get a new one" }, { c.code, c.reason })
	end)

	it("refuses a token for another audience", function()
		local c = refused(srv, { token = token(backend,
			{ uid = "u-1", name = "x", exp = os.time() + 60, aud = "test-us-2" }) })
		assert.are.equal(4114, c.code)
		assert.are.equal('bad token: for audience "test-us-2", not this server ("test-eu-1")', c.reason)
		-- no audience at all is another audience too
		c = refused(srv, { token = token(backend, { uid = "u-1", exp = os.time() + 60 }) })
		assert.matches('for audience "nil"', c.reason, 1, true)
	end)

	it("refuses a token signed by another key", function()
		local c = refused(srv, { token = token(intruder,
			{ uid = "u-1001", name = "ann", exp = os.time() + 60, aud = AUD }) })
		assert.are.same({ 4114,
			"bad token: signature does not verify (signed by another key, or altered)" },
			{ c.code, c.reason })
	end)

	it("refuses a tampered payload", function()
		local tk = token(backend, { uid = "u-5", name = "eve", exp = os.time() + 60, aud = AUD })
		local sig = tk:match("%.(.*)$")
		-- the same signature over another uid
		local forged = b64url(json.encode{ uid = "u-1001", name = "eve",
			exp = os.time() + 60, aud = AUD }) .. "." .. sig
		local c = refused(srv, { token = forged })
		assert.are.same({ 4114, "signature does not verify" },
			{ c.code, c.reason:match("signature does not verify") })
		-- a signature made without the context prefix does not pass either
		local payload = json.encode{ uid = "u-5", exp = os.time() + 60, aud = AUD }
		local sigbuf = ffi.new("unsigned char[64]")
		sodium.crypto_sign_detached(sigbuf, nil, payload, #payload, backend.sk)
		c = refused(srv, { token = b64url(payload) .. "." .. b64url(ffi.string(sigbuf, 64)) })
		assert.matches("signature does not verify", c.reason, 1, true)
	end)

	it("refuses an over-long or malformed token before any decoding", function()
		local tk = token(backend, { uid = "u-2", name = "pad", exp = os.time() + 60, aud = AUD,
			pad = string.rep("x", 190) })
		assert(#tk > 400 and #tk < 480, #tk)
		local c = refused(srv, { token = tk })
		assert.are.same({ 4114, ("bad token: too long (%d bytes, at most 400)"):format(#tk) },
			{ c.code, c.reason })
		for _, bad in ipairs{ "garbage", "a.b.c", "abc.de=f", "" } do
			c = refused(srv, { token = bad })
			assert.are.equal(4114, c.code)
			assert.matches("^bad token: malformed", c.reason)
		end
		c = refused(srv, { token = 12 })
		assert.are.same({ 4114, "bad token: a string expected" }, { c.code, c.reason })
	end)

	it("refuses a signed payload that is not a valid token", function()
		local c = refused(srv, { token = b64url("[1]") .. "." .. b64url(sign(backend, "[1]")) })
		assert.are.equal("bad token: the payload is not a JSON object", c.reason)
		c = refused(srv, { token = token(backend, { uid = "", exp = os.time() + 60, aud = AUD }) })
		assert.are.equal("bad token: uid must be a string of 1-128 bytes", c.reason)
		c = refused(srv, { token = token(backend, { uid = 1.5, exp = os.time() + 60, aud = AUD }) })
		assert.are.equal("bad token: uid must be a string of 1-128 bytes", c.reason)
		c = refused(srv, { token = token(backend, { uid = 2^60, exp = os.time() + 60, aud = AUD }) })
		assert.are.equal("bad token: uid must be a string of 1-128 bytes", c.reason)
		c = refused(srv, { token = token(backend, { uid = "u", aud = AUD }) })
		assert.are.equal("bad token: exp (expiry, unix seconds) is required", c.reason)
	end)

	it("logs in with a token from examples/token_signer.py (PyNaCl)", function()
		local py = python_nacl()
		if not py then
			pending("python3-nacl is not installed: the Python signer's interop is not checked "
				.. "(scripts/deps.sh installs it)")
			return
		end
		-- examples/ from this file's path (test/spec/token_spec.lua)
		local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "test/spec"
		local signer = here .. "/../../examples/token_signer.py"
		local keyfile = os.tmpname()
		local f = assert(io.open(keyfile, "w"))
		f:write(hex(backend.seed), "\n")
		f:close()
		local q = function(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
		local pub, ok = run(("%s %s pubkey --key %s"):format(py, q(signer), q(keyfile)))
		assert(ok, pub)
		assert.are.equal(b64url(backend.pk), (pub:gsub("%s+$", "")))
		local pubhex = run(("%s %s pubkey --hex --key %s"):format(py, q(signer), q(keyfile)))
		assert.are.equal(hex(backend.pk), (pubhex:gsub("%s+$", "")))
		local tk
		tk, ok = run(("%s %s sign --key %s --uid py-7 --name zoé --aud %s --ttl 60")
			:format(py, q(signer), q(keyfile), AUD))
		os.remove(keyfile)
		assert(ok, tk)
		tk = tk:gsub("%s+$", "")
		local a = T.connect(srv, "udp", hello{ token = tk })
		local login = a:wait_op("login")
		assert.are.same({ "py-7", "zoé" }, { login.uid, login.name })
		a:close()
		a:wait_close()
	end)
end)

describe("login token settings", function()
	after_each(T.stop_all)

	it("take the key in hex too, and a smaller token_max", function()
		local srv = T.start_server{
			services = { "handshake", "login" },
			config = { settings = { login = {
				token_key = hex(backend.pk), audience = AUD, token_max = 200,
			} } },
		}
		local tk = token(backend, { uid = "h", exp = os.time() + 60, aud = AUD })
		local a = T.connect(srv, "tcp", hello{ token = tk })
		assert.are.equal("h", a:wait_op("login").uid)
		local long = token(backend, { uid = "h", exp = os.time() + 60, aud = AUD,
			pad = string.rep("y", 60) })
		local c = refused(srv, { token = long })
		assert.matches("too long %(%d+ bytes, at most 200%)", c.reason)
	end)

	it("stop the server when the key is bad or the audience missing", function()
		local ok, err = pcall(T.start_server, { services = { "login" },
			config = { settings = { login = { token_key = "not a key", audience = AUD } } } })
		assert.is_false(ok)
		assert.matches("settings.login.token_key: an Ed25519 public key of 32 bytes", err, 1, true)
		ok, err = pcall(T.start_server, { services = { "login" },
			config = { settings = { login = { token_key = b64url(backend.pk) } } } })
		assert.is_false(ok)
		assert.matches("settings.login.audience: the name of this server", err, 1, true)
	end)

	it("without token_key, a token is refused and names still log in", function()
		local srv = T.start_server{ services = { "handshake", "login" } }
		local c = refused(srv, { token = token(backend, { uid = "u", exp = os.time() + 60, aud = AUD }) })
		assert.are.same({ 4114, "login tokens are not enabled on this server" }, { c.code, c.reason })
		local a = T.connect(srv, "udp", hello{ name = "ann" })
		assert.are.equal("dev:ann", a:wait_op("login").uid)
	end)
end)
