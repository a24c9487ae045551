/* test_subs.c - subscriptions against a migrated database and the real
 * rules folder: the dates subscriptions.schedule sets (postpaid, prepaid,
 * contract), upgrades applied at once, downgrades and terminations
 * scheduled for the next period and applied by subs_apply_due on that day
 * and not before, early-termination fees to the fen (hand-computed below),
 * add-ons that do not fit, suspend and resume with the service account,
 * cancelling scheduled changes, one-time charges; and a rule that breaks its
 * contract (a float fee, an impossible date, a typo in a field name): a
 * clear error naming the rule, and nothing written. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "json.h"
#include "metrics.h"
#include "migrate.h"
#include "rules.h"
#include "subs.h"
#include "unit_fs.h"

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

typedef struct fixture {
    char dir[64];
    char path[128];
    db *d;
    rules_snapshot *snap;
    ruleset *rs;
    jv_arena a;
} fixture;

/* Products (prices in fen, attributes as the catalog stores them):
 *   1 FIBER100  plan   99.00/month postpaid, 24-month contract
 *   2 FIBER300  plan  129.98/month postpaid, 24-month contract
 *   3 FIBER500  plan  199.00/month postpaid, 24-month contract
 *   4 PRE100    plan  297.00/quarter prepaid, no contract
 *   5 IPTV      add-on 15.00, fits FIBER300 and FIBER500
 *   6 STATICIP  add-on 20.00, fits every plan
 *   7 INSTALL   fee   200.00 tax included, installation
 *   8 REPAIR    fee   100.00 net of tax, installation
 *   9 SHONLY    plan  sold in 上海市 only
 *  10 OLDPLAN   plan  retired
 *  11 LOCKED    plan  199.00/month, 12-month contract, locked */
static const char *SEED =
    "INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) VALUES "
    "(1, 'C000000013', 'residential', 'Zhang San', 'active', 't', 't', 't'),"
    "(2, 'C000000021', 'residential', 'Li Si', 'closed', 't', 't', 't');"
    "INSERT INTO addresses (customer_id, kind, province, city, district) VALUES (1, 'service', '浙江省', '杭州市', '西湖区');"
    "INSERT INTO service_accounts (id, customer_id, username, password_enc, status, created_at, password_changed_at) VALUES "
    "(1, 1, 'zs001', 'x', 'active', 't', 't'), (2, 2, 'ls001', 'x', 'active', 't', 't');"
    "INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
    "(1, 'FIBER100', 'plan', 'Fiber 100M', 'active', 't', 't'),"
    "(2, 'FIBER300', 'plan', 'Fiber 300M', 'active', 't', 't'),"
    "(3, 'FIBER500', 'plan', 'Fiber 500M', 'active', 't', 't'),"
    "(4, 'PRE100', 'plan', 'Prepaid 100M', 'active', 't', 't'),"
    "(5, 'IPTV', 'addon', 'IPTV', 'active', 't', 't'),"
    "(6, 'STATICIP', 'addon', 'Static IP', 'active', 't', 't'),"
    "(7, 'INSTALL', 'fee', 'Installation', 'active', 't', 't'),"
    "(8, 'REPAIR', 'fee', 'Repair visit', 'active', 't', 't'),"
    "(9, 'SHONLY', 'plan', 'Shanghai only', 'active', 't', 't'),"
    "(10, 'OLDPLAN', 'plan', 'Old plan', 'retired', 't', 't'),"
    "(11, 'LOCKED', 'plan', 'Locked', 'active', 't', 't');"
    "INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, rule, "
    "attrs, regions, created_at, created_by) VALUES "
    "(1, 1, '2020-01-01', 9900, 1, 'internet', 'tariffs.flat', "
    "'{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":24}', '[]', 't', 't'),"
    "(2, 1, '2020-01-01', 12998, 1, 'internet', 'tariffs.flat', "
    "'{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":24}', '[]', 't', 't'),"
    "(3, 1, '2020-01-01', 19900, 1, 'internet', 'tariffs.flat', "
    "'{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":24}', '[]', 't', 't'),"
    "(4, 1, '2020-01-01', 29700, 1, 'internet', 'tariffs.flat', "
    "'{\"period\":\"quarter\",\"billing\":\"prepaid\",\"min_contract_months\":0}', '[]', 't', 't'),"
    "(5, 1, '2020-01-01', 1500, 1, 'internet', 'tariffs.flat', '{\"fits\":[\"FIBER300\",\"FIBER500\"]}', '[]', 't', 't'),"
    "(6, 1, '2020-01-01', 2000, 1, 'internet', 'tariffs.flat', '{\"fits\":[]}', '[]', 't', 't'),"
    "(7, 1, '2020-01-01', 20000, 1, 'installation', 'tariffs.flat', '{\"purpose\":\"installation\"}', '[]', 't', 't'),"
    "(8, 1, '2020-01-01', 10000, 0, 'installation', 'tariffs.flat', '{\"purpose\":\"repair_visit\"}', '[]', 't', 't'),"
    "(9, 1, '2020-01-01', 9900, 1, 'internet', 'tariffs.flat', '{\"period\":\"month\",\"billing\":\"postpaid\"}', "
    "'[\"上海市\"]', 't', 't'),"
    "(10, 1, '2020-01-01', 5000, 1, 'internet', 'tariffs.flat', '{\"period\":\"month\",\"billing\":\"postpaid\"}', '[]', 't', 't'),"
    "(11, 1, '2020-01-01', 19900, 1, 'internet', 'tariffs.flat', "
    "'{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":12,\"contract_lock\":true}', '[]', 't', 't');";

