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
 * Transports. The url says which: "udp://host:port" or "tcp://host:port"
 * use that one only; "auto://host:port" (both on one port) or a list
 * "udp://h:p1,tcp://h:p2" start on UDP, move to TCP when UDP gets no answer
 * (fallback_ms in the handshake, path_timeout_ms once open), keep probing
 * UDP every probe_ms while on TCP, and move back when it answers. The
 * session is the same whatever carries it: nothing is lost or repeated.
 * A UDP socket is connected to the server; on TCP, packets travel in
 * frames (len u16 LE | packet). Sends made between polls leave at once
 * (datagrams) or when the socket takes them (TCP).
 *
 * Resume. When the server allows it (its resume_grace, told in the
 * WELCOME), a session that hears nothing for timeout_ms goes offline
 * (MGCLIENT_OFFLINE) instead of closing: sends are queued, and every
 * reconnect_ms the client opens fresh sockets (a new local port, a new TCP
 * connection) and knocks. The first answer brings it back
 * (MGCLIENT_RESUME); what was unacknowledged in either direction is
 * retransmitted. After the grace it closes with "expired".
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
	int fallback_ms;       /* auto: no answer on UDP in the handshake this
	                          long: try TCP too (1000) */
	int path_timeout_ms;   /* auto: nothing heard on the path in use this
	                          long: move to the other transport (2500) */
	int probe_ms;          /* auto, on TCP: probe UDP this often (2000) */
	int reconnect_ms;      /* offline: fresh sockets this often (500) */
	int tcp_linger_ms;     /* auto: back on UDP, the TCP connection is
	                          closed this long after (5000) */
};
void mgclient_options_default(struct mgclient_options *o);

enum mgclient_event_type {
	MGCLIENT_OPEN = SESSION_EV_OPEN,
	MGCLIENT_MESSAGE = SESSION_EV_MESSAGE,
	MGCLIENT_DATAGRAM = SESSION_EV_DATAGRAM,
	MGCLIENT_CLOSE = SESSION_EV_CLOSE,
	MGCLIENT_OFFLINE = SESSION_EV_OFFLINE, /* nothing heard: reconnecting */
	MGCLIENT_RESUME = SESSION_EV_RESUME,   /* back, nothing lost */
	MGCLIENT_PATH = SESSION_EV_PATH,       /* now on ev->transport */
};

enum mgclient_transport { MGCLIENT_UDP = 1, MGCLIENT_TCP = 2 };

struct mgclient_event {
	int type;            /* MGCLIENT_* */
	const uint8_t *data; /* payload; valid until the next next_event/poll */
	size_t len;
	uint32_t seq;        /* DATAGRAM */
	int code;            /* CLOSE: session_close_code or the peer's code */
	const char *reason;  /* CLOSE */
	int remote;          /* CLOSE: 1 when the server closed */
	int transport;       /* PATH, RESUME: MGCLIENT_UDP or MGCLIENT_TCP */
};

/* url: "udp://host:port", "tcp://host:port", "auto://host:port", or
 * "udp://host:port,tcp://host:port" (IPv4, IPv6 in brackets, or a name
 * resolved once, blocking). hello (<= WIRE_HELLO_MAX) reaches the
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
int mgclient_fd(const mgclient_t *c);     /* the socket in use, to wait on
                                             readability; -1 once the
                                             session has ended (sockets
                                             close at once, before the
                                             CLOSE event is taken) */
/* Every open socket (at most 2): wait on all of them, or on
 * mgclient_check. Returns how many were written to fds. */
int mgclient_fds(const mgclient_t *c, int fds[2]);
/* MGCLIENT_UDP or MGCLIENT_TCP: the transport in use. */
int mgclient_transport(const mgclient_t *c);
/* Open a new UDP socket (a new local port), as after a change of network:
 * the server sees the client at a new address and follows it. 0, or -1
 * with errno when no socket could be made, or the client has no UDP. */
int mgclient_rebind(mgclient_t *c);
uint64_t mgclient_check(const mgclient_t *c, uint64_t now);
void mgclient_stats(const mgclient_t *c, struct session_stats *st);
/* Monotonic clock in microseconds, for poll's now. */
uint64_t mgclient_now(void);

#endif
