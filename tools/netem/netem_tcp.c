/*
 * netem_tcp.c - the TCP proxy of moongate-netem (netem.h).
 *
 * Each accepted connection gets its upstream connection. Each direction
 * is a bounded buffer cut into chunks stamped with the time they may
 * leave; a full buffer stops reading that side (backpressure). stall and
 * blackhole stop writing: the bytes are held, the buffer fills, then the
 * sender's socket does. `cut` sends a FIN both ways and closes once both
 * peers closed (2 s at most); `reset` closes with an RST.
 *
 * A connection that ends inside one of its callbacks is unlinked and its
 * watchers stopped at once (tconn_close), and freed by tcp_reap from the
 * prepare watcher, never under its own callback.
 */
#include "netem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void tconn_update(struct tconn *c);

static void
tconn_close(struct tconn *c, int rst)
{
	if (c->dead)
		return;
	c->dead = 1;
	for (int i = 0; i < 2; i++) {
		ev_io_stop(G.loop, &c->rio[i]);
		ev_io_stop(G.loop, &c->wio[i]);
		ev_timer_stop(G.loop, &c->h[i].tm);
		if (c->fd[i] >= 0) {
			if (rst)
				close_rst(c->fd[i]);
			else
				close(c->fd[i]);
			c->fd[i] = -1;
		}
	}
	ev_timer_stop(G.loop, &c->cut_tm);
	if (c->prev)
		c->prev->next = c->next;
	else
		G.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = G.dead_conns;
	G.dead_conns = c;
	G.nconns--;
}

static void
tconn_abort(struct tconn *c)
{
	G.tcp_errors++;
	tconn_close(c, 1);
}

/* Read what fd[d] has into h[d]. */
static void
half_read(struct tconn *c, int d)
{
	struct half *h = &c->h[d];
	if (h->tail == G.tcp_buffer && h->head > 0) {
		memmove(h->buf, h->buf + h->head, h->tail - h->head);
		h->tail -= h->head;
		h->head = 0;
	}
	if (h->tail == G.tcp_buffer || h->nch == TCP_CHUNKS)
		return;
	ssize_t n = recv(c->fd[d], h->buf + h->tail, G.tcp_buffer - h->tail, 0);
	if (n == 0) {
		h->eof = 1;
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			tconn_abort(c);
		return;
	}
	double now = mono();
	double at = netem_tcp_release(&G.set.imp[NETEM_TCP][d],
	                              &G.rng[NETEM_TCP][d], now, h->last_at);
	h->last_at = at;
	h->tail += (size_t)n;
	if (h->nch > 0) {
		struct chunk *k = &h->ch[(h->c0 + h->nch - 1) % TCP_CHUNKS];
		if (k->at == at || (k->at <= now && at <= now)) {
			k->len += (size_t)n;
			return;
		}
	}
	h->ch[(h->c0 + h->nch) % TCP_CHUNKS] = (struct chunk){ (size_t)n, at };
	h->nch++;
}

/* Write what h[d] may send now to fd[1 - d]. */
static void
half_write(struct tconn *c, int d, double now)
{
	struct half *h = &c->h[d];
	double rate = G.set.imp[NETEM_TCP][d].rate;
	while (h->nch > 0 && !h->blocked) {
		struct chunk *k = &h->ch[h->c0];
		if (k->at > now)
			break;
		size_t want = k->len;
		size_t avail = netem_bucket_avail(&h->bucket, rate, now);
		if (avail == 0)
			break;
		if (want > avail)
			want = avail;
		ssize_t n = send(c->fd[1 - d], h->buf + h->head, want, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				h->blocked = 1;
				break;
			}
			tconn_abort(c);
			return;
		}
		netem_bucket_take(&h->bucket, rate, (size_t)n);
		G.tcp_bytes[d] += (uint64_t)n;
		h->head += (size_t)n;
		k->len -= (size_t)n;
		if (k->len == 0) {
			h->c0 = (h->c0 + 1) % TCP_CHUNKS;
			h->nch--;
		}
	}
	if (h->head == h->tail)
		h->head = h->tail = 0;
}

