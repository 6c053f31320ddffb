/*
 * tport.c - the client's sockets (tport.h): open, close, datagrams. The
 * TCP byte stream on top of a tport is stream.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "session.h"
#include "tport.h"

void
tport_init(struct tport *t, int tcp)
{
	memset(t, 0, sizeof *t);
	t->fd = -1;
	t->tcp = tcp;
}

void
tport_close(struct tport *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->fail_code = 0;
	t->rlen = t->woff = t->wlen = 0;
}

void
tport_free(struct tport *t)
{
	tport_close(t);
	free(t->rbuf);
	free(t->wbuf);
	t->rbuf = t->wbuf = NULL;
	t->rcap = t->wcap = 0;
}

int
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

int
tport_reopen(struct tport *t)
{
	int old = t->fd;
	t->fd = -1;
	int r = tport_open(t, NULL, 0);
	if (old >= 0)
		close(old);
	return r;
}

void
tport_fail(struct tport *t, int code, const char *reason)
{
	if (t->fail_code)
		return;
	t->fail_code = code;
	snprintf(t->fail, sizeof t->fail, "%s", reason);
}

void
tport_fail_errno(struct tport *t, int err)
{
	char why[sizeof t->fail];
	snprintf(why, sizeof why, "disconnected: %s", err == ECONNRESET ?
	         "connection reset" : err == ECONNREFUSED ?
	         "connection refused" : strerror(err));
	tport_fail(t, SESSION_CLOSE_DISCONNECT, why);
}

void
tport_send_datagram(struct tport *t, const uint8_t *pkt, size_t len)
{
	if (send(t->fd, pkt, len, MSG_NOSIGNAL) < 0 && errno == EINTR)
		send(t->fd, pkt, len, MSG_NOSIGNAL);
}

/* Datagrams of at most BATCH_SLOT bytes (every mtu up to it) are read
 * BATCH at a time with recvmmsg: one system call reads what waits and, by
 * returning fewer than asked, says the socket is empty, where recv needs
 * one call per datagram and one more for EAGAIN. */
#define BATCH 16
#define BATCH_SLOT 2048

static void
recv_batched(struct tport *t, int max, tport_input_fn *input, void *user)
{
	static _Thread_local uint8_t buf[BATCH][BATCH_SLOT];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = BATCH_SLOT;
		memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	int done = 0;
	while (done < max && t->fd >= 0) {
		int want = max - done < BATCH ? max - done : BATCH;
		int n = recvmmsg(t->fd, m, (unsigned)want, 0, NULL);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED)
				continue; /* ICMP: the server is not there (yet) */
			return;
		}
		for (int i = 0; i < n; i++) {
			if (m[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue; /* larger than any packet of this session */
			if (input(user, buf[i], m[i].msg_len))
				return;
			if (t->fd < 0)
				return;
		}
		done += n;
		if (n < want)
			return; /* drained */
	}
}

void
tport_recv_datagrams(struct tport *t, int max, int dgram_max,
                     tport_input_fn *input, void *user)
{
	static _Thread_local uint8_t buf[65536];
	if (dgram_max > 0 && dgram_max <= BATCH_SLOT) {
		recv_batched(t, max, input, user);
		return;
	}
	for (int i = 0; i < max && t->fd >= 0; i++) {
		ssize_t n = recv(t->fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED)
				continue; /* ICMP: the server is not there (yet) */
			break;
		}
		if (input(user, buf, (size_t)n))
			break;
	}
}
