/*
 * moongate_netem.c - moongate-netem, a userspace network emulator: UDP
 * and TCP proxies that lose, delay, jitter, reorder, duplicate,
 * rate-cap, blackhole, stall, cut and reset traffic on purpose, steered
 * at run time over a line-based control channel. netem_model.c decides
 * the fate of each datagram and chunk; this file does the I/O.
 *
 *   moongate-netem --udp 127.0.0.1:0=127.0.0.1:7777 \
 *                  --tcp 127.0.0.1:0=127.0.0.1:7777 --control 127.0.0.1:0
 *   moongate-netem ctl 127.0.0.1:PORT set up loss=0.2
 *
 * UDP: each client address gets a mapping, a socket of its own connected
 * to the target (as a NAT does), so the server sees one address per
 * client; replies go back from the listening socket. Idle mappings
 * expire; `rebind` gives every mapping a new socket, so a new source
 * port. Datagrams that must wait sit in one heap ordered by departure.
 *
 * TCP: each accepted connection gets its upstream connection. Each
 * direction is a bounded buffer cut into chunks stamped with the time
 * they may leave; a full buffer stops reading that side (backpressure).
 * stall and blackhole stop writing: the bytes are held, the buffer fills,
 * then the sender's socket does. `cut` sends a FIN both ways and closes
 * once both peers closed (2 s at most); `reset` closes with an RST.
 *
 * One libev loop, no threads. A connection or control client that ends
 * inside one of its callbacks is unlinked and its watchers stopped at
 * once, and freed by the prepare watcher, never under its own callback.
 */
#include "netem_model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_MAX 16        /* --udp and --tcp options, each */
#define DGRAM_MAX 65536
#define UDP_READS 64         /* datagrams read per event on one socket */
#define ACCEPT_MAX 64        /* accepts per event on one listener */
#define PAUSE_S 0.1          /* a listener rests after EMFILE */
#define TCP_CHUNKS 1024      /* release-time chunks per direction */
#define CUT_WAIT_S 2.0       /* cut: wait this long for the peers' EOF */
#define CTL_MAX 16           /* control connections at once */
#define CTL_LINE_MAX 1024    /* a command line, newline included */
#define CTL_OUT_MAX 65536    /* unread replies before a control client is dropped */
#define CTL_TIMEOUT_MS 5000  /* ctl mode: connect and reply deadline */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct udp_lis {
	ev_io io;
	int fd;
	struct addr at, target;
};

/* One client of a UDP listener. */
struct map {
	struct udp_lis *lis;
	struct addr peer;        /* the client */
	int fd;                  /* connected to lis->target */
	ev_io io;
	double last;             /* the last datagram, either way */
	struct netem_link link[2]; /* rate cap, per direction */
	unsigned hash;
	struct map *hnext;       /* hash chain */
	struct map *prev, *next; /* every mapping */
};

/* A datagram waiting for its departure time. */
struct pkt {
	double at;
	uint64_t seq;            /* equal times leave in arrival order */
	int dir;
	struct map *m;           /* NETEM_UP: sent on m->fd; NULL once m is freed */
	struct udp_lis *lis;     /* NETEM_DOWN: sent from lis->fd to peer */
	struct addr peer;
	size_t len;
	uint8_t data[];
};

struct tcp_lis {
	ev_io io;
	ev_timer pause;
	int fd;
	struct addr at, target;
};

struct chunk {
	size_t len;
	double at;               /* may be written from then on */
};

/* One direction of a proxied TCP connection. */
struct half {
	uint8_t *buf;            /* tcp_buffer bytes; buf[head..tail) unsent */
	size_t head, tail;
	struct chunk ch[TCP_CHUNKS]; /* a ring: ch[c0], nch of them */
	int c0, nch;
	double last_at;          /* release time of the newest chunk */
	struct netem_bucket bucket;
	int eof;                 /* the source sent its FIN */
	int shut;                /* ...and it was passed on */
	int blocked;             /* the last write met EAGAIN */
	ev_timer tm;             /* the next chunk's release, or tokens */
};

struct tconn {
	int fd[2];               /* [0] the client, [1] upstream; -1: closed */
	ev_io rio[2], wio[2];    /* on fd[i] */
	struct half h[2];        /* h[d] reads fd[d] and writes fd[1 - d] */
	int connecting;          /* fd[1]'s connect is in progress */
	int cutting;             /* cut: FIN sent, discarding until EOF */
	int dead;                /* closed, on G.dead_conns */
	ev_timer cut_tm;
	struct tconn *prev, *next;
};

struct ctl {
	int fd;
	ev_io rio, wio;
	char in[CTL_LINE_MAX];
	size_t inlen;
	char *out;
	size_t outlen, outcap;
	int dead;
	struct ctl *prev, *next;
};

/* UDP counters of one direction. */
struct dstats {
	uint64_t recv, sent, bytes, dropped, overflow, duplicated, reordered,
	         errors;
};

