/*
 * test_sync.c - unit tests of core/proto/sync.c: the state relay (newest wins,
 * stale and superseded states, the grid, the filter, splitting into
 * datagrams) and the frame history (encoding, the ring's bounds,
 * catch-up). Every datagram a flush emits is decoded again by a strict
 * parser here, so "each entry exactly once" is checked on the bytes.
 * state_vector and frame_vector check the bytes of docs/PROTOCOL.md ("Game
 * service payloads"); -v prints them.
 */
#include "sync.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* A varint (LEB128) of at most max bytes at p[0..n), its value at most
 * lim, with no needless last byte 0 (one encoding per value): the bytes
 * taken, or 0. */
static size_t
getvar(const uint8_t *p, size_t n, size_t max, uint32_t lim, uint32_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < n && i < max; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			if ((i > 0 && p[i] == 0) || x > lim)
				return 0;
			*v = (uint32_t)x;
			return i + 1;
		}
	}
	return 0;
}

static void
hexdump(const char *what, const uint8_t *p, size_t n)
{
	if (!tu_verbose)
		return;
	printf("    %s (%zu bytes)\n       ", what, n);
	for (size_t i = 0; i < n; i++)
		printf(" %02x%s", p[i], i % 16 == 15 && i + 1 < n ? "\n       " : "");
	printf("\n");
}

/* ---- a receiver log: every state every receiver got ---------------------- */

#define MAXGOT 100000

struct got {
	uint32_t receiver, tick, id, seq;
	char data[64];
	uint16_t len;
};

struct sink {
	int n;                 /* states decoded */
	struct got *g;
	int dgrams;
	size_t max_len;        /* the longest datagram seen */
	int bad;               /* datagrams that failed to parse */
	size_t room;           /* what room() answers (0: dgram_max) */
	uint32_t skip;         /* a receiver room() refuses (0: none) */
	uint32_t (*filter)(uint32_t, uint32_t *, uint32_t, uint32_t, void *);
};

static size_t
sink_room(uint32_t id, uint32_t tag, void *user)
{
	struct sink *s = user;
	(void)tag;
	if (s->skip && id == s->skip)
		return 0;
	return s->room ? s->room : 65535;
}

static int
sink_output(uint32_t receiver, uint32_t tag, const uint8_t *d, size_t len,
            void *user)
{
	struct sink *s = user;
	(void)tag;
	s->dgrams++;
	if (len > s->max_len)
		s->max_len = len;
	if (len < SYNC_STATES_HDR || d[0] != SYNC_STATES || d[5] == 0) {
		s->bad++;
		return 0;
	}
	uint32_t tick = get32(d + 1);
	size_t off = SYNC_STATES_HDR;
	for (int k = 0; k < d[5]; k++) {
		uint32_t id, n;
		size_t a = getvar(d + off, len - off, 5, UINT32_MAX, &id), b;
		if (!a || !(b = getvar(d + off + a, len - off - a, 3, 65535, &n)) ||
		    len - off - a - b < n) {
			s->bad++;
			return 0;
		}
		struct got *g = &s->g[s->n < MAXGOT ? s->n++ : MAXGOT - 1];
		g->receiver = receiver;
		g->tick = tick;
		g->id = id;
		g->seq = tick; /* a state's number is its bundle's tick */
		g->len = (uint16_t)n;
		memcpy(g->data, d + off + a + b, g->len < 64 ? g->len : 64);
		off += a + b + n;
	}
	if (off != len)
		s->bad++;
	return 0;
}

static struct sync_relay_io
sink_io(struct sink *s)
{
	struct sync_relay_io io = { sink_room, s->filter, sink_output, s };
	return io;
}

static struct sink *
sink_new(void)
{
	struct sink *s = calloc(1, sizeof *s);
	s->g = calloc(MAXGOT, sizeof *s->g);
	return s;
}

static void
sink_free(struct sink *s)
{
	free(s->g);
	free(s);
}

/* How many states receiver got from id (and the last one's seq). */
static int
got(const struct sink *s, uint32_t receiver, uint32_t id, uint32_t *seq)
{
	int n = 0;
	for (int k = 0; k < s->n; k++) {
		if (s->g[k].receiver == receiver && s->g[k].id == id) {
			n++;
			if (seq)
				*seq = s->g[k].seq;
		}
	}
	return n;
}

static sync_relay_t *
relay(uint32_t members_max, double cell, uint32_t radius)
{
	struct sync_relay_config c;
	sync_relay_config_default(&c);
	c.members_max = members_max;
	c.cell = cell;
	c.radius = radius;
	return sync_relay_create(&c);
}

static int
put(sync_relay_t *r, uint32_t id, uint32_t seq, const char *s)
{
	return sync_relay_put(r, id, seq, s, strlen(s));
}

/* ---- the relay ----------------------------------------------------------- */

