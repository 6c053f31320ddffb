/*
 * netem_control.c - the control channel of moongate-netem, server side
 * (netem.h): a line-based TCP protocol, one command per line and exactly
 * one reply line to each, "ok ..." or "error ...". Every command and
 * reply is logged on stderr.
 *
 * A client that ends inside one of its callbacks is unlinked and its
 * watchers stopped at once (ctl_close), and freed by control_reap from
 * the prepare watcher.
 */
#include "netem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static void
ctl_close(struct ctl *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	ev_io_stop(G.loop, &c->rio);
	ev_io_stop(G.loop, &c->wio);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		G.ctls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = G.dead_ctls;
	G.dead_ctls = c;
	G.nctls--;
}

static void
ctl_flush(struct ctl *c)
{
	size_t off = 0;
	while (off < c->outlen) {
		ssize_t n = send(c->fd, c->out + off, c->outlen - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			ctl_close(c);
			return;
		}
		off += (size_t)n;
	}
	memmove(c->out, c->out + off, c->outlen - off);
	c->outlen -= off;
	io_want(&c->wio, c->outlen > 0);
}

static void __attribute__((format(printf, 2, 3)))
ctl_reply(struct ctl *c, const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	note("control: -> %s", line);
	line[n++] = '\n';
	if (c->outlen + (size_t)n > CTL_OUT_MAX) {
		note("control: a client reads no replies: dropped");
		ctl_close(c);
		return;
	}
	if (c->outlen + (size_t)n > c->outcap) {
		size_t cap = c->outcap ? c->outcap * 2 : 8192;
		while (cap < c->outlen + (size_t)n)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (!p) {
			ctl_close(c);
			return;
		}
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, line, (size_t)n);
	c->outlen += (size_t)n;
	ctl_flush(c);
}

static void
ctl_stats(struct ctl *c)
{
	static const char *dname[2] = { "up", "down" };
	char buf[3072];
	size_t len = 0;
	uint64_t held[2];
	tcp_held(held);
	for (int d = 0; d < 2; d++) {
		const struct dstats *s = &G.udp_st[d];
		const char *n = dname[d];
		len += (size_t)snprintf(buf + len, sizeof buf - len,
		    "udp_%s_recv=%" PRIu64 " udp_%s_sent=%" PRIu64
		    " udp_%s_bytes=%" PRIu64 " udp_%s_dropped=%" PRIu64
		    " udp_%s_overflow=%" PRIu64 " udp_%s_duplicated=%" PRIu64
		    " udp_%s_reordered=%" PRIu64 " udp_%s_errors=%" PRIu64 " ",
		    n, s->recv, n, s->sent, n, s->bytes, n, s->dropped, n,
		    s->overflow, n, s->duplicated, n, s->reordered, n, s->errors);
	}
	snprintf(buf + len, sizeof buf - len,
	    "udp_queued=%" PRIu32 " udp_mappings=%d udp_mappings_total=%" PRIu64
	    " udp_mappings_expired=%" PRIu64 " udp_mappings_refused=%" PRIu64
	    " udp_rebinds=%" PRIu64 " tcp_conns=%d tcp_conns_total=%" PRIu64
	    " tcp_refused=%" PRIu64 " tcp_connect_failed=%" PRIu64
	    " tcp_errors=%" PRIu64 " tcp_cut=%" PRIu64 " tcp_reset=%" PRIu64
	    " tcp_up_bytes=%" PRIu64 " tcp_down_bytes=%" PRIu64
	    " tcp_up_held=%" PRIu64 " tcp_down_held=%" PRIu64,
	    G.queue.n, G.nmaps, G.maps_total, G.maps_expired, G.maps_refused,
	    G.rebinds, G.nconns, G.tcp_total, G.tcp_refused, G.tcp_connect_failed,
	    G.tcp_errors, G.tcp_cut, G.tcp_reset, G.tcp_bytes[NETEM_UP],
	    G.tcp_bytes[NETEM_DOWN], held[NETEM_UP], held[NETEM_DOWN]);
	ctl_reply(c, "ok %s", buf);
}

#define COMMANDS "set clear show stats rebind cut reset stall unstall quit help"

