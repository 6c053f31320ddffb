/*
 * gate.c - the server side of sessions: handshake challenge, session
 * tables, timers. See gate.h.
 *
 * Every session has an entry: its paths, its place in the timer heap and
 * its keys in the maps. An entry closed during a callback is unlinked at
 * once and freed when the outermost gate call returns (the graveyard), so
 * code up the stack never touches freed memory.
 *
 * Paths: the session decides which paths it knows and where it sends
 * (session.h); the entry keeps the address or connection behind each of
 * the session's path ids, in SLOTS slots, one more than the session
 * remembers, so a packet from a new address always finds a free slot to
 * be tried in without disturbing the known ones. A path id is the slot
 * (low 3 bits, i + 1), a generation counted up each time the slot takes a
 * new path (so an id is never reused for another address), and
 * SESSION_PATH_PROVEN for a TCP connection. After every call into the
 * session, gate_sync() drops the slots the session forgot (closing their TCP
 * connections) and maps the TCP connections it adopted.
 *
 * Pending verdicts (a handshake whose policy waits): gate_pending.c. What
 * the gate tells its observers (counters, census): gate_stats.c.
 */
#include "gate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gate_int.h"
#include "session_raw.h"

void
gate_config_default(struct gate_config *c)
{
	memset(c, 0, sizeof *c);
	session_config_default(&c->session);
	c->cookie_slot_s = 10;
	c->max_sessions = 100000;
	c->max_raw_per_addr = 64;
	c->max_half_open = 10000;
	c->queued_bytes_max = (int64_t)1 << 30;
	c->allow_unpinned = 1;
	c->resets_per_s = 1000;
	c->pending_max = 1024;
	c->pending_ms = 5000;
}

/* ---- timer heap ------------------------------------------------------- */


static int
heap_add(gate_t *g, struct entry *e)
{
	return heap_push(&g->heap, &e->hn);
}

/* Recompute when e's session is due. Inside gate_update, a session due
 * again "now" runs at the next call, so one update cannot loop. */
void
gate_reschedule(gate_t *g, struct entry *e, uint64_t now, int in_update)
{
	if (!heap_contains(&e->hn))
		return;
	/* after every call into the session: its queue may have changed */
	int64_t q = session_queued(e->s);
	g->st.queued_bytes += q - e->queued;
	e->queued = q;
	uint64_t due = session_check(e->s, now);
	if (in_update && due <= now)
		due = now + 1;
	if (due != e->hn.key) {
		e->hn.key = due;
		heap_fix(&g->heap, &e->hn);
	}
}

/* ---- entries ---------------------------------------------------------- */

/* gate_int.h */
void
gate_enter(gate_t *g)
{
	g->depth++;
}

static void budget(gate_t *g);

/* A released session's counters into the totals (gate_retired). */
static void
retire(gate_t *g, const session_t *s)
{
	if (s)
		gate_retired_add(&g->retired, s, NULL);
}

/* gate_int.h */
void
gate_leave(gate_t *g)
{
	/* the outermost call enforces the memory budget, once every session
	 * it touched was counted */
	if (g->depth == 1 && g->cfg.queued_bytes_max > 0 &&
	    g->st.queued_bytes > g->cfg.queued_bytes_max)
		budget(g);
	if (--g->depth > 0)
		return;
	while (g->graveyard) {
		struct entry *e = g->graveyard;
		g->graveyard = e->next;
		retire(g, e->s);
		session_release(e->s);
		free(e->hello);
		free(e);
	}
}

/* ---- paths ------------------------------------------------------------ */

static uint32_t
slot_id(const struct entry *e, int i)
{
	return (uint32_t)(i + 1) | (e->gen[i] & 0x0fffffffu) << 3 |
	       (e->path[i].transport == GATE_TCP ? SESSION_PATH_PROVEN : 0);
}

static struct gate_path *
slot_of(struct entry *e, uint32_t id)
{
	uint32_t i = (id & 7) - 1;
	if (i >= SLOTS || !e->path[i].transport || slot_id(e, (int)i) != id)
		return NULL;
	return &e->path[i];
}

/* Forget slot i; a TCP connection there is unmapped and, when close is
 * set, closed (gracefully: what is queued still goes). */
static void
unbind(gate_t *g, struct entry *e, int i, int close)
{
	struct gate_path *p = &e->path[i];
	if (p->transport == GATE_TCP) {
		if (e->bound[i])
			map_del(&g->by_conn, p->conn);
		if (close && g->cb.close_conn)
			g->cb.close_conn(g, p->conn, 1, g->user);
	}
	e->bound[i] = 0;
	e->told[i] = 0;
	p->transport = 0;
}

