/*
 * client.c - libmoongate-client (moongate/client.h): the handle, the
 * options, the session's callbacks, the queue of events between a poll
 * and the caller's next_event, and the API.
 *
 * The session does the protocol; the sockets are tport.c, the TCP stream
 * stream.c, the url url.c, the choice of transport steer.c.
 *
 * Two transports, each the session's path: UDP (path PATH_UDP) on a
 * socket connected to the server, one datagram per packet; TCP (PATH_TCP)
 * in frames, with a write buffer bounded by buffer_max for what the
 * socket does not take; a frame above frame_max (or empty) ends that
 * connection.
 *
 * The session calls back from inside session_*: output and event. Neither
 * callback closes a socket or aborts the session: a failure is recorded
 * (fail for the session, tport_fail for one transport) and acted on in
 * settle(), which every public function runs after the session call
 * returns. A transport that failed is closed and its path reported lost
 * (steer_lost); the session moves to the other path, goes offline, or
 * ends. When the session has ended (its CLOSE event came), settle() closes
 * the sockets at once (on TCP the client closes first, so TIME_WAIT lands
 * here, not on the server); mgclient_fd is -1 from then on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "handle.h"
#include "steer.h"
#include "stream.h"
#include "url.h"

#define UDP_READS 256  /* datagrams read per poll at most */
#define TCP_READS 64   /* read() calls per poll at most */
#define MOVES_MAX 64   /* moves followed per handle at most (a loop of moves ends) */

/* a reliable message held during a move (handle.h) */
struct held {
	struct held *next;
	size_t len;
	uint8_t data[];
};

/* The public values are the session's: events and codes pass through. */
_Static_assert((int)MGCLIENT_OPEN == (int)SESSION_EV_OPEN &&
               (int)MGCLIENT_MESSAGE == (int)SESSION_EV_MESSAGE &&
               (int)MGCLIENT_DATAGRAM == (int)SESSION_EV_DATAGRAM &&
               (int)MGCLIENT_CLOSE == (int)SESSION_EV_CLOSE &&
               (int)MGCLIENT_OFFLINE == (int)SESSION_EV_OFFLINE &&
               (int)MGCLIENT_RESUME == (int)SESSION_EV_RESUME &&
               (int)MGCLIENT_PATH == (int)SESSION_EV_PATH, "event types");
_Static_assert((int)MGCLIENT_STATE_HANDSHAKE == (int)SESSION_HANDSHAKE &&
               (int)MGCLIENT_STATE_OPEN == (int)SESSION_OPEN &&
               (int)MGCLIENT_STATE_CLOSING == (int)SESSION_CLOSING &&
               (int)MGCLIENT_STATE_CLOSED == (int)SESSION_CLOSED, "states");
_Static_assert((int)MGCLIENT_CLOSE_NORMAL == (int)SESSION_CLOSE_NORMAL &&
               (int)MGCLIENT_CLOSE_TIMEOUT == (int)SESSION_CLOSE_TIMEOUT &&
               (int)MGCLIENT_CLOSE_DEAD == (int)SESSION_CLOSE_DEAD &&
               (int)MGCLIENT_CLOSE_BACKPRESSURE == (int)SESSION_CLOSE_BACKPRESSURE &&
               (int)MGCLIENT_CLOSE_REFUSED == (int)SESSION_CLOSE_REFUSED &&
               (int)MGCLIENT_CLOSE_PROTOCOL == (int)SESSION_CLOSE_PROTOCOL &&
               (int)MGCLIENT_CLOSE_HANDSHAKE == (int)SESSION_CLOSE_HANDSHAKE &&
               (int)MGCLIENT_CLOSE_DISCONNECT == (int)SESSION_CLOSE_DISCONNECT &&
               (int)MGCLIENT_CLOSE_SHUTDOWN == (int)SESSION_CLOSE_SHUTDOWN &&
               (int)MGCLIENT_CLOSE_EXPIRED == (int)SESSION_CLOSE_EXPIRED &&
               (int)MGCLIENT_CLOSE_RESET == (int)SESSION_CLOSE_RESET &&
               (int)MGCLIENT_CLOSE_MOVED == (int)SESSION_CLOSE_MOVED &&
               (int)MGCLIENT_CLOSE_APP == (int)SESSION_CLOSE_APP, "close codes");
