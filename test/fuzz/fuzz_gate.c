/*
 * fuzz_gate.c - libFuzzer target: the gate (core/proto/gate.c) - its
 * stateless handshake, cookies, session table, raw KCP table and path
 * validation - fed untrusted datagrams and TCP frames from a few addresses
 * in virtual time, beside a real client session (core/proto/
 * session_client.c) that the harness wires to it as test/unit/
 * test_session.c does. The fuzz can deliver, hold back, copy, mutate and
 * race the client's real packets from other addresses, so it reaches open
 * sessions, resumes and path changes, not only the first byte checks.
 *
 * Keys and cookies come from a seeded generator (fuzz_rand.h) and a fixed
 * secret: an input always takes the same path. The X25519 results are
 * remembered across inputs (fuzz_memo.h): the same keys come back.
 *
 * Built two ways (see CMakeLists.txt): with clang -fsanitize=fuzzer,
 * address,undefined (MOONGATE_FUZZ), and with -DFUZZ_REPLAY_MAIN as a
 * plain program (ctest fuzz_gate_corpus) that replays test/fuzz/
 * corpus_gate. `fuzz_gate_replay --seeds DIR` writes that corpus.
 *
 * Input: byte 0 setup: bits 0-1 the client's listener: 0 plain UDP,
 *   1 authenticated-only (plain_listeners), 2 FEC 4+2, 3 as 0;
 *   bits 2-4 max_sessions 1 + v; bit 5: resume (resume_grace_ms 3000);
 *   bit 6: the policy refuses hellos starting with 'r'; bit 7: the client
 *   sends no hello. Then operations; an op byte's low 3 bits choose,
 *   a = op >> 3:
 *     0 DGRAM   u16 LE len, bytes, from path a & 7 (paths: 0 the client's
 *               address, 1-3 other UDP addresses on its listener, 4 one
 *               on another listener (another port), 5-6 TCP connections, 7 the raw KCP
 *               listener)
 *     1 PUMP    1 + (a & 3) rounds: the client's queued packets to the
 *               gate (from path 0, or from path a >> 2 & 7 when a & 16),
 *               the gate's answers to the client
 *     2 MUTATE  a copy of captured client packet (byte) with byte (byte)
 *               xor (byte), or cut to (byte) bytes when a & 16, from path
 *               a & 7
 *     3 TIME    the clock moves (a * a + 1) * 7 ms, then updates when due
 *     4 LOST    gate_conn_lost on TCP path 5 + (a & 1)
 *     5 APP     client: send, send_unreliable, close, probe, path_use;
 *               server: send + gate_touch, close_all (by a & 7)
 *     6 COPY    captured client packet (byte) as it is, from path a & 7
 *     7 SPOOF   a session packet with the real sid, pn and type from the
 *               input, an invalid tag, from path a & 7
 *
 * Checks (abort() on failure):
 *  - every reply goes to a known path, is not empty, and a UDP one fits
 *    the largest mtu;
 *  - an address that never proved itself (paths 1-4: their CHALLENGEs are
 *    never answered by a real client) is sent at most the bytes it sent
 *    (no amplification), and a CHALLENGE is never larger than the packet
 *    that asked for it (raw KCP, path 7, has no handshake: not checked);
 *  - the session count never passes max_sessions; stats stay consistent;
 *  - no event after a session's CLOSE; every session is released.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz_memo.h"
#include "fuzz_rand.h"
#include "gate.h"
#include "session.h"
#include "wire.h"

static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_gate: check failed: %s "      \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

#define NPATHS 8
#define QMAX 32
#define CAPS 32

struct pkt {
	uint8_t b[1500];
	size_t len;
};

static struct {
	gate_t *g;
	session_t *c;              /* the real client */
	int c_closed;
	uint64_t now;
	struct gate_path path[NPATHS];
	uint64_t in_bytes[NPATHS], out_bytes[NPATHS];
	int client_listener, max_sessions, refuse_r;
	/* client -> gate, and gate -> client (to path 0) */
	struct pkt cq[QMAX], gq[QMAX];
	int ncq, ngq;
	struct pkt cap[CAPS];      /* the client's packets, as sent */
	int ncap, capnext;
	/* the packet being input, for the challenge bound */
	int in_path;
	size_t in_len;
	int sessions_open;         /* OPEN events minus CLOSE events */
} G;

