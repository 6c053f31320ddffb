/*
 * script_http.c - moongate.http in the Lua runtime (lualib/moongate/http.lua
 * wraps it; docs/LUA_API.md, "HTTP"): requests of core/server/http.h on the
 * server's loop, which make the running callback wait for the response.
 *
 *   core.http_request{ url=, method=, headers=, body=, timeout_ms=,
 *                      max_size=, follow= } -> res | nil, err
 *   res = { status = 200, headers = { ["content-type"] = "..." },
 *           body = "...", seconds = 0.012 }
 *
 * One multi handle per runtime, made on first use. A callback dropped
 * while it waits (its session closed) aborts its request.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "http.h"
#include "script_int.h"

#define HTTP_HEADERS_MAX 64

/* The header block as a table: lower-case names; a repeated header's
 * values joined with ", " (RFC 9110 5.3). */
static void
push_headers(lua_State *L, const char *h, size_t n)
{
	lua_newtable(L);
	const char *end = h + n;
	while (h < end) {
		const char *eol = memchr(h, '\n', (size_t)(end - h));
		const char *le = eol ? eol : end;
		const char *colon = memchr(h, ':', (size_t)(le - h));
		if (colon && colon > h && memcmp(h, "HTTP/", 5)) {
			char name[128];
			size_t nl = (size_t)(colon - h);
			if (nl < sizeof name) {
				for (size_t i = 0; i < nl; i++)
					name[i] = (char)tolower((unsigned char)h[i]);
				const char *v = colon + 1;
				const char *ve = le;
				while (v < ve && (*v == ' ' || *v == '\t'))
					v++;
				while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
					ve--;
				lua_pushlstring(L, name, nl);
				lua_pushvalue(L, -1);
				lua_rawget(L, -3);
				if (lua_isstring(L, -1)) {
					lua_pushliteral(L, ", ");
					lua_pushlstring(L, v, (size_t)(ve - v));
					lua_concat(L, 3);
				} else {
					lua_pop(L, 1);
					lua_pushlstring(L, v, (size_t)(ve - v));
				}
				lua_rawset(L, -3);
			}
		}
		h = le + 1;
	}
}

static void
on_done(void *user, uint64_t arg, const struct http_response *res, const char *err)
{
	script_t *sc = user;
	lua_State *L = sc->L;
	sc->now = net_now(sc->net);
	if (!res) {
		lua_pushnil(L);
		lua_pushstring(L, err);
	} else {
		lua_createtable(L, 0, 4);
		lua_pushnumber(L, (lua_Number)res->status);
		lua_setfield(L, -2, "status");
		lua_pushlstring(L, res->body, res->body_len);
		lua_setfield(L, -2, "body");
		lua_pushnumber(L, res->seconds);
		lua_setfield(L, -2, "seconds");
		push_headers(L, res->headers, res->headers_len);
		lua_setfield(L, -2, "headers");
		lua_pushnil(L);
	}
	script_task_wake(sc, arg, 2);
}

static void
cancel(script_t *sc, uint64_t wid, void *io)
{
	(void)wid;
	http_abort(sc->http, io);
}

static int
opt_int(lua_State *L, const char *k, int lo, int hi)
{
	lua_getfield(L, 1, k);
	int v = 0;
	if (!lua_isnil(L, -1)) {
		if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < lo ||
		    lua_tonumber(L, -1) > hi)
			return luaL_error(L, "moongate.http: %s must be a number in %d..%d",
			                  k, lo, hi);
		v = (int)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* core.http_request(opts) -> res | nil, err (waits) */
int
script_http_request(lua_State *L)
{
	script_t *sc = script_self(L);
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	struct http_request rq = { 0 };
	lua_getfield(L, 1, "url");
	rq.url = lua_tostring(L, -1);
	if (!rq.url || lua_type(L, -1) != LUA_TSTRING)
		return luaL_error(L, "moongate.http: url (a string) expected");
	lua_getfield(L, 1, "method");
	if (!lua_isnil(L, -1)) {
		rq.method = lua_tostring(L, -1);
		if (!rq.method || lua_type(L, -1) != LUA_TSTRING)
			return luaL_error(L, "moongate.http: method must be a string");
		for (const char *p = rq.method; *p; p++)
			if (!isupper((unsigned char)*p))
				return luaL_error(L, "moongate.http: method '%s' (upper-case "
				                  "letters: GET, POST, ...)", rq.method);
	}
	lua_getfield(L, 1, "body");
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_error(L, "moongate.http: body must be a string");
		rq.body = lua_tolstring(L, -1, &rq.body_len);
	}
	rq.timeout_ms = opt_int(L, "timeout_ms", 1, 3600000);
	rq.max_size = (size_t)opt_int(L, "max_size", 1, 1 << 30);
	rq.follow = opt_int(L, "follow", 0, 20);
	/* headers: { name = value } (or a list of "Name: value" lines), made
	 * into lines kept in a table on the stack while the request is made */
	const char *lines[HTTP_HEADERS_MAX];
	int n = 0;
	lua_getfield(L, 1, "headers");
	int ht = lua_gettop(L);
	lua_newtable(L);
	int lt = lua_gettop(L);
	if (!lua_isnil(L, ht)) {
		if (!lua_istable(L, ht))
			return luaL_error(L, "moongate.http: headers must be a table");
		lua_pushnil(L);
		while (lua_next(L, ht)) {
			if (n >= HTTP_HEADERS_MAX)
				return luaL_error(L, "moongate.http: more than %d headers",
				                  HTTP_HEADERS_MAX);
			if (lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TSTRING) {
				lua_pushvalue(L, -1);
			} else if (lua_type(L, -2) == LUA_TSTRING &&
			           (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
				lua_pushvalue(L, -2);
				lua_pushliteral(L, ": ");
				lua_pushvalue(L, -3);
				lua_concat(L, 3);
			} else {
				return luaL_error(L, "moongate.http: headers: name = value strings");
			}
			if (strpbrk(lua_tostring(L, -1), "\r\n"))
				return luaL_error(L, "moongate.http: a header with a line break");
			lua_rawseti(L, lt, ++n);
			lua_pop(L, 1); /* the value; the key stays for lua_next */
		}
	}
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, lt, i + 1);
		lines[i] = lua_tostring(L, -1); /* alive: the table holds it */
		lua_pop(L, 1);
	}
	rq.headers = lines;
	rq.nheaders = n;
	if (!sc->loop)
		return luaL_error(L, "moongate.http: no event loop here (moongate --check)");
	if (!sc->http && !(sc->http = http_create(sc->loop, &sc->http_opts, on_done, sc)))
		return luaL_error(L, "moongate.http: cannot start libcurl");
	uint64_t wid = script_task_wait(L, "moongate.http");
	char err[256];
	http_req_t *q = http_request(sc->http, &rq, wid, err, sizeof err);
	if (!q) {
		script_task_unwait(L);
		lua_pushnil(L);
		lua_pushstring(L, err);
		return 2;
	}
	script_task_on_cancel(L, cancel, q);
	return lua_yield(L, 0);
}

/* script.h */
void
script_http_stats(const script_t *sc, struct http_stats *st)
{
	if (sc->http)
		http_stats(sc->http, st);
	else
		memset(st, 0, sizeof *st);
}
