/*
 * moongate_bot.c - moongate-bot: many client sessions in one process and
 * one libev loop, against a running server that echoes reliable messages.
 *
 *   moongate-bot --server udp://127.0.0.1:7777 --clients 1000 --rate 20
 *                --seconds 10 --mode echo [--size 32] [--server-pid PID]
 *                [--connect-rate 500] [--window W] [--drain 2]
 *                [--ack-delay 0|1] [--kcp NODELAY,INTERVAL,RESEND,NC]
 *
 * Phases, each bounded in time:
 *   connect  clients connect at --connect-rate per second; the phase ends
 *            when every client is open or has failed (at most the ramp
 *            plus 15 s);
 *   run      --seconds of traffic: every open client sends --rate reliable
 *            messages per second. One 1 ms tick walks the clients round
 *            robin, so the sends are spread evenly, not in bursts; each
 *            client is polled right before its send, as in a game frame.
 *            --rate 0: the clients connect and stay idle (heartbeats
 *            only) for --seconds. --window W (saturating mode, --rate
 *            ignored): each client keeps W messages in flight, sending
 *            the next one as soon as an echo arrives;
 *   drain    up to --drain seconds (2) for the echoes still on the way
 *            (a lossy link needs more: TCP's backoff reaches seconds);
 *   close    every client closes gracefully; up to 2 s for the CLOSEs.
 *
 * A message is idx u32 | seq u32 | sent_us u64 | filler up to --size. The
 * echo is checked: its client index, a seq never seen before (dup) and
 * not older than one already seen (out of order), and the latency goes
 * into a log-linear histogram (1 us resolution below 64 us, 1/32 of the
 * value above). Each client is polled when its fd is readable and when
 * mgclient_check says so (one libev timer per client).
 *
 * The clients use the library's defaults (mgclient_options_default)
 * except: --ack-delay sets session.ack_delay (the library's default is 1:
 * acks wait for data or the next interval flush), --kcp the client's KCP
 * profile (session.nodelay, interval, resend, nc; the server's comes from
 * its own config, `--set kcp.*`).
 *
 * Output: progress on stderr each second, then
 *   RESULT clients=... sent=... received=... lost=... dup=... p50_ms=...
 *          p99_ms=... max_ms=... connected=... failed=... [server_cpu=...]
 *          bot_cpu=... ooo=... closed=... transport=... rate=... seconds=...
 *          window=... rtt_per_s=... [server_rss_before_kb=... server_rss_kb=...]
 *          client_ack_delay=... client_kcp=NODELAY,INTERVAL,RESEND,NC
 * server_cpu and bot_cpu are fractions of one core over the run phase
 * (utime + stime from /proc/PID/stat). rtt_per_s: echoes received during
 * the run phase / its length. server_rss_before_kb: the server's VmRSS
 * before the first connect; server_rss_kb: at the end of the run phase,
 * every client still connected. Exit 0 on a clean run, 1 when a
 * message was lost, duplicated or out of order, or a connect failed.
 */
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>

#include "client.h"
#include "evclient.h"
#include "hist.h"
#include "procstat.h"

#define HDR 16           /* idx u32 | seq u32 | sent_us u64 */
#define TICK 0.001       /* the send and connect tick, seconds */
#define CLOSE_US 2000000

struct bot {
	struct evclient ec;  /* ec.done: CLOSE seen (or connect failed) */
	int idx;
	int open;            /* OPEN seen */
	uint64_t got;        /* echoes counted in the current service */
	uint32_t seq;        /* next to send */
	int64_t top;         /* highest seq received, -1 before any */
	uint8_t *seen;       /* bit per seq received */
	size_t seen_bytes;
};

static struct {
	const char *server;
	int clients, size, connect_rate;
	double rate, seconds;
	int server_pid;
	int window;
	double drain;
	int ack_delay;        /* -1: the library's default */
	int kcp[4];           /* nodelay, interval, resend, nc; kcp[1] 0: default */
} opt = { NULL, 10, 32, 500, 20, 10, 0, 0, 2, -1, { 0, 0, 0, 0 } };
static struct mgclient_options copts;

enum { CONNECT, RUN, DRAIN, CLOSE, END };

