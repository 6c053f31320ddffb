/*
 * moongate_netem.c - moongate-netem, a userspace network emulator: UDP
 * and TCP proxies that lose, delay, jitter, reorder, duplicate,
 * rate-cap, blackhole, stall, cut and reset traffic on purpose, steered
 * at run time over a line-based control channel. netem_model.c decides
 * the fate of each datagram and chunk; the other files do the I/O.
 *
 *   moongate-netem --udp 127.0.0.1:0=127.0.0.1:7777 \
 *                  --tcp 127.0.0.1:0=127.0.0.1:7777 --control 127.0.0.1:0
 *   moongate-netem ctl 127.0.0.1:PORT set up loss=0.2
 *
 * The files, one concern each, are listed in netem.h; this one holds
 * main: the options, the listeners, the loop and the shutdown. One libev
 * loop, no threads. A connection or control client that ends inside one
 * of its callbacks is unlinked and its watchers stopped at once, and
 * freed by the prepare watcher (on_reap), never under its own callback.
 */
#include "netem.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct netem_state G;

/* ---- the loop ------------------------------------------------------------ */

/* Before the loop blocks: free what ended in a callback. */
static void
on_reap(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	tcp_reap();
	control_reap();
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	note("signal %d: exiting", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/* Close everything, free everything. */
static void
shutdown_all(void)
{
	tcp_close_all();
	control_close_all();
	udp_free_all();
	for (int i = 0; i < LISTEN_MAX; i++) {
		if (G.udp[i].fd >= 0)
			close(G.udp[i].fd);
		if (G.tcp[i].fd >= 0)
			close(G.tcp[i].fd);
	}
	if (G.ctl_fd >= 0)
		close(G.ctl_fd);
	free(G.htab);
	free(G.dgram);
	ev_loop_destroy(G.loop);
}

/* ---- main ---------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
	"usage: moongate-netem [options]\n"
	"       moongate-netem ctl HOST:PORT COMMAND...\n"
	"\n"
	"A network emulator for tests: UDP and TCP proxies that break the\n"
	"network on purpose. Addresses are numeric (127.0.0.1:7777, [::1]:7777);\n"
	"port 0 picks a free one. At least one --udp or --tcp.\n"
	"\n"
	"  --udp LISTEN=TARGET   a UDP proxy; one upstream socket per client (repeatable)\n"
	"  --tcp LISTEN=TARGET   a TCP proxy (repeatable)\n"
	"  --control HOST:PORT   the control channel (a line-based TCP protocol)\n"
	"  --set \"SETTINGS\"      initial impairments, as the control command set\n"
	"  --seed N              the PRNG seed (default: from the clock; printed)\n"
	"  --udp-idle SECONDS    an idle UDP mapping expires (60)\n"
	"  --udp-max N           UDP mappings at once; more clients are dropped (1024)\n"
	"  --udp-queue N         datagrams waiting (delay, rate) at once (8192)\n"
	"  --rate-queue BYTES    bytes waiting for a rate cap, per flow and direction (65536)\n"
	"  --tcp-max N           TCP connections at once; more are reset (1024)\n"
	"  --tcp-buffer BYTES    buffer per TCP connection and direction (65536)\n"
	"\n"
	"Control commands (one per line, one reply line: \"ok ...\" or \"error ...\"):\n"
	"  set [up|down|both] [udp|tcp] key=value...   keys: loss dup reorder (0..1\n"
	"      or N%%; udp only), delay jitter reorder_ms (ms; or Ns), rate\n"
	"      (bytes/s; Nkbit Nmbit NkB NMB; 0: none), blackhole stall refuse (0/1)\n"
	"  clear  show  stats  rebind  cut  reset  stall  unstall  quit  help\n"
	"\n"
	"Prints \"moongate-netem: udp|tcp LISTEN_IP PORT -> TARGET_IP PORT\",\n"
	"\"moongate-netem: control IP PORT\", the seed, then \"moongate-netem: ready\".\n");
}

static int
bad(const char *opt, const char *why)
{
	fprintf(stderr, "moongate-netem: %s: %s\n", opt, why);
	return 2;
}

/* A number in [lo, hi] from the whole of s. */
static int
num_opt(const char *s, double lo, double hi, double *out)
{
	char *e;
	double x = strtod(s, &e);
	if (!*s || *e || !(x >= lo && x <= hi))
		return -1;
	*out = x;
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 2, argv + 2);

	char err[512];
	const char *sets[64];
	int nsets = 0, have_ctl = 0, have_seed = 0;
	struct addr ctl_at;
	double v;
	G.udp_idle = 60;
	G.udp_max = 1024;
	G.udp_queue = 8192;
	G.rate_queue = 65536;
	G.tcp_max = 1024;
	G.tcp_buffer = 65536;
	G.ctl_fd = -1;
	for (int i = 0; i < LISTEN_MAX; i++)
		G.udp[i].fd = G.tcp[i].fd = -1;
	netem_settings_clear(&G.set);

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			usage(stdout);
			return 0;
		}
		if (strncmp(o, "--", 2))
			return bad(o, "not an option (try --help)");
		if (i + 1 >= argc)
			return bad(o, "needs a value (try --help)");
		const char *val = argv[++i];
		if (!strcmp(o, "--udp") || !strcmp(o, "--tcp")) {
			int udp = o[2] == 'u';
			if ((udp ? G.nudp : G.ntcp) == LISTEN_MAX)
				return bad(o, "too many (16 at most)");
			char l[128];
			const char *eq = strchr(val, '=');
			if (!eq || (size_t)(eq - val) >= sizeof l)
				return bad(o, "LISTEN=TARGET expected, e.g. "
				           "127.0.0.1:0=127.0.0.1:7777");
			memcpy(l, val, (size_t)(eq - val));
			l[eq - val] = 0;
			struct addr *at = udp ? &G.udp[G.nudp].at : &G.tcp[G.ntcp].at;
			struct addr *to = udp ? &G.udp[G.nudp].target : &G.tcp[G.ntcp].target;
			if (addr_parse(l, at, err, sizeof err) < 0 ||
			    addr_parse(eq + 1, to, err, sizeof err) < 0)
				return bad(o, err);
			if (addr_port(to) == 0)
				return bad(o, "the target needs a port");
			if (udp)
				G.nudp++;
			else
				G.ntcp++;
		} else if (!strcmp(o, "--control")) {
			if (addr_parse(val, &ctl_at, err, sizeof err) < 0)
				return bad(o, err);
			have_ctl = 1;
		} else if (!strcmp(o, "--set")) {
			if (nsets == 64)
				return bad(o, "too many (64 at most)");
			sets[nsets++] = val;
		} else if (!strcmp(o, "--seed")) {
			char *e;
			errno = 0;
			G.seed = strtoull(val, &e, 0);
			if (!*val || *e || errno || *val == '-')
				return bad(o, "an unsigned 64-bit integer expected");
			have_seed = 1;
		} else if (!strcmp(o, "--udp-idle")) {
			if (num_opt(val, 0.001, 86400, &v) < 0)
				return bad(o, "seconds in 0.001..86400 expected");
			G.udp_idle = v;
		} else if (!strcmp(o, "--udp-max") || !strcmp(o, "--udp-queue") ||
		           !strcmp(o, "--tcp-max")) {
			if (num_opt(val, 1, 1000000, &v) < 0 || v != (int)v)
				return bad(o, "an integer in 1..1000000 expected");
			*(o[2] == 't' ? &G.tcp_max : o[6] == 'm' ? &G.udp_max
			                                         : &G.udp_queue) = (int)v;
		} else if (!strcmp(o, "--rate-queue") || !strcmp(o, "--tcp-buffer")) {
			if (num_opt(val, 1024, 1 << 30, &v) < 0 || v != (size_t)v)
				return bad(o, "bytes in 1024..1073741824 expected");
			*(o[2] == 'r' ? &G.rate_queue : &G.tcp_buffer) = (size_t)v;
		} else {
			return bad(o, "unknown option (try --help)");
		}
	}
	if (G.nudp + G.ntcp == 0) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < nsets; i++)
		if (netem_settings_apply(&G.set, sets[i], err, sizeof err) < 0)
			return bad("--set", err);
	if (!have_seed) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		G.seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
		         (uint64_t)getpid() << 32;
	}
	for (int p = 0; p < 2; p++)
		for (int d = 0; d < 2; d++)
			netem_rng_seed(&G.rng[p][d], G.seed * 4 + (uint64_t)(p * 2 + d));

	unsigned hsize = 16;
	while (hsize < (unsigned)G.udp_max * 2)
		hsize *= 2;
	G.hmask = hsize - 1;
	G.htab = calloc(hsize, sizeof *G.htab);
	heap_init(&G.queue);
	G.dgram = malloc(DGRAM_MAX);
	G.loop = ev_default_loop(EVFLAG_AUTO);
	if (!G.htab || !G.dgram || !G.loop) {
		fprintf(stderr, "moongate-netem: out of memory\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	char a[80], b[80];
	int failed = 0;
	for (int i = 0; i < G.nudp && !failed; i++) {
		struct udp_lis *l = &G.udp[i];
		if ((l->fd = listen_on(SOCK_DGRAM, &l->at, err, sizeof err)) < 0) {
			fprintf(stderr, "moongate-netem: --udp %s: %s\n",
			        addr_text(&l->at, a, sizeof a), err);
			failed = 1;
			break; /* no watcher on fd -1 (libev asserts) */
		}
		ev_io_init(&l->io, udp_on_read, l->fd, EV_READ);
		l->io.data = l;
		ev_io_start(G.loop, &l->io);
		printf("moongate-netem: udp %s -> %s\n", addr_text(&l->at, a, sizeof a),
		       addr_text(&l->target, b, sizeof b));
	}
	for (int i = 0; i < G.ntcp && !failed; i++) {
		struct tcp_lis *l = &G.tcp[i];
		if ((l->fd = listen_on(SOCK_STREAM, &l->at, err, sizeof err)) < 0) {
			fprintf(stderr, "moongate-netem: --tcp %s: %s\n",
			        addr_text(&l->at, a, sizeof a), err);
			failed = 1;
			break; /* no watcher on fd -1 (libev asserts) */
		}
		ev_io_init(&l->io, tcp_on_accept, l->fd, EV_READ);
		ev_timer_init(&l->pause, tcp_on_pause, 0, 0);
		l->io.data = l->pause.data = l;
		ev_io_start(G.loop, &l->io);
		printf("moongate-netem: tcp %s -> %s\n", addr_text(&l->at, a, sizeof a),
		       addr_text(&l->target, b, sizeof b));
	}
	if (!failed && have_ctl) {
		if ((G.ctl_fd = listen_on(SOCK_STREAM, &ctl_at, err, sizeof err)) < 0) {
			fprintf(stderr, "moongate-netem: --control %s: %s\n",
			        addr_text(&ctl_at, a, sizeof a), err);
			failed = 1;
		} else {
			ev_io_init(&G.ctl_io, control_on_accept, G.ctl_fd, EV_READ);
			ev_io_start(G.loop, &G.ctl_io);
			printf("moongate-netem: control %s\n", addr_text(&ctl_at, a, sizeof a));
		}
	}
	if (failed) {
		shutdown_all();
		return 1;
	}
	ev_timer_init(&G.qtm, udp_on_queue, 0, 0);
	double sweep = G.udp_idle / 2 < 1 ? G.udp_idle / 2 : 1;
	ev_timer_init(&G.sweep, udp_on_sweep, sweep, sweep);
	ev_timer_start(G.loop, &G.sweep);
	ev_prepare_init(&G.reap, on_reap);
	ev_prepare_start(G.loop, &G.reap);
	ev_signal_init(&G.sigterm, on_signal, SIGTERM);
	ev_signal_init(&G.sigint, on_signal, SIGINT);
	ev_signal_start(G.loop, &G.sigterm);
	ev_signal_start(G.loop, &G.sigint);

	printf("moongate-netem: seed %" PRIu64 "\n", G.seed);
	printf("moongate-netem: ready\n");
	fflush(stdout);
	note("ready, seed %" PRIu64, G.seed);

	ev_run(G.loop, 0);

	shutdown_all();
	return 0;
}
