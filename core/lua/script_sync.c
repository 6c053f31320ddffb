/*
 * script_sync.c - moongate.relay and moongate.frames: the Lua face of
 * core/proto/sync.c, so a room relays state and frames with no Lua per receiver
 * (docs/LUA_API.md, "State and frame sync in C").
 *
 * A member's session is kept as its session id (the member's tag in
 * core/proto/sync.c) and looked up through the gate on every send: a closed
 * session is skipped, never dangling, and a member object keeps no
 * session alive.
 *
 * The only Lua a flush runs is the optional filter, once per receiver,
 * under lua_pcall: an error is logged and that receiver keeps every
 * candidate. While the filter runs, its relay refuses to change.
 */
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <stdlib.h>

#include "log.h"
#include "script_int.h"
#include "sync.h"

#define RELAY_MT "moongate.relay"
#define FRAMES_MT "moongate.frames"

struct lrelay {
	sync_relay_t *r;     /* NULL once collected */
	int busy;            /* in flush: the filter may not change it */
	uint32_t routes;     /* sessions routed into it (sc->routes) */
};

struct lframes {
	sync_frames_t *f;    /* NULL once collected */
	int warned;          /* a frame too big to send was logged once */
};

/* A u32 argument (ids, sequence numbers, frame numbers). */
static uint32_t
check_u32(lua_State *L, int idx)
{
	lua_Number n = luaL_checknumber(L, idx);
	if (!(n >= 0 && n <= 4294967295.0) || n != floor(n))
		luaL_argerror(L, idx, "an integer in 0..2^32-1 expected");
	return (uint32_t)n;
}

/* The session id of the session object at idx, or 0 for none or nil. */
static uint32_t
opt_session(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx))
		return 0;
	struct lsession *u = luaL_testudata(L, idx, SESSION_MT);
	if (!u)
		luaL_argerror(L, idx, "a session or nil expected");
	return u->sid;
}

/* The member's session when it can be sent to now: open, not offline. */
static session_t *
live(script_t *sc, uint32_t sid)
{
	session_t *s = sid ? gate_session(sc->g, sid) : NULL;
	if (!s || session_state(s) != SESSION_OPEN || session_offline(s))
		return NULL;
	return s;
}

static int
fail(lua_State *L, int err)
{
	lua_pushboolean(L, 0);
	lua_pushstring(L, sync_strerror(err));
	return 2;
}

