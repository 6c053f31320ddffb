/*
 * test_session.c - the session layer (core/proto/session.c) and the server side
 * (core/proto/gate.c) in virtual time: clients and a gate joined by simulated
 * links (test/simnet), no sockets, no clock.
 *
 * The world: one gate whose "addresses" are sockaddr_in with a port per
 * client (1000 + index until a test moves it); one simnet per client (dir
 * 0 client->server, dir 1 server->client) for UDP (client path 1), and a
 * second, perfect one for "TCP" (client path 2: a gate path with transport
 * GATE_TCP and conn 500 + index, or the client's conn) when a test opens it. Time advances 1 ms per step; session time is that in
 * microseconds. The gate echoes reliable and unreliable messages unless a
 * test says otherwise.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fec.h"
#include "gate.h"
#include "kcp.h"
#include "session.h"
#include "session_int.h" /* one test plays an older client */
#include "simnet.h"
#include "testutil.h"
#include "wire.h"

#define MAXC 64
#define PKT 70000

struct msgrec {
	uint32_t n;       /* messages received */
	uint32_t next;    /* next expected counter value */
	uint32_t errors;  /* out of order, duplicated or corrupted */
};

struct client {
	session_t *s;
	simnet_t *net;
	int opened, closed, close_code, close_remote;
	char close_reason[300];
	struct msgrec rel;
	uint32_t dgrams, dgram_last, dgram_back;
	int64_t clock_skew_us; /* this client's clock minus the server's */
	int mute_up;           /* drop everything client->server */
	int mute_down;         /* drop everything server->client */
	uint32_t kcp_out;      /* KCP packets this client sent */
	uint32_t kcp_in;       /* KCP packets the gate sent to this client */
	uint32_t kcp_out_t;    /* ms of the last one */
	uint16_t port;         /* its UDP source port as the gate sees it */
	simnet_t *tnet;        /* its "TCP" link, NULL until opened */
	uint32_t conn;         /* its TCP connection's id (0: 500 + index) */
	int cut;               /* drop everything, both ways, both links */
	int offline, resumed, probes;   /* session events seen */
	uint32_t probe_path;
};

struct world {
	gate_t *g;
	struct gate_config gc;
	struct client c[MAXC];
	int nc;
	uint32_t t;               /* ms */
	int echo;                 /* gate echoes */
	int refuse;               /* accept callback refuses */
	char last_hello[64];
	int srv_open, srv_close, srv_close_code, srv_close_remote;
	char srv_close_reason[300];
	uint32_t srv_msgs;
	struct msgrec srv_rel;
	/* the amplification check */
	size_t last_in_len;
	int last_in_unproven;
	int amp_violations;
	int gate_updates;         /* times step() ran gate_update */
	/* capture of packets the clients sent */
	uint8_t cap_pkt[16][PKT];
	size_t cap_len[16];
	uint8_t cap_type[16];
	int ncap;
	/* paths, server side */
	int srv_offline, srv_resume, srv_path;
	uint32_t srv_last_path;
	uint64_t to_stranger;     /* bytes the gate sent to no client's address */
	uint64_t to_port[8];      /* bytes the gate sent to port 3000 + i */
	uint64_t from_port[8];    /* bytes the gate got from port 3000 + i */
	uint64_t to_at_path[8], from_at_path[8]; /* ... when the PATH event came */
	/* an attacker who sees the client's datagrams and races a copy of
	 * each to the gate from port race_port (0: none) */
	uint16_t race_port;
	int limited;              /* limited callbacks */
	char limited_why[64];     /* ... the last one's config key */
	/* pending verdicts */
	int pend;                 /* accept callback answers GATE_PENDING */
	int accepts;              /* accept callbacks */
	uint64_t ticket[MAXC];    /* the ticket each client was given */
	int welcomes, welcomes_tcp, refuses; /* packets the gate sent */
};

static struct world W;
static int gate_dead; /* the gate was killed: nothing it sends leaves */

static uint64_t
now_us(void)
{
	return (uint64_t)W.t * 1000;
}

static void
port_addr(uint16_t port, struct gate_path *p)
{
	memset(p, 0, sizeof *p);
	p->transport = GATE_UDP;
	struct sockaddr_in *in = (struct sockaddr_in *)&p->addr;
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	in->sin_addr.s_addr = htonl(0x7f000001);
	p->addrlen = sizeof *in;
}

static void
addr_of(int i, struct gate_path *p)
{
	port_addr(i < W.nc && W.c[i].port ? W.c[i].port : (uint16_t)(1000 + i), p);
}

static void
tcp_of(int i, struct gate_path *p)
{
	memset(p, 0, sizeof *p);
	p->transport = GATE_TCP;
	p->conn = W.c[i].conn ? W.c[i].conn : 500 + (uint32_t)i;
}

/* The client a path leads to, or -1. */
static int
index_of(const struct gate_path *p)
{
	if (p->transport == GATE_TCP) {
		for (int i = 0; i < W.nc; i++) {
			struct gate_path tp;
			tcp_of(i, &tp);
			if (W.c[i].tnet && tp.conn == p->conn)
				return i;
		}
		return -1; /* a connection the client closed */
	}
	const struct sockaddr_in *in = (const struct sockaddr_in *)&p->addr;
	uint16_t port = ntohs(in->sin_port);
	for (int i = 0; i < W.nc; i++)
		if (W.c[i].port == port)
			return i;
	return -1;
}

/* ---- gate side -------------------------------------------------------- */

static void
g_output(const struct gate_path *to, const uint8_t *pkt, size_t len, void *user)
{
	(void)user;
	if (pkt[0] == WIRE_WELCOME) {
		W.welcomes++;
		W.welcomes_tcp += to->transport == GATE_TCP;
	}
	W.refuses += pkt[0] == WIRE_REFUSE;
	if (gate_dead)
		return;
	if (W.last_in_unproven && len > W.last_in_len)
		W.amp_violations++;
	const struct sockaddr_in *in = (const void *)&to->addr;
	uint16_t port = ntohs(in->sin_port);
	if (to->transport == GATE_UDP && port >= 3000 && port < 3008)
		W.to_port[port - 3000] += len;
	int i = index_of(to);
	if (i < 0 || i >= W.nc) {
		/* an address no client owns (spoofed sources, an old port) */
		W.to_stranger += len;
		return;
	}
	if (W.c[i].cut)
		return;
	if (pkt[0] == WIRE_KCP)
		W.c[i].kcp_in++;
	if (to->transport == GATE_TCP)
		simnet_send(W.c[i].tnet, 1, pkt, (int)len, W.t);
	else if (!W.c[i].mute_down)
		simnet_send(W.c[i].net, 1, pkt, (int)len, W.t);
}

static void
g_accept(gate_t *g, const struct gate_path *from, const uint8_t *hello,
         size_t hlen, struct gate_verdict *v, void *user)
{
	(void)g; (void)from; (void)user;
	size_t n = hlen < sizeof W.last_hello - 1 ? hlen : sizeof W.last_hello - 1;
	if (n)
		memcpy(W.last_hello, hello, n);
	W.last_hello[n] = 0;
	W.accepts++;
	int i = index_of(from);
	if (i >= 0)
		W.ticket[i] = v->ticket;
	if (W.pend) {
		v->code = GATE_PENDING;
		return;
	}
	if (W.refuse) {
		v->code = SESSION_CLOSE_APP + 7;
		strcpy(v->reason, "banned: test");
	}
}

static void
check_counter(struct msgrec *r, const uint8_t *data, size_t len)
{
	uint32_t v;
	if (len < 4) {
		r->errors++;
		return;
	}
	memcpy(&v, data, 4);
	for (size_t i = 4; i < len; i++)
		if (data[i] != (uint8_t)(v + i))
			r->errors++;
	if (v != r->next)
		r->errors++;
	r->next = v + 1;
	r->n++;
}

static void
g_event(gate_t *g, session_t *s, const struct session_event *ev, void *user)
{
	(void)user;
	switch (ev->type) {
	case SESSION_EV_OPEN:
		W.srv_open++;
		break;
	case SESSION_EV_MESSAGE:
		W.srv_msgs++;
		check_counter(&W.srv_rel, ev->data, ev->len);
		if (W.echo) {
			session_send(s, ev->data, ev->len, now_us());
			gate_touch(g, s, now_us());
		}
		break;
	case SESSION_EV_DATAGRAM:
		if (W.echo)
			session_send_unreliable(s, ev->data, ev->len, now_us());
		break;
	case SESSION_EV_CLOSE:
		W.srv_close++;
		W.srv_close_code = ev->code;
		W.srv_close_remote = ev->remote;
		snprintf(W.srv_close_reason, sizeof W.srv_close_reason, "%s", ev->reason);
		break;
	case SESSION_EV_OFFLINE:
		W.srv_offline++;
		break;
	case SESSION_EV_RESUME:
		W.srv_resume++;
		W.srv_last_path = ev->path;
		break;
	case SESSION_EV_PATH:
		W.srv_path++;
		W.srv_last_path = ev->path;
		memcpy(W.to_at_path, W.to_port, sizeof W.to_port);
		memcpy(W.from_at_path, W.from_port, sizeof W.from_port);
		break;
	}
}

static void
g_limited(gate_t *g, const struct gate_path *from, const char *why, void *user)
{
	(void)g; (void)from; (void)user;
	W.limited++;
	snprintf(W.limited_why, sizeof W.limited_why, "%s", why);
}

/* ---- client side ------------------------------------------------------ */

static void
c_output(session_t *s, uint32_t path, const uint8_t *pkt, size_t len,
         void *user)
{
	struct client *c = user;
	(void)s;
	if (c->cut)
		return;
	if (path == 2) {
		if (c->tnet)
			simnet_send(c->tnet, 0, pkt, (int)len, W.t);
		return;
	}
	if (W.ncap < 16) {
		memcpy(W.cap_pkt[W.ncap], pkt, len);
		W.cap_len[W.ncap] = len;
		W.cap_type[W.ncap] = pkt[0];
		W.ncap++;
	}
	if (W.race_port && !c->mute_up) {
		static uint8_t copy[PKT];
		struct gate_path evil;
		port_addr(W.race_port, &evil);
		memcpy(copy, pkt, len);
		if (W.race_port >= 3000 && W.race_port < 3008)
			W.from_port[W.race_port - 3000] += len;
		gate_input(W.g, &evil, copy, len, now_us());
	}
	if (pkt[0] == WIRE_KCP) {
		c->kcp_out++;
		c->kcp_out_t = W.t;
	}
	if (!c->mute_up)
		simnet_send(c->net, 0, pkt, (int)len, W.t);
}

static void
c_event(session_t *s, const struct session_event *ev, void *user)
{
	struct client *c = user;
	(void)s;
	switch (ev->type) {
	case SESSION_EV_OPEN:
		c->opened++;
		break;
	case SESSION_EV_MESSAGE:
		check_counter(&c->rel, ev->data, ev->len);
		break;
	case SESSION_EV_DATAGRAM:
		if (c->dgrams && ev->seq <= c->dgram_last)
			c->dgram_back++;
		c->dgram_last = ev->seq;
		c->dgrams++;
		break;
	case SESSION_EV_CLOSE:
		c->closed++;
		c->close_code = ev->code;
		c->close_remote = ev->remote;
		snprintf(c->close_reason, sizeof c->close_reason, "%s", ev->reason);
		break;
	case SESSION_EV_OFFLINE:
		c->offline++;
		break;
	case SESSION_EV_RESUME:
		c->resumed++;
		break;
	case SESSION_EV_PROBE:
		c->probes++;
		c->probe_path = ev->path;
		break;
	}
}

static const struct session_callbacks client_cb = { c_output, c_event };
static void g_limited(gate_t *g, const struct gate_path *from, const char *why,
                      void *user);
static const struct gate_callbacks gate_cb = { g_output, g_accept, g_event,
                                               NULL, NULL, g_limited };

static uint64_t
client_now(const struct client *c)
{
	return (uint64_t)((int64_t)now_us() + c->clock_skew_us);
}

static void
world_init(const struct session_config *sc)
{
	memset(&W, 0, sizeof W);
	gate_config_default(&W.gc);
	if (sc)
		W.gc.session = *sc;
	W.gc.secret[0] = 1;
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	W.echo = 1;
	W.t = 1000000; /* any origin */
}

static struct client *
add_client(const struct simnet_conf *net, const struct session_config *sc,
           const char *hello, uint64_t seed)
{
	struct client *c = &W.c[W.nc];
	c->port = (uint16_t)(1000 + W.nc);
	W.nc++;
	c->net = simnet_create(net, seed);
	struct session_config def;
	session_config_default(&def);
	c->s = session_client_create(sc ? sc : &def, &client_cb, c, 1,
	                             (const uint8_t *)hello, strlen(hello),
	                             client_now(c));
	return c;
}

static void
world_free(void)
{
	for (int i = 0; i < W.nc; i++) {
		session_release(W.c[i].s);
		simnet_free(W.c[i].net);
		simnet_free(W.c[i].tnet);
	}
	gate_dead = 1; /* the clients' links are gone */
	gate_release(W.g, now_us());
	gate_dead = 0;
}

/* One millisecond of the world. */
static void
step(void)
{
	static uint8_t buf[PKT];
	for (int i = 0; i < W.nc; i++) {
		struct client *c = &W.c[i];
		int n;
		struct gate_path from;
		addr_of(i, &from);
		while ((n = simnet_recv(c->net, 0, buf, sizeof buf, W.t)) >= 0) {
			if (c->cut)
				continue;
			if (c->port >= 3000 && c->port < 3008)
				W.from_port[c->port - 3000] += (uint64_t)n;
			W.last_in_len = (size_t)n;
			W.last_in_unproven = n > 0 && (buf[0] == WIRE_HELLO);
			gate_input(W.g, &from, buf, (size_t)n, now_us());
			W.last_in_unproven = 0;
		}
		while ((n = simnet_recv(c->net, 1, buf, sizeof buf, W.t)) >= 0)
			if (session_state(c->s) != SESSION_CLOSED && !c->cut)
				session_input(c->s, 1, buf, (size_t)n, client_now(c));
		if (c->tnet) {
			struct gate_path tp;
			tcp_of(i, &tp);
			while ((n = simnet_recv(c->tnet, 0, buf, sizeof buf, W.t)) >= 0)
				gate_input(W.g, &tp, buf, (size_t)n, now_us());
			while ((n = simnet_recv(c->tnet, 1, buf, sizeof buf, W.t)) >= 0)
				if (session_state(c->s) != SESSION_CLOSED)
					session_input(c->s, 2, buf, (size_t)n, client_now(c));
		}
	}
	if (gate_check(W.g, now_us()) <= now_us()) {
		W.gate_updates++;
		gate_update(W.g, now_us());
	}
	for (int i = 0; i < W.nc; i++) {
		struct client *c = &W.c[i];
		if (session_state(c->s) != SESSION_CLOSED &&
		    session_check(c->s, client_now(c)) <= client_now(c))
			session_update(c->s, client_now(c));
	}
	W.t++;
}

static void
run_ms(uint32_t ms)
{
	for (uint32_t i = 0; i < ms; i++)
		step();
}

/* Step until cond or the deadline (virtual ms); returns cond. */
#define RUN_UNTIL(cond, ms) ({ \
	uint32_t ru_i_ = 0; \
	while (!(cond) && ru_i_++ < (ms)) \
		step(); \
	(cond); })

static void
send_counter(struct client *c, uint32_t v, size_t len)
{
	uint8_t m[2048];
	memcpy(m, &v, 4);
	for (size_t i = 4; i < len; i++)
		m[i] = (uint8_t)(v + i);
	CHECK_EQ(session_send(c->s, m, len, client_now(c)), 0);
}

/* ---- tests ------------------------------------------------------------ */

