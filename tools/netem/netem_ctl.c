/*
 * netem_ctl.c - `moongate-netem ctl HOST:PORT COMMAND...`: send one
 * command line to a running moongate-netem's control channel, print the
 * reply line; exit 0 on "ok", 1 on "error" or a failure to talk, 2 on a
 * bad command line. One non-blocking socket under poll(2), every wait
 * bounded by CTL_TIMEOUT_MS; no event loop.
 */
#include "netem.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>


static int
wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		int ms = (int)((deadline - mono()) * 1000);
		if (ms <= 0)
			return -1;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int
ctl_main(int argc, char **argv)
{
	char err[256], cmd[CTL_LINE_MAX];
	struct addr a;
	if (argc < 2) {
		fprintf(stderr, "usage: moongate-netem ctl HOST:PORT COMMAND...\n");
		return 2;
	}
	if (addr_parse(argv[0], &a, err, sizeof err) < 0) {
		fprintf(stderr, "moongate-netem ctl: %s\n", err);
		return 2;
	}
	size_t len = 0;
	for (int i = 1; i < argc; i++) {
		int n = snprintf(cmd + len, sizeof cmd - len, "%s%s", i > 1 ? " " : "",
		                 argv[i]);
		if (n < 0 || (size_t)n >= sizeof cmd - len - 1 || strchr(argv[i], '\n')) {
			fprintf(stderr, "moongate-netem ctl: the command is too long or "
			        "holds a newline\n");
			return 2;
		}
		len += (size_t)n;
	}
	cmd[len++] = '\n';
	double deadline = mono() + CTL_TIMEOUT_MS / 1000.0;
	const struct sockaddr *sa = (const struct sockaddr *)&a.ss;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = 0;
	socklen_t el = sizeof e;
	if (fd < 0 || (connect(fd, sa, a.len) < 0 && errno != EINPROGRESS) ||
	    wait_fd(fd, POLLOUT, deadline) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e) {
		fprintf(stderr, "moongate-netem ctl: connect %s: %s\n", argv[0],
		        strerror(e ? e : errno ? errno : ETIMEDOUT));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, cmd + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			fprintf(stderr, "moongate-netem ctl: send: %s\n", strerror(errno));
			close(fd);
			return 1;
		} else if (wait_fd(fd, POLLOUT, deadline) < 0) {
			fprintf(stderr, "moongate-netem ctl: send: timed out\n");
			close(fd);
			return 1;
		}
	}
	char reply[8192];
	size_t rl = 0;
	while (!memchr(reply, '\n', rl)) {
		if (rl == sizeof reply || wait_fd(fd, POLLIN, deadline) < 0) {
			fprintf(stderr, "moongate-netem ctl: no reply within %d ms\n",
			        CTL_TIMEOUT_MS);
			close(fd);
			return 1;
		}
		ssize_t n = recv(fd, reply + rl, sizeof reply - rl, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			fprintf(stderr, "moongate-netem ctl: the connection ended "
			        "before a reply\n");
			close(fd);
			return 1;
		}
		if (n > 0)
			rl += (size_t)n;
	}
	close(fd);
	*(char *)memchr(reply, '\n', rl) = 0;
	printf("%s\n", reply);
	return !strncmp(reply, "ok", 2) && (reply[2] == 0 || reply[2] == ' ') ? 0 : 1;
}
