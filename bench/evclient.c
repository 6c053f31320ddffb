/*
 * evclient.c - a libmoongate-client session on a libev loop (evclient.h).
 */
#include "evclient.h"

static void
on_io(struct ev_loop *l, ev_io *w, int revents)
{
	(void)l, (void)revents;
	evclient_service(w->data);
}

/* A timer, not readiness: with one socket, watched by e->io, there is
 * nothing to read (libev would have called on_io first in this loop
 * iteration), so the poll need not ask the kernel. */
void
evclient_refresh(struct evclient *e)
{
	int fds[2];
	if (e->done)
		return;
	e->tick = e->fd >= 0 && !ev_is_pending(&e->io) &&
	          mgclient_fds(e->c, fds) == 1 && fds[0] == e->fd;
	evclient_service(e);
	e->tick = 0;
}

static void
on_timer(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l, (void)revents;
	evclient_refresh(w->data);
}

int
evclient_start(struct evclient *e, struct ev_loop *loop, const char *url,
               const void *hello, size_t hello_len,
               const struct mgclient_options *opts, char *err, size_t errlen)
{
	e->loop = loop;
	e->fd = -1;
	e->c = mgclient_connect(url, hello, hello_len, opts, err, errlen);
	if (!e->c) {
		e->done = 1;
		return -1;
	}
	e->fd = mgclient_fd(e->c);
	ev_io_init(&e->io, on_io, e->fd, EV_READ);
	e->io.data = e;
	ev_timer_init(&e->tm, on_timer, 0, 0);
	e->tm.data = e;
	if (e->fd >= 0)
		ev_io_start(loop, &e->io);
	evclient_arm(e, mgclient_now());
	return 0;
}

void
evclient_arm(struct evclient *e, uint64_t now)
{
	if (e->done)
		return;
	uint64_t due = mgclient_check(e->c, now);
	if (ev_is_active(&e->tm) && due >= e->due)
		return;
	e->due = due;
	ev_timer_stop(e->loop, &e->tm);
	ev_timer_set(&e->tm, due > now ? (double)(due - now) / 1e6 : 0, 0);
	ev_timer_start(e->loop, &e->tm);
}

void
evclient_service(struct evclient *e)
{
	if (e->done)
		return;
	uint64_t now = mgclient_now();
	if (e->tick)
		mgclient_tick(e->c, now);
	else
		mgclient_poll(e->c, now);
	struct mgclient_event ev;
	while (!e->done && mgclient_next_event(e->c, &ev))
		e->on_event(e, &ev, now);
	if (!e->done && e->after)
		e->after(e, now);
	/* the library closes the socket with the session: stop watching it
	 * before the number can be reused */
	if (e->fd >= 0 && mgclient_fd(e->c) != e->fd) {
		ev_io_stop(e->loop, &e->io);
		e->fd = -1;
	}
	if (!e->done)
		evclient_arm(e, now);
}

void
evclient_stop(struct evclient *e)
{
	if (e->done && e->fd < 0)
		return;
	e->done = 1;
	if (e->fd >= 0)
		ev_io_stop(e->loop, &e->io);
	e->fd = -1;
	if (e->c)
		ev_timer_stop(e->loop, &e->tm);
}

