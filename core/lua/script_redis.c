/*
 * script_redis.c - moongate.redis in the Lua runtime (lualib/moongate/
 * redis.lua wraps it; docs/LUA_API.md, "Redis"): clients of
 * core/server/redis.h on the server's loop, whose calls make the running
 * callback wait (script_task.c) for the reply.
 *
 *   core.redis_client(url) -> client     one connection, commands pipelined
 *   client:call(cmd, ...) -> value | nil, err
 *   client:pipeline({ {cmd, ...}, ... }) -> values, errors
 *   client:stats() -> { calls=, replies=, errors=, timeouts=, ... }
 *   core.redis_subscribe(url, channel, fn, pattern) -> client
 *
 * A reply becomes: a bulk or status string -> string, an integer -> number,
 * nil -> nil (inside an array: moongate.redis.null), an array -> table, an
 * error reply -> nil, "ERR ..." (in a pipeline: errors[i]). A client is
 * never collected while the runtime lives (the registry keeps every one):
 * its connection is the process's, made once per url by redis.lua.
 *
 * The arg of a call tells the reply what it belongs to: a wait id << 1
 * for one call, the address of a struct batch | 1 for a pipeline (Redis
 * answers in order, so a batch's replies fill its tables one by one).
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <lua.h>

#include "log.h"
#include "script_int.h"

#define REDIS_MT "moongate.redis"
#define REDIS_ARGS_MAX 4096   /* arguments of one command */
#define REDIS_PIPE_MAX 10000  /* commands of one pipeline */
#define REDIS_DEPTH_MAX 8     /* nested arrays in a reply */

struct lredis {
	redis_t *r;
	int sub_ref;            /* a subscriber's function, or LUA_NOREF */
};

/* A pipeline in flight: the results so far, in the registry. A userdata
 * held by a registry ref while in flight (so the runtime's close frees one
 * whose replies never came). */
struct batch {
	uint64_t wid;
	int n, got;
	int vals_ref, errs_ref, self_ref;
};

static void
push_reply(lua_State *L, const redisReply *rep, int depth, int in_array)
{
	switch (rep->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
	case REDIS_REPLY_ERROR:
		lua_pushlstring(L, rep->str, rep->len);
		return;
	case REDIS_REPLY_INTEGER:
		lua_pushnumber(L, (lua_Number)rep->integer);
		return;
	case REDIS_REPLY_ARRAY:
		if (depth >= REDIS_DEPTH_MAX || !lua_checkstack(L, 4)) {
			lua_pushnil(L);
			return;
		}
		lua_createtable(L, (int)rep->elements, 0);
		for (size_t i = 0; i < rep->elements; i++) {
			push_reply(L, rep->element[i], depth + 1, 1);
			lua_rawseti(L, -2, (int)i + 1);
		}
		return;
	default: /* nil */
		if (in_array)
			lua_pushlightuserdata(L, NULL); /* moongate.redis.null */
		else
			lua_pushnil(L);
		return;
	}
}

/* The reply callback of every client (redis.h); user is the script. */
static void
on_reply(void *user, uint64_t arg, const redisReply *rep, const char *err)
{
	script_t *sc = user;
	lua_State *L = sc->L;
	sc->now = net_now(sc->net);
	if (arg & 1) { /* a pipeline's */
		struct batch *b = (struct batch *)(uintptr_t)(arg & ~(uint64_t)1);
		int i = ++b->got;
		if (rep && rep->type != REDIS_REPLY_ERROR) {
			lua_rawgeti(L, LUA_REGISTRYINDEX, b->vals_ref);
			push_reply(L, rep, 0, 1);
			lua_rawseti(L, -2, i);
			lua_pop(L, 1);
		} else {
			lua_rawgeti(L, LUA_REGISTRYINDEX, b->errs_ref);
			if (rep)
				lua_pushlstring(L, rep->str, rep->len);
			else
				lua_pushstring(L, err);
			lua_rawseti(L, -2, i);
			lua_pop(L, 1);
		}
		if (b->got < b->n)
			return;
		lua_rawgeti(L, LUA_REGISTRYINDEX, b->vals_ref);
		lua_rawgeti(L, LUA_REGISTRYINDEX, b->errs_ref);
		luaL_unref(L, LUA_REGISTRYINDEX, b->vals_ref);
		luaL_unref(L, LUA_REGISTRYINDEX, b->errs_ref);
		uint64_t wid = b->wid;
		luaL_unref(L, LUA_REGISTRYINDEX, b->self_ref); /* b may go now */
		script_task_wake(sc, wid, 2);
		return;
	}
	if (rep && rep->type == REDIS_REPLY_ERROR) {
		lua_pushnil(L);
		lua_pushlstring(L, rep->str, rep->len);
	} else if (rep) {
		push_reply(L, rep, 0, 0);
		lua_pushnil(L);
	} else {
		lua_pushnil(L);
		lua_pushstring(L, err);
	}
	script_task_wake(sc, arg >> 1, 2);
}

