/*
 * kcp_sim.c - the classic KCP latency benchmark (skywind3000/kcp test.cpp)
 * in virtual time, over test/simnet.
 *
 * Setup, as in the classic test: 10% round-trip loss (5% each way), one-way
 * delay uniform in 30..61 ms with packets kept in order (FIFO per
 * direction), at most 1000 packets queued per direction, windows 128/128,
 * both objects updated every 1 ms. A sends an 8-byte message (index, send
 * time) every 20 ms; B echoes every message; the run stops once more than
 * --msgs (1000) echoes are back, as the classic loop does (next > 1000).
 *
 * Modes (nodelay, interval, resend, nc): default (0,10,0,0), normal
 * (0,10,0,1), fast (2,10,2,1) with A's minimum RTO at 10 ms and A's fast
 * resend at 1, as in the current classic test.cpp.
 *
 * One seed is one sample, so each mode runs over --seeds seeds (21) and the
 * medians of avgrtt and maxrtt are reported. Bandwidth is counted here, at
 * the output callback (datagrams, bytes, and segments parsed from the
 * 24-byte headers), so the figures do not depend on the implementation.
 *
 * Uses only the classic-shaped API, so the same file builds against the
 * classic ikcp.c through a shim header that maps kcp_* to ikcp_*.
 *
 * Output: one line per seed and mode, then per mode
 *   RESULT mode=fast avgrtt=... maxrtt=... sent_segments=... sent_bytes=...
 * Exit status 0 when every message came back intact and in order.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcp.h"
#include "kcpwire.h"
#include "simnet.h"

#ifdef KCP_CLASSIC_SHIM
#define IMPL "classic"
#else
#define IMPL "moongate"
#endif

/* --eager N: moongate's kcp_seteager flags (default: the object's own,
 * KCP_EAGER_ACK|KCP_EAGER_DATA; 0 is the classic flush timing). */
static int eager = -1;

static const char *
impl_name(void)
{
	static char name[32];
	if (eager < 0)
		return IMPL;
	snprintf(name, sizeof(name), "%s-eager%d", IMPL, eager);
	return name;
}

#define CONV 0x11223344u
#define MAX_VTIME 3600000u /* give up after an hour of virtual time */

struct mode {
	const char *name;
	int nodelay, interval, resend, nc;
	int a_resend, a_minrto; /* A's own settings when a_minrto != 0 */
	int pub_avg, pub_max;   /* classic's published figures (test.cpp) */
};

static const struct mode modes[] = {
	{ "default", 0, 10, 0, 0, 0, 0, 740, 1507 },
	{ "normal", 0, 10, 0, 1, 0, 0, 156, 571 },
	{ "fast", 2, 10, 2, 1, 1, 10, 138, 392 },
};
#define NMODES (int)(sizeof(modes) / sizeof(modes[0]))

/* Counters for one direction, kept at the output callback. */
struct wire {
	uint64_t datagrams;
	uint64_t bytes;
	uint64_t segments;
	uint64_t push;
	uint64_t malformed;
};

struct endpoint {
	simnet_t *net;
	int dir;            /* 0: A->B, 1: B->A */
	const uint32_t *now;
	struct wire w;
};

struct run {
	double avgrtt;
	uint32_t maxrtt;
	uint64_t segments, push, bytes, datagrams;
	uint32_t vtime;
	int ok;
};

