/*
 * workers.h - one machine, every core: a supervisor process and N worker
 * processes on the same ports (config `workers`; docs/ARCHITECTURE.md,
 * "Workers").
 *
 * The supervisor binds, for every listener, one socket per worker, all with
 * SO_REUSEPORT on the same address (a port 0 is resolved by the first), and
 * attaches to each UDP group a classic BPF program that steers a session
 * packet to the worker that owns its session: a session id's low byte is
 * its worker's index (gate_config.worker), and the program reads it at
 * byte 1 of every session packet and FEC frame (types 0x10..0x18); a
 * handshake packet, which has no session yet, goes where the kernel's
 * 4-tuple hash sends it (the same worker for every retransmit of one
 * client). The supervisor keeps every socket open, so the reuseport
 * group's order never changes and a restarted worker gets its sockets
 * back.
 *
 * There are 2n sockets per listener, n for the live generation of workers
 * and n for an upgrade's (below); handshakes and TCP connections go to the
 * live generation (the packet's flow hash, or the CPU, modulo n), session
 * packets to their worker in either.
 *
 * Then it forks the workers (each runs the callback with its index and
 * its sockets, and writes a byte to the ready pipe when it serves), waits
 * until every worker is ready, restarts a worker that exits (logged, with
 * its status; at most once a second per worker), passes SIGHUP to every
 * worker, and on SIGTERM or SIGINT passes it on and waits for them all.
 * No event loop in the supervisor: signals come through a signalfd.
 */
#ifndef MOONGATE_WORKERS_H
#define MOONGATE_WORKERS_H

#include <stddef.h>

/* 2 x WORKERS_MAX slots fit a worker hint (WIRE_WORKER_HINT_MAX 126) */
#define WORKERS_MAX 63

struct config;

/* The sockets of one worker: listener i of the config is fds[i]. */
struct workers_fds {
	int fd[16];
	int n;
	int port[16];          /* the port each listener got */
	/* Passing TCP connections between workers (SCM_RIGHTS over SOCK_SEQPACKET
	 * Unix sockets, non-blocking): this worker reads chan_rd; it writes to
	 * worker w on chan_wr[w]. */
	int chan_rd;
	int chan_wr[2 * WORKERS_MAX];
	int nworkers;
	int restarts;          /* times this slot was restarted before (metrics) */
};

/* Run worker index (of n) on its sockets; ready_fd: write one byte there
 * once serving. Its return value is the worker's exit status. Called in
 * the child after fork. */
typedef int workers_run_fn(int index, int n, const struct workers_fds *fds,
                           int ready_fd, void *user);

/* Bind the listeners of c for 2n worker slots (two generations of n),
 * fork the first n, supervise until told to stop; the process's exit
 * status. on_ready is called once every worker is ready (the supervisor
 * prints the ready line there).
 *
 * Upgrade (SIGUSR2): n workers of the binary exe (with this process's
 * argv, MOONGATE_WORKER in their environment naming their sockets:
 * workers_from_env) start in the other generation's slots; once all are
 * ready, every new session and connection goes to them, and the old
 * workers get SIGUSR1: they serve their sessions until the last one ends
 * (then exit), or until config upgrade_drain_ms, when they get SIGTERM. A
 * new binary that does not start fails the upgrade; the old workers go
 * on. The supervisor itself keeps running its own binary. */
int workers_supervise(const struct config *c, int n, workers_run_fn *run,
                      void (*on_ready)(const struct workers_fds *fds, void *user),
                      void *user, const char *exe, char *const *argv);

/* An exec'd worker's sockets from MOONGATE_WORKER: 0, or -1 (malformed). */
int workers_from_env(const char *spec, struct workers_fds *f, int *index,
                     int *ready_fd);

/* How many workers `workers = "auto"` (0) means: one per online CPU. */
int workers_auto(void);

#endif
