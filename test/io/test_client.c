/*
 * test_client.c - the client library (include/moongate/client.h) over
 * real loopback sockets, against a small server in a child process: the
 * gate (core/gate.c) behind one UDP socket and one TCP listener,
 * poll()-driven, no net.c. It echoes reliable messages and datagrams, except:
 *
 *   hello "refuse"   the handshake is refused (SESSION_CLOSE_APP + 1, "go away")
 *   message "kick"   the server closes the session (SESSION_CLOSE_APP + 2,
 *                    "kicked")
 *   message "big"    TCP: the server writes a frame header of 0xffff
 *
 * Every wait is bounded (a few seconds); the server dies with the parent.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <moongate/client.h>

#include "gate.h"     /* the server in the child: proto's own API */
#include "testutil.h"

/* ---- the server (child process) ---------------------------------------- */

#define MAXCONN 32

static struct {
	gate_t *g;
	int udp, lst;
	struct { int fd, shut; uint8_t buf[70000]; size_t n; } conn[MAXCONN];
} S;

static uint64_t
srv_now(void)
{
	return mgclient_now();
}

static void
s_output(const struct gate_path *to, const uint8_t *pkt, size_t len, void *u)
{
	(void)u;
	if (to->transport == GATE_UDP) {
		sendto(S.udp, pkt, len, 0, (const struct sockaddr *)&to->addr,
		       to->addrlen);
		return;
	}
	int i = (int)to->conn - 1;
	if (i < 0 || i >= MAXCONN || S.conn[i].fd < 0)
		return;
	uint8_t hdr[2] = { (uint8_t)len, (uint8_t)(len >> 8) };
	if (write(S.conn[i].fd, hdr, 2) < 0 || write(S.conn[i].fd, pkt, len) < 0)
		return;
}

static int
hello_is(const uint8_t *h, size_t n, const char *s)
{
	return n == strlen(s) && !memcmp(h, s, n);
}

static void
s_accept(gate_t *g, const struct gate_path *from, const uint8_t *hello,
         size_t n, struct gate_verdict *v, void *u)
{
	(void)g, (void)from, (void)u;
	if (hello_is(hello, n, "refuse")) {
		v->code = SESSION_CLOSE_APP + 1;
		strcpy(v->reason, "go away");
	}
}

static void
s_event(gate_t *g, session_t *s, const struct session_event *ev, void *u)
{
	(void)u;
	uint64_t now = srv_now();
	if (ev->type == SESSION_EV_MESSAGE) {
		if (hello_is(ev->data, ev->len, "kick")) {
			session_close(s, SESSION_CLOSE_APP + 2, "kicked", 1, now);
		} else if (hello_is(ev->data, ev->len, "big")) {
			const struct gate_path *p = gate_session_path(g, s);
			int i = p ? (int)p->conn - 1 : -1;
			if (i >= 0 && i < MAXCONN && S.conn[i].fd >= 0)
				if (write(S.conn[i].fd, "\xff\xff\x01\x02", 4) < 0)
					return;
		} else {
			session_send(s, ev->data, ev->len, now);
		}
		gate_touch(g, s, now);
	} else if (ev->type == SESSION_EV_DATAGRAM) {
		session_send_unreliable(s, ev->data, ev->len, now);
	}
}

static void
s_close_conn(gate_t *g, uint32_t conn, int graceful, void *u)
{
	(void)g, (void)graceful, (void)u;
	int i = (int)conn - 1;
	if (i >= 0 && i < MAXCONN && S.conn[i].fd >= 0 && !S.conn[i].shut) {
		shutdown(S.conn[i].fd, SHUT_WR); /* then wait for the client's FIN */
		S.conn[i].shut = 1;
	}
}

static void
tcp_read(int i)
{
	struct gate_path p = { .transport = GATE_TCP, .conn = (uint32_t)i + 1 };
	ssize_t n = read(S.conn[i].fd, S.conn[i].buf + S.conn[i].n,
	                 sizeof S.conn[i].buf - S.conn[i].n);
	if (n <= 0) {
		if (!S.conn[i].shut)
			gate_conn_lost(S.g, p.conn, "eof", srv_now());
		close(S.conn[i].fd);
		S.conn[i].fd = -1;
		return;
	}
	S.conn[i].n += (size_t)n;
	size_t off = 0;
	while (S.conn[i].n - off >= 2) {
		size_t fl = wire_get16(S.conn[i].buf + off);
		if (S.conn[i].n - off < 2 + fl)
			break;
		if (!S.conn[i].shut)
			gate_input(S.g, &p, S.conn[i].buf + off + 2, fl, srv_now());
		off += 2 + fl;
	}
	memmove(S.conn[i].buf, S.conn[i].buf + off, S.conn[i].n - off);
	S.conn[i].n -= off;
}

