/*
 * fuzz_session.c - libFuzzer target: a session (core/proto/session*.c) fed
 * untrusted packets in virtual time, where the fuzz reaches past the
 * cryptography:
 *
 *   mode 0  server, open: the harness plays the client, so every record is
 *           sealed with the session's real keys (the body is fuzz bytes)
 *           and reaches body parsing: KCP, DGRAM, PING, PONG, CLOSE,
 *           CLOSE_ACK, PATH_CHALLENGE/RESPONSE, on several paths;
 *   mode 1  client, open: the harness plays the server (its WELCOME takes
 *           fuzzed parameters: mtu, timers, flags, resume grace, FEC),
 *           then sealed records as above;
 *   mode 2  client in handshake: CHALLENGE, REFUSE and WELCOME from fuzz
 *           bytes (a REFUSE gets the client's real echo, a WELCOME can be
 *           sealed for real with fuzzed parameters), and raw packets.
 *
 * Keys come from a seeded generator (fuzz_rand.h), so an input always
 * takes the same path; the X25519 results are remembered across inputs
 * (fuzz_memo.h): the same keys come back.
 *
 * Built two ways (see CMakeLists.txt): with clang -fsanitize=fuzzer,
 * address,undefined (MOONGATE_FUZZ), and with -DFUZZ_REPLAY_MAIN as a
 * plain program (ctest fuzz_session_corpus) that replays test/fuzz/
 * corpus_session. `fuzz_session_replay --seeds DIR` writes that corpus.
 *
 * Input: byte 0 mode (low 2 bits; 3 is mode 0) and bit 2: encrypt off;
 *   bit 3: resume (resume_grace_ms 3000); mode 1, 2: bytes 1..12 are the
 *   WELCOME's parameters (see welcome_params). Then records; an op byte's
 *   low 3 bits choose, a = op >> 3:
 *     0..2 SEAL     type 0x10 + (a & 7), u8 len (a & 8: u16 LE), body;
 *                   sealed with the peer's keys at the next pn (op 1: a
 *                   pn from the next byte, behind or ahead; op 2: a
 *                   tag byte flipped), sent on path 1 + (a >> 4)
 *     3 RAW         u16 LE len, bytes, as they are (mode 2: REFUSE gets
 *                   the real echo), on path 1 + (a & 3)
 *     4 TIME        the clock moves (a * a + 1) ms, then update when due
 *     5 APP         the owner calls: send, send_unreliable, close, abort,
 *                   path_lost, ping, probe, path_use (by a & 7)
 *     6 WELCOME     mode 2: a WELCOME sealed with the real keys, params
 *                   from the next 12 bytes; else a PATH_RESPONSE with the
 *                   token of the last PATH_CHALLENGE seen, on its path
 *     7 CHALLENGE   mode 2: a CHALLENGE (stamp, mac from the input);
 *                   else replay the last sealed record on path 1 + (a & 3)
 *
 * Checks (abort() on failure): session_input returns 0 or a SESSION_E*
 * code; a packet out fits the mtu (on a UDP path) and is not empty; no
 * event after CLOSE, exactly one CLOSE; the state never goes back; the
 * event data is readable (ASan); nothing leaks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_memo.h"
#include "fuzz_rand.h"
#include "session.h"
#include "wire.h"

static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_session: check failed: %s "   \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

#define SID 0x5e551011u
#define PROVEN SESSION_PATH_PROVEN

static struct {
	session_t *s;
	int client;
	int mtu;                  /* the session's, for the output check */
	uint64_t now;
	int closed, events, state;
	/* what the session sent last */
	uint8_t hs[2048];         /* the HELLO/INIT */
	size_t hs_len;
	uint8_t welcome[WIRE_WELCOME_SIZE]; /* server: its WELCOME */
	int have_welcome;
	uint8_t pc_token[WIRE_TOKEN];
	uint32_t pc_path;         /* a PATH_CHALLENGE came out on it */
	/* the peer's side */
	struct wire_keys peer;    /* tx seals what we send the session */
	int keyed, encrypt;
	uint32_t pn;
	uint8_t last[2048 + WIRE_OVERHEAD];
	size_t last_len;
} F;

