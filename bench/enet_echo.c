/*
 * enet_echo.c - enet-echo: an ENet peer for bench/loss_bench.sh, so that
 * moongate's KCP is measured against ENet (libenet-dev, 1.3.17 on Debian
 * 12, its defaults) in the same namespace, with the same loss rule and the
 * same workload and report as moongate-bot's.
 *
 *   enet-echo --listen PORT [--peers N]            the server: echoes every
 *                                                  packet, reliable, on its
 *                                                  channel; until SIGTERM
 *   enet-echo --server 127.0.0.1:PORT --clients 50 --rate 20 --seconds 10
 *             [--size 32] [--server-pid PID] [--connect-rate 100]
 *             [--drain 20] [--warmup 0]            the clients (the bot)
 *
 * The server prints "enet-echo: listening udp 127.0.0.1 PORT" (PORT 0
 * picks a free one) and then "enet-echo: ready".
 *
 * ENet is used as a game would: one host, enet_host_service in a loop
 * with a 1 ms wait (--service-ms), so ENet's timers (its retransmission
 * timeout, srtt + 4 x rttvar with no floor, doubling per retry) are
 * checked at least every millisecond, its best case. Everything else is
 * ENet's default: one channel, reliable packets, no bandwidth limit.
 *
 * The clients are the peers of one host (one socket): --clients connect
 * at --connect-rate per second, then each sends --rate reliable messages
 * per second for --warmup + --seconds, spread evenly by a 1 ms tick as
 * moongate-bot does (the warm-up's echoes are checked, not timed: ENet's
 * RTT estimate starts at 500 ms and comes down by 1/8 per ack, so it takes
 * it a few seconds at 20 Hz to follow a 1 ms RTT); then up to --drain s for
 * the last echoes, then a graceful
 * disconnect (up to 2 s). A message is idx u32 | seq u32 | sent_us u64 |
 * filler up to --size; the echo's latency goes into the same histogram as
 * moongate-bot's (bench/hist.c).
 *
 * Output: progress on stderr each second, then
 *   RESULT clients=... sent=... received=... lost=... dup=... p50_ms=...
 *          p99_ms=... max_ms=... connected=... failed=... [server_cpu=...]
 *          bot_cpu=... ooo=... closed=... transport=enet rate=... seconds=...
 *          window=0 rtt_per_s=... enet_rtt_ms=... enet_rttvar_ms=... warmup=...
 * the keys moongate-bot prints, with enet_rtt_ms and enet_rttvar_ms, the
 * medians over the peers of ENet's own estimates at the end of the run
 * phase (its retransmission timeout is enet_rtt_ms + 4 x enet_rttvar_ms).
 * closed: peers disconnected (timed out) before the end. Exit 0 on a clean
 * run, 1 when a message was lost, duplicated or out of order, or a connect
 * failed.
 */
#include <enet/enet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "botlib.h"
#include "hist.h"

#define HDR 16
#define TICK_US 1000
#define CLOSE_US 2000000

static struct {
	const char *server;
	int clients, size, connect_rate;
	double rate, seconds;
	int server_pid;
	double drain;
	int listen;           /* server: the port (-1: client mode) */
	int peers;
	int service_ms;
	double warmup;
} opt = { NULL, 10, 32, 100, 20, 10, 0, 2, -1, 1024, 1, 0 };

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the server ----------------------------------------------------------- */

static int
serve(void)
{
	ENetAddress addr;
	enet_address_set_host_ip(&addr, "127.0.0.1");
	addr.port = (enet_uint16)opt.listen;
	ENetHost *h = enet_host_create(&addr, (size_t)opt.peers, 1, 0, 0);
	if (!h) {
		fprintf(stderr, "enet-echo: cannot listen on 127.0.0.1:%d\n", opt.listen);
		return 1;
	}
	printf("enet-echo: listening udp 127.0.0.1 %u\nenet-echo: ready\n",
	       (unsigned)h->address.port);
	fflush(stdout);
	uint64_t echoed = 0;
	while (!stop) {
		ENetEvent ev;
		int r = enet_host_service(h, &ev, (enet_uint32)opt.service_ms);
		for (; r > 0; r = enet_host_service(h, &ev, 0)) {
			if (ev.type != ENET_EVENT_TYPE_RECEIVE)
				continue;
			ENetPacket *p = enet_packet_create(ev.packet->data,
			                                   ev.packet->dataLength,
			                                   ENET_PACKET_FLAG_RELIABLE);
			if (p && enet_peer_send(ev.peer, ev.channelID, p) < 0)
				enet_packet_destroy(p);
			enet_packet_destroy(ev.packet);
			echoed++;
		}
		if (r < 0) {
			fprintf(stderr, "enet-echo: enet_host_service failed\n");
			break;
		}
	}
	enet_host_destroy(h);
	fprintf(stderr, "enet-echo: %llu echoed\n", (unsigned long long)echoed);
	return 0;
}

