/*
 * session_int.h - what the files of a session share; not a public header
 * (nothing outside core/proto/session*.c includes it).
 *
 *   session.c         the state machine: create, input, send, close,
 *                     timers (update, check), accessors
 *   session_path.c    paths, challenges, offline and resume
 *   session_client.c  the client's handshake (HELLO, INIT, WELCOME)
 *   session_clock.c   heartbeat: PING, PONG, RTT and clock offset
 *   session_fec.c     FEC frames on UDP paths: sealed, one path per group
 *   session_raw.c     raw KCP sessions (no moongate header, no keys)
 *
 * Functions here are named session_* like the public ones, but only the
 * session's own files call them.
 */
#ifndef MOONGATE_SESSION_INT_H
#define MOONGATE_SESSION_INT_H

#include <stdlib.h>
#include <string.h>

#include "fec.h"
#include "kcp.h"
#include "session.h"

#define OFFSET_SAMPLES 8
#define PKT_MAX 65536
#define CHALLENGE_RETRY_MIN 100000 /* us between challenges of one path */
#define QUIET_MIN 500000           /* us of silence after which what is in
                                      flight is sent again on the first
                                      packet heard */

/* A session is one of three kinds; RAW is raw KCP (session_raw.c). */
enum role { CLIENT, SERVER, RAW };

/* One path the session knows (see session.h). */
struct spath {
	uint32_t id;              /* 0: a free slot */
	uint8_t valid;            /* server: proven, anything may go there;
	                             client: the server was heard on it */
	uint8_t challenged;       /* server: a PATH_CHALLENGE is out */
	uint8_t probing;          /* client: a probe is out */
	uint8_t fec_dec;          /* the FEC decoder holds this path's groups
	                             (at most one path: groups never mix) */
	uint8_t token[WIRE_TOKEN];
	uint64_t last_recv;       /* the last packet that authenticated on it */
	uint64_t challenged_at;
	uint64_t in_bytes, out_bytes; /* before validation: the amplification
	                                 bound (out <= in) */
};

struct session {
	uint8_t role, state, encrypt, keyed; /* keyed: keys are agreed */
	uint8_t hs_type;           /* client: WIRE_HELLO or WIRE_INIT in flight */
	uint8_t close_sent, close_tries, close_remote;
	uint8_t ping_asap;         /* next_ping is for a fresh RTT (a new
	                              path): not stretched while busy */
	uint8_t data_seen;         /* 1: data_rx is set, 2: data_tx */
	uint32_t sid;
	uint32_t tx_pn;            /* last pn sent */
	struct session_config cfg;
	struct session_callbacks cb;
	void *user;
	kcp_t *kcp;
	struct wire_keys keys;
	struct wire_replay replay;
	uint8_t pub[WIRE_PUB], sec[WIRE_SEC], peer_pub[WIRE_PUB];

	/* client handshake */
	uint8_t *hello;            /* pinned: sealed (hello_len + WIRE_TAG) */
	uint16_t hello_len;
	uint8_t key_mismatch;      /* pinned: a WELCOME did not open */
	uint32_t peer_msg_max;     /* client: the server's, from the WELCOME */
	struct wire_nk nk;         /* pinned: es and the hello key */
	uint32_t stamp;
	uint8_t mac[WIRE_MAC];
	uint32_t hs_interval;      /* current resend interval, ms */
	uint64_t hs_next, hs_deadline, hs_sent;

	uint64_t created, last_recv, next_ping;
	uint32_t ping_id;
	uint32_t data_rx, data_tx; /* ms(): the last KCP or DGRAM packet in,
	                              out (see data_seen) */

	/* heartbeat estimates, microseconds */
	double srtt, rttvar;
	int have_rtt;
	int64_t off_sample[OFFSET_SAMPLES];
	uint64_t rtt_sample[OFFSET_SAMPLES];
	int nsamples, sample_pos;
	int64_t offset;

	/* unreliable datagrams */
	uint32_t dgram_tx, dgram_rx;
	int dgram_any;

	/* close */
	int close_code;
	uint64_t close_deadline, close_next;
	char close_reason[WIRE_REASON_MAX + 1];

	/* paths */
	struct spath paths[SESSION_PATHS];
	uint32_t path;             /* where packets go (server: 0 offline) */
	uint32_t data_path;        /* server: path of the newest packet that
	                              was not a probe */
	uint32_t in_path;          /* the path of the packet being handled */
	uint32_t last_path;        /* server: the path before going offline */
	uint8_t offline;
	uint64_t offline_deadline;

