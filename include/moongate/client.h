/*
 * moongate/client.h - libmoongate-client: the C API a game client embeds
 * (Unity via P/Invoke, Unreal, native engines, the Lua binding). The same
 * session, wire and KCP code as the server; no threads, no event library:
 * call mgclient_poll(c, now) once per frame (or when mgclient_fd is
 * readable, or at mgclient_check), then drain events with
 * mgclient_next_event.
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
 * This header is the whole public API: it includes nothing of the
 * library's own, and the shared library exports only the mgclient_*
 * functions declared here (core/client/client.map). The handle is opaque;
 * the two structs the caller fills or reads across the boundary
 * (mgclient_options, mgclient_stats) start with their size, so that a
 * caller built against an older or newer header still works: fields the
 * library does not know must be zero, fields the caller does not know
 * keep their defaults (options) or are not written (stats).
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
 * ride on it, or leave one KCP interval (10 ms) after they arrived, at the
 * poll that mgclient_check asks for, when the game sends nothing: an
 * answer costs one packet instead of two. The wait is always the same, so
 * the server's retransmission timeout absorbs it as RTT, not as jitter.
 * opts->ack_delay = N >= 2 (opt-in) lets an ack wait up to N ms for the
 * game's next reliable send when the game sends at a regular pace (inputs
 * at 20-60 Hz), so that it rides on it: frame sync then costs one packet
 * per input and one per frame, not two each, but a lost frame is noticed
 * up to N ms later (docs/PROTOCOL.md, "Acks that ride on data").
 * opts->ack_delay = 0 sends every ack at once.
 *
 * Server key. "udp://host:port?key=HEX" (or opts->server_key) pins the
 * server's static key, printed by `moongate key`: the hello travels
 * sealed and only that server can answer (docs/PROTOCOL.md, "Handshake").
 * Without a key the client warns (opts->log, or stderr) and connects only
 * to servers that allow unpinned clients.
 *
 * Errors: 0 or a length on success, a negative MGCLIENT_E* code otherwise
 * (mgclient_strerror says it in words); connect fills err.
 */
#ifndef MOONGATE_PUBLIC_CLIENT_H
#define MOONGATE_PUBLIC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: only these are exported. */
#if defined(__GNUC__)
#define MGCLIENT_API __attribute__((visibility("default")))
#else
#define MGCLIENT_API
#endif

typedef struct mgclient mgclient_t;

/* ---- options ------------------------------------------------------------ */

/* Fill with mgclient_options_default, change what you need, pass to
 * mgclient_connect. size says which fields the caller knows. The client's
 * own fields take their default at connect when <= 0 (tcp_linger_ms: 0
 * when < 0); the session's are checked by the session (a bad one fails
 * the connect). */