_Static_assert((int)MGCLIENT_ECLOSED == (int)SESSION_ECLOSED &&
               (int)MGCLIENT_ETOOBIG == (int)SESSION_ETOOBIG &&
               (int)MGCLIENT_EFULL == (int)SESSION_EFULL &&
               (int)MGCLIENT_ENOMEM == (int)SESSION_ENOMEM &&
               (int)MGCLIENT_EINVAL == (int)SESSION_EINVAL, "errors");
_Static_assert(MGCLIENT_HELLO_MAX == WIRE_HELLO_MAX, "hello");
/* The ABI of version 1 (size 112 and 216): a field is only ever added at
 * the end, and these sizes stay the minimum accepted. Options version 2
 * (136) added server_key, log and log_user; version 3 (144) minrto; stats
 * version 2 (224) msg_max, version 3 (232) cipher. manual_flush took version 3's 4 bytes of
 * padding: 0 (what mgclient_options_default left there) keeps the
 * behaviour of before. */
#define OPTIONS_V1 112u
#define OPTIONS_V2 136u
#define OPTIONS_V3 144u
#define STATS_V1 216u
_Static_assert(sizeof(struct mgclient_options) == OPTIONS_V3, "options v3");
_Static_assert(sizeof(struct mgclient_stats) == STATS_V1 + 16, "stats v3");

/* ---- options ------------------------------------------------------------ */

void
mgclient_options_default(struct mgclient_options *o)
{
	struct session_config s;
	session_config_default(&s);
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
	o->mtu = s.mtu;
	o->watermark = s.watermark;
	o->heartbeat_ms = s.heartbeat_ms;
	o->timeout_ms = s.timeout_ms;
	o->linger_ms = s.linger_ms;
	o->close_retries = s.close_retries;
	o->handshake_retry_ms = s.handshake_retry_ms;
	o->handshake_retry_max = s.handshake_retry_max;
	o->handshake_timeout_ms = s.handshake_timeout_ms;
	o->msg_max = s.msg_max;
	o->ack_delay = 1; /* the client's default (moongate/client.h) */
	o->nodelay = s.nodelay;
	o->interval = s.interval;
	o->resend = s.resend;
	o->nc = s.nc;
	o->sndwnd = s.sndwnd;
	o->rcvwnd = s.rcvwnd;
	o->deadlink = s.deadlink;
	o->minrto = s.minrto;
	o->frame_max = 65535;
	o->event_queue_max = 65536;
	o->buffer_max = 4 << 20;
	o->fallback_ms = 1000;
	o->path_timeout_ms = 2500;
	o->probe_ms = 2000;
	o->reconnect_ms = 500;
	o->tcp_linger_ms = 5000;
}

/* The caller's options (NULL: defaults) into c's two configs; the
 * session's fields that only the server sets (encrypt, resume grace, FEC)
 * keep session_config_default's, the WELCOME brings the server's. */
