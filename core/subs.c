/* subs.c - subscriptions, their changes, and one-time charges (see subs.h).
 *
 * Every decision comes from rules/subscriptions.lua; this file gathers the
 * facts a rule needs (the subscription, the plans with their versions in
 * force, the add-ons), checks the rule's answer against its contract before
 * anything is written, and keeps the data consistent (one live
 * subscription per service account, no add-on twice, one pending plan
 * change at a time, the service account's status following the
 * subscription's). */
#include "subs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "catalog.h"
#include "date.h"
#include "log.h"
#include "netstate.h"
#include "scheduler.h"
#include "vault.h"

#define RULE_SCHEDULE "subscriptions.schedule"
#define RULE_FITS "subscriptions.addon_fits"
#define RULE_CHANGE "subscriptions.change"
#define RULE_ON_NET "tax.on_net"

#define NOTE_MAX 500
#define CHARGE_MAX_QUANTITY 10000
#define CHARGE_MAX_DESCRIPTION 200

/* ------------------------------------------------------------------ dates */

int subs_date_ok(const char *s)
{
    int32_t dd;
    err e;
    return s && strlen(s) == 10 && date_parse(s, 10, &dd, &e) == 0;
}

/* s must be a valid date. */
static void add_days(const char *s, int n, char out[11])
{
    int32_t dd = 0;
    err e;
    date_parse(s, 10, &dd, &e);
    date_format(dd + n, out);
}

static int need_tx(db *d, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "subscriptions: a change outside a transaction");
    return 0;
}

/* ------------------------------------------------------------------ rules */

/* Calls a rule with one context. A missing rule is the operator's rules
 * folder at fault, not the client's request: ERR_RULE, not ERR_NOTFOUND. */
static int call_rule(ruleset *rs, const char *name, const jv *ctx, jv_arena *a, jv **out, rule_error *detail,
                     err *e)
{
    if (!rs) return err_set(e, ERR_INTERNAL, "no rule set is loaded");
    const jv *args[1] = {ctx};
    int rc = rules_call(rs, name, args, 1, a, out, e);
    if (rc && detail) *detail = *lhost_last_error(rs->host);
    if (rc == ERR_NOTFOUND) rc = err_field(e, ERR_RULE, "rule_error", "", "%s", e->msg);
    return rc;
}

/* A result outside the rule's contract: the rule is at fault, so the error
 * names it (and the API shows the details like any other rule failure). */
__attribute__((format(printf, 4, 5))) static int bad_output(rule_error *detail, err *e, const char *rule,
                                                            const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (detail) {
        memset(detail, 0, sizeof *detail);
        const char *dot = strrchr(rule, '.');
        snprintf(detail->rule, sizeof detail->rule, "%s", rule);
        snprintf(detail->kind, sizeof detail->kind, "output");
        snprintf(detail->file, sizeof detail->file, "%.*s.lua", (int)(dot - rule), rule);
        snprintf(detail->function, sizeof detail->function, "%s", dot + 1);
        snprintf(detail->message, sizeof detail->message, "returned an invalid value: %s", msg);
    }
    return err_field(e, ERR_RULE, "rule_error", "", "rule %s returned an invalid value: %s", rule, msg);
}

/* A short description of a value for error messages. */
static const char *describe(const jv *v, char *out, size_t n)
{
    if (!v) snprintf(out, n, "nothing");
    else if (v->kind == JV_STR) snprintf(out, n, "\"%.*s\"", (int)(v->u.str.len > 40 ? 40 : v->u.str.len), v->u.str.s);
    else if (v->kind == JV_INT) snprintf(out, n, "%lld", (long long)v->u.i);
    else if (v->kind == JV_NUM) snprintf(out, n, "%g", v->u.num);
    else if (v->kind == JV_BOOL) snprintf(out, n, "%s", v->u.b ? "true" : "false");
    else snprintf(out, n, "a %s", jv_kind_name(v->kind));
    return out;
}

/* The result must be a record whose keys are all in `allowed`: a typo such
 * as "efective_date" must not pass as an absent optional field. */
static int check_record(const jv *res, const char *const *allowed, const char *rule, rule_error *detail, err *e)
{
    if (!res || res->kind != JV_OBJ) {
        char b[64];
        return bad_output(detail, e, rule, "expected a table with named fields, got %s", describe(res, b, sizeof b));
    }
    for (size_t i = 0; i < res->u.obj.n; i++) {
        const char *k = res->u.obj.m[i].key;
        const char *const *p = allowed;
        while (*p && strcmp(*p, k)) p++;
        if (!*p) return bad_output(detail, e, rule, "unexpected field '%s'", k);
    }
    return 0;
}

static const jv *present(const jv *res, const char *key)
{
    const jv *v = jv_get(res, key);
    return v && v->kind != JV_NULL ? v : NULL;
}

/* A date field of a result; out is "" when absent and not required. */
static int res_date(const jv *res, const char *key, int required, char out[11], const char *rule,
                    rule_error *detail, err *e)
{
    const jv *v = present(res, key);
    out[0] = '\0';
    if (!v) return required ? bad_output(detail, e, rule, "%s is missing", key) : 0;
    char b[64];
    if (v->kind != JV_STR || v->u.str.len != 10 || !subs_date_ok(v->u.str.s))
        return bad_output(detail, e, rule, "%s must be a date \"YYYY-MM-DD\", got %s", key, describe(v, b, sizeof b));
    memcpy(out, v->u.str.s, 11);
    return 0;
}

/* ------------------------------------------------------------ products */

typedef struct offer {
    product p;
    product_version v;
} offer;

static const char *kind_label(const char *kind)
{
    if (!strcmp(kind, "plan")) return "a plan";
    if (!strcmp(kind, "addon")) return "an add-on";
    if (!strcmp(kind, "fee")) return "a fee";
    if (!strcmp(kind, "deposit")) return "a deposit";
    if (!strcmp(kind, "promotion")) return "a promotion";
    return kind;
}

/* A product of `kind` with its version in force on `on`. for_sale: it must
 * be active (a retired add-on can still be removed, never sold). */
static int load_offer(db *d, const char *code, const char *kind, const char *field, int for_sale, const char *on,
                      jv_arena *a, offer *o, err *e)
{
    int rc = catalog_product(d, code, &o->p, e);
    if (rc == ERR_NOTFOUND) return err_field(e, ERR_NOTFOUND, "not_found", field, "no product %s", code);
    if (rc) return rc;
    if (strcmp(o->p.kind, kind))
        return err_field(e, ERR_INVALID, "wrong_product_kind", field, "%s is %s, not %s", code, kind_label(o->p.kind),
                         kind_label(kind));
    if (for_sale && strcmp(o->p.status, "active"))
        return err_field(e, ERR_CONFLICT, "not_for_sale", field, "%s is %s: not for sale", code, o->p.status);
    rc = catalog_version_at(d, o->p.id, on, a, &o->v, e);
    if (rc == ERR_NOTFOUND)
        return err_field(e, ERR_CONFLICT, "no_version", field, "%s has no price in force on %s", code, on);
    return rc;
}

static int load_offer_by_id(db *d, int64_t id, const char *on, jv_arena *a, offer *o, err *e)
{
    int rc = catalog_product_by_id(d, id, &o->p, e);
    if (rc) return rc;
    rc = catalog_version_at(d, id, on, a, &o->v, e);
    if (rc != ERR_NOTFOUND) return rc;
    /* a product already on a subscription but priced only from a later
     * date (an imported subscription): its first version stands in, rather
     * than every change of that subscription failing */
    char first[11] = "";
    db_stmt *s = db_prepare(d, "SELECT MIN(effective_from) FROM product_versions WHERE product_id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    rc = db_step(d, s, e);
    if (rc == DB_ROW && !db_col_is_null(s, 0)) snprintf(first, sizeof first, "%s", db_col_text(s, 0));
    db_done(s);
    if (rc < 0) return rc;
    if (!first[0]) return err_set(e, ERR_CONFLICT, "product %s has no version at all", o->p.code);
    return catalog_version_at(d, id, first, a, &o->v, e);
}

/* {code, name, price, tax_category, attrs}: a product as the rules see it. */
static jv *offer_ctx(jv_arena *a, const offer *o)
{
    jv *r = jv_obj(a);
    if (!r) return NULL;
    int bad = jv_obj_set_str(a, r, "code", o->p.code);
    bad |= jv_obj_set_str(a, r, "name", o->p.name);
    bad |= jv_obj_set_int(a, r, "price", o->v.price);
    bad |= jv_obj_set_str(a, r, "tax_category", o->v.tax_category);
    bad |= jv_obj_set(a, r, "attrs", o->v.attrs ? jv_copy(a, o->v.attrs) : jv_obj(a));
    return bad ? NULL : r;
}

/* The customer's service address and tags, for catalog_available. */
static int market_of(db *d, int64_t cid, jv_arena *a, jv **addr, jv **tags, err *e)
{
    static const char *const parts[] = {"province", "city", "district", "street", "community",
                                        "building", "unit",  "floor",    "room",   "gis_code"};
    *addr = jv_obj(a);
    *tags = jv_arr(a);
    if (!*addr || !*tags) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d,
                            "SELECT province, city, district, street, community, building, unit, floor, room, gis_code "
                            "FROM addresses WHERE customer_id = ? AND kind = 'service'",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, cid);
    int rc = db_step(d, s, e), bad = 0;
    if (rc == DB_ROW)
        for (int i = 0; i < 10; i++)
            if (!db_col_is_null(s, i)) bad |= jv_obj_set_str(a, *addr, parts[i], db_col_text(s, i));
    db_done(s);
    if (rc < 0) return rc;
    if (bad) return ERR_NOMEM_RET(e);
    s = db_prepare(d, "SELECT tag FROM customer_tags WHERE customer_id = ? ORDER BY tag", e);
    if (!s) return e->code;
    db_bind_int(s, 1, cid);
    while ((rc = db_step(d, s, e)) == DB_ROW) bad |= jv_arr_push(a, *tags, jv_str(a, db_col_text(s, 0)));
    db_done(s);
    if (rc < 0) return rc;
    return bad ? ERR_NOMEM_RET(e) : 0;
}

