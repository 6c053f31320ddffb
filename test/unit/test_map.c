/*
 * test_map.c - core/proto/map.c against a plain array model: puts,
 * replaces, deletes (tombstones) and gets over many keys, growth, and
 * keys that collide in their slot.
 */
#include <stdint.h>
#include <stdlib.h>

#include "map.h"
#include "testutil.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define N 2000

/* 200,000 random operations on keys from a pool of N (small keys too,
 * which the multiplicative spread maps close together); after each, the
 * map answers as the model does, and its count is the model's. */
TEST(matches_a_model)
{
	static uint64_t keys[N];
	static int model[N]; /* 0: absent, else the value's tag */
	static int vals[N + 1];
	struct map m;
	map_init(&m);
	for (int i = 0; i < N; i++)
		keys[i] = i < N / 2 ? (uint64_t)i + 1 : next() | 1;
	for (int i = 0; i <= N; i++)
		vals[i] = i;
	uint32_t count = 0;
	for (int op = 0; op < 200000; op++) {
		int k = (int)(next() % N);
		switch (next() % 4) {
		case 0:
		case 1:
			REQUIRE_EQ(map_put(&m, keys[k], &vals[k + 1]), 0);
			count += model[k] == 0;
			model[k] = k + 1;
			break;
		case 2:
			CHECK(map_del(&m, keys[k]) == (model[k] ? &vals[model[k]] : NULL));
			count -= model[k] != 0;
			model[k] = 0;
			break;
		case 3:
			CHECK_EQ(map_replace(&m, keys[k], &vals[0]) == 0, model[k] != 0);
			if (model[k]) /* back to its own value */
				CHECK_EQ(map_replace(&m, keys[k], &vals[model[k]]), 0);
			break;
		}
		int probe = (int)(next() % N);
		CHECK(map_get(&m, keys[probe]) == (model[probe] ? &vals[model[probe]] : NULL));
		CHECK_EQ(m.count, count);
	}
	for (int i = 0; i < N; i++)
		CHECK(map_get(&m, keys[i]) == (model[i] ? &vals[model[i]] : NULL));
	CHECK(map_get(&m, 0) == NULL);
	CHECK_EQ(map_put(&m, 0, &vals[1]), -1);
	CHECK_EQ(map_put(&m, 5, NULL), -1);
	CHECK(map_memsize(&m) >= (size_t)m.cap * 16);
	map_clear(&m);
	CHECK(map_get(&m, keys[0]) == NULL);
	CHECK_EQ(m.count, 0);
}

static const struct tu_test tests[] = {
	TU(matches_a_model),
};

int
main(int argc, char **argv)
{
	return tu_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