static int
ok_or_fail(lua_State *L, int rc)
{
	if (rc < 0)
		return fail(L, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* Options of a constructor: a table of known keys, or nothing. */
static void
check_options(lua_State *L, const char *what, const char *const *known)
{
	if (lua_isnoneornil(L, 1))
		return;
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		int found = 0;
		if (lua_type(L, -2) == LUA_TSTRING)
			for (int k = 0; known[k]; k++)
				found |= !strcmp(lua_tostring(L, -2), known[k]);
		if (!found)
			luaL_error(L, "%s: unknown option '%s'", what,
			           lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
			                                          : luaL_typename(L, -2));
		lua_pop(L, 1);
	}
}

static lua_Number
opt_number(lua_State *L, const char *what, const char *key, lua_Number def,
           lua_Number min, lua_Number max, int integer)
{
	if (lua_isnoneornil(L, 1))
		return def;
	lua_getfield(L, 1, key);
	lua_Number v = def;
	if (!lua_isnil(L, -1)) {
		v = lua_tonumber(L, -1);
		if (lua_type(L, -1) != LUA_TNUMBER || !(v >= min && v <= max) ||
		    (integer && v != floor(v)))
			luaL_error(L, "%s: %s must be %s in [%.14g, %.14g]", what, key,
			           integer ? "an integer" : "a number", min, max);
	}
	lua_pop(L, 1);
	return v;
}

/* Give the new userdata on top its metatable, made on first use: methods
 * with the script as upvalue, __gc, and a locked __metatable. */
static void
set_metatable(lua_State *L, const char *name, const char *kind,
              const luaL_Reg *methods, lua_CFunction gc)
{
	if (luaL_newmetatable(L, name)) {
		lua_newtable(L);
		lua_pushvalue(L, lua_upvalueindex(1));
		luaL_setfuncs(L, methods, 1);
		lua_setfield(L, -2, "__index");
		lua_pushvalue(L, lua_upvalueindex(1)); /* the relay's __gc unroutes */
		lua_pushcclosure(L, gc, 1);
		lua_setfield(L, -2, "__gc");
		lua_pushstring(L, kind);
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, -2);
}

/* ---- moongate.relay ------------------------------------------------------- */

static struct lrelay *
check_relay(lua_State *L, int changes)
{
	struct lrelay *u = luaL_checkudata(L, 1, RELAY_MT);
	if (!u->r)
		luaL_error(L, "relay: already collected");
	if (changes && u->busy)
		luaL_error(L, "relay: cannot be changed from inside its own flush filter");
	return u;
}

/* r:add(id, session_or_nil) -> true | false, "full" */
static int
l_relay_add(lua_State *L)
{
	struct lrelay *u = check_relay(L, 1);
	uint32_t id = check_u32(L, 2);
	uint32_t sid = opt_session(L, 3);
	return ok_or_fail(L, sync_relay_add(u->r, id, sid));
}

/* Drop the route of sid if it leads into u (any member of u when id is
 * UINT64_MAX, else only member id). */
static void
unroute_sid(script_t *sc, uint32_t sid, struct lrelay *u, uint64_t id)
{
	struct script_route *rt = map_get(&sc->routes, sid);
	if (!rt || (u && rt->relay != u) || (id != UINT64_MAX && rt->id != id))
		return;
	map_del(&sc->routes, sid);
	rt->relay->routes--;
	free(rt);
}

void
script_sync_unroute(script_t *sc, uint32_t sid)
{
	unroute_sid(sc, sid, NULL, UINT64_MAX);
}

/* The route into member id of u, if any. */
static void
unroute_member(script_t *sc, struct lrelay *u, uint32_t id)
{
	uint32_t tag;
	if (u->routes && sync_relay_member_tag(u->r, id, &tag) == 0)
		unroute_sid(sc, tag, u, id);
}

/* Every route into u (it is being collected): a walk over the routes,
 * once per relay's end, and only when it has routes. */
static void
unroute_relay(script_t *sc, struct lrelay *u)
{
	for (uint32_t i = 0; u->routes && i < sc->routes.cap; i++) {
		struct script_route *rt = sc->routes.slots[i].val;
		if (rt && rt->relay == u)
			unroute_sid(sc, (uint32_t)sc->routes.slots[i].key, u, UINT64_MAX);
	}
}

int
script_sync_routed(script_t *sc, session_t *s, const struct session_event *ev)
{
	if (ev->type != SESSION_EV_DATAGRAM || !sc->routes.count)
		return 0;
	uint32_t sid = session_id(s);
	struct script_route *rt = map_get(&sc->routes, sid);
	if (!rt)
		return 0;
	int r = sync_relay_put_tagged(rt->relay->r, rt->id, sid, ev->seq,
	                              ev->data, ev->len);
	if (r == SYNC_ENOMEMBER) { /* no longer its member, or not this session */
		unroute_sid(sc, sid, NULL, UINT64_MAX);
		return 0;              /* the services' message callbacks decide */
	}
	sc->st.routed++;
	return 1; /* taken, stale or too big: as r:put would have it */
}

/* r:route(id, session) -> true | false, "not a member": the session's
 * unreliable datagrams become member id's states in this relay without a
 * call of the services' message (the session must be the member's,
 * r:add(id, session)); r:route(id) ends it. A session has one route at
 * most; r:remove(id), the member's session changing, the session's close
 * and the relay's end end it too. */
static int
l_relay_route(lua_State *L)
{
	script_t *sc = script_self(L);
	struct lrelay *u = check_relay(L, 1);
	uint32_t id = check_u32(L, 2);
	uint32_t sid = opt_session(L, 3), tag;
	if (!sid) {
		unroute_member(sc, u, id);
		lua_pushboolean(L, 1);
		return 1;
	}
	if (sync_relay_member_tag(u->r, id, &tag) < 0 || tag != sid) {
		lua_pushboolean(L, 0);
		lua_pushliteral(L, "not a member");
		return 2;
	}
	unroute_sid(sc, sid, NULL, UINT64_MAX);
	struct script_route *rt = malloc(sizeof *rt);
	if (!rt || map_put(&sc->routes, sid, rt) < 0) {
		free(rt);
		return luaL_error(L, "relay:route: out of memory");
	}
	rt->relay = u;
	rt->id = id;
	u->routes++;
	lua_pushboolean(L, 1);
	return 1;
}

/* r:remove(id) -> true when it was a member */
static int
l_relay_remove(lua_State *L)
{
	struct lrelay *u = check_relay(L, 1);
	uint32_t id = check_u32(L, 2);
	unroute_member(script_self(L), u, id); /* its route ends with it */
	lua_pushboolean(L, sync_relay_remove(u->r, id) == 0);
	return 1;
}

/* r:put(id, seq, data) -> true | false, "stale" | "too big" | "not a member" */
static int
l_relay_put(lua_State *L)
{
	struct lrelay *u = check_relay(L, 1);
	uint32_t id = check_u32(L, 2);
	uint32_t seq = check_u32(L, 3);
	size_t n;
	const char *d = luaL_checklstring(L, 4, &n);
	return ok_or_fail(L, sync_relay_put(u->r, id, seq, d, n));
}

/* r:position(id, x, y) -> true | false, "not a member"; r:position(id):
 * off the grid (sees everyone, seen by everyone) */
static int
l_relay_position(lua_State *L)
{
	struct lrelay *u = check_relay(L, 1);
	uint32_t id = check_u32(L, 2);
	if (lua_isnoneornil(L, 3) && lua_isnoneornil(L, 4))
		return ok_or_fail(L, sync_relay_unposition(u->r, id));
	lua_Number x = luaL_checknumber(L, 3), y = luaL_checknumber(L, 4);
	luaL_argcheck(L, isfinite(x), 3, "a finite number expected");
	luaL_argcheck(L, isfinite(y), 4, "a finite number expected");
	return ok_or_fail(L, sync_relay_position(u->r, id, x, y));
}

struct flush_ctx {
	script_t *sc;
	lua_State *L;        /* the thread of the flush call: its stack holds them */
	int fn, call;        /* stack slots of the filter and of filter_call */
	uint32_t *ids;       /* filter_call: the candidates, rewritten */
	uint32_t n, cap, keep;
};

static size_t
relay_room(uint32_t id, uint32_t sid, void *user)
{
	struct flush_ctx *c = user;
	(void)id;
	session_t *s = live(c->sc, sid);
	return s ? (size_t)session_dgram_room(s) : 0;
}

static int
relay_output(uint32_t id, uint32_t sid, const uint8_t *d, size_t len,
             void *user)
{
	struct flush_ctx *c = user;
	(void)id;
	session_t *s = live(c->sc, sid); /* again: the filter ran since room */
	return s && session_send_unreliable(s, d, len, c->sc->now) == 0 ? 0 : -1;
}

/* filter_call(filter, receiver, ctx), under pcall: keep = what
 * filter(receiver, {ids}) returns. ctx->ids changes only once the whole
 * answer was checked, so an error leaves every candidate in place. */
static int
filter_call(lua_State *L)
{
	struct flush_ctx *c = lua_touserdata(L, 3);
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_createtable(L, (int)c->n, 0);
	for (uint32_t k = 0; k < c->n; k++) {
		lua_pushnumber(L, c->ids[k]);
		lua_rawseti(L, -2, (int)k + 1);
	}
	lua_call(L, 2, 1);
	if (lua_isnil(L, -1))
		return 0; /* keep all */
	if (!lua_istable(L, -1))
		return luaL_error(L, "relay filter: returned %s, not an array of "
		                  "ids or nil", luaL_typename(L, -1));
	size_t len = lua_objlen(L, -1);
	/* cap (members_max) is at least every candidate once: past it, there
	 * can only be repeats and ids that were never candidates */
	uint32_t m = len < c->cap ? (uint32_t)len : c->cap;
	for (uint32_t k = 1; k <= m; k++) {
		lua_rawgeti(L, -1, (int)k);
		if (lua_type(L, -1) != LUA_TNUMBER)
			return luaL_error(L, "relay filter: id %d is a %s, not a number",
			                  (int)k, luaL_typename(L, -1));
		lua_pop(L, 1);
	}
	uint32_t keep = 0;
	for (uint32_t k = 1; k <= m; k++) {
		lua_rawgeti(L, -1, (int)k);
		lua_Number v = lua_tonumber(L, -1);
		lua_pop(L, 1);
		if (v >= 0 && v <= 4294967295.0 && v == floor(v))
			c->ids[keep++] = (uint32_t)v; /* sync.c drops non-candidates */
	}
	c->keep = keep;
	return 0;
}

static uint32_t
relay_filter(uint32_t receiver, uint32_t *ids, uint32_t n, uint32_t cap,
             void *user)
{
	struct flush_ctx *c = user;
	script_t *sc = c->sc;
	lua_State *L = c->L;
	c->ids = ids;
	c->n = c->keep = n;
	c->cap = cap;
	/* the handler, filter_call and its arguments: nothing allocated here */
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->trace_ref);
	int h = lua_gettop(L);
	lua_pushvalue(L, c->call);
	lua_pushvalue(L, c->fn);
	lua_pushnumber(L, receiver);
	lua_pushlightuserdata(L, c);
	sc->st.callbacks++;
	if (lua_pcall(L, 3, 0, h)) {
		sc->st.errors++;
		log_error("relay: filter failed, receiver %u (it gets every "
		          "candidate): %s", receiver, lua_tostring(L, -1));
		lua_pop(L, 1);
		c->keep = n;
	}
	lua_pop(L, 1); /* the handler */
	return c->keep;
}

