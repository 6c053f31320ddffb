/*
 * kcp.c - moongate's KCP, written from the protocol's description.
 *
 * Data structures (the classic library uses linked lists; we use rings):
 *
 *  send ring   one record per segment, indexed by sn & (scap-1):
 *              [snd_una, snd_nxt)  in flight (some may be acked already)
 *              [snd_nxt, snd_end)  queued, sn assigned, not yet sent
 *  recv ring   one record per segment, indexed by sn & (rcap-1):
 *              [rcv_head, rcv_nxt) in order, waiting for kcp_recv
 *              [rcv_nxt, rcv_nxt + rcv_wnd)  out of order, "present" marks
 *  ack list    (sn, ts) pairs to acknowledge at the next flush, bounded.
 *
 * Lookup of an acked sn or an arriving sn is O(1). Payloads of up to
 * KCP_INLINE bytes live inside the record; larger ones come from the
 * thread's free lists (kcp_pool.c). Rings start small, grow by doubling, and
 * are freed after the object has been idle for TRIM_FLUSHES flushes: an
 * idle object holds only itself.
 *
 * The protocol machinery (RTO estimation, backoff, fast retransmit, window
 * probing, congestion window) follows the classic design; where moongate
 * departs from it, a comment says so and docs/PROTOCOL.md lists why.
 *
 * Sequence numbers and timestamps are uint32 and compared with a signed
 * 32-bit difference (diff()), so both wrap at 2^32.
 */
#include "kcp.h"
#include "kcp_pool.h"

#include <stdlib.h>
#include <string.h>

#define KCP_INLINE 32       /* payload bytes kept inside a record */
#define RTO_NDL 30          /* min RTO with nodelay */
#define RTO_MIN 100         /* min RTO, normal */
#define RTO_DEF 200         /* initial RTO */
#define RTO_MAX 60000
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
	int32_t rx_srtt, rx_rttval;
	uint32_t rx_rto, rx_minrto;
	uint32_t current, interval, ts_flush;
	uint32_t next_resend;                /* lower bound of resendts */
	uint32_t nodelay, fastresend, nocwnd, fastlimit, dead_link;
	uint32_t probe, ts_probe, probe_wait;
	uint32_t sndlimit;
	uint32_t idle_flushes;
	uint32_t newly_acked;                /* segments acked by this input */
	uint32_t ts_lastack;                 /* when an ack last advanced */
	uint32_t recover_sn;                 /* snd_nxt at the last cwnd cut */
	uint8_t recovering;                  /* una has not passed recover_sn */
	uint8_t updated, stream, dead, used;
	uint8_t eager;                       /* KCP_EAGER_* flags */
	uint8_t fast_due;                    /* a fast retransmit may be due */
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
static int
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

static void
payload_free(struct kcp *k, char *ptr, uint32_t len)
{
	if (len > KCP_INLINE) {
		int c = kcp_pool_class(len);
		k->heap -= kcp_pool_class_bytes(c);
		kcp_pool_put(ptr, c);
	}
}

static uint32_t
pow2_at_least(uint32_t n)
{
	uint32_t c = RING_MIN;
	while (c < n)
		c <<= 1;
	return c;
}

/* Make the send ring hold at least n records from snd_una on. */
static int
snd_reserve(struct kcp *k, uint32_t n)
{
	if (n <= k->scap)
		return 0;
	uint32_t cap = pow2_at_least(n);
	struct snd_rec *r = malloc((size_t)cap * sizeof(*r));
	if (!r)
		return KCP_ENOMEM;
	for (uint32_t sn = k->snd_una; sn != k->snd_end; sn++)
		r[sn & (cap - 1)] = *sslot(k, sn);
	free(k->snd);
	k->snd = r;
	k->scap = cap;
	return 0;
}

/* Make the recv ring span at least n records from rcv_head on. */
static int
rcv_reserve(struct kcp *k, uint32_t n)
{
	if (n <= k->rcap)
		return 0;
	uint32_t cap = pow2_at_least(n);
	struct rcv_rec *r = calloc(cap, sizeof(*r));
	if (!r)
		return KCP_ENOMEM;
	for (uint32_t i = 0; i < k->rcap; i++) {
		uint32_t sn = k->rcv_head + i;
		struct rcv_rec *old = rslot(k, sn);
		if (old->present)
			r[sn & (cap - 1)] = *old;
	}
	free(k->rcv);
	k->rcv = r;
	k->rcap = cap;
	return 0;
}

