/*
 * test_log.c - core/server/log.c: the text and JSON lines, the event's
 * keys, escaping, long lines cut but still whole, one write per line;
 * the rate limit of error and warn lines per site, on virtual time.
 */
#include "log.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- the rate limit ---------------------------------------------------- */

static uint64_t vnow;

static uint64_t
vclock(void)
{
	return vnow;
}

static int capture_saved = -1;
static char capture_path[64];

/* stderr into a fresh file, on the virtual clock */
static void
capture_start(void)
{
	strcpy(capture_path, "/tmp/test_log.XXXXXX");
	int fd = mkstemp(capture_path);
	REQUIRE(fd >= 0);
	capture_saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_set_clock(vclock);
	log_level = LOG_INFO;
	log_format = LOG_TEXT;
	log_burst = 5;
	log_window_ms = 10000;
}

/* What was written since capture_start (malloc'd), stderr restored. */
static char *
capture_end(void)
{
	dup2(capture_saved, STDERR_FILENO);
	close(capture_saved);
	log_set_clock(NULL);
	FILE *f = fopen(capture_path, "rb");
	unlink(capture_path);
	if (!f)
		return NULL;
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

static int
count(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* 10,000 warn lines of one site in one window: 5 written, then one line
 * with the exact count once the window is over; another site meanwhile
 * is not held back; a second window the same, its count said by that
 * site's next line. */
TEST(flood_of_one_site_is_collapsed)
{
	capture_start();
	struct log_stats before, after;
	log_stats(&before);
	vnow = 1000000;
	for (int i = 0; i < 10000; i++) {
		vnow = 1000000 + (uint64_t)i; /* 10 s of lines */
		log_warn("flood from %s: packet %d", "10.0.0.7", i);
		if (i % 4000 == 0)
			log_error("other site %d", i);
	}
	log_info("an info line %d", 1); /* not limited, flushes nothing yet */
	vnow = 1000000 + 9999;
	log_flush(vnow);                /* the window is not over */
	vnow = 1000000 + 10000;
	log_flush(vnow);                /* it is now */
	/* a second window: 100 lines, told by the next line after it */
	for (int i = 0; i < 100; i++) {
		vnow = 1020000 + (uint64_t)i;
		log_warn("flood from %s: packet %d", "10.0.0.7", i);
	}
	vnow = 1030000 + 500;
	log_warn("flood from %s: packet %d", "10.0.0.7", -1);
	log_stats(&after);
	char *out = capture_end();
	REQUIRE(out != NULL);
	VERBOSE("%s", out);
	/* 5 + 5 + 1 in the windows, 3 from the other site, 2 summaries */
	CHECK_EQ(count(out, "\n"), 5 + 5 + 1 + 3 + 1 + 2);
	CHECK_EQ(count(out, "flood from 10.0.0.7: packet"), 11 + 2);
	CHECK_EQ(count(out, " error other site "), 3);
	CHECK(strstr(out, " warn flood from 10.0.0.7: packet 4\n") != NULL);
	CHECK(strstr(out, " warn flood from 10.0.0.7: packet 5\n") == NULL);
	CHECK(strstr(out, " warn ... and 9995 more like \"flood from 10.0.0.7: "
	             "packet 4\" in the last 10 s\n") != NULL);
	CHECK(strstr(out, " warn ... and 95 more like \"flood from 10.0.0.7: "
	             "packet 4\" in the last 10 s\n") != NULL);
	/* the summary comes before the line that started the new window */
	const char *sum = strstr(out, "95 more");
	CHECK(sum && strstr(sum, "packet -1\n"));
	CHECK_EQ(after.suppressed - before.suppressed, 9995 + 95);
	CHECK_EQ(after.summaries - before.summaries, 2);
}

/* More sites than the table holds: a site pushed out writes its count
 * first, so the sum of the counts is every line left out. */
TEST(many_sites_counts_stay_exact)
{
	capture_start();
	struct log_stats before, after;
	log_stats(&before);
	vnow = 5000000;
	for (uintptr_t site = 1; site <= 3 * LOG_SITES; site++)
		for (int i = 0; i < 7; i++)
			log_site_event(LOG_WARN, site, NULL, "site %u line %d",
			               (unsigned)site, i);
	vnow += 10000;
	log_flush(vnow);
	log_stats(&after);
	char *out = capture_end();
	REQUIRE(out != NULL);
	unsigned long long sum = 0;
	int summaries = 0;
	for (const char *p = out; (p = strstr(p, "... and ")); p++) {
		sum += strtoull(p + 8, NULL, 10);
		summaries++;
	}
	CHECK_EQ(sum, 3ull * LOG_SITES * 2);
	CHECK_EQ(summaries, 3 * LOG_SITES);
	CHECK_EQ(count(out, " line 4\n"), 3 * LOG_SITES);
	CHECK_EQ(count(out, " line 5\n"), 0);
	CHECK_EQ(after.suppressed - before.suppressed, 3ull * LOG_SITES * 2);
}

/* log.burst = 0: nothing is held back. */
TEST(no_limit_when_burst_is_zero)
{
	capture_start();
	log_burst = 0;
	vnow = 9000000;
	for (int i = 0; i < 50; i++)
		log_warn("unlimited %d", i);
	char *out = capture_end();
	log_burst = 5;
	REQUIRE(out != NULL);
	CHECK_EQ(count(out, " warn unlimited "), 50);
}

int
main(int argc, char **argv)
{
	static const struct tu_test tests[] = {
		TU(text_line), TU(json_keys), TU(json_escapes),
		TU(long_lines_are_cut_whole), TU(one_write_per_line),
		TU(flood_of_one_site_is_collapsed), TU(many_sites_counts_stay_exact),
		TU(no_limit_when_burst_is_zero),
	};
	return tu_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
