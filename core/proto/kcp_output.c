/*
 * kcp_output.c - the sending half of moongate's KCP: the send queue
 * (kcp_send, stream mode), flush (acks, window probes, new segments,
 * timeout and fast retransmission, the congestion window cuts) and the
 * timers (kcp_update, kcp_check). See kcp.h for the contract, kcp_int.h for
 * the rings.
 */
#include "kcp_int.h"

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
	k->due_ok = 0;
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

/* ---- output ----------------------------------------------------------- */

struct outbuf {
	struct kcp *k;
	char *base, *p;
	int other;  /* the datagram holds a segment other than ACK */
};

static void
out_flush(struct outbuf *o)
{
	int n = (int)(o->p - o->base);
	if (n > 0) {
		o->k->st.out_datagrams++;
		o->k->st.out_bytes += (uint64_t)n;
		if (!o->other)
			o->k->st.out_ackonly++;
		if (o->k->output)
			o->k->output(o->base, n, o->k, o->k->user);
	}
	o->p = o->base;
	o->other = 0;
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
	o->other = 1;
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

/* This end's next new data is expected within ackride of the queued
 * acks' arrival (kcp_setmaxackdelay): the pace is known (two data
 * flushes at least), the stream has not missed two beats, and the next
 * beat, data_gap after the last, comes at most ackride after the acks. */
static int
ride_expected(const struct kcp *k)
{
	if (!k->ackride || !k->data_gap8)
		return 0;
	int32_t since = diff(k->ack_since, k->ts_lastdata);
	int32_t gap = (int32_t)((k->data_gap8 + 7) >> 3);
	return since >= 0 && since < 2 * gap && gap - since <= (int32_t)k->ackride;
}

/* Queued acks wait: to ride on the next data (kcp_setmaxackdelay), or a
 * fixed time (kcp_setackdelay, without KCP_EAGER_ACK). 1 and *until, the
 * time they leave by themselves; 0 when they do not wait (they leave at
 * once when eager, at the next flush in the classic timing). */
static int
ack_hold(const struct kcp *k, uint32_t *until)
{
	if (k->nack == 0 || k->ack_now)
		return 0;
	if (ride_expected(k)) {
		*until = k->ack_since + k->ackride;
		return 1;
	}
	if (!(k->eager & KCP_EAGER_ACK) && k->ackdelay > 0) {
		*until = k->ack_since + k->ackdelay;
		return 1;
	}
	return 0;
}

/* Acks wait, and are not yet due. */
static int
ack_held(const struct kcp *k, uint32_t now)
{
	uint32_t until;
	return ack_hold(k, &until) && diff(now, until) < 0;
}

/* Queued acks make a flush due now by themselves: eager, told to go now
 * (ack_now), or done waiting. */
static int
acks_go(const struct kcp *k, uint32_t now)
{
	uint32_t until;
	if (k->nack == 0)
		return 0;
	if (ack_hold(k, &until))
		return diff(now, until) >= 0;
	return (k->eager & KCP_EAGER_ACK) || k->ack_now;
}

static void
put_acks(struct kcp *k, struct outbuf *o, uint16_t wnd)
{
	for (uint32_t i = 0; i < k->nack; i++) {
		out_room(o, KCP_OVERHEAD);
		o->p = encode(o->p, k->conv, KCP_CMD_ACK, 0, wnd, k->acks[i].ts,
		              k->acks[i].sn, k->rcv_nxt, 0);
		k->st.out_segments++;
	}
	k->nack = 0;
	k->ack_now = 0;
	k->ack_full = 0;
}

/* New data left at now: the pace of this end's data, for acks that ride
 * (an average of the gaps, as srtt: gain 1/8). */
static void
data_sent(struct kcp *k, uint32_t now)
{
	if (k->sent_data) {
		int32_t g = diff(now, k->ts_lastdata);
		if (g <= 0)
			return; /* the same ms: one beat */
		if (g < RIDE_GAP_MAX) {
			int32_t g8 = g * 8;
			if (!k->data_gap8)
				k->data_gap8 = (uint32_t)g8;
			else
				k->data_gap8 = (uint32_t)((int32_t)k->data_gap8 +
				                          (g8 - (int32_t)k->data_gap8) / 8);
		}
	}
	k->sent_data = 1;
	k->ts_lastdata = now;
}

/* Send acks, window messages and data. A full flush (at the flush
 * interval) also retransmits and runs the window-probe timer; a light one
 * (in between, see kcp_update) sends only acks and new segments. */
static void
flush(struct kcp *k, int full)
{
	char buf[KCP_MTU_MAX];
	struct outbuf o = {k, buf, buf, 0};
	uint16_t wnd = wnd_unused(k);
	uint32_t now = k->current;

	/* Held acks (kcp_setackdelay) go last, and only with other segments
	 * or once due; the others first, as classic. */
	int hold = ack_held(k, now);
	if (!hold)
		put_acks(k, &o, wnd);
	uint64_t segs0 = k->st.out_segments;

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
		o.other = 1;
		o.p = encode(o.p, k->conv, KCP_CMD_WASK, 0, wnd, 0, 0, k->rcv_nxt, 0);
		k->st.out_segments++;
		k->st.probes++;
	}
	if (k->probe & ASK_TELL) {
		out_room(&o, KCP_OVERHEAD);
		o.other = 1;
		o.p = encode(o.p, k->conv, KCP_CMD_WINS, 0, wnd, 0, 0, k->rcv_nxt, 0);
		k->st.out_segments++;
	}
	k->probe = 0;

	if (k->dead) {
		if (hold && k->st.out_segments != segs0) {
			k->st.acks_rode += k->nack;
			put_acks(k, &o, wnd);
		}
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
	int change = 0, lost = 0, fresh = 0;
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
			fresh = 1;
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
	if (fresh)
		data_sent(k, now);
	if (hold && k->st.out_segments != segs0) {
		k->st.acks_rode += k->nack;
		put_acks(k, &o, wnd); /* they ride */
	}
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
	k->due_ok = 0;
	if (k->updated)
		flush(k, 1);
}

/* Work that need not wait for the flush interval: a reopened window, new
 * data the window lets out (acks: acks_go). */
static int
eager_work(const struct kcp *k)
{
	return ((k->eager & KCP_EAGER_ACK) && (k->probe & ASK_TELL)) ||
	       ((k->eager & KCP_EAGER_DATA) && k->snd_nxt != k->snd_end && !k->dead &&
	        diff(k->snd_nxt, k->snd_una + send_window(k)) < 0);
}

/* With KCP_EAGER_RESEND: a timeout or fast retransmission is due at
 * current (next_resend is a lower bound of the timers: at worst the scan
 * finds nothing due and makes it exact). */
static int
resend_due(const struct kcp *k, uint32_t current)
{
	return (k->eager & KCP_EAGER_RESEND) && k->snd_una != k->snd_nxt &&
	       !k->dead && (k->fast_due || diff(current, k->next_resend) >= 0);
}

int
kcp_idle(const kcp_t *k)
{
	return k->snd_una == k->snd_end && k->nack == 0 && k->probe == 0 &&
	       k->rmt_wnd != 0;
}

/* When kcp_update is next needed: kcp_check's answer, computed. */
static uint32_t
next_due(const struct kcp *k, uint32_t current)
{
	if (!k->updated || (k->eager && (eager_work(k) || resend_due(k, current))) ||
	    acks_go(k, current))
		return current;
	uint32_t ts_flush = k->ts_flush;
	int32_t d = diff(current, ts_flush);
	if (d >= 10000 || d < -10000)
		ts_flush = current;
	if (diff(current, ts_flush) >= 0)
		return current;
	uint32_t minimal = ts_flush - current, until;
	if (ack_hold(k, &until)) { /* not yet due: acks_go said so above */
		uint32_t a = until - current;
		if (a < minimal)
			minimal = a;
	}
	if (k->snd_una != k->snd_nxt) {
		/* Without KCP_EAGER_RESEND, resends are made only by the flush
		 * at ts_flush: one already due waits for it. (Returning current
		 * here, as classic KCP does, makes a caller that trusts check
		 * spin until ts_flush.) With it, a due one returned current
		 * above, and kcp_update's flush moves next_resend on. */
		int32_t r = diff(k->next_resend, current);
		if (r > 0 && (uint32_t)r < minimal)
			minimal = (uint32_t)r;
	}
	if (minimal > k->interval)
		minimal = k->interval;
	return current + minimal;
}

int
kcp_update(kcp_t *k, uint32_t current)
{
	k->due_ok = 0;
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
	} else if (resend_due(k, current)) {
		/* a retransmission is due before the next flush: a full one
		 * now (the probe timer keeps its own time), ts_flush stays */
		flush(k, 1);
	} else if ((k->eager && eager_work(k)) || acks_go(k, current)) {
		flush(k, 0);
	}
	k->due = next_due(k, current);
	k->due_at = current;
	k->due_ok = 1;
	return k->dead ? KCP_EDEAD : 0;
}

uint32_t
kcp_check(const kcp_t *k, uint32_t current)
{
	/* kcp_update just told it, and nothing changed since: a caller that
	 * updates then checks (the session, the gate's timer heap) pays once */
	if (k->due_ok && k->due_at == current)
		return k->due;
	return next_due(k, current);
}
