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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "handoff.h"
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

/* Is host:port free of any other socket? A reuseport group joins any
 * socket of the same user bound to the same address and port: a group
 * made while another process still holds the port (a second supervisor,
 * or the workers of one just killed, dying) would mix its sockets with
 * those, and the steering's slot numbers would point at sockets nobody
 * reads. So a supervisor binds a plain socket first (no SO_REUSEPORT; TCP
 * with SO_REUSEADDR, which TIME_WAIT does not block but a listener does):
 * 1 free, 0 taken (EADDRINUSE), -1 another error (logged). */
static int
port_free(const struct config_listen *l, int port)
{
	struct addrinfo hints, *ai = NULL;
	char ps[16];
	const char *host = l->host[0] && strcmp(l->host, "*") ? l->host : "0.0.0.0";
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = l->transport == GATE_TCP ? SOCK_STREAM : SOCK_DGRAM;
	snprintf(ps, sizeof ps, "%d", port);
	if (getaddrinfo(host, ps, &hints, &ai))
		return -1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0), one = 1;
	int r = -1;
	if (fd >= 0 && (l->transport != GATE_TCP ||
	                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0))
		r = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 1 : errno == EADDRINUSE ? 0 : -1;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return r;
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

/* The steering program of a group of 2n sockets (two generations of n
 * workers: the live one at base, the other for an upgrade). A UDP session
 * packet or FEC frame (type 0x10..0x18) goes to socket byte[1] (its
 * session id's low byte: the owning worker's slot), whichever generation;
 * a v2 HELLO or INIT (type 0x01 or 0x03, version 2) whose caps (byte 34)
 * carry a worker hint (bits 1-7: slot + 1) to that slot; anything else (a
 * handshake without a hint; for TCP every connection: a hint there is
 * read by the worker, which hands the connection over) to one of the live
 * generation's: base + the packet's flow hash (or, when the kernel has
 * none, the CPU) modulo n. A slot past 2n goes to the live generation. */
static int
attach_steering(int fd, int tcp, int n, int base)
{
	enum { LIVE = 18 }; /* the index of the "live" part below */
	uint32_t slots = (uint32_t)(2 * n);
	struct sock_filter udp[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),              /* A = payload length */
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 35, 0, 4),      /* < 35 bytes: 6 */
		/* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0),              /* A = type << 8 | version */
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0102, 8, 0),  /* HELLO v2: 12 */
		/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0302, 7, 0),  /* INIT v2: 12 */
		/* 5 */ BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
		/* 6 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 2, 0, 11),      /* < 2 bytes: live */
		/* 7 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),              /* A = type */
		/* 8 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x10, 0, 9),    /* < 0x10: live */
		/* 9 */ BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 0x18, 8, 0),    /* > 0x18: live */
		/* 10 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 1),             /* A = sid's low byte */
		/* 11 */ BPF_JUMP(BPF_JMP | BPF_JA, 4, 0, 0),               /* to 16 */
		/* 12 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 34),            /* A = caps */
		/* 13 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 1),            /* A = hint: slot + 1 */
		/* 14 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0),      /* none: live */
		/* 15 */ BPF_STMT(BPF_ALU | BPF_SUB | BPF_K, 1),            /* A = slot */
		/* 16 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, slots, 1, 0),  /* no such slot: live */
		/* 17 */ BPF_STMT(BPF_RET | BPF_A, 0),
		/* 18 live: */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_RXHASH),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_CPU),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (uint32_t)n),
		BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, (uint32_t)base),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = { sizeof udp / sizeof udp[0], udp };
	if (tcp) { /* the "live" part only */
		prog.filter = udp + LIVE;
		prog.len = 6;
	}
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
}

/* What a worker's child must not keep: the other workers' sockets and
 * read ends, the supervisor's signalfd and the ready pipe's read end. */
struct sup {
	const struct config *c;
	int n, slots;            /* workers per generation; 2n slots */
	int base;                /* the live generation's first slot */
	struct worker *ws;
	int sfd, ready_rd, ready_wr;
	sigset_t old;
	workers_run_fn *run;
	void *user;
	const char *exe;         /* the binary an upgrade starts */
	char *const *argv;       /* its arguments (this process's) */
	double drain_until;      /* the old generation is stopped then */
	int upgrading;           /* new generation started, not yet all ready */
	int upgraded;            /* an upgrade succeeded: restarts exec the binary */
};