static uint8_t spub[WIRE_PUB], ssec[WIRE_SEC]; /* the harness' server key */
static uint8_t cpub[WIRE_PUB], csec[WIRE_SEC]; /* the harness' client key */

static void
on_output(session_t *s, uint32_t path, const uint8_t *pkt, size_t len,
          void *user)
{
	(void)user;
	CHECK((F.s == NULL || s == F.s) && path != 0 && len > 0);
	if (!(path & PROVEN))
		CHECK(len <= (size_t)F.mtu || len <= 1200);
	CHECK(len <= 65535);
	/* every byte readable: ASan checks the whole range of a memcpy
	 * (a loop over the bytes did the same at a traced comparison each) */
	static uint8_t readable[65536];
	memcpy(readable, pkt, len);
	if (pkt[0] == WIRE_WELCOME && len == WIRE_WELCOME_SIZE) {
		memcpy(F.welcome, pkt, len);
		F.have_welcome = 1;
	}
	if ((pkt[0] == WIRE_HELLO || pkt[0] == WIRE_INIT) && len <= sizeof F.hs) {
		memcpy(F.hs, pkt, len);
		F.hs_len = len;
	}
	/* a PATH_CHALLENGE: open it with the peer's rx key to answer it */
	if (F.keyed && pkt[0] == WIRE_PATH_CHALLENGE && len <= sizeof F.last) {
		uint8_t cp[2048], *body;
		struct wire_hdr h;
		memcpy(cp, pkt, len);
		if (wire_open(cp, len, F.peer.rx, F.encrypt, &h, &body) ==
		    WIRE_TOKEN) {
			memcpy(F.pc_token, body, WIRE_TOKEN);
			F.pc_path = path;
		}
	}
}

static void
on_event(session_t *s, const struct session_event *ev, void *user)
{
	(void)user;
	CHECK((F.s == NULL || s == F.s) && !F.closed);
	F.events++;
	if (ev->len)
		CHECK(ev->data != NULL && (ev->data[0] | 1) != 0 &&
		      (ev->data[ev->len - 1] | 1) != 0);
	if (ev->type == SESSION_EV_CLOSE) {
		CHECK(ev->reason != NULL && strlen(ev->reason) <= WIRE_REASON_MAX);
		F.closed = 1;
	}
	if (ev->type == SESSION_EV_MESSAGE && (ev->len & 7) == 3)
		session_send(s, ev->data, ev->len, F.now); /* re-entrant echo */
}

static const struct session_callbacks cb = { on_output, on_event };

struct in {
	const uint8_t *p;
	size_t n, i;
};

static unsigned
byte(struct in *in)
{
	return in->i < in->n ? in->p[in->i++] : 0;
}

static void
state_check(void)
{
	int st = session_state(F.s);
	CHECK(st >= F.state); /* handshake, open, closing, closed */
	F.state = st;
	if (F.closed)
		CHECK(st == SESSION_CLOSED);
}

static void
feed(uint32_t path, uint8_t *pkt, size_t len)
{
	if (F.closed || len == 0)
		return;
	int r = session_input(F.s, path, pkt, len, F.now);
	CHECK(r == 0 || r == SESSION_EAUTH || r == SESSION_EREPLAY ||
	      r == SESSION_EINPUT || r == SESSION_ENOMEM ||
	      r == SESSION_EAGAIN || r == SESSION_ECLOSED);
	state_check();
}

/* The WELCOME's parameters from 12 input bytes. */
static void
welcome_params(struct in *in, struct wire_welcome *w)
{
	static const uint32_t timers[] = { 1, 10, 1000, 5000, 60000, 0,
	                                   0x7fffffffu, 0xffffffffu };
	unsigned b = byte(in);
	memset(w, 0, sizeof *w);
	w->sid = b & 0x80 ? SID : (b & 0x40 ? 0 : byte(in) + 1);
	w->server_time_us = (uint64_t)byte(in) << 40;
	w->heartbeat_ms = timers[byte(in) & 7];
	w->timeout_ms = timers[byte(in) & 7];
	unsigned m = byte(in);
	w->mtu = (uint16_t)(m < 0x80 ? 1200 : m < 0xc0 ? m - 30 : m << 8);
	w->flags = (uint8_t)byte(in);
	w->resume_grace_ms = timers[byte(in) & 7];
	w->fec_data = (uint8_t)(byte(in) % 40);
	w->fec_parity = (uint8_t)(byte(in) % 12);
}

