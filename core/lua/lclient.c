/*
 * lclient.c - require "moongate.client": the client library
 * (include/moongate/client.h)
 * bound to Lua 5.1 / LuaJIT, for tests, bots and Lua game clients (LÖVE,
 * Defold). Built as build/lua/moongate/client.so.
 *
 * Errors: misuse (a wrong argument type, an unknown option, a method on a
 * released client) raises; a runtime failure returns nil, message.
 *
 * client.connect(url, hello [, opts]) -> c | nil, err
 *   url: "udp://host:port", "tcp://host:port" (that transport only),
 *   "auto://host:port" or "udp://host:port,tcp://host:port" (UDP first,
 *   TCP when UDP is blocked, back to UDP when it answers); IPv6 in
 *   brackets; a name is resolved once, blocking. hello: a string (may be "" or nil) of at
 *   most MGCLIENT_HELLO_MAX bytes, handed to the server's handshake policy.
 *   opts (optional), integers, unknown keys raise:
 *     mtu, heartbeat_ms, timeout_ms, linger_ms, close_retries,
 *     handshake_retry_ms, handshake_retry_max, handshake_timeout_ms,
 *     watermark, msg_max, ack_delay, deadlink      (the session)
 *     nodelay, interval, resend, nc, sndwnd, rcvwnd, minrto (the KCP profile)
 *     manual_flush (1: c:send waits for c:flush or the next poll)
 *     frame_max, event_queue_max, buffer_max, fallback_ms,
 *     path_timeout_ms, probe_ms, reconnect_ms, tcp_linger_ms
 *                                 (the client; struct mgclient_options)
 *     server_key: a string, the server's key (`moongate key`, 64 hex
 *     digits): the hello is sealed and only that server can open the
 *     session ("server key mismatch" otherwise); the url's ?key= does the
 *     same. Without one the client warns on stderr and only servers with
 *     gate.allow_unpinned let it in.
 *   The handshake starts at once; {type="open"} (or "close" with the
 *   refusal) arrives through poll/step. err: a bad url, a socket error, a
 *   hello too long, a config the session refuses.
 *
 * client.now() -> microseconds of a monotonic clock (mgclient_now).
 *
 * c:poll([now_us]) -> n
 *   Reads the socket and runs the timers (mgclient_poll); n is the number
 *   of events waiting for next_event (0 once the close event was taken).
 *   now_us defaults to client.now().
 * c:next_event() -> nil | event
 *   {type="open"}
 *   {type="message", data=string}
 *   {type="datagram", data=string, seq=n}
 *   {type="close", code=n, reason=string, remote=boolean}
 *   {type="offline"}                 nothing heard: reconnecting
 *   {type="resume", transport="udp"|"tcp"}   back, nothing lost
 *   {type="path", transport="udp"|"tcp"}     moved to that transport
 *   {type="moved", reason=string}    the server moved the client to another
 *                                    worker or node: connecting there (an
 *                                    "open" follows, or "close")
 *   "close" is the last event. Payloads are copied into Lua strings.
 * c:step([timeout_ms]) -> {event, ...}
 *   Waits until a socket is readable, mgclient_check is due, or
 *   timeout_ms (default 0) passed, whichever comes first, then polls and
 *   drains every waiting event into an array (possibly empty). Never blocks
 *   longer than timeout_ms, and waits that long when the session has ended
 *   and every event was taken.
 * c:check([now_us]) -> us
 *   When poll is next due (absolute, in client.now() time; now_us when
 *   events are waiting).
 * c:send(str) -> true | nil, err
 * c:flush() -> true | nil, "closed"
 *   What c:send queued goes on the wire now (opts.manual_flush = 1).
 * c:send_unreliable(str) -> true | nil, err
 *   err: "closed" (handshake not done, closing or closed), "too big",
 *   "backpressure" (the session is now closing), "out of memory", or
 *   mgclient_strerror's text; c:send_unreliable also "offline" (the
 *   session is offline: the datagram was dropped, not queued).
 * c:close([code [, reason]])
 *   Graceful close (code 0, reason "closed" by default; application codes
 *   start at 100); the close event follows through poll. Idempotent.
 * c:state() -> "handshake" | "open" | "closing" | "closed"
 * c:stats() -> table: srtt_ms, rttvar_ms, offset_us, kcp_srtt_ms,
 *   waiting_bytes, in_packets, out_packets, in_bytes, out_bytes,
 *   in_auth_fail, in_replay, in_malformed, msgs_in, msgs_out, dgrams_in,
 *   dgrams_out, dgrams_stale, pings, pongs, path_changes, path_challenges,
 *   offlines, resumes, msg_max (the largest message c:send takes),
 *   encrypted (boolean), cipher ("AES-256-GCM", "ChaCha20-Poly1305", or
 *   "" before the session opened)
 * c:fd() -> the socket in use, -1 once the session has ended
 * c:transport() -> "udp" | "tcp": the transport in use
 * c:rebind() -> true | nil, err
 *   A new UDP socket (a new local port), as after a change of network.
 * c:release()
 *   Frees the client now (closing the socket without telling the server).
 *   Idempotent; __gc calls it. Any other method on a released client
 *   raises "released client".
 * tostring(c) -> "moongate.client (open): 0x..." or "... (released)"
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <moongate/client.h>

#define MT "moongate.client"

/* The userdata: a pointer, NULL once released. */
struct lclient {
	mgclient_t *c;
};

