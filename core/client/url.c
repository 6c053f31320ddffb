/*
 * url.c - parse and resolve the client's url (url.h).
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include <sys/socket.h>

#include "url.h"

/* One "udp://host:port" or "tcp://[v6]:port" (len bytes of it) into t. */
static int
resolve(struct tport *t, const char *url, size_t len, char *err, size_t errlen)
{
	char u[300];
	if (len >= sizeof u) {
		snprintf(err, errlen, "url too long");
		return -1;
	}
	memcpy(u, url, len);
	u[len] = 0;
	if (!strncmp(u, "udp://", 6))
		t->tcp = 0;
	else if (!strncmp(u, "tcp://", 6))
		t->tcp = 1;
	else {
		snprintf(err, errlen,
		         "url must start with udp://, tcp:// or auto://: %s", u);
		return -1;
	}
	char host[256];
	const char *h = u + 6, *port;
	size_t hl;
	if (*h == '[') {
		const char *e = strchr(h, ']');
		if (!e || e[1] != ':') {
			snprintf(err, errlen, "bad url: %s", u);
			return -1;
		}
		hl = (size_t)(e - h - 1);
		h++;
		port = e + 2;
	} else {
		const char *e = strrchr(h, ':');
		if (!e) {
			snprintf(err, errlen, "url needs a port: %s", u);
			return -1;
		}
		hl = (size_t)(e - h);
		port = e + 1;
	}
	if (hl == 0 || hl >= sizeof host || !*port) {
		snprintf(err, errlen, "bad url: %s", u);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	                          .ai_socktype = t->tcp ? SOCK_STREAM : SOCK_DGRAM };
	struct addrinfo *ai;
	int r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "%s: %s", u, gai_strerror(r));
		return -1;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addrlen = ai->ai_addrlen;
	t->have_addr = 1;
	freeaddrinfo(ai);
	return 0;
}

int
url_parse(const char *url, struct tport *udp, struct tport *tcp, char *err,
          size_t errlen)
{
	char one[300];
	if (!strncmp(url, "auto://", 7)) {
		snprintf(one, sizeof one, "udp://%s", url + 7);
		if (resolve(udp, one, strlen(one), err, errlen) < 0)
			return -1;
		snprintf(one, sizeof one, "tcp://%s", url + 7);
		if (resolve(tcp, one, strlen(one), err, errlen) < 0)
			return -1;
		return URL_AUTO;
	}
	for (const char *p = url; *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		struct tport t;
		tport_init(&t, 0);
		if (resolve(&t, p, n, err, errlen) < 0)
			return -1;
		struct tport *dst = t.tcp ? tcp : udp;
		if (dst->have_addr) {
			snprintf(err, errlen, "two %s urls in %s", t.tcp ? "tcp" : "udp",
			         url);
			return -1;
		}
		dst->addr = t.addr;
		dst->addrlen = t.addrlen;
		dst->have_addr = 1;
		p = comma ? comma + 1 : p + n;
	}
	if (udp->have_addr && tcp->have_addr)
		return URL_AUTO;
	if (tcp->have_addr)
		return URL_TCP_ONLY;
	if (udp->have_addr)
		return URL_UDP_ONLY;
	snprintf(err, errlen, "empty url");
	return -1;
}
