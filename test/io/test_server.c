/*
 * test_server.c - the real moongate process on loopback, driven by the
 * client library (include/moongate/client.h) and by raw sockets.
 *
 *   test_server PATH/TO/moongate [test-name-filter]
 *
 * Each test starts its own server with ports chosen by the server (port
 * 0, announced on stdout), waits for its "ready" line with a deadline,
 * and stops it with SIGTERM (then SIGKILL after a deadline). Every wait
 * is a loop over poll() with a deadline; nothing sleeps to synchronise.
 * What the server counted is read from its last log line ("stopped: ...").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <moongate/client.h>

/* raw_kcp_listener_echo and the hello tests speak KCP and the wire format
 * themselves, below the client library */
#include "kcp.h"
#include "testutil.h"
#include "wire.h"

static const char *server_bin;

struct server {
	pid_t pid;
	int udp, tcp, raw;     /* ports */
	char errlog[64];       /* its stderr */
	char stopped[2048];    /* its "stopped:" line */
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
server_start(struct server *sv, const char *const *extra)
{
	memset(sv, 0, sizeof *sv);
	snprintf(sv->errlog, sizeof sv->errlog, "/tmp/moongate-test-XXXXXX");
	int efd = mkstemp(sv->errlog);
	int out[2];
	if (efd < 0 || pipe(out))
		return -1;
	const char *argv[32];
	int n = 0;
	argv[n++] = server_bin;
	argv[n++] = "--listen";
	argv[n++] = "udp://127.0.0.1:0";
	argv[n++] = "--listen";
	argv[n++] = "tcp://127.0.0.1:0";
	argv[n++] = "--listen";
	argv[n++] = "raw://127.0.0.1:0";
	for (int i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	sv->pid = fork();
	if (sv->pid == 0) {
		dup2(out[1], 1);
		dup2(efd, 2);
		close(out[0]);
		execv(server_bin, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(efd);
	/* Read the announced ports until "ready", 10 s at most. */
	char buf[4096];
	size_t len = 0;
	uint64_t deadline = mono_ms() + 10000;
	int ready = 0;
	while (!ready && mono_ms() < deadline && len < sizeof buf - 1) {
		struct pollfd p = { out[0], POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = read(out[0], buf + len, sizeof buf - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = 0;
		ready = strstr(buf, "moongate: ready") != NULL;
	}
	close(out[0]);
	if (!ready)
		return -1;
	char *l;
	if ((l = strstr(buf, "listening udp 127.0.0.1 ")))
		sv->udp = atoi(l + 24);
	if ((l = strstr(buf, "listening tcp 127.0.0.1 ")))
		sv->tcp = atoi(l + 24);
	if ((l = strstr(buf, "listening raw 127.0.0.1 ")))
		sv->raw = atoi(l + 24);
	return sv->udp && sv->tcp && sv->raw ? 0 : -1;
}

static int
log_has(const struct server *sv, const char *text)
{
	FILE *f = fopen(sv->errlog, "r");
	char line[2048];
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f))
		found = strstr(line, text) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* SIGTERM, wait up to 10 s, then SIGKILL. Reads the stopped line. */
static int
server_stop(struct server *sv)
{
	int status = -1;
	kill(sv->pid, SIGTERM);
	uint64_t deadline = mono_ms() + 10000;
	while (waitpid(sv->pid, &status, WNOHANG) == 0) {
		if (mono_ms() > deadline) {
			kill(sv->pid, SIGKILL);
			waitpid(sv->pid, &status, 0);
			break;
		}
		poll(NULL, 0, 10); /* waiting for exit: bounded polling */
	}
	FILE *f = fopen(sv->errlog, "r");
	char line[2048];
	while (f && fgets(line, sizeof line, f))
		if (strstr(line, "stopped:"))
			snprintf(sv->stopped, sizeof sv->stopped, "%s", line);
	if (f)
		fclose(f);
	/* No clean stop, or a sanitizer spoke: show what the server said (the
	 * sanitizer build's make target fails on such a report in ctest's log). */
	if (!sv->stopped[0] || log_has(sv, "runtime error:") ||
	    log_has(sv, "Sanitizer")) {
		fprintf(stderr, "server exit status %d; its log:\n", status);
		f = fopen(sv->errlog, "r");
		while (f && fgets(line, sizeof line, f))
			fputs(line, stderr);
		if (f)
			fclose(f);
	}
	return status;
}

/* A number from the stopped line: the value before " name". */
static long long
stopped_count(const struct server *sv, const char *name)
{
	const char *p = strstr(sv->stopped, name);
	if (!p)
		return -1;
	while (p > sv->stopped && p[-1] == ' ')
		p--;
	while (p > sv->stopped && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return atoll(p);
}

/* ---- clients ---------------------------------------------------------- */

struct cl {
	mgclient_t *c;
	int opened, closed, code;
	char reason[300];
	uint32_t got, errors, next, sent;
	uint32_t dgrams, dgram_back, dgram_last;
	int silent; /* not polled */
	int moves;  /* MGCLIENT_MOVED events */
};

static void
take_events(struct cl *x)
{
	struct mgclient_event ev;
	while (mgclient_next_event(x->c, &ev)) {
		switch (ev.type) {
		case MGCLIENT_OPEN:
			x->opened = 1;
			break;
		case MGCLIENT_MESSAGE: {
			uint32_t v = 0;
			if (ev.len >= 4)
				memcpy(&v, ev.data, 4);
			int bad = ev.len < 4 || v != x->next;
			for (size_t i = 4; i < ev.len && !bad; i++)
				bad = ev.data[i] != (uint8_t)(v * 7 + i);
			x->errors += (uint32_t)bad;
			x->next = v + 1;
			x->got++;
			break;
		}
		case MGCLIENT_DATAGRAM:
			if (x->dgrams && ev.seq <= x->dgram_last)
				x->dgram_back++;
			x->dgram_last = ev.seq;
			x->dgrams++;
			break;
		case MGCLIENT_MOVED:
			x->moves++;
			break;
		case MGCLIENT_CLOSE:
			x->closed = 1;
			x->code = ev.code;
			snprintf(x->reason, sizeof x->reason, "%s", ev.reason);
			break;
		}
	}
}

/* Poll every non-silent client for up to 10 ms. */
static void
pump(struct cl *cs, int n)
{
	struct pollfd p[64];
	int np = 0;
	uint64_t now = mgclient_now(), due = now + 10000;
	for (int i = 0; i < n && np < 64; i++) {
		if (cs[i].silent || cs[i].closed)
			continue;
		p[np].fd = mgclient_fd(cs[i].c);
		p[np].events = POLLIN;
		np++;
		uint64_t d = mgclient_check(cs[i].c, now);
		if (d < due)
			due = d;
	}
	int ms = due > now ? (int)((due - now + 999) / 1000) : 0;
	poll(p, (nfds_t)np, ms > 10 ? 10 : ms);
	for (int i = 0; i < n; i++) {
		if (cs[i].silent || cs[i].closed)
			continue;
		mgclient_poll(cs[i].c, mgclient_now());
		take_events(&cs[i]);
	}
}

#define PUMP_UNTIL(cs, n, cond, ms) ({ \
	uint64_t pu_end_ = mono_ms() + (ms); \
	while (!(cond) && mono_ms() < pu_end_) \
		pump(cs, n); \
	(cond); })

static int
connect_cl(struct cl *x, const char *scheme, int port)
{
	char url[64], err[128];
	memset(x, 0, sizeof *x);
	snprintf(url, sizeof url, "%s://127.0.0.1:%d", scheme, port);
	x->c = mgclient_connect(url, "test", 4, NULL, err, sizeof err);
	if (!x->c)
		fprintf(stderr, "connect %s: %s\n", url, err);
	return x->c ? 0 : -1;
}

static void
send_next(struct cl *x, size_t len)
{
	static uint8_t m[4096];
	uint32_t v = x->sent++;
	memcpy(m, &v, 4);
	for (size_t i = 4; i < len; i++)
		m[i] = (uint8_t)(v * 7 + i);
	CHECK_EQ(mgclient_send(x->c, m, len), 0);
}

/* ---- tests ------------------------------------------------------------ */

static void
echo_over(const char *scheme)
{
	struct server sv;
	REQUIRE(server_start(&sv, NULL) == 0);
	enum { N = 4, MSGS = 2000 };
	struct cl cs[N];
	for (int i = 0; i < N; i++)
		REQUIRE(connect_cl(&cs[i], scheme, !strcmp(scheme, "udp") ? sv.udp : sv.tcp) == 0);
	int all_open = 0;
	CHECK(PUMP_UNTIL(cs, N, (all_open = cs[0].opened && cs[1].opened &&
	                         cs[2].opened && cs[3].opened), 5000));
	uint32_t sent[N] = { 0 };
	uint64_t end = mono_ms() + 30000;
	int done = 0;
	while (!done && mono_ms() < end) {
		done = 1;
		for (int i = 0; i < N; i++) {
			while (sent[i] < MSGS && sent[i] - cs[i].got < 64) {
				send_next(&cs[i], 4 + (sent[i] * 131) % 3000);
				sent[i]++;
			}
			done &= cs[i].got == MSGS;
		}
		pump(cs, N);
	}
	for (int i = 0; i < N; i++) {
		CHECK_EQ(cs[i].got, MSGS);
		CHECK_EQ(cs[i].errors, 0);
		CHECK_EQ(cs[i].closed, 0);
	}
	/* unreliable: echoed newest-wins */
	uint8_t d[100] = { 1 };
	for (int k = 0; k < 200; k++) {
		CHECK_EQ(mgclient_send_unreliable(cs[0].c, d, sizeof d), 0);
		pump(cs, N);
	}
	PUMP_UNTIL(cs, N, cs[0].dgrams >= 190, 2000);
	CHECK(cs[0].dgrams >= 100); /* loopback loses almost nothing */
	CHECK_EQ(cs[0].dgram_back, 0);
	struct mgclient_stats st = { .size = sizeof st };
	mgclient_stats(cs[0].c, &st);
	CHECK(st.pongs > 0 || st.srtt_ms >= 0);
	/* a server shutdown reaches every client with its reason (the clients
	 * run meanwhile, as a game's do: their acks and CLOSE_ACKs let the
	 * server end before its shutdown_ms) */
	kill(sv.pid, SIGTERM);
	CHECK(PUMP_UNTIL(cs, N, cs[0].closed && cs[1].closed && cs[2].closed &&
	                 cs[3].closed, 5000));
	server_stop(&sv);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(cs[i].code, MGCLIENT_CLOSE_SHUTDOWN);
		CHECK(strcmp(cs[i].reason, "server shutdown") == 0);
		mgclient_release(cs[i].c);
	}
	CHECK_EQ(stopped_count(&sv, "sessions created"), N);
	unlink(sv.errlog);
}

/* Echo n counters on one client, at most 32 unanswered. */
static void
echo_n(struct cl *x, uint32_t n)
{
	uint64_t end = mono_ms() + 20000;
	while (x->got < n && !x->closed && mono_ms() < end) {
		while (x->sent < n && x->sent - x->got < 32)
			send_next(x, 100);
		pump(x, 1);
	}
	CHECK_EQ(x->got, n);
	CHECK_EQ(x->errors, 0);
}

/* A UDP port nothing listens on (the kernel answers ICMP unreachable). */
static int
dead_udp_port(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
	    getsockname(fd, (struct sockaddr *)&a, &l))
		return -1;
	close(fd);
	return ntohs(a.sin_port);
}

/* auto transport, UDP blocked: the handshake moves to TCP after
 * fallback_ms and the session works there. */
TEST(auto_falls_back_to_tcp)
{
	struct server sv;
	REQUIRE(server_start(&sv, NULL) == 0);
	int dead = dead_udp_port();
	REQUIRE(dead > 0);
	char url[128], err[128];
	snprintf(url, sizeof url, "udp://127.0.0.1:%d,tcp://127.0.0.1:%d", dead,
	         sv.tcp);
	struct mgclient_options o;
	mgclient_options_default(&o);
	o.fallback_ms = 300;
	struct cl x;
	memset(&x, 0, sizeof x);
	x.c = mgclient_connect(url, "auto", 4, &o, err, sizeof err);
	REQUIRE(x.c != NULL);
	CHECK_EQ(mgclient_transport(x.c), MGCLIENT_UDP);
	CHECK(PUMP_UNTIL(&x, 1, x.opened || x.closed, 5000));
	CHECK(x.opened);
	CHECK_EQ(mgclient_transport(x.c), MGCLIENT_TCP);
	echo_n(&x, 200);
	mgclient_close(x.c, 0, "bye");
	PUMP_UNTIL(&x, 1, x.closed, 5000);
	mgclient_release(x.c);
	server_stop(&sv);
	unlink(sv.errlog);
}

/* A new local socket (a new network): the server follows after proving
 * the new address, and nothing is lost. */
TEST(rebind_moves_the_session)
{
	struct server sv;
	REQUIRE(server_start(&sv, NULL) == 0);
	struct cl x;
	REQUIRE(connect_cl(&x, "udp", sv.udp) == 0);
	CHECK(PUMP_UNTIL(&x, 1, x.opened, 5000));
	echo_n(&x, 100);
	REQUIRE_EQ(mgclient_rebind(x.c), 0);
	echo_n(&x, 300);
	struct mgclient_stats st = { .size = sizeof st };
	mgclient_stats(x.c, &st);
	CHECK_EQ(x.closed, 0);
	server_stop(&sv);
	CHECK(log_has(&sv, "moved to udp"));
	mgclient_release(x.c);
	unlink(sv.errlog);
}

/* The server moves the client (session:move, to itself here): what the
 * game sends between MOVED and the new session's OPEN is held by the
 * library and echoed from the new session, in order, none lost; a
 * datagram meanwhile is refused as while offline. */
static void
move_holds(const char *scheme)
{
	char dir[] = "/tmp/moongate-move-XXXXXX", path[128], cfg[128];
	REQUIRE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/mover.lua", dir);
	FILE *f = fopen(path, "w");
	REQUIRE(f != NULL);
	fputs("local svc = {}\n"
	      "function svc.message(session, data)\n"
	      "\tif data == \"move\" then assert(session:move{ hello = \"again\" }) return true end\n"
	      "\tsession:send(data)\n"
	      "\treturn true\n"
	      "end\n"
	      "return svc\n", f);
	fclose(f);
	snprintf(cfg, sizeof cfg, "%s/config.lua", dir);
	f = fopen(cfg, "w");
	REQUIRE(f != NULL);
	fprintf(f, "return { services = { \"mover\" }, service_path = { \"%s\" },\n"
	           "\tsecrets = \"%s/secret\", gate = { allow_unpinned = 1 } }\n", dir, dir);
	fclose(f);
	const char *extra[] = { cfg, NULL };
	struct server sv;
	REQUIRE(server_start(&sv, extra) == 0);
	struct cl x;
	REQUIRE(connect_cl(&x, scheme, !strcmp(scheme, "udp") ? sv.udp : sv.tcp) == 0);
	CHECK(PUMP_UNTIL(&x, 1, x.opened, 5000));
	echo_n(&x, 50);
	CHECK_EQ(mgclient_send(x.c, "move", 4), 0);
	CHECK(PUMP_UNTIL(&x, 1, x.moves == 1 || x.closed, 5000));
	/* the poll that handed out MOVED started the new handshake */
	CHECK_EQ(mgclient_state(x.c), MGCLIENT_STATE_HANDSHAKE);
	for (int i = 0; i < 20; i++)
		send_next(&x, 100 + (size_t)i * 50); /* (CHECKs 0: held) */
	uint8_t d[8] = { 0 };
	CHECK_EQ(mgclient_send_unreliable(x.c, d, sizeof d), MGCLIENT_EOFFLINE);
	CHECK(PUMP_UNTIL(&x, 1, x.got == 70 || x.closed, 5000));
	CHECK_EQ(x.got, 70);
	echo_n(&x, 120);
	CHECK_EQ(x.errors, 0); /* in order, none twice, none lost */
	CHECK_EQ(x.closed, 0);
	CHECK_EQ(x.moves, 1);
	mgclient_close(x.c, 0, "bye");
	PUMP_UNTIL(&x, 1, x.closed, 5000);
	mgclient_release(x.c);
	server_stop(&sv);
	CHECK_EQ(stopped_count(&sv, "sessions created"), 2);
	unlink(sv.errlog);
	unlink(path);
	unlink(cfg);
	snprintf(path, sizeof path, "%s/secret", dir);
	unlink(path);
	rmdir(dir);
}

TEST(move_holds_sends_udp) { move_holds("udp"); }
TEST(move_holds_sends_tcp) { move_holds("tcp"); }

TEST(echo_udp) { echo_over("udp"); }
TEST(echo_tcp) { echo_over("tcp"); }

/* Encryption is a listener's choice: a second TCP listener with
 * ?encrypt=0 authenticates only; both echo. */
TEST(encryption_per_listener)
{
	struct server sv;
	const char *extra[] = { "--listen", "tcp://127.0.0.1:0?encrypt=0", NULL };
	REQUIRE(server_start(&sv, extra) == 0);
	int plain = 0;
	FILE *f = fopen(sv.errlog, "r");
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		const char *p = strstr(line, "listening tcp 127.0.0.1:");
		if (p && atoi(p + 24) != sv.tcp)
			plain = atoi(p + 24);
	}
	if (f)
		fclose(f);
	REQUIRE(plain > 0);
	struct cl cs[2];
	REQUIRE(connect_cl(&cs[0], "tcp", sv.tcp) == 0);
	REQUIRE(connect_cl(&cs[1], "tcp", plain) == 0);
	CHECK(PUMP_UNTIL(cs, 2, cs[0].opened && cs[1].opened, 5000));
	for (int i = 0; i < 2; i++)
		send_next(&cs[i], 100);
	CHECK(PUMP_UNTIL(cs, 2, cs[0].got == 1 && cs[1].got == 1, 5000));
	struct mgclient_stats st = { .size = sizeof st };
	mgclient_stats(cs[0].c, &st);
	CHECK_EQ(st.encrypted, 1);
	mgclient_stats(cs[1].c, &st);
	CHECK_EQ(st.encrypted, 0);
	CHECK_EQ(cs[0].errors + cs[1].errors, 0);
	server_stop(&sv);
	for (int i = 0; i < 2; i++)
		mgclient_release(cs[i].c);
	unlink(sv.errlog);
}

/* IPv6 loopback: the same echo over [::1], UDP and TCP. Skipped (and
 * said so) when this machine has no ::1. */
TEST(echo_ipv6)
{
	int probe = socket(AF_INET6, SOCK_DGRAM, 0);
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int have = probe >= 0 && bind(probe, (struct sockaddr *)&a6, sizeof a6) == 0;
	if (probe >= 0)
		close(probe);
	if (!have) {
		printf("echo_ipv6: skipped, no ::1 on this machine\n");
		return;
	}
	struct server sv;
	const char *extra[] = { "--listen", "udp://[::1]:0", "--listen", "tcp://[::1]:0", NULL };
	REQUIRE(server_start(&sv, extra) == 0);
	int udp6 = 0, tcp6 = 0;
	FILE *f = fopen(sv.errlog, "r");
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		const char *p;
		if ((p = strstr(line, "listening udp ::1:")))
			udp6 = atoi(p + 18);
		if ((p = strstr(line, "listening tcp ::1:")))
			tcp6 = atoi(p + 18);
	}
	if (f)
		fclose(f);
	REQUIRE(udp6 > 0 && tcp6 > 0);
	struct cl cs[2];
	char url[64], err[128];
	memset(cs, 0, sizeof cs);
	snprintf(url, sizeof url, "udp://[::1]:%d", udp6);
	cs[0].c = mgclient_connect(url, "v6", 2, NULL, err, sizeof err);
	snprintf(url, sizeof url, "tcp://[::1]:%d", tcp6);
	cs[1].c = mgclient_connect(url, "v6", 2, NULL, err, sizeof err);
	REQUIRE(cs[0].c && cs[1].c);
	CHECK(PUMP_UNTIL(cs, 2, cs[0].opened && cs[1].opened, 5000));
	for (int k = 0; k < 50; k++)
		for (int i = 0; i < 2; i++)
			send_next(&cs[i], 10 + k * 20);
	CHECK(PUMP_UNTIL(cs, 2, cs[0].got == 50 && cs[1].got == 50, 5000));
	CHECK_EQ(cs[0].errors + cs[1].errors, 0);
	server_stop(&sv);
	for (int i = 0; i < 2; i++)
		mgclient_release(cs[i].c);
	unlink(sv.errlog);
}

