/*
 * fuzz_fec.c - libFuzzer target: the FEC decoder (core/proto/fec.c) on untrusted
 * shards, and the encoder/decoder pair over a hostile network.
 *
 * Built two ways (see CMakeLists.txt):
 *  - with clang -fsanitize=fuzzer,address,undefined (MOONGATE_FUZZ);
 *  - with -DFUZZ_REPLAY_MAIN as a plain program (ctest fuzz_fec_corpus)
 *    that runs every file of test/fuzz/corpus_fec, plus deterministic
 *    mutations of each. `fuzz_fec_replay --seeds DIR` writes that corpus.
 *
 * Input format (every byte string is valid input):
 *   byte 0 bit 0: mode; bits 1-7 ignored
 *   byte 1: config: data 1 + (b & 7), parity 1 + (b >> 3 & 3), groups
 *           1 + (b >> 5) * 4; pkt_max 64; flush 5 ms; expire 50 ms.
 *   mode 0, raw: records until the end, each
 *       len u8 | dt u8 | len bytes (cut at the end of the input)
 *     the clock moves dt ms, then the bytes go to fec_dec_input.
 *   mode 1, network: the encoder sends packets, shards wait on a "wire"
 *     (at most 32), ops until the end:
 *       0x00-0x7f  send a packet of 4 + (b & 0x3f) bytes, at most 64
 *                  (its id first)
 *       0x80-0x9f  the clock moves (b & 0x1f) ms; fec_enc_update
 *       0xa0-0xbf  deliver wire shard (b & 0x1f) % n (reordering)
 *       0xc0-0xdf  drop wire shard (b & 0x1f) % n (loss)
 *       0xe0-0xef  deliver a copy of shard (b & 0x0f) % n, keep it (dup)
 *       0xf0-0xfe  deliver the oldest shard
 *       0xff       then x: flip bit x & 7 of byte x >> 3 of the oldest
 *                  shard (corruption)
 *     at the end the encoder is flushed and the wire delivered in order.
 *
 * Checks (abort() on failure, so the fuzzer saves the input):
 *  - fec_dec_input returns a count or a documented error, and every
 *    input is counted once in the stats (taken, malformed, duplicate,
 *    stale or far); the delivered count matches the returns;
 *  - a delivered packet is at most pkt_max bytes, and memory stays under
 *    fec_dec_memmax;
 *  - network mode, no corruption: every delivered packet is one that was
 *    sent, byte for byte, at most once; every packet whose data shard
 *    reached the decoder (not stale, not far) is delivered.
 *  - network mode with corruption: as above except the bytes, which the
 *    layer above authenticates; still at most pkt_max bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fec.h"

#define PKT_MAX 64
#define WIRE_SLOTS 32
#define MAX_IDS 4096

/* Where we are, printed when a check fails (set by the replay driver). */
static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_fec: check failed: %s "       \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

struct ctx {
	fec_dec_t *dec;
	size_t memmax;
	uint64_t taken, delivered_ret, delivered_cb;
	int corrupt;
	uint32_t nsent;
	size_t len[MAX_IDS];       /* sent length of each id */
	uint8_t count[MAX_IDS];    /* deliveries of each id */
	uint8_t must[MAX_IDS];     /* its data shard reached the decoder */
	/* the wire */
	int n;
	uint8_t shard[WIRE_SLOTS][PKT_MAX + 16];
	size_t slen[WIRE_SLOTS];
};

static uint8_t
pkt_byte(uint32_t id, size_t x)
{
	return (uint8_t)(id * 29u + x * 11u + 3u);
}

