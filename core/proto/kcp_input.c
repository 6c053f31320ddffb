/*
 * kcp_input.c - the receiving half of moongate's KCP: a datagram in
 * (validated whole before any of it is applied), acks and una freeing the
 * send ring, RTT estimation, congestion window growth, the receive ring and
 * kcp_recv. See kcp.h for the contract, kcp_int.h for the rings.
 */
#include "kcp_int.h"

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
	k->due_ok = 0;
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

/* RFC 6298's estimator (gains 1/8 and 1/4, as the classic library), kept
 * in 1/8 ms as BSD and Linux keep theirs: the classic library's whole-ms
 * arithmetic truncates at every step and so drifts low, by up to a ms in
 * srtt and more in 4 x rttvar, which on a short RTT is the whole margin.
 * rx_srtt and rx_rttval are the ms values kcp_srtt reports (srtt at least
 * 1: 0 means no sample yet); kcp_rto_refresh makes the RTO. */
static void
update_rtt(struct kcp *k, int32_t rtt)
{
	int32_t r8 = rtt * 8;
	if (k->rx_srtt == 0) {
		k->srtt8 = r8;
		k->rttvar8 = r8 / 2;
	} else {
		int32_t err = r8 - k->srtt8;
		k->srtt8 += err / 8;
		if (err < 0)
			err = -err;
		k->rttvar8 += (err - k->rttvar8) / 4;
	}
	k->rx_srtt = (k->srtt8 + 4) / 8;
	if (k->rx_srtt < 1)
		k->rx_srtt = 1;
	k->rx_rttval = (k->rttvar8 + 4) / 8;
	kcp_rto_refresh(k);
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
	if (k->nack == 0)
		k->ack_since = k->current;
	k->acks[k->nack].sn = sn;
	k->acks[k->nack].ts = ts;
	k->nack++;
}

/* Acks that ride (kcp_setmaxackdelay): the ack just queued, and those
 * before it, must not wait when its segment says something went wrong
 * (urgent: out of order or a duplicate, as TCP and QUIC ack at once), or
 * when the peer is sending bulk (full: a full-size segment; every
 * RIDE_FULL of them, as TCP) or RIDE_MAX acks wait: its window must keep
 * moving. */
static void
ride_check(struct kcp *k, int urgent, int full)
{
	if (full)
		k->ack_full++;
	if (!k->ack_now && (urgent || k->ack_full >= RIDE_FULL || k->nack >= RIDE_MAX)) {
		k->ack_now = 1;
		k->st.acks_now++;
	}
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
kcp_input_at(kcp_t *k, const char *data, long size, uint32_t current)
{
	if (!k->updated || diff(current, k->current) > 0)
		k->current = current;
	return kcp_input(k, data, size);
}

int
kcp_input(kcp_t *k, const char *data, long size)
{
	k->due_ok = 0;
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
	int32_t rtt_max = -1;  /* the datagram's RTT sample: its oldest ack */
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
			if (rtt >= 0 && rtt <= RTO_MAX && rtt > rtt_max)
				rtt_max = rtt;
			parse_ack(k, sn);
			if (!have_ack || diff(sn, maxack) > 0)
				maxack = sn;
			have_ack = 1;
			break;
		}
		case KCP_CMD_PUSH: {
			if (diff(sn, k->rcv_nxt + k->rcv_wnd) >= 0)
				break; /* beyond the window: neither kept nor acked */
			uint32_t nxt = k->rcv_nxt;
			int urgent = 0;
			if (diff(sn, nxt) < 0) {
				k->st.in_dup++;
				urgent = 1; /* the peer resent it: its ack was late or lost */
			} else if (rcv_store(k, sn, frg, payload, len)) {
				rc = KCP_ENOMEM; /* not acked: it will be resent */
				break;
			} else if (sn != nxt || k->rcv_nxt - nxt > 1) {
				urgent = 1; /* a gap opened, or this one closed it */
			}
			ack_push(k, sn, ts);
			if (k->ackride)
				ride_check(k, urgent, frg > 0 || len >= k->mss);
			break;
		}
		case KCP_CMD_WASK:
			k->probe |= ASK_TELL;
			break;
		default: /* WINS: the window was taken from the header */
			break;
		}
	}
	if (have_ack)
		parse_fastack(k, maxack);
	/* One RTT sample per datagram, not one per ack: the acks of a burst
	 * travel together with equal or near timestamps, and fed one by one
	 * they would count the same delay many times, draining rttvar (here
	 * 4 x rttvar is most of the RTO) until jitter looks like loss. The
	 * oldest ack's is kept: it waited longest for its ack, and the RTO
	 * must cover what the peer's ack timing costs the segments. */
	if (rtt_max >= 0)
		update_rtt(k, rtt_max);

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
