/*
 * test_fec.c - unit tests of core/proto/fec.c, the Reed-Solomon erasure codec.
 *
 * Deterministic: every random choice comes from a fixed-seed xorshift,
 * time is virtual, nothing is timed. Shards reach the decoder as exact-
 * size heap copies, so a read past the end shows under ASan. Random-loss
 * runs compare the decoder's counts with an exact model of the code (a
 * group is recovered iff at least `data` of its shards arrived), not with
 * magic numbers. fec_vector checks the bytes of docs/PROTOCOL.md ("Forward
 * error correction"); -v prints them. Any other argument selects tests by
 * substring.
 */
#include "fec.h"
#include "simnet.h"
#include "testutil.h"
#include "wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t
rndn(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

static void
shuffle(int *a, int n)
{
	int i;
	for (i = n - 1; i > 0; i--) {
		int j = (int)rndn((uint32_t)i + 1), t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

static struct fec_config
conf(int k, int m, int pkt_max)
{
	struct fec_config c;
	fec_config_default(&c);
	c.data = k;
	c.parity = m;
	c.pkt_max = pkt_max;
	return c;
}

/* ---- shard collector (encoder output) ------------------------------------ */

#define MAXSHARDS 4096

struct shards {
	int n;
	uint8_t *p[MAXSHARDS];
	size_t len[MAXSHARDS];
};

static void
collect(const uint8_t *shard, size_t len, void *user)
{
	struct shards *s = user;
	uint8_t *c;
	if (s->n == MAXSHARDS)
		abort();
	c = malloc(len ? len : 1);
	if (!c)
		abort();
	memcpy(c, shard, len);
	s->p[s->n] = c;
	s->len[s->n++] = len;
}

static void
shards_clear(struct shards *s)
{
	int i;
	for (i = 0; i < s->n; i++)
		free(s->p[i]);
	s->n = 0;
}

/* ---- packets: unique id in the first 4 bytes, content from (id, len) ---- */

#define MAXPKT 70000

static uint8_t pktbuf[MAXPKT];

static uint8_t
pkt_byte(uint32_t id, size_t x)
{
	return (uint8_t)(id * 131u + x * 7u + (x >> 8) * 13u + 1u);
}

/* Packet id with len bytes (len >= 4 carries the id; shorter ones are
 * told apart by their length in the tests that use them). */
static const uint8_t *
make_pkt(uint32_t id, size_t len)
{
	size_t x;
	for (x = 0; x < len; x++)
		pktbuf[x] = pkt_byte(id, x);
	if (len >= 4) {
		pktbuf[0] = (uint8_t)id;
		pktbuf[1] = (uint8_t)(id >> 8);
		pktbuf[2] = (uint8_t)(id >> 16);
		pktbuf[3] = (uint8_t)(id >> 24);
	}
	return pktbuf;
}

/* The receiver's record: how often each id was delivered; every delivery
 * must have the length and bytes the id was sent with. */
#define MAXIDS 200000

struct sink {
	uint32_t nids;
	size_t *len;          /* sent length of each id */
	uint8_t *count;       /* deliveries of each id */
	long bad;             /* deliveries that matched no sent packet */
	long total;
};

static void
sink_init(struct sink *k, uint32_t nids)
{
	memset(k, 0, sizeof *k);
	k->nids = nids;
	k->len = calloc(nids, sizeof *k->len);
	k->count = calloc(nids, 1);
	if (!k->len || !k->count)
		abort();
}

static void
sink_free(struct sink *k)
{
	free(k->len);
	free(k->count);
}

static void
deliver_id(uint8_t *p, size_t len, void *user)
{
	struct sink *k = user;
	uint32_t id;
	size_t x;

	k->total++;
	if (len < 4) {
		k->bad++;
		return;
	}
	id = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	     (uint32_t)p[3] << 24;
	if (id >= k->nids || k->len[id] != len) {
		k->bad++;
		return;
	}
	for (x = 4; x < len; x++) {
		if (p[x] != pkt_byte(id, x)) {
			k->bad++;
			return;
		}
	}
	if (k->count[id] < 255)
		k->count[id]++;
	/* deliver may scribble on the packet (decryption in place) */
	memset(p, 0xee, len);
}

/* Exact-size heap copy into the decoder. */
static int
feed(fec_dec_t *d, const uint8_t *p, size_t len, uint64_t now,
     fec_deliver_fn fn, void *user)
{
	uint8_t *c = malloc(len ? len : 1);
	int r;
	if (!c)
		abort();
	if (len)
		memcpy(c, p, len);
	r = fec_dec_input(d, c, len, now, fn, user);
	free(c);
	return r;
}

/* A generic recorder for tests with few packets: copies of what came. */
struct got {
	int n;
	uint8_t *p[256];
	size_t len[256];
};

static void
deliver_got(uint8_t *p, size_t len, void *user)
{
	struct got *g = user;
	if (g->n == 256)
		abort();
	g->p[g->n] = malloc(len ? len : 1);
	if (!g->p[g->n])
		abort();
	memcpy(g->p[g->n], p, len);
	g->len[g->n++] = len;
}

static void
got_clear(struct got *g)
{
	int i;
	for (i = 0; i < g->n; i++)
		free(g->p[i]);
	g->n = 0;
}

static void
no_deliver(uint8_t *p, size_t len, void *user)
{
	(void)p;
	(void)len;
	(void)user;
}

/* ---- GF(256) ------------------------------------------------------------- */

/* Shift-and-add multiplication, no tables: the reference. */
static uint8_t
slow_mul(uint8_t a, uint8_t b)
{
	unsigned r = 0, x = a;
	while (b) {
		if (b & 1)
			r ^= x;
		x <<= 1;
		if (x & 0x100)
			x ^= 0x11d;
		b >>= 1;
	}
	return (uint8_t)r;
}

TEST(gf_arithmetic)
{
	unsigned a, b, c, x, order;
	int i;

	/* mul against the reference for every pair */
	for (a = 0; a < 256; a++)
		for (b = 0; b < 256; b++)
			if (fec_gf_mul((uint8_t)a, (uint8_t)b) !=
			    slow_mul((uint8_t)a, (uint8_t)b))
				CHECK_EQ(fec_gf_mul((uint8_t)a, (uint8_t)b),
				         slow_mul((uint8_t)a, (uint8_t)b));
	/* 2 generates the multiplicative group: the tables' premise */
	for (x = 1, order = 0; order == 0 || x != 1; order++)
		x = slow_mul((uint8_t)x, 2);
	CHECK_EQ(order, 255);
	/* inverses */
	CHECK_EQ(fec_gf_inv(0), 0);
	CHECK_EQ(fec_gf_inv(1), 1);
	for (a = 1; a < 256; a++) {
		uint8_t ia = fec_gf_inv((uint8_t)a);
		CHECK_EQ(fec_gf_mul((uint8_t)a, ia), 1);
		CHECK_EQ(fec_gf_inv(ia), a);
	}
	/* field laws on random triples; 0 and 1 */
	for (i = 0; i < 20000; i++) {
		a = rndn(256);
		b = rndn(256);
		c = rndn(256);
		CHECK_EQ(fec_gf_mul((uint8_t)a, (uint8_t)b),
		         fec_gf_mul((uint8_t)b, (uint8_t)a));
		CHECK_EQ(fec_gf_mul(fec_gf_mul((uint8_t)a, (uint8_t)b), (uint8_t)c),
		         fec_gf_mul((uint8_t)a, fec_gf_mul((uint8_t)b, (uint8_t)c)));
		CHECK_EQ(fec_gf_mul((uint8_t)a, (uint8_t)(b ^ c)),
		         fec_gf_mul((uint8_t)a, (uint8_t)b) ^
		         fec_gf_mul((uint8_t)a, (uint8_t)c));
	}
	for (a = 0; a < 256; a++) {
		CHECK_EQ(fec_gf_mul((uint8_t)a, 0), 0);
		CHECK_EQ(fec_gf_mul((uint8_t)a, 1), a);
	}
	CHECK_EQ(fec_gf_mul(0x80, 2), 0x1d); /* x^8 = x^4 + x^3 + x^2 + 1 */
	CHECK_EQ(fec_gf_mul(0x53, 0xca), slow_mul(0x53, 0xca));
}

TEST(gf_muladd)
{
	static uint8_t src[1300], dst[1300], want[1300];
	static const size_t lens[] = { 0, 1, 7, 8, 9, 15, 16, 17, 63, 1200, 1299 };
	size_t li, x;
	int t;

	for (t = 0; t < 40; t++) {
		uint8_t c = t == 0 ? 0 : t == 1 ? 1 : (uint8_t)rndn(256);
		for (li = 0; li < sizeof lens / sizeof lens[0]; li++) {
			size_t n = lens[li];
			for (x = 0; x < sizeof src; x++) {
				src[x] = (uint8_t)rnd();
				dst[x] = want[x] = (uint8_t)rnd();
			}
			for (x = 0; x < n; x++)
				want[x] ^= slow_mul(c, src[x]);
			fec_gf_muladd(dst, src, n, c);
			CHECK_MEM(dst, want, sizeof dst);
		}
	}
}

/* Determinant test by elimination (over a copy). */
static int
singular(const uint8_t *m, int n)
{
	uint8_t a[FEC_PARITY_MAX * FEC_PARITY_MAX];
	int r, c, col;

	memcpy(a, m, (size_t)n * n);
	for (col = 0; col < n; col++) {
		int p = col;
		uint8_t s;
		while (p < n && a[p * n + col] == 0)
			p++;
		if (p == n)
			return 1;
		for (c = 0; c < n; c++) {
			uint8_t t = a[p * n + c];
			a[p * n + c] = a[col * n + c];
			a[col * n + c] = t;
		}
		s = fec_gf_inv(a[col * n + col]);
		for (r = col + 1; r < n; r++) {
			uint8_t f = fec_gf_mul(a[r * n + col], s);
			for (c = 0; c < n; c++)
				a[r * n + c] ^= fec_gf_mul(f, a[col * n + c]);
		}
	}
	return 0;
}

TEST(coef_matrix)
{
	uint8_t sub[FEC_PARITY_MAX * FEC_PARITY_MAX];
	int i, j, i2, j2, t, bad = 0;

	for (i = 0; i < FEC_DATA_MAX; i++) {
		CHECK_EQ(fec_coef(0, i), 1); /* parity 0 is the XOR */
		for (j = 0; j < FEC_PARITY_MAX; j++) {
			uint8_t y = (uint8_t)(255 - i);
			CHECK(fec_coef(j, i) != 0);
			CHECK_EQ(slow_mul(fec_coef(j, i), (uint8_t)(j ^ y)), y);
		}
	}
	/* every 2 x 2 submatrix is invertible */
	for (j = 0; j < FEC_PARITY_MAX; j++)
		for (j2 = j + 1; j2 < FEC_PARITY_MAX; j2++)
			for (i = 0; i < FEC_DATA_MAX; i++)
				for (i2 = i + 1; i2 < FEC_DATA_MAX; i2++)
					if ((fec_gf_mul(fec_coef(j, i), fec_coef(j2, i2)) ^
					     fec_gf_mul(fec_coef(j, i2), fec_coef(j2, i))) == 0)
						bad++;
	CHECK_EQ(bad, 0);
	/* random larger square submatrices, up to 32 x 32 */
	for (t = 0; t < 3000; t++) {
		int n = 3 + (int)rndn(FEC_PARITY_MAX - 2), rows[FEC_PARITY_MAX];
		int cols[FEC_DATA_MAX], all[FEC_DATA_MAX], r, c;
		for (i = 0; i < FEC_DATA_MAX; i++)
			all[i] = i;
		shuffle(all, FEC_PARITY_MAX);
		memcpy(rows, all, sizeof rows);
		for (i = 0; i < FEC_DATA_MAX; i++)
			all[i] = i;
		shuffle(all, FEC_DATA_MAX);
		memcpy(cols, all, sizeof cols);
		for (r = 0; r < n; r++)
			for (c = 0; c < n; c++)
				sub[r * n + c] = fec_coef(rows[r], cols[c]);
		if (singular(sub, n))
			bad++;
	}
	CHECK_EQ(bad, 0);
}

/* ---- the shard vector of docs/PROTOCOL.md -------------------------------- */

static void
check_hex(const char *name, const uint8_t *p, size_t n, const char *hex)
{
	uint8_t want[256];
	size_t wn = tu_unhex(hex, want, sizeof want), i;

	if (tu_verbose) {
		printf("    %s (%zu bytes):", name, n);
		for (i = 0; i < n; i++)
			printf(" %02x", p[i]);
		printf("\n");
	}
	tu_checks++;
	if ((wn != n || memcmp(want, p, n) != 0) &&
	    tu_report(__FILE__, __LINE__)) {
		fprintf(stderr, "vector %s differs; got:", name);
		for (i = 0; i < n; i++)
			fprintf(stderr, " %02x", p[i]);
		fputc('\n', stderr);
	}
}

TEST(fec_vector)
{
	static const char *want[5] = {
		"f0 04 03 02 01 00 61 62 63",
		"f0 04 03 02 01 01",
		"f0 04 03 02 01 02 68 65 6c 6c 6f",
		"f1 04 03 02 01 03 03 02 06 00 09 07 0f 6c 6f",
		"f1 04 03 02 01 04 03 02 1a 00 c8 05 d3 bf 3d",
	};
	static const char *names[5] = { "data 0 \"abc\"", "data 1 \"\"",
	                                "data 2 \"hello\"", "parity 0",
	                                "parity 1" };
	struct fec_config c = conf(3, 2, 1200);
	struct shards sh = { 0 };
	struct got got = { 0 };
	fec_enc_t *e = fec_enc_create(&c);
	fec_dec_t *d = fec_dec_create(&c);
	int i;

	REQUIRE(e && d);
	CHECK_EQ(fec_enc_setnext(e, 0x01020304), 0);
	CHECK_EQ(fec_enc_add(e, (const uint8_t *)"abc", 3, 0, collect, &sh), 1);
	CHECK_EQ(fec_enc_add(e, NULL, 0, 0, collect, &sh), 1);
	CHECK_EQ(fec_enc_add(e, (const uint8_t *)"hello", 5, 0, collect, &sh), 3);
	REQUIRE_EQ(sh.n, 5);
	for (i = 0; i < 5; i++)
		check_hex(names[i], sh.p[i], sh.len[i], want[i]);

	/* data 0 and 2 lost: "" arrives, then the parity gives back the rest */
	CHECK_EQ(feed(d, sh.p[1], sh.len[1], 0, deliver_got, &got), 1);
	CHECK_EQ(feed(d, sh.p[3], sh.len[3], 0, deliver_got, &got), 0);
	CHECK_EQ(feed(d, sh.p[4], sh.len[4], 0, deliver_got, &got), 2);
	REQUIRE_EQ(got.n, 3);
	CHECK_EQ(got.len[0], 0);
	CHECK(got.len[1] == 3 && memcmp(got.p[1], "abc", 3) == 0);
	CHECK(got.len[2] == 5 && memcmp(got.p[2], "hello", 5) == 0);
	/* the lost ones arriving late are not delivered again */
	CHECK_EQ(feed(d, sh.p[0], sh.len[0], 0, deliver_got, &got), FEC_EDUP);
	CHECK_EQ(feed(d, sh.p[2], sh.len[2], 0, deliver_got, &got), FEC_EDUP);
	CHECK_EQ(got.n, 3);
	got_clear(&got);
	shards_clear(&sh);
	fec_enc_release(e);
	fec_dec_release(d);
}

/* The frame vector of docs/PROTOCOL.md: the session's WIRE_FEC frame
 * around a shard, sealed with the direction's frame key (core/proto/wire.c,
 * wire_fec_*). Recomputed with Python's hashlib.blake2b. */
TEST(fec_frame_vector)
{
	uint8_t key[WIRE_KEY], fkey[WIRE_KEY], f[64], g[64];
	static const uint8_t data0[] = { 0xf0, 0x04, 0x03, 0x02, 0x01, 0x00,
	                                 0x61, 0x62, 0x63 };
	static const uint8_t par0[] = { 0xf1, 0x04, 0x03, 0x02, 0x01, 0x03, 0x03,
	                                0x02, 0x06, 0x00, 0x09, 0x07, 0x0f, 0x6c,
	                                0x6f };
	int i, n;

	REQUIRE_EQ(wire_init(), 0);
	for (i = 0; i < WIRE_KEY; i++)
		key[i] = (uint8_t)i;
	wire_fec_key(fkey, key);
	check_hex("frame key", fkey, WIRE_KEY,
	          "82 b6 71 b6 a2 eb 48 cb 0c 7c 16 d6 33 6b 86 78 "
	          "19 8c 6d 86 0c d8 32 cc 15 b9 2e a8 6d 23 8d 20");
	n = wire_fec_seal(f, sizeof f, 0x11223344, data0, sizeof data0, fkey);
	REQUIRE_EQ(n, (int)(WIRE_FEC_HDR + sizeof data0 + WIRE_FEC_TAG));
	check_hex("frame of data 0", f, (size_t)n,
	          "18 44 33 22 11 f0 04 03 02 01 00 61 62 63 "
	          "a6 46 fc bc 83 0e f9 db 5e 6f 63 f6 9a 06 ab 20");
	CHECK_EQ(wire_fec_open(f, (size_t)n, fkey), (int)sizeof data0);
	n = wire_fec_seal(f, sizeof f, 0x11223344, par0, sizeof par0, fkey);
	check_hex("frame of parity 0", f, (size_t)n,
	          "18 44 33 22 11 f1 04 03 02 01 03 03 02 06 00 09 07 0f 6c 6f "
	          "27 5b 5c 8b 2b 11 05 82 b5 96 33 d9 e2 5b 0c d5");
	/* any byte changed, any length cut, the other direction's key: no */
	for (i = 0; i < n; i++) {
		memcpy(g, f, (size_t)n);
		g[i] ^= 0x01;
		CHECK(wire_fec_open(g, (size_t)n, fkey) < 0);
	}
	for (i = 0; i < n; i++)
		CHECK(wire_fec_open(f, (size_t)i, fkey) < 0);
	key[0] ^= 1;
	wire_fec_key(g, key);
	CHECK_EQ(wire_fec_open(f, (size_t)n, g), WIRE_EAUTH);
	CHECK_EQ(wire_fec_seal(f, WIRE_FEC_HDR + WIRE_FEC_TAG + 2, 1, data0,
	                       sizeof data0, fkey), WIRE_ESPACE);
}

/* ---- every erasure pattern ---------------------------------------------- */

/* Encode one group of k packets (ids id0.., lengths from lens) into sh. */
static void
encode_group(fec_enc_t *e, struct sink *sk, uint32_t id0, int k,
             const size_t *lens, struct shards *sh)
{
	int i;
	for (i = 0; i < k; i++) {
		sk->len[id0 + i] = lens[i];
		CHECK(fec_enc_add(e, make_pkt(id0 + (uint32_t)i, lens[i]),
		                  lens[i], 0, collect, sh) > 0);
	}
}

/* Feed the shards of one group not lost (lost[i] != 0), in the order sent
 * or shuffled; every packet must come out exactly once, with its bytes.
 * In order, exactly the lost data is recovered; shuffled, parity may come
 * before data and rebuild a packet whose own shard is then a duplicate. */
static int
try_pattern(const struct fec_config *c, struct shards *sh, const uint8_t *lost,
            struct sink *sk, uint32_t id0, int shuffled)
{
	fec_dec_t *d = fec_dec_create(c);
	struct fec_dec_stats st;
	int order[FEC_DATA_MAX + FEC_PARITY_MAX], n = 0, i, ok = 1, sum = 0;
	int k = c->data, lostdata = 0, dups = 0;

	if (!d)
		abort();
	for (i = 0; i < sh->n; i++)
		if (!lost[i])
			order[n++] = i;
		else if (i < k)
			lostdata++;
	if (shuffled)
		shuffle(order, n);
	memset(sk->count + id0, 0, (size_t)k);
	sk->bad = 0;
	for (i = 0; i < n; i++) {
		int r = feed(d, sh->p[order[i]], sh->len[order[i]], 0,
		             deliver_id, sk);
		if (r == FEC_EDUP && shuffled && order[i] < k)
			dups++;
		else if (r < 0)
			ok = 0;
		else
			sum += r;
	}
	for (i = 0; i < k; i++)
		if (sk->count[id0 + i] != 1)
			ok = 0;
	fec_dec_stats(d, &st);
	if (sk->bad || sum != k || st.delivered != (uint64_t)k ||
	    st.recovered != (uint64_t)(lostdata + dups) ||
	    st.duplicates != (uint64_t)dups ||
	    fec_dec_memsize(d) > fec_dec_memmax(c))
		ok = 0;
	fec_dec_reset(d);
	fec_dec_stats(d, &st);
	if (st.unrecovered != 0)
		ok = 0;
	fec_dec_release(d);
	return ok;
}

static void
exhaustive(int k, int m, int pkt_max, int randomized)
{
	struct fec_config c = conf(k, m, pkt_max);
	struct shards sh = { 0 };
	struct sink sk;
	size_t lens[FEC_DATA_MAX];
	fec_enc_t *e = fec_enc_create(&c);
	int n = k + m, i, failures = 0, patterns = 0;
	uint8_t lost[FEC_DATA_MAX + FEC_PARITY_MAX];
	uint64_t mask;

	REQUIRE(e);
	sink_init(&sk, 64);
	for (i = 0; i < k; i++) {
		/* lengths 4..pkt_max, one of each extreme */
		lens[i] = 4 + rndn((uint32_t)pkt_max - 3);
		if (i == 0)
			lens[i] = (size_t)pkt_max;
		if (i == 1)
			lens[i] = 4;
	}
	encode_group(e, &sk, 0, k, lens, &sh);
	REQUIRE_EQ(sh.n, n);
	if (!randomized) {
		for (mask = 0; mask < (uint64_t)1 << n; mask++) {
			if (__builtin_popcountll(mask) > m)
				continue;
			patterns++;
			for (i = 0; i < n; i++)
				lost[i] = mask >> i & 1;
			if ((!try_pattern(&c, &sh, lost, &sk, 0, 0) ||
			     !try_pattern(&c, &sh, lost, &sk, 0, 1)) &&
			    failures++ < 5)
				TU_FAIL("k=%d m=%d: loss pattern %#llx", k, m,
				        (unsigned long long)mask);
		}
	} else {
		for (patterns = 0; patterns < 200; patterns++) {
			int idx[FEC_DATA_MAX + FEC_PARITY_MAX], nl = (int)rndn((uint32_t)m + 1);
			if (patterns == 0)
				nl = m;
			for (i = 0; i < n; i++)
				idx[i] = i;
			shuffle(idx, n);
			memset(lost, 0, sizeof lost);
			for (i = 0; i < nl; i++)
				lost[idx[i]] = 1;
			if ((!try_pattern(&c, &sh, lost, &sk, 0, 0) ||
			     !try_pattern(&c, &sh, lost, &sk, 0, 1)) &&
			    failures++ < 5)
				TU_FAIL("k=%d m=%d: random pattern %d (%d lost)",
				        k, m, patterns, nl);
		}
	}
	CHECK_EQ(failures, 0);
	VERBOSE("    k=%d m=%d: %d loss patterns recovered\n", k, m, patterns);
	shards_clear(&sh);
	sink_free(&sk);
	fec_enc_release(e);
}

TEST(erasure_patterns)
{
	static const int km[][2] = { { 1, 1 }, { 1, 3 }, { 2, 1 }, { 2, 2 },
	                             { 3, 2 }, { 4, 1 }, { 4, 3 }, { 5, 3 },
	                             { 8, 2 }, { 8, 4 }, { 10, 4 }, { 6, 6 },
	                             { 12, 3 } };
	size_t t;
	for (t = 0; t < sizeof km / sizeof km[0]; t++)
		exhaustive(km[t][0], km[t][1], 300, 0);
	/* too many patterns to try all: random ones, always one with m lost */
	exhaustive(64, 32, 200, 1);
	exhaustive(32, 8, 1200, 1);
	exhaustive(FEC_DATA_MAX, 1, 64, 1);
	exhaustive(1, FEC_PARITY_MAX, 64, 1);
}

/* m + 1 shards lost: the group cannot be recovered; what arrived is
 * delivered once and nothing else. */
TEST(beyond_parity)
{
	struct fec_config c = conf(4, 2, 200);
	struct shards sh = { 0 };
	struct sink sk;
	struct fec_dec_stats st;
	size_t lens[4] = { 10, 20, 30, 40 };
	fec_enc_t *e = fec_enc_create(&c);
	fec_dec_t *d = fec_dec_create(&c);
	size_t base;
	int i;

	REQUIRE(e && d);
	base = fec_dec_memsize(d);
	sink_init(&sk, 16);
	encode_group(e, &sk, 0, 4, lens, &sh);
	/* lose data 0, 1, 2: data 3 and both parity arrive (3 < 4) */
	for (i = 3; i < 6; i++)
		CHECK_EQ(feed(d, sh.p[i], sh.len[i], 0, deliver_id, &sk),
		         i == 3 ? 1 : 0);
	CHECK_EQ(sk.count[3], 1);
	CHECK_EQ(sk.count[0] + sk.count[1] + sk.count[2], 0);
	/* copies held: data 3 and both parity payloads, 2 + 40 bytes each */
	CHECK_EQ(fec_dec_memsize(d), base + 3 * 42);
	fec_dec_reset(d);
	CHECK_EQ(fec_dec_memsize(d), base);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.unrecovered, 1);
	CHECK_EQ(st.recovered, 0);
	CHECK_EQ(sk.bad, 0);
	shards_clear(&sh);
	sink_free(&sk);
	fec_enc_release(e);
	fec_dec_release(d);
}

/* ---- lengths -------------------------------------------------------------- */

static void
roundtrip_lengths(int k, int m, int pkt_max, const size_t *lens, int lose)
{
	struct fec_config c = conf(k, m, pkt_max);
	struct shards sh = { 0 };
	struct got got = { 0 };
	fec_enc_t *e = fec_enc_create(&c);
	fec_dec_t *d = fec_dec_create(&c);
	static uint8_t want[MAXPKT];
	int i, j, lostn = 0, found;

	REQUIRE(e && d);
	for (i = 0; i < k; i++)
		CHECK(fec_enc_add(e, make_pkt((uint32_t)i, lens[i]), lens[i], 0,
		                  collect, &sh) > 0);
	REQUIRE_EQ(sh.n, k + m);
	for (i = 0; i < sh.n; i++) {
		if (lostn < m && (lose >> i & 1)) {
			lostn++;
			continue;
		}
		CHECK(feed(d, sh.p[i], sh.len[i], 0, deliver_got, &got) >= 0);
	}
	CHECK_EQ(got.n, k);
	/* each packet exactly (short ones carry no id: match by bytes) */
	for (i = 0; i < k; i++) {
		memcpy(want, make_pkt((uint32_t)i, lens[i]), lens[i]);
		for (j = 0, found = 0; j < got.n; j++)
			if (got.len[j] == lens[i] &&
			    memcmp(got.p[j], want, lens[i]) == 0)
				found++;
		CHECK(found >= 1);
	}
	got_clear(&got);
	shards_clear(&sh);
	fec_enc_release(e);
	fec_dec_release(d);
}

TEST(lengths)
{
	static const size_t mixed[5] = { 0, 1500, 0, 1, 1499 };
	static const size_t zeros[4] = { 0, 0, 0, 0 };
	static const size_t big[2] = { FEC_PKT_MAX, 3 };
	static const size_t small[3] = { 1, 2, 3 };
	struct fec_config c = conf(2, 1, 1500);
	struct shards sh = { 0 };
	fec_enc_t *e;

	roundtrip_lengths(5, 2, 1500, mixed, 0x03); /* lose the two first */
	roundtrip_lengths(5, 2, 1500, mixed, 0x12); /* lose 1500 and 1499 */
	roundtrip_lengths(5, 2, 1500, mixed, 0x60); /* lose the parity */
	roundtrip_lengths(4, 3, 1500, zeros, 0x0b);
	roundtrip_lengths(2, 1, FEC_PKT_MAX, big, 0x01);
	roundtrip_lengths(3, 3, 3, small, 0x07);
	/* the parity of the largest packet is 65535 bytes */
	e = fec_enc_create(&(struct fec_config){ 1, 1, FEC_PKT_MAX, 20, 4, 0 });
	REQUIRE(e);
	CHECK_EQ(fec_enc_add(e, make_pkt(1, FEC_PKT_MAX), FEC_PKT_MAX, 0,
	                     collect, &sh), 2);
	REQUIRE_EQ(sh.n, 2);
	CHECK_EQ(sh.len[0], FEC_PKT_MAX + FEC_DATA_HDR);
	CHECK_EQ(sh.len[1], 65535);
	shards_clear(&sh);
	fec_enc_release(e);

	/* too long for pkt_max: nothing sent */
	e = fec_enc_create(&c);
	REQUIRE(e);
	CHECK_EQ(fec_enc_add(e, make_pkt(1, 1501), 1501, 0, collect, &sh),
	         FEC_ETOOBIG);
	CHECK_EQ(sh.n, 0);
	CHECK_EQ(fec_enc_add(e, make_pkt(1, 1500), 1500, 0, collect, &sh), 1);
	shards_clear(&sh);
	fec_enc_release(e);
}

/* ---- the flush timer -------------------------------------------------------- */

TEST(partial_flush)
{
	struct fec_config c = conf(8, 2, 500);
	struct shards sh = { 0 };
	struct sink sk;
	struct fec_enc_stats es;
	struct fec_dec_stats ds;
	fec_enc_t *e = fec_enc_create(&c);
	fec_dec_t *d = fec_dec_create(&c);
	uint64_t t0 = 1000000;
	int i;

	REQUIRE(e && d);
	sink_init(&sk, 64);
	CHECK(fec_enc_check(e, t0) == UINT64_MAX);
	for (i = 0; i < 3; i++) {
		sk.len[i] = 100 + (size_t)i;
		CHECK_EQ(fec_enc_add(e, make_pkt((uint32_t)i, sk.len[i]),
		                     sk.len[i], t0 + (uint64_t)i * 500, collect, &sh), 1);
	}
	CHECK(fec_enc_check(e, t0) == t0 + 20000);
	CHECK_EQ(fec_enc_update(e, t0 + 19999, collect, &sh), 0);
	CHECK_EQ(sh.n, 3);
	CHECK_EQ(fec_enc_update(e, t0 + 20000, collect, &sh), 2);
	REQUIRE_EQ(sh.n, 5);
	CHECK(fec_enc_check(e, t0 + 20000) == UINT64_MAX);
	/* parity tells data 3, parity 2, indices 3 and 4 */
	CHECK(sh.p[3][0] == FEC_TYPE_PARITY && sh.p[3][5] == 3 &&
	      sh.p[3][6] == 3 && sh.p[3][7] == 2);
	CHECK(sh.p[4][5] == 4 && sh.len[4] == FEC_PARITY_HDR + 2 + 102);
	/* two of three data lost: recovered from the two parity shards */
	CHECK_EQ(feed(d, sh.p[1], sh.len[1], t0, deliver_id, &sk), 1);
	CHECK_EQ(feed(d, sh.p[4], sh.len[4], t0, deliver_id, &sk), 0);
	CHECK_EQ(feed(d, sh.p[3], sh.len[3], t0, deliver_id, &sk), 2);
	CHECK(sk.count[0] == 1 && sk.count[1] == 1 && sk.count[2] == 1);
	CHECK_EQ(sk.bad, 0);
	shards_clear(&sh);

	/* the next group has the next id; an overdue group is closed by the
	 * next add before its packet */
	sk.len[3] = 50;
	sk.len[4] = 60;
	CHECK_EQ(fec_enc_add(e, make_pkt(3, 50), 50, t0 + 30000, collect, &sh), 1);
	CHECK_EQ(sh.p[0][1], 1);  /* group 1 */
	CHECK_EQ(fec_enc_add(e, make_pkt(4, 60), 60, t0 + 50000, collect, &sh), 1);
	CHECK_EQ(fec_enc_add(e, make_pkt(4, 60), 60, t0 + 50001, collect, &sh), 3);
	REQUIRE_EQ(sh.n, 5);
	CHECK(sh.p[2][0] == FEC_TYPE_PARITY && sh.p[2][6] == 2);
	CHECK(sh.p[4][0] == FEC_TYPE_DATA && sh.p[4][1] == 2 && sh.p[4][5] == 0);
	/* flush closes whatever is open */
	CHECK_EQ(fec_enc_flush(e, collect, &sh), 2);
	CHECK_EQ(fec_enc_flush(e, collect, &sh), 0);
	CHECK_EQ(sh.n, 7);
	fec_enc_stats(e, &es);
	CHECK_EQ(es.groups, 3);
	CHECK_EQ(es.groups_partial, 3);
	CHECK_EQ(es.packets, 6);
	CHECK_EQ(es.out_parity, 6);
	CHECK_EQ(es.out_shards, 12);
	fec_dec_stats(d, &ds);
	CHECK_EQ(ds.recovered, 2);
	shards_clear(&sh);

	/* flush_ms 0: a burst at one instant is one group, closed by update */
	fec_enc_release(e);
	c.flush_ms = 0;
	e = fec_enc_create(&c);
	REQUIRE(e);
	for (i = 0; i < 5; i++)
		CHECK_EQ(fec_enc_add(e, make_pkt(1, 10), 10, t0, collect, &sh), 1);
	CHECK(fec_enc_check(e, t0) == t0);
	CHECK_EQ(fec_enc_update(e, t0, collect, &sh), 2);
	CHECK_EQ(sh.n, 7);
	CHECK_EQ(sh.p[5][6], 5);
	shards_clear(&sh);
	sink_free(&sk);
	fec_enc_release(e);
	fec_dec_release(d);
}

/* ---- random loss against the exact model ---------------------------------- */

/* One run: npkts packets with random lengths (4..len_max), sent at a
 * random pace so the flush timer closes some groups early; each shard
 * lost with probability loss_pm / 1000. The model: a group is recovered
 * iff at least k_used of its shards arrived; it counts as unrecovered iff
 * some shard arrived and it was not (or no parity arrived and not every
 * one of k data did). */
struct model_group {
	int kused, lostdata, arrived, parity_arrived;
};

static struct model_group mg[MAXIDS];
static uint32_t pkt_group[MAXIDS];

static void
loss_run(int k, int m, int loss_pm, int npkts, int len_max)
{
	struct fec_config c = conf(k, m, len_max);
	fec_enc_t *e = fec_enc_create(&c);
	fec_dec_t *d = fec_dec_create(&c);
	struct sink sk;
	struct shards sh = { 0 };
	struct fec_dec_stats st;
	uint64_t now = 5000000, exp_rec = 0, exp_unrec = 0, exp_deliv = 0;
	uint32_t ngroups = 0, g;
	int i, s, twice = 0;
	size_t memmax = fec_dec_memmax(&c), peak = 0;

	REQUIRE(e && d);
	sink_init(&sk, (uint32_t)npkts);
	memset(mg, 0, sizeof mg);
	for (i = 0; i < npkts; i++) {
		size_t len = 4 + rndn((uint32_t)len_max - 3);
		sk.len[i] = len;
		now += rndn(8) == 0 ? 25000 : rndn(3000);
		sh.n = 0;
		CHECK(fec_enc_update(e, now, collect, &sh) >= 0);
		CHECK(fec_enc_add(e, make_pkt((uint32_t)i, len), len, now,
		                  collect, &sh) > 0);
		if (i == npkts - 1)
			CHECK(fec_enc_flush(e, collect, &sh) >= 0);
		for (s = 0; s < sh.n; s++) {
			uint8_t *p = sh.p[s];
			int lost = (int)rndn(1000) < loss_pm;
			g = p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16;
			if (g >= ngroups)
				ngroups = g + 1;
			if (p[0] == FEC_TYPE_DATA) {
				pkt_group[i] = g;
				if (lost)
					mg[g].lostdata++;
				else
					exp_deliv++;
			} else {
				mg[g].kused = p[6];
				if (!lost)
					mg[g].parity_arrived++;
			}
			if (!lost) {
				mg[g].arrived++;
				CHECK(feed(d, p, sh.len[s], now, deliver_id, &sk) >= 0);
			}
		}
		if (fec_dec_memsize(d) > peak)
			peak = fec_dec_memsize(d);
		shards_clear(&sh);
	}
	fec_dec_reset(d); /* the last groups count too */
	for (g = 0; g < ngroups; g++) {
		struct model_group *x = &mg[g];
		int recovered = x->parity_arrived > 0 && x->arrived >= x->kused;
		if (x->lostdata && recovered) {
			exp_rec += (uint64_t)x->lostdata;
			exp_deliv += (uint64_t)x->lostdata;
		}
		if (x->arrived > 0 && !(x->lostdata == 0 &&
		    (x->parity_arrived > 0 || x->kused == k)) && !recovered)
			exp_unrec++;
	}
	fec_dec_stats(d, &st);
	for (i = 0; i < npkts; i++)
		if (sk.count[i] > 1)
			twice++;
	CHECK_EQ(twice, 0);
	CHECK_EQ(sk.bad, 0);
	CHECK_EQ(st.recovered, exp_rec);
	CHECK_EQ(st.delivered, exp_deliv);
	CHECK_EQ((uint64_t)sk.total, exp_deliv);
	CHECK_EQ(st.unrecovered, exp_unrec);
	CHECK_EQ(st.malformed + st.duplicates + st.stale + st.far, 0);
	CHECK(peak <= memmax);
	/* sanity of the model's own numbers (fixed seed): the residual loss
	 * is well below the raw one; with m >= 2 at 10%, below a quarter */
	{
		long resid_pm = (npkts - (long)exp_deliv) * 1000 / npkts;
		CHECK(resid_pm * 10 < loss_pm * (m == 1 ? 8 : 6));
		if (m >= 2 && loss_pm <= 100)
			CHECK(resid_pm * 4 < loss_pm);
	}
	VERBOSE("    k=%d m=%d loss=%d.%d%%: %d packets, %llu groups, %llu "
	        "recovered, %d lost for good (%.2f%%), peak %zu of %zu bytes\n",
	        k, m, loss_pm / 10, loss_pm % 10, npkts,
	        (unsigned long long)ngroups, (unsigned long long)exp_rec,
	        npkts - (int)exp_deliv, 100.0 * (npkts - (double)exp_deliv) / npkts,
	        peak, memmax);
	sink_free(&sk);
	fec_enc_release(e);
	fec_dec_release(d);
}

TEST(random_loss)
{
	int k, m;
	for (k = 4; k <= 8; k++)
		for (m = 1; m <= 3; m++) {
			loss_run(k, m, 100, 3000, 1200);
			loss_run(k, m, 200, 3000, 1200);
		}
	loss_run(16, 4, 300, 5000, 300);
}

/* ---- reordering and duplication (simnet) ---------------------------------- */

struct net_out {
	simnet_t *net;
	uint32_t now_ms;
	uint32_t *group_of;     /* packet id -> group (data shards seen) */
	uint8_t *index_of;      /* packet id -> index in its group */
};

static void
to_net(const uint8_t *shard, size_t len, void *user)
{
	struct net_out *o = user;
	if (shard[0] == FEC_TYPE_DATA && len >= FEC_DATA_HDR + 4) {
		uint32_t id = shard[6] | (uint32_t)shard[7] << 8 |
		              (uint32_t)shard[8] << 16;
		o->group_of[id] = shard[1] | (uint32_t)shard[2] << 8;
		o->index_of[id] = shard[5];
	}
	simnet_send(o->net, 0, shard, (int)len, o->now_ms);
}

/* Loss, delay, jitter, reordering and duplication from test/simnet. The
 * model: packet i is delivered (once) iff its data shard arrived, or at
 * least k_used distinct shards of its group arrived, one of them parity
 * (reordering stays well inside the window and the expiry). */
TEST(reorder_duplicate)
{
	struct fec_config c = conf(6, 3, 400);
	struct simnet_conf nc = { 0 };
	struct net_out o = { 0 };
	struct sink sk;
	struct fec_dec_stats st;
	struct simnet_stats ns;
	fec_enc_t *e = fec_enc_create(&c);
	fec_dec_t *d = fec_dec_create(&c);
	static uint8_t buf[2048];
	static uint64_t arrived[4096]; /* per group: distinct shard indices */
	static int kused[4096];        /* per group: from a parity shard */
	static uint32_t group_of[8000];
	static uint8_t index_of[8000];
	int npkts = 6000, i, n, twice = 0, missing = 0, expect_missing = 0;
	uint32_t t;

	REQUIRE(e && d);
	nc.loss = 0.15;
	nc.delay_min = 5;
	nc.delay_max = 30;
	nc.jitter = 10;
	nc.reorder = 0.2;
	nc.dup = 0.1;
	o.net = simnet_create(&nc, 42);
	o.group_of = group_of;
	o.index_of = index_of;
	REQUIRE(o.net != NULL);
	sink_init(&sk, (uint32_t)npkts);
	memset(kused, 0, sizeof kused);
	memset(arrived, 0, sizeof arrived);
	for (t = 0, i = 0; i < npkts || simnet_queued(o.net, 0) > 0 ||
	     fec_enc_check(e, 0) != UINT64_MAX; t++) {
		uint64_t now = (uint64_t)t * 1000;
		o.now_ms = t;
		CHECK(fec_enc_update(e, now, to_net, &o) >= 0);
		/* two packets a ms, with a pause every 50 ms */
		if (i < npkts && t % 50 < 45) {
			for (n = 0; n < 2 && i < npkts; n++, i++) {
				sk.len[i] = 4 + rndn(397);
				CHECK(fec_enc_add(e, make_pkt((uint32_t)i, sk.len[i]),
				                  sk.len[i], now, to_net, &o) > 0);
			}
		}
		while ((n = simnet_recv(o.net, 0, buf, sizeof buf, t)) >= 0) {
			uint32_t g = buf[1] | (uint32_t)buf[2] << 8;
			int r;
			REQUIRE(g < 4096);
			arrived[g] |= (uint64_t)1 << buf[5];
			if (buf[0] == FEC_TYPE_PARITY)
				kused[g] = buf[6];
			r = feed(d, buf, (size_t)n, now, deliver_id, &sk);
			CHECK(r >= 0 || r == FEC_EDUP);
		}
		REQUIRE(t < 100000);
	}
	for (i = 0; i < npkts; i++) {
		uint32_t g = group_of[i];
		int want = (arrived[g] >> index_of[i] & 1) ||
		           (kused[g] && __builtin_popcountll(arrived[g]) >= kused[g]);
		if (sk.count[i] > 1)
			twice++;
		if (sk.count[i] == 0)
			missing++;
		if (!want)
			expect_missing++;
		if (want != (sk.count[i] > 0) && missing + twice < 5)
			TU_FAIL("packet %d (group %u index %u): delivered %d, "
			        "model says %d", i, g, index_of[i], sk.count[i], want);
	}
	CHECK_EQ(twice, 0);
	CHECK_EQ(sk.bad, 0);
	CHECK_EQ(missing, expect_missing);
	fec_dec_stats(d, &st);
	simnet_getstats(o.net, &ns);
	VERBOSE("    %d packets: %d missing, %llu recovered, %llu duplicate "
	        "shards, %llu shards lost, %llu duplicated by the net\n", npkts,
	        missing, (unsigned long long)st.recovered,
	        (unsigned long long)st.duplicates,
	        (unsigned long long)ns.lost[0],
	        (unsigned long long)ns.duplicated[0]);
	CHECK(st.duplicates > 0);
	CHECK(st.recovered > 0);
	CHECK_EQ(st.stale + st.far + st.malformed, 0);
	CHECK_EQ((uint64_t)(npkts - missing), st.delivered);
	sink_free(&sk);
	simnet_free(o.net);
	fec_enc_release(e);
	fec_dec_release(d);
}

/* ---- order, window, eviction, expiry ---------------------------------------- */

/* Shards of five groups, two lost in each, fed interleaved (one shard of
 * each group in turn), then the same with groups in reverse order. */
TEST(interleaved_groups)
{
	struct fec_config c = conf(4, 2, 300);
	struct shards sh = { 0 };
	struct sink sk;
	struct fec_dec_stats st;
	fec_enc_t *e = fec_enc_create(&c);
	static const int lose[5][2] = { { 0, 1 }, { 4, 5 }, { 2, 4 },
	                                { 3, 0 }, { 1, 5 } };
	int pass, g, x, i, lostdata = 0;

	REQUIRE(e);
	sink_init(&sk, 20);
	for (i = 0; i < 20; i++) {
		sk.len[i] = 4 + rndn(297);
		CHECK(fec_enc_add(e, make_pkt((uint32_t)i, sk.len[i]), sk.len[i],
		                  0, collect, &sh) > 0);
	}
	REQUIRE_EQ(sh.n, 30);
	for (g = 0; g < 5; g++)
		for (x = 0; x < 2; x++)
			if (lose[g][x] < 4)
				lostdata++;
	for (pass = 0; pass < 2; pass++) {
		fec_dec_t *d = fec_dec_create(&c);
		REQUIRE(d);
		memset(sk.count, 0, 20);
		for (x = 0; x < 6; x++)
			for (i = 0; i < 5; i++) {
				g = pass ? 4 - i : i;
				if (lose[g][0] == x || lose[g][1] == x)
					continue;
				CHECK(feed(d, sh.p[g * 6 + x], sh.len[g * 6 + x], 0,
				           deliver_id, &sk) >= 0);
			}
		for (i = 0; i < 20; i++)
			CHECK_EQ(sk.count[i], 1);
		fec_dec_stats(d, &st);
		CHECK_EQ(st.recovered, lostdata);
		CHECK_EQ(st.delivered, 20);
		/* complete groups hold nothing */
		fec_dec_release(d);
	}
	CHECK_EQ(sk.bad, 0);
	shards_clear(&sh);
	sink_free(&sk);
	fec_enc_release(e);
}

/* A group that arrived whole holds no buffer once its parity came. */
TEST(memory_returns)
{
	struct fec_config c = conf(8, 2, 1200);
	struct shards sh = { 0 };
	fec_enc_t *e = fec_enc_create(&c);
	fec_dec_t *d = fec_dec_create(&c);
	size_t base;
	int i;

	REQUIRE(e && d);
	base = fec_dec_memsize(d);
	CHECK(base <= fec_dec_memmax(&c));
	CHECK(fec_dec_check(d, 0) == UINT64_MAX);
	for (i = 0; i < 8; i++)
		CHECK(fec_enc_add(e, make_pkt((uint32_t)i, 1000), 1000, 0,
		                  collect, &sh) > 0);
	/* copies are kept until the group is known complete: its k from a
	 * parity shard, or all `data` packets in */
	for (i = 0; i < 7; i++)
		CHECK_EQ(feed(d, sh.p[i], sh.len[i], 0, no_deliver, NULL), 1);
	CHECK_EQ(fec_dec_memsize(d), base + 7 * 1002);
	CHECK(fec_dec_check(d, 0) == 1000000);
	CHECK_EQ(feed(d, sh.p[8], sh.len[8], 0, no_deliver, NULL), 1);
	CHECK_EQ(fec_dec_memsize(d), base);
	CHECK(fec_dec_check(d, 0) == UINT64_MAX);
	CHECK_EQ(feed(d, sh.p[7], sh.len[7], 0, no_deliver, NULL), FEC_EDUP);
	shards_clear(&sh);
	for (i = 0; i < 8; i++)
		CHECK(fec_enc_add(e, make_pkt((uint32_t)i, 1000), 1000, 0,
		                  collect, &sh) > 0);
	for (i = 0; i < 8; i++)
		CHECK_EQ(feed(d, sh.p[i], sh.len[i], 0, no_deliver, NULL), 1);
	CHECK_EQ(fec_dec_memsize(d), base);
	CHECK_EQ(feed(d, sh.p[8], sh.len[8], 0, no_deliver, NULL), 0);
	CHECK_EQ(feed(d, sh.p[9], sh.len[9], 0, no_deliver, NULL), 0);
	CHECK_EQ(feed(d, sh.p[9], sh.len[9], 0, no_deliver, NULL), FEC_EDUP);
	CHECK_EQ(fec_dec_memsize(d), base);
	CHECK(fec_enc_memsize(e) >= 3 * 1200 && fec_enc_memsize(e) < 3 * 1300 + 512);
	shards_clear(&sh);
	fec_enc_release(e);
	fec_dec_release(d);
}

TEST(eviction)
{
	struct fec_config c = conf(4, 2, 100);
	struct shards sh = { 0 };
	struct sink sk;
	struct fec_dec_stats st;
	fec_enc_t *e;
	fec_dec_t *d;
	size_t base;
	int g, i;

	c.groups = 4;
	c.expire_ms = 0;
	e = fec_enc_create(&c);
	d = fec_dec_create(&c);
	REQUIRE(e && d);
	sink_init(&sk, 40);
	base = fec_dec_memsize(d);
	for (i = 0; i < 40; i++) {
		sk.len[i] = 50;
		CHECK(fec_enc_add(e, make_pkt((uint32_t)i, 50), 50, 0, collect,
		                  &sh) > 0);
	}
	REQUIRE_EQ(sh.n, 60);
	/* every group loses data 3 and both parity shards, for now */
	for (g = 0; g < 10; g++) {
		for (i = 0; i < 3; i++)
			CHECK_EQ(feed(d, sh.p[g * 6 + i], sh.len[g * 6 + i], 0,
			              deliver_id, &sk), 1);
		CHECK(fec_dec_memsize(d) <= fec_dec_memmax(&c));
	}
	/* four groups are tracked, three copies of 2 + 50 bytes each */
	CHECK_EQ(fec_dec_memsize(d), base + 4 * 3 * 52);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.unrecovered, 6);
	/* group 0 is forgotten: its late shards are stale, not delivered */
	CHECK_EQ(feed(d, sh.p[3], sh.len[3], 0, deliver_id, &sk), FEC_ESTALE);
	CHECK_EQ(feed(d, sh.p[4], sh.len[4], 0, deliver_id, &sk), FEC_ESTALE);
	CHECK_EQ(feed(d, sh.p[0], sh.len[0], 0, deliver_id, &sk), FEC_ESTALE);
	CHECK_EQ(sk.count[3], 0);
	CHECK_EQ(sk.count[0], 1);
	/* group 6 (in the window) recovers from one parity shard */
	CHECK_EQ(feed(d, sh.p[6 * 6 + 4], sh.len[6 * 6 + 4], 0, deliver_id,
	              &sk), 1);
	CHECK_EQ(sk.count[6 * 4 + 3], 1);
	/* group 9: the late data shard, then parity completes it */
	CHECK_EQ(feed(d, sh.p[9 * 6 + 3], sh.len[9 * 6 + 3], 0, deliver_id,
	              &sk), 1);
	CHECK_EQ(feed(d, sh.p[9 * 6 + 5], sh.len[9 * 6 + 5], 0, deliver_id,
	              &sk), 0);
	CHECK_EQ(fec_dec_memsize(d), base + 2 * 3 * 52);
	/* a data shard already delivered, in the window: duplicate */
	CHECK_EQ(feed(d, sh.p[7 * 6], sh.len[7 * 6], 0, deliver_id, &sk),
	         FEC_EDUP);
	fec_dec_reset(d);
	CHECK_EQ(fec_dec_memsize(d), base);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.unrecovered, 8);
	CHECK_EQ(st.stale, 3);
	CHECK_EQ(st.duplicates, 1);
	CHECK_EQ(st.recovered, 1);
	for (i = 0; i < 40; i++)
		CHECK(sk.count[i] <= 1);
	CHECK_EQ(sk.bad, 0);
	shards_clear(&sh);
	sink_free(&sk);
	fec_enc_release(e);
	fec_dec_release(d);

	/* a window of 5 (not a power of two) is 5 groups exactly */
	c.groups = 5;
	d = fec_dec_create(&c);
	REQUIRE(d);
	{
		uint8_t p[FEC_DATA_HDR + 4] = { FEC_TYPE_DATA, 10, 0, 0, 0, 0,
		                                1, 2, 3, 4 };
		CHECK_EQ(feed(d, p, sizeof p, 0, no_deliver, NULL), 1);
		p[1] = 6;
		CHECK_EQ(feed(d, p, sizeof p, 0, no_deliver, NULL), 1);
		p[1] = 5;
		CHECK_EQ(feed(d, p, sizeof p, 0, no_deliver, NULL), FEC_ESTALE);
		p[1] = 14;
		CHECK_EQ(feed(d, p, sizeof p, 0, no_deliver, NULL), 1);
		p[1] = 10;
		CHECK_EQ(feed(d, p, sizeof p, 0, no_deliver, NULL), FEC_EDUP);
		p[1] = 9;
		CHECK_EQ(feed(d, p, sizeof p, 0, no_deliver, NULL), FEC_ESTALE);
	}
	fec_dec_release(d);
}