static void
unbind_all(gate_t *g, struct entry *e, int close)
{
	for (int i = 0; i < SLOTS; i++)
		if (e->path[i].transport)
			unbind(g, e, i, close);
}

/* bind_conn, once per connection: slot i is a TCP connection that carries
 * an open session. The gate is its one caller: when a connection is mapped
 * to a session past its handshake (sync), and when the session opens,
 * resumes or moves onto one (on_event). */
static void
tell_bound(gate_t *g, struct entry *e, int i)
{
	if (e->path[i].transport != GATE_TCP || e->told[i])
		return;
	e->told[i] = 1;
	if (g->cb.bind_conn)
		g->cb.bind_conn(g, e->path[i].conn, g->user);
}

/* After a call into the session: drop the slots it does not know, map the
 * TCP connections it knows. */
void
gate_sync(gate_t *g, struct entry *e)
{
	if (!heap_contains(&e->hn))
		return; /* closed: unlinked already */
	for (int i = 0; i < SLOTS; i++) {
		struct gate_path *p = &e->path[i];
		if (!p->transport)
			continue;
		if (!session_path_known(e->s, slot_id(e, i))) {
			unbind(g, e, i, 1);
			continue;
		}
		if (p->transport == GATE_TCP && !e->bound[i] &&
		    !map_get(&g->by_conn, p->conn) &&
		    !map_put(&g->by_conn, p->conn, e)) {
			e->bound[i] = 1;
			if (session_state(e->s) != SESSION_HANDSHAKE)
				tell_bound(g, e, i);
		}
	}
}

/* What the limits count of e, given back (limits at the end of this file). */

static void
forget_limits(gate_t *g, struct entry *e)
{
	if (e->src_key)
		gate_src_give(g, e->src_key);
	e->src_key = 0;
	if (e->half_open)
		g->st.half_open--;
	e->half_open = 0;
	g->st.queued_bytes -= e->queued;
	e->queued = 0;
}

static void
unlink_entry(gate_t *g, struct entry *e)
{
	heap_remove(&g->heap, &e->hn);
	map_del(&g->by_sid, e->sid);
	if (e->pub_key)
		map_del(&g->by_pub, e->pub_key);
	if (e->raw_key)
		map_del(&g->by_raw, e->raw_key);
	unbind_all(g, e, 0);
	e->next = g->graveyard;
	g->graveyard = e;
	g->st.sessions--;
	if (session_is_raw(e->s))
		g->st.raw_sessions--;
	forget_limits(g, e);
}

static void
on_output(session_t *s, uint32_t path, const uint8_t *pkt, size_t len,
          void *user)
{
	struct entry *e = user;
	struct gate_path *p = slot_of(e, path);
	(void)s;
	if (p)
		e->g->cb.output(p, pkt, len, e->g->user);
}

static void
on_event(session_t *s, const struct session_event *ev, void *user)
{
	struct entry *e = user;
	gate_t *g = e->g;
	if (ev->type == SESSION_EV_OPEN) {
		g->st.opened++;
		if (e->half_open) /* the client confirmed the WELCOME */
			g->st.half_open--;
		e->half_open = 0;
	}
	if (ev->type == SESSION_EV_RESUME || ev->type == SESSION_EV_PATH) {
		struct gate_path *p = slot_of(e, ev->path);
		if (p)
			e->last = (uint8_t)(p - e->path);
	}
	if (ev->type == SESSION_EV_OPEN || ev->type == SESSION_EV_RESUME ||
	    ev->type == SESSION_EV_PATH) {
		/* packets go there now: net lifts its handshake deadline
		 * before the owner hears of the event */
		struct gate_path *p = slot_of(e, session_path(s));
		if (p)
			tell_bound(g, e, (int)(p - e->path));
	}
	g->cb.event(g, s, ev, g->user);
	if (ev->type == SESSION_EV_OPEN) {
		free(e->hello); /* told: no longer needed */
		e->hello = NULL;
		e->hello_len = 0;
	}
	if (ev->type != SESSION_EV_CLOSE)
		return;
	g->st.closed++;
	unbind_all(g, e, 1);
	unlink_entry(g, e);
}

static const struct session_callbacks session_cb = { on_output, on_event };

/* ---- handshake -------------------------------------------------------- */

/* The same peer address: family, port and address compared in place
 * (what path_addr_bytes keeps, without copying either). Families other than
 * IPv4 and IPv6 are all one, as path_addr_bytes has them. */
