/*
 * interop_kcpgo.c - moongate's KCP against kcp-go (xtaci/kcp-go v5), over
 * real UDP on 127.0.0.1, both directions, with loss injected on our side.
 *
 *   interop_kcpgo [-n N] [-max BYTES] [-loss PCT] [-seed S] [-v] [-case NAME]
 *                 PATH/TO/kcpgo_peer
 *
 * Cases (each spawns a fresh kcpgo_peer, see kcpgo_peer.go):
 *   client_to_kcpgo_server  our kcp dials kcp-go's Listener (UDPSession,
 *                           no FEC, no crypto): N frames of 1..4000 bytes
 *                           sent as single messages (fragmented by us),
 *                           echoed back as a byte stream and checked here;
 *   kcpgo_client_to_server  kcp-go's UDPSession dials our server, which
 *                           echoes message for message; kcp-go checks;
 *   kcpgo_raw_to_server     kcp-go's KCP object on its own UDP socket sends
 *                           each frame as one message (fragmented by
 *                           kcp-go, frg > 0), our server echoes each whole;
 *                           kcp-go checks content and message boundaries.
 *
 * Loss: we drop PCT% of the datagrams we receive and PCT% of those we send,
 * chosen by a seeded generator, so both implementations must retransmit.
 * Every datagram in either direction is also parsed by an independent
 * parser here (not core/proto/kcp.c): it must be a run of 24-byte classic headers
 * with known commands and lengths that exactly fill it, which is what
 * "plain KCP, no extra layer" means on the wire.
 *
 * Every wait has a deadline; the child is reaped on every path (its stdin
 * is our pipe, so it also exits if we die). Output ends with
 * "N passed, M failed"; the exit status is 0 only if all passed.
 * INTEROP_TRACE=1 in the environment prints every datagram's headers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, SOCK_CLOEXEC under -std=c11 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kcp.h"
#include "kcpwire.h"

#define MTU 1200
#define WND 128
#define HDR 8                    /* frame: u32le payload length, u32le seq */
#define MAX_PAYLOAD_LIMIT 60000
#define STREAM_CAP (1 << 20)
#define ECHO_BACKLOG 2048        /* server: stop reading above this waitsnd */
#define CLIENT_INFLIGHT (2 * WND)
#define CASE_DEADLINE_MS 90000
#define PEER_TIMEOUT "60s"
#define RING 64                  /* datagrams remembered for a failure dump */
#define STALL_MS 1000            /* a silence this long is reported */

static struct {
	int n;
	int max_payload;
	int loss_pct;
	uint64_t seed;
	int verbose;
	int trace;
	const char *peer;
	const char *only;   /* run only the case of this name */
} opt = { 2000, 4000, 10, 1, 0, 0, NULL, NULL };

/* ---- time, randomness, frames -------------------------------------- */

static uint32_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static int32_t
tdiff(uint32_t later, uint32_t earlier)
{
	return (int32_t)(later - earlier);
}

static uint64_t
splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Same generator as kcpgo_peer.go (not required, but one format to read):
 * mostly uniform lengths, every 8th frame on a fragment boundary. */
static int
payload_len(uint32_t seq)
{
	uint64_t r = splitmix(opt.seed << 32 ^ seq);
	int mss = MTU - KCP_OVERHEAD;
	if (seq % 8 == 0) {
		int total = (int)((r >> 8) % 3 + 1) * mss + (int)(r % 3) - 1;
		int n = total - HDR;
		if (n >= 1 && n <= opt.max_payload)
			return n;
	}
	return (int)(r % (uint64_t)opt.max_payload) + 1;
}

/* Writes frame seq into buf (room for HDR + max_payload); returns its size. */
static int
make_frame(unsigned char *buf, uint32_t seq)
{
	int n = payload_len(seq);
	uint64_t s = splitmix(opt.seed << 32 ^ seq ^ 0x5555);
	kw_put32(buf, (uint32_t)n);
	kw_put32(buf + 4, seq);
	for (int i = 0; i < n; i++) {
		if (i % 8 == 0)
			s = splitmix(s);
		buf[HDR + i] = (unsigned char)(s >> (8 * (i % 8)));
	}
	return HDR + n;
}

