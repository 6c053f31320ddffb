/*
 * test_heap.c - core/proto/heap.c against a plain array: push, pop,
 * remove from the middle, re-key, FIFO among equal keys by tie.
 */
#include <stdint.h>
#include <stdlib.h>

#include "heap.h"
#include "testutil.h"

struct item {
	struct heap_node hn;
	int id;
};

static uint64_t rng = 88172645463325252ull;
static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Every node's index is its place, and no child is smaller than its
 * parent. */
static int
valid(const struct heap *h)
{
	for (uint32_t i = 0; i < h->n; i++) {
		if (h->a[i]->index != i)
			return 0;
		if (i > 0) {
			const struct heap_node *p = h->a[(i - 1) / 2], *c = h->a[i];
			if (c->key < p->key || (c->key == p->key && c->tie < p->tie))
				return 0;
		}
	}
	return 1;
}

TEST(pops_in_order)
{
	enum { N = 5000 };
	static struct item it[N];
	struct heap h;
	heap_init(&h);
	for (int i = 0; i < N; i++) {
		it[i].id = i;
		it[i].hn.key = next() % 100;  /* many equal keys */
		it[i].hn.tie = (uint64_t)i;
		REQUIRE(heap_push(&h, &it[i].hn) == 0);
	}
	CHECK(valid(&h));
	uint64_t lk = 0, lt = 0;
	for (int i = 0; i < N; i++) {
		struct heap_node *n = heap_pop(&h);
		REQUIRE(n != NULL);
		CHECK(!heap_contains(n));
		CHECK(n->key > lk || (n->key == lk && (i == 0 || n->tie > lt)));
		lk = n->key;
		lt = n->tie;
	}
	CHECK(heap_pop(&h) == NULL);
	CHECK(heap_top(&h) == NULL);
	heap_free(&h);
}

TEST(remove_and_fix)
{
	enum { N = 2000, OPS = 20000 };
	static struct item it[N];
	struct heap h;
	heap_init(&h);
	for (int i = 0; i < N; i++) {
		it[i].id = i;
		it[i].hn.index = HEAP_NONE;
	}
	long in = 0;
	for (int op = 0; op < OPS; op++) {
		struct item *x = &it[next() % N];
		switch (next() % 3) {
		case 0:
			if (!heap_contains(&x->hn)) {
				x->hn.key = next() % 1000;
				REQUIRE(heap_push(&h, &x->hn) == 0);
				in++;
			}
			break;
		case 1:
			if (heap_contains(&x->hn))
				in--;
			heap_remove(&h, &x->hn); /* twice is harmless */
			heap_remove(&h, &x->hn);
			CHECK(!heap_contains(&x->hn));
			break;
		default:
			x->hn.key = next() % 1000;
			heap_fix(&h, &x->hn);     /* out of the heap: nothing */
			break;
		}
		if (op % 97 == 0)
			CHECK(valid(&h));
	}
	CHECK(valid(&h));
	CHECK_EQ(h.n, in);
	/* the smallest key comes out first, whatever came before */
	uint64_t min = UINT64_MAX;
	for (int i = 0; i < N; i++)
		if (heap_contains(&it[i].hn) && it[i].hn.key < min)
			min = it[i].hn.key;
	if (in)
		CHECK_EQ(heap_top(&h)->key, min);
	heap_free(&h);
}

static const struct tu_test tests[] = {
	TU(pops_in_order),
	TU(remove_and_fix),
};

int
main(int argc, char **argv)
{
	return tu_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