/* Forward what may go now, then arm the watchers for what comes next. */
static void
tconn_update(struct tconn *c)
{
	if (c->dead || c->cutting)
		return;
	double now = mono();
	int can_write[2];
	for (int d = 0; d < 2; d++) {
		struct half *h = &c->h[d];
		can_write[d] = !G.set.stall && !G.set.imp[NETEM_TCP][d].blackhole &&
		               !(c->connecting && d == NETEM_UP);
		if (!can_write[d])
			continue;
		half_write(c, d, now);
		if (c->dead)
			return;
		if (h->eof && h->nch == 0 && !h->shut) {
			shutdown(c->fd[1 - d], SHUT_WR);   /* pass the FIN on */
			h->shut = 1;
		}
	}
	if (c->h[0].shut && c->h[1].shut) {
		tconn_close(c, 0);
		return;
	}
	for (int d = 0; d < 2; d++) {
		struct half *h = &c->h[d];
		int room = h->tail - h->head < G.tcp_buffer && h->nch < TCP_CHUNKS;
		io_want(&c->rio[d], !h->eof && room &&
		        !(c->connecting && d == NETEM_DOWN));
		ev_timer_stop(G.loop, &h->tm);
		if (can_write[d] && !h->blocked && h->nch > 0) {
			struct chunk *k = &h->ch[h->c0];
			double wait = k->at > now ? k->at - now
			    : netem_bucket_wait(&h->bucket, G.set.imp[NETEM_TCP][d].rate,
			                        k->len);
			ev_timer_set(&h->tm, wait > 0.0005 ? wait : 0.0005, 0);
			ev_timer_start(G.loop, &h->tm);
		}
	}
	/* wio[i] writes fd[i], for h[1 - i]; wio[1] also sees the connect end */
	io_want(&c->wio[1], c->connecting || (can_write[0] && c->h[0].blocked));
	io_want(&c->wio[0], can_write[1] && c->h[1].blocked);
}

void
tcp_update_all(void)
{
	struct tconn *c = G.conns;
	while (c) {
		struct tconn *next = c->next;   /* c may close */
		tconn_update(c);
		c = next;
	}
}

/* cut: read and discard until the peer's EOF, then close that side. */
static void
cut_read(struct tconn *c, int i)
{
	char scratch[4096];
	ssize_t n = recv(c->fd[i], scratch, sizeof scratch, 0);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	                        errno == EINTR)))
		return;
	ev_io_stop(G.loop, &c->rio[i]);
	close(c->fd[i]);
	c->fd[i] = -1;
	if (c->fd[0] < 0 && c->fd[1] < 0)
		tconn_close(c, 0);
}

static void
on_tcp_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	struct tconn *c = w->data;
	int i = w == &c->rio[0] ? 0 : 1;
	if (c->cutting) {
		cut_read(c, i);
		return;
	}
	half_read(c, i);
	tconn_update(c);
}

static void
on_tcp_write(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	struct tconn *c = w->data;
	int i = w == &c->wio[0] ? 0 : 1;
	if (i == 1 && c->connecting) {
		int e = 0;
		socklen_t el = sizeof e;
		if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e) {
			G.tcp_connect_failed++;
			note("tcp: connect upstream: %s", strerror(e));
			tconn_close(c, 1);
			return;
		}
		c->connecting = 0;
	} else {
		c->h[1 - i].blocked = 0;
	}
	tconn_update(c);
}

static void
on_half_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	tconn_update(w->data);
}

static void
on_cut_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	tconn_close(w->data, 0);
}

static void
tconn_cut(struct tconn *c)
{
	c->cutting = 1;
	for (int i = 0; i < 2; i++) {
		ev_io_stop(G.loop, &c->wio[i]);
		ev_timer_stop(G.loop, &c->h[i].tm);
		c->h[i].head = c->h[i].tail = 0;
		c->h[i].nch = 0;
	}
	if (c->connecting) {         /* nothing to say goodbye to upstream */
		ev_io_stop(G.loop, &c->rio[1]);
		close(c->fd[1]);
		c->fd[1] = -1;
	}
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] < 0)
			continue;
		shutdown(c->fd[i], SHUT_WR);
		ev_io_start(G.loop, &c->rio[i]);
	}
	ev_timer_set(&c->cut_tm, CUT_WAIT_S, 0);
	ev_timer_start(G.loop, &c->cut_tm);
}

