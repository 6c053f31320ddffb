/*
 * hist.c - the log-linear latency histogram (hist.h).
 */
#include <math.h>

#include "hist.h"

static int
bucket(uint64_t v)
{
	if (v < 64)
		return (int)v;
	int e = 63 - __builtin_clzll(v) - 5;
	int b = 32 * e + (int)(v >> e);
	return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* The largest value in bucket b. */
static uint64_t
bucket_top(int b)
{
	if (b < 64)
		return (uint64_t)b;
	int e = b / 32 - 1;
	return ((uint64_t)(b - 32 * e + 1) << e) - 1;
}

void
hist_add(struct hist *h, uint64_t us)
{
	h->n[bucket(us)]++;
	h->count++;
	if (us > h->max)
		h->max = us;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		dst->n[i] += src->n[i];
	dst->count += src->count;
	if (src->max > dst->max)
		dst->max = src->max;
}

double
hist_ms(const struct hist *h, double p)
{
	if (h->count == 0)
		return 0;
	uint64_t want = (uint64_t)ceil(p * (double)h->count);
	if (want == 0)
		want = 1;
	uint64_t acc = 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		acc += h->n[i];
		if (acc >= want) {
			uint64_t v = bucket_top(i);
			return (v < h->max ? v : h->max) / 1000.0;
		}
	}
	return h->max / 1000.0;
}
