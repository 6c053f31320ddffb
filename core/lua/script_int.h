/*
 * script_int.h - what the files of the Lua runtime share; private to
 * core/lua/script*.c, not part of script.h:
 *
 *   script.c          create/release, pcall, "moongate.core", the console
 *   script_service.c  services: loading, callbacks for accept and events
 *   script_session.c  session objects, moongate.session/sessions/broadcast
 *   script_timer.c    moongate.after/every over the timer set (timers.c)
 *   script_sync.c     moongate.relay/frames
 *   script_config.c   config.lua
 *   script_crypto.c   moongate.verify_ed25519, base64url
 */
#ifndef MOONGATE_SCRIPT_INT_H
#define MOONGATE_SCRIPT_INT_H

#include <stdint.h>

#include <lua.h>

#include "script.h"
#include "map.h"
#include "timers.h"

#define SESSION_MT "moongate.session"

/* A session object: the session is looked up by sid on every use, so a
 * kept object never points at a freed session. */
struct lsession {
	uint32_t sid;
	uint8_t dead;           /* its session closed: every method says so */
};

/* The callbacks of a service that moongate calls. */
enum script_cb {
	SCRIPT_CB_HANDSHAKE,
	SCRIPT_CB_CONNECT,
	SCRIPT_CB_MESSAGE,
	SCRIPT_CB_CLOSE,
	SCRIPT_CB_OFFLINE,
	SCRIPT_CB_RESUME,
	SCRIPT_CB_PATH,
	SCRIPT_CB_N
};

struct script {
	lua_State *L;
	gate_t *g;
	uint64_t now;
	int budget_ms;
	uint32_t timers_max;     /* lua.timers_max */
	int dgram_max;           /* the smallest session_dgram_room a session
	                            of this server can have (FEC listeners) */
	int nsvc;
	char names[CONFIG_SERVICES_MAX][64];
	int svc_ref[CONFIG_SERVICES_MAX]; /* the table service i returned */
	int cb_key[SCRIPT_CB_N]; /* the callback names, as Lua strings */
	int sessions_ref, empty_ref, trace_ref;
	int settings_ref;        /* config.lua's `settings` table (or {}) */
	uint8_t secret[32];      /* the server secret: keys of moongate.sign */
	timers_t *timers;        /* moongate.after/every; data: the handles */
	struct script_stats st;  /* timers and memory_kb: see script_stats */
	/* The callback running now (script_pcall): the keys of what it logs */
	const char *cur_svc;
	uint32_t cur_sid;
	script_counters_fn counters; /* moongate.server_stats (script.h) */
	void *counters_user;
	struct map routes;       /* sid -> struct script_route: relay:route */
};

/* relay:route(id, session): the session's unreliable datagrams go into
 * the relay as member id's states without a Lua callback. */
struct lrelay;
struct script_route {
	struct lrelay *relay;
	uint32_t id;
};
/* 1 when the datagram ev of s was taken by its route (core/lua/script_sync.c). */
int script_sync_routed(script_t *sc, session_t *s, const struct session_event *ev);
/* Forget every route of s (its session closed). */
void script_sync_unroute(script_t *sc, uint32_t sid);

/* The script of a function of "moongate.core" (its upvalue 1). */
static inline script_t *
script_self(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

/* Call the function below its nargs arguments under pcall with the
 * traceback handler, timed against lua.budget_ms; svc and what name it in
 * the log ("service timer: callback"), sid 0 when no session is involved.
 * 0 with nres results on the stack, or -1 (logged, nothing left). */
int script_pcall(script_t *sc, int nargs, int nres, const char *svc,
                 const char *what, uint32_t sid);

/* Services (core/lua/script_service.c): the callback names, made once;
 * require service i (sc->names[i]) into sc->svc_ref[i]: 0, or -1 with err
 * (the service, the file, the line). */
void script_service_open(script_t *sc);
int script_service_load(script_t *sc, int i, char *err, size_t errlen);

/* Session objects (core/lua/script_session.c): the metatable and the
 * registry tables; the object of s pushed (made on first use);
 * moongate.session, moongate.sessions, moongate.broadcast. */
void script_session_open(script_t *sc);
struct lsession *script_session_push(script_t *sc, session_t *s);
int script_session_get(lua_State *L);
int script_session_list(lua_State *L);
int script_session_broadcast(lua_State *L);

/* Timers (core/lua/script_timer.c): the timer metatable; the fire
 * callback of sc->timers (user: the script; runs the timer's function
 * under pcall); moongate.after / moongate.every. */
void script_timer_open(script_t *sc);
void script_timer_fire(void *user, void *data, int once, uint64_t now);
int script_timer_after(lua_State *L);
int script_timer_every(lua_State *L);

/* moongate.relay{...} and moongate.frames{...} (core/lua/script_sync.c); the
 * script is upvalue 1, as for every function of "moongate.core". */
int script_sync_relay(lua_State *L);
int script_sync_frames(lua_State *L);

/* moongate.verify_ed25519, moongate.base64url_decode/_encode
 * (core/lua/script_crypto.c). */
int script_crypto_verify_ed25519(lua_State *L);
int script_crypto_b64url_decode(lua_State *L);
int script_crypto_b64url_encode(lua_State *L);

#endif
