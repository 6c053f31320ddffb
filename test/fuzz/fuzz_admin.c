/*
 * fuzz_admin.c - libFuzzer target: the admin console's line protocol
 * (core/server/admin.c) and its address syntax (admin_addr_parse) on
 * untrusted bytes.
 *
 * admin.c knows nothing of sockets: net calls it back (accept, data,
 * closed) and it answers through net_stream_send / net_stream_close. This
 * file compiles admin.c in and stands in for net (the functions below), so
 * the console runs without a loop or a socket; nothing in admin.c changed.
 * The run callback is a fake that checks what it is given and answers by
 * the line's first byte (ok, error, many lines, empty text, a full buffer);
 * the real command table is Lua (lualib/moongate/admin.lua), fuzzed by
 * test/fuzz/fuzz_lua.lua.
 *
 * Built two ways (see CMakeLists.txt): with clang -fsanitize=fuzzer,
 * address,undefined (MOONGATE_FUZZ), and with -DFUZZ_REPLAY_MAIN as a
 * plain program (ctest fuzz_admin_corpus) that replays test/fuzz/
 * corpus_admin.
 *
 * Input:
 *   byte 0  max_clients 1 + (b & 3); bit 2: the peers read nothing, so
 *           replies pile up to ADMIN_OUT_MAX (-2 from send)
 *   then operations; an op byte's low 3 bits choose, c = (op >> 3) & 3 is
 *   the connection slot:
 *     0 ACCEPT  a new connection in slot c
 *     1 DATA    u16 LE n, then n bytes (cut at the end), to slot c, in
 *               pieces of 1 + (op >> 5) * 37 bytes
 *     2 EOF     the peer in slot c closed its side
 *     3 RESET   net reports slot c's connection gone (closed callback)
 *     4 FAIL    the next send to slot c fails (-1)
 *     5..7      DATA of the same n bytes, whole
 *   The whole input, as text up to its first NUL, also goes to
 *   admin_addr_parse.
 *
 * Checks (abort() on failure):
 *  - every line run is what a model of the protocol cuts from the bytes
 *    (lines on \n, one \r dropped, blanks trimmed, empty lines, NUL lines
 *    and quit not run, over-long lines refused), in order, and none after
 *    the connection was closed;
 *  - every reply is its non-empty lines then one empty line ("\n" alone
 *    for an empty command), the first line "error: ..." for an error;
 *  - closed connections are never written, the client count agrees;
 *  - admin_addr_parse gives 0 with a loopback or unix address, or -1
 *    with an error text.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sanitizer/asan_interface.h>

/* admin.c's calloc and free go through these (see console_calloc) */
static void *console_calloc(size_t n, size_t size);
static void console_free(void *p);
#define calloc console_calloc
#define free console_free
#include "admin.c"
#undef calloc
#undef free

static const char *where = "";

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_admin: check failed: %s "     \
			        "(%s:%d) %s\n", #c, __FILE__, __LINE__,     \
			        where);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

#define SLOTS 4

/* ---- the console's memory ------------------------------------------------ */

/*
 * The console (struct admin) holds its reply and output buffers, 144 KB:
 * calloc'd per input it went to ASan's mmap allocator every time (page
 * faults, shadow), which made most of an input's time. admin_create's
 * calloc gets this one block instead, zeroed as calloc would; between
 * admin_release and the next admin_create ASan keeps it poisoned, so a
 * use after free is still reported (as a use-after-poison) and a second
 * free aborts. It has ASan's redzones of a malloc'd block around it.
 * Every other allocation (the clients) is calloc and free as they are.
 */
static struct {
	void *p;
	int used;
} console;

static void *
console_calloc(size_t n, size_t size)
{
	if (n != 1 || size != sizeof(struct admin) || console.used)
		return calloc(n, size);
	if (!console.p && !(console.p = malloc(size)))
		return NULL;
	ASAN_UNPOISON_MEMORY_REGION(console.p, size);
	memset(console.p, 0, size);
	console.used = 1;
	return console.p;
}

static void
console_free(void *p)
{
	if (p && p == console.p) {
		CHECK(console.used); /* freed twice */
		console.used = 0;
		ASAN_POISON_MEMORY_REGION(p, sizeof(struct admin));
		return;
	}
	free(p);
}

/* ---- net, as admin.c sees it --------------------------------------------- */

