/*
 * test_net.c - core/server/net.c over real sockets on 127.0.0.1.
 *
 * Every test has its own libev loop and net object; ports are chosen by
 * binding port 0. The loop is driven with ev_run(EVRUN_ONCE) (a 5 ms tick
 * timer bounds each run) or EVRUN_NOWAIT, always in loops with a deadline
 * of wall time, never with sleep(). Client sockets are plain non-blocking
 * sockets read between loop runs.
 *
 * Run with -v for details; any other argument selects tests by substring.
 */
#include "net.h"
#include "net_int.h" /* net_src_key, net_src_text: the sources counted */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#define WAIT_S 2.0 /* longest wait for any one condition */

static double
mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
mix64(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Frame k of a test stream: 1..maxlen bytes, content from k. */
static size_t
gen_frame(uint32_t k, uint8_t *out, size_t maxlen)
{
	size_t len = 1 + (size_t)(mix64(k) % maxlen), i;
	for (i = 0; i < len; i++)
		out[i] = (uint8_t)(k * 131u + i * 7u + (i >> 8));
	return len;
}

/* ---- the server side: a net object and what its callbacks saw ---------- */

struct ctx {
	struct ev_loop *loop;
	net_t *n;
	ev_timer tick;
	long iterations;           /* tick-independent: counted by prepare */
	ev_prepare count;
	int echo;                  /* reply to every packet with itself */
	long packets;
	struct gate_path last;     /* path of the last packet */
	uint8_t lastpkt[4096];
	size_t lastlen;
	/* UDP: datagram i carries i (u32 LE) and comes from expect_port */
	int udp_check, expect_port;
	long bad_from;
	int seen[1000];
	/* TCP: frames must be gen_frame(0), gen_frame(1), ... */
	int tcp_check;
	uint32_t tcp_next;
	long tcp_bad;
	/* conn_lost */
	int nlost;
	uint32_t lost_id[8];
	char lost_reason[8][32];
	long timers;
	uint64_t timer_now;
	/* re-entrancy: what the callbacks do besides recording */
	int close_in_packet;       /* -1 none, else net_close mode on the conn */
	int flush_in_lost;         /* conn_lost sends to the lost id, flushes */
};

static void
on_packet(const struct gate_path *from, uint8_t *pkt, size_t len, void *user)
{
	struct ctx *t = user;
	t->packets++;
	t->last = *from;
	t->lastlen = len < sizeof(t->lastpkt) ? len : sizeof(t->lastpkt);
	memcpy(t->lastpkt, pkt, t->lastlen);
	if (t->udp_check && from->transport == GATE_UDP) {
		const struct sockaddr_in *a = (const void *)&from->addr;
		uint32_t i;
		if (from->addrlen != sizeof(*a) || a->sin_family != AF_INET ||
		    a->sin_addr.s_addr != htonl(INADDR_LOOPBACK) ||
		    ntohs(a->sin_port) != t->expect_port || from->conn != 0)
			t->bad_from++;
		memcpy(&i, pkt, 4);
		if (len >= 4 && i < 1000)
			t->seen[i]++;
	}
	if (t->tcp_check && from->transport == GATE_TCP) {
		uint8_t want[4096];
		size_t wl = gen_frame(t->tcp_next++, want, 2048);
		if (wl != len || memcmp(want, pkt, len) != 0)
			t->tcp_bad++;
	}
	if (t->echo)
		net_send(t->n, from, pkt, len);
	if (t->close_in_packet >= 0 && from->transport == GATE_TCP)
		net_close(t->n, from->conn, t->close_in_packet);
}

static void
on_lost(uint32_t conn, const char *reason, void *user)
{
	struct ctx *t = user;
	if (t->nlost < 8) {
		t->lost_id[t->nlost] = conn;
		snprintf(t->lost_reason[t->nlost], sizeof(t->lost_reason[0]), "%s",
		         reason);
	}
	t->nlost++;
	if (t->flush_in_lost) {
		struct gate_path p;
		memset(&p, 0, sizeof(p));
		p.transport = GATE_TCP;
		p.conn = conn;
		net_send(t->n, &p, (const uint8_t *)"late", 4);
		net_flush(t->n);
	}
}

static void
on_timer(uint64_t now, void *user)
{
	struct ctx *t = user;
	t->timers++;
	t->timer_now = now;
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

static void
count_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	((struct ctx *)w->data)->iterations++;
}

static int
setup(struct ctx *t, const struct net_config *c)
{
	static const struct net_callbacks cb = { on_packet, on_lost, on_timer, NULL };
	memset(t, 0, sizeof(*t));
	t->close_in_packet = -1;
	t->loop = ev_loop_new(EVFLAG_AUTO);
	if (!t->loop)
		return -1;
	ev_timer_init(&t->tick, tick_cb, 0.005, 0.005);
	ev_timer_start(t->loop, &t->tick);
	ev_prepare_init(&t->count, count_cb);
	t->count.data = t;
	ev_prepare_start(t->loop, &t->count);
	t->n = net_create(t->loop, c, &cb, t);
	return t->n ? 0 : -1;
}

static void
teardown(struct ctx *t)
{
	net_release(t->n);
	ev_timer_stop(t->loop, &t->tick);
	ev_prepare_stop(t->loop, &t->count);
	ev_loop_destroy(t->loop);
}

static int
listen_on(struct ctx *t, int transport, int raw)
{
	char err[256] = "";
	int port = 0;
	int idx = net_listen(t->n, transport, "127.0.0.1", 0, raw, &port, err,
	                     sizeof(err));
	if (idx < 0) {
		fprintf(stderr, "net_listen: %s\n", err);
		return -1;
	}
	return port;
}

static struct net_stats
stats(const struct ctx *t)
{
	struct net_stats st;
	net_stats(t->n, &st);
	return st;
}

/* Run the loop until cond holds or WAIT_S passed; then the caller CHECKs. */
#define RUN_UNTIL(t, cond) do { \
	double end_ = mono() + WAIT_S; \
	while (!(cond) && mono() < end_) \
		ev_run((t)->loop, EVRUN_ONCE); \
} while (0)

static void
run_for(struct ctx *t, double s)
{
	double end = mono() + s;
	while (mono() < end)
		ev_run(t->loop, EVRUN_ONCE);
}

/* ---- clients ------------------------------------------------------------ */

static struct sockaddr_in
loopback(int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int
local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	return ntohs(a.sin_port);
}

