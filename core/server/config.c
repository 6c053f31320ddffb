/*
 * config.c - see config.h.
 */
#include "config.h"
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "admin.h"
#include "log.h"

/* ADDR: a string (max is its buffer's size), an admin console address */
enum kind { INT, I64, LEVEL, FORMAT, ADDR, RURL, AUTOINT, STR, CURL, HOSTPORT, TEXT };

struct key {
	const char *name;
	enum kind kind;
	size_t off;   /* offset in struct config */
	long long min, max;
	const char *help;
};

#define G(f) offsetof(struct config, gate.f)
#define S(f) offsetof(struct config, gate.session.f)
#define N(f) offsetof(struct config, net.f)

static const struct key keys[] = {
	{ "session.mtu", INT, S(mtu), 100, 65000, "bytes of one UDP packet" },
	{ "session.heartbeat_ms", INT, S(heartbeat_ms), 10, 600000, "ping interval" },
	{ "session.busy_heartbeat_ms", INT, S(busy_heartbeat_ms), 0, 600000,
	  "ping interval while traffic flows both ways (0, or not above heartbeat_ms: heartbeat_ms always)" },
	{ "session.timeout_ms", INT, S(timeout_ms), 100, 3600000,
	  "no packet from the peer this long: offline (resume_grace_ms), or closed (\"timeout\")" },
	{ "session.watermark", I64, S(watermark), 1024, 1ll << 40,
	  "reliable bytes queued + unacked before the session closes (\"backpressure\")" },
	{ "session.linger_ms", INT, S(linger_ms), 0, 600000,
	  "a graceful close waits this long for pending data to be acked" },
	{ "session.close_retries", INT, S(close_retries), 1, 100,
	  "CLOSE packets sent without an ack before giving up" },
	{ "session.resume_grace_ms", INT, S(resume_grace_ms), 0, 86400000,
	  "a session whose client went silent waits this long for it to come back (0: it closes)" },
	{ "session.aes", INT, S(aes), 0, 1,
	  "1: AES-256-GCM for the sessions of clients that offer it, when this CPU has AES-NI (3x cheaper per small packet than ChaCha20-Poly1305); 0: ChaCha20-Poly1305 always" },
	{ "session.msg_max", INT, S(msg_max), 0, 16 << 20,
	  "largest reliable message in bytes (0: the KCP window's limit)" },
	{ "kcp.nodelay", INT, S(nodelay), 0, 2, "0 normal RTO, 1 fast, 2 fast with gentler backoff" },
	{ "kcp.interval", INT, S(interval), 1, 5000, "KCP flush period in ms" },
	{ "kcp.resend", INT, S(resend), 0, 100, "fast retransmit after this many later acks (0 off)" },
	{ "kcp.nc", INT, S(nc), 0, 1, "1 disables congestion control" },
	{ "kcp.sndwnd", INT, S(sndwnd), 1, 65535, "send window, segments" },
	{ "kcp.rcvwnd", INT, S(rcvwnd), 1, 65535, "receive window, segments (at least 128)" },
	{ "kcp.deadlink", INT, S(deadlink), 2, 1000, "sends of one segment before the link is dead" },
	{ "kcp.minrto", INT, S(minrto), 0, 60000,
	  "smallest retransmission timeout in ms; the RTO is srtt + max(4 x rttvar, 2 ms), at least this (0: KCP's, 100 or 30 with nodelay)" },
	{ "kcp.max_ack_delay", INT, S(max_ack_delay), 0, 5000,
	  "ms an ack may wait for the session's next reliable data to ride on, when that data comes at a regular pace and is due within it (frame sync: the acks of inputs ride on frames; a lost packet then costs up to this much more); 0: acks leave at once (the default)" },
	{ "gate.max_sessions", INT, G(max_sessions), 1, 10000000, "sessions at once; more are refused (\"server full\")" },
	{ "gate.max_raw_per_addr", INT, G(max_raw_per_addr), 0, 10000000,
	  "raw KCP sessions from one IPv4 address or IPv6 /64 (0: no limit)" },
	{ "gate.max_raw_sessions", INT, G(max_raw_sessions), 0, 10000000,
	  "raw KCP sessions at once (0: a quarter of gate.max_sessions)" },
	{ "gate.max_half_open", INT, G(max_half_open), 0, 10000000,
	  "sessions not yet confirmed by the client; more are refused (\"server busy\"; 0: no limit)" },
	{ "gate.queued_bytes_max", I64, G(queued_bytes_max), 0, 1ll << 40,
	  "reliable bytes queued over all sessions; past it the biggest closes (\"server memory budget\"; 0: no limit)" },
	{ "gate.resets_per_s", INT, G(resets_per_s), 0, 10000000,
	  "stateless RESETs per second at most, for packets of unknown sessions (0: none)" },
	{ "gate.pending_max", INT, G(pending_max), 0, 10000000,
	  "handshakes waiting for the policy's verdict at once (a handshake callback that waits); one more that would wait is refused (\"server busy\"; 0: none may wait)" },
	{ "gate.pending_ms", INT, G(pending_ms), 1, 3600000,
	  "a handshake whose verdict has not come this long is refused (\"handshake policy timeout\")" },
	{ "gate.cookie_slot_s", INT, G(cookie_slot_s), 1, 3600, "a handshake cookie lives 1..2 slots" },
	{ "gate.allow_unpinned", INT, G(allow_unpinned), 0, 1,
	  "1: clients without the server key (`moongate key`) get in, the hello in clear; 0: refused" },
	{ "net.batch", INT, N(batch), 1, 1024, "datagrams per recvmmsg/sendmmsg (1: no batching)" },
	{ "net.poll_us", INT, N(poll_us), 0, 100000,
	  "under load, read UDP every poll_us on a timer instead of on every datagram's wakeup (0: never); a datagram waits at most this long more" },
	{ "net.tos", INT, N(tos), -1, 255, "IP_TOS of UDP sockets (16: low delay; -1: leave)" },
	{ "net.priority", INT, N(priority), -1, 6, "SO_PRIORITY of sockets (-1: leave)" },
	{ "net.dgram_max", INT, N(dgram_max), 64, 65535,
	  "largest UDP datagram accepted; longer ones are dropped and counted" },
	{ "net.backlog", INT, N(backlog), 1, 65535, "TCP listen backlog" },
	{ "net.reuseport", INT, N(reuseport), 0, 1,
	  "SO_REUSEPORT on a lone server's listeners: another process may then share its ports and half its traffic (0; `workers` shares them safely)" },
	{ "net.frame_max", INT, N(frame_max), 64, 65535,
	  "largest TCP frame; above it the connection closes (\"frame too large\")" },
	{ "net.conn_buffer_max", INT, N(conn_buffer_max), 4096, 1 << 30,
	  "bytes queued to one TCP connection before it closes (\"backpressure\")" },
	{ "net.close_wait_ms", INT, N(close_wait_ms), 0, 600000, "graceful TCP close: wait this long for the peer's FIN" },
	{ "net.close_rst", INT, N(close_rst), 0, 1, "1: close TCP connections with a reset instead" },
	{ "net.hello_timeout_ms", INT, N(hello_timeout_ms), 0, 3600000,
	  "a TCP connection without a session this long is closed (\"handshake timeout\"; 0: never)" },
	{ "net.max_conns", INT, N(max_conns), 1, 10000000, "TCP connections at once" },
	{ "net.max_conns_per_addr", INT, N(max_conns_per_addr), 0, 10000000,
	  "TCP connections at once from one IPv4 address or IPv6 /64 (0: no limit)" },
	{ "net.udp_rcvbuf", INT, N(udp_rcvbuf), 0, 1 << 30,
	  "SO_RCVBUF of UDP sockets (0: the system's; capped by net.core.rmem_max)" },
	{ "net.udp_sndbuf", INT, N(udp_sndbuf), 0, 1 << 30,
	  "SO_SNDBUF of UDP sockets (0: the system's; capped by net.core.wmem_max)" },
	{ "net.tcp_rcvbuf", INT, N(tcp_rcvbuf), 0, 1 << 30, "SO_RCVBUF of TCP sockets (0: kernel autotuning)" },
	{ "net.tcp_sndbuf", INT, N(tcp_sndbuf), 0, 1 << 30, "SO_SNDBUF of TCP sockets (0: kernel autotuning)" },
	{ "log_level", LEVEL, offsetof(struct config, log_level), 0, 3, "error, warn, info or debug" },
	{ "log.level", LEVEL, offsetof(struct config, log_level), 0, 3, "the same as log_level" },
	{ "log.format", FORMAT, offsetof(struct config, log_format), 0, 1, "text or json (one object per line)" },
	{ "log.burst", INT, offsetof(struct config, log_burst), 0, 1000000,
	  "error and warn lines of one site written per window; the rest are counted (0: no limit)" },
	{ "log.file", TEXT, offsetof(struct config, log_file), 0, CONFIG_PATH_LEN,
	  "lines go to this file (appended) instead of stderr; SIGUSR1 reopens it (log rotation)" },
	{ "log.window_ms", INT, offsetof(struct config, log_window_ms), 1, 86400000,
	  "the window of log.burst; then \"... and N more\" says what was left out" },
	{ "lua.budget_ms", INT, offsetof(struct config, lua_budget_ms), 0, 600000,
	  "a Lua callback running longer is reported in the log (0: never)" },
	{ "lua.timers_max", INT, offsetof(struct config, lua_timers_max), 1, 100000000,
	  "Lua timers pending at once; after() and every() past it raise" },
	{ "lua.queue_max", INT, offsetof(struct config, lua_queue_max), 1, 1000000,
	  "events of one session that wait behind its callback while it waits; past it a datagram is dropped, anything else closes the session" },
	{ "lua.waits_max", INT, offsetof(struct config, lua_waits_max), 1, 100000000,
	  "callbacks waiting at once (moongate.sleep, redis, http); a wait past it raises" },
	{ "lua.watch_ms", INT, offsetof(struct config, lua_watch_ms), 0, 3600000,
	  "> 0: reload changed service files, looked for this often (0: only on SIGHUP or the console)" },
	{ "redis.url", RURL, offsetof(struct config, redis_url), 0, REDIS_URL_MAX,
	  "the Redis of moongate.redis.connect(): redis://[:password@]host[:port][/db] or unix:/path[?db=N] (\"\": none)" },
	{ "redis.timeout_ms", INT, offsetof(struct config, redis.timeout_ms), 1, 3600000,
	  "a Redis call without a reply this long returns nil, \"timeout ...\"" },
	{ "redis.connect_timeout_ms", INT, offsetof(struct config, redis.connect_timeout_ms), 1, 3600000,
	  "connecting to Redis (with AUTH and SELECT) this long is given up, and tried again" },
	{ "redis.queue_max", INT, offsetof(struct config, redis.queue_max), 1, 10000000,
	  "Redis calls in flight per client; one more returns nil, \"... calls in flight\"" },
	{ "redis.backoff_max_ms", INT, offsetof(struct config, redis.backoff_max_ms), 10, 3600000,
	  "the longest wait between two attempts to reconnect to Redis (from 100 ms, doubling)" },
	{ "http.timeout_ms", INT, offsetof(struct config, http.timeout_ms), 1, 3600000,
	  "an outbound HTTP request (moongate.http) longer than this fails with \"timeout\"" },
	{ "http.connect_timeout_ms", INT, offsetof(struct config, http.connect_timeout_ms), 1, 3600000,
	  "its connection (TCP and TLS)" },
	{ "http.max_size", I64, offsetof(struct config, http.max_size), 1, 1 << 30,
	  "bytes of an HTTP response body; a larger one fails" },
	{ "http.queue_max", INT, offsetof(struct config, http.queue_max), 1, 1000000,
	  "outbound HTTP requests in flight; one more returns nil, \"... in flight\"" },
	{ "admin", ADDR, offsetof(struct config, admin), 0, CONFIG_PATH_LEN,
	  "the admin console: unix:PATH or tcp://127.0.0.1:PORT (\"\": none)" },
	{ "admin_clients", INT, offsetof(struct config, admin_clients), 1, 1024,
	  "admin console clients at once; one more is refused" },
	{ "builtin_echo", INT, offsetof(struct config, builtin_echo), 0, 1,
	  "1: the built-in C echo instead of the Lua services (benchmarks)" },
	{ "workers", AUTOINT, offsetof(struct config, workers), 1, WORKERS_MAX,
	  "worker processes on the same ports, packets steered to the one that owns the session (\"auto\": one per CPU)" },
	{ "node_id", STR, offsetof(struct config, node_id), 0, 64,
	  "this server's name in its deployment (players' presence in Redis; \"\": the host name); one per server process" },
	{ "metrics", HOSTPORT, offsetof(struct config, metrics), 0, 128,
	  "the operators' HTTP endpoint, HOST:PORT (/metrics, the status page at /; workers: PORT + slot; \"\": off)" },
	{ "metrics_www", TEXT, offsetof(struct config, metrics_www), 0, CONFIG_PATH_LEN,
	  "the status page's files (\"\": the www directory of the install or the source tree)" },
	{ "node_url", CURL, offsetof(struct config, node_url), 0, 128,
	  "the url clients reach this node by, for moves from other nodes (\"udp://203.0.113.5:7000\"; \"\": moves come only from this node's workers)" },
	{ "upgrade_drain_ms", INT, offsetof(struct config, upgrade_drain_ms), 0, 86400000,
	  "workers: an upgrade's old workers serve their sessions at most this long, then close them" },
	{ "shutdown_ms", INT, offsetof(struct config, shutdown_ms), 0, 600000,
	  "on SIGTERM/SIGINT, wait this long for sessions to close" },
};

