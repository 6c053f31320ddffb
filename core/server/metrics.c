/*
 * metrics.c - the operators' HTTP endpoint (metrics.h): libmicrohttpd in
 * its external epoll mode, driven by the server's libev loop.
 *
 * Routes (GET or HEAD only; anything else 405):
 *   /metrics      Prometheus text format 0.0.4 (render METRICS_TEXT)
 *   /status.json  the status page's figures (render METRICS_JSON)
 *   /             www_dir/status.html
 *   /status.js, /status.css   the page's script and style, from www_dir
 * Everything else 404. At most 32 connections, 10 s idle each; a request
 * body is refused (the routes take none).
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

#define FILE_MAX (1 << 20) /* a page file past this is not served */

struct metrics {
	struct MHD_Daemon *d;
	struct ev_loop *loop;
	ev_io io;
	ev_timer timer;
	metrics_render_fn render;
	void *user;
	char www[512];
	struct metrics_stats st;
};

/* ---- text ------------------------------------------------------------------ */

void
mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->n;
		int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (w < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && (size_t)w < room) {
			b->n += (size_t)w;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->n <= (size_t)w)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void
mbuf_json_str(struct mbuf *b, const char *s)
{
	mbuf_printf(b, "\"");
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			mbuf_printf(b, "\\%c", c);
		else if (c < 0x20)
			mbuf_printf(b, "\\u%04x", c);
		else
			mbuf_printf(b, "%c", c);
	}
	mbuf_printf(b, "\"");
}

void
metrics_head(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
metrics_sample(struct mbuf *b, const char *name, const char *labels, double value)
{
	if (labels && *labels)
		mbuf_printf(b, "%s{%s} %.17g\n", name, labels, value);
	else
		mbuf_printf(b, "%s %.17g\n", name, value);
}

/* ---- latency histograms ---------------------------------------------------- */

const double METRICS_LAT_LE[METRICS_LAT_N] = {
	0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
};

void
metrics_lat_add(struct metrics_lat *h, double seconds)
{
	int i = 0;
	while (i < METRICS_LAT_N && seconds > METRICS_LAT_LE[i])
		i++;
	h->b[i]++;
	h->n++;
	h->sum += seconds;
}

void
metrics_lat_add_to(struct metrics_lat *into, const struct metrics_lat *h)
{
	for (int i = 0; i <= METRICS_LAT_N; i++)
		into->b[i] += h->b[i];
	into->n += h->n;
	into->sum += h->sum;
}

void
metrics_lat_text(struct mbuf *b, const char *name, const char *help,
                 const struct metrics_lat *h)
{
	char n[128];
	metrics_head(b, name, "histogram", help);
	uint64_t acc = 0;
	for (int i = 0; i < METRICS_LAT_N; i++) {
		acc += h->b[i];
		mbuf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, METRICS_LAT_LE[i],
		            (unsigned long long)acc);
	}
	mbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->n);
	snprintf(n, sizeof n, "%s_sum", name);
	metrics_sample(b, n, NULL, h->sum);
	snprintf(n, sizeof n, "%s_count", name);
	metrics_sample(b, n, NULL, (double)h->n);
}

/* ---- HTTP ------------------------------------------------------------------ */

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
      size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
	                                                         MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	char *body = strdup(text);
	if (!body)
		return MHD_NO;
	return reply(conn, status, "text/plain; charset=utf-8", body, strlen(body));
}

