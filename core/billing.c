/* billing.c - one subscription's bill: the context from the database, the
 * rules' schedule and steps, and the checks of what they return (see
 * billing.h). Nothing here decides a price or writes a row. */
#include "billing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "date.h"
#include "ledger.h"

#define RULE_SCHEDULE "billing.schedule"
#define MAX_STEPS 64
#define MAX_LINES 2000
#define DESCRIPTION_MAX 200

static const char *const KINDS[] = {"recurring", "addon", "one_time", "proration", "discount",
                                    "deposit", "credit", "fee", "adjustment", NULL};
/* kinds whose amount may be below zero */
static const char *const NEGATIVE_KINDS[] = {"proration", "discount", "credit", "adjustment", NULL};
static const char *const LINE_KEYS[] = {"kind", "description", "amount", "quantity", "unit_price", "tax_category",
                                        "product", "version", "period", "detail", "charge", "deposit", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (!strcmp(*list, s)) return 1;
    return 0;
}

/* ------------------------------------------------------------------ cache */

typedef struct pversion {
    product_version v;
    jv *obj;                    /* {code, name, version, price, ...} built once */
} pversion;

typedef struct pproduct {
    int64_t id;
    char code[49], kind[16], name[128], status[16];
    pversion *vers;             /* oldest first */
    size_t nvers;
} pproduct;

typedef struct step_def {
    char name[64];              /* as listed in billing.steps */
    char rule[128];             /* module.function */
    char file[128];
    int line;                   /* where the function is defined; 0 unknown */
} step_def;

struct billing_cache {
    jv_arena a;
    ruleset *rs;
    pproduct *prods;            /* by id */
    size_t nprods;
    size_t *promos;             /* indexes of promotion products */
    size_t npromos;
    const jv *rates;            /* tax.rates or NULL */
    step_def steps[MAX_STEPS];
    size_t nsteps;
    step_def schedule;
};

static int parse_json_col(db_stmt *s, int col, jv_arena *a, const jv **out, err *e)
{
    jv *v;
    const char *t = db_col_text(s, col);
    int rc = json_parse(t, strlen(t), NULL, a, &v, e);
    if (rc) return rc;
    *out = v;
    return 0;
}

/* The line of the file where module.function is defined ("function
 * M.name(" or "name = function"), for errors that are not the rule's own
 * runtime errors; 0 when it cannot be found. */
static void locate(ruleset *rs, step_def *sd)
{
    const char *dot = strrchr(sd->rule, '.');
    if (!dot) return;
    char path[160];
    size_t ml = (size_t)(dot - sd->rule);
    if (ml + 5 > sizeof path) return;
    for (size_t i = 0; i < ml; i++) path[i] = sd->rule[i] == '.' ? '/' : sd->rule[i];
    memcpy(path + ml, ".lua", 5);
    snprintf(sd->file, sizeof sd->file, "%s", path);
    const char *fn = dot + 1;
    size_t fl = strlen(fn);
    for (size_t i = 0; i < rs->snap->nfiles; i++) {
        const rule_file *f = &rs->snap->files[i];
        if (strcmp(f->path, path)) continue;
        int line = 1;
        const char *p = f->text, *end = f->text + f->len;
        while (p < end) {
            const char *eol = memchr(p, '\n', (size_t)(end - p));
            if (!eol) eol = end;
            const char *q = p;
            while (q < eol && (*q == ' ' || *q == '\t')) q++;
            if (eol - q > 9 && !memcmp(q, "function ", 9)) {
                const char *n = q + 9, *paren = memchr(n, '(', (size_t)(eol - n));
                if (paren && (size_t)(paren - n) >= fl && !memcmp(paren - fl, fn, fl) &&
                    (paren - fl == n || paren[-(long)fl - 1] == '.' || paren[-(long)fl - 1] == ':')) {
                    sd->line = line;
                    return;
                }
            }
            p = eol + 1;
            line++;
        }
        return;
    }
}

static void step_rule(const char *name, char *out, size_t n)
{
    size_t l = strlen(name);
    const char *pre = strchr(name, '.') ? "" : "billing.";
    size_t pl = strlen(pre);
    if (pl + l + 1 > n) l = n - pl - 1;
    memcpy(out, pre, pl);
    memmove(out + pl, name, l);
    out[pl + l] = '\0';
}

static int load_catalog(db *d, billing_cache *c, err *e)
{
    int64_t n = 0;
    int rc = db_get_int(d, e, &n, "SELECT COUNT(*) FROM products", "");
    if (rc) return rc;
    c->prods = jv_alloc(&c->a, sizeof *c->prods * (size_t)(n ? n : 1));
    c->promos = jv_alloc(&c->a, sizeof *c->promos * (size_t)(n ? n : 1));
    if (!c->prods || !c->promos) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d, "SELECT id, code, kind, name, status, "
                               "(SELECT COUNT(*) FROM product_versions v WHERE v.product_id = p.id) "
                               "FROM products p ORDER BY id", e);
    if (!s) return e->code;
    while ((rc = db_step(d, s, e)) == DB_ROW && c->nprods < (size_t)n) {
        pproduct *p = &c->prods[c->nprods++];
        memset(p, 0, sizeof *p);
        p->id = db_col_int(s, 0);
        snprintf(p->code, sizeof p->code, "%s", db_col_text(s, 1));
        snprintf(p->kind, sizeof p->kind, "%s", db_col_text(s, 2));
        snprintf(p->name, sizeof p->name, "%s", db_col_text(s, 3));
        snprintf(p->status, sizeof p->status, "%s", db_col_text(s, 4));
        int64_t nv = db_col_int(s, 5);
        p->vers = jv_alloc(&c->a, sizeof *p->vers * (size_t)(nv ? nv : 1));
        if (!p->vers) {
            db_done(s);
            return ERR_NOMEM_RET(e);
        }
        if (!strcmp(p->kind, "promotion")) c->promos[c->npromos++] = c->nprods - 1;
    }
    db_done(s);
    if (rc < 0) return rc;
    s = db_prepare(d, "SELECT id, product_id, version, effective_from, price, price_includes_tax, tax_category, rule, "
                      "params, attrs, regions, tags FROM product_versions ORDER BY product_id, effective_from", e);
    if (!s) return e->code;
    size_t pi = 0;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        int64_t pid = db_col_int(s, 1);
        while (pi < c->nprods && c->prods[pi].id < pid) pi++;
        if (pi == c->nprods || c->prods[pi].id != pid) continue;
        pproduct *p = &c->prods[pi];
        pversion *pv = &p->vers[p->nvers];
        memset(pv, 0, sizeof *pv);
        product_version *v = &pv->v;
        v->id = db_col_int(s, 0);
        v->product_id = pid;
        v->version = (int)db_col_int(s, 2);
        snprintf(v->effective_from, sizeof v->effective_from, "%s", db_col_text(s, 3));
        v->price = db_col_int(s, 4);
        v->price_includes_tax = (int)db_col_int(s, 5);
        snprintf(v->tax_category, sizeof v->tax_category, "%s", db_col_text(s, 6));
        snprintf(v->rule, sizeof v->rule, "%s", db_col_text(s, 7));
        snprintf(v->status, sizeof v->status, "%s", p->status);
        if ((rc = parse_json_col(s, 8, &c->a, &v->params, e)) || (rc = parse_json_col(s, 9, &c->a, &v->attrs, e)) ||
            (rc = parse_json_col(s, 10, &c->a, &v->regions, e)) || (rc = parse_json_col(s, 11, &c->a, &v->tags, e))) {
            db_done(s);
            return err_prefix(e, "product %s version %d", p->code, v->version);
        }
        jv *o = jv_obj_sized(&c->a, 9);
        if (!o || jv_obj_set_str(&c->a, o, "code", p->code) || jv_obj_set_str(&c->a, o, "name", p->name) ||
            jv_obj_set_int(&c->a, o, "version", v->version) || jv_obj_set_int(&c->a, o, "price", v->price) ||
            jv_obj_set_bool(&c->a, o, "price_includes_tax", v->price_includes_tax) ||
            jv_obj_set_str(&c->a, o, "tax_category", v->tax_category) || jv_obj_set_str(&c->a, o, "rule", v->rule) ||
            jv_obj_set(&c->a, o, "params", (jv *)v->params) || jv_obj_set(&c->a, o, "attrs", (jv *)v->attrs)) {
            db_done(s);
            return ERR_NOMEM_RET(e);
        }
        pv->obj = o;
        p->nvers++;
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

