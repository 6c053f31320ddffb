/*
 * script_service.c - the services of the Lua runtime: loading each module
 * named in config.lua's `services` (through moongate.loader, so a reload
 * patches its table in place) and calling its callbacks for the gate's
 * accept and events (script_accept, script_event in script.h), in the
 * order of `services`. docs/LUA_API.md, "Services".
 *
 * A callback is looked up in the service's table on every event, as
 * docs/LUA_API.md promises: whatever changed the table (a reload, the
 * service itself, another module holding it) takes effect on the next
 * event. Only the key strings are made once (refs in sc->cb_key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "log.h"
#include "script_int.h"

/* The callbacks moongate calls, by enum script_cb. */
static const char *const cb_names[SCRIPT_CB_N] = {
	[SCRIPT_CB_HANDSHAKE] = "handshake",
	[SCRIPT_CB_CONNECT] = "connect",
	[SCRIPT_CB_MESSAGE] = "message",
	[SCRIPT_CB_CLOSE] = "close",
	[SCRIPT_CB_OFFLINE] = "offline",
	[SCRIPT_CB_RESUME] = "resume",
	[SCRIPT_CB_PATH] = "path",
};

/* script_int.h: the callback names, interned once. */
void
script_service_open(script_t *sc)
{
	for (int k = 0; k < SCRIPT_CB_N; k++) {
		lua_pushstring(sc->L, cb_names[k]);
		sc->cb_key[k] = luaL_ref(sc->L, LUA_REGISTRYINDEX);
	}
}

/* Push service i's callback cb, looked up now (lua_gettable: what
 * lua_getfield does, metamethods included, without hashing the name);
 * 0, or -1 (nothing pushed) when it has none. */
static int
push_callback(script_t *sc, int i, enum script_cb cb)
{
	lua_State *L = sc->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->svc_ref[i]);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->cb_key[cb]);
	lua_gettable(L, -2);
	lua_remove(L, -2);
	if (lua_isfunction(L, -1))
		return 0;
	lua_pop(L, 1);
	return -1;
}

/* ---- loading ------------------------------------------------------------ */

/* Levenshtein distance of two short names (longer ones: "far"). */
static int
edit_distance(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	if (na > 31 || nb > 31)
		return 99;
	int row[32];
	for (size_t j = 0; j <= nb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= na; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= nb; j++) {
			int up = row[j];
			int best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

/* script_int.h: require service i, check it returned a table, keep it. */
int
script_service_load(script_t *sc, int i, char *err, size_t errlen)
{
	lua_State *L = sc->L;
	lua_getglobal(L, "require");
	lua_pushstring(L, sc->names[i]);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->trace_ref);
	lua_insert(L, -3);
	if (lua_pcall(L, 1, 1, -3)) {
		snprintf(err, errlen, "service %s: %s", sc->names[i], lua_tostring(L, -1));
		lua_pop(L, 2);
		return -1;
	}
	if (!lua_istable(L, -1)) {
		snprintf(err, errlen, "service %s: the module must return a table of "
		         "callbacks, it returned %s", sc->names[i], luaL_typename(L, -1));
		lua_pop(L, 2);
		return -1;
	}
	static const char *const known[] = { "handshake", "connect", "message",
	                                     "close", "offline", "resume", "path",
	                                     "reload", NULL };
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1)) {
			/* a service also exports its own functions: warn only for a
			 * near miss of a callback's name (a typo like "mesage") */
			const char *k = lua_tostring(L, -2);
			int exact = 0, near = 0;
			for (int j = 0; known[j]; j++) {
				int d = edit_distance(k, known[j]);
				exact |= d == 0;
				/* one letter off, two for the longer names ("clsoe" is
				 * not flagged, but "match" is not taken for "path") */
				near |= d > 0 && d <= (strlen(known[j]) >= 6 ? 2 : 1);
			}
			if (near && !exact)
				log_warn("service %s: '%s' is not a callback moongate calls "
				         "(handshake, connect, message, close, offline, resume, "
				         "path, reload): a typo?",
				         sc->names[i], k);
		}
		lua_pop(L, 1);
	}
	sc->svc_ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 1);
	return 0;
}