/* A subscriber's message: its function runs as a callback (it may wait);
 * arg is the client's struct lredis. */
static void
on_message(void *user, uint64_t arg, const redisReply *rep, const char *err)
{
	script_t *sc = user;
	lua_State *L = sc->L;
	struct lredis *u = (struct lredis *)(uintptr_t)arg;
	(void)err;
	sc->now = net_now(sc->net);
	size_t k = rep->elements == 4 ? 2 : 1; /* pmessage: pattern, channel, data */
	const redisReply *ch = rep->element[k], *data = rep->element[k + 1];
	if (ch->type != REDIS_REPLY_STRING || data->type != REDIS_REPLY_STRING)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, u->sub_ref);
	lua_pushlstring(L, data->str, data->len);
	lua_pushlstring(L, ch->str, ch->len);
	struct script_task *t;
	if (script_task_run(sc, 2, 0, "redis", "subscriber", 0, &t) == 1)
		t->done = NULL; /* nothing to do after it */
}

static struct lredis *
new_client(lua_State *L, const char *url, redis_reply_fn *fn)
{
	script_t *sc = script_self(L);
	if (!sc->loop)
		luaL_error(L, "moongate.redis: no event loop here (moongate --check)");
	struct lredis *u = lua_newuserdata(L, sizeof *u);
	u->r = NULL;
	u->sub_ref = LUA_NOREF;
	luaL_getmetatable(L, REDIS_MT);
	lua_setmetatable(L, -2);
	char err[256];
	u->r = redis_create(sc->loop, sc->net, url, &sc->redis_opts, fn, sc, err,
	                    sizeof err);
	if (!u->r)
		luaL_error(L, "moongate.redis: %s", err);
	/* kept for the runtime's life: its connection is the process's */
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->redis_ref);
	lua_pushvalue(L, -2);
	lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
	lua_pop(L, 1);
	return u;
}

/* core.redis_client(url) -> client */
static int
l_client(lua_State *L)
{
	new_client(L, luaL_checkstring(L, 1), on_reply);
	return 1;
}

/* core.redis_subscribe(url, channel, fn [, pattern]) -> client: fn(data,
 * channel) for each message, as a callback (it may wait). */
static int
l_subscribe(lua_State *L)
{
	const char *url = luaL_checkstring(L, 1);
	size_t n;
	const char *ch = luaL_checklstring(L, 2, &n);
	luaL_checktype(L, 3, LUA_TFUNCTION);
	int pattern = lua_toboolean(L, 4);
	struct lredis *u = new_client(L, url, on_message);
	lua_pushvalue(L, 3);
	u->sub_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	char err[256];
	/* its messages carry the client (a userdata does not move) */
	if (redis_subscribe(u->r, ch, n, pattern, (uint64_t)(uintptr_t)u, err,
	                    sizeof err)) {
		/* not kept: the registry's last entry is this client */
		script_t *sc = script_self(L);
		redis_free(u->r);
		u->r = NULL;
		lua_rawgeti(L, LUA_REGISTRYINDEX, sc->redis_ref);
		lua_pushnil(L);
		lua_rawseti(L, -2, (int)lua_objlen(L, -2));
		lua_pop(L, 1);
		return luaL_error(L, "moongate.redis.subscribe: %s", err);
	}
	return 1;
}

