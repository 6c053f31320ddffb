/*
 * callback_bench.c - what running a callback in a coroutine costs against
 * the pcall it replaced (issue 16; docs/BENCHMARKS.md, "Callbacks that
 * wait"). The same Lua function, `function(s, d, r, q) return true end`
 * (a message callback that does nothing), called N times with four
 * arguments and one result, two ways, in one process, interleaved:
 *
 *   pcall   lua_pcall with the traceback handler below it (the runtime's
 *           way before issue 16, script_pcall)
 *   resume  the function and its arguments moved to a pooled coroutine
 *           (lua_xmove), lua_resume, the result moved back, the coroutine
 *           kept for the next call (script_task_run when nothing waits)
 *
 *   timed   resume as above, timed as the runtime times every callback
 *           when the metrics endpoint is on (issue 18): two reads of
 *           CLOCK_MONOTONIC around it and the (service, callback) entry
 *           found among 8 by pointer and added to (script_time_cb)
 *
 *   build/callback_bench [N] [ROUNDS]
 *   RESULT bench=callback calls=N pcall_ns=... resume_ns=... ratio=... timed_ns=... timed_ratio=...
 *
 * ns per call, the median over ROUNDS rounds of each; ratio = resume /
 * pcall, timed_ratio = timed / resume.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static double
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int
traceback(lua_State *L)
{
	luaL_traceback(L, L, lua_tostring(L, 1), 1);
	return 1;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	int rounds = argc > 2 ? atoi(argv[2]) : 7;
	if (n < 1 || rounds < 1 || rounds > 99)
		return 2;
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	if (luaL_dostring(L, "return function(s, d, r, q) return true end"))
		return 1;
	int fn = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushcfunction(L, traceback);
	int tb = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L); /* a session object stand-in */
	int obj = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_State *co = lua_newthread(L);
	int co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	(void)co_ref;
	double pc[99], rs[99], tm[99];
	long sink = 0;
	/* script_time_cb's table: the 8th entry is the one timed */
	static const char *names[8] = { "a", "b", "c", "d", "e", "f", "g", "h" };
	struct { const char *svc, *what; uint64_t runs; double ms; } cbt[8];
	for (int k = 0; k < 8; k++) {
		cbt[k].svc = names[k];
		cbt[k].what = "message";
		cbt[k].runs = 0;
		cbt[k].ms = 0;
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = now_ns();
		for (long i = 0; i < n; i++) {
			lua_rawgeti(L, LUA_REGISTRYINDEX, tb);
			int h = lua_gettop(L);
			lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
			lua_rawgeti(L, LUA_REGISTRYINDEX, obj);
			lua_pushlstring(L, "hello, moongate!", 16);
			lua_pushboolean(L, 0);
			lua_pushnumber(L, (double)i);
			if (lua_pcall(L, 4, 1, h))
				return 1;
			sink += lua_toboolean(L, -1);
			lua_settop(L, h - 1);
		}
		double t1 = now_ns();
		for (long i = 0; i < n; i++) {
			lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
			lua_rawgeti(L, LUA_REGISTRYINDEX, obj);
			lua_pushlstring(L, "hello, moongate!", 16);
			lua_pushboolean(L, 0);
			lua_pushnumber(L, (double)i);
			lua_xmove(L, co, 5);
			if (lua_resume(co, 4))
				return 1;
			lua_settop(co, 1);
			lua_xmove(co, L, 1);
			sink += lua_toboolean(L, -1);
			lua_pop(L, 1);
		}
		double t2 = now_ns();
		for (long i = 0; i < n; i++) {
			struct timespec a, b;
			clock_gettime(CLOCK_MONOTONIC, &a);
			lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
			lua_rawgeti(L, LUA_REGISTRYINDEX, obj);
			lua_pushlstring(L, "hello, moongate!", 16);
			lua_pushboolean(L, 0);
			lua_pushnumber(L, (double)i);
			lua_xmove(L, co, 5);
			if (lua_resume(co, 4))
				return 1;
			lua_settop(co, 1);
			lua_xmove(co, L, 1);
			sink += lua_toboolean(L, -1);
			lua_pop(L, 1);
			clock_gettime(CLOCK_MONOTONIC, &b);
			double took = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
			const char *svc = names[7];
			for (int k = 0; k < 8; k++)
				if (cbt[k].svc == svc && cbt[k].what == cbt[7].what) {
					cbt[k].runs++;
					cbt[k].ms += took;
					break;
				}
		}
		double t3 = now_ns();
		pc[r] = (t1 - t0) / n;
		rs[r] = (t2 - t1) / n;
		tm[r] = (t3 - t2) / n;
	}
	qsort(pc, (size_t)rounds, sizeof pc[0], cmp);
	qsort(rs, (size_t)rounds, sizeof rs[0], cmp);
	qsort(tm, (size_t)rounds, sizeof tm[0], cmp);
	double p = pc[rounds / 2], q = rs[rounds / 2], t = tm[rounds / 2];
	printf("RESULT bench=callback calls=%ld rounds=%d pcall_ns=%.1f resume_ns=%.1f "
	       "ratio=%.3f timed_ns=%.1f timed_ratio=%.3f check=%ld runs=%llu\n", n, rounds,
	       p, q, q / p, t, t / q, sink % 7, (unsigned long long)cbt[7].runs % 7);
	lua_close(L);
	return 0;
}