static int load_rules(const char *dir, rules_snapshot **snap, ruleset **rs)
{
    err e;
    err_clear(&e);
    if (rules_snapshot_read(dir, snap, &e) || ruleset_load(*snap, NULL, 0, rs, NULL, &e)) {
        print_error("rules %s: %s\n", dir, e.msg);
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_subs_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
    jv_arena_init(&f->a, 0);
    err e;
    err_clear(&e);
    if (db_open(f->path, DB_OPEN_CREATE, &f->d, &e) || migrate_apply(f->d, NULL, &e) || db_exec_script(f->d, SEED, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    if (load_rules(BB_SOURCE_DIR "/rules", &f->snap, &f->rs)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ruleset_unref(f->rs);
    rules_snapshot_unref(f->snap);
    db_close(f->d);
    jv_arena_free(&f->a);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

/* One value of a query with one integer parameter, as text ("" for NULL,
 * "<none>" without a row). */
static const char *q1(fixture *f, const char *sql, int64_t id)
{
    static char out[8][256];
    static int slot;
    char *r = out[slot++ % 8];
    err e;
    err_clear(&e);
    db_stmt *s = db_prepare_once(f->d, sql, &e);
    assert_non_null(s);
    db_bind_int(s, 1, id);
    int rc = db_step(f->d, s, &e);
    assert_true(rc >= 0);
    snprintf(r, 256, "%s", rc == DB_ROW ? db_col_text(s, 0) : "<none>");
    db_finalize(s);
    return r;
}

static int64_t q1i(fixture *f, const char *sql, int64_t id) { return strtoll(q1(f, sql, id), NULL, 10); }

static int64_t count(fixture *f, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE ? > 0", table);
    return q1i(f, sql, 1);
}

static int create_with(fixture *f, ruleset *rs, const char *plan, const char *start, const char *today,
                       const char *const *addons, size_t naddons, const char *account, int64_t *id, rule_error *re, err *e)
{
    subs_new in = {.customer_id = 1, .plan = plan, .start_date = start, .addons = addons, .naddons = naddons,
                   .account = account, .today = today, .by = "test"};
    assert_int_equal(db_begin(f->d, e), 0);
    int rc = subs_create(f->d, rs, &in, id, re, e);
    if (rc) db_rollback(f->d);
    else assert_int_equal(db_commit(f->d, e), 0);
    return rc;
}

static int64_t create_ok(fixture *f, const char *plan, const char *start, const char *today, const char *account)
{
    int64_t id = 0;
    err e;
    err_clear(&e);
    int rc = create_with(f, f->rs, plan, start, today, NULL, 0, account, &id, NULL, &e);
    if (rc) print_error("subs_create: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return id;
}

static int change_with(fixture *f, ruleset *rs, int64_t id, const char *kind, const char *product, const char *today,
                       subs_change_out *out, rule_error *re, err *e)
{
    subs_change_req req = {.kind = kind, .product = product, .today = today, .by = "test"};
    assert_int_equal(db_begin(f->d, e), 0);
    int rc = subs_change(f->d, rs, id, &req, out, re, e);
    if (rc) db_rollback(f->d);
    else assert_int_equal(db_commit(f->d, e), 0);
    return rc;
}

static subs_change_out change_ok(fixture *f, int64_t id, const char *kind, const char *product, const char *today)
{
    subs_change_out out;
    err e;
    err_clear(&e);
    int rc = change_with(f, f->rs, id, kind, product, today, &out, NULL, &e);
    if (rc) print_error("subs_change %s: %s\n", kind, e.msg);
    assert_int_equal(rc, 0);
    return out;
}

static int apply_due(fixture *f, const char *date)
{
    int n = -1;
    err e;
    err_clear(&e);
    int rc = subs_apply_due(f->d, date, KEY, &n, &e);
    if (rc) print_error("apply_due: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return n;
}

#define SUB(col, id) q1(f, "SELECT " col " FROM subscriptions WHERE id = ?", id)
#define PLAN_OF(id) q1(f, "SELECT p.code FROM subscriptions s JOIN products p ON p.id = s.product_id WHERE s.id = ?", id)

/* ------------------------------------------------------------- the rules */

static void test_examples_pass(void **state)
{
    fixture *f = *state;
    int total = 0, failed = -1;
    err e;
    err_clear(&e);
    assert_int_equal(lhost_run_examples(f->rs->host, "subscriptions", NULL, NULL, &total, &failed, &e), 0);
    assert_true(total >= 15);
    assert_int_equal(failed, 0);
}

/* ------------------------------------------------------------- schedule */

static void test_schedule_postpaid_with_contract(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "FIBER300", "2026-11-17", "2026-11-17", "zs001");
    assert_string_equal(SUB("status", id), "active");
    assert_string_equal(SUB("billing", id), "postpaid");
    assert_string_equal(SUB("period", id), "month");
    assert_string_equal(SUB("start_date", id), "2026-11-17");
    /* 2026-11-17 + 24 months - 1 day */
    assert_string_equal(SUB("contract_end", id), "2028-11-16");
    assert_string_equal(SUB("anchor_day", id), "1");
    assert_string_equal(SUB("next_bill_date", id), "2026-12-01");
    assert_true(q1i(f, "SELECT paid_through IS NULL FROM subscriptions WHERE id = ?", id));
    assert_string_equal(SUB("service_account_id", id), "1");
    assert_string_equal(q1(f, "SELECT kind || ' ' || status || ' ' || effective_date FROM subscription_changes "
                              "WHERE subscription_id = ?", id),
                        "create applied 2026-11-17");
    assert_string_equal(q1(f, "SELECT rules_version FROM subscription_changes WHERE subscription_id = ?", id),
                        f->rs->snap->version);
}

static void test_schedule_prepaid(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "PRE100", "2026-01-31", "2026-02-03", NULL);
    assert_string_equal(SUB("billing", id), "prepaid");
    assert_string_equal(SUB("period", id), "quarter");
    assert_string_equal(SUB("anchor_day", id), "31");
    assert_string_equal(SUB("next_bill_date", id), "2026-01-31");    /* the first term is billed at once */
    assert_string_equal(SUB("paid_through", id), "2026-01-30");      /* nothing is paid yet */
    assert_true(q1i(f, "SELECT contract_end IS NULL FROM subscriptions WHERE id = ?", id));
    assert_true(q1i(f, "SELECT service_account_id IS NULL FROM subscriptions WHERE id = ?", id));
}

static void test_future_start_is_pending_until_its_day(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "FIBER100", "2026-12-10", "2026-11-20", NULL);
    assert_string_equal(SUB("status", id), "pending");
    assert_string_equal(q1(f, "SELECT status FROM subscription_changes WHERE subscription_id = ?", id), "scheduled");
    assert_int_equal(apply_due(f, "2026-12-09"), 0);
    assert_string_equal(SUB("status", id), "pending");
    assert_int_equal(apply_due(f, "2026-12-10"), 1);
    assert_string_equal(SUB("status", id), "active");
    assert_string_equal(q1(f, "SELECT status FROM subscription_changes WHERE subscription_id = ?", id), "applied");
}

static void test_create_refusals_write_nothing(void **state)
{
    fixture *f = *state;
    int64_t id = 0;
    err e;
    err_clear(&e);
    static const char *const iptv[] = {"IPTV"};
    /* an add-on that does not fit: the rule's reason, on the add-on's field */
    assert_int_equal(create_with(f, f->rs, "FIBER100", "2026-11-20", "2026-11-20", iptv, 1, NULL, &id, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "addon_refused");
    assert_string_equal(e.field, "addons[0]");
    assert_string_equal(e.msg, "add-on IPTV does not fit plan FIBER100 (it fits FIBER300, FIBER500)");
    /* not sold at the customer's address */
    assert_int_equal(create_with(f, f->rs, "SHONLY", NULL, "2026-11-20", NULL, 0, NULL, &id, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "not_available");
    assert_string_equal(e.field, "plan");
    /* retired, an add-on as a plan, no such plan */
    assert_int_equal(create_with(f, f->rs, "OLDPLAN", NULL, "2026-11-20", NULL, 0, NULL, &id, NULL, &e), ERR_CONFLICT);
    assert_int_equal(create_with(f, f->rs, "IPTV", NULL, "2026-11-20", NULL, 0, NULL, &id, NULL, &e), ERR_INVALID);
    assert_string_equal(e.msg, "IPTV is an add-on, not a plan");
    assert_int_equal(create_with(f, f->rs, "NOPE", NULL, "2026-11-20", NULL, 0, NULL, &id, NULL, &e), ERR_NOTFOUND);
    /* another customer's account; a bad start date */
    assert_int_equal(create_with(f, f->rs, "FIBER100", NULL, "2026-11-20", NULL, 0, "ls001", &id, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.field, "account");
    assert_int_equal(create_with(f, f->rs, "FIBER100", "2026-02-30", "2026-11-20", NULL, 0, NULL, &id, NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "start_date");
    assert_int_equal(count(f, "subscriptions"), 0);
    assert_int_equal(count(f, "subscription_items"), 0);
    assert_int_equal(count(f, "subscription_changes"), 0);
    /* one live subscription per service account */
    create_ok(f, "FIBER100", NULL, "2026-11-20", "zs001");
    assert_int_equal(create_with(f, f->rs, "FIBER300", NULL, "2026-11-20", NULL, 0, "zs001", &id, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "account_in_use");
}

static void test_create_with_addons(void **state)
{
    fixture *f = *state;
    static const char *const ads[] = {"IPTV", "STATICIP"};
    int64_t id = 0;
    err e;
    err_clear(&e);
    assert_int_equal(create_with(f, f->rs, "FIBER300", "2026-11-17", "2026-11-17", ads, 2, NULL, &id, NULL, &e), 0);
    jv *o;
    assert_int_equal(subs_get(f->d, id, SUBS_WITH_CHANGES, &f->a, &o, &e), 0);
    const jv *items = jv_get(o, "items");
    assert_int_equal(jv_len(items), 2);
    assert_string_equal(jv_get(jv_at(items, 0), "product")->u.str.s, "IPTV");
    assert_string_equal(jv_get(jv_at(items, 1), "product")->u.str.s, "STATICIP");
    assert_string_equal(jv_get(jv_at(items, 1), "start_date")->u.str.s, "2026-11-17");
    assert_string_equal(jv_get(o, "customer")->u.str.s, "C000000013");
    assert_string_equal(jv_get(o, "plan")->u.str.s, "FIBER300");
    assert_int_equal(jv_len(jv_get(o, "changes")), 1);
    assert_int_equal(jv_get(o, "contract_end")->kind, JV_STR);
    assert_int_equal(jv_get(o, "paid_through")->kind, JV_NULL);
}

/* ------------------------------------------------------------- changes */

static void test_upgrade_applies_today(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "FIBER300", "2026-01-15", "2026-01-15", NULL);
    subs_change_out out = change_ok(f, id, "upgrade", "FIBER500", "2026-11-20");
    assert_int_equal(out.applied, 1);
    assert_string_equal(out.effective_date, "2026-11-20");
    assert_int_equal(out.fee, 0);
    assert_string_equal(PLAN_OF(id), "FIBER500");
    assert_string_equal(q1(f, "SELECT status || ' ' || effective_date || ' ' || from_product_id || '>' || to_product_id "
                              "FROM subscription_changes WHERE id = ?", out.change_id),
                        "applied 2026-11-20 2>3");
    assert_int_equal(count(f, "pending_charges"), 0);
}

/* FIBER300 from 2026-01-15 with 24 months: the contract ends 2028-01-14.
 * A downgrade asked on 2026-11-20 starts with the next period, 2026-12-01;
 * 13 whole months are left (2026-12-01 + 13 months = 2028-01-01 <=
 * 2028-01-15 < 2028-02-01). Fee: 13 x (12998 - 9900) x 20% = 40274 x 0.2 =
 * 8054.8 fen, half up 8055. */
static void test_downgrade_scheduled_then_applied_on_its_day(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "FIBER300", "2026-01-15", "2026-01-15", "zs001");
    assert_string_equal(SUB("contract_end", id), "2028-01-14");
    subs_change_out out = change_ok(f, id, "downgrade", "FIBER100", "2026-11-20");
    assert_int_equal(out.applied, 0);
    assert_string_equal(out.effective_date, "2026-12-01");
    assert_int_equal(out.fee, 8055);
    assert_int_equal(out.charge_id, 0);
    assert_string_equal(PLAN_OF(id), "FIBER300");
    assert_string_equal(q1(f, "SELECT status FROM subscription_changes WHERE id = ?", out.change_id), "scheduled");
    assert_int_equal(count(f, "pending_charges"), 0);      /* charged when it takes effect */

    /* another plan change while one is pending */
    subs_change_out o2;
    err e;
    err_clear(&e);
    assert_int_equal(change_with(f, f->rs, id, "upgrade", "FIBER500", "2026-11-21", &o2, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "change_pending");

    int64_t audits = count(f, "audit_log");
    assert_int_equal(apply_due(f, "2026-11-30"), 0);
    assert_string_equal(PLAN_OF(id), "FIBER300");
    assert_int_equal(apply_due(f, "2026-12-01"), 1);
    assert_string_equal(PLAN_OF(id), "FIBER100");
    assert_string_equal(q1(f, "SELECT status FROM subscription_changes WHERE id = ?", out.change_id), "applied");
    assert_string_equal(q1(f, "SELECT unit_price || ' ' || quantity || ' ' || tax_category || ' ' || source || ' ' || "
                              "subscription_id FROM pending_charges WHERE ? > 0", 1),
                        "8055 1 internet contract 1");
    assert_non_null(strstr(q1(f, "SELECT description FROM pending_charges WHERE ? > 0", 1), "Early termination fee"));
    assert_int_equal(count(f, "audit_log"), audits + 1);
    assert_string_equal(q1(f, "SELECT action || ' ' || actor || ' ' || object_id FROM audit_log ORDER BY id DESC LIMIT ?", 1),
                        "subscription.change_apply system 1");
    /* applied once only */
    assert_int_equal(apply_due(f, "2026-12-02"), 0);
    assert_int_equal(count(f, "pending_charges"), 1);
    /* the account stays as it was: a downgrade does not touch it */
    assert_string_equal(q1(f, "SELECT status FROM service_accounts WHERE id = ?", 1), "active");
}

/* Termination on 2026-11-20 of the same subscription: effective 2026-12-01,
 * 13 whole months left; fee 13 x 12998 x 20% = 168974 x 0.2 = 33794.8,
 * half up 33795. The service ends on 2026-11-30. */
static void test_early_termination_fee_to_the_fen(void **state)
{
    fixture *f = *state;
    static const char *const ads[] = {"IPTV"};
    int64_t id = 0;
    err e;
    err_clear(&e);
    assert_int_equal(create_with(f, f->rs, "FIBER300", "2026-01-15", "2026-01-15", ads, 1, "zs001", &id, NULL, &e), 0);
    subs_change_out rm = change_ok(f, id, "addon_remove", "IPTV", "2026-11-20");
    assert_int_equal(rm.applied, 0);
    subs_change_out out = change_ok(f, id, "terminate", NULL, "2026-11-20");
    assert_int_equal(out.applied, 0);
    assert_string_equal(out.effective_date, "2026-12-01");
    assert_int_equal(out.fee, 33795);
    assert_int_equal(apply_due(f, "2026-12-01"), 2);
    assert_string_equal(SUB("status", id), "terminated");
    assert_string_equal(SUB("end_date", id), "2026-11-30");
    assert_string_equal(q1(f, "SELECT end_date FROM subscription_items WHERE subscription_id = ?", id), "2026-11-30");
    assert_string_equal(q1(f, "SELECT status FROM service_accounts WHERE id = ?", 1), "closed");
    assert_string_equal(q1(f, "SELECT unit_price FROM pending_charges WHERE subscription_id = ?", id), "33795");
    /* nothing more happens to a terminated subscription */
    subs_change_out o2;
    assert_int_equal(change_with(f, f->rs, id, "resume", NULL, "2026-12-02", &o2, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "subscription_terminated");
}

/* A locked 12-month contract (from 2026-01-15 to 2027-01-14) cannot be
 * left early; after its end it can, without a fee. */
static void test_contract_lock_refuses(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "LOCKED", "2026-01-15", "2026-01-15", NULL);
    subs_change_out out;
    err e;
    err_clear(&e);
    assert_int_equal(change_with(f, f->rs, id, "terminate", NULL, "2026-11-20", &out, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "change_refused");
    assert_string_equal(e.msg, "plan LOCKED cannot be ended before the contract ends on 2027-01-14");
    /* after the contract it can, without a fee */
    out = change_ok(f, id, "terminate", NULL, "2027-01-20");
    assert_string_equal(out.effective_date, "2027-02-01");
    assert_int_equal(out.fee, 0);
}

static void test_addon_that_does_not_fit_is_refused(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "FIBER100", "2026-11-01", "2026-11-01", NULL);
    int64_t changes = count(f, "subscription_changes");
    subs_change_out out;
    err e;
    err_clear(&e);
    assert_int_equal(change_with(f, f->rs, id, "addon_add", "IPTV", "2026-11-20", &out, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "change_refused");
    assert_string_equal(e.field, "product");
    assert_string_equal(e.msg, "add-on IPTV does not fit plan FIBER100 (it fits FIBER300, FIBER500)");
    assert_int_equal(count(f, "subscription_changes"), changes);
    assert_int_equal(count(f, "subscription_items"), 0);
    /* one that fits any plan starts today */
    out = change_ok(f, id, "addon_add", "STATICIP", "2026-11-20");
    assert_int_equal(out.applied, 1);
    assert_string_equal(q1(f, "SELECT start_date FROM subscription_items WHERE subscription_id = ?", id), "2026-11-20");
    /* not twice */
    assert_int_equal(change_with(f, f->rs, id, "addon_add", "STATICIP", "2026-11-21", &out, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "addon_present");
    /* a plan is not an add-on */
    assert_int_equal(change_with(f, f->rs, id, "addon_add", "FIBER300", "2026-11-21", &out, NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "product");
}

static void test_suspend_and_resume_move_the_account(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "FIBER100", "2026-11-01", "2026-11-01", "zs001");
    subs_change_out out;
    err e;
    err_clear(&e);
    assert_int_equal(change_with(f, f->rs, id, "resume", NULL, "2026-11-20", &out, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.msg, "only a suspended subscription can be resumed; this one is active");
    out = change_ok(f, id, "suspend", NULL, "2026-11-20");
    assert_int_equal(out.applied, 1);
    assert_string_equal(SUB("status", id), "suspended");
    assert_string_equal(q1(f, "SELECT status FROM service_accounts WHERE id = ?", 1), "suspended");
    assert_int_equal(change_with(f, f->rs, id, "suspend", NULL, "2026-11-21", &out, NULL, &e), ERR_CONFLICT);
    out = change_ok(f, id, "resume", NULL, "2026-11-25");
    assert_string_equal(SUB("status", id), "active");
    assert_string_equal(q1(f, "SELECT status FROM service_accounts WHERE id = ?", 1), "active");
    assert_string_equal(q1(f, "SELECT group_concat(kind || '@' || effective_date, ',') FROM "
                              "(SELECT kind, effective_date FROM subscription_changes WHERE subscription_id = ? ORDER BY id)", id),
                        "create@2026-11-01,suspend@2026-11-20,resume@2026-11-25");
    /* a product where none belongs */
    assert_int_equal(change_with(f, f->rs, id, "suspend", "FIBER100", "2026-11-26", &out, NULL, &e), ERR_INVALID);
    assert_int_equal(change_with(f, f->rs, id, "pause", NULL, "2026-11-26", &out, NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "kind");
    /* an account closed meanwhile stays closed: suspending leaves it, and
     * the subscription cannot be resumed onto it */
    assert_int_equal(db_run(f->d, &e, "UPDATE service_accounts SET status = 'closed' WHERE id = ?", "i", (int64_t)1), 0);
    out = change_ok(f, id, "suspend", NULL, "2026-11-27");
    assert_string_equal(q1(f, "SELECT status FROM service_accounts WHERE id = ?", 1), "closed");
    assert_int_equal(change_with(f, f->rs, id, "resume", NULL, "2026-11-28", &out, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "account_closed");
    assert_string_equal(SUB("status", id), "suspended");
}

static void test_cancel_scheduled_change(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "FIBER300", "2026-11-01", "2026-11-01", NULL);
    int64_t other = create_ok(f, "FIBER300", "2026-11-01", "2026-11-01", NULL);
    subs_change_out out = change_ok(f, id, "downgrade", "FIBER100", "2026-11-20");
    err e;
    err_clear(&e);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(subs_cancel_change(f->d, other, out.change_id, &e), ERR_NOTFOUND);   /* not its change */
    assert_int_equal(subs_cancel_change(f->d, id, out.change_id, &e), 0);
    assert_int_equal(subs_cancel_change(f->d, id, out.change_id, &e), ERR_CONFLICT);      /* no longer scheduled */
    assert_string_equal(e.tag, "change_not_scheduled");
    int64_t create_change = q1i(f, "SELECT MIN(id) FROM subscription_changes WHERE subscription_id = ?", id);
    assert_int_equal(subs_cancel_change(f->d, id, create_change, &e), ERR_CONFLICT);      /* applied */
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_int_equal(apply_due(f, "2026-12-01"), 0);
    assert_string_equal(PLAN_OF(id), "FIBER300");
    assert_string_equal(q1(f, "SELECT status FROM subscription_changes WHERE id = ?", out.change_id), "cancelled");
    /* a new plan change may be asked for now */
    out = change_ok(f, id, "upgrade", "FIBER500", "2026-11-21");
    assert_int_equal(out.applied, 1);
}

/* ---------------------------------------------------- a rule gone wrong */

static const char *BAD_RULES =
    "local M = {}\n"
    "function M.schedule(ctx)\n"
    "  if ctx.start_date == '2026-06-01' then\n"
    "    return { billing = 'postpaid', period = 'month', anchor_day = 1, next_bill_date = '2026-13-01' }\n"
    "  end\n"
    "  return { billing = 'postpaid', period = 'month', anchor_day = 1, next_bill_date = '2026-12-01' }\n"
    "end\n"
    "function M.addon_fits(ctx) return { allowed = true } end\n"
    "function M.change(ctx)\n"
    "  if ctx.kind == 'suspend' then return { allowed = true, effective_date = ctx.today, fee = 12.5 } end\n"
    "  if ctx.kind == 'terminate' then return { allowed = true, effective_date = '2026-02-30', fee = 0 } end\n"
    "  if ctx.kind == 'upgrade' then return { allowed = true, effective_date = '2000-01-01', fee = 0 } end\n"
    "  if ctx.kind == 'downgrade' then return { allowed = true, efective_date = ctx.today, fee = 0 } end\n"
    "  if ctx.kind == 'resume' then return { allowed = 'yes' } end\n"
    "  error('no change for you')\n"
    "end\n"
    "return M\n";

static void test_rule_breaking_its_contract_writes_nothing(void **state)
{
    fixture *f = *state;
    char dir[128], file[160];
    snprintf(dir, sizeof dir, "%s/badrules", f->dir);
    snprintf(file, sizeof file, "%s/subscriptions.lua", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fputs(BAD_RULES, fp);
    fclose(fp);
    rules_snapshot *snap;
    ruleset *bad;
    assert_int_equal(load_rules(dir, &snap, &bad), 0);

    int64_t id = create_ok(f, "FIBER100", "2026-11-01", "2026-11-01", "zs001");
    int64_t subs = count(f, "subscriptions"), changes = count(f, "subscription_changes");
    int64_t charges = count(f, "pending_charges");
    static const struct {
        const char *kind, *product, *needle;
    } cases[] = {
        {"suspend", NULL, "rule subscriptions.change returned an invalid value: fee must be an integer count of fen, zero or "
                          "more; got 12.5"},
        {"terminate", NULL, "rule subscriptions.change returned an invalid value: effective_date must be a date "
                            "\"YYYY-MM-DD\", got \"2026-02-30\""},
        {"upgrade", "FIBER300", "rule subscriptions.change returned an invalid value: effective_date 2000-01-01 is before "
                                "today 2026-11-20"},
        {"downgrade", "FIBER100", "rule subscriptions.change returned an invalid value: unexpected field 'efective_date'"},
        {"resume", NULL, "rule subscriptions.change returned an invalid value: allowed must be true or false, got \"yes\""},
        {"addon_add", "STATICIP", "rule subscriptions.change failed at subscriptions.lua:15"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        subs_change_out out;
        rule_error re;
        memset(&re, 0, sizeof re);
        err e;
        err_clear(&e);
        int rc = change_with(f, bad, id, cases[i].kind, cases[i].product, "2026-11-20", &out, &re, &e);
        assert_int_equal(rc, ERR_RULE);
        if (!strstr(e.msg, cases[i].needle)) print_error("%s: got '%s'\n", cases[i].kind, e.msg);
        assert_non_null(strstr(e.msg, cases[i].needle));
        assert_string_equal(re.rule, "subscriptions.change");
        assert_string_equal(re.file, "subscriptions.lua");
    }
    /* the upgrade case above must not have been refused for its plan */
    assert_string_equal(SUB("status", id), "active");
    assert_string_equal(q1(f, "SELECT status FROM service_accounts WHERE id = ?", 1), "active");
    assert_int_equal(count(f, "subscription_changes"), changes);
    assert_int_equal(count(f, "pending_charges"), charges);

    /* schedule returning 2026-13-01 */
    int64_t nid = 0;
    rule_error re;
    memset(&re, 0, sizeof re);
    err e;
    err_clear(&e);
    assert_int_equal(create_with(f, bad, "FIBER100", "2026-06-01", "2026-06-01", NULL, 0, NULL, &nid, &re, &e), ERR_RULE);
    assert_string_equal(e.msg, "rule subscriptions.schedule returned an invalid value: next_bill_date must be a date "
                               "\"YYYY-MM-DD\", got \"2026-13-01\"");
    assert_string_equal(re.kind, "output");
    assert_string_equal(re.function, "schedule");
    assert_int_equal(count(f, "subscriptions"), subs);
    assert_int_equal(count(f, "subscription_changes"), changes);
    ruleset_unref(bad);
    rules_snapshot_unref(snap);
}

/* ------------------------------------------------------------- charges */

static int charge(fixture *f, subs_charge_new *in, int64_t *id, err *e)
{
    in->today = "2026-11-20";
    in->by = "test";
    if (!in->customer_id) in->customer_id = 1;
    if (!in->quantity) in->quantity = 1;
    assert_int_equal(db_begin(f->d, e), 0);
    int rc = subs_charge_create(f->d, f->rs, in, id, e);
    if (rc) db_rollback(f->d);
    else assert_int_equal(db_commit(f->d, e), 0);
    return rc;
}

static void test_charges(void **state)
{
    fixture *f = *state;
    int64_t id = 0;
    err e;
    err_clear(&e);
    /* from a fee product, tax included: its price as is */
    subs_charge_new a = {.product = "INSTALL", .source = "install"};
    assert_int_equal(charge(f, &a, &id, &e), 0);
    jv *o;
    assert_int_equal(subs_charge_get(f->d, id, &f->a, &o, &e), 0);
    assert_int_equal(jv_get(o, "unit_price")->u.i, 20000);
    assert_string_equal(jv_get(o, "description")->u.str.s, "Installation");
    assert_string_equal(jv_get(o, "tax_category")->u.str.s, "installation");
    assert_string_equal(jv_get(o, "status")->u.str.s, "open");
    /* a net price gets its tax added by tax.on_net: 10000 + 9% = 10900 */
    subs_charge_new b = {.product = "REPAIR", .quantity = 2, .description = "Repair visit, 2 hours"};
    int64_t id2;
    assert_int_equal(charge(f, &b, &id2, &e), 0);
    assert_int_equal(subs_charge_get(f->d, id2, &f->a, &o, &e), 0);
    assert_int_equal(jv_get(o, "unit_price")->u.i, 10900);
    assert_int_equal(jv_get(o, "amount")->u.i, 21800);
    /* by hand */
    subs_charge_new c = {.description = "Field visit", .has_unit_price = 1, .unit_price = 5000, .tax_category = "installation",
                         .source = "ticket"};
    int64_t id3;
    assert_int_equal(charge(f, &c, &id3, &e), 0);
    /* refusals */
    subs_charge_new bad1 = {.description = "x", .has_unit_price = 1, .unit_price = 100, .tax_category = "snacks"};
    assert_int_equal(charge(f, &bad1, &id, &e), ERR_INVALID);
    assert_string_equal(e.field, "tax_category");
    subs_charge_new bad2 = {.product = "FIBER100"};
    assert_int_equal(charge(f, &bad2, &id, &e), ERR_INVALID);
    assert_string_equal(e.msg, "FIBER100 is a plan, not a fee");
    subs_charge_new bad3 = {.description = "x", .has_unit_price = 1, .unit_price = -1, .tax_category = "internet"};
    assert_int_equal(charge(f, &bad3, &id, &e), ERR_INVALID);
    assert_string_equal(e.field, "unit_price");
    subs_charge_new bad4 = {.product = "INSTALL", .has_unit_price = 1, .unit_price = 1};
    assert_int_equal(charge(f, &bad4, &id, &e), ERR_INVALID);
    subs_charge_new bad5 = {.customer_id = 2, .description = "x", .has_unit_price = 1, .unit_price = 1, .tax_category = "internet"};
    assert_int_equal(charge(f, &bad5, &id, &e), ERR_CONFLICT);     /* a closed customer */
    subs_charge_new bad6 = {.description = "x", .has_unit_price = 1, .unit_price = 1, .tax_category = "internet",
                            .source = "contract"};
    assert_int_equal(charge(f, &bad6, &id, &e), ERR_INVALID);      /* contract fees come from changes only */
    assert_int_equal(count(f, "pending_charges"), 3);

    /* cancel while open; not twice; not once billed */
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(subs_charge_cancel(f->d, id3, &e), 0);
    assert_int_equal(subs_charge_cancel(f->d, id3, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "charge_cancelled");
    assert_int_equal(db_run(f->d, &e, "UPDATE pending_charges SET billed_on = '2026-12-01' WHERE id = ?", "i", id2), 0);
    assert_int_equal(subs_charge_cancel(f->d, id2, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "charge_billed");
    assert_int_equal(subs_charge_cancel(f->d, 999, &e), ERR_NOTFOUND);
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_int_equal(subs_charge_get(f->d, id3, &f->a, &o, &e), 0);
    assert_string_equal(jv_get(o, "status")->u.str.s, "cancelled");
}

static void test_writes_need_a_transaction(void **state)
{
    fixture *f = *state;
    subs_new in = {.customer_id = 1, .plan = "FIBER100", .today = "2026-11-20", .by = "test"};
    int64_t id;
    err e;
    err_clear(&e);
    assert_int_equal(subs_create(f->d, f->rs, &in, &id, NULL, &e), ERR_INTERNAL);
    assert_int_equal(count(f, "subscriptions"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_examples_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_postpaid_with_contract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_prepaid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_start_is_pending_until_its_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refusals_write_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_with_addons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_applies_today, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downgrade_scheduled_then_applied_on_its_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_early_termination_fee_to_the_fen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contract_lock_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addon_that_does_not_fit_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspend_and_resume_move_the_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_scheduled_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_breaking_its_contract_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_charges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_need_a_transaction, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    metrics_reset();    /* the process-wide registry of rule call counters */
    return failed;
}