static void
deliver(uint8_t *p, size_t len, void *user)
{
	struct ctx *c = user;
	uint32_t id;
	size_t x;

	c->delivered_cb++;
	CHECK(len <= PKT_MAX);
	if (c->nsent == 0 || c->corrupt) {
		memset(p, 0, len); /* deliver may write the packet */
		return;
	}
	/* network mode, honest shards: a packet we sent */
	CHECK(len >= 4);
	id = (uint32_t)p[0] | (uint32_t)p[1] << 8;
	CHECK(id < c->nsent && c->len[id] == len);
	for (x = 2; x < len; x++)
		CHECK(p[x] == pkt_byte(id, x));
	CHECK(c->count[id] == 0);
	c->count[id]++;
	memset(p, 0, len); /* deliver may write the packet */
}

static int
feed(struct ctx *c, const uint8_t *p, size_t len, uint64_t now)
{
	uint8_t *cp = malloc(len ? len : 1);
	int r;

	CHECK(cp != NULL);
	if (len)
		memcpy(cp, p, len);
	r = fec_dec_input(c->dec, cp, len, now, deliver, c);
	free(cp);
	CHECK(r >= FEC_EFAR && r <= FEC_DATA_MAX && r != FEC_EINVAL &&
	      r != FEC_ENOMEM);
	CHECK(fec_strerror(r) != NULL);
	if (r >= 0) {
		c->taken++;
		c->delivered_ret += (uint64_t)r;
	}
	CHECK(fec_dec_memsize(c->dec) <= c->memmax);
	return r;
}

/* A shard leaves the wire for the decoder. */
static void
wire_deliver(struct ctx *c, int i, int keep, uint64_t now)
{
	const uint8_t *p = c->shard[i];
	size_t len = c->slen[i];
	int r = feed(c, p, len, now);

	if (!c->corrupt && len >= 10 && p[0] == FEC_TYPE_DATA) {
		uint32_t id = (uint32_t)p[6] | (uint32_t)p[7] << 8;
		if (r > 0 || r == FEC_EDUP)
			c->must[id] = 1;
		CHECK(r != FEC_ETRUNC && r != FEC_ETYPE && r != FEC_EHDR &&
		      r != FEC_EGROUP && r != FEC_ETOOBIG);
	}
	if (!keep) {
		memmove(c->shard[i], c->shard[i + 1],
		        (size_t)(c->n - i - 1) * sizeof c->shard[0]);
		memmove(&c->slen[i], &c->slen[i + 1],
		        (size_t)(c->n - i - 1) * sizeof c->slen[0]);
		c->n--;
	}
}

struct wire_ctx {
	struct ctx *c;
	uint64_t now;
};

static void
to_wire(const uint8_t *shard, size_t len, void *user)
{
	struct wire_ctx *w = user;
	struct ctx *c = w->c;

	CHECK(len <= PKT_MAX + 10);
	if (c->n == WIRE_SLOTS)
		wire_deliver(c, 0, 0, w->now); /* the oldest goes out first */
	memcpy(c->shard[c->n], shard, len);
	c->slen[c->n++] = len;
}

