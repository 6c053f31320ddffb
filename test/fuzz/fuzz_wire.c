/*
 * fuzz_wire.c - libFuzzer target: every decoder of core/proto/wire.c on untrusted
 * bytes, and the replay window driven by them.
 *
 * Built two ways (see CMakeLists.txt):
 *  - with clang -fsanitize=fuzzer,address,undefined (MOONGATE_FUZZ);
 *  - with -DFUZZ_REPLAY_MAIN as a plain program (ctest fuzz_wire_corpus)
 *    that runs every file of test/fuzz/corpus_wire, plus deterministic
 *    mutations of each. `fuzz_wire_replay --seeds DIR` writes that corpus.
 *
 * Input format (every byte string is valid input):
 *   byte 0 bit 0 = 0: packet mode. The rest is one packet, given to
 *     wire_peek, wire_open (FUZZ_KEY, encrypted and authenticated-only, on
 *     exact-size copies), wire_hello_decode, wire_challenge_decode,
 *     wire_welcome_peek, wire_welcome_open (FUZZ_KEY), wire_refuse_decode.
 *   byte 0 bit 0 = 1: replay mode. The rest is a list of pn operations on
 *     one window, each checked against a naive model:
 *       b < 0x80           pn = top - b (inside the window, or top itself)
 *       0x80 <= b < 0xc0   pn = top + 1 + (b & 0x3f)
 *       0xc0 <= b < 0xff   then x: pn = top + ((b & 0x3f) << 8 | x) (jumps)
 *       b == 0xff          then u32 little-endian: pn as given (0, 2^32-1)
 *
 * Checks (abort() on failure, so the fuzzer saves the input):
 *  - each function returns 0/a length or one of its documented errors;
 *  - a failed wire_open leaves the packet as it was; a failed decoder
 *    leaves its outputs as they were;
 *  - whatever decodes re-encodes to the same bytes (for wire_open: sealing
 *    the opened body again gives the packet), and wire_welcome_open
 *    succeeds only where wire_welcome_peek does;
 *  - wire_replay_check agrees with the model; accepting a pn that check
 *    refused changes nothing; an accepted pn is refused after.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define MAXPKT 70000

/* Where we are, printed when a check fails (set by the replay driver). */
static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_wire: check failed: %s "      \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

static uint8_t fuzz_key[WIRE_KEY];

static void
init_once(void)
{
	static int done;
	int i;

	if (done)
		return;
	CHECK(wire_init() == 0);
	for (i = 0; i < WIRE_KEY; i++)
		fuzz_key[i] = (uint8_t)(0xa0 + i);
	done = 1;
}

static int
is_err(int r)
{
	CHECK(wire_strerror(r) != NULL);
	return r == WIRE_ETRUNC || r == WIRE_ETYPE || r == WIRE_EVERSION ||
	       r == WIRE_EAUTH || r == WIRE_EINVAL;
}

static void
session_packet(const uint8_t *pkt, size_t len)
{
	static uint8_t again[MAXPKT + 64];
	struct wire_hdr h;
	int r, enc;

	r = wire_peek(pkt, len, &h);
	CHECK(r == 0 || r == WIRE_ETRUNC || r == WIRE_ETYPE);
	if (r == 0) {
		CHECK(len >= WIRE_OVERHEAD);
		CHECK(h.type >= WIRE_KCP && h.type <= WIRE_PATH_RESPONSE);
		CHECK(h.sid == wire_get32(pkt + 1) && h.pn == wire_get32(pkt + 5));
	}
	for (enc = 0; enc < 2; enc++) {
		uint8_t *cp = malloc(len ? len : 1), *body = NULL;
		int n;

		CHECK(cp != NULL);
		if (len)
			memcpy(cp, pkt, len);
		r = wire_open(cp, len, fuzz_key, enc, &h, &body);
		if (r < 0) {
			CHECK(r == WIRE_ETRUNC || r == WIRE_ETYPE ||
			      r == WIRE_EAUTH);
			/* the header stays; an encrypted body may be cleared */
			size_t keep = enc && r == WIRE_EAUTH && len >= WIRE_OVERHEAD
			              ? WIRE_HDR : len;
			CHECK(keep == 0 || memcmp(cp, pkt, keep) == 0);
			free(cp);
			continue;
		}
		CHECK((size_t)r + WIRE_OVERHEAD == len);
		CHECK(body == cp + WIRE_HDR && h.pn != 0);
		n = wire_seal(again, sizeof again, h.type, h.sid, h.pn, body,
		              (size_t)r, fuzz_key, enc);
		CHECK(n >= 0 && (size_t)n == len);
		CHECK(memcmp(again, pkt, len) == 0);
		free(cp);
	}
}