static uint8_t secret[WIRE_SECRET];
static int debug; /* FUZZ_DEBUG=1 in the environment: trace packets */

static int
path_index(const struct gate_path *p)
{
	for (int i = 0; i < NPATHS; i++) {
		const struct gate_path *q = &G.path[i];
		if (p->transport != q->transport || p->listener != q->listener)
			continue;
		if (p->transport == GATE_TCP ? p->conn == q->conn :
		    p->addrlen == q->addrlen &&
		    !memcmp(&p->addr, &q->addr, p->addrlen))
			return i;
	}
	return -1;
}

static void
g_output(const struct gate_path *to, const uint8_t *pkt, size_t len,
         void *user)
{
	(void)user;
	int i = path_index(to);
	CHECK(i >= 0 && len > 0);
	if (to->transport == GATE_UDP)
		CHECK(len <= 1500);
	CHECK(len <= 65535);
	G.out_bytes[i] += len;
	if (debug)
		fprintf(stderr, "out path %d type %#x len %zu (in %llu out %llu)\n",
		        i, pkt[0], len, (unsigned long long)G.in_bytes[i],
		        (unsigned long long)G.out_bytes[i]);
	if (!to->raw && pkt[0] == WIRE_CHALLENGE && i == G.in_path)
		CHECK(len <= G.in_len);
	if (i >= 1 && i <= 4)
		CHECK(G.out_bytes[i] <= G.in_bytes[i]);
	if (i == 0 && G.ngq < QMAX) {
		memcpy(G.gq[G.ngq].b, pkt, len);
		G.gq[G.ngq++].len = len;
	}
}

static void
g_accept(gate_t *g, const struct gate_path *from, const uint8_t *hello,
         size_t hello_len, struct gate_verdict *v, void *user)
{
	(void)g, (void)user;
	CHECK(path_index(from) >= 0);
	CHECK(hello_len <= WIRE_HELLO_MAX && (hello_len == 0 || hello));
	if (G.refuse_r && hello_len && hello[0] == 'r') {
		v->code = SESSION_CLOSE_APP + 7;
		snprintf(v->reason, sizeof v->reason, "refused by policy");
	}
}

static void
g_event(gate_t *g, session_t *s, const struct session_event *ev, void *user)
{
	(void)user;
	CHECK(session_state(s) != SESSION_CLOSED || ev->type == SESSION_EV_CLOSE);
	if (ev->type == SESSION_EV_OPEN) {
		size_t hl;
		const uint8_t *h = gate_session_hello(g, s, &hl);
		CHECK(h != NULL && hl <= WIRE_HELLO_MAX);
		G.sessions_open++;
	}
	if (ev->type == SESSION_EV_CLOSE)
		CHECK(ev->reason != NULL);
	/* (the session's user pointer is the gate's own) */
	if (ev->type == SESSION_EV_MESSAGE && ev->len)
		session_send(s, ev->data, ev->len, G.now); /* echo */
}

static void
g_close_conn(gate_t *g, uint32_t conn, int graceful, void *user)
{
	(void)g, (void)graceful, (void)user;
	CHECK(conn == G.path[5].conn || conn == G.path[6].conn);
}

static void
g_bind_conn(gate_t *g, uint32_t conn, void *user)
{
	(void)g, (void)user;
	CHECK(conn == G.path[5].conn || conn == G.path[6].conn);
}

static const struct gate_callbacks gate_cb = {
	g_output, g_accept, g_event, g_close_conn, g_bind_conn, NULL,
};

static void
c_output(session_t *s, uint32_t path, const uint8_t *pkt, size_t len,
         void *user)
{
	(void)s, (void)path, (void)user;
	CHECK(len > 0 && len <= 1500);
	if (G.ncq < QMAX) {
		memcpy(G.cq[G.ncq].b, pkt, len);
		G.cq[G.ncq++].len = len;
	}
	memcpy(G.cap[G.capnext].b, pkt, len);
	G.cap[G.capnext].len = len;
	G.capnext = (G.capnext + 1) % CAPS;
	if (G.ncap < CAPS)
		G.ncap++;
}

static void
c_event(session_t *s, const struct session_event *ev, void *user)
{
	(void)s, (void)user;
	CHECK(!G.c_closed);
	if (ev->type == SESSION_EV_CLOSE)
		G.c_closed = 1;
}

