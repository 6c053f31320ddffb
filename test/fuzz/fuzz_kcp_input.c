/*
 * fuzz_kcp_input.c - libFuzzer target: kcp_input() on untrusted datagrams,
 * interleaved with kcp_update, kcp_send and kcp_recv.
 *
 * Built two ways (see CMakeLists.txt):
 *  - with clang -fsanitize=fuzzer,address,undefined by `make fuzz`;
 *  - with -DFUZZ_REPLAY_MAIN as a plain program (ctest fuzz_kcp_corpus)
 *    that runs every file of the seed corpus, plus deterministic mutations
 *    of each, so `make test` and `make test-asan` exercise it too.
 *
 * Input format (every byte string is valid input; a short one does less):
 *   byte 0  setup
 *           bits 0-1  conv: 0,1 stamp our conv over the first 4 bytes of
 *                     each datagram; 2 leave the bytes as given; 3 stamp a
 *                     wrong conv (every datagram must then be refused)
 *           bit 2     stream mode
 *           bit 3     fast profile (nodelay 1, interval 10, resend 2, nc 1)
 *           bits 4-5  mtu: 1400, 50, 200, 576
 *           bit 6     loopback: our own output is queued, and op RELAY feeds
 *                     it back to kcp_input (so acks match real sends)
 *           bit 7     send limit of 64 segments (kcp_setsndlimit)
 *   byte 1  windows: sndwnd 1 + (b & 15) * 16; rcvwnd (b >> 4) * 64 (0:
 *           default)
 *   byte 2  clock start: (uint32_t)-(b * 100) ms, near the 2^32 wrap
 *   byte 3  if not 0, kcp_setnext(0xffffffff - b, same): sn wrap-around
 *   then operations until the end; an op byte's low 2 bits choose, the
 *   high 6 bits are its argument a:
 *     0 INPUT   u16 little-endian length n, then n bytes (cut at the end
 *               of the input): one datagram for kcp_input
 *     1 UPDATE  advance the clock by a * a + 1 ms, then kcp_update
 *     2 SEND    a message of a bytes (a == 63: 3000 bytes, many fragments)
 *     3 RECV    a & 1 == 0: drain kcp_recv, buffer (a >> 1) * 16 bytes
 *                         (0: large enough for any message);
 *               a & 1 == 1: relay the queued output (loopback), each
 *                         datagram with byte a >> 2 flipped if a & 2.
 *
 * Checks (abort() on failure, so the fuzzer saves the input):
 *  - kcp_input returns 0 or a documented error; a refused datagram changes
 *    nothing visible (waitsnd, peeksize, srtt, rto, dead), counts one
 *    in_errors, and the object still works: a small kcp_send gives 0,
 *    KCP_EDEAD or KCP_EFULL, and kcp_check is at most interval ms ahead;
 *  - every datagram handed to output is <= mtu and is a sequence of
 *    well-formed segments with our conv and a known command;
 *  - kcp_recv never returns more than the buffer, and in message mode
 *    exactly kcp_peeksize(); a dead link stays dead.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcp.h"
#include "kcpwire.h"

#define FUZZ_CONV 0x4e4f4f4du /* "MOON" on the wire */
#define QUEUE_SLOTS 16
#define QUEUE_BYTES 1400      /* largest mtu this target configures */
#define BIG_MESSAGE 3000

/* Where we are, printed when a check fails (set by the replay driver). */
static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_kcp_input: check failed: %s " \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

struct fuzz {
	kcp_t *kcp;
	uint32_t now;
	int stream;
	int loopback;
	int mtu;
	int interval;
	int sndlimit;
	int dead;
	/* loopback queue of output datagrams */
	int qlen;
	int qsize[QUEUE_SLOTS];
	char q[QUEUE_SLOTS][QUEUE_BYTES];
};

static struct fuzz F;
static char recvbuf[KCP_FRG_MAX * KCP_MTU_DEFAULT];

