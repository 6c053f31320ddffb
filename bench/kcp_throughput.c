/*
 * kcp_throughput.c - messages per CPU second through pairs of KCP objects
 * in memory, with message latency in virtual ms.
 *
 * Each pair is a sender A and a receiver B in fast mode (nodelay 1,
 * interval 10, resend 2, nc 1, windows 128/128, mtu 1400). A fixed total
 * of messages is spread over the pairs; with many pairs the traffic goes
 * round-robin over all of them at once, so every object is active and the
 * caches are under pressure.
 *
 * The link is a small in-memory queue of datagrams: each datagram is lost
 * with probability --loss (per direction, from a fixed-seed PRNG) or
 * delivered 1 or 2 ms later (so some reordering). Virtual time advances
 * 1 ms per step; every step: due datagrams go to kcp_input, then for each
 * pair A's queue is topped up to kcp_waitsnd() < 2*wnd, A and B are
 * updated and B is drained. Every message carries its index, send time and
 * pair, then a fixed pseudo-random body; B checks the length, the order,
 * the pair, every byte of the body (memcmp) and a running checksum of the
 * indices and send times, and the run fails if anything is missing, out
 * of order or corrupt.
 *
 * Only the loop is timed, with CLOCK_PROCESS_CPUTIME_ID. Uses only the
 * classic-shaped API, so the same file builds against the classic ikcp.c
 * through a shim header.
 *
 * Output: one RESULT line per combination, then a summary RESULT line.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kcp.h"
#include "kcpwire.h"

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

#define WND 128
#define MTU 1400
#define MAXMSG 4096
#define SLOTS 4                 /* delivery ring: delays are 1 or 2 ms */
#define MAX_VTIME 600000u       /* fail after 10 virtual minutes */
#define LAT_BUCKETS 4096        /* latency histogram, 1 ms buckets */

struct pkt {
	uint32_t pair;
	uint32_t dir;           /* 0: A->B, 1: B->A */
	uint32_t len;
	uint32_t off;           /* into the slot's data */
};

struct slot {
	struct pkt *p;
	size_t n, cap;
	unsigned char *data;
	size_t used, dcap;
};

struct link {
	struct slot slot[SLOTS];
	uint64_t rng;
	uint64_t loss_thresh;   /* drop when rng < this */
	uint32_t now;
	uint64_t datagrams, bytes, segments, lost;
};

struct endpoint {
	struct link *link;
	uint32_t pair;
	uint32_t dir;
};

struct pair {
	kcp_t *a, *b;
	struct endpoint ea, eb;
	uint32_t quota;         /* messages this pair sends */
	uint32_t sent, recvd;
	uint64_t hsend, hrecv;  /* running checksums */
};

struct result {
	double cpu_s;
	double msgs_per_cpu_s;
	double avg_lat, p99_lat;
	uint32_t max_lat;
	uint32_t vtime;
	uint64_t datagrams, bytes, segments, lost;
	int ok;
};

static uint64_t
rng_next(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Chain a message's index and send time into a running checksum. */
static uint64_t
mix(uint64_t h, uint32_t idx, uint32_t ts)
{
	h ^= ((uint64_t)idx << 32 | ts) + 0x9E3779B97F4A7C15ULL;
	h *= 0xBF58476D1CE4E5B9ULL;
	return h ^ (h >> 31);
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL) {
		fprintf(stderr, "kcp_throughput: out of memory\n");
		exit(2);
	}
	return p;
}

/* Count the datagram and its segments, then queue it 1 or 2 ms ahead, or
 * drop it. */
static int
output(const char *buf, int len, kcp_t *kcp, void *user)
{
	struct endpoint *ep = user;
	struct link *l = ep->link;
	const unsigned char *p = (const unsigned char *)buf;
	uint64_t r;
	struct slot *s;
	struct pkt *pk;
	int off = 0;

	(void)kcp;
	l->datagrams++;
	l->bytes += (uint64_t)len;
	while (off + KCP_OVERHEAD <= len) {
		l->segments++;
		off += KCP_OVERHEAD + (int)kw_get32(p + off + 20);
	}
	r = rng_next(&l->rng);
	if (r < l->loss_thresh) {
		l->lost++;
		return 0;
	}
	s = &l->slot[(l->now + 1 + (uint32_t)(r & 1)) % SLOTS];
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->p = xrealloc(s->p, s->cap * sizeof(*s->p));
	}
	if (s->used + (size_t)len > s->dcap) {
		while (s->used + (size_t)len > s->dcap)
			s->dcap = s->dcap ? s->dcap * 2 : 65536;
		s->data = xrealloc(s->data, s->dcap);
	}
	pk = &s->p[s->n++];
	pk->pair = ep->pair;
	pk->dir = ep->dir;
	pk->len = (uint32_t)len;
	pk->off = (uint32_t)s->used;
	memcpy(s->data + s->used, buf, (size_t)len);
	s->used += (size_t)len;
	return 0;
}