static int
udp_client(void)
{
	struct sockaddr_in a = loopback(0);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A connected TCP client, non-blocking after connect (which completes in
 * the listener's backlog, accepted or not). */
static int
tcp_client_fd(int port, int rcvbuf)
{
	struct sockaddr_in a = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

struct client {
	int fd;
	uint8_t *in;
	size_t len, cap;
	int eof, err;
};

static void
cl_open(struct client *c, int port, int rcvbuf)
{
	memset(c, 0, sizeof(*c));
	c->cap = 1 << 20;
	c->in = malloc(c->cap);
	c->fd = tcp_client_fd(port, rcvbuf);
}

static void
cl_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->in);
	c->in = NULL;
}

/* Read what is there. */
static void
cl_pump(struct client *c)
{
	while (c->fd >= 0 && !c->eof && !c->err && c->len < c->cap) {
		ssize_t r = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
		if (r > 0)
			c->len += (size_t)r;
		else if (r == 0)
			c->eof = 1;
		else if (errno != EINTR && errno != EAGAIN)
			c->err = errno;
		else if (errno == EAGAIN)
			break;
	}
}

/* Pop one complete frame; 1 if there was one. */
static int
cl_frame(struct client *c, uint8_t *out, size_t *len)
{
	size_t fl;
	cl_pump(c);
	if (c->len < 2)
		return 0;
	fl = (size_t)c->in[0] | (size_t)c->in[1] << 8;
	if (c->len < 2 + fl)
		return 0;
	memcpy(out, c->in + 2, fl);
	*len = fl;
	memmove(c->in, c->in + 2 + fl, c->len - 2 - fl);
	c->len -= 2 + fl;
	return 1;
}

static int
cl_send_frame(struct client *c, const void *p, size_t len)
{
	uint8_t b[4096];
	b[0] = (uint8_t)len;
	b[1] = (uint8_t)(len >> 8);
	memcpy(b + 2, p, len);
	return send(c->fd, b, 2 + len, MSG_NOSIGNAL) == (ssize_t)(2 + len) ? 0 : -1;
}

/* The client sends one frame; returns the server's id for it (0: none). */
static uint32_t
cl_hello(struct ctx *t, struct client *c)
{
	long before = t->packets;
	if (c->fd < 0 || cl_send_frame(c, "hello", 5) < 0)
		return 0;
	RUN_UNTIL(t, t->packets > before);
	if (t->packets == before || t->last.transport != GATE_TCP)
		return 0;
	return t->last.conn;
}

/* State (st field, hex) of the TCP socket with this local and remote port
 * in /proc/net/tcp; -1 when there is none. */
static int
tcp_state(int lport, int rport)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	int st = -1;
	if (!f)
		return -2;
	while (fgets(line, sizeof(line), f)) {
		unsigned la, lp, ra, rp, s;
		if (sscanf(line, " %*d: %x:%x %x:%x %x", &la, &lp, &ra, &rp, &s) == 5
		    && (int)lp == lport && (int)rp == rport) {
			st = (int)s;
			break;
		}
	}
	fclose(f);
	return st;
}

#define TCP_ESTABLISHED 0x01
#define TCP_TIME_WAIT 0x06

/* ---- UDP ---------------------------------------------------------------- */

static void
udp_roundtrip(int batch)
{
	struct net_config c;
	struct ctx t;
	struct net_stats st;
	struct sockaddr_in to;
	int port, fd, chunk, i, replies = 0, bad_replies = 0;
	uint8_t pkt[256];

	net_config_default(&c);
	c.batch = batch;
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_UDP, 0);
	REQUIRE(port > 0);
	fd = udp_client();
	REQUIRE(fd >= 0);
	to = loopback(port);
	t.echo = 1;
	t.udp_check = 1;
	t.expect_port = local_port(fd);

	/* 20 rounds of 50: the kernel buffers stay far from full */
	for (chunk = 0; chunk < 1000; chunk += 50) {
		for (i = chunk; i < chunk + 50; i++) {
			uint32_t k = (uint32_t)i;
			size_t len = 20 + (size_t)i % 200;
			memset(pkt, (int)(i & 0xff), len);
			memcpy(pkt, &k, 4);
			sendto(fd, pkt, len, 0, (struct sockaddr *)&to, sizeof(to));
		}
		double end = mono() + WAIT_S;
		while (replies < chunk + 50 && mono() < end) {
			ssize_t r;
			ev_run(t.loop, EVRUN_ONCE);
			while ((r = recv(fd, pkt, sizeof(pkt), 0)) > 0) {
				uint32_t k;
				memcpy(&k, pkt, 4);
				if (k != (uint32_t)replies || (size_t)r != 20 + k % 200 ||
				    pkt[r - 1] != (uint8_t)(k & 0xff))
					bad_replies++;
				replies++;
			}
		}
	}
	st = stats(&t);
	CHECK_EQ(t.packets, 1000);
	CHECK_EQ(replies, 1000);
	CHECK_EQ(bad_replies, 0);
	CHECK_EQ(t.bad_from, 0);
	for (i = 0; i < 1000; i++)
		CHECK_EQ(t.seen[i], 1);
	CHECK_EQ(t.last.transport, GATE_UDP);
	CHECK_EQ(t.last.listener, 0);
	CHECK_EQ(t.last.raw, 0);
	CHECK_EQ(st.udp_in, 1000);
	CHECK_EQ(st.udp_out, 1000);
	CHECK_EQ(st.udp_send_errors, 0);
	VERBOSE("batch %d: %llu recv calls, %llu send calls for 1000 datagrams "
	        "each way\n", batch, (unsigned long long)st.udp_recv_calls,
	        (unsigned long long)st.udp_send_calls);
	if (batch > 1) {
		CHECK(st.udp_recv_calls < 1000 / 4);
		CHECK(st.udp_send_calls < 1000 / 4);
	} else {
		CHECK(st.udp_recv_calls >= 1000);
		CHECK_EQ(st.udp_send_calls, 1000);
	}
	close(fd);
	teardown(&t);
}

TEST(udp_batched) { udp_roundtrip(32); }
TEST(udp_unbatched) { udp_roundtrip(1); }

/* net.poll_us: wakeups more than 8 per poll_us on average move the
 * listener to polling mode (read on a timer); every datagram is still delivered and
 * answered, in order, bursts and ping-pong alike; once traffic stops, a
 * few empty polls move it back to readiness, so an idle server makes no
 * timer wakeups. */
