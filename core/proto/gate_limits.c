/*
 * gate_limits.c - what one source, or everybody, may hold: raw KCP
 * sessions per source and in all, half-open sessions (gate.h, the
 * config). The queued-bytes budget closes sessions, so it lives with the
 * session tables in gate.c.
 */
#include <stdio.h>
#include <string.h>

#include "gate_int.h"

/* The source of a raw datagram: an IPv4 address or an IPv6 /64 (one host
 * has a /64 to spoof from), keyed so that an attacker cannot aim at a
 * map bucket. */
static uint64_t
src_key(const gate_t *g, const struct gate_path *p)
{
	uint8_t b[19], k[9];
	size_t n = path_addr_bytes(p, b), kn = 1;
	k[0] = b[0];
	if (n == 7) {
		memcpy(k + 1, b + 3, 4), kn = 5;
	} else if (n == 19) {
		static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		                                      0xff, 0xff };
		if (!memcmp(b + 3, v4mapped, 12))
			k[0] = 4, memcpy(k + 1, b + 15, 4), kn = 5;
		else
			memcpy(k + 1, b + 3, 8), kn = 9;
	}
	return gate_keyed_hash(g, k, kn);
}

static uint32_t
src_count(const gate_t *g, uint64_t key)
{
	return (uint32_t)(uintptr_t)map_get(&g->by_src, key);
}

void
gate_src_take(gate_t *g, const struct gate_path *from, struct entry *e)
{
	uint64_t key = src_key(g, from);
	uint32_t k = src_count(g, key);
	/* the count is the value: never 0 (NULL) while the entry exists */
	if (!map_put(&g->by_src, key, (void *)(uintptr_t)(k + 1)))
		e->src_key = key;
}

void
gate_src_give(gate_t *g, uint64_t key)
{
	uint32_t k = src_count(g, key);
	if (k <= 1)
		map_del(&g->by_src, key);
	else
		map_replace(&g->by_src, key, (void *)(uintptr_t)(k - 1));
}

static int
refused_by(gate_t *g, const struct gate_path *from, struct gate_verdict *v,
           const char *reason, const char *key)
{
	v->code = SESSION_CLOSE_REFUSED;
	snprintf(v->reason, sizeof v->reason, "%s", reason);
	if (g->cb.limited)
		g->cb.limited(g, from, key, g->user);
	return -1;
}

/* gate_int.h */
int
gate_limit_refuses(gate_t *g, const struct gate_path *from, struct gate_verdict *v)
{
	const struct gate_config *c = &g->cfg;
	if (from->raw) {
		uint64_t max = c->max_raw_sessions > 0
		               ? (uint64_t)c->max_raw_sessions
		               : (uint64_t)c->max_sessions / 4 + 1;
		if (g->st.raw_sessions >= max) {
			g->st.raw_refused++;
			return refused_by(g, from, v, "server full",
			                  "gate.max_raw_sessions");
		}
		if (c->max_raw_per_addr > 0 &&
		    src_count(g, src_key(g, from)) >= (uint32_t)c->max_raw_per_addr) {
			g->st.raw_refused++;
			return refused_by(g, from, v, "too many sessions from your address",
			                  "gate.max_raw_per_addr");
		}
		return 0;
	}
	if (c->max_half_open > 0 && g->st.half_open >= (uint64_t)c->max_half_open) {
		g->st.half_open_refused++;
		return refused_by(g, from, v, "server busy: try again in a moment",
		                  "gate.max_half_open");
	}
	return 0;
}