static int
take_options(mgclient_t *c, const struct mgclient_options *in, char *err,
             size_t errlen)
{
	struct mgclient_options o, d;
	mgclient_options_default(&d);
	o = d;
	if (in) {
		if (in->size < OPTIONS_V1) {
			snprintf(err, errlen, "options: size not set "
			         "(mgclient_options_default)");
			return -1;
		}
		/* a newer caller: what this library does not know must be 0 */
		for (size_t i = sizeof o; i < in->size; i++)
			if (((const uint8_t *)in)[i]) {
				snprintf(err, errlen, "options: a field this library "
				         "does not know is set");
				return -1;
			}
		/* an older caller: the fields it does not know keep defaults */
		memcpy(&o, in, in->size < sizeof o ? in->size : sizeof o);
	}
	struct session_config *s = &c->scfg;
	session_config_default(s);
	s->mtu = o.mtu;
	s->watermark = o.watermark;
	s->heartbeat_ms = o.heartbeat_ms;
	s->timeout_ms = o.timeout_ms;
	s->linger_ms = o.linger_ms;
	s->close_retries = o.close_retries;
	s->handshake_retry_ms = o.handshake_retry_ms;
	s->handshake_retry_max = o.handshake_retry_max;
	s->handshake_timeout_ms = o.handshake_timeout_ms;
	s->msg_max = o.msg_max;
	s->ack_delay = o.ack_delay;
	/* acks ride on the game's next input when it comes at a pace
	 * (docs/PROTOCOL.md, "Acks that ride on data") */
	s->max_ack_delay = o.ack_delay >= 2 ? o.ack_delay : 0; /* opt-in */
	s->nodelay = o.nodelay;
	s->interval = o.interval;
	s->resend = o.resend;
	s->nc = o.nc;
	s->sndwnd = o.sndwnd;
	s->rcvwnd = o.rcvwnd;
	s->deadlink = o.deadlink;
	s->minrto = o.minrto > 0 ? o.minrto : d.minrto;
	/* what arrives in one poll is answered together (mgclient_poll runs
	 * session_update at its end) */
	s->batch_flush = 1;
	struct client_config *k = &c->o;
	k->frame_max = o.frame_max > 0 && o.frame_max <= FRAME_MAX ?
	               o.frame_max : d.frame_max;
	k->event_queue_max = o.event_queue_max > 0 ? o.event_queue_max
	                                           : d.event_queue_max;
	k->buffer_max = o.buffer_max > 0 ? o.buffer_max : d.buffer_max;
	k->fallback_ms = o.fallback_ms > 0 ? o.fallback_ms : d.fallback_ms;
	k->path_timeout_ms = o.path_timeout_ms > 0 ? o.path_timeout_ms
	                                           : d.path_timeout_ms;
	k->probe_ms = o.probe_ms > 0 ? o.probe_ms : d.probe_ms;
	k->autoflush = o.manual_flush == 0;
	k->reconnect_ms = o.reconnect_ms > 0 ? o.reconnect_ms : d.reconnect_ms;
	k->tcp_linger_ms = o.tcp_linger_ms > 0 ? o.tcp_linger_ms : 0;
	if (o.server_key) {
		if (url_key(o.server_key, strlen(o.server_key), s->server_key, err,
		            errlen) < 0)
			return -1;
		s->pinned = 1;
	}
	c->log = o.log;
	c->log_user = o.log_user;
	return 0;
}

/* A warning of the library: the caller's log, or a line on stderr. */
static void
client_warn(mgclient_t *c, const char *line)
{
	if (c->log)
		c->log(line, c->log_user);
	else
		fprintf(stderr, "moongate client: warning: %s\n", line);
}

uint64_t
mgclient_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *
mgclient_strerror(int err)
{
	if (err == MGCLIENT_EOFFLINE) /* the client's own: no session code */
		return "offline: datagram dropped";
	return session_strerror(err);
}

static struct tport *
tport_of(mgclient_t *c, uint32_t path)
{
	return path == PATH_TCP ? &c->tcp : &c->udp;
}

/* Record a session failure; the first one wins. */
static void
fail(mgclient_t *c, int code, const char *reason)
{
	if (c->fail_code)
		return;
	c->fail_code = code;
	snprintf(c->fail, sizeof c->fail, "%s", reason);
}

/* ---- events ------------------------------------------------------------- */

