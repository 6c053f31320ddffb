/*
 * session_raw.c - a raw KCP session (session_raw.h): the client speaks
 * plain KCP, conv is its id, and the session carries no moongate header,
 * no keys, no heartbeat and no datagrams. It opens on its first valid
 * datagram; what session.c does for every session (send, close, timers)
 * it does for this one, with the few differences decided there on role.
 */
#include "session_raw.h"

#include "session_int.h"

_Static_assert(SESSION_RAW_MIN == KCP_OVERHEAD,
               "a raw datagram is at least one KCP segment header");

/* KCP's datagrams leave as they are. */
static int
raw_out(const char *buf, int len, kcp_t *k, void *user)
{
	(void)k;
	session_send_plain(user, (const uint8_t *)buf, (size_t)len);
	return 0;
}

session_t *
session_raw_create(const struct session_config *c,
                   const struct session_callbacks *cb, void *user,
                   uint32_t path, uint32_t conv, uint32_t sid, uint64_t now)
{
	session_t *s = session_alloc(c, cb, user, RAW, path, now);
	if (!s)
		return NULL;
	s->sid = sid; /* the gate's id (session_id), not the conv: two clients
	                 may use one conv from two addresses */
	s->kcp = session_make_kcp(s, conv, c->mtu);
	if (!s->kcp) {
		free(s);
		return NULL;
	}
	kcp_setoutput(s->kcp, raw_out);
	return s;
}

int
session_raw_input(session_t *s, uint8_t *pkt, size_t len, uint64_t now)
{
	s->st.in_packets++;
	s->st.in_bytes += len;
	if (!s->kcp)
		return SESSION_ECLOSED;
	if (kcp_input_at(s->kcp, (const char *)pkt, (long)len, ms(now)) < 0) {
		s->st.in_malformed++;
		return SESSION_EINPUT;
	}
	s->last_recv = now;
	if (s->state == SESSION_HANDSHAKE) {
		s->state = SESSION_OPEN;
		struct session_event ev = { .type = SESSION_EV_OPEN };
		emit(s, &ev);
	}
	session_drain(s);
	if (s->kcp)
		kcp_update(s->kcp, ms(now));
	return 0;
}