static struct ev_loop *loop;
static struct bot *bots;
static int phase = CONNECT;
static uint64_t phase_start, phase_deadline, last_progress;
static int started;          /* clients whose connect was attempted */
static uint64_t issued;      /* send slots walked in the run phase */
static uint64_t sent, received, dups, ooo, bad, send_err, dgrams;
static int connected, failed, closed_early, done_count;
static struct hist hist;
static uint8_t *msg;
static uint64_t run_recv0, run_recv;   /* received at the run's start, in it */
static double run_el;                  /* length of the run phase, s */
static long rss_before = -1, rss_run = -1; /* server VmRSS, kB */

/* An echo: 1 when it counts as received. */
static int
message(struct bot *b, const uint8_t *p, size_t len, uint64_t now)
{
	if (len < HDR || (int)wire_get32(p) != b->idx) {
		bad++;
		return 0;
	}
	uint32_t seq = wire_get32(p + 4);
	uint64_t t = wire_get64(p + 8);
	if (seq >= b->seq || (size_t)seq / 8 >= b->seen_bytes) {
		bad++; /* never sent */
		return 0;
	}
	if (b->seen[seq / 8] & (1u << (seq % 8))) {
		dups++;
		return 0;
	}
	b->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
	if ((int64_t)seq < b->top)
		ooo++;
	else
		b->top = seq;
	received++;
	hist_add(&hist, now > t ? now - t : 0);
	return 1;
}

static void
finish(struct bot *b)
{
	evclient_stop(&b->ec);
	done_count++;
}

static void send_one(struct bot *b, uint64_t now);

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
		b->got += (uint64_t)message(b, ev->data, ev->len, now);
		break;
	case MGCLIENT_DATAGRAM:
		dgrams++;
		break;
	case MGCLIENT_CLOSE:
		if (!b->open) {
			failed++;
			fprintf(stderr, "bot: client %d: connect failed: %s\n",
			        b->idx, ev->reason);
		} else if (phase < CLOSE) {
			closed_early++;
			fprintf(stderr, "bot: client %d closed (%d %s%s)\n", b->idx,
			        ev->code, ev->reason, ev->remote ? ", by the server" : "");
		}
		finish(b);
		break;
	}
}

/* --window: one new message per echo of this service, while the run lasts */
static void
after(struct evclient *e, uint64_t now)
{
	struct bot *b = e->data;
	uint64_t k = b->got;
	b->got = 0;
	if (opt.window > 0 && phase == RUN && b->open)
		for (; k > 0; k--)
			send_one(b, now);
}

static void
service(struct bot *b)
{
	evclient_service(&b->ec);
}

static void
start_client(struct bot *b)
{
	char err[256];
	b->ec.on_event = on_event;
	b->ec.after = after;
	b->ec.data = b;
	if (evclient_start(&b->ec, loop, opt.server, "bot", 3, &copts, err,
	                   sizeof err) < 0) {
		fprintf(stderr, "bot: client %d: %s\n", b->idx, err);
		failed++;
		done_count++;
	}
}

static void
send_one(struct bot *b, uint64_t now)
{
	if ((size_t)b->seq / 8 >= b->seen_bytes) {
		size_t n = b->seen_bytes ? b->seen_bytes * 2 : 64;
		uint8_t *p = realloc(b->seen, n);
		if (!p) {
			send_err++;
			return;
		}
		memset(p + b->seen_bytes, 0, n - b->seen_bytes);
		b->seen = p;
		b->seen_bytes = n;
	}
	wire_put32(msg, (uint32_t)b->idx);
	wire_put32(msg + 4, b->seq);
	wire_put64(msg + 8, now);
	int r = mgclient_send(b->ec.c, msg, (size_t)opt.size);
	if (r < 0) {
		send_err++;
		return;
	}
	b->seq++;
	sent++;
	evclient_arm(&b->ec, now);
}

static void
progress(uint64_t now)
{
	static const char *names[] = { "connect", "run", "drain", "close", "end" };
	fprintf(stderr, "bot: %-7s %5.1fs started=%d connected=%d failed=%d "
	        "sent=%llu received=%llu\n", names[phase],
	        (now - phase_start) / 1e6, started, connected, failed,
	        (unsigned long long)sent, (unsigned long long)received);
	last_progress = now;
}

static long long srv_t0, bot_t0;
static double srv_cpu = -1, bot_cpu = -1;