/* Delivery ring buffers, kept from one run to the next. */
static struct slot ring[SLOTS];

static double
cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
run(double loss, uint32_t npairs, int size, uint32_t total, uint32_t rate,
    uint64_t seed, struct result *res)
{
	struct link link;
	struct pair *pairs;
	static uint64_t lat_hist[LAT_BUCKETS];
	unsigned char tmpl[MAXMSG], msg[MAXMSG], rbuf[MAXMSG];
	uint64_t lat_sum = 0, delivered = 0, tmp = seed ^ 0xA5A5A5A5ULL;
	uint32_t i, done = 0, start, lat_max = 0;
	/* Only the middle three fifths are timed: the start (rings growing,
	 * first touch of memory, every window filling) and the tail (pairs
	 * finishing one by one) are not the steady state being measured. */
	uint64_t warm = total / 5, cool = total - total / 5, d0 = 0, d1 = 0;
	double t0 = 0, t1 = 0;
	int bad = 0;

	memset(res, 0, sizeof(*res));
	memset(&link, 0, sizeof(link));
	/* the delivery ring's buffers outlive runs, so their growth and first
	 * touch are not charged to the implementation being measured */
	memcpy(link.slot, ring, sizeof(ring));
	memset(lat_hist, 0, sizeof(lat_hist));
	link.rng = seed * 0x9E3779B97F4A7C15ULL + 1;
	link.loss_thresh = (uint64_t)(loss * 18446744073709551615.0);
	if (loss <= 0)
		link.loss_thresh = 0;
	start = link.now = 1000;
	for (i = 0; i < (uint32_t)size; i++)
		tmpl[i] = (unsigned char)rng_next(&tmp);
	memcpy(msg, tmpl, (size_t)size);

	pairs = calloc(npairs, sizeof(*pairs));
	if (pairs == NULL) {
		fprintf(stderr, "kcp_throughput: out of memory\n");
		exit(2);
	}
	for (i = 0; i < npairs; i++) {
		struct pair *p = &pairs[i];
		p->quota = total / npairs + (i < total % npairs ? 1 : 0);
		p->ea.link = p->eb.link = &link;
		p->ea.pair = p->eb.pair = i;
		p->ea.dir = 0;
		p->eb.dir = 1;
		p->a = kcp_create(i + 1, &p->ea);
		p->b = kcp_create(i + 1, &p->eb);
		if (p->a == NULL || p->b == NULL) {
			fprintf(stderr, "kcp_throughput: kcp_create failed\n");
			exit(2);
		}
		kcp_setoutput(p->a, output);
		kcp_setoutput(p->b, output);
		kcp_setmtu(p->a, MTU);
		kcp_setmtu(p->b, MTU);
		kcp_wndsize(p->a, WND, WND);
		kcp_wndsize(p->b, WND, WND);
#ifndef KCP_CLASSIC_SHIM
		if (eager >= 0) {
			kcp_seteager(p->a, eager);
			kcp_seteager(p->b, eager);
		}
#endif
		kcp_nodelay(p->a, 1, 10, 2, 1);
		kcp_nodelay(p->b, 1, 10, 2, 1);
		if (p->quota == 0)
			done++;
	}

	while (done < npairs) {
		struct slot *s;
		size_t k;

		link.now++;
		if (link.now - start > MAX_VTIME) {
			fprintf(stderr, "kcp_throughput: %u of %u pairs done after "
			    "%u virtual ms\n", done, npairs, MAX_VTIME);
			bad++;
			break;
		}

		/* deliver what is due now */
		s = &link.slot[link.now % SLOTS];
		for (k = 0; k < s->n; k++) {
			struct pkt *pk = &s->p[k];
			struct pair *p = &pairs[pk->pair];
			kcp_input(pk->dir == 0 ? p->b : p->a,
			    (const char *)s->data + pk->off, (long)pk->len);
		}
		s->n = 0;
		s->used = 0;

		for (i = 0; i < npairs; i++) {
			struct pair *p = &pairs[i];
			int n;
			uint32_t burst = 0;

			/* pairs start 0..9 ms apart, so that their 10 ms flush
			 * clocks are spread as a real server's sessions are, not
			 * all due in the same ms */
			if (link.now - start <= i % 10)
				continue;
			/* saturated (rate 0): keep the queue full; paced: rate
			 * messages per virtual ms, while the queue has room */
			while (p->sent < p->quota && kcp_waitsnd(p->a) < 2 * WND &&
			    (rate == 0 || burst++ < rate)) {
				/* msg holds the template body; set the header */
				kw_put32(msg, p->sent);
				kw_put32(msg + 4, link.now);
				kw_put32(msg + 8, i);
				p->hsend = mix(p->hsend, p->sent, link.now);
				if (kcp_send(p->a, (const char *)msg, size) < 0) {
					fprintf(stderr, "kcp_throughput: kcp_send failed\n");
					bad++;
					goto out;
				}
				p->sent++;
			}
			kcp_update(p->a, link.now);
			kcp_update(p->b, link.now);
			while ((n = kcp_recv(p->b, (char *)rbuf, sizeof(rbuf))) >= 0) {
				uint32_t lat = link.now - kw_get32(rbuf + 4);
				if (n != size || kw_get32(rbuf) != p->recvd ||
				    kw_get32(rbuf + 8) != i ||
				    memcmp(rbuf + 12, tmpl + 12, (size_t)size - 12)) {
					fprintf(stderr, "kcp_throughput: pair %u: bad "
					    "message len=%d idx=%u expected %u\n", i, n,
					    kw_get32(rbuf), p->recvd);
					bad++;
					goto out;
				}
				p->hrecv = mix(p->hrecv, p->recvd, kw_get32(rbuf + 4));
				p->recvd++;
				delivered++;
				if (delivered == warm) {
					t0 = cpu_now();
					d0 = delivered;
				} else if (delivered == cool) {
					t1 = cpu_now();
					d1 = delivered;
				}
				lat_sum += lat;
				if (lat > lat_max)
					lat_max = lat;
				lat_hist[lat < LAT_BUCKETS ? lat : LAT_BUCKETS - 1]++;
				if (p->recvd == p->quota) {
					done++;
					if (p->hrecv != p->hsend) {
						fprintf(stderr, "kcp_throughput: pair %u: "
						    "checksum mismatch\n", i);
						bad++;
						goto out;
					}
				}
			}
		}
	}
out:
	if (delivered != total || d1 <= d0)
		bad++;
	res->cpu_s = t1 - t0;
	res->msgs_per_cpu_s = res->cpu_s > 0 ? (double)(d1 - d0) / res->cpu_s : 0;
	res->avg_lat = delivered ? (double)lat_sum / (double)delivered : 0;
	{
		uint64_t want = delivered - delivered / 100, acc = 0;
		uint32_t b;
		for (b = 0; b < LAT_BUCKETS; b++) {
			acc += lat_hist[b];
			if (acc >= want && acc > 0)
				break;
		}
		res->p99_lat = b;
	}
	res->max_lat = lat_max;
	res->vtime = link.now - start;
	res->datagrams = link.datagrams;
	res->bytes = link.bytes;
	res->segments = link.segments;
	res->lost = link.lost;
	res->ok = bad == 0;

	for (i = 0; i < npairs; i++) {
		kcp_release(pairs[i].a);
		kcp_release(pairs[i].b);
	}
	free(pairs);
	for (i = 0; i < SLOTS; i++) {
		link.slot[i].n = 0;
		link.slot[i].used = 0;
	}
	memcpy(ring, link.slot, sizeof(ring));
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Messages per pair per virtual ms: 0 saturates (one pair: the queue is
 * kept full, a pure CPU measure with everything in cache). With many pairs
 * the load is paced, the same for every implementation: saturating 1000
 * pairs in virtual time makes the bytes moved per virtual ms, and so the
 * working set between two visits of a pair, grow with the protocol's own
 * speed, and a faster protocol would be charged cache misses a real-time
 * server never sees. */
static uint32_t
rate_of(uint32_t npairs, int only_rate)
{
	if (only_rate >= 0)
		return (uint32_t)only_rate;
	return npairs > 1 ? 1 : 0;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: kcp_throughput [--quick] [--msgs N] [--repeat R]\n"
	    "                      [--size B] [--loss P] [--pairs N] [--seed S]\n"
	    "                      [--rate R]\n"
	    "  defaults: 1000000 messages, 5 repeats (median reported),\n"
	    "  every combination of loss 0/0.1, pairs 1/1000, size 32/512;\n"
	    "  --size, --loss, --pairs restrict to one value each;\n"
	    "  --rate: messages per pair per virtual ms, 0 = keep the queue\n"
	    "  full (default: 0 for one pair, 1 for many).\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const double losses[] = { 0, 0.1 };
	static const uint32_t npairs[] = { 1, 1000 };
	static const int sizes[] = { 32, 512 };
	uint32_t total = 1000000, only_pairs = 0;
	int repeat = 5, only_size = 0, i, li, pi, si, combos = 0, failures = 0;
	double only_loss = -1, min_rate = 0, sum_cpu = 0, sum_msgs = 0;
	int only_rate = -1;
	uint64_t seed = 1;
	int quick = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			total = 20000;
			repeat = 1;
			quick = 1;
		} else if (strcmp(argv[i], "--msgs") == 0 && i + 1 < argc) {
			total = (uint32_t)strtoul(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
			repeat = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
			only_size = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--loss") == 0 && i + 1 < argc) {
			only_loss = atof(argv[++i]);
		} else if (strcmp(argv[i], "--eager") == 0 && i + 1 < argc) {
			eager = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
			only_rate = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc) {
			only_pairs = (uint32_t)strtoul(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else {
			usage();
		}
	}
	if (repeat < 1 || total < 1 || only_size < 0 || only_size > MAXMSG ||
	    (only_size > 0 && only_size < 12) || only_loss >= 1)
		usage();

	printf("kcp_throughput impl=%s msgs=%u repeat=%d mode=fast(1,10,2,1) "
	    "wnd=%d/%d mtu=%d link=1-2ms\n", impl_name(), total, repeat, WND, WND, MTU);

	for (li = 0; li < 2; li++)
	for (pi = 0; pi < 2; pi++)
	for (si = 0; si < 2; si++) {
		double loss = only_loss >= 0 ? only_loss : losses[li];
		uint32_t np = only_pairs ? only_pairs : npairs[pi];
		int size = only_size ? only_size : sizes[si];
		double *rate = calloc((size_t)repeat, sizeof(double));
		/* at least 4000 messages per pair, so that with many pairs the
		 * steady state is longer than the windows filling up */
		uint32_t n = np * 4000u > total && !quick ? np * 4000u : total;
		struct result r, med;
		int k, ok = 1;

		if ((only_loss >= 0 && li > 0) || (only_pairs && pi > 0) ||
		    (only_size && si > 0))
			continue;
		if (rate == NULL)
			return 2;
		for (k = 0; k < repeat; k++) {
			run(loss, np, size, n, rate_of(np, only_rate), seed, &r);
			printf("run impl=%s loss=%g pairs=%u size=%d rep=%d cpu_s=%.4f "
			    "msgs_per_cpu_s=%.0f avg_latency_ms=%.2f ok=%d\n", impl_name(),
			    loss, np, size, k, r.cpu_s, r.msgs_per_cpu_s, r.avg_lat,
			    r.ok);
			fflush(stdout);
			rate[k] = r.msgs_per_cpu_s;
			if (!r.ok)
				ok = 0;
			if (k == 0)
				med = r;
		}
		qsort(rate, (size_t)repeat, sizeof(double), cmp_double);
		med.msgs_per_cpu_s = repeat % 2 ? rate[repeat / 2] :
		    (rate[repeat / 2 - 1] + rate[repeat / 2]) / 2;
		printf("RESULT impl=%s loss=%g pairs=%u size=%d rate=%u msgs=%u "
		    "msgs_per_cpu_s=%.0f avg_latency_ms=%.2f p99_latency_ms=%.0f "
		    "max_latency_ms=%u vtime_ms=%u sent_datagrams=%llu "
		    "sent_segments=%llu sent_bytes=%llu lost=%llu ok=%d\n",
		    impl_name(), loss, np, size, rate_of(np, only_rate), n,
		    med.msgs_per_cpu_s, med.avg_lat,
		    med.p99_lat, med.max_lat, med.vtime,
		    (unsigned long long)med.datagrams,
		    (unsigned long long)med.segments,
		    (unsigned long long)med.bytes, (unsigned long long)med.lost, ok);
		fflush(stdout);
		if (!ok)
			failures++;
		if (combos == 0 || med.msgs_per_cpu_s < min_rate)
			min_rate = med.msgs_per_cpu_s;
		if (med.msgs_per_cpu_s > 0) {
			sum_msgs += n;
			sum_cpu += n / med.msgs_per_cpu_s;
		}
		combos++;
		free(rate);
	}
	/* overall: all messages over the CPU time of all (median) runs */
	printf("RESULT impl=%s summary combos=%d msgs_per_cpu_s=%.0f "
	    "min_msgs_per_cpu_s=%.0f failures=%d ok=%d\n", impl_name(), combos,
	    sum_cpu > 0 ? sum_msgs / sum_cpu : 0, min_rate, failures,
	    failures == 0);
	return failures ? 1 : 0;
}
