/* api_catalog.c - the product catalog over HTTP: products with their
 * effective-dated versions, the schemas of the pricing rules (what the
 * console draws its forms from) and the offers a customer may be sold.
 *
 * Validation lives in catalog.c, shared with the command line; these
 * handlers add the transaction, the audit record and the reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "catalog.h"
#include "customers.h"
#include "date.h"
#include "rules.h"
#include "server.h"



static int one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

static const char *const kinds[] = {"plan", "addon", "fee", "deposit", "promotion", NULL};
static const char *const statuses[] = {"draft", "active", "retired", NULL};

/* The version in force on `date` as an object, or null when the product
 * has none yet (its first price starts later). */
static int version_on(db *d, jv_arena *a, int64_t pid, const char *date, jv **out, err *e)
{
    product_version v;
    int rc = catalog_version_at(d, pid, date, a, &v, e);
    if (rc == ERR_NOTFOUND) {
        *out = jv_null(a);
        return *out ? 0 : ERR_NOMEM_RET(e);
    }
    if (rc) return rc;
    *out = catalog_version_jv(a, &v);
    return *out ? 0 : ERR_NOMEM_RET(e);
}

/* {code, kind, name, status, created_at, created_by, current, versions?}
 * with `current` the version in force today and, with all, every version
 * in date order. */
static int product_jv(db *d, jv_arena *a, int64_t pid, int all, jv **out, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT code, kind, name, status, created_at, created_by FROM products WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, pid);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_field(e, ERR_NOTFOUND, "not_found", "code", "no such product");
    }
    jv *o = jv_obj(a);
    static const char *const cols[] = {"code", "kind", "name", "status", "created_at", "created_by"};
    rc = o ? 0 : ERR_NOMEM;
    for (int i = 0; i < 6 && !rc; i++) rc = jv_obj_set_str(a, o, cols[i], db_col_text(s, i));
    db_done(s);
    if (rc) return ERR_NOMEM_RET(e);
    char t[11];
    http_today(t);
    jv *cur;
    if ((rc = version_on(d, a, pid, t, &cur, e))) return rc;
    if (jv_obj_set(a, o, "current", cur)) return ERR_NOMEM_RET(e);
    if (all) {
        /* each version is read by its own start date: the dates are unique
         * per product, so version_at on a start date returns that version */
        char dates[64][11];
        jv *list = jv_arr(a);
        if (!list) return ERR_NOMEM_RET(e);
        int64_t after = 0;
        for (;;) {
            s = db_prepare(d,
                           "SELECT effective_from, version FROM product_versions WHERE product_id = ? AND version > ? "
                           "ORDER BY version LIMIT 64",
                           e);
            if (!s) return e->code;
            db_bind_int(s, 1, pid);
            db_bind_int(s, 2, after);
            int n = 0;
            while ((rc = db_step(d, s, e)) == DB_ROW) {
                snprintf(dates[n++], 11, "%s", db_col_text(s, 0));
                after = db_col_int(s, 1);
            }
            db_done(s);
            if (rc < 0) return rc;
            for (int i = 0; i < n; i++) {
                jv *v;
                if ((rc = version_on(d, a, pid, dates[i], &v, e))) return rc;
                if (jv_arr_push(a, list, v)) return ERR_NOMEM_RET(e);
            }
            if (n < 64) break;
        }
        if (jv_obj_set(a, o, "versions", list)) return ERR_NOMEM_RET(e);
    }
    *out = o;
    return 0;
}

static int64_t product_id(http_req *q, db *d)
{
    product p;
    err e;
    if (catalog_product(d, http_param(q, "code"), &p, &e)) {
        snprintf(e.field, sizeof e.field, "code");
        http_reply_error(q, 0, &e);
        return 0;
    }
    return p.id;
}

static ruleset *live_rules(http_req *q)
{
    ruleset *rs = rules_live();
    if (!rs) http_reply_errf(q, 503, "unavailable", "", "no rule set is loaded");
    return rs;
}

/* ------------------------------------------------------------ handlers */

static int product_item(void *ud, db *d, jv_arena *a, int64_t id, jv **out, err *e)
{
    (void)ud;
    return product_jv(d, a, id, 0, out, e);
}

