/* api_customers.c - the customer file over HTTP: search, create, read,
 * change, status, history, phone verification and the 360-degree view.
 *
 * Every reply carrying a customer goes through http_reply_resource(s)
 * ("customer"), so the caller's role decides what is hidden, masked or clear
 * and clear views are recorded. Every change is one transaction with its
 * audit record (object_type "customer", object_id the code), which is what
 * the history shows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "customers.h"
#include "date.h"
#include "privacy.h"
#include "server.h"
#include "vault.h"

/* ---------------------------------------------------------------- helpers */

/* An error body with one more member beside code, message and field. */
static void reply_error_extra(http_req *q, int status, const err *e, const char *key, const jv *extra)
{
    jw w;
    if (jw_init(&w, 0)) {
        http_reply_error(q, status, e);
        return;
    }
    jw_obj_open(&w);
    jw_key(&w, "error");
    jw_obj_open(&w);
    jw_kv_str(&w, "code", err_tag(e));
    jw_kv_str(&w, "message", e->msg);
    jw_kv_str(&w, "field", e->field);
    if (extra) {
        jw_key(&w, key);
        jw_jv(&w, extra);
    }
    jw_obj_close(&w);
    jw_obj_close(&w);
    http_reply_json(q, status, &w);
}

/* Rolls back what is open and replies the error; a duplicate names the
 * customer who already has the number. */
static void fail(http_req *q, db *d, const err *e)
{
    if (db_in_tx(d)) db_rollback(d);
    const char *at = e->code == ERR_CONFLICT && !strcmp(e->tag, "duplicate") ? strstr(e->msg, "customer ") : NULL;
    if (at) {
        reply_error_extra(q, 409, e, "customer", jv_str(http_arena(q), at + 9));
        return;
    }
    http_reply_error(q, 0, e);
}

static vault *need_vault(http_req *q)
{
    vault *v = server_vault(http_server(q));
    if (!v) http_reply_errf(q, 503, "unavailable", "", "the key file is not open: customer data cannot be read or written");
    return v;
}

/* The customer named by {code}: 400 for a malformed code or a wrong check
 * digit (a typo), 404 when there is none. */
static int customer_param(http_req *q, int64_t *id, char code[CUSTOMER_CODE_MAX])
{
    err e;
    db *d = server_db(http_server(q));
    const char *p = http_param(q, "code");
    if (customers_id_by_code(d, p ? p : "", id, &e) || customers_code_by_id(d, *id, code, &e)) {
        http_reply_error(q, 0, &e);
        return -1;
    }
    return 0;
}




/* ----------------------------------------------------------------- search */

