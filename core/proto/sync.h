/*
 * sync.h - the fan-out of state sync and frame sync, I/O-free: no Lua, no
 * sessions, no clock. The Lua runtime binds both (core/lua/script_sync.c:
 * moongate.relay, moongate.frames); packet layouts are in docs/PROTOCOL.md,
 * "Game service payloads".
 *
 * The state relay keeps, per member, the newest state put since the last
 * flush (newest wins, by a wraparound-safe sequence number). A flush gives
 * every receiver the pending states of the other members (near it on a
 * grid, if one is set; then narrowed by an optional filter), packed into
 * as few datagrams as fit, with one scratch buffer: nothing is allocated
 * per receiver.
 *
 *   bundle: u8 'S' | u32 tick | u8 count | count x (varint id | varint len | data)
 *
 * (varint: LEB128, 7 bits a byte, low group first.) A state carries no
 * sequence number of its own: its number is its bundle's tick. The relay
 * sends a member's state at most once per flush, and ticks only grow, so
 * what a receiver gets from a member is newer than anything before it from
 * that member in this relay, whichever session the member sent it on.
 *
 * The frame history is for lockstep: inputs collected per frame, a step
 * encodes them into one frame, keeps it in a ring bounded by frames and by
 * bytes, and hands it to every member whose next frame it is. A member left
 * behind catches up from the ring while its frames are still there.
 *
 *   frame: u8 'F' | u32 frame | u16 count | count x (u32 id | u16 len | data)
 *
 * Members are u32 ids chosen by the caller; each carries a u32 tag the
 * caller keeps with it (the runtime: the member's session id) and gets back
 * in every callback. Callbacks must not change the object they were called
 * from. Errors: 0 or a count on success, a negative SYNC_E* code otherwise.
 */
#ifndef MOONGATE_SYNC_H
#define MOONGATE_SYNC_H

#include <stddef.h>
#include <stdint.h>

#define SYNC_STATES 0x53        /* 'S': a state bundle */
#define SYNC_FRAME 0x46         /* 'F': a frame */
#define SYNC_STATES_HDR 6       /* u8 'S' | u32 tick | u8 count */
#define SYNC_STATE_HDR_MAX 8    /* varint id (1..5) | varint len (1..3) */
#define SYNC_STATES_PER_DGRAM 255
#define SYNC_FRAME_HDR 7        /* u8 'F' | u32 frame | u16 count */
#define SYNC_INPUT_HDR 6        /* u32 id | u16 len */
#define SYNC_FRAME_ENTRIES 65535
#define SYNC_MEMBERS_LIMIT 65536 /* the largest members_max */
#define SYNC_HISTORY_LIMIT 65536 /* the largest history (frames) */

enum sync_error {
	SYNC_ESTALE = -1,    /* put: seq not newer than the last accepted */
	SYNC_ETOOBIG = -2,   /* put: over entry_max; input: over input_max */
	SYNC_ENOMEMBER = -3, /* no member has this id */
	SYNC_EFULL = -4,     /* members_max reached; a frame of 65535 inputs */
	SYNC_ENOMEM = -5,
	SYNC_EINVAL = -6,    /* a position that is not finite */
	SYNC_EEVICTED = -7,  /* catch_up: the first frame needed is gone */
	SYNC_EAHEAD = -8,    /* catch_up: from is after the last frame made */
};
/* "stale", "too big", "not a member", "full", "out of memory", "invalid",
 * "too far behind", "not made yet". */
const char *sync_strerror(int err);

/* ---- the state relay ------------------------------------------------------ */

typedef struct sync_relay sync_relay_t;