struct mgclient_options {
	uint32_t size;         /* sizeof (struct mgclient_options) */
	/* the session */
	int32_t mtu;           /* bytes of one UDP packet (1200; 100..65000; the
	                          server's, when smaller, wins) */
	int64_t watermark;     /* bytes queued + unacked before "backpressure"
	                          closes the session (4 MiB) */
	int32_t heartbeat_ms;  /* ping interval until the WELCOME gives the
	                          server's (1000) */
	int32_t timeout_ms;    /* the same for "nothing heard: timeout" (10000) */
	int32_t linger_ms;     /* a graceful close waits this long for acks (2000) */
	int32_t close_retries; /* CLOSE sent this many times without CLOSE_ACK (4) */
	int32_t handshake_retry_ms;   /* first handshake resend (250) */
	int32_t handshake_retry_max;  /* resend interval cap (2000) */
	int32_t handshake_timeout_ms; /* give up after (10000) */
	int32_t msg_max;       /* largest reliable message in bytes (0: KCP's) */
	int32_t ack_delay;     /* 1: an ack waits for data to ride on, or one
	                          KCP interval after it arrived (1); N >= 2:
	                          also up to N ms when the game's next
	                          reliable send is due within that (opt-in:
	                          a loss costs up to N ms more); 0: acks
	                          leave at once */
	/* KCP's profile (nodelay 0..2, interval ms, fast resend, no congestion
	 * control) and windows in segments */
	int32_t nodelay, interval, resend, nc, sndwnd, rcvwnd;
	int32_t deadlink;      /* sends of one segment before the link is dead (20) */
	/* the client's own */
	int32_t frame_max;     /* TCP: largest frame accepted (65535) */
	int32_t event_queue_max; /* events waiting for mgclient_next_event before
	                          the session closes with "event queue full" (65536) */
	int32_t buffer_max;    /* TCP: bytes waiting for the socket before the
	                          session closes with "backpressure" (4 MiB) */
	int32_t fallback_ms;   /* auto: no answer on UDP in the handshake this
	                          long: try TCP too (1000) */
	int32_t path_timeout_ms; /* auto: nothing heard on the path in use this
	                          long: move to the other transport (2500) */
	int32_t probe_ms;      /* auto, on TCP: probe UDP this often (2000) */
	int32_t reconnect_ms;  /* offline: fresh sockets this often (500) */
	int32_t tcp_linger_ms; /* auto: back on UDP, the TCP connection is
	                          closed this long after (5000) */
	/* version 2 (size 136): the server's key */
	const char *server_key; /* the server's static public key, 64 hex
	                          digits (`moongate key`), or NULL: the url's
	                          ?key=, else none. Pinned, the handshake hides
	                          the hello and a server without the key's
	                          secret half cannot open the session ("server
	                          key mismatch"). Without a key the client
	                          speaks the anonymous handshake (the hello in
	                          clear, no proof of the server), which a
	                          server allows only with gate.allow_unpinned,
	                          and warns through log. */
	void (*log)(const char *line, void *user); /* warnings of the library,
	                          one line each, no newline; NULL: stderr */
	void *log_user;
	/* version 3 (size 144): */
	int32_t minrto;        /* KCP's smallest retransmission timeout in ms
	                          (5; <= 0: 5): the RTO follows the measured RTT,
	                          srtt + max(4 x rttvar, 2 ms), down to this */
	int32_t manual_flush;  /* 0: mgclient_send puts the message on the wire
	                          at once (0); 1: messages wait for
	                          mgclient_flush or the next mgclient_poll, so
	                          what a frame sends leaves together, in as few
	                          packets as the mtu allows, with the acks.
	                          (In version 3's padding: 0 there, as before.) */
};
/* Every field to its default, size to sizeof *o. */
MGCLIENT_API void mgclient_options_default(struct mgclient_options *o);

/* ---- events ------------------------------------------------------------- */

enum mgclient_event_type {
	MGCLIENT_OPEN = 0,
	MGCLIENT_MESSAGE = 1,  /* reliable, in order, exactly once */
	MGCLIENT_DATAGRAM = 2, /* unreliable, newer than any before it */
	MGCLIENT_CLOSE = 3,    /* the last event */
	MGCLIENT_OFFLINE = 4,  /* nothing heard: reconnecting */
	MGCLIENT_RESUME = 5,   /* back, nothing lost */
	MGCLIENT_PATH = 6,     /* now on ev->transport */
	MGCLIENT_MOVED = 8,    /* the server moved this client to another
	                          worker or node (close code MGCLIENT_CLOSE_MOVED):
	                          the library connects there by itself with the
	                          hello the server gave, and OPEN follows again
	                          (or CLOSE). ev->reason: the move as the server
	                          said it (docs/PROTOCOL.md, "Moves"). The
	                          session is new: mgclient_fd may change.
	                          Until its OPEN, mgclient_send holds messages
	                          (up to the watermark) and sends them there
	                          first; mgclient_send_unreliable returns
	                          MGCLIENT_EOFFLINE. */
};

enum mgclient_transport { MGCLIENT_UDP = 1, MGCLIENT_TCP = 2 };

struct mgclient_event {
	int type;            /* MGCLIENT_* */
	const uint8_t *data; /* payload; valid until the next next_event/poll */
	size_t len;
	uint32_t seq;        /* DATAGRAM */
	int code;            /* CLOSE: an MGCLIENT_CLOSE_* code or the peer's */
	const char *reason;  /* CLOSE, MOVED */
	int remote;          /* CLOSE: 1 when the server closed */
	int transport;       /* PATH, RESUME: MGCLIENT_UDP or MGCLIENT_TCP */
};

/* The session's state (mgclient_state). */
enum mgclient_state {
	MGCLIENT_STATE_HANDSHAKE = 0,
	MGCLIENT_STATE_OPEN = 1,
	MGCLIENT_STATE_CLOSING = 2, /* close requested: lingering, or CLOSE sent */
	MGCLIENT_STATE_CLOSED = 3,  /* the CLOSE event was delivered */
};