/* ---- an independent parse of the wire format ------------------------ */

/* Splits a datagram into classic KCP segments (test/lib/kcpwire.h). Returns
 * the number of segments (up to max stored in out, all checked), or -1 if
 * the datagram is not a well-formed run of segments of one conv, with known
 * commands and no payload on anything but PUSH. */
static int
wire_parse(const unsigned char *p, long size, struct kw_seg *out, int max)
{
	struct kw_seg all[64]; /* a 1500-byte datagram holds at most 62 */
	int i, n;
	if (size < KCP_OVERHEAD || size > 65536)
		return -1;
	n = kw_parse(p, (int)size, all, 64);
	if (n < 0 || n > 64)
		return -1;
	for (i = 0; i < n; i++) {
		const struct kw_seg *h = &all[i];
		if (h->conv != all[0].conv || h->cmd < KCP_CMD_PUSH ||
		    h->cmd > KCP_CMD_WINS)
			return -1;
		if (h->cmd != KCP_CMD_PUSH && h->len != 0)
			return -1;
		if (i < max)
			out[i] = *h;
	}
	return n;
}

static const char *
cmd_name(int cmd)
{
	switch (cmd) {
	case KCP_CMD_PUSH: return "PUSH";
	case KCP_CMD_ACK: return "ACK ";
	case KCP_CMD_WASK: return "WASK";
	case KCP_CMD_WINS: return "WINS";
	}
	return "????";
}

/* ---- the UDP link: loss, counters, a trace ring ---------------------- */

struct trace_entry {
	uint32_t t;
	char dir;        /* '>' sent by us, '<' received */
	char dropped;
	int len;
	int nseg;        /* -1: malformed */
	struct kw_seg seg[4];
};

struct link {
	int fd;
	kcp_t *kcp;
	uint64_t rng;
	uint32_t t0;
	/* counters */
	uint64_t out_dgrams, out_dropped, out_errors;
	uint64_t out_refused;        /* send() said the network lost it */
	int out_errno;               /* the first other send() errno */
	uint64_t in_dgrams, in_dropped, in_errors, in_foreign;
	uint64_t malformed_out, malformed_in;
	int first_error;             /* first kcp_input error code */
	uint32_t last_rx;            /* when the last datagram arrived */
	uint32_t max_gap;            /* longest silence between two, ms */
	int stalls;                  /* silences over STALL_MS (dumped) */
	struct trace_entry ring[RING];
	unsigned ring_next;
};

static int
lose(struct link *l)
{
	l->rng = splitmix(l->rng);
	return (int)(l->rng % 100) < opt.loss_pct;
}

static void
trace_print(const struct trace_entry *e)
{
	fprintf(stderr, "  %7.3fs %c%s %4d bytes", e->t / 1000.0, e->dir,
	        e->dropped ? " (dropped)" : "", e->len);
	if (e->nseg < 0) {
		fprintf(stderr, "  MALFORMED\n");
		return;
	}
	fprintf(stderr, "  %d seg\n", e->nseg);
	for (int i = 0; i < e->nseg && i < 4; i++) {
		const struct kw_seg *h = &e->seg[i];
		fprintf(stderr, "      conv=%08" PRIx32 " %s frg=%u wnd=%u ts=%" PRIu32
		        " sn=%" PRIu32 " una=%" PRIu32 " len=%" PRIu32 "\n",
		        h->conv, cmd_name(h->cmd), h->frg, h->wnd, h->ts, h->sn,
		        h->una, h->len);
	}
}

static void
trace(struct link *l, char dir, int dropped, const unsigned char *p, long len)
{
	struct trace_entry *e = &l->ring[l->ring_next++ % RING];
	e->t = now_ms() - l->t0;
	e->dir = dir;
	e->dropped = (char)dropped;
	e->len = (int)len;
	e->nseg = wire_parse(p, len, e->seg, 4);
	if (e->nseg < 0) {
		if (dir == '>')
			l->malformed_out++;
		else
			l->malformed_in++;
	}
	if (opt.trace)
		trace_print(e);
}