TEST(udp_polling_mode)
{
	struct net_config c;
	struct ctx t;
	struct sockaddr_in to;
	int port, fd, i, replies = 0, bad = 0;
	uint8_t pkt[64];

	net_config_default(&c);
	/* long, so that 64 wakeups fall in one window of 8 x poll_us (160 ms)
	 * however loaded the machine */
	c.poll_us = 20000;
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_UDP, 0);
	REQUIRE(port > 0);
	fd = udp_client();
	REQUIRE(fd >= 0);
	to = loopback(port);
	t.echo = 1;
	/* 100 datagrams one loop turn apart (a wakeup each until polling
	 * starts), then 2 bursts of 30; every reply checked in order */
	for (i = 0; i < 160; i++) {
		uint32_t k = (uint32_t)i;
		memset(pkt, (int)(i & 0xff), sizeof pkt);
		memcpy(pkt, &k, 4);
		sendto(fd, pkt, sizeof pkt, 0, (struct sockaddr *)&to, sizeof to);
		int wait_all = i == 99 || i == 129 || i == 159;
		if (i >= 100 && !wait_all)
			continue;
		double end = mono() + WAIT_S;
		do {
			ssize_t r;
			ev_run(t.loop, EVRUN_ONCE);
			while ((r = recv(fd, pkt, sizeof pkt, MSG_DONTWAIT)) > 0) {
				uint32_t k2;
				memcpy(&k2, pkt, 4);
				bad += k2 != (uint32_t)replies || r != (ssize_t)sizeof pkt;
				replies++;
			}
		} while (wait_all && replies <= i && mono() < end);
	}
	struct net_stats st = stats(&t);
	CHECK_EQ(replies, 160);
	CHECK_EQ(bad, 0);
	CHECK_EQ(st.udp_in, 160);
	CHECK(st.poll_enter >= 1);
	CHECK(st.polls >= 1);
	/* idle: back to readiness within NET_POLL_IDLE (8) empty polls */
	double end = mono() + 4 * WAIT_S, changed = mono();
	uint64_t polls = st.polls;
	while (mono() < end && mono() - changed < 0.2) {
		ev_run(t.loop, EVRUN_ONCE); /* no poll for 200 ms: 5 periods */
		st = stats(&t);
		if (st.polls != polls) {
			polls = st.polls;
			changed = mono();
		}
	}
	uint64_t settled = stats(&t).polls;
	for (i = 0; i < 20; i++)
		ev_run(t.loop, EVRUN_ONCE); /* the test's 5 ms tick wakes it:
		                               100 ms, more than two polls */
	VERBOSE("polling mode: entered %llu times, %llu polls\n",
	        (unsigned long long)st.poll_enter, (unsigned long long)settled);
	CHECK_EQ(stats(&t).polls, settled);
	close(fd);
	teardown(&t);
}

/* Datagrams over dgram_max are dropped and counted; a second listener
 * reports its index and raw flag, and replies leave from its socket. */
TEST(udp_oversize_and_listeners)
{
	struct net_config c;
	struct ctx t;
	struct sockaddr_in to, from;
	socklen_t fl = sizeof(from);
	static uint8_t big[4096];
	int p0, p1, fd;
	ssize_t r;

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	p0 = listen_on(&t, NET_UDP, 0);
	p1 = listen_on(&t, NET_UDP, 1);
	REQUIRE(p0 > 0 && p1 > 0 && p0 != p1);
	fd = udp_client();
	REQUIRE(fd >= 0);
	to = loopback(p0);
	memset(big, 0xab, sizeof(big));
	sendto(fd, big, 2049, 0, (struct sockaddr *)&to, sizeof(to));
	sendto(fd, big, 3000, 0, (struct sockaddr *)&to, sizeof(to));
	sendto(fd, big, 2048, 0, (struct sockaddr *)&to, sizeof(to));
	RUN_UNTIL(&t, t.packets >= 1);
	CHECK_EQ(t.packets, 1);
	CHECK_EQ(t.lastlen, 2048);
	CHECK_EQ(stats(&t).udp_truncated, 2);
	sendto(fd, "next", 4, 0, (struct sockaddr *)&to, sizeof(to));
	RUN_UNTIL(&t, t.packets >= 2);
	CHECK_EQ(t.packets, 2);
	CHECK_EQ(t.lastlen, 4);
	CHECK_EQ(t.last.listener, 0);
	CHECK_EQ(t.last.raw, 0);

	to = loopback(p1);
	t.echo = 1;
	sendto(fd, "raw", 3, 0, (struct sockaddr *)&to, sizeof(to));
	RUN_UNTIL(&t, t.packets >= 3);
	CHECK_EQ(t.last.listener, 1);
	CHECK_EQ(t.last.raw, 1);
	CHECK_EQ(t.last.transport, GATE_UDP);
	{
		double end = mono() + WAIT_S;
		r = -1;
		while (r < 0 && mono() < end) {
			ev_run(t.loop, EVRUN_ONCE);
			r = recvfrom(fd, big, sizeof(big), 0, (struct sockaddr *)&from,
			             &fl);
		}
	}
	CHECK_EQ(r, 3);
	CHECK_EQ(ntohs(from.sin_port), p1);

	/* a datagram over dgram_max cannot be sent either */
	net_send(t.n, &t.last, big, 2049);
	net_flush(t.n);
	CHECK_EQ(stats(&t).udp_send_errors, 1);
	close(fd);
	teardown(&t);
}

/* ---- TCP framing -------------------------------------------------------- */

