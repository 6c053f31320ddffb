/*
 * net.c - UDP and TCP sockets on one libev loop (see net.h).
 *
 * UDP: a readable socket is read in batches of cfg.batch (recvmmsg; batch 1
 * is the plain recvmsg/sendto path) into one receive area shared by every
 * listener. net_send copies a datagram into the pending batch of its
 * listener, sent with sendmmsg when full, on net_flush, and by the prepare
 * watcher before the loop blocks.
 *
 * TCP: a connection lives in a slot; its id is (generation << idx_bits) |
 * slot index, the generation never 0, so an id is never 0 and a stale id
 * finds a slot whose generation moved on (free slots are reused in FIFO
 * order, after every slot was used once). Writes are queued and written at
 * the same flush points as UDP, or at once when WRITE_EAGER bytes wait.
 *
 * Re-entrancy: user callbacks (packet, conn_lost, timer) are only called
 * from a libev callback, never from inside net_send/net_flush/net_close.
 * Failures found there (a write error, backpressure) "doom" the
 * connection: its watchers stop and conn_lost is called at the next flush
 * point of the prepare watcher. A closed connection's memory is freed by
 * the prepare watcher too, so a packet callback may close the connection
 * whose frame it holds.
 *
 * Lifecycle of a connection: OPEN (in a slot; frames delivered) -> DRAIN
 * (net_close: out of its slot, its id stale; input discarded, queue
 * written, waiting for the peer's EOF) -> SHUT (close_wait_ms passed:
 * shutdown(SHUT_WR), waiting close_wait_ms more) -> DEAD (descriptor
 * closed; freed at the next prepare).
 */
#include "net.h"
#include "frame.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#define NET_LISTENERS 256   /* gate_path.listener is a uint8_t */
#define UDP_READ_MAX 256    /* datagrams read per event (8 batches of 32) */
#define TCP_READ_ROUNDS 8   /* reads per event on one connection */
#define ACCEPT_MAX 64       /* accepts per event on one listener */
#define ACCEPT_PAUSE 0.1    /* seconds a listener rests after EMFILE */
#define WRITE_EAGER 16384   /* queued bytes that make net_send write now */
#define WBUF_KEEP 65536     /* an emptied write buffer larger than this is freed */

enum { CONN_OPEN, CONN_DRAIN, CONN_SHUT, CONN_DEAD };

/* cfg.batch datagrams of up to dgram_max bytes for recvmmsg/sendmmsg */
struct batch {
	struct mmsghdr *msg;
	struct iovec *iov;
	struct gate_path *path;  /* msg[i].msg_name is &path[i].addr */
	uint8_t *buf;
	int n;                   /* sending: datagrams waiting */
};

struct listener {
	net_t *net;
	ev_io io;
	int index;
	int fd;
	int transport;           /* NET_UDP or NET_TCP */
	int raw;
	int paused;              /* TCP: accept stopped after EMFILE/ENFILE */
	struct batch out;        /* UDP with batch > 1: the pending sends */
};

struct conn {
	net_t *net;
	ev_io rio, wio;          /* wio active only while bytes wait for EAGAIN */
	ev_timer tm;             /* graceful close deadlines */
	uint32_t id;
	int fd;
	int state;               /* CONN_* */
	int eof;                 /* closing: the peer's EOF has been read */
	int pending;             /* its id is on net->pend */
	const char *doom;        /* set: conn_lost(doom) at the next flush point */
	int doom_rst;            /* close the doomed one with an RST */
	struct gate_path path;
	struct conn *prev, *next;/* net->closing (DRAIN, SHUT) or net->dead */
	uint8_t *wbuf;           /* queued frames: wbuf[whead..wlen) unsent */
	size_t whead, wlen, wcap;
	size_t rlen;             /* bytes in rbuf */
	uint8_t rbuf[];          /* frame_max + 2 */
};

struct slot {
	struct conn *c;          /* NULL: free */
	uint32_t gen;            /* generation of the next id given out here */
	uint32_t next;           /* free list link (FIFO) */
};

