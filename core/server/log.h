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
 *
 * Error and warn lines are rate limited per site (the call's format
 * string, or a key the caller gives: the Lua runtime's calling line): in
 * a window of log_window_ms, the first log_burst lines of a site are
 * written and the rest only counted; once the window is over (at that
 * site's next line, at any later line, or at the latest by log_flush from
 * the server's timer) one line says how many were left out:
 *
 *   ... and 9812 more like "handshake: 10.0.0.7 refused: over 20 ha..." in the last 10 s
 *
 * so a flood of one message (a packet an attacker repeats, a handler that
 * fails on every message) costs a few lines per window, not one per
 * event, and every other site still logs. Info and debug lines are one
 * per session or operator event and are not limited. The sites are kept
 * in a table of LOG_SITES; a site pushed out by another one first writes
 * its count, so the counts stay exact.
 */
#ifndef MOONGATE_LOG_H
#define MOONGATE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_TEXT = 0, LOG_JSON = 1 };

#define LOG_LINE_MAX 4096
#define LOG_SITES 128      /* rate-limited sites tracked at once */
#define LOG_LIKE_MAX 80    /* bytes of a message quoted in a summary */

extern int log_level;
/* LOG_JSON: one object per line, {"time":"...","level":"info",...,"msg":"..."} */
extern int log_format;
/* Lines of one site per window (5; 0: no limit), and the window (10000). */
extern int log_burst;
extern int log_window_ms;

struct log_stats {
	uint64_t lines;       /* lines written, summaries included */
	uint64_t suppressed;  /* lines left out by the rate limit */
	uint64_t summaries;   /* "... and N more" lines written */
};
void log_stats(struct log_stats *st);

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
/* This process is worker index of `workers`: its lines say so ("w3 " in
 * text, "worker":"3" in JSON). */
void log_set_worker(int index);
/* Lines go to path (appended; created 0640) instead of stderr: 0, or -1
 * with err. log_reopen opens the same path again (SIGUSR1: a rotation
 * moved the old file away) and says so in the new file; 0 or -1 (logged
 * to the old file, which stays). Without a path, nothing to do. */
int log_open(const char *path, char *err, size_t errlen);
int log_reopen(void);
/* The name of a level ("error" .. "debug"). */
const char *log_level_name(int level);

void log_printf(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* With the event's keys (ctx may be NULL). */
void log_event(int level, const struct log_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vevent(int level, const struct log_ctx *ctx, const char *fmt,
                va_list ap);

/* With a site key of the caller's choosing instead of fmt (0: fmt). */
void log_site_event(int level, uintptr_t site, const struct log_ctx *ctx,
                    const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Write the summary of every site whose window ended by now_ms (the
 * limiter's clock); the server calls it from a timer, so a flood that
 * stopped is still reported. Every log line does it too. */
void log_flush(uint64_t now_ms);
/* The limiter's clock in milliseconds (NULL: CLOCK_MONOTONIC): tests run
 * the windows on virtual time. */
void log_set_clock(uint64_t (*now_ms)(void));
uint64_t log_now_ms(void);

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
