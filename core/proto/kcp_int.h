/*
 * kcp_int.h - what the files of moongate's KCP share (kcp.c: the object
 * and its settings; kcp_input.c: datagrams in, acks, the receive queue;
 * kcp_output.c: the send queue, flush, retransmission and timers). Not a
 * public header: nothing outside core/proto/kcp*.c includes it.
 * The rings and the ack list are described at the top of kcp.c.
 */
#ifndef MOONGATE_KCP_INT_H
#define MOONGATE_KCP_INT_H

#include <stdlib.h>
#include <string.h>

#include "kcp.h"
#include "kcp_pool.h"

#define KCP_INLINE 32       /* payload bytes kept inside a record */
#define RTO_NDL 30          /* min RTO with nodelay */
#define RTO_MIN 100         /* min RTO, normal */
#define RTO_DEF 200         /* initial RTO */
#define RTO_MAX 60000
#define RTO_GRAN 2          /* the timer's granularity when retransmissions
                               leave at their due time (KCP_EAGER_RESEND):
                               1 ms of truncation in an RTT sample (both ends
                               of it are whole ms), 1 ms in the timer (a
                               segment sent late in ms t is due from t + rto) */
#define ASK_SEND 1          /* need to send WASK */
#define ASK_TELL 2          /* need to send WINS */
#define INTERVAL_DEF 100
#define DEADLINK_DEF 20
#define THRESH_INIT 2
#define THRESH_MIN 2
#define PROBE_LIMIT 120000  /* probe backoff cap */
#define FASTACK_LIMIT 5
#define RING_MIN 16         /* first ring capacity, records */
#define TRIM_FLUSHES 100    /* idle flushes before buffers are freed */
#define RIDE_FULL 2         /* held acks of this many full-size segments
                               leave at once (TCP acks every second one) */
#define RIDE_MAX 16         /* held acks leave at once at this many */
#define RIDE_GAP_MAX 10000  /* a longer gap between data is a new stream,
                               not part of the pace */

struct snd_rec {
	uint32_t ts;        /* time of the last transmission */
	uint32_t resendts;  /* when to retransmit */
	uint32_t rto;
	uint32_t fastack;   /* later acks seen since last sent */
	uint32_t xmit;      /* times sent */
	uint32_t len;
	uint8_t frg;
	uint8_t acked;      /* acked out of order: data already freed */
	union {
		char *ptr;
		char inl[KCP_INLINE];
	} d;
};

struct rcv_rec {
	uint32_t len;
	uint8_t frg;
	uint8_t present;
	union {
		char *ptr;
		char inl[KCP_INLINE];
	} d;
};

struct ack {
	uint32_t sn, ts;
};

struct kcp {
	uint32_t conv, mtu, mss;
	uint32_t snd_una, snd_nxt, snd_end;  /* see the send ring above */
	uint32_t rcv_head, rcv_nxt;          /* see the recv ring above */
	uint32_t snd_wnd, rcv_wnd, rmt_wnd, cwnd, ssthresh, incr;
	uint32_t nsacked;                    /* acked records in flight */
	int32_t rx_srtt, rx_rttval;          /* ms, for kcp_srtt (0: no sample) */
	int32_t srtt8, rttvar8;              /* the estimator's, in 1/8 ms */
	uint32_t rx_rto, rx_minrto;
	uint32_t current, interval, ts_flush;
	uint32_t next_resend;                /* lower bound of resendts */
	uint32_t nodelay, fastresend, nocwnd, fastlimit, dead_link;
	uint32_t probe, ts_probe, probe_wait;
	uint32_t sndlimit;
	uint32_t idle_flushes;
	uint32_t newly_acked;                /* segments acked by this input */
	uint32_t ts_lastack;                 /* when an ack last advanced */
	uint32_t ackdelay;                   /* kcp_setackdelay (0: classic) */
	uint32_t ack_since;                  /* when the oldest queued ack came */
	uint32_t ackride;                    /* kcp_setmaxackdelay (0: off) */
	uint32_t ts_lastdata;                /* the last flush that sent new data */
	uint32_t data_gap8;                  /* average gap between such flushes,
	                                        1/8 ms (0: fewer than two) */
	uint8_t sent_data;                   /* ts_lastdata is set */
	uint8_t ack_now;                     /* queued acks must not wait */
	uint8_t ack_full;                    /* full-size segments they ack */
	uint32_t recover_sn;                 /* snd_nxt at the last cwnd cut */
	uint8_t recovering;                  /* una has not passed recover_sn */
	uint8_t updated, stream, dead, used;
	uint8_t eager;                       /* KCP_EAGER_* flags */
	uint8_t fast_due;                    /* a fast retransmit may be due */
	uint8_t due_ok;                      /* due holds kcp_check(due_at): set by
	                                        kcp_update, cleared by every call
	                                        that changes what check reads */
	uint32_t due, due_at;
	struct snd_rec *snd;                 /* send ring, scap records */
	struct rcv_rec *rcv;                 /* recv ring, rcap records */
	struct ack *acks;
	uint32_t scap, rcap, nack, ackcap;
	size_t heap;                         /* payload bytes in use */
	uint64_t snd_bytes;                  /* payload bytes queued or unacked */
	void *user;
	kcp_output_fn output;
	struct kcp_stats st;
};

