/* api_subscriptions.c - subscriptions, their changes, and one-time charges
 * over HTTP (docs/API.md, "Subscriptions"). The handlers check the request's
 * shape; subs.c checks everything against the data and the rules inside the
 * transaction that also carries the audit record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "customers.h"
#include "date.h"
#include "rules.h"
#include "server.h"
#include "subs.h"

/* ---------------------------------------------------------------- helpers */



static const jv *int_of(const jv *body, const char *key)
{
    const jv *v = jv_get(body, key);
    return v && v->kind == JV_INT ? v : NULL;
}


/* A positive integer path parameter; replies 404 otherwise (no such thing
 * can exist under a name that is not a number). */
static int id_param(http_req *q, const char *name, const char *what, int64_t *out)
{
    const char *p = http_param(q, name);
    char *end;
    long long v = p ? strtoll(p, &end, 10) : 0;
    if (!p || !*p || *end || v <= 0) {
        http_reply_errf(q, 404, "not_found", name, "no %s '%s'", what, p ? p : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int customer_param(http_req *q, db *d, int64_t *id)
{
    err e;
    if (customers_id_by_code(d, http_param(q, "code"), id, &e)) {
        http_reply_error(q, 0, &e);
        return -1;
    }
    return 0;
}

static ruleset *live_rules(http_req *q)
{
    ruleset *rs = rules_live();
    if (!rs) http_reply_errf(q, 503, "unavailable", "", "no rule set is loaded");
    return rs;
}

/* Rolls back what the handler began and replies: a rule at fault with the
 * rule's details. */
static void fail(http_req *q, db *d, const err *e, const rule_error *re)
{
    if (db_in_tx(d)) db_rollback(d);
    if (e->code == ERR_RULE) http_reply_rule_error(q, 422, e, re && re->kind[0] ? re : NULL);
    else http_reply_error(q, 0, e);
}

static int64_t cursor_of(http_req *q, const char *cursor)
{
    if (!cursor) return INT64_MAX;
    char *end;
    long long v = strtoll(cursor, &end, 10);
    if (!*cursor || *end || v <= 0) {
        http_reply_errf(q, 400, "invalid_parameter", "cursor", "cursor is not one this server gave out");
        return -1;
    }
    return v;
}

/* {"change": ..., "subscription": ...} */
static void reply_change(http_req *q, int status, jv *change, jv *sub)
{
    jv_arena *a = http_arena(q);
    jv *o = jv_obj(a);
    if (!o || jv_obj_set(a, o, "change", change) || jv_obj_set(a, o, "subscription", sub)) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return;
    }
    jw w;
    if (jw_init(&w, 0)) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return;
    }
    jw_jv(&w, o);
    http_reply_json(q, status, &w);
}

/* ---------------------------------------------------------- subscriptions */

static int subscription_item(void *ud, db *d, jv_arena *a, int64_t id, jv **out, err *e)
{
    (void)ud;
    return subs_get(d, id, 0, a, out, e);
}

static int charge_item(void *ud, db *d, jv_arena *a, int64_t id, jv **out, err *e)
{
    (void)ud;
    return subs_charge_get(d, id, a, out, e);
}

int api_subscriptions_list(http_req *q)
{
    int64_t limit, cid;
    const char *cursor;
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    int64_t before = cursor_of(q, cursor);
    if (before < 0) return HTTP_DONE;
    const char *status = http_query(q, "status");
    if (status && strcmp(status, "pending") && strcmp(status, "active") && strcmp(status, "suspended") &&
        strcmp(status, "terminated")) {
        http_reply_errf(q, 400, "invalid_parameter", "status", "status is pending, active, suspended or terminated");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    if (customer_param(q, d, &cid)) return HTTP_DONE;
    err e;
    db_stmt *s = db_prepare(d,
                            "SELECT id FROM subscriptions WHERE customer_id = ? AND (? IS NULL OR status = ?) AND id < ? "
                            "ORDER BY id DESC LIMIT ?",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_int(s, 1, cid);
    db_bind_text(s, 2, status);
    db_bind_text(s, 3, status);
    db_bind_int(s, 4, before);
    db_bind_int(s, 5, limit + 1);
    http_reply_id_page(q, d, s, limit, "subscription", subscription_item, NULL);
    return HTTP_DONE;
}

int api_subscriptions_create(http_req *q)
{
    static const http_field spec[] = {
        {"plan", 's', 1},   {"start_date", 's', 0}, {"addons", 'a', 0},
        {"account", 's', 0}, {"note", 's', 0},       {NULL, 0, 0},
    };
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *addons[SUBS_MAX_ADDONS];
    size_t naddons = 0;
    const jv *al = jv_get(body, "addons");
    if (al && al->kind == JV_ARR) {
        if (al->u.arr.n > SUBS_MAX_ADDONS) {
            http_reply_errf(q, 400, "too_many", "addons", "at most %d add-ons", SUBS_MAX_ADDONS);
            return HTTP_DONE;
        }
        for (size_t i = 0; i < al->u.arr.n; i++) {
            const jv *v = al->u.arr.items[i];
            if (v->kind != JV_STR) {
                char field[32];
                snprintf(field, sizeof field, "addons[%zu]", i);
                http_reply_errf(q, 400, "invalid_field", field, "add-ons are listed by their product codes (strings)");
                return HTTP_DONE;
            }
            addons[naddons++] = v->u.str.s;
        }
    }
    const char *start = http_str(body, "start_date");
    if (start && !subs_date_ok(start)) {
        http_reply_errf(q, 400, "invalid_date", "start_date", "start_date must be a date YYYY-MM-DD");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    int64_t cid, id;
    if (customer_param(q, d, &cid)) return HTTP_DONE;
    ruleset *rs = live_rules(q);
    if (!rs) return HTTP_DONE;
    char today[11], by[96];
    http_today(today);
    auth_label(http_who(q), by, sizeof by);
    subs_new in = {.customer_id = cid,
                   .plan = http_str(body, "plan"),
                   .start_date = start,
                   .addons = addons,
                   .naddons = naddons,
                   .account = http_str(body, "account"),
                   .note = http_str(body, "note"),
                   .today = today,
                   .by = by};
    err e;
    rule_error re;
    memset(&re, 0, sizeof re);
    jv *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = subs_create(d, rs, &in, &id, &re, &e);
    if (!rc) rc = subs_get(d, id, SUBS_WITH_CHANGES, http_arena(q), &after, &e);
    char oid[32];
    snprintf(oid, sizeof oid, "%lld", (long long)(rc ? 0 : id));
    audit_event ev = {.action = "subscription.create", .object_type = "subscription", .object_id = oid, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) fail(q, d, &e, &re);
    else http_reply_resource(q, 201, "subscription", after);
    ruleset_unref(rs);
    return HTTP_DONE;
}

int api_subscriptions_get(http_req *q)
{
    int64_t id;
    if (id_param(q, "id", "subscription", &id)) return HTTP_DONE;
    err e;
    jv *o;
    if (subs_get(server_db(http_server(q)), id, SUBS_WITH_CHANGES, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "subscription", o);
    return HTTP_DONE;
}

int api_subscriptions_change(http_req *q)
{
    static const http_field spec[] = {
        {"kind", 's', 1}, {"product", 's', 0}, {"note", 's', 0}, {NULL, 0, 0},
    };
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    int64_t id;
    if (id_param(q, "id", "subscription", &id)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    ruleset *rs = live_rules(q);
    if (!rs) return HTTP_DONE;
    char today[11], by[96];
    http_today(today);
    auth_label(http_who(q), by, sizeof by);
    subs_change_req req = {.kind = http_str(body, "kind"),
                           .product = http_str(body, "product"),
                           .note = http_str(body, "note"),
                           .today = today,
                           .by = by};
    jv_arena *a = http_arena(q);
    err e;
    rule_error re;
    memset(&re, 0, sizeof re);
    subs_change_out out;
    jv *before = NULL, *after = NULL, *change = NULL, *full = NULL;
    char oid[32];
    snprintf(oid, sizeof oid, "%lld", (long long)id);
    int rc = db_begin(d, &e);
    if (!rc) rc = subs_get(d, id, 0, a, &before, &e);
    if (!rc) rc = subs_change(d, rs, id, &req, &out, &re, &e);
    if (!rc) rc = subs_change_get(d, out.change_id, a, &change, &e);
    if (!rc) rc = subs_get(d, id, 0, a, &after, &e);
    if (!rc) rc = subs_get(d, id, SUBS_WITH_CHANGES, a, &full, &e);
    audit_event ev = {.action = "subscription.change",
                      .object_type = "subscription",
                      .object_id = oid,
                      .before = before,
                      .after = after,
                      .detail = change};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc && rc == ERR_CONFLICT && !strcmp(e.tag, "change_refused")) {
        /* a refusal changes nothing, but who asked for what and why the
         * rules said no is worth keeping */
        db_rollback(d);
        jv *detail = jv_obj(a);
        if (detail && !jv_obj_set_str(a, detail, "kind", req.kind) && !jv_obj_set_str(a, detail, "product", req.product) &&
            !jv_obj_set_str(a, detail, "reason", e.msg)) {
            audit_event rev = {.action = "subscription.change_refused", .object_type = "subscription", .object_id = oid,
                               .detail = detail};
            http_audit_now(q, &rev);
        }
    }
    if (rc) {
        fail(q, d, &e, &re);
    } else {
        reply_change(q, 201, change, full);
    }
    ruleset_unref(rs);
    return HTTP_DONE;
}

int api_subscriptions_cancel_change(http_req *q)
{
    int64_t id, cid;
    if (id_param(q, "id", "subscription", &id) || id_param(q, "change", "change", &cid)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    err e;
    jv *before = NULL, *after = NULL, *sub = NULL;
    char oid[32];
    snprintf(oid, sizeof oid, "%lld", (long long)id);
    int rc = db_begin(d, &e);
    if (!rc) rc = subs_get(d, id, 0, a, &sub, &e);
    if (!rc) rc = subs_change_get(d, cid, a, &before, &e);
    if (!rc) rc = subs_cancel_change(d, id, cid, &e);
    if (!rc) rc = subs_change_get(d, cid, a, &after, &e);
    if (!rc) rc = subs_get(d, id, SUBS_WITH_CHANGES, a, &sub, &e);
    audit_event ev = {.action = "subscription.change_cancel",
                      .object_type = "subscription",
                      .object_id = oid,
                      .before = before,
                      .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) fail(q, d, &e, NULL);
    else reply_change(q, 200, after, sub);
    return HTTP_DONE;
}

/* ---------------------------------------------------------------- charges */

int api_charges_list(http_req *q)
{
    int64_t limit, cid;
    const char *cursor;
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    int64_t before = cursor_of(q, cursor);
    if (before < 0) return HTTP_DONE;
    const char *status = http_query(q, "status");
    if (!status) status = "open";
    if (strcmp(status, "open") && strcmp(status, "billed") && strcmp(status, "cancelled") && strcmp(status, "all")) {
        http_reply_errf(q, 400, "invalid_parameter", "status", "status is open (the default), billed, cancelled or all");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    if (customer_param(q, d, &cid)) return HTTP_DONE;
    err e;
    db_stmt *s = db_prepare(d,
                            "SELECT id FROM pending_charges WHERE customer_id = ? AND id < ? AND ("
                            "? = 'all' OR (? = 'open' AND billed_on IS NULL AND cancelled_at IS NULL) OR "
                            "(? = 'billed' AND billed_on IS NOT NULL) OR (? = 'cancelled' AND cancelled_at IS NOT NULL)) "
                            "ORDER BY id DESC LIMIT ?",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_int(s, 1, cid);
    db_bind_int(s, 2, before);
    for (int i = 3; i <= 6; i++) db_bind_text(s, i, status);
    db_bind_int(s, 7, limit + 1);
    http_reply_id_page(q, d, s, limit, "charge", charge_item, NULL);
    return HTTP_DONE;
}

int api_charges_create(http_req *q)
{
    static const http_field spec[] = {
        {"product", 's', 0},  {"description", 's', 0},    {"unit_price", 'M', 0}, {"tax_category", 's', 0},
        {"quantity", 'i', 0}, {"subscription_id", 'i', 0}, {"source", 's', 0},    {NULL, 0, 0},
    };
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    int64_t cid, id;
    if (customer_param(q, d, &cid)) return HTTP_DONE;
    ruleset *rs = live_rules(q);
    if (!rs) return HTTP_DONE;
    char today[11], by[96];
    http_today(today);
    auth_label(http_who(q), by, sizeof by);
    const jv *up = int_of(body, "unit_price"), *qty = int_of(body, "quantity"), *sid = int_of(body, "subscription_id");
    subs_charge_new in = {.customer_id = cid,
                          .subscription_id = sid ? sid->u.i : 0,
                          .product = http_str(body, "product"),
                          .description = http_str(body, "description"),
                          .has_unit_price = up != NULL,
                          .unit_price = up ? up->u.i : 0,
                          .tax_category = http_str(body, "tax_category"),
                          .quantity = qty ? qty->u.i : 1,
                          .source = http_str(body, "source"),
                          .today = today,
                          .by = by};
    if (sid && sid->u.i <= 0) {
        http_reply_errf(q, 400, "invalid_field", "subscription_id", "subscription_id must be a subscription's id");
        ruleset_unref(rs);
        return HTTP_DONE;
    }
    err e;
    jv *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = subs_charge_create(d, rs, &in, &id, &e);
    if (!rc) rc = subs_charge_get(d, id, http_arena(q), &after, &e);
    char oid[32];
    snprintf(oid, sizeof oid, "%lld", (long long)(rc ? 0 : id));
    audit_event ev = {.action = "charge.create", .object_type = "charge", .object_id = oid, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) fail(q, d, &e, NULL);
    else http_reply_resource(q, 201, "charge", after);
    ruleset_unref(rs);
    return HTTP_DONE;
}

int api_charges_cancel(http_req *q)
{
    int64_t id;
    if (id_param(q, "id", "charge", &id)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    err e;
    jv *before = NULL, *after = NULL;
    char oid[32];
    snprintf(oid, sizeof oid, "%lld", (long long)id);
    int rc = db_begin(d, &e);
    if (!rc) rc = subs_charge_get(d, id, a, &before, &e);
    if (!rc) rc = subs_charge_cancel(d, id, &e);
    if (!rc) rc = subs_charge_get(d, id, a, &after, &e);
    audit_event ev = {.action = "charge.cancel", .object_type = "charge", .object_id = oid, .before = before, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) fail(q, d, &e, NULL);
    else http_reply_resource(q, 200, "charge", after);
    return HTTP_DONE;
}
