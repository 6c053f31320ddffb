/*
 * gate_int.h - what the files of the gate share (gate.c: handshake, tables,
 * timers; gate_limits.c: what one source, or everybody, may hold;
 * gate_pending.c: handshakes whose verdict waits for the policy;
 * gate_stats.c: what the gate tells its observers). Not an API: the
 * gate's API is gate.h.
 */
#ifndef MOONGATE_GATE_INT_H
#define MOONGATE_GATE_INT_H

#include <sodium.h>

#include "gate.h"
#include "heap.h"
#include "map.h"

#define SLOTS (SESSION_PATHS + 1)
_Static_assert(SLOTS < 8, "a path id keeps the slot in 3 bits");

struct entry {
	gate_t *g;
	session_t *s;
	struct gate_path path[SLOTS]; /* transport 0: a free slot */
	uint8_t bound[SLOTS];         /* TCP: the connection is in by_conn */
	uint8_t told[SLOTS];          /* TCP: bind_conn was called for it */
	uint32_t gen[SLOTS];          /* the slot's generation (path ids) */
	uint8_t last;                 /* the slot packets went to last */
	struct heap_node hn; /* key: when the session is due; in g->heap
	                        while the entry is linked */
	uint32_t sid;
	uint64_t pub_key;   /* key in g->by_pub (0: none) */
	uint64_t raw_key;   /* key in g->by_raw (0: none) */
	uint64_t src_key;   /* raw: its source's key in g->by_src (0: none) */
	int64_t queued;     /* its reliable bytes as last counted (budget) */
	uint8_t half_open;  /* counted in st.half_open */
	uint16_t hello_len;
	uint8_t *hello;     /* the client's hello until the OPEN event is told */
	struct entry *next; /* graveyard */
};

/* A handshake whose verdict the accept callback left pending: what admit
 * needs to make the session later, secrets included (scrubbed when it
 * goes). In g->pending (by ticket) and g->pend_by_pub, and in the list
 * g->pend_head..pend_tail, oldest first: every one waits pending_ms, so
 * the list is in deadline order too. */
struct pending {
	struct pending *prev, *next;
	uint64_t ticket;
	uint64_t pub_key;             /* key in g->pend_by_pub */
	uint64_t deadline;            /* pending_ms after it was asked */
	struct gate_path path;        /* where its INIT (or TCP HELLO) came from */
	struct gate_path also;        /* a repeat's other path (transport 0: none) */
	uint8_t pub[WIRE_PUB];
	uint8_t version;              /* WIRE_V1 or WIRE_V2 */
	uint16_t hello_len;
	struct wire_nk nk;            /* v2: es and the hello key */
	uint8_t sealed[WIRE_HELLO_MAX + WIRE_TAG]; /* v2: the hello as sealed
	                                 (the session keys cover it) */
	uint8_t hello[WIRE_HELLO_MAX]; /* the hello in clear */
};

struct gate {
	struct gate_config cfg;
	struct gate_callbacks cb;
	void *user;
	struct map by_sid, by_pub, by_raw, by_conn;
	struct map by_src;         /* raw sessions per source (a count) */
	uint64_t now;              /* of the outermost public call */
	struct heap heap;          /* every linked entry, by its due time */
	int depth;                 /* nesting of public calls */
	struct entry *graveyard;
	uint8_t hashkey[crypto_shorthash_KEYBYTES];
	uint8_t spub[WIRE_PUB], ssec[WIRE_SEC]; /* static key (handshake v2) */
	uint8_t epub[WIRE_PUB], esec[WIRE_SEC]; /* ephemeral e_s (v2), rotated */
	uint32_t eph_uses;         /* sessions made with it (0: make one) */
	uint64_t eph_born;
	uint64_t reset_window;     /* the second resets_sent counts in */
	uint32_t resets_sent;
	uint8_t buf[512];          /* handshake replies */
	struct map pending;        /* ticket -> struct pending */
	struct map pend_by_pub;    /* keyed hash of the client key -> pending */
	struct pending *pend_head, *pend_tail; /* oldest first */
	uint64_t next_ticket;      /* the last ticket given */
	struct gate_stats st;
	struct gate_retired retired; /* the released sessions' counters */
};

#define ENTRY(n) container_of(n, struct entry, hn)

/* A key for a map, from data, that an attacker cannot aim at a bucket
 * (keyed with the gate's random hashkey); never 0. */
uint64_t gate_keyed_hash(const gate_t *g, const void *data, size_t len);

/* gate_limits.c: the limits ask_policy applies before the accept
 * callback: -1 with v filled when one refuses. */
int gate_limit_refuses(gate_t *g, const struct gate_path *from,
                       struct gate_verdict *v);
/* A raw session from `from` counts against its source (e->src_key). */
void gate_src_take(gate_t *g, const struct gate_path *from, struct entry *e);
void gate_src_give(gate_t *g, uint64_t key);

/* gate.c, for gate_pending.c: */
/* Public calls nest: gate_enter first, gate_leave last (the outermost
 * one enforces the memory budget and frees the graveyard). */
void gate_enter(gate_t *g);
void gate_leave(gate_t *g);
/* After a call into e's session: its slots, then when it is due. */
void gate_sync(gate_t *g, struct entry *e);
void gate_reschedule(gate_t *g, struct entry *e, uint64_t now, int in_update);
/* e's slot id for path from (a new one if needed), 0 if none. */
uint32_t gate_path_slot(gate_t *g, struct entry *e, const struct gate_path *from);
/* A REFUSE to `to`, at most limit bytes. */
void gate_refuse(gate_t *g, const struct gate_path *to,
                 const uint8_t pub[WIRE_PUB], int code, const char *reason,
                 size_t limit);
/* max_sessions, then gate_limit_refuses: -1 with v filled when one refuses. */
int gate_admission_refuses(gate_t *g, const struct gate_path *from,
                           struct gate_verdict *v);
/* An admitted client's session, WELCOME sent; NULL if none could be made. */
struct entry *gate_open_session(gate_t *g, const struct gate_path *from,
                                const uint8_t pub[WIRE_PUB], uint64_t pk,
                                const struct wire_nk *nk, const uint8_t *sealed,
                                const uint8_t *hello, size_t hello_len,
                                uint64_t now);

/* gate_pending.c: */
/* Keep a client whose verdict is pending under ticket: its INIT's state
 * copied (the caller scrubs its own). 0, or -1 out of memory. */
int gate_pend(gate_t *g, const struct gate_path *from,
              const struct wire_hello *h, uint64_t pk,
              const struct wire_nk *nk, const uint8_t *hello,
              uint64_t ticket, uint64_t now);
/* Refuse those whose pending_ms passed ("handshake policy timeout"). */
void gate_pending_expire(gate_t *g, uint64_t now);
/* Refuse every pending client with code and reason, and forget them. */
void gate_pending_refuse_all(gate_t *g, int code, const char *reason);

#endif