struct sync_relay_config {
	uint32_t members_max; /* 256; 1..SYNC_MEMBERS_LIMIT */
	uint32_t entry_max;   /* bytes of one state (dgram_max - 14: one per datagram) */
	uint32_t dgram_max;   /* the largest datagram a flush builds (1171), and
	                         the scratch buffer; >= entry_max + 14 */
	double cell;          /* grid cell size; 0: no grid, everyone sees everyone */
	uint32_t radius;      /* cells, Chebyshev: 1 = the 3x3 block around (1) */
};
void sync_relay_config_default(struct sync_relay_config *c);

/* NULL on a config out of range or out of memory. */
sync_relay_t *sync_relay_create(const struct sync_relay_config *c);
void sync_relay_release(sync_relay_t *r);

/* Add a member, or again to change its tag: a new tag (a new session)
 * starts a new sequence of puts, so the first put after it is never
 * stale. What receivers get from the member keeps its order (the tick).
 * 0, SYNC_EFULL, SYNC_ENOMEM. */
int sync_relay_add(sync_relay_t *r, uint32_t id, uint32_t tag);
/* 0 or SYNC_ENOMEMBER. Its pending state goes with it. */
int sync_relay_remove(sync_relay_t *r, uint32_t id);
/* The member's newest state: replaces a pending one (counted "superseded")
 * when seq is newer than the last accepted, in wraparound order. 0,
 * SYNC_ESTALE, SYNC_ETOOBIG, SYNC_ENOMEMBER. */
int sync_relay_put(sync_relay_t *r, uint32_t id, uint32_t seq,
                   const void *data, size_t len);
/* The member's tag: 0 and *tag set, or SYNC_ENOMEMBER. */
int sync_relay_member_tag(const sync_relay_t *r, uint32_t id, uint32_t *tag);
/* sync_relay_put from the member's own session: SYNC_ENOMEMBER also when
 * the member's tag (its session) is not tag (it moved to another). */
int sync_relay_put_tagged(sync_relay_t *r, uint32_t id, uint32_t tag,
                          uint32_t seq, const void *data, size_t len);
/* Place the member on the grid (0, SYNC_EINVAL, SYNC_ENOMEMBER), or take
 * it off: a member without a position sees everyone and is seen by all. */
int sync_relay_position(sync_relay_t *r, uint32_t id, double x, double y);
int sync_relay_unposition(sync_relay_t *r, uint32_t id);

struct sync_relay_io {
	/* The largest datagram receiver id takes; 0: skip it this flush (its
	 * session is closed or offline). Clamped to dgram_max. NULL: dgram_max
	 * for everyone. */
	size_t (*room)(uint32_t id, uint32_t tag, void *user);
	/* May narrow the candidate senders ids[0..n): write the ids to keep
	 * into ids (room for cap >= n, members_max) and return how many. They
	 * are sent in that order; ids that were not candidates, and repeats,
	 * are ignored. NULL: keep all. */
	uint32_t (*filter)(uint32_t receiver, uint32_t *ids, uint32_t n,
	                   uint32_t cap, void *user);
	/* One datagram for receiver; 0 when it was sent (only those count). */
	int (*output)(uint32_t receiver, uint32_t tag, const uint8_t *dgram,
	              size_t len, void *user);
	void *user;
};
/* Send every receiver the pending states of the others, then clear them
 * and advance the tick. A state that does not fit the receiver's room
 * (entry_max set above it) is skipped for it and counted "oversize".
 * Returns the datagrams sent. */
uint32_t sync_relay_flush(sync_relay_t *r, const struct sync_relay_io *io);

struct sync_relay_stats {
	uint64_t puts;        /* states accepted */
	uint64_t stale;       /* refused: not newer */
	uint64_t too_big;     /* refused: over entry_max */
	uint64_t superseded;  /* pending states replaced before a flush */
	uint64_t relayed;     /* states sent (one per receiver) */
	uint64_t datagrams, bytes; /* sent */
	uint64_t oversize;    /* states skipped: over a receiver's room */
	uint32_t tick;        /* the tick the next flush sends */
	uint32_t members;
};
void sync_relay_stats(const sync_relay_t *r, struct sync_relay_stats *st);

