/*
 * netem.h - the private declarations of moongate-netem, shared by its
 * files (one concern each):
 *
 *   moongate_netem.c  main: the options, the loop, the reaper, shutdown
 *   netem_sock.c      addresses, listening sockets, the clock, the log
 *   netem_udp.c       UDP: per-client mappings (a NAT) and the queue of
 *                     waiting datagrams
 *   netem_tcp.c       TCP: the proxied connections, chunk by chunk
 *   netem_control.c   the control channel, server side
 *   netem_ctl.c       `moongate-netem ctl`, the command-line client
 *   netem_model.c     the impairments, free of I/O (netem_model.h)
 *
 * The process has one state, G; each file touches the part it owns and
 * calls the others through the functions below.
 */
#ifndef MOONGATE_NETEM_H
#define MOONGATE_NETEM_H

#include "heap.h"
#include "netem_model.h"

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define LISTEN_MAX 16        /* --udp and --tcp options, each */
#define DGRAM_MAX 65536
#define UDP_READS 64         /* datagrams read per event on one socket */
#define ACCEPT_MAX 64        /* accepts per event on one listener */
#define PAUSE_S 0.1          /* a listener rests after EMFILE */
#define TCP_CHUNKS 1024      /* release-time chunks per direction */
#define CUT_WAIT_S 2.0       /* cut: wait this long for the peers' EOF */
#define CTL_MAX 16           /* control connections at once */
#define CTL_LINE_MAX 1024    /* a command line, newline included */
#define CTL_OUT_MAX 65536    /* unread replies before a control client is dropped */
#define CTL_TIMEOUT_MS 5000  /* ctl mode: connect and reply deadline */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct udp_lis {
	ev_io io;
	int fd;
	struct addr at, target;
};

/* One client of a UDP listener. */
struct map {
	struct udp_lis *lis;
	struct addr peer;        /* the client */
	int fd;                  /* connected to lis->target */
	ev_io io;
	double last;             /* the last datagram, either way */
	struct netem_link link[2]; /* rate cap, per direction */
	unsigned hash;
	struct map *hnext;       /* hash chain */
	struct map *prev, *next; /* every mapping */
};

/* A datagram waiting for its departure time, in G.queue: hn.key is the
 * departure in nanoseconds of CLOCK_MONOTONIC (udp_ns), hn.tie the
 * arrival order, so equal times leave in arrival order. */
struct pkt {
	struct heap_node hn;
	int dir;
	struct map *m;           /* NETEM_UP: sent on m->fd; NULL once m is freed */
	struct udp_lis *lis;     /* NETEM_DOWN: sent from lis->fd to peer */
	struct addr peer;
	size_t len;
	uint8_t data[];
};

struct tcp_lis {
	ev_io io;
	ev_timer pause;
	int fd;
	struct addr at, target;
};

struct chunk {
	size_t len;
	double at;               /* may be written from then on */
};

/* One direction of a proxied TCP connection. */
struct half {
	uint8_t *buf;            /* tcp_buffer bytes; buf[head..tail) unsent */
	size_t head, tail;
	struct chunk ch[TCP_CHUNKS]; /* a ring: ch[c0], nch of them */
	int c0, nch;
	double last_at;          /* release time of the newest chunk */
	struct netem_bucket bucket;
	int eof;                 /* the source sent its FIN */
	int shut;                /* ...and it was passed on */
	int blocked;             /* the last write met EAGAIN */
	ev_timer tm;             /* the next chunk's release, or tokens */
};

struct tconn {
	int fd[2];               /* [0] the client, [1] upstream; -1: closed */
	ev_io rio[2], wio[2];    /* on fd[i] */
	struct half h[2];        /* h[d] reads fd[d] and writes fd[1 - d] */
	int connecting;          /* fd[1]'s connect is in progress */
	int cutting;             /* cut: FIN sent, discarding until EOF */
	int dead;                /* closed, on G.dead_conns */
	ev_timer cut_tm;
	struct tconn *prev, *next;
};

struct ctl {
	int fd;
	ev_io rio, wio;
	char in[CTL_LINE_MAX];
	size_t inlen;
	char *out;
	size_t outlen, outcap;
	int dead;
	struct ctl *prev, *next;
};

/* UDP counters of one direction. */
struct dstats {
	uint64_t recv, sent, bytes, dropped, overflow, duplicated, reordered,
	         errors;
};

