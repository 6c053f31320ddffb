/*
 * fec.h - forward error correction for datagrams: a systematic
 * Reed-Solomon erasure code over GF(256), packets in groups of k data
 * shards and m parity shards; any k of the k + m shards of a group give
 * back all k packets (docs/PROTOCOL.md, "Forward error correction").
 *
 * It sits between a sealed packet and the socket: every packet to send
 * goes through fec_enc_add and leaves at once as a data shard (a 6-byte
 * header, then the packet, unchanged); after k of them, or when the group
 * is flush_ms old, the m parity shards follow. Every datagram received
 * goes through fec_dec_input, which hands back each data packet, once:
 * those that arrived at once, those rebuilt from parity as soon as enough
 * shards of their group are in. The layer has no crypto and trusts
 * nothing: what it delivers is authenticated by the layer above (AEAD),
 * a recovered packet included.
 *
 * I/O-free, like KCP: time is an argument (microseconds, any origin,
 * 64-bit, the session's clock), shards and packets leave through a
 * callback given to each call, fec_enc_check(now) says when
 * fec_enc_update is next due. Not thread-safe: one object, one thread.
 * Callbacks must not call back into the same object.
 *
 * Both ends must use the same data, parity and pkt_max; the decoder takes
 * them as upper bounds (a shard claiming more is malformed). The group id
 * of one encoder never goes back: a new encoder for the same peer needs a
 * new decoder (or fec_dec_reset), or must start at a random group id
 * (fec_enc_setnext), which the old decoder sees as far and resyncs to
 * after FEC_RESYNC shards.
 *
 * Costs: encoding is one pass over the packet per parity row; a decoder
 * copies each data packet once (kept until its group is known whole) and
 * scans its `groups` slots when a new group starts.
 *
 * Shards (little-endian, like every integer of the protocol):
 *
 *   data    f0 | group u32 | index u8 | packet                6 + len
 *   parity  f1 | group u32 | index u8 | data u8 | parity u8 |
 *           parity payload (2 + longest packet of the group) 10 + longest
 *
 * A data shard's index is 0..data-1; a parity shard's is data + j, j its
 * row 0..parity-1; "data" in a parity shard is the count of data shards
 * the group really has (fewer than k when the flush timer closed it).
 *
 * Errors: functions returning int give a count (>= 0) on success and a
 * negative FEC_E* code otherwise; fec_strerror() names it.
 */
#ifndef MOONGATE_FEC_H
#define MOONGATE_FEC_H

#include <stddef.h>
#include <stdint.h>

#define FEC_TYPE_DATA 0xf0
#define FEC_TYPE_PARITY 0xf1
#define FEC_DATA_HDR 6      /* type, group, index */
#define FEC_PARITY_HDR 8    /* type, group, index, data count, parity count */
#define FEC_LEN_PREFIX 2    /* each packet's length, inside the parity */

#define FEC_DATA_MAX 64     /* k: data shards per group */
#define FEC_PARITY_MAX 32   /* m: parity shards per group */
/* Largest packet: its parity shard (8 + 2 + len) still fits 65535 bytes. */
#define FEC_PKT_MAX (65535 - FEC_PARITY_HDR - FEC_LEN_PREFIX) /* 65525 */
#define FEC_GROUPS_MAX 1024 /* groups a decoder tracks at most */
/* The decoder moves its window forward by at most this many groups at
 * once; a shard further ahead (or this far behind) is "far": dropped,
 * unless FEC_RESYNC far shards come in a row with nothing in the window
 * between them, which restarts the window at the last one (the sender
 * restarted, or a long outage). */
#define FEC_JUMP_MAX 1024
#define FEC_RESYNC 3

enum fec_error {
	FEC_EINVAL = -1,  /* an argument or a config value out of range */
	FEC_ETOOBIG = -2, /* enc: packet above pkt_max; dec: shard payload
	                     above what pkt_max allows (malformed) */
	FEC_ENOMEM = -3,  /* allocation failed; nothing was changed */
	FEC_ETRUNC = -4,  /* dec: shorter than its header (malformed) */
	FEC_ETYPE = -5,   /* dec: first byte not a shard type (malformed) */
	FEC_EHDR = -6,    /* dec: index or counts out of range (malformed) */
	FEC_EGROUP = -7,  /* dec: disagrees with shards of its group already
	                     in: counts, lengths, index (malformed) */
	FEC_EDUP = -8,    /* dec: this (group, index) already arrived */
	FEC_ESTALE = -9,  /* dec: its group left the window (forgotten) */
	FEC_EFAR = -10,   /* dec: group id far from the window (see above) */
};
const char *fec_strerror(int err);

struct fec_config {
	int data;      /* k, data shards per group (8; 1..FEC_DATA_MAX) */
	int parity;    /* m, parity shards per group (2; 1..FEC_PARITY_MAX) */
	int pkt_max;   /* largest packet in bytes (1500; 1..FEC_PKT_MAX) */
	int flush_ms;  /* encoder: a group is closed (its parity sent) at the
	                  latest this long after its first packet (20;
	                  0..60000; 0: at the next fec_enc_update) */
	int groups;    /* decoder: groups tracked, newest first (32;
	                  1..FEC_GROUPS_MAX) */
	int expire_ms; /* decoder: a group not recovered this long after its
	                  first shard arrived gives up its buffers (1000;
	                  0: never, only the window evicts it) */
};
void fec_config_default(struct fec_config *c);
/* 0, or FEC_EINVAL when a field is out of range. */
int fec_config_check(const struct fec_config *c);