TEST(expiry)
{
	struct fec_config c = conf(4, 2, 100);
	struct shards sh = { 0 };
	struct sink sk;
	struct fec_dec_stats st;
	fec_enc_t *e;
	fec_dec_t *d;
	uint64_t t = 1000000;
	size_t base;
	int i;

	c.expire_ms = 100;
	e = fec_enc_create(&c);
	d = fec_dec_create(&c);
	REQUIRE(e && d);
	sink_init(&sk, 12);
	base = fec_dec_memsize(d);
	for (i = 0; i < 12; i++) {
		sk.len[i] = 20 + (size_t)i;
		CHECK(fec_enc_add(e, make_pkt((uint32_t)i, sk.len[i]), sk.len[i],
		                  0, collect, &sh) > 0);
	}
	CHECK_EQ(feed(d, sh.p[0], sh.len[0], t, deliver_id, &sk), 1);
	CHECK_EQ(feed(d, sh.p[1], sh.len[1], t + 10, deliver_id, &sk), 1);
	CHECK(fec_dec_check(d, t) == t + 100000);
	fec_dec_update(d, t + 99999);
	CHECK(fec_dec_memsize(d) > base);
	fec_dec_update(d, t + 100000);
	CHECK_EQ(fec_dec_memsize(d), base);
	CHECK(fec_dec_check(d, t + 100000) == UINT64_MAX);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.unrecovered, 1);
	/* given up, but still remembered: late data once, no recovery */
	CHECK_EQ(feed(d, sh.p[2], sh.len[2], t + 200000, deliver_id, &sk), 1);
	CHECK_EQ(feed(d, sh.p[4], sh.len[4], t + 200000, deliver_id, &sk), 0);
	CHECK_EQ(feed(d, sh.p[5], sh.len[5], t + 200000, deliver_id, &sk), 0);
	CHECK_EQ(feed(d, sh.p[0], sh.len[0], t + 200000, deliver_id, &sk),
	         FEC_EDUP);
	CHECK_EQ(fec_dec_memsize(d), base);
	CHECK_EQ(sk.count[3], 0);
	/* expiry on input: group 1 is given up when group 2 starts late */
	CHECK_EQ(feed(d, sh.p[6], sh.len[6], t + 300000, deliver_id, &sk), 1);
	CHECK(fec_dec_memsize(d) > base);
	CHECK_EQ(feed(d, sh.p[12], sh.len[12], t + 400000, deliver_id, &sk), 1);
	CHECK_EQ(fec_dec_memsize(d), base + 2 + sk.len[8]);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.unrecovered, 2);
	CHECK_EQ(st.recovered, 0);
	for (i = 0; i < 12; i++)
		CHECK(sk.count[i] <= 1);
	shards_clear(&sh);
	sink_free(&sk);
	fec_enc_release(e);
	fec_dec_release(d);
}

