/*
 * sync.c - the state relay and the frame history; see sync.h.
 *
 * Both keep members in a dense array (a removal moves the last member into
 * the hole) found by id through a map (key id + 1: the map reserves 0).
 * Every array is allocated at create or grows by doubling up to its bound
 * (members_max, history); a flush and a step allocate nothing per member.
 */
#include "sync.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

const char *
sync_strerror(int err)
{
	switch (err) {
	case SYNC_ESTALE: return "stale";
	case SYNC_ETOOBIG: return "too big";
	case SYNC_ENOMEMBER: return "not a member";
	case SYNC_EFULL: return "full";
	case SYNC_ENOMEM: return "out of memory";
	case SYNC_EINVAL: return "invalid";
	case SYNC_EEVICTED: return "too far behind";
	case SYNC_EAHEAD: return "not made yet";
	default: return "error";
	}
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* LEB128: 7 bits a byte, low group first; returns the bytes written */
static size_t
putvar(uint8_t *p, uint32_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* a after b, in wraparound order */
static int
newer(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

/* The slot of id in a dense array, or -1. */
static int32_t
find(const struct map *ids, uint32_t id)
{
	void *v = map_get(ids, (uint64_t)id + 1);
	return v ? (int32_t)((uintptr_t)v - 1) : -1;
}

static int
bind(struct map *ids, uint32_t id, uint32_t slot)
{
	return map_put(ids, (uint64_t)id + 1, (void *)(uintptr_t)(slot + 1));
}

/* id moved to slot (a removal filled a hole): never fails, never allocates */
static void
rebind(struct map *ids, uint32_t id, uint32_t slot)
{
	map_replace(ids, (uint64_t)id + 1, (void *)(uintptr_t)(slot + 1));
}

/* ---- the state relay ------------------------------------------------------ */

struct rmember {
	uint32_t id, tag;
	uint32_t seq;        /* the last accepted (the pending one, if any) */
	uint32_t len;        /* of the pending entry: header and state */
	uint8_t idlen;       /* bytes of varint id at the start of data */
	uint32_t mark;       /* flush: stamped while a candidate of the filter */
	uint8_t has_seq;     /* a state was accepted since add (or a new tag) */
	uint8_t pending;     /* data holds a state not yet flushed */
	uint8_t has_pos;
	double x, y;
	double cx, cy;       /* its cell, computed once per flush */
	uint8_t *data;       /* the pending entry as a bundle carries it:
	                        varint id | varint len | state (entry_max +
	                        SYNC_STATE_HDR_MAX bytes) */
};

struct sync_relay {
	struct sync_relay_config cfg;
	struct rmember *m;
	uint32_t n, cap;
	struct map ids;      /* id + 1 -> slot + 1 */
	uint32_t *pend;      /* flush: slots with a pending state (members_max) */
	uint32_t *cand;      /* flush: one receiver's candidate slots */
	uint32_t *cids;      /* flush: their ids, for the filter (members_max) */
	uint8_t *scratch;    /* dgram_max: the datagram being built */
	uint32_t tick;
	uint32_t gen;        /* stamp for rmember.mark, never 0 */
	struct sync_relay_stats st;
};

void
sync_relay_config_default(struct sync_relay_config *c)
{
	c->members_max = 256;
	c->dgram_max = 1171; /* session_dgram_max with the default mtu */
	c->entry_max = c->dgram_max - SYNC_STATES_HDR - SYNC_STATE_HDR_MAX;
	c->cell = 0;
	c->radius = 1;
}

sync_relay_t *
sync_relay_create(const struct sync_relay_config *c)
{
	if (c->members_max < 1 || c->members_max > SYNC_MEMBERS_LIMIT ||
	    c->entry_max > 65535 || c->dgram_max > 65535 ||
	    c->dgram_max < c->entry_max + SYNC_STATES_HDR + SYNC_STATE_HDR_MAX ||
	    !(c->cell >= 0) || !isfinite(c->cell))
		return NULL;
	sync_relay_t *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->cfg = *c;
	map_init(&r->ids);
	r->gen = 1;
	size_t n = c->members_max;
	r->pend = malloc(n * sizeof *r->pend);
	r->cand = malloc(n * sizeof *r->cand);
	r->cids = malloc(n * sizeof *r->cids);
	r->scratch = malloc(c->dgram_max);
	if (!r->pend || !r->cand || !r->cids || !r->scratch) {
		sync_relay_release(r);
		return NULL;
	}
	return r;
}

void
sync_relay_release(sync_relay_t *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n; i++)
		free(r->m[i].data);
	free(r->m);
	map_clear(&r->ids);
	free(r->pend);
	free(r->cand);
	free(r->cids);
	free(r->scratch);
	free(r);
}

static struct rmember *
rmember(const sync_relay_t *r, uint32_t id)
{
	int32_t i = find(&r->ids, id);
	return i < 0 ? NULL : &r->m[i];
}

int
sync_relay_add(sync_relay_t *r, uint32_t id, uint32_t tag)
{
	struct rmember *m = rmember(r, id);
	if (m) {
		if (m->tag != tag)
			m->has_seq = 0;
		m->tag = tag;
		return 0;
	}
	if (r->n >= r->cfg.members_max)
		return SYNC_EFULL;
	if (r->n == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 8;
		if (cap > r->cfg.members_max)
			cap = r->cfg.members_max;
		struct rmember *a = realloc(r->m, cap * sizeof *a);
		if (!a)
			return SYNC_ENOMEM;
		r->m = a;
		r->cap = cap;
	}
	uint8_t *data = malloc(r->cfg.entry_max + SYNC_STATE_HDR_MAX);
	if (!data || bind(&r->ids, id, r->n)) {
		free(data);
		return SYNC_ENOMEM;
	}
	m = &r->m[r->n++];
	memset(m, 0, sizeof *m);
	m->id = id;
	m->tag = tag;
	m->data = data;
	m->idlen = (uint8_t)putvar(data, id);
	return 0;
}

int
sync_relay_remove(sync_relay_t *r, uint32_t id)
{
	int32_t i = find(&r->ids, id);
	if (i < 0)
		return SYNC_ENOMEMBER;
	map_del(&r->ids, (uint64_t)id + 1);
	free(r->m[i].data);
	if ((uint32_t)i != --r->n) {
		r->m[i] = r->m[r->n];
		rebind(&r->ids, r->m[i].id, (uint32_t)i);
	}
	return 0;
}

/* Put a state of member m (sync_relay_put). */
static int
relay_put_m(sync_relay_t *r, struct rmember *m, uint32_t seq,
            const void *data, size_t len)
{
	if (len > r->cfg.entry_max) {
		r->st.too_big++;
		return SYNC_ETOOBIG;
	}
	if (m->has_seq && !newer(seq, m->seq)) {
		r->st.stale++;
		return SYNC_ESTALE;
	}
	if (m->pending)
		r->st.superseded++;
	m->seq = seq;
	m->has_seq = 1;
	m->pending = 1;
	size_t h = m->idlen + putvar(m->data + m->idlen, (uint32_t)len);
	if (len)
		memcpy(m->data + h, data, len);
	m->len = (uint32_t)(h + len);
	r->st.puts++;
	return 0;
}

int
sync_relay_member_tag(const sync_relay_t *r, uint32_t id, uint32_t *tag)
{
	const struct rmember *m = rmember(r, id);
	if (!m)
		return SYNC_ENOMEMBER;
	*tag = m->tag;
	return 0;
}

int
sync_relay_put_tagged(sync_relay_t *r, uint32_t id, uint32_t tag,
                      uint32_t seq, const void *data, size_t len)
{
	struct rmember *m = rmember(r, id);
	if (!m || m->tag != tag)
		return SYNC_ENOMEMBER;
	return relay_put_m(r, m, seq, data, len);
}

int
sync_relay_put(sync_relay_t *r, uint32_t id, uint32_t seq, const void *data,
               size_t len)
{
	struct rmember *m = rmember(r, id);
	if (!m)
		return SYNC_ENOMEMBER;
	return relay_put_m(r, m, seq, data, len);
}


int
sync_relay_position(sync_relay_t *r, uint32_t id, double x, double y)
{
	struct rmember *m = rmember(r, id);
	if (!m)
		return SYNC_ENOMEMBER;
	if (!isfinite(x) || !isfinite(y))
		return SYNC_EINVAL;
	m->x = x;
	m->y = y;
	m->has_pos = 1;
	return 0;
}

int
sync_relay_unposition(sync_relay_t *r, uint32_t id)
{
	struct rmember *m = rmember(r, id);
	if (!m)
		return SYNC_ENOMEMBER;
	m->has_pos = 0;
	return 0;
}

/* Whether receiver a sees sender b on the grid. Cells stay doubles: a
 * coordinate far out cannot overflow an integer. */
static int
near(const sync_relay_t *r, const struct rmember *a, const struct rmember *b)
{
	if (r->cfg.cell <= 0 || !a->has_pos || !b->has_pos)
		return 1;
	return fabs(a->cx - b->cx) <= r->cfg.radius &&
	       fabs(a->cy - b->cy) <= r->cfg.radius;
}

/* Hand the bundle in scratch (used bytes, count states) to receiver m. */
static uint32_t
emit(sync_relay_t *r, const struct rmember *m, size_t used, uint32_t count,
     const struct sync_relay_io *io)
{
	uint8_t *b = r->scratch;
	b[0] = SYNC_STATES;
	put32(b + 1, r->tick);
	b[5] = (uint8_t)count;
	if (io->output(m->id, m->tag, b, used, io->user))
		return 0;
	r->st.datagrams++;
	r->st.bytes += used;
	r->st.relayed += count;
	return 1;
}

/* Pack the states of cand[0..nc) for receiver m into datagrams of at most
 * room bytes, in that order; returns the datagrams sent. */
static uint32_t
encode(sync_relay_t *r, const struct rmember *m, uint32_t nc, size_t room,
       const struct sync_relay_io *io)
{
	uint8_t *b = r->scratch;
	size_t used = SYNC_STATES_HDR;
	uint32_t count = 0, sent = 0;
	for (uint32_t k = 0; k < nc; k++) {
		const struct rmember *s = &r->m[r->cand[k]];
		size_t need = s->len; /* the entry, its header included */
		if (SYNC_STATES_HDR + need > room) {
			r->st.oversize++;
			continue;
		}
		if (count == SYNC_STATES_PER_DGRAM || used + need > room) {
			sent += emit(r, m, used, count, io);
			used = SYNC_STATES_HDR;
			count = 0;
		}
		memcpy(b + used, s->data, need);
		used += need;
		count++;
	}
	if (count)
		sent += emit(r, m, used, count, io);
	return sent;
}

/* Run the filter over cand[0..nc) for receiver m; returns the new nc. What
 * it returns is trusted only as far as it names candidates, once each. */
static uint32_t
filter(sync_relay_t *r, const struct rmember *m, uint32_t nc,
       const struct sync_relay_io *io)
{
	if (++r->gen == 0) { /* wrapped: no stale stamp may match */
		for (uint32_t i = 0; i < r->n; i++)
			r->m[i].mark = 0;
		r->gen = 1;
	}
	for (uint32_t k = 0; k < nc; k++) {
		r->m[r->cand[k]].mark = r->gen;
		r->cids[k] = r->m[r->cand[k]].id;
	}
	uint32_t cap = r->cfg.members_max;
	uint32_t keep = io->filter(m->id, r->cids, nc, cap, io->user);
	if (keep > cap)
		keep = cap;
	uint32_t out = 0;
	for (uint32_t k = 0; k < keep; k++) {
		int32_t i = find(&r->ids, r->cids[k]);
		if (i < 0 || r->m[i].mark != r->gen)
			continue;
		r->m[i].mark = 0; /* once */
		r->cand[out++] = (uint32_t)i;
	}
	return out;
}

uint32_t
sync_relay_flush(sync_relay_t *r, const struct sync_relay_io *io)
{
	uint32_t np = 0, sent = 0;
	int grid = r->cfg.cell > 0;
	for (uint32_t i = 0; i < r->n; i++) {
		struct rmember *m = &r->m[i];
		if (grid && m->has_pos) {
			m->cx = floor(m->x / r->cfg.cell);
			m->cy = floor(m->y / r->cfg.cell);
		}
		if (m->pending)
			r->pend[np++] = i;
	}
	/* Every receiver against every pending sender: O(members^2) compares
	 * of two cells, cheap at the sizes members_max is meant for. */
	for (uint32_t i = 0; np && i < r->n; i++) {
		const struct rmember *m = &r->m[i];
		size_t room = io->room ? io->room(m->id, m->tag, io->user)
		                       : r->cfg.dgram_max;
		if (room > r->cfg.dgram_max)
			room = r->cfg.dgram_max;
		if (room < SYNC_STATES_HDR + 2) /* the smallest entry */
			continue;
		uint32_t nc = 0;
		for (uint32_t k = 0; k < np; k++) {
			uint32_t j = r->pend[k];
			if (j != i && near(r, m, &r->m[j]))
				r->cand[nc++] = j;
		}
		if (nc && io->filter)
			nc = filter(r, m, nc, io);
		if (nc)
			sent += encode(r, m, nc, room, io);
	}
	for (uint32_t k = 0; k < np; k++)
		r->m[r->pend[k]].pending = 0;
	r->tick++;
	return sent;
}

void
sync_relay_stats(const sync_relay_t *r, struct sync_relay_stats *st)
{
	*st = r->st;
	st->tick = r->tick;
	st->members = r->n;
}

/* ---- the frame history ---------------------------------------------------- */

struct fmember {
	uint32_t id, tag;
	uint32_t next;       /* the frame it receives next */
	uint32_t cost;       /* input bytes this frame (each at least 1) */
	uint8_t listed;      /* in order[] this frame */
	uint8_t *buf;        /* this frame's inputs, encoded (id | len | data) */
	size_t used, cap;    /* cap <= (SYNC_INPUT_HDR + 1) * input_max */
};

struct fslot {
	uint8_t *p;
	size_t len;
};

struct sync_frames {
	struct sync_frames_config cfg;
	struct fmember *m;
	uint32_t n, cap;
	struct map ids;      /* id + 1 -> slot + 1 */
	uint32_t *order;     /* ids by their first input this frame (members_max) */
	uint32_t norder;
	uint32_t entries;    /* inputs in this frame */
	size_t bytes;        /* their encoded size */
	struct fslot *ring;  /* history slots */
	uint32_t head;       /* ring index of the oldest stored frame */
	uint32_t count;      /* frames stored: first .. cur - 1 */
	uint32_t first, cur; /* the oldest stored frame; the next to make */
	size_t stored;       /* bytes in the ring */
	struct sync_frames_stats st;
};

void
sync_frames_config_default(struct sync_frames_config *c)
{
	c->history = 256;
	c->history_bytes = 1 << 20;
	c->input_max = 256;
	c->members_max = 256;
}

sync_frames_t *
sync_frames_create(const struct sync_frames_config *c)
{
	if (c->history < 1 || c->history > SYNC_HISTORY_LIMIT ||
	    c->input_max < 1 || c->input_max > 65535 || c->members_max < 1 ||
	    c->members_max > SYNC_MEMBERS_LIMIT)
		return NULL;
	sync_frames_t *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->cfg = *c;
	map_init(&f->ids);
	f->order = malloc(c->members_max * sizeof *f->order);
	f->ring = calloc(c->history, sizeof *f->ring);
	if (!f->order || !f->ring) {
		sync_frames_release(f);
		return NULL;
	}
	return f;
}

void
sync_frames_release(sync_frames_t *f)
{
	if (!f)
		return;
	for (uint32_t i = 0; i < f->n; i++)
		free(f->m[i].buf);
	free(f->m);
	map_clear(&f->ids);
	free(f->order);
	if (f->ring)
		for (uint32_t k = 0; k < f->count; k++)
			free(f->ring[(f->head + k) % f->cfg.history].p);
	free(f->ring);
	free(f);
}

static struct fmember *
fmember(const sync_frames_t *f, uint32_t id)
{
	int32_t i = find(&f->ids, id);
	return i < 0 ? NULL : &f->m[i];
}

int
sync_frames_add(sync_frames_t *f, uint32_t id, uint32_t tag, uint32_t next)
{
	struct fmember *m = fmember(f, id);
	if (m) {
		m->tag = tag;
		m->next = next;
		return 0;
	}
	if (f->n >= f->cfg.members_max)
		return SYNC_EFULL;
	if (f->n == f->cap) {
		uint32_t cap = f->cap ? f->cap * 2 : 8;
		if (cap > f->cfg.members_max)
			cap = f->cfg.members_max;
		struct fmember *a = realloc(f->m, cap * sizeof *a);
		if (!a)
			return SYNC_ENOMEM;
		f->m = a;
		f->cap = cap;
	}
	if (bind(&f->ids, id, f->n))
		return SYNC_ENOMEM;
	m = &f->m[f->n++];
	memset(m, 0, sizeof *m);
	m->id = id;
	m->tag = tag;
	m->next = next;
	return 0;
}

int
sync_frames_remove(sync_frames_t *f, uint32_t id)
{
	int32_t i = find(&f->ids, id);
	if (i < 0)
		return SYNC_ENOMEMBER;
	struct fmember *m = &f->m[i];
	if (m->listed) { /* its inputs leave the frame being collected */
		for (uint32_t k = 0; k < f->norder; k++) {
			if (f->order[k] == id) {
				memmove(f->order + k, f->order + k + 1,
				        (f->norder - k - 1) * sizeof *f->order);
				f->norder--;
				break;
			}
		}
		f->bytes -= m->used;
		for (size_t off = 0; off < m->used;) { /* count what leaves */
			off += SYNC_INPUT_HDR + (m->buf[off + 4] | m->buf[off + 5] << 8);
			f->entries--;
		}
	}
	map_del(&f->ids, (uint64_t)id + 1);
	free(m->buf);
	if ((uint32_t)i != --f->n) {
		f->m[i] = f->m[f->n];
		rebind(&f->ids, f->m[i].id, (uint32_t)i);
	}
	return 0;
}

int
sync_frames_input(sync_frames_t *f, uint32_t id, const void *data, size_t len)
{
	struct fmember *m = fmember(f, id);
	if (!m)
		return SYNC_ENOMEMBER;
	size_t cost = len ? len : 1;
	if (cost > f->cfg.input_max - m->cost) {
		f->st.refused++;
		return SYNC_ETOOBIG;
	}
	if (f->entries >= SYNC_FRAME_ENTRIES) {
		f->st.refused++;
		return SYNC_EFULL;
	}
	size_t need = m->used + SYNC_INPUT_HDR + len;
	if (need > m->cap) { /* bounded: (SYNC_INPUT_HDR + 1) * input_max */
		size_t cap = m->cap ? m->cap : 64;
		while (cap < need)
			cap *= 2;
		uint8_t *b = realloc(m->buf, cap);
		if (!b)
			return SYNC_ENOMEM;
		m->buf = b;
		m->cap = cap;
	}
	if (!m->listed) {
		f->order[f->norder++] = id; /* at most one per member */
		m->listed = 1;
	}
	uint8_t *p = m->buf + m->used;
	put32(p, id);
	put16(p + 4, (uint16_t)len);
	if (len)
		memcpy(p + SYNC_INPUT_HDR, data, len);
	m->used = need;
	m->cost += (uint32_t)cost;
	f->entries++;
	f->bytes += SYNC_INPUT_HDR + len;
	f->st.inputs++;
	return 0;
}

/* Drop the oldest stored frame. */
static void
evict(sync_frames_t *f)
{
	struct fslot *s = &f->ring[f->head];
	f->stored -= s->len;
	free(s->p);
	s->p = NULL;
	s->len = 0;
	f->head = (f->head + 1) % f->cfg.history;
	f->count--;
	f->first++;
}

const uint8_t *
sync_frames_step(sync_frames_t *f, size_t *len, sync_frames_out out,
                 void *user, uint32_t *sent)
{
	size_t n = SYNC_FRAME_HDR + f->bytes;
	uint8_t *p = malloc(n);
	if (!p)
		return NULL;
	uint32_t frame = f->cur;
	p[0] = SYNC_FRAME;
	put32(p + 1, frame);
	put16(p + 5, (uint16_t)f->entries);
	size_t off = SYNC_FRAME_HDR;
	for (uint32_t k = 0; k < f->norder; k++) {
		struct fmember *m = fmember(f, f->order[k]);
		memcpy(p + off, m->buf, m->used);
		off += m->used;
		m->used = 0;
		m->cost = 0;
		m->listed = 0;
	}
	f->norder = 0;
	f->entries = 0;
	f->bytes = 0;

	/* keep it: the oldest go until both bounds hold, the newest stays */
	while (f->count && (f->count >= f->cfg.history ||
	                    f->stored + n > f->cfg.history_bytes))
		evict(f);
	if (!f->count)
		f->first = frame;
	struct fslot *s = &f->ring[(f->head + f->count) % f->cfg.history];
	s->p = p;
	s->len = n;
	f->count++;
	f->stored += n;
	f->cur = frame + 1;
	f->st.frames++;

	uint32_t took = 0;
	for (uint32_t i = 0; out && i < f->n; i++) {
		struct fmember *m = &f->m[i];
		if (m->next != frame || out(m->id, m->tag, p, n, user))
			continue;
		m->next = frame + 1;
		took++;
		f->st.sent++;
		f->st.bytes += n;
	}
	if (sent)
		*sent = took;
	*len = n;
	return p;
}

const uint8_t *
sync_frames_get(const sync_frames_t *f, uint32_t frame, size_t *len)
{
	uint32_t k = frame - f->first; /* wraps past the stored ones */
	if (k >= f->count)
		return NULL;
	const struct fslot *s = &f->ring[(f->head + k) % f->cfg.history];
	*len = s->len;
	return s->p;
}

uint32_t
sync_frames_current(const sync_frames_t *f)
{
	return f->cur;
}

int
sync_frames_member(const sync_frames_t *f, uint32_t id, uint32_t *next,
                   uint32_t *tag)
{
	const struct fmember *m = fmember(f, id);
	if (!m)
		return SYNC_ENOMEMBER;
	if (next)
		*next = m->next;
	if (tag)
		*tag = m->tag;
	return 0;
}

int
sync_frames_catch_up(sync_frames_t *f, uint32_t id, int has_from,
                     uint32_t from, sync_frames_out out, void *user)
{
	struct fmember *m = fmember(f, id);
	if (!m)
		return SYNC_ENOMEMBER;
	if (!has_from)
		from = m->next;
	if (newer(from, f->cur))
		return SYNC_EAHEAD;
	uint32_t missing = f->cur - from;
	if (missing && (uint32_t)(from - f->first) >= f->count)
		return SYNC_EEVICTED; /* checked first: all or nothing is sent */
	int sent = 0;
	uint32_t fr = from;
	for (; fr != f->cur; fr++) {
		size_t len = 0;
		const uint8_t *p = sync_frames_get(f, fr, &len); /* stored: checked */
		if (out(m->id, m->tag, p, len, user))
			break;
		sent++;
		f->st.sent++;
		f->st.bytes += len;
	}
	m->next = fr;
	f->st.catch_ups++;
	return sent;
}

void
sync_frames_stats(const sync_frames_t *f, struct sync_frames_stats *st)
{
	*st = f->st;
	st->behind = 0;
	for (uint32_t i = 0; i < f->n; i++)
		if (newer(f->cur, f->m[i].next))
			st->behind++;
	st->members = f->n;
	st->stored = f->count;
	st->stored_bytes = f->stored;
}
