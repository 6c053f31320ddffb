/*
 * fuzz_sync.c - libFuzzer target: the state relay and the frame history
 * (core/proto/sync.c) driven by untrusted operations, every datagram and
 * frame they build read back by a decoder of the layouts in sync.h and
 * docs/PROTOCOL.md ("Game service payloads") and checked against a model.
 * (The C side only builds payloads; the client's decoder is Lua,
 * lualib/moongate/sync.lua, fuzzed by test/fuzz/fuzz_lua.lua.)
 *
 * Built two ways (see CMakeLists.txt): with clang -fsanitize=fuzzer,
 * address,undefined (MOONGATE_FUZZ), and with -DFUZZ_REPLAY_MAIN as a
 * plain program (ctest fuzz_sync_corpus) that replays test/fuzz/
 * corpus_sync. `fuzz_sync_replay --seeds DIR` writes that corpus.
 *
 * Input: byte 0 bit 0: 0 relay, 1 frames; bytes 1..4 the config; then
 * operations, an op byte's low 3 bits choose, its high 5 bits a; ids are
 * a % 12 (so members come and go; the relay's member ids are wid[id],
 * one at each edge of the varint sizes), every other argument is the next
 * input byte(s) (0 past the end):
 *   relay:  0 ADD id tag   1 REMOVE id   2 PUT id dseq len data
 *           3 POSITION id x y (bytes; 0x80 is NaN, 0x81 infinity)
 *           4 UNPOSITION id   5..7 FLUSH (room and filter from a byte)
 *   frames: 0 ADD id tag back  1 REMOVE id  2 INPUT id len data
 *           3..4 STEP (out refuses ids in a byte's mask)
 *           5 CATCH_UP id has_from back   6 GET back   7 STATS
 *
 * Checks (abort() on failure):
 *  - every return is what the model says (add/remove/put/input/position);
 *  - a flush sends each receiver only datagrams within its room, each a
 *    well-formed bundle of the current tick (minimal varints) whose
 *    states are pending states of other members (id, bytes), none twice,
 *    each newer (its tick) than the last one the receiver got from that
 *    member; with no room, grid or filter limits, each receiver gets every
 *    other pending state;
 *  - a step's frame is the frame number, then exactly the inputs accepted
 *    since the last step, grouped by member in order of first input;
 *    members whose next frame it was and that took it move on; catch_up
 *    sends stored frames in order (those of sync_frames_get).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync.h"

static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_sync: check failed: %s "      \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

#define IDS 12

struct in {
	const uint8_t *p;
	size_t n, i;
};

static unsigned
byte(struct in *in)
{
	return in->i < in->n ? in->p[in->i++] : 0;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static unsigned
get16(const uint8_t *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/* A varint (LEB128) of at most max bytes at p[0..n), at most lim, no
 * needless last byte 0: the bytes taken, or 0. */
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

/* ---- the relay ------------------------------------------------------------- */

/* The relay's id of model member k: the edges of the 1..5-byte varints */
static const uint32_t wid[IDS] = {
	0, 1, 127, 128, 300, 16383, 16384, 2097151, 2097152, 268435455,
	268435456, 0xffffffffu,
};

/* The model member of a relay id, or IDS. */
static uint32_t
idx(uint32_t id)
{
	uint32_t k = 0;
	while (k < IDS && wid[k] != id)
		k++;
	return k;
}

static struct rm {
	int member, has_seq, pending, has_pos;
	uint32_t tag, seq;
	size_t len;
	uint8_t data[1200];
	uint8_t seen_by[IDS]; /* this flush: receiver k got it */
	uint8_t had_tick[IDS]; /* receiver k got a state of it, at last_tick[k] */
	uint32_t last_tick[IDS];
} rm[IDS];

static struct {
	struct sync_relay_config cfg;
	uint32_t tick;
	unsigned room_byte, filter_byte, out_byte;
	int limited;          /* room, filter or grid may hold states back */
	unsigned sent;
} rl;