static size_t
mk_data(uint8_t *p, uint32_t gid, int idx, size_t n)
{
	p[0] = FEC_TYPE_DATA;
	p[1] = (uint8_t)gid;
	p[2] = (uint8_t)(gid >> 8);
	p[3] = (uint8_t)(gid >> 16);
	p[4] = (uint8_t)(gid >> 24);
	p[5] = (uint8_t)idx;
	memset(p + FEC_DATA_HDR, 0x5a, n);
	return FEC_DATA_HDR + n;
}

static size_t
mk_parity(uint8_t *p, uint32_t gid, int idx, int k, int m, size_t L)
{
	mk_data(p, gid, idx, 0);
	p[0] = FEC_TYPE_PARITY;
	p[6] = (uint8_t)k;
	p[7] = (uint8_t)m;
	memset(p + FEC_PARITY_HDR, 0, L);
	return FEC_PARITY_HDR + L;
}

TEST(far_and_resync)
{
	struct fec_config c = conf(2, 1, 100);
	struct fec_dec_stats st;
	fec_dec_t *d = fec_dec_create(&c);
	uint8_t p[200];
	size_t n;

	REQUIRE(d);
	n = mk_data(p, 5, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), 1);
	/* a jump within FEC_JUMP_MAX is taken */
	n = mk_data(p, 5 + FEC_JUMP_MAX, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), 1);
	/* further: far, twice dropped, the third in a row resyncs */
	n = mk_data(p, 5 + FEC_JUMP_MAX + 5000, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_EFAR);
	n = mk_data(p, 5 + FEC_JUMP_MAX + 5000, 1, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_EFAR);
	/* an in-window shard in between starts the count again */
	n = mk_data(p, 5 + FEC_JUMP_MAX, 1, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), 1);
	n = mk_data(p, 5 + FEC_JUMP_MAX + 5000, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_EFAR);
	n = mk_data(p, 5 + FEC_JUMP_MAX + 5001, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_EFAR);
	n = mk_data(p, 5 + FEC_JUMP_MAX + 5000, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), 1);  /* resync */
	/* the window is there now; behind it by less than FEC_JUMP_MAX is
	 * stale, further is far */
	n = mk_data(p, 5 + FEC_JUMP_MAX + 5000, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_EDUP);
	n = mk_data(p, 5 + FEC_JUMP_MAX + 5000 - 32, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_ESTALE);
	n = mk_data(p, 5 + FEC_JUMP_MAX + 5000 - 31, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), 1);
	n = mk_data(p, 5, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_EFAR);
	/* stale ones do not count towards a resync */
	n = mk_data(p, 5 + FEC_JUMP_MAX + 5000 - 100, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_ESTALE);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_ESTALE);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_ESTALE);
	/* the sender restarted at group 0: the third far shard in a row
	 * (group 5 above, 0/0, 0/1) resyncs */
	n = mk_data(p, 0, 0, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), FEC_EFAR);
	n = mk_data(p, 0, 1, 10);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), 1);
	/* data 0 was dropped before the resync; parity brings it back */
	n = mk_parity(p, 0, 2, 2, 1, 12);
	CHECK_EQ(feed(d, p, n, 0, no_deliver, NULL), 1);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.resyncs, 2);
	CHECK_EQ(st.far, 6);
	CHECK_EQ(st.stale, 4);
	fec_dec_release(d);
}

