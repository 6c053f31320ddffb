/*
 * log.c - see log.h.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO;
int log_format = LOG_TEXT;

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
	puts_(&l, msg);
	l.cap = len;
	if (l.cut) {
		l.cut = 0;
		puts_(&l, "...");
	}
	puts_(&l, "\n");
	return l.n;
}

void
log_vevent(int level, const struct log_ctx *ctx, const char *fmt, va_list ap)
{
	if (level > log_level)
		return;
	char msg[LOG_LINE_MAX];
	vsnprintf(msg, sizeof msg, fmt, ap);
	/* JSON escaping may grow the message: twice the room, cut beyond */
	char line[2 * LOG_LINE_MAX];
	size_t n = log_format_line(line, sizeof line, level, ctx, msg);
	/* One write per line; a short write (a pipe nearly full) is finished,
	 * an error is dropped: the log must never stop the server. */
	const char *p = line;
	while (n > 0) {
		ssize_t k = write(STDERR_FILENO, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		p += k;
		n -= (size_t)k;
	}
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