int api_products_list(http_req *q)
{
    int64_t limit;
    const char *cursor;
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    int64_t before = INT64_MAX;
    if (cursor) {
        char *end;
        before = strtoll(cursor, &end, 10);
        if (*end || end == cursor || before <= 0) {
            http_reply_errf(q, 400, "invalid_parameter", "cursor", "cursor is not one this server gave out");
            return HTTP_DONE;
        }
    }
    const char *kind = http_query(q, "kind"), *status = http_query(q, "status");
    if (kind && !one_of(kind, kinds)) {
        http_reply_errf(q, 400, "invalid_parameter", "kind", "kind is plan, addon, fee, deposit or promotion");
        return HTTP_DONE;
    }
    if (status && !one_of(status, statuses)) {
        http_reply_errf(q, 400, "invalid_parameter", "status", "status is draft, active or retired");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    err e;
    db_stmt *s = db_prepare(d,
                            "SELECT id FROM products WHERE id < ? AND (? IS NULL OR kind = ?) AND (? IS NULL OR status = ?) "
                            "ORDER BY id DESC LIMIT ?",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_int(s, 1, before);
    db_bind_text(s, 2, kind);
    db_bind_text(s, 3, kind);
    db_bind_text(s, 4, status);
    db_bind_text(s, 5, status);
    db_bind_int(s, 6, limit + 1);
    http_reply_id_page(q, d, s, limit, "product", product_item, NULL);
    return HTTP_DONE;
}

int api_products_get(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t pid = product_id(q, d);
    if (!pid) return HTTP_DONE;
    jv *o;
    err e;
    if (product_jv(d, http_arena(q), pid, 1, &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "product", o);
    return HTTP_DONE;
}

int api_products_create(http_req *q)
{
    const jv *body = http_body(q);
    if (!body || body->kind != JV_OBJ) {
        http_reply_errf(q, 400, "invalid_body", "", "expected a JSON object");
        return HTTP_DONE;
    }
    ruleset *rs = live_rules(q);
    if (!rs) return HTTP_DONE;
    db *d = server_db(http_server(q));
    char by[96];
    auth_label(http_who(q), by, sizeof by);
    err e;
    int64_t pid = 0;
    jv *after = NULL;
    const jv *code = jv_get(body, "code");
    /* catalog_create validates the whole body before it writes anything */
    int rc = db_begin(d, &e);
    if (!rc) rc = catalog_create(d, rs, body, by, &pid, &e);
    if (!rc) rc = product_jv(d, http_arena(q), pid, 1, &after, &e);
    audit_event ev = {.action = "product.create", .object_type = "product",
                      .object_id = code && code->kind == JV_STR ? code->u.str.s : NULL, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    ruleset_unref(rs);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 201, "product", after);
    return HTTP_DONE;
}

int api_products_update(http_req *q)
{
    const jv *body = http_body(q);
    if (!body || body->kind != JV_OBJ) {
        http_reply_errf(q, 400, "invalid_body", "", "expected a JSON object");
        return HTTP_DONE;
    }
    const jv *name = NULL, *status = NULL;
    for (size_t i = 0; i < body->u.obj.n; i++) {
        const char *k = body->u.obj.m[i].key;
        const jv *v = body->u.obj.m[i].val;
        if (strcmp(k, "name") && strcmp(k, "status")) {
            http_reply_errf(q, 400, "unknown_field", k, "unknown field %s (a product's name and status change here; "
                            "prices and terms are new versions)", k);
            return HTTP_DONE;
        }
        if (v->kind != JV_STR) {
            http_reply_errf(q, 400, "invalid_field", k, "%s must be a string", k);
            return HTTP_DONE;
        }
        if (!strcmp(k, "name")) name = v;
        else status = v;
    }
    if (name) {
        /* the rules of catalog_create: the name fits struct product */
        const char *s = name->u.str.s;
        size_t n = name->u.str.len;
        int ok = n > 0 && n <= 127 && s[0] != ' ' && s[n - 1] != ' ';
        for (size_t i = 0; ok && i < n; i++) ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
        if (!ok) {
            http_reply_errf(q, 400, "invalid_field", "name",
                            "name must be 1-127 bytes of text without control characters or outer spaces");
            return HTTP_DONE;
        }
    }
    if (status && !one_of(status->u.str.s, statuses)) {
        http_reply_errf(q, 400, "invalid_field", "status", "status must be draft, active or retired");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    int64_t pid = product_id(q, d);
    if (!pid) return HTTP_DONE;
    jv_arena *a = http_arena(q);
    err e;
    jv *before = NULL, *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = product_jv(d, a, pid, 1, &before, &e);
    if (!rc && name) rc = db_run(d, &e, "UPDATE products SET name = ? WHERE id = ?", "si", name->u.str.s, pid);
    if (!rc && status) rc = catalog_set_status(d, pid, status->u.str.s, &e);
    if (!rc) rc = product_jv(d, a, pid, 1, &after, &e);
    audit_event ev = {.action = "product.update", .object_type = "product", .object_id = http_param(q, "code"),
                      .before = before, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "product", after);
    return HTTP_DONE;
}

int api_products_add_version(http_req *q)
{
    const jv *body = http_body(q);
    if (!body || body->kind != JV_OBJ) {
        http_reply_errf(q, 400, "invalid_body", "", "expected a JSON object: the new version");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    int64_t pid = product_id(q, d);
    if (!pid) return HTTP_DONE;
    ruleset *rs = live_rules(q);
    if (!rs) return HTTP_DONE;
    char by[96];
    auth_label(http_who(q), by, sizeof by);
    jv_arena *a = http_arena(q);
    err e;
    jv *before = NULL, *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = product_jv(d, a, pid, 1, &before, &e);
    if (!rc) rc = catalog_add_version(d, rs, pid, body, by, &e);
    if (!rc) rc = product_jv(d, a, pid, 1, &after, &e);
    audit_event ev = {.action = "product.version_add", .object_type = "product", .object_id = http_param(q, "code"),
                      .before = before, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    ruleset_unref(rs);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 201, "product", after);
    return HTTP_DONE;
}

/* Field names of a schema in form order: by `order`, then by name (the
 * order catalog.c validates them in). */
typedef struct fname { const char *name; int64_t order; } fname;

static int fname_cmp(const void *pa, const void *pb)
{
    const fname *x = pa, *y = pb;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    return strcmp(x->name, y->name);
}

static jv *field_order(jv_arena *a, const jv *schema)
{
    jv *list = jv_arr(a);
    if (!list || schema->kind != JV_OBJ || schema->u.obj.n == 0) return list;
    fname *f = jv_alloc(a, schema->u.obj.n * sizeof *f);
    if (!f) return NULL;
    for (size_t i = 0; i < schema->u.obj.n; i++) {
        const jv *o = jv_get(schema->u.obj.m[i].val, "order");
        f[i].name = schema->u.obj.m[i].key;
        f[i].order = o && o->kind == JV_INT ? o->u.i : INT64_MAX;
    }
    qsort(f, schema->u.obj.n, sizeof *f, fname_cmp);
    for (size_t i = 0; i < schema->u.obj.n; i++)
        if (jv_arr_push(a, list, jv_str(a, f[i].name))) return NULL;
    return list;
}

static int rule_cmp(const void *pa, const void *pb)
{
    const jv *x = *(const jv *const *)pa, *y = *(const jv *const *)pb;
    return strcmp(jv_get(x, "rule")->u.str.s, jv_get(y, "rule")->u.str.s);
}

int api_pricing_rules(http_req *q)
{
    ruleset *rs = live_rules(q);
    if (!rs) return HTTP_DONE;
    jv_arena *a = http_arena(q);
    jv *list = jv_arr(a), *empty = jv_obj(a);
    int rc = list && empty ? 0 : ERR_NOMEM;
    for (size_t i = 0; !rc && i < lhost_module_count(rs->host); i++) {
        const char *module = lhost_module_name(rs->host, i);
        jv *schemas;
        err e;
        if (lhost_get_field(rs->host, module, "schemas", a, &schemas, &e) || schemas->kind != JV_OBJ) continue;
        for (size_t k = 0; !rc && k < schemas->u.obj.n; k++) {
            const jv_member *m = &schemas->u.obj.m[k];
            char rule[160];
            snprintf(rule, sizeof rule, "%s.%s", module, m->key);
            jv *item = jv_obj(a);
            rc = item ? 0 : ERR_NOMEM;
            rc |= jv_obj_set_str(a, item, "rule", rule);
            rc |= jv_obj_set_str(a, item, "module", module);
            rc |= jv_obj_set_str(a, item, "function", m->key);
            rc |= jv_obj_set(a, item, "schema", m->val);
            rc |= jv_obj_set(a, item, "fields", field_order(a, m->val));
            /* validating empty parameters finds a broken schema (ERR_RULE)
             * or a schema without its function; missing parameters are
             * what a form is for */
            int crc = catalog_check_params(rs, rule, empty, &e);
            int broken = crc == ERR_RULE || (crc == ERR_INVALID && !strcmp(e.tag, "unknown_rule"));
            rc |= jv_obj_set_bool(a, item, "valid", !broken);
            if (broken) rc |= jv_obj_set_str(a, item, "error", e.msg);
            rc |= jv_arr_push(a, list, item);
        }
    }
    if (rc) {
        ruleset_unref(rs);
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    /* by rule name: Lua tables have no order of their own */
    qsort(list->u.arr.items, list->u.arr.n, sizeof *list->u.arr.items, rule_cmp);
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_key(&w, "data");
    jw_jv(&w, list);
    jw_kv_str(&w, "next_cursor", NULL);
    jw_kv_str(&w, "rules_version", rs->snap->version);
    jw_obj_close(&w);
    ruleset_unref(rs);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

/* The customer's service address as {province, city, district, ...}, or
 * null when none is on file. */
static int customer_address(db *d, jv_arena *a, int64_t cid, jv **out, err *e)
{
    static const char *const parts[] = {"province", "city", "district", "street", "community",
                                        "building", "unit", "floor",    "room"};
    db_stmt *s = db_prepare(d,
                            "SELECT province, city, district, street, community, building, unit, floor, room "
                            "FROM addresses WHERE customer_id = ? AND kind = 'service'",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, cid);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        jv *o = jv_obj(a);
        rc = o ? 0 : ERR_NOMEM;
        for (int i = 0; i < 9 && !rc; i++) rc = jv_obj_set_str(a, o, parts[i], db_col_text(s, i));
        *out = o;
    } else if (rc == DB_DONE) {
        rc = (*out = jv_null(a)) ? 0 : ERR_NOMEM;
    }
    db_done(s);
    return rc == ERR_NOMEM ? ERR_NOMEM_RET(e) : rc;
}

static int customer_tags(db *d, jv_arena *a, int64_t cid, jv **out, err *e)
{
    jv *list = jv_arr(a);
    if (!list) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d, "SELECT tag FROM customer_tags WHERE customer_id = ? ORDER BY tag", e);
    if (!s) return e->code;
    db_bind_int(s, 1, cid);
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW)
        if (jv_arr_push(a, list, jv_str(a, db_col_text(s, 0)))) {
            db_done(s);
            return ERR_NOMEM_RET(e);
        }
    db_done(s);
    if (rc < 0) return rc;
    *out = list;
    return 0;
}

int api_customers_offers(http_req *q)
{
    const char *kind = http_query(q, "kind");
    if (kind && !one_of(kind, kinds)) {
        http_reply_errf(q, 400, "invalid_parameter", "kind", "kind is plan, addon, fee, deposit or promotion");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    err e;
    int64_t cid;
    jv *address = NULL, *tags = NULL;
    int rc = customers_id_by_code(d, http_param(q, "code"), &cid, &e);
    if (!rc) rc = customer_address(d, a, cid, &address, &e);
    if (!rc) rc = customer_tags(d, a, cid, &tags, &e);
    if (rc) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    /* active products only: a draft is not for sale yet, a retired one no
     * longer (its subscribers keep it, but nobody new gets it) */
    db_stmt *s = db_prepare(d,
                            "SELECT id, code, kind, name FROM products WHERE status = 'active' AND (? IS NULL OR kind = ?) "
                            "ORDER BY code",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_text(s, 1, kind);
    db_bind_text(s, 2, kind);
    jv *rows = jv_arr(a);
    rc = rows ? 0 : ERR_NOMEM_RET(&e);
    while (!rc && (rc = db_step(d, s, &e)) == DB_ROW) {
        jv *r = jv_obj(a);
        rc = r ? 0 : ERR_NOMEM;
        rc |= jv_obj_set_int(a, r, "id", db_col_int(s, 0));
        rc |= jv_obj_set_str(a, r, "code", db_col_text(s, 1));
        rc |= jv_obj_set_str(a, r, "kind", db_col_text(s, 2));
        rc |= jv_obj_set_str(a, r, "name", db_col_text(s, 3));
        rc |= jv_arr_push(a, rows, r);
        if (rc) rc = ERR_NOMEM_RET(&e);
    }
    db_done(s);
    if (rc < 0) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    char t[11];
    http_today(t);
    jv *list = jv_arr(a);
    for (size_t i = 0; list && i < rows->u.arr.n; i++) {
        jv *r = rows->u.arr.items[i];
        product_version v;
        rc = catalog_version_at(d, jv_get(r, "id")->u.i, t, a, &v, &e);
        if (rc == ERR_NOTFOUND) continue;   /* its first price starts later */
        if (rc) {
            http_reply_error(q, 500, &e);
            return HTTP_DONE;
        }
        if (!catalog_available(&v, address, tags)) continue;
        jv *o = jv_obj(a);
        if (!o || jv_obj_set(a, o, "code", (jv *)jv_get(r, "code")) || jv_obj_set(a, o, "kind", (jv *)jv_get(r, "kind")) ||
            jv_obj_set(a, o, "name", (jv *)jv_get(r, "name")) || jv_obj_set_str(a, o, "status", "active") ||
            jv_obj_set(a, o, "current", catalog_version_jv(a, &v)) || jv_arr_push(a, list, o)) {
            list = NULL;
        }
    }
    if (!list) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    http_reply_resources(q, "product", list, NULL);
    return HTTP_DONE;
}
