/*
 * test_wire.c - unit tests of core/proto/wire.c, the packet codec.
 *
 * Decoders are fed exact-size heap copies, so a read past the end shows
 * under ASan. Randomised tests use a fixed seed. The known-answer vectors
 * (wire_vectors, last) are the ones in docs/PROTOCOL.md; run with -v to
 * print them. Any other argument selects tests by substring.
 */
#include "wire.h"
#include "testutil.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG 2048

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void
fill(uint8_t *p, size_t n, uint8_t salt)
{
	size_t i;
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + salt);
}

/* An exact-size heap copy of p[0..n) (n may be 0). */
static uint8_t *
dup(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (!d)
		abort();
	if (n)
		memcpy(d, p, n);
	return d;
}

static void
print_hex(const char *name, const uint8_t *p, size_t n)
{
	size_t i;
	printf("    %s (%zu bytes):\n", name, n);
	for (i = 0; i < n; i++)
		printf("%s%02x%s", i % 16 == 0 ? "        " : "", p[i],
		       i % 16 == 15 || i + 1 == n ? "\n" : " ");
}

/* p[0..n) must be the bytes hex spells; with -v print them. */
static void
check_hex(const char *name, const uint8_t *p, size_t n, const char *hex)
{
	static uint8_t want[BIG];
	size_t wn = tu_unhex(hex, want, sizeof want);

	if (tu_verbose)
		print_hex(name, p, n);
	tu_checks++;
	if ((wn != n || memcmp(want, p, n) != 0) &&
	    tu_report(__FILE__, __LINE__)) {
		size_t i;
		fprintf(stderr, "vector %s differs; got:\n", name);
		for (i = 0; i < n; i++)
			fprintf(stderr, "%02x%s", p[i], i % 16 == 15 ? "\n" : " ");
		fputc('\n', stderr);
	}
}

/* ---- fixtures: the vectors' fixed keys ---------------------------------- */

struct peers {
	uint8_t cpub[WIRE_PUB], csec[WIRE_SEC], spub[WIRE_PUB], ssec[WIRE_SEC];
	struct wire_keys c, s;
};

/* Client seed 32 x 0x01, server seed 32 x 0x02 (crypto_kx_seed_keypair). */
static int
peers_seeded(struct peers *p)
{
	uint8_t seed[crypto_kx_SEEDBYTES];
	memset(seed, 0x01, sizeof seed);
	crypto_kx_seed_keypair(p->cpub, p->csec, seed);
	memset(seed, 0x02, sizeof seed);
	crypto_kx_seed_keypair(p->spub, p->ssec, seed);
	return wire_client_keys(&p->c, p->cpub, p->csec, p->spub) == 0 &&
	       wire_server_keys(&p->s, p->spub, p->ssec, p->cpub) == 0;
}

/* ---- tests ------------------------------------------------------------- */

/* RFC 8439 section 2.8.2: our libsodium call and nonce layout reproduce
 * the published AEAD example, so the vectors below rest on it. */
TEST(rfc8439_aead)
{
	static const char pt[] = "Ladies and Gentlemen of the class of '99: "
		"If I could offer you only one tip for the future, sunscreen "
		"would be it.";
	static const char ct_hex[] =
		"d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2"
		"a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6"
		"3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b"
		"1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36"
		"92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58"
		"fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc"
		"3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b"
		"61 16";
	static const uint8_t aad[12] = { 0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1,
	                                 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7 };
	static const uint8_t nonce[12] = { 0x07, 0x00, 0x00, 0x00, 0x40, 0x41,
	                                   0x42, 0x43, 0x44, 0x45, 0x46, 0x47 };
	uint8_t key[32], ct[114], tag[16], back[114];
	int i;

	REQUIRE_EQ(sizeof pt - 1, 114);
	for (i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	CHECK_EQ(crypto_aead_chacha20poly1305_ietf_encrypt_detached(ct, tag,
	         NULL, (const uint8_t *)pt, 114, aad, sizeof aad, NULL, nonce,
	         key), 0);
	check_hex("rfc8439 ciphertext", ct, sizeof ct, ct_hex);
	check_hex("rfc8439 tag", tag, sizeof tag,
	          "1a e1 0b 59 4f 09 e2 6a 7e 90 2e cb d0 60 06 91");
	CHECK_EQ(crypto_aead_chacha20poly1305_ietf_decrypt_detached(back, NULL,
	         ct, 114, tag, aad, sizeof aad, nonce, key), 0);
	CHECK_MEM(back, pt, 114);
}

TEST(keys_agree)
{
	struct peers p;
	struct wire_keys k;
	uint8_t zero[WIRE_PUB] = { 0 };
	int i;

	REQUIRE(peers_seeded(&p));
	CHECK_MEM(p.c.tx, p.s.rx, WIRE_KEY);
	CHECK_MEM(p.c.rx, p.s.tx, WIRE_KEY);
	CHECK(memcmp(p.c.tx, p.c.rx, WIRE_KEY) != 0);

	for (i = 0; i < 20; i++) {
		wire_keypair(p.cpub, p.csec);
		wire_keypair(p.spub, p.ssec);
		REQUIRE_EQ(wire_client_keys(&p.c, p.cpub, p.csec, p.spub), 0);
		REQUIRE_EQ(wire_server_keys(&p.s, p.spub, p.ssec, p.cpub), 0);
		CHECK_MEM(p.c.tx, p.s.rx, WIRE_KEY);
		CHECK_MEM(p.c.rx, p.s.tx, WIRE_KEY);
		CHECK(memcmp(p.c.tx, p.c.rx, WIRE_KEY) != 0);
	}
	/* a fresh pair gives other keys */
	wire_keypair(p.spub, p.ssec);
	REQUIRE_EQ(wire_client_keys(&k, p.cpub, p.csec, p.spub), 0);
	CHECK(memcmp(k.tx, p.c.tx, WIRE_KEY) != 0);

	/* the all-zero point is of small order: refused, keys zeroed */
	memset(&k, 0xaa, sizeof k);
	CHECK_EQ(wire_client_keys(&k, p.cpub, p.csec, zero), WIRE_ECRYPTO);
	CHECK(sodium_is_zero((const uint8_t *)&k, sizeof k));
	memset(&k, 0xaa, sizeof k);
	CHECK_EQ(wire_server_keys(&k, p.spub, p.ssec, zero), WIRE_ECRYPTO);
	CHECK(sodium_is_zero((const uint8_t *)&k, sizeof k));
}

/* Seal body of blen bytes with one of four placements of the input:
 * 0 a separate buffer, 1 in place (out + WIRE_HDR), 2 at out (overlapping
 * the header), 3 at out + WIRE_HDR + 11 (overlapping the tag). */
static int
seal_placed(uint8_t *out, size_t cap, int place, uint32_t pn,
            const uint8_t *plain, size_t blen, const uint8_t *key, int enc)
{
	static const size_t at[4] = { 0, WIRE_HDR, 0, WIRE_HDR + 11 };
	static uint8_t sep[BIG];
	const uint8_t *body = sep;

	if (place == 0)
		memcpy(sep, plain, blen);
	else {
		memmove(out + at[place], plain, blen);
		body = out + at[place];
	}
	return wire_seal(out, cap, WIRE_KCP, 0xdeadbeef, pn, body, blen, key,
	                 enc);
}

TEST(seal_open_roundtrip)
{
	static uint8_t plain[1400], out[BIG];
	struct peers p;
	size_t blen;
	int enc, place;

	REQUIRE(peers_seeded(&p));
	fill(plain, sizeof plain, 7);
	for (enc = 0; enc < 2; enc++)
	for (place = 0; place < 4; place++)
	for (blen = 0; blen <= 1400; blen++) {
		struct wire_hdr h;
		uint8_t *body = NULL;
		uint32_t pn = (uint32_t)blen + 1;
		int n, r;

		memset(out, 0xee, sizeof out);
		n = seal_placed(out, sizeof out, place, pn, plain, blen,
		                p.c.tx, enc);
		REQUIRE_EQ(n, (int)(blen + WIRE_OVERHEAD));
		CHECK_EQ(out[n], 0xee); /* nothing past the tag */
		CHECK_EQ(out[0], WIRE_KCP);
		CHECK_EQ(wire_get32(out + 1), 0xdeadbeef);
		CHECK_EQ(wire_get32(out + 5), pn);
		if (enc && blen >= 8)
			CHECK(memcmp(out + WIRE_HDR, plain, blen) != 0);
		if (!enc)
			CHECK_MEM(out + WIRE_HDR, plain, blen);
		r = wire_open(out, (size_t)n, p.s.rx, enc, &h, &body);
		REQUIRE_EQ(r, (int)blen);
		CHECK(body == out + WIRE_HDR);
		CHECK_MEM(body, plain, blen);
		CHECK_EQ(h.type, WIRE_KCP);
		CHECK_EQ(h.sid, 0xdeadbeef);
		CHECK_EQ(h.pn, pn);
	}
}

/* The layout checked against libsodium's combined-mode AEAD directly. */
TEST(seal_layout)
{
	uint8_t key[WIRE_KEY], body[100], out[200], ref[200], n12[12] = { 0 };
	unsigned long long clen;
	int n;

	fill(key, sizeof key, 1);
	fill(body, sizeof body, 2);
	wire_put64(n12, 0x89abcdefu);

	n = wire_seal(out, sizeof out, WIRE_DGRAM, 42, 0x89abcdefu, body,
	              sizeof body, key, 1);
	REQUIRE_EQ(n, (int)sizeof body + WIRE_OVERHEAD);
	CHECK_EQ(crypto_aead_chacha20poly1305_ietf_encrypt(ref, &clen, body,
	         sizeof body, out, WIRE_HDR, NULL, n12, key), 0);
	CHECK_EQ(clen, sizeof body + WIRE_TAG);
	CHECK_MEM(out + WIRE_HDR, ref, (size_t)clen);

	/* auth-only: the tag is the AEAD of nothing over header and body */
	n = wire_seal(out, sizeof out, WIRE_DGRAM, 42, 0x89abcdefu, body,
	              sizeof body, key, 0);
	REQUIRE_EQ(n, (int)sizeof body + WIRE_OVERHEAD);
	CHECK_EQ(crypto_aead_chacha20poly1305_ietf_encrypt(ref, &clen, NULL, 0,
	         out, WIRE_HDR + sizeof body, NULL, n12, key), 0);
	CHECK_EQ(clen, WIRE_TAG);
	CHECK_MEM(out + WIRE_HDR + sizeof body, ref, WIRE_TAG);
}

TEST(seal_errors)
{
	uint8_t key[WIRE_KEY] = { 1 }, body[64] = { 0 }, out[128];
	int t;

	memset(out, 0x55, sizeof out);
	CHECK_EQ(wire_seal(out, 64 + WIRE_OVERHEAD - 1, WIRE_KCP, 1, 1, body,
	                   64, key, 1), WIRE_ESPACE);
	CHECK_EQ(wire_seal(out, WIRE_OVERHEAD - 1, WIRE_KCP, 1, 1, NULL, 0,
	                   key, 1), WIRE_ESPACE);
	CHECK_EQ(wire_seal(out, 0, WIRE_KCP, 1, 1, NULL, 0, key, 0),
	         WIRE_ESPACE);
	CHECK_EQ(out[0], 0x55); /* refused before writing */
	CHECK_EQ(wire_seal(out, sizeof out, WIRE_KCP, 1, 0, body, 8, key, 1),
	         WIRE_EINVAL);
	CHECK_EQ(wire_seal(out, sizeof out, WIRE_KCP, 1, 1, NULL, 8, key, 1),
	         WIRE_EINVAL);
	for (t = 0; t < 256; t++) {
		int r = wire_seal(out, sizeof out, (uint8_t)t, 1, 1, body, 8,
		                  key, 1);
		if (t >= WIRE_KCP && t <= WIRE_PATH_RESPONSE)
			CHECK_EQ(r, 8 + WIRE_OVERHEAD);
		else
			CHECK_EQ(r, WIRE_EINVAL);
	}
	CHECK_EQ(wire_seal(out, sizeof out, WIRE_PING, 1, 1, NULL, 0, key, 1),
	         WIRE_OVERHEAD);
}

/* Every single-bit flip of a sealed packet fails and leaves its header as
 * it was (an encrypted body may be cleared: libsodium wipes it). */
TEST(open_bit_flips)
{
	static const size_t sizes[] = { 0, 1, 29, 200 };
	uint8_t body[200], pkt[256], cp[256];
	struct peers p;
	size_t s, i;
	int enc, bit;

	REQUIRE(peers_seeded(&p));
	fill(body, sizeof body, 3);
	for (enc = 0; enc < 2; enc++)
	for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		int n = wire_seal(pkt, sizeof pkt, WIRE_KCP, 77, 5, body,
		                  sizes[s], p.c.tx, enc);
		REQUIRE(n > 0);
		for (i = 0; i < (size_t)n; i++)
		for (bit = 0; bit < 8; bit++) {
			uint8_t *b = dup(pkt, (size_t)n);
			uint8_t *body_out = NULL;
			struct wire_hdr h;
			int r, want = WIRE_EAUTH;

			b[i] ^= (uint8_t)(1u << bit);
			memcpy(cp, b, (size_t)n);
			if (i == 0 && (b[0] < WIRE_KCP || b[0] > WIRE_PATH_RESPONSE))
				want = WIRE_ETYPE;
			r = wire_open(b, (size_t)n, p.s.rx, enc, &h, &body_out);
			CHECK_EQ(r, want);
			CHECK_MEM(b, cp, enc && want == WIRE_EAUTH ? (size_t)WIRE_HDR
			                                           : (size_t)n);
			free(b);
		}
	}
}