/* ---- options ------------------------------------------------------------ */

enum { OPT_INT, OPT_I64 };

static const struct option {
	const char *name;
	size_t off;  /* in struct mgclient_options */
	int kind;
} options[] = {
#define S(f) offsetof(struct mgclient_options, f)
	{ "mtu", S(mtu), OPT_INT },
	{ "heartbeat_ms", S(heartbeat_ms), OPT_INT },
	{ "timeout_ms", S(timeout_ms), OPT_INT },
	{ "linger_ms", S(linger_ms), OPT_INT },
	{ "close_retries", S(close_retries), OPT_INT },
	{ "handshake_retry_ms", S(handshake_retry_ms), OPT_INT },
	{ "handshake_retry_max", S(handshake_retry_max), OPT_INT },
	{ "handshake_timeout_ms", S(handshake_timeout_ms), OPT_INT },
	{ "watermark", S(watermark), OPT_I64 },
	{ "msg_max", S(msg_max), OPT_INT },
	{ "ack_delay", S(ack_delay), OPT_INT },
	{ "deadlink", S(deadlink), OPT_INT },
	{ "minrto", S(minrto), OPT_INT },
	{ "manual_flush", S(manual_flush), OPT_INT },
	{ "nodelay", S(nodelay), OPT_INT },
	{ "interval", S(interval), OPT_INT },
	{ "resend", S(resend), OPT_INT },
	{ "nc", S(nc), OPT_INT },
	{ "sndwnd", S(sndwnd), OPT_INT },
	{ "rcvwnd", S(rcvwnd), OPT_INT },
	{ "frame_max", S(frame_max), OPT_INT },
	{ "fallback_ms", S(fallback_ms), OPT_INT },
	{ "path_timeout_ms", S(path_timeout_ms), OPT_INT },
	{ "probe_ms", S(probe_ms), OPT_INT },
	{ "reconnect_ms", S(reconnect_ms), OPT_INT },
	{ "tcp_linger_ms", S(tcp_linger_ms), OPT_INT },
	{ "event_queue_max", S(event_queue_max), OPT_INT },
	{ "buffer_max", S(buffer_max), OPT_INT },
	{ NULL, 0, 0 },
#undef S
};

/* Set o's field named by the key at -2 from the value at -1; raises on an
 * unknown key or a value that is not an integer in range. */
