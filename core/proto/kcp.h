/*
 * kcp.h - moongate's KCP: a reliable, ordered ARQ protocol over datagrams.
 *
 * Wire-compatible with the classic KCP protocol (24-byte little-endian
 * segment header, commands PUSH 81, ACK 82, WASK 83, WINS 84; see
 * docs/PROTOCOL.md). The API keeps the classic shape with kcp_ names.
 *
 * I/O-free: time is an argument (milliseconds, any origin, wraps at 2^32),
 * bytes leave through the output callback, and kcp_check() says when
 * kcp_update() is next due. Not thread-safe: one object, one thread.
 *
 * Differences from the classic library, all on purpose:
 *  - a dead link is reported: kcp_update() and kcp_send() return KCP_EDEAD
 *    and the object stops retransmitting;
 *  - a message that needs more fragments than the receive window (or 256)
 *    is refused by kcp_send() with KCP_ETOOBIG instead of stalling;
 *  - kcp_input() validates the whole datagram before applying any of it:
 *    wrong conv, truncated or oversized segments, unknown commands and an
 *    una or ack beyond what was sent are rejected with no effect;
 *  - acks, new data and retransmissions leave at the next kcp_update when
 *    due, not at the next flush interval (kcp_seteager; 0 restores the
 *    classic timing), and the RTO follows a short RTT (kcp_setminrto);
 *  - a delayed ack waits a fixed time, not until the next flush
 *    (kcp_setackdelay), so the peer's RTO does not pay for its spread;
 *  - acks can wait for this end's next data to ride on, when it is due
 *    soon (kcp_setmaxackdelay), and then leave at once on loss signals;
 *  - congestion control grows per segment acknowledged, and one lost
 *    segment while acks keep arriving halves the window instead of
 *    collapsing it to 1 (a silent path still collapses it);
 *  - an idle object holds no buffers (kcp_memsize() reports its bytes);
 *  - every queue is bounded: the ack list by the receive window, the send
 *    queue by kcp_setsndlimit() (unbounded by default, as classic).
 *
 * Errors: functions returning int give 0 (or a length) on success and a
 * negative KCP_E* code on failure; kcp_strerror() names the code.
 */
#ifndef MOONGATE_KCP_H
#define MOONGATE_KCP_H

#include <stddef.h>
#include <stdint.h>

#define KCP_OVERHEAD 24         /* bytes of segment header */
#define KCP_MTU_DEFAULT 1400
#define KCP_MTU_MIN 50
#define KCP_MTU_MAX 65535       /* largest datagram handed to output */
#define KCP_WND_SND_DEFAULT 32
#define KCP_WND_RCV_DEFAULT 128 /* classic: receive window >= max fragments */
#define KCP_FRG_MAX 256         /* frg is one byte: at most 256 fragments */

#define KCP_CMD_PUSH 81
#define KCP_CMD_ACK 82
#define KCP_CMD_WASK 83
#define KCP_CMD_WINS 84

enum kcp_error {
	KCP_EAGAIN = -1,  /* recv/peeksize: no complete message waiting */
	KCP_ETOOBIG = -2, /* send: message needs more fragments than allowed;
	                     recv: peer sent a message larger than our window */
	KCP_ESMALL = -3,  /* recv: buffer smaller than the next message */
	KCP_EINVAL = -4,  /* an argument out of range */
	KCP_ETRUNC = -5,  /* input: short datagram, or a segment runs past it */
	KCP_ECONV = -6,   /* input: conv differs from this object's */
	KCP_ECMD = -7,    /* input: unknown command */
	KCP_EUNA = -8,    /* input: una or ack sn beyond what was ever sent */
	KCP_ELEN = -9,    /* input: segment longer than KCP_MTU_MAX */
	KCP_EDEAD = -10,  /* the link is dead (a segment hit the deadlink limit) */
	KCP_ENOMEM = -11, /* allocation failed; nothing was changed */
	KCP_EFULL = -12,  /* send: send queue limit reached */
};

