/*
 * session.c - one logical connection over the wire codec and KCP.
 * See session.h for the contract; docs/PROTOCOL.md for the packets.
 *
 * Time: microseconds (uint64) here, milliseconds (uint32, wrapping) for
 * KCP. Timers are deadlines compared in session_update; session_check
 * returns the earliest one, so an idle open session wakes only for its
 * heartbeat.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "fec.h"
#include "kcp.h"

#define OFFSET_SAMPLES 8
#define PKT_MAX 65536
#define CHALLENGE_RETRY_MIN 100000 /* us between challenges of one path */
#define QUIET_MIN 500000           /* us of silence after which what is in
                                      flight is sent again on the first
                                      packet heard */

enum role { CLIENT, SERVER, RAW };

/* One path the session knows (see session.h). */
struct spath {
	uint32_t id;              /* 0: a free slot */
	uint8_t valid;            /* server: proven, anything may go there;
	                             client: the server was heard on it */
	uint8_t challenged;       /* server: a PATH_CHALLENGE is out */
	uint8_t probing;          /* client: a probe is out */
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
	uint8_t *hello;
	uint16_t hello_len;
	uint32_t stamp;
	uint8_t mac[WIRE_MAC];
	uint32_t hs_interval;      /* current resend interval, ms */
	uint64_t hs_next, hs_deadline, hs_sent;

	uint64_t created, last_recv, next_ping;
	uint32_t ping_id;

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

	/* forward error correction on unproven (UDP) paths */
	fec_enc_t *fec_enc;
	fec_dec_t *fec_dec;
	uint32_t fec_path;         /* where the encoder's shards go */
	uint8_t fec_in;            /* inside fec_dec_input: no nesting */
	uint64_t clock;            /* the latest now any call gave */

	struct session_stats st;
};

/* One packet is built here before output; one message is read here. Per
 * thread, so sessions on different threads never share them. */
static _Thread_local uint8_t txbuf[PKT_MAX + WIRE_OVERHEAD];
static _Thread_local uint8_t fecbuf[PKT_MAX + WIRE_FEC_HDR];
static _Thread_local uint8_t *rxmsg;
static _Thread_local size_t rxcap;

const char *
session_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case SESSION_ECLOSED: return "session closed";
	case SESSION_ETOOBIG: return "message too large";
	case SESSION_EFULL: return "backpressure";
	case SESSION_EAUTH: return "authentication failed";
	case SESSION_EREPLAY: return "replayed packet";
	case SESSION_EINPUT: return "malformed packet";
	case SESSION_ENOMEM: return "out of memory";
	case SESSION_EINVAL: return "invalid argument";
	case SESSION_EAGAIN: return "unexpected packet in this state";
	}
	return "unknown error";
}

void
session_config_default(struct session_config *c)
{
	memset(c, 0, sizeof *c);
	c->mtu = 1200;
	c->encrypt = 1;
	c->heartbeat_ms = 1000;
	c->timeout_ms = 10000;
	c->watermark = 4 << 20;
	c->linger_ms = 2000;
	c->close_retries = 4;
	c->handshake_retry_ms = 250;
	c->handshake_retry_max = 2000;
	c->handshake_timeout_ms = 10000;
	c->nodelay = 1;
	c->interval = 10;
	c->resend = 2;
	c->nc = 1;
	c->sndwnd = 128;
	c->rcvwnd = 128;
	c->deadlink = 20;
	c->msg_max = 0;
	c->ack_delay = 0;
}

static int
fec_room(const struct session_config *c)
{
	return c->fec_data > 0 ? SESSION_FEC_OVERHEAD : 0;
}

int
session_dgram_max(const struct session_config *c)
{
	return c->mtu - WIRE_OVERHEAD - 4 - fec_room(c);
}

int
session_dgram_room(const session_t *s)
{
	return s->role == RAW ? 0 : session_dgram_max(&s->cfg);
}

static uint32_t
ms(uint64_t us)
{
	return (uint32_t)(us / 1000);
}

static void
emit(session_t *s, struct session_event *ev)
{
	s->cb.event(s, ev, s->user);
}

/* The last event: the KCP object goes, the CLOSE event fires. */
static void
finish(session_t *s, int code, const char *reason, int remote)
{
	if (s->state == SESSION_CLOSED)
		return;
	s->state = SESSION_CLOSED;
	if (s->kcp) {
		kcp_release(s->kcp);
		s->kcp = NULL;
	}
	free(s->hello);
	s->hello = NULL;
	if (reason != s->close_reason) {
		size_t n = strlen(reason);
		if (n > WIRE_REASON_MAX)
			n = WIRE_REASON_MAX;
		memcpy(s->close_reason, reason, n);
		s->close_reason[n] = 0;
	}
	s->close_code = code;
	s->close_remote = (uint8_t)remote;
	struct session_event ev = { .type = SESSION_EV_CLOSE, .code = code,
	                            .reason = s->close_reason, .remote = remote };
	emit(s, &ev);
}

static struct spath *
path_find(session_t *s, uint32_t id)
{
	if (!id)
		return NULL;
	for (int i = 0; i < SESSION_PATHS; i++)
		if (s->paths[i].id == id)
			return &s->paths[i];
	return NULL;
}

/* The slot of path id, made if new: a free slot, else the one heard from
 * longest ago that packets do not go to. */
static struct spath *
path_get(session_t *s, uint32_t id)
{
	struct spath *p = path_find(s, id), *old = NULL;
	if (p)
		return p;
	for (int i = 0; i < SESSION_PATHS; i++) {
		struct spath *q = &s->paths[i];
		if (!q->id) {
			old = q;
			break;
		}
		if (q->id != s->path && (!old || q->last_recv < old->last_recv))
			old = q;
	}
	memset(old, 0, sizeof *old);
	old->id = id;
	old->valid = (id & SESSION_PATH_PROVEN) != 0;
	return old;
}