static void
send_welcome(struct in *in)
{
	struct wire_hello h;
	struct wire_welcome w;
	uint8_t pkt[256];
	if (!F.hs_len || wire_hello_decode(F.hs, F.hs_len, &h) < 0)
		return;
	welcome_params(in, &w);
	memcpy(w.pub, spub, WIRE_PUB);
	if (wire_server_keys(&F.peer, spub, ssec, h.pub) < 0)
		return;
	int n = wire_welcome_encode(pkt, sizeof pkt, &w, F.peer.tx);
	CHECK(n > 0);
	feed(1, pkt, (size_t)n);
	if (!F.closed && session_state(F.s) == SESSION_OPEN && !F.keyed) {
		F.keyed = 1;
		F.encrypt = (w.flags & WIRE_F_ENCRYPT) != 0;
		F.mtu = w.mtu < F.mtu ? w.mtu : F.mtu;
	}
}

static void
seal(struct in *in, unsigned op)
{
	unsigned a = op >> 3;
	uint8_t type = (uint8_t)(WIRE_KCP + (a & 7));
	size_t len = byte(in);
	if (a & 8)
		len |= (size_t)byte(in) << 8;
	uint8_t body[2048], pkt[2048 + WIRE_OVERHEAD];
	if (len > sizeof body)
		len = sizeof body;
	size_t take = len < in->n - in->i ? len : in->n - in->i;
	memset(body, 0, len);
	memcpy(body, in->p + in->i, take);
	in->i += take;
	if (!F.keyed || type > WIRE_PATH_RESPONSE)
		return;
	uint32_t pn = ++F.pn;
	if ((op & 7) == 1) {
		int8_t d = (int8_t)byte(in);
		pn = F.pn + (uint32_t)(int32_t)d * 37;
		if (d == -128)
			pn = 0xffffffffu;
	}
	int n = wire_seal(pkt, sizeof pkt, type, F.client ? session_id(F.s) : SID,
	                  pn, body, len, F.peer.tx, F.encrypt);
	if (n < 0)
		return;
	if ((op & 7) == 2)
		pkt[(size_t)n - 1 - (len % WIRE_TAG)] ^= 0x20;
	memcpy(F.last, pkt, (size_t)n);
	F.last_len = (size_t)n;
	uint32_t path = 1 + (a >> 4);
	feed(path, pkt, (size_t)n);
}

static void
app(unsigned a, struct in *in)
{
	static const uint8_t msg[3000] = { 'm' };
	if (F.closed)
		return;
	size_t len = byte(in) * 11;
	switch (a & 7) {
	case 0:
		session_send(F.s, msg, len, F.now);
		break;
	case 1:
		session_send_unreliable(F.s, msg, len % 1300, F.now);
		break;
	case 2:
		session_close(F.s, SESSION_CLOSE_APP + 1, "fuzz", (a >> 3) & 1,
		              F.now);
		break;
	case 3:
		session_abort(F.s, SESSION_CLOSE_DISCONNECT, "gone", F.now);
		break;
	case 4:
		session_path_lost(F.s, 1 + (len & 3) + (a & 8 ? PROVEN : 0),
		                  SESSION_CLOSE_DISCONNECT, "lost", F.now);
		break;
	case 5:
		if (F.client)
			session_ping(F.s, F.now);
		break;
	case 6:
		if (F.client)
			session_probe(F.s, 1 + (len & 3), F.now);
		break;
	default:
		if (F.client)
			session_path_use(F.s, 1 + (len & 3), F.now);
		else
			session_rewelcome(F.s, 1, F.now);
		break;
	}
	state_check();
}

