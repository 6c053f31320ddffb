/*
 * session_path.c - the paths of a session (session.h, "Paths" and
 * "Resume"): which path packets go to, the server's challenge of a new
 * address and its amplification bound, offline and resume, the client's
 * probes.
 */
#include "session_int.h"

struct spath *
session_path_find(session_t *s, uint32_t id)
{
	if (!id)
		return NULL;
	for (int i = 0; i < SESSION_PATHS; i++)
		if (s->paths[i].id == id)
			return &s->paths[i];
	return NULL;
}

/* The slot of path id, made if new: a free slot, else the one heard from
 * longest ago that packets do not go to. */
struct spath *
session_path_get(session_t *s, uint32_t id)
{
	struct spath *p = session_path_find(s, id), *old = NULL;
	if (p)
		return p;
	for (int i = 0; i < SESSION_PATHS; i++) {
		struct spath *q = &s->paths[i];
		if (!q->id) {
			old = q;
			break;
		}
		if (q->id != s->path && (!old || q->last_recv < old->last_recv))
			old = q;
	}
	memset(old, 0, sizeof *old);
	old->id = id;
	old->valid = (id & SESSION_PATH_PROVEN) != 0;
	return old;
}

static void
emit_path(session_t *s, int type, uint32_t path, uint32_t prev)
{
	struct session_event ev = { .type = type, .path = path, .prev = prev };
	emit(s, &ev);
}

int
session_may_resume(const session_t *s)
{
	return s->cfg.resume_grace_ms > 0 && s->state == SESSION_OPEN &&
	       s->role != RAW && !s->offline;
}

/* Every path is lost: keep everything for resume_grace_ms. The server
 * forgets its paths (a path is proven again after an outage: its address
 * may belong to someone else by now); the client keeps sending where its
 * owner says. */
void
session_go_offline(session_t *s, uint64_t now)
{
	s->offline = 1;
	s->offline_deadline = now + (uint64_t)s->cfg.resume_grace_ms * 1000;
	s->last_path = s->path;
	s->st.offlines++;
	if (s->role == SERVER) {
		s->path = 0;
		s->data_path = 0;
		memset(s->paths, 0, sizeof s->paths);
	}
	struct session_event ev = { .type = SESSION_EV_OFFLINE };
	emit(s, &ev);
}

/* Packets go to path from now on. Back from offline: RESUME first, then
 * PATH when the path is not the one before. */
static void
switch_path(session_t *s, uint32_t path, uint64_t now)
{
	int resumed = s->offline;
	uint32_t prev = resumed ? s->last_path : s->path;
	if (!resumed && s->path == path)
		return;
	s->path = path;
	s->offline = 0;
	if (s->kcp)
		kcp_rewind(s->kcp); /* what the old path swallowed goes again now */
	if (resumed) {
		s->st.resumes++;
		s->last_recv = now;
		s->next_ping = now; /* a fresh RTT for the new path */
		s->ping_asap = 1;
		if (s->state == SESSION_CLOSING && !s->close_sent)
			/* closed while offline: what was queued goes now, then
			 * the CLOSE (session_update), lingering from here */
			s->close_deadline = now + (uint64_t)s->cfg.linger_ms * 1000;
		emit_path(s, SESSION_EV_RESUME, path, prev);
		if (s->state == SESSION_CLOSED || s->offline || s->path != path)
			return; /* the callback closed or moved it */
	}
	if (path != prev) {
		s->st.path_changes++;
		emit_path(s, SESSION_EV_PATH, path, prev);
	}
}

/* Server: prove that the client is at path p (it sent a packet that
 * authenticated from there; an attacker may have replayed one faster). */
static void
challenge(session_t *s, struct spath *p, uint64_t now)
{
	uint64_t retry = s->have_rtt ? (uint64_t)(2 * s->srtt) : 0;
	if (retry < CHALLENGE_RETRY_MIN)
		retry = CHALLENGE_RETRY_MIN;
	if (p->challenged && now - p->challenged_at < retry)
		return;
	if (!p->challenged)
		wire_random(p->token, WIRE_TOKEN);
	p->challenged = 1;
	p->challenged_at = now;
	s->st.path_challenges++;
	memcpy(session_txbuf + WIRE_HDR, p->token, WIRE_TOKEN);
	session_send_to(s, p->id, WIRE_PATH_CHALLENGE, WIRE_TOKEN);
}

/* Server: a proven path carries the client's newest packets: move there
 * (in the handshake, silently: the session is not open yet; closing, too:
 * the CLOSE and what lingers before it go where the client is). */
static void
follow(session_t *s, struct spath *p, uint64_t now)
{
	if (s->state == SESSION_HANDSHAKE)
		s->path = p->id;
	else if (s->state == SESSION_OPEN || s->state == SESSION_CLOSING)
		switch_path(s, p->id, now);
}