kcp_t *
kcp_create(uint32_t conv, void *user)
{
	struct kcp *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->conv = conv;
	k->user = user;
	k->mtu = KCP_MTU_DEFAULT;
	k->mss = k->mtu - KCP_OVERHEAD;
	k->snd_wnd = KCP_WND_SND_DEFAULT;
	k->rcv_wnd = KCP_WND_RCV_DEFAULT;
	k->rmt_wnd = KCP_WND_RCV_DEFAULT;
	k->ssthresh = THRESH_INIT;
	k->cwnd = 1; /* classic starts at 0 and so sends nothing on its first flush */
	k->incr = k->mss;
	k->rx_rto = RTO_DEF;
	k->rx_minrto = RTO_MIN;
	k->interval = INTERVAL_DEF;
	k->ts_flush = INTERVAL_DEF;
	k->dead_link = DEADLINK_DEF;
	k->fastlimit = FASTACK_LIMIT;
	k->eager = KCP_EAGER_ACK | KCP_EAGER_DATA;
	return k;
}

static void
free_buffers(struct kcp *k)
{
	for (uint32_t sn = k->snd_una; sn != k->snd_end; sn++) {
		struct snd_rec *r = sslot(k, sn);
		if (!r->acked)
			payload_free(k, r->d.ptr, r->len);
	}
	if (k->rcv) {
		for (uint32_t i = 0; i < k->rcap; i++) {
			struct rcv_rec *r = &k->rcv[i];
			if (r->present)
				payload_free(k, r->d.ptr, r->len);
		}
	}
	free(k->snd);
	free(k->rcv);
	free(k->acks);
}

void
kcp_release(kcp_t *k)
{
	if (!k)
		return;
	free_buffers(k);
	free(k);
}

void
kcp_setoutput(kcp_t *k, kcp_output_fn output)
{
	k->output = output;
}

/* Release rings that hold nothing. Called when the object has been idle. */
static void
trim(struct kcp *k)
{
	if (k->snd && k->snd_una == k->snd_end) {
		free(k->snd);
		k->snd = NULL;
		k->scap = 0;
	}
	if (k->rcv && k->rcv_head == k->rcv_nxt) {
		int any = 0;
		for (uint32_t i = 0; i < k->rcap && !any; i++)
			any = k->rcv[i].present;
		if (!any) {
			free(k->rcv);
			k->rcv = NULL;
			k->rcap = 0;
		}
	}
	if (k->acks && k->nack == 0) {
		free(k->acks);
		k->acks = NULL;
		k->ackcap = 0;
	}
}

/* ---- sending ---------------------------------------------------------- */

int
kcp_maxmsg(const kcp_t *k)
{
	return (int)(k->mss * umin(k->rcv_wnd, KCP_FRG_MAX));
}

static int
stream_append(struct kcp *k, const char **buf, int *len)
{
	struct snd_rec *r = sslot(k, k->snd_end - 1);
	uint32_t room = k->mss - r->len;
	uint32_t n = umin(room, (uint32_t)*len);
	uint32_t nl = r->len + n;
	if (nl > KCP_INLINE && (r->len <= KCP_INLINE ||
	                        kcp_pool_class(nl) != kcp_pool_class(r->len))) {
		char *p;
		if (payload_alloc(k, &p, nl))
			return KCP_ENOMEM;
		memcpy(p, sdata(r), r->len);
		payload_free(k, r->d.ptr, r->len);
		r->d.ptr = p;
	} /* else: inline, or the same class, whose buffer has room */
	memcpy(nl > KCP_INLINE ? r->d.ptr + r->len : r->d.inl + r->len, *buf, n);
	r->len = nl;
	k->snd_bytes += n;
	*buf += n;
	*len -= (int)n;
	return 0;
}

int
kcp_send(kcp_t *k, const char *buf, int len)
{
	if (len < 0 || (!buf && len > 0))
		return KCP_EINVAL;
	if (k->dead)
		return KCP_EDEAD;

	/* Stream mode: top up the last queued segment first. */
	if (k->stream && k->snd_end != k->snd_nxt && len > 0) {
		struct snd_rec *last = sslot(k, k->snd_end - 1);
		if (last->len < k->mss) {
			int rc = stream_append(k, &buf, &len);
			if (rc)
				return rc;
			if (len == 0)
				return 0;
		}
	}

	uint32_t count = len <= (int)k->mss ? 1 : ((uint32_t)len + k->mss - 1) / k->mss;
	if (!k->stream && count > umin(k->rcv_wnd, KCP_FRG_MAX))
		return KCP_ETOOBIG;
	uint32_t waiting = k->snd_end - k->snd_una - k->nsacked;
	if (k->sndlimit && waiting + count > k->sndlimit)
		return KCP_EFULL;
	if (snd_reserve(k, k->snd_end - k->snd_una + count))
		return KCP_ENOMEM;

	/* Allocate every payload before touching state, so ENOMEM changes
	 * nothing. Records past snd_end are free slots of the ring. */
	for (uint32_t i = 0; i < count; i++) {
		struct snd_rec *r = sslot(k, k->snd_end + i);
		uint32_t n = umin(k->mss, (uint32_t)len - i * k->mss);
		if (payload_alloc(k, &r->d.ptr, n)) {
			while (i-- > 0) {
				r = sslot(k, k->snd_end + i);
				payload_free(k, r->d.ptr, umin(k->mss, (uint32_t)len - i * k->mss));
			}
			return KCP_ENOMEM;
		}
	}
	for (uint32_t i = 0; i < count; i++) {
		struct snd_rec *r = sslot(k, k->snd_end);
		uint32_t n = umin(k->mss, (uint32_t)len - i * k->mss);
		r->len = n;
		r->frg = k->stream ? 0 : (uint8_t)(count - i - 1);
		r->acked = 0;
		r->xmit = 0;
		r->fastack = 0;
		if (n)
			memcpy(sdata(r), buf + (size_t)i * k->mss, n);
		k->snd_bytes += n;
		k->snd_end++;
	}
	k->used = 1;
	k->idle_flushes = 0;
	return 0;
}

