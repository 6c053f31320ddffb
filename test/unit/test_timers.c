/*
 * test_timers.c - the Lua runtime's timer set (core/lua/timers.c) without
 * Lua: FIFO among equal dues, re-arming and skipping of repeating timers,
 * cancel from inside a callback, a timer armed by a callback waiting a
 * turn, the cap, and the count.
 */
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "timers.h"

/* What the fire callback saw, and what it is told to do. */
struct rec {
	timers_t *ts;
	int fired[64];          /* ids, in firing order */
	int once[64];
	uint64_t at[64];
	int n;
	struct timer *cancel;   /* cancel this from the next callback */
	int cancel_id;          /* the id whose callback cancels */
	int arm_from;           /* the id whose callback arms id 99 due now */
};

static void
fire(void *user, void *data, int once, uint64_t now)
{
	struct rec *r = user;
	int id = (int)(intptr_t)data;
	r->once[r->n] = once;
	r->at[r->n] = now;
	r->fired[r->n++] = id;
	if (id == r->cancel_id && r->cancel) {
		timers_cancel(r->ts, r->cancel);
		r->cancel = NULL;
	}
	if (id == r->arm_from) {
		struct timer *t;
		CHECK_EQ(timers_add(r->ts, now, 0, (void *)(intptr_t)99, &t), 0);
	}
}

static struct timer *
add(struct rec *r, uint64_t due, uint64_t period, int id)
{
	struct timer *t = NULL;
	CHECK_EQ(timers_add(r->ts, due, period, (void *)(intptr_t)id, &t), 0);
	return t;
}

static void
setup(struct rec *r, uint32_t max)
{
	memset(r, 0, sizeof *r);
	r->cancel_id = -1;
	r->arm_from = -1;
	r->ts = timers_create(max, fire, r);
}

TEST(equal_dues_fire_in_arm_order)
{
	struct rec r;
	setup(&r, 100);
	REQUIRE(r.ts);
	add(&r, 500, 0, 3);
	add(&r, 100, 0, 1);
	add(&r, 500, 0, 4);
	add(&r, 100, 0, 2);
	CHECK_EQ(timers_count(r.ts), 4);
	CHECK_EQ(timers_check(r.ts, 0), 100);
	CHECK_EQ(timers_check(r.ts, 200), 200); /* overdue: now */
	timers_update(r.ts, 99);
	CHECK_EQ(r.n, 0);
	timers_update(r.ts, 1000);
	REQUIRE_EQ(r.n, 4);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(r.fired[i], i + 1);
		CHECK_EQ(r.once[i], 1);
	}
	CHECK_EQ(timers_count(r.ts), 0);
	CHECK_EQ(timers_check(r.ts, 7), 7 + 3600ull * 1000000);
	timers_release(r.ts);
}

TEST(repeating_rearms_and_skips)
{
	struct rec r;
	setup(&r, 100);
	add(&r, 100, 100, 1);
	timers_update(r.ts, 100);
	CHECK_EQ(r.n, 1);
	CHECK_EQ(r.once[0], 0);
	CHECK_EQ(timers_check(r.ts, 100), 200);
	/* fell behind by several periods: one firing, next due a period on */
	timers_update(r.ts, 750);
	CHECK_EQ(r.n, 2);
	CHECK_EQ(timers_check(r.ts, 750), 850);
	CHECK_EQ(timers_count(r.ts), 1);
	/* equal dues: the repeating timer, re-armed at 750, before a timer
	 * armed after that */
	add(&r, 850, 0, 2);
	timers_update(r.ts, 850);
	REQUIRE_EQ(r.n, 4);
	CHECK_EQ(r.fired[2], 1);
	CHECK_EQ(r.fired[3], 2);
	timers_release(r.ts); /* frees the pending one */
}

TEST(cancel_inside_a_callback)
{
	struct rec r;
	setup(&r, 100);
	/* a repeating timer cancels itself */
	struct timer *self = add(&r, 10, 10, 1);
	r.cancel = self;
	r.cancel_id = 1;
	timers_update(r.ts, 10);
	CHECK_EQ(r.n, 1);
	CHECK_EQ(timers_count(r.ts), 0);
	timers_update(r.ts, 100);
	CHECK_EQ(r.n, 1);
	/* one callback cancels a timer due in the same update */
	add(&r, 200, 0, 2);
	struct timer *victim = add(&r, 200, 0, 3);
	add(&r, 200, 0, 4);
	r.cancel = victim;
	r.cancel_id = 2;
	timers_update(r.ts, 200);
	REQUIRE_EQ(r.n, 3);
	CHECK_EQ(r.fired[1], 2);
	CHECK_EQ(r.fired[2], 4);
	CHECK_EQ(timers_count(r.ts), 0);
	timers_release(r.ts);
}

TEST(armed_by_a_callback_waits_a_turn)
{
	struct rec r;
	setup(&r, 100);
	add(&r, 10, 0, 1);
	r.arm_from = 1;
	timers_update(r.ts, 10);
	CHECK_EQ(r.n, 1);
	CHECK_EQ(timers_count(r.ts), 1);
	CHECK_EQ(timers_check(r.ts, 10), 10);
	r.arm_from = -1;
	timers_update(r.ts, 10);
	REQUIRE_EQ(r.n, 2);
	CHECK_EQ(r.fired[1], 99);
	timers_release(r.ts);
}

TEST(cap)
{
	struct rec r;
	setup(&r, 2);
	struct timer *t;
	add(&r, 1, 0, 1);
	struct timer *b = add(&r, 2, 0, 2);
	CHECK_EQ(timers_add(r.ts, 3, 0, NULL, &t), TIMERS_EFULL);
	timers_cancel(r.ts, b);
	CHECK_EQ(timers_count(r.ts), 1);
	CHECK_EQ(timers_add(r.ts, 3, 0, NULL, &t), 0);
	timers_release(r.ts);
}

static const struct tu_test tests[] = {
	TU(equal_dues_fire_in_arm_order),
	TU(repeating_rearms_and_skips),
	TU(cancel_inside_a_callback),
	TU(armed_by_a_callback_waits_a_turn),
	TU(cap),
};

int
main(int argc, char **argv)
{
	return tu_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
