/*
 * metrics.h - the operators' HTTP endpoint (config `metrics`): Prometheus
 * text at /metrics, the live status page at / (files of the www
 * directory: status.html, status.js, status.css), its figures at
 * /status.json. Served by libmicrohttpd on the server's loop: the daemon
 * runs in its "external" mode with epoll, its epoll descriptor watched by
 * a libev io watcher and its timeout by a libev timer, so nothing runs in
 * another thread and what a page shows is read between two packets.
 *
 * metrics.c knows nothing of the server: what a scrape says comes from the
 * render callback (core/main.c), written into a struct mbuf with the
 * helpers below.
 */
#ifndef MOONGATE_METRICS_H
#define MOONGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* A growing text buffer; a failed allocation sets oom and stops writing. */
struct mbuf {
	char *p;
	size_t n, cap;
	int oom;
};
void mbuf_printf(struct mbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* s as a JSON string (quotes and escapes added). */
void mbuf_json_str(struct mbuf *b, const char *s);

/* Prometheus text: "# HELP" and "# TYPE" lines once per name (the caller
 * gives the metrics of one name together), then the sample. type:
 * "counter", "gauge", "histogram", "summary"; labels: NULL or the text
 * between the braces, e.g. "state=\"open\"". */
void metrics_head(struct mbuf *b, const char *name, const char *type,
                  const char *help);
void metrics_sample(struct mbuf *b, const char *name, const char *labels,
                    double value);

/* A latency histogram (Redis calls, HTTP requests): counts per bucket of
 * METRICS_LAT_LE (seconds), the last for what is above them all. */
#define METRICS_LAT_N 12
extern const double METRICS_LAT_LE[METRICS_LAT_N];
struct metrics_lat {
	uint64_t b[METRICS_LAT_N + 1];
	uint64_t n;
	double sum;            /* seconds */
};
void metrics_lat_add(struct metrics_lat *h, double seconds);
void metrics_lat_add_to(struct metrics_lat *into, const struct metrics_lat *h);
/* The histogram as Prometheus text (HELP and TYPE included). */
void metrics_lat_text(struct mbuf *b, const char *name, const char *help,
                      const struct metrics_lat *h);

enum metrics_what { METRICS_TEXT, METRICS_JSON };
/* Fill b with what a scrape of /metrics (METRICS_TEXT) or /status.json
 * (METRICS_JSON) says, now. */
typedef void (*metrics_render_fn)(struct mbuf *b, enum metrics_what what,
                                  void *user);

struct metrics_stats {
	uint64_t requests;   /* answered (any status) */
	uint64_t scrapes;    /* of /metrics */
	uint64_t not_found;  /* 404 and 405 */
};

typedef struct metrics metrics_t;
struct ev_loop;
/* Listen on addr ("HOST:PORT", IPv6 in brackets; port 0: the kernel's
 * choice) plus port_offset (a worker's slot), serving the files of
 * www_dir. NULL with err filled. *port: the port it listens on. */
metrics_t *metrics_start(struct ev_loop *loop, const char *addr, int port_offset,
                         const char *www_dir, metrics_render_fn render,
                         void *user, int *port, char *err, size_t errlen);
void metrics_stats(const metrics_t *m, struct metrics_stats *st);
void metrics_stop(metrics_t *m);

#endif
