/*
 * gate_pending.c - handshakes whose verdict waits for the policy (config
 * gate.pending_max, gate.pending_ms): kept, decided, timed out.
 *
 * When the accept callback answers GATE_PENDING, the client's INIT is
 * kept in a struct pending (gate_int.h) under the ticket the gate gave,
 * until gate_decide or pending_ms (gate_update refuses it then,
 * "handshake policy timeout"). Nothing is sent meanwhile: the address was
 * proven before the policy was asked, and the client's retransmitted
 * INITs find the record (by its key) and ask nothing. No entry exists
 * until the verdict accepts, so a pending client holds no sid, no session
 * and no slot in the heap.
 */
#include <stdlib.h>
#include <string.h>

#include "gate_int.h"

/* gate_int.h */
int
gate_pend(gate_t *g, const struct gate_path *from, const struct wire_hello *h,
          uint64_t pk, const struct wire_nk *nk, const uint8_t *hello,
          uint64_t ticket, uint64_t now)
{
	struct pending *p = calloc(1, sizeof *p);
	if (!p)
		return -1;
	if (map_put(&g->pending, ticket, p)) {
		free(p);
		return -1;
	}
	if (map_put(&g->pend_by_pub, pk, p)) {
		map_del(&g->pending, ticket);
		free(p);
		return -1;
	}
	p->ticket = ticket;
	p->pub_key = pk;
	p->deadline = now + (uint64_t)(g->cfg.pending_ms > 0 ? g->cfg.pending_ms : 0) * 1000;
	p->path = *from;
	memcpy(p->pub, h->pub, WIRE_PUB);
	p->version = h->version;
	p->hello_len = h->hello_len;
	if (h->version == WIRE_V2) {
		p->nk = *nk;
		memcpy(p->sealed, h->hello, (size_t)h->hello_len + WIRE_TAG);
	}
	memcpy(p->hello, hello, h->hello_len);
	p->prev = g->pend_tail;
	if (g->pend_tail)
		g->pend_tail->next = p;
	else
		g->pend_head = p;
	g->pend_tail = p;
	g->st.pending++;
	return 0;
}

/* Forget p, its secrets scrubbed. */
static void
unpend(gate_t *g, struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		g->pend_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		g->pend_tail = p->prev;
	map_del(&g->pending, p->ticket);
	map_del(&g->pend_by_pub, p->pub_key);
	g->st.pending--;
	wire_scrub(p, sizeof *p);
	free(p);
}

/* Refuse a pending client on every path it came by (its address is proven:
 * the reason goes in full). */
static void
refuse_pending(gate_t *g, struct pending *p, int code, const char *reason)
{
	gate_refuse(g, &p->path, p->pub, code, reason, sizeof g->buf);
	if (p->also.transport)
		gate_refuse(g, &p->also, p->pub, code, reason, sizeof g->buf);
}

/* gate_int.h */
void
gate_pending_expire(gate_t *g, uint64_t now)
{
	while (g->pend_head && g->pend_head->deadline <= now) {
		struct pending *p = g->pend_head;
		g->st.pending_timeouts++;
		if (g->cb.limited)
			g->cb.limited(g, &p->path, "gate.pending_ms", g->user);
		refuse_pending(g, p, SESSION_CLOSE_HANDSHAKE, "handshake policy timeout");
		unpend(g, p);
	}
}

/* gate_int.h */
void
gate_pending_refuse_all(gate_t *g, int code, const char *reason)
{
	while (g->pend_head) {
		refuse_pending(g, g->pend_head, code, reason);
		unpend(g, g->pend_head);
	}
}

int
gate_decide(gate_t *g, uint64_t ticket, const struct gate_verdict *v,
            uint64_t now)
{
	struct pending *p = ticket ? map_get(&g->pending, ticket) : NULL;
	if (!p)
		return -1;
	struct gate_verdict w = *v;
	w.reason[WIRE_REASON_MAX] = 0;
	g->now = now;
	gate_enter(g);
	if (w.code < 0 || w.code > 65535) { /* GATE_PENDING again, or nonsense */
		w.code = SESSION_CLOSE_REFUSED;
		strcpy(w.reason, "server error");
	}
	if (w.code) {
		g->st.refused++;
		if (!w.reason[0])
			strcpy(w.reason, "refused");
	} else {
		/* what changed while it waited */
		gate_admission_refuses(g, &p->path, &w);
	}
	if (w.code) {
		refuse_pending(g, p, w.code, w.reason);
	} else {
		struct entry *e = gate_open_session(g, &p->path, p->pub, p->pub_key,
		                                    p->version == WIRE_V2 ? &p->nk : NULL,
		                                    p->sealed, p->hello, p->hello_len,
		                                    now);
		if (e && p->also.transport) { /* a repeat came by another path */
			uint32_t id = gate_path_slot(g, e, &p->also);
			if (id)
				session_rewelcome(e->s, id, now);
			gate_sync(g, e);
			gate_reschedule(g, e, now, 0);
		}
	}
	unpend(g, p);
	gate_leave(g);
	return 0;
}