static struct {
	struct ev_loop *loop;
	struct netem_settings set;
	struct netem_rng rng[2][2];   /* [protocol][direction] */
	uint64_t seed;
	/* options */
	double udp_idle;
	int udp_max, udp_queue, tcp_max;
	size_t rate_queue, tcp_buffer;
	/* UDP */
	struct udp_lis udp[LISTEN_MAX];
	int nudp;
	struct map **htab;
	unsigned hmask;
	struct map *maps;
	int nmaps;
	struct pkt **heap;
	int nheap;
	uint64_t seq;
	ev_timer qtm, sweep;
	uint8_t *dgram;
	/* TCP */
	struct tcp_lis tcp[LISTEN_MAX];
	int ntcp;
	struct tconn *conns, *dead_conns;
	int nconns;
	/* control */
	int ctl_fd;
	ev_io ctl_io;
	struct ctl *ctls, *dead_ctls;
	int nctls;
	ev_prepare reap;
	ev_signal sigterm, sigint;
	/* counters */
	struct dstats udp_st[2];
	uint64_t maps_total, maps_expired, maps_refused, rebinds;
	uint64_t tcp_total, tcp_refused, tcp_connect_failed, tcp_errors,
	         tcp_cut, tcp_reset, tcp_bytes[2];
} G;

/* ---- small helpers ------------------------------------------------------ */

static double
mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void __attribute__((format(printf, 1, 2)))
note(const char *fmt, ...)
{
	va_list ap;
	fputs("moongate-netem: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Close with an RST. */
static void
close_rst(int fd)
{
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

/* "HOST:PORT" or "[V6]:PORT" with a numeric host (or localhost). */
static int
addr_parse(const char *s, struct addr *a, char *err, size_t errlen)
{
	char host[64];
	const char *port;
	memset(a, 0, sizeof *a);
	if (*s == '[') {
		const char *e = strchr(s, ']');
		if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof host)
			goto bad;
		memcpy(host, s + 1, (size_t)(e - s - 1));
		host[e - s - 1] = 0;
		port = e + 2;
	} else {
		const char *e = strrchr(s, ':');
		if (!e || (size_t)(e - s) >= sizeof host || strchr(s, ':') != e)
			goto bad;
		memcpy(host, s, (size_t)(e - s));
		host[e - s] = 0;
		port = e + 1;
	}
	char *pe;
	unsigned long p = strtoul(port, &pe, 10);
	if (!*port || *pe || p > 65535 || *port == '-' || *port == '+')
		goto bad;
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)p);
		a->len = sizeof *in;
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		a->len = sizeof *in6;
	} else {
		goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "bad address '%s' (a numeric IP and a port: "
	         "127.0.0.1:7777, [::1]:7777)", s);
	return -1;
}

static int
addr_port(const struct addr *a)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* "127.0.0.1 7777" */
static const char *
addr_text(const struct addr *a, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip,
		          sizeof ip);
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip,
		          sizeof ip);
	snprintf(buf, n, "%s %d", ip, addr_port(a));
	return buf;
}

/* Family, port and address: what identifies a client. */
static size_t
addr_key(const struct addr *a, uint8_t out[19])
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	out[0] = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		memcpy(out + 1, &in->sin_port, 2);
		memcpy(out + 3, &in->sin_addr, 4);
		return 7;
	}
	const struct sockaddr_in6 *in6 = (const void *)sa;
	memcpy(out + 1, &in6->sin6_port, 2);
	memcpy(out + 3, &in6->sin6_addr, 16);
	return 19;
}

/* A listening socket bound to a (port 0: a free one, written back). */
static int
listen_on(int type, struct addr *a, char *err, size_t errlen)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		goto fail;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	a->len = sizeof a->ss;
	if (bind(fd, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                          : sizeof(struct sockaddr_in6)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 128) < 0) ||
	    getsockname(fd, (struct sockaddr *)&a->ss, &a->len) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", type == SOCK_STREAM ? "tcp" : "udp",
	         strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* ---- UDP: the queue of waiting datagrams --------------------------------- */