int billing_cache_open(db *d, ruleset *rs, billing_cache **out, err *e)
{
    *out = NULL;
    if (!rs) return err_set(e, ERR_INTERNAL, "billing: no rule set is loaded");
    billing_cache *c = calloc(1, sizeof *c);
    if (!c) return ERR_NOMEM_RET(e);
    jv_arena_init(&c->a, 0);
    c->rs = rs;
    int rc = load_catalog(d, c, e);
    if (rc) goto fail;
    jv *rates = NULL;
    err ign;
    if (!lhost_get_field(rs->host, "tax", "rates", &c->a, &rates, &ign) && rates->kind == JV_OBJ) c->rates = rates;
    jv *steps = NULL;
    rc = lhost_get_field(rs->host, "billing", "steps", &c->a, &steps, e);
    if (rc) {
        rc = err_set(e, ERR_RULE, "the rules have no billing.steps (rules/billing.lua): %s", e->msg);
        goto fail;
    }
    if (steps->kind != JV_ARR) {
        rc = err_set(e, ERR_RULE, "billing.steps must be a list of step names, not a %s", jv_kind_name(steps->kind));
        goto fail;
    }
    if (steps->u.arr.n > MAX_STEPS) {
        rc = err_set(e, ERR_RULE, "billing.steps lists %zu steps; at most %d", steps->u.arr.n, MAX_STEPS);
        goto fail;
    }
    for (size_t i = 0; i < steps->u.arr.n; i++) {
        const jv *s = steps->u.arr.items[i];
        if (s->kind != JV_STR || s->u.str.len == 0 || s->u.str.len >= sizeof c->steps[0].name) {
            rc = err_set(e, ERR_RULE, "billing.steps[%zu] must be a step name (a function of billing.lua or "
                                      "module.function)", i + 1);
            goto fail;
        }
        step_def *sd = &c->steps[c->nsteps++];
        snprintf(sd->name, sizeof sd->name, "%s", s->u.str.s);
        step_rule(sd->name, sd->rule, sizeof sd->rule);
        const char *dot = strrchr(sd->rule, '.');
        char mod[128];
        snprintf(mod, sizeof mod, "%.*s", (int)(dot - sd->rule), sd->rule);
        if (!lhost_has(rs->host, mod, dot + 1)) {
            rc = err_set(e, ERR_RULE, "billing.steps[%zu]: there is no function %s in the rules", i + 1, sd->rule);
            goto fail;
        }
        locate(rs, sd);
    }
    snprintf(c->schedule.name, sizeof c->schedule.name, "schedule");
    snprintf(c->schedule.rule, sizeof c->schedule.rule, RULE_SCHEDULE);
    locate(rs, &c->schedule);
    *out = c;
    return 0;
fail:
    billing_cache_free(c);
    return rc;
}

void billing_cache_free(billing_cache *c)
{
    if (!c) return;
    jv_arena_free(&c->a);
    free(c);
}

