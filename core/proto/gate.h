/*
 * gate.h - the server side of sessions, I/O-free: the stateless handshake
 * challenge, the session table, the raw KCP table, and the timers of every
 * session in one heap.
 *
 * net hands every datagram and TCP frame to gate_input with the path it
 * came from; gate answers through the output callback with a path to send
 * to. Nothing is allocated for a client before it echoed a valid cookie
 * (a keyed MAC over its address, a coarse time and its public key), and
 * before that no reply is larger than the packet that caused it. A TCP
 * path is already validated by TCP's own handshake, so a HELLO on TCP is
 * treated as an INIT.
 *
 * Time is microseconds as in session.h. gate_check(now) says when
 * gate_update is next due; an idle session costs nothing until its own
 * next deadline.
 *
 * The accept callback (the owner's policy) may answer at once or later:
 * with GATE_PENDING the client waits in a pending record (everything the
 * session needs from its INIT kept, secrets scrubbed when done) until
 * gate_decide gives the verdict under the ticket the gate put in the
 * verdict. At most pending_max wait at once, each at most pending_ms; a
 * repeated INIT or HELLO of a waiting client asks nothing again and is
 * answered with the verdict, as a repeated INIT of an admitted one is.
 */
#ifndef MOONGATE_GATE_H
#define MOONGATE_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "path.h"     /* struct gate_path, GATE_UDP, GATE_TCP */
#include "session.h"

typedef struct gate gate_t;

struct gate_config {
	struct session_config session;
	uint8_t secret[WIRE_SECRET]; /* cookie key; random when all zero. The
	                                static key of handshake v2 comes from
	                                it too (wire_static_keypair) */
	int allow_unpinned;          /* 1: clients without the server's key
	                                (handshake v1, hello in clear) are let
	                                in; 0: refused (1) */
	int cookie_slot_s;           /* a cookie is valid for 1..2 slots (10) */
	int max_sessions;            /* sessions, raw ones included (100000) */
	int max_raw_per_addr;        /* raw KCP sessions from one IPv4 address
	                                or IPv6 /64 (64; 0: no limit) */
	int max_raw_sessions;        /* raw KCP sessions at once (0: a quarter
	                                of max_sessions), so that datagrams from
	                                unproven (spoofable) addresses never
	                                take the room of proven clients */
	int max_half_open;           /* sessions whose WELCOME is not yet
	                                confirmed by the client (10000; 0: no
	                                limit): more are refused "server busy" */
	int64_t queued_bytes_max;    /* reliable bytes queued or unacked over
	                                all sessions (1 GiB; 0: no limit): past
	                                it, the session holding the most is
	                                closed ("backpressure", reason "server
	                                memory budget") until under it */
	int resets_per_s;            /* stateless RESETs sent per second at most,
	                                in answer to packets for sessions this
	                                server does not know (1000; 0: none) */
	int pending_max;             /* handshakes waiting for their verdict
	                                (GATE_PENDING) at once (1024; 0: none
	                                may wait): one more that would wait is
	                                refused "server busy" */
	int pending_ms;              /* a verdict not given within this is a
	                                refusal, "handshake policy timeout"
	                                (5000) */
	uint32_t plain_listeners;    /* bit i set: sessions on listener i are
	                                authenticated only, bodies in clear (0) */
	struct {
		uint8_t data, parity;    /* FEC on listener i's UDP paths (0: off) */
	} fec[32];
	int workers;                 /* > 1: this gate is worker `worker` of that
	                                many (core/server/workers.h): every
	                                session id it makes has `worker` as its
	                                low byte, which steers its packets here */
	int worker;
};

/* Bounds of a listener's FEC (and of what a client accepts in a WELCOME). */
#define GATE_FEC_DATA_MAX 32
#define GATE_FEC_PARITY_MAX 8
void gate_config_default(struct gate_config *c);

/* Policy answer of the accept callback. */
struct gate_verdict {
	int code;                      /* 0 accept; else a refusal code (1..65535),
	                                  or GATE_PENDING (the accept callback
	                                  only): the verdict comes later */
	char reason[WIRE_REASON_MAX + 1];
	uint64_t ticket;               /* set by the gate before the accept
	                                  callback: what gate_decide takes. 0:
	                                  this client cannot wait (a raw KCP
	                                  client, or pending_max reached); a
	                                  GATE_PENDING then is a refusal */
};
#define GATE_PENDING (-1)

struct gate_callbacks {
	void (*output)(const struct gate_path *to, const uint8_t *pkt, size_t len,
	               void *user);
	/* A client proved its address: accept (code 0), refuse, or answer
	 * GATE_PENDING and give the verdict later with gate_decide(v->ticket)
	 * (never from inside this callback). hello is the client's hello bytes
	 * (NULL, 0 for raw KCP), valid during the call only. May be NULL:
	 * accept all. */
	void (*accept)(gate_t *g, const struct gate_path *from, const uint8_t *hello,
	               size_t hello_len, struct gate_verdict *v, void *user);
	/* Every session event (session.h). After SESSION_EV_CLOSE returns the
	 * session is released by the gate; do not keep the pointer. */
	void (*event)(gate_t *g, session_t *s, const struct session_event *ev,
	              void *user);
	/* The session on a TCP connection closed: net should close the
	 * connection (graceful: after what is queued, by shutdown and EOF). May
	 * be NULL. */
	void (*close_conn)(gate_t *g, uint32_t conn, int graceful, void *user);
	/* A TCP connection now carries an open session (it opened there, or
	 * the client resumed or moved there, or it was mapped to a session
	 * already open): net can lift its handshake deadline. Called once per
	 * connection, and only by the gate: the owner needs no bookkeeping of
	 * its own. May be NULL. */
	void (*bind_conn)(gate_t *g, uint32_t conn, void *user);
	/* A limit refused a peer or closed a session (why names the config
	 * key); for the log, which should rate-limit it. May be NULL. */
	void (*limited)(gate_t *g, const struct gate_path *from, const char *why,
	                void *user);
};