TEST(handshake_opens_both_sides)
{
	world_init(NULL);
	struct client *c = add_client(NULL, NULL, "game v1", 1);
	REQUIRE(c->s != NULL);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	CHECK_EQ(c->opened, 1);
	CHECK_EQ(W.srv_open, 1);
	CHECK(strcmp(W.last_hello, "game v1") == 0);
	CHECK(session_id(c->s) != 0);
	CHECK(gate_session(W.g, session_id(c->s)) != NULL);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.sessions, 1);
	CHECK_EQ(st.challenges, 1);
	CHECK_EQ(W.amp_violations, 0);
	world_free();
}

TEST(handshake_survives_loss_and_duplicates)
{
	for (int seed = 1; seed <= 20; seed++) {
		world_init(NULL);
		struct simnet_conf nc = { .loss = 0.4, .delay_min = 20, .delay_max = 60,
		                          .dup = 0.5, .reorder = 0.2 };
		struct session_config sc;
		session_config_default(&sc);
		sc.handshake_timeout_ms = 60000; /* 40% loss each way can take long */
		struct client *c = add_client(&nc, &sc, "x", (uint64_t)seed);
		CHECK(RUN_UNTIL(c->opened && W.srv_open, 60000));
		if (c->closed)
			printf("seed %d closed: %s t=%u\n", seed, c->close_reason, W.t);
		run_ms(3000);
		struct gate_stats st;
		gate_stats(W.g, &st);
		CHECK_EQ(st.sessions, 1); /* duplicates never make a second one */
		CHECK_EQ(st.opened, 1);
		CHECK_EQ(c->opened, 1);
		CHECK_EQ(c->closed, 0);
		CHECK_EQ(W.amp_violations, 0);
		world_free();
	}
}

TEST(handshake_timeout_when_server_silent)
{
	world_init(NULL);
	struct session_config sc;
	session_config_default(&sc);
	sc.handshake_timeout_ms = 3000;
	struct client *c = add_client(NULL, &sc, "x", 1);
	c->mute_down = 0;
	W.c[0].mute_up = 1;
	CHECK(RUN_UNTIL(c->closed, 5000));
	CHECK_EQ(c->close_code, SESSION_CLOSE_HANDSHAKE);
	CHECK(strcmp(c->close_reason, "handshake timeout") == 0);
	/* backoff: 250, 500, 1000, 2000 capped: few resends in 3 s */
	CHECK(W.ncap >= 4 && W.ncap <= 8);
	world_free();
}

TEST(handshake_refused_with_reason)
{
	world_init(NULL);
	W.refuse = 1;
	struct client *c = add_client(NULL, NULL, "old", 1);
	CHECK(RUN_UNTIL(c->closed, 2000));
	CHECK_EQ(c->close_code, SESSION_CLOSE_APP + 7);
	CHECK(strcmp(c->close_reason, "banned: test") == 0);
	CHECK_EQ(c->opened, 0);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.sessions, 0);
	CHECK_EQ(st.refused, 1);
	world_free();
}

TEST(handshake_replayed_init_makes_nothing_new)
{
	world_init(NULL);
	struct client *c = add_client(NULL, NULL, "x", 1);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	int init = -1;
	for (int i = 0; i < W.ncap; i++)
		if (W.cap_type[i] == WIRE_INIT)
			init = i;
	REQUIRE(init >= 0);
	uint8_t pkt[PKT];
	struct gate_path p;
	/* the same address: at most a WELCOME again, no new session */
	addr_of(0, &p);
	memcpy(pkt, W.cap_pkt[init], W.cap_len[init]);
	gate_input(W.g, &p, pkt, W.cap_len[init], now_us());
	/* another address: the cookie does not match it */
	addr_of(5, &p);
	memcpy(pkt, W.cap_pkt[init], W.cap_len[init]);
	gate_input(W.g, &p, pkt, W.cap_len[init], now_us());
	/* the same address after the cookie expired (2 slots of 10 s) */
	run_ms(25000);
	addr_of(0, &p);
	memcpy(pkt, W.cap_pkt[init], W.cap_len[init]);
	gate_input(W.g, &p, pkt, W.cap_len[init], now_us());
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.sessions, 1);
	CHECK_EQ(st.opened, 1);
	CHECK_EQ(st.bad_cookies, 2); /* the other address, and the expired one */
	CHECK_EQ(c->closed, 0);
	world_free();
}


/* ---- handshake v2: the pinned server key ------------------------------ */

/* A client config pinned to the world's gate key (or to key when given). */
static void
pinned_config(struct session_config *sc, const uint8_t *key)
{
	uint8_t pub[WIRE_PUB], sec[WIRE_SEC];
	session_config_default(sc);
	wire_static_keypair(pub, sec, W.gc.secret);
	sc->pinned = 1;
	memcpy(sc->server_key, key ? key : pub, WIRE_PUB);
}

static int
contains(const uint8_t *p, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(p + i, needle, k))
			return 1;
	return 0;
}

/* ---- pending verdicts: the policy answers later (gate_decide) --------- */

static struct gate_verdict
verdict(int code, const char *reason)
{
	struct gate_verdict v;
	memset(&v, 0, sizeof v);
	v.code = code;
	snprintf(v.reason, sizeof v.reason, "%s", reason);
	return v;
}

TEST(pending_then_accept_opens_the_session)
{
	world_init(NULL);
	W.pend = 1;
	struct session_config sc;
	pinned_config(&sc, NULL);
	struct client *c = add_client(NULL, &sc, "slow login", 1);
	CHECK(RUN_UNTIL(W.accepts == 1, 1000));
	CHECK(strcmp(W.last_hello, "slow login") == 0);
	CHECK(W.ticket[0] != 0);
	run_ms(300); /* the verdict takes its time: nothing is made, nothing sent */
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.pending, 1);
	CHECK_EQ(st.sessions, 0);
	CHECK_EQ(W.welcomes + W.refuses, 0);
	CHECK_EQ(c->opened + c->closed, 0);
	CHECK(gate_check(W.g, now_us()) <= now_us() + 5000000); /* its deadline */
	struct gate_verdict v = verdict(0, "");
	CHECK_EQ(gate_decide(W.g, W.ticket[0], &v, now_us()), 0);
	CHECK_EQ(gate_decide(W.g, W.ticket[0], &v, now_us()), -1); /* once */
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	CHECK(strcmp(W.last_hello, "slow login") == 0);
	gate_stats(W.g, &st);
	CHECK_EQ(st.pending, 0);
	CHECK_EQ(st.sessions, 1);
	CHECK_EQ(W.accepts, 1);
	CHECK_EQ(W.welcomes, 1);
	CHECK_EQ(W.amp_violations, 0);
	send_counter(c, 0, 100);
	CHECK(RUN_UNTIL(c->rel.n == 1, 1000));
	CHECK_EQ(c->rel.errors, 0);
	world_free();
}

TEST(pending_then_refuse_says_why)
{
	world_init(NULL);
	W.pend = 1;
	struct client *c = add_client(NULL, NULL, "banned player", 1);
	CHECK(RUN_UNTIL(W.accepts == 1, 1000));
	run_ms(100);
	struct gate_verdict v = verdict(SESSION_CLOSE_APP + 9, "banned: later");
	CHECK_EQ(gate_decide(W.g, W.ticket[0], &v, now_us()), 0);
	CHECK(RUN_UNTIL(c->closed, 1000));
	CHECK_EQ(c->close_code, SESSION_CLOSE_APP + 9);
	CHECK(strcmp(c->close_reason, "banned: later") == 0);
	CHECK_EQ(c->opened, 0);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.pending, 0);
	CHECK_EQ(st.sessions, 0);
	CHECK_EQ(st.refused, 1);
	CHECK_EQ(W.srv_open, 0);
	world_free();
}

TEST(pending_past_its_time_is_refused)
{
	world_init(NULL);
	W.gc.pending_ms = 1000;
	gate_release(W.g, now_us());
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	W.pend = 1;
	struct client *c = add_client(NULL, NULL, "x", 1);
	CHECK(RUN_UNTIL(W.accepts == 1, 1000));
	uint32_t asked = W.t;
	CHECK(RUN_UNTIL(c->closed, 3000));
	CHECK(W.t - asked >= 1000 && W.t - asked <= 1010);
	CHECK_EQ(c->close_code, SESSION_CLOSE_HANDSHAKE);
	CHECK(strcmp(c->close_reason, "handshake policy timeout") == 0);
	CHECK(strcmp(W.limited_why, "gate.pending_ms") == 0);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.pending, 0);
	CHECK_EQ(st.pending_timeouts, 1);
	CHECK_EQ(st.sessions, 0);
	/* the late verdict finds nothing */
	struct gate_verdict v = verdict(0, "");
	CHECK_EQ(gate_decide(W.g, W.ticket[0], &v, now_us()), -1);
	gate_stats(W.g, &st);
	CHECK_EQ(st.sessions, 0);
	CHECK_EQ(W.accepts, 1);
	world_free();
}

/* The client retransmits its INIT while the verdict is pending, and tries
 * TCP too (its HELLO there is an INIT): the policy is asked once, and the
 * verdict answers on both paths, one WELCOME each. */
TEST(repeated_init_while_pending_asks_once)
{
	world_init(NULL);
	W.pend = 1;
	struct client *c = add_client(NULL, NULL, "x", 1);
	struct simnet_conf tc = { .in_order = 1 };
	c->tnet = simnet_create(&tc, 4);
	CHECK(RUN_UNTIL(W.accepts == 1, 1000));
	run_ms(2000); /* INIT again at 250, 500, 1000 ms */
	int inits = 0, hello = -1;
	for (int i = 0; i < W.ncap; i++) {
		inits += W.cap_type[i] == WIRE_INIT;
		if (W.cap_type[i] == WIRE_HELLO)
			hello = i;
	}
	CHECK(inits >= 3);
	REQUIRE(hello >= 0);
	uint8_t pkt[PKT];
	struct gate_path tp;
	tcp_of(0, &tp);
	memcpy(pkt, W.cap_pkt[hello], W.cap_len[hello]);
	gate_input(W.g, &tp, pkt, W.cap_len[hello], now_us());
	CHECK_EQ(W.accepts, 1);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.pending, 1);
	CHECK_EQ(W.welcomes + W.refuses, 0);
	struct gate_verdict v = verdict(0, "");
	CHECK_EQ(gate_decide(W.g, W.ticket[0], &v, now_us()), 0);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	CHECK_EQ(W.accepts, 1);
	CHECK_EQ(W.welcomes, 2);
	CHECK_EQ(W.welcomes_tcp, 1);
	gate_stats(W.g, &st);
	CHECK_EQ(st.sessions, 1);
	CHECK_EQ(st.created, 1);
	CHECK_EQ(W.amp_violations, 0);
	send_counter(c, 0, 100);
	CHECK(RUN_UNTIL(c->rel.n == 1, 1000));
	world_free();
}

/* pending_max wait at once; one more that would wait is refused "server
 * busy" (the policy was asked, with ticket 0: it could not wait); a
 * policy that answers at once still gets in. */
TEST(pending_max_refuses_one_more)
{
	world_init(NULL);
	W.gc.pending_max = 2;
	gate_release(W.g, now_us());
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	W.pend = 1;
	struct client *a = add_client(NULL, NULL, "a", 1);
	struct client *b = add_client(NULL, NULL, "b", 2);
	CHECK(RUN_UNTIL(W.accepts == 2, 1000));
	struct client *c = add_client(NULL, NULL, "c", 3);
	CHECK(RUN_UNTIL(c->closed, 1000));
	CHECK_EQ(W.accepts, 3);
	CHECK_EQ(W.ticket[2], 0);
	CHECK_EQ(c->close_code, SESSION_CLOSE_REFUSED);
	CHECK(strstr(c->close_reason, "server busy") == c->close_reason);
	CHECK(strstr(c->close_reason, "gate.pending_max") != NULL);
	CHECK(strcmp(W.limited_why, "gate.pending_max") == 0);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.pending, 2);
	CHECK_EQ(st.pending_refused, 1);
	W.pend = 0; /* an answer at once needs no room */
	struct client *d = add_client(NULL, NULL, "d", 4);
	CHECK(RUN_UNTIL(d->opened, 1000));
	struct gate_verdict v = verdict(0, "");
	CHECK_EQ(gate_decide(W.g, W.ticket[0], &v, now_us()), 0);
	CHECK_EQ(gate_decide(W.g, W.ticket[1], &v, now_us()), 0);
	CHECK(RUN_UNTIL(a->opened && b->opened, 1000));
	gate_stats(W.g, &st);
	CHECK_EQ(st.pending, 0);
	CHECK_EQ(st.sessions, 3);
	world_free();
}

/* Released with handshakes pending: each told "server shutdown", every
 * record freed (ASan's leak check). */
TEST(release_with_pending_verdicts)
{
	world_init(NULL);
	W.pend = 1;
	struct session_config sc;
	pinned_config(&sc, NULL);
	add_client(NULL, &sc, "a", 1);
	add_client(NULL, NULL, "b", 2);
	add_client(NULL, &sc, "c", 3);
	CHECK(RUN_UNTIL(W.accepts == 3, 1000));
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.pending, 3);
	gate_release(W.g, now_us());
	CHECK_EQ(W.refuses, 3);
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	struct gate_verdict v = verdict(0, "");
	CHECK_EQ(gate_decide(W.g, W.ticket[0], &v, now_us()), -1);
	world_free();
}

TEST(pinned_handshake_hides_the_hello)
{
	world_init(NULL);
	struct session_config sc;
	pinned_config(&sc, NULL);
	struct client *c = add_client(NULL, &sc, "cookie=SECRET-LOGIN-42", 1);
	REQUIRE(c->s != NULL);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	CHECK(strcmp(W.last_hello, "cookie=SECRET-LOGIN-42") == 0);
	int hellos = 0, inits = 0;
	for (int i = 0; i < W.ncap; i++) {
		if (W.cap_type[i] == WIRE_HELLO || W.cap_type[i] == WIRE_INIT) {
			hellos += W.cap_type[i] == WIRE_HELLO;
			inits += W.cap_type[i] == WIRE_INIT;
			CHECK_EQ(W.cap_pkt[i][1], WIRE_V2);
		}
		CHECK(!contains(W.cap_pkt[i], W.cap_len[i], "SECRET"));
	}
	CHECK_EQ(hellos, 1);
	CHECK_EQ(inits, 1);
	CHECK_EQ(W.amp_violations, 0);
	/* the session works both ways */
	send_counter(c, 0, 100);
	CHECK(RUN_UNTIL(c->rel.n == 1, 1000));
	CHECK_EQ(c->rel.errors, 0);
	world_free();
}

/* The cipher (docs/PROTOCOL.md, "Ciphers"): AES-256-GCM when the client
 * offers it (caps in its HELLO) and the server takes it, ChaCha20-Poly1305
 * when either side says no (session_config.aes 0) and for an unpinned
 * (v1) client, which has no caps. Both sides agree (the client learns it
 * from the WELCOME's flags) and messages go both ways. */
static int
cipher_of(int client_aes, int server_aes, int pinned)
{
	struct session_config ss, sc;
	session_config_default(&ss);
	ss.aes = server_aes;
	world_init(&ss);
	W.gc.allow_unpinned = 1;
	gate_release(W.g, now_us());
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	if (pinned)
		pinned_config(&sc, NULL);
	else
		session_config_default(&sc);
	sc.aes = client_aes;
	struct client *c = add_client(NULL, &sc, "x", 1);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	send_counter(c, 0, 100);
	CHECK(RUN_UNTIL(c->rel.n == 1, 1000));
	CHECK_EQ(c->rel.errors, 0);
	struct session_stats a, b;
	session_stats(c->s, &a);
	session_stats(gate_session(W.g, session_id(c->s)), &b);
	CHECK_EQ(a.aesgcm, b.aesgcm);
	CHECK(a.encrypted && b.encrypted);
	world_free();
	return a.aesgcm;
}

