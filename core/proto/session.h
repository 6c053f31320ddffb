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
 * Paths. A path is the owner's name for one way to reach the peer (a UDP
 * address, a TCP connection): a nonzero uint32 the owner chooses, passed
 * with every packet in and handed back with every packet out. The session
 * remembers SESSION_PATHS of them. SESSION_PATH_PROVEN set in an id says
 * the transport proved the peer's address (TCP's handshake).
 *
 *   Server: packets go to the path the client used last, once that path is
 *   proven: the newest packet (highest pn, not a probe) that authenticates
 *   from a new path (the client's NAT rebound, or it changed network)
 *   gets a PATH_CHALLENGE there (an older one is taken, challenges and
 *   moves nothing), and the
 *   server moves when the PATH_RESPONSE comes back; until then it sends
 *   that path no more bytes than it received from it. "Used last" means
 *   the packet with the highest packet number, so a late packet from an
 *   old path never drags the session back. A packet that does not
 *   authenticate changes nothing at all.
 *
 *   Client: the owner picks the path (session_path_use) and may test
 *   another with session_probe; the session answers challenges.
 *
 * Resume. With resume_grace_ms > 0 (the server's, told to the client in
 * the WELCOME), a session that hears nothing for timeout_ms, or loses its
 * last path, goes offline instead of closing (SESSION_EV_OFFLINE): KCP is
 * frozen with everything unacked, sends are queued. The first packet that
 * authenticates on a proven path brings it back (SESSION_EV_RESUME, then
 * SESSION_EV_PATH if the path differs) and everything in flight is
 * retransmitted at once. After resume_grace_ms offline it closes with
 * SESSION_CLOSE_EXPIRED, "expired". A server session closed while
 * offline (session_close, or the watermark) is SESSION_CLOSING and stays
 * offline: on resume, what was queued goes (graceful) and then the CLOSE;
 * at the grace's end it ends with the close's own code and reason.
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

#define SESSION_PATHS 4                 /* paths a session remembers */
#define SESSION_PATH_PROVEN 0x80000000u /* in a path id: address proven */

struct session_config {
	int mtu;              /* bytes of one UDP packet (1200; 100..65000) */
	int encrypt;          /* 1: encrypt bodies (default); 0: authenticate */
	int aes;              /* 1: AES-256-GCM for session packets where both
	                         sides have it (wire_aesgcm_available): a
	                         pinned client offers it in its HELLO, a server
	                         takes it when offered (default); 0:
	                         ChaCha20-Poly1305 (docs/PROTOCOL.md, "Ciphers") */
	int heartbeat_ms;     /* ping interval (1000) */
	int busy_heartbeat_ms; /* ping interval while traffic flows both ways:
	                         this end sent and received a KCP or DGRAM
	                         packet within the last heartbeat_ms (5000;
	                         0 or <= heartbeat_ms: heartbeat_ms always).
	                         Bounds how old the RTT and clock offset get;
	                         when traffic stops, the next ping is at most
	                         heartbeat_ms after the last packet of it
	                         (docs/PROTOCOL.md, "Heartbeat") */
	int timeout_ms;       /* no packet from the peer this long: close (10000) */
	int64_t watermark;    /* bytes queued + unacked before "backpressure" (4 MiB) */
	int linger_ms;        /* a graceful close waits this long for acks (2000) */
	int close_retries;    /* CLOSE sent this many times without CLOSE_ACK (4) */
	int handshake_retry_ms;   /* client: first handshake resend (250) */
	int handshake_retry_max;  /* client: resend interval cap (2000) */
	int handshake_timeout_ms; /* client: give up after (10000) */
	/* KCP profile (core/proto/kcp.h): */
	int nodelay, interval, resend, nc, sndwnd, rcvwnd;
	int deadlink;         /* sends of one segment before the link is dead (20) */
	int minrto;           /* KCP's smallest retransmission timeout in ms (5;
	                         0: KCP's own, 100 or 30 with nodelay): the RTO
	                         is srtt + max(4 x rttvar, 2 ms), at least this
	                         (docs/PROTOCOL.md, "Retransmission timeout") */
	int msg_max;          /* largest reliable message in bytes (0: KCP's limit,
	                         (mtu - 49 - FEC's 31) x min(rcvwnd, 256):
	                         147328 by default); a larger one received
	                         closes with SESSION_CLOSE_PROTOCOL */
	int ack_delay;        /* 0: acks leave at once (server default); 1: an ack
	                         waits for outgoing data to ride on, or one KCP
	                         interval after it arrived (kcp_setackdelay), so a
	                         reply costs one packet, not two (client default,
	                         see moongate/client.h) */
	int max_ack_delay;    /* ms an ack may wait for this end's next reliable
	                         data to ride on, when that data comes at a
	                         regular pace and is due within it
	                         (kcp_setmaxackdelay; docs/PROTOCOL.md, "Acks
	                         that ride on data"): frame sync's frames carry
	                         the acks of the inputs and the inputs those of
	                         the frames. 0: never (default; the server's
	                         config sets 60, kcp.max_ack_delay, and the
	                         client library 60 unless ack_delay is 0). Raw
	                         KCP sessions never wait. */
	int batch_flush;      /* 1: session_input leaves what KCP has to send
	                         (acks, answers queued by the message events)
	                         to the next session_update, which session_check
	                         says is due at once: a caller that updates once
	                         per loop wakeup answers every packet of that
	                         session in the wakeup together, in as few
	                         packets as the mtu allows; 0: KCP flushes after
	                         each packet (default; the server and the
	                         client library set 1) */
	int resume_grace_ms;  /* server: an offline session waits this long for
	                         its client (0: a lost connection closes it; the
	                         client takes the server's from the WELCOME) */
	int fec_data;         /* server: FEC on paths without SESSION_PATH_PROVEN
	                         (UDP), fec_data packets + fec_parity parity per
	                         group, both ways (0: off; the client takes the
	                         server's from the WELCOME). Costs the packet
	                         SESSION_FEC_OVERHEAD bytes of room. */
	int fec_parity;
	int pinned;           /* client: 1 speaks handshake v2, sealing the hello
	                         to server_key and opening only a WELCOME made
	                         with its secret half; 0: v1, anonymous and the
	                         hello in clear (docs/PROTOCOL.md, "Handshake") */
	uint8_t server_key[WIRE_PUB]; /* client: the server's static key */
	int worker_hint;      /* client, pinned: the server worker (its slot,
	                         0..WIRE_WORKER_HINT_MAX) the handshake should
	                         reach, carried in the caps; -1 (the default):
	                         none, the server picks */
	uint8_t reset_token[WIRE_RESET_TOKEN]; /* server: this session's stateless
	                         reset token (wire_reset_token), told to the client
	                         in the WELCOME; client: learned from it. All zero:
	                         none (a client then ignores every RESET) */
};
/* Room FEC takes from a packet: the frame's header and tag and a parity
 * shard's header (31 bytes). */
#define SESSION_FEC_OVERHEAD (WIRE_FEC_HDR + WIRE_FEC_TAG + 10)
void session_config_default(struct session_config *c);
/* Largest unreliable payload for this config: mtu - WIRE_OVERHEAD - 4
 * (and SESSION_FEC_OVERHEAD less with FEC). */
int session_dgram_max(const struct session_config *c);
/* The same for this session's own config (a session on an FEC listener
 * takes less than the server's config says); 0 for a raw KCP session. */
int session_dgram_room(const session_t *s);
/* The largest reliable message session_send takes: KCP's limit (its
 * fragment count times the segment size), the config's msg_max, and on a
 * client the server's, told by the WELCOME. 0 before the session has KCP. */
int session_msg_max(const session_t *s);

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
	SESSION_CLOSE_EXPIRED = 9,      /* "expired": offline past resume_grace_ms */
	SESSION_CLOSE_RESET = 10,       /* client: the server answered with this
	                                   session's RESET: it does not know the
	                                   session (it restarted); log in again */
	SESSION_CLOSE_MOVED = 11,       /* "moved": connect again where the
	                                   reason says (docs/PROTOCOL.md,
	                                   "Moves") */
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
	SESSION_EV_OFFLINE,  /* every path lost; waiting resume_grace_ms */
	SESSION_EV_RESUME,   /* back from offline, on ev->path */
	SESSION_EV_PATH,     /* packets now go to ev->path (was ev->prev) */
	SESSION_EV_PROBE,    /* client: the probe on ev->path was answered */
};