TEST(relay_newest_wins)
{
	sync_relay_t *r = relay(256, 0, 1);
	struct sink *s = sink_new();
	struct sync_relay_io io = sink_io(s);
	REQUIRE(r);
	for (uint32_t id = 1; id <= 3; id++)
		CHECK_EQ(sync_relay_add(r, id, 100 + id), 0);
	char buf[16];
	for (uint32_t q = 1; q <= 5; q++) {
		snprintf(buf, sizeof buf, "state %u", q);
		CHECK_EQ(put(r, 1, q, buf), 0);
	}
	CHECK_EQ(sync_relay_flush(r, &io), 2); /* one datagram each for 2 and 3 */
	CHECK_EQ(s->bad, 0);
	uint32_t seq = 99;
	CHECK_EQ(got(s, 2, 1, &seq), 1);
	CHECK_EQ(seq, 0); /* the tick */
	CHECK_EQ(got(s, 3, 1, &seq), 1);
	CHECK_EQ(got(s, 1, 1, NULL), 0); /* never its own */
	CHECK(s->n == 2 && !memcmp(s->g[0].data, "state 5", 7) && s->g[0].len == 7);
	CHECK_EQ(s->g[0].tick, 0);

	struct sync_relay_stats st;
	sync_relay_stats(r, &st);
	CHECK_EQ(st.puts, 5);
	CHECK_EQ(st.superseded, 4);
	CHECK_EQ(st.relayed, 2);
	CHECK_EQ(st.datagrams, 2);
	CHECK_EQ(st.bytes, 2 * (SYNC_STATES_HDR + 2 + 7)); /* id 1, len 7: 2 B */
	CHECK_EQ(st.tick, 1);
	CHECK_EQ(st.members, 3);

	/* flushed: nothing pending, nothing sent, the tick still moves */
	s->n = 0;
	CHECK_EQ(sync_relay_flush(r, &io), 0);
	CHECK_EQ(s->n, 0);
	CHECK_EQ(put(r, 2, 1, "b"), 0);
	CHECK_EQ(sync_relay_flush(r, &io), 2);
	CHECK_EQ(s->g[0].tick, 2);
	CHECK_EQ(got(s, 1, 2, NULL) + got(s, 3, 2, NULL), 2);
	sink_free(s);
	sync_relay_release(r);
}

TEST(relay_stale_refused)
{
	sync_relay_t *r = relay(256, 0, 1);
	struct sink *s = sink_new();
	struct sync_relay_io io = sink_io(s);
	REQUIRE(r);
	sync_relay_add(r, 1, 0);
	sync_relay_add(r, 2, 0);
	CHECK_EQ(put(r, 1, 5, "five"), 0);
	CHECK_EQ(put(r, 1, 5, "again"), SYNC_ESTALE);
	CHECK_EQ(put(r, 1, 4, "four"), SYNC_ESTALE);
	sync_relay_flush(r, &io);
	CHECK_EQ(put(r, 1, 5, "after"), SYNC_ESTALE); /* the last accepted stays */
	CHECK_EQ(put(r, 1, 3, "older"), SYNC_ESTALE);
	CHECK_EQ(put(r, 1, 6, "six"), 0);
	CHECK_EQ(put(r, 3, 1, "x"), SYNC_ENOMEMBER);
	struct sync_relay_stats st;
	sync_relay_stats(r, &st);
	CHECK_EQ(st.stale, 4);
	CHECK_EQ(st.puts, 2);
	CHECK_EQ(st.superseded, 0);
	CHECK_EQ(got(s, 2, 1, NULL), 1);
	CHECK(!memcmp(s->g[0].data, "five", 4));

	/* a new tag (a new session) counts from the start again */
	CHECK_EQ(sync_relay_add(r, 1, 0), 0);
	CHECK_EQ(put(r, 1, 2, "same tag"), SYNC_ESTALE);
	CHECK_EQ(sync_relay_add(r, 1, 77), 0);
	CHECK_EQ(put(r, 1, 1, "new session"), 0);
	CHECK_EQ(put(r, 1, 1, "new session"), SYNC_ESTALE);
	sink_free(s);
	sync_relay_release(r);
}

/* issue 16: a member that comes back on a new session (a cookie login)
 * puts from seq 1 again; what the others receive from it must still be
 * newer than anything they got from it, and so after a remove and add. */
TEST(relay_order_across_sessions)
{
	sync_relay_t *r = relay(256, 0, 1);
	struct sink *s = sink_new();
	struct sync_relay_io io = sink_io(s);
	REQUIRE(r);
	sync_relay_add(r, 1, 100);
	sync_relay_add(r, 2, 200);
	uint32_t last = 0, seq = 0;
	for (uint32_t q = 1; q <= 3; q++) {
		CHECK_EQ(put(r, 1, 1000 + q, "old session"), 0);
		sync_relay_flush(r, &io);
		CHECK_EQ(got(s, 2, 1, &seq), (int)q);
		CHECK(q == 1 || (int32_t)(seq - last) > 0);
		last = seq;
	}
	sync_relay_flush(r, &io); /* an empty tick */
	/* the new session counts its datagrams from 1 */
	CHECK_EQ(sync_relay_add(r, 1, 101), 0);
	CHECK_EQ(put(r, 1, 1, "new session"), 0);
	sync_relay_flush(r, &io);
	CHECK_EQ(got(s, 2, 1, &seq), 4);
	CHECK((int32_t)(seq - last) > 0);
	last = seq;
	/* removed and added again (a leave and a join of the same room) */
	CHECK_EQ(sync_relay_remove(r, 1), 0);
	CHECK_EQ(sync_relay_add(r, 1, 102), 0);
	CHECK_EQ(put(r, 1, 1, "joined again"), 0);
	sync_relay_flush(r, &io);
	CHECK_EQ(got(s, 2, 1, &seq), 5);
	CHECK((int32_t)(seq - last) > 0);
	CHECK_EQ(s->bad, 0);
	sink_free(s);
	sync_relay_release(r);
}

