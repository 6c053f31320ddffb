/*
 * fuzz_frame.c - libFuzzer target: the TCP framing (core/proto/frame.h,
 * frame_next) and the client's TCP stream (core/client/stream.c) on an
 * untrusted byte stream, over a Unix socket pair (no network).
 *
 * The server's cutter (core/server/net_tcp.c) runs the same frame_next
 * inside its libev read callback on a net_t; it is not reached here (it
 * needs a loop and a listener), frame_next is.
 *
 * Built two ways (see CMakeLists.txt): with clang -fsanitize=fuzzer,
 * address,undefined (MOONGATE_FUZZ), and with -DFUZZ_REPLAY_MAIN as a
 * plain program (ctest fuzz_frame_corpus) that replays test/fuzz/
 * corpus_frame. `fuzz_frame_replay --seeds DIR` writes that corpus.
 *
 * Input:
 *   byte 0  frame_max: 1, 64, 1200 or 65535 (low 2 bits); bit 2: the
 *           bytes fed to frame_next alone are the whole rest (no ops)
 *   then operations; an op byte's low 2 bits choose, a = op >> 2:
 *     0 FEED  u16 LE n, then n bytes (cut at the end): written to the peer
 *             end of the socket pair (the server's side of the stream)
 *     1 READ  stream_read(t, 1 + (a & 3), frame_max, ...); the input
 *             callback says stop after the (a >> 2)-th packet (0: never)
 *     2 SEND  stream_send of 1 + (u16 LE & 4095) bytes (taken from the
 *             input, zero-padded) with max (a + 1) * 512
 *     3 DRAIN a & 1: flush our write buffer; a & 2: read what the peer got
 *             and check it; a & 4: the peer shuts its side (EOF)
 *
 * Checks (abort() on failure):
 *  - frame_next on every prefix of the fed stream agrees with a model;
 *  - every packet stream_read hands on is the model's next frame, in
 *    order, and no more; a failure is recorded only for a bad header
 *    (empty, or above frame_max), or the peer's EOF;
 *  - what stream_send put on the wire is exactly the frames of the packets
 *    it accepted (0), in order; after a -1 nothing more is sent.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "frame.h"
#include "session.h"
#include "stream.h"
#include "tport.h"

static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_frame: check failed: %s "     \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

#define STREAM_MAX (1 << 17)

static const size_t frame_maxes[4] = { 1, 64, 1200, 65535 };

/* what the peer wrote (the stream t reads) and where the model is in it */
static uint8_t fed[STREAM_MAX];
static size_t nfed, mpos;
/* frames stream_send accepted, as the peer must see them */
static uint8_t want[STREAM_MAX];
static size_t nwant, nseen;
static uint8_t got[STREAM_MAX];

static struct {
	size_t frame_max;
	int stop_after, packets;
} rd;

/* frame_next against a direct reading of the header */
static void
check_frame_next(const uint8_t *p, size_t len, size_t max)
{
	size_t plen = 12345;
	long r = frame_next(p, len, max, &plen);
	if (len < 2) {
		CHECK(r == 0 && plen == 0);
		return;
	}
	size_t n = (size_t)p[0] | (size_t)p[1] << 8;
	if (n == 0) {
		CHECK(r == FRAME_EEMPTY && plen == 0);
		CHECK(!strcmp(frame_error(r), "empty frame"));
	} else if (n > max) {
		CHECK(r == FRAME_ETOOBIG && plen == 0);
		CHECK(!strcmp(frame_error(r), "frame too large"));
	} else if (len - 2 >= n) {
		CHECK(r == (long)(n + 2) && plen == n);
	} else {
		CHECK(r == 0 && plen == n);
	}
}

static int
on_packet(void *user, uint8_t *pkt, size_t len)
{
	(void)user;
	size_t plen;
	long r = frame_next(fed + mpos, nfed - mpos, rd.frame_max, &plen);
	CHECK(r > 0 && plen == len);
	CHECK(pkt != NULL && memcmp(pkt, fed + mpos + FRAME_HEADER, len) == 0);
	mpos += (size_t)r;
	rd.packets++;
	return rd.stop_after && rd.packets >= rd.stop_after;
}