/* rx_rto from srtt, rttvar and the settings (kcp.c); no-op before the
 * first RTT sample. */
void kcp_rto_refresh(struct kcp *k);

static inline int32_t
diff(uint32_t later, uint32_t earlier)
{
	return (int32_t)(later - earlier);
}

static inline uint32_t
umin(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static inline void
put32(char *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(p, &v, 4);
#else
	p[0] = (char)v;
	p[1] = (char)(v >> 8);
	p[2] = (char)(v >> 16);
	p[3] = (char)(v >> 24);
#endif
}

static inline uint32_t
get32(const char *p)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
#else
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
	       (uint32_t)u[3] << 24;
#endif
}

static inline char *
encode(char *p, uint32_t conv, uint8_t cmd, uint8_t frg, uint16_t wnd,
       uint32_t ts, uint32_t sn, uint32_t una, uint32_t len)
{
	put32(p, conv);
	p[4] = (char)cmd;
	p[5] = (char)frg;
	p[6] = (char)wnd;
	p[7] = (char)(wnd >> 8);
	put32(p + 8, ts);
	put32(p + 12, sn);
	put32(p + 16, una);
	put32(p + 20, len);
	return p + KCP_OVERHEAD;
}

static inline struct snd_rec *
sslot(const struct kcp *k, uint32_t sn)
{
	return &k->snd[sn & (k->scap - 1)];
}

static inline struct rcv_rec *
rslot(const struct kcp *k, uint32_t sn)
{
	return &k->rcv[sn & (k->rcap - 1)];
}

static inline char *
sdata(struct snd_rec *r)
{
	return r->len <= KCP_INLINE ? r->d.inl : r->d.ptr;
}

static inline char *
rdata(struct rcv_rec *r)
{
	return r->len <= KCP_INLINE ? r->d.inl : r->d.ptr;
}

/* Storage for a record's payload of len bytes: inside the record up to
 * KCP_INLINE, else a buffer from kcp_pool.c, counted in k->heap. Returns 0
 * or KCP_ENOMEM. */
static inline int
payload_alloc(struct kcp *k, char **ptr, uint32_t len)
{
	if (len <= KCP_INLINE)
		return 0;
	int c = kcp_pool_class(len);
	if (!(*ptr = kcp_pool_get(c)))
		return KCP_ENOMEM;
	k->heap += kcp_pool_class_bytes(c);
	return 0;
}

static inline void
payload_free(struct kcp *k, char *ptr, uint32_t len)
{
	if (len > KCP_INLINE) {
		int c = kcp_pool_class(len);
		k->heap -= kcp_pool_class_bytes(c);
		kcp_pool_put(ptr, c);
	}
}

static inline uint32_t
pow2_at_least(uint32_t n)
{
	uint32_t c = RING_MIN;
	while (c < n)
		c <<= 1;
	return c;
}

#endif