static const struct session_callbacks client_cb = { c_output, c_event };

static void
udp_path(struct gate_path *p, int listener, uint16_t port, int raw)
{
	memset(p, 0, sizeof *p);
	p->transport = GATE_UDP;
	p->listener = (uint8_t)listener;
	p->raw = (uint8_t)raw;
	struct sockaddr_in *in = (struct sockaddr_in *)&p->addr;
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	in->sin_addr.s_addr = htonl(0x7f000001);
	p->addrlen = sizeof *in;
}

static void
gate_in(int i, const uint8_t *p, size_t len)
{
	uint8_t buf[70000];
	if (len == 0 || len > sizeof buf)
		return;
	memcpy(buf, p, len);
	G.in_bytes[i] += len;
	if (debug)
		fprintf(stderr, "in  path %d type %#x len %zu\n", i, p[0], len);
	G.in_path = i;
	G.in_len = len;
	gate_input(G.g, &G.path[i], buf, len, G.now);
	G.in_path = -1;
	struct gate_stats st;
	gate_stats(G.g, &st);
	CHECK(st.sessions <= (uint64_t)G.max_sessions);
	CHECK(st.raw_sessions <= st.sessions);
	CHECK(st.opened >= st.closed || st.closed <= st.created);
}

struct in {
	const uint8_t *p;
	size_t n, i;
};

static unsigned
byte(struct in *in)
{
	return in->i < in->n ? in->p[in->i++] : 0;
}

static void
pump(int from)
{
	/* the client's packets to the gate */
	struct pkt q[QMAX];
	int n = G.ncq;
	memcpy(q, G.cq, sizeof q[0] * (size_t)n);
	G.ncq = 0;
	for (int k = 0; k < n; k++)
		gate_in(from, q[k].b, q[k].len);
	/* the gate's answers to the client */
	n = G.ngq;
	memcpy(q, G.gq, sizeof q[0] * (size_t)n);
	G.ngq = 0;
	for (int k = 0; k < n && !G.c_closed; k++) {
		int r = session_input(G.c, 1, q[k].b, q[k].len, G.now);
		CHECK(r <= 0);
	}
}

static void
app(unsigned a, struct in *in)
{
	static const uint8_t msg[2000] = { 'x' };
	size_t len = 1 + byte(in) * 7;
	uint32_t sid = G.c ? session_id(G.c) : 0;
	session_t *srv = sid ? gate_session(G.g, sid) : NULL;
	switch (a & 7) {
	case 0:
		if (!G.c_closed)
			session_send(G.c, msg, len, G.now);
		break;
	case 1:
		if (!G.c_closed)
			session_send_unreliable(G.c, msg, len % 1100, G.now);
		break;
	case 2:
		if (!G.c_closed)
			session_close(G.c, SESSION_CLOSE_APP, "bye", 1, G.now);
		break;
	case 3:
		if (!G.c_closed)
			session_ping(G.c, G.now);
		break;
	case 4:
		if (srv && session_state(srv) != SESSION_CLOSED) {
			session_send(srv, msg, len, G.now);
			gate_touch(G.g, srv, G.now);
		}
		break;
	case 5:
		if (srv && session_state(srv) != SESSION_CLOSED) {
			session_close(srv, SESSION_CLOSE_APP + 2, "kick", a >> 3 & 1,
			              G.now);
			gate_touch(G.g, srv, G.now);
		}
		break;
	case 6:
		gate_close_all(G.g, SESSION_CLOSE_SHUTDOWN, "all", G.now);
		break;
	default:
		if (!G.c_closed)
			session_rehello(G.c, G.now);
		break;
	}
}

