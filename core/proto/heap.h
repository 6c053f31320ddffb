/*
 * heap.h - a binary min-heap of intrusive nodes, ordered by (key, tie):
 * the one heap of moongate (the gate's session deadlines, the Lua
 * timers, the emulator's delayed datagrams).
 *
 * A node lives inside the element it orders (container_of gets the
 * element back) and knows its index, so an element can be removed or
 * re-keyed in O(log n) without a search. tie breaks equal keys (a
 * sequence number makes equal deadlines fire in FIFO order; 0 when order
 * among equals does not matter).
 *
 *   struct timer { struct heap_node hn; ... };
 *   t->hn.key = due; t->hn.tie = seq++;
 *   if (heap_push(&h, &t->hn) < 0) ...out of memory...
 *   while ((n = heap_top(&h)) && n->key <= now) {
 *       struct timer *t = container_of(n, struct timer, hn);
 *       heap_remove(&h, n); ...
 *   }
 */
#ifndef MOONGATE_HEAP_H
#define MOONGATE_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_NONE UINT32_MAX /* index of a node that is in no heap */

#ifndef container_of
#define container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))
#endif

struct heap_node {
	uint64_t key;   /* smallest first */
	uint64_t tie;   /* then smallest tie */
	uint32_t index; /* place in the heap; HEAP_NONE when not in one */
};

struct heap {
	struct heap_node **a;
	uint32_t n, cap;
};

/* An empty heap (all zero works too); heap_free releases the array only,
 * never the elements. */
void heap_init(struct heap *h);
void heap_free(struct heap *h);

/* Add a node (its key and tie set). 0, or -1 when out of memory (the
 * node stays out: index HEAP_NONE). */
int heap_push(struct heap *h, struct heap_node *x);
/* Take a node out; a node in no heap is left alone. */
void heap_remove(struct heap *h, struct heap_node *x);
/* The node's key (or tie) changed: move it to its place. */
void heap_fix(struct heap *h, struct heap_node *x);
/* Remove and return the smallest node; NULL when empty. */
struct heap_node *heap_pop(struct heap *h);

static inline struct heap_node *
heap_top(const struct heap *h)
{
	return h->n ? h->a[0] : NULL;
}

static inline int
heap_contains(const struct heap_node *x)
{
	return x->index != HEAP_NONE;
}

#endif
