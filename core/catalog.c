/* catalog.c - products and their effective-dated versions, and the "form
 * engine": a version's rule parameters are validated against the schema
 * the pricing rule declares (module.schemas[function]), and its attributes
 * against the schema of its product kind, which is written here in the
 * same format. One validator serves both, so a rule author and the core
 * speak the same language of types, ranges and defaults.
 *
 * Decisions (documented in docs/API.md, "Catalog"):
 *   - a new version starts strictly after the product's latest one, so a
 *     price never rewrites history; it may start in the past only while the
 *     product is a draft (nothing has been sold at the old terms yet);
 *   - a new version inherits every field it does not give from the latest
 *     version, and the result is validated in full against the live rules;
 *   - optional parameters and attributes with a default are stored with it,
 *     so a stored version keeps meaning the same when a rule's default
 *     changes later;
 *   - status goes draft -> active -> retired (draft -> retired discards a
 *     draft); nothing goes back, because a draft may take past-dated
 *     versions and an active product must not. */
#include "catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "date.h"

/* ¥1,000,000,000: above any real product, and far enough below INT64_MAX
 * that rules multiplying a price by days or percentages cannot overflow. */
#define PRICE_MAX 100000000000LL
/* struct product keeps the name in 128 bytes */
#define NAME_MAX_BYTES 127
#define REGION_MAX_BYTES 256
#define TAG_MAX_BYTES 64
#define LIST_MAX 1000
/* percentages are compared in millionths of a percent (6 decimals, as
 * bandbill.money.percent accepts) */
#define PCT_SCALE 1000000LL

static const char *const kinds[] = {"plan", "addon", "fee", "deposit", "promotion", NULL};

/* ------------------------------------------------------------ lookups */

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

/* A JSON column as jv. The core wrote it, so it parses; a failure can only
 * be memory (or a hand-edited row, reported as such). */
static int parse_col(db_stmt *s, int i, jv_arena *a, const jv **out, err *e)
{
    jv *v = NULL;
    if (json_parse(db_col_text(s, i), db_col_bytes(s, i), NULL, a, &v, e))
        return err_prefix(e, "stored product version column %d", i);
    *out = v;
    return 0;
}

