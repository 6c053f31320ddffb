/*
 * botlib.c - what the bots share (botlib.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

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

const char *bot_server_admin;

/* One `stats net` from the admin console at bot_server_admin ("unix:PATH"
 * or "tcp://127.0.0.1:PORT"), 2 s at most: 0 and v filled, or -1. */
static int
admin_io(unsigned long long v[BOT_IO_N])
{
	static const char *keys[BOT_IO_N] = {
		"net.syscalls", "net.waits", "net.udp_in", "net.udp_out",
		"net.tcp_frames_in", "net.tcp_frames_out" };
	const char *a = bot_server_admin;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, got = 0;
	memset(&ss, 0, sizeof ss);
	if (!strncmp(a, "unix:", 5)) {
		struct sockaddr_un *u = (struct sockaddr_un *)&ss;
		if (strlen(a + 5) >= sizeof u->sun_path)
			return -1;
		u->sun_family = AF_UNIX;
		strcpy(u->sun_path, a + 5);
		sl = sizeof *u;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		char host[64];
		int port;
		if (sscanf(a, "tcp://%63[^:]:%d", host, &port) != 2 ||
		    inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -1;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		sl = sizeof *in;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { 2, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	char buf[16384];
	size_t len = 0;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 ||
	    write(fd, "stats net\n", 10) != 10) {
		close(fd);
		return -1;
	}
	while (len < sizeof buf - 1) { /* the reply ends with an empty line */
		ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = 0;
		if (strstr(buf, "\n\n"))
			break;
	}
	close(fd);
	buf[len] = 0;
	for (int k = 0; k < BOT_IO_N; k++) {
		size_t kl = strlen(keys[k]);
		for (char *p = buf; (p = strstr(p, keys[k])); p += kl)
			if ((p == buf || p[-1] == '\n') && p[kl] == ' ') {
				v[k] = strtoull(p + kl + 1, NULL, 10);
				got++;
				break;
			}
	}
	return got == BOT_IO_N ? 0 : -1;
}

void
bot_usage_start(struct bot_usage *u, int server_pid)
{
	u->io_ok = bot_server_admin && admin_io(u->io0) == 0;
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
	u->seconds = seconds;
	if (u->io_ok) {
		unsigned long long v[BOT_IO_N];
		u->io_ok = admin_io(v) == 0;
		for (int k = 0; u->io_ok && k < BOT_IO_N; k++)
			u->io[k] = v[k] - u->io0[k];
	}
}

void
bot_print_server_io(const struct bot_usage *u, double msgs)
{
	if (u->server_pid && u->srv_cpu > 0 && u->seconds > 0)
		printf(" msgs_per_server_cpu_s=%.0f", msgs / (u->srv_cpu * u->seconds));
	else if (u->server_pid)
		printf(" msgs_per_server_cpu_s=n/a");
	if (!u->io_ok || msgs <= 0) {
		if (bot_server_admin)
			printf(" server_syscalls_per_msg=n/a");
		return;
	}
	double w = (double)u->io[BOT_IO_WAITS];
	printf(" server_syscalls_per_msg=%.3f server_dgrams_per_msg=%.3f "
	       "server_frames_per_msg=%.3f server_wakeups_per_s=%.0f "
	       "server_msgs_per_wakeup=%.2f",
	       (double)u->io[BOT_IO_SYSCALLS] / msgs,
	       (double)(u->io[BOT_IO_UDP_IN] + u->io[BOT_IO_UDP_OUT]) / msgs,
	       (double)(u->io[BOT_IO_TCP_IN] + u->io[BOT_IO_TCP_OUT]) / msgs,
	       u->seconds > 0 ? w / u->seconds : 0, w > 0 ? msgs / w : 0);
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

/* ---- a bot over several processes --------------------------------------- */

int
bot_arg_cpus(const char *v, void *dst)
{
	struct bot_cpus *c = dst;
	c->n = 0;
	while (*v) {
		char *end;
		long a = strtol(v, &end, 10), b = a;
		if (end == v || a < 0 || a >= CPU_SETSIZE)
			return -1;
		v = end;
		if (*v == '-') {
			b = strtol(v + 1, &end, 10);
			if (end == v + 1 || b < a || b >= CPU_SETSIZE)
				return -1;
			v = end;
		}
		for (long k = a; k <= b; k++) {
			if (c->n >= BOT_PROCS_MAX)
				return -1;
			c->cpu[c->n++] = (int)k;
		}
		if (*v == ',')
			v++;
		else if (*v)
			return -1;
	}
	return c->n > 0 ? 0 : -1;
}

static double
mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
kill_all(struct bot_procs *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->pid[i] > 0) {
			kill(p->pid[i], SIGKILL);
			waitpid(p->pid[i], NULL, 0);
			p->pid[i] = 0;
		}
}

int
bot_pin_cpu(const char *name, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) < 0) {
		fprintf(stderr, "%s: pinning to CPU %d: %s\n", name, cpu,
		        strerror(errno));
		return -1;
	}
	return 0;
}

