/*
 * admin_cli.c - `moongate admin`: the admin console's client (admin.h).
 *
 *   moongate admin unix:moongate.admin reload     one command, its reply
 *   moongate admin tcp://127.0.0.1:7700           commands from stdin
 *
 * With a COMMAND (the remaining arguments joined by spaces) it sends that
 * one line, prints the reply and exits; without, it sends each line of
 * stdin and prints each reply, like nc but knowing where a reply ends (the
 * empty line, which is not printed). Every wait for the server (connect,
 * send, the reply) has the --timeout deadline; the wait for stdin has none:
 * an operator may take their time.
 */
#include "admin.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 5000
#define LINE_SEND_MAX (4 * ADMIN_LINE_MAX) /* longer ones are not sent; the
                                 server's own limit answers in between */

/* Buffered input from one descriptor. */
struct in {
	int fd;
	int eof;
	size_t head, len;      /* buf[head..len) unread */
	char buf[LINE_SEND_MAX];
};

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wait until fd is ready for ev or deadline passed: 1, 0 (time out), or -1. */
static int
wait_fd(int fd, short ev, double deadline)
{
	for (;;) {
		double left = deadline - now_ms();
		struct pollfd p = { fd, ev, 0 };
		if (left <= 0)
			return 0;
		int r = poll(&p, 1, (int)left + 1);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* A connected, non-blocking socket to a; -1 with err. */
static int
dial(const struct admin_addr *a, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	double deadline = now_ms() + timeout_ms;
	memset(&ss, 0, sizeof ss);
	if (a->is_unix) {
		struct sockaddr_un *u = (struct sockaddr_un *)&ss;
		u->sun_family = AF_UNIX;
		memcpy(u->sun_path, a->path, strlen(a->path) + 1);
		sl = sizeof *u;
	} else {
		struct addrinfo hints, *ai;
		char ps[16];
		memset(&hints, 0, sizeof hints);
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		hints.ai_socktype = SOCK_STREAM;
		snprintf(ps, sizeof ps, "%d", a->port);
		int rc = getaddrinfo(a->host, ps, &hints, &ai);
		if (rc) {
			snprintf(err, errlen, "%s", gai_strerror(rc));
			return -1;
		}
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		sl = ai->ai_addrlen;
		freeaddrinfo(ai);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
			return fd;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && a->is_unix && now_ms() < deadline) {
			/* a Unix listener's backlog is full: nothing to poll on */
			poll(NULL, 0, 10);
			continue;
		}
		break;
	}
	if (errno == EINPROGRESS) {
		int e = 0, r = wait_fd(fd, POLLOUT, deadline);
		socklen_t el = sizeof e;
		if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 &&
		    e == 0)
			return fd;
		if (r == 0)
			snprintf(err, errlen, "no answer within %d ms", timeout_ms);
		else
			snprintf(err, errlen, "%s", strerror(e ? e : errno));
	} else {
		snprintf(err, errlen, "%s", strerror(errno));
	}
	close(fd);
	return -1;
}

static int
send_all(int fd, const char *p, size_t n, double deadline)
{
	while (n > 0) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
		} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, deadline) <= 0)
				return -1;
		} else if (!(r < 0 && errno == EINTR)) {
			return -1;
		}
	}
	return 0;
}

/* Read one reply from r->fd and print it, without its terminator. 0 (with
 * *is_err), or -1 with *why. */
static int
read_reply(struct in *r, double deadline, int timeout_ms, int *is_err,
           char *why, size_t whylen)
{
	int first = 1, mid = 0; /* mid: a line longer than buf, printed in part */
	*is_err = 0;
	for (;;) {
		while (r->head < r->len) {
			char *p = r->buf + r->head;
			size_t n = r->len - r->head;
			char *nl = memchr(p, '\n', n);
			if (!nl) {
				if (r->head > 0 || r->len < sizeof r->buf)
					break; /* the line's end is still to come */
				size_t k = p[n - 1] == '\r' ? n - 1 : n;
				if (first && !mid)
					*is_err = !strncmp(p, "error: ", 7);
				fwrite(p, 1, k, stdout);
				r->head += k;
				first = 0;
				mid = 1;
				break;
			}
			size_t len = (size_t)(nl - p);
			r->head += len + 1;
			if (len > 0 && p[len - 1] == '\r')
				len--;
			if (len == 0 && !mid)
				return 0; /* the terminator */
			if (first && !mid)
				*is_err = len >= 7 && !memcmp(p, "error: ", 7);
			fwrite(p, 1, len, stdout);
			fputc('\n', stdout);
			first = 0;
			mid = 0;
		}
		memmove(r->buf, r->buf + r->head, r->len - r->head);
		r->len -= r->head;
		r->head = 0;
		int w = wait_fd(r->fd, POLLIN, deadline);
		if (w <= 0) {
			snprintf(why, whylen, w == 0 ? "no reply within %d ms" :
			         "poll failed", timeout_ms);
			return -1;
		}
		ssize_t got = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
		if (got > 0) {
			r->len += (size_t)got;
		} else if (got == 0) {
			snprintf(why, whylen, "the server closed the connection before "
			         "the reply ended");
			return -1;
		} else if (errno != EINTR && errno != EAGAIN) {
			snprintf(why, whylen, "%s", strerror(errno));
			return -1;
		}
	}
}

/* Send line (no line end) and print its reply. 0 or 1 (an error reply),
 * or 2 with the reason on stderr. */
