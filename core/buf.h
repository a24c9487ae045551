/* buf.h - a growable byte buffer, always NUL-terminated.
 *
 * A zeroed buf is a valid empty buffer. Appends return 0 or ERR_NOMEM; after
 * a failed append the buffer keeps its old content. */
#ifndef BB_BUF_H
#define BB_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;   /* NULL until the first append */
    size_t len;
    size_t cap;
} buf;

int buf_reserve(buf *b, size_t extra);
int buf_append(buf *b, const void *p, size_t n);
int buf_puts(buf *b, const char *s);
int buf_putc(buf *b, char c);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string literal (quotes included). */
int buf_json_str(buf *b, const char *s, size_t n);
void buf_reset(buf *b);           /* len = 0, keeps memory */
void buf_free(buf *b);
/* Hands the memory to the caller (who frees it); the buffer becomes empty.
 * Returns "" as a fresh allocation if the buffer was never used. */
char *buf_steal(buf *b);
static inline const char *buf_cstr(const buf *b) { return b->data ? b->data : ""; }

#endif
