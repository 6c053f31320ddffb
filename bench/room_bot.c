/*
 * room_bot.c - moongate-room-bot: rooms full of bots in one process and
 * one libev loop, against a running server with the services handshake,
 * login and room (docs/SERVICES.md), in state sync or frame sync.
 *
 *   moongate-room-bot --server udp://127.0.0.1:7777 --mode relay|lockstep
 *                     [--clients 800] [--room-size 8] [--rate 20]
 *                     [--seconds 20] [--size 32] [--server-pid PID]
 *                     [--connect-rate 500] [--drain 1] [--sync state|frame]
 *                     [--create-spread-ms MS]
 *
 * Phases, each bounded in time:
 *   connect  clients connect at --connect-rate per second with the hello
 *            {"v":1,"name":"b<N>"} and wait for {"op":"login",...,"id":ID};
 *            the phase ends when every client is logged in or has failed
 *            (at most the ramp plus 15 s);
 *   join     bots idx / room-size share a room: the first one logged in
 *            sends {"op":"create","mode":MODE,"capacity":SIZE}, and once
 *            its "created" arrives the others send {"op":"join","room":ID}
 *            (explicit ids, not quick match: the grouping does not depend
 *            on the order the server handles joins in). The creates are
 *            spread over --create-spread-ms (one period of --rate): each
 *            room's tick timer starts at its create, and rooms made at
 *            random times tick at random phases, not all in the same
 *            millisecond (0: every create at once). The phase ends when
 *            every logged-in bot has its "joined" or an error (at most
 *            15 s after the last create);
 *   run      --seconds: every seated bot sends --rate payloads a second,
 *            the sends of all bots spread evenly (one 1 ms tick walks them
 *            round robin, polling each right before its send; the order
 *            interleaves the rooms, so the members of a room send at
 *            phases 1 / (rate x room-size) apart). State sync
 *            (--mode relay): a datagram (send_unreliable) of --size bytes.
 *            Frame sync (--mode lockstep): a reliable message "I" + the
 *            same --size bytes (an input);
 *   drain    up to --drain seconds (1) for what is still on the way (frame
 *            sync: ends early once every input has reached every member);
 *   close    every client closes gracefully; up to 2 s.
 *
 * The payload: sent_us u64 | sender index u32 | seq u32 | filler, little
 * endian; sent_us is this process's monotonic clock (mgclient_now), shared
 * by every bot, so a receiver's now - sent_us is the latency from the
 * sender's send to the receiver's poll. What arrives (docs/PROTOCOL.md,
 * "Game service payloads"):
 *   state sync: datagrams "S" | tick u32 | count u8 | count x (id varint
 *               | len varint | data): the newest state of the other
 *               members since the last tick; a state replaced before the
 *               tick never leaves the server (superseded), so fewer than
 *               sent arrive: `delivered` is the fraction that did;
 *   frame sync: reliable messages "F" | frame u32 | count u16 | count x
 *               (id u32 | len u16 | data): every input of a tick, to every
 *               member, the sender included; each must arrive exactly
 *               once: lost and dup must be 0.
 * Each entry is checked (its sender index, the player id the server gave
 * that sender, same room, a seq that was sent) and counted once per
 * receiver (a bitmap per receiver per sender: a second copy is a dup);
 * its latency goes into the histogram. The latency includes the wait for
 * the room's next tick (up to one tick period, 50 ms at 20 Hz): it is the
 * relay latency a player sees, not the network's. A mode other than relay
 * and lockstep (a game's, or one with no sync for a baseline) needs
 * --sync to say what to send.
 *
 * Output: progress on stderr each second, then
 *   RESULT bench=rooms mode=... rooms=... bots=... rate=... seconds=...
 *          server_cpu=... p50_ms=... p99_ms=... max_ms=...
 *          in_bytes_per_s_per_player=... out_bytes_per_s_per_player=...
 *          delivered=... lost=... dup=... bot_cpu=... sync=... size=...
 *          sent=... expected=... received=... self=... bad=...
 *          in_pkts_per_s_per_player=... out_pkts_per_s_per_player=...
 *          connected=... joined=... failed=... closed=... [server_rss_kb=...]
 * server_cpu and bot_cpu: fractions of one core over the run phase (utime
 * + stime from /proc/PID/stat). Bytes and packets: the clients' session
 * counters (mgclient_stats: UDP payloads, sealed, without the 28 bytes of
 * IP and UDP headers) over the run phase, summed over the seated bots,
 * divided by them and by the run's length: "in" is what the server sent
 * to a player, "out" what a player sent. expected: entries that would
 * arrive if nothing were superseded (state: sends x (members - 1); frame:
 * sends x members); lost = expected - received; delivered = received /
 * expected. self: a bot's own state relayed back to it (state sync; not
 * expected, not counted). Exit 0 on a clean run; 1 when a client failed
 * or closed, a bot was not seated, a send failed, an entry was malformed,
 * nothing arrived at all, or (frame sync) an input was lost or
 * duplicated.
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moongate/client.h>

#include "botlib.h"
#include "evclient.h"
#include "hist.h"

#define HDR 16            /* sent_us u64 | idx u32 | seq u32 */
#define TICK 0.001        /* the send and connect tick, seconds */
#define JOIN_US 15000000  /* the join phase's bound */
#define CLOSE_US 2000000