int
bot_procs_fork(struct bot_procs *p, const char *name, int n,
               const struct bot_cpus *cpus, struct bot_worker *w)
{
	pid_t parent = getpid();
	memset(p, 0, sizeof *p);
	p->name = name;
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < n; i++) {
		int rp[2], gp[2];
		if (pipe(rp) < 0) {
			fprintf(stderr, "%s: pipe: %s\n", name, strerror(errno));
			kill_all(p);
			exit(1);
		}
		if (pipe(gp) < 0) {
			fprintf(stderr, "%s: pipe: %s\n", name, strerror(errno));
			close(rp[0]), close(rp[1]);
			kill_all(p);
			exit(1);
		}
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "%s: fork: %s\n", name, strerror(errno));
			close(rp[0]), close(rp[1]), close(gp[0]), close(gp[1]);
			kill_all(p);
			exit(1);
		}
		if (pid == 0) {
			/* the parent's death kills us; it may have died already */
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
				_exit(1);
			for (int k = 0; k < i; k++)
				close(p->rfd[k]), close(p->gfd[k]);
			close(rp[0]);
			close(gp[1]);
			char who[64];
			snprintf(who, sizeof who, "%s[%d]", name, i);
			if (cpus && cpus->n > 0 &&
			    bot_pin_cpu(who, cpus->cpu[i % cpus->n]) < 0)
				_exit(1);
			w->idx = i;
			w->report_fd = rp[1];
			w->go_fd = gp[0];
			return i;
		}
		close(rp[1]);
		close(gp[0]);
		p->pid[i] = pid;
		p->rfd[i] = rp[0];
		p->gfd[i] = gp[1];
		p->n = i + 1;
	}
	return -1;
}

int
bot_worker_report(const struct bot_worker *w, char tag, const void *data,
                  size_t len)
{
	const uint8_t *d = data;
	if (write(w->report_fd, &tag, 1) != 1)
		return -1;
	while (len > 0) {
		ssize_t r = write(w->report_fd, d, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		d += r;
		len -= (size_t)r;
	}
	return 0;
}

int
bot_worker_go(const struct bot_worker *w)
{
	char c;
	ssize_t r = read(w->go_fd, &c, 1);
	if (r == 1)
		return c == 'G' ? 1 : -1;
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	return -1;
}

/* Worker i failed: how, on stderr. */
static void
worker_failed(struct bot_procs *p, int i, const char *what, const char *how)
{
	int st = 0;
	pid_t r = 0;
	/* its pipe closes as it exits, just before it can be reaped */
	for (int k = 0; k < 100 && r == 0; k++) {
		r = waitpid(p->pid[i], &st, WNOHANG);
		if (r == 0)
			usleep(10000);
	}
	if (r == p->pid[i]) {
		p->pid[i] = 0;
		if (WIFSIGNALED(st))
			snprintf(p->err, sizeof p->err, "worker %d (pid %d) killed by "
			         "signal %d (%s) before its %s report", i, (int)r,
			         WTERMSIG(st), strsignal(WTERMSIG(st)), what);
		else
			snprintf(p->err, sizeof p->err, "worker %d (pid %d) exited with "
			         "status %d before its %s report", i, (int)r,
			         WEXITSTATUS(st), what);
	} else
		snprintf(p->err, sizeof p->err, "worker %d (pid %d) %s before its "
		         "%s report", i, p->pid[i], how, what);
}

int
bot_procs_expect(struct bot_procs *p, char tag, const char *what, void *recs,
                 size_t len, double timeout)
{
	double deadline = mono_s() + timeout;
	for (int i = 0; i < p->n; i++)
		p->got[i] = 0;
	for (;;) {
		struct pollfd pf[BOT_PROCS_MAX];
		int who[BOT_PROCS_MAX], m = 0;
		for (int i = 0; i < p->n; i++)
			if (p->got[i] < 1 + len) {
				pf[m].fd = p->rfd[i];
				pf[m].events = POLLIN;
				who[m++] = i;
			}
		if (m == 0)
			return 0;
		double left = deadline - mono_s();
		if (left <= 0) {
			snprintf(p->err, sizeof p->err, "worker %d (pid %d) sent no %s "
			         "report within %.0f s (%d of %d workers late)", who[0],
			         p->pid[who[0]], what, timeout, m, p->n);
			return -1;
		}
		int r = poll(pf, (nfds_t)m, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR) {
			snprintf(p->err, sizeof p->err, "poll: %s", strerror(errno));
			return -1;
		}
		for (int k = 0; r > 0 && k < m; k++) {
			if (!pf[k].revents)
				continue;
			int i = who[k];
			ssize_t n;
			if (p->got[i] == 0) {
				char c;
				n = read(p->rfd[i], &c, 1);
				if (n == 1 && c != tag) {
					snprintf(p->err, sizeof p->err, "worker %d (pid %d) sent "
					         "'%c' where its %s report was due", i, p->pid[i],
					         c, what);
					return -1;
				}
			} else
				n = read(p->rfd[i], (uint8_t *)recs + (size_t)i * len +
				         (p->got[i] - 1), 1 + len - p->got[i]);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				worker_failed(p, i, what, n < 0 ? strerror(errno) :
				              "closed its pipe");
				return -1;
			}
			p->got[i] += (size_t)n;
		}
	}
}

int
bot_procs_go(struct bot_procs *p)
{
	for (int i = 0; i < p->n; i++)
		if (write(p->gfd[i], "G", 1) != 1) {
			snprintf(p->err, sizeof p->err, "worker %d (pid %d): go: %s", i,
			         p->pid[i], strerror(errno));
			return -1;
		}
	return 0;
}

void
bot_procs_reap(struct bot_procs *p, double timeout)
{
	double deadline = mono_s() + timeout;
	for (int i = 0; i < p->n; i++) {
		while (p->pid[i] > 0 && mono_s() < deadline) {
			if (waitpid(p->pid[i], NULL, WNOHANG) != 0)
				p->pid[i] = 0;
			else
				usleep(10000);
		}
	}
	kill_all(p);
	for (int i = 0; i < p->n; i++) {
		close(p->rfd[i]);
		close(p->gfd[i]);
	}
}