TEST(open_wrong_key_or_mode)
{
	uint8_t body[50], pkt[128], cp[128];
	struct peers p;
	int n, enc;

	REQUIRE(peers_seeded(&p));
	fill(body, sizeof body, 9);
	for (enc = 0; enc < 2; enc++) {
		n = wire_seal(pkt, sizeof pkt, WIRE_DGRAM, 1, 9, body,
		              sizeof body, p.c.tx, enc);
		REQUIRE(n > 0);
		memcpy(cp, pkt, (size_t)n);
		/* the sender's own rx key, the other direction's key; a failed
		 * open keeps the header (an encrypted body may be cleared) */
		CHECK_EQ(wire_open(pkt, (size_t)n, p.c.rx, enc, NULL, NULL),
		         WIRE_EAUTH);
		CHECK_MEM(pkt, cp, enc ? (size_t)WIRE_HDR : (size_t)n);
		memcpy(pkt, cp, (size_t)n);
		CHECK_EQ(wire_open(pkt, (size_t)n, p.s.tx, enc, NULL, NULL),
		         WIRE_EAUTH);
		memcpy(pkt, cp, (size_t)n);
		/* the other mode */
		CHECK_EQ(wire_open(pkt, (size_t)n, p.s.rx, !enc, NULL, NULL),
		         WIRE_EAUTH);
		CHECK_MEM(pkt, cp, WIRE_HDR);
		memcpy(pkt, cp, (size_t)n);
		CHECK_EQ(wire_open(pkt, (size_t)n, p.s.rx, enc, NULL, NULL),
		         (int)sizeof body);
	}
	/* the other cipher: AES-256-GCM and ChaCha20-Poly1305 under one key
	 * never open each other's packets */
	if (wire_aesgcm_available()) {
		for (enc = 0; enc < 2; enc++) {
			n = wire_seal(pkt, sizeof pkt, WIRE_DGRAM, 1, 9, body, sizeof body,
			              p.c.tx, enc | WIRE_SUITE_AESGCM);
			REQUIRE(n == (int)(sizeof body + WIRE_OVERHEAD));
			memcpy(cp, pkt, (size_t)n);
			CHECK_EQ(wire_open(pkt, (size_t)n, p.s.rx, enc, NULL, NULL),
			         WIRE_EAUTH);
			memcpy(pkt, cp, (size_t)n);
			CHECK_EQ(wire_open(pkt, (size_t)n, p.s.rx, enc | WIRE_SUITE_AESGCM,
			                   NULL, NULL), (int)sizeof body);
			CHECK(memcmp(pkt + WIRE_HDR, body, sizeof body) == 0);
		}
	}
	/* pn 0 never opens, whatever the tag */
	n = wire_seal(pkt, sizeof pkt, WIRE_DGRAM, 1, 1, body, 4, p.c.tx, 1);
	REQUIRE(n > 0);
	wire_put32(pkt + 5, 0);
	CHECK_EQ(wire_open(pkt, (size_t)n, p.s.rx, 1, NULL, NULL), WIRE_EAUTH);
}

TEST(open_truncated)
{
	uint8_t body[60], pkt[128];
	struct peers p;
	struct wire_hdr h;
	int n, enc;
	size_t len;

	REQUIRE(peers_seeded(&p));
	fill(body, sizeof body, 4);
	for (enc = 0; enc < 2; enc++) {
		n = wire_seal(pkt, sizeof pkt, WIRE_KCP, 3, 3, body, sizeof body,
		              p.c.tx, enc);
		REQUIRE(n > 0);
		for (len = 0; len < (size_t)n; len++) {
			uint8_t *b = dup(pkt, len);
			int want = len < WIRE_OVERHEAD ? WIRE_ETRUNC : WIRE_EAUTH;
			CHECK_EQ(wire_open(b, len, p.s.rx, enc, &h, NULL), want);
			CHECK_EQ(wire_peek(b, len, &h),
			         len < WIRE_OVERHEAD ? WIRE_ETRUNC : 0);
			size_t keep = enc && len >= WIRE_OVERHEAD ? WIRE_HDR : len;
			CHECK(keep == 0 || memcmp(b, pkt, keep) == 0);
			free(b);
		}
		/* one byte more: the tag moves, so it fails too */
		pkt[n] = 0;
		CHECK_EQ(wire_open(pkt, (size_t)n + 1, p.s.rx, enc, &h, NULL),
		         WIRE_EAUTH);
	}
}

TEST(peek_types)
{
	uint8_t pkt[WIRE_OVERHEAD] = { 0 }, key[WIRE_KEY] = { 0 };
	struct wire_hdr h;
	int t;

	wire_put32(pkt + 1, 0x11223344);
	wire_put32(pkt + 5, 0x55667788);
	for (t = 0; t < 256; t++) {
		int sess = t >= WIRE_KCP && t <= WIRE_PATH_RESPONSE;
		pkt[0] = (uint8_t)t;
		memset(&h, 0, sizeof h);
		CHECK_EQ(wire_peek(pkt, sizeof pkt, &h), sess ? 0 : WIRE_ETYPE);
		if (sess) {
			CHECK_EQ(h.type, t);
			CHECK_EQ(h.sid, 0x11223344);
			CHECK_EQ(h.pn, 0x55667788);
		} else {
			CHECK_EQ(wire_open(pkt, sizeof pkt, key, 1, &h, NULL),
			         WIRE_ETYPE);
		}
	}
}

/* ---- replay window ------------------------------------------------------ */

TEST(replay_basics)
{
	struct wire_replay r, before;
	uint32_t pn;

	memset(&r, 0, sizeof r);
	CHECK_EQ(wire_replay_check(&r, 0), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 1), 0);
	CHECK_EQ(wire_replay_check(&r, 0xffffffffu), 0);
	/* in order, each once */
	for (pn = 1; pn <= 1000; pn++) {
		CHECK_EQ(wire_replay_check(&r, pn), 0);
		wire_replay_accept(&r, pn);
		CHECK_EQ(wire_replay_check(&r, pn), WIRE_EREPLAY);
	}
	CHECK_EQ(r.top, 1000);
	for (pn = 1; pn <= 1000; pn++)
		CHECK_EQ(wire_replay_check(&r, pn), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 1001), 0);

	/* accepting what check refuses changes nothing */
	before = r;
	wire_replay_accept(&r, 0);
	wire_replay_accept(&r, 5);    /* too old */
	wire_replay_accept(&r, 999);  /* duplicate */
	wire_replay_accept(&r, 1000);
	CHECK_MEM(&r, &before, sizeof r);
}

