/*
 * steer.c - which transport carries the session (steer.h). Only a url
 * naming both (mode URL_AUTO) moves between them; any mode reconnects
 * while offline.
 */
#include <stdio.h>

#include "steer.h"
#include "stream.h"
#include "url.h"

static uint64_t
ms_us(int ms)
{
	return (uint64_t)(ms > 0 ? ms : 0) * 1000;
}

void
steer_use(mgclient_t *c, uint32_t path)
{
	session_path_use(c->s, path, c->now);
	c->since = c->now;
	if (c->cur == path)
		return;
	c->cur = path;
	if (session_state(c->s) == SESSION_OPEN && !session_offline(c->s))
		client_queue(c, MGCLIENT_PATH, NULL, 0, 0, transport_of(path));
}

void
steer_opened(mgclient_t *c)
{
	c->since = c->now;
	c->next_probe = c->now + (uint64_t)c->o.probe_ms * 1000;
}

void
steer_resumed(mgclient_t *c, uint32_t path)
{
	c->cur = path;
	steer_opened(c);
}

void
steer_offline(mgclient_t *c)
{
	c->next_knock = c->now; /* at once */
}

void
steer_probed(mgclient_t *c, uint32_t path)
{
	/* UDP answers again: back to it; TCP goes a little later */
	if (path == PATH_UDP && c->cur == PATH_TCP) {
		steer_use(c, PATH_UDP);
		session_ping(c->s, c->now); /* the server follows at once */
		c->tcp_close_at = c->now + (uint64_t)c->o.tcp_linger_ms * 1000;
	}
}

void
steer_lost(mgclient_t *c, struct tport *t)
{
	uint32_t path = t == &c->tcp ? PATH_TCP : PATH_UDP;
	int code = t->fail_code;
	char why[64];
	snprintf(why, sizeof why, "%s", t->fail);
	tport_close(t);
	if (session_state(c->s) == SESSION_HANDSHAKE) {
		struct tport *o = path == PATH_TCP ? &c->udp : &c->tcp;
		if (c->mode == URL_AUTO && o->fd >= 0) {
			/* the other transport carries the handshake on; the next
			 * fallback waits fallback_ms again */
			steer_use(c, path == PATH_TCP ? PATH_UDP : PATH_TCP);
			session_rehello(c->s, c->now);
			c->started = c->now;
			return;
		}
		session_abort(c->s, code, why, c->now);
		return;
	}
	uint32_t before = session_path(c->s);
	session_path_lost(c->s, path, code, why, c->now);
	uint32_t after = session_path(c->s);
	if (after != before && !session_offline(c->s))
		steer_use(c, after);
}

/* Offline: fresh sockets on every transport, a knock on each (a PING, or
 * the CLOSE of a session closed while offline: session_ping). */
static void
knock(mgclient_t *c)
{
	c->next_knock = c->now + ms_us(c->o.reconnect_ms);
	if (c->tcp.have_addr && tport_open(&c->tcp, NULL, 0) == 0) {
		session_path_use(c->s, PATH_TCP, c->now);
		session_ping(c->s, c->now);
	}
	if (c->udp.have_addr && tport_open(&c->udp, NULL, 0) == 0) {
		session_path_use(c->s, PATH_UDP, c->now);
		session_ping(c->s, c->now);
	}
	c->cur = session_path(c->s);
}

uint64_t
steer_due(const mgclient_t *c, uint64_t now)
{
	uint64_t far = now + 3600 * 1000000ull, due = far;
	int st = session_state(c->s);
	if (c->ended || st == SESSION_CLOSED)
		return far;
	if (session_offline(c->s)) /* closing too: the knocks carry the CLOSE */
		return c->next_knock;
	if (st == SESSION_CLOSING)
		return far;
	if (c->mode != URL_AUTO)
		return far;
	if (st == SESSION_HANDSHAKE)
		return c->tcp.fd < 0 ? c->started + ms_us(c->o.fallback_ms) : far;
	if (c->cur == PATH_UDP) {
		uint64_t heard = session_last_recv(c->s, PATH_UDP);
		if (heard < c->since)
			heard = c->since;
		due = heard + ms_us(c->o.path_timeout_ms);
		if (c->tcp_close_at && c->tcp_close_at < due)
			due = c->tcp_close_at;
	} else {
		due = c->next_probe;
	}
	return due;
}

void
steer(mgclient_t *c)
{
	uint64_t now = c->now;
	if (steer_due(c, now) > now)
		return;
	int st = session_state(c->s);
	if (session_offline(c->s)) {
		knock(c);
		return;
	}
	if (st == SESSION_HANDSHAKE) {
		/* no answer on UDP: the handshake goes on over TCP too */
		if (tport_open(&c->tcp, NULL, 0) == 0) {
			steer_use(c, PATH_TCP);
			session_rehello(c->s, now);
		} else {
			c->started = now; /* try again later */
		}
		return;
	}
	if (c->cur == PATH_UDP) {
		if (c->tcp_close_at && now >= c->tcp_close_at) {
			c->tcp_close_at = 0;
			if (c->tcp.fd >= 0 && !stream_pending(&c->tcp)) {
				tport_close(&c->tcp);
				session_path_lost(c->s, PATH_TCP, 0, "", now);
			}
		}
		uint64_t heard = session_last_recv(c->s, PATH_UDP);
		if (heard < c->since)
			heard = c->since;
		if (now < heard + ms_us(c->o.path_timeout_ms))
			return;
		/* UDP went quiet: over to TCP, and say so at once */
		if (c->tcp.fd < 0 && tport_open(&c->tcp, NULL, 0) < 0) {
			c->since = now;
			return;
		}
		c->tcp_close_at = 0;
		steer_use(c, PATH_TCP);
		session_ping(c->s, now);
		c->next_probe = now + ms_us(c->o.probe_ms);
		return;
	}
	/* on TCP: does UDP answer again? */
	c->next_probe = now + ms_us(c->o.probe_ms);
	if (c->udp.fd < 0 && tport_open(&c->udp, NULL, 0) < 0)
		return;
	session_probe(c->s, PATH_UDP, now);
}