static void
next_phase(int p, uint64_t now)
{
	if (phase == RUN) {
		double el = (now - phase_start) / 1e6;
		run_el = el;
		run_recv = received - run_recv0;
		if (opt.server_pid)
			rss_run = procstat_rss_kb(opt.server_pid);
		long long s1 = opt.server_pid ? procstat_cpu_ticks(opt.server_pid) : -1;
		srv_cpu = procstat_cpu_share(srv_t0, s1, el);
		bot_cpu = procstat_cpu_share(bot_t0, procstat_cpu_ticks(0), el);
	}
	phase = p;
	phase_start = now;
	progress(now);
	switch (p) {
	case RUN:
		phase_deadline = now + (uint64_t)(opt.seconds * 1e6);
		srv_t0 = opt.server_pid ? procstat_cpu_ticks(opt.server_pid) : -1;
		bot_t0 = procstat_cpu_ticks(0);
		run_recv0 = received;
		if (opt.window > 0) /* fill every window */
			for (int i = 0; i < opt.clients; i++)
				for (int k = 0; k < opt.window; k++)
					if (bots[i].open && !bots[i].ec.done)
						send_one(&bots[i], now);
		break;
	case DRAIN:
		phase_deadline = now + (uint64_t)(opt.drain * 1e6);
		break;
	case CLOSE:
		phase_deadline = now + CLOSE_US;
		for (int i = 0; i < opt.clients; i++)
			if (!bots[i].ec.done) {
				mgclient_close(bots[i].ec.c, SESSION_CLOSE_NORMAL, "bot done");
				service(&bots[i]);
			}
		break;
	case END:
		ev_break(loop, EVBREAK_ALL);
		break;
	}
}

