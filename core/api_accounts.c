/* api_accounts.c - PPPoE service accounts, devices with their installations,
 * and device deposits (docs/API.md, "Service accounts", "Devices" and "Deposits").
 *
 * Every change validates its input first, then runs in one transaction with
 * its audit record; on any error it rolls back and nothing is written. A
 * password is shown once, in "new_password" of the response that made it,
 * never in the sensitive "password" field and never again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounts.h"
#include "api.h"
#include "customers.h"
#include "date.h"
#include "devices.h"
#include "privacy.h"
#include "rules.h"
#include "server.h"
#include "vault.h"

/* ---------------------------------------------------------------- helpers */





/* A date field: absent means today; given, a real date not after today
 * (work is recorded when done, not planned here). */
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

static void caller(http_req *q, char *by, size_t n)
{
    auth_label(http_who(q), by, n);
}

/* A customer named in the path or the body; replies on error. */
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

/* ?cursor= of a list ordered by descending id: the last id seen. */
static int id_cursor(http_req *q, const char *cursor, int64_t *before)
{
    *before = 0;
    if (!cursor) return 0;
    char *end;
    long long v = strtoll(cursor, &end, 10);
    if (*end || end == cursor || v <= 0) {
        http_reply_errf(q, 400, "invalid_parameter", "cursor", "cursor is not one this server gave out");
        return -1;
    }
    *before = v;
    return 0;
}

static int status_filter(http_req *q, const char *value, const char *const *allowed)
{
    if (!value) return 0;
    for (const char *const *a = allowed; *a; a++)
        if (!strcmp(*a, value)) return 0;
    http_reply_errf(q, 400, "invalid_parameter", "status", "unknown status '%s'", value);
    return -1;
}

static void next_cursor(char out[32], int64_t last_id)
{
    snprintf(out, 32, "%lld", (long long)last_id);
}

/* ------------------------------------------------ install address privacy */

/* An install address is the customer's address: the caller sees it at the
 * level its role has for customer.address (hidden, masked or clear), and a
 * view in clear is recorded like one of the customer's own record. */
typedef struct addr_view {
    visibility level;
    buf clear_codes;    /* customers whose address was shown in clear */
} addr_view;

static void obj_drop(jv *o, const char *key)
{
    for (size_t i = 0; o && o->kind == JV_OBJ && i < o->u.obj.n; i++)
        if (!strcmp(o->u.obj.m[i].key, key)) {
            memmove(&o->u.obj.m[i], &o->u.obj.m[i + 1], (o->u.obj.n - i - 1) * sizeof *o->u.obj.m);
            o->u.obj.n--;
            return;
        }
}

static int mask_installation(jv_arena *a, jv *inst, addr_view *av)
{
    if (!inst || inst->kind != JV_OBJ) return 0;
    for (size_t i = 0; i < inst->u.obj.n; i++) {
        jv_member *m = &inst->u.obj.m[i];
        if (strcmp(m->key, "address") || m->val->kind != JV_STR) continue;
        if (av->level == VIS_HIDDEN) {
            obj_drop(inst, "address");
        } else if (av->level == VIS_MASKED) {
            buf out = {0};
            privacy_mask_text(MASK_ADDRESS, m->val->u.str.s, m->val->u.str.len, &out);
            jv *s = jv_strn(a, buf_cstr(&out), out.len);
            buf_free(&out);
            if (!s) return ERR_NOMEM;
            m->val = s;
        } else if (m->val->u.str.len) {
            const jv *c = jv_get(inst, "customer");
            if (c && c->kind == JV_STR && !strstr(buf_cstr(&av->clear_codes), c->u.str.s)) {
                if (av->clear_codes.len) buf_putc(&av->clear_codes, ',');
                buf_puts(&av->clear_codes, c->u.str.s);
            }
        }
        return 0;
    }
    return 0;
}

static int mask_device(jv_arena *a, jv *dev, addr_view *av)
{
    if (!dev || dev->kind != JV_OBJ) return 0;
    int rc = mask_installation(a, (jv *)jv_get(dev, "installation"), av);
    const jv *hist = jv_get(dev, "history");
    for (size_t i = 0; !rc && hist && hist->kind == JV_ARR && i < hist->u.arr.n; i++)
        rc = mask_installation(a, hist->u.arr.items[i], av);
    return rc;
}

static void view_begin(http_req *q, addr_view *av)
{
    const principal *p = http_who(q);
    memset(av, 0, sizeof *av);
    av->level = privacy_level(server_db(http_server(q)), p->role[0] ? p->role : "anonymous", "customer", "address");
}