struct net {
	struct ev_loop *loop;
	struct net_config cfg;
	struct net_callbacks cb;
	void *user;
	ev_prepare prep;         /* the flush point before the loop blocks */
	ev_timer tm;             /* net_timer */
	ev_timer pause;          /* restarts listeners paused by EMFILE */
	double now_ev;           /* ev_now() when now_us was read */
	uint64_t now_us;         /* CLOCK_MONOTONIC, once per loop iteration */
	struct listener *lis[NET_LISTENERS];
	int nlis;
	int udp_rcvbuf, udp_sndbuf; /* granted to the last UDP listener */
	int udp_pending;         /* listeners with a pending batch may exist */
	struct batch in;         /* the UDP receive area, shared */
	/* TCP connections */
	struct slot *slot;       /* slot_max entries, the first nslot used once */
	uint32_t nslot, slot_max;
	uint32_t idx_bits, free_head, free_tail; /* free list; UINT32_MAX: none */
	uint32_t open;
	int flushing;            /* in tcp_flush: a nested call does nothing */
	uint32_t *pend;          /* ids with bytes to write or a doom */
	size_t npend, pend_cap;
	struct conn *closing;    /* DRAIN and SHUT, doubly linked */
	struct conn *dead;       /* closed, freed at the next prepare */
	struct net_stats st;
};

#define NONE UINT32_MAX

/* ---- small helpers ------------------------------------------------------ */

static int
fail(char *err, size_t errlen, const char *what, int e)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", what, strerror(e));
	return -1;
}

static const char *
errreason(int e)
{
	switch (e) {
	case ECONNRESET: return "connection reset";
	case EPIPE: return "broken pipe";
	case ETIMEDOUT: return "timed out";
	case EHOSTUNREACH:
	case ENETUNREACH: return "unreachable";
	default: return "socket error";
	}
}

static void
set_linger0(int fd)
{
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static int
clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void
batch_free(struct batch *b)
{
	free(b->msg);
	free(b->iov);
	free(b->path);
	free(b->buf);
}

static int
batch_init(struct batch *b, int count, int size)
{
	int i;
	b->msg = calloc((size_t)count, sizeof(*b->msg));
	b->iov = calloc((size_t)count, sizeof(*b->iov));
	b->path = calloc((size_t)count, sizeof(*b->path));
	b->buf = malloc((size_t)count * (size_t)size);
	if (!b->msg || !b->iov || !b->path || !b->buf)
		return -1;
	for (i = 0; i < count; i++) {
		b->iov[i].iov_base = b->buf + (size_t)i * (size_t)size;
		b->iov[i].iov_len = (size_t)size;
		b->msg[i].msg_hdr.msg_iov = &b->iov[i];
		b->msg[i].msg_hdr.msg_iovlen = 1;
		b->msg[i].msg_hdr.msg_name = &b->path[i].addr;
	}
	return 0;
}

/* ---- connection slots --------------------------------------------------- */

static struct conn *
lookup(const net_t *n, uint32_t id)
{
	uint32_t i = id & ((1u << n->idx_bits) - 1);
	if (id == 0 || i >= n->nslot || !n->slot[i].c || n->slot[i].c->id != id)
		return NULL;
	return n->slot[i].c;
}

/* A slot for c; sets c->id. Never-used slots first, then the oldest freed. */
static int
slot_take(net_t *n, struct conn *c)
{
	uint32_t i;
	if (n->nslot < n->slot_max) {
		i = n->nslot++;
		n->slot[i].gen = 1;
	} else if (n->free_head != NONE) {
		i = n->free_head;
		n->free_head = n->slot[i].next;
		if (n->free_head == NONE)
			n->free_tail = NONE;
	} else {
		return -1;
	}
	n->slot[i].c = c;
	c->id = n->slot[i].gen << n->idx_bits | i;
	return 0;
}

static void
slot_give(net_t *n, struct conn *c)
{
	uint32_t i = c->id & ((1u << n->idx_bits) - 1);
	struct slot *s = &n->slot[i];
	s->c = NULL;
	s->gen = (s->gen + 1) & (UINT32_MAX >> n->idx_bits);
	if (s->gen == 0)
		s->gen = 1;
	s->next = NONE;
	if (n->free_tail == NONE)
		n->free_head = i;
	else
		n->slot[n->free_tail].next = i;
	n->free_tail = i;
}

/* ---- UDP ---------------------------------------------------------------- */

static void
udp_flush(net_t *n, struct listener *l)
{
	struct batch *b = &l->out;
	int sent = 0, total = b->n;
	while (sent < total) {
		int r = sendmmsg(l->fd, b->msg + sent, (unsigned)(total - sent), 0);
		n->st.udp_send_calls++;
		if (r > 0) {
			int i;
			for (i = sent; i < sent + r; i++)
				n->st.udp_out_bytes += b->iov[i].iov_len;
			n->st.udp_out += (uint64_t)r;
			sent += r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		                     errno == ENOBUFS)) {
			/* the socket is full: drop the rest, KCP retransmits */
			n->st.udp_send_errors += (uint64_t)(total - sent);
			break;
		} else {
			/* this one datagram cannot go (its address): drop it alone */
			n->st.udp_send_errors++;
			sent++;
		}
	}
	b->n = 0;
}