static int check_customer(db *d, int64_t cid, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT status, erased_at IS NOT NULL FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, cid);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        if (!strcmp(db_col_text(s, 0), "closed") || db_col_int(s, 1))
            rc = err_field(e, ERR_CONFLICT, "customer_closed", "customer", "the customer is closed");
        else
            rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "customer", "no customer with id %lld", (long long)cid);
    }
    db_done(s);
    return rc;
}

/* -------------------------------------------------------- subscriptions */

typedef struct sub_row {
    int64_t id, customer_id, product_id, account_id;
    char status[16], billing[16], period[16];
    char start_date[11], contract_end[11], paid_through[11], next_bill_date[11], end_date[11];
    int anchor_day;
} sub_row;

static int load_sub(db *d, int64_t id, sub_row *r, err *e)
{
    memset(r, 0, sizeof *r);
    db_stmt *s = db_prepare(d,
                            "SELECT id, customer_id, product_id, service_account_id, status, billing, period, start_date, "
                            "contract_end, paid_through, next_bill_date, end_date, anchor_day FROM subscriptions WHERE id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        r->id = db_col_int(s, 0);
        r->customer_id = db_col_int(s, 1);
        r->product_id = db_col_int(s, 2);
        r->account_id = db_col_is_null(s, 3) ? 0 : db_col_int(s, 3);
        snprintf(r->status, sizeof r->status, "%s", db_col_text(s, 4));
        snprintf(r->billing, sizeof r->billing, "%s", db_col_text(s, 5));
        snprintf(r->period, sizeof r->period, "%s", db_col_text(s, 6));
        snprintf(r->start_date, sizeof r->start_date, "%s", db_col_text(s, 7));
        snprintf(r->contract_end, sizeof r->contract_end, "%s", db_col_text(s, 8));
        snprintf(r->paid_through, sizeof r->paid_through, "%s", db_col_text(s, 9));
        snprintf(r->next_bill_date, sizeof r->next_bill_date, "%s", db_col_text(s, 10));
        snprintf(r->end_date, sizeof r->end_date, "%s", db_col_text(s, 11));
        r->anchor_day = (int)db_col_int(s, 12);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "id", "no subscription %lld", (long long)id);
    }
    db_done(s);
    return rc;
}

int subs_customer_of(db *d, int64_t id, int64_t *customer_id, err *e)
{
    int rc = db_get_int(d, e, customer_id, "SELECT customer_id FROM subscriptions WHERE id = ?", "i", id);
    if (rc == ERR_NOTFOUND) return err_field(e, ERR_NOTFOUND, "not_found", "id", "no subscription %lld", (long long)id);
    return rc;
}

/* What subscriptions.schedule returned, checked. */
typedef struct schedule_out {
    char billing[16], period[16];
    char contract_end[11], next_bill_date[11], paid_through[11];
    int anchor_day;
} schedule_out;

static int one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

static const char *const BILLINGS[] = {"prepaid", "postpaid", NULL};
static const char *const PERIODS[] = {"month", "quarter", "half_year", "year", NULL};

static int check_schedule(const jv *res, const char *start, schedule_out *o, rule_error *detail, err *e)
{
    static const char *const keys[] = {"billing",        "period",       "contract_end", "anchor_day",
                                       "next_bill_date", "paid_through", NULL};
    const char *R = RULE_SCHEDULE;
    char b[64];
    int rc = check_record(res, keys, R, detail, e);
    if (rc) return rc;
    const jv *v = present(res, "billing");
    if (!v || v->kind != JV_STR || !one_of(v->u.str.s, BILLINGS))
        return bad_output(detail, e, R, "billing must be \"prepaid\" or \"postpaid\", got %s", describe(v, b, sizeof b));
    snprintf(o->billing, sizeof o->billing, "%s", v->u.str.s);
    v = present(res, "period");
    if (!v || v->kind != JV_STR || !one_of(v->u.str.s, PERIODS))
        return bad_output(detail, e, R, "period must be one of month, quarter, half_year, year; got %s",
                          describe(v, b, sizeof b));
    snprintf(o->period, sizeof o->period, "%s", v->u.str.s);
    v = present(res, "anchor_day");
    if (!v || v->kind != JV_INT || v->u.i < 1 || v->u.i > 31)
        return bad_output(detail, e, R, "anchor_day must be a whole number from 1 to 31, got %s", describe(v, b, sizeof b));
    o->anchor_day = (int)v->u.i;
    if ((rc = res_date(res, "next_bill_date", 1, o->next_bill_date, R, detail, e)) ||
        (rc = res_date(res, "contract_end", 0, o->contract_end, R, detail, e)) ||
        (rc = res_date(res, "paid_through", 0, o->paid_through, R, detail, e)))
        return rc;
    char before_start[11];
    add_days(start, -1, before_start);
    if (strcmp(o->next_bill_date, start) < 0)
        return bad_output(detail, e, R, "next_bill_date %s is before the start date %s", o->next_bill_date, start);
    if (o->contract_end[0] && strcmp(o->contract_end, start) < 0)
        return bad_output(detail, e, R, "contract_end %s is before the start date %s", o->contract_end, start);
    if (o->paid_through[0] && strcmp(o->paid_through, before_start) < 0)
        return bad_output(detail, e, R, "paid_through %s is before the day before the start date %s", o->paid_through, start);
    return 0;
}

/* {allowed, reason?} of subscriptions.addon_fits and .change: *allowed, and
 * the reason of a refusal in `reason`. */
static int check_verdict(const jv *res, const char *rule, int *allowed, char *reason, size_t n, rule_error *detail,
                         err *e)
{
    char b[64];
    const jv *v = present(res, "allowed");
    if (!v || v->kind != JV_BOOL)
        return bad_output(detail, e, rule, "allowed must be true or false, got %s", describe(v, b, sizeof b));
    *allowed = v->u.b;
    const jv *r = present(res, "reason");
    if (r && r->kind != JV_STR) return bad_output(detail, e, rule, "reason must be a text, got %s", describe(r, b, sizeof b));
    if (!*allowed) snprintf(reason, n, "%s", r && r->u.str.len ? r->u.str.s : "refused by the rules");
    return 0;
}

/* The account may carry a new subscription of customer cid: it is the
 * customer's, open, and carries no live subscription. (A subscription's
 * account is always its customer's, so the search for one that carries it
 * goes through the customer's subscriptions: indexed.) */
static int account_free(db *d, int64_t account_id, const char *username, int64_t cid, err *e)
{
    int64_t other;
    int rc = db_get_int(d, e, &other,
                        "SELECT id FROM subscriptions WHERE customer_id = ? AND service_account_id = ? "
                        "AND status <> 'terminated' ORDER BY id LIMIT 1",
                        "ii", cid, account_id);
    if (rc == 0)
        return err_field(e, ERR_CONFLICT, "account_in_use", "account", "service account %s already carries subscription %lld",
                         username, (long long)other);
    return rc == ERR_NOTFOUND ? 0 : rc;
}

static int account_check(db *d, int64_t cid, int64_t account_id, const char *username, int64_t *found, err *e)
{
    db_stmt *s = account_id ? db_prepare(d, "SELECT id, customer_id, status, username FROM service_accounts WHERE id = ?", e)
                            : db_prepare(d, "SELECT id, customer_id, status, username FROM service_accounts WHERE username = ?", e);
    if (!s) return e->code;
    if (account_id) db_bind_int(s, 1, account_id);
    else db_bind_text(s, 1, username);
    int rc = db_step(d, s, e);
    char name[96] = "";
    int64_t aid = 0;
    if (rc == DB_ROW) {
        aid = db_col_int(s, 0);
        snprintf(name, sizeof name, "%s", db_col_text(s, 3));
        if (db_col_int(s, 1) != cid)
            rc = err_field(e, ERR_CONFLICT, "account_of_another", "account", "service account %s belongs to another customer",
                           name);
        else if (!strcmp(db_col_text(s, 2), "closed"))
            rc = err_field(e, ERR_CONFLICT, "account_closed", "account", "service account %s is closed", name);
        else
            rc = 0;
    } else if (rc == DB_DONE) {
        if (account_id) rc = err_field(e, ERR_NOTFOUND, "not_found", "account", "no service account %lld", (long long)account_id);
        else rc = err_field(e, ERR_NOTFOUND, "not_found", "account", "no service account %s", username);
    }
    db_done(s);
    if (rc) return rc;
    *found = aid;
    return account_free(d, aid, name, cid, e);
}

static int account_for(db *d, const char *username, int64_t cid, int64_t *account_id, err *e)
{
    return account_check(d, cid, 0, username, account_id, e);
}