struct session_event {
	int type;
	const uint8_t *data; /* MESSAGE / DATAGRAM payload; valid during the call */
	size_t len;
	uint32_t seq;        /* DATAGRAM: its sequence number */
	int code;            /* CLOSE */
	const char *reason;  /* CLOSE: NUL-terminated */
	int remote;          /* CLOSE: 1 when the peer closed */
	uint32_t path;       /* RESUME, PATH, PROBE */
	uint32_t prev;       /* PATH: the path before (0: none) */
};

struct session_callbacks {
	/* One packet to send to the peer on path (len <= mtu). */
	void (*output)(session_t *s, uint32_t path, const uint8_t *pkt, size_t len,
	               void *user);
	void (*event)(session_t *s, const struct session_event *ev, void *user);
};

/* Client: start a handshake on path. hello (<= WIRE_HELLO_MAX bytes)
 * reaches the server's policy. The HELLO leaves through output before this
 * returns. NULL on out of memory, a NULL callback, path 0 or a hello too
 * long. */
session_t *session_client_create(const struct session_config *c,
                                 const struct session_callbacks *cb, void *user,
                                 uint32_t path, const uint8_t *hello,
                                 size_t hello_len, uint64_t now);

/* A v2 handshake, server side: es and the hello key (wire_nk_server), the
 * sealed hello as it came (hello_len + WIRE_TAG bytes; the session keys
 * cover it), and the server's ephemeral pair e_s, which the gate makes
 * and rotates (docs/PROTOCOL.md, "Handshake v2"). */
