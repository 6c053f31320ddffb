/*
 * netem_udp.c - the UDP proxy of moongate-netem (netem.h).
 *
 * Each client address gets a mapping, a socket of its own connected to
 * the target (as a NAT does), so the server sees one address per client;
 * replies go back from the listening socket. Idle mappings expire;
 * `rebind` gives every mapping a new socket, so a new source port.
 *
 * Datagrams that must wait (delay, jitter, reorder, rate) sit in one
 * heap, G.queue, ordered by departure then arrival. The model's times are
 * seconds in a double; the heap's key is the same time in nanoseconds
 * (udp_ns), a monotonic conversion: a later departure never gets a
 * smaller key, and only departures less than a nanosecond apart can
 * share one, and then leave in arrival order.
 */
#include "netem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the queue of waiting datagrams -------------------------------------- */

/* A time of mono() as the heap's key. */
static uint64_t
udp_ns(double t)
{
	return t > 0 ? (uint64_t)(t * 1e9) : 0;
}

static void
queue_arm(void)
{
	ev_timer_stop(G.loop, &G.qtm);
	struct heap_node *top = heap_top(&G.queue);
	if (!top)
		return;
	uint64_t now = udp_ns(mono());
	double wait = top->key > now ? (double)(top->key - now) / 1e9 : 0;
	ev_timer_set(&G.qtm, wait, 0);
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

void
udp_on_queue(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	uint64_t now = udp_ns(mono());
	struct heap_node *n;
	while ((n = heap_top(&G.queue)) && n->key <= now) {
		struct pkt *p = container_of(heap_pop(&G.queue), struct pkt, hn);
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
		if (G.queue.n >= (uint32_t)G.udp_queue ||
		    !(p = malloc(sizeof *p + len))) {
			st->overflow++;
			continue;
		}
		p->hn.key = udp_ns(v.at[i]);
		p->hn.tie = G.seq++;
		p->dir = dir;
		p->m = m;
		p->lis = m->lis;
		p->peer = m->peer;
		p->len = len;
		memcpy(p->data, data, len);
		if (heap_push(&G.queue, &p->hn) < 0) {
			free(p);
			st->overflow++;
			continue;
		}
		queued = 1;
	}
	if (queued)
		queue_arm();
}

/* ---- mappings ------------------------------------------------------------ */


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
	for (uint32_t i = 0; i < G.queue.n; i++) {
		struct pkt *p = container_of(G.queue.a[i], struct pkt, hn);
		if (p->m == m)
			p->m = NULL;
	}
	G.nmaps--;
	free(m);
}

void
udp_on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
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

int
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

void
udp_on_read(struct ev_loop *loop, ev_io *w, int revents)
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

void
udp_free_all(void)
{
	while (G.maps)
		map_free(G.maps);
	struct heap_node *n;
	while ((n = heap_pop(&G.queue)))
		free(container_of(n, struct pkt, hn));
	heap_free(&G.queue);
}
