/*
 * test_admin.c - core/server/admin.c over real sockets: a Unix socket in a temp
 * directory and TCP on 127.0.0.1, with a run callback standing in for the
 * Lua runtime.
 *
 * The loop is driven with ev_run(EVRUN_ONCE) (a 5 ms tick timer bounds each
 * run) in loops with a deadline of wall time, never with sleep(). Client
 * sockets are plain non-blocking sockets read between loop runs.
 *
 * Run with -v for details; any other argument selects tests by substring.
 */
#include "admin.h"
#include "log.h"
#include "net.h"
#include "testutil.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#define WAIT_S 2.0 /* longest wait for any one condition */

static double
mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct ctx {
	struct ev_loop *loop;
	ev_timer tick;
	net_t *net;          /* owns the console's sockets */
	admin_t *a;
	int port;            /* tcp */
	char dir[64];        /* unix: the temp dir */
	char path[100];      /* unix: the socket (sun_path has 108) */
	int runs;            /* run callback calls */
	char last[ADMIN_LINE_MAX + 1]; /* the last line it saw */
	size_t big;          /* "big": a reply of this many bytes */
	uint64_t ticket;     /* "later X": the ticket of its reply */
};

/* The stand-in for script_command: "echo X" -> X, "fail X" -> error X,
 * "lines" -> text with empty lines and \r\n, "big" -> t->big bytes,
 * "later X" -> the reply comes later (the test calls admin_answer). */
static int
run(const char *line, uint64_t ticket, char *out, size_t outlen, void *user)
{
	struct ctx *t = user;
	t->runs++;
	snprintf(t->last, sizeof t->last, "%s", line);
	if (!strncmp(line, "later ", 6)) {
		t->ticket = ticket;
		return ADMIN_PENDING;
	}
	if (!strncmp(line, "echo ", 5)) {
		snprintf(out, outlen, "%s", line + 5);
		return 0;
	}
	if (!strncmp(line, "fail ", 5)) {
		snprintf(out, outlen, "%s", line + 5);
		return -1;
	}
	if (!strcmp(line, "lines")) {
		snprintf(out, outlen, "\none\n\n\r\ntwo\r\n\n");
		return 0;
	}
	if (!strcmp(line, "quiet")) {
		out[0] = 0;
		return 0;
	}
	if (!strcmp(line, "help")) {
		snprintf(out, outlen, "help: the commands");
		return 0;
	}
	if (!strcmp(line, "big")) {
		size_t n = t->big < outlen ? t->big : outlen - 1;
		memset(out, 'x', n);
		out[n] = 0;
		return 0;
	}
	snprintf(out, outlen, "unknown command");
	return -1;
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* net carries no game traffic here */
static void
no_packet(const struct gate_path *from, uint8_t *pkt, size_t len, void *user)
{
	(void)from, (void)pkt, (void)len, (void)user;
}

static int
setup(struct ctx *t, const char *addr_text, int max_clients)
{
	static const struct net_callbacks ncb = { no_packet, NULL, NULL, NULL };
	struct net_config nc;
	struct admin_addr addr;
	char err[256], text[256];
	memset(t, 0, sizeof *t);
	t->loop = ev_loop_new(EVFLAG_AUTO);
	ev_timer_init(&t->tick, tick_cb, 0.005, 0.005);
	ev_timer_start(t->loop, &t->tick);
	net_config_default(&nc);
	t->net = net_create(t->loop, &nc, &ncb, t);
	if (!t->net)
		return -1;
	if (!strcmp(addr_text, "unix")) {
		snprintf(t->dir, sizeof t->dir, "/tmp/moongate-admin.XXXXXX");
		if (!mkdtemp(t->dir))
			return -1;
		snprintf(t->path, sizeof t->path, "%s/admin.sock", t->dir);
		snprintf(text, sizeof text, "unix:%s", t->path);
		addr_text = text;
	}
	if (admin_addr_parse(addr_text, &addr, err, sizeof err) < 0) {
		fprintf(stderr, "parse: %s\n", err);
		return -1;
	}
	t->a = admin_create(t->net, &addr, max_clients, run, t, err, sizeof err);
	if (!t->a) {
		fprintf(stderr, "admin_create: %s\n", err);
		return -1;
	}
	if (!t->path[0])
		sscanf(admin_where(t->a), "tcp %*s %d", &t->port);
	return 0;
}

static void
teardown(struct ctx *t)
{
	admin_release(t->a);
	t->a = NULL;
	net_release(t->net);
	ev_timer_stop(t->loop, &t->tick);
	ev_loop_destroy(t->loop);
	if (t->dir[0])
		rmdir(t->dir);
}

static struct admin_stats
stats(const struct ctx *t)
{
	struct admin_stats st;
	admin_stats(t->a, &st);
	return st;
}

#define RUN_UNTIL(t, cond) do { \
	double end_ = mono() + WAIT_S; \
	while (!(cond) && mono() < end_) \
		ev_run((t)->loop, EVRUN_ONCE); \
} while (0)