TEST(tcp_frames_split_and_coalesced)
{
	struct net_config c;
	struct ctx t;
	struct client cl;
	static uint8_t stream[1 << 20], fr[4096], want[4096];
	size_t total = 0, off = 0, len;
	uint32_t k, nframes = 300, echoed = 0;
	long bad_echo = 0;
	uint64_t rnd = 42;
	int port;

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	t.echo = 1;
	t.tcp_check = 1;
	for (k = 0; k < nframes; k++) {
		len = gen_frame(k, stream + total + 2, 2048);
		stream[total] = (uint8_t)len;
		stream[total + 1] = (uint8_t)(len >> 8);
		total += 2 + len;
	}
	cl_open(&cl, port, 0);
	REQUIRE(cl.fd >= 0);
	RUN_UNTIL(&t, stats(&t).tcp_accepted == 1);

	/* the first three frames a byte at a time, the server reading between */
	{
		size_t end3 = 0;
		for (k = 0; k < 3; k++)
			end3 += 2 + ((size_t)stream[end3] | (size_t)stream[end3 + 1] << 8);
		for (; off < end3; off++) {
			double end = mono() + WAIT_S;
			while (send(cl.fd, stream + off, 1, MSG_NOSIGNAL) != 1 &&
			       mono() < end)
				ev_run(t.loop, EVRUN_NOWAIT);
			ev_run(t.loop, EVRUN_NOWAIT);
		}
		RUN_UNTIL(&t, t.tcp_next == 3);
		CHECK_EQ(t.tcp_next, 3);
	}
	/* the rest in random chunks of 1..6000 bytes (often many frames in one
	 * write), reading the echoes meanwhile */
	{
		double end = mono() + WAIT_S;
		while ((off < total || echoed < nframes) && mono() < end) {
			if (off < total) {
				size_t chunk = 1 + (size_t)((rnd = mix64(rnd)) % 6000);
				ssize_t w;
				if (chunk > total - off)
					chunk = total - off;
				w = send(cl.fd, stream + off, chunk, MSG_NOSIGNAL);
				if (w > 0)
					off += (size_t)w;
			}
			ev_run(t.loop, off < total ? EVRUN_NOWAIT : EVRUN_ONCE);
			while (cl_frame(&cl, fr, &len)) {
				size_t wl = gen_frame(echoed++, want, 2048);
				if (wl != len || memcmp(fr, want, len) != 0)
					bad_echo++;
			}
		}
	}
	CHECK_EQ(off, total);
	CHECK_EQ(t.tcp_next, nframes);
	CHECK_EQ(t.tcp_bad, 0);
	CHECK_EQ(echoed, nframes);
	CHECK_EQ(bad_echo, 0);
	CHECK_EQ(stats(&t).tcp_frames_in, nframes);
	CHECK_EQ(stats(&t).tcp_frames_out, nframes);
	CHECK_EQ(t.nlost, 0);
	CHECK_EQ(t.last.transport, GATE_TCP);
	CHECK(t.last.conn != 0);
	cl_close(&cl);
	teardown(&t);
}

TEST(tcp_bad_frames)
{
	struct net_config c;
	struct ctx t;
	struct client a, b, z;
	uint8_t fr[64];
	size_t len;
	uint32_t ida, idb, idz;
	int port;
	const uint8_t too_big[] = { 0x01, 0x08, 1, 2, 3 }; /* 2049 */
	const uint8_t empty[] = { 0, 0, 3, 0, 'a', 'b', 'c' };

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	cl_open(&a, port, 0);
	cl_open(&b, port, 0);
	cl_open(&z, port, 0);
	ida = cl_hello(&t, &a);
	idb = cl_hello(&t, &b);
	idz = cl_hello(&t, &z);
	REQUIRE(ida && idb && idz && ida != idb && idb != idz && ida != idz);

	CHECK_EQ(send(a.fd, too_big, sizeof(too_big), MSG_NOSIGNAL), 5);
	RUN_UNTIL(&t, t.nlost == 1);
	REQUIRE_EQ(t.nlost, 1);
	CHECK_EQ(t.lost_id[0], ida);
	CHECK(!strcmp(t.lost_reason[0], "frame too large"));

	/* b is unaffected */
	t.echo = 1;
	CHECK_EQ(cl_send_frame(&b, "still here", 10), 0);
	{
		int got = 0;
		double end = mono() + WAIT_S;
		while (!got && mono() < end) {
			ev_run(t.loop, EVRUN_ONCE);
			got = cl_frame(&b, fr, &len);
		}
		CHECK(got && len == 10 && !memcmp(fr, "still here", 10));
	}
	CHECK_EQ(send(z.fd, empty, sizeof(empty), MSG_NOSIGNAL), 7);
	RUN_UNTIL(&t, t.nlost == 2);
	REQUIRE_EQ(t.nlost, 2);
	CHECK_EQ(t.lost_id[1], idz);
	CHECK(!strcmp(t.lost_reason[1], "empty frame"));
	CHECK_EQ(stats(&t).tcp_bad_frames, 2);
	CHECK_EQ(stats(&t).tcp_open, 1);
	/* the refused peers see their connection end */
	RUN_UNTIL(&t, (cl_pump(&a), cl_pump(&z), (a.eof || a.err) &&
	                                         (z.eof || z.err)));
	CHECK(a.eof || a.err);
	CHECK(z.eof || z.err);
	cl_close(&a);
	cl_close(&b);
	cl_close(&z);
	teardown(&t);
}

/* A connection that never gets a session is closed after hello_timeout_ms;
 * one bound to a session (net_bind) stays. */
TEST(tcp_hello_timeout)
{
	struct net_config c;
	struct ctx t;
	struct client a, b, z;
	net_config_default(&c);
	CHECK_EQ(c.hello_timeout_ms, 10000);
	c.hello_timeout_ms = 300;
	REQUIRE(setup(&t, &c) == 0);
	int port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	cl_open(&a, port, 0);            /* silent */
	cl_open(&b, port, 0);            /* bound */
	cl_open(&z, port, 0);            /* says hello, never gets a session */
	uint32_t idb = cl_hello(&t, &b), idz = cl_hello(&t, &z);
	REQUIRE(idb && idz);
	net_bind(t.n, idb);
	RUN_UNTIL(&t, t.nlost == 2);
	REQUIRE_EQ(t.nlost, 2);
	CHECK(t.lost_id[0] == idz || t.lost_id[1] == idz);
	CHECK(t.lost_id[0] != idb && t.lost_id[1] != idb);
	CHECK(!strcmp(t.lost_reason[0], "handshake timeout"));
	CHECK(!strcmp(t.lost_reason[1], "handshake timeout"));
	run_for(&t, 0.5); /* b outlives the deadline */
	CHECK_EQ(t.nlost, 2);
	CHECK_EQ(stats(&t).tcp_open, 1);
	CHECK_EQ(stats(&t).tcp_hello_timeouts, 2);
	RUN_UNTIL(&t, (cl_pump(&a), cl_pump(&z), (a.eof || a.err) &&
	                                         (z.eof || z.err)));
	CHECK(a.eof || a.err);
	CHECK(z.eof || z.err);
	cl_close(&a);
	cl_close(&b);
	cl_close(&z);
	teardown(&t);
}