/* Where the products of a new subscription come from: the database, or a
 * catalog read once (subs_catalog) for bulk loads. Errors as load_offer's. */
typedef int (*offer_loader)(void *ud, const char *code, const char *kind, const char *field, const char *on, jv_arena *a,
                            offer *o, err *e);

static int db_loader(void *ud, const char *code, const char *kind, const char *field, const char *on, jv_arena *a, offer *o,
                     err *e)
{
    return load_offer(ud, code, kind, field, 1, on, a, o, e);
}

/* The checks of a new subscription that need nothing but the request;
 * *start gets its start date. */
static int check_new(const subs_new *in, const char **start, err *e)
{
    *start = in->start_date ? in->start_date : in->today;
    if (!subs_date_ok(in->today) || !in->by) return err_set(e, ERR_INTERNAL, "subs_create: no valid today or requester");
    if (in->note && strlen(in->note) > NOTE_MAX)
        return err_field(e, ERR_INVALID, "invalid_field", "note", "note must be at most %d bytes", NOTE_MAX);
    if (!subs_date_ok(*start))
        return err_field(e, ERR_INVALID, "invalid_date", "start_date", "start_date must be a date YYYY-MM-DD");
    if (!in->plan || !in->plan[0]) return err_field(e, ERR_INVALID, "missing_field", "plan", "plan is required");
    if (in->naddons > SUBS_MAX_ADDONS)
        return err_field(e, ERR_INVALID, "too_many", "addons", "at most %d add-ons", SUBS_MAX_ADDONS);
    return 0;
}

/* The plan and add-ons: for sale, sold at the customer's address and to
 * the customer's tags, the add-ons fitting the plan (subscriptions.addon_fits).
 * *plan_ctx gets the plan as the rules see it. */
static int decide_offers(offer_loader load, void *ud, ruleset *rs, const subs_new *in, const char *start, const jv *addr,
                         const jv *tags, jv_arena *a, offer *plan, offer **ads_out, jv **plan_ctx, rule_error *detail, err *e)
{
    int rc = load(ud, in->plan, "plan", "plan", start, a, plan, e);
    if (rc) return rc;
    if (!catalog_available(&plan->v, addr, tags))
        return err_field(e, ERR_CONFLICT, "not_available", "plan",
                         "plan %s is not sold at the customer's address or to the customer's tags", plan->p.code);
    if (!(*plan_ctx = offer_ctx(a, plan))) return ERR_NOMEM_RET(e);
    offer *ads = in->naddons ? jv_alloc(a, in->naddons * sizeof *ads) : NULL;
    if (in->naddons && !ads) return ERR_NOMEM_RET(e);
    for (size_t i = 0; i < in->naddons; i++) {
        char field[32];
        snprintf(field, sizeof field, "addons[%zu]", i);
        const char *code = in->addons[i];
        if (!code || !code[0]) return err_field(e, ERR_INVALID, "invalid_field", field, "an add-on code is required");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(in->addons[j], code))
                return err_field(e, ERR_INVALID, "duplicate", field, "add-on %s is listed twice", code);
        if ((rc = load(ud, code, "addon", field, start, a, &ads[i], e))) return rc;
        if (!catalog_available(&ads[i].v, addr, tags))
            return err_field(e, ERR_CONFLICT, "not_available", field,
                             "add-on %s is not sold at the customer's address or to the customer's tags", code);
        jv *ctx = jv_obj(a), *res, *actx = offer_ctx(a, &ads[i]);
        if (!ctx || !actx || jv_obj_set(a, ctx, "plan", *plan_ctx) || jv_obj_set(a, ctx, "addon", actx))
            return ERR_NOMEM_RET(e);
        static const char *const keys[] = {"allowed", "reason", NULL};
        int allowed = 0;
        char reason[512];
        if ((rc = call_rule(rs, RULE_FITS, ctx, a, &res, detail, e)) || (rc = check_record(res, keys, RULE_FITS, detail, e)) ||
            (rc = check_verdict(res, RULE_FITS, &allowed, reason, sizeof reason, detail, e)))
            return rc;
        if (!allowed) return err_field(e, ERR_CONFLICT, "addon_refused", field, "%s", reason);
    }
    *ads_out = ads;
    return 0;
}

/* The dates, from subscriptions.schedule. */
static int decide_schedule(ruleset *rs, const char *start, jv *plan_ctx, jv_arena *a, schedule_out *sch, rule_error *detail,
                           err *e)
{
    jv *ctx = jv_obj(a), *res;
    if (!ctx || jv_obj_set_str(a, ctx, "start_date", start) || jv_obj_set(a, ctx, "plan", plan_ctx)) return ERR_NOMEM_RET(e);
    int rc = call_rule(rs, RULE_SCHEDULE, ctx, a, &res, detail, e);
    if (!rc) rc = check_schedule(res, start, sch, detail, e);
    return rc;
}

/* Writes a decided subscription: the row, its add-on items and its
 * 'create' change (scheduled when it starts after today). */