int
kcp_waitsnd(const kcp_t *k)
{
	return (int)(k->snd_end - k->snd_una - k->nsacked);
}

uint64_t
kcp_waitbytes(const kcp_t *k)
{
	return k->snd_bytes;
}

/* ---- receiving -------------------------------------------------------- */

/* Move in-order segments from the out-of-order part into the queue while
 * the queue is shorter than the receive window. */
static void
rcv_advance(struct kcp *k)
{
	if (!k->rcv)
		return;
	while (k->rcv_nxt - k->rcv_head < k->rcv_wnd) {
		struct rcv_rec *r = rslot(k, k->rcv_nxt);
		if (!r->present || k->rcv_nxt - k->rcv_head >= k->rcap)
			break;
		k->rcv_nxt++;
	}
}

int
kcp_peeksize(const kcp_t *k)
{
	uint32_t total = 0;
	for (uint32_t sn = k->rcv_head; sn != k->rcv_nxt; sn++) {
		const struct rcv_rec *r = rslot(k, sn);
		total += r->len;
		if (r->frg == 0)
			return total > (uint32_t)INT32_MAX ? KCP_ETOOBIG : (int)total;
	}
	/* A full queue without a last fragment can never complete. */
	if (k->rcv_nxt - k->rcv_head >= k->rcv_wnd)
		return KCP_ETOOBIG;
	return KCP_EAGAIN;
}

int
kcp_recv(kcp_t *k, char *buf, int len)
{
	int size = kcp_peeksize(k);
	if (size < 0)
		return size;
	if (!buf || len < size)
		return KCP_ESMALL;
	int recover = k->rcv_nxt - k->rcv_head >= k->rcv_wnd;
	char *p = buf;
	for (;;) {
		struct rcv_rec *r = rslot(k, k->rcv_head);
		uint8_t frg = r->frg;
		if (r->len) {
			memcpy(p, rdata(r), r->len);
			p += r->len;
		}
		payload_free(k, r->d.ptr, r->len);
		r->present = 0;
		k->rcv_head++;
		if (frg == 0)
			break;
	}
	rcv_advance(k);
	/* The window reopened: tell the peer now rather than let it probe. */
	if (recover && k->rcv_nxt - k->rcv_head < k->rcv_wnd)
		k->probe |= ASK_TELL;
	return size;
}

/* ---- input ------------------------------------------------------------ */

static void
update_rtt(struct kcp *k, int32_t rtt)
{
	if (k->rx_srtt == 0) {
		k->rx_srtt = rtt;
		k->rx_rttval = rtt / 2;
	} else {
		int32_t delta = rtt - k->rx_srtt;
		if (delta < 0)
			delta = -delta;
		k->rx_rttval = (3 * k->rx_rttval + delta) / 4;
		k->rx_srtt = (7 * k->rx_srtt + rtt) / 8;
		if (k->rx_srtt < 1)
			k->rx_srtt = 1;
	}
	uint32_t var = 4 * (uint32_t)k->rx_rttval;
	uint32_t rto = (uint32_t)k->rx_srtt + (var > k->interval ? var : k->interval);
	if (rto < k->rx_minrto)
		rto = k->rx_minrto;
	if (rto > RTO_MAX)
		rto = RTO_MAX;
	k->rx_rto = rto;
}

/* Drop acked records from the front of the send ring. */
static void
snd_shrink(struct kcp *k)
{
	while (k->snd_una != k->snd_nxt) {
		struct snd_rec *r = sslot(k, k->snd_una);
		if (!r->acked)
			break;
		k->nsacked--;
		k->snd_una++;
	}
}

static void
parse_una(struct kcp *k, uint32_t una)
{
	while (diff(una, k->snd_una) > 0) {
		struct snd_rec *r = sslot(k, k->snd_una);
		if (r->acked) {
			k->nsacked--;
		} else {
			payload_free(k, r->d.ptr, r->len);
			k->snd_bytes -= r->len;
			k->newly_acked++;
		}
		k->snd_una++;
	}
	snd_shrink(k);
}

