/*
 * admin.c - the admin console (see admin.h).
 *
 * A client reads into a buffer of one line (ADMIN_LINE_MAX plus "\r\n");
 * every complete line runs at once, synchronously, and its framed reply is
 * appended to the client's output queue, written as far as the socket takes
 * it (the rest when it is writable again).
 *
 * Closing (quit, a line too long, EOF, a refusal): no more commands; the
 * queued replies are written, then shutdown(SHUT_WR), and input is read and
 * thrown away until the peer's EOF. Closing with unread input would make
 * the kernel reset the connection (TCP sends an RST, a Unix socket reports
 * ECONNRESET), and the peer could lose the reply that says why. A closing
 * client has CLOSE_WAIT_S in all, and at most CLOSING_MAX wait at once;
 * past that one is closed at once.
 *
 * Re-entrancy: a client is freed only at the end of a libev callback, after
 * which nothing touches it; the run callback never sees a client.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>

#include "log.h"

#define READ_ROUNDS 4       /* reads per event on one client */
#define ACCEPT_MAX 16       /* accepts per event */
#define ACCEPT_PAUSE 0.5    /* seconds the listener rests after EMFILE */
#define CLOSE_WAIT_S 2.0    /* a closing client: replies written and EOF read
                               within this, or it is closed anyway */
#define CLOSING_MAX 16      /* closing clients waiting at once */
#define OUT_KEEP 65536      /* an emptied output buffer larger is freed */
#define LOG_TEXT_MAX 160    /* bytes of a command or an error in the log */

static const char too_many[] = "error: too many admin clients\n\n";

struct client {
	admin_t *a;
	ev_io rio, wio;          /* wio only while replies wait for the socket */
	ev_timer wait;           /* closing: the deadline */
	int fd;
	unsigned id;             /* for the log */
	int active;              /* counted in max_clients */
	int closing;             /* no more commands */
	int shut;                /* replies written, SHUT_WR sent: discarding */
	int eof;                 /* the peer's EOF was read */
	char *out;               /* queued replies: out[ohead..olen) unsent */
	size_t ohead, olen, ocap;
	size_t inlen;            /* bytes in in */
	struct client *prev, *next;
	char in[ADMIN_LINE_MAX + 2];
};

struct admin {
	struct ev_loop *loop;
	ev_io lio;
	ev_timer pause;          /* restarts the listener after EMFILE */
	int fd;
	int max_clients;
	int nactive, nclosing;
	unsigned next_id;
	struct client *clients;
	admin_run_fn run;
	void *user;
	int is_unix;
	char path[108];          /* unix: the socket file, removed at release */
	dev_t dev;               /* ... if it is still this one */
	ino_t ino;
	char where[160];
	struct admin_stats st;
	char reply[ADMIN_REPLY_MAX]; /* the run callback's output */
};

/* ---- addresses ---------------------------------------------------------- */

int
admin_addr_parse(const char *text, struct admin_addr *a, char *err,
                 size_t errlen)
{
	memset(a, 0, sizeof *a);
	if (!strncmp(text, "unix:", 5)) {
		size_t n = strlen(text + 5);
		if (n == 0) {
			snprintf(err, errlen, "expected unix:PATH, got '%s'", text);
			return -1;
		}
		if (n >= sizeof a->path) {
			snprintf(err, errlen, "'%s': a Unix socket path has at most %zu "
			         "bytes", text, sizeof a->path - 1);
			return -1;
		}
		a->is_unix = 1;
		memcpy(a->path, text + 5, n + 1);
		return 0;
	}
	if (strncmp(text, "tcp://", 6)) {
		snprintf(err, errlen, "expected unix:PATH or tcp://HOST:PORT, got '%s'",
		         text);
		return -1;
	}
	const char *h = text + 6, *colon;
	size_t hl;
	if (h[0] == '[') {
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':')
			goto bad;
		h++;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			goto bad;
		hl = (size_t)(colon - h);
	}
	if (hl == 0 || hl >= sizeof a->host)
		goto bad;
	memcpy(a->host, h, hl);
	a->host[hl] = 0;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		goto bad;
	a->port = (int)port;
	struct in_addr v4;
	struct in6_addr v6;
	if (inet_pton(AF_INET, a->host, &v4) == 1 &&
	    (ntohl(v4.s_addr) >> 24) == 127)
		return 0;
	if (inet_pton(AF_INET6, a->host, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6))
		return 0;
	snprintf(err, errlen, "only a loopback address or unix:PATH; got '%s'",
	         text);
	return -1;