static void
ops(struct in *in)
{
	while (in->i < in->n) {
		unsigned op = byte(in), a = op >> 3;
		switch (op & 7) {
		case 0: {
			size_t len = byte(in);
			len |= (size_t)byte(in) << 8;
			if (len > in->n - in->i)
				len = in->n - in->i;
			gate_in((int)(a & 7), in->p + in->i, len);
			in->i += len;
			break;
		}
		case 1:
			for (unsigned r = 0; r <= (a & 3); r++)
				pump(a & 16 ? (int)((a >> 2) & 7) : 0);
			break;
		case 2:
		case 6: {
			if (!G.ncap)
				break;
			struct pkt p = G.cap[byte(in) % G.ncap];
			if ((op & 7) == 2) {
				unsigned pos = byte(in), x = byte(in);
				if (a & 16)
					p.len = p.len < pos ? p.len : pos;
				else if (p.len)
					p.b[pos % p.len] ^= (uint8_t)(x ? x : 1);
			}
			gate_in((int)(a & 7), p.b, p.len);
			break;
		}
		case 3:
			G.now += ((uint64_t)a * a + 1) * 7000;
			if (gate_check(G.g, G.now) <= G.now)
				gate_update(G.g, G.now);
			if (!G.c_closed && session_check(G.c, G.now) <= G.now)
				session_update(G.c, G.now);
			break;
		case 4:
			gate_conn_lost(G.g, G.path[5 + (a & 1)].conn, "reset", G.now);
			break;
		case 5:
			app(a, in);
			break;
		default: {
			uint8_t pkt[200];
			size_t len = WIRE_OVERHEAD + byte(in) % 100;
			memset(pkt, 0, sizeof pkt);
			pkt[0] = (uint8_t)(WIRE_KCP + byte(in) % 9);
			wire_put32(pkt + 1, G.c ? session_id(G.c) : 1);
			wire_put32(pkt + 5, byte(in) | (uint32_t)byte(in) << 8);
			for (size_t k = WIRE_HDR; k < len; k++)
				pkt[k] = (uint8_t)byte(in);
			gate_in((int)(a & 7), pkt, len);
			break;
		}
		}
	}
}

static void
init_once(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	fuzz_rand_install();
	CHECK(wire_init() == 0);
	debug = getenv("FUZZ_DEBUG") != NULL;
	for (int i = 0; i < WIRE_SECRET; i++)
		secret[i] = (uint8_t)(0x40 + i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gate_config gc;
	struct in in = { data, size, 0 };

	init_once();
	if (size < 1 || size > 40000)
		return 0;
	fuzz_rand_reset(0x6a7e0000u + size);
	memset(&G, 0, sizeof G);
	G.now = 5000000000ull;
	G.in_path = -1;
	unsigned setup = byte(&in);
	G.client_listener = (setup & 3) == 3 ? 0 : (int)(setup & 3);
	G.max_sessions = 1 + (int)((setup >> 2) & 7);
	G.refuse_r = (setup >> 6) & 1;

	gate_config_default(&gc);
	memcpy(gc.secret, secret, sizeof secret);
	gc.max_sessions = G.max_sessions;
	gc.max_raw_per_addr = 2;
	gc.plain_listeners = 1u << 1;
	gc.fec[2].data = 4;
	gc.fec[2].parity = 2;
	if (setup & 32)
		gc.session.resume_grace_ms = 3000;
	G.g = gate_create(&gc, &gate_cb, NULL);
	CHECK(G.g != NULL);

	int l = G.client_listener;
	udp_path(&G.path[0], l, 40000, 0);
	udp_path(&G.path[1], l, 40001, 0);
	udp_path(&G.path[2], l, 40002, 0);
	udp_path(&G.path[3], l, 40003, 0);
	udp_path(&G.path[4], (l + 1) % 3, 40004, 0);
	for (int k = 5; k <= 6; k++) {
		memset(&G.path[k], 0, sizeof G.path[k]);
		G.path[k].transport = GATE_TCP;
		G.path[k].listener = 4;
		G.path[k].conn = 900 + (uint32_t)k;
	}
	udp_path(&G.path[7], 3, 40007, 1);

	struct session_config sc;
	session_config_default(&sc);
	static const uint8_t hello[] = "{\"v\":1,\"name\":\"fuzz\"}";
	G.c = session_client_create(&sc, &client_cb, NULL, 1, hello,
	                            setup & 128 ? 0 : sizeof hello - 1, G.now);
	CHECK(G.c != NULL);

	ops(&in);

	if (!G.c_closed)
		session_abort(G.c, SESSION_CLOSE_SHUTDOWN, "end", G.now);
	session_release(G.c);
	gate_release(G.g, G.now);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
#define FUZZ_FIXUP(mut, buf, m) do { if (((m) & 7) != 0) (mut)[0] = (buf)[0]; } while (0)
#include "replay.h"
int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, "fuzz_gate");
}
#endif