static void
server(int report)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(120);
	struct gate_config gc;
	gate_config_default(&gc);
	memset(gc.secret, 0x07, sizeof gc.secret); /* its key: server_key_hex */
	static const struct gate_callbacks cb = { s_output, s_accept, s_event,
	                                          s_close_conn, NULL, NULL };
	S.g = gate_create(&gc, &cb, NULL);
	struct sockaddr_in a = { .sin_family = AF_INET,
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	uint16_t ports[2];
	S.udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	S.lst = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (!S.g || bind(S.udp, (void *)&a, sizeof a) < 0 ||
	    getsockname(S.udp, (void *)&a, &l) < 0)
		_exit(1);
	ports[0] = ntohs(a.sin_port);
	a.sin_port = 0;
	l = sizeof a;
	if (bind(S.lst, (void *)&a, sizeof a) < 0 || listen(S.lst, 64) < 0 ||
	    getsockname(S.lst, (void *)&a, &l) < 0)
		_exit(1);
	ports[1] = ntohs(a.sin_port);
	for (int i = 0; i < MAXCONN; i++)
		S.conn[i].fd = -1;
	if (write(report, ports, sizeof ports) != sizeof ports)
		_exit(1);
	close(report);
	for (;;) {
		struct pollfd p[2 + MAXCONN];
		int map[2 + MAXCONN], np = 2;
		p[0] = (struct pollfd){ .fd = S.udp, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = S.lst, .events = POLLIN };
		for (int i = 0; i < MAXCONN; i++)
			if (S.conn[i].fd >= 0) {
				map[np] = i;
				p[np++] = (struct pollfd){ .fd = S.conn[i].fd, .events = POLLIN };
			}
		uint64_t now = srv_now(), due = gate_check(S.g, now);
		int ms = due <= now ? 0 : (int)((due - now + 999) / 1000);
		poll(p, (nfds_t)np, ms > 100 ? 100 : ms);
		if (p[0].revents)
			for (int k = 0; k < 64; k++) {
				static uint8_t buf[65536];
				struct gate_path from = { .transport = GATE_UDP };
				from.addrlen = sizeof from.addr;
				ssize_t n = recvfrom(S.udp, buf, sizeof buf, 0,
				                     (struct sockaddr *)&from.addr, &from.addrlen);
				if (n < 0)
					break;
				gate_input(S.g, &from, buf, (size_t)n, srv_now());
			}
		if (p[1].revents) {
			int fd = accept(S.lst, NULL, NULL);
			for (int i = 0; fd >= 0 && i < MAXCONN; i++)
				if (S.conn[i].fd < 0) {
					S.conn[i].fd = fd;
					S.conn[i].n = 0;
					S.conn[i].shut = 0;
					fd = -1;
				}
			if (fd >= 0)
				close(fd);
		}
		for (int k = 2; k < np; k++)
			if (p[k].revents)
				tcp_read(map[k]);
		if (gate_check(S.g, srv_now()) <= srv_now())
			gate_update(S.g, srv_now());
	}
}

/* ---- the client side ----------------------------------------------------- */

static pid_t srv_pid;
static int udp_port, tcp_port;

struct rec {
	int opened, closed, code, remote;
	char reason[300];
	uint32_t msgs, next, errors, dgrams;
	size_t bytes;
};

/* Poll and take events until done(r) or ms pass. 1 when done. */
static int
pump(mgclient_t *c, struct rec *r, int (*done)(const struct rec *), int ms)
{
	uint64_t end = mgclient_now() + (uint64_t)ms * 1000;
	while (mgclient_now() < end) {
		mgclient_poll(c, mgclient_now());
		struct mgclient_event ev;
		while (mgclient_next_event(c, &ev)) {
			if (ev.type == MGCLIENT_OPEN) {
				r->opened++;
			} else if (ev.type == MGCLIENT_MESSAGE) {
				uint32_t v = ev.len >= 4 ? wire_get32(ev.data) : ~0u;
				if (v != r->next)
					r->errors++;
				for (size_t i = 4; i < ev.len; i++)
					if (ev.data[i] != (uint8_t)(v + i))
						r->errors++;
				r->next = v + 1;
				r->msgs++;
				r->bytes += ev.len;
			} else if (ev.type == MGCLIENT_DATAGRAM) {
				r->dgrams++;
			} else if (ev.type == MGCLIENT_CLOSE) {
				r->closed++;
				r->code = ev.code;
				r->remote = ev.remote;
				snprintf(r->reason, sizeof r->reason, "%s", ev.reason);
			}
		}
		if (done(r))
			return 1;
		struct pollfd p = { .fd = mgclient_fd(c), .events = POLLIN };
		uint64_t now = mgclient_now(), due = mgclient_check(c, now);
		int wait = due <= now ? 0 : (int)((due - now + 999) / 1000);
		poll(&p, p.fd >= 0, wait > 10 ? 10 : wait);
	}
	return done(r);
}

