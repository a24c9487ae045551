/* cmd_catalog.c - `bandbill product list|add|price`.
 *
 * The same validation as the API (catalog.c) against the rules folder of
 * the configuration; changes are recorded in the audit trail as the local
 * user, like every change made from the command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "catalog.h"
#include "cli.h"
#include "date.h"
#include "money.h"
#include "rules.h"
#include "vault.h"

static void today(char out[11]) { date_format(date_of_time(time(NULL)), out); }

static int one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

static const char *const kinds[] = {"plan", "addon", "fee", "deposit", "promotion", NULL};
static const char *const statuses[] = {"draft", "active", "retired", NULL};

/* {code, kind, name, status, created_at, created_by, current, versions?}:
 * the shape of the API's product objects. */
static int product_jv(db *d, jv_arena *a, int64_t pid, int all, jv **out, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT code, kind, name, status, created_at, created_by FROM products WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, pid);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_set(e, ERR_NOTFOUND, "no product with id %lld", (long long)pid);
    }
    static const char *const cols[] = {"code", "kind", "name", "status", "created_at", "created_by"};
    jv *o = jv_obj(a);
    rc = o ? 0 : ERR_NOMEM;
    for (int i = 0; i < 6 && !rc; i++) rc = jv_obj_set_str(a, o, cols[i], db_col_text(s, i));
    db_done(s);
    if (rc) return ERR_NOMEM_RET(e);
    char t[11];
    today(t);
    product_version v;
    jv *cur;
    rc = catalog_version_at(d, pid, t, a, &v, e);
    if (rc == ERR_NOTFOUND) cur = jv_null(a);
    else if (rc) return rc;
    else cur = catalog_version_jv(a, &v);
    if (jv_obj_set(a, o, "current", cur)) return ERR_NOMEM_RET(e);
    if (all) {
        jv *list = jv_arr(a);
        if (!list) return ERR_NOMEM_RET(e);
        /* versions have unique start dates: version_at on each start date
         * gives that version */
        char from[11] = "";
        for (;;) {
            s = db_prepare(d,
                           "SELECT effective_from FROM product_versions WHERE product_id = ? AND effective_from > ? "
                           "ORDER BY effective_from LIMIT 1",
                           e);
            if (!s) return e->code;
            db_bind_int(s, 1, pid);
            db_bind_text(s, 2, from);
            rc = db_step(d, s, e);
            if (rc == DB_ROW) snprintf(from, sizeof from, "%s", db_col_text(s, 0));
            db_done(s);
            if (rc < 0) return rc;
            if (rc == DB_DONE) break;
            if ((rc = catalog_version_at(d, pid, from, a, &v, e))) return rc;
            if (jv_arr_push(a, list, catalog_version_jv(a, &v))) return ERR_NOMEM_RET(e);
        }
        if (jv_obj_set(a, o, "versions", list)) return ERR_NOMEM_RET(e);
    }
    *out = o;
    return 0;
}

static int print_product(cli *c, const jv *o, const char *what, err *e)
{
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_jv(&w, o);
        return cli_print_json(&w, e);
    }
    printf("product %s %s (%s, %s)\n", jv_get(o, "code")->u.str.s, what, jv_get(o, "kind")->u.str.s,
           jv_get(o, "status")->u.str.s);
    const jv *vs = jv_get(o, "versions");
    for (size_t i = 0; i < jv_len(vs); i++) {
        const jv *v = jv_at(vs, i);
        char price[MONEY_FMT_MAX];
        money_format(jv_get(v, "price")->u.i, price);
        printf("  version %lld from %s: %s %s, tax %s, %s\n", (long long)jv_get(v, "version")->u.i,
               jv_get(v, "effective_from")->u.str.s, price,
               jv_get(v, "price_includes_tax")->u.b ? "(tax included)" : "(plus tax)", jv_get(v, "tax_category")->u.str.s,
               jv_get(v, "rule")->u.str.s);
    }
    return 0;
}

