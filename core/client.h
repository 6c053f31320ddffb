/*
 * client.h - libmoongate-client: the C API a game client embeds (Unity via
 * P/Invoke, Unreal, native engines, the Lua binding). The same session,
 * wire and KCP code as the server; no threads, no event library: call
 * mgclient_poll(c, now) once per frame (or when mgclient_fd is readable,
 * or at mgclient_check), then drain events with mgclient_next_event.
 *
 *   char err[128];
 *   mgclient_t *c = mgclient_connect("udp://127.0.0.1:7777", "v1", 2, NULL,
 *                                    err, sizeof err);
 *   for (;;) {                                  // the game's frame loop
 *       mgclient_poll(c, mgclient_now());
 *       struct mgclient_event ev;
 *       while (mgclient_next_event(c, &ev)) { ... }
 *       mgclient_send(c, "hi", 2);
 *   }
 *
 * The UDP socket is connected to the server. On TCP, packets travel in
 * frames (len u16 LE | packet). Sends made between polls leave at once
 * (datagrams) or when the socket takes them (TCP).
 *
 * Acknowledgements of what poll received wait for the game's next send and
 * ride on it, or leave at the next KCP interval flush (10 ms, run by poll)
 * when the game sends nothing: an answer costs one packet instead of two.
 * opts->session.ack_delay = 0 sends every ack at once.
 *
 * Errors: 0 or a length on success, negative SESSION_E* codes otherwise
 * (session.h); connect fills err.
 */
#ifndef MOONGATE_CLIENT_H
#define MOONGATE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

typedef struct mgclient mgclient_t;

struct mgclient_options {
	struct session_config session; /* mtu, heartbeat, timeout, KCP profile */
	int frame_max;         /* TCP: largest frame accepted (65535) */
	int event_queue_max;   /* events waiting for mgclient_next_event before
	                          the session closes with "event queue full" (65536) */
	int buffer_max;        /* TCP: bytes waiting for the socket before the
	                          session closes with "backpressure" (4 MiB) */
};
void mgclient_options_default(struct mgclient_options *o);

enum mgclient_event_type {
	MGCLIENT_OPEN = SESSION_EV_OPEN,
	MGCLIENT_MESSAGE = SESSION_EV_MESSAGE,
	MGCLIENT_DATAGRAM = SESSION_EV_DATAGRAM,
	MGCLIENT_CLOSE = SESSION_EV_CLOSE,
};

struct mgclient_event {
	int type;            /* MGCLIENT_* */
	const uint8_t *data; /* payload; valid until the next next_event/poll */
	size_t len;
	uint32_t seq;        /* DATAGRAM */
	int code;            /* CLOSE: session_close_code or the peer's code */
	const char *reason;  /* CLOSE */
	int remote;          /* CLOSE: 1 when the server closed */
};

/* url: "udp://host:port" or "tcp://host:port" (IPv4, IPv6 in brackets, or a
 * name resolved once, blocking). hello (<= WIRE_HELLO_MAX) reaches the
 * server's handshake policy. opts NULL: defaults. The handshake starts at
 * once; MGCLIENT_OPEN (or CLOSE with the refusal) arrives through poll.
 * NULL with err filled on a bad url, a socket error or out of memory. */
mgclient_t *mgclient_connect(const char *url, const void *hello,
                             size_t hello_len, const struct mgclient_options *opts,
                             char *err, size_t errlen);
void mgclient_release(mgclient_t *c);

/* Read what the socket has, run timers. Returns the number of events
 * waiting, or SESSION_ECLOSED once the CLOSE event was taken. */
int mgclient_poll(mgclient_t *c, uint64_t now);
/* 1 and fills ev when an event was waiting, else 0. */
int mgclient_next_event(mgclient_t *c, struct mgclient_event *ev);

int mgclient_send(mgclient_t *c, const void *msg, size_t len);
int mgclient_send_unreliable(mgclient_t *c, const void *msg, size_t len);
/* Graceful close; MGCLIENT_CLOSE follows through poll. */
void mgclient_close(mgclient_t *c, int code, const char *reason);

int mgclient_state(const mgclient_t *c);  /* enum session_state */
int mgclient_fd(const mgclient_t *c);     /* to wait on readability; -1
                                             once the session has ended (the
                                             socket closes at once, before
                                             the CLOSE event is taken) */
uint64_t mgclient_check(const mgclient_t *c, uint64_t now);
void mgclient_stats(const mgclient_t *c, struct session_stats *st);
/* Monotonic clock in microseconds, for poll's now. */
uint64_t mgclient_now(void);

#endif