static void
child_close(struct sup *u, int index)
{
	for (int k = 0; k < u->slots; k++)
		if (k != index) {
			for (int i = 0; i < u->ws[k].fds.n; i++)
				close(u->ws[k].fds.fd[i]);
			close(u->ws[k].fds.chan_rd);
		}
	close(u->sfd);
	close(u->ready_rd);
}

/* MOONGATE_WORKER=index,ready,chan_rd,nworkers,nlisten,fd:port,...;wr,...
 * for an exec'd worker (an upgrade's new binary). */
static int
worker_env(struct sup *u, int index, char *buf, size_t len)
{
	const struct workers_fds *f = &u->ws[index].fds;
	int o = snprintf(buf, len, "%d,%d,%d,%d,%d", index, u->ready_wr, f->chan_rd,
	                 f->nworkers, f->n);
	for (int i = 0; i < f->n && o > 0 && (size_t)o < len; i++)
		o += snprintf(buf + o, len - (size_t)o, ",%d:%d", f->fd[i], f->port[i]);
	for (int w = 0; w < f->nworkers && o > 0 && (size_t)o < len; w++)
		o += snprintf(buf + o, len - (size_t)o, "%c%d", w ? ',' : ';', f->chan_wr[w]);
	return o > 0 && (size_t)o < len ? 0 : -1;
}

static void
keep_on_exec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

static void
spawn(struct sup *u, int index, int exec_new)
{
	struct worker *w = &u->ws[index];
	char env[4096];
	if (exec_new && worker_env(u, index, env, sizeof env) < 0) {
		log_error("workers: worker %d: too many descriptors to pass", index);
		w->restart_at = mono_s() + 1;
		return;
	}
	pid_t sup = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_error("workers: fork for worker %d: %s", index, strerror(errno));
		w->pid = 0;
		w->restart_at = mono_s() + 1;
		return;
	}
	if (pid == 0) {
		/* the supervisor gone (kill -9, a crash), its workers go with it:
		 * a new one could not steer to them, and they would hold the
		 * ports (PR_SET_PDEATHSIG survives the exec of an upgrade) */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != sup)
			_exit(1);
		child_close(u, index);
		sigprocmask(SIG_SETMASK, &u->old, NULL);
		if (exec_new) {
			for (int i = 0; i < w->fds.n; i++)
				keep_on_exec(w->fds.fd[i]);
			keep_on_exec(w->fds.chan_rd);
			for (int k = 0; k < w->fds.nworkers; k++)
				keep_on_exec(w->fds.chan_wr[k]);
			keep_on_exec(u->ready_wr);
			setenv("MOONGATE_WORKER", env, 1);
			execv(u->exe, u->argv);
			log_error("workers: worker %d: exec %s: %s", index, u->exe,
			          strerror(errno));
			_exit(127);
		}
		int st = u->run(index, u->slots, &w->fds, u->ready_wr, u->user);
		fflush(stdout);
		_exit(st);
	}
	w->pid = pid;
	w->ready = 0;
	w->started = mono_s();
	log_info("workers: worker %d started, pid %d%s", index, (int)pid,
	         exec_new ? " (upgrade: a new binary)" : "");
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

/* Connections handed to slot k while no worker serves it (a frame that
 * named an idle slot): closed, so that the client tries again. */
static void
discard_handoffs(int fd, int k)
{
	for (int round = 0; round < 64; round++) {
		char buf[256];
		int cfd, truncated;
		if (handoff_recv(fd, buf, sizeof buf, &cfd, &truncated) < 0)
			return;
		if (cfd >= 0) {
			close(cfd);
			log_info("workers: a tcp connection handed to slot %d, where no "
			         "worker runs, closed", k);
		}
	}
}