bad:
	snprintf(err, errlen, "expected tcp://HOST:PORT (PORT 0..65535, an IPv6 "
	         "HOST in brackets), got '%s'", text);
	return -1;
}

/* ---- clients ------------------------------------------------------------ */

/* s as one log-safe piece: at most LOG_TEXT_MAX bytes, up to its first line
 * end, control bytes as '?'. */
static const char *
log_text(const char *s, char *buf, size_t len)
{
	size_t n = 0;
	for (; *s && *s != '\n' && n + 1 < len && n < LOG_TEXT_MAX; s++)
		buf[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	buf[n] = 0;
	if (*s && *s != '\n' && n > 3)
		memcpy(buf + n - 3, "...", 3);
	return buf;
}

static void
client_free(struct client *c, const char *why)
{
	admin_t *a = c->a;
	ev_io_stop(a->loop, &c->rio);
	ev_io_stop(a->loop, &c->wio);
	ev_timer_stop(a->loop, &c->wait);
	close(c->fd);
	if (c->active)
		a->nactive--;
	if (c->closing)
		a->nclosing--;
	if (c->prev)
		c->prev->next = c->next;
	else
		a->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->st.clients = (uint64_t)a->nactive;
	if (why)
		log_warn("admin: client %u closed: %s", c->id, why);
	else
		log_debug("admin: client %u closed", c->id);
	free(c->out);
	free(c);
}

/* Write what is queued. 0, or -1 on a write error (the caller frees). */
static int
flush(struct client *c)
{
	admin_t *a = c->a;
	while (c->ohead < c->olen) {
		ssize_t r = send(c->fd, c->out + c->ohead, c->olen - c->ohead,
		                 MSG_NOSIGNAL);
		if (r > 0) {
			c->ohead += (size_t)r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(a->loop, &c->wio);
			return 0;
		} else {
			return -1;
		}
	}
	ev_io_stop(a->loop, &c->wio);
	c->ohead = c->olen = 0;
	if (c->ocap > OUT_KEEP) {
		free(c->out);
		c->out = NULL;
		c->ocap = 0;
	}
	return 0;
}

/* Room for need more bytes in the output queue: 0, or -1 when that would
 * pass ADMIN_OUT_MAX (or memory is out). */
static int
out_reserve(struct client *c, size_t need)
{
	size_t queued = c->olen - c->ohead;
	if (queued + need > ADMIN_OUT_MAX)
		return -1;
	if (c->ohead > 0 && c->olen + need > c->ocap) {
		memmove(c->out, c->out + c->ohead, queued);
		c->olen = queued;
		c->ohead = 0;
	}
	if (c->olen + need > c->ocap) {
		size_t cap = c->ocap ? c->ocap : 1024;
		while (cap < c->olen + need)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (!p)
			return -1;
		c->out = p;
		c->ocap = cap;
	}
	return 0;
}

static void
out_put(struct client *c, const char *s, size_t n)
{
	memcpy(c->out + c->olen, s, n);
	c->olen += n;
}

/* Queue text as one framed reply: its non-empty lines ("\r" before a line
 * end dropped), the first one after "error: " when err, then the empty
 * line. Nothing to say: "ok" (or "error: failed"). 0, or -1 when the
 * queue would overflow. */
static int
reply(struct client *c, int err, const char *text)
{
	size_t n = strlen(text);
	if (out_reserve(c, n + sizeof "error: failed\n\n") < 0)
		return -1;
	int lines = 0;
	const char *p = text, *end = text + n;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		size_t len = (size_t)(e - p);
		while (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0) {
			if (err && lines == 0 && strncmp(p, "error: ", 7))
				out_put(c, "error: ", 7);
			out_put(c, p, len);
			out_put(c, "\n", 1);
			lines++;
		}
		p = nl ? nl + 1 : end;
	}
	if (lines == 0)
		out_put(c, err ? "error: failed\n" : "ok\n", err ? 14 : 3);
	out_put(c, "\n", 1);
	return 0;
}

