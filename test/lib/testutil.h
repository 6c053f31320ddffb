/*
 * testutil.h - a tiny test harness, header only.
 *
 *   TEST(foo) { CHECK(x > 0); CHECK_EQ(f(), 3); REQUIRE(p != NULL); }
 *   static const struct tu_test tests[] = { TU(foo), ... };
 *   int main(int argc, char **argv) { return tu_main(argc, argv, tests,
 *       sizeof(tests) / sizeof(tests[0])); }
 *
 * CHECK* print file:line (and both values) and count a failure; REQUIRE*
 * also return from the test function. A test passes when none of its checks
 * failed. The binary prints "N passed, N failed" last and exits non-zero on
 * any failure. Arguments: -v sets tu_verbose (tests print extra detail),
 * any other argument runs only the tests whose name contains it.
 */
#ifndef MOONGATE_TESTUTIL_H
#define MOONGATE_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TU_MAX_REPORTS 20 /* failure lines printed per test */

static int tu_verbose;
static long tu_test_failures; /* failed checks in the current test */
static long tu_checks;

#define TEST(name) static void name(void)
#define TU(name) { #name, name }

struct tu_test {
	const char *name;
	void (*fn)(void);
};

static inline int
tu_report(const char *file, int line)
{
	tu_test_failures++;
	if (tu_test_failures > TU_MAX_REPORTS)
		return 0;
	fprintf(stderr, "%s:%d: ", file, line);
	return 1;
}

#define CHECK(cond) do { \
	tu_checks++; \
	if (!(cond) && tu_report(__FILE__, __LINE__)) \
		fprintf(stderr, "CHECK(%s) failed\n", #cond); \
} while (0)

#define CHECK_EQ(a, b) do { \
	long long tu_a_ = (long long)(a), tu_b_ = (long long)(b); \
	tu_checks++; \
	if (tu_a_ != tu_b_ && tu_report(__FILE__, __LINE__)) \
		fprintf(stderr, "CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
		        #a, #b, tu_a_, tu_b_); \
} while (0)

#define CHECK_MEM(a, b, n) do { \
	tu_checks++; \
	if (memcmp((a), (b), (n)) != 0 && tu_report(__FILE__, __LINE__)) \
		fprintf(stderr, "CHECK_MEM(%s, %s, %s) failed\n", #a, #b, #n); \
} while (0)

#define REQUIRE(cond) do { \
	long tu_before_ = tu_test_failures; \
	CHECK(cond); \
	if (tu_test_failures != tu_before_) \
		return; \
} while (0)

#define REQUIRE_EQ(a, b) do { \
	long tu_before_ = tu_test_failures; \
	CHECK_EQ(a, b); \
	if (tu_test_failures != tu_before_) \
		return; \
} while (0)

#define TU_FAIL(...) do { \
	if (tu_report(__FILE__, __LINE__)) { \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

/* printf only with -v */
#define VERBOSE(...) do { if (tu_verbose) printf(__VA_ARGS__); } while (0)

static int
tu_main(int argc, char **argv, const struct tu_test *tests, size_t ntests)
{
	int passed = 0, failed = 0, i;
	size_t t;
	const char *filter[16];
	int nfilter = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0)
			tu_verbose = 1;
		else if (nfilter < 16)
			filter[nfilter++] = argv[i];
	}
	for (t = 0; t < ntests; t++) {
		clock_t c0;
		int run = nfilter == 0;
		for (i = 0; i < nfilter; i++)
			if (strstr(tests[t].name, filter[i]))
				run = 1;
		if (!run)
			continue;
		tu_test_failures = 0;
		c0 = clock();
		tests[t].fn();
		if (tu_test_failures > TU_MAX_REPORTS)
			fprintf(stderr, "  (%ld more failures not shown)\n",
			        tu_test_failures - TU_MAX_REPORTS);
		printf("%-4s %s (%.2fs)\n", tu_test_failures ? "FAIL" : "ok",
		       tests[t].name, (double)(clock() - c0) / CLOCKS_PER_SEC);
		fflush(stdout);
		if (tu_test_failures)
			failed++;
		else
			passed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/* Bytes from hex text ("0a 1b ..."; anything not a hex digit is skipped)
 * into out, at most cap; returns how many. For test vectors. */
static inline size_t
tu_unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;
	for (; *hex; hex++) {
		int v;
		if (*hex >= '0' && *hex <= '9')
			v = *hex - '0';
		else if (*hex >= 'a' && *hex <= 'f')
			v = *hex - 'a' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else if (n < cap) {
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return n;
}

#endif