/* One FEC shard: framed with the session id, to fec_path. */
static void
fec_out(const uint8_t *shard, size_t len, void *user)
{
	session_t *s = user;
	if (len + WIRE_FEC_HDR > sizeof fecbuf)
		return;
	fecbuf[0] = WIRE_FEC;
	wire_put32(fecbuf + 1, s->sid);
	memcpy(fecbuf + WIRE_FEC_HDR, shard, len);
	s->st.out_packets++;
	s->st.out_bytes += len + WIRE_FEC_HDR;
	if (shard[0] == FEC_TYPE_PARITY)
		s->st.fec_parity_out++;
	s->cb.output(s, s->fec_path, fecbuf, len + WIRE_FEC_HDR, s->user);
}

static void
fec_drop(const uint8_t *shard, size_t len, void *user)
{
	(void)shard; (void)len; (void)user;
}

static int
uses_fec(const session_t *s, uint32_t path)
{
	return s->fec_enc && path && !(path & SESSION_PATH_PROVEN);
}

/* Seal the body already written at txbuf + WIRE_HDR and send it on path:
 * on an unproven one (server), only within what it sent us. */
static void
send_to(session_t *s, uint32_t path, uint8_t type, size_t blen)
{
	if (!s->keyed || s->tx_pn == UINT32_MAX || !path)
		return;
	struct spath *p = s->role == SERVER ? path_find(s, path) : NULL;
	size_t len = blen + WIRE_OVERHEAD;
	if (p && !p->valid) {
		if (p->out_bytes + len > p->in_bytes)
			return;
		p->out_bytes += len;
	}
	int n = wire_seal(txbuf, sizeof txbuf, type, s->sid, ++s->tx_pn,
	                  txbuf + WIRE_HDR, blen, s->keys.tx, s->encrypt);
	if (n < 0)
		return;
	if (uses_fec(s, path)) {
		s->fec_path = path;
		fec_enc_add(s->fec_enc, txbuf, (size_t)n, s->clock, fec_out, s);
		return;
	}
	s->st.out_packets++;
	s->st.out_bytes += (uint64_t)n;
	s->cb.output(s, path, txbuf, (size_t)n, s->user);
}

/* FEC on, both ways, k data and m parity per group (from the config on
 * the server, from the WELCOME on the client). -1 on bad values or out of
 * memory. */
static int
make_fec(session_t *s)
{
	if (s->cfg.fec_data <= 0 || s->role == RAW)
		return 0;
	struct fec_config fc;
	fec_config_default(&fc);
	fc.data = s->cfg.fec_data;
	fc.parity = s->cfg.fec_parity;
	fc.pkt_max = s->cfg.mtu - fec_room(&s->cfg);
	fc.groups = 16;
	if (fec_config_check(&fc) < 0)
		return -1;
	s->fec_enc = fec_enc_create(&fc);
	s->fec_dec = fec_dec_create(&fc);
	return s->fec_enc && s->fec_dec ? 0 : -1;
}

static void
send_sealed(session_t *s, uint8_t type, size_t blen)
{
	send_to(s, s->path, type, blen);
}

static void
send_raw(session_t *s, const uint8_t *pkt, size_t len)
{
	if (!s->path)
		return;
	s->st.out_packets++;
	s->st.out_bytes += len;
	s->cb.output(s, s->path, pkt, len, s->user);
}

static int
kcp_out(const char *buf, int len, kcp_t *k, void *user)
{
	session_t *s = user;
	(void)k;
	if (s->role == RAW) {
		send_raw(s, (const uint8_t *)buf, (size_t)len);
		return 0;
	}
	if ((size_t)len > PKT_MAX)
		return -1;
	memcpy(txbuf + WIRE_HDR, buf, (size_t)len);
	send_sealed(s, WIRE_KCP, (size_t)len);
	return 0;
}

static void
send_close(session_t *s, uint64_t now)
{
	size_t n = strlen(s->close_reason);
	uint8_t *b = txbuf + WIRE_HDR;
	wire_put16(b, (uint16_t)s->close_code);
	b[2] = (uint8_t)n;
	memcpy(b + 3, s->close_reason, n);
	send_sealed(s, WIRE_CLOSE, 3 + n);
	s->close_sent = 1;
	s->close_tries++;
	uint64_t rto = s->have_rtt ? (uint64_t)(s->srtt * 2 + s->rttvar * 4) : 0;
	if (rto < 200000)
		rto = 200000;
	s->close_next = now + rto;
}

static void
send_ping(session_t *s, uint64_t now)
{
	uint8_t *b = txbuf + WIRE_HDR;
	wire_put32(b, ++s->ping_id);
	wire_put64(b + 4, now);
	send_sealed(s, WIRE_PING, 12);
	s->st.pings++;
	s->next_ping = now + (uint64_t)s->cfg.heartbeat_ms * 1000;
}

/* ---- paths, offline, resume ------------------------------------------ */

static void
emit_path(session_t *s, int type, uint32_t path, uint32_t prev)
{
	struct session_event ev = { .type = type, .path = path, .prev = prev };
	emit(s, &ev);
}

static int
may_resume(const session_t *s)
{
	return s->cfg.resume_grace_ms > 0 && s->state == SESSION_OPEN &&
	       s->role != RAW && !s->offline;
}

/* Every path is lost: keep everything for resume_grace_ms. The server
 * forgets its paths (a path is proven again after an outage: its address
 * may belong to someone else by now); the client keeps sending where its
 * owner says. */
static void
go_offline(session_t *s, uint64_t now)
{
	s->offline = 1;
	s->offline_deadline = now + (uint64_t)s->cfg.resume_grace_ms * 1000;
	s->last_path = s->path;
	s->st.offlines++;
	if (s->role == SERVER) {
		s->path = 0;
		s->data_path = 0;
		memset(s->paths, 0, sizeof s->paths);
	}
	struct session_event ev = { .type = SESSION_EV_OFFLINE };
	emit(s, &ev);
}

/* Packets go to path from now on. Back from offline: RESUME first, then
 * PATH when the path is not the one before. */
static void
switch_path(session_t *s, uint32_t path, uint64_t now)
{
	int resumed = s->offline;
	uint32_t prev = resumed ? s->last_path : s->path;
	if (!resumed && s->path == path)
		return;
	s->path = path;
	s->offline = 0;
	if (s->kcp)
		kcp_rewind(s->kcp); /* what the old path swallowed goes again now */
	if (resumed) {
		s->st.resumes++;
		s->last_recv = now;
		s->next_ping = now; /* a fresh RTT for the new path */
		emit_path(s, SESSION_EV_RESUME, path, prev);
		if (s->state != SESSION_OPEN || s->offline || s->path != path)
			return; /* the callback closed or moved it */
	}
	if (path != prev) {
		s->st.path_changes++;
		emit_path(s, SESSION_EV_PATH, path, prev);
	}
}

