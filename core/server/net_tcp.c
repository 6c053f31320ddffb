/*
 * net_tcp.c - TCP connections: the write queue, frames, failures and
 * graceful close (see net.h, net_int.h). Stream connections (net_stream.c)
 * use the same queue, failure and close code; only reading differs.
 *
 * A connection lives in a slot; its id is (generation << idx_bits) | slot
 * index, the generation never 0, so an id is never 0 and a stale id finds
 * a slot whose generation moved on (free slots are reused in FIFO order,
 * after every slot was used once). Writes are queued and written at the
 * same flush points as UDP, or at once when WRITE_EAGER bytes wait.
 *
 * Re-entrancy: user callbacks (packet, conn_lost, closed) are only called
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
 * closed; freed at the next prepare). A stream connection goes to SHUT as
 * soon as its queue is written, and its one deadline covers both.
 */
#include "net_int.h"
#include "frame.h"
#include "log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- writing ------------------------------------------------------------ */

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
void
net_conn_doom(struct conn *c, const char *reason, int rst)
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
int
net_conn_write(struct conn *c, const char **why)
{
	net_t *n = c->net;
	while (c->whead < c->wlen) {
		ssize_t r = send(c->fd, c->wbuf + c->whead, c->wlen - c->whead,
		                 MSG_NOSIGNAL);
		n->st.tcp_write_calls++;
		if (r > 0) {
			c->whead += (size_t)r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else if (r == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
			if (!ev_is_active(&c->wio))
				ev_io_start(n->loop, &c->wio);
			return 0;
		} else {
			*why = net_errreason(errno);
			return -1;
		}
	}
	c->whead = c->wlen = 0;
	net_conn_wbuf_release(c); /* an idle connection holds no buffer */
	ev_io_stop(n->loop, &c->wio);
	return 0;
}

void
net_conn_wbuf_release(struct conn *c)
{
	net_t *n = c->net;
	if (!c->wbuf)
		return;
	if (c->wcap == WBUF_UNIT && n->nwspare < WBUF_SPARES)
		n->wspare[n->nwspare++] = c->wbuf;
	else
		free(c->wbuf);
	c->wbuf = NULL;
	c->wcap = c->whead = c->wlen = 0;
}

/* Close the descriptor now (an RST with rst), leave every list, and put c
 * on the dead list. Calls no user callback. */
void
net_conn_free(struct conn *c, int rst)
{
	net_t *n = c->net;
	int stream = is_stream(c);
	ev_io_stop(n->loop, &c->rio);
	ev_io_stop(n->loop, &c->wio);
	ev_timer_stop(n->loop, &c->tm);
	if (c->fd >= 0) { /* -1: handed off, the descriptor is someone else's */
		if (rst || (n->cfg.close_rst && !stream))
			net_set_linger0(c->fd);
		close(c->fd);
	}
	c->fd = -1;
	if (c->state == CONN_OPEN) {
		net_slot_give(n, c);
		if (stream) {
			n->nstream--;
		} else {
			n->open--;
			net_src_give(n, c->src);
		}
	} else {
		if (c->prev)
			c->prev->next = c->next;
		else
			n->closing = c->next;
		if (c->next)
			c->next->prev = c->prev;
		if (stream)
			c->lis->s.closing--;
		else
			n->st.tcp_closing--;
	}
	c->state = CONN_DEAD;
	if (!stream)
		n->st.tcp_closed++;
	net_conn_wbuf_release(c);
	if (c->rbuf != c->rmem)
		free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = 0;
	c->next = n->dead;
	n->dead = c;
}

/* An open connection ended without net_close: close it, then tell. */
void
net_conn_lost(struct conn *c, const char *reason, int rst)
{
	net_t *n = c->net;
	struct listener *l = c->lis;
	uint32_t id = c->id;
	void *ctx = c->ctx;
	int stream = is_stream(c);
	net_conn_free(c, rst);
	if (stream) {
		if (l->s.cb.closed)
			l->s.cb.closed(id, ctx, reason, l->s.user);
	} else if (n->cb.conn_lost) {
		n->cb.conn_lost(id, reason, n->user);
	}
}

/* Closing connections: once the queue is written and the peer's EOF was
 * read, close. A stream's peer was not told to close first: our FIN, as
 * soon as the queue is written, tells it. */
static void
closing_step(struct conn *c)
{
	const char *why;
	if (net_conn_write(c, &why) < 0 || (c->eof && c->whead == c->wlen)) {
		net_conn_free(c, 0);
		return;
	}
	if (is_stream(c) && c->state == CONN_DRAIN && c->whead == c->wlen) {
		c->state = CONN_SHUT;
		if (shutdown(c->fd, SHUT_WR) < 0)
			net_conn_free(c, 0);
	}
}

void
net_conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	const char *why;
	(void)loop, (void)revents;
	if (c->state != CONN_OPEN)
		closing_step(c);
	else if (net_conn_write(c, &why) < 0)
		net_conn_lost(c, why, 0);
}

