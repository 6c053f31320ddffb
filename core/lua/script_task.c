/*
 * script_task.c - callbacks that may wait. Every callback moongate calls
 * for a session event or a timer runs in a coroutine (a Lua thread, reused
 * from a small pool when the last one ended normally). A callback that
 * calls a function that waits (moongate.sleep, a Redis call, an HTTP
 * request) yields; its coroutine is parked as a task under a fresh wait
 * id (sc->waits) until what it waits for calls script_task_wake with the
 * results, or until it is dropped (its session closed: script_service.c).
 * The pattern is lua-nginx-module's: a C function arranges the wakeup and
 * yields; the loop goes on with everyone else.
 *
 * A callback that ends without waiting costs a resume instead of a pcall:
 * nothing is allocated (the coroutine comes from the pool, no task is
 * made). The budget (lua.budget_ms) applies to each run of a callback
 * between two waits; an error, in the first run or after a wait, is logged
 * with the callback's traceback and its service and session, as before.
 *
 * A wait id is never reused (a 64-bit counter): a wakeup for a task that
 * was dropped finds nothing and is ignored.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "script_int.h"

/* A coroutine for a callback: from the pool, or a new one; the thread is
 * left off the stack, *ref keeps it. */
static lua_State *
co_get(script_t *sc, int *ref)
{
	if (sc->npool > 0) {
		sc->npool--;
		*ref = sc->pool_ref[sc->npool];
		return sc->pool[sc->npool];
	}
	lua_State *co = lua_newthread(sc->L);
	*ref = luaL_ref(sc->L, LUA_REGISTRYINDEX);
	return co;
}

/* A coroutine that ended normally (empty stack) goes back to the pool. */
static void
co_put(script_t *sc, lua_State *co, int ref)
{
	if (sc->npool < SCRIPT_POOL_MAX) {
		sc->pool[sc->npool] = co;
		sc->pool_ref[sc->npool] = ref;
		sc->npool++;
		return;
	}
	luaL_unref(sc->L, LUA_REGISTRYINDEX, ref);
}

/* Resume co with nargs values on its stack, as the callback of svc/what
 * for session sid: the log keys and the budget. The lua_resume status;
 * *wid the wait it yields for (0 when it yielded by itself). */
static int
resume(script_t *sc, lua_State *co, int nargs, const char *svc,
       const char *what, uint32_t sid, uint64_t *wid, void **cancel, void **io)
{
	const char *prev_svc = sc->cur_svc;
	uint32_t prev_sid = sc->cur_sid;
	lua_State *prev_running = sc->running;
	uint64_t prev_wid = sc->yield_wid;
	void (*prev_cancel)(script_t *, uint64_t, void *) = sc->yield_cancel;
	void *prev_io = sc->yield_io;
	sc->cur_svc = svc;
	sc->cur_sid = sid;
	sc->running = co;
	sc->yield_wid = 0;
	sc->yield_cancel = NULL;
	sc->yield_io = NULL;
	int timed = sc->budget_ms > 0 || sc->timing;
	double t0 = timed ? script_mono_ms() : 0;
	int rc = lua_resume(co, nargs);
	if (rc != LUA_YIELD && sc->yield_wid) {
		/* a wait began, then its yield raised (across a C-call boundary:
		 * a comparator of table.sort, a metamethod) and the callback went
		 * on or failed: what the wait arranged is undone */
		if (sc->yield_cancel)
			sc->yield_cancel(sc, sc->yield_wid, sc->yield_io);
		sc->yield_wid = 0;
		sc->yield_cancel = NULL;
		sc->yield_io = NULL;
	}
	*wid = sc->yield_wid;
	*cancel = (void *)sc->yield_cancel;
	*io = sc->yield_io;
	sc->cur_svc = prev_svc;
	sc->cur_sid = prev_sid;
	sc->running = prev_running;
	sc->yield_wid = prev_wid;
	sc->yield_cancel = prev_cancel;
	sc->yield_io = prev_io;
	if (timed) {
		double took = script_mono_ms() - t0;
		if (sc->timing)
			script_time_cb(sc, svc, what, took);
		if (sc->budget_ms > 0 && took > sc->budget_ms)
			script_log_slow(sc, svc, what, sid, took);
	}
	return rc;
}

/* After a resume of co (task t, or NULL for the first run): 0 with nres
 * results moved to sc->L; -1 failed (logged; co is dead); 1 waits again
 * (*wid, *cancel, *io say on what). */