int api_customers_list(http_req *q)
{
    vault *v = need_vault(q);
    if (!v) return HTTP_DONE;
    customer_query cq;
    memset(&cq, 0, sizeof cq);
    if (http_page(q, &cq.limit, &cq.cursor)) return HTTP_DONE;
    cq.q = http_query(q, "q");
    cq.code = http_query(q, "code");
    cq.id_card = http_query(q, "id_card");
    cq.phone = http_query(q, "phone");
    cq.name = http_query(q, "name");
    cq.pppoe = http_query(q, "pppoe");
    cq.serial = http_query(q, "serial");
    cq.province = http_query(q, "province");
    cq.city = http_query(q, "city");
    cq.district = http_query(q, "district");
    cq.street = http_query(q, "street");
    cq.community = http_query(q, "community");
    cq.building = http_query(q, "building");
    cq.unit = http_query(q, "unit");
    cq.room = http_query(q, "room");
    cq.status = http_query(q, "status");
    cq.tag = http_query(q, "tag");
    cq.sort = http_query(q, "sort");
    err e;
    jv *list;
    char next[CUSTOMERS_CURSOR_MAX];
    const char *matched = NULL;
    if (customers_search(server_db(http_server(q)), v, &cq, http_arena(q), &list, next, &matched, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    /* tells a console what a free-text query was taken for */
    http_add_header(q, "X-Search-Matched-By", matched);
    http_reply_resources(q, "customer", list, next[0] ? next : NULL);
    return HTTP_DONE;
}

/* ----------------------------------------------------------- one customer */

int api_customers_create(http_req *q)
{
    vault *v = need_vault(q);
    if (!v) return HTTP_DONE;
    const jv *body = http_body(q);
    if (!body || body->kind != JV_OBJ) {
        http_reply_errf(q, 400, "invalid_body", "", "expected a JSON object");
        return HTTP_DONE;
    }
    server *s = http_server(q);
    db *d = server_db(s);
    err e;
    char by[96];
    auth_label(http_who(q), by, sizeof by);
    int64_t id = 0;
    jv *after = NULL;
    /* customers_create validates every field before it writes anything */
    int rc = db_begin(d, &e);
    if (!rc) rc = customers_create(d, v, server_cfg(s)->customer_prefix, body, by, &id, &e);
    if (!rc) rc = customers_get(d, v, id, http_arena(q), &after, &e);
    const char *code = after ? http_str(after, "code") : NULL;
    audit_event ev = {.action = "customer.create", .object_type = "customer", .object_id = code, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        fail(q, d, &e);
        return HTTP_DONE;
    }
    char loc[96];
    snprintf(loc, sizeof loc, "/api/v1/customers/%s", code);
    http_add_header(q, "Location", loc);
    http_reply_resource(q, 201, "customer", after);
    return HTTP_DONE;
}

int api_customers_get(http_req *q)
{
    vault *v = need_vault(q);
    if (!v) return HTTP_DONE;
    int64_t id;
    char code[CUSTOMER_CODE_MAX];
    if (customer_param(q, &id, code)) return HTTP_DONE;
    err e;
    jv *o;
    if (customers_get(server_db(http_server(q)), v, id, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "customer", o);
    return HTTP_DONE;
}

int api_customers_update(http_req *q)
{
    vault *v = need_vault(q);
    if (!v) return HTTP_DONE;
    const jv *body = http_body(q);
    if (!body || body->kind != JV_OBJ || body->u.obj.n == 0) {
        http_reply_errf(q, 400, "invalid_body", "", "expected a JSON object with the fields to change");
        return HTTP_DONE;
    }
    int64_t id;
    char code[CUSTOMER_CODE_MAX];
    if (customer_param(q, &id, code)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    err e;
    jv *before = NULL, *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = customers_update(d, v, id, body, http_arena(q), &before, &e);
    if (!rc) rc = customers_get(d, v, id, http_arena(q), &after, &e);
    audit_event ev = {.action = "customer.update", .object_type = "customer", .object_id = code, .before = before, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "customer", after);
    return HTTP_DONE;
}

int api_customers_status(http_req *q)
{
    static const http_field spec[] = {{"status", 's', 1}, {"reason", 's', 0}, {NULL, 0, 0}};
    vault *v = need_vault(q);
    if (!v) return HTTP_DONE;
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *status = http_str(body, "status"), *reason = http_str(body, "reason");
    if (!status) {
        http_reply_errf(q, 400, "missing_field", "status", "status is required");
        return HTTP_DONE;
    }
    if (reason && strlen(reason) > 500) {
        http_reply_errf(q, 400, "invalid_field", "reason", "reason has more than 500 bytes");
        return HTTP_DONE;
    }
    int64_t id;
    char code[CUSTOMER_CODE_MAX];
    if (customer_param(q, &id, code)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    err e;
    jv *cur = NULL, *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = customers_get(d, v, id, a, &cur, &e);
    const char *from = cur ? http_str(cur, "status") : "";
    if (!rc) rc = customers_set_status(d, id, status, &e);
    if (!rc) rc = customers_get(d, v, id, a, &after, &e);
    jv *b = jv_obj(a), *af = jv_obj(a), *detail = jv_obj(a);
    if (!rc && (!b || !af || !detail || jv_obj_set_str(a, b, "status", from) || jv_obj_set_str(a, af, "status", status) ||
                jv_obj_set_str(a, detail, "reason", reason)))
        rc = ERR_NOMEM_RET(&e);
    audit_event ev = {.action = "customer.status", .object_type = "customer", .object_id = code, .before = b, .after = af,
                      .detail = detail};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc == ERR_CONFLICT && !strcmp(e.tag, "invalid_transition")) {
        db_rollback(d);
        /* the states it may move to, for a console to offer */
        jv *next = jv_arr(a);
        static const char *const all[] = {"prospect", "active", "overdue", "suspended", "closed", NULL};
        for (const char *const *p = all; next && *p; p++)
            if (customers_transition_ok(from, *p) && jv_arr_push(a, next, jv_str(a, *p))) next = NULL;
        reply_error_extra(q, 409, &e, "allowed", next);
        return HTTP_DONE;
    }
    if (rc) {
        fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "customer", after);
    return HTTP_DONE;
}

/* ---------------------------------------------------------------- history */

/* The customer's audit records, newest first: each change with its old and
 * new values as the audit trail stores them (sensitive ones masked), who
 * and when. Views in clear are left out unless ?views=true. The stored
 * values pass the caller's field policy once more, so a field hidden from
 * a role stays hidden here too. */
int api_customers_history(http_req *q)
{
    int64_t limit;
    const char *cursor;
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    int64_t before = INT64_MAX;
    if (cursor) {
        char *end;
        before = strtoll(cursor, &end, 10);
        if (*end || before <= 0) {
            http_reply_errf(q, 400, "invalid_parameter", "cursor", "cursor is not one this server gave out");
            return HTTP_DONE;
        }
    }
    const char *views = http_query(q, "views");
    if (views && strcmp(views, "true") && strcmp(views, "false")) {
        http_reply_errf(q, 400, "invalid_parameter", "views", "views is true or false");
        return HTTP_DONE;
    }
    int64_t id;
    char code[CUSTOMER_CODE_MAX];
    if (customer_param(q, &id, code)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    const char *role = http_who(q)->role[0] ? http_who(q)->role : "anonymous";
    err e;
    db_stmt *s = db_prepare(d,
                            "SELECT id, at, actor, role, source, request_id, action, diff FROM audit_log "
                            "WHERE object_type = 'customer' AND object_id = ? AND id < ? AND (? = 1 OR action <> 'field.view') "
                            "ORDER BY id DESC LIMIT ?",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_text(s, 1, code);
    db_bind_int(s, 2, before);
    db_bind_int(s, 3, views && !strcmp(views, "true"));
    db_bind_int(s, 4, limit + 1);
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_key(&w, "data");
    jw_arr_open(&w);
    int n = 0, rc, more = 0;
    int64_t last = 0;
    while ((rc = db_step(d, s, &e)) == DB_ROW) {
        if (n == limit) {
            more = 1;
            break;
        }
        last = db_col_int(s, 0);
        jw_obj_open(&w);
        jw_kv_int(&w, "id", last);
        static const char *const cols[] = {NULL, "at", "actor", "role", "source", "request_id", "action"};
        for (int c = 1; c <= 6; c++) jw_kv_str(&w, cols[c], db_col_is_null(s, c) ? NULL : db_col_text(s, c));
        jv *diff = NULL;
        err pe;
        if (!db_col_is_null(s, 7)) json_parse(db_col_text(s, 7), db_col_bytes(s, 7), NULL, a, &diff, &pe);
        static const char *const parts[] = {"before", "after", "detail"};
        for (int k = 0; k < 3; k++) {
            jv *part = diff ? (jv *)jv_get(diff, parts[k]) : NULL;
            jw_key(&w, parts[k]);
            if (!part) {
                jw_null(&w);
                continue;
            }
            if (privacy_filter(d, a, role, "customer", part, NULL, &pe)) jw_null(&w);
            else jw_jv(&w, part);
        }
        jw_obj_close(&w);
        n++;
    }
    db_done(s);
    jw_arr_close(&w);
    char next[32];
    snprintf(next, sizeof next, "%lld", (long long)last);
    jw_kv_str(&w, "next_cursor", more ? next : NULL);
    jw_obj_close(&w);
    if (rc < 0) {
        jw_free(&w);
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

/* ----------------------------------------------------- phone verification */

int api_customers_verify_send(http_req *q)
{
    static const http_field spec[] = {{NULL, 0, 0}};
    vault *v = need_vault(q);
    if (!v) return HTTP_DONE;
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, HTTP_BODY_OPTIONAL)) return HTTP_DONE;
    int64_t id;
    char code[CUSTOMER_CODE_MAX];
    if (customer_param(q, &id, code)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    err e;
    verify_sent vs;
    int rc = db_begin(d, &e);
    if (!rc) rc = customers_verify_send(d, v, id, db_now_ms(), &vs, NULL, &e);
    jv *detail = jv_obj(a);
    if (!rc && (!detail || jv_obj_set_str(a, detail, "channel", "log") || jv_obj_set_str(a, detail, "expires_at", vs.expires_at)))
        rc = ERR_NOMEM_RET(&e);
    /* the code itself is never recorded */
    audit_event ev = {.action = "customer.phone_verification_sent", .object_type = "customer", .object_id = code,
                      .detail = detail};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc == ERR_LIMIT) {
        db_rollback(d);
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)vs.retry_after_s);
        http_add_header(q, "Retry-After", secs);
        http_reply_error(q, 429, &e);
        return HTTP_DONE;
    }
    if (rc) {
        fail(q, d, &e);
        return HTTP_DONE;
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_bool(&w, "sent", 1);
    jw_kv_str(&w, "channel", "log");
    jw_kv_str(&w, "expires_at", vs.expires_at);
    jw_kv_int(&w, "resend_after_s", CUSTOMERS_VCODE_RESEND_MS / 1000);
    jw_obj_close(&w);
    http_reply_json(q, 202, &w);
    return HTTP_DONE;
}

int api_customers_verify_confirm(http_req *q)
{
    static const http_field spec[] = {{"code", 's', 1}, {NULL, 0, 0}};
    vault *v = need_vault(q);
    if (!v) return HTTP_DONE;
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *vcode = http_str(body, "code");
    if (!vcode) {
        http_reply_errf(q, 400, "missing_field", "code", "code is required");
        return HTTP_DONE;
    }
    int64_t id;
    char code[CUSTOMER_CODE_MAX];
    if (customer_param(q, &id, code)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    err e;
    verify_result res = VERIFY_NONE;
    int left = 0;
    int rc = db_begin(d, &e);
    if (!rc) rc = customers_verify_confirm(d, v, id, vcode, db_now_ms(), &res, &left, &e);
    jv *after = NULL;
    if (!rc && res == VERIFY_OK) {
        jv *cust, *b = jv_obj(a);
        rc = customers_get(d, v, id, a, &cust, &e);
        if (!rc && (!b || !(after = jv_obj(a)) || jv_obj_set_bool(a, b, "phone_verified", 0) ||
                    jv_obj_set_bool(a, after, "phone_verified", 1) ||
                    jv_obj_set(a, after, "phone_verified_at", jv_copy(a, jv_get(cust, "phone_verified_at")))))
            rc = ERR_NOMEM_RET(&e);
        audit_event ev = {.action = "customer.phone_verified", .object_type = "customer", .object_id = code, .before = b,
                          .after = after};
        if (!rc) rc = http_audit(q, &ev, &e);
    } else if (!rc && res == VERIFY_WRONG) {
        /* a wrong guess is counted even though the request fails */
        jv *detail = jv_obj(a);
        if (!detail || jv_obj_set_int(a, detail, "attempts_left", left)) rc = ERR_NOMEM_RET(&e);
        audit_event ev = {.action = "customer.phone_verification_failed", .object_type = "customer", .object_id = code,
                          .detail = detail};
        if (!rc) rc = http_audit(q, &ev, &e);
    }
    if (!rc && (res == VERIFY_OK || res == VERIFY_WRONG)) rc = db_commit(d, &e);
    else if (db_in_tx(d)) db_rollback(d);
    if (rc) {
        fail(q, d, &e);
        return HTTP_DONE;
    }
    switch (res) {
    case VERIFY_OK: {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_bool(&w, "verified", 1);
        jw_key(&w, "phone_verified_at");
        jw_jv(&w, jv_get(after, "phone_verified_at"));
        jw_obj_close(&w);
        http_reply_json(q, 200, &w);
        break;
    }
    case VERIFY_WRONG:
        /* well-formed but not the code sent: 422, as the PPPoE reset answers */
        err_field(&e, ERR_INVALID, "invalid_code", "code", "wrong code: %d attempt%s left", left, left == 1 ? "" : "s");
        reply_error_extra(q, 422, &e, "attempts_left", jv_int(a, left));
        break;
    case VERIFY_EXPIRED:
        http_reply_errf(q, 410, "expired", "code", "the code has expired or was already used: send a new one");
        break;
    case VERIFY_TOO_MANY:
        http_reply_errf(q, 410, "too_many_attempts", "code", "too many wrong attempts: send a new code");
        break;
    case VERIFY_NONE:
        http_reply_errf(q, 404, "no_code", "code", "no code has been sent to this customer");
        break;
    }
    return HTTP_DONE;
}

/* --------------------------------------------------------------- overview */

/* One object: the profile's fields at the top (filtered per role like any
 * customer), the rest under keys that carry no personal data. */
int api_customers_overview(http_req *q)
{
    vault *v = need_vault(q);
    if (!v) return HTTP_DONE;
    int64_t id;
    char code[CUSTOMER_CODE_MAX];
    if (customer_param(q, &id, code)) return HTTP_DONE;
    char day[11];
    http_today(day);
    err e;
    jv *o;
    if (customers_overview(server_db(http_server(q)), v, id, day, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "customer", o);
    return HTTP_DONE;
}
