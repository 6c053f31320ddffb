/*
 * script.c - the Lua runtime: services, callbacks, session objects and
 * the functions of "moongate.core". See script.h; the Lua side is documented in docs/LUA_API.md.
 *
 * Registry layout (refs held in struct script):
 *   sessions_ref  table sid -> session object (userdata), while the session
 *                 is open; the object outlives it as a dead one
 *   empty_ref     the shared empty table every new session object starts
 *                 with as its environment (fields go to a table of its own
 *                 on first write)
 *   svc_ref[i]    the table service i returned
 *   trace_ref     the traceback handler given to every lua_pcall
 * Timers are in core/lua/script_timer.c.
 */
#include "script.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sodium.h>

#include "log.h"
#include "script_int.h"

#ifndef MOONGATE_LUALIB
#define MOONGATE_LUALIB "lualib"
#endif

/* ---- helpers ------------------------------------------------------------ */

static double
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg)
		msg = lua_pushfstring(L, "(error object is a %s value)",
		                      luaL_typename(L, 1));
	luaL_traceback(L, L, msg, 1);
	return 1;
}


/* script_int.h: a callback under pcall, timed against the budget. */
int
script_pcall(script_t *sc, int nargs, int nres, const char *svc,
            const char *what, uint32_t sid)
{
	lua_State *L = sc->L;
	int fn = lua_gettop(L) - nargs;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->trace_ref);
	lua_insert(L, fn);
	double t0 = sc->budget_ms > 0 ? mono_ms() : 0;
	int rc = lua_pcall(L, nargs, nres, fn);
	sc->st.callbacks++;
	if (sc->budget_ms > 0) {
		double took = mono_ms() - t0;
		if (took > sc->budget_ms) {
			sc->st.slow++;
			if (sid)
				log_warn("service %s: %s took %.1f ms (budget %d ms), session %08x",
				         svc, what, took, sc->budget_ms, sid);
			else
				log_warn("service %s: %s took %.1f ms (budget %d ms)", svc, what,
				         took, sc->budget_ms);
		}
	}
	if (rc) {
		sc->st.errors++;
		if (sid)
			log_error("service %s: %s failed, session %08x: %s", svc, what, sid,
			          lua_tostring(L, -1));
		else
			log_error("service %s: %s failed: %s", svc, what, lua_tostring(L, -1));
		lua_pop(L, 2); /* the message and the handler */
		return -1;
	}
	lua_remove(L, fn); /* the handler */
	return 0;
}

/* Push service i's callback cb; 0, or -1 (nothing pushed) when it has none. */
static int
push_callback(script_t *sc, int i, const char *cb)
{
	lua_State *L = sc->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->svc_ref[i]);
	lua_getfield(L, -1, cb);
	lua_remove(L, -2);
	if (lua_isfunction(L, -1))
		return 0;
	lua_pop(L, 1);
	return -1;
}

/* ---- session objects ---------------------------------------------------- */

/* The object of s (made on first use), pushed. */
static struct lsession *
push_session(script_t *sc, session_t *s)
{
	lua_State *L = sc->L;
	uint32_t sid = session_id(s);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->sessions_ref);
	lua_rawgeti(L, -1, (int)sid);
	if (!lua_isnil(L, -1)) {
		lua_remove(L, -2);
		return lua_touserdata(L, -1);
	}
	lua_pop(L, 1);
	struct lsession *u = lua_newuserdata(L, sizeof *u);
	u->sid = sid;
	u->dead = 0;
	luaL_getmetatable(L, SESSION_MT);
	lua_setmetatable(L, -2);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->empty_ref);
	lua_setfenv(L, -2);
	lua_pushvalue(L, -1);
	lua_rawseti(L, -3, (int)sid);
	lua_remove(L, -2);
	sc->st.objects++;
	sc->st.sessions++;
	return u;
}

/* The session behind the object at idx, or NULL (pushes nil, "closed"). */
static session_t *
check_session(lua_State *L, int idx, struct lsession **up)
{
	script_t *sc = script_self(L);
	struct lsession *u = luaL_checkudata(L, idx, SESSION_MT);
	if (up)
		*up = u;
	session_t *s = u->dead ? NULL : gate_session(sc->g, u->sid);
	if (!s || session_state(s) != SESSION_OPEN) {
		lua_pushnil(L);
		lua_pushstring(L, "closed");
		return NULL;
	}
	return s;
}