/* A file of the www directory, whole. */
static enum MHD_Result
serve_file(metrics_t *m, struct MHD_Connection *conn, const char *name,
           const char *type)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", m->www, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		m->st.not_found++;
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "no such page (the www "
		                  "directory, config metrics_www, lacks it)\n");
	}
	char *body = malloc(FILE_MAX);
	size_t n = body ? fread(body, 1, FILE_MAX, f) : 0;
	fclose(f);
	if (!body)
		return MHD_NO;
	return reply(conn, MHD_HTTP_OK, type, body, n);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload,
           size_t *upload_size, void **state)
{
	metrics_t *m = cls;
	(void)version;
	(void)upload;
	if (!*state) { /* the first call: headers only; answer on the next */
		*state = m;
		return MHD_YES;
	}
	if (*upload_size) /* no route takes a body */
		return MHD_NO;
	m->st.requests++;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		m->st.not_found++;
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
	}
	if (!strcmp(url, "/metrics") || !strcmp(url, "/status.json")) {
		int json = url[1] == 's';
		struct mbuf b = { 0 };
		if (!json)
			m->st.scrapes++;
		m->render(&b, json ? METRICS_JSON : METRICS_TEXT, m->user);
		if (b.oom) {
			free(b.p);
			return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
			                  "out of memory\n");
		}
		if (!b.p)
			b.p = strdup("");
		return reply(conn, MHD_HTTP_OK, json ? "application/json"
		             : "text/plain; version=0.0.4; charset=utf-8", b.p, b.n);
	}
	if (!strcmp(url, "/") || !strcmp(url, "/status.html"))
		return serve_file(m, conn, "status.html", "text/html; charset=utf-8");
	if (!strcmp(url, "/status.js"))
		return serve_file(m, conn, "status.js", "text/javascript; charset=utf-8");
	if (!strcmp(url, "/status.css"))
		return serve_file(m, conn, "status.css", "text/css; charset=utf-8");
	m->st.not_found++;
	return reply_text(conn, MHD_HTTP_NOT_FOUND,
	                  "not found: /metrics, /status.json or / (the status page)\n");
}

/* ---- the loop ----------------------------------------------------------- */

static void
arm(metrics_t *m)
{
	MHD_UNSIGNED_LONG_LONG ms;
	ev_timer_stop(m->loop, &m->timer);
	if (MHD_get_timeout(m->d, &ms) == MHD_YES) {
		ev_timer_set(&m->timer, ms / 1000.0, 0);
		ev_timer_start(m->loop, &m->timer);
	}
}

/* the epoll descriptor readable, or the timeout: MHD does its work */
static void
on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	metrics_t *m = w->data;
	(void)loop;
	(void)revents;
	MHD_run(m->d);
	arm(m);
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	on_io(loop, &((metrics_t *)w->data)->io, revents);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];
	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	log_warn("metrics: %s", line);
}

metrics_t *
metrics_start(struct ev_loop *loop, const char *addr, int port_offset,
              const char *www_dir, metrics_render_fn render, void *user,
              int *port, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	if (!colon || hl == 0 || hl >= sizeof host || !colon[1]) {
		snprintf(err, errlen, "metrics: \"HOST:PORT\" expected, got '%s'", addr);
		return NULL;
	}
	memcpy(host, addr, hl);
	host[hl] = 0;
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = 0;
	}
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p < 0 || p > 65535 || (p > 0 && p + port_offset > 65535)) {
		snprintf(err, errlen, "metrics: bad port in '%s'", addr);
		return NULL;
	}
	if (p > 0)
		p += port_offset;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	                          .ai_socktype = SOCK_STREAM }, *ai;
	char ps[16];
	snprintf(ps, sizeof ps, "%ld", p);
	int rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "metrics: %s: %s (a numeric address)", host,
		         gai_strerror(rc));
		return NULL;
	}
	metrics_t *m = calloc(1, sizeof *m);
	if (!m) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	m->loop = loop;
	m->render = render;
	m->user = user;
	snprintf(m->www, sizeof m->www, "%s", www_dir);
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->d = MHD_start_daemon(flags, (uint16_t)p, NULL, NULL, on_request, m,
	                        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	                        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)32,
	                        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
	                        MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!m->d) {
		snprintf(err, errlen, "metrics: cannot listen on %s (port %ld): %s",
		         addr, p, errno ? strerror(errno) : "libmicrohttpd refused");
		free(m);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
	const union MHD_DaemonInfo *pi = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
	if (!di || di->epoll_fd < 0) {
		snprintf(err, errlen, "metrics: libmicrohttpd gave no epoll descriptor");
		MHD_stop_daemon(m->d);
		free(m);
		return NULL;
	}
	*port = pi ? pi->port : (int)p;
	ev_io_init(&m->io, on_io, di->epoll_fd, EV_READ);
	m->io.data = m;
	ev_io_start(loop, &m->io);
	ev_init(&m->timer, on_timer);
	m->timer.data = m;
	arm(m);
	return m;
}

void
metrics_stats(const metrics_t *m, struct metrics_stats *st)
{
	*st = m->st;
}

void
metrics_stop(metrics_t *m)
{
	if (!m)
		return;
	ev_io_stop(m->loop, &m->io);
	ev_timer_stop(m->loop, &m->timer);
	MHD_stop_daemon(m->d);
	free(m);
}