struct session_v2 {
	const struct wire_nk *nk;
	const uint8_t *sealed;
	size_t sealed_len;
	const uint8_t *eph_pub, *eph_sec;
};

/* Server: the gate validated the client's address and its policy accepted
 * client_pub; make the session and send the WELCOME (the config's mtu,
 * heartbeat, timeout and encrypt travel in it). v2 NULL: the v1 handshake
 * (a fresh ephemeral pair). NULL on out of memory or a degenerate client
 * key. */
session_t *session_server_create(const struct session_config *c,
                                 const struct session_callbacks *cb, void *user,
                                 uint32_t path, uint32_t sid,
                                 const uint8_t client_pub[WIRE_PUB],
                                 const struct session_v2 *v2, uint64_t now);

/* Server: a raw KCP session is made by session_raw_create (session_raw.h). */

void session_release(session_t *s);

/* Feed one packet from the peer that came on path (a datagram, or one TCP
 * frame). pkt is decrypted in place. Events fire from inside. Returns 0 or
 * a negative SESSION_E* saying why it was dropped; a dropped packet
 * changes nothing. */
int session_input(session_t *s, uint32_t path, uint8_t *pkt, size_t len,
                  uint64_t now);
/* The same, for a packet whose header the owner already read with
 * wire_peek (h; the gate does, to find the session): it is not read again. */
int session_input_peeked(session_t *s, uint32_t path, uint8_t *pkt,
                         size_t len, const struct wire_hdr *h, uint64_t now);

/* Server: the same INIT (or a HELLO on another proven path) arrived again:
 * the WELCOME was lost; send it again on path. */
void session_rewelcome(session_t *s, uint32_t path, uint64_t now);

/* The owner lost path (a TCP connection closed). If packets went there,
 * they move to the proven path heard from most recently within timeout_ms
 * (SESSION_EV_PATH); with none, a server whose client's newest packet
 * came within timeout_ms on another path, still being proven, waits for
 * that proof with no path (the client left the lost path, it is not
 * gone: session_path is 0, the session is not offline); otherwise the
 * session goes offline when it may resume, and else ends with code and
 * reason. A path packets did not go to changes nothing but itself. */
void session_path_lost(session_t *s, uint32_t path, int code,
                       const char *reason, uint64_t now);
/* Where packets go now; 0 on a server that is offline, or whose path was
 * lost while the client's new one is being proven. */
uint32_t session_path(const session_t *s);
/* 1 when the session knows path. */
int session_path_known(const session_t *s, uint32_t path);
/* When a packet that authenticated last came on path (0: never, or an
 * unknown path); path 0: on any path. */
uint64_t session_last_recv(const session_t *s, uint32_t path);
/* 1 while offline (waiting for the peer to come back). */
int session_offline(const session_t *s);

/* Client: send on path from now on (the handshake too). The server
 * follows once it sees the client's packets there. */
void session_path_use(session_t *s, uint32_t path, uint64_t now);
/* Client: send a PATH_CHALLENGE on path (not the one in use, usually):
 * SESSION_EV_PROBE tells when the server's answer came back on it. */