/* Close codes (ev->code, mgclient_close); the reason text travels with
 * them. Application codes start at MGCLIENT_CLOSE_APP. */
enum mgclient_close_code {
	MGCLIENT_CLOSE_NORMAL = 0,       /* "closed" */
	MGCLIENT_CLOSE_TIMEOUT = 1,      /* "timeout": nothing heard */
	MGCLIENT_CLOSE_DEAD = 2,         /* "dead link": KCP gave up */
	MGCLIENT_CLOSE_BACKPRESSURE = 3, /* "backpressure", "event queue full" */
	MGCLIENT_CLOSE_REFUSED = 4,      /* handshake refused by the server */
	MGCLIENT_CLOSE_PROTOCOL = 5,     /* bad input ("frame too large", ...) */
	MGCLIENT_CLOSE_HANDSHAKE = 6,    /* "handshake timeout" */
	MGCLIENT_CLOSE_DISCONNECT = 7,   /* the transport ended */
	MGCLIENT_CLOSE_SHUTDOWN = 8,     /* "server shutdown" */
	MGCLIENT_CLOSE_EXPIRED = 9,      /* offline past the server's grace */
	MGCLIENT_CLOSE_RESET = 10,       /* the server does not know the session
	                                    any more (it restarted): connect
	                                    again, with a login cookie to get
	                                    the player back */
	MGCLIENT_CLOSE_MOVED = 11,       /* "moved": followed by the library
	                                    (MGCLIENT_MOVED); a CLOSE with it
	                                    means the move failed (the reason
	                                    says why) */
	MGCLIENT_CLOSE_APP = 100,
};

/* Negative results. */
enum mgclient_error {
	MGCLIENT_ECLOSED = -1, /* not open (handshake, closing or closed) */
	MGCLIENT_ETOOBIG = -2, /* message above msg_max, datagram above a packet */
	MGCLIENT_EFULL = -3,   /* watermark passed: the session is now closing */
	MGCLIENT_ENOMEM = -7,
	MGCLIENT_EINVAL = -8,
	MGCLIENT_EOFFLINE = -10, /* mgclient_send_unreliable: the session is
	                            offline (MGCLIENT_OFFLINE until RESUME),
	                            the datagram was dropped */
};
/* The text of an MGCLIENT_E* code (a static string). */
MGCLIENT_API const char *mgclient_strerror(int err);

/* Bytes of application data in a hello at most. */
#define MGCLIENT_HELLO_MAX 512

/* ---- the session -------------------------------------------------------- */

/* url: "udp://host:port", "tcp://host:port", "auto://host:port", or
 * "udp://host:port,tcp://host:port" (IPv4, IPv6 in brackets, or a name
 * resolved once, blocking), optionally followed by "?key=HEX" (the server
 * key, 64 hex digits; the same as opts->server_key). hello (<= MGCLIENT_HELLO_MAX) reaches the
 * server's handshake policy. opts NULL: defaults. The handshake starts at
 * once; MGCLIENT_OPEN (or CLOSE with the refusal) arrives through poll.
 * NULL with err filled on a bad url, bad options, a socket error or out
 * of memory. */
MGCLIENT_API mgclient_t *mgclient_connect(const char *url, const void *hello,
                                          size_t hello_len,
                                          const struct mgclient_options *opts,
                                          char *err, size_t errlen);
/* Free the client now (the socket closes without telling the server).
 * NULL: nothing. */
MGCLIENT_API void mgclient_release(mgclient_t *c);

/* Read what the socket has, run timers. Returns the number of events
 * waiting, or MGCLIENT_ECLOSED once the CLOSE event was taken. */
MGCLIENT_API int mgclient_poll(mgclient_t *c, uint64_t now);
/* mgclient_poll without reading the sockets: the clock, timers, sends
 * due. For an event loop that knows no socket of mgclient_fds is readable
 * (a timer at mgclient_check fired, or a frame that sends): it saves the
 * system call that would find nothing. */
MGCLIENT_API int mgclient_tick(mgclient_t *c, uint64_t now);
/* 1 and fills ev when an event was waiting, else 0. */
MGCLIENT_API int mgclient_next_event(mgclient_t *c, struct mgclient_event *ev);

