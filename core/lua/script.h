/*
 * script.h - the Lua runtime (LuaJIT): config.lua, services, callbacks,
 * timers, session objects, send and broadcast. The only part of the
 * server that knows the Lua API (core/lua/script*.c).
 *
 * A service is a Lua module (in a config's service_path) that returns a
 * table of callbacks: handshake, connect, message, close (docs/LUA_API.md).
 * Every callback runs under pcall with a traceback: an error is logged
 * with the service, the callback and the session, and everything goes on.
 * A callback that runs past lua.budget_ms is logged too.
 *
 * Like the gate, the runtime has no clock and no event loop: the caller
 * passes `now` (microseconds, the gate's clock) and runs script_update when
 * script_check says a timer is due.
 */
#ifndef MOONGATE_SCRIPT_H
#define MOONGATE_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gate.h"
#include "session.h"

typedef struct script script_t;

/* Read config.lua into c (over its defaults). 0, or -1 with err naming the
 * file, the key and what was expected. */
int script_config_load(struct config *c, const char *file, char *err,
                       size_t errlen);

/* A Lua state with the services of c loaded (each module's top level runs
 * now). NULL with err (the service, the file, the line) when one fails. */
script_t *script_create(const struct config *c, gate_t *g, uint64_t now,
                        char *err, size_t errlen);
void script_release(script_t *sc);

/* The gate's accept callback: the services' handshake policy, each
 * service's handshake in a coroutine, in order. One that waits (sleep,
 * redis, http) makes the answer GATE_PENDING under v->ticket; when the
 * callbacks are done the runtime gives the verdict with gate_decide on its
 * gate. With v->ticket 0 (the client cannot wait) a handshake that waits
 * is dropped and the answer is GATE_PENDING all the same: the gate refuses
 * and says why. An error, at once or after a wait, refuses ("server
 * error"). */
void script_accept(script_t *sc, const struct gate_path *from,
                   const uint8_t *hello, size_t len, struct gate_verdict *v,
                   uint64_t now);
/* The gate's event callback: connect, message, close. */
void script_event(script_t *sc, session_t *s, const struct session_event *ev,
                  uint64_t now);

/* When the next timer is due (now + 1 hour when none). */
uint64_t script_check(const script_t *sc, uint64_t now);

/* Metrics (config `metrics`): time every callback (on: 1), and read what
 * each (service, callback) took so far; the services' own samples
 * (moongate.on_metrics) as Prometheus text or JSON, malloc'ed (NULL: none
 * or a failure, logged). */
void script_set_timing(script_t *sc, int on);
typedef void (*script_cbtime_fn)(const char *svc, const char *what,
                                 uint64_t runs, double ms, void *user);
void script_callback_times(const script_t *sc, script_cbtime_fn fn, void *user);
char *script_metrics(script_t *sc, int json, size_t *len);

/* An upgrade's drain deadline: every moongate.on_drain hook runs with
 * worker, the slot of the new worker that takes this one's place (they
 * move their players there). The number of hooks run. */
int script_drain(script_t *sc, int worker);
/* Run the timers due at now. */
void script_update(script_t *sc, uint64_t now);

/* One line of the admin console (help, status, sessions, reload, rooms,
 * and what services add: lualib/moongate/admin.lua), run in a coroutine:
 * 0 with the reply in out, -1 with the error in out, or SCRIPT_PENDING: the
 * command waits (moongate.sleep, redis, http) and its reply comes later
 * through the answer callback, with ticket. Without an answer callback, or
 * with ticket 0, a command that waits is dropped and answers an error. */
#define SCRIPT_PENDING 1
int script_command(script_t *sc, const char *line, uint64_t ticket, char *out,
                   size_t outlen, uint64_t now);
/* The reply of a console command that answered SCRIPT_PENDING: err 0 and
 * the reply text, or err 1 and the error. text is valid during the call. */
typedef void (*script_answer_fn)(uint64_t ticket, int err, const char *text,
                                 void *user);
void script_set_answer(script_t *sc, script_answer_fn fn, void *user);
/* Reload every service file that changed (SIGHUP, the console, the file
 * watch): lualib/moongate/loader.lua. 0 with a summary in out, or -1 when a
 * module was refused (its old code keeps running; the log has file:line). */
int script_reload(script_t *sc, char *out, size_t outlen, uint64_t now);

struct script_stats {
	uint64_t callbacks;   /* Lua callbacks run */
	uint64_t errors;      /* of which raised an error */
	uint64_t slow;        /* of which ran past the budget */
	uint64_t objects;     /* session objects alive in Lua (not yet collected) */
	uint64_t sessions;    /* sessions with a live object */
	uint64_t timers;      /* timers pending */
	uint64_t memory_kb;   /* Lua heap */
	uint64_t routed;      /* datagrams put into a relay by relay:route,
	                         without a callback */
	uint64_t waiting;     /* callbacks waiting now (sleep, redis, http) */
	uint64_t waits;       /* waits begun */
	uint64_t queued;      /* session events queued behind a waiting callback */
	uint64_t dropped;     /* of which dropped: a datagram past lua.queue_max,
	                         or any left when the session closed */
	uint64_t cancelled;   /* waiting callbacks dropped: their session closed */
	uint64_t skipped;     /* timer firings skipped: the last one still waits */
};
void script_stats(const script_t *sc, struct script_stats *st);

/* The server's counters for moongate.server_stats() (and the console's
 * `stats`): the owner fills up to max of them, each in a group ("gate",
 * "net", "lua", "log", ...); returns how many. Without it (--check),
 * moongate.server_stats() returns {}. */
struct script_counter {
	const char *group, *name;
	uint64_t value;
};
#define SCRIPT_COUNTERS_MAX 128
typedef size_t (*script_counters_fn)(struct script_counter *c, size_t max,
                                     void *user);
void script_set_counters(script_t *sc, script_counters_fn fn, void *user);
/* The status page's JSON (core/observe.c), malloc'ed, for
 * moongate.status_json() and the console's `status`. */
void script_set_status(script_t *sc, char *(*fn)(void *user, size_t *len),
                       void *user);

/* The loop and clock the runtime's I/O (moongate.redis) runs on; without
 * it (--check) moongate.redis raises. */
struct ev_loop;
void script_set_loop(script_t *sc, struct ev_loop *loop, net_t *net);
/* Every Redis client's counters, summed (up: how many are up). */
void script_redis_stats(const script_t *sc, struct redis_stats *st);
/* moongate.http's counters (zero before its first request). */
struct http_stats;
void script_http_stats(const script_t *sc, struct http_stats *st);

#endif