static size_t
relay_room(uint32_t wire, uint32_t tag, void *user)
{
	uint32_t id = idx(wire);
	(void)user;
	CHECK(id < IDS && rm[id].member && rm[id].tag == tag);
	if ((rl.room_byte >> (id % 8)) & 1)
		return id == 3 ? 0 : 60 + id * 7;
	return rl.cfg.dgram_max + 1000;
}

static uint32_t
relay_filter(uint32_t receiver, uint32_t *ids, uint32_t n, uint32_t cap,
             void *user)
{
	(void)user;
	receiver = idx(receiver);
	CHECK(receiver < IDS && n <= cap && cap >= rl.cfg.members_max);
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = idx(ids[i]);
		CHECK(j < IDS && j != receiver && rm[j].member);
		if (!((rl.filter_byte >> (j % 8)) & 1))
			ids[k++] = ids[i];
	}
	if (rl.filter_byte & 0x80 && k < cap) { /* a repeat, or a stranger */
		ids[k] = k ? ids[0] : 1000;
		k++;
	}
	return k;
}

static int
relay_output(uint32_t receiver, uint32_t tag, const uint8_t *d, size_t len,
             void *user)
{
	(void)user;
	CHECK(len <= rl.cfg.dgram_max && len <= relay_room(receiver, tag, NULL));
	receiver = idx(receiver);
	CHECK(receiver < IDS && rm[receiver].member && rm[receiver].tag == tag);
	CHECK(len >= SYNC_STATES_HDR && d[0] == SYNC_STATES);
	CHECK(get32(d + 1) == rl.tick);
	unsigned count = d[5];
	CHECK(count >= 1);
	size_t off = SYNC_STATES_HDR;
	for (unsigned k = 0; k < count; k++) {
		uint32_t wire, l;
		size_t a = getvar(d + off, len - off, 5, UINT32_MAX, &wire), b;
		CHECK(a > 0);
		b = getvar(d + off + a, len - off - a, 3, 65535, &l);
		CHECK(b > 0 && a + b <= SYNC_STATE_HDR_MAX);
		off += a + b;
		CHECK(off + l <= len);
		uint32_t id = idx(wire);
		CHECK(id < IDS && id != receiver && rm[id].member && rm[id].pending);
		CHECK(rm[id].len == l);
		CHECK(l == 0 || memcmp(rm[id].data, d + off, l) == 0);
		CHECK(!rm[id].seen_by[receiver]);
		rm[id].seen_by[receiver] = 1;
		/* its number, the tick, is newer than the last one from id */
		CHECK(!rm[id].had_tick[receiver] ||
		      (int32_t)(rl.tick - rm[id].last_tick[receiver]) > 0);
		rm[id].had_tick[receiver] = 1;
		rm[id].last_tick[receiver] = rl.tick;
		off += l;
	}
	CHECK(off == len);
	if ((rl.out_byte >> (receiver % 8)) & 1)
		return -1; /* not sent: not counted */
	rl.sent++;
	return 0;
}

