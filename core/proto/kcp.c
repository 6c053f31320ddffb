/*
 * kcp.c - moongate's KCP, written from the protocol's description: the
 * object, its storage and its settings. kcp_input.c takes datagrams in,
 * kcp_output.c queues, flushes and retransmits; kcp_int.h is what they
 * share.
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
#include "kcp_int.h"

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
	k->eager = KCP_EAGER_ALL;
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

/* ---- settings --------------------------------------------------------- */

/* RFC 6298's rto = srtt + max(G, 4 x rttvar), G the granularity of the
 * retransmission timer: the flush interval when retransmissions wait for
 * the flush (the classic library's term, which also covered its acks'
 * timestamps, up to an interval stale: see kcp_input_at), RTO_GRAN when
 * they leave at their due time. Bounded by [rx_minrto, RTO_MAX]. */
void
kcp_rto_refresh(struct kcp *k)
{
	if (k->rx_srtt == 0)
		return; /* no sample yet: RTO_DEF */
	uint32_t g = (k->eager & KCP_EAGER_RESEND) ? RTO_GRAN : k->interval;
	/* whole ms, rounded up */
	uint32_t srtt = ((uint32_t)k->srtt8 + 7) >> 3;
	uint32_t var = ((uint32_t)k->rttvar8 + 1) >> 1; /* 4 x rttvar */
	uint32_t rto = srtt + (var > g ? var : g);
	if (rto < k->rx_minrto)
		rto = k->rx_minrto;
	if (rto > RTO_MAX)
		rto = RTO_MAX;
	k->rx_rto = rto;
}

int
kcp_setmtu(kcp_t *k, int mtu)
{
	k->due_ok = 0;
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
	k->due_ok = 0;
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
	k->due_ok = 0;
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
	kcp_rto_refresh(k);
	return 0;
}

void
kcp_seteager(kcp_t *k, int flags)
{
	k->due_ok = 0;
	k->eager = (uint8_t)(flags & KCP_EAGER_ALL);
	kcp_rto_refresh(k);
}

void
kcp_setackdelay(kcp_t *k, int ms)
{
	k->due_ok = 0;
	k->ackdelay = ms > 0 ? (uint32_t)(ms < 5000 ? ms : 5000) : 0;
}

void
kcp_setmaxackdelay(kcp_t *k, int ms)
{
	k->due_ok = 0;
	k->ackride = ms > 0 ? (uint32_t)(ms < 5000 ? ms : 5000) : 0;
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
	if (k->rx_minrto > RTO_MAX)
		k->rx_minrto = RTO_MAX;
	kcp_rto_refresh(k);
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
	k->due_ok = 0;
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
	k->due_ok = 0;
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
