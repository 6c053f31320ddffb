/*
 * tport.h - one transport of the client: a socket connected to the
 * server and, for TCP, its stream buffers (stream.h). tport.c owns the
 * socket calls: open (UDP connected, TCP connecting in the background),
 * close, datagrams in and out.
 *
 * A failure seen while the session is calling out (output, input) is not
 * acted on at once: it is recorded in fail_code/fail (the first one wins)
 * and the client closes the transport when the session call has returned
 * (client.c, settle).
 */
#ifndef MOONGATE_CLIENT_TPORT_H
#define MOONGATE_CLIENT_TPORT_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

struct tport {
	int fd;               /* -1: closed */
	int tcp;
	int have_addr;        /* the url named this transport */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int fail_code;        /* a failure seen inside a callback */
	char fail[64];
	/* TCP: bytes read, frames not yet complete; bytes not yet written */
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *wbuf;
	size_t woff, wlen, wcap;
};

/* Called per packet read (the session opens it in place); returns
 * nonzero to stop reading (the session has ended). */
typedef int tport_input_fn(void *user, uint8_t *pkt, size_t len);

/* Closed, no address, no buffers. */
void tport_init(struct tport *t, int tcp);
/* Close the socket and drop what its buffers held (they stay allocated). */
void tport_close(struct tport *t);
/* tport_close, and free the buffers. */
void tport_free(struct tport *t);
/* A new socket for t->addr, connecting (TCP: in the background). 0, or -1
 * with err filled (err may be NULL). */
int tport_open(struct tport *t, char *err, size_t errlen);

/* A new socket opened while the old one still holds its port, so that
 * the port differs (a change of network, as the server sees it); the old
 * one is closed after. 0, or -1 with errno. */
int tport_reopen(struct tport *t);

/* Record a failure of t; the first one wins. */
void tport_fail(struct tport *t, int code, const char *reason);
/* The same for an errno of send or recv. */
void tport_fail_errno(struct tport *t, int err);

/* UDP: one datagram; one the kernel refuses is dropped (KCP and the
 * handshake resend). */
void tport_send_datagram(struct tport *t, const uint8_t *pkt, size_t len);
/* UDP: read up to max datagrams, each to input, until the socket is empty
 * or input says stop. dgram_max: the largest packet the session may get
 * (its mtu); up to 2048, 16 are read per system call (recvmmsg). */
void tport_recv_datagrams(struct tport *t, int max, int dgram_max,
                          tport_input_fn *input, void *user);

#endif
