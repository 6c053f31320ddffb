/*
 * session.h - one logical connection: handshake (client side, and the
 * server side after the gate validated the address), a reliable ordered
 * stream (KCP), unreliable datagrams, heartbeat (RTT, clock offset,
 * timeout), send-queue watermark, and close with a reason.
 *
 * I/O-free, like the KCP core: time is an argument (microseconds, any
 * origin, 64-bit), every packet leaves through the output callback (the
 * owner frames it for TCP), events reach the owner through the event
 * callback, and session_check(now) says when session_update is next due.
 * A session knows nothing of addresses or sockets.
 *
 * Re-entrancy: the event callback may call session_send, session_send_
 * unreliable and session_close on the same session, never session_release.
 * SESSION_EV_CLOSE is the last event; release the session after it (or at
 * any time outside a callback).
 *
 * Errors: 0 or a length on success, a negative SESSION_E* code otherwise.
 */
#ifndef MOONGATE_SESSION_H
#define MOONGATE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

typedef struct session session_t;

struct session_config {
	int mtu;              /* bytes of one UDP packet (1200; 100..65000) */
	int encrypt;          /* 1: encrypt bodies (default); 0: authenticate */
	int heartbeat_ms;     /* ping interval (1000) */
	int timeout_ms;       /* no packet from the peer this long: close (10000) */
	int64_t watermark;    /* bytes queued + unacked before "backpressure" (4 MiB) */
	int linger_ms;        /* a graceful close waits this long for acks (2000) */
	int close_retries;    /* CLOSE sent this many times without CLOSE_ACK (4) */
	int handshake_retry_ms;   /* client: first handshake resend (250) */
	int handshake_retry_max;  /* client: resend interval cap (2000) */
	int handshake_timeout_ms; /* client: give up after (10000) */
	/* KCP profile (core/kcp.h): */
	int nodelay, interval, resend, nc, sndwnd, rcvwnd;
	int deadlink;         /* sends of one segment before the link is dead (20) */
	int msg_max;          /* largest reliable message in bytes (0: KCP's limit) */
	int ack_delay;        /* 0: acks leave at once (server default); 1: an ack
	                         waits for outgoing data to ride on, or for the next
	                         KCP interval flush, so a reply costs one packet,
	                         not two (client default, see client.h) */
};
void session_config_default(struct session_config *c);
/* Largest unreliable payload for this config: mtu - WIRE_OVERHEAD - 4. */
int session_dgram_max(const struct session_config *c);

enum session_state {
	SESSION_HANDSHAKE, /* client: HELLO/INIT sent; server: WELCOME sent */
	SESSION_OPEN,      /* keys agreed, the peer proved it holds them */
	SESSION_CLOSING,   /* close requested: lingering, or CLOSE sent */
	SESSION_CLOSED,    /* the CLOSE event was delivered */
};

/* Close codes; the reason text travels with them. Application codes
 * (game logic, Lua) start at SESSION_CLOSE_APP. */
enum session_close_code {
	SESSION_CLOSE_NORMAL = 0,       /* "closed" */
	SESSION_CLOSE_TIMEOUT = 1,      /* "timeout": no packet for timeout_ms */
	SESSION_CLOSE_DEAD = 2,         /* "dead link": KCP gave up */
	SESSION_CLOSE_BACKPRESSURE = 3, /* "backpressure": watermark passed */
	SESSION_CLOSE_REFUSED = 4,      /* handshake refused; reason from policy */
	SESSION_CLOSE_PROTOCOL = 5,     /* bad input from an authenticated peer */
	SESSION_CLOSE_HANDSHAKE = 6,    /* "handshake timeout" */
	SESSION_CLOSE_DISCONNECT = 7,   /* "disconnected": the transport ended */
	SESSION_CLOSE_SHUTDOWN = 8,     /* "server shutdown" */
	SESSION_CLOSE_APP = 100,
};

enum session_error {
	SESSION_ECLOSED = -1,  /* not open (closing or closed) */
	SESSION_ETOOBIG = -2,  /* message above msg_max, or datagram above one packet */
	SESSION_EFULL = -3,    /* watermark passed: the session is now closing */
	SESSION_EAUTH = -4,    /* input: tag did not verify (dropped, counted) */
	SESSION_EREPLAY = -5,  /* input: replayed or too old (dropped, counted) */
	SESSION_EINPUT = -6,   /* input: malformed (dropped, counted) */
	SESSION_ENOMEM = -7,
	SESSION_EINVAL = -8,
	SESSION_EAGAIN = -9,   /* input: not now (a handshake packet in the wrong state) */
};
const char *session_strerror(int err);

enum session_event_type {
	SESSION_EV_OPEN,     /* client: WELCOME verified; server: first packet verified */
	SESSION_EV_MESSAGE,  /* a reliable message, in order, exactly once */
	SESSION_EV_DATAGRAM, /* an unreliable payload, newer than any before it */
	SESSION_EV_CLOSE,    /* the last event: code and reason */
};

