/*
 * fuzz_url.c - libFuzzer target: the client's url parser (core/client/url.c,
 * url_parse) on untrusted text.
 *
 * Built two ways (see CMakeLists.txt): with clang -fsanitize=fuzzer,
 * address,undefined (MOONGATE_FUZZ), and with -DFUZZ_REPLAY_MAIN as a plain
 * program (ctest fuzz_url_corpus) that replays test/fuzz/corpus_url.
 *
 * url.c is compiled into this file with getaddrinfo redirected to a
 * numeric-only lookup (AI_NUMERICHOST | AI_NUMERICSERV): a fuzzed host
 * name must never reach a resolver (slow, and traffic off this machine),
 * and the parsing around the lookup is what is under test.
 *
 * Input: the url (up to the first NUL byte).
 *
 * Checks (abort() on failure):
 *  - url_parse returns URL_AUTO, URL_UDP_ONLY, URL_TCP_ONLY or -1;
 *  - -1 comes with a non-empty, NUL-terminated err;
 *  - on success the transports named have an address of a known family
 *    that fits, and the mode agrees with which ones are set.
 */
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

static int fuzz_getaddrinfo(const char *node, const char *service,
                            const struct addrinfo *hints,
                            struct addrinfo **res);
#define getaddrinfo fuzz_getaddrinfo
#include "url.c"
#undef getaddrinfo
#include "tport.c"

static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_url: check failed: %s "       \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

static int
fuzz_getaddrinfo(const char *node, const char *service,
                 const struct addrinfo *hints, struct addrinfo **res)
{
	struct addrinfo h = *hints;
	h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
	return getaddrinfo(node, service, &h, res);
}

static void
check_tport(const struct tport *t)
{
	if (!t->have_addr)
		return;
	CHECK(t->addrlen > 0 && t->addrlen <= sizeof t->addr);
	CHECK(t->addr.ss_family == AF_INET || t->addr.ss_family == AF_INET6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char url[1024], err[256];
	struct tport udp, tcp;
	size_t n = size < sizeof url - 1 ? size : sizeof url - 1;

	memcpy(url, data, n);
	url[n] = 0;
	tport_init(&udp, 0);
	tport_init(&tcp, 1);
	memset(err, 0x5a, sizeof err);
	err[sizeof err - 1] = 0;
	err[0] = 0;
	uint8_t key[32];
	int has_key = 0, worker = -2;
	int r = url_parse(url, &udp, &tcp, key, &has_key, &worker, err, sizeof err);
	if (r < 0) {
		CHECK(r == -1);
		CHECK(err[0] != 0 && memchr(err, 0, sizeof err) != NULL);
		return 0;
	}
	CHECK(r == URL_AUTO || r == URL_UDP_ONLY || r == URL_TCP_ONLY);
	CHECK(has_key == 0 || has_key == 1);
	/* a key is only ever "key=" and 64 hex digits; a hint 0..126 */
	if (has_key)
		CHECK(strstr(url, "key=") != NULL);
	CHECK(worker >= -1 && worker <= 126);
	if (worker >= 0)
		CHECK(strstr(url, "worker=") != NULL);
	check_tport(&udp);
	check_tport(&tcp);
	if (r == URL_AUTO)
		CHECK(udp.have_addr && tcp.have_addr);
	else if (r == URL_UDP_ONLY)
		CHECK(udp.have_addr && !tcp.have_addr);
	else
		CHECK(tcp.have_addr && !udp.have_addr);
	CHECK(udp.fd == -1 && tcp.fd == -1);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
/* Replay driver (test/fuzz/replay.h): fuzz_url_replay [--mutations N]
 * FILE|DIR... */
#include "replay.h"

int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, "fuzz_url");
}
#endif
