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

log_line *log_begin(int level, const char *event)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < atomic_load(&g_level) || level >= LOG_OFF) return NULL;
    log_line *l = &t_line;
    buf_reset(&l->b);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    buf_printf(&l->b, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"event\":",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               ts.tv_nsec / 1000000, names[level]);
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
    buf_putc(&l->b, ',');
    buf_json_str(&l->b, key, strlen(key));
    buf_printf(&l->b, ":%lld", (long long)val);
}

void log_us(log_line *l, const char *key, int64_t us)
{
    if (!l) return;
    buf_putc(&l->b, ',');
    buf_json_str(&l->b, key, strlen(key));
    buf_printf(&l->b, ":%lld.%03lld", (long long)(us / 1000), (long long)(us % 1000));
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