/* Group ids wrap at 2^32 with no effect. */
TEST(group_wrap)
{
	struct fec_config c = conf(3, 2, 200);
	struct shards sh = { 0 };
	struct sink sk;
	struct fec_dec_stats st;
	fec_enc_t *e = fec_enc_create(&c);
	fec_dec_t *d = fec_dec_create(&c);
	uint8_t p[64];
	int i, g, lostdata = 0;

	REQUIRE(e && d);
	sink_init(&sk, 24);
	CHECK_EQ(fec_enc_setnext(e, 0xfffffffdu), 0);
	for (i = 0; i < 24; i++) {
		sk.len[i] = 4 + rndn(197);
		CHECK(fec_enc_add(e, make_pkt((uint32_t)i, sk.len[i]), sk.len[i],
		                  0, collect, &sh) > 0);
	}
	REQUIRE_EQ(sh.n, 40);
	CHECK(sh.p[0][1] == 0xfd && sh.p[0][4] == 0xff);
	CHECK(sh.p[35][1] == 4 && sh.p[35][4] == 0);
	for (g = 0; g < 8; g++) {
		int a = (int)rndn(5), b = (int)rndn(5);
		for (i = 0; i < 5; i++) {
			if (i == a || i == b) {
				lostdata += i < 3;
				continue;
			}
			CHECK(feed(d, sh.p[g * 5 + i], sh.len[g * 5 + i], 0,
			           deliver_id, &sk) >= 0);
		}
	}
	for (i = 0; i < 24; i++)
		CHECK_EQ(sk.count[i], 1);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.recovered, lostdata);
	/* 52 behind group 4, across the wrap: stale; 20 behind: in the window */
	mk_data(p, 0xffffffd0u, 0, 4);
	CHECK_EQ(feed(d, p, FEC_DATA_HDR + 4, 0, no_deliver, NULL), FEC_ESTALE);
	mk_data(p, 0xfffffff0u, 0, 4);
	CHECK_EQ(feed(d, p, FEC_DATA_HDR + 4, 0, no_deliver, NULL), 1);
	CHECK_EQ(sk.bad, 0);
	shards_clear(&sh);
	sink_free(&sk);
	fec_enc_release(e);
	fec_dec_release(d);
}