static int is_open(const struct rec *r) { return r->opened || r->closed; }
static int is_closed(const struct rec *r) { return r->closed; }
static uint32_t want_msgs;
static int got_all(const struct rec *r) { return r->msgs >= want_msgs || r->closed; }

static mgclient_t *
connect_to(const char *proto, const char *hello, const struct mgclient_options *o)
{
	char url[64], err[128] = "";
	snprintf(url, sizeof url, "%s://127.0.0.1:%d", proto,
	         proto[0] == 'u' ? udp_port : tcp_port);
	mgclient_t *c = mgclient_connect(url, hello, strlen(hello), o, err, sizeof err);
	if (!c)
		fprintf(stderr, "connect %s: %s\n", url, err);
	return c;
}

static void
send_counter(mgclient_t *c, uint32_t v, size_t len)
{
	static uint8_t m[40000];
	wire_put32(m, v);
	for (size_t i = 4; i < len; i++)
		m[i] = (uint8_t)(v + i);
	CHECK_EQ(mgclient_send(c, m, len), 0);
}

static void
echo(const char *proto)
{
	struct rec r = { 0 };
	mgclient_t *c = connect_to(proto, "echo", NULL);
	REQUIRE(c != NULL);
	CHECK(mgclient_fd(c) >= 0);
	REQUIRE(pump(c, &r, is_open, 3000));
	CHECK_EQ(r.opened, 1);
	CHECK_EQ(mgclient_state(c), MGCLIENT_STATE_OPEN);
	/* many small messages, a few large ones (KCP fragments), datagrams */
	want_msgs = 300;
	for (uint32_t i = 0; i < want_msgs; i++) {
		send_counter(c, i, i % 100 == 99 ? 30000 : 4 + i % 200);
		if (i % 50 == 0)
			mgclient_send_unreliable(c, "ping", 4);
		if (i % 20 == 0)
			pump(c, &r, got_all, 0);
	}
	CHECK(pump(c, &r, got_all, 5000));
	CHECK_EQ(r.msgs, want_msgs);
	CHECK_EQ(r.errors, 0);
	CHECK(r.dgrams > 0);
	struct mgclient_stats st = { .size = sizeof st };
	mgclient_stats(c, &st);
	CHECK_EQ(st.msgs_in, want_msgs);
	mgclient_close(c, MGCLIENT_CLOSE_NORMAL, "bye");
	CHECK(pump(c, &r, is_closed, 3000));
	CHECK_EQ(r.code, MGCLIENT_CLOSE_NORMAL);
	CHECK_EQ(r.remote, 0);
	CHECK_EQ(mgclient_fd(c), -1);
	CHECK_EQ(mgclient_poll(c, mgclient_now()), MGCLIENT_ECLOSED);
	CHECK_EQ(mgclient_send(c, "x", 1), MGCLIENT_ECLOSED);
	mgclient_release(c);
}

TEST(udp_echo) { echo("udp"); }
TEST(tcp_echo) { echo("tcp"); }

/* manual_flush: 20 messages sent in one frame leave in one packet at
 * mgclient_flush (none before it); with the default each send is a packet
 * of its own. Both echo all 20. */