static void
relay_ops(struct in *in)
{
	struct sync_relay_config *c = &rl.cfg;
	sync_relay_config_default(c);
	c->members_max = 1 + byte(in) % 8;
	c->dgram_max = 40 + byte(in) * 4;
	c->entry_max = c->dgram_max - SYNC_STATES_HDR - SYNC_STATE_HDR_MAX -
	               byte(in) % 20;
	unsigned g = byte(in);
	c->cell = (g & 3) ? (g & 3) * 10.0 : 0;
	c->radius = (g >> 2) & 3;
	sync_relay_t *r = sync_relay_create(c);
	CHECK(r != NULL);
	memset(rm, 0, sizeof rm);
	rl.tick = 0;
	unsigned nmembers = 0;

	while (in->i < in->n) {
		unsigned op = byte(in), a = op >> 3;
		uint32_t id = a % IDS;
		struct rm *m = &rm[id];
		int rc;
		switch (op & 7) {
		case 0: {
			uint32_t tag = byte(in) & 3;
			rc = sync_relay_add(r, wid[id], tag);
			if (m->member) {
				CHECK(rc == 0);
				if (tag != m->tag)
					m->has_seq = 0;
				m->tag = tag;
			} else if (nmembers >= c->members_max) {
				CHECK(rc == SYNC_EFULL);
			} else {
				CHECK(rc == 0);
				/* what receivers got from it stays: a member that
				 * comes back is numbered on (the tick) */
				uint8_t had[IDS];
				uint32_t last[IDS];
				memcpy(had, m->had_tick, sizeof had);
				memcpy(last, m->last_tick, sizeof last);
				memset(m, 0, sizeof *m);
				memcpy(m->had_tick, had, sizeof had);
				memcpy(m->last_tick, last, sizeof last);
				m->member = 1;
				m->tag = tag;
				nmembers++;
			}
			break;
		}
		case 1:
			rc = sync_relay_remove(r, wid[id]);
			CHECK(rc == (m->member ? 0 : SYNC_ENOMEMBER));
			if (m->member)
				nmembers--;
			m->member = m->pending = 0;
			break;
		case 2: {
			int8_t d = (int8_t)byte(in);
			uint32_t seq = (m->has_seq ? m->seq : 0) + (uint32_t)(int32_t)d;
			if (d == -128)
				seq = 0x80000000u + m->seq; /* exactly half way */
			size_t len = byte(in) * 5;
			uint8_t data[1300];
			size_t take = len < in->n - in->i ? len : in->n - in->i;
			memset(data, 0x33, len);
			memcpy(data, in->p + in->i, take);
			in->i += take;
			rc = sync_relay_put(r, wid[id], seq, data, len);
			if (!m->member)
				CHECK(rc == SYNC_ENOMEMBER);
			else if (len > c->entry_max)
				CHECK(rc == SYNC_ETOOBIG);
			else if (m->has_seq && (int32_t)(seq - m->seq) <= 0)
				CHECK(rc == SYNC_ESTALE);
			else {
				CHECK(rc == 0);
				m->seq = seq;
				m->has_seq = m->pending = 1;
				m->len = len;
				memcpy(m->data, data, len);
			}
			break;
		}
		case 3: {
			unsigned bx = byte(in), by = byte(in);
			double x = bx == 0x80 ? NAN : bx == 0x81 ? INFINITY :
			           (double)(int8_t)bx * 3.7;
			double y = by == 0x80 ? NAN : by == 0x81 ? -INFINITY :
			           (double)(int8_t)by * 2.9;
			rc = sync_relay_position(r, wid[id], x, y);
			if (!m->member)
				CHECK(rc == SYNC_ENOMEMBER);
			else if (!isfinite(x) || !isfinite(y))
				CHECK(rc == SYNC_EINVAL);
			else {
				CHECK(rc == 0);
				m->has_pos = 1;
			}
			break;
		}
		case 4:
			rc = sync_relay_unposition(r, wid[id]);
			CHECK(rc == (m->member ? 0 : SYNC_ENOMEMBER));
			m->has_pos = 0;
			break;
		default: {
			unsigned how = byte(in);
			rl.room_byte = how & 1 ? byte(in) : 0;
			rl.filter_byte = how & 2 ? byte(in) : 0;
			rl.out_byte = how & 4 ? byte(in) : 0;
			struct sync_relay_io io = {
				how & 1 ? relay_room : NULL,
				how & 2 ? relay_filter : NULL, relay_output, NULL,
			};
			for (int k = 0; k < IDS; k++)
				memset(rm[k].seen_by, 0, sizeof rm[k].seen_by);
			rl.sent = 0;
			uint32_t n = sync_relay_flush(r, &io);
			CHECK(n == rl.sent);
			int open = !(how & 3) && c->cell == 0;
			for (int s = 0; s < IDS; s++) {
				for (int k = 0; open && k < IDS; k++) {
					/* every other pending state reached k */
					if (s != k && rm[s].member && rm[s].pending &&
					    rm[k].member)
						CHECK(rm[s].seen_by[k]);
				}
				rm[s].pending = 0;
			}
			rl.tick++;
			struct sync_relay_stats st;
			sync_relay_stats(r, &st);
			CHECK(st.tick == rl.tick && st.members == nmembers);
			break;
		}
		}
	}
	sync_relay_release(r);
}

