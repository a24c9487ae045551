/* payorders.c - payment orders and the settlement of verified channel
 * notifications. */
#include "payorders.h"

#include <stdio.h>
#include <string.h>

#include <stdlib.h>
#include <time.h>

#include "audit.h"
#include "cfg.h"
#include "channels.h"
#include "crypto.h"
#include "httpc.h"
#include "customers.h"
#include "outbox.h"
#include "date.h"
#include "log.h"
#include "netstate.h"
#include "payments.h"
#include "rules.h"
#include "vault.h"

int payorders_create(db *d, const payorder_new *in, int64_t *id, char out_trade_no[PAYORDER_NO_MAX], err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "payorders_create outside a transaction");
    if (in->amount <= 0) return err_field(e, ERR_INVALID, "invalid_money", "amount", "the amount must be more than 0 fen");
    if (in->ttl_min < 1 || in->ttl_min > 7 * 24 * 60)
        return err_field(e, ERR_INVALID, "invalid_field", "ttl_min", "an order lives 1 minute to 7 days");
    /* random, not a sequence: an order number tells nobody how many others
     * there are; the unique key catches the rare collision */
    char now[25], expires[25];
    db_now(now);
    db_format_time(db_now_ms() + in->ttl_min * 60000, expires);
    for (int attempt = 0; attempt < 4; attempt++) {
        uint32_t r;
        if (crypto_random(&r, sizeof r)) return err_set(e, ERR_INTERNAL, "no randomness");
        snprintf(out_trade_no, PAYORDER_NO_MAX, "BB%.4s%.2s%.2s%08u", now, now + 5, now + 8, (unsigned)(r % 100000000u));
        int64_t clash = 0;
        int rc = db_get_int(d, e, &clash, "SELECT count(*) FROM payment_orders WHERE out_trade_no = ?", "s", out_trade_no);
        if (rc) return rc;
        if (clash) continue;
        rc = db_run(d, e,
                    "INSERT INTO payment_orders (out_trade_no, channel, customer_id, invoice_id, amount, status, expires_at, "
                    "created_at, created_by) VALUES (?, ?, ?, NULLIF(?, 0), ?, 'open', ?, ?, ?)",
                    "ssiiisss", out_trade_no, in->channel, in->customer_id, in->invoice_id, in->amount, expires, now, in->by);
        if (rc) return rc;
        *id = db_last_id(d);
        return 0;
    }
    return err_set(e, ERR_CONFLICT, "could not draw a free order number");
}

int payorders_get(db *d, const char *out_trade_no, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT o.out_trade_no, o.channel, c.code, i.number, o.amount, o.status, o.expires_at, o.pay_url, "
                            "o.payment_id, o.created_at, o.created_by, o.settled_at FROM payment_orders o "
                            "JOIN customers c ON c.id = o.customer_id LEFT JOIN invoices i ON i.id = o.invoice_id "
                            "WHERE o.out_trade_no = ?",
                            e);
    if (!s) return e->code;
    db_bind_text(s, 1, out_trade_no);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        jv *o = jv_obj(a);
        static const char *const names[] = {"out_trade_no", "channel", "customer", "invoice", "amount", "status",
                                            "expires_at", "pay_url", "payment_id", "created_at", "created_by", "settled_at"};
        for (int i = 0; i < 12 && o; i++) {
            jv *v = db_col_is_null(s, i) ? jv_null(a)
                    : (i == 4 || i == 8) ? jv_int(a, db_col_int(s, i))
                                         : jv_str(a, db_col_text(s, i));
            if (!v || jv_obj_set(a, o, names[i], v)) o = NULL;
        }
        if (!o) rc = err_set(e, ERR_NOMEM, "out of memory");
        *out = o;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "out_trade_no", "no payment order %s", out_trade_no);
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

static void set_outcome(payorder_result *r, const char *outcome, const char *why)
{
    snprintf(r->outcome, sizeof r->outcome, "%s", outcome);
    snprintf(r->reason, sizeof r->reason, "%s", why ? why : "");
}

typedef struct order_row {
    int64_t id, customer_id, invoice_id, amount;
    char channel[32], status[16];
} order_row;