static int
send_error(lua_State *L, int rc)
{
	lua_pushnil(L);
	switch (rc) {
	case SESSION_ETOOBIG: lua_pushstring(L, "too big"); break;
	case SESSION_EFULL: lua_pushstring(L, "backpressure"); break;
	case SESSION_ENOMEM: lua_pushstring(L, "out of memory"); break;
	case SESSION_EINVAL: lua_pushstring(L, "not on this session"); break;
	default: lua_pushstring(L, "closed"); break;
	}
	return 2;
}

/* session:send(data) / session:send_unreliable(data) -> true | nil, err */
static int
send_any(lua_State *L, int unreliable)
{
	script_t *sc = script_self(L);
	session_t *s = check_session(L, 1, NULL);
	size_t n;
	const char *d = luaL_checklstring(L, 2, &n);
	if (!s)
		return 2;
	int rc = unreliable ? session_send_unreliable(s, d, n, sc->now)
	                    : session_send(s, d, n, sc->now);
	if (!unreliable)
		gate_touch(sc->g, s, sc->now); /* new data: the session is due */
	if (rc)
		return send_error(L, rc);
	lua_pushboolean(L, 1);
	return 1;
}

static int
l_send(lua_State *L)
{
	return send_any(L, 0);
}

static int
l_send_unreliable(lua_State *L)
{
	return send_any(L, 1);
}

/* session:close([code,] [reason]) -> true | nil, "closed" */
static int
l_close(lua_State *L)
{
	script_t *sc = script_self(L);
	session_t *s = check_session(L, 1, NULL);
	int code = SESSION_CLOSE_APP;
	int ri = 2;
	if (lua_type(L, 2) == LUA_TNUMBER) {
		code = (int)luaL_checkinteger(L, 2);
		if (code < 0 || code > 65535)
			return luaL_argerror(L, 2, "close code must be 0..65535");
		ri = 3;
	}
	const char *reason = luaL_optstring(L, ri, "closed by server");
	if (!s)
		return 2;
	session_close(s, code, reason, 1, sc->now);
	gate_touch(sc->g, s, sc->now);
	lua_pushboolean(L, 1);
	return 1;
}

static int
l_id(lua_State *L)
{
	struct lsession *u = luaL_checkudata(L, 1, SESSION_MT);
	lua_pushnumber(L, u->sid);
	return 1;
}

static int
l_alive(lua_State *L)
{
	script_t *sc = script_self(L);
	struct lsession *u = luaL_checkudata(L, 1, SESSION_MT);
	session_t *s = u->dead ? NULL : gate_session(sc->g, u->sid);
	lua_pushboolean(L, s && session_state(s) == SESSION_OPEN);
	return 1;
}

static int
l_addr(lua_State *L)
{
	script_t *sc = script_self(L);
	session_t *s = check_session(L, 1, NULL);
	if (!s)
		return 2;
	char buf[80];
	const struct gate_path *p = gate_session_path(sc->g, s);
	if (!p) {
		lua_pushnil(L);
		lua_pushliteral(L, "offline");
		return 2;
	}
	lua_pushstring(L, gate_path_addr(p, buf, sizeof buf));
	return 1;
}

static int
l_transport(lua_State *L)
{
	script_t *sc = script_self(L);
	session_t *s = check_session(L, 1, NULL);
	if (!s)
		return 2;
	const struct gate_path *p = gate_session_path(sc->g, s);
	if (!p) {
		lua_pushnil(L);
		lua_pushliteral(L, "offline");
		return 2;
	}
	lua_pushstring(L, gate_path_transport(p));
	return 1;
}

/* session:offline() -> true while waiting for the client to resume */
static int
l_offline(lua_State *L)
{
	session_t *s = check_session(L, 1, NULL);
	if (!s)
		return 2;
	lua_pushboolean(L, session_offline(s));
	return 1;
}

/* session:rtt() -> srtt_ms, rttvar_ms (heartbeat; 0, 0 before the first) */
static int
l_rtt(lua_State *L)
{
	session_t *s = check_session(L, 1, NULL);
	if (!s)
		return 2;
	struct session_stats st;
	session_stats(s, &st);
	lua_pushnumber(L, st.srtt_ms);
	lua_pushnumber(L, st.rttvar_ms);
	return 2;
}

/* session:offset() -> the peer's clock minus the server's, in ms */
static int
l_offset(lua_State *L)
{
	session_t *s = check_session(L, 1, NULL);
	if (!s)
		return 2;
	struct session_stats st;
	session_stats(s, &st);
	lua_pushnumber(L, (double)st.offset_us / 1000.0);
	return 1;
}

