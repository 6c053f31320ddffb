/*
 * main.c - the moongate process: one libev loop, the sockets (net), the
 * sessions (gate) and the Lua services (script). Started with a CONFIG
 * (config.lua), the services it names handle every session; without one,
 * or with builtin_echo = 1, a built-in echo in C does: every reliable
 * message goes back reliably, every unreliable one unreliably, on the
 * session it came from (the baseline of the Lua benchmark).
 *
 * Listening sockets are announced on stdout, one line each, once bound:
 *
 *   moongate: listening udp 127.0.0.1 7777
 *
 * and the admin console's address when there is one (core/server/admin.h):
 *
 *   moongate: admin tcp 127.0.0.1 40123      (or: moongate: admin unix PATH)
 *
 * then the server's static public key, which clients pin (handshake v2):
 *
 *   moongate: key 64-HEX-DIGITS
 *
 * then "moongate: ready", so a test or a script that started the process
 * with port 0 learns the ports. Everything else is logged on stderr.
 * SIGTERM/SIGINT close every session ("server shutdown") and exit once they
 * are closed and no Lua callback still waits (their closes saving in Redis),
 * or shutdown_ms passed. SIGHUP, the console's `reload` and,
 * with lua.watch_ms, a timer reload the service files that changed.
 *
 * `moongate admin ADDR [COMMAND...]` is the console's client
 * (core/server/admin_cli.c), in the same binary. `moongate key [CONFIG]`
 * prints the server key of CONFIG's secrets file (creating the file).
 */
#include <errno.h>
#include <ev.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "metrics.h"
#include "observe.h"
#include "config.h"
#include "counters.h"
#include "gate.h"
#include "handoff.h"
#include "kcp.h"
#include "log.h"
#include "net.h"
#include "script.h"
#include "workers.h"
#include "session.h"
#include "wire.h"

#ifndef MOONGATE_VERSION
#define MOONGATE_VERSION "0.0.0"
#endif

struct server {
	struct ev_loop *loop;
	struct config cfg;
	net_t *net;
	gate_t *gate;
	script_t *script;        /* NULL: the built-in echo */
	admin_t *admin;          /* NULL: no console */
	ev_prepare arm;          /* before the loop blocks: arm the session timer */
	ev_signal sigterm, sigint, sighup;
	ev_timer stop;           /* shutdown deadline */
	ev_timer watch;          /* lua.watch_ms: look for changed service files */
	ev_timer tick;           /* every second: the log's summaries, "server full" */
	uint64_t full_told;      /* gate_stats.full already logged */
	char watch_failed[256];  /* the watch's last refusal, not logged twice */
	int stopping;
	int draining;            /* workers: an upgrade's old worker */
	int moving_out;          /* 1: its drain deadline came, players move */
	ev_timer moves;          /* ... for MOVES_MS, then the rest close */
	ev_signal sigusr1;       /* log.file reopened */
	ev_signal sigwinch;      /* workers: drain (an upgrade's old worker) */
	int64_t trim_mark;       /* queued bytes since the last trim, at most */
	uint64_t trim_last;      /* when memory was last given back */
	ev_timer trim;           /* a trim put off by the once-a-second rule */
	ev_io chan;              /* workers: connections other workers pass */
	/* a worker of `workers` (core/server/workers.h): its sockets, bound by
	 * the supervisor, and where it says it serves; NULL: a lone process */
	const struct workers_fds *wfds;
	int worker, ready_fd;
	struct observe obs;      /* what the metrics endpoint says */
};

static void
usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [options] [CONFIG]\n"
		"       %s admin [--timeout MS] ADDR [COMMAND...]\n"
		"       %s key [CONFIG]\n"
		"\n"
		"Start the moongate game network server: the Lua services that\n"
		"CONFIG (config.lua) names handle every session; without CONFIG, a\n"
		"built-in echo in C does. With no listener given, udp and tcp on\n"
		"127.0.0.1:7777.\n"
		"\n"
		"options:\n"
		"  --listen URL     udp://HOST:PORT, tcp://HOST:PORT or raw://HOST:PORT\n"
		"                   (raw KCP over UDP, unauthenticated); port 0 picks a\n"
		"                   free one; repeatable. A ?encrypt=0 suffix: that\n"
		"                   listener's sessions are authenticated, not encrypted\n"
		"  --set KEY=VALUE  set one of the keys below; repeatable\n"
		"  --check          validate the options and CONFIG, then exit\n"
		"  -h, --help       show this help and exit\n"
		"  -v, --version    print the version and exit\n"
		"\n"
		"admin console (the admin key; docs/LUA_API.md, \"Admin console\"):\n"
		"  %s admin ADDR COMMAND...\n"
		"                   run one command and print its reply; exit status 0,\n"
		"                   1 when the reply is an error, 2 when ADDR does not\n"
		"                   answer. Without COMMAND: one command per line from\n"
		"                   stdin. ADDR: unix:PATH or tcp://127.0.0.1:PORT;\n"
		"                   --timeout MS (5000) bounds every wait for the server.\n"
		"                   Commands: help lists them; reload reloads the service\n"
		"                   files that changed (so does SIGHUP)\n"
		"\n"
		"server key:\n"
		"  %s key [CONFIG]  print the public key of CONFIG's secrets file (64\n"
		"                   hex digits; the file is made when missing): what\n"
		"                   clients pin (url ?key=, Lua server_key)\n"
		"\n"
		"upgrade (with workers):\n"
		"  %s upgrade PID   the supervisor PID starts workers of the binary now\n"
		"                   at its path on the same sockets; new sessions go to\n"
		"                   them, the old workers keep theirs until they end\n"
		"                   (at most upgrade_drain_ms). The same as kill -USR2.\n"
		"\n"
		"keys (default, meaning):\n",
		prog, prog, prog, prog, prog, prog);
	config_print_keys(f);
}

