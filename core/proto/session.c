/*
 * session.c - one logical connection over the wire codec and KCP: the
 * state machine (create, input, send, close) and its timers. See session.h
 * for the contract; docs/PROTOCOL.md for the packets. The rest of a
 * session lives beside it (session_int.h lists the files): paths and
 * resume, the client's handshake, the heartbeat, FEC, raw KCP.
 *
 * Time: microseconds (uint64) here, milliseconds (uint32, wrapping) for
 * KCP. Timers are deadlines compared in session_update; session_check
 * returns the earliest one, so an idle open session wakes only for its
 * heartbeat.
 */
#include "session_int.h"

_Thread_local uint8_t session_txbuf[PKT_MAX + WIRE_OVERHEAD];
/* One message is read here (per thread too). */
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
	c->aes = 1;
	c->worker_hint = -1;
	c->heartbeat_ms = 1000;
	c->busy_heartbeat_ms = 5000;
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
	c->minrto = 5;
	c->msg_max = 0;
	c->ack_delay = 0;
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

/* The last event: the KCP object goes, the CLOSE event fires. */
void
session_finish(session_t *s, int code, const char *reason, int remote)
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

/* Seal the body already written at session_txbuf + WIRE_HDR and send it on path:
 * on an unproven one (server), only within what it sent us. */
void
session_send_to(session_t *s, uint32_t path, uint8_t type, size_t blen)
{
	if (!s->keyed || s->tx_pn == UINT32_MAX || !path)
		return;
	struct spath *p = s->role == SERVER ? session_path_find(s, path) : NULL;
	size_t len = blen + WIRE_OVERHEAD;
	if (p && !p->valid) {
		if (p->out_bytes + len > p->in_bytes)
			return;
		p->out_bytes += len;
	}
	int n = wire_seal(session_txbuf, sizeof session_txbuf, type, s->sid, ++s->tx_pn,
	                  session_txbuf + WIRE_HDR, blen, s->keys.tx, s->encrypt);
	if (n < 0)
		return;
	if (type == WIRE_KCP || type == WIRE_DGRAM) {
		s->data_tx = ms(s->clock); /* traffic out: the heartbeat may wait */
		s->data_seen |= 2;
	}
	if (session_fec_wanted(s, path, type)) {
		session_fec_send(s, path, session_txbuf, (size_t)n);
		return;
	}
	s->st.out_packets++;
	s->st.out_bytes += (uint64_t)n;
	s->cb.output(s, path, session_txbuf, (size_t)n, s->user);
}

void
session_send_sealed(session_t *s, uint8_t type, size_t blen)
{
	session_send_to(s, s->path, type, blen);
}

void
session_send_plain(session_t *s, const uint8_t *pkt, size_t len)
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
	if ((size_t)len > PKT_MAX)
		return -1;
	memcpy(session_txbuf + WIRE_HDR, buf, (size_t)len);
	session_send_sealed(s, WIRE_KCP, (size_t)len);
	return 0;
}

/* One CLOSE on the path in use. */
void
session_put_close(session_t *s)
{
	size_t n = strlen(s->close_reason);
	uint8_t *b = session_txbuf + WIRE_HDR;
	wire_put16(b, (uint16_t)s->close_code);
	b[2] = (uint8_t)n;
	memcpy(b + 3, s->close_reason, n);
	session_send_sealed(s, WIRE_CLOSE, 3 + n);
}

static void
send_close(session_t *s, uint64_t now)
{
	session_put_close(s);
	s->close_sent = 1;
	s->close_tries++;
	uint64_t rto = s->have_rtt ? (uint64_t)(s->srtt * 2 + s->rttvar * 4) : 0;
	if (rto < 200000)
		rto = 200000;
	s->close_next = now + rto;
}

/* The lingering is over: CLOSE goes out; raw KCP has no CLOSE, so a raw
 * session ends here. */
static void
say_close(session_t *s, uint64_t now)
{
	if (s->role == RAW)
		session_finish(s, s->close_code, s->close_reason, 0);
	else
		send_close(s, now);
}