static int
before(const struct pkt *a, const struct pkt *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void
heap_push(struct pkt *p)
{
	int i = G.nheap++;
	while (i > 0) {
		int up = (i - 1) / 2;
		if (!before(p, G.heap[up]))
			break;
		G.heap[i] = G.heap[up];
		i = up;
	}
	G.heap[i] = p;
}

static struct pkt *
heap_pop(void)
{
	struct pkt *top = G.heap[0], *last = G.heap[--G.nheap];
	int i = 0;
	for (;;) {
		int c = 2 * i + 1;
		if (c >= G.nheap)
			break;
		if (c + 1 < G.nheap && before(G.heap[c + 1], G.heap[c]))
			c++;
		if (!before(G.heap[c], last))
			break;
		G.heap[i] = G.heap[c];
		i = c;
	}
	if (G.nheap > 0)
		G.heap[i] = last;
	return top;
}

static void
queue_arm(void)
{
	ev_timer_stop(G.loop, &G.qtm);
	if (G.nheap == 0)
		return;
	double wait = G.heap[0]->at - mono();
	ev_timer_set(&G.qtm, wait > 0 ? wait : 0, 0);
	ev_timer_start(G.loop, &G.qtm);
}

static void
udp_send(int dir, struct map *m, struct udp_lis *l, const struct addr *peer,
         const uint8_t *data, size_t len)
{
	struct dstats *st = &G.udp_st[dir];
	ssize_t n;
	if (dir == NETEM_UP) {
		if (!m) {                /* the mapping expired meanwhile */
			st->errors++;
			return;
		}
		n = send(m->fd, data, len, 0);
	} else {
		n = sendto(l->fd, data, len, 0, (const struct sockaddr *)&peer->ss,
		           peer->len);
	}
	if (n < 0) {
		st->errors++;
		return;
	}
	st->sent++;
	st->bytes += len;
}

static void
on_queue(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	double now = mono();
	while (G.nheap > 0 && G.heap[0]->at <= now) {
		struct pkt *p = heap_pop();
		udp_send(p->dir, p->m, p->lis, &p->peer, p->data, p->len);
		free(p);
	}
	queue_arm();
}

/* A datagram from the client (NETEM_UP) or the server (NETEM_DOWN) of m. */
static void
udp_shape(int dir, struct map *m, const uint8_t *data, size_t len)
{
	struct dstats *st = &G.udp_st[dir];
	struct netem_verdict v;
	double now = mono();
	st->recv++;
	m->last = now;
	netem_udp(&G.set.imp[NETEM_UDP][dir], &m->link[dir],
	          &G.rng[NETEM_UDP][dir], now, len, G.rate_queue, &v);
	st->dropped += (uint64_t)v.dropped;
	st->overflow += (uint64_t)v.overflow;
	st->duplicated += (uint64_t)v.duplicated;
	st->reordered += (uint64_t)v.reordered;
	int queued = 0;
	for (int i = 0; i < v.n; i++) {
		if (v.at[i] <= now) {
			udp_send(dir, m, m->lis, &m->peer, data, len);
			continue;
		}
		struct pkt *p;
		if (G.nheap >= G.udp_queue || !(p = malloc(sizeof *p + len))) {
			st->overflow++;
			continue;
		}
		p->at = v.at[i];
		p->seq = G.seq++;
		p->dir = dir;
		p->m = m;
		p->lis = m->lis;
		p->peer = m->peer;
		p->len = len;
		memcpy(p->data, data, len);
		heap_push(p);
		queued = 1;
	}
	if (queued)
		queue_arm();
}

/* ---- UDP: mappings ------------------------------------------------------- */

static unsigned
map_hash(const struct udp_lis *l, const struct addr *a)
{
	uint8_t key[19];
	size_t n = addr_key(a, key);
	unsigned h = 2166136261u ^ (unsigned)(l - G.udp);
	for (size_t i = 0; i < n; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

static struct map *
map_find(const struct udp_lis *l, const struct addr *a, unsigned h)
{
	uint8_t k1[19], k2[19];
	size_t n1 = addr_key(a, k1);
	for (struct map *m = G.htab[h & G.hmask]; m; m = m->hnext) {
		if (m->hash == h && m->lis == l && addr_key(&m->peer, k2) == n1 &&
		    !memcmp(k1, k2, n1))
			return m;
	}
	return NULL;
}

/* A socket connected to target: a fresh source port. */
static int
udp_upstream(const struct addr *target)
{
	const struct sockaddr *sa = (const struct sockaddr *)&target->ss;
	int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, sa, target->len) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void
on_map_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	struct map *m = w->data;
	for (int i = 0; i < UDP_READS; i++) {
		ssize_t n = recv(m->fd, G.dgram, DGRAM_MAX, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			continue;            /* ECONNREFUSED: an ICMP error; go on */
		}
		udp_shape(NETEM_DOWN, m, G.dgram, (size_t)n);
	}
}

static struct map *
map_new(struct udp_lis *l, const struct addr *peer, unsigned h)
{
	if (G.nmaps >= G.udp_max) {
		G.maps_refused++;
		return NULL;
	}
	struct map *m = calloc(1, sizeof *m);
	int fd = m ? udp_upstream(&l->target) : -1;
	if (fd < 0) {
		if (G.maps_refused % 1000 == 0)   /* the first, then 1 in 1000 */
			note("udp: no socket for a new client: %s", strerror(errno));
		free(m);
		G.maps_refused++;
		return NULL;
	}
	m->lis = l;
	m->peer = *peer;
	m->fd = fd;
	m->hash = h;
	m->last = mono();
	ev_io_init(&m->io, on_map_read, fd, EV_READ);
	m->io.data = m;
	ev_io_start(G.loop, &m->io);
	m->hnext = G.htab[h & G.hmask];
	G.htab[h & G.hmask] = m;
	m->next = G.maps;
	if (G.maps)
		G.maps->prev = m;
	G.maps = m;
	G.nmaps++;
	G.maps_total++;
	return m;
}

static void
map_free(struct map *m)
{
	ev_io_stop(G.loop, &m->io);
	close(m->fd);
	struct map **pp = &G.htab[m->hash & G.hmask];
	while (*pp != m)
		pp = &(*pp)->hnext;
	*pp = m->hnext;
	if (m->prev)
		m->prev->next = m->next;
	else
		G.maps = m->next;
	if (m->next)
		m->next->prev = m->prev;
	for (int i = 0; i < G.nheap; i++)
		if (G.heap[i]->m == m)
			G.heap[i]->m = NULL;
	G.nmaps--;
	free(m);
}

static void
on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	double now = mono();
	struct map *m = G.maps;
	while (m) {
		struct map *next = m->next;
		if (now - m->last >= G.udp_idle) {
			map_free(m);
			G.maps_expired++;
		}
		m = next;
	}
}

/* Every mapping gets a new socket; returns how many, *failed the rest. */
static int
udp_rebind(int *failed, int *err)
{
	int n = 0;
	*failed = 0;
	for (struct map *m = G.maps; m; m = m->next) {
		/* the old socket is still open: the new port differs */
		int fd = udp_upstream(&m->lis->target);
		if (fd < 0) {
			*err = errno;
			(*failed)++;
			continue;
		}
		ev_io_stop(G.loop, &m->io);
		close(m->fd);
		m->fd = fd;
		ev_io_set(&m->io, fd, EV_READ);
		ev_io_start(G.loop, &m->io);
		n++;
	}
	G.rebinds += (uint64_t)n;
	return n;
}

static void
on_udp_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	struct udp_lis *l = w->data;
	for (int i = 0; i < UDP_READS; i++) {
		struct addr from;
		from.len = sizeof from.ss;
		ssize_t n = recvfrom(l->fd, G.dgram, DGRAM_MAX, 0,
		                     (struct sockaddr *)&from.ss, &from.len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			continue;
		}
		unsigned h = map_hash(l, &from);
		struct map *m = map_find(l, &from, h);
		if (!m && !(m = map_new(l, &from, h)))
			continue;
		udp_shape(NETEM_UP, m, G.dgram, (size_t)n);
	}
}