static const char *
addr_text(const struct gate_path *p, char *buf, size_t len)
{
	char a[80];
	if (!p)
		snprintf(buf, len, "(no path)");
	else
		snprintf(buf, len, "%s %s", gate_path_transport(p),
		         gate_path_addr(p, a, sizeof a));
	return buf;
}

/* ---- gate -> net ------------------------------------------------------ */

static void
on_gate_output(const struct gate_path *to, const uint8_t *pkt, size_t len,
               void *user)
{
	struct server *sv = user;
	net_send(sv->net, to, pkt, len);
}

static void
on_gate_close_conn(gate_t *g, uint32_t conn, int graceful, void *user)
{
	struct server *sv = user;
	(void)g;
	net_close(sv->net, conn, graceful ? NET_CLOSE_GRACEFUL : NET_CLOSE_RESET);
}

static void
on_gate_bind_conn(gate_t *g, uint32_t conn, void *user)
{
	struct server *sv = user;
	(void)g;
	net_bind(sv->net, conn); /* a session lives there: no handshake deadline */
}

/* A limit of the gate refused a peer or closed a session: one line per
 * 10 s at most, with the count of the others (a flood must not flood the
 * log). */
static void
on_gate_limited(gate_t *g, const struct gate_path *from, const char *why,
                void *user)
{
	static uint64_t last, quiet;
	struct server *sv = user;
	uint64_t now = net_now(sv->net);
	char a[96];
	(void)g;
	if (last && now - last < 10000000u) {
		quiet++;
		return;
	}
	if (quiet)
		log_warn("limit: %s refused or closed by %s (and %llu more in the "
		         "last 10 s)", addr_text(from, a, sizeof a), why,
		         (unsigned long long)quiet);
	else
		log_warn("limit: %s refused or closed by %s",
		         addr_text(from, a, sizeof a), why);
	last = now ? now : 1;
	quiet = 0;
}

/* The built-in echo service. */
static void
on_gate_event(gate_t *g, session_t *s, const struct session_event *ev,
              void *user)
{
	struct server *sv = user;
	uint64_t now = net_now(sv->net);
	char where[96];
	struct log_ctx lc = { .session = session_id(s) };
	if (ev->type == SESSION_EV_CLOSE)
		observe_close(&sv->obs, ev->code);
	if (log_level < LOG_INFO) {
		/* nothing below is logged: no address to format */
	} else if (ev->type == SESSION_EV_OPEN) {
		lc.event = "open";
		lc.peer = addr_text(gate_session_path(g, s), where, sizeof where);
		log_ev(LOG_INFO, &lc, "session %08x open %s", lc.session, lc.peer);
	} else if (ev->type == SESSION_EV_CLOSE) {
		lc.event = "close";
		log_ev(LOG_INFO, &lc, "session %08x closed by %s: code %d, \"%s\"",
		       lc.session, ev->remote ? "peer" : "server", ev->code,
		       ev->reason);
	} else if (ev->type == SESSION_EV_OFFLINE) {
		lc.event = "offline";
		log_ev(LOG_INFO, &lc, "session %08x offline: waiting %d ms to resume",
		       lc.session, sv->cfg.gate.session.resume_grace_ms);
	} else if (ev->type == SESSION_EV_RESUME || ev->type == SESSION_EV_PATH) {
		lc.event = ev->type == SESSION_EV_RESUME ? "resume" : "path";
		lc.peer = addr_text(gate_session_path(g, s), where, sizeof where);
		log_ev(LOG_INFO, &lc, "session %08x %s %s", lc.session,
		       ev->type == SESSION_EV_RESUME ? "resumed on" : "moved to",
		       lc.peer);
	}
	if (sv->script) {
		script_event(sv->script, s, ev, now);
		return;
	}
	switch (ev->type) { /* the built-in echo */
	case SESSION_EV_MESSAGE:
		if (session_send(s, ev->data, ev->len, now) == 0)
			gate_touch(g, s, now);
		break;
	case SESSION_EV_DATAGRAM:
		session_send_unreliable(s, ev->data, ev->len, now);
		break;
	}
}

/* ---- net -> gate ------------------------------------------------------ */

