/* err.c - error struct helpers. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 0))) static void vset(err *e, int code, const char *fmt, va_list ap)
{
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

int err_set(err *e, int code, const char *fmt, ...)
{
    if (!e) return code;
    va_list ap;
    va_start(ap, fmt);
    e->tag[0] = e->field[0] = '\0';
    vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int err_field(err *e, int code, const char *tag, const char *field, const char *fmt, ...)
{
    if (!e) return code;
    va_list ap;
    va_start(ap, fmt);
    vset(e, code, fmt, ap);
    va_end(ap);
    snprintf(e->tag, sizeof e->tag, "%s", tag ? tag : "");
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    return code;
}

int err_prefix(err *e, const char *fmt, ...)
{
    if (!e) return ERR_INTERNAL;
    char pre[512], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t pl = strlen(pre), ol = strlen(old), cap = sizeof e->msg - 1;
    if (pl > cap) pl = cap;
    memcpy(e->msg, pre, pl);
    size_t n = pl;
    if (n + 2 <= cap) {
        e->msg[n++] = ':';
        e->msg[n++] = ' ';
    }
    if (ol > cap - n) ol = cap - n;
    memcpy(e->msg + n, old, ol);
    e->msg[n + ol] = '\0';
    return e->code;
}

void err_clear(err *e)
{
    if (!e) return;
    e->code = 0;
    e->tag[0] = e->field[0] = e->msg[0] = '\0';
}

const char *err_code_name(int code)
{
    switch (code) {
    case ERR_OK: return "ok";
    case ERR_INVALID: return "invalid";
    case ERR_NOTFOUND: return "not_found";
    case ERR_CONFLICT: return "conflict";
    case ERR_FORBIDDEN: return "forbidden";
    case ERR_UNAUTH: return "unauthorized";
    case ERR_LIMIT: return "limit_exceeded";
    case ERR_RULE: return "rule_error";
    case ERR_DB: return "database_error";
    case ERR_IO: return "io_error";
    case ERR_NOMEM: return "out_of_memory";
    case ERR_BUSY: return "busy";
    case ERR_USAGE: return "usage";
    default: return "internal";
    }
}

const char *err_tag(const err *e)
{
    return e->tag[0] ? e->tag : err_code_name(e->code);
}

int err_http_status(int code)
{
    switch (code) {
    case ERR_INVALID: case ERR_USAGE: return 400;
    case ERR_UNAUTH: return 401;
    case ERR_FORBIDDEN: return 403;
    case ERR_NOTFOUND: return 404;
    case ERR_CONFLICT: return 409;
    case ERR_LIMIT: return 413;
    case ERR_RULE: return 422;
    case ERR_BUSY: return 503;
    default: return 500;
    }
}