enum { STATE, FRAME };

struct bot {
	struct evclient ec;   /* ec.done: CLOSE seen (or connect failed) */
	int idx;
	int open, logged;     /* OPEN seen; the login reply seen */
	int joined, failed;   /* "joined" seen; create or join refused */
	uint32_t pid;         /* the player id of the login */
	uint32_t seq;         /* next payload to send */
	uint8_t *seen;        /* room_size bitmaps of seen_bytes: entries got */
	uint64_t in0, out0, pin0, pout0; /* session counters at the run's start */
};

struct room {
	long long id;         /* the server's room id; -1 before "created" */
	int leader;           /* the bot that creates it; -1 before the join phase */
	int asked;            /* the others were sent their join */
	int members;          /* seated bots at the run's start */
};

static struct {
	const char *server;
	const char *mode;
	int sync;             /* STATE or FRAME */
	int clients, room_size, size, connect_rate;
	double rate, seconds, drain;
	int server_pid;
	double create_spread_ms; /* -1: one period, 1000 / rate */
	int ack_delay;        /* -1: the library's default */
} opt = { NULL, NULL, -1, 800, 8, 32, 500, 20, 20, 1, 0, -1, -1 };
static struct mgclient_options copts;

enum { CONNECT, JOIN, RUN, DRAIN, CLOSE, END };

static struct ev_loop *loop;
static struct bot *bots;
static struct room *rooms;
static int nrooms, created_asked;
static int *order;           /* the run's send order: bot indexes */
static size_t seen_bytes;    /* per sender bitmap, bytes */
static int phase = CONNECT;
static uint64_t phase_start, phase_deadline, last_progress;
static int started, connected, failed, logged, joined, join_failed;
static int closed_early, done_count;
static uint64_t issued;      /* send slots walked in the run phase */
static uint64_t sent, expected, received, dups, self, bad, send_err;
static uint64_t bundles, frames, other;
static struct hist hist;
static uint8_t *msg;         /* "I" | payload */
static struct bot_usage run_usage = { .srv_t0 = -1, .bot_t0 = -1, .srv_cpu = -1,
	                                     .bot_cpu = -1, .rss_kb = -1 };
static double run_el;
static uint64_t in_bytes, out_bytes, in_pkts, out_pkts;
static int seated;           /* bots seated at the run's start */

/* ---- control messages (JSON from the services) ------------------------- */

/* 1 when the JSON object at p is {"op":"OP",...} (cjson writes no spaces). */
static int
is_op(const uint8_t *p, size_t len, const char *op)
{
	char pat[64];
	int n = snprintf(pat, sizeof pat, "\"op\":\"%s\"", op);
	return memmem(p, len, pat, (size_t)n) != NULL;
}

/* The integer after "key": in p; 0, or -1 when absent. The keys read here
 * appear once in their message (members' entries carry no "room"). */
static int
json_int(const uint8_t *p, size_t len, const char *key, long long *out)
{
	char pat[64], num[24];
	int n = snprintf(pat, sizeof pat, "\"%s\":", key);
	const uint8_t *q = memmem(p, len, pat, (size_t)n), *end = p + len;
	if (!q)
		return -1;
	q += n;
	size_t k = 0;
	while (q < end && k < sizeof num - 1 && (isdigit(*q) || *q == '-'))
		num[k++] = (char)*q++;
	num[k] = 0;
	if (k == 0)
		return -1;
	*out = strtoll(num, NULL, 10);
	return 0;
}