/* r:flush([filter]) -> datagrams sent */
static int
l_relay_flush(lua_State *L)
{
	script_t *sc = script_self(L);
	struct lrelay *u = check_relay(L, 1);
	struct flush_ctx c = { sc, L, 0, 0, NULL, 0, 0, 0 };
	struct sync_relay_io io = { relay_room, NULL, relay_output, &c };
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TFUNCTION);
		lua_settop(L, 2);
		lua_pushcfunction(L, filter_call); /* once per flush, not per receiver */
		c.fn = 2;
		c.call = 3;
		luaL_checkstack(L, 8, "relay flush");
		io.filter = relay_filter;
	}
	u->busy = 1;
	uint32_t n = sync_relay_flush(u->r, &io);
	u->busy = 0;
	lua_pushnumber(L, n);
	return 1;
}

static int
l_relay_stats(lua_State *L)
{
	struct lrelay *u = check_relay(L, 0);
	struct sync_relay_stats st;
	sync_relay_stats(u->r, &st);
	lua_createtable(L, 0, 11);
#define F(k, v) (lua_pushnumber(L, (double)(v)), lua_setfield(L, -2, k))
	F("puts", st.puts);
	F("stale", st.stale);
	F("too_big", st.too_big);
	F("superseded", st.superseded);
	F("relayed", st.relayed);
	F("datagrams", st.datagrams);
	F("bytes", st.bytes);
	F("oversize", st.oversize);
	F("tick", st.tick);
	F("members", st.members);
#undef F
	return 1;
}

