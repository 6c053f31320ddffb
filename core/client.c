/*
 * client.c - libmoongate-client: one session over one socket (client.h).
 *
 * The session does the protocol; this file owns the socket and the queue
 * of events between a poll and the caller's next_event.
 *
 * UDP: a socket connected to the server; one datagram per packet, a send
 * the kernel refuses (EAGAIN) is dropped (KCP retransmits). TCP: frames
 * len u16 LE | packet; a write buffer bounded by buffer_max takes what the
 * socket does not; a frame above frame_max (or empty) ends the session.
 *
 * The session calls back from inside session_*: output and event. Neither
 * callback closes the socket or aborts the session: a transport error is
 * recorded (fail) and acted on in settle(), which every public function
 * runs after the session call returns. When the session has ended (its
 * CLOSE event came), settle() closes the socket at once (on TCP the client closes
 * first, so TIME_WAIT lands here, not on the server); mgclient_fd is -1
 * from then on.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "client.h"

#define UDP_READS 256  /* datagrams read per poll at most */
#define TCP_READS 64   /* read() calls per poll at most */
#define RBUF_MIN 4096  /* TCP read buffer to start with */

/* One queued MESSAGE or DATAGRAM with its payload copied behind it. */
struct qev {
	int type;
	uint32_t seq;
	size_t len;
	uint8_t data[];
};

struct mgclient {
	session_t *s;
	int fd;               /* -1 once closed */
	int tcp;
	int ended;            /* the session's CLOSE event came: it is handed
	                         out after every queued event */
	int closed_taken;     /* ... and was handed to the caller */
	int close_code, close_remote;
	char close_reason[WIRE_REASON_MAX + 1];
	int qfull;            /* "event queue full" close requested */
	int opened;           /* 1: OPEN to hand out; 2: handed out */
	int fail_code;        /* a transport failure seen inside a callback; */
	char fail[64];        /* settle() aborts the session with it */
	uint64_t now;         /* of the last poll, for sends between polls */
	struct mgclient_options o;
	/* events: a ring of qev pointers, grown up to event_queue_max */
	struct qev **q;
	int qcap, qhead, qn;
	struct qev *cur;      /* the event last returned, freed on the next call */
	/* TCP: bytes read, frames not yet complete; bytes not yet written */
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *wbuf;
	size_t woff, wlen, wcap;
};

void
mgclient_options_default(struct mgclient_options *o)
{
	memset(o, 0, sizeof *o);
	session_config_default(&o->session);
	o->session.ack_delay = 1;
	o->frame_max = 65535;
	o->event_queue_max = 65536;
	o->buffer_max = 4 << 20;
}

uint64_t
mgclient_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Record a transport failure; the first one wins. */
static void
fail(mgclient_t *c, int code, const char *reason)
{
	if (c->fail_code)
		return;
	c->fail_code = code;
	snprintf(c->fail, sizeof c->fail, "%s", reason);
}

static void
fail_errno(mgclient_t *c, int err)
{
	fail(c, SESSION_CLOSE_DISCONNECT, err == ECONNRESET ? "connection reset"
	     : err == ECONNREFUSED ? "connection refused" : strerror(err));
}

/* ---- TCP write buffer ------------------------------------------------- */

