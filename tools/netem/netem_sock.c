/*
 * netem_sock.c - what every part of moongate-netem uses: the clock, the
 * log line, numeric addresses and listening sockets (netem.h).
 */
#include "netem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double
mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
note(const char *fmt, ...)
{
	va_list ap;
	fputs("moongate-netem: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void
close_rst(int fd)
{
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

void
io_want(ev_io *w, int on)
{
	if (on)
		ev_io_start(G.loop, w);
	else
		ev_io_stop(G.loop, w);
}

int
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

int
addr_port(const struct addr *a)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* "127.0.0.1 7777" */
const char *
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
size_t
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
int
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

