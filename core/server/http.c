/*
 * http.c - outbound HTTP on the libev loop (http.h) with libcurl's multi
 * socket interface: curl says, through the socket callback, which
 * descriptors to watch (an ev_io each, kept as the socket's curl
 * "assigned" pointer) and, through the timer callback, when to be called
 * next (one ev_timer); both call curl_multi_socket_action, after which
 * finished transfers are collected and reported.
 */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <ev.h>

#include "log.h"

struct http_req {
	struct http_req *next, *prev;
	http_t *h;
	CURL *easy;
	uint64_t arg;
	struct curl_slist *hdrs;
	char *body, *head;          /* the response so far */
	size_t body_len, body_cap, head_len, head_cap;
	size_t max_size;
	int too_big;
	char errbuf[CURL_ERROR_SIZE];
};

struct http {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer;
	struct http_options o;
	http_done_fn *fn;
	void *user;
	struct http_req *reqs;      /* in flight */
	struct sock *socks;         /* watched for curl */
	uint32_t n;
	int freeing;
	struct http_stats st;
};

struct sock {
	ev_io io;
	http_t *h;
	curl_socket_t fd;
	struct sock *next, *prev;
};

static void
sock_free(http_t *h, struct sock *s)
{
	ev_io_stop(h->loop, &s->io);
	if (s->prev)
		s->prev->next = s->next;
	else
		h->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

#define HTTP_HEAD_MAX 65536 /* response header bytes */

void
http_options_default(struct http_options *o)
{
	o->timeout_ms = 5000;
	o->connect_timeout_ms = 2000;
	o->max_size = 1 << 20;
	o->queue_max = 1000;
}

static int
append(char **buf, size_t *len, size_t *cap, const char *d, size_t n, size_t max)
{
	if (*len + n > max)
		return -1;
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 1024;
		while (c < *len + n)
			c *= 2;
		if (c > max)
			c = max;
		char *p = realloc(*buf, c + 1);
		if (!p)
			return -1;
		*buf = p;
		*cap = c;
	}
	memcpy(*buf + *len, d, n);
	*len += n;
	(*buf)[*len] = 0;
	return 0;
}

static size_t
on_body(char *d, size_t size, size_t nmemb, void *user)
{
	struct http_req *q = user;
	size_t n = size * nmemb;
	if (append(&q->body, &q->body_len, &q->body_cap, d, n, q->max_size)) {
		q->too_big = 1;
		return 0; /* CURLE_WRITE_ERROR: the transfer stops */
	}
	return n;
}

static size_t
on_header(char *d, size_t size, size_t nmemb, void *user)
{
	struct http_req *q = user;
	size_t n = size * nmemb;
	/* a new response (after a redirect or a 100 Continue): its headers only */
	if (n > 5 && !memcmp(d, "HTTP/", 5))
		q->head_len = 0;
	if (append(&q->head, &q->head_len, &q->head_cap, d, n, HTTP_HEAD_MAX)) {
		q->too_big = 2;
		return 0;
	}
	return n;
}

static void
req_unlink(http_t *h, struct http_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		h->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	h->n--;
}

static void
req_free(http_t *h, struct http_req *q)
{
	curl_multi_remove_handle(h->multi, q->easy);
	curl_easy_cleanup(q->easy);
	curl_slist_free_all(q->hdrs);
	free(q->body);
	free(q->head);
	free(q);
}

/* Report every transfer curl finished. */
static void
collect(http_t *h)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct http_req *q;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		CURLcode rc = m->data.result;
		req_unlink(h, q);
		char err[CURL_ERROR_SIZE + 64];
		struct http_response res = { 0 };
		const struct http_response *rp = NULL;
		if (rc == CURLE_OK) {
			curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &res.status);
			curl_easy_getinfo(q->easy, CURLINFO_TOTAL_TIME, &res.seconds);
			res.body = q->body ? q->body : "";
			res.body_len = q->body_len;
			res.headers = q->head ? q->head : "";
			res.headers_len = q->head_len;
			rp = &res;
			h->st.done++;
			metrics_lat_add(&h->st.latency, res.seconds);
		} else {
			h->st.errors++;
			if (q->too_big == 1 || rc == CURLE_FILESIZE_EXCEEDED)
				snprintf(err, sizeof err, "response larger than %zu bytes "
				         "(max_size)", q->max_size);
			else if (q->too_big == 2)
				snprintf(err, sizeof err, "response headers larger than %d bytes",
				         HTTP_HEAD_MAX);
			else if (rc == CURLE_OPERATION_TIMEDOUT) {
				h->st.timeouts++;
				snprintf(err, sizeof err, "timeout: %s", q->errbuf[0] ? q->errbuf
				         : curl_easy_strerror(rc));
			} else
				snprintf(err, sizeof err, "%s", q->errbuf[0] ? q->errbuf
				         : curl_easy_strerror(rc));
		}
		if (!h->freeing)
			h->fn(h->user, q->arg, rp, rp ? NULL : err);
		req_free(h, q);
	}
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct sock *s = (struct sock *)w;
	http_t *h = s->h;
	int flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
	            (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(h->multi, s->fd, flags, &running);
	collect(h);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	http_t *h = w->data;
	int running;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(h);
}