static int
l_stats(lua_State *L)
{
	session_t *s = check_session(L, 1, NULL);
	if (!s)
		return 2;
	struct session_stats st;
	session_stats(s, &st);
	lua_createtable(L, 0, 16);
#define F(k, v) (lua_pushnumber(L, (double)(v)), lua_setfield(L, -2, k))
	F("srtt_ms", st.srtt_ms);
	F("rttvar_ms", st.rttvar_ms);
	F("offset_ms", (double)st.offset_us / 1000.0);
	F("kcp_srtt_ms", st.kcp_srtt_ms);
	F("waiting_bytes", st.waiting_bytes);
	F("in_packets", st.in_packets);
	F("out_packets", st.out_packets);
	F("in_bytes", st.in_bytes);
	F("out_bytes", st.out_bytes);
	F("msgs_in", st.msgs_in);
	F("msgs_out", st.msgs_out);
	F("dgrams_in", st.dgrams_in);
	F("dgrams_out", st.dgrams_out);
	F("dgrams_stale", st.dgrams_stale);
	F("path_changes", st.path_changes);
	F("path_challenges", st.path_challenges);
	F("offlines", st.offlines);
	F("resumes", st.resumes);
#undef F
	lua_pushboolean(L, st.encrypted);
	lua_setfield(L, -2, "encrypted");
	return 1;
}

/* Methods first, then the object's own fields. */
static int
l_index(lua_State *L)
{
	lua_pushvalue(L, 2);
	lua_rawget(L, lua_upvalueindex(2)); /* the methods */
	if (!lua_isnil(L, -1))
		return 1;
	lua_pop(L, 1);
	lua_getfenv(L, 1);
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

static int
l_newindex(lua_State *L)
{
	script_t *sc = script_self(L);
	luaL_checkudata(L, 1, SESSION_MT);
	lua_pushvalue(L, 2);
	lua_rawget(L, lua_upvalueindex(2));
	if (!lua_isnil(L, -1))
		return luaL_error(L, "session.%s is a method and cannot be replaced",
		                  lua_tostring(L, 2));
	lua_pop(L, 1);
	lua_getfenv(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->empty_ref);
	if (lua_rawequal(L, -1, -2)) { /* first field: a table of its own */
		lua_pop(L, 2);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfenv(L, 1);
	} else {
		lua_pop(L, 1);
	}
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	return 0;
}

static int
l_tostring(lua_State *L)
{
	struct lsession *u = luaL_checkudata(L, 1, SESSION_MT);
	char buf[40];
	snprintf(buf, sizeof buf, "session %08x%s", u->sid, u->dead ? " (closed)" : "");
	lua_pushstring(L, buf);
	return 1;
}

static int
l_session_gc(lua_State *L)
{
	script_t *sc = script_self(L);
	sc->st.objects--;
	return 0;
}

static const luaL_Reg session_methods[] = {
	{ "send", l_send },
	{ "send_unreliable", l_send_unreliable },
	{ "close", l_close },
	{ "id", l_id },
	{ "alive", l_alive },
	{ "offline", l_offline },
	{ "addr", l_addr },
	{ "transport", l_transport },
	{ "rtt", l_rtt },
	{ "offset", l_offset },
	{ "stats", l_stats },
	{ NULL, NULL },
};

/* ---- the module: require "moongate.core" ---------------------------------- */

static int
l_now(lua_State *L)
{
	lua_pushnumber(L, (double)script_self(L)->now / 1000.0);
	return 1;
}

static int
l_time(lua_State *L)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	lua_pushnumber(L, tv.tv_sec + tv.tv_usec / 1e6);
	return 1;
}

/* moongate.session(id) -> the open session's object or nil */
static int
l_session(lua_State *L)
{
	script_t *sc = script_self(L);
	lua_Number id = luaL_checknumber(L, 1);
	if (id < 1 || id > 4294967295.0) {
		lua_pushnil(L);
		return 1;
	}
	session_t *s = gate_session(sc->g, (uint32_t)id);
	if (!s || session_state(s) != SESSION_OPEN) {
		lua_pushnil(L);
		return 1;
	}
	push_session(sc, s);
	return 1;
}

/* moongate.broadcast(list, data [, unreliable]) -> sent: one payload to
 * many sessions, the loop in C; closed ones in the list are skipped. */
