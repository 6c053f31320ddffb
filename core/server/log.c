/*
 * log.c - see log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO;
int log_format = LOG_TEXT;
int log_burst = 5;
int log_window_ms = 10000;
static int log_worker = -1; /* a worker's index: "w3 " before each message */

void
log_set_worker(int index)
{
	log_worker = index;
}

/* A rate-limited site: its window began at start; lines written in it,
 * lines left out, and the last message written (quoted in the summary). */
struct site {
	uintptr_t key;            /* 0: a free slot */
	int level;
	uint64_t start;
	uint32_t lines;
	uint64_t suppressed;
	char like[LOG_LIKE_MAX + 1];
};

#define PROBE 16              /* slots looked at for a site */

static struct site sites[LOG_SITES];
static uint64_t next_flush = UINT64_MAX; /* the first window with a count to say */
static struct log_stats stats;

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t (*clock_fn)(void) = mono_ms;

void
log_set_clock(uint64_t (*now_ms)(void))
{
	clock_fn = now_ms ? now_ms : mono_ms;
}

uint64_t
log_now_ms(void)
{
	return clock_fn();
}

void
log_stats(struct log_stats *st)
{
	*st = stats;
}

static const char *const names[] = { "error", "warn", "info", "debug" };

int
log_parse_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	return names[level < 0 ? 0 : level > 3 ? 3 : level];
}

/* A bounded line under construction: appends stop at the end (keeping
 * room for "...\n"), and `cut` says something was left out. */
struct line {
	char *p;
	size_t n, cap;
	int cut;
};

static void
put(struct line *l, const char *s, size_t n)
{
	if (l->cut)
		return;
	if (n > l->cap - l->n) {
		n = l->cap - l->n;
		l->cut = 1;
	}
	memcpy(l->p + l->n, s, n);
	l->n += n;
}

static void
puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* All or nothing: an escape cut in half would break the JSON string. */
static void
put_whole(struct line *l, const char *s)
{
	size_t n = strlen(s);
	if (n > l->cap - l->n)
		l->cut = 1;
	put(l, s, n);
}

/* s as the body of a JSON string: quotes, backslashes and control bytes
 * escaped; bytes >= 0x80 pass (the messages are UTF-8 or ASCII). */
static void
put_json(struct line *l, const char *s)
{
	const char *run = s;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		put(l, run, (size_t)(s - run));
		char esc[8];
		if (ch == '"' || ch == '\\')
			snprintf(esc, sizeof esc, "\\%c", ch);
		else if (ch == '\n')
			snprintf(esc, sizeof esc, "\\n");
		else
			snprintf(esc, sizeof esc, "\\u%04x", ch);
		put_whole(l, esc);
		run = s + 1;
	}
	put(l, run, (size_t)(s - run));
}

static void
put_key(struct line *l, const char *key, const char *value)
{
	puts_(l, ",\"");
	puts_(l, key);
	puts_(l, "\":\"");
	put_json(l, value);
	puts_(l, "\"");
}

size_t
log_format_line(char *buf, size_t len, int level, const struct log_ctx *ctx,
                const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char when[48];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);
	/* room for the cut marker and the closing of a JSON object */
	struct line l = { buf, 0, len - 8, 0 };
	const char *lv = log_level_name(level);
	if (log_format == LOG_JSON) {
		puts_(&l, "{\"time\":\"");
		puts_(&l, when);
		puts_(&l, "\",\"level\":\"");
		puts_(&l, lv);
		puts_(&l, "\"");
		if (log_worker >= 0) {
			char w[16];
			snprintf(w, sizeof w, "%d", log_worker);
			put_key(&l, "worker", w);
		}
		if (ctx) {
			if (ctx->event)
				put_key(&l, "event", ctx->event);
			if (ctx->session) {
				char id[16];
				snprintf(id, sizeof id, "%08x", (unsigned)ctx->session);
				put_key(&l, "session", id);
			}
			if (ctx->service)
				put_key(&l, "service", ctx->service);
			if (ctx->room)
				put_key(&l, "room", ctx->room);
			if (ctx->peer)
				put_key(&l, "peer", ctx->peer);
		}
		put_key(&l, "msg", msg);
		/* a cut line still closes its string and object */
		l.cap = len;
		if (l.cut) {
			l.cut = 0;
			puts_(&l, "...\"");
		}
		puts_(&l, "}\n");
		return l.n;
	}
	puts_(&l, when);
	puts_(&l, " ");
	puts_(&l, lv);
	puts_(&l, " ");
	if (log_worker >= 0) {
		char w[16];
		snprintf(w, sizeof w, "w%d ", log_worker);
		puts_(&l, w);
	}
	puts_(&l, msg);
	l.cap = len;
	if (l.cut) {
		l.cut = 0;
		puts_(&l, "...");
	}
	puts_(&l, "\n");
	return l.n;
}

static int log_fd = STDERR_FILENO;
static char log_path[512];

int
log_open(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "log.file %s: %s", path, strerror(errno));
		return -1;
	}
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	snprintf(log_path, sizeof log_path, "%s", path);
	return 0;
}

