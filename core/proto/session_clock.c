/*
 * session_clock.c - the heartbeat of a session: PING every heartbeat_ms
 * (session_update sends it), PONG answered by session.c, and from the
 * PONGs the smoothed RTT and the peer's clock offset (session_stats).
 *
 * While traffic flows both ways (this end sent and received a KCP or
 * DGRAM packet within the last heartbeat_ms) the traffic does the
 * heartbeat's liveness job, and a PING goes only busy_heartbeat_ms after
 * the last one, for the RTT and the clock offset. When traffic stops the
 * usual interval is back: the PING is due heartbeat_ms after the last
 * one, or heartbeat_ms after the traffic's end if that is later, so the
 * peer never waits longer between two packets than without the stretch.
 * Timeouts are not touched: they count from the last packet received.
 */
#include "session_int.h"

void
session_send_ping(session_t *s, uint64_t now)
{
	uint8_t *b = session_txbuf + WIRE_HDR;
	wire_put32(b, ++s->ping_id);
	wire_put64(b + 4, now);
	session_send_sealed(s, WIRE_PING, 12);
	s->st.pings++;
	s->next_ping = now + (uint64_t)s->cfg.heartbeat_ms * 1000;
	s->ping_asap = 0;
}

uint64_t
session_ping_due(const session_t *s, uint64_t now)
{
	if (s->ping_asap || s->data_seen != 3 ||
	    s->cfg.busy_heartbeat_ms <= s->cfg.heartbeat_ms)
		return s->next_ping;
	/* busy until heartbeat_ms after the older of the two directions
	 * (ms, wrapping: ages, not instants, are compared) */
	uint32_t n = ms(now), a = n - s->data_rx, b = n - s->data_tx;
	uint32_t age = a > b ? a : b;
	if (age >= (uint32_t)s->cfg.heartbeat_ms)
		return s->next_ping;
	uint64_t end = now + (uint64_t)((uint32_t)s->cfg.heartbeat_ms - age) * 1000;
	uint64_t stretched = s->next_ping +
	        (uint64_t)(s->cfg.busy_heartbeat_ms - s->cfg.heartbeat_ms) * 1000;
	if (end < s->next_ping)
		end = s->next_ping;
	return end < stretched ? end : stretched;
}

void
session_on_pong(session_t *s, const uint8_t *b, uint64_t now)
{
	uint64_t t0 = wire_get64(b + 4), t1 = wire_get64(b + 12);
	if (t0 > now || now - t0 > 60000000)
		return; /* not a time we sent: ignore the sample */
	double r = (double)(now - t0);
	if (!s->have_rtt) {
		s->srtt = r;
		s->rttvar = r / 2;
		s->have_rtt = 1;
	} else {
		double d = s->srtt > r ? s->srtt - r : r - s->srtt;
		s->rttvar = 0.75 * s->rttvar + 0.25 * d;
		s->srtt = 0.875 * s->srtt + 0.125 * r;
	}
	/* The peer read its clock halfway through the round trip (NTP's
	 * assumption); keep the sample with the smallest RTT of the last few,
	 * the one least skewed by queueing. */
	int64_t off = (int64_t)(t1 - t0) - (int64_t)((now - t0) / 2);
	s->off_sample[s->sample_pos] = off;
	s->rtt_sample[s->sample_pos] = now - t0;
	s->sample_pos = (s->sample_pos + 1) % OFFSET_SAMPLES;
	if (s->nsamples < OFFSET_SAMPLES)
		s->nsamples++;
	int best = 0;
	for (int i = 1; i < s->nsamples; i++)
		if (s->rtt_sample[i] < s->rtt_sample[best])
			best = i;
	s->offset = s->off_sample[best];
	s->st.pongs++;
}

void
session_ping(session_t *s, uint64_t now)
{
	s->clock = now;
	if (s->keyed && s->state == SESSION_OPEN && s->role != RAW)
		session_send_ping(s, now);
	else if (s->role == CLIENT && s->state == SESSION_CLOSING &&
	         s->close_sent && s->offline)
		session_put_close(s); /* a closing client knocks with its CLOSE */
}