/* ---- clients ------------------------------------------------------------ */

struct cl {
	int fd;
	int eof;                 /* EOF or reset read */
	size_t len;
	char buf[1 << 20];
};

static int
dial(struct ctx *t)
{
	int fd;
	if (t->path[0]) {
		struct sockaddr_un u;
		memset(&u, 0, sizeof u);
		u.sun_family = AF_UNIX;
		memcpy(u.sun_path, t->path, sizeof t->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(fd, (struct sockaddr *)&u, sizeof u) < 0) {
			close(fd);
			return -1;
		}
	} else {
		struct sockaddr_in a;
		memset(&a, 0, sizeof a);
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)t->port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		/* loopback: completes or fails before connect returns, or soon */
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 &&
		    errno != EINPROGRESS) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static struct cl *
cl_new(struct ctx *t)
{
	struct cl *c = calloc(1, sizeof *c);
	c->fd = dial(t);
	if (c->fd < 0) {
		free(c);
		return NULL;
	}
	return c;
}

static void
cl_free(struct cl *c)
{
	if (c) {
		close(c->fd);
		free(c);
	}
}

/* Send it all, running the loop while the socket is full (WAIT_S). */
static void
cl_send(struct ctx *t, struct cl *c, const char *s, size_t n)
{
	double end = mono() + WAIT_S;
	while (n > 0 && mono() < end) {
		ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);
		if (r > 0) {
			s += r;
			n -= (size_t)r;
		} else if (r < 0 && errno != EAGAIN && errno != EINTR) {
			return;
		} else {
			ev_run(t->loop, EVRUN_ONCE);
		}
	}
}

static void
cl_read(struct cl *c)
{
	for (;;) {
		if (c->len == sizeof c->buf - 1)
			return;
		ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
		if (r > 0) {
			c->len += (size_t)r;
			c->buf[c->len] = 0;
		} else {
			if (r == 0 || (errno != EAGAIN && errno != EINTR))
				c->eof = 1;
			return;
		}
	}
}

/* How many complete replies (ending in "\n\n", or "\n" alone at the start)
 * c has received. */
static int
replies(struct cl *c)
{
	int n = 0;
	size_t i = 0, line = 0;
	cl_read(c);
	for (; i < c->len; i++) {
		if (c->buf[i] != '\n')
			continue;
		if (i == line)
			n++; /* an empty line: a reply's end */
		line = i + 1;
	}
	return n;
}

/* Send one line, wait for n replies in all; the buffer holds them. */
static void
ask(struct ctx *t, struct cl *c, const char *line, int n)
{
	cl_send(t, c, line, strlen(line));
	RUN_UNTIL(t, replies(c) >= n || c->eof);
}

/* ---- tests -------------------------------------------------------------- */