/* One shard to send (encoder), or one packet received (decoder). A
 * delivered packet may be changed in place (session_input decrypts in
 * place); it is valid during the call only. */
typedef void (*fec_output_fn)(const uint8_t *shard, size_t len, void *user);
typedef void (*fec_deliver_fn)(uint8_t *pkt, size_t len, void *user);

/* ---- encoder ------------------------------------------------------------ */

typedef struct fec_enc fec_enc_t;

struct fec_enc_stats {
	uint64_t packets;        /* fec_enc_add calls that sent a data shard */
	uint64_t out_shards;     /* data + parity */
	uint64_t out_parity;
	uint64_t out_bytes;      /* every shard, headers included */
	uint64_t groups;         /* groups closed */
	uint64_t groups_partial; /* of those, closed with fewer than k */
};

/* NULL on out of memory or a bad config. Memory is fixed at creation:
 * fec_enc_memsize(), about (parity + 1) * (pkt_max + 10) bytes. */
fec_enc_t *fec_enc_create(const struct fec_config *c);
void fec_enc_release(fec_enc_t *e);

/* Send one packet (len 0..pkt_max): its data shard leaves through out
 * before this returns; when it is the k-th of its group, the m parity
 * shards follow. A group whose flush time has passed (now > due) is
 * closed first.
 * Returns the number of shards sent (1, 1 + m or 1 + 2m), or FEC_EINVAL
 * (pkt NULL with len > 0, out NULL) / FEC_ETOOBIG (nothing sent). */
int fec_enc_add(fec_enc_t *e, const uint8_t *pkt, size_t len, uint64_t now,
                fec_output_fn out, void *user);
/* Close the open group if its flush time has come: returns the parity
 * shards sent (0 or m). */
int fec_enc_update(fec_enc_t *e, uint64_t now, fec_output_fn out, void *user);
/* Close the open group now, whatever its age: 0 or m shards sent. */
int fec_enc_flush(fec_enc_t *e, fec_output_fn out, void *user);
/* When fec_enc_update is next due: the open group's flush time (earlier
 * than now when overdue), UINT64_MAX when no group is open. */
uint64_t fec_enc_check(const fec_enc_t *e, uint64_t now);
/* The group id of the next group (0 at creation). Only between groups:
 * FEC_EINVAL while one is open. For tests of the wrap at 2^32. */
int fec_enc_setnext(fec_enc_t *e, uint32_t group);
size_t fec_enc_memsize(const fec_enc_t *e);
void fec_enc_stats(const fec_enc_t *e, struct fec_enc_stats *st);

/* ---- decoder ------------------------------------------------------------ */

typedef struct fec_dec fec_dec_t;

struct fec_dec_stats {
	uint64_t in_shards;   /* fec_dec_input calls */
	uint64_t in_parity;   /* of those, well-formed parity shards */
	uint64_t delivered;   /* packets delivered, recovered ones included */
	uint64_t recovered;   /* packets rebuilt from parity */
	uint64_t duplicates;  /* FEC_EDUP */
	uint64_t malformed;   /* FEC_ETRUNC, ETYPE, EHDR, EGROUP, ETOOBIG */
	uint64_t stale;       /* FEC_ESTALE */
	uint64_t far;         /* FEC_EFAR */
	uint64_t resyncs;     /* window restarts after FEC_RESYNC far shards */
	uint64_t unrecovered; /* groups given up (evicted, expired, reset, or
	                         their recovery did not check out) before all
	                         their data was known delivered: data lost, or
	                         every parity shard lost so no count is known */
	uint64_t bad_recovery; /* of those, a recovery whose result did not
	                          check out (a forged or corrupt shard) */
};

/* NULL on out of memory or a bad config. */
fec_dec_t *fec_dec_create(const struct fec_config *c);
void fec_dec_release(fec_dec_t *d);

/* Take one datagram. A data shard's packet is delivered at once (a
 * pointer into shard, which deliver may change), unless it was delivered
 * before; when the group then has enough shards, its missing packets are
 * rebuilt and delivered too. Returns the number of packets delivered
 * (0.. data), or a negative FEC_E* code: the shard was dropped, counted,
 * and changed nothing. */
int fec_dec_input(fec_dec_t *d, uint8_t *shard, size_t len, uint64_t now,
                  fec_deliver_fn deliver, void *user);
/* Give up the groups older than expire_ms (their buffers are freed), so
 * an idle decoder holds little. Optional: input does the same. */
void fec_dec_update(fec_dec_t *d, uint64_t now);
/* When fec_dec_update next has work: the earliest expiry of a group
 * holding buffers, UINT64_MAX when none. */
uint64_t fec_dec_check(const fec_dec_t *d, uint64_t now);
/* Forget every group (as if new); the stats are kept. */
void fec_dec_reset(fec_dec_t *d);
/* Heap bytes held now, and the most a decoder with config c can ever
 * hold (about groups * data * (pkt_max + 2) plus small tables). */
size_t fec_dec_memsize(const fec_dec_t *d);
size_t fec_dec_memmax(const struct fec_config *c);
void fec_dec_stats(const fec_dec_t *d, struct fec_dec_stats *st);

/* ---- the code itself, exposed for tests and benchmarks ------------------ */

/* GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d). */
uint8_t fec_gf_mul(uint8_t a, uint8_t b);
uint8_t fec_gf_inv(uint8_t a);  /* a != 0; 0 for 0 */
/* The coefficient of data shard i in parity row j. */
uint8_t fec_coef(int j, int i);
/* dst[0..n) ^= c * src[0..n) */
void fec_gf_muladd(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c);

#endif