static void
udp_flush_all(net_t *n)
{
	int i;
	if (!n->udp_pending)
		return;
	for (i = 0; i < n->nlis; i++)
		if (n->lis[i]->out.n)
			udp_flush(n, n->lis[i]);
	n->udp_pending = 0;
}

static void
udp_send(net_t *n, struct listener *l, const struct gate_path *to,
         const uint8_t *pkt, size_t len)
{
	int i;
	if (len > (size_t)n->cfg.dgram_max || to->addrlen == 0 ||
	    to->addrlen > sizeof(to->addr)) {
		n->st.udp_send_errors++;
		return;
	}
	if (n->cfg.batch == 1) {
		for (;;) {
			ssize_t r = sendto(l->fd, pkt, len, 0,
			                   (const struct sockaddr *)&to->addr,
			                   to->addrlen);
			n->st.udp_send_calls++;
			if (r >= 0) {
				n->st.udp_out++;
				n->st.udp_out_bytes += len;
			} else if (errno == EINTR) {
				continue;
			} else {
				n->st.udp_send_errors++;
			}
			return;
		}
	}
	i = l->out.n;
	memcpy(l->out.iov[i].iov_base, pkt, len);
	l->out.iov[i].iov_len = len;
	memcpy(&l->out.path[i].addr, &to->addr, to->addrlen);
	l->out.msg[i].msg_hdr.msg_namelen = to->addrlen;
	if (++l->out.n == n->cfg.batch)
		udp_flush(n, l);
	else
		n->udp_pending = 1;
}

/* One receive call into the shared area: messages received, 0 when none
 * are waiting (or an error, which ends this event). */
static int
udp_recv(net_t *n, int fd)
{
	struct mmsghdr *m = n->in.msg;
	int i, r, want = n->cfg.batch;
	for (i = 0; i < want; i++) {
		m[i].msg_hdr.msg_namelen = sizeof(n->in.path[i].addr);
		m[i].msg_hdr.msg_flags = 0;
	}
	do {
		n->st.udp_recv_calls++;
		if (want == 1) {
			ssize_t got = recvmsg(fd, &m[0].msg_hdr, 0);
			r = got < 0 ? -1 : 1;
			if (got >= 0)
				m[0].msg_len = (unsigned)got;
		} else {
			r = recvmmsg(fd, m, (unsigned)want, 0, NULL);
		}
	} while (r < 0 && errno == EINTR);
	return r < 0 ? 0 : r;
}

static void
udp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	net_t *n = l->net;
	int total = 0;
	(void)loop, (void)revents;
	while (total < UDP_READ_MAX) {
		int i, r = udp_recv(n, l->fd);
		for (i = 0; i < r; i++) {
			struct gate_path *p = &n->in.path[i];
			const struct msghdr *h = &n->in.msg[i].msg_hdr;
			size_t len = n->in.msg[i].msg_len;
			if (h->msg_flags & MSG_TRUNC) {
				n->st.udp_truncated++;
				continue;
			}
			p->transport = GATE_UDP;
			p->listener = (uint8_t)l->index;
			p->raw = (uint8_t)l->raw;
			p->conn = 0;
			p->addrlen = h->msg_namelen;
			n->st.udp_in++;
			n->st.udp_in_bytes += len;
			n->cb.packet(p, h->msg_iov->iov_base, len, n->user);
		}
		total += r;
		if (r < n->cfg.batch)
			break;  /* drained (or an error): wait for the next event */
	}
}

/* ---- TCP connections: writing ------------------------------------------- */

static void
pend_add(net_t *n, struct conn *c)
{
	if (c->pending)
		return;
	if (n->npend == n->pend_cap) {
		size_t cap = n->pend_cap ? 2 * n->pend_cap : 64;
		uint32_t *p = realloc(n->pend, cap * sizeof(*p));
		if (!p)
			return; /* written when EV_WRITE or the next send comes */
		n->pend = p;
		n->pend_cap = cap;
	}
	n->pend[n->npend++] = c->id;
	c->pending = 1;
}

/* An open connection failed outside a libev callback: report it later. */
static void
doom(struct conn *c, const char *reason, int rst)
{
	net_t *n = c->net;
	if (c->doom)
		return;
	c->doom = reason;
	c->doom_rst = rst;
	ev_io_stop(n->loop, &c->rio);
	ev_io_stop(n->loop, &c->wio);
	pend_add(n, c);
}

/* Write what is queued. 0: all written, or the rest waits for EV_WRITE;
 * -1: the connection failed, *why says how. */
