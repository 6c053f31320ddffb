/*
 * fuzz_config.c - libFuzzer target: the server's settings on untrusted
 * input: `--set KEY=VALUE` (core/server/config.c config_set, split as
 * core/main.c splits it), listen urls (config_listen), and config.lua
 * (core/lua/script_config.c script_config_load, LuaJIT).
 *
 * config.lua is Lua code: fuzzed bytes are not run as a chunk (a mutated
 * chunk could loop forever or call os.remove). This file builds the chunk
 * instead: `return { ... }` whose keys and values the input chooses
 * (every key the server knows, and others; numbers, huge and not finite
 * ones included; strings with any bytes; booleans; nested tables), so
 * what is fuzzed is the reading of the returned table, which is the
 * parser config.lua has. The key names come from config_print_keys, so a
 * key added later is fuzzed without a change here.
 *
 * Built two ways (see CMakeLists.txt): with clang -fsanitize=fuzzer,
 * address,undefined (MOONGATE_FUZZ), and with -DFUZZ_REPLAY_MAIN as a
 * plain program (ctest fuzz_config_corpus) that replays test/fuzz/
 * corpus_config.
 *
 * Input: byte 0 bit 0 = 0: --set mode. The rest is entries separated by
 *   NUL bytes; an entry starting with 0x01 is a listen url (the rest),
 *   with 0x02 then b: the key number b (mod the key count), '=' and the
 *   rest of the entry as its value; otherwise the entry is KEY=VALUE.
 * byte 0 bit 0 = 1: config.lua mode. The rest describes one table (see
 *   value() below), written as Lua text to a temporary file and loaded.
 *
 * Checks (abort() on failure): 0, or -1 with a non-empty error; the config
 * stays within its bounds (listeners, services, paths; every string NUL-
 * terminated in its array); a --set that succeeded is taken again by the
 * same key (values read back are stable), and a failed one names the key.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "script.h"

static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_config: check failed: %s "    \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

#define KEYS_MAX 256

static char keys[KEYS_MAX][64];
static int nkeys;
static char lua_path[64];

/* Top-level names of config.lua beside the "section.key" ones. */
static const char *const extra_keys[] = {
	"listen", "services", "service_path", "secrets", "admin", "settings",
	"session", "kcp", "gate", "net", "log", "lua", "log_level",
	"shutdown_ms", "builtin_echo", "admin_clients", "room", "login",
};

static void
remove_lua(void)
{
	unlink(lua_path);
}

static void
init_once(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	log_level = LOG_ERROR;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CHECK(f != NULL);
	config_print_keys(f);
	CHECK(fclose(f) == 0);
	for (char *line = text; line && *line && nkeys < KEYS_MAX;) {
		char *nl = strchr(line, '\n');
		char name[64];
		if (sscanf(line, " %63s", name) == 1)
			strcpy(keys[nkeys++], name);
		line = nl ? nl + 1 : NULL;
	}
	free(text);
	CHECK(nkeys > 10);
	/* in memory when there is a tmpfs: written for every input */
	snprintf(lua_path, sizeof lua_path, "%s/fuzz_config.%d.lua",
	         access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
	         (int)getpid());
	atexit(remove_lua);
}

static void
check_config(const struct config *c)
{
	CHECK(c->nlisten >= 0 && c->nlisten <= CONFIG_LISTEN_MAX);
	CHECK(c->nservices >= 0 && c->nservices <= CONFIG_SERVICES_MAX);
	CHECK(c->npaths >= 0 && c->npaths <= CONFIG_PATHS_MAX);
	for (int i = 0; i < c->nlisten; i++) {
		const struct config_listen *l = &c->listen[i];
		CHECK(l->transport == GATE_UDP || l->transport == GATE_TCP);
		CHECK(l->port >= 0 && l->port <= 65535);
		CHECK(memchr(l->host, 0, sizeof l->host));
	}
	for (int i = 0; i < c->nservices; i++)
		CHECK(memchr(c->services[i], 0, sizeof c->services[i]));
	for (int i = 0; i < c->npaths; i++)
		CHECK(memchr(c->service_path[i], 0, sizeof c->service_path[i]));
	CHECK(memchr(c->secrets, 0, sizeof c->secrets));
	CHECK(memchr(c->admin, 0, sizeof c->admin));
	CHECK(c->log_level >= 0 && c->log_level <= 3);
	CHECK(c->log_format == 0 || c->log_format == 1);
}

/* ---- --set and listen ------------------------------------------------------ */

static void
set_entry(struct config *c, const uint8_t *p, size_t n)
{
	char v[1024], err[512];
	if (n > sizeof v - 80)
		n = sizeof v - 80;
	if (n > 0 && p[0] == 1) {
		memcpy(v, p + 1, n - 1);
		v[n - 1] = 0;
		err[0] = 0;
		int r = config_listen(c, v, err, sizeof err);
		CHECK(r == 0 || (r == -1 && err[0]));
		return;
	}
	if (n > 1 && p[0] == 2) {
		int k = snprintf(v, sizeof v, "%s=", keys[p[1] % nkeys]);
		memcpy(v + k, p + 2, n - 2);
		v[(size_t)k + n - 2] = 0;
	} else {
		memcpy(v, p, n);
		v[n] = 0;
	}
	/* core/main.c: KEY=VALUE, a key of 1..127 bytes */
	char key[128];
	const char *eq = strchr(v, '=');
	if (!eq || eq == v || (size_t)(eq - v) >= sizeof key)
		return;
	memcpy(key, v, (size_t)(eq - v));
	key[eq - v] = 0;
	err[0] = 0;
	int r = config_set(c, key, eq + 1, err, sizeof err);
	if (r < 0) {
		CHECK(r == -1 && err[0]);
		return;
	}
	CHECK(r == 0);
	/* the same again: still accepted */
	struct config again = *c;
	CHECK(config_set(&again, key, eq + 1, err, sizeof err) == 0);
}

