/*
 * test_log.c - core/server/log.c: the text and JSON lines, the event's
 * keys, escaping, long lines cut but still whole, one write per line.
 */
#include "log.h"
#include "testutil.h"

#include <fcntl.h>
#include <unistd.h>

static size_t
line(char *buf, size_t len, int fmt, int level, const struct log_ctx *ctx,
     const char *msg)
{
	log_format = fmt;
	size_t n = log_format_line(buf, len, level, ctx, msg);
	log_format = LOG_TEXT;
	buf[n < len ? n : len - 1] = 0;
	return n;
}

TEST(text_line)
{
	char b[256];
	size_t n = line(b, sizeof b, LOG_TEXT, LOG_WARN, NULL, "hello world");
	/* 2026-11-22T10:00:00.123Z warn hello world\n */
	CHECK_EQ(n, strlen(b));
	CHECK(n == 24 + strlen(" warn hello world\n"));
	CHECK(b[4] == '-' && b[10] == 'T' && b[23] == 'Z');
	CHECK(!strcmp(b + 24, " warn hello world\n"));
}

TEST(json_keys)
{
	char b[512];
	struct log_ctx c = { .event = "open", .session = 0x3f2a1b0c,
		.service = "login", .room = "r7", .peer = "udp 127.0.0.1:5" };
	line(b, sizeof b, LOG_JSON, LOG_INFO, &c, "session 3f2a1b0c open");
	CHECK(!strncmp(b, "{\"time\":\"", 9));
	const char *rest = strstr(b, "\",\"level\"");
	REQUIRE(rest != NULL);
	CHECK(!strcmp(rest, "\",\"level\":\"info\",\"event\":\"open\","
	      "\"session\":\"3f2a1b0c\",\"service\":\"login\",\"room\":\"r7\","
	      "\"peer\":\"udp 127.0.0.1:5\",\"msg\":\"session 3f2a1b0c open\"}\n"));
	/* no keys: only time, level, msg */
	line(b, sizeof b, LOG_JSON, LOG_ERROR, NULL, "x");
	rest = strstr(b, "\",\"level\"");
	REQUIRE(rest != NULL);
	CHECK(!strcmp(rest, "\",\"level\":\"error\",\"msg\":\"x\"}\n"));
}

TEST(json_escapes)
{
	char b[256];
	struct log_ctx c = { .service = "a\"b" };
	line(b, sizeof b, LOG_JSON, LOG_INFO, &c, "q\" b\\ n\n t\t");
	CHECK(strstr(b, "\"service\":\"a\\\"b\"") != NULL);
	CHECK(strstr(b, "\"msg\":\"q\\\" b\\\\ n\\n t\\u0009\"}\n") != NULL);
}

TEST(long_lines_are_cut_whole)
{
	char msg[600];
	memset(msg, '"', sizeof msg - 1);
	msg[sizeof msg - 1] = 0;
	char b[256];
	size_t n = line(b, sizeof b, LOG_JSON, LOG_INFO, NULL, msg);
	CHECK(n <= sizeof b);
	CHECK(n >= sizeof b - 16); /* filled, not truncated early */
	/* cut mid-message, and still one closed object on one line */
	CHECK(!strcmp(b + n - 6, "...\"}\n"));
	/* the cut never splits an escape: the body before ... is whole pairs */
	const char *body = strstr(b, "\"msg\":\"") + 7;
	size_t blen = (size_t)(b + n - 6 - body);
	CHECK(blen % 2 == 0);
	n = line(b, sizeof b, LOG_TEXT, LOG_INFO, NULL, msg);
	CHECK(n <= sizeof b);
	CHECK(!strcmp(b + n - 4, "...\n"));
}

/* The line reaches stderr as one write: a pipe read gets it whole, and a
 * level below the configured one writes nothing. */
TEST(one_write_per_line)
{
	int p[2];
	REQUIRE(pipe(p) == 0);
	int saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	log_level = LOG_INFO;
	log_debug("not %s", "shown");
	struct log_ctx c = { .event = "x", .session = 1 };
	log_ev(LOG_INFO, &c, "n=%d", 42);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	char b[256];
	ssize_t k = read(p[0], b, sizeof b - 1);
	REQUIRE(k > 0);
	b[k] = 0;
	CHECK(strstr(b, " info n=42\n") != NULL);
	CHECK(strstr(b, "shown") == NULL);
	CHECK(read(p[0], b, sizeof b) == 0);
	close(p[0]);
}

int
main(int argc, char **argv)
{
	static const struct tu_test tests[] = {
		TU(text_line), TU(json_keys), TU(json_escapes),
		TU(long_lines_are_cut_whole), TU(one_write_per_line),
	};
	return tu_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