static void
on_packet(const struct gate_path *from, uint8_t *pkt, size_t len, void *user)
{
	struct server *sv = user;
	/* workers: a TCP connection whose first packet belongs to another
	 * worker's session (a resume, a move to TCP) or asks for another
	 * worker (a handshake with a worker hint) goes to that worker with its
	 * bytes; UDP needs nothing: the kernel steers it */
	int slot;
	if (sv->wfds && from->transport == GATE_TCP &&
	    (slot = handoff_slot(pkt, len)) >= 0 && slot != sv->worker &&
	    slot < sv->wfds->nworkers &&
	    net_hand_off(sv->net, from->conn) == 0)
		return;
	gate_input(sv->gate, from, pkt, len, net_now(sv->net));
}

/* ---- TCP connections between workers ------------------------------------ */

#define MOVES_MS 3000 /* a drain deadline's moves, then the rest close */

/* net: a connection for another worker's session: pass it there. */
static void
on_handoff(int fd, int listener, const struct sockaddr *addr, socklen_t addrlen,
           const uint8_t *bytes, size_t len, void *user)
{
	struct server *sv = user;
	handoff_send(sv->wfds, fd, listener, addr, addrlen, bytes, len);
}

/* Another worker passed a TCP connection: adopt it. */
static void
on_chan(struct ev_loop *loop, ev_io *w, int revents)
{
	struct server *sv = w->data;
	(void)loop;
	(void)revents;
	handoff_receive(sv->wfds->chan_rd, sv->net);
}

static void
on_conn_lost(uint32_t conn, const char *reason, void *user)
{
	struct server *sv = user;
	struct log_ctx lc = { .event = "conn_lost" };
	log_ev(strcmp(reason, "eof") ? LOG_INFO : LOG_DEBUG, &lc,
	       "tcp connection %08x lost: %s", conn, reason);
	gate_conn_lost(sv->gate, conn, reason, net_now(sv->net));
}

static void
on_timer(uint64_t now, void *user)
{
	struct server *sv = user;
	gate_update(sv->gate, now);
	script_update(sv->script, now);
}

static void
on_gate_accept(gate_t *g, const struct gate_path *from, const uint8_t *hello,
               size_t len, struct gate_verdict *v, void *user)
{
	struct server *sv = user;
	(void)g;
	if (sv->script)
		script_accept(sv->script, from, hello, len, v, net_now(sv->net));
}

/* Queues of sessions that never read are freed when they close, but in
 * small blocks that malloc keeps (and KCP's pool keeps up to 4 MiB): after
 * TRIM_BYTES of queues were freed, give the memory back to the system, at
 * most once a second (measured: 20 sessions of 3.9 MB each, closed, left
 * 83 of 87 MB resident without it). */
#define TRIM_BYTES (16 << 20)
static void
trim_memory(struct server *sv, uint64_t now)
{
	struct gate_stats st;
	gate_stats(sv->gate, &st);
	if (st.queued_bytes > sv->trim_mark)
		sv->trim_mark = st.queued_bytes;
	if (sv->trim_mark - st.queued_bytes < TRIM_BYTES)
		return;
	if (now - sv->trim_last < 1000000u) {
		/* later: an idle loop may not come back here by itself */
		if (!ev_is_active(&sv->trim)) {
			ev_timer_set(&sv->trim,
			             (double)(sv->trim_last + 1000000u - now) / 1e6, 0.);
			ev_timer_start(sv->loop, &sv->trim);
		}
		return;
	}
	sv->trim_mark = st.queued_bytes;
	sv->trim_last = now;
	kcp_pool_trim();
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static void
on_trim(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *sv = w->data;
	(void)loop;
	(void)revents;
	trim_memory(sv, net_now(sv->net));
}

static void
on_arm(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct server *sv = w->data;
	(void)loop;
	(void)revents;
	uint64_t now = net_now(sv->net);
	trim_memory(sv, now);
	/* The one flush of this wakeup: sessions that received packets or
	 * were given messages since the loop woke are due now (batch_flush);
	 * each sends all of it in as few datagrams as the mtu allows, then
	 * the net layer sends every datagram of the wakeup (one sendmmsg per
	 * listener, one write per connection). Without this the loop would
	 * go round once more, through epoll_wait, to find them due. */
	if (gate_check(sv->gate, now) <= now) {
		gate_update(sv->gate, now);
		net_flush(sv->net);
	}
	uint64_t due = gate_check(sv->gate, now), t = script_check(sv->script, now);
	net_timer(sv->net, t < due ? t : due);
	if (sv->stopping || sv->draining) {
		/* done when the last session ended and its close callbacks are
		 * done waiting (a held seat, a room's state saved in Redis);
		 * shutdown_ms bounds both */
		struct gate_stats st;
		struct script_stats sc = { 0 };
		gate_stats(sv->gate, &st);
		if (sv->script)
			script_stats(sv->script, &sc);
		if (st.sessions == 0 && sc.waiting == 0) {
			if (sv->draining && !sv->stopping)
				log_info("drained: the last session of this worker ended");
			ev_break(sv->loop, EVBREAK_ALL);
		}
	}
}

/* SIGUSR1: log.file opened again (a rotation moved the old one away). */
static void
on_reopen(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	log_reopen();
}

/* workers: SIGWINCH from the supervisor after an upgrade: new sessions go
 * to the new workers; this one serves its own until the last ends. */
static void
on_drain(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *sv = w->data;
	(void)loop;
	(void)revents;
	if (!sv->draining)
		log_info("upgrade: draining: the new workers take new sessions; "
		         "this one exits when its last session ends");
	sv->draining = 1;
}

static void
on_stop_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents);

