/*
 * client.c - libmoongate-client: one session over one or two sockets
 * (client.h).
 *
 * The session does the protocol; this file owns the sockets, the choice
 * of transport, and the queue of events between a poll and the caller's
 * next_event.
 *
 * Two transports, each the session's path: UDP (path PATH_UDP) on a
 * socket connected to the server, one datagram per packet, a send the
 * kernel refuses (EAGAIN) dropped (KCP retransmits); TCP (PATH_TCP) in
 * frames len u16 LE | packet, with a write buffer bounded by buffer_max
 * for what the socket does not take; a frame above frame_max (or empty)
 * ends that connection.
 *
 * The session calls back from inside session_*: output and event. Neither
 * callback closes a socket or aborts the session: a failure is recorded
 * (fail for the session, tfail for one transport) and acted on in
 * settle(), which every public function runs after the session call
 * returns. A transport that failed is closed and its path reported lost;
 * the session moves to the other path, goes offline, or ends. When the
 * session has ended (its CLOSE event came), settle() closes the sockets
 * at once (on TCP the client closes first, so TIME_WAIT lands here, not on
 * the server); mgclient_fd is -1 from then on.
 *
 * The transport policy (steer) runs in every poll: fallback to TCP, UDP
 * probes, the move back, reconnecting while offline.
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
#include "frame.h"

#define UDP_READS 256  /* datagrams read per poll at most */
#define TCP_READS 64   /* read() calls per poll at most */
#define RBUF_MIN 4096  /* TCP read buffer to start with */

#define PATH_UDP 1u
#define PATH_TCP (2u | SESSION_PATH_PROVEN) /* TCP proved the address */

enum mode { AUTO, UDP_ONLY, TCP_ONLY };

/* One queued event with its payload copied behind it. */
struct qev {
	int type;
	uint32_t seq;
	int transport;
	size_t len;
	uint8_t data[];
};

/* One transport: a socket and, for TCP, its buffers. */
struct tport {
	int fd;               /* -1: closed */
	int tcp;
	int have_addr;        /* the url named this transport */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int fail_code;        /* a failure seen inside a callback */
	char fail[64];
	/* TCP: bytes read, frames not yet complete; bytes not yet written */
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *wbuf;
	size_t woff, wlen, wcap;
};

struct mgclient {
	session_t *s;
	struct tport udp, tcp;
	int mode;
	uint32_t cur;         /* the path in use: PATH_UDP or PATH_TCP */
	int ended;            /* the session's CLOSE event came: it is handed
	                         out after every queued event */
	int closed_taken;     /* ... and was handed to the caller */
	int close_code, close_remote;
	char close_reason[WIRE_REASON_MAX + 1];
	int qfull;            /* "event queue full" close requested */
	int opened;           /* 1: OPEN to hand out; 2: handed out */
	int fail_code;        /* a session failure seen inside a callback; */
	char fail[64];        /* settle() aborts the session with it */
	uint64_t now;         /* of the last poll, for sends between polls */
	uint64_t started;     /* connect time */
	uint64_t next_probe;  /* auto, on TCP: the next UDP probe */
	uint64_t tcp_close_at;/* auto, back on UDP: close TCP then (0: no) */
	uint64_t next_knock;  /* offline: the next reconnect attempt */
	uint64_t since;       /* when cur was chosen */
	struct mgclient_options o;
	/* events: a ring of qev pointers, grown up to event_queue_max */
	struct qev **q;
	int qcap, qhead, qn;
	struct qev *cur_ev;   /* the event last returned, freed on the next call */
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
	o->fallback_ms = 1000;
	o->path_timeout_ms = 2500;
	o->probe_ms = 2000;
	o->reconnect_ms = 500;
	o->tcp_linger_ms = 5000;
}

uint64_t
mgclient_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct tport *
tport_of(mgclient_t *c, uint32_t path)
{
	return path == PATH_TCP ? &c->tcp : &c->udp;
}