typedef struct kcp kcp_t;

/* Output callback: one datagram of len bytes (<= mtu; segments queued
 * before kcp_setmtu lowered it keep their old size). The return value is
 * ignored, as in the classic library. */
typedef int (*kcp_output_fn)(const char *buf, int len, kcp_t *kcp, void *user);

/* Counters, for benchmarks and the session layer's statistics. */
struct kcp_stats {
	uint64_t out_datagrams; /* calls to output */
	uint64_t out_bytes;
	uint64_t out_segments;  /* every segment header written (all commands) */
	uint64_t out_push;      /* PUSH segments, first sends and resends */
	uint64_t retrans_timeout;
	uint64_t retrans_fast;
	uint64_t in_datagrams;
	uint64_t in_segments;
	uint64_t in_errors;     /* datagrams refused by kcp_input */
	uint64_t in_dup;        /* PUSH segments already received */
	uint64_t acks_dropped;  /* acks not queued because the ack list was full */
	uint64_t probes;        /* WASK window probes sent */
	uint64_t out_ackonly;   /* datagrams of ACK segments only (bare acks) */
	uint64_t acks_rode;     /* ACK segments that waited for, and left
	                           with, other segments (kcp_setmaxackdelay,
	                           kcp_setackdelay) */
	uint64_t acks_now;      /* times held acks left at once: a segment out
	                           of order or twice, or bulk data (see
	                           kcp_setmaxackdelay) */
};

/* Create an object for conversation conv; user is handed to output. Returns
 * NULL when out of memory. The object allocates nothing more until used. */
kcp_t *kcp_create(uint32_t conv, void *user);
void kcp_release(kcp_t *kcp);
void kcp_setoutput(kcp_t *kcp, kcp_output_fn output);

/* Queue a message (or, in stream mode, bytes) for sending. Returns 0, or
 * KCP_EINVAL (len < 0 or buf NULL with len > 0), KCP_ETOOBIG, KCP_EDEAD,
 * KCP_EFULL or KCP_ENOMEM. A zero-length message is legal (one empty
 * segment), as in the classic library. */
int kcp_send(kcp_t *kcp, const char *buf, int len);

/* Copy the next complete message into buf. Returns its length, KCP_EAGAIN
 * when none is complete, KCP_ESMALL when len < kcp_peeksize() (nothing is
 * consumed), KCP_ETOOBIG when the peer sent a message that can never fit
 * the receive window (the link is unusable; close it). */
int kcp_recv(kcp_t *kcp, char *buf, int len);

/* Length of the next complete message, or KCP_EAGAIN / KCP_ETOOBIG. */
int kcp_peeksize(const kcp_t *kcp);

/* Feed one datagram received from the peer. Returns 0, or a negative code
 * (KCP_ETRUNC, KCP_ECONV, KCP_ECMD, KCP_EUNA, KCP_ELEN, KCP_ENOMEM); on an
 * error the datagram has no effect at all and the object stays usable.
 * Its acks are timed (the RTT samples) against the clock of the last
 * kcp_update, as in the classic library: up to a flush interval stale. */
int kcp_input(kcp_t *kcp, const char *data, long size);
/* The same, with the clock first advanced to current (never moved back):
 * the RTT samples are what they are at arrival. Use it when the RTO is to
 * follow a short RTT (the session layer does). */
int kcp_input_at(kcp_t *kcp, const char *data, long size, uint32_t current);

/* Advance time to current (ms) and flush when due. Call it at kcp_check()
 * time or more often. Returns 0, or KCP_EDEAD once the link is dead. */
int kcp_update(kcp_t *kcp, uint32_t current);

/* When kcp_update() is next needed, in the same clock as current: at most
 * interval ms away, sooner when a retransmission is due. An object with
 * nothing in flight and nothing to acknowledge still answers
 * current + interval (the flush timer), as the classic library does;
 * kcp_idle() tells a caller it may sleep longer. */