static void
send_json(struct bot *b, const char *s)
{
	if (mgclient_send(b->ec.c, s, strlen(s)) < 0) {
		fprintf(stderr, "room-bot: client %d: cannot send %s\n", b->idx, s);
		send_err++;
	}
	evclient_arm(&b->ec, mgclient_now());
}

static void
refused(struct bot *b)
{
	if (!b->failed && !b->joined) {
		b->failed = 1;
		join_failed++;
	}
}

static void
control(struct bot *b, const uint8_t *p, size_t len)
{
	long long v;
	if (is_op(p, len, "login")) {
		if (!b->logged && json_int(p, len, "id", &v) == 0) {
			b->pid = (uint32_t)v;
			b->logged = 1;
			logged++;
		}
	} else if (is_op(p, len, "created")) {
		struct room *r = &rooms[b->idx / opt.room_size];
		if (r->leader == b->idx && json_int(p, len, "room", &v) == 0)
			r->id = v;
	} else if (is_op(p, len, "joined")) {
		if (!b->joined && !b->failed) {
			b->joined = 1;
			joined++;
		}
	} else if (is_op(p, len, "error")) {
		fprintf(stderr, "room-bot: client %d: %.*s\n", b->idx,
		        (int)(len < 200 ? len : 200), (const char *)p);
		struct room *r = &rooms[b->idx / opt.room_size];
		if (phase == JOIN && r->leader == b->idx && r->id < 0) {
			/* the room was not created: nobody of the group will sit */
			int base = (b->idx / opt.room_size) * opt.room_size;
			for (int i = base; i < base + opt.room_size && i < opt.clients; i++)
				if (bots[i].logged)
					refused(&bots[i]);
		} else if (phase == JOIN) {
			refused(b);
		}
	}
	/* "member" events and anything else: not measured */
}

/* ---- sync payloads --------------------------------------------------------- */

/* One entry: player id and the payload a member sent. */
static void
entry(struct bot *b, uint32_t id, const uint8_t *d, size_t len, uint64_t now)
{
	if (len < HDR) {
		bad++;
		return;
	}
	uint64_t t = bot_get64(d);
	uint32_t from = bot_get32(d + 8), seq = bot_get32(d + 12);
	if (from >= (uint32_t)opt.clients ||
	    (int)from / opt.room_size != b->idx / opt.room_size ||
	    bots[from].pid != id || seq >= bots[from].seq ||
	    (size_t)seq / 8 >= seen_bytes) {
		bad++;
		return;
	}
	if ((int)from == b->idx && opt.sync == STATE) {
		self++;
		return;
	}
	uint8_t *bits = b->seen + (size_t)(from % (uint32_t)opt.room_size) * seen_bytes;
	if (bits[seq / 8] & (1u << (seq % 8))) {
		dups++;
		return;
	}
	bits[seq / 8] |= (uint8_t)(1u << (seq % 8));
	received++;
	hist_add(&hist, now > t ? now - t : 0);
}

/* A varint (LEB128) of at most max bytes at p[0..n), at most lim, no
 * needless last byte 0: the bytes taken, or 0. */
static size_t
getvar(const uint8_t *p, size_t n, size_t max, uint32_t lim, uint32_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < n && i < max; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			if ((i > 0 && p[i] == 0) || x > lim)
				return 0;
			*v = (uint32_t)x;
			return i + 1;
		}
	}
	return 0;
}

/* "S" | tick u32 | count u8 | count x (id varint | len varint | data) */
static void
bundle(struct bot *b, const uint8_t *p, size_t len, uint64_t now)
{
	if (len < 6) {
		bad++;
		return;
	}
	int count = p[5];
	size_t at = 6;
	for (int i = 0; i < count; i++) {
		uint32_t id, n;
		size_t x = getvar(p + at, len - at, 5, UINT32_MAX, &id), y;
		if (!x || !(y = getvar(p + at + x, len - at - x, 3, 65535, &n)) ||
		    len - at - x - y < n) {
			bad++;
			return;
		}
		entry(b, id, p + at + x + y, n, now);
		at += x + y + n;
	}
	if (at != len)
		bad++;
	bundles++;
}

