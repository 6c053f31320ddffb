/*
 * observe.c - the figures of the operators' endpoint (observe.h).
 */
#include "observe.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "session.h"


void
observe_close(struct observe *o, int code)
{
	for (int i = 0; i < o->ncodes; i++)
		if (o->codes[i].code == code) {
			o->codes[i].n++;
			return;
		}
	if (o->ncodes == OBSERVE_CODES) {
		o->other_codes++;
		return;
	}
	o->codes[o->ncodes].code = code;
	o->codes[o->ncodes].n = 1;
	o->ncodes++;
}

/* The counters that are levels, not totals. */
static int
is_gauge(const char *group, const char *name)
{
	static const char *const g[] = {
		"gate.sessions", "gate.sessions_raw", "gate.state_handshake",
		"gate.state_open", "gate.state_offline", "gate.state_closing",
		"gate.on_udp", "gate.on_tcp", "gate.on_raw", "gate.max_sessions",
		"gate.half_open", "gate.queued_bytes", "gate.pending",
		"net.tcp_open", "net.tcp_closing", "net.max_conns",
		"lua.timers", "lua.objects", "lua.sessions", "lua.memory_kb",
		"lua.waiting", "redis.in_flight", "redis.up", "http.in_flight",
		"admin.clients", "admin.waiting",
	};
	char full[96];
	snprintf(full, sizeof full, "%s.%s", group, name);
	for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
		if (!strcmp(g[i], full))
			return 1;
	return 0;
}

static double
mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double
observe_now(void)
{
	return mono_s();
}

/* ---- one pass over the live sessions ---------------------------------- */

static const double rtt_le[] = { 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1 };
static const double loss_le[] = { 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5 };
#define NRTT (sizeof rtt_le / sizeof rtt_le[0])
#define NLOSS (sizeof loss_le / sizeof loss_le[0])

struct walk {
	uint64_t rtt_b[NRTT + 1], loss_b[NLOSS + 1];
	double rtt_sum, loss_sum;
	uint64_t rtt_n, loss_n;
	double *rtts, *losses;    /* each session's, for the page's quantiles */
	size_t cap;
	int64_t queued, queued_max;
	struct gate_retired live; /* the live sessions' totals */
};

static void
walk_one(const session_t *s, const struct gate_path *p, void *user)
{
	struct walk *w = user;
	struct session_stats st;
	(void)p;
	uint64_t push0 = w->live.push, retrans0 = w->live.retrans;
	gate_retired_add(&w->live, s, &st);
	uint64_t push = w->live.push - push0, retrans = w->live.retrans - retrans0;
	w->queued += st.waiting_bytes;
	if (st.waiting_bytes > w->queued_max)
		w->queued_max = st.waiting_bytes;
	if (st.pongs > 0 && st.srtt_ms > 0) {
		double v = st.srtt_ms / 1000.0;
		size_t i = 0;
		while (i < NRTT && v > rtt_le[i])
			i++;
		w->rtt_b[i]++;
		w->rtt_sum += v;
		if (w->rtts && w->rtt_n < w->cap)
			w->rtts[w->rtt_n] = st.srtt_ms;
		w->rtt_n++;
	}
	if (push >= 20) { /* a loss estimate: what had to be sent again */
		double v = (double)retrans / (double)push;
		size_t i = 0;
		while (i < NLOSS && v > loss_le[i])
			i++;
		w->loss_b[i]++;
		w->loss_sum += v;
		if (w->losses && w->loss_n < w->cap)
			w->losses[w->loss_n] = v;
		w->loss_n++;
	}
}