static int
l_relay_gc(lua_State *L)
{
	struct lrelay *u = luaL_checkudata(L, 1, RELAY_MT);
	unroute_relay(script_self(L), u);
	sync_relay_release(u->r);
	u->r = NULL;
	return 0;
}

static const luaL_Reg relay_methods[] = {
	{ "add", l_relay_add },
	{ "remove", l_relay_remove },
	{ "put", l_relay_put },
	{ "route", l_relay_route },
	{ "position", l_relay_position },
	{ "flush", l_relay_flush },
	{ "stats", l_relay_stats },
	{ NULL, NULL },
};

/* moongate.relay{ grid = 0, radius = 1, members_max = 256, entry_max = ... } */
int
script_sync_relay(lua_State *L)
{
	static const char *const known[] = { "grid", "radius", "members_max",
	                                     "entry_max", NULL };
	script_t *sc = script_self(L);
	struct sync_relay_config c;
	sync_relay_config_default(&c);
	c.dgram_max = (uint32_t)sc->dgram_max;
	uint32_t most = c.dgram_max - SYNC_STATES_HDR - SYNC_STATE_HDR_MAX;
	check_options(L, "moongate.relay", known);
	c.cell = opt_number(L, "moongate.relay", "grid", 0, 0, 1e300, 0);
	c.radius = (uint32_t)opt_number(L, "moongate.relay", "radius", 1, 0,
	                                1e6, 1);
	c.members_max = (uint32_t)opt_number(L, "moongate.relay", "members_max",
	                                     256, 1, SYNC_MEMBERS_LIMIT, 1);
	c.entry_max = (uint32_t)opt_number(L, "moongate.relay", "entry_max", most,
	                                   0, most, 1);
	struct lrelay *u = lua_newuserdata(L, sizeof *u);
	u->r = NULL;
	u->busy = 0;
	set_metatable(L, RELAY_MT, "relay", relay_methods, l_relay_gc);
	if (!(u->r = sync_relay_create(&c)))
		return luaL_error(L, "moongate.relay: out of memory");
	return 1;
}

