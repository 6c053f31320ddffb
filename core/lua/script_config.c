/*
 * script_config.c - config.lua: a Lua file that returns a table. Each
 * value goes through config_set or config_listen (core/server/config.c), so a bad
 * value names the file, its key and what was expected.
 *
 *   return {
 *     listen = { "udp://127.0.0.1:7777", "tcp://127.0.0.1:7777" },
 *     services = { "echo" },
 *     service_path = { "service" },        -- relative to the config file
 *     secrets = "moongate.secret",         -- created on first run
 *     admin = "unix:moongate.admin",       -- the console; relative too
 *     session = { heartbeat_ms = 1000 }, kcp = { interval = 10 },
 *     log = { level = "info", format = "text" }, lua = { budget_ms = 50 },
 *   }
 *
 * The file runs in a state of its own (the standard libraries only),
 * closed before the services start.
 */
#include "script.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* Sections whose keys are "section.key" in the config table. */
static const char *const sections[] = { "session", "kcp", "gate", "net", "log",
                                        "lua", "redis", "http", NULL };

struct loader {
	struct config *c;
	const char *file;
	char dir[CONFIG_PATH_LEN]; /* the file's directory, "" for "." */
	char *err;
	size_t errlen;
};

static int
fail(struct loader *ld, const char *fmt, const char *a, const char *b)
{
	char msg[512];
	snprintf(msg, sizeof msg, fmt, a, b);
	snprintf(ld->err, ld->errlen, "%s: %s", ld->file, msg);
	return -1;
}

/* The value at the top of the stack as config text, or NULL. */
static const char *
text_of(lua_State *L, char *buf, size_t n)
{
	switch (lua_type(L, -1)) {
	case LUA_TBOOLEAN:
		return lua_toboolean(L, -1) ? "1" : "0";
	case LUA_TNUMBER: {
		lua_Number v = lua_tonumber(L, -1);
		/* Not an integer of long long's range (2^63 is just past it,
		 * and converting it is undefined): as it is, for config_set
		 * to refuse with the key's range. */
		if (v != v || v < (lua_Number)LLONG_MIN ||
		    v >= -(lua_Number)LLONG_MIN || (lua_Number)(long long)v != v)
			snprintf(buf, n, "%.17g", (double)v);
		else
			snprintf(buf, n, "%lld", (long long)v);
		return buf;
	}
	case LUA_TSTRING:
		return lua_tostring(L, -1);
	}
	return NULL;
}

static int
set_key(struct loader *ld, lua_State *L, const char *key)
{
	char buf[64], err[256];
	const char *v = text_of(L, buf, sizeof buf);
	if (!v)
		return fail(ld, "%s: expected a number, a boolean or a string, got %s",
		            key, luaL_typename(L, -1));
	if (config_set(ld->c, key, v, err, sizeof err) < 0)
		return fail(ld, "%s%s", err, "");
	return 0;
}

/* An array of strings at the top of the stack: each one to fn. */
static int
each_string(struct loader *ld, lua_State *L, const char *key,
            int (*fn)(struct loader *, const char *))
{
	if (lua_type(L, -1) == LUA_TSTRING) { /* one value: a list of one */
		return fn(ld, lua_tostring(L, -1));
	}
	if (!lua_istable(L, -1))
		return fail(ld, "%s: expected a list of strings, got %s", key,
		            luaL_typename(L, -1));
	int n = (int)lua_objlen(L, -1);
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		if (lua_type(L, -1) != LUA_TSTRING) {
			char what[64];
			snprintf(what, sizeof what, "%s[%d]", key, i);
			return fail(ld, "%s: expected a string, got %s", what,
			            luaL_typename(L, -1));
		}
		int rc = fn(ld, lua_tostring(L, -1));
		lua_pop(L, 1);
		if (rc)
			return rc;
	}
	return 0;
}

static int
add_listen(struct loader *ld, const char *url)
{
	char err[256];
	if (config_listen(ld->c, url, err, sizeof err) < 0)
		return fail(ld, "listen: %s%s", err, "");
	return 0;
}