TEST(tcp_eof_and_reset)
{
	struct net_config c;
	struct ctx t;
	struct client a, b;
	uint32_t ida, idb;
	struct linger lg = { 1, 0 };
	int port;

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	cl_open(&a, port, 0);
	cl_open(&b, port, 0);
	ida = cl_hello(&t, &a);
	idb = cl_hello(&t, &b);
	REQUIRE(ida && idb);

	close(a.fd);
	a.fd = -1;
	RUN_UNTIL(&t, t.nlost == 1);
	REQUIRE_EQ(t.nlost, 1);
	CHECK_EQ(t.lost_id[0], ida);
	CHECK(!strcmp(t.lost_reason[0], "eof"));

	setsockopt(b.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(b.fd);
	b.fd = -1;
	RUN_UNTIL(&t, t.nlost == 2);
	REQUIRE_EQ(t.nlost, 2);
	CHECK_EQ(t.lost_id[1], idb);
	CHECK(!strcmp(t.lost_reason[1], "connection reset"));
	CHECK_EQ(stats(&t).tcp_open, 0);
	CHECK_EQ(stats(&t).tcp_closed, 2);
	cl_close(&a);
	cl_close(&b);
	teardown(&t);
}

/* ---- graceful close ----------------------------------------------------- */

TEST(tcp_graceful_close_time_wait_on_client)
{
	struct net_config c;
	struct ctx t;
	struct client a;
	struct gate_path p;
	uint8_t fr[64];
	size_t len = 0;
	uint32_t id;
	int port, cport, got = 0;

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	cl_open(&a, port, 0);
	cport = local_port(a.fd);
	id = cl_hello(&t, &a);
	REQUIRE(id != 0);
	p = t.last;

	net_send(t.n, &p, (const uint8_t *)"bye", 3);
	net_close(t.n, id, NET_CLOSE_GRACEFUL);
	CHECK_EQ(stats(&t).tcp_open, 0);
	CHECK_EQ(stats(&t).tcp_closing, 1);
	/* the id is stale at once */
	net_send(t.n, &p, (const uint8_t *)"late", 4);
	CHECK_EQ(stats(&t).tcp_dropped, 1);
	{
		double end = mono() + WAIT_S;
		while (!got && mono() < end) {
			ev_run(t.loop, EVRUN_ONCE);
			got = cl_frame(&a, fr, &len);
		}
	}
	CHECK(got && len == 3 && !memcmp(fr, "bye", 3));
	/* frames after net_close are read and discarded */
	CHECK_EQ(cl_send_frame(&a, "ignored", 7), 0);
	run_for(&t, 0.05);
	CHECK_EQ(t.packets, 1);
	/* the server waits for our EOF: no FIN from it yet */
	CHECK_EQ(tcp_state(port, cport), TCP_ESTABLISHED);
	CHECK_EQ(stats(&t).tcp_closing, 1);
	cl_pump(&a);
	CHECK(!a.eof);

	close(a.fd);
	a.fd = -1;
	RUN_UNTIL(&t, stats(&t).tcp_closing == 0);
	CHECK_EQ(stats(&t).tcp_closing, 0);
	CHECK_EQ(stats(&t).tcp_closed, 1);
	RUN_UNTIL(&t, tcp_state(cport, port) == TCP_TIME_WAIT);
	VERBOSE("client side %d, server side %d\n", tcp_state(cport, port),
	        tcp_state(port, cport));
	CHECK_EQ(tcp_state(cport, port), TCP_TIME_WAIT);
	CHECK(tcp_state(port, cport) != TCP_TIME_WAIT);
	CHECK_EQ(t.nlost, 0); /* conn_lost is not for net_close */
	cl_close(&a);
	teardown(&t);
}

TEST(tcp_graceful_close_deadlines)
{
	struct net_config c;
	struct ctx t;
	struct client a;
	uint32_t id;
	double t0, t_eof, t_closed;
	int port;

	net_config_default(&c);
	c.close_wait_ms = 100;
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	cl_open(&a, port, 0);
	id = cl_hello(&t, &a);
	REQUIRE(id != 0);
	ev_now_update(t.loop);
	t0 = mono();
	net_close(t.n, id, NET_CLOSE_GRACEFUL);
	/* a client that never closes: shutdown(SHUT_WR) after 100 ms ... */
	RUN_UNTIL(&t, (cl_pump(&a), a.eof));
	t_eof = mono() - t0;
	CHECK(a.eof);
	CHECK_EQ(stats(&t).tcp_closing, 1);
	/* ... and close() after 100 ms more */
	RUN_UNTIL(&t, stats(&t).tcp_closing == 0);
	t_closed = mono() - t0;
	VERBOSE("EOF after %.3f s, closed after %.3f s\n", t_eof, t_closed);
	CHECK_EQ(stats(&t).tcp_closing, 0);
	CHECK(t_eof >= 0.09 && t_eof < 1.0);
	CHECK(t_closed >= 0.19 && t_closed < 1.5);
	CHECK_EQ(t.nlost, 0);
	cl_close(&a);
	teardown(&t);
}

TEST(tcp_close_rst)
{
	struct net_config c;
	struct ctx t;
	struct client a, b;
	uint32_t id;
	int port;

	net_config_default(&c);
	c.close_rst = 1;
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	cl_open(&a, port, 0);
	id = cl_hello(&t, &a);
	REQUIRE(id != 0);
	net_close(t.n, id, NET_CLOSE_GRACEFUL);
	CHECK_EQ(stats(&t).tcp_closing, 0);
	CHECK_EQ(stats(&t).tcp_closed, 1);
	RUN_UNTIL(&t, (cl_pump(&a), a.eof || a.err));
	CHECK_EQ(a.err, ECONNRESET);
	CHECK(!a.eof);
	cl_close(&a);

	/* NET_CLOSE_RESET without close_rst */
	net_release(t.n);
	c.close_rst = 0;
	{
		static const struct net_callbacks cb = { on_packet, on_lost, on_timer, NULL };
		t.n = net_create(t.loop, &c, &cb, &t);
	}
	REQUIRE(t.n != NULL);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	cl_open(&b, port, 0);
	id = cl_hello(&t, &b);
	REQUIRE(id != 0);
	net_close(t.n, id, NET_CLOSE_RESET);
	RUN_UNTIL(&t, (cl_pump(&b), b.eof || b.err));
	CHECK_EQ(b.err, ECONNRESET);
	CHECK_EQ(t.nlost, 0);
	cl_close(&b);
	teardown(&t);
}

/* ---- descriptors, limits ------------------------------------------------ */

static int
highest_fd(void)
{
	int fd = dup(0), hi;
	if (fd < 0)
		return 1024;
	close(fd);
	/* not every descriptor below is open, but none is above the highest */
	for (hi = fd; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			hi = fd;
	return hi;
}

TEST(tcp_emfile_pauses_accept)
{
	struct net_config c;
	struct ctx t;
	struct rlimit old, low;
	struct sockaddr_in a;
	struct client cl;
	int port, *fill, nfill = 0, i, connected;
	long it0, iterations;
	struct net_stats st;
	uint8_t fr[64];
	size_t len = 0;
	int got = 0;

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	t.echo = 1;
	memset(&cl, 0, sizeof(cl));
	cl.cap = 4096;
	cl.in = malloc(cl.cap);
	cl.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(cl.fd >= 0 && cl.in);
	REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);

	/* from here on, no REQUIRE until the limit is restored */
	low = old;
	low.rlim_cur = (rlim_t)highest_fd() + 8;
	fill = malloc(low.rlim_cur * sizeof(*fill));
	REQUIRE(fill != NULL);
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	while ((rlim_t)nfill < low.rlim_cur && (fill[nfill] = dup(0)) >= 0)
		nfill++;
	CHECK((rlim_t)nfill < low.rlim_cur && errno == EMFILE);
	a = loopback(port);
	connected = connect(cl.fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	CHECK(connected);

	/* 350 ms: a pause every 100 ms, a handful of loop iterations each */
	it0 = t.iterations;
	run_for(&t, 0.35);
	iterations = t.iterations - it0;
	st = stats(&t);
	VERBOSE("%ld iterations, %llu pauses\n", iterations,
	        (unsigned long long)st.accept_paused);
	CHECK(st.accept_paused >= 2 && st.accept_paused <= 6);
	CHECK(iterations < 250); /* 5 ms ticks: about 70; a spinning loop: 1e5 */
	CHECK_EQ(st.tcp_accepted, 0);

	for (i = 0; i < nfill; i++)
		close(fill[i]);
	free(fill);
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);

	RUN_UNTIL(&t, stats(&t).tcp_accepted == 1);
	CHECK_EQ(stats(&t).tcp_accepted, 1);
	fcntl(cl.fd, F_SETFL, fcntl(cl.fd, F_GETFL) | O_NONBLOCK);
	CHECK_EQ(cl_send_frame(&cl, "works", 5), 0);
	{
		double end = mono() + WAIT_S;
		while (!got && mono() < end) {
			ev_run(t.loop, EVRUN_ONCE);
			got = cl_frame(&cl, fr, &len);
		}
	}
	CHECK(got && len == 5 && !memcmp(fr, "works", 5));
	cl_close(&cl);
	teardown(&t);
}

TEST(tcp_max_conns)
{
	struct net_config c;
	struct ctx t;
	struct client a, b;
	uint8_t fr[64];
	size_t len = 0;
	int port, got = 0;

	net_config_default(&c);
	c.max_conns = 1;
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	cl_open(&a, port, 0);
	REQUIRE(cl_hello(&t, &a) != 0);
	cl_open(&b, port, 0);
	REQUIRE(b.fd >= 0);
	RUN_UNTIL(&t, stats(&t).tcp_refused == 1);
	CHECK_EQ(stats(&t).tcp_refused, 1);
	RUN_UNTIL(&t, (cl_pump(&b), b.eof || b.err));
	CHECK_EQ(b.err, ECONNRESET);
	t.echo = 1;
	CHECK_EQ(cl_send_frame(&a, "one", 3), 0);
	{
		double end = mono() + WAIT_S;
		while (!got && mono() < end) {
			ev_run(t.loop, EVRUN_ONCE);
			got = cl_frame(&a, fr, &len);
		}
	}
	CHECK(got && len == 3);
	CHECK_EQ(stats(&t).tcp_open, 1);
	cl_close(&a);
	cl_close(&b);
	teardown(&t);
}

/* A TCP client whose source is 127.0.0.x (Linux routes all of 127/8 to
 * loopback), non-blocking after connect; -1 on failure. */
static int
tcp_client_from(uint32_t ip, int port)
{
	struct sockaddr_in src = loopback(0), a = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	src.sin_addr.s_addr = htonl(ip);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* issue 14: one address holding connections does not keep a second
 * address out (max_conns_per_addr below max_conns). */
TEST(tcp_max_conns_per_addr)
{
	enum { PER = 50, HOG = 70 };
	struct net_config c;
	struct ctx t;
	struct client b;
	int fds[HOG], port, i, got = 0;
	uint8_t fr[64];
	size_t len = 0;

	net_config_default(&c);
	c.max_conns = 60;
	c.max_conns_per_addr = PER;
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	for (i = 0; i < HOG; i++) {
		fds[i] = tcp_client_from(0x7f000002, port);
		REQUIRE(fds[i] >= 0);
	}
	RUN_UNTIL(&t, stats(&t).tcp_accepted + stats(&t).tcp_refused_addr +
	              stats(&t).tcp_refused >= HOG);
	CHECK_EQ(stats(&t).tcp_open, PER);
	CHECK_EQ(stats(&t).tcp_refused_addr, HOG - PER);
	CHECK_EQ(stats(&t).tcp_refused, 0);
	/* another address gets in and is served */
	memset(&b, 0, sizeof(b));
	b.cap = 1 << 16;
	b.in = malloc(b.cap);
	b.fd = tcp_client_from(0x7f000003, port);
	REQUIRE(b.fd >= 0);
	t.echo = 1;
	CHECK_EQ(cl_send_frame(&b, "two", 3), 0);
	{
		double end = mono() + WAIT_S;
		while (!got && mono() < end) {
			ev_run(t.loop, EVRUN_ONCE);
			got = cl_frame(&b, fr, &len);
		}
	}
	CHECK(got && len == 3);
	CHECK_EQ(stats(&t).tcp_open, PER + 1);
	/* connections the first address closes are given back to it */
	for (i = 0; i < 5; i++) {
		close(fds[i]);
		fds[i] = -1;
	}
	RUN_UNTIL(&t, stats(&t).tcp_open == PER + 1 - 5);
	CHECK_EQ(stats(&t).tcp_open, PER + 1 - 5);
	for (i = 0; i < 5; i++) {
		fds[i] = tcp_client_from(0x7f000002, port);
		REQUIRE(fds[i] >= 0);
	}
	RUN_UNTIL(&t, stats(&t).tcp_open == PER + 1);
	CHECK_EQ(stats(&t).tcp_open, PER + 1);
	CHECK_EQ(stats(&t).tcp_refused_addr, HOG - PER);
	for (i = 0; i < HOG; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	cl_close(&b);
	teardown(&t);
}

/* The sources max_conns_per_addr counts: an IPv4 address, an IPv6 /64,
 * and an IPv4-mapped IPv6 address as its IPv4 address. */
static struct sockaddr_storage
sa_of(const char *text)
{
	struct sockaddr_storage a;
	memset(&a, 0, sizeof(a));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a;
		in6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, text, &in6->sin6_addr);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&a;
		in->sin_family = AF_INET;
		inet_pton(AF_INET, text, &in->sin_addr);
	}
	return a;
}

static uint64_t
key_of(struct ctx *t, const char *text)
{
	struct sockaddr_storage a = sa_of(text);
	return net_src_key(t->n, &a);
}

TEST(tcp_sources)
{
	struct net_config c;
	struct ctx t;
	char buf[64];
	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	CHECK(key_of(&t, "2001:db8:1:2::1") == key_of(&t, "2001:db8:1:2:ffff:1:2:3"));
	CHECK(key_of(&t, "2001:db8:1:2::1") != key_of(&t, "2001:db8:1:3::1"));
	CHECK(key_of(&t, "::ffff:192.0.2.7") == key_of(&t, "192.0.2.7"));
	CHECK(key_of(&t, "192.0.2.7") != key_of(&t, "192.0.2.8"));
	struct sockaddr_storage tmp_;
	tmp_ = sa_of("2001:db8:1:2:aaaa::9");
	CHECK(strcmp(net_src_text(&tmp_, buf, sizeof buf), "2001:db8:1:2::/64") == 0);
	tmp_ = sa_of("::ffff:192.0.2.7");
	CHECK(strcmp(net_src_text(&tmp_, buf, sizeof buf), "192.0.2.7") == 0);
	teardown(&t);
}

TEST(tcp_stale_ids)
{
	struct net_config c;
	struct ctx t;
	struct client a, b;
	struct gate_path p;
	uint32_t ida, idb;
	int port;

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	memset(&p, 0, sizeof(p));
	p.transport = GATE_TCP;
	p.conn = 0x12345678u;
	net_send(t.n, &p, (const uint8_t *)"x", 1);
	net_close(t.n, p.conn, NET_CLOSE_GRACEFUL);
	p.conn = 0;
	net_send(t.n, &p, (const uint8_t *)"x", 1);
	net_close(t.n, 0, NET_CLOSE_RESET);
	CHECK_EQ(stats(&t).tcp_dropped, 2);

	cl_open(&a, port, 0);
	ida = cl_hello(&t, &a);
	REQUIRE(ida != 0);
	p = t.last;
	close(a.fd);
	a.fd = -1;
	RUN_UNTIL(&t, t.nlost == 1);
	CHECK_EQ(t.nlost, 1);
	net_send(t.n, &p, (const uint8_t *)"x", 1);
	net_close(t.n, ida, NET_CLOSE_GRACEFUL);
	net_close(t.n, ida, NET_CLOSE_RESET);
	CHECK_EQ(stats(&t).tcp_dropped, 3);
	CHECK_EQ(stats(&t).tcp_closing, 0);
	/* a new connection gets a new id */
	cl_open(&b, port, 0);
	idb = cl_hello(&t, &b);
	CHECK(idb != 0 && idb != ida);
	cl_close(&a);
	cl_close(&b);
	teardown(&t);
}

TEST(tcp_backpressure)
{
	struct net_config c;
	struct ctx t;
	struct client a;
	struct gate_path p;
	static uint8_t blob[1000];
	uint32_t id;
	int port, i;
	double end;

	net_config_default(&c);
	c.tcp_sndbuf = 4096;
	c.conn_buffer_max = 32768;
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);
	cl_open(&a, port, 4096);  /* and it never reads */
	id = cl_hello(&t, &a);
	REQUIRE(id != 0);
	p = t.last;
	t.flush_in_lost = 1;
	memset(blob, 0x5a, sizeof(blob));
	end = mono() + WAIT_S;
	while (t.nlost == 0 && mono() < end) {
		for (i = 0; i < 8; i++)
			net_send(t.n, &p, blob, sizeof(blob));
		ev_run(t.loop, EVRUN_ONCE);
	}
	REQUIRE_EQ(t.nlost, 1);
	CHECK_EQ(t.lost_id[0], id);
	CHECK(!strcmp(t.lost_reason[0], "backpressure"));
	CHECK_EQ(stats(&t).tcp_backpressure, 1);
	CHECK_EQ(stats(&t).tcp_open, 0);
	VERBOSE("%llu frames queued before backpressure\n",
	        (unsigned long long)stats(&t).tcp_frames_out);
	net_send(t.n, &p, blob, sizeof(blob)); /* stale now: dropped */
	net_flush(t.n);
	CHECK_EQ(t.nlost, 1);
	cl_close(&a);
	teardown(&t);
}

