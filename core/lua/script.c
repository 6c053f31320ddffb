/*
 * script.c - the Lua runtime: the state and its setup, the callback
 * pcall, the functions of "moongate.core", the admin console and reload,
 * and the runtime's timer set. See script.h; the Lua side is documented in
 * docs/LUA_API.md. The other files of the runtime are listed in
 * script_int.h.
 *
 * Registry (refs held in struct script; the sessions' in
 * script_session.c):
 *   svc_ref[i]    the table service i returned (script_service.c)
 *   cb_key[k]     the name of callback k, as a Lua string
 *   trace_ref     the traceback handler given to every lua_pcall
 *   settings_ref  config.lua's `settings`
 */
#include "script.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sodium.h>

#include "log.h"
#include "script_int.h"

#ifndef MOONGATE_LUALIB
#define MOONGATE_LUALIB "lualib"
#endif
/* lualib of an installed binary, relative to the executable's directory
 * (BINDIR to DATADIR/lua/5.1: CMakeLists.txt sets it, packaging/install.cmake
 * installs lualib there) */
#ifndef MOONGATE_LUALIB_FROM_BIN
#define MOONGATE_LUALIB_FROM_BIN "../share/lua/5.1"
#endif

/* ---- helpers ------------------------------------------------------------ */

double
script_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Where lualib is: $MOONGATE_LUALIB; else beside the executable, when
 * EXE_DIR/MOONGATE_LUALIB_FROM_BIN/moongate/init.lua exists (an installed
 * server: `make install`, the .deb); else MOONGATE_LUALIB, the source
 * tree's lualib (a server run from the build tree). buf: PATH_MAX bytes. */
