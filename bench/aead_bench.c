/*
 * aead_bench.c - the cost of sealing one session packet with each cipher
 * of docs/PROTOCOL.md ("Ciphers"): wire_seal with ChaCha20-Poly1305 and
 * with AES-256-GCM (when this CPU has it), bodies of 32 to 1200 bytes,
 * the same key, header and nonce sequence as a session's.
 *
 *   build/aead_bench [--quick]
 *
 * One line per size, then the summary:
 *   RESULT bench=aead size=64 chacha_ns=... aesgcm_ns=... ratio=...
 *   RESULT bench=aead sizes=32,64,128,512,1200 aes=1 ratio_small=...
 * ratio: AES-256-GCM's time over ChaCha20-Poly1305's (below 1: AES is
 * cheaper); ratio_small: the median of the ratios at 32..128 bytes, the
 * packets of a game. Medians of 5 rounds, interleaved.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "wire.h"

static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ns per wire_seal of blen bytes with suite, n packets */
static double
seal_ns(int suite, size_t blen, int n)
{
	static uint8_t pkt[2048], body[1400], key[WIRE_KEY];
	memset(key, 7, sizeof key);
	memset(body, 1, sizeof body);
	double t0 = now_s();
	for (int i = 1; i <= n; i++)
		if (wire_seal(pkt, sizeof pkt, WIRE_KCP, 0x01020304, (uint32_t)i, body,
		              blen, key, suite) < 0)
			abort();
	return (now_s() - t0) * 1e9 / n;
}

int
main(int argc, char **argv)
{
	int quick = argc > 1 && !strcmp(argv[1], "--quick");
	int n = quick ? 20000 : 400000, rounds = quick ? 1 : 5;
	static const size_t sizes[] = { 32, 64, 128, 512, 1200 };
	int aes = wire_aesgcm_available();
	double small[3];
	if (sodium_init() < 0)
		return 1;
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		double c[5], a[5];
		for (int r = 0; r < rounds; r++) {
			c[r] = seal_ns(WIRE_SUITE_ENCRYPT, sizes[k], n);
			a[r] = aes ? seal_ns(WIRE_SUITE_ENCRYPT | WIRE_SUITE_AESGCM,
			                     sizes[k], n) : 0;
		}
		qsort(c, (size_t)rounds, sizeof c[0], cmp);
		qsort(a, (size_t)rounds, sizeof a[0], cmp);
		double cm = c[rounds / 2], am = a[rounds / 2];
		if (k < 3)
			small[k] = aes ? am / cm : 0;
		if (aes)
			printf("RESULT bench=aead size=%zu chacha_ns=%.0f aesgcm_ns=%.0f "
			       "ratio=%.2f\n", sizes[k], cm, am, am / cm);
		else
			printf("RESULT bench=aead size=%zu chacha_ns=%.0f aesgcm_ns=n/a\n",
			       sizes[k], cm);
	}
	qsort(small, 3, sizeof small[0], cmp);
	printf("RESULT bench=aead sizes=32,64,128,512,1200 aes=%d ratio_small=", aes);
	if (aes)
		printf("%.2f\n", small[1]);
	else
		printf("n/a\n");
	return 0;
}
