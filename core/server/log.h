/*
 * log.h - one line per event on stderr: time, level, message.
 *
 *   2026-11-22T10:00:00.123Z info session 3f2a1b0c open udp 127.0.0.1:50123
 *
 * Levels below the configured one cost a comparison. Not thread-safe
 * beyond what stdio gives (one loop per process).
 */
#ifndef MOONGATE_LOG_H
#define MOONGATE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_TEXT = 0, LOG_JSON = 1 };

extern int log_level;
/* LOG_JSON: one object per line, {"time":"...","level":"info","msg":"..."} */
extern int log_format;

/* "error", "warn", "info", "debug" -> level, or -1. */
int log_parse_level(const char *name);
void log_printf(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_printf(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) do { if (log_level >= LOG_WARN) log_printf(LOG_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_level >= LOG_INFO) log_printf(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level >= LOG_DEBUG) log_printf(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
