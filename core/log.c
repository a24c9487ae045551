/* log.c - JSON-lines logger. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

struct log_line {
    buf b;
};

static atomic_int g_level = LOG_INFO;
static atomic_int g_fd = 2;
static _Thread_local log_line t_line;

void log_set_level(int level) { atomic_store(&g_level, level); }
int log_set_fd(int fd) { return atomic_exchange(&g_fd, fd); }
int log_enabled(int level) { return level >= atomic_load(&g_level); }

int log_level_parse(const char *name)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

/* Decimal digits of v into the end of out (no sign); returns the start. */
static char *digits(char *end, uint64_t v)
{
    *--end = '\0';
    do *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

/* The date and time part is formatted once per second per thread: a busy
 * daemon writes thousands of lines a second. */
static _Thread_local time_t t_sec = -1;
static _Thread_local char t_stamp[24];

log_line *log_begin(int level, const char *event)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < atomic_load(&g_level) || level >= LOG_OFF) return NULL;
    log_line *l = &t_line;
    buf_reset(&l->b);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != t_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(t_stamp, sizeof t_stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        t_sec = ts.tv_sec;
    }
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
    char frac[6] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z', '"'};
    buf_puts(&l->b, "{\"ts\":\"");
    buf_puts(&l->b, t_stamp);
    buf_append(&l->b, frac, sizeof frac);
    buf_puts(&l->b, ",\"level\":\"");
    buf_puts(&l->b, names[level]);
    buf_puts(&l->b, "\",\"event\":");
    buf_json_str(&l->b, event, strlen(event));
    return l;
}

void log_strn(log_line *l, const char *key, const char *val, size_t n)
{
    if (!l) return;
    buf_putc(&l->b, ',');
    buf_json_str(&l->b, key, strlen(key));
    buf_putc(&l->b, ':');
    if (val) buf_json_str(&l->b, val, n);
    else buf_puts(&l->b, "null");
}

void log_str(log_line *l, const char *key, const char *val)
{
    log_strn(l, key, val, val ? strlen(val) : 0);
}

void log_int(log_line *l, const char *key, int64_t val)
{
    if (!l) return;
    char tmp[24];
    buf_putc(&l->b, ',');
    buf_json_str(&l->b, key, strlen(key));
    buf_putc(&l->b, ':');
    if (val < 0) buf_putc(&l->b, '-');
    buf_puts(&l->b, digits(tmp + sizeof tmp, val < 0 ? (uint64_t)0 - (uint64_t)val : (uint64_t)val));
}

void log_us(log_line *l, const char *key, int64_t us)
{
    if (!l) return;
    if (us < 0) us = 0;
    char tmp[24];
    buf_putc(&l->b, ',');
    buf_json_str(&l->b, key, strlen(key));
    buf_putc(&l->b, ':');
    buf_puts(&l->b, digits(tmp + sizeof tmp, (uint64_t)us / 1000));
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10)};
    buf_append(&l->b, frac, sizeof frac);
}

void log_end(log_line *l)
{
    if (!l) return;
    buf_append(&l->b, "}\n", 2);
    const char *p = buf_cstr(&l->b);
    size_t left = l->b.len;
    int fd = atomic_load(&g_fd);
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) break; /* nowhere to report a failing log */
        p += w;
        left -= (size_t)w;
    }
    if (l->b.cap > 65536) buf_free(&l->b);
}

void log_release(void) { buf_free(&t_line.b); }

void log_msg(int level, const char *event, const char *fmt, ...)
{
    log_line *l = log_begin(level, event);
    if (!l) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_str(l, "msg", msg);
    log_end(l);
}