static int
add_service(struct loader *ld, const char *name)
{
	struct config *c = ld->c;
	size_t n = strlen(name);
	if (n == 0 || n >= sizeof c->services[0] || strspn(name,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != n)
		return fail(ld, "services: '%s' is not a module name (letters, digits, "
		            "_ and ., at most 63)%s", name, "");
	if (c->nservices >= CONFIG_SERVICES_MAX)
		return fail(ld, "services: more than %s%s", "32", "");
	memcpy(c->services[c->nservices++], name, n + 1);
	return 0;
}

/* path relative to the config file's directory unless absolute */
static int
resolve(struct loader *ld, const char *key, const char *p, char *out)
{
	int n;
	if (p[0] == '/' || !ld->dir[0])
		n = snprintf(out, CONFIG_PATH_LEN, "%s", p);
	else
		n = snprintf(out, CONFIG_PATH_LEN, "%s/%s", ld->dir, p);
	if (n < 0 || n >= CONFIG_PATH_LEN)
		return fail(ld, "%s: path too long: %s", key, p);
	return 0;
}

static int
add_path(struct loader *ld, const char *p)
{
	struct config *c = ld->c;
	if (c->npaths >= CONFIG_PATHS_MAX)
		return fail(ld, "service_path: more than %s directories%s", "8", "");
	if (resolve(ld, "service_path", p, c->service_path[c->npaths]))
		return -1;
	c->npaths++;
	return 0;
}

static int
walk(struct loader *ld, lua_State *L)
{
	struct config *c = ld->c;
	int t = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			const char *tn = luaL_typename(L, -2);
			lua_pop(L, 2);
			return fail(ld, "keys must be names, found a %s key%s", tn, "");
		}
		const char *k = lua_tostring(L, -2);
		int rc = 0;
		int section = 0;
		for (int i = 0; sections[i]; i++)
			section |= !strcmp(k, sections[i]);
		if (!strcmp(k, "listen")) {
			c->nlisten = 0;
			c->gate.plain_listeners = 0;
			rc = each_string(ld, L, "listen", add_listen);
		} else if (!strcmp(k, "services")) {
			c->nservices = 0;
			rc = each_string(ld, L, "services", add_service);
		} else if (!strcmp(k, "service_path")) {
			c->npaths = 0;
			rc = each_string(ld, L, "service_path", add_path);
		} else if (!strcmp(k, "secrets")) {
			if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))
				c->secrets[0] = 0; /* false: in memory, new each start */
			else if (lua_type(L, -1) != LUA_TSTRING)
				rc = fail(ld, "secrets: expected a file name or false, got %s",
				          luaL_typename(L, -1), "");
			else
				rc = resolve(ld, "secrets", lua_tostring(L, -1), c->secrets);
		} else if (!strcmp(k, "admin") && lua_type(L, -1) == LUA_TBOOLEAN &&
		           !lua_toboolean(L, -1)) {
			c->admin[0] = 0; /* false: no console */
		} else if (!strcmp(k, "admin") && lua_type(L, -1) == LUA_TSTRING &&
		           !strncmp(lua_tostring(L, -1), "unix:", 5) &&
		           lua_tostring(L, -1)[5]) {
			/* unix:PATH, the path relative to this file like the others */
			char path[CONFIG_PATH_LEN], url[CONFIG_PATH_LEN + 8], e[256];
			rc = resolve(ld, "admin", lua_tostring(L, -1) + 5, path);
			snprintf(url, sizeof url, "unix:%s", path);
			if (!rc && config_set(c, "admin", url, e, sizeof e) < 0)
				rc = fail(ld, "%s%s", e, "");
		} else if (!strcmp(k, "settings")) {
			/* the services' own settings: read by the runtime itself
			 * (moongate.settings(name)); only the shape is checked here */
			if (!lua_istable(L, -1))
				rc = fail(ld, "settings: expected a table of tables, got %s",
				          luaL_typename(L, -1), "");
		} else if (section && lua_istable(L, -1)) {
			int s = lua_gettop(L);
			lua_pushnil(L);
			while (!rc && lua_next(L, s)) {
				char key[128];
				if (lua_type(L, -2) != LUA_TSTRING) {
					lua_pop(L, 3);
					return fail(ld, "%s: keys must be names%s", k, "");
				}
				snprintf(key, sizeof key, "%s.%s", k, lua_tostring(L, -2));
				rc = set_key(ld, L, key);
				lua_pop(L, 1);
			}
			if (rc) {
				lua_pop(L, 3);
				return rc;
			}
		} else if (section) {
			rc = fail(ld, "%s: expected a table, got %s", k, luaL_typename(L, -1));
		} else {
			rc = set_key(ld, L, k);
		}
		lua_pop(L, 1);
		if (rc) {
			lua_pop(L, 1);
			return rc;
		}
	}
	return 0;
}

int
script_config_load(struct config *c, const char *file, char *err, size_t errlen)
{
	struct loader ld = { .c = c, .file = file, .err = err, .errlen = errlen };
	const char *slash = strrchr(file, '/');
	if (slash) {
		size_t n = (size_t)(slash - file);
		if (n >= sizeof ld.dir)
			return fail(&ld, "path too long%s%s", "", "");
		memcpy(ld.dir, file, n);
		ld.dir[n] = 0;
		if (n == 0)
			strcpy(ld.dir, "/");
	}
	if (strlen(file) >= sizeof c->file)
		return fail(&ld, "path too long%s%s", "", "");
	strcpy(c->file, file);
	lua_State *L = luaL_newstate();
	if (!L)
		return fail(&ld, "out of memory%s%s", "", "");
	luaL_openlibs(L);
	int rc = 0;
	if (luaL_loadfile(L, file) || lua_pcall(L, 0, 1, 0)) {
		snprintf(err, errlen, "%s", lua_tostring(L, -1)); /* names the file */
		rc = -1;
	} else if (!lua_istable(L, -1)) {
		rc = fail(&ld, "must return a table, returned %s", luaL_typename(L, -1), "");
	} else {
		rc = walk(&ld, L);
	}
	lua_close(L);
	if (rc == 0 && c->npaths == 0) /* the default: service/ beside the file */
		rc = add_path(&ld, "service");
	return rc;
}
