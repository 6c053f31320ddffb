/*
 * net_src.c - per-source caps on framed TCP connections (see net.h,
 * max_conns_per_addr): how many connections one source holds open, so
 * that one address cannot fill max_conns and lock everybody else out (the
 * idea of nginx's limit_conn).
 *
 * A source is an IPv4 address, or an IPv6 /64 (one subscriber usually
 * gets a whole /64, so counting exact IPv6 addresses would let one host
 * walk around the cap); an IPv4 client of a dual-stack listener
 * (::ffff:a.b.c.d) counts as its IPv4 address. The map is keyed by a
 * keyed hash of the source (an attacker chooses addresses, not where they
 * land) and holds one entry per source with a connection open, so it is
 * bounded by max_conns.
 *
 * Refusals are logged at most once per NET_REFUSE_LOG_S seconds, with the
 * count of those not logged since, so a flood cannot flood the log too.
 */
#include "net_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "log.h"

#define NET_REFUSE_LOG_S 10

void
net_src_init(net_t *n)
{
	map_init(&n->src);
	if (sodium_init() < 0) /* no randomness: still a hash, not a keyed one */
		memset(n->src_hashkey, 0x5a, sizeof n->src_hashkey);
	else
		randombytes_buf(n->src_hashkey, sizeof n->src_hashkey);
}

void
net_src_free(net_t *n)
{
	map_clear(&n->src);
}

/* The source bytes of an address: a tag and the IPv4 address or the
 * IPv6 /64. */
static size_t
src_bytes(const struct sockaddr_storage *a, uint8_t out[9])
{
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)a;
		out[0] = 4;
		memcpy(out + 1, &in->sin_addr, 4);
		return 5;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)a;
		const uint8_t *b = in6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			out[0] = 4;
			memcpy(out + 1, b + 12, 4);
			return 5;
		}
		out[0] = 6;
		memcpy(out + 1, b, 8);
		return 9;
	}
	out[0] = 0; /* another family: all one source */
	return 1;
}

uint64_t
net_src_key(const net_t *n, const struct sockaddr_storage *a)
{
	uint8_t b[9], h[crypto_shorthash_BYTES];
	uint64_t v;
	crypto_shorthash(h, b, src_bytes(a, b), n->src_hashkey);
	memcpy(&v, h, 8);
	return v ? v : 1;
}

/* "203.0.113.7" or "2001:db8:1:2::/64" */
const char *
net_src_text(const struct sockaddr_storage *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (a->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, ip,
		          sizeof ip);
		snprintf(buf, len, "%s", ip);
	} else if (a->ss_family == AF_INET6) {
		struct in6_addr x = ((const struct sockaddr_in6 *)a)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&x)) {
			inet_ntop(AF_INET, x.s6_addr + 12, ip, sizeof ip);
			snprintf(buf, len, "%s", ip);
		} else {
			memset(x.s6_addr + 8, 0, 8);
			inet_ntop(AF_INET6, &x, ip, sizeof ip);
			snprintf(buf, len, "%s/64", ip);
		}
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

/* Connections open from source key. */
static uint32_t
src_count(const net_t *n, uint64_t key)
{
	return (uint32_t)(uintptr_t)map_get(&n->src, key);
}

int
net_src_take(net_t *n, uint64_t key)
{
	uint32_t k = src_count(n, key);
	if (n->cfg.max_conns_per_addr > 0 &&
	    k >= (uint32_t)n->cfg.max_conns_per_addr)
		return -1;
	/* the count is the value: never 0 (NULL) while the entry exists */
	return map_put(&n->src, key, (void *)(uintptr_t)(k + 1));
}

void
net_src_give(net_t *n, uint64_t key)
{
	uint32_t k = src_count(n, key);
	if (k <= 1)
		map_del(&n->src, key);
	else
		map_replace(&n->src, key, (void *)(uintptr_t)(k - 1));
}

void
net_src_refused(net_t *n, const struct sockaddr_storage *a, const char *why)
{
	uint64_t now = net_now(n);
	if (n->refuse_log_us && now - n->refuse_log_us <
	                        (uint64_t)NET_REFUSE_LOG_S * 1000000u) {
		n->refuse_quiet++;
		return;
	}
	char src[64];
	net_src_text(a, src, sizeof src);
	if (n->refuse_quiet)
		log_warn("net: tcp connection from %s refused: %s (and %llu more "
		         "refused in the last %d s)", src, why,
		         (unsigned long long)n->refuse_quiet, NET_REFUSE_LOG_S);
	else
		log_warn("net: tcp connection from %s refused: %s", src, why);
	n->refuse_log_us = now ? now : 1;
	n->refuse_quiet = 0;
}
