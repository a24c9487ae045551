/* log.h - structured logging: one JSON object per line.
 *
 *   log_line *l = log_begin(LOG_INFO, "http");
 *   if (l) { log_str(l, "method", "GET"); log_int(l, "status", 200); log_end(l); }
 *
 * A line is written with one write(2), so lines from several threads never
 * interleave. Thread-safe. */
#ifndef BB_LOG_H
#define BB_LOG_H

#include <stddef.h>
#include <stdint.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

typedef struct log_line log_line;

/* fd: where lines go (2 by default). */
void log_set_level(int level);
/* Returns the previous descriptor. */
int log_set_fd(int fd);
int log_level_parse(const char *name); /* -1 if unknown */
int log_enabled(int level);

/* NULL when the level is filtered out; every other call accepts NULL. */
log_line *log_begin(int level, const char *event);
void log_str(log_line *l, const char *key, const char *val);
void log_strn(log_line *l, const char *key, const char *val, size_t n);
void log_int(log_line *l, const char *key, int64_t val);
/* A duration in microseconds, written as milliseconds with 3 decimals. */
void log_us(log_line *l, const char *key, int64_t us);
void log_end(log_line *l);

/* Frees the calling thread's line buffer (call before a thread exits). */
void log_release(void);

/* One-shot: {"event":event,"msg":formatted}. */
void log_msg(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