static const char *
lualib_dir(char *buf)
{
	const char *env = getenv("MOONGATE_LUALIB");
	if (env && *env)
		return env;
	char exe[PATH_MAX], dir[PATH_MAX + 64], init[PATH_MAX + 32];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash = len > 0 ? (exe[len] = 0, strrchr(exe, '/')) : NULL;
	if (slash) {
		*slash = 0;
		snprintf(dir, sizeof dir, "%s/%s", exe, MOONGATE_LUALIB_FROM_BIN);
		if (realpath(dir, buf)) {
			snprintf(init, sizeof init, "%s/moongate/init.lua", buf);
			if (access(init, R_OK) == 0)
				return buf;
		}
	}
	return MOONGATE_LUALIB;
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

/* A key of the log's rate limit (log.h) for lines of one kind about one
 * service and callback: a flood of one handler's errors leaves the other
 * handlers' lines alone. FNV-1a over the texts, then the kind. */
static uintptr_t
site_key(const char *svc, const char *what, const void *kind)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *p = svc; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	h = (h ^ '/') * 0x100000001b3ull;
	for (const char *p = what; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	return (uintptr_t)(h ^ (uintptr_t)kind) | 1; /* never 0 */
}

/* script_int.h */
void
script_log_slow(script_t *sc, const char *svc, const char *what, uint32_t sid,
                double took)
{
	struct log_ctx lc = { .service = svc, .session = sid, .event = "slow" };
	sc->st.slow++;
	uintptr_t site = site_key(svc, what, "slow");
	if (sid)
		log_site_event(LOG_WARN, site, &lc, "service %s: %s took %.1f ms (budget %d ms), session %08x",
		               svc, what, took, sc->budget_ms, sid);
	else
		log_site_event(LOG_WARN, site, &lc, "service %s: %s took %.1f ms (budget %d ms)",
		               svc, what, took, sc->budget_ms);
}

/* script_int.h */
void
script_log_error(script_t *sc, const char *svc, const char *what, uint32_t sid,
                 const char *msg)
{
	struct log_ctx lc = { .service = svc, .session = sid, .event = "error" };
	sc->st.errors++;
	/* rate limited: a handler failing on every message must not write a
	 * traceback per message */
	uintptr_t site = site_key(svc, what, "error");
	if (sid)
		log_site_event(LOG_ERROR, site, &lc, "service %s: %s failed, session %08x: %s",
		               svc, what, sid, msg);
	else
		log_site_event(LOG_ERROR, site, &lc, "service %s: %s failed: %s",
		               svc, what, msg);
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
	const char *prev_svc = sc->cur_svc;
	uint32_t prev_sid = sc->cur_sid;
	lua_State *prev_running = sc->running;
	sc->cur_svc = svc;
	sc->cur_sid = sid;
	sc->running = NULL; /* nothing here may wait */
	int timed = sc->budget_ms > 0 || sc->timing;
	double t0 = timed ? script_mono_ms() : 0;
	int rc = lua_pcall(L, nargs, nres, fn);
	sc->cur_svc = prev_svc;
	sc->cur_sid = prev_sid;
	sc->running = prev_running;
	sc->st.callbacks++;
	if (timed) {
		double took = script_mono_ms() - t0;
		if (sc->timing)
			script_time_cb(sc, svc, what, took);
		if (sc->budget_ms > 0 && took > sc->budget_ms)
			script_log_slow(sc, svc, what, sid, took);
	}
	if (rc) {
		script_log_error(sc, svc, what, sid, lua_tostring(L, -1));
		lua_pop(L, 2); /* the message and the handler */
		return -1;
	}
	lua_remove(L, fn); /* the handler */
	return 0;
}

/* ---- the module: require "moongate.core" ---------------------------------- */

static const char *
sc_redis_url(script_t *sc)
{
	return sc->redis_url;
}

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

/* The text of keys[name] (a string or a number), or NULL. */
static const char *
key_text(lua_State *L, int keys, const char *name)
{
	lua_getfield(L, keys, name);
	int t = lua_type(L, -1);
	/* left on the stack until l_log returns: the string stays alive */
	return t == LUA_TSTRING || t == LUA_TNUMBER ? lua_tostring(L, -1) : NULL;
}

/* The log's rate-limit key of a moongate.log call: the calling line and
 * its caller's (moongate.warn and the others call log from one line of
 * init.lua: the line that matters is the one above). */
static uintptr_t
lua_site(lua_State *L)
{
	uint64_t h = 0x9e3779b97f4a7c15ull;
	lua_Debug ar;
	for (int level = 1; level <= 2; level++) {
		if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "Sl", &ar))
			break;
		/* the source text is interned: its address names the chunk */
		h = (h ^ (uintptr_t)ar.source) * 0x100000001b3ull;
		h = (h ^ (uint64_t)(ar.currentline + 1)) * 0x100000001b3ull;
	}
	return (uintptr_t)h | 1;
}

/* moongate.log(level, message [, keys]): keys = { event=, session=, room=,
 * peer= } become JSON fields; the service and the session of the callback
 * running now are filled in unless keys says otherwise. */
static int
l_log(lua_State *L)
{
	script_t *sc = script_self(L);
	const char *lv = luaL_checkstring(L, 1);
	const char *msg = luaL_checkstring(L, 2);
	int level = log_parse_level(lv);
	if (level < 0)
		return luaL_argerror(L, 1, "error, warn, info or debug");
	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TTABLE);
	if (level > log_level)
		return 0;
	struct log_ctx lc = { .service = sc->cur_svc, .session = sc->cur_sid };
	if (lua_istable(L, 3)) {
		lc.event = key_text(L, 3, "event");
		lc.room = key_text(L, 3, "room");
		lc.peer = key_text(L, 3, "peer");
		const char *svc = key_text(L, 3, "service");
		if (svc)
			lc.service = svc;
		lua_getfield(L, 3, "session");
		if (lua_isnumber(L, -1))
			lc.session = (uint32_t)lua_tonumber(L, -1);
	}
	log_site_event(level, lua_site(L), &lc, "%s", msg);
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

/* moongate.server_stats() -> { gate = {...}, net = {...}, lua = {...},
 * log = {...} }: every counter of the server (script.h, script_counter). */
