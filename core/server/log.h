/*
 * log.h - one line per event on stderr: time, level, message, and in JSON
 * the event's keys.
 *
 *   2026-11-22T10:00:00.123Z info session 3f2a1b0c open udp 127.0.0.1:50123
 *
 * With log.format = "json" the same event is one object per line, its
 * keys beside the message so that a log pipeline can filter on them:
 *
 *   {"time":"2026-11-22T10:00:00.123Z","level":"info","event":"open",
 *    "session":"3f2a1b0c","peer":"udp 127.0.0.1:50123",
 *    "msg":"session 3f2a1b0c open udp 127.0.0.1:50123"}
 *
 * Each line is formatted into one buffer and written with one write(2)
 * (stderr is unbuffered: stdio would make a syscall per character). A line
 * longer than LOG_LINE_MAX is cut and ends in "...". Levels below the
 * configured one cost a comparison. One loop per process: not thread-safe.
 */
#ifndef MOONGATE_LOG_H
#define MOONGATE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_TEXT = 0, LOG_JSON = 1 };

#define LOG_LINE_MAX 4096

extern int log_level;
/* LOG_JSON: one object per line, {"time":"...","level":"info",...,"msg":"..."} */
extern int log_format;

/* The keys of one event; every field may be 0/NULL (left out). In text
 * format they are not printed: the message already says them. */
struct log_ctx {
	const char *event;   /* what happened: "open", "close", "error", ... */
	uint32_t session;    /* session id (0: none) */
	const char *service; /* the Lua service */
	const char *room;    /* the room id */
	const char *peer;    /* the peer's path, "udp 127.0.0.1:50123" */
};

/* "error", "warn", "info", "debug" -> level, or -1. */
int log_parse_level(const char *name);
/* The name of a level ("error" .. "debug"). */
const char *log_level_name(int level);

void log_printf(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* With the event's keys (ctx may be NULL). */
void log_event(int level, const struct log_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vevent(int level, const struct log_ctx *ctx, const char *fmt,
                va_list ap);

/* Format one line into buf (at most len bytes, len >= 64), newline
 * included; returns its length. What log_event writes, for tests. */
size_t log_format_line(char *buf, size_t len, int level,
                       const struct log_ctx *ctx, const char *msg);

#define log_error(...) log_printf(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) do { if (log_level >= LOG_WARN) log_printf(LOG_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_level >= LOG_INFO) log_printf(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level >= LOG_DEBUG) log_printf(LOG_DEBUG, __VA_ARGS__); } while (0)

/* The same with keys: log_ev(LOG_INFO, &ctx, "session %08x open", id) */
#define log_ev(level, ctx, ...) do { if (log_level >= (level)) log_event((level), (ctx), __VA_ARGS__); } while (0)

#endif