/* curl: watch fd for what (or stop watching it) */
static int
sock_cb(CURL *e, curl_socket_t fd, int what, void *user, void *sockp)
{
	(void)e;
	http_t *h = user;
	struct sock *s = sockp;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(h->multi, fd, NULL);
			sock_free(h, s);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof *s);
		if (!s)
			return -1;
		s->h = h;
		s->fd = fd;
		s->next = h->socks;
		if (h->socks)
			h->socks->prev = s;
		h->socks = s;
		curl_multi_assign(h->multi, fd, s);
	} else {
		ev_io_stop(h->loop, &s->io);
	}
	int ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
	ev_io_init(&s->io, io_cb, fd, ev);
	ev_io_start(h->loop, &s->io);
	return 0;
}

/* curl: call me in ms (-1: never) */
static int
multi_timer_cb(CURLM *m, long ms, void *user)
{
	(void)m;
	http_t *h = user;
	ev_timer_stop(h->loop, &h->timer);
	if (ms >= 0) {
		ev_timer_set(&h->timer, ms / 1000.0, 0.);
		ev_timer_start(h->loop, &h->timer);
	}
	return 0;
}

http_t *
http_create(struct ev_loop *loop, const struct http_options *o, http_done_fn *fn,
            void *user)
{
	static int inited;
	if (!inited) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT))
			return NULL;
		inited = 1;
	}
	http_t *h = calloc(1, sizeof *h);
	if (!h || !(h->multi = curl_multi_init())) {
		free(h);
		return NULL;
	}
	h->loop = loop;
	h->o = *o;
	h->fn = fn;
	h->user = user;
	ev_init(&h->timer, timer_cb);
	h->timer.data = h;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

http_req_t *
http_request(http_t *h, const struct http_request *rq, uint64_t arg, char *err,
             size_t errlen)
{
	if (h->n >= (uint32_t)h->o.queue_max) {
		snprintf(err, errlen, "%u requests in flight (http.queue_max)", h->n);
		return NULL;
	}
	if (strncmp(rq->url, "http://", 7) && strncmp(rq->url, "https://", 8)) {
		snprintf(err, errlen, "only http:// and https:// urls");
		return NULL;
	}
	struct http_req *q = calloc(1, sizeof *q);
	if (!q || !(q->easy = curl_easy_init())) {
		free(q);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->h = h;
	q->arg = arg;
	q->max_size = rq->max_size ? rq->max_size : (size_t)h->o.max_size;
	CURL *e = q->easy;
	int timeout = rq->timeout_ms > 0 ? rq->timeout_ms : h->o.timeout_ms;
	curl_easy_setopt(e, CURLOPT_URL, rq->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, q);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(h->o.connect_timeout_ms < timeout
	                 ? h->o.connect_timeout_ms : timeout));
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)q->max_size);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	if (rq->follow > 0) {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)rq->follow);
	}
	if (rq->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, rq->body);
	}
	if (rq->method)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
	if (rq->method && !strcmp(rq->method, "HEAD"))
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	/* no "Expect: 100-continue" round trip for larger bodies */
	struct curl_slist *l = curl_slist_append(NULL, "Expect:");
	for (int i = 0; l && i < rq->nheaders; i++) {
		struct curl_slist *n = curl_slist_append(l, rq->headers[i]);
		if (!n)
			curl_slist_free_all(l);
		l = n;
	}
	if (!l) {
		curl_easy_cleanup(e);
		free(q);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->hdrs = l;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
	CURLMcode mc = curl_multi_add_handle(h->multi, e);
	if (mc != CURLM_OK) {
		snprintf(err, errlen, "%s", curl_multi_strerror(mc));
		curl_slist_free_all(l);
		curl_easy_cleanup(e);
		free(q);
		return NULL;
	}
	q->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = q;
	h->reqs = q;
	h->n++;
	h->st.requests++;
	return q;
}

void
http_abort(http_t *h, http_req_t *q)
{
	req_unlink(h, q);
	h->st.aborted++;
	req_free(h, q);
}

void
http_free(http_t *h)
{
	if (!h)
		return;
	h->freeing = 1;
	for (struct http_req *q = h->reqs, *n; q; q = n) {
		n = q->next;
		req_free(h, q);
	}
	h->reqs = NULL;
	curl_multi_cleanup(h->multi);
	while (h->socks) /* those curl did not say it stopped using */
		sock_free(h, h->socks);
	ev_timer_stop(h->loop, &h->timer);
	free(h);
}

void
http_stats(const http_t *h, struct http_stats *st)
{
	*st = h->st;
	st->in_flight = h->n;
}