/* ---- the clients ---------------------------------------------------------- */

struct cli {
	ENetPeer *peer;
	int open, done;       /* CONNECT seen; DISCONNECT seen */
	uint32_t seq;         /* next to send */
	int64_t top;          /* highest seq received, -1 before any */
	uint8_t *seen;        /* bit per seq received */
	size_t seen_bytes;
};

static struct cli *cl;
static uint64_t sent, received, dups, ooo, bad, send_err;
static int connected, failed, closed_early;
static struct hist hist;
static uint64_t measure_from;  /* echoes of messages sent before: not timed */

enum { CONNECT, RUN, DRAIN, CLOSE, END };
static int phase = CONNECT;

static void
on_receive(struct cli *c, const uint8_t *p, size_t len, uint64_t now)
{
	if (len < HDR || bot_get32(p) != (uint32_t)(c - cl)) {
		bad++;
		return;
	}
	uint32_t seq = bot_get32(p + 4);
	uint64_t t = bot_get64(p + 8);
	if (seq >= c->seq || (size_t)seq / 8 >= c->seen_bytes) {
		bad++;
		return;
	}
	if (c->seen[seq / 8] & (1u << (seq % 8))) {
		dups++;
		return;
	}
	c->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
	if ((int64_t)seq < c->top)
		ooo++;
	else
		c->top = seq;
	received++;
	if (t >= measure_from)
		hist_add(&hist, now > t ? now - t : 0);
}

static void
send_one(struct cli *c, uint8_t *msg)
{
	if ((size_t)c->seq / 8 >= c->seen_bytes) {
		size_t n = c->seen_bytes ? c->seen_bytes * 2 : 64;
		uint8_t *p = realloc(c->seen, n);
		if (!p) {
			send_err++;
			return;
		}
		memset(p + c->seen_bytes, 0, n - c->seen_bytes);
		c->seen = p;
		c->seen_bytes = n;
	}
	bot_put32(msg, (uint32_t)(c - cl));
	bot_put32(msg + 4, c->seq);
	bot_put64(msg + 8, now_us());
	ENetPacket *p = enet_packet_create(msg, (size_t)opt.size,
	                                   ENET_PACKET_FLAG_RELIABLE);
	if (!p || enet_peer_send(c->peer, 0, p) < 0) {
		if (p)
			enet_packet_destroy(p);
		send_err++;
		return;
	}
	c->seq++;
	sent++;
}

