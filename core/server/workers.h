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

#define WORKERS_MAX 64

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
	int chan_wr[WORKERS_MAX];
	int nworkers;
};

/* Run worker index (of n) on its sockets; ready_fd: write one byte there
 * once serving. Its return value is the worker's exit status. Called in
 * the child after fork. */
typedef int workers_run_fn(int index, int n, const struct workers_fds *fds,
                           int ready_fd, void *user);

/* Bind the listeners of c for n workers, fork them, supervise until told
 * to stop; the process's exit status. on_ready is called once every
 * worker is ready (the supervisor prints the ready line there). */
int workers_supervise(const struct config *c, int n, workers_run_fn *run,
                      void (*on_ready)(const struct workers_fds *fds, void *user),
                      void *user);

/* How many workers `workers = "auto"` (0) means: one per online CPU. */
int workers_auto(void);

#endif