static void
trace_dump(const struct link *l)
{
	unsigned n = l->ring_next < RING ? l->ring_next : RING;
	fprintf(stderr, "  last %u datagrams ('>' ours, '<' kcp-go's):\n", n);
	for (unsigned i = l->ring_next - n; i != l->ring_next; i++)
		trace_print(&l->ring[i % RING]);
}

static int
link_output(const char *buf, int len, kcp_t *kcp, void *user)
{
	struct link *l = user;
	int drop = lose(l);
	(void)kcp;
	l->out_dgrams++;
	trace(l, '>', drop, (const unsigned char *)buf, len);
	if (drop) {
		l->out_dropped++;
		return 0;
	}
	if (send(l->fd, buf, (size_t)len, 0) != len) {
		/* An ICMP port unreachable from the peer's start or end
		 * (ECONNREFUSED), or a full socket buffer on a loaded machine
		 * (ENOBUFS, EAGAIN), is a datagram the network lost: KCP
		 * retransmits it, as it would any other. Anything else is a bug
		 * of this harness and fails the case. */
		if (errno == ECONNREFUSED || errno == ENOBUFS || errno == EAGAIN)
			l->out_refused++;
		else if (!l->out_errors++)
			l->out_errno = errno;
	}
	return 0;
}

static int
link_kcp(struct link *l, uint32_t conv)
{
	l->kcp = kcp_create(conv, l);
	if (!l->kcp)
		return -1;
	kcp_setoutput(l->kcp, link_output);
	kcp_nodelay(l->kcp, 1, 10, 2, 1);
	kcp_wndsize(l->kcp, WND, WND);
	if (kcp_setmtu(l->kcp, MTU) != 0)
		return -1;
	return 0;
}

/* Feeds one received datagram (already past the loss decision). */
static void
link_input(struct link *l, const unsigned char *p, long n)
{
	int r = kcp_input(l->kcp, (const char *)p, n);
	if (r < 0) {
		if (l->in_errors++ == 0) {
			l->first_error = r;
			fprintf(stderr, "interop: kcp_input refused a kcp-go datagram: %s\n",
			        kcp_strerror(r));
		}
	}
}

static void
link_report(const char *name, const struct link *l)
{
	struct kcp_stats st;
	memset(&st, 0, sizeof st);
	if (l->kcp)
		kcp_getstats(l->kcp, &st);
	printf("  %s: ours sent %" PRIu64 " datagrams (%" PRIu64 " dropped by us,"
	       " %" PRIu64 " refused by the network), received %" PRIu64 " (%" PRIu64 " dropped by us);"
	       " retrans timeout %" PRIu64 " fast %" PRIu64
	       "; dup %" PRIu64 "; input errors %" PRIu64 "; malformed out %" PRIu64
	       " in %" PRIu64 "; srtt %d rto %d; longest silence %" PRIu32 " ms\n",
	       name, l->out_dgrams, l->out_dropped, l->out_refused, l->in_dgrams,
	       l->in_dropped,
	       st.retrans_timeout, st.retrans_fast, st.in_dup,
	       l->in_errors, l->malformed_out, l->malformed_in,
	       l->kcp ? kcp_srtt(l->kcp) : 0, l->kcp ? kcp_rto(l->kcp) : 0, l->max_gap);
}

/* ---- the kcp-go child ------------------------------------------------ */

struct child {
	pid_t pid;       /* 0 once reaped */
	int in_fd;       /* its stdin; closing it asks it to exit */
	int out_fd;      /* its stdout, non-blocking; -1 at EOF */
	int status;      /* wait status once reaped */
	int port;        /* from a "PORT n" line, 0 until seen */
	char line[1024];
	size_t linelen;
};

