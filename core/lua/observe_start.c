/*
 * observe_start.c - the operators' endpoint started (config `metrics`):
 * what observe.c reads filled in, the status JSON given to the Lua
 * runtime, the libmicrohttpd daemon on the server's loop
 * (core/server/metrics.c) and where its status page's files are. See
 * observe.h.
 */
#include "observe.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The status page's files: metrics_www, else share/moongate/www beside an
 * installed binary (BINDIR/../share/moongate/www, when status.html is
 * there), else the source tree's (www). */
static const char *
www_dir(const struct config *cfg, const char *www, char *buf, size_t len)
{
	if (cfg->metrics_www[0])
		return cfg->metrics_www;
	char exe[4096], probe[4300];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash = n > 0 ? (exe[n] = 0, strrchr(exe, '/')) : NULL;
	if (slash) {
		*slash = 0;
		snprintf(buf, len, "%s/../share/moongate/www", exe);
		snprintf(probe, sizeof probe, "%s/status.html", buf);
		if (access(probe, R_OK) == 0)
			return buf;
	}
	return www;
}

int
observe_start(struct observe *o, const struct observe_setup *s)
{
	const struct config *cfg = s->cfg;
	o->g = s->g;
	o->sc = s->sc;
	o->counters = s->counters;
	o->counters_user = s->counters_user;
	o->node = cfg->node_id[0] ? cfg->node_id : "";
	o->worker = s->worker;
	o->restarts = s->restarts;
	o->started = observe_now();
	o->version = s->version;
	static char host[256];
	if (!o->node[0]) {
		if (gethostname(host, sizeof host - 1) < 0)
			snprintf(host, sizeof host, "node");
		o->node = host;
	}
	if (s->sc)
		script_set_status(s->sc, observe_status, o);
	if (!cfg->metrics[0])
		return 0;
	char err[512];
	int port = 0;
	static char wbuf[4200];
	const char *www = www_dir(cfg, s->www, wbuf, sizeof wbuf);
	o->m = metrics_start(s->loop, cfg->metrics, s->worker < 0 ? 0 : s->worker,
	                     www, observe_render, o, &port, err, sizeof err);
	if (!o->m) {
		log_error("cannot start: %s", err);
		return -1;
	}
	if (s->sc)
		script_set_timing(s->sc, 1);
	const char *colon = strrchr(cfg->metrics, ':');
	printf("moongate: metrics %.*s %d\n", (int)(colon - cfg->metrics),
	       cfg->metrics, port);
	log_info("metrics on http://%.*s:%d/metrics, the status page at /",
	         (int)(colon - cfg->metrics), cfg->metrics, port);
	return 0;
}