static int write_sub(db *d, int64_t cid, int64_t plan_id, const int64_t *addon_ids, size_t naddons, int64_t account_id,
                     const char *start, const schedule_out *sch, const char *rules_version, const char *note,
                     const char *today, const char *by, int64_t *id, err *e)
{
    char now[25];
    db_now(now);
    int pending = strcmp(start, today) > 0;
    db_stmt *s = db_prepare(d,
                            "INSERT INTO subscriptions (customer_id, product_id, service_account_id, status, billing, period, "
                            "start_date, contract_end, anchor_day, paid_through, next_bill_date, created_at, created_by) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, cid);
    db_bind_int(s, 2, plan_id);
    if (account_id) db_bind_int(s, 3, account_id);
    else db_bind_null(s, 3);
    db_bind_text(s, 4, pending ? "pending" : "active");
    db_bind_text(s, 5, sch->billing);
    db_bind_text(s, 6, sch->period);
    db_bind_text(s, 7, start);
    db_bind_text(s, 8, sch->contract_end[0] ? sch->contract_end : NULL);
    db_bind_int(s, 9, sch->anchor_day);
    db_bind_text(s, 10, sch->paid_through[0] ? sch->paid_through : NULL);
    db_bind_text(s, 11, sch->next_bill_date);
    db_bind_text(s, 12, now);
    db_bind_text(s, 13, by);
    int rc = db_step(d, s, e);
    db_done(s);
    if (rc < 0) return rc;
    int64_t sid = db_last_id(d);
    for (size_t i = 0; i < naddons; i++)
        if ((rc = db_run(d, e,
                         "INSERT INTO subscription_items (subscription_id, product_id, quantity, start_date) VALUES (?, ?, 1, ?)",
                         "iis", sid, addon_ids[i], start)))
            return rc;
    rc = db_run(d, e,
                "INSERT INTO subscription_changes (subscription_id, kind, effective_date, to_product_id, status, fee, "
                "rules_version, note, requested_at, requested_by, applied_at) VALUES (?, 'create', ?, ?, ?, 0, ?, ?, ?, ?, ?)",
                "isissssss", sid, start, plan_id, pending ? "scheduled" : "applied", rules_version, note, now, by,
                pending ? NULL : now);
    if (rc) return rc;
    *id = sid;
    return 0;
}

static int subs_create_in(db *d, ruleset *rs, const subs_new *in, jv_arena *a, int64_t *id, rule_error *detail, err *e)
{
    const char *start;
    int rc = check_new(in, &start, e);
    if (!rc) rc = check_customer(d, in->customer_id, e);
    if (rc) return rc;
    offer plan, *ads = NULL;
    jv *addr, *tags, *plan_ctx = NULL;
    if ((rc = market_of(d, in->customer_id, a, &addr, &tags, e))) return rc;
    if ((rc = decide_offers(db_loader, d, rs, in, start, addr, tags, a, &plan, &ads, &plan_ctx, detail, e))) return rc;
    int64_t account_id = 0;
    if (in->account && (rc = account_for(d, in->account, in->customer_id, &account_id, e))) return rc;
    schedule_out sch;
    if ((rc = decide_schedule(rs, start, plan_ctx, a, &sch, detail, e))) return rc;
    /* everything is checked: write */
    int64_t addon_ids[SUBS_MAX_ADDONS];
    for (size_t i = 0; i < in->naddons; i++) addon_ids[i] = ads[i].p.id;
    return write_sub(d, in->customer_id, plan.p.id, addon_ids, in->naddons, account_id, start, &sch, rs->snap->version, in->note,
                     in->today, in->by, id, e);
}

int subs_create(db *d, ruleset *rs, const subs_new *in, int64_t *id, rule_error *detail, err *e)
{
    int rc = need_tx(d, e);
    if (rc) return rc;
    if (!rs) return err_set(e, ERR_INTERNAL, "no rule set is loaded");
    jv_arena a;
    jv_arena_init(&a, 0);
    rc = subs_create_in(d, rs, in, &a, id, detail, e);
    jv_arena_free(&a);
    return rc;
}

/* -------------------------------------------------------- bulk creation */

typedef struct cat_item {
    product p;
    size_t nv;
    product_version *v;   /* by effective_from, oldest first */
} cat_item;

struct subs_catalog {
    jv_arena a;
    size_t n;
    cat_item *items;
};

void subs_catalog_free(subs_catalog *c)
{
    if (!c) return;
    jv_arena_free(&c->a);
    free(c);
}

int subs_catalog_load(db *d, subs_catalog **out, err *e)
{
    *out = NULL;
    subs_catalog *c = calloc(1, sizeof *c);
    if (!c) return ERR_NOMEM_RET(e);
    jv_arena_init(&c->a, 0);
    int64_t n = 0;
    int rc = db_get_int(d, e, &n, "SELECT count(*) FROM products", NULL);
    if (!rc && n && !(c->items = jv_alloc(&c->a, (size_t)n * sizeof *c->items))) rc = ERR_NOMEM_RET(e);
    /* ids first: reading each product's versions uses other statements */
    int64_t *ids = !rc && n ? jv_alloc(&c->a, (size_t)n * sizeof *ids) : NULL;
    if (!rc && n && !ids) rc = ERR_NOMEM_RET(e);
    if (!rc) {
        db_stmt *s = db_prepare(d, "SELECT id FROM products ORDER BY id", e);
        if (!s) rc = e->code;
        while (s && (rc = db_step(d, s, e)) == DB_ROW && c->n < (size_t)n) ids[c->n++] = db_col_int(s, 0);
        if (s) db_done(s);
        if (rc > 0) rc = 0;
    }
    for (size_t i = 0; !rc && i < c->n; i++) {
        cat_item *it = &c->items[i];
        memset(it, 0, sizeof *it);
        if ((rc = catalog_product_by_id(d, ids[i], &it->p, e))) break;
        int64_t nv = 0;
        if ((rc = db_get_int(d, e, &nv, "SELECT count(*) FROM product_versions WHERE product_id = ?", "i", ids[i]))) break;
        char (*dates)[11] = nv ? jv_alloc(&c->a, (size_t)nv * sizeof *dates) : NULL;
        if (nv && (!dates || !(it->v = jv_alloc(&c->a, (size_t)nv * sizeof *it->v)))) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
        db_stmt *s = db_prepare(d, "SELECT effective_from FROM product_versions WHERE product_id = ? ORDER BY effective_from", e);
        if (!s) {
            rc = e->code;
            break;
        }
        db_bind_int(s, 1, ids[i]);
        size_t k = 0;
        while ((rc = db_step(d, s, e)) == DB_ROW && k < (size_t)nv) snprintf(dates[k++], 11, "%s", db_col_text(s, 0));
        db_done(s);
        if (rc < 0) break;
        rc = 0;
        /* each version exactly as catalog_version_at reads it */
        for (size_t j = 0; !rc && j < k; j++) rc = catalog_version_at(d, ids[i], dates[j], &c->a, &it->v[j], e);
        it->nv = k;
    }
    if (rc) {
        subs_catalog_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* load_offer on the catalog read once: the same checks and errors. */
static int cat_loader(void *ud, const char *code, const char *kind, const char *field, const char *on, jv_arena *a, offer *o,
                      err *e)
{
    const subs_catalog *c = ud;
    const cat_item *it = NULL;
    for (size_t i = 0; !it && i < c->n; i++)
        if (!strcmp(c->items[i].p.code, code)) it = &c->items[i];
    if (!it) return err_field(e, ERR_NOTFOUND, "not_found", field, "no product %s", code);
    o->p = it->p;
    if (strcmp(o->p.kind, kind))
        return err_field(e, ERR_INVALID, "wrong_product_kind", field, "%s is %s, not %s", code, kind_label(o->p.kind),
                         kind_label(kind));
    if (strcmp(o->p.status, "active"))
        return err_field(e, ERR_CONFLICT, "not_for_sale", field, "%s is %s: not for sale", code, o->p.status);
    const product_version *v = NULL;
    for (size_t j = 0; j < it->nv; j++)
        if (strcmp(it->v[j].effective_from, on) <= 0) v = &it->v[j];
    if (!v) return err_field(e, ERR_CONFLICT, "no_version", field, "%s has no price in force on %s", code, on);
    o->v = *v;
    return 0;
}

int subs_prepare(const subs_catalog *cat, ruleset *rs, const subs_new *in, const jv *address, const jv *tags,
                 subs_prepared *out, rule_error *detail, err *e)
{
    memset(out, 0, sizeof *out);
    if (!rs) return err_set(e, ERR_INTERNAL, "no rule set is loaded");
    const char *start;
    int rc = check_new(in, &start, e);
    if (rc) return rc;
    jv_arena a;
    jv_arena_init(&a, 0);
    offer plan, *ads = NULL;
    jv *plan_ctx = NULL;
    schedule_out sch;
    jv *no_tags = tags ? NULL : jv_arr(&a);
    rc = decide_offers(cat_loader, (void *)cat, rs, in, start, address, tags ? tags : no_tags, &a, &plan, &ads, &plan_ctx,
                       detail, e);
    if (!rc) rc = decide_schedule(rs, start, plan_ctx, &a, &sch, detail, e);
    if (!rc) {
        out->plan_id = plan.p.id;
        for (size_t i = 0; i < in->naddons; i++) out->addon_ids[i] = ads[i].p.id;
        out->naddons = in->naddons;
        snprintf(out->start_date, sizeof out->start_date, "%s", start);
        snprintf(out->billing, sizeof out->billing, "%s", sch.billing);
        snprintf(out->period, sizeof out->period, "%s", sch.period);
        snprintf(out->contract_end, sizeof out->contract_end, "%s", sch.contract_end);
        snprintf(out->next_bill_date, sizeof out->next_bill_date, "%s", sch.next_bill_date);
        snprintf(out->paid_through, sizeof out->paid_through, "%s", sch.paid_through);
        out->anchor_day = sch.anchor_day;
        snprintf(out->rules_version, sizeof out->rules_version, "%s", rs->snap->version);
    }
    jv_arena_free(&a);
    return rc;
}

int subs_insert(db *d, const subs_prepared *p, int64_t customer_id, int64_t account_id, int fresh, const char *note,
                const char *today, const char *by, int64_t *id, err *e)
{
    int rc = need_tx(d, e);
    if (rc) return rc;
    if (!subs_date_ok(today) || !by) return err_set(e, ERR_INTERNAL, "subs_insert: no valid today or requester");
    if (note && strlen(note) > NOTE_MAX)
        return err_field(e, ERR_INVALID, "invalid_field", "note", "note must be at most %d bytes", NOTE_MAX);
    if (!fresh && (rc = check_customer(d, customer_id, e))) return rc;
    int64_t found;
    if (!fresh && account_id && (rc = account_check(d, customer_id, account_id, NULL, &found, e))) return rc;
    schedule_out sch;
    memset(&sch, 0, sizeof sch);
    snprintf(sch.billing, sizeof sch.billing, "%s", p->billing);
    snprintf(sch.period, sizeof sch.period, "%s", p->period);
    snprintf(sch.contract_end, sizeof sch.contract_end, "%s", p->contract_end);
    snprintf(sch.next_bill_date, sizeof sch.next_bill_date, "%s", p->next_bill_date);
    snprintf(sch.paid_through, sizeof sch.paid_through, "%s", p->paid_through);
    sch.anchor_day = p->anchor_day;
    return write_sub(d, customer_id, p->plan_id, p->addon_ids, p->naddons, account_id, p->start_date, &sch, p->rules_version,
                     note, today, by, id, e);
}

/* ------------------------------------------------------------ as JSON */

static int set_text_col(jv_arena *a, jv *o, const char *key, db_stmt *s, int i)
{
    return jv_obj_set_str(a, o, key, db_col_is_null(s, i) ? NULL : db_col_text(s, i));
}

static jv *change_row_jv(jv_arena *a, db_stmt *s)
{
    /* columns: id, subscription_id, kind, status, effective_date, from code,
     * to code, fee, rules_version, note, requested_at, requested_by, applied_at */
    jv *o = jv_obj(a);
    if (!o) return NULL;
    int bad = jv_obj_set_int(a, o, "id", db_col_int(s, 0));
    bad |= jv_obj_set_int(a, o, "subscription_id", db_col_int(s, 1));
    bad |= set_text_col(a, o, "kind", s, 2);
    bad |= set_text_col(a, o, "status", s, 3);
    bad |= set_text_col(a, o, "effective_date", s, 4);
    bad |= set_text_col(a, o, "from", s, 5);
    bad |= set_text_col(a, o, "to", s, 6);
    bad |= jv_obj_set_int(a, o, "fee", db_col_int(s, 7));
    bad |= set_text_col(a, o, "rules_version", s, 8);
    bad |= set_text_col(a, o, "note", s, 9);
    bad |= set_text_col(a, o, "requested_at", s, 10);
    bad |= set_text_col(a, o, "requested_by", s, 11);
    bad |= set_text_col(a, o, "applied_at", s, 12);
    return bad ? NULL : o;
}

int subs_change_get(db *d, int64_t change_id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT ch.id, ch.subscription_id, ch.kind, ch.status, ch.effective_date, fp.code, tp.code, ch.fee, "
                            "ch.rules_version, ch.note, ch.requested_at, ch.requested_by, ch.applied_at "
                            "FROM subscription_changes ch LEFT JOIN products fp ON fp.id = ch.from_product_id "
                            "LEFT JOIN products tp ON tp.id = ch.to_product_id WHERE ch.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, change_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        *out = change_row_jv(a, s);
        rc = *out ? 0 : ERR_NOMEM_RET(e);
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "change", "no change %lld", (long long)change_id);
    }
    db_done(s);
    return rc;
}

int subs_get(db *d, int64_t id, int flags, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT s.id, c.code, p.code, p.name, s.status, s.billing, s.period, s.start_date, s.contract_end, "
                            "s.anchor_day, s.paid_through, s.next_bill_date, s.end_date, sa.username, s.created_at, s.created_by "
                            "FROM subscriptions s JOIN customers c ON c.id = s.customer_id JOIN products p ON p.id = s.product_id "
                            "LEFT JOIN service_accounts sa ON sa.id = s.service_account_id WHERE s.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    jv *o = jv_obj(a);
    int rc = db_step(d, s, e), bad = !o;
    if (rc == DB_ROW && o) {
        bad |= jv_obj_set_int(a, o, "id", db_col_int(s, 0));
        bad |= set_text_col(a, o, "customer", s, 1);
        bad |= set_text_col(a, o, "plan", s, 2);
        bad |= set_text_col(a, o, "plan_name", s, 3);
        bad |= set_text_col(a, o, "status", s, 4);
        bad |= set_text_col(a, o, "billing", s, 5);
        bad |= set_text_col(a, o, "period", s, 6);
        bad |= set_text_col(a, o, "start_date", s, 7);
        bad |= set_text_col(a, o, "contract_end", s, 8);
        bad |= jv_obj_set_int(a, o, "anchor_day", db_col_int(s, 9));
        bad |= set_text_col(a, o, "paid_through", s, 10);
        bad |= set_text_col(a, o, "next_bill_date", s, 11);
        bad |= set_text_col(a, o, "end_date", s, 12);
        bad |= set_text_col(a, o, "account", s, 13);
        bad |= set_text_col(a, o, "created_at", s, 14);
        bad |= set_text_col(a, o, "created_by", s, 15);
    }
    db_done(s);
    if (rc == DB_DONE) return err_field(e, ERR_NOTFOUND, "not_found", "id", "no subscription %lld", (long long)id);
    if (rc < 0) return rc;
    if (bad) return ERR_NOMEM_RET(e);

    jv *items = jv_arr(a);
    s = db_prepare(d,
                   "SELECT i.id, p.code, p.name, i.quantity, i.start_date, i.end_date FROM subscription_items i "
                   "JOIN products p ON p.id = i.product_id WHERE i.subscription_id = ? ORDER BY i.id",
                   e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    bad = !items;
    while (!bad && (rc = db_step(d, s, e)) == DB_ROW) {
        jv *it = jv_obj(a);
        bad |= jv_obj_set_int(a, it, "id", db_col_int(s, 0));
        bad |= set_text_col(a, it, "product", s, 1);
        bad |= set_text_col(a, it, "name", s, 2);
        bad |= jv_obj_set_int(a, it, "quantity", db_col_int(s, 3));
        bad |= set_text_col(a, it, "start_date", s, 4);
        bad |= set_text_col(a, it, "end_date", s, 5);
        bad |= jv_arr_push(a, items, it);
    }
    db_done(s);
    if (rc < 0) return rc;
    if (bad || jv_obj_set(a, o, "items", items)) return ERR_NOMEM_RET(e);

    if (flags & SUBS_WITH_CHANGES) {
        jv *changes = jv_arr(a);
        s = db_prepare(d,
                       "SELECT ch.id, ch.subscription_id, ch.kind, ch.status, ch.effective_date, fp.code, tp.code, ch.fee, "
                       "ch.rules_version, ch.note, ch.requested_at, ch.requested_by, ch.applied_at "
                       "FROM subscription_changes ch LEFT JOIN products fp ON fp.id = ch.from_product_id "
                       "LEFT JOIN products tp ON tp.id = ch.to_product_id WHERE ch.subscription_id = ? ORDER BY ch.id",
                       e);
        if (!s) return e->code;
        db_bind_int(s, 1, id);
        bad = !changes;
        while (!bad && (rc = db_step(d, s, e)) == DB_ROW) bad |= jv_arr_push(a, changes, change_row_jv(a, s));
        db_done(s);
        if (rc < 0) return rc;
        if (bad || jv_obj_set(a, o, "changes", changes)) return ERR_NOMEM_RET(e);
    }
    *out = o;
    return 0;
}

/* -------------------------------------------------------------- changes */

typedef struct kind_def {
    const char *kind;
    const char *product_kind;   /* the product the change names, or NULL */
    int for_sale;               /* the product must be sold to the customer */
} kind_def;

static const kind_def KINDS[] = {
    {"upgrade", "plan", 1},    {"downgrade", "plan", 1},  {"suspend", NULL, 0},      {"resume", NULL, 0},
    {"terminate", NULL, 0},    {"addon_add", "addon", 1}, {"addon_remove", "addon", 0},
};

static const kind_def *kind_find(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof KINDS / sizeof *KINDS; i++)
        if (!strcmp(KINDS[i].kind, kind)) return &KINDS[i];
    return NULL;
}

/* Sets the service account's status with the subscription's. A closed
 * account stays closed (its name is never reused, and reopening it is not
 * this module's call): subs_change refuses to resume onto one. */
static int account_status(db *d, const sub_row *sub, const char *status, err *e)
{
    if (!sub->account_id) return 0;
    return db_run(d, e, "UPDATE service_accounts SET status = ? WHERE id = ? AND status <> 'closed'", "si", status,
                  sub->account_id);
}

/* The fee of a change, as a pending charge for the next bill. Its tax
 * category is the plan's the customer leaves: the fee is part of the price
 * of that service. */
static int fee_charge(db *d, const sub_row *sub, int64_t change_id, const char *kind, int64_t from_id, int64_t fee,
                      const char *eff, const char *by, int64_t *charge_id, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    offer from;
    int rc = load_offer_by_id(d, from_id, eff, &a, &from, e);
    char desc[256];
    if (!rc) {
        snprintf(desc, sizeof desc, "Early termination fee: %s of plan %s before the contract end %s (change %lld)",
                 !strcmp(kind, "terminate") ? "termination" : kind, from.p.code, sub->contract_end[0] ? sub->contract_end : "-",
                 (long long)change_id);
        char now[25];
        db_now(now);
        rc = db_run(d, e,
                    "INSERT INTO pending_charges (customer_id, subscription_id, product_id, description, quantity, unit_price, "
                    "tax_category, source, created_at, created_by) VALUES (?, ?, NULL, ?, 1, ?, ?, 'contract', ?, ?)",
                    "iisisss", sub->customer_id, sub->id, desc, fee, from.v.tax_category, now, by);
        if (!rc) *charge_id = db_last_id(d);
    }
    jv_arena_free(&a);
    return rc;
}

/* Applies a scheduled change (its effective date has come). A change of a
 * subscription that was terminated meanwhile is cancelled instead
 * (*skipped set). */
static int apply_change(db *d, int64_t change_id, int64_t *charge_id, int *skipped, err *e)
{
    *charge_id = 0;
    *skipped = 0;
    db_stmt *s = db_prepare(d,
                            "SELECT subscription_id, kind, effective_date, from_product_id, to_product_id, fee, status, "
                            "requested_by FROM subscription_changes WHERE id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, change_id);
    int rc = db_step(d, s, e);
    int64_t sid = 0, from_id = 0, to_id = 0, fee = 0;
    char kind[16] = "", eff[11] = "", status[16] = "", by[128] = "";
    if (rc == DB_ROW) {
        sid = db_col_int(s, 0);
        snprintf(kind, sizeof kind, "%s", db_col_text(s, 1));
        snprintf(eff, sizeof eff, "%s", db_col_text(s, 2));
        from_id = db_col_is_null(s, 3) ? 0 : db_col_int(s, 3);
        to_id = db_col_is_null(s, 4) ? 0 : db_col_int(s, 4);
        fee = db_col_int(s, 5);
        snprintf(status, sizeof status, "%s", db_col_text(s, 6));
        snprintf(by, sizeof by, "%s", db_col_text(s, 7));
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_set(e, ERR_NOTFOUND, "no change %lld", (long long)change_id);
    }
    db_done(s);
    if (rc) return rc;
    if (strcmp(status, "scheduled"))
        return err_set(e, ERR_CONFLICT, "change %lld is %s, not scheduled", (long long)change_id, status);
    sub_row sub;
    if ((rc = load_sub(d, sid, &sub, e))) return rc;
    if (!strcmp(sub.status, "terminated")) {
        *skipped = 1;
        return db_run(d, e,
                      "UPDATE subscription_changes SET status = 'cancelled', "
                      "note = COALESCE(note || '; ', '') || 'cancelled: the subscription was terminated' WHERE id = ?",
                      "i", change_id);
    }
    char last[11]; /* the last day of what ends: the day before the change */
    add_days(eff, -1, last);

    if (!strcmp(kind, "create")) {
        rc = db_run(d, e, "UPDATE subscriptions SET status = 'active' WHERE id = ? AND status = 'pending'", "i", sid);
    } else if (!strcmp(kind, "upgrade") || !strcmp(kind, "downgrade")) {
        rc = db_run(d, e, "UPDATE subscriptions SET product_id = ? WHERE id = ?", "ii", to_id, sid);
    } else if (!strcmp(kind, "suspend")) {
        rc = db_run(d, e, "UPDATE subscriptions SET status = 'suspended' WHERE id = ?", "i", sid);
        if (!rc) rc = account_status(d, &sub, "suspended", e);
    } else if (!strcmp(kind, "resume")) {
        rc = db_run(d, e, "UPDATE subscriptions SET status = 'active' WHERE id = ?", "i", sid);
        /* the customer's pause ends, not the ladder's hold on an unpaid bill */
        if (!rc && sub.account_id) rc = netstate_resume_account(d, sub.account_id, sub.customer_id, e);
    } else if (!strcmp(kind, "terminate")) {
        rc = db_run(d, e, "UPDATE subscriptions SET status = 'terminated', end_date = ? WHERE id = ?", "si", last, sid);
        if (!rc)
            rc = db_run(d, e,
                        "UPDATE subscription_items SET end_date = ? WHERE subscription_id = ? AND (end_date IS NULL OR end_date > ?)",
                        "sis", last, sid, last);
        if (!rc) rc = account_status(d, &sub, "closed", e);
        /* nothing else can happen to it any more */
        if (!rc)
            rc = db_run(d, e,
                        "UPDATE subscription_changes SET status = 'cancelled', "
                        "note = COALESCE(note || '; ', '') || 'cancelled: the subscription was terminated' "
                        "WHERE subscription_id = ? AND status = 'scheduled' AND id <> ?",
                        "ii", sid, change_id);
    } else if (!strcmp(kind, "addon_add")) {
        rc = db_run(d, e, "INSERT INTO subscription_items (subscription_id, product_id, quantity, start_date) VALUES (?, ?, 1, ?)",
                    "iis", sid, to_id, eff);
    } else if (!strcmp(kind, "addon_remove")) {
        rc = db_run(d, e,
                    "UPDATE subscription_items SET end_date = ? WHERE subscription_id = ? AND product_id = ? AND end_date IS NULL",
                    "sii", last, sid, to_id);
    } else {
        rc = err_set(e, ERR_INTERNAL, "change %lld has an unknown kind '%s'", (long long)change_id, kind);
    }
    if (!rc && fee > 0) rc = fee_charge(d, &sub, change_id, kind, from_id, fee, eff, by, charge_id, e);
    char now[25];
    db_now(now);
    if (!rc)
        rc = db_run(d, e, "UPDATE subscription_changes SET status = 'applied', applied_at = ? WHERE id = ?", "si", now, change_id);
    return rc;
}

/* The rule's answer to a change, checked. */
typedef struct verdict {
    int allowed;
    char reason[512];
    char effective_date[11];
    int64_t fee;
} verdict;

static int check_change(const jv *res, const char *today, verdict *v, rule_error *detail, err *e)
{
    static const char *const keys[] = {"allowed", "reason", "effective_date", "fee", NULL};
    const char *R = RULE_CHANGE;
    char b[64];
    int rc = check_record(res, keys, R, detail, e);
    if (!rc) rc = check_verdict(res, R, &v->allowed, v->reason, sizeof v->reason, detail, e);
    if (rc || !v->allowed) return rc;
    if ((rc = res_date(res, "effective_date", 1, v->effective_date, R, detail, e))) return rc;
    if (strcmp(v->effective_date, today) < 0)
        return bad_output(detail, e, R, "effective_date %s is before today %s: a change cannot act in the past",
                          v->effective_date, today);
    const jv *f = present(res, "fee");
    v->fee = 0;
    if (f && (f->kind != JV_INT || f->u.i < 0))
        return bad_output(detail, e, R, "fee must be an integer count of fen, zero or more; got %s", describe(f, b, sizeof b));
    if (f) v->fee = f->u.i;
    return 0;
}

/* A scheduled change that a new one would contradict. */
static int pending_conflict(db *d, int64_t sid, const char *kind, int64_t product_id, err *e)
{
    int plan_like = !strcmp(kind, "upgrade") || !strcmp(kind, "downgrade") || !strcmp(kind, "terminate");
    int remove = !strcmp(kind, "addon_remove");
    if (!plan_like && !remove) return 0;
    db_stmt *s = db_prepare(d,
                            "SELECT id, kind, effective_date FROM subscription_changes WHERE subscription_id = ? AND status = 'scheduled' "
                            "AND ((? = 1 AND kind IN ('upgrade', 'downgrade', 'terminate')) OR "
                            "(? = 1 AND kind = 'addon_remove' AND to_product_id = ?)) ORDER BY id LIMIT 1",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, sid);
    db_bind_int(s, 2, plan_like);
    db_bind_int(s, 3, remove);
    db_bind_int(s, 4, product_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW)
        rc = err_field(e, ERR_CONFLICT, "change_pending", "kind", "a %s is already scheduled for %s (change %lld): cancel it first",
                       db_col_text(s, 1), db_col_text(s, 2), (long long)db_col_int(s, 0));
    else if (rc == DB_DONE)
        rc = 0;
    db_done(s);
    return rc;
}

static int sub_ctx(jv_arena *a, const sub_row *sub, jv **out)
{
    jv *o = jv_obj(a);
    if (!o) return ERR_NOMEM;
    int bad = jv_obj_set_int(a, o, "id", sub->id);
    bad |= jv_obj_set_str(a, o, "start_date", sub->start_date);
    if (sub->contract_end[0]) bad |= jv_obj_set_str(a, o, "contract_end", sub->contract_end);
    bad |= jv_obj_set_str(a, o, "status", sub->status);
    bad |= jv_obj_set_str(a, o, "period", sub->period);
    bad |= jv_obj_set_str(a, o, "billing", sub->billing);
    bad |= jv_obj_set_int(a, o, "anchor_day", sub->anchor_day);
    bad |= jv_obj_set_str(a, o, "next_bill_date", sub->next_bill_date);
    if (sub->paid_through[0]) bad |= jv_obj_set_str(a, o, "paid_through", sub->paid_through);
    *out = o;
    return bad ? ERR_NOMEM : 0;
}

static int subs_change_in(db *d, ruleset *rs, int64_t sid, const subs_change_req *req, subs_change_out *out, jv_arena *a,
                          rule_error *detail, err *e)
{
    const kind_def *k = kind_find(req->kind);
    if (!k)
        return err_field(e, ERR_INVALID, "invalid_field", "kind",
                         "kind must be one of upgrade, downgrade, suspend, resume, terminate, addon_add, addon_remove");
    if (!subs_date_ok(req->today) || !req->by) return err_set(e, ERR_INTERNAL, "subs_change: no valid today or requester");
    if (req->note && strlen(req->note) > NOTE_MAX)
        return err_field(e, ERR_INVALID, "invalid_field", "note", "note must be at most %d bytes", NOTE_MAX);
    if (k->product_kind && (!req->product || !req->product[0]))
        return err_field(e, ERR_INVALID, "missing_field", "product", "%s needs the product: %s", k->kind,
                         kind_label(k->product_kind));
    if (!k->product_kind && req->product)
        return err_field(e, ERR_INVALID, "invalid_field", "product", "%s takes no product", k->kind);
    sub_row sub;
    int rc = load_sub(d, sid, &sub, e);
    if (rc) return rc;
    if (!strcmp(sub.status, "terminated"))
        return err_field(e, ERR_CONFLICT, "subscription_terminated", "id", "subscription %lld is terminated", (long long)sid);
    /* prices and terms as they are when the change is asked for (or at the
     * start of a subscription that has not started yet) */
    const char *ref = strcmp(req->today, sub.start_date) < 0 ? sub.start_date : req->today;
    offer from, to;
    memset(&to, 0, sizeof to);
    if ((rc = load_offer_by_id(d, sub.product_id, ref, a, &from, e))) return rc;
    if (k->product_kind) {
        if ((rc = load_offer(d, req->product, k->product_kind, "product", k->for_sale, ref, a, &to, e))) return rc;
        if (k->for_sale) {
            jv *addr, *tags;
            if ((rc = market_of(d, sub.customer_id, a, &addr, &tags, e))) return rc;
            if (!catalog_available(&to.v, addr, tags))
                return err_field(e, ERR_CONFLICT, "not_available", "product",
                                 "%s is not sold at the customer's address or to the customer's tags", to.p.code);
        }
    }

    /* the add-ons on the subscription now */
    jv *addons = jv_arr(a);
    if (!addons) return ERR_NOMEM_RET(e);
    int has_to = 0;
    {
        int64_t ids[SUBS_MAX_ADDONS * 4];
        size_t n = 0;
        db_stmt *s = db_prepare(d,
                                "SELECT product_id FROM subscription_items WHERE subscription_id = ? AND end_date IS NULL ORDER BY id",
                                e);
        if (!s) return e->code;
        db_bind_int(s, 1, sid);
        while ((rc = db_step(d, s, e)) == DB_ROW) {
            if (n == sizeof ids / sizeof *ids) {
                rc = err_set(e, ERR_LIMIT, "subscription %lld has too many add-ons", (long long)sid);
                break;
            }
            ids[n++] = db_col_int(s, 0);
        }
        db_done(s);
        if (rc < 0) return rc;
        for (size_t i = 0; i < n; i++) {
            offer ad;
            if ((rc = load_offer_by_id(d, ids[i], ref, a, &ad, e))) return rc;
            if (k->product_kind && ids[i] == to.p.id) has_to = 1;
            if (jv_arr_push(a, addons, offer_ctx(a, &ad))) return ERR_NOMEM_RET(e);
        }
    }
    if (!strcmp(k->kind, "addon_add") && has_to)
        return err_field(e, ERR_CONFLICT, "addon_present", "product", "add-on %s is already on the subscription", to.p.code);
    if (!strcmp(k->kind, "addon_remove") && !has_to)
        return err_field(e, ERR_CONFLICT, "addon_absent", "product", "add-on %s is not on the subscription", to.p.code);
    if ((rc = pending_conflict(d, sid, k->kind, k->product_kind ? to.p.id : 0, e))) return rc;
    if (!strcmp(k->kind, "resume") && sub.account_id) {
        int64_t closed = 0;
        if ((rc = db_get_int(d, e, &closed, "SELECT status = 'closed' FROM service_accounts WHERE id = ?", "i",
                             sub.account_id)))
            return rc;
        if (closed)
            return err_field(e, ERR_CONFLICT, "account_closed", "kind",
                             "the subscription's service account is closed: it cannot be resumed on it");
    }

    jv *ctx = jv_obj(a), *sctx = NULL, *fctx = offer_ctx(a, &from), *res;
    if (!ctx || !fctx || sub_ctx(a, &sub, &sctx) || jv_obj_set_str(a, ctx, "kind", k->kind) ||
        jv_obj_set_str(a, ctx, "today", req->today) || jv_obj_set(a, ctx, "subscription", sctx) ||
        jv_obj_set(a, ctx, "from", fctx) || jv_obj_set(a, ctx, "addons", addons) ||
        (k->product_kind && jv_obj_set(a, ctx, "to", offer_ctx(a, &to))))
        return ERR_NOMEM_RET(e);
    verdict v;
    if ((rc = call_rule(rs, RULE_CHANGE, ctx, a, &res, detail, e)) || (rc = check_change(res, req->today, &v, detail, e)))
        return rc;
    if (!v.allowed) return err_field(e, ERR_CONFLICT, "change_refused", k->product_kind ? "product" : "kind", "%s", v.reason);

    char now[25];
    db_now(now);
    db_stmt *s = db_prepare(d,
                            "INSERT INTO subscription_changes (subscription_id, kind, effective_date, from_product_id, to_product_id, "
                            "status, fee, rules_version, note, requested_at, requested_by) "
                            "VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?)",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, sid);
    db_bind_text(s, 2, k->kind);
    db_bind_text(s, 3, v.effective_date);
    db_bind_int(s, 4, sub.product_id);
    if (k->product_kind) db_bind_int(s, 5, to.p.id);
    else db_bind_null(s, 5);
    db_bind_int(s, 6, v.fee);
    db_bind_text(s, 7, rs->snap->version);
    db_bind_text(s, 8, req->note);
    db_bind_text(s, 9, now);
    db_bind_text(s, 10, req->by);
    rc = db_step(d, s, e);
    db_done(s);
    if (rc < 0) return rc;
    out->change_id = db_last_id(d);
    snprintf(out->effective_date, sizeof out->effective_date, "%s", v.effective_date);
    out->fee = v.fee;
    out->applied = 0;
    out->charge_id = 0;
    if (strcmp(v.effective_date, req->today) <= 0) {
        int skipped;
        if ((rc = apply_change(d, out->change_id, &out->charge_id, &skipped, e))) return rc;
        out->applied = 1;
    }
    return 0;
}

int subs_change(db *d, ruleset *rs, int64_t sub_id, const subs_change_req *req, subs_change_out *out, rule_error *detail,
                err *e)
{
    memset(out, 0, sizeof *out);
    int rc = need_tx(d, e);
    if (rc) return rc;
    if (!rs) return err_set(e, ERR_INTERNAL, "no rule set is loaded");
    jv_arena a;
    jv_arena_init(&a, 0);
    rc = subs_change_in(d, rs, sub_id, req, out, &a, detail, e);
    jv_arena_free(&a);
    return rc;
}

int subs_cancel_change(db *d, int64_t sub_id, int64_t change_id, err *e)
{
    int rc = need_tx(d, e);
    if (rc) return rc;
    db_stmt *s = db_prepare(d, "SELECT subscription_id, status, kind FROM subscription_changes WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, change_id);
    rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        if (db_col_int(s, 0) != sub_id)
            rc = err_field(e, ERR_NOTFOUND, "not_found", "change", "subscription %lld has no change %lld", (long long)sub_id,
                           (long long)change_id);
        else if (strcmp(db_col_text(s, 1), "scheduled"))
            rc = err_field(e, ERR_CONFLICT, "change_not_scheduled", "change",
                           "change %lld is %s: only a scheduled change can be cancelled", (long long)change_id,
                           db_col_text(s, 1));
        else if (!strcmp(db_col_text(s, 2), "create"))
            rc = err_field(e, ERR_CONFLICT, "change_not_cancellable", "change",
                           "the start of a subscription cannot be cancelled: terminate the subscription instead");
        else
            rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "change", "subscription %lld has no change %lld", (long long)sub_id,
                       (long long)change_id);
    }
    db_done(s);
    if (rc) return rc;
    return db_run(d, e, "UPDATE subscription_changes SET status = 'cancelled' WHERE id = ? AND status = 'scheduled'", "i",
                  change_id);
}

/* ---------------------------------------------------------- due changes */

static int apply_one_due(db *d, int64_t change_id, const uint8_t *audit_key, int *skipped, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    int64_t sid = 0, charge_id = 0;
    jv *before = NULL, *after = NULL, *change = NULL;
    int rc = db_begin(d, e);
    if (rc) {
        jv_arena_free(&a);
        return rc;
    }
    rc = db_get_int(d, e, &sid, "SELECT subscription_id FROM subscription_changes WHERE id = ?", "i", change_id);
    if (!rc) rc = subs_get(d, sid, 0, &a, &before, e);
    if (!rc) rc = apply_change(d, change_id, &charge_id, skipped, e);
    if (!rc) rc = subs_get(d, sid, 0, &a, &after, e);
    if (!rc) rc = subs_change_get(d, change_id, &a, &change, e);
    if (!rc && audit_key) {
        char oid[32];
        snprintf(oid, sizeof oid, "%lld", (long long)sid);
        audit_who who = {.actor = "system", .role = "system", .source = "scheduler", .request_id = NULL};
        audit_event ev = {.action = *skipped ? "subscription.change_cancel" : "subscription.change_apply",
                          .object_type = "subscription",
                          .object_id = oid,
                          .before = before,
                          .after = after,
                          .detail = change};
        rc = audit_append(d, audit_key, &who, &ev, e);
    }
    if (!rc) rc = db_commit(d, e);
    if (rc) db_rollback(d);
    jv_arena_free(&a);
    return rc;
}

int subs_apply_due(db *d, const char *date, const uint8_t *audit_key, int *applied, err *e)
{
    *applied = 0;
    if (!subs_date_ok(date)) return err_set(e, ERR_INVALID, "subs_apply_due: '%s' is not a date", date ? date : "");
    /* keyset walk in (effective_date, id) order, so a change that fails is
     * passed over (and retried tomorrow) instead of blocking the others */
    char after_date[11] = "";
    int64_t after_id = 0;
    int first_rc = 0;
    err first;
    err_clear(&first);
    for (;;) {
        int64_t ids[64];
        char dates[64][11];
        size_t n = 0;
        db_stmt *s = db_prepare(d,
                                "SELECT id, effective_date FROM subscription_changes WHERE status = 'scheduled' AND effective_date <= ? "
                                "AND (effective_date > ? OR (effective_date = ? AND id > ?)) ORDER BY effective_date, id LIMIT 64",
                                e);
        if (!s) return e->code;
        db_bind_text(s, 1, date);
        db_bind_text(s, 2, after_date);
        db_bind_text(s, 3, after_date);
        db_bind_int(s, 4, after_id);
        int rc;
        while ((rc = db_step(d, s, e)) == DB_ROW && n < 64) {
            ids[n] = db_col_int(s, 0);
            snprintf(dates[n], sizeof dates[n], "%s", db_col_text(s, 1));
            n++;
        }
        db_done(s);
        if (rc < 0) return rc;
        for (size_t i = 0; i < n; i++) {
            int skipped = 0;
            err one;
            err_clear(&one);
            rc = apply_one_due(d, ids[i], audit_key, &skipped, &one);
            if (rc) {
                log_msg(LOG_ERROR, "subscription_change_failed", "change %lld: %s", (long long)ids[i], one.msg);
                if (!first_rc) {
                    first_rc = rc;
                    first = one;
                }
            } else if (!skipped) {
                (*applied)++;
            }
        }
        if (n < 64) break;
        snprintf(after_date, sizeof after_date, "%s", dates[n - 1]);
        after_id = ids[n - 1];
    }
    if (first_rc) {
        *e = first;
        err_prefix(e, "a scheduled subscription change failed (the others were applied)");
    }
    return first_rc;
}

int subs_job_apply(struct job_ctx *ctx, err *e)
{
    vault *v = NULL;
    int rc = vault_open(ctx->cfg->keys_file, &v, e);
    if (rc) return err_prefix(e, "subscriptions.apply needs the key file for the audit trail");
    char day[11];
    date_format(date_of_time(ctx->scheduled_for ? ctx->scheduled_for : time(NULL)), day);
    int n = 0;
    rc = subs_apply_due(ctx->db, day, vault_audit_key(v), &n, e);
    vault_close(v);
    snprintf(ctx->summary, sizeof ctx->summary, "%d subscription change%s applied up to %s", n, n == 1 ? "" : "s", day);
    return rc;
}

/* ------------------------------------------------------------- charges */

static const char *const SOURCES[] = {"manual", "install", "ticket", NULL};

/* A tax category the tax rule knows, when the rules have a rates table:
 * an unknown one would only fail later, on the bill. */
static int check_tax_category(ruleset *rs, const char *cat, jv_arena *a, err *e)
{
    if (!rs) return 0;
    jv *rates;
    err ign;
    if (lhost_get_field(rs->host, "tax", "rates", a, &rates, &ign) || rates->kind != JV_OBJ) return 0;
    if (jv_get(rates, cat)) return 0;
    char known[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < rates->u.obj.n && used < sizeof known - 1; i++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", rates->u.obj.m[i].key);
        if (w < 0) break;
        used += (size_t)w;
    }
    return err_field(e, ERR_INVALID, "unknown_tax_category", "tax_category", "unknown tax category '%s' (known: %s)", cat, known);
}

static int subs_charge_create_in(db *d, ruleset *rs, const subs_charge_new *in, jv_arena *a, int64_t *id, err *e)
{
    int rc = check_customer(d, in->customer_id, e);
    if (rc) return rc;
    if (in->quantity < 1 || in->quantity > CHARGE_MAX_QUANTITY)
        return err_field(e, ERR_INVALID, "invalid_field", "quantity", "quantity must be 1 to %d", CHARGE_MAX_QUANTITY);
    const char *source = in->source ? in->source : "manual";
    if (!one_of(source, SOURCES))
        return err_field(e, ERR_INVALID, "invalid_field", "source", "source must be manual, install or ticket");
    if (in->subscription_id) {
        int64_t owner;
        rc = subs_customer_of(d, in->subscription_id, &owner, e);
        if (rc == ERR_NOTFOUND || (!rc && owner != in->customer_id))
            return err_field(e, ERR_INVALID, "invalid_field", "subscription_id", "the customer has no subscription %lld",
                             (long long)in->subscription_id);
        if (rc) return rc;
    }
    if (in->description && (!in->description[0] || strlen(in->description) > CHARGE_MAX_DESCRIPTION))
        return err_field(e, ERR_INVALID, "invalid_field", "description", "description must be 1 to %d bytes",
                         CHARGE_MAX_DESCRIPTION);

    int64_t price, product_id = 0;
    const char *desc, *tax;
    offer fee;
    if (in->product) {
        if (in->has_unit_price || in->tax_category)
            return err_field(e, ERR_INVALID, "invalid_field", in->has_unit_price ? "unit_price" : "tax_category",
                             "a charge for a product takes its price and tax category from the catalog");
        if ((rc = load_offer(d, in->product, "fee", "product", 1, in->today, a, &fee, e))) return rc;
        product_id = fee.p.id;
        price = fee.v.price;
        desc = in->description ? in->description : fee.p.name;
        tax = fee.v.tax_category;
        if (!fee.v.price_includes_tax) {
            /* charges wait for the bill tax-inclusive, like retail prices:
             * the tax rule adds the tax to a net price */
            jv *ctx = jv_obj(a), *res;
            if (!ctx || jv_obj_set_int(a, ctx, "net", price) || jv_obj_set_str(a, ctx, "category", tax)) return ERR_NOMEM_RET(e);
            if ((rc = call_rule(rs, RULE_ON_NET, ctx, a, &res, NULL, e))) return rc;
            const jv *g = res && res->kind == JV_OBJ ? jv_get(res, "gross") : NULL;
            char b[64];
            if (!g || g->kind != JV_INT || g->u.i < 0)
                return bad_output(NULL, e, RULE_ON_NET, "gross must be an integer count of fen, zero or more; got %s",
                                  describe(g, b, sizeof b));
            price = g->u.i;
        }
    } else {
        if (!in->description) return err_field(e, ERR_INVALID, "missing_field", "description", "description is required");
        if (!in->has_unit_price)
            return err_field(e, ERR_INVALID, "missing_field", "unit_price", "unit_price (fen) is required without a product");
        if (!in->tax_category || !in->tax_category[0])
            return err_field(e, ERR_INVALID, "missing_field", "tax_category", "tax_category is required without a product");
        if (in->unit_price < 0)
            return err_field(e, ERR_INVALID, "invalid_field", "unit_price",
                             "unit_price must be zero or more fen (a credit is an adjustment on a bill)");
        if ((rc = check_tax_category(rs, in->tax_category, a, e))) return rc;
        price = in->unit_price;
        desc = in->description;
        tax = in->tax_category;
    }
    if (price > INT64_MAX / in->quantity)
        return err_field(e, ERR_INVALID, "invalid_field", "quantity", "quantity x unit_price is too large");
    char now[25];
    db_now(now);
    db_stmt *s = db_prepare(d,
                            "INSERT INTO pending_charges (customer_id, subscription_id, product_id, description, quantity, unit_price, "
                            "tax_category, source, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, in->customer_id);
    if (in->subscription_id) db_bind_int(s, 2, in->subscription_id);
    else db_bind_null(s, 2);
    if (product_id) db_bind_int(s, 3, product_id);
    else db_bind_null(s, 3);
    db_bind_text(s, 4, desc);
    db_bind_int(s, 5, in->quantity);
    db_bind_int(s, 6, price);
    db_bind_text(s, 7, tax);
    db_bind_text(s, 8, source);
    db_bind_text(s, 9, now);
    db_bind_text(s, 10, in->by);
    rc = db_step(d, s, e);
    db_done(s);
    if (rc < 0) return rc;
    *id = db_last_id(d);
    return 0;
}

int subs_charge_create(db *d, ruleset *rs, const subs_charge_new *in, int64_t *id, err *e)
{
    int rc = need_tx(d, e);
    if (rc) return rc;
    if (!subs_date_ok(in->today) || !in->by) return err_set(e, ERR_INTERNAL, "subs_charge_create: no valid today or requester");
    jv_arena a;
    jv_arena_init(&a, 0);
    rc = subs_charge_create_in(d, rs, in, &a, id, e);
    jv_arena_free(&a);
    return rc;
}

int subs_charge_get(db *d, int64_t id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT pc.id, c.code, pc.subscription_id, p.code, pc.description, pc.quantity, pc.unit_price, "
                            "pc.tax_category, pc.source, pc.created_at, pc.created_by, pc.billed_on, pc.cancelled_at "
                            "FROM pending_charges pc JOIN customers c ON c.id = pc.customer_id "
                            "LEFT JOIN products p ON p.id = pc.product_id WHERE pc.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        jv *o = jv_obj(a);
        int bad = !o;
        if (o) {
            int64_t q = db_col_int(s, 5), p = db_col_int(s, 6);
            bad |= jv_obj_set_int(a, o, "id", db_col_int(s, 0));
            bad |= set_text_col(a, o, "customer", s, 1);
            bad |= jv_obj_set(a, o, "subscription_id", db_col_is_null(s, 2) ? jv_null(a) : jv_int(a, db_col_int(s, 2)));
            bad |= set_text_col(a, o, "product", s, 3);
            bad |= set_text_col(a, o, "description", s, 4);
            bad |= jv_obj_set_int(a, o, "quantity", q);
            bad |= jv_obj_set_int(a, o, "unit_price", p);
            bad |= jv_obj_set_int(a, o, "amount", q * p);
            bad |= set_text_col(a, o, "tax_category", s, 7);
            bad |= set_text_col(a, o, "source", s, 8);
            bad |= jv_obj_set_str(a, o, "status",
                                  !db_col_is_null(s, 12) ? "cancelled" : !db_col_is_null(s, 11) ? "billed" : "open");
            bad |= set_text_col(a, o, "created_at", s, 9);
            bad |= set_text_col(a, o, "created_by", s, 10);
            bad |= set_text_col(a, o, "billed_on", s, 11);
            bad |= set_text_col(a, o, "cancelled_at", s, 12);
        }
        *out = o;
        rc = bad ? ERR_NOMEM_RET(e) : 0;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "id", "no charge %lld", (long long)id);
    }
    db_done(s);
    return rc;
}

