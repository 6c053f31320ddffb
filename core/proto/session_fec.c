/*
 * session_fec.c - forward error correction for a session on its UDP paths
 * (session.h, fec_data; docs/PROTOCOL.md, "Forward error correction").
 * Sealed packets go through the encoder and leave as WIRE_FEC frames with
 * the session id and a MAC of their own (wire_fec_seal); a WIRE_FEC frame
 * in is verified, then decoded, and what it carries (arrived or rebuilt)
 * goes through session_input, which authenticates it again as a packet.
 *
 * FEC never helps anyone prove a path (RFC 9000 §8.2: a challenge must be
 * answerable only by whoever receives at the challenged address):
 *
 *  - a group belongs to one path, both ways. The encoder's open group goes
 *    to fec_out_path only; a packet for another path closes it first. The
 *    decoder holds the groups of one path (spath.fec_dec); frames from any
 *    other path are taken one by one, never combined with it.
 *  - FEC goes only to a path the peer proved it receives on (server: a
 *    valid path) and never carries a probe: a PATH_CHALLENGE to a new
 *    address, and every byte within its amplification bound, leaves as a
 *    plain sealed packet, counted there.
 *  - nothing from an unproven path is kept: its data shards are taken one
 *    by one (the packet inside is authenticated as any), its parity is
 *    dropped (no group to rebuild).
 */
#include "session_int.h"

/* One frame is built here. Per thread, like session_txbuf. */
static _Thread_local uint8_t fecbuf[PKT_MAX + WIRE_FEC_HDR + WIRE_FEC_TAG];

/* FEC may go to path: a UDP path of the session that the peer proved it
 * receives on (the client's own paths are its sockets). */
static int
fec_allowed(session_t *s, uint32_t path)
{
	if (!uses_fec(s, path))
		return 0;
	if (s->role != SERVER)
		return 1;
	const struct spath *p = session_path_find(s, path);
	return p && p->valid;
}

int
session_fec_wanted(session_t *s, uint32_t path, uint8_t type)
{
	if (type == WIRE_PATH_CHALLENGE || type == WIRE_PATH_RESPONSE)
		return 0; /* a probe tests its own path, alone */
	return fec_allowed(s, path);
}

/* One FEC shard: framed, sealed, to the open group's path. */
static void
fec_out(const uint8_t *shard, size_t len, void *user)
{
	session_t *s = user;
	if (!fec_allowed(s, s->fec_out_path))
		return; /* never reached: the group was checked when it began */
	int n = wire_fec_seal(fecbuf, sizeof fecbuf, s->sid, shard, len, s->fec_ktx);
	if (n < 0)
		return;
	s->st.out_packets++;
	s->st.out_bytes += (uint64_t)n;
	if (shard[0] == FEC_TYPE_PARITY)
		s->st.fec_parity_out++;
	s->cb.output(s, s->fec_out_path, fecbuf, (size_t)n, s->user);
}

static void
fec_drop(const uint8_t *shard, size_t len, void *user)
{
	(void)shard; (void)len; (void)user;
}

/* Close the open group: its parity goes to its own path while FEC may
 * still go there, else nowhere. */
static void
close_group(session_t *s)
{
	if (fec_allowed(s, s->fec_out_path))
		fec_enc_flush(s->fec_enc, fec_out, s);
	else
		fec_enc_flush(s->fec_enc, fec_drop, s);
}

/* One sealed packet into the encoder, for path (session_fec_wanted said
 * yes): it and, when its group is full, the group's parity leave there. */
void
session_fec_send(session_t *s, uint32_t path, const uint8_t *pkt, size_t len)
{
	if (s->fec_out_path != path) {
		close_group(s); /* a group never spans two paths */
		s->fec_out_path = path;
	}
	fec_enc_add(s->fec_enc, pkt, len, s->clock, fec_out, s);
}