/* The moves of a drain deadline had their time: the rest close. */
static void
on_moves_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *sv = w->data;
	(void)revents;
	on_signal(loop, &sv->sigterm, 0);
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *sv = w->data;
	(void)revents;
	/* an upgrade's old worker at its drain deadline (the supervisor's
	 * SIGTERM): the services move their players to the new worker of this
	 * slot (moongate.on_drain) first; what is left closes after
	 * MOVES_MS, or at once when no service moves anyone */
	if (w->signum == SIGTERM && sv->draining && !sv->moving_out && !sv->stopping &&
	    sv->script && sv->wfds && sv->wfds->nworkers >= 2) {
		int to = (sv->worker + sv->wfds->nworkers / 2) % sv->wfds->nworkers;
		sv->moving_out = 1;
		int n = script_drain(sv->script, to);
		if (n > 0) {
			log_info("upgrade: drain deadline: %d service(s) move their players "
			         "to worker %d; the rest close in %d ms", n, to, MOVES_MS);
			ev_timer_init(&sv->moves, on_moves_done, MOVES_MS / 1000.0, 0);
			sv->moves.data = sv;
			ev_timer_start(loop, &sv->moves);
			return;
		}
	}
	if (sv->moving_out == 1 && ev_is_active(&sv->moves)) {
		ev_timer_stop(loop, &sv->moves);
	}
	sv->moving_out = 2;
	if (sv->stopping) {
		ev_break(loop, EVBREAK_ALL); /* a second signal: now */
		return;
	}
	sv->stopping = 1;
	log_info("signal %d: closing every session (up to %d ms)", w->signum,
	         sv->cfg.shutdown_ms);
	gate_close_all(sv->gate, SESSION_CLOSE_SHUTDOWN, "server shutdown",
	               net_now(sv->net));
	ev_timer_init(&sv->stop, on_stop_deadline, sv->cfg.shutdown_ms / 1000.0, 0);
	ev_timer_start(loop, &sv->stop);
}

/* ---- counters: the console's `stats`, moongate.server_stats() -------- */

/* Every counter of the server, grouped: what gate, net, the Lua runtime,
 * the log and the console count (core/lua/counters.c). */
static size_t
server_counters(struct script_counter *c, size_t max, void *user)
{
	struct server *sv = user;
	return counters_collect(c, max, sv->gate, sv->net, sv->script, sv->admin,
	                        &sv->cfg);
}

/* Every second: the log's counts of what its rate limit left out (a flood
 * that stopped is still told), and the handshakes refused since the last
 * tick because the server is full (the gate has no log). */
static void
on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *sv = w->data;
	struct gate_stats gs;
	(void)loop;
	(void)revents;
	log_flush(log_now_ms());
	gate_stats(sv->gate, &gs);
	if (gs.full > sv->full_told) {
		log_warn("gate: %llu handshakes refused: server full (%llu sessions, "
		         "gate.max_sessions %d)",
		         (unsigned long long)(gs.full - sv->full_told),
		         (unsigned long long)gs.sessions, sv->cfg.gate.max_sessions);
		sv->full_told = gs.full;
	}
}

/* ---- hot reload and the admin console ------------------------------- */

/* Reload the service files that changed. quiet (the watch): log only what
 * happened, and a refusal only once while it stays the same. */
static void
reload(struct server *sv, const char *why, int quiet)
{
	char out[2048];
	if (!sv->script) {
		if (!quiet)
			log_info("reload (%s): nothing to reload: the built-in echo", why);
		return;
	}
	int rc = script_reload(sv->script, out, sizeof out, net_now(sv->net));
	if (rc < 0 && quiet && !strncmp(sv->watch_failed, out,
	                                sizeof sv->watch_failed - 1))
		return;
	if (quiet)
		snprintf(sv->watch_failed, sizeof sv->watch_failed, "%.*s",
		         (int)sizeof sv->watch_failed - 1, rc < 0 ? out : "");
	if (rc < 0)
		log_error("reload (%s): %s", why, out);
	else if (!quiet || !strncmp(out, "reloaded", 8))
		log_info("reload (%s): %s", why, out);
}

static void
on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	reload(w->data, "SIGHUP", 0);
}

static void
on_watch(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	reload(w->data, "watch", 1);
}

/* `stats [GROUP]` of the built-in echo, which has no Lua runtime: the
 * counters as the Lua console prints them ("group.name value" a line, in
 * server_counters' order, which groups them). */
