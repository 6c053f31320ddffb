/*
 * script_timer.c - the Lua side of the runtime's timers: moongate.after
 * and moongate.every, timer:cancel() and timer:pending(), and the fire
 * callback of the runtime's timer set (core/lua/timers.c), which runs a
 * timer's function under pcall.
 *
 * A timer's data in the set is its handle (the userdata Lua holds). An
 * armed handle holds registry refs to its function and to itself, so it is
 * never collected while its timer can fire, and a finished timer leaves no
 * ref behind.
 */
#include <lauxlib.h>
#include <lua.h>

#include "script_int.h"
#include "timers.h"

#define TIMER_MT "moongate.timer"

struct ltimer {
	struct timer *t;        /* NULL once fired (once) or cancelled */
	int fn_ref, handle_ref; /* while t is set */
	uint8_t waiting;        /* its last firing's callback waits: the next
	                           firings are skipped until it ends */
};

/* The handle's timer is over: its refs go (the handle may be collected). */
static void
disarm(lua_State *L, struct ltimer *h)
{
	h->t = NULL;
	luaL_unref(L, LUA_REGISTRYINDEX, h->fn_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, h->handle_ref);
}

/* moongate.after(ms, fn) / moongate.every(ms, fn) -> timer */
static int
add_timer(lua_State *L, int repeat)
{
	script_t *sc = script_self(L);
	lua_Number ms = luaL_checknumber(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (!(ms >= 0 && ms <= 1e10) || (repeat && ms < 1))
		return luaL_argerror(L, 1, repeat ? "period must be 1 ms .. 1e10 ms"
		                                  : "delay must be 0 .. 1e10 ms");
	struct ltimer *h = lua_newuserdata(L, sizeof *h);
	h->t = NULL;
	h->waiting = 0;
	luaL_getmetatable(L, TIMER_MT);
	lua_setmetatable(L, -2);
	uint64_t us = (uint64_t)(ms * 1000);
	int rc = timers_add(sc->timers, sc->now + us, repeat ? us : 0, h, &h->t);
	if (rc == TIMERS_EFULL)
		return luaL_error(L, "too many timers (lua.timers_max = %d)",
		                  (int)sc->timers_max);
	if (rc)
		return luaL_error(L, "out of memory");
	lua_pushvalue(L, -1);
	h->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, 2);
	h->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 1;
}

int
script_timer_after(lua_State *L)
{
	return add_timer(L, 0);
}

int
script_timer_every(lua_State *L)
{
	return add_timer(L, 1);
}

/* timer:cancel() -> true when it was pending */
static int
l_cancel(lua_State *L)
{
	script_t *sc = script_self(L);
	struct ltimer *h = luaL_checkudata(L, 1, TIMER_MT);
	if (!h->t) {
		lua_pushboolean(L, 0);
		return 1;
	}
	timers_cancel(sc->timers, h->t);
	disarm(L, h);
	lua_pushboolean(L, 1);
	return 1;
}

static int
l_pending(lua_State *L)
{
	struct ltimer *h = luaL_checkudata(L, 1, TIMER_MT);
	lua_pushboolean(L, h->t != NULL);
	return 1;
}

/* A timer callback that waited has ended. */
static void
timer_done(script_t *sc, struct script_task *t, int rc)
{
	(void)sc;
	(void)rc;
	struct ltimer *h = t->arg;
	h->waiting = 0;
}

/* script_int.h: the fire callback of sc->timers; data is the handle, or
 * a sleeping callback's wait id (SCRIPT_SLEEP_DATA). */
void
script_timer_fire(void *user, void *data, int once, uint64_t now)
{
	script_t *sc = user;
	lua_State *L = sc->L;
	(void)now; /* sc->now is set by script_update */
	if (SCRIPT_IS_SLEEP(data)) {
		script_task_wake(sc, SCRIPT_SLEEP_WID(data), 0);
		return;
	}
	struct ltimer *h = data;
	if (h->waiting) { /* a repeating timer whose last callback still waits */
		sc->st.skipped++;
		return;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->handle_ref); /* kept if it waits */
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->fn_ref);
	lua_pushvalue(L, -2);
	if (once) /* fired: cancel() says false from now */
		disarm(L, h);
	/* the function and the handle (its argument) are on the stack */
	struct script_task *t;
	if (script_task_run(sc, 1, 0, "timer", "callback", 0, &t) == 1) {
		h->waiting = 1;
		t->done = timer_done;
		t->arg = h;
		t->owner_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the handle */
		return;
	}
	lua_pop(L, 1);
}

void
script_timer_open(script_t *sc)
{
	lua_State *L = sc->L;
	luaL_newmetatable(L, TIMER_MT);
	lua_newtable(L);
	lua_pushlightuserdata(L, sc);
	lua_pushcclosure(L, l_cancel, 1);
	lua_setfield(L, -2, "cancel");
	lua_pushcfunction(L, l_pending);
	lua_setfield(L, -2, "pending");
	lua_setfield(L, -2, "__index");
	lua_pushstring(L, "timer");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}