static uint64_t
packets_for_a_frame(int manual)
{
	struct mgclient_options o;
	mgclient_options_default(&o);
	CHECK_EQ(o.manual_flush, 0);
	o.manual_flush = manual;
	struct rec r = { 0 };
	mgclient_t *c = connect_to("udp", "echo", &o);
	CHECK(c != NULL);
	if (!c)
		return 0;
	CHECK(pump(c, &r, is_open, 3000));
	struct mgclient_stats a = { .size = sizeof a }, b = { .size = sizeof b };
	mgclient_stats(c, &a);
	want_msgs = 20;
	for (uint32_t i = 0; i < want_msgs; i++)
		send_counter(c, i, 32);
	mgclient_stats(c, &b);
	if (manual) {
		CHECK_EQ(b.out_packets, a.out_packets); /* nothing left yet */
		CHECK_EQ(mgclient_flush(c), 0);
		mgclient_stats(c, &b);
	}
	uint64_t pkts = b.out_packets - a.out_packets;
	CHECK(pump(c, &r, got_all, 5000));
	CHECK_EQ(r.msgs, want_msgs);
	CHECK_EQ(r.errors, 0);
	mgclient_close(c, MGCLIENT_CLOSE_NORMAL, "bye");
	CHECK(pump(c, &r, is_closed, 3000));
	CHECK_EQ(mgclient_flush(c), MGCLIENT_ECLOSED);
	mgclient_release(c);
	return pkts;
}

TEST(manual_flush_sends_a_frame_in_one_packet)
{
	uint64_t manual = packets_for_a_frame(1), each = packets_for_a_frame(0);
	if (tu_verbose)
		printf("20 messages of a frame: %llu packets with manual_flush, "
		       "%llu without\n", (unsigned long long)manual,
		       (unsigned long long)each);
	CHECK_EQ(manual, 1);
	CHECK_EQ(each, 20);
}

static void
kick(const char *proto)
{
	struct rec r = { 0 };
	mgclient_t *c = connect_to(proto, "echo", NULL);
	REQUIRE(c != NULL);
	REQUIRE(pump(c, &r, is_open, 3000));
	CHECK_EQ(mgclient_send(c, "kick", 4), 0);
	CHECK(pump(c, &r, is_closed, 3000));
	CHECK_EQ(r.code, MGCLIENT_CLOSE_APP + 2);
	CHECK(!strcmp(r.reason, "kicked"));
	CHECK_EQ(r.remote, 1);
	CHECK_EQ(mgclient_fd(c), -1);
	mgclient_release(c);
}

TEST(udp_kick) { kick("udp"); }
TEST(tcp_kick) { kick("tcp"); }

static void
refused(const char *proto)
{
	struct rec r = { 0 };
	mgclient_t *c = connect_to(proto, "refuse", NULL);
	REQUIRE(c != NULL);
	CHECK(pump(c, &r, is_closed, 3000));
	CHECK_EQ(r.opened, 0);
	CHECK_EQ(r.code, MGCLIENT_CLOSE_APP + 1);
	CHECK(!strcmp(r.reason, "go away"));
	mgclient_release(c);
}

TEST(udp_refused) { refused("udp"); }
TEST(tcp_refused) { refused("tcp"); }

TEST(tcp_frame_too_large)
{
	struct mgclient_options o;
	mgclient_options_default(&o);
	o.frame_max = 1000;
	struct rec r = { 0 };
	mgclient_t *c = connect_to("tcp", "echo", &o);
	REQUIRE(c != NULL);
	REQUIRE(pump(c, &r, is_open, 3000));
	CHECK_EQ(mgclient_send(c, "big", 3), 0);
	CHECK(pump(c, &r, is_closed, 3000));
	CHECK_EQ(r.code, MGCLIENT_CLOSE_PROTOCOL);
	CHECK(!strcmp(r.reason, "frame too large"));
	CHECK_EQ(mgclient_fd(c), -1);
	mgclient_release(c);
}

TEST(event_queue_full)
{
	struct mgclient_options o;
	mgclient_options_default(&o);
	o.event_queue_max = 8;
	struct rec r = { 0 };
	mgclient_t *c = connect_to("udp", "echo", &o);
	REQUIRE(c != NULL);
	REQUIRE(pump(c, &r, is_open, 3000));
	for (uint32_t i = 0; i < 50; i++)
		send_counter(c, i, 16);
	/* poll without taking events until the session gives up */
	uint64_t end = mgclient_now() + 3000000;
	while (mgclient_state(c) != MGCLIENT_STATE_CLOSED && mgclient_now() < end) {
		mgclient_poll(c, mgclient_now());
		usleep(1000);
	}
	CHECK(pump(c, &r, is_closed, 3000));
	CHECK_EQ(r.msgs, 8);
	CHECK_EQ(r.code, MGCLIENT_CLOSE_BACKPRESSURE);
	CHECK(!strcmp(r.reason, "event queue full"));
	mgclient_release(c);
}