/* The packet callback closes the connection whose frame it holds; frames
 * after it in the same read are not delivered. */
TEST(tcp_close_from_callback)
{
	struct net_config c;
	struct ctx t;
	struct client a, b;
	static const uint8_t three[] = { 1, 0, 'a', 1, 0, 'b', 1, 0, 'c' };
	int port;

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	port = listen_on(&t, NET_TCP, 0);
	REQUIRE(port > 0);

	t.close_in_packet = NET_CLOSE_RESET;
	cl_open(&a, port, 0);
	REQUIRE(a.fd >= 0);
	CHECK_EQ(send(a.fd, three, sizeof(three), MSG_NOSIGNAL), 9);
	RUN_UNTIL(&t, (cl_pump(&a), a.eof || a.err));
	CHECK_EQ(t.packets, 1);
	CHECK_EQ(a.err, ECONNRESET);

	t.close_in_packet = NET_CLOSE_GRACEFUL;
	cl_open(&b, port, 0);
	REQUIRE(b.fd >= 0);
	CHECK_EQ(send(b.fd, three, sizeof(three), MSG_NOSIGNAL), 9);
	RUN_UNTIL(&t, stats(&t).tcp_closing == 1);
	CHECK_EQ(stats(&t).tcp_closing, 1);
	CHECK_EQ(cl_send_frame(&b, "x", 1), 0);
	run_for(&t, 0.02);
	CHECK_EQ(t.packets, 2);
	close(b.fd);
	b.fd = -1;
	RUN_UNTIL(&t, stats(&t).tcp_closing == 0);
	CHECK_EQ(stats(&t).tcp_closing, 0);
	CHECK_EQ(stats(&t).tcp_closed, 2);
	CHECK_EQ(t.nlost, 0);
	cl_close(&a);
	cl_close(&b);
	teardown(&t);
}

