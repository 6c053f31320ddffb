/*
 * admin.c - the admin console (see admin.h): its line protocol and limits
 * on a stream listener of net (net.h), which owns the sockets, the accept
 * loop, the output queue and graceful close.
 *
 * A client's input goes into a buffer of one line (ADMIN_LINE_MAX plus
 * "\r\n"); every complete line runs at once and its framed reply is
 * queued with net_stream_send, written as the socket takes it. Past
 * ADMIN_OUT_MAX bytes unread the send fails and the client is closed.
 * A command whose reply comes later (ADMIN_PENDING) leaves its ticket in
 * c->pending: the lines after it stay in the buffer (which then holds more
 * than one line, up to its size; past it the client is closed) until
 * admin_answer sends the reply and runs them. A peer's EOF meanwhile is
 * noted (c->eof) and acted on once nothing waits.
 *
 * Closing (quit, a line too long, EOF, a refusal) is net's graceful close
 * of a stream: the queued replies are written, then our FIN, then input
 * is read and thrown away until the peer's EOF, all within CLOSE_WAIT_MS.
 * Closing with unread input would make the kernel reset the connection
 * (TCP sends an RST, a Unix socket reports ECONNRESET), and the peer could
 * lose the reply that says why. At most CLOSING_MAX wait at once; past
 * that one is closed at once. A client's state here ends when it closes:
 * net's id is stale from then on.
 *
 * Re-entrancy: net calls in only from the loop; a client is freed where
 * it is closed, and nothing touches it after (lines() says so by its -1);
 * the run callback never sees a client.
 */
#include "admin.h"
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define CLOSE_WAIT_MS 2000  /* a closing client: replies written and EOF read
                               within this, or it is closed anyway */
#define CLOSING_MAX 16      /* closing clients waiting at once */
#define LOG_TEXT_MAX 160    /* bytes of a command or an error in the log */

static const char too_many[] = "error: too many admin clients\n\n";

struct client {
	admin_t *a;
	uint32_t conn;           /* net's id */
	unsigned id;             /* for the log */
	struct client *prev, *next;
	uint64_t pending;        /* the ticket of the command whose reply comes
	                            later (0: none); the next lines wait */
	int eof;                 /* the peer's EOF came while one waited */
	char pending_line[LOG_TEXT_MAX + 1]; /* that command, for the log */
	size_t inlen;            /* bytes in in */
	char in[ADMIN_LINE_MAX + 2];
};

struct admin {
	net_t *net;
	int lis;                 /* net's stream listener */
	int max_clients;
	int nactive;
	unsigned next_id;
	uint64_t next_ticket;    /* the last ticket given to a command */
	struct client *clients;
	admin_run_fn run;
	void *user;
	char where[160];
	struct admin_stats st;
	char reply[ADMIN_REPLY_MAX]; /* the run callback's output */
	char out[ADMIN_REPLY_MAX + 32]; /* one framed reply of it */
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

/* Forget c (net closed it, or is closing it). */
static void
forget(struct client *c, const char *why)
{
	admin_t *a = c->a;
	if (c->prev)
		c->prev->next = c->next;
	else
		a->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nactive--;
	a->st.clients = (uint64_t)a->nactive;
	if (c->pending) /* its reply, when it comes, finds nobody */
		a->st.waiting--;
	if (why)
		log_warn("admin: client %u closed: %s", c->id, why);
	else
		log_debug("admin: client %u closed", c->id);
	free(c);
}

/* No more commands from c: net closes it (mode), c is freed. */
static void
client_close(struct client *c, int mode, const char *why)
{
	net_stream_close(c->a->net, c->conn, mode);
	forget(c, why);
}

/* Queue text as one framed reply: its non-empty lines ("\r" before a line
 * end dropped), the first one after "error: " when err, then the empty
 * line. Nothing to say: "ok" (or "error: failed"). net_stream_send's
 * answer: 0, -1 a write failed, -2 the output limit passed. */
static int
reply(struct client *c, int err, const char *text)
{
	admin_t *a = c->a;
	size_t n = strlen(text), o = 0;
	int lines = 0;
	const char *p = text, *end = text + n;
	/* text is at most ADMIN_REPLY_MAX - 1 bytes (the run callback's
	 * buffer) or a literal; framing adds at most 9 */
	if (n + 16 > sizeof a->out)
		n = sizeof a->out - 16, end = text + n;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		size_t len = (size_t)(e - p);
		while (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0) {
			if (err && lines == 0 && strncmp(p, "error: ", 7)) {
				memcpy(a->out + o, "error: ", 7);
				o += 7;
			}
			memcpy(a->out + o, p, len);
			o += len;
			a->out[o++] = '\n';
			lines++;
		}
		p = nl ? nl + 1 : end;
	}
	if (lines == 0) {
		const char *s = err ? "error: failed\n" : "ok\n";
		memcpy(a->out + o, s, strlen(s));
		o += strlen(s);
	}
	a->out[o++] = '\n';
	return net_stream_send(a->net, c->conn, a->out, o);
}