static void view_end(http_req *q, addr_view *av)
{
    if (av->clear_codes.len) {
        jv_arena *a = http_arena(q);
        jv *detail = jv_obj(a);
        if (detail && !jv_obj_set_str(a, detail, "fields", "address") &&
            !jv_obj_set_str(a, detail, "ids", buf_cstr(&av->clear_codes)) && !jv_obj_set_str(a, detail, "via", "device")) {
            audit_event ev = {.action = "field.view", .object_type = "customer",
                              .object_id = av->clear_codes.len < 200 ? buf_cstr(&av->clear_codes) : NULL,
                              .detail = detail};
            http_audit_now(q, &ev);
        }
    }
    buf_free(&av->clear_codes);
}

/* A device as an API object; for the audit trail (masked addresses) when
 * `for_audit`. Replies 500 and returns NULL on failure. */
static jv *device_obj(http_req *q, db *d, int64_t device_id, int full, int for_audit, err *e)
{
    device dv;
    jv *o = NULL;
    int rc = devices_get(d, NULL, device_id, &dv, e);
    if (!rc) rc = devices_to_jv(d, &dv, full, http_arena(q), &o, e);
    if (!rc && for_audit) {
        addr_view av = {.level = VIS_MASKED};
        rc = mask_device(http_arena(q), o, &av);
        buf_free(&av.clear_codes);
        if (rc) ERR_NOMEM_RET(e);
    }
    return rc ? NULL : o;
}

/* Sends a device (or an object holding devices under `keys`) with the
 * caller's view of install addresses. */
static void reply_devices(http_req *q, int status, jv *obj, const char *const *keys)
{
    addr_view av;
    view_begin(q, &av);
    int rc = 0;
    if (!keys) rc = mask_device(http_arena(q), obj, &av);
    for (const char *const *k = keys; !rc && k && *k; k++) rc = mask_device(http_arena(q), (jv *)jv_get(obj, *k), &av);
    if (rc) {
        buf_free(&av.clear_codes);
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return;
    }
    view_end(q, &av);
    http_reply_resource(q, status, "device", obj);
}

/* ------------------------------------------------------------- accounts */

static const char *const account_states[] = {"active", "throttled", "suspended", "closed", NULL};

static int account_item(void *ud, db *d, jv_arena *a, int64_t id, jv **out, err *e)
{
    (void)ud;
    account acc;
    int rc = accounts_get(d, NULL, id, &acc, e);
    if (!rc) rc = accounts_to_jv(d, &acc, a, out, e);
    return rc;
}

int api_accounts_list(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t customer_id, limit, before;
    const char *cursor, *status = http_query(q, "status");
    if (customer_of(q, d, http_param(q, "code"), "code", &customer_id) || http_page(q, &limit, &cursor) ||
        id_cursor(q, cursor, &before) || status_filter(q, status, account_states))
        return HTTP_DONE;
    err e = {0};
    db_stmt *s = db_prepare(d,
                            "SELECT id FROM service_accounts WHERE customer_id = ? AND (? = 0 OR id < ?) "
                            "AND (? IS NULL OR status = ?) ORDER BY id DESC LIMIT ?",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_int(s, 1, customer_id);
    db_bind_int(s, 2, before);
    db_bind_int(s, 3, before);
    db_bind_text(s, 4, status);
    db_bind_text(s, 5, status);
    db_bind_int(s, 6, limit + 1);
    http_reply_id_page(q, d, s, limit, "service_account", account_item, NULL);
    return HTTP_DONE;
}

/* The password to set: the one given (checked) or a generated one (put in
 * `generated`). Replies on error. */
static int choose_password(http_req *q, const char *given, const char *username, char generated[ACCOUNT_PASSWORD_BUF],
                           const char **pw)
{
    err e = {0};
    generated[0] = '\0';
    if (given) {
        if (accounts_password_check(given, username, &e)) {
            http_reply_error(q, 0, &e);
            return -1;
        }
        *pw = given;
        return 0;
    }
    if (accounts_password_generate(generated, &e)) {
        http_reply_error(q, 500, &e);
        return -1;
    }
    *pw = generated;
    return 0;
}

/* Account object + "new_password", through the service_account view. */
static void reply_with_password(http_req *q, int status, jv *obj, const char *password)
{
    /* "new_password" is not the sensitive "password" field on purpose:
     * this response is the one place the caller ever sees it */
    if (jv_obj_set_str(http_arena(q), obj, "new_password", password)) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return;
    }
    http_reply_resource(q, status, "service_account", obj);
}