TEST(replay_reorder)
{
	struct wire_replay r;
	uint32_t pn, order[127];
	int i;

	memset(&r, 0, sizeof r);
	wire_replay_accept(&r, 200);
	/* 73..199 is inside the window (200 - 73 = 127), 72 is not */
	CHECK_EQ(wire_replay_check(&r, 72), WIRE_EREPLAY);
	for (i = 0; i < 127; i++)
		order[i] = 73 + (uint32_t)i;
	for (i = 126; i > 0; i--) {
		int j = (int)(rnd() % (uint64_t)(i + 1));
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < 127; i++) {
		CHECK_EQ(wire_replay_check(&r, order[i]), 0);
		wire_replay_accept(&r, order[i]);
		CHECK_EQ(wire_replay_check(&r, order[i]), WIRE_EREPLAY);
	}
	for (pn = 60; pn <= 200; pn++)
		CHECK_EQ(wire_replay_check(&r, pn), WIRE_EREPLAY);
	CHECK_EQ(r.top, 200);
	CHECK_EQ(r.bits[0], ~0ull);
	CHECK_EQ(r.bits[1], ~0ull);
}

TEST(replay_jumps)
{
	struct wire_replay r;
	uint32_t pn;

	/* a jump of 64 keeps the old bits in the upper word */
	memset(&r, 0, sizeof r);
	for (pn = 1; pn <= 5; pn++)
		wire_replay_accept(&r, pn);
	wire_replay_accept(&r, 69);
	for (pn = 1; pn <= 5; pn++)
		CHECK_EQ(wire_replay_check(&r, pn), WIRE_EREPLAY);
	for (pn = 6; pn < 69; pn++)
		CHECK_EQ(wire_replay_check(&r, pn), 0);

	/* a jump of 127: pn 5 is the window's oldest, 4 just left it */
	memset(&r, 0, sizeof r);
	for (pn = 1; pn <= 5; pn++)
		wire_replay_accept(&r, pn);
	wire_replay_accept(&r, 132);
	CHECK_EQ(wire_replay_check(&r, 5), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 4), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 6), 0);
	CHECK_EQ(wire_replay_check(&r, 131), 0);

	/* a jump of 128 or more clears: the skipped pns are new */
	memset(&r, 0, sizeof r);
	wire_replay_accept(&r, 10);
	wire_replay_accept(&r, 138);
	CHECK_EQ(r.bits[0], 1);
	CHECK_EQ(r.bits[1], 0);
	CHECK_EQ(wire_replay_check(&r, 10), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 11), 0);
	wire_replay_accept(&r, 3000000000u);
	CHECK_EQ(r.bits[0], 1);
	CHECK_EQ(r.bits[1], 0);
	CHECK_EQ(wire_replay_check(&r, 138), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 3000000000u - 127), 0);

	/* pn does not wrap: after 0xffffffff nothing is new any more */
	memset(&r, 0, sizeof r);
	wire_replay_accept(&r, 0xfffffff0u);
	wire_replay_accept(&r, 0xffffffffu);
	CHECK_EQ(wire_replay_check(&r, 0xffffffffu), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 0xfffffff0u), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 0xfffffffeu), 0);
	CHECK_EQ(wire_replay_check(&r, 0xffffff80u), 0);
	CHECK_EQ(wire_replay_check(&r, 0xffffff7fu), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 1), WIRE_EREPLAY);
	CHECK_EQ(wire_replay_check(&r, 0), WIRE_EREPLAY);
}

/* Against a naive model: the accepted pns still inside the window. */
TEST(replay_model)
{
	struct wire_replay r;
	uint32_t seen[256], top = 0;
	int nseen = 0, i, k;

	memset(&r, 0, sizeof r);
	for (i = 0; i < 200000; i++) {
		uint64_t x = rnd();
		uint32_t pn;
		int want, got, dup_ = 0;

		switch (x & 7) {
		case 0: pn = top + 1 + (uint32_t)((x >> 8) % 300); break;
		case 1: pn = (uint32_t)(x >> 16); break;
		case 2: pn = 0; break;
		default: pn = top - (uint32_t)((x >> 8) % 140); break;
		}
		for (k = 0; k < nseen; k++)
			if (seen[k] == pn)
				dup_ = 1;
		if (pn == 0 || dup_ || (pn <= top && top - pn >= 128))
			want = WIRE_EREPLAY;
		else
			want = 0;
		got = wire_replay_check(&r, pn);
		CHECK_EQ(got, want);
		if (got != 0)
			continue;
		wire_replay_accept(&r, pn);
		if (pn > top)
			top = pn;
		seen[nseen++] = pn;
		/* drop what fell out of the window */
		for (k = 0; k < nseen;) {
			if (top - seen[k] >= 128)
				seen[k] = seen[--nseen];
			else
				k++;
		}
		REQUIRE(nseen <= 128);
		CHECK_EQ(r.top, top);
	}
}

/* ---- cookie ------------------------------------------------------------- */

TEST(cookie)
{
	uint8_t secret[WIRE_SECRET], pub[WIRE_PUB], addr[18], buf[64];
	uint8_t m0[WIRE_MAC], m[WIRE_MAC], ref[WIRE_MAC];
	int i, bit;

	fill(secret, sizeof secret, 5);
	fill(pub, sizeof pub, 6);
	fill(addr, sizeof addr, 7);
	wire_cookie(m0, secret, addr, sizeof addr, 1234, pub);
	wire_cookie(m, secret, addr, sizeof addr, 1234, pub);
	CHECK_MEM(m, m0, WIRE_MAC);
	CHECK(wire_mac_equal(m, m0));

	/* the same as one keyed BLAKE2b-128 over addr | stamp | pub */
	memcpy(buf, addr, sizeof addr);
	wire_put32(buf + sizeof addr, 1234);
	memcpy(buf + sizeof addr + 4, pub, WIRE_PUB);
	crypto_generichash(ref, WIRE_MAC, buf, sizeof addr + 4 + WIRE_PUB,
	                   secret, WIRE_SECRET);
	CHECK_MEM(m0, ref, WIRE_MAC);

	addr[3] ^= 1;
	wire_cookie(m, secret, addr, sizeof addr, 1234, pub);
	CHECK(!wire_mac_equal(m, m0));
	addr[3] ^= 1;
	wire_cookie(m, secret, addr, sizeof addr - 1, 1234, pub);
	CHECK(!wire_mac_equal(m, m0));
	wire_cookie(m, secret, addr, sizeof addr, 1235, pub);
	CHECK(!wire_mac_equal(m, m0));
	pub[31] ^= 0x80;
	wire_cookie(m, secret, addr, sizeof addr, 1234, pub);
	CHECK(!wire_mac_equal(m, m0));
	pub[31] ^= 0x80;
	secret[0] ^= 1;
	wire_cookie(m, secret, addr, sizeof addr, 1234, pub);
	CHECK(!wire_mac_equal(m, m0));
	secret[0] ^= 1;
	wire_cookie(m, secret, NULL, 0, 1234, pub);
	CHECK(!wire_mac_equal(m, m0));

	for (i = 0; i < WIRE_MAC; i++)
	for (bit = 0; bit < 8; bit++) {
		memcpy(m, m0, WIRE_MAC);
		m[i] ^= (uint8_t)(1u << bit);
		CHECK(!wire_mac_equal(m, m0));
	}
}

/* ---- handshake packets -------------------------------------------------- */