TEST(cipher_is_negotiated)
{
	if (!wire_aesgcm_available()) {
		printf("    (no AES-NI here: only ChaCha20-Poly1305 is tried)\n");
		CHECK_EQ(cipher_of(1, 1, 1), 0);
		return;
	}
	CHECK_EQ(cipher_of(1, 1, 1), 1);
	CHECK_EQ(cipher_of(0, 1, 1), 0);
	CHECK_EQ(cipher_of(1, 0, 1), 0);
	CHECK_EQ(cipher_of(1, 1, 0), 0); /* v1: no caps */
}

TEST(pinned_client_refused_by_a_server_with_another_key)
{
	world_init(NULL);
	uint8_t other[WIRE_PUB], osec[WIRE_SEC];
	wire_keypair(other, osec); /* the man in the middle's own key */
	struct session_config sc;
	pinned_config(&sc, other);
	struct client *c = add_client(NULL, &sc, "cookie=SECRET", 1);
	CHECK(RUN_UNTIL(c->closed, 2000));
	CHECK_EQ(c->opened, 0);
	CHECK_EQ(c->close_code, SESSION_CLOSE_REFUSED);
	CHECK(strstr(c->close_reason, "server key mismatch") != NULL);
	CHECK_EQ(W.srv_open, 0);
	CHECK_EQ(W.last_hello[0], 0); /* policy never saw it */
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.sessions, 0);
	CHECK_EQ(st.auth_failures, 1);
	world_free();
}

/* A man in the middle answers the client's HELLO itself: whether its
 * WELCOME is anonymous (v1) or made with its own static key, a pinned
 * client cannot open it and ends "server key mismatch"; an unpinned
 * client opens the first (what v1 cannot prevent). */
static void
mitm_output(session_t *s, uint32_t path, const uint8_t *pkt, size_t len,
            void *user)
{
	(void)s; (void)path;
	struct client *victim = user;
	static uint8_t b[PKT];
	memcpy(b, pkt, len);
	session_input(victim->s, 1, b, len, client_now(victim));
}

static void
mitm_event(session_t *s, const struct session_event *ev, void *user)
{
	(void)s; (void)ev; (void)user;
}

static void
mitm_answer(struct client *c, int v2)
{
	static const struct session_callbacks cb = { mitm_output, mitm_event };
	struct session_config sc;
	session_config_default(&sc);
	int i;
	for (i = 0; i < W.ncap && W.cap_type[i] != WIRE_HELLO; i++)
		;
	REQUIRE(i < W.ncap);
	const uint8_t *epub = W.cap_pkt[i] + 2;
	session_t *m;
	if (v2) {
		uint8_t xpub[WIRE_PUB], xsec[WIRE_SEC];
		struct wire_nk nk;
		wire_keypair(xpub, xsec);
		REQUIRE_EQ(wire_nk_server(&nk, xpub, xsec, epub), 0);
		uint8_t spub[WIRE_PUB], ssec[WIRE_SEC];
		wire_keypair(spub, ssec);
		struct session_v2 v = { &nk, W.cap_pkt[i] + WIRE_HELLO_SIZE,
		                        W.cap_len[i] - WIRE_HELLO_SIZE, spub, ssec };
		m = session_server_create(&sc, &cb, c, 1, 77, epub, &v, now_us());
	} else {
		m = session_server_create(&sc, &cb, c, 1, 77, epub, NULL, now_us());
	}
	REQUIRE(m != NULL);
	session_release(m);
}

TEST(pinned_client_cannot_open_a_welcome_without_the_key)
{
	for (int v2 = 0; v2 <= 1; v2++) {
		world_init(NULL);
		struct session_config sc;
		pinned_config(&sc, NULL);
		sc.handshake_timeout_ms = 2000;
		struct client *c = add_client(NULL, &sc, "cookie=SECRET", 1);
		c->mute_up = 1; /* the real server hears nothing */
		mitm_answer(c, v2);
		CHECK_EQ(c->opened, 0);
		CHECK(RUN_UNTIL(c->closed, 3000));
		CHECK_EQ(c->opened, 0);
		CHECK_EQ(c->close_code, SESSION_CLOSE_HANDSHAKE);
		CHECK(strstr(c->close_reason, "server key mismatch") != NULL);
		struct session_stats st;
		session_stats(c->s, &st);
		CHECK_EQ(st.in_auth_fail, 1);
		world_free();
	}
	/* unpinned, the anonymous MITM gets in: why clients pin */
	world_init(NULL);
	struct client *c = add_client(NULL, NULL, "cookie=SECRET", 1);
	c->mute_up = 1;
	mitm_answer(c, 0);
	CHECK_EQ(c->opened, 1);
	world_free();
}

TEST(unpinned_client_refused_unless_allowed)
{
	world_init(NULL);
	gate_release(W.g, now_us());
	W.gc.allow_unpinned = 0;
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	struct client *c = add_client(NULL, NULL, "plain", 1);
	CHECK(RUN_UNTIL(c->closed, 2000));
	CHECK_EQ(c->opened, 0);
	CHECK_EQ(c->close_code, SESSION_CLOSE_REFUSED);
	CHECK(strstr(c->close_reason, "unpinned") != NULL);
	CHECK_EQ(W.last_hello[0], 0);
	/* a pinned one gets in */
	struct session_config sc;
	pinned_config(&sc, NULL);
	struct client *p = add_client(NULL, &sc, "sealed", 2);
	CHECK(RUN_UNTIL(p->opened && W.srv_open, 1000));
	CHECK(strcmp(W.last_hello, "sealed") == 0);
	world_free();
}


/* The server's ephemeral key of v2 serves the handshakes of one short
 * window (at most 64, at most 1 s), then a new one. */
TEST(server_ephemeral_rotates)
{
	world_init(NULL);
	struct session_config sc;
	pinned_config(&sc, NULL);
	struct client *a = add_client(NULL, &sc, "a", 1);
	struct client *b = add_client(NULL, &sc, "b", 2);
	CHECK(RUN_UNTIL(a->opened && b->opened, 1000));
	CHECK_MEM(session_peer_pub(a->s), session_peer_pub(b->s), WIRE_PUB);
	run_ms(1100);
	struct client *c = add_client(NULL, &sc, "c", 3);
	CHECK(RUN_UNTIL(c->opened, 1000));
	CHECK(memcmp(session_peer_pub(a->s), session_peer_pub(c->s), WIRE_PUB));
	/* the sessions still work: their keys are their own */
	send_counter(a, 0, 50);
	send_counter(c, 0, 50);
	CHECK(RUN_UNTIL(a->rel.n == 1 && c->rel.n == 1, 1000));
	CHECK_EQ(a->rel.errors + c->rel.errors, 0);
	world_free();
}

TEST(hello_flood_allocates_nothing)
{
	world_init(NULL);
	uint8_t pkt[128];
	struct wire_hello h;
	memset(&h, 0, sizeof h);
	h.type = WIRE_HELLO;
	h.version = WIRE_V1;
	int amp = 0;
	for (int i = 0; i < 10000; i++) {
		struct gate_path p;
		addr_of(100 + i, &p); /* spoofed-looking sources, nobody answers */
		struct sockaddr_in *in = (struct sockaddr_in *)&p.addr;
		in->sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
		h.pub[0] = (uint8_t)i;
		h.pub[1] = (uint8_t)(i >> 8);
		int n = wire_hello_encode(pkt, sizeof pkt, &h);
		REQUIRE(n > 0);
		W.last_in_len = (size_t)n;
		W.last_in_unproven = 1;
		gate_input(W.g, &p, pkt, (size_t)n, now_us());
		/* INITs with made-up cookies from the same sources */
		struct wire_hello f = h;
		f.type = WIRE_INIT;
		f.stamp = (uint32_t)(now_us() / 10000000);
		f.mac[0] = (uint8_t)i;
		n = wire_hello_encode(pkt, sizeof pkt, &f);
		gate_input(W.g, &p, pkt, (size_t)n, now_us());
	}
	amp = W.amp_violations;
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.sessions, 0);
	CHECK_EQ(st.challenges, 10000);
	CHECK_EQ(st.bad_cookies, 10000);
	CHECK_EQ(amp, 0);
	CHECK_EQ(gate_check(W.g, now_us()) > now_us() + 1000000000ull, 1);
	world_free();
}

TEST(garbage_forged_and_replayed_are_dropped)
{
	world_init(NULL);
	struct client *c = add_client(NULL, NULL, "x", 1);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	W.ncap = 0;
	send_counter(c, 0, 100);
	run_ms(50);
	CHECK_EQ(W.srv_msgs, 1);
	REQUIRE(W.ncap > 0);
	/* a session packet the client sent, replayed, then bit-flipped */
	int kcp = -1;
	for (int i = 0; i < W.ncap; i++)
		if (W.cap_type[i] == WIRE_KCP)
			kcp = i;
	REQUIRE(kcp >= 0);
	struct gate_path p;
	addr_of(0, &p);
	uint8_t pkt[PKT];
	memcpy(pkt, W.cap_pkt[kcp], W.cap_len[kcp]);
	gate_input(W.g, &p, pkt, W.cap_len[kcp], now_us());
	for (size_t b = 9; b < W.cap_len[kcp]; b += 7) {
		memcpy(pkt, W.cap_pkt[kcp], W.cap_len[kcp]);
		pkt[5] ^= 0x40; /* a fresh pn, so it is not a replay */
		pkt[b] ^= 1;
		gate_input(W.g, &p, pkt, W.cap_len[kcp], now_us());
	}
	/* garbage of every length */
	uint64_t x = 7;
	for (int i = 0; i < 5000; i++) {
		size_t n = (size_t)(i % 1300);
		for (size_t j = 0; j < n; j++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			pkt[j] = (uint8_t)(x >> 56);
		}
		if (n && i % 3 == 0)
			pkt[0] = (uint8_t)(0x10 + i % 6);
		if (n >= 5 && i % 6 == 0)
			wire_put32(pkt + 1, session_id(c->s)); /* a real sid */
		gate_input(W.g, &p, pkt, n, now_us());
	}
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.replays, 1);
	CHECK(st.auth_failures > 100);
	CHECK(st.bad_packets > 1000);
	CHECK_EQ(st.sessions, 1);
	CHECK_EQ(W.srv_msgs, 1);
	/* the session still works */
	send_counter(c, 1, 100);
	CHECK(RUN_UNTIL(W.srv_msgs == 2 && c->rel.n == 2, 1000));
	CHECK_EQ(W.srv_rel.errors, 0);
	CHECK_EQ(c->rel.errors, 0);
	world_free();
}

static void
run_echo(double loss, int n, uint64_t seed, int encrypt)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.encrypt = encrypt;
	world_init(&sc);
	W.gc.plain_listeners = encrypt ? 0 : 1; /* the clients come on listener 0 */
	struct simnet_conf nc = { .loss = loss, .delay_min = 10, .delay_max = 30,
	                          .reorder = loss / 2, .dup = loss / 4 };
	struct client *c = add_client(&nc, NULL, "x", seed);
	CHECK(RUN_UNTIL(c->opened, 10000));
	uint32_t sent = 0;
	for (int round = 0; round < 400000 && c->rel.n < (uint32_t)n; round++) {
		if (sent < (uint32_t)n && sent - c->rel.n < 64) {
			send_counter(c, sent, 4 + (sent * 37) % 1800);
			sent++;
		}
		step();
	}
	CHECK_EQ(c->rel.n, (uint32_t)n);
	CHECK_EQ(c->rel.errors, 0);
	CHECK_EQ(W.srv_rel.errors, 0);
	CHECK_EQ(W.srv_msgs, (uint32_t)n);
	CHECK_EQ(c->closed, 0);
	world_free();
}

TEST(echo_exactly_once_in_order)
{
	run_echo(0.0, 2000, 1, 1);
	run_echo(0.1, 2000, 2, 1);
	run_echo(0.2, 1000, 3, 0); /* authenticated, not encrypted */
}

TEST(unreliable_newest_wins)
{
	world_init(NULL);
	struct simnet_conf nc = { .delay_min = 20, .delay_max = 20, .reorder = 0.1,
	                          .dup = 0.2 };
	struct client *c = add_client(&nc, NULL, "x", 9);
	CHECK(RUN_UNTIL(c->opened, 1000));
	uint8_t m[64] = { 0 };
	for (int i = 0; i < 2000; i++) {
		CHECK_EQ(session_send_unreliable(c->s, m, sizeof m, client_now(c)), 0);
		step();
	}
	run_ms(500);
	if (tu_verbose)
		printf("dgrams %u\n", c->dgrams);
	CHECK(c->dgrams > 1500);
	CHECK(c->dgrams < 2000); /* reordering made some stale */
	CHECK_EQ(c->dgram_back, 0);
	struct session_stats st;
	session_stats(c->s, &st);
	CHECK(st.dgrams_stale > 0);
	uint8_t big[1200];
	CHECK_EQ(session_send_unreliable(c->s, big, 1200 - WIRE_OVERHEAD - 3,
	                                 client_now(c)), SESSION_ETOOBIG);
	CHECK_EQ(session_send_unreliable(c->s, big, 1200 - WIRE_OVERHEAD - 4,
	                                 client_now(c)), 0);
	world_free();
}

TEST(heartbeat_rtt_and_clock_offset)
{
	world_init(NULL);
	struct simnet_conf nc = { .delay_min = 40, .delay_max = 40 };
	struct client *c = add_client(&nc, NULL, "x", 3);
	c->clock_skew_us = -123456789; /* client clock behind the server's */
	CHECK(RUN_UNTIL(c->opened, 2000));
	run_ms(10000);
	struct session_stats st;
	session_stats(c->s, &st);
	CHECK(st.pings >= 9 && st.pings <= 12);
	CHECK(st.pongs >= 8);
	CHECK(st.srtt_ms > 78 && st.srtt_ms < 84);
	/* offset = server clock - client clock, within a millisecond */
	CHECK(st.offset_us > 123456789 - 1500 && st.offset_us < 123456789 + 1500);
	session_t *srv = gate_session(W.g, session_id(c->s));
	REQUIRE(srv != NULL);
	session_stats(srv, &st);
	CHECK(st.srtt_ms > 78 && st.srtt_ms < 84);
	CHECK(st.offset_us < -123456789 + 1500 && st.offset_us > -123456789 - 1500);
	/* idle: nothing but heartbeats, the gate sleeps until the next one */
	int before = W.gate_updates;
	run_ms(10000);
	if (tu_verbose)
		printf("gate updates in 10 idle s: %d\n", W.gate_updates - before);
	CHECK(W.gate_updates - before <= 25);
	world_free();
}

/* Send a 32-byte datagram every 50 ms for ms (the server echoes it: traffic
 * both ways), or stay idle (period 0). */
static void
traffic_ms(struct client *c, uint32_t ms, uint32_t period)
{
	uint8_t m[32] = { 0 };
	for (uint32_t i = 0; i < ms; i++) {
		if (period && i % period == 0)
			session_send_unreliable(c->s, m, sizeof m, client_now(c));
		step();
	}
}

static void
pings_of(struct client *c, uint64_t *cli, uint64_t *srv, uint64_t *pongs)
{
	struct session_stats st;
	session_stats(c->s, &st);
	*cli = st.pings;
	*pongs = st.pongs;
	session_t *s = gate_session(W.g, session_id(c->s));
	*srv = 0;
	if (s) {
		session_stats(s, &st);
		*srv = st.pings;
	}
}

/* While datagrams flow both ways each side pings every busy_heartbeat_ms
 * (5 s), not every heartbeat_ms (1 s); idle, every heartbeat_ms again, the
 * first within heartbeat_ms of the traffic's end; timeouts still fire. */