static int
same_addr(const struct gate_path *a, const struct gate_path *b)
{
	const struct sockaddr *sa = (const void *)&a->addr;
	const struct sockaddr *sb = (const void *)&b->addr;
	int fa = sa->sa_family == AF_INET || sa->sa_family == AF_INET6
	         ? sa->sa_family : AF_UNSPEC;
	int fb = sb->sa_family == AF_INET || sb->sa_family == AF_INET6
	         ? sb->sa_family : AF_UNSPEC;
	if (fa != fb)
		return 0;
	if (fa == AF_INET) {
		const struct sockaddr_in *x = (const void *)sa, *y = (const void *)sb;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (fa == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)sa, *y = (const void *)sb;
		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr);
	}
	return 1;
}

static int
same_path(const struct gate_path *a, const struct gate_path *b)
{
	if (a->transport != b->transport)
		return 0;
	if (a->transport == GATE_TCP)
		return a->conn == b->conn;
	return a->listener == b->listener && same_addr(a, b);
}

/* The slot id of path from in e, given a slot if new: a free one, or one
 * the session does not know (there is always one). 0 if none. */
uint32_t
gate_path_slot(gate_t *g, struct entry *e, const struct gate_path *from)
{
	int free_i = -1;
	for (int i = 0; i < SLOTS; i++) {
		if (!e->path[i].transport) {
			if (free_i < 0)
				free_i = i;
		} else if (same_path(&e->path[i], from)) {
			return slot_id(e, i);
		}
	}
	if (free_i < 0) {
		for (int i = 0; i < SLOTS && free_i < 0; i++)
			if (!session_path_known(e->s, slot_id(e, i)))
				free_i = i;
		if (free_i < 0)
			return 0;
		unbind(g, e, free_i, 1);
	}
	e->path[free_i] = *from;
	e->gen[free_i]++;
	return slot_id(e, free_i);
}

/* gate_int.h */
uint64_t
gate_keyed_hash(const gate_t *g, const void *data, size_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, data, len, g->hashkey);
	uint64_t v;
	memcpy(&v, h, 8);
	return v ? v : 1;
}

static uint32_t
stamp_now(const gate_t *g, uint64_t now)
{
	return (uint32_t)(now / 1000000 / (uint64_t)g->cfg.cookie_slot_s);
}

/* Refuse, never answering with more bytes than the request had (before
 * the address is proven, limit is the request's size). */
void
gate_refuse(gate_t *g, const struct gate_path *to, const uint8_t pub[WIRE_PUB],
            int code, const char *reason, size_t limit)
{
	struct wire_refuse r;
	memset(&r, 0, sizeof r);
	memcpy(r.echo, pub, sizeof r.echo);
	r.code = (uint16_t)code;
	size_t n = strlen(reason);
	if (n > WIRE_REASON_MAX)
		n = WIRE_REASON_MAX;
	if (WIRE_REFUSE_SIZE + n > limit)
		n = limit > WIRE_REFUSE_SIZE ? limit - WIRE_REFUSE_SIZE : 0;
	r.reason = reason;
	r.reason_len = (uint8_t)n;
	int len = wire_refuse_encode(g->buf, sizeof g->buf, &r);
	if (len > 0 && (size_t)len <= limit)
		g->cb.output(to, g->buf, (size_t)len, g->user);
}

/* A session packet (or FEC frame) of len bytes came from `to` for a sid
 * this server does not know: answer with that sid's RESET, so a client
 * whose server restarted learns it at once (docs/PROTOCOL.md, "Stateless
 * reset"). Always smaller than what came (a RESET never answers a RESET:
 * it is neither a session packet nor an FEC frame, and both are larger),
 * so the source gets fewer bytes than it sent; and at most resets_per_s a
 * second over the server, so spoofed packets cannot aim a stream of them
 * anywhere. */
static void
send_reset(gate_t *g, const struct gate_path *to, uint32_t sid, size_t len,
           uint64_t now)
{
	if (g->cfg.resets_per_s <= 0 || len <= WIRE_RESET_SIZE || !sid)
		return;
	uint64_t window = now / 1000000;
	if (window != g->reset_window) {
		g->reset_window = window;
		g->resets_sent = 0;
	}
	if (g->resets_sent >= (uint32_t)g->cfg.resets_per_s) {
		g->st.resets_limited++;
		return;
	}
	g->resets_sent++;
	uint8_t token[WIRE_RESET_TOKEN];
	wire_reset_token(token, g->cfg.secret, sid);
	int n = wire_reset_encode(g->buf, sizeof g->buf, sid, token);
	if (n > 0) {
		g->st.resets++;
		g->cb.output(to, g->buf, (size_t)n, g->user);
	}
}

static uint32_t
new_sid(gate_t *g)
{
	for (int i = 0; i < 64; i++) {
		uint32_t sid = randombytes_random();
		if (g->cfg.workers > 1) /* its worker in the low byte: steered here */
			sid = (sid & ~0xffu) | (uint32_t)(g->cfg.worker & 0xff);
		if (sid && !map_get(&g->by_sid, sid))
			return sid;
	}
	return 0;
}

