/* api_invoices.c - invoices, credit notes, the customer ledger and payments
 * over HTTP (docs/API.md, "Invoices and the ledger").
 *
 * Reads reply through the field filter: an invoice names the customer and
 * where the service is (resource "invoice": customer_name,
 * service_address, billing_address). Every change validates its body
 * first, then runs in one transaction with its audit record; on any error
 * it rolls back and nothing is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "customers.h"
#include "date.h"
#include "invoices.h"
#include "ledger.h"
#include "money.h"
#include "payments.h"
#include "rules.h"
#include "server.h"
#include "users.h"

/* ---------------------------------------------------------------- helpers */

static void by_of(http_req *q, char *by, size_t n) { auth_label(http_who(q), by, n); }

/* A customer named in the path or the query; replies on error. */
static int customer_of(http_req *q, db *d, const char *code, const char *field, int64_t *id)
{
    err e = {0};
    if (!code) {
        http_reply_errf(q, 400, "missing_field", field, "%s is required", field);
        return -1;
    }
    if (customers_id_by_code(d, code, id, &e)) {
        snprintf(e.field, sizeof e.field, "%s", field);
        http_reply_error(q, 0, &e);
        return -1;
    }
    return 0;
}

static int invoice_of(http_req *q, db *d, int64_t *id)
{
    err e = {0};
    if (invoices_id_by_number(d, http_param(q, "number"), id, &e)) {
        http_reply_error(q, 0, &e);
        return -1;
    }
    return 0;
}

/* A date field of the body: absent means today; given, a real date not
 * after today (money is recorded when it moves, not planned here). */
static int date_field(http_req *q, const jv *body, const char *key, char out[11])
{
    const char *s = http_str(body, key);
    char t[11];
    http_today(t);
    if (!s) {
        memcpy(out, t, 11);
        return 0;
    }
    int32_t days;
    err e = {0};
    if (date_parse(s, strlen(s), &days, &e)) {
        http_reply_errf(q, 400, "invalid_date", key, "%s must be a date YYYY-MM-DD", key);
        return -1;
    }
    if (strcmp(s, t) > 0) {
        http_reply_errf(q, 400, "invalid_date", key, "%s (%s) is in the future (today is %s)", key, s, t);
        return -1;
    }
    snprintf(out, 11, "%s", s);
    return 0;
}

static int reason_field(http_req *q, const jv *body, const char **reason)
{
    const char *r = http_str(body, "reason");
    if (!r || !r[strspn(r, " \t\r\n")]) {
        http_reply_errf(q, 400, "missing_field", "reason", "a reason is required");
        return -1;
    }
    if (strlen(r) > 500) {
        http_reply_errf(q, 400, "invalid_field", "reason", "a reason is at most 500 bytes");
        return -1;
    }
    *reason = r;
    return 0;
}

/* ---------------------------------------------------------------- invoices */

