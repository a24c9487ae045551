/* page.c - one page of a list, newest first, by an id cursor (see page.h). */
#include "page.h"

#include <stdio.h>
#include <stdlib.h>

int page_start(const char *cursor, int64_t limit, int64_t *before, err *e)
{
    *before = 0;
    if (cursor && *cursor) {
        char *end;
        *before = strtoll(cursor, &end, 10);
        if (*end || *before <= 0) return err_field(e, ERR_INVALID, "invalid_parameter", "cursor", "cursor is not one this server gave out");
    }
    if (limit < 1 || limit > 500) return err_field(e, ERR_INVALID, "invalid_parameter", "limit", "limit must be 1 to 500");
    return 0;
}

int page_collect(db *d, db_stmt *s, int64_t limit, page_row_fn fn, void *ud, jv_arena *a, jv **list, char *next,
                 size_t nnext, err *e)
{
    if (next && nnext) next[0] = '\0';
    jv *out = jv_arr(a);
    int rc = out ? 0 : ERR_NOMEM_RET(e);
    int64_t n = 0, last = 0;
    while (!rc && (rc = db_step(d, s, e)) == DB_ROW) {
        if (n == limit) {
            if (next && nnext) snprintf(next, nnext, "%lld", (long long)last);
            break;
        }
        jv *o = NULL;
        if ((rc = fn(ud, d, s, a, &o, e))) break;
        if (jv_arr_push(a, out, o)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
        last = db_col_int(s, 0);
        n++;
    }
    db_done(s);
    if (rc < 0) return rc;
    *list = out;
    return 0;
}