	/* forward error correction on UDP paths (session_fec.c). Two paths,
	 * never one variable: a packet decoded from a frame came from
	 * fec_in_path, whatever the packets it causes are sent to; the open
	 * group goes to fec_out_path, and only there. */
	fec_enc_t *fec_enc;
	fec_dec_t *fec_dec;
	uint32_t fec_out_path;     /* where the open group's shards go */
	uint32_t fec_in_path;      /* the path of the frame being decoded */
	uint8_t fec_in;            /* inside fec_dec_input: no nesting */
	uint8_t fec_ktx[WIRE_KEY], fec_krx[WIRE_KEY]; /* frame MAC keys */
	uint64_t clock;            /* the latest now any call gave */

	struct session_stats st;
};

/* One packet is built here before output (session.c). Per thread, so
 * sessions on different threads never share it. */
extern _Thread_local uint8_t session_txbuf[PKT_MAX + WIRE_OVERHEAD];

static inline uint32_t
ms(uint64_t us)
{
	return (uint32_t)(us / 1000);
}

static inline void
emit(session_t *s, struct session_event *ev)
{
	s->cb.event(s, ev, s->user);
}

static inline int
is_open(const session_t *s)
{
	return s->state == SESSION_OPEN;
}

static inline int
fec_room(const struct session_config *c)
{
	return c->fec_data > 0 ? SESSION_FEC_OVERHEAD : 0;
}

/* Path is a UDP path of a session with FEC on. */
static inline int
uses_fec(const session_t *s, uint32_t path)
{
	return s->fec_enc && path && !(path & SESSION_PATH_PROVEN);
}

/* session.c */
session_t *session_alloc(const struct session_config *c,
                         const struct session_callbacks *cb, void *user,
                         int role, uint32_t path, uint64_t now);
kcp_t *session_make_kcp(session_t *s, uint32_t conv, int mtu);
void session_finish(session_t *s, int code, const char *reason, int remote);
void session_send_to(session_t *s, uint32_t path, uint8_t type, size_t blen);
void session_send_sealed(session_t *s, uint8_t type, size_t blen);
void session_send_plain(session_t *s, const uint8_t *pkt, size_t len);
/* One CLOSE (the session's code and reason) on the path in use. */
void session_put_close(session_t *s);
void session_drain(session_t *s);

/* session_path.c */
struct spath *session_path_find(session_t *s, uint32_t id);
struct spath *session_path_get(session_t *s, uint32_t id);
int session_may_resume(const session_t *s);
void session_go_offline(session_t *s, uint64_t now);
/* A packet that authenticated came on path: remember it there, follow or
 * challenge (server), resume (client). */
void session_path_heard(session_t *s, uint32_t path, size_t len,
                        const struct wire_hdr *h, uint64_t now);
/* PATH_CHALLENGE / PATH_RESPONSE bodies. */
void session_path_body(session_t *s, uint8_t type, const uint8_t *b,
                       uint64_t now);

/* session_client.c */
int session_client_input(session_t *s, uint8_t *pkt, size_t len, uint64_t now);
/* The handshake's resend and give-up timer. */
void session_client_tick(session_t *s, uint64_t now);

/* session_clock.c */
void session_send_ping(session_t *s, uint64_t now);
/* When the next PING is due: next_ping, or later while traffic flows
 * both ways (busy_heartbeat_ms). */
uint64_t session_ping_due(const session_t *s, uint64_t now);
void session_on_pong(session_t *s, const uint8_t *b, uint64_t now);

/* session_fec.c */
int session_fec_make(session_t *s);
/* A packet of this type to path goes through the encoder: a UDP path the
 * peer proved it receives on, never a probe (session_fec.c). */
int session_fec_wanted(session_t *s, uint32_t path, uint8_t type);
void session_fec_send(session_t *s, uint32_t path, const uint8_t *pkt,
                      size_t len);
/* The encoder's group timer: parity out, or dropped off UDP. */
void session_fec_tick(session_t *s, uint64_t now);
int session_fec_input(session_t *s, uint32_t path, uint8_t *pkt, size_t len,
                      uint64_t now);

/* session_raw.c */
int session_raw_input(session_t *s, uint8_t *pkt, size_t len, uint64_t now);

#endif