TEST(relay_wraparound_seq)
{
	sync_relay_t *r = relay(256, 0, 1);
	REQUIRE(r);
	sync_relay_add(r, 9, 0);
	CHECK_EQ(put(r, 9, 0xfffffffeu, "a"), 0);
	CHECK_EQ(put(r, 9, 0xffffffffu, "b"), 0);
	CHECK_EQ(put(r, 9, 0, "c"), 0);
	CHECK_EQ(put(r, 9, 1, "d"), 0);
	CHECK_EQ(put(r, 9, 0xffffffffu, "old"), SYNC_ESTALE);
	CHECK_EQ(put(r, 9, 0x80000000u, "half way"), 0); /* 2^31 - 1 ahead: newer */
	CHECK_EQ(put(r, 9, 1, "behind"), SYNC_ESTALE);
	struct sync_relay_stats st;
	sync_relay_stats(r, &st);
	CHECK_EQ(st.superseded, 4);
	sync_relay_release(r);
}

TEST(relay_too_big)
{
	struct sync_relay_config c;
	sync_relay_config_default(&c);
	CHECK_EQ(c.entry_max, 1171 - 14);
	c.entry_max = 8;
	c.dgram_max = 8 + 13; /* one short of the largest entry header */
	CHECK(sync_relay_create(&c) == NULL);
	c.dgram_max = 8 + 14;
	sync_relay_t *r = sync_relay_create(&c);
	REQUIRE(r);
	sync_relay_add(r, 1, 0);
	CHECK_EQ(put(r, 1, 1, "12345678"), 0);
	CHECK_EQ(put(r, 1, 2, "123456789"), SYNC_ETOOBIG);
	CHECK_EQ(sync_relay_position(r, 1, NAN, 1), SYNC_EINVAL);
	struct sync_relay_stats st;
	sync_relay_stats(r, &st);
	CHECK_EQ(st.too_big, 1);
	sync_relay_release(r);

	sync_relay_config_default(&c);
	c.members_max = 0;
	CHECK(sync_relay_create(&c) == NULL);
	c.members_max = SYNC_MEMBERS_LIMIT + 1;
	CHECK(sync_relay_create(&c) == NULL);
	sync_relay_config_default(&c);
	c.cell = -1;
	CHECK(sync_relay_create(&c) == NULL);
}

TEST(relay_members_max)
{
	sync_relay_t *r = relay(3, 0, 1);
	struct sink *s = sink_new();
	struct sync_relay_io io = sink_io(s);
	REQUIRE(r);
	for (uint32_t id = 1; id <= 3; id++)
		CHECK_EQ(sync_relay_add(r, id, 0), 0);
	CHECK_EQ(sync_relay_add(r, 4, 0), SYNC_EFULL);
	CHECK_EQ(sync_relay_add(r, 2, 5), 0); /* again: not a new member */
	CHECK_EQ(sync_relay_remove(r, 1), 0);  /* 3 moves into its slot */
	CHECK_EQ(sync_relay_remove(r, 1), SYNC_ENOMEMBER);
	CHECK_EQ(sync_relay_add(r, 4, 0), 0);
	CHECK_EQ(put(r, 3, 1, "three"), 0);
	CHECK_EQ(put(r, 4, 1, "four"), 0);
	CHECK_EQ(put(r, 1, 1, "gone"), SYNC_ENOMEMBER);
	sync_relay_flush(r, &io);
	CHECK_EQ(got(s, 2, 3, NULL), 1);
	CHECK_EQ(got(s, 2, 4, NULL), 1);
	CHECK_EQ(got(s, 3, 4, NULL), 1);
	CHECK_EQ(got(s, 4, 3, NULL), 1);
	CHECK_EQ(s->n, 4);
	/* a removed member's pending state goes with it */
	CHECK_EQ(put(r, 3, 2, "three"), 0);
	CHECK_EQ(sync_relay_remove(r, 3), 0);
	s->n = 0;
	CHECK_EQ(sync_relay_flush(r, &io), 0);
	CHECK_EQ(s->n, 0);
	struct sync_relay_stats st;
	sync_relay_stats(r, &st);
	CHECK_EQ(st.members, 2);
	sink_free(s);
	sync_relay_release(r);
}