void
session_fec_tick(session_t *s, uint64_t now)
{
	if (!s->fec_enc || fec_enc_check(s->fec_enc, now) > now)
		return;
	/* the group's time is up: its parity goes where its data went */
	if (fec_allowed(s, s->fec_out_path))
		fec_enc_update(s->fec_enc, now, fec_out, s);
	else
		fec_enc_flush(s->fec_enc, fec_drop, s);
}

/* FEC on, both ways, k data and m parity per group (from the config on
 * the server, from the WELCOME on the client), once the keys are agreed.
 * -1 on bad values or out of memory. */
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
	if (!s->keyed || fec_config_check(&fc) < 0)
		return -1;
	wire_fec_key(s->fec_ktx, s->keys.tx);
	wire_fec_key(s->fec_krx, s->keys.rx);
	s->fec_enc = fec_enc_create(&fc);
	s->fec_dec = fec_dec_create(&fc);
	return s->fec_enc && s->fec_dec ? 0 : -1;
}

/* A packet the FEC decoder gives back (arrived, or rebuilt): it came on
 * the path of the frame being decoded, whatever its handling sends. */
static void
fec_deliver(uint8_t *pkt, size_t len, void *user)
{
	session_t *s = user;
	session_input(s, s->fec_in_path, pkt, len, s->clock);
}

/* Whether the decoder takes path's frames: a path the peer proved (server)
 * or was heard on (client); the one that holds it, or, when none does or
 * packets go to path now (the session moved there), path takes it over,
 * and the groups of the path before are forgotten. */
static int
decoder_takes(session_t *s, uint32_t path)
{
	struct spath *p = session_path_find(s, path), *held = NULL;
	if (!p || !p->valid)
		return 0;
	if (p->fec_dec)
		return 1;
	for (int i = 0; i < SESSION_PATHS; i++)
		if (s->paths[i].fec_dec)
			held = &s->paths[i];
	if (held && path != s->path)
		return 0;
	if (held)
		held->fec_dec = 0;
	fec_dec_reset(s->fec_dec);
	p->fec_dec = 1;
	return 1;
}

/* An FEC frame: its MAC first (a forged shard never reaches the decoder),
 * then what it carries goes through session_input one by one and is
 * authenticated there too. A shard that arrived before is a replay. */
int
session_fec_input(session_t *s, uint32_t path, uint8_t *pkt, size_t len,
                  uint64_t now)
{
	if (!s->fec_dec || s->fec_in || len <= WIRE_FEC_HDR + WIRE_FEC_TAG ||
	    wire_get32(pkt + 1) != s->sid) {
		s->st.in_malformed++;
		return SESSION_EINPUT;
	}
	int n = wire_fec_open(pkt, len, s->fec_krx);
	if (n < 0) {
		s->st.in_auth_fail++;
		return SESSION_EAUTH;
	}
	uint8_t *shard = pkt + WIRE_FEC_HDR;
	int rc;
	s->fec_in = 1;
	if (!decoder_takes(s, path)) {
		/* alone: a data shard's packet goes up as if it came plain;
		 * parity cannot help without the rest of its group */
		rc = 0;
		if (n >= FEC_DATA_HDR && shard[0] == FEC_TYPE_DATA)
			rc = session_input(s, path, shard + FEC_DATA_HDR,
			                   (size_t)n - FEC_DATA_HDR, now);
		s->fec_in = 0;
		return rc;
	}
	s->fec_in_path = path;
	struct fec_dec_stats a, b;
	fec_dec_stats(s->fec_dec, &a);
	rc = fec_dec_input(s->fec_dec, shard, (size_t)n, now, fec_deliver, s);
	fec_dec_stats(s->fec_dec, &b);
	s->fec_in = 0;
	s->st.fec_recovered += b.recovered - a.recovered;
	s->st.fec_dups += b.duplicates - a.duplicates;
	if (rc == FEC_EDUP) {
		s->st.in_replay++; /* authentic, and here before */
		return SESSION_EREPLAY;
	}
	return rc >= 0 ? 0 : SESSION_EINPUT;
}