/* Steer every group to the generation at base. */
static int
steer(struct sup *u, int base)
{
	const struct config *c = u->c;
	for (int i = 0; i < c->nlisten; i++) {
		const struct config_listen *l = &c->listen[i];
		int tcp = l->transport == GATE_TCP || l->raw;
		if (attach_steering(u->ws[0].fds.fd[i], tcp, u->n, base) < 0) {
			log_error("workers: SO_ATTACH_REUSEPORT_CBPF: %s: packets would "
			          "reach the wrong worker", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int
alive_in(struct sup *u, int base)
{
	int a = 0;
	for (int k = base; k < base + u->n; k++)
		a += u->ws[k].pid > 0;
	return a;
}

int
workers_supervise(const struct config *c, int n, workers_run_fn *run,
                  void (*on_ready)(const struct workers_fds *fds, void *user),
                  void *user, const char *exe, char *const *argv)
{
	if (n < 1 || n > WORKERS_MAX) {
		log_error("workers: %d workers (1..%d)", n, WORKERS_MAX);
		return 1;
	}
	struct sup su = { .c = c, .n = n, .slots = 2 * n, .run = run, .user = user,
	                  .exe = exe, .argv = argv, .sfd = -1, .ready_rd = -1,
	                  .ready_wr = -1 };
	struct sup *u = &su;
	int status = 1;
	int (*chan)[2] = NULL;
	u->ws = calloc((size_t)u->slots, sizeof *u->ws);
	/* the channels: slot k reads chan[k][0]; the others write chan[k][1] */
	chan = calloc((size_t)u->slots, sizeof *chan);
	if (!u->ws || !chan) {
		log_error("workers: out of memory");
		goto out;
	}
	struct worker *ws = u->ws;
	/* every descriptor -1 until opened: a failure below closes only those */
	for (int k = 0; k < u->slots; k++) {
		for (int i = 0; i < 16; i++)
			ws[k].fds.fd[i] = -1;
		ws[k].fds.n = c->nlisten;
		chan[k][0] = chan[k][1] = -1;
	}
	/* the groups: listener i, socket k for slot k, bound in order, all
	 * kept open while the server runs (the group's order never changes) */
	for (int i = 0; i < c->nlisten; i++) {
		int port = c->listen[i].port;
		/* a port another process holds: wait a little (workers of a
		 * supervisor just killed die with it), then refuse */
		for (int tries = 0; port != 0; tries++) {
			int f = port_free(&c->listen[i], port);
			if (f == 1)
				break;
			if (f < 0 || tries >= 100) {
				log_error("workers: %s port %d is taken by another process "
				          "(another server?): not starting",
				          c->listen[i].transport == GATE_TCP ? "tcp" : "udp",
				          port);
				goto out;
			}
			struct timespec ts = { 0, 50 * 1000 * 1000 }; /* 5 s in all */
			nanosleep(&ts, NULL);
		}
		for (int k = 0; k < u->slots; k++) {
			int fd = bind_one(&c->listen[i], &port);
			if (fd < 0)
				goto out;
			ws[k].fds.fd[i] = fd;
			ws[k].fds.port[i] = port;
		}
	}
	if (steer(u, 0) < 0)
		goto out;
	for (int k = 0; k < u->slots; k++)
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		               chan[k]) < 0) {
			log_error("workers: socketpair: %s", strerror(errno));
			goto out;
		}
	for (int k = 0; k < u->slots; k++) {
		ws[k].fds.chan_rd = chan[k][0];
		ws[k].fds.nworkers = u->slots;
		for (int w = 0; w < u->slots; w++)
			ws[k].fds.chan_wr[w] = chan[w][1];
	}
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		log_error("workers: pipe: %s", strerror(errno));
		goto out;
	}
	u->ready_rd = ready[0];
	u->ready_wr = ready[1];
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, &u->old);
	u->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (u->sfd < 0) {
		log_error("workers: signalfd: %s", strerror(errno));
		goto out;
	}
	status = 0;
	for (int k = 0; k < n; k++)
		spawn(u, k, 0);
	int announced = 0, stopping = 0;
	double stop_deadline = 0;
	for (;;) {
		/* the signals, the ready pipe, and the channels of slots that no
		 * worker reads: a connection handed to one is closed here */
		struct pollfd p[2 + 2 * WORKERS_MAX];
		int np = 2, pslot[2 + 2 * WORKERS_MAX];
		p[0] = (struct pollfd){ u->sfd, POLLIN, 0 };
		p[1] = (struct pollfd){ u->ready_rd, POLLIN, 0 };
		for (int k = 0; k < u->slots; k++)
			if (ws[k].pid == 0) {
				pslot[np] = k;
				p[np++] = (struct pollfd){ ws[k].fds.chan_rd, POLLIN, 0 };
			}
		int rc = poll(p, (nfds_t)np, 100);
		if (rc < 0 && errno != EINTR)
			break;
		double now = mono_s();
		for (int i = 2; i < np; i++)
			if (p[i].revents & POLLIN)
				discard_handoffs(ws[pslot[i]].fds.chan_rd, pslot[i]);
		if (p[1].revents & POLLIN) {
			unsigned char b[64];
			ssize_t r = read(u->ready_rd, b, sizeof b);
			for (ssize_t j = 0; j < r; j++)
				if (b[j] < u->slots)
					ws[b[j]].ready = 1;
			int nb = u->base, live = 0;
			if (u->upgrading)
				nb = u->base == 0 ? n : 0;
			for (int k = nb; k < nb + n; k++)
				live += ws[k].ready;
			if (!announced && live >= n) {
				announced = 1;
				log_info("workers: %d workers ready", n);
				on_ready(&ws[0].fds, user);
			}
			if (u->upgrading && live >= n) {
				/* every new worker serves: new sessions go to them now;
				 * the old ones keep theirs and leave when they are done */
				if (steer(u, nb) < 0) {
					status = 1;
				} else {
					int old = u->base;
					u->base = nb;
					u->upgrading = 0;
					u->upgraded = 1;
					u->drain_until = now + c->upgrade_drain_ms / 1000.0;
					log_info("workers: upgrade: %d new workers serve; the old "
					         "ones drain (at most %d ms)", n, c->upgrade_drain_ms);
					for (int k = old; k < old + n; k++)
						if (ws[k].pid > 0)
							kill(ws[k].pid, SIGWINCH);
				}
			}
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(u->sfd, &si, sizeof si) == sizeof si) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGUSR1) { /* log rotation: every process reopens */
					log_reopen();
					for (int k = 0; k < u->slots; k++)
						if (ws[k].pid > 0)
							kill(ws[k].pid, SIGUSR1);
				} else if (sig == SIGHUP) {
					log_info("workers: SIGHUP: every worker reloads");
					for (int k = 0; k < u->slots; k++)
						if (ws[k].pid > 0)
							kill(ws[k].pid, SIGHUP);
				} else if (sig == SIGUSR2 && !stopping) {
					int other = u->base == 0 ? n : 0;
					if (u->upgrading || alive_in(u, other)) {
						log_warn("workers: upgrade refused: the previous one is "
						         "still under way (its old workers drain)");
					} else {
						log_info("workers: upgrade: starting %d workers of %s",
						         n, u->exe);
						u->upgrading = 1;
						for (int k = other; k < other + n; k++) {
							ws[k].ready = 0;
							spawn(u, k, 1);
						}
					}
				} else if (sig == SIGTERM || sig == SIGINT) {
					if (!stopping)
						log_info("workers: signal %d: every worker closes its "
						         "sessions", sig);
					stopping = 1;
					stop_deadline = now + c->shutdown_ms / 1000.0 + 5;
					for (int k = 0; k < u->slots; k++)
						if (ws[k].pid > 0)
							kill(ws[k].pid, sig);
				}
			}
		}
		/* children that ended */
		int st;
		pid_t pid;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (int k = 0; k < u->slots; k++) {
				if (ws[k].pid != pid)
					continue;
				char why[96];
				describe(st, why, sizeof why);
				ws[k].pid = 0;
				ws[k].ready = 0;
				int live_gen = k >= u->base && k < u->base + n;
				int new_gen = u->upgrading && !live_gen;
				if (stopping || (!live_gen && !new_gen)) {
					/* shutting down, or an old worker done draining */
					if (stopping && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
						status = 1;
					log_info("workers: worker %d (pid %d) %s", k, (int)pid, why);
				} else if (new_gen) {
					/* a new binary that does not start: the upgrade fails,
					 * the old workers go on */
					log_error("workers: upgrade failed: worker %d (pid %d) %s; "
					          "the old workers go on", k, (int)pid, why);
					u->upgrading = 0;
					int other = u->base == 0 ? n : 0;
					for (int j = other; j < other + n; j++)
						if (ws[j].pid > 0)
							kill(ws[j].pid, SIGTERM);
				} else {
					/* at most one start a second: a worker that dies at
					 * once does not spin */
					ws[k].restart_at = ws[k].started + 1 > now ? ws[k].started + 1 : now;
					ws[k].fds.restarts++; /* the next one knows (metrics) */
					log_error("workers: worker %d (pid %d) %s: restarting it%s", k,
					          (int)pid, why, ws[k].restart_at > now ? " in a moment" : "");
				}
			}
		}
		if (stopping) {
			int live = 0;
			for (int k = 0; k < u->slots; k++)
				live += ws[k].pid > 0;
			if (live == 0)
				break;
			if (now > stop_deadline) {
				for (int k = 0; k < u->slots; k++)
					if (ws[k].pid > 0) {
						log_error("workers: worker %d (pid %d) did not stop: killed",
						          k, (int)ws[k].pid);
						kill(ws[k].pid, SIGKILL);
					}
				stop_deadline = now + 5;
			}
			continue;
		}
		/* the old generation past its drain deadline: closed */
		int old = u->base == 0 ? n : 0;
		if (!u->upgrading && u->drain_until > 0 && now > u->drain_until) {
			u->drain_until = 0;
			for (int k = old; k < old + n; k++)
				if (ws[k].pid > 0) {
					log_info("workers: worker %d (pid %d): drain deadline: its "
					         "sessions are closed", k, (int)ws[k].pid);
					kill(ws[k].pid, SIGTERM);
				}
		}
		for (int k = u->base; k < u->base + n; k++)
			if (ws[k].pid == 0 && now >= ws[k].restart_at)
				spawn(u, k, u->exe != NULL && u->upgraded);
	}
