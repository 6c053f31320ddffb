/*
 * moongate_bot.c - moongate-bot: many client sessions in one process and
 * one libev loop (or over --procs worker processes, a loop each), against
 * a running server that echoes reliable messages.
 *
 *   moongate-bot --server udp://127.0.0.1:7777 --clients 1000 --rate 20
 *                --seconds 10 --mode echo [--size 32] [--server-pid PID]
 *                [--connect-rate 500] [--window W] [--drain 2]
 *                [--ack-delay 0|1] [--kcp NODELAY,INTERVAL,RESEND,NC]
 *                [--manual-flush 0|1] [--server-admin ADDR]
 *                [--procs N] [--cpus LIST] [--warmup S] [--hello TEXT]
 *
 * --hello: the clients' hello ("bot" by default); "%d" in it becomes the
 * client's index (a login service's {"v":1,"name":"bot%d"}). With it, a
 * JSON object with an "op" is a service's (the login reply), not an echo.
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
 *            the next one as soon as an echo arrives. --warmup S: the run
 *            phase starts with S seconds (0) of the same traffic whose
 *            echoes are checked but kept out of the latency histogram (a
 *            peer's RTT estimate settles first; --seconds are measured);
 *   drain    up to --drain seconds (2) for the echoes still on the way
 *            (a lossy link needs more: TCP's backoff reaches seconds);
 *   close    every client closes gracefully; up to 2 s for the CLOSEs.
 *
 * --procs N (1): the clients are spread over N worker processes forked by
 * this one (clients/N each, the remainder one more to the first ones;
 * --connect-rate likewise), each with its own loop, so that the load
 * generator is not the limit (issue 15). --cpus LIST ("0,1", "0-3") pins
 * worker i to the (i mod len)-th CPU of LIST. The workers' phases are held
 * together: each reports when its clients are connected, the parent tells
 * them all to start the run at once, reads the server's CPU and memory
 * over it, and gathers each worker's totals over a pipe when it ends
 * (counts, its latency histogram in full, so the percentiles are those of
 * every echo, and its CPU). A worker that dies or misses a deadline fails
 * the run (exit 1, which worker and how on stderr, no RESULT line); the
 * parent's death kills the workers. Progress lines come from each worker,
 * prefixed "bot[I]:".
 *
 * A message is idx u32 | seq u32 | sent_us u64 | filler up to --size. The
 * echo is checked: its client index, a seq never seen before (dup) and
 * not older than one already seen (out of order), and the latency goes
 * into a log-linear histogram (1 us resolution below 64 us, 1/32 of the
 * value above). Each client is polled when its fd is readable and when
 * mgclient_check says so (one libev timer per client).
 *
 * The clients use the library's defaults (mgclient_options_default)
 * except: --ack-delay sets ack_delay (the library's default is 1: acks
 * wait for data or the next interval flush), --kcp the client's KCP
 * profile (nodelay, interval, resend, nc; the server's comes from its own
 * config, `--set kcp.*`), --manual-flush 1 makes each client's sends of one
 * frame (a poll's echoes answered, a --rate send) leave together at
 * mgclient_flush instead of one packet per mgclient_send.
 *
 * --server-admin ADDR (the server's `admin`, unix:PATH or
 * tcp://127.0.0.1:PORT): the server's net counters are read before and
 * after the run phase and the line gets server_syscalls_per_msg (epoll
 * waits, recvmmsg, sendmmsg, TCP reads and writes per echo),
 * server_dgrams_per_msg, server_frames_per_msg, server_wakeups_per_s and
 * server_msgs_per_wakeup. With --server-pid, msgs_per_server_cpu_s is the
 * echoes per second of server CPU.
 *
 * Output: progress on stderr each second, then
 *   RESULT clients=... sent=... received=... lost=... dup=... p50_ms=...
 *          p99_ms=... max_ms=... connected=... failed=... [server_cpu=...]
 *          bot_cpu=... ooo=... closed=... transport=... rate=... seconds=...
 *          window=... rtt_per_s=... [server_rss_before_kb=... server_rss_kb=...]
 *          client_ack_delay=... client_kcp=NODELAY,INTERVAL,RESEND,NC warmup=...
 * server_cpu and bot_cpu are fractions of one core over the run phase
 * (utime + stime from /proc/PID/stat). rtt_per_s: echoes received during
 * the run phase / its length. server_rss_before_kb: the server's VmRSS
 * before the first connect; server_rss_kb: at the end of the run phase,
 * every client still connected. Exit 0 on a clean run, 1 when a
 * message was lost, duplicated or out of order, or a connect failed.
 *
 * With --procs N > 1 the keys are the same, bot_cpu is the sum over the
 * workers (a fraction of one core: 1.3 is 1.3 cores), rtt_per_s the sum
 * of theirs, and three keys follow:
 *   procs=N bot_cpu_max=... rtt_per_server_cpu_s=...
 * bot_cpu_max: the busiest worker's share of one core (near 1.00: that
 * worker is the limit); rtt_per_server_cpu_s: rtt_per_s / server_cpu
 * (with --server-pid only).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moongate/client.h>

#include "botlib.h"
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
	const char *hello; /* --hello: %d becomes the client's index */
	int window;
	double drain;
	int ack_delay;        /* -1: the library's default */
	int manual_flush;     /* -1: the library's default (0) */
	int kcp[4];           /* nodelay, interval, resend, nc; kcp[1] 0: default */
	int procs;
	struct bot_cpus cpus;
	double warmup;        /* seconds of traffic before the measured ones */
} opt = { .clients = 10, .size = 32, .connect_rate = 500, .rate = 20,
            .seconds = 10, .drain = 2, .ack_delay = -1, .manual_flush = -1,
            .procs = 1 };