/* "F" | frame u32 | count u16 | count x (id u32 | len u16 | data) */
static void
frame(struct bot *b, const uint8_t *p, size_t len, uint64_t now)
{
	if (len < 7) {
		bad++;
		return;
	}
	int count = bot_get16(p + 5);
	size_t at = 7;
	for (int i = 0; i < count; i++) {
		if (len - at < 6 || len - at - 6 < bot_get16(p + at + 4)) {
			bad++;
			return;
		}
		size_t n = bot_get16(p + at + 4);
		entry(b, bot_get32(p + at), p + at + 6, n, now);
		at += 6 + n;
	}
	if (at != len)
		bad++;
	frames++;
}

/* ---- clients ------------------------------------------------------------- */

static void
on_event(struct evclient *e, const struct mgclient_event *ev, uint64_t now)
{
	struct bot *b = e->data;
	switch (ev->type) {
	case MGCLIENT_OPEN:
		b->open = 1;
		connected++;
		break;
	case MGCLIENT_MESSAGE:
		if (ev->len > 0 && ev->data[0] == '{')
			control(b, ev->data, ev->len);
		else if (ev->len > 0 && ev->data[0] == 'F' && opt.sync == FRAME)
			frame(b, ev->data, ev->len, now);
		else
			other++;
		break;
	case MGCLIENT_DATAGRAM:
		if (ev->len > 0 && ev->data[0] == 'S' && opt.sync == STATE)
			bundle(b, ev->data, ev->len, now);
		else
			other++;
		break;
	case MGCLIENT_CLOSE:
		switch (bot_closed("room-bot", b->idx, b->open, phase < CLOSE, ev)) {
		case BOT_CONNECT_FAILED: failed++; break;
		case BOT_CLOSED_EARLY: closed_early++; break;
		}
		evclient_stop(e);
		done_count++;
		break;
	}
}

static void
start_client(struct bot *b)
{
	char err[256], hello[64];
	int n = snprintf(hello, sizeof hello, "{\"v\":1,\"name\":\"b%d\"}", b->idx);
	b->ec.on_event = on_event;
	b->ec.data = b;
	if (evclient_start(&b->ec, loop, opt.server, hello, (size_t)n, &copts,
	                   err, sizeof err) < 0) {
		fprintf(stderr, "room-bot: client %d: %s\n", b->idx, err);
		failed++;
		done_count++;
	}
}

static int
live(const struct bot *b)
{
	return b->open && !b->ec.done;
}

static void
send_one(struct bot *b)
{
	uint64_t now = mgclient_now();
	uint8_t *p = msg + 1;
	bot_put64(p, now);
	bot_put32(p + 8, (uint32_t)b->idx);
	bot_put32(p + 12, b->seq);
	int r = opt.sync == STATE ?
	        mgclient_send_unreliable(b->ec.c, p, (size_t)opt.size) :
	        mgclient_send(b->ec.c, msg, (size_t)opt.size + 1);
	if (r < 0) {
		send_err++;
		return;
	}
	b->seq++;
	sent++;
	expected += (uint64_t)(rooms[b->idx / opt.room_size].members -
	                       (opt.sync == STATE ? 1 : 0));
	evclient_arm(&b->ec, now);
}

/* ---- phases -------------------------------------------------------------- */

static void
progress(uint64_t now)
{
	static const char *names[] = { "connect", "join", "run", "drain", "close",
	                               "end" };
	fprintf(stderr, "room-bot: %-7s %5.1fs started=%d connected=%d "
	        "logged=%d joined=%d failed=%d sent=%llu received=%llu/%llu\n",
	        names[phase], (now - phase_start) / 1e6, started, connected,
	        logged, joined, failed + join_failed, (unsigned long long)sent,
	        (unsigned long long)received, (unsigned long long)expected);
	last_progress = now;
}

/* Counters of the run: the session counters now minus at its start. */
static void
count_bytes(void)
{
	for (int i = 0; i < opt.clients; i++) {
		struct bot *b = &bots[i];
		if (!b->joined || !b->ec.c)
			continue;
		struct mgclient_stats st = { .size = sizeof st };
		mgclient_stats(b->ec.c, &st);
		in_bytes += st.in_bytes - b->in0;
		out_bytes += st.out_bytes - b->out0;
		in_pkts += st.in_packets - b->pin0;
		out_pkts += st.out_packets - b->pout0;
	}
}