/* The rules of the configured folder, for validation (examples are the
 * daemon's business at reload; these are only read). */
static int load_rules(cli *c, rules_snapshot **snap, ruleset **rs, err *e)
{
    lhost_limits lim = {(uint64_t)c->cfg.rules_max_instructions, (size_t)c->cfg.rules_max_memory_mb << 20};
    int rc = rules_snapshot_read(c->cfg.rules, snap, e);
    if (rc) return err_prefix(e, "rules folder %s", c->cfg.rules);
    rc = ruleset_load(*snap, &lim, 0, rs, NULL, e);
    if (rc) {
        rules_snapshot_unref(*snap);
        *snap = NULL;
    }
    return rc;
}

/* --price (yuan, "129.00") or --price-fen; *given is 0 when neither. */
static int price_option(cli *c, int64_t *fen, int *given, err *e)
{
    const char *yuan = cli_opt_value(c, "price"), *f = cli_opt_value(c, "price-fen");
    *given = 0;
    if (yuan && f) return err_set(e, ERR_USAGE, "give the price once: --price (yuan) or --price-fen");
    if (yuan) {
        if (money_parse(yuan, strlen(yuan), fen, e)) return err_prefix(e, "--price");
    } else if (f) {
        char *end;
        errno = 0;
        long long v = strtoll(f, &end, 10);
        if (errno || end == f || *end) return err_set(e, ERR_USAGE, "--price-fen must be a whole number of fen, not '%s'", f);
        *fen = v;
    } else {
        return 0;
    }
    *given = 1;
    return 0;
}

static int json_option(cli *c, const char *name, jv_arena *a, jv **out, err *e)
{
    const char *t = cli_opt_value(c, name);
    *out = NULL;
    if (!t) return 0;
    if (json_parse(t, strlen(t), NULL, a, out, e)) {
        err_prefix(e, "--%s is not valid JSON", name);
        e->code = ERR_USAGE;
        return ERR_USAGE;
    }
    return 0;
}

/* db, vault and rules together; released by close_all. */
typedef struct env {
    db *d;
    vault *v;
    rules_snapshot *snap;
    ruleset *rs;
} env;

static int open_all(cli *c, env *x, err *e)
{
    memset(x, 0, sizeof *x);
    int rc = cli_open_db(c, &x->d, e);
    if (!rc) rc = cli_open_vault(c, &x->v, e);
    if (!rc) rc = load_rules(c, &x->snap, &x->rs, e);
    return rc;
}

static int close_all(env *x, int rc)
{
    if (x->d && db_in_tx(x->d)) db_rollback(x->d);
    if (x->d) db_close(x->d);
    if (x->v) vault_close(x->v);
    if (x->rs) ruleset_unref(x->rs);
    if (x->snap) rules_snapshot_unref(x->snap);
    return rc;
}