/* ---- the frame history ------------------------------------------------------ */

static struct fm {
	int member;
	uint32_t tag, next;
	size_t cost;
} fm[IDS];

/* the inputs of the frame being collected, in order of arrival */
static struct fin {
	uint32_t id;
	size_t len;
	uint8_t data[256];
} fin[4096];
static size_t nfin;

static struct {
	unsigned refuse_mask;
	uint32_t frame;       /* the frame a step is sending */
	int catching;         /* catch_up: the next frame expected */
	uint32_t expect;
	uint32_t who;
} fr;

static int
frames_out(uint32_t id, uint32_t tag, const uint8_t *p, size_t len, void *user)
{
	sync_frames_t *f = user;
	CHECK(id < IDS && fm[id].member && fm[id].tag == tag);
	CHECK(len >= SYNC_FRAME_HDR && p[0] == SYNC_FRAME);
	size_t glen;
	const uint8_t *g = sync_frames_get(f, get32(p + 1), &glen);
	CHECK(g == p && glen == len);
	if (fr.catching) {
		CHECK(id == fr.who && get32(p + 1) == fr.expect);
		fr.expect++;
	} else {
		CHECK(get32(p + 1) == fr.frame && fm[id].next == fr.frame);
	}
	return (fr.refuse_mask >> (id % 8)) & 1;
}

static void
check_frame(const uint8_t *p, size_t len, uint32_t frame)
{
	CHECK(len >= SYNC_FRAME_HDR && p[0] == SYNC_FRAME);
	CHECK(get32(p + 1) == frame);
	size_t count = get16(p + 5), off = SYNC_FRAME_HDR, k = 0;
	CHECK(count == nfin);
	/* grouped by member, members in order of their first input */
	uint32_t order[IDS];
	size_t norder = 0;
	for (size_t i = 0; i < nfin; i++) {
		size_t j;
		for (j = 0; j < norder && order[j] != fin[i].id; j++)
			;
		if (j == norder)
			order[norder++] = fin[i].id;
	}
	for (size_t o = 0; o < norder; o++) {
		for (size_t i = 0; i < nfin; i++) {
			if (fin[i].id != order[o])
				continue;
			CHECK(off + SYNC_INPUT_HDR <= len);
			CHECK(get32(p + off) == fin[i].id);
			CHECK(get16(p + off + 4) == fin[i].len);
			off += SYNC_INPUT_HDR;
			CHECK(off + fin[i].len <= len);
			CHECK(memcmp(p + off, fin[i].data, fin[i].len) == 0);
			off += fin[i].len;
			k++;
		}
	}
	CHECK(k == count && off == len);
}