static int
run_line(struct in *sock, const char *line, size_t len, int timeout_ms,
         const char *prog)
{
	char why[256];
	int is_err;
	double deadline = now_ms() + timeout_ms;
	if (send_all(sock->fd, line, len, deadline) < 0 ||
	    send_all(sock->fd, "\n", 1, deadline) < 0) {
		fprintf(stderr, "%s admin: cannot send: %s\n", prog,
		        errno == EAGAIN ? "timed out" : strerror(errno));
		return 2;
	}
	if (read_reply(sock, deadline, timeout_ms, &is_err, why, sizeof why) < 0) {
		fflush(stdout);
		fprintf(stderr, "%s admin: %s\n", prog, why);
		return 2;
	}
	fflush(stdout);
	return is_err;
}

static int
is_quit(const char *p, size_t n)
{
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
		n--;
	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	return n == 4 && !memcmp(p, "quit", 4);
}

/* Commands from stdin, one per line, until its end or quit. */
static int
interactive(struct in *sock, int timeout_ms, const char *prog)
{
	static struct in in; /* stdin */
	int status = 0, skipping = 0;
	in.fd = 0;
	for (;;) {
		char *p = in.buf + in.head;
		size_t n = in.len - in.head;
		char *nl = memchr(p, '\n', n);
		if (nl || (in.eof && n > 0)) {
			size_t len = nl ? (size_t)(nl - p) : n;
			in.head += nl ? len + 1 : n;
			if (skipping) { /* the end of a line too long to send */
				skipping = 0;
				continue;
			}
			int rc = run_line(sock, p, len, timeout_ms, prog);
			if (rc == 2)
				return 2;
			status |= rc;
			if (is_quit(p, len))
				return status;
			continue;
		}
		if (in.eof)
			return status;
		memmove(in.buf, in.buf + in.head, n);
		in.len = n;
		in.head = 0;
		if (in.len == sizeof in.buf) {
			fprintf(stderr, "%s admin: a line longer than %zu bytes: not "
			        "sent\n", prog, sizeof in.buf - 1);
			status = 1;
			skipping = 1;
			in.len = 0;
		}
		/* wait for stdin; the server only speaks when asked, so input
		 * from it here is its EOF (it stopped, or closed us) */
		struct pollfd pf[2] = { { 0, POLLIN, 0 }, { sock->fd, POLLIN, 0 } };
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s admin: poll: %s\n", prog, strerror(errno));
			return 2;
		}
		if (pf[1].revents) {
			char junk[256];
			ssize_t r = read(sock->fd, junk, sizeof junk);
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				fprintf(stderr, "%s admin: the server closed the "
				        "connection\n", prog);
				return 2;
			}
		}
		if (pf[0].revents) {
			ssize_t r = read(0, in.buf + in.len, sizeof in.buf - in.len);
			if (r > 0)
				in.len += (size_t)r;
			else if (r == 0 || (errno != EINTR && errno != EAGAIN))
				in.eof = 1;
		}
	}
}

static void
cli_usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s admin [--timeout MS] ADDR [COMMAND...]\n"
		"\n"
		"Talk to a running server's admin console. ADDR is its admin key:\n"
		"unix:PATH or tcp://127.0.0.1:PORT (tcp://[::1]:PORT).\n"
		"With COMMAND (the words joined by spaces): run it, print the reply,\n"
		"exit 0, or 1 when the reply is an error. Without: one command per\n"
		"line from stdin, each reply printed; exit 1 if any was an error.\n"
		"Exit 2 when ADDR does not answer. help lists the commands.\n"
		"\n"
		"  --timeout MS   every wait for the server (5000)\n",
		prog);
}

int
admin_cli(int argc, char **argv, const char *prog)
{
	static struct in sock;
	static char line[LINE_SEND_MAX];
	struct admin_addr a;
	char err[512];
	const char *addr = NULL;
	int timeout_ms = TIMEOUT_MS, i;
	for (i = 1; i < argc && !addr; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			cli_usage(stdout, prog);
			return 0;
		} else if (!strcmp(o, "--timeout")) {
			char *end;
			long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
			if (i + 1 >= argc || *end || end == argv[i + 1] || v < 1 ||
			    v > 3600000) {
				fprintf(stderr, "%s admin: --timeout expects milliseconds "
				        "(1..3600000)\n", prog);
				return 2;
			}
			timeout_ms = (int)v;
			i++;
		} else if (o[0] == '-' && o[1] == '-') {
			fprintf(stderr, "%s admin: unknown option '%s'\n", prog, o);
			cli_usage(stderr, prog);
			return 2;
		} else {
			addr = o;
		}
	}
	if (!addr) {
		cli_usage(stderr, prog);
		return 2;
	}
	if (admin_addr_parse(addr, &a, err, sizeof err) < 0) {
		fprintf(stderr, "%s admin: %s\n", prog, err);
		return 2;
	}
	/* the command: the remaining words, joined by spaces */
	size_t len = 0;
	int oneshot = i < argc;
	for (; i < argc; i++) {
		size_t n = strlen(argv[i]);
		if (strpbrk(argv[i], "\r\n")) {
			fprintf(stderr, "%s admin: a command is one line\n", prog);
			return 2;
		}
		if (len + n + 1 >= sizeof line) {
			fprintf(stderr, "%s admin: a command of more than %zu bytes\n",
			        prog, sizeof line - 1);
			return 2;
		}
		if (len)
			line[len++] = ' ';
		memcpy(line + len, argv[i], n);
		len += n;
	}
	sock.fd = dial(&a, timeout_ms, err, sizeof err);
	if (sock.fd < 0) {
		fprintf(stderr, "%s admin: cannot connect to %s: %s\n", prog, addr,
		        err);
		return 2;
	}
	int rc = oneshot ? run_line(&sock, line, len, timeout_ms, prog)
	                 : interactive(&sock, timeout_ms, prog);
	close(sock.fd);
	return rc;
}