TEST(addresses)
{
	struct admin_addr a;
	char err[256];
	CHECK_EQ(admin_addr_parse("unix:/run/x.sock", &a, err, sizeof err), 0);
	CHECK(a.is_unix && !strcmp(a.path, "/run/x.sock"));
	CHECK_EQ(admin_addr_parse("unix:rel/x", &a, err, sizeof err), 0);
	CHECK_EQ(admin_addr_parse("tcp://127.0.0.1:0", &a, err, sizeof err), 0);
	CHECK(!a.is_unix && !strcmp(a.host, "127.0.0.1") && a.port == 0);
	CHECK_EQ(admin_addr_parse("tcp://127.1.2.3:7700", &a, err, sizeof err), 0);
	CHECK_EQ(a.port, 7700);
	CHECK_EQ(admin_addr_parse("tcp://[::1]:9", &a, err, sizeof err), 0);
	CHECK(!strcmp(a.host, "::1") && a.port == 9);

	CHECK_EQ(admin_addr_parse("tcp://0.0.0.0:7700", &a, err, sizeof err), -1);
	CHECK(!strcmp(err, "only a loopback address or unix:PATH; got "
	              "'tcp://0.0.0.0:7700'"));
	CHECK_EQ(admin_addr_parse("tcp://10.0.0.1:1", &a, err, sizeof err), -1);
	CHECK_EQ(admin_addr_parse("tcp://[::]:1", &a, err, sizeof err), -1);
	CHECK(strstr(err, "only a loopback address") != NULL);
	CHECK_EQ(admin_addr_parse("tcp://localhost:1", &a, err, sizeof err), -1);
	CHECK_EQ(admin_addr_parse("tcp://127.0.0.1", &a, err, sizeof err), -1);
	CHECK(strstr(err, "expected tcp://HOST:PORT") != NULL);
	CHECK_EQ(admin_addr_parse("tcp://127.0.0.1:65536", &a, err, sizeof err), -1);
	CHECK_EQ(admin_addr_parse("tcp://127.0.0.1:x", &a, err, sizeof err), -1);
	CHECK_EQ(admin_addr_parse("tcp://[::1:5", &a, err, sizeof err), -1);
	CHECK_EQ(admin_addr_parse("udp://127.0.0.1:1", &a, err, sizeof err), -1);
	CHECK(strstr(err, "expected unix:PATH or tcp://HOST:PORT") != NULL);
	CHECK_EQ(admin_addr_parse("unix:", &a, err, sizeof err), -1);
	char longp[200];
	memset(longp, 'p', sizeof longp);
	memcpy(longp, "unix:", 5);
	longp[sizeof longp - 1] = 0;
	CHECK_EQ(admin_addr_parse(longp, &a, err, sizeof err), -1);
	CHECK(strstr(err, "at most 107 bytes") != NULL);
}

/* Framing: lines with \n or \r\n, several in one write, replies in order;
 * empty lines dropped from a reply; errors start with "error: ". */
static void
framing(const char *where)
{
	struct ctx t;
	REQUIRE(setup(&t, where, 8) == 0);
	struct cl *c = cl_new(&t);
	REQUIRE(c != NULL);
	ask(&t, c, "echo hello\n", 1);
	CHECK(!strcmp(c->buf, "hello\n\n"));
	c->len = 0;
	ask(&t, c, "  echo a b  \r\nfail bad thing\nlines\n\nquiet\n", 5);
	VERBOSE("%s", c->buf);
	CHECK(!strcmp(c->buf, "a b\n\n" "error: bad thing\n\n" "one\ntwo\n\n"
	              "\n" "ok\n\n"));
	CHECK(!strcmp(t.last, "quiet"));
	c->len = 0;
	/* help: the console adds its own command */
	ask(&t, c, "help\n", 1);
	CHECK(!strcmp(c->buf, "help: the commands\nquit: close this "
	              "connection\n\n"));
	c->len = 0;
	/* a line in pieces */
	cl_send(&t, c, "ec", 2);
	for (int i = 0; i < 3; i++)
		ev_run(t.loop, EVRUN_NOWAIT);
	ask(&t, c, "ho x\n", 1);
	CHECK(!strcmp(c->buf, "x\n\n"));
	c->len = 0;
	/* quit: bye, then the server closes */
	ask(&t, c, "quit\necho never\n", 1);
	CHECK(!strcmp(c->buf, "bye\n\n"));
	RUN_UNTIL(&t, (cl_read(c), c->eof));
	CHECK(c->eof);
	CHECK(!strcmp(c->buf, "bye\n\n"));
	CHECK(strcmp(t.last, "echo never"));
	RUN_UNTIL(&t, stats(&t).clients == 0);
	CHECK_EQ(stats(&t).clients, 0);
	/* EOF after a last line without its end: it still runs */
	cl_free(c);
	c = cl_new(&t);
	REQUIRE(c != NULL);
	cl_send(&t, c, "echo last", 9);
	shutdown(c->fd, SHUT_WR);
	RUN_UNTIL(&t, (cl_read(c), c->eof));
	CHECK(!strcmp(c->buf, "last\n\n"));
	cl_free(c);
	teardown(&t);
}

