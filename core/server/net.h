/*
 * net.h - every socket of the server on one libev loop: UDP listeners read
 * and written in batches (recvmmsg/sendmmsg), TCP listeners and
 * connections carrying length-prefixed frames, graceful TCP close, and
 * stream listeners (plain byte streams over TCP or a Unix socket: the
 * admin console) on the same connections and accept loop. It knows
 * nothing of sessions, only where a packet goes (struct gate_path,
 * core/proto/path.h).
 *
 * TCP frame: len u16 little-endian | len bytes (one packet). A frame longer
 * than frame_max closes that connection with the reason "frame too large";
 * a zero-length frame is refused the same way ("empty frame").
 *
 * Graceful close of a TCP connection (net_close with NET_CLOSE_GRACEFUL):
 * its id is stale at once; input is read and discarded, what is queued is
 * written, and the peer's EOF closes it. The peer was told to close first
 * (a CLOSE packet), so TIME_WAIT lands on it. No EOF within close_wait_ms:
 * shutdown(SHUT_WR), and close after close_wait_ms more at the latest.
 * NET_CLOSE_RESET (or close_rst) closes at once with SO_LINGER 0 (an RST);
 * so do backpressure, bad frames and refusals over max_conns and
 * max_conns_per_addr. Refusals are logged, at most one line per 10 s
 * with the count of the others.
 *
 * Callbacks are only called from the loop, never from inside net_send,
 * net_flush, net_close or the net_stream_ calls: a failure found there
 * (backpressure, a write error) is reported through conn_lost (a stream's
 * closed) before the loop next blocks.
 *
 * Descriptors: EMFILE/ENFILE on accept pauses the listener for a moment
 * instead of spinning, and it resumes by itself. SIGPIPE is ignored.
 */
#ifndef MOONGATE_NET_H
#define MOONGATE_NET_H

#include <stddef.h>
#include <stdint.h>

#include "path.h"

struct ev_loop;
typedef struct net net_t;

struct net_config {
	int batch;          /* datagrams per recvmmsg/sendmmsg (32; 1: none) */
	int poll_us;        /* UDP under load: a listener woken more than 8
	                       times per poll_us (over 8 x poll_us) is read every
	                       poll_us on a timer instead of on each datagram's
	                       readiness, until NET_POLL_IDLE polls find nothing
	                       (0: never; a datagram then waits up to poll_us) */
	int tos;            /* IP_TOS on UDP sockets (0x10 low delay; -1 leave) */
	int priority;       /* SO_PRIORITY on every socket (-1 leave) */
	int backlog;        /* listen backlog (511) */
	int reuseport;      /* SO_REUSEPORT on listeners (0; workers share
	                       ports without it: core/server/workers.h) */
	int frame_max;      /* largest TCP frame in bytes (2048; <= 65535) */
	int conn_buffer_max;/* bytes queued to one TCP connection before it is
	                       closed with "backpressure" (1 MiB) */
	int close_wait_ms;  /* graceful close: wait this long for EOF (2000) */
	int close_rst;      /* 1: every server-side close of a framed TCP
	                       connection is an RST (0) */
	int max_conns;      /* TCP connections at once (10000) */
	int max_conns_per_addr; /* framed TCP connections open at once from one
	                       IPv4 address or one IPv6 /64 (256; 0: no
	                       limit); more are reset, counted in
	                       tcp_refused_addr and logged */
	int udp_rcvbuf, udp_sndbuf; /* SO_RCVBUF / SO_SNDBUF of UDP sockets
	                       (4 MiB: the system's 208 KiB drops datagrams
	                       above ~2000 sessions at 20 Hz); 0: the system's */
	int tcp_rcvbuf, tcp_sndbuf; /* of TCP sockets (0: the kernel tunes them) */
	int hello_timeout_ms; /* a TCP connection not bound to a session (net_bind)
	                       this long after accept is closed with "handshake
	                       timeout" (10000; 0: never) */
	int dgram_max;      /* largest UDP datagram accepted (2048); longer ones
	                       are counted in udp_truncated and dropped */
};
void net_config_default(struct net_config *c);