TEST(heartbeat_stretches_while_traffic_flows)
{
	world_init(NULL);
	struct simnet_conf nc = { .delay_min = 10, .delay_max = 10 };
	struct client *c = add_client(&nc, NULL, "x", 4);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	uint64_t c0, s0, p0, c1, s1, p1;
	traffic_ms(c, 2000, 50);
	pings_of(c, &c0, &s0, &p0);
	traffic_ms(c, 20000, 50);
	pings_of(c, &c1, &s1, &p1);
	if (tu_verbose)
		printf("busy 20 s: client %llu pings (%llu pongs), server %llu\n",
		       (unsigned long long)(c1 - c0), (unsigned long long)(p1 - p0),
		       (unsigned long long)(s1 - s0));
	CHECK(c1 - c0 >= 3 && c1 - c0 <= 5);   /* one per 5 s, not 20 */
	CHECK(s1 - s0 >= 3 && s1 - s0 <= 5);
	CHECK(p1 - p0 >= 3);                    /* the RTT stays fresh */
	struct session_stats st;
	session_stats(c->s, &st);
	CHECK(st.srtt_ms > 18 && st.srtt_ms < 24);

	/* traffic stops: a ping within heartbeat_ms (plus the flight) */
	traffic_ms(c, 1030, 0);
	pings_of(c, &c0, &s0, &p0);
	CHECK(c0 > c1 && s0 > s1);
	/* idle: one a second, as without the stretch */
	traffic_ms(c, 10000, 0);
	pings_of(c, &c1, &s1, &p1);
	CHECK(c1 - c0 >= 9 && c1 - c0 <= 11);
	CHECK(s1 - s0 >= 9 && s1 - s0 <= 11);

	/* busy again, then the client goes deaf and dumb: its datagrams are
	 * lost; the server hears nothing and times out timeout_ms after the
	 * last packet it got, as always */
	traffic_ms(c, 3000, 50);
	c->mute_up = 1;
	uint32_t t0 = W.t;
	uint8_t m[32] = { 0 };
	uint32_t i = 0;
	while (!W.srv_close && i++ < 12000) {
		if (i % 50 == 0)
			session_send_unreliable(c->s, m, sizeof m, client_now(c));
		step();
	}
	CHECK_EQ(W.srv_close, 1);
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_TIMEOUT);
	CHECK(W.t - t0 >= 9900 && W.t - t0 <= 10100);
	world_free();
}

/* busy_heartbeat_ms 0 (or not above heartbeat_ms): one ping a second with
 * traffic too */
TEST(heartbeat_not_stretched_when_off)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.busy_heartbeat_ms = 0;
	world_init(&sc);
	struct client *c = add_client(NULL, &sc, "x", 5);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	uint64_t c0, s0, p0, c1, s1, p1;
	traffic_ms(c, 1000, 50);
	pings_of(c, &c0, &s0, &p0);
	traffic_ms(c, 10000, 50);
	pings_of(c, &c1, &s1, &p1);
	CHECK(c1 - c0 >= 9 && c1 - c0 <= 11);
	CHECK(s1 - s0 >= 9 && s1 - s0 <= 11);
	world_free();
}

TEST(silent_client_times_out)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.timeout_ms = 3000;
	world_init(&sc);
	struct client *c = add_client(NULL, &sc, "x", 1);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	run_ms(5000);
	CHECK_EQ(W.srv_close, 0); /* heartbeats keep it alive */
	c->mute_up = 1;
	uint32_t t0 = W.t;
	CHECK(RUN_UNTIL(W.srv_close, 10000));
	CHECK(W.t - t0 >= 2000 && W.t - t0 <= 3100);
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_TIMEOUT);
	CHECK(strcmp(W.srv_close_reason, "timeout") == 0);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.sessions, 0);
	/* the client heard the server's best-effort CLOSE */
	CHECK(RUN_UNTIL(c->closed, 4000));
	CHECK_EQ(c->close_code, SESSION_CLOSE_TIMEOUT);
	world_free();
}

TEST(watermark_closes_with_backpressure)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.watermark = 200000;
	world_init(&sc);
	struct client *c = add_client(NULL, &sc, "x", 1);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	session_t *srv = gate_session(W.g, session_id(c->s));
	REQUIRE(srv != NULL);
	c->mute_up = 1; /* no acks reach the server */
	uint8_t m[1000] = { 0 };
	int rc = 0, i;
	for (i = 0; i < 1000 && rc == 0; i++) {
		rc = session_send(srv, m, sizeof m, now_us());
		gate_touch(W.g, srv, now_us());
		if (i % 10 == 0)
			step();
	}
	CHECK_EQ(rc, SESSION_EFULL);
	CHECK(i >= 190 && i <= 201);
	CHECK(session_memsize(srv) < 2048); /* the queue is freed at once */
	CHECK_EQ(session_state(srv), SESSION_CLOSING); /* CLOSE sent, no ack */
	CHECK(RUN_UNTIL(W.srv_close, 5000));
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_BACKPRESSURE);
	CHECK(strcmp(W.srv_close_reason, "backpressure") == 0);
	CHECK(RUN_UNTIL(c->closed, 2000));
	CHECK_EQ(c->close_code, SESSION_CLOSE_BACKPRESSURE);
	CHECK_EQ(c->close_remote, 1);
	world_free();
}

TEST(close_delivers_pending_data_then_reason)
{
	world_init(NULL);
	struct simnet_conf nc = { .loss = 0.2, .delay_min = 20, .delay_max = 40 };
	struct client *c = add_client(&nc, NULL, "x", 4);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 5000));
	session_t *srv = gate_session(W.g, session_id(c->s));
	REQUIRE(srv != NULL);
	uint8_t m[600];
	for (uint32_t v = 0; v < 50; v++) {
		memcpy(m, &v, 4);
		for (size_t i = 4; i < sizeof m; i++)
			m[i] = (uint8_t)(v + i);
		CHECK_EQ(session_send(srv, m, sizeof m, now_us()), 0);
	}
	session_close(srv, SESSION_CLOSE_APP + 1, "match over", 1, now_us());
	gate_touch(W.g, srv, now_us());
	CHECK_EQ(session_send(srv, m, 10, now_us()), SESSION_ECLOSED);
	CHECK(RUN_UNTIL(c->closed && W.srv_close, 10000));
	CHECK_EQ(c->rel.n, 50);
	CHECK_EQ(c->rel.errors, 0);
	CHECK_EQ(c->close_code, SESSION_CLOSE_APP + 1);
	CHECK(strcmp(c->close_reason, "match over") == 0);
	CHECK_EQ(c->close_remote, 1);
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_APP + 1);
	CHECK_EQ(W.srv_close_remote, 0);
	world_free();

	/* and the client closing */
	world_init(NULL);
	c = add_client(NULL, NULL, "x", 5);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	session_close(c->s, SESSION_CLOSE_NORMAL, "bye", 1, client_now(c));
	CHECK(RUN_UNTIL(c->closed && W.srv_close, 2000));
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_NORMAL);
	CHECK(strcmp(W.srv_close_reason, "bye") == 0);
	CHECK_EQ(W.srv_close_remote, 1);
	CHECK_EQ(c->close_remote, 0);
	world_free();
}

TEST(dead_link_closes)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.timeout_ms = 600000; /* only KCP can notice */
	sc.heartbeat_ms = 600000;
	sc.deadlink = 5;
	world_init(&sc);
	struct client *c = add_client(NULL, &sc, "x", 1);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	session_t *srv = gate_session(W.g, session_id(c->s));
	REQUIRE(srv != NULL);
	c->mute_up = 1;
	c->mute_down = 1;
	CHECK_EQ(session_send(srv, "x", 1, now_us()), 0);
	gate_touch(W.g, srv, now_us());
	CHECK(RUN_UNTIL(W.srv_close, 60000));
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_DEAD);
	CHECK(strcmp(W.srv_close_reason, "dead link") == 0);
	world_free();
}

/* The largest reliable message docs/PROTOCOL.md gives ("The largest
 * reliable message"): KCP's, (mtu - 25 - 24) x min(rcvwnd, 256) bytes,
 * less with FEC; a message past the receiver's msg_max closes the session
 * with code 5, "message too large". */
static int
largest_sendable(session_t *s, uint64_t now)
{
	static uint8_t m[300000];
	int lo = 0, hi = (int)sizeof m; /* lo fits, hi does not */
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		int rc = session_send(s, m, (size_t)mid, now);
		if (rc == 0)
			lo = mid;
		else if (rc == SESSION_ETOOBIG)
			hi = mid;
		else
			return -1;
	}
	return lo;
}

TEST(largest_reliable_message)
{
	for (int fec = 0; fec < 2; fec++) {
		struct session_config sc;
		session_config_default(&sc);
		sc.watermark = 1 << 30; /* room for the probes */
		sc.fec_data = fec ? 8 : 0;
		sc.fec_parity = fec ? 2 : 0;
		world_init(&sc);
		struct client *c = add_client(NULL, NULL, "x", 1);
		REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
		int want = fec ? (1200 - 25 - 31 - 24) * 128 : (1200 - 25 - 24) * 128;
		CHECK_EQ(want, fec ? 143360 : 147328);
		CHECK_EQ(largest_sendable(gate_session(W.g, session_id(c->s)), now_us()), want);
		CHECK_EQ(largest_sendable(c->s, client_now(c)), want);
		world_free();
	}
	/* the server's msg_max: past it, the client's message closes the
	 * session with code 5 */
	struct session_config sc;
	session_config_default(&sc);
	sc.msg_max = 1000;
	world_init(&sc);
	struct client *c = add_client(NULL, NULL, "x", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	static uint8_t big[1001];
	CHECK_EQ(session_send(gate_session(W.g, session_id(c->s)), big, sizeof big,
	                      now_us()), SESSION_ETOOBIG);
	send_counter(c, 0, 1000);
	CHECK(RUN_UNTIL(W.srv_rel.n == 1, 1000));
	/* the WELCOME told the client: it refuses a larger one itself */
	CHECK_EQ(session_send(c->s, big, sizeof big, client_now(c)), SESSION_ETOOBIG);
	/* a client that ignores it (older, or not ours) is closed */
	c->s->peer_msg_max = 0;
	send_counter(c, 1, 1001);
	CHECK(RUN_UNTIL(c->closed && W.srv_close, 3000));
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_PROTOCOL);
	CHECK(strcmp(W.srv_close_reason, "message too large") == 0);
	CHECK_EQ(c->close_code, SESSION_CLOSE_PROTOCOL);
	CHECK(strcmp(c->close_reason, "message too large") == 0);
	CHECK_EQ(c->close_remote, 1);
	world_free();
}

/* A plain KCP object, as classic clients use, against a raw listener. */
static kcp_t *raw_client;
static simnet_t *raw_net;
static int
raw_out(const char *buf, int len, kcp_t *k, void *user)
{
	(void)k; (void)user;
	simnet_send(raw_net, 0, buf, len, W.t);
	return 0;
}

TEST(raw_kcp_listener_echo)
{
	world_init(NULL);
	W.nc = 1; /* index 0 is the raw client: g_output sends into W.c[0].net */
	raw_net = simnet_create(NULL, 1);
	W.c[0].net = raw_net;
	W.c[0].port = 1000;
	raw_client = kcp_create(0x11223344, NULL);
	kcp_setoutput(raw_client, raw_out);
	kcp_nodelay(raw_client, 1, 10, 2, 1);
	struct gate_path p;
	addr_of(0, &p);
	p.raw = 1;
	uint8_t buf[PKT];
	int got = 0;
	char msg[32];
	for (int i = 0; i < 100; i++) {
		snprintf(msg, sizeof msg, "m%d", i);
		kcp_send(raw_client, msg, (int)strlen(msg) + 1);
	}
	for (int t = 0; t < 3000 && got < 100; t++) {
		kcp_update(raw_client, W.t);
		int n;
		while ((n = simnet_recv(raw_net, 0, buf, sizeof buf, W.t)) >= 0)
			gate_input(W.g, &p, buf, (size_t)n, now_us());
		while ((n = simnet_recv(raw_net, 1, buf, sizeof buf, W.t)) >= 0)
			kcp_input(raw_client, (char *)buf, n);
		while ((n = kcp_recv(raw_client, (char *)buf, sizeof buf)) > 0) {
			snprintf(msg, sizeof msg, "m%d", got);
			CHECK(strcmp((char *)buf, msg) == 0);
			got++;
		}
		if (gate_check(W.g, now_us()) <= now_us())
			gate_update(W.g, now_us());
		W.t++;
	}
	CHECK_EQ(got, 100);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.raw_sessions, 1);
	/* garbage on the raw listener makes no session */
	struct gate_path q;
	addr_of(9, &q);
	q.raw = 1;
	memset(buf, 0xAB, 100);
	gate_input(W.g, &q, buf, 100, now_us());
	gate_input(W.g, &q, buf, 10, now_us());
	gate_stats(W.g, &st);
	CHECK_EQ(st.raw_sessions, 1);
	CHECK_EQ(st.sessions, 1);
	kcp_release(raw_client);
	W.nc = 1;
	W.c[0].s = NULL;
	world_free();
}

/* ---- limits (issue 14: one source must not lock everyone out) ---------- */

/* One valid raw KCP datagram (a data segment of conv), as a classic client
 * sends first. */
static uint8_t raw_pkt[256];
static int raw_pkt_len;
static int
raw_capture(const char *buf, int len, kcp_t *k, void *user)
{
	(void)k; (void)user;
	if (!raw_pkt_len && len <= (int)sizeof raw_pkt) {
		memcpy(raw_pkt, buf, (size_t)len);
		raw_pkt_len = len;
	}
	return 0;
}

static void
make_raw_pkt(uint32_t conv)
{
	kcp_t *k = kcp_create(conv, NULL);
	kcp_setoutput(k, raw_capture);
	kcp_nodelay(k, 1, 10, 2, 1);
	raw_pkt_len = 0;
	kcp_send(k, "hi", 2);
	kcp_update(k, W.t);
	kcp_flush(k);
	kcp_release(k);
}

/* A raw datagram from 10.a.b.c:port. */
static void
raw_from(uint32_t ip, uint16_t port)
{
	struct gate_path p;
	port_addr(port, &p);
	((struct sockaddr_in *)&p.addr)->sin_addr.s_addr = htonl(ip);
	p.raw = 1;
	uint8_t b[256];
	memcpy(b, raw_pkt, (size_t)raw_pkt_len);
	gate_input(W.g, &p, b, (size_t)raw_pkt_len, now_us());
}

TEST(raw_flood_leaves_room_for_clients)
{
	world_init(NULL);
	gate_release(W.g, now_us());
	W.gc.max_sessions = 100;
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	make_raw_pkt(0x11223344);
	REQUIRE(raw_pkt_len > 0);
	/* 10,000 spoofed datagrams, each from another address and port */
	for (uint32_t i = 0; i < 10000; i++)
		raw_from(0x0a000000u + i, (uint16_t)(2000 + i % 50000));
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK(st.raw_sessions <= 26);     /* a quarter of max_sessions, + 1 */
	CHECK(st.raw_sessions >= 25);
	CHECK_EQ(st.raw_refused, 10000 - st.raw_sessions);
	CHECK(strcmp(W.limited_why, "gate.max_raw_sessions") == 0);
	/* a real client still gets in */
	struct client *c = add_client(NULL, NULL, "x", 1);
	CHECK(RUN_UNTIL(c->opened, 2000));
	CHECK_EQ(c->closed, 0);
	world_free();
}