/* net_release with everything in flight: open and closing connections,
 * queued TCP bytes, a pending UDP batch (ASan checks nothing leaks). */
TEST(release_busy)
{
	struct net_config c;
	struct ctx t;
	struct client a, b;
	struct gate_path pa, pu;
	struct sockaddr_in to;
	uint32_t ida, idb;
	int tport, uport, fd;
	uint8_t buf[64];

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	tport = listen_on(&t, NET_TCP, 0);
	uport = listen_on(&t, NET_UDP, 0);
	REQUIRE(tport > 0 && uport > 0);
	cl_open(&a, tport, 0);
	cl_open(&b, tport, 0);
	ida = cl_hello(&t, &a);
	pa = t.last;
	idb = cl_hello(&t, &b);
	REQUIRE(ida && idb);
	fd = udp_client();
	REQUIRE(fd >= 0);
	to = loopback(uport);
	sendto(fd, "u", 1, 0, (struct sockaddr *)&to, sizeof(to));
	RUN_UNTIL(&t, t.packets == 3);
	REQUIRE_EQ(t.last.transport, GATE_UDP);
	pu = t.last;
	net_send(t.n, &pa, (const uint8_t *)"queued", 6);
	net_send(t.n, &pu, (const uint8_t *)"pending", 7);
	net_close(t.n, idb, NET_CLOSE_GRACEFUL);
	CHECK_EQ(stats(&t).tcp_open, 1);
	CHECK_EQ(stats(&t).tcp_closing, 1);
	net_release(t.n);
	t.n = NULL;
	/* release flushed what was queued, then closed */
	{
		double end = mono() + WAIT_S;
		ssize_t r = -1;
		while (r < 0 && mono() < end)
			r = recv(fd, buf, sizeof(buf), 0);
		CHECK_EQ(r, 7);
	}
	RUN_UNTIL(&t, (cl_pump(&a), cl_pump(&b), a.eof && b.eof));
	CHECK(a.eof && b.eof);
	CHECK(a.len == 8 && !memcmp(a.in + 2, "queued", 6));
	CHECK_EQ(t.nlost, 0);
	close(fd);
	cl_close(&a);
	cl_close(&b);
	teardown(&t);
}