/* ---- events ------------------------------------------------------------- */

/* The handshake: each service's callback in the order of `services`, each
 * in a coroutine, until one refuses. One that waits makes the verdict
 * pending (the gate holds the client under v->ticket); when it ends, the
 * next services are asked, and the verdict goes to gate_decide. While it
 * waits its arguments and where it stands are kept in a table (the task's
 * owner_ref): a struct accept_job, the hello and the info table, so they
 * go with the task whatever ends it. */
struct accept_job {
	uint64_t ticket;        /* the gate's, for gate_decide */
	int svc;                /* the service whose callback waits */
};

/* What a handshake callback returned (3 results on top, left there): a
 * refusal into v. */
static void
accept_result(script_t *sc, struct gate_verdict *v)
{
	lua_State *L = sc->L;
	if (lua_type(L, -3) == LUA_TBOOLEAN && !lua_toboolean(L, -3)) {
		const char *r = lua_tostring(L, -2);
		v->code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1)
		                              : SESSION_CLOSE_REFUSED;
		if (v->code <= 0 || v->code > 65535)
			v->code = SESSION_CLOSE_REFUSED;
		snprintf(v->reason, sizeof v->reason, "%s", r ? r : "refused");
	}
}

/* Run the handshake callbacks from service *i on, with the arguments
 * (hello, info) on top of sc->L (left there), until one refuses (v) or
 * none is left: 0; or 1 when service *i's waits (*task). */
static int
accept_run(script_t *sc, int *i, struct gate_verdict *v,
           struct script_task **task)
{
	lua_State *L = sc->L;
	for (; *i < sc->nsvc && !v->code; (*i)++) {
		if (push_callback(sc, *i, SCRIPT_CB_HANDSHAKE))
			continue;
		lua_pushvalue(L, -3);
		lua_pushvalue(L, -3);
		int rc = script_task_run(sc, 2, 3, sc->names[*i], "handshake", 0, task);
		if (rc == 1)
			return 1;
		if (rc < 0) {
			v->code = SESSION_CLOSE_REFUSED; /* fail closed */
			strcpy(v->reason, "server error");
			continue;
		}
		accept_result(sc, v);
		lua_pop(L, 3);
	}
	return 0;
}

static void accept_done(script_t *sc, struct script_task *t, int rc);

/* Keep t, service i's waiting handshake, for ticket: its job and the
 * arguments (on top of sc->L) in its owner table. */
static void
accept_park(script_t *sc, struct script_task *t, uint64_t ticket, int i)
{
	lua_State *L = sc->L;
	lua_createtable(L, 3, 0);
	struct accept_job *j = lua_newuserdata(L, sizeof *j);
	j->ticket = ticket;
	j->svc = i;
	lua_rawseti(L, -2, 1);
	lua_pushvalue(L, -3);
	lua_rawseti(L, -2, 2);
	lua_pushvalue(L, -2);
	lua_rawseti(L, -2, 3);
	t->owner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	t->done = accept_done;
	t->arg = j;
}

/* A waiting handshake callback ended (rc 0: its results on top): ask the
 * services after it, then give the gate the verdict. */
static void
accept_done(script_t *sc, struct script_task *t, int rc)
{
	lua_State *L = sc->L;
	struct accept_job *j = t->arg; /* alive: the owner table holds it */
	struct gate_verdict v;
	memset(&v, 0, sizeof v);
	if (rc < 0) {
		v.code = SESSION_CLOSE_REFUSED; /* fail closed, as at once */
		strcpy(v.reason, "server error");
	} else {
		accept_result(sc, &v);
	}
	int i = j->svc + 1;
	if (!v.code && i < sc->nsvc) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, t->owner_ref);
		lua_rawgeti(L, -1, 2);
		lua_rawgeti(L, -2, 3);
		struct script_task *nt;
		if (accept_run(sc, &i, &v, &nt)) {
			accept_park(sc, nt, j->ticket, i); /* waits again */
			return; /* the stack: script_task_wake restores it */
		}
	}
	gate_decide(sc->g, j->ticket, &v, sc->now);
}