static int
child_spawn(struct child *c, char *const argv[])
{
	int in[2], out[2];
	memset(c, 0, sizeof *c);
	c->in_fd = c->out_fd = -1;
	if (pipe2(in, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) != 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	c->pid = fork();
	if (c->pid < 0) {
		close(in[0]); close(in[1]); close(out[0]); close(out[1]);
		c->pid = 0;
		return -1;
	}
	if (c->pid == 0) {
		dup2(in[0], 0);   /* dup2 clears FD_CLOEXEC on 0 and 1 */
		dup2(out[1], 1);
		execv(argv[0], argv);
		fprintf(stderr, "interop: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in_fd = in[1];
	c->out_fd = out[0];
	fcntl(c->out_fd, F_SETFL, fcntl(c->out_fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

static void
child_line(struct child *c, const char *s)
{
	int port;
	if (c->port == 0 && sscanf(s, "PORT %d", &port) == 1 && port > 0 && port < 65536)
		c->port = port;
	printf("  kcp-go| %s\n", s);
}

/* Reads what the child printed, line by line; notes EOF. */
static void
child_drain(struct child *c)
{
	while (c->out_fd >= 0) {
		ssize_t n = read(c->out_fd, c->line + c->linelen,
		                 sizeof c->line - 1 - c->linelen);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			if (c->linelen) {
				c->line[c->linelen] = 0;
				child_line(c, c->line);
				c->linelen = 0;
			}
			close(c->out_fd);
			c->out_fd = -1;
			return;
		}
		c->linelen += (size_t)n;
		char *nl;
		while ((nl = memchr(c->line, '\n', c->linelen)) != NULL) {
			*nl = 0;
			child_line(c, c->line);
			c->linelen -= (size_t)(nl + 1 - c->line);
			memmove(c->line, nl + 1, c->linelen);
		}
		if (c->linelen == sizeof c->line - 1) { /* an overlong line */
			c->line[c->linelen] = 0;
			child_line(c, c->line);
			c->linelen = 0;
		}
	}
}

/* 1 once the child has exited (and is reaped), 0 while it runs. */
static int
child_reaped(struct child *c)
{
	if (c->pid == 0)
		return 1;
	pid_t r = waitpid(c->pid, &c->status, WNOHANG);
	if (r == c->pid || (r < 0 && errno == ECHILD)) {
		c->pid = 0;
		return 1;
	}
	return 0;
}

static void
child_close_stdin(struct child *c)
{
	if (c->in_fd >= 0) {
		close(c->in_fd);
		c->in_fd = -1;
	}
}

/* Waits up to ms for the child to exit, reading its output meanwhile. */
static int
child_wait(struct child *c, int ms)
{
	uint32_t end = now_ms() + (uint32_t)ms;
	while (!child_reaped(c)) {
		int left = tdiff(end, now_ms());
		if (left <= 0)
			return 0;
		if (c->out_fd >= 0) {
			struct pollfd p = { c->out_fd, POLLIN, 0 };
			poll(&p, 1, left < 10 ? left : 10);
			child_drain(c);
		} else {
			struct timespec ts = { 0, 5 * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	child_drain(c);
	return 1;
}

/* Ends the child on any path: stdin EOF first (its clean exit), then TERM,
 * then KILL; always reaps it and closes our ends. */
static void
child_stop(struct child *c)
{
	child_close_stdin(c);
	if (!child_wait(c, 3000) && c->pid > 0) {
		kill(c->pid, SIGTERM);
		if (!child_wait(c, 2000) && c->pid > 0) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &c->status, 0);
			c->pid = 0;
		}
	}
	child_drain(c);
	if (c->out_fd >= 0) {
		close(c->out_fd);
		c->out_fd = -1;
	}
}

static int
child_ok(const struct child *c)
{
	return c->pid == 0 && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

static void
child_describe(const struct child *c, char *buf, size_t size)
{
	if (c->pid != 0)
		snprintf(buf, size, "still running");
	else if (WIFEXITED(c->status))
		snprintf(buf, size, "exit status %d", WEXITSTATUS(c->status));
	else if (WIFSIGNALED(c->status))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(c->status));
	else
		snprintf(buf, size, "wait status 0x%x", c->status);
}

/* ---- the event loop step shared by both roles ------------------------ */

/* Runs kcp_update when due, then waits (at most max_wait ms, and not past
 * the next kcp_check time) for datagrams or child output, and feeds every
 * datagram that survives the loss draw. In server role (kcp == NULL until
 * the first datagram) the first datagram's sender becomes the peer.
 * Returns -1 on a fatal socket or kcp error. */
static int
step(struct link *l, struct child *c, uint32_t *next_update, int max_wait)
{
	static unsigned char buf[65536];
	uint32_t now = now_ms();
	int wait = max_wait;

	if (l->kcp) {
		if (tdiff(now, *next_update) >= 0) {
			int r = kcp_update(l->kcp, now);
			if (r < 0) {
				fprintf(stderr, "interop: kcp_update: %s\n", kcp_strerror(r));
				return -1;
			}
			*next_update = kcp_check(l->kcp, now);
		}
		int due = tdiff(*next_update, now);
		if (due < 0)
			due = 0;
		if (due < wait)
			wait = due;
	}

	struct pollfd p[2] = { { l->fd, POLLIN, 0 }, { c->out_fd, POLLIN, 0 } };
	int np = c->out_fd >= 0 ? 2 : 1;
	if (poll(p, (nfds_t)np, wait) < 0 && errno != EINTR) {
		perror("interop: poll");
		return -1;
	}
	if (np == 2 && p[1].revents)
		child_drain(c);
	if (!(p[0].revents & POLLIN))
		return 0;

	for (int i = 0; i < 256; i++) {
		struct sockaddr_in from;
		socklen_t fromlen = sizeof from;
		ssize_t n = recvfrom(l->fd, buf, sizeof buf, MSG_DONTWAIT,
		                     (struct sockaddr *)&from, &fromlen);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			if (errno == ECONNREFUSED) /* the peer's port is gone */
				continue;
			perror("interop: recvfrom");
			return -1;
		}
		uint32_t t = now_ms();
		if (l->in_dgrams++ > 0 && tdiff(t, l->last_rx) > (int32_t)l->max_gap)
			l->max_gap = (uint32_t)tdiff(t, l->last_rx);
		if (l->in_dgrams > 1 && tdiff(t, l->last_rx) >= STALL_MS && l->stalls++ < 2) {
			/* Not a failure (a lost window update waits for the
			 * peer's probe, as in classic KCP), but worth seeing. */
			fprintf(stderr, "interop: no datagram for %d ms; before it:\n",
			        (int)tdiff(t, l->last_rx));
			trace_dump(l);
		}
		l->last_rx = t;
		int drop = lose(l);
		trace(l, '<', drop, buf, n);
		if (drop) {
			l->in_dropped++;
			continue;
		}
		if (!l->kcp) {
			/* Server role: adopt the first datagram's conv and sender. */
			uint32_t conv = kcp_conv_of(buf, n);
			if (n < KCP_OVERHEAD) {
				l->in_foreign++;
				continue;
			}
			if (connect(l->fd, (struct sockaddr *)&from, fromlen) != 0) {
				perror("interop: connect");
				return -1;
			}
			if (link_kcp(l, conv) != 0) {
				fprintf(stderr, "interop: kcp_create failed\n");
				return -1;
			}
			if (opt.verbose)
				printf("  accepted conv 0x%08" PRIx32 " from %s:%d\n", conv,
				       inet_ntoa(from.sin_addr), ntohs(from.sin_port));
			*next_update = now_ms();
		} else if (kcp_conv_of(buf, n) != kcp_getconv(l->kcp)) {
			l->in_foreign++;
			continue;
		}
		link_input(l, buf, n);
	}
	return 0;
}

static int
udp_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int sz = 4 << 20;
	struct sockaddr_in a;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "interop: FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return -1;
}

/* Checks the link's own counters shared by every case. */
static int
link_verdict(const struct link *l)
{
	if (l->in_errors)
		return fail("kcp_input refused %" PRIu64 " kcp-go datagrams (first: %s)",
		            l->in_errors, kcp_strerror(l->first_error));
	if (l->malformed_in)
		return fail("%" PRIu64 " kcp-go datagrams are not plain KCP", l->malformed_in);
	if (l->malformed_out)
		return fail("%" PRIu64 " of our datagrams are not plain KCP", l->malformed_out);
	if (l->in_foreign)
		return fail("%" PRIu64 " datagrams of another conv", l->in_foreign);
	if (l->out_errors)
		return fail("%" PRIu64 " send() errors (first: %s)", l->out_errors,
		            strerror(l->out_errno));
	return 0;
}

/* ---- case a: our client, kcp-go server ------------------------------- */

static int
case_client(void)
{
	struct link l;
	struct child c;
	static unsigned char frame[HDR + MAX_PAYLOAD_LIMIT];
	static unsigned char msg[65536];
	unsigned char *stream = NULL;
	size_t have = 0;
	uint32_t next_update = 0, start = now_ms(), conv;
	int sent = 0, verified = 0, rc = -1;
	uint64_t bytes = 0;
	char *argv[] = { (char *)opt.peer, "-timeout", PEER_TIMEOUT, "server", NULL };

	memset(&l, 0, sizeof l);
	l.fd = -1;
	l.t0 = start;
	l.rng = splitmix(opt.seed ^ 0xa);
	if (child_spawn(&c, argv) != 0)
		return fail("spawn %s: %s", opt.peer, strerror(errno));

	/* The PORT line, within 10 s. */
	while (c.port == 0) {
		int left = tdiff(start + 10000, now_ms());
		struct pollfd p = { c.out_fd, POLLIN, 0 };
		if (left <= 0 || c.out_fd < 0) {
			fail("kcp-go server printed no PORT line");
			goto out;
		}
		poll(&p, 1, left);
		child_drain(&c);
	}

	l.fd = udp_socket();
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)c.port);
	if (l.fd < 0 || connect(l.fd, (struct sockaddr *)&a, sizeof a) != 0) {
		fail("udp socket: %s", strerror(errno));
		goto out;
	}
	do
		conv = (uint32_t)splitmix(opt.seed ^ (uint64_t)getpid() << 20 ^ now_ms());
	while (conv == 0);
	if (link_kcp(&l, conv) != 0 || !(stream = malloc(STREAM_CAP))) {
		fail("out of memory");
		goto out;
	}
	if (kcp_maxmsg(l.kcp) < HDR + opt.max_payload) {
		fail("kcp_maxmsg %d < largest frame %d", kcp_maxmsg(l.kcp), HDR + opt.max_payload);
		goto out;
	}
	printf("  conv 0x%08" PRIx32 ", kcp-go server on 127.0.0.1:%d, mtu %d, maxmsg %d\n",
	       conv, c.port, MTU, kcp_maxmsg(l.kcp));
	next_update = now_ms();

	while (verified < opt.n) {
		if (tdiff(now_ms(), start + CASE_DEADLINE_MS) >= 0) {
			fail("deadline: sent %d, verified %d of %d", sent, verified, opt.n);
			goto out;
		}
		if (child_reaped(&c)) {
			fail("kcp-go server exited early");
			goto out;
		}
		while (sent < opt.n && kcp_waitsnd(l.kcp) < CLIENT_INFLIGHT) {
			int len = make_frame(frame, (uint32_t)sent);
			int r = kcp_send(l.kcp, (const char *)frame, len);
			if (r < 0) {
				fail("kcp_send(frame %d, %d bytes): %s", sent, len, kcp_strerror(r));
				goto out;
			}
			sent++;
		}
		if (step(&l, &c, &next_update, 100) != 0)
			goto out;

		/* kcp-go echoes a byte stream (its Write cuts at its mss):
		 * gather messages, then cut frames. */
		for (;;) {
			int n = kcp_recv(l.kcp, (char *)msg, sizeof msg);
			if (n == KCP_EAGAIN)
				break;
			if (n < 0) {
				fail("kcp_recv: %s", kcp_strerror(n));
				goto out;
			}
			if (have + (size_t)n > STREAM_CAP) {
				fail("echo stream overflow");
				goto out;
			}
			memcpy(stream + have, msg, (size_t)n);
			have += (size_t)n;
		}
		size_t off = 0;
		while (have - off >= HDR) {
			uint32_t plen = kw_get32(stream + off);
			if (plen < 1 || plen > (uint32_t)opt.max_payload) {
				fail("echo of frame %d: bad length %" PRIu32, verified, plen);
				goto out;
			}
			if (have - off < HDR + plen)
				break;
			int len = make_frame(frame, (uint32_t)verified);
			if ((uint32_t)len != HDR + plen) {
				fail("echo of frame %d: %" PRIu32 " payload bytes (seq field %" PRIu32
				     "), want %d", verified, plen, kw_get32(stream + off + 4), len - HDR);
				goto out;
			}
			for (int i = 0; i < len; i++) {
				if (frame[i] != stream[off + (size_t)i]) {
					fail("echo of frame %d: byte %d is 0x%02x, want 0x%02x", verified,
					     i, stream[off + (size_t)i], frame[i]);
					goto out;
				}
			}
			off += (size_t)len;
			bytes += (uint64_t)len;
			verified++;
		}
		memmove(stream, stream + off, have - off);
		have -= off;
	}
	if (have != 0) {
		fail("%zu stray bytes after the last echo", have);
		goto out;
	}
	printf("  verified %d echoed frames, %" PRIu64 " bytes, in %" PRIu32 " ms\n",
	       verified, bytes, now_ms() - start);
	rc = link_verdict(&l);

out:
	if (rc != 0 && l.ring_next)
		trace_dump(&l);
	child_stop(&c);
	if (rc == 0 && !child_ok(&c)) {
		char d[64];
		child_describe(&c, d, sizeof d);
		rc = fail("kcp-go server: %s", d);
	}
	link_report("client_to_kcpgo_server", &l);
	if (l.kcp)
		kcp_release(l.kcp);
	if (l.fd >= 0)
		close(l.fd);
	free(stream);
	return rc;
}

/* ---- cases b and c: kcp-go client, our echo server ------------------- */

static int
case_server(const char *mode)
{
	struct link l;
	struct child c;
	static unsigned char msg[65536];
	uint32_t next_update = 0, start = now_ms();
	uint64_t echoed = 0, echoed_bytes = 0;
	int rc = -1;
	char port[16], nbuf[16], maxbuf[16], seedbuf[32];

	memset(&l, 0, sizeof l);
	memset(&c, 0, sizeof c);
	c.in_fd = c.out_fd = -1;
	l.t0 = start;
	l.rng = splitmix(opt.seed ^ (mode[0] == 'r' ? 0xc : 0xb));
	l.fd = udp_socket();
	if (l.fd < 0)
		return fail("udp socket: %s", strerror(errno));
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	if (getsockname(l.fd, (struct sockaddr *)&a, &alen) != 0) {
		close(l.fd);
		return fail("getsockname: %s", strerror(errno));
	}
	snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
	snprintf(nbuf, sizeof nbuf, "%d", opt.n);
	snprintf(maxbuf, sizeof maxbuf, "%d", opt.max_payload);
	snprintf(seedbuf, sizeof seedbuf, "%" PRIu64, opt.seed);
	char *argv[] = { (char *)opt.peer, "-n", nbuf, "-max", maxbuf, "-seed", seedbuf,
	                 "-timeout", PEER_TIMEOUT, (char *)mode, port, NULL };
	printf("  our server on 127.0.0.1:%s, kcp-go %s\n", port, mode);
	if (child_spawn(&c, argv) != 0) {
		close(l.fd);
		return fail("spawn %s: %s", opt.peer, strerror(errno));
	}

	/* Serve until the kcp-go client exits: it alone can tell success. */
	while (!child_reaped(&c)) {
		if (tdiff(now_ms(), start + CASE_DEADLINE_MS) >= 0) {
			fail("deadline: echoed %" PRIu64 " messages", echoed);
			goto out;
		}
		if (step(&l, &c, &next_update, 100) != 0)
			goto out;
		/* Echo message for message; stop reading while our own send
		 * queue is long, so the receive window closes (bounded). */
		while (l.kcp && kcp_waitsnd(l.kcp) < ECHO_BACKLOG) {
			int n = kcp_recv(l.kcp, (char *)msg, sizeof msg);
			if (n == KCP_EAGAIN)
				break;
			if (n < 0) {
				fail("kcp_recv: %s", kcp_strerror(n));
				goto out;
			}
			int r = kcp_send(l.kcp, (const char *)msg, n);
			if (r < 0) {
				fail("kcp_send(echo of %d bytes): %s", n, kcp_strerror(r));
				goto out;
			}
			echoed++;
			echoed_bytes += (uint64_t)n;
		}
	}
	child_drain(&c);
	printf("  echoed %" PRIu64 " messages, %" PRIu64 " bytes, in %" PRIu32 " ms\n",
	       echoed, echoed_bytes, now_ms() - start);
	if (!child_ok(&c)) {
		char d[64];
		child_describe(&c, d, sizeof d);
		fail("kcp-go %s: %s", mode, d);
		goto out;
	}
	rc = link_verdict(&l);

out:
	if (rc != 0 && l.ring_next)
		trace_dump(&l);
	child_stop(&c);
	link_report(mode, &l);
	if (l.kcp)
		kcp_release(l.kcp);
	close(l.fd);
	return rc;
}

/* ---- main ------------------------------------------------------------ */

static void
usage(void)
{
	fprintf(stderr, "usage: interop_kcpgo [-n N] [-max BYTES] [-loss PCT] [-seed S] [-v]"
	        " [-case NAME] PATH/TO/kcpgo_peer\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	const char *t = getenv("INTEROP_TRACE");
	opt.trace = t && *t && strcmp(t, "0") != 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			opt.n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-max") && i + 1 < argc)
			opt.max_payload = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-loss") && i + 1 < argc)
			opt.loss_pct = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-seed") && i + 1 < argc)
			opt.seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-case") && i + 1 < argc)
			opt.only = argv[++i];
		else if (!strcmp(argv[i], "-v"))
			opt.verbose = 1;
		else if (argv[i][0] == '-' || opt.peer)
			usage();
		else
			opt.peer = argv[i];
	}
	if (!opt.peer || opt.n < 1 || opt.max_payload < 1 ||
	    opt.max_payload > MAX_PAYLOAD_LIMIT || opt.loss_pct < 0 || opt.loss_pct > 90)
		usage();
	if (access(opt.peer, X_OK) != 0) {
		fprintf(stderr, "interop: %s: %s\n", opt.peer, strerror(errno));
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("interop_kcpgo: %d frames of 1..%d bytes each way, %d%% loss on our"
	       " receive and send, seed %" PRIu64 "\n",
	       opt.n, opt.max_payload, opt.loss_pct, opt.seed);

	static const struct {
		const char *name;
		const char *mode; /* NULL: our client */
	} cases[] = {
		{ "client_to_kcpgo_server", NULL },
		{ "kcpgo_client_to_server", "client" },
		{ "kcpgo_raw_to_server", "rawclient" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint32_t t0 = now_ms();
		if (opt.only && strcmp(opt.only, cases[i].name) != 0)
			continue;
		printf("case %s\n", cases[i].name);
		int r = cases[i].mode ? case_server(cases[i].mode) : case_client();
		printf("%s %s (%.1f s)\n", r == 0 ? "PASS" : "FAIL", cases[i].name,
		       (now_ms() - t0) / 1000.0);
		if (r == 0)
			passed++;
		else
			failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