static void
on_tick(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l, (void)w, (void)revents;
	uint64_t now = mgclient_now();
	switch (phase) {
	case CONNECT: {
		int due = (int)((now - phase_start) / 1e6 * opt.connect_rate) + 1;
		while (started < opt.clients && started < due) {
			start_client(&bots[started]);
			started++;
		}
		if (started == opt.clients && connected + failed >= opt.clients)
			next_phase(RUN, now);
		else if (now >= phase_deadline)
			next_phase(RUN, now); /* the stragglers count as failed */
		break;
	}
	case RUN: {
		double el = (now - phase_start) / 1e6;
		if (el > opt.seconds)
			el = opt.seconds;
		uint64_t due = opt.window > 0 ? 0 :
		               (uint64_t)(el * opt.rate * opt.clients);
		for (; issued < due; issued++) {
			struct bot *b = &bots[issued % (uint64_t)opt.clients];
			/* poll first, as a game's frame does: mgclient_send stamps
			 * the message with the time of the last poll, and a clock
			 * tens of ms old would inflate KCP's RTT estimate (and so
			 * its retransmission timeout) by as much. The send time is
			 * read again: the polls before it took time. */
			if (b->open && !b->ec.done)
				service(b);
			if (b->open && !b->ec.done)
				send_one(b, mgclient_now());
		}
		if (now >= phase_deadline)
			next_phase(DRAIN, now);
		break;
	}
	case DRAIN:
		if (received + dups >= sent || now >= phase_deadline)
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
	        "usage: moongate-bot --server udp://HOST:PORT|tcp://HOST:PORT\n"
	        "       [--clients N] [--rate MSGS_PER_S] [--seconds S] "
	        "[--mode echo]\n"
	        "       [--size BYTES] [--server-pid PID] [--connect-rate N]\n"
	        "       [--window W] [--drain S] [--ack-delay 0|1]\n"
	        "       [--kcp NODELAY,INTERVAL,RESEND,NC]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			return usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--server"))
			opt.server = v;
		else if (!strcmp(a, "--clients"))
			opt.clients = atoi(v);
		else if (!strcmp(a, "--rate"))
			opt.rate = atof(v);
		else if (!strcmp(a, "--seconds"))
			opt.seconds = atof(v);
		else if (!strcmp(a, "--mode")) {
			if (strcmp(v, "echo")) {
				fprintf(stderr, "moongate-bot: only --mode echo\n");
				return 2;
			}
		} else if (!strcmp(a, "--size"))
			opt.size = atoi(v);
		else if (!strcmp(a, "--server-pid"))
			opt.server_pid = atoi(v);
		else if (!strcmp(a, "--connect-rate"))
			opt.connect_rate = atoi(v);
		else if (!strcmp(a, "--window"))
			opt.window = atoi(v);
		else if (!strcmp(a, "--drain"))
			opt.drain = atof(v);
		else if (!strcmp(a, "--ack-delay")) {
			if (strcmp(v, "0") && strcmp(v, "1"))
				return usage();
			opt.ack_delay = atoi(v);
		}
		else if (!strcmp(a, "--kcp")) {
			if (sscanf(v, "%d,%d,%d,%d", &opt.kcp[0], &opt.kcp[1],
			           &opt.kcp[2], &opt.kcp[3]) != 4 ||
			    opt.kcp[0] < 0 || opt.kcp[0] > 2 || opt.kcp[1] < 1 ||
			    opt.kcp[1] > 5000 || opt.kcp[2] < 0 || opt.kcp[2] > 100 ||
			    opt.kcp[3] < 0 || opt.kcp[3] > 1)
				return usage();
		} else
			return usage();
	}
	if (!opt.server || opt.clients < 1 || opt.clients > 1000000 ||
	    opt.rate < 0 || opt.rate > 100000 || !(opt.seconds > 0) ||
	    opt.seconds > 86400 || opt.size < HDR || opt.size > 65536 ||
	    opt.connect_rate < 1 || opt.window < 0 || opt.window > 4096 ||
	    !(opt.drain >= 0) || opt.drain > 3600)
		return usage();
	mgclient_options_default(&copts);
	if (opt.ack_delay >= 0)
		copts.session.ack_delay = opt.ack_delay;
	if (opt.kcp[1] > 0) {
		copts.session.nodelay = opt.kcp[0];
		copts.session.interval = opt.kcp[1];
		copts.session.resend = opt.kcp[2];
		copts.session.nc = opt.kcp[3];
	}

	/* a socket per client */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);

	bots = calloc((size_t)opt.clients, sizeof *bots);
	msg = calloc(1, (size_t)opt.size);
	loop = ev_loop_new(EVFLAG_AUTO);
	if (!bots || !msg || !loop) {
		fprintf(stderr, "moongate-bot: out of memory\n");
		return 1;
	}
	for (int i = HDR; i < opt.size; i++)
		msg[i] = (uint8_t)i;
	for (int i = 0; i < opt.clients; i++) {
		bots[i].idx = i;
		bots[i].ec.fd = -1;
		bots[i].top = -1;
	}

	if (opt.server_pid)
		rss_before = procstat_rss_kb(opt.server_pid);
	uint64_t now = mgclient_now();
	phase_start = last_progress = now;
	phase_deadline = now + (uint64_t)((double)opt.clients / opt.connect_rate *
	                                  1e6) + 15000000;
	ev_timer tick;
	ev_timer_init(&tick, on_tick, 0, TICK);
	ev_timer_start(loop, &tick);
	ev_run(loop, 0);

	uint64_t lost = sent > received ? sent - received : 0;
	int open_left = 0;
	for (int i = 0; i < opt.clients; i++) {
		if (bots[i].ec.c && !bots[i].ec.done)
			open_left++;
		if (bots[i].ec.c && !bots[i].open && !bots[i].ec.done)
			failed++; /* never opened, never closed: timed out here */
		mgclient_release(bots[i].ec.c);
		free(bots[i].seen);
	}
	if (open_left)
		fprintf(stderr, "bot: %d clients did not finish closing\n", open_left);
	if (send_err || bad)
		fprintf(stderr, "bot: send errors %llu, bad echoes %llu\n",
		        (unsigned long long)send_err, (unsigned long long)bad);

	printf("RESULT clients=%d sent=%llu received=%llu lost=%llu dup=%llu "
	       "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f connected=%d failed=%d",
	       opt.clients, (unsigned long long)sent, (unsigned long long)received,
	       (unsigned long long)lost, (unsigned long long)dups,
	       hist_ms(&hist, 0.50), hist_ms(&hist, 0.99), hist.max / 1000.0,
	       connected, failed);
	if (opt.server_pid)
		printf(" server_cpu=%.2f", srv_cpu);
	printf(" bot_cpu=%.2f ooo=%llu closed=%d transport=%.3s rate=%g "
	       "seconds=%g window=%d rtt_per_s=%.0f", bot_cpu,
	       (unsigned long long)ooo, closed_early, opt.server, opt.rate,
	       opt.seconds, opt.window, run_el > 0 ? run_recv / run_el : 0);
	if (opt.server_pid)
		printf(" server_rss_before_kb=%ld server_rss_kb=%ld", rss_before,
		       rss_run);
	printf(" client_ack_delay=%d client_kcp=%d,%d,%d,%d\n",
	       copts.session.ack_delay, copts.session.nodelay,
	       copts.session.interval, copts.session.resend, copts.session.nc);
	ev_loop_destroy(loop);
	free(bots);
	free(msg);
	return lost || dups || ooo || bad || failed || closed_early ? 1 : 0;
}