TEST(tcp_refused_connect)
{
	/* a port nobody listens on: a listener bound, then closed */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	REQUIRE(bind(s, (void *)&a, sizeof a) == 0);
	REQUIRE(getsockname(s, (void *)&a, &l) == 0);
	close(s);
	char url[64], err[128];
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
	mgclient_t *c = mgclient_connect(url, "echo", 4, NULL, err, sizeof err);
	REQUIRE(c != NULL);
	struct rec r = { 0 };
	CHECK(pump(c, &r, is_closed, 3000));
	CHECK_EQ(r.code, MGCLIENT_CLOSE_DISCONNECT);
	CHECK(!strcmp(r.reason, "disconnected: connection refused"));
	mgclient_release(c);
}

TEST(bad_urls)
{
	static const char *bad[] = { "udp:/127.0.0.1:1", "http://127.0.0.1:1",
	                             "udp://127.0.0.1", "tcp://:1", "udp://[::1:1",
	                             "udp://[::1]", "udp://127.0.0.1:" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char err[128] = "";
		mgclient_t *c = mgclient_connect(bad[i], NULL, 0, NULL, err, sizeof err);
		CHECK(c == NULL);
		CHECK(err[0] != 0);
		mgclient_release(c);
	}
	char big[MGCLIENT_HELLO_MAX + 1] = { 0 }, err[128] = "";
	CHECK(mgclient_connect("udp://127.0.0.1:1", big, sizeof big, NULL, err,
	                       sizeof err) == NULL);
}

/* The structs that cross the ABI carry their size: a caller that did not
 * fill it is refused, one built against a newer header works as long as
 * the fields this library does not know are zero. */
TEST(options_and_stats_sizes)
{
	char url[64], err[128] = "";
	snprintf(url, sizeof url, "udp://127.0.0.1:%d", udp_port);
	struct mgclient_options o;
	mgclient_options_default(&o);
	CHECK_EQ(o.size, sizeof o);
	o.size = 0;
	CHECK(mgclient_connect(url, "echo", 4, &o, err, sizeof err) == NULL);
	CHECK(strstr(err, "size") != NULL);
	struct { struct mgclient_options o; uint64_t more; } newer;
	memset(&newer, 0, sizeof newer);
	mgclient_options_default(&newer.o);
	newer.o.size = sizeof newer;
	newer.more = 1;
	err[0] = 0;
	CHECK(mgclient_connect(url, "echo", 4, &newer.o, err, sizeof err) == NULL);
	CHECK(err[0] != 0);
	newer.more = 0;
	mgclient_t *c = mgclient_connect(url, "echo", 4, &newer.o, err, sizeof err);
	REQUIRE(c != NULL);
	struct rec r = { 0 };
	REQUIRE(pump(c, &r, is_open, 3000));
	struct mgclient_stats st = { .size = 4 };
	CHECK_EQ(mgclient_stats(c, &st), MGCLIENT_EINVAL);
	CHECK_EQ(st.size, 4);
	struct { struct mgclient_stats st; uint64_t more; } big;
	memset(&big, 0xff, sizeof big);
	big.st.size = sizeof big;
	CHECK_EQ(mgclient_stats(c, &big.st), 0);
	CHECK_EQ(big.st.size, sizeof big.st);
	CHECK_EQ(big.more, ~(uint64_t)0); /* not written */
	CHECK(big.st.out_packets > 0);
	CHECK_EQ(big.st.encrypted, 1);
	mgclient_release(c);
}


/* The child's static key (its secret is 32 x 0x07), as `moongate key`
 * prints it. */
static void
server_key_hex(char hex[65])
{
	uint8_t secret[WIRE_SECRET], pub[WIRE_PUB], sec[WIRE_SEC];
	memset(secret, 0x07, sizeof secret);
	wire_static_keypair(pub, sec, secret);
	for (int i = 0; i < WIRE_PUB; i++)
		snprintf(hex + 2 * i, 3, "%02x", pub[i]);
}

static int warnings;
static char last_warning[256];

static void
on_log(const char *line, void *user)
{
	(void)user;
	warnings++;
	snprintf(last_warning, sizeof last_warning, "%s", line);
}

/* Pinned by url or by option: the session opens, no warning. Unpinned: one
 * warning through the log callback. Pinned to another key: "server key
 * mismatch". Bad or conflicting keys fail the connect. */