TEST(relay_grid)
{
	sync_relay_t *r = relay(256, 10, 1);
	struct sink *s = sink_new();
	struct sync_relay_io io = sink_io(s);
	REQUIRE(r);
	/* 1 at cell (0,0); 2 at (1,1): in; 3 at (2,0): out; 4 at (-1,-1): in;
	 * 5 without a position: sees and is seen by everyone */
	for (uint32_t id = 1; id <= 5; id++) {
		sync_relay_add(r, id, 0);
		CHECK_EQ(put(r, id, 1, "s"), 0);
	}
	CHECK_EQ(sync_relay_position(r, 1, 5, 5), 0);
	CHECK_EQ(sync_relay_position(r, 2, 15, 19.9), 0);
	CHECK_EQ(sync_relay_position(r, 3, 25, 5), 0);
	CHECK_EQ(sync_relay_position(r, 4, -0.5, -10), 0);
	CHECK_EQ(sync_relay_position(r, 6, 0, 0), SYNC_ENOMEMBER);
	sync_relay_flush(r, &io);
	CHECK_EQ(s->bad, 0);
	CHECK_EQ(got(s, 1, 2, NULL), 1);
	CHECK_EQ(got(s, 1, 3, NULL), 0);
	CHECK_EQ(got(s, 1, 4, NULL), 1);
	CHECK_EQ(got(s, 1, 5, NULL), 1);
	CHECK_EQ(got(s, 3, 1, NULL), 0);
	CHECK_EQ(got(s, 3, 2, NULL), 1); /* (2,0) and (1,1) */
	CHECK_EQ(got(s, 3, 4, NULL), 0);
	CHECK_EQ(got(s, 4, 2, NULL), 0); /* (-1,-2) and (1,1) */
	for (uint32_t id = 1; id <= 4; id++) {
		CHECK_EQ(got(s, 5, id, NULL), 1);
		CHECK_EQ(got(s, id, 5, NULL), 1);
	}
	/* radius 2 takes 3 in for 1; off the grid again, 3 sees all */
	sync_relay_release(r);
	r = relay(256, 10, 2);
	REQUIRE(r);
	s->n = 0;
	for (uint32_t id = 1; id <= 3; id++) {
		sync_relay_add(r, id, 0);
		put(r, id, 1, "s");
	}
	sync_relay_position(r, 1, 5, 5);
	sync_relay_position(r, 2, 45, 5);  /* cell 4: out */
	sync_relay_position(r, 3, 25, 25); /* cell (2,2): in */
	sync_relay_flush(r, &io);
	CHECK_EQ(got(s, 1, 2, NULL), 0);
	CHECK_EQ(got(s, 1, 3, NULL), 1);
	s->n = 0;
	put(r, 1, 2, "s");
	put(r, 2, 2, "s");
	CHECK_EQ(sync_relay_unposition(r, 1), 0);
	sync_relay_flush(r, &io);
	CHECK_EQ(got(s, 1, 2, NULL), 1);
	CHECK_EQ(got(s, 2, 1, NULL), 1);
	sink_free(s);
	sync_relay_release(r);
}

/* keeps the even ids, in reverse, and adds noise that must be ignored */
static uint32_t
keep_even(uint32_t receiver, uint32_t *ids, uint32_t n, uint32_t cap,
          void *user)
{
	uint32_t keep[64], k = 0;
	(void)user;
	if (cap < n || cap != 256)
		abort();
	if (receiver == 7)
		return n; /* 7 keeps everything */
	for (uint32_t i = n; i-- > 0;)
		if (ids[i] % 2 == 0 && k < 60)
			keep[k++] = ids[i];
	if (k)
		keep[k++] = keep[0]; /* a repeat */
	keep[k++] = receiver;    /* not a candidate: itself */
	keep[k++] = 999;         /* not a member */
	if (k > cap)
		k = cap;
	memcpy(ids, keep, k * sizeof *ids);
	return k;
}

TEST(relay_filter)
{
	sync_relay_t *r = relay(256, 0, 1);
	struct sink *s = sink_new();
	s->filter = keep_even;
	struct sync_relay_io io = sink_io(s);
	REQUIRE(r);
	for (uint32_t id = 1; id <= 8; id++) {
		sync_relay_add(r, id, 0);
		put(r, id, 1, "s");
	}
	sync_relay_flush(r, &io);
	CHECK_EQ(s->bad, 0);
	for (uint32_t rc = 1; rc <= 8; rc++)
		for (uint32_t id = 1; id <= 8; id++)
			CHECK_EQ(got(s, rc, id, NULL),
			         id != rc && (rc == 7 || id % 2 == 0) ? 1 : 0);
	/* the filter's order is kept: receiver 1 gets 8, 6, 4, 2 */
	int k = 0;
	uint32_t want[] = { 8, 6, 4, 2 };
	for (int i = 0; i < s->n; i++)
		if (s->g[i].receiver == 1 && k < 4)
			CHECK_EQ(s->g[i].id, want[k++]);
	CHECK_EQ(k, 4);
	sink_free(s);
	sync_relay_release(r);
}