/* One command line; exactly one reply. */
static void
ctl_command(struct ctl *c, char *line)
{
	char *cmd = line + strspn(line, " \t");
	size_t cl = strcspn(cmd, " \t");
	char *args = cmd + cl + strspn(cmd + cl, " \t");
	if (!*cmd)
		return;                  /* an empty line is no command */
	if (cmd[cl])
		cmd[cl] = 0;
	note("control: <- %s%s%s", cmd, *args ? " " : "", args);
	if (!strcmp(cmd, "set")) {
		char err[512];
		if (netem_settings_apply(&G.set, args, err, sizeof err) < 0) {
			ctl_reply(c, "error %s", err);
			return;
		}
		tcp_update_all();
		ctl_reply(c, "ok");
		return;
	}
	if (*args) {
		ctl_reply(c, "error %s takes no argument", cmd);
		return;
	}
	if (!strcmp(cmd, "clear")) {
		netem_settings_clear(&G.set);
		tcp_update_all();
		ctl_reply(c, "ok");
	} else if (!strcmp(cmd, "show")) {
		char buf[2048];
		netem_settings_format(&G.set, buf, sizeof buf);
		ctl_reply(c, "ok %s", buf);
	} else if (!strcmp(cmd, "stats")) {
		ctl_stats(c);
	} else if (!strcmp(cmd, "rebind")) {
		int failed, err = 0;
		int n = udp_rebind(&failed, &err);
		if (failed)
			ctl_reply(c, "error rebind: %d of %d mappings kept their "
			          "socket: %s", failed, n + failed, strerror(err));
		else
			ctl_reply(c, "ok rebound=%d", n);
	} else if (!strcmp(cmd, "cut") || !strcmp(cmd, "reset")) {
		int n = cmd[0] == 'c' ? tcp_cut_all() : tcp_reset_all();
		ctl_reply(c, "ok %s=%d", cmd, n);
	} else if (!strcmp(cmd, "stall") || !strcmp(cmd, "unstall")) {
		G.set.stall = cmd[0] == 's';
		tcp_update_all();
		ctl_reply(c, "ok");
	} else if (!strcmp(cmd, "quit")) {
		ctl_reply(c, "ok bye");
		ev_break(G.loop, EVBREAK_ALL);
	} else if (!strcmp(cmd, "help")) {
		ctl_reply(c, "ok commands: " COMMANDS);
	} else {
		ctl_reply(c, "error unknown command '%.64s' (commands: " COMMANDS ")",
		          cmd);
	}
}

static void
on_ctl_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	struct ctl *c = w->data;
	ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	               errno != EINTR)) {
		ctl_close(c);
		return;
	}
	if (n < 0)
		return;
	c->inlen += (size_t)n;
	char *nl;
	while (!c->dead && (nl = memchr(c->in, '\n', c->inlen))) {
		*nl = 0;
		if (nl > c->in && nl[-1] == '\r')
			nl[-1] = 0;
		ctl_command(c, c->in);
		size_t used = (size_t)(nl + 1 - c->in);
		memmove(c->in, nl + 1, c->inlen - used);
		c->inlen -= used;
	}
	if (!c->dead && c->inlen == sizeof c->in) {
		ctl_reply(c, "error line too long (max %d bytes)", CTL_LINE_MAX - 1);
		ctl_close(c);
	}
}

static void
on_ctl_write(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	ctl_flush(w->data);
}

void
control_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	int fd = accept4(G.ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ctl *c = G.nctls < CTL_MAX ? calloc(1, sizeof *c) : NULL;
	if (!c) {
		note("control: over %d clients: refused", CTL_MAX);
		close(fd);
		return;
	}
	c->fd = fd;
	ev_io_init(&c->rio, on_ctl_read, fd, EV_READ);
	ev_io_init(&c->wio, on_ctl_write, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_io_start(G.loop, &c->rio);
	c->next = G.ctls;
	if (G.ctls)
		G.ctls->prev = c;
	G.ctls = c;
	G.nctls++;
}

void
control_close_all(void)
{
	while (G.ctls)
		ctl_close(G.ctls);
	control_reap();
}

void
control_reap(void)
{
	while (G.dead_ctls) {
		struct ctl *c = G.dead_ctls;
		G.dead_ctls = c->next;
		free(c->out);
		free(c);
	}
}
