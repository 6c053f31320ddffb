/*
 * simnet.c - simulated network in virtual time (see simnet.h).
 *
 * Each direction is a binary min-heap of queued packets ordered by due time
 * (wrap-safe) and then by insertion order, so packets due at the same ms
 * leave in the order they were sent. In in_order mode a packet's due time is
 * raised to that of the packet queued before it, which turns the heap into a
 * FIFO with head-of-line blocking, the classic KCP test's "DelayTunnel".
 */
#include "simnet.h"

#include <stdlib.h>
#include <string.h>

#define CAPACITY_DEFAULT 100000

struct ent {
	uint32_t due;
	uint32_t len;
	uint64_t seq;        /* insertion order, breaks ties on due */
	unsigned char *data; /* malloc'd copy; NULL when len == 0 */
};

struct dirq {
	struct ent *heap;
	uint32_t n, cap;
	uint32_t last_due;   /* due of the newest packet (in_order mode) */
	uint32_t link_last;  /* bandwidth: time backlog_us was last drained */
	uint64_t backlog_us; /* bandwidth: serialisation work not yet done */
	int link_used;       /* link_last is valid */
};

struct simnet {
	struct simnet_conf conf;
	uint64_t rng;
	uint64_t seq;
	struct dirq q[2];
	struct simnet_stats st;
};

uint64_t
simnet_rand(simnet_t *n)
{
	/* splitmix64 */
	uint64_t z = (n->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double
unif(simnet_t *n)
{
	return (double)(simnet_rand(n) >> 11) * (1.0 / 9007199254740992.0);
}

/* uniform in [lo, hi]; lo when hi <= lo */
static uint32_t
range(simnet_t *n, uint32_t lo, uint32_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + (uint32_t)(simnet_rand(n) % ((uint64_t)hi - lo + 1));
}

static int
chance(simnet_t *n, double p)
{
	if (p <= 0)
		return 0;
	if (p >= 1)
		return 1;
	return unif(n) < p;
}

static int
before(const struct ent *a, const struct ent *b)
{
	int32_t d = (int32_t)(a->due - b->due);
	if (d != 0)
		return d < 0;
	return a->seq < b->seq;
}

static int
heap_push(struct dirq *q, const struct ent *e)
{
	uint32_t i;
	if (q->n == q->cap) {
		uint32_t ncap = q->cap ? q->cap * 2 : 64;
		struct ent *h = realloc(q->heap, (size_t)ncap * sizeof(*h));
		if (h == NULL)
			return -1;
		q->heap = h;
		q->cap = ncap;
	}
	i = q->n++;
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!before(e, &q->heap[p]))
			break;
		q->heap[i] = q->heap[p];
		i = p;
	}
	q->heap[i] = *e;
	return 0;
}

static void
heap_pop(struct dirq *q, struct ent *out)
{
	struct ent last;
	uint32_t i = 0;
	*out = q->heap[0];
	last = q->heap[--q->n];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && before(&q->heap[c + 1], &q->heap[c]))
			c++;
		if (!before(&q->heap[c], &last))
			break;
		q->heap[i] = q->heap[c];
		i = c;
	}
	if (q->n > 0)
		q->heap[i] = last;
}

simnet_t *
simnet_create(const struct simnet_conf *conf, uint64_t seed)
{
	simnet_t *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	if (conf)
		n->conf = *conf;
	n->rng = seed;
	return n;
}

void
simnet_free(simnet_t *n)
{
	int d;
	uint32_t i;
	if (n == NULL)
		return;
	for (d = 0; d < 2; d++) {
		for (i = 0; i < n->q[d].n; i++)
			free(n->q[d].heap[i].data);
		free(n->q[d].heap);
	}
	free(n);
}

void
simnet_setconf(simnet_t *n, const struct simnet_conf *conf)
{
	n->conf = *conf;
}

/* Serialisation delay in ms for len bytes sent at now, given what the link
 * still has to transmit. */
