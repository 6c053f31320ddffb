/*
 * script_session.c - session objects of the Lua runtime: the userdata a
 * service sees for a session (send, close, addr, rtt, stats, fields of
 * its own), moongate.session(id), moongate.sessions() and
 * moongate.broadcast. docs/LUA_API.md, "Session objects".
 *
 * Registry (refs in struct script):
 *   sessions_ref  table sid -> session object (userdata), while the session
 *                 is open; the object outlives it as a dead one
 *   empty_ref     the shared empty table every new session object starts
 *                 with as its environment (fields go to a table of its own
 *                 on first write)
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "script_int.h"

/* ---- session objects ---------------------------------------------------- */

/* script_int.h: the object of s (made on first use), pushed. */
struct lsession *
script_session_push(script_t *sc, lua_State *L, session_t *s)
{
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
	if (unreliable && session_offline(s)) {
		/* no path to send it on: dropped, and said so (a reliable
		 * message waits for the resume instead) */
		lua_pushnil(L);
		lua_pushliteral(L, "offline");
		return 2;
	}
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

/* session:move{worker = SLOT, url = URL, hello = STRING} -> true | nil, err
 * The client is told to connect again there (close code
 * SESSION_CLOSE_MOVED, reason "W URL HELLO": docs/PROTOCOL.md, "Moves");
 * its library follows. worker: a slot (moongate.worker of the target), or
 * nil; url: nil for the one the client uses; hello: what it sends there
 * (e.g. a login cookie). The three must fit a close reason (255 bytes). */
static int
l_move(lua_State *L)
{
	script_t *sc = script_self(L);
	session_t *s = check_session(L, 1, NULL);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_getfield(L, 2, "worker");
	lua_getfield(L, 2, "url");
	lua_getfield(L, 2, "hello");
	char w[8] = "-";
	if (!lua_isnil(L, -3)) {
		lua_Integer k = luaL_checkinteger(L, -3);
		if (k < 0 || k > WIRE_WORKER_HINT_MAX)
			return luaL_error(L, "move: worker must be 0..%d", WIRE_WORKER_HINT_MAX);
		snprintf(w, sizeof w, "%d", (int)k);
	}
	size_t ul = 1, hl = 0;
	const char *url = lua_isnil(L, -2) ? "-" : luaL_checklstring(L, -2, &ul);
	const char *hello = lua_isnil(L, -1) ? "" : luaL_checklstring(L, -1, &hl);
	if (!ul || memchr(url, ' ', ul) || memchr(url, 0, ul))
		return luaL_error(L, "move: a url without spaces");
	char reason[WIRE_REASON_MAX + 1];
	if (strlen(w) + 1 + ul + 1 + hl > WIRE_REASON_MAX || memchr(hello, 0, hl)) {
		lua_pushnil(L);
		lua_pushliteral(L, "move: worker, url and hello take more than 255 bytes");
		return 2;
	}
	snprintf(reason, sizeof reason, "%s %s %s", w, url, hello);
	if (!s)
		return 2;
	session_close(s, SESSION_CLOSE_MOVED, reason, 1, sc->now);
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
	{ "move", l_move },
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

/* ---- functions of "moongate.core" --------------------------------------- */

/* moongate.session(id) -> the open session's object or nil */
int
script_session_get(lua_State *L)
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
	script_session_push(sc, L, s);
	return 1;
}

/* moongate.broadcast(list, data [, unreliable]) -> sent: one payload to
 * many sessions, the loop in C; closed ones in the list are skipped. */
int
script_session_broadcast(lua_State *L)
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


/* moongate.sessions() -> { session, ... }: every open session */
int
script_session_list(lua_State *L)
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


/* script_int.h: the session metatable, methods and fields through
 * __index; the sessions table and the shared empty environment. */
void
script_session_open(script_t *sc)
{
	lua_State *L = sc->L;
	lua_newtable(L);
	sc->sessions_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);
	sc->empty_ref = luaL_ref(L, LUA_REGISTRYINDEX);

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
}
