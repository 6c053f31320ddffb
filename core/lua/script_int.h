/*
 * script_int.h - what the files of the Lua runtime share; private to
 * core/lua/script*.c, not part of script.h:
 *
 *   script.c          create/release, pcall, "moongate.core", the console
 *   script_service.c  services: loading, callbacks for accept and events
 *   script_session.c  session objects, moongate.session/sessions/broadcast
 *   script_timer.c    moongate.after/every over the timer set (timers.c)
 *   script_sync.c     moongate.relay/frames
 *   script_config.c   config.lua
 *   script_crypto.c   moongate.verify_ed25519, base64url
 *   script_task.c     callbacks in coroutines: run, wait, wake, cancel;
 *                     moongate.sleep
 */
#ifndef MOONGATE_SCRIPT_INT_H
#define MOONGATE_SCRIPT_INT_H

#include <stdint.h>

#include <lua.h>

#include "script.h"
#include "map.h"
#include "net.h"
#include "redis.h"
#include "http.h"
#include "timers.h"

#define SESSION_MT "moongate.session"

/* A session object: the session is looked up by sid on every use, so a
 * kept object never points at a freed session. */
struct lsession {
	uint32_t sid;
	uint8_t dead;           /* its session closed: every method says so */
};

/* The callbacks of a service that moongate calls. */
enum script_cb {
	SCRIPT_CB_HANDSHAKE,
	SCRIPT_CB_CONNECT,
	SCRIPT_CB_MESSAGE,
	SCRIPT_CB_CLOSE,
	SCRIPT_CB_OFFLINE,
	SCRIPT_CB_RESUME,
	SCRIPT_CB_PATH,
	SCRIPT_CB_N
};

struct script_task;
struct script_lane;

#define SCRIPT_POOL_MAX 64 /* finished coroutines kept for the next callback */

#define SCRIPT_CBT_MAX 128 /* (service, callback) pairs timed for metrics */

struct script {
	lua_State *L;
	gate_t *g;
	uint64_t now;
	int budget_ms;
	int timing;              /* 1: callbacks are timed (metrics on) */
	int ncbt;
	struct { const char *svc, *what; uint64_t runs; double ms; } cbt[SCRIPT_CBT_MAX];
	uint32_t timers_max;     /* lua.timers_max */
	int dgram_max;           /* the smallest session_dgram_room a session
	                            of this server can have (FEC listeners) */
	int nsvc;
	char names[CONFIG_SERVICES_MAX][64];
	int svc_ref[CONFIG_SERVICES_MAX]; /* the table service i returned */
	int cb_key[SCRIPT_CB_N]; /* the callback names, as Lua strings */
	int sessions_ref, empty_ref, trace_ref;
	int settings_ref;        /* config.lua's `settings` table (or {}) */
	uint8_t secret[32];      /* the server secret: keys of moongate.sign */
	timers_t *timers;        /* moongate.after/every; data: the handles */
	struct script_stats st;  /* timers and memory_kb: see script_stats */
	/* The callback running now (script_pcall): the keys of what it logs */
	const char *cur_svc;
	uint32_t cur_sid;
	script_counters_fn counters; /* moongate.server_stats (script.h) */
	void *counters_user;
	char *(*status)(void *user, size_t *len); /* moongate.status_json */
	void *status_user;
	script_answer_fn answer; /* the reply of a console command that waited */
	void *answer_user;
	struct map routes;       /* sid -> struct script_route: relay:route */
	/* Callbacks that wait (core/lua/script_task.c) */
	struct map waits;        /* wait id -> struct script_task */
	struct map lanes;        /* sid -> struct script_lane, while a callback
	                            of that session waits */
	uint64_t next_wid;       /* the last wait id given */
	lua_State *running;      /* the callback coroutine running now, or NULL */
	uint64_t yield_wid;      /* the wait the running coroutine yields for */
	void (*yield_cancel)(script_t *, uint64_t wid, void *io);
	void *yield_io;          /* ... and how to call it off */
	uint32_t waits_max;      /* lua.waits_max */
	uint32_t queue_max;      /* lua.queue_max */
	/* moongate.redis (core/lua/script_redis.c) */
	struct ev_loop *loop;    /* script_set_loop; NULL: no I/O (--check) */
	net_t *net;              /* its clock */
	struct redis_options redis_opts;
	int redis_ref;           /* registry: every client made, kept */
	char redis_url[REDIS_URL_MAX]; /* config's redis.url ("": none) */
	char node_id[64];        /* config's node_id, or the host name */
	char node_url[128];      /* config's node_url */
	int worker;              /* workers: this worker's slot (0 alone) */
	/* moongate.http (core/lua/script_http.c): made on first use */
	struct http *http;
	struct http_options http_opts;
	int pool_ref[SCRIPT_POOL_MAX];
	lua_State *pool[SCRIPT_POOL_MAX];
	int npool;
};

/* A callback that waits: its coroutine, parked under its wait id until
 * script_task_wake. done is called when it ends (rc 0: its nres results
 * on sc->L, popped by the caller after done; -1: it failed, logged). */