TEST(silent_client_times_out)
{
	struct server sv;
	/* resume off: a silent client is closed, not waited for */
	const char *extra[] = { "--set", "session.timeout_ms=1000", "--set",
	                        "session.resume_grace_ms=0", NULL };
	REQUIRE(server_start(&sv, extra) == 0);
	struct cl cs[2];
	REQUIRE(connect_cl(&cs[0], "udp", sv.udp) == 0);
	REQUIRE(connect_cl(&cs[1], "tcp", sv.tcp) == 0);
	CHECK(PUMP_UNTIL(cs, 2, cs[0].opened && cs[1].opened, 5000));
	cs[0].silent = cs[1].silent = 1;
	/* Nobody polls: the clients send nothing, for 2 s of wall time. */
	uint64_t end = mono_ms() + 2000;
	while (mono_ms() < end)
		poll(NULL, 0, 50);
	cs[0].silent = cs[1].silent = 0;
	CHECK(PUMP_UNTIL(cs, 2, cs[0].closed && cs[1].closed, 5000));
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(cs[i].code, MGCLIENT_CLOSE_TIMEOUT);
		CHECK(strcmp(cs[i].reason, "timeout") == 0);
		mgclient_release(cs[i].c);
	}
	server_stop(&sv);
	CHECK(log_has(&sv, "\"timeout\""));
	unlink(sv.errlog);
}