/* Read what the peer end received from stream_send and check it. */
static void
peer_drain(int fd)
{
	for (;;) {
		ssize_t n = recv(fd, got + nseen, sizeof got - nseen, 0);
		if (n <= 0)
			break;
		CHECK(nseen + (size_t)n <= nwant);
		CHECK(memcmp(got + nseen, want + nseen, (size_t)n) == 0);
		nseen += (size_t)n;
	}
}

static void
ops(const uint8_t *p, size_t n, size_t frame_max)
{
	int sv[2];
	struct tport t;
	int send_dead = 0, eof = 0, stopped = 0;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	tport_init(&t, 1);
	t.fd = sv[0];
	nfed = mpos = nwant = nseen = 0;
	rd.frame_max = frame_max;

	size_t i = 0;
	while (i < n) {
		uint8_t op = p[i++], a = op >> 2;
		switch (op & 3) {
		case 0: { /* FEED */
			size_t len = 0;
			if (i < n)
				len = p[i++];
			if (i < n)
				len |= (size_t)p[i++] << 8;
			if (len > n - i)
				len = n - i;
			if (eof || nfed + len > sizeof fed)
				return (void)(tport_free(&t), close(sv[1]));
			ssize_t w = send(sv[1], p + i, len, MSG_NOSIGNAL);
			/* the socket buffer holds far more than one input */
			CHECK(w == (ssize_t)len || (len == 0 && w == 0));
			memcpy(fed + nfed, p + i, len);
			for (size_t k = nfed; k <= nfed + len && k < nfed + 4; k++)
				check_frame_next(fed + mpos, k - mpos, frame_max);
			nfed += len;
			i += len;
			break;
		}
		case 1: { /* READ */
			if (t.fd < 0 || t.fail_code || stopped)
				break;
			rd.stop_after = a >> 2;
			rd.packets = 0;
			stream_read(&t, 1 + (a & 3), frame_max, on_packet, NULL);
			/* the client ends the transport when input says stop */
			stopped = rd.stop_after && rd.packets >= rd.stop_after;
			if (t.fail_code) {
				size_t plen;
				long r = frame_next(fed + mpos, nfed - mpos,
				                    frame_max, &plen);
				if (r < 0) {
					CHECK(t.fail_code == SESSION_CLOSE_PROTOCOL);
					CHECK(!strcmp(t.fail, frame_error(r)));
				} else {
					/* only the peer's EOF ends a good stream */
					CHECK(eof && r == 0);
					CHECK(t.fail_code == SESSION_CLOSE_DISCONNECT);
				}
			} else if (!stopped) {
				/* no bad header was read past */
				size_t plen;
				long r = frame_next(fed + mpos, nfed - mpos,
				                    frame_max, &plen);
				CHECK(r >= 0 || t.rlen < FRAME_HEADER);
				CHECK(t.rlen <= nfed - mpos);
			}
			break;
		}
		case 2: { /* SEND */
			size_t len = 0;
			if (i < n)
				len = p[i++];
			if (i < n)
				len |= (size_t)p[i++] << 8;
			len = 1 + (len & 4095);
			uint8_t pkt[4096];
			size_t take = len < n - i ? len : n - i;
			memset(pkt, 0, len);
			memcpy(pkt, p + i, take);
			i += take;
			if (send_dead || t.fd < 0 ||
			    nwant + FRAME_HEADER + len > sizeof want)
				break;
			size_t before = t.wlen - t.woff;
			int fail = t.fail_code;
			int r = stream_send(&t, pkt, len, (size_t)(a + 1) * 512);
			CHECK(r == 0 || r == -1);
			CHECK(t.fail_code == fail); /* the peer never goes away */
			if (r == 0) {
				frame_header(want + nwant, len);
				memcpy(want + nwant + FRAME_HEADER, pkt, len);
				nwant += FRAME_HEADER + len;
			} else {
				/* the caller closes the stream: nothing more is
				 * sent, the bytes already out stay checked */
				CHECK(before + FRAME_HEADER + len >
				      (size_t)(a + 1) * 512);
				send_dead = 1;
			}
			CHECK(t.wlen - t.woff <= (size_t)(a + 1) * 512 ||
			      t.wlen - t.woff == before);
			break;
		}
		case 3: /* DRAIN */
			if ((a & 1) && !send_dead && t.fd >= 0) {
				int fail = t.fail_code;
				stream_flush(&t);
				CHECK(t.fail_code == fail);
			}
			if (a & 2)
				peer_drain(sv[1]);
			if ((a & 4) && !eof) {
				shutdown(sv[1], SHUT_WR);
				eof = 1;
			}
			break;
		}
		CHECK(stream_pending(&t) == (t.woff < t.wlen));
	}
	if (!send_dead && t.fd >= 0) {
		/* everything accepted reaches the peer, in order */
		for (int k = 0; k < 64 && stream_pending(&t); k++) {
			stream_flush(&t);
			peer_drain(sv[1]);
		}
		peer_drain(sv[1]);
		CHECK(!stream_pending(&t) && nseen == nwant);
	}
	tport_free(&t);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 60000)
		return 0;
	size_t frame_max = frame_maxes[data[0] & 3];
	if (data[0] & 4) {
		for (size_t k = 0; k <= size - 1 && k < 8; k++)
			check_frame_next(data + 1, k, frame_max);
		check_frame_next(data + 1, size - 1, frame_max);
		return 0;
	}
	ops(data + 1, size - 1, frame_max);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