static struct entry *
add_entry(gate_t *g, const struct gate_path *from, uint32_t sid)
{
	struct entry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->g = g;
	e->path[0] = *from;
	e->sid = sid;
	e->hn.index = HEAP_NONE;
	if (map_put(&g->by_sid, sid, e)) {
		free(e);
		return NULL;
	}
	if (from->transport == GATE_TCP) {
		if (map_put(&g->by_conn, from->conn, e)) {
			map_del(&g->by_sid, sid);
			free(e);
			return NULL;
		}
		e->bound[0] = 1;
	}
	if (!from->raw) { /* a handshake's: half-open until the client confirms */
		e->half_open = 1;
		g->st.half_open++;
	}
	return e;
}

static void
drop_entry(gate_t *g, struct entry *e)
{
	map_del(&g->by_sid, e->sid);
	unbind_all(g, e, 0);
	if (e->pub_key)
		map_del(&g->by_pub, e->pub_key);
	if (e->raw_key)
		map_del(&g->by_raw, e->raw_key);
	forget_limits(g, e);
	free(e->hello);
	free(e);
}

/* The limits every new session passes, before the policy is asked and
 * again when a pending verdict accepts: -1 with v filled when one refuses. */
int
gate_admission_refuses(gate_t *g, const struct gate_path *from,
                       struct gate_verdict *v)
{
	if (g->st.sessions >= (uint64_t)g->cfg.max_sessions) {
		g->st.full++;
		v->code = SESSION_CLOSE_REFUSED;
		strcpy(v->reason, "server full");
		return -1;
	}
	return gate_limit_refuses(g, from, v);
}

/* The policy's verdict on a client: 0 accept, -1 refuse (v says why), 1
 * pending (v->ticket: the verdict comes by gate_decide). */
static int
ask_policy(gate_t *g, const struct gate_path *from, const uint8_t *hello,
           size_t hlen, struct gate_verdict *v)
{
	memset(v, 0, sizeof *v);
	if (gate_admission_refuses(g, from, v))
		return -1;
	/* a raw KCP datagram cannot be held, and pending_max bounds the rest */
	uint64_t ticket = 0;
	if (!from->raw && g->st.pending < (uint64_t)(g->cfg.pending_max > 0 ?
	                                             g->cfg.pending_max : 0))
		ticket = ++g->next_ticket;
	v->ticket = ticket;
	if (g->cb.accept)
		g->cb.accept(g, from, hello, hlen, v, g->user);
	v->ticket = ticket;
	if (v->code == GATE_PENDING && ticket)
		return 1;
	if (v->code == GATE_PENDING) { /* it cannot wait */
		v->code = SESSION_CLOSE_REFUSED;
		if (from->raw) {
			snprintf(v->reason, sizeof v->reason, "server error: a raw KCP "
			         "client cannot wait for the handshake policy");
		} else {
			g->st.pending_refused++;
			snprintf(v->reason, sizeof v->reason, "server busy: %d handshakes "
			         "wait for the policy (gate.pending_max)",
			         g->cfg.pending_max);
			if (g->cb.limited)
				g->cb.limited(g, from, "gate.pending_max", g->user);
		}
		return -1;
	}
	if (v->code) {
		g->st.refused++;
		v->reason[WIRE_REASON_MAX] = 0;
		if (!v->reason[0])
			strcpy(v->reason, "refused");
		return -1;
	}
	return 0;
}

/* The server's ephemeral pair of handshake v2, shared by the sessions of
 * one short window: an X25519 key pair costs as much as the exchange
 * itself, and a fresh one per session would make a v2 handshake cost 1.5
 * times v1's. Rotated after EPH_USES sessions or EPH_US, whichever comes
 * first, and then erased, so forward secrecy holds for every session once
 * its window closed (docs/PROTOCOL.md, "Handshake v2"). Session keys stay
 * unique: the client's ephemeral key is fresh each time. */
#define EPH_USES 64
#define EPH_US 1000000
static void
ephemeral(gate_t *g, uint64_t now)
{
	if (g->eph_uses == 0 || g->eph_uses >= EPH_USES ||
	    now - g->eph_born >= EPH_US || now < g->eph_born) {
		wire_keypair(g->epub, g->esec);
		g->eph_uses = 0;
		g->eph_born = now;
	}
	g->eph_uses++;
}

/* Make the session of an admitted client on path `from` and send its
 * WELCOME. nk: the v2 state (NULL: v1), sealed: the hello as the client
 * sealed it (v2: hello_len + WIRE_TAG bytes), hello: in clear. The entry,
 * or NULL when nothing could be made (out of memory, no free sid): the
 * client's next INIT asks again. */