int
log_reopen(void)
{
	if (!log_path[0])
		return 0;
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_printf(LOG_ERROR, "log: cannot reopen %s: %s (still writing the old file)",
		           log_path, strerror(errno));
		return -1;
	}
	/* the same descriptor number from now on: a line being written by a
	 * signal handler's caller never sees a closed one */
	if (dup3(fd, log_fd, O_CLOEXEC) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	log_printf(LOG_INFO, "log: reopened %s", log_path);
	return 0;
}

/* One line to the log (stderr, or log.file), one write(2): a short write
 * (a pipe nearly full) is finished, an error is dropped: the log must
 * never stop the server. */
static void
write_line(int level, const struct log_ctx *ctx, const char *msg)
{
	/* JSON escaping may grow the message: twice the room, cut beyond */
	char line[2 * LOG_LINE_MAX];
	size_t n = log_format_line(line, sizeof line, level, ctx, msg);
	const char *p = line;
	stats.lines++;
	while (n > 0) {
		ssize_t k = write(log_fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		p += k;
		n -= (size_t)k;
	}
}

static uint64_t
window(void)
{
	return log_window_ms > 0 ? (uint64_t)log_window_ms : 1;
}

/* "... and N more like "..." in the last 10 s", when lines were left out. */
static void
summary(struct site *s, uint64_t now)
{
	if (!s->suppressed)
		return;
	uint64_t span = now - s->start < window() ? now - s->start : window();
	char when[32], msg[LOG_LIKE_MAX + 160];
	if (span < 1000)
		snprintf(when, sizeof when, "%llu ms", (unsigned long long)span);
	else if (span % 1000 == 0)
		snprintf(when, sizeof when, "%llu s", (unsigned long long)span / 1000);
	else
		snprintf(when, sizeof when, "%.1f s", span / 1000.0);
	snprintf(msg, sizeof msg, "... and %llu more like \"%s\" in the last %s",
	         (unsigned long long)s->suppressed, s->like, when);
	struct log_ctx lc = { .event = "suppressed" };
	s->suppressed = 0;
	stats.summaries++;
	write_line(s->level, &lc, msg);
}

/* The slot of key: found, a free one, or the one whose window began first
 * among those looked at (its count written first). */
static struct site *
site_take(uintptr_t key, uint64_t now)
{
	uint32_t h = (uint32_t)(((uint64_t)key * 0x9e3779b97f4a7c15ull) >> 40);
	struct site *victim = NULL;
	for (uint32_t i = 0; i < PROBE; i++) {
		struct site *s = &sites[(h + i) % LOG_SITES];
		if (s->key == key)
			return s;
		if (!s->key) {
			victim = s;
			break;
		}
		if (!victim || s->start < victim->start)
			victim = s;
	}
	summary(victim, now);
	memset(victim, 0, sizeof *victim);
	victim->key = key;
	victim->start = now;
	return victim;
}

void
log_flush(uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (int i = 0; i < LOG_SITES; i++) {
		struct site *s = &sites[i];
		if (!s->suppressed)
			continue;
		if (now - s->start >= window())
			summary(s, now);
		else if (s->start + window() < next)
			next = s->start + window();
	}
	next_flush = next;
}

static void
vevent(int level, uintptr_t key, const struct log_ctx *ctx, const char *fmt,
       va_list ap)
{
	if (level > log_level)
		return;
	struct site *s = NULL;
	uint64_t now = 0;
	if (next_flush != UINT64_MAX || (log_burst > 0 && level <= LOG_WARN))
		now = clock_fn();
	if (now >= next_flush)
		log_flush(now);
	if (log_burst > 0 && level <= LOG_WARN) {
		s = site_take(key ? key : (uintptr_t)fmt, now);
		s->level = level;
		if (now - s->start >= window()) { /* a new window */
			summary(s, now);
			s->start = now;
			s->lines = 0;
		}
		if (s->lines >= (uint32_t)log_burst) {
			s->suppressed++;
			stats.suppressed++;
			if (s->start + window() < next_flush)
				next_flush = s->start + window();
			return;
		}
		s->lines++;
	}
	char msg[LOG_LINE_MAX];
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (s) {
		size_t n = strcspn(msg, "\n");
		if (n > LOG_LIKE_MAX) {
			n = LOG_LIKE_MAX;
			memcpy(s->like + n - 3, "...", 3);
			memcpy(s->like, msg, n - 3);
		} else {
			memcpy(s->like, msg, n);
		}
		s->like[n] = 0;
	}
	write_line(level, ctx, msg);
}

void
log_vevent(int level, const struct log_ctx *ctx, const char *fmt, va_list ap)
{
	vevent(level, 0, ctx, fmt, ap);
}

void
log_site_event(int level, uintptr_t site, const struct log_ctx *ctx,
               const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vevent(level, site, ctx, fmt, ap);
	va_end(ap);
}

void
log_event(int level, const struct log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vevent(level, ctx, fmt, ap);
	va_end(ap);
}

void
log_printf(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vevent(level, NULL, fmt, ap);
	va_end(ap);
}
