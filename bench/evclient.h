/*
 * evclient.h - one libmoongate-client session driven by a libev loop, for
 * the bots that run many sessions in one process: the socket is watched
 * for reads, a timer fires at mgclient_check, and each wake-up polls the
 * client and hands its events to a callback.
 *
 *   struct evclient e = { .on_event = got, .data = me };
 *   if (evclient_start(&e, loop, "udp://127.0.0.1:7777", hello, n, &opts,
 *                      err, sizeof err) < 0) ...
 *   evclient_service(&e);         // also after sending from outside
 *
 * The struct lives in the caller's memory (an array of bots); only
 * on_event, after and data are set by the caller.
 */
#ifndef MOONGATE_BENCH_EVCLIENT_H
#define MOONGATE_BENCH_EVCLIENT_H

#include <ev.h>

#include <moongate/client.h>

struct evclient;
/* One event of a service; may call evclient_stop (the rest are dropped). */
typedef void evclient_event_fn(struct evclient *e,
                               const struct mgclient_event *ev, uint64_t now);
/* After the events of one service, unless stopped. */
typedef void evclient_after_fn(struct evclient *e, uint64_t now);

struct evclient {
	mgclient_t *c;         /* NULL when the connect failed */
	struct ev_loop *loop;
	int fd;                /* the socket watched, -1 when none */
	int done;              /* stopped: no more watching, no more events */
	uint64_t due;          /* when tm fires (mgclient_now clock) */
	int tick;              /* this service needs no read (mgclient_tick) */
	ev_io io;
	ev_timer tm;
	evclient_event_fn *on_event;
	evclient_after_fn *after; /* may be NULL */
	void *data;            /* the caller's */
};

/* Connect (mgclient_connect) and start watching. 0, or -1 with err filled
 * and e->done set. */
/* evclient_service when nothing is known to be readable (a timer, a
 * frame's send): with one socket, watched and not pending readable, the
 * client's clock and timers advance without a read (mgclient_tick). */
void evclient_refresh(struct evclient *e);

int evclient_start(struct evclient *e, struct ev_loop *loop, const char *url,
                   const void *hello, size_t hello_len,
                   const struct mgclient_options *opts, char *err,
                   size_t errlen);
/* Poll the client, deliver its events, call after, re-arm the timer. */
void evclient_service(struct evclient *e);
/* Time the timer for mgclient_check; an earlier timer already armed stays
 * (it re-arms when it fires). Call after a send made outside a service. */
void evclient_arm(struct evclient *e, uint64_t now);
/* Stop every watcher and set done; the client is left to the caller
 * (mgclient_release). Idempotent. */
void evclient_stop(struct evclient *e);

#endif