TEST(relay_split)
{
	struct sync_relay_config c;
	sync_relay_config_default(&c);
	c.entry_max = 30;
	c.dgram_max = 100;
	sync_relay_t *r = sync_relay_create(&c);
	struct sink *s = sink_new();
	struct sync_relay_io io = sink_io(s);
	REQUIRE(r);
	char d[31];
	for (uint32_t id = 1; id <= 10; id++) {
		sync_relay_add(r, id, 0);
		memset(d, 'a' + (int)id, sizeof d);
		/* 30 bytes: 32 per entry (id and len 1 B each), 2 in a
		 * datagram of 100 (6 + 64; 3 would be 102) */
		CHECK_EQ(sync_relay_put(r, id, 1, d, 30), 0);
	}
	s->skip = 10; /* offline: gets nothing */
	uint32_t n = sync_relay_flush(r, &io);
	CHECK_EQ(n, 9 * 5); /* 9 receivers, 9 states each in 5 datagrams */
	CHECK_EQ(s->bad, 0);
	CHECK(s->max_len <= 100);
	for (uint32_t rc = 1; rc <= 9; rc++)
		for (uint32_t id = 1; id <= 10; id++)
			CHECK_EQ(got(s, rc, id, NULL), id == rc ? 0 : 1);
	for (uint32_t id = 1; id <= 10; id++)
		CHECK_EQ(got(s, 10, id, NULL), 0);
	for (int i = 0; i < s->n; i++)
		CHECK(s->g[i].len == 30 && s->g[i].data[0] == 'a' + (int)s->g[i].id);

	/* a receiver with less room: one per datagram (6 + 32 <= 50 < 6 + 64) */
	s->skip = 0;
	s->n = s->dgrams = 0;
	s->room = 50;
	for (uint32_t id = 1; id <= 3; id++)
		sync_relay_put(r, id, 2, d, 30);
	CHECK_EQ(sync_relay_flush(r, &io), 2 + 2 + 2 + 7 * 3);
	CHECK_EQ(s->n, 2 + 2 + 2 + 7 * 3);
	/* a room that holds no entry of this size: skipped, counted */
	s->n = 0;
	s->room = 37; /* 6 + 32 > 37 */
	sync_relay_put(r, 1, 3, d, 30);
	sync_relay_put(r, 2, 3, d, 5);
	CHECK_EQ(sync_relay_flush(r, &io), 9);
	CHECK_EQ(s->n, 9);
	CHECK_EQ(got(s, 3, 1, NULL), 0);
	CHECK_EQ(got(s, 3, 2, NULL), 1);
	struct sync_relay_stats st;
	sync_relay_stats(r, &st);
	CHECK_EQ(st.oversize, 9);
	sink_free(s);
	sync_relay_release(r);
}

/* 300 members: one receiver gets 299 states, 255 in the first datagram.
 * Ids 2^21 and up: 4-byte varints, so every entry is 5 bytes. */
#define BIG(i) (0x200000u + (i) * 7919u)
TEST(relay_split_count)
{
	struct sync_relay_config c;
	sync_relay_config_default(&c);
	c.members_max = 300;
	c.entry_max = 0;
	c.dgram_max = 65535;
	sync_relay_t *r = sync_relay_create(&c);
	struct sink *s = sink_new();
	struct sync_relay_io io = sink_io(s);
	REQUIRE(r);
	for (uint32_t id = 1; id <= 300; id++) {
		CHECK_EQ(sync_relay_add(r, BIG(id), 0), 0);
		CHECK_EQ(sync_relay_put(r, BIG(id), id, "", 0), 0);
	}
	CHECK_EQ(sync_relay_add(r, 1, 0), SYNC_EFULL);
	CHECK_EQ(sync_relay_flush(r, &io), 600);
	CHECK_EQ(s->bad, 0);
	CHECK_EQ(s->n, 300 * 299);
	CHECK_EQ(s->max_len, SYNC_STATES_HDR + 255 * 5);
	int ok = 1;
	for (uint32_t id = 1; id <= 300 && ok; id++)
		ok = got(s, BIG(1), BIG(id), NULL) == (id == 1 ? 0 : 1);
	CHECK(ok);
	sink_free(s);
	sync_relay_release(r);
}

static int
capture(uint32_t receiver, uint32_t tag, const uint8_t *d, size_t len,
        void *user)
{
	uint8_t *out = user;
	(void)receiver;
	(void)tag;
	memcpy(out + 1, d, len);
	out[0] = (uint8_t)len;
	return 0;
}

TEST(state_vector)
{
	/* tick 7; member 5 puts "hi" and member 300 "abc" (any seq); member
	 * 2 receives both in one bundle */
	sync_relay_t *r = relay(256, 0, 1);
	uint8_t out[256] = { 0 };
	struct sync_relay_io io = { NULL, NULL, capture, out };
	REQUIRE(r);
	sync_relay_add(r, 5, 0);
	sync_relay_add(r, 300, 0);
	sync_relay_add(r, 2, 0);
	for (int i = 0; i < 7; i++)
		sync_relay_flush(r, &io);
	sync_relay_put(r, 5, 0x0a0b0c0d, "hi", 2);
	sync_relay_put(r, 300, 1, "abc", 3);
	CHECK_EQ(sync_relay_flush(r, &io), 3); /* 5, 300, then 2's: the last */
	uint8_t want[64];
	size_t n = tu_unhex("53 07 00 00 00 02 05 02 68 69 ac 02 03 61 62 63",
	                    want, sizeof want);
	REQUIRE_EQ(out[0], n);
	CHECK_MEM(out + 1, want, n);
	hexdump("state bundle", out + 1, out[0]);
	sync_relay_release(r);
}