/* Server: prove that the client is at path p (it sent a packet that
 * authenticated from there; an attacker may have replayed one faster). */
static void
challenge(session_t *s, struct spath *p, uint64_t now)
{
	uint64_t retry = s->have_rtt ? (uint64_t)(2 * s->srtt) : 0;
	if (retry < CHALLENGE_RETRY_MIN)
		retry = CHALLENGE_RETRY_MIN;
	if (p->challenged && now - p->challenged_at < retry)
		return;
	if (!p->challenged)
		wire_random(p->token, WIRE_TOKEN);
	p->challenged = 1;
	p->challenged_at = now;
	s->st.path_challenges++;
	memcpy(txbuf + WIRE_HDR, p->token, WIRE_TOKEN);
	send_to(s, p->id, WIRE_PATH_CHALLENGE, WIRE_TOKEN);
}

/* Server: a proven path carries the client's newest packets: move there
 * (in the handshake, silently: the session is not open yet). */
static void
follow(session_t *s, struct spath *p, uint64_t now)
{
	if (s->state == SESSION_HANDSHAKE)
		s->path = p->id;
	else if (s->state == SESSION_OPEN)
		switch_path(s, p->id, now);
}

static kcp_t *
make_kcp(session_t *s, uint32_t conv, int mtu)
{
	const struct session_config *c = &s->cfg;
	kcp_t *k = kcp_create(conv, s);
	if (!k)
		return NULL;
	kcp_setoutput(k, kcp_out);
	kcp_nodelay(k, c->nodelay, c->interval, c->resend, c->nc);
	kcp_wndsize(k, c->sndwnd, c->rcvwnd);
	if (kcp_setmtu(k, mtu) < 0)
		kcp_setmtu(k, KCP_MTU_MIN);
	kcp_setdeadlink(k, c->deadlink);
	kcp_seteager(k, c->ack_delay ? KCP_EAGER_DATA : KCP_EAGER_ACK | KCP_EAGER_DATA);
	return k;
}

static session_t *
alloc_session(const struct session_config *c, const struct session_callbacks *cb,
              void *user, int role, uint32_t path, uint64_t now)
{
	if (!c || !cb || !cb->output || !cb->event || !path)
		return NULL;
	if (c->mtu < 100 || c->mtu > PKT_MAX)
		return NULL;
	if (wire_init() < 0)
		return NULL;
	session_t *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->role = (uint8_t)role;
	s->state = SESSION_HANDSHAKE;
	s->cfg = *c;
	s->cb = *cb;
	s->user = user;
	s->encrypt = c->encrypt ? 1 : 0;
	s->created = s->last_recv = s->clock = now;
	s->path = path;
	struct spath *p = path_get(s, path);
	p->valid = 1; /* the handshake's: proven by the cookie or by TCP */
	p->last_recv = now;
	return s;
}

static void
send_hs(session_t *s, uint64_t now)
{
	struct wire_hello h;
	memset(&h, 0, sizeof h);
	h.type = s->hs_type;
	h.version = WIRE_VERSION;
	memcpy(h.pub, s->pub, WIRE_PUB);
	h.stamp = s->stamp;
	memcpy(h.mac, s->mac, WIRE_MAC);
	h.hello = s->hello;
	h.hello_len = s->hello_len;
	int n = wire_hello_encode(txbuf, sizeof txbuf, &h);
	if (n > 0)
		send_raw(s, txbuf, (size_t)n);
	s->hs_sent = now;
}

session_t *
session_client_create(const struct session_config *c,
                      const struct session_callbacks *cb, void *user,
                      uint32_t path, const uint8_t *hello, size_t hello_len,
                      uint64_t now)
{
	if (hello_len > WIRE_HELLO_MAX || (hello_len && !hello))
		return NULL;
	session_t *s = alloc_session(c, cb, user, CLIENT, path, now);
	if (!s)
		return NULL;
	if (hello_len) {
		s->hello = malloc(hello_len);
		if (!s->hello) {
			free(s);
			return NULL;
		}
		memcpy(s->hello, hello, hello_len);
	}
	s->hello_len = (uint16_t)hello_len;
	wire_keypair(s->pub, s->sec);
	s->hs_type = WIRE_HELLO;
	s->hs_interval = (uint32_t)c->handshake_retry_ms;
	s->hs_next = now + (uint64_t)s->hs_interval * 1000;
	s->hs_deadline = now + (uint64_t)c->handshake_timeout_ms * 1000;
	send_hs(s, now);
	return s;
}

static void
send_welcome(session_t *s, uint32_t path)
{
	struct wire_welcome w;
	memset(&w, 0, sizeof w);
	w.sid = s->sid;
	memcpy(w.pub, s->pub, WIRE_PUB);
	w.server_time_us = s->created;
	w.heartbeat_ms = (uint32_t)s->cfg.heartbeat_ms;
	w.timeout_ms = (uint32_t)s->cfg.timeout_ms;
	w.mtu = (uint16_t)(s->cfg.mtu > 65535 ? 65535 : s->cfg.mtu);
	w.flags = s->encrypt ? WIRE_F_ENCRYPT : 0;
	w.resume_grace_ms = (uint32_t)(s->cfg.resume_grace_ms > 0
	                               ? s->cfg.resume_grace_ms : 0);
	w.fec_data = (uint8_t)(s->fec_enc ? s->cfg.fec_data : 0);
	w.fec_parity = (uint8_t)(s->fec_enc ? s->cfg.fec_parity : 0);
	int n = wire_welcome_encode(txbuf, sizeof txbuf, &w, s->keys.tx);
	if (n > 0) {
		s->st.out_packets++;
		s->st.out_bytes += (uint64_t)n;
		s->cb.output(s, path, txbuf, (size_t)n, s->user);
	}
}