static int
transport_of(uint32_t path)
{
	return path == PATH_TCP ? MGCLIENT_TCP : MGCLIENT_UDP;
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

/* Record a failure of one transport; the first one wins. */
static void
tfail(struct tport *t, int code, const char *reason)
{
	if (t->fail_code)
		return;
	t->fail_code = code;
	snprintf(t->fail, sizeof t->fail, "%s", reason);
}

static void
tfail_errno(struct tport *t, int err)
{
	tfail(t, SESSION_CLOSE_DISCONNECT, err == ECONNRESET ? "connection reset"
	      : err == ECONNREFUSED ? "connection refused" : strerror(err));
}

/* ---- sockets ------------------------------------------------------------ */

static void
tport_close(struct tport *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->fail_code = 0;
	t->rlen = t->woff = t->wlen = 0;
}

/* A new socket for t, connecting (TCP: in the background). 0 or -1. */
static int
tport_open(struct tport *t, char *err, size_t errlen)
{
	tport_close(t);
	int fd = socket(t->addr.ss_family,
	                (t->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK |
	                SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (err)
			snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (t->tcp) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	int r = connect(fd, (struct sockaddr *)&t->addr, t->addrlen);
	/* TCP: the connect goes on; a failure shows in send or recv */
	if (r < 0 && !(errno == EINPROGRESS && t->tcp)) {
		if (err)
			snprintf(err, errlen, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	t->fd = fd;
	return 0;
}

/* ---- TCP write buffer ------------------------------------------------- */

/* Write what is buffered until the socket stops taking it. */
static void
flush(struct tport *t)
{
	while (t->fd >= 0 && t->woff < t->wlen) {
		ssize_t n = send(t->fd, t->wbuf + t->woff, t->wlen - t->woff,
		                 MSG_NOSIGNAL);
		if (n > 0) {
			t->woff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		tfail_errno(t, n < 0 ? errno : EPIPE);
		return;
	}
	if (t->woff == t->wlen)
		t->woff = t->wlen = 0;
}

/* Append bytes to the write buffer; 0, or -1 past max. */
static int
buffer(struct tport *t, const uint8_t *p, size_t n, size_t max)
{
	if (t->wlen - t->woff + n > max)
		return -1;
	if (t->wlen + n > t->wcap && t->woff > 0) {
		memmove(t->wbuf, t->wbuf + t->woff, t->wlen - t->woff);
		t->wlen -= t->woff;
		t->woff = 0;
	}
	if (t->wlen + n > t->wcap) {
		size_t cap = t->wcap ? t->wcap : 4096;
		while (cap < t->wlen + n)
			cap *= 2;
		uint8_t *b = realloc(t->wbuf, cap);
		if (!b)
			return -1;
		t->wbuf = b;
		t->wcap = cap;
	}
	memcpy(t->wbuf + t->wlen, p, n);
	t->wlen += n;
	return 0;
}

/* One frame: straight to the socket when nothing waits before it (one
 * sendmsg for header and packet), the rest into the buffer. */
static void
send_frame(mgclient_t *c, struct tport *t, const uint8_t *pkt, size_t len)
{
	uint8_t hdr[FRAME_HEADER];
	frame_header(hdr, len);
	size_t done = 0, total = len + 2;
	if (t->woff == t->wlen) { /* EAGAIN while the connect is under way */
		struct iovec iov[2] = { { hdr, 2 }, { (void *)pkt, len } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t n;
		do
			n = sendmsg(t->fd, &m, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != ENOTCONN) {
			tfail_errno(t, errno);
			return;
		}
		done = n > 0 ? (size_t)n : 0;
		if (done == total)
			return;
	}
	size_t max = (size_t)c->o.buffer_max;
	int r = 0;
	if (done < 2)
		r = buffer(t, hdr + done, 2 - done, max);
	if (r == 0)
		r = buffer(t, pkt + (done > 2 ? done - 2 : 0),
		           len - (done > 2 ? done - 2 : 0), max);
	if (r < 0)
		fail(c, SESSION_CLOSE_BACKPRESSURE, "backpressure");
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

/* Queue an event; past event_queue_max the session closes. */
static void
queue(mgclient_t *c, int type, const uint8_t *data, size_t len, uint32_t seq,
      int transport)
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

/* The path in use is now path: tell the session, and the caller when the
 * transport changed. */
static void
use_path(mgclient_t *c, uint32_t path)
{
	session_path_use(c->s, path, c->now);
	c->since = c->now;
	if (c->cur == path)
		return;
	c->cur = path;
	if (session_state(c->s) == SESSION_OPEN && !session_offline(c->s))
		queue(c, MGCLIENT_PATH, NULL, 0, 0, transport_of(path));
}

/* ---- session callbacks ------------------------------------------------ */

static void
on_output(session_t *s, uint32_t path, const uint8_t *pkt, size_t len,
          void *user)
{
	mgclient_t *c = user;
	struct tport *t = tport_of(c, path);
	(void)s;
	if (t->fd < 0 || t->fail_code || c->fail_code || len > 65535)
		return;
	if (t->tcp) {
		send_frame(c, t, pkt, len);
		return;
	}
	/* A refused datagram is dropped: KCP and the handshake resend. */
	if (send(t->fd, pkt, len, MSG_NOSIGNAL) < 0 && errno == EINTR)
		send(t->fd, pkt, len, MSG_NOSIGNAL);
}

static void
on_event(session_t *s, const struct session_event *ev, void *user)
{
	mgclient_t *c = user;
	(void)s;
	switch (ev->type) {
	case SESSION_EV_CLOSE:
		/* kept aside, whatever the bound: it is the last one */
		c->ended = 1;
		c->close_code = ev->code;
		c->close_remote = ev->remote;
		snprintf(c->close_reason, sizeof c->close_reason, "%s",
		         ev->reason ? ev->reason : "");
		return;
	case SESSION_EV_OPEN:
		c->opened = 1; /* no payload, never queued */
		c->since = c->now;
		c->next_probe = c->now + (uint64_t)c->o.probe_ms * 1000;
		return;
	case SESSION_EV_MESSAGE:
	case SESSION_EV_DATAGRAM:
		queue(c, ev->type, ev->data, ev->len, ev->seq, 0);
		return;
	case SESSION_EV_OFFLINE:
		queue(c, MGCLIENT_OFFLINE, NULL, 0, 0, 0);
		c->next_knock = c->now; /* at once */
		return;
	case SESSION_EV_RESUME:
		c->cur = ev->path;
		c->since = c->now;
		c->next_probe = c->now + (uint64_t)c->o.probe_ms * 1000;
		queue(c, MGCLIENT_RESUME, NULL, 0, 0, transport_of(ev->path));
		return;
	case SESSION_EV_PROBE:
		/* UDP answers again: back to it; TCP goes a little later */
		if (ev->path == PATH_UDP && c->cur == PATH_TCP) {
			use_path(c, PATH_UDP);
			session_ping(c->s, c->now); /* the server follows at once */
			c->tcp_close_at = c->now + (uint64_t)c->o.tcp_linger_ms * 1000;
		}
		return;
	}
}

/* Events waiting for next_event. */
static int
waiting(const mgclient_t *c)
{
	return (c->opened == 1) + c->qn + (c->ended && !c->closed_taken);
}

/* A transport failed: close it and tell the session when it mattered. */
static void
lost(mgclient_t *c, struct tport *t)
{
	uint32_t path = t == &c->tcp ? PATH_TCP : PATH_UDP;
	int code = t->fail_code;
	char why[64];
	snprintf(why, sizeof why, "%s", t->fail);
	tport_close(t);
	if (session_state(c->s) == SESSION_HANDSHAKE) {
		struct tport *o = path == PATH_TCP ? &c->udp : &c->tcp;
		if (c->mode == AUTO && o->fd >= 0) {
			/* the other transport carries the handshake on; the next
			 * fallback waits fallback_ms again */
			use_path(c, path == PATH_TCP ? PATH_UDP : PATH_TCP);
			session_rehello(c->s, c->now);
			c->started = c->now;
			return;
		}
		session_abort(c->s, code, why, c->now);
		return;
	}
	uint32_t before = session_path(c->s);
	session_path_lost(c->s, path, code, why, c->now);
	uint32_t after = session_path(c->s);
	if (after != before && !session_offline(c->s))
		use_path(c, after);
}

/* After every session call: act on failures, write what the calls
 * produced, close the sockets once the session has ended. */
static void
settle(mgclient_t *c)
{
	for (int i = 0; i < 2; i++) {
		struct tport *t = i ? &c->tcp : &c->udp;
		if (t->tcp && t->fd >= 0 && !t->fail_code)
			flush(t);
		if (t->fail_code && t->fd >= 0 && !c->ended)
			lost(c, t);
	}
	if (c->fail_code && !c->ended)
		session_abort(c->s, c->fail_code, c->fail, c->now);
	if (c->ended) {
		tport_close(&c->udp);
		tport_close(&c->tcp);
	}
}

/* ---- input ------------------------------------------------------------- */

static void
read_udp(mgclient_t *c)
{
	static _Thread_local uint8_t buf[65536];
	struct tport *t = &c->udp;
	for (int i = 0; i < UDP_READS && t->fd >= 0 && !c->ended; i++) {
		ssize_t n = recv(t->fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED)
				continue; /* ICMP: the server is not there (yet) */
			break;
		}
		session_input(c->s, PATH_UDP, buf, (size_t)n, c->now);
	}
}

/* Hand every complete frame in rbuf to the session; keep the rest. */
static void
frames(mgclient_t *c, struct tport *t)
{
	size_t off = 0;
	while (!c->ended && !t->fail_code) {
		size_t flen;
		long got = frame_next(t->rbuf + off, t->rlen - off,
		                      (size_t)c->o.frame_max, &flen);
		if (got < 0) {
			/* the stream is lost: that connection ends */
			tfail(t, SESSION_CLOSE_PROTOCOL, frame_error(got));
			break;
		}
		if (got == 0)
			break;
		session_input(c->s, PATH_TCP, t->rbuf + off + FRAME_HEADER, flen,
		              c->now);
		off += (size_t)got;
	}
	memmove(t->rbuf, t->rbuf + off, t->rlen - off);
	t->rlen -= off;
}

static void
read_tcp(mgclient_t *c)
{
	struct tport *t = &c->tcp;
	for (int i = 0; i < TCP_READS && t->fd >= 0 && !c->ended &&
	                !t->fail_code; i++) {
		/* room for at least the frame under way */
		size_t need = t->rlen >= 2 ? 2 + (size_t)wire_get16(t->rbuf) : RBUF_MIN;
		if (need < RBUF_MIN)
			need = RBUF_MIN;
		/* frames() left less than one frame, so rlen < need <= cap
		 * after this: recv always has room */
		if (t->rcap < need) {
			size_t cap = t->rcap ? t->rcap : RBUF_MIN;
			while (cap < need)
				cap *= 2;
			uint8_t *b = realloc(t->rbuf, cap);
			if (!b) {
				tfail(t, SESSION_CLOSE_DISCONNECT, "out of memory");
				return;
			}
			t->rbuf = b;
			t->rcap = cap;
		}
		ssize_t n = recv(t->fd, t->rbuf + t->rlen, t->rcap - t->rlen, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				tfail_errno(t, errno);
			return;
		}
		if (n == 0) {
			tfail(t, SESSION_CLOSE_DISCONNECT, "connection closed");
			return;
		}
		t->rlen += (size_t)n;
		frames(c, t);
	}
}

/* ---- the transport policy ----------------------------------------------- */

static uint64_t
ms_us(int ms)
{
	return (uint64_t)(ms > 0 ? ms : 0) * 1000;
}

/* Offline: fresh sockets on every transport, a knock on each. */
static void
knock(mgclient_t *c)
{
	c->next_knock = c->now + ms_us(c->o.reconnect_ms);
	if (c->tcp.have_addr && tport_open(&c->tcp, NULL, 0) == 0) {
		session_path_use(c->s, PATH_TCP, c->now);
		session_ping(c->s, c->now);
	}
	if (c->udp.have_addr && tport_open(&c->udp, NULL, 0) == 0) {
		session_path_use(c->s, PATH_UDP, c->now);
		session_ping(c->s, c->now);
	}
	c->cur = session_path(c->s);
}

/* When steer has something to do next (for mgclient_check). */
static uint64_t
steer_due(const mgclient_t *c, uint64_t now)
{
	uint64_t far = now + 3600 * 1000000ull, due = far;
	int st = session_state(c->s);
	if (c->ended || st == SESSION_CLOSING || st == SESSION_CLOSED)
		return far;
	if (session_offline(c->s))
		return c->next_knock;
	if (c->mode != AUTO)
		return far;
	if (st == SESSION_HANDSHAKE)
		return c->tcp.fd < 0 ? c->started + ms_us(c->o.fallback_ms) : far;
	if (c->cur == PATH_UDP) {
		uint64_t heard = session_last_recv(c->s, PATH_UDP);
		if (heard < c->since)
			heard = c->since;
		due = heard + ms_us(c->o.path_timeout_ms);
		if (c->tcp_close_at && c->tcp_close_at < due)
			due = c->tcp_close_at;
	} else {
		due = c->next_probe;
	}
	return due;
}

static void
steer(mgclient_t *c)
{
	uint64_t now = c->now;
	if (steer_due(c, now) > now)
		return;
	int st = session_state(c->s);
	if (session_offline(c->s)) {
		knock(c);
		return;
	}
	if (st == SESSION_HANDSHAKE) {
		/* no answer on UDP: the handshake goes on over TCP too */
		if (tport_open(&c->tcp, NULL, 0) == 0) {
			use_path(c, PATH_TCP);
			session_rehello(c->s, now);
		} else {
			c->started = now; /* try again later */
		}
		return;
	}
	if (c->cur == PATH_UDP) {
		if (c->tcp_close_at && now >= c->tcp_close_at) {
			c->tcp_close_at = 0;
			if (c->tcp.fd >= 0 && c->tcp.woff == c->tcp.wlen) {
				tport_close(&c->tcp);
				session_path_lost(c->s, PATH_TCP, 0, "", now);
			}
		}
		uint64_t heard = session_last_recv(c->s, PATH_UDP);
		if (heard < c->since)
			heard = c->since;
		if (now < heard + ms_us(c->o.path_timeout_ms))
			return;
		/* UDP went quiet: over to TCP, and say so at once */
		if (c->tcp.fd < 0 && tport_open(&c->tcp, NULL, 0) < 0) {
			c->since = now;
			return;
		}
		c->tcp_close_at = 0;
		use_path(c, PATH_TCP);
		session_ping(c->s, now);
		c->next_probe = now + ms_us(c->o.probe_ms);
		return;
	}
	/* on TCP: does UDP answer again? */
	c->next_probe = now + ms_us(c->o.probe_ms);
	if (c->udp.fd < 0 && tport_open(&c->udp, NULL, 0) < 0)
		return;
	session_probe(c->s, PATH_UDP, now);
}

/* ---- the API ----------------------------------------------------------- */

/* One "udp://host:port" or "tcp://[v6]:port" (len bytes of it) into t. */
static int
resolve(struct tport *t, const char *url, size_t len, char *err, size_t errlen)
{
	char u[300];
	if (len >= sizeof u) {
		snprintf(err, errlen, "url too long");
		return -1;
	}
	memcpy(u, url, len);
	u[len] = 0;
	if (!strncmp(u, "udp://", 6))
		t->tcp = 0;
	else if (!strncmp(u, "tcp://", 6))
		t->tcp = 1;
	else {
		snprintf(err, errlen,
		         "url must start with udp://, tcp:// or auto://: %s", u);
		return -1;
	}
	char host[256];
	const char *h = u + 6, *port;
	size_t hl;
	if (*h == '[') {
		const char *e = strchr(h, ']');
		if (!e || e[1] != ':') {
			snprintf(err, errlen, "bad url: %s", u);
			return -1;
		}
		hl = (size_t)(e - h - 1);
		h++;
		port = e + 2;
	} else {
		const char *e = strrchr(h, ':');
		if (!e) {
			snprintf(err, errlen, "url needs a port: %s", u);
			return -1;
		}
		hl = (size_t)(e - h);
		port = e + 1;
	}
	if (hl == 0 || hl >= sizeof host || !*port) {
		snprintf(err, errlen, "bad url: %s", u);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	                          .ai_socktype = t->tcp ? SOCK_STREAM : SOCK_DGRAM };
	struct addrinfo *ai;
	int r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "%s: %s", u, gai_strerror(r));
		return -1;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addrlen = ai->ai_addrlen;
	t->have_addr = 1;
	freeaddrinfo(ai);
	return 0;
}

/* The url: one transport, "auto://" (both, one port), or a list. */
static int
parse_url(mgclient_t *c, const char *url, char *err, size_t errlen)
{
	char one[300];
	if (!strncmp(url, "auto://", 7)) {
		snprintf(one, sizeof one, "udp://%s", url + 7);
		if (resolve(&c->udp, one, strlen(one), err, errlen) < 0)
			return -1;
		snprintf(one, sizeof one, "tcp://%s", url + 7);
		if (resolve(&c->tcp, one, strlen(one), err, errlen) < 0)
			return -1;
		c->mode = AUTO;
		return 0;
	}
	for (const char *p = url; *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		struct tport t = { .fd = -1 };
		if (resolve(&t, p, n, err, errlen) < 0)
			return -1;
		struct tport *dst = t.tcp ? &c->tcp : &c->udp;
		if (dst->have_addr) {
			snprintf(err, errlen, "two %s urls in %s", t.tcp ? "tcp" : "udp",
			         url);
			return -1;
		}
		dst->addr = t.addr;
		dst->addrlen = t.addrlen;
		dst->have_addr = 1;
		p = comma ? comma + 1 : p + n;
	}
	if (c->udp.have_addr && c->tcp.have_addr)
		c->mode = AUTO;
	else if (c->tcp.have_addr)
		c->mode = TCP_ONLY;
	else if (c->udp.have_addr)
		c->mode = UDP_ONLY;
	else {
		snprintf(err, errlen, "empty url");
		return -1;
	}
	return 0;
}

static void
free_client(mgclient_t *c)
{
	tport_close(&c->udp);
	tport_close(&c->tcp);
	free(c->udp.rbuf);
	free(c->udp.wbuf);
	free(c->tcp.rbuf);
	free(c->tcp.wbuf);
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
	c->udp.fd = c->tcp.fd = -1;
	c->udp.tcp = 0;
	c->tcp.tcp = 1;
	if (opts)
		c->o = *opts;
	else
		mgclient_options_default(&c->o);
	struct mgclient_options d;
	mgclient_options_default(&d);
	if (c->o.frame_max <= 0 || c->o.frame_max > FRAME_MAX)
		c->o.frame_max = d.frame_max;
	if (c->o.event_queue_max <= 0)
		c->o.event_queue_max = d.event_queue_max;
	if (c->o.buffer_max <= 0)
		c->o.buffer_max = d.buffer_max;
	if (c->o.fallback_ms <= 0)
		c->o.fallback_ms = d.fallback_ms;
	if (c->o.path_timeout_ms <= 0)
		c->o.path_timeout_ms = d.path_timeout_ms;
	if (c->o.probe_ms <= 0)
		c->o.probe_ms = d.probe_ms;
	if (c->o.reconnect_ms <= 0)
		c->o.reconnect_ms = d.reconnect_ms;
	if (c->o.tcp_linger_ms < 0)
		c->o.tcp_linger_ms = 0;
	if (parse_url(c, url, err, errlen) < 0) {
		free_client(c);
		return NULL;
	}
	c->cur = c->mode == TCP_ONLY ? PATH_TCP : PATH_UDP;
	char e2[160];
	if (tport_open(tport_of(c, c->cur), e2, sizeof e2) < 0) {
		snprintf(err, errlen, "%s: %s", url, e2);
		free_client(c);
		return NULL;
	}
	static const struct session_callbacks cb = { on_output, on_event };
	c->now = c->started = c->since = mgclient_now();
	c->s = session_client_create(&c->o.session, &cb, c, c->cur, hello,
	                             hello_len, c->now);
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

int
mgclient_poll(mgclient_t *c, uint64_t now)
{
	free(c->cur_ev);
	c->cur_ev = NULL;
	if (c->closed_taken)
		return SESSION_ECLOSED;
	c->now = now;
	if (!c->fail_code) {
		if (c->tcp.fd >= 0 && !c->tcp.fail_code)
			read_tcp(c);
		if (c->udp.fd >= 0)
			read_udp(c);
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
	/* the new socket is bound while the old one still holds its port,
	 * so the port differs */
	int old = c->udp.fd;
	c->udp.fd = -1;
	int r = tport_open(&c->udp, NULL, 0);
	if (old >= 0)
		close(old);
	if (r < 0)
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
	if (c->tcp.fd >= 0 && c->tcp.woff < c->tcp.wlen && due > now + 1000)
		due = now + 1000;
	return due;
}

void
mgclient_stats(const mgclient_t *c, struct session_stats *st)
{
	session_stats(c->s, st);
}