TEST(framing_tcp) { framing("tcp://127.0.0.1:0"); }
TEST(framing_unix) { framing("unix"); }

TEST(line_too_long)
{
	struct ctx t;
	char line[5002];
	REQUIRE(setup(&t, "tcp://127.0.0.1:0", 8) == 0);
	/* exactly ADMIN_LINE_MAX bytes (with \r\n): runs */
	struct cl *c = cl_new(&t);
	REQUIRE(c != NULL);
	memset(line, 'a', sizeof line);
	memcpy(line, "echo ", 5);
	memcpy(line + ADMIN_LINE_MAX, "\r\n", 2);
	cl_send(&t, c, line, ADMIN_LINE_MAX + 2);
	RUN_UNTIL(&t, replies(c) >= 1);
	CHECK_EQ(c->len, ADMIN_LINE_MAX - 5 + 2);
	cl_free(c);
	/* one more byte: refused, and the connection closes */
	c = cl_new(&t);
	REQUIRE(c != NULL);
	memcpy(line + ADMIN_LINE_MAX, "a\n", 2);
	cl_send(&t, c, line, ADMIN_LINE_MAX + 2);
	RUN_UNTIL(&t, (cl_read(c), c->eof));
	CHECK(!strcmp(c->buf, "error: line too long\n\n"));
	cl_free(c);
	/* 5000 bytes and more after it in the same write: the reply is not
	 * lost to a reset (the server reads the rest before it closes) */
	c = cl_new(&t);
	REQUIRE(c != NULL);
	memset(line, 'b', sizeof line);
	line[5000] = '\n';
	cl_send(&t, c, line, 5001);
	cl_send(&t, c, "echo after\n", 11);
	RUN_UNTIL(&t, (cl_read(c), c->eof));
	CHECK(!strcmp(c->buf, "error: line too long\n\n"));
	CHECK_EQ(stats(&t).too_long, 2);
	cl_free(c);
	RUN_UNTIL(&t, stats(&t).clients == 0);
	CHECK_EQ(stats(&t).clients, 0);
	teardown(&t);
}

TEST(too_many_clients)
{
	struct ctx t;
	struct cl *c[9];
	REQUIRE(setup(&t, "unix", 8) == 0);
	for (int i = 0; i < 8; i++) {
		c[i] = cl_new(&t);
		REQUIRE(c[i] != NULL);
		ask(&t, c[i], "echo hi\n", 1);
		CHECK(!strcmp(c[i]->buf, "hi\n\n"));
	}
	CHECK_EQ(stats(&t).clients, 8);
	/* the ninth is told why, then closed, even when it sent a command */
	c[8] = cl_new(&t);
	REQUIRE(c[8] != NULL);
	cl_send(&t, c[8], "echo 9\n", 7);
	RUN_UNTIL(&t, (cl_read(c[8]), c[8]->eof));
	CHECK(!strcmp(c[8]->buf, "error: too many admin clients\n\n"));
	CHECK_EQ(stats(&t).refused, 1);
	CHECK_EQ(stats(&t).clients, 8);
	cl_free(c[8]);
	/* one leaves: there is room again */
	cl_free(c[0]);
	RUN_UNTIL(&t, stats(&t).clients == 7);
	c[0] = cl_new(&t);
	REQUIRE(c[0] != NULL);
	ask(&t, c[0], "echo back\n", 1);
	CHECK(!strcmp(c[0]->buf, "back\n\n"));
	CHECK_EQ(stats(&t).clients, 8);
	for (int i = 0; i < 8; i++)
		cl_free(c[i]);
	teardown(&t);
}

