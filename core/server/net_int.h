/*
 * net_int.h - what the files of net share, and nobody else sees (net.h is
 * the interface). One concern per file:
 *
 *   net.c         the loop (flush point, timer, clock), connection slots,
 *                 listening sockets and the accept loop, setup and stats
 *   net_udp.c     UDP: batched reads and writes (recvmmsg/sendmmsg)
 *   net_tcp.c     TCP connections: the write queue, frames, doom and
 *                 conn_lost, graceful close
 *   net_stream.c  stream listeners: byte streams (the admin console) on the
 *                 same connections, accept loop and close code as TCP
 *   net_src.c     per-source caps on framed TCP connections
 *
 * Every connection, framed or stream, is a struct conn in one slot table;
 * c->lis says which kind (is_stream).
 */
#ifndef MOONGATE_NET_INT_H
#define MOONGATE_NET_INT_H

#include "net.h"
#include "map.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <ev.h>

#define NET_LISTENERS 256   /* gate_path.listener is a uint8_t */
#define NET_STREAM_LISTENERS 16
#define STREAM_READ 4096    /* the read buffer of a stream connection */
#define TCP_READ_ROUNDS 8   /* reads per event on one connection */
#define ACCEPT_MAX 64       /* accepts per event on one listener */
#define ACCEPT_PAUSE 0.1    /* seconds a listener rests after EMFILE */
#define WRITE_EAGER 16384   /* queued bytes that make a send write now */
#define WBUF_UNIT 4096      /* a write buffer's first size: emptied, one of this
                               size goes back to net's spares, others are freed */
#define WBUF_SPARES 256     /* emptied write buffers net keeps for reuse */
#define TCP_READ_AREA 65536 /* net's shared read area for framed TCP */
#define NONE UINT32_MAX

enum { CONN_OPEN, CONN_DRAIN, CONN_SHUT, CONN_DEAD };
enum { LIS_STREAM = 3 };     /* beside NET_UDP and NET_TCP */

/* cfg.batch datagrams of up to dgram_max bytes for recvmmsg/sendmmsg */
struct batch {
	struct mmsghdr *msg;
	struct iovec *iov;
	struct gate_path *path;  /* msg[i].msg_name is &path[i].addr */
	uint8_t *buf;
	int n;                   /* sending: datagrams waiting */
};

/* What a stream listener has beyond a listener. */
struct stream_lis {
	struct net_stream_callbacks cb;
	void *user;
	size_t out_max;
	int closing, closing_max; /* graceful closes under way; the bound */
	int close_wait_ms;
	int is_unix;
	char path[108];          /* unix: the socket file, removed at the end */
	dev_t dev;               /* ... if it is still this one */
	ino_t ino;
};

struct listener {
	net_t *net;
	ev_io io;
	int index;               /* in net->lis, or net->slis for a stream */
	int fd;
	int transport;           /* NET_UDP, NET_TCP or LIS_STREAM */
	int raw;
	int paused;              /* accept stopped after EMFILE/ENFILE */
	struct batch out;        /* UDP with batch > 1: the pending sends */
	ev_timer poll;           /* UDP polling mode (net.poll_us): the socket
	                            is read on this timer, not on readiness
	                            (polling while it is active) */
	int idle_polls;          /* polls in a row that found nothing */
	uint64_t win_start;      /* readiness wakeups counted since (us) */
	uint32_t win_count;
	struct stream_lis s;     /* LIS_STREAM only */
};

struct conn {
	net_t *net;
	struct listener *lis;    /* accepted here: its kind is the conn's */
	void *ctx;               /* stream: the accept callback's answer */
	ev_io rio, wio;          /* wio active only while bytes wait for EAGAIN */
	ev_timer tm;             /* hello deadline, then graceful close deadlines */
	uint32_t id;
	int fd;
	int state;               /* CONN_* */
	int eof;                 /* the peer's EOF has been read */
	int pending;             /* its id is on net->pend */
	const char *doom;        /* set: conn_lost(doom) at the next flush point */
	int bound;               /* net_bind: it carries a session here */
	int handoff;             /* net_hand_off from the packet callback */
	int doom_rst;            /* close the doomed one with an RST */
	struct gate_path path;   /* framed TCP */
	uint64_t src;            /* framed TCP: its source in net->src */
	struct conn *prev, *next;/* net->closing (DRAIN, SHUT) or net->dead */
	uint8_t *wbuf;           /* queued bytes: wbuf[whead..wlen) unsent */
	size_t whead, wlen, wcap;
	/* framed: rbuf holds only a frame begun and not complete (NULL, rlen 0
	 * otherwise: reads go to net's shared area), so an idle connection
	 * holds no buffer; stream: rbuf is rmem, STREAM_READ bytes */
	uint8_t *rbuf;
	size_t rlen;             /* bytes in rbuf */
	size_t rcap;             /* the size of rbuf when it is there */
	uint8_t rmem[];
};

