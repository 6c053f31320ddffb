/*
 * script_crypto.c - public-key checks for Lua: moongate.verify_ed25519 and
 * base64url (RFC 4648 section 5, no padding) both ways.
 *
 * What the login service needs to check a token signed by a game's web
 * backend without calling it (docs/SERVICES.md, "Login tokens"): the
 * backend holds the Ed25519 secret key, the server only the public key.
 * Both are thin wrappers over libsodium; nothing here holds a secret.
 */
#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>

#include "script_int.h"

/* moongate.verify_ed25519(pubkey, msg, sig) -> boolean
 * pubkey: 32 raw bytes (a wrong length is a programming error: raises);
 * sig: 64 raw bytes (anything else is a bad signature: false). */
int
script_crypto_verify_ed25519(lua_State *L)
{
	size_t pn, mn, sn;
	const char *pk = luaL_checklstring(L, 1, &pn);
	const char *m = luaL_checklstring(L, 2, &mn);
	const char *sig = luaL_checklstring(L, 3, &sn);
	luaL_argcheck(L, pn == crypto_sign_PUBLICKEYBYTES, 1,
	              "an Ed25519 public key of 32 bytes expected");
	int ok = sn == crypto_sign_BYTES &&
	         crypto_sign_verify_detached((const uint8_t *)sig,
	                                     (const uint8_t *)m, mn,
	                                     (const uint8_t *)pk) == 0;
	lua_pushboolean(L, ok);
	return 1;
}

/* moongate.base64url_decode(s) -> bytes, or nil and the reason.
 * Strict: URL-safe alphabet, no padding, no whitespace, nothing after. */
int
script_crypto_b64url_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	size_t cap = n / 4 * 3 + 3, len = 0;
	/* a userdata, not malloc: collected even if a push below raises */
	uint8_t *buf = lua_newuserdata(L, cap);
	const char *end = NULL;
	int rc = sodium_base642bin(buf, cap, s, n, NULL, &len, &end,
	                           sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (rc != 0 || end != s + n) {
		lua_pushnil(L);
		lua_pushliteral(L, "not base64url (URL-safe alphabet, no padding)");
		return 2;
	}
	lua_pushlstring(L, (const char *)buf, len);
	return 1;
}

/* moongate.base64url_encode(bytes) -> string (URL-safe, no padding) */
int
script_crypto_b64url_encode(lua_State *L)
{
	size_t n;
	const char *d = luaL_checklstring(L, 1, &n);
	size_t cap = sodium_base64_encoded_len(n,
	                 sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = lua_newuserdata(L, cap);
	sodium_bin2base64(out, cap, (const uint8_t *)d, n,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	lua_pushstring(L, out);
	return 1;
}
