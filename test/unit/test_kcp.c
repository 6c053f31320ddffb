/*
 * test_kcp.c - unit tests of core/proto/kcp.c over the simulated network.
 *
 * Two objects A (k[0], output in simnet direction 0) and B (k[1], direction
 * 1) are driven in virtual time: every step delivers the datagrams due,
 * lets the application send and read, calls kcp_update on both and jumps to
 * the earliest of kcp_check() and the next datagram. Every loop has a
 * virtual-time deadline: a stuck protocol fails, it never hangs. Seeds are
 * fixed, so each run is identical.
 *
 * Run with -v to print details and the byte-exact wire vectors; any other
 * argument selects tests by substring.
 */
#include "kcp.h"
#include "kcpwire.h"
#include "simnet.h"
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSS(mtu) ((mtu) - KCP_OVERHEAD)

/* receive and expected-message buffers: larger than any message the tests
 * send (the largest is 256 fragments of mss 1376) */
static unsigned char rbuf[1 << 20];
static unsigned char ebuf[1 << 20];

static uint64_t
mix64(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Message idx of a flow: pseudo-random length in [minlen, maxlen] and
 * content, both derived from (seed, idx) so the receiver can recompute it. */
static int
msg_make(uint64_t seed, uint32_t idx, int minlen, int maxlen,
         unsigned char *buf)
{
	uint64_t h = mix64(seed ^ mix64((uint64_t)idx + 1));
	int len = minlen + (int)(h % (uint64_t)(maxlen - minlen + 1));
	int i;
	for (i = 0; i < len; i += 8) {
		uint64_t r = mix64(h + (uint64_t)i);
		int n = len - i < 8 ? len - i : 8;
		memcpy(buf + i, &r, (size_t)n);
	}
	return len;
}

/* ---- segment parsing: test/lib/kcpwire.h, independent of kcp.c ---- */

/* Write one segment header (and payload) at p; returns bytes written. */
static int
put_seg(unsigned char *p, uint32_t conv, int cmd, int frg, int wnd,
        uint32_t ts, uint32_t sn, uint32_t una, uint32_t len,
        const void *data, int datalen)
{
	kw_put32(p, conv);
	p[4] = (unsigned char)cmd;
	p[5] = (unsigned char)frg;
	p[6] = (unsigned char)wnd;
	p[7] = (unsigned char)(wnd >> 8);
	kw_put32(p + 8, ts);
	kw_put32(p + 12, sn);
	kw_put32(p + 16, una);
	kw_put32(p + 20, len);
	if (datalen > 0)
		memcpy(p + KCP_OVERHEAD, data, (size_t)datalen);
	return KCP_OVERHEAD + datalen;
}

static int
cmd_index(int cmd)
{
	return cmd >= KCP_CMD_PUSH && cmd <= KCP_CMD_WINS ? cmd - KCP_CMD_PUSH
	                                                   : -1;
}

/* ---- two objects over simnet ---- */

struct flow {            /* messages from k[d] to k[1-d] */
	uint64_t seed;
	int minlen, maxlen;
	int total, sent, recvd;
	int bad;             /* messages that arrived wrong */
	int sendq;           /* keep kcp_waitsnd below this; 0 = all at once */
	int reading;         /* receiver calls kcp_recv (if total > 0) */
	int recv_err;        /* last unexpected kcp_recv result */
};

struct dirseg {          /* what one side has put on the wire */
	uint64_t datagrams, cmd[4];
	uint32_t first[4], last[4]; /* time of first and last by command */
	int last_wnd;        /* wnd field of the newest segment */
	uint64_t zero_wnd;   /* segments advertising wnd 0 */
	uint32_t max_una;    /* highest una sent (sn origin 0) */
	uint64_t malformed;  /* datagrams that did not parse */
	uint64_t oversize;   /* datagrams longer than the sender's mtu */
};

struct pair;
typedef void (*tap_fn)(struct pair *p, int dir, const struct kw_seg *s, int n);

struct side {
	struct pair *p;
	int dir;
};

struct pair {
	simnet_t *net;
	kcp_t *k[2];
	struct side side[2];
	uint32_t now, start;
	int fine;            /* 0: jump to the next event; 1: step 1 ms;
	                        2: step a random 1..gap ms (updates at odd times) */
	int allow_oversize;  /* datagrams > the current mtu are expected */
	int input_at;        /* 1: kcp_input_at(now), as the session layer does */
	struct flow f[2];
	struct dirseg ds[2];
	tap_fn tap;
	void *tapctx;
	long input_errors;   /* kcp_input != 0 on datagrams simnet delivered */
	int last_input_rc;
	int update_rc[2];
	long steps;
	unsigned char pkt[KCP_MTU_MAX + 64];
	struct kw_seg segs[4096];
};

static int less(uint32_t a, uint32_t b);

static int
out_cb(const char *buf, int len, kcp_t *k, void *user)
{
	struct side *sd = user;
	struct pair *p = sd->p;
	struct dirseg *ds = &p->ds[sd->dir];
	int n, i;

	ds->datagrams++;
	n = kw_parse(buf, len, p->segs, 4096);
	if (len > kcp_getmtu(k))
		ds->oversize++;
	if (n <= 0) {
		ds->malformed++;
	} else {
		for (i = 0; i < n && i < 4096; i++) {
			const struct kw_seg *s = &p->segs[i];
			int c = cmd_index(s->cmd);
			if (c < 0 || s->conv != kcp_getconv(k)) {
				ds->malformed++;
				continue;
			}
			if (ds->cmd[c]++ == 0)
				ds->first[c] = p->now;
			ds->last[c] = p->now;
			ds->last_wnd = s->wnd;
			if (s->wnd == 0)
				ds->zero_wnd++;
			if (less(ds->max_una, s->una))
				ds->max_una = s->una;
		}
		if (p->tap)
			p->tap(p, sd->dir, p->segs, n < 4096 ? n : 4096);
	}
	simnet_send(p->net, sd->dir, buf, len, p->now);
	return 0;
}

static const struct simnet_conf perfect = { 0, 10, 10, 0, 0, 0, 0, 0, 0 };

static void
pair_init(struct pair *p, const struct simnet_conf *conf, uint64_t seed,
          uint32_t conv, uint32_t now)
{
	int d;
	memset(p, 0, sizeof(*p));
	p->net = simnet_create(conf, seed);
	p->now = p->start = now;
	for (d = 0; d < 2; d++) {
		p->side[d].p = p;
		p->side[d].dir = d;
		p->k[d] = kcp_create(conv, &p->side[d]);
		kcp_setoutput(p->k[d], out_cb);
		p->f[d].seed = seed * 2 + (uint64_t)d + 1;
		p->f[d].minlen = 1;
		p->f[d].maxlen = 1000;
		p->f[d].reading = 1;
	}
}

static void
pair_free(struct pair *p)
{
	kcp_release(p->k[0]);
	kcp_release(p->k[1]);
	simnet_free(p->net);
}

static void
pair_nodelay(struct pair *p, int nodelay, int interval, int resend, int nc)
{
	kcp_nodelay(p->k[0], nodelay, interval, resend, nc);
	kcp_nodelay(p->k[1], nodelay, interval, resend, nc);
}

static void
pair_deliver(struct pair *p)
{
	int d, n;
	for (d = 0; d < 2; d++) {
		while ((n = simnet_recv(p->net, d, p->pkt, (int)sizeof(p->pkt),
		                        p->now)) >= 0) {
			int rc = p->input_at ?
			         kcp_input_at(p->k[1 - d], (const char *)p->pkt, n, p->now) :
			         kcp_input(p->k[1 - d], (const char *)p->pkt, n);
			if (rc != 0) {
				p->input_errors++;
				p->last_input_rc = rc;
			}
		}
	}
}

static void
flow_send(struct pair *p, int d)
{
	struct flow *f = &p->f[d];
	while (f->sent < f->total &&
	       (f->sendq == 0 || kcp_waitsnd(p->k[d]) < f->sendq)) {
		int len = msg_make(f->seed, (uint32_t)f->sent, f->minlen,
		                   f->maxlen, ebuf);
		int rc = kcp_send(p->k[d], (const char *)ebuf, len);
		if (rc != 0) {
			TU_FAIL("flow %d: kcp_send(msg %d, len %d) = %d (%s)", d,
			        f->sent, len, rc, kcp_strerror(rc));
			f->sendq = -1; /* stop sending */
			return;
		}
		f->sent++;
	}
}

static void
flow_recv(struct pair *p, int d)
{
	struct flow *f = &p->f[d];
	kcp_t *r = p->k[1 - d];
	int n;
	if (!f->reading || f->total == 0) /* no flow: the test reads itself */
		return;
	while ((n = kcp_recv(r, (char *)rbuf, (int)sizeof(rbuf))) >= 0) {
		int elen;
		if (f->recvd >= f->total) {
			TU_FAIL("flow %d: extra message of %d bytes", d, n);
			f->bad++;
			continue;
		}
		elen = msg_make(f->seed, (uint32_t)f->recvd, f->minlen,
		                f->maxlen, ebuf);
		if (n != elen || memcmp(rbuf, ebuf, (size_t)n) != 0) {
			if (f->bad == 0)
				TU_FAIL("flow %d: message %d wrong: got %d bytes, "
				        "expected %d%s", d, f->recvd, n, elen,
				        n == elen ? " (content differs)" : "");
			f->bad++;
		}
		f->recvd++;
	}
	if (n != KCP_EAGAIN)
		f->recv_err = n;
}

static int
less(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static void
pair_advance(struct pair *p)
{
	uint32_t next = p->now + 60000, t;
	int d;
	for (d = 0; d < 2; d++) {
		t = kcp_check(p->k[d], p->now);
		if (less(t, next))
			next = t;
		if (simnet_next(p->net, d, &t) == 0 && less(t, next))
			next = t;
	}
	if (p->fine == 1 || !less(p->now, next))
		next = p->now + 1;
	else if (p->fine == 2)
		next = p->now + 1 + (uint32_t)(simnet_rand(p->net) % (next - p->now));
	p->now = next;
}

static void
pair_step(struct pair *p)
{
	int d;
	pair_deliver(p);
	for (d = 0; d < 2; d++)
		flow_send(p, d);
	for (d = 0; d < 2; d++)
		p->update_rc[d] = kcp_update(p->k[d], p->now);
	for (d = 0; d < 2; d++)
		flow_recv(p, d);
	p->steps++;
	pair_advance(p);
}

typedef int (*done_fn)(struct pair *p);

/* Step until done(p); 0 when limit_ms of virtual time passed first. */
static int
pair_run(struct pair *p, done_fn done, uint32_t limit_ms)
{
	uint32_t start = p->now;
	while (!done(p)) {
		if (p->now - start >= limit_ms)
			return 0;
		pair_step(p);
	}
	return 1;
}

/* Run for ms of virtual time regardless. */
static void
pair_for(struct pair *p, uint32_t ms)
{
	uint32_t start = p->now;
	while (p->now - start < ms)
		pair_step(p);
}

static int
flows_done(struct pair *p)
{
	return p->f[0].recvd >= p->f[0].total && p->f[1].recvd >= p->f[1].total;
}

static int
flows_acked(struct pair *p)
{
	return flows_done(p) && kcp_waitsnd(p->k[0]) == 0 &&
	       kcp_waitsnd(p->k[1]) == 0;
}

static int
flows_quiet(struct pair *p)
{
	return flows_acked(p) && kcp_idle(p->k[0]) && kcp_idle(p->k[1]) &&
	       simnet_queued(p->net, 0) == 0 && simnet_queued(p->net, 1) == 0;
}

/* Checks shared by every transfer: all delivered intact and in order, no
 * valid datagram refused, no malformed output, nobody dead. */
static void
check_flows(struct pair *p, const char *what)
{
	int d;
	for (d = 0; d < 2; d++) {
		if (p->f[d].recvd != p->f[d].total || p->f[d].bad != 0)
			TU_FAIL("%s: flow %d: %d of %d received, %d wrong, at t+%u "
			        "ms (waitsnd %d)", what, d, p->f[d].recvd,
			        p->f[d].total, p->f[d].bad, p->now - p->start,
			        kcp_waitsnd(p->k[d]));
		CHECK_EQ(p->f[d].recv_err, 0);
		CHECK_EQ(p->ds[d].malformed, 0);
		if (!p->allow_oversize)
			CHECK_EQ(p->ds[d].oversize, 0);
		CHECK_EQ(kcp_isdead(p->k[d]), 0);
	}
	if (p->input_errors)
		TU_FAIL("%s: kcp_input refused %ld valid datagrams (last %d %s)",
		        what, p->input_errors, p->last_input_rc,
		        kcp_strerror(p->last_input_rc));
}

/* ---- simnet itself ---- */

TEST(simnet_determinism)
{
	struct simnet_conf c = { 0.2, 10, 50, 5, 0.2, 0.1, 0, 0, 0 };
	simnet_t *a = simnet_create(&c, 42), *b = simnet_create(&c, 42);
	simnet_t *x = simnet_create(&c, 43);
	uint32_t now = 0xFFFFFF00u; /* crosses the wrap */
	uint64_t ha = 0, hb = 0, hx = 0;
	int i, d, n;
	unsigned char buf[64];
	REQUIRE(a && b && x);
	for (i = 0; i < 5000; i++, now++) {
		for (d = 0; d < 2; d++) {
			kw_put32(buf, (uint32_t)i);
			simnet_send(a, d, buf, 4 + i % 60, now);
			simnet_send(b, d, buf, 4 + i % 60, now);
			simnet_send(x, d, buf, 4 + i % 60, now);
			while ((n = simnet_recv(a, d, buf, 64, now)) >= 0)
				ha = mix64(ha ^ kw_get32(buf) ^ (uint64_t)n << 32 ^ now);
			while ((n = simnet_recv(b, d, buf, 64, now)) >= 0)
				hb = mix64(hb ^ kw_get32(buf) ^ (uint64_t)n << 32 ^ now);
			while ((n = simnet_recv(x, d, buf, 64, now)) >= 0)
				hx = mix64(hx ^ kw_get32(buf) ^ (uint64_t)n << 32 ^ now);
		}
	}
	CHECK(ha == hb);
	CHECK(ha != hx);
	CHECK(simnet_rand(a) == simnet_rand(b));
	simnet_free(a);
	simnet_free(b);
	simnet_free(x);
}

TEST(simnet_conditions)
{
	struct simnet_conf c = { 0.1, 20, 40, 0, 0, 0, 0, 0, 0 };
	simnet_t *n = simnet_create(&c, 7);
	struct simnet_stats st;
	unsigned char buf[16];
	uint32_t now = 0, when, lastsn = 0, i;
	int got = 0, r, reordered = 0;

	REQUIRE(n != NULL);
	/* loss rate and delay bounds; packets carry their send time */
	for (i = 0; i < 100000; i++) {
		kw_put32(buf, now);
		simnet_send(n, 0, buf, 4, now);
		if (i % 10 == 9)
			now++;
		while ((r = simnet_recv(n, 0, buf, 16, now)) >= 0) {
			uint32_t d = now - kw_get32(buf);
			CHECK(r == 4 && d >= 20 && d <= 41);
			got++;
		}
	}
	CHECK_EQ(simnet_next(n, 0, &when), 0);
	CHECK_EQ(simnet_next(n, 1, &when), -1);
	CHECK_EQ(simnet_recv(n, 1, buf, 16, now), -1);
	for (now += 100; simnet_recv(n, 0, buf, 16, now) >= 0; got++)
		;
	simnet_getstats(n, &st);
	CHECK(st.lost[0] > 9000 && st.lost[0] < 11000);
	CHECK_EQ(st.sent[0], 100000);
	CHECK_EQ(st.bytes[0], 400000);
	CHECK_EQ(st.delivered[0], (uint64_t)got);
	CHECK_EQ(st.lost[0] + st.delivered[0], 100000);
	simnet_free(n);

	/* without reorder, equal delays keep order; with it, some overtake */
	c.loss = 0;
	c.delay_min = c.delay_max = 30;
	c.reorder = 0.2;
	n = simnet_create(&c, 8);
	for (i = 0, now = 0; i < 20000; i++, now++) {
		kw_put32(buf, i);
		simnet_send(n, 1, buf, 4, now);
		while (simnet_recv(n, 1, buf, 16, now) >= 0) {
			if (kw_get32(buf) < lastsn)
				reordered++;
			lastsn = kw_get32(buf);
		}
	}
	CHECK(reordered > 1000);
	/* in_order: never reordered, even with reorder and jitter */
	c.in_order = 1;
	c.jitter = 50;
	c.dup = 0.3;
	simnet_setconf(n, &c);
	for (now += 1000; simnet_recv(n, 1, buf, 16, now) >= 0;)
		;
	for (i = 0, lastsn = 0, reordered = 0; i < 20000; i++, now++) {
		kw_put32(buf, i);
		simnet_send(n, 1, buf, 4, now);
		while (simnet_recv(n, 1, buf, 16, now) >= 0) {
			if (kw_get32(buf) < lastsn)
				reordered++;
			lastsn = kw_get32(buf);
		}
	}
	CHECK_EQ(reordered, 0);
	simnet_getstats(n, &st);
	CHECK(st.duplicated[1] > 5000 && st.duplicated[1] < 7000);
	simnet_free(n);
}

TEST(simnet_capacity_bandwidth)
{
	struct simnet_conf c = { 0, 10, 10, 0, 0, 0, 0, 100, 10000 };
	simnet_t *n = simnet_create(&c, 9);
	struct simnet_stats st;
	static unsigned char big[2000];
	uint32_t when, now = 5;
	int i, cnt = 0;

	REQUIRE(n != NULL);
	/* 10 packets of 1000 bytes at 10000 B/s: 100 ms each on the link */
	for (i = 0; i < 10; i++)
		simnet_send(n, 0, big, 1000, now);
	CHECK_EQ(simnet_next(n, 0, &when), 0);
	CHECK_EQ(when, now + 100 + 10);
	CHECK_EQ(simnet_recv(n, 0, big, 2000, now + 109), -1);
	CHECK_EQ(simnet_recv(n, 0, big, 2000, now + 110), 1000);
	CHECK_EQ(simnet_recv(n, 0, big, 2000, now + 209), -1);
	CHECK_EQ(simnet_recv(n, 0, big, 2000, now + 210), 1000);
	while (simnet_recv(n, 0, big, 2000, now + 1009) >= 0)
		cnt++;
	CHECK_EQ(cnt, 7);
	CHECK_EQ(simnet_recv(n, 0, big, 10, now + 1010), 10); /* truncated */
	CHECK_EQ(simnet_queued(n, 0), 0);
	/* the link drained meanwhile: the next one waits only its own 100 ms */
	now += 5000;
	simnet_send(n, 0, big, 1000, now);
	CHECK_EQ(simnet_next(n, 0, &when), 0);
	CHECK_EQ(when, now + 110);
	CHECK_EQ(simnet_recv(n, 0, big, 2000, now + 110), 1000);

	/* capacity: 100 queued, the rest overflow */
	c.bandwidth = 0;
	simnet_setconf(n, &c);
	for (i = 0; i < 150; i++)
		simnet_send(n, 1, big, 1, now);
	CHECK_EQ(simnet_queued(n, 1), 100);
	simnet_getstats(n, &st);
	CHECK_EQ(st.overflow[1], 50);
	CHECK_EQ(st.sent[1], 150);
	/* zero-length packets are packets */
	simnet_send(n, 0, NULL, 0, now);
	CHECK_EQ(simnet_recv(n, 0, big, 2000, now + 10), 0);
	simnet_free(n); /* frees the 100 still queued */
}

/* ---- delivery under loss, reordering and duplication ---- */

static void
run_delivery1(double loss, int fast, int count, uint32_t limit_ms,
              uint64_t seed, int stepmode)
{
	struct simnet_conf c = { loss, 20, 60, 10, 0.1, 0.05, 0, 0, 0 };
	struct pair p;
	struct kcp_stats st[2];
	char what[96];
	int d, ok;

	pair_init(&p, &c, seed, 0x11223344u, (uint32_t)(seed * 7919));
	p.fine = stepmode;
	if (fast)
		pair_nodelay(&p, 1, 10, 2, 1);
	else
		pair_nodelay(&p, 0, 10, 0, 0);
	for (d = 0; d < 2; d++) {
		p.f[d].total = count;
		p.f[d].maxlen = 3000;
		p.f[d].sendq = fast ? 0 : 64; /* fast: queue everything at once */
	}
	ok = pair_run(&p, flows_acked, limit_ms);
	snprintf(what, sizeof(what), "loss %.0f%% %s seed %llu step %d",
	         loss * 100, fast ? "fast" : "default",
	         (unsigned long long)seed, stepmode);
	if (!ok)
		TU_FAIL("%s: not done in %u ms", what, limit_ms);
	check_flows(&p, what);
	kcp_getstats(p.k[0], &st[0]);
	kcp_getstats(p.k[1], &st[1]);
	if (loss > 0) {
		CHECK(st[0].retrans_timeout + st[0].retrans_fast > 0);
		if (fast)
			CHECK(st[0].retrans_fast > 0);
	}
	CHECK(st[0].in_dup > 0 || st[1].in_dup > 0); /* simnet duplicates */
	CHECK(kcp_srtt(p.k[0]) > 0 && kcp_srtt(p.k[0]) < 1000);
	VERBOSE("    %s: %d msgs each way in %u ms virtual, %ld steps, "
	        "A out %llu datagrams %llu push (%llu timeout, %llu fast "
	        "resends), in_dup %llu, srtt %d rto %d\n",
	        what, count, p.now - p.start, p.steps,
	        (unsigned long long)st[0].out_datagrams,
	        (unsigned long long)st[0].out_push,
	        (unsigned long long)st[0].retrans_timeout,
	        (unsigned long long)st[0].retrans_fast,
	        (unsigned long long)st[1].in_dup, kcp_srtt(p.k[0]),
	        kcp_rto(p.k[0]));
	pair_free(&p);
}

/* Several seeds; every third run updates at random times between events
 * instead of exactly at kcp_check(). */
static void
run_delivery(double loss, int fast, int count, uint32_t limit_ms,
             uint64_t seed)
{
	int i;
	for (i = 0; i < 6; i++)
		run_delivery1(loss, fast, count, limit_ms, seed * 100 + (uint64_t)i,
		              i % 3 == 2 ? 2 : 0);
}

TEST(delivery_loss0_default) { run_delivery(0.0, 0, 2000, 600000, 101); }
TEST(delivery_loss0_fast) { run_delivery(0.0, 1, 2000, 600000, 102); }
TEST(delivery_loss10_default) { run_delivery(0.1, 0, 2000, 3600000, 103); }
TEST(delivery_loss10_fast) { run_delivery(0.1, 1, 2000, 3600000, 104); }
TEST(delivery_loss30_default) { run_delivery(0.3, 0, 500, 7200000, 105); }
TEST(delivery_loss30_fast) { run_delivery(0.3, 1, 1000, 7200000, 106); }

/* The classic KCP benchmark's link: FIFO, 1 ms stepping, 10% loss. */
TEST(delivery_in_order_fine_steps)
{
	struct simnet_conf c = { 0.1, 30, 30, 20, 0, 0, 1, 0, 0 };
	struct pair p;
	int d;
	pair_init(&p, &c, 107, 7, 0);
	p.fine = 1;
	pair_nodelay(&p, 2, 10, 2, 1);
	for (d = 0; d < 2; d++) {
		p.f[d].total = 500;
		p.f[d].maxlen = 2000;
		p.f[d].sendq = 128;
	}
	CHECK(pair_run(&p, flows_acked, 600000));
	check_flows(&p, "in_order");
	pair_free(&p);
}

/* ---- fragmentation: the largest message ---- */

static void
run_maxmsg(int mtu, int wnd, uint64_t seed)
{
	struct simnet_conf c = { 0.05, 10, 30, 5, 0.05, 0.02, 0, 0, 0 };
	struct pair p;
	int d, max, eff = wnd < KCP_WND_RCV_DEFAULT ? KCP_WND_RCV_DEFAULT : wnd;
	char what[64];

	if (eff > KCP_FRG_MAX)
		eff = KCP_FRG_MAX;
	pair_init(&p, &c, seed, 99, 0);
	for (d = 0; d < 2; d++) {
		CHECK_EQ(kcp_setmtu(p.k[d], mtu), 0);
		CHECK_EQ(kcp_getmtu(p.k[d]), mtu);
		CHECK_EQ(kcp_wndsize(p.k[d], 64, wnd), 0);
	}
	max = kcp_maxmsg(p.k[0]);
	CHECK_EQ(max, MSS(mtu) * eff);
	CHECK_EQ(kcp_maxmsg(p.k[1]), max);
	/* one byte more is refused and changes nothing */
	CHECK_EQ(kcp_send(p.k[0], (const char *)ebuf, max + 1), KCP_ETOOBIG);
	CHECK_EQ(kcp_send(p.k[0], (const char *)ebuf, max * 2), KCP_ETOOBIG);
	CHECK_EQ(kcp_send(p.k[0], (const char *)ebuf, 0x7FFFFFFF), KCP_ETOOBIG);
	CHECK_EQ(kcp_waitsnd(p.k[0]), 0);
	/* max-size messages both ways, then small ones */
	for (d = 0; d < 2; d++) {
		p.f[d].total = 3;
		p.f[d].minlen = max;
		p.f[d].maxlen = max;
		p.f[d].sendq = 0;
	}
	snprintf(what, sizeof(what), "maxmsg mtu %d wnd %d", mtu, wnd);
	CHECK(pair_run(&p, flows_acked, 600000));
	check_flows(&p, what);
	CHECK_EQ(kcp_send(p.k[1], (const char *)ebuf, max + 1), KCP_ETOOBIG);
	for (d = 0; d < 2; d++) {
		p.f[d].total = 3 + 20;
		p.f[d].minlen = 1;
		p.f[d].maxlen = max;
		p.f[d].seed += 1000;
		p.f[d].recvd = p.f[d].sent = 3;
	}
	CHECK(pair_run(&p, flows_acked, 600000));
	check_flows(&p, what);
	VERBOSE("    %s: maxmsg %d (%d fragments), done at t=%u ms\n", what,
	        max, eff, p.now);
	pair_free(&p);
}

TEST(fragment_max_default) { run_maxmsg(KCP_MTU_DEFAULT, 0, 201); }
TEST(fragment_max_mtu50) { run_maxmsg(KCP_MTU_MIN, 128, 202); }
TEST(fragment_max_mtu576_wnd256) { run_maxmsg(576, 256, 203); }
TEST(fragment_max_mtu1000_wnd300) { run_maxmsg(1000, 300, 204); }
TEST(fragment_max_mtu200_wnd170) { run_maxmsg(200, 170, 205); }

/* A message of more fragments than the receiver's window is an error the
 * receiver reports (KCP_ETOOBIG), instead of stalling silently. */
TEST(fragment_peer_too_big)
{
	struct pair p;
	int max, rc = KCP_EAGAIN;
	uint32_t t0;
	pair_init(&p, &perfect, 206, 5, 0);
	kcp_wndsize(p.k[0], 64, 256);  /* A may send 256 fragments */
	kcp_wndsize(p.k[1], 64, 128);  /* B can hold only 128 */
	max = kcp_maxmsg(p.k[0]);
	REQUIRE_EQ(max, MSS(KCP_MTU_DEFAULT) * 256);
	CHECK_EQ(kcp_send(p.k[0], (const char *)ebuf, max), 0);
	for (t0 = p.now; p.now - t0 < 60000 && rc == KCP_EAGAIN;) {
		pair_step(&p);
		rc = kcp_peeksize(p.k[1]);
	}
	CHECK_EQ(rc, KCP_ETOOBIG);
	CHECK_EQ(kcp_recv(p.k[1], (char *)rbuf, (int)sizeof(rbuf)), KCP_ETOOBIG);
	pair_free(&p);
}

/* ---- stream mode ---- */

TEST(stream_mode)
{
	struct simnet_conf c = { 0.1, 10, 40, 10, 0.1, 0.05, 0, 0, 0 };
	enum { TOTAL = 1 << 20 };
	struct pair p;
	unsigned char *src[2], *dst[2];
	int wr[2] = { 0, 0 }, rd[2] = { 0, 0 }, d, small = 0, chunks = 0;
	uint32_t t0;

	pair_init(&p, &c, 301, 77, 50);
	pair_nodelay(&p, 1, 10, 2, 1);
	for (d = 0; d < 2; d++) {
		int i;
		kcp_setstream(p.k[d], 1);
		src[d] = malloc(TOTAL);
		dst[d] = malloc(TOTAL);
		REQUIRE(src[d] && dst[d]);
		for (i = 0; i < TOTAL; i++)
			src[d][i] = (unsigned char)(mix64((uint64_t)i * 3 + (uint64_t)d) >> 7);
	}
	for (t0 = p.now; p.now - t0 < 600000;) {
		for (d = 0; d < 2; d++) {
			kcp_t *r = p.k[1 - d];
			int n, want;
			/* write random chunks while the queue is short */
			while (wr[d] < TOTAL && kcp_waitsnd(p.k[d]) < 200) {
				n = 1 + (int)(simnet_rand(p.net) % 5000);
				if (n > TOTAL - wr[d])
					n = TOTAL - wr[d];
				CHECK_EQ(kcp_send(p.k[d], (const char *)src[d] + wr[d], n), 0);
				wr[d] += n;
				chunks++;
			}
			/* read with a buffer of random size */
			while ((n = kcp_peeksize(r)) >= 0) {
				if (n > 1 && small++ % 7 == 0)
					CHECK_EQ(kcp_recv(r, (char *)rbuf, n - 1), KCP_ESMALL);
				want = n + (int)(simnet_rand(p.net) % 3000);
				n = kcp_recv(r, (char *)rbuf, want);
				REQUIRE(n >= 0);
				if (rd[d] + n > TOTAL) {
					TU_FAIL("stream %d: %d bytes too many", d, rd[d] + n - TOTAL);
					break;
				}
				memcpy(dst[d] + rd[d], rbuf, (size_t)n);
				rd[d] += n;
			}
		}
		if (rd[0] == TOTAL && rd[1] == TOTAL)
			break;
		pair_step(&p);
	}
	for (d = 0; d < 2; d++) {
		CHECK_EQ(rd[d], TOTAL);
		CHECK(memcmp(src[d], dst[d], (size_t)rd[d]) == 0);
		free(src[d]);
		free(dst[d]);
	}
	check_flows(&p, "stream");
	VERBOSE("    stream: 2 x %d bytes in %d chunks, %u ms virtual\n", TOTAL,
	        chunks, p.now - t0);
	pair_free(&p);
}

/* ---- wrap-around of sn and time at 2^32 ---- */

struct wrapseen {
	int sn_high, sn_low, ts_high, ts_low, una_low;
};

static void
wrap_tap(struct pair *p, int dir, const struct kw_seg *s, int n)
{
	struct wrapseen *w = p->tapctx;
	int i;
	(void)dir;
	for (i = 0; i < n; i++) {
		if (s[i].cmd == KCP_CMD_PUSH) {
			if (s[i].sn >= 0xFFFFFF00u)
				w->sn_high = 1;
			if (s[i].sn < 0x1000 && w->sn_high)
				w->sn_low = 1;
			if (s[i].ts >= 0xFFFFF000u)
				w->ts_high = 1;
			if (s[i].ts < 0x100000 && w->ts_high)
				w->ts_low = 1;
		}
		if (s[i].cmd == KCP_CMD_ACK && s[i].una < 0x1000 && w->sn_high)
			w->una_low = 1;
	}
}

static void
run_wrap(uint64_t seed, double loss, int fast, uint32_t start)
{
	struct simnet_conf c = { loss, 20, 60, 10, 0.1, 0.05, 0, 0, 0 };
	struct pair p;
	struct wrapseen w = { 0, 0, 0, 0, 0 };
	char what[64];
	int d;

	pair_init(&p, &c, seed, 0xCAFE, start);
	p.tap = wrap_tap;
	p.tapctx = &w;
	if (fast)
		pair_nodelay(&p, 1, 10, 0, 1); /* no fast resend: timers only */
	CHECK_EQ(kcp_setnext(p.k[0], 0xFFFFFF00u, 0xFFFFFF80u), 0);
	CHECK_EQ(kcp_setnext(p.k[1], 0xFFFFFF80u, 0xFFFFFF00u), 0);
	for (d = 0; d < 2; d++) {
		p.f[d].total = 1500;
		p.f[d].maxlen = 2000;
		p.f[d].sendq = 100;
	}
	p.fine = 1; /* 1 ms steps: every ms across the wrap is visited */
	snprintf(what, sizeof(what), "wraparound seed %llu",
	         (unsigned long long)seed);
	if (!pair_run(&p, flows_acked, 600000))
		TU_FAIL("%s: not done", what);
	check_flows(&p, what);
	CHECK(w.sn_high && w.sn_low && w.ts_high && w.ts_low && w.una_low);
	CHECK(less(0xFFFFFFFFu, p.now) && p.now < 0x80000000u);
	for (d = 0; d < 2; d++) {
		int srtt = kcp_srtt(p.k[d]), rto = kcp_rto(p.k[d]);
		CHECK(srtt > 0 && srtt < 1000);
		CHECK(rto > 0 && rto < 5000);
		VERBOSE("    %s: side %d srtt %d rto %d, end t=%u\n", what, d,
		        srtt, rto, p.now);
	}
	/* after traffic, setnext is refused */
	CHECK_EQ(kcp_setnext(p.k[0], 0, 0), KCP_EINVAL);
	pair_free(&p);
}

TEST(wraparound)
{
	run_wrap(401, 0.1, 0, 0xFFFFF000u);
	run_wrap(402, 0.2, 1, 0xFFFFF000u);
	run_wrap(403, 0.3, 1, 0xFFFFF800u);
	run_wrap(404, 0.2, 0, 0xFFFFFC00u);
}

/* Retransmission timers across the wrap of time at 2^32 (and at 2^31,
 * where a signed comparison would flip): the resend comes after about one
 * RTO, neither at once nor never. */
struct pushlog {
	uint32_t *now;
	uint32_t t[8];
	int n;
};

static int
pushlog_cb(const char *buf, int len, kcp_t *k, void *user)
{
	struct pushlog *l = user;
	struct kw_seg s[4];
	(void)k;
	if (kw_parse(buf, len, s, 4) >= 1 && s[0].cmd == KCP_CMD_PUSH &&
	    l->n < 8)
		l->t[l->n++] = *l->now;
	return 0;
}

TEST(timer_wrap)
{
	static const uint32_t starts[] = { 0xFFFFFF80u, 0xFFFFFFFFu, 0x7FFFFF80u,
	                                   0xFFFFFF30u, 0 };
	size_t i;
	for (i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		uint32_t now = starts[i], c;
		struct pushlog l;
		kcp_t *k = kcp_create(20, &l);
		memset(&l, 0, sizeof(l));
		l.now = &now;
		kcp_setoutput(k, pushlog_cb);
		kcp_nodelay(k, 0, 10, 0, 0);
		CHECK_EQ(kcp_send(k, "tick", 4), 0);
		for (; now - starts[i] < 5000; now++) {
			kcp_update(k, now);
			c = kcp_check(k, now);
			CHECK(!less(c, now) && c - now <= 10);
		}
		/* first at start; the initial RTO is 200 ms (+ 1/8), then it
		 * doubles: 2 or 3 resends in 5 s, never before 200 ms */
		CHECK(l.n >= 3 && l.n <= 5);
		CHECK_EQ(l.t[0], starts[i]);
		CHECK(l.t[1] - l.t[0] >= 200 && l.t[1] - l.t[0] <= 300);
		CHECK(l.t[2] - l.t[1] >= 200 && l.t[2] - l.t[1] <= 700);
		VERBOSE("    timer from %08x: push at +%u +%u +%u\n", starts[i],
		        l.t[1] - l.t[0], l.t[2] - l.t[0], l.t[3] - l.t[0]);
		kcp_release(k);
	}
}

/* kcp_setminrto bounds the measured RTO from below. */
TEST(minrto)
{
	struct pair p;
	int d;
	pair_init(&p, &perfect, 1801, 21, 0);
	pair_nodelay(&p, 1, 10, 2, 1); /* nodelay: min RTO 30 */
	kcp_setminrto(p.k[1], 700);
	for (d = 0; d < 2; d++)
		p.f[d].total = 100;
	CHECK(pair_run(&p, flows_acked, 60000));
	check_flows(&p, "minrto");
	VERBOSE("    minrto: srtt %d rto %d / srtt %d rto %d\n", kcp_srtt(p.k[0]),
	        kcp_rto(p.k[0]), kcp_srtt(p.k[1]), kcp_rto(p.k[1]));
	/* the link's RTT is 20 ms; kcp_input measures against the time of the
	 * last kcp_update, up to one interval (10 ms) stale */
	CHECK(kcp_srtt(p.k[0]) >= 10 && kcp_srtt(p.k[0]) <= 40);
	CHECK(kcp_rto(p.k[0]) < 100);
	CHECK(kcp_rto(p.k[1]) >= 700);
	pair_free(&p);
}

/* ---- the RTO on short and jittery links (issue 15) ---- */

/* The times A sent PUSH segments with sn (run_short_rtt's last message). */
struct snlog {
	uint32_t sn;
	int n;
	uint32_t t[64];
};

static void
tap_snlog(struct pair *p, int dir, const struct kw_seg *s, int n)
{
	struct snlog *l = p->tapctx;
	for (int i = 0; i < n; i++)
		if (dir == 0 && s[i].cmd == KCP_CMD_PUSH && s[i].sn == l->sn &&
		    l->n < 64)
			l->t[l->n++] = p->now;
}

/* A 2 ms RTT (1 ms each way), the session's profile (nodelay 1, interval
 * 10, resend 2, nc 1), acks timed at arrival (kcp_input_at): the RTO
 * follows the RTT down to srtt + 2 ms, or down to minrto. Then the link
 * goes silent: the first retransmission leaves one RTO after the send, not
 * at the next 10 ms flush, the timer backs off 1.5x per send and stays
 * under RTO_MAX, and the link dies after deadlink sends. */
static void
run_short_rtt(int minrto, int lo, int hi, uint64_t seed)
{
	struct simnet_conf c = { 0, 1, 1, 0, 0, 0, 0, 0, 0 };
	struct pair p;
	struct snlog log;
	pair_init(&p, &c, seed, 31, 1000);
	p.input_at = 1;
	pair_nodelay(&p, 1, 10, 2, 1);
	if (minrto > 0) {
		kcp_setminrto(p.k[0], minrto);
		kcp_setminrto(p.k[1], minrto);
	}
	for (int d = 0; d < 2; d++) {
		p.f[d].total = 300;
		p.f[d].sendq = 2; /* a trickle: every message waits for acks */
		p.f[d].maxlen = 100;
	}
	CHECK(pair_run(&p, flows_quiet, 60000));
	check_flows(&p, "short rtt");
	for (int d = 0; d < 2; d++) {
		VERBOSE("    minrto %d: side %d srtt %d rto %d\n", minrto, d,
		        kcp_srtt(p.k[d]), kcp_rto(p.k[d]));
		CHECK(kcp_srtt(p.k[d]) >= 1 && kcp_srtt(p.k[d]) <= 3);
		CHECK(kcp_rto(p.k[d]) >= lo && kcp_rto(p.k[d]) <= hi);
	}
	struct kcp_stats st;
	kcp_getstats(p.k[0], &st);
	CHECK_EQ(st.retrans_timeout + st.retrans_fast, 0); /* a steady link */

	/* silence: one message, never acked */
	int rto = kcp_rto(p.k[0]);
	struct simnet_conf dead = c;
	dead.loss = 1.0;
	simnet_setconf(p.net, &dead);
	memset(&log, 0, sizeof log);
	log.sn = 300; /* A's next sn: 300 messages of one segment went before */
	p.tap = tap_snlog;
	p.tapctx = &log;
	p.f[0].total = 301;
	kcp_setdeadlink(p.k[0], 12);
	uint32_t t0 = p.now;
	while (!kcp_isdead(p.k[0]) && p.now - t0 < 600000)
		pair_step(&p);
	CHECK(kcp_isdead(p.k[0]));
	REQUIRE_EQ(log.n, 12);
	VERBOSE("    silent: rto %d, sends at +%u +%u +%u +%u ... +%u\n", rto,
	        log.t[1] - log.t[0], log.t[2] - log.t[0], log.t[3] - log.t[0],
	        log.t[4] - log.t[0], log.t[11] - log.t[0]);
	CHECK_EQ(log.t[1] - log.t[0], (uint32_t)rto);
	uint32_t gap = log.t[1] - log.t[0];
	for (int i = 2; i < log.n; i++) {
		uint32_t g = log.t[i] - log.t[i - 1];
		/* nodelay 1: rto += rto / 2 (integer), capped at RTO_MAX */
		CHECK(g >= gap + gap / 2 - 1 && g <= gap + gap / 2 + 1);
		CHECK(g <= 60000);
		gap = g;
	}
	pair_free(&p);
}

TEST(rto_short_rtt_minrto1) { run_short_rtt(1, 3, 6, 1901); }
TEST(rto_short_rtt_minrto5) { run_short_rtt(5, 5, 6, 1902); }
/* kcp_nodelay's own floor, as classic: 30 ms whatever the RTT */
TEST(rto_short_rtt_nodelay_floor) { run_short_rtt(0, 30, 30, 1903); }

/* The classic timing (kcp_seteager 0) keeps the interval in the RTO: a
 * retransmission waits for a flush, so the RTO must cover one. */
TEST(rto_classic_interval)
{
	struct simnet_conf c = { 0, 1, 1, 0, 0, 0, 0, 0, 0 };
	struct pair p;
	pair_init(&p, &c, 1904, 32, 0);
	p.input_at = 1;
	pair_nodelay(&p, 1, 10, 2, 1);
	for (int d = 0; d < 2; d++) {
		kcp_seteager(p.k[d], 0);
		kcp_setminrto(p.k[d], 1);
		p.f[d].total = 100;
		p.f[d].sendq = 2;
	}
	CHECK(pair_run(&p, flows_quiet, 60000));
	check_flows(&p, "classic interval");
	for (int d = 0; d < 2; d++)
		CHECK(kcp_rto(p.k[d]) >= kcp_srtt(p.k[d]) + 10);
	/* the same object, eager again: the interval term goes at once (the
	 * acks waited for the peer's flush, so srtt and rttvar are larger
	 * than the link's 2 ms) */
	int before = kcp_rto(p.k[0]);
	kcp_seteager(p.k[0], KCP_EAGER_ALL);
	VERBOSE("    classic: srtt %d rto %d, eager: rto %d\n", kcp_srtt(p.k[0]),
	        before, kcp_rto(p.k[0]));
	CHECK(kcp_rto(p.k[0]) < before);
	pair_free(&p);
}

/* A jittery link: each way 1..8 ms plus up to 6 ms of jitter (RTT 2..28
 * ms, reordered at times), no loss, minrto 1 so that nothing but the
 * estimator stands between jitter and a spurious retransmission. Every
 * retransmission here is spurious: they stay a small fraction of the
 * segments (no storm: a spurious resend neither shrinks the estimate nor
 * leads to another), and the RTO stays within the link's RTT range plus
 * 4 x rttvar. The same with acks timed at the last update (kcp_input, the
 * classic clock: samples up to a step short) resends more: what timing
 * them at arrival (kcp_input_at) is for. */
/* Returns the fraction of PUSH segments resent, both sides together. */
static double
run_jitter(int input_at, uint64_t seed)
{
	struct simnet_conf c = { 0, 1, 8, 6, 0, 0, 0, 0, 0 };
	struct pair p;
	uint64_t resent = 0, push = 0;
	pair_init(&p, &c, seed, 33, 0);
	p.input_at = input_at;
	pair_nodelay(&p, 1, 10, 2, 1);
	for (int d = 0; d < 2; d++) {
		kcp_setminrto(p.k[d], 1);
		p.f[d].total = 3000;
		p.f[d].sendq = 4;
		p.f[d].maxlen = 200;
	}
	CHECK(pair_run(&p, flows_quiet, 600000));
	check_flows(&p, "jitter");
	for (int d = 0; d < 2; d++) {
		struct kcp_stats st;
		kcp_getstats(p.k[d], &st);
		VERBOSE("    jitter (input_at %d): side %d srtt %d rto %d, %llu of "
		        "%llu PUSH resent (%llu timeout, %llu fast)\n", input_at, d,
		        kcp_srtt(p.k[d]), kcp_rto(p.k[d]),
		        (unsigned long long)(st.retrans_timeout + st.retrans_fast),
		        (unsigned long long)st.out_push,
		        (unsigned long long)st.retrans_timeout,
		        (unsigned long long)st.retrans_fast);
		resent += st.retrans_timeout + st.retrans_fast;
		push += st.out_push;
		CHECK(kcp_rto(p.k[d]) >= 2 && kcp_rto(p.k[d]) <= 120);
	}
	pair_free(&p);
	return (double)resent / (double)push;
}

TEST(rto_jitter_no_storm)
{
	double at = run_jitter(1, 1905), stale = run_jitter(0, 1905);
	VERBOSE("    resent: %.2f%% timed at arrival, %.2f%% at the last update\n",
	        100 * at, 100 * stale);
	CHECK(at <= 0.01);
	CHECK(at < stale);
}

/* ---- a full receive window ---- */

static int
b_window_closed(struct pair *p)
{
	return p->ds[1].cmd[cmd_index(KCP_CMD_ACK)] > 0 && p->ds[1].last_wnd == 0;
}

TEST(window_full_recovers)
{
	struct simnet_conf c = { 0.05, 20, 30, 5, 0.05, 0.02, 0, 0, 0 };
	struct pair p;
	int w1, w2;
	size_t memb, memmax = 0;
	uint32_t t0;

	pair_init(&p, &c, 501, 3, 0);
	pair_nodelay(&p, 1, 10, 2, 1);
	p.f[0].total = 3000;
	p.f[0].maxlen = 1300; /* mostly one segment each */
	p.f[0].sendq = 0;     /* everything queued at once */
	p.f[0].reading = 0;   /* B does not read */
	CHECK(pair_run(&p, b_window_closed, 60000));
	w1 = kcp_waitsnd(p.k[0]);
	for (t0 = p.now; p.now - t0 < 5000;) {
		pair_step(&p);
		memb = kcp_memsize(p.k[1]);
		if (memb > memmax)
			memmax = memb;
	}
	w2 = kcp_waitsnd(p.k[0]);
	CHECK(w1 > 2000);          /* the sender is stuck with its queue */
	CHECK(w2 > 2000 && w2 <= w1);
	CHECK_EQ(p.ds[1].last_wnd, 0);
	CHECK_EQ(p.f[0].recvd, 0);
	CHECK_EQ(kcp_peeksize(p.k[1]) >= 0, 1);
	/* one segment per message, none read: B never acknowledged (took
	 * into its queue) more than its window */
	CHECK(p.ds[1].max_una <= KCP_WND_RCV_DEFAULT);
	/* the receiver holds at most about a window of data */
	CHECK(memmax < (size_t)KCP_WND_RCV_DEFAULT * 2 * (KCP_MTU_DEFAULT + 200));
	VERBOSE("    window full: waitsnd %d then %d, receiver holds %zu bytes\n",
	        w1, w2, memmax);
	p.f[0].reading = 1;
	CHECK(pair_run(&p, flows_acked, 600000));
	check_flows(&p, "window full");
	pair_free(&p);
}

/* ---- window probing ---- */

TEST(window_probe)
{
	struct pair p;
	int wask = cmd_index(KCP_CMD_WASK), wins = cmd_index(KCP_CMD_WINS);
	uint32_t t0, tclosed, tread;
	uint64_t push_before;

	pair_init(&p, &perfect, 601, 4, 0);
	p.f[0].total = 400;
	p.f[0].maxlen = 1000;
	p.f[0].reading = 0;
	CHECK(pair_run(&p, b_window_closed, 60000));
	tclosed = p.now;
	/* wait for the sender to probe and the receiver to answer */
	for (t0 = p.now; p.now - t0 < 300000 &&
	     !(p.ds[0].cmd[wask] > 0 && p.ds[1].cmd[wins] > 0);)
		pair_step(&p);
	CHECK(p.ds[0].cmd[wask] > 0);
	CHECK(p.ds[1].cmd[wins] > 0);
	CHECK(!less(p.ds[1].first[wins], p.ds[0].first[wask]));
	CHECK_EQ(p.ds[1].last_wnd, 0); /* the answer: still closed */
	VERBOSE("    probe: window closed at %u, WASK at %u, WINS at %u\n",
	        tclosed, p.ds[0].first[wask], p.ds[1].first[wins]);
	/* it keeps probing, with backoff, while the window stays closed */
	pair_for(&p, 120000);
	CHECK(p.ds[0].cmd[wask] >= 2);
	CHECK(p.ds[0].cmd[wask] < 60);
	CHECK_EQ(p.f[0].recvd, 0);
	/* the receiver reads: the sender learns quickly (a WINS from the
	 * receiver or the probe), at worst within one probe period */
	push_before = p.ds[0].cmd[0];
	p.f[0].reading = 1;
	tread = p.now;
	/* the receiver tells (WINS) as soon as its window reopens: the sender
	 * resumes within a few flushes, not a probe period (up to 120 s) */
	for (t0 = p.now; p.ds[0].cmd[0] == push_before && p.now - t0 < 10000;)
		pair_step(&p);
	CHECK(p.ds[0].cmd[0] > push_before);
	CHECK(p.now - tread < 1000);
	CHECK(p.ds[1].last_wnd > 0);
	VERBOSE("    probe: sender resumed %u ms after the receiver read\n",
	        p.now - tread);
	pair_run(&p, flows_acked, 600000);
	check_flows(&p, "probe");
	CHECK(p.ds[0].cmd[0] > push_before);
	VERBOSE("    probe: reading at %u, done at %u (%llu WASK, %llu WINS)\n",
	        tread, p.now, (unsigned long long)p.ds[0].cmd[wask],
	        (unsigned long long)p.ds[1].cmd[wins]);
	pair_free(&p);
}

/* ---- dead link ---- */

static void
count_push_tap(struct pair *p, int dir, const struct kw_seg *s, int n)
{
	uint64_t *cnt = p->tapctx;
	int i;
	for (i = 0; i < n; i++)
		if (dir == 0 && s[i].cmd == KCP_CMD_PUSH && s[i].sn < 2)
			cnt[s[i].sn]++;
}

static void
run_deadlink(int nodelay, int deadlink, uint32_t limit_ms)
{
	uint64_t sends[2] = { 0, 0 };
	struct simnet_conf c = perfect;
	struct pair p;
	struct kcp_stats st;
	uint64_t push_at_death;
	uint32_t t0, tdead = 0;
	int rc = 0;

	c.loss = 1.0;
	pair_init(&p, &c, 701, 8, 123);
	p.tap = count_push_tap;
	p.tapctx = sends;
	if (nodelay)
		pair_nodelay(&p, nodelay, 10, 2, 1);
	if (deadlink)
		kcp_setdeadlink(p.k[0], deadlink);
	CHECK_EQ(kcp_send(p.k[0], "ping", 4), 0);
	CHECK_EQ(kcp_send(p.k[0], "pong", 4), 0);
	for (t0 = p.now; p.now - t0 < limit_ms;) {
		pair_step(&p);
		if (p.update_rc[0] != 0) {
			rc = p.update_rc[0];
			tdead = p.now - t0;
			break;
		}
	}
	if (rc != KCP_EDEAD) {
		kcp_getstats(p.k[0], &st);
		TU_FAIL("nodelay %d deadlink %d: not dead after %u ms virtual of "
		        "silence (%llu PUSH sent, isdead %d)", nodelay,
		        deadlink ? deadlink : 20, limit_ms,
		        (unsigned long long)st.out_push, kcp_isdead(p.k[0]));
		pair_free(&p);
		return;
	}
	CHECK_EQ(kcp_isdead(p.k[0]), 1);
	CHECK_EQ(kcp_isdead(p.k[1]), 0);
	CHECK_EQ(kcp_send(p.k[0], "x", 1), KCP_EDEAD);
	CHECK_EQ(kcp_update(p.k[0], p.now), KCP_EDEAD);
	kcp_getstats(p.k[0], &st);
	push_at_death = p.ds[0].cmd[0];
	/* the first segment was sent exactly deadlink times (the second,
	 * behind it in a congestion window of 1, perhaps fewer) */
	CHECK_EQ(sends[0], deadlink ? deadlink : 20);
	CHECK(sends[1] <= sends[0]);
	CHECK_EQ(st.out_push, sends[0] + sends[1]);
	/* no more data after death */
	pair_for(&p, 600000);
	CHECK_EQ(p.ds[0].cmd[0], push_at_death);
	CHECK_EQ(kcp_isdead(p.k[0]), 1);
	CHECK_EQ(p.update_rc[0], KCP_EDEAD);
	VERBOSE("    dead (nodelay %d, deadlink %d) after %u ms, %llu PUSH\n",
	        nodelay, deadlink ? deadlink : 20, tdead,
	        (unsigned long long)push_at_death);
	pair_free(&p);
}

TEST(deadlink_default) { run_deadlink(0, 0, 3600000); }
TEST(deadlink_fast) { run_deadlink(1, 0, 3600000); }
TEST(deadlink_short) { run_deadlink(2, 4, 600000); }

/* ---- bad input ---- */

/* A normal exchange afterwards delivers everything in order. */
static void
after_bad_input(struct pair *p, const char *what)
{
	int d;
	for (d = 0; d < 2; d++) {
		p->f[d].total += 200;
		p->f[d].sendq = 32;
	}
	CHECK(pair_run(p, flows_acked, 600000));
	check_flows(p, what);
}

TEST(bad_input_each)
{
	struct pair p;
	kcp_t *a, *b;
	static unsigned char d[KCP_MTU_MAX + 200];
	struct kcp_stats st0, st1;
	const uint32_t conv = 0x51515151u;
	int i, n, cmds[] = { 0, 1, 80, 85, 86, 255 };

	pair_init(&p, &perfect, 801, conv, 10);
	pair_nodelay(&p, 0, 10, 0, 1); /* no cwnd: all three go out at once */
	a = p.k[0];
	b = p.k[1];
	/* A has three segments in flight, not yet delivered */
	p.f[0].total = 3;
	p.f[0].maxlen = 100;
	flow_send(&p, 0);
	kcp_update(a, p.now);
	kcp_update(b, p.now);
	kcp_flush(a);
	REQUIRE_EQ(kcp_waitsnd(a), 3);
	kcp_getstats(a, &st0);

	CHECK(kcp_input(a, NULL, 0) < 0);
	CHECK(kcp_input(a, NULL, 24) < 0);
	CHECK(kcp_input(a, (const char *)d, 0) < 0);
	CHECK(kcp_input(a, (const char *)d, -1) < 0);
	put_seg(d, conv, KCP_CMD_ACK, 0, 128, 0, 0, 1, 0, NULL, 0);
	for (i = 1; i < KCP_OVERHEAD; i++)
		CHECK_EQ(kcp_input(a, (const char *)d, i), KCP_ETRUNC);
	/* len beyond the data */
	n = put_seg(d, conv, KCP_CMD_PUSH, 0, 128, 0, 0, 0, 10, "abcde", 5);
	CHECK_EQ(kcp_input(b, (const char *)d, n), KCP_ETRUNC);
	/* a 24-byte header plus a few bytes of a second header */
	n = put_seg(d, conv, KCP_CMD_ACK, 0, 128, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(a, (const char *)d, n + 5), KCP_ETRUNC);
	/* len > KCP_MTU_MAX, with and without the data present */
	n = put_seg(d, conv, KCP_CMD_PUSH, 0, 128, 0, 0, 0, KCP_MTU_MAX + 1,
	            NULL, 0) + KCP_MTU_MAX + 1; /* payload: whatever d holds */
	i = kcp_input(b, (const char *)d, n);
	CHECK(i == KCP_ELEN || i == KCP_ETRUNC);
	n = put_seg(d, conv, KCP_CMD_PUSH, 0, 128, 0, 0, 0, 0xFFFFFFFFu, "x", 1);
	i = kcp_input(b, (const char *)d, n);
	CHECK(i == KCP_ELEN || i == KCP_ETRUNC);
	n = put_seg(d, conv, KCP_CMD_PUSH, 0, 128, 0, 0, 0, 0x80000000u, "x", 1);
	i = kcp_input(b, (const char *)d, n);
	CHECK(i == KCP_ELEN || i == KCP_ETRUNC);
	/* wrong conv */
	n = put_seg(d, conv + 1, KCP_CMD_PUSH, 0, 128, 0, 0, 0, 3, "abc", 3);
	CHECK_EQ(kcp_input(b, (const char *)d, n), KCP_ECONV);
	n = put_seg(d, conv ^ 0x80000000u, KCP_CMD_ACK, 0, 128, 0, 0, 1, 0, NULL, 0);
	CHECK_EQ(kcp_input(a, (const char *)d, n), KCP_ECONV);
	/* unknown commands */
	for (i = 0; i < (int)(sizeof(cmds) / sizeof(cmds[0])); i++) {
		n = put_seg(d, conv, cmds[i], 0, 128, 0, 0, 0, 0, NULL, 0);
		CHECK_EQ(kcp_input(a, (const char *)d, n), KCP_ECMD);
		CHECK_EQ(kcp_input(b, (const char *)d, n), KCP_ECMD);
	}
	/* una beyond what was sent: A sent sn 0..2, B nothing */
	n = put_seg(d, conv, KCP_CMD_ACK, 0, 128, 0, 0, 4, 0, NULL, 0);
	CHECK_EQ(kcp_input(a, (const char *)d, n), KCP_EUNA);
	n = put_seg(d, conv, KCP_CMD_PUSH, 0, 128, 0, 0, 1000, 1, "z", 1);
	CHECK_EQ(kcp_input(a, (const char *)d, n), KCP_EUNA);
	n = put_seg(d, conv, KCP_CMD_WASK, 0, 128, 0, 0, 1, 0, NULL, 0);
	CHECK_EQ(kcp_input(b, (const char *)d, n), KCP_EUNA);
	n = put_seg(d, conv, KCP_CMD_PUSH, 0, 128, 0, 0, 0x7FFFFFFFu, 1, "z", 1);
	CHECK_EQ(kcp_input(b, (const char *)d, n), KCP_EUNA);
	/* an ACK for an sn never sent */
	n = put_seg(d, conv, KCP_CMD_ACK, 0, 128, 0, 3, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(a, (const char *)d, n), KCP_EUNA);
	n = put_seg(d, conv, KCP_CMD_ACK, 0, 128, 0, 100, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(a, (const char *)d, n), KCP_EUNA);
	n = put_seg(d, conv, KCP_CMD_ACK, 0, 128, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(b, (const char *)d, n), KCP_EUNA);

	/* a valid segment followed by a bad one: the whole datagram has no
	 * effect. An ACK acking everything A sent, then garbage. */
	n = put_seg(d, conv, KCP_CMD_ACK, 0, 128, p.now, 0, 3, 0, NULL, 0);
	n += put_seg(d + n, conv, KCP_CMD_ACK, 0, 128, p.now, 1, 3, 0, NULL, 0);
	n += put_seg(d + n, conv, KCP_CMD_ACK, 0, 128, p.now, 2, 3, 0, NULL, 0);
	CHECK_EQ(kcp_input(a, (const char *)d, n + 23), KCP_ETRUNC);
	put_seg(d + n, conv, 99, 0, 128, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(a, (const char *)d, n + 24), KCP_ECMD);
	put_seg(d + n, conv + 1, KCP_CMD_ACK, 0, 128, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(a, (const char *)d, n + 24), KCP_ECONV);
	put_seg(d + n, conv, KCP_CMD_ACK, 0, 128, 0, 50, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(a, (const char *)d, n + 24), KCP_EUNA);
	CHECK_EQ(kcp_waitsnd(a), 3);
	/* to B: a forged PUSH sn 0 (would be delivered instead of A's real
	 * message 0) followed by a bad segment */
	n = put_seg(d, conv, KCP_CMD_PUSH, 0, 128, 0, 0, 0, 6, "forged", 6);
	n += put_seg(d + n, conv, KCP_CMD_PUSH, 0, 128, 0, 1, 0, 6, "forged", 6);
	put_seg(d + n, conv, 0, 0, 128, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(b, (const char *)d, n + 24), KCP_ECMD);
	put_seg(d + n, conv, KCP_CMD_PUSH, 0, 128, 0, 2, 0, 10, "abc", 3);
	CHECK_EQ(kcp_input(b, (const char *)d, n + 27), KCP_ETRUNC);
	CHECK_EQ(kcp_peeksize(b), KCP_EAGAIN);
	CHECK_EQ(kcp_waitsnd(b), 0);
	CHECK_EQ(kcp_isdead(a) | kcp_isdead(b), 0);
	kcp_getstats(a, &st1);
	CHECK(st1.in_errors > st0.in_errors);
	CHECK_EQ(st1.in_segments, st0.in_segments);
	/* nothing queued for output by the refused datagrams: B has not
	 * even an ack to send */
	CHECK_EQ(kcp_idle(b), 1);
	after_bad_input(&p, "after bad input");
	pair_free(&p);
}

TEST(bad_input_random)
{
	struct pair p;
	static unsigned char d[4096];
	int i, j, neg = 0, total = 0;
	simnet_t *r = simnet_create(NULL, 902);

	pair_init(&p, &perfect, 901, 0xA5A5A5A5u, 0);
	p.f[0].total = p.f[1].total = 20;
	CHECK(pair_run(&p, flows_acked, 60000));
	/* pure garbage: random length and bytes */
	for (i = 0; i < 20000; i++) {
		int n = (int)(simnet_rand(r) % 1600);
		for (j = 0; j < n; j += 8) {
			uint64_t x = simnet_rand(r);
			memcpy(d + j, &x, 8);
		}
		total++;
		if (kcp_input(p.k[i & 1], (const char *)d, n) < 0)
			neg++;
		if ((i & 255) == 0)
			pair_step(&p);
	}
	CHECK_EQ(neg, total);
	/* garbage with the right conv and a plausible header: whatever the
	 * result, a datagram with an invalid cmd somewhere must be refused */
	for (i = 0, neg = total = 0; i < 20000; i++) {
		int n = 0, nseg = 1 + (int)(simnet_rand(r) % 4), s, bad;
		bad = (int)(simnet_rand(r) % (uint64_t)nseg);
		for (s = 0; s < nseg; s++) {
			uint64_t x = simnet_rand(r), y = simnet_rand(r);
			int len = (int)(x % 40), cmd = KCP_CMD_PUSH + (int)(y % 4);
			if (s == bad)
				cmd = (int)(y >> 8 & 0xFF);
			if (cmd >= KCP_CMD_PUSH && cmd <= KCP_CMD_WINS)
				cmd = 1;
			n += put_seg(d + n, 0xA5A5A5A5u, cmd, (int)(x >> 8 & 0xFF),
			             (int)(x >> 16 & 0xFFFF), (uint32_t)(y >> 20),
			             (uint32_t)(x >> 32) & 0x3FF, (uint32_t)(y >> 32) & 0x3F,
			             (uint32_t)len, d + 3000, len);
		}
		total++;
		if (kcp_input(p.k[i & 1], (const char *)d, n) < 0)
			neg++;
	}
	CHECK_EQ(neg, total);
	CHECK_EQ(kcp_peeksize(p.k[0]), KCP_EAGAIN);
	CHECK_EQ(kcp_peeksize(p.k[1]), KCP_EAGAIN);
	after_bad_input(&p, "after random input");
	simnet_free(r);
	pair_free(&p);
}

static int
discard_cb(const char *buf, int len, kcp_t *k, void *user)
{
	(void)buf;
	(void)len;
	(void)k;
	(void)user;
	return 0;
}

/* Mutations of real datagrams into throwaway objects: no crash, no
 * sanitizer report, whatever the result. */
TEST(bad_input_mutated)
{
	struct pair p;
	static unsigned char d[8][2048];
	int dl[8], nd = 0, i;
	kcp_t *victim[2];
	simnet_t *r = simnet_create(NULL, 1003);

	pair_init(&p, &perfect, 1001, 1234, 0);
	p.f[0].total = p.f[1].total = 8;
	p.f[0].maxlen = p.f[1].maxlen = 3000;
	/* collect some real datagrams from simnet as they pass */
	while (nd < 8 && p.now < 10000) {
		int n, dir;
		for (dir = 0; dir < 2 && nd < 8; dir++) {
			uint32_t t;
			if (simnet_next(p.net, dir, &t) == 0 && !less(p.now, t)) {
				n = simnet_recv(p.net, dir, d[nd], 2048, p.now);
				kcp_input(p.k[1 - dir], (const char *)d[nd], n);
				dl[nd++] = n;
			}
		}
		pair_step(&p);
	}
	REQUIRE(nd == 8);
	for (i = 0; i < 2; i++) {
		victim[i] = kcp_create(1234, NULL);
		kcp_setoutput(victim[i], discard_cb);
	}
	for (i = 0; i < 40000; i++) {
		static unsigned char m[2048];
		int k = (int)(simnet_rand(r) % 8), n = dl[k], flips, f;
		memcpy(m, d[k], (size_t)n);
		flips = 1 + (int)(simnet_rand(r) % 4);
		for (f = 0; f < flips; f++) {
			uint64_t x = simnet_rand(r);
			int pos = (int)(x % (uint64_t)n);
			if (x >> 40 & 1)
				m[pos] ^= (unsigned char)(1u << (x >> 32 & 7));
			else
				m[pos] = (unsigned char)(x >> 48);
		}
		if (simnet_rand(r) % 8 == 0)
			n = (int)(simnet_rand(r) % (uint64_t)(n + 1));
		kcp_input(victim[i & 1], (const char *)m, n);
		if ((i & 63) == 0) {
			char out[64];
			kcp_update(victim[i & 1], (uint32_t)i);
			kcp_check(victim[i & 1], (uint32_t)i);
			while (kcp_recv(victim[i & 1], out, sizeof(out)) >= 0)
				;
			kcp_memsize(victim[i & 1]);
		}
	}
	for (i = 0; i < 2; i++)
		kcp_release(victim[i]);
	simnet_free(r);
	pair_free(&p);
	CHECK(1);
}

/* ---- idle memory ---- */

TEST(idle_memory)
{
	struct simnet_conf c = { 0.1, 20, 40, 5, 0.05, 0.02, 0, 0, 0 };
	struct pair p;
	size_t fresh, busy = 0, after[2];
	int d;

	pair_init(&p, &c, 1101, 1, 0);
	fresh = kcp_memsize(p.k[0]);
	CHECK(fresh < 512);
	CHECK(fresh >= 64);
	CHECK_EQ(kcp_memsize(p.k[1]), fresh);
	printf("    idle bytes per object: %zu (classic allocates "
	       "3*(mtu+24)=%d up front)\n", fresh, 3 * (KCP_MTU_DEFAULT + 24));
	pair_nodelay(&p, 1, 10, 2, 1);
	for (d = 0; d < 2; d++) {
		p.f[d].total = 500;
		p.f[d].maxlen = 5000;
		p.f[d].sendq = 100;
	}
	while (!flows_done(&p) && p.now < 600000) {
		pair_step(&p);
		if (kcp_memsize(p.k[0]) > busy)
			busy = kcp_memsize(p.k[0]);
	}
	CHECK(pair_run(&p, flows_quiet, 600000));
	check_flows(&p, "idle memory");
	/* idle for a while: buffers are released */
	pair_for(&p, 3000);
	for (d = 0; d < 2; d++) {
		after[d] = kcp_memsize(p.k[d]);
		CHECK(after[d] <= fresh + 64);
		CHECK_EQ(kcp_idle(p.k[d]), 1);
	}
	CHECK(busy > fresh + 10000);
	printf("    memsize: fresh %zu, busy peak %zu, after exchange %zu / %zu\n",
	       fresh, busy, after[0], after[1]);
	pair_free(&p);
}

/* ---- byte-exact encoding ---- */

struct capture {
	unsigned char buf[4][2048];
	int len[4];
	int n;
};

static int
capture_cb(const char *buf, int len, kcp_t *k, void *user)
{
	struct capture *c = user;
	(void)k;
	if (c->n < 4 && len <= 2048) {
		memcpy(c->buf[c->n], buf, (size_t)len);
		c->len[c->n] = len;
	}
	c->n++;
	return 0;
}

/* One vector, as the header fields and payload in hex, then as one run. */
static void
hexline(const char *name, const unsigned char *p, int n)
{
	static const int fw[] = { 4, 1, 1, 2, 4, 4, 4, 4 };
	static const char *fn[] = { "conv", "cmd", "frg", "wnd", "ts", "sn",
	                            "una", "len" };
	int i, f, off = 0;
	printf("  %s (%d bytes)\n   ", name, n);
	for (f = 0; f < 8 && off + fw[f] <= n; f++) {
		printf(" %s=", fn[f]);
		for (i = 0; i < fw[f]; i++)
			printf("%02x", p[off++]);
	}
	if (off < n)
		printf(" data=");
	while (off < n)
		printf("%02x", p[off++]);
	printf("\n    ");
	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

TEST(wire_vectors)
{
	/* PUSH of "hello" from a fresh object, conv 0x01020304, first flush
	 * at t=1000:
	 *   04030201 conv, little-endian
	 *   51       cmd 81 PUSH
	 *   00       frg 0 (last fragment)
	 *   8000     wnd 128 (receive window, all free)
	 *   e8030000 ts 1000
	 *   00000000 sn 0
	 *   00000000 una 0
	 *   05000000 len 5
	 *   68656c6c6f "hello" */
	static const unsigned char push[] = {
		0x04, 0x03, 0x02, 0x01, 0x51, 0x00, 0x80, 0x00,
		0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
		0x68, 0x65, 0x6c, 0x6c, 0x6f,
	};
	/* The receiver's ACK, at its next flush (t=1100, interval 100):
	 *   04030201 conv
	 *   52       cmd 82 ACK
	 *   00       frg 0
	 *   7f00     wnd 127 (one message waiting to be read)
	 *   e8030000 ts 1000, echoed from the PUSH
	 *   00000000 sn 0, the segment acknowledged
	 *   01000000 una 1, next sn expected
	 *   00000000 len 0 */
	static const unsigned char ack[] = {
		0x04, 0x03, 0x02, 0x01, 0x52, 0x00, 0x7f, 0x00,
		0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	struct capture ca, cb;
	kcp_t *a, *b;
	char out[16];
	uint32_t t;

	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	a = kcp_create(0x01020304u, &ca);
	b = kcp_create(0x01020304u, &cb);
	REQUIRE(a && b);
	kcp_setoutput(a, capture_cb);
	kcp_setoutput(b, capture_cb);
	CHECK_EQ(kcp_send(a, "hello", 5), 0);
	/* the first update sets the flush clock and flushes */
	for (t = 1000; ca.n == 0 && t < 1100; t += 10)
		kcp_update(a, t);
	REQUIRE_EQ(ca.n, 1);
	CHECK_EQ(t - 10, 1000);
	CHECK_EQ(ca.len[0], (int)sizeof(push));
	CHECK_MEM(ca.buf[0], push, sizeof(push));

	kcp_update(b, 1000);
	CHECK_EQ(cb.n, 0);
	CHECK_EQ(kcp_input(b, (const char *)ca.buf[0], ca.len[0]), 0);
	/* acks do not wait for the flush interval (due at 1000 + 100): the
	 * next update sends it; not read yet, so the window says 127 */
	CHECK_EQ(kcp_check(b, 1010), 1010);
	kcp_update(b, 1010);
	REQUIRE_EQ(cb.n, 1);
	CHECK_EQ(kcp_recv(b, out, sizeof(out)), 5);
	CHECK_MEM(out, "hello", 5);
	kcp_update(b, 1100);
	REQUIRE_EQ(cb.n, 1); /* nothing more to say */
	CHECK_EQ(cb.len[0], (int)sizeof(ack));
	CHECK_MEM(cb.buf[0], ack, sizeof(ack));
	if (tu_verbose) {
		printf("wire vectors (little-endian; see the comments in "
		       "test/unit/test_kcp.c):\n");
		hexline("PUSH \"hello\", conv 0x01020304, fresh object, first "
		        "kcp_update at t=1000", ca.buf[0], ca.len[0]);
		hexline("ACK of it from a fresh receiver (message not yet read), "
		        "sent at its next update, t=1010", cb.buf[0], cb.len[0]);
	}
	CHECK_EQ(kcp_input(a, (const char *)cb.buf[0], cb.len[0]), 0);
	CHECK_EQ(kcp_waitsnd(a), 0);
	kcp_release(a);
	kcp_release(b);
}

/* ---- when acks and new data leave ---- */

TEST(eager_timing)
{
	struct capture ca, cb;
	kcp_t *a, *b;
	int eager;

	for (eager = 0; eager <= 1; eager++) {
		memset(&ca, 0, sizeof(ca));
		memset(&cb, 0, sizeof(cb));
		a = kcp_create(9, &ca);
		b = kcp_create(9, &cb);
		REQUIRE(a && b);
		kcp_setoutput(a, capture_cb);
		kcp_setoutput(b, capture_cb);
		if (!eager) {
			kcp_seteager(a, 0);
			kcp_seteager(b, 0);
		}
		kcp_update(a, 0);  /* flush clocks start: A due at 100, */
		kcp_update(b, 50); /* B at 150 */
		CHECK_EQ(kcp_send(a, "x", 1), 0);
		/* new data: due now when eager, at the interval otherwise */
		CHECK_EQ(kcp_check(a, 5), eager ? 5u : 100u);
		kcp_update(a, 5);
		CHECK_EQ(ca.n, eager);
		kcp_update(a, 100);
		REQUIRE_EQ(ca.n, 1);
		CHECK_EQ(kcp_input(b, (const char *)ca.buf[0], ca.len[0]), 0);
		/* the ack: the same */
		CHECK_EQ(kcp_check(b, 101), eager ? 101u : 150u);
		kcp_update(b, 101);
		CHECK_EQ(cb.n, eager);
		kcp_update(b, 150);
		REQUIRE_EQ(cb.n, 1);
		CHECK_EQ(kcp_input(a, (const char *)cb.buf[0], cb.len[0]), 0);
		CHECK_EQ(kcp_waitsnd(a), 0);
		/* nothing left: no eager work, the check answers the interval */
		CHECK_EQ(kcp_check(a, 150), 200u);
		kcp_release(a);
		kcp_release(b);
	}
}

/* kcp_setackdelay: without KCP_EAGER_ACK, an ack leaves exactly the delay
 * after it arrived, whatever the flush clock, or earlier on a datagram
 * that leaves anyway. */
TEST(ackdelay_timing)
{
	struct capture ca, cb;
	struct kw_seg sg[4];
	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	kcp_t *a = kcp_create(12, &ca), *b = kcp_create(12, &cb);
	REQUIRE(a && b);
	kcp_setoutput(a, capture_cb);
	kcp_setoutput(b, capture_cb);
	kcp_nodelay(a, 1, 10, 2, 1);
	kcp_nodelay(b, 1, 10, 2, 1);
	kcp_seteager(b, KCP_EAGER_DATA | KCP_EAGER_RESEND);
	kcp_setackdelay(b, 10);
	kcp_update(a, 0);
	kcp_update(b, 3); /* B's flushes at 13, 23, ... */
	CHECK_EQ(kcp_send(a, "x", 1), 0);
	kcp_update(a, 5);
	REQUIRE_EQ(ca.n, 1);
	CHECK_EQ(kcp_input_at(b, (const char *)ca.buf[0], ca.len[0], 6), 0);
	/* due at 6 + 10; the flush at 13 does not send it */
	CHECK_EQ(kcp_check(b, 6), 13u);
	kcp_update(b, 13);
	CHECK_EQ(cb.n, 0);
	CHECK_EQ(kcp_check(b, 13), 16u);
	kcp_update(b, 15);
	CHECK_EQ(cb.n, 0);
	kcp_update(b, 16);
	REQUIRE_EQ(cb.n, 1);
	CHECK_EQ(kw_parse(cb.buf[0], cb.len[0], sg, 4), 1);
	CHECK_EQ(sg[0].cmd, KCP_CMD_ACK);
	CHECK_EQ(kcp_input_at(a, (const char *)cb.buf[0], cb.len[0], 17), 0);
	CHECK_EQ(kcp_srtt(a), 12); /* sent at 5, acked at 17 */
	/* a reply within the delay carries the ack: one datagram */
	CHECK_EQ(kcp_send(a, "y", 1), 0);
	kcp_update(a, 20);
	REQUIRE_EQ(ca.n, 2);
	CHECK_EQ(kcp_input_at(b, (const char *)ca.buf[1], ca.len[1], 21), 0);
	kcp_update(b, 22);
	CHECK_EQ(cb.n, 1);
	CHECK_EQ(kcp_send(b, "z", 1), 0);
	kcp_update(b, 24);
	REQUIRE_EQ(cb.n, 2);
	CHECK_EQ(kw_parse(cb.buf[1], cb.len[1], sg, 4), 2);
	CHECK_EQ(sg[0].cmd, KCP_CMD_PUSH);
	CHECK_EQ(sg[1].cmd, KCP_CMD_ACK);
	kcp_update(b, 40);
	CHECK_EQ(cb.n, 2); /* nothing left to ack */
	kcp_release(a);
	kcp_release(b);
}

/* The peer delays its acks (a client with ack_delay): by up to a flush
 * interval at random (the classic timing), or by exactly one interval
 * (kcp_setackdelay). The sender's RTO pays 4 x the spread of the first,
 * only the length of the second. A sends a message every 20..36 ms, out
 * of phase with B's flushes, over a 2 ms RTT; B sends nothing, so no ack
 * rides. */
static int
run_peer_ack_delay(int ackdelay, uint64_t seed)
{
	struct simnet_conf c = { 0, 1, 1, 0, 0, 0, 0, 0, 0 };
	struct pair p;
	struct kcp_stats st;
	pair_init(&p, &c, seed, 34, 0);
	p.input_at = 1;
	p.fine = 1;
	pair_nodelay(&p, 1, 10, 2, 1);
	kcp_setminrto(p.k[0], 5);
	kcp_seteager(p.k[1], KCP_EAGER_DATA | KCP_EAGER_RESEND);
	kcp_setackdelay(p.k[1], ackdelay);
	int sent = 0, got = 0;
	uint32_t next = p.now + 5;
	while (got < 400 && p.now < 60000) {
		if (sent < 400 && !less(p.now, next)) {
			CHECK_EQ(kcp_send(p.k[0], "tick", 4), 0);
			sent++;
			next = p.now + 20 + (uint32_t)(simnet_rand(p.net) % 17);
		}
		pair_step(&p);
		while (kcp_recv(p.k[1], (char *)rbuf, (int)sizeof(rbuf)) >= 0)
			got++;
	}
	CHECK_EQ(got, 400);
	kcp_getstats(p.k[0], &st);
	VERBOSE("    peer ack delay %d: srtt %d rto %d, %llu of %llu PUSH "
	        "resent\n", ackdelay, kcp_srtt(p.k[0]), kcp_rto(p.k[0]),
	        (unsigned long long)(st.retrans_timeout + st.retrans_fast),
	        (unsigned long long)st.out_push);
	if (ackdelay)
		CHECK_EQ(st.retrans_timeout, 0);
	int rto = kcp_rto(p.k[0]);
	pair_free(&p);
	return rto;
}

TEST(rto_peer_ack_delay)
{
	int spread = run_peer_ack_delay(0, 1906), fixed = run_peer_ack_delay(10, 1906);
	CHECK(fixed >= 12 && fixed <= 15); /* 2 + 10, + G, rounded up */
	CHECK(fixed < spread);
}

/* ---- acks that ride on data (kcp_setmaxackdelay) ---- */

static int
feed(kcp_t *k, struct capture *c, int i, uint32_t now)
{
	return kcp_input_at(k, (const char *)c->buf[i], c->len[i], now);
}

/* B sends data at a 50 ms pace; an ack it owes waits for its next data
 * and leaves with it, never longer than the bound; a gap, a segment that
 * closes one and a duplicate are acked at once; without a pace, or with
 * one slower than the bound, acks leave as before (eager). */
TEST(ride_ack_timing)
{
	struct capture ca, cb;
	struct kw_seg sg[8];
	struct kcp_stats st;
	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	kcp_t *a = kcp_create(13, &ca), *b = kcp_create(13, &cb);
	REQUIRE(a && b);
	kcp_setoutput(a, capture_cb);
	kcp_setoutput(b, capture_cb);
	kcp_nodelay(a, 1, 10, 2, 1);
	kcp_nodelay(b, 1, 10, 2, 1);
	kcp_setmaxackdelay(b, 60);
	kcp_update(a, 0);
	kcp_update(b, 0);
	/* before any pace: an ack leaves at once (B is eager) */
	CHECK_EQ(kcp_send(a, "x0", 2), 0);
	kcp_update(a, 1);
	REQUIRE_EQ(ca.n, 1);
	CHECK_EQ(feed(b, &ca, 0, 2), 0);
	CHECK_EQ(kcp_check(b, 2), 2u);
	kcp_update(b, 2);
	CHECK_EQ(cb.n, 1);
	/* B's data at 10 and 60: a pace of 50 */
	for (uint32_t t = 10; t <= 60; t += 50) {
		CHECK_EQ(kcp_send(b, "d", 1), 0);
		kcp_update(b, t);
	}
	CHECK_EQ(cb.n, 3);
	ca.n = 0;
	CHECK_EQ(feed(a, &cb, 1, 61), 0);
	CHECK_EQ(feed(a, &cb, 2, 61), 0);
	kcp_update(a, 61);
	REQUIRE_EQ(ca.n, 1);
	CHECK_EQ(feed(b, &ca, 0, 62), 0);
	CHECK_EQ(kcp_waitsnd(b), 0);
	/* A's message at 70 waits for B's data due at 110 */
	ca.n = cb.n = 0;
	CHECK_EQ(kcp_send(a, "x1", 2), 0);
	kcp_update(a, 70);
	REQUIRE_EQ(ca.n, 1);
	CHECK_EQ(feed(b, &ca, 0, 71), 0);
	for (uint32_t t = 71; t < 110; t++)
		if (kcp_check(b, t) == t)
			kcp_update(b, t);
	CHECK_EQ(cb.n, 0);
	CHECK_EQ(kcp_send(b, "d", 1), 0);
	kcp_update(b, 110);
	REQUIRE_EQ(cb.n, 1);
	REQUIRE_EQ(kw_parse(cb.buf[0], cb.len[0], sg, 8), 2);
	CHECK_EQ(sg[0].cmd, KCP_CMD_PUSH);
	CHECK_EQ(sg[1].cmd, KCP_CMD_ACK);
	CHECK_EQ(sg[1].ts, 70u); /* the echoed ts is the PUSH's own */
	CHECK_EQ(feed(a, &cb, 0, 111), 0);
	CHECK_EQ(kcp_waitsnd(a), 0);
	CHECK_EQ(kcp_srtt(a), 41); /* the wait is in A's RTT sample */
	/* out of order: y2 before y1, then y1, then y1 again: each acked at
	 * the next update, without waiting */
	ca.n = cb.n = 0;
	CHECK_EQ(kcp_send(a, "y1", 2), 0);
	kcp_update(a, 115);
	CHECK_EQ(kcp_send(a, "y2", 2), 0);
	kcp_update(a, 116);
	REQUIRE_EQ(ca.n, 2);
	CHECK_EQ(feed(b, &ca, 1, 117), 0);
	CHECK_EQ(kcp_check(b, 117), 117u);
	kcp_update(b, 117);
	CHECK_EQ(cb.n, 1);
	CHECK_EQ(feed(b, &ca, 0, 118), 0);
	kcp_update(b, 118);
	CHECK_EQ(cb.n, 2);
	CHECK_EQ(feed(b, &ca, 0, 119), 0);
	kcp_update(b, 119);
	CHECK_EQ(cb.n, 3);
	for (int i = 0; i < 3; i++) {
		REQUIRE_EQ(kw_parse(cb.buf[i], cb.len[i], sg, 8), 1);
		CHECK_EQ(sg[0].cmd, KCP_CMD_ACK);
	}
	/* B's data stops: an ack waits at most the bound, then leaves alone */
	CHECK_EQ(kcp_send(b, "d", 1), 0);
	kcp_update(b, 160);
	CHECK_EQ(cb.n, 4);
	CHECK_EQ(feed(a, &cb, 3, 161), 0);
	kcp_update(a, 161); /* A acks B's "d" at once */
	REQUIRE_EQ(ca.n, 3);
	CHECK_EQ(feed(b, &ca, 2, 162), 0);
	CHECK_EQ(kcp_waitsnd(b), 0);
	ca.n = cb.n = 0;
	CHECK_EQ(kcp_send(a, "z", 1), 0);
	kcp_update(a, 170);
	REQUIRE_EQ(ca.n, 1);
	CHECK_EQ(feed(b, &ca, 0, 171), 0);
	for (uint32_t t = 171; t < 231; t++)
		if (kcp_check(b, t) == t)
			kcp_update(b, t);
	CHECK_EQ(cb.n, 0);
	CHECK_EQ(kcp_check(b, 231), 231u);
	kcp_update(b, 231);
	CHECK_EQ(cb.n, 1);
	REQUIRE_EQ(kw_parse(cb.buf[0], cb.len[0], sg, 8), 1);
	CHECK_EQ(sg[0].cmd, KCP_CMD_ACK);
	kcp_getstats(b, &st);
	CHECK_EQ(st.acks_rode, 1);
	CHECK_EQ(st.acks_now, 3);
	CHECK(st.out_ackonly >= 5);
	kcp_release(a);
	kcp_release(b);
	/* a pace slower than the bound (100 ms, bound 60): an ack that came
	 * 10 ms after the data would wait 90: it leaves at once */
	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	a = kcp_create(14, &ca);
	b = kcp_create(14, &cb);
	REQUIRE(a && b);
	kcp_setoutput(a, capture_cb);
	kcp_setoutput(b, capture_cb);
	kcp_nodelay(a, 1, 10, 2, 1);
	kcp_nodelay(b, 1, 10, 2, 1);
	kcp_setmaxackdelay(b, 60);
	kcp_update(a, 0);
	for (uint32_t t = 0; t <= 200; t += 100) {
		ca.n = cb.n = 0;
		CHECK_EQ(kcp_send(b, "d", 1), 0);
		kcp_update(b, t);
		REQUIRE_EQ(cb.n, 1);
		CHECK_EQ(feed(a, &cb, 0, t + 1), 0);
		kcp_update(a, t + 1);
		REQUIRE_EQ(ca.n, 1);
		CHECK_EQ(feed(b, &ca, 0, t + 2), 0);
	}
	CHECK_EQ(kcp_waitsnd(b), 0);
	ca.n = cb.n = 0;
	CHECK_EQ(kcp_send(a, "x", 1), 0);
	kcp_update(a, 209);
	CHECK_EQ(feed(b, &ca, 0, 210), 0);
	CHECK_EQ(kcp_check(b, 210), 210u);
	kcp_update(b, 210);
	CHECK_EQ(cb.n, 1);
	/* ... one that came 50 ms after it would wait 50: it waits */
	ca.n = cb.n = 0;
	CHECK_EQ(kcp_send(a, "x", 1), 0);
	kcp_update(a, 249);
	CHECK_EQ(feed(b, &ca, 0, 250), 0);
	kcp_update(b, 250);
	CHECK_EQ(cb.n, 0);
	CHECK(kcp_check(b, 250) > 250u);
	kcp_release(a);
	kcp_release(b);
}

/* Bulk data does not wait for the ride: the acks of two full-size
 * segments, or of 16 small ones, leave at once. */
TEST(ride_bulk_acks_at_once)
{
	struct capture ca, cb;
	static char big[3000];
	memset(big, 'b', sizeof(big));
	for (int mode = 0; mode < 2; mode++) {
		memset(&ca, 0, sizeof(ca));
		memset(&cb, 0, sizeof(cb));
		kcp_t *a = kcp_create(15, &ca), *b = kcp_create(15, &cb);
		REQUIRE(a && b);
		kcp_setoutput(a, capture_cb);
		kcp_setoutput(b, capture_cb);
		kcp_setmtu(a, 1000);
		kcp_setmtu(b, 1000);
		kcp_nodelay(a, 1, 10, 2, 1);
		kcp_nodelay(b, 1, 10, 2, 1);
		kcp_setmaxackdelay(b, 60);
		kcp_update(a, 0);
		for (uint32_t t = 0; t <= 50; t += 50) {
			CHECK_EQ(kcp_send(b, "d", 1), 0);
			kcp_update(b, t);
		}
		cb.n = 0;
		if (mode == 0) {
			CHECK_EQ(kcp_send(a, big, 1952), 0); /* 2 full segments */
		} else {
			for (int i = 0; i < 16; i++)
				CHECK_EQ(kcp_send(a, "s", 1), 0);
		}
		kcp_update(a, 60);
		REQUIRE(ca.n >= 1);
		for (int i = 0; i < ca.n && i < 4; i++)
			CHECK_EQ(feed(b, &ca, i, 61), 0);
		CHECK_EQ(kcp_check(b, 61), 61u);
		kcp_update(b, 61);
		CHECK_EQ(cb.n, 1);
		for (int i = 0; i < cb.n; i++)
			CHECK_EQ(feed(a, &cb, i, 62), 0);
		CHECK_EQ(kcp_waitsnd(a), 0);
		kcp_release(a);
		kcp_release(b);
	}
}

/* Frame sync over a 10 ms RTT: A (the server) sends a frame every 50 ms,
 * B (the client) an input every 50 ms, 20 ms after each frame's send.
 * Classic acks: each message is acked alone, about 40 datagrams a second
 * each way; riding (kcp_setmaxackdelay 60 both ends): about 20. With
 * loss, every message still arrives, in order, and a lost one costs at
 * most one period (50 ms, the longest an ack waits) more than with
 * classic acks. */
struct stream_res {
	double dg_per_s[2];   /* datagrams per second, A->B and B->A */
	uint32_t lat_max[2];  /* ms from send to kcp_recv, the worst */
	double lat_mean[2];
	uint64_t resent[2];
	uint32_t got[2];
	int srtt[2], rto[2];
};

static void
run_streams_j(int ride, double loss, uint32_t jitter, uint64_t seed,
              struct stream_res *r)
{
	struct simnet_conf c = { loss, 5, 5, jitter, 0, 0, 0, 0, 0 };
	struct pair p;
	const uint32_t secs = 20, n = secs * 20;
	pair_init(&p, &c, seed, 35, 0);
	p.input_at = 1;
	p.fine = 1;
	pair_nodelay(&p, 1, 10, 2, 1);
	kcp_setminrto(p.k[0], 5);
	kcp_setminrto(p.k[1], 5);
	/* the server acks at once, the client waits one interval (the
	 * session's defaults) */
	kcp_seteager(p.k[1], KCP_EAGER_DATA | KCP_EAGER_RESEND);
	kcp_setackdelay(p.k[1], 10);
	if (ride) {
		kcp_setmaxackdelay(p.k[0], 60);
		kcp_setmaxackdelay(p.k[1], 60);
	}
	uint32_t sent[2] = { 0, 0 }, next[2] = { 100, 120 };
	uint64_t latsum[2] = { 0, 0 };
	memset(r, 0, sizeof(*r));
	uint32_t t0 = 0;
	while ((r->got[0] < n || r->got[1] < n) && p.now < 100000) {
		for (int d = 0; d < 2; d++) {
			if (sent[d] < n && !less(p.now, next[d])) {
				uint32_t m[2] = { p.now, sent[d] };
				CHECK_EQ(kcp_send(p.k[d], (const char *)m, 8), 0);
				sent[d]++;
				next[d] += 50;
				if (d == 0 && sent[0] == 1)
					t0 = p.now;
			}
		}
		pair_step(&p);
		for (int d = 0; d < 2; d++) {
			uint32_t m[2];
			while (kcp_recv(p.k[1 - d], (char *)m, 8) == 8) {
				CHECK_EQ(m[1], r->got[d]);
				uint32_t lat = p.now - m[0];
				if (lat > r->lat_max[d])
					r->lat_max[d] = lat;
				latsum[d] += lat;
				r->got[d]++;
			}
		}
	}
	uint32_t t1 = p.now;
	for (int d = 0; d < 2; d++) {
		struct kcp_stats st;
		kcp_getstats(p.k[d], &st);
		CHECK_EQ(r->got[d], n);
		r->dg_per_s[d] = (double)st.out_datagrams * 1000.0 / (double)(t1 - t0);
		r->lat_mean[d] = r->got[d] ? (double)latsum[d] / r->got[d] : 0;
		r->resent[d] = st.retrans_timeout + st.retrans_fast;
		r->srtt[d] = kcp_srtt(p.k[d]);
		r->rto[d] = kcp_rto(p.k[d]);
		CHECK_EQ(kcp_isdead(p.k[d]), 0);
	}
	CHECK_EQ(p.input_errors, 0);
	VERBOSE("    %s, loss %.0f%%, jitter %u: datagrams/s %.1f frames way, %.1f inputs "
	        "way; latency mean/max frames %.1f/%u, inputs %.1f/%u ms; srtt "
	        "%d/%d rto %d/%d; resent %llu/%llu\n", ride ? "ride" : "classic",
	        loss * 100, jitter, r->dg_per_s[0], r->dg_per_s[1], r->lat_mean[0],
	        r->lat_max[0], r->lat_mean[1], r->lat_max[1], r->srtt[0],
	        r->srtt[1], r->rto[0], r->rto[1],
	        (unsigned long long)r->resent[0], (unsigned long long)r->resent[1]);
	pair_free(&p);
}

static void
run_streams(int ride, double loss, uint64_t seed, struct stream_res *r)
{
	run_streams_j(ride, loss, 0, seed, r);
}

TEST(ride_frame_sync_streams)
{
	struct stream_res classic, ride, lc, lr;
	run_streams(0, 0, 1907, &classic);
	run_streams(1, 0, 1907, &ride);
	/* no loss: half the datagrams */
	CHECK(classic.dg_per_s[0] > 35 && classic.dg_per_s[1] > 35);
	CHECK(ride.dg_per_s[0] <= 20.5 && ride.dg_per_s[1] <= 20.5);
	/* at most one early retransmission, before the RTO knew the wait */
	CHECK(ride.resent[0] + ride.resent[1] <= 1);
	/* the same delivery latency (5 ms one way and a 1 ms step, nothing
	 * lost) */
	CHECK_EQ(ride.lat_max[0], classic.lat_max[0]);
	CHECK_EQ(ride.lat_max[1], classic.lat_max[1]);
	/* the RTO pays the wait: a frame arrives 15 ms before the next input,
	 * which acks it (RTT 10 + 15), an input 25 ms before the next frame
	 * (10 + 25) */
	CHECK(ride.srtt[0] >= 24 && ride.srtt[0] <= 26);
	CHECK(ride.srtt[1] >= 34 && ride.srtt[1] <= 36);
	CHECK(ride.rto[0] <= ride.srtt[0] + 8 && ride.rto[1] <= ride.srtt[1] + 8);
	/* 5% loss each way: all delivered; a loss costs at most one period
	 * more than with classic acks */
	run_streams(0, 0.05, 1908, &lc);
	run_streams(1, 0.05, 1908, &lr);
	for (int d = 0; d < 2; d++) {
		CHECK(lr.lat_max[d] <= lc.lat_max[d] + 50);
		CHECK(lr.dg_per_s[d] < lc.dg_per_s[d]);
	}
	for (uint32_t j = 1; j <= 8; j *= 2) {
		run_streams_j(0, 0, j, 1909, &lc);
		run_streams_j(1, 0, j, 1909, &lr);
	}
}

/* A check that answers "now" must be one that update acts on: a caller
 * that polls at check (every event loop does) would spin otherwise. The
 * peer is gone, so the segment is resent again and again; in the default
 * mode (interval 100) its resend times fall between flushes. */
TEST(check_no_spin)
{
	for (int mode = 0; mode <= 1; mode++) {
		struct capture ca;
		memset(&ca, 0, sizeof(ca));
		kcp_t *a = kcp_create(11, &ca);
		REQUIRE(a);
		kcp_setoutput(a, capture_cb);
		if (mode)
			kcp_nodelay(a, 1, 10, 2, 1);
		kcp_update(a, 0);
		CHECK_EQ(kcp_send(a, "x", 1), 0);
		int spins = 0;
		for (uint32_t t = 1; t < 20000; t++) {
			int n = 0;
			while (kcp_check(a, t) == t && n < 3) {
				kcp_update(a, t);
				n++;
			}
			if (n >= 3)
				spins++;
		}
		CHECK_EQ(spins, 0);
		CHECK(ca.n > 3); /* it did resend */
		kcp_release(a);
	}
}

/* ---- congestion control under random loss ---- */

/* The classic benchmark's default mode (0,10,0,0): congestion control on,
 * one 8-byte message every 20 ms, 5% loss each way, 30..62 ms each way.
 * The classic algorithm collapses the window to 1 on every timeout and its
 * queue grows for the whole run (here: one-way latency 2.7 s on average,
 * 3.7 s at worst); ours halves the window once per loss episode while acks
 * keep arriving (0.35 s, 1.5 s). Classic flush timing, so only the
 * congestion control differs. */
TEST(cwnd_random_loss)
{
	struct simnet_conf c = { 0.05, 30, 62, 0, 0, 0, 1, 0, 0 };
	struct pair p;
	uint64_t lat = 0, n = 0;
	uint32_t t0, worst = 0;
	int d;

	pair_init(&p, &c, 1101, 31, 0);
	for (d = 0; d < 2; d++) {
		kcp_wndsize(p.k[d], 128, 128);
		kcp_nodelay(p.k[d], 0, 10, 0, 0);
		kcp_seteager(p.k[d], 0);
	}
	for (t0 = p.now; n < 1000 && p.now - t0 < 600000; p.now++) {
		uint32_t stamp;
		int len;
		if ((p.now - t0) % 20 == 0 && (p.now - t0) / 20 < 1000)
			CHECK_EQ(kcp_send(p.k[0], (const char *)&p.now, 4), 0);
		pair_deliver(&p);
		kcp_update(p.k[0], p.now);
		kcp_update(p.k[1], p.now);
		while ((len = kcp_recv(p.k[1], (char *)&stamp, 4)) == 4) {
			CHECK_EQ(stamp, t0 + 20 * (uint32_t)n);
			lat += p.now - stamp;
			if (p.now - stamp > worst)
				worst = p.now - stamp;
			n++;
		}
	}
	CHECK_EQ(n, 1000u);
	VERBOSE("    default mode, 10%% round-trip loss: one-way latency avg %.1f "
	        "ms, max %u ms\n", n ? (double)lat / (double)n : 0.0, worst);
	CHECK(n && lat / n < 700);
	CHECK(worst < 2500);
	pair_free(&p);
}

/* ---- the thread's payload free lists ---- */

TEST(pool_trim)
{
	struct pair p;
	pair_init(&p, &perfect, 1201, 41, 0);
	p.f[0].total = 200;
	p.f[0].minlen = 100;
	p.f[0].maxlen = 3000;
	CHECK(pair_run(&p, flows_acked, 60000));
	check_flows(&p, "pool");
	pair_free(&p);
	CHECK(kcp_pool_size() > 0);     /* buffers kept for reuse */
	CHECK(kcp_pool_size() <= (4u << 20) + 21 * 4096 * sizeof(char *));
	kcp_pool_trim();
	CHECK_EQ(kcp_pool_size(), 0u);
}

/* ---- edges ---- */

TEST(zero_length_message)
{
	struct pair p;
	char buf[8];
	int n, got = 0, sizes[5] = { 0, 3, 0, 0, 1 }, i;
	uint32_t t0;

	pair_init(&p, &perfect, 1201, 12, 0);
	for (i = 0; i < 5; i++)
		CHECK_EQ(kcp_send(p.k[0], "abc", sizes[i]), 0);
	CHECK_EQ(kcp_send(p.k[0], NULL, 0), 0);
	for (t0 = p.now; got < 6 && p.now - t0 < 10000;) {
		pair_step(&p);
		while ((n = kcp_recv(p.k[1], buf, sizeof(buf))) >= 0) {
			CHECK_EQ(n, got < 5 ? sizes[got] : 0);
			got++;
		}
	}
	CHECK_EQ(got, 6);
	pair_free(&p);
}

TEST(small_buffer_peeksize)
{
	struct pair p;
	char buf[4000];
	uint32_t t0;

	pair_init(&p, &perfect, 1301, 13, 0);
	memset(ebuf, 'q', 3000);
	CHECK_EQ(kcp_peeksize(p.k[1]), KCP_EAGAIN);
	CHECK_EQ(kcp_recv(p.k[1], buf, sizeof(buf)), KCP_EAGAIN);
	CHECK_EQ(kcp_send(p.k[0], (const char *)ebuf, 3000), 0);
	CHECK_EQ(kcp_send(p.k[0], "tail", 4), 0);
	for (t0 = p.now; kcp_peeksize(p.k[1]) < 0 && p.now - t0 < 10000;)
		pair_step(&p);
	CHECK_EQ(kcp_peeksize(p.k[1]), 3000);
	CHECK_EQ(kcp_recv(p.k[1], buf, 2999), KCP_ESMALL);
	CHECK_EQ(kcp_recv(p.k[1], buf, 0), KCP_ESMALL);
	CHECK_EQ(kcp_peeksize(p.k[1]), 3000); /* nothing consumed */
	CHECK_EQ(kcp_recv(p.k[1], buf, 3000), 3000);
	CHECK_MEM(buf, ebuf, 3000);
	for (t0 = p.now; kcp_peeksize(p.k[1]) < 0 && p.now - t0 < 10000;)
		pair_step(&p);
	CHECK_EQ(kcp_recv(p.k[1], buf, 3), KCP_ESMALL);
	CHECK_EQ(kcp_recv(p.k[1], buf, 4), 4);
	CHECK_MEM(buf, "tail", 4);
	CHECK_EQ(kcp_recv(p.k[1], buf, 4), KCP_EAGAIN);
	pair_free(&p);
}

TEST(api_arguments)
{
	kcp_t *k = kcp_create(0xDEADBEEFu, NULL);
	int codes[] = { KCP_EAGAIN, KCP_ETOOBIG, KCP_ESMALL, KCP_EINVAL,
	                KCP_ETRUNC, KCP_ECONV, KCP_ECMD, KCP_EUNA, KCP_ELEN,
	                KCP_EDEAD, KCP_ENOMEM, KCP_EFULL, 0, -999 };
	unsigned char hdr[KCP_OVERHEAD] = { 0xEF, 0xBE, 0xAD, 0xDE };
	size_t i;
	uint32_t t;

	REQUIRE(k != NULL);
	CHECK_EQ(kcp_getconv(k), 0xDEADBEEFu);
	CHECK_EQ(kcp_conv_of(hdr, sizeof(hdr)), 0xDEADBEEFu);
	CHECK_EQ(kcp_conv_of(hdr, sizeof(hdr) - 1), 0);
	CHECK_EQ(kcp_send(k, "x", -1), KCP_EINVAL);
	CHECK_EQ(kcp_send(k, NULL, 1), KCP_EINVAL);
	CHECK_EQ(kcp_setmtu(k, KCP_MTU_MIN - 1), KCP_EINVAL);
	CHECK_EQ(kcp_setmtu(k, KCP_MTU_MAX + 1), KCP_EINVAL);
	CHECK_EQ(kcp_getmtu(k), KCP_MTU_DEFAULT);
	CHECK_EQ(kcp_setmtu(k, KCP_MTU_MAX), 0);
	CHECK_EQ(kcp_getmtu(k), KCP_MTU_MAX);
	CHECK_EQ(kcp_maxmsg(k), (KCP_MTU_MAX - KCP_OVERHEAD) * 128);
	CHECK_EQ(kcp_setmtu(k, KCP_MTU_DEFAULT), 0);
	CHECK_EQ(kcp_maxmsg(k), MSS(KCP_MTU_DEFAULT) * KCP_WND_RCV_DEFAULT);
	CHECK_EQ(kcp_wndsize(k, 0, 0), 0);
	CHECK_EQ(kcp_maxmsg(k), MSS(KCP_MTU_DEFAULT) * KCP_WND_RCV_DEFAULT);
	CHECK_EQ(kcp_wndsize(k, 16, 10), 0); /* raised to 128 */
	CHECK_EQ(kcp_maxmsg(k), MSS(KCP_MTU_DEFAULT) * KCP_WND_RCV_DEFAULT);
	CHECK_EQ(kcp_nodelay(k, 1, 20, 2, 1), 0);
	CHECK_EQ(kcp_nodelay(k, -1, -1, -1, -1), 0);
	CHECK_EQ(kcp_waitsnd(k), 0);
	CHECK_EQ(kcp_isdead(k), 0);
	CHECK_EQ(kcp_idle(k), 1);
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = kcp_strerror(codes[i]);
		CHECK(s != NULL && s[0] != '\0');
	}
	CHECK(strcmp(kcp_strerror(KCP_EDEAD), kcp_strerror(KCP_EUNA)) != 0);
	/* check: never more than interval away, and not before now */
	kcp_update(k, 5000);
	for (t = 5000; t < 5100; t += 7) {
		uint32_t c = kcp_check(k, t);
		CHECK(!less(c, t) && (int32_t)(c - t) <= 20);
	}
	/* the send queue limit */
	kcp_setsndlimit(k, 3);
	CHECK_EQ(kcp_send(k, "a", 1), 0);
	CHECK_EQ(kcp_send(k, "b", 1), 0);
	CHECK_EQ(kcp_send(k, "c", 1), 0);
	CHECK_EQ(kcp_send(k, "d", 1), KCP_EFULL);
	CHECK_EQ(kcp_waitsnd(k), 3);
	CHECK_EQ(kcp_idle(k), 0);
	kcp_setsndlimit(k, 0);
	CHECK_EQ(kcp_send(k, "d", 1), 0);
	/* setnext is refused once data is queued */
	CHECK_EQ(kcp_setnext(k, 5, 5), KCP_EINVAL);
	kcp_release(k);
	kcp_release(NULL);
}

/* Many conversations multiplexed over one simulated link, demultiplexed
 * by kcp_conv_of() as a server would. */
#define NCONV 300

struct mux {
	simnet_t *net;
	kcp_t *k[2][NCONV];
	uint32_t now;
};

static int
mux_out_a(const char *buf, int len, kcp_t *k, void *user)
{
	struct mux *m = user;
	(void)k;
	simnet_send(m->net, 0, buf, len, m->now);
	return 0;
}

static int
mux_out_b(const char *buf, int len, kcp_t *k, void *user)
{
	struct mux *m = user;
	(void)k;
	simnet_send(m->net, 1, buf, len, m->now);
	return 0;
}

TEST(many_conversations)
{
	struct simnet_conf c = { 0.05, 10, 30, 5, 0.05, 0.02, 0, 0, 0 };
	static struct mux m;
	static int got[2][NCONV];
	static unsigned char pkt[2048];
	int i, s, n, done = 0, bad = 0, refused = 0;
	const int msgs = 10;

	memset(&m, 0, sizeof(m));
	memset(got, 0, sizeof(got));
	m.net = simnet_create(&c, 1401);
	for (i = 0; i < NCONV; i++) {
		uint32_t conv = 0x10000u + (uint32_t)i * 7919u;
		m.k[0][i] = kcp_create(conv, &m);
		m.k[1][i] = kcp_create(conv, &m);
		kcp_setoutput(m.k[0][i], mux_out_a);
		kcp_setoutput(m.k[1][i], mux_out_b);
		for (s = 0; s < 2; s++)
			for (n = 0; n < msgs; n++) {
				int len = msg_make(conv * 2 + (uint64_t)s, (uint32_t)n, 1,
				                   1500, ebuf);
				CHECK_EQ(kcp_send(m.k[s][i], (const char *)ebuf, len), 0);
			}
	}
	for (m.now = 0; m.now < 300000 && done < 2 * NCONV; m.now += 5) {
		for (s = 0; s < 2; s++)
			while ((n = simnet_recv(m.net, s, pkt, sizeof(pkt), m.now)) >= 0) {
				uint32_t conv = kcp_conv_of(pkt, n);
				i = (int)((conv - 0x10000u) / 7919u);
				if (conv < 0x10000u || (conv - 0x10000u) % 7919u != 0 ||
				    i >= NCONV) {
					bad++;
					continue;
				}
				if (kcp_input(m.k[1 - s][i], (const char *)pkt, n) != 0)
					refused++;
			}
		for (i = 0; i < NCONV; i++)
			for (s = 0; s < 2; s++) {
				kcp_t *r = m.k[1 - s][i];
				uint32_t conv = kcp_getconv(r);
				kcp_update(m.k[s][i], m.now);
				while ((n = kcp_recv(r, (char *)rbuf, (int)sizeof(rbuf))) >= 0) {
					int len = msg_make(conv * 2 + (uint64_t)s,
					                   (uint32_t)got[s][i], 1, 1500, ebuf);
					if (n != len || memcmp(rbuf, ebuf, (size_t)n) != 0)
						bad++;
					if (++got[s][i] == msgs)
						done++;
				}
			}
	}
	CHECK_EQ(done, 2 * NCONV);
	CHECK_EQ(bad, 0);
	CHECK_EQ(refused, 0);
	for (i = 0; i < NCONV; i++) {
		kcp_release(m.k[0][i]);
		kcp_release(m.k[1][i]);
	}
	simnet_free(m.net);
}

/* Congestion: a narrow, shallow link; kcp must not break, and with
 * congestion control on it must still deliver everything. */
TEST(narrow_link)
{
	struct simnet_conf c = { 0.01, 20, 20, 5, 0, 0, 0, 50, 200000 };
	struct pair p;
	struct simnet_stats st;
	int d;

	pair_init(&p, &c, 1501, 15, 0);
	pair_nodelay(&p, 0, 10, 2, 0);
	kcp_wndsize(p.k[0], 256, 256);
	kcp_wndsize(p.k[1], 256, 256);
	for (d = 0; d < 2; d++) {
		p.f[d].total = 600;
		p.f[d].maxlen = 4000;
	}
	CHECK(pair_run(&p, flows_acked, 1800000));
	check_flows(&p, "narrow link");
	simnet_getstats(p.net, &st);
	VERBOSE("    narrow link: %u ms, overflow %llu/%llu\n", p.now,
	        (unsigned long long)st.overflow[0],
	        (unsigned long long)st.overflow[1]);
	pair_free(&p);
}


/* The link goes down for a few seconds, then comes back: nothing is lost
 * and nobody is declared dead. */
TEST(link_outage)
{
	struct simnet_conf c = { 0.05, 20, 40, 5, 0.05, 0.02, 0, 0, 0 };
	struct simnet_conf down = c;
	struct pair p;
	int d;

	down.loss = 1.0;
	pair_init(&p, &c, 1601, 16, 0);
	pair_nodelay(&p, 1, 10, 2, 1);
	for (d = 0; d < 2; d++) {
		p.f[d].total = 1500;
		p.f[d].maxlen = 2000;
		p.f[d].sendq = 64;
	}
	pair_for(&p, 2000);
	CHECK(p.f[0].recvd > 0 && p.f[0].recvd < 1500);
	simnet_setconf(p.net, &down);
	pair_for(&p, 3000);
	simnet_setconf(p.net, &c);
	CHECK(pair_run(&p, flows_acked, 600000));
	check_flows(&p, "outage");
	pair_free(&p);
}

/* Changing the mtu with data queued: old messages keep their segment size
 * (the header allows those datagrams to exceed the new mtu), new ones use
 * the new size, everything arrives. */
static void
run_mtu_change(int stream)
{
	struct pair p;
	int d, i;
	uint32_t t0;
	static unsigned char got[3][200000];
	int gl = 0, want = 0;

	pair_init(&p, &perfect, 1701 + (uint64_t)stream, 17, 0);
	p.allow_oversize = 1;
	for (d = 0; d < 2; d++)
		kcp_setstream(p.k[d], stream);
	/* queue 10 x 3000 bytes at mtu 1400, then shrink to 200 and queue
	 * more, then grow to 3000 and queue more; nothing flushed meanwhile */
	for (i = 0; i < 30; i++) {
		int len = msg_make(55, (uint32_t)i, 1, 3000, ebuf);
		if (i == 10)
			CHECK_EQ(kcp_setmtu(p.k[0], 200), 0);
		if (i == 20)
			CHECK_EQ(kcp_setmtu(p.k[0], 3000), 0);
		CHECK_EQ(kcp_send(p.k[0], (const char *)ebuf, len), 0);
		memcpy(got[0] + want, ebuf, (size_t)len);
		want += len;
	}
	for (d = 0; d < 2; d++)
		CHECK_EQ(kcp_setmtu(p.k[d], 3000), 0); /* B may receive any size */
	for (t0 = p.now; gl < want && p.now - t0 < 60000;) {
		int n;
		pair_step(&p);
		while ((n = kcp_recv(p.k[1], (char *)rbuf, (int)sizeof(rbuf))) >= 0) {
			if (gl + n > want) {
				TU_FAIL("mtu change: too many bytes");
				break;
			}
			memcpy(got[1] + gl, rbuf, (size_t)n);
			gl += n;
		}
	}
	CHECK_EQ(gl, want);
	CHECK_MEM(got[0], got[1], (size_t)want);
	CHECK_EQ(p.ds[0].malformed, 0);
	CHECK_EQ(p.input_errors, 0);
	pair_free(&p);
}

TEST(mtu_change_message) { run_mtu_change(0); }
TEST(mtu_change_stream) { run_mtu_change(1); }

/* A flood of duplicates between two flushes: the ack list stays bounded
 * (by the receive window), the excess acks are dropped and counted. */
TEST(ack_list_bounded)
{
	kcp_t *b = kcp_create(18, NULL);
	unsigned char d[64];
	struct kcp_stats st;
	size_t m0, m1;
	int i, n;

	REQUIRE(b != NULL);
	kcp_setoutput(b, discard_cb);
	kcp_update(b, 0);
	n = put_seg(d, 18, KCP_CMD_PUSH, 0, 128, 0, 0, 0, 4, "dupe", 4);
	CHECK_EQ(kcp_input(b, (const char *)d, n), 0);
	m0 = kcp_memsize(b);
	for (i = 0; i < 100000; i++)
		CHECK_EQ(kcp_input(b, (const char *)d, n), 0);
	m1 = kcp_memsize(b);
	kcp_getstats(b, &st);
	CHECK(st.acks_dropped > 90000);
	CHECK_EQ(st.in_dup, 100000);
	CHECK(m1 < m0 + 4096);
	VERBOSE("    ack flood: memsize %zu -> %zu, %llu acks dropped\n", m0, m1,
	        (unsigned long long)st.acks_dropped);
	/* the flush sends the bounded list, in datagrams of at most mtu */
	kcp_update(b, 100);
	CHECK_EQ(kcp_peeksize(b), 4);
	kcp_release(b);
}

/* PUSH segments outside the receive window are accepted as datagrams but
 * neither stored nor acknowledged; old ones are acknowledged again. */
TEST(push_outside_window)
{
	struct capture cap;
	kcp_t *b = kcp_create(19, &cap);
	unsigned char d[64];
	size_t m0;
	struct kw_seg s[8];
	int n, ns;

	memset(&cap, 0, sizeof(cap));
	REQUIRE(b != NULL);
	kcp_setoutput(b, capture_cb);
	kcp_update(b, 0);
	m0 = kcp_memsize(b);
	n = put_seg(d, 19, KCP_CMD_PUSH, 0, 128, 5, KCP_WND_RCV_DEFAULT, 0, 4,
	            "far!", 4);
	CHECK_EQ(kcp_input(b, (const char *)d, n), 0);
	n = put_seg(d, 19, KCP_CMD_PUSH, 0, 128, 5, 0x80000000u, 0, 4, "far!", 4);
	CHECK_EQ(kcp_input(b, (const char *)d, n), 0);
	CHECK_EQ(kcp_peeksize(b), KCP_EAGAIN);
	CHECK(kcp_memsize(b) <= m0 + 256);
	kcp_update(b, 100);
	CHECK_EQ(cap.n, 0); /* nothing to acknowledge */
	/* the last slot of the window is fine */
	n = put_seg(d, 19, KCP_CMD_PUSH, 0, 128, 6, KCP_WND_RCV_DEFAULT - 1, 0, 4,
	            "last", 4);
	CHECK_EQ(kcp_input(b, (const char *)d, n), 0);
	n = put_seg(d, 19, KCP_CMD_PUSH, 0, 128, 7, 0, 0, 4, "frst", 4);
	CHECK_EQ(kcp_input(b, (const char *)d, n), 0);
	CHECK_EQ(kcp_recv(b, (char *)rbuf, 100), 4);
	CHECK_MEM(rbuf, "frst", 4);
	/* sn 0 again: a duplicate, acknowledged again */
	CHECK_EQ(kcp_input(b, (const char *)d, n), 0);
	kcp_update(b, 200);
	REQUIRE_EQ(cap.n, 1);
	ns = kw_parse(cap.buf[0], cap.len[0], s, 8);
	CHECK_EQ(ns, 3);
	if (ns == 3) {
		CHECK(s[0].cmd == KCP_CMD_ACK && s[0].sn == KCP_WND_RCV_DEFAULT - 1 &&
		      s[0].ts == 6 && s[0].una == 1);
		CHECK(s[1].cmd == KCP_CMD_ACK && s[1].sn == 0 && s[1].ts == 7);
		CHECK(s[2].cmd == KCP_CMD_ACK && s[2].sn == 0 && s[2].ts == 7);
	}
	kcp_release(b);
}


/* A peer that ignores the advertised window (or acts on a stale one): B
 * keeps at most rcv_wnd segments queued, stores the next rcv_wnd out of
 * order, drops the rest, and its acks say so (una stops at rcv_wnd). */
struct seglog {
	struct kw_seg s[1024];
	int n;
};

static int
seglog_cb(const char *buf, int len, kcp_t *k, void *user)
{
	struct seglog *l = user;
	struct kw_seg s[128];
	int n = kw_parse(buf, len, s, 128), i;
	(void)k;
	for (i = 0; i < n && i < 128 && l->n < 1024; i++)
		l->s[l->n++] = s[i];
	return 0;
}

TEST(window_overrun)
{
	static struct seglog log;
	kcp_t *b = kcp_create(22, &log);
	unsigned char d[64], c;
	uint32_t sn, maxuna = 0;
	int i, n, acks = 0, got = 0;
	struct kcp_stats st;

	memset(&log, 0, sizeof(log));
	REQUIRE(b != NULL);
	kcp_setoutput(b, seglog_cb);
	kcp_update(b, 0);
	for (sn = 0; sn < 300; sn++) {
		c = (unsigned char)sn;
		n = put_seg(d, 22, KCP_CMD_PUSH, 0, 128, sn, sn, 0, 1, &c, 1);
		CHECK_EQ(kcp_input(b, (const char *)d, n), 0);
	}
	kcp_update(b, 100);
	for (i = 0; i < log.n; i++) {
		CHECK_EQ(log.s[i].cmd, KCP_CMD_ACK);
		CHECK_EQ(log.s[i].wnd, 0);
		CHECK(log.s[i].sn < 2 * KCP_WND_RCV_DEFAULT);
		if (less(maxuna, log.s[i].una))
			maxuna = log.s[i].una;
		acks++;
	}
	CHECK_EQ(acks, 2 * KCP_WND_RCV_DEFAULT);
	CHECK_EQ(maxuna, KCP_WND_RCV_DEFAULT);
	kcp_getstats(b, &st);
	CHECK_EQ(st.acks_dropped, 0);
	/* reading releases the queue and the stored rest follows, in order */
	while ((n = kcp_recv(b, (char *)d, sizeof(d))) >= 0) {
		CHECK(n == 1 && d[0] == (unsigned char)got);
		got++;
	}
	CHECK_EQ(n, KCP_EAGAIN);
	CHECK_EQ(got, 2 * KCP_WND_RCV_DEFAULT);
	log.n = 0;
	kcp_update(b, 200);
	CHECK(log.n >= 1); /* the window reopened: B tells */
	if (log.n >= 1) {
		CHECK_EQ(log.s[log.n - 1].una, 2 * KCP_WND_RCV_DEFAULT);
		CHECK_EQ(log.s[log.n - 1].wnd, KCP_WND_RCV_DEFAULT);
	}
	kcp_release(b);
}


/* Random everything, per seed: link conditions that change every few
 * seconds (including FIFO mode, outages and a bandwidth limit), modes,
 * windows, message sizes from 0 to 3 fragments. */
static void
random_conf(simnet_t *r, struct simnet_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->loss = (double)(simnet_rand(r) % 35) / 100;
	if (simnet_rand(r) % 10 == 0)
		c->loss = 1.0; /* an outage */
	c->delay_min = (uint32_t)(simnet_rand(r) % 100);
	c->delay_max = c->delay_min + (uint32_t)(simnet_rand(r) % 100);
	c->jitter = (uint32_t)(simnet_rand(r) % 30);
	c->reorder = (double)(simnet_rand(r) % 30) / 100;
	c->dup = (double)(simnet_rand(r) % 20) / 100;
	c->in_order = simnet_rand(r) % 4 == 0;
	c->capacity = simnet_rand(r) % 3 == 0 ? 64 : 0;
	c->bandwidth = simnet_rand(r) % 3 == 0 ? 100000 + (uint32_t)(simnet_rand(r) % 1000000) : 0;
}

TEST(soak_random)
{
	int seed;
	for (seed = 0; seed < 40; seed++) {
		simnet_t *r = simnet_create(NULL, 1900 + (uint64_t)seed);
		struct simnet_conf c;
		struct pair p;
		char what[64];
		int d, ok = 0, mtu;
		uint32_t t0;

		random_conf(r, &c);
		if (c.loss >= 1.0)
			c.loss = 0.1;
		pair_init(&p, &c, 1950 + (uint64_t)seed, 0x5000u + (uint32_t)seed,
		          (uint32_t)simnet_rand(r));
		p.fine = (int)(simnet_rand(r) % 3);
		mtu = 200 + (int)(simnet_rand(r) % 1300);
		for (d = 0; d < 2; d++) {
			kcp_nodelay(p.k[d], (int)(simnet_rand(r) % 3),
			            10 + (int)(simnet_rand(r) % 40),
			            (int)(simnet_rand(r) % 4), (int)(simnet_rand(r) % 2));
			kcp_wndsize(p.k[d], 16 + (int)(simnet_rand(r) % 256),
			            128 + (int)(simnet_rand(r) % 256));
			kcp_setmtu(p.k[d], mtu);
			kcp_setdeadlink(p.k[d], 1000); /* outages are not death here */
			p.f[d].total = 300 + (int)(simnet_rand(r) % 300);
			p.f[d].minlen = 0;
			p.f[d].maxlen = 1 + (int)(simnet_rand(r) % (uint64_t)(3 * (mtu - 24)));
			p.f[d].sendq = (int)(simnet_rand(r) % 200);
		}
		for (t0 = p.now; p.now - t0 < 1800000;) {
			struct simnet_conf nc;
			if (pair_run(&p, flows_acked, 1000 + (uint32_t)(simnet_rand(r) % 5000))) {
				ok = 1;
				break;
			}
			random_conf(r, &nc);
			if (p.now - t0 > 300000)
				nc.loss = 0; /* eventually a usable link */
			simnet_setconf(p.net, &nc);
		}
		snprintf(what, sizeof(what), "soak seed %d", seed);
		if (!ok)
			TU_FAIL("%s: not done", what);
		check_flows(&p, what);
		VERBOSE("    %s: %d+%d msgs, mtu %d, step mode %d, %u ms virtual, "
		        "%ld steps\n", what, p.f[0].total, p.f[1].total, mtu,
		        p.fine, p.now - t0, p.steps);
		pair_free(&p);
		simnet_free(r);
	}
}

static const struct tu_test tests[] = {
	TU(simnet_determinism),
	TU(simnet_conditions),
	TU(simnet_capacity_bandwidth),
	TU(api_arguments),
	TU(zero_length_message),
	TU(small_buffer_peeksize),
	TU(delivery_loss0_default),
	TU(delivery_loss0_fast),
	TU(delivery_loss10_default),
	TU(delivery_loss10_fast),
	TU(delivery_loss30_default),
	TU(delivery_loss30_fast),
	TU(delivery_in_order_fine_steps),
	TU(fragment_max_default),
	TU(fragment_max_mtu50),
	TU(fragment_max_mtu576_wnd256),
	TU(fragment_max_mtu1000_wnd300),
	TU(fragment_max_mtu200_wnd170),
	TU(fragment_peer_too_big),
	TU(stream_mode),
	TU(wraparound),
	TU(timer_wrap),
	TU(minrto),
	TU(rto_short_rtt_minrto1),
	TU(rto_short_rtt_minrto5),
	TU(rto_short_rtt_nodelay_floor),
	TU(rto_classic_interval),
	TU(rto_jitter_no_storm),
	TU(window_full_recovers),
	TU(window_probe),
	TU(deadlink_default),
	TU(deadlink_fast),
	TU(deadlink_short),
	TU(bad_input_each),
	TU(bad_input_random),
	TU(bad_input_mutated),
	TU(idle_memory),
	TU(many_conversations),
	TU(narrow_link),
	TU(link_outage),
	TU(mtu_change_message),
	TU(mtu_change_stream),
	TU(ack_list_bounded),
	TU(push_outside_window),
	TU(window_overrun),
	TU(soak_random),
	TU(eager_timing),
	TU(ackdelay_timing),
	TU(rto_peer_ack_delay),
	TU(ride_ack_timing),
	TU(ride_bulk_acks_at_once),
	TU(ride_frame_sync_streams),
	TU(check_no_spin),
	TU(cwnd_random_loss),
	TU(pool_trim),
	TU(wire_vectors), /* last: with -v its vectors end the output */
};

int
main(int argc, char **argv)
{
	return tu_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