struct net_callbacks {
	/* A datagram, or one complete TCP frame. pkt may be modified. */
	void (*packet)(const struct gate_path *from, uint8_t *pkt, size_t len,
	               void *user);
	/* A TCP connection ended without net_close: EOF, reset, error, a bad
	 * frame, backpressure. reason says which. */
	void (*conn_lost)(uint32_t conn, const char *reason, void *user);
	/* The timer set with net_timer is due. */
	void (*timer)(uint64_t now, void *user);
	/* net_hand_off was called from the packet callback: the connection is
	 * out of net, its descriptor fd now the callee's (to pass to another
	 * process, and close); bytes are what net had read from it and not
	 * used, the frame that was being delivered first. May be NULL. */
	void (*handoff)(int fd, int listener, const struct sockaddr *addr,
	                socklen_t addrlen, const uint8_t *bytes, size_t len,
	                void *user);
};

/* net_listen's transport: the values of a gate_path's */
enum net_transport { NET_UDP = GATE_UDP, NET_TCP = GATE_TCP };
enum net_close_mode { NET_CLOSE_GRACEFUL = 0, NET_CLOSE_RESET = 1 };

net_t *net_create(struct ev_loop *loop, const struct net_config *c,
                  const struct net_callbacks *cb, void *user);
/* Close every socket at once, stop every watcher, free. Not from inside a
 * net callback. */
void net_release(net_t *n);

/* Listen on host:port (host numeric, IPv4 or IPv6; NULL, "" or "*":
 * 0.0.0.0; port 0: any free port). raw marks a UDP listener
 * for raw KCP (copied into every gate_path from it). Returns the listener
 * index (0..255) and writes the bound port; -1 with err filled. */
int net_listen(net_t *n, int transport, const char *host, int port, int raw,
               int *bound_port, char *err, size_t errlen);
/* From inside the packet callback of a frame of TCP connection conn: hand
 * the connection to another process (workers: its session lives in another
 * worker). After the callback returns, net calls cb.handoff with the
 * descriptor and the bytes from this frame on, and forgets the connection
 * (no conn_lost). 0, or -1 when it cannot: the connection already carries a
 * session here (net_bind) or has bytes queued to write, or no cb.handoff. */
int net_hand_off(net_t *n, uint32_t conn);
/* A TCP connection handed off by another process: on listener (its index
 * here), its peer addr, the bytes the other had read and not used (frames
 * delivered at once, then its socket is read). 0, or -1 (refused: logged,
 * fd closed). */
int net_adopt_tcp(net_t *n, int listener, int fd, const struct sockaddr *addr,
                  socklen_t addrlen, const uint8_t *bytes, size_t len);

/* The same on a socket already bound (and listening, for TCP) by someone
 * else: a worker's socket of the supervisor's reuseport group
 * (core/server/workers.h); net's socket options are applied, SO_REUSEPORT
 * aside. The listener's index, or -1 with err (fd stays the caller's). */
int net_listen_fd(net_t *n, int transport, int fd, int raw, char *err,
                  size_t errlen);

/* Queue one packet to a peer: UDP goes out in the next sendmmsg batch (at
 * the latest before the loop blocks); TCP gets a frame header and is
 * written as soon as the socket takes it. Dropped (and counted) when the
 * connection is gone. */
void net_send(net_t *n, const struct gate_path *to, const uint8_t *pkt,
              size_t len);
/* Send what is batched now. */
void net_flush(net_t *n);
void net_close(net_t *n, uint32_t conn, int mode);
/* The connection carries an open session: its handshake deadline
 * (hello_timeout_ms) no longer applies. Unknown ids are ignored. */
void net_bind(net_t *n, uint32_t conn);

/*
 * Stream listeners: connections that carry plain bytes (a line-based
 * console), beside the framed TCP listeners and sharing their accept loop
 * (EMFILE pauses), write queue, backpressure and close code. They have
 * their own ids in the same id space (net_send, net_close and net_bind
 * ignore them) and count neither in max_conns nor in the tcp_* stats;
 * NET_STREAM_CONNS of them at most are open at once (more are reset).
 *
 * Graceful close of a stream connection (net_stream_close): its id is
 * stale at once; what is queued is written, then shutdown(SHUT_WR) (the
 * peer was not told to close: our FIN tells it), and input is read and
 * discarded until the peer's EOF, so unread input never turns the close
 * into a reset that could lose the last reply. All of it within
 * close_wait_ms, or the descriptor is closed anyway. Past closing_max such
 * closes under way on one listener, a close writes what the socket takes
 * at once and closes.
 */
#define NET_STREAM_CONNS 2048 /* the slot table has room for them beside
                                 max_conns */