static void
next_phase(int p, uint64_t now)
{
	if (phase == JOIN && joined + join_failed < logged) {
		fprintf(stderr, "room-bot: %d bots not seated at the join phase's "
		        "end\n", logged - joined - join_failed);
		join_failed = logged - joined;
	}
	if (phase == RUN) {
		run_el = (now - phase_start) / 1e6;
		bot_usage_stop(&run_usage, run_el);
		count_bytes();
	}
	phase = p;
	phase_start = now;
	progress(now);
	switch (p) {
	case JOIN:
		phase_deadline = now + JOIN_US + (uint64_t)(opt.create_spread_ms * 1e3);
		for (int r = 0; r < nrooms; r++) {
			int base = r * opt.room_size;
			for (int i = base; i < base + opt.room_size && i < opt.clients; i++)
				if (bots[i].logged && live(&bots[i])) {
					rooms[r].leader = i;
					break;
				}
		}
		break;
	case RUN:
		phase_deadline = now + (uint64_t)(opt.seconds * 1e6);
		for (int i = 0; i < opt.clients; i++) {
			struct bot *b = &bots[i];
			if (!b->joined || !b->ec.c)
				continue;
			seated++;
			rooms[i / opt.room_size].members++;
			struct mgclient_stats st = { .size = sizeof st };
			mgclient_stats(b->ec.c, &st);
			b->in0 = st.in_bytes;
			b->out0 = st.out_bytes;
			b->pin0 = st.in_packets;
			b->pout0 = st.out_packets;
		}
		bot_usage_start(&run_usage, opt.server_pid);
		break;
	case DRAIN:
		phase_deadline = now + (uint64_t)(opt.drain * 1e6);
		break;
	case CLOSE:
		phase_deadline = now + CLOSE_US;
		for (int i = 0; i < opt.clients; i++)
			bot_close(&bots[i].ec);
		break;
	case END:
		ev_break(loop, EVBREAK_ALL);
		break;
	}
}

/* The creates due by now: room r at r / rooms of --create-spread-ms, so
 * that the rooms' ticks (each room's timer starts at its create) are
 * spread evenly over one tick period, as rooms made at random times are,
 * rather than all firing in the same millisecond. */
static void
ask_creates(uint64_t now)
{
	double el = (now - phase_start) / 1e3;
	int due = opt.create_spread_ms > 0 ?
	          (int)(el / opt.create_spread_ms * nrooms) + 1 : nrooms;
	for (; created_asked < nrooms && created_asked < due; created_asked++) {
		struct room *rm = &rooms[created_asked];
		if (rm->leader < 0 || !live(&bots[rm->leader]))
			continue;
		char req[128];
		snprintf(req, sizeof req, "{\"op\":\"create\",\"mode\":\"%s\","
		         "\"capacity\":%d}", opt.mode, opt.room_size);
		send_json(&bots[rm->leader], req);
	}
}

/* The others of each created room are sent their join. */
static void
ask_joins(void)
{
	for (int r = 0; r < nrooms; r++) {
		struct room *rm = &rooms[r];
		if (rm->id < 0 || rm->asked)
			continue;
		rm->asked = 1;
		char req[96];
		snprintf(req, sizeof req, "{\"op\":\"join\",\"room\":%lld}", rm->id);
		int base = r * opt.room_size;
		for (int i = base; i < base + opt.room_size && i < opt.clients; i++)
			if (i != rm->leader && bots[i].logged && live(&bots[i]))
				send_json(&bots[i], req);
	}
}