/* ---- hostile input ----------------------------------------------------- */

TEST(malformed)
{
	struct fec_config c = conf(4, 2, 100);
	struct fec_dec_stats st;
	struct got got = { 0 };
	fec_dec_t *d = fec_dec_create(&c);
	uint8_t p[300];
	size_t n;
	long expect = 0;

	REQUIRE(d);
#define BAD(len, code) do { \
	CHECK_EQ(feed(d, p, (len), 0, deliver_got, &got), (code)); \
	expect++; \
} while (0)
	/* headers */
	BAD(0, FEC_ETRUNC);
	p[0] = FEC_TYPE_DATA;
	BAD(1, FEC_ETRUNC);
	BAD(FEC_DATA_HDR - 1, FEC_ETRUNC);
	p[0] = 0x10;
	BAD(20, FEC_ETYPE);
	p[0] = 0x00;
	BAD(20, FEC_ETYPE);
	n = mk_data(p, 1, 4, 10);            /* index >= data */
	BAD(n, FEC_EHDR);
	n = mk_data(p, 1, 255, 10);
	BAD(n, FEC_EHDR);
	n = mk_data(p, 1, 0, 101);           /* longer than pkt_max */
	BAD(n, FEC_ETOOBIG);
	n = mk_parity(p, 1, 4, 4, 2, 20);
	BAD(FEC_PARITY_HDR, FEC_ETRUNC);
	BAD(FEC_PARITY_HDR + 1, FEC_ETRUNC); /* no room for the length */
	BAD(3, FEC_ETRUNC);
	n = mk_parity(p, 1, 4, 0, 2, 20);    /* data count 0 */
	BAD(n, FEC_EHDR);
	n = mk_parity(p, 1, 5, 5, 2, 20);    /* data count above k */
	BAD(n, FEC_EHDR);
	n = mk_parity(p, 1, 4, 4, 0, 20);    /* parity count 0 */
	BAD(n, FEC_EHDR);
	n = mk_parity(p, 1, 4, 4, 3, 20);    /* parity count above m */
	BAD(n, FEC_EHDR);
	n = mk_parity(p, 1, 3, 4, 2, 20);    /* index < data count */
	BAD(n, FEC_EHDR);
	n = mk_parity(p, 1, 6, 4, 2, 20);    /* index >= data + parity */
	BAD(n, FEC_EHDR);
	n = mk_parity(p, 1, 4, 4, 2, 103);   /* payload above 2 + pkt_max */
	BAD(n, FEC_ETOOBIG);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.malformed, expect);
	CHECK_EQ(st.in_shards, expect);
	CHECK_EQ(got.n, 0);

	/* shards that disagree with their group (group 1) */
	n = mk_parity(p, 1, 2, 2, 2, 12);    /* k 2, m 2, L 12 */
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 0);
	n = mk_parity(p, 1, 3, 2, 2, 14);    /* another L */
	BAD(n, FEC_EGROUP);
	n = mk_parity(p, 1, 3, 3, 2, 12);    /* another k */
	BAD(n, FEC_EGROUP);
	n = mk_parity(p, 1, 3, 2, 1, 12);    /* another m (index 3 >= 2 + 1
	                                        is out of range: EHDR first) */
	BAD(n, FEC_EHDR);
	n = mk_parity(p, 1, 2, 2, 1, 12);    /* another m */
	BAD(n, FEC_EGROUP);
	n = mk_data(p, 1, 2, 5);             /* index >= the group's k */
	BAD(n, FEC_EGROUP);
	n = mk_data(p, 1, 0, 11);            /* longer than L - 2 */
	BAD(n, FEC_EGROUP);
	n = mk_data(p, 1, 0, 10);            /* exactly L - 2: fine, and with
	                                        the parity gives back data 1 */
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 2);
	/* group 2: data first, then parity that cannot be of this group */
	n = mk_data(p, 2, 3, 30);
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 1);
	n = mk_parity(p, 2, 3, 3, 2, 40);    /* data 3 came: k must be > 3 */
	BAD(n, FEC_EGROUP);
	n = mk_parity(p, 2, 4, 4, 2, 31);    /* shorter than 2 + 30 */
	BAD(n, FEC_EGROUP);
	n = mk_parity(p, 2, 4, 4, 2, 32);
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 0);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.malformed, expect);
	CHECK_EQ(got.n, 3);
	got_clear(&got);

	/* a length prefix claiming more than the shard: with k = 1 the
	 * parity is the packet itself; forged, the recovery does not check
	 * out and nothing is delivered */
	c = conf(1, 1, 100);
	fec_dec_release(d);
	d = fec_dec_create(&c);
	REQUIRE(d);
	n = mk_parity(p, 7, 1, 1, 1, 10);
	p[FEC_PARITY_HDR] = 0xff;
	p[FEC_PARITY_HDR + 1] = 0xff;
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 0);
	n = mk_parity(p, 8, 1, 1, 1, 10);
	p[FEC_PARITY_HDR] = 9;               /* 9 > L - 2 */
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 0);
	n = mk_parity(p, 9, 1, 1, 1, 10);
	p[FEC_PARITY_HDR] = 3;               /* padding not zero */
	p[FEC_PARITY_HDR + 9] = 1;
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 0);
	n = mk_parity(p, 10, 1, 1, 1, 10);
	p[FEC_PARITY_HDR] = 8;               /* exactly L - 2: delivered */
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 1);
	CHECK_EQ(got.n, 1);
	CHECK_EQ(got.len[0], 8);
	fec_dec_stats(d, &st);
	CHECK_EQ(st.bad_recovery, 3);
	CHECK_EQ(st.unrecovered, 3);
	CHECK_EQ(st.recovered, 1);
	/* the genuine data of a group whose recovery failed still arrives,
	 * and nothing is kept for it */
	n = mk_data(p, 7, 0, 5);
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 1);
	CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), FEC_EDUP);
	/* with k = 1 one data shard is a whole group: no copy kept */
	fec_dec_reset(d);
	{
		size_t held = fec_dec_memsize(d);
		n = mk_data(p, 7, 0, 5);
		CHECK_EQ(feed(d, p, n, 0, deliver_got, &got), 1);
		CHECK_EQ(fec_dec_memsize(d), held);
	}
	got_clear(&got);
	fec_dec_release(d);