session_t *
session_server_create(const struct session_config *c,
                      const struct session_callbacks *cb, void *user,
                      uint32_t path, uint32_t sid,
                      const uint8_t client_pub[WIRE_PUB], uint64_t now)
{
	session_t *s = alloc_session(c, cb, user, SERVER, path, now);
	if (!s)
		return NULL;
	s->sid = sid;
	memcpy(s->peer_pub, client_pub, WIRE_PUB);
	wire_keypair(s->pub, s->sec);
	if (wire_server_keys(&s->keys, s->pub, s->sec, client_pub) < 0) {
		free(s);
		return NULL;
	}
	s->keyed = 1;
	s->kcp = make_kcp(s, sid, c->mtu - WIRE_OVERHEAD - fec_room(c));
	if (!s->kcp || make_fec(s) < 0) {
		session_release(s);
		return NULL;
	}
	send_welcome(s, path);
	return s;
}

session_t *
session_raw_create(const struct session_config *c,
                   const struct session_callbacks *cb, void *user,
                   uint32_t path, uint32_t conv, uint64_t now)
{
	session_t *s = alloc_session(c, cb, user, RAW, path, now);
	if (!s)
		return NULL;
	s->sid = conv;
	s->kcp = make_kcp(s, conv, c->mtu);
	if (!s->kcp) {
		free(s);
		return NULL;
	}
	return s;
}

void
session_release(session_t *s)
{
	if (!s)
		return;
	if (s->kcp)
		kcp_release(s->kcp);
	fec_enc_release(s->fec_enc);
	fec_dec_release(s->fec_dec);
	free(s->hello);
	wire_scrub(s->sec, sizeof s->sec);
	wire_scrub(&s->keys, sizeof s->keys);
	free(s);
}

void
session_rewelcome(session_t *s, uint32_t path, uint64_t now)
{
	s->clock = now;
	if (s->role != SERVER || s->state != SESSION_HANDSHAKE || !path)
		return;
	struct spath *p = path_get(s, path);
	p->valid = 1; /* proven like the first: by a cookie or by TCP */
	p->last_recv = now;
	send_welcome(s, path);
}

/* ---- receiving -------------------------------------------------------- */

static int
open_state(const session_t *s)
{
	return s->state == SESSION_OPEN;
}

/* Deliver every complete message. Stops when the callback closes. */
static void
drain(session_t *s)
{
	if (s->kcp && s->state == SESSION_CLOSING) {
		/* Closing: what the peer still sends is acknowledged, not read. */
		while (kcp_peeksize(s->kcp) >= 0 &&
		       kcp_recv(s->kcp, (char *)txbuf, (int)sizeof txbuf) >= 0)
			;
		return;
	}
	while (s->kcp && open_state(s)) {
		int n = kcp_peeksize(s->kcp);
		if (n == KCP_EAGAIN)
			return;
		if (n < 0 || (s->cfg.msg_max && n > s->cfg.msg_max)) {
			session_close(s, SESSION_CLOSE_PROTOCOL, "message too large", 0,
			              s->last_recv);
			return;
		}
		if ((size_t)n > rxcap || !rxmsg) { /* an empty one needs a buffer too */
			size_t cap = rxcap ? rxcap : 4096;
			while (cap < (size_t)n)
				cap *= 2;
			uint8_t *p = realloc(rxmsg, cap);
			if (!p)
				return;
			rxmsg = p;
			rxcap = cap;
		}
		n = kcp_recv(s->kcp, (char *)rxmsg, (int)rxcap);
		if (n < 0)
			return;
		s->st.msgs_in++;
		struct session_event ev = { .type = SESSION_EV_MESSAGE,
		                            .data = rxmsg, .len = (size_t)n };
		emit(s, &ev);
	}
}

static void
on_pong(session_t *s, const uint8_t *b, uint64_t now)
{
	uint64_t t0 = wire_get64(b + 4), t1 = wire_get64(b + 12);
	if (t0 > now || now - t0 > 60000000)
		return; /* not a time we sent: ignore the sample */
	double r = (double)(now - t0);
	if (!s->have_rtt) {
		s->srtt = r;
		s->rttvar = r / 2;
		s->have_rtt = 1;
	} else {
		double d = s->srtt > r ? s->srtt - r : r - s->srtt;
		s->rttvar = 0.75 * s->rttvar + 0.25 * d;
		s->srtt = 0.875 * s->srtt + 0.125 * r;
	}
	/* The peer read its clock halfway through the round trip (NTP's
	 * assumption); keep the sample with the smallest RTT of the last few,
	 * the one least skewed by queueing. */
	int64_t off = (int64_t)(t1 - t0) - (int64_t)((now - t0) / 2);
	s->off_sample[s->sample_pos] = off;
	s->rtt_sample[s->sample_pos] = now - t0;
	s->sample_pos = (s->sample_pos + 1) % OFFSET_SAMPLES;
	if (s->nsamples < OFFSET_SAMPLES)
		s->nsamples++;
	int best = 0;
	for (int i = 1; i < s->nsamples; i++)
		if (s->rtt_sample[i] < s->rtt_sample[best])
			best = i;
	s->offset = s->off_sample[best];
	s->st.pongs++;
}