void
config_default(struct config *c)
{
	memset(c, 0, sizeof *c);
	gate_config_default(&c->gate);
	c->gate.session.resume_grace_ms = 30000;
	/* what a session sends in one loop wakeup leaves together, at on_arm */
	c->gate.session.batch_flush = 1;
	/* acks that wait to ride on data (kcp.max_ack_delay): off by default: a held ack makes a loss cost up to the hold more
	 * (bench/loss_bench.sh, 10% loss, 20 Hz: p99 155 ms with 60, 35
	 * without; docs/PROTOCOL.md, "Acks that ride on data") */
	c->gate.session.max_ack_delay = 0;
	net_config_default(&c->net);
	c->log_level = LOG_INFO;
	c->log_format = LOG_TEXT;
	c->log_burst = 5;
	c->log_window_ms = 10000;
	c->shutdown_ms = 2000;
	c->workers = 1;
	c->upgrade_drain_ms = 600000;
	c->lua_budget_ms = 50;
	c->lua_timers_max = 1000000;
	c->lua_queue_max = 256;
	c->lua_waits_max = 100000;
	redis_options_default(&c->redis);
	http_options_default(&c->http);
	c->admin_clients = 8;
}

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int
config_set(struct config *c, const char *key, const char *value, char *err,
           size_t errlen)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key *k = &keys[i];
		if (strcmp(k->name, key))
			continue;
		char *p = (char *)c + k->off;
		if (k->kind == LEVEL) {
			int l = log_parse_level(value);
			if (l < 0) {
				snprintf(err, errlen, "%s: expected error, warn, info or debug, "
				         "got '%s'", key, value);
				return -1;
			}
			*(int *)p = l;
			return 0;
		}
		if (k->kind == ADDR) {
			char msg[256];
			struct admin_addr a;
			size_t n = strlen(value);
			if (n >= (size_t)k->max) {
				snprintf(err, errlen, "%s: longer than %lld bytes", key,
				         k->max - 1);
				return -1;
			}
			if (n > 0 && admin_addr_parse(value, &a, msg, sizeof msg) < 0) {
				snprintf(err, errlen, "%s: %s", key, msg);
				return -1;
			}
			memcpy(p, value, n + 1);
			return 0;
		}
		if (k->kind == STR) {
			size_t n = strlen(value);
			if (n >= (size_t)k->max || strpbrk(value, " \t\r\n:")) {
				snprintf(err, errlen, "%s: at most %lld bytes, no spaces or ':', "
				         "got '%s'", key, k->max - 1, value);
				return -1;
			}
			memcpy(p, value, n + 1);
			return 0;
		}
		if (k->kind == AUTOINT && !strcmp(value, "auto")) {
			*(int *)p = 0;
			return 0;
		}
		if (k->kind == HOSTPORT || k->kind == TEXT) {
			size_t n = strlen(value);
			const char *bad = k->kind == HOSTPORT ? " \t\r\n" : "\r\n\t";
			if (n >= (size_t)k->max || strpbrk(value, bad) ||
			    (k->kind == HOSTPORT && n > 0 && !strrchr(value, ':'))) {
				snprintf(err, errlen, "%s: %s of at most %lld bytes, got '%.40s'",
				         key, k->kind == HOSTPORT ? "HOST:PORT" : "a path",
				         k->max - 1, value);
				return -1;
			}
			memcpy(p, value, n + 1);
			return 0;
		}
		if (k->kind == CURL) { /* a url a client connects to */
			size_t n = strlen(value);
			if (n >= (size_t)k->max || strpbrk(value, " \t\r\n") ||
			    (n > 0 && strncmp(value, "udp://", 6) &&
			     strncmp(value, "tcp://", 6) && strncmp(value, "auto://", 7))) {
				snprintf(err, errlen, "%s: a client url (udp://, tcp:// or "
				         "auto://HOST:PORT) of at most %lld bytes, got '%.40s'",
				         key, k->max - 1, value);
				return -1;
			}
			memcpy(p, value, n + 1);
			return 0;
		}
		if (k->kind == RURL) {
			struct redis_addr a;
			size_t n = strlen(value);
			if (n >= (size_t)k->max) {
				snprintf(err, errlen, "%s: longer than %lld bytes", key,
				         k->max - 1);
				return -1;
			}
			if (n > 0 && redis_addr_parse(value, &a, err, errlen) < 0)
				return -1;
			memcpy(p, value, n + 1);
			return 0;
		}
		if (k->kind == FORMAT) {
			if (strcmp(value, "text") && strcmp(value, "json")) {
				snprintf(err, errlen, "%s: expected text or json, got '%s'",
				         key, value);
				return -1;
			}
			*(int *)p = value[0] == 'j' ? LOG_JSON : LOG_TEXT;
			return 0;
		}
		char *end;
		errno = 0;
		long long v = strtoll(value, &end, 0);
		if (errno || end == value || *end || v < k->min || v > k->max) {
			snprintf(err, errlen, "%s: expected an integer in [%lld, %lld]%s, "
			         "got '%s'", key, k->min, k->max,
			         k->kind == AUTOINT ? " or \"auto\"" : "", value);
			return -1;
		}
		if (k->kind == I64)
			*(int64_t *)p = v;
		else
			*(int *)p = (int)v;
		return 0;
	}
	snprintf(err, errlen, "%s: unknown key (moongate --help lists them)", key);
	return -1;
}