TEST(raw_sessions_per_source_are_capped)
{
	world_init(NULL);
	gate_release(W.g, now_us());
	W.gc.max_raw_per_addr = 8;
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	make_raw_pkt(0x55667788);
	for (uint16_t port = 2000; port < 3000; port++)
		raw_from(0x0a000001u, port);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.raw_sessions, 8);
	CHECK_EQ(st.raw_refused, 1000 - 8);
	CHECK(strcmp(W.limited_why, "gate.max_raw_per_addr") == 0);
	raw_from(0x0a000002u, 2000); /* another address is not held back */
	gate_stats(W.g, &st);
	CHECK_EQ(st.raw_sessions, 9);
	/* an IPv6 /64 is one source: one host holds all of it */
	for (int i = 0; i < 100; i++) {
		struct gate_path p;
		memset(&p, 0, sizeof p);
		p.transport = GATE_UDP;
		p.raw = 1;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p.addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(5000);
		inet_pton(AF_INET6, "2001:db8:1:2::", &in6->sin6_addr);
		in6->sin6_addr.s6_addr[8] = (uint8_t)i;   /* the host part */
		in6->sin6_addr.s6_addr[15] = (uint8_t)(i * 7);
		p.addrlen = sizeof *in6;
		uint8_t b[256];
		memcpy(b, raw_pkt, (size_t)raw_pkt_len);
		gate_input(W.g, &p, b, (size_t)raw_pkt_len, now_us());
	}
	gate_stats(W.g, &st);
	CHECK_EQ(st.raw_sessions, 9 + 8);
	/* the count is given back when sessions end (the timeout) */
	run_ms((uint32_t)W.gc.session.timeout_ms + 2000);
	gate_stats(W.g, &st);
	CHECK_EQ(st.raw_sessions, 0);
	raw_from(0x0a000001u, 4000);
	gate_stats(W.g, &st);
	CHECK_EQ(st.raw_sessions, 1);
	world_free();
}

TEST(half_open_sessions_are_bounded)
{
	world_init(NULL);
	gate_release(W.g, now_us());
	W.gc.max_half_open = 3;
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	/* HELLOs on TCP connections (TCP proved the address: each makes a
	 * session at once) that never confirm the WELCOME */
	uint8_t pkt[128];
	struct wire_hello h;
	memset(&h, 0, sizeof h);
	h.type = WIRE_HELLO;
	h.version = WIRE_V1; /* unpinned (allowed by default): no sealed hello to make */
	for (int i = 0; i < 5; i++) {
		struct gate_path p;
		memset(&p, 0, sizeof p);
		p.transport = GATE_TCP;
		p.conn = 900 + (uint32_t)i;
		for (int j = 0; j < WIRE_PUB; j++) /* not a low-order point */
			h.pub[j] = (uint8_t)(i * 31 + j * 7 + 9);
		int n = wire_hello_encode(pkt, sizeof pkt, &h);
		REQUIRE(n > 0);
		gate_input(W.g, &p, pkt, (size_t)n, now_us());
	}
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.sessions, 3);
	CHECK_EQ(st.half_open, 3);
	CHECK_EQ(st.half_open_refused, 2);
	CHECK(strcmp(W.limited_why, "gate.max_half_open") == 0);
	/* a client is refused with a reason it can show */
	struct client *c = add_client(NULL, NULL, "x", 1);
	CHECK(RUN_UNTIL(c->closed, 2000));
	CHECK_EQ(c->close_code, SESSION_CLOSE_REFUSED);
	CHECK(strstr(c->close_reason, "server busy") != NULL);
	/* once the half-open ones time out, the next client gets in and,
	 * confirmed, is no longer half-open */
	run_ms((uint32_t)W.gc.session.timeout_ms + 2000);
	gate_stats(W.g, &st);
	CHECK_EQ(st.half_open, 0);
	struct client *d = add_client(NULL, NULL, "y", 2);
	CHECK(RUN_UNTIL(d->opened && W.srv_open, 2000));
	gate_stats(W.g, &st);
	CHECK_EQ(st.half_open, 0);
	CHECK_EQ(st.sessions, 1);
	world_free();
}

TEST(queued_bytes_budget_closes_the_biggest)
{
	world_init(NULL);
	gate_release(W.g, now_us());
	W.gc.queued_bytes_max = 300000;
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	struct client *a = add_client(NULL, NULL, "a", 1);
	struct client *b = add_client(NULL, NULL, "b", 2);
	CHECK(RUN_UNTIL(a->opened && b->opened && W.srv_open == 2, 2000));
	session_t *sa = gate_session(W.g, session_id(a->s));
	session_t *sb = gate_session(W.g, session_id(b->s));
	REQUIRE(sa && sb);
	a->mute_up = b->mute_up = 1; /* neither reads: no acks */
	uint8_t m[1000] = { 0 };
	for (int i = 0; i < 100; i++) {
		CHECK_EQ(session_send(sa, m, sizeof m, now_us()), 0);
		gate_touch(W.g, sa, now_us());
	}
	int i, rc = 0;
	for (i = 0; i < 400 && session_state(sb) == SESSION_OPEN; i++) {
		rc = session_send(sb, m, sizeof m, now_us());
		gate_touch(W.g, sb, now_us());
	}
	/* closed as soon as the total passed 300000: b held the most */
	CHECK_EQ(rc, 0);
	CHECK(i >= 199 && i <= 202);
	CHECK(session_state(sb) != SESSION_OPEN);
	CHECK_EQ(session_state(sa), SESSION_OPEN);
	CHECK(session_memsize(sb) < 2048); /* its queue is freed at once */
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.budget_closed, 1);
	CHECK(st.queued_bytes <= 300000);
	CHECK(strcmp(W.limited_why, "gate.queued_bytes_max") == 0);
	/* b is told why */
	CHECK(RUN_UNTIL(b->closed, 3000));
	CHECK_EQ(b->close_code, SESSION_CLOSE_BACKPRESSURE);
	CHECK(strcmp(b->close_reason, "server memory budget") == 0);
	CHECK_EQ(a->closed, 0);
	world_free();
}

/* ---- paths, resume ----------------------------------------------------- */

/* Keep n counters going each way (the gate echoes), at most 32 unanswered;
 * every ms, hook(W.t) may break or mend the world. Runs until every echo
 * came back or max_ms passed. */
static void
pump_counters(struct client *c, uint32_t *sent, uint32_t n, uint32_t max_ms,
              void (*hook)(struct client *c, uint32_t t0))
{
	uint32_t t0 = W.t;
	for (uint32_t i = 0; i < max_ms && c->rel.n < n; i++) {
		if (session_state(c->s) != SESSION_OPEN)
			break;
		while (*sent < n && *sent - c->rel.n < 32)
			send_counter(c, (*sent)++, 100);
		if (hook)
			hook(c, t0);
		step();
	}
}

static session_t *
server_of(struct client *c)
{
	return gate_session(W.g, session_id(c->s));
}

TEST(address_change_is_proven_then_followed)
{
	world_init(NULL);
	struct simnet_conf nc = { .delay_min = 5, .delay_max = 5 };
	struct client *c = add_client(&nc, NULL, "x", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	uint32_t sent = 0;
	pump_counters(c, &sent, 200, 5000, NULL);
	REQUIRE_EQ(c->rel.n, 200);
	uint32_t before = session_path(server_of(c));
	/* NAT rebinding: the same client, a new source port */
	c->port = 3001;
	pump_counters(c, &sent, 400, 5000, NULL);
	CHECK_EQ(c->rel.n, 400);
	CHECK_EQ(W.srv_rel.n, 400);
	CHECK_EQ(W.srv_rel.errors + c->rel.errors, 0);
	CHECK_EQ(W.srv_path, 1);
	CHECK(session_path(server_of(c)) != before);
	CHECK_EQ(session_path(server_of(c)), W.srv_last_path);
	/* until the new address answered the challenge, it was sent no more
	 * than it sent (a challenge at least) */
	CHECK(W.to_at_path[1] > 0);
	CHECK(W.to_at_path[1] <= W.from_at_path[1]);
	struct session_stats st;
	session_stats(server_of(c), &st);
	CHECK(st.path_challenges >= 1);
	CHECK_EQ(st.path_changes, 1);
	world_free();
}

TEST(spoofed_packets_from_a_third_address_change_nothing)
{
	world_init(NULL);
	struct simnet_conf nc = { .delay_min = 5, .delay_max = 5 };
	struct client *c = add_client(&nc, NULL, "x", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	uint32_t sent = 0;
	pump_counters(c, &sent, 50, 5000, NULL);
	REQUIRE_EQ(c->rel.n, 50);
	session_t *srv = server_of(c);
	uint32_t path = session_path(srv);
	struct gate_path evil;
	port_addr(3002, &evil);
	uint8_t pkt[PKT];
	struct gate_stats st0, st;
	gate_stats(W.g, &st0);

	/* (a) the client's packet delivered first from the attacker's address:
	 * it authenticates, so it counts, once; the attacker gets a challenge
	 * no bigger than the packet, cannot answer it, and the session stays */
	c->mute_up = 1;
	W.ncap = 0;
	send_counter(c, sent++, 100);
	run_ms(20);
	int k = -1;
	for (int i = 0; i < W.ncap; i++)
		if (W.cap_type[i] == WIRE_KCP)
			k = i;
	REQUIRE(k >= 0);
	memcpy(pkt, W.cap_pkt[k], W.cap_len[k]);
	W.from_port[2] += W.cap_len[k];
	gate_input(W.g, &evil, pkt, W.cap_len[k], now_us());
	CHECK_EQ(W.srv_msgs, 51);
	CHECK(W.to_port[2] > 0);
	CHECK(W.to_port[2] <= W.cap_len[k]);
	c->mute_up = 0;
	/* (b) the same packet again from there: a replay, nothing answers */
	uint64_t to_evil = W.to_port[2];
	memcpy(pkt, W.cap_pkt[k], W.cap_len[k]);
	gate_input(W.g, &evil, pkt, W.cap_len[k], now_us());
	/* (c) forged: a fresh pn and a flipped bit */
	for (size_t b = 9; b < W.cap_len[k]; b += 5) {
		memcpy(pkt, W.cap_pkt[k], W.cap_len[k]);
		pkt[8] ^= 0x10;
		pkt[b] ^= 1;
		gate_input(W.g, &evil, pkt, W.cap_len[k], now_us());
	}
	CHECK_EQ(W.to_port[2], to_evil);
	gate_stats(W.g, &st);
	CHECK_EQ(st.replays - st0.replays, 1);
	CHECK(st.auth_failures - st0.auth_failures >= 10);
	/* the session never moved and works on */
	pump_counters(c, &sent, 100, 5000, NULL);
	CHECK_EQ(c->rel.n, 100);
	CHECK_EQ(W.srv_rel.n, 100);
	CHECK_EQ(W.srv_rel.errors + c->rel.errors, 0);
	CHECK_EQ(session_path(srv), path);
	CHECK_EQ(W.srv_path, 0);
	CHECK_EQ(W.to_port[2], to_evil);
	world_free();
}

/* Only the newest packet challenges an unproven address (PROTOCOL.md, "A
 * new UDP address is proven first"): an older one from there (a late
 * copy) is delivered but sends that address nothing and moves nothing. */
TEST(only_the_newest_packet_challenges_a_new_address)
{
	world_init(NULL);
	W.echo = 0;
	struct simnet_conf nc = { .delay_min = 5, .delay_max = 5 };
	struct client *c = add_client(&nc, NULL, "x", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	uint32_t sent = 0;
	send_counter(c, sent++, 100);
	REQUIRE(RUN_UNTIL(W.srv_msgs == 1, 1000));
	session_t *srv = server_of(c);
	uint32_t path = session_path(srv);
	struct session_stats st0, st;
	session_stats(srv, &st0);
	/* two packets, held back */
	c->mute_up = 1;
	W.ncap = 0;
	send_counter(c, sent++, 100);
	run_ms(2);
	send_counter(c, sent++, 100);
	run_ms(2);
	int k[2], nk = 0;
	for (int i = 0; i < W.ncap && nk < 2; i++)
		if (W.cap_type[i] == WIRE_KCP)
			k[nk++] = i;
	REQUIRE_EQ(nk, 2);
	uint8_t pkt[PKT];
	struct gate_path from, late;
	addr_of(0, &from);
	port_addr(3003, &late);
	/* the newer from the client's address, then the older from elsewhere */
	memcpy(pkt, W.cap_pkt[k[1]], W.cap_len[k[1]]);
	gate_input(W.g, &from, pkt, W.cap_len[k[1]], now_us());
	memcpy(pkt, W.cap_pkt[k[0]], W.cap_len[k[0]]);
	gate_input(W.g, &late, pkt, W.cap_len[k[0]], now_us());
	CHECK_EQ(W.to_port[3], 0);
	session_stats(srv, &st);
	CHECK_EQ(st.path_challenges, st0.path_challenges);
	CHECK_EQ(session_path(srv), path);
	c->mute_up = 0;
	CHECK(RUN_UNTIL(W.srv_msgs == 3, 1000)); /* both delivered, in order */
	CHECK_EQ(W.srv_rel.errors, 0);
	CHECK_EQ(W.to_port[3], 0);
	CHECK_EQ(W.srv_path, 0);
	world_free();
}

/* The test plays client.c's part: offline, knock every second from a new
 * port (a new socket) until something answers. */
static uint32_t next_knock;
static uint32_t outage_from, outage_ms;

static void
outage(struct client *c, uint32_t t0)
{
	uint32_t t = W.t - t0;
	c->cut = t >= outage_from && t < outage_from + outage_ms;
	if (session_offline(c->s) && W.t >= next_knock) {
		next_knock = W.t + 1000;
		c->port = (uint16_t)(c->port + 1);
		session_ping(c->s, client_now(c));
	}
}

static void
outage_resume(int fec)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.timeout_ms = 2000;
	sc.resume_grace_ms = 10000;
	sc.fec_data = fec ? 8 : 0;
	sc.fec_parity = fec ? 2 : 0;
	world_init(&sc);
	struct simnet_conf nc = { .loss = 0.2, .delay_min = 10, .delay_max = 30,
	                          .reorder = 0.05, .dup = 0.02 };
	struct client *c = add_client(&nc, NULL, "x", 7);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 5000));
	uint32_t sent = 0;
	next_knock = 0;
	outage_from = 3000;
	outage_ms = 5000;
	pump_counters(c, &sent, 3000, 120000, outage);
	CHECK_EQ(c->rel.n, 3000);
	CHECK_EQ(W.srv_rel.n, 3000);
	CHECK_EQ(W.srv_rel.errors + c->rel.errors, 0);
	CHECK_EQ(c->offline, 1);
	CHECK_EQ(c->resumed, 1);
	CHECK_EQ(W.srv_offline, 1);
	CHECK_EQ(W.srv_resume, 1);
	CHECK_EQ(W.srv_close + c->closed, 0);
	CHECK(W.srv_path >= 1); /* it came back from another port */
	if (tu_verbose)
		printf("resumed: server paths %d, t %u ms\n", W.srv_path, W.t);
	world_free();
}

TEST(outage_goes_offline_and_resumes_with_nothing_lost)
{
	outage_resume(0);
}

/* The same with FEC: the knocks come from unproven addresses (taken alone,
 * never into a group), and FEC follows the session to the new one. */
TEST(fec_outage_goes_offline_and_resumes_with_nothing_lost)
{
	outage_resume(1);
}

TEST(outage_past_the_grace_expires_both_sides)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.timeout_ms = 1000;
	sc.resume_grace_ms = 3000;
	world_init(&sc);
	struct client *c = add_client(NULL, NULL, "x", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	uint32_t sent = 0;
	pump_counters(c, &sent, 10, 1000, NULL);
	c->cut = 1;
	send_counter(c, sent++, 100); /* unacked when it goes */
	uint32_t t0 = W.t;
	CHECK(RUN_UNTIL(c->closed && W.srv_close, 10000));
	CHECK(W.t - t0 >= 4000 - 50); /* timeout + grace */
	CHECK_EQ(c->offline, 1);
	CHECK_EQ(W.srv_offline, 1);
	CHECK_EQ(c->close_code, SESSION_CLOSE_EXPIRED);
	CHECK(strcmp(c->close_reason, "expired") == 0);
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_EXPIRED);
	CHECK(strcmp(W.srv_close_reason, "expired") == 0);
	world_free();
}

/* Offline, the client knocks every 300 ms from a new port until cond or
 * the deadline (virtual ms), as client.c does; returns cond. */
#define KNOCK_UNTIL(c, cond, ms) ({ \
	uint32_t ku_i_ = 0, ku_next_ = 0; \
	while (!(cond) && ku_i_++ < (ms)) { \
		if (session_offline((c)->s) && W.t >= ku_next_) { \
			ku_next_ = W.t + 300; \
			(c)->port = (uint16_t)((c)->port + 1); \
			session_ping((c)->s, client_now(c)); \
		} \
		step(); \
	} \
	(cond); })

