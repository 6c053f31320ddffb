/*
 * hist.h - a log-linear latency histogram for the benchmarks: exact below
 * 64 us, 1/32 of the value above (a bucket's top is reported, capped by
 * the largest value seen). Fixed size, no allocation: zero it to start.
 */
#ifndef MOONGATE_BENCH_HIST_H
#define MOONGATE_BENCH_HIST_H

#include <stdint.h>

#define HIST_BUCKETS 2048

struct hist {
	uint64_t n[HIST_BUCKETS]; /* samples per bucket */
	uint64_t count;           /* samples in all */
	uint64_t max;             /* the largest sample */
};

void hist_add(struct hist *h, uint64_t us);
/* Adds every sample of src to dst (the buckets, the count, the max): the
 * quantiles of the merge are those of one histogram fed every sample. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The p-quantile (0 < p <= 1) in milliseconds; 0 with no samples. */
double hist_ms(const struct hist *h, double p);

#endif