/* A packet that authenticated came on path (or someone replayed it there
 * first: the replay window lets one copy through). */
void
session_path_heard(session_t *s, uint32_t path, size_t len,
                   const struct wire_hdr *h, uint64_t now)
{
	/* a probe never moves the session; nor does a CLOSE while offline
	 * (taken as it is: the session ends) */
	int probe = h->type == WIRE_PATH_CHALLENGE ||
	            h->type == WIRE_PATH_RESPONSE ||
	            (h->type == WIRE_CLOSE && s->offline);
	struct spath *p = session_path_get(s, path);
	p->last_recv = now;
	if (!p->valid)
		p->in_bytes += len;
	s->in_path = path;
	if (s->role == CLIENT) {
		p->valid = 1;
		if (s->offline)
			switch_path(s, path, now);
	} else if (!probe && h->pn == s->replay.top) {
		s->data_path = path;
		if (p->valid)
			follow(s, p, now);
		else
			challenge(s, p, now);
	}
}

void
session_path_body(session_t *s, uint8_t type, const uint8_t *b, uint64_t now)
{
	if (type == WIRE_PATH_CHALLENGE) {
		/* answered where it came from: the asker tests that path */
		memmove(session_txbuf + WIRE_HDR, b, WIRE_TOKEN);
		session_send_to(s, s->in_path, WIRE_PATH_RESPONSE, WIRE_TOKEN);
		return;
	}
	struct spath *p = session_path_find(s, s->in_path);
	if (!p || memcmp(p->token, b, WIRE_TOKEN))
		return;
	if (s->role == SERVER && p->challenged) {
		p->valid = 1;
		p->challenged = 0;
		if (s->data_path == p->id)
			follow(s, p, now);
	} else if (s->role == CLIENT && p->probing) {
		p->probing = 0;
		emit_path(s, SESSION_EV_PROBE, p->id, 0);
	}
}

/* ---- the owner's side ------------------------------------------------ */

void
session_path_lost(session_t *s, uint32_t path, int code, const char *reason,
                  uint64_t now)
{
	if (s->state == SESSION_CLOSED)
		return;
	s->clock = now;
	struct spath *p = session_path_find(s, path);
	if (p)
		memset(p, 0, sizeof *p);
	if (s->data_path == path)
		s->data_path = 0;
	if (path != s->path || s->offline)
		return;
	struct spath *best = NULL;
	uint64_t window = (uint64_t)s->cfg.timeout_ms * 1000;
	for (int i = 0; i < SESSION_PATHS; i++) {
		struct spath *q = &s->paths[i];
		if (q->id && q->valid && now - q->last_recv < window &&
		    (!best || q->last_recv > best->last_recv))
			best = q;
	}
	struct spath *d = session_path_find(s, s->data_path);
	int live = s->state == SESSION_OPEN || s->state == SESSION_CLOSING;
	if (best && live) {
		switch_path(s, best->id, now);
	} else if (s->role == SERVER && live && d &&
	           now - d->last_recv < window) {
		/* The client's newest packets come from another path, still
		 * being proven (a challenge is out there): the client left the
		 * lost one, it is not gone. No path until the new one answers
		 * (follow), or until timeout_ms of silence (offline). */
		s->path = 0;
	} else if (session_may_resume(s)) {
		session_go_offline(s, now);
	} else {
		session_abort(s, code, reason, now);
	}
}

uint32_t
session_path(const session_t *s)
{
	return s->path;
}

int
session_path_known(const session_t *s, uint32_t path)
{
	return session_path_find((session_t *)s, path) != NULL;
}

uint64_t
session_last_recv(const session_t *s, uint32_t path)
{
	if (!path)
		return s->last_recv;
	const struct spath *p = session_path_find((session_t *)s, path);
	return p ? p->last_recv : 0;
}

int
session_offline(const session_t *s)
{
	return s->offline;
}

void
session_path_use(session_t *s, uint32_t path, uint64_t now)
{
	(void)now;
	if (s->role != CLIENT || !path || s->state == SESSION_CLOSED)
		return;
	session_path_get(s, path);
	if (s->path == path)
		return;
	s->path = path;
	s->st.path_changes++;
	if (s->kcp && !s->offline)
		kcp_rewind(s->kcp);
}

int
session_probe(session_t *s, uint32_t path, uint64_t now)
{
	s->clock = now;
	if (s->role != CLIENT || !path)
		return SESSION_EINVAL;
	if (s->state != SESSION_OPEN)
		return SESSION_ECLOSED;
	struct spath *p = session_path_get(s, path);
	if (!p->probing)
		wire_random(p->token, WIRE_TOKEN);
	p->probing = 1;
	memcpy(session_txbuf + WIRE_HDR, p->token, WIRE_TOKEN);
	session_send_to(s, path, WIRE_PATH_CHALLENGE, WIRE_TOKEN);
	return 0;
}
