/*
 * session_client.c - the client's handshake: HELLO, then INIT with the
 * server's cookie, resent with backoff until the WELCOME (or a REFUSE)
 * comes back or handshake_timeout_ms passes; the WELCOME's parameters
 * become the session's (session.h, docs/PROTOCOL.md).
 *
 * Pinned (cfg.pinned), the handshake is v2: the hello is sealed once, at
 * create, to the server's static key, and only a WELCOME made by the
 * holder of its secret half opens. One that does not is dropped (an
 * off-path sender cannot end the handshake with garbage) but remembered:
 * the handshake then ends "server key mismatch" instead of "handshake
 * timeout".
 */
#include "session_int.h"

static void
send_hs(session_t *s, uint64_t now)
{
	struct wire_hello h;
	memset(&h, 0, sizeof h);
	h.type = s->hs_type;
	h.version = s->cfg.pinned ? WIRE_V2 : WIRE_V1;
	h.caps = s->nk.caps;
	memcpy(h.pub, s->pub, WIRE_PUB);
	h.stamp = s->stamp;
	memcpy(h.mac, s->mac, WIRE_MAC);
	h.hello = s->hello;
	h.hello_len = s->hello_len;
	int n = wire_hello_encode(session_txbuf, sizeof session_txbuf, &h);
	if (n > 0)
		session_send_plain(s, session_txbuf, (size_t)n);
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
	session_t *s = session_alloc(c, cb, user, CLIENT, path, now);
	if (!s)
		return NULL;
	size_t room = hello_len + (c->pinned ? WIRE_TAG : 0);
	if (room) {
		s->hello = malloc(room);
		if (!s->hello) {
			free(s);
			return NULL;
		}
		if (hello_len)
			memcpy(s->hello, hello, hello_len);
	}
	s->hello_len = (uint16_t)hello_len;
	wire_keypair(s->pub, s->sec);
	if (c->pinned) {
		int r = wire_nk_client(&s->nk, c->server_key, s->pub, s->sec);
		/* offered in the HELLO, bound to it (the hello's associated data) */
		s->nk.caps = c->aes && wire_aesgcm_available() ? WIRE_CAP_AESGCM : 0;
		if (c->worker_hint >= 0 && c->worker_hint <= WIRE_WORKER_HINT_MAX)
			s->nk.caps |= WIRE_CAPS_WORKER(c->worker_hint);
		if (r < 0 || wire_hello_seal(s->hello, s->hello, hello_len, &s->nk) < 0) {
			session_release(s); /* a degenerate server key */
			return NULL;
		}
	}
	s->hs_type = WIRE_HELLO;
	s->hs_interval = (uint32_t)c->handshake_retry_ms;
	s->hs_next = now + (uint64_t)s->hs_interval * 1000;
	s->hs_deadline = now + (uint64_t)c->handshake_timeout_ms * 1000;
	send_hs(s, now);
	return s;
}

/* A RESET: the server does not know this session (it restarted, or the
 * session ended there while we were away). Believed only with the token
 * the WELCOME told; anything else is dropped like any bad packet. */
static int
reset_input(session_t *s, const uint8_t *pkt, size_t len)
{
	static const uint8_t none[WIRE_RESET_TOKEN];
	uint32_t sid;
	const uint8_t *token;
	if (!s->keyed || wire_reset_decode(pkt, len, &sid, &token) < 0 ||
	    sid != s->sid || !memcmp(s->cfg.reset_token, none, WIRE_RESET_TOKEN)) {
		s->st.in_malformed++;
		return SESSION_EINPUT;
	}
	if (!wire_reset_equal(token, s->cfg.reset_token)) {
		s->st.in_auth_fail++;
		return SESSION_EAUTH;
	}
	if (s->state == SESSION_CLOSING && s->close_sent) {
		/* we were closing: the server forgot the session because it
		 * took our CLOSE (its CLOSE_ACK went astray), so this is the
		 * end we asked for, with our code */
		session_finish(s, s->close_code, s->close_reason, 0);
		return 0;
	}
	session_finish(s, SESSION_CLOSE_RESET, "session reset: the server no "
	               "longer knows this session (it restarted?): log in again", 1);
	return 0;
}

/* CHALLENGE, REFUSE and WELCOME, before the session is open; a RESET
 * after. */