static int
conn_write(struct conn *c, const char **why)
{
	net_t *n = c->net;
	while (c->whead < c->wlen) {
		ssize_t r = send(c->fd, c->wbuf + c->whead, c->wlen - c->whead,
		                 MSG_NOSIGNAL);
		if (r > 0) {
			c->whead += (size_t)r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else if (r == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
			if (!ev_is_active(&c->wio))
				ev_io_start(n->loop, &c->wio);
			return 0;
		} else {
			*why = errreason(errno);
			return -1;
		}
	}
	c->whead = c->wlen = 0;
	if (c->wcap > WBUF_KEEP) {
		free(c->wbuf);
		c->wbuf = NULL;
		c->wcap = 0;
	}
	ev_io_stop(n->loop, &c->wio);
	return 0;
}

/* Close the descriptor now (an RST with rst), leave every list, and put c
 * on the dead list. Calls no user callback. */
static void
conn_free(struct conn *c, int rst)
{
	net_t *n = c->net;
	ev_io_stop(n->loop, &c->rio);
	ev_io_stop(n->loop, &c->wio);
	ev_timer_stop(n->loop, &c->tm);
	if (rst || n->cfg.close_rst)
		set_linger0(c->fd);
	close(c->fd);
	c->fd = -1;
	if (c->state == CONN_OPEN) {
		slot_give(n, c);
		n->open--;
	} else {
		if (c->prev)
			c->prev->next = c->next;
		else
			n->closing = c->next;
		if (c->next)
			c->next->prev = c->prev;
		n->st.tcp_closing--;
	}
	c->state = CONN_DEAD;
	n->st.tcp_closed++;
	free(c->wbuf);
	c->wbuf = NULL;
	c->next = n->dead;
	n->dead = c;
}

/* An open connection ended without net_close: close it, then tell. */
static void
conn_lost(struct conn *c, const char *reason, int rst)
{
	net_t *n = c->net;
	uint32_t id = c->id;
	conn_free(c, rst);
	if (n->cb.conn_lost)
		n->cb.conn_lost(id, reason, n->user);
}

/* Closing connections: once the queue is written and the peer's EOF was
 * read, close. */
static void
closing_step(struct conn *c)
{
	const char *why;
	if (conn_write(c, &why) < 0 || (c->eof && c->whead == c->wlen))
		conn_free(c, 0);
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	const char *why;
	(void)loop, (void)revents;
	if (c->state != CONN_OPEN)
		closing_step(c);
	else if (conn_write(c, &why) < 0)
		conn_lost(c, why, 0);
}

/* Write the pending connections; with report, tell conn_lost for the doomed
 * ones. A conn_lost callback may add entries (the loop reads npend each
 * time) or call net_flush (which then leaves TCP to this loop). */
static void
tcp_flush(net_t *n, int report)
{
	size_t i, keep = 0;
	if (n->flushing)
		return;
	n->flushing = 1;
	for (i = 0; i < n->npend; i++) {
		uint32_t id = n->pend[i];
		struct conn *c = lookup(n, id);
		const char *why;
		if (!c)
			continue;
		if (!c->doom && conn_write(c, &why) < 0)
			doom(c, why, 0);
		if (!c->doom) {
			c->pending = 0;
		} else if (!report) {
			n->pend[keep++] = id;
		} else {
			c->pending = 0;
			conn_lost(c, c->doom, c->doom_rst);
		}
	}
	n->npend = keep;
	n->flushing = 0;
}

static void
tcp_send(net_t *n, uint32_t id, const uint8_t *pkt, size_t len)
{
	struct conn *c = lookup(n, id);
	size_t need = 2 + len;
	const char *why;
	if (!c || c->doom || len == 0 || len > 65535) {
		n->st.tcp_dropped++;
		return;
	}
	if (c->wlen - c->whead + need > (size_t)n->cfg.conn_buffer_max) {
		/* over the limit: unless the socket takes some now, give up */
		if (conn_write(c, &why) < 0) {
			doom(c, why, 0);
			n->st.tcp_dropped++;
			return;
		}
		if (c->wlen - c->whead + need > (size_t)n->cfg.conn_buffer_max) {
			n->st.tcp_backpressure++;
			n->st.tcp_dropped++;
			doom(c, "backpressure", 1);
			return;
		}
	}
	if (c->wlen + need > c->wcap) {
		if (c->whead) {
			memmove(c->wbuf, c->wbuf + c->whead, c->wlen - c->whead);
			c->wlen -= c->whead;
			c->whead = 0;
		}
		if (c->wlen + need > c->wcap) {
			size_t cap = c->wcap ? 2 * c->wcap : 4096;
			uint8_t *b;
			while (cap < c->wlen + need)
				cap *= 2;
			b = realloc(c->wbuf, cap);
			if (!b) {
				n->st.tcp_dropped++;
				return;
			}
			c->wbuf = b;
			c->wcap = cap;
		}
	}
	frame_header(c->wbuf + c->wlen, len);
	memcpy(c->wbuf + c->wlen + FRAME_HEADER, pkt, len);
	c->wlen += need;
	n->st.tcp_frames_out++;
	if (ev_is_active(&c->wio))
		return;  /* the socket is full: EV_WRITE writes it */
	if (c->wlen - c->whead >= WRITE_EAGER) {
		if (conn_write(c, &why) < 0)
			doom(c, why, 0);
	} else {
		pend_add(n, c);
	}
}

/* ---- TCP connections: reading ------------------------------------------- */

/* Deliver the complete frames in rbuf. 0: c is no longer open (closed by
 * a bad frame or by the packet callback): stop reading. */
static int
frames(struct conn *c)
{
	net_t *n = c->net;
	size_t off = 0;
	for (;;) {
		size_t len;
		long got = frame_next(c->rbuf + off, c->rlen - off,
		                      (size_t)n->cfg.frame_max, &len);
		struct gate_path from;
		if (got < 0) {
			n->st.tcp_bad_frames++;
			conn_lost(c, frame_error(got), 1);
			return 0;
		}
		if (got == 0)
			break;
		n->st.tcp_frames_in++;
		from = c->path;  /* a copy: the callback may close c */
		n->cb.packet(&from, c->rbuf + off + FRAME_HEADER, len, n->user);
		if (c->state != CONN_OPEN || c->doom)
			return 0;
		off += (size_t)got;
	}
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	return 1;
}

/* A closing connection: discard input until EOF or an error. */
static void
drain(struct conn *c)
{
	net_t *n = c->net;
	int round;
	for (round = 0; round < TCP_READ_ROUNDS; round++) {
		ssize_t r = read(c->fd, c->rbuf, (size_t)n->cfg.frame_max + 2);
		if (r > 0)
			continue;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r < 0) {
			conn_free(c, 0);
			return;
		}
		c->eof = 1;
		ev_io_stop(n->loop, &c->rio);
		closing_step(c);
		return;
	}
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	net_t *n = c->net;
	size_t cap = (size_t)n->cfg.frame_max + 2;
	int round;
	(void)loop, (void)revents;
	if (c->state != CONN_OPEN) {
		drain(c);
		return;
	}
	for (round = 0; round < TCP_READ_ROUNDS; round++) {
		size_t room = cap - c->rlen;
		ssize_t r = read(c->fd, c->rbuf + c->rlen, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			conn_lost(c, r == 0 ? "eof" : errreason(errno), 0);
			return;
		}
		c->rlen += (size_t)r;
		if (!frames(c) || (size_t)r < room)
			return;  /* closed, or the socket is drained */
	}
}

