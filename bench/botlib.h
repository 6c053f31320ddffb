/*
 * botlib.h - what the bots (moongate_bot.c, room_bot.c) share besides a
 * client on a libev loop (evclient.h): the command line, the process
 * set-up for thousands of sockets, the little-endian codec of their
 * payloads, the connect ramp, how a client's close is told and counted,
 * the CPU and memory of the run phase, and the common parts of the
 * RESULT line. Each bot keeps its own phases, payloads and RESULT order.
 */
#ifndef MOONGATE_BENCH_BOTLIB_H
#define MOONGATE_BENCH_BOTLIB_H

#include <stdint.h>

#include <moongate/client.h>

#include "evclient.h"
#include "hist.h"

/* ---- payloads: little endian ------------------------------------------- */

static inline void
bot_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline void
bot_put64(uint8_t *p, uint64_t v)
{
	bot_put32(p, (uint32_t)v);
	bot_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t
bot_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t
bot_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t
bot_get64(const uint8_t *p)
{
	return (uint64_t)bot_get32(p) | (uint64_t)bot_get32(p + 4) << 32;
}

/* ---- the command line --------------------------------------------------- */

/* Every option takes a value: "--name value". */
enum bot_arg_kind {
	BOT_STR,    /* dst: const char ** (argv's string) */
	BOT_INT,    /* dst: int * (atoi) */
	BOT_DOUBLE, /* dst: double * (atof) */
	BOT_FN,     /* fn(value, dst): 0, -1 (print the usage), or -2 (fn said
	               why on stderr) */
};
struct bot_arg {
	const char *name;
	int kind;
	void *dst;
	int (*fn)(const char *v, void *dst);
};
/* The options both bots have, as fields of the same names in their opt
 * struct o: server, clients, rate, seconds, size, server_pid,
 * connect_rate, drain. */
#define BOT_COMMON_ARGS(o)                                 \
	{ "--server", BOT_STR, &(o).server, 0 },           \
	{ "--clients", BOT_INT, &(o).clients, 0 },         \
	{ "--rate", BOT_DOUBLE, &(o).rate, 0 },            \
	{ "--seconds", BOT_DOUBLE, &(o).seconds, 0 },      \
	{ "--size", BOT_INT, &(o).size, 0 },               \
	{ "--server-pid", BOT_INT, &(o).server_pid, 0 },   \
	{ "--connect-rate", BOT_INT, &(o).connect_rate, 0 }, \
	{ "--drain", BOT_DOUBLE, &(o).drain, 0 }

/* argv's "--name value" pairs, in order, against args (ended by a NULL
 * name). 0; -1 on an unknown name, a missing value or a value fn refused
 * (the caller prints its usage); -2 when fn said why. */
int bot_args(int argc, char **argv, const struct bot_arg *args);

/* ---- the process and the run ------------------------------------------- */

/* A socket per client: the open files limit raised to its maximum;
 * SIGPIPE ignored. */
void bot_setup(void);

/* The connect phase: clients due by now at rate per second from start,
 * and its bound (the ramp plus 15 s). */
int bot_connect_due(uint64_t now, uint64_t start, int rate);
uint64_t bot_connect_deadline(uint64_t now, int clients, int rate);

/* A client's CLOSE event, told on stderr ("NAME: client IDX: connect
 * failed: ..." or "NAME: client IDX closed (...)" when early). */
enum { BOT_CLOSED, BOT_CONNECT_FAILED, BOT_CLOSED_EARLY };
int bot_closed(const char *name, int idx, int opened, int early,
               const struct mgclient_event *ev);
/* The close phase: a graceful close of a client still running. */
void bot_close(struct evclient *e);
/* The end: count a client still running (*open_left) or never opened nor
 * closed (*failed: it timed out here), and release it. */
void bot_release(struct evclient *e, int opened, int *open_left, int *failed);

/* CPU (a fraction of one core, -1: unknown) and the server's VmRSS (kB,
 * -1: unknown) over the run phase. */
/* The server's net counters over the run, read from its admin console
 * (`stats net`) when --server-admin names it: syscalls of the data path,
 * loop wakeups, datagrams and TCP frames in and out. */
enum { BOT_IO_SYSCALLS, BOT_IO_WAITS, BOT_IO_UDP_IN, BOT_IO_UDP_OUT,
       BOT_IO_TCP_IN, BOT_IO_TCP_OUT, BOT_IO_N };
extern const char *bot_server_admin; /* --server-admin ADDR, or NULL */
#define BOT_ADMIN_ARG { "--server-admin", BOT_STR, &bot_server_admin, 0 }

struct bot_usage {
	int server_pid;       /* 0: no server to watch */
	long long srv_t0, bot_t0;
	double srv_cpu, bot_cpu;
	long rss_kb;
	int io_ok;            /* the counters were read at start and stop */
	double seconds;
	unsigned long long io0[BOT_IO_N], io[BOT_IO_N]; /* at start; deltas */
};
void bot_usage_start(struct bot_usage *u, int server_pid);
void bot_usage_stop(struct bot_usage *u, double seconds);

/* RESULT parts: " p50_ms=... p99_ms=... max_ms=..."; " server_cpu=..."
 * when a server is watched. */
void bot_print_latency(const struct hist *h);
void bot_print_server_cpu(const struct bot_usage *u);
/* " server_syscalls_per_msg=... server_dgrams_per_msg=... server_wakeups_per_s=...
 * server_msgs_per_wakeup=..." over msgs messages echoed or relayed (n/a
 * without --server-admin); with a server pid, " msgs_per_server_cpu_s=...". */
void bot_print_server_io(const struct bot_usage *u, double msgs);

/* ---- a bot over several processes (--procs) ----------------------------- */

/* The parent forks N workers, each running its share of the clients on
 * its own loop. A worker reports on its pipe a tag byte, optionally
 * followed by a fixed-size record (a struct: the workers are forks of the
 * same binary); the parent reads every worker's report with a deadline.
 * A worker that dies, closes its pipe, sends something else or misses the
 * deadline fails the run: the parent says which and why on stderr. The
 * parent's death kills the workers (PR_SET_PDEATHSIG). */
#define BOT_PROCS_MAX 64

/* --cpus LIST: "1", "0,1", "0-3,6": worker i is pinned to cpu[i % n]. */
struct bot_cpus {
	int n;
	int cpu[BOT_PROCS_MAX];
};
int bot_arg_cpus(const char *v, void *dst); /* dst: struct bot_cpus * */

struct bot_procs {
	const char *name;             /* prefixes the messages */
	int n;
	int pid[BOT_PROCS_MAX];       /* 0: reaped */
	int rfd[BOT_PROCS_MAX];       /* the worker's reports */
	int gfd[BOT_PROCS_MAX];       /* the parent's word to the worker */
	size_t got[BOT_PROCS_MAX];    /* bytes of the report being read */
	char err[512];                /* why the last call failed */
};
/* In a worker: its index, its pipes. */
struct bot_worker {
	int idx;
	int report_fd;                /* to the parent */
	int go_fd;                    /* from the parent (readable: see go) */
};

/* Forks n workers (stdout and stderr flushed first). Returns -1 in the
 * parent; in worker i returns i with *w filled, pinned to a CPU of cpus
 * (NULL or n 0: not pinned), killed by SIGKILL when the parent dies. A
 * pipe or fork that fails: the message, the workers started killed,
 * exit(1). */
int bot_procs_fork(struct bot_procs *p, const char *name, int n,
                   const struct bot_cpus *cpus, struct bot_worker *w);
/* This process pinned to cpu: 0, or -1 after saying why on stderr. */
int bot_pin_cpu(const char *name, int cpu);
/* Worker: tag, then len bytes of data (len 0: the tag alone). 0, -1. */
int bot_worker_report(const struct bot_worker *w, char tag, const void *data,
                      size_t len);
/* Worker: 1 when the parent said go, 0 when not yet, -1 when its pipe
 * closed (the parent is gone or gave up). */
int bot_worker_go(const struct bot_worker *w);
/* Parent: every worker's report tagged tag, its len bytes into
 * recs + i * len, within timeout seconds. 0; -1 with p->err saying which
 * worker failed and how (what names the report). */
int bot_procs_expect(struct bot_procs *p, char tag, const char *what,
                     void *recs, size_t len, double timeout);
/* Parent: tells every worker to go. 0; -1 (p->err says why). */
int bot_procs_go(struct bot_procs *p);
/* Parent: waits up to timeout seconds for the workers to exit, kills
 * those left (SIGKILL) and reaps them. */
void bot_procs_reap(struct bot_procs *p, double timeout);

#endif