/* Output must be a run of whole segments: conv, known cmd, len in bounds. */
static int
output(const char *buf, int len, kcp_t *kcp, void *user)
{
	const unsigned char *p = (const unsigned char *)buf;
	int off = 0;

	CHECK(user == &F && kcp == F.kcp);
	CHECK(len >= KCP_OVERHEAD && len <= F.mtu);
	while (off < len) {
		CHECK(len - off >= KCP_OVERHEAD);
		CHECK(kw_get32(p + off) == FUZZ_CONV);
		CHECK(p[off + 4] >= KCP_CMD_PUSH && p[off + 4] <= KCP_CMD_WINS);
		uint32_t seglen = kw_get32(p + off + 20);
		CHECK(seglen <= (uint32_t)(len - off - KCP_OVERHEAD));
		off += KCP_OVERHEAD + (int)seglen;
	}
	if (F.loopback && F.qlen < QUEUE_SLOTS) {
		memcpy(F.q[F.qlen], buf, (size_t)len);
		F.qsize[F.qlen++] = len;
	}
	return 0;
}

static void
check_time(void)
{
	uint32_t next = kcp_check(F.kcp, F.now);
	CHECK((uint32_t)(next - F.now) <= (uint32_t)F.interval);
}

static void
update(void)
{
	int r = kcp_update(F.kcp, F.now);
	CHECK(r == 0 || r == KCP_EDEAD);
	if (F.dead)
		CHECK(r == KCP_EDEAD);
	if (r == KCP_EDEAD) {
		CHECK(kcp_isdead(F.kcp));
		F.dead = 1;
	}
	check_time();
}

/* The message of len bytes (byte i is i * 7 + len; len < 64 or
 * BIG_MESSAGE), filled once per length: filling it on every send, with a
 * comparison traced for the fuzzer at each byte, was a third of the
 * target's time. */
static const char *
message(int len)
{
	static char small[64][64], big[BIG_MESSAGE];
	static unsigned char made[65];
	int k = len == BIG_MESSAGE ? 64 : len;
	char *msg = k == 64 ? big : small[k];

	CHECK(len >= 0 && (len < 64 || len == BIG_MESSAGE));
	if (!made[k]) {
		for (int i = 0; i < len; i++)
			msg[i] = (char)(i * 7 + len);
		made[k] = 1;
	}
	return msg;
}

static void
send_msg(int len)
{
	int r;

	r = kcp_send(F.kcp, message(len), len);
	if (r == KCP_EDEAD)
		CHECK(F.dead || kcp_isdead(F.kcp));
	if (len == BIG_MESSAGE)
		CHECK(r == 0 || r == KCP_EDEAD || r == KCP_EFULL ||
		      r == KCP_ETOOBIG);
	else
		CHECK(r == 0 || r == KCP_EDEAD || r == KCP_EFULL);
	if (r == KCP_EFULL)
		CHECK(F.sndlimit > 0);
}

static void
drain(int cap)
{
	int i;

	if (cap <= 0 || cap > (int)sizeof recvbuf)
		cap = (int)sizeof recvbuf;
	for (i = 0; i < 4096; i++) {
		int peek = kcp_peeksize(F.kcp);
		int n = kcp_recv(F.kcp, recvbuf, cap);
		if (n >= 0) {
			CHECK(n <= cap);
			if (!F.stream)
				CHECK(n == peek);
			continue;
		}
		CHECK(n == KCP_EAGAIN || n == KCP_ESMALL || n == KCP_ETOOBIG);
		if (n == KCP_ESMALL && !F.stream)
			CHECK(peek > cap);
		if (n == KCP_EAGAIN || n == KCP_ETOOBIG)
			CHECK(peek == n);
		break;
	}
}

static void
input(const unsigned char *data, size_t size, int convmode)
{
	static unsigned char dg[65536 + 8];
	struct kcp_stats st0, st1;
	int waitsnd, peek, srtt, rto, dead, r;

	memcpy(dg, data, size);
	if (size >= 4 && convmode != 2)
		kw_put32(dg, convmode == 3 ? FUZZ_CONV + 1 : FUZZ_CONV);

	waitsnd = kcp_waitsnd(F.kcp);
	peek = kcp_peeksize(F.kcp);
	srtt = kcp_srtt(F.kcp);
	rto = kcp_rto(F.kcp);
	dead = kcp_isdead(F.kcp);
	kcp_getstats(F.kcp, &st0);

	r = kcp_input(F.kcp, (const char *)dg, (long)size);
	if (convmode == 3 && size >= 4)
		CHECK(r < 0);
	if (r == 0)
		return;
	CHECK(r == KCP_ETRUNC || r == KCP_ECONV || r == KCP_ECMD ||
	      r == KCP_EUNA || r == KCP_ELEN || r == KCP_ENOMEM);
	CHECK(kcp_strerror(r) != NULL);

	/* no effect at all */
	kcp_getstats(F.kcp, &st1);
	CHECK(st1.in_errors == st0.in_errors + 1);
	CHECK(kcp_waitsnd(F.kcp) == waitsnd);
	CHECK(kcp_peeksize(F.kcp) == peek);
	CHECK(kcp_srtt(F.kcp) == srtt);
	CHECK(kcp_rto(F.kcp) == rto);
	CHECK(kcp_isdead(F.kcp) == dead);

	/* and still usable */
	send_msg(4);
	check_time();
}