void
script_accept(script_t *sc, const struct gate_path *from, const uint8_t *hello,
              size_t len, struct gate_verdict *v, uint64_t now)
{
	lua_State *L = sc->L;
	sc->now = now;
	int top = lua_gettop(L);
	char buf[80];
	lua_pushlstring(L, (const char *)hello, len);
	lua_createtable(L, 0, 2);
	lua_pushstring(L, gate_path_addr(from, buf, sizeof buf));
	lua_setfield(L, -2, "addr");
	lua_pushstring(L, gate_path_transport(from));
	lua_setfield(L, -2, "transport");
	int i = 0;
	struct script_task *t;
	if (accept_run(sc, &i, v, &t)) {
		if (v->ticket) {
			accept_park(sc, t, v->ticket, i);
		} else {
			/* this client cannot wait (a raw KCP client, or gate.pending_max
			 * reached): the gate refuses it and says why */
			script_task_drop(sc, t);
			if (from->raw)
				log_warn("service %s: a handshake waited for a raw KCP "
				         "client, which cannot wait: refused", sc->names[i]);
		}
		v->code = GATE_PENDING;
	}
	lua_settop(L, top);
}

/* A session event: its callbacks run in the order of `services`, one
 * after the other, each in a coroutine (script_task.c). While one waits,
 * the session's later events wait in its lane, in order; other sessions go
 * on. A job lives on the C stack while it runs straight through, and is
 * copied to the heap (with its bytes) when it has to wait or be queued. */
struct job {
	struct job *next;
	uint8_t type;           /* SESSION_EV_* */
	uint8_t heap;           /* malloc'd: freed when done */
	uint8_t remote;         /* a close's */
	int svc;                /* the service whose callback is next (or waits) */
	uint32_t sid;
	uint32_t seq;           /* a datagram's */
	int code;               /* a close's */
	size_t len;
	const uint8_t *data;    /* message, hello, close reason, or a path's
	                           "transport\0addr" */
	uint8_t bytes[];        /* the data of a heap job */
};

/* A session whose callback waits: that callback, its event, and the events
 * that came after it. In sc->lanes (by sid) only while something waits. */
struct script_lane {
	struct script_task *task;
	struct job *job;
	struct job *head, *tail;
	uint32_t n;
	int busy;                /* task_done is working on it */
	int cancelled;           /* its session closed meanwhile: task_done frees
	                            it when done (out of sc->lanes already) */
};

static struct job *
job_copy(const struct job *j)
{
	struct job *c = malloc(sizeof *c + j->len);
	if (!c)
		return NULL;
	*c = *j;
	c->next = NULL;
	c->heap = 1;
	if (j->len)
		memcpy(c->bytes, j->data, j->len);
	c->data = c->bytes;
	return c;
}

static void
job_free(struct job *j)
{
	if (j && j->heap)
		free(j);
}

/* script_int.h */
void
script_lane_free(struct script_lane *lane)
{
	job_free(lane->job);
	for (struct job *j = lane->head, *n; j; j = n) {
		n = j->next;
		job_free(j);
	}
	free(lane);
}

static enum script_cb
job_cb(const struct job *j)
{
	switch (j->type) {
	case SESSION_EV_OPEN: return SCRIPT_CB_CONNECT;
	case SESSION_EV_MESSAGE:
	case SESSION_EV_DATAGRAM: return SCRIPT_CB_MESSAGE;
	case SESSION_EV_CLOSE: return SCRIPT_CB_CLOSE;
	case SESSION_EV_OFFLINE: return SCRIPT_CB_OFFLINE;
	case SESSION_EV_RESUME: return SCRIPT_CB_RESUME;
	default: return SCRIPT_CB_PATH;
	}
}

/* The session's object (sessions table), pushed; NULL (nil pushed) when
 * the services never saw the session open. */
