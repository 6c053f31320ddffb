/*
 * redis.c - a Redis client on the server's libev loop (redis.h): hiredis's
 * async context with its libev adapter.
 *
 * Calls in flight are kept oldest first (Redis answers in order), each with
 * the time it was sent; a check timer runs while any is in flight: a call
 * older than timeout_ms fails ("timeout"), its reply dropped when it comes;
 * when the oldest has waited twice that, the connection is taken as stuck
 * and dropped (every call in flight fails, a reconnect follows). The setup
 * of a connection (AUTH, SELECT, PING) runs first in the pipeline; the
 * client is "up" when the PING is answered.
 */
#include "redis.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libev.h>

#include "log.h"
#include "net.h"

struct call {
	struct call *next, *prev;
	redis_t *r;
	uint64_t arg;
	uint64_t sent_us;
	uint8_t failed;   /* timed out: its reply is dropped */
	uint8_t setup;    /* AUTH / SELECT / PING of the connection */
};

struct sub {
	struct sub *next;
	redis_t *r;
	uint64_t arg;
	int pattern;
	size_t len;
	char ch[];
};

struct redis {
	struct ev_loop *loop;
	net_t *net;
	struct redis_addr addr;
	char name[160];
	struct redis_options o;
	redis_reply_fn *fn;
	void *user;
	redisAsyncContext *ac;  /* NULL while down */
	int up;                 /* the setup's PING answered */
	int freeing;            /* redis_free: no callback */
	uint64_t connect_us;    /* when the current attempt started */
	int backoff_ms;
	char why[160];          /* why it is down */
	ev_timer retry, check;
	struct call *head, *tail;
	uint32_t n;
	struct sub *subs;
	int mode;               /* 0 not yet used, 1 commands, 2 subscriber */
	struct redis_stats st;
};

/* ---- addresses ---------------------------------------------------------- */

void
redis_options_default(struct redis_options *o)
{
	o->timeout_ms = 2000;
	o->connect_timeout_ms = 2000;
	o->queue_max = 10000;
	o->backoff_max_ms = 5000;
}

int
redis_addr_parse(const char *url, struct redis_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	a->port = 6379;
	if (!strncmp(url, "unix:", 5)) {
		const char *p = url + 5, *q = strchr(p, '?');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		if (!n || n >= sizeof a->path) {
			snprintf(err, errlen, "redis url '%s': a unix socket path of 1 to "
			         "%zu bytes expected", url, sizeof a->path - 1);
			return -1;
		}
		memcpy(a->path, p, n);
		if (q) {
			char *end;
			if (strncmp(q, "?db=", 4) || (a->db = (int)strtol(q + 4, &end, 10),
			    *end || end == q + 4 || a->db < 0)) {
				snprintf(err, errlen, "redis url '%s': the only option is "
				         "?db=N", url);
				return -1;
			}
		}
		return 0;
	}
	if (strncmp(url, "redis://", 8)) {
		snprintf(err, errlen, "redis url '%s': redis://[:password@]host[:port]"
		         "[/db] or unix:/path[?db=N] expected", url);
		return -1;
	}
	const char *p = url + 8;
	const char *at = strrchr(p, '@');
	if (at) {
		const char *pw = p;
		if (*pw == ':')
			pw++;
		else if (memchr(p, ':', (size_t)(at - p))) /* user:password: the user is ignored (Redis 6 ACL users: not yet) */
			pw = memchr(p, ':', (size_t)(at - p)) + 1;
		size_t n = (size_t)(at - pw);
		if (n >= sizeof a->password) {
			snprintf(err, errlen, "redis url: password longer than %zu bytes",
			         sizeof a->password - 1);
			return -1;
		}
		memcpy(a->password, pw, n);
		p = at + 1;
	}
	const char *hend;
	if (*p == '[') { /* [v6]:port */
		hend = strchr(p, ']');
		if (!hend) {
			snprintf(err, errlen, "redis url '%s': unclosed [", url);
			return -1;
		}
		p++;
	} else {
		hend = p + strcspn(p, ":/");
	}
	size_t hn = (size_t)(hend - p);
	if (!hn || hn >= sizeof a->host) {
		snprintf(err, errlen, "redis url '%s': no host", url);
		return -1;
	}
	memcpy(a->host, p, hn);
	p = hend + (*hend == ']');
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535) {
			snprintf(err, errlen, "redis url '%s': bad port", url);
			return -1;
		}
		a->port = (int)port;
		p = end;
	}
	if (*p == '/' && p[1]) {
		char *end;
		long db = strtol(p + 1, &end, 10);
		if (end == p + 1 || *end || db < 0 || db > 1000000) {
			snprintf(err, errlen, "redis url '%s': bad database number", url);
			return -1;
		}
		a->db = (int)db;
	} else if (*p && strcmp(p, "/")) {
		snprintf(err, errlen, "redis url '%s': unexpected '%s'", url, p);
		return -1;
	}
	return 0;
}