static int
echo_stats(struct server *sv, const char *group, char *out, size_t outlen)
{
	struct script_counter c[SCRIPT_COUNTERS_MAX];
	size_t n = server_counters(c, SCRIPT_COUNTERS_MAX, sv), o = 0;
	int any = 0;
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		if (*group && strcmp(group, c[i].group))
			continue;
		int w = snprintf(out + o, outlen - o, "%s%s.%s %llu", any ? "\n" : "",
		                 c[i].group, c[i].name, (unsigned long long)c[i].value);
		if (w < 0 || (size_t)w >= outlen - o)
			break;
		o += (size_t)w;
		any = 1;
	}
	if (!any) {
		snprintf(out, outlen, "no counters in group '%s' (groups: admin, "
		         "gate, log, net)", group);
		return -1;
	}
	return 0;
}

/* One console line: the Lua runtime's commands (lualib/moongate/admin.lua),
 * whose reply may come later (on_script_answer); without one, the built-in
 * echo's `stats`. */
static int
on_admin_command(const char *line, uint64_t ticket, char *out, size_t outlen,
                 void *user)
{
	struct server *sv = user;
	if (!sv->script) {
		const char *p = line + strspn(line, " \t");
		if (!strncmp(p, "stats", 5) && (!p[5] || p[5] == ' ' || p[5] == '\t')) {
			char group[32];
			p += 5;
			p += strspn(p, " \t");
			size_t gl = strcspn(p, " \t");
			snprintf(group, sizeof group, "%.*s", (int)gl, p);
			return echo_stats(sv, group, out, outlen);
		}
		snprintf(out, outlen, "the built-in echo has only `stats [GROUP]` "
		         "(start with a CONFIG for the Lua runtime's commands)");
		return -1;
	}
	int rc = script_command(sv->script, line, ticket, out, outlen,
	                        net_now(sv->net));
	return rc == SCRIPT_PENDING ? ADMIN_PENDING : rc;
}

/* A console command that waited ended: its reply to its client (dropped
 * there when the client is gone). */
static void
on_script_answer(uint64_t ticket, int err, const char *text, void *user)
{
	struct server *sv = user;
	admin_answer(sv->admin, ticket, err, text);
}

static int
start_admin(struct server *sv)
{
	struct admin_addr a;
	char err[512];
	if (!sv->cfg.admin[0])
		return 0;
	if (admin_addr_parse(sv->cfg.admin, &a, err, sizeof err) < 0 ||
	    !(sv->admin = admin_create(sv->net, &a, sv->cfg.admin_clients,
	                               on_admin_command, sv, err, sizeof err))) {
		log_error("cannot start: admin: %s", err);
		return -1;
	}
	printf("moongate: admin %s\n", admin_where(sv->admin));
	log_info("admin console on %s", admin_where(sv->admin));
	return 0;
}

#ifndef MOONGATE_WWW
#define MOONGATE_WWW "www"
#endif

/* The operators' endpoint (config `metrics`): Prometheus text and the
 * status page, on this loop (core/server/metrics.c, core/lua/observe.c). */
static int
start_metrics(struct server *sv)
{
	struct observe_setup s = {
		.loop = sv->loop, .cfg = &sv->cfg, .g = sv->gate, .sc = sv->script,
		.counters = server_counters, .counters_user = sv,
		.worker = sv->wfds ? sv->worker : -1,
		.restarts = sv->wfds ? sv->wfds->restarts : 0,
		.version = MOONGATE_VERSION, .www = MOONGATE_WWW,
	};
	return observe_start(&sv->obs, &s);
}

/* A UDP buffer the kernel capped drops datagrams under load: say so once. */
static void
warn_buffers(struct server *sv)
{
	static int told;
	struct net_stats st;
	net_stats(sv->net, &st);
	const struct net_config *k = &sv->cfg.net;
	if (told)
		return;
	if (k->udp_rcvbuf > 0 && st.udp_rcvbuf < k->udp_rcvbuf) {
		log_warn("UDP receive buffer is %d bytes, net.udp_rcvbuf asks %d: "
		         "raise sysctl net.core.rmem_max (or run with CAP_NET_ADMIN)",
		         st.udp_rcvbuf, k->udp_rcvbuf);
		told = 1;
	}
	if (k->udp_sndbuf > 0 && st.udp_sndbuf < k->udp_sndbuf) {
		log_warn("UDP send buffer is %d bytes, net.udp_sndbuf asks %d: "
		         "raise sysctl net.core.wmem_max (or run with CAP_NET_ADMIN)",
		         st.udp_sndbuf, k->udp_sndbuf);
		told = 1;
	}
}