static void
wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *c = w->data;
	(void)loop;
	(void)revents;
	client_free(c, c->shut ? NULL : "closing: its replies were not read in "
	            "time");
}

/* No more commands from c. 0, or -1 when too many clients are closing
 * already: the replies go out as far as they can now and the caller
 * frees c. */
static int
begin_closing(struct client *c)
{
	admin_t *a = c->a;
	if (c->closing)
		return 0;
	c->closing = 1;
	a->nclosing++;
	if (c->active) {
		c->active = 0;
		a->nactive--;
		a->st.clients = (uint64_t)a->nactive;
	}
	if (a->nclosing > CLOSING_MAX) {
		flush(c);
		return -1;
	}
	ev_timer_set(&c->wait, CLOSE_WAIT_S, 0.);
	ev_timer_start(a->loop, &c->wait);
	return 0;
}

/* A closing client whose replies are written: send our FIN, then wait for
 * the peer's EOF (reading and discarding) before closing. 0, or -1: free. */
static int
finish(struct client *c)
{
	if (c->shut)
		return 0;
	if (flush(c) < 0)
		return -1;
	if (c->ohead < c->olen)
		return 0; /* write_cb calls again */
	if (c->eof || shutdown(c->fd, SHUT_WR) < 0)
		return -1;
	c->shut = 1;
	c->inlen = 0;
	ev_io_start(c->a->loop, &c->rio);
	return 0;
}

/* Run one line (its end removed). 0, 1 after quit, or -1 when the reply
 * overflowed the output queue. */
static int
command(struct client *c, char *line, size_t len)
{
	admin_t *a = c->a;
	char l1[LOG_TEXT_MAX + 1], l2[LOG_TEXT_MAX + 1];
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	line[len] = 0;
	a->st.commands++;
	if (len == 0) { /* an empty reply: the terminator alone */
		if (out_reserve(c, 1) < 0)
			return -1;
		out_put(c, "\n", 1);
		return 0;
	}
	if (memchr(line, 0, len)) {
		log_info("admin: a line with a NUL byte -> error");
		return reply(c, 1, "a NUL byte in the line");
	}
	if (!strcmp(line, "quit")) {
		log_info("admin: quit -> ok");
		return reply(c, 0, "bye") < 0 ? -1 : 1;
	}
	a->reply[0] = 0;
	int rc = a->run(line, a->reply, sizeof a->reply, a->user);
	a->reply[sizeof a->reply - 1] = 0;
	if (rc == 0 && !strcmp(line, "help")) { /* the console's own command */
		size_t n = strlen(a->reply);
		snprintf(a->reply + n, sizeof a->reply - n, "%squit: close this "
		         "connection", n ? "\n" : "");
	}
	if (rc == 0)
		log_info("admin: %s -> ok", log_text(line, l1, sizeof l1));
	else
		log_info("admin: %s -> error: %s", log_text(line, l1, sizeof l1),
		         log_text(a->reply, l2, sizeof l2));
	return reply(c, rc != 0, a->reply);
}

static int
too_long(struct client *c)
{
	c->a->st.too_long++;
	log_warn("admin: client %u: line too long (more than %d bytes): closing",
	         c->id, ADMIN_LINE_MAX);
	return reply(c, 1, "line too long");
}

/* Run every complete line in c->in. 0, or -1: free c, with *why for the
 * log (NULL: nothing more to say). */