static int
udp_socket(const char *bind_ip)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, bind_ip, &a.sin_addr);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 1: the server closed the connection (EOF or reset) within ms. */
static int
tcp_closed_by_peer(int fd, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;
	char b[256];
	while (mono_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t r = recv(fd, b, sizeof b, 0);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return 1;
	}
	return 0;
}

/* A TCP connection that opens no session is closed after
 * net.hello_timeout_ms; a session's connection is not. */
TEST(tcp_handshake_deadline)
{
	struct server sv;
	const char *extra[] = { "--set", "net.hello_timeout_ms=300", NULL };
	REQUIRE(server_start(&sv, extra) == 0);
	struct cl cs[1];
	REQUIRE(connect_cl(&cs[0], "tcp", sv.tcp) == 0);
	CHECK(PUMP_UNTIL(cs, 1, cs[0].opened, 5000));
	int fd = tcp_connect(sv.tcp); /* says nothing */
	REQUIRE(fd >= 0);
	CHECK(tcp_closed_by_peer(fd, 5000));
	close(fd);
	PUMP_UNTIL(cs, 1, cs[0].closed, 600); /* past the deadline */
	send_next(&cs[0], 64);
	CHECK(PUMP_UNTIL(cs, 1, cs[0].got == 1, 5000));
	CHECK_EQ(cs[0].closed, 0);
	server_stop(&sv);
	mgclient_release(cs[0].c);
	CHECK(log_has(&sv, "handshake timeout"));
	unlink(sv.errlog);
}