static void
run_network(struct ctx *c, fec_enc_t *e, const uint8_t *p, size_t n)
{
	struct wire_ctx w = { c, 1000000 };
	static uint8_t pkt[PKT_MAX];
	size_t i = 0, x;
	uint32_t id;

	while (i < n) {
		uint8_t b = p[i++];
		if (b < 0x80) {
			size_t len = 4 + (b & 0x3f);
			if (len > PKT_MAX)
				len = PKT_MAX;
			if (c->nsent == MAX_IDS)
				continue;
			id = c->nsent++;
			for (x = 0; x < len; x++)
				pkt[x] = pkt_byte(id, x);
			pkt[0] = (uint8_t)id;
			pkt[1] = (uint8_t)(id >> 8);
			c->len[id] = len;
			CHECK(fec_enc_add(e, pkt, len, w.now, to_wire, &w) >= 1);
		} else if (b < 0xa0) {
			w.now += (uint64_t)(b & 0x1f) * 1000;
			CHECK(fec_enc_update(e, w.now, to_wire, &w) >= 0);
		} else if (c->n == 0) {
			if (b == 0xff)
				i++;
			continue;
		} else if (b < 0xc0) {
			wire_deliver(c, (b & 0x1f) % c->n, 0, w.now);
		} else if (b < 0xe0) {
			int k = (b & 0x1f) % c->n;
			memmove(c->shard[k], c->shard[k + 1],
			        (size_t)(c->n - k - 1) * sizeof c->shard[0]);
			memmove(&c->slen[k], &c->slen[k + 1],
			        (size_t)(c->n - k - 1) * sizeof c->slen[0]);
			c->n--;
		} else if (b < 0xf0) {
			wire_deliver(c, (b & 0x0f) % c->n, 1, w.now);
		} else if (b < 0xff) {
			wire_deliver(c, 0, 0, w.now);
		} else {
			uint8_t a = i < n ? p[i++] : 0;
			if ((size_t)(a >> 3) < c->slen[0]) {
				c->shard[0][a >> 3] ^= (uint8_t)(1u << (a & 7));
				c->corrupt = 1;
			}
		}
	}
	CHECK(fec_enc_flush(e, to_wire, &w) >= 0);
	while (c->n > 0)
		wire_deliver(c, 0, 0, w.now);
	if (!c->corrupt)
		for (id = 0; id < c->nsent; id++)
			CHECK(!c->must[id] || c->count[id] == 1);
}

static void
run_raw(struct ctx *c, const uint8_t *p, size_t n)
{
	uint64_t now = 1000000;
	size_t i = 0;

	while (i + 2 <= n) {
		size_t len = p[i];
		now += (uint64_t)p[i + 1] * 1000;
		i += 2;
		if (len > n - i)
			len = n - i;
		feed(c, p + i, len, now);
		i += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctx c;
	struct fec_config cf;
	struct fec_dec_stats st;
	fec_enc_t *e = NULL;

	if (size < 2)
		return 0;
	memset(&c, 0, sizeof c);
	fec_config_default(&cf);
	cf.data = 1 + (data[1] & 7);
	cf.parity = 1 + (data[1] >> 3 & 3);
	cf.groups = 1 + (data[1] >> 5) * 4;
	cf.pkt_max = PKT_MAX;
	cf.flush_ms = 5;
	cf.expire_ms = 50;
	c.dec = fec_dec_create(&cf);
	CHECK(c.dec != NULL);
	c.memmax = fec_dec_memmax(&cf);
	if (data[0] & 1) {
		e = fec_enc_create(&cf);
		CHECK(e != NULL);
		run_network(&c, e, data + 2, size - 2);
	} else {
		run_raw(&c, data + 2, size - 2);
	}
	fec_dec_stats(c.dec, &st);
	CHECK(st.in_shards == c.taken + st.malformed + st.duplicates +
	      st.stale + st.far);
	CHECK(st.delivered == c.delivered_ret);
	CHECK(c.delivered_cb == c.delivered_ret);
	CHECK(st.recovered <= st.delivered);
	fec_dec_reset(c.dec);
	CHECK(fec_dec_memsize(c.dec) < c.memmax);
	fec_dec_release(c.dec);
	fec_enc_release(e);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
/*
 * Replay driver (test/fuzz/replay.h): fuzz_fec_replay [--mutations N]
 * FILE|DIR...; fuzz_fec_replay --seeds DIR writes the seed corpus into
 * DIR. Most mutations keep the mode and config bytes.
 */
#define FUZZ_FIXUP(mut, buf, m) do { if (((m) & 7) != 0) { \
	(mut)[0] = (buf)[0]; (mut)[1] = (buf)[1]; } } while (0)
#define FUZZ_TRUNC_MIN 2
#include "replay.h"

static void
put_seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Raw mode: records of the shards of real groups, some lost. */
struct rec {
	uint8_t buf[4096];
	size_t n;
	int skip;  /* drop every skip-th shard (0: none) */
	int seen;
};