static void
set_option(lua_State *L, int arg, struct mgclient_options *o)
{
	if (lua_type(L, -2) != LUA_TSTRING)
		luaL_argerror(L, arg, "option names must be strings");
	const char *key = lua_tostring(L, -2);
	if (!strcmp(key, "server_key")) {
		/* the string stays alive in the opts table until connect */
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, arg, "option 'server_key' must be a string "
			              "(64 hex digits)");
		o->server_key = lua_tostring(L, -1);
		return;
	}
	const struct option *p = options;
	while (p->name && strcmp(p->name, key))
		p++;
	if (!p->name)
		luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'", key));
	lua_Number v = lua_tonumber(L, -1);
	double lim = p->kind == OPT_INT ? (double)INT_MAX : 9007199254740992.0;
	if (lua_type(L, -1) != LUA_TNUMBER || v != floor(v) || v < -lim || v > lim)
		luaL_argerror(L, arg, lua_pushfstring(L,
		              "option '%s' must be an integer", key));
	char *field = (char *)o + p->off;
	if (p->kind == OPT_INT)
		*(int32_t *)field = (int32_t)v;
	else
		*(int64_t *)field = (int64_t)v;
}

static void
read_options(lua_State *L, int arg, struct mgclient_options *o)
{
	mgclient_options_default(o);
	if (lua_isnoneornil(L, arg))
		return;
	luaL_checktype(L, arg, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, arg)) {
		set_option(L, arg, o);
		lua_pop(L, 1);
	}
}

/* ---- helpers ------------------------------------------------------------ */

static mgclient_t *
check(lua_State *L)
{
	struct lclient *u = luaL_checkudata(L, 1, MT);
	if (!u->c)
		luaL_error(L, "released client");
	return u->c;
}

static uint64_t
opt_now(lua_State *L, int arg)
{
	if (lua_isnoneornil(L, arg))
		return mgclient_now();
	lua_Number n = luaL_checknumber(L, arg);
	luaL_argcheck(L, n >= 0 && n < 18446744073709551616.0, arg,
	              "time out of range");
	return (uint64_t)n;
}

/* Pushes the event as a table. */
static void
push_event(lua_State *L, const struct mgclient_event *ev)
{
	lua_createtable(L, 0, 4);
	switch (ev->type) {
	case MGCLIENT_OPEN:
		lua_pushliteral(L, "open");
		lua_setfield(L, -2, "type");
		break;
	case MGCLIENT_MESSAGE:
		lua_pushliteral(L, "message");
		lua_setfield(L, -2, "type");
		lua_pushlstring(L, (const char *)ev->data, ev->len);
		lua_setfield(L, -2, "data");
		break;
	case MGCLIENT_DATAGRAM:
		lua_pushliteral(L, "datagram");
		lua_setfield(L, -2, "type");
		lua_pushlstring(L, (const char *)ev->data, ev->len);
		lua_setfield(L, -2, "data");
		lua_pushnumber(L, ev->seq);
		lua_setfield(L, -2, "seq");
		break;
	case MGCLIENT_CLOSE:
		lua_pushliteral(L, "close");
		lua_setfield(L, -2, "type");
		lua_pushinteger(L, ev->code);
		lua_setfield(L, -2, "code");
		lua_pushstring(L, ev->reason ? ev->reason : "");
		lua_setfield(L, -2, "reason");
		lua_pushboolean(L, ev->remote);
		lua_setfield(L, -2, "remote");
		break;
	case MGCLIENT_OFFLINE:
		lua_pushliteral(L, "offline");
		lua_setfield(L, -2, "type");
		break;
	case MGCLIENT_MOVED:
		lua_pushliteral(L, "moved");
		lua_setfield(L, -2, "type");
		lua_pushlstring(L, (const char *)ev->data, ev->len);
		lua_setfield(L, -2, "reason");
		break;
	case MGCLIENT_RESUME:
	case MGCLIENT_PATH:
		if (ev->type == MGCLIENT_RESUME)
			lua_pushliteral(L, "resume");
		else
			lua_pushliteral(L, "path");
		lua_setfield(L, -2, "type");
		lua_pushstring(L, ev->transport == MGCLIENT_TCP ? "tcp" : "udp");
		lua_setfield(L, -2, "transport");
		break;
	}
}