int
config_listen(struct config *c, const char *url, char *err, size_t errlen)
{
	struct config_listen l;
	memset(&l, 0, sizeof l);
	const char *rest;
	char buf[160];
	const char *q = strchr(url, '?');
	if (q) { /* options: ?encrypt=0|1&fec=K,M */
		char opts[128];
		snprintf(opts, sizeof opts, "%s", q + 1);
		for (char *o = strtok(opts, "&"); o; o = strtok(NULL, "&")) {
			int k, m, n = 0;
			if (!strcmp(o, "encrypt=0")) {
				l.plain = 1;
			} else if (!strcmp(o, "encrypt=1")) {
				l.plain = 0;
			} else if (sscanf(o, "fec=%d,%d%n", &k, &m, &n) == 2 &&
			           !o[n]) {
				if (k < 1 || k > GATE_FEC_DATA_MAX || m < 1 ||
				    m > GATE_FEC_PARITY_MAX) {
					snprintf(err, errlen, "listen '%s': fec=K,M needs K in "
					         "1..%d data and M in 1..%d parity packets", url,
					         GATE_FEC_DATA_MAX, GATE_FEC_PARITY_MAX);
					return -1;
				}
				l.fec_data = k;
				l.fec_parity = m;
			} else {
				snprintf(err, errlen, "listen '%s': unknown option '%s' "
				         "(known: encrypt=0, encrypt=1, fec=K,M)", url, o);
				return -1;
			}
		}
		size_t n = (size_t)(q - url);
		if (n >= sizeof buf) {
			snprintf(err, errlen, "listen '%s': too long", url);
			return -1;
		}
		memcpy(buf, url, n);
		buf[n] = 0;
		url = buf;
	}
	if (!strncmp(url, "udp://", 6)) {
		l.transport = GATE_UDP;
		rest = url + 6;
	} else if (!strncmp(url, "tcp://", 6)) {
		l.transport = GATE_TCP;
		rest = url + 6;
	} else if (!strncmp(url, "raw://", 6)) {
		l.transport = GATE_UDP;
		l.raw = 1;
		rest = url + 6;
	} else {
		snprintf(err, errlen, "listen '%s': expected udp://, tcp:// or raw://", url);
		return -1;
	}
	const char *colon;
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "listen '%s': expected [v6addr]:port", url);
			return -1;
		}
		colon = close + 1;
		rest++;
	} else {
		colon = strrchr(rest, ':');
	}
	size_t hl = colon ? (size_t)(colon - rest) - (rest[-1] == '[') : 0;
	if (!colon || hl == 0 || hl >= sizeof l.host) {
		snprintf(err, errlen, "listen '%s': expected host:port", url);
		return -1;
	}
	memcpy(l.host, rest, hl);
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535) {
		snprintf(err, errlen, "listen '%s': port must be 0..65535", url);
		return -1;
	}
	l.port = (int)port;
	if (c->nlisten >= CONFIG_LISTEN_MAX) {
		snprintf(err, errlen, "listen '%s': at most %d listeners", url,
		         CONFIG_LISTEN_MAX);
		return -1;
	}
	if (l.plain && l.raw) {
		snprintf(err, errlen, "listen '%s': raw KCP has no encryption to turn off", url);
		return -1;
	}
	if (l.fec_data && l.transport != GATE_UDP) {
		snprintf(err, errlen, "listen '%s': fec is for UDP listeners", url);
		return -1;
	}
	if (l.fec_data && l.raw) {
		snprintf(err, errlen, "listen '%s': raw KCP has no FEC framing", url);
		return -1;
	}
	if (l.plain)
		c->gate.plain_listeners |= 1u << c->nlisten;
	c->gate.fec[c->nlisten].data = (uint8_t)l.fec_data;
	c->gate.fec[c->nlisten].parity = (uint8_t)l.fec_parity;
	c->listen[c->nlisten++] = l;
	return 0;
}