/* ---- TCP listeners ------------------------------------------------------ */

/* No session on this connection within hello_timeout_ms. */
static void
hello_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	(void)loop;
	(void)revents;
	if (c->state != CONN_OPEN)
		return;
	c->net->st.tcp_hello_timeouts++;
	doom(c, "handshake timeout", 0);
}

static void
conn_open(net_t *n, struct listener *l, int fd,
          const struct sockaddr_storage *a, socklen_t alen)
{
	struct conn *c = NULL;
	int one = 1;
	if (n->open >= (uint32_t)n->cfg.max_conns ||
	    !(c = calloc(1, sizeof(*c) + (size_t)n->cfg.frame_max + 2)) ||
	    slot_take(n, c) < 0) {
		free(c);
		n->st.tcp_refused++;
		set_linger0(fd); /* an RST: no TIME_WAIT for a refusal */
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (n->cfg.priority >= 0)
		setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &n->cfg.priority,
		           sizeof(n->cfg.priority));
	c->net = n;
	c->fd = fd;
	c->state = CONN_OPEN;
	c->path.transport = GATE_TCP;
	c->path.listener = (uint8_t)l->index;
	c->path.raw = (uint8_t)l->raw;
	c->path.conn = c->id;
	c->path.addrlen = alen;
	memcpy(&c->path.addr, a, alen);
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	ev_init(&c->tm, hello_timer_cb);
	c->rio.data = c->wio.data = c->tm.data = c;
	ev_io_start(n->loop, &c->rio);
	if (n->cfg.hello_timeout_ms > 0) {
		ev_timer_set(&c->tm, n->cfg.hello_timeout_ms / 1000.0, 0.);
		ev_timer_start(n->loop, &c->tm);
	}
	n->open++;
	n->st.tcp_accepted++;
}