struct entry *
gate_open_session(gate_t *g, const struct gate_path *from,
                  const uint8_t pub[WIRE_PUB], uint64_t pk,
                  const struct wire_nk *nk, const uint8_t *sealed,
                  const uint8_t *hello, size_t hello_len, uint64_t now)
{
	uint32_t sid = new_sid(g);
	struct entry *e = sid ? add_entry(g, from, sid) : NULL;
	if (!e)
		return NULL;
	struct session_config c = g->cfg.session;
	wire_reset_token(c.reset_token, g->cfg.secret, sid);
	if (from->listener < 32 && (g->cfg.plain_listeners >> from->listener & 1))
		c.encrypt = 0;
	if (from->listener < 32 && g->cfg.fec[from->listener].data) {
		c.fec_data = g->cfg.fec[from->listener].data;
		c.fec_parity = g->cfg.fec[from->listener].parity;
	}
	struct session_v2 sv = { nk, sealed, hello_len + WIRE_TAG, g->epub, g->esec };
	if (nk)
		ephemeral(g, now);
	e->s = session_server_create(&c, &session_cb, e, slot_id(e, 0), sid, pub,
	                             nk ? &sv : NULL, now);
	if (!e->s || map_put(&g->by_pub, pk, e)) {
		if (e->s)
			session_release(e->s);
		drop_entry(g, e);
		return NULL;
	}
	e->pub_key = pk;
	if (heap_add(g, e)) {
		session_release(e->s);
		drop_entry(g, e);
		return NULL;
	}
	if (hello_len && (e->hello = malloc(hello_len))) {
		memcpy(e->hello, hello, hello_len);
		e->hello_len = (uint16_t)hello_len;
	}
	g->st.sessions++;
	g->st.created++;
	gate_reschedule(g, e, now, 0);
	return e;
}

/* ---- admission -------------------------------------------------------- */

/* A proven address asks for a session (INIT on UDP, HELLO on TCP). */
static void
admit(gate_t *g, const struct gate_path *from, const struct wire_hello *h,
      size_t pktlen, uint64_t now)
{
	uint64_t pk = gate_keyed_hash(g, h->pub, WIRE_PUB);
	struct entry *old = map_get(&g->by_pub, pk);
	if (old) {
		/* The same INIT again, or the same HELLO on TCP after UDP: the
		 * WELCOME was lost or UDP is blocked. Both paths are proven. */
		if (!memcmp(session_peer_pub(old->s), h->pub, WIRE_PUB)) {
			uint32_t id = gate_path_slot(g, old, from);
			if (id)
				session_rewelcome(old->s, id, now);
			gate_sync(g, old);
		}
		return;
	}
	struct pending *wait = map_get(&g->pend_by_pub, pk);
	if (wait) {
		/* Its verdict is pending: the policy is not asked again. The
		 * verdict answers on the path it came by and on the newest other
		 * one (a retransmitted INIT from a new address, or the HELLO on
		 * TCP when UDP is blocked). */
		if (!memcmp(wait->pub, h->pub, WIRE_PUB) && !same_path(&wait->path, from))
			wait->also = *from;
		return;
	}
	/* v2: the hello opens only under es, one X25519 with the static key;
	 * reached after the cookie (or TCP) proved the address, so a REFUSE
	 * may say why in full */
	struct gate_verdict v;
	struct wire_nk nk;
	uint8_t hello[WIRE_HELLO_MAX];
	const uint8_t *hp = h->hello;
	int v2 = h->version == WIRE_V2;
	(void)pktlen; /* the address is proven: a reason may be longer */
	if (h->version == WIRE_V1 && !g->cfg.allow_unpinned) {
		g->st.refused++;
		gate_refuse(g, from, h->pub, SESSION_CLOSE_REFUSED, "unpinned client "
		            "refused: this server requires its key (moongate key)",
		            sizeof g->buf);
		return;
	}
	if (v2) {
		int r = wire_nk_server(&nk, g->spub, g->ssec, h->pub);
		nk.caps = h->caps;
		if (r < 0 || wire_hello_open(hello, h->hello, h->hello_len, &nk) < 0) {
			wire_scrub(&nk, sizeof nk);
			g->st.auth_failures++;
			gate_refuse(g, from, h->pub, SESSION_CLOSE_REFUSED,
			            "server key mismatch: the hello does not open "
			            "under this server's key", sizeof g->buf);
			return;
		}
		hp = hello;
	}
	int rc = ask_policy(g, from, hp, h->hello_len, &v);
	if (rc > 0 && gate_pend(g, from, h, pk, v2 ? &nk : NULL, hp, v.ticket, now)) {
		rc = -1;
		v.code = SESSION_CLOSE_REFUSED;
		strcpy(v.reason, "server error: out of memory");
	}
	if (rc < 0)
		gate_refuse(g, from, h->pub, v.code, v.reason, sizeof g->buf);
	else if (rc == 0)
		gate_open_session(g, from, h->pub, pk, v2 ? &nk : NULL, h->hello,
		                  hp, h->hello_len, now);
	if (v2)
		wire_scrub(&nk, sizeof nk);
	wire_scrub(hello, sizeof hello);
}