uint32_t kcp_check(const kcp_t *kcp, uint32_t current);

/* 1 when there is nothing to send, resend, acknowledge or probe. */
int kcp_idle(const kcp_t *kcp);

/* Send acks, window probes and due segments now. */
void kcp_flush(kcp_t *kcp);

/* mtu in [KCP_MTU_MIN, KCP_MTU_MAX]; 0 or KCP_EINVAL. Changing it with data
 * queued affects only messages sent afterwards. */
int kcp_setmtu(kcp_t *kcp, int mtu);
int kcp_getmtu(const kcp_t *kcp);

/* Window sizes in segments; a value <= 0 leaves that one unchanged. The
 * receive window is raised to at least 128 as in the classic library and
 * capped at 65535 (the wnd field is 16 bits). Returns 0; the rings grow
 * as traffic needs them. */
int kcp_wndsize(kcp_t *kcp, int sndwnd, int rcvwnd);

/* Segments queued or in flight, not yet acknowledged. */
int kcp_waitsnd(const kcp_t *kcp);
/* Payload bytes of those segments (the session layer's watermark). */
uint64_t kcp_waitbytes(const kcp_t *kcp);

/* nodelay: 0 normal, 1 fast RTO growth and no min-RTO delay, 2 as 1 with
 * a gentler backoff. interval: flush period in ms (10..5000). resend: fast
 * retransmit after this many later acks (0 off). nc: 1 disables congestion
 * control. A negative argument leaves that setting unchanged. Returns 0. */
int kcp_nodelay(kcp_t *kcp, int nodelay, int interval, int resend, int nc);

/* When to send, between two flush intervals. The classic library sends
 * only every `interval` ms, so an ack or a new message waits up to that
 * long. moongate, by default, sends acks (KCP_EAGER_ACK) and new data the
 * window lets out (KCP_EAGER_DATA) at the next kcp_update, and kcp_check
 * says so by returning `current`: 4x lower latency in bench/kcp_throughput,
 * for more, smaller datagrams. KCP_EAGER_RESEND (also a default): a
 * retransmission (timeout or fast) leaves at the kcp_update of its due
 * time, which kcp_check returns, instead of waiting for the next flush, so
 * the RTO needs no `interval` term (kcp_setminrto). kcp_seteager(kcp, 0)
 * restores the classic timing; window probes always keep the interval. */
#define KCP_EAGER_ACK 1
#define KCP_EAGER_DATA 2
#define KCP_EAGER_RESEND 4
#define KCP_EAGER_ALL (KCP_EAGER_ACK | KCP_EAGER_DATA | KCP_EAGER_RESEND)
void kcp_seteager(kcp_t *kcp, int flags);
/* Without KCP_EAGER_ACK, when acks leave. 0 (the classic timing): at the
 * next flush, so an ack waits anywhere from 0 to `interval` ms, and the
 * peer's RTT samples, hence its RTO, carry that spread. ms > 0: an ack
 * rides on any datagram that leaves first (data, a retransmission, a
 * probe), else leaves exactly ms after the oldest queued ack arrived
 * (kcp_input_at's clock), whatever the flush clock: a constant delay,
 * which the peer's RTO absorbs as srtt, not as 4 x rttvar. At most 5000. */