#undef BAD
}

struct fuzz_sink {
	long calls;
	int pkt_max;
	int bad;
};

static void
deliver_fuzz(uint8_t *p, size_t len, void *user)
{
	struct fuzz_sink *f = user;
	f->calls++;
	if (len > (size_t)f->pkt_max || (len && !p))
		f->bad++;
	if (len)
		memset(p, 0, len);  /* writable, and within bounds (ASan) */
}

/* Random bytes, plausible headers with random fields, and genuine shards
 * mutated: nothing crashes, every input is counted once, memory stays
 * under the bound, and the decoder still works after. */
TEST(fuzz_random)
{
	struct fec_config c = conf(8, 4, 200);
	struct fuzz_sink fs = { 0, 200, 0 };
	struct fec_dec_stats st;
	struct shards sh = { 0 };
	fec_enc_t *e;
	fec_dec_t *d;
	static uint8_t p[600];
	long ok = 0, delivered = 0, iter;
	uint32_t base = 1000;
	size_t memmax;

	c.groups = 8;
	c.expire_ms = 50;
	e = fec_enc_create(&c);
	d = fec_dec_create(&c);
	REQUIRE(e && d);
	memmax = fec_dec_memmax(&c);
	for (iter = 0; iter < 200000; iter++) {
		uint64_t now = (uint64_t)iter * 100;
		size_t n, x;
		int r, kind = (int)rndn(4);

		if (kind == 0) {
			/* random bytes */
			n = rndn(64);
			for (x = 0; x < n; x++)
				p[x] = (uint8_t)rnd();
		} else if (kind == 1) {
			/* a header near the window with random small fields */
			int k = (int)rndn(10), m = (int)rndn(6);
			n = rndn(2) ? mk_data(p, base + rndn(12) - 6, (int)rndn(10),
			                      rndn(210))
			            : mk_parity(p, base + rndn(12) - 6,
			                        k + (int)rndn((uint32_t)m + 2), k, m,
			                        rndn(210));
			for (x = FEC_PARITY_HDR; x < n; x++)
				p[x] = rndn(3) ? 0 : (uint8_t)rnd();
			if (rndn(50) == 0)
				base += rndn(3000);
		} else {
			/* a genuine shard, sometimes mutated or cut */
			if (sh.n == 0) {
				int i;
				for (i = 0; i < 8; i++) {
					size_t len = rndn(201);
					CHECK(fec_enc_add(e, make_pkt((uint32_t)i, len),
					                  len, now, collect, &sh) > 0);
				}
				CHECK_EQ(fec_enc_flush(e, collect, &sh), 0);
			}
			x = rndn((uint32_t)sh.n);
			n = sh.len[x];
			memcpy(p, sh.p[x], n);
			if (kind == 3) {
				int edits = 1 + (int)rndn(3);
				while (edits-- && n > 0) {
					size_t pos = rndn((uint32_t)n);
					if (rndn(4) == 0)
						n = pos;
					else
						p[pos] ^= (uint8_t)(1 + rndn(255));
				}
			}
			if (rndn(40) == 0)
				shards_clear(&sh);
		}
		r = feed(d, p, n, now, deliver_fuzz, &fs);
		if (r >= 0) {
			ok++;
			delivered += r;
		} else {
			CHECK(r == FEC_ETRUNC || r == FEC_ETYPE || r == FEC_EHDR ||
			      r == FEC_EGROUP || r == FEC_EDUP || r == FEC_ESTALE ||
			      r == FEC_EFAR || r == FEC_ETOOBIG);
		}
		if (fec_dec_memsize(d) > memmax) {
			TU_FAIL("memsize %zu above %zu", fec_dec_memsize(d), memmax);
			break;
		}
	}
	fec_dec_stats(d, &st);
	CHECK_EQ(fs.bad, 0);
	CHECK_EQ(fs.calls, delivered);
	CHECK_EQ(st.delivered, (uint64_t)delivered);
	CHECK_EQ(st.in_shards, (uint64_t)iter);
	CHECK_EQ(st.in_shards, ok + st.malformed + st.duplicates + st.stale + st.far);
	CHECK(st.malformed > 0 && st.duplicates > 0 && st.recovered > 0);
	VERBOSE("    %ld inputs: %ld taken, %llu malformed, %llu duplicates, "
	        "%llu stale, %llu far, %llu resyncs, %llu recovered, %llu bad "
	        "recoveries\n", iter, ok, (unsigned long long)st.malformed,
	        (unsigned long long)st.duplicates, (unsigned long long)st.stale,
	        (unsigned long long)st.far, (unsigned long long)st.resyncs,
	        (unsigned long long)st.recovered,
	        (unsigned long long)st.bad_recovery);
	/* still works: a fresh group far from the junk, after a reset */
	fec_dec_reset(d);
	shards_clear(&sh);
	{
		struct sink sk;
		int i;
		sink_init(&sk, 8);
		for (i = 0; i < 8; i++) {
			sk.len[i] = 100;
			CHECK(fec_enc_add(e, make_pkt((uint32_t)i, 100), 100, 0,
			                  collect, &sh) > 0);
		}
		for (i = 2; i < sh.n; i++)
			CHECK(feed(d, sh.p[i], sh.len[i], 0, deliver_id, &sk) >= 0);
		for (i = 0; i < 8; i++)
			CHECK_EQ(sk.count[i], 1);
		sink_free(&sk);
	}
	shards_clear(&sh);
	fec_enc_release(e);
	fec_dec_release(d);
}