TEST(hello_roundtrip)
{
	static const uint16_t lens[] = { 0, 1, 100, WIRE_HELLO_MAX };
	uint8_t hello[WIRE_HELLO_MAX], pkt[1024];
	struct wire_hello h, d, sentinel;
	size_t li, len;
	int ti;

	fill(hello, sizeof hello, 11);
	memset(&sentinel, 0xa5, sizeof sentinel);
	for (ti = 0; ti < 2; ti++)
	for (li = 0; li < sizeof lens / sizeof lens[0]; li++) {
		uint8_t type = ti ? WIRE_INIT : WIRE_HELLO;
		size_t fixed = ti ? WIRE_INIT_SIZE : WIRE_HELLO_SIZE;
		size_t n = fixed + lens[li];
		uint8_t *b;

		memset(&h, 0, sizeof h);
		h.type = type;
		fill(h.pub, WIRE_PUB, 12);
		h.stamp = ti ? 0xa1b2c3d4u : 0;
		if (ti)
			fill(h.mac, WIRE_MAC, 13);
		h.hello = hello;
		h.hello_len = lens[li];
		CHECK_EQ(wire_hello_encode(pkt, n - 1, &h), WIRE_ESPACE);
		REQUIRE_EQ(wire_hello_encode(pkt, n, &h), (int)n);
		CHECK_EQ(pkt[0], type);
		CHECK_EQ(pkt[1], WIRE_V1); /* version 0: ours */

		b = dup(pkt, n);
		REQUIRE_EQ(wire_hello_decode(b, n, &d), 0);
		CHECK_EQ(d.type, type);
		CHECK_EQ(d.version, WIRE_V1);
		CHECK_MEM(d.pub, h.pub, WIRE_PUB);
		CHECK_EQ(d.stamp, h.stamp);
		CHECK_MEM(d.mac, h.mac, WIRE_MAC);
		CHECK_EQ(d.hello_len, lens[li]);
		CHECK(d.hello == b + fixed);
		CHECK_MEM(d.hello, hello, lens[li]);
		free(b);

		/* every truncation, then one byte too many */
		for (len = 0; len < n; len++) {
			b = dup(pkt, len);
			d = sentinel;
			CHECK_EQ(wire_hello_decode(b, len, &d), WIRE_ETRUNC);
			CHECK_MEM(&d, &sentinel, sizeof d);
			free(b);
		}
		pkt[n] = 0;
		b = dup(pkt, n + 1);
		d = sentinel;
		CHECK_EQ(wire_hello_decode(b, n + 1, &d), WIRE_EINVAL);
		CHECK_MEM(&d, &sentinel, sizeof d);
		free(b);

		/* another version: type, version and pub are still read */
		pkt[1] = WIRE_V2 + 1;
		b = dup(pkt, n);
		d = sentinel;
		CHECK_EQ(wire_hello_decode(b, n, &d), WIRE_EVERSION);
		CHECK_EQ(d.type, type);
		CHECK_EQ(d.version, WIRE_V2 + 1);
		CHECK_MEM(d.pub, h.pub, WIRE_PUB);
		CHECK_EQ(d.hello_len, 0);
		CHECK_EQ(d.stamp, 0);
		d = sentinel;
		CHECK_EQ(wire_hello_decode(b, 2 + WIRE_PUB - 1, &d), WIRE_ETRUNC);
		CHECK_MEM(&d, &sentinel, sizeof d);
		free(b);
		pkt[1] = WIRE_V1;

		/* a declared length above the maximum, bytes present or not */
		wire_put16(pkt + fixed - 2, WIRE_HELLO_MAX + 1);
		b = dup(pkt, fixed + WIRE_HELLO_MAX + 1);
		CHECK_EQ(wire_hello_decode(b, fixed + WIRE_HELLO_MAX + 1, &d),
		         WIRE_EINVAL);
		free(b);
		wire_put16(pkt + fixed - 2, 0xffff);
		CHECK_EQ(wire_hello_decode(pkt, n, &d), WIRE_EINVAL);
	}

	/* encode refuses */
	memset(&h, 0, sizeof h);
	h.type = WIRE_HELLO;
	h.hello = hello;
	h.hello_len = WIRE_HELLO_MAX + 1;
	CHECK_EQ(wire_hello_encode(pkt, sizeof pkt, &h), WIRE_EINVAL);
	h.hello_len = 3;
	h.hello = NULL;
	CHECK_EQ(wire_hello_encode(pkt, sizeof pkt, &h), WIRE_EINVAL);
	h.hello_len = 0;
	h.type = WIRE_CHALLENGE;
	CHECK_EQ(wire_hello_encode(pkt, sizeof pkt, &h), WIRE_EINVAL);
	/* an explicit version is written as given */
	h.type = WIRE_HELLO;
	h.version = 9;
	REQUIRE_EQ(wire_hello_encode(pkt, sizeof pkt, &h), WIRE_HELLO_SIZE);
	CHECK_EQ(pkt[1], 9);
	CHECK_EQ(wire_hello_decode(pkt, WIRE_HELLO_SIZE, &d), WIRE_EVERSION);
	/* hello bytes overlapping the output */
	memcpy(pkt + 5, "abcdefgh", 8);
	h.version = 0;
	h.hello = pkt + 5;
	h.hello_len = 8;
	REQUIRE_EQ(wire_hello_encode(pkt, sizeof pkt, &h), WIRE_HELLO_SIZE + 8);
	CHECK_MEM(pkt + WIRE_HELLO_SIZE, "abcdefgh", 8);

	/* other types */
	pkt[0] = WIRE_CHALLENGE;
	CHECK_EQ(wire_hello_decode(pkt, WIRE_HELLO_SIZE + 8, &d), WIRE_ETYPE);
	pkt[0] = WIRE_KCP;
	CHECK_EQ(wire_hello_decode(pkt, WIRE_HELLO_SIZE + 8, &d), WIRE_ETYPE);
	CHECK_EQ(wire_hello_decode(pkt, 0, &d), WIRE_ETRUNC);
}

TEST(challenge_roundtrip)
{
	uint8_t mac[WIRE_MAC], got[WIRE_MAC], pkt[64], *b;
	uint32_t stamp = 0x5a5a5a5a;
	size_t len;

	fill(mac, sizeof mac, 21);
	CHECK_EQ(wire_challenge_encode(pkt, WIRE_CHALLENGE_SIZE - 1, 7, mac),
	         WIRE_ESPACE);
	REQUIRE_EQ(wire_challenge_encode(pkt, sizeof pkt, 0x01020304, mac),
	           WIRE_CHALLENGE_SIZE);
	CHECK_EQ(WIRE_CHALLENGE_SIZE, 22);
	CHECK(WIRE_CHALLENGE_SIZE < WIRE_HELLO_SIZE); /* no amplification */
	b = dup(pkt, WIRE_CHALLENGE_SIZE);
	REQUIRE_EQ(wire_challenge_decode(b, WIRE_CHALLENGE_SIZE, &stamp, got), 0);
	CHECK_EQ(stamp, 0x01020304);
	CHECK_MEM(got, mac, WIRE_MAC);
	free(b);
	for (len = 0; len < WIRE_CHALLENGE_SIZE; len++) {
		b = dup(pkt, len);
		stamp = 99;
		CHECK_EQ(wire_challenge_decode(b, len, &stamp, got), WIRE_ETRUNC);
		CHECK_EQ(stamp, 99);
		free(b);
	}
	b = dup(pkt, WIRE_CHALLENGE_SIZE + 1);
	CHECK_EQ(wire_challenge_decode(b, WIRE_CHALLENGE_SIZE + 1, &stamp, got),
	         WIRE_EINVAL);
	free(b);
	pkt[1] = 0;
	CHECK_EQ(wire_challenge_decode(pkt, WIRE_CHALLENGE_SIZE, &stamp, got),
	         WIRE_EVERSION);
	pkt[1] = WIRE_V1;
	pkt[0] = WIRE_HELLO;
	CHECK_EQ(wire_challenge_decode(pkt, WIRE_CHALLENGE_SIZE, &stamp, got),
	         WIRE_ETYPE);
	CHECK_EQ(stamp, 99);
}

TEST(welcome_roundtrip)
{
	struct peers p;
	struct wire_welcome w, d, sentinel;
	uint8_t pkt[128], cp[128], *b;
	size_t len, i;
	int bit;

	REQUIRE(peers_seeded(&p));
	memset(&w, 0, sizeof w);
	w.sid = 0xcafebabe;
	memcpy(w.pub, p.spub, WIRE_PUB);
	w.server_time_us = 0x0123456789abcdefull;
	w.heartbeat_ms = 1000;
	w.timeout_ms = 10000;
	w.mtu = 1200;
	w.flags = WIRE_F_ENCRYPT;
	w.resume_grace_ms = 0x01020304;
	w.fec_data = 16;
	w.fec_parity = 4;
	memset(&sentinel, 0xa5, sizeof sentinel);

	CHECK_EQ(WIRE_WELCOME_SIZE, 98);
	CHECK_EQ(wire_welcome_encode(pkt, WIRE_WELCOME_SIZE - 1, &w, p.s.tx),
	         WIRE_ESPACE);
	REQUIRE_EQ(wire_welcome_encode(pkt, sizeof pkt, &w, p.s.tx),
	           WIRE_WELCOME_SIZE);
	memcpy(cp, pkt, WIRE_WELCOME_SIZE);
	b = dup(pkt, WIRE_WELCOME_SIZE);
	d = sentinel;
	REQUIRE_EQ(wire_welcome_peek(b, WIRE_WELCOME_SIZE, &d), 0);
	CHECK_EQ(d.sid, w.sid);
	CHECK_MEM(d.pub, p.spub, WIRE_PUB);
	CHECK_EQ(d.mtu, sentinel.mtu); /* peek reads only sid and pub */
	memset(&d, 0, sizeof d);
	REQUIRE_EQ(wire_welcome_open(b, WIRE_WELCOME_SIZE, &d, p.c.rx), 0);
	CHECK_MEM(&d, &w, sizeof d);
	CHECK_MEM(b, cp, WIRE_WELCOME_SIZE); /* const: never decrypted in place */
	/* the params travel encrypted */
	CHECK(wire_get64(b + 37) != w.server_time_us);
	free(b);

	d = sentinel;
	CHECK_EQ(wire_welcome_open(pkt, WIRE_WELCOME_SIZE, &d, p.c.tx),
	         WIRE_EAUTH);
	CHECK_EQ(wire_welcome_open(pkt, WIRE_WELCOME_SIZE, &d, p.s.rx),
	         WIRE_EAUTH);
	CHECK_MEM(&d, &sentinel, sizeof d);

	for (i = 0; i < WIRE_WELCOME_SIZE; i++)
	for (bit = 0; bit < 8; bit++) {
		b = dup(cp, WIRE_WELCOME_SIZE);
		b[i] ^= (uint8_t)(1u << bit);
		d = sentinel;
		if (i == 0) {
			CHECK_EQ(wire_welcome_peek(b, WIRE_WELCOME_SIZE, &d),
			         WIRE_ETYPE);
			CHECK_EQ(wire_welcome_open(b, WIRE_WELCOME_SIZE, &d,
			         p.c.rx), WIRE_ETYPE);
		} else {
			CHECK_EQ(wire_welcome_open(b, WIRE_WELCOME_SIZE, &d,
			         p.c.rx), WIRE_EAUTH);
			CHECK_MEM(&d, &sentinel, sizeof d);
			CHECK_EQ(wire_welcome_peek(b, WIRE_WELCOME_SIZE, &d), 0);
		}
		free(b);
	}
	for (len = 0; len < WIRE_WELCOME_SIZE; len++) {
		b = dup(cp, len);
		d = sentinel;
		CHECK_EQ(wire_welcome_peek(b, len, &d), WIRE_ETRUNC);
		CHECK_EQ(wire_welcome_open(b, len, &d, p.c.rx), WIRE_ETRUNC);
		CHECK_MEM(&d, &sentinel, sizeof d);
		free(b);
	}
	b = dup(cp, WIRE_WELCOME_SIZE + 1);
	CHECK_EQ(wire_welcome_peek(b, WIRE_WELCOME_SIZE + 1, &d), WIRE_EINVAL);
	CHECK_EQ(wire_welcome_open(b, WIRE_WELCOME_SIZE + 1, &d, p.c.rx),
	         WIRE_EINVAL);
	free(b);
}