TEST(server_key)
{
	char hex[65], url[200], err[160] = "";
	server_key_hex(hex);
	struct mgclient_options o;
	mgclient_options_default(&o);
	o.log = on_log;
	for (int t = 0; t < 2; t++) {
		warnings = 0;
		if (t == 0) { /* the url */
			snprintf(url, sizeof url, "udp://127.0.0.1:%d?key=%s", udp_port,
			         hex);
			o.server_key = NULL;
		} else {      /* the option */
			snprintf(url, sizeof url, "tcp://127.0.0.1:%d", tcp_port);
			o.server_key = hex;
		}
		mgclient_t *c = mgclient_connect(url, "echo", 4, &o, err, sizeof err);
		REQUIRE(c != NULL);
		struct rec r = { 0 };
		REQUIRE(pump(c, &r, is_open, 3000));
		CHECK_EQ(r.opened, 1);
		CHECK_EQ(warnings, 0);
		want_msgs = 1;
		send_counter(c, 0, 10);
		CHECK(pump(c, &r, got_all, 3000));
		CHECK_EQ(r.errors, 0);
		mgclient_release(c);
	}
	/* unpinned: a warning */
	o.server_key = NULL;
	warnings = 0;
	mgclient_t *c = connect_to("udp", "echo", &o);
	REQUIRE(c != NULL);
	CHECK_EQ(warnings, 1);
	CHECK(strstr(last_warning, "no server key") != NULL);
	mgclient_release(c);
	/* another server's key: refused, with why */
	char other[65];
	memcpy(other, hex, sizeof other);
	other[0] = other[0] == 'a' ? 'b' : 'a';
	o.server_key = other;
	struct rec r = { 0 };
	c = connect_to("udp", "echo", &o);
	REQUIRE(c != NULL);
	REQUIRE(pump(c, &r, is_closed, 3000));
	CHECK_EQ(r.opened, 0);
	CHECK_EQ(r.code, MGCLIENT_CLOSE_REFUSED);
	CHECK(strstr(r.reason, "server key mismatch") != NULL);
	mgclient_release(c);
	/* the url and the option disagree; a short key; not hex; a query */
	snprintf(url, sizeof url, "udp://127.0.0.1:%d?key=%s", udp_port, hex);
	CHECK(mgclient_connect(url, "", 0, &o, err, sizeof err) == NULL);
	CHECK(strstr(err, "differ") != NULL);
	o.server_key = "abcd";
	CHECK(mgclient_connect("udp://127.0.0.1:1", "", 0, &o, err, sizeof err) == NULL);
	CHECK(strstr(err, "64 hex digits") != NULL);
	o.server_key = NULL;
	snprintf(url, sizeof url, "udp://127.0.0.1:1?key=%.63sg", hex);
	CHECK(mgclient_connect(url, "", 0, &o, err, sizeof err) == NULL);
	CHECK(strstr(err, "hex digit") != NULL);
	CHECK(mgclient_connect("udp://127.0.0.1:1?fec=1", "", 0, &o, err,
	                       sizeof err) == NULL);
	CHECK(strstr(err, "unknown query") != NULL);
	/* a caller built against version 1 of the options (size 112) */
	mgclient_options_default(&o);
	o.size = 112;
	o.server_key = hex; /* beyond its size: not read */
	snprintf(url, sizeof url, "udp://127.0.0.1:%d", udp_port);
	c = mgclient_connect(url, "echo", 4, &o, err, sizeof err);
	REQUIRE(c != NULL);
	memset(&r, 0, sizeof r);
	REQUIRE(pump(c, &r, is_open, 3000));
	mgclient_release(c);
}

static const struct tu_test tests[] = {
	TU(udp_echo), TU(tcp_echo),
	TU(manual_flush_sends_a_frame_in_one_packet), TU(udp_kick), TU(tcp_kick), TU(udp_refused),
	TU(tcp_refused), TU(tcp_frame_too_large), TU(event_queue_full),
	TU(tcp_refused_connect), TU(bad_urls), TU(options_and_stats_sizes),
	TU(server_key),
};

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	int p[2];
	if (pipe(p) < 0)
		return 1;
	fflush(NULL);
	srv_pid = fork();
	if (srv_pid == 0) {
		close(p[0]);
		server(p[1]);
	}
	close(p[1]);
	uint16_t ports[2];
	struct pollfd pp = { .fd = p[0], .events = POLLIN };
	if (srv_pid < 0 || poll(&pp, 1, 5000) != 1 ||
	    read(p[0], ports, sizeof ports) != sizeof ports) {
		fprintf(stderr, "test_client: the server did not start\n");
		return 1;
	}
	udp_port = ports[0];
	tcp_port = ports[1];
	int rc = tu_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
	kill(srv_pid, SIGKILL);
	waitpid(srv_pid, NULL, 0);
	return rc;
}