static int
on_body(session_t *s, uint8_t type, uint8_t *b, size_t n, uint64_t now)
{
	switch (type) {
	case WIRE_KCP:
		if (!s->kcp)
			return 0; /* closing without KCP: acks no longer matter */
		if (kcp_input(s->kcp, (const char *)b, (long)n) < 0) {
			s->st.in_malformed++;
			return SESSION_EINPUT;
		}
		drain(s);
		if (s->kcp)
			kcp_update(s->kcp, ms(now));
		return 0;
	case WIRE_DGRAM: {
		if (n < 4)
			break;
		uint32_t seq = wire_get32(b);
		if (s->dgram_any && (int32_t)(seq - s->dgram_rx) <= 0) {
			s->st.dgrams_stale++;
			return 0;
		}
		s->dgram_any = 1;
		s->dgram_rx = seq;
		if (!open_state(s))
			return 0;
		s->st.dgrams_in++;
		struct session_event ev = { .type = SESSION_EV_DATAGRAM, .data = b + 4,
		                            .len = n - 4, .seq = seq };
		emit(s, &ev);
		return 0;
	}
	case WIRE_PING: {
		if (n != 12)
			break;
		uint8_t *o = txbuf + WIRE_HDR;
		memcpy(o, b, 12);
		wire_put64(o + 12, now);
		send_sealed(s, WIRE_PONG, 20);
		return 0;
	}
	case WIRE_PONG:
		if (n != 20)
			break;
		on_pong(s, b, now);
		return 0;
	case WIRE_CLOSE: {
		if (n < 3 || n != 3u + b[2])
			break;
		send_sealed(s, WIRE_CLOSE_ACK, 0);
		if (s->state == SESSION_CLOSING) {
			/* Both sides closed at once: ours was decided first. */
			finish(s, s->close_code, s->close_reason, 0);
			return 0;
		}
		char reason[WIRE_REASON_MAX + 1];
		memcpy(reason, b + 3, b[2]);
		reason[b[2]] = 0;
		for (int i = 0; i < b[2]; i++)
			if ((unsigned char)reason[i] < 0x20)
				reason[i] = '?'; /* the peer's text goes to logs */
		finish(s, wire_get16(b), reason, 1);
		return 0;
	}
	case WIRE_CLOSE_ACK:
		if (n != 0)
			break;
		if (s->state == SESSION_CLOSING && s->close_sent)
			finish(s, s->close_code, s->close_reason, 0);
		return 0;
	case WIRE_PATH_CHALLENGE:
		if (n != WIRE_TOKEN)
			break;
		/* answered where it came from: the asker tests that path */
		memmove(txbuf + WIRE_HDR, b, WIRE_TOKEN);
		send_to(s, s->in_path, WIRE_PATH_RESPONSE, WIRE_TOKEN);
		return 0;
	case WIRE_PATH_RESPONSE: {
		if (n != WIRE_TOKEN)
			break;
		struct spath *p = path_find(s, s->in_path);
		if (!p || memcmp(p->token, b, WIRE_TOKEN))
			return 0;
		if (s->role == SERVER && p->challenged) {
			p->valid = 1;
			p->challenged = 0;
			if (s->data_path == p->id)
				follow(s, p, now);
		} else if (s->role == CLIENT && p->probing) {
			p->probing = 0;
			emit_path(s, SESSION_EV_PROBE, p->id, 0);
		}
		return 0;
	}
	}
	s->st.in_malformed++;
	return SESSION_EINPUT;
}

static int
client_handshake(session_t *s, uint8_t *pkt, size_t len, uint64_t now)
{
	if (s->state != SESSION_HANDSHAKE)
		return SESSION_EAGAIN;
	switch (pkt[0]) {
	case WIRE_CHALLENGE: {
		uint32_t stamp;
		uint8_t mac[WIRE_MAC];
		if (wire_challenge_decode(pkt, len, &stamp, mac) < 0)
			break;
		if (s->hs_type == WIRE_INIT && stamp == s->stamp &&
		    !memcmp(mac, s->mac, WIRE_MAC))
			return 0; /* a duplicate */
		s->stamp = stamp;
		memcpy(s->mac, mac, WIRE_MAC);
		s->hs_type = WIRE_INIT;
		s->hs_interval = (uint32_t)s->cfg.handshake_retry_ms;
		s->hs_next = now + (uint64_t)s->hs_interval * 1000;
		send_hs(s, now);
		return 0;
	}
	case WIRE_REFUSE: {
		struct wire_refuse r;
		if (wire_refuse_decode(pkt, len, &r) < 0 || memcmp(r.echo, s->pub, 16))
			break;
		char reason[WIRE_REASON_MAX + 1];
		memcpy(reason, r.reason, r.reason_len);
		reason[r.reason_len] = 0;
		finish(s, r.code ? r.code : SESSION_CLOSE_REFUSED, reason, 1);
		return 0;
	}
	case WIRE_WELCOME: {
		struct wire_welcome w;
		struct wire_keys k;
		if (wire_welcome_peek(pkt, len, &w) < 0)
			break;
		if (wire_client_keys(&k, s->pub, s->sec, w.pub) < 0 ||
		    wire_welcome_open(pkt, len, &w, k.rx) < 0) {
			s->st.in_auth_fail++;
			return SESSION_EAUTH;
		}
		if (w.sid == 0 || w.mtu < 100 || w.heartbeat_ms == 0 || w.timeout_ms == 0)
			break;
		s->keys = k;
		s->keyed = 1;
		s->sid = w.sid;
		memcpy(s->peer_pub, w.pub, WIRE_PUB);
		s->encrypt = (w.flags & WIRE_F_ENCRYPT) ? 1 : 0;
		if (w.mtu < s->cfg.mtu)
			s->cfg.mtu = w.mtu;
		s->cfg.heartbeat_ms = (int)w.heartbeat_ms;
		s->cfg.timeout_ms = (int)w.timeout_ms;
		s->cfg.resume_grace_ms = (int)(w.resume_grace_ms > 86400000u
		                               ? 86400000u : w.resume_grace_ms);
		s->cfg.fec_data = w.fec_data;
		s->cfg.fec_parity = w.fec_parity;
		if (make_fec(s) < 0) {
			finish(s, SESSION_CLOSE_HANDSHAKE, "bad FEC parameters", 0);
			return SESSION_EINPUT;
		}
		s->kcp = make_kcp(s, w.sid, s->cfg.mtu - WIRE_OVERHEAD - fec_room(&s->cfg));
		if (!s->kcp) {
			finish(s, SESSION_CLOSE_HANDSHAKE, "out of memory", 0);
			return SESSION_ENOMEM;
		}
		/* A first clock estimate from the handshake's round trip. */
		uint64_t rtt = now - s->hs_sent;
		s->offset = (int64_t)(w.server_time_us - s->hs_sent) - (int64_t)(rtt / 2);
		free(s->hello);
		s->hello = NULL;
		s->state = SESSION_OPEN;
		s->last_recv = now;
		send_ping(s, now); /* proves the keys to the server at once */
		struct session_event ev = { .type = SESSION_EV_OPEN };
		emit(s, &ev);
		return 0;
	}
	}
	s->st.in_malformed++;
	return SESSION_EINPUT;
}