static struct lredis *
check_client(lua_State *L)
{
	struct lredis *u = luaL_checkudata(L, 1, REDIS_MT);
	if (!u->r)
		luaL_error(L, "moongate.redis: this client was not made");
	return u;
}

/* The arguments of one command from the Lua values at first..last: strings
 * or numbers. */
static int
gather(lua_State *L, int first, int last, const char **argv, size_t *lens,
       const char *who)
{
	int argc = last - first + 1;
	if (argc < 1)
		return luaL_error(L, "%s: a command expected", who);
	if (argc > REDIS_ARGS_MAX)
		return luaL_error(L, "%s: more than %d arguments", who, REDIS_ARGS_MAX);
	for (int i = 0; i < argc; i++) {
		int t = lua_type(L, first + i);
		if (t != LUA_TSTRING && t != LUA_TNUMBER)
			return luaL_error(L, "%s: argument %d is a %s (strings and numbers "
			                  "only)", who, i + 1, lua_typename(L, t));
		argv[i] = lua_tolstring(L, first + i, &lens[i]);
	}
	return argc;
}

/* client:call(cmd, ...) -> value | nil, err (waits) */
static int
l_call(lua_State *L)
{
	struct lredis *u = check_client(L);
	int top = lua_gettop(L);
	if (top - 1 > REDIS_ARGS_MAX)
		return luaL_error(L, "redis:call: more than %d arguments", REDIS_ARGS_MAX);
	const char **argv = lua_newuserdata(L, (size_t)(top > 1 ? top - 1 : 1) *
	                                       (sizeof *argv + sizeof(size_t)));
	size_t *lens = (size_t *)(argv + (top > 1 ? top - 1 : 1));
	int argc = gather(L, 2, top, argv, lens, "redis:call");
	uint64_t wid = script_task_wait(L, "redis:call");
	char err[256];
	if (redis_command(u->r, argc, argv, lens, wid << 1, err, sizeof err)) {
		script_task_unwait(L);
		lua_pushnil(L);
		lua_pushstring(L, err);
		return 2;
	}
	return lua_yield(L, 0);
}

/* client:pipeline({ {cmd, ...}, ... }) -> values, errors (waits once):
 * values[i] the i-th reply (nil: moongate.redis.null), errors[i] its error
 * when it failed. */
static int
l_pipeline(lua_State *L)
{
	struct lredis *u = check_client(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	int n = (int)lua_objlen(L, 2);
	if (n < 1 || n > REDIS_PIPE_MAX)
		return luaL_error(L, "redis:pipeline: 1 to %d commands", REDIS_PIPE_MAX);
	/* every command checked before anything is sent */
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, 2, i);
		if (!lua_istable(L, -1))
			return luaL_error(L, "redis:pipeline: command %d is not a table", i);
		lua_pop(L, 1);
	}
	uint64_t wid = script_task_wait(L, "redis:pipeline");
	struct batch *b = lua_newuserdata(L, sizeof *b);
	memset(b, 0, sizeof *b);
	b->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	b->wid = wid;
	b->n = n;
	lua_createtable(L, n, 0);
	b->vals_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);
	b->errs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, 2, i);
		int base = lua_gettop(L);
		int argc = (int)lua_objlen(L, base);
		if (argc < 1 || argc > REDIS_ARGS_MAX) {
			argc = 0;
		}
		luaL_checkstack(L, argc + 4, "redis:pipeline");
		for (int k = 1; k <= argc; k++)
			lua_rawgeti(L, base, k);
		size_t na = argc > 0 && argc <= REDIS_ARGS_MAX ? (size_t)argc : 1;
		const char **argv = malloc(na * (sizeof *argv + sizeof(size_t)));
		size_t *lens = (size_t *)(argv + na);
		char err[256];
		int bad = !argv;
		for (int k = 0; !bad && k < argc; k++) {
			int t = lua_type(L, base + 1 + k);
			if (t != LUA_TSTRING && t != LUA_TNUMBER)
				bad = 1;
			else
				argv[k] = lua_tolstring(L, base + 1 + k, &lens[k]);
		}
		if (bad || !argc)
			snprintf(err, sizeof err, "command %d: %s", i, !argv ? "out of memory"
			         : "strings and numbers expected, at least one");
		if (bad || !argc || redis_command(u->r, argc, argv, lens,
		                                  (uint64_t)(uintptr_t)b | 1, err, sizeof err)) {
			/* not sent: its result now, as if Redis had answered it */
			free(argv);
			lua_settop(L, base - 1);
			if (i == 1) { /* nothing sent: no wait */
				script_task_unwait(L);
				luaL_unref(L, LUA_REGISTRYINDEX, b->vals_ref);
				luaL_unref(L, LUA_REGISTRYINDEX, b->errs_ref);
				luaL_unref(L, LUA_REGISTRYINDEX, b->self_ref);
				lua_pushnil(L);
				lua_pushstring(L, err);
				return 2;
			}
			/* the rest fail the same way, in order behind what was sent:
			 * fewer replies to wait for */
			b->n = i - 1;
			lua_rawgeti(L, LUA_REGISTRYINDEX, b->errs_ref);
			for (int k = i; k <= n; k++) {
				lua_pushstring(L, err);
				lua_rawseti(L, -2, k);
			}
			lua_pop(L, 1);
			break;
		}
		free(argv);
		lua_settop(L, base - 1);
	}
	return lua_yield(L, 0);
}

