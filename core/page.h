/* page.h - one page of a list, newest first, by an id cursor.
 *
 * Every list of the API pages the same way: `?limit=` (1-500) and an
 * opaque `?cursor=` that is the id of the last object of the previous
 * page; a statement selects ids below it, newest first, one row more than
 * the limit so that the page knows whether another follows. */
#ifndef BB_PAGE_H
#define BB_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"

/* Reads a cursor (NULL or "" for the first page: *before = 0) and checks
 * the limit. Bad values: ERR_INVALID naming "cursor" or "limit". */
int page_start(const char *cursor, int64_t limit, int64_t *before, err *e);

/* Makes the object of the statement's current row (in arena a). */
typedef int (*page_row_fn)(void *ud, db *d, db_stmt *s, jv_arena *a, jv **out, err *e);

/* Steps s (bound; its LIMIT limit + 1; the id in column 0), turning each
 * row into an object with fn, into a new array *list. When there is a row
 * beyond the limit, next (nnext bytes; may be NULL) gets the cursor of the
 * next page, else "". Always ends the statement's use. */
int page_collect(db *d, db_stmt *s, int64_t limit, page_row_fn fn, void *ud, jv_arena *a, jv **list, char *next,
                 size_t nnext, err *e);

#endif