static void
frames_ops(struct in *in)
{
	struct sync_frames_config c;
	sync_frames_config_default(&c);
	c.history = 1 + byte(in) % 8;
	c.history_bytes = 16 + byte(in) * 8;
	c.input_max = 1 + byte(in) % 64;
	c.members_max = 1 + byte(in) % 8;
	sync_frames_t *f = sync_frames_create(&c);
	CHECK(f != NULL);
	memset(fm, 0, sizeof fm);
	nfin = 0;
	unsigned nmembers = 0;
	uint32_t cur = 0;

	while (in->i < in->n) {
		unsigned op = byte(in), a = op >> 3;
		uint32_t id = a % IDS;
		struct fm *m = &fm[id];
		int rc;
		switch (op & 7) {
		case 0: {
			uint32_t tag = byte(in) & 3, next = cur - byte(in) % 4;
			rc = sync_frames_add(f, id, tag, next);
			if (!m->member && nmembers >= c.members_max) {
				CHECK(rc == SYNC_EFULL);
				break;
			}
			CHECK(rc == 0);
			if (!m->member)
				nmembers++, m->cost = 0;
			m->member = 1;
			m->tag = tag;
			m->next = next;
			break;
		}
		case 1: {
			rc = sync_frames_remove(f, id);
			CHECK(rc == (m->member ? 0 : SYNC_ENOMEMBER));
			if (m->member)
				nmembers--;
			m->member = 0;
			size_t k = 0;
			for (size_t i = 0; i < nfin; i++)
				if (fin[i].id != id)
					fin[k++] = fin[i];
			nfin = k;
			break;
		}
		case 2: {
			size_t len = byte(in) % 70;
			uint8_t data[70];
			size_t take = len < in->n - in->i ? len : in->n - in->i;
			memset(data, 0x44, len);
			memcpy(data, in->p + in->i, take);
			in->i += take;
			rc = sync_frames_input(f, id, data, len);
			size_t cost = len ? len : 1;
			if (!m->member) {
				CHECK(rc == SYNC_ENOMEMBER);
			} else if (cost > c.input_max - m->cost) {
				CHECK(rc == SYNC_ETOOBIG);
			} else {
				CHECK(rc == 0 && nfin < sizeof fin / sizeof fin[0]);
				m->cost += cost;
				fin[nfin].id = id;
				fin[nfin].len = len;
				memcpy(fin[nfin].data, data, len);
				nfin++;
			}
			break;
		}
		case 3:
		case 4: {
			fr.refuse_mask = byte(in);
			fr.frame = cur;
			fr.catching = 0;
			CHECK(sync_frames_current(f) == cur);
			size_t len;
			uint32_t sent = 12345, took = 0;
			const uint8_t *p = sync_frames_step(f, &len, frames_out, f,
			                                    &sent);
			CHECK(p != NULL);
			check_frame(p, len, cur);
			for (int k = 0; k < IDS; k++) {
				if (fm[k].member && fm[k].next == cur &&
				    !((fr.refuse_mask >> (k % 8)) & 1))
					fm[k].next = cur + 1, took++;
				fm[k].cost = 0;
			}
			CHECK(sent == took);
			nfin = 0;
			cur++;
			break;
		}
		case 5: {
			int has_from = byte(in) & 1;
			uint32_t from = cur - byte(in) % 12;
			uint32_t first = has_from ? from : m->next;
			size_t len;
			int stored = sync_frames_get(f, first, &len) != NULL;
			fr.refuse_mask = byte(in);
			fr.catching = 1;
			fr.who = id;
			fr.expect = first;
			rc = sync_frames_catch_up(f, id, has_from, from, frames_out, f);
			fr.catching = 0;
			if (!m->member) {
				CHECK(rc == SYNC_ENOMEMBER);
			} else if ((int32_t)(first - cur) > 0) {
				CHECK(rc == SYNC_EAHEAD);
			} else if (first != cur && !stored) {
				CHECK(rc == SYNC_EEVICTED);
			} else {
				/* out refuses by id: the first frame offered, or
				 * none; all or nothing moves */
				if (((fr.refuse_mask >> (id % 8)) & 1) && first != cur) {
					CHECK(rc == 0);
					m->next = first;
				} else {
					CHECK(rc == (int)(cur - first));
					m->next = cur;
				}
				uint32_t next;
				CHECK(sync_frames_member(f, id, &next, NULL) == 0);
				CHECK(next == m->next);
			}
			break;
		}
		case 6: {
			size_t len;
			uint32_t frame = cur - byte(in) % 12;
			const uint8_t *p = sync_frames_get(f, frame, &len);
			if (frame == cur)
				CHECK(p == NULL);
			if (p)
				CHECK(len >= SYNC_FRAME_HDR && get32(p + 1) == frame);
			break;
		}
		default: {
			struct sync_frames_stats st;
			sync_frames_stats(f, &st);
			CHECK(st.members == nmembers);
			CHECK(st.stored <= c.history);
			break;
		}
		}
		for (int k = 0; k < IDS; k++) {
			uint32_t next, tag;
			rc = sync_frames_member(f, (uint32_t)k, &next, &tag);
			CHECK(rc == (fm[k].member ? 0 : SYNC_ENOMEMBER));
			if (fm[k].member)
				CHECK(next == fm[k].next && tag == fm[k].tag);
		}
	}
	sync_frames_release(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 20000)
		return 0;
	struct in in = { data + 1, size - 1, 0 };
	if (data[0] & 1)
		frames_ops(&in);
	else
		relay_ops(&in);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
/* Replay driver (test/fuzz/replay.h): fuzz_sync_replay [--mutations N]
 * FILE|DIR...; fuzz_sync_replay --seeds DIR writes the seed corpus. */
#define FUZZ_FIXUP(mut, buf, m) do { if (((m) & 7) != 0) (mut)[0] = (buf)[0]; } while (0)
#include "replay.h"

static void
put_seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

#define ID(op, id) (uint8_t)((op) | (id) << 3)

int
main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds")) {
		const char *d = argv[2];
		/* relay: 4 members, puts, a flush open to all, a stale put,
		 * positions on a grid, flush with room/filter/refusals */
		static const uint8_t relay[] = {
			0, 5, 60, 3, 0,
			ID(0, 1), 0, ID(0, 2), 1, ID(0, 3), 0, ID(0, 4), 2,
			ID(2, 1), 1, 2, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j',
			ID(2, 2), 3, 1, 'x', 'y', 'z', 'w', 'v',
			ID(2, 3), 1, 0, ID(2, 1), 0xff, 1, 'q', 'q', 'q', 'q', 'q',
			ID(5, 0), 0,
			ID(2, 4), 1, 100, ID(3, 1), 10, 20, ID(3, 2), 0x80, 1,
			ID(2, 1), 2, 1, 1, 2, 3, 4, 5, ID(5, 0), 7, 0x29, 0x06, 0x04,
			ID(1, 2), ID(4, 1), ID(0, 1), 3, ID(2, 1), 0x80, 0, ID(5, 0), 0,
		};
		put_seed(d, "seed_relay", relay, sizeof relay);
		static const uint8_t grid[] = {
			0, 7, 255, 0, 1 | 1 << 2,
			ID(0, 1), 0, ID(0, 2), 0, ID(0, 3), 0,
			ID(3, 1), 0, 0, ID(3, 2), 3, 0, ID(3, 3), 100, 100,
			ID(2, 1), 1, 1, 'A', 'A', 'A', 'A', 'A',
			ID(2, 2), 1, 1, 'B', 'B', 'B', 'B', 'B',
			ID(2, 3), 1, 1, 'C', 'C', 'C', 'C', 'C', ID(5, 0), 0,
		};
		put_seed(d, "seed_relay_grid", grid, sizeof grid);
		/* frames: members, inputs, steps with refusals, catch-ups */
		static const uint8_t frames[] = {
			1, 3, 20, 9, 4,
			ID(0, 1), 0, 0, ID(0, 2), 1, 0,
			ID(2, 1), 3, 'a', 'b', 'c', ID(2, 2), 0, ID(2, 1), 2, 'd', 'e',
			ID(3, 0), 0, ID(2, 2), 9, 1, 2, 3, 4, 5, 6, 7, 8, 9,
			ID(2, 2), 5, 1, 2, 3, 4, 5, ID(3, 0), 0x04,
			ID(3, 0), 0x04, ID(3, 0), 0, ID(5, 2), 0, 0, 0,
			ID(6, 0), 1, ID(0, 3), 2, 3, ID(2, 3), 1, 'z', ID(1, 3),
			ID(5, 1), 1, 4, 0x02, ID(3, 0), 0, ID(7, 0), ID(4, 0), 0,
			ID(5, 5), 0, 0, 0,
		};
		put_seed(d, "seed_frames", frames, sizeof frames);
		return 0;
	}
	return fuzz_replay_main(argc, argv, "fuzz_sync");
}
#endif