/* A packet the FEC decoder gives back (arrived, or rebuilt). */
static void
fec_deliver(uint8_t *pkt, size_t len, void *user)
{
	session_t *s = user;
	session_input(s, s->fec_path, pkt, len, s->clock);
}

/* An FEC frame: what it carries goes through session_input one by one
 * and is authenticated there; the frame itself proves nothing. */
static int
fec_input(session_t *s, uint32_t path, uint8_t *pkt, size_t len, uint64_t now)
{
	if (!s->fec_dec || s->fec_in || len <= WIRE_FEC_HDR ||
	    wire_get32(pkt + 1) != s->sid) {
		s->st.in_malformed++;
		return SESSION_EINPUT;
	}
	uint32_t saved = s->fec_path;
	s->fec_path = path;
	s->fec_in = 1;
	struct fec_dec_stats a, b;
	fec_dec_stats(s->fec_dec, &a);
	int rc = fec_dec_input(s->fec_dec, pkt + WIRE_FEC_HDR, len - WIRE_FEC_HDR,
	                       now, fec_deliver, s);
	fec_dec_stats(s->fec_dec, &b);
	s->fec_in = 0;
	s->fec_path = saved;
	s->st.fec_recovered += b.recovered - a.recovered;
	s->st.fec_dups += b.duplicates - a.duplicates;
	return rc == FEC_EDUP || rc >= 0 ? 0 : SESSION_EINPUT;
}

int
session_input(session_t *s, uint32_t path, uint8_t *pkt, size_t len,
              uint64_t now)
{
	if (s->state == SESSION_CLOSED)
		return SESSION_ECLOSED;
	s->clock = now;
	if (len > 0 && pkt[0] == WIRE_FEC && s->role != RAW)
		return fec_input(s, path, pkt, len, now);
	s->st.in_packets++;
	s->st.in_bytes += len;
	if (s->role == RAW) {
		if (!s->kcp)
			return SESSION_ECLOSED;
		if (kcp_input(s->kcp, (const char *)pkt, (long)len) < 0) {
			s->st.in_malformed++;
			return SESSION_EINPUT;
		}
		s->last_recv = now;
		if (s->state == SESSION_HANDSHAKE) {
			s->state = SESSION_OPEN;
			struct session_event ev = { .type = SESSION_EV_OPEN };
			emit(s, &ev);
		}
		drain(s);
		if (s->kcp)
			kcp_update(s->kcp, ms(now));
		return 0;
	}
	if (len < 1) {
		s->st.in_malformed++;
		return SESSION_EINPUT;
	}
	if (pkt[0] < WIRE_KCP) {
		if (s->role == CLIENT) {
			int rc = client_handshake(s, pkt, len, now);
			struct spath *p;
			if (rc == 0 && s->keyed && (p = path_get(s, path))) {
				p->valid = 1; /* the server answered there */
				p->last_recv = now;
			}
			return rc;
		}
		return SESSION_EAGAIN; /* the gate handles handshakes */
	}
	if (!s->keyed)
		return SESSION_EAGAIN;
	struct wire_hdr h;
	if (wire_peek(pkt, len, &h) < 0 || h.sid != s->sid) {
		s->st.in_malformed++;
		return SESSION_EINPUT;
	}
	if (wire_replay_check(&s->replay, h.pn) < 0) {
		s->st.in_replay++;
		return SESSION_EREPLAY;
	}
	uint8_t *body;
	int n = wire_open(pkt, len, s->keys.rx, s->encrypt, &h, &body);
	if (n < 0) {
		s->st.in_auth_fail++;
		return SESSION_EAUTH;
	}
	wire_replay_accept(&s->replay, h.pn);
	/* The peer was silent for a while and is back (a tunnel, a lift):
	 * what is in flight was lost with the silence and KCP's backed-off
	 * timers would wait seconds more; send it again now. */
	uint64_t quiet = s->have_rtt ? (uint64_t)(4 * s->srtt) : 0;
	if (quiet < QUIET_MIN)
		quiet = QUIET_MIN;
	if (s->kcp && !s->offline && now - s->last_recv > quiet &&
	    s->state == SESSION_OPEN)
		kcp_rewind(s->kcp);
	s->last_recv = now;

	/* It authenticated: the peer is on path (or someone replays its
	 * packet there first: the replay window lets one copy through). */
	int probe = h.type == WIRE_PATH_CHALLENGE || h.type == WIRE_PATH_RESPONSE;
	struct spath *p = path_get(s, path);
	p->last_recv = now;
	if (!p->valid)
		p->in_bytes += len;
	s->in_path = path;
	if (s->role == CLIENT) {
		p->valid = 1;
		if (s->offline)
			switch_path(s, path, now);
	} else if (!probe && h.pn == s->replay.top) {
		s->data_path = path;
		if (p->valid)
			follow(s, p, now);
		else
			challenge(s, p, now);
	}
	if (s->state == SESSION_CLOSED)
		return 0;
	if (s->offline && !probe)
		return 0; /* nothing is taken until the path is proven */
	if (s->state == SESSION_HANDSHAKE && s->role == SERVER) {
		s->state = SESSION_OPEN;
		s->next_ping = now + (uint64_t)s->cfg.heartbeat_ms * 1000;
		struct session_event ev = { .type = SESSION_EV_OPEN };
		emit(s, &ev);
		if (s->state == SESSION_CLOSED)
			return 0;
	}
	return on_body(s, h.type, body, (size_t)n, now);
}

/* ---- sending ---------------------------------------------------------- */

static int
may_send(const session_t *s)
{
	return s->state == SESSION_OPEN ||
	       (s->state == SESSION_HANDSHAKE && s->role == SERVER);
}