static void
hist(struct mbuf *b, const char *name, const char *help, const double *le,
     size_t n, const uint64_t *buckets, double sum, uint64_t count)
{
	char bn[96], lab[48];
	metrics_head(b, name, "histogram", help);
	uint64_t acc = 0;
	snprintf(bn, sizeof bn, "%s_bucket", name);
	for (size_t i = 0; i < n; i++) {
		acc += buckets[i];
		snprintf(lab, sizeof lab, "le=\"%g\"", le[i]);
		metrics_sample(b, bn, lab, (double)acc);
	}
	metrics_sample(b, bn, "le=\"+Inf\"", (double)count);
	snprintf(bn, sizeof bn, "%s_sum", name);
	metrics_sample(b, bn, NULL, sum);
	snprintf(bn, sizeof bn, "%s_count", name);
	metrics_sample(b, bn, NULL, (double)count);
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
quantile(double *v, size_t n, double q)
{
	if (!n)
		return 0;
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* ---- Lua callback times ------------------------------------------------- */

struct cbt_ctx {
	struct mbuf *b;
	int pass; /* 0 seconds, 1 runs, 2 JSON */
	int first;
};

static void
label_value(struct mbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			mbuf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			mbuf_printf(b, "\\n");
		else
			mbuf_printf(b, "%c", *s);
	}
}

static void
on_cbt(const char *svc, const char *what, uint64_t runs, double ms, void *user)
{
	struct cbt_ctx *c = user;
	struct mbuf *b = c->b;
	if (c->pass == 2) {
		mbuf_printf(b, "%s{\"service\":", c->first ? "" : ",");
		mbuf_json_str(b, svc);
		mbuf_printf(b, ",\"callback\":");
		mbuf_json_str(b, what);
		mbuf_printf(b, ",\"runs\":%llu,\"ms\":%.3f}", (unsigned long long)runs, ms);
		c->first = 0;
		return;
	}
	mbuf_printf(b, "%s{service=\"", c->pass == 0 ? "moongate_lua_callback_seconds_total"
	                                           : "moongate_lua_callback_runs_total");
	label_value(b, svc);
	mbuf_printf(b, "\",callback=\"");
	label_value(b, what);
	if (c->pass == 0)
		mbuf_printf(b, "\"} %.9g\n", ms / 1000.0);
	else
		mbuf_printf(b, "\"} %llu\n", (unsigned long long)runs);
}

/* ---- the two renderings --------------------------------------------------- */

static void
render_text(struct mbuf *b, struct observe *o, struct walk *w,
            const struct script_counter *c, size_t nc, const struct gate_retired *rt)
{
	char name[128], lab[160];
	metrics_head(b, "moongate_info", "gauge", "this process: node, worker slot, version");
	snprintf(lab, sizeof lab, "node=\"%s\",worker=\"%d\",version=\"%s\"", o->node,
	         o->worker, o->version);
	metrics_sample(b, "moongate_info", lab, 1);
	metrics_head(b, "moongate_uptime_seconds", "gauge", "seconds since this process started");
	metrics_sample(b, "moongate_uptime_seconds", NULL, mono_s() - o->started);
	metrics_head(b, "moongate_worker_restarts_total", "counter",
	             "times this worker slot was restarted before this process (workers)");
	metrics_sample(b, "moongate_worker_restarts_total", NULL, o->restarts);
	/* every counter of the console's `stats` */
	for (size_t i = 0; i < nc; i++) {
		int gauge = is_gauge(c[i].group, c[i].name);
		snprintf(name, sizeof name, "moongate_%s_%s%s", c[i].group, c[i].name,
		         gauge ? "" : "_total");
		char help[128];
		snprintf(help, sizeof help, "%s.%s of the admin console's stats",
		         c[i].group, c[i].name);
		metrics_head(b, name, gauge ? "gauge" : "counter", help);
		metrics_sample(b, name, NULL, (double)c[i].value);
	}
	struct gate_census gc;
	gate_census(o->g, &gc);
	metrics_head(b, "moongate_sessions", "gauge", "live sessions by state");
	metrics_sample(b, "moongate_sessions", "state=\"handshake\"", (double)gc.handshake);
	metrics_sample(b, "moongate_sessions", "state=\"open\"", (double)gc.open);
	metrics_sample(b, "moongate_sessions", "state=\"offline\"", (double)gc.offline);
	metrics_sample(b, "moongate_sessions", "state=\"closing\"", (double)gc.closing);
	metrics_head(b, "moongate_sessions_by_transport", "gauge",
	             "live sessions by the transport they send on");
	metrics_sample(b, "moongate_sessions_by_transport", "transport=\"udp\"", (double)gc.udp);
	metrics_sample(b, "moongate_sessions_by_transport", "transport=\"tcp\"", (double)gc.tcp);
	metrics_sample(b, "moongate_sessions_by_transport", "transport=\"raw\"", (double)gc.raw);
	metrics_head(b, "moongate_session_closes_total", "counter",
	             "sessions closed, by close code (docs/PROTOCOL.md, docs/SERVICES.md)");
	for (int i = 0; i < o->ncodes; i++) {
		snprintf(lab, sizeof lab, "code=\"%d\"", o->codes[i].code);
		metrics_sample(b, "moongate_session_closes_total", lab, (double)o->codes[i].n);
	}
	if (o->other_codes)
		metrics_sample(b, "moongate_session_closes_total", "code=\"other\"",
		               (double)o->other_codes);
	hist(b, "moongate_session_rtt_seconds", "smoothed heartbeat RTT of the live sessions",
	     rtt_le, NRTT, w->rtt_b, w->rtt_sum, w->rtt_n);
	hist(b, "moongate_session_loss_ratio",
	     "live sessions' reliable segments sent again / sent (sessions with 20 or more): "
	     "loss, or acks later than the retransmission timeout (an upper bound of loss)",
	     loss_le, NLOSS, w->loss_b, w->loss_sum, w->loss_n);
	metrics_head(b, "moongate_send_queue_bytes", "gauge",
	             "reliable bytes queued or unacknowledged, all live sessions");
	metrics_sample(b, "moongate_send_queue_bytes", NULL, (double)w->queued);
	metrics_head(b, "moongate_send_queue_max_bytes", "gauge",
	             "the largest one session's queue");
	metrics_sample(b, "moongate_send_queue_max_bytes", NULL, (double)w->queued_max);
	struct { const char *n, *h; uint64_t v; } t[] = {
		{ "moongate_retransmissions_total", "reliable segments sent again (timeout or fast), all sessions",
		  rt->retrans + w->live.retrans },
		{ "moongate_segments_sent_total", "reliable data segments sent, first sends and again",
		  rt->push + w->live.push },
		{ "moongate_fec_recovered_total", "packets rebuilt from FEC parity", rt->fec_recovered + w->live.fec_recovered },
		{ "moongate_fec_parity_sent_total", "FEC parity shards sent", rt->fec_parity_out + w->live.fec_parity_out },
		{ "moongate_messages_in_total", "reliable messages received", rt->msgs_in + w->live.msgs_in },
		{ "moongate_messages_out_total", "reliable messages sent", rt->msgs_out + w->live.msgs_out },
		{ "moongate_datagrams_in_total", "unreliable datagrams received", rt->dgrams_in + w->live.dgrams_in },
		{ "moongate_datagrams_out_total", "unreliable datagrams sent", rt->dgrams_out + w->live.dgrams_out },
		{ "moongate_session_auth_failures_total", "session packets whose tag failed, per session",
		  rt->in_auth_fail + w->live.in_auth_fail },
		{ "moongate_session_replays_total", "session packets seen before", rt->in_replay + w->live.in_replay },
		{ "moongate_path_changes_total", "sessions moved to another address or transport",
		  rt->path_changes + w->live.path_changes },
		{ "moongate_offlines_total", "sessions that went offline", rt->offlines + w->live.offlines },
		{ "moongate_resumes_total", "sessions back from offline", rt->resumes + w->live.resumes },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		metrics_head(b, t[i].n, "counter", t[i].h);
		metrics_sample(b, t[i].n, NULL, (double)t[i].v);
	}
	if (o->m) {
		struct metrics_stats ms;
		metrics_stats(o->m, &ms);
		metrics_head(b, "moongate_metrics_scrapes_total", "counter", "scrapes of /metrics");
		metrics_sample(b, "moongate_metrics_scrapes_total", NULL, (double)ms.scrapes);
	}
	if (o->sc) {
		struct cbt_ctx cc = { b, 0, 1 };
		metrics_head(b, "moongate_lua_callback_seconds_total", "counter",
		             "time in Lua callbacks, by service and callback");
		script_callback_times(o->sc, on_cbt, &cc);
		cc.pass = 1;
		metrics_head(b, "moongate_lua_callback_runs_total", "counter",
		             "Lua callback runs (a callback that waited counts each resume)");
		script_callback_times(o->sc, on_cbt, &cc);
		struct redis_stats rs;
		struct http_stats hs;
		script_redis_stats(o->sc, &rs);
		script_http_stats(o->sc, &hs);
		metrics_lat_text(b, "moongate_redis_call_seconds",
		                 "moongate.redis: a call to its reply", &rs.latency);
		metrics_lat_text(b, "moongate_http_request_seconds",
		                 "moongate.http: a request to its response", &hs.latency);
		size_t n;
		char *lua = script_metrics(o->sc, 0, &n);
		if (lua) {
			mbuf_printf(b, "%s", lua);
			free(lua);
		}
	}
}

static void
render_json(struct mbuf *b, struct observe *o, struct walk *w,
            const struct script_counter *c, size_t nc, const struct gate_retired *rt)
{
	struct gate_census gc;
	gate_census(o->g, &gc);
	mbuf_printf(b, "{\"node\":");
	mbuf_json_str(b, o->node);
	mbuf_printf(b, ",\"worker\":%d,\"version\":\"%s\",\"uptime_s\":%.0f,",
	            o->worker, o->version, mono_s() - o->started);
	mbuf_printf(b, "\"sessions\":{\"handshake\":%llu,\"open\":%llu,\"offline\":%llu,"
	            "\"closing\":%llu,\"udp\":%llu,\"tcp\":%llu,\"raw\":%llu},",
	            (unsigned long long)gc.handshake, (unsigned long long)gc.open,
	            (unsigned long long)gc.offline, (unsigned long long)gc.closing,
	            (unsigned long long)gc.udp, (unsigned long long)gc.tcp,
	            (unsigned long long)gc.raw);
	size_t nr = w->rtt_n < w->cap ? w->rtt_n : w->cap;
	size_t nl = w->loss_n < w->cap ? w->loss_n : w->cap;
	if (w->rtts)
		qsort(w->rtts, nr, sizeof *w->rtts, cmp_d);
	if (w->losses)
		qsort(w->losses, nl, sizeof *w->losses, cmp_d);
	mbuf_printf(b, "\"rtt_ms\":{\"n\":%zu,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f},", nr,
	            quantile(w->rtts, nr, 0.5), quantile(w->rtts, nr, 0.9),
	            quantile(w->rtts, nr, 0.99));
	mbuf_printf(b, "\"loss\":{\"n\":%zu,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f},", nl,
	            quantile(w->losses, nl, 0.5), quantile(w->losses, nl, 0.9),
	            quantile(w->losses, nl, 0.99));
	mbuf_printf(b, "\"totals\":{\"retransmissions\":%llu,\"segments_sent\":%llu,"
	            "\"fec_recovered\":%llu,\"messages_in\":%llu,\"messages_out\":%llu,"
	            "\"datagrams_in\":%llu,\"datagrams_out\":%llu,\"send_queue_bytes\":%lld},",
	            (unsigned long long)(rt->retrans + w->live.retrans),
	            (unsigned long long)(rt->push + w->live.push),
	            (unsigned long long)(rt->fec_recovered + w->live.fec_recovered),
	            (unsigned long long)(rt->msgs_in + w->live.msgs_in),
	            (unsigned long long)(rt->msgs_out + w->live.msgs_out),
	            (unsigned long long)(rt->dgrams_in + w->live.dgrams_in),
	            (unsigned long long)(rt->dgrams_out + w->live.dgrams_out),
	            (long long)w->queued);
	mbuf_printf(b, "\"closes\":{");
	for (int i = 0; i < o->ncodes; i++)
		mbuf_printf(b, "%s\"%d\":%llu", i ? "," : "", o->codes[i].code,
		            (unsigned long long)o->codes[i].n);
	mbuf_printf(b, "},\"counters\":{");
	for (size_t i = 0; i < nc; i++)
		mbuf_printf(b, "%s\"%s.%s\":%llu", i ? "," : "", c[i].group, c[i].name,
		            (unsigned long long)c[i].value);
	mbuf_printf(b, "},\"lua\":[");
	if (o->sc) {
		struct cbt_ctx cc = { b, 2, 1 };
		script_callback_times(o->sc, on_cbt, &cc);
	}
	mbuf_printf(b, "],\"services\":");
	size_t n = 0;
	char *lua = o->sc ? script_metrics(o->sc, 1, &n) : NULL;
	mbuf_printf(b, "%s}", lua && n ? lua : "[]");
	free(lua);
}

void
observe_render(struct mbuf *b, enum metrics_what what, void *user)
{
	struct observe *o = user;
	struct script_counter c[SCRIPT_COUNTERS_MAX];
	size_t nc = o->counters ? o->counters(c, SCRIPT_COUNTERS_MAX, o->counters_user) : 0;
	struct gate_retired rt;
	gate_retired(o->g, &rt);
	struct walk w;
	memset(&w, 0, sizeof w);
	if (what == METRICS_JSON) {
		struct gate_stats gs;
		gate_stats(o->g, &gs);
		w.cap = (size_t)gs.sessions + 1;
		w.rtts = malloc(w.cap * sizeof *w.rtts);
		w.losses = malloc(w.cap * sizeof *w.losses);
		if (!w.rtts || !w.losses)
			w.cap = 0;
	}
	gate_foreach(o->g, walk_one, &w);
	if (what == METRICS_JSON)
		render_json(b, o, &w, c, nc, &rt);
	else
		render_text(b, o, &w, c, nc, &rt);
	free(w.rtts);
	free(w.losses);
}

char *
observe_status(void *user, size_t *len)
{
	struct mbuf b = { 0 };
	observe_render(&b, METRICS_JSON, user);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.n;
	return b.p;
}