static int
send_result(lua_State *L, int r)
{
	if (r >= 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	switch (r) {
	case MGCLIENT_ECLOSED: lua_pushliteral(L, "closed"); break;
	case MGCLIENT_ETOOBIG: lua_pushliteral(L, "too big"); break;
	case MGCLIENT_EFULL: lua_pushliteral(L, "backpressure"); break;
	case MGCLIENT_ENOMEM: lua_pushliteral(L, "out of memory"); break;
	case MGCLIENT_EOFFLINE: lua_pushliteral(L, "offline"); break;
	default: lua_pushstring(L, mgclient_strerror(r)); break;
	}
	return 2;
}

/* ---- client.* ----------------------------------------------------------- */

static int
lconnect(lua_State *L)
{
	const char *url = luaL_checkstring(L, 1);
	size_t hello_len = 0;
	const char *hello = luaL_optlstring(L, 2, "", &hello_len);
	struct mgclient_options o;
	read_options(L, 3, &o);
	/* the userdata first: a memory error raised here leaks nothing */
	struct lclient *u = lua_newuserdata(L, sizeof *u);
	u->c = NULL;
	luaL_getmetatable(L, MT);
	lua_setmetatable(L, -2);
	char err[256];
	u->c = mgclient_connect(url, hello, hello_len, &o, err, sizeof err);
	if (!u->c) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		return 2;
	}
	return 1;
}

static int
lnow(lua_State *L)
{
	lua_pushnumber(L, (lua_Number)mgclient_now());
	return 1;
}

/* ---- methods ------------------------------------------------------------ */

static int
lpoll(lua_State *L)
{
	mgclient_t *c = check(L);
	int n = mgclient_poll(c, opt_now(L, 2));
	lua_pushinteger(L, n > 0 ? n : 0);
	return 1;
}

static int
lnext_event(lua_State *L)
{
	mgclient_t *c = check(L);
	struct mgclient_event ev;
	if (!mgclient_next_event(c, &ev)) {
		lua_pushnil(L);
		return 1;
	}
	push_event(L, &ev);
	return 1;
}

static int
lstep(lua_State *L)
{
	mgclient_t *c = check(L);
	lua_Number ms = luaL_optnumber(L, 2, 0);
	luaL_argcheck(L, ms >= 0, 2, "timeout must not be negative");
	if (ms > INT_MAX)
		ms = INT_MAX;
	uint64_t now = mgclient_now();
	uint64_t due = mgclient_check(c, now);
	/* in whole milliseconds, rounded up: waking before due would spin */
	uint64_t until = due > now ? (due - now + 999) / 1000 : 0;
	int wait = until < (uint64_t)ms ? (int)until : (int)ms;
	if (wait > 0) {
		int fds[2];
		int n = mgclient_fds(c, fds);
		struct pollfd p[2];
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		/* no socket: poll waits out the timeout */
		poll(p, (nfds_t)n, wait); /* EINTR: poll below all the same */
	}
	mgclient_poll(c, mgclient_now());
	lua_newtable(L);
	struct mgclient_event ev;
	for (int i = 1; mgclient_next_event(c, &ev); i++) {
		push_event(L, &ev);
		lua_rawseti(L, -2, i);
	}
	return 1;
}

static int
lcheck(lua_State *L)
{
	mgclient_t *c = check(L);
	lua_pushnumber(L, (lua_Number)mgclient_check(c, opt_now(L, 2)));
	return 1;
}

static int
lsend(lua_State *L)
{
	mgclient_t *c = check(L);
	size_t len;
	const char *msg = luaL_checklstring(L, 2, &len);
	return send_result(L, mgclient_send(c, msg, len));
}

static int
lflush(lua_State *L)
{
	mgclient_t *c = check(L);
	return send_result(L, mgclient_flush(c));
}

static int
lsend_unreliable(lua_State *L)
{
	mgclient_t *c = check(L);
	size_t len;
	const char *msg = luaL_checklstring(L, 2, &len);
	return send_result(L, mgclient_send_unreliable(c, msg, len));
}