/* ---- TCP ----------------------------------------------------------------- */

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

static void
io_want(ev_io *w, int on)
{
	if (on)
		ev_io_start(G.loop, w);
	else
		ev_io_stop(G.loop, w);
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

static void
tconn_update_all(void)
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

static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
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

static void
on_pause(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct tcp_lis *l = w->data;
	ev_io_start(loop, &l->io);
}

/* ---- the control channel -------------------------------------------------- */

static void
ctl_close(struct ctl *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	ev_io_stop(G.loop, &c->rio);
	ev_io_stop(G.loop, &c->wio);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		G.ctls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = G.dead_ctls;
	G.dead_ctls = c;
	G.nctls--;
}

static void
ctl_flush(struct ctl *c)
{
	size_t off = 0;
	while (off < c->outlen) {
		ssize_t n = send(c->fd, c->out + off, c->outlen - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			ctl_close(c);
			return;
		}
		off += (size_t)n;
	}
	memmove(c->out, c->out + off, c->outlen - off);
	c->outlen -= off;
	io_want(&c->wio, c->outlen > 0);
}

static void __attribute__((format(printf, 2, 3)))
ctl_reply(struct ctl *c, const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	note("control: -> %s", line);
	line[n++] = '\n';
	if (c->outlen + (size_t)n > CTL_OUT_MAX) {
		note("control: a client reads no replies: dropped");
		ctl_close(c);
		return;
	}
	if (c->outlen + (size_t)n > c->outcap) {
		size_t cap = c->outcap ? c->outcap * 2 : 8192;
		while (cap < c->outlen + (size_t)n)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (!p) {
			ctl_close(c);
			return;
		}
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, line, (size_t)n);
	c->outlen += (size_t)n;
	ctl_flush(c);
}

static void
ctl_stats(struct ctl *c)
{
	static const char *dname[2] = { "up", "down" };
	char buf[3072];
	size_t len = 0;
	uint64_t held[2] = { 0, 0 };
	for (struct tconn *t = G.conns; t; t = t->next)
		for (int d = 0; d < 2; d++)
			held[d] += t->h[d].tail - t->h[d].head;
	for (int d = 0; d < 2; d++) {
		const struct dstats *s = &G.udp_st[d];
		const char *n = dname[d];
		len += (size_t)snprintf(buf + len, sizeof buf - len,
		    "udp_%s_recv=%" PRIu64 " udp_%s_sent=%" PRIu64
		    " udp_%s_bytes=%" PRIu64 " udp_%s_dropped=%" PRIu64
		    " udp_%s_overflow=%" PRIu64 " udp_%s_duplicated=%" PRIu64
		    " udp_%s_reordered=%" PRIu64 " udp_%s_errors=%" PRIu64 " ",
		    n, s->recv, n, s->sent, n, s->bytes, n, s->dropped, n,
		    s->overflow, n, s->duplicated, n, s->reordered, n, s->errors);
	}
	snprintf(buf + len, sizeof buf - len,
	    "udp_queued=%d udp_mappings=%d udp_mappings_total=%" PRIu64
	    " udp_mappings_expired=%" PRIu64 " udp_mappings_refused=%" PRIu64
	    " udp_rebinds=%" PRIu64 " tcp_conns=%d tcp_conns_total=%" PRIu64
	    " tcp_refused=%" PRIu64 " tcp_connect_failed=%" PRIu64
	    " tcp_errors=%" PRIu64 " tcp_cut=%" PRIu64 " tcp_reset=%" PRIu64
	    " tcp_up_bytes=%" PRIu64 " tcp_down_bytes=%" PRIu64
	    " tcp_up_held=%" PRIu64 " tcp_down_held=%" PRIu64,
	    G.nheap, G.nmaps, G.maps_total, G.maps_expired, G.maps_refused,
	    G.rebinds, G.nconns, G.tcp_total, G.tcp_refused, G.tcp_connect_failed,
	    G.tcp_errors, G.tcp_cut, G.tcp_reset, G.tcp_bytes[NETEM_UP],
	    G.tcp_bytes[NETEM_DOWN], held[NETEM_UP], held[NETEM_DOWN]);
	ctl_reply(c, "ok %s", buf);
}

#define COMMANDS "set clear show stats rebind cut reset stall unstall quit help"

/* One command line; exactly one reply. */
static void
ctl_command(struct ctl *c, char *line)
{
	char *cmd = line + strspn(line, " \t");
	size_t cl = strcspn(cmd, " \t");
	char *args = cmd + cl + strspn(cmd + cl, " \t");
	if (!*cmd)
		return;                  /* an empty line is no command */
	if (cmd[cl])
		cmd[cl] = 0;
	note("control: <- %s%s%s", cmd, *args ? " " : "", args);
	if (!strcmp(cmd, "set")) {
		char err[512];
		if (netem_settings_apply(&G.set, args, err, sizeof err) < 0) {
			ctl_reply(c, "error %s", err);
			return;
		}
		tconn_update_all();
		ctl_reply(c, "ok");
		return;
	}
	if (*args) {
		ctl_reply(c, "error %s takes no argument", cmd);
		return;
	}
	if (!strcmp(cmd, "clear")) {
		netem_settings_clear(&G.set);
		tconn_update_all();
		ctl_reply(c, "ok");
	} else if (!strcmp(cmd, "show")) {
		char buf[2048];
		netem_settings_format(&G.set, buf, sizeof buf);
		ctl_reply(c, "ok %s", buf);
	} else if (!strcmp(cmd, "stats")) {
		ctl_stats(c);
	} else if (!strcmp(cmd, "rebind")) {
		int failed, err = 0;
		int n = udp_rebind(&failed, &err);
		if (failed)
			ctl_reply(c, "error rebind: %d of %d mappings kept their "
			          "socket: %s", failed, n + failed, strerror(err));
		else
			ctl_reply(c, "ok rebound=%d", n);
	} else if (!strcmp(cmd, "cut") || !strcmp(cmd, "reset")) {
		int n = 0, cut = cmd[0] == 'c';
		struct tconn *t = G.conns;
		while (t) {
			struct tconn *next = t->next;
			if (cut && !t->cutting) {
				tconn_cut(t);
				n++;
			} else if (!cut) {
				tconn_close(t, 1);
				n++;
			}
			t = next;
		}
		if (cut)
			G.tcp_cut += (uint64_t)n;
		else
			G.tcp_reset += (uint64_t)n;
		ctl_reply(c, "ok %s=%d", cmd, n);
	} else if (!strcmp(cmd, "stall") || !strcmp(cmd, "unstall")) {
		G.set.stall = cmd[0] == 's';
		tconn_update_all();
		ctl_reply(c, "ok");
	} else if (!strcmp(cmd, "quit")) {
		ctl_reply(c, "ok bye");
		ev_break(G.loop, EVBREAK_ALL);
	} else if (!strcmp(cmd, "help")) {
		ctl_reply(c, "ok commands: " COMMANDS);
	} else {
		ctl_reply(c, "error unknown command '%.64s' (commands: " COMMANDS ")",
		          cmd);
	}
}

static void
on_ctl_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	struct ctl *c = w->data;
	ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	               errno != EINTR)) {
		ctl_close(c);
		return;
	}
	if (n < 0)
		return;
	c->inlen += (size_t)n;
	char *nl;
	while (!c->dead && (nl = memchr(c->in, '\n', c->inlen))) {
		*nl = 0;
		if (nl > c->in && nl[-1] == '\r')
			nl[-1] = 0;
		ctl_command(c, c->in);
		size_t used = (size_t)(nl + 1 - c->in);
		memmove(c->in, nl + 1, c->inlen - used);
		c->inlen -= used;
	}
	if (!c->dead && c->inlen == sizeof c->in) {
		ctl_reply(c, "error line too long (max %d bytes)", CTL_LINE_MAX - 1);
		ctl_close(c);
	}
}