static int find_order(db *d, const char *out_trade_no, order_row *o, int *found, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT id, customer_id, coalesce(invoice_id, 0), amount, channel, status FROM payment_orders "
                            "WHERE out_trade_no = ?",
                            e);
    if (!s) return e->code;
    db_bind_text(s, 1, out_trade_no);
    int rc = db_step(d, s, e);
    *found = rc == DB_ROW;
    if (*found) {
        o->id = db_col_int(s, 0);
        o->customer_id = db_col_int(s, 1);
        o->invoice_id = db_col_int(s, 2);
        o->amount = db_col_int(s, 3);
        snprintf(o->channel, sizeof o->channel, "%s", db_col_text(s, 4));
        snprintf(o->status, sizeof o->status, "%s", db_col_text(s, 5));
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

/* Why the notice cannot be credited to the order, or "" when it can. */
static void mismatch(const order_row *o, const char *channel, const payorder_expect *x, const paychan_notice *nt,
                     char *why, size_t n)
{
    why[0] = 0;
    if (strcmp(o->channel, channel))
        snprintf(why, n, "the order was made for %s, the notification comes from %s", o->channel, channel);
    else if (nt->amount != o->amount)
        snprintf(why, n, "amount %lld fen, the order is for %lld fen", (long long)nt->amount, (long long)o->amount);
    else if (strcmp(nt->currency[0] ? nt->currency : "CNY", "CNY"))
        snprintf(why, n, "currency %s, not CNY", nt->currency);
    else if (x->app_id && x->app_id[0] && strcmp(x->app_id, nt->app_id))
        snprintf(why, n, "paid to app %s, ours is %s", nt->app_id, x->app_id);
    else if (x->merchant_id && x->merchant_id[0] && strcmp(x->merchant_id, nt->merchant_id))
        snprintf(why, n, "paid to merchant %s, ours is %s", nt->merchant_id, x->merchant_id);
    else if (!strcmp(o->status, "paid"))
        snprintf(why, n, "the order was paid already, by another transaction: a second payment");
    else if (!strcmp(o->status, "held") || !strcmp(o->status, "closed"))
        snprintf(why, n, "the order is %s", o->status);
}

int payorders_settle(db *d, const vault *v, const char *channel, const payorder_expect *x, const paychan_notice *nt,
                     const payorder_raw *raw, const char *today, payorder_result *r, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "payorders_settle outside a transaction");
    memset(r, 0, sizeof *r);
    order_row o = {0};
    int found = 0, rc = 0;
    char why[200] = "";
    if (nt->state != PAYCHAN_PAID) {
        snprintf(why, sizeof why, "%s %s: nothing to credit", nt->event[0] ? nt->event : "notification", nt->status);
        set_outcome(r, "ignored", why);
    } else {
        rc = find_order(d, nt->out_trade_no, &o, &found, e);
        if (rc) return rc;
        /* the same money told again (a retry, TRADE_FINISHED after
         * TRADE_SUCCESS) is credited once, whatever became of the order */
        int64_t paid = 0;
        rc = db_get_int(d, e, &paid, "SELECT id FROM payments WHERE channel = ? AND channel_txn_id = ?", "ss", channel,
                        nt->channel_txn_id);
        if (rc == 0) {
            r->payment_id = paid;
            set_outcome(r, "duplicate", "this transaction was credited already");
        } else if (rc != ERR_NOTFOUND) {
            return rc;
        }
        rc = 0;
        if (!r->outcome[0]) {
            if (!found) snprintf(why, sizeof why, "no order %s here", nt->out_trade_no);
            else mismatch(&o, channel, x, nt, why, sizeof why);
            if (why[0]) set_outcome(r, "held", why);
        }
    }
    r->order_id = o.id;
    r->customer_id = o.customer_id;
    if (!r->outcome[0]) {
        char note[120];
        snprintf(note, sizeof note, "%s order %s", channel, nt->out_trade_no);
        char by[48];
        snprintf(by, sizeof by, "channel:%s", channel);
        payment_new p = {.customer_id = o.customer_id, .channel = channel, .channel_txn_id = nt->channel_txn_id,
                         .amount = nt->amount, .invoice_id = o.invoice_id, .entry_date = today, .note = note, .by = by,
                         .rules = x->rules};
        rc = payments_record(d, &p, &r->payment_id, &r->restored, e);
        if (rc == ERR_CONFLICT && !strcmp(err_tag(e), "duplicate")) {
            /* the same money told again (a retry, TRADE_FINISHED after TRADE_SUCCESS): credited once */
            set_outcome(r, "duplicate", "this transaction was credited already");
            rc = 0;
        } else if (rc) {
            return rc;
        } else {
            set_outcome(r, "credited", NULL);
            char now[25];
            db_now(now);
            rc = db_run(d, e, "UPDATE payment_orders SET status = 'paid', payment_id = ?, settled_at = ? WHERE id = ?", "isi",
                        r->payment_id, now, o.id);
            if (rc) return rc;
        }
    }
    if (!strcmp(r->outcome, "held") && found &&
        (rc = db_run(d, e, "UPDATE payment_orders SET status = 'held' WHERE id = ? AND status = 'open'", "i", o.id)))
        return rc;
    char now[25];
    db_now(now);
    rc = db_run(d, e,
                "INSERT INTO payment_notifications (channel, received_at, source, headers, body, fields, outcome, reason, "
                "out_trade_no, channel_txn_id, amount, order_id, payment_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, 0), NULLIF(?, 0))",
                "ssssts" "ssssiii", channel, now, raw->source, raw->headers_json ? raw->headers_json : "{}", raw->body,
                raw->body_len, nt->fields_json ? nt->fields_json : "{}", r->outcome, r->reason[0] ? r->reason : NULL,
                nt->out_trade_no[0] ? nt->out_trade_no : NULL, nt->channel_txn_id[0] ? nt->channel_txn_id : NULL,
                nt->amount, o.id, r->payment_id);
    if (!rc) r->notification_id = db_last_id(d);
    return rc;
}

