/*
 * fuzz_rand.h - deterministic randomness for the fuzz targets that make
 * keys (fuzz_session, fuzz_gate): libsodium's randombytes replaced by a
 * seeded generator, reset at the start of every input, so that one input
 * always takes the same path (a crash replays; libFuzzer's coverage is
 * stable). Call fuzz_rand_install() before wire_init() (sodium_init).
 * Never for anything but a fuzz target: these keys are predictable.
 */
#ifndef MOONGATE_FUZZ_RAND_H
#define MOONGATE_FUZZ_RAND_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

static uint64_t fuzz_rand_state = 0x2545f4914f6cdd1dull;

static void
fuzz_rand_reset(uint64_t seed)
{
	fuzz_rand_state = seed ? seed : 0x2545f4914f6cdd1dull;
}

static uint32_t
fuzz_rand_u32(void)
{
	uint64_t x = fuzz_rand_state; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	fuzz_rand_state = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1dull) >> 32);
}

static const char *
fuzz_rand_name(void)
{
	return "fuzz";
}

static void
fuzz_rand_stir(void)
{
}

static uint32_t
fuzz_rand_uniform(const uint32_t upper)
{
	return upper < 2 ? 0 : fuzz_rand_u32() % upper;
}

static void
fuzz_rand_buf(void *const buf, const size_t size)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < size; i += 4) {
		uint32_t r = fuzz_rand_u32();
		memcpy(p + i, &r, size - i < 4 ? size - i : 4);
	}
}

static int
fuzz_rand_close(void)
{
	return 0;
}

static void
fuzz_rand_install(void)
{
	static struct randombytes_implementation impl = {
		fuzz_rand_name, fuzz_rand_u32, fuzz_rand_stir,
		fuzz_rand_uniform, fuzz_rand_buf, fuzz_rand_close,
	};
	randombytes_set_implementation(&impl);
}

#endif