/* The reply of a command (line: its log text): logged, then queued.
 * reply's answer. */
static int
finish(struct client *c, const char *line, int rc)
{
	admin_t *a = c->a;
	char l2[LOG_TEXT_MAX + 1];
	a->reply[sizeof a->reply - 1] = 0;
	if (rc == 0 && !strcmp(line, "help")) { /* the console's own command */
		size_t n = strlen(a->reply);
		snprintf(a->reply + n, sizeof a->reply - n, "%squit: close this "
		         "connection", n ? "\n" : "");
	}
	if (rc == 0)
		log_info("admin: %s -> ok", line);
	else
		log_info("admin: %s -> error: %s", line,
		         log_text(a->reply, l2, sizeof l2));
	return reply(c, rc != 0, a->reply);
}

/* Run one line (its end removed). 0 (c->pending set when its reply comes
 * later), 1 after quit, or reply's failure. */
static int
command(struct client *c, char *line, size_t len)
{
	admin_t *a = c->a;
	char l1[LOG_TEXT_MAX + 1];
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	line[len] = 0;
	a->st.commands++;
	if (len == 0) /* an empty reply: the terminator alone */
		return net_stream_send(a->net, c->conn, "\n", 1);
	if (memchr(line, 0, len)) {
		log_info("admin: a line with a NUL byte -> error");
		return reply(c, 1, "a NUL byte in the line");
	}
	if (!strcmp(line, "quit")) {
		log_info("admin: quit -> ok");
		int rc = reply(c, 0, "bye");
		return rc < 0 ? rc : 1;
	}
	uint64_t ticket = ++a->next_ticket;
	a->reply[0] = 0;
	int rc = a->run(line, ticket, a->reply, sizeof a->reply, a->user);
	if (rc == ADMIN_PENDING) {
		c->pending = ticket;
		a->st.waiting++;
		log_text(line, c->pending_line, sizeof c->pending_line);
		return 0;
	}
	return finish(c, log_text(line, l1, sizeof l1), rc);
}

static int
too_long(struct client *c)
{
	c->a->st.too_long++;
	log_warn("admin: client %u: line too long (more than %d bytes): closing",
	         c->id, ADMIN_LINE_MAX);
	int rc = reply(c, 1, "line too long");
	return rc < 0 ? rc : 1;
}

/* After a reply was queued with answer rc (0; 1: close after it; -1 a
 * write failed; -2 the output limit passed): close c when it says so. 0,
 * or -1: c is closed and freed. */
static int
settle(struct client *c, int rc)
{
	if (rc == -2) {
		c->a->st.overflows++;
		client_close(c, NET_CLOSE_RESET, "not reading its replies (the "
		             "output limit passed)");
		return -1;
	}
	if (rc < 0) {
		client_close(c, NET_CLOSE_RESET, "write error");
		return -1;
	}
	if (rc == 1) { /* quit, or a line too long: the rest is never run */
		client_close(c, NET_CLOSE_GRACEFUL, NULL);
		return -1;
	}
	return 0;
}

/* Run every complete line in c->in, until one's reply comes later; after
 * the peer's EOF, close once nothing waits. 0, or -1: c is closed and
 * freed. */
static int
lines(struct client *c)
{
	size_t start = 0;
	int rc = 0;
	while (rc == 0 && !c->pending) {
		char *line = c->in + start;
		char *nl = memchr(line, '\n', c->inlen - start);
		if (!nl) {
			/* a full buffer and no line end: longer than a line may be */
			if (start == 0 && c->inlen == sizeof c->in)
				rc = too_long(c);
			break;
		}
		size_t len = (size_t)(nl - line);
		start += len + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len > ADMIN_LINE_MAX)
			rc = too_long(c);
		else
			rc = command(c, line, len);
	}
	if (settle(c, rc) < 0)
		return -1;
	if (start > 0) {
		memmove(c->in, c->in + start, c->inlen - start);
		c->inlen -= start;
	}
	if (c->eof && !c->pending) {
		client_close(c, NET_CLOSE_GRACEFUL, NULL);
		return -1;
	}
	return 0;
}

