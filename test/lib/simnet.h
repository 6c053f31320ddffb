/*
 * simnet.h - a simulated datagram network in virtual time, for tests and
 * benchmarks of the protocol layers.
 *
 * Two directions (0: A->B, 1: B->A), each a queue of datagrams with a due
 * time. No sockets, no clock: the caller passes `now` (ms, wraps at 2^32,
 * compared with (int32_t)(a - b)). Loss, delay, jitter, reordering,
 * duplication, a queue capacity and a bandwidth limit are drawn from the
 * object's own PRNG, so a run is fully determined by the seed and the
 * sequence of calls.
 *
 * Queued datagrams must lie within 2^31 ms of each other (they always do
 * unless delays near 24 days are configured).
 */
#ifndef MOONGATE_SIMNET_H
#define MOONGATE_SIMNET_H

#include <stdint.h>

typedef struct simnet simnet_t;

struct simnet_conf {
	double loss;          /* 0..1, probability a packet is dropped, per direction */
	uint32_t delay_min;   /* one-way delay in ms, uniform in [delay_min, delay_max] */
	uint32_t delay_max;
	uint32_t jitter;      /* extra uniform [0, jitter] ms added per packet */
	double reorder;       /* 0..1, probability a packet gets extra delay of up to
	                         2*delay_max+jitter so it overtakes/gets overtaken */
	double dup;           /* 0..1, probability a packet is delivered twice (second
	                         copy independently delayed) */
	int in_order;         /* 1: FIFO per direction; a packet is released only when
	                         it and all before it are due (classic KCP bench) */
	uint32_t capacity;    /* max packets queued per direction, 0 = 100000; beyond
	                         it packets are dropped (counted in overflow) */
	uint32_t bandwidth;   /* bytes per second per direction, 0 = unlimited
	                         (serialisation delay) */
};

/* Returns NULL when out of memory. conf may be NULL (a perfect link). */
simnet_t *simnet_create(const struct simnet_conf *conf, uint64_t seed);
void simnet_free(simnet_t *n);
/* Change the conditions while running; queued packets keep their due times. */
void simnet_setconf(simnet_t *n, const struct simnet_conf *conf);

/* dir 0: A->B, 1: B->A. Copies the packet (len >= 0). */
void simnet_send(simnet_t *n, int dir, const void *buf, int len, uint32_t now);

/* Next packet due at or before now in dir, copied into buf (cap bytes);
 * returns its length, or -1 if none due. A packet longer than cap is
 * truncated to cap bytes and cap is returned, as recv() does on UDP. */
int simnet_recv(simnet_t *n, int dir, void *buf, int cap, uint32_t now);

/* Earliest due time of a queued packet in dir; returns 0 and sets *when, or
 * -1 if empty. */
int simnet_next(const simnet_t *n, int dir, uint32_t *when);

/* Per direction:
 *  sent       calls to simnet_send
 *  delivered  packets returned by simnet_recv (duplicates included)
 *  lost       packets dropped by the loss probability
 *  duplicated extra copies queued by the dup probability
 *  overflow   copies dropped because the queue held capacity packets
 *  bytes      payload bytes handed to simnet_send */
struct simnet_stats {
	uint64_t sent[2], delivered[2], lost[2], duplicated[2], overflow[2], bytes[2];
};
void simnet_getstats(const simnet_t *n, struct simnet_stats *st);

/* Packets queued in dir right now. */
int simnet_queued(const simnet_t *n, int dir);

/* The PRNG (splitmix64), for tests that want extra randomness. */
uint64_t simnet_rand(simnet_t *n);

#endif