static struct lsession *
push_object(script_t *sc, uint32_t sid)
{
	lua_State *L = sc->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sc->sessions_ref);
	lua_rawgeti(L, -1, (int)sid);
	lua_remove(L, -2);
	return lua_touserdata(L, -1);
}

/* Push the arguments of j's callback (after the function): how many. */
static int
push_args(script_t *sc, const struct job *j)
{
	lua_State *L = sc->L;
	push_object(sc, j->sid);
	switch (j->type) {
	case SESSION_EV_OPEN:
		lua_pushlstring(L, (const char *)j->data, j->len);
		return 2;
	case SESSION_EV_MESSAGE:
	case SESSION_EV_DATAGRAM:
		lua_pushlstring(L, (const char *)j->data, j->len);
		lua_pushboolean(L, j->type == SESSION_EV_MESSAGE);
		if (j->type == SESSION_EV_MESSAGE)
			lua_pushnil(L);
		else
			lua_pushnumber(L, j->seq);
		return 4;
	case SESSION_EV_CLOSE:
		lua_pushinteger(L, j->code);
		lua_pushlstring(L, (const char *)j->data, j->len);
		lua_pushboolean(L, j->remote);
		return 4;
	case SESSION_EV_PATH:
		if (j->len) {
			size_t tl = strlen((const char *)j->data);
			lua_pushstring(L, (const char *)j->data);
			lua_pushlstring(L, (const char *)j->data + tl + 1, j->len - tl - 1);
			return 3;
		}
		return 1;
	default:
		return 1;
	}
}

static int
job_nres(const struct job *j)
{
	return j->type == SESSION_EV_OPEN ? 3 : j->type == SESSION_EV_MESSAGE ||
	       j->type == SESSION_EV_DATAGRAM ? 1 : 0;
}

/* What the callback of j returned (nres results on top, popped by the
 * caller): 1 when the later services must not be called. */
static int
job_result(script_t *sc, struct job *j)
{
	lua_State *L = sc->L;
	if (j->type == SESSION_EV_OPEN) {
		if (lua_type(L, -3) == LUA_TBOOLEAN && !lua_toboolean(L, -3)) {
			session_t *s = gate_session(sc->g, j->sid);
			const char *r = lua_tostring(L, -2);
			int code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1)
			                               : SESSION_CLOSE_REFUSED;
			if (s && session_state(s) == SESSION_OPEN) {
				session_close(s, code, r ? r : "refused", 1, sc->now);
				gate_touch(sc->g, s, sc->now);
			}
		}
		return 0;
	}
	if (j->type == SESSION_EV_MESSAGE || j->type == SESSION_EV_DATAGRAM)
		return lua_toboolean(L, -1); /* handled: later services do not see it */
	return 0;
}

/* j's callbacks are all done (or cut short). */
static void
job_end(script_t *sc, struct job *j)
{
	lua_State *L = sc->L;
	session_t *s = gate_session(sc->g, j->sid);
	if (j->type == SESSION_EV_CLOSE) {
		struct lsession *u = push_object(sc, j->sid);
		if (u)
			u->dead = 1;
		script_sync_unroute(sc, j->sid);
		lua_rawgeti(L, LUA_REGISTRYINDEX, sc->sessions_ref);
		lua_rawgeti(L, -1, (int)j->sid);
		if (u && lua_touserdata(L, -1) == u) { /* not a new session's */
			lua_pushnil(L);
			lua_rawseti(L, -3, (int)j->sid);
			sc->st.sessions--;
		}
		lua_pop(L, 3);
	} else if (j->type != SESSION_EV_MESSAGE && j->type != SESSION_EV_DATAGRAM &&
	           j->type != SESSION_EV_OPEN && s) {
		gate_touch(sc->g, s, sc->now);
	}
}

static void task_done(script_t *sc, struct script_task *t, int rc);

/* Run j's callbacks from j->svc on. 0: done; 1: one waits, and the lane
 * (made if needed) holds it and j (copied to the heap); -1: j could not be
 * kept (out of memory: logged, the rest of its callbacks skipped). */
