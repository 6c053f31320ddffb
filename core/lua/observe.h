/*
 * observe.h - what the operators' endpoint (core/server/metrics.h) says
 * of this server process: every counter (counters.h), the sessions
 * by state and transport, closes by code, RTT and loss histograms of the
 * live sessions, retransmissions, FEC and message totals (live plus
 * released: gate_retired), the send queues, Lua callback time by service
 * and callback, the services' own samples (moongate.on_metrics), the
 * worker and its restarts. Prometheus text for /metrics; JSON for the
 * status page (/status.json). Owned by core/main.c; here, in the Lua
 * runtime's layer, because it reads the gate (proto), the Lua state and
 * writes through metrics.h (server).
 */
#ifndef MOONGATE_OBSERVE_H
#define MOONGATE_OBSERVE_H

#include <stdint.h>

#include "gate.h"
#include "metrics.h"
#include "script.h"

#define OBSERVE_CODES 64 /* distinct close codes counted (the rest: "other") */

struct observe {
	gate_t *g;
	script_t *sc;            /* NULL: the built-in echo */
	script_counters_fn counters;
	void *counters_user;
	metrics_t *m;
	const char *node;
	const char *version;
	int worker;              /* the slot, -1 for a lone server */
	int restarts;            /* times this slot was restarted before */
	double started;          /* monotonic seconds at start */
	struct { int code; uint64_t n; } codes[OBSERVE_CODES];
	int ncodes;
	uint64_t other_codes;
};

/* What observe_start needs of the process (core/main.c fills it in). */
struct observe_setup {
	struct ev_loop *loop;        /* the server's: the endpoint runs on it */
	const struct config *cfg;    /* metrics, metrics_www, node_id */
	gate_t *g;
	script_t *sc;                /* NULL: the built-in echo */
	script_counters_fn counters; /* every counter of the server */
	void *counters_user;
	int worker;                  /* the slot, -1 for a lone server */
	int restarts;                /* times this slot was restarted before */
	const char *version;
	const char *www;             /* the source tree's www/ (the last choice
	                                for the status page's files) */
};
/* Fill o from s, give the Lua runtime the status JSON (moongate.status),
 * and, when cfg->metrics names an address, start the endpoint there
 * (core/server/metrics.c), announced on stdout ("moongate: metrics HOST
 * PORT") and in the log. 0, or -1 (logged): the server cannot start. */
int observe_start(struct observe *o, const struct observe_setup *s);
/* Monotonic seconds (for started). */
double observe_now(void);
/* A session closed with code. */
void observe_close(struct observe *o, int code);
/* The status JSON, malloc'ed (moongate.status_json). */
char *observe_status(void *user, size_t *len);
/* metrics_render_fn: user is the struct observe. */
void observe_render(struct mbuf *b, enum metrics_what what, void *user);

#endif