int
session_client_input(session_t *s, uint8_t *pkt, size_t len, uint64_t now)
{
	if (pkt[0] == WIRE_RESET)
		return reset_input(s, pkt, len);
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
		session_finish(s, r.code ? r.code : SESSION_CLOSE_REFUSED, reason, 1);
		return 0;
	}
	case WIRE_WELCOME: {
		struct wire_welcome w;
		struct wire_keys k;
		if (wire_welcome_peek(pkt, len, &w) < 0)
			break;
		int r = s->cfg.pinned
		        ? wire_nk_client_keys(&k, &s->nk, s->sec, w.pub, s->hello,
		                              (size_t)s->hello_len + WIRE_TAG)
		        : wire_client_keys(&k, s->pub, s->sec, w.pub);
		if (r < 0 || wire_welcome_open(pkt, len, &w, k.rx) < 0) {
			s->st.in_auth_fail++;
			s->key_mismatch = s->cfg.pinned;
			return SESSION_EAUTH;
		}
		if (w.sid == 0 || w.mtu < 100 || w.heartbeat_ms == 0 || w.timeout_ms == 0)
			break;
		if ((w.flags & WIRE_F_AESGCM) && !(s->nk.caps & WIRE_CAP_AESGCM)) {
			/* authentic (it opened under our keys), so the server
			 * broke the rule: a cipher we did not offer */
			session_finish(s, SESSION_CLOSE_PROTOCOL, "the server chose "
			               "AES-256-GCM, which this client did not offer", 0);
			return SESSION_EINPUT;
		}
		s->keys = k;
		s->keyed = 1;
		s->sid = w.sid;
		memcpy(s->peer_pub, w.pub, WIRE_PUB);
		s->encrypt = (uint8_t)(((w.flags & WIRE_F_ENCRYPT) ? WIRE_SUITE_ENCRYPT : 0) |
		             ((w.flags & WIRE_F_AESGCM) ? WIRE_SUITE_AESGCM : 0));
		if (w.mtu < s->cfg.mtu)
			s->cfg.mtu = w.mtu;
		s->cfg.heartbeat_ms = (int)w.heartbeat_ms;
		s->cfg.timeout_ms = (int)w.timeout_ms;
		s->cfg.resume_grace_ms = (int)(w.resume_grace_ms > 86400000u
		                               ? 86400000u : w.resume_grace_ms);
		s->cfg.fec_data = w.fec_data;
		s->cfg.fec_parity = w.fec_parity;
		memcpy(s->cfg.reset_token, w.reset_token, WIRE_RESET_TOKEN);
		s->peer_msg_max = w.msg_max;
		if (session_fec_make(s) < 0) {
			session_finish(s, SESSION_CLOSE_HANDSHAKE, "bad FEC parameters", 0);
			return SESSION_EINPUT;
		}
		s->kcp = session_make_kcp(s, w.sid, s->cfg.mtu - WIRE_OVERHEAD - fec_room(&s->cfg));
		if (!s->kcp) {
			session_finish(s, SESSION_CLOSE_HANDSHAKE, "out of memory", 0);
			return SESSION_ENOMEM;
		}
		/* A first clock estimate from the handshake's round trip. */
		uint64_t rtt = now - s->hs_sent;
		s->offset = (int64_t)(w.server_time_us - s->hs_sent) - (int64_t)(rtt / 2);
		free(s->hello);
		s->hello = NULL;
		/* the handshake's secrets are not needed again: forward secrecy */
		wire_scrub(s->sec, sizeof s->sec);
		wire_scrub(&s->nk, sizeof s->nk);
		s->state = SESSION_OPEN;
		s->last_recv = now;
		session_send_ping(s, now); /* proves the keys to the server at once */
		struct session_event ev = { .type = SESSION_EV_OPEN };
		emit(s, &ev);
		return 0;
	}
	}
	s->st.in_malformed++;
	return SESSION_EINPUT;
}

void
session_client_tick(session_t *s, uint64_t now)
{
	if (now >= s->hs_deadline) {
		session_finish(s, SESSION_CLOSE_HANDSHAKE, s->key_mismatch
		               ? "server key mismatch: no WELCOME opened under the "
		                 "pinned key"
		               : "handshake timeout", 0);
		return;
	}
	if (now >= s->hs_next) {
		send_hs(s, now);
		s->hs_interval *= 2;
		if (s->hs_interval > (uint32_t)s->cfg.handshake_retry_max)
			s->hs_interval = (uint32_t)s->cfg.handshake_retry_max;
		s->hs_next = now + (uint64_t)s->hs_interval * 1000;
	}
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