/* ---- the frame history --------------------------------------------------- */

static sync_frames_t *
frames(uint32_t history, size_t history_bytes, uint32_t input_max)
{
	struct sync_frames_config c;
	sync_frames_config_default(&c);
	c.history = history;
	c.history_bytes = history_bytes;
	c.input_max = input_max;
	return sync_frames_create(&c);
}

static int
input(sync_frames_t *f, uint32_t id, const char *s)
{
	return sync_frames_input(f, id, s, strlen(s));
}

/* records which member got which frame, in order */
struct fsink {
	int n;
	uint32_t id[256], frame[256];
	uint32_t refuse; /* a member whose sends fail (0: none) */
};

static int
fsink_out(uint32_t id, uint32_t tag, const uint8_t *p, size_t len, void *user)
{
	struct fsink *s = user;
	(void)tag;
	if (s->refuse && id == s->refuse)
		return -1;
	if (s->n < 256 && len >= SYNC_FRAME_HDR && p[0] == SYNC_FRAME) {
		s->id[s->n] = id;
		s->frame[s->n++] = get32(p + 1);
	}
	return 0;
}

TEST(frame_vector)
{
	sync_frames_t *f = frames(256, 1 << 20, 256);
	REQUIRE(f);
	sync_frames_add(f, 0x0a, 0, 0);
	sync_frames_add(f, 0x0b, 0, 0);
	/* 11 first, so 11's inputs lead; each keeps its own order */
	CHECK_EQ(input(f, 0x0b, "x"), 0);
	CHECK_EQ(input(f, 0x0a, "hi"), 0);
	CHECK_EQ(input(f, 0x0b, "yz"), 0);
	CHECK_EQ(input(f, 0x0c, "?"), SYNC_ENOMEMBER);
	size_t len;
	uint32_t sent = 9;
	const uint8_t *p = sync_frames_step(f, &len, NULL, NULL, &sent);
	REQUIRE(p);
	CHECK_EQ(sent, 0);
	uint8_t want[64];
	size_t n = tu_unhex("46 00 00 00 00 03 00 0b 00 00 00 01 00 78 0b 00"
	                    "00 00 02 00 79 7a 0a 00 00 00 02 00 68 69", want,
	                    sizeof want);
	REQUIRE_EQ(len, n);
	CHECK_MEM(p, want, n);
	hexdump("frame 0", p, len);
	/* an empty frame */
	p = sync_frames_step(f, &len, NULL, NULL, NULL);
	n = tu_unhex("46 01 00 00 00 00 00", want, sizeof want);
	REQUIRE_EQ(len, n);
	CHECK_MEM(p, want, n);
	hexdump("frame 1 (empty)", p, len);
	CHECK_EQ(sync_frames_current(f), 2);
	/* get() hands back the same bytes */
	p = sync_frames_get(f, 0, &len);
	REQUIRE(p);
	CHECK_EQ(len, 30);
	CHECK_EQ(p[5], 3);
	sync_frames_release(f);
}

TEST(frame_ring_by_count)
{
	sync_frames_t *f = frames(4, 1 << 20, 256);
	REQUIRE(f);
	sync_frames_add(f, 1, 0, 0);
	for (uint32_t i = 0; i < 10; i++) {
		char b[8];
		snprintf(b, sizeof b, "%u", i);
		input(f, 1, b);
		size_t len;
		REQUIRE(sync_frames_step(f, &len, NULL, NULL, NULL));
	}
	for (uint32_t i = 0; i < 12; i++) {
		size_t len = 0;
		const uint8_t *p = sync_frames_get(f, i, &len);
		if (i >= 6 && i < 10) {
			CHECK(p && get32(p + 1) == i && p[SYNC_FRAME_HDR + 6] == '0' + i);
		} else {
			CHECK(p == NULL);
		}
	}
	CHECK(sync_frames_get(f, 0xffffffffu, &(size_t){ 0 }) == NULL);
	struct sync_frames_stats st;
	sync_frames_stats(f, &st);
	CHECK_EQ(st.frames, 10);
	CHECK_EQ(st.stored, 4);
	CHECK_EQ(st.stored_bytes, 4 * (SYNC_FRAME_HDR + SYNC_INPUT_HDR + 1));
	sync_frames_release(f);
}