int api_accounts_create(http_req *q)
{
    static const http_field spec[] = {{"username", 's', 0}, {"password", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, HTTP_BODY_OPTIONAL)) return HTTP_DONE;
    server *srv = http_server(q);
    db *d = server_db(srv);
    vault *v = server_vault(srv);
    jv_arena *a = http_arena(q);
    err e = {0};
    int64_t customer_id;
    if (customer_of(q, d, http_param(q, "code"), "code", &customer_id)) return HTTP_DONE;
    int64_t closed = 0;
    if (db_get_int(d, &e, &closed, "SELECT count(*) FROM customers WHERE id = ? AND status = 'closed'", "i", customer_id)) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    if (closed) {
        http_reply_errf(q, 409, "customer_closed", "code", "the customer is closed: no new PPPoE account");
        return HTTP_DONE;
    }
    /* the name: given and checked, or made by the rule */
    char username[ACCOUNT_USERNAME_BUF];
    const char *given = http_str(body, "username");
    if (given) {
        if (accounts_username_check(given, &e)) {
            http_reply_error(q, 0, &e);
            return HTTP_DONE;
        }
        account other;
        if (accounts_get(d, given, 0, &other, &e) == 0) {
            http_reply_errf(q, 409, "username_taken", "username", "the PPPoE user name '%s' is taken", given);
            return HTTP_DONE;
        }
        snprintf(username, sizeof username, "%s", given);
    } else {
        ruleset *rs = rules_live();
        if (!rs) {
            http_reply_errf(q, 503, "no_rules", "", "no rule set is loaded: give a username");
            return HTTP_DONE;
        }
        rule_error re;
        int rc = accounts_username_from_rule(d, rs, customer_id, a, username, &re, &e);
        ruleset_unref(rs);
        if (rc == ERR_RULE) {
            http_reply_rule_error(q, 422, &e, &re);
            return HTTP_DONE;
        }
        if (rc) {
            http_reply_error(q, 0, &e);
            return HTTP_DONE;
        }
    }
    char generated[ACCOUNT_PASSWORD_BUF];
    const char *pw;
    if (choose_password(q, http_str(body, "password"), username, generated, &pw)) return HTTP_DONE;

    int64_t id;
    account acc;
    jv *obj = NULL, *detail = jv_obj(a);
    int rc = detail ? 0 : ERR_NOMEM_RET(&e);
    if (!rc && (jv_obj_set_str(a, detail, "username_from", given ? "request" : "rule") ||
                jv_obj_set_str(a, detail, "password_from", generated[0] ? "generated" : "request")))
        rc = ERR_NOMEM_RET(&e);
    if (!rc) rc = db_begin(d, &e);
    if (!rc) rc = accounts_create(d, v, customer_id, username, pw, &id, &e);
    if (!rc) rc = accounts_get(d, NULL, id, &acc, &e);
    if (!rc) rc = accounts_to_jv(d, &acc, a, &obj, &e);
    audit_event ev = {.action = "account.create", .object_type = "service_account", .object_id = username,
                      .after = obj, .detail = detail};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        explicit_bzero(generated, sizeof generated);
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    reply_with_password(q, 201, obj, pw);
    explicit_bzero(generated, sizeof generated);
    return HTTP_DONE;
}

static int account_of(http_req *q, db *d, account *acc)
{
    err e = {0};
    if (accounts_get(d, http_param(q, "username"), 0, acc, &e)) {
        http_reply_error(q, 0, &e);
        return -1;
    }
    return 0;
}

/* Sets a new password in the open transaction and audits it (never with
 * the password: only the change time moves in the diff). */
static int set_password(http_req *q, db *d, const account *acc, const char *pw, const char *method, int generated,
                        jv **after, err *e)
{
    jv_arena *a = http_arena(q);
    jv *before = NULL, *detail = jv_obj(a);
    account now;
    int rc = detail ? 0 : ERR_NOMEM_RET(e);
    if (!rc && (jv_obj_set_str(a, detail, "method", method) ||
                jv_obj_set_str(a, detail, "password_from", generated ? "generated" : "request")))
        rc = ERR_NOMEM_RET(e);
    if (!rc) rc = accounts_to_jv(d, acc, a, &before, e);
    if (!rc) rc = accounts_set_password(d, server_vault(http_server(q)), acc->id, pw, e);
    if (!rc) rc = accounts_get(d, NULL, acc->id, &now, e);
    if (!rc) rc = accounts_to_jv(d, &now, a, after, e);
    audit_event ev = {.action = "account.password_reset", .object_type = "service_account", .object_id = acc->username,
                      .before = before, .after = *after, .detail = detail};
    if (!rc) rc = http_audit(q, &ev, e);
    return rc;
}

