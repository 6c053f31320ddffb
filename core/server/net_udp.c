/*
 * net_udp.c - UDP listeners (see net.h, net_int.h).
 *
 * A readable socket is read in batches of cfg.batch (recvmmsg; batch 1 is
 * the plain recvmsg/sendto path) into one receive area shared by every
 * listener. net_send copies a datagram into the pending batch of its
 * listener, sent with sendmmsg when full, on net_flush, and by the prepare
 * watcher before the loop blocks.
 *
 * Polling mode (net.poll_us), the way a NIC driver moves from interrupts
 * to polling under load (Linux's NAPI): a wakeup for every datagram or
 * two costs an epoll_wait, a recvmmsg and a sendmmsg each, and at 20 Hz
 * times thousands of sessions those wakeups are most of the server's
 * CPU. A listener in polling mode stops watching readiness and is read
 * every poll_us on a timer instead: each read takes what arrived
 * meanwhile, and the loop's one flush per wakeup answers all of it. A
 * listener enters it when its readiness
 * wakeups come more than NET_POLL_RATE per poll_us, counted over windows
 * of NET_POLL_WINDOW x poll_us (so that one burst does not): at 500 us,
 * above 16,000 a second, where they cost a core a good part of its time;
 * below that, the latency polling adds is not worth the CPU it saves.
 * NET_POLL_IDLE empty polls in a row, or a poll
 * that reads UDP_READ_MAX (the socket is busier than a timer can follow),
 * go back to readiness. A datagram waits at most poll_us more, and only
 * under load.
 */
#include "net_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define UDP_READ_MAX 256    /* datagrams read per event (8 batches of 32) */
#define NET_POLL_IDLE 8     /* empty polls in a row end polling mode */
#define NET_POLL_RATE 8     /* wakeups per poll_us that start it */
#define NET_POLL_WINDOW 8   /* counted over this many poll_us */

void
net_batch_free(struct batch *b)
{
	free(b->msg);
	free(b->iov);
	free(b->path);
	free(b->buf);
}

int
net_batch_init(struct batch *b, int count, int size)
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

void
net_udp_flush_all(net_t *n)
{
	int i;
	if (!n->udp_pending)
		return;
	for (i = 0; i < n->nlis; i++)
		if (n->lis[i]->out.n)
			udp_flush(n, n->lis[i]);
	n->udp_pending = 0;
}

void
net_udp_send(net_t *n, struct listener *l, const struct gate_path *to,
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

/* Read what waits on l, UDP_READ_MAX at most: the count. */
static int
udp_drain(net_t *n, struct listener *l)
{
	int total = 0;
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
	return total;
}

void
net_udp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	net_t *n = l->net;
	(void)revents;
	int total = udp_drain(n, l);
	if (n->cfg.poll_us <= 0)
		return;
	uint64_t now = net_now(n), poll = (uint64_t)n->cfg.poll_us;
	if (now - l->win_start >= NET_POLL_WINDOW * poll) {
		l->win_start = now;
		l->win_count = 0;
	}
	if (++l->win_count >= NET_POLL_WINDOW * NET_POLL_RATE &&
	    total < UDP_READ_MAX) {
		double t = n->cfg.poll_us / 1e6;
		ev_io_stop(loop, &l->io);
		ev_timer_set(&l->poll, t, t);
		ev_timer_start(loop, &l->poll);
		l->idle_polls = 0;
		n->st.poll_enter++;
	}
}

void
net_udp_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listener *l = w->data;
	net_t *n = l->net;
	(void)revents;
	n->st.polls++;
	int total = udp_drain(n, l);
	l->idle_polls = total ? 0 : l->idle_polls + 1;
	if (total >= UDP_READ_MAX || l->idle_polls >= NET_POLL_IDLE) {
		ev_timer_stop(loop, &l->poll);
		ev_io_start(loop, &l->io);
		l->win_start = net_now(n); /* count afresh */
		l->win_count = 0;
	}
}