gate_t *gate_create(const struct gate_config *c, const struct gate_callbacks *cb,
                    void *user);
/* Close every session (SESSION_CLOSE_SHUTDOWN, not lingering), refuse
 * every pending handshake ("server shutdown"), then free. */
void gate_release(gate_t *g, uint64_t now);

/* One datagram or TCP frame from a peer. pkt may be modified. */
void gate_input(gate_t *g, const struct gate_path *from, uint8_t *pkt,
                size_t len, uint64_t now);
/* net lost a TCP connection (EOF, reset, error). When its session sent
 * there, it moves to another live path, goes offline (resume_grace), or
 * ends with SESSION_CLOSE_DISCONNECT, "disconnected" (reason "eof" or
 * empty) or "disconnected: " and reason. */
void gate_conn_lost(gate_t *g, uint32_t conn, const char *reason, uint64_t now);

/* The verdict of a handshake the accept callback left GATE_PENDING: code
 * 0 makes the session and sends the WELCOME (the limits of the gate apply
 * again: it may still be "server full"); a refusal code sends the REFUSE
 * with v's reason. 0, or -1 when no handshake waits on ticket (it timed
 * out, or the gate let it go): the verdict is ignored. */
int gate_decide(gate_t *g, uint64_t ticket, const struct gate_verdict *v,
                uint64_t now);

void gate_update(gate_t *g, uint64_t now);
uint64_t gate_check(const gate_t *g, uint64_t now);

/* After session_send/close from outside a gate callback, the session's
 * deadline may have moved: tell the gate (cheap; a heap update). */
void gate_touch(gate_t *g, session_t *s, uint64_t now);

session_t *gate_session(const gate_t *g, uint32_t sid);
/* Where the session's packets go; offline, where they went last (NULL if
 * that path is gone too). */
const struct gate_path *gate_session_path(const gate_t *g, const session_t *s);
/* The hello the client sent in its handshake; valid while the session's
 * OPEN event is being told (freed after it). "" and 0 otherwise. */
const uint8_t *gate_session_hello(const gate_t *g, const session_t *s,
                                  size_t *len);
/* Close every open session with this code and reason (graceful); an
 * offline one ends at once, not waiting for its client (shutdown). */
void gate_close_all(gate_t *g, int code, const char *reason, uint64_t now);

struct gate_stats {
	uint64_t in_packets, in_bytes;
	uint64_t bad_packets;     /* unknown type or truncated, before auth */
	uint64_t bad_cookies;     /* INIT with a wrong or expired cookie */
	uint64_t challenges;      /* CHALLENGE replies sent */
	uint64_t refused;         /* policy refusals */
	uint64_t unknown_session; /* session packet for no session */
	uint64_t auth_failures;   /* session packet whose tag failed */
	uint64_t replays;
	uint64_t full;            /* refused: max_sessions reached */
	uint64_t created;         /* sessions allocated (after a proven address) */
	uint64_t opened, closed;
	uint64_t sessions;        /* live now */
	uint64_t raw_sessions;
	uint64_t hellos;          /* HELLO and INIT packets (handshake attempts) */
	uint64_t bad_hellos;      /* of which malformed (also in bad_packets) */
	uint64_t version_refused; /* refused: unsupported version */
	uint64_t half_open;       /* live now, WELCOME not yet confirmed */
	int64_t queued_bytes;     /* reliable bytes queued or unacked, all sessions */
	uint64_t raw_refused;     /* raw KCP datagrams refused a session:
	                             max_raw_per_addr or max_raw_sessions */
	uint64_t half_open_refused; /* refused: max_half_open */
	uint64_t budget_closed;   /* closed: queued_bytes_max */
	uint64_t resets;          /* RESETs sent (unknown session, token known) */
	uint64_t resets_limited;  /* RESETs not sent: resets_per_s */
	uint64_t pending;         /* handshakes waiting for their verdict now */
	uint64_t pending_refused; /* refused: pending_max */
	uint64_t pending_timeouts; /* refused: no verdict within pending_ms */
};
void gate_stats(const gate_t *g, struct gate_stats *st);

/* The live sessions by state and by the transport they send on (offline:
 * the last one). One pass over every session: for the console, not for
 * every packet. */
struct gate_census {
	uint64_t handshake, open, offline, closing;
	uint64_t udp, tcp, raw;
};
void gate_census(const gate_t *g, struct gate_census *c);

/* Every live session (and the path it sends on), for a scrape: one pass,
 * not for every packet. fn must not change the gate. */
void gate_foreach(const gate_t *g,
                  void (*fn)(const session_t *s, const struct gate_path *p,
                             void *user), void *user);

/* What the sessions released so far counted, summed as each went (with
 * the live ones' session_stats, the totals a scrape reports). */
struct gate_retired {
	uint64_t sessions;
	uint64_t retrans, push, fec_recovered, fec_parity_out;
	uint64_t msgs_in, msgs_out, dgrams_in, dgrams_out;
	uint64_t in_auth_fail, in_replay, in_malformed;
	uint64_t path_changes, offlines, resumes;
};
void gate_retired(const gate_t *g, struct gate_retired *r);
/* s's counters added to r (a scrape sums the live sessions with it); out,
 * when not NULL, gets s's session_stats. */
void gate_retired_add(struct gate_retired *r, const session_t *s,
                      struct session_stats *out);

#endif