/* ---- the frame history ---------------------------------------------------- */

typedef struct sync_frames sync_frames_t;

struct sync_frames_config {
	uint32_t history;       /* frames kept (256); 1..SYNC_HISTORY_LIMIT */
	size_t history_bytes;   /* bytes of frames kept (1 MiB); the newest frame
	                           is kept whatever its size */
	uint32_t input_max;     /* bytes one member adds to one frame (256),
	                           1..65535; an input counts at least 1 byte, so
	                           empty inputs are bounded too */
	uint32_t members_max;   /* 256; 1..SYNC_MEMBERS_LIMIT */
};
void sync_frames_config_default(struct sync_frames_config *c);

sync_frames_t *sync_frames_create(const struct sync_frames_config *c);
void sync_frames_release(sync_frames_t *f);

/* Add a member whose next frame to receive is next, or again to change its
 * tag and next (its inputs of this frame are kept). 0, SYNC_EFULL,
 * SYNC_ENOMEM. */
int sync_frames_add(sync_frames_t *f, uint32_t id, uint32_t tag, uint32_t next);
/* 0 or SYNC_ENOMEMBER. Its inputs not yet stepped go with it. */
int sync_frames_remove(sync_frames_t *f, uint32_t id);
/* One input of the member for the frame being collected. 0,
 * SYNC_ENOMEMBER, SYNC_ETOOBIG (past input_max this frame), SYNC_EFULL
 * (the frame holds 65535 inputs), SYNC_ENOMEM. */
int sync_frames_input(sync_frames_t *f, uint32_t id, const void *data,
                      size_t len);

/* Hands a frame to member id; 0 when it was sent. */
typedef int (*sync_frames_out)(uint32_t id, uint32_t tag, const uint8_t *frame,
                               size_t len, void *user);
/* Encode the frame (number sync_frames_current), keep it, advance, and call
 * out for every member whose next it is: those that took it move to the
 * next frame, the others are left behind. Returns the frame (valid until
 * the next step or release) with its length, or NULL out of memory (the
 * inputs are kept; nothing changed). sent (may be NULL): members that took
 * it. */
const uint8_t *sync_frames_step(sync_frames_t *f, size_t *len,
                                sync_frames_out out, void *user,
                                uint32_t *sent);
/* A stored frame, or NULL when evicted or not made yet. */
const uint8_t *sync_frames_get(const sync_frames_t *f, uint32_t frame,
                               size_t *len);
/* The number the next step makes (frames start at 0). */
uint32_t sync_frames_current(const sync_frames_t *f);
/* The member's next frame and tag (either may be NULL): 0, or
 * SYNC_ENOMEMBER. */
int sync_frames_member(const sync_frames_t *f, uint32_t id, uint32_t *next,
                       uint32_t *tag);
/* Send the member the frames from `from` (its next when has_from is 0) to
 * the last one made, through out, in order; its next becomes the first one
 * out did not take (the current frame when all went). Nothing is sent when
 * the first is no longer stored. n sent, SYNC_EEVICTED, SYNC_EAHEAD or
 * SYNC_ENOMEMBER. */
int sync_frames_catch_up(sync_frames_t *f, uint32_t id, int has_from,
                         uint32_t from, sync_frames_out out, void *user);

struct sync_frames_stats {
	uint64_t frames;       /* frames made */
	uint64_t inputs;       /* inputs accepted */
	uint64_t refused;      /* inputs refused: past input_max, or frame full */
	uint64_t sent, bytes;  /* frames sent to members (steps and catch-ups) */
	uint64_t catch_ups;    /* catch_up calls not refused */
	uint32_t behind;       /* members whose next is before the current frame */
	uint32_t members;
	uint32_t stored;       /* frames in the ring */
	uint64_t stored_bytes;
};
void sync_frames_stats(const sync_frames_t *f, struct sync_frames_stats *st);

#endif