static void
handshake_packet(const uint8_t *pkt, size_t len)
{
	static uint8_t again[MAXPKT + 64];
	struct wire_hello hl, hs;
	struct wire_welcome w, ws;
	struct wire_refuse rf, rs;
	uint32_t stamp = 0x5eed;
	uint8_t mac[WIRE_MAC], macs[WIRE_MAC];
	int r, rp;

	memset(&hs, 0x5a, sizeof hs);
	hl = hs;
	r = wire_hello_decode(pkt, len, &hl);
	CHECK(r == 0 || (is_err(r) && r != WIRE_EAUTH));
	if (r == 0) {
		CHECK((hl.version == WIRE_V1 || hl.version == WIRE_V2) &&
		      hl.hello_len <= WIRE_HELLO_MAX);
		CHECK(wire_hello_encode(again, sizeof again, &hl) == (int)len);
		CHECK(memcmp(again, pkt, len) == 0);
	} else if (r == WIRE_EVERSION) {
		CHECK(hl.version != WIRE_V1 && hl.version != WIRE_V2 &&
		      hl.version == pkt[1]);
		CHECK(memcmp(hl.pub, pkt + 2, WIRE_PUB) == 0);
	} else {
		CHECK(memcmp(&hl, &hs, sizeof hl) == 0);
	}

	memset(macs, 0x5a, sizeof macs);
	memcpy(mac, macs, sizeof mac);
	r = wire_challenge_decode(pkt, len, &stamp, mac);
	CHECK(r == 0 || (is_err(r) && r != WIRE_EAUTH));
	if (r == 0) {
		CHECK(wire_challenge_encode(again, sizeof again, stamp, mac) ==
		      (int)len);
		CHECK(memcmp(again, pkt, len) == 0);
	} else {
		CHECK(stamp == 0x5eed && memcmp(mac, macs, sizeof mac) == 0);
	}

	memset(&ws, 0x5a, sizeof ws);
	w = ws;
	rp = wire_welcome_peek(pkt, len, &w);
	CHECK(rp == 0 || rp == WIRE_ETRUNC || rp == WIRE_ETYPE ||
	      rp == WIRE_EINVAL);
	w = ws;
	r = wire_welcome_open(pkt, len, &w, fuzz_key);
	CHECK(r == 0 || (is_err(r) && r != WIRE_EVERSION));
	CHECK(r == rp || (rp == 0 && r == WIRE_EAUTH));
	if (r == 0) {
		CHECK(wire_welcome_encode(again, sizeof again, &w, fuzz_key) ==
		      (int)len);
		CHECK(memcmp(again, pkt, len) == 0);
	} else {
		CHECK(memcmp(&w, &ws, sizeof w) == 0);
	}

	memset(&rs, 0x5a, sizeof rs);
	rf = rs;
	r = wire_refuse_decode(pkt, len, &rf);
	CHECK(r == 0 || (is_err(r) && r != WIRE_EAUTH));
	if (r == 0) {
		CHECK(wire_refuse_encode(again, sizeof again, &rf) == (int)len);
		CHECK(memcmp(again, pkt, len) == 0);
	} else {
		CHECK(memcmp(&rf, &rs, sizeof rf) == 0);
	}
}