static void
parse_ack(struct kcp *k, uint32_t sn)
{
	if (diff(sn, k->snd_una) < 0 || diff(sn, k->snd_nxt) >= 0)
		return;
	struct snd_rec *r = sslot(k, sn);
	if (r->acked)
		return;
	payload_free(k, r->d.ptr, r->len);
	k->snd_bytes -= r->len;
	r->acked = 1;
	k->nsacked++;
	k->newly_acked++;
	snd_shrink(k);
}

static void
parse_fastack(struct kcp *k, uint32_t maxack)
{
	if (diff(maxack, k->snd_una) < 0 || diff(maxack, k->snd_nxt) >= 0)
		return;
	for (uint32_t sn = k->snd_una; sn != maxack; sn++) {
		struct snd_rec *r = sslot(k, sn);
		if (!r->acked && ++r->fastack >= k->fastresend && k->fastresend > 0)
			k->fast_due = 1;
	}
}

/* Queue an ack; space was reserved by ack_reserve, or the list is at its
 * bound and the ack is dropped (una in every segment still covers it). */
static void
ack_push(struct kcp *k, uint32_t sn, uint32_t ts)
{
	if (k->nack == k->ackcap) {
		k->st.acks_dropped++;
		return;
	}
	k->acks[k->nack].sn = sn;
	k->acks[k->nack].ts = ts;
	k->nack++;
}

/* Store a PUSH segment with sn in [rcv_nxt, rcv_nxt + rcv_wnd); the ring
 * already reaches sn. Returns 0 or KCP_ENOMEM. */
static int
rcv_store(struct kcp *k, uint32_t sn, uint8_t frg, const char *data, uint32_t len)
{
	struct rcv_rec *r = rslot(k, sn);
	if (r->present) {
		k->st.in_dup++;
		return 0;
	}
	if (payload_alloc(k, &r->d.ptr, len))
		return KCP_ENOMEM;
	r->len = len;
	r->frg = frg;
	r->present = 1;
	if (len)
		memcpy(rdata(r), data, len);
	if (sn == k->rcv_nxt)
		rcv_advance(k);
	return 0;
}

/* Check every segment of a datagram before applying any. Returns 0 or an
 * error code; *span is how far past rcv_head the recv ring must reach for
 * the PUSH segments it carries, *npush how many acks they may queue. */
static int
validate(const struct kcp *k, const char *data, long size, uint32_t *span,
         uint32_t *npush)
{
	*span = 0;
	*npush = 0;
	if (!data || size < KCP_OVERHEAD)
		return KCP_ETRUNC;
	while (size > 0) {
		if (size < KCP_OVERHEAD)
			return KCP_ETRUNC;
		if (get32(data) != k->conv)
			return KCP_ECONV;
		uint8_t cmd = (uint8_t)data[4];
		uint32_t sn = get32(data + 12);
		uint32_t una = get32(data + 16);
		uint32_t len = get32(data + 20);
		if (cmd < KCP_CMD_PUSH || cmd > KCP_CMD_WINS)
			return KCP_ECMD;
		if (len > KCP_MTU_MAX)
			return KCP_ELEN;
		if ((long)len > size - KCP_OVERHEAD)
			return KCP_ETRUNC;
		if (diff(una, k->snd_nxt) > 0)
			return KCP_EUNA;
		if (cmd == KCP_CMD_ACK && diff(sn, k->snd_nxt) >= 0)
			return KCP_EUNA;
		if (cmd == KCP_CMD_PUSH && diff(sn, k->rcv_nxt + k->rcv_wnd) < 0) {
			(*npush)++;
			if (diff(sn, k->rcv_nxt) >= 0 && sn - k->rcv_head + 1 > *span)
				*span = sn - k->rcv_head + 1;
		}
		data += KCP_OVERHEAD + len;
		size -= KCP_OVERHEAD + (long)len;
	}
	return 0;
}

/* Grow the ack list to hold n more acks, up to its bound. */
static int
ack_reserve(struct kcp *k, uint32_t n)
{
	uint32_t limit = 2 * k->rcv_wnd;
	uint32_t want = umin(k->nack + n, limit);
	if (want <= k->ackcap)
		return 0;
	uint32_t cap = k->ackcap ? k->ackcap : 16;
	while (cap < want)
		cap *= 2;
	cap = umin(cap, limit);
	struct ack *a = realloc(k->acks, cap * sizeof(*a));
	if (!a)
		return KCP_ENOMEM;
	k->acks = a;
	k->ackcap = cap;
	return 0;
}