static int
l_server_stats(lua_State *L)
{
	script_t *sc = script_self(L);
	struct script_counter c[SCRIPT_COUNTERS_MAX];
	size_t n = sc->counters ? sc->counters(c, SCRIPT_COUNTERS_MAX,
	                                       sc->counters_user) : 0;
	lua_newtable(L);
	for (size_t i = 0; i < n && i < SCRIPT_COUNTERS_MAX; i++) {
		lua_getfield(L, -1, c[i].group);
		if (!lua_istable(L, -1)) {
			lua_pop(L, 1);
			lua_newtable(L);
			lua_pushvalue(L, -1);
			lua_setfield(L, -3, c[i].group);
		}
		lua_pushnumber(L, (double)c[i].value);
		lua_setfield(L, -2, c[i].name);
		lua_pop(L, 1);
	}
	return 1;
}

void
script_set_counters(script_t *sc, script_counters_fn fn, void *user)
{
	sc->counters = fn;
	sc->counters_user = user;
}

void
script_set_status(script_t *sc, char *(*fn)(void *user, size_t *len), void *user)
{
	sc->status = fn;
	sc->status_user = user;
}

/* moongate.status_json() -> the status page's JSON text, or nil */
static int
l_status_json(lua_State *L)
{
	script_t *sc = script_self(L);
	size_t n = 0;
	char *s = sc->status ? sc->status(sc->status_user, &n) : NULL;
	if (!s)
		return 0;
	lua_pushlstring(L, s, n);
	free(s);
	return 1;
}

void
script_set_loop(script_t *sc, struct ev_loop *loop, net_t *net)
{
	sc->loop = loop;
	sc->net = net;
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

/* ---- an upgrade's drain deadline ------------------------------------------ */

#define DRAIN_HOOKS "moongate.drain_hooks" /* registry: name -> function */

/* moongate.on_drain(name, fn | nil): fn(worker) runs, as a callback that
 * may wait, when this worker (an upgrade's old one) reaches its drain
 * deadline; worker is the slot of the new worker that takes its place.
 * One function per name (a reloaded module replaces its own). */
static int
l_clock(lua_State *L)
{
	lua_pushnumber(L, script_mono_ms() / 1000.0);
	return 1;
}

static int
l_on_drain(lua_State *L)
{
	luaL_checkstring(L, 1);
	if (!lua_isnil(L, 2))
		luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_getfield(L, LUA_REGISTRYINDEX, DRAIN_HOOKS);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, DRAIN_HOOKS);
	}
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_settable(L, -3);
	return 0;
}

int
script_drain(script_t *sc, int worker)
{
	lua_State *L = sc->L;
	int n = 0;
	lua_getfield(L, LUA_REGISTRYINDEX, DRAIN_HOOKS);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) { /* key, fn */
		lua_pushinteger(L, worker);
		struct script_task *t;
		/* (a hook that waits goes on by itself; one that fails is logged) */
		script_task_run(sc, 1, 0, "drain", lua_tostring(L, -3), 0, &t);
		n++;
	}
	lua_pop(L, 1);
	return n;
}

static const luaL_Reg module_funcs[] = {
	{ "on_drain", l_on_drain },
	{ "clock", l_clock },
	{ "status_json", l_status_json },
	{ "sessions", script_session_list },
	{ "settings", l_settings },
	{ "sign", l_sign },
	{ "verify", l_verify },
	{ "verify_ed25519", script_crypto_verify_ed25519 },
	{ "base64url_decode", script_crypto_b64url_decode },
	{ "base64url_encode", script_crypto_b64url_encode },
	{ "random", l_random },
	{ "after", script_timer_after },
	{ "sleep", script_task_sleep },
	{ "every", script_timer_every },
	{ "now", l_now },
	{ "time", l_time },
	{ "session", script_session_get },
	{ "broadcast", script_session_broadcast },
	{ "log", l_log },
	{ "stats", l_stats_all },
	{ "server_stats", l_server_stats },
	{ "relay", script_sync_relay },
	{ "redis_client", script_redis_client },
	{ "redis_subscribe", script_redis_subscribe },
	{ "http_request", script_http_request },
	{ "frames", script_sync_frames },
	{ NULL, NULL },
};

