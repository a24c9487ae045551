/* payments.c - money received and what it settles (see payments.h). */
#include "payments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "date.h"
#include "outbox.h"
#include "dunning.h"
#include "customers.h"
#include "invoices.h"
#include "ledger.h"
#include "log.h"
#include "money.h"
#include "page.h"
#include "rules.h"

#define PAYMENT_MAX 10000000000000LL

static int text_set(const char *s) { return s && s[strspn(s, " \t\r\n")]; }

static int channel_ok(const char *c)
{
    size_t n = c ? strlen(c) : 0;
    return n >= 1 && n <= 32 && strspn(c, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* The order in which the rest of a payment settles the customer's other
 * open invoices is the rule payments.allocation_order's. A rule that fails,
 * or no rule set, settles nothing more: the money stays the customer's
 * credit (the next bill takes it) - money received is never refused for
 * want of an order. Returns the invoice ids in *ids (malloc'd). */
static int allocation_order(db *d, ruleset *rs, const payment_new *in, int64_t **ids, size_t *n, err *e)
{
    *ids = NULL;
    *n = 0;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *ctx = jv_obj(&a), *open = jv_arr(&a), *pay = jv_obj(&a);
    int rc = ctx && open && pay ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    db_stmt *s = rc ? NULL : db_prepare(d,
                                        "SELECT id, number, issue_date, due_date, gross - paid - credited - written_off FROM invoices "
                                        "WHERE customer_id = ? AND status IN ('open', 'partially_paid') AND id <> ? "
                                        "AND gross - paid - credited - written_off > 0 ORDER BY id",
                                        e);
    if (!rc && !s) rc = e->code;
    size_t count = 0, cap = 0;
    int64_t *all = NULL;
    char **numbers = NULL;
    if (s) {
        db_bind_int(s, 1, in->customer_id);
        db_bind_int(s, 2, in->invoice_id);
        int st;
        while (!rc && (st = db_step(d, s, e)) == DB_ROW) {
            if (count == cap) {
                cap = cap ? cap * 2 : 16;
                int64_t *na = realloc(all, cap * sizeof *na);
                char **nn = na ? realloc(numbers, cap * sizeof *nn) : NULL;
                if (na) all = na;
                if (nn) numbers = nn;
                if (!na || !nn) {
                    rc = err_set(e, ERR_NOMEM, "out of memory");
                    break;
                }
            }
            jv *o = jv_obj(&a);
            all[count] = db_col_int(s, 0);
            numbers[count] = jv_strdup(&a, db_col_text(s, 1), strlen(db_col_text(s, 1)));
            if (!o || !numbers[count] || jv_obj_set_str(&a, o, "number", db_col_text(s, 1)) ||
                jv_obj_set_str(&a, o, "issue_date", db_col_text(s, 2)) || jv_obj_set_str(&a, o, "due_date", db_col_text(s, 3)) ||
                jv_obj_set_int(&a, o, "balance_due", db_col_int(s, 4)) || jv_arr_push(&a, open, o))
                rc = err_set(e, ERR_NOMEM, "out of memory");
            count++;
        }
        if (!rc && st < 0) rc = st;
        db_done(s);
    }
    if (!rc && count && !rs) {
        log_msg(LOG_WARN, "allocation_skipped", "no rule set to order the allocation: %s stays credit", in->channel);
    } else if (!rc && count) {
        if (jv_obj_set_int(&a, pay, "amount", in->amount) || jv_obj_set_str(&a, pay, "channel", in->channel) ||
            jv_obj_set(&a, ctx, "payment", pay) || jv_obj_set(&a, ctx, "open", open))
            rc = err_set(e, ERR_NOMEM, "out of memory");
        if (!rc && in->invoice_id) {
            /* settled first already; the rule may want to know which it was */
            db_stmt *m = db_prepare(d, "SELECT number FROM invoices WHERE id = ?", e);
            if (!m) rc = e->code;
            else {
                db_bind_int(m, 1, in->invoice_id);
                if (db_step(d, m, e) == DB_ROW && jv_obj_set_str(&a, ctx, "made_for", db_col_text(m, 0)))
                    rc = err_set(e, ERR_NOMEM, "out of memory");
                db_done(m);
            }
        }
        jv *res = NULL;
        err re;
        const jv *args[1] = {ctx};
        if (!rc && rules_call(rs, "payments.allocation_order", args, 1, &a, &res, &re)) {
            log_msg(LOG_WARN, "allocation_rule_failed", "payments.allocation_order: %s (the rest stays credit)", re.msg);
        } else if (!rc) {
            const jv *order = jv_get(res, "order");
            if (!order || order->kind != JV_ARR) {
                log_msg(LOG_WARN, "allocation_rule_failed", "payments.allocation_order returned no order list (the rest stays credit)");
            } else if (!(*ids = calloc(jv_len(order) + 1, sizeof **ids))) {
                rc = err_set(e, ERR_NOMEM, "out of memory");
            } else {
                /* only the open invoices offered, each once: anything else is the rule's error */
                for (size_t i = 0; i < jv_len(order) && !rc; i++) {
                    const jv *num = jv_at(order, i);
                    size_t k = count;
                    if (num && num->kind == JV_STR)
                        for (k = 0; k < count && strcmp(numbers[k], num->u.str.s); k++) {}
                    int dup = 0;
                    for (size_t j = 0; k < count && j < *n && !dup; j++) dup = (*ids)[j] == all[k];
                    if (k == count || dup) {
                        log_msg(LOG_WARN, "allocation_rule_failed",
                                "payments.allocation_order: order[%zu] is %s (the rest stays credit)", i + 1,
                                k == count ? "not one of the open invoices offered" : "given twice");
                        *n = 0;
                        break;
                    }
                    (*ids)[(*n)++] = all[k];
                }
            }
        }
    }
    free(all);
    free(numbers);
    jv_arena_free(&a);
    return rc;
}

/* Settles open invoices with payment `pid`: first the one it was made for,
 * then the others in the rule's order. */
static int allocate_payment(db *d, const payment_new *in, int64_t pid, err *e)
{
    int64_t left = in->amount;
    int rc = 0;
    if (in->invoice_id) {
        int64_t due = 0;
        rc = db_get_int(d, e, &due,
                        "SELECT gross - paid - credited - written_off FROM invoices WHERE id = ? AND status IN ('open', 'partially_paid')",
                        "i", in->invoice_id);
        if (rc == ERR_NOTFOUND) rc = 0, due = 0;
        if (!rc && due > 0) {
            int64_t take = due < left ? due : left;
            rc = invoices_allocate(d, in->invoice_id, pid, take, e);
            left -= take;
        }
    }
    if (rc || left <= 0) return rc;
    int64_t *ids = NULL;
    size_t n = 0;
    rc = allocation_order(d, in->rules, in, &ids, &n, e);
    for (size_t i = 0; i < n && !rc && left > 0; i++) {
        int64_t due = 0;
        rc = db_get_int(d, e, &due, "SELECT gross - paid - credited - written_off FROM invoices WHERE id = ?", "i", ids[i]);
        if (!rc && due > 0) {
            int64_t take = due < left ? due : left;
            rc = invoices_allocate(d, ids[i], pid, take, e);
            left -= take;
        }
    }
    free(ids);
    return rc;
}

int payments_record(db *d, const payment_new *in, int64_t *id, int *restored, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "payments_record needs the caller's transaction");
    if (in->customer_id <= 0) return err_field(e, ERR_INVALID, "missing_field", "customer", "no customer");
    if (!channel_ok(in->channel)) return err_field(e, ERR_INVALID, "invalid_field", "channel", "a channel is 1-32 of a-z 0-9 _");
    if (in->channel_txn_id && (!text_set(in->channel_txn_id) || strlen(in->channel_txn_id) > 64))
        return err_field(e, ERR_INVALID, "invalid_field", "channel_txn_id", "a transaction id or receipt number is 1-64 bytes");
    if (in->amount <= 0) return err_field(e, ERR_INVALID, "invalid_field", "amount", "a payment is more than 0");
    if (in->amount > PAYMENT_MAX) return err_field(e, ERR_INVALID, "invalid_field", "amount", "amount out of range");
    int32_t days;
    if (!in->entry_date || date_parse(in->entry_date, strlen(in->entry_date), &days, e))
        return err_field(e, ERR_INVALID, "invalid_date", "date", "the business day must be a date YYYY-MM-DD");
    if (in->note && strlen(in->note) > 500) return err_field(e, ERR_INVALID, "invalid_field", "note", "a note is at most 500 bytes");
    if (!text_set(in->by)) return err_set(e, ERR_INTERNAL, "payments_record: who records it is not said");
    int64_t known = 0;
    int rc = db_get_int(d, e, &known, "SELECT COUNT(*) FROM customers WHERE id = ?", "i", in->customer_id);
    if (rc) return rc;
    if (!known) return err_field(e, ERR_NOTFOUND, "not_found", "customer", "no customer with id %lld", (long long)in->customer_id);
    if (in->channel_txn_id) {
        int64_t other = 0;
        rc = db_get_int(d, e, &other, "SELECT id FROM payments WHERE channel = ? AND channel_txn_id = ?", "ss", in->channel,
                        in->channel_txn_id);
        if (!rc) {
            if (id) *id = other;
            return err_field(e, ERR_CONFLICT, "duplicate", "channel_txn_id", "%s transaction %s is recorded already: payment %lld",
                             in->channel, in->channel_txn_id, (long long)other);
        }
        if (rc != ERR_NOTFOUND) return rc;
        err_clear(e);
    }
    if (in->invoice_id) {
        int64_t owner = 0;
        rc = db_get_int(d, e, &owner, "SELECT customer_id FROM invoices WHERE id = ? AND status NOT IN ('draft', 'void')", "i", in->invoice_id);
        if (rc == ERR_NOTFOUND || (!rc && owner != in->customer_id))
            return err_field(e, ERR_INVALID, "invalid_field", "invoice", "the invoice is not an issued invoice of this customer");
        if (rc) return rc;
    }
    rc = db_begin(d, e);
    if (rc) return rc;
    char now[25];
    db_now(now);
    db_stmt *s = db_prepare(d,
                            "INSERT INTO payments (customer_id, channel, channel_txn_id, amount, entry_date, received_at, note, created_by) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            e);
    if (!s) rc = e->code;
    else {
        db_bind_int(s, 1, in->customer_id);
        db_bind_text(s, 2, in->channel);
        db_bind_text(s, 3, in->channel_txn_id);
        db_bind_int(s, 4, in->amount);
        db_bind_text(s, 5, in->entry_date);
        db_bind_text(s, 6, now);
        db_bind_text(s, 7, in->note && in->note[0] ? in->note : NULL);
        db_bind_text(s, 8, in->by);
        rc = db_step(d, s, e);
        db_done(s);
        if (rc == DB_DONE) rc = 0;
        else if (rc >= 0) rc = err_set(e, ERR_INTERNAL, "payment insert returned a row");
    }
    int64_t pid = rc ? 0 : db_last_id(d);
    ledger_entry le = {.customer_id = in->customer_id, .kind = "payment", .amount = -in->amount, .entry_date = in->entry_date,
                       .payment_id = pid, .by = in->by};
    if (!rc) rc = ledger_post(d, &le, NULL, e);
    if (!rc) rc = allocate_payment(d, in, pid, e);
    if (restored) *restored = 0;
    if (!rc) rc = dunning_release(d, in->customer_id, "paid", in->channel, pid, restored, e);
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    if (!rc && id) *id = pid;
    return rc;
}

/* --------------------------------------------------------------- refunds */

int payments_refundable(db *d, int64_t payment_id, payment_refundable *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_stmt *s = db_prepare(d,
                            "SELECT p.customer_id, p.channel, coalesce(p.channel_txn_id, ''), p.amount, p.refunded, "
                            "p.amount - p.refunded - coalesce((SELECT sum(amount) FROM allocations "
                            "WHERE payment_id = p.id AND reversed_at IS NULL), 0), p.status, p.entry_date, "
                            "(SELECT count(*) FROM ledger_entries WHERE payment_id = p.id AND kind = 'refund'), "
                            "(SELECT out_trade_no FROM payment_orders WHERE payment_id = p.id) FROM payments p WHERE p.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, payment_id);
    int rc = db_step(d, s, e);
    int64_t free_part = 0;
    if (rc == DB_ROW) {
        out->customer_id = db_col_int(s, 0);
        snprintf(out->channel, sizeof out->channel, "%s", db_col_text(s, 1));
        snprintf(out->channel_txn_id, sizeof out->channel_txn_id, "%s", db_col_text(s, 2));
        out->amount = db_col_int(s, 3);
        out->refunded = db_col_int(s, 4);
        free_part = db_col_int(s, 5);
        snprintf(out->status, sizeof out->status, "%s", db_col_text(s, 6));
        snprintf(out->entry_date, sizeof out->entry_date, "%s", db_col_text(s, 7));
        out->refunds = db_col_int(s, 8);
        if (!db_col_is_null(s, 9)) snprintf(out->out_trade_no, sizeof out->out_trade_no, "%s", db_col_text(s, 9));
    }
    db_done(s);
    if (rc < 0) return rc;
    if (rc == DB_DONE) return err_field(e, ERR_NOTFOUND, "not_found", "id", "no payment %lld", (long long)payment_id);
    /* only what settles nothing can go back: the part of this payment no
     * invoice took, and no more than the customer's credit (a bill may have
     * taken credit since) - anything else needs a credit note first */
    ledger_balance b;
    if ((rc = ledger_balance_of(d, out->customer_id, &b, e))) return rc;
    out->free_part = free_part;
    out->credit = b.credit;
    out->refundable = free_part < b.credit ? free_part : b.credit;
    if (out->refundable < 0) out->refundable = 0;
    return 0;
}

int payments_refund(db *d, const payment_refund *in, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "payments_refund needs the caller's transaction");
    if (in->amount <= 0) return err_field(e, ERR_INVALID, "invalid_field", "amount", "a refund is more than 0");
    if (!text_set(in->reason) || strlen(in->reason) > 500)
        return err_field(e, ERR_INVALID, "missing_field", "reason", "a refund needs a reason (at most 500 bytes)");
    int32_t days;
    if (!in->entry_date || date_parse(in->entry_date, strlen(in->entry_date), &days, e))
        return err_field(e, ERR_INVALID, "invalid_date", "date", "the business day must be a date YYYY-MM-DD");
    payment_refundable r;
    int rc = payments_refundable(d, in->payment_id, &r, e);
    if (rc) return rc;
    /* money that came through a channel goes back through it (its plugin's
     * refund call, which the caller made: via_channel); the counter and
     * bank transfers are paid back by staff, who record it here */
    int counter = !strcmp(r.channel, "counter") || !strcmp(r.channel, "bank");
    if (!counter && !in->via_channel)
        return err_field(e, ERR_CONFLICT, "refund_through_channel", "id",
                         "payment %lld came through %s: it is refunded through the channel", (long long)in->payment_id, r.channel);
    if (strcmp(r.status, "received"))
        return err_field(e, ERR_CONFLICT, "not_refundable", "id", "payment %lld is %s", (long long)in->payment_id, r.status);
    if (strcmp(in->entry_date, r.entry_date) < 0)
        return err_field(e, ERR_INVALID, "invalid_date", "date", "a refund cannot come before the payment (%s)", r.entry_date);
    if (in->amount > r.refundable)
        return err_field(e, ERR_CONFLICT, "exceeds_refundable", "amount",
                         "at most %lld.%02lld can be refunded (what no invoice took: %lld.%02lld of the payment, %lld.%02lld of "
                         "credit); credit an invoice first to refund more",
                         (long long)(r.refundable / 100), (long long)(r.refundable % 100), (long long)(r.free_part / 100),
                         (long long)(r.free_part % 100), (long long)(r.credit / 100), (long long)(r.credit % 100));
    rc = db_run(d, e, "UPDATE payments SET refunded = refunded + ? WHERE id = ?", "ii", in->amount, in->payment_id);
    ledger_entry le = {.customer_id = r.customer_id, .kind = "refund", .amount = in->amount, .entry_date = in->entry_date,
                       .payment_id = in->payment_id, .reason = in->reason, .by = in->by};
    if (!rc) rc = ledger_post(d, &le, NULL, e);
    return rc;
}

/* ------------------------------------------------------------------ reads */

static jv *text_or_null(jv_arena *a, db_stmt *s, int i) { return db_col_is_null(s, i) ? jv_null(a) : jv_str(a, db_col_text(s, i)); }

static int payment_obj(db *d, db_stmt *s, int full, jv_arena *a, jv **out, err *e)
{
    /* columns: id, code, channel, channel_txn_id, amount, refunded, status, entry_date, received_at, note, created_by, allocated */
    int64_t pid = db_col_int(s, 0), amount = db_col_int(s, 4), refunded = db_col_int(s, 5), allocated = db_col_int(s, 11);
    jv *o = jv_obj_sized(a, 14);
    if (!o || jv_obj_set_int(a, o, "id", pid) || jv_obj_set(a, o, "customer", jv_str(a, db_col_text(s, 1))) ||
        jv_obj_set(a, o, "channel", jv_str(a, db_col_text(s, 2))) || jv_obj_set(a, o, "channel_txn_id", text_or_null(a, s, 3)) ||
        jv_obj_set_int(a, o, "amount", amount) || jv_obj_set_int(a, o, "refunded", refunded) ||
        jv_obj_set(a, o, "status", jv_str(a, db_col_text(s, 6))) || jv_obj_set(a, o, "entry_date", jv_str(a, db_col_text(s, 7))) ||
        jv_obj_set(a, o, "received_at", jv_str(a, db_col_text(s, 8))) || jv_obj_set(a, o, "note", text_or_null(a, s, 9)) ||
        jv_obj_set(a, o, "created_by", jv_str(a, db_col_text(s, 10))) || jv_obj_set_int(a, o, "allocated", allocated) ||
        jv_obj_set_int(a, o, "unallocated", amount - refunded - allocated))
        return ERR_NOMEM_RET(e);
    *out = o;
    if (!full) return 0;
    jv *list = jv_arr(a);
    if (!list || jv_obj_set(a, o, "allocations", list)) return ERR_NOMEM_RET(e);
    db_stmt *q = db_prepare(d,
                            "SELECT a.id, i.number, a.amount, a.created_at, a.reversed_at, a.reason FROM allocations a "
                            "JOIN invoices i ON i.id = a.invoice_id WHERE a.payment_id = ? ORDER BY a.id",
                            e);
    if (!q) return e->code;
    db_bind_int(q, 1, pid);
    int rc;
    while ((rc = db_step(d, q, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 6);
        if (!x || jv_obj_set_int(a, x, "id", db_col_int(q, 0)) || jv_obj_set(a, x, "invoice", text_or_null(a, q, 1)) ||
            jv_obj_set_int(a, x, "amount", db_col_int(q, 2)) || jv_obj_set(a, x, "created_at", jv_str(a, db_col_text(q, 3))) ||
            jv_obj_set(a, x, "reversed_at", text_or_null(a, q, 4)) || jv_obj_set(a, x, "reason", text_or_null(a, q, 5)) ||
            jv_arr_push(a, list, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(q);
    return rc < 0 ? rc : 0;
}

int payments_get(db *d, int64_t id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT p.id, c.code, p.channel, p.channel_txn_id, p.amount, p.refunded, p.status, p.entry_date, "
                            "p.received_at, p.note, p.created_by, "
                            "(SELECT COALESCE(SUM(amount), 0) FROM allocations WHERE payment_id = p.id AND reversed_at IS NULL) "
                            "FROM payments p JOIN customers c ON c.id = p.customer_id WHERE p.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_field(e, ERR_NOTFOUND, "not_found", "id", "no payment %lld", (long long)id);
    }
    /* the row stays current while the allocations are read with another statement */
    rc = payment_obj(d, s, 1, a, out, e);
    db_done(s);
    return rc;
}

static int payment_row(void *ud, db *d, db_stmt *s, jv_arena *a, jv **out, err *e)
{
    (void)ud;
    return payment_obj(d, s, 0, a, out, e);
}

int payments_list(db *d, int64_t customer_id, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next,
                  size_t nnext, err *e)
{
    int64_t before;
    if (page_start(cursor, limit, &before, e)) return e->code;
    db_stmt *s = db_prepare(d,
                            "SELECT p.id, c.code, p.channel, p.channel_txn_id, p.amount, p.refunded, p.status, p.entry_date, "
                            "p.received_at, p.note, p.created_by, "
                            "(SELECT COALESCE(SUM(amount), 0) FROM allocations WHERE payment_id = p.id AND reversed_at IS NULL) "
                            "FROM payments p JOIN customers c ON c.id = p.customer_id "
                            "WHERE p.customer_id = ? AND (? = 0 OR p.id < ?) ORDER BY p.id DESC LIMIT ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    db_bind_int(s, 2, before);
    db_bind_int(s, 3, before);
    db_bind_int(s, 4, limit + 1);
    return page_collect(d, s, limit, payment_row, NULL, a, list, next, nnext, e);
}