static void *
on_accept(uint32_t conn, void *user)
{
	admin_t *a = user;
	struct client *c;
	a->st.accepted++;
	if (a->nactive >= a->max_clients) {
		/* told why; net writes it, then closes (at once when too many
		 * are closing already) */
		a->st.refused++;
		log_warn("admin: client %u refused: too many admin clients (%d)",
		         ++a->next_id, a->max_clients);
		net_stream_send(a->net, conn, too_many, sizeof too_many - 1);
		net_stream_close(a->net, conn, NET_CLOSE_GRACEFUL);
		return NULL;
	}
	if (!(c = calloc(1, sizeof *c))) {
		log_warn("admin: connection refused: out of memory");
		net_stream_close(a->net, conn, NET_CLOSE_RESET);
		return NULL;
	}
	c->a = a;
	c->conn = conn;
	c->id = ++a->next_id;
	c->next = a->clients;
	if (a->clients)
		a->clients->prev = c;
	a->clients = c;
	a->nactive++;
	a->st.clients = (uint64_t)a->nactive;
	log_debug("admin: client %u connected", c->id);
	return c;
}

/* More input than the buffer holds behind a command that waits (lines()
 * leaves room otherwise): told, and closed. */
static void
overrun(struct client *c)
{
	c->a->st.too_long++;
	log_warn("admin: client %u: more than %zu bytes sent behind a command "
	         "that waits: closing", c->id, sizeof c->in);
	int rc = reply(c, 1, "too much input behind a command that waits (send "
	               "the next command after its reply)");
	settle(c, rc < 0 ? rc : 1);
}

static void
on_data(uint32_t conn, void *ctx, const uint8_t *p, size_t len, void *user)
{
	struct client *c = ctx;
	(void)conn, (void)user;
	if (!c)
		return;
	if (len == 0) {
		/* EOF: a last line without its end still runs; the client is
		 * closed once every line was answered (lines()) */
		c->eof = 1;
		if (c->inlen > 0 && c->in[c->inlen - 1] != '\n') {
			if (c->inlen == sizeof c->in) {
				overrun(c);
				return;
			}
			c->in[c->inlen++] = '\n';
		}
		lines(c);
		return;
	}
	while (len > 0) {
		size_t room = sizeof c->in - c->inlen;
		if (room == 0) {
			overrun(c);
			return;
		}
		size_t k = len < room ? len : room;
		memcpy(c->in + c->inlen, p, k);
		c->inlen += k;
		p += k;
		len -= k;
		if (lines(c) < 0)
			return;
	}
}

/* net closed c: a reset or a write error. */
static void
on_closed(uint32_t conn, void *ctx, const char *reason, void *user)
{
	struct client *c = ctx;
	(void)conn, (void)user;
	if (!c)
		return;
	log_debug("admin: client %u: %s", c->id, reason);
	forget(c, NULL);
}

/* ---- the console -------------------------------------------------------- */

admin_t *
admin_create(struct net *n, const struct admin_addr *addr, int max_clients,
             admin_run_fn run, void *user, char *err, size_t errlen)
{
	static const struct net_stream_callbacks cb = {
		on_accept, on_data, on_closed,
	};
	struct net_stream_config sc;
	int port = 0;
	admin_t *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->net = n;
	a->max_clients = max_clients > 0 ? max_clients : 1;
	a->run = run;
	a->user = user;
	memset(&sc, 0, sizeof sc);
	sc.path = addr->is_unix ? addr->path : NULL;
	sc.host = addr->host;
	sc.port = addr->port;
	sc.backlog = 16;
	sc.out_max = ADMIN_OUT_MAX;
	sc.closing_max = CLOSING_MAX;
	sc.close_wait_ms = CLOSE_WAIT_MS;
	a->lis = net_stream_listen(n, &sc, &cb, a, &port, err, errlen);
	if (a->lis < 0) {
		free(a);
		return NULL;
	}
	if (addr->is_unix)
		snprintf(a->where, sizeof a->where, "unix %s", addr->path);
	else
		snprintf(a->where, sizeof a->where, "tcp %s %d", addr->host, port);
	return a;
}

void
admin_release(admin_t *a)
{
	if (!a)
		return;
	/* every client closed at once, no callback; the socket file removed */
	net_stream_unlisten(a->net, a->lis);
	while (a->clients) {
		struct client *c = a->clients;
		a->clients = c->next;
		log_debug("admin: client %u closed", c->id);
		free(c);
	}
	free(a);
}

int
admin_answer(admin_t *a, uint64_t ticket, int err, const char *text)
{
	struct client *c = a ? a->clients : NULL;
	while (c && (!ticket || c->pending != ticket))
		c = c->next;
	if (!c) {
		log_debug("admin: a reply for a client gone was dropped");
		return -1;
	}
	c->pending = 0;
	a->st.waiting--;
	snprintf(a->reply, sizeof a->reply, "%s", text ? text : "");
	if (settle(c, finish(c, c->pending_line, err ? -1 : 0)) == 0)
		lines(c); /* what waited behind it */
	return 0;
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
