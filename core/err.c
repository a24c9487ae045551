/* err.c - error struct helpers. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void err_utf8_trim(char *s)
{
    size_t n = strlen(s);
    /* back to the start of the last character, at most 3 continuation bytes */
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 0;
    /* a character cut short by a fixed-size buffer: drop what is left of it */
    if (need != back + 1) s[i - 1] = '\0';
}

__attribute__((format(printf, 3, 0))) static void vset(err *e, int code, const char *fmt, va_list ap)
{
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    err_utf8_trim(e->msg);
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
    err_utf8_trim(pre);
    memcpy(old, e->msg, sizeof old);
    size_t pl = strlen(pre), ol = strlen(old), cap = sizeof e->msg - 1;
    if (pl > cap) {
        pl = cap;
        pre[pl] = '\0';
        err_utf8_trim(pre);
        pl = strlen(pre);
    }
    memcpy(e->msg, pre, pl);
    size_t n = pl;
    if (n + 2 <= cap) {
        e->msg[n++] = ':';
        e->msg[n++] = ' ';
    }
    if (ol > cap - n) ol = cap - n;
    memcpy(e->msg + n, old, ol);
    e->msg[n + ol] = '\0';
    err_utf8_trim(e->msg);
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
