/*
 * fec_bench.c - CPU cost of the FEC codec (core/proto/fec.c): encoding, and
 * decoding with the worst loss the code still repairs.
 *
 * Encode: --packets packets of --size bytes through fec_enc_add, groups
 * of k data and m parity shards (parity shards go to a callback that only
 * counts them). Decode: a set of 64 encoded groups is fed again and again
 * (the group ids rewritten each round, so every round is new to the
 * decoder); from every group the first m data shards are dropped, so each
 * group is rebuilt from its m parity shards: m recoveries per group, the
 * most work a group can cost. A second decode run loses nothing (the
 * plain path: one copy per data shard, freed when the parity says the
 * group is whole). Before timing, one verifying round checks that every
 * packet comes out once with its bytes; the program exits non-zero if
 * not.
 *
 * Only the loops are timed, with CLOCK_PROCESS_CPUTIME_ID; each figure
 * is the median of 3 repeats. MB/s counts packet bytes (10^6 bytes per
 * CPU second): the application's data, not the shards.
 *
 *   fec_bench [--k 8] [--m 2] [--size 1200] [--packets 200000] [--quick]
 *   RESULT bench=fec k=8 m=2 size=1200 packets=... encode_mb_s=...
 *          encode_us_per_pkt=... decode_mb_s=... recover_us_per_pkt=...
 *          decode_lossless_mb_s=... overhead=...
 *
 * recover_us_per_pkt: decode time per packet delivered in the lossy run
 * (m of every k packets rebuilt). overhead: bytes on the wire per packet
 * byte, headers and parity included.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fec.h"

#define NGROUPS 64

static double
cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
median3(double *v)
{
	qsort(v, 3, sizeof *v, cmp_double);
	return v[1];
}

struct counter {
	uint64_t shards, bytes;
};

static void
count_out(const uint8_t *shard, size_t len, void *user)
{
	struct counter *c = user;
	(void)shard;
	c->shards++;
	c->bytes += len;
}

/* The stored groups, for the decoder. */
struct store {
	int n;
	uint8_t **p;
	size_t *len;
	int cap;
};

static void
store_out(const uint8_t *shard, size_t len, void *user)
{
	struct store *s = user;
	if (s->n == s->cap) {
		fprintf(stderr, "fec_bench: store full\n");
		exit(1);
	}
	s->p[s->n] = malloc(len);
	if (!s->p[s->n])
		exit(1);
	memcpy(s->p[s->n], shard, len);
	s->len[s->n++] = len;
}

static void
fill(uint8_t *p, size_t n, uint32_t id)
{
	size_t i;
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(id * 131 + i * 7);
	if (n >= 4)
		memcpy(p, &id, 4);
}

struct check {
	size_t size;
	uint64_t delivered, bytes;
	unsigned char *seen;  /* per packet id of one round */
	uint32_t npkts;
	int bad;
};

static void
deliver_check(uint8_t *p, size_t len, void *user)
{
	struct check *c = user;
	static uint8_t want[70000];
	uint32_t id;

	c->delivered++;
	if (len != c->size || len < 4) {
		c->bad++;
		return;
	}
	memcpy(&id, p, 4);
	fill(want, len, id);
	if (id >= c->npkts || c->seen[id] || memcmp(want, p, len) != 0) {
		c->bad++;
		return;
	}
	c->seen[id] = 1;
}

static void
deliver_count(uint8_t *p, size_t len, void *user)
{
	struct check *c = user;
	(void)p;
	c->delivered++;
	c->bytes += len;
}

/* Feed `rounds` rounds of the stored groups, group ids moved on by
 * NGROUPS each round; lose the first `lose` data shards of each group. */