int
kcp_input(kcp_t *k, const char *data, long size)
{
	uint32_t span, npush;
	int rc = validate(k, data, size, &span, &npush);
	if (rc) {
		k->st.in_errors++;
		return rc;
	}
	/* Reserve ring and ack space first, so a failed allocation cannot
	 * leave the datagram half applied (a large payload's own malloc still
	 * can: then that one segment is dropped and will be resent). */
	if (rcv_reserve(k, span) || ack_reserve(k, npush))
		return KCP_ENOMEM;
	k->st.in_datagrams++;
	k->used = 1;
	k->idle_flushes = 0;

	uint32_t prev_una = k->snd_una;
	uint32_t maxack = 0;
	k->newly_acked = 0;
	int have_ack = 0;
	while (size > 0) {
		uint8_t cmd = (uint8_t)data[4];
		uint8_t frg = (uint8_t)data[5];
		uint16_t wnd = (uint16_t)((uint8_t)data[6] | (uint8_t)data[7] << 8);
		uint32_t ts = get32(data + 8);
		uint32_t sn = get32(data + 12);
		uint32_t una = get32(data + 16);
		uint32_t len = get32(data + 20);
		const char *payload = data + KCP_OVERHEAD;
		data += KCP_OVERHEAD + len;
		size -= KCP_OVERHEAD + (long)len;
		k->st.in_segments++;

		k->rmt_wnd = wnd;
		parse_una(k, una);

		switch (cmd) {
		case KCP_CMD_ACK: {
			int32_t rtt = diff(k->current, ts);
			if (rtt >= 0 && rtt <= RTO_MAX)
				update_rtt(k, rtt);
			parse_ack(k, sn);
			if (!have_ack || diff(sn, maxack) > 0)
				maxack = sn;
			have_ack = 1;
			break;
		}
		case KCP_CMD_PUSH:
			if (diff(sn, k->rcv_nxt + k->rcv_wnd) >= 0)
				break; /* beyond the window: neither kept nor acked */
			if (diff(sn, k->rcv_nxt) < 0) {
				k->st.in_dup++;
			} else if (rcv_store(k, sn, frg, payload, len)) {
				rc = KCP_ENOMEM; /* not acked: it will be resent */
				break;
			}
			ack_push(k, sn, ts);
			break;
		case KCP_CMD_WASK:
			k->probe |= ASK_TELL;
			break;
		default: /* WINS: the window was taken from the header */
			break;
		}
	}
	if (have_ack)
		parse_fastack(k, maxack);

	if (k->newly_acked)
		k->ts_lastack = k->current;
	if (k->recovering && diff(k->snd_una, k->recover_sn) >= 0)
		k->recovering = 0; /* the loss episode is over */
	/* Congestion window growth when una advanced. */
	if (diff(k->snd_una, prev_una) > 0 && k->cwnd < k->rmt_wnd) {
		uint32_t mss = k->mss;
		if (k->cwnd < k->ssthresh) {
			uint32_t n = k->newly_acked;
			k->cwnd += n;
			k->incr += n * mss;
		} else {
			if (k->incr < mss)
				k->incr = mss;
			k->incr += (mss * mss) / k->incr + mss / 16;
			if ((k->cwnd + 1) * mss <= k->incr)
				k->cwnd = (k->incr + mss - 1) / mss;
		}
		if (k->cwnd > k->rmt_wnd) {
			k->cwnd = k->rmt_wnd;
			k->incr = k->rmt_wnd * mss;
		}
	}
	return rc;
}

/* ---- output ----------------------------------------------------------- */

struct outbuf {
	struct kcp *k;
	char *base, *p;
};

static void
out_flush(struct outbuf *o)
{
	int n = (int)(o->p - o->base);
	if (n > 0) {
		o->k->st.out_datagrams++;
		o->k->st.out_bytes += (uint64_t)n;
		if (o->k->output)
			o->k->output(o->base, n, o->k, o->k->user);
	}
	o->p = o->base;
}

/* Room for need more bytes in this datagram, sending it first if not. */
static inline void
out_room(struct outbuf *o, uint32_t need)
{
	if ((uint32_t)(o->p - o->base) + need > o->k->mtu)
		out_flush(o);
}

static uint16_t
wnd_unused(const struct kcp *k)
{
	uint32_t q = k->rcv_nxt - k->rcv_head;
	uint32_t w = q < k->rcv_wnd ? k->rcv_wnd - q : 0;
	return (uint16_t)(w > 0xffff ? 0xffff : w);
}

/* The send window: remote window and our own, and the congestion window
 * unless nc is set. */
static uint32_t
send_window(const struct kcp *k)
{
	uint32_t cwnd = umin(k->snd_wnd, k->rmt_wnd);
	return k->nocwnd ? cwnd : umin(k->cwnd, cwnd);
}

