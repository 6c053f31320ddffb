/*
 * session_fec.c - forward error correction for a session on unproven (UDP)
 * paths (session.h, fec_data): sealed packets go through the encoder and
 * leave framed as WIRE_FEC with the session id; a WIRE_FEC frame in is
 * decoded and what it carries (arrived or rebuilt) goes through
 * session_input, which authenticates it.
 */
#include "session_int.h"

/* One shard is framed here. Per thread, like session_txbuf. */
static _Thread_local uint8_t fecbuf[PKT_MAX + WIRE_FEC_HDR];

/* One FEC shard: framed with the session id, to fec_path. */
static void
fec_out(const uint8_t *shard, size_t len, void *user)
{
	session_t *s = user;
	if (len + WIRE_FEC_HDR > sizeof fecbuf)
		return;
	fecbuf[0] = WIRE_FEC;
	wire_put32(fecbuf + 1, s->sid);
	memcpy(fecbuf + WIRE_FEC_HDR, shard, len);
	s->st.out_packets++;
	s->st.out_bytes += len + WIRE_FEC_HDR;
	if (shard[0] == FEC_TYPE_PARITY)
		s->st.fec_parity_out++;
	s->cb.output(s, s->fec_path, fecbuf, len + WIRE_FEC_HDR, s->user);
}

static void
fec_drop(const uint8_t *shard, size_t len, void *user)
{
	(void)shard; (void)len; (void)user;
}

/* One sealed packet into the encoder: it and, when a group is full, its
 * parity leave on path. */
void
session_fec_send(session_t *s, uint32_t path, const uint8_t *pkt, size_t len)
{
	s->fec_path = path;
	fec_enc_add(s->fec_enc, pkt, len, s->clock, fec_out, s);
}

void
session_fec_tick(session_t *s, uint64_t now)
{
	if (!s->fec_enc || fec_enc_check(s->fec_enc, now) > now)
		return;
	/* the group's time is up: its parity goes where data goes now, if
	 * that is still a UDP path */
	if (uses_fec(s, s->path)) {
		s->fec_path = s->path;
		fec_enc_update(s->fec_enc, now, fec_out, s);
	} else {
		fec_enc_flush(s->fec_enc, fec_drop, s);
	}
}

/* FEC on, both ways, k data and m parity per group (from the config on
 * the server, from the WELCOME on the client). -1 on bad values or out of
 * memory. */
int
session_fec_make(session_t *s)
{
	if (s->cfg.fec_data <= 0)
		return 0;
	struct fec_config fc;
	fec_config_default(&fc);
	fc.data = s->cfg.fec_data;
	fc.parity = s->cfg.fec_parity;
	fc.pkt_max = s->cfg.mtu - fec_room(&s->cfg);
	fc.groups = 16;
	if (fec_config_check(&fc) < 0)
		return -1;
	s->fec_enc = fec_enc_create(&fc);
	s->fec_dec = fec_dec_create(&fc);
	return s->fec_enc && s->fec_dec ? 0 : -1;
}

/* A packet the FEC decoder gives back (arrived, or rebuilt). */
static void
fec_deliver(uint8_t *pkt, size_t len, void *user)
{
	session_t *s = user;
	session_input(s, s->fec_path, pkt, len, s->clock);
}

/* An FEC frame: what it carries goes through session_input one by one
 * and is authenticated there; the frame itself proves nothing. */
int
session_fec_input(session_t *s, uint32_t path, uint8_t *pkt, size_t len,
                  uint64_t now)
{
	if (!s->fec_dec || s->fec_in || len <= WIRE_FEC_HDR ||
	    wire_get32(pkt + 1) != s->sid) {
		s->st.in_malformed++;
		return SESSION_EINPUT;
	}
	uint32_t saved = s->fec_path;
	s->fec_path = path;
	s->fec_in = 1;
	struct fec_dec_stats a, b;
	fec_dec_stats(s->fec_dec, &a);
	int rc = fec_dec_input(s->fec_dec, pkt + WIRE_FEC_HDR, len - WIRE_FEC_HDR,
	                       now, fec_deliver, s);
	fec_dec_stats(s->fec_dec, &b);
	s->fec_in = 0;
	s->fec_path = saved;
	s->st.fec_recovered += b.recovered - a.recovered;
	s->st.fec_dups += b.duplicates - a.duplicates;
	return rc == FEC_EDUP || rc >= 0 ? 0 : SESSION_EINPUT;
}
