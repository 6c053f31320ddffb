/*
 * fuzz_memo.h - X25519 remembered for the fuzz targets that make keys
 * (fuzz_gate, fuzz_session). Include it once in the target.
 *
 * An input makes several key pairs and key exchanges (the gate's static
 * key, the client's and the server's ephemeral keys, crypto_kx, Noise
 * NK): each is an X25519 scalar multiplication, which was about half the
 * time of an input. With fuzz_rand.h the same input always draws the same
 * secret keys (the seed depends on the input's size only), so the same
 * multiplications come again and again: this file defines
 * crypto_scalarmult and crypto_scalarmult_base in the target, which the
 * linker takes instead of libsodium's for the calls of core/ and of
 * libsodium itself (crypto_kx_keypair and crypto_kx_*_session_keys call
 * them through the PLT), and answers from a table when the same scalar
 * (and point) came before. The results are libsodium's own
 * (crypto_scalarmult_curve25519*, computed on a miss), bit for bit, with
 * the same return code: nothing the target checks or reaches changes,
 * only the time. Never for anything but a fuzz target.
 */
#ifndef MOONGATE_FUZZ_MEMO_H
#define MOONGATE_FUZZ_MEMO_H

#include <stdint.h>
#include <string.h>

#include <sodium.h>

/* the table's own branches are no coverage of the code under test */
#if defined(__clang__)
#define FUZZ_MEMO_NOCOV __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_MEMO_NOCOV
#endif

#define FUZZ_MEMO_SLOTS (1u << 15)

struct fuzz_memo {
	uint8_t n[32], p[32];   /* scalar, point (zero for _base) */
	uint8_t q[32];          /* the result */
	int rc;
	int used;
};

static struct fuzz_memo fuzz_memo_base[FUZZ_MEMO_SLOTS];
static struct fuzz_memo fuzz_memo_mult[FUZZ_MEMO_SLOTS];
static unsigned long fuzz_memo_hits, fuzz_memo_misses;

FUZZ_MEMO_NOCOV static uint32_t
fuzz_memo_slot(const uint8_t *n, const uint8_t *p)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (int i = 0; i < 32; i++)
		h = (h ^ n[i]) * 0x100000001b3ull;
	if (p)
		for (int i = 0; i < 32; i++)
			h = (h ^ p[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ h >> 32) & (FUZZ_MEMO_SLOTS - 1);
}

FUZZ_MEMO_NOCOV int
crypto_scalarmult_base(unsigned char *q, const unsigned char *n)
{
	struct fuzz_memo *m = &fuzz_memo_base[fuzz_memo_slot(n, NULL)];
	if (m->used && !memcmp(m->n, n, 32)) {
		fuzz_memo_hits++;
		memcpy(q, m->q, 32);
		return m->rc;
	}
	fuzz_memo_misses++;
	uint8_t nn[32];
	memcpy(nn, n, 32); /* q and n may be the same buffer */
	int rc = crypto_scalarmult_curve25519_base(q, nn);
	memcpy(m->n, nn, 32);
	memcpy(m->q, q, 32);
	m->rc = rc;
	m->used = 1;
	return rc;
}

FUZZ_MEMO_NOCOV int
crypto_scalarmult(unsigned char *q, const unsigned char *n,
                  const unsigned char *p)
{
	struct fuzz_memo *m = &fuzz_memo_mult[fuzz_memo_slot(n, p)];
	if (m->used && !memcmp(m->n, n, 32) && !memcmp(m->p, p, 32)) {
		fuzz_memo_hits++;
		memcpy(q, m->q, 32);
		return m->rc;
	}
	fuzz_memo_misses++;
	uint8_t nn[32], pp[32];
	memcpy(nn, n, 32);
	memcpy(pp, p, 32);
	int rc = crypto_scalarmult_curve25519(q, nn, pp);
	memcpy(m->n, nn, 32);
	memcpy(m->p, pp, 32);
	memcpy(m->q, q, 32);
	m->rc = rc;
	m->used = 1;
	return rc;
}

#endif