static struct conn {
	uint32_t id;            /* 0: slot empty */
	void *ctx;
	int open;               /* net still has it (not closed by admin) */
	int fail_next;
	size_t queued;          /* bytes "written", never read when deaf */
	/* the model: bytes not yet cut into lines, lines run so far */
	char pend[ADMIN_LINE_MAX + 8];
	size_t npend;
	int model_dead;         /* the model saw quit or a line too long */
	unsigned want_runs, runs;
} conns[SLOTS];

static const struct net_stream_callbacks *net_cb;
static void *net_user;
static int deaf;
static uint32_t next_conn;
static struct conn *in_call;   /* the connection admin.c is serving */
static char want_line[SLOTS][64][ADMIN_LINE_MAX + 1];

int
net_stream_listen(net_t *n, const struct net_stream_config *sc,
                  const struct net_stream_callbacks *cb, void *user,
                  int *bound_port, char *err, size_t errlen)
{
	(void)n, (void)err, (void)errlen;
	CHECK(sc->out_max == ADMIN_OUT_MAX);
	net_cb = cb;
	net_user = user;
	*bound_port = 1;
	return 7;
}

void
net_stream_unlisten(net_t *n, int handle)
{
	(void)n;
	CHECK(handle == 7);
}

static struct conn *
conn_of(uint32_t id)
{
	for (int i = 0; i < SLOTS; i++)
		if (conns[i].id == id)
			return &conns[i];
	return NULL;
}

/* One reply as admin.c frames it. */
static void
check_reply(const char *p, size_t len)
{
	if (len == 1) {
		CHECK(p[0] == '\n');
		return;
	}
	if (len == sizeof too_many - 1 && !memcmp(p, too_many, len))
		return;
	CHECK(len >= 2 && p[len - 1] == '\n' && p[len - 2] == '\n');
	/* before the terminator: no NUL, no empty line, no \r\n (memchr and
	 * memmem, not a loop with a traced comparison at each of up to 72 KB) */
	CHECK(!memchr(p, 0, len - 2));
	CHECK(!memmem(p, len - 1, "\n\n", 2));   /* no empty line */
	CHECK(!memmem(p, len - 1, "\r\n", 2));
	CHECK(p[0] != '\n');
}

int
net_stream_send(net_t *n, uint32_t id, const void *p, size_t len)
{
	(void)n;
	struct conn *c = conn_of(id);
	CHECK(c != NULL && c->open);
	check_reply(p, len);
	if (c->fail_next) {
		c->fail_next = 0;
		return -1;
	}
	if (deaf && c->queued + len > ADMIN_OUT_MAX)
		return -2;
	if (deaf)
		c->queued += len;
	return 0;
}

void
net_stream_close(net_t *n, uint32_t id, int mode)
{
	(void)n;
	CHECK(mode == NET_CLOSE_GRACEFUL || mode == NET_CLOSE_RESET);
	struct conn *c = conn_of(id);
	if (!c)
		return; /* a refused connection */
	CHECK(c->open);
	c->open = 0;
}

/* ---- the run callback ----------------------------------------------------- */

static int
fake_run(const char *line, uint64_t ticket, char *out, size_t outlen,
         void *user)
{
	size_t len = strlen(line);
	(void)user, (void)ticket; /* every answer at once: never ADMIN_PENDING */
	CHECK(in_call != NULL && in_call->open);
	CHECK(len > 0 && len <= ADMIN_LINE_MAX);
	CHECK(line[0] != ' ' && line[0] != '\t');
	CHECK(line[len - 1] != ' ' && line[len - 1] != '\t');
	CHECK(!strchr(line, '\n'));
	CHECK(strcmp(line, "quit") != 0);
	CHECK(outlen == ADMIN_REPLY_MAX && out[0] == 0);
	int slot = (int)(in_call - conns);
	unsigned k = in_call->runs++;
	CHECK(k < in_call->want_runs);
	if (k < 64)
		CHECK(!strcmp(line, want_line[slot][k]));
	switch (line[0]) {
	case 'e': /* an error with a text */
		snprintf(out, outlen, "%s\n\r\nsecond line", line);
		return -1;
	case 'E': /* an error with nothing to say */
		return -1;
	case 'f': /* the whole buffer, no NUL at the end */
		memset(out, line[len - 1] == 'n' ? '\n' : 'x', outlen);
		return 0;
	case 'm': { /* many short and empty lines: "a\n\n" 2000 times */
		static char many[6000];
		if (!many[0])
			for (size_t i = 0; i < sizeof many; i += 3)
				memcpy(many + i, "a\n\n", 3);
		memcpy(out, many, sizeof many);
		return 0;
	}
	case 'z': /* nothing to say */
		return 0;
	default:
		snprintf(out, outlen, "echo %s", line);
		return 0;
	}
}