TEST(refuse_roundtrip)
{
	static const uint8_t lens[] = { 0, 4, 255 };
	char reason[255];
	uint8_t pkt[512], *b;
	struct wire_refuse r, d, sentinel;
	size_t li, len;

	fill((uint8_t *)reason, sizeof reason, 31);
	memset(&sentinel, 0xa5, sizeof sentinel);
	for (li = 0; li < sizeof lens / sizeof lens[0]; li++) {
		size_t n = WIRE_REFUSE_SIZE + lens[li];
		memset(&r, 0, sizeof r);
		fill(r.echo, sizeof r.echo, 32);
		r.code = 0xbeef;
		r.reason = reason;
		r.reason_len = lens[li];
		CHECK_EQ(wire_refuse_encode(pkt, n - 1, &r), WIRE_ESPACE);
		REQUIRE_EQ(wire_refuse_encode(pkt, sizeof pkt, &r), (int)n);
		b = dup(pkt, n);
		d = sentinel;
		REQUIRE_EQ(wire_refuse_decode(b, n, &d), 0);
		CHECK_MEM(d.echo, r.echo, sizeof r.echo);
		CHECK_EQ(d.code, 0xbeef);
		CHECK_EQ(d.reason_len, lens[li]);
		CHECK(d.reason == (const char *)b + WIRE_REFUSE_SIZE);
		CHECK_MEM(d.reason, reason, lens[li]);
		free(b);
		for (len = 0; len < n; len++) {
			b = dup(pkt, len);
			d = sentinel;
			CHECK_EQ(wire_refuse_decode(b, len, &d), WIRE_ETRUNC);
			CHECK_MEM(&d, &sentinel, sizeof d);
			free(b);
		}
		pkt[n] = 'x';
		b = dup(pkt, n + 1);
		CHECK_EQ(wire_refuse_decode(b, n + 1, &d), WIRE_EINVAL);
		free(b);
	}
	pkt[1] = WIRE_V2 + 1;
	CHECK_EQ(wire_refuse_decode(pkt, WIRE_REFUSE_SIZE + 255, &d),
	         WIRE_EVERSION);
	pkt[1] = WIRE_V1;
	pkt[0] = WIRE_WELCOME;
	CHECK_EQ(wire_refuse_decode(pkt, WIRE_REFUSE_SIZE + 255, &d),
	         WIRE_ETYPE);
	r.reason = NULL;
	r.reason_len = 1;
	CHECK_EQ(wire_refuse_encode(pkt, sizeof pkt, &r), WIRE_EINVAL);
}

/* HELLO -> CHALLENGE -> INIT -> WELCOME, then packets both ways. */
TEST(handshake_flow)
{
	static const uint8_t addr[7] = { 2, 0x30, 0x39, 192, 0, 2, 1 };
	uint8_t cpub[WIRE_PUB], csec[WIRE_SEC], spub[WIRE_PUB], ssec[WIRE_SEC];
	uint8_t secret[WIRE_SECRET], mac[WIRE_MAC], mac2[WIRE_MAC];
	uint8_t pkt[1024], *body;
	struct wire_hello h, sh;
	struct wire_welcome w, cw;
	struct wire_keys ck, sk;
	struct wire_replay rr;
	struct wire_hdr hd;
	uint32_t stamp;
	int n, i;

	randombytes_buf(secret, sizeof secret);
	wire_keypair(cpub, csec);

	memset(&h, 0, sizeof h);
	h.type = WIRE_HELLO;
	memcpy(h.pub, cpub, WIRE_PUB);
	h.hello = (const uint8_t *)"token";
	h.hello_len = 5;
	n = wire_hello_encode(pkt, sizeof pkt, &h);
	REQUIRE_EQ(wire_hello_decode(pkt, (size_t)n, &sh), 0);

	wire_cookie(mac, secret, addr, sizeof addr, 77, sh.pub);
	n = wire_challenge_encode(pkt, sizeof pkt, 77, mac);
	REQUIRE_EQ(wire_challenge_decode(pkt, (size_t)n, &stamp, mac2), 0);

	h.type = WIRE_INIT;
	h.stamp = stamp;
	memcpy(h.mac, mac2, WIRE_MAC);
	n = wire_hello_encode(pkt, sizeof pkt, &h);
	REQUIRE_EQ(wire_hello_decode(pkt, (size_t)n, &sh), 0);
	REQUIRE_EQ(sh.type, WIRE_INIT);
	wire_cookie(mac, secret, addr, sizeof addr, sh.stamp, sh.pub);
	REQUIRE(wire_mac_equal(mac, sh.mac));
	CHECK_MEM(sh.hello, "token", 5);

	wire_keypair(spub, ssec);
	REQUIRE_EQ(wire_server_keys(&sk, spub, ssec, sh.pub), 0);
	memset(&w, 0, sizeof w);
	w.sid = 42;
	memcpy(w.pub, spub, WIRE_PUB);
	w.mtu = 1200;
	n = wire_welcome_encode(pkt, sizeof pkt, &w, sk.tx);
	REQUIRE_EQ(wire_welcome_peek(pkt, (size_t)n, &cw), 0);
	REQUIRE_EQ(wire_client_keys(&ck, cpub, csec, cw.pub), 0);
	REQUIRE_EQ(wire_welcome_open(pkt, (size_t)n, &cw, ck.rx), 0);
	CHECK_EQ(cw.sid, 42);
	CHECK_EQ(cw.mtu, 1200);

	memset(&rr, 0, sizeof rr);
	for (i = 1; i <= 300; i++) {
		uint8_t msg[32];
		int enc = i & 1;
		fill(msg, sizeof msg, (uint8_t)i);
		n = wire_seal(pkt, sizeof pkt, WIRE_KCP, cw.sid, (uint32_t)i,
		              msg, sizeof msg, i % 3 ? ck.tx : sk.tx, enc);
		REQUIRE(n > 0);
		REQUIRE_EQ(wire_peek(pkt, (size_t)n, &hd), 0);
		if (i % 3) {
			CHECK_EQ(wire_replay_check(&rr, hd.pn), 0);
			REQUIRE_EQ(wire_open(pkt, (size_t)n, sk.rx, enc, &hd,
			           &body), (int)sizeof msg);
			wire_replay_accept(&rr, hd.pn);
		} else {
			REQUIRE_EQ(wire_open(pkt, (size_t)n, ck.rx, enc, &hd,
			           &body), (int)sizeof msg);
		}
		CHECK_MEM(body, msg, sizeof msg);
	}
}

TEST(strerror_names)
{
	int e, f;
	for (e = 0; e >= WIRE_ECRYPTO; e--) {
		const char *s = wire_strerror(e);
		REQUIRE(s && *s);
		CHECK(strcmp(s, wire_strerror(-99)) != 0);
		for (f = 0; f > e; f--)
			CHECK(strcmp(s, wire_strerror(f)) != 0);
	}
	CHECK(wire_strerror(1) != NULL);
	CHECK(wire_strerror(WIRE_ECRYPTO - 1) != NULL);
}

/* Random bytes into every decoder: only documented results. */
TEST(decoders_random)
{
	uint8_t key[WIRE_KEY] = { 7 };
	int i;

	for (i = 0; i < 50000; i++) {
		static const uint8_t types[] = { 0, 1, 2, 3, 4, 5, 0x10, 0x15,
		                                 0x16, 0xff };
		size_t len = (size_t)(rnd() % 120), k;
		uint8_t *b, stamp_mac[WIRE_MAC];
		struct wire_hello h;
		struct wire_welcome w;
		struct wire_refuse rf;
		struct wire_hdr hd;
		uint32_t stamp;
		int r;

		b = malloc(len ? len : 1);
		REQUIRE(b);
		for (k = 0; k < len; k++)
			b[k] = (uint8_t)rnd();
		if (len > 0)
			b[0] = types[rnd() % sizeof types];
		if (len > 1 && rnd() % 2)
			b[1] = WIRE_V1;
		r = wire_peek(b, len, &hd);
		CHECK(r == 0 || r == WIRE_ETRUNC || r == WIRE_ETYPE);
		r = wire_open(b, len, key, (int)(i & 1), &hd, NULL);
		CHECK(r == WIRE_ETRUNC || r == WIRE_ETYPE || r == WIRE_EAUTH);
		r = wire_hello_decode(b, len, &h);
		CHECK(r == 0 || r == WIRE_ETRUNC || r == WIRE_ETYPE ||
		      r == WIRE_EVERSION || r == WIRE_EINVAL);
		r = wire_challenge_decode(b, len, &stamp, stamp_mac);
		CHECK(r == 0 || r == WIRE_ETRUNC || r == WIRE_ETYPE ||
		      r == WIRE_EVERSION || r == WIRE_EINVAL);
		r = wire_welcome_peek(b, len, &w);
		CHECK(r == 0 || r == WIRE_ETRUNC || r == WIRE_ETYPE ||
		      r == WIRE_EINVAL);
		r = wire_welcome_open(b, len, &w, key);
		CHECK(r == WIRE_EAUTH || r == WIRE_ETRUNC || r == WIRE_ETYPE ||
		      r == WIRE_EINVAL);
		r = wire_refuse_decode(b, len, &rf);
		CHECK(r == 0 || r == WIRE_ETRUNC || r == WIRE_ETYPE ||
		      r == WIRE_EVERSION || r == WIRE_EINVAL);
		free(b);
	}
}

/* ---- known-answer vectors (docs/PROTOCOL.md) ---------------------------- */

/* The KCP PUSH of "hello" from docs/PROTOCOL.md (conv 0x01020304). */
static const uint8_t kcp_push[29] = {
	0x04, 0x03, 0x02, 0x01, 0x51, 0x00, 0x80, 0x00, 0xe8, 0x03, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
	0x68, 0x65, 0x6c, 0x6c, 0x6f,
};

#define VSID 0x01020304u

/* handshake v2 vectors (docs/PROTOCOL.md) */
#define V2_S \
	"f6 29 77 59 d6 b5 a4 f8 ba 8b 83 b4 b4 97 06 27 " \
	"45 35 65 8e a9 93 6b 64 72 0c 4d 79 e1 22 9b 1e"
#define V2_ES \
	"e5 5a d0 25 2c 1c ab 45 52 8d db 8e 74 66 d0 dc " \
	"70 35 55 72 9b 84 44 da 71 78 32 33 af c6 db 74"
#define V2_HKEY \
	"25 a2 60 c7 7e dd fe af 20 9e d2 b9 98 d0 3b df " \
	"ba 88 e3 2b 8c db 0c 75 5a 53 74 91 5e c3 44 7a"
#define V2_HELLO \
	"01 02 ab 2f ca 32 89 83 22 c2 08 fb 2d ab 50 48 " \
	"bd 43 c3 55 c6 43 0f 58 88 97 cb 57 49 61 cf a9 " \
	"80 6f 01 08 00 3c 27 56 d3 69 59 cd 2f 42 c8 0d " \
	"71 a2 aa 17 f3 03 7f 64 6e 89 3a 34 96"