/* Write the pending connections; with report, tell conn_lost for the doomed
 * ones. A conn_lost callback may add entries (the loop reads npend each
 * time) or call net_flush (which then leaves TCP to this loop). */
void
net_tcp_flush(net_t *n, int report)
{
	size_t i, keep = 0;
	if (n->flushing)
		return;
	n->flushing = 1;
	for (i = 0; i < n->npend; i++) {
		uint32_t id = n->pend[i];
		struct conn *c = net_lookup(n, id);
		const char *why;
		if (!c)
			continue;
		if (!c->doom && net_conn_write(c, &why) < 0)
			net_conn_doom(c, why, 0);
		if (!c->doom) {
			c->pending = 0;
		} else if (!report) {
			n->pend[keep++] = id;
		} else {
			c->pending = 0;
			net_conn_lost(c, c->doom, c->doom_rst);
		}
	}
	n->npend = keep;
	n->flushing = 0;
}

int
net_conn_reserve(struct conn *c, size_t need, size_t limit)
{
	const char *why;
	if (c->wlen - c->whead + need > limit) {
		/* over the limit: unless the socket takes some now, give up */
		if (net_conn_write(c, &why) < 0) {
			net_conn_doom(c, why, 0);
			return -1;
		}
		if (c->wlen - c->whead + need > limit) {
			net_conn_doom(c, "backpressure", 1);
			return -2;
		}
	}
	if (c->wlen + need > c->wcap) {
		if (c->whead) {
			memmove(c->wbuf, c->wbuf + c->whead, c->wlen - c->whead);
			c->wlen -= c->whead;
			c->whead = 0;
		}
		if (!c->wbuf && need <= WBUF_UNIT && c->net->nwspare) {
			c->wbuf = c->net->wspare[--c->net->nwspare];
			c->wcap = WBUF_UNIT;
		}
		if (c->wlen + need > c->wcap) {
			size_t cap = c->wcap ? 2 * c->wcap : WBUF_UNIT;
			uint8_t *b;
			while (cap < c->wlen + need)
				cap *= 2;
			b = realloc(c->wbuf, cap);
			if (!b)
				return -3;
			c->wbuf = b;
			c->wcap = cap;
		}
	}
	return 0;
}

void
net_conn_queued(struct conn *c)
{
	const char *why;
	if (ev_is_active(&c->wio))
		return;  /* the socket is full: EV_WRITE writes it */
	if (c->wlen - c->whead >= WRITE_EAGER) {
		if (net_conn_write(c, &why) < 0)
			net_conn_doom(c, why, 0);
	} else {
		pend_add(c->net, c);
	}
}

void
net_tcp_send(net_t *n, uint32_t id, const uint8_t *pkt, size_t len)
{
	struct conn *c = net_lookup(n, id);
	size_t need = FRAME_HEADER + len;
	int rc;
	if (!c || is_stream(c) || c->doom || len == 0 || len > 65535) {
		n->st.tcp_dropped++;
		return;
	}
	rc = net_conn_reserve(c, need, (size_t)n->cfg.conn_buffer_max);
	if (rc < 0) {
		if (rc == -2)
			n->st.tcp_backpressure++;
		n->st.tcp_dropped++;
		return;
	}
	frame_header(c->wbuf + c->wlen, len);
	memcpy(c->wbuf + c->wlen + FRAME_HEADER, pkt, len);
	c->wlen += need;
	n->st.tcp_frames_out++;
	net_conn_queued(c);
}

/* ---- reading ------------------------------------------------------------ */

/* Deliver the complete frames of buf[0..len); *used: the bytes they took
 * (the rest begins a frame). 0: c is no longer open (closed by a bad frame
 * or by the packet callback): stop reading. */