int cmd_product_list(cli *c, err *e)
{
    const char *kind = cli_opt_value(c, "kind"), *status = cli_opt_value(c, "status");
    if (kind && !one_of(kind, kinds)) return err_set(e, ERR_USAGE, "--kind is plan, addon, fee, deposit or promotion");
    if (status && !one_of(status, statuses)) return err_set(e, ERR_USAGE, "--status is draft, active or retired");
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *ids = jv_arr(&a), *list = jv_arr(&a);
    db_stmt *s = db_prepare(d,
                            "SELECT id FROM products WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR status = ?) ORDER BY code",
                            e);
    rc = !s ? e->code : !ids || !list ? ERR_NOMEM_RET(e) : 0;
    if (!rc) {
        db_bind_text(s, 1, kind);
        db_bind_text(s, 2, kind);
        db_bind_text(s, 3, status);
        db_bind_text(s, 4, status);
        while ((rc = db_step(d, s, e)) == DB_ROW)
            if (jv_arr_push(&a, ids, jv_int(&a, db_col_int(s, 0)))) {
                rc = ERR_NOMEM_RET(e);
                break;
            }
        db_done(s);
        if (rc > 0) rc = 0;
    }
    for (size_t i = 0; !rc && i < ids->u.arr.n; i++) {
        jv *o;
        rc = product_jv(d, &a, ids->u.arr.items[i]->u.i, 0, &o, e);
        if (!rc && jv_arr_push(&a, list, o)) rc = ERR_NOMEM_RET(e);
    }
    db_close(d);
    if (!rc && c->json) {
        jw w;
        jw_init(&w, 0);
        jw_jv(&w, list);
        rc = cli_print_json(&w, e);
    } else if (!rc) {
        printf("%-20s %-10s %-8s %12s  %s\n", "CODE", "KIND", "STATUS", "PRICE", "NAME");
        for (size_t i = 0; i < list->u.arr.n; i++) {
            const jv *o = list->u.arr.items[i], *cur = jv_get(o, "current");
            char price[MONEY_FMT_MAX] = "-";
            /* no version in force today: its first price starts later */
            if (cur && cur->kind == JV_OBJ) money_format(jv_get(cur, "price")->u.i, price);
            printf("%-20s %-10s %-8s %12s  %s\n", jv_get(o, "code")->u.str.s, jv_get(o, "kind")->u.str.s,
                   jv_get(o, "status")->u.str.s, price, jv_get(o, "name")->u.str.s);
        }
    }
    jv_arena_free(&a);
    return rc;
}

int cmd_product_add(cli *c, err *e)
{
    static const char *const need[] = {"kind", "name", "tax-category", "rule", NULL};
    for (const char *const *n = need; *n; n++)
        if (!cli_opt_value(c, *n)) return err_set(e, ERR_USAGE, "product add needs --%s", *n);
    int64_t price = 0;
    int have_price;
    int rc = price_option(c, &price, &have_price, e);
    if (rc) return rc;
    if (!have_price) return err_set(e, ERR_USAGE, "product add needs --price YUAN or --price-fen FEN");
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *params, *attrs;
    rc = json_option(c, "params", &a, &params, e);
    if (!rc) rc = json_option(c, "attrs", &a, &attrs, e);
    jv *in = jv_obj(&a), *ver = jv_obj(&a);
    if (!rc && (!in || !ver)) rc = ERR_NOMEM_RET(e);
    if (!rc) {
        const char *status = cli_opt_value(c, "status"), *from = cli_opt_value(c, "from");
        int m = jv_obj_set_str(&a, in, "code", c->argv[0]);
        m |= jv_obj_set_str(&a, in, "kind", cli_opt_value(c, "kind"));
        m |= jv_obj_set_str(&a, in, "name", cli_opt_value(c, "name"));
        if (status) m |= jv_obj_set_str(&a, in, "status", status);
        if (from) m |= jv_obj_set_str(&a, ver, "effective_from", from);
        m |= jv_obj_set_int(&a, ver, "price", price);
        m |= jv_obj_set_str(&a, ver, "tax_category", cli_opt_value(c, "tax-category"));
        m |= jv_obj_set_str(&a, ver, "rule", cli_opt_value(c, "rule"));
        if (params) m |= jv_obj_set(&a, ver, "params", params);
        if (attrs) m |= jv_obj_set(&a, ver, "attrs", attrs);
        m |= jv_obj_set(&a, in, "version", ver);
        if (m) rc = ERR_NOMEM_RET(e);
    }
    env x;
    memset(&x, 0, sizeof x);
    if (!rc) rc = open_all(c, &x, e);
    char by[96];
    cli_actor(by, sizeof by);
    int64_t pid = 0;
    jv *after = NULL;
    if (!rc) rc = db_begin(x.d, e);
    if (!rc) rc = catalog_create(x.d, x.rs, in, by, &pid, e);
    if (!rc) rc = product_jv(x.d, &a, pid, 1, &after, e);
    audit_event ev = {.action = "product.create", .object_type = "product", .object_id = c->argv[0], .after = after};
    if (!rc) rc = cli_audit(c, x.d, x.v, &ev, e);
    if (!rc) rc = db_commit(x.d, e);
    rc = close_all(&x, rc);
    if (!rc) rc = print_product(c, after, "created", e);
    jv_arena_free(&a);
    return rc;
}