static struct mgclient_options copts;

/* WAIT: a worker's clients are connected, the parent's go is due */
enum { CONNECT, WAIT, RUN, DRAIN, CLOSE, END };

/* A worker's totals, sent to the parent at its end. */
struct total {
	uint64_t sent, received, lost, dups, ooo, bad, send_err, dgrams, bytes;
	uint64_t run_recv;
	int32_t connected, failed, closed_early, open_left;
	double run_el, cpu;
	struct hist hist;
};

static struct ev_loop *loop;
static struct bot *bots;
static int phase = CONNECT;
static uint64_t phase_start, phase_deadline, last_progress;
static uint64_t measure_from;  /* echoes of messages sent before: not timed */
static int started;          /* clients whose connect was attempted */
static uint64_t issued;      /* send slots walked in the run phase */
static uint64_t sent, received, dups, ooo, bad, send_err, dgrams;
static int connected, failed, closed_early, done_count;
static struct hist hist;
static uint8_t *msg;
static uint64_t run_recv0, run_recv;   /* received at the run's start, in it */
static double run_el;                  /* length of the run phase, s */
static long rss_before = -1;           /* server VmRSS before, kB */
static struct bot_usage run_usage = { .srv_t0 = -1, .bot_t0 = -1, .srv_cpu = -1,
	                                     .bot_cpu = -1, .rss_kb = -1 };
static uint64_t bytes;                 /* payload bytes of the echoes counted */
static int idx0;                       /* the first client's index */
static char name[32] = "bot";          /* "bot[I]" in worker I */
static struct bot_worker *worker;      /* NULL: no parent to report to */
static ev_io go_w;

