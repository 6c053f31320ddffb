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
url_key(const char *hex, size_t len, uint8_t key[32], char *err, size_t errlen)
{
	size_t i;
	if (len != 64) {
		snprintf(err, errlen, "server key: expected 64 hex digits, got %zu "
		         "characters", len);
		return -1;
	}
	for (i = 0; i < 64; i++) {
		char c = hex[i];
		int v = c >= '0' && c <= '9' ? c - '0'
		      : c >= 'a' && c <= 'f' ? c - 'a' + 10
		      : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (v < 0) {
			snprintf(err, errlen, "server key: '%c' is not a hex digit", c);
			return -1;
		}
		if (i % 2 == 0)
			key[i / 2] = (uint8_t)(v << 4);
		else
			key[i / 2] |= (uint8_t)v;
	}
	return 0;
}

int
url_parse(const char *full, struct tport *udp, struct tport *tcp,
          uint8_t key[32], int *has_key, int *worker, char *err,
          size_t errlen)
{
	char one[300], url[300];
	const char *q = strchr(full, '?');
	size_t ul = q ? (size_t)(q - full) : strlen(full);
	*has_key = 0;
	*worker = -1;
	if (ul >= sizeof url) {
		snprintf(err, errlen, "url too long");
		return -1;
	}
	memcpy(url, full, ul);
	url[ul] = 0;
	for (const char *p = q ? q + 1 : NULL; p;) {
		const char *amp = strchr(p, '&');
		size_t pl = amp ? (size_t)(amp - p) : strlen(p);
		if (pl > 4 && !strncmp(p, "key=", 4) && !*has_key) {
			if (url_key(p + 4, pl - 4, key, err, errlen) < 0)
				return -1;
			*has_key = 1;
		} else if (pl > 7 && pl <= 10 && !strncmp(p, "worker=", 7) &&
		           *worker < 0) {
			int v = 0;
			for (size_t i = 7; i < pl && v >= 0; i++)
				v = p[i] >= '0' && p[i] <= '9' ? v * 10 + (p[i] - '0') : -1;
			if (v < 0 || v > 126) {
				snprintf(err, errlen, "url: worker= wants 0..126: %.*s",
				         (int)pl, p);
				return -1;
			}
			*worker = v;
		} else {
			snprintf(err, errlen, "url: unknown query '%.*s' "
			         "(key=HEX, worker=N, each once)", (int)(pl < 80 ? pl : 80), p);
			return -1;
		}
		p = amp ? amp + 1 : NULL;
	}
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