/* ---- moongate.frames ------------------------------------------------------ */

static struct lframes *
check_frames(lua_State *L)
{
	struct lframes *u = luaL_checkudata(L, 1, FRAMES_MT);
	if (!u->f)
		luaL_error(L, "frames: already collected");
	return u;
}

struct frames_ctx {
	script_t *sc;
	struct lframes *u;
};

/* Reliable, like moongate.broadcast: session_send, then gate_touch. */
static int
frames_out(uint32_t id, uint32_t sid, const uint8_t *p, size_t len, void *user)
{
	struct frames_ctx *c = user;
	session_t *s = live(c->sc, sid);
	if (!s)
		return -1;
	int rc = session_send(s, p, len, c->sc->now);
	gate_touch(c->sc->g, s, c->sc->now);
	if (rc == SESSION_ETOOBIG && !c->u->warned) {
		c->u->warned = 1; /* once: it would repeat every step */
		log_warn("frames: a frame of %zu bytes is over session.msg_max or "
		         "KCP's limit: member %u is left behind (lower input_max or "
		         "members_max)", len, id);
	}
	return rc ? -1 : 0;
}

/* f:add(id, session_or_nil [, next_frame]) -> true | false, "full" */
static int
l_frames_add(lua_State *L)
{
	struct lframes *u = check_frames(L);
	uint32_t id = check_u32(L, 2);
	uint32_t sid = opt_session(L, 3);
	uint32_t next = lua_isnoneornil(L, 4) ? sync_frames_current(u->f)
	                                      : check_u32(L, 4);
	return ok_or_fail(L, sync_frames_add(u->f, id, sid, next));
}

/* f:remove(id) -> true when it was a member */
static int
l_frames_remove(lua_State *L)
{
	struct lframes *u = check_frames(L);
	lua_pushboolean(L, sync_frames_remove(u->f, check_u32(L, 2)) == 0);
	return 1;
}

/* f:input(id, data) -> true | false, "too big" | "full" | "not a member" */
static int
l_frames_input(lua_State *L)
{
	struct lframes *u = check_frames(L);
	uint32_t id = check_u32(L, 2);
	size_t n;
	const char *d = luaL_checklstring(L, 3, &n);
	return ok_or_fail(L, sync_frames_input(u->f, id, d, n));
}

/* f:step() -> frame, sent */
static int
l_frames_step(lua_State *L)
{
	struct lframes *u = check_frames(L);
	struct frames_ctx c = { script_self(L), u };
	uint32_t frame = sync_frames_current(u->f), sent = 0;
	size_t len;
	if (!sync_frames_step(u->f, &len, frames_out, &c, &sent))
		return luaL_error(L, "frames: out of memory");
	lua_pushnumber(L, frame);
	lua_pushnumber(L, sent);
	return 2;
}