static void
on_event(const ENetEvent *ev, uint64_t now)
{
	struct cli *c = ev->peer->data;
	if (!c)
		return;
	switch (ev->type) {
	case ENET_EVENT_TYPE_CONNECT:
		c->open = 1;
		connected++;
		break;
	case ENET_EVENT_TYPE_RECEIVE:
		on_receive(c, ev->packet->data, ev->packet->dataLength, now);
		enet_packet_destroy(ev->packet);
		break;
	case ENET_EVENT_TYPE_DISCONNECT:
		if (!c->open) {
			fprintf(stderr, "enet-echo: client %d: connect failed\n",
			        (int)(c - cl));
			failed++;
		} else if (phase < CLOSE) {
			fprintf(stderr, "enet-echo: client %d closed (timeout)\n",
			        (int)(c - cl));
			closed_early++;
		}
		c->done = 1;
		ev->peer->data = NULL;
		break;
	default:
		break;
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* ENet's own estimates (srtt, rttvar), the medians over the open peers */
static void
sample_rtt(uint32_t *rtt_med, uint32_t *var_med)
{
	uint32_t *rtt = calloc((size_t)opt.clients, sizeof *rtt);
	uint32_t *var = calloc((size_t)opt.clients, sizeof *var);
	int n = 0;
	for (int i = 0; rtt && var && i < opt.clients; i++)
		if (cl[i].peer && cl[i].open && !cl[i].done) {
			rtt[n] = cl[i].peer->roundTripTime;
			var[n++] = cl[i].peer->roundTripTimeVariance;
		}
	if (n) {
		qsort(rtt, (size_t)n, sizeof *rtt, cmp_u32);
		qsort(var, (size_t)n, sizeof *var, cmp_u32);
		*rtt_med = rtt[n / 2];
		*var_med = var[n / 2];
	}
	free(rtt);
	free(var);
}

static int
run_clients(void)
{
	char host[64];
	unsigned port;
	if (sscanf(opt.server, "%63[^:]:%u", host, &port) != 2 || port > 65535) {
		fprintf(stderr, "enet-echo: --server HOST:PORT\n");
		return 2;
	}
	ENetAddress addr;
	if (enet_address_set_host_ip(&addr, host) < 0) {
		fprintf(stderr, "enet-echo: bad address %s\n", host);
		return 2;
	}
	addr.port = (enet_uint16)port;
	ENetHost *h = enet_host_create(NULL, (size_t)opt.clients, 1, 0, 0);
	cl = calloc((size_t)opt.clients, sizeof *cl);
	uint8_t *msg = calloc(1, (size_t)opt.size);
	if (!h || !cl || !msg) {
		fprintf(stderr, "enet-echo: cannot create the client host\n");
		return 1;
	}
	for (int i = HDR; i < opt.size; i++)
		msg[i] = (uint8_t)i;
	for (int i = 0; i < opt.clients; i++)
		cl[i].top = -1;

	struct bot_usage usage = { .srv_t0 = -1, .bot_t0 = -1, .srv_cpu = -1,
	                                     .bot_cpu = -1, .rss_kb = -1 };
	uint64_t start = now_us(), phase_start = start, last_progress = start;
	uint64_t deadline = bot_connect_deadline(start, opt.clients, opt.connect_rate);
	uint64_t issued = 0, run_recv0 = 0, run_recv = 0;
	double run_el = 0;
	uint32_t rtt_med = 0, var_med = 0;
	int started = 0, done = 0;
	static const char *names[] = { "connect", "run", "drain", "close", "end" };
	while (phase != END && !stop) {
		uint64_t now = now_us();
		int next = phase;
		switch (phase) {
		case CONNECT: {
			int due = bot_connect_due(now, phase_start, opt.connect_rate);
			while (started < opt.clients && started < due) {
				struct cli *c = &cl[started];
				c->peer = enet_host_connect(h, &addr, 1, 0);
				if (!c->peer) {
					failed++;
					c->done = 1;
				} else {
					c->peer->data = c;
				}
				started++;
			}
			if ((started == opt.clients && connected + failed >= opt.clients) ||
			    now >= deadline)
				next = RUN;
			break;
		}
		case RUN: {
			double el = (now - phase_start) / 1e6;
			if (el > opt.warmup + opt.seconds)
				el = opt.warmup + opt.seconds;
			uint64_t due = (uint64_t)(el * opt.rate * opt.clients);
			for (; issued < due; issued++) {
				struct cli *c = &cl[issued % (uint64_t)opt.clients];
				if (c->open && !c->done)
					send_one(c, msg);
			}
			if (now >= deadline)
				next = DRAIN;
			break;
		}
		case DRAIN:
			if (received + dups >= sent || now >= deadline)
				next = CLOSE;
			break;
		case CLOSE:
			done = 0;
			for (int i = 0; i < opt.clients; i++)
				done += cl[i].done || !cl[i].peer;
			if (done >= opt.clients || now >= deadline)
				next = END;
			break;
		}
		if (next != phase) {
			if (phase == RUN) {
				run_el = (now - phase_start) / 1e6;
				run_recv = received - run_recv0;
				bot_usage_stop(&usage, run_el);
				sample_rtt(&rtt_med, &var_med);
			}
			phase = next;
			phase_start = now;
			if (phase == RUN) {
				measure_from = now + (uint64_t)(opt.warmup * 1e6);
				deadline = measure_from + (uint64_t)(opt.seconds * 1e6);
				bot_usage_start(&usage, opt.server_pid);
				run_recv0 = received;
			} else if (phase == DRAIN) {
				deadline = now + (uint64_t)(opt.drain * 1e6);
			} else if (phase == CLOSE) {
				deadline = now + CLOSE_US;
				for (int i = 0; i < opt.clients; i++)
					if (cl[i].peer && !cl[i].done)
						enet_peer_disconnect(cl[i].peer, 0);
			}
		}
		if (phase != END && now - last_progress >= 1000000) {
			fprintf(stderr, "enet-echo: %-7s %5.1fs started=%d connected=%d "
			        "failed=%d sent=%llu received=%llu\n", names[phase],
			        (now - phase_start) / 1e6, started, connected, failed,
			        (unsigned long long)sent, (unsigned long long)received);
			last_progress = now;
		}
		if (phase == END)
			break;
		/* Send what was queued, wait for packets up to the next tick
		 * (ENet's timers run in every service), deliver every event. */
		uint64_t t = now_us(), tick_end = now + TICK_US;
		enet_uint32 wait = t < tick_end ? (enet_uint32)((tick_end - t + 999) / 1000) : 0;
		if (wait > (enet_uint32)opt.service_ms)
			wait = (enet_uint32)opt.service_ms;
		ENetEvent ev;
		int r = enet_host_service(h, &ev, wait);
		for (; r > 0; r = enet_host_service(h, &ev, 0))
			on_event(&ev, now_us());
		if (r < 0) {
			fprintf(stderr, "enet-echo: enet_host_service failed\n");
			break;
		}
	}

	int open_left = 0;
	for (int i = 0; i < opt.clients; i++) {
		if (cl[i].peer && !cl[i].done) {
			open_left++;
			enet_peer_reset(cl[i].peer);
		}
		if (cl[i].peer && !cl[i].open && !cl[i].done)
			failed++;
		free(cl[i].seen);
	}
	enet_host_flush(h);
	enet_host_destroy(h);
	if (open_left)
		fprintf(stderr, "enet-echo: %d clients did not finish closing\n", open_left);
	if (send_err || bad)
		fprintf(stderr, "enet-echo: send errors %llu, bad echoes %llu\n",
		        (unsigned long long)send_err, (unsigned long long)bad);

	uint64_t lost = sent > received ? sent - received : 0;
	printf("RESULT clients=%d sent=%llu received=%llu lost=%llu dup=%llu",
	       opt.clients, (unsigned long long)sent, (unsigned long long)received,
	       (unsigned long long)lost, (unsigned long long)dups);
	bot_print_latency(&hist);
	printf(" connected=%d failed=%d", connected, failed);
	bot_print_server_cpu(&usage);
	printf(" bot_cpu=%.2f ooo=%llu closed=%d transport=enet rate=%g "
	       "seconds=%g window=0 rtt_per_s=%.0f enet_rtt_ms=%u enet_rttvar_ms=%u "
	       "warmup=%g\n", usage.bot_cpu, (unsigned long long)ooo, closed_early,
	       opt.rate, opt.seconds, run_el > 0 ? run_recv / run_el : 0,
	       rtt_med, var_med, opt.warmup);
	free(cl);
	free(msg);
	return lost || dups || ooo || bad || failed || closed_early ? 1 : 0;
}

static int
usage(void)
{
	fprintf(stderr,
	        "usage: enet-echo --listen PORT [--peers N] [--service-ms MS]\n"
	        "       enet-echo --server HOST:PORT [--clients N] [--rate MSGS_PER_S]\n"
	        "                 [--seconds S] [--size BYTES] [--server-pid PID]\n"
	        "                 [--connect-rate N] [--drain S] [--service-ms MS]\n"
	        "                 [--warmup S]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	static const struct bot_arg args[] = {
		BOT_COMMON_ARGS(opt),
		{ "--listen", BOT_INT, &opt.listen, 0 },
		{ "--peers", BOT_INT, &opt.peers, 0 },
		{ "--service-ms", BOT_INT, &opt.service_ms, 0 },
		{ "--warmup", BOT_DOUBLE, &opt.warmup, 0 },
		{ NULL, 0, NULL, 0 },
	};
	if (bot_args(argc, argv, args) < 0)
		return usage();
	if ((opt.listen < 0) == !opt.server || opt.listen > 65535 ||
	    opt.clients < 1 || opt.clients > 4095 || opt.peers < 1 ||
	    opt.peers > 4095 || opt.rate < 0 || opt.rate > 100000 ||
	    !(opt.seconds > 0) || opt.seconds > 86400 || opt.size < HDR ||
	    opt.size > 65536 || opt.connect_rate < 1 || !(opt.drain >= 0) ||
	    opt.drain > 3600 || opt.service_ms < 0 || opt.service_ms > 1000 ||
	    !(opt.warmup >= 0) || opt.warmup > 3600)
		return usage();
	if (enet_initialize() != 0) {
		fprintf(stderr, "enet-echo: enet_initialize failed\n");
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	int rc = opt.listen >= 0 ? serve() : run_clients();
	enet_deinitialize();
	return rc;
}