/* ---- the model ------------------------------------------------------------ */

/* Cut complete lines of c's pending bytes as admin.c must; eof: the last
 * line without its end counts too. */
static void
model_lines(struct conn *c, int eof)
{
	size_t start = 0;
	int slot = (int)(c - conns);
	if (eof && c->npend > 0 && !c->model_dead)
		c->pend[c->npend++] = '\n';
	while (!c->model_dead) {
		char *line = c->pend + start;
		char *nl = memchr(line, '\n', c->npend - start);
		if (!nl) {
			if (c->npend - start >= ADMIN_LINE_MAX + 2)
				c->model_dead = 1; /* too long */
			break;
		}
		size_t len = (size_t)(nl - line);
		start += len + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len > ADMIN_LINE_MAX) {
			c->model_dead = 1;
			break;
		}
		while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
			len--;
		while (len > 0 && (*line == ' ' || *line == '\t'))
			line++, len--;
		if (len == 0 || memchr(line, 0, len))
			continue;
		if (len == 4 && !memcmp(line, "quit", 4)) {
			c->model_dead = 1;
			break;
		}
		if (c->want_runs < 64) {
			memcpy(want_line[slot][c->want_runs], line, len);
			want_line[slot][c->want_runs][len] = 0;
		}
		c->want_runs++;
	}
	memmove(c->pend, c->pend + start, c->npend - start);
	c->npend -= start;
}

static void
feed(struct conn *c, const uint8_t *p, size_t n, size_t piece)
{
	while (n > 0 && c->open) {
		size_t k = n < piece ? n : piece;
		/* the model takes bytes as the buffer does: up to its size */
		size_t off = 0;
		while (off < k && !c->model_dead) {
			size_t room = sizeof conns[0].pend - 6 - c->npend;
			size_t m = k - off < room ? k - off : room;
			memcpy(c->pend + c->npend, p + off, m);
			c->npend += m;
			off += m;
			model_lines(c, 0);
		}
		in_call = c;
		net_cb->data(c->id, c->ctx, p, k, net_user);
		in_call = NULL;
		if (c->open)
			CHECK(c->runs == c->want_runs);
		else
			CHECK(c->runs <= c->want_runs);
		p += k;
		n -= k;
	}
}

static void
ops(const uint8_t *p, size_t n)
{
	static char errbuf[256];
	admin_t *a;
	struct admin_addr addr;

	memset(conns, 0, sizeof conns);
	deaf = 0;
	next_conn = 100;
	memset(&addr, 0, sizeof addr);
	addr.is_unix = 1;
	strcpy(addr.path, "fuzz.sock");
	a = admin_create(NULL, &addr, 1 + (p[0] & 3), fake_run, NULL, errbuf,
	                 sizeof errbuf);
	CHECK(a != NULL && !strcmp(admin_where(a), "unix fuzz.sock"));
	deaf = (p[0] >> 2) & 1;

	size_t i = 1;
	while (i < n) {
		uint8_t op = p[i++];
		struct conn *c = &conns[(op >> 3) & 3];
		switch (op & 7) {
		case 0: /* ACCEPT */
			if (c->id && c->open)
				break;
			memset(c, 0, sizeof *c);
			c->id = next_conn++;
			c->open = 1;
			in_call = c;
			c->ctx = net_cb->accept(c->id, net_user);
			in_call = NULL;
			if (!c->ctx) { /* refused: told why, then closed */
				CHECK(!c->open);
				c->id = 0;
			}
			break;
		case 2: /* EOF */
			if (!c->id || !c->open)
				break;
			model_lines(c, 1);
			in_call = c;
			net_cb->data(c->id, c->ctx, NULL, 0, net_user);
			in_call = NULL;
			CHECK(!c->open); /* the console closes at EOF */
			CHECK(c->runs <= c->want_runs);
			break;
		case 3: /* RESET */
			if (!c->id || !c->open)
				break;
			net_cb->closed(c->id, c->ctx, "reset", net_user);
			c->open = 0;
			break;
		case 4: /* FAIL */
			c->fail_next = 1;
			break;
		default: { /* DATA */
			size_t len = 0;
			if (i < n)
				len = p[i++];
			if (i < n)
				len |= (size_t)p[i++] << 8;
			if (len > n - i)
				len = n - i;
			if (c->id && c->open)
				feed(c, p + i, len, (op & 7) == 1 ?
				     1 + (size_t)(op >> 5) * 37 : len ? len : 1);
			i += len;
			break;
		}
		}
		struct admin_stats st;
		admin_stats(a, &st);
		uint64_t live = 0;
		for (int k = 0; k < SLOTS; k++)
			live += conns[k].id && conns[k].open;
		CHECK(st.clients == live);
	}
	admin_release(a);
}