int payorders_expire(db *d, int *n, err *e)
{
    char now[25];
    db_now(now);
    int rc = db_run(d, e, "UPDATE payment_orders SET status = 'expired' WHERE status = 'open' AND expires_at <= ?", "s", now);
    *n = rc ? 0 : (int)db_changes(d);
    return rc;
}

/* ------------------------------------------------------------- queries */

int payorders_query_due(db *d, const vault *v, const cfg *c, int64_t after_min, int limit, int *asked, int *credited,
                        err *e)
{
    *asked = *credited = 0;
    char before[25];
    db_format_time(db_now_ms() - after_min * 60000, before);
    /* the orders first, the statement done before any write */
    struct {
        char no[PAYORDER_NO_MAX], channel[32];
    } *todo = calloc((size_t)limit, sizeof *todo);
    if (!todo) return err_set(e, ERR_NOMEM, "out of memory");
    db_stmt *s = db_prepare(d,
                            "SELECT out_trade_no, channel FROM payment_orders WHERE status = 'open' AND created_at <= ? "
                            "ORDER BY id LIMIT ?",
                            e);
    int n = 0, rc = s ? 0 : e->code;
    if (s) {
        db_bind_text(s, 1, before);
        db_bind_int(s, 2, limit);
        while ((rc = db_step(d, s, e)) == DB_ROW) {
            snprintf(todo[n].no, sizeof todo[n].no, "%s", db_col_text(s, 0));
            snprintf(todo[n].channel, sizeof todo[n].channel, "%s", db_col_text(s, 1));
            n++;
        }
        db_done(s);
        rc = rc < 0 ? rc : 0;
    }
    ruleset *rs = NULL;
    if (!rc && n) {
        if (rules_load_folder(c->rules, &rs, e)) rs = NULL;
        err_clear(e); /* without rules a payment still goes in; what is left stays credit */
    }
    char today[11];
    date_format(date_of_time(time(NULL)), today);
    for (int i = 0; i < n && !rc; i++) {
        channel_handle ch;
        err ce;
        if (channel_open_configured(c, todo[i].channel, &ch, &ce)) continue; /* not configured here any more */
        paychan_http h;
        paychan_error pe;
        memset(&pe, 0, sizeof pe);
        httpc_answer a;
        memset(&a, 0, sizeof a);
        int64_t now = (int64_t)time(NULL);
        int q = ch.p->query_order && ch.p->query_response ? ch.p->query_order(ch.h, todo[i].no, now, &h, &pe) : 0;
        if (q == PAYCHAN_HTTP) {
            (*asked)++;
            err he;
            int hr = httpc_fetch(h.method, h.url, h.headers, h.body, h.body_len, 10, &a, &he);
            free(h.body);
            paychan_notice nt;
            memset(&nt, 0, sizeof nt);
            paychan_request resp = {a.headers, a.nheaders, a.body ? a.body : "", a.len};
            if (hr || !a.status)
                log_msg(LOG_WARN, "payment_query_failed", "%s order %s: %s", todo[i].channel, todo[i].no, hr ? he.msg : a.error);
            else if (ch.p->query_response(ch.h, todo[i].no, a.status, &resp, (int64_t)time(NULL), &nt, &pe)) {
                char line[400];
                channels_describe(&pe, line, sizeof line);
                log_msg(LOG_WARN, "payment_query_failed", "%s order %s: %s", todo[i].channel, todo[i].no, line);
            } else if (nt.state == PAYCHAN_PAID) {
                payorder_expect x = {channels_setting(c, todo[i].channel, "app_id"),
                                     channels_setting(c, todo[i].channel, "merchant_id"), rs};
                payorder_raw raw = {"{}", resp.body, resp.body_len, "query"};
                payorder_result r;
                rc = db_begin(d, e);
                if (!rc) rc = payorders_settle(d, v, todo[i].channel, &x, &nt, &raw, today, &r, e);
                if (!rc) {
                    char actor[] = "job:payments.query", nid[24];
                    snprintf(nid, sizeof nid, "%lld", (long long)r.notification_id);
                    audit_who who = {actor, "system", "scheduler", NULL, NULL};
                    audit_event ev = {.action = "payment.query", .object_type = "payment_notification", .object_id = nid};
                    rc = audit_append(d, vault_audit_key(v), &who, &ev, e);
                }
                if (!rc) rc = db_commit(d, e);
                else db_rollback(d);
                if (!rc && !strcmp(r.outcome, "credited")) (*credited)++;
            }
            free(nt.fields_json);
        }
        httpc_answer_free(&a);
        channel_close(&ch);
    }
    if (rs) ruleset_unref(rs);
    free(todo);
    return rc;
}