void
net_bind(net_t *n, uint32_t id)
{
	struct conn *c = lookup(n, id);
	if (c && c->state == CONN_OPEN)
		ev_timer_stop(n->loop, &c->tm);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	net_t *n = l->net;
	int i;
	(void)revents;
	for (i = 0; i < ACCEPT_MAX; i++) {
		struct sockaddr_storage a;
		socklen_t alen = sizeof(a);
		int fd = accept4(l->fd, (struct sockaddr *)&a, &alen,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_open(n, l, fd, &a, alen);
			continue;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* Out of descriptors: the connection stays in the backlog and
			 * the listener stays readable. Rest instead of spinning. */
			ev_io_stop(loop, &l->io);
			l->paused = 1;
			n->st.accept_paused++;
			if (!ev_is_active(&n->pause)) {
				ev_timer_set(&n->pause, ACCEPT_PAUSE, 0.);
				ev_timer_start(loop, &n->pause);
			}
			return;
		default: /* EAGAIN, or an error the next event reports again */
			return;
		}
	}
}

static void
pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	net_t *n = w->data;
	int i;
	(void)revents;
	for (i = 0; i < n->nlis; i++) {
		if (n->lis[i]->paused) {
			n->lis[i]->paused = 0;
			ev_io_start(loop, &n->lis[i]->io);
		}
	}
}

/* ---- closing ------------------------------------------------------------ */

static void
close_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	net_t *n = c->net;
	(void)revents;
	if (c->state == CONN_DRAIN && !c->eof) {
		/* no EOF yet: drop what the peer did not take, send our FIN and
		 * wait as long again */
		c->state = CONN_SHUT;
		c->whead = c->wlen = 0;
		ev_io_stop(loop, &c->wio);
		if (shutdown(c->fd, SHUT_WR) == 0) {
			ev_timer_set(w, n->cfg.close_wait_ms / 1000.0, 0.);
			ev_timer_start(loop, w);
			return;
		}
	}
	conn_free(c, 0);
}

void
net_close(net_t *n, uint32_t conn, int mode)
{
	struct conn *c = lookup(n, conn);
	if (!c)
		return;
	if (mode == NET_CLOSE_RESET || n->cfg.close_rst || c->doom) {
		conn_free(c, 1);
		return;
	}
	/* out of the slot table: the id is stale from now on */
	slot_give(n, c);
	n->open--;
	c->state = CONN_DRAIN;
	c->rlen = 0;
	c->prev = NULL;
	c->next = n->closing;
	if (n->closing)
		n->closing->prev = c;
	n->closing = c;
	n->st.tcp_closing++;
	ev_timer_stop(n->loop, &c->tm); /* the handshake deadline, if any */
	ev_set_cb(&c->tm, close_timer_cb);
	ev_timer_set(&c->tm, n->cfg.close_wait_ms / 1000.0, 0.);
	ev_timer_start(n->loop, &c->tm);
	closing_step(c);
}

/* ---- the loop ----------------------------------------------------------- */

static void
reap(net_t *n)
{
	while (n->dead) {
		struct conn *c = n->dead;
		n->dead = c->next;
		free(c);
	}
}

static void
prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	net_t *n = w->data;
	(void)loop, (void)revents;
	tcp_flush(n, 1);
	udp_flush_all(n);  /* last: conn_lost callbacks may have sent */
	reap(n);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	net_t *n = w->data;
	(void)loop, (void)revents;
	if (n->cb.timer)
		n->cb.timer(net_now(n), n->user);
}

/*
 * Not ev_now() * 1e6: ev_now() is wall-clock time and jumps with the
 * system clock. This reads CLOCK_MONOTONIC once per loop iteration (when
 * ev_now() changed since the last reading), so it is still "the loop's
 * time" and ev_now_update() gives a fresh reading.
 */
uint64_t
net_now(net_t *n)
{
	double t = ev_now(n->loop);
	if (t != n->now_ev) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		n->now_ev = t;
		n->now_us = (uint64_t)ts.tv_sec * 1000000u +
		            (uint64_t)ts.tv_nsec / 1000u;
	}
	return n->now_us;
}

void
net_timer(net_t *n, uint64_t due)
{
	uint64_t now = net_now(n);
	ev_timer_stop(n->loop, &n->tm);
	ev_timer_set(&n->tm, due > now ? (double)(due - now) / 1e6 : 0., 0.);
	ev_timer_start(n->loop, &n->tm);
}

void
net_send(net_t *n, const struct gate_path *to, const uint8_t *pkt,
         size_t len)
{
	if (to->transport == GATE_TCP) {
		tcp_send(n, to->conn, pkt, len);
	} else if (to->listener < n->nlis &&
	           n->lis[to->listener]->transport == NET_UDP) {
		udp_send(n, n->lis[to->listener], to, pkt, len);
	} else {
		n->st.udp_send_errors++;
	}
}

