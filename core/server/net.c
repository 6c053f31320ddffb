/*
 * net.c - sockets on one libev loop (see net.h): the loop's flush point,
 * timer and clock, the connection slots, listening sockets and the accept
 * loop every TCP and stream listener shares, setup and stats. UDP is in
 * net_udp.c, TCP connections in net_tcp.c, stream listeners in
 * net_stream.c; net_int.h is what they share.
 */
#include "net_int.h"
#include "frame.h"
#include "log.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------ */

int
net_fail(char *err, size_t errlen, const char *what, int e)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", what, strerror(e));
	return -1;
}

const char *
net_errreason(int e)
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

void
net_set_linger0(int fd)
{
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static int
clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}


/* ---- connection slots --------------------------------------------------- */

struct conn *
net_lookup(const net_t *n, uint32_t id)
{
	uint32_t i = id & ((1u << n->idx_bits) - 1);
	if (id == 0 || i >= n->nslot || !n->slot[i].c || n->slot[i].c->id != id)
		return NULL;
	return n->slot[i].c;
}

/* A slot for c; sets c->id. Never-used slots first, then the oldest freed. */
int
net_slot_take(net_t *n, struct conn *c)
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

void
net_slot_give(net_t *n, struct conn *c)
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


/* ---- accepting ---------------------------------------------------------- */

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
			if (l->transport == LIS_STREAM)
				net_stream_open(n, l, fd);
			else
				net_tcp_open(n, l, fd, &a, alen);
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
			/* once per pause, and the log's rate limit over a storm */
			log_warn("net: accepting paused for %d ms: %s (%u tcp connections "
			         "open; %llu pauses so far)", (int)(ACCEPT_PAUSE * 1000),
			         strerror(errno), n->open,
			         (unsigned long long)n->st.accept_paused);
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
	for (i = 0; i < n->nlis + NET_STREAM_LISTENERS; i++) {
		struct listener *l = i < n->nlis ? n->lis[i] : n->slis[i - n->nlis];
		if (l && l->paused) {
			l->paused = 0;
			ev_io_start(loop, &l->io);
		}
	}
}

void
net_accept_start(net_t *n, struct listener *l)
{
	ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
	l->io.data = l;
	ev_io_start(n->loop, &l->io);
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
	n->st.waits++;  /* the loop blocks in epoll_wait after this */
	net_tcp_flush(n, 1);
	net_udp_flush_all(n);  /* last: conn_lost callbacks may have sent */
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
		net_tcp_send(n, to->conn, pkt, len);
	} else if (to->listener < n->nlis &&
	           n->lis[to->listener]->transport == NET_UDP) {
		net_udp_send(n, n->lis[to->listener], to, pkt, len);
	} else {
		n->st.udp_send_errors++;
	}
}

void
net_flush(net_t *n)
{
	net_udp_flush_all(n);
	net_tcp_flush(n, 0);
}