static int
l_broadcast(lua_State *L)
{
	script_t *sc = script_self(L);
	luaL_checktype(L, 1, LUA_TTABLE);
	size_t n;
	const char *d = luaL_checklstring(L, 2, &n);
	int unreliable = lua_toboolean(L, 3);
	int count = (int)lua_objlen(L, 1), sent = 0;
	for (int i = 1; i <= count; i++) {
		lua_rawgeti(L, 1, i);
		struct lsession *u = luaL_testudata(L, -1, SESSION_MT);
		lua_pop(L, 1);
		if (!u)
			return luaL_argerror(L, 1, "a list of sessions expected");
		session_t *s = u->dead ? NULL : gate_session(sc->g, u->sid);
		if (!s || session_state(s) != SESSION_OPEN)
			continue;
		int rc = unreliable ? session_send_unreliable(s, d, n, sc->now)
		                    : session_send(s, d, n, sc->now);
		if (!unreliable)
			gate_touch(sc->g, s, sc->now);
		if (rc == 0)
			sent++;
	}
	lua_pushinteger(L, sent);
	return 1;
}

/* moongate.log(level, message) */
static int
l_log(lua_State *L)
{
	const char *lv = luaL_checkstring(L, 1);
	const char *msg = luaL_checkstring(L, 2);
	int level = log_parse_level(lv);
	if (level < 0)
		return luaL_argerror(L, 1, "error, warn, info or debug");
	if (level <= log_level)
		log_printf(level, "%s", msg);
	return 0;
}

static int
l_stats_all(lua_State *L)
{
	script_t *sc = script_self(L);
	struct script_stats st;
	script_stats(sc, &st);
	struct gate_stats gs;
	gate_stats(sc->g, &gs);
	lua_createtable(L, 0, 10);
#define F(k, v) (lua_pushnumber(L, (double)(v)), lua_setfield(L, -2, k))
	F("sessions", gs.sessions);
	F("lua_sessions", st.sessions);
	F("lua_objects", st.objects);
	F("timers", st.timers);
	F("callbacks", st.callbacks);
	F("errors", st.errors);
	F("slow", st.slow);
	F("memory_kb", st.memory_kb);
#undef F
	return 1;
}

/* moongate.sessions() -> { session, ... }: every open session */
static int
l_sessions(lua_State *L)
{
	script_t *sc = script_self(L);
	lua_newtable(L);
	int n = 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->sessions_ref);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		struct lsession *u = lua_touserdata(L, -1);
		session_t *s = u && !u->dead ? gate_session(sc->g, u->sid) : NULL;
		if (s && session_state(s) == SESSION_OPEN)
			lua_rawseti(L, -4, ++n);
		else
			lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 1;
}

/* moongate.settings(name) -> table: config.lua's settings[name], or {} */
static int
l_settings(lua_State *L)
{
	script_t *sc = script_self(L);
	luaL_checkstring(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->settings_ref);
	lua_pushvalue(L, 1);
	lua_gettable(L, -2);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
	} else if (!lua_istable(L, -1)) {
		return luaL_error(L, "settings.%s: expected a table, got %s",
		                  lua_tostring(L, 1), luaL_typename(L, -1));
	}
	return 1;
}

/* The HMAC key for one purpose: BLAKE2b keyed with the server secret. */
static void
purpose_key(script_t *sc, const char *purpose, size_t plen,
            uint8_t key[crypto_auth_hmacsha256_KEYBYTES])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, sc->secret, sizeof sc->secret,
	                        crypto_auth_hmacsha256_KEYBYTES);
	crypto_generichash_update(&st, (const uint8_t *)"moongate.sign:", 14);
	crypto_generichash_update(&st, (const uint8_t *)purpose, plen);
	crypto_generichash_final(&st, key, crypto_auth_hmacsha256_KEYBYTES);
}

/* moongate.sign(data [, purpose]) -> 32-byte HMAC-SHA-256 tag, keyed by the
 * server secret (one key per purpose; Lua never sees a key). */
static int
l_sign(lua_State *L)
{
	script_t *sc = script_self(L);
	size_t n, plen;
	const char *d = luaL_checklstring(L, 1, &n);
	const char *purpose = luaL_optlstring(L, 2, "", &plen);
	uint8_t key[crypto_auth_hmacsha256_KEYBYTES];
	uint8_t tag[crypto_auth_hmacsha256_BYTES];
	purpose_key(sc, purpose, plen, key);
	crypto_auth_hmacsha256(tag, (const uint8_t *)d, n, key);
	sodium_memzero(key, sizeof key);
	lua_pushlstring(L, (const char *)tag, sizeof tag);
	return 1;
}