struct script_task {
	uint64_t wid;
	lua_State *co;
	int co_ref;             /* the coroutine, kept while it waits */
	int owner_ref;          /* what done needs alive (a timer's handle), or LUA_NOREF */
	const char *svc, *what; /* for the log: static or sc->names[i] */
	uint32_t sid;
	int nres;
	void (*done)(script_t *sc, struct script_task *t, int rc);
	void *arg;              /* done's: the job, the timer handle */
	void (*cancel)(script_t *sc, uint64_t wid, void *io);
	void *io;               /* what it waits on, for cancel */
	uint8_t running;        /* being resumed (script_task_wake) */
	uint8_t dropped;        /* dropped while running: freed when it returns */
};

/* Run the function below nargs arguments on sc->L in a coroutine. 0: its
 * nres results on sc->L; -1: it failed (logged, nothing left); 1: it waits
 * (nothing left): *task is parked, the caller sets done and arg. */
int script_task_run(script_t *sc, int nargs, int nres, const char *svc,
                    const char *what, uint32_t sid, struct script_task **task);
/* Called by a function that makes the running callback wait, before it
 * arranges its wakeup: the wait id, or a Lua error (not in a callback's own
 * coroutine, lua.waits_max reached); who names the function in the error.
 * Then, once the wakeup is arranged, `return lua_yield(L, 0)`; if arranging
 * it fails, script_task_unwait before raising. script_task_on_cancel says
 * what to call (with io) if the task is dropped before it wakes. */
uint64_t script_task_wait(lua_State *L, const char *who);
void script_task_on_cancel(lua_State *L, void (*cancel)(script_t *, uint64_t, void *),
                           void *io);
void script_task_unwait(lua_State *L);
/* Wake the task waiting on wid with the nargs values on top of sc->L (they
 * are taken, whatever happens): what its wait returns. 0, or -1 when no
 * task waits on wid (it was dropped: its session closed). */
int script_task_wake(script_t *sc, uint64_t wid, int nargs);
/* Drop a waiting task: its coroutine is never resumed. */
void script_task_drop(script_t *sc, struct script_task *t);
/* Free every task and lane (script_release, after lua_close). */
void script_task_release(script_t *sc);
/* A session's lane (core/lua/script_service.c): freed with its queue. */
void script_lane_free(struct script_lane *lane);
/* moongate.redis (core/lua/script_redis.c): the client metatable; core's
 * redis_client and redis_subscribe. */
void script_redis_open(script_t *sc);
int script_redis_client(lua_State *L);
int script_redis_subscribe(lua_State *L);
/* core.http_request (core/lua/script_http.c) */
int script_http_request(lua_State *L);
/* moongate.sleep(ms) */
int script_task_sleep(lua_State *L);
/* A timer's data in sc->timers that wakes a sleeping task: odd, where a
 * timer handle's address is even. */
#define SCRIPT_SLEEP_DATA(wid) ((void *)(uintptr_t)(((wid) << 1) | 1))
#define SCRIPT_SLEEP_WID(data) ((uint64_t)(uintptr_t)(data) >> 1)
#define SCRIPT_IS_SLEEP(data) ((uintptr_t)(data) & 1)

/* The log lines of a failed or slow callback (core/lua/script.c). */
void script_log_error(script_t *sc, const char *svc, const char *what,
                      uint32_t sid, const char *msg);
void script_log_slow(script_t *sc, const char *svc, const char *what,
                     uint32_t sid, double took_ms);
double script_mono_ms(void);
/* A callback's run of ms, into the (service, callback) times (metrics). */
void script_time_cb(script_t *sc, const char *svc, const char *what, double ms);

/* relay:route(id, session): the session's unreliable datagrams go into
 * the relay as member id's states without a Lua callback. */
struct lrelay;
struct script_route {
	struct lrelay *relay;
	uint32_t id;
};
/* 1 when the datagram ev of s was taken by its route (core/lua/script_sync.c). */
int script_sync_routed(script_t *sc, session_t *s, const struct session_event *ev);
/* Forget every route of s (its session closed). */
void script_sync_unroute(script_t *sc, uint32_t sid);

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

/* Services (core/lua/script_service.c): the callback names, made once;
 * require service i (sc->names[i]) into sc->svc_ref[i]: 0, or -1 with err
 * (the service, the file, the line). */
void script_service_open(script_t *sc);
int script_service_load(script_t *sc, int i, char *err, size_t errlen);

/* Session objects (core/lua/script_session.c): the metatable and the
 * registry tables; the object of s pushed on L (made on first use);
 * moongate.session, moongate.sessions, moongate.broadcast. */
void script_session_open(script_t *sc);
struct lsession *script_session_push(script_t *sc, lua_State *L, session_t *s);
int script_session_get(lua_State *L);
int script_session_list(lua_State *L);
int script_session_broadcast(lua_State *L);

/* Timers (core/lua/script_timer.c): the timer metatable; the fire
 * callback of sc->timers (user: the script; runs the timer's function
 * under pcall); moongate.after / moongate.every. */
void script_timer_open(script_t *sc);
void script_timer_fire(void *user, void *data, int once, uint64_t now);
int script_timer_after(lua_State *L);
int script_timer_every(lua_State *L);

/* moongate.relay{...} and moongate.frames{...} (core/lua/script_sync.c); the
 * script is upvalue 1, as for every function of "moongate.core". */
int script_sync_relay(lua_State *L);
int script_sync_frames(lua_State *L);

/* moongate.verify_ed25519, moongate.base64url_decode/_encode
 * (core/lua/script_crypto.c). */
int script_crypto_verify_ed25519(lua_State *L);
int script_crypto_b64url_decode(lua_State *L);
int script_crypto_b64url_encode(lua_State *L);

#endif