/* ---- API edges ------------------------------------------------------------- */

TEST(api)
{
	struct fec_config c, bad;
	struct shards sh = { 0 };
	fec_enc_t *e;
	fec_dec_t *d;
	uint8_t p[16] = { 0 };
	int code;

	fec_config_default(&c);
	CHECK_EQ(fec_config_check(&c), 0);
	CHECK(c.data == 8 && c.parity == 2 && c.pkt_max == 1500 &&
	      c.flush_ms == 20 && c.groups == 32 && c.expire_ms == 1000);
	CHECK_EQ(fec_config_check(NULL), FEC_EINVAL);
#define REFUSED(field, value) do { \
	bad = c; \
	bad.field = (value); \
	CHECK_EQ(fec_config_check(&bad), FEC_EINVAL); \
	CHECK(fec_enc_create(&bad) == NULL); \
	CHECK(fec_dec_create(&bad) == NULL); \
	CHECK_EQ(fec_dec_memmax(&bad), 0); \
} while (0)
	REFUSED(data, 0);
	REFUSED(data, FEC_DATA_MAX + 1);
	REFUSED(parity, 0);
	REFUSED(parity, FEC_PARITY_MAX + 1);
	REFUSED(pkt_max, 0);
	REFUSED(pkt_max, FEC_PKT_MAX + 1);
	REFUSED(flush_ms, -1);
	REFUSED(flush_ms, 60001);
	REFUSED(groups, 0);
	REFUSED(groups, FEC_GROUPS_MAX + 1);
	REFUSED(expire_ms, -1);
