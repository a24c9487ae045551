/* reconcile.c - a channel's daily statement against the database. */
#include "reconcile.h"

#include <stdlib.h>
#include <string.h>

static int push_item(jv_arena *a, jv *list, const char *txn, const char *out_trade_no, int64_t statement, int64_t here,
                     int64_t payment_id, const char *at)
{
    jv *o = jv_obj(a);
    if (!o || jv_obj_set_str(a, o, "channel_txn_id", txn) ||
        (out_trade_no && out_trade_no[0] && jv_obj_set_str(a, o, "out_trade_no", out_trade_no)) ||
        (statement >= 0 && jv_obj_set_int(a, o, "statement", statement)) || (here >= 0 && jv_obj_set_int(a, o, "here", here)) ||
        (payment_id > 0 && jv_obj_set_int(a, o, "payment_id", payment_id)) || (at && at[0] && jv_obj_set_str(a, o, "at", at)))
        return -1;
    return jv_arr_push(a, list, o);
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

int reconcile_run(db *d, const char *channel, const char *date, const paychan_statement_row *rows, size_t n, jv_arena *a,
                  jv **report, reconcile_totals *t, err *e)
{
    memset(t, 0, sizeof *t);
    jv *r = jv_obj(a), *mism = jv_arr(a), *here_missing = jv_arr(a), *there_missing = jv_arr(a), *refund_mism = jv_arr(a);
    if (!r || !mism || !here_missing || !there_missing || !refund_mism) return err_set(e, ERR_NOMEM, "out of memory");
    int64_t *seen = calloc(n + 1, sizeof *seen);
    if (!seen) return err_set(e, ERR_NOMEM, "out of memory");
    size_t nseen = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const paychan_statement_row *row = &rows[i];
        db_stmt *s = db_prepare(d, "SELECT id, amount, refunded FROM payments WHERE channel = ? AND channel_txn_id = ?", e);
        if (!s) {
            rc = e->code;
            break;
        }
        db_bind_text(s, 1, channel);
        db_bind_text(s, 2, row->channel_txn_id);
        int st = db_step(d, s, e);
        int64_t pid = 0, amount = 0, refunded = 0;
        if (st == DB_ROW) {
            pid = db_col_int(s, 0);
            amount = db_col_int(s, 1);
            refunded = db_col_int(s, 2);
        }
        db_done(s);
        if (st < 0) {
            rc = st;
            break;
        }
        if (row->refund) {
            /* a refund line: the payment it gives back must show it */
            if (!pid || refunded < row->amount) {
                t->refunds_mismatched++;
                if (push_item(a, refund_mism, row->channel_txn_id, row->out_trade_no, row->amount, pid ? refunded : -1, pid,
                              row->at))
                    rc = err_set(e, ERR_NOMEM, "out of memory");
            } else {
                t->refunds_matched++;
            }
            continue;
        }
        if (!pid) {
            t->missing_here++;
            if (push_item(a, here_missing, row->channel_txn_id, row->out_trade_no, row->amount, -1, 0, row->at))
                rc = err_set(e, ERR_NOMEM, "out of memory");
            continue;
        }
        seen[nseen++] = pid;
        if (amount != row->amount) {
            t->mismatched++;
            if (push_item(a, mism, row->channel_txn_id, row->out_trade_no, row->amount, amount, pid, row->at))
                rc = err_set(e, ERR_NOMEM, "out of memory");
        } else {
            t->matched++;
            t->matched_fen += amount;
        }
    }
    /* recorded here on that day, and not on the statement */
    qsort(seen, nseen, sizeof *seen, cmp_i64);
    db_stmt *s = rc ? NULL : db_prepare(d,
                                        "SELECT id, coalesce(channel_txn_id, ''), amount FROM payments WHERE channel = ? "
                                        "AND entry_date = ? ORDER BY id",
                                        e);
    if (!rc && !s) rc = e->code;
    if (s) {
        db_bind_text(s, 1, channel);
        db_bind_text(s, 2, date);
        int st = 0;
        while (!rc && (st = db_step(d, s, e)) == DB_ROW) {
            int64_t pid = db_col_int(s, 0);
            if (bsearch(&pid, seen, nseen, sizeof *seen, cmp_i64)) continue;
            t->missing_there++;
            if (push_item(a, there_missing, db_col_text(s, 1), NULL, -1, db_col_int(s, 2), pid, NULL))
                rc = err_set(e, ERR_NOMEM, "out of memory");
        }
        if (!rc && st < 0) rc = st;
        db_done(s);
    }
    free(seen);
    if (!rc && (jv_obj_set(a, r, "amount_mismatch", mism) || jv_obj_set(a, r, "missing_here", here_missing) ||
                jv_obj_set(a, r, "missing_there", there_missing) || jv_obj_set(a, r, "refund_mismatch", refund_mism)))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    *report = r;
    return rc;
}