void
net_flush(net_t *n)
{
	udp_flush_all(n);
	tcp_flush(n, 0);
}

void
net_stats(const net_t *n, struct net_stats *st)
{
	*st = n->st;
	st->tcp_open = n->open;
	st->udp_rcvbuf = n->udp_rcvbuf;
	st->udp_sndbuf = n->udp_sndbuf;
}

/* ---- setup -------------------------------------------------------------- */

void
net_config_default(struct net_config *c)
{
	memset(c, 0, sizeof(*c));
	c->batch = 32;
	c->tos = 0x10;
	c->priority = -1;
	c->backlog = 511;
	c->reuseport = 1;
	c->frame_max = 2048;
	c->conn_buffer_max = 1 << 20;
	c->close_wait_ms = 2000;
	c->close_rst = 0;
	c->max_conns = 10000;
	c->dgram_max = 2048;
	c->hello_timeout_ms = 10000;
	c->udp_rcvbuf = 4 << 20;
	c->udp_sndbuf = 4 << 20;
}

net_t *
net_create(struct ev_loop *loop, const struct net_config *c,
           const struct net_callbacks *cb, void *user)
{
	net_t *n = calloc(1, sizeof(*n));
	struct net_config *k;
	if (!n)
		return NULL;
	n->loop = loop;
	n->cfg = *c;
	n->cb = *cb;
	n->user = user;
	k = &n->cfg;
	k->batch = clamp(k->batch, 1, 1024);
	k->frame_max = clamp(k->frame_max, 1, FRAME_MAX);
	k->dgram_max = clamp(k->dgram_max ? k->dgram_max : 2048, 1, 65535);
	k->conn_buffer_max = clamp(k->conn_buffer_max, k->frame_max + 2,
	                           1 << 30);
	k->close_wait_ms = clamp(k->close_wait_ms, 0, 3600 * 1000);
	k->max_conns = clamp(k->max_conns, 1, 1 << 20);
	if (k->backlog <= 0)
		k->backlog = 511;
	for (n->idx_bits = 8; (1u << n->idx_bits) < (uint32_t)k->max_conns;)
		n->idx_bits++;
	n->slot_max = 1u << n->idx_bits;
	n->free_head = n->free_tail = NONE;
	n->slot = malloc(n->slot_max * sizeof(*n->slot)); /* touched as used */
	if (!n->slot || batch_init(&n->in, k->batch, k->dgram_max) < 0) {
		net_release(n);
		return NULL;
	}
	signal(SIGPIPE, SIG_IGN);
	ev_prepare_init(&n->prep, prepare_cb);
	ev_timer_init(&n->tm, timer_cb, 0., 0.);
	ev_timer_init(&n->pause, pause_cb, ACCEPT_PAUSE, 0.);
	n->prep.data = n->tm.data = n->pause.data = n;
	ev_prepare_start(loop, &n->prep);
	ev_unref(loop); /* the flush point alone does not keep ev_run going */
	return n;
}

void
net_release(net_t *n)
{
	int i;
	if (!n)
		return;
	net_flush(n);  /* best effort, calls nobody */
	while (n->closing)
		conn_free(n->closing, 0);
	for (i = 0; i < (int)n->nslot; i++)
		if (n->slot[i].c)
			conn_free(n->slot[i].c, 0);
	for (i = 0; i < n->nlis; i++) {
		struct listener *l = n->lis[i];
		ev_io_stop(n->loop, &l->io);
		close(l->fd);
		batch_free(&l->out);
		free(l);
	}
	if (ev_is_active(&n->prep)) {
		ev_ref(n->loop);
		ev_prepare_stop(n->loop, &n->prep);
	}
	ev_timer_stop(n->loop, &n->tm);
	ev_timer_stop(n->loop, &n->pause);
	reap(n);
	free(n->slot);
	free(n->pend);
	batch_free(&n->in);
	free(n);
}

/* Ask for a socket buffer of want bytes (0: leave the system's). The
 * kernel caps the request at net.core.rmem_max/wmem_max; with
 * CAP_NET_ADMIN the FORCE option goes past the cap. *got: what the kernel
 * granted, halved as the kernel reports it doubled (its bookkeeping). */
static int
set_buffer(int fd, int opt, int force, int want, int *got)
{
	if (want <= 0)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, opt, &want, sizeof(want)) < 0)
		return -1;
	int have = 0;
	socklen_t len = sizeof(have);
	if (getsockopt(fd, SOL_SOCKET, opt, &have, &len) == 0 && have / 2 < want &&
	    setsockopt(fd, SOL_SOCKET, force, &want, sizeof(want)) == 0)
		getsockopt(fd, SOL_SOCKET, opt, &have, &len);
	if (got)
		*got = have / 2;
	return 0;
}

