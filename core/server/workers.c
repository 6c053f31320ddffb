/*
 * workers.c - the supervisor of `workers = N` (workers.h).
 */
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

struct worker {
	pid_t pid;
	int ready;
	double started, restart_at; /* monotonic s */
	struct workers_fds fds;
};

static double
mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
workers_auto(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : (int)n;
}

/* One socket of a reuseport group at host:port (port 0: the kernel picks,
 * then *port says which). -1 with the reason logged. */
static int
bind_one(const struct config_listen *l, int *port)
{
	struct addrinfo hints, *ai = NULL;
	char ps[16];
	const char *host = l->host[0] && strcmp(l->host, "*") ? l->host : "0.0.0.0";
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = l->transport == GATE_TCP ? SOCK_STREAM : SOCK_DGRAM;
	snprintf(ps, sizeof ps, "%d", *port);
	int rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc) {
		log_error("workers: %s: %s", host, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 ||
	    (l->transport == GATE_TCP &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    (l->transport == GATE_TCP && listen(fd, 511) < 0)) {
		log_error("workers: cannot listen on %s %s:%d: %s",
		          l->transport == GATE_TCP ? "tcp" : "udp", host, *port,
		          strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage a;
	socklen_t alen = sizeof a;
	if (*port == 0 && getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
		*port = ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
		                                      : ((struct sockaddr_in *)&a)->sin_port);
	return fd;
}

/* The steering program of a UDP group of n sockets: a session packet or
 * FEC frame (type 0x10..0x18) goes to socket byte[1] (its session id's low
 * byte, the owning worker); anything else, or an index past the group,
 * returns n, which makes the kernel pick by its 4-tuple hash. */
static int
attach_steering(int fd, int n)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),                 /* A = type */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x10, 0, 4),       /* < 0x10: hash */
		BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 0x18, 3, 0),       /* > 0x18: hash */
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 1),                 /* A = sid's low byte */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)n, 1, 0), /* no such worker */
		BPF_STMT(BPF_RET | BPF_A, 0),
		BPF_STMT(BPF_RET | BPF_K, (uint32_t)n),               /* the kernel's hash */
	};
	struct sock_fprog prog = { sizeof code / sizeof code[0], code };
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
}

/* What a worker's child must not keep: the other workers' sockets, the
 * supervisor's signalfd and the ready pipe's read end. */
struct keep_out {
	struct worker *ws;
	int sfd, ready_rd;
};

static void
spawn(struct worker *ws, int index, int n, workers_run_fn *run, int ready_fd,
      const sigset_t *old, const struct keep_out *ko, void *user)
{
	struct worker *w = &ws[index];
	pid_t pid = fork();
	if (pid < 0) {
		log_error("workers: fork for worker %d: %s", index, strerror(errno));
		w->pid = 0;
		w->restart_at = mono_s() + 1;
		return;
	}
	if (pid == 0) {
		for (int k = 0; k < n; k++)
			if (k != index) {
				for (int i = 0; i < ws[k].fds.n; i++)
					close(ws[k].fds.fd[i]);
				close(ws[k].fds.chan_rd);
			}
		close(ko->sfd);
		close(ko->ready_rd);
		sigprocmask(SIG_SETMASK, old, NULL);
		int st = run(index, n, &w->fds, ready_fd, user);
		fflush(stdout);
		_exit(st);
	}
	w->pid = pid;
	w->ready = 0;
	w->started = mono_s();
	log_info("workers: worker %d started, pid %d", index, (int)pid);
}

static void
describe(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "stopped (status 0x%x)", st);
}

