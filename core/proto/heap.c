/*
 * heap.c - the binary min-heap of heap.h.
 */
#include "heap.h"

#include <stdlib.h>

static inline int
less(const struct heap_node *a, const struct heap_node *b)
{
	return a->key < b->key || (a->key == b->key && a->tie < b->tie);
}

/* Move x up from slot i until its parent is not larger; x is written once
 * at its final place. */
static void
sift_up(struct heap *h, uint32_t i, struct heap_node *x)
{
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!less(x, h->a[p]))
			break;
		h->a[i] = h->a[p];
		h->a[i]->index = i;
		i = p;
	}
	h->a[i] = x;
	x->index = i;
}

static void
sift_down(struct heap *h, uint32_t i, struct heap_node *x)
{
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && less(h->a[c + 1], h->a[c]))
			c++;
		if (!less(h->a[c], x))
			break;
		h->a[i] = h->a[c];
		h->a[i]->index = i;
		i = c;
	}
	h->a[i] = x;
	x->index = i;
}

void
heap_init(struct heap *h)
{
	h->a = NULL;
	h->n = h->cap = 0;
}

void
heap_free(struct heap *h)
{
	free(h->a);
	heap_init(h);
}

int
heap_push(struct heap *h, struct heap_node *x)
{
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct heap_node **a;
		if (cap < h->cap || !(a = realloc(h->a, (size_t)cap * sizeof *a))) {
			x->index = HEAP_NONE;
			return -1;
		}
		h->a = a;
		h->cap = cap;
	}
	sift_up(h, h->n++, x);
	return 0;
}

void
heap_remove(struct heap *h, struct heap_node *x)
{
	uint32_t i = x->index;
	if (i == HEAP_NONE || i >= h->n || h->a[i] != x)
		return;
	x->index = HEAP_NONE;
	struct heap_node *last = h->a[--h->n];
	if (i == h->n)
		return;
	/* the last node fills the hole, then goes whichever way it must */
	if (i > 0 && less(last, h->a[(i - 1) / 2]))
		sift_up(h, i, last);
	else
		sift_down(h, i, last);
}

void
heap_fix(struct heap *h, struct heap_node *x)
{
	uint32_t i = x->index;
	if (i == HEAP_NONE)
		return;
	if (i > 0 && less(x, h->a[(i - 1) / 2]))
		sift_up(h, i, x);
	else
		sift_down(h, i, x);
}

struct heap_node *
heap_pop(struct heap *h)
{
	struct heap_node *top = heap_top(h);
	if (top)
		heap_remove(h, top);
	return top;
}
