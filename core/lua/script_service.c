/*
 * script_service.c - the services of the Lua runtime: loading each module
 * named in config.lua's `services` (through moongate.loader, so a reload
 * patches its table in place) and calling its callbacks for the gate's
 * accept and events (script_accept, script_event in script.h), in the
 * order of `services`. docs/LUA_API.md, "Services".
 *
 * A callback is looked up in the service's table on every event, as
 * docs/LUA_API.md promises: whatever changed the table (a reload, the
 * service itself, another module holding it) takes effect on the next
 * event. Only the key strings are made once (refs in sc->cb_key).
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "log.h"
#include "script_int.h"

/* The callbacks moongate calls, by enum script_cb. */
static const char *const cb_names[SCRIPT_CB_N] = {
	[SCRIPT_CB_HANDSHAKE] = "handshake",
	[SCRIPT_CB_CONNECT] = "connect",
	[SCRIPT_CB_MESSAGE] = "message",
	[SCRIPT_CB_CLOSE] = "close",
	[SCRIPT_CB_OFFLINE] = "offline",
	[SCRIPT_CB_RESUME] = "resume",
	[SCRIPT_CB_PATH] = "path",
};

/* script_int.h: the callback names, interned once. */
void
script_service_open(script_t *sc)
{
	for (int k = 0; k < SCRIPT_CB_N; k++) {
		lua_pushstring(sc->L, cb_names[k]);
		sc->cb_key[k] = luaL_ref(sc->L, LUA_REGISTRYINDEX);
	}
}

/* Push service i's callback cb, looked up now (lua_gettable: what
 * lua_getfield does, metamethods included, without hashing the name);
 * 0, or -1 (nothing pushed) when it has none. */
static int
push_callback(script_t *sc, int i, enum script_cb cb)
{
	lua_State *L = sc->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->svc_ref[i]);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->cb_key[cb]);
	lua_gettable(L, -2);
	lua_remove(L, -2);
	if (lua_isfunction(L, -1))
		return 0;
	lua_pop(L, 1);
	return -1;
}

/* ---- loading ------------------------------------------------------------ */

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

/* script_int.h: require service i, check it returned a table, keep it. */
int
script_service_load(script_t *sc, int i, char *err, size_t errlen)
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

/* ---- events ------------------------------------------------------------- */

void
script_accept(script_t *sc, const struct gate_path *from, const uint8_t *hello,
              size_t len, struct gate_verdict *v, uint64_t now)
{
	lua_State *L = sc->L;
	sc->now = now;
	int pushed = 0;
	for (int i = 0; i < sc->nsvc && !v->code; i++) {
		if (push_callback(sc, i, SCRIPT_CB_HANDSHAKE))
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
	script_session_push(sc, s);
	lua_pushlstring(L, (const char *)hello, hlen);
	for (int i = 0; i < sc->nsvc; i++) {
		if (session_state(s) != SESSION_OPEN)
			break; /* an earlier service closed it */
		if (push_callback(sc, i, SCRIPT_CB_CONNECT))
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
	if (!reliable && script_sync_routed(sc, s, ev))
		return; /* a state, straight into its room's relay */
	script_session_push(sc, s);
	lua_pushlstring(L, (const char *)ev->data, ev->len);
	for (int i = 0; i < sc->nsvc; i++) {
		if (push_callback(sc, i, SCRIPT_CB_MESSAGE))
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
	enum script_cb cb = ev->type == SESSION_EV_OFFLINE ? SCRIPT_CB_OFFLINE
	                    : ev->type == SESSION_EV_RESUME ? SCRIPT_CB_RESUME
	                                                    : SCRIPT_CB_PATH;
	const char *name = cb_names[cb];
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
		if (push_callback(sc, i, cb))
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
		if (push_callback(sc, i, SCRIPT_CB_CLOSE))
			continue;
		lua_pushvalue(L, -2);
		lua_pushinteger(L, ev->code);
		lua_pushstring(L, ev->reason ? ev->reason : "");
		lua_pushboolean(L, ev->remote);
		script_pcall(sc, 4, 0, sc->names[i], "close", session_id(s));
	}
	u->dead = 1;
	script_sync_unroute(sc, session_id(s));
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