static uint32_t
txdelay(simnet_t *n, struct dirq *q, int len, uint32_t now)
{
	uint32_t bw = n->conf.bandwidth;
	if (bw == 0)
		return 0;
	if (q->link_used) {
		int32_t el = (int32_t)(now - q->link_last);
		if (el > 0) {
			uint64_t done = (uint64_t)el * 1000;
			q->backlog_us = q->backlog_us > done ? q->backlog_us - done : 0;
			q->link_last = now;
		}
	} else {
		q->link_used = 1;
		q->link_last = now;
	}
	q->backlog_us += ((uint64_t)len * 1000000 + bw - 1) / bw;
	return (uint32_t)((q->backlog_us + 999) / 1000);
}

static void
enqueue(simnet_t *n, int dir, const void *buf, int len, uint32_t now,
        uint32_t tx)
{
	struct dirq *q = &n->q[dir];
	const struct simnet_conf *c = &n->conf;
	uint32_t cap = c->capacity ? c->capacity : CAPACITY_DEFAULT;
	uint32_t delay;
	struct ent e;

	if (q->n >= cap) {
		n->st.overflow[dir]++;
		return;
	}
	delay = tx + range(n, c->delay_min, c->delay_max);
	if (c->jitter)
		delay += range(n, 0, c->jitter);
	if (chance(n, c->reorder)) {
		uint32_t dmax = c->delay_max > c->delay_min ? c->delay_max
		                                            : c->delay_min;
		delay += range(n, 0, 2 * dmax + c->jitter);
	}
	e.due = now + delay;
	if (c->in_order && q->n > 0 && (int32_t)(q->last_due - e.due) > 0)
		e.due = q->last_due;
	e.len = (uint32_t)len;
	e.seq = n->seq++;
	e.data = NULL;
	if (len > 0) {
		e.data = malloc((size_t)len);
		if (e.data == NULL) {
			n->st.overflow[dir]++;
			return;
		}
		memcpy(e.data, buf, (size_t)len);
	}
	if (heap_push(q, &e) < 0) {
		free(e.data);
		n->st.overflow[dir]++;
		return;
	}
	q->last_due = e.due;
}

void
simnet_send(simnet_t *n, int dir, const void *buf, int len, uint32_t now)
{
	struct dirq *q;
	uint32_t cap, tx;
	if (dir < 0 || dir > 1 || len < 0)
		return;
	q = &n->q[dir];
	n->st.sent[dir]++;
	n->st.bytes[dir] += (uint64_t)len;
	cap = n->conf.capacity ? n->conf.capacity : CAPACITY_DEFAULT;
	if (q->n >= cap) {
		/* dropped at the sender's queue: no link time used */
		n->st.overflow[dir]++;
		return;
	}
	tx = txdelay(n, q, len, now);
	if (chance(n, n->conf.loss)) {
		n->st.lost[dir]++;
		return;
	}
	enqueue(n, dir, buf, len, now, tx);
	if (chance(n, n->conf.dup)) {
		n->st.duplicated[dir]++;
		enqueue(n, dir, buf, len, now, tx);
	}
}

int
simnet_recv(simnet_t *n, int dir, void *buf, int cap, uint32_t now)
{
	struct dirq *q;
	struct ent e;
	int len;
	if (dir < 0 || dir > 1)
		return -1;
	q = &n->q[dir];
	if (q->n == 0 || (int32_t)(q->heap[0].due - now) > 0)
		return -1;
	heap_pop(q, &e);
	len = (int)e.len;
	if (cap < 0)
		cap = 0;
	if (len > cap)
		len = cap;
	if (len > 0)
		memcpy(buf, e.data, (size_t)len);
	free(e.data);
	n->st.delivered[dir]++;
	return len;
}

int
simnet_next(const simnet_t *n, int dir, uint32_t *when)
{
	if (dir < 0 || dir > 1 || n->q[dir].n == 0)
		return -1;
	*when = n->q[dir].heap[0].due;
	return 0;
}

int
simnet_queued(const simnet_t *n, int dir)
{
	if (dir < 0 || dir > 1)
		return 0;
	return (int)n->q[dir].n;
}

void
simnet_getstats(const simnet_t *n, struct simnet_stats *st)
{
	*st = n->st;
}