static int
serve(struct server *sv, int lua)
{
	static const struct net_callbacks ncb = { on_packet, on_conn_lost, on_timer,
	                                          on_handoff };
	static const struct gate_callbacks gcb = { on_gate_output, on_gate_accept,
	                                           on_gate_event, on_gate_close_conn,
	                                           on_gate_bind_conn,
	                                           on_gate_limited };
	sv->loop = ev_default_loop(EVFLAG_AUTO);
	if (!sv->loop || wire_init() < 0) {
		log_error("cannot start: no event loop or no libsodium");
		return 1;
	}
	sv->net = net_create(sv->loop, &sv->cfg.net, &ncb, sv);
	sv->gate = gate_create(&sv->cfg.gate, &gcb, sv);
	if (!sv->net || !sv->gate) {
		log_error("cannot start: out of memory");
		return 1;
	}
	if (lua) {
		char err[4096];
		sv->script = script_create(&sv->cfg, sv->gate, net_now(sv->net), err,
		                           sizeof err);
		if (!sv->script) {
			log_error("cannot start: %s", err);
			return 1;
		}
		script_set_counters(sv->script, server_counters, sv);
		script_set_answer(sv->script, on_script_answer, sv);
		script_set_loop(sv->script, sv->loop, sv->net);
		log_info("services: %d loaded", sv->cfg.nservices);
	} else {
		log_info("services: the built-in C echo");
	}
	/* the signals before "ready": a SIGHUP sent once the caller read it
	 * must find its handler, not the default action (exit) */
	ev_prepare_init(&sv->arm, on_arm);
	sv->arm.data = sv;
	ev_timer_init(&sv->trim, on_trim, 0., 0.);
	sv->trim.data = sv;
	ev_prepare_start(sv->loop, &sv->arm);
	ev_signal_init(&sv->sigterm, on_signal, SIGTERM);
	ev_signal_init(&sv->sigint, on_signal, SIGINT);
	sv->sigterm.data = sv->sigint.data = sv;
	ev_signal_start(sv->loop, &sv->sigterm);
	ev_signal_start(sv->loop, &sv->sigint);
	ev_signal_init(&sv->sighup, on_hup, SIGHUP);
	sv->sighup.data = sv;
	ev_signal_start(sv->loop, &sv->sighup);
	if (sv->wfds) {
		ev_signal_init(&sv->sigwinch, on_drain, SIGWINCH);
		sv->sigwinch.data = sv;
		ev_signal_start(sv->loop, &sv->sigwinch);
	}
	ev_signal_init(&sv->sigusr1, on_reopen, SIGUSR1);
	sv->sigusr1.data = sv;
	ev_signal_start(sv->loop, &sv->sigusr1);
	ev_timer_init(&sv->tick, on_tick, 1.0, 1.0);
	sv->tick.data = sv;
	ev_timer_start(sv->loop, &sv->tick);
	if (sv->script && sv->cfg.lua_watch_ms > 0) {
		double every = sv->cfg.lua_watch_ms / 1000.0;
		ev_timer_init(&sv->watch, on_watch, every, every);
		sv->watch.data = sv;
		ev_timer_start(sv->loop, &sv->watch);
	}

	for (int i = 0; i < sv->cfg.nlisten; i++) {
		struct config_listen *l = &sv->cfg.listen[i];
		char err[256];
		int port = 0;
		int rc = sv->wfds
		         ? net_listen_fd(sv->net, l->transport, sv->wfds->fd[i], l->raw,
		                         err, sizeof err)
		         : net_listen(sv->net, l->transport, l->host, l->port, l->raw,
		                      &port, err, sizeof err);
		if (sv->wfds)
			port = sv->wfds->port[i];
		if (rc < 0) {
			log_error("cannot listen on %s %s:%d: %s%s",
			          l->transport == GATE_TCP ? "tcp" : "udp", l->host,
			          l->port, err, strstr(err, "in use")
			          ? " (another server on this port? two servers share a "
			            "port only as the workers of one: `workers`)" : "");
			return 1;
		}
		if (!sv->wfds)
			printf("moongate: listening %s %s %d\n", l->transport == GATE_TCP ?
			       "tcp" : l->raw ? "raw" : "udp", l->host, port);
		log_info("listening %s %s:%d", l->transport == GATE_TCP ? "tcp" :
		         l->raw ? "raw" : "udp", l->host, port);
		if (l->transport != GATE_TCP)
			warn_buffers(sv);
	}
	if (start_admin(sv) < 0 || start_metrics(sv) < 0)
		return 1;
	if (sv->wfds) {
		ev_io_init(&sv->chan, on_chan, sv->wfds->chan_rd, EV_READ);
		sv->chan.data = sv;
		ev_io_start(sv->loop, &sv->chan);
	}
	char key[2 * WIRE_PUB + 1];
	config_server_key(&sv->cfg, key);
	log_info("server key %s (unpinned clients %s)", key,
	         sv->cfg.gate.allow_unpinned ? "allowed" : "refused");
	if (sv->wfds) { /* the supervisor says ready once every worker is */
		unsigned char b = (unsigned char)sv->worker;
		fflush(stdout);
		if (write(sv->ready_fd, &b, 1) != 1)
			log_error("worker %d: cannot tell the supervisor it is ready",
			          sv->worker);
	} else {
		printf("moongate: key %s\n", key);
		printf("moongate: ready\n");
		fflush(stdout);
	}

	ev_run(sv->loop, 0);

	struct gate_stats gs;
	struct net_stats ns;
	gate_stats(sv->gate, &gs);
	net_stats(sv->net, &ns);
	log_info("stopped: %llu sessions created, %llu opened, %llu closed, "
	         "%llu challenges, %llu bad packets, "
	         "%llu auth failures, %llu replays, %llu bad cookies, "
	         "%llu unknown session, %llu tcp bad frames, %llu udp truncated",
	         (unsigned long long)gs.created,
	         (unsigned long long)gs.opened, (unsigned long long)gs.closed,
	         (unsigned long long)gs.challenges,
	         (unsigned long long)gs.bad_packets,
	         (unsigned long long)gs.auth_failures,
	         (unsigned long long)gs.replays, (unsigned long long)gs.bad_cookies,
	         (unsigned long long)gs.unknown_session,
	         (unsigned long long)ns.tcp_bad_frames,
	         (unsigned long long)ns.udp_truncated);
	log_flush(UINT64_MAX);    /* what the rate limit still holds */
	metrics_stop(sv->obs.m);  /* no scrape runs past here */
	sv->obs.m = NULL;
	admin_release(sv->admin); /* no command runs past here */
	sv->admin = NULL;         /* a reply that still comes is dropped */
	gate_release(sv->gate, net_now(sv->net));
	script_release(sv->script); /* after the gate's last close events */
	net_release(sv->net);
	ev_loop_destroy(sv->loop);
	return 0;
}