int
workers_supervise(const struct config *c, int n, workers_run_fn *run,
                  void (*on_ready)(const struct workers_fds *fds, void *user),
                  void *user)
{
	if (n < 1 || n > WORKERS_MAX) {
		log_error("workers: %d workers (1..%d)", n, WORKERS_MAX);
		return 1;
	}
	struct worker *ws = calloc((size_t)n, sizeof *ws);
	if (!ws)
		return 1;
	/* the groups: listener i, socket k for worker k, bound in order */
	for (int i = 0; i < c->nlisten; i++) {
		int port = c->listen[i].port;
		for (int k = 0; k < n; k++) {
			int fd = bind_one(&c->listen[i], &port);
			if (fd < 0)
				return 1;
			ws[k].fds.fd[i] = fd;
			ws[k].fds.port[i] = port;
			ws[k].fds.n = c->nlisten;
			if (k == 0 && c->listen[i].transport != GATE_TCP && !c->listen[i].raw &&
			    attach_steering(fd, n) < 0) {
				log_error("workers: SO_ATTACH_REUSEPORT_CBPF: %s: packets would "
				          "reach the wrong worker", strerror(errno));
				return 1;
			}
		}
	}
	/* the channels: worker k reads chan[k][0]; the others write chan[k][1] */
	int (*chan)[2] = calloc((size_t)n, sizeof *chan);
	if (!chan)
		return 1;
	for (int k = 0; k < n; k++)
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		               chan[k]) < 0) {
			log_error("workers: socketpair: %s", strerror(errno));
			return 1;
		}
	for (int k = 0; k < n; k++) {
		ws[k].fds.chan_rd = chan[k][0];
		ws[k].fds.nworkers = n;
		for (int w = 0; w < n; w++)
			ws[k].fds.chan_wr[w] = chan[w][1];
	}
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		log_error("workers: pipe: %s", strerror(errno));
		return 1;
	}
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_error("workers: signalfd: %s", strerror(errno));
		return 1;
	}
	struct keep_out ko = { ws, sfd, ready[0] };
	for (int k = 0; k < n; k++)
		spawn(ws, k, n, run, ready[1], &old, &ko, user);
	int nready = 0, announced = 0, stopping = 0, live = n, status = 0;
	double stop_deadline = 0;
	for (;;) {
		struct pollfd p[2] = { { sfd, POLLIN, 0 }, { ready[0], POLLIN, 0 } };
		int rc = poll(p, 2, 100);
		if (rc < 0 && errno != EINTR)
			break;
		double now = mono_s();
		if (p[1].revents & POLLIN) {
			unsigned char b[64];
			ssize_t r = read(ready[0], b, sizeof b);
			for (ssize_t j = 0; j < r; j++)
				if (b[j] < n && !ws[b[j]].ready) {
					ws[b[j]].ready = 1;
					nready++;
				}
			if (!announced && nready >= n) {
				announced = 1;
				log_info("workers: %d workers ready", n);
				on_ready(&ws[0].fds, user);
			}
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGHUP) {
					log_info("workers: SIGHUP: every worker reloads");
					for (int k = 0; k < n; k++)
						if (ws[k].pid > 0)
							kill(ws[k].pid, SIGHUP);
				} else if (sig == SIGTERM || sig == SIGINT) {
					if (!stopping) {
						log_info("workers: signal %d: every worker closes its "
						         "sessions", sig);
						live = 0;
						for (int k = 0; k < n; k++)
							live += ws[k].pid > 0;
					}
					stopping = 1;
					stop_deadline = now + c->shutdown_ms / 1000.0 + 5;
					for (int k = 0; k < n; k++)
						if (ws[k].pid > 0)
							kill(ws[k].pid, sig);
				}
			}
		}
		/* children that ended */
		int st;
		pid_t pid;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (int k = 0; k < n; k++) {
				if (ws[k].pid != pid)
					continue;
				char why[96];
				describe(st, why, sizeof why);
				if (ws[k].ready)
					nready--;
				ws[k].pid = 0;
				ws[k].ready = 0;
				if (stopping) {
					live--;
					if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
						status = 1;
					log_info("workers: worker %d (pid %d) %s", k, (int)pid, why);
				} else {
					/* at most one start a second: a worker that dies at
					 * once does not spin */
					ws[k].restart_at = ws[k].started + 1 > now ? ws[k].started + 1 : now;
					log_error("workers: worker %d (pid %d) %s: restarting it%s", k,
					          (int)pid, why, ws[k].restart_at > now ? " in a moment" : "");
				}
			}
		}
		if (stopping) {
			if (live <= 0)
				break;
			if (now > stop_deadline) {
				for (int k = 0; k < n; k++)
					if (ws[k].pid > 0) {
						log_error("workers: worker %d (pid %d) did not stop: killed",
						          k, (int)ws[k].pid);
						kill(ws[k].pid, SIGKILL);
					}
				stop_deadline = now + 5;
			}
			continue;
		}
		for (int k = 0; k < n; k++)
			if (ws[k].pid == 0 && now >= ws[k].restart_at)
				spawn(ws, k, n, run, ready[1], &old, &ko, user);
	}
	for (int k = 0; k < n; k++) {
		for (int i = 0; i < ws[k].fds.n; i++)
			close(ws[k].fds.fd[i]);
		close(chan[k][0]);
		close(chan[k][1]);
	}
	free(chan);
	close(sfd);
	close(ready[0]);
	close(ready[1]);
	free(ws);
	return status;
}