static void
on_tick(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l, (void)w, (void)revents;
	uint64_t now = mgclient_now();
	switch (phase) {
	case CONNECT: {
		int due = bot_connect_due(now, phase_start, opt.connect_rate);
		while (started < opt.clients && started < due)
			start_client(&bots[started++]);
		/* a client that opened and then closed before its login counts
		 * in failed (connect) or closed_early */
		if ((started == opt.clients &&
		     logged + failed + closed_early >= opt.clients) ||
		    now >= phase_deadline)
			next_phase(JOIN, now);
		break;
	}
	case JOIN:
		ask_creates(now);
		ask_joins();
		if (joined + join_failed >= logged || now >= phase_deadline)
			next_phase(RUN, now);
		break;
	case RUN: {
		double el = (now - phase_start) / 1e6;
		if (el > opt.seconds)
			el = opt.seconds;
		uint64_t due = (uint64_t)(el * opt.rate * opt.clients);
		for (; issued < due; issued++) {
			struct bot *b = &bots[order[issued % (uint64_t)opt.clients]];
			/* poll first, as a game's frame does (moongate_bot.c) */
			if (b->joined && live(b))
				evclient_service(&b->ec);
			if (b->joined && live(b))
				send_one(b);
		}
		if (now >= phase_deadline)
			next_phase(DRAIN, now);
		break;
	}
	case DRAIN:
		if ((opt.sync == FRAME && received + dups >= expected) ||
		    now >= phase_deadline)
			next_phase(CLOSE, now);
		break;
	case CLOSE:
		if (done_count >= opt.clients || now >= phase_deadline)
			next_phase(END, now);
		break;
	}
	if (phase != END && now - last_progress >= 1000000)
		progress(now);
}

static int
usage(void)
{
	fprintf(stderr,
	        "usage: moongate-room-bot --server udp://HOST:PORT|tcp://HOST:PORT\n"
	        "       --mode MODE [--sync state|frame] [--clients N]\n"
	        "       [--room-size N] [--rate PER_S] [--seconds S] [--size BYTES]\n"
	        "       [--server-pid PID] [--connect-rate N] [--drain S]\n"
	        "       [--create-spread-ms MS]\n"
	        "--sync: state for --mode relay, frame for --mode lockstep;\n"
	        "required for another mode\n");
	return 2;
}

