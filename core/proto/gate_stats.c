/*
 * gate_stats.c - what the gate tells its observers (the console's
 * `stats`, the metrics endpoint: core/lua/observe.c): its counters, the
 * live sessions by state and transport, a walk of them, and what the
 * released ones counted. Reads only; the counting is gate.c's. See
 * gate.h.
 */
#include <string.h>

#include "gate_int.h"

void
gate_retired_add(struct gate_retired *r, const session_t *s,
                 struct session_stats *out)
{
	struct session_stats st;
	session_stats(s, &st);
	uint64_t push, retrans;
	session_resends(s, &push, &retrans);
	r->sessions++;
	r->retrans += retrans;
	r->push += push;
	r->fec_recovered += st.fec_recovered;
	r->fec_parity_out += st.fec_parity_out;
	r->msgs_in += st.msgs_in;
	r->msgs_out += st.msgs_out;
	r->dgrams_in += st.dgrams_in;
	r->dgrams_out += st.dgrams_out;
	r->in_auth_fail += st.in_auth_fail;
	r->in_replay += st.in_replay;
	r->in_malformed += st.in_malformed;
	r->path_changes += st.path_changes;
	r->offlines += st.offlines;
	r->resumes += st.resumes;
	if (out)
		*out = st;
}

void
gate_stats(const gate_t *g, struct gate_stats *st)
{
	*st = g->st;
}

void
gate_census(const gate_t *g, struct gate_census *c)
{
	memset(c, 0, sizeof *c);
	for (uint32_t i = 0; i < g->heap.n; i++) { /* every linked entry */
		const struct entry *e = ENTRY(g->heap.a[i]);
		const struct gate_path *p = gate_session_path(g, e->s);
		int st = session_state(e->s);
		if (session_offline(e->s))
			c->offline++;
		else if (st == SESSION_HANDSHAKE)
			c->handshake++;
		else if (st == SESSION_OPEN)
			c->open++;
		else
			c->closing++;
		if (session_is_raw(e->s))
			c->raw++;
		else if (p && p->transport == GATE_TCP)
			c->tcp++;
		else if (p)
			c->udp++;
	}
}

void
gate_foreach(const gate_t *g,
             void (*fn)(const session_t *s, const struct gate_path *p, void *user),
             void *user)
{
	for (uint32_t i = 0; i < g->heap.n; i++) {
		const struct entry *e = ENTRY(g->heap.a[i]);
		fn(e->s, gate_session_path(g, e->s), user);
	}
}

void
gate_retired(const gate_t *g, struct gate_retired *r)
{
	*r = g->retired;
}