static void
on_hello(gate_t *g, const struct gate_path *from, uint8_t *pkt, size_t len,
         uint64_t now)
{
	struct wire_hello h;
	int rc = wire_hello_decode(pkt, len, &h);
	g->st.hellos++;
	if (rc == WIRE_EVERSION && len >= WIRE_HELLO_SIZE) {
		g->st.version_refused++;
		gate_refuse(g, from, pkt + 2, SESSION_CLOSE_REFUSED,
		            "unsupported version", len);
		return;
	}
	if (rc < 0) {
		g->st.bad_packets++;
		g->st.bad_hellos++;
		return;
	}
	if (h.type == WIRE_HELLO && from->transport == GATE_TCP) {
		admit(g, from, &h, len, now); /* TCP proved the address */
		return;
	}
	uint8_t ab[19];
	size_t an = path_addr_bytes(from, ab);
	if (h.type == WIRE_HELLO) {
		uint8_t mac[WIRE_MAC];
		uint32_t stamp = stamp_now(g, now);
		wire_cookie(mac, g->cfg.secret, ab, an, stamp, h.pub);
		int n = wire_challenge_encode(g->buf, sizeof g->buf, stamp, mac);
		if (n > 0 && (size_t)n <= len) {
			g->st.challenges++;
			g->cb.output(from, g->buf, (size_t)n, g->user);
		}
		return;
	}
	uint32_t cur = stamp_now(g, now);
	uint8_t mac[WIRE_MAC];
	wire_cookie(mac, g->cfg.secret, ab, an, h.stamp, h.pub);
	if ((h.stamp != cur && h.stamp + 1 != cur) || !wire_mac_equal(mac, h.mac)) {
		g->st.bad_cookies++;
		return;
	}
	admit(g, from, &h, len, now);
}

/* ---- raw KCP ---------------------------------------------------------- */

static void
raw_input(gate_t *g, const struct gate_path *from, uint8_t *pkt, size_t len,
          uint64_t now)
{
	if (len < SESSION_RAW_MIN) {
		g->st.bad_packets++;
		return;
	}
	uint8_t key[24];
	size_t an = path_addr_bytes(from, key);
	memcpy(key + an, pkt, 4); /* conv */
	uint64_t rk = gate_keyed_hash(g, key, an + 4);
	struct entry *e = map_get(&g->by_raw, rk);
	if (!e) {
		struct gate_verdict v;
		if (ask_policy(g, from, NULL, 0, &v))
			return; /* raw KCP has no way to carry a refusal */
		uint32_t sid = new_sid(g);
		e = sid ? add_entry(g, from, sid) : NULL;
		if (!e)
			return;
		uint32_t conv = wire_get32(pkt);
		e->s = session_raw_create(&g->cfg.session, &session_cb, e,
		                          slot_id(e, 0), conv, sid, now);
		if (!e->s || map_put(&g->by_raw, rk, e) || heap_add(g, e)) {
			if (e->s)
				session_release(e->s);
			drop_entry(g, e);
			return;
		}
		e->raw_key = rk;
		if (session_input(e->s, slot_id(e, 0), pkt, len, now) < 0) {
			/* Not KCP after all: forget it without a trace (no event
			 * fired: a raw session opens on its first valid datagram). */
			g->st.bad_packets++;
			heap_remove(&g->heap, &e->hn);
			session_release(e->s);
			drop_entry(g, e);
			return;
		}
		g->st.sessions++;
		g->st.created++;
		g->st.raw_sessions++;
		gate_src_take(g, from, e);
		gate_reschedule(g, e, now, 0);
		return;
	}
	if (session_input(e->s, slot_id(e, 0), pkt, len, now) < 0)
		g->st.bad_packets++;
	gate_reschedule(g, e, now, 0);
}

/* ---- public ----------------------------------------------------------- */