kcp_t *
session_make_kcp(session_t *s, uint32_t conv, int mtu)
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
	kcp_seteager(k, c->ack_delay ? KCP_EAGER_DATA | KCP_EAGER_RESEND : KCP_EAGER_ALL);
	/* a delayed ack waits exactly one interval, not until the next flush
	 * (0..interval): the peer's RTO then pays the delay, not its spread */
	if (c->ack_delay)
		kcp_setackdelay(k, c->interval);
	if (c->minrto > 0) /* after kcp_nodelay, which sets its own floor */
		kcp_setminrto(k, c->minrto);
	/* acks ride on the next frame or input (raw KCP: the classic timing
	 * its peer expects) */
	if (s->role != RAW)
		kcp_setmaxackdelay(k, c->max_ack_delay);
	return k;
}

session_t *
session_alloc(const struct session_config *c, const struct session_callbacks *cb,
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
	struct spath *p = session_path_get(s, path);
	p->valid = 1; /* the handshake's: proven by the cookie or by TCP */
	p->last_recv = now;
	return s;
}

int
session_msg_max(const session_t *s)
{
	if (!s->kcp)
		return 0;
	int max = kcp_maxmsg(s->kcp);
	if (s->cfg.msg_max > 0 && s->cfg.msg_max < max)
		max = s->cfg.msg_max;
	if (s->peer_msg_max > 0 && s->peer_msg_max < (uint32_t)max)
		max = (int)s->peer_msg_max;
	return max;
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
	w.flags = (s->encrypt & WIRE_SUITE_ENCRYPT ? WIRE_F_ENCRYPT : 0) |
	          (s->encrypt & WIRE_SUITE_AESGCM ? WIRE_F_AESGCM : 0);
	w.resume_grace_ms = (uint32_t)(s->cfg.resume_grace_ms > 0
	                               ? s->cfg.resume_grace_ms : 0);
	w.fec_data = (uint8_t)(s->fec_enc ? s->cfg.fec_data : 0);
	w.fec_parity = (uint8_t)(s->fec_enc ? s->cfg.fec_parity : 0);
	memcpy(w.reset_token, s->cfg.reset_token, WIRE_RESET_TOKEN);
	w.msg_max = (uint32_t)session_msg_max(s);
	int n = wire_welcome_encode(session_txbuf, sizeof session_txbuf, &w, s->keys.tx);
	if (n > 0) {
		s->st.out_packets++;
		s->st.out_bytes += (uint64_t)n;
		s->cb.output(s, path, session_txbuf, (size_t)n, s->user);
	}
}

session_t *
session_server_create(const struct session_config *c,
                      const struct session_callbacks *cb, void *user,
                      uint32_t path, uint32_t sid,
                      const uint8_t client_pub[WIRE_PUB],
                      const struct session_v2 *v2, uint64_t now)
{
	session_t *s = session_alloc(c, cb, user, SERVER, path, now);
	if (!s)
		return NULL;
	s->sid = sid;
	memcpy(s->peer_pub, client_pub, WIRE_PUB);
	int r;
	if (v2) {
		/* the cipher: AES-256-GCM when the client offered it and both
		 * this config and this CPU allow it */
		if ((v2->nk->caps & WIRE_CAP_AESGCM) && c->aes &&
		    wire_aesgcm_available())
			s->encrypt |= WIRE_SUITE_AESGCM;
		memcpy(s->pub, v2->eph_pub, WIRE_PUB);
		r = wire_nk_server_keys(&s->keys, v2->nk, v2->eph_sec, v2->eph_pub,
		                        v2->sealed, v2->sealed_len);
	} else {
		wire_keypair(s->pub, s->sec);
		r = wire_server_keys(&s->keys, s->pub, s->sec, client_pub);
		/* the ephemeral secret is not needed again: gone now, for
		 * forward secrecy (a WELCOME sent again is encoded from the
		 * keys) */
		wire_scrub(s->sec, sizeof s->sec);
	}
	if (r < 0) {
		free(s);
		return NULL;
	}
	s->keyed = 1;
	s->kcp = session_make_kcp(s, sid, c->mtu - WIRE_OVERHEAD - fec_room(c));
	if (!s->kcp || session_fec_make(s) < 0) {
		session_release(s);
		return NULL;
	}
	send_welcome(s, path);
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
	wire_scrub(s->fec_ktx, sizeof s->fec_ktx);
	wire_scrub(s->fec_krx, sizeof s->fec_krx);
	wire_scrub(&s->nk, sizeof s->nk);
	free(s);
}