#undef REFUSED
	for (code = -10; code <= 0; code++)
		CHECK(strcmp(fec_strerror(code), "unknown fec error") != 0);
	CHECK(strcmp(fec_strerror(-11), "unknown fec error") == 0);

	fec_enc_release(NULL);
	fec_dec_release(NULL);
	e = fec_enc_create(&c);
	d = fec_dec_create(&c);
	REQUIRE(e && d);
	CHECK_EQ(fec_enc_add(e, p, 4, 0, NULL, NULL), FEC_EINVAL);
	CHECK_EQ(fec_enc_add(e, NULL, 4, 0, collect, &sh), FEC_EINVAL);
	CHECK_EQ(fec_enc_update(e, 0, NULL, NULL), FEC_EINVAL);
	CHECK_EQ(fec_enc_flush(e, NULL, NULL), FEC_EINVAL);
	CHECK_EQ(sh.n, 0);
	CHECK_EQ(fec_enc_add(e, NULL, 0, 0, collect, &sh), 1);
	CHECK_EQ(fec_enc_setnext(e, 7), FEC_EINVAL);
	CHECK_EQ(fec_enc_flush(e, collect, &sh), 2);
	CHECK_EQ(fec_enc_setnext(e, 7), 0);
	CHECK_EQ(fec_dec_input(d, p, 4, 0, NULL, NULL), FEC_EINVAL);
	CHECK_EQ(fec_dec_input(d, NULL, 4, 0, no_deliver, NULL), FEC_EINVAL);
	CHECK_EQ(fec_dec_input(d, NULL, 0, 0, no_deliver, NULL), FEC_ETRUNC);
	/* memmax: the formula's main term */
	CHECK(fec_dec_memmax(&c) >= (size_t)(32 * 8 + 2) * 1502);
	CHECK(fec_dec_memmax(&c) < (size_t)(32 * 8 + 2) * 1502 + 64 * 1024);
	shards_clear(&sh);
	fec_enc_release(e);
	fec_dec_release(d);
}

int
main(int argc, char **argv)
{
	static const struct tu_test tests[] = {
		TU(gf_arithmetic),
		TU(gf_muladd),
		TU(coef_matrix),
		TU(fec_vector),
		TU(fec_frame_vector),
		TU(erasure_patterns),
		TU(beyond_parity),
		TU(lengths),
		TU(partial_flush),
		TU(random_loss),
		TU(reorder_duplicate),
		TU(interleaved_groups),
		TU(memory_returns),
		TU(eviction),
		TU(expiry),
		TU(far_and_resync),
		TU(group_wrap),
		TU(malformed),
		TU(fuzz_random),
		TU(api),
	};
	return tu_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