int api_accounts_reset(http_req *q)
{
    static const http_field spec[] = {{"password", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, HTTP_BODY_OPTIONAL)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    account acc;
    if (account_of(q, d, &acc)) return HTTP_DONE;
    if (!strcmp(acc.status, "closed")) {
        http_reply_errf(q, 409, "account_closed", "username", "PPPoE account '%s' is closed", acc.username);
        return HTTP_DONE;
    }
    char generated[ACCOUNT_PASSWORD_BUF];
    const char *pw;
    if (choose_password(q, http_str(body, "password"), acc.username, generated, &pw)) return HTTP_DONE;
    err e = {0};
    jv *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = set_password(q, d, &acc, pw, "staff", generated[0] != '\0', &after, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) http_fail(q, d, &e);
    else reply_with_password(q, 200, after, pw);
    explicit_bzero(generated, sizeof generated);
    return HTTP_DONE;
}

int api_accounts_reset_code(http_req *q)
{
    static const http_field spec[] = {{NULL, 0, 0}};
    if (http_check_body(q, http_body(q), spec, HTTP_BODY_OPTIONAL)) return HTTP_DONE;
    server *srv = http_server(q);
    db *d = server_db(srv);
    account acc;
    if (account_of(q, d, &acc)) return HTTP_DONE;
    jv_arena *a = http_arena(q);
    err e = {0};
    int64_t now = db_now_ms(), expires = 0, retry = 0;
    char masked[32] = "", exp_text[25], resend[25];
    int rc = db_begin(d, &e);
    if (!rc) rc = accounts_reset_code_send(d, server_vault(srv), &acc, now, &expires, &retry, masked, &e);
    if (rc == ERR_LIMIT) {
        db_rollback(d);
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)(retry > 0 ? retry : 1));
        http_add_header(q, "Retry-After", secs);
        http_reply_error(q, 429, &e);
        return HTTP_DONE;
    }
    db_format_time(expires, exp_text);
    db_format_time(now + ACCOUNT_CODE_RESEND_MS, resend);
    jv *detail = jv_obj(a), *obj = jv_obj(a);
    if (!rc && (!detail || !obj || jv_obj_set_str(a, detail, "expires_at", exp_text) ||
                jv_obj_set_str(a, detail, "sent_to", masked) || jv_obj_set_str(a, obj, "username", acc.username) ||
                jv_obj_set_str(a, obj, "sent_to", masked) || jv_obj_set_str(a, obj, "expires_at", exp_text) ||
                jv_obj_set_str(a, obj, "resend_after", resend)))
        rc = ERR_NOMEM_RET(&e);
    audit_event ev = {.action = "account.reset_code_sent", .object_type = "service_account", .object_id = acc.username,
                      .detail = detail};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "service_account", obj);
    return HTTP_DONE;
}

/* 422 invalid_code with the attempts left inside the error object. */
static void reply_attempts_left(http_req *q, const err *e, int left)
{
    jw w;
    if (jw_init(&w, 0)) {
        http_reply_error(q, 422, e);
        return;
    }
    jw_obj_open(&w);
    jw_key(&w, "error");
    jw_obj_open(&w);
    jw_kv_str(&w, "code", err_tag(e));
    jw_kv_str(&w, "message", e->msg);
    jw_kv_str(&w, "field", e->field);
    jw_kv_int(&w, "attempts_left", left);
    jw_obj_close(&w);
    jw_obj_close(&w);
    http_reply_json(q, 422, &w);
}

