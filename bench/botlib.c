/*
 * botlib.c - what the bots share (botlib.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>

#include "botlib.h"
#include "procstat.h"

int
bot_args(int argc, char **argv, const struct bot_arg *args)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			return -1;
		const char *v = argv[++i];
		const struct bot_arg *p = args;
		while (p->name && strcmp(p->name, a))
			p++;
		if (!p->name)
			return -1;
		switch (p->kind) {
		case BOT_STR:
			*(const char **)p->dst = v;
			break;
		case BOT_INT:
			*(int *)p->dst = atoi(v);
			break;
		case BOT_DOUBLE:
			*(double *)p->dst = atof(v);
			break;
		default: {
			int r = p->fn(v, p->dst);
			if (r < 0)
				return r;
		}
		}
	}
	return 0;
}

void
bot_setup(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
}

int
bot_connect_due(uint64_t now, uint64_t start, int rate)
{
	return (int)((now - start) / 1e6 * rate) + 1;
}

uint64_t
bot_connect_deadline(uint64_t now, int clients, int rate)
{
	return now + (uint64_t)((double)clients / rate * 1e6) + 15000000;
}

int
bot_closed(const char *name, int idx, int opened, int early,
           const struct mgclient_event *ev)
{
	if (!opened) {
		fprintf(stderr, "%s: client %d: connect failed: %s\n", name, idx,
		        ev->reason);
		return BOT_CONNECT_FAILED;
	}
	if (early) {
		fprintf(stderr, "%s: client %d closed (%d %s%s)\n", name, idx,
		        ev->code, ev->reason, ev->remote ? ", by the server" : "");
		return BOT_CLOSED_EARLY;
	}
	return BOT_CLOSED;
}

void
bot_close(struct evclient *e)
{
	if (e->c && !e->done) {
		mgclient_close(e->c, MGCLIENT_CLOSE_NORMAL, "bot done");
		evclient_service(e);
	}
}

void
bot_release(struct evclient *e, int opened, int *open_left, int *failed)
{
	if (e->c && !e->done)
		(*open_left)++;
	if (e->c && !opened && !e->done)
		(*failed)++; /* never opened, never closed: timed out here */
	mgclient_release(e->c);
}

void
bot_usage_start(struct bot_usage *u, int server_pid)
{
	u->server_pid = server_pid;
	u->srv_t0 = server_pid ? procstat_cpu_ticks(server_pid) : -1;
	u->bot_t0 = procstat_cpu_ticks(0);
	u->srv_cpu = u->bot_cpu = -1;
	u->rss_kb = -1;
}

void
bot_usage_stop(struct bot_usage *u, double seconds)
{
	if (u->server_pid) {
		u->rss_kb = procstat_rss_kb(u->server_pid);
		u->srv_cpu = procstat_cpu_share(u->srv_t0,
		             procstat_cpu_ticks(u->server_pid), seconds);
	}
	u->bot_cpu = procstat_cpu_share(u->bot_t0, procstat_cpu_ticks(0), seconds);
}

void
bot_print_latency(const struct hist *h)
{
	printf(" p50_ms=%.3f p99_ms=%.3f max_ms=%.3f", hist_ms(h, 0.50),
	       hist_ms(h, 0.99), h->max / 1000.0);
}

void
bot_print_server_cpu(const struct bot_usage *u)
{
	if (u->server_pid)
		printf(" server_cpu=%.2f", u->srv_cpu);
}