static int
luaopen_moongate_core(lua_State *L)
{
	lua_newtable(L);
	lua_pushvalue(L, lua_upvalueindex(1));
	luaL_setfuncs(L, module_funcs, 1);
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "redis_null");
	script_t *sc = lua_touserdata(L, lua_upvalueindex(1));
	lua_pushstring(L, sc_redis_url(sc));
	lua_setfield(L, -2, "redis_url");
	lua_pushstring(L, sc->node_id);
	lua_setfield(L, -2, "node_id");
	lua_pushstring(L, sc->node_url);
	lua_setfield(L, -2, "node_url");
	lua_pushinteger(L, sc->worker);
	lua_setfield(L, -2, "worker");
	return 1;
}

/* ---- timers ------------------------------------------------------------- */

uint64_t
script_check(const script_t *sc, uint64_t now)
{
	return timers_check(sc ? sc->timers : NULL, now);
}

void
script_update(script_t *sc, uint64_t now)
{
	if (!sc)
		return;
	sc->now = now; /* what moongate.now() says in the callbacks */
	timers_update(sc->timers, now);
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

/* require("moongate.admin").run(line) -> ok, text, under pcall: reload
 * (SIGHUP, the file watch), whose caller needs the answer now. */
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

/* A console command that waits: the ticket its reply goes back with. A
 * userdata held by its task's owner_ref. */
struct command_job {
	uint64_t ticket;
};

/* A waiting console command ended (rc 0: moongate.admin.run's ok, text on
 * top of sc->L): its reply goes to the answer callback. */
static void
command_done(script_t *sc, struct script_task *t, int rc)
{
	lua_State *L = sc->L;
	struct command_job *j = t->arg;
	int err = 1;
	const char *text = "the command failed (the server's log says why)";
	if (rc == 0) {
		err = !lua_toboolean(L, -2);
		text = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
	}
	if (sc->answer)
		sc->answer(j->ticket, err, text, sc->answer_user);
}

/* script.h: require("moongate.admin").run(line) in a coroutine. */
int
script_command(script_t *sc, const char *line, uint64_t ticket, char *out,
               size_t outlen, uint64_t now)
{
	lua_State *L = sc->L;
	int top = lua_gettop(L);
	sc->now = now;
	lua_getglobal(L, "require");
	lua_pushstring(L, "moongate.admin");
	if (pcall_err(sc, 1, 1, out, outlen))
		return -1;
	lua_getfield(L, -1, "run");
	lua_remove(L, -2);
	lua_pushstring(L, line);
	struct script_task *t;
	int rc = script_task_run(sc, 1, 2, "admin", "command", 0, &t);
	if (rc == 1 && (!ticket || !sc->answer)) {
		script_task_drop(sc, t);
		snprintf(out, outlen, "this command waits, and its caller cannot "
		         "wait for its reply");
		return -1;
	}
	if (rc == 1) {
		struct command_job *j = lua_newuserdata(L, sizeof *j);
		j->ticket = ticket;
		t->owner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		t->done = command_done;
		t->arg = j;
		lua_settop(L, top);
		return SCRIPT_PENDING;
	}
	if (rc < 0) {
		snprintf(out, outlen, "the command failed (the server's log says why)");
		return -1;
	}
	int ok = lua_toboolean(L, -2);
	snprintf(out, outlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
	lua_settop(L, top);
	return ok ? 0 : -1;
}

void
script_set_answer(script_t *sc, script_answer_fn fn, void *user)
{
	sc->answer = fn;
	sc->answer_user = user;
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
	uint32_t tmax = c->lua_timers_max > 0 ? (uint32_t)c->lua_timers_max : 1;
	if (!(sc->timers = timers_create(tmax, script_timer_fire, sc))) {
		lua_close(L);
		free(sc);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sc->g = g;
	sc->now = now;
	sc->budget_ms = c->lua_budget_ms;
	sc->timers_max = tmax;
	sc->queue_max = c->lua_queue_max > 0 ? (uint32_t)c->lua_queue_max : 1;
	sc->waits_max = c->lua_waits_max > 0 ? (uint32_t)c->lua_waits_max : 1;
	sc->dgram_max = session_dgram_max(&c->gate.session);
	for (int i = 0; i < c->nlisten; i++) /* FEC takes room from a packet */
		if (c->gate.fec[i].data) {
			sc->dgram_max -= SESSION_FEC_OVERHEAD;
			break;
		}
	luaL_openlibs(L);

	lua_pushcfunction(L, traceback);
	sc->trace_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	script_session_open(sc);
	script_timer_open(sc);
	script_service_open(sc);
	script_redis_open(sc);
	sc->redis_opts = c->redis;
	sc->http_opts = c->http;
	snprintf(sc->redis_url, sizeof sc->redis_url, "%s", c->redis_url);
	snprintf(sc->node_id, sizeof sc->node_id, "%s", c->node_id);
	snprintf(sc->node_url, sizeof sc->node_url, "%s", c->node_url);
	if (!sc->node_id[0] && gethostname(sc->node_id, sizeof sc->node_id - 1) < 0)
		snprintf(sc->node_id, sizeof sc->node_id, "node");
	sc->worker = c->gate.workers > 1 ? c->gate.worker : 0;

	/* require "moongate.core" (lualib/moongate/init.lua wraps it) */
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "preload");
	lua_pushlightuserdata(L, sc);
	lua_pushcclosure(L, luaopen_moongate_core, 1);
	lua_setfield(L, -2, "moongate.core");
	lua_pop(L, 2);

	char lualib[PATH_MAX];
	add_path(L, "path", lualib_dir(lualib), "?.lua",
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
		if (script_service_load(sc, i, err, errlen)) {
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
	lua_close(sc->L); /* first: a timer's data is a handle in it */
	http_free(sc->http); /* no callback: the state is gone */
	script_task_release(sc);
	timers_release(sc->timers);
	map_clear(&sc->routes); /* emptied by the relays' __gc */
	sodium_memzero(sc->secret, sizeof sc->secret);
	free(sc);
}

void
script_stats(const script_t *sc, struct script_stats *st)
{
	*st = sc->st;
	st->timers = timers_count(sc->timers);
	st->waiting = sc->waits.count;
	st->memory_kb = (uint64_t)lua_gc(sc->L, LUA_GCCOUNT, 0);
}

/* ---- metrics ------------------------------------------------------------ */

void
script_time_cb(script_t *sc, const char *svc, const char *what, double ms)
{
	if (!svc)
		svc = "?";
	if (!what)
		what = "?";
	for (int i = 0; i < sc->ncbt; i++)
		if (sc->cbt[i].svc == svc && sc->cbt[i].what == what) {
			sc->cbt[i].runs++;
			sc->cbt[i].ms += ms;
			return;
		}
	if (sc->ncbt == SCRIPT_CBT_MAX) /* full: the last one takes the rest */
		sc->ncbt--;
	int i = sc->ncbt++;
	sc->cbt[i].svc = svc;
	sc->cbt[i].what = what;
	sc->cbt[i].runs = 1;
	sc->cbt[i].ms = ms;
}

void
script_set_timing(script_t *sc, int on)
{
	sc->timing = on;
}

void
script_callback_times(const script_t *sc, script_cbtime_fn fn, void *user)
{
	for (int i = 0; i < sc->ncbt; i++)
		fn(sc->cbt[i].svc, sc->cbt[i].what, sc->cbt[i].runs, sc->cbt[i].ms, user);
}

char *
script_metrics(script_t *sc, int json, size_t *len)
{
	lua_State *L = sc->L;
	*len = 0;
	lua_getglobal(L, "require");
	lua_pushliteral(L, "moongate.metrics");
	if (lua_pcall(L, 1, 1, 0)) {
		lua_pop(L, 1);
		return NULL;
	}
	lua_getfield(L, -1, json ? "json" : "text");
	lua_remove(L, -2);
	if (script_pcall(sc, 0, 1, "metrics", json ? "json" : "text", 0) < 0)
		return NULL;
	size_t n;
	const char *s = lua_tolstring(L, -1, &n);
	char *out = s ? malloc(n + 1) : NULL;
	if (out) {
		memcpy(out, s, n);
		out[n] = 0;
		*len = n;
	}
	lua_pop(L, 1);
	return out;
}