struct netem_state {
	struct ev_loop *loop;
	struct netem_settings set;
	struct netem_rng rng[2][2];   /* [protocol][direction] */
	uint64_t seed;
	/* options */
	double udp_idle;
	int udp_max, udp_queue, tcp_max;
	size_t rate_queue, tcp_buffer;
	/* UDP */
	struct udp_lis udp[LISTEN_MAX];
	int nudp;
	struct map **htab;
	unsigned hmask;
	struct map *maps;
	int nmaps;
	struct heap queue;            /* struct pkt, by departure */
	uint64_t seq;
	ev_timer qtm, sweep;
	uint8_t *dgram;
	/* TCP */
	struct tcp_lis tcp[LISTEN_MAX];
	int ntcp;
	struct tconn *conns, *dead_conns;
	int nconns;
	/* control */
	int ctl_fd;
	ev_io ctl_io;
	struct ctl *ctls, *dead_ctls;
	int nctls;
	ev_prepare reap;
	ev_signal sigterm, sigint;
	/* counters */
	struct dstats udp_st[2];
	uint64_t maps_total, maps_expired, maps_refused, rebinds;
	uint64_t tcp_total, tcp_refused, tcp_connect_failed, tcp_errors,
	         tcp_cut, tcp_reset, tcp_bytes[2];
};

extern struct netem_state G;   /* moongate_netem.c */

/* ---- netem_sock.c ------------------------------------------------------- */

/* Seconds of CLOCK_MONOTONIC: the model's time. */
double mono(void);
/* "moongate-netem: ..." and a newline on stderr. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void set_nodelay(int fd);
/* Close with an RST. */
void close_rst(int fd);
/* Start or stop w on G.loop. */
void io_want(ev_io *w, int on);
/* "HOST:PORT" or "[V6]:PORT" with a numeric host (or localhost); 0, or
 * -1 with err filled. */
int addr_parse(const char *s, struct addr *a, char *err, size_t errlen);
int addr_port(const struct addr *a);
/* "127.0.0.1 7777" in buf. */
const char *addr_text(const struct addr *a, char *buf, size_t n);
/* Family, port and address: what identifies a client; returns the length. */
size_t addr_key(const struct addr *a, uint8_t out[19]);
/* A listening socket bound to a (port 0: a free one, written back); the
 * fd, or -1 with err filled. */
int listen_on(int type, struct addr *a, char *err, size_t errlen);

/* ---- netem_udp.c -------------------------------------------------------- */

/* A UDP listener is readable (its io.data: the struct udp_lis). */
void udp_on_read(struct ev_loop *loop, ev_io *w, int revents);
/* G.qtm: the first waiting datagram is due. */
void udp_on_queue(struct ev_loop *loop, ev_timer *w, int revents);
/* G.sweep: idle mappings expire. */
void udp_on_sweep(struct ev_loop *loop, ev_timer *w, int revents);
/* Every mapping gets a new socket; returns how many, *failed the rest
 * (*err: the errno of a failure). */
int udp_rebind(int *failed, int *err);
/* Free every mapping and every waiting datagram. */
void udp_free_all(void);

/* ---- netem_tcp.c -------------------------------------------------------- */

/* A TCP listener is readable, or rested after EMFILE (data: struct tcp_lis). */
void tcp_on_accept(struct ev_loop *loop, ev_io *w, int revents);
void tcp_on_pause(struct ev_loop *loop, ev_timer *w, int revents);
/* The settings changed: forward or hold on every connection. */
void tcp_update_all(void);
/* cut (a FIN both ways) or reset (an RST) every connection; returns how
 * many. */
int tcp_cut_all(void);
int tcp_reset_all(void);
/* Bytes held in the buffers, per direction. */
void tcp_held(uint64_t held[2]);
/* Close every connection (0: with a FIN), then free the closed ones. */
void tcp_close_all(void);
void tcp_reap(void);

/* ---- netem_control.c ---------------------------------------------------- */

/* The control listener G.ctl_fd is readable. */
void control_on_accept(struct ev_loop *loop, ev_io *w, int revents);
void control_close_all(void);
void control_reap(void);

/* ---- netem_ctl.c -------------------------------------------------------- */

/* `moongate-netem ctl HOST:PORT COMMAND...` (argv past "ctl"); the exit
 * status. */
int ctl_main(int argc, char **argv);

#endif