void
net_stats(const net_t *n, struct net_stats *st)
{
	*st = n->st;
	st->syscalls = st->waits + st->udp_recv_calls + st->udp_send_calls +
	               st->tcp_read_calls + st->tcp_write_calls;
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
	c->poll_us = 500;
	c->tos = 0x10;
	c->priority = -1;
	c->backlog = 511;
	/* off: a second server on a port fails to start (EADDRINUSE) instead
	 * of silently getting half the traffic; the workers of one server share
	 * their ports through the supervisor's own reuseport group */
	c->reuseport = 0;
	c->frame_max = 2048;
	c->conn_buffer_max = 1 << 20;
	c->close_wait_ms = 2000;
	c->close_rst = 0;
	c->max_conns = 10000;
	c->max_conns_per_addr = 256;
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
	net_src_init(n);
	k = &n->cfg;
	k->batch = clamp(k->batch, 1, 1024);
	k->frame_max = clamp(k->frame_max, 1, FRAME_MAX);
	k->dgram_max = clamp(k->dgram_max ? k->dgram_max : 2048, 1, 65535);
	k->conn_buffer_max = clamp(k->conn_buffer_max, k->frame_max + 2,
	                           1 << 30);
	k->close_wait_ms = clamp(k->close_wait_ms, 0, 3600 * 1000);
	k->max_conns = clamp(k->max_conns, 1, 1 << 20);
	k->max_conns_per_addr = clamp(k->max_conns_per_addr, 0, 1 << 20);
	if (k->backlog <= 0)
		k->backlog = 511;
	/* room for every framed connection and every stream one */
	for (n->idx_bits = 8; (1u << n->idx_bits) <
	                      (uint32_t)k->max_conns + NET_STREAM_CONNS;)
		n->idx_bits++;
	n->slot_max = 1u << n->idx_bits;
	n->free_head = n->free_tail = NONE;
	n->slot = malloc(n->slot_max * sizeof(*n->slot)); /* touched as used */
	n->rarea = malloc(TCP_READ_AREA);
	if (!n->slot || !n->rarea ||
	    net_batch_init(&n->in, k->batch, k->dgram_max) < 0) {
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
	for (i = 0; i < NET_STREAM_LISTENERS; i++)
		if (n->slis[i])
			net_stream_unlisten(n, i);
	while (n->closing)
		net_conn_free(n->closing, 0);
	for (i = 0; i < (int)n->nslot; i++)
		if (n->slot[i].c)
			net_conn_free(n->slot[i].c, 0);
	for (i = 0; i < n->nlis; i++) {
		struct listener *l = n->lis[i];
		ev_io_stop(n->loop, &l->io);
		if (l->transport != NET_TCP)
			ev_timer_stop(n->loop, &l->poll);
		close(l->fd);
		net_batch_free(&l->out);
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
	net_src_free(n);
	net_batch_free(&n->in);
	free(n->rarea);
	while (n->nwspare)
		free(n->wspare[--n->nwspare]);
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
		return net_fail(err, errlen, "SO_REUSEADDR", errno);
	if (k->reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return net_fail(err, errlen, "SO_REUSEPORT", errno);
	if (transport == NET_UDP && k->tos >= 0) {
		if (family == AF_INET6) {
			if (setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &k->tos,
			               sizeof(k->tos)) < 0)
				return net_fail(err, errlen, "IPV6_TCLASS", errno);
			/* IPv4 peers of a dual-stack socket: best effort */
			setsockopt(fd, IPPROTO_IP, IP_TOS, &k->tos, sizeof(k->tos));
		} else if (setsockopt(fd, IPPROTO_IP, IP_TOS, &k->tos,
		                      sizeof(k->tos)) < 0) {
			return net_fail(err, errlen, "IP_TOS", errno);
		}
	}
	if (k->priority >= 0 && setsockopt(fd, SOL_SOCKET, SO_PRIORITY,
	                                   &k->priority, sizeof(k->priority)) < 0)
		return net_fail(err, errlen, "SO_PRIORITY", errno);
	int udp = transport == NET_UDP;
	if (set_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE,
	               udp ? k->udp_rcvbuf : k->tcp_rcvbuf,
	               udp ? &n->udp_rcvbuf : NULL) < 0)
		return net_fail(err, errlen, "SO_RCVBUF", errno);
	if (set_buffer(fd, SO_SNDBUF, SO_SNDBUFFORCE,
	               udp ? k->udp_sndbuf : k->tcp_sndbuf,
	               udp ? &n->udp_sndbuf : NULL) < 0)
		return net_fail(err, errlen, "SO_SNDBUF", errno);
	return 0;
}

static int add_listener(net_t *n, int transport, int fd, int raw, char *err,
                        size_t errlen);

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
		net_fail(err, errlen, "socket", errno);
		goto out;
	}
	if (sock_options(n, fd, ai->ai_family, transport, err, errlen) < 0)
		goto out;
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		char what[96];
		snprintf(what, sizeof(what), "bind %s port %d", host, port);
		net_fail(err, errlen, what, errno);
		goto out;
	}
	if (transport == NET_TCP && listen(fd, n->cfg.backlog) < 0) {
		net_fail(err, errlen, "listen", errno);
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
		net_fail(err, errlen, "getsockname", errno);
		goto out;
	}
	if (bound_port)
		*bound_port = ntohs(a.ss_family == AF_INET6
		                    ? ((struct sockaddr_in6 *)&a)->sin6_port
		                    : ((struct sockaddr_in *)&a)->sin_port);
	freeaddrinfo(ai);
	ai = NULL;
	rc = add_listener(n, transport, fd, raw, err, errlen);
	if (rc < 0)
		goto out;
	return rc;
out:
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	return -1;
}

/* A listener on fd (bound, and listening for TCP): its index, or -1 with
 * err (fd is left to the caller). */
static int
add_listener(net_t *n, int transport, int fd, int raw, char *err, size_t errlen)
{
	struct listener *l = calloc(1, sizeof(*l));
	if (!l || (transport == NET_UDP && n->cfg.batch > 1 &&
	           net_batch_init(&l->out, n->cfg.batch, n->cfg.dgram_max) < 0)) {
		if (l)
			net_batch_free(&l->out);
		free(l);
		return net_fail(err, errlen, "listener", ENOMEM);
	}
	l->net = n;
	l->index = n->nlis;
	l->fd = fd;
	l->transport = transport;
	l->raw = raw != 0;
	n->lis[n->nlis++] = l;
	if (transport == NET_TCP) {
		net_accept_start(n, l);
	} else {
		ev_io_init(&l->io, net_udp_read_cb, fd, EV_READ);
		l->io.data = l;
		ev_io_start(n->loop, &l->io);
		ev_timer_init(&l->poll, net_udp_poll_cb, 0., 0.);
		l->poll.data = l;
	}
	return l->index;
}

/* net.h: a socket bound by someone else (a worker's, from the supervisor) */
int
net_listen_fd(net_t *n, int transport, int fd, int raw, char *err, size_t errlen)
{
	struct sockaddr_storage a;
	socklen_t alen = sizeof(a);
	if (n->nlis == NET_LISTENERS) {
		snprintf(err, errlen, "too many listeners");
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
		return net_fail(err, errlen, "getsockname", errno);
	if (sock_options(n, fd, a.ss_family, transport, err, errlen) < 0)
		return -1;
	return add_listener(n, transport, fd, raw, err, errlen);
}