static int
decode_rounds(fec_dec_t *d, struct store *st, int k, int m, int lose,
              int rounds, uint32_t *round0, fec_deliver_fn fn, void *user)
{
	int r, g, s, per = k + m;

	for (r = 0; r < rounds; r++, (*round0)++) {
		for (g = 0; g < NGROUPS; g++) {
			uint32_t gid = *round0 * NGROUPS + (uint32_t)g;
			for (s = 0; s < per; s++) {
				uint8_t *p = st->p[g * per + s];
				if (s < lose)
					continue;
				p[1] = (uint8_t)gid;
				p[2] = (uint8_t)(gid >> 8);
				p[3] = (uint8_t)(gid >> 16);
				p[4] = (uint8_t)(gid >> 24);
				if (fec_dec_input(d, p, st->len[g * per + s], 0, fn,
				                  user) < 0)
					return -1;
			}
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct fec_config c;
	struct counter cnt = { 0, 0 };
	struct store st = { 0, NULL, NULL, 0 };
	struct check chk;
	fec_enc_t *e;
	fec_dec_t *d;
	uint8_t *pkt;
	int k = 8, m = 2, size = 1200, i, rep, rounds;
	long packets = 200000;
	double t0, enc[3], dec[3], dec0[3];
	uint32_t round0 = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--k") && i + 1 < argc)
			k = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--m") && i + 1 < argc)
			m = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--packets") && i + 1 < argc)
			packets = atol(argv[++i]);
		else if (!strcmp(argv[i], "--quick"))
			packets = 20000;
		else {
			fprintf(stderr, "usage: fec_bench [--k 8] [--m 2] "
			        "[--size 1200] [--packets 200000] [--quick]\n");
			return 2;
		}
	}
	fec_config_default(&c);
	c.data = k;
	c.parity = m;
	c.pkt_max = size;
	c.expire_ms = 0;
	if (fec_config_check(&c) != 0 || size < 4 || m > k || packets < 1) {
		fprintf(stderr, "fec_bench: bad k, m or size (m <= k, size >= 4)\n");
		return 2;
	}
	pkt = malloc((size_t)size);
	e = fec_enc_create(&c);
	d = fec_dec_create(&c);
	if (!pkt || !e || !d)
		return 1;

	/* encode */
	for (rep = 0; rep < 3; rep++) {
		fill(pkt, (size_t)size, 1);
		t0 = cpu_now();
		for (i = 0; i < packets; i++) {
			pkt[0] = (uint8_t)i;  /* not the same bytes every time */
			if (fec_enc_add(e, pkt, (size_t)size, 0, count_out, &cnt) < 0)
				return 1;
		}
		enc[rep] = cpu_now() - t0;
	}
	fec_enc_flush(e, count_out, &cnt);

	/* the groups for the decoder */
	st.cap = NGROUPS * (k + m);
	st.p = calloc((size_t)st.cap, sizeof *st.p);
	st.len = calloc((size_t)st.cap, sizeof *st.len);
	if (!st.p || !st.len)
		return 1;
	for (i = 0; i < NGROUPS * k; i++) {
		fill(pkt, (size_t)size, (uint32_t)i);
		fec_enc_add(e, pkt, (size_t)size, 0, store_out, &st);
	}
	if (st.n != st.cap) {
		fprintf(stderr, "fec_bench: %d shards stored, %d expected\n",
		        st.n, st.cap);
		return 1;
	}

	/* one checked round with losses, one without */
	memset(&chk, 0, sizeof chk);
	chk.size = (size_t)size;
	chk.npkts = (uint32_t)(NGROUPS * k);
	chk.seen = calloc(chk.npkts, 1);
	if (!chk.seen)
		return 1;
	if (decode_rounds(d, &st, k, m, m, 1, &round0, deliver_check, &chk) < 0)
		chk.bad++;
	for (i = 0; i < NGROUPS * k; i++)
		if (!chk.seen[i])
			chk.bad++;
	memset(chk.seen, 0, chk.npkts);
	if (decode_rounds(d, &st, k, m, 0, 1, &round0, deliver_check, &chk) < 0)
		chk.bad++;
	for (i = 0; i < NGROUPS * k; i++)
		if (!chk.seen[i])
			chk.bad++;
	if (chk.bad) {
		fprintf(stderr, "fec_bench: %d packets missing, repeated or "
		        "corrupt\n", chk.bad);
		return 1;
	}

	rounds = (int)((packets + NGROUPS * k - 1) / (NGROUPS * k));
	for (rep = 0; rep < 3; rep++) {
		struct check n0, n1;
		memset(&n0, 0, sizeof n0);
		memset(&n1, 0, sizeof n1);
		t0 = cpu_now();
		if (decode_rounds(d, &st, k, m, m, rounds, &round0, deliver_count,
		                  &n1) < 0)
			return 1;
		dec[rep] = cpu_now() - t0;
		t0 = cpu_now();
		if (decode_rounds(d, &st, k, m, 0, rounds, &round0, deliver_count,
		                  &n0) < 0)
			return 1;
		dec0[rep] = cpu_now() - t0;
		if (n1.delivered != (uint64_t)rounds * NGROUPS * k ||
		    n0.delivered != n1.delivered) {
			fprintf(stderr, "fec_bench: delivered %llu and %llu of %llu\n",
			        (unsigned long long)n1.delivered,
			        (unsigned long long)n0.delivered,
			        (unsigned long long)rounds * NGROUPS * k);
			return 1;
		}
	}
	{
		double te = median3(enc), td = median3(dec), td0 = median3(dec0);
		double dpk = (double)rounds * NGROUPS * k;
		double wire = (double)(k * (6 + size) + m * (10 + size)) /
		              ((double)k * size);
		printf("RESULT bench=fec k=%d m=%d size=%d packets=%ld "
		       "encode_mb_s=%.0f encode_us_per_pkt=%.3f decode_mb_s=%.0f "
		       "recover_us_per_pkt=%.3f decode_lossless_mb_s=%.0f "
		       "overhead=%.3f\n", k, m, size, packets,
		       packets * (double)size / te / 1e6, te / packets * 1e6,
		       dpk * size / td / 1e6, td / dpk * 1e6,
		       dpk * size / td0 / 1e6, wire);
	}
	for (i = 0; i < st.n; i++)
		free(st.p[i]);
	free(st.p);
	free(st.len);
	free(chk.seen);
	free(pkt);
	fec_enc_release(e);
	fec_dec_release(d);
	return 0;
}