static int
lines(struct client *c, const char **why)
{
	size_t start = 0;
	int rc = 0;
	while (!c->closing && rc == 0) {
		char *line = c->in + start;
		char *nl = memchr(line, '\n', c->inlen - start);
		if (!nl) {
			/* a full buffer and no line end: longer than a line may be */
			if (start == 0 && c->inlen == sizeof c->in)
				rc = too_long(c) < 0 ? -1 : 1;
			break;
		}
		size_t len = (size_t)(nl - line);
		start += len + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len > ADMIN_LINE_MAX)
			rc = too_long(c) < 0 ? -1 : 1;
		else
			rc = command(c, line, len);
		if (rc < 0) {
			c->a->st.overflows++;
			*why = "not reading its replies (" "the output limit passed)";
			return -1;
		}
		if (flush(c) < 0) {
			*why = "write error";
			return -1;
		}
	}
	if (rc == 1 && begin_closing(c) < 0) { /* quit, or a line too long */
		*why = NULL;
		return -1;
	}
	if (c->closing) {
		c->inlen = 0; /* the rest is never run */
	} else if (start > 0) {
		memmove(c->in, c->in + start, c->inlen - start);
		c->inlen -= start;
	}
	return 0;
}

/* Discard input until EOF: the replies are written and our FIN is sent. */
static void
discard(struct client *c)
{
	char junk[4096];
	for (int i = 0; i < READ_ROUNDS; i++) {
		ssize_t r = read(c->fd, junk, sizeof junk);
		if (r > 0 || (r < 0 && errno == EINTR))
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		client_free(c, NULL); /* EOF (or an error): done */
		return;
	}
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = w->data;
	const char *why = NULL;
	(void)revents;
	if (c->shut) {
		discard(c);
		return;
	}
	for (int i = 0; i < READ_ROUNDS && !c->closing; i++) {
		ssize_t r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
		if (r > 0) {
			c->inlen += (size_t)r;
			if (lines(c, &why) < 0) {
				client_free(c, why);
				return;
			}
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r < 0) {
			client_free(c, NULL); /* reset by the peer: nothing to say */
			return;
		}
		/* EOF: a last line without its end still runs */
		c->eof = 1;
		if (c->inlen > 0) {
			c->in[c->inlen++] = '\n'; /* room: lines left no full buffer */
			if (lines(c, &why) < 0) {
				client_free(c, why);
				return;
			}
		}
		if (begin_closing(c) < 0) {
			client_free(c, NULL);
			return;
		}
	}
	if (c->closing) {
		ev_io_stop(loop, &c->rio); /* the replies first: finish */
		if (finish(c) < 0)
			client_free(c, NULL);
	}
}

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = w->data;
	(void)loop;
	(void)revents;
	if (flush(c) < 0) {
		client_free(c, c->closing ? NULL : "write error");
		return;
	}
	if (c->closing && finish(c) < 0)
		client_free(c, NULL);
}

static void
client_open(admin_t *a, int fd)
{
	struct client *c = calloc(1, sizeof *c);
	int refuse = a->nactive >= a->max_clients;
	a->st.accepted++;
	if (refuse)
		a->st.refused++;
	if (!c || (refuse && a->nclosing >= CLOSING_MAX)) {
		/* no room even to say why */
		if (refuse)
			(void)send(fd, too_many, sizeof too_many - 1, MSG_NOSIGNAL);
		log_warn("admin: connection refused: %s", c ? "too many admin "
		         "clients" : "out of memory");
		free(c);
		close(fd);
		return;
	}
	c->a = a;
	c->fd = fd;
	c->id = ++a->next_id;
	ev_io_init(&c->rio, read_cb, fd, EV_READ);
	ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
	ev_timer_init(&c->wait, wait_cb, CLOSE_WAIT_S, 0.);
	c->rio.data = c->wio.data = c->wait.data = c;
	c->next = a->clients;
	if (a->clients)
		a->clients->prev = c;
	a->clients = c;
	if (refuse) {
		log_warn("admin: client %u refused: too many admin clients (%d)",
		         c->id, a->max_clients);
		out_reserve(c, sizeof too_many);
		if (c->out)
			out_put(c, too_many, sizeof too_many - 1);
		if (begin_closing(c) < 0 || flush(c) < 0 || finish(c) < 0)
			client_free(c, NULL);
		return;
	}
	c->active = 1;
	a->nactive++;
	a->st.clients = (uint64_t)a->nactive;
	log_debug("admin: client %u connected", c->id);
	ev_io_start(a->loop, &c->rio);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	admin_t *a = w->data;
	(void)revents;
	for (int i = 0; i < ACCEPT_MAX; i++) {
		int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			client_open(a, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* the connection waits in the backlog: rest, do not spin */
			log_warn("admin: accept: %s", strerror(errno));
			ev_io_stop(loop, &a->lio);
			ev_timer_start(loop, &a->pause);
		}
		return;
	}
}