static void
send_push(struct kcp *k, struct outbuf *o, struct snd_rec *r, uint32_t sn,
          uint16_t wnd)
{
	r->xmit++;
	r->ts = k->current;
	out_room(o, KCP_OVERHEAD + r->len);
	o->p = encode(o->p, k->conv, KCP_CMD_PUSH, r->frg, wnd, k->current, sn,
	              k->rcv_nxt, r->len);
	if (r->len) {
		memcpy(o->p, sdata(r), r->len);
		o->p += r->len;
	}
	k->st.out_segments++;
	k->st.out_push++;
	if (r->xmit >= k->dead_link)
		k->dead = 1;
}

/* Send acks, window messages and data. A full flush (at the flush
 * interval) also retransmits and runs the window-probe timer; a light one
 * (in between, see kcp_update) sends only acks and new segments. */
static void
flush(struct kcp *k, int full)
{
	char buf[KCP_MTU_MAX];
	struct outbuf o = {k, buf, buf};
	uint16_t wnd = wnd_unused(k);
	uint32_t now = k->current;

	for (uint32_t i = 0; i < k->nack; i++) {
		out_room(&o, KCP_OVERHEAD);
		o.p = encode(o.p, k->conv, KCP_CMD_ACK, 0, wnd, k->acks[i].ts,
		             k->acks[i].sn, k->rcv_nxt, 0);
		k->st.out_segments++;
	}
	k->nack = 0;

	/* Zero remote window: probe it with a growing interval. The classic
	 * library waits 7 s first, so one lost WINS stalls the stream for 7 s;
	 * we start at one RTO and back off by half up to 120 s. */
	if (!full) {
		/* the probe timer runs at full flushes only */
	} else if (k->rmt_wnd == 0) {
		if (k->probe_wait == 0) {
			k->probe_wait = k->rx_rto;
			k->ts_probe = now + k->probe_wait;
		} else if (diff(now, k->ts_probe) >= 0) {
			k->probe_wait += k->probe_wait / 2;
			if (k->probe_wait > PROBE_LIMIT)
				k->probe_wait = PROBE_LIMIT;
			k->ts_probe = now + k->probe_wait;
			k->probe |= ASK_SEND;
		}
	} else {
		k->ts_probe = 0;
		k->probe_wait = 0;
	}
	if (k->probe & ASK_SEND) {
		out_room(&o, KCP_OVERHEAD);
		o.p = encode(o.p, k->conv, KCP_CMD_WASK, 0, wnd, 0, 0, k->rcv_nxt, 0);
		k->st.out_segments++;
		k->st.probes++;
	}
	if (k->probe & ASK_TELL) {
		out_room(&o, KCP_OVERHEAD);
		o.p = encode(o.p, k->conv, KCP_CMD_WINS, 0, wnd, 0, 0, k->rcv_nxt, 0);
		k->st.out_segments++;
	}
	k->probe = 0;

	if (k->dead) {
		out_flush(&o);
		return;
	}

	/* Admit queued segments into flight while the window allows. */
	uint32_t cwnd = send_window(k);
	uint32_t first_new = k->snd_nxt;
	while (k->snd_nxt != k->snd_end && diff(k->snd_nxt, k->snd_una + cwnd) < 0)
		k->snd_nxt++;

	uint32_t resent = k->fastresend > 0 ? k->fastresend : 0xffffffffu;
	uint32_t rtomin = k->nodelay == 0 ? k->rx_rto >> 3 : 0;
	int change = 0, lost = 0;
	uint32_t next_resend = now + RTO_MAX;
	/* Segments sent before need a look only when a timeout or a fast
	 * retransmit can be due: most flushes send new data only. */
	int scan = full && (k->fast_due || diff(now, k->next_resend) >= 0);
	if (!scan && first_new != k->snd_una)
		next_resend = k->next_resend;
	if (scan)
		k->fast_due = 0;

	for (uint32_t sn = scan ? k->snd_una : first_new; sn != k->snd_nxt; sn++) {
		struct snd_rec *r = sslot(k, sn);
		if (r->acked)
			continue;
		if (r->xmit == 0) {
			/* new data has waited in the queue, out of cache: start
			 * loading the next segment's payload while this one is
			 * copied */
			if (sn + 1 != k->snd_nxt) {
				struct snd_rec *nx = sslot(k, sn + 1);
				if (nx->len > KCP_INLINE) /* the hardware follows on */
					for (uint32_t off = 0; off < nx->len && off < 256; off += 64)
						__builtin_prefetch(nx->d.ptr + off);
			}
			r->rto = k->rx_rto;
			r->resendts = now + r->rto + rtomin;
			send_push(k, &o, r, sn, wnd);
		} else if (diff(now, r->resendts) >= 0) {
			k->st.retrans_timeout++;
			if (k->nodelay == 0)
				r->rto += r->rto > k->rx_rto ? r->rto : k->rx_rto;
			else
				r->rto += (k->nodelay < 2 ? r->rto : k->rx_rto) / 2;
			/* Unlike the classic library, the backoff is capped, so a
			 * silent link is declared dead in minutes, not hours. */
			if (r->rto > RTO_MAX)
				r->rto = RTO_MAX;
			r->resendts = now + r->rto;
			r->fastack = 0; /* counts acks after this send only */
			/* one cut per loss episode: not for segments sent
			 * before the last cut */
			if (!k->recovering || diff(sn, k->recover_sn) >= 0)
				lost = 1;
			send_push(k, &o, r, sn, wnd);
		} else if (r->fastack >= resent &&
		           (r->xmit <= k->fastlimit || k->fastlimit == 0)) {
			k->st.retrans_fast++;
			r->fastack = 0;
			r->resendts = now + r->rto;
			change++;
			send_push(k, &o, r, sn, wnd);
		}
		if (diff(r->resendts, next_resend) < 0)
			next_resend = r->resendts;
	}
	k->next_resend = next_resend;
	out_flush(&o);

	if (change) {
		uint32_t inflight = k->snd_nxt - k->snd_una;
		k->ssthresh = inflight / 2;
		if (k->ssthresh < THRESH_MIN)
			k->ssthresh = THRESH_MIN;
		k->cwnd = k->ssthresh + resent;
		k->incr = k->cwnd * k->mss;
	}
	if (lost) {
		k->ssthresh = cwnd / 2;
		if (k->ssthresh < THRESH_MIN)
			k->ssthresh = THRESH_MIN;
		if (diff(now, k->ts_lastack) < (int32_t)k->rx_rto) {
			k->cwnd = k->ssthresh;
			k->recover_sn = k->snd_nxt;
			k->recovering = 1;
		} else {
			k->cwnd = 1;
		}
		k->incr = k->cwnd * k->mss;
	}
	if (k->cwnd < 1) {
		k->cwnd = 1;
		k->incr = k->mss;
	}
}