int subs_charge_customer_of(db *d, int64_t id, int64_t *customer_id, err *e)
{
    int rc = db_get_int(d, e, customer_id, "SELECT customer_id FROM pending_charges WHERE id = ?", "i", id);
    if (rc == ERR_NOTFOUND) return err_field(e, ERR_NOTFOUND, "not_found", "id", "no charge %lld", (long long)id);
    return rc;
}

int subs_charge_cancel(db *d, int64_t id, err *e)
{
    int rc = need_tx(d, e);
    if (rc) return rc;
    db_stmt *s = db_prepare(d, "SELECT billed_on, cancelled_at FROM pending_charges WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        if (!db_col_is_null(s, 0))
            rc = err_field(e, ERR_CONFLICT, "charge_billed", "id", "charge %lld was billed on %s: it cannot be cancelled",
                           (long long)id, db_col_text(s, 0));
        else if (!db_col_is_null(s, 1))
            rc = err_field(e, ERR_CONFLICT, "charge_cancelled", "id", "charge %lld is already cancelled", (long long)id);
        else
            rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "id", "no charge %lld", (long long)id);
    }
    db_done(s);
    if (rc) return rc;
    char now[25];
    db_now(now);
    return db_run(d, e, "UPDATE pending_charges SET cancelled_at = ? WHERE id = ? AND billed_on IS NULL AND cancelled_at IS NULL",
                  "si", now, id);
}