int api_accounts_reset_with_code(http_req *q)
{
    static const http_field spec[] = {{"code", 's', 0}, {"password", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *code = http_str(body, "code");
    if (!code) {
        http_reply_errf(q, 400, "missing_field", "code", "code is required");
        return HTTP_DONE;
    }
    if (strlen(code) != 6 || strspn(code, "0123456789") != 6) {
        http_reply_errf(q, 400, "invalid_field", "code", "the code is the 6 digits the customer received");
        return HTTP_DONE;
    }
    server *srv = http_server(q);
    db *d = server_db(srv);
    account acc;
    if (account_of(q, d, &acc)) return HTTP_DONE;
    char generated[ACCOUNT_PASSWORD_BUF];
    const char *pw;
    if (choose_password(q, http_str(body, "password"), acc.username, generated, &pw)) return HTTP_DONE;
    jv_arena *a = http_arena(q);
    err e = {0};
    int left = 0;
    jv *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = accounts_reset_code_check(d, server_vault(srv), &acc, code, db_now_ms(), &left, &e);
    if (rc == ERR_INVALID && !strcmp(e.tag, "wrong_code")) {
        /* the failed attempt is kept: that is what limits guessing */
        err ae;
        jv *detail = jv_obj(a);
        int arc = detail && !jv_obj_set_int(a, detail, "attempts_left", left) ? 0 : ERR_NOMEM_RET(&ae);
        audit_event ev = {.action = "account.reset_code_failed", .object_type = "service_account",
                          .object_id = acc.username, .detail = detail};
        if (!arc) arc = http_audit(q, &ev, &ae);
        if (!arc) arc = db_commit(d, &ae);
        explicit_bzero(generated, sizeof generated);
        if (arc) {
            http_fail(q, d, &ae);
        } else {
            /* named and shaped as the phone verification's wrong code */
            char msg[sizeof e.msg];
            snprintf(msg, sizeof msg, "%s", e.msg);
            err_field(&e, ERR_INVALID, "invalid_code", "code", "%s", msg);
            reply_attempts_left(q, &e, left);
        }
        return HTTP_DONE;
    }
    if (!rc) rc = set_password(q, d, &acc, pw, "sms_code", generated[0] != '\0', &after, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) http_fail(q, d, &e);
    else reply_with_password(q, 200, after, pw);
    explicit_bzero(generated, sizeof generated);
    return HTTP_DONE;
}

/* -------------------------------------------------------------- devices */

static const char *const device_states[] = {"stock", "installed", "returned", "lost", "retired", NULL};

int api_devices_list(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t limit, before, customer_id = 0;
    const char *cursor, *status = http_query(q, "status"), *kind = http_query(q, "kind");
    const char *serial_q = http_query(q, "serial"), *mac_q = http_query(q, "mac"), *cust = http_query(q, "customer");
    if (http_page(q, &limit, &cursor) || id_cursor(q, cursor, &before) || status_filter(q, status, device_states))
        return HTTP_DONE;
    if (kind && !devices_kind_valid(kind)) {
        http_reply_errf(q, 400, "invalid_parameter", "kind", "a device kind is onu, stb or router");
        return HTTP_DONE;
    }
    if (cust && customer_of(q, d, cust, "customer", &customer_id)) return HTTP_DONE;
    err e = {0};
    char mac[DEVICE_MAC_BUF] = "", serial[DEVICE_SERIAL_BUF] = "";
    if (mac_q && devices_normalize_mac(mac_q, mac, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    int none = 0;
    if (serial_q) {
        /* the same spellings a lookup accepts: "zteg 1234 5678", the hex form */
        device dv;
        if (devices_get(d, serial_q, 0, &dv, &e) == 0) snprintf(serial, sizeof serial, "%s", dv.serial);
        else none = 1;
    }
    int64_t ids[501];
    int n = 0, rc = DB_DONE;
    if (!none) {
        db_stmt *s = db_prepare(d,
                                "SELECT id FROM devices WHERE (? = 0 OR id < ?) AND (? IS NULL OR status = ?) "
                                "AND (? IS NULL OR kind = ?) AND (? IS NULL OR serial = ?) AND (? IS NULL OR mac = ?) "
                                "AND (? = 0 OR id IN (SELECT device_id FROM installations WHERE customer_id = ? "
                                "AND removed_on IS NULL)) ORDER BY id DESC LIMIT ?",
                                &e);
        if (!s) {
            http_reply_error(q, 500, &e);
            return HTTP_DONE;
        }
        const char *sv = serial[0] ? serial : NULL, *mv = mac[0] ? mac : NULL;
        db_bind_int(s, 1, before);
        db_bind_int(s, 2, before);
        db_bind_text(s, 3, status);
        db_bind_text(s, 4, status);
        db_bind_text(s, 5, kind);
        db_bind_text(s, 6, kind);
        db_bind_text(s, 7, sv);
        db_bind_text(s, 8, sv);
        db_bind_text(s, 9, mv);
        db_bind_text(s, 10, mv);
        db_bind_int(s, 11, customer_id);
        db_bind_int(s, 12, customer_id);
        db_bind_int(s, 13, limit + 1);
        while ((rc = db_step(d, s, &e)) == DB_ROW && n <= limit) ids[n++] = db_col_int(s, 0);
        db_done(s);
    }
    if (rc < 0) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    int more = n > limit;
    if (more) n = (int)limit;
    jv_arena *a = http_arena(q);
    jv *list = jv_arr_sized(a, (size_t)n);
    if (!list) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    addr_view av;
    view_begin(q, &av);
    for (int i = 0; i < n; i++) {
        jv *o = device_obj(q, d, ids[i], 0, 0, &e);
        if (!o || mask_device(a, o, &av) || jv_arr_push(a, list, o)) {
            buf_free(&av.clear_codes);
            http_reply_error(q, 500, &e);
            return HTTP_DONE;
        }
    }
    view_end(q, &av);
    char next[32];
    next_cursor(next, n ? ids[n - 1] : 0);
    http_reply_resources(q, "device", list, more ? next : NULL);
    return HTTP_DONE;
}

int api_devices_create(http_req *q)
{
    static const http_field spec[] = {{"kind", 's', 0}, {"serial", 's', 0}, {"mac", 's', 0}, {"model", 's', 0}, {"vendor", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *kind = http_str(body, "kind"), *serial = http_str(body, "serial");
    if (!kind || !serial) {
        http_reply_errf(q, 400, "missing_field", !kind ? "kind" : "serial", "kind and serial are required");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    err e = {0};
    /* the format first, before anything is opened */
    char norm[DEVICE_SERIAL_BUF], vendor[DEVICE_VENDOR_BUF], mac[DEVICE_MAC_BUF];
    const char *mac_in = http_str(body, "mac");
    if (devices_normalize_serial(kind, serial, norm, vendor, &e) || (mac_in && devices_normalize_mac(mac_in, mac, &e))) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    int64_t id;
    jv *obj = NULL, *audit_obj = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = devices_create(d, kind, serial, mac_in, http_str(body, "model"), http_str(body, "vendor"), &id, &e);
    if (!rc && !(obj = device_obj(q, d, id, 1, 0, &e))) rc = e.code ? e.code : ERR_INTERNAL;
    if (!rc && !(audit_obj = device_obj(q, d, id, 0, 1, &e))) rc = e.code ? e.code : ERR_INTERNAL;
    audit_event ev = {.action = "device.create", .object_type = "device", .object_id = norm, .after = audit_obj};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    reply_devices(q, 201, obj, NULL);
    return HTTP_DONE;
}

static int device_of(http_req *q, db *d, const char *serial, const char *field, device *dv)
{
    err e = {0};
    if (!serial) {
        http_reply_errf(q, 400, "missing_field", field, "%s is required", field);
        return -1;
    }
    if (devices_get(d, serial, 0, dv, &e)) {
        snprintf(e.field, sizeof e.field, "%s", field);
        http_reply_error(q, 0, &e);
        return -1;
    }
    return 0;
}

int api_devices_get(http_req *q)
{
    db *d = server_db(http_server(q));
    device dv;
    if (device_of(q, d, http_param(q, "serial"), "serial", &dv)) return HTTP_DONE;
    err e = {0};
    jv *o = device_obj(q, d, dv.id, 1, 0, &e);
    if (!o) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    reply_devices(q, 200, o, NULL);
    return HTTP_DONE;
}

/* The engineer: as given, else whoever is calling (a technician recording
 * their own work). */
static const char *engineer_of(http_req *q, const jv *body)
{
    const char *eng = http_str(body, "engineer");
    return eng ? eng : http_who(q)->name;
}

/* Audits a device change: before/after with masked addresses. */
static int audit_device(http_req *q, db *d, const char *action, const device *dv, const jv *before, jv *detail, err *e)
{
    jv *after = device_obj(q, d, dv->id, 0, 1, e);
    if (!after) return e->code ? e->code : ERR_INTERNAL;
    audit_event ev = {.action = action, .object_type = "device", .object_id = dv->serial, .before = before, .after = after,
                      .detail = detail};
    return http_audit(q, &ev, e);
}

int api_devices_install(http_req *q)
{
    static const http_field spec[] = {{"customer", 's', 0}, {"account", 's', 0}, {"installed_on", 's', 0},
                                      {"engineer", 's', 0}, {"address", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    device dv;
    int64_t customer_id;
    char on[11];
    if (device_of(q, d, http_param(q, "serial"), "serial", &dv) ||
        customer_of(q, d, http_str(body, "customer"), "customer", &customer_id) ||
        date_field(q, body, "installed_on", on))
        return HTTP_DONE;
    err e = {0};
    install_req r = {.customer_id = customer_id, .installed_on = on, .engineer = engineer_of(q, body),
                     .address = http_str(body, "address")};
    const char *username = http_str(body, "account");
    if (username) {
        account acc;
        if (accounts_get(d, username, 0, &acc, &e)) {
            snprintf(e.field, sizeof e.field, "account");
            http_reply_error(q, 0, &e);
            return HTTP_DONE;
        }
        r.account_id = acc.id;
    }
    int64_t inst = 0;
    jv *before = device_obj(q, d, dv.id, 0, 1, &e), *detail = jv_obj(a), *obj = NULL;
    int rc = before && detail ? 0 : (e.code ? e.code : ERR_NOMEM_RET(&e));
    if (!rc) rc = db_begin(d, &e);
    if (!rc) rc = devices_install(d, dv.id, &r, &inst, &e);
    if (!rc && (jv_obj_set_int(a, detail, "installation", inst) ||
                jv_obj_set_str(a, detail, "customer", http_str(body, "customer"))))
        rc = ERR_NOMEM_RET(&e);
    if (!rc) rc = audit_device(q, d, "device.install", &dv, before, detail, &e);
    if (!rc && !(obj = device_obj(q, d, dv.id, 1, 0, &e))) rc = e.code ? e.code : ERR_INTERNAL;
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    reply_devices(q, 201, obj, NULL);
    return HTTP_DONE;
}

int api_devices_remove(http_req *q)
{
    static const http_field spec[] = {{"reason", 's', 0}, {"removed_on", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    device dv;
    char on[11];
    if (device_of(q, d, http_param(q, "serial"), "serial", &dv) || date_field(q, body, "removed_on", on)) return HTTP_DONE;
    const char *reason = http_str(body, "reason");
    /* swap has its own route, which installs the replacement too */
    if (!reason || (strcmp(reason, "returned") && strcmp(reason, "lost") && strcmp(reason, "closed"))) {
        http_reply_errf(q, 400, reason ? "invalid_field" : "missing_field", "reason",
                        "reason is returned, lost or closed (a swap is POST .../swap)");
        return HTTP_DONE;
    }
    err e = {0};
    jv *before = device_obj(q, d, dv.id, 0, 1, &e), *detail = jv_obj(a), *obj = NULL;
    int rc = before && detail ? 0 : (e.code ? e.code : ERR_NOMEM_RET(&e));
    if (!rc && jv_obj_set_str(a, detail, "reason", reason)) rc = ERR_NOMEM_RET(&e);
    if (!rc) rc = db_begin(d, &e);
    if (!rc) rc = devices_remove(d, dv.id, reason, on, &e);
    if (!rc) rc = audit_device(q, d, "device.remove", &dv, before, detail, &e);
    if (!rc && !(obj = device_obj(q, d, dv.id, 1, 0, &e))) rc = e.code ? e.code : ERR_INTERNAL;
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    reply_devices(q, 200, obj, NULL);
    return HTTP_DONE;
}

int api_devices_swap(http_req *q)
{
    static const http_field spec[] = {{"new_serial", 's', 0}, {"swapped_on", 's', 0}, {"engineer", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    device old, nw;
    char on[11];
    if (device_of(q, d, http_param(q, "serial"), "serial", &old) ||
        device_of(q, d, http_str(body, "new_serial"), "new_serial", &nw) || date_field(q, body, "swapped_on", on))
        return HTTP_DONE;
    err e = {0};
    int64_t inst = 0, moved = 0;
    jv *before_old = device_obj(q, d, old.id, 0, 1, &e), *before_new = device_obj(q, d, nw.id, 0, 1, &e);
    jv *d_old = jv_obj(a), *d_new = jv_obj(a), *obj = jv_obj(a), *o_old = NULL, *o_new = NULL;
    int rc = before_old && before_new && d_old && d_new && obj ? 0 : (e.code ? e.code : ERR_NOMEM_RET(&e));
    if (!rc) rc = db_begin(d, &e);
    if (!rc) rc = devices_swap(d, old.id, nw.id, on, engineer_of(q, body), &inst, &moved, &e);
    if (!rc && (jv_obj_set_str(a, d_old, "replaced_by", nw.serial) || jv_obj_set_str(a, d_new, "replaces", old.serial) ||
                jv_obj_set_int(a, d_new, "installation", inst) ||
                (moved && (jv_obj_set_int(a, d_old, "deposit_moved", moved) ||
                           jv_obj_set_int(a, d_new, "deposit_moved", moved)))))
        rc = ERR_NOMEM_RET(&e);
    /* one record per device, so each device's audit history tells it */
    if (!rc) rc = audit_device(q, d, "device.swap", &old, before_old, d_old, &e);
    if (!rc) rc = audit_device(q, d, "device.install", &nw, before_new, d_new, &e);
    if (!rc && !(o_old = device_obj(q, d, old.id, 1, 0, &e))) rc = e.code ? e.code : ERR_INTERNAL;
    if (!rc && !(o_new = device_obj(q, d, nw.id, 1, 0, &e))) rc = e.code ? e.code : ERR_INTERNAL;
    if (!rc && (jv_obj_set(a, obj, "removed", o_old) || jv_obj_set(a, obj, "installed", o_new))) rc = ERR_NOMEM_RET(&e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    static const char *const keys[] = {"removed", "installed", NULL};
    reply_devices(q, 200, obj, keys);
    return HTTP_DONE;
}

/* ------------------------------------------------------------- deposits */

static const char *const deposit_states[] = {"held", "returned", "kept", "forfeited", NULL};

static jv *deposit_obj(db *d, jv_arena *a, int64_t id, err *e)
{
    deposit dp;
    jv *o = NULL;
    if (deposits_get(d, id, &dp, e) || deposits_to_jv(d, &dp, a, &o, e)) return NULL;
    return o;
}

static int deposit_item(void *ud, db *d, jv_arena *a, int64_t id, jv **out, err *e)
{
    (void)ud;
    return (*out = deposit_obj(d, a, id, e)) ? 0 : (e->code ? e->code : ERR_NOMEM_RET(e));
}

int api_deposits_list(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t customer_id, limit, before;
    const char *cursor, *status = http_query(q, "status");
    if (customer_of(q, d, http_param(q, "code"), "code", &customer_id) || http_page(q, &limit, &cursor) ||
        id_cursor(q, cursor, &before) || status_filter(q, status, deposit_states))
        return HTTP_DONE;
    err e = {0};
    db_stmt *s = db_prepare(d,
                            "SELECT id FROM deposits WHERE customer_id = ? AND (? = 0 OR id < ?) "
                            "AND (? IS NULL OR status = ?) ORDER BY id DESC LIMIT ?",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_int(s, 1, customer_id);
    db_bind_int(s, 2, before);
    db_bind_int(s, 3, before);
    db_bind_text(s, 4, status);
    db_bind_text(s, 5, status);
    db_bind_int(s, 6, limit + 1);
    http_reply_id_page(q, d, s, limit, "deposit", deposit_item, NULL);
    return HTTP_DONE;
}

int api_deposits_create(http_req *q)
{
    static const http_field spec[] = {{"device", 's', 0},   {"product", 's', 0}, {"amount", 'm', 0},
                                      {"taken_on", 's', 0}, {"note", 's', 0},    {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    int64_t customer_id;
    device dv;
    char on[11];
    if (customer_of(q, d, http_param(q, "code"), "code", &customer_id) ||
        device_of(q, d, http_str(body, "device"), "device", &dv) || date_field(q, body, "taken_on", on))
        return HTTP_DONE;
    const char *product = http_str(body, "product");
    if (!product) {
        http_reply_errf(q, 400, "missing_field", "product", "product is required (a deposit product's code)");
        return HTTP_DONE;
    }
    const jv *amount = jv_get(body, "amount");
    int64_t fen = amount && amount->kind == JV_INT ? amount->u.i : -1;
    err e = {0};
    int64_t id;
    jv *obj = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = deposits_take(d, customer_id, dv.id, product, fen, on, http_str(body, "note"), &id, &e);
    if (!rc && !(obj = deposit_obj(d, a, id, &e))) rc = e.code ? e.code : ERR_INTERNAL;
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", (long long)(rc ? 0 : id));
    audit_event ev = {.action = "deposit.take", .object_type = "deposit", .object_id = oid, .after = obj};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 201, "deposit", obj);
    return HTTP_DONE;
}

int api_deposits_settle(http_req *q)
{
    static const http_field spec[] = {{"status", 's', 0}, {"settled_on", 's', 0}, {"note", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    const char *idp = http_param(q, "id");
    char *end;
    long long id = idp ? strtoll(idp, &end, 10) : 0;
    if (!idp || *end || end == idp || id <= 0) {
        http_reply_errf(q, 404, "not_found", "id", "no deposit %s", idp ? idp : "");
        return HTTP_DONE;
    }
    char on[11];
    if (date_field(q, body, "settled_on", on)) return HTTP_DONE;
    const char *status = http_str(body, "status");
    if (!status) {
        http_reply_errf(q, 400, "missing_field", "status", "status is required: returned, kept or forfeited");
        return HTTP_DONE;
    }
    err e = {0};
    char by[96];
    caller(q, by, sizeof by);
    jv *before = deposit_obj(d, a, id, &e), *after = NULL;
    if (!before) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    int rc = db_begin(d, &e);
    if (!rc) rc = deposits_settle(d, id, status, on, by, http_str(body, "note"), &e);
    if (!rc && !(after = deposit_obj(d, a, id, &e))) rc = e.code ? e.code : ERR_INTERNAL;
    audit_event ev = {.action = "deposit.settle", .object_type = "deposit", .object_id = idp, .before = before,
                      .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "deposit", after);
    return HTTP_DONE;
}