TEST(frame_ring_by_bytes)
{
	/* empty frames are 7 bytes: 4 fit in 30; a 20-byte frame (7 + 6 + 7)
	 * leaves room for one empty one before it */
	sync_frames_t *f = frames(256, 30, 256);
	size_t len;
	REQUIRE(f);
	sync_frames_add(f, 1, 0, 0);
	for (int i = 0; i < 6; i++)
		sync_frames_step(f, &len, NULL, NULL, NULL);
	CHECK(sync_frames_get(f, 1, &len) == NULL);
	CHECK(sync_frames_get(f, 2, &len) != NULL);
	CHECK(sync_frames_get(f, 5, &len) != NULL);
	input(f, 1, "1234567");
	sync_frames_step(f, &len, NULL, NULL, NULL);
	CHECK_EQ(len, 20);
	CHECK(sync_frames_get(f, 4, &len) == NULL);
	CHECK(sync_frames_get(f, 5, &len) != NULL);
	CHECK(sync_frames_get(f, 6, &len) != NULL);
	/* a frame larger than history_bytes by itself: kept alone */
	for (int i = 0; i < 5; i++)
		input(f, 1, "1234567");
	sync_frames_step(f, &len, NULL, NULL, NULL);
	CHECK_EQ(len, 7 + 5 * 13);
	CHECK(sync_frames_get(f, 6, &len) == NULL);
	CHECK(sync_frames_get(f, 7, &len) != NULL && len == 72);
	struct sync_frames_stats st;
	sync_frames_stats(f, &st);
	CHECK_EQ(st.stored, 1);
	CHECK_EQ(st.stored_bytes, 72);
	sync_frames_release(f);
}

TEST(frame_input_max)
{
	sync_frames_t *f = frames(256, 1 << 20, 4);
	size_t len;
	REQUIRE(f);
	sync_frames_add(f, 1, 0, 0);
	sync_frames_add(f, 2, 0, 0);
	CHECK_EQ(input(f, 1, "ab"), 0);
	CHECK_EQ(input(f, 1, "cd"), 0);
	CHECK_EQ(input(f, 1, "e"), SYNC_ETOOBIG);
	CHECK_EQ(input(f, 1, ""), SYNC_ETOOBIG); /* an empty one counts 1 */
	CHECK_EQ(input(f, 2, "abcde"), SYNC_ETOOBIG);
	CHECK_EQ(input(f, 2, ""), 0);
	CHECK_EQ(input(f, 2, "abc"), 0);
	sync_frames_step(f, &len, NULL, NULL, NULL);
	CHECK_EQ(len, SYNC_FRAME_HDR + 4 * SYNC_INPUT_HDR + 7);
	CHECK_EQ(input(f, 1, "abcd"), 0); /* a new frame, a new budget */
	struct sync_frames_stats st;
	sync_frames_stats(f, &st);
	CHECK_EQ(st.inputs, 5);
	CHECK_EQ(st.refused, 3);
	sync_frames_release(f);

	/* 65535 inputs fill a frame (its count is a u16) */
	f = frames(2, 1 << 20, 65535);
	REQUIRE(f);
	sync_frames_add(f, 1, 0, 0);
	sync_frames_add(f, 2, 0, 0);
	int fails = 0;
	for (int i = 0; i < 65535; i++)
		fails += input(f, 1, "") != 0;
	CHECK_EQ(fails, 0);
	CHECK_EQ(input(f, 1, ""), SYNC_ETOOBIG);
	CHECK_EQ(input(f, 2, "x"), SYNC_EFULL);
	const uint8_t *p = sync_frames_step(f, &len, NULL, NULL, NULL);
	REQUIRE(p);
	CHECK_EQ(get16(p + 5), 65535);
	CHECK_EQ(len, SYNC_FRAME_HDR + 65535 * SYNC_INPUT_HDR);
	sync_frames_release(f);

	struct sync_frames_config c;
	sync_frames_config_default(&c);
	c.input_max = 65536;
	CHECK(sync_frames_create(&c) == NULL);
	sync_frames_config_default(&c);
	c.history = 0;
	CHECK(sync_frames_create(&c) == NULL);
}

TEST(frame_members)
{
	struct sync_frames_config c;
	sync_frames_config_default(&c);
	c.members_max = 2;
	sync_frames_t *f = sync_frames_create(&c);
	size_t len;
	REQUIRE(f);
	CHECK_EQ(sync_frames_add(f, 1, 0, 0), 0);
	CHECK_EQ(sync_frames_add(f, 2, 0, 0), 0);
	CHECK_EQ(sync_frames_add(f, 3, 0, 0), SYNC_EFULL);
	/* a member removed mid-frame takes its inputs with it */
	input(f, 1, "a");
	input(f, 2, "bb");
	input(f, 1, "c");
	CHECK_EQ(sync_frames_remove(f, 1), 0);
	CHECK_EQ(sync_frames_remove(f, 1), SYNC_ENOMEMBER);
	CHECK_EQ(sync_frames_add(f, 3, 0, 0), 0);
	input(f, 3, "d");
	const uint8_t *p = sync_frames_step(f, &len, NULL, NULL, NULL);
	uint8_t want[64];
	size_t n = tu_unhex("46 00 00 00 00 02 00 02 00 00 00 02 00 62 62 03"
	                    "00 00 00 01 00 64", want, sizeof want);
	REQUIRE_EQ(len, n);
	CHECK_MEM(p, want, n);
	uint32_t next = 0;
	CHECK_EQ(sync_frames_member(f, 3, &next, NULL), 0);
	CHECK_EQ(next, 0); /* not sent: no out */
	CHECK_EQ(sync_frames_member(f, 1, &next, NULL), SYNC_ENOMEMBER);
	sync_frames_release(f);
}

