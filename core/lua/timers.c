/*
 * timers.c - the timer set of timers.h: a heap (core/proto/heap.h) of
 * timers keyed by (due, arm order).
 */
#include "timers.h"

#include <stdlib.h>

#include "heap.h"

struct timer {
	struct heap_node hn;    /* key: due (us); tie: arm order, so equal
	                           dues fire FIFO */
	uint64_t period;        /* microseconds; 0: once */
	void *data;
};

struct timers {
	struct heap heap;
	uint32_t max;           /* pending timers allowed */
	uint64_t seq;           /* next arm order */
	timers_fire_fn *fire;
	void *user;
};

timers_t *
timers_create(uint32_t max, timers_fire_fn *fire, void *user)
{
	timers_t *ts = calloc(1, sizeof *ts);
	if (!ts)
		return NULL;
	heap_init(&ts->heap);
	ts->max = max ? max : 1;
	ts->fire = fire;
	ts->user = user;
	return ts;
}

void
timers_release(timers_t *ts)
{
	if (!ts)
		return;
	for (uint32_t i = 0; i < ts->heap.n; i++)
		free(container_of(ts->heap.a[i], struct timer, hn));
	heap_free(&ts->heap);
	free(ts);
}

int
timers_add(timers_t *ts, uint64_t due, uint64_t period, void *data,
           struct timer **out)
{
	if (ts->heap.n >= ts->max)
		return TIMERS_EFULL;
	struct timer *t = calloc(1, sizeof *t);
	if (!t)
		return TIMERS_ENOMEM;
	t->hn.key = due;
	t->hn.tie = ts->seq++;
	t->period = period;
	t->data = data;
	if (heap_push(&ts->heap, &t->hn)) {
		free(t);
		return TIMERS_ENOMEM;
	}
	*out = t;
	return 0;
}

void
timers_cancel(timers_t *ts, struct timer *t)
{
	heap_remove(&ts->heap, &t->hn);
	free(t);
}

uint64_t
timers_check(const timers_t *ts, uint64_t now)
{
	const struct heap_node *n = ts ? heap_top(&ts->heap) : NULL;
	if (!n)
		return now + 3600ull * 1000000;
	return n->key > now ? n->key : now;
}

void
timers_update(timers_t *ts, uint64_t now)
{
	if (!ts)
		return;
	uint64_t last = ts->seq; /* timers armed by these callbacks wait a turn */
	struct heap_node *n;
	while ((n = heap_top(&ts->heap)) && n->key <= now && n->tie < last) {
		struct timer *t = container_of(n, struct timer, hn);
		void *data = t->data;
		int once = t->period == 0;
		if (once) {
			heap_remove(&ts->heap, n);
			free(t);
		} else {
			n->key += t->period;
			if (n->key <= now) /* fell behind: skip, do not burst */
				n->key = now + t->period;
			n->tie = ts->seq++;
			heap_fix(&ts->heap, n);
		}
		/* after the set is consistent: the callback may add and cancel */
		ts->fire(ts->user, data, once, now);
	}
}

uint32_t
timers_count(const timers_t *ts)
{
	return ts ? ts->heap.n : 0;
}
