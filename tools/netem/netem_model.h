/*
 * netem_model.h - the impairment model of moongate-netem, free of I/O:
 * the settings and their `set` grammar, a seeded PRNG, and the decisions
 * taken for one UDP datagram or one TCP chunk. Time is an argument, in
 * seconds of CLOCK_MONOTONIC. The other files of tools/netem (netem.h) own
 * the sockets.
 */
#ifndef MOONGATE_NETEM_MODEL_H
#define MOONGATE_NETEM_MODEL_H

#include <stddef.h>
#include <stdint.h>

enum { NETEM_UDP = 0, NETEM_TCP = 1 };    /* protocol */
enum { NETEM_UP = 0, NETEM_DOWN = 1 };    /* client->server, server->client */

#define NETEM_REORDER_MS 20  /* the default hold-back of a reordered datagram */

/* What happens to one protocol in one direction. */
struct netem_imp {
	double loss;        /* UDP: probability a datagram is dropped */
	double dup;         /* UDP: probability a datagram is sent twice */
	double reorder;     /* UDP: probability a datagram is held back */
	double reorder_ms;  /* UDP: how long a reordered one is held back */
	double delay_ms;    /* added to every datagram / TCP chunk */
	double jitter_ms;   /* +- uniform around delay_ms (never below 0) */
	double rate;        /* bytes per second; 0: no cap */
	int blackhole;      /* UDP: drop all; TCP: forward nothing (hold) */
};

struct netem_settings {
	struct netem_imp imp[2][2]; /* [NETEM_UDP/TCP][NETEM_UP/DOWN] */
	int stall;          /* TCP: forward nothing, either way */
	int refuse;         /* TCP: reset new connections at accept */
};

/* Every impairment off. */
void netem_settings_clear(struct netem_settings *s);

/* Apply "[scope...] key=value..." (the arguments of the control command
 * `set`). Scope words: up, down, both, udp, tcp (default: both
 * directions, both protocols). Keys: loss, dup, reorder (0..1 or N%),
 * delay, jitter, reorder_ms (ms; or Ns, Nms), rate (bytes/s; or Nkbit,
 * Nmbit, NkB, NMB), blackhole, stall, refuse (0/1/on/off). All or
 * nothing: on error s is unchanged, err names the word at fault, and -1
 * is returned. */
int netem_settings_apply(struct netem_settings *s, const char *args,
                         char *err, size_t errlen);

/* Every setting as "udp_up_loss=0 ... stall=0 refuse=0"; returns the
 * length (snprintf's). */
int netem_settings_format(const struct netem_settings *s, char *buf,
                          size_t n);

/* splitmix64: small, seeded, the same sequence everywhere. */
struct netem_rng {
	uint64_t s;
};
void netem_rng_seed(struct netem_rng *r, uint64_t seed);
double netem_rng_next(struct netem_rng *r);   /* uniform in [0, 1) */

/* One flow's link in one direction, for the UDP rate cap: busy (its
 * queue sending) until free_at. */
struct netem_link {
	double free_at;
};

/* The fate of one datagram: n copies (0, 1 or 2) leave at at[i]. */
struct netem_verdict {
	int n;
	double at[2];
	int dropped;        /* 1: lost or blackholed */
	int overflow;       /* copies tail-dropped: the rate queue was full */
	int duplicated;     /* 1: a second copy was made */
	int reordered;      /* copies held back by reorder */
};

/* Decide the fate of a datagram of len bytes that arrived at now.
 * queue_max bounds the bytes waiting on the link under a rate cap. */
void netem_udp(const struct netem_imp *imp, struct netem_link *l,
               struct netem_rng *r, double now, size_t len, size_t queue_max,
               struct netem_verdict *v);

/* When TCP bytes read at now may be written: delay and jitter, never
 * before last (the release time of the bytes before them: a stream is
 * never reordered). */
double netem_tcp_release(const struct netem_imp *imp, struct netem_rng *r,
                         double now, double last);

/* A token bucket for the TCP rate cap, 20 ms deep (at least 1460 bytes).
 * A zero struct is a full bucket. */
struct netem_bucket {
	double tokens, t;
};
/* Bytes that may be written now (SIZE_MAX: no cap). */
size_t netem_bucket_avail(struct netem_bucket *b, double rate, double now);
void netem_bucket_take(struct netem_bucket *b, double rate, size_t n);
/* Seconds until a write of up to want bytes is worth doing (0: now). */
double netem_bucket_wait(const struct netem_bucket *b, double rate, size_t want);

#endif
