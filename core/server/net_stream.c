/*
 * net_stream.c - stream listeners (see net.h): plain bytes over TCP or a
 * Unix socket, for the admin console. Accepting, the write queue,
 * backpressure, failures and graceful close are the TCP code of
 * net.c/net_tcp.c; what is here is listening (the Unix socket file's
 * care), reading (bytes to the data callback instead of frames) and the
 * stream's close policy (closing_max, one deadline).
 */
#include "net_int.h"
#include "log.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- listening ---------------------------------------------------------- */

/* A Unix socket at path, owner only. -1 with err. */
static int
listen_unix(struct listener *l, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof sa.sun_path) {
		snprintf(err, errlen, "unix:%s: a Unix socket path has 1 to %zu "
		         "bytes", path, sizeof sa.sun_path - 1);
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "unix:%s exists and is not a socket (not "
			         "removed)", path);
			return -1;
		}
		/* a socket file: stale unless something still listens there */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                   0);
		int rc = probe < 0 ? -1 : connect(probe, (struct sockaddr *)&sa,
		                                  sizeof sa);
		int e = errno;
		if (probe >= 0)
			close(probe);
		if (rc == 0 || (e != ECONNREFUSED && e != ENOENT)) {
			snprintf(err, errlen, "unix:%s: another process listens there "
			         "(give each server its own address)", path);
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			snprintf(err, errlen, "unix:%s: cannot remove the stale socket: %s",
			         path, strerror(errno));
			return -1;
		}
		log_info("net: removed the stale socket %s", path);
	}
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return net_fail(err, errlen, "socket", errno);
	/* owner only: a console reloads code. umask is per process, and the
	 * process has one thread. */
	mode_t old = umask(0177);
	int rc = bind(l->fd, (struct sockaddr *)&sa, sizeof sa);
	int e = errno;
	umask(old);
	if (rc < 0) {
		snprintf(err, errlen, "unix:%s: bind: %s", path, strerror(e));
		return -1;
	}
	if (stat(path, &st) == 0) {
		l->s.dev = st.st_dev;
		l->s.ino = st.st_ino;
	}
	l->s.is_unix = 1;
	memcpy(l->s.path, path, len + 1);
	return 0;
}