void
config_print_keys(FILE *f)
{
	struct config d;
	config_default(&d);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key *k = &keys[i];
		const char *p = (const char *)&d + k->off;
		char def[32];
		if (k->kind == LEVEL)
			snprintf(def, sizeof def, "%s", level_names[*(const int *)p]);
		else if (k->kind == ADDR || k->kind == RURL || k->kind == STR ||
		         k->kind == CURL || k->kind == HOSTPORT || k->kind == TEXT)
			snprintf(def, sizeof def, "\"%.29s\"", p);
		else if (k->kind == FORMAT)
			snprintf(def, sizeof def, "%s", *(const int *)p ? "json" : "text");
		else if (k->kind == I64)
			snprintf(def, sizeof def, "%lld", (long long)*(const int64_t *)p);
		else
			snprintf(def, sizeof def, "%d", *(const int *)p);
		fprintf(f, "  %-22s %-9s %s\n", k->name, def, k->help);
	}
}

/* ---- secrets -------------------------------------------------------------
 * The file holds one line: "moongate-secret-v1 " and 64 hex digits. */

#define SECRET_TAG "moongate-secret-v1 "

int
config_secrets(struct config *c, char *err, size_t errlen)
{
	uint8_t *key = c->gate.secret;
	if (!c->secrets[0]) {
		randombytes_buf(key, WIRE_SECRET);
		return 0;
	}
	int fd = open(c->secrets, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* first run: make one, readable by this user only */
		char line[sizeof SECRET_TAG + 2 * WIRE_SECRET + 2];
		randombytes_buf(key, WIRE_SECRET);
		memcpy(line, SECRET_TAG, sizeof SECRET_TAG - 1);
		sodium_bin2hex(line + sizeof SECRET_TAG - 1, 2 * WIRE_SECRET + 1, key,
		               WIRE_SECRET);
		size_t n = strlen(line);
		line[n++] = '\n';
		fd = open(c->secrets, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, line, n) != (ssize_t)n || fsync(fd) < 0) {
			snprintf(err, errlen, "secrets %s: cannot create: %s", c->secrets,
			         strerror(errno));
			if (fd >= 0) {
				close(fd);
				unlink(c->secrets);
			}
			sodium_memzero(line, sizeof line);
			return -1;
		}
		close(fd);
		sodium_memzero(line, sizeof line);
		log_info("secrets: created %s (keep it: login cookies depend on it)",
		         c->secrets);
		return 0;
	}
	if (fd < 0) {
		snprintf(err, errlen, "secrets %s: %s", c->secrets, strerror(errno));
		return -1;
	}
	char line[256];
	ssize_t n = read(fd, line, sizeof line - 1);
	close(fd);
	size_t hexlen = 0;
	int ok = n > (ssize_t)(sizeof SECRET_TAG - 1) &&
	         !memcmp(line, SECRET_TAG, sizeof SECRET_TAG - 1);
	if (ok) {
		line[n] = 0;
		const char *hex = line + sizeof SECRET_TAG - 1;
		ok = sodium_hex2bin(key, WIRE_SECRET, hex, strlen(hex), " \r\n", &hexlen,
		                    NULL) == 0 && hexlen == WIRE_SECRET;
	}
	sodium_memzero(line, sizeof line);
	if (!ok) {
		snprintf(err, errlen, "secrets %s: expected \"%s\" and %d hex digits "
		         "(delete the file to make a new one)", c->secrets, SECRET_TAG,
		         2 * WIRE_SECRET);
		return -1;
	}
	return 0;
}

void
config_server_key(const struct config *c, char hex[2 * WIRE_PUB + 1])
{
	uint8_t pub[WIRE_PUB], sec[WIRE_SEC];
	wire_static_keypair(pub, sec, c->gate.secret);
	sodium_memzero(sec, sizeof sec);
	sodium_bin2hex(hex, 2 * WIRE_PUB + 1, pub, WIRE_PUB);
}