/* Write what is buffered until the socket stops taking it. */
static void
flush(mgclient_t *c)
{
	while (c->fd >= 0 && c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
		                 MSG_NOSIGNAL);
		if (n > 0) {
			c->woff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		fail_errno(c, n < 0 ? errno : EPIPE);
		return;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
}

/* Append bytes to the write buffer; 0, or -1 past buffer_max. */
static int
buffer(mgclient_t *c, const uint8_t *p, size_t n)
{
	if (c->wlen - c->woff + n > (size_t)c->o.buffer_max)
		return -1;
	if (c->wlen + n > c->wcap && c->woff > 0) {
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	if (c->wlen + n > c->wcap) {
		size_t cap = c->wcap ? c->wcap : 4096;
		while (cap < c->wlen + n)
			cap *= 2;
		uint8_t *b = realloc(c->wbuf, cap);
		if (!b)
			return -1;
		c->wbuf = b;
		c->wcap = cap;
	}
	memcpy(c->wbuf + c->wlen, p, n);
	c->wlen += n;
	return 0;
}

/* One frame: straight to the socket when nothing waits before it (one
 * sendmsg for header and packet), the rest into the buffer. */
static void
send_frame(mgclient_t *c, const uint8_t *pkt, size_t len)
{
	uint8_t hdr[2];
	wire_put16(hdr, (uint16_t)len);
	size_t done = 0, total = len + 2;
	if (c->woff == c->wlen) { /* EAGAIN while the connect is under way */
		struct iovec iov[2] = { { hdr, 2 }, { (void *)pkt, len } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t n;
		do
			n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			fail_errno(c, errno);
			return;
		}
		done = n > 0 ? (size_t)n : 0;
		if (done == total)
			return;
	}
	int r = 0;
	if (done < 2)
		r = buffer(c, hdr + done, 2 - done);
	if (r == 0)
		r = buffer(c, pkt + (done > 2 ? done - 2 : 0),
		           len - (done > 2 ? done - 2 : 0));
	if (r < 0)
		fail(c, SESSION_CLOSE_BACKPRESSURE, "backpressure");
}

/* ---- session callbacks ------------------------------------------------ */

static void
on_output(session_t *s, const uint8_t *pkt, size_t len, void *user)
{
	mgclient_t *c = user;
	(void)s;
	if (c->fd < 0 || c->fail_code || len > 65535)
		return;
	if (c->tcp) {
		send_frame(c, pkt, len);
		return;
	}
	/* A refused datagram is dropped: KCP and the handshake resend. */
	if (send(c->fd, pkt, len, MSG_NOSIGNAL) < 0 && errno == EINTR)
		send(c->fd, pkt, len, MSG_NOSIGNAL);
}

static int
push(mgclient_t *c, const struct session_event *ev)
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
	struct qev *e = malloc(sizeof *e + ev->len);
	if (!e)
		return -1;
	e->type = ev->type;
	e->seq = ev->seq;
	e->len = ev->len;
	if (ev->len)
		memcpy(e->data, ev->data, ev->len);
	c->q[(c->qhead + c->qn) % c->qcap] = e;
	c->qn++;
	return 0;
}

static void
on_event(session_t *s, const struct session_event *ev, void *user)
{
	mgclient_t *c = user;
	if (ev->type == SESSION_EV_CLOSE) {
		/* kept aside, whatever the bound: it is the last one */
		c->ended = 1;
		c->close_code = ev->code;
		c->close_remote = ev->remote;
		snprintf(c->close_reason, sizeof c->close_reason, "%s",
		         ev->reason ? ev->reason : "");
		return;
	}
	if (ev->type != SESSION_EV_MESSAGE && ev->type != SESSION_EV_DATAGRAM) {
		c->opened = 1; /* OPEN: no payload, never queued */
		return;
	}
	if (c->qfull)
		return;
	if (c->qn >= c->o.event_queue_max || push(c, ev) < 0) {
		c->qfull = 1;
		session_close(s, SESSION_CLOSE_BACKPRESSURE, "event queue full", 0,
		              c->now);
	}
}

/* Events waiting for next_event. */
static int
waiting(const mgclient_t *c)
{
	return (c->opened == 1) + c->qn + (c->ended && !c->closed_taken);
}

/* After every session call: act on a transport failure, write what the
 * calls produced, close the socket once the session has ended. */
static void
settle(mgclient_t *c)
{
	if (c->tcp && !c->fail_code)
		flush(c);
	if (c->fail_code && !c->ended) {
		int code = c->fail_code;
		session_abort(c->s, code, c->fail, c->now);
	}
	if (c->ended && c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		c->woff = c->wlen = 0;
	}
}

/* ---- input ------------------------------------------------------------- */

static void
read_udp(mgclient_t *c)
{
	static _Thread_local uint8_t buf[65536];
	for (int i = 0; i < UDP_READS && c->fd >= 0 && !c->ended; i++) {
		ssize_t n = recv(c->fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED)
				continue; /* ICMP: the server is not there (yet) */
			break;
		}
		session_input(c->s, buf, (size_t)n, c->now);
	}
}