MGCLIENT_API int mgclient_send(mgclient_t *c, const void *msg, size_t len);
/* Put what mgclient_send queued on the wire now (with manual_flush: call it
 * at the end of a frame; mgclient_poll does it too). 0, or
 * MGCLIENT_ECLOSED once the session ended. */
MGCLIENT_API int mgclient_flush(mgclient_t *c);
/* One datagram, outside the reliable stream (newest wins). 0 when it was
 * sent; MGCLIENT_EOFFLINE when the session is offline and the datagram
 * was dropped (not queued: it would be stale after the resume; the game
 * sends its newest state again after MGCLIENT_RESUME); MGCLIENT_ECLOSED,
 * MGCLIENT_ETOOBIG (above one packet). */
MGCLIENT_API int mgclient_send_unreliable(mgclient_t *c, const void *msg,
                                          size_t len);
/* Graceful close; MGCLIENT_CLOSE follows through poll. Offline, the
 * CLOSE goes out at once on fresh sockets and again (close_retries in
 * all, and with every reconnect attempt) until the server acknowledges
 * it or the tries run out. */
MGCLIENT_API void mgclient_close(mgclient_t *c, int code, const char *reason);

/* enum mgclient_state */
MGCLIENT_API int mgclient_state(const mgclient_t *c);
/* The socket in use, to wait on readability; -1 once the session has
 * ended (sockets close at once, before the CLOSE event is taken). */
MGCLIENT_API int mgclient_fd(const mgclient_t *c);
/* Every open socket (at most 2): wait on all of them, or on
 * mgclient_check. Returns how many were written to fds. */
MGCLIENT_API int mgclient_fds(const mgclient_t *c, int fds[2]);
/* MGCLIENT_UDP or MGCLIENT_TCP: the transport in use. */
MGCLIENT_API int mgclient_transport(const mgclient_t *c);
/* Open a new UDP socket (a new local port), as after a change of network:
 * the server sees the client at a new address and follows it. 0, or -1
 * with errno when no socket could be made, or the client has no UDP. */
MGCLIENT_API int mgclient_rebind(mgclient_t *c);
/* When poll is next due (absolute; now when events are waiting). */
MGCLIENT_API uint64_t mgclient_check(const mgclient_t *c, uint64_t now);
/* Monotonic clock in microseconds, for poll's now. */
MGCLIENT_API uint64_t mgclient_now(void);

/* ---- statistics --------------------------------------------------------- */

/* Set size to sizeof (struct mgclient_stats) before mgclient_stats. */
struct mgclient_stats {
	uint32_t size;
	int32_t encrypted;     /* 1: bodies encrypted; 0: authenticated only
	                          (the server's choice, told by the WELCOME) */
	double srtt_ms;        /* smoothed heartbeat RTT */
	double rttvar_ms;
	int64_t offset_us;     /* server clock minus ours, from the best ping */
	int64_t kcp_srtt_ms;   /* KCP's own estimate */
	int64_t waiting_bytes; /* reliable bytes queued or unacked */
	uint64_t in_packets, out_packets, in_bytes, out_bytes;
	uint64_t in_auth_fail, in_replay, in_malformed;
	uint64_t msgs_in, msgs_out, dgrams_in, dgrams_out, dgrams_stale;
	uint64_t pings, pongs;
	uint64_t path_changes;   /* times packets moved to another path */
	uint64_t path_challenges;
	uint64_t offlines, resumes;
	uint64_t fec_parity_out; /* parity shards sent */
	uint64_t fec_recovered;  /* packets rebuilt from parity */
	uint64_t fec_dups;       /* shards that arrived twice */
	/* version 2 (size 224): */
	int64_t msg_max;         /* the largest message mgclient_send takes:
	                            ours, KCP's and the server's (told by the
	                            WELCOME); 0 before the session is open */
	/* version 3 (size 232): */
	const char *cipher;      /* the session's AEAD, "AES-256-GCM" or
	                            "ChaCha20-Poly1305" (the server's choice
	                            among what the client offered: AES where
	                            both CPUs have it); "" before the WELCOME */
};
/* Fills the first st->size bytes at most; st->size becomes the bytes
 * filled. 0, or MGCLIENT_EINVAL when st->size is too small for the first
 * version of the struct (st untouched). */
MGCLIENT_API int mgclient_stats(const mgclient_t *c, struct mgclient_stats *st);

#ifdef __cplusplus
}
#endif

#endif
