/*
 * handshake_bench.c - handshakes per server CPU second, v1 (anonymous,
 * the hello in clear) and v2 (the pinned server key, the hello sealed;
 * docs/PROTOCOL.md, "Handshake v2"), side by side, in memory.
 *
 * A client session (core/proto/session_client.c) and a gate
 * (core/proto/gate.c) joined by two queues, no sockets: HELLO, CHALLENGE,
 * INIT, WELCOME, then the client's first PING opens the server's session.
 * Only the gate's work is timed (CLOCK_THREAD_CPUTIME_ID around each
 * gate_input), which is what a server core spends per handshake: the
 * cookie, the X25519s, the key derivation, the session's allocation and
 * its WELCOME. The gate is made again every 1000 handshakes (untimed) so
 * the session table stays small. The modes alternate in rounds so a
 * change of machine load hits both; each figure is the median of the
 * rounds.
 *
 *   handshake_bench [--n 5000] [--rounds 5] [--hello 64] [--quick]
 *   RESULT bench=handshake n=... hello=... v1_per_s=... v2_per_s=...
 *          v1_us=... v2_us=... ratio=...
 *
 * v1_per_s, v2_per_s: handshakes per server CPU second; ratio: v2 / v1.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate.h"
#include "session.h"
#include "wire.h"

#define QMAX 16

struct q {
	uint8_t pkt[QMAX][1600];
	size_t len[QMAX];
	int n;
};

static struct q to_server, to_client;
static int server_open, client_open;
static double server_ns;

static void
push(struct q *q, const uint8_t *p, size_t len)
{
	if (q->n < QMAX && len <= sizeof q->pkt[0]) {
		memcpy(q->pkt[q->n], p, len);
		q->len[q->n++] = len;
	}
}

static void
g_output(const struct gate_path *to, const uint8_t *pkt, size_t len, void *u)
{
	(void)to; (void)u;
	push(&to_client, pkt, len);
}

static void
g_event(gate_t *g, session_t *s, const struct session_event *ev, void *u)
{
	(void)g; (void)s; (void)u;
	if (ev->type == SESSION_EV_OPEN)
		server_open = 1;
}

static void
c_output(session_t *s, uint32_t path, const uint8_t *pkt, size_t len, void *u)
{
	(void)s; (void)path; (void)u;
	push(&to_server, pkt, len);
}

static void
c_event(session_t *s, const struct session_event *ev, void *u)
{
	(void)s; (void)u;
	if (ev->type == SESSION_EV_OPEN)
		client_open = 1;
}

static double
thread_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static gate_t *
make_gate(void)
{
	static const struct gate_callbacks cb = { g_output, NULL, g_event, NULL,
	                                          NULL, NULL };
	struct gate_config gc;
	gate_config_default(&gc);
	memset(gc.secret, 0x05, sizeof gc.secret);
	gc.max_sessions = 10000;
	return gate_create(&gc, &cb, NULL);
}

/* n handshakes in mode v2 (0: v1); server CPU ns per handshake. */
static double
run(int n, int v2, size_t hello_len)
{
	static const struct session_callbacks ccb = { c_output, c_event };
	uint8_t hello[WIRE_HELLO_MAX], secret[WIRE_SECRET], sec[WIRE_SEC];
	struct session_config sc;
	memset(hello, 'h', sizeof hello);
	session_config_default(&sc);
	if (v2) {
		memset(secret, 0x05, sizeof secret);
		wire_static_keypair(sc.server_key, sec, secret);
		sc.pinned = 1;
	}
	struct gate_path from;
	memset(&from, 0, sizeof from);
	from.transport = GATE_UDP;
	struct sockaddr_in *in = (struct sockaddr_in *)&from.addr;
	in->sin_family = AF_INET;
	in->sin_port = htons(40000);
	in->sin_addr.s_addr = htonl(0x7f000001);
	from.addrlen = sizeof *in;
	uint64_t now = 1000000000;
	gate_t *g = NULL;
	server_ns = 0;
	for (int i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			gate_release(g, now);
			g = make_gate();
		}
		server_open = client_open = 0;
		to_server.n = to_client.n = 0;
		session_t *c = session_client_create(&sc, &ccb, NULL, 1, hello,
		                                     hello_len, now);
		if (!c || !g) {
			fprintf(stderr, "handshake_bench: setup failed\n");
			exit(1);
		}
		for (int round = 0; round < 8 && !(server_open && client_open);
		     round++) {
			for (int k = 0; k < to_server.n; k++) {
				double t0 = thread_ns();
				gate_input(g, &from, to_server.pkt[k], to_server.len[k], now);
				server_ns += thread_ns() - t0;
			}
			to_server.n = 0;
			for (int k = 0; k < to_client.n; k++)
				session_input(c, 1, to_client.pkt[k], to_client.len[k], now);
			to_client.n = 0;
		}
		if (!(server_open && client_open)) {
			fprintf(stderr, "handshake_bench: handshake %d (v%d) did not "
			        "open\n", i, v2 ? 2 : 1);
			exit(1);
		}
		session_release(c);
	}
	gate_release(g, now);
	return server_ns / n;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int n = 5000, rounds = 5;
	size_t hello_len = 64;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			n = 200;
			rounds = 1;
		} else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
			n = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--hello") && i + 1 < argc) {
			hello_len = (size_t)atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: handshake_bench [--n N] [--rounds R] "
			        "[--hello BYTES] [--quick]\n");
			return 2;
		}
	}
	if (n < 1 || rounds < 1 || rounds > 99 || hello_len > WIRE_HELLO_MAX ||
	    wire_init() < 0) {
		fprintf(stderr, "handshake_bench: bad arguments\n");
		return 2;
	}
	double v1[99], v2[99];
	for (int r = 0; r < rounds; r++) {
		v1[r] = run(n, 0, hello_len);
		v2[r] = run(n, 1, hello_len);
	}
	qsort(v1, (size_t)rounds, sizeof v1[0], cmp);
	qsort(v2, (size_t)rounds, sizeof v2[0], cmp);
	double m1 = v1[rounds / 2], m2 = v2[rounds / 2];
	printf("RESULT bench=handshake n=%d rounds=%d hello=%zu v1_per_s=%.0f "
	       "v2_per_s=%.0f v1_us=%.1f v2_us=%.1f ratio=%.3f\n", n, rounds,
	       hello_len, 1e9 / m1, 1e9 / m2, m1 / 1e3, m2 / 1e3, m1 / m2);
	return 0;
}