static void
pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	admin_t *a = w->data;
	(void)revents;
	ev_io_start(loop, &a->lio);
}

/* ---- listening ---------------------------------------------------------- */

static int
listen_unix(admin_t *a, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1); /* fits: admin_addr_parse */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "unix:%s exists and is not a socket (not "
			         "removed)", path);
			return -1;
		}
		/* a socket file: stale unless something still listens there */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                   0);
		int rc = probe < 0 ? -1 : connect(probe, (struct sockaddr *)&sa,
		                                  sizeof sa);
		int e = errno;
		if (probe >= 0)
			close(probe);
		if (rc == 0 || (e != ECONNREFUSED && e != ENOENT)) {
			snprintf(err, errlen, "unix:%s: another process listens there "
			         "(give each server its own admin address)", path);
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			snprintf(err, errlen, "unix:%s: cannot remove the stale socket: %s",
			         path, strerror(errno));
			return -1;
		}
		log_info("admin: removed the stale socket %s", path);
	}
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* owner only: the console reloads code. umask is per process, and the
	 * process has one thread. */
	mode_t old = umask(0177);
	int rc = bind(a->fd, (struct sockaddr *)&sa, sizeof sa);
	int e = errno;
	umask(old);
	if (rc < 0) {
		snprintf(err, errlen, "unix:%s: bind: %s", path, strerror(e));
		return -1;
	}
	if (stat(path, &st) == 0) {
		a->dev = st.st_dev;
		a->ino = st.st_ino;
	}
	a->is_unix = 1;
	memcpy(a->path, path, strlen(path) + 1);
	snprintf(a->where, sizeof a->where, "unix %s", path);
	return 0;
}

static int
listen_tcp(admin_t *a, const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char ps[16];
	int one = 1;
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof ps, "%d", port);
	int rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	a->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	               0);
	if (a->fd < 0 ||
	    setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(a->fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    getsockname(a->fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(err, errlen, "tcp %s port %d: %s", host, port,
		         strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	int bound = ntohs(ss.ss_family == AF_INET6
	                  ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                  : ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(a->where, sizeof a->where, "tcp %s %d", host, bound);
	return 0;
}

admin_t *
admin_create(struct ev_loop *loop, const struct admin_addr *addr,
             int max_clients, admin_run_fn run, void *user, char *err,
             size_t errlen)
{
	admin_t *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->loop = loop;
	a->fd = -1;
	a->max_clients = max_clients > 0 ? max_clients : 1;
	a->run = run;
	a->user = user;
	int rc = addr->is_unix ? listen_unix(a, addr->path, err, errlen)
	                       : listen_tcp(a, addr->host, addr->port, err, errlen);
	if (rc == 0 && listen(a->fd, 16) < 0) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		rc = -1;
	}
	if (rc < 0) {
		admin_release(a);
		return NULL;
	}
	ev_io_init(&a->lio, accept_cb, a->fd, EV_READ);
	a->lio.data = a;
	ev_timer_init(&a->pause, pause_cb, ACCEPT_PAUSE, 0.);
	a->pause.data = a;
	ev_io_start(loop, &a->lio);
	return a;
}

void
admin_release(admin_t *a)
{
	struct stat st;
	if (!a)
		return;
	while (a->clients)
		client_free(a->clients, NULL);
	if (a->fd >= 0) {
		ev_io_stop(a->loop, &a->lio);
		ev_timer_stop(a->loop, &a->pause);
		close(a->fd);
	}
	/* only our own socket file: another process may have taken the path */
	if (a->is_unix && stat(a->path, &st) == 0 && st.st_dev == a->dev &&
	    st.st_ino == a->ino)
		unlink(a->path);
	free(a);
}

const char *
admin_where(const admin_t *a)
{
	return a->where;
}

void
admin_stats(const admin_t *a, struct admin_stats *st)
{
	*st = a->st;
}