/* Replay driver (test/fuzz/replay.h): fuzz_frame_replay [--mutations N]
 * FILE|DIR...; fuzz_frame_replay --seeds DIR writes the seed corpus. */
#define FUZZ_FIXUP(mut, buf, m) do { if (((m) & 7) != 0) (mut)[0] = (buf)[0]; } while (0)
#include "replay.h"

static void
put_seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds")) {
		const char *d = argv[2];
		/* frame_max 1200: two frames fed, read, a third cut in two */
		static const uint8_t two[] = {
			2, 0, 12, 0, 5, 0, 'h', 'e', 'l', 'l', 'o', 3, 0, 'a', 'b',
			'c', 1, 0, 3, 0, 1, 0, 'x', 1, 0, 1, 0, 'y', 1 };
		put_seed(d, "seed_feed_read", two, sizeof two);
		/* an empty frame ends the stream */
		static const uint8_t empty[] = { 2, 0, 4, 0, 1, 0, 'z', 0, 0, 1 };
		put_seed(d, "seed_empty_frame", empty, sizeof empty);
		/* frame_max 64, a header saying 65 */
		static const uint8_t big[] = { 1, 0, 2, 0, 65, 0, 1 };
		put_seed(d, "seed_too_big", big, sizeof big);
		/* half a frame, then EOF */
		static const uint8_t eof[] = { 2, 0, 3, 0, 9, 0, 'q', 1, 3 | 4 << 2, 1 };
		put_seed(d, "seed_eof", eof, sizeof eof);
		/* sends under a small max, drains and flushes */
		static const uint8_t snd[] = { 2, 2, 9, 0, 'p', 'a', 'c', 'k', 'e',
			't', '!', '!', '!', 2 | 1 << 2, 0xff, 0x03, 3 | 3 << 2, 2,
			3, 0, 1, 2, 3, 3 | 2 << 2 };
		put_seed(d, "seed_send", snd, sizeof snd);
		/* the reader stops after one packet */
		static const uint8_t stop[] = { 2, 0, 6, 0, 1, 0, 'a', 1, 0, 'b',
			1 | 4 << 2, 1 };
		put_seed(d, "seed_stop", stop, sizeof stop);
		/* frame_next alone */
		static const uint8_t alone[] = { 4 | 2, 7, 0, 1, 2, 3 };
		put_seed(d, "seed_next_alone", alone, sizeof alone);
		return 0;
	}
	return fuzz_replay_main(argc, argv, "fuzz_frame");
}
#endif
