/*
 * timers.h - a set of timers over the shared heap (core/proto/heap.h):
 * one-shot and repeating, cancellable at any time, including from inside
 * their own callback. No clock and no Lua: the caller gives `now`
 * (microseconds), asks timers_check when the next one is due and runs
 * timers_update then; each due timer is handed to the fire callback given
 * at creation, with the opaque data it was added with.
 *
 * The Lua runtime owns one set (core/lua/script.c): the data of a timer is
 * its Lua handle (core/lua/script_timer.c).
 *
 * Order: timers due at the same time fire in the order they were armed (a
 * repeating timer re-arms before its callback runs); a timer armed by a
 * callback fires on a later timers_update, never in the one that armed it.
 */
#ifndef MOONGATE_TIMERS_H
#define MOONGATE_TIMERS_H

#include <stdint.h>

typedef struct timers timers_t;
struct timer;

/* A due timer, called once per firing. once is 1 for a one-shot timer:
 * it is already out of the set and freed, so its struct timer pointer
 * must be forgotten (timers_cancel would be a use after free); 0 for a
 * repeating one, re-armed for its next period. The callback may add and
 * cancel timers, this one included. */
typedef void timers_fire_fn(void *user, void *data, int once, uint64_t now);

#define TIMERS_EFULL -1  /* max timers pending already */
#define TIMERS_ENOMEM -2

/* An empty set that holds at most max pending timers (at least 1); NULL
 * when out of memory. */
timers_t *timers_create(uint32_t max, timers_fire_fn *fire, void *user);
/* Free the set and every pending timer (their data is not touched). */
void timers_release(timers_t *ts);

/* Arm a timer first due at `due`, then every `period` microseconds
 * (0: once). 0 with *out set, or TIMERS_EFULL / TIMERS_ENOMEM. */
int timers_add(timers_t *ts, uint64_t due, uint64_t period, void *data,
               struct timer **out);
/* Disarm and free a pending timer (its data is not touched). */
void timers_cancel(timers_t *ts, struct timer *t);

/* When the next timer is due: never before now; now + 1 hour when none. */
uint64_t timers_check(const timers_t *ts, uint64_t now);
/* Fire every timer due at now (armed before this call). A repeating timer
 * that fell behind by a whole period skips ahead instead of bursting. */
void timers_update(timers_t *ts, uint64_t now);
/* Timers pending. */
uint32_t timers_count(const timers_t *ts);

#endif