struct slot {
	struct conn *c;          /* NULL: free */
	uint32_t gen;            /* generation of the next id given out here */
	uint32_t next;           /* free list link (FIFO) */
};

struct net {
	struct ev_loop *loop;
	struct net_config cfg;
	struct net_callbacks cb;
	void *user;
	ev_prepare prep;         /* the flush point before the loop blocks */
	ev_timer tm;             /* net_timer */
	ev_timer pause;          /* restarts listeners paused by EMFILE */
	double now_ev;           /* ev_now() when now_us was read */
	uint64_t now_us;         /* CLOCK_MONOTONIC, once per loop iteration */
	struct listener *lis[NET_LISTENERS];
	int nlis;
	struct listener *slis[NET_STREAM_LISTENERS]; /* NULL: free */
	int udp_rcvbuf, udp_sndbuf; /* granted to the last UDP listener */
	int udp_pending;         /* listeners with a pending batch may exist */
	struct batch in;         /* the UDP receive area, shared */
	/* connections */
	struct slot *slot;       /* slot_max entries, the first nslot used once */
	uint32_t nslot, slot_max;
	uint32_t idx_bits, free_head, free_tail; /* free list; NONE: none */
	uint32_t open;           /* framed TCP connections open */
	uint32_t nstream;        /* stream connections open */
	int flushing;            /* in tcp_flush: a nested call does nothing */
	uint32_t *pend;          /* ids with bytes to write or a doom */
	size_t npend, pend_cap;
	struct conn *closing;    /* DRAIN and SHUT, doubly linked */
	struct conn *dead;       /* closed, freed at the next prepare */
	uint8_t *rarea;          /* TCP_READ_AREA: framed TCP reads land here */
	uint8_t *wspare[WBUF_SPARES]; /* emptied WBUF_UNIT write buffers */
	int nwspare;
	struct map src;          /* source key -> framed connections open */
	uint8_t src_hashkey[16];
	uint64_t refuse_log_us;  /* when a refusal was last logged */
	uint64_t refuse_quiet;   /* refusals not logged since */
	struct net_stats st;
};

static inline int
is_stream(const struct conn *c)
{
	return c->lis->transport == LIS_STREAM;
}

/* net.c */
int net_fail(char *err, size_t errlen, const char *what, int e);
const char *net_errreason(int e);
void net_set_linger0(int fd);
struct conn *net_lookup(const net_t *n, uint32_t id);
int net_slot_take(net_t *n, struct conn *c);
void net_slot_give(net_t *n, struct conn *c);
/* Start accepting on l (a listening TCP or stream socket). */
void net_accept_start(net_t *n, struct listener *l);

/* net_udp.c */
int net_batch_init(struct batch *b, int count, int size);
void net_batch_free(struct batch *b);
void net_udp_send(net_t *n, struct listener *l, const struct gate_path *to,
                  const uint8_t *pkt, size_t len);
void net_udp_flush_all(net_t *n);
void net_udp_read_cb(struct ev_loop *loop, ev_io *w, int revents);
void net_udp_poll_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* net_tcp.c */
struct conn *net_tcp_open(net_t *n, struct listener *l, int fd,
                          const struct sockaddr_storage *a, socklen_t alen);
void net_tcp_send(net_t *n, uint32_t id, const uint8_t *pkt, size_t len);
void net_tcp_flush(net_t *n, int report);
/* Room for need more bytes at c->wbuf + c->wlen with at most limit bytes
 * queued: 0; -1 a write failed (c doomed); -2 over the limit (c doomed,
 * "backpressure"); -3 out of memory. */
int net_conn_reserve(struct conn *c, size_t need, size_t limit);
/* need bytes were queued: write now or at the flush point. */
void net_conn_queued(struct conn *c);
void net_conn_free(struct conn *c, int rst);
/* Give c's write buffer back (to net's spares or to malloc). */
void net_conn_wbuf_release(struct conn *c);
void net_conn_lost(struct conn *c, const char *reason, int rst);
void net_conn_doom(struct conn *c, const char *reason, int rst);
int net_conn_write(struct conn *c, const char **why);
/* Out of the slot table into DRAIN, its close deadline set. */
void net_conn_begin_close(struct conn *c, int wait_ms);
void net_conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);
void net_conn_drain(struct conn *c);

/* net_src.c: the count of framed connections per source (an IPv4
 * address, an IPv6 /64) */
void net_src_init(net_t *n);
void net_src_free(net_t *n);
uint64_t net_src_key(const net_t *n, const struct sockaddr_storage *a);
const char *net_src_text(const struct sockaddr_storage *a, char *buf,
                         size_t len);
/* One more connection from key: 0, or -1 at max_conns_per_addr (or out of
 * memory). */
int net_src_take(net_t *n, uint64_t key);
void net_src_give(net_t *n, uint64_t key);
/* Log a refusal (rate-limited). */
void net_src_refused(net_t *n, const struct sockaddr_storage *a,
                     const char *why);

/* net_stream.c */
void net_stream_open(net_t *n, struct listener *l, int fd);

#endif
