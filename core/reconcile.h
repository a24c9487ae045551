/* reconcile.h - a channel's daily statement against the payments and
 * refunds recorded here: what matches, what differs in amount, what the
 * channel has and we do not (a lost notification), what we have and the
 * channel does not. Reads only. */
#ifndef BB_RECONCILE_H
#define BB_RECONCILE_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"
#include "paychan.h"

typedef struct reconcile_totals {
    int64_t matched, matched_fen;
    int64_t mismatched, missing_here, missing_there;
    int64_t refunds_matched, refunds_mismatched;
} reconcile_totals;

/* Compares rows (the statement of `channel` for business day `date`) with
 * the database. *report (in arena a) lists every discrepancy:
 * {"amount_mismatch": [...], "missing_here": [...], "missing_there": [...],
 *  "refund_mismatch": [...]}. */
int reconcile_run(db *d, const char *channel, const char *date, const paychan_statement_row *rows, size_t n, jv_arena *a,
                  jv **report, reconcile_totals *t, err *e);

#endif