/* The socket options of a listener; -1 with err filled. */
static int
sock_options(net_t *n, int fd, int family, int transport, char *err,
             size_t errlen)
{
	const struct net_config *k = &n->cfg;
	int one = 1;
	if (transport == NET_TCP &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return fail(err, errlen, "SO_REUSEADDR", errno);
	if (k->reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return fail(err, errlen, "SO_REUSEPORT", errno);
	if (transport == NET_UDP && k->tos >= 0) {
		if (family == AF_INET6) {
			if (setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &k->tos,
			               sizeof(k->tos)) < 0)
				return fail(err, errlen, "IPV6_TCLASS", errno);
			/* IPv4 peers of a dual-stack socket: best effort */
			setsockopt(fd, IPPROTO_IP, IP_TOS, &k->tos, sizeof(k->tos));
		} else if (setsockopt(fd, IPPROTO_IP, IP_TOS, &k->tos,
		                      sizeof(k->tos)) < 0) {
			return fail(err, errlen, "IP_TOS", errno);
		}
	}
	if (k->priority >= 0 && setsockopt(fd, SOL_SOCKET, SO_PRIORITY,
	                                   &k->priority, sizeof(k->priority)) < 0)
		return fail(err, errlen, "SO_PRIORITY", errno);
	int udp = transport == NET_UDP;
	if (set_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE,
	               udp ? k->udp_rcvbuf : k->tcp_rcvbuf,
	               udp ? &n->udp_rcvbuf : NULL) < 0)
		return fail(err, errlen, "SO_RCVBUF", errno);
	if (set_buffer(fd, SO_SNDBUF, SO_SNDBUFFORCE,
	               udp ? k->udp_sndbuf : k->tcp_sndbuf,
	               udp ? &n->udp_sndbuf : NULL) < 0)
		return fail(err, errlen, "SO_SNDBUF", errno);
	return 0;
}

/* host is a numeric IPv4 or IPv6 address; NULL, "" and "*" are 0.0.0.0.
 * Accepted TCP connections inherit the listener's buffer sizes and
 * priority. */
int
net_listen(net_t *n, int transport, const char *host, int port, int raw,
           int *bound_port, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage a;
	socklen_t alen = sizeof(a);
	struct listener *l = NULL;
	char ps[16];
	int fd = -1, rc;

	if (transport != NET_UDP && transport != NET_TCP) {
		snprintf(err, errlen, "unknown transport %d", transport);
		return -1;
	}
	if (n->nlis == NET_LISTENERS || port < 0 || port > 65535) {
		snprintf(err, errlen, n->nlis == NET_LISTENERS
		         ? "too many listeners" : "bad port %d", port);
		return -1;
	}
	if (!host || !*host || !strcmp(host, "*"))
		host = "0.0.0.0";
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = transport == NET_UDP ? SOCK_DGRAM : SOCK_STREAM;
	snprintf(ps, sizeof(ps), "%d", port);
	rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s (a numeric address is expected)",
		         host, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0) {
		fail(err, errlen, "socket", errno);
		goto out;
	}
	if (sock_options(n, fd, ai->ai_family, transport, err, errlen) < 0)
		goto out;
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		char what[96];
		snprintf(what, sizeof(what), "bind %s port %d", host, port);
		fail(err, errlen, what, errno);
		goto out;
	}
	if (transport == NET_TCP && listen(fd, n->cfg.backlog) < 0) {
		fail(err, errlen, "listen", errno);
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
		fail(err, errlen, "getsockname", errno);
		goto out;
	}
	if (!(l = calloc(1, sizeof(*l))) ||
	    (transport == NET_UDP && n->cfg.batch > 1 &&
	     batch_init(&l->out, n->cfg.batch, n->cfg.dgram_max) < 0)) {
		fail(err, errlen, "listener", ENOMEM);
		goto out;
	}
	if (bound_port)
		*bound_port = ntohs(a.ss_family == AF_INET6
		                    ? ((struct sockaddr_in6 *)&a)->sin6_port
		                    : ((struct sockaddr_in *)&a)->sin_port);
	freeaddrinfo(ai);
	l->net = n;
	l->index = n->nlis;
	l->fd = fd;
	l->transport = transport;
	l->raw = raw != 0;
	ev_io_init(&l->io, transport == NET_UDP ? udp_read_cb : accept_cb, fd,
	           EV_READ);
	l->io.data = l;
	ev_io_start(n->loop, &l->io);
	n->lis[n->nlis++] = l;
	return l->index;
out:
	if (l) {
		batch_free(&l->out);
		free(l);
	}
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return -1;
}