/* Both sides offline: the client is cut off (timeout 1 s, grace 10 s). */
static struct client *
offline_pair(struct session_config *sc)
{
	session_config_default(sc);
	sc->timeout_ms = 1000;
	sc->resume_grace_ms = 10000;
	world_init(sc);
	W.echo = 0;
	struct simnet_conf nc = { .delay_min = 10, .delay_max = 10 };
	struct client *c = add_client(&nc, NULL, "x", 1);
	if (!RUN_UNTIL(c->opened && W.srv_open, 1000))
		return NULL;
	c->cut = 1;
	if (!RUN_UNTIL(W.srv_offline && c->offline, 3000))
		return NULL;
	return c;
}

static void
server_sends(session_t *srv, uint32_t from, uint32_t n, size_t len)
{
	uint8_t m[2048];
	for (uint32_t v = from; v < from + n; v++) {
		memcpy(m, &v, 4);
		for (size_t i = 4; i < len; i++)
			m[i] = (uint8_t)(v + i);
		CHECK_EQ(session_send(srv, m, len, now_us()), 0);
	}
	gate_touch(W.g, srv, now_us());
}

/* The service closes an offline session: the close waits for the client;
 * the client, once back, gets what was queued and then the code and
 * reason, and the server reports them too. */
TEST(close_while_offline_reaches_the_client_when_it_resumes)
{
	struct session_config sc;
	struct client *c = offline_pair(&sc);
	REQUIRE(c != NULL);
	session_t *srv = server_of(c);
	REQUIRE(srv != NULL);
	server_sends(srv, 0, 20, 300);
	session_close(srv, SESSION_CLOSE_APP + 2, "kicked", 1, now_us());
	gate_touch(W.g, srv, now_us());
	CHECK_EQ(session_send(srv, "x", 1, now_us()), SESSION_ECLOSED);
	run_ms(2000);
	CHECK_EQ(W.srv_close, 0); /* still waiting for the client */
	CHECK(session_offline(srv));
	c->cut = 0;
	CHECK(KNOCK_UNTIL(c, c->closed && W.srv_close, 5000));
	CHECK_EQ(c->rel.n, 20);
	CHECK_EQ(c->rel.errors, 0);
	CHECK_EQ(c->close_code, SESSION_CLOSE_APP + 2);
	CHECK(strcmp(c->close_reason, "kicked") == 0);
	CHECK_EQ(c->close_remote, 1);
	CHECK_EQ(W.srv_close, 1);
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_APP + 2);
	CHECK(strcmp(W.srv_close_reason, "kicked") == 0);
	CHECK_EQ(W.srv_close_remote, 0);
	world_free();
}

/* No resume: at the grace's end the session ends with the service's code
 * (the client, on its own, with "expired"). */
TEST(close_while_offline_ends_at_the_grace_with_its_code)
{
	struct session_config sc;
	struct client *c = offline_pair(&sc);
	REQUIRE(c != NULL);
	session_t *srv = server_of(c);
	REQUIRE(srv != NULL);
	uint32_t t0 = W.t;
	uint64_t deadline = session_check(srv, now_us());
	session_close(srv, SESSION_CLOSE_APP + 3, "away too long", 1, now_us());
	gate_touch(W.g, srv, now_us());
	CHECK_EQ(W.srv_close, 0);
	CHECK(RUN_UNTIL(W.srv_close, 15000));
	CHECK(now_us() >= deadline); /* not before the grace ended */
	CHECK(W.t - t0 >= 8000);
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_APP + 3);
	CHECK(strcmp(W.srv_close_reason, "away too long") == 0);
	CHECK(RUN_UNTIL(c->closed, 5000));
	CHECK_EQ(c->close_code, SESSION_CLOSE_EXPIRED);
	world_free();
}

/* The client closes while offline: its CLOSE knocks (the close timer,
 * and every knock from a new port) until the server, offline too, takes
 * it: the server reports the client's code and reason, and the client
 * ends on the CLOSE_ACK. */
TEST(client_close_while_offline_reaches_the_server)
{
	struct session_config sc;
	struct client *c = offline_pair(&sc);
	REQUIRE(c != NULL);
	session_close(c->s, SESSION_CLOSE_APP + 5, "quit", 1, client_now(c));
	CHECK_EQ(c->closed, 0); /* knocking with the CLOSE */
	CHECK_EQ(session_state(c->s), SESSION_CLOSING);
	run_ms(100); /* the first CLOSE is lost */
	c->cut = 0;
	CHECK(KNOCK_UNTIL(c, c->closed && W.srv_close, 2000));
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_APP + 5);
	CHECK(strcmp(W.srv_close_reason, "quit") == 0);
	CHECK_EQ(W.srv_close_remote, 1);
	CHECK_EQ(W.srv_resume, 0); /* not resumed just to be closed */
	CHECK_EQ(c->close_code, SESSION_CLOSE_APP + 5);
	CHECK_EQ(c->close_remote, 0);
	world_free();
}

/* ... and gives up after close_retries CLOSEs when nothing answers. */
TEST(client_close_while_offline_is_bounded)
{
	struct session_config sc;
	struct client *c = offline_pair(&sc);
	REQUIRE(c != NULL);
	uint32_t t0 = W.t;
	session_close(c->s, SESSION_CLOSE_APP + 5, "quit", 1, client_now(c));
	CHECK(KNOCK_UNTIL(c, c->closed, 5000));
	CHECK(W.t - t0 < 2000);
	CHECK_EQ(c->close_code, SESSION_CLOSE_APP + 5);
	CHECK_EQ(c->close_remote, 0);
	CHECK(RUN_UNTIL(W.srv_close, 15000)); /* it never heard: expired */
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_EXPIRED);
	world_free();
}

/* Shutdown does not wait for offline clients: their sessions end at once. */
TEST(shutdown_ends_offline_sessions_at_once)
{
	struct session_config sc;
	struct client *c = offline_pair(&sc);
	REQUIRE(c != NULL);
	gate_close_all(W.g, SESSION_CLOSE_SHUTDOWN, "server shutdown", now_us());
	CHECK_EQ(W.srv_close, 1);
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_SHUTDOWN);
	world_free();
}

/* Sends pile up on an offline session past the watermark: it closes with
 * "backpressure", the client is told once it is back. */
TEST(backpressure_while_offline_reaches_the_client)
{
	struct session_config sc;
	session_config_default(&sc);
	struct client *c = offline_pair(&sc);
	REQUIRE(c != NULL);
	session_t *srv = server_of(c);
	REQUIRE(srv != NULL);
	uint8_t m[1000] = { 0 };
	int rc = 0;
	for (int i = 0; i < 10000 && rc == 0; i++)
		rc = session_send(srv, m, sizeof m, now_us());
	gate_touch(W.g, srv, now_us());
	CHECK_EQ(rc, SESSION_EFULL);
	CHECK_EQ(session_queued(srv), 0); /* the queue is freed at once */
	run_ms(1000);
	CHECK_EQ(W.srv_close, 0);
	c->cut = 0;
	CHECK(KNOCK_UNTIL(c, c->closed && W.srv_close, 5000));
	CHECK_EQ(c->close_code, SESSION_CLOSE_BACKPRESSURE);
	CHECK(strcmp(c->close_reason, "backpressure") == 0);
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_BACKPRESSURE);
	world_free();
}

/* UDP blocked both ways: the client moves to "TCP", then probes UDP and
 * moves back when it answers. */
static void
udp_blocked(struct client *c, uint32_t t0)
{
	uint32_t t = W.t - t0;
	int blocked = t >= 500 && t < 3000;
	c->mute_up = c->mute_down = blocked;
	uint64_t now = client_now(c);
	if (t == 1000) { /* the client noticed: over to TCP */
		session_path_use(c->s, 2, now);
		session_ping(c->s, now);
	}
	if (t >= 1000 && t % 500 == 0 && session_path(c->s) == 2)
		session_probe(c->s, 1, now);
	if (c->probes && session_path(c->s) == 2) {
		session_path_use(c->s, 1, now);
		session_ping(c->s, now);
	}
}

static void
udp_to_tcp_and_back(int fec)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.fec_data = fec ? 8 : 0;
	sc.fec_parity = fec ? 2 : 0;
	world_init(&sc);
	struct simnet_conf nc = { .loss = 0.05, .delay_min = 5, .delay_max = 15 };
	struct client *c = add_client(&nc, NULL, "x", 3);
	struct simnet_conf tc = { .delay_min = 20, .delay_max = 20, .in_order = 1 };
	c->tnet = simnet_create(&tc, 4);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 2000));
	uint32_t sent = 0;
	pump_counters(c, &sent, 3000, 60000, udp_blocked);
	CHECK_EQ(c->rel.n, 3000);
	CHECK_EQ(W.srv_rel.n, 3000);
	CHECK_EQ(W.srv_rel.errors + c->rel.errors, 0);
	CHECK(c->probes >= 1);
	CHECK_EQ(c->probe_path, 1);
	CHECK_EQ(W.srv_path, 2); /* to TCP, and back */
	CHECK_EQ(session_path(c->s), 1);
	CHECK_EQ(W.srv_last_path & SESSION_PATH_PROVEN, 0);
	CHECK_EQ(W.srv_offline, 0);
	world_free();
}

TEST(udp_to_tcp_and_back_loses_nothing)
{
	udp_to_tcp_and_back(0);
}

/* With FEC: the probes on UDP leave plain, FEC comes back with the session. */
TEST(fec_udp_to_tcp_and_back_loses_nothing)
{
	udp_to_tcp_and_back(1);
}

TEST(tcp_lost_moves_to_udp_then_goes_offline)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.resume_grace_ms = 5000;
	world_init(&sc);
	struct client *c = add_client(NULL, NULL, "x", 1);
	struct simnet_conf tc = { .delay_min = 5, .delay_max = 5, .in_order = 1 };
	c->tnet = simnet_create(&tc, 4);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	session_path_use(c->s, 2, client_now(c));
	session_ping(c->s, client_now(c));
	REQUIRE(RUN_UNTIL(W.srv_path == 1, 1000));
	run_ms(200);
	/* the connection breaks, and the client falls silent */
	c->cut = 1;
	gate_conn_lost(W.g, 500, "connection reset", now_us());
	/* UDP was heard 200 ms ago, within timeout_ms: the session moves there */
	CHECK_EQ(W.srv_path, 2);
	CHECK_EQ(W.srv_offline, 0);
	/* nothing comes on UDP either: offline, not closed */
	run_ms((uint32_t)sc.timeout_ms + 100);
	CHECK_EQ(W.srv_offline, 1);
	CHECK_EQ(W.srv_close, 0);
	CHECK(session_offline(server_of(c)));
	world_free();
}

/* Resume off: the TCP connection the session sends on ends and no other
 * path was heard within timeout_ms: the session ends with code 7,
 * "disconnected", the transport's detail after a colon when there is one
 * (docs/PROTOCOL.md, "Close codes"). */
static void
tcp_lost_without_resume(const char *why, const char *want)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.timeout_ms = 1000;
	sc.resume_grace_ms = 0;
	world_init(&sc);
	struct client *c = add_client(NULL, &sc, "x", 1);
	struct simnet_conf tc = { .delay_min = 5, .delay_max = 5, .in_order = 1 };
	c->tnet = simnet_create(&tc, 4);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	session_path_use(c->s, 2, client_now(c));
	session_ping(c->s, client_now(c));
	REQUIRE(RUN_UNTIL(W.srv_path == 1, 1000));
	run_ms(1500); /* heartbeats on TCP only: UDP is past timeout_ms */
	REQUIRE_EQ(W.srv_close, 0);
	gate_conn_lost(W.g, 500, why, now_us());
	CHECK_EQ(W.srv_close, 1);
	CHECK_EQ(W.srv_close_code, SESSION_CLOSE_DISCONNECT);
	CHECK(strcmp(W.srv_close_reason, want) == 0);
	if (strcmp(W.srv_close_reason, want))
		fprintf(stderr, "reason \"%s\", want \"%s\"\n", W.srv_close_reason,
		        want);
	world_free();
}

TEST(tcp_lost_without_resume_says_disconnected)
{
	tcp_lost_without_resume("eof", "disconnected");
	tcp_lost_without_resume("connection reset", "disconnected: connection reset");
}

/* Offline, the client knocks as client.c does: a new TCP connection and a
 * new UDP port each time, a PING on each (TCP first). The links are slow
 * (200 ms each way), so the client knocks again before the answer to the
 * first knock comes back, closing the first knock's connection. The
 * server resumed on that connection (its PING came first), while the
 * client's newest packet (the UDP PING) came from elsewhere: losing the
 * connection is losing a path the client left, not the client, and must
 * not send the session offline again. */
TEST(losing_a_knock_connection_after_resume_is_not_an_outage)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.timeout_ms = 1000;
	sc.resume_grace_ms = 10000;
	world_init(&sc);
	struct simnet_conf nc = { .delay_min = 250, .delay_max = 250 };
	struct client *c = add_client(&nc, NULL, "x", 1);
	struct simnet_conf tc = { .delay_min = 200, .delay_max = 200, .in_order = 1 };
	c->tnet = simnet_create(&tc, 4);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 2000));
	c->cut = 1;
	REQUIRE(RUN_UNTIL(W.srv_offline && c->offline, 5000));
	c->cut = 0;
	uint32_t conn = 600, fin_at = 0, lost_conn = 0;
	for (int knock = 0; knock < 2; knock++) {
		if (knock) { /* the first knock's connection closes: its FIN */
			lost_conn = conn;
			fin_at = W.t + 150;
		}
		simnet_free(c->tnet); /* a new connection: nothing old on it */
		c->tnet = simnet_create(&tc, 5 + (uint64_t)knock);
		c->conn = ++conn;
		session_path_use(c->s, 2, client_now(c));
		session_ping(c->s, client_now(c));
		c->port = (uint16_t)(c->port + 1);
		session_path_use(c->s, 1, client_now(c));
		session_ping(c->s, client_now(c));
		for (int i = 0; i < 300; i++) {
			if (fin_at && W.t == fin_at)
				gate_conn_lost(W.g, lost_conn, "eof", now_us());
			step();
		}
	}
	REQUIRE(RUN_UNTIL(c->resumed && !session_offline(server_of(c)), 5000));
	run_ms(3000);
	CHECK_EQ(W.srv_resume, 1);
	CHECK_EQ(W.srv_offline, 1); /* the outage, and nothing after */
	CHECK_EQ(W.srv_close + c->closed, 0);
	CHECK(!session_offline(server_of(c)));
	/* and the session works */
	uint32_t sent = 0;
	W.echo = 1;
	pump_counters(c, &sent, 50, 10000, NULL);
	CHECK_EQ(c->rel.n, 50);
	CHECK_EQ(c->rel.errors + W.srv_rel.errors, 0);
	world_free();
}

/* Echo round trips of 100-byte counters sent every 5 ms (a game's pace)
 * at this loss; returns the p99 in ms and fills the client's stats. */
static uint32_t
fec_run(double loss, int fec, uint64_t seed, uint32_t n,
        struct session_stats *cst, struct session_stats *sst)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.fec_data = fec ? 8 : 0;
	sc.fec_parity = fec ? 2 : 0;
	world_init(&sc);
	struct simnet_conf nc = { .loss = loss, .delay_min = 20, .delay_max = 20 };
	struct client *c = add_client(&nc, NULL, "x", seed);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 5000));
	static uint32_t sent_at[20000], rtt[20000];
	uint32_t sent = 0, got = 0;
	if (n > 20000)
		n = 20000;
	for (int i = 0; i < 600000 && c->rel.n < n; i++) {
		if (sent < n && W.t % 5 == 0) {
			sent_at[sent] = W.t;
			send_counter(c, sent++, 100);
		}
		step();
		while (got < c->rel.n) {
			rtt[got] = W.t - sent_at[got];
			got++;
		}
	}
	CHECK_EQ(c->rel.n, n);
	CHECK_EQ(W.srv_rel.n, n);
	CHECK_EQ(c->rel.errors + W.srv_rel.errors, 0);
	session_stats(c->s, cst);
	session_stats(server_of(c), sst);
	world_free();
	/* p99: sort a copy */
	for (uint32_t i = 1; i < n; i++) {
		uint32_t v = rtt[i], j = i;
		for (; j > 0 && rtt[j - 1] > v; j--)
			rtt[j] = rtt[j - 1];
		rtt[j] = v;
	}
	return rtt[n * 99 / 100];
}