void
kcp_flush(kcp_t *k)
{
	if (k->updated)
		flush(k, 1);
}

/* Work that need not wait for the flush interval: acks, a reopened window,
 * new data the window lets out. */
static int
eager_work(const struct kcp *k)
{
	return ((k->eager & KCP_EAGER_ACK) && (k->nack > 0 || (k->probe & ASK_TELL))) ||
	       ((k->eager & KCP_EAGER_DATA) && k->snd_nxt != k->snd_end && !k->dead &&
	        diff(k->snd_nxt, k->snd_una + send_window(k)) < 0);
}

int
kcp_idle(const kcp_t *k)
{
	return k->snd_una == k->snd_end && k->nack == 0 && k->probe == 0 &&
	       k->rmt_wnd != 0;
}

int
kcp_update(kcp_t *k, uint32_t current)
{
	k->current = current;
	if (!k->updated) {
		k->updated = 1;
		k->ts_flush = current;
		k->ts_lastack = current;
	}
	int32_t slap = diff(current, k->ts_flush);
	if (slap >= 10000 || slap < -10000) {
		k->ts_flush = current;
		slap = 0;
	}
	if (slap >= 0) {
		k->ts_flush += k->interval;
		if (diff(current, k->ts_flush) >= 0)
			k->ts_flush = current + k->interval;
		flush(k, 1);
		if (kcp_idle(k)) {
			if (++k->idle_flushes >= TRIM_FLUSHES && (k->snd || k->rcv || k->acks))
				trim(k);
		} else {
			k->idle_flushes = 0;
		}
	} else if (k->eager && eager_work(k)) {
		flush(k, 0);
	}
	return k->dead ? KCP_EDEAD : 0;
}

uint32_t
kcp_check(const kcp_t *k, uint32_t current)
{
	if (!k->updated || (k->eager && eager_work(k)))
		return current;
	uint32_t ts_flush = k->ts_flush;
	int32_t d = diff(current, ts_flush);
	if (d >= 10000 || d < -10000)
		ts_flush = current;
	if (diff(current, ts_flush) >= 0)
		return current;
	uint32_t minimal = ts_flush - current;
	if (k->snd_una != k->snd_nxt) {
		/* Resends are made only by the flush at ts_flush: one already
		 * due waits for it. (Returning current here, as classic KCP
		 * does, makes a caller that trusts check spin until ts_flush.) */
		int32_t r = diff(k->next_resend, current);
		if (r > 0 && (uint32_t)r < minimal)
			minimal = (uint32_t)r;
	}
	if (minimal > k->interval)
		minimal = k->interval;
	return current + minimal;
}

/* ---- settings --------------------------------------------------------- */

int
kcp_setmtu(kcp_t *k, int mtu)
{
	if (mtu < KCP_MTU_MIN || mtu > KCP_MTU_MAX)
		return KCP_EINVAL;
	k->mtu = (uint32_t)mtu;
	k->mss = k->mtu - KCP_OVERHEAD;
	return 0;
}