static int
frames(struct conn *c, uint8_t *buf, size_t len, size_t *used)
{
	net_t *n = c->net;
	size_t off = 0;
	*used = 0;
	for (;;) {
		size_t flen;
		long got = frame_next(buf + off, len - off,
		                      (size_t)n->cfg.frame_max, &flen);
		struct gate_path from;
		if (got < 0) {
			n->st.tcp_bad_frames++;
			net_conn_lost(c, frame_error(got), 1);
			return 0;
		}
		if (got == 0)
			break;
		n->st.tcp_frames_in++;
		from = c->path;  /* a copy: the callback may close c */
		n->cb.packet(&from, buf + off + FRAME_HEADER, flen, n->user);
		if (c->handoff && c->state == CONN_OPEN && !c->doom &&
		    len - off > TCP_READ_AREA) { /* more than the other side takes */
			net_conn_lost(c, "hand-off too large", 0);
			return 0;
		}
		if (c->handoff && c->state == CONN_OPEN && !c->doom) {
			/* to another process, with this frame and what follows */
			int fd = c->fd;
			c->fd = -1;
			n->st.tcp_handed_off++;
			n->cb.handoff(fd, c->lis->index, &c->path.addr.sa, c->path.addrlen,
			              buf + off, len - off, n->user);
			net_conn_free(c, 0);
			n->st.tcp_closed--; /* not closed: moved */
			return 0;
		}
		if (c->state != CONN_OPEN || c->doom)
			return 0;
		off += (size_t)got;
		*used = off;
	}
	return 1;
}

/* A closing connection: discard input until EOF or an error. */
void
net_conn_drain(struct conn *c)
{
	net_t *n = c->net;
	int round;
	uint8_t junk[4096]; /* not net's read area: a packet callback may
	                       close a connection while frames come from it */
	for (round = 0; round < TCP_READ_ROUNDS; round++) {
		ssize_t r = read(c->fd, junk, sizeof junk);
		if (r > 0)
			continue;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r < 0) {
			net_conn_free(c, 0);
			return;
		}
		c->eof = 1;
		ev_io_stop(n->loop, &c->rio);
		closing_step(c);
		return;
	}
}

/* r bytes just read into buf (c->rbuf + c->rlen, or net's read area):
 * deliver the complete frames, keep a frame begun. 0: c is no longer open. */
static int
consume(struct conn *c, uint8_t *buf, size_t r)
{
	size_t used;
	if (c->rbuf) {
		c->rlen += r;
		if (!frames(c, c->rbuf, c->rlen, &used))
			return 0;
		c->rlen -= used;
		if (c->rlen == 0) {
			free(c->rbuf);
			c->rbuf = NULL;
		} else if (used) {
			memmove(c->rbuf, c->rbuf + used, c->rlen);
		}
	} else {
		if (!frames(c, buf, r, &used))
			return 0;
		if (used < r) { /* a frame begun: keep it */
			c->rbuf = malloc(c->rcap);
			if (!c->rbuf) {
				net_conn_lost(c, "out of memory", 1);
				return 0;
			}
			c->rlen = r - used;
			memcpy(c->rbuf, buf + used, c->rlen);
		}
	}
	return 1;
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	int round;
	(void)loop, (void)revents;
	if (c->state != CONN_OPEN) {
		net_conn_drain(c);
		return;
	}
	for (round = 0; round < TCP_READ_ROUNDS; round++) {
		/* the rest of a frame begun goes after it; anything else to net's
		 * shared area, so an idle connection holds no read buffer */
		net_t *n = c->net;
		uint8_t *buf = c->rbuf ? c->rbuf + c->rlen : n->rarea;
		size_t room = c->rbuf ? c->rcap - c->rlen : TCP_READ_AREA;
		ssize_t r = read(c->fd, buf, room);
		n->st.tcp_read_calls++;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			net_conn_lost(c, r == 0 ? "eof" : net_errreason(errno), 0);
			return;
		}
		if (!consume(c, buf, (size_t)r))
			return;
		if ((size_t)r < room)
			return;  /* the socket is drained */
	}
}

int
net_hand_off(net_t *n, uint32_t id)
{
	struct conn *c = net_lookup(n, id);
	if (!c || is_stream(c) || c->state != CONN_OPEN || c->bound ||
	    c->wlen > c->whead || !n->cb.handoff)
		return -1;
	c->handoff = 1;
	return 0;
}

int
net_adopt_tcp(net_t *n, int listener, int fd, const struct sockaddr *addr,
              socklen_t addrlen, const uint8_t *bytes, size_t len)
{
	struct sockaddr_storage a;
	if (addrlen > sizeof a)
		addrlen = sizeof a;
	memset(&a, 0, sizeof a);
	memcpy(&a, addr, addrlen);
	if (listener < 0 || listener >= n->nlis || n->lis[listener]->transport != NET_TCP ||
	    len > TCP_READ_AREA) {
		log_warn("net: a handed-off tcp connection for listener %d (%zu bytes) "
		         "refused: no such tcp listener here", listener, len);
		close(fd);
		return -1;
	}
	struct conn *c = net_tcp_open(n, n->lis[listener], fd, &a, addrlen);
	if (!c)
		return -1; /* refused and closed, logged */
	n->st.tcp_adopted++;
	if (len) {
		memcpy(n->rarea, bytes, len);
		consume(c, n->rarea, len);
	}
	return 0;
}

