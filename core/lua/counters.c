/*
 * counters.c - every counter of the server process. See counters.h.
 */
#include "counters.h"

#include "http.h"
#include "log.h"
#include "redis.h"

size_t
counters_collect(struct script_counter *c, size_t max, gate_t *gate,
                 net_t *net, script_t *script, admin_t *admin,
                 const struct config *cfg)
{
	struct gate_stats g;
	struct gate_census gc;
	struct net_stats n;
	struct script_stats sc;
	struct log_stats l;
	struct admin_stats a;
	size_t k = 0;
	gate_stats(gate, &g);
	gate_census(gate, &gc);
	net_stats(net, &n);
	log_stats(&l);
#define C(grp, name, v) do { if (k < max) c[k++] = (struct script_counter){ \
		grp, name, (uint64_t)(v) }; } while (0)
	C("gate", "in_packets", g.in_packets);
	C("gate", "in_bytes", g.in_bytes);
	C("gate", "hellos", g.hellos);
	C("gate", "challenges", g.challenges);
	C("gate", "bad_cookies", g.bad_cookies);
	C("gate", "refused", g.refused);
	C("gate", "refused_full", g.full);
	C("gate", "refused_version", g.version_refused);
	C("gate", "bad_packets", g.bad_packets);
	C("gate", "bad_hellos", g.bad_hellos);
	C("gate", "unknown_session", g.unknown_session);
	C("gate", "auth_failures", g.auth_failures);
	C("gate", "replays", g.replays);
	C("gate", "created", g.created);
	C("gate", "opened", g.opened);
	C("gate", "closed", g.closed);
	C("gate", "sessions", g.sessions);
	C("gate", "sessions_raw", g.raw_sessions);
	C("gate", "state_handshake", gc.handshake);
	C("gate", "state_open", gc.open);
	C("gate", "state_offline", gc.offline);
	C("gate", "state_closing", gc.closing);
	C("gate", "on_udp", gc.udp);
	C("gate", "on_tcp", gc.tcp);
	C("gate", "on_raw", gc.raw);
	C("gate", "max_sessions", cfg->gate.max_sessions);
	C("gate", "half_open", g.half_open);
	C("gate", "refused_half_open", g.half_open_refused);
	C("gate", "raw_refused", g.raw_refused);
	C("gate", "queued_bytes", g.queued_bytes > 0 ? g.queued_bytes : 0);
	C("gate", "budget_closed", g.budget_closed);
	C("gate", "resets", g.resets);
	C("gate", "resets_limited", g.resets_limited);
	C("gate", "pending", g.pending);
	C("gate", "refused_pending", g.pending_refused);
	C("gate", "pending_timeouts", g.pending_timeouts);
	C("net", "udp_in", n.udp_in);
	C("net", "udp_out", n.udp_out);
	C("net", "udp_in_bytes", n.udp_in_bytes);
	C("net", "udp_out_bytes", n.udp_out_bytes);
	C("net", "udp_recv_calls", n.udp_recv_calls);
	C("net", "udp_send_calls", n.udp_send_calls);
	C("net", "tcp_read_calls", n.tcp_read_calls);
	C("net", "tcp_write_calls", n.tcp_write_calls);
	C("net", "waits", n.waits);
	C("net", "poll_enter", n.poll_enter);
	C("net", "polls", n.polls);
	C("net", "syscalls", n.syscalls);
	C("net", "udp_send_errors", n.udp_send_errors);
	C("net", "udp_truncated", n.udp_truncated);
	C("net", "tcp_accepted", n.tcp_accepted);
	C("net", "tcp_refused", n.tcp_refused);
	C("net", "tcp_refused_addr", n.tcp_refused_addr);
	C("net", "tcp_open", n.tcp_open);
	C("net", "tcp_closed", n.tcp_closed);
	C("net", "tcp_closing", n.tcp_closing);
	C("net", "tcp_frames_in", n.tcp_frames_in);
	C("net", "tcp_frames_out", n.tcp_frames_out);
	C("net", "tcp_bad_frames", n.tcp_bad_frames);
	C("net", "tcp_backpressure", n.tcp_backpressure);
	C("net", "tcp_dropped", n.tcp_dropped);
	C("net", "tcp_hello_timeouts", n.tcp_hello_timeouts);
	C("net", "tcp_handed_off", n.tcp_handed_off);
	C("net", "tcp_adopted", n.tcp_adopted);
	C("net", "accept_paused", n.accept_paused);
	C("net", "max_conns", cfg->net.max_conns);
	if (script) {
		script_stats(script, &sc);
		C("lua", "callbacks", sc.callbacks);
		C("lua", "errors", sc.errors);
		C("lua", "slow", sc.slow);
		C("lua", "timers", sc.timers);
		C("lua", "objects", sc.objects);
		C("lua", "sessions", sc.sessions);
		C("lua", "memory_kb", sc.memory_kb);
		C("lua", "routed", sc.routed);
		C("lua", "waiting", sc.waiting);
		C("lua", "waits", sc.waits);
		C("lua", "queued", sc.queued);
		C("lua", "dropped", sc.dropped);
		C("lua", "cancelled", sc.cancelled);
		C("lua", "skipped", sc.skipped);
		struct redis_stats rs;
		script_redis_stats(script, &rs);
		C("redis", "calls", rs.calls);
		C("redis", "replies", rs.replies);
		C("redis", "errors", rs.errors);
		C("redis", "timeouts", rs.timeouts);
		C("redis", "connects", rs.connects);
		C("redis", "disconnects", rs.disconnects);
		C("redis", "in_flight", rs.in_flight);
		C("redis", "up", rs.up);
		struct http_stats hs;
		script_http_stats(script, &hs);
		C("http", "requests", hs.requests);
		C("http", "done", hs.done);
		C("http", "errors", hs.errors);
		C("http", "timeouts", hs.timeouts);
		C("http", "aborted", hs.aborted);
		C("http", "in_flight", hs.in_flight);
	}
	C("log", "lines", l.lines);
	C("log", "suppressed", l.suppressed);
	C("log", "summaries", l.summaries);
	if (admin) {
		admin_stats(admin, &a);
		C("admin", "clients", a.clients);
		C("admin", "accepted", a.accepted);
		C("admin", "refused", a.refused);
		C("admin", "commands", a.commands);
		C("admin", "waiting", a.waiting);
	}
#undef C
	return k;
}