int
kcp_getmtu(const kcp_t *k)
{
	return (int)k->mtu;
}

int
kcp_wndsize(kcp_t *k, int sndwnd, int rcvwnd)
{
	if (sndwnd > 0)
		k->snd_wnd = (uint32_t)sndwnd;
	if (rcvwnd > 0) {
		uint32_t w = (uint32_t)rcvwnd;
		if (w < KCP_WND_RCV_DEFAULT)
			w = KCP_WND_RCV_DEFAULT;
		if (w > 0xffff)
			w = 0xffff; /* the wnd field is 16 bits */
		k->rcv_wnd = w;
	}
	return 0;
}

int
kcp_nodelay(kcp_t *k, int nodelay, int interval, int resend, int nc)
{
	if (nodelay >= 0) {
		k->nodelay = (uint32_t)nodelay;
		k->rx_minrto = nodelay ? RTO_NDL : RTO_MIN;
	}
	if (interval >= 0) {
		if (interval > 5000)
			interval = 5000;
		else if (interval < 10)
			interval = 10;
		k->interval = (uint32_t)interval;
	}
	if (resend >= 0)
		k->fastresend = (uint32_t)resend;
	if (nc >= 0)
		k->nocwnd = (uint32_t)nc;
	return 0;
}

void
kcp_seteager(kcp_t *k, int flags)
{
	k->eager = (uint8_t)(flags & (KCP_EAGER_ACK | KCP_EAGER_DATA));
}

void
kcp_setstream(kcp_t *k, int on)
{
	k->stream = on != 0;
}

void
kcp_setminrto(kcp_t *k, int ms)
{
	k->rx_minrto = ms > 0 ? (uint32_t)ms : 1;
}

void
kcp_setdeadlink(kcp_t *k, int xmit)
{
	k->dead_link = xmit > 0 ? (uint32_t)xmit : DEADLINK_DEF;
}

void
kcp_setfastlimit(kcp_t *k, int xmit)
{
	k->fastlimit = xmit > 0 ? (uint32_t)xmit : 0;
}

void
kcp_setsndlimit(kcp_t *k, int segments)
{
	k->sndlimit = segments > 0 ? (uint32_t)segments : 0;
}

int
kcp_isdead(const kcp_t *k)
{
	return k->dead;
}

void
kcp_rewind(kcp_t *k)
{
	for (uint32_t sn = k->snd_una; sn != k->snd_nxt; sn++) {
		struct snd_rec *r = sslot(k, sn);
		if (r->acked)
			continue;
		r->rto = k->rx_rto;
		r->resendts = k->current;
		r->fastack = 0;
		if (r->xmit > 1)
			r->xmit = 1;
	}
	k->next_resend = k->current;
	k->ts_flush = k->current; /* the next update is a full flush */
}

int
kcp_setnext(kcp_t *k, uint32_t snd_sn, uint32_t rcv_sn)
{
	if (k->used)
		return KCP_EINVAL;
	k->snd_una = k->snd_nxt = k->snd_end = snd_sn;
	k->rcv_head = k->rcv_nxt = rcv_sn;
	return 0;
}

uint32_t
kcp_getconv(const kcp_t *k)
{
	return k->conv;
}

uint32_t
kcp_conv_of(const void *data, long size)
{
	return size < KCP_OVERHEAD ? 0 : get32(data);
}

int
kcp_srtt(const kcp_t *k)
{
	return k->rx_srtt;
}

int
kcp_rto(const kcp_t *k)
{
	return (int)k->rx_rto;
}

size_t
kcp_memsize(const kcp_t *k)
{
	return sizeof(*k) + (size_t)k->scap * sizeof(struct snd_rec) +
	       (size_t)k->rcap * sizeof(struct rcv_rec) +
	       (size_t)k->ackcap * sizeof(struct ack) + k->heap;
}

void
kcp_getstats(const kcp_t *k, struct kcp_stats *st)
{
	*st = k->st;
}

const char *
kcp_strerror(int code)
{
	switch (code) {
	case 0: return "ok";
	case KCP_EAGAIN: return "no complete message";
	case KCP_ETOOBIG: return "message larger than the receive window";
	case KCP_ESMALL: return "buffer smaller than the message";
	case KCP_EINVAL: return "invalid argument";
	case KCP_ETRUNC: return "truncated segment";
	case KCP_ECONV: return "conv mismatch";
	case KCP_ECMD: return "unknown command";
	case KCP_EUNA: return "acknowledges data never sent";
	case KCP_ELEN: return "segment longer than the maximum";
	case KCP_EDEAD: return "dead link";
	case KCP_ENOMEM: return "out of memory";
	case KCP_EFULL: return "send queue full";
	default: return "unknown error";
	}
}