static pproduct *product_by_id(billing_cache *c, int64_t id)
{
    size_t lo = 0, hi = c->nprods;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->prods[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->nprods && c->prods[lo].id == id ? &c->prods[lo] : NULL;
}

/* The version in force on day d (or the first one, for a day before it). */
static pversion *version_at(pproduct *p, const char *d)
{
    if (!p || p->nvers == 0) return NULL;
    pversion *best = NULL;
    for (size_t i = 0; i < p->nvers; i++)
        if (strcmp(p->vers[i].v.effective_from, d) <= 0) best = &p->vers[i];
    return best;
}

/* ------------------------------------------------------------------ errors */

typedef struct bctx {
    db *d;
    billing_cache *bc;
    ruleset *rs;
    jv_arena *a;
    bill *b;
    bill_error *f;
    err *e;
    int64_t sub_id;
    char as_of[11];
    const step_def *step;       /* the step being checked */
    char period_from[11], period_to[11];
    char start[11];             /* the subscription's start: no line is dated before it */
    int64_t credit_available;
    const jv *charges, *deposits;
    unsigned char *charge_used, *deposit_used;
    struct chg *chgs;           /* the subscription's applied changes (read_change_rows) */
    size_t nchgs;
} bctx;

__attribute__((format(printf, 3, 4))) static int refuse(bctx *x, const step_def *sd, const char *fmt, ...)
{
    bill_error *f = x->f;
    char what[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    memset(f, 0, sizeof *f);
    snprintf(f->code, sizeof f->code, "bad_output");
    snprintf(f->step, sizeof f->step, "%s", sd ? sd->name : "checks");
    if (sd) {
        snprintf(f->rule, sizeof f->rule, "%s", sd->rule);
        snprintf(f->file, sizeof f->file, "%s", sd->file);
        f->line = sd->line;
    }
    char where[300];
    if (!sd) snprintf(where, sizeof where, "checks after the steps");
    else if (!strcmp(sd->name, "schedule")) snprintf(where, sizeof where, "%s (%s:%d)", sd->rule, sd->file, sd->line);
    else snprintf(where, sizeof where, "steps.%s (%s:%d)", sd->name, sd->file, sd->line);
    snprintf(f->message, sizeof f->message, "customer %s, subscription %lld: %s: %s", x->b->customer,
             (long long)x->sub_id, where, what);
    return err_field(x->e, ERR_RULE, "bad_output", "", "%s", f->message);
}

/* A rule that raised an error (or was stopped by its budget). */
static int rule_failed(bctx *x, const step_def *sd)
{
    bill_error *f = x->f;
    const rule_error *re = lhost_last_error(x->rs->host);
    memset(f, 0, sizeof *f);
    snprintf(f->code, sizeof f->code, "rule_failed");
    snprintf(f->step, sizeof f->step, "%s", sd->name);
    snprintf(f->rule, sizeof f->rule, "%s", re->rule[0] ? re->rule : sd->rule);
    snprintf(f->file, sizeof f->file, "%s", re->file[0] ? re->file : sd->file);
    f->line = re->file[0] ? re->line : sd->line;
    char where[200];
    if (!strcmp(sd->name, "schedule")) snprintf(where, sizeof where, "%s", sd->rule);
    else snprintf(where, sizeof where, "steps.%s", sd->name);
    snprintf(f->message, sizeof f->message, "customer %s, subscription %lld: %s failed at %s:%d: %s", x->b->customer,
             (long long)x->sub_id, where, f->file, f->line, re->message[0] ? re->message : x->e->msg);
    return err_field(x->e, ERR_RULE, "rule_failed", "", "%s", f->message);
}

static const char *describe(const jv *v, char *out, size_t n)
{
    if (!v || v->kind == JV_NULL) snprintf(out, n, "nothing (nil)");
    else if (v->kind == JV_STR) snprintf(out, n, "a string (\"%.*s\")", (int)(v->u.str.len > 40 ? 40 : v->u.str.len), v->u.str.s);
    else if (v->kind == JV_INT) snprintf(out, n, "%lld", (long long)v->u.i);
    else if (v->kind == JV_NUM) {
        /* 100.0 reads "a float (100.0)": a whole number that is still not an integer */
        snprintf(out, n, "a float (%.17g", v->u.num);
        if (!strpbrk(out + 9, ".eEni")) strncat(out, ".0", n - strlen(out) - 1);
        strncat(out, ")", n - strlen(out) - 1);
    }
    else if (v->kind == JV_BOOL) snprintf(out, n, "a boolean (%s)", v->u.b ? "true" : "false");
    else snprintf(out, n, "a table");
    return out;
}

static int date_ok(const jv *v)
{
    int32_t dd;
    err e;
    return v && v->kind == JV_STR && v->u.str.len == 10 && date_parse(v->u.str.s, 10, &dd, &e) == 0;
}

/* ------------------------------------------------------------- context */

/* Sets key to a string when s is not empty (absent values are absent keys). */
static int set_opt(jv_arena *a, jv *o, const char *key, const char *s)
{
    if (!s || !s[0]) return 0;
    return jv_obj_set_str(a, o, key, s);
}

static jv *range(jv_arena *a, const char *from, const char *to)
{
    jv *o = jv_obj_sized(a, 2);
    if (!o || jv_obj_set_str(a, o, "from", from) || jv_obj_set_str(a, o, "to", to)) return NULL;
    return o;
}

/* A version object with more members: a shallow copy (the cached values
 * are shared; nothing changes them). */
static jv *extend(jv_arena *a, const jv *base, size_t more)
{
    jv *o = jv_obj_sized(a, base->u.obj.n + more);
    if (!o) return NULL;
    /* the members as they are, names included: the cache's outlive the bill */
    if (base->u.obj.n) memcpy(o->u.obj.m, base->u.obj.m, base->u.obj.n * sizeof *o->u.obj.m);
    o->u.obj.n = base->u.obj.n;
    return o;
}

static void max_date(char *dst, const char *s)
{
    if (s && s[0] && strcmp(s, dst) > 0) memcpy(dst, s, 11);
}
static void min_date(char *dst, const char *s)
{
    if (s && s[0] && strcmp(s, dst) < 0) memcpy(dst, s, 11);
}

/* s read as sscanf's "%4d-%2d-%2d" reads it (1, or 0 if it does not
 * match), without sscanf's cost when s starts as a date does. */
static int ymd(const char *s, int *y, int *m, int *d)
{
    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9')) return sscanf(s, "%4d-%2d-%2d", y, m, d) == 3;
    *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    *m = (s[5] - '0') * 10 + (s[6] - '0');
    *d = (s[8] - '0') * 10 + (s[9] - '0');
    return 1;
}

static int tenure_months(const char *since, const char *as_of)
{
    int y1, m1, d1, y2, m2, d2;
    if (!ymd(since, &y1, &m1, &d1) || !ymd(as_of, &y2, &m2, &d2)) return 0;
    int m = (y2 - y1) * 12 + (m2 - m1) - (d2 < d1 ? 1 : 0);
    return m < 0 ? 0 : m;
}

typedef struct subrow {
    int64_t id, customer_id, product_id;
    char status[16], billing[16], period[16], start[11], contract_end[11], next_bill[11], end[11], billed[11], paid[11];
    int anchor;
    char code[32], ctype[16], cstatus[16], since[11];
    jv *region;                 /* {province, city, district} of the service address, or {} */
    jv *previous;               /* {from, to} of the latest bill not void, or NULL */
    /* whether there can be rows for read_changes, read_items, read_charges,
     * read_tags (a superset of each one's conditions): most have none */
    int has_changes, has_items, has_charges, has_tags;
} subrow;

/* src into a fixed buffer, cut where snprintf("%s") would cut it (a
 * context copies a few dozen strings: snprintf was a good part of it). */
static void str_copy(char *dst, size_t n, const char *src)
{
    size_t l = strnlen(src, n - 1);
    memcpy(dst, src, l);
    dst[l] = '\0';
}

static void col_copy(char *dst, size_t n, db_stmt *s, int col) { str_copy(dst, n, db_col_text(s, col)); }

/* The subscription with its customer, in one statement with what else a
 * subscription has at most one of (the service address, the latest bill)
 * and probes of the lists that are mostly empty: a statement is a good
 * part of the cost of a context, and these each found one row or none. */
static int read_sub(bctx *x, subrow *r)
{
    err *e = x->e;
    jv_arena *a = x->a;
    db_stmt *s = db_prepare(x->d,
                            "SELECT s.id, s.customer_id, s.product_id, s.status, s.billing, s.period, s.start_date, "
                            "s.contract_end, s.anchor_day, s.next_bill_date, s.end_date, s.billed_through, c.code, c.type, "
                            "c.status, c.created_at, s.paid_through, "
                            "ad.customer_id IS NOT NULL, ad.province, ad.city, ad.district, "
                            "pv.id IS NOT NULL, pv.period_from, pv.period_to, "
                            "EXISTS (SELECT 1 FROM subscription_changes h WHERE h.subscription_id = s.id "
                            "AND h.status || '' = 'applied' AND h.kind <> 'create'), "
                            "EXISTS (SELECT 1 FROM subscription_items i WHERE i.subscription_id = s.id), "
                            "EXISTS (SELECT 1 FROM pending_charges p WHERE p.customer_id = s.customer_id "
                            "AND p.billed_on IS NULL AND p.cancelled_at IS NULL), "
                            "EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = s.customer_id) "
                            "FROM subscriptions s JOIN customers c ON c.id = s.customer_id "
                            "LEFT JOIN addresses ad ON ad.customer_id = s.customer_id AND ad.kind = 'service' "
                            "LEFT JOIN invoices pv ON pv.id = (SELECT v.id FROM invoices v WHERE v.subscription_id = s.id "
                            "AND v.status <> 'void' AND v.period_from IS NOT NULL ORDER BY v.period_from DESC LIMIT 1) "
                            "WHERE s.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, x->sub_id);
    int rc = db_step(x->d, s, e);
    if (rc == DB_ROW) {
        memset(r, 0, sizeof *r);
        r->id = db_col_int(s, 0);
        r->customer_id = db_col_int(s, 1);
        r->product_id = db_col_int(s, 2);
        col_copy(r->status, sizeof r->status, s, 3);
        col_copy(r->billing, sizeof r->billing, s, 4);
        col_copy(r->period, sizeof r->period, s, 5);
        col_copy(r->start, sizeof r->start, s, 6);
        col_copy(r->contract_end, sizeof r->contract_end, s, 7);
        r->anchor = (int)db_col_int(s, 8);
        col_copy(r->next_bill, sizeof r->next_bill, s, 9);
        col_copy(r->end, sizeof r->end, s, 10);
        col_copy(r->billed, sizeof r->billed, s, 11);
        col_copy(r->code, sizeof r->code, s, 12);
        col_copy(r->ctype, sizeof r->ctype, s, 13);
        col_copy(r->cstatus, sizeof r->cstatus, s, 14);
        col_copy(r->since, sizeof r->since, s, 15);
        col_copy(r->paid, sizeof r->paid, s, 16);
        r->region = jv_obj_sized(a, 3);
        if (!r->region || (db_col_int(s, 17) && (jv_obj_set_str(a, r->region, "province", db_col_text(s, 18)) ||
                                                 jv_obj_set_str(a, r->region, "city", db_col_text(s, 19)) ||
                                                 jv_obj_set_str(a, r->region, "district", db_col_text(s, 20)))))
            rc = ERR_NOMEM_RET(e);
        else if (db_col_int(s, 21) && !(r->previous = range(a, db_col_text(s, 22), db_col_text(s, 23))))
            rc = ERR_NOMEM_RET(e);
        else
            rc = 0;
        r->has_changes = (int)db_col_int(s, 24);
        r->has_items = (int)db_col_int(s, 25);
        r->has_charges = (int)db_col_int(s, 26);
        r->has_tags = (int)db_col_int(s, 27);
    } else if (rc == DB_DONE) {
        rc = err_set(e, ERR_NOTFOUND, "no subscription %lld", (long long)x->sub_id);
    }
    db_done(s);
    return rc;
}

static jv *sub_obj(bctx *x, const subrow *r)
{
    jv_arena *a = x->a;
    jv *o = jv_obj_sized(a, 12);
    if (!o || jv_obj_set_int(a, o, "id", r->id) || jv_obj_set_str(a, o, "billing", r->billing) ||
        jv_obj_set_str(a, o, "period", r->period) || jv_obj_set_str(a, o, "status", r->status) ||
        jv_obj_set_str(a, o, "start_date", r->start) || set_opt(a, o, "end_date", r->end) ||
        set_opt(a, o, "contract_end", r->contract_end) || jv_obj_set_int(a, o, "anchor_day", r->anchor) ||
        set_opt(a, o, "billed_through", r->billed) || set_opt(a, o, "paid_through", r->paid) || jv_obj_set_str(a, o, "next_bill_date", r->next_bill))
        return NULL;
    return o;
}

/* Checks billing.schedule's answer and keeps its dates. */
static int check_schedule(bctx *x, const jv *res, const subrow *r)
{
    const step_def *sd = &x->bc->schedule;
    char b[96];
    if (!res || res->kind != JV_OBJ)
        return refuse(x, sd, "expected {period, issue_date, due_date, next_bill_date, billed_through}, got %s",
                      describe(res, b, sizeof b));
    static const char *const keys[] = {"period", "issue_date", "due_date", "next_bill_date", "billed_through", NULL};
    for (size_t i = 0; i < res->u.obj.n; i++)
        if (!in_list(keys, res->u.obj.m[i].key)) return refuse(x, sd, "unexpected field '%s'", res->u.obj.m[i].key);
    const jv *p = jv_get(res, "period");
    if (!p || p->kind != JV_OBJ) return refuse(x, sd, "period: expected {from, to}, got %s", describe(p, b, sizeof b));
    const char *names[] = {"period.from", "period.to", "issue_date", "due_date", "next_bill_date", "billed_through"};
    const jv *vals[] = {jv_get(p, "from"), jv_get(p, "to"), jv_get(res, "issue_date"), jv_get(res, "due_date"),
                        jv_get(res, "next_bill_date"), jv_get(res, "billed_through")};
    char *dst[] = {x->b->period_from, x->b->period_to, x->b->issue_date, x->b->due_date, x->b->next_bill_date,
                   x->b->billed_through};
    for (int i = 0; i < 6; i++) {
        if (!date_ok(vals[i]))
            return refuse(x, sd, "%s: expected a date \"YYYY-MM-DD\", got %s", names[i], describe(vals[i], b, sizeof b));
        memcpy(dst[i], vals[i]->u.str.s, 10);
        dst[i][10] = '\0';
    }
    bill *bl = x->b;
    if (strcmp(bl->period_from, bl->period_to) > 0)
        return refuse(x, sd, "period: from %s is after to %s", bl->period_from, bl->period_to);
    if (strcmp(bl->due_date, bl->issue_date) < 0)
        return refuse(x, sd, "due_date %s is before issue_date %s", bl->due_date, bl->issue_date);
    /* a schedule that does not move on would bill the same period for ever */
    if (strcmp(bl->next_bill_date, r->next_bill) <= 0)
        return refuse(x, sd, "next_bill_date %s must be after the current one, %s", bl->next_bill_date, r->next_bill);
    if (r->billed[0] && strcmp(bl->period_to, r->billed) <= 0)
        return refuse(x, sd, "period %s to %s was billed already (billed through %s)", bl->period_from, bl->period_to,
                      r->billed);
    if (strcmp(bl->billed_through, bl->period_to) > 0)
        return refuse(x, sd, "billed_through %s is after the period's end %s", bl->billed_through, bl->period_to);
    return 0;
}

/* One applied change of the subscription other than its creation. */
typedef struct chg {
    int64_t id, from_id, to_id;
    int has_from, has_to;
    int unbilled;               /* no bill took it yet */
    const char *kind;
    const char *eff;            /* effective_date as stored */
    size_t eff_len;
} chg;

/* SQLite's BINARY order of two texts (bytes, then length): what the
 * statements these rows replace compared and sorted dates with. */
static int text_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* The subscription's applied changes, in id order through the
 * (subscription_id, id) index, for plan_at, suspended_since and
 * read_changes: they were three statements, two of them a temporary
 * b-tree each for at most one row, and most subscriptions have no change
 * but their creation (read_sub's probe says so, and nothing is read). */
static int read_change_rows(bctx *x, const subrow *r)
{
    err *e = x->e;
    jv_arena *a = x->a;
    x->chgs = NULL;
    x->nchgs = 0;
    if (!r->has_changes) return 0;
    db_stmt *s = db_prepare(x->d,
                            "SELECT id, kind, effective_date, from_product_id, to_product_id, invoice_id IS NULL "
                            "FROM subscription_changes WHERE subscription_id = ? AND status || '' = 'applied' "
                            "AND kind <> 'create' ORDER BY id",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, r->id);
    size_t cap = 0;
    int rc;
    while ((rc = db_step(x->d, s, e)) == DB_ROW) {
        if (x->nchgs == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            chg *more = jv_alloc(a, ncap * sizeof *more);
            if (!more) {
                rc = ERR_NOMEM_RET(e);
                break;
            }
            if (x->nchgs) memcpy(more, x->chgs, x->nchgs * sizeof *more);
            x->chgs = more;
            cap = ncap;
        }
        chg *c = &x->chgs[x->nchgs];
        const char *kind = db_col_text(s, 1), *eff = db_col_text(s, 2);
        c->id = db_col_int(s, 0);
        c->kind = jv_strdup(a, kind, strlen(kind));
        c->eff_len = db_col_bytes(s, 2);
        c->eff = jv_strdup(a, eff, c->eff_len);
        c->has_from = !db_col_is_null(s, 3);
        c->from_id = db_col_int(s, 3);
        c->has_to = !db_col_is_null(s, 4);
        c->to_id = db_col_int(s, 4);
        c->unbilled = (int)db_col_int(s, 5);
        if (!c->kind || !c->eff) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
        x->nchgs++;
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

/* The day a suspension in force when the period starts began, if any. */
static int suspended_since(bctx *x, jv *sub)
{
    size_t fl = strlen(x->period_from);
    const chg *last = NULL;
    for (size_t i = 0; i < x->nchgs; i++) {
        const chg *c = &x->chgs[i];
        if ((strcmp(c->kind, "suspend") && strcmp(c->kind, "resume")) || text_cmp(c->eff, c->eff_len, x->period_from, fl) >= 0)
            continue;
        /* the latest; of one day's, the last made (the rows come in id order) */
        if (!last || text_cmp(c->eff, c->eff_len, last->eff, last->eff_len) >= 0) last = c;
    }
    if (last && !strcmp(last->kind, "suspend") && jv_obj_set_str(x->a, sub, "suspended_since", last->eff))
        return ERR_NOMEM_RET(x->e);
    return 0;
}

static int read_tags(bctx *x, int64_t cid, int any, jv **out)
{
    err *e = x->e;
    jv *l = jv_arr(x->a);
    if (!l) return ERR_NOMEM_RET(e);
    *out = l;
    if (!any) return 0;
    db_stmt *s = db_prepare(x->d, "SELECT tag FROM customer_tags WHERE customer_id = ? ORDER BY tag", e);
    if (!s) return e->code;
    db_bind_int(s, 1, cid);
    int rc;
    while ((rc = db_step(x->d, s, e)) == DB_ROW)
        if (jv_arr_push(x->a, l, jv_str(x->a, db_col_text(s, 0)))) rc = ERR_NOMEM_RET(e);
    db_done(s);
    return rc < 0 ? rc : 0;
}

/* The plan in force at the start of the period: the plan a later plan
 * change (applied since) moved the subscription from, or the current one. */
static int64_t plan_at(const bctx *x, const subrow *r)
{
    size_t fl = strlen(x->period_from);
    const chg *first = NULL;
    for (size_t i = 0; i < x->nchgs; i++) {
        const chg *c = &x->chgs[i];
        if ((strcmp(c->kind, "upgrade") && strcmp(c->kind, "downgrade")) || !c->has_from ||
            text_cmp(c->eff, c->eff_len, x->period_from, fl) <= 0)
            continue;
        /* the earliest; of one day's, the first made */
        if (!first || text_cmp(c->eff, c->eff_len, first->eff, first->eff_len) < 0) first = c;
    }
    return first ? first->from_id : r->product_id;
}

static int version_obj(bctx *x, int64_t pid, const char *day, const char *what, pversion **out)
{
    pproduct *p = product_by_id(x->bc, pid);
    pversion *v = version_at(p, day);
    if (!v) return err_set(x->e, ERR_NOTFOUND, "%s: product %lld has no version in force on %s", what, (long long)pid, day);
    *out = v;
    return 0;
}

static int read_items(bctx *x, const subrow *r, const char *afrom, const char *ato, jv *addons, jv *attached)
{
    err *e = x->e;
    jv_arena *a = x->a;
    db_stmt *s = db_prepare(x->d,
                            "SELECT product_id, quantity, start_date, end_date FROM subscription_items "
                            "WHERE subscription_id = ? AND start_date <= ? AND (end_date IS NULL OR end_date >= ?) ORDER BY id",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, r->id);
    db_bind_text(s, 2, ato);
    db_bind_text(s, 3, afrom);
    int rc;
    while ((rc = db_step(x->d, s, e)) == DB_ROW) {
        int64_t pid = db_col_int(s, 0);
        pproduct *p = product_by_id(x->bc, pid);
        if (!p) continue;
        char from[11], to[11];
        snprintf(from, sizeof from, "%s", afrom);
        snprintf(to, sizeof to, "%s", ato);
        max_date(from, db_col_text(s, 2));
        if (!db_col_is_null(s, 3)) min_date(to, db_col_text(s, 3));
        if (strcmp(from, to) > 0) continue;
        pversion *v = version_at(p, from);
        if (!v) continue;
        if (!strcmp(p->kind, "promotion")) {
            jv *o = extend(a, v->obj, 2);
            if (!o || jv_obj_set_bool(a, o, "attached", 1) || jv_arr_push(a, attached, o)) rc = ERR_NOMEM_RET(e);
        } else {
            jv *o = extend(a, v->obj, 3);
            if (!o || jv_obj_set_int(a, o, "quantity", db_col_int(s, 1)) || jv_obj_set_str(a, o, "from", from) ||
                jv_obj_set_str(a, o, "to", to) || jv_arr_push(a, addons, o))
                rc = ERR_NOMEM_RET(e);
        }
        if (rc < 0) break;
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

static int chg_order(const void *pa, const void *pb)
{
    const chg *a = *(const chg *const *)pa, *b = *(const chg *const *)pb;
    int c = text_cmp(a->eff, a->eff_len, b->eff, b->eff_len);
    return c ? c : (a->id > b->id) - (a->id < b->id);
}

/* The changes not billed yet that took effect by the period's end, by day
 * and then in the order they were made. */
static int read_changes(bctx *x, jv *list)
{
    err *e = x->e;
    jv_arena *a = x->a;
    size_t tl = strlen(x->period_to), n = 0, cap = x->nchgs ? x->nchgs : 1;
    const chg **due = jv_alloc(a, cap * sizeof *due);
    int64_t *ids = jv_alloc(a, cap * sizeof *ids);
    if (!due || !ids) return ERR_NOMEM_RET(e);
    for (size_t i = 0; i < x->nchgs; i++) {
        const chg *c = &x->chgs[i];
        if (c->unbilled && text_cmp(c->eff, c->eff_len, x->period_to, tl) <= 0) due[n++] = c;
    }
    /* every change goes on the bill, however many: each one left out
     * would stay unbilled for ever */
    if (n > 1) qsort(due, n, sizeof *due, chg_order);
    for (size_t i = 0; i < n; i++) {
        const chg *c = due[i];
        jv *o = jv_obj_sized(a, 5);
        ids[i] = c->id;
        if (!o || jv_obj_set_int(a, o, "id", c->id) || jv_obj_set_str(a, o, "kind", c->kind) ||
            jv_obj_set_str(a, o, "effective_date", c->eff))
            return ERR_NOMEM_RET(e);
        /* plans as they were on the day of the change; add-ons too */
        for (int k = 0; k < 2; k++) {
            if (!(k ? c->has_to : c->has_from)) continue;
            pversion *v = version_at(product_by_id(x->bc, k ? c->to_id : c->from_id), c->eff);
            if (v && jv_obj_set(a, o, k ? "to" : "from", v->obj)) return ERR_NOMEM_RET(e);
        }
        if (jv_arr_push(a, list, o)) return ERR_NOMEM_RET(e);
    }
    x->b->changes = ids;
    x->b->nchanges = n;
    return 0;
}

static int read_charges(bctx *x, const subrow *r, jv *list)
{
    err *e = x->e;
    jv_arena *a = x->a;
    db_stmt *s = db_prepare(x->d,
                            "SELECT id, description, quantity, unit_price, tax_category, product_id, created_at, source "
                            "FROM pending_charges WHERE customer_id = ? AND (subscription_id = ? OR subscription_id IS NULL) "
                            "AND billed_on IS NULL AND cancelled_at IS NULL AND invoice_id IS NULL ORDER BY id",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, r->customer_id);
    db_bind_int(s, 2, r->id);
    int rc;
    while ((rc = db_step(x->d, s, e)) == DB_ROW) {
        jv *o = jv_obj_sized(a, 8);
        pproduct *p = db_col_is_null(s, 5) ? NULL : product_by_id(x->bc, db_col_int(s, 5));
        if (!o || jv_obj_set_int(a, o, "id", db_col_int(s, 0)) || jv_obj_set_str(a, o, "description", db_col_text(s, 1)) ||
            jv_obj_set_int(a, o, "quantity", db_col_int(s, 2)) || jv_obj_set_int(a, o, "unit_price", db_col_int(s, 3)) ||
            jv_obj_set_str(a, o, "tax_category", db_col_text(s, 4)) || set_opt(a, o, "product", p ? p->code : NULL) ||
            jv_obj_set_str(a, o, "created_at", db_col_text(s, 6)) || jv_obj_set_str(a, o, "source", db_col_text(s, 7)) ||
            jv_arr_push(a, list, o)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

static int read_deposits(bctx *x, const subrow *r, jv *list)
{
    err *e = x->e;
    jv_arena *a = x->a;
    db_stmt *s = db_prepare(x->d,
                            "SELECT d.id, d.product, d.amount, v.serial, d.taken_on FROM deposits d JOIN devices v ON v.id = d.device_id "
                            "WHERE d.customer_id = ? AND d.status = 'held' AND d.invoice_id IS NULL ORDER BY d.id",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, r->customer_id);
    int rc;
    while ((rc = db_step(x->d, s, e)) == DB_ROW) {
        jv *o = jv_obj_sized(a, 5);
        if (!o || jv_obj_set_int(a, o, "id", db_col_int(s, 0)) || jv_obj_set_str(a, o, "product", db_col_text(s, 1)) ||
            jv_obj_set_int(a, o, "amount", db_col_int(s, 2)) || jv_obj_set_str(a, o, "device", db_col_text(s, 3)) ||
            jv_obj_set_str(a, o, "taken_on", db_col_text(s, 4)) || jv_arr_push(a, list, o)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

/* Promotions the customer may have: active ones sold to their region and
 * tags, in their version in force at the start of the period. */
static int add_promotions(bctx *x, const jv *region, const jv *tags, jv *list)
{
    jv_arena *a = x->a;
    for (size_t i = 0; i < x->bc->npromos; i++) {
        pproduct *p = &x->bc->prods[x->bc->promos[i]];
        pversion *v = version_at(p, x->period_from);
        if (!v || !catalog_available(&v->v, region, tags)) continue;
        int dup = 0;
        for (size_t j = 0; j < list->u.arr.n; j++) {
            const jv *c = jv_get(list->u.arr.items[j], "code");
            if (c && !strcmp(c->u.str.s, p->code)) dup = 1;
        }
        if (dup) continue;
        jv *o = extend(a, v->obj, 1);
        if (!o || jv_obj_set_bool(a, o, "attached", 0) || jv_arr_push(a, list, o)) return ERR_NOMEM_RET(x->e);
    }
    return 0;
}

/* ------------------------------------------------------------- lines */

typedef struct line {
    invoice_line_in in;
    jv *obj;                    /* what later steps see in ctx.lines */
    int taxed;
} line;

static const jv *field(const jv *o, const char *k)
{
    const jv *v = jv_get(o, k);
    return v && v->kind != JV_NULL ? v : NULL;
}

/* Checks one line a step returned; on success fills L. */
static int check_line(bctx *x, const step_def *sd, const jv *in, size_t i, line *L)
{
    char b[96];
    jv_arena *a = x->a;
    if (in->kind != JV_OBJ) return refuse(x, sd, "lines[%zu]: expected a table with named fields, got %s", i, describe(in, b, sizeof b));
    /* every field in one pass, each matched against LINE_KEYS by length
     * first: a run checks hundreds of thousands of lines. A name is one of
     * LINE_KEYS up to its first NUL (as in_list compares); the value used
     * is that of the first field named exactly so (as field() finds it). */
    static const size_t key_len[] = {4, 11, 6, 8, 10, 12, 7, 7, 6, 6, 6, 7};
    _Static_assert(sizeof key_len / sizeof *key_len == sizeof LINE_KEYS / sizeof *LINE_KEYS - 1, "a length per key");
    const jv *got[sizeof key_len / sizeof *key_len] = {NULL};
    for (size_t k = 0; k < in->u.obj.n; k++) {
        const jv_member *m = &in->u.obj.m[k];
        size_t cl = strlen(m->key), j = 0;
        while (LINE_KEYS[j] && (key_len[j] != cl || memcmp(LINE_KEYS[j], m->key, cl))) j++;
        if (!LINE_KEYS[j]) return refuse(x, sd, "lines[%zu]: unexpected field '%s'", i, m->key);
        if (m->klen == cl && !got[j]) got[j] = m->val;
    }
    for (size_t j = 0; j < sizeof got / sizeof *got; j++)
        if (got[j] && got[j]->kind == JV_NULL) got[j] = NULL;
    memset(L, 0, sizeof *L);
    const jv *kind = got[0], *desc = got[1], *amount = got[2];
    const jv *qty = got[3], *unit = got[4], *cat = got[5];
    const jv *prod = got[6], *ver = got[7], *per = got[8];
    const jv *detail = got[9], *charge = got[10], *dep = got[11];
    if (!kind || kind->kind != JV_STR || !in_list(KINDS, kind->u.str.s))
        return refuse(x, sd, "lines[%zu].kind: expected one of recurring, addon, one_time, proration, discount, deposit, "
                             "credit, fee, adjustment; got %s", i, describe(kind, b, sizeof b));
    L->in.kind = kind->u.str.s;
    if (!desc || desc->kind != JV_STR || desc->u.str.len == 0)
        return refuse(x, sd, "lines[%zu].description: expected a non-empty string, got %s", i, describe(desc, b, sizeof b));
    if (desc->u.str.len > DESCRIPTION_MAX)
        return refuse(x, sd, "lines[%zu].description: %zu bytes, at most %d", i, desc->u.str.len, DESCRIPTION_MAX);
    L->in.description = desc->u.str.s;
    if (!amount || amount->kind != JV_INT)
        return refuse(x, sd, "lines[%zu].amount: expected an integer count of fen, got %s", i, describe(amount, b, sizeof b));
    L->in.amount = amount->u.i;
    if (amount->u.i < 0 && !in_list(NEGATIVE_KINDS, L->in.kind))
        return refuse(x, sd, "lines[%zu].amount: %lld is negative, which only proration, discount, credit and adjustment "
                             "lines may be", i, (long long)amount->u.i);
    if (!strcmp(L->in.kind, "credit") && amount->u.i >= 0)
        return refuse(x, sd, "lines[%zu].amount: a credit line takes credit off the bill: below zero, got %lld", i,
                      (long long)amount->u.i);
    if (!strcmp(L->in.kind, "discount") && amount->u.i > 0)
        return refuse(x, sd, "lines[%zu].amount: a discount line takes money off the bill: zero or below, got %lld", i,
                      (long long)amount->u.i);
    if (amount->u.i > INT64_C(100000000000000) || amount->u.i < -INT64_C(100000000000000))
        return refuse(x, sd, "lines[%zu].amount: %lld fen is beyond any bill", i, (long long)amount->u.i);
    L->in.quantity = 1;
    if (qty) {
        if (qty->kind != JV_INT || qty->u.i < 1 || qty->u.i > 1000000)
            return refuse(x, sd, "lines[%zu].quantity: expected an integer from 1, got %s", i, describe(qty, b, sizeof b));
        L->in.quantity = qty->u.i;
    }
    if (unit) {
        if (unit->kind != JV_INT)
            return refuse(x, sd, "lines[%zu].unit_price: expected an integer count of fen, got %s", i, describe(unit, b, sizeof b));
        L->in.unit_price = unit->u.i;
    } else if (L->in.amount % L->in.quantity == 0) {
        L->in.unit_price = L->in.amount / L->in.quantity;
    } else {
        return refuse(x, sd, "lines[%zu].unit_price: required when amount %lld is not a multiple of quantity %lld", i,
                      (long long)L->in.amount, (long long)L->in.quantity);
    }
    if ((__int128)L->in.quantity * L->in.unit_price != (__int128)L->in.amount)
        return refuse(x, sd, "lines[%zu].amount: %lld is not quantity %lld x unit_price %lld", i, (long long)L->in.amount,
                      (long long)L->in.quantity, (long long)L->in.unit_price);
    if (!cat || cat->kind != JV_STR || cat->u.str.len == 0)
        return refuse(x, sd, "lines[%zu].tax_category: expected a string, got %s", i, describe(cat, b, sizeof b));
    L->in.tax_category = cat->u.str.s;
    if (!strcmp(L->in.kind, "credit")) {
        if (strcmp(cat->u.str.s, "credit"))
            return refuse(x, sd, "lines[%zu].tax_category: a credit line's category is \"credit\", got \"%s\"", i, cat->u.str.s);
    } else if (x->bc->rates && !jv_get(x->bc->rates, cat->u.str.s)) {
        return refuse(x, sd, "lines[%zu].tax_category: \"%s\" is not a category of tax.rates", i, cat->u.str.s);
    }
    if (prod) {
        if (prod->kind != JV_STR || prod->u.str.len == 0 || prod->u.str.len > 48)
            return refuse(x, sd, "lines[%zu].product: expected a product code, got %s", i, describe(prod, b, sizeof b));
        L->in.product_code = prod->u.str.s;
    }
    if (ver) {
        if (ver->kind != JV_INT || ver->u.i < 1 || ver->u.i > 1000000)
            return refuse(x, sd, "lines[%zu].version: expected a product version number, got %s", i, describe(ver, b, sizeof b));
        L->in.product_version = (int)ver->u.i;
    }
    if (per) {
        const jv *f = per->kind == JV_OBJ ? field(per, "from") : NULL, *t = per->kind == JV_OBJ ? field(per, "to") : NULL;
        if (per->kind != JV_OBJ || per->u.obj.n != 2 || !date_ok(f) || !date_ok(t))
            return refuse(x, sd, "lines[%zu].period: expected {from = \"YYYY-MM-DD\", to = \"YYYY-MM-DD\"}", i);
        if (strcmp(f->u.str.s, t->u.str.s) > 0)
            return refuse(x, sd, "lines[%zu].period: from %s is after to %s", i, f->u.str.s, t->u.str.s);
        if (strcmp(t->u.str.s, x->period_to) > 0)
            return refuse(x, sd, "lines[%zu].period: ends %s, after the bill's period (to %s)", i, t->u.str.s, x->period_to);
        /* earlier billed periods may be corrected, but nothing before the
         * subscription's first day was ever billable */
        if (x->start[0] && strcmp(f->u.str.s, x->start) < 0)
            return refuse(x, sd, "lines[%zu].period: starts %s, before the subscription's start date %s", i, f->u.str.s,
                          x->start);
        L->in.period_from = f->u.str.s;
        L->in.period_to = t->u.str.s;
    }
    if (detail) {
        if (detail->kind != JV_OBJ)
            return refuse(x, sd, "lines[%zu].detail: expected a table with named fields, got %s", i, describe(detail, b, sizeof b));
        L->in.detail = detail;
    }
    const jv *ids[2] = {charge, dep};
    const jv *lists[2] = {x->charges, x->deposits};
    unsigned char *used[2] = {x->charge_used, x->deposit_used};
    const char *names[2] = {"charge", "deposit"};
    int64_t *dst[2] = {&L->in.pending_charge_id, &L->in.deposit_id};
    for (int k = 0; k < 2; k++) {
        if (!ids[k]) continue;
        if (ids[k]->kind != JV_INT)
            return refuse(x, sd, "lines[%zu].%s: expected the id of a %s of the context, got %s", i, names[k], names[k],
                          describe(ids[k], b, sizeof b));
        size_t j = 0, n = jv_len(lists[k]);
        while (j < n && jv_get(jv_at(lists[k], j), "id")->u.i != ids[k]->u.i) j++;
        if (j == n)
            return refuse(x, sd, "lines[%zu].%s: %lld is not a %s of this bill's context", i, names[k],
                          (long long)ids[k]->u.i, names[k]);
        if (used[k][j])
            return refuse(x, sd, "lines[%zu].%s: %s %lld is on the bill twice", i, names[k], names[k], (long long)ids[k]->u.i);
        used[k][j] = 1;
        *dst[k] = ids[k]->u.i;
    }
    /* what later steps see: the line as checked, with defaults filled (its
     * fields share their names with `in`: both live in the bill's arena) */
    jv *o = jv_obj_sized(a, 16);
    if (!o) return ERR_NOMEM_RET(x->e);
    for (size_t k = 0; k < in->u.obj.n; k++) {
        const jv_member *m = &in->u.obj.m[k];
        if (m->val->kind == JV_NULL) continue;
        if (o->u.obj.n < o->u.obj.cap) o->u.obj.m[o->u.obj.n++] = *m;
        else if (jv_obj_setn(a, o, m->key, m->klen, m->val)) return ERR_NOMEM_RET(x->e);
    }
    if ((!qty && jv_obj_set_int(a, o, "quantity", L->in.quantity)) ||
        (!unit && jv_obj_set_int(a, o, "unit_price", L->in.unit_price)) || jv_obj_set_str(a, o, "step", sd->name))
        return ERR_NOMEM_RET(x->e);
    L->obj = o;
    L->in.step = sd->name;
    L->in.rule = sd->rule;
    return 0;
}

/* The tax of one line: the rate is a percentage and the tax what that rate
 * gives on the tax-inclusive amount, within one fen either way (the rule
 * owns the rounding). */
static int check_tax(bctx *x, const step_def *sd, const jv *t, size_t i, line *lines, size_t n)
{
    char b[96];
    if (t->kind != JV_OBJ) return refuse(x, sd, "taxes[%zu]: expected {line, rate, tax}, got %s", i, describe(t, b, sizeof b));
    for (size_t k = 0; k < t->u.obj.n; k++) {
        const char *key = t->u.obj.m[k].key;
        if (strcmp(key, "line") && strcmp(key, "rate") && strcmp(key, "tax"))
            return refuse(x, sd, "taxes[%zu]: unexpected field '%s'", i, key);
    }
    const jv *ln = field(t, "line"), *rate = field(t, "rate"), *tax = field(t, "tax");
    if (!ln || ln->kind != JV_INT || ln->u.i < 1 || (size_t)ln->u.i > n)
        return refuse(x, sd, "taxes[%zu].line: expected the index of a line (1 to %zu), got %s", i, n, describe(ln, b, sizeof b));
    line *L = &lines[ln->u.i - 1];
    if (!strcmp(L->in.kind, "credit"))
        return refuse(x, sd, "taxes[%zu].line: line %lld is a credit line, which carries no tax", i, (long long)ln->u.i);
    if (L->taxed) return refuse(x, sd, "taxes[%zu].line: line %lld is taxed twice", i, (long long)ln->u.i);
    if (!rate || rate->kind != JV_INT || rate->u.i < 0 || rate->u.i > 100)
        return refuse(x, sd, "taxes[%zu].rate: expected a whole percentage 0 to 100, got %s", i, describe(rate, b, sizeof b));
    if (!tax || tax->kind != JV_INT)
        return refuse(x, sd, "taxes[%zu].tax: expected an integer count of fen, got %s", i, describe(tax, b, sizeof b));
    /* the rate is the category's in tax.rates, as the tax step reads it */
    const jv *want = x->bc->rates ? jv_get(x->bc->rates, L->in.tax_category) : NULL;
    if (want && want->kind == JV_INT && want->u.i != rate->u.i)
        return refuse(x, sd, "taxes[%zu].rate: %lld%% for line %lld (%s), but tax.rates.%s is %lld%%", i, (long long)rate->u.i,
                      (long long)ln->u.i, L->in.tax_category, L->in.tax_category, (long long)want->u.i);
    __int128 lhs = (__int128)tax->u.i * (100 + rate->u.i) - (__int128)L->in.amount * rate->u.i;
    if (lhs < 0) lhs = -lhs;
    if (lhs >= 100 + rate->u.i)
        return refuse(x, sd, "taxes[%zu].tax: %lld fen is not %lld%% of %lld fen tax included (%lld x %lld / %lld)", i,
                      (long long)tax->u.i, (long long)rate->u.i, (long long)L->in.amount, (long long)L->in.amount,
                      (long long)rate->u.i, (long long)(100 + rate->u.i));
    L->taxed = 1;
    L->in.tax_rate = (int)rate->u.i;
    L->in.tax = tax->u.i;
    if (jv_obj_set_int(x->a, L->obj, "tax_rate", rate->u.i) || jv_obj_set_int(x->a, L->obj, "tax", tax->u.i))
        return ERR_NOMEM_RET(x->e);
    return 0;
}

/* ------------------------------------------------------------- compute */

static int run_steps(bctx *x, jv *ctx, line **out, size_t *nout)
{
    billing_cache *bc = x->bc;
    jv_arena *a = x->a;
    line *lines = NULL;
    size_t n = 0, cap = 0;
    jv *lv = jv_arr(a);
    if (!lv || jv_obj_set(a, ctx, "lines", lv)) return ERR_NOMEM_RET(x->e);
    for (size_t si = 0; si < bc->nsteps; si++) {
        const step_def *sd = &bc->steps[si];
        x->step = sd;
        const jv *args[1] = {ctx};
        jv *res = NULL;
        if (rules_call(x->rs, sd->rule, args, 1, a, &res, x->e)) return rule_failed(x, sd);
        char b[96];
        if (!res || res->kind == JV_NULL)
            return refuse(x, sd, "returned nothing: a step returns {lines = {...}, taxes = {...}} (either may be empty)");
        if (res->kind == JV_ARR && res->u.arr.n == 0) continue; /* an empty table */
        if (res->kind != JV_OBJ) return refuse(x, sd, "expected {lines = {...}, taxes = {...}}, got %s", describe(res, b, sizeof b));
        for (size_t k = 0; k < res->u.obj.n; k++)
            if (strcmp(res->u.obj.m[k].key, "lines") && strcmp(res->u.obj.m[k].key, "taxes"))
                return refuse(x, sd, "unexpected field '%s' (a step returns lines and taxes)", res->u.obj.m[k].key);
        const jv *nl = field(res, "lines"), *tx = field(res, "taxes");
        if (nl && !(nl->kind == JV_ARR || (nl->kind == JV_OBJ && nl->u.obj.n == 0)))
            return refuse(x, sd, "lines: expected a list, got %s", describe(nl, b, sizeof b));
        if (tx && !(tx->kind == JV_ARR || (tx->kind == JV_OBJ && tx->u.obj.n == 0)))
            return refuse(x, sd, "taxes: expected a list, got %s", describe(tx, b, sizeof b));
        size_t add = nl && nl->kind == JV_ARR ? nl->u.arr.n : 0;
        if (n + add > MAX_LINES) return refuse(x, sd, "the bill would have more than %d lines", MAX_LINES);
        if (n + add > cap) {
            size_t ncap = cap ? cap : 16;
            while (ncap < n + add) ncap *= 2;
            line *nlines = jv_alloc(a, ncap * sizeof *nlines);
            if (!nlines) return ERR_NOMEM_RET(x->e);
            if (n) memcpy(nlines, lines, n * sizeof *lines);
            lines = nlines;
            cap = ncap;
        }
        for (size_t i = 0; i < add; i++) {
            int rc = check_line(x, sd, nl->u.arr.items[i], i + 1, &lines[n]);
            if (rc) return rc;
            if (jv_obj_set_int(a, lines[n].obj, "index", (int64_t)(n + 1)) || jv_arr_push(a, lv, lines[n].obj))
                return ERR_NOMEM_RET(x->e);
            n++;
        }
        size_t nt = tx && tx->kind == JV_ARR ? tx->u.arr.n : 0;
        for (size_t i = 0; i < nt; i++) {
            int rc = check_tax(x, sd, tx->u.arr.items[i], i + 1, lines, n);
            if (rc) return rc;
        }
    }
    x->step = NULL;
    *out = lines;
    *nout = n;
    return 0;
}

/* What can only be checked once every step has run. */
static int check_totals(bctx *x, line *lines, size_t n)
{
    bill *b = x->b;
    int64_t gross = 0, tax = 0, credit = 0;
    for (size_t i = 0; i < n; i++) {
        line *L = &lines[i];
        if (!strcmp(L->in.kind, "credit")) {
            credit -= L->in.amount;
            L->in.tax_rate = 0;
            L->in.tax = 0;
            continue;
        }
        if (!L->taxed)
            return refuse(x, NULL, "lines[%zu] (%s, from steps.%s) has no tax: every line but credit lines must be taxed "
                                   "once (is the tax step missing or before it?)", i + 1, L->in.kind, L->in.step);
        gross += L->in.amount;
        tax += L->in.tax;
    }
    if (gross < 0) return refuse(x, NULL, "the bill's total is %lld fen: below zero", (long long)gross);
    if (credit > gross)
        return refuse(x, NULL, "credit lines take %lld fen off a bill of %lld fen: more than the bill", (long long)credit,
                      (long long)gross);
    if (credit > x->credit_available)
        return refuse(x, NULL, "credit lines take %lld fen, but the customer has %lld fen of credit available",
                      (long long)credit, (long long)x->credit_available);
    b->gross = gross;
    b->tax = tax;
    b->net = gross - tax;
    b->credit = credit;
    return 0;
}

int billing_compute(db *d, ruleset *rs, billing_cache *bc, int64_t sub_id, const char *as_of, const char *by,
                    jv_arena *a, bill *out, bill_error *f, err *e)
{
    memset(out, 0, sizeof *out);
    memset(f, 0, sizeof *f);
    bctx x = {.d = d, .bc = bc, .rs = rs, .a = a, .b = out, .f = f, .e = e, .sub_id = sub_id};
    str_copy(x.as_of, sizeof x.as_of, as_of);
    subrow r;
    int rc = read_sub(&x, &r);
    if (rc) return rc;
    out->subscription_id = r.id;
    out->customer_id = r.customer_id;
    str_copy(x.start, sizeof x.start, r.start);
    str_copy(out->customer, sizeof out->customer, r.code);
    if (!strcmp(r.status, "terminated") && (!r.end[0] || (r.billed[0] && strcmp(r.billed, r.end) >= 0))) {
        out->finished = 1;
        return 0;
    }

    /* the schedule: which period, which dates */
    jv *sub = sub_obj(&x, &r);
    jv *sctx = jv_obj_sized(a, 2);
    if (!sub || !sctx || jv_obj_set(a, sctx, "subscription", sub) || jv_obj_set_str(a, sctx, "as_of", as_of))
        return ERR_NOMEM_RET(e);
    const jv *sargs[1] = {sctx};
    jv *sres = NULL;
    if (rules_call(rs, RULE_SCHEDULE, sargs, 1, a, &sres, e)) return rule_failed(&x, &bc->schedule);
    if ((rc = check_schedule(&x, sres, &r))) return rc;
    memcpy(x.period_from, out->period_from, 11);
    memcpy(x.period_to, out->period_to, 11);

    /* the days of the period the service ran */
    memcpy(out->from, out->period_from, 11);
    memcpy(out->to, out->period_to, 11);
    max_date(out->from, r.start);
    min_date(out->to, r.end);
    if (strcmp(out->from, out->to) > 0) {
        out->nothing = 1;
        return 0;
    }

    if ((rc = read_change_rows(&x, &r)) || (rc = suspended_since(&x, sub))) return rc;
    int64_t plan_id = plan_at(&x, &r);
    pversion *plan = NULL;
    if ((rc = version_obj(&x, plan_id, out->from, "plan", &plan))) return rc;
    str_copy(out->plan, sizeof out->plan, product_by_id(bc, plan_id)->code);

    jv *tags = NULL, *region = r.region;
    if ((rc = read_tags(&x, r.customer_id, r.has_tags, &tags))) return rc;
    jv *cust = jv_obj_sized(a, 7);
    if (!cust || jv_obj_set_str(a, cust, "code", r.code) || jv_obj_set_str(a, cust, "type", r.ctype) ||
        jv_obj_set_str(a, cust, "status", r.cstatus) || jv_obj_set(a, cust, "tags", tags) ||
        jv_obj_set_str(a, cust, "since", r.since) ||
        jv_obj_set_int(a, cust, "tenure_months", tenure_months(r.since, as_of)) || jv_obj_set(a, cust, "region", region))
        return ERR_NOMEM_RET(e);

    jv *addons = jv_arr(a), *promos = jv_arr(a), *changes = jv_arr(a), *charges = jv_arr(a), *deposits = jv_arr(a);
    if (!addons || !promos || !changes || !charges || !deposits) return ERR_NOMEM_RET(e);
    if ((r.has_items && (rc = read_items(&x, &r, out->from, out->to, addons, promos))) ||
        (rc = add_promotions(&x, region, tags, promos)) || (rc = read_changes(&x, changes)) ||
        (r.has_charges && (rc = read_charges(&x, &r, charges))) || (rc = read_deposits(&x, &r, deposits)))
        return rc;
    x.charges = charges;
    x.deposits = deposits;
    x.charge_used = jv_alloc(a, jv_len(charges) + 1);
    x.deposit_used = jv_alloc(a, jv_len(deposits) + 1);
    if (!x.charge_used || !x.deposit_used) return ERR_NOMEM_RET(e);
    memset(x.charge_used, 0, jv_len(charges) + 1);
    memset(x.deposit_used, 0, jv_len(deposits) + 1);

    ledger_balance lb;
    if ((rc = ledger_balance_of(d, r.customer_id, &lb, e))) return rc;
    x.credit_available = lb.credit;
    jv *bal = jv_obj_sized(a, 3);
    if (!bal || jv_obj_set_int(a, bal, "balance", lb.balance) || jv_obj_set_int(a, bal, "open", lb.open) ||
        jv_obj_set_int(a, bal, "credit", lb.credit))
        return ERR_NOMEM_RET(e);

    jv *ctx = jv_obj_sized(a, 18);
    jv *per = range(a, out->period_from, out->period_to), *act = range(a, out->from, out->to);
    if (!ctx || !per || !act || jv_obj_set(a, ctx, "customer", cust) || jv_obj_set(a, ctx, "subscription", sub) ||
        jv_obj_set(a, ctx, "period", per) || jv_obj_set(a, ctx, "plan", plan->obj) || jv_obj_set(a, ctx, "active", act) ||
        jv_obj_set(a, ctx, "addons", addons) || jv_obj_set(a, ctx, "changes", changes) ||
        jv_obj_set(a, ctx, "charges", charges) || jv_obj_set(a, ctx, "deposits", deposits) ||
        jv_obj_set(a, ctx, "promotions", promos) || jv_obj_set(a, ctx, "balance", bal) ||
        jv_obj_set_str(a, ctx, "as_of", as_of) || jv_obj_set_str(a, ctx, "issue_date", out->issue_date))
        return ERR_NOMEM_RET(e);
    if (r.previous && jv_obj_set(a, ctx, "previous", r.previous)) return ERR_NOMEM_RET(e);

    line *lines = NULL;
    size_t n = 0;
    if ((rc = run_steps(&x, ctx, &lines, &n))) return rc;
    if ((rc = check_totals(&x, lines, n))) return rc;

    out->lines = jv_alloc(a, sizeof *out->lines * (n ? n : 1));
    if (!out->lines) return ERR_NOMEM_RET(e);
    for (size_t i = 0; i < n; i++) out->lines[i] = lines[i].in;
    out->nlines = n;
    invoice_new *in = &out->inv;
    in->customer_id = r.customer_id;
    in->subscription_id = r.id;
    in->period_from = out->from;
    in->period_to = out->to;
    in->issue_date = out->issue_date;
    in->due_date = out->due_date;
    in->rules_version = rs->snap->version;
    in->lines = out->lines;
    in->nlines = n;
    in->change_ids = out->changes;
    in->nchanges = out->nchanges;
    in->billed_through = out->billed_through;
    in->by = by;
    return 0;
}

jv *billing_bill_jv(jv_arena *a, const bill *b)
{
    jv *o = jv_obj_sized(a, 18);
    if (!o) return NULL;
    int rc = jv_obj_set_int(a, o, "subscription_id", b->subscription_id);
    rc |= jv_obj_set_str(a, o, "customer", b->customer);
    rc |= jv_obj_set(a, o, "plan", b->plan[0] ? jv_str(a, b->plan) : jv_null(a));
    rc |= jv_obj_set(a, o, "period", range(a, b->period_from, b->period_to));
    rc |= jv_obj_set(a, o, "service", b->nothing ? jv_null(a) : range(a, b->from, b->to));
    rc |= jv_obj_set_str(a, o, "issue_date", b->issue_date);
    rc |= jv_obj_set_str(a, o, "due_date", b->due_date);
    rc |= jv_obj_set_str(a, o, "next_bill_date", b->next_bill_date);
    jv *ls = jv_arr_sized(a, b->nlines);
    rc |= !ls;
    for (size_t i = 0; ls && i < b->nlines; i++) {
        const invoice_line_in *L = &b->lines[i];
        jv *l = jv_obj_sized(a, 16);
        if (!l) return NULL;
        rc |= jv_obj_set_int(a, l, "seq", (int64_t)(i + 1));
        rc |= jv_obj_set_str(a, l, "kind", L->kind);
        rc |= jv_obj_set_str(a, l, "description", L->description);
        rc |= jv_obj_set(a, l, "product", L->product_code ? jv_str(a, L->product_code) : jv_null(a));
        rc |= jv_obj_set_int(a, l, "quantity", L->quantity);
        rc |= jv_obj_set_int(a, l, "unit_price", L->unit_price);
        rc |= jv_obj_set_int(a, l, "amount", L->amount);
        rc |= jv_obj_set_str(a, l, "tax_category", L->tax_category);
        rc |= jv_obj_set_int(a, l, "tax_rate", L->tax_rate);
        rc |= jv_obj_set_int(a, l, "tax", L->tax);
        rc |= jv_obj_set_int(a, l, "net", L->amount - L->tax);
        rc |= jv_obj_set(a, l, "period", L->period_from ? range(a, L->period_from, L->period_to) : jv_null(a));
        rc |= jv_obj_set_str(a, l, "step", L->step);
        rc |= jv_obj_set_str(a, l, "rule", L->rule);
        rc |= jv_obj_set(a, l, "detail", L->detail ? jv_copy(a, L->detail) : jv_null(a));
        rc |= jv_arr_push(a, ls, l);
    }
    rc |= jv_obj_set(a, o, "lines", ls);
    rc |= jv_obj_set_int(a, o, "net", b->net);
    rc |= jv_obj_set_int(a, o, "tax", b->tax);
    rc |= jv_obj_set_int(a, o, "gross", b->gross);
    rc |= jv_obj_set_int(a, o, "credit", b->credit);
    rc |= jv_obj_set_int(a, o, "amount_due", b->gross - b->credit);
    rc |= jv_obj_set(a, o, "rules_version", b->inv.rules_version ? jv_str(a, b->inv.rules_version) : jv_null(a));
    return rc ? NULL : o;
}

int billing_customer_subs(db *d, int64_t customer_id, jv_arena *a, int64_t **ids, char (**next)[11], size_t *n,
                          err *e)
{
    *n = 0;
    size_t cap = 8;
    *ids = jv_alloc(a, cap * sizeof **ids);
    *next = jv_alloc(a, cap * sizeof **next);
    if (!*ids || !*next) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d,
                            "SELECT id, next_bill_date FROM subscriptions WHERE customer_id = ? "
                            "AND NOT (status = 'terminated' AND (end_date IS NULL OR (billed_through IS NOT NULL "
                            "AND billed_through >= end_date))) ORDER BY id",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        if (*n == cap) {
            int64_t *ni = jv_alloc(a, cap * 2 * sizeof *ni);
            char(*nn)[11] = jv_alloc(a, cap * 2 * sizeof *nn);
            if (!ni || !nn) {
                db_done(s);
                return ERR_NOMEM_RET(e);
            }
            memcpy(ni, *ids, cap * sizeof *ni);
            memcpy(nn, *next, cap * sizeof *nn);
            *ids = ni;
            *next = nn;
            cap *= 2;
        }
        (*ids)[*n] = db_col_int(s, 0);
        snprintf((*next)[*n], 11, "%s", db_col_text(s, 1));
        (*n)++;
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}
