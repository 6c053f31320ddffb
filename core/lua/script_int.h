/*
 * script_int.h - what the files of the Lua runtime share (core/lua/script.c,
 * core/lua/script_sync.c); private to them, not part of script.h.
 */
#ifndef MOONGATE_SCRIPT_INT_H
#define MOONGATE_SCRIPT_INT_H

#include <stdint.h>

#include <lua.h>

#include "script.h"

#define SESSION_MT "moongate.session"

/* A session object: the session is looked up by sid on every use, so a
 * kept object never points at a freed session. */
struct lsession {
	uint32_t sid;
	uint8_t dead;           /* its session closed: every method says so */
};

struct timer;

struct script {
	lua_State *L;
	gate_t *g;
	uint64_t now;
	int budget_ms;
	uint32_t timers_max;     /* lua.timers_max */
	int dgram_max;           /* the smallest session_dgram_room a session
	                            of this server can have (FEC listeners) */
	int nsvc;
	char names[CONFIG_SERVICES_MAX][64];
	int svc_ref[CONFIG_SERVICES_MAX];
	int sessions_ref, empty_ref, trace_ref;
	int settings_ref;        /* config.lua's `settings` table (or {}) */
	uint8_t secret[32];      /* the server secret: keys of moongate.sign */
	struct timer **heap;
	uint32_t nheap, heapcap;
	uint64_t seq;
	struct script_stats st;
};

/* The script of a function of "moongate.core" (its upvalue 1). */
static inline script_t *
script_self(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

/* Call the function below its nargs arguments under pcall with the
 * traceback handler, timed against lua.budget_ms; svc and what name it in
 * the log ("service timer: callback"), sid 0 when no session is involved.
 * 0 with nres results on the stack, or -1 (logged, nothing left). */
int script_pcall(script_t *sc, int nargs, int nres, const char *svc,
                 const char *what, uint32_t sid);

/* Timers (core/lua/script_timer.c): the timer metatable, freeing every
 * pending timer, and moongate.after / moongate.every. */
void script_timer_open(script_t *sc);
void script_timer_release(script_t *sc);
int script_timer_after(lua_State *L);
int script_timer_every(lua_State *L);

/* moongate.relay{...} and moongate.frames{...} (core/lua/script_sync.c); the
 * script is upvalue 1, as for every function of "moongate.core". */
int script_sync_relay(lua_State *L);
int script_sync_frames(lua_State *L);

#endif