static void
tconn_new(struct tcp_lis *l, int fd)
{
	const struct sockaddr *sa = (const struct sockaddr *)&l->target.ss;
	struct tconn *c = calloc(1, sizeof *c);
	int up = -1, r = -1;
	if (c)
		c->h[0].buf = malloc(G.tcp_buffer), c->h[1].buf = malloc(G.tcp_buffer);
	if (c && c->h[0].buf && c->h[1].buf)
		up = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (up >= 0) {
		set_nodelay(up);
		r = connect(up, sa, l->target.len);
	}
	if (up < 0 || (r < 0 && errno != EINPROGRESS)) {
		note("tcp: connect upstream: %s", strerror(errno));
		G.tcp_connect_failed++;
		if (up >= 0)
			close(up);
		close_rst(fd);
		if (c) {
			free(c->h[0].buf);
			free(c->h[1].buf);
		}
		free(c);
		return;
	}
	set_nodelay(fd);
	c->fd[0] = fd;
	c->fd[1] = up;
	c->connecting = r < 0;
	for (int i = 0; i < 2; i++) {
		ev_io_init(&c->rio[i], on_tcp_read, c->fd[i], EV_READ);
		ev_io_init(&c->wio[i], on_tcp_write, c->fd[i], EV_WRITE);
		ev_timer_init(&c->h[i].tm, on_half_timer, 0, 0);
		c->rio[i].data = c->wio[i].data = c->h[i].tm.data = c;
	}
	ev_timer_init(&c->cut_tm, on_cut_timer, 0, 0);
	c->cut_tm.data = c;
	c->next = G.conns;
	if (G.conns)
		G.conns->prev = c;
	G.conns = c;
	G.nconns++;
	G.tcp_total++;
	tconn_update(c);
}

void
tcp_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct tcp_lis *l = w->data;
	for (int i = 0; i < ACCEPT_MAX; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				note("tcp: accept: %s (pausing)", strerror(errno));
				ev_io_stop(loop, w);
				ev_timer_set(&l->pause, PAUSE_S, 0);
				ev_timer_start(loop, &l->pause);
			}
			return;
		}
		if (G.set.refuse || G.nconns >= G.tcp_max) {
			G.tcp_refused++;
			close_rst(fd);
			continue;
		}
		tconn_new(l, fd);
	}
}

void
tcp_on_pause(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct tcp_lis *l = w->data;
	ev_io_start(loop, &l->io);
}

int
tcp_cut_all(void)
{
	int n = 0;
	struct tconn *t = G.conns;
	while (t) {
		struct tconn *next = t->next;
		if (!t->cutting) {
			tconn_cut(t);
			n++;
		}
		t = next;
	}
	G.tcp_cut += (uint64_t)n;
	return n;
}

int
tcp_reset_all(void)
{
	int n = 0;
	while (G.conns) {            /* tconn_close unlinks the head */
		tconn_close(G.conns, 1);
		n++;
	}
	G.tcp_reset += (uint64_t)n;
	return n;
}

void
tcp_held(uint64_t held[2])
{
	held[0] = held[1] = 0;
	for (struct tconn *t = G.conns; t; t = t->next)
		for (int d = 0; d < 2; d++)
			held[d] += t->h[d].tail - t->h[d].head;
}

void
tcp_close_all(void)
{
	while (G.conns)
		tconn_close(G.conns, 0);
	tcp_reap();
}

void
tcp_reap(void)
{
	while (G.dead_conns) {
		struct tconn *c = G.dead_conns;
		G.dead_conns = c->next;
		free(c->h[0].buf);
		free(c->h[1].buf);
		free(c);
	}
}