/* A client that sends commands and never reads is closed once its unread
 * replies pass ADMIN_OUT_MAX; one that reads gets them all. */
TEST(not_reading)
{
	struct ctx t;
	REQUIRE(setup(&t, "tcp://127.0.0.1:0", 8) == 0);
	t.big = 60000;
	struct cl *c = cl_new(&t);
	REQUIRE(c != NULL);
	int small = 4096;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	for (int i = 0; i < 200 && stats(&t).overflows == 0; i++) {
		cl_send(&t, c, "big\n", 4);
		ev_run(t.loop, EVRUN_NOWAIT);
	}
	RUN_UNTIL(&t, stats(&t).overflows == 1);
	CHECK_EQ(stats(&t).overflows, 1);
	CHECK_EQ(stats(&t).clients, 0);
	cl_free(c);

	c = cl_new(&t);
	REQUIRE(c != NULL);
	for (int i = 0; i < 10; i++)
		cl_send(&t, c, "big\n", 4);
	RUN_UNTIL(&t, replies(c) >= 10);
	CHECK_EQ(c->len, 10 * (60000 + 2));
	CHECK_EQ(stats(&t).overflows, 1);
	cl_free(c);
	teardown(&t);
}

/* A command whose reply comes later: the client's next lines wait behind
 * it and run after its reply, in order; another client is served
 * meanwhile. */
TEST(reply_later_in_order)
{
	struct ctx t;
	REQUIRE(setup(&t, "tcp://127.0.0.1:0", 8) == 0);
	struct cl *a = cl_new(&t), *b = cl_new(&t);
	REQUIRE(a != NULL && b != NULL);
	cl_send(&t, a, "later one\necho two\nlater three\n", 31);
	RUN_UNTIL(&t, t.runs == 1);
	ask(&t, b, "echo meanwhile\n", 1);
	CHECK(!strcmp(b->buf, "meanwhile\n\n"));
	CHECK_EQ(replies(a), 0);
	CHECK_EQ(t.runs, 2); /* b's; a's next lines wait */
	CHECK_EQ(stats(&t).waiting, 1);
	uint64_t first = t.ticket;
	CHECK_EQ(admin_answer(t.a, first, 0, "one done"), 0);
	CHECK_EQ(admin_answer(t.a, first, 0, "again"), -1); /* once */
	/* "echo two" ran, then "later three" waits */
	RUN_UNTIL(&t, replies(a) >= 2);
	CHECK(!strcmp(a->buf, "one done\n\ntwo\n\n"));
	CHECK_EQ(t.runs, 4);
	CHECK(t.ticket != first);
	CHECK_EQ(admin_answer(t.a, t.ticket, 1, "three failed"), 0);
	RUN_UNTIL(&t, replies(a) >= 3);
	CHECK(!strcmp(a->buf, "one done\n\ntwo\n\nerror: three failed\n\n"));
	CHECK_EQ(stats(&t).waiting, 0);
	cl_free(a);
	cl_free(b);
	teardown(&t);
}

/* A client that leaves while its command waits (a reset) drops the reply;
 * one whose EOF comes while it waits (it may have closed only its side)
 * still gets it, then is closed; one that sends more than its buffer
 * behind a waiting command is told and closed. */