static void
on_ctl_write(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	ctl_flush(w->data);
}

static void
on_ctl_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	int fd = accept4(G.ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ctl *c = G.nctls < CTL_MAX ? calloc(1, sizeof *c) : NULL;
	if (!c) {
		note("control: over %d clients: refused", CTL_MAX);
		close(fd);
		return;
	}
	c->fd = fd;
	ev_io_init(&c->rio, on_ctl_read, fd, EV_READ);
	ev_io_init(&c->wio, on_ctl_write, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_io_start(G.loop, &c->rio);
	c->next = G.ctls;
	if (G.ctls)
		G.ctls->prev = c;
	G.ctls = c;
	G.nctls++;
}

/* ---- the loop ------------------------------------------------------------ */

/* Before the loop blocks: free what ended in a callback. */
static void
on_reap(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	while (G.dead_conns) {
		struct tconn *c = G.dead_conns;
		G.dead_conns = c->next;
		free(c->h[0].buf);
		free(c->h[1].buf);
		free(c);
	}
	while (G.dead_ctls) {
		struct ctl *c = G.dead_ctls;
		G.dead_ctls = c->next;
		free(c->out);
		free(c);
	}
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	note("signal %d: exiting", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/* Close everything, free everything. */
static void
shutdown_all(void)
{
	while (G.conns)
		tconn_close(G.conns, 0);
	while (G.ctls)
		ctl_close(G.ctls);
	on_reap(G.loop, &G.reap, 0);
	while (G.maps)
		map_free(G.maps);
	while (G.nheap > 0)
		free(heap_pop());
	for (int i = 0; i < LISTEN_MAX; i++) {
		if (G.udp[i].fd >= 0)
			close(G.udp[i].fd);
		if (G.tcp[i].fd >= 0)
			close(G.tcp[i].fd);
	}
	if (G.ctl_fd >= 0)
		close(G.ctl_fd);
	free(G.heap);
	free(G.htab);
	free(G.dgram);
	ev_loop_destroy(G.loop);
}

/* ---- ctl: the command-line client ---------------------------------------- */

static int
wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		int ms = (int)((deadline - mono()) * 1000);
		if (ms <= 0)
			return -1;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int
ctl_main(int argc, char **argv)
{
	char err[256], cmd[CTL_LINE_MAX];
	struct addr a;
	if (argc < 2) {
		fprintf(stderr, "usage: moongate-netem ctl HOST:PORT COMMAND...\n");
		return 2;
	}
	if (addr_parse(argv[0], &a, err, sizeof err) < 0) {
		fprintf(stderr, "moongate-netem ctl: %s\n", err);
		return 2;
	}
	size_t len = 0;
	for (int i = 1; i < argc; i++) {
		int n = snprintf(cmd + len, sizeof cmd - len, "%s%s", i > 1 ? " " : "",
		                 argv[i]);
		if (n < 0 || (size_t)n >= sizeof cmd - len - 1 || strchr(argv[i], '\n')) {
			fprintf(stderr, "moongate-netem ctl: the command is too long or "
			        "holds a newline\n");
			return 2;
		}
		len += (size_t)n;
	}
	cmd[len++] = '\n';
	double deadline = mono() + CTL_TIMEOUT_MS / 1000.0;
	const struct sockaddr *sa = (const struct sockaddr *)&a.ss;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = 0;
	socklen_t el = sizeof e;
	if (fd < 0 || (connect(fd, sa, a.len) < 0 && errno != EINPROGRESS) ||
	    wait_fd(fd, POLLOUT, deadline) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e) {
		fprintf(stderr, "moongate-netem ctl: connect %s: %s\n", argv[0],
		        strerror(e ? e : errno ? errno : ETIMEDOUT));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, cmd + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			fprintf(stderr, "moongate-netem ctl: send: %s\n", strerror(errno));
			close(fd);
			return 1;
		} else if (wait_fd(fd, POLLOUT, deadline) < 0) {
			fprintf(stderr, "moongate-netem ctl: send: timed out\n");
			close(fd);
			return 1;
		}
	}
	char reply[8192];
	size_t rl = 0;
	while (!memchr(reply, '\n', rl)) {
		if (rl == sizeof reply || wait_fd(fd, POLLIN, deadline) < 0) {
			fprintf(stderr, "moongate-netem ctl: no reply within %d ms\n",
			        CTL_TIMEOUT_MS);
			close(fd);
			return 1;
		}
		ssize_t n = recv(fd, reply + rl, sizeof reply - rl, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			fprintf(stderr, "moongate-netem ctl: the connection ended "
			        "before a reply\n");
			close(fd);
			return 1;
		}
		if (n > 0)
			rl += (size_t)n;
	}
	close(fd);
	*(char *)memchr(reply, '\n', rl) = 0;
	printf("%s\n", reply);
	return !strncmp(reply, "ok", 2) && (reply[2] == 0 || reply[2] == ' ') ? 0 : 1;
}

/* ---- main ---------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
	"usage: moongate-netem [options]\n"
	"       moongate-netem ctl HOST:PORT COMMAND...\n"
	"\n"
	"A network emulator for tests: UDP and TCP proxies that break the\n"
	"network on purpose. Addresses are numeric (127.0.0.1:7777, [::1]:7777);\n"
	"port 0 picks a free one. At least one --udp or --tcp.\n"
	"\n"
	"  --udp LISTEN=TARGET   a UDP proxy; one upstream socket per client (repeatable)\n"
	"  --tcp LISTEN=TARGET   a TCP proxy (repeatable)\n"
	"  --control HOST:PORT   the control channel (a line-based TCP protocol)\n"
	"  --set \"SETTINGS\"      initial impairments, as the control command set\n"
	"  --seed N              the PRNG seed (default: from the clock; printed)\n"
	"  --udp-idle SECONDS    an idle UDP mapping expires (60)\n"
	"  --udp-max N           UDP mappings at once; more clients are dropped (1024)\n"
	"  --udp-queue N         datagrams waiting (delay, rate) at once (8192)\n"
	"  --rate-queue BYTES    bytes waiting for a rate cap, per flow and direction (65536)\n"
	"  --tcp-max N           TCP connections at once; more are reset (1024)\n"
	"  --tcp-buffer BYTES    buffer per TCP connection and direction (65536)\n"
	"\n"
	"Control commands (one per line, one reply line: \"ok ...\" or \"error ...\"):\n"
	"  set [up|down|both] [udp|tcp] key=value...   keys: loss dup reorder (0..1\n"
	"      or N%%; udp only), delay jitter reorder_ms (ms; or Ns), rate\n"
	"      (bytes/s; Nkbit Nmbit NkB NMB; 0: none), blackhole stall refuse (0/1)\n"
	"  clear  show  stats  rebind  cut  reset  stall  unstall  quit  help\n"
	"\n"
	"Prints \"moongate-netem: udp|tcp LISTEN_IP PORT -> TARGET_IP PORT\",\n"
	"\"moongate-netem: control IP PORT\", the seed, then \"moongate-netem: ready\".\n");
}

static int
bad(const char *opt, const char *why)
{
	fprintf(stderr, "moongate-netem: %s: %s\n", opt, why);
	return 2;
}

/* A number in [lo, hi] from the whole of s. */
static int
num_opt(const char *s, double lo, double hi, double *out)
{
	char *e;
	double x = strtod(s, &e);
	if (!*s || *e || !(x >= lo && x <= hi))
		return -1;
	*out = x;
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 2, argv + 2);

	char err[512];
	const char *sets[64];
	int nsets = 0, have_ctl = 0, have_seed = 0;
	struct addr ctl_at;
	double v;
	G.udp_idle = 60;
	G.udp_max = 1024;
	G.udp_queue = 8192;
	G.rate_queue = 65536;
	G.tcp_max = 1024;
	G.tcp_buffer = 65536;
	G.ctl_fd = -1;
	for (int i = 0; i < LISTEN_MAX; i++)
		G.udp[i].fd = G.tcp[i].fd = -1;
	netem_settings_clear(&G.set);

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			usage(stdout);
			return 0;
		}
		if (strncmp(o, "--", 2))
			return bad(o, "not an option (try --help)");
		if (i + 1 >= argc)
			return bad(o, "needs a value (try --help)");
		const char *val = argv[++i];
		if (!strcmp(o, "--udp") || !strcmp(o, "--tcp")) {
			int udp = o[2] == 'u';
			if ((udp ? G.nudp : G.ntcp) == LISTEN_MAX)
				return bad(o, "too many (16 at most)");
			char l[128];
			const char *eq = strchr(val, '=');
			if (!eq || (size_t)(eq - val) >= sizeof l)
				return bad(o, "LISTEN=TARGET expected, e.g. "
				           "127.0.0.1:0=127.0.0.1:7777");
			memcpy(l, val, (size_t)(eq - val));
			l[eq - val] = 0;
			struct addr *at = udp ? &G.udp[G.nudp].at : &G.tcp[G.ntcp].at;
			struct addr *to = udp ? &G.udp[G.nudp].target : &G.tcp[G.ntcp].target;
			if (addr_parse(l, at, err, sizeof err) < 0 ||
			    addr_parse(eq + 1, to, err, sizeof err) < 0)
				return bad(o, err);
			if (addr_port(to) == 0)
				return bad(o, "the target needs a port");
			if (udp)
				G.nudp++;
			else
				G.ntcp++;
		} else if (!strcmp(o, "--control")) {
			if (addr_parse(val, &ctl_at, err, sizeof err) < 0)
				return bad(o, err);
			have_ctl = 1;
		} else if (!strcmp(o, "--set")) {
			if (nsets == 64)
				return bad(o, "too many (64 at most)");
			sets[nsets++] = val;
		} else if (!strcmp(o, "--seed")) {
			char *e;
			errno = 0;
			G.seed = strtoull(val, &e, 0);
			if (!*val || *e || errno || *val == '-')
				return bad(o, "an unsigned 64-bit integer expected");
			have_seed = 1;
		} else if (!strcmp(o, "--udp-idle")) {
			if (num_opt(val, 0.001, 86400, &v) < 0)
				return bad(o, "seconds in 0.001..86400 expected");
			G.udp_idle = v;
		} else if (!strcmp(o, "--udp-max") || !strcmp(o, "--udp-queue") ||
		           !strcmp(o, "--tcp-max")) {
			if (num_opt(val, 1, 1000000, &v) < 0 || v != (int)v)
				return bad(o, "an integer in 1..1000000 expected");
			*(o[2] == 't' ? &G.tcp_max : o[6] == 'm' ? &G.udp_max
			                                         : &G.udp_queue) = (int)v;
		} else if (!strcmp(o, "--rate-queue") || !strcmp(o, "--tcp-buffer")) {
			if (num_opt(val, 1024, 1 << 30, &v) < 0 || v != (size_t)v)
				return bad(o, "bytes in 1024..1073741824 expected");
			*(o[2] == 'r' ? &G.rate_queue : &G.tcp_buffer) = (size_t)v;
		} else {
			return bad(o, "unknown option (try --help)");
		}
	}
	if (G.nudp + G.ntcp == 0) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < nsets; i++)
		if (netem_settings_apply(&G.set, sets[i], err, sizeof err) < 0)
			return bad("--set", err);
	if (!have_seed) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		G.seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
		         (uint64_t)getpid() << 32;
	}
	for (int p = 0; p < 2; p++)
		for (int d = 0; d < 2; d++)
			netem_rng_seed(&G.rng[p][d], G.seed * 4 + (uint64_t)(p * 2 + d));

	unsigned hsize = 16;
	while (hsize < (unsigned)G.udp_max * 2)
		hsize *= 2;
	G.hmask = hsize - 1;
	G.htab = calloc(hsize, sizeof *G.htab);
	G.heap = malloc((size_t)G.udp_queue * sizeof *G.heap);
	G.dgram = malloc(DGRAM_MAX);
	G.loop = ev_default_loop(EVFLAG_AUTO);
	if (!G.htab || !G.heap || !G.dgram || !G.loop) {
		fprintf(stderr, "moongate-netem: out of memory\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	char a[80], b[80];
	int failed = 0;
	for (int i = 0; i < G.nudp && !failed; i++) {
		struct udp_lis *l = &G.udp[i];
		if ((l->fd = listen_on(SOCK_DGRAM, &l->at, err, sizeof err)) < 0) {
			fprintf(stderr, "moongate-netem: --udp %s: %s\n",
			        addr_text(&l->at, a, sizeof a), err);
			failed = 1;
		}
		ev_io_init(&l->io, on_udp_read, l->fd, EV_READ);
		l->io.data = l;
		ev_io_start(G.loop, &l->io);
		printf("moongate-netem: udp %s -> %s\n", addr_text(&l->at, a, sizeof a),
		       addr_text(&l->target, b, sizeof b));
	}
	for (int i = 0; i < G.ntcp && !failed; i++) {
		struct tcp_lis *l = &G.tcp[i];
		if ((l->fd = listen_on(SOCK_STREAM, &l->at, err, sizeof err)) < 0) {
			fprintf(stderr, "moongate-netem: --tcp %s: %s\n",
			        addr_text(&l->at, a, sizeof a), err);
			failed = 1;
		}
		ev_io_init(&l->io, on_accept, l->fd, EV_READ);
		ev_timer_init(&l->pause, on_pause, 0, 0);
		l->io.data = l->pause.data = l;
		ev_io_start(G.loop, &l->io);
		printf("moongate-netem: tcp %s -> %s\n", addr_text(&l->at, a, sizeof a),
		       addr_text(&l->target, b, sizeof b));
	}
	if (!failed && have_ctl) {
		if ((G.ctl_fd = listen_on(SOCK_STREAM, &ctl_at, err, sizeof err)) < 0) {
			fprintf(stderr, "moongate-netem: --control %s: %s\n",
			        addr_text(&ctl_at, a, sizeof a), err);
			failed = 1;
		} else {
			ev_io_init(&G.ctl_io, on_ctl_accept, G.ctl_fd, EV_READ);
			ev_io_start(G.loop, &G.ctl_io);
			printf("moongate-netem: control %s\n", addr_text(&ctl_at, a, sizeof a));
		}
	}
	if (failed) {
		shutdown_all();
		return 1;
	}
	ev_timer_init(&G.qtm, on_queue, 0, 0);
	double sweep = G.udp_idle / 2 < 1 ? G.udp_idle / 2 : 1;
	ev_timer_init(&G.sweep, on_sweep, sweep, sweep);
	ev_timer_start(G.loop, &G.sweep);
	ev_prepare_init(&G.reap, on_reap);
	ev_prepare_start(G.loop, &G.reap);
	ev_signal_init(&G.sigterm, on_signal, SIGTERM);
	ev_signal_init(&G.sigint, on_signal, SIGINT);
	ev_signal_start(G.loop, &G.sigterm);
	ev_signal_start(G.loop, &G.sigint);

	printf("moongate-netem: seed %" PRIu64 "\n", G.seed);
	printf("moongate-netem: ready\n");
	fflush(stdout);
	note("ready, seed %" PRIu64, G.seed);

	ev_run(G.loop, 0);

	shutdown_all();
	return 0;
}