/* ---- the timer ---------------------------------------------------------- */

TEST(timer)
{
	struct net_config c;
	struct ctx t;
	uint64_t now, due;
	double t0;

	net_config_default(&c);
	REQUIRE(setup(&t, &c) == 0);
	now = net_now(t.n);
	CHECK(now > 0);
	ev_run(t.loop, EVRUN_ONCE);
	CHECK(net_now(t.n) >= now);

	/* replaced: only the later call counts */
	now = net_now(t.n);
	net_timer(t.n, now + 5000000);
	due = now + 30000;
	net_timer(t.n, due);
	t0 = mono();
	RUN_UNTIL(&t, t.timers == 1);
	CHECK_EQ(t.timers, 1);
	CHECK(t.timer_now >= due - 1000); /* loop time may lag by a tick */
	CHECK(mono() - t0 >= 0.025 && mono() - t0 < 1.0);
	run_for(&t, 0.05);
	CHECK_EQ(t.timers, 1);

	/* due in the past: the next iteration */
	net_timer(t.n, net_now(t.n) - 1000);
	ev_run(t.loop, EVRUN_NOWAIT);
	ev_run(t.loop, EVRUN_NOWAIT);
	CHECK_EQ(t.timers, 2);
	teardown(&t);
}

/* The UDP buffers: what was asked, unless net.core.rmem_max/wmem_max caps
 * it and the process lacks CAP_NET_ADMIN; the granted size is reported. */
static long
sysctl_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

TEST(udp_buffers)
{
	struct net_config c;
	struct ctx t;
	net_config_default(&c);
	CHECK_EQ(c.udp_rcvbuf, 4 << 20);
	CHECK_EQ(c.udp_sndbuf, 4 << 20);
	CHECK_EQ(c.tcp_rcvbuf, 0); /* TCP keeps the kernel's autotuning */
	c.udp_rcvbuf = 1 << 20;
	c.udp_sndbuf = 512 << 10;
	REQUIRE(setup(&t, &c) == 0);
	REQUIRE(listen_on(&t, NET_UDP, 0) > 0);
	struct net_stats st = stats(&t);
	long rmax = sysctl_long("/proc/sys/net/core/rmem_max");
	long wmax = sysctl_long("/proc/sys/net/core/wmem_max");
	if (tu_verbose)
		printf("granted rcvbuf %d sndbuf %d (rmem_max %ld wmem_max %ld)\n",
		       st.udp_rcvbuf, st.udp_sndbuf, rmax, wmax);
	/* never more than asked; at least what the sysctl allows */
	CHECK(st.udp_rcvbuf <= 1 << 20);
	CHECK(st.udp_sndbuf <= 512 << 10);
	CHECK(rmax < 0 || st.udp_rcvbuf >= (rmax < (1 << 20) ? rmax : 1 << 20));
	CHECK(wmax < 0 || st.udp_sndbuf >= (wmax < (512 << 10) ? wmax : 512 << 10));
	teardown(&t);
}

static const struct tu_test tests[] = {
	TU(udp_buffers),
	TU(udp_batched),
	TU(udp_unbatched),
	TU(udp_polling_mode),
	TU(udp_oversize_and_listeners),
	TU(tcp_frames_split_and_coalesced),
	TU(tcp_bad_frames),
	TU(tcp_hello_timeout),
	TU(tcp_eof_and_reset),
	TU(tcp_graceful_close_time_wait_on_client),
	TU(tcp_graceful_close_deadlines),
	TU(tcp_close_rst),
	TU(tcp_emfile_pauses_accept),
	TU(tcp_max_conns),
	TU(tcp_max_conns_per_addr),
	TU(tcp_sources),
	TU(tcp_stale_ids),
	TU(tcp_backpressure),
	TU(tcp_close_from_callback),
	TU(release_busy),
	TU(timer),
};

int
main(int argc, char **argv)
{
	return tu_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