static int
settle(script_t *sc, lua_State *co, int rc, int nres, const char *svc,
       const char *what, uint32_t sid, uint64_t wid)
{
	lua_State *L = sc->L;
	if (rc == 0) {
		lua_settop(co, nres);
		lua_xmove(co, L, nres);
		return 0;
	}
	if (rc == LUA_YIELD && wid)
		return 1;
	if (rc == LUA_YIELD) {
		/* coroutine.yield at a callback's own level: nothing would resume it */
		luaL_traceback(L, co, "a callback yielded without waiting on anything "
		               "(coroutine.yield in a callback: call it in a "
		               "coroutine of your own, or use moongate.sleep)", 0);
	} else {
		const char *msg = lua_tostring(co, -1);
		if (!msg)
			msg = lua_pushfstring(co, "(error object is a %s value)",
			                      luaL_typename(co, -1));
		luaL_traceback(L, co, msg, 0);
	}
	script_log_error(sc, svc, what, sid, lua_tostring(L, -1));
	lua_pop(L, 1);
	return -1;
}

/* script_int.h */
int
script_task_run(script_t *sc, int nargs, int nres, const char *svc,
                const char *what, uint32_t sid, struct script_task **task)
{
	lua_State *L = sc->L;
	int ref;
	lua_State *co = co_get(sc, &ref);
	lua_xmove(L, co, nargs + 1);
	sc->st.callbacks++;
	uint64_t wid;
	void *cancel, *io;
	int rc = resume(sc, co, nargs, svc, what, sid, &wid, &cancel, &io);
	int r = settle(sc, co, rc, nres, svc, what, sid, wid);
	if (r == 0) {
		co_put(sc, co, ref);
		return 0;
	}
	if (r < 0) {
		luaL_unref(L, LUA_REGISTRYINDEX, ref); /* dead: not reused */
		return -1;
	}
	struct script_task *t = calloc(1, sizeof *t);
	if (!t || map_put(&sc->waits, wid, t)) {
		free(t);
		if (cancel)
			((void (*)(script_t *, uint64_t, void *))cancel)(sc, wid, io);
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		script_log_error(sc, svc, what, sid, "out of memory: the callback "
		                 "waits and cannot be kept");
		return -1;
	}
	sc->st.waits++;
	t->wid = wid;
	t->co = co;
	t->co_ref = ref;
	t->owner_ref = LUA_NOREF;
	t->svc = svc;
	t->what = what;
	t->sid = sid;
	t->nres = nres;
	t->cancel = (void (*)(script_t *, uint64_t, void *))cancel;
	t->io = io;
	*task = t;
	return 1;
}

/* Free a task that no longer waits (its coroutine's ref goes with it, or
 * back to the pool when keep). */
static void
task_free(script_t *sc, struct script_task *t, int keep)
{
	if (keep)
		co_put(sc, t->co, t->co_ref);
	else
		luaL_unref(sc->L, LUA_REGISTRYINDEX, t->co_ref);
	luaL_unref(sc->L, LUA_REGISTRYINDEX, t->owner_ref);
	free(t);
}

/* script_int.h */
uint64_t
script_task_wait(lua_State *L, const char *who)
{
	script_t *sc = script_self(L);
	if (L == sc->running && sc->yield_wid) {
		/* the last wait's yield raised and the callback caught it (pcall):
		 * that wait is undone before this one begins */
		if (sc->yield_cancel)
			sc->yield_cancel(sc, sc->yield_wid, sc->yield_io);
		sc->yield_wid = 0;
		sc->yield_cancel = NULL;
		sc->yield_io = NULL;
	}
	if (L != sc->running || sc->yield_wid) {
		luaL_error(L, "%s: can only wait in a callback's own coroutine (a "
		           "session, timer or handshake callback or a console "
		           "command, not a coroutine of your own or a module's "
		           "loading)", who);
		return 0;
	}
	if (sc->waits.count >= sc->waits_max) {
		luaL_error(L, "%s: too many callbacks waiting (lua.waits_max = %d)",
		           who, (int)sc->waits_max);
		return 0;
	}
	sc->yield_wid = ++sc->next_wid;
	sc->yield_cancel = NULL;
	sc->yield_io = NULL;
	return sc->yield_wid;
}