/* An echo: 1 when it counts as received. */
static int
message(struct bot *b, const uint8_t *p, size_t len, uint64_t now)
{
	if (opt.hello && len > 1 && p[0] == '{' && p[len - 1] == '}' &&
	    memmem(p, len, "\"op\":\"", 6))
		return 0; /* a service's JSON (the login service's reply) */
	if (len < HDR || (int)bot_get32(p) != b->idx) {
		bad++;
		return 0;
	}
	uint32_t seq = bot_get32(p + 4);
	uint64_t t = bot_get64(p + 8);
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
	bytes += len;
	if (t >= measure_from)
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
		switch (bot_closed(name, b->idx, b->open, phase < CLOSE, ev)) {
		case BOT_CONNECT_FAILED: failed++; break;
		case BOT_CLOSED_EARLY: closed_early++; break;
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
	if (opt.window > 0 && phase == RUN && b->open) {
		for (; k > 0; k--)
			send_one(b, now);
		if (copts.manual_flush) /* the end of this client's frame */
			mgclient_flush(b->ec.c);
	}
}


static void
start_client(struct bot *b)
{
	char err[256], hello[512];
	b->ec.on_event = on_event;
	b->ec.after = after;
	b->ec.data = b;
	int hn = 3;
	memcpy(hello, "bot", 4);
	if (opt.hello) { /* --hello: %d is the client's index, once */
		const char *d = strstr(opt.hello, "%d");
		hn = d ? snprintf(hello, sizeof hello, "%.*s%d%s", (int)(d - opt.hello),
		                  opt.hello, b->idx, d + 2)
		       : snprintf(hello, sizeof hello, "%s", opt.hello);
		if (hn < 0 || (size_t)hn >= sizeof hello)
			hn = (int)sizeof hello - 1;
	}
	if (evclient_start(&b->ec, loop, opt.server, hello, (size_t)hn, &copts, err,
	                   sizeof err) < 0) {
		fprintf(stderr, "%s: client %d: %s\n", name, b->idx, err);
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
	bot_put32(msg, (uint32_t)b->idx);
	bot_put32(msg + 4, b->seq);
	bot_put64(msg + 8, now);
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
	static const char *names[] = { "connect", "wait", "run", "drain", "close",
	                               "end" };
	fprintf(stderr, "%s: %-7s %5.1fs started=%d connected=%d failed=%d "
	        "sent=%llu received=%llu\n", name, names[phase],
	        (now - phase_start) / 1e6, started, connected, failed,
	        (unsigned long long)sent, (unsigned long long)received);
	last_progress = now;
}

static void
next_phase(int p, uint64_t now)
{
	if (phase == RUN) {
		double el = (now - phase_start) / 1e6;
		run_el = el;
		run_recv = received - run_recv0;
		bot_usage_stop(&run_usage, el);
		if (worker && bot_worker_report(worker, 'E', NULL, 0) < 0)
			exit(1); /* the parent is gone */
	}
	phase = p;
	phase_start = now;
	progress(now);
	switch (p) {
	case RUN:
		measure_from = now + (uint64_t)(opt.warmup * 1e6);
		phase_deadline = measure_from + (uint64_t)(opt.seconds * 1e6);
		bot_usage_start(&run_usage, opt.server_pid);
		run_recv0 = received;
		if (opt.window > 0) { /* fill every window */
			for (int i = 0; i < opt.clients; i++)
				for (int k = 0; k < opt.window; k++)
					if (bots[i].open && !bots[i].ec.done)
						send_one(&bots[i], now);
			for (int i = 0; i < opt.clients && copts.manual_flush; i++)
				if (bots[i].open && !bots[i].ec.done)
					mgclient_flush(bots[i].ec.c);
		}
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

static void
on_tick(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l, (void)w, (void)revents;
	uint64_t now = mgclient_now();
	switch (phase) {
	case CONNECT: {
		int due = bot_connect_due(now, phase_start, opt.connect_rate);
		while (started < opt.clients && started < due) {
			start_client(&bots[started]);
			started++;
		}
		if ((started == opt.clients && connected + failed >= opt.clients) ||
		    now >= phase_deadline) { /* the stragglers count as failed */
			if (!worker)
				next_phase(RUN, now);
			else if (bot_worker_report(worker, 'R', NULL, 0) < 0)
				exit(1); /* the parent is gone */
			else
				next_phase(WAIT, now);
		}
		break;
	}
	case WAIT: /* on_go starts the run */
		break;
	case RUN: {
		double el = (now - phase_start) / 1e6;
		if (el > opt.warmup + opt.seconds)
			el = opt.warmup + opt.seconds;
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
				evclient_refresh(&b->ec);
			if (b->open && !b->ec.done) {
				send_one(b, mgclient_now());
				if (copts.manual_flush)
					mgclient_flush(b->ec.c);
			}
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

/* A worker: the parent's go (or its end) */
static void
on_go(struct ev_loop *l, ev_io *w, int revents)
{
	(void)l, (void)revents;
	int r = bot_worker_go(worker);
	if (r == 0)
		return;
	ev_io_stop(loop, w);
	if (r < 0) {
		fprintf(stderr, "%s: the parent is gone\n", name);
		exit(1);
	}
	if (phase == WAIT)
		next_phase(RUN, mgclient_now());
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
	        "       [--kcp NODELAY,INTERVAL,RESEND,NC] [--warmup S] [--procs N] "
	        "[--cpus LIST]\n"
	        "       [--manual-flush 0|1] [--server-admin ADDR] [--hello TEXT]\n");
	return 2;
}

/* --mode: echo is the only one */
static int
arg_mode(const char *v, void *dst)
{
	(void)dst;
	if (strcmp(v, "echo")) {
		fprintf(stderr, "moongate-bot: only --mode echo\n");
		return -2;
	}
	return 0;
}

static int
arg_ack_delay(const char *v, void *dst)
{
	if (strcmp(v, "0") && strcmp(v, "1"))
		return -1;
	*(int *)dst = atoi(v);
	return 0;
}

static int
arg_kcp(const char *v, void *dst)
{
	int *k = dst;
	if (sscanf(v, "%d,%d,%d,%d", &k[0], &k[1], &k[2], &k[3]) != 4 ||
	    k[0] < 0 || k[0] > 2 || k[1] < 1 || k[1] > 5000 || k[2] < 0 ||
	    k[2] > 100 || k[3] < 0 || k[3] > 1)
		return -1;
	return 0;
}

/* The clients of this process (opt.clients of them, indexes from idx0):
 * the phases, then their release. The count of those that did not finish
 * closing, or -1 when out of memory. */
static int
run_clients(void)
{
	bots = calloc((size_t)opt.clients, sizeof *bots);
	msg = calloc(1, (size_t)opt.size);
	loop = ev_loop_new(EVFLAG_AUTO);
	if (!bots || !msg || !loop) {
		fprintf(stderr, "%s: out of memory\n", name);
		return -1;
	}
	for (int i = HDR; i < opt.size; i++)
		msg[i] = (uint8_t)i;
	for (int i = 0; i < opt.clients; i++) {
		bots[i].idx = idx0 + i;
		bots[i].ec.fd = -1;
		bots[i].top = -1;
	}

	if (opt.server_pid)
		rss_before = procstat_rss_kb(opt.server_pid);
	uint64_t now = mgclient_now();
	phase_start = last_progress = now;
	phase_deadline = bot_connect_deadline(now, opt.clients, opt.connect_rate);
	ev_timer tick;
	ev_timer_init(&tick, on_tick, 0, TICK);
	ev_timer_start(loop, &tick);
	if (worker) {
		fcntl(worker->go_fd, F_SETFL,
		      fcntl(worker->go_fd, F_GETFL) | O_NONBLOCK);
		ev_io_init(&go_w, on_go, worker->go_fd, EV_READ);
		ev_io_start(loop, &go_w);
	}
	ev_run(loop, 0);

	int open_left = 0;
	for (int i = 0; i < opt.clients; i++) {
		bot_release(&bots[i].ec, bots[i].open, &open_left, &failed);
		free(bots[i].seen);
	}
	if (open_left)
		fprintf(stderr, "%s: %d clients did not finish closing\n", name,
		        open_left);
	if (send_err || bad)
		fprintf(stderr, "%s: send errors %llu, bad echoes %llu\n", name,
		        (unsigned long long)send_err, (unsigned long long)bad);
	ev_loop_destroy(loop);
	free(bots);
	free(msg);
	return open_left;
}

/* The RESULT line of today's bot, without its newline; the counts are in
 * the globals (this process's, or the workers' merged). */
static void
print_result(uint64_t lost, double rtt_per_s)
{
	printf("RESULT clients=%d sent=%llu received=%llu lost=%llu dup=%llu",
	       opt.clients, (unsigned long long)sent, (unsigned long long)received,
	       (unsigned long long)lost, (unsigned long long)dups);
	bot_print_latency(&hist);
	printf(" connected=%d failed=%d", connected, failed);
	bot_print_server_cpu(&run_usage);
	printf(" bot_cpu=%.2f ooo=%llu closed=%d transport=%.3s rate=%g "
	       "seconds=%g window=%d rtt_per_s=%.0f", run_usage.bot_cpu,
	       (unsigned long long)ooo, closed_early, opt.server, opt.rate,
	       opt.seconds, opt.window, rtt_per_s);
	if (opt.server_pid)
		printf(" server_rss_before_kb=%ld server_rss_kb=%ld", rss_before,
		       run_usage.rss_kb);
	printf(" client_ack_delay=%d client_kcp=%d,%d,%d,%d warmup=%g "
	       "client_manual_flush=%d",
	       copts.ack_delay, copts.nodelay, copts.interval, copts.resend,
	       copts.nc, opt.warmup, copts.manual_flush);
	bot_print_server_io(&run_usage, rtt_per_s * run_usage.seconds);
}

/* Worker i of n: its share of the clients, its totals to the parent. */
static void
run_worker(struct bot_worker *w, int i, int n)
{
	static struct total t; /* a histogram is 16 kB */
	int all = opt.clients, rate = opt.connect_rate;
	opt.clients = all / n + (i < all % n);
	idx0 = i * (all / n) + (i < all % n ? i : all % n);
	opt.connect_rate = rate / n + (i < rate % n);
	if (opt.connect_rate < 1)
		opt.connect_rate = 1;
	opt.server_pid = 0; /* the parent watches the server */
	snprintf(name, sizeof name, "bot[%d]", i);
	worker = w;
	int open_left = run_clients();
	if (open_left < 0)
		_exit(1);
	t.sent = sent;
	t.received = received;
	t.lost = sent > received ? sent - received : 0;
	t.dups = dups;
	t.ooo = ooo;
	t.bad = bad;
	t.send_err = send_err;
	t.dgrams = dgrams;
	t.bytes = bytes;
	t.run_recv = run_recv;
	t.connected = connected;
	t.failed = failed;
	t.closed_early = closed_early;
	t.open_left = open_left;
	t.run_el = run_el;
	t.cpu = run_usage.bot_cpu;
	t.hist = hist;
	fflush(stderr);
	_exit(bot_worker_report(w, 'F', &t, sizeof t) < 0 ? 1 : 0);
}

static double
now_s(void)
{
	return mgclient_now() / 1e6;
}

/* --procs N > 1: fork the workers, hold their phases together, merge. */
static int
run_procs(void)
{
	int n = opt.procs;
	struct bot_procs P;
	struct bot_worker w;
	if (opt.server_pid)
		rss_before = procstat_rss_kb(opt.server_pid);
	int i = bot_procs_fork(&P, "bot", n, &opt.cpus, &w);
	if (i >= 0)
		run_worker(&w, i, n); /* does not return */

	struct total *t = calloc((size_t)n, sizeof *t);
	if (!t) {
		fprintf(stderr, "moongate-bot: out of memory\n");
		bot_procs_reap(&P, 0);
		return 1;
	}
	/* each worker's connect phase ends by its ramp plus 15 s */
	double ready_s = (double)opt.clients / opt.connect_rate + 15 + 10;
	if (bot_procs_expect(&P, 'R', "ready", NULL, 0, ready_s) < 0)
		goto fail;
	if (bot_procs_go(&P) < 0)
		goto fail;
	double t0 = now_s();
	bot_usage_start(&run_usage, opt.server_pid);
	if (bot_procs_expect(&P, 'E', "end of run", NULL, 0, opt.warmup + opt.seconds + 10) < 0)
		goto fail;
	bot_usage_stop(&run_usage, now_s() - t0);
	/* drain, close (2 s), release */
	if (bot_procs_expect(&P, 'F', "totals", t, sizeof *t,
	                     opt.drain + CLOSE_US / 1e6 + 15) < 0)
		goto fail;
	bot_procs_reap(&P, 5);

	uint64_t lost = 0, nbytes = 0;
	double bot_cpu = 0, bot_cpu_max = 0, rtt = 0;
	for (int k = 0; k < n; k++) {
		sent += t[k].sent;
		received += t[k].received;
		lost += t[k].lost;
		dups += t[k].dups;
		ooo += t[k].ooo;
		bad += t[k].bad;
		send_err += t[k].send_err;
		dgrams += t[k].dgrams;
		nbytes += t[k].bytes;
		connected += t[k].connected;
		failed += t[k].failed;
		closed_early += t[k].closed_early;
		hist_merge(&hist, &t[k].hist);
		if (t[k].run_el > 0)
			rtt += t[k].run_recv / t[k].run_el;
		if (t[k].cpu < 0 || bot_cpu < 0)
			bot_cpu = -1; /* unknown */
		else
			bot_cpu += t[k].cpu;
		if (t[k].cpu > bot_cpu_max)
			bot_cpu_max = t[k].cpu;
	}
	run_usage.bot_cpu = bot_cpu;
	fprintf(stderr, "bot: %d workers: %llu echo bytes received\n", n,
	        (unsigned long long)nbytes);
	print_result(lost, rtt);
	printf(" procs=%d bot_cpu_max=%.2f", n, bot_cpu_max);
	/* n/a: no --server-pid, or too little server CPU to divide by */
	if (opt.server_pid && run_usage.srv_cpu > 0)
		printf(" rtt_per_server_cpu_s=%.0f", rtt / run_usage.srv_cpu);
	else
		printf(" rtt_per_server_cpu_s=n/a");
	printf("\n");
	free(t);
	return lost || dups || ooo || bad || failed || closed_early ? 1 : 0;
fail:
	bot_procs_reap(&P, 0); /* kills the workers left */
	fprintf(stderr, "moongate-bot: run failed: %s\n", P.err);
	free(t);
	return 1;
}

int
main(int argc, char **argv)
{
	static const struct bot_arg args[] = {
		BOT_COMMON_ARGS(opt),
		{ "--mode", BOT_FN, NULL, arg_mode },
		{ "--window", BOT_INT, &opt.window, 0 },
		{ "--hello", BOT_STR, &opt.hello, 0 },
		{ "--ack-delay", BOT_FN, &opt.ack_delay, arg_ack_delay },
		{ "--manual-flush", BOT_FN, &opt.manual_flush, arg_ack_delay },
		BOT_ADMIN_ARG,
		{ "--kcp", BOT_FN, opt.kcp, arg_kcp },
		{ "--warmup", BOT_DOUBLE, &opt.warmup, 0 },
		{ "--procs", BOT_INT, &opt.procs, 0 },
		{ "--cpus", BOT_FN, &opt.cpus, bot_arg_cpus },
		{ NULL, 0, NULL, 0 },
	};
	int r = bot_args(argc, argv, args);
	if (r == -2)
		return 2;
	if (r < 0)
		return usage();
	if (!opt.server || opt.clients < 1 || opt.clients > 1000000 ||
	    opt.rate < 0 || opt.rate > 100000 || !(opt.seconds > 0) ||
	    opt.seconds > 86400 || opt.size < HDR || opt.size > 65536 ||
	    opt.connect_rate < 1 || opt.window < 0 || opt.window > 4096 ||
	    !(opt.drain >= 0) || opt.drain > 3600 || !(opt.warmup >= 0) ||
	    opt.warmup > 3600 || opt.procs < 1 ||
	    opt.procs > BOT_PROCS_MAX || opt.procs > opt.clients)
		return usage();
	mgclient_options_default(&copts);
	if (opt.ack_delay >= 0)
		copts.ack_delay = opt.ack_delay;
	if (opt.manual_flush >= 0)
		copts.manual_flush = opt.manual_flush;
	if (opt.kcp[1] > 0) {
		copts.nodelay = opt.kcp[0];
		copts.interval = opt.kcp[1];
		copts.resend = opt.kcp[2];
		copts.nc = opt.kcp[3];
	}
	bot_setup();
	if (opt.procs > 1)
		return run_procs();
	if (opt.cpus.n > 0 && bot_pin_cpu("bot", opt.cpus.cpu[0]) < 0)
		return 1;

	int open_left = run_clients();
	if (open_left < 0)
		return 1;
	uint64_t lost = sent > received ? sent - received : 0;
	print_result(lost, run_el > 0 ? run_recv / run_el : 0);
	printf("\n");
	return lost || dups || ooo || bad || failed || closed_early ? 1 : 0;
}