int api_invoices_list(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t limit, customer = 0;
    const char *cursor, *code = http_query(q, "customer");
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    if (code && customer_of(q, d, code, "customer", &customer)) return HTTP_DONE;
    jv *list;
    char next[INVOICES_CURSOR_MAX];
    err e = {0};
    if (invoices_list(d, customer, http_query(q, "status"), cursor, limit, http_arena(q), &list, next, sizeof next, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resources(q, "invoice", list, next[0] ? next : NULL);
    return HTTP_DONE;
}

int api_invoices_get(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t id;
    jv *o;
    err e = {0};
    if (invoice_of(q, d, &id)) return HTTP_DONE;
    if (invoices_get(d, id, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "invoice", o);
    return HTTP_DONE;
}

int api_invoices_explain(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t id;
    jv *o;
    err e = {0};
    if (invoice_of(q, d, &id)) return HTTP_DONE;
    if (invoices_explain(d, id, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "invoice", o);
    return HTTP_DONE;
}

int api_invoices_void(http_req *q)
{
    static const http_field spec[] = {{"reason", 's', 1}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    const char *reason = NULL;
    if (http_check_body(q, body, spec, 0) || reason_field(q, body, &reason)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    int64_t id;
    if (invoice_of(q, d, &id)) return HTTP_DONE;
    char by[96];
    by_of(q, by, sizeof by);
    err e = {0};
    jv *before = NULL, *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = invoices_get(d, id, a, &before, &e);
    if (!rc) rc = invoices_void(d, id, reason, by, &e);
    if (!rc) rc = invoices_get(d, id, a, &after, &e);
    audit_event ev = {.action = "invoice.void", .object_type = "invoice", .object_id = http_param(q, "number"), .before = before,
                      .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "invoice", after);
    return HTTP_DONE;
}

/* {"lines": [{"line": 2, "amount": 1000}, ...]}: lines named by their
 * number on the invoice (seq). Replies on error. */
static int credit_lines(http_req *q, db *d, int64_t invoice_id, const jv *list, credit_line_in **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!list) return 0;
    if (list->kind != JV_ARR || list->u.arr.n == 0 || list->u.arr.n > 1000) {
        http_reply_errf(q, 400, "invalid_field", "lines", "lines is a list of 1 to 1000 {\"line\", \"amount\"} (leave it out to credit everything)");
        return -1;
    }
    credit_line_in *cl = jv_alloc(http_arena(q), list->u.arr.n * sizeof *cl);
    if (!cl) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < list->u.arr.n; i++) {
        const jv *x = list->u.arr.items[i];
        char f[48];
        if (x->kind != JV_OBJ) {
            snprintf(f, sizeof f, "lines[%zu]", i);
            http_reply_errf(q, 400, "invalid_field", f, "%s is an object {\"line\", \"amount\"}", f);
            return -1;
        }
        for (size_t k = 0; k < x->u.obj.n; k++)
            if (strcmp(x->u.obj.m[k].key, "line") && strcmp(x->u.obj.m[k].key, "amount")) {
                snprintf(f, sizeof f, "lines[%zu].%.20s", i, x->u.obj.m[k].key);
                http_reply_errf(q, 400, "unknown_field", f, "unknown field '%s'", f);
                return -1;
            }
        const jv *line = jv_get(x, "line"), *amount = jv_get(x, "amount");
        if (!line || line->kind != JV_INT) {
            snprintf(f, sizeof f, "lines[%zu].line", i);
            http_reply_errf(q, 400, line ? "invalid_field" : "missing_field", f, "%s is the line's number on the invoice (1, 2, ...)", f);
            return -1;
        }
        if (!amount || amount->kind != JV_INT) {
            snprintf(f, sizeof f, "lines[%zu].amount", i);
            if (amount && amount->kind == JV_NUM) http_reply_errf(q, 400, "invalid_money", f, "%s is whole fen: no fraction", f);
            else http_reply_errf(q, 400, amount ? "invalid_field" : "missing_field", f, "%s is the amount in fen to credit, tax included", f);
            return -1;
        }
        snprintf(f, sizeof f, "lines[%zu].line", i);
        err e = {0};
        if (invoices_line_id(d, invoice_id, line->u.i, f, &cl[i].invoice_line_id, &e)) {
            http_reply_error(q, 0, &e);
            return -1;
        }
        cl[i].amount = amount->u.i;
    }
    *out = cl;
    *n = list->u.arr.n;
    return 0;
}

int api_invoices_credit(http_req *q)
{
    static const http_field spec[] = {{"reason", 's', 1}, {"lines", 'a', 0}, {"issue_date", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    const char *reason = NULL;
    char day[11];
    if (http_check_body(q, body, spec, 0) || reason_field(q, body, &reason) || date_field(q, body, "issue_date", day)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    int64_t id, note_id = 0;
    credit_line_in *lines;
    size_t n;
    if (invoice_of(q, d, &id) || credit_lines(q, d, id, jv_get(body, "lines"), &lines, &n)) return HTTP_DONE;
    char by[96], number[INVOICE_NUMBER_MAX];
    by_of(q, by, sizeof by);
    err e = {0};
    jv *before = NULL, *after = NULL, *note = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = invoices_get(d, id, a, &before, &e);
    if (!rc) rc = invoices_credit(d, id, lines, n, reason, day, by, &note_id, number, &e);
    if (!rc) rc = invoices_get(d, id, a, &after, &e);
    if (!rc) rc = invoices_credit_note_get(d, note_id, a, &note, &e);
    audit_event ev = {.action = "invoice.credit", .object_type = "invoice", .object_id = http_param(q, "number"), .before = before,
                      .after = after, .detail = note};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 201, "credit_note", note);
    return HTTP_DONE;
}

int api_invoices_write_off(http_req *q)
{
    static const http_field spec[] = {{"reason", 's', 1}, {"date", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    const char *reason = NULL;
    char day[11];
    if (http_check_body(q, body, spec, 0) || reason_field(q, body, &reason) || date_field(q, body, "date", day)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    int64_t id;
    if (invoice_of(q, d, &id)) return HTTP_DONE;
    char by[96];
    by_of(q, by, sizeof by);
    err e = {0};
    jv *before = NULL, *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = invoices_get(d, id, a, &before, &e);
    if (!rc) rc = invoices_write_off(d, id, reason, day, by, &e);
    if (!rc) rc = invoices_get(d, id, a, &after, &e);
    audit_event ev = {.action = "invoice.write_off", .object_type = "invoice", .object_id = http_param(q, "number"), .before = before,
                      .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "invoice", after);
    return HTTP_DONE;
}

int api_credit_notes_get(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t id;
    jv *o;
    err e = {0};
    if (invoices_credit_note_id_by_number(d, http_param(q, "number"), &id, &e) || invoices_credit_note_get(d, id, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "credit_note", o);
    return HTTP_DONE;
}

/* ------------------------------------------------------------------ ledger */

static void balance_kv(jw *w, const ledger_balance *b)
{
    jw_kv_int(w, "balance", b->balance);
    jw_kv_int(w, "open", b->open);
    jw_kv_int(w, "credit", b->credit);
    jw_kv_int(w, "deposits_held", b->deposits_held);
}

int api_ledger_list(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t customer, limit;
    const char *cursor;
    if (customer_of(q, d, http_param(q, "code"), "code", &customer) || http_page(q, &limit, &cursor)) return HTTP_DONE;
    jv *list;
    char next[INVOICES_CURSOR_MAX];
    ledger_balance b;
    err e = {0};
    if (ledger_list(d, customer, cursor, limit, http_arena(q), &list, next, sizeof next, &e) || ledger_balance_of(d, customer, &b, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    /* entries carry no personal data: amounts, kinds, document numbers */
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    char code[CUSTOMER_CODE_MAX];
    if (customers_code_by_id(d, customer, code, &e)) snprintf(code, sizeof code, "%s", http_param(q, "code"));
    jw_kv_str(&w, "customer", code);
    balance_kv(&w, &b);
    jw_key(&w, "data");
    jw_jv(&w, list);
    jw_kv_str(&w, "next_cursor", next[0] ? next : NULL);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

static jv *balance_jv(jv_arena *a, const ledger_balance *b)
{
    jv *o = jv_obj_sized(a, 4);
    if (!o || jv_obj_set_int(a, o, "balance", b->balance) || jv_obj_set_int(a, o, "open", b->open) ||
        jv_obj_set_int(a, o, "credit", b->credit) || jv_obj_set_int(a, o, "deposits_held", b->deposits_held))
        return NULL;
    return o;
}

/* The approver of an adjustment is a staff member, active, allowed to
 * adjust, and not the one asking (ledger_adjust checks that last part). */
static int approver_ok(http_req *q, db *d, const char *name)
{
    staff_user u;
    err e = {0};
    if (users_get(d, name, 0, &u, &e) || strcmp(u.status, "active")) {
        http_reply_errf(q, 400, "unknown_approver", "approved_by", "the approver '%s' is not an active staff account", name);
        return -1;
    }
    principal p = {.kind = PRINCIPAL_SESSION, .id = u.id};
    snprintf(p.name, sizeof p.name, "%s", u.username);
    snprintf(p.role, sizeof p.role, "%s", u.role);
    if (auth_authorize(d, &p, "invoice.adjust", &e)) {
        http_reply_errf(q, 403, "approver_not_allowed", "approved_by", "%s (role %s) may not approve adjustments (invoice.adjust)", name, u.role);
        return -1;
    }
    return 0;
}

int api_ledger_adjust(http_req *q)
{
    static const http_field spec[] = {{"amount", 'M', 1}, {"reason", 's', 1}, {"approved_by", 's', 1}, {"date", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    const char *reason = NULL;
    char day[11];
    if (http_check_body(q, body, spec, 0) || reason_field(q, body, &reason) || date_field(q, body, "date", day)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    int64_t customer, amount = jv_get(body, "amount")->u.i, entry = 0;
    const char *approver = http_str(body, "approved_by");
    if (customer_of(q, d, http_param(q, "code"), "code", &customer) || approver_ok(q, d, approver)) return HTTP_DONE;
    char by[96];
    by_of(q, by, sizeof by);
    err e = {0};
    ledger_balance b0, b1;
    jv *before = NULL, *after = NULL, *list = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = ledger_balance_of(d, customer, &b0, &e);
    if (!rc) rc = ledger_adjust(d, customer, amount, reason, approver, day, by, &entry, &e);
    if (!rc) rc = ledger_balance_of(d, customer, &b1, &e);
    if (!rc) rc = ledger_list(d, customer, NULL, 1, a, &list, NULL, 0, &e);
    if (!rc && (!(before = balance_jv(a, &b0)) || !(after = balance_jv(a, &b1)) || jv_obj_set(a, after, "entry", list->u.arr.items[0])))
        rc = ERR_NOMEM_RET(&e);
    audit_event ev = {.action = "ledger.adjust", .object_type = "customer", .object_id = http_param(q, "code"), .before = before,
                      .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 201, "ledger", after);
    return HTTP_DONE;
}

typedef struct verify_out {
    http_req *q;
    db *d;
    jv *list;
    int64_t shown;
} verify_out;

#define VERIFY_SHOWN_MAX 1000

static void on_problem(void *ud, int64_t customer_id, const char *what)
{
    verify_out *vo = ud;
    if (vo->shown >= VERIFY_SHOWN_MAX) return;
    jv_arena *a = http_arena(vo->q);
    char code[CUSTOMER_CODE_MAX] = "";
    err e;
    if (customers_code_by_id(vo->d, customer_id, code, &e)) snprintf(code, sizeof code, "#%lld", (long long)customer_id);
    jv *x = jv_obj_sized(a, 2);
    if (x && !jv_obj_set_str(a, x, "customer", code) && !jv_obj_set_str(a, x, "problem", what) && !jv_arr_push(a, vo->list, x)) vo->shown++;
}

int api_ledger_verify(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t customer = 0;
    const char *code = http_query(q, "customer");
    if (code && customer_of(q, d, code, "customer", &customer)) return HTTP_DONE;
    verify_out vo = {.q = q, .d = d, .list = jv_arr(http_arena(q))};
    ledger_report r;
    err e = {0};
    if (!vo.list) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    if (ledger_verify(d, customer, on_problem, &vo, &r, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_bool(&w, "ok", r.problems == 0);
    jw_kv_int(&w, "customers", r.customers);
    jw_kv_int(&w, "entries", r.entries);
    jw_kv_int(&w, "days", r.days);
    jw_kv_int(&w, "problems", r.problems);
    jw_key(&w, "disagreements");
    jw_jv(&w, vo.list);
    jw_kv_bool(&w, "truncated", r.problems > vo.shown);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

/* ---------------------------------------------------------------- payments */

int api_payments_list(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t customer, limit;
    const char *cursor;
    if (customer_of(q, d, http_param(q, "code"), "code", &customer) || http_page(q, &limit, &cursor)) return HTTP_DONE;
    jv *list;
    char next[INVOICES_CURSOR_MAX];
    err e = {0};
    if (payments_list(d, customer, cursor, limit, http_arena(q), &list, next, sizeof next, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resources(q, "payment", list, next[0] ? next : NULL);
    return HTTP_DONE;
}

int api_payments_get(http_req *q)
{
    db *d = server_db(http_server(q));
    const char *p = http_param(q, "id");
    char *end;
    long long id = p ? strtoll(p, &end, 10) : 0;
    if (!p || *end || id <= 0) {
        http_reply_errf(q, 404, "not_found", "id", "no payment %s", p ? p : "");
        return HTTP_DONE;
    }
    jv *o;
    err e = {0};
    if (payments_get(d, id, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "payment", o);
    return HTTP_DONE;
}

int api_payments_record(http_req *q)
{
    static const http_field spec[] = {{"amount", 'm', 1}, {"receipt", 's', 1}, {"channel", 's', 0}, {"invoice", 's', 0},
                                      {"date", 's', 0},   {"note", 's', 0},    {NULL, 0, 0}};
    const jv *body = http_body(q);
    char day[11];
    if (http_check_body(q, body, spec, 0) || date_field(q, body, "date", day)) return HTTP_DONE;
    int64_t amount = jv_get(body, "amount")->u.i;
    if (amount <= 0) {
        http_reply_errf(q, 400, "invalid_field", "amount", "a payment is more than 0 fen");
        return HTTP_DONE;
    }
    const char *channel = http_str(body, "channel") ? http_str(body, "channel") : "counter";
    if (strcmp(channel, "counter") && strcmp(channel, "bank")) {
        http_reply_errf(q, 400, "invalid_field", "channel", "payments recorded by staff come from the counter or the bank (online channels report their own)");
        return HTTP_DONE;
    }
    const char *receipt = http_str(body, "receipt");
    if (!receipt[strspn(receipt, " \t")] || strlen(receipt) > 64) {
        http_reply_errf(q, 400, "invalid_field", "receipt", "receipt is the receipt or bank reference, 1-64 characters");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    int64_t customer, invoice = 0, pid = 0;
    if (customer_of(q, d, http_param(q, "code"), "code", &customer)) return HTTP_DONE;
    err e = {0};
    if (http_str(body, "invoice") && invoices_id_by_number(d, http_str(body, "invoice"), &invoice, &e)) {
        snprintf(e.field, sizeof e.field, "invoice");
        http_reply_error(q, e.code == ERR_NOTFOUND ? 400 : 0, &e);
        return HTTP_DONE;
    }
    char by[96];
    by_of(q, by, sizeof by);
    ruleset *rs = rules_live();
    payment_new in = {.customer_id = customer, .channel = channel, .channel_txn_id = receipt, .amount = amount, .invoice_id = invoice,
                      .entry_date = day, .note = http_str(body, "note"), .by = by, .rules = rs};
    jv *obj = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = payments_record(d, &in, &pid, NULL, &e);
    if (rs) ruleset_unref(rs);
    if (!rc) rc = payments_get(d, pid, a, &obj, &e);
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", (long long)pid);
    audit_event ev = {.action = "payment.record", .object_type = "payment", .object_id = oid, .after = obj};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        if (!strcmp(e.field, "channel_txn_id")) snprintf(e.field, sizeof e.field, "receipt");
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 201, "payment", obj);
    return HTTP_DONE;
}