static void
relay(int flip, size_t pos)
{
	int i, n = F.qlen;
	static char tmp[QUEUE_SLOTS][QUEUE_BYTES];
	static int tsize[QUEUE_SLOTS];

	/* Take the queue first: kcp_input may not output, but be safe. */
	for (i = 0; i < n; i++) {
		memcpy(tmp[i], F.q[i], (size_t)F.qsize[i]);
		tsize[i] = F.qsize[i];
	}
	F.qlen = 0;
	for (i = 0; i < n; i++) {
		if (flip && pos < (size_t)tsize[i])
			tmp[i][pos] ^= 0x5a;
		/* conv left as is: a flipped conv byte must be refused */
		input((const unsigned char *)tmp[i], (size_t)tsize[i], 2);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int mtus[4] = { 1400, 50, 200, 576 };
	size_t i = 4;
	int convmode;

	if (size < 4)
		return 0;
	memset(&F, 0, sizeof F);
	convmode = data[0] & 3;
	F.stream = (data[0] >> 2) & 1;
	F.loopback = (data[0] >> 6) & 1;
	F.mtu = mtus[(data[0] >> 4) & 3];
	F.sndlimit = (data[0] & 0x80) ? 64 : 0;
	F.now = (uint32_t)0 - (uint32_t)data[2] * 100u;

	F.kcp = kcp_create(FUZZ_CONV, &F);
	if (!F.kcp)
		return 0;
	kcp_setoutput(F.kcp, output);
	CHECK(kcp_getconv(F.kcp) == FUZZ_CONV);
	CHECK(kcp_setmtu(F.kcp, F.mtu) == 0);
	CHECK(kcp_getmtu(F.kcp) == F.mtu);
	CHECK(kcp_wndsize(F.kcp, 1 + (data[1] & 15) * 16,
	                  (data[1] >> 4) * 64) == 0);
	F.interval = (data[0] & 8) ? 10 : 40;
	if (data[0] & 8)
		CHECK(kcp_nodelay(F.kcp, 1, F.interval, 2, 1) == 0);
	else
		CHECK(kcp_nodelay(F.kcp, 0, F.interval, 0, 0) == 0);
	kcp_setstream(F.kcp, F.stream);
	kcp_setsndlimit(F.kcp, F.sndlimit);
	if (data[3])
		CHECK(kcp_setnext(F.kcp, 0xffffffffu - data[3],
		                  0xffffffffu - data[3]) == 0);
	update();

	while (i < size) {
		unsigned op = data[i] & 3, a = data[i] >> 2;
		i++;
		switch (op) {
		case 0: {
			size_t n = 0;
			if (i < size)
				n = data[i++];
			if (i < size)
				n |= (size_t)data[i++] << 8;
			if (n > size - i)
				n = size - i;
			input(data + i, n, convmode);
			i += n;
			break;
		}
		case 1:
			F.now += a * a + 1;
			update();
			break;
		case 2:
			send_msg(a == 63 ? BIG_MESSAGE : (int)a);
			break;
		case 3:
			if (a & 1)
				relay(a & 2, a >> 2);
			else
				drain((int)(a >> 1) * 16);
			break;
		}
	}

	/* Let it run a while longer, then read everything. */
	for (i = 0; i < 8; i++) {
		F.now += 50;
		update();
		if (F.loopback)
			relay(0, 0);
	}
	drain(0);
	CHECK(kcp_memsize(F.kcp) > 0);
	kcp_release(F.kcp);
	F.kcp = NULL;
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
/* Replay driver (test/fuzz/replay.h): fuzz_kcp_input_replay [--mutations N]
 * FILE|DIR... Truncations keep at least 4 bytes (the opcode header). */
#define FUZZ_TRUNC_MIN 4
#include "replay.h"

int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, "fuzz_kcp_input");
}
#endif