static void
addr_parse(const uint8_t *data, size_t size)
{
	char text[512], err[256];
	struct admin_addr a;
	size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
	memcpy(text, data, n);
	text[n] = 0;
	err[0] = 0;
	int r = admin_addr_parse(text, &a, err, sizeof err);
	if (r < 0) {
		CHECK(r == -1 && err[0] != 0);
		return;
	}
	CHECK(r == 0);
	if (a.is_unix) {
		CHECK(a.path[0] != 0 && memchr(a.path, 0, sizeof a.path));
		return;
	}
	struct in_addr v4;
	struct in6_addr v6;
	CHECK(a.port >= 0 && a.port <= 65535);
	CHECK((inet_pton(AF_INET, a.host, &v4) == 1 &&
	       (ntohl(v4.s_addr) >> 24) == 127) ||
	      (inet_pton(AF_INET6, a.host, &v6) == 1 &&
	       IN6_IS_ADDR_LOOPBACK(&v6)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_level = LOG_ERROR;
	if (size < 1 || size > 100000)
		return 0;
	addr_parse(data, size);
	ops(data, size);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
/* Replay driver (test/fuzz/replay.h): fuzz_admin_replay [--mutations N]
 * FILE|DIR...; fuzz_admin_replay --seeds DIR writes the seed corpus. */
#define FUZZ_FIXUP(mut, buf, m) do { if (((m) & 7) != 0) (mut)[0] = (buf)[0]; } while (0)
#include "replay.h"

static void
put_seed(const char *dir, const char *name, const char *ops_text,
         uint8_t setup)
{
	/* ops_text: "A" accept slot 0, "D<text>|" data to slot 0, "Z" EOF */
	uint8_t buf[9000];
	size_t n = 0;
	buf[n++] = setup;
	for (const char *p = ops_text; *p;) {
		if (*p == 'A') {
			buf[n++] = 0;
			p++;
		} else if (*p == 'Z') {
			buf[n++] = 2;
			p++;
		} else if (*p == 'D') {
			const char *e = strchr(p + 1, '|');
			size_t len = (size_t)(e - p - 1);
			buf[n++] = 5;
			buf[n++] = (uint8_t)len;
			buf[n++] = (uint8_t)(len >> 8);
			memcpy(buf + n, p + 1, len);
			n += len;
			p = e + 1;
		} else {
			abort();
		}
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds")) {
		const char *d = argv[2];
		put_seed(d, "seed_lines", "AD help\r\n\n  stats  \n|DeBad\nEx\nz\n|Z", 1);
		put_seed(d, "seed_quit", "ADhello\nquit\nnever run\n|", 0);
		put_seed(d, "seed_many", "ADmany\nfull\nfulln\n|D last|Z", 3);
		put_seed(d, "seed_deaf", "ADfull\nfull\nfull\nfull\n|", 4);
		static char long_line[5000];
		memset(long_line, 'x', 4097);
		strcpy(long_line + 4097, "\n|");
		char t[5100];
		snprintf(t, sizeof t, "AD%s", long_line);
		put_seed(d, "seed_too_long", t, 0);
		/* tcp address forms for admin_addr_parse */
		FILE *f;
		char path[4096];
		static const char *const addrs[] = {
			"tcp://127.0.0.1:0", "tcp://[::1]:9000", "unix:/tmp/x.sock",
			"tcp://10.0.0.1:1", "tcp://[::1:1", "tcp://127.0.0.1:99999",
		};
		for (size_t k = 0; k < sizeof addrs / sizeof addrs[0]; k++) {
			snprintf(path, sizeof path, "%s/seed_addr%zu", d, k);
			f = fopen(path, "wb");
			if (!f || fputs(addrs[k], f) < 0 || fclose(f) != 0)
				return 1;
		}
		return 0;
	}
	return fuzz_replay_main(argc, argv, "fuzz_admin");
}
#endif