/* the same HELLO with a worker hint, slot 1: caps 0x05 */
#define V2_HELLO_HINT \
	"01 02 ab 2f ca 32 89 83 22 c2 08 fb 2d ab 50 48 " \
	"bd 43 c3 55 c6 43 0f 58 88 97 cb 57 49 61 cf a9 " \
	"80 6f 05 08 00 3c 27 56 d3 69 59 cd 2f f3 12 d5 " \
	"0d b9 1a f6 7f 8f 3c 6d f8 87 25 16 ba"
#define V2_INIT \
	"03 02 ab 2f ca 32 89 83 22 c2 08 fb 2d ab 50 48 " \
	"bd 43 c3 55 c6 43 0f 58 88 97 cb 57 49 61 cf a9 " \
	"80 6f 01 40 e2 01 00 e3 d5 b9 e7 fd 9a 13 4c 86 " \
	"3b 6d 3f b9 01 83 57 08 00 3c 27 56 d3 69 59 cd " \
	"2f 42 c8 0d 71 a2 aa 17 f3 03 7f 64 6e 89 3a 34 " \
	"96"
#define V2_STX \
	"4d 69 44 5e 51 20 00 58 30 ee ad 03 b2 34 83 2f " \
	"6a 81 24 e5 cb 1e 9d 5c 31 16 cc bb f3 47 8b bf"
#define V2_CTX \
	"78 2c a9 31 54 09 92 9d 82 14 57 88 dd 35 82 54 " \
	"4d 2b 09 aa f4 86 70 33 e6 41 ab 55 19 f8 bf dd"
#define V2_WELCOME \
	"04 04 03 02 01 fc 3b 33 93 67 a5 22 5d 53 a9 2d " \
	"38 03 23 af d0 35 d7 81 7b 6d 1b e4 7d 94 6f 6b " \
	"09 a9 cb dc 06 03 42 86 5b 14 d7 21 6b 64 6f 43 " \
	"b1 14 cc 6e 5c 34 77 b4 87 6b 0f 0a 07 b7 c0 1e " \
	"25 08 13 a7 57 d5 36 3c 02 88 ac 7f 32 9e 81 bf " \
	"61 e5 4d 06 e4 08 eb d2 01 51 9c 11 47 f7 97 19 " \
	"32 1e"
#define V2_RESET \
	"06 04 03 02 01 1c a1 b5 39 07 21 00 c4 2e ec 05 " \
	"f6 c9 46 ab 80"
#define V2_KCP \
	"10 04 03 02 01 01 00 00 00 d1 e3 a8 30 2c f2 7c " \
	"b2 9f 0d 71 3a 2b d9 22 04 2e 3e 68 dd bf 3d 24 " \
	"0c de bc 40 36 9d e0 c5 68 f6 aa e2 f2 04 67 d7 " \
	"d9 1e 40 4f 71 ed"

#define V2_KCP_AES \
	"10 04 03 02 01 01 00 00 00 49 68 53 e8 60 ad 7f " \
	"21 2a 0c 0f 60 ea aa d5 29 73 af 7d cf 23 c9 56 " \
	"45 be b2 74 43 83 62 5c 87 2c af 79 c7 b2 59 c3 " \
	"fb d1 70 69 d6 d3"

static void
vector_session(const char *name, uint8_t type, uint32_t pn,
               const uint8_t *body, size_t blen, const uint8_t *tx,
               const uint8_t *rx, int enc, const char *hex)
{
	uint8_t pkt[256], *ob = NULL;
	struct wire_hdr h;
	int n = wire_seal(pkt, sizeof pkt, type, VSID, pn, body, blen, tx, enc);

	if (n != (int)(blen + WIRE_OVERHEAD)) {
		TU_FAIL("%s: seal gave %d", name, n);
		return;
	}
	check_hex(name, pkt, (size_t)n, hex);
	CHECK_EQ(wire_open(pkt, (size_t)n, rx, enc, &h, &ob), (int)blen);
	CHECK(blen == 0 || memcmp(ob, body, blen) == 0);
	CHECK_EQ(h.type, type);
	CHECK_EQ(h.pn, pn);
}

TEST(wire_vectors)
{
	static const uint8_t addr[7] = { 0x02, 0x30, 0x39, 0xc0, 0x00, 0x02, 0x01 };
	uint8_t secret[WIRE_SECRET], mac[WIRE_MAC], pkt[256], body[64];
	struct wire_hello h;
	struct wire_welcome w;
	struct wire_refuse rf;
	struct peers p;
	int n;

	REQUIRE(peers_seeded(&p));
	check_hex("client public key", p.cpub, WIRE_PUB,
	          "ab 2f ca 32 89 83 22 c2 08 fb 2d ab 50 48 bd 43 "
	          "c3 55 c6 43 0f 58 88 97 cb 57 49 61 cf a9 80 6f");
	check_hex("server public key", p.spub, WIRE_PUB,
	          "fc 3b 33 93 67 a5 22 5d 53 a9 2d 38 03 23 af d0 "
	          "35 d7 81 7b 6d 1b e4 7d 94 6f 6b 09 a9 cb dc 06");
	check_hex("client tx = server rx", p.c.tx, WIRE_KEY,
	          "43 eb 74 c8 47 20 9a 3a f5 13 e0 fc 82 4b 79 18 "
	          "65 66 5d cc 72 7f c3 32 f4 dd fc 61 4e 0a b7 9a");
	check_hex("server tx = client rx", p.s.tx, WIRE_KEY,
	          "e0 f4 80 d4 2c d0 d8 a9 59 93 dd 50 97 6f b2 4e "
	          "f8 1a 67 88 b7 b5 bc 72 2f c2 58 41 0a c7 23 ed");

	/* HELLO, version 1, hello "moongate" */
	memset(&h, 0, sizeof h);
	h.type = WIRE_HELLO;
	memcpy(h.pub, p.cpub, WIRE_PUB);
	h.hello = (const uint8_t *)"moongate";
	h.hello_len = 8;
	n = wire_hello_encode(pkt, sizeof pkt, &h);
	REQUIRE_EQ(n, WIRE_HELLO_SIZE + 8);
	check_hex("HELLO", pkt, (size_t)n,
	          "01 01 ab 2f ca 32 89 83 22 c2 08 fb 2d ab 50 48 "
	          "bd 43 c3 55 c6 43 0f 58 88 97 cb 57 49 61 cf a9 "
	          "80 6f 08 00 6d 6f 6f 6e 67 61 74 65");

	/* cookie: secret 32 x 0x03, addr 02 3039 c0000201, stamp 123456 */
	memset(secret, 0x03, sizeof secret);
	wire_cookie(mac, secret, addr, sizeof addr, 123456, p.cpub);
	check_hex("cookie", mac, WIRE_MAC,
	          "e3 d5 b9 e7 fd 9a 13 4c 86 3b 6d 3f b9 01 83 57");
	n = wire_challenge_encode(pkt, sizeof pkt, 123456, mac);
	REQUIRE_EQ(n, WIRE_CHALLENGE_SIZE);
	check_hex("CHALLENGE", pkt, (size_t)n,
	          "02 01 40 e2 01 00 e3 d5 b9 e7 fd 9a 13 4c 86 3b "
	          "6d 3f b9 01 83 57");

	h.type = WIRE_INIT;
	h.stamp = 123456;
	memcpy(h.mac, mac, WIRE_MAC);
	n = wire_hello_encode(pkt, sizeof pkt, &h);
	REQUIRE_EQ(n, WIRE_INIT_SIZE + 8);
	check_hex("INIT", pkt, (size_t)n,
	          "03 01 ab 2f ca 32 89 83 22 c2 08 fb 2d ab 50 48 "
	          "bd 43 c3 55 c6 43 0f 58 88 97 cb 57 49 61 cf a9 "
	          "80 6f 40 e2 01 00 e3 d5 b9 e7 fd 9a 13 4c 86 3b "
	          "6d 3f b9 01 83 57 08 00 6d 6f 6f 6e 67 61 74 65");

	memset(&w, 0, sizeof w);
	w.sid = VSID;
	memcpy(w.pub, p.spub, WIRE_PUB);
	w.server_time_us = 1000000000;
	w.heartbeat_ms = 1000;
	w.timeout_ms = 10000;
	w.mtu = 1200;
	w.flags = WIRE_F_ENCRYPT;
	w.resume_grace_ms = 30000;
	w.fec_data = 8;
	w.fec_parity = 2;
	wire_reset_token(w.reset_token, secret, VSID);
	w.msg_max = 65536;
	n = wire_welcome_encode(pkt, sizeof pkt, &w, p.s.tx);
	REQUIRE_EQ(n, WIRE_WELCOME_SIZE);
	check_hex("WELCOME", pkt, (size_t)n,
	          "04 04 03 02 01 fc 3b 33 93 67 a5 22 5d 53 a9 2d "
	          "38 03 23 af d0 35 d7 81 7b 6d 1b e4 7d 94 6f 6b "
	          "09 a9 cb dc 06 0e bd 9c 81 5f 22 59 c2 4d c8 55 "
	          "c6 ec 8c 25 2b 72 6d 34 04 ec f7 8d 65 06 91 1b "
	          "c1 af 9a cb a9 56 ff b7 fb 7e b1 d2 a0 eb 39 d6 "
	          "54 5a 94 ca 0c 58 06 27 2d b7 4b d4 06 51 65 35 "
	          "5b 1d");
	{
		struct wire_welcome d;
		memset(&d, 0, sizeof d);
		CHECK_EQ(wire_welcome_open(pkt, (size_t)n, &d, p.c.rx), 0);
		CHECK_MEM(&d, &w, sizeof d);
	}

	memset(&rf, 0, sizeof rf);
	memcpy(rf.echo, p.cpub, sizeof rf.echo);
	rf.code = 4; /* SESSION_CLOSE_REFUSED */
	rf.reason = "full";
	rf.reason_len = 4;
	n = wire_refuse_encode(pkt, sizeof pkt, &rf);
	REQUIRE_EQ(n, WIRE_REFUSE_SIZE + 4);
	check_hex("REFUSE", pkt, (size_t)n,
	          "05 01 ab 2f ca 32 89 83 22 c2 08 fb 2d ab 50 48 "
	          "bd 43 04 00 04 66 75 6c 6c");

	/* client -> server, client tx key */
	vector_session("KCP (encrypted), pn 1", WIRE_KCP, 1, kcp_push,
	               sizeof kcp_push, p.c.tx, p.s.rx, 1,
	               "10 04 03 02 01 01 00 00 00 8b d7 48 fd f9 23 ae "
	               "55 76 43 5d b6 19 17 e9 8a c4 69 01 e9 40 a3 1c "
	               "0e c8 12 04 77 48 c2 d7 93 08 1c 80 26 b7 07 4c "
	               "8b a4 50 b7 32 e7");
	vector_session("KCP (authenticated only), pn 2", WIRE_KCP, 2, kcp_push,
	               sizeof kcp_push, p.c.tx, p.s.rx, 0,
	               "10 04 03 02 01 02 00 00 00 04 03 02 01 51 00 80 "
	               "00 e8 03 00 00 00 00 00 00 00 00 00 00 05 00 00 "
	               "00 68 65 6c 6c 6f 0f 23 05 bb 5c c8 1c 50 1d 01 "
	               "7b 7e 82 e3 34 a8");
	wire_put32(body, 1);
	memcpy(body + 4, "pos", 3);
	vector_session("DGRAM seq 1 \"pos\", pn 3", WIRE_DGRAM, 3, body, 7,
	               p.c.tx, p.s.rx, 1,
	               "11 04 03 02 01 03 00 00 00 38 ee ff e6 5a fd 93 "
	               "58 60 20 65 04 36 20 7e 47 6e 07 23 78 85 2f 97");
	wire_put32(body, 1);
	wire_put64(body + 4, 1000000);
	vector_session("PING id 1 time 1000000, pn 4", WIRE_PING, 4, body, 12,
	               p.c.tx, p.s.rx, 1,
	               "12 04 03 02 01 04 00 00 00 4d 41 e6 ef e8 03 21 "
	               "98 f5 0d 3a 6d f7 e5 11 3f e2 69 48 54 af 71 2f "
	               "4e 48 fb f8 6e");
	wire_put16(body, 0);
	body[2] = 3;
	memcpy(body + 3, "bye", 3);
	vector_session("CLOSE code 0 \"bye\", pn 5", WIRE_CLOSE, 5, body, 6,
	               p.c.tx, p.s.rx, 1,
	               "14 04 03 02 01 05 00 00 00 e1 fd c2 b8 b1 8a aa "
	               "66 34 60 50 b6 7e dc ba 3d 25 7c 61 44 69 96");
	/* server -> client, server tx key */
	wire_put32(body, 1);
	wire_put64(body + 4, 1000000);
	wire_put64(body + 12, 1000020000);
	vector_session("PONG id 1 echo 1000000 time 1000020000, pn 1",
	               WIRE_PONG, 1, body, 20, p.s.tx, p.c.rx, 1,
	               "13 04 03 02 01 01 00 00 00 1e 63 05 45 98 39 55 "
	               "3e 94 69 eb 1a 53 7c 7c 70 e4 a6 7e 98 e2 ab 94 "
	               "4f 07 37 11 66 12 4c 58 93 14 62 ae ec");
	vector_session("CLOSE_ACK, pn 2", WIRE_CLOSE_ACK, 2, NULL, 0, p.s.tx,
	               p.c.rx, 1,
	               "15 04 03 02 01 02 00 00 00 b6 b6 16 b1 d6 dc b7 "
	               "89 b0 e2 46 45 41 e3 5d 38");
	/* path validation, token 01..08 */
	for (int i = 0; i < WIRE_TOKEN; i++)
		body[i] = (uint8_t)(i + 1);
	vector_session("PATH_CHALLENGE token 0102030405060708, pn 6",
	               WIRE_PATH_CHALLENGE, 6, body, WIRE_TOKEN, p.c.tx, p.s.rx, 1,
	               "16 04 03 02 01 06 00 00 00 70 ce 1b 33 6f 6e 77 "
	               "93 3b 9b 3d 58 68 d3 da 39 ed c4 23 c4 dd 1b 6e "
	               "da");
	vector_session("PATH_RESPONSE token 0102030405060708, pn 3",
	               WIRE_PATH_RESPONSE, 3, body, WIRE_TOKEN, p.s.tx, p.c.rx, 1,
	               "17 04 03 02 01 03 00 00 00 13 4a ef ea 6d 66 de "
	               "33 a0 9c 4b 9b f7 5f 79 cf bb 05 b8 44 31 d4 fd "
	               "22");
}