out:
	for (int k = 0; u->ws && chan && k < u->slots; k++) {
		for (int i = 0; i < u->ws[k].fds.n; i++)
			if (u->ws[k].fds.fd[i] >= 0)
				close(u->ws[k].fds.fd[i]);
		for (int j = 0; j < 2; j++)
			if (chan[k][j] >= 0)
				close(chan[k][j]);
	}
	free(chan);
	if (u->sfd >= 0)
		close(u->sfd);
	if (u->ready_rd >= 0) {
		close(u->ready_rd);
		close(u->ready_wr);
	}
	free(u->ws);
	return status;
}

int
workers_from_env(const char *spec, struct workers_fds *f, int *index, int *ready_fd)
{
	memset(f, 0, sizeof *f);
	const char *p = spec;
	char *end;
	long v[5];
	for (int i = 0; i < 5; i++) {
		v[i] = strtol(p, &end, 10);
		if (end == p || *end != ',')
			return -1;
		p = end + 1;
	}
	*index = (int)v[0];
	*ready_fd = (int)v[1];
	f->chan_rd = (int)v[2];
	f->nworkers = (int)v[3];
	f->n = (int)v[4];
	if (f->nworkers < 1 || f->nworkers > 2 * WORKERS_MAX || f->n < 0 || f->n > 16 ||
	    *index < 0 || *index >= f->nworkers)
		return -1;
	for (int i = 0; i < f->n; i++) {
		f->fd[i] = (int)strtol(p, &end, 10);
		if (*end != ':')
			return -1;
		p = end + 1;
		f->port[i] = (int)strtol(p, &end, 10);
		if (*end != (i + 1 < f->n ? ',' : ';'))
			return -1;
		p = end + 1;
	}
	for (int w = 0; w < f->nworkers; w++) {
		f->chan_wr[w] = (int)strtol(p, &end, 10);
		if (end == p || *end != (w + 1 < f->nworkers ? ',' : '\0'))
			return -1;
		p = end + 1;
	}
	return 0;
}