/* ---- the connection ----------------------------------------------------- */

static void connect_now(redis_t *r);

static uint64_t
now_us(redis_t *r)
{
	return net_now(r->net);
}

static void
unlink_call(redis_t *r, struct call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		r->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		r->tail = c->prev;
	r->n--;
}

static void
arm_check(redis_t *r)
{
	if (!ev_is_active(&r->check))
		ev_timer_again(r->loop, &r->check);
}

/* The connection is gone (or never came): every call in flight has failed
 * already (hiredis called them with NULL); try again after the backoff. */
static void
went_down(redis_t *r, const char *why)
{
	int was_up = r->up;
	r->ac = NULL;
	r->up = 0;
	if (why)
		snprintf(r->why, sizeof r->why, "%s", why);
	if (r->freeing)
		return;
	if (was_up)
		r->st.disconnects++;
	log_warn("redis %s: %s; trying again in %d ms", r->name, r->why,
	         r->backoff_ms);
	ev_timer_set(&r->retry, r->backoff_ms / 1000.0, 0.);
	ev_timer_start(r->loop, &r->retry);
	r->backoff_ms *= 2;
	if (r->backoff_ms > r->o.backoff_max_ms)
		r->backoff_ms = r->o.backoff_max_ms;
}

/* Drop the connection from our side (stuck, setup refused, timeout). */
static void
drop(redis_t *r, const char *why)
{
	redisAsyncContext *ac = r->ac;
	snprintf(r->why, sizeof r->why, "%s", why);
	went_down(r, NULL);
	if (ac)
		redisAsyncFree(ac); /* the calls in flight fail with r->why */
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct call *c = priv;
	redis_t *r = c->r;
	(void)ac;
	unlink_call(r, c);
	if (r->freeing) {
		free(c);
		return;
	}
	redisReply *rep = reply;
	if (c->setup) {
		if (rep && rep->type == REDIS_REPLY_ERROR) {
			char why[160];
			snprintf(why, sizeof why, "the server refused the connection's "
			         "setup: %s", rep->str);
			free(c);
			drop(r, why);
			return;
		}
		if (rep && rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "PONG")) {
			r->up = 1;
			r->backoff_ms = 100;
			r->st.connects++;
			log_info("redis %s: connected", r->name);
		}
		free(c);
		return;
	}
	if (c->failed) { /* timed out: told already */
		free(c);
		return;
	}
	if (!rep) {
		char why[200];
		snprintf(why, sizeof why, "connection lost: %s", r->why[0] ? r->why :
		         ac && ac->errstr[0] ? ac->errstr : "closed");
		r->st.errors++;
		uint64_t arg = c->arg;
		free(c);
		r->fn(r->user, arg, NULL, why);
		return;
	}
	r->st.replies++;
	metrics_lat_add(&r->st.latency, (double)(now_us(r) - c->sent_us) / 1e6);
	if (rep->type == REDIS_REPLY_ERROR)
		r->st.errors++;
	uint64_t arg = c->arg;
	free(c);
	r->fn(r->user, arg, rep, NULL);
}