TEST(fec_rebuilds_losses_exactly_once)
{
	struct session_stats c0, s0, c1, s1;
	uint32_t p99_off = fec_run(0.1, 0, 11, 4000, &c0, &s0);
	uint32_t p99_on = fec_run(0.1, 1, 11, 4000, &c1, &s1);
	/* losses rebuilt on both sides, nothing delivered twice (above) */
	CHECK(c1.fec_recovered > 0);
	CHECK(s1.fec_recovered > 0);
	CHECK(c1.fec_parity_out > 0 && s1.fec_parity_out > 0);
	CHECK_EQ(c0.fec_recovered + s0.fec_recovered, 0);
	if (tu_verbose)
		printf("10%% loss, 40 ms rtt, 4000 echoes every 5 ms: p99 %u ms "
		       "without FEC, %u ms with 8+2 (rebuilt %llu + %llu; client "
		       "bytes out %llu vs %llu)\n", p99_off, p99_on,
		       (unsigned long long)c1.fec_recovered,
		       (unsigned long long)s1.fec_recovered,
		       (unsigned long long)c0.out_bytes,
		       (unsigned long long)c1.out_bytes);
}

/* The attack of issue 14: on an FEC listener, someone who sees the
 * client's datagrams races a copy of each from its own address. Its
 * copies authenticate (they are the client's), so the address gets
 * challenged; the challenge must be answerable only there: no shard,
 * parity or group of the session's FEC may reach the client's path for
 * it, and nothing the attacker did not send may go to the attacker. */
TEST(fec_race_from_a_third_address_moves_nothing)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.fec_data = 8;
	sc.fec_parity = 2;
	world_init(&sc);
	struct simnet_conf nc = { .delay_min = 5, .delay_max = 5 };
	struct client *c = add_client(&nc, NULL, "x", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	session_t *srv = server_of(c);
	uint32_t path = session_path(srv);
	W.race_port = 3002;
	uint32_t sent = 0;
	pump_counters(c, &sent, 300, 10000, NULL);
	if (tu_verbose)
		printf("fec race: %u echoes back, attacker sent %llu bytes, got "
		       "%llu, server paths %d\n", c->rel.n,
		       (unsigned long long)W.from_port[2],
		       (unsigned long long)W.to_port[2], W.srv_path);
	CHECK_EQ(c->rel.n, 300);
	CHECK_EQ(W.srv_rel.n, 300);
	CHECK_EQ(W.srv_rel.errors + c->rel.errors, 0);
	CHECK_EQ(c->closed + W.srv_close, 0);
	CHECK_EQ(W.srv_path, 0);
	CHECK_EQ(session_path(srv), path);
	CHECK(W.from_port[2] > 0);
	CHECK(W.to_port[2] <= W.from_port[2]);
	struct session_stats st;
	session_stats(srv, &st);
	CHECK(st.path_challenges >= 1);
	CHECK(st.in_replay > 0); /* the client's own copies came second */
	world_free();
}

/* NAT rebinding on an FEC listener: the new address is proven with plain
 * probes, then FEC follows the session there, both ways, and keeps
 * rebuilding losses. */
TEST(fec_follows_an_address_change)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.fec_data = 8;
	sc.fec_parity = 2;
	world_init(&sc);
	struct simnet_conf nc = { .loss = 0.05, .delay_min = 5, .delay_max = 5 };
	struct client *c = add_client(&nc, NULL, "x", 5);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 2000));
	uint32_t sent = 0;
	pump_counters(c, &sent, 500, 20000, NULL);
	REQUIRE_EQ(c->rel.n, 500);
	session_t *srv = server_of(c);
	uint32_t before = session_path(srv);
	struct session_stats s0, c0, s1, c1;
	session_stats(srv, &s0);
	session_stats(c->s, &c0);
	c->port = 3001;
	pump_counters(c, &sent, 3000, 60000, NULL);
	CHECK_EQ(c->rel.n, 3000);
	CHECK_EQ(W.srv_rel.n, 3000);
	CHECK_EQ(W.srv_rel.errors + c->rel.errors, 0);
	CHECK_EQ(W.srv_path, 1);
	CHECK(session_path(srv) != before);
	CHECK(W.to_at_path[1] <= W.from_at_path[1]);
	session_stats(srv, &s1);
	session_stats(c->s, &c1);
	if (tu_verbose)
		printf("fec after the move: rebuilt %llu (server), %llu (client)\n",
		       (unsigned long long)(s1.fec_recovered - s0.fec_recovered),
		       (unsigned long long)(c1.fec_recovered - c0.fec_recovered));
	CHECK(s1.fec_recovered > s0.fec_recovered);
	CHECK(c1.fec_recovered > c0.fec_recovered);
	world_free();
}

/* The newest FEC frame the client sent whose shard is a data shard
 * carrying a KCP packet, or -1. */
static int
captured_fec_kcp(void)
{
	int k = -1;
	for (int i = 0; i < W.ncap; i++)
		if (W.cap_type[i] == WIRE_FEC && W.cap_len[i] > WIRE_FEC_HDR + FEC_DATA_HDR &&
		    W.cap_pkt[i][WIRE_FEC_HDR] == FEC_TYPE_DATA &&
		    W.cap_pkt[i][WIRE_FEC_HDR + FEC_DATA_HDR] == WIRE_KCP)
			k = i;
	return k;
}

/* A forged shard with the genuine one's group and index, sent first
 * (from the client's own address even), must not make the genuine one a
 * duplicate; the genuine one sent again is a replay. */
TEST(forged_fec_shard_cannot_drop_the_genuine)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.fec_data = 8;
	sc.fec_parity = 2;
	world_init(&sc);
	struct simnet_conf nc = { .delay_min = 5, .delay_max = 5 };
	struct client *c = add_client(&nc, NULL, "x", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	uint32_t sent = 0;
	pump_counters(c, &sent, 20, 5000, NULL);
	REQUIRE_EQ(c->rel.n, 20);
	c->mute_up = 1;
	W.ncap = 0;
	send_counter(c, sent++, 100);
	run_ms(1);
	int k = captured_fec_kcp();
	REQUIRE(k >= 0);
	size_t len = W.cap_len[k];
	uint8_t genuine[PKT], pkt[PKT];
	memcpy(genuine, W.cap_pkt[k], len);
	struct gate_path from;
	addr_of(0, &from);
	struct gate_stats st0, st;
	gate_stats(W.g, &st0);
	uint32_t msgs = W.srv_msgs;
	/* forged: the same frame header, group and index, another packet */
	memcpy(pkt, genuine, len);
	for (size_t b = WIRE_FEC_HDR + FEC_DATA_HDR + WIRE_HDR; b < len; b++)
		pkt[b] ^= 0x5a;
	gate_input(W.g, &from, pkt, len, now_us());
	CHECK_EQ(W.srv_msgs, msgs);
	/* the genuine one is delivered */
	memcpy(pkt, genuine, len);
	gate_input(W.g, &from, pkt, len, now_us());
	CHECK_EQ(W.srv_msgs, msgs + 1);
	/* and again: a replay, counted */
	memcpy(pkt, genuine, len);
	gate_input(W.g, &from, pkt, len, now_us());
	CHECK_EQ(W.srv_msgs, msgs + 1);
	gate_stats(W.g, &st);
	CHECK(st.auth_failures - st0.auth_failures >= 1);
	CHECK_EQ(st.replays - st0.replays, 1);
	c->mute_up = 0;
	pump_counters(c, &sent, 60, 5000, NULL);
	CHECK_EQ(c->rel.n, 60);
	CHECK_EQ(W.srv_rel.n, 60);
	CHECK_EQ(W.srv_rel.errors + c->rel.errors, 0);
	world_free();
}

TEST(idle_session_memory)
{
	world_init(NULL);
	struct client *c = add_client(NULL, NULL, "x", 1);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	session_t *srv = gate_session(W.g, session_id(c->s));
	REQUIRE(srv != NULL);
	size_t m = session_memsize(srv);
	if (tu_verbose)
		printf("idle server session: %zu bytes\n", m);
	CHECK(m < 2048);
	world_free();
}

/* A client that answers each echo: with ack_delay the ack rides on the
 * answer (one packet per round trip), without it the ack leaves alone (two).
 * An echo nobody answers is still acknowledged within one KCP interval. */
static uint32_t
round_trips(int ack_delay, uint32_t n, uint32_t *late_ack_ms)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.ack_delay = ack_delay;
	world_init(NULL);
	struct simnet_conf nc = { .delay_min = 5, .delay_max = 5 };
	struct client *c = add_client(&nc, &sc, "x", 4);
	CHECK(RUN_UNTIL(c->opened, 1000));
	run_ms(100);
	uint32_t before = c->kcp_out;
	send_counter(c, 0, 16);
	for (uint32_t i = 1; i < n; i++) {
		CHECK(RUN_UNTIL(c->rel.n == i, 1000));
		send_counter(c, i, 16); /* the game answers in the same frame */
	}
	uint32_t mark = c->kcp_out, guard = 0;
	while (c->rel.n < n && guard++ < 1000) {
		mark = c->kcp_out; /* what the client sent before the last echo */
		step();
	}
	CHECK_EQ(c->rel.n, n);
	uint32_t got = W.t - 1; /* the step in which the last echo arrived */
	CHECK(RUN_UNTIL(c->kcp_out > mark, 1000));
	*late_ack_ms = c->kcp_out_t - got;
	uint32_t pkts = c->kcp_out - before;
	CHECK_EQ(c->rel.errors, 0);
	world_free();
	return pkts;
}

TEST(delayed_ack_rides_on_the_answer)
{
	uint32_t late, n = 200;
	uint32_t eager = round_trips(0, n, &late);
	CHECK(late <= 1);
	uint32_t delayed = round_trips(1, n, &late);
	if (tu_verbose)
		printf("KCP packets for %u round trips: %u eager, %u delayed; "
		       "unanswered echo acked after %u ms\n", n, eager, delayed, late);
	CHECK(eager >= 2 * n);
	CHECK(delayed <= n + n / 8); /* an interval flush may catch an ack alone */
	CHECK(late <= 10 + 1);      /* at the next interval flush (10 ms) */
}

/* batch_flush (the server's default, core/server/config.c): the messages
 * of 8 client packets that arrive in one wakeup (one step: the gate is
 * updated once, after every packet was input) are answered in one packet,
 * their acks with them; without it, one packet each. The client sends
 * each message in its own packet (an update after each send), as a
 * client library with autoflush does. */
static uint32_t
answers_of_one_wakeup(int batch_flush)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.batch_flush = batch_flush;
	world_init(&sc);
	struct simnet_conf nc = { .delay_min = 2, .delay_max = 2 };
	struct client *c = add_client(&nc, NULL, "x", 3);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	run_ms(50);
	uint32_t out0 = c->kcp_out, in0 = c->kcp_in;
	for (uint32_t i = 0; i < 8; i++) {
		send_counter(c, i, 16);
		session_update(c->s, client_now(c));
	}
	CHECK_EQ(c->kcp_out - out0, 8);
	CHECK(RUN_UNTIL(c->rel.n == 8, 100));
	uint32_t answers = c->kcp_in - in0;
	CHECK_EQ(c->rel.errors, 0);
	world_free();
	return answers;
}

TEST(one_wakeup_is_answered_in_one_packet)
{
	uint32_t batched = answers_of_one_wakeup(1), each = answers_of_one_wakeup(0);
	if (tu_verbose)
		printf("8 packets in one wakeup answered in %u packets with "
		       "batch_flush, %u without\n", batched, each);
	CHECK_EQ(batched, 1);
	CHECK_EQ(each, 8);
}

/* A lost message costs one RTO, and the RTO follows a 2 ms RTT down to
 * kcp.minrto (5 ms) instead of KCP's classic 30 ms floor (minrto 0). The
 * client's first send of message 50 is lost; the echo comes back one RTO
 * (plus a round trip) later. */
static uint32_t
loss_cost_ms(int minrto)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.minrto = minrto;
	world_init(NULL);
	struct simnet_conf nc = { .delay_min = 1, .delay_max = 1 };
	struct client *c = add_client(&nc, &sc, "x", 1);
	CHECK(RUN_UNTIL(c->opened && W.srv_open, 1000));
	for (uint32_t i = 0; i < 50; i++) {
		send_counter(c, i, 16);
		CHECK(RUN_UNTIL(c->rel.n == i + 1, 1000));
		run_ms(3);
	}
	c->mute_up = 1;
	uint32_t t0 = W.t;
	send_counter(c, 50, 16);
	step();
	c->mute_up = 0;
	CHECK(RUN_UNTIL(c->rel.n == 51, 5000));
	uint32_t cost = W.t - t0;
	CHECK_EQ(c->rel.errors, 0);
	world_free();
	return cost;
}

TEST(loss_costs_a_short_rto)
{
	uint32_t fast = loss_cost_ms(5), classic = loss_cost_ms(0);
	if (tu_verbose)
		printf("a lost message echoed after %u ms (minrto 5), %u ms "
		       "(minrto 0: KCP's 30)\n", fast, classic);
	CHECK(fast >= 5 && fast <= 5 + 4); /* the RTO, then a round trip */
	CHECK(classic >= 30 && classic <= 30 + 4);
}

/* ---- acks that ride on frames and inputs ------------------------------ */

/* Frame sync, as the room service runs it: the server sends each client a
 * frame every 50 ms (a room ticking at 20 Hz), the client an input every
 * 50 ms, 20 ms after each frame leaves; 5 ms each way. The server's and
 * the client library's settings (batch_flush, the client's ack_delay 1)
 * with max_ack_delay 60 on both ends (ride) or 0 (the classic acks). */
struct fsync {
	struct client *c;
	session_t *srv;
	uint32_t frames, inputs; /* sent */
	int mute_frame, mute_input; /* the next one sent is lost */
};

static void
fsync_step(struct fsync *f)
{
	uint32_t ph = W.t % 50;
	if (ph == 0) {
		uint8_t m[32];
		uint32_t v = f->frames++;
		memcpy(m, &v, 4);
		for (size_t i = 4; i < sizeof m; i++)
			m[i] = (uint8_t)(v + i);
		CHECK_EQ(session_send(f->srv, m, sizeof m, now_us()), 0);
		gate_touch(W.g, f->srv, now_us());
		f->c->mute_down = f->mute_frame;
		f->mute_frame = 0;
	} else if (ph == 20) {
		send_counter(f->c, f->inputs++, 32);
		f->c->mute_up = f->mute_input;
		f->mute_input = 0;
	}
	step();
	f->c->mute_up = f->c->mute_down = 0;
}

static void
fsync_init(struct fsync *f, int ride, uint64_t seed)
{
	struct session_config ss, cs;
	session_config_default(&ss);
	ss.batch_flush = 1;
	ss.max_ack_delay = ride ? 60 : 0;
	session_config_default(&cs);
	cs.batch_flush = 1;
	cs.ack_delay = 1;
	cs.max_ack_delay = ride ? 60 : 0;
	world_init(&ss);
	W.echo = 0;
	struct simnet_conf nc = { .delay_min = 5, .delay_max = 5 };
	memset(f, 0, sizeof *f);
	f->c = add_client(&nc, &cs, "x", seed);
	CHECK(RUN_UNTIL(f->c->opened && W.srv_open, 1000));
	f->srv = gate_session(W.g, session_id(f->c->s));
	REQUIRE(f->srv != NULL);
	while (W.t % 50 != 1)
		step();
}