/* f:catch_up(id [, from]) -> true, n_sent | false, reason */
static int
l_frames_catch_up(lua_State *L)
{
	struct lframes *u = check_frames(L);
	struct frames_ctx c = { script_self(L), u };
	uint32_t id = check_u32(L, 2);
	int has_from = !lua_isnoneornil(L, 3);
	uint32_t from = has_from ? check_u32(L, 3) : 0, sid;
	if (sync_frames_member(u->f, id, NULL, &sid))
		return fail(L, SYNC_ENOMEMBER);
	if (!live(c.sc, sid)) { /* nothing can go: say so, keep next */
		session_t *s = sid ? gate_session(c.sc->g, sid) : NULL;
		lua_pushboolean(L, 0);
		lua_pushstring(L, s && session_state(s) == SESSION_OPEN ? "offline"
		                                                       : "closed");
		return 2;
	}
	int n = sync_frames_catch_up(u->f, id, has_from, from, frames_out, &c);
	if (n < 0)
		return fail(L, n);
	lua_pushboolean(L, 1);
	lua_pushnumber(L, n);
	return 2;
}

/* f:frame() -> the number the next step makes */
static int
l_frames_frame(lua_State *L)
{
	struct lframes *u = check_frames(L);
	lua_pushnumber(L, sync_frames_current(u->f));
	return 1;
}

/* f:next(id) -> the member's next frame | nil */
static int
l_frames_next(lua_State *L)
{
	struct lframes *u = check_frames(L);
	uint32_t next;
	if (sync_frames_member(u->f, check_u32(L, 2), &next, NULL))
		lua_pushnil(L);
	else
		lua_pushnumber(L, next);
	return 1;
}

/* f:get(frame) -> the stored frame's bytes | nil */
static int
l_frames_get(lua_State *L)
{
	struct lframes *u = check_frames(L);
	size_t len;
	const uint8_t *p = sync_frames_get(u->f, check_u32(L, 2), &len);
	if (p)
		lua_pushlstring(L, (const char *)p, len);
	else
		lua_pushnil(L);
	return 1;
}

static int
l_frames_stats(lua_State *L)
{
	struct lframes *u = check_frames(L);
	struct sync_frames_stats st;
	sync_frames_stats(u->f, &st);
	lua_createtable(L, 0, 10);
#define F(k, v) (lua_pushnumber(L, (double)(v)), lua_setfield(L, -2, k))
	F("frames", st.frames);
	F("inputs", st.inputs);
	F("refused", st.refused);
	F("sent", st.sent);
	F("bytes", st.bytes);
	F("catch_ups", st.catch_ups);
	F("behind", st.behind);
	F("members", st.members);
	F("stored", st.stored);
	F("stored_bytes", st.stored_bytes);
#undef F
	return 1;
}

static int
l_frames_gc(lua_State *L)
{
	struct lframes *u = luaL_checkudata(L, 1, FRAMES_MT);
	sync_frames_release(u->f);
	u->f = NULL;
	return 0;
}

static const luaL_Reg frames_methods[] = {
	{ "add", l_frames_add },
	{ "remove", l_frames_remove },
	{ "input", l_frames_input },
	{ "step", l_frames_step },
	{ "catch_up", l_frames_catch_up },
	{ "frame", l_frames_frame },
	{ "next", l_frames_next },
	{ "get", l_frames_get },
	{ "stats", l_frames_stats },
	{ NULL, NULL },
};

/* moongate.frames{ history = 256, history_bytes = 1048576, input_max = 256,
 * members_max = 256 } */
int
script_sync_frames(lua_State *L)
{
	static const char *const known[] = { "history", "history_bytes",
	                                     "input_max", "members_max", NULL };
	struct sync_frames_config c;
	sync_frames_config_default(&c);
	check_options(L, "moongate.frames", known);
	c.history = (uint32_t)opt_number(L, "moongate.frames", "history", 256, 1,
	                                 SYNC_HISTORY_LIMIT, 1);
	c.history_bytes = (size_t)opt_number(L, "moongate.frames", "history_bytes",
	                                     1 << 20, 0, 1u << 31, 1);
	c.input_max = (uint32_t)opt_number(L, "moongate.frames", "input_max", 256,
	                                   1, 65535, 1);
	c.members_max = (uint32_t)opt_number(L, "moongate.frames", "members_max",
	                                     256, 1, SYNC_MEMBERS_LIMIT, 1);
	struct lframes *u = lua_newuserdata(L, sizeof *u);
	u->f = NULL;
	u->warned = 0;
	set_metatable(L, FRAMES_MT, "frames", frames_methods, l_frames_gc);
	if (!(u->f = sync_frames_create(&c)))
		return luaL_error(L, "moongate.frames: out of memory");
	return 1;
}