/* Hand every complete frame in rbuf to the session; keep the rest. */
static void
frames(mgclient_t *c)
{
	size_t off = 0;
	while (c->rlen - off >= 2 && !c->ended && !c->fail_code) {
		size_t flen = wire_get16(c->rbuf + off);
		if (flen == 0 || flen > (size_t)c->o.frame_max) {
			const char *why = flen ? "frame too large" : "empty frame";
			/* tell the server, then end now: the stream is lost */
			session_close(c->s, SESSION_CLOSE_PROTOCOL, why, 0, c->now);
			fail(c, SESSION_CLOSE_PROTOCOL, why);
			break;
		}
		if (c->rlen - off < 2 + flen)
			break;
		session_input(c->s, c->rbuf + off + 2, flen, c->now);
		off += 2 + flen;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
}

static void
read_tcp(mgclient_t *c)
{
	for (int i = 0; i < TCP_READS && c->fd >= 0 && !c->ended &&
	                !c->fail_code; i++) {
		/* room for at least the frame under way */
		size_t need = c->rlen >= 2 ? 2 + (size_t)wire_get16(c->rbuf) : RBUF_MIN;
		if (need < RBUF_MIN)
			need = RBUF_MIN;
		/* frames() left less than one frame, so rlen < need <= cap
		 * after this: recv always has room */
		if (c->rcap < need) {
			size_t cap = c->rcap ? c->rcap : RBUF_MIN;
			while (cap < need)
				cap *= 2;
			uint8_t *b = realloc(c->rbuf, cap);
			if (!b) {
				fail(c, SESSION_CLOSE_DISCONNECT, "out of memory");
				return;
			}
			c->rbuf = b;
			c->rcap = cap;
		}
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fail_errno(c, errno);
			return;
		}
		if (n == 0) {
			fail(c, SESSION_CLOSE_DISCONNECT, "connection closed");
			return;
		}
		c->rlen += (size_t)n;
		frames(c);
	}
}

/* ---- the API ----------------------------------------------------------- */