static int
job_run(script_t *sc, struct job *j, struct script_lane *lane)
{
	lua_State *L = sc->L;
	enum script_cb cb = job_cb(j);
	for (; j->svc < sc->nsvc; j->svc++) {
		if (j->type != SESSION_EV_CLOSE && j->type != SESSION_EV_MESSAGE &&
		    j->type != SESSION_EV_DATAGRAM) {
			session_t *s = gate_session(sc->g, j->sid);
			if (!s || session_state(s) != SESSION_OPEN)
				break; /* an earlier service closed it */
		}
		if (push_callback(sc, j->svc, cb))
			continue;
		int nargs = push_args(sc, j);
		int nres = job_nres(j);
		struct script_task *t;
		int rc = script_task_run(sc, nargs, nres, sc->names[j->svc],
		                         cb_names[cb], j->sid, &t);
		if (rc == 1 && j->type != SESSION_EV_CLOSE && !gate_session(sc->g, j->sid)) {
			/* it closed its own session (and CLOSE came) before waiting:
			 * nothing more of it runs */
			script_task_drop(sc, t);
			return 0;
		}
		if (rc == 1) {
			if (!j->heap) {
				struct job *c = job_copy(j);
				if (!c) {
					script_task_drop(sc, t);
					log_error("lua: out of memory keeping session %08x's event",
					          j->sid);
					return -1;
				}
				j = c;
			}
			if (!lane) {
				lane = calloc(1, sizeof *lane);
				if (!lane || map_put(&sc->lanes, j->sid, lane)) {
					free(lane);
					script_task_drop(sc, t);
					job_free(j);
					log_error("lua: out of memory keeping session %08x's event",
					          j->sid);
					return -1;
				}
			}
			lane->task = t;
			lane->job = j;
			t->done = task_done;
			t->arg = lane;
			return 1;
		}
		if (rc < 0)
			continue; /* logged; the next service is called */
		int stop = job_result(sc, j);
		lua_pop(L, nres);
		if (stop)
			break;
	}
	job_end(sc, j);
	return 0;
}

/* Run the lane's queued events until one waits, none is left or the
 * session closed meanwhile. */
static void
lane_drain(script_t *sc, struct script_lane *lane)
{
	while (lane->head && !lane->cancelled) {
		struct job *j = lane->head;
		lane->head = j->next;
		if (!lane->head)
			lane->tail = NULL;
		lane->n--;
		j->next = NULL;
		if (job_run(sc, j, lane) == 1)
			return;
		job_free(j);
	}
}

/* The waiting callback of a lane ended: its results (rc 0) on sc->L. The
 * session may close under it (a callback closes a raw session, the memory
 * budget): lane_cancel then only marks the lane, freed here at the end. */
static void
task_done(script_t *sc, struct script_task *t, int rc)
{
	struct script_lane *lane = t->arg;
	struct job *j = lane->job;
	uint32_t sid = t->sid;
	lane->task = NULL;
	lane->job = NULL;
	lane->busy++;
	int stop = 0;
	if (rc == 0)
		stop = job_result(sc, j);
	int top = lua_gettop(sc->L);
	int waits = 0;
	if (!lane->cancelled) {
		if (stop) {
			job_end(sc, j);
		} else {
			j->svc++;
			waits = job_run(sc, j, lane) == 1;
		}
	}
	if (!waits) {
		job_free(j);
		lane_drain(sc, lane);
	}
	lua_settop(sc->L, top);
	lane->busy--;
	if (lane->cancelled) {
		if (lane->task) /* waits again after its session closed */
			script_task_drop(sc, lane->task);
		sc->st.dropped += lane->n;
		script_lane_free(lane);
	} else if (!lane->task) {
		if (map_get(&sc->lanes, sid) == lane)
			map_del(&sc->lanes, sid);
		script_lane_free(lane);
	}
}