/* ---- handshake v2 -------------------------------------------------------- */

/* Both sides of a v2 handshake agree; a client pinned to another key
 * seals a hello the server cannot open, and a WELCOME made without the
 * static secret does not open at the client. */
TEST(nk_handshake)
{
	uint8_t secret[WIRE_SECRET], spub[WIRE_PUB], ssec[WIRE_SEC];
	uint8_t epub[WIRE_PUB], esec[WIRE_SEC], fpub[WIRE_PUB], fsec[WIRE_SEC];
	uint8_t xpub[WIRE_PUB], xsec[WIRE_SEC];
	uint8_t sealed[8 + WIRE_TAG], back[8];
	struct wire_nk c, s, x;
	struct wire_keys kc, ks, kx;

	memset(secret, 0x42, sizeof secret);
	wire_static_keypair(spub, ssec, secret);
	{	/* deterministic: the same secret, the same key */
		uint8_t p2[WIRE_PUB], s2[WIRE_SEC];
		wire_static_keypair(p2, s2, secret);
		CHECK_MEM(p2, spub, WIRE_PUB);
	}
	wire_keypair(epub, esec);
	wire_keypair(fpub, fsec);
	REQUIRE_EQ(wire_nk_client(&c, spub, epub, esec), 0);
	REQUIRE_EQ(wire_nk_server(&s, spub, ssec, epub), 0);
	CHECK_MEM(c.es, s.es, WIRE_KEY);
	CHECK_MEM(c.hkey, s.hkey, WIRE_KEY);
	REQUIRE_EQ(wire_hello_seal(sealed, (const uint8_t *)"login:42", 8, &c),
	           8 + WIRE_TAG);
	CHECK(memcmp(sealed, "login:42", 8) != 0);
	REQUIRE_EQ(wire_hello_open(back, sealed, 8, &s), 0);
	CHECK(memcmp(back, "login:42", 8) == 0);
	REQUIRE_EQ(wire_nk_client_keys(&kc, &c, esec, fpub, sealed, sizeof sealed), 0);
	REQUIRE_EQ(wire_nk_server_keys(&ks, &s, fsec, fpub, sealed, sizeof sealed), 0);
	CHECK_MEM(kc.tx, ks.rx, WIRE_KEY);
	CHECK_MEM(kc.rx, ks.tx, WIRE_KEY);
	CHECK(memcmp(kc.tx, kc.rx, WIRE_KEY) != 0);
	/* every bit of the sealed hello matters */
	for (size_t i = 0; i < sizeof sealed; i++) {
		sealed[i] ^= 0x10;
		CHECK_EQ(wire_hello_open(back, sealed, 8, &s), WIRE_EAUTH);
		sealed[i] ^= 0x10;
	}
	/* another static key (a man in the middle with its own pair) */
	wire_keypair(xpub, xsec);
	REQUIRE_EQ(wire_nk_server(&x, xpub, xsec, epub), 0);
	CHECK_EQ(wire_hello_open(back, sealed, 8, &x), WIRE_EAUTH);
	/* its WELCOME keys differ from the pinned client's */
	REQUIRE_EQ(wire_nk_server_keys(&kx, &x, fsec, fpub, sealed, sizeof sealed), 0);
	CHECK(memcmp(kx.tx, kc.rx, WIRE_KEY) != 0);
	/* a low-order server key is refused */
	static const uint8_t zero[WIRE_PUB];
	CHECK_EQ(wire_nk_client(&x, zero, epub, esec), WIRE_ECRYPTO);
	/* v2 layout: the sealed hello and its tag after hello_len */
	{
		struct wire_hello h, d;
		uint8_t pkt[128];
		memset(&h, 0, sizeof h);
		h.type = WIRE_INIT;
		h.version = WIRE_V2;
		memcpy(h.pub, epub, WIRE_PUB);
		h.hello = sealed;
		h.hello_len = 8;
		h.caps = 0x81;
		REQUIRE_EQ(wire_hello_encode(pkt, sizeof pkt, &h),
		           WIRE_INIT_V2_SIZE + 8 + WIRE_TAG);
		REQUIRE_EQ(wire_hello_decode(pkt, WIRE_INIT_V2_SIZE + 8 + WIRE_TAG, &d), 0);
		CHECK_EQ(d.version, WIRE_V2);
		CHECK_EQ(d.caps, 0x81); /* unknown bits travel; a server ignores them */
		CHECK_EQ(d.hello_len, 8);
		CHECK(d.hello == pkt + WIRE_INIT_V2_SIZE);
		CHECK_EQ(wire_hello_decode(pkt, WIRE_INIT_V2_SIZE + 8, &d), WIRE_ETRUNC);
		CHECK_EQ(wire_hello_decode(pkt, WIRE_INIT_V2_SIZE + 8 + WIRE_TAG - 1, &d),
		         WIRE_ETRUNC);
		/* the smallest v2 packets still outweigh any reply before the
		 * address is proven (no amplification) */
		CHECK(WIRE_HELLO_V2_SIZE + WIRE_TAG >= WIRE_CHALLENGE_SIZE);
		CHECK(WIRE_HELLO_V2_SIZE + WIRE_TAG >= WIRE_REFUSE_SIZE);
	}
}

/* RESET: the token is the secret's and the sid's alone (a restarted
 * process computes the same), differs for another sid or secret; the
 * decoder takes exactly WIRE_RESET_SIZE bytes of type 0x06. */
