/*
 * http.h - outbound HTTP(S) requests on the server's event loop: libcurl's
 * multi interface driven by libev (curl tells which sockets to watch and
 * when to call it again). No Lua: the runtime's binding is
 * core/lua/script_http.c.
 *
 * Every request has a timeout and a bound on its response (body and
 * headers); only http and https; redirects are not followed unless asked;
 * TLS peers are verified (libcurl's default, the system's CA store). The
 * result comes through the done callback, never from inside http_request:
 * a request that cannot start fails there at once with its reason.
 */
#ifndef MOONGATE_HTTP_H
#define MOONGATE_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

struct http_options {
	int timeout_ms;         /* a whole request (5000) */
	int connect_timeout_ms; /* its connection (2000) */
	int64_t max_size;       /* response body bytes (1 MiB) */
	int queue_max;          /* requests in flight (1000) */
};
void http_options_default(struct http_options *o);

struct http_request {
	const char *method;     /* NULL: GET, or POST when there is a body */
	const char *url;
	const char *const *headers; /* "Name: value" lines */
	int nheaders;
	const void *body;
	size_t body_len;
	int timeout_ms;         /* 0: the options' */
	size_t max_size;        /* 0: the options' */
	int follow;             /* follow up to this many redirects (0) */
};

struct http_response {
	long status;
	const char *headers;    /* the header block as received ("Name: value\r\n"...) */
	size_t headers_len;
	const char *body;
	size_t body_len;
	double seconds;         /* how long it took */
};

/* res, or err when the request failed (NULL res). */
typedef void http_done_fn(void *user, uint64_t arg, const struct http_response *res,
                          const char *err);

typedef struct http http_t;
typedef struct http_req http_req_t;

http_t *http_create(struct ev_loop *loop, const struct http_options *o,
                    http_done_fn *fn, void *user);
/* Start a request; done comes with arg. The request, or NULL with err
 * (nothing will come for it). */
http_req_t *http_request(http_t *h, const struct http_request *rq, uint64_t arg,
                         char *err, size_t errlen);
/* Stop a request in flight: done will not come for it. */
void http_abort(http_t *h, http_req_t *q);
/* Abort everything and free: no callback from here on. */
void http_free(http_t *h);

#include "metrics.h"

struct http_stats {
	uint64_t requests, done, errors, timeouts, aborted;
	uint32_t in_flight;
	struct metrics_lat latency; /* request to response (answered ones) */
};
void http_stats(const http_t *h, struct http_stats *st);

#endif