static void
rec_out(const uint8_t *shard, size_t len, void *user)
{
	struct rec *r = user;
	r->seen++;
	if (r->skip && r->seen % r->skip == 0)
		return;
	if (r->n + 2 + len > sizeof r->buf)
		return;
	r->buf[r->n++] = (uint8_t)len;
	r->buf[r->n++] = 1;
	memcpy(r->buf + r->n, shard, len);
	r->n += len;
}

static void
raw_seed(const char *dir, const char *name, uint8_t conf, int npkts,
         int skip)
{
	struct fec_config cf;
	struct rec r;
	uint8_t pkt[PKT_MAX];
	fec_enc_t *e;
	int i;

	memset(&r, 0, sizeof r);
	r.buf[0] = 0;
	r.buf[1] = conf;
	r.n = 2;
	r.skip = skip;
	fec_config_default(&cf);
	cf.data = 1 + (conf & 7);
	cf.parity = 1 + (conf >> 3 & 3);
	cf.groups = 1 + (conf >> 5) * 4;
	cf.pkt_max = PKT_MAX;
	e = fec_enc_create(&cf);
	CHECK(e != NULL);
	for (i = 0; i < npkts; i++) {
		size_t len = (size_t)(i * 7) % (PKT_MAX + 1);
		memset(pkt, 0x30 + i, len);
		CHECK(fec_enc_add(e, pkt, len, 0, rec_out, &r) >= 1);
	}
	CHECK(fec_enc_flush(e, rec_out, &r) >= 0);
	fec_enc_release(e);
	put_seed(dir, name, r.buf, r.n);
}

static void
write_seeds(const char *dir)
{
	/* k 4, m 2 (conf 0x0b: 3 | 1 << 3), groups 5 */
	static const uint8_t inorder[] = {
		1, 0x2b, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0,
		0xf0, 0xf0,
	};
	static const uint8_t lossy[] = {
		1, 0x2b, 0x10, 0x11, 0x12, 0x13, 0xc0, 0xc1, 0x14, 0x15, 0x16,
		0x17, 0xc4, 0xa3, 0xa0, 0xa5, 0xe0, 0xe1, 0xf0, 0xf1, 0x30,
		0x31, 0x9f, 0xc0, 0xf0, 0xf0,
	};
	static const uint8_t partial[] = {
		1, 0x13, 0x3f, 0x00, 0x85, 0xc0, 0xf0, 0xf0, 0xf0, 0x01, 0x02,
		0x9f, 0x9f, 0xa1, 0xa0, 0xf0, 0x7f, 0x40, 0xc0, 0xf1,
	};
	static const uint8_t corrupt[] = {
		1, 0x0b, 0x20, 0x21, 0x22, 0x23, 0xc0, 0xff, 0x31, 0xf0, 0xff,
		0x00, 0xf0, 0xf0, 0xf0, 0xf0,
	};
	static const uint8_t window[] = {
		1, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
		0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
		0x01, 0xa0, 0xbf, 0xaf, 0xf0,
	};

	raw_seed(dir, "seed_raw_k4m2", 0x0b, 12, 0);
	raw_seed(dir, "seed_raw_k4m2_loss", 0x0b, 12, 3);
	raw_seed(dir, "seed_raw_k8m4", 0xff, 16, 5);
	raw_seed(dir, "seed_raw_k1m1", 0x00, 6, 2);
	put_seed(dir, "seed_net_inorder", inorder, sizeof inorder);
	put_seed(dir, "seed_net_lossy", lossy, sizeof lossy);
	put_seed(dir, "seed_net_partial", partial, sizeof partial);
	put_seed(dir, "seed_net_corrupt", corrupt, sizeof corrupt);
	put_seed(dir, "seed_net_window", window, sizeof window);
}

int
main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds")) {
		write_seeds(argv[2]);
		return 0;
	}
	return fuzz_replay_main(argc, argv, "fuzz_fec");
}
#endif