/* script_int.h */
void
script_task_on_cancel(lua_State *L, void (*cancel)(script_t *, uint64_t, void *),
                      void *io)
{
	script_t *sc = script_self(L);
	sc->yield_cancel = cancel;
	sc->yield_io = io;
}

/* script_int.h */
void
script_task_unwait(lua_State *L)
{
	script_t *sc = script_self(L);
	sc->yield_wid = 0;
	sc->yield_cancel = NULL;
	sc->yield_io = NULL;
}

/* script_int.h */
int
script_task_wake(script_t *sc, uint64_t wid, int nargs)
{
	lua_State *L = sc->L;
	struct script_task *t = map_del(&sc->waits, wid);
	if (!t) {
		lua_pop(L, nargs);
		return -1;
	}
	lua_xmove(L, t->co, nargs);
	uint64_t nwid;
	void *cancel, *io;
	t->cancel = NULL; /* what it waited on is over */
	t->running = 1;
	int rc = resume(sc, t->co, nargs, t->svc, t->what, t->sid, &nwid, &cancel, &io);
	int r = settle(sc, t->co, rc, t->nres, t->svc, t->what, t->sid, nwid);
	t->running = 0;
	if (t->dropped) { /* its session closed while it ran: nothing follows */
		if (r > 0 && cancel)
			((void (*)(script_t *, uint64_t, void *))cancel)(sc, nwid, io);
		if (r == 0)
			lua_pop(L, t->nres);
		task_free(sc, t, r == 0);
		return 0;
	}
	if (r > 0) { /* waits again */
		if (map_put(&sc->waits, nwid, t)) {
			if (cancel)
				((void (*)(script_t *, uint64_t, void *))cancel)(sc, nwid, io);
			script_log_error(sc, t->svc, t->what, t->sid, "out of memory: "
			                 "the callback waits and cannot be kept");
			r = -1;
		} else {
			sc->st.waits++;
			t->wid = nwid;
			t->cancel = (void (*)(script_t *, uint64_t, void *))cancel;
			t->io = io;
			return 0;
		}
	}
	int top = lua_gettop(L);
	if (t->done)
		t->done(sc, t, r);
	if (r == 0)
		lua_settop(L, top - t->nres);
	task_free(sc, t, r == 0);
	return 0;
}

/* script_int.h */
void
script_task_drop(script_t *sc, struct script_task *t)
{
	if (t->running) { /* script_task_wake frees it when it returns */
		t->dropped = 1;
		sc->st.cancelled++;
		return;
	}
	map_del(&sc->waits, t->wid);
	if (t->cancel)
		t->cancel(sc, t->wid, t->io);
	sc->st.cancelled++;
	task_free(sc, t, 0);
}

/* moongate.sleep(ms): the callback waits ms milliseconds (0: until the
 * loop's next turn); the rest of the server goes on. */
static void
sleep_cancel(script_t *sc, uint64_t wid, void *io)
{
	(void)wid;
	timers_cancel(sc->timers, io);
}

int
script_task_sleep(lua_State *L)
{
	script_t *sc = script_self(L);
	lua_Number ms = luaL_checknumber(L, 1);
	if (!(ms >= 0 && ms <= 1e10))
		return luaL_argerror(L, 1, "0 .. 1e10 ms");
	uint64_t wid = script_task_wait(L, "moongate.sleep");
	struct timer *tm;
	int rc = timers_add(sc->timers, sc->now + (uint64_t)(ms * 1000), 0,
	                    SCRIPT_SLEEP_DATA(wid), &tm);
	if (rc) {
		script_task_unwait(L);
		if (rc == TIMERS_EFULL)
			return luaL_error(L, "moongate.sleep: too many timers "
			                  "(lua.timers_max = %d)", (int)sc->timers_max);
		return luaL_error(L, "moongate.sleep: out of memory");
	}
	script_task_on_cancel(L, sleep_cancel, tm);
	return lua_yield(L, 0);
}

/* script_int.h: after lua_close, so no ref is touched. */
void
script_task_release(script_t *sc)
{
	for (uint32_t i = 0; i < sc->waits.cap; i++) {
		struct map_slot *sl = &sc->waits.slots[i];
		if (sl->key && sl->val)
			free(sl->val);
	}
	map_clear(&sc->waits);
	for (uint32_t i = 0; i < sc->lanes.cap; i++) {
		struct map_slot *sl = &sc->lanes.slots[i];
		if (sl->key && sl->val)
			script_lane_free(sl->val);
	}
	map_clear(&sc->lanes);
}
