/*
 * config.h - the server's settings: one table of keys, each with its type,
 * range, default and meaning. Command-line flags (`--set key=value`) and,
 * later, config.lua go through config_set, so every limit is checked in
 * one place and a bad value names its key.
 */
#ifndef MOONGATE_CONFIG_H
#define MOONGATE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "gate.h"
#include "net.h"
#include "redis.h"
#include "http.h"

#define CONFIG_LISTEN_MAX 16
#define CONFIG_SERVICES_MAX 32
#define CONFIG_PATHS_MAX 8
#define CONFIG_PATH_LEN 512

struct config_listen {
	int transport; /* GATE_UDP or GATE_TCP */
	int raw;       /* UDP only: raw KCP, no moongate header */
	int plain;     /* ?encrypt=0: bodies authenticated, not encrypted */
	int fec_data, fec_parity; /* ?fec=K,M: forward error correction */
	char host[64];
	int port;
};

struct config {
	struct gate_config gate; /* includes the session and KCP profile */
	struct net_config net;
	struct config_listen listen[CONFIG_LISTEN_MAX];
	int nlisten;
	int log_level;
	int log_format;  /* LOG_TEXT or LOG_JSON */
	int log_burst;     /* rate limit: lines of one site per window (5) */
	int log_window_ms; /* (10000) */
	char log_file[CONFIG_PATH_LEN]; /* "": stderr */
	int shutdown_ms; /* on SIGTERM: wait this long for sessions to close */
	int workers;     /* processes serving the listeners (1; 0: one per CPU,
	                    "auto"): core/server/workers.h */
	char node_id[64];     /* this server among a deployment's (presence in
	                         Redis); "": the host name */
	char node_url[128];   /* how clients reach this node (moves between
	                         nodes); "": none */
	char metrics[128];    /* the operators' endpoint, HOST:PORT ("": off) */
	char metrics_www[CONFIG_PATH_LEN]; /* the status page's files ("": the
	                         default www directory) */
	int upgrade_drain_ms; /* an upgrade's old workers close their sessions
	                         after this (600000) */
	/* the Lua runtime (config.lua; core/lua/script.h) */
	char services[CONFIG_SERVICES_MAX][64]; /* module names, in call order */
	int nservices;
	char service_path[CONFIG_PATHS_MAX][CONFIG_PATH_LEN]; /* directories */
	int npaths;
	char secrets[CONFIG_PATH_LEN]; /* file of server secrets ("": in memory) */
	char file[CONFIG_PATH_LEN];    /* config.lua ("": none); its `settings` table
	                                  is read again by the Lua runtime */
	int lua_budget_ms;  /* a callback longer than this is logged (50) */
	int lua_timers_max; /* timers pending at once (1000000) */
	int lua_watch_ms;   /* > 0: look for changed service files this often */
	int lua_queue_max;  /* events of one session waiting behind its callback (256) */
	int lua_waits_max;  /* callbacks waiting at once (100000) */
	/* moongate.redis (core/server/redis.h): the url redis.connect() uses
	 * ("": none configured), and every client's options */
	char redis_url[REDIS_URL_MAX];
	struct redis_options redis;
	struct http_options http; /* moongate.http (core/server/http.h) */
	char admin[CONFIG_PATH_LEN]; /* the admin console's address ("": none;
	                                core/server/admin.h) */
	int admin_clients;  /* console clients at once (8) */
	int builtin_echo;   /* 1: the C echo instead of Lua services */
};

/* Read the server secrets from c->secrets, creating the file (mode 0600,
 * random) when it does not exist; with no file, random for this process.
 * Fills c->gate.secret. The secret is never logged. 0, or -1 with err. */
int config_secrets(struct config *c, char *err, size_t errlen);
/* The server's static public key (handshake v2), derived from the secret
 * config_secrets read: 64 hex digits, what clients pin. */
void config_server_key(const struct config *c, char hex[2 * WIRE_PUB + 1]);

/* Defaults; no listeners (config_listen adds them). */
void config_default(struct config *c);

/* Set one key from its text value. 0, or -1 with err naming the key, the
 * value and what was expected. */
int config_set(struct config *c, const char *key, const char *value,
               char *err, size_t errlen);

/* "udp://host:port", "tcp://host:port" or "raw://host:port" (raw KCP over
 * UDP); IPv6 hosts in brackets. 0, or -1 with err. */
int config_listen(struct config *c, const char *url, char *err, size_t errlen);

/* Every key with its default and meaning, for --help. */
void config_print_keys(FILE *f);

#endif