/* moongate.verify(data, tag [, purpose]) -> boolean, in constant time */
static int
l_verify(lua_State *L)
{
	script_t *sc = script_self(L);
	size_t n, tn, plen;
	const char *d = luaL_checklstring(L, 1, &n);
	const char *tag = luaL_checklstring(L, 2, &tn);
	const char *purpose = luaL_optlstring(L, 3, "", &plen);
	if (tn != crypto_auth_hmacsha256_BYTES) {
		lua_pushboolean(L, 0);
		return 1;
	}
	uint8_t key[crypto_auth_hmacsha256_KEYBYTES];
	purpose_key(sc, purpose, plen, key);
	int ok = crypto_auth_hmacsha256_verify((const uint8_t *)tag,
	                                       (const uint8_t *)d, n, key) == 0;
	sodium_memzero(key, sizeof key);
	lua_pushboolean(L, ok);
	return 1;
}

/* moongate.random(n) -> n random bytes (1..1024) */
static int
l_random(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	luaL_argcheck(L, n >= 1 && n <= 1024, 1, "1..1024 bytes");
	uint8_t buf[1024];
	randombytes_buf(buf, (size_t)n);
	lua_pushlstring(L, (const char *)buf, (size_t)n);
	return 1;
}

static const luaL_Reg module_funcs[] = {
	{ "sessions", l_sessions },
	{ "settings", l_settings },
	{ "sign", l_sign },
	{ "verify", l_verify },
	{ "random", l_random },
	{ "after", script_timer_after },
	{ "every", script_timer_every },
	{ "now", l_now },
	{ "time", l_time },
	{ "session", l_session },
	{ "broadcast", l_broadcast },
	{ "log", l_log },
	{ "stats", l_stats_all },
	{ "relay", script_sync_relay },
	{ "frames", script_sync_frames },
	{ NULL, NULL },
};

static int
luaopen_moongate_core(lua_State *L)
{
	lua_newtable(L);
	lua_pushvalue(L, lua_upvalueindex(1));
	luaL_setfuncs(L, module_funcs, 1);
	return 1;
}

/* ---- events ------------------------------------------------------------- */

void
script_accept(script_t *sc, const struct gate_path *from, const uint8_t *hello,
              size_t len, struct gate_verdict *v, uint64_t now)
{
	lua_State *L = sc->L;
	sc->now = now;
	int pushed = 0;
	for (int i = 0; i < sc->nsvc && !v->code; i++) {
		if (push_callback(sc, i, "handshake"))
			continue;
		if (!pushed) { /* the arguments, made once */
			char buf[80];
			lua_pushlstring(L, (const char *)hello, len);
			lua_createtable(L, 0, 2);
			lua_pushstring(L, gate_path_addr(from, buf, sizeof buf));
			lua_setfield(L, -2, "addr");
			lua_pushstring(L, gate_path_transport(from));
			lua_setfield(L, -2, "transport");
			lua_insert(L, -3);
			lua_insert(L, -3);
			pushed = 1;
		}
		lua_pushvalue(L, -3);
		lua_pushvalue(L, -3);
		if (script_pcall(sc, 2, 3, sc->names[i], "handshake", 0)) {
			v->code = SESSION_CLOSE_REFUSED; /* fail closed */
			strcpy(v->reason, "server error");
			continue;
		}
		if (lua_type(L, -3) == LUA_TBOOLEAN && !lua_toboolean(L, -3)) {
			const char *r = lua_tostring(L, -2);
			v->code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1)
			                              : SESSION_CLOSE_REFUSED;
			if (v->code <= 0 || v->code > 65535)
				v->code = SESSION_CLOSE_REFUSED;
			snprintf(v->reason, sizeof v->reason, "%s", r ? r : "refused");
		}
		lua_pop(L, 3);
	}
	if (pushed)
		lua_pop(L, 2);
}

static void
on_open(script_t *sc, session_t *s)
{
	lua_State *L = sc->L;
	size_t hlen;
	const uint8_t *hello = gate_session_hello(sc->g, s, &hlen);
	push_session(sc, s);
	lua_pushlstring(L, (const char *)hello, hlen);
	for (int i = 0; i < sc->nsvc; i++) {
		if (session_state(s) != SESSION_OPEN)
			break; /* an earlier service closed it */
		if (push_callback(sc, i, "connect"))
			continue;
		lua_pushvalue(L, -3);
		lua_pushvalue(L, -3);
		if (script_pcall(sc, 2, 3, sc->names[i], "connect", session_id(s)))
			continue;
		if (lua_type(L, -3) == LUA_TBOOLEAN && !lua_toboolean(L, -3)) {
			const char *r = lua_tostring(L, -2);
			int code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1)
			                               : SESSION_CLOSE_REFUSED;
			session_close(s, code, r ? r : "refused", 1, sc->now);
			gate_touch(sc->g, s, sc->now);
		}
		lua_pop(L, 3);
	}
	lua_pop(L, 2);
}