static int
push(mgclient_t *c, int type, const uint8_t *data, size_t len, uint32_t seq,
     int transport)
{
	if (c->qn == c->qcap) {
		int cap = c->qcap ? c->qcap * 2 : 64;
		struct qev **q = malloc(sizeof *q * (size_t)cap);
		if (!q)
			return -1;
		for (int i = 0; i < c->qn; i++)
			q[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = q;
		c->qcap = cap;
		c->qhead = 0;
	}
	struct qev *e = malloc(sizeof *e + len);
	if (!e)
		return -1;
	e->type = type;
	e->seq = seq;
	e->transport = transport;
	e->len = len;
	if (len)
		memcpy(e->data, data, len);
	c->q[(c->qhead + c->qn) % c->qcap] = e;
	c->qn++;
	return 0;
}

void
client_queue(mgclient_t *c, int type, const uint8_t *data, size_t len,
             uint32_t seq, int transport)
{
	if (c->qfull)
		return;
	if (c->qn >= c->o.event_queue_max ||
	    push(c, type, data, len, seq, transport) < 0) {
		c->qfull = 1;
		session_close(c->s, SESSION_CLOSE_BACKPRESSURE, "event queue full", 0,
		              c->now);
	}
}

/* Events waiting for next_event. */
static int
waiting(const mgclient_t *c)
{
	return (c->opened == 1) + c->qn + (c->ended && !c->closed_taken);
}

/* ---- session callbacks ------------------------------------------------ */

static void
on_output(session_t *s, uint32_t path, const uint8_t *pkt, size_t len,
          void *user)
{
	mgclient_t *c = user;
	struct tport *t = tport_of(c, path);
	(void)s;
	if (t->fd < 0 || t->fail_code || c->fail_code || len > FRAME_MAX)
		return;
	if (!t->tcp)
		tport_send_datagram(t, pkt, len);
	else if (stream_send(t, pkt, len, (size_t)c->o.buffer_max) < 0)
		fail(c, SESSION_CLOSE_BACKPRESSURE, "backpressure");
}

static void
on_event(session_t *s, const struct session_event *ev, void *user)
{
	mgclient_t *c = user;
	switch (ev->type) {
	case SESSION_EV_CLOSE:
		/* a move the server asked for: followed in settle() */
		if (ev->code == SESSION_CLOSE_MOVED && ev->remote && ev->reason &&
		    c->moves < MOVES_MAX && !c->closing) {
			snprintf(c->move, sizeof c->move, "%s", ev->reason);
			c->moving = 1;
			return;
		}
		/* kept aside, whatever the bound: it is the last one */
		c->ended = 1;
		c->close_code = ev->code;
		c->close_remote = ev->remote;
		snprintf(c->close_reason, sizeof c->close_reason, "%s",
		         ev->reason ? ev->reason : "");
		return;
	case SESSION_EV_OPEN:
		c->opened = 1; /* no payload, never queued */
		c->open_msg_max = session_msg_max(s);
		steer_opened(c);
		return;
	case SESSION_EV_MESSAGE:
	case SESSION_EV_DATAGRAM:
		client_queue(c, ev->type, ev->data, ev->len, ev->seq, 0);
		return;
	case SESSION_EV_OFFLINE:
		client_queue(c, MGCLIENT_OFFLINE, NULL, 0, 0, 0);
		steer_offline(c);
		return;
	case SESSION_EV_RESUME:
		steer_resumed(c, ev->path);
		client_queue(c, MGCLIENT_RESUME, NULL, 0, 0, transport_of(ev->path));
		return;
	case SESSION_EV_PROBE:
		steer_probed(c, ev->path);
		return;
	}
}

static void follow_move(mgclient_t *c);
static void release_held(mgclient_t *c);
static int hold(mgclient_t *c, const void *msg, size_t len);

/* After every session call: act on failures, write what the calls
 * produced, close the sockets once the session has ended. */
static void
settle(mgclient_t *c)
{
	if (c->in_move && c->opened && !c->ended)
		release_held(c);
	for (int i = 0; i < 2; i++) {
		struct tport *t = i ? &c->tcp : &c->udp;
		if (t->tcp && t->fd >= 0 && !t->fail_code)
			stream_flush(t);
		if (t->fail_code && t->fd >= 0 && !c->ended && !c->moving)
			steer_lost(c, t);
	}
	if (c->moving) { /* (the CLOSE_ACK went out above) */
		c->moving = 0;
		follow_move(c);
	}
	if (c->fail_code && !c->ended)
		session_abort(c->s, c->fail_code, c->fail, c->now);
	if (c->ended) {
		tport_close(&c->udp);
		tport_close(&c->tcp);
	}
}

/* ---- input ------------------------------------------------------------- */

static int
udp_input(void *user, uint8_t *pkt, size_t len)
{
	mgclient_t *c = user;
	session_input(c->s, PATH_UDP, pkt, len, c->now);
	return c->ended || c->moving;
}

static int
tcp_input(void *user, uint8_t *pkt, size_t len)
{
	mgclient_t *c = user;
	session_input(c->s, PATH_TCP, pkt, len, c->now);
	return c->ended || c->moving;
}

/* ---- the API ----------------------------------------------------------- */

static void
held_free(mgclient_t *c)
{
	while (c->held) {
		struct held *h = c->held;
		c->held = h->next;
		free(h);
	}
	c->held_tail = &c->held;
	c->held_bytes = 0;
}

static void
free_client(mgclient_t *c)
{
	held_free(c);
	tport_free(&c->udp);
	tport_free(&c->tcp);
	for (int i = 0; i < c->qn; i++)
		free(c->q[(c->qhead + i) % c->qcap]);
	free(c->q);
	free(c->cur_ev);
	free(c);
}

mgclient_t *
mgclient_connect(const char *url, const void *hello, size_t hello_len,
                 const struct mgclient_options *opts, char *err, size_t errlen)
{
	if (wire_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return NULL;
	}
	if (hello_len > WIRE_HELLO_MAX) {
		snprintf(err, errlen, "hello longer than %d bytes", WIRE_HELLO_MAX);
		return NULL;
	}
	mgclient_t *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	tport_init(&c->udp, 0);
	tport_init(&c->tcp, 1);
	c->held_tail = &c->held;
	uint8_t key[WIRE_PUB];
	int has_key, worker;
	if (take_options(c, opts, err, errlen) < 0 ||
	    (c->mode = url_parse(url, &c->udp, &c->tcp, key, &has_key, &worker,
	                         err, errlen)) < 0) {
		free_client(c);
		return NULL;
	}
	if (has_key && c->scfg.pinned &&
	    memcmp(key, c->scfg.server_key, WIRE_PUB)) {
		snprintf(err, errlen, "the url's ?key= and options' server_key "
		         "differ");
		free_client(c);
		return NULL;
	}
	if (has_key) {
		memcpy(c->scfg.server_key, key, WIRE_PUB);
		c->scfg.pinned = 1;
	}
	c->scfg.worker_hint = worker;
	snprintf(c->url, sizeof c->url, "%s", url);
	if (!c->scfg.pinned)
		client_warn(c, "no server key (url ?key= or server_key): the hello "
		            "travels in clear and the server is not authenticated; "
		            "only servers with gate.allow_unpinned accept this");
	c->cur = c->mode == URL_TCP_ONLY ? PATH_TCP : PATH_UDP;
	char e2[160];
	if (tport_open(tport_of(c, c->cur), e2, sizeof e2) < 0) {
		snprintf(err, errlen, "%s: %s", url, e2);
		free_client(c);
		return NULL;
	}
	static const struct session_callbacks cb = { on_output, on_event };
	c->now = c->started = c->since = mgclient_now();
	c->s = session_client_create(&c->scfg, &cb, c, c->cur, hello, hello_len,
	                             c->now);
	if (!c->s) {
		snprintf(err, errlen, "session: out of memory or bad config");
		free_client(c);
		return NULL;
	}
	settle(c);
	return c;
}

void
mgclient_release(mgclient_t *c)
{
	if (!c)
		return;
	session_release(c->s);
	free_client(c);
}

/* mgclient_poll, reading the sockets or not (mgclient_tick). */
static int
poll_at(mgclient_t *c, uint64_t now, int read)
{
	free(c->cur_ev);
	c->cur_ev = NULL;
	if (c->closed_taken)
		return SESSION_ECLOSED;
	c->now = now;
	if (read && !c->fail_code) {
		if (c->tcp.fd >= 0 && !c->tcp.fail_code && !c->ended)
			stream_read(&c->tcp, TCP_READS, (size_t)c->o.frame_max,
			            tcp_input, c);
		if (c->udp.fd >= 0 && !c->ended)
			tport_recv_datagrams(&c->udp, UDP_READS, c->scfg.mtu,
			                     udp_input, c);
	}
	settle(c);
	if (!c->ended) {
		steer(c);
		settle(c);
	}
	if (!c->ended && session_check(c->s, now) <= now) {
		session_update(c->s, now);
		settle(c);
	}
	return waiting(c);
}

int
mgclient_poll(mgclient_t *c, uint64_t now)
{
	return poll_at(c, now, 1);
}

int
mgclient_tick(mgclient_t *c, uint64_t now)
{
	return poll_at(c, now, 0);
}

int
mgclient_next_event(mgclient_t *c, struct mgclient_event *ev)
{
	free(c->cur_ev);
	c->cur_ev = NULL;
	memset(ev, 0, sizeof *ev);
	if (c->opened == 1) { /* OPEN comes before any message */
		c->opened = 2;
		ev->type = MGCLIENT_OPEN;
		ev->transport = transport_of(c->cur);
		return 1;
	}
	if (c->qn > 0) {
		struct qev *e = c->q[c->qhead];
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qn--;
		c->cur_ev = e;
		ev->type = e->type;
		ev->data = e->data;
		ev->len = e->len;
		ev->seq = e->seq;
		ev->transport = e->transport;
		return 1;
	}
	if (!c->ended || c->closed_taken)
		return 0;
	c->closed_taken = 1;
	ev->type = MGCLIENT_CLOSE;
	ev->code = c->close_code;
	ev->reason = c->close_reason;
	ev->remote = c->close_remote;
	return 1;
}

int
mgclient_send(mgclient_t *c, const void *msg, size_t len)
{
	if (c->ended)
		return SESSION_ECLOSED;
	if (c->in_move && !c->opened) { /* the new session is on its way */
		int r = hold(c, msg, len);
		settle(c);
		return r;
	}
	int r = session_send(c->s, msg, len, c->now);
	/* KCP sends new data at its next update: make that now, so that
	 * the message does not wait for the next poll */
	if (r == 0 && c->o.autoflush && session_check(c->s, c->now) <= c->now)
		session_update(c->s, c->now);
	settle(c);
	return r;
}

int
mgclient_flush(mgclient_t *c)
{
	if (c->ended)
		return SESSION_ECLOSED;
	if (session_check(c->s, c->now) <= c->now)
		session_update(c->s, c->now);
	settle(c);
	return 0;
}

int
mgclient_send_unreliable(mgclient_t *c, const void *msg, size_t len)
{
	if (c->ended)
		return SESSION_ECLOSED;
	if (c->in_move && !c->opened)
		return MGCLIENT_EOFFLINE; /* as offline: stale by the time it lands */
	int r = session_send_unreliable(c->s, msg, len, c->now);
	/* offline, the session takes the datagram and drops it (it would be
	 * stale by the time the server could read it): say so */
	if (r == 0 && session_offline(c->s))
		r = MGCLIENT_EOFFLINE;
	settle(c);
	return r;
}

void
mgclient_close(mgclient_t *c, int code, const char *reason)
{
	if (c->ended)
		return;
	c->closing = 1; /* a move the server asks for now is not followed */
	session_close(c->s, code, reason, 1, c->now);
	if (session_offline(c->s)) {
		/* the CLOSE knocks at once on fresh sockets too (the old ones
		 * may lead nowhere now), then every reconnect_ms */
		c->next_knock = c->now;
		steer(c);
	}
	settle(c);
}

int
mgclient_state(const mgclient_t *c)
{
	return session_state(c->s);
}

int
mgclient_fd(const mgclient_t *c)
{
	const struct tport *t = c->cur == PATH_TCP ? &c->tcp : &c->udp;
	return t->fd;
}

int
mgclient_fds(const mgclient_t *c, int fds[2])
{
	int n = 0;
	if (c->udp.fd >= 0)
		fds[n++] = c->udp.fd;
	if (c->tcp.fd >= 0)
		fds[n++] = c->tcp.fd;
	return n;
}

int
mgclient_transport(const mgclient_t *c)
{
	return transport_of(c->cur);
}

int
mgclient_rebind(mgclient_t *c)
{
	if (!c->udp.have_addr || c->ended) {
		errno = EINVAL;
		return -1;
	}
	if (tport_reopen(&c->udp) < 0)
		return -1;
	if (c->cur == PATH_UDP && session_state(c->s) == SESSION_OPEN)
		session_ping(c->s, c->now); /* the server learns the address now */
	settle(c);
	return 0;
}

uint64_t
mgclient_check(const mgclient_t *c, uint64_t now)
{
	if (waiting(c))
		return now; /* events to take */
	if (c->ended)
		return now + 3600 * 1000000ull; /* nothing will happen */
	uint64_t due = session_check(c->s, now), s2 = steer_due(c, now);
	if (s2 < due)
		due = s2;
	/* bytes the socket did not take (or a connect under way): look soon */
	if (c->tcp.fd >= 0 && stream_pending(&c->tcp) && due > now + 1000)
		due = now + 1000;
	return due;
}

int
mgclient_stats(const mgclient_t *c, struct mgclient_stats *st)
{
	if (st->size < STATS_V1)
		return MGCLIENT_EINVAL;
	struct session_stats s;
	session_stats(c->s, &s);
	struct mgclient_stats o = {
		.size = sizeof o,
		.encrypted = s.encrypted,
		.srtt_ms = s.srtt_ms,
		.rttvar_ms = s.rttvar_ms,
		.offset_us = s.offset_us,
		.kcp_srtt_ms = s.kcp_srtt_ms,
		.waiting_bytes = s.waiting_bytes,
		.in_packets = s.in_packets,
		.out_packets = s.out_packets,
		.in_bytes = s.in_bytes,
		.out_bytes = s.out_bytes,
		.in_auth_fail = s.in_auth_fail,
		.in_replay = s.in_replay,
		.in_malformed = s.in_malformed,
		.msgs_in = s.msgs_in,
		.msgs_out = s.msgs_out,
		.dgrams_in = s.dgrams_in,
		.dgrams_out = s.dgrams_out,
		.dgrams_stale = s.dgrams_stale,
		.pings = s.pings,
		.pongs = s.pongs,
		.path_changes = s.path_changes,
		.path_challenges = s.path_challenges,
		.offlines = s.offlines,
		.resumes = s.resumes,
		.fec_parity_out = s.fec_parity_out,
		.fec_recovered = s.fec_recovered,
		.fec_dups = s.fec_dups,
		.msg_max = session_msg_max(c->s),
		.cipher = !s.keyed ? "" : s.aesgcm ? "AES-256-GCM" : "ChaCha20-Poly1305",
	};
	/* an older caller's struct is shorter: fill what it has */
	size_t n = st->size < sizeof o ? st->size : sizeof o;
	o.size = (uint32_t)n;
	memcpy(st, &o, n);
	return 0;
}

/* ---- moves --------------------------------------------------------------- */

/* mgclient_send during a move: kept for the new session, in order. Over
 * the watermark the handle closes with "backpressure", as a session does. */
static int
hold(mgclient_t *c, const void *msg, size_t len)
{
	if (len > (size_t)c->open_msg_max)
		return SESSION_ETOOBIG;
	if ((int64_t)(c->held_bytes + len) > c->scfg.watermark) {
		fail(c, SESSION_CLOSE_BACKPRESSURE, "backpressure");
		return SESSION_EFULL;
	}
	struct held *h = malloc(sizeof *h + len);
	if (!h)
		return SESSION_ENOMEM;
	h->next = NULL;
	h->len = len;
	memcpy(h->data, msg, len);
	*c->held_tail = h;
	c->held_tail = &h->next;
	c->held_bytes += len;
	return 0;
}

/* The move's new session opened: what the game sent meanwhile goes out
 * first, in order. One that the new session refuses ends the handle (a
 * reliable message is never dropped silently). */
static void
release_held(mgclient_t *c)
{
	c->in_move = 0;
	while (c->held && !c->fail_code) {
		struct held *h = c->held;
		int r = session_send(c->s, h->data, h->len, c->now);
		if (r == SESSION_ETOOBIG)
			fail(c, SESSION_CLOSE_PROTOCOL, "a message sent during a move is "
			     "above the new server's msg_max");
		else if (r < 0 && r != SESSION_EFULL) /* (EFULL: closing already) */
			fail(c, SESSION_CLOSE_BACKPRESSURE, "a message sent during a "
			     "move could not be queued");
		if (r < 0)
			break;
		c->held = h->next;
		c->held_bytes -= h->len;
		free(h);
	}
	held_free(c);
	if (c->o.autoflush && session_check(c->s, c->now) <= c->now)
		session_update(c->s, c->now);
}

/* The server closed with SESSION_CLOSE_MOVED and c->move: "W URL HELLO"
 * (docs/PROTOCOL.md, "Moves"): W a worker slot or "-", URL a url or "-"
 * (the one in use), HELLO the rest (the hello to send there). The MOVED
 * event is queued, the old session and sockets go, a new session starts
 * there. A move that cannot be followed ends the handle with CLOSE code
 * SESSION_CLOSE_MOVED and the reason. */
static void
follow_move(mgclient_t *c)
{
	char err[200] = "", said[sizeof c->move];
	memcpy(said, c->move, sizeof said); /* as the server said it */
	char *w = c->move, *u = strchr(w, ' '), *hello = NULL;
	int worker = -1;
	c->moves++;
	if (u) {
		*u++ = 0;
		hello = strchr(u, ' ');
		if (hello)
			*hello++ = 0;
	}
	if (!u || !hello || !*u) {
		snprintf(err, sizeof err, "moved, but the move is malformed");
	} else if (strcmp(w, "-")) {
		char *end;
		long v = strtol(w, &end, 10);
		if (*end || end == w || v < 0 || v > WIRE_WORKER_HINT_MAX)
			snprintf(err, sizeof err, "moved, but its worker is bad: %.8s", w);
		else
			worker = (int)v;
	}
	size_t hlen = hello ? strlen(hello) : 0;
	if (!err[0] && hlen > WIRE_HELLO_MAX)
		snprintf(err, sizeof err, "moved, but its hello is too long");
	/* the game hears of it first: "W URL HELLO" as the server said it */
	if (!err[0]) {
		if (push(c, MGCLIENT_MOVED, (const uint8_t *)said, strlen(said), 0,
		         transport_of(c->cur)) < 0)
			snprintf(err, sizeof err, "moved, but out of memory");
	}
	tport_free(&c->udp);
	tport_free(&c->tcp);
	tport_init(&c->udp, 0);
	tport_init(&c->tcp, 1);
	if (!err[0]) {
		uint8_t key[WIRE_PUB];
		int has_key, uw;
		if (strcmp(u, "-"))
			snprintf(c->url, sizeof c->url, "%s", u);
		char e2[160];
		if ((c->mode = url_parse(c->url, &c->udp, &c->tcp, key, &has_key,
		                         &uw, e2, sizeof e2)) < 0) {
			snprintf(err, sizeof err, "moved, but %s", e2);
		} else {
			/* a url without a key keeps the key in use (one deployment) */
			if (has_key) {
				memcpy(c->scfg.server_key, key, WIRE_PUB);
				c->scfg.pinned = 1;
			}
			c->scfg.worker_hint = worker >= 0 ? worker : uw;
			c->cur = c->mode == URL_TCP_ONLY ? PATH_TCP : PATH_UDP;
			if (tport_open(tport_of(c, c->cur), e2, sizeof e2) < 0)
				snprintf(err, sizeof err, "moved, but %.60s: %.120s", c->url, e2);
		}
	}
	if (!err[0]) {
		static const struct session_callbacks cb = { on_output, on_event };
		c->opened = 0;
		c->fail_code = 0;
		c->next_probe = c->tcp_close_at = c->next_knock = 0;
		c->since = c->now;
		session_t *s = session_client_create(&c->scfg, &cb, c, c->cur,
		                                     (const uint8_t *)hello, hlen,
		                                     c->now);
		if (s) {
			c->in_move = 1;
			session_release(c->s); /* closed: its CLOSE event came */
			c->s = s;
		} else {
			snprintf(err, sizeof err, "moved, but the session could not "
			         "start (out of memory)");
		}
	}
	if (err[0]) {
		c->ended = 1;
		c->close_code = SESSION_CLOSE_MOVED;
		c->close_remote = 1;
		snprintf(c->close_reason, sizeof c->close_reason, "%s", err);
	}
}