/* `moongate key [CONFIG]`: the static public key clients pin. */
static int
print_key(int argc, char **argv, const char *prog)
{
	static struct config c;
	char err[4096], key[2 * WIRE_PUB + 1];
	if (argc > 2) {
		fprintf(stderr, "usage: %s key [CONFIG]\n", prog);
		return 2;
	}
	config_default(&c);
	if (argc == 2 && script_config_load(&c, argv[1], err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 2;
	}
	if (!c.secrets[0]) {
		fprintf(stderr, "%s: no secrets file (CONFIG's `secrets`): the key "
		        "would be new at every start\n", prog);
		return 1;
	}
	if (config_secrets(&c, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 1;
	}
	config_server_key(&c, key);
	printf("%s\n", key);
	return 0;
}

/* ---- workers ------------------------------------------------------------- */

/* moongate upgrade PID: ask a supervisor (workers) to start the workers of
 * the binary now at its path, on the same sockets. */
static int
upgrade_cli(int argc, char **argv, const char *prog)
{
	char *end;
	long pid = argc == 2 ? strtol(argv[1], &end, 10) : 0;
	if (argc != 2 || *end || pid < 2) {
		fprintf(stderr, "usage: %s upgrade PID\n"
		        "  PID: the supervisor of a server with workers (the process\n"
		        "  started; its log says \"workers: N on the same ports\").\n"
		        "  The same as kill -USR2 PID.\n", prog);
		return 2;
	}
	if (kill((pid_t)pid, SIGUSR2) < 0) {
		fprintf(stderr, "%s: upgrade: %ld: %s\n", prog, pid, strerror(errno));
		return 1;
	}
	printf("upgrade asked of %ld: its log says how it goes\n", pid);
	return 0;
}

static int sv_lua; /* the workers run the Lua services (not the C echo) */

/* In the child: worker index of n serves on its sockets. */
static int
run_worker(int index, int n, const struct workers_fds *fds, int ready_fd,
           void *user)
{
	struct server *sv = user;
	sv->wfds = fds;
	sv->worker = index;
	sv->ready_fd = ready_fd;
	sv->cfg.gate.worker = index;
	sv->cfg.gate.workers = n;
	/* a Unix admin console per worker: PATH.INDEX */
	if (!strncmp(sv->cfg.admin, "unix:", 5)) {
		size_t len = strlen(sv->cfg.admin);
		if (len + 4 < sizeof sv->cfg.admin)
			snprintf(sv->cfg.admin + len, sizeof sv->cfg.admin - len, ".%d", index);
	}
	log_set_worker(index);
	return serve(sv, sv_lua);
}

/* In the supervisor: every worker serves. */
static void
workers_ready(const struct workers_fds *fds, void *user)
{
	struct server *sv = user;
	for (int i = 0; i < sv->cfg.nlisten; i++) {
		struct config_listen *l = &sv->cfg.listen[i];
		printf("moongate: listening %s %s %d\n", l->transport == GATE_TCP ?
		       "tcp" : l->raw ? "raw" : "udp", l->host, fds->port[i]);
	}
	char key[2 * WIRE_PUB + 1];
	config_server_key(&sv->cfg, key);
	printf("moongate: key %s\n", key);
	printf("moongate: ready\n");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	const char *prog = argc > 0 && argv[0] ? argv[0] : "moongate";
	const char *config = NULL;
	int check = 0, cli_listen = 0;
	static struct server sv;
	char err[4096];

	if (argc > 1 && !strcmp(argv[1], "admin")) /* the console's client */
		return admin_cli(argc - 1, argv + 1, prog);
	if (argc > 1 && !strcmp(argv[1], "key"))
		return print_key(argc - 1, argv + 1, prog);
	if (argc > 1 && !strcmp(argv[1], "upgrade"))
		return upgrade_cli(argc - 1, argv + 1, prog);
	/* the binary an upgrade starts: this path, whatever file is there then */
	static char self_exe[4096];
	ssize_t xl = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (xl > 0) {
		self_exe[xl] = 0;
		char *del = strstr(self_exe, " (deleted)");
		if (del)
			*del = 0;
	} else {
		snprintf(self_exe, sizeof self_exe, "%s", prog);
	}

	/* First the options' shape and the file; then the file's values, then
	 * the options over them (--listen replaces the file's listeners). */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout, prog);
			return 0;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--version")) {
			printf("moongate %s\n", MOONGATE_VERSION);
			return 0;
		} else if (!strcmp(a, "--check")) {
			check = 1;
		} else if (!strcmp(a, "--listen") || !strcmp(a, "--set")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: %s needs a value\n", prog, a);
				return 2;
			}
			cli_listen |= a[2] == 'l';
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
			usage(stderr, prog);
			return 2;
		} else if (config) {
			fprintf(stderr, "%s: only one configuration file may be given\n",
			        prog);
			return 2;
		} else {
			config = a;
		}
	}
	config_default(&sv.cfg);
	if (config && script_config_load(&sv.cfg, config, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 2;
	}
	if (cli_listen) {
		sv.cfg.nlisten = 0;
		sv.cfg.gate.plain_listeners = 0;
		memset(sv.cfg.gate.fec, 0, sizeof sv.cfg.gate.fec);
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		int rc = 0;
		if (!strcmp(a, "--listen")) {
			rc = config_listen(&sv.cfg, v, err, sizeof err);
			i++;
		} else if (!strcmp(a, "--set")) {
			char key[128];
			const char *eq = strchr(v, '=');
			if (!eq || eq == v || (size_t)(eq - v) >= sizeof key) {
				fprintf(stderr, "%s: --set expects KEY=VALUE, got '%s'\n",
				        prog, v);
				return 2;
			}
			memcpy(key, v, (size_t)(eq - v));
			key[eq - v] = 0;
			rc = config_set(&sv.cfg, key, eq + 1, err, sizeof err);
			i++;
		}
		if (rc) {
			fprintf(stderr, "%s: %s\n", prog, err);
			return 2;
		}
	}
	if (sv.cfg.nlisten == 0) {
		config_listen(&sv.cfg, "udp://127.0.0.1:7777", err, sizeof err);
		config_listen(&sv.cfg, "tcp://127.0.0.1:7777", err, sizeof err);
	}
	log_level = sv.cfg.log_level;
	log_format = sv.cfg.log_format;
	log_burst = sv.cfg.log_burst;
	log_window_ms = sv.cfg.log_window_ms;
	if (sv.cfg.log_file[0] && !check && log_open(sv.cfg.log_file, err, sizeof err) < 0) {
		fprintf(stderr, "%s: cannot start: %s\n", prog, err);
		return 1;
	}
	int lua = config && !sv.cfg.builtin_echo;
	if (check) {
		/* the services load too: a syntax error is a bad configuration */
		if (lua) {
			static const struct gate_callbacks none = { on_gate_output, NULL,
			                                            on_gate_event, NULL,
			                                            NULL, NULL };
			gate_t *g = gate_create(&sv.cfg.gate, &none, &sv);
			script_t *sc = g ? script_create(&sv.cfg, g, 0, err, sizeof err)
			                 : NULL;
			if (!sc) {
				fprintf(stderr, "%s: %s\n", prog, g ? err : "out of memory");
				if (g)
					gate_release(g, 0);
				return 2;
			}
			script_release(sc);
			gate_release(g, 0);
		}
		printf("moongate %s: configuration ok (%d listeners, %s)\n",
		       MOONGATE_VERSION, sv.cfg.nlisten,
		       lua ? "Lua services" : "built-in echo");
		return 0;
	}
	if (config_secrets(&sv.cfg, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 1;
	}
	const char *wenv = getenv("MOONGATE_WORKER");
	if (wenv) { /* an upgrade's new worker, exec'd by the supervisor */
		static struct workers_fds wf;
		int index, ready_fd;
		if (workers_from_env(wenv, &wf, &index, &ready_fd) < 0) {
			fprintf(stderr, "%s: MOONGATE_WORKER: malformed\n", prog);
			return 2;
		}
		unsetenv("MOONGATE_WORKER");
		sv_lua = lua;
		return run_worker(index, wf.nworkers, &wf, ready_fd, &sv);
	}
	int nw = sv.cfg.workers == 0 ? workers_auto() : sv.cfg.workers;
	if (nw > 1) {
		sv_lua = lua;
		log_info("workers: %d on the same ports", nw);
		return workers_supervise(&sv.cfg, nw, run_worker, workers_ready, &sv,
		                         self_exe, argv);
	}
	return serve(&sv, lua);
}
