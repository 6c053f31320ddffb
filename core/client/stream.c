/*
 * stream.c - the TCP byte stream of a tport (stream.h): frames out through
 * a bounded write buffer, frames in through a read buffer that grows to
 * the frame under way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include "frame.h"
#include "session.h"
#include "stream.h"

#define RBUF_MIN 4096  /* read buffer to start with */

void
stream_flush(struct tport *t)
{
	while (t->fd >= 0 && t->woff < t->wlen) {
		ssize_t n = send(t->fd, t->wbuf + t->woff, t->wlen - t->woff,
		                 MSG_NOSIGNAL);
		if (n > 0) {
			t->woff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		tport_fail_errno(t, n < 0 ? errno : EPIPE);
		return;
	}
	if (t->woff == t->wlen)
		t->woff = t->wlen = 0;
}

int
stream_pending(const struct tport *t)
{
	return t->woff < t->wlen;
}

/* Append bytes to the write buffer; 0, or -1 past max. */
static int
buffer(struct tport *t, const uint8_t *p, size_t n, size_t max)
{
	if (t->wlen - t->woff + n > max)
		return -1;
	if (t->wlen + n > t->wcap && t->woff > 0) {
		memmove(t->wbuf, t->wbuf + t->woff, t->wlen - t->woff);
		t->wlen -= t->woff;
		t->woff = 0;
	}
	if (t->wlen + n > t->wcap) {
		size_t cap = t->wcap ? t->wcap : 4096;
		while (cap < t->wlen + n)
			cap *= 2;
		uint8_t *b = realloc(t->wbuf, cap);
		if (!b)
			return -1;
		t->wbuf = b;
		t->wcap = cap;
	}
	memcpy(t->wbuf + t->wlen, p, n);
	t->wlen += n;
	return 0;
}

/* Straight to the socket when nothing waits before the frame (one sendmsg
 * for header and packet), the rest into the buffer. */
int
stream_send(struct tport *t, const uint8_t *pkt, size_t len, size_t max)
{
	uint8_t hdr[FRAME_HEADER];
	frame_header(hdr, len);
	size_t done = 0, total = len + FRAME_HEADER;
	if (t->woff == t->wlen) { /* EAGAIN while the connect is under way */
		struct iovec iov[2] = { { hdr, FRAME_HEADER }, { (void *)pkt, len } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t n;
		do
			n = sendmsg(t->fd, &m, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != ENOTCONN) {
			tport_fail_errno(t, errno);
			return 0;
		}
		done = n > 0 ? (size_t)n : 0;
		if (done == total)
			return 0;
	}
	int r = 0;
	if (done < FRAME_HEADER)
		r = buffer(t, hdr + done, FRAME_HEADER - done, max);
	size_t skip = done > FRAME_HEADER ? done - FRAME_HEADER : 0;
	if (r == 0)
		r = buffer(t, pkt + skip, len - skip, max);
	return r;
}

/* Hand every complete frame in rbuf to input; keep the rest. Returns
 * input's stop. */
static int
frames(struct tport *t, size_t frame_max, tport_input_fn *input, void *user)
{
	size_t off = 0;
	int stop = 0;
	while (!stop && !t->fail_code) {
		size_t flen;
		long got = frame_next(t->rbuf + off, t->rlen - off, frame_max, &flen);
		if (got < 0) {
			/* the stream is lost: that connection ends */
			tport_fail(t, SESSION_CLOSE_PROTOCOL, frame_error(got));
			break;
		}
		if (got == 0)
			break;
		stop = input(user, t->rbuf + off + FRAME_HEADER, flen);
		off += (size_t)got;
	}
	memmove(t->rbuf, t->rbuf + off, t->rlen - off);
	t->rlen -= off;
	return stop;
}

void
stream_read(struct tport *t, int max_reads, size_t frame_max,
            tport_input_fn *input, void *user)
{
	int stop = 0;
	for (int i = 0; i < max_reads && t->fd >= 0 && !stop && !t->fail_code;
	     i++) {
		/* room for at least the frame under way: frames() left less
		 * than one frame, whose header (when in) passed frame_next */
		size_t flen, need = RBUF_MIN;
		if (frame_next(t->rbuf, t->rlen, frame_max, &flen) == 0 &&
		    FRAME_HEADER + flen > need)
			need = FRAME_HEADER + flen;
		/* so rlen < need <= cap after this: recv always has room */
		if (t->rcap < need) {
			size_t cap = t->rcap ? t->rcap : RBUF_MIN;
			while (cap < need)
				cap *= 2;
			uint8_t *b = realloc(t->rbuf, cap);
			if (!b) {
				tport_fail(t, SESSION_CLOSE_DISCONNECT, "out of memory");
				return;
			}
			t->rbuf = b;
			t->rcap = cap;
		}
		ssize_t n = recv(t->fd, t->rbuf + t->rlen, t->rcap - t->rlen, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				tport_fail_errno(t, errno);
			return;
		}
		if (n == 0) {
			tport_fail(t, SESSION_CLOSE_DISCONNECT, "disconnected");
			return;
		}
		t->rlen += (size_t)n;
		stop = frames(t, frame_max, input, user);
	}
}