/* The session closed: whatever of it waits is dropped. */
static void
lane_cancel(script_t *sc, uint32_t sid)
{
	struct script_lane *lane = map_del(&sc->lanes, sid);
	if (!lane)
		return;
	if (lane->task) {
		script_task_drop(sc, lane->task); /* a running one: only marked */
		lane->task = NULL;
	}
	if (lane->n)
		log_info("lua: session %08x closed while a callback waited: %u event%s "
		         "behind it dropped", sid, lane->n, lane->n == 1 ? "" : "s");
	if (lane->busy) { /* task_done works on it: it frees it */
		lane->cancelled = 1;
		return;
	}
	sc->st.dropped += lane->n;
	script_lane_free(lane);
}

/* An event of a session whose callback waits: behind it, in order. */
static void
lane_queue(script_t *sc, struct script_lane *lane, session_t *s, struct job *j)
{
	if (lane->n >= sc->queue_max) {
		sc->st.dropped++;
		if (j->type == SESSION_EV_DATAGRAM)
			return; /* unreliable: the newest matter, this one is lost */
		char reason[96];
		snprintf(reason, sizeof reason, "server busy: %u events wait behind a "
		         "callback (lua.queue_max)", lane->n);
		log_warn("lua: session %08x: %s", j->sid, reason);
		if (session_state(s) == SESSION_OPEN) {
			session_close(s, SESSION_CLOSE_BACKPRESSURE, reason, 1, sc->now);
			gate_touch(sc->g, s, sc->now);
		}
		return;
	}
	struct job *c = job_copy(j);
	if (!c) {
		sc->st.dropped++;
		log_error("lua: out of memory queueing session %08x's event", j->sid);
		return;
	}
	if (lane->tail)
		lane->tail->next = c;
	else
		lane->head = c;
	lane->tail = c;
	lane->n++;
	sc->st.queued++;
}

void
script_event(script_t *sc, session_t *s, const struct session_event *ev,
             uint64_t now)
{
	lua_State *L = sc->L;
	sc->now = now;
	int top = lua_gettop(L);
	uint32_t sid = session_id(s);
	struct job j = { .type = (uint8_t)ev->type, .sid = sid };
	char pathbuf[160];
	switch (ev->type) {
	case SESSION_EV_OPEN:
		j.data = gate_session_hello(sc->g, s, &j.len);
		script_session_push(sc, L, s); /* the object, made now */
		lua_pop(L, 1);
		break;
	case SESSION_EV_MESSAGE:
	case SESSION_EV_DATAGRAM:
		if (ev->type == SESSION_EV_DATAGRAM && script_sync_routed(sc, s, ev))
			return; /* a state, straight into its room's relay */
		j.data = ev->data;
		j.len = ev->len;
		j.seq = ev->seq;
		script_session_push(sc, L, s);
		lua_pop(L, 1);
		break;
	case SESSION_EV_CLOSE:
		lane_cancel(sc, sid);
		j.code = ev->code;
		j.remote = (uint8_t)ev->remote;
		j.data = (const uint8_t *)(ev->reason ? ev->reason : "");
		j.len = strlen((const char *)j.data);
		break;
	case SESSION_EV_PATH: {
		const struct gate_path *p = gate_session_path(sc->g, s);
		if (p) {
			char buf[80];
			int n = snprintf(pathbuf, sizeof pathbuf, "%s%c%s",
			                 gate_path_transport(p), 0,
			                 gate_path_addr(p, buf, sizeof buf));
			j.data = (const uint8_t *)pathbuf;
			j.len = n > 0 && (size_t)n < sizeof pathbuf ? (size_t)n : 0;
		}
		break;
	}
	default:
		break;
	}
	if (ev->type != SESSION_EV_OPEN && ev->type != SESSION_EV_MESSAGE &&
	    ev->type != SESSION_EV_DATAGRAM) {
		/* never opened: the services never saw it */
		int seen = push_object(sc, sid) != NULL;
		lua_pop(L, 1);
		if (!seen)
			return;
	}
	struct script_lane *lane = map_get(&sc->lanes, sid);
	if (lane)
		lane_queue(sc, lane, s, &j);
	else if (job_run(sc, &j, NULL) < 0 && j.type == SESSION_EV_CLOSE)
		job_end(sc, &j); /* out of memory: the session object still goes */
	lua_settop(L, top);
}