static void
set_mode(const uint8_t *p, size_t n)
{
	static struct config c;
	config_default(&c);
	size_t i = 0;
	while (i < n) {
		const uint8_t *e = memchr(p + i, 0, n - i);
		size_t len = e ? (size_t)(e - (p + i)) : n - i;
		set_entry(&c, p + i, len);
		check_config(&c);
		i += len + 1;
	}
}

/* ---- config.lua ------------------------------------------------------------ */

struct gen {
	const uint8_t *p;
	size_t n, i;
	FILE *f;
	int items;
};

static unsigned
next(struct gen *g)
{
	return g->i < g->n ? g->p[g->i++] : 0;
}

static void
put_string(struct gen *g, size_t max)
{
	size_t len = next(g) % (max + 1);
	fputc('"', g->f);
	for (size_t k = 0; k < len && g->i < g->n; k++)
		fprintf(g->f, "\\%u", next(g)); /* any byte, as a Lua escape */
	fputc('"', g->f);
}

static void value(struct gen *g, int depth);

/* A key: names the server knows come first (inside a section table, the
 * part after the section's dot), the extra names before the table's so
 * that seeds keep their meaning when keys are added. */
static void
put_key(struct gen *g, int depth)
{
	unsigned b = next(g);
	if (b < 0xc0) {
		int nextra = (int)(sizeof extra_keys / sizeof extra_keys[0]);
		int k = (int)b % (nkeys + nextra);
		const char *name = k < nextra ? extra_keys[k] : keys[k - nextra];
		const char *dot = strchr(name, '.');
		if (depth > 0 && dot)
			name = dot + 1;
		fprintf(g->f, "[\"%s\"]", name);
	} else if (b < 0xe0) {
		fprintf(g->f, "[%d]", (int)(b & 0x1f) - 2);
	} else {
		fputc('[', g->f);
		put_string(g, 24);
		fputc(']', g->f);
	}
}

static void
table(struct gen *g, int depth)
{
	unsigned n = next(g) % 9;
	fputc('{', g->f);
	for (unsigned k = 0; k < n && g->items < 400; k++) {
		g->items++;
		if (next(g) & 1)
			put_key(g, depth), fputc('=', g->f);
		value(g, depth + 1);
		fputc(',', g->f);
	}
	fputc('}', g->f);
}

static void
value(struct gen *g, int depth)
{
	unsigned b = next(g);
	switch (b % 8) {
	case 0: { /* any double, finite or not */
		uint64_t bits = 0;
		for (int k = 0; k < 8; k++)
			bits |= (uint64_t)next(g) << (8 * k);
		double d;
		memcpy(&d, &bits, sizeof d);
		if (isnan(d))
			fputs("(0/0)", g->f);
		else if (isinf(d))
			fputs(d > 0 ? "(1/0)" : "(-1/0)", g->f);
		else
			fprintf(g->f, "%.17g", d);
		break;
	}
	case 1: /* a small integer, often on a bound */
		fprintf(g->f, "%d", (int)(int8_t)next(g) * ((b >> 3) & 1 ? 1 : 4099));
		break;
	case 2: {
		static const char *const edges[] = {
			"0", "-1", "1", "65535", "65536", "2147483647",
			"2147483648", "-2147483649", "1e300", "0.5", "1099511627776",
			"9223372036854775807", "-9223372036854775808", "4096",
		};
		fputs(edges[next(g) % (sizeof edges / sizeof edges[0])], g->f);
		break;
	}
	case 3:
	case 4:
		put_string(g, b & 8 ? 255 : 40);
		break;
	case 5:
		fputs(b & 8 ? "true" : "false", g->f);
		break;
	case 6: { /* a listen-like or path-like string */
		static const char *const words[] = {
			"udp://127.0.0.1:7777", "tcp://[::1]:0", "raw://127.0.0.1:1",
			"udp://127.0.0.1:7777?fec=8,2", "tcp://127.0.0.1:1?encrypt=0",
			"unix:x.sock", "tcp://127.0.0.1:0", "echo", "service", "info",
			"json", "text", "debug", "/", "", "..", "a.b_c",
		};
		fprintf(g->f, "\"%s", words[next(g) % (sizeof words / sizeof words[0])]);
		if (b & 8) /* and a tail */
			for (unsigned k = next(g) % 6; k > 0; k--)
				fprintf(g->f, "\\%u", next(g));
		fputc('"', g->f);
		break;
	}
	default:
		if (depth < 4)
			table(g, depth);
		else
			fputs("nil", g->f);
		break;
	}
}

static void
lua_mode(const uint8_t *p, size_t n)
{
	static struct config c;
	char err[1024];
	struct gen g = { .p = p, .n = n };
	g.f = fopen(lua_path, "w");
	CHECK(g.f != NULL);
	fputs("return ", g.f);
	table(&g, 0);
	fputc('\n', g.f);
	CHECK(fclose(g.f) == 0);
	config_default(&c);
	err[0] = 0;
	int r = script_config_load(&c, lua_path, err, sizeof err);
	CHECK(r == 0 || (r == -1 && err[0]));
	check_config(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	if (size < 1 || size > 20000)
		return 0;
	if (data[0] & 1)
		lua_mode(data + 1, size - 1);
	else
		set_mode(data + 1, size - 1);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
/* Replay driver (test/fuzz/replay.h): fuzz_config_replay [--mutations N]
 * FILE|DIR... */
#define FUZZ_FIXUP(mut, buf, m) do { if (((m) & 7) != 0) (mut)[0] = (buf)[0]; } while (0)
#include "replay.h"

int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, "fuzz_config");
}
#endif