static int
listen_tcp(struct listener *l, const char *host, int port, int *bound_port,
           char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char ps[16];
	int one = 1;
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof ps, "%d", port);
	int rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	               0);
	if (l->fd < 0 ||
	    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(l->fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    getsockname(l->fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(err, errlen, "tcp %s port %d: %s", host, port,
		         strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	if (bound_port)
		*bound_port = ntohs(ss.ss_family == AF_INET6
		                    ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                    : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

int
net_stream_listen(net_t *n, const struct net_stream_config *sc,
                  const struct net_stream_callbacks *cb, void *user,
                  int *bound_port, char *err, size_t errlen)
{
	struct listener *l;
	int h, rc;
	for (h = 0; h < NET_STREAM_LISTENERS && n->slis[h]; h++)
		;
	if (h == NET_STREAM_LISTENERS) {
		snprintf(err, errlen, "too many stream listeners");
		return -1;
	}
	if (!(l = calloc(1, sizeof(*l)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	l->net = n;
	l->index = h;
	l->fd = -1;
	l->transport = LIS_STREAM;
	l->s.cb = *cb;
	l->s.user = user;
	l->s.out_max = sc->out_max ? sc->out_max : 1 << 20;
	l->s.closing_max = sc->closing_max > 0 ? sc->closing_max : 16;
	l->s.close_wait_ms = sc->close_wait_ms > 0 ? sc->close_wait_ms : 2000;
	if (bound_port)
		*bound_port = 0;
	rc = sc->path ? listen_unix(l, sc->path, err, errlen)
	              : listen_tcp(l, sc->host, sc->port, bound_port, err, errlen);
	if (rc == 0 && listen(l->fd, sc->backlog > 0 ? sc->backlog : 16) < 0)
		rc = net_fail(err, errlen, "listen", errno);
	n->slis[h] = l;
	if (rc < 0) {
		net_stream_unlisten(n, h);
		return -1;
	}
	net_accept_start(n, l);
	return h;
}

void
net_stream_unlisten(net_t *n, int h)
{
	struct listener *l;
	struct stat st;
	uint32_t i;
	if (h < 0 || h >= NET_STREAM_LISTENERS || !(l = n->slis[h]))
		return;
	for (i = 0; i < n->nslot; i++)
		if (n->slot[i].c && n->slot[i].c->lis == l)
			net_conn_free(n->slot[i].c, 0);
	for (struct conn *c = n->closing, *next; c; c = next) {
		next = c->next;
		if (c->lis == l)
			net_conn_free(c, 0);
	}
	if (l->fd >= 0) {
		ev_io_stop(n->loop, &l->io);
		close(l->fd);
	}
	/* only our own socket file: another process may have taken the path */
	if (l->s.is_unix && stat(l->s.path, &st) == 0 && st.st_dev == l->s.dev &&
	    st.st_ino == l->s.ino)
		unlink(l->s.path);
	n->slis[h] = NULL;
	free(l);
}

/* ---- connections -------------------------------------------------------- */

static void
stream_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	struct stream_lis *s = &c->lis->s;
	int round;
	(void)revents;
	if (c->state != CONN_OPEN) {
		net_conn_drain(c);
		return;
	}
	for (round = 0; round < TCP_READ_ROUNDS; round++) {
		ssize_t r = read(c->fd, c->rbuf, c->rcap);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r < 0) {
			net_conn_lost(c, net_errreason(errno), 0);
			return;
		}
		if (r == 0) {
			/* half closed: no more reading (it would say EOF forever),
			 * but the user may still write */
			c->eof = 1;
			ev_io_stop(loop, &c->rio);
			s->cb.data(c->id, c->ctx, NULL, 0, s->user);
			return;
		}
		s->cb.data(c->id, c->ctx, c->rbuf, (size_t)r, s->user);
		if (c->state != CONN_OPEN || c->doom || (size_t)r < c->rcap)
			return;  /* closed, or the socket is drained */
	}
}

void
net_stream_open(net_t *n, struct listener *l, int fd)
{
	struct conn *c = NULL;
	if (n->nstream >= NET_STREAM_CONNS ||
	    !(c = calloc(1, sizeof(*c) + STREAM_READ)) ||
	    net_slot_take(n, c) < 0) {
		free(c);
		net_set_linger0(fd);
		close(fd);
		return;
	}
	c->net = n;
	c->lis = l;
	c->fd = fd;
	c->state = CONN_OPEN;
	c->rcap = STREAM_READ;
	c->rbuf = c->rmem;
	ev_io_init(&c->rio, stream_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, net_conn_write_cb, fd, EV_WRITE);
	ev_init(&c->tm, NULL); /* net_conn_begin_close sets it */
	c->rio.data = c->wio.data = c->tm.data = c;
	ev_io_start(n->loop, &c->rio);
	n->nstream++;
	/* c lives until the next prepare even if the callback closes it */
	void *ctx = l->s.cb.accept ? l->s.cb.accept(c->id, l->s.user) : NULL;
	c->ctx = ctx;
}

static struct conn *
stream_lookup(net_t *n, uint32_t id)
{
	struct conn *c = net_lookup(n, id);
	return c && is_stream(c) ? c : NULL;
}

int
net_stream_send(net_t *n, uint32_t conn, const void *p, size_t len)
{
	struct conn *c = stream_lookup(n, conn);
	int rc;
	if (!c || c->doom)
		return -1;
	if (len == 0)
		return 0;
	rc = net_conn_reserve(c, len, c->lis->s.out_max);
	if (rc < 0)
		return rc == -2 ? -2 : -1;
	memcpy(c->wbuf + c->wlen, p, len);
	c->wlen += len;
	net_conn_queued(c);
	return c->doom ? -1 : 0;
}

void
net_stream_close(net_t *n, uint32_t conn, int mode)
{
	struct conn *c = stream_lookup(n, conn);
	const char *why;
	if (!c)
		return;
	if (mode == NET_CLOSE_RESET || c->doom) {
		net_conn_free(c, 0);
		return;
	}
	if (c->lis->s.closing >= c->lis->s.closing_max) {
		/* too many wait already: what the socket takes now, then close */
		net_conn_write(c, &why);
		net_conn_free(c, 0);
		return;
	}
	net_conn_begin_close(c, c->lis->s.close_wait_ms);
}