int session_probe(session_t *s, uint32_t path, uint64_t now);
/* Client: send a PING now on the path in use (to tell the server about a
 * new path, or to knock while offline; closing while offline, the knock
 * is the CLOSE). */
void session_ping(session_t *s, uint64_t now);
/* Client in handshake: start again with a HELLO, now (after moving to a
 * path where the old cookie is worthless). */
void session_rehello(session_t *s, uint64_t now);

/* Reliable, ordered. 0, or SESSION_ECLOSED, SESSION_ETOOBIG, SESSION_EFULL
 * (the watermark was passed: the session closes with "backpressure"),
 * SESSION_ENOMEM. Allowed in SESSION_HANDSHAKE on the server (queued). */
int session_send(session_t *s, const void *msg, size_t len, uint64_t now);

/* Unreliable, sent at once, never queued; the receiver drops one older
 * than the newest it delivered. 0, SESSION_ECLOSED, SESSION_ETOOBIG.
 * Offline, it is dropped (and 0 returned): it would be stale anyway. */
int session_send_unreliable(session_t *s, const void *msg, size_t len,
                            uint64_t now);

/* Close with a code and reason (truncated to WIRE_REASON_MAX). Reliable
 * data already sent is delivered first (up to linger_ms), then CLOSE is
 * sent until acknowledged (close_retries). graceful 0 skips the linger.
 * The CLOSE event follows, with remote = 0. Idempotent. A server session
 * that is offline waits for its client first (see "Resume" above). A
 * client that is offline sends the CLOSE at once (no linger: nothing can
 * be delivered), again every close interval up to close_retries, and on
 * every session_ping (the owner's knocks), until the CLOSE_ACK, the last
 * try or the grace's end. An offline server takes a CLOSE from any path. */
void session_close(session_t *s, int code, const char *reason, int graceful,
                   uint64_t now);

/* End the session now without telling the peer (the transport is gone):
 * the CLOSE event fires with this code and reason (a session already
 * closing: with its close's). Idempotent. */
void session_abort(session_t *s, int code, const char *reason, uint64_t now);

/* Run timers: heartbeat, timeout, KCP flush and resend, handshake resend,
 * close resend. Returns the state. */
int session_update(session_t *s, uint64_t now);
/* When session_update is next due (absolute, >= now unless overdue). */
uint64_t session_check(const session_t *s, uint64_t now);

/* Set this session's max_ack_delay (see session_config) from now on, in
 * ms (0: acks do not wait for data). For a service that knows its pace: a
 * room ticking every T ms may give its members T + 10, so that every ack
 * of theirs rides on the next frame even when the tick is late by a few
 * ms. No effect on a raw KCP session. SESSION_EINVAL when ms < 0. */
int session_set_max_ack_delay(session_t *s, int ms);

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
	uint64_t in_auth_fail;   /* packets and FEC frames whose tag failed */
	uint64_t in_replay;      /* packets seen before, FEC shards included */
	uint64_t in_malformed;
	uint64_t msgs_in, msgs_out, dgrams_in, dgrams_out, dgrams_stale;
	uint64_t pings, pongs;
	uint64_t path_changes;   /* times packets moved to another path */
	uint64_t path_challenges;/* PATH_CHALLENGEs sent (server) */
	uint64_t offlines, resumes;
	uint64_t fec_parity_out;  /* parity shards sent */
	uint64_t fec_recovered;   /* packets rebuilt from parity */
	uint64_t fec_dups;        /* shards that arrived twice (in in_replay too) */
	int keyed;             /* 1: keys agreed (the WELCOME was made or opened) */
	int aesgcm;            /* 1: the session's AEAD is AES-256-GCM; 0:
	                          ChaCha20-Poly1305 */
	int encrypted;         /* 1: bodies encrypted; 0: authenticated only
	                          (the listener's choice, told by the WELCOME) */
};
void session_stats(const session_t *s, struct session_stats *st);
/* KCP's data segments sent (first sends and again) and of them sent again
 * (timeout or fast); 0 and 0 before keys (kept out of session_stats: they
 * live in the KCP object, read when asked). */
void session_resends(const session_t *s, uint64_t *push, uint64_t *retrans);
/* Reliable bytes queued or unacked (what the watermark bounds); cheap. */
int64_t session_queued(const session_t *s);
/* Heap bytes held, including the KCP object. */
size_t session_memsize(const session_t *s);

#endif