static int
lclose(lua_State *L)
{
	mgclient_t *c = check(L);
	lua_Number code = luaL_optnumber(L, 2, MGCLIENT_CLOSE_NORMAL);
	luaL_argcheck(L, code >= 0 && code <= 65535 && code == floor(code), 2,
	              "close code must be an integer in 0..65535");
	const char *reason = luaL_optstring(L, 3, "closed");
	mgclient_close(c, (int)code, reason);
	return 0;
}

static int
lstate(lua_State *L)
{
	mgclient_t *c = check(L);
	static const char *const names[] = { "handshake", "open", "closing",
	                                     "closed" };
	int s = mgclient_state(c);
	lua_pushstring(L, s >= 0 && s <= MGCLIENT_STATE_CLOSED ? names[s] : "unknown");
	return 1;
}

static int
lstats(lua_State *L)
{
	mgclient_t *c = check(L);
	struct mgclient_stats st = { .size = sizeof st };
	mgclient_stats(c, &st);
	lua_createtable(L, 0, 20);
#define NUM(f) (lua_pushnumber(L, (lua_Number)st.f), lua_setfield(L, -2, #f))
	NUM(srtt_ms);
	NUM(rttvar_ms);
	NUM(offset_us);
	NUM(kcp_srtt_ms);
	NUM(waiting_bytes);
	NUM(in_packets);
	NUM(out_packets);
	NUM(in_bytes);
	NUM(out_bytes);
	NUM(in_auth_fail);
	NUM(in_replay);
	NUM(in_malformed);
	NUM(msgs_in);
	NUM(msgs_out);
	NUM(dgrams_in);
	NUM(dgrams_out);
	NUM(dgrams_stale);
	NUM(pings);
	NUM(pongs);
	NUM(path_changes);
	NUM(path_challenges);
	NUM(offlines);
	NUM(resumes);
	NUM(msg_max);
#undef NUM
	lua_pushboolean(L, st.encrypted);
	lua_setfield(L, -2, "encrypted");
	lua_pushstring(L, st.cipher);
	lua_setfield(L, -2, "cipher");
	return 1;
}

static int
lfd(lua_State *L)
{
	lua_pushinteger(L, mgclient_fd(check(L)));
	return 1;
}

static int
ltransport(lua_State *L)
{
	if (mgclient_transport(check(L)) == MGCLIENT_TCP)
		lua_pushliteral(L, "tcp");
	else
		lua_pushliteral(L, "udp");
	return 1;
}

static int
lrebind(lua_State *L)
{
	if (mgclient_rebind(check(L)) < 0) {
		lua_pushnil(L);
		lua_pushstring(L, strerror(errno));
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int
lrelease(lua_State *L)
{
	struct lclient *u = luaL_checkudata(L, 1, MT);
	mgclient_release(u->c); /* NULL: nothing */
	u->c = NULL;
	return 0;
}

static int
ltostring(lua_State *L)
{
	struct lclient *u = luaL_checkudata(L, 1, MT);
	if (!u->c) {
		lua_pushfstring(L, MT " (released): %p", (void *)u);
		return 1;
	}
	lstate(L);
	lua_pushfstring(L, MT " (%s): %p", lua_tostring(L, -1), (void *)u);
	return 1;
}

static const luaL_Reg methods[] = {
	{ "poll", lpoll },
	{ "next_event", lnext_event },
	{ "step", lstep },
	{ "check", lcheck },
	{ "send", lsend },
	{ "flush", lflush },
	{ "send_unreliable", lsend_unreliable },
	{ "close", lclose },
	{ "state", lstate },
	{ "stats", lstats },
	{ "fd", lfd },
	{ "transport", ltransport },
	{ "rebind", lrebind },
	{ "release", lrelease },
	{ NULL, NULL },
};

static const luaL_Reg functions[] = {
	{ "connect", lconnect },
	{ "now", lnow },
	{ NULL, NULL },
};

/* The only symbol the module exports (the target hides the rest). */
__attribute__((visibility("default"))) int
luaopen_moongate_client(lua_State *L)
{
	if (luaL_newmetatable(L, MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, lrelease);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, ltostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushliteral(L, MT);
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	luaL_newlib(L, functions);
	return 1;
}