int catalog_version_at(db *d, int64_t product_id, const char *date, jv_arena *a, product_version *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_stmt *s = db_prepare(d,
                            "SELECT v.id, v.product_id, v.version, v.effective_from, v.price, v.price_includes_tax, v.tax_category, "
                            "v.rule, v.params, v.attrs, v.regions, v.tags, p.status FROM product_versions v "
                            "JOIN products p ON p.id = v.product_id "
                            "WHERE v.product_id = ? AND v.effective_from <= ? ORDER BY v.effective_from DESC LIMIT 1",
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
        rc = parse_col(s, 8, a, &out->params, e);
        if (!rc) rc = parse_col(s, 9, a, &out->attrs, e);
        if (!rc) rc = parse_col(s, 10, a, &out->regions, e);
        if (!rc) rc = parse_col(s, 11, a, &out->tags, e);
        snprintf(out->status, sizeof out->status, "%s", db_col_text(s, 12));
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
    int rc = jv_obj_set_int(a, o, "version", v->version);
    rc |= jv_obj_set_str(a, o, "effective_from", v->effective_from);
    rc |= jv_obj_set_int(a, o, "price", v->price);
    rc |= jv_obj_set_bool(a, o, "price_includes_tax", v->price_includes_tax);
    rc |= jv_obj_set_str(a, o, "tax_category", v->tax_category);
    rc |= jv_obj_set_str(a, o, "rule", v->rule);
    rc |= jv_obj_set(a, o, "params", v->params ? jv_copy(a, v->params) : jv_obj(a));
    rc |= jv_obj_set(a, o, "attrs", v->attrs ? jv_copy(a, v->attrs) : jv_obj(a));
    rc |= jv_obj_set(a, o, "regions", v->regions ? jv_copy(a, v->regions) : jv_arr(a));
    rc |= jv_obj_set(a, o, "tags", v->tags ? jv_copy(a, v->tags) : jv_arr(a));
    return rc ? NULL : o;
}

/* ------------------------------------------------------------ helpers */

static void today(char out[11]) { date_format(date_of_time(time(NULL)), out); }

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

/* "a.b" + "c" -> "a.b.c"; "" + "c" -> "c". */
static void join(char *out, size_t n, const char *path, const char *name)
{
    snprintf(out, n, "%s%s%s", path, path[0] ? "." : "", name);
}

static int code_valid(const char *s, size_t n)
{
    if (n < 2 || n > 48) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-')) return 0;
    return 1;
}

/* Characters (code points) of valid UTF-8. */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Text fit for a label or a list entry: no control characters and no
 * spaces at either end (they make two entries look equal and differ). */
static int clean_text(const char *s, size_t n)
{
    if (n == 0 || s[0] == ' ' || s[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

static int is_date(const jv *v)
{
    int32_t days;
    return v && v->kind == JV_STR && date_parse(v->u.str.s, v->u.str.len, &days, NULL) == 0;
}

/* An integer 0-100 or a decimal string ("8.5", up to 6 decimals) as
 * millionths of a percent; -1 if it is neither. */
static int parse_percent(const jv *v, int64_t *out)
{
    if (v->kind == JV_INT) {
        /* out of range stays out of range without overflowing */
        *out = v->u.i < 0 ? -1 : v->u.i > 1000 ? 1000 * PCT_SCALE : v->u.i * PCT_SCALE;
        return 0;
    }
    if (v->kind != JV_STR) return -1;
    const char *s = v->u.str.s;
    size_t n = v->u.str.len, i = 0;
    int64_t whole = 0, frac = 0, scale = PCT_SCALE;
    int digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) whole = whole * 10 + (s[i] - '0');
    if (digits == 0 || digits > 3) return -1;
    if (i < n) {
        if (s[i] != '.' || i + 1 == n) return -1;
        int dec = 0;
        for (i++; i < n; i++, dec++) {
            if (s[i] < '0' || s[i] > '9' || dec == 6) return -1;
            scale /= 10;
            frac += (s[i] - '0') * scale;
        }
    }
    *out = whole * PCT_SCALE + frac;
    return 0;
}

static void fmt_percent(int64_t p, char out[32])
{
    int n = snprintf(out, 32, "%lld.%06lld", (long long)(p / PCT_SCALE), (long long)(p % PCT_SCALE));
    while (n > 0 && out[n - 1] == '0') out[--n] = '\0';
    if (n > 0 && out[n - 1] == '.') out[--n] = '\0';
}

/* ------------------------------------------------------ field schemas */

typedef enum { FT_MONEY, FT_INTEGER, FT_PERCENT, FT_STRING, FT_BOOLEAN, FT_DATE, FT_ENUM, FT_CODE, FT_CODES } ftype;
static const char *const ftype_names[] = {"money", "integer", "percent", "string", "boolean",
                                          "date",  "enum",    "code",    "codes",  NULL};

typedef struct fspec {
    const char *name;
    ftype type;
    int required;
    int has_min, has_max;
    int64_t min, max;      /* money, integer: the value; percent: millionths; string: characters; codes: items */
    const char *dmin, *dmax; /* date */
    const jv *values;      /* enum: a list of strings */
    const char *kind;      /* code, codes: the product kind they must name, or NULL */
    const jv *def;         /* default, or NULL */
    int64_t order;
} fspec;

__attribute__((format(printf, 4, 5))) static int schema_fail(err *e, const char *sname, const char *fname,
                                                             const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_field(e, ERR_RULE, "invalid_schema", "", "%s%s%s: %s", sname, fname[0] ? "." : "", fname, msg);
}

static int text_ok(const jv *v)
{
    if (v->kind == JV_STR) return 1;
    if (v->kind != JV_OBJ) return 0;
    for (size_t i = 0; i < v->u.obj.n; i++)
        if ((strcmp(v->u.obj.m[i].key, "zh") && strcmp(v->u.obj.m[i].key, "en")) || v->u.obj.m[i].val->kind != JV_STR)
            return 0;
    return 1;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 48 || !(s[0] >= 'a' && s[0] <= 'z')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
    return 1;
}

static int check_value(const fspec *f, const jv *v, const char *path, db *d, err *e);

/* One field of a schema: {type, required?, min?, max?, default?, values?,
 * kind?, label?, help?, order?}. Anything else is a mistake of the rule's
 * author (a misspelt `requried` would silently make a field mandatory). */
static int parse_spec(const char *sname, const jv_member *m, fspec *f, err *e)
{
    memset(f, 0, sizeof *f);
    f->name = m->key;
    f->required = 1;
    f->order = INT64_MAX;
    if (!name_ok(m->key)) return schema_fail(e, sname, m->key, "a parameter name is a-z, 0-9 and _, starting with a letter");
    if (m->val->kind != JV_OBJ) return schema_fail(e, sname, m->key, "must be a table such as { type = \"money\" }");
    const jv *type = jv_get(m->val, "type"), *min = NULL, *max = NULL;
    if (!type || type->kind != JV_STR) return schema_fail(e, sname, m->key, "needs a type (%s)", "money, integer, percent, string, boolean, date, enum, code or codes");
    int t = 0;
    while (ftype_names[t] && strcmp(ftype_names[t], type->u.str.s)) t++;
    if (!ftype_names[t]) return schema_fail(e, sname, m->key, "unknown type '%s'", type->u.str.s);
    f->type = (ftype)t;
    for (size_t i = 0; i < m->val->u.obj.n; i++) {
        const char *k = m->val->u.obj.m[i].key;
        const jv *v = m->val->u.obj.m[i].val;
        if (!strcmp(k, "type")) continue;
        if (!strcmp(k, "required")) {
            if (v->kind != JV_BOOL) return schema_fail(e, sname, m->key, "required must be true or false");
            f->required = v->u.b;
        } else if (!strcmp(k, "min")) {
            min = v;
        } else if (!strcmp(k, "max")) {
            max = v;
        } else if (!strcmp(k, "default")) {
            f->def = v;
        } else if (!strcmp(k, "values")) {
            if (f->type != FT_ENUM) return schema_fail(e, sname, m->key, "only an enum has values");
            if (v->kind != JV_ARR || v->u.arr.n == 0) return schema_fail(e, sname, m->key, "values must be a list of strings");
            for (size_t j = 0; j < v->u.arr.n; j++) {
                if (v->u.arr.items[j]->kind != JV_STR) return schema_fail(e, sname, m->key, "values must be a list of strings");
                for (size_t k2 = 0; k2 < j; k2++)
                    if (!strcmp(v->u.arr.items[k2]->u.str.s, v->u.arr.items[j]->u.str.s))
                        return schema_fail(e, sname, m->key, "value '%s' is listed twice", v->u.arr.items[j]->u.str.s);
            }
            f->values = v;
        } else if (!strcmp(k, "kind")) {
            if (f->type != FT_CODE && f->type != FT_CODES) return schema_fail(e, sname, m->key, "only a code or codes has a kind");
            if (v->kind != JV_STR || !in_list(v->u.str.s, kinds))
                return schema_fail(e, sname, m->key, "kind must be plan, addon, fee, deposit or promotion");
            f->kind = v->u.str.s;
        } else if (!strcmp(k, "label") || !strcmp(k, "help")) {
            if (!text_ok(v)) return schema_fail(e, sname, m->key, "%s must be a string or { zh = \"...\", en = \"...\" }", k);
        } else if (!strcmp(k, "order")) {
            if (v->kind != JV_INT) return schema_fail(e, sname, m->key, "order must be an integer");
            f->order = v->u.i;
        } else {
            return schema_fail(e, sname, m->key, "unknown key '%s' (type, required, min, max, default, values, kind, label, help, order)", k);
        }
    }
    if (f->type == FT_ENUM && !f->values) return schema_fail(e, sname, m->key, "an enum needs its values");
    const jv *bounds[2] = {min, max};
    for (int b = 0; b < 2; b++) {
        const jv *v = bounds[b];
        const char *which = b ? "max" : "min";
        if (!v) continue;
        int64_t x = 0;
        switch (f->type) {
        case FT_MONEY: case FT_INTEGER: case FT_STRING: case FT_CODES:
            if (v->kind != JV_INT) return schema_fail(e, sname, m->key, "%s must be an integer", which);
            if (f->type != FT_MONEY && f->type != FT_INTEGER && v->u.i < 0)
                return schema_fail(e, sname, m->key, "%s (a count) must not be negative", which);
            x = v->u.i;
            break;
        case FT_PERCENT:
            if (parse_percent(v, &x) || x < 0 || x > 100 * PCT_SCALE)
                return schema_fail(e, sname, m->key, "%s must be a percentage from 0 to 100", which);
            break;
        case FT_DATE:
            if (!is_date(v)) return schema_fail(e, sname, m->key, "%s must be a date \"YYYY-MM-DD\"", which);
            if (b) f->dmax = v->u.str.s;
            else f->dmin = v->u.str.s;
            break;
        default:
            return schema_fail(e, sname, m->key, "a %s has no %s", ftype_names[f->type], which);
        }
        if (b) {
            f->has_max = 1;
            f->max = x;
        } else {
            f->has_min = 1;
            f->min = x;
        }
    }
    if ((f->has_min && f->has_max && f->min > f->max) || (f->dmin && f->dmax && strcmp(f->dmin, f->dmax) > 0))
        return schema_fail(e, sname, m->key, "min is above max");
    if (f->def) {
        err sub;
        if (check_value(f, f->def, "default", NULL, &sub)) return schema_fail(e, sname, m->key, "%s", sub.msg);
    }
    return 0;
}

static int spec_cmp(const void *pa, const void *pb)
{
    const fspec *a = pa, *b = pb;
    if (a->order != b->order) return a->order < b->order ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* The fields of a schema (an object of fields; an empty Lua table arrives
 * as an empty list), sorted by their order and then by name. */
static int parse_schema(const char *sname, const jv *schema, jv_arena *a, fspec **out, size_t *n, err *e)
{
    *out = NULL;
    *n = 0;
    if (schema->kind == JV_ARR && schema->u.arr.n == 0) return 0;
    if (schema->kind != JV_OBJ) return schema_fail(e, sname, "", "must be a table of parameters { name = { type = ... } }");
    size_t cnt = schema->u.obj.n;
    fspec *f = jv_alloc(a, (cnt ? cnt : 1) * sizeof *f);
    if (!f) return ERR_NOMEM_RET(e);
    for (size_t i = 0; i < cnt; i++) {
        int rc = parse_spec(sname, &schema->u.obj.m[i], &f[i], e);
        if (rc) return rc;
    }
    qsort(f, cnt, sizeof *f, spec_cmp);
    *out = f;
    *n = cnt;
    return 0;
}

/* A product code; with a database, one that exists (of the right kind). */
static int check_code(const jv *v, const char *path, const char *kind, db *d, err *e)
{
    if (v->kind != JV_STR || !code_valid(v->u.str.s, v->u.str.len))
        return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be a product code (2-48 of A-Z 0-9 _ -)", path);
    if (!d) return 0;
    db_stmt *s = db_prepare(d, "SELECT kind FROM products WHERE code = ?", e);
    if (!s) return e->code;
    db_bind_text(s, 1, v->u.str.s);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        char k[16];
        snprintf(k, sizeof k, "%s", db_col_text(s, 0));
        rc = 0;
        if (kind && strcmp(k, kind))
            rc = err_field(e, ERR_INVALID, "invalid_field", path, "%s: %s is a%s %s, not a%s %s", path, v->u.str.s,
                           k[0] == 'a' ? "n" : "", k, kind[0] == 'a' ? "n" : "", kind);
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_INVALID, "unknown_product", path, "%s: no product %s", path, v->u.str.s);
    }
    db_done(s);
    return rc;
}

static int range_fail(err *e, const char *path, const fspec *f, const char *what)
{
    if (f->has_min && f->has_max)
        return err_field(e, ERR_INVALID, "out_of_range", path, "%s must be from %lld to %lld%s", path, (long long)f->min,
                         (long long)f->max, what);
    if (f->has_min) return err_field(e, ERR_INVALID, "out_of_range", path, "%s must be at least %lld%s", path, (long long)f->min, what);
    return err_field(e, ERR_INVALID, "out_of_range", path, "%s must be at most %lld%s", path, (long long)f->max, what);
}

static int check_value(const fspec *f, const jv *v, const char *path, db *d, err *e)
{
    switch (f->type) {
    case FT_MONEY:
        if (v->kind == JV_NUM)
            return err_field(e, ERR_INVALID, "invalid_money", path,
                             "%s must be an integer count of fen (a number with a fraction is never money)", path);
        if (v->kind != JV_INT) return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be an amount in fen (an integer)", path);
        if ((f->has_min && v->u.i < f->min) || (f->has_max && v->u.i > f->max)) return range_fail(e, path, f, " fen");
        return 0;
    case FT_INTEGER:
        if (v->kind != JV_INT) return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be a whole number", path);
        if ((f->has_min && v->u.i < f->min) || (f->has_max && v->u.i > f->max)) return range_fail(e, path, f, "");
        return 0;
    case FT_PERCENT: {
        int64_t p;
        if (parse_percent(v, &p))
            return err_field(e, ERR_INVALID, "invalid_field", path,
                             "%s must be a percentage: an integer or a decimal string such as \"8.5\"", path);
        int64_t lo = f->has_min ? f->min : 0, hi = f->has_max ? f->max : 100 * PCT_SCALE;
        if (p < lo || p > hi) {
            char a[32], b[32];
            fmt_percent(lo, a);
            fmt_percent(hi, b);
            return err_field(e, ERR_INVALID, "out_of_range", path, "%s must be from %s to %s percent", path, a, b);
        }
        return 0;
    }
    case FT_STRING: {
        /* a NUL would cut the text short wherever it is used as C text */
        if (v->kind != JV_STR || memchr(v->u.str.s, 0, v->u.str.len))
            return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be a string", path);
        int64_t n = (int64_t)utf8_chars(v->u.str.s, v->u.str.len);
        if ((f->has_min && n < f->min) || (f->has_max && n > f->max)) return range_fail(e, path, f, " characters long");
        return 0;
    }
    case FT_BOOLEAN:
        if (v->kind != JV_BOOL) return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be true or false", path);
        return 0;
    case FT_DATE:
        if (!is_date(v)) return err_field(e, ERR_INVALID, "invalid_date", path, "%s must be a date \"YYYY-MM-DD\"", path);
        if (f->dmin && strcmp(v->u.str.s, f->dmin) < 0)
            return err_field(e, ERR_INVALID, "out_of_range", path, "%s must be on or after %s", path, f->dmin);
        if (f->dmax && strcmp(v->u.str.s, f->dmax) > 0)
            return err_field(e, ERR_INVALID, "out_of_range", path, "%s must be on or before %s", path, f->dmax);
        return 0;
    case FT_ENUM: {
        if (v->kind == JV_STR)
            for (size_t i = 0; i < f->values->u.arr.n; i++) {
                const jv *x = f->values->u.arr.items[i];
                if (x->u.str.len == v->u.str.len && !memcmp(x->u.str.s, v->u.str.s, v->u.str.len)) return 0;
            }
        char list[256] = "";
        size_t off = 0;
        for (size_t i = 0; i < f->values->u.arr.n && off < sizeof list; i++)
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", f->values->u.arr.items[i]->u.str.s);
        return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be one of %s", path, list);
    }
    case FT_CODE:
        return check_code(v, path, f->kind, d, e);
    case FT_CODES: {
        if (v->kind != JV_ARR) return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be a list of product codes", path);
        int64_t n = (int64_t)v->u.arr.n;
        if ((f->has_min && n < f->min) || (f->has_max && n > f->max) || n > LIST_MAX) {
            fspec g = *f;
            if (!g.has_max || g.max > LIST_MAX) g.has_max = 1, g.max = LIST_MAX;
            return range_fail(e, path, &g, " codes");
        }
        for (size_t i = 0; i < v->u.arr.n; i++) {
            char p[96];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            int rc = check_code(v->u.arr.items[i], p, f->kind, d, e);
            if (rc) return rc;
            for (size_t j = 0; j < i; j++)
                if (!strcmp(v->u.arr.items[j]->u.str.s, v->u.arr.items[i]->u.str.s))
                    return err_field(e, ERR_INVALID, "duplicate", p, "%s repeats %s", p, v->u.arr.items[i]->u.str.s);
        }
        return 0;
    }
    }
    return err_set(e, ERR_INTERNAL, "unknown field type");
}

/* Validates the object `in` (NULL: empty) against a schema and builds the
 * object to store: the given values plus the defaults of the fields left
 * out. Errors name `path`.<field>. With `d`, codes must name existing
 * products. `skip` names a field the caller validates itself (or NULL). */
static int check_fields(const char *sname, const jv *schema, const jv *in, const char *path, db *d, const char *skip,
                        jv_arena *a, jv **filled, err *e)
{
    fspec *f;
    size_t n;
    int rc = parse_schema(sname, schema, a, &f, &n, e);
    if (rc) return rc;
    if (in && in->kind == JV_NULL) in = NULL;
    if (in && in->kind != JV_OBJ) return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be an object", path);
    char p[96];
    for (size_t i = 0; in && i < in->u.obj.n; i++) {
        const char *k = in->u.obj.m[i].key;
        size_t j = 0;
        while (j < n && strcmp(f[j].name, k)) j++;
        if (j < n && !(skip && !strcmp(k, skip))) continue;
        join(p, sizeof p, path, k);
        char names[256] = "";
        size_t off = 0;
        for (size_t q = 0; q < n && off < sizeof names; q++)
            if (!(skip && !strcmp(f[q].name, skip)))
                off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", off ? ", " : "", f[q].name);
        return err_field(e, ERR_INVALID, "unknown_field", p, "unknown field %s (%s takes %s)", p, sname,
                         names[0] ? names : "nothing");
    }
    jv *out = jv_obj(a);
    if (!out) return ERR_NOMEM_RET(e);
    for (size_t i = 0; i < n; i++) {
        if (skip && !strcmp(f[i].name, skip)) continue;
        const jv *v = in ? jv_get(in, f[i].name) : NULL;
        if (v && v->kind == JV_NULL) v = NULL;   /* a form's empty field */
        join(p, sizeof p, path, f[i].name);
        if (!v) {
            if (f[i].def) v = f[i].def;
            else if (f[i].required) return err_field(e, ERR_INVALID, "missing_field", p, "%s is required", p);
            else continue;
        } else if ((rc = check_value(&f[i], v, p, d, e))) {
            return rc;
        }
        if (jv_obj_set(a, out, f[i].name, jv_copy(a, v))) return ERR_NOMEM_RET(e);
    }
    if (filled) *filled = out;
    return 0;
}

/* --------------------------------------------------- rules and schemas */

/* "module.function" split at its last dot; module and function are names
 * of the rules folder (letters, digits, _ and, in the module, dots). */
static int split_rule(const char *rule, char *module, size_t mn, char *fn, size_t fnn)
{
    const char *dot = strrchr(rule, '.');
    if (!dot || dot == rule || !dot[1] || rule[0] == '.' || (size_t)(dot - rule) >= mn || strlen(dot + 1) >= fnn) return -1;
    for (const char *c = rule; *c; c++) {
        int word = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_';
        /* dots separate words: not doubled, and none in the function */
        if (!word && !(*c == '.' && c[1] != '.')) return -1;
    }
    snprintf(module, mn, "%.*s", (int)(dot - rule), rule);
    snprintf(fn, fnn, "%s", dot + 1);
    return 0;
}

/* The schema a pricing rule declares, in `a`; sname gets "module.schemas.fn". */
static int rule_schema(ruleset *rs, const char *rule, const char *path, jv_arena *a, const jv **schema, char *sname,
                       size_t sn, err *e)
{
    char module[96], fn[96];
    if (split_rule(rule, module, sizeof module, fn, sizeof fn))
        return err_field(e, ERR_INVALID, "invalid_field", path, "%s: '%s' is not a rule name (module.function)", path, rule);
    if (!lhost_has(rs->host, module, fn))
        return err_field(e, ERR_INVALID, "unknown_rule", path, "%s: the live rules have no function %s", path, rule);
    snprintf(sname, sn, "%s.schemas.%s", module, fn);
    jv *all = NULL;
    err sub;
    int rc = lhost_get_field(rs->host, module, "schemas", a, &all, &sub);
    const jv *s = NULL;
    if (rc == 0 && all->kind == JV_OBJ) s = jv_get(all, fn);
    else if (rc == 0 && !(all->kind == JV_ARR && all->u.arr.n == 0))
        return schema_fail(e, module, "schemas", "must be a table { function = { parameter = { type = ... } } }");
    else if (rc && rc != ERR_NOTFOUND)
        return schema_fail(e, module, "schemas", "%s", sub.msg);   /* e.g. a function inside the table */
    if (!s)
        return err_field(e, ERR_INVALID, "rule_without_schema", path,
                         "%s: %s declares no parameters, so it cannot price a product (add %s.schemas.%s)", path, rule,
                         module, fn);
    *schema = s;
    return 0;
}

/* Validates the parameters of `rule`. A rule whose schema declares `price`
 * gets it from the product version (`price`, checked at price_path): then
 * params must not carry one. */
static int check_params_at(ruleset *rs, db *d, const char *rule, const char *rule_path, const jv *params,
                           const char *params_path, const int64_t *price, const char *price_path, jv_arena *a,
                           jv **filled, err *e)
{
    const jv *schema = NULL;
    char sname[160];
    int rc = rule_schema(rs, rule, rule_path, a, &schema, sname, sizeof sname, e);
    if (rc) return rc;
    if (!schema) return err_set(e, ERR_INTERNAL, "%s: no parameter schema", sname);
    const char *skip = NULL;
    if (price) {
        if (params && params->kind == JV_OBJ && jv_get(params, "price")) {
            char p[96];
            join(p, sizeof p, params_path, "price");
            return err_field(e, ERR_INVALID, "unknown_field", p, "%s: the price is the version's price field, not a parameter", p);
        }
        const jv *ps = schema->kind == JV_OBJ ? jv_get(schema, "price") : NULL;
        if (ps) {
            /* the schema's price field constrains the version's price */
            jv_member m = {"price", 5, (jv *)ps};
            fspec f;
            if ((rc = parse_spec(sname, &m, &f, e))) return rc;
            jv pv = {.kind = JV_INT, .u.i = *price};
            if ((rc = check_value(&f, &pv, price_path, d, e))) return rc;
            skip = "price";
        }
    }
    return check_fields(sname, schema, params, params_path, d, skip, a, filled, e);
}

int catalog_check_params(ruleset *rs, const char *rule, const jv *params, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    int rc = check_params_at(rs, NULL, rule, "rule", params, "params", NULL, NULL, &a, NULL, e);
    jv_arena_free(&a);
    return rc;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int check_tax_category(ruleset *rs, const jv *v, const char *path, jv_arena *a, err *e)
{
    if (!v || v->kind != JV_STR) return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be a string", path);
    jv *rates = NULL;
    err sub;
    int rc = lhost_get_field(rs->host, "tax", "rates", a, &rates, &sub);
    if (rc == ERR_NOTFOUND || (!rc && rates->kind != JV_OBJ))
        return err_field(e, ERR_INVALID, "unknown_tax_category", path, "%s: the live rules define no tax.rates", path);
    if (rc) return err_field(e, ERR_RULE, "invalid_tax_rates", path, "%s: tax.rates: %s", path, sub.msg);
    if (v->u.str.len < 32 && jv_getn(rates, v->u.str.s, v->u.str.len)) return 0;
    /* named in byte order: a Lua table has none of its own */
    const char **names = jv_alloc(a, (rates->u.obj.n + 1) * sizeof *names);
    if (!names) return ERR_NOMEM_RET(e);
    for (size_t i = 0; i < rates->u.obj.n; i++) names[i] = rates->u.obj.m[i].key;
    qsort(names, rates->u.obj.n, sizeof *names, str_cmp);
    char list[256] = "";
    size_t off = 0;
    for (size_t i = 0; i < rates->u.obj.n && off < sizeof list; i++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", names[i]);
    return err_field(e, ERR_INVALID, "unknown_tax_category", path, "%s: '%.40s' is not a tax category of tax.rates (%s)", path,
                     v->u.str.s, list);
}

/* ------------------------------------------------- attributes by kind */

/* The attributes of each product kind, in the format of rule schemas. */
static const char *const attr_schemas[][2] = {
    {"plan",
     "{\"download_mbps\":{\"type\":\"integer\",\"min\":1,\"max\":100000,\"order\":1,"
     "\"label\":{\"zh\":\"下行带宽（Mbps）\",\"en\":\"Download (Mbps)\"}},"
     "\"upload_mbps\":{\"type\":\"integer\",\"min\":1,\"max\":100000,\"order\":2,"
     "\"label\":{\"zh\":\"上行带宽（Mbps）\",\"en\":\"Upload (Mbps)\"}},"
     "\"period\":{\"type\":\"enum\",\"values\":[\"month\",\"quarter\",\"half_year\",\"year\"],\"order\":3,"
     "\"label\":{\"zh\":\"计费周期\",\"en\":\"Billing period\"}},"
     "\"billing\":{\"type\":\"enum\",\"values\":[\"prepaid\",\"postpaid\"],\"order\":4,"
     "\"label\":{\"zh\":\"付费方式\",\"en\":\"Billing\"},"
     "\"help\":{\"zh\":\"prepaid 预付费；postpaid 后付费\",\"en\":\"prepaid: paid ahead; postpaid: billed after use\"}},"
     "\"min_contract_months\":{\"type\":\"integer\",\"min\":0,\"max\":120,\"default\":0,\"order\":5,"
     "\"label\":{\"zh\":\"最短合约期（月）\",\"en\":\"Minimum contract (months)\"}},"
     "\"early_termination_percent\":{\"type\":\"integer\",\"min\":0,\"max\":100,\"required\":false,\"order\":6,"
     "\"label\":{\"zh\":\"提前解约违约金比例（%）\",\"en\":\"Early termination fee (%)\"},"
     "\"help\":{\"zh\":\"合约期内每剩余一个月按月费的该百分比收取；不填则用规则的默认值\","
     "\"en\":\"Of the monthly price, for every month left in the contract; empty: the rules' default\"}},"
     "\"contract_lock\":{\"type\":\"boolean\",\"default\":false,\"order\":7,"
     "\"label\":{\"zh\":\"合约期内不可解约\",\"en\":\"Locked during the contract\"}}}"},
    {"addon",
     "{\"fits\":{\"type\":\"codes\",\"kind\":\"plan\",\"default\":[],\"order\":1,"
     "\"label\":{\"zh\":\"适用套餐\",\"en\":\"Fits plans\"},"
     "\"help\":{\"zh\":\"可搭配的套餐编码；留空表示所有套餐\",\"en\":\"Codes of the plans it goes with; empty: every plan\"}}}"},
    {"fee",
     "{\"purpose\":{\"type\":\"enum\",\"values\":[\"installation\",\"relocation\",\"repair_visit\",\"other\"],\"order\":1,"
     "\"label\":{\"zh\":\"收费项目\",\"en\":\"Purpose\"}}}"},
    {"deposit",
     "{\"device\":{\"type\":\"enum\",\"values\":[\"onu\",\"stb\",\"router\"],\"order\":1,"
     "\"label\":{\"zh\":\"设备\",\"en\":\"Device\"}},"
     "\"refundable\":{\"type\":\"boolean\",\"default\":true,\"order\":2,"
     "\"label\":{\"zh\":\"可退还\",\"en\":\"Refundable\"}}}"},
    {"promotion",
     "{\"promo_type\":{\"type\":\"enum\",\"values\":[\"first_year\",\"loyalty\",\"bundle\",\"coupon\",\"tag_price\"],\"order\":1,"
     "\"label\":{\"zh\":\"优惠类型\",\"en\":\"Promotion type\"}},"
     "\"applies_to\":{\"type\":\"enum\",\"values\":[\"plan\",\"addon\",\"fee\",\"any\"],\"order\":2,"
     "\"label\":{\"zh\":\"优惠对象\",\"en\":\"Applies to\"},"
     "\"help\":{\"zh\":\"打折的费用项类别\",\"en\":\"The kind of bill line it discounts\"}},"
     "\"products\":{\"type\":\"codes\",\"default\":[],\"order\":3,"
     "\"label\":{\"zh\":\"适用产品\",\"en\":\"Products\"},"
     "\"help\":{\"zh\":\"留空表示该类别的所有产品\",\"en\":\"Empty: every product of that kind\"}},"
     "\"requires\":{\"type\":\"codes\",\"default\":[],\"order\":4,"
     "\"label\":{\"zh\":\"捆绑条件\",\"en\":\"Requires\"},"
     "\"help\":{\"zh\":\"捆绑优惠：客户须同时订购的产品\",\"en\":\"Bundle discount: products the customer must also take\"}},"
     "\"min_tenure_months\":{\"type\":\"integer\",\"min\":0,\"max\":600,\"default\":0,\"order\":5,"
     "\"label\":{\"zh\":\"最短在网月数\",\"en\":\"Minimum tenure (months)\"},"
     "\"help\":{\"zh\":\"老用户优惠：在网满多少个月\",\"en\":\"Loyalty discount: months the customer has been with us\"}},"
     "\"coupon\":{\"type\":\"string\",\"min\":4,\"max\":32,\"required\":false,\"order\":6,"
     "\"label\":{\"zh\":\"优惠码\",\"en\":\"Coupon code\"},"
     "\"help\":{\"zh\":\"仅限优惠券类型\",\"en\":\"Coupons only\"}},"
     "\"stackable\":{\"type\":\"boolean\",\"default\":false,\"order\":7,"
     "\"label\":{\"zh\":\"可与其他优惠叠加\",\"en\":\"Combines with other promotions\"}}}"},
};

static int attr_schema(const char *kind, jv_arena *a, const jv **out, err *e)
{
    for (size_t i = 0; i < sizeof attr_schemas / sizeof *attr_schemas; i++) {
        if (strcmp(attr_schemas[i][0], kind)) continue;
        jv *v;
        const char *t = attr_schemas[i][1];
        if (json_parse(t, strlen(t), NULL, a, &v, e)) return err_prefix(e, "attribute schema of %s", kind);
        *out = v;
        return 0;
    }
    return err_field(e, ERR_INVALID, "invalid_field", "kind", "unknown product kind '%s'", kind);
}

/* What the field types cannot say: the rules between attributes. */
static int check_promotion(const jv *at, const char *path, db *d, err *e)
{
    const jv *type = jv_get(at, "promo_type"), *coupon = jv_get(at, "coupon"), *req = jv_get(at, "requires");
    const jv *to = jv_get(at, "applies_to"), *prods = jv_get(at, "products");
    char p[96];
    int is_coupon = !strcmp(type->u.str.s, "coupon");
    join(p, sizeof p, path, "coupon");
    if (is_coupon && !coupon) return err_field(e, ERR_INVALID, "missing_field", p, "%s is required for a coupon promotion", p);
    if (!is_coupon && coupon) return err_field(e, ERR_INVALID, "invalid_field", p, "%s: only a coupon promotion has a coupon code", p);
    join(p, sizeof p, path, "requires");
    if (!strcmp(type->u.str.s, "bundle") && jv_len(req) == 0)
        return err_field(e, ERR_INVALID, "missing_field", p, "%s: a bundle discount names the products it needs", p);
    if (strcmp(to->u.str.s, "any")) {
        /* the products it is limited to must be of the kind it applies to */
        fspec f = {.name = "products", .type = FT_CODES, .kind = to->u.str.s};
        join(p, sizeof p, path, "products");
        return check_value(&f, prods, p, d, e);
    }
    return 0;
}

static int check_attrs(db *d, const char *kind, const jv *in, const char *path, jv_arena *a, jv **filled, err *e)
{
    const jv *schema = NULL;
    int rc = attr_schema(kind, a, &schema, e);
    if (!rc && !schema) rc = err_set(e, ERR_INTERNAL, "no attribute schema for %s", kind);
    char sname[48];
    snprintf(sname, sizeof sname, "attributes of a%s %s", kind[0] == 'a' ? "n" : "", kind);
    if (!rc) rc = check_fields(sname, schema, in, path, d, NULL, a, filled, e);
    if (!rc && !strcmp(kind, "promotion")) rc = check_promotion(*filled, path, d, e);
    return rc;
}

/* --------------------------------------------------- regions and tags */

static int check_list(const jv *v, const char *path, int regions, err *e)
{
    if (v->kind != JV_ARR) return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be a list of strings", path);
    if (v->u.arr.n > LIST_MAX) return err_field(e, ERR_INVALID, "out_of_range", path, "%s has more than %d entries", path, LIST_MAX);
    for (size_t i = 0; i < v->u.arr.n; i++) {
        const jv *s = v->u.arr.items[i];
        char p[96];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        size_t max = regions ? REGION_MAX_BYTES : TAG_MAX_BYTES;
        if (s->kind != JV_STR || !clean_text(s->u.str.s, s->u.str.len) || s->u.str.len > max)
            return err_field(e, ERR_INVALID, "invalid_field", p, "%s must be %s of at most %zu bytes without control characters or outer spaces", p,
                             regions ? "an address prefix" : "a tag", max);
        if (regions) {
            /* province/city/district/...: every part named, at most the
             * depth of an address */
            const char *t = s->u.str.s;
            int parts = 1, bad = t[0] == '/' || t[s->u.str.len - 1] == '/' || strstr(t, "//") != NULL;
            for (const char *c = t; *c; c++) parts += *c == '/';
            if (bad || parts > 9)
                return err_field(e, ERR_INVALID, "invalid_field", p,
                                 "%s must be an address prefix such as \"浙江省/杭州市/西湖区\" (up to 9 parts, none empty)", p);
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(v->u.arr.items[j]->u.str.s, s->u.str.s))
                return err_field(e, ERR_INVALID, "duplicate", p, "%s repeats %s[%zu]", p, path, j);
    }
    return 0;
}

/* ------------------------------------------------------------ versions */

typedef struct vdata {
    char effective_from[11];
    int64_t price;
    int includes_tax;
    char tax_category[32];
    char rule[96];
    jv *params, *attrs;
    const jv *regions, *tags;
} vdata;

static const char *const version_keys[] = {"effective_from", "price", "price_includes_tax", "tax_category", "rule",
                                           "params",         "attrs", "regions",            "tags",         NULL};

/* Validates a version object (the fields it leaves out come from `base`,
 * the latest version, or their defaults) into vd. Errors name path.field. */
static int check_version(db *d, ruleset *rs, const char *kind, const jv *in, const product_version *base,
                         const char *path, jv_arena *a, vdata *vd, err *e)
{
    char p[96];
    memset(vd, 0, sizeof *vd);
    if (!in || in->kind != JV_OBJ) return err_field(e, ERR_INVALID, "invalid_field", path, "%s must be an object", path[0] ? path : "the version");
    for (size_t i = 0; i < in->u.obj.n; i++)
        if (!in_list(in->u.obj.m[i].key, version_keys)) {
            join(p, sizeof p, path, in->u.obj.m[i].key);
            return err_field(e, ERR_INVALID, "unknown_field", p, "unknown field %s", p);
        }
    const jv *v;

    join(p, sizeof p, path, "effective_from");
    if ((v = jv_get(in, "effective_from"))) {
        if (!is_date(v)) return err_field(e, ERR_INVALID, "invalid_date", p, "%s must be a date \"YYYY-MM-DD\"", p);
        snprintf(vd->effective_from, sizeof vd->effective_from, "%s", v->u.str.s);
    } else if (base) {
        return err_field(e, ERR_INVALID, "missing_field", p, "%s is required: the date the new version starts", p);
    } else {
        today(vd->effective_from);
    }

    join(p, sizeof p, path, "price");
    if ((v = jv_get(in, "price"))) {
        if (v->kind == JV_NUM)
            return err_field(e, ERR_INVALID, "invalid_money", p, "%s must be an integer count of fen (a number with a fraction is never money)", p);
        if (v->kind != JV_INT) return err_field(e, ERR_INVALID, "invalid_field", p, "%s must be an amount in fen (an integer)", p);
        if (v->u.i < 0 || v->u.i > PRICE_MAX)
            return err_field(e, ERR_INVALID, "out_of_range", p, "%s must be from 0 to %lld fen (discounts are promotions, not negative prices)", p, PRICE_MAX);
        vd->price = v->u.i;
    } else if (base) {
        vd->price = base->price;
    } else {
        return err_field(e, ERR_INVALID, "missing_field", p, "%s is required (fen, tax included)", p);
    }

    join(p, sizeof p, path, "price_includes_tax");
    if ((v = jv_get(in, "price_includes_tax"))) {
        if (v->kind != JV_BOOL) return err_field(e, ERR_INVALID, "invalid_field", p, "%s must be true or false", p);
        vd->includes_tax = v->u.b;
    } else {
        vd->includes_tax = base ? base->price_includes_tax : 1;
    }

    join(p, sizeof p, path, "tax_category");
    if (!(v = jv_get(in, "tax_category")) && base && !(v = jv_str(a, base->tax_category))) return ERR_NOMEM_RET(e);
    if (!v) return err_field(e, ERR_INVALID, "missing_field", p, "%s is required", p);
    int rc = check_tax_category(rs, v, p, a, e);
    if (rc) return rc;
    snprintf(vd->tax_category, sizeof vd->tax_category, "%s", v->u.str.s);

    join(p, sizeof p, path, "rule");
    if (!(v = jv_get(in, "rule")) && base && !(v = jv_str(a, base->rule))) return ERR_NOMEM_RET(e);
    if (!v) return err_field(e, ERR_INVALID, "missing_field", p, "%s is required: the pricing rule, module.function", p);
    if (v->kind != JV_STR || v->u.str.len >= sizeof vd->rule || strlen(v->u.str.s) != v->u.str.len)
        return err_field(e, ERR_INVALID, "invalid_field", p, "%s must be a rule name, module.function", p);
    snprintf(vd->rule, sizeof vd->rule, "%s", v->u.str.s);

    char pp[96], pricep[96];
    join(pp, sizeof pp, path, "params");
    join(pricep, sizeof pricep, path, "price");
    if (!(v = jv_get(in, "params")) && base) v = base->params;
    if ((rc = check_params_at(rs, d, vd->rule, p, v, pp, &vd->price, pricep, a, &vd->params, e))) return rc;

    join(p, sizeof p, path, "attrs");
    if (!(v = jv_get(in, "attrs")) && base) v = base->attrs;
    if ((rc = check_attrs(d, kind, v, p, a, &vd->attrs, e))) return rc;

    join(p, sizeof p, path, "regions");
    if (!(v = jv_get(in, "regions"))) v = base && base->regions ? base->regions : jv_arr(a);
    if (!v) return ERR_NOMEM_RET(e);
    if ((rc = check_list(v, p, 1, e))) return rc;
    vd->regions = v;

    join(p, sizeof p, path, "tags");
    if (!(v = jv_get(in, "tags"))) v = base && base->tags ? base->tags : jv_arr(a);
    if (!v) return ERR_NOMEM_RET(e);
    if ((rc = check_list(v, p, 0, e))) return rc;
    vd->tags = v;
    return 0;
}

static int insert_version(db *d, int64_t product_id, int number, const vdata *vd, const char *by, err *e)
{
    buf params = {0}, attrs = {0}, regions = {0}, tags = {0};
    int rc = json_write(&params, vd->params);
    if (!rc) rc = json_write(&attrs, vd->attrs);
    if (!rc) rc = json_write(&regions, vd->regions);
    if (!rc) rc = json_write(&tags, vd->tags);
    if (rc) rc = ERR_NOMEM_RET(e);
    char now[25];
    db_now(now);
    if (!rc)
        rc = db_run(d, e,
                    "INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, "
                    "tax_category, rule, params, attrs, regions, tags, created_at, created_by) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    "iisiissssssss", product_id, (int64_t)number, vd->effective_from, vd->price, (int64_t)vd->includes_tax,
                    vd->tax_category, vd->rule, buf_cstr(&params), buf_cstr(&attrs), buf_cstr(&regions), buf_cstr(&tags),
                    now, by);
    if (rc == ERR_CONFLICT)
        err_field(e, ERR_CONFLICT, "version_exists", "effective_from", "the product already has a version from %s",
                  vd->effective_from);
    buf_free(&params);
    buf_free(&attrs);
    buf_free(&regions);
    buf_free(&tags);
    return rc;
}

static int check_name(const jv *v, err *e)
{
    if (!v) return err_field(e, ERR_INVALID, "missing_field", "name", "name is required");
    if (v->kind != JV_STR || !clean_text(v->u.str.s, v->u.str.len) || v->u.str.len > NAME_MAX_BYTES)
        return err_field(e, ERR_INVALID, "invalid_field", "name",
                         "name must be 1-%d bytes of text without control characters or outer spaces", NAME_MAX_BYTES);
    return 0;
}

int catalog_create(db *d, ruleset *rs, const jv *in, const char *by, int64_t *id, err *e)
{
    static const char *const keys[] = {"code", "kind", "name", "status", "version", NULL};
    if (!in || in->kind != JV_OBJ) return err_field(e, ERR_INVALID, "invalid_body", "", "expected a JSON object");
    for (size_t i = 0; i < in->u.obj.n; i++)
        if (!in_list(in->u.obj.m[i].key, keys))
            return err_field(e, ERR_INVALID, "unknown_field", in->u.obj.m[i].key, "unknown field %s", in->u.obj.m[i].key);
    const jv *code = jv_get(in, "code"), *kind = jv_get(in, "kind"), *status = jv_get(in, "status");
    if (!code) return err_field(e, ERR_INVALID, "missing_field", "code", "code is required");
    if (code->kind != JV_STR || !code_valid(code->u.str.s, code->u.str.len))
        return err_field(e, ERR_INVALID, "invalid_field", "code", "code must be 2-48 of A-Z 0-9 _ - (upper case)");
    if (!kind) return err_field(e, ERR_INVALID, "missing_field", "kind", "kind is required");
    if (kind->kind != JV_STR || !in_list(kind->u.str.s, kinds))
        return err_field(e, ERR_INVALID, "invalid_field", "kind", "kind must be plan, addon, fee, deposit or promotion");
    int rc = check_name(jv_get(in, "name"), e);
    if (rc) return rc;
    const char *st = "draft";
    if (status && status->kind != JV_NULL) {
        if (status->kind != JV_STR || (strcmp(status->u.str.s, "draft") && strcmp(status->u.str.s, "active")))
            return err_field(e, ERR_INVALID, "invalid_field", "status", "a new product is draft (the default) or active");
        st = status->u.str.s;
    }
    if (!jv_get(in, "version")) return err_field(e, ERR_INVALID, "missing_field", "version", "version is required: the first price and terms");

    jv_arena a;
    jv_arena_init(&a, 0);
    vdata vd;
    rc = check_version(d, rs, kind->u.str.s, jv_get(in, "version"), NULL, "version", &a, &vd, e);
    char t[11];
    today(t);
    if (!rc && !strcmp(st, "active") && strcmp(vd.effective_from, t) < 0)
        rc = err_field(e, ERR_INVALID, "effective_from_in_past", "version.effective_from",
                       "version.effective_from: an active product's price cannot start in the past (%s is before "
                       "today, %s); create it as a draft to enter past terms",
                       vd.effective_from, t);
    int64_t pid = 0;
    if (!rc) rc = db_begin(d, e);
    if (!rc) {
        char now[25];
        db_now(now);
        rc = db_run(d, e, "INSERT INTO products (code, kind, name, status, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                    "ssssss", code->u.str.s, kind->u.str.s, jv_get(in, "name")->u.str.s, st, now, by);
        if (rc == ERR_CONFLICT) err_field(e, ERR_CONFLICT, "exists", "code", "product %s already exists", code->u.str.s);
        pid = db_last_id(d);
        if (!rc) rc = insert_version(d, pid, 1, &vd, by, e);
        if (!rc) rc = db_commit(d, e);
        else db_rollback(d);
    }
    jv_arena_free(&a);
    if (!rc && id) *id = pid;
    return rc;
}

int catalog_add_version(db *d, ruleset *rs, int64_t product_id, const jv *in, const char *by, err *e)
{
    product p;
    int rc = catalog_product_by_id(d, product_id, &p, e);
    if (rc) return rc;
    jv_arena a;
    jv_arena_init(&a, 0);
    /* the latest version is read inside the transaction that adds the
     * next one, so two additions cannot both pass the ordering check */
    rc = db_begin(d, e);
    if (rc) {
        jv_arena_free(&a);
        return rc;
    }
    product_version base;
    vdata vd;
    rc = catalog_version_at(d, product_id, "9999-12-31", &a, &base, e);
    if (rc == ERR_NOTFOUND) rc = err_set(e, ERR_INTERNAL, "product %s has no version", p.code);
    if (!rc) rc = check_version(d, rs, p.kind, in, &base, "", &a, &vd, e);
    if (!rc && strcmp(vd.effective_from, base.effective_from) <= 0)
        rc = err_field(e, ERR_CONFLICT, "effective_from_not_after_latest", "effective_from",
                       "effective_from: a new version must start after the latest one (version %d from %s): prices "
                       "never rewrite history",
                       base.version, base.effective_from);
    char t[11];
    today(t);
    if (!rc && strcmp(p.status, "draft") && strcmp(vd.effective_from, t) < 0)
        rc = err_field(e, ERR_INVALID, "effective_from_in_past", "effective_from",
                       "effective_from: %s is before today (%s): only a draft product takes versions that start in "
                       "the past",
                       vd.effective_from, t);
    if (!rc) rc = insert_version(d, product_id, base.version + 1, &vd, by, e);
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    jv_arena_free(&a);
    return rc;
}

int catalog_set_status(db *d, int64_t product_id, const char *status, err *e)
{
    static const char *const statuses[] = {"draft", "active", "retired", NULL};
    if (!status || !in_list(status, statuses))
        return err_field(e, ERR_INVALID, "invalid_field", "status", "status must be draft, active or retired");
    product p;
    int rc = catalog_product_by_id(d, product_id, &p, e);
    if (rc) return rc;
    if (!strcmp(p.status, status)) return 0;
    /* forward only: back to draft would allow past-dated prices on
     * something already sold, and retired is final */
    int ok = (!strcmp(p.status, "draft") && (!strcmp(status, "active") || !strcmp(status, "retired"))) ||
             (!strcmp(p.status, "active") && !strcmp(status, "retired"));
    if (!ok)
        return err_field(e, ERR_CONFLICT, "invalid_transition", "status",
                         "product %s is %s and cannot become %s (draft -> active -> retired; retired is final)", p.code,
                         p.status, status);
    rc = db_run(d, e, "UPDATE products SET status = ? WHERE id = ? AND status = ?", "sis", status, product_id, p.status);
    if (!rc && db_changes(d) != 1)
        rc = err_field(e, ERR_CONFLICT, "invalid_transition", "status", "product %s changed status meanwhile", p.code);
    return rc;
}

/* -------------------------------------------------------- availability */

/* Does "province/city/district/..." name the first parts of the address?
 * Whole parts only: "浙江省/杭州" does not match 杭州市. */
static int region_matches(const char *r, size_t n, const jv *addr)
{
    static const char *const order[] = {"province", "city", "district", "street", "community",
                                        "building", "unit", "floor",    "room",   NULL};
    if (!addr || addr->kind != JV_OBJ) return 0;
    size_t i = 0;
    for (int k = 0; order[k]; k++) {
        size_t j = i;
        while (j < n && r[j] != '/') j++;
        const jv *v = jv_get(addr, order[k]);
        if (j == i || !v || v->kind != JV_STR || v->u.str.len != j - i || memcmp(v->u.str.s, r + i, j - i)) return 0;
        if (j == n) return 1;
        i = j + 1;
    }
    return 0;
}

int catalog_available(const product_version *v, const jv *address, const jv *tags)
{
    /* retired products keep serving their subscribers but are not sold */
    if (!v || strcmp(v->status, "active") != 0) return 0;
    if (v->regions && v->regions->kind == JV_ARR && v->regions->u.arr.n) {
        int ok = 0;
        for (size_t i = 0; !ok && i < v->regions->u.arr.n; i++) {
            const jv *r = v->regions->u.arr.items[i];
            ok = r->kind == JV_STR && region_matches(r->u.str.s, r->u.str.len, address);
        }
        if (!ok) return 0;
    }
    if (v->tags && v->tags->kind == JV_ARR && v->tags->u.arr.n) {
        /* sold to customers with any one of its tags */
        int ok = 0;
        for (size_t i = 0; !ok && i < v->tags->u.arr.n; i++) {
            const jv *t = v->tags->u.arr.items[i];
            for (size_t j = 0; !ok && t->kind == JV_STR && j < jv_len(tags); j++) {
                const jv *c = jv_at(tags, j);
                ok = c && c->kind == JV_STR && c->u.str.len == t->u.str.len && !memcmp(c->u.str.s, t->u.str.s, t->u.str.len);
            }
        }
        if (!ok) return 0;
    }
    return 1;
}