struct session_event {
	int type;
	const uint8_t *data; /* MESSAGE / DATAGRAM payload; valid during the call */
	size_t len;
	uint32_t seq;        /* DATAGRAM: its sequence number */
	int code;            /* CLOSE */
	const char *reason;  /* CLOSE: NUL-terminated */
	int remote;          /* CLOSE: 1 when the peer closed */
};

struct session_callbacks {
	/* One packet to send to the peer (len <= mtu). */
	void (*output)(session_t *s, const uint8_t *pkt, size_t len, void *user);
	void (*event)(session_t *s, const struct session_event *ev, void *user);
};

/* Client: start a handshake. hello (<= WIRE_HELLO_MAX bytes) reaches the
 * server's policy. The HELLO leaves through output before this returns.
 * NULL on out of memory, a NULL callback or a hello too long. */
session_t *session_client_create(const struct session_config *c,
                                 const struct session_callbacks *cb, void *user,
                                 const uint8_t *hello, size_t hello_len,
                                 uint64_t now);

/* Server: the gate validated the client's address and its policy accepted
 * client_pub; make the session and send the WELCOME (the config's mtu,
 * heartbeat, timeout and encrypt travel in it). NULL on out of memory or a
 * degenerate client key. */
session_t *session_server_create(const struct session_config *c,
                                 const struct session_callbacks *cb, void *user,
                                 uint32_t sid, const uint8_t client_pub[WIRE_PUB],
                                 uint64_t now);

/* Server: a raw KCP session (no moongate header, no keys, no heartbeat, no
 * datagrams): conv is the client's; output gets plain KCP datagrams. */
session_t *session_raw_create(const struct session_config *c,
                              const struct session_callbacks *cb, void *user,
                              uint32_t conv, uint64_t now);

void session_release(session_t *s);

/* Feed one packet from the peer (a datagram, or one TCP frame). pkt is
 * decrypted in place. Events fire from inside. Returns 0 or a negative
 * SESSION_E* saying why it was dropped; a dropped packet changes nothing. */
int session_input(session_t *s, uint8_t *pkt, size_t len, uint64_t now);

/* Server: the same INIT arrived again (the WELCOME was lost): send it again. */
void session_rewelcome(session_t *s, uint64_t now);

/* Reliable, ordered. 0, or SESSION_ECLOSED, SESSION_ETOOBIG, SESSION_EFULL
 * (the watermark was passed: the session closes with "backpressure"),
 * SESSION_ENOMEM. Allowed in SESSION_HANDSHAKE on the server (queued). */
int session_send(session_t *s, const void *msg, size_t len, uint64_t now);

/* Unreliable, sent at once, never queued; the receiver drops one older
 * than the newest it delivered. 0, SESSION_ECLOSED, SESSION_ETOOBIG. */
int session_send_unreliable(session_t *s, const void *msg, size_t len,
                            uint64_t now);

/* Close with a code and reason (truncated to WIRE_REASON_MAX). Reliable
 * data already sent is delivered first (up to linger_ms), then CLOSE is
 * sent until acknowledged (close_retries). graceful 0 skips the linger.
 * The CLOSE event follows, with remote = 0. Idempotent. */
void session_close(session_t *s, int code, const char *reason, int graceful,
                   uint64_t now);

/* End the session now without telling the peer (the transport is gone):
 * the CLOSE event fires with this code and reason. Idempotent. */
void session_abort(session_t *s, int code, const char *reason, uint64_t now);

/* Run timers: heartbeat, timeout, KCP flush and resend, handshake resend,
 * close resend. Returns the state. */
int session_update(session_t *s, uint64_t now);
/* When session_update is next due (absolute, >= now unless overdue). */
uint64_t session_check(const session_t *s, uint64_t now);

int session_state(const session_t *s);
uint32_t session_id(const session_t *s);
void *session_user(const session_t *s);
void session_set_user(session_t *s, void *user);
int session_is_raw(const session_t *s);
/* The client's public key (server side), for the gate's duplicate-INIT map. */
const uint8_t *session_peer_pub(const session_t *s);

struct session_stats {
	double srtt_ms;        /* smoothed heartbeat RTT */
	double rttvar_ms;
	int64_t offset_us;     /* peer clock minus ours, from the best recent ping */
	int kcp_srtt_ms;       /* KCP's own estimate */
	int64_t waiting_bytes; /* reliable bytes queued or unacked */
	uint64_t in_packets, out_packets, in_bytes, out_bytes;
	uint64_t in_auth_fail, in_replay, in_malformed;
	uint64_t msgs_in, msgs_out, dgrams_in, dgrams_out, dgrams_stale;
	uint64_t pings, pongs;
	int encrypted;         /* 1: bodies encrypted; 0: authenticated only
	                          (the listener's choice, told by the WELCOME) */
};
void session_stats(const session_t *s, struct session_stats *st);
/* Heap bytes held, including the KCP object. */
size_t session_memsize(const session_t *s);

#endif