static void
on_message(script_t *sc, session_t *s, const struct session_event *ev)
{
	lua_State *L = sc->L;
	int reliable = ev->type == SESSION_EV_MESSAGE;
	push_session(sc, s);
	lua_pushlstring(L, (const char *)ev->data, ev->len);
	for (int i = 0; i < sc->nsvc; i++) {
		if (push_callback(sc, i, "message"))
			continue;
		lua_pushvalue(L, -3);
		lua_pushvalue(L, -3);
		lua_pushboolean(L, reliable);
		if (reliable)
			lua_pushnil(L);
		else
			lua_pushnumber(L, ev->seq);
		if (script_pcall(sc, 4, 1, sc->names[i], "message", session_id(s)))
			continue;
		int taken = lua_toboolean(L, -1);
		lua_pop(L, 1);
		if (taken)
			break; /* handled: later services do not see it */
	}
	lua_pop(L, 2);
}

/* offline(session), resume(session), path(session, transport, addr) */
static void
on_path(script_t *sc, session_t *s, const struct session_event *ev)
{
	lua_State *L = sc->L;
	const char *name = ev->type == SESSION_EV_OFFLINE ? "offline"
	                   : ev->type == SESSION_EV_RESUME ? "resume" : "path";
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->sessions_ref);
	lua_rawgeti(L, -1, (int)session_id(s));
	lua_remove(L, -2);
	if (!lua_touserdata(L, -1)) { /* never opened: the services never saw it */
		lua_pop(L, 1);
		return;
	}
	const struct gate_path *p = gate_session_path(sc->g, s);
	char buf[80];
	for (int i = 0; i < sc->nsvc; i++) {
		if (session_state(s) != SESSION_OPEN)
			break; /* an earlier service closed it */
		if (push_callback(sc, i, name))
			continue;
		lua_pushvalue(L, -2);
		int n = 1;
		if (ev->type == SESSION_EV_PATH && p) {
			lua_pushstring(L, gate_path_transport(p));
			lua_pushstring(L, gate_path_addr(p, buf, sizeof buf));
			n = 3;
		}
		script_pcall(sc, n, 0, sc->names[i], name, session_id(s));
	}
	lua_pop(L, 1);
	gate_touch(sc->g, s, sc->now);
}

static void
on_close(script_t *sc, session_t *s, const struct session_event *ev)
{
	lua_State *L = sc->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->sessions_ref);
	lua_rawgeti(L, -1, (int)session_id(s));
	lua_remove(L, -2);
	struct lsession *u = lua_touserdata(L, -1);
	if (!u) { /* never opened: the services never saw it */
		lua_pop(L, 1);
		return;
	}
	for (int i = 0; i < sc->nsvc; i++) {
		if (push_callback(sc, i, "close"))
			continue;
		lua_pushvalue(L, -2);
		lua_pushinteger(L, ev->code);
		lua_pushstring(L, ev->reason ? ev->reason : "");
		lua_pushboolean(L, ev->remote);
		script_pcall(sc, 4, 0, sc->names[i], "close", session_id(s));
	}
	u->dead = 1;
	lua_pop(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->sessions_ref);
	lua_pushnil(L);
	lua_rawseti(L, -2, (int)session_id(s));
	lua_pop(L, 1);
	sc->st.sessions--;
}

void
script_event(script_t *sc, session_t *s, const struct session_event *ev,
             uint64_t now)
{
	sc->now = now;
	int top = lua_gettop(sc->L);
	switch (ev->type) {
	case SESSION_EV_OPEN:
		on_open(sc, s);
		break;
	case SESSION_EV_MESSAGE:
	case SESSION_EV_DATAGRAM:
		on_message(sc, s, ev);
		break;
	case SESSION_EV_CLOSE:
		on_close(sc, s, ev);
		break;
	case SESSION_EV_OFFLINE:
	case SESSION_EV_RESUME:
	case SESSION_EV_PATH:
		on_path(sc, s, ev);
		break;
	}
	lua_settop(sc->L, top);
}

/* ---- setup -------------------------------------------------------------- */