/* ms from now until the message counter *n passes n0, the streams going on */
static uint32_t
fsync_until(struct fsync *f, const uint32_t *n, uint32_t n0)
{
	uint32_t t0 = W.t, guard = 0;
	while (*n <= n0 && guard++ < 2000)
		fsync_step(f);
	CHECK(*n > n0);
	return W.t - t0;
}

struct fsync_res {
	double down, up;        /* KCP packets per second, server->client, back */
	uint32_t frame_loss_ms; /* a lost frame: from its send to its arrival */
	uint32_t input_loss_ms; /* a lost input: the same */
	int srv_rto, cli_rto;
};

static void
frame_sync(int ride, struct fsync_res *r)
{
	struct fsync f;
	fsync_init(&f, ride, 11);
	for (int i = 0; i < 2000; i++) /* 2 s: the pace and the RTO settle */
		fsync_step(&f);
	uint32_t in0 = f.c->kcp_in, out0 = f.c->kcp_out;
	for (int i = 0; i < 10000; i++)
		fsync_step(&f);
	r->down = (f.c->kcp_in - in0) / 10.0;
	r->up = (f.c->kcp_out - out0) / 10.0;
	CHECK(f.frames - f.c->rel.n <= 1); /* the last one may be on its way */
	CHECK(f.inputs - W.srv_rel.n <= 1);
	struct session_stats st;
	session_stats(f.srv, &st);
	r->srv_rto = kcp_rto(f.srv->kcp);
	r->cli_rto = kcp_rto(f.c->s->kcp);
	/* a lost input (nothing else is in flight at its send) */
	while (W.t % 50 != 20)
		fsync_step(&f);
	f.mute_input = 1;
	r->input_loss_ms = fsync_until(&f, &W.srv_rel.n, W.srv_rel.n);
	/* a lost frame */
	while (W.t % 50 != 0)
		fsync_step(&f);
	f.mute_frame = 1;
	r->frame_loss_ms = fsync_until(&f, &f.c->rel.n, f.c->rel.n);
	for (int i = 0; i < 500; i++)
		fsync_step(&f);
	CHECK_EQ(f.c->rel.errors, 0);
	CHECK_EQ(W.srv_rel.errors, 0);
	CHECK(f.frames - f.c->rel.n <= 1);
	CHECK(f.inputs - W.srv_rel.n <= 1);
	CHECK_EQ(f.c->closed, 0);
	if (tu_verbose)
		printf("frame sync, %s acks: %.1f packets/s down, %.1f up; RTO "
		       "%d ms server, %d client; a lost input arrives after %u "
		       "ms, a lost frame after %u\n", ride ? "riding" : "classic",
		       r->down, r->up, r->srv_rto, r->cli_rto, r->input_loss_ms,
		       r->frame_loss_ms);
	world_free();
}

TEST(frame_sync_acks_ride_on_frames_and_inputs)
{
	struct fsync_res classic, ride;
	frame_sync(0, &classic);
	frame_sync(1, &ride);
	CHECK(classic.down >= 39 && classic.up >= 35);
	CHECK(ride.down <= 20.5 && ride.up <= 20.5);
	/* a loss costs the wait for the ride on top: at most one period */
	CHECK(ride.input_loss_ms <= classic.input_loss_ms + 50);
	CHECK(ride.frame_loss_ms <= classic.frame_loss_ms + 50);
	/* and never more than a period and a half in all (10 ms RTT) */
	CHECK(ride.input_loss_ms <= 75 && ride.frame_loss_ms <= 75);
}

/* A server session whose client sends nothing back but acks (a frame
 * stream one way only) keeps the client's acks as they were: one
 * interval after the frame; the server's data alone does not make the
 * client wait longer. And session_set_max_ack_delay changes one session. */
TEST(acks_wait_only_for_data_that_comes)
{
	struct fsync f;
	fsync_init(&f, 1, 12);
	uint32_t out0 = f.c->kcp_out;
	for (int i = 0; i < 3000; i++) { /* frames only */
		if (W.t % 50 == 0) {
			uint8_t m[32] = { 0 };
			uint32_t v = f.frames++;
			memcpy(m, &v, 4);
			for (size_t j = 4; j < sizeof m; j++)
				m[j] = (uint8_t)(v + j);
			CHECK_EQ(session_send(f.srv, m, sizeof m, now_us()), 0);
			gate_touch(W.g, f.srv, now_us());
		}
		step();
	}
	uint32_t acks = f.c->kcp_out - out0;
	CHECK(acks >= 59 && acks <= 61); /* one bare ack per frame */
	/* the client's RTO for... the server's RTO: 10 ms RTT + 10 ms wait */
	int rto = kcp_rto(f.srv->kcp);
	CHECK(rto >= 20 && rto <= 25);
	CHECK_EQ(session_set_max_ack_delay(f.srv, -1), SESSION_EINVAL);
	CHECK_EQ(session_set_max_ack_delay(f.srv, 0), 0);
	CHECK_EQ(f.srv->cfg.max_ack_delay, 0);
	world_free();
}

/* ---- stateless reset -------------------------------------------------- */

/* kill -9: the gate vanishes without a word (nothing it sends leaves) and
 * a new one starts with the same secret, or another. */

static void
restart_gate(int same_secret)
{
	gate_dead = 1;
	gate_release(W.g, now_us());
	gate_dead = 0;
	if (!same_secret)
		W.gc.secret[0] ^= 0x5a;
	W.g = gate_create(&W.gc, &gate_cb, NULL);
}

/* The new process answers the client's next packet with the session's
 * RESET; the client believes it (the token came in its WELCOME) and
 * closes with code 10 at once: within one heartbeat, not timeout + grace. */
TEST(restart_resets_the_client_within_a_heartbeat)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.resume_grace_ms = 30000;
	world_init(&sc);
	struct client *c = add_client(NULL, NULL, "game v1", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	run_ms(500);
	send_counter(c, 0, 100);
	REQUIRE(RUN_UNTIL(c->rel.n == 1, 1000));
	restart_gate(1);
	uint32_t t0 = W.t;
	CHECK(RUN_UNTIL(c->closed, 30000));
	CHECK_EQ(c->close_code, SESSION_CLOSE_RESET);
	CHECK_EQ(c->close_remote, 1);
	CHECK(strstr(c->close_reason, "reset") != NULL);
	CHECK(W.t - t0 <= (uint32_t)sc.heartbeat_ms + 50);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK(st.resets >= 1);
	CHECK(st.unknown_session >= 1);
	CHECK_EQ(st.sessions, 0);
	world_free();
}

/* A new process with another secret makes another token: the client does
 * not believe its RESET (counted as an authentication failure) and ends
 * as it would have without resets. A RESET with a forged token, or for
 * another sid, changes nothing either. */
TEST(reset_only_with_the_token)
{
	world_init(NULL);
	struct client *c = add_client(NULL, NULL, "game v1", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	uint8_t tok[WIRE_RESET_TOKEN], pkt[64];
	memset(tok, 0xab, sizeof tok);
	int n = wire_reset_encode(pkt, sizeof pkt, session_id(c->s), tok);
	REQUIRE_EQ(n, WIRE_RESET_SIZE);
	CHECK_EQ(session_input(c->s, 1, pkt, (size_t)n, client_now(c)), SESSION_EAUTH);
	wire_reset_token(tok, W.gc.secret, session_id(c->s) + 1);
	n = wire_reset_encode(pkt, sizeof pkt, session_id(c->s) + 1, tok);
	CHECK(session_input(c->s, 1, pkt, (size_t)n, client_now(c)) < 0);
	/* the genuine token, one byte short */
	wire_reset_token(tok, W.gc.secret, session_id(c->s));
	n = wire_reset_encode(pkt, sizeof pkt, session_id(c->s), tok);
	CHECK(session_input(c->s, 1, pkt, (size_t)n - 1, client_now(c)) < 0);
	CHECK_EQ(session_state(c->s), SESSION_OPEN);

	restart_gate(0);
	run_ms(3000);
	CHECK(!c->closed || c->close_code != SESSION_CLOSE_RESET);
	struct session_stats cs;
	session_stats(c->s, &cs);
	CHECK(cs.in_auth_fail >= 2); /* the forged one, then the new server's */
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK(st.resets >= 1);
	CHECK(RUN_UNTIL(c->closed, 60000));
	CHECK(c->close_code != SESSION_CLOSE_RESET);
	/* with the genuine token it would have been believed */
	world_free();
}

/* A RESET is never larger than what it answers (so never for a packet of
 * 21 bytes or less: not even a RESET, which has none), and at most
 * resets_per_s leave a second: spoofed packets aim no stream anywhere. */
TEST(resets_are_smaller_and_bounded)
{
	world_init(NULL);
	gate_release(W.g, now_us());
	W.gc.resets_per_s = 3;
	W.g = gate_create(&W.gc, &gate_cb, NULL);
	struct gate_path from;
	port_addr(3001, &from);
	uint8_t pkt[64];
	memset(pkt, 0x33, sizeof pkt);
	pkt[0] = WIRE_PING;
	wire_put32(pkt + 1, 0x11223344);
	gate_input(W.g, &from, pkt, WIRE_RESET_SIZE, now_us()); /* too small */
	CHECK_EQ(W.to_port[1], 0);
	uint8_t tok[WIRE_RESET_TOKEN];
	wire_reset_token(tok, W.gc.secret, 0x11223344);
	int n = wire_reset_encode(pkt, sizeof pkt, 0x11223344, tok);
	gate_input(W.g, &from, pkt, (size_t)n, now_us()); /* a RESET: no answer */
	CHECK_EQ(W.to_port[1], 0);
	memset(pkt, 0x33, sizeof pkt);
	pkt[0] = WIRE_PING;
	for (int i = 0; i < 10; i++) {
		wire_put32(pkt + 1, 0x11223344u + (uint32_t)i);
		gate_input(W.g, &from, pkt, 40, now_us());
	}
	CHECK_EQ(W.to_port[1], 3 * WIRE_RESET_SIZE);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK_EQ(st.resets, 3);
	CHECK_EQ(st.resets_limited, 7);
	W.t += 1000; /* the next second */
	gate_input(W.g, &from, pkt, 40, now_us());
	CHECK_EQ(W.to_port[1], 4 * WIRE_RESET_SIZE);
	world_free();
}

/* The WELCOME tells the server's msg_max: the client refuses a larger
 * message itself (SESSION_ETOOBIG) instead of sending what the server
 * would close the session for (code 5). */
TEST(client_learns_the_servers_msg_max)
{
	struct session_config sc;
	session_config_default(&sc);
	sc.msg_max = 500;
	world_init(&sc);
	struct client *c = add_client(NULL, NULL, "game v1", 1);
	CHECK_EQ(session_msg_max(c->s), 0); /* not open yet */
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	CHECK_EQ(session_msg_max(c->s), 500);
	uint8_t m[600];
	memset(m, 7, sizeof m);
	CHECK_EQ(session_send(c->s, m, 501, client_now(c)), SESSION_ETOOBIG);
	send_counter(c, 0, 500);
	CHECK(RUN_UNTIL(c->rel.n == 1, 1000));
	CHECK_EQ(session_state(c->s), SESSION_OPEN);
	CHECK_EQ(W.srv_close, 0);
	world_free();
}

/* The server took the client's CLOSE and forgot the session, but its
 * CLOSE_ACK went astray: the RESET that answers the client's next CLOSE
 * ends the client with its own code, not "session reset". */
TEST(reset_after_our_close_ends_with_our_code)
{
	world_init(NULL);
	struct client *c = add_client(NULL, NULL, "game v1", 1);
	REQUIRE(RUN_UNTIL(c->opened && W.srv_open, 1000));
	c->mute_down = 1;
	session_close(c->s, 4100, "quit", 1, client_now(c));
	REQUIRE(RUN_UNTIL(W.srv_close, 2000));
	CHECK_EQ(W.srv_close_code, 4100);
	c->mute_down = 0;
	CHECK(RUN_UNTIL(c->closed, 5000));
	CHECK_EQ(c->close_code, 4100);
	CHECK(strcmp(c->close_reason, "quit") == 0);
	CHECK_EQ(c->close_remote, 0);
	struct gate_stats st;
	gate_stats(W.g, &st);
	CHECK(st.resets >= 1);
	world_free();
}

static const struct tu_test tests[] = {
	TU(handshake_opens_both_sides),
	TU(handshake_survives_loss_and_duplicates),
	TU(handshake_timeout_when_server_silent),
	TU(handshake_refused_with_reason),
	TU(handshake_replayed_init_makes_nothing_new),
	TU(pending_then_accept_opens_the_session),
	TU(pending_then_refuse_says_why),
	TU(pending_past_its_time_is_refused),
	TU(repeated_init_while_pending_asks_once),
	TU(pending_max_refuses_one_more),
	TU(release_with_pending_verdicts),
	TU(pinned_handshake_hides_the_hello),
	TU(pinned_client_refused_by_a_server_with_another_key),
	TU(pinned_client_cannot_open_a_welcome_without_the_key),
	TU(unpinned_client_refused_unless_allowed),
	TU(server_ephemeral_rotates),
	TU(hello_flood_allocates_nothing),
	TU(garbage_forged_and_replayed_are_dropped),
	TU(echo_exactly_once_in_order),
	TU(unreliable_newest_wins),
	TU(heartbeat_rtt_and_clock_offset),
	TU(heartbeat_stretches_while_traffic_flows),
	TU(heartbeat_not_stretched_when_off),
	TU(silent_client_times_out),
	TU(watermark_closes_with_backpressure),
	TU(close_delivers_pending_data_then_reason),
	TU(dead_link_closes),
	TU(largest_reliable_message),
	TU(raw_kcp_listener_echo),
	TU(raw_flood_leaves_room_for_clients),
	TU(raw_sessions_per_source_are_capped),
	TU(half_open_sessions_are_bounded),
	TU(queued_bytes_budget_closes_the_biggest),
	TU(address_change_is_proven_then_followed),
	TU(spoofed_packets_from_a_third_address_change_nothing),
	TU(only_the_newest_packet_challenges_a_new_address),
	TU(outage_goes_offline_and_resumes_with_nothing_lost),
	TU(fec_outage_goes_offline_and_resumes_with_nothing_lost),
	TU(outage_past_the_grace_expires_both_sides),
	TU(close_while_offline_reaches_the_client_when_it_resumes),
	TU(close_while_offline_ends_at_the_grace_with_its_code),
	TU(backpressure_while_offline_reaches_the_client),
	TU(shutdown_ends_offline_sessions_at_once),
	TU(client_close_while_offline_reaches_the_server),
	TU(client_close_while_offline_is_bounded),
	TU(udp_to_tcp_and_back_loses_nothing),
	TU(fec_udp_to_tcp_and_back_loses_nothing),
	TU(tcp_lost_moves_to_udp_then_goes_offline),
	TU(tcp_lost_without_resume_says_disconnected),
	TU(losing_a_knock_connection_after_resume_is_not_an_outage),
	TU(fec_rebuilds_losses_exactly_once),
	TU(fec_race_from_a_third_address_moves_nothing),
	TU(forged_fec_shard_cannot_drop_the_genuine),
	TU(fec_follows_an_address_change),
	TU(idle_session_memory),
	TU(delayed_ack_rides_on_the_answer),
	TU(loss_costs_a_short_rto),
	TU(frame_sync_acks_ride_on_frames_and_inputs),
	TU(acks_wait_only_for_data_that_comes),
	TU(cipher_is_negotiated),
	TU(one_wakeup_is_answered_in_one_packet),
	TU(restart_resets_the_client_within_a_heartbeat),
	TU(reset_only_with_the_token),
	TU(resets_are_smaller_and_bounded),
	TU(client_learns_the_servers_msg_max),
	TU(reset_after_our_close_ends_with_our_code),
};

int
main(int argc, char **argv)
{
	return tu_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