TEST(bad_input_refused_others_unharmed)
{
	struct server sv;
	REQUIRE(server_start(&sv, NULL) == 0);
	struct cl cs[1];
	REQUIRE(connect_cl(&cs[0], "udp", sv.udp) == 0);
	CHECK(PUMP_UNTIL(cs, 1, cs[0].opened, 5000));
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)sv.udp) };
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int g = udp_socket("127.0.0.1");
	REQUIRE(g >= 0);
	uint8_t pkt[3000];
	uint64_t x = 99;
	int garbage = 0;
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)(i % 1400);
		for (size_t j = 0; j < n; j++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			pkt[j] = (uint8_t)(x >> 56);
		}
		if (n && i % 2 == 0)
			pkt[0] = (uint8_t)(0x10 + i % 6); /* looks like a session packet */
		sendto(g, pkt, n, 0, (struct sockaddr *)&to, sizeof to);
		garbage++;
		if (i % 50 == 0) { /* the real client keeps talking meanwhile */
			send_next(&cs[0], 10);
			pump(cs, 1);
		}
	}
	/* TCP: an oversize frame, an empty frame, a truncated frame */
	int t1 = tcp_connect(sv.tcp), t2 = tcp_connect(sv.tcp), t3 = tcp_connect(sv.tcp);
	REQUIRE(t1 >= 0 && t2 >= 0 && t3 >= 0);
	uint8_t big[4] = { 0x60, 0xea, 1, 1 }; /* 60000 > frame_max */
	CHECK(send(t1, big, 4, MSG_NOSIGNAL) == 4);
	uint8_t empty[2] = { 0, 0 };
	CHECK(send(t2, empty, 2, MSG_NOSIGNAL) == 2);
	uint8_t trunc[10] = { 100, 0, 1, 2, 3 }; /* says 100, sends 8, leaves */
	CHECK(send(t3, trunc, 10, MSG_NOSIGNAL) == 10);
	close(t3);
	CHECK(tcp_closed_by_peer(t1, 3000));
	CHECK(tcp_closed_by_peer(t2, 3000));
	close(t1);
	close(t2);
	/* the real session still echoes, in order */
	uint32_t base = cs[0].got;
	for (uint32_t v = 0; v < 100; v++)
		send_next(&cs[0], 200);
	CHECK(PUMP_UNTIL(cs, 1, cs[0].got == cs[0].sent || cs[0].closed, 5000));
	CHECK_EQ(cs[0].got, cs[0].sent);
	CHECK(cs[0].got >= base + 100);
	CHECK_EQ(cs[0].errors, 0);
	CHECK_EQ(cs[0].closed, 0);
	mgclient_release(cs[0].c);
	close(g);
	server_stop(&sv);
	CHECK(log_has(&sv, "frame too large"));
	CHECK(log_has(&sv, "empty frame"));
	CHECK(stopped_count(&sv, "bad packets") + stopped_count(&sv, "unknown session") +
	      stopped_count(&sv, "challenges") > 1000);
	CHECK_EQ(stopped_count(&sv, "tcp bad frames"), 2);
	CHECK_EQ(stopped_count(&sv, "sessions created"), 1);
	if (tu_verbose)
		printf("%s", sv.stopped);
	unlink(sv.errlog);
}