struct net_stream_callbacks {
	/* A connection was accepted. The answer is its ctx in the calls below.
	 * It may send and close at once (a refusal). NULL: ctx NULL. */
	void *(*accept)(uint32_t conn, void *user);
	/* Bytes arrived (len > 0), or the peer's EOF (p NULL, len 0): nothing
	 * more comes, and the connection should be closed with
	 * net_stream_close (it can still be written first). */
	void (*data)(uint32_t conn, void *ctx, const uint8_t *p, size_t len,
	             void *user);
	/* The connection ended without net_stream_close: a reset, a write
	 * error, backpressure (reason). Never called after net_stream_close.
	 * May be NULL. */
	void (*closed)(uint32_t conn, void *ctx, const char *reason, void *user);
};

struct net_stream_config {
	const char *path;   /* a Unix socket file (mode 0600); NULL: TCP. A
	                       stale socket file there is removed first, never
	                       a file that is not a socket or one another
	                       process listens on; the file is removed at the
	                       end if it is still ours */
	const char *host;   /* TCP: a numeric address */
	int port;           /* TCP: 0 for any free port */
	int backlog;        /* listen backlog (16 when 0) */
	size_t out_max;     /* bytes queued unsent to one connection; a send
	                       past it closes it with "backpressure" */
	int closing_max;    /* graceful closes under way at once (16 when 0) */
	int close_wait_ms;  /* a graceful close ends within this (2000 when 0) */
};

/* Listen; the answer is the listener's handle (for net_stream_unlisten)
 * and *bound_port the TCP port; -1 with err filled. */
int net_stream_listen(net_t *n, const struct net_stream_config *sc,
                      const struct net_stream_callbacks *cb, void *user,
                      int *bound_port, char *err, size_t errlen);
/* Close the listener and every connection of it at once (no callback),
 * and remove its socket file if it is still ours. */
void net_stream_unlisten(net_t *n, int handle);
/* Queue bytes to a stream connection, written as the socket takes them.
 * 0; -1 the connection is gone or failed (closed follows unless it is
 * closed first); -2 past out_max ("backpressure", likewise). */
int net_stream_send(net_t *n, uint32_t conn, const void *p, size_t len);
/* NET_CLOSE_GRACEFUL as above; NET_CLOSE_RESET closes the descriptor at
 * once (the kernel still sends what it holds). Unknown ids are ignored. */
void net_stream_close(net_t *n, uint32_t conn, int mode);

/* Monotonic time in microseconds (CLOCK_MONOTONIC read once per loop
 * iteration, not ev_now(), which follows the wall clock; ev_now_update
 * for a fresh reading). */
uint64_t net_now(net_t *n);
/* Call the timer callback at due (absolute, net_now's clock); replaces the
 * previous due time. */
void net_timer(net_t *n, uint64_t due);

struct net_stats {
	uint64_t udp_in, udp_out, udp_in_bytes, udp_out_bytes;
	uint64_t udp_recv_calls, udp_send_calls; /* syscalls: batching at work */
	uint64_t waits;          /* loop iterations: one epoll_wait each */
	uint64_t poll_enter, polls; /* UDP polling mode: times entered, timer reads */
	uint64_t tcp_read_calls, tcp_write_calls;
	uint64_t syscalls;       /* of the data path: waits + udp recv/send
	                            calls + tcp read/write calls (not
	                            counted: epoll_ctl, accept, close) */
	uint64_t udp_send_errors, udp_truncated;
	uint64_t tcp_accepted, tcp_open, tcp_closed, tcp_frames_in, tcp_frames_out;
	uint64_t tcp_bad_frames, tcp_backpressure, tcp_dropped;
	uint64_t accept_paused;                  /* EMFILE/ENFILE pauses */
	uint64_t tcp_refused;    /* accepted over max_conns: reset at once */
	uint64_t tcp_refused_addr; /* over max_conns_per_addr: reset at once */
	uint64_t tcp_closing;    /* graceful closes under way (after net_close) */
	uint64_t tcp_hello_timeouts; /* closed: no session within hello_timeout_ms */
	uint64_t tcp_handed_off; /* connections passed to another worker */
	uint64_t tcp_adopted;    /* connections taken from another worker */
	/* What the kernel granted the last UDP listener (bytes usable, as the
	 * config counts them); below udp_rcvbuf/udp_sndbuf when
	 * net.core.rmem_max/wmem_max cap it. */
	int udp_rcvbuf, udp_sndbuf;
};
void net_stats(const net_t *n, struct net_stats *st);

#endif