static int
arg_sync(const char *v, void *dst)
{
	if (!strcmp(v, "state"))
		*(int *)dst = STATE;
	else if (!strcmp(v, "frame"))
		*(int *)dst = FRAME;
	else
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct bot_arg args[] = {
		BOT_COMMON_ARGS(opt),
		BOT_ADMIN_ARG,
		{ "--ack-delay", BOT_INT, &opt.ack_delay, 0 },
		{ "--mode", BOT_STR, &opt.mode, 0 },
		{ "--sync", BOT_FN, &opt.sync, arg_sync },
		{ "--room-size", BOT_INT, &opt.room_size, 0 },
		{ "--create-spread-ms", BOT_DOUBLE, &opt.create_spread_ms, 0 },
		{ NULL, 0, NULL, 0 },
	};
	if (bot_args(argc, argv, args) < 0)
		return usage();
	if (opt.mode && opt.sync < 0)
		opt.sync = !strcmp(opt.mode, "relay") ? STATE :
		           !strcmp(opt.mode, "lockstep") ? FRAME : -1;
	/* the mode goes into a JSON string unescaped: a name only */
	for (const char *m = opt.mode; m && *m; m++)
		if (!isalnum((unsigned char)*m) && *m != '_' && *m != '-')
			return usage();
	if (!opt.server || !opt.mode || !*opt.mode || strlen(opt.mode) > 32 ||
	    opt.sync < 0 || opt.clients < 1 || opt.clients > 1000000 ||
	    opt.room_size < 1 || opt.room_size > 64 || !(opt.rate > 0) ||
	    opt.rate > 1000 || !(opt.seconds > 0) || opt.seconds > 3600 ||
	    opt.size < HDR || opt.size > 1024 || opt.connect_rate < 1 ||
	    !(opt.drain >= 0) || opt.drain > 60 ||
	    !(opt.create_spread_ms >= -1) || opt.create_spread_ms > 60000)
		return usage();
	if (opt.create_spread_ms < 0)
		opt.create_spread_ms = 1000 / opt.rate;
	mgclient_options_default(&copts);
	if (opt.ack_delay >= 0) /* N >= 2: acks may wait N ms for an input */
		copts.ack_delay = opt.ack_delay;
	bot_setup();

	nrooms = (opt.clients + opt.room_size - 1) / opt.room_size;
	/* a bit per payload a sender can send, with room to spare */
	seen_bytes = (size_t)(opt.rate * opt.seconds) / 8 + 16;
	bots = calloc((size_t)opt.clients, sizeof *bots);
	rooms = calloc((size_t)nrooms, sizeof *rooms);
	order = calloc((size_t)opt.clients, sizeof *order);
	msg = calloc(1, (size_t)opt.size + 1);
	loop = ev_loop_new(EVFLAG_AUTO);
	if (!bots || !rooms || !order || !msg || !loop) {
		fprintf(stderr, "moongate-room-bot: out of memory\n");
		return 1;
	}
	msg[0] = 'I';
	for (int i = HDR; i < opt.size; i++)
		msg[1 + i] = (uint8_t)i;
	for (int r = 0; r < nrooms; r++) {
		rooms[r].id = -1;
		rooms[r].leader = -1;
	}
	/* the send order interleaves the rooms (the first member of every
	 * room, then the second...): a room's members send at phases spread
	 * over the period, not all within the same half millisecond */
	for (int m = 0, k = 0; m < opt.room_size; m++)
		for (int r = 0; r < nrooms; r++)
			if (r * opt.room_size + m < opt.clients)
				order[k++] = r * opt.room_size + m;
	for (int i = 0; i < opt.clients; i++) {
		bots[i].idx = i;
		bots[i].ec.fd = -1;
		bots[i].seen = calloc((size_t)opt.room_size, seen_bytes);
		if (!bots[i].seen) {
			fprintf(stderr, "moongate-room-bot: out of memory\n");
			return 1;
		}
	}

	uint64_t now = mgclient_now();
	phase_start = last_progress = now;
	phase_deadline = bot_connect_deadline(now, opt.clients, opt.connect_rate);
	ev_timer tick;
	ev_timer_init(&tick, on_tick, 0, TICK);
	ev_timer_start(loop, &tick);
	ev_run(loop, 0);

	int open_left = 0;
	for (int i = 0; i < opt.clients; i++) {
		bot_release(&bots[i].ec, bots[i].open, &open_left, &failed);
		free(bots[i].seen);
	}
	if (open_left)
		fprintf(stderr, "room-bot: %d clients did not finish closing\n",
		        open_left);
	if (send_err || bad || other)
		fprintf(stderr, "room-bot: send errors %llu, bad entries %llu, "
		        "other messages %llu\n", (unsigned long long)send_err,
		        (unsigned long long)bad, (unsigned long long)other);
	fprintf(stderr, "room-bot: %llu bundles, %llu frames received\n",
	        (unsigned long long)bundles, (unsigned long long)frames);

	uint64_t lost = expected > received ? expected - received : 0;
	double per = seated > 0 && run_el > 0 ? 1.0 / seated / run_el : 0;
	printf("RESULT bench=rooms mode=%s rooms=%d bots=%d rate=%g seconds=%g",
	       opt.mode, nrooms, opt.clients, opt.rate, opt.seconds);
	bot_print_server_cpu(&run_usage);
	if (run_usage.server_pid && sent > 0 && run_usage.srv_cpu >= 0)
		printf(" server_us_per_update=%.2f",
		       run_usage.srv_cpu * run_el * 1e6 / (double)sent);
	bot_print_server_io(&run_usage, (double)sent);
	bot_print_latency(&hist);
	printf(" in_bytes_per_s_per_player=%.0f"
	       " out_bytes_per_s_per_player=%.0f delivered=%.4f lost=%llu dup=%llu"
	       " bot_cpu=%.2f sync=%s size=%d sent=%llu expected=%llu received=%llu"
	       " self=%llu bad=%llu in_pkts_per_s_per_player=%.1f"
	       " out_pkts_per_s_per_player=%.1f connected=%d joined=%d failed=%d"
	       " closed=%d", in_bytes * per, out_bytes * per,
	       expected ? (double)received / (double)expected : 0,
	       (unsigned long long)lost, (unsigned long long)dups, run_usage.bot_cpu,
	       opt.sync == STATE ? "state" : "frame", opt.size,
	       (unsigned long long)sent, (unsigned long long)expected,
	       (unsigned long long)received, (unsigned long long)self,
	       (unsigned long long)bad, in_pkts * per, out_pkts * per, connected,
	       joined, failed + join_failed, closed_early);
	if (opt.server_pid)
		printf(" server_rss_kb=%ld", run_usage.rss_kb);
	printf("\n");
	ev_loop_destroy(loop);
	free(bots);
	free(rooms);
	free(order);
	free(msg);
	int clean = failed == 0 && join_failed == 0 && closed_early == 0 &&
	            joined == opt.clients && bad == 0 && send_err == 0 && received > 0 &&
	            (opt.sync == STATE || (lost == 0 && dups == 0));
	return clean ? 0 : 1;
}