static void
on_message(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sub *s = priv;
	redis_t *r = s->r;
	redisReply *rep = reply;
	(void)ac;
	if (r->freeing || !rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING)
		return; /* a lost connection (made again), or not a message */
	const char *kind = rep->element[0]->str;
	if (strcmp(kind, "message") && strcmp(kind, "pmessage"))
		return; /* "subscribe": the confirmation */
	r->fn(r->user, s->arg, rep, NULL);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	redis_t *r = ac->data;
	if (status != REDIS_OK && r->ac == ac && !r->freeing) {
		/* hiredis frees the context after this; its calls fail first */
		snprintf(r->why, sizeof r->why, "cannot connect: %s", ac->errstr);
		went_down(r, NULL);
	}
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	redis_t *r = ac->data;
	(void)status;
	if (r->ac != ac || r->freeing)
		return; /* dropped by us: went_down ran */
	went_down(r, ac->err ? ac->errstr : "the server closed the connection");
}

static int
send_setup(redis_t *r, int argc, const char **argv)
{
	struct call *c = calloc(1, sizeof *c);
	if (!c)
		return -1;
	c->r = r;
	c->setup = 1;
	c->sent_us = now_us(r);
	if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, NULL) != REDIS_OK) {
		free(c);
		return -1;
	}
	c->prev = r->tail;
	if (r->tail)
		r->tail->next = c;
	else
		r->head = c;
	r->tail = c;
	r->n++;
	return 0;
}

static int
send_sub(redis_t *r, struct sub *s)
{
	const char *argv[2] = { s->pattern ? "PSUBSCRIBE" : "SUBSCRIBE", s->ch };
	size_t lens[2] = { strlen(argv[0]), s->len };
	return redisAsyncCommandArgv(r->ac, on_message, s, 2, argv, lens) == REDIS_OK
	       ? 0 : -1;
}

static void
connect_now(redis_t *r)
{
	redisAsyncContext *ac = r->addr.path[0] ? redisAsyncConnectUnix(r->addr.path)
	                                         : redisAsyncConnect(r->addr.host, r->addr.port);
	r->connect_us = now_us(r);
	if (!ac || ac->err) {
		snprintf(r->why, sizeof r->why, "cannot connect: %s",
		         ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		went_down(r, NULL);
		return;
	}
	ac->data = r;
	r->ac = ac;
	r->why[0] = 0;
	redisLibevAttach(r->loop, ac);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	char db[16];
	snprintf(db, sizeof db, "%d", r->addr.db);
	const char *auth[2] = { "AUTH", r->addr.password };
	const char *sel[2] = { "SELECT", db };
	const char *ping[1] = { "PING" };
	if ((r->addr.password[0] && send_setup(r, 2, auth)) ||
	    (r->addr.db && send_setup(r, 2, sel)) || send_setup(r, 1, ping)) {
		drop(r, "out of memory");
		return;
	}
	for (struct sub *s = r->subs; s; s = s->next)
		if (send_sub(r, s)) {
			drop(r, "out of memory");
			return;
		}
	arm_check(r);
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	redis_t *r = w->data;
	connect_now(r);
}

/* Timeouts of calls, of the connection's setup, and a stuck connection. */
static void
check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	redis_t *r = w->data;
	uint64_t now = now_us(r);
	uint64_t limit = (uint64_t)r->o.timeout_ms * 1000u;
	if (r->ac && !r->up &&
	    now - r->connect_us > (uint64_t)r->o.connect_timeout_ms * 1000u) {
		char why[96];
		snprintf(why, sizeof why, "not ready within %d ms (redis.connect_timeout_ms)",
		         r->o.connect_timeout_ms);
		drop(r, why);
	} else if (r->head && now - r->head->sent_us > 2 * limit) {
		char why[96];
		snprintf(why, sizeof why, "no reply in %d ms: the connection is dropped",
		         2 * r->o.timeout_ms);
		drop(r, why);
	}
	char why[64];
	snprintf(why, sizeof why, "timeout after %d ms (redis.timeout_ms)",
	         r->o.timeout_ms);
	for (struct call *c = r->head; c && !r->freeing; c = c->next) {
		if (now - c->sent_us <= limit)
			break; /* the later ones were sent later */
		if (c->failed || c->setup)
			continue;
		c->failed = 1;
		r->st.timeouts++;
		r->st.errors++;
		r->fn(r->user, c->arg, NULL, why); /* may add calls: at the tail */
	}
	if (!r->head && (!r->ac || r->up))
		ev_timer_stop(r->loop, &r->check);
}