/* "udp://host:port", "tcp://[v6]:port": a socket, connecting. -1 and err. */
static int
open_socket(mgclient_t *c, const char *url, char *err, size_t errlen)
{
	if (!strncmp(url, "udp://", 6))
		c->tcp = 0;
	else if (!strncmp(url, "tcp://", 6))
		c->tcp = 1;
	else {
		snprintf(err, errlen, "url must start with udp:// or tcp://: %s", url);
		return -1;
	}
	char host[256];
	const char *h = url + 6, *port;
	size_t hl;
	if (*h == '[') {
		const char *e = strchr(h, ']');
		if (!e || e[1] != ':') {
			snprintf(err, errlen, "bad url: %s", url);
			return -1;
		}
		hl = (size_t)(e - h - 1);
		h++;
		port = e + 2;
	} else {
		const char *e = strrchr(h, ':');
		if (!e) {
			snprintf(err, errlen, "url needs a port: %s", url);
			return -1;
		}
		hl = (size_t)(e - h);
		port = e + 1;
	}
	if (hl == 0 || hl >= sizeof host || !*port) {
		snprintf(err, errlen, "bad url: %s", url);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = 0;

	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	                          .ai_socktype = c->tcp ? SOCK_STREAM : SOCK_DGRAM };
	struct addrinfo *ai;
	int r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "%s: %s", url, gai_strerror(r));
		return -1;
	}
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                ai->ai_protocol);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	if (c->tcp) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	/* TCP: the connect goes on; a failure shows in send or recv */
	if (r < 0 && !(errno == EINPROGRESS && c->tcp)) {
		snprintf(err, errlen, "connect %s: %s", url, strerror(errno));
		close(fd);
		return -1;
	}
	c->fd = fd;
	return 0;
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
	c->fd = -1;
	if (opts)
		c->o = *opts;
	else
		mgclient_options_default(&c->o);
	if (c->o.frame_max <= 0 || c->o.frame_max > 65535)
		c->o.frame_max = 65535;
	if (c->o.event_queue_max <= 0)
		c->o.event_queue_max = 65536;
	if (c->o.buffer_max <= 0)
		c->o.buffer_max = 4 << 20;
	if (open_socket(c, url, err, errlen) < 0) {
		free(c);
		return NULL;
	}
	static const struct session_callbacks cb = { on_output, on_event };
	c->now = mgclient_now();
	c->s = session_client_create(&c->o.session, &cb, c, hello, hello_len,
	                             c->now);
	if (!c->s) {
		snprintf(err, errlen, "session: out of memory or bad config");
		close(c->fd);
		free(c->wbuf);
		free(c);
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
	if (c->fd >= 0)
		close(c->fd);
	for (int i = 0; i < c->qn; i++)
		free(c->q[(c->qhead + i) % c->qcap]);
	free(c->q);
	free(c->cur);
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

int
mgclient_poll(mgclient_t *c, uint64_t now)
{
	free(c->cur);
	c->cur = NULL;
	if (c->closed_taken)
		return SESSION_ECLOSED;
	c->now = now;
	if (c->fd >= 0 && !c->fail_code) {
		if (c->tcp)
			read_tcp(c);
		else
			read_udp(c);
	}
	settle(c);
	if (!c->ended && session_check(c->s, now) <= now) {
		session_update(c->s, now);
		settle(c);
	}
	return waiting(c);
}

int
mgclient_next_event(mgclient_t *c, struct mgclient_event *ev)
{
	free(c->cur);
	c->cur = NULL;
	memset(ev, 0, sizeof *ev);
	if (c->opened == 1) { /* OPEN comes before any message */
		c->opened = 2;
		ev->type = MGCLIENT_OPEN;
		return 1;
	}
	if (c->qn > 0) {
		struct qev *e = c->q[c->qhead];
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qn--;
		c->cur = e;
		ev->type = e->type;
		ev->data = e->data;
		ev->len = e->len;
		ev->seq = e->seq;
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
	int r = session_send(c->s, msg, len, c->now);
	/* KCP sends new data at its next update: make that now, so that
	 * the message does not wait for the next poll */
	if (r == 0 && session_check(c->s, c->now) <= c->now)
		session_update(c->s, c->now);
	settle(c);
	return r;
}

int
mgclient_send_unreliable(mgclient_t *c, const void *msg, size_t len)
{
	if (c->ended)
		return SESSION_ECLOSED;
	int r = session_send_unreliable(c->s, msg, len, c->now);
	settle(c);
	return r;
}

void
mgclient_close(mgclient_t *c, int code, const char *reason)
{
	if (c->ended)
		return;
	session_close(c->s, code, reason, 1, c->now);
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
	return c->fd;
}

uint64_t
mgclient_check(const mgclient_t *c, uint64_t now)
{
	if (waiting(c))
		return now; /* events to take */
	if (c->ended)
		return now + 3600 * 1000000ull; /* nothing will happen */
	uint64_t due = session_check(c->s, now);
	/* bytes the socket did not take (or a connect under way): look soon */
	if (c->woff < c->wlen && due > now + 1000)
		due = now + 1000;
	return due;
}

void
mgclient_stats(const mgclient_t *c, struct session_stats *st)
{
	session_stats(c->s, st);
}