/* ---- opening ------------------------------------------------------------ */

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
	net_conn_doom(c, "handshake timeout", 0);
}

struct conn *
net_tcp_open(net_t *n, struct listener *l, int fd,
             const struct sockaddr_storage *a, socklen_t alen)
{
	struct conn *c = NULL;
	size_t cap = (size_t)n->cfg.frame_max + FRAME_HEADER;
	uint64_t src = net_src_key(n, a);
	int one = 1;
	if (n->open >= (uint32_t)n->cfg.max_conns ||
	    net_src_take(n, src) < 0) {
		/* one source must not fill max_conns: refused apart */
		if (n->open >= (uint32_t)n->cfg.max_conns) {
			n->st.tcp_refused++;
			log_warn("net: tcp connection refused: net.max_conns reached "
			         "(%u open, net.max_conns %d; %llu refused so far)",
			         n->open, n->cfg.max_conns,
			         (unsigned long long)n->st.tcp_refused);
		} else {
			n->st.tcp_refused_addr++;
			net_src_refused(n, a, "net.max_conns_per_addr connections "
			                "open from this source");
		}
		net_set_linger0(fd); /* an RST: no TIME_WAIT for a refusal */
		close(fd);
		return NULL;
	}
	if (!(c = calloc(1, sizeof(*c))) || net_slot_take(n, c) < 0) {
		const char *why = c ? "no free slot" : "out of memory";
		free(c);
		net_src_give(n, src);
		n->st.tcp_refused++;
		log_warn("net: tcp connection refused: %s (%u open, net.max_conns "
		         "%d; %llu refused so far)", why, n->open, n->cfg.max_conns,
		         (unsigned long long)n->st.tcp_refused);
		net_set_linger0(fd);
		close(fd);
		return NULL;
	}
	c->src = src;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (n->cfg.priority >= 0)
		setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &n->cfg.priority,
		           sizeof(n->cfg.priority));
	c->net = n;
	c->lis = l;
	c->fd = fd;
	c->state = CONN_OPEN;
	c->rcap = cap;
	c->path.transport = GATE_TCP;
	c->path.listener = (uint8_t)l->index;
	c->path.raw = (uint8_t)l->raw;
	c->path.conn = c->id;
	if (alen > sizeof c->path.addr) /* not IPv4 or IPv6: no such listener */
		alen = sizeof c->path.addr;
	c->path.addrlen = alen;
	memcpy(&c->path.addr, a, alen);
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, net_conn_write_cb, fd, EV_WRITE);
	ev_init(&c->tm, hello_timer_cb);
	c->rio.data = c->wio.data = c->tm.data = c;
	ev_io_start(n->loop, &c->rio);
	if (n->cfg.hello_timeout_ms > 0) {
		ev_timer_set(&c->tm, n->cfg.hello_timeout_ms / 1000.0, 0.);
		ev_timer_start(n->loop, &c->tm);
	}
	n->open++;
	n->st.tcp_accepted++;
	return c;
}

void
net_bind(net_t *n, uint32_t id)
{
	struct conn *c = net_lookup(n, id);
	if (c && !is_stream(c) && c->state == CONN_OPEN) {
		ev_timer_stop(n->loop, &c->tm);
		c->bound = 1;
	}
}

/* ---- closing ------------------------------------------------------------ */

static void
close_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	net_t *n = c->net;
	(void)revents;
	if (c->state == CONN_DRAIN && !c->eof && !is_stream(c)) {
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
	net_conn_free(c, 0);
}

void
net_conn_begin_close(struct conn *c, int wait_ms)
{
	net_t *n = c->net;
	/* out of the slot table: the id is stale from now on */
	net_slot_give(n, c);
	if (is_stream(c)) {
		n->nstream--;
		c->lis->s.closing++;
	} else {
		n->open--;
		net_src_give(n, c->src);
		n->st.tcp_closing++;
	}
	c->state = CONN_DRAIN;
	c->rlen = 0;
	c->prev = NULL;
	c->next = n->closing;
	if (n->closing)
		n->closing->prev = c;
	n->closing = c;
	ev_timer_stop(n->loop, &c->tm); /* the handshake deadline, if any */
	ev_set_cb(&c->tm, close_timer_cb);
	ev_timer_set(&c->tm, wait_ms / 1000.0, 0.);
	ev_timer_start(n->loop, &c->tm);
	closing_step(c);
}

void
net_close(net_t *n, uint32_t conn, int mode)
{
	struct conn *c = net_lookup(n, conn);
	if (!c || is_stream(c))
		return;
	if (mode == NET_CLOSE_RESET || n->cfg.close_rst || c->doom) {
		net_conn_free(c, 1);
		return;
	}
	net_conn_begin_close(c, n->cfg.close_wait_ms);
}
