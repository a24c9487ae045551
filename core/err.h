/* err.h - the error convention of the whole core.
 *
 * Functions return 0 on success or a negative ERR_* code, and fill a
 * caller-provided `err` with a human message (and, for bad input, the field
 * it is about). Nothing in the core calls exit(); main() decides. */
#ifndef BB_ERR_H
#define BB_ERR_H

#include <stddef.h>

enum {
    ERR_OK = 0,
    ERR_INVALID = -1,     /* bad input from a user or client */
    ERR_NOTFOUND = -2,
    ERR_CONFLICT = -3,    /* state conflict: duplicate, wrong status */
    ERR_FORBIDDEN = -4,   /* authenticated but not allowed */
    ERR_UNAUTH = -5,      /* no or bad credentials */
    ERR_LIMIT = -6,       /* a size/count/time limit was exceeded */
    ERR_RULE = -7,        /* a Lua rule failed or returned something invalid */
    ERR_DB = -8,
    ERR_IO = -9,
    ERR_NOMEM = -10,
    ERR_BUSY = -11,
    ERR_INTERNAL = -12,
    ERR_USAGE = -13       /* command-line usage error (exit code 2) */
};

typedef struct err {
    int code;
    char tag[48];    /* machine code for APIs ("json_too_deep"); empty: from code */
    char field[96];  /* the input field concerned, if any */
    char msg[1024];
} err;

/* Sets code and message; returns code so callers can `return err_set(...)`.
 * `e` may be NULL. */
int err_set(err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, naming the input field and a machine tag (either may be NULL). */
int err_field(err *e, int code, const char *tag, const char *field,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Prepends "prefix: " to the message already in e. Returns e->code. */
int err_prefix(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(err *e);
/* Cuts an incomplete UTF-8 character off the end of s: messages are cut
 * to fixed-size buffers by bytes, and JSON must not carry half a character. */
void err_utf8_trim(char *s);
/* Stable machine name of a code ("invalid", "not_found", ...). */
const char *err_code_name(int code);
/* The tag if set, else the code name. */
const char *err_tag(const err *e);
/* HTTP status that a code maps to. */
int err_http_status(int code);

#define ERR_NOMEM_RET(e) err_set((e), ERR_NOMEM, "out of memory")

#endif