TEST(frame_send_and_catch_up)
{
	sync_frames_t *f = frames(4, 1 << 20, 256);
	struct fsink s = { 0 };
	size_t len;
	uint32_t sent, next;
	REQUIRE(f);
	sync_frames_add(f, 1, 0, 0);
	sync_frames_add(f, 2, 0, 0);
	sync_frames_add(f, 3, 0, 5); /* joins at frame 5 */
	sync_frames_step(f, &len, fsink_out, &s, &sent);
	CHECK_EQ(sent, 2);
	s.refuse = 2; /* 2 is offline for frames 1 and 2 */
	sync_frames_step(f, &len, fsink_out, &s, &sent);
	CHECK_EQ(sent, 1);
	sync_frames_step(f, &len, fsink_out, &s, &sent);
	CHECK_EQ(sent, 1);
	s.refuse = 0;
	sync_frames_step(f, &len, fsink_out, &s, &sent); /* 3: 2 is still at 1 */
	CHECK_EQ(sent, 1);
	sync_frames_member(f, 2, &next, NULL);
	CHECK_EQ(next, 1);
	struct sync_frames_stats st;
	sync_frames_stats(f, &st);
	CHECK_EQ(st.behind, 1); /* 3 waits for 5: ahead, not behind */
	/* member 1 got 0..3 in order, 2 got only 0 */
	int k1 = 0, k2 = 0;
	for (int i = 0; i < s.n; i++) {
		if (s.id[i] == 1)
			CHECK_EQ(s.frame[i], (uint32_t)k1++);
		if (s.id[i] == 2)
			CHECK_EQ(s.frame[i], (uint32_t)k2++);
	}
	CHECK_EQ(k1, 4);
	CHECK_EQ(k2, 1);

	/* catch up: frames 1..3 in order, then it is current again */
	s.n = 0;
	CHECK_EQ(sync_frames_catch_up(f, 2, 0, 0, fsink_out, &s), 3);
	CHECK_EQ(s.n, 3);
	for (int i = 0; i < s.n; i++)
		CHECK(s.id[i] == 2 && s.frame[i] == (uint32_t)i + 1);
	sync_frames_member(f, 2, &next, NULL);
	CHECK_EQ(next, 4);
	CHECK_EQ(sync_frames_catch_up(f, 2, 0, 0, fsink_out, &s), 0);
	sync_frames_step(f, &len, fsink_out, &s, &sent); /* 4 */
	CHECK_EQ(sent, 2);
	sync_frames_step(f, &len, fsink_out, &s, &sent); /* 5: 3 joins */
	CHECK_EQ(sent, 3);
	/* stored now: 2..5. From 1: evicted, nothing sent, next unchanged */
	s.n = 0;
	CHECK_EQ(sync_frames_catch_up(f, 1, 1, 1, fsink_out, &s), SYNC_EEVICTED);
	CHECK_EQ(sync_frames_catch_up(f, 1, 1, 0xfffffff0u, fsink_out, &s),
	         SYNC_EEVICTED);
	CHECK_EQ(s.n, 0);
	sync_frames_member(f, 1, &next, NULL);
	CHECK_EQ(next, 6);
	CHECK_EQ(sync_frames_catch_up(f, 1, 1, 7, fsink_out, &s), SYNC_EAHEAD);
	CHECK_EQ(sync_frames_catch_up(f, 9, 0, 0, fsink_out, &s), SYNC_ENOMEMBER);
	/* from 2 explicitly: resends 2..5 */
	CHECK_EQ(sync_frames_catch_up(f, 1, 1, 2, fsink_out, &s), 4);
	CHECK(s.n == 4 && s.frame[0] == 2 && s.frame[3] == 5);
	/* a send that fails midway leaves next there */
	s.n = 0;
	sync_frames_add(f, 2, 0, 3);
	s.refuse = 2;
	CHECK_EQ(sync_frames_catch_up(f, 2, 0, 0, fsink_out, &s), 0);
	sync_frames_member(f, 2, &next, NULL);
	CHECK_EQ(next, 3);
	sync_frames_stats(f, &st);
	CHECK_EQ(st.behind, 1);
	CHECK_EQ(st.catch_ups, 4);
	CHECK(!strcmp(sync_strerror(SYNC_EEVICTED), "too far behind"));
	sync_frames_release(f);
}

static const struct tu_test tests[] = {
	TU(relay_newest_wins),
	TU(relay_stale_refused),
	TU(relay_order_across_sessions),
	TU(relay_wraparound_seq),
	TU(relay_too_big),
	TU(relay_members_max),
	TU(relay_grid),
	TU(relay_filter),
	TU(relay_split),
	TU(relay_split_count),
	TU(state_vector),
	TU(frame_vector),
	TU(frame_ring_by_count),
	TU(frame_ring_by_bytes),
	TU(frame_input_max),
	TU(frame_members),
	TU(frame_send_and_catch_up),
};

int
main(int argc, char **argv)
{
	return tu_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