static void
replay_ops(const uint8_t *p, size_t n)
{
	struct wire_replay r, before;
	uint32_t seen[WIRE_REPLAY_WINDOW + 1], top = 0;
	int nseen = 0, k;
	size_t i = 0;

	memset(&r, 0, sizeof r);
	while (i < n) {
		uint8_t b = p[i++];
		uint32_t pn;
		int want, got, old = 0;

		if (b < 0x80) {
			pn = top - b;
		} else if (b < 0xc0) {
			pn = top + 1 + (b & 0x3fu);
		} else if (b < 0xff) {
			uint32_t x = i < n ? p[i++] : 0;
			pn = top + ((uint32_t)(b & 0x3f) << 8 | x);
		} else {
			uint8_t le[4] = { 0 };
			size_t m = n - i < 4 ? n - i : 4;
			memcpy(le, p + i, m);
			i += m;
			pn = wire_get32(le);
		}
		for (k = 0; k < nseen; k++)
			if (seen[k] == pn)
				old = 1;
		want = pn == 0 || old || (pn <= top && top - pn >= 128) ?
		       WIRE_EREPLAY : 0;
		got = wire_replay_check(&r, pn);
		CHECK(got == want);
		if (got != 0) {
			before = r;
			wire_replay_accept(&r, pn);
			CHECK(memcmp(&r, &before, sizeof r) == 0);
			continue;
		}
		wire_replay_accept(&r, pn);
		CHECK(wire_replay_check(&r, pn) == WIRE_EREPLAY);
		if (pn > top)
			top = pn;
		CHECK(r.top == top);
		seen[nseen++] = pn;
		for (k = 0; k < nseen;) {
			if (top - seen[k] >= WIRE_REPLAY_WINDOW)
				seen[k] = seen[--nseen];
			else
				k++;
		}
		CHECK(nseen <= WIRE_REPLAY_WINDOW);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	if (size < 1 || size - 1 > MAXPKT)
		return 0;
	if (data[0] & 1) {
		replay_ops(data + 1, size - 1);
		return 0;
	}
	session_packet(data + 1, size - 1);
	handshake_packet(data + 1, size - 1);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
/*
 * Replay driver (test/fuzz/replay.h): fuzz_wire_replay [--mutations N]
 * FILE|DIR...; fuzz_wire_replay --seeds DIR writes the seed corpus into
 * DIR. Most mutations keep the mode byte: the seeds' mode is the point.
 */
#define FUZZ_FIXUP(mut, buf, m) do { if (((m) & 7) != 0) (mut)[0] = (buf)[0]; } while (0)
#include "replay.h"

/* ---- the seed corpus: one valid packet of each type, two replay runs ---- */

static void
put_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p,
         size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(&mode, 1, 1, f) != 1 ||
	    (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void
seal_seed(const char *dir, const char *name, uint8_t type, uint32_t pn,
          const uint8_t *body, size_t blen, int enc)
{
	uint8_t pkt[256];
	int n = wire_seal(pkt, sizeof pkt, type, 0x01020304, pn, body, blen,
	                  fuzz_key, enc);
	CHECK(n > 0);
	put_seed(dir, name, 0, pkt, (size_t)n);
}

static void
write_seeds(const char *dir)
{
	static const uint8_t push[29] = {
		0x04, 0x03, 0x02, 0x01, 0x51, 0x00, 0x80, 0x00, 0xe8, 0x03,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x05, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
	};
	static const uint8_t inorder[] = { 0x80, 0x80, 0x80, 0x00, 0x01, 0x80,
	                                   0x85, 0x03, 0x02, 0x01, 0x04 };
	static const uint8_t mixed[] = { 0xc1, 0x00, 0x05, 0x7f, 0x40, 0x3f,
	                                 0x40, 0x80, 0xff, 0x00, 0x00, 0x00,
	                                 0x00, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                 0x01, 0x7f, 0xc0, 0x80, 0x7e };
	uint8_t pkt[256], body[32], mac[WIRE_MAC];
	struct wire_hello h;
	struct wire_welcome w;
	struct wire_refuse rf;
	int n;

	init_once();
	memset(&h, 0, sizeof h);
	h.type = WIRE_HELLO;
	memset(h.pub, 0x11, WIRE_PUB);
	h.hello = (const uint8_t *)"moongate";
	h.hello_len = 8;
	n = wire_hello_encode(pkt, sizeof pkt, &h);
	put_seed(dir, "seed_hello", 0, pkt, (size_t)n);
	memset(mac, 0x22, sizeof mac);
	n = wire_challenge_encode(pkt, sizeof pkt, 123456, mac);
	put_seed(dir, "seed_challenge", 0, pkt, (size_t)n);
	h.type = WIRE_INIT;
	h.stamp = 123456;
	memcpy(h.mac, mac, WIRE_MAC);
	n = wire_hello_encode(pkt, sizeof pkt, &h);
	put_seed(dir, "seed_init", 0, pkt, (size_t)n);
	{	/* v2: the sealed hello, 8 bytes and a tag */
		static const uint8_t sealed[8 + WIRE_TAG] = "moongate-and-its-tag....";
		h.version = WIRE_V2;
		h.hello = sealed;
		n = wire_hello_encode(pkt, sizeof pkt, &h);
		put_seed(dir, "seed_init_v2", 0, pkt, (size_t)n);
		h.type = WIRE_HELLO;
		n = wire_hello_encode(pkt, sizeof pkt, &h);
		put_seed(dir, "seed_hello_v2", 0, pkt, (size_t)n);
		h.type = WIRE_INIT;
		h.version = 0;
		h.hello = (const uint8_t *)"moongate";
	}
	memset(&w, 0, sizeof w);
	w.sid = 0x01020304;
	memset(w.pub, 0x33, WIRE_PUB);
	w.server_time_us = 1000000000;
	w.heartbeat_ms = 1000;
	w.timeout_ms = 10000;
	w.mtu = 1200;
	w.flags = WIRE_F_ENCRYPT;
	n = wire_welcome_encode(pkt, sizeof pkt, &w, fuzz_key);
	put_seed(dir, "seed_welcome", 0, pkt, (size_t)n);
	memset(&rf, 0, sizeof rf);
	memset(rf.echo, 0x11, sizeof rf.echo);
	rf.code = 4;
	rf.reason = "full";
	rf.reason_len = 4;
	n = wire_refuse_encode(pkt, sizeof pkt, &rf);
	put_seed(dir, "seed_refuse", 0, pkt, (size_t)n);

	seal_seed(dir, "seed_kcp", WIRE_KCP, 1, push, sizeof push, 1);
	seal_seed(dir, "seed_kcp_auth", WIRE_KCP, 2, push, sizeof push, 0);
	wire_put32(body, 1);
	memcpy(body + 4, "pos", 3);
	seal_seed(dir, "seed_dgram", WIRE_DGRAM, 3, body, 7, 1);
	wire_put64(body + 4, 1000000);
	seal_seed(dir, "seed_ping", WIRE_PING, 4, body, 12, 1);
	wire_put64(body + 12, 1000020000);
	seal_seed(dir, "seed_pong", WIRE_PONG, 5, body, 20, 0);
	wire_put16(body, 0);
	body[2] = 3;
	memcpy(body + 3, "bye", 3);
	seal_seed(dir, "seed_close", WIRE_CLOSE, 6, body, 6, 1);
	seal_seed(dir, "seed_close_ack", WIRE_CLOSE_ACK, 7, NULL, 0, 1);
	memcpy(body, "\x01\x02\x03\x04\x05\x06\x07\x08", WIRE_TOKEN);
	seal_seed(dir, "seed_path_challenge", WIRE_PATH_CHALLENGE, 8, body,
	          WIRE_TOKEN, 1);
	seal_seed(dir, "seed_path_response", WIRE_PATH_RESPONSE, 9, body,
	          WIRE_TOKEN, 1);

	put_seed(dir, "seed_replay_inorder", 1, inorder, sizeof inorder);
	put_seed(dir, "seed_replay_mixed", 1, mixed, sizeof mixed);
}

int
main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds")) {
		write_seeds(argv[2]);
		return 0;
	}
	return fuzz_replay_main(argc, argv, "fuzz_wire");
}
#endif