int
session_send(session_t *s, const void *msg, size_t len, uint64_t now)
{
	s->clock = now;
	if (!may_send(s) || !s->kcp)
		return SESSION_ECLOSED;
	int max = s->cfg.msg_max ? s->cfg.msg_max : kcp_maxmsg(s->kcp);
	if (len > (size_t)max || len > (size_t)kcp_maxmsg(s->kcp))
		return SESSION_ETOOBIG;
	if ((int64_t)(kcp_waitbytes(s->kcp) + len) > s->cfg.watermark) {
		session_close(s, SESSION_CLOSE_BACKPRESSURE, "backpressure", 0, now);
		return SESSION_EFULL;
	}
	int rc = kcp_send(s->kcp, msg, (int)len);
	if (rc == KCP_ENOMEM)
		return SESSION_ENOMEM;
	if (rc == KCP_EDEAD) {
		session_close(s, SESSION_CLOSE_DEAD, "dead link", 0, now);
		return SESSION_ECLOSED;
	}
	if (rc < 0)
		return SESSION_ETOOBIG;
	s->st.msgs_out++;
	return 0;
}

int
session_send_unreliable(session_t *s, const void *msg, size_t len, uint64_t now)
{
	s->clock = now;
	if (s->role == RAW)
		return SESSION_EINVAL;
	if (!may_send(s))
		return SESSION_ECLOSED;
	if (len > (size_t)session_dgram_max(&s->cfg))
		return SESSION_ETOOBIG;
	if (s->offline)
		return 0; /* stale by the time anyone could read it */
	uint8_t *b = txbuf + WIRE_HDR;
	wire_put32(b, ++s->dgram_tx);
	if (len)
		memcpy(b + 4, msg, len);
	send_sealed(s, WIRE_DGRAM, 4 + len);
	s->st.dgrams_out++;
	return 0;
}

static void
set_reason(session_t *s, int code, const char *reason)
{
	size_t n = reason ? strlen(reason) : 0;
	if (n > WIRE_REASON_MAX)
		n = WIRE_REASON_MAX;
	if (n)
		memcpy(s->close_reason, reason, n);
	s->close_reason[n] = 0;
	s->close_code = code;
}

void
session_close(session_t *s, int code, const char *reason, int graceful,
              uint64_t now)
{
	if (s->state == SESSION_CLOSING || s->state == SESSION_CLOSED)
		return;
	s->clock = now;
	set_reason(s, code, reason ? reason : "closed");
	if (s->offline) {
		/* no path to say it on: the client learns from the expiry, or
		 * from the CLOSE sent below when it is the client that closes */
		if (s->role == CLIENT)
			send_close(s, now);
		finish(s, s->close_code, s->close_reason, 0);
		return;
	}
	if (!s->keyed && s->role != RAW) {
		finish(s, s->close_code, s->close_reason, 0);
		return;
	}
	s->state = SESSION_CLOSING;
	if (graceful && s->kcp && kcp_waitsnd(s->kcp) > 0) {
		s->close_deadline = now + (uint64_t)s->cfg.linger_ms * 1000;
		kcp_update(s->kcp, ms(now));
		return;
	}
	if (s->kcp) { /* nothing left worth delivering: free the memory now */
		kcp_release(s->kcp);
		s->kcp = NULL;
	}
	if (s->role == RAW) {
		finish(s, s->close_code, s->close_reason, 0);
		return;
	}
	send_close(s, now);
}

void
session_abort(session_t *s, int code, const char *reason, uint64_t now)
{
	(void)now;
	if (s->state == SESSION_CLOSED)
		return;
	if (s->state == SESSION_CLOSING)
		finish(s, s->close_code, s->close_reason, 0);
	else
		finish(s, code, reason ? reason : "aborted", 0);
}

/* ---- timers ----------------------------------------------------------- */

int
session_update(session_t *s, uint64_t now)
{
	if (s->state == SESSION_CLOSED)
		return s->state;
	s->clock = now;
	if (s->fec_enc && fec_enc_check(s->fec_enc, now) <= now) {
		/* the group's time is up: its parity goes where data goes now,
		 * if that is still a UDP path */
		if (uses_fec(s, s->path)) {
			s->fec_path = s->path;
			fec_enc_update(s->fec_enc, now, fec_out, s);
		} else {
			fec_enc_flush(s->fec_enc, fec_drop, s);
		}
	}
	if (s->role == CLIENT && s->state == SESSION_HANDSHAKE) {
		if (now >= s->hs_deadline) {
			finish(s, SESSION_CLOSE_HANDSHAKE, "handshake timeout", 0);
			return s->state;
		}
		if (now >= s->hs_next) {
			send_hs(s, now);
			s->hs_interval *= 2;
			if (s->hs_interval > (uint32_t)s->cfg.handshake_retry_max)
				s->hs_interval = (uint32_t)s->cfg.handshake_retry_max;
			s->hs_next = now + (uint64_t)s->hs_interval * 1000;
		}
		return s->state;
	}
	if (s->offline) {
		if (now >= s->offline_deadline)
			finish(s, SESSION_CLOSE_EXPIRED, "expired", 0);
		return s->state;
	}
	if (now >= s->last_recv &&
	    now - s->last_recv >= (uint64_t)s->cfg.timeout_ms * 1000) {
		if (may_resume(s)) {
			go_offline(s, now);
			return s->state;
		}
		if (s->state != SESSION_CLOSING) {
			set_reason(s, SESSION_CLOSE_TIMEOUT, "timeout");
			if (s->keyed)
				send_close(s, now); /* best effort: the peer may hear it */
		}
		finish(s, s->close_code, s->close_reason, 0);
		return s->state;
	}
	if (s->kcp && kcp_update(s->kcp, ms(now)) == KCP_EDEAD) {
		if (s->state == SESSION_CLOSING) {
			finish(s, s->close_code, s->close_reason, 0);
			return s->state;
		}
		session_close(s, SESSION_CLOSE_DEAD, "dead link", 0, now);
		return s->state;
	}
	if (s->keyed && s->tx_pn >= UINT32_MAX - 1024) {
		/* pn never wraps (a nonce must not repeat under one key): 49 days
		 * at a packet per millisecond, then a new session. */
		finish(s, SESSION_CLOSE_PROTOCOL, "packet numbers exhausted", 0);
		return s->state;
	}
	if (s->state == SESSION_OPEN && s->role != RAW && now >= s->next_ping)
		send_ping(s, now);
	if (s->state == SESSION_CLOSING) {
		if (!s->close_sent) {
			if (!s->kcp || kcp_waitsnd(s->kcp) == 0 || now >= s->close_deadline) {
				if (s->kcp) {
					kcp_release(s->kcp);
					s->kcp = NULL;
				}
				if (s->role == RAW)
					finish(s, s->close_code, s->close_reason, 0);
				else
					send_close(s, now);
			}
		} else if (now >= s->close_next) {
			if (s->close_tries >= s->cfg.close_retries)
				finish(s, s->close_code, s->close_reason, 0);
			else
				send_close(s, now);
		}
	}
	return s->state;
}