static void
records(struct in *in, int handshake)
{
	while (in->i < in->n) {
		unsigned op = byte(in), a = op >> 3;
		switch (op & 7) {
		case 0:
		case 1:
		case 2:
			seal(in, op);
			break;
		case 3: {
			size_t len = byte(in);
			len |= (size_t)byte(in) << 8;
			uint8_t pkt[4096];
			if (len > sizeof pkt)
				len = sizeof pkt;
			size_t take = len < in->n - in->i ? len : in->n - in->i;
			memcpy(pkt, in->p + in->i, take);
			in->i += take;
			/* a REFUSE with the real echo, so it can be taken */
			if (handshake && take >= 18 && pkt[0] == WIRE_REFUSE &&
			    F.hs_len >= 2 + 16)
				memcpy(pkt + 2, F.hs + 2, 16);
			feed(1 + (a & 3), pkt, take);
			break;
		}
		case 4:
			F.now += ((uint64_t)a * a + 1) * 1000;
			if (!F.closed && session_check(F.s, F.now) <= F.now) {
				session_update(F.s, F.now);
				state_check();
			}
			break;
		case 5:
			app(a, in);
			break;
		case 6:
			if (handshake) {
				send_welcome(in);
			} else if (F.keyed && F.pc_path) {
				uint8_t pkt[64];
				int n = wire_seal(pkt, sizeof pkt, WIRE_PATH_RESPONSE,
				                  F.client ? session_id(F.s) : SID,
				                  ++F.pn, F.pc_token, WIRE_TOKEN,
				                  F.peer.tx, F.encrypt);
				if (n > 0)
					feed(F.pc_path, pkt, (size_t)n);
			}
			break;
		default:
			if (handshake) {
				uint8_t pkt[64], mac[WIRE_MAC];
				uint32_t stamp = byte(in);
				for (int k = 0; k < WIRE_MAC; k++)
					mac[k] = (uint8_t)byte(in);
				int n = wire_challenge_encode(pkt, sizeof pkt, stamp,
				                              mac);
				if (n > 0)
					feed(1, pkt, (size_t)n);
			} else if (F.last_len) {
				uint8_t pkt[sizeof F.last];
				memcpy(pkt, F.last, F.last_len);
				feed(1 + (a & 3), pkt, F.last_len);
			}
			break;
		}
	}
}

static void
init_once(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	fuzz_rand_install();
	CHECK(wire_init() == 0);
	fuzz_rand_reset(1);
	wire_keypair(spub, ssec);
	wire_keypair(cpub, csec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session_config sc;
	struct in in = { data, size, 0 };

	init_once();
	if (size < 1 || size > 30000)
		return 0;
	fuzz_rand_reset(0x5eed0000u + size);
	memset(&F, 0, sizeof F);
	F.now = 1000000000ull;
	unsigned setup = byte(&in);
	int mode = setup & 3;
	session_config_default(&sc);
	sc.encrypt = !(setup & 4);
	if (setup & 8)
		sc.resume_grace_ms = 3000;
	F.mtu = sc.mtu;
	F.encrypt = sc.encrypt;

	if (mode == 1 || mode == 2) {
		F.client = 1;
		F.s = session_client_create(&sc, &cb, NULL, 1,
		                            (const uint8_t *)"{\"v\":1}", 7, F.now);
		CHECK(F.s != NULL && F.hs_len > 0);
		if (mode == 1)
			send_welcome(&in);
		records(&in, mode == 2);
	} else {
		F.s = session_server_create(&sc, &cb, NULL, 1, SID, cpub, NULL, F.now);
		CHECK(F.s != NULL);
		/* the WELCOME tells the server's key: the harness plays the
		 * client that made cpub */
		struct wire_welcome w;
		CHECK(F.have_welcome);
		CHECK(wire_welcome_peek(F.welcome, WIRE_WELCOME_SIZE, &w) == 0);
		CHECK(wire_client_keys(&F.peer, cpub, csec, w.pub) == 0);
		CHECK(wire_welcome_open(F.welcome, WIRE_WELCOME_SIZE, &w,
		                        F.peer.rx) == 0);
		CHECK(w.sid == SID);
		F.keyed = 1;
		records(&in, 0);
	}
	if (!F.closed)
		session_abort(F.s, SESSION_CLOSE_SHUTDOWN, "end", F.now);
	CHECK(F.closed);
	session_release(F.s);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
#define FUZZ_FIXUP(mut, buf, m) do { if (((m) & 7) != 0) (mut)[0] = (buf)[0]; } while (0)
#include "replay.h"
int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, "fuzz_session");
}
#endif