TEST(spoofed_hellos_allocate_nothing)
{
	struct server sv;
	REQUIRE(server_start(&sv, NULL) == 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)sv.udp) };
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* 100 source addresses in 127/8 that never complete a handshake */
	int fds[100];
	for (int i = 0; i < 100; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "127.0.%d.%d", 1 + i / 200, 2 + i % 200);
		fds[i] = udp_socket(ip);
		REQUIRE(fds[i] >= 0);
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
	}
	struct wire_hello h;
	memset(&h, 0, sizeof h);
	h.type = WIRE_HELLO;
	h.version = WIRE_V1;
	uint8_t pkt[128], reply[2048];
	long replies = 0, larger = 0;
	for (int i = 0; i < 10000; i++) {
		h.pub[0] = (uint8_t)i;
		h.pub[1] = (uint8_t)(i >> 8);
		int n = wire_hello_encode(pkt, sizeof pkt, &h);
		sendto(fds[i % 100], pkt, (size_t)n, 0, (struct sockaddr *)&to, sizeof to);
		if (i % 100 == 99) { /* read what came back so far */
			for (int k = 0; k < 100; k++) {
				ssize_t r;
				while ((r = recv(fds[k], reply, sizeof reply, 0)) > 0) {
					replies++;
					larger += r > n;
				}
			}
		}
	}
	uint64_t end = mono_ms() + 500;
	while (mono_ms() < end) { /* late replies, bounded */
		poll(NULL, 0, 20);
		for (int k = 0; k < 100; k++) {
			ssize_t r;
			while ((r = recv(fds[k], reply, sizeof reply, 0)) > 0) {
				replies++;
				larger += r > WIRE_HELLO_SIZE;
			}
		}
	}
	for (int i = 0; i < 100; i++)
		close(fds[i]);
	server_stop(&sv);
	CHECK_EQ(stopped_count(&sv, "sessions created"), 0);
	CHECK(stopped_count(&sv, "challenges") > 1000);
	CHECK(replies > 1000);
	CHECK_EQ(larger, 0);
	if (tu_verbose)
		printf("replies %ld; %s", replies, sv.stopped);
	unlink(sv.errlog);
}