gate_t *
gate_create(const struct gate_config *c, const struct gate_callbacks *cb,
            void *user)
{
	if (!cb || !cb->output || !cb->event || wire_init() < 0)
		return NULL;
	gate_t *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->cfg = *c;
	if (g->cfg.cookie_slot_s <= 0)
		g->cfg.cookie_slot_s = 10;
	static const uint8_t zero[WIRE_SECRET];
	if (!memcmp(g->cfg.secret, zero, WIRE_SECRET))
		randombytes_buf(g->cfg.secret, WIRE_SECRET);
	wire_static_keypair(g->spub, g->ssec, g->cfg.secret);
	randombytes_buf(g->hashkey, sizeof g->hashkey);
	g->cb = *cb;
	g->user = user;
	map_init(&g->by_sid);
	map_init(&g->by_pub);
	map_init(&g->by_raw);
	map_init(&g->by_conn);
	map_init(&g->by_src);
	map_init(&g->pending);
	map_init(&g->pend_by_pub);
	return g;
}

void
gate_release(gate_t *g, uint64_t now)
{
	if (!g)
		return;
	g->now = now;
	g->cfg.queued_bytes_max = 0; /* everything closes anyway */
	gate_enter(g);
	while (heap_top(&g->heap)) {
		struct entry *e = ENTRY(heap_top(&g->heap));
		session_abort(e->s, SESSION_CLOSE_SHUTDOWN, "server shutdown", now);
		if (heap_contains(&e->hn)) /* the event did not unlink it */
			unlink_entry(g, e);
	}
	/* told, so that they need not time out */
	gate_pending_refuse_all(g, SESSION_CLOSE_SHUTDOWN, "server shutdown");
	gate_leave(g);
	map_clear(&g->by_sid);
	map_clear(&g->by_pub);
	map_clear(&g->by_raw);
	map_clear(&g->by_conn);
	map_clear(&g->by_src);
	map_clear(&g->pending);
	map_clear(&g->pend_by_pub);
	heap_free(&g->heap);
	wire_scrub(g->cfg.secret, sizeof g->cfg.secret);
	wire_scrub(g->ssec, sizeof g->ssec);
	wire_scrub(g->esec, sizeof g->esec);
	free(g);
}

void
gate_input(gate_t *g, const struct gate_path *from, uint8_t *pkt, size_t len,
           uint64_t now)
{
	g->st.in_packets++;
	g->st.in_bytes += len;
	g->now = now;
	gate_enter(g);
	if (from->raw) {
		raw_input(g, from, pkt, len, now);
	} else if (len < 1) {
		g->st.bad_packets++;
	} else if (pkt[0] == WIRE_HELLO || pkt[0] == WIRE_INIT) {
		on_hello(g, from, pkt, len, now);
	} else {
		struct wire_hdr h;
		struct entry *e, *owner;
		uint32_t id;
		int fec = pkt[0] == WIRE_FEC && len > WIRE_FEC_HDR;
		if (fec) {
			h.sid = wire_get32(pkt + 1); /* a frame of FEC shards */
		} else if (wire_peek(pkt, len, &h) < 0) {
			g->st.bad_packets++;
			goto out;
		}
		if (!(e = map_get(&g->by_sid, h.sid))) {
			g->st.unknown_session++;
			send_reset(g, from, h.sid, len, now);
		} else if ((from->transport == GATE_TCP &&
		            (owner = map_get(&g->by_conn, from->conn)) && owner != e) ||
		           !(id = gate_path_slot(g, e, from))) {
			/* a TCP connection carries one session */
			g->st.unknown_session++;
		} else {
			/* the header read here is not read again */
			int rc = fec ? session_input(e->s, id, pkt, len, now)
			             : session_input_peeked(e->s, id, pkt, len, &h, now);
			if (rc == SESSION_EAUTH)
				g->st.auth_failures++;
			else if (rc == SESSION_EREPLAY)
				g->st.replays++;
			gate_sync(g, e);
			gate_reschedule(g, e, now, 0);
		}
	}
out:
	gate_leave(g);
}

void
gate_conn_lost(gate_t *g, uint32_t conn, const char *reason, uint64_t now)
{
	struct entry *e = map_get(&g->by_conn, conn);
	if (!e)
		return;
	g->now = now;
	gate_enter(g);
	for (int i = 0; i < SLOTS; i++) {
		if (e->path[i].transport != GATE_TCP || e->path[i].conn != conn)
			continue;
		uint32_t id = slot_id(e, i);
		unbind(g, e, i, 0); /* gone already: nothing to close */
		/* code 7 says "disconnected"; net's detail follows, but for a
		 * plain EOF (docs/PROTOCOL.md, "Close codes") */
		char why[WIRE_REASON_MAX + 1];
		if (!reason || !*reason || !strcmp(reason, "eof"))
			snprintf(why, sizeof why, "disconnected");
		else
			snprintf(why, sizeof why, "disconnected: %s", reason);
		session_path_lost(e->s, id, SESSION_CLOSE_DISCONNECT, why, now);
		gate_sync(g, e);
		gate_reschedule(g, e, now, 0);
		break;
	}
	gate_leave(g);
}

