/*
 * script_timer.c - the Lua runtime's timers: moongate.after and
 * moongate.every, timer:cancel() and timer:pending(), and script_check /
 * script_update (script.h).
 *
 * A C heap ordered by (due, seq); an active timer holds registry refs to
 * its function and to its handle, so a handle is never collected while its
 * timer can fire, and a finished timer leaves no watcher behind.
 */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#include "script_int.h"

#define TIMER_MT "moongate.timer"

struct timer {
	uint64_t due, period;   /* microseconds; period 0: once */
	uint64_t seq;           /* creation order: equal dues fire FIFO */
	uint32_t hi;            /* index in the heap */
	int fn_ref, handle_ref;
	struct ltimer *handle;
};

struct ltimer {
	struct timer *t;        /* NULL once fired (once) or cancelled */
};

static int
before(const struct timer *a, const struct timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
heap_swap(script_t *sc, uint32_t i, uint32_t j)
{
	struct timer *t = sc->heap[i];
	sc->heap[i] = sc->heap[j];
	sc->heap[j] = t;
	sc->heap[i]->hi = i;
	sc->heap[j]->hi = j;
}

static void
heap_up(script_t *sc, uint32_t i)
{
	while (i > 0 && before(sc->heap[i], sc->heap[(i - 1) / 2])) {
		heap_swap(sc, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(script_t *sc, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < sc->nheap && before(sc->heap[l], sc->heap[m]))
			m = l;
		if (r < sc->nheap && before(sc->heap[r], sc->heap[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(sc, i, m);
		i = m;
	}
}

static void
heap_remove(script_t *sc, struct timer *t)
{
	uint32_t i = t->hi;
	sc->nheap--;
	if (i != sc->nheap) {
		sc->heap[i] = sc->heap[sc->nheap];
		sc->heap[i]->hi = i;
		heap_down(sc, i);
		heap_up(sc, i);
	}
}

/* Drop a timer that will not fire again: its refs go, its handle is told. */
static void
timer_free(script_t *sc, struct timer *t)
{
	luaL_unref(sc->L, LUA_REGISTRYINDEX, t->fn_ref);
	luaL_unref(sc->L, LUA_REGISTRYINDEX, t->handle_ref);
	if (t->handle)
		t->handle->t = NULL;
	free(t);
	sc->st.timers--;
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
	if (sc->nheap >= sc->timers_max)
		return luaL_error(L, "too many timers (lua.timers_max = %d)",
		                  (int)sc->timers_max);
	if (sc->nheap == sc->heapcap) {
		uint32_t cap = sc->heapcap ? sc->heapcap * 2 : 64;
		struct timer **h = realloc(sc->heap, cap * sizeof *h);
		if (!h)
			return luaL_error(L, "out of memory");
		sc->heap = h;
		sc->heapcap = cap;
	}
	struct timer *t = calloc(1, sizeof *t);
	if (!t)
		return luaL_error(L, "out of memory");
	struct ltimer *h = lua_newuserdata(L, sizeof *h);
	h->t = t;
	luaL_getmetatable(L, TIMER_MT);
	lua_setmetatable(L, -2);
	lua_pushvalue(L, -1);
	t->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, 2);
	t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	t->handle = h;
	t->period = repeat ? (uint64_t)(ms * 1000) : 0;
	t->due = sc->now + (uint64_t)(ms * 1000);
	t->seq = sc->seq++;
	t->hi = sc->nheap;
	sc->heap[sc->nheap++] = t;
	heap_up(sc, t->hi);
	sc->st.timers++;
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
	struct timer *t = h->t;
	if (!t) {
		lua_pushboolean(L, 0);
		return 1;
	}
	heap_remove(sc, t);
	timer_free(sc, t);
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

uint64_t
script_check(const script_t *sc, uint64_t now)
{
	if (!sc || sc->nheap == 0)
		return now + 3600ull * 1000000;
	return sc->heap[0]->due > now ? sc->heap[0]->due : now;
}

void
script_update(script_t *sc, uint64_t now)
{
	if (!sc)
		return;
	sc->now = now;
	uint64_t last = sc->seq; /* timers made by these callbacks wait a turn */
	while (sc->nheap && sc->heap[0]->due <= now && sc->heap[0]->seq < last) {
		struct timer *t = sc->heap[0];
		lua_rawgeti(sc->L, LUA_REGISTRYINDEX, t->fn_ref);
		lua_rawgeti(sc->L, LUA_REGISTRYINDEX, t->handle_ref);
		if (t->period) {
			t->due += t->period;
			if (t->due <= now) /* fell behind: skip, do not burst */
				t->due = now + t->period;
			t->seq = sc->seq++;
			heap_down(sc, 0);
		} else {
			heap_remove(sc, t);
			t->handle->t = NULL; /* fired: cancel() says false from now */
			t->handle = NULL;
			luaL_unref(sc->L, LUA_REGISTRYINDEX, t->fn_ref);
			luaL_unref(sc->L, LUA_REGISTRYINDEX, t->handle_ref);
			free(t);
			sc->st.timers--;
		}
		/* the function and the handle (its argument) are on the stack */
		if (script_pcall(sc, 1, 0, "timer", "callback", 0) == 0)
			continue;
	}
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

void
script_timer_release(script_t *sc)
{
	for (uint32_t i = 0; i < sc->nheap; i++) {
		sc->heap[i]->handle->t = NULL;
		free(sc->heap[i]);
	}
	free(sc->heap);
	sc->heap = NULL;
	sc->nheap = sc->heapcap = 0;
}