/* ---- the interface ------------------------------------------------------ */

redis_t *
redis_create(struct ev_loop *loop, net_t *net, const char *url,
             const struct redis_options *o, redis_reply_fn *fn, void *user,
             char *err, size_t errlen)
{
	redis_t *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (redis_addr_parse(url, &r->addr, err, errlen)) {
		free(r);
		return NULL;
	}
	r->loop = loop;
	r->net = net;
	r->o = *o;
	r->fn = fn;
	r->user = user;
	r->backoff_ms = 100;
	if (r->addr.path[0])
		snprintf(r->name, sizeof r->name, "unix:%s", r->addr.path);
	else
		snprintf(r->name, sizeof r->name, strchr(r->addr.host, ':') ? "[%s]:%d"
		         : "%s:%d", r->addr.host, r->addr.port);
	ev_timer_init(&r->retry, retry_cb, 0., 0.);
	r->retry.data = r;
	double every = r->o.timeout_ms / 4000.0;
	if (every < 0.01)
		every = 0.01;
	ev_init(&r->check, check_cb);
	r->check.repeat = every;
	r->check.data = r;
	connect_now(r);
	return r;
}

int
redis_command(redis_t *r, int argc, const char **argv, const size_t *lens,
              uint64_t arg, char *err, size_t errlen)
{
	if (r->mode == 2) {
		snprintf(err, errlen, "redis %s: a subscriber takes no other command "
		         "(use a client of its own)", r->name);
		return -1;
	}
	if (!r->ac) {
		snprintf(err, errlen, "redis %s is down (%s)", r->name, r->why);
		return -1;
	}
	if (r->n >= (uint32_t)r->o.queue_max) {
		snprintf(err, errlen, "redis %s: %u calls in flight (redis.queue_max)",
		         r->name, r->n);
		return -1;
	}
	struct call *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->r = r;
	c->arg = arg;
	c->sent_us = now_us(r);
	if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, lens) != REDIS_OK) {
		free(c);
		snprintf(err, errlen, "redis %s: the command could not be sent", r->name);
		return -1;
	}
	c->prev = r->tail;
	if (r->tail)
		r->tail->next = c;
	else
		r->head = c;
	r->tail = c;
	r->n++;
	r->st.calls++;
	r->mode = 1;
	arm_check(r);
	return 0;
}

int
redis_subscribe(redis_t *r, const char *channel, size_t len, int pattern,
                uint64_t arg, char *err, size_t errlen)
{
	if (r->mode == 1) {
		snprintf(err, errlen, "redis %s: this client sends commands; a "
		         "subscriber is a client of its own", r->name);
		return -1;
	}
	struct sub *s = malloc(sizeof *s + len + 1);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->r = r;
	s->arg = arg;
	s->pattern = pattern;
	s->len = len;
	memcpy(s->ch, channel, len);
	s->ch[len] = 0;
	s->next = r->subs;
	r->subs = s;
	r->mode = 2;
	if (r->ac && send_sub(r, s)) {
		snprintf(err, errlen, "redis %s: the subscription could not be sent",
		         r->name);
		r->subs = s->next;
		free(s);
		return -1;
	}
	return 0; /* when down: made on the next connection */
}

void
redis_free(redis_t *r)
{
	if (!r)
		return;
	r->freeing = 1;
	ev_timer_stop(r->loop, &r->retry);
	ev_timer_stop(r->loop, &r->check);
	if (r->ac)
		redisAsyncFree(r->ac); /* on_reply frees the calls, calls nobody */
	for (struct call *c = r->head, *n; c; c = n) { /* none left, but */
		n = c->next;
		free(c);
	}
	for (struct sub *s = r->subs, *n; s; s = n) {
		n = s->next;
		free(s);
	}
	free(r);
}

void
redis_stats(const redis_t *r, struct redis_stats *st)
{
	*st = r->st;
	st->in_flight = r->n;
	st->up = r->up;
}

const char *
redis_name(const redis_t *r)
{
	return r->name;
}