void
gate_update(gate_t *g, uint64_t now)
{
	g->now = now;
	gate_enter(g);
	gate_pending_expire(g, now);
	if (g->eph_uses && now - g->eph_born >= EPH_US) {
		/* its window closed: erased even when no handshake follows */
		wire_scrub(g->esec, sizeof g->esec);
		g->eph_uses = 0;
	}
	struct heap_node *top;
	while ((top = heap_top(&g->heap)) && top->key <= now) {
		struct entry *e = ENTRY(top);
		session_update(e->s, now);
		gate_sync(g, e);
		gate_reschedule(g, e, now, 1);
	}
	gate_leave(g);
}

uint64_t
gate_check(const gate_t *g, uint64_t now)
{
	const struct heap_node *top = heap_top(&g->heap);
	uint64_t due = top ? top->key : now + 3600000000ull;
	if (g->pend_head && g->pend_head->deadline < due)
		due = g->pend_head->deadline;
	return due;
}

void
gate_touch(gate_t *g, session_t *s, uint64_t now)
{
	struct entry *e = session_user(s);
	if (!e || e->g != g)
		return;
	if (!g->depth)
		g->now = now;
	gate_enter(g); /* leave enforces the memory budget */
	gate_reschedule(g, e, now, 0);
	gate_leave(g);
}

session_t *
gate_session(const gate_t *g, uint32_t sid)
{
	struct entry *e = map_get(&g->by_sid, sid);
	return e ? e->s : NULL;
}

const struct gate_path *
gate_session_path(const gate_t *g, const session_t *s)
{
	struct entry *e = session_user(s);
	(void)g;
	if (!e)
		return NULL;
	struct gate_path *p = slot_of(e, session_path(s));
	if (p)
		return p;
	/* offline: where it was last */
	return e->path[e->last].transport ? &e->path[e->last] : NULL;
}

const uint8_t *
gate_session_hello(const gate_t *g, const session_t *s, size_t *len)
{
	const struct entry *e = session_user(s);
	(void)g;
	*len = e && e->hello ? e->hello_len : 0;
	return e && e->hello ? e->hello : (const uint8_t *)"";
}

void
gate_close_all(gate_t *g, int code, const char *reason, uint64_t now)
{
	g->now = now;
	gate_enter(g);
	/* Closing may unlink entries: walk a snapshot of the heap. */
	uint32_t n = g->heap.n;
	struct entry **list = n ? malloc(n * sizeof *list) : NULL;
	if (list) {
		for (uint32_t i = 0; i < n; i++)
			list[i] = ENTRY(g->heap.a[i]);
		for (uint32_t i = 0; i < n; i++) {
			if (!heap_contains(&list[i]->hn))
				continue;
			if (session_offline(list[i]->s)) /* no path to tell, and */
				session_abort(list[i]->s, code, reason, now); /* no wait */
			else
				session_close(list[i]->s, code, reason, 1, now);
			gate_reschedule(g, list[i], now, 0);
		}
		free(list);
	}
	gate_leave(g);
}

/* ---- limits (the checks: gate_limits.c) --------------------------------- */

/* Over queued_bytes_max: close the sessions holding the most until under
 * it. Closing frees a session's queue at once (session_close, not
 * graceful: the CLOSE still tells the peer why). One scan per session
 * closed: this runs only past the budget. */
static void
budget(gate_t *g)
{
	for (uint32_t round = 0; round < g->heap.n &&
	     g->st.queued_bytes > g->cfg.queued_bytes_max; round++) {
		struct entry *big = NULL;
		for (uint32_t i = 0; i < g->heap.n; i++) {
			struct entry *e = ENTRY(g->heap.a[i]);
			if (!big || e->queued > big->queued)
				big = e;
		}
		if (!big || big->queued <= 0)
			break;
		g->st.budget_closed++;
		if (g->cb.limited)
			g->cb.limited(g, gate_session_path(g, big->s),
			              "gate.queued_bytes_max", g->user);
		if (session_state(big->s) == SESSION_CLOSING)
			session_abort(big->s, SESSION_CLOSE_BACKPRESSURE,
			              "server memory budget", g->now);
		else
			session_close(big->s, SESSION_CLOSE_BACKPRESSURE,
			              "server memory budget", 0, g->now);
		if (heap_contains(&big->hn)) {
			gate_sync(g, big);
			gate_reschedule(g, big, g->now, 0);
		}
		if (heap_contains(&big->hn) && big->queued > 0) {
			/* cannot happen: a closed session holds no queue; do not
			 * count it again */
			g->st.queued_bytes -= big->queued;
			big->queued = 0;
		}
	}
}