int cmd_product_price(cli *c, err *e)
{
    const char *from = cli_opt_value(c, "from");
    if (!from) return err_set(e, ERR_USAGE, "product price needs --from DATE: the day the new version starts");
    int64_t price = 0;
    int have_price;
    int rc = price_option(c, &price, &have_price, e);
    if (rc) return rc;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *params;
    rc = json_option(c, "params", &a, &params, e);
    if (!rc && !have_price && !params) rc = err_set(e, ERR_USAGE, "product price needs --price, --price-fen or --params");
    jv *in = jv_obj(&a);
    if (!rc && !in) rc = ERR_NOMEM_RET(e);
    if (!rc) {
        int m = jv_obj_set_str(&a, in, "effective_from", from);
        if (have_price) m |= jv_obj_set_int(&a, in, "price", price);
        if (params) m |= jv_obj_set(&a, in, "params", params);
        if (m) rc = ERR_NOMEM_RET(e);
    }
    env x;
    memset(&x, 0, sizeof x);
    if (!rc) rc = open_all(c, &x, e);
    product p;
    if (!rc) rc = catalog_product(x.d, c->argv[0], &p, e);
    char by[96];
    cli_actor(by, sizeof by);
    jv *before = NULL, *after = NULL;
    if (!rc) rc = db_begin(x.d, e);
    if (!rc) rc = product_jv(x.d, &a, p.id, 1, &before, e);
    if (!rc) rc = catalog_add_version(x.d, x.rs, p.id, in, by, e);
    if (!rc) rc = product_jv(x.d, &a, p.id, 1, &after, e);
    audit_event ev = {.action = "product.version_add", .object_type = "product", .object_id = c->argv[0],
                      .before = before, .after = after};
    if (!rc) rc = cli_audit(c, x.d, x.v, &ev, e);
    if (!rc) rc = db_commit(x.d, e);
    rc = close_all(&x, rc);
    if (!rc) rc = print_product(c, after, "priced", e);
    jv_arena_free(&a);
    return rc;
}

/* ======================================================================
 * subscribe: owned by the subscriptions module.
 *
 * `bandbill subscribe CUSTOMER PLAN [--start DATE] [--addons A,B]
 * [--account USERNAME]`: the same checks and rules as
 * POST /api/v1/customers/{code}/subscriptions (subs.c), audited as the
 * local user.
 * ====================================================================== */

#include "customers.h"
#include "subs.h"

/* Splits "A,B" into codes (in place); empty codes are a usage error. */
static int subscribe_split(char *list, const char **out, size_t *n, err *e)
{
    *n = 0;
    char *save = NULL;
    if (!list[0] || list[0] == ',' || list[strlen(list) - 1] == ',' || strstr(list, ",,"))
        return err_set(e, ERR_USAGE, "--addons takes product codes separated by commas, e.g. IPTV,STATICIP");
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        char *end = t + strlen(t);
        while (end > t && end[-1] == ' ') *--end = '\0';
        if (!*t) return err_set(e, ERR_USAGE, "--addons has an empty code");
        if (*n == SUBS_MAX_ADDONS) return err_set(e, ERR_USAGE, "--addons: at most %d add-ons", SUBS_MAX_ADDONS);
        out[(*n)++] = t;
    }
    return 0;
}