/* Count the datagram and its segments, then hand it to the network. */
static int
output(const char *buf, int len, kcp_t *kcp, void *user)
{
	struct endpoint *ep = user;
	const unsigned char *p = (const unsigned char *)buf;
	int off = 0;

	(void)kcp;
	ep->w.datagrams++;
	ep->w.bytes += (uint64_t)len;
	while (off + KCP_OVERHEAD <= len) {
		uint32_t seglen = kw_get32(p + off + 20);
		ep->w.segments++;
		if (p[off + 4] == KCP_CMD_PUSH)
			ep->w.push++;
		if (seglen > (uint32_t)(len - off - KCP_OVERHEAD)) {
			ep->w.malformed++;
			break;
		}
		off += KCP_OVERHEAD + (int)seglen;
	}
	if (off != len)
		ep->w.malformed++;
	simnet_send(ep->net, ep->dir, buf, len, *ep->now);
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	if (n % 2)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * One run of the classic loop. Every 1 ms: update A and B, A sends what is
 * due (every 20 ms), deliver due packets A->B into B then B->A into A, B
 * echoes everything it can read, A reads the echoes and measures the RTT.
 */
static void
run_mode(const struct mode *m, uint64_t seed, uint32_t nmsgs, int verbose,
    struct run *r)
{
	struct simnet_conf conf;
	struct endpoint ea, eb;
	simnet_t *net;
	kcp_t *a, *b;
	uint32_t *sent_at;
	uint32_t current, start, slap, index = 0, next = 0;
	uint64_t sumrtt = 0;
	uint32_t count = 0, maxrtt = 0;
	unsigned char buffer[2000];
	int hr, bad = 0;

	memset(r, 0, sizeof(*r));
	memset(&conf, 0, sizeof(conf));
	conf.loss = 0.05;       /* classic: lostrate 10 / 2, per direction */
	conf.delay_min = 30;    /* classic: rttmin 60 / 2 */
	conf.delay_max = 61;    /* classic: 30 + rand() % (62 - 30) */
	conf.in_order = 1;      /* classic: std::list, released from the front */
	conf.capacity = 1000;   /* classic: nmax */
	net = simnet_create(&conf, seed);
	/* index is sent every 20 ms until the loop ends; bound it generously */
	sent_at = calloc((size_t)MAX_VTIME / 20 + 2, sizeof(*sent_at));
	if (net == NULL || sent_at == NULL) {
		fprintf(stderr, "kcp_sim: out of memory\n");
		exit(2);
	}

	start = current = 1000;
	memset(&ea, 0, sizeof(ea));
	memset(&eb, 0, sizeof(eb));
	ea.net = eb.net = net;
	ea.dir = 0;
	eb.dir = 1;
	ea.now = eb.now = &current;

	a = kcp_create(CONV, &ea);
	b = kcp_create(CONV, &eb);
	if (a == NULL || b == NULL) {
		fprintf(stderr, "kcp_sim: kcp_create failed\n");
		exit(2);
	}
	kcp_setoutput(a, output);
	kcp_setoutput(b, output);
	kcp_wndsize(a, 128, 128);
	kcp_wndsize(b, 128, 128);
#ifndef KCP_CLASSIC_SHIM
	if (eager >= 0) {
		kcp_seteager(a, eager);
		kcp_seteager(b, eager);
	}
#endif
	kcp_nodelay(b, m->nodelay, m->interval, m->resend, m->nc);
	if (m->a_minrto) {
		/* classic test.cpp: kcp1->rx_minrto = 10; kcp1->fastresend = 1; */
		kcp_nodelay(a, m->nodelay, m->interval, m->a_resend, m->nc);
		kcp_setminrto(a, m->a_minrto);
	} else {
		kcp_nodelay(a, m->nodelay, m->interval, m->resend, m->nc);
	}

	slap = current + 20;
	for (;;) {
		current++;
		kcp_update(a, current);
		kcp_update(b, current);

		for (; (int32_t)(current - slap) >= 0; slap += 20) {
			kw_put32(buffer, index);
			kw_put32(buffer + 4, current);
			sent_at[index] = current;
			index++;
			if (kcp_send(a, (const char *)buffer, 8) < 0)
				bad++;
		}

		while ((hr = simnet_recv(net, 0, buffer, sizeof(buffer), current)) >= 0)
			kcp_input(b, (const char *)buffer, hr);
		while ((hr = simnet_recv(net, 1, buffer, sizeof(buffer), current)) >= 0)
			kcp_input(a, (const char *)buffer, hr);

		while ((hr = kcp_recv(b, (char *)buffer, 10)) >= 0) {
			if (kcp_send(b, (const char *)buffer, hr) < 0)
				bad++;
		}

		while ((hr = kcp_recv(a, (char *)buffer, 10)) >= 0) {
			uint32_t sn = kw_get32(buffer), ts = kw_get32(buffer + 4);
			uint32_t rtt = current - ts;
			if (hr != 8 || sn != next || sn >= index || sent_at[sn] != ts) {
				fprintf(stderr, "kcp_sim: mode=%s seed=%llu bad echo: "
				    "len=%d sn=%u expected %u ts=%u\n", m->name,
				    (unsigned long long)seed, hr, sn, next, ts);
				bad++;
				goto done;
			}
			next++;
			sumrtt += rtt;
			count++;
			if (rtt > maxrtt)
				maxrtt = rtt;
			if (verbose > 1)
				printf("[RECV] mode=%s sn=%u rtt=%u\n", m->name, sn, rtt);
		}
		if (next > nmsgs)
			break;
		if (current - start > MAX_VTIME) {
			fprintf(stderr, "kcp_sim: mode=%s seed=%llu: only %u of %u "
			    "echoes back after %u ms\n", m->name,
			    (unsigned long long)seed, next, nmsgs + 1, MAX_VTIME);
			bad++;
			break;
		}
	}
done:
	r->avgrtt = count ? (double)sumrtt / count : 0;
	r->maxrtt = maxrtt;
	r->segments = ea.w.segments + eb.w.segments;
	r->push = ea.w.push + eb.w.push;
	r->bytes = ea.w.bytes + eb.w.bytes;
	r->datagrams = ea.w.datagrams + eb.w.datagrams;
	r->vtime = current - start;
	if (ea.w.malformed || eb.w.malformed) {
		fprintf(stderr, "kcp_sim: malformed datagrams from output\n");
		bad++;
	}
	r->ok = bad == 0;
#ifndef KCP_CLASSIC_SHIM
	if (verbose) {
		struct kcp_stats sa, sb;
		kcp_getstats(a, &sa);
		kcp_getstats(b, &sb);
		printf("  stats mode=%s seed=%llu A: push=%llu rto=%llu fast=%llu "
		    "in_dup=%llu  B: push=%llu rto=%llu fast=%llu in_dup=%llu\n", m->name, (unsigned long long)seed,
		    (unsigned long long)sa.out_push,
		    (unsigned long long)sa.retrans_timeout,
		    (unsigned long long)sa.retrans_fast,
		    (unsigned long long)sa.in_dup,
		    (unsigned long long)sb.out_push,
		    (unsigned long long)sb.retrans_timeout,
		    (unsigned long long)sb.retrans_fast,
		    (unsigned long long)sb.in_dup);
	}
#endif

	kcp_release(a);
	kcp_release(b);
	simnet_free(net);
	free(sent_at);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: kcp_sim [--quick] [--seeds N] [--seed0 S] [--msgs N]\n"
	    "               [--mode default|normal|fast] [-v]\n"
	    "  --quick   1 seed, 200 messages per mode (smoke test)\n"
	    "  --seeds   seeds per mode (default 21); medians are reported\n"
	    "  --msgs    stop once more than N echoes returned (default 1000)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int nseeds = 21, verbose = 0, failures = 0, i, s;
	uint32_t nmsgs = 1000;
	uint64_t seed0 = 1;
	const char *only = NULL;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			nseeds = 1;
			nmsgs = 200;
		} else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
			nseeds = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--seed0") == 0 && i + 1 < argc) {
			seed0 = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--msgs") == 0 && i + 1 < argc) {
			nmsgs = (uint32_t)strtoul(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--eager") == 0 && i + 1 < argc) {
			eager = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
			only = argv[++i];
		} else if (strcmp(argv[i], "-v") == 0) {
			verbose++;
		} else {
			usage();
		}
	}
	if (nseeds < 1 || nmsgs < 1)
		usage();

	printf("kcp_sim impl=%s seeds=%d msgs=%u loss=5%%/way delay=30..61ms "
	    "in_order=1 wnd=128/128 update=1ms\n", impl_name(), nseeds, nmsgs);

	for (i = 0; i < NMODES; i++) {
		const struct mode *m = &modes[i];
		double *avg, *max, *seg, *byt, *dgr;
		int ok = 1;

		if (only && strcmp(only, m->name) != 0)
			continue;
		avg = calloc((size_t)nseeds, sizeof(double));
		max = calloc((size_t)nseeds, sizeof(double));
		seg = calloc((size_t)nseeds, sizeof(double));
		byt = calloc((size_t)nseeds, sizeof(double));
		dgr = calloc((size_t)nseeds, sizeof(double));
		if (!avg || !max || !seg || !byt || !dgr) {
			fprintf(stderr, "kcp_sim: out of memory\n");
			return 2;
		}
		for (s = 0; s < nseeds; s++) {
			struct run r;
			uint64_t seed = seed0 + (uint64_t)s;
			run_mode(m, seed, nmsgs, verbose, &r);
			printf("seed=%llu mode=%s avgrtt=%.1f maxrtt=%u "
			    "sent_segments=%llu sent_push=%llu sent_datagrams=%llu "
			    "sent_bytes=%llu vtime_ms=%u ok=%d\n",
			    (unsigned long long)seed, m->name, r.avgrtt, r.maxrtt,
			    (unsigned long long)r.segments,
			    (unsigned long long)r.push,
			    (unsigned long long)r.datagrams,
			    (unsigned long long)r.bytes, r.vtime, r.ok);
			fflush(stdout);
			avg[s] = r.avgrtt;
			max[s] = r.maxrtt;
			seg[s] = (double)r.segments;
			byt[s] = (double)r.bytes;
			dgr[s] = (double)r.datagrams;
			if (!r.ok)
				ok = 0;
		}
		if (!ok)
			failures++;
		printf("RESULT impl=%s mode=%s seeds=%d msgs=%u avgrtt=%.1f "
		    "maxrtt=%.0f sent_segments=%.0f sent_datagrams=%.0f "
		    "sent_bytes=%.0f classic_published_avgrtt=%d "
		    "classic_published_maxrtt=%d ok=%d\n",
		    impl_name(), m->name, nseeds, nmsgs, median(avg, nseeds),
		    median(max, nseeds), median(seg, nseeds), median(dgr, nseeds),
		    median(byt, nseeds), m->pub_avg, m->pub_max, ok);
		fflush(stdout);
		free(avg);
		free(max);
		free(seg);
		free(byt);
		free(dgr);
	}
	return failures ? 1 : 0;
}