void
session_rewelcome(session_t *s, uint32_t path, uint64_t now)
{
	s->clock = now;
	if (s->role != SERVER || s->state != SESSION_HANDSHAKE || !path)
		return;
	struct spath *p = session_path_get(s, path);
	p->valid = 1; /* proven like the first: by a cookie or by TCP */
	p->last_recv = now;
	send_welcome(s, path);
}

/* Deliver every complete message. Stops when the callback closes. */
void
session_drain(session_t *s)
{
	if (s->kcp && s->state == SESSION_CLOSING) {
		/* Closing: what the peer still sends is acknowledged, not read. */
		while (kcp_peeksize(s->kcp) >= 0 &&
		       kcp_recv(s->kcp, (char *)session_txbuf, (int)sizeof session_txbuf) >= 0)
			;
		return;
	}
	while (s->kcp && is_open(s)) {
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

static int
on_body(session_t *s, uint8_t type, uint8_t *b, size_t n, uint64_t now)
{
	if (type == WIRE_KCP || type == WIRE_DGRAM) {
		s->data_rx = ms(now); /* traffic in: the heartbeat may wait */
		s->data_seen |= 1;
	}
	switch (type) {
	case WIRE_KCP:
		if (!s->kcp)
			return 0; /* closing without KCP: acks no longer matter */
		/* timed at arrival: the RTT samples, and so the RTO, are not
		 * inflated by how long ago KCP was last updated */
		if (kcp_input_at(s->kcp, (const char *)b, (long)n, ms(now)) < 0) {
			s->st.in_malformed++;
			return SESSION_EINPUT;
		}
		session_drain(s);
		if (s->kcp && !s->cfg.batch_flush)
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
		if (!is_open(s))
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
		uint8_t *o = session_txbuf + WIRE_HDR;
		memcpy(o, b, 12);
		wire_put64(o + 12, now);
		session_send_sealed(s, WIRE_PONG, 20);
		return 0;
	}
	case WIRE_PONG:
		if (n != 20)
			break;
		session_on_pong(s, b, now);
		return 0;
	case WIRE_CLOSE: {
		if (n < 3 || n != 3u + b[2])
			break;
		/* offline, the ack goes back where the CLOSE came from (an
		 * unproven path: within what it sent, session_send_to) */
		session_send_to(s, s->offline ? s->in_path : s->path,
		                WIRE_CLOSE_ACK, 0);
		if (s->state == SESSION_CLOSING) {
			/* Both sides closed at once: ours was decided first. */
			session_finish(s, s->close_code, s->close_reason, 0);
			return 0;
		}
		char reason[WIRE_REASON_MAX + 1];
		memcpy(reason, b + 3, b[2]);
		reason[b[2]] = 0;
		for (int i = 0; i < b[2]; i++)
			if ((unsigned char)reason[i] < 0x20)
				reason[i] = '?'; /* the peer's text goes to logs */
		session_finish(s, wire_get16(b), reason, 1);
		return 0;
	}
	case WIRE_CLOSE_ACK:
		if (n != 0)
			break;
		if (s->state == SESSION_CLOSING && s->close_sent)
			session_finish(s, s->close_code, s->close_reason, 0);
		return 0;
	case WIRE_PATH_CHALLENGE:
	case WIRE_PATH_RESPONSE:
		if (n != WIRE_TOKEN)
			break;
		session_path_body(s, type, b, now);
		return 0;
	}
	s->st.in_malformed++;
	return SESSION_EINPUT;
}

/* Every packet in. hp is its header when the owner already read it (the
 * gate, with wire_peek), so a datagram's header is parsed once. */
static int
input(session_t *s, uint32_t path, uint8_t *pkt, size_t len,
      const struct wire_hdr *hp, uint64_t now)
{
	if (s->state == SESSION_CLOSED)
		return SESSION_ECLOSED;
	s->clock = now;
	if (s->role == RAW)
		return session_raw_input(s, pkt, len, now);
	if (len > 0 && pkt[0] == WIRE_FEC)
		return session_fec_input(s, path, pkt, len, now);
	s->st.in_packets++;
	s->st.in_bytes += len;
	if (len < 1) {
		s->st.in_malformed++;
		return SESSION_EINPUT;
	}
	if (pkt[0] < WIRE_KCP) {
		if (s->role == CLIENT) {
			int rc = session_client_input(s, pkt, len, now);
			struct spath *p;
			if (rc == 0 && s->keyed && (p = session_path_get(s, path))) {
				p->valid = 1; /* the server answered there */
				p->last_recv = now;
			}
			return rc;
		}
		return SESSION_EAGAIN; /* the gate handles handshakes */
	}
	if (!s->keyed)
		return SESSION_EAGAIN;
	struct wire_hdr hb;
	if (!hp) {
		if (wire_peek(pkt, len, &hb) < 0) {
			s->st.in_malformed++;
			return SESSION_EINPUT;
		}
		hp = &hb;
	}
	if (hp->sid != s->sid) {
		s->st.in_malformed++;
		return SESSION_EINPUT;
	}
	if (wire_replay_check(&s->replay, hp->pn) < 0) {
		s->st.in_replay++;
		return SESSION_EREPLAY;
	}
	uint8_t *body;
	int n = wire_open_peeked(pkt, len, s->keys.rx, s->encrypt, hp, &body);
	if (n < 0) {
		s->st.in_auth_fail++;
		return SESSION_EAUTH;
	}
	wire_replay_accept(&s->replay, hp->pn);
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

	/* It authenticated: the peer is on path. */
	session_path_heard(s, path, len, hp, now);
	if (s->state == SESSION_CLOSED)
		return 0;
	int probe = hp->type == WIRE_PATH_CHALLENGE ||
	            hp->type == WIRE_PATH_RESPONSE;
	if (s->offline && !probe && hp->type != WIRE_CLOSE)
		return 0; /* nothing is taken until the path is proven, but a
		             CLOSE: it authenticated, the peer is done */
	if (s->state == SESSION_HANDSHAKE && s->role == SERVER) {
		s->state = SESSION_OPEN;
		s->next_ping = now + (uint64_t)s->cfg.heartbeat_ms * 1000;
		struct session_event ev = { .type = SESSION_EV_OPEN };
		emit(s, &ev);
		if (s->state == SESSION_CLOSED)
			return 0;
	}
	return on_body(s, hp->type, body, (size_t)n, now);
}

int
session_input(session_t *s, uint32_t path, uint8_t *pkt, size_t len,
              uint64_t now)
{
	return input(s, path, pkt, len, NULL, now);
}

int
session_input_peeked(session_t *s, uint32_t path, uint8_t *pkt, size_t len,
                     const struct wire_hdr *h, uint64_t now)
{
	return input(s, path, pkt, len, h, now);
}

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
	if (len > (size_t)session_msg_max(s))
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
	uint8_t *b = session_txbuf + WIRE_HDR;
	wire_put32(b, ++s->dgram_tx);
	if (len)
		memcpy(b + 4, msg, len);
	session_send_sealed(s, WIRE_DGRAM, 4 + len);
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
	if (s->offline && s->role == CLIENT) {
		/* Client: nothing can be delivered before the CLOSE, which
		 * knocks: sent now and close_retries times in all (and on every
		 * session_ping, the owner's knock on fresh sockets), until the
		 * server acknowledges or the grace ends (session_update). */
		s->state = SESSION_CLOSING;
		if (s->kcp) {
			kcp_release(s->kcp);
			s->kcp = NULL;
		}
		send_close(s, now);
		return;
	}
	if (s->offline) {
		/* Server: no path to say it on yet. The close waits for the
		 * client: when it resumes, what was queued goes first (graceful),
		 * then the CLOSE (switch_path starts the linger); at the grace's
		 * end the session ends with this code (session_update). */
		s->state = SESSION_CLOSING;
		if (s->kcp && (!graceful || kcp_waitsnd(s->kcp) == 0)) {
			kcp_release(s->kcp);
			s->kcp = NULL;
		}
		return;
	}
	if (!s->keyed && s->role != RAW) {
		session_finish(s, s->close_code, s->close_reason, 0);
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
	say_close(s, now);
}

void
session_abort(session_t *s, int code, const char *reason, uint64_t now)
{
	(void)now;
	if (s->state == SESSION_CLOSED)
		return;
	if (s->state == SESSION_CLOSING)
		session_finish(s, s->close_code, s->close_reason, 0);
	else
		session_finish(s, code, reason ? reason : "aborted", 0);
}

int
session_update(session_t *s, uint64_t now)
{
	if (s->state == SESSION_CLOSED)
		return s->state;
	s->clock = now;
	session_fec_tick(s, now);
	if (s->role == CLIENT && s->state == SESSION_HANDSHAKE) {
		session_client_tick(s, now);
		return s->state;
	}
	if (s->offline) {
		if (now >= s->offline_deadline) {
			if (s->state == SESSION_CLOSING) /* closed while offline */
				session_finish(s, s->close_code, s->close_reason, 0);
			else
				session_finish(s, SESSION_CLOSE_EXPIRED, "expired", 0);
		} else if (s->state == SESSION_CLOSING && s->close_sent &&
		           now >= s->close_next) {
			/* the client's CLOSE knocking */
			if (s->close_tries >= s->cfg.close_retries)
				session_finish(s, s->close_code, s->close_reason, 0);
			else
				send_close(s, now);
		}
		return s->state;
	}
	if (now >= s->last_recv &&
	    now - s->last_recv >= (uint64_t)s->cfg.timeout_ms * 1000) {
		if (session_may_resume(s)) {
			session_go_offline(s, now);
			return s->state;
		}
		if (s->state != SESSION_CLOSING) {
			set_reason(s, SESSION_CLOSE_TIMEOUT, "timeout");
			if (s->keyed)
				send_close(s, now); /* best effort: the peer may hear it */
		}
		session_finish(s, s->close_code, s->close_reason, 0);
		return s->state;
	}
	if (s->kcp && kcp_update(s->kcp, ms(now)) == KCP_EDEAD) {
		if (s->state == SESSION_CLOSING) {
			session_finish(s, s->close_code, s->close_reason, 0);
			return s->state;
		}
		session_close(s, SESSION_CLOSE_DEAD, "dead link", 0, now);
		return s->state;
	}
	if (s->keyed && s->tx_pn >= UINT32_MAX - 1024) {
		/* pn never wraps (a nonce must not repeat under one key): 49 days
		 * at a packet per millisecond, then a new session. */
		session_finish(s, SESSION_CLOSE_PROTOCOL, "packet numbers exhausted", 0);
		return s->state;
	}
	if (s->state == SESSION_OPEN && s->keyed && now >= session_ping_due(s, now))
		session_send_ping(s, now);
	if (s->state == SESSION_CLOSING) {
		if (!s->close_sent) {
			if (!s->kcp || kcp_waitsnd(s->kcp) == 0 || now >= s->close_deadline) {
				if (s->kcp) {
					kcp_release(s->kcp);
					s->kcp = NULL;
				}
				say_close(s, now);
			}
		} else if (now >= s->close_next) {
			if (s->close_tries >= s->cfg.close_retries)
				session_finish(s, s->close_code, s->close_reason, 0);
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
		return s->state == SESSION_CLOSING && s->close_sent
		       ? earlier(s->offline_deadline, s->close_next)
		       : s->offline_deadline;
	uint64_t due0 = s->fec_enc ? fec_enc_check(s->fec_enc, now) : UINT64_MAX;
	uint64_t due = s->last_recv + (uint64_t)s->cfg.timeout_ms * 1000;
	if (s->state == SESSION_OPEN && s->keyed) /* raw KCP: no heartbeat */
		due = earlier(due, session_ping_due(s, now));
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

int
session_set_max_ack_delay(session_t *s, int ms)
{
	if (ms < 0)
		return SESSION_EINVAL;
	if (s->role == RAW)
		return 0;
	s->cfg.max_ack_delay = ms;
	if (s->kcp)
		kcp_setmaxackdelay(s->kcp, ms);
	return 0;
}

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
	st->encrypted = s->keyed && (s->encrypt & WIRE_SUITE_ENCRYPT);
	st->aesgcm = s->keyed && (s->encrypt & WIRE_SUITE_AESGCM);
	st->keyed = s->keyed;
}

void
session_resends(const session_t *s, uint64_t *push, uint64_t *retrans)
{
	*push = *retrans = 0;
	if (s->kcp) {
		struct kcp_stats ks;
		kcp_getstats(s->kcp, &ks);
		*push = ks.out_push;
		*retrans = ks.retrans_timeout + ks.retrans_fast;
	}
}

size_t
session_memsize(const session_t *s)
{
	return sizeof *s + s->hello_len + (s->kcp ? kcp_memsize(s->kcp) : 0) +
	       (s->fec_enc ? fec_enc_memsize(s->fec_enc) : 0) +
	       (s->fec_dec ? fec_dec_memsize(s->fec_dec) : 0);
}


int64_t
session_queued(const session_t *s)
{
	return s->kcp ? (int64_t)kcp_waitbytes(s->kcp) : 0;
}