static uint64_t
earlier(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t
session_check(const session_t *s, uint64_t now)
{
	if (s->state == SESSION_CLOSED)
		return now + 3600000000ull;
	if (s->role == CLIENT && s->state == SESSION_HANDSHAKE)
		return earlier(s->hs_next, s->hs_deadline);
	if (s->offline)
		return s->offline_deadline;
	uint64_t due0 = s->fec_enc ? fec_enc_check(s->fec_enc, now) : UINT64_MAX;
	uint64_t due = s->last_recv + (uint64_t)s->cfg.timeout_ms * 1000;
	if (s->state == SESSION_OPEN && s->role != RAW)
		due = earlier(due, s->next_ping);
	if (s->state == SESSION_CLOSING && !s->close_sent &&
	    (!s->kcp || kcp_waitsnd(s->kcp) == 0))
		return now; /* lingering, and everything is acknowledged: CLOSE now */
	if (s->state == SESSION_CLOSING)
		due = earlier(due, s->close_sent ? s->close_next : s->close_deadline);
	if (s->kcp && !kcp_idle(s->kcp)) {
		uint32_t n = ms(now);
		int32_t d = (int32_t)(kcp_check(s->kcp, n) - n);
		due = earlier(due, d <= 0 ? now : (now / 1000 + (uint64_t)d) * 1000);
	}
	return earlier(due, due0);
}

/* ---- paths: the owner's side ------------------------------------------ */

void
session_path_lost(session_t *s, uint32_t path, int code, const char *reason,
                  uint64_t now)
{
	if (s->state == SESSION_CLOSED)
		return;
	s->clock = now;
	struct spath *p = path_find(s, path);
	if (p)
		memset(p, 0, sizeof *p);
	if (s->data_path == path)
		s->data_path = 0;
	if (path != s->path || s->offline)
		return;
	struct spath *best = NULL;
	uint64_t window = (uint64_t)s->cfg.timeout_ms * 1000;
	for (int i = 0; i < SESSION_PATHS; i++) {
		struct spath *q = &s->paths[i];
		if (q->id && q->valid && now - q->last_recv < window &&
		    (!best || q->last_recv > best->last_recv))
			best = q;
	}
	if (best && s->state == SESSION_OPEN)
		switch_path(s, best->id, now);
	else if (may_resume(s))
		go_offline(s, now);
	else
		session_abort(s, code, reason, now);
}

uint32_t
session_path(const session_t *s)
{
	return s->path;
}

int
session_path_known(const session_t *s, uint32_t path)
{
	return path_find((session_t *)s, path) != NULL;
}

uint64_t
session_last_recv(const session_t *s, uint32_t path)
{
	if (!path)
		return s->last_recv;
	const struct spath *p = path_find((session_t *)s, path);
	return p ? p->last_recv : 0;
}

int
session_offline(const session_t *s)
{
	return s->offline;
}

void
session_path_use(session_t *s, uint32_t path, uint64_t now)
{
	(void)now;
	if (s->role != CLIENT || !path || s->state == SESSION_CLOSED)
		return;
	path_get(s, path);
	if (s->path == path)
		return;
	s->path = path;
	s->st.path_changes++;
	if (s->kcp && !s->offline)
		kcp_rewind(s->kcp);
}

int
session_probe(session_t *s, uint32_t path, uint64_t now)
{
	s->clock = now;
	if (s->role != CLIENT || !path)
		return SESSION_EINVAL;
	if (s->state != SESSION_OPEN)
		return SESSION_ECLOSED;
	struct spath *p = path_get(s, path);
	if (!p->probing)
		wire_random(p->token, WIRE_TOKEN);
	p->probing = 1;
	memcpy(txbuf + WIRE_HDR, p->token, WIRE_TOKEN);
	send_to(s, path, WIRE_PATH_CHALLENGE, WIRE_TOKEN);
	return 0;
}

void
session_ping(session_t *s, uint64_t now)
{
	s->clock = now;
	if (s->keyed && s->state == SESSION_OPEN && s->role != RAW)
		send_ping(s, now);
}

void
session_rehello(session_t *s, uint64_t now)
{
	if (s->role != CLIENT || s->state != SESSION_HANDSHAKE)
		return;
	s->hs_type = WIRE_HELLO;
	s->hs_interval = (uint32_t)s->cfg.handshake_retry_ms;
	s->hs_next = now + (uint64_t)s->hs_interval * 1000;
	send_hs(s, now);
}

/* ---- accessors -------------------------------------------------------- */

int
session_state(const session_t *s)
{
	return s->state;
}

uint32_t
session_id(const session_t *s)
{
	return s->sid;
}

void *
session_user(const session_t *s)
{
	return s->user;
}

void
session_set_user(session_t *s, void *user)
{
	s->user = user;
}

int
session_is_raw(const session_t *s)
{
	return s->role == RAW;
}

const uint8_t *
session_peer_pub(const session_t *s)
{
	return s->peer_pub;
}

void
session_stats(const session_t *s, struct session_stats *st)
{
	*st = s->st;
	st->srtt_ms = s->srtt / 1000.0;
	st->rttvar_ms = s->rttvar / 1000.0;
	st->offset_us = s->offset;
	st->kcp_srtt_ms = s->kcp ? kcp_srtt(s->kcp) : 0;
	st->waiting_bytes = s->kcp ? (int64_t)kcp_waitbytes(s->kcp) : 0;
	st->encrypted = s->keyed && s->encrypt;
}

size_t
session_memsize(const session_t *s)
{
	return sizeof *s + s->hello_len + (s->kcp ? kcp_memsize(s->kcp) : 0) +
	       (s->fec_enc ? fec_enc_memsize(s->fec_enc) : 0) +
	       (s->fec_dec ? fec_dec_memsize(s->fec_dec) : 0);
}