static void
add_path(lua_State *L, const char *field, const char *dir, const char *pat1,
         const char *pat2)
{
	lua_getglobal(L, "package");
	lua_getfield(L, -1, field);
	lua_pushfstring(L, "%s/%s;%s/%s;%s", dir, pat1, dir, pat2,
	                lua_tostring(L, -1));
	lua_setfield(L, -3, field);
	lua_pop(L, 2);
}

/* Levenshtein distance of two short names (longer ones: "far"). */
static int
edit_distance(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	if (na > 31 || nb > 31)
		return 99;
	int row[32];
	for (size_t j = 0; j <= nb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= na; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= nb; j++) {
			int up = row[j];
			int best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

static int
load_service(script_t *sc, int i, char *err, size_t errlen)
{
	lua_State *L = sc->L;
	lua_getglobal(L, "require");
	lua_pushstring(L, sc->names[i]);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->trace_ref);
	lua_insert(L, -3);
	if (lua_pcall(L, 1, 1, -3)) {
		snprintf(err, errlen, "service %s: %s", sc->names[i], lua_tostring(L, -1));
		lua_pop(L, 2);
		return -1;
	}
	if (!lua_istable(L, -1)) {
		snprintf(err, errlen, "service %s: the module must return a table of "
		         "callbacks, it returned %s", sc->names[i], luaL_typename(L, -1));
		lua_pop(L, 2);
		return -1;
	}
	static const char *const known[] = { "handshake", "connect", "message",
	                                     "close", "offline", "resume", "path",
	                                     "reload", NULL };
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1)) {
			/* a service also exports its own functions: warn only for a
			 * near miss of a callback's name (a typo like "mesage") */
			const char *k = lua_tostring(L, -2);
			int exact = 0, near = 0;
			for (int j = 0; known[j]; j++) {
				int d = edit_distance(k, known[j]);
				exact |= d == 0;
				/* one letter off, two for the longer names ("clsoe" is
				 * not flagged, but "match" is not taken for "path") */
				near |= d > 0 && d <= (strlen(known[j]) >= 6 ? 2 : 1);
			}
			if (near && !exact)
				log_warn("service %s: '%s' is not a callback moongate calls "
				         "(handshake, connect, message, close, offline, resume, "
				         "path, reload): a typo?",
				         sc->names[i], k);
		}
		lua_pop(L, 1);
	}
	sc->svc_ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 1);
	return 0;
}

/* Call the function on top with nargs below it under the traceback
 * handler; 0, or -1 with the message in err (nothing left). */
static int
pcall_err(script_t *sc, int nargs, int nres, char *err, size_t errlen)
{
	lua_State *L = sc->L;
	int fn = lua_gettop(L) - nargs;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->trace_ref);
	lua_insert(L, fn);
	if (lua_pcall(L, nargs, nres, fn)) {
		snprintf(err, errlen, "%s", lua_tostring(L, -1));
		lua_pop(L, 2);
		return -1;
	}
	lua_remove(L, fn);
	return 0;
}

/* config.lua's `settings` table, read again in this state (the config
 * loader's state is gone): moongate.settings(name). */