static void subscribe_print(const jv *o)
{
    const jv *ce = jv_get(o, "contract_end"), *pt = jv_get(o, "paid_through"), *acc = jv_get(o, "account");
    printf("subscription %lld: %s on %s (%s) from %s, %s\n", (long long)jv_get(o, "id")->u.i, jv_get(o, "customer")->u.str.s,
           jv_get(o, "plan")->u.str.s, jv_get(o, "plan_name")->u.str.s, jv_get(o, "start_date")->u.str.s,
           jv_get(o, "status")->u.str.s);
    printf("  %s, billed by the %s; next bill %s", jv_get(o, "billing")->u.str.s, jv_get(o, "period")->u.str.s,
           jv_get(o, "next_bill_date")->u.str.s);
    if (pt && pt->kind == JV_STR) printf("; paid through %s", pt->u.str.s);
    if (ce && ce->kind == JV_STR) printf("; contract until %s", ce->u.str.s);
    if (acc && acc->kind == JV_STR) printf("; account %s", acc->u.str.s);
    printf("\n");
    const jv *items = jv_get(o, "items");
    for (size_t i = 0; i < jv_len(items); i++)
        printf("  add-on %s (%s) from %s\n", jv_get(jv_at(items, i), "product")->u.str.s,
               jv_get(jv_at(items, i), "name")->u.str.s, jv_get(jv_at(items, i), "start_date")->u.str.s);
}

int cmd_subscribe(cli *c, err *e)
{
    const char *code = c->argv[0], *plan = c->argv[1], *start = cli_opt_value(c, "start");
    const char *list = cli_opt_value(c, "addons"), *account = cli_opt_value(c, "account");
    if (start && !subs_date_ok(start)) return err_set(e, ERR_USAGE, "--start must be a date YYYY-MM-DD, not '%s'", start);
    char codes[1024];
    const char *addons[SUBS_MAX_ADDONS];
    size_t naddons = 0;
    if (list) {
        if (strlen(list) >= sizeof codes) return err_set(e, ERR_USAGE, "--addons is too long");
        snprintf(codes, sizeof codes, "%s", list);
        int rc = subscribe_split(codes, addons, &naddons, e);
        if (rc) return rc;
    }
    db *d = NULL;
    vault *v = NULL;
    rules_snapshot *snap = NULL;
    ruleset *rs = NULL;
    jv_arena a;
    jv_arena_init(&a, 0);
    /* the rules must pass their examples, as the daemon demands before a
     * rule set goes live: a subscription's dates come from them */
    lhost_limits lim = {(uint64_t)c->cfg.rules_max_instructions, (size_t)c->cfg.rules_max_memory_mb << 20};
    int rc = cli_open_db(c, &d, e);
    if (!rc) rc = cli_open_vault(c, &v, e);
    if (!rc && (rc = rules_snapshot_read(c->cfg.rules, &snap, e))) err_prefix(e, "rules folder %s", c->cfg.rules);
    if (!rc) rc = ruleset_load(snap, &lim, 1, &rs, NULL, e);
    int64_t cid = 0, id = 0;
    if (!rc) rc = customers_id_by_code(d, code, &cid, e);
    char today_s[11], by[96];
    date_format(date_of_time(time(NULL)), today_s);
    cli_actor(by, sizeof by);
    subs_new in = {.customer_id = cid,
                   .plan = plan,
                   .start_date = start,
                   .addons = addons,
                   .naddons = naddons,
                   .account = account,
                   .today = today_s,
                   .by = by};
    jv *after = NULL;
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = subs_create(d, rs, &in, &id, NULL, e);
    if (!rc) rc = subs_get(d, id, SUBS_WITH_CHANGES, &a, &after, e);
    char oid[32];
    snprintf(oid, sizeof oid, "%lld", (long long)id);
    audit_event ev = {.action = "subscription.create", .object_type = "subscription", .object_id = oid, .after = after};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    if (d && db_in_tx(d)) db_rollback(d);
    if (d) db_close(d);
    if (v) vault_close(v);
    ruleset_unref(rs);
    if (snap) rules_snapshot_unref(snap);
    if (!rc && c->json) {
        jw w;
        jw_init(&w, 0);
        jw_jv(&w, after);
        rc = cli_print_json(&w, e);
    } else if (!rc) {
        subscribe_print(after);
    }
    jv_arena_free(&a);
    return rc;
}