TEST(server_full_refuses_with_reason)
{
	struct server sv;
	const char *extra[] = { "--set", "gate.max_sessions=1", NULL };
	REQUIRE(server_start(&sv, extra) == 0);
	struct cl cs[2];
	REQUIRE(connect_cl(&cs[0], "udp", sv.udp) == 0);
	CHECK(PUMP_UNTIL(cs, 1, cs[0].opened, 5000));
	REQUIRE(connect_cl(&cs[1], "tcp", sv.tcp) == 0);
	CHECK(PUMP_UNTIL(cs, 2, cs[1].closed, 5000));
	CHECK_EQ(cs[1].opened, 0);
	CHECK_EQ(cs[1].code, MGCLIENT_CLOSE_REFUSED);
	CHECK(strcmp(cs[1].reason, "server full") == 0);
	mgclient_release(cs[0].c);
	mgclient_release(cs[1].c);
	server_stop(&sv);
	unlink(sv.errlog);
}

/* A plain KCP client (what classic libraries speak) on the raw listener. */
static int raw_fd;
static int
raw_out(const char *buf, int len, kcp_t *k, void *user)
{
	(void)k; (void)user;
	send(raw_fd, buf, (size_t)len, 0);
	return 0;
}

TEST(raw_kcp_listener_echo)
{
	struct server sv;
	REQUIRE(server_start(&sv, NULL) == 0);
	raw_fd = udp_socket("127.0.0.1");
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)sv.raw) };
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(connect(raw_fd, (struct sockaddr *)&to, sizeof to) == 0);
	kcp_t *k = kcp_create(0x5eed, NULL);
	kcp_setoutput(k, raw_out);
	kcp_nodelay(k, 1, 10, 2, 1);
	kcp_wndsize(k, 128, 128);
	kcp_setmtu(k, 1200);
	char m[1500];
	for (int i = 0; i < 200; i++) {
		int n = snprintf(m, sizeof m, "raw message %d ", i);
		memset(m + n, 'a' + i % 26, (size_t)(i * 7 % 1400));
		kcp_send(k, m, n + i * 7 % 1400);
	}
	int got = 0, bad = 0;
	uint64_t end = mono_ms() + 10000;
	while (got < 200 && mono_ms() < end) {
		kcp_update(k, (uint32_t)mono_ms());
		struct pollfd p = { raw_fd, POLLIN, 0 };
		poll(&p, 1, 10);
		char b[2048];
		ssize_t r;
		while ((r = recv(raw_fd, b, sizeof b, MSG_DONTWAIT)) > 0)
			kcp_input(k, b, (long)r);
		int n;
		while ((n = kcp_recv(k, m, sizeof m)) >= 0) {
			char want[32];
			int wl = snprintf(want, sizeof want, "raw message %d ", got);
			bad += n != wl + got * 7 % 1400 || memcmp(m, want, (size_t)wl);
			got++;
		}
	}
	CHECK_EQ(got, 200);
	CHECK_EQ(bad, 0);
	kcp_release(k);
	close(raw_fd);
	server_stop(&sv);
	unlink(sv.errlog);
}

static const struct tu_test tests[] = {
	TU(echo_udp),
	TU(echo_tcp),
	TU(encryption_per_listener),
	TU(tcp_handshake_deadline),
	TU(echo_ipv6),
	TU(silent_client_times_out),
	TU(bad_input_refused_others_unharmed),
	TU(spoofed_hellos_allocate_nothing),
	TU(server_full_refuses_with_reason),
	TU(raw_kcp_listener_echo),
	TU(auto_falls_back_to_tcp),
	TU(rebind_moves_the_session),
	TU(move_holds_sends_udp),
	TU(move_holds_sends_tcp),
};

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH/TO/moongate [-v] [filter]\n", argv[0]);
		return 2;
	}
	server_bin = argv[1];
	signal(SIGPIPE, SIG_IGN);
	argv[1] = argv[0];
	return tu_main(argc - 1, argv + 1, tests, sizeof tests / sizeof tests[0]);
}