/* client:stats() -> table */
static int
l_stats(lua_State *L)
{
	struct lredis *u = check_client(L);
	struct redis_stats st;
	redis_stats(u->r, &st);
	lua_createtable(L, 0, 9);
#define F(k, v) (lua_pushnumber(L, (double)(v)), lua_setfield(L, -2, k))
	F("calls", st.calls);
	F("replies", st.replies);
	F("errors", st.errors);
	F("timeouts", st.timeouts);
	F("connects", st.connects);
	F("disconnects", st.disconnects);
	F("in_flight", st.in_flight);
#undef F
	lua_pushboolean(L, st.up);
	lua_setfield(L, -2, "up");
	lua_pushstring(L, redis_name(u->r));
	lua_setfield(L, -2, "name");
	return 1;
}

static int
l_gc(lua_State *L)
{
	struct lredis *u = luaL_checkudata(L, 1, REDIS_MT);
	redis_free(u->r); /* only at lua_close: the registry keeps every client */
	u->r = NULL;
	return 0;
}

static int
l_tostring(lua_State *L)
{
	struct lredis *u = luaL_checkudata(L, 1, REDIS_MT);
	lua_pushfstring(L, "redis client (%s)", u->r ? redis_name(u->r) : "none");
	return 1;
}

static const luaL_Reg methods[] = {
	{ "call", l_call },
	{ "pipeline", l_pipeline },
	{ "stats", l_stats },
	{ NULL, NULL },
};

/* script_int.h: the client metatable and the registry table of clients. */
void
script_redis_open(script_t *sc)
{
	lua_State *L = sc->L;
	lua_newtable(L);
	sc->redis_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	luaL_newmetatable(L, REDIS_MT);
	lua_newtable(L);
	lua_pushlightuserdata(L, sc);
	luaL_setfuncs(L, methods, 1);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, l_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushstring(L, "redis client");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}

int
script_redis_client(lua_State *L)
{
	return l_client(L);
}

int
script_redis_subscribe(lua_State *L)
{
	return l_subscribe(L);
}

/* script.h: every client's counters, summed. */
void
script_redis_stats(const script_t *sc, struct redis_stats *sum)
{
	memset(sum, 0, sizeof *sum);
	lua_State *L = sc->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->redis_ref);
	int n = (int)lua_objlen(L, -1);
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		struct lredis *u = lua_touserdata(L, -1);
		lua_pop(L, 1);
		if (!u || !u->r)
			continue;
		struct redis_stats st;
		redis_stats(u->r, &st);
		sum->calls += st.calls;
		sum->replies += st.replies;
		sum->errors += st.errors;
		sum->timeouts += st.timeouts;
		sum->connects += st.connects;
		sum->disconnects += st.disconnects;
		sum->in_flight += st.in_flight;
		sum->up += st.up;
		metrics_lat_add_to(&sum->latency, &st.latency);
	}
	lua_pop(L, 1);
}