static int
load_settings(script_t *sc, const struct config *c, char *err, size_t errlen)
{
	lua_State *L = sc->L;
	if (c->file[0]) {
		if (luaL_loadfile(L, c->file)) {
			snprintf(err, errlen, "%s", lua_tostring(L, -1));
			lua_pop(L, 1);
			return -1;
		}
		if (pcall_err(sc, 0, 1, err, errlen))
			return -1;
		if (lua_istable(L, -1)) {
			lua_getfield(L, -1, "settings");
			lua_remove(L, -2);
		}
		if (!lua_istable(L, -1)) {
			lua_pop(L, 1);
			lua_newtable(L);
		}
	} else {
		lua_newtable(L);
	}
	sc->settings_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

/* require("moongate.loader").setup(service_path): modules of the service
 * directories are loaded through it, tracked for hot reload. */
static int
setup_loader(script_t *sc, const struct config *c, char *err, size_t errlen)
{
	lua_State *L = sc->L;
	lua_getglobal(L, "require");
	lua_pushstring(L, "moongate.loader");
	if (pcall_err(sc, 1, 1, err, errlen))
		return -1;
	lua_getfield(L, -1, "setup");
	lua_remove(L, -2);
	lua_createtable(L, c->npaths, 0);
	for (int i = 0; i < c->npaths; i++) {
		lua_pushstring(L, c->service_path[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return pcall_err(sc, 1, 0, err, errlen);
}

/* require(mod)[fn](arg) -> ok, text: the admin console and reload. */
static int
call_admin(script_t *sc, const char *line, char *out, size_t outlen)
{
	lua_State *L = sc->L;
	int top = lua_gettop(L);
	lua_getglobal(L, "require");
	lua_pushstring(L, "moongate.admin");
	if (pcall_err(sc, 1, 1, out, outlen))
		return -1;
	lua_getfield(L, -1, "run");
	lua_pushstring(L, line);
	if (pcall_err(sc, 1, 2, out, outlen)) {
		lua_settop(L, top);
		return -1;
	}
	int ok = lua_toboolean(L, -2);
	snprintf(out, outlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
	lua_settop(L, top);
	return ok ? 0 : -1;
}

int
script_command(script_t *sc, const char *line, char *out, size_t outlen,
               uint64_t now)
{
	sc->now = now;
	return call_admin(sc, line, out, outlen);
}

int
script_reload(script_t *sc, char *out, size_t outlen, uint64_t now)
{
	sc->now = now;
	return call_admin(sc, "reload", out, outlen);
}

script_t *
script_create(const struct config *c, gate_t *g, uint64_t now, char *err,
              size_t errlen)
{
	script_t *sc = calloc(1, sizeof *sc);
	if (!sc || !(sc->L = luaL_newstate())) {
		free(sc);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	lua_State *L = sc->L;
	sc->g = g;
	sc->now = now;
	sc->budget_ms = c->lua_budget_ms;
	sc->timers_max = c->lua_timers_max > 0 ? (uint32_t)c->lua_timers_max : 1;
	sc->dgram_max = session_dgram_max(&c->gate.session);
	for (int i = 0; i < c->nlisten; i++) /* FEC takes room from a packet */
		if (c->gate.fec[i].data) {
			sc->dgram_max -= SESSION_FEC_OVERHEAD;
			break;
		}
	luaL_openlibs(L);

	lua_pushcfunction(L, traceback);
	sc->trace_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);
	sc->sessions_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);
	sc->empty_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	/* the session metatable: methods and fields through __index */
	luaL_newmetatable(L, SESSION_MT);
	lua_newtable(L);
	lua_pushlightuserdata(L, sc);
	luaL_setfuncs(L, session_methods, 1);
	lua_pushlightuserdata(L, sc);
	lua_pushvalue(L, -2);
	lua_pushcclosure(L, l_index, 2);
	lua_setfield(L, -3, "__index");
	lua_pushlightuserdata(L, sc);
	lua_pushvalue(L, -2);
	lua_pushcclosure(L, l_newindex, 2);
	lua_setfield(L, -3, "__newindex");
	lua_pop(L, 1);
	lua_pushlightuserdata(L, sc);
	lua_pushcclosure(L, l_session_gc, 1);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, l_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushstring(L, "session");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);

	script_timer_open(sc);

	/* require "moongate.core" (lualib/moongate/init.lua wraps it) */
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "preload");
	lua_pushlightuserdata(L, sc);
	lua_pushcclosure(L, luaopen_moongate_core, 1);
	lua_setfield(L, -2, "moongate.core");
	lua_pop(L, 2);

	const char *lualib = getenv("MOONGATE_LUALIB");
	add_path(L, "path", lualib && *lualib ? lualib : MOONGATE_LUALIB, "?.lua",
	         "?/init.lua");
	memcpy(sc->secret, c->gate.secret, sizeof sc->secret);
	static const uint8_t zero[sizeof sc->secret];
	if (!memcmp(sc->secret, zero, sizeof zero)) /* no secrets file */
		randombytes_buf(sc->secret, sizeof sc->secret);
	if (load_settings(sc, c, err, errlen) || setup_loader(sc, c, err, errlen)) {
		script_release(sc);
		return NULL;
	}

	for (int i = 0; i < c->nservices; i++) {
		snprintf(sc->names[i], sizeof sc->names[i], "%s", c->services[i]);
		sc->nsvc = i + 1;
		if (load_service(sc, i, err, errlen)) {
			sc->nsvc = i;
			script_release(sc);
			return NULL;
		}
	}
	return sc;
}

void
script_release(script_t *sc)
{
	if (!sc)
		return;
	script_timer_release(sc);
	lua_close(sc->L);
	sodium_memzero(sc->secret, sizeof sc->secret);
	free(sc);
}

void
script_stats(const script_t *sc, struct script_stats *st)
{
	*st = sc->st;
	st->memory_kb = (uint64_t)lua_gc(sc->L, LUA_GCCOUNT, 0);
}