TEST(wire_reset)
{
	uint8_t secret[WIRE_SECRET], t1[WIRE_RESET_TOKEN], t2[WIRE_RESET_TOKEN];
	uint8_t pkt[64];
	const uint8_t *tok = NULL;
	uint32_t sid = 0;
	size_t len;

	memset(secret, 0x03, sizeof secret);
	wire_reset_token(t1, secret, VSID);
	wire_reset_token(t2, secret, VSID);
	CHECK(wire_reset_equal(t1, t2));
	wire_reset_token(t2, secret, VSID + 1);
	CHECK(!wire_reset_equal(t1, t2));
	secret[31] ^= 1;
	wire_reset_token(t2, secret, VSID);
	CHECK(!wire_reset_equal(t1, t2));

	CHECK_EQ(wire_reset_encode(pkt, WIRE_RESET_SIZE - 1, VSID, t1), WIRE_ESPACE);
	REQUIRE_EQ(wire_reset_encode(pkt, sizeof pkt, VSID, t1), WIRE_RESET_SIZE);
	REQUIRE_EQ(wire_reset_decode(pkt, WIRE_RESET_SIZE, &sid, &tok), 0);
	CHECK_EQ(sid, VSID);
	CHECK(tok == pkt + 5 && wire_reset_equal(tok, t1));
	for (len = 0; len < WIRE_RESET_SIZE; len++)
		CHECK_EQ(wire_reset_decode(pkt, len, &sid, &tok), WIRE_ETRUNC);
	CHECK_EQ(wire_reset_decode(pkt, WIRE_RESET_SIZE + 1, &sid, &tok), WIRE_EINVAL);
	pkt[0] = WIRE_REFUSE;
	CHECK_EQ(wire_reset_decode(pkt, WIRE_RESET_SIZE, &sid, &tok), WIRE_ETYPE);
	/* a RESET is no session packet: the session decoders refuse it */
	pkt[0] = WIRE_RESET;
	struct wire_hdr h;
	CHECK(wire_peek(pkt, WIRE_RESET_SIZE, &h) < 0);
}

/* The v2 vectors of docs/PROTOCOL.md ("Handshake v2: test vectors"),
 * recomputed independently by tools/vectors/handshake_v2.py (ctest
 * vectors_v2). Server secret 32 x 0x03; client ephemeral seed 32 x 0x01,
 * server ephemeral seed 32 x 0x02 (crypto_kx_seed_keypair); hello
 * "moongate"; stamp 123456 at 192.0.2.1:12345. */
TEST(wire_vectors_v2)
{
	static const uint8_t addr[7] = { 0x02, 0x30, 0x39, 0xc0, 0x00, 0x02, 0x01 };
	uint8_t secret[WIRE_SECRET], spub[WIRE_PUB], ssec[WIRE_SEC];
	uint8_t mac[WIRE_MAC], pkt[256], sealed[8 + WIRE_TAG], back[8];
	struct wire_nk c, s;
	struct wire_keys kc, ks;
	struct wire_hello h;
	struct wire_welcome w;
	struct peers p;
	int n;

	REQUIRE(peers_seeded(&p));
	memset(secret, 0x03, sizeof secret);
	wire_static_keypair(spub, ssec, secret);
	check_hex("v2 server static key S", spub, WIRE_PUB, V2_S);
	REQUIRE_EQ(wire_nk_client(&c, spub, p.cpub, p.csec), 0);
	REQUIRE_EQ(wire_nk_server(&s, spub, ssec, p.cpub), 0);
	check_hex("v2 es", c.es, WIRE_KEY, V2_ES);
	check_hex("v2 hello key", c.hkey, WIRE_KEY, V2_HKEY);
	c.caps = s.caps = WIRE_CAP_AESGCM; /* offered, in the associated data */
	REQUIRE_EQ(wire_hello_seal(sealed, (const uint8_t *)"moongate", 8, &c),
	           (int)sizeof sealed);

	memset(&h, 0, sizeof h);
	h.type = WIRE_HELLO;
	h.version = WIRE_V2;
	h.caps = WIRE_CAP_AESGCM;
	memcpy(h.pub, p.cpub, WIRE_PUB);
	h.hello = sealed;
	h.hello_len = 8;
	n = wire_hello_encode(pkt, sizeof pkt, &h);
	REQUIRE_EQ(n, WIRE_HELLO_V2_SIZE + 8 + WIRE_TAG);
	check_hex("v2 HELLO", pkt, (size_t)n, V2_HELLO);

	wire_cookie(mac, secret, addr, sizeof addr, 123456, p.cpub);
	h.type = WIRE_INIT;
	h.stamp = 123456;
	memcpy(h.mac, mac, WIRE_MAC);
	n = wire_hello_encode(pkt, sizeof pkt, &h);
	REQUIRE_EQ(n, WIRE_INIT_V2_SIZE + 8 + WIRE_TAG);
	check_hex("v2 INIT", pkt, (size_t)n, V2_INIT);
	{ /* a worker hint: slot 1 beside AES-256-GCM, sealed under those caps */
		struct wire_nk ch = c, sh = s;
		uint8_t sealed_h[8 + WIRE_TAG], back_h[8];
		ch.caps = sh.caps = WIRE_CAP_AESGCM | WIRE_CAPS_WORKER(1);
		CHECK_EQ(ch.caps, 0x05);
		CHECK_EQ(WIRE_CAPS_HINT(ch.caps), 1);
		CHECK_EQ(WIRE_CAPS_HINT(WIRE_CAP_AESGCM), -1);
		REQUIRE_EQ(wire_hello_seal(sealed_h, (const uint8_t *)"moongate", 8, &ch),
		           (int)sizeof sealed_h);
		struct wire_hello hh = h;
		hh.type = WIRE_HELLO;
		hh.caps = ch.caps;
		hh.hello = sealed_h;
		n = wire_hello_encode(pkt, sizeof pkt, &hh);
		check_hex("v2 HELLO, worker hint 1", pkt, (size_t)n, V2_HELLO_HINT);
		REQUIRE_EQ(wire_hello_open(back_h, sealed_h, 8, &sh), 0);
		sh.caps = WIRE_CAP_AESGCM; /* the hint taken off on the way */
		CHECK_EQ(wire_hello_open(back_h, sealed_h, 8, &sh), WIRE_EAUTH);
	}
	REQUIRE_EQ(wire_hello_open(back, sealed, 8, &s), 0);
	CHECK(memcmp(back, "moongate", 8) == 0);
	/* the caps are bound to the hello: changed on the way, it does not open */
	s.caps = 0;
	CHECK_EQ(wire_hello_open(back, sealed, 8, &s), WIRE_EAUTH);
	s.caps = WIRE_CAP_AESGCM;

	REQUIRE_EQ(wire_nk_server_keys(&ks, &s, p.ssec, p.spub, sealed,
	                               sizeof sealed), 0);
	REQUIRE_EQ(wire_nk_client_keys(&kc, &c, p.csec, p.spub, sealed,
	                               sizeof sealed), 0);
	check_hex("v2 server tx = client rx", ks.tx, WIRE_KEY, V2_STX);
	check_hex("v2 client tx = server rx", kc.tx, WIRE_KEY, V2_CTX);
	CHECK_MEM(kc.rx, ks.tx, WIRE_KEY);

	memset(&w, 0, sizeof w);
	w.sid = VSID;
	memcpy(w.pub, p.spub, WIRE_PUB);
	w.server_time_us = 1000000000;
	w.heartbeat_ms = 1000;
	w.timeout_ms = 10000;
	w.mtu = 1200;
	w.flags = WIRE_F_ENCRYPT | WIRE_F_AESGCM; /* the server took the offer */
	w.resume_grace_ms = 30000;
	w.fec_data = 8;
	w.fec_parity = 2;
	wire_reset_token(w.reset_token, secret, VSID);
	w.msg_max = 65536;
	n = wire_welcome_encode(pkt, sizeof pkt, &w, ks.tx);
	REQUIRE_EQ(n, WIRE_WELCOME_SIZE);
	check_hex("v2 WELCOME", pkt, (size_t)n, V2_WELCOME);
	{
		struct wire_welcome d;
		memset(&d, 0, sizeof d);
		CHECK_EQ(wire_welcome_open(pkt, (size_t)n, &d, kc.rx), 0);
		CHECK_MEM(&d, &w, sizeof d);
	}
	{
		uint8_t r[WIRE_RESET_SIZE];
		REQUIRE_EQ(wire_reset_encode(r, sizeof r, VSID, w.reset_token),
		           WIRE_RESET_SIZE);
		check_hex("v2 RESET", r, sizeof r, V2_RESET);
	}
	vector_session("v2 KCP (encrypted), pn 1", WIRE_KCP, 1, kcp_push,
	               sizeof kcp_push, kc.tx, ks.rx, WIRE_SUITE_ENCRYPT, V2_KCP);
	if (wire_aesgcm_available())
		vector_session("v2 KCP (AES-256-GCM), pn 1", WIRE_KCP, 1, kcp_push,
		               sizeof kcp_push, kc.tx, ks.rx,
		               WIRE_SUITE_ENCRYPT | WIRE_SUITE_AESGCM, V2_KCP_AES);
	else
		printf("    (no AES-NI here: the AES-256-GCM vector is not checked)\n");
}

static const struct tu_test tests[] = {
	TU(rfc8439_aead),
	TU(keys_agree),
	TU(seal_open_roundtrip),
	TU(seal_layout),
	TU(seal_errors),
	TU(open_bit_flips),
	TU(open_wrong_key_or_mode),
	TU(open_truncated),
	TU(peek_types),
	TU(replay_basics),
	TU(replay_reorder),
	TU(replay_jumps),
	TU(replay_model),
	TU(cookie),
	TU(hello_roundtrip),
	TU(challenge_roundtrip),
	TU(welcome_roundtrip),
	TU(refuse_roundtrip),
	TU(handshake_flow),
	TU(strerror_names),
	TU(decoders_random),
	TU(nk_handshake),
	TU(wire_vectors), /* last: with -v its vectors end the output */
	TU(wire_vectors_v2),
	TU(wire_reset),
};

int
main(int argc, char **argv)
{
	if (wire_init() != 0) {
		fprintf(stderr, "test_wire: wire_init failed\n");
		return 1;
	}
	return tu_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
