/* api_messages.c - the outbox over HTTP (docs/API.md, "Messages"): each
 * message's delivery status with its attempts, a dead letter sent again,
 * and the customer's WeChat openid the wechat channel needs.
 *
 * A message names its recipient (the customer's phone, e-mail or openid):
 * replies go through the field filter as resource "message", whose
 * policies follow the customer's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "customers.h"
#include "notify.h"
#include "notify_api.h"
#include "privacy.h"
#include "server.h"

static int customer_of(http_req *q, db *d, const char *code, const char *field, int64_t *id)
{
    err e = {0};
    if (customers_id_by_code(d, code, id, &e)) {
        snprintf(e.field, sizeof e.field, "%s", field);
        http_reply_error(q, 0, &e);
        return -1;
    }
    return 0;
}

static int message_id(http_req *q, int64_t *id)
{
    const char *p = http_param(q, "id");
    char *end;
    long long v = p ? strtoll(p, &end, 10) : 0;
    if (!p || !*p || *end || v <= 0) {
        http_reply_errf(q, 404, "not_found", "id", "no message %s", p ? p : "");
        return -1;
    }
    *id = v;
    return 0;
}

int api_messages_list(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t limit;
    const char *cursor, *code = http_query(q, "customer");
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    notify_filter f = {0, http_query(q, "status"), http_query(q, "channel"), http_query(q, "event")};
    if (code && customer_of(q, d, code, "customer", &f.customer_id)) return HTTP_DONE;
    jv *list;
    char next[32];
    err e = {0};
    if (notify_list(d, server_vault(http_server(q)), &f, cursor, limit, http_arena(q), &list, next, sizeof next, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resources(q, "message", list, next[0] ? next : NULL);
    return HTTP_DONE;
}

int api_messages_get(http_req *q)
{
    int64_t id = 0;
    if (message_id(q, &id)) return HTTP_DONE;
    jv *o;
    err e = {0};
    if (notify_get(server_db(http_server(q)), server_vault(http_server(q)), id, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "message", o);
    return HTTP_DONE;
}

/* What the audit trail keeps of a message: its delivery state, never its
 * recipient or content. */
static jv *state_of(jv_arena *a, const jv *m)
{
    jv *o = jv_obj(a);
    static const char *const keep[] = {"event", "channel", "customer", "status", "attempts", "next_attempt_at", "last_error", NULL};
    for (const char *const *k = keep; o && *k; k++) {
        const jv *v = jv_get(m, *k);
        if (v && jv_obj_set(a, o, *k, jv_copy(a, v))) return NULL;
    }
    return o;
}

int api_messages_retry(http_req *q)
{
    static const http_field spec[] = {{NULL, 0, 0}};
    if (http_check_body(q, http_body(q), spec, HTTP_BODY_OPTIONAL)) return HTTP_DONE;
    int64_t id = 0;
    if (message_id(q, &id)) return HTTP_DONE;
    server *srv = http_server(q);
    db *d = server_db(srv);
    vault *v = server_vault(srv);
    jv_arena *a = http_arena(q);
    err e = {0};
    jv *before = NULL, *after = NULL;
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", (long long)id);
    int rc = db_begin(d, &e);
    if (!rc) rc = notify_get(d, v, id, a, &before, &e);
    if (!rc) rc = notify_retry(d, id, &e);
    if (!rc) rc = notify_get(d, v, id, a, &after, &e);
    if (!rc) {
        audit_event ev = {.action = "message.retry", .object_type = "message", .object_id = oid, .before = state_of(a, before),
                          .after = state_of(a, after)};
        rc = http_audit(q, &ev, &e);
    }
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "message", after);
    return HTTP_DONE;
}

/* {"customer", "openid"}: the openid masked whoever asks (staff set it, a
 * gateway reads it; nobody needs to read it back). */
static void reply_wechat(http_req *q, int status, const char *code, const char *openid)
{
    jv_arena *a = http_arena(q);
    jv *o = jv_obj(a);
    buf m = {0};
    if (openid) privacy_mask_text(MASK_ACCOUNT, openid, strlen(openid), &m);
    if (!o || jv_obj_set_str(a, o, "customer", code) || jv_obj_set(a, o, "openid", openid ? jv_str(a, buf_cstr(&m)) : jv_null(a))) {
        buf_free(&m);
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return;
    }
    buf_free(&m);
    jw w;
    jw_init(&w, 0);
    jw_jv(&w, o);
    http_reply_json(q, status, &w);
}

static int wechat_change(http_req *q, const char *openid)
{
    server *srv = http_server(q);
    db *d = server_db(srv);
    vault *v = server_vault(srv);
    const char *code = http_param(q, "code");
    int64_t cid;
    if (customer_of(q, d, code, "code", &cid)) return HTTP_DONE;
    char by[96];
    auth_label(http_who(q), by, sizeof by);
    jv_arena *a = http_arena(q);
    err e = {0};
    buf old = {0};
    int had = 0;
    int rc = db_begin(d, &e);
    if (!rc) rc = notify_get_wechat(d, v, cid, &old, &had, &e);
    if (old.data) memset(old.data, 0, old.len);
    buf_free(&old);
    if (!rc && !openid && !had) rc = err_field(&e, ERR_NOTFOUND, "not_found", "openid", "customer %s has no WeChat openid", code);
    if (!rc) rc = notify_set_wechat(d, v, cid, openid, by, &e);
    if (!rc) {
        /* the openid itself stays out of the trail: whether there is one */
        jv *before = jv_obj(a), *after = jv_obj(a);
        if (!before || !after || jv_obj_set_bool(a, before, "wechat_openid", had) || jv_obj_set_bool(a, after, "wechat_openid", openid != NULL))
            rc = ERR_NOMEM_RET(&e);
        audit_event ev = {.action = openid ? "customer.wechat_set" : "customer.wechat_removed", .object_type = "customer",
                          .object_id = code, .before = before, .after = after};
        if (!rc) rc = http_audit(q, &ev, &e);
    }
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    reply_wechat(q, 200, code, openid);
    return HTTP_DONE;
}

int api_customers_wechat_set(http_req *q)
{
    static const http_field spec[] = {{"openid", 's', 1}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *openid = http_str(body, "openid");
    size_t n = strlen(openid);
    if (n < 6 || n > 64 || strspn(openid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != n) {
        http_reply_errf(q, 400, "invalid_field", "openid", "an openid is 6 to 64 letters, digits, '_' or '-'");
        return HTTP_DONE;
    }
    return wechat_change(q, openid);
}

int api_customers_wechat_delete(http_req *q) { return wechat_change(q, NULL); }
