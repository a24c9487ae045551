/* catalog.c - products and their effective-dated versions. */
#include "catalog.h"

#include <stdio.h>
#include <string.h>

static int read_product(db *d, db_stmt *s, product *out, err *e)
{
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        out->id = db_col_int(s, 0);
        snprintf(out->code, sizeof out->code, "%s", db_col_text(s, 1));
        snprintf(out->kind, sizeof out->kind, "%s", db_col_text(s, 2));
        snprintf(out->name, sizeof out->name, "%s", db_col_text(s, 3));
        snprintf(out->status, sizeof out->status, "%s", db_col_text(s, 4));
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "product", "no such product");
    }
    db_done(s);
    return rc;
}

int catalog_product(db *d, const char *code, product *out, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT id, code, kind, name, status FROM products WHERE code = ?", e);
    if (!s) return e->code;
    db_bind_text(s, 1, code);
    int rc = read_product(d, s, out, e);
    if (rc == ERR_NOTFOUND) err_field(e, ERR_NOTFOUND, "not_found", "product", "no product %s", code);
    return rc;
}

int catalog_product_by_id(db *d, int64_t id, product *out, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT id, code, kind, name, status FROM products WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    return read_product(d, s, out, e);
}

static const jv *parse_col(db_stmt *s, int i, jv_arena *a)
{
    jv *v = NULL;
    err e;
    if (json_parse(db_col_text(s, i), db_col_bytes(s, i), NULL, a, &v, &e)) v = jv_obj(a);
    return v;
}

int catalog_version_at(db *d, int64_t product_id, const char *date, jv_arena *a, product_version *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_stmt *s = db_prepare(d,
                            "SELECT id, product_id, version, effective_from, price, price_includes_tax, tax_category, rule, "
                            "params, attrs, regions, tags FROM product_versions "
                            "WHERE product_id = ? AND effective_from <= ? ORDER BY effective_from DESC LIMIT 1",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, product_id);
    db_bind_text(s, 2, date);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        out->id = db_col_int(s, 0);
        out->product_id = db_col_int(s, 1);
        out->version = (int)db_col_int(s, 2);
        snprintf(out->effective_from, sizeof out->effective_from, "%s", db_col_text(s, 3));
        out->price = db_col_int(s, 4);
        out->price_includes_tax = (int)db_col_int(s, 5);
        snprintf(out->tax_category, sizeof out->tax_category, "%s", db_col_text(s, 6));
        snprintf(out->rule, sizeof out->rule, "%s", db_col_text(s, 7));
        out->params = parse_col(s, 8, a);
        out->attrs = parse_col(s, 9, a);
        out->regions = parse_col(s, 10, a);
        out->tags = parse_col(s, 11, a);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_set(e, ERR_NOTFOUND, "the product has no version in force on %s", date);
    }
    db_done(s);
    return rc;
}

jv *catalog_version_jv(jv_arena *a, const product_version *v)
{
    jv *o = jv_obj(a);
    if (!o) return NULL;
    jv_obj_set_int(a, o, "version", v->version);
    jv_obj_set_str(a, o, "effective_from", v->effective_from);
    jv_obj_set_int(a, o, "price", v->price);
    jv_obj_set_bool(a, o, "price_includes_tax", v->price_includes_tax);
    jv_obj_set_str(a, o, "tax_category", v->tax_category);
    jv_obj_set_str(a, o, "rule", v->rule);
    jv_obj_set(a, o, "params", v->params ? jv_copy(a, v->params) : jv_obj(a));
    jv_obj_set(a, o, "attrs", v->attrs ? jv_copy(a, v->attrs) : jv_obj(a));
    jv_obj_set(a, o, "regions", v->regions ? jv_copy(a, v->regions) : jv_arr(a));
    jv_obj_set(a, o, "tags", v->tags ? jv_copy(a, v->tags) : jv_arr(a));
    return o;
}