TEST(reply_later_and_the_client_goes)
{
	struct ctx t;
	REQUIRE(setup(&t, "tcp://127.0.0.1:0", 8) == 0);
	struct cl *c = cl_new(&t);
	REQUIRE(c != NULL);
	cl_send(&t, c, "later x\n", 8);
	RUN_UNTIL(&t, t.runs == 1);
	struct linger lg = { 1, 0 }; /* close with a reset */
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	cl_free(c);
	RUN_UNTIL(&t, stats(&t).clients == 0);
	CHECK_EQ(stats(&t).waiting, 0);
	CHECK_EQ(admin_answer(t.a, t.ticket, 0, "nobody reads this"), -1);

	c = cl_new(&t);
	REQUIRE(c != NULL);
	cl_send(&t, c, "later y\necho z", 14);
	shutdown(c->fd, SHUT_WR);
	RUN_UNTIL(&t, t.runs == 2 && stats(&t).clients == 1);
	ev_run(t.loop, EVRUN_NOWAIT); /* the EOF is read: nothing closes */
	CHECK_EQ(stats(&t).clients, 1);
	CHECK_EQ(admin_answer(t.a, t.ticket, 0, "y done"), 0);
	RUN_UNTIL(&t, (cl_read(c), c->eof));
	CHECK(!strcmp(c->buf, "y done\n\nz\n\n"));
	RUN_UNTIL(&t, stats(&t).clients == 0);
	cl_free(c);

	c = cl_new(&t);
	REQUIRE(c != NULL);
	cl_send(&t, c, "later w\n", 8);
	RUN_UNTIL(&t, t.runs == 4);
	char more[6000];
	memset(more, '\n', sizeof more);
	cl_send(&t, c, more, sizeof more);
	RUN_UNTIL(&t, (cl_read(c), c->eof));
	CHECK(strstr(c->buf, "error: too much input behind a command that waits") == c->buf);
	CHECK_EQ(stats(&t).waiting, 0);
	CHECK_EQ(admin_answer(t.a, t.ticket, 0, "late"), -1);
	cl_free(c);
	teardown(&t);
}

TEST(unix_socket_file)
{
	struct ctx t;
	struct stat st;
	char err[256];
	struct admin_addr addr;
	REQUIRE(setup(&t, "unix", 8) == 0);
	REQUIRE(stat(t.path, &st) == 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600);
	char text[160];
	snprintf(text, sizeof text, "unix:%s", t.path);
	REQUIRE(admin_addr_parse(text, &addr, err, sizeof err) == 0);
	/* another server on the same path: refused, the file left alone */
	admin_t *b = admin_create(t.net, &addr, 8, run, &t, err, sizeof err);
	CHECK(b == NULL);
	CHECK(strstr(err, "another process listens there") != NULL);
	CHECK(stat(t.path, &st) == 0);
	/* release removes it */
	admin_release(t.a);
	t.a = NULL;
	CHECK(stat(t.path, &st) < 0);

	/* a stale socket file (nothing listens) is replaced */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un u;
	memset(&u, 0, sizeof u);
	u.sun_family = AF_UNIX;
	memcpy(u.sun_path, t.path, sizeof t.path);
	REQUIRE(bind(fd, (struct sockaddr *)&u, sizeof u) == 0);
	close(fd);
	t.a = admin_create(t.net, &addr, 8, run, &t, err, sizeof err);
	CHECK(t.a != NULL);
	struct cl *c = cl_new(&t);
	REQUIRE(c != NULL);
	ask(&t, c, "echo fresh\n", 1);
	CHECK(!strcmp(c->buf, "fresh\n\n"));
	cl_free(c);
	admin_release(t.a);
	t.a = NULL;

	/* a file that is not a socket is never removed */
	FILE *f = fopen(t.path, "w");
	REQUIRE(f != NULL);
	fclose(f);
	b = admin_create(t.net, &addr, 8, run, &t, err, sizeof err);
	CHECK(b == NULL);
	CHECK(strstr(err, "is not a socket") != NULL);
	CHECK(stat(t.path, &st) == 0 && S_ISREG(st.st_mode));
	unlink(t.path);
	teardown(&t);
}

static const struct tu_test tests[] = {
	TU(addresses),
	TU(framing_tcp),
	TU(framing_unix),
	TU(line_too_long),
	TU(too_many_clients),
	TU(not_reading),
	TU(reply_later_in_order),
	TU(reply_later_and_the_client_goes),
	TU(unix_socket_file),
};

int
main(int argc, char **argv)
{
	/* the console's log lines only with -v */
	log_level = LOG_ERROR;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-v"))
			log_level = LOG_DEBUG;
	return tu_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