void kcp_setackdelay(kcp_t *kcp, int ms);
/* Acks that ride on this end's data, as TCP's delayed acks and QUIC's
 * max_ack_delay (RFC 9000, 13.2) do, within the classic wire format.
 * With ms > 0, while this end sends new data at a regular pace (the
 * average gap between its flushes that send new PUSH segments), an ack
 * whose arrival is followed within ms by the next expected data waits for
 * it, and leaves with it: a 20 Hz stream each way (frames one way, inputs
 * the other) then costs 20 datagrams a second each way, not 40. The ack
 * never waits more than ms after it arrived (then it leaves alone), and
 * not at all when no data is expected within ms: then kcp_seteager and
 * kcp_setackdelay decide, as without this call. Held acks leave at once,
 * with whatever else is queued, when a PUSH arrives out of order (a gap:
 * the peer's fast retransmit needs to hear), twice (the peer's timer fired:
 * its ack was late or lost), when 2 full-size segments or 16 segments wait
 * for acks (bulk data: the peer's window must not stall). The echoed ts is unchanged, so the peer's RTT samples include
 * the wait (at most ms, at most the gap to this end's next data) and its
 * RTO grows by as much: the price of a lost segment (docs/PROTOCOL.md,
 * "Acks that ride on data"). 0 (the default): off. At most 5000. */
void kcp_setmaxackdelay(kcp_t *kcp, int ms);

void kcp_setstream(kcp_t *kcp, int on);
/* The retransmission timeout (RTO) is measured as in RFC 6298 and the
 * classic library: srtt and rttvar from the acks' echoed timestamps
 * (gains 1/8 and 1/4), rto = srtt + max(4 x rttvar, G), within
 * [minrto, 60000] ms, and each segment's own timer backs off from it
 * (2x, or 1.5x with nodelay). G is the timer's granularity: `interval`
 * when retransmissions wait for the flush (the classic timing), 1 ms with
 * KCP_EAGER_RESEND. minrto in ms, >= 1 (classic: 100, or 30 with nodelay;
 * kcp_nodelay sets it back to those). Call it after kcp_nodelay. */
void kcp_setminrto(kcp_t *kcp, int ms);
/* A segment sent this many times without an ack kills the link (20). */
void kcp_setdeadlink(kcp_t *kcp, int xmit);
/* Fast retransmits of one segment stop after this many sends (5; <=0 no
 * limit). */
void kcp_setfastlimit(kcp_t *kcp, int xmit);
/* Refuse kcp_send with KCP_EFULL when this many segments are already
 * waiting (kcp_waitsnd); 0 means no limit. */
void kcp_setsndlimit(kcp_t *kcp, int segments);
int kcp_isdead(const kcp_t *kcp);
/* The path under the session changed (a resume, a new address): every
 * segment in flight is due again at the next flush, with a fresh rto, and
 * its send count starts again, so the old path's silence neither delays
 * the first retransmission nor counts toward the dead link. */
void kcp_rewind(kcp_t *kcp);

/* Largest message kcp_send accepts in message mode, in bytes. */
int kcp_maxmsg(const kcp_t *kcp);

/* Start the send and receive sequence numbers at these values. Only valid
 * before any traffic (KCP_EINVAL otherwise); both peers must agree. Used by
 * tests of wrap-around at 2^32 and by layers that derive initial numbers. */
int kcp_setnext(kcp_t *kcp, uint32_t snd_sn, uint32_t rcv_sn);

uint32_t kcp_getconv(const kcp_t *kcp);
/* The conv of a datagram (its first 4 bytes); 0 if shorter than a header. */
uint32_t kcp_conv_of(const void *data, long size);

/* Smoothed RTT and RTO in ms, as measured from acks. */
int kcp_srtt(const kcp_t *kcp);
int kcp_rto(const kcp_t *kcp);

/* Bytes this object holds on the heap, including itself. */
size_t kcp_memsize(const kcp_t *kcp);
/* Payload buffers are recycled through free lists owned by the calling
 * thread (at most 4 MiB): their size now, and a call that frees them. A
 * thread that used KCP objects calls kcp_pool_trim() before it exits, or
 * what its lists hold is lost. */
size_t kcp_pool_size(void);
void kcp_pool_trim(void);
void kcp_getstats(const kcp_t *kcp, struct kcp_stats *st);
const char *kcp_strerror(int code);

#endif
