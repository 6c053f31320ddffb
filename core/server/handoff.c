/*
 * handoff.c - TCP connections passed between workers. See handoff.h.
 */
#include "handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "wire.h"

/* What goes with the descriptor: the listener, the peer, then the bytes. */
struct handoff_hdr {
	uint32_t listener;
	uint32_t addrlen;
	struct sockaddr_storage addr;
};
#define HANDOFF_MAX (sizeof(struct handoff_hdr) + 65536)

int
handoff_slot(const uint8_t *pkt, size_t len)
{
	if (len >= 5 && pkt[0] >= WIRE_KCP && pkt[0] <= WIRE_FEC)
		return pkt[1];
	if (len >= 35 && (pkt[0] == WIRE_HELLO || pkt[0] == WIRE_INIT) &&
	    pkt[1] == WIRE_V2)
		return WIRE_CAPS_HINT(pkt[34]);
	return -1;
}

void
handoff_send(const struct workers_fds *fds, int fd, int listener,
             const struct sockaddr *addr, socklen_t addrlen,
             const uint8_t *bytes, size_t len)
{
	int w = len > FRAME_HEADER ? handoff_slot(bytes + FRAME_HEADER, len - FRAME_HEADER) : -1;
	if (w < 0 || w >= fds->nworkers) { /* (the packet callback checked it) */
		close(fd);
		return;
	}
	struct handoff_hdr h = { (uint32_t)listener, (uint32_t)addrlen, { 0 } };
	memcpy(&h.addr, addr, addrlen <= sizeof h.addr ? addrlen : sizeof h.addr);
	struct iovec iov[2] = { { &h, sizeof h }, { (void *)bytes, len } };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { 0 };
	m.msg_iov = iov;
	m.msg_iovlen = 2;
	m.msg_control = u.buf;
	m.msg_controllen = sizeof u.buf;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	if (sendmsg(fds->chan_wr[w], &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_warn("workers: a tcp connection for worker %d's session could not "
		         "be passed (%s): closed, the client connects again",
		         w, strerror(errno));
	close(fd); /* the other worker has its own now */
}

ssize_t
handoff_recv(int chan, void *buf, size_t len, int *fd, int *truncated)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, len };
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = u.b;
	m.msg_controllen = sizeof u.b;
	*fd = -1;
	ssize_t r = recvmsg(chan, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (r < 0)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(cm), sizeof *fd);
	*truncated = (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
	return r;
}

void
handoff_receive(int chan_rd, net_t *n)
{
	static uint8_t buf[HANDOFF_MAX];
	for (int round = 0; round < 64; round++) {
		int fd, truncated;
		ssize_t r = handoff_recv(chan_rd, buf, sizeof buf, &fd, &truncated);
		if (r < 0)
			return; /* EAGAIN: all taken */
		if (fd < 0 || (size_t)r < sizeof(struct handoff_hdr) || truncated) {
			log_warn("workers: a bad handoff message (%zd bytes) dropped", r);
			if (fd >= 0)
				close(fd);
			continue;
		}
		struct handoff_hdr h;
		memcpy(&h, buf, sizeof h);
		int flags = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		net_adopt_tcp(n, (int)h.listener, fd, (struct sockaddr *)&h.addr,
		              (socklen_t)h.addrlen, buf + sizeof h, (size_t)r - sizeof h);
	}
}
