/*
 * redis.h - a Redis client on the server's event loop: hiredis's async API
 * (libhiredis, its libev adapter), one connection per client, commands
 * pipelined on it, a timeout on every call, reconnection with backoff, a
 * bound on the calls in flight. No Lua: the runtime's binding is
 * core/lua/script_redis.c.
 *
 * Replies come back through the reply callback, never from inside
 * redis_command: a call that cannot be sent (not connected, too many in
 * flight) fails at once with its reason instead. A client that is down
 * refuses calls with the reason it went down ("connection refused", ...)
 * and tries again after a backoff (100 ms, doubling up to backoff_max_ms).
 *
 * Pub/sub: redis_subscribe puts the client in subscriber mode (Redis's
 * rule: a subscribed connection takes nothing but (un)subscriptions), so
 * a subscriber is a client of its own; its subscriptions are made again
 * after a reconnect.
 */
#ifndef MOONGATE_REDIS_H
#define MOONGATE_REDIS_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct redisReply;
typedef struct net net_t;

#define REDIS_URL_MAX 256

/* redis://[:password@]host[:port][/db] or unix:/path[?db=N] */
struct redis_addr {
	char host[128];   /* "" for a unix socket */
	int port;
	char path[108];   /* a unix socket's */
	char password[128];
	int db;
};
/* 0, or -1 with the reason in err. */
int redis_addr_parse(const char *url, struct redis_addr *a, char *err,
                     size_t errlen);

struct redis_options {
	int timeout_ms;         /* a call without a reply this long fails (2000) */
	int connect_timeout_ms; /* connecting (with AUTH and SELECT) (2000) */
	int queue_max;          /* calls in flight (10000) */
	int backoff_max_ms;     /* the longest wait between two attempts (5000) */
};
void redis_options_default(struct redis_options *o);

/* A reply: r (hiredis's) or, when r is NULL, err says why the call failed
 * ("timeout after 2000 ms", "connection lost: ..."). arg is the call's. A
 * subscription's messages come through it too, with the arg given to
 * redis_subscribe, as the array reply Redis sends. */
typedef void redis_reply_fn(void *user, uint64_t arg, const struct redisReply *r,
                            const char *err);

typedef struct redis redis_t;

/* A client of the server at url, connecting now (in the background). NULL
 * with err when the url is bad or memory is short. net gives the clock. */
redis_t *redis_create(struct ev_loop *loop, net_t *net, const char *url,
                      const struct redis_options *o, redis_reply_fn *fn,
                      void *user, char *err, size_t errlen);
/* Send a command; its reply comes to the callback with arg. 0, or -1 with
 * err (nothing will come for it). */
int redis_command(redis_t *r, int argc, const char **argv, const size_t *lens,
                  uint64_t arg, char *err, size_t errlen);
/* SUBSCRIBE channel (pattern: PSUBSCRIBE): each message comes to the
 * callback with arg, until redis_free. 0, or -1 with err. */
int redis_subscribe(redis_t *r, const char *channel, size_t len, int pattern,
                    uint64_t arg, char *err, size_t errlen);
/* Close and free: no callback is called from here on. */
void redis_free(redis_t *r);

#include "metrics.h"

struct redis_stats {
	uint64_t calls, replies, errors, timeouts, connects, disconnects;
	uint32_t in_flight;
	int up;                 /* connected and ready */
	struct metrics_lat latency; /* call to reply (replies only) */
};
void redis_stats(const redis_t *r, struct redis_stats *st);
/* What the client is connected to ("127.0.0.1:6379", "unix:/path"). */
const char *redis_name(const redis_t *r);

#endif
