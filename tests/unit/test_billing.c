/* test_billing.c - the billing engine through the real rules folder and a
 * real SQLite file: bills computed by rules/billing.lua, checked by
 * billing.c, issued by billrun.c through invoices_issue. Every expected
 * figure is computed by hand in the comments, to the fen. Tax on a
 * tax-inclusive amount a at rate r is round_half_up(a x r / (100 + r)),
 * away from zero for negative amounts.
 *
 * Then rules that misbehave (a float, a string, a negative amount, nothing,
 * an error): a located error, no invoice, the run goes on. Then a property
 * test over 24 months of random customers, changes, payments and credit
 * notes: invoices - credit notes - payments = the ledger balance for
 * everyone, one invoice per subscription and period, periods without gap
 * or overlap, invoice numbers without gap. */
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

#include "billing.h"
#include "billrun.h"
#include "date.h"
#include "db.h"
#include "invoices.h"
#include "json.h"
#include "ledger.h"
#include "log.h"
#include "migrate.h"
#include "payments.h"
#include "rules.h"
#include "subs.h"
#include "unit_fs.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    db *d;
    rules_snapshot *snap;
    ruleset *rs;
} fixture;

/* Products (prices in fen; tariffs.monthly prorates by days, half up):
 *   1 FIB129    plan 129.00/month postpaid
 *   2 FIB199    plan 199.00/month postpaid
 *   3 IPTV      add-on 15.00/month
 *   4 YEAR1200  plan 1200.00/year prepaid
 *   5 FIRSTYEAR promotion: 15% off the plan in the first 12 months, for customers tagged promo_fy
 *   6 VIP       promotion tag_price: the plan FIB129 for 99.00, customers tagged vip
 *   7 NEWUSER   promotion tag_price: the plan FIB129 for 109.00, customers tagged new_user
 *   8 NET2525   plan 25.25/month NET of tax (price_includes_tax 0)
 *   9 NET2524   plan 25.24/month net of tax */
static const char *SEED =
    "INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
    "(1, 'FIB129', 'plan', 'Fiber 129', 'active', 't', 't'), (2, 'FIB199', 'plan', 'Fiber 199', 'active', 't', 't'),"
    "(3, 'IPTV', 'addon', 'IPTV', 'active', 't', 't'), (4, 'YEAR1200', 'plan', 'Annual', 'active', 't', 't'),"
    "(5, 'FIRSTYEAR', 'promotion', 'FIRSTYEAR', 'active', 't', 't'), (6, 'VIP', 'promotion', 'VIP', 'active', 't', 't'),"
    "(7, 'NEWUSER', 'promotion', 'NEWUSER', 'active', 't', 't'), (8, 'NET2525', 'plan', 'Net 25.25', 'active', 't', 't'),"
    "(9, 'NET2524', 'plan', 'Net 25.24', 'active', 't', 't');"
    "INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, rule, "
    "params, attrs, regions, tags, created_at, created_by) VALUES "
    "(1, 1, '2020-01-01', 12900, 1, 'internet', 'tariffs.monthly', '{\"proration\":\"daily\",\"rounding\":\"half_up\"}', "
    "'{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":0}', '[]', '[]', 't', 't'),"
    "(2, 1, '2020-01-01', 19900, 1, 'internet', 'tariffs.monthly', '{\"proration\":\"daily\",\"rounding\":\"half_up\"}', "
    "'{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":0}', '[]', '[]', 't', 't'),"
    "(3, 1, '2020-01-01', 1500, 1, 'internet', 'tariffs.monthly', '{}', '{\"fits\":[]}', '[]', '[]', 't', 't'),"
    "(4, 1, '2020-01-01', 120000, 1, 'internet', 'tariffs.monthly', '{}', "
    "'{\"period\":\"year\",\"billing\":\"prepaid\",\"min_contract_months\":0}', '[]', '[]', 't', 't'),"
    "(5, 1, '2020-01-01', 0, 1, 'internet', 'promotions.first_year', '{\"percent\":15}', "
    "'{\"promo_type\":\"first_year\",\"applies_to\":\"plan\",\"products\":[],\"requires\":[],\"min_tenure_months\":0,"
    "\"stackable\":false}', '[]', '[\"promo_fy\"]', 't', 't'),"
    "(6, 1, '2020-01-01', 9900, 1, 'internet', 'promotions.tag_price', '{}', "
    "'{\"promo_type\":\"tag_price\",\"applies_to\":\"plan\",\"products\":[\"FIB129\"],\"requires\":[],"
    "\"min_tenure_months\":0,\"stackable\":false}', '[]', '[\"vip\"]', 't', 't'),"
    "(7, 1, '2020-01-01', 10900, 1, 'internet', 'promotions.tag_price', '{}', "
    "'{\"promo_type\":\"tag_price\",\"applies_to\":\"plan\",\"products\":[\"FIB129\"],\"requires\":[],"
    "\"min_tenure_months\":0,\"stackable\":false}', '[]', '[\"new_user\"]', 't', 't'),"
    "(8, 1, '2020-01-01', 2525, 0, 'internet', 'tariffs.monthly', '{}', "
    "'{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":0}', '[]', '[]', 't', 't'),"
    "(9, 1, '2020-01-01', 2524, 0, 'internet', 'tariffs.monthly', '{}', "
    "'{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":0}', '[]', '[]', 't', 't');";

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
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_billing_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
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
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

__attribute__((format(printf, 2, 3)))
static void sql(fixture *f, const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    err e;
    err_clear(&e);
    if (db_exec_script(f->d, q, &e)) {
        print_error("%s: %s\n", q, e.msg);
        fail();
    }
}

/* One value of a query as text ("" for NULL, "<none>" without a row). */
__attribute__((format(printf, 2, 3)))
static const char *q1(fixture *f, const char *fmt, ...)
{
    static char out[8][512];
    static int slot;
    char *r = out[slot++ % 8];
    char q[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    err e;
    err_clear(&e);
    db_stmt *s = db_prepare_once(f->d, q, &e);
    if (!s) print_error("%s: %s\n", q, e.msg);
    assert_non_null(s);
    int rc = db_step(f->d, s, &e);
    assert_true(rc >= 0);
    snprintf(r, 512, "%s", rc == DB_ROW ? db_col_text(s, 0) : "<none>");
    db_finalize(s);
    return r;
}

#define q1i(f, ...) strtoll(q1((f), __VA_ARGS__), NULL, 10)

/* A customer with tags (comma-separated, or ""), created on `since`. */
static int64_t customer(fixture *f, const char *tags, const char *since)
{
    static int64_t next = 100;
    int64_t id = next++;
    sql(f, "INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) VALUES "
           "(%lld, 'C%09lld', 'residential', 'Test', 'active', '%sT00:00:00.000Z', 't', 't');"
           "INSERT INTO addresses (customer_id, kind, province, city, district) VALUES (%lld, 'service', '浙江省', '杭州市', '西湖区');",
        (long long)id, (long long)id, since, (long long)id);
    char t[256];
    snprintf(t, sizeof t, "%s", tags);
    for (char *tok = strtok(t, ","); tok; tok = strtok(NULL, ","))
        sql(f, "INSERT INTO customer_tags (customer_id, tag) VALUES (%lld, '%s')", (long long)id, tok);
    return id;
}

/* A subscription as subs.c would have left it; billed_through "" for none. */
static int64_t subscription(fixture *f, int64_t cid, int plan, const char *billing, const char *period, const char *start,
                            int anchor, const char *next_bill, const char *billed_through)
{
    sql(f, "INSERT INTO subscriptions (customer_id, product_id, status, billing, period, start_date, anchor_day, "
           "next_bill_date, billed_through, created_at, created_by) VALUES (%lld, %d, 'active', '%s', '%s', '%s', %d, '%s', "
           "%s%s%s, 't', 't')",
        (long long)cid, plan, billing, period, start, anchor, next_bill, billed_through[0] ? "'" : "",
        billed_through[0] ? billed_through : "NULL", billed_through[0] ? "'" : "");
    return db_last_id(f->d);
}

static int64_t monthly(fixture *f, int64_t cid, int plan, const char *start, const char *next_bill, const char *billed)
{
    return subscription(f, cid, plan, "postpaid", "month", start, 1, next_bill, billed);
}

typedef struct outcome {
    int64_t run_id, invoiced, failed;
    char report[8192];
} outcome;

static outcome run_with(fixture *f, ruleset *rs, const char *as_of)
{
    outcome o = {0};
    billrun_opts opts = {.as_of = as_of, .rs = rs, .trigger = "manual", .by = "test"};
    billrun_result r;
    err e;
    err_clear(&e);
    int rc = billrun_exec(f->d, &opts, &r, &e);
    if (rc) print_error("billrun_exec: %s\n", e.msg);
    assert_int_equal(rc, 0);
    o.run_id = r.run_id;
    o.invoiced = r.invoiced;
    o.failed = r.failed;
    buf b = {0};
    json_write(&b, r.report);
    snprintf(o.report, sizeof o.report, "%s", buf_cstr(&b));
    buf_free(&b);
    billrun_result_free(&r);
    return o;
}

static outcome run(fixture *f, const char *as_of) { return run_with(f, f->rs, as_of); }

/* The lines of a subscription's invoice for the period starting `from`:
 * "kind amount tax|kind amount tax|..." in order. */
static const char *lines_of(fixture *f, int64_t sub, const char *from)
{
    static char out[1024];
    out[0] = '\0';
    char q[512];
    snprintf(q, sizeof q,
             "SELECT l.kind, l.amount, l.tax FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
             "WHERE i.subscription_id = %lld AND i.period_from = '%s' AND i.status <> 'void' ORDER BY l.seq",
             (long long)sub, from);
    err e;
    err_clear(&e);
    db_stmt *s = db_prepare_once(f->d, q, &e);
    assert_non_null(s);
    size_t used = 0;
    while (db_step(f->d, s, &e) == DB_ROW)
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%s %lld %lld", used ? "|" : "", db_col_text(s, 0),
                                 (long long)db_col_int(s, 1), (long long)db_col_int(s, 2));
    db_finalize(s);
    return out;
}

/* "gross net tax status issue due period_to" of that invoice. */
static const char *invoice_of(fixture *f, int64_t sub, const char *from)
{
    return q1(f, "SELECT gross || ' ' || net || ' ' || tax || ' ' || status || ' ' || issue_date || ' ' || due_date || ' ' "
                 "|| period_to FROM invoices WHERE subscription_id = %lld AND period_from = '%s' AND status <> 'void'",
              (long long)sub, from);
}

static const char *sub_dates(fixture *f, int64_t sub)
{
    return q1(f, "SELECT next_bill_date || ' ' || COALESCE(billed_through, '-') FROM subscriptions WHERE id = %lld",
              (long long)sub);
}

/* A payment at the counter, in a transaction of its own on d. */
static void counter_payment(db *d, int64_t cid, const char *receipt, int64_t amount, const char *day)
{
    err e;
    err_clear(&e);
    payment_new p = {.customer_id = cid, .channel = "counter", .channel_txn_id = receipt, .amount = amount,
                     .entry_date = day, .by = "test"};
    int64_t pid;
    assert_int_equal(db_begin(d, &e), 0);
    assert_int_equal(payments_record(d, &p, &pid, NULL, &e), 0);
    assert_int_equal(db_commit(d, &e), 0);
}

/* ------------------------------------------------------------ the cases */

static void test_full_month(void **state)
{
    fixture *f = *state;
    int64_t c = customer(f, "", "2026-01-01");
    int64_t s = monthly(f, c, 1, "2026-10-01", "2026-12-01", "2026-10-31");
    outcome o = run(f, "2026-12-01");
    assert_int_equal(o.invoiced, 1);
    /* November in full: 129.00; tax 12900 x 6 / 106 = 730.19 -> 730; net 12170 */
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 12900 730");
    /* issued on the run's day, due 15 days later */
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "12900 12170 730 open 2026-12-01 2026-12-16 2026-11-30");
    assert_string_equal(sub_dates(f, s), "2027-01-01 2026-11-30");
    /* again: nothing twice */
    o = run(f, "2026-12-01");
    assert_int_equal(o.invoiced, 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM invoices WHERE %s", "1"), 1);
}

static void test_start_17th_of_30_day_month(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2026-11-17"), 1, "2026-11-17", "2026-12-01", "");
    run(f, "2026-12-01");
    /* 17 to 30 November: 14 of 30 days: 12900 x 14 / 30 = 6020 exactly;
     * tax 6020 x 6 / 106 = 340.75 -> 341 */
    assert_string_equal(lines_of(f, s, "2026-11-17"), "recurring 6020 341");
    assert_string_equal(invoice_of(f, s, "2026-11-17"), "6020 5679 341 open 2026-12-01 2026-12-16 2026-11-30");
}

static void test_start_17th_of_31_day_month(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2026-12-17"), 1, "2026-12-17", "2027-01-01", "");
    run(f, "2027-01-01");
    /* 17 to 31 December: 15 of 31 days: 12900 x 15 / 31 = 6241.94 -> 6242;
     * tax 6242 x 6 / 106 = 353.32 -> 353 */
    assert_string_equal(lines_of(f, s, "2026-12-17"), "recurring 6242 353");
    assert_string_equal(invoice_of(f, s, "2026-12-17"), "6242 5889 353 open 2027-01-01 2027-01-16 2026-12-31");
}

static void test_start_29_february(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2028-02-29"), 1, "2028-02-29", "2028-03-01", "");
    run(f, "2028-03-01");
    /* 1 of 29 days: 12900 / 29 = 444.83 -> 445; tax 445 x 6 / 106 = 25.19 -> 25 */
    assert_string_equal(lines_of(f, s, "2028-02-29"), "recurring 445 25");
    /* March in full next */
    run(f, "2028-04-01");
    assert_string_equal(lines_of(f, s, "2028-03-01"), "recurring 12900 730");
}

static void test_upgrade_on_the_10th(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 2, "2026-01-01", "2026-12-01", "2026-10-31");
    /* upgraded from FIB129 to FIB199 on 10 November (the plan is FIB199 now) */
    sql(f, "INSERT INTO subscription_changes (subscription_id, kind, effective_date, from_product_id, to_product_id, status, "
           "requested_at, requested_by, applied_at) VALUES (%lld, 'upgrade', '2026-11-10', 1, 2, 'applied', 't', 't', 't')",
        (long long)s);
    run(f, "2026-12-01");
    /* the plan in force on 1 November for the month: 12900, tax 730;
     * 10 to 30 November is 21 of 30 days:
     *   FIB129 back: -12900 x 21 / 30 = -9030; tax -9030 x 6 / 106 = -511.13 -> -511
     *   FIB199:       19900 x 21 / 30 = 13930; tax 13930 x 6 / 106 = 788.49 -> 788
     * gross 12900 - 9030 + 13930 = 17800; tax 730 - 511 + 788 = 1007 */
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 12900 730|proration -9030 -511|proration 13930 788");
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "17800 16793 1007 open 2026-12-01 2026-12-16 2026-11-30");
    /* the change is on that bill now: December is FIB199 alone */
    assert_string_not_equal(q1(f, "SELECT COALESCE(invoice_id, '') FROM subscription_changes WHERE subscription_id = %lld",
                               (long long)s), "");
    run(f, "2027-01-01");
    /* 19900 x 6 / 106 = 1126.42 -> 1126 */
    assert_string_equal(lines_of(f, s, "2026-12-01"), "recurring 19900 1126");
}

static void test_downgrade_next_period(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-12-01", "2026-10-31");
    /* asked in November, effective 1 December: FIB199 -> FIB129 */
    sql(f, "INSERT INTO subscription_changes (subscription_id, kind, effective_date, from_product_id, to_product_id, status, "
           "requested_at, requested_by, applied_at) VALUES (%lld, 'downgrade', '2026-12-01', 2, 1, 'applied', 't', 't', 't')",
        (long long)s);
    run(f, "2026-12-01");
    /* November on the old plan, in full, nothing prorated: 19900, tax 1126 */
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 19900 1126");
    run(f, "2027-01-01");
    /* December on the new one */
    assert_string_equal(lines_of(f, s, "2026-12-01"), "recurring 12900 730");
}

static void test_first_year_promotion_ends_mid_period(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "promo_fy", "2026-01-20"), 1, "2026-01-20", "2027-02-01", "2026-12-31");
    run(f, "2027-02-01");
    /* the first year runs to 19 January 2027: 19 of 31 days discounted:
     *   12900 x 19 / 31 = 7906.45 -> 7906; 15% of it = 1185.9 -> 1186
     *   tax on -1186: -1186 x 6 / 106 = -67.13 -> -67
     * gross 12900 - 1186 = 11714; tax 730 - 67 = 663 */
    assert_string_equal(lines_of(f, s, "2027-01-01"), "recurring 12900 730|discount -1186 -67");
    assert_string_equal(invoice_of(f, s, "2027-01-01"), "11714 11051 663 open 2027-02-01 2027-02-16 2027-01-31");
    run(f, "2027-03-01");
    /* February 2027: after the first year, no discount */
    assert_string_equal(lines_of(f, s, "2027-02-01"), "recurring 12900 730");
}

static void test_vip_beats_new_user(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "new_user,vip", "2026-10-01"), 1, "2026-10-01", "2026-12-01", "2026-10-31");
    run(f, "2026-12-01");
    /* VIP 99.00 takes 12900 - 9900 = 3000 off, NEWUSER 109.00 only 2000:
     * VIP wins. Tax on -3000: -3000 x 6 / 106 = -169.81 -> -170.
     * gross 9900; tax 730 - 170 = 560 */
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 12900 730|discount -3000 -170");
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "9900 9340 560 open 2026-12-01 2026-12-16 2026-11-30");
    const char *detail = q1(f, "SELECT detail FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                               "WHERE i.subscription_id = %lld AND l.kind = 'discount'", (long long)s);
    assert_non_null(strstr(detail, "VIP 99.00 beats NEWUSER 109.00"));
    assert_string_equal(q1(f, "SELECT step || ' ' || rule || ' ' || product_code FROM invoice_lines l JOIN invoices i "
                              "ON i.id = l.invoice_id WHERE i.subscription_id = %lld AND l.kind = 'discount'", (long long)s),
                        "tag_prices billing.tag_prices VIP");
}

static void test_addon_removed_mid_month(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-12-01", "2026-10-31");
    sql(f, "INSERT INTO subscription_items (subscription_id, product_id, quantity, start_date, end_date) "
           "VALUES (%lld, 3, 1, '2026-01-01', '2026-11-15')", (long long)s);
    run(f, "2026-12-01");
    /* IPTV 1 to 15 November: 15 of 30 days: 1500 x 15 / 30 = 750; tax 750 x 6 / 106 = 42.45 -> 42 */
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 12900 730|addon 750 42");
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "13650 12878 772 open 2026-12-01 2026-12-16 2026-11-30");
    run(f, "2027-01-01");
    assert_string_equal(lines_of(f, s, "2026-12-01"), "recurring 12900 730");
}

static void test_annual_prepaid_renewal(void **state)
{
    fixture *f = *state;
    int64_t s = subscription(f, customer(f, "", "2025-04-01"), 4, "prepaid", "year", "2025-04-01", 1, "2026-03-25",
                             "2026-03-31");
    run(f, "2026-03-24");
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM invoices WHERE %s", "1"), 0);
    run(f, "2026-03-25");
    /* billed 7 days ahead: the year 1 April 2026 to 31 March 2027 in full:
     * 120000; tax 120000 x 6 / 106 = 6792.45 -> 6792; due on the first day */
    assert_string_equal(lines_of(f, s, "2026-04-01"), "recurring 120000 6792");
    assert_string_equal(invoice_of(f, s, "2026-04-01"), "120000 113208 6792 open 2026-03-25 2026-04-01 2027-03-31");
    assert_string_equal(sub_dates(f, s), "2027-03-25 2027-03-31");
}

/* YEAR2400: 2400.00 a year, prepaid (product 10). */
static void add_year2400(fixture *f)
{
    sql(f, "INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
           "(10, 'YEAR2400', 'plan', 'Annual 2400', 'active', 't', 't');"
           "INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, rule, "
           "params, attrs, regions, tags, created_at, created_by) VALUES (10, 1, '2020-01-01', 240000, 1, 'internet', "
           "'tariffs.monthly', '{}', '{\"period\":\"year\",\"billing\":\"prepaid\",\"min_contract_months\":0}', "
           "'[]', '[]', 't', 't')");
}

/* The term 1 April 2026 to 31 March 2027 is billed (in advance) on 25
 * March 2026 at YEAR1200. On 1 October 2026 the customer upgrades to
 * YEAR2400: 1 October 2026 to 31 March 2027 is 31+30+31+31+28+31 = 182 of
 * the term's 365 days. The next bill (the renewal of 25 March 2027) gives
 * them back and charges them at the new plan, priced against that term:
 *   YEAR1200 back: -120000 x 182 / 365 = -59835.6 -> -59836;
 *                  tax -59836 x 6 / 106 = -3386.94 -> -3387
 *   YEAR2400:       240000 x 182 / 365 = 119671.2 -> 119671;
 *                  tax 119671 x 6 / 106 = 6773.83 -> 6774
 * and the new term, 1 April 2027 to 31 March 2028, at YEAR2400 in full:
 *   240000; tax 240000 x 6 / 106 = 13584.91 -> 13585.
 * gross 240000 - 59836 + 119671 = 299835; tax 13585 - 3387 + 6774 = 16972. */
static void test_prepaid_upgrade_inside_billed_term(void **state)
{
    fixture *f = *state;
    add_year2400(f);
    int64_t s = subscription(f, customer(f, "", "2025-04-01"), 4, "prepaid", "year", "2025-04-01", 1, "2026-03-25",
                             "2026-03-31");
    run(f, "2026-03-25");
    assert_string_equal(lines_of(f, s, "2026-04-01"), "recurring 120000 6792");
    sql(f, "UPDATE subscriptions SET product_id = 10 WHERE id = %lld;"
           "INSERT INTO subscription_changes (subscription_id, kind, effective_date, from_product_id, to_product_id, status, "
           "requested_at, requested_by, applied_at) VALUES (%lld, 'upgrade', '2026-10-01', 4, 10, 'applied', 't', 't', 't')",
        (long long)s, (long long)s);
    assert_int_equal(run(f, "2026-10-01").invoiced, 0);
    assert_int_equal(run(f, "2027-03-25").invoiced, 1);
    assert_string_equal(lines_of(f, s, "2027-04-01"), "recurring 240000 13585|proration -59836 -3387|proration 119671 6774");
    assert_string_equal(invoice_of(f, s, "2027-04-01"), "299835 282863 16972 open 2027-03-25 2027-04-01 2028-03-31");
    /* dated inside the earlier term, by the products they price */
    assert_string_equal(q1(f, "SELECT group_concat(l.product_code || ' ' || l.period_from || ' ' || l.period_to, '|') "
                              "FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.subscription_id = %lld "
                              "AND l.kind = 'proration'", (long long)s),
                        "YEAR1200 2026-10-01 2027-03-31|YEAR2400 2026-10-01 2027-03-31");
    /* on a bill now: never again */
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM subscription_changes WHERE subscription_id = %lld AND invoice_id IS NULL",
                         (long long)s), 0);
    run(f, "2028-03-25");
    assert_string_equal(lines_of(f, s, "2028-04-01"), "recurring 240000 13585");
}

/* Suspended 1 to 30 June 2026 (resumed on 1 July) inside the term billed in
 * advance: 30 of its 365 days come back on the renewal:
 *   -120000 x 30 / 365 = -9863.01 -> -9863; tax -9863 x 6 / 106 = -558.28 -> -558
 * gross 120000 - 9863 = 110137; tax 6792 - 558 = 6234. */
static void test_prepaid_suspension_inside_billed_term(void **state)
{
    fixture *f = *state;
    int64_t s = subscription(f, customer(f, "", "2025-04-01"), 4, "prepaid", "year", "2025-04-01", 1, "2026-03-25",
                             "2026-03-31");
    run(f, "2026-03-25");
    sql(f, "INSERT INTO subscription_changes (subscription_id, kind, effective_date, status, requested_at, requested_by, "
           "applied_at) VALUES (%lld, 'suspend', '2026-06-01', 'applied', 't', 't', 't'), "
           "(%lld, 'resume', '2026-07-01', 'applied', 't', 't', 't')",
        (long long)s, (long long)s);
    run(f, "2027-03-25");
    assert_string_equal(lines_of(f, s, "2027-04-01"), "recurring 120000 6792|proration -9863 -558");
    assert_string_equal(invoice_of(f, s, "2027-04-01"), "110137 103903 6234 open 2027-03-25 2027-04-01 2028-03-31");
    assert_string_equal(q1(f, "SELECT l.period_from || ' ' || l.period_to FROM invoice_lines l JOIN invoices i "
                              "ON i.id = l.invoice_id WHERE i.subscription_id = %lld AND l.kind = 'proration'", (long long)s),
                        "2026-06-01 2026-06-30");
}

/* A VIP customer (99.00 for FIB129) upgrades FIB129 -> FIB199 on 10
 * November. FIB129 served 1 to 9 November: 12900 - 9030 = 3870 billed for
 * it; the VIP price of those 9 days is 9900 x 9 / 30 = 2970, so the VIP
 * discount is 3870 - 2970 = 900; tax -900 x 6 / 106 = -50.94 -> -51.
 * (Prorated over the whole month the VIP price, 9900, is above the 3870
 * and no discount was given: the customer paid full price for 9 days.)
 * gross 12900 - 9030 + 13930 - 900 = 16900; tax 730 - 511 + 788 - 51 = 956. */
static void test_vip_upgrade_mid_month(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "vip", "2026-01-01"), 2, "2026-01-01", "2026-12-01", "2026-10-31");
    sql(f, "INSERT INTO subscription_changes (subscription_id, kind, effective_date, from_product_id, to_product_id, status, "
           "requested_at, requested_by, applied_at) VALUES (%lld, 'upgrade', '2026-11-10', 1, 2, 'applied', 't', 't', 't')",
        (long long)s);
    run(f, "2026-12-01");
    assert_string_equal(lines_of(f, s, "2026-11-01"),
                        "recurring 12900 730|proration -9030 -511|proration 13930 788|discount -900 -51");
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "16900 15944 956 open 2026-12-01 2026-12-16 2026-11-30");
    assert_string_equal(q1(f, "SELECT product_code FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                              "WHERE i.subscription_id = %lld AND l.kind = 'discount'", (long long)s), "VIP");
}

/* The same VIP customer on FIB129, suspended 11 to 20 November (resumed on
 * the 21st): 10 of 30 days given back, 12900 x 10 / 30 = 4300 (tax
 * -4300 x 6 / 106 = -243.40 -> -243); 12900 - 4300 = 8600 billed for the 20
 * days left, whose VIP price is 9900 x 20 / 30 = 6600: discount 2000 (tax
 * -2000 x 6 / 106 = -113.21 -> -113). (The 20 days are two stretches; taken
 * from the first day left to the last they are the whole month, 9900, and
 * no discount was given.) gross 12900 - 4300 - 2000 = 6600; tax 730 - 243 -
 * 113 = 374. */
static void test_vip_suspended_mid_month(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "vip", "2026-01-01"), 1, "2026-01-01", "2026-12-01", "2026-10-31");
    sql(f, "INSERT INTO subscription_changes (subscription_id, kind, effective_date, status, requested_at, requested_by, "
           "applied_at) VALUES (%lld, 'suspend', '2026-11-11', 'applied', 't', 't', 't'), "
           "(%lld, 'resume', '2026-11-21', 'applied', 't', 't', 't')",
        (long long)s, (long long)s);
    run(f, "2026-12-01");
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 12900 730|proration -4300 -243|discount -2000 -113");
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "6600 6226 374 open 2026-12-01 2026-12-16 2026-11-30");
}

/* A catch-up over October and November whose November bill is refused:
 * October's invoice stands, and is counted as invoiced (it is in the
 * totals). */
static void test_catch_up_failure_counts_earlier_invoices(void **state);

/* More changes than a bill used to take (256): every one goes on the bill,
 * none is left unbilled. */
static void test_many_changes_all_billed(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-12-01", "2026-10-31");
    sql(f, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
           "INSERT INTO subscription_changes (subscription_id, kind, effective_date, status, requested_at, requested_by, "
           "applied_at) SELECT %lld, 'addon_add', '2026-11-05', 'applied', 't', 't', 't' FROM n",
        (long long)s);
    outcome o = run(f, "2026-12-01");
    assert_int_equal(o.invoiced, 1);
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 12900 730");
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM subscription_changes WHERE subscription_id = %lld AND invoice_id IS NOT NULL",
                         (long long)s), 300);
}

static void test_credit_larger_than_the_bill(void **state)
{
    fixture *f = *state;
    int64_t c = customer(f, "", "2026-01-01");
    int64_t s = monthly(f, c, 1, "2026-10-01", "2026-12-01", "2026-10-31");
    /* 500.00 paid ahead, no invoice: credit 500.00 */
    counter_payment(f->d, c, "R-1", 50000, "2026-11-20");
    run(f, "2026-12-01");
    /* the bill, 129.00, is paid in full from the credit: a credit line
     * -12900, untaxed and outside the totals */
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 12900 730|credit -12900 0");
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "12900 12170 730 paid 2026-12-01 2026-12-16 2026-11-30");
    ledger_balance lb;
    err e;
    err_clear(&e);
    assert_int_equal(ledger_balance_of(f->d, c, &lb, &e), 0);
    /* -50000 + 12900 = -37100: 371.00 of credit left */
    assert_int_equal(lb.balance, -37100);
    assert_int_equal(lb.credit, 37100);
}

static void test_tax_half_fen(void **state)
{
    fixture *f = *state;
    int64_t c = customer(f, "", "2026-01-01");
    int64_t s1 = monthly(f, c, 8, "2026-10-01", "2026-12-01", "2026-10-31");
    int64_t s2 = monthly(f, c, 9, "2026-10-01", "2026-12-01", "2026-10-31");
    run(f, "2026-12-01");
    /* 25.25 net at 6% is 151.5 fen of tax: half up, 152; gross 2677. The
     * tax step splits 2677: 2677 x 6 / 106 = 151.53 -> 152, net 2525 again */
    assert_string_equal(lines_of(f, s1, "2026-11-01"), "recurring 2677 152");
    assert_string_equal(invoice_of(f, s1, "2026-11-01"), "2677 2525 152 open 2026-12-01 2026-12-16 2026-11-30");
    /* 25.24 net: 151.44 -> 151; gross 2675; 2675 x 6 / 106 = 151.42 -> 151 */
    assert_string_equal(lines_of(f, s2, "2026-11-01"), "recurring 2675 151");
}

/* 151.5 above rounds to 152 half up and half even alike (152 is even): it
 * cannot tell them apart. 25.75 net at 6% is 154.5 fen of tax: half up
 * 155 (gross 2730), half even 154 (gross 2729). The tax step splits 2730:
 * 2730 x 6 / 106 = 154.53 -> 155, net 2575 again (2729 would give 154). */
static void test_tax_half_fen_half_up_not_half_even(void **state)
{
    fixture *f = *state;
    sql(f, "INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
           "(11, 'NET2575', 'plan', 'Net 25.75', 'active', 't', 't');"
           "INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, rule, "
           "params, attrs, regions, tags, created_at, created_by) VALUES (11, 1, '2020-01-01', 2575, 0, 'internet', "
           "'tariffs.monthly', '{}', '{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":0}', "
           "'[]', '[]', 't', 't')");
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 11, "2026-10-01", "2026-12-01", "2026-10-31");
    run(f, "2026-12-01");
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 2730 155");
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "2730 2575 155 open 2026-12-01 2026-12-16 2026-11-30");
}

static void test_dry_run_and_preview_write_nothing(void **state)
{
    fixture *f = *state;
    int64_t c = customer(f, "", "2026-01-01");
    int64_t s = monthly(f, c, 1, "2026-10-01", "2026-12-01", "2026-10-31");
    billrun_opts o = {.as_of = "2026-12-01", .dry_run = 1, .rs = f->rs, .trigger = "manual", .by = "test"};
    billrun_result r;
    err e;
    err_clear(&e);
    assert_int_equal(billrun_exec(f->d, &o, &r, &e), 0);
    assert_int_equal(r.run_id, 0);
    assert_int_equal(r.invoiced, 1);
    buf b = {0};
    json_write(&b, r.report);
    assert_non_null(strstr(buf_cstr(&b), "\"gross\":12900"));
    buf_free(&b);
    billrun_result_free(&r);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM invoices WHERE %s", "1"), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM bill_runs WHERE %s", "1"), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE %s", "1"), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM number_series WHERE %s", "1"), 0);
    assert_string_equal(sub_dates(f, s), "2026-12-01 2026-10-31");
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *pv;
    assert_int_equal(billrun_preview(f->d, f->rs, c, "2026-12-01", &a, &pv, &e), 0);
    const jv *bills = jv_get(pv, "bills");
    assert_int_equal(jv_len(bills), 1);
    assert_int_equal(jv_get(jv_at(bills, 0), "gross")->u.i, 12900);
    jv_arena_free(&a);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM invoices WHERE %s", "1"), 0);
}

/* ------------------------------------------------------- misbehaving rules */

/* A copy of the rules with one more step, "bad", whose body is `body`. */
static ruleset *rules_with_bad_step(fixture *f, const char *body, int *line)
{
    err e;
    err_clear(&e);
    const rule_file *src = f->snap->files;
    size_t n = f->snap->nfiles;
    rule_file *files = calloc(n, sizeof *files);
    assert_non_null(files);
    for (size_t i = 0; i < n; i++) {
        files[i].path = src[i].path;
        files[i].text = src[i].text;
        files[i].len = src[i].len;
        if (strcmp(src[i].path, "billing.lua")) continue;
        /* the step goes after tax so that only its own output is at fault */
        const char *ret = strstr(src[i].text, "\nreturn M");
        assert_non_null(ret);
        int nl = 1;
        for (const char *p = src[i].text; p <= ret; p++) nl += *p == '\n';
        *line = nl;
        char *t = malloc(src[i].len + 1024);
        assert_non_null(t);
        int w = snprintf(t, src[i].len + 1024, "%.*s\nfunction M.bad(ctx) %s end\nreturn M\n", (int)(ret - src[i].text),
                         src[i].text, body);
        char *st = strstr(t, "M.steps = {");
        assert_non_null(st);
        char *q = strstr(st, "\"tax\", ");
        assert_non_null(q);
        q += 7;
        memmove(q + 7, q, strlen(q) + 1);
        memcpy(q, "\"bad\", ", 7);
        files[i].text = t;
        files[i].len = (size_t)w + 7;
    }
    rules_snapshot *snap;
    ruleset *rs;
    assert_int_equal(rules_snapshot_from("bad", files, n, &snap, &e), 0);
    for (size_t i = 0; i < n; i++)
        if (files[i].text != src[i].text) free(files[i].text);
    free(files);
    assert_int_equal(ruleset_load(snap, NULL, 0, &rs, NULL, &e), 0);
    rules_snapshot_unref(snap);
    return rs;
}

static void bad_case_at(fixture *f, const char *body, const char *expect, const char *code, int located)
{
    int line = 0;
    ruleset *rs = rules_with_bad_step(f, body, &line);
    /* only this case's subscription is due */
    sql(f, "UPDATE subscriptions SET next_bill_date = '2099-01-01'");
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-10-01", "2026-12-01", "2026-10-31");
    outcome o = run_with(f, rs, "2026-12-01");
    ruleset_unref(rs);
    assert_int_equal(o.failed, 1);
    assert_int_equal(o.invoiced, 0);
    /* no invoice, nothing moved, a failure on record with the place */
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM invoices WHERE %s", "1"), 0);
    assert_string_equal(sub_dates(f, s), "2026-12-01 2026-10-31");
    const char *msg = q1(f, "SELECT message FROM bill_run_failures WHERE run_id = %lld AND subscription_id = %lld",
                         (long long)o.run_id, (long long)s);
    if (!strstr(msg, expect)) print_error("message: %s\nexpected: %s\n", msg, expect);
    assert_non_null(strstr(msg, expect));
    char where[64];
    if (located) {
        snprintf(where, sizeof where, "billing.lua:%d", line);
        assert_non_null(strstr(msg, where));
        snprintf(where, sizeof where, "%s billing.bad billing.lua %d", code, line);
        assert_string_equal(q1(f, "SELECT code || ' ' || rule || ' ' || file || ' ' || line FROM bill_run_failures "
                                  "WHERE run_id = %lld", (long long)o.run_id), where);
        assert_non_null(strstr(o.report, "\"rule\":\"billing.bad\""));
    }
    assert_non_null(strstr(o.report, "\"failed\":1"));
    /* the customer code leads the message */
    assert_non_null(strstr(msg, q1(f, "SELECT code FROM customers c JOIN subscriptions s ON s.customer_id = c.id "
                                      "WHERE s.id = %lld", (long long)s)));
}

static void bad_case(fixture *f, const char *body, const char *expect, const char *code)
{
    bad_case_at(f, body, expect, code, 1);
}

static void test_rule_returns_float(void **state)
{
    bad_case(*state, "return { lines = { { kind = 'fee', description = 'late fee', amount = 129.5, tax_category = 'internet' } } }",
             "steps.bad (billing.lua:", "bad_output");
    bad_case(*state, "return { lines = { { kind = 'fee', description = 'late fee', amount = 129.5, tax_category = 'internet' } } }",
             "lines[1].amount: expected an integer count of fen, got a float (129.5)", "bad_output");
}

static void test_rule_returns_string(void **state)
{
    bad_case(*state, "return { lines = { { kind = 'fee', description = 'late fee', amount = '129', tax_category = 'internet' } } }",
             "lines[1].amount: expected an integer count of fen, got a string (\"129\")", "bad_output");
}

static void test_rule_returns_negative(void **state)
{
    bad_case(*state, "return { lines = { { kind = 'fee', description = 'late fee', amount = -500, tax_category = 'internet' } } }",
             "lines[1].amount: -500 is negative, which only proration, discount, credit and adjustment lines may be",
             "bad_output");
}

static void test_rule_returns_nothing(void **state)
{
    bad_case(*state, "return nil", "steps.bad (billing.lua:", "bad_output");
    bad_case(*state, "return nil", "returned nothing", "bad_output");
}

static void test_rule_other_contract_breaches(void **state)
{
    fixture *f = *state;
    bad_case(f, "return { lines = { { kind = 'gift', description = 'x', amount = 1, tax_category = 'internet' } } }",
             "lines[1].kind: expected one of", "bad_output");
    bad_case(f, "return { lines = { { kind = 'fee', amount = 100, tax_category = 'internet' } } }",
             "lines[1].description: expected a non-empty string, got nothing", "bad_output");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100, tax_category = 'snacks' } } }",
             "lines[1].tax_category: \"snacks\" is not a category of tax.rates", "bad_output");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100, tax_category = 'internet', amout = 1 } } }",
             "lines[1]: unexpected field 'amout'", "bad_output");
    bad_case(f, "return { taxes = { { line = 1, rate = 6, tax = 731 } } }", "taxes[1].line: line 1 is taxed twice",
             "bad_output");
    /* checked once every step has run: named as the checks, not a step */
    bad_case_at(f, "return { lines = { { kind = 'credit', description = 'gift', amount = -100, tax_category = 'credit' } } }",
                "checks after the steps: credit lines take 100 fen, but the customer has 0 fen of credit available",
                "bad_output", 0);
    bad_case_at(f, "return { lines = { { kind = 'fee', description = 'late fee', amount = 500, tax_category = 'internet' } } }",
                "lines[2] (fee, from steps.bad) has no tax", "bad_output", 0);
    bad_case(f, "error('the late fee table is empty')", "the late fee table is empty", "rule_failed");
}

/* Not a number, an infinite number, and a whole number as a float: a rule
 * that computes 0/0, 1/0 or 100.0 has left integer fen behind. */
static void test_rule_returns_nan_infinity_whole_float(void **state)
{
    fixture *f = *state;
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 0/0, tax_category = 'internet' } } }",
             "NaN", "rule_failed");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 1/0, tax_category = 'internet' } } }",
             "infinite", "rule_failed");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = -math.huge, tax_category = 'internet' } } }",
             "infinite", "rule_failed");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100.0, tax_category = 'internet' } } }",
             "lines[1].amount: expected an integer count of fen, got a float (100.0)", "bad_output");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100, quantity = 2.0, unit_price = 50, "
                "tax_category = 'internet' } } }",
             "lines[1].quantity: expected an integer from 1, got a float (2.0)", "bad_output");
}

/* The line checks: the tax rate is the category's, quantity x unit price
 * is the amount, a discount takes money off, and nothing is dated before
 * the subscription began (2026-10-01 here). */
static void test_rule_line_checks(void **state)
{
    fixture *f = *state;
    /* the recurring line is line 1 (taxed by the tax step); this is line 2 */
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100, tax_category = 'internet' } }, "
                "taxes = { { line = 2, rate = 0, tax = 0 } } }",
             "taxes[1].rate: 0% for line 2 (internet), but tax.rates.internet is 6%", "bad_output");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100, tax_category = 'installation' } }, "
                "taxes = { { line = 2, rate = 6, tax = 6 } } }",
             "taxes[1].rate: 6% for line 2 (installation), but tax.rates.installation is 9%", "bad_output");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100, quantity = 2, unit_price = 40, "
                "tax_category = 'internet' } } }",
             "lines[1].amount: 100 is not quantity 2 x unit_price 40", "bad_output");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100, unit_price = 99, "
                "tax_category = 'internet' } } }",
             "lines[1].amount: 100 is not quantity 1 x unit_price 99", "bad_output");
    bad_case(f, "return { lines = { { kind = 'discount', description = 'x', amount = 100, tax_category = 'internet' } } }",
             "lines[1].amount: a discount line takes money off the bill: zero or below, got 100", "bad_output");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100, tax_category = 'internet', "
                "period = { from = '1999-01-01', to = '1999-01-31' } } } }",
             "lines[1].period: starts 1999-01-01, before the subscription's start date 2026-10-01", "bad_output");
    bad_case(f, "return { lines = { { kind = 'fee', description = 'x', amount = 100, tax_category = 'internet', "
                "period = { from = '2026-09-30', to = '2026-10-31' } } } }",
             "lines[1].period: starts 2026-09-30, before the subscription's start date 2026-10-01", "bad_output");
}

static void test_catch_up_failure_counts_earlier_invoices(void **state)
{
    fixture *f = *state;
    int line;
    ruleset *rs = rules_with_bad_step(f, "if ctx.period.from == '2026-11-01' then return { lines = { { amount = 1.5 } } } end "
                                         "return {}", &line);
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-09-01", "2026-11-01", "2026-09-30");
    outcome o = run_with(f, rs, "2026-12-01");
    ruleset_unref(rs);
    assert_string_equal(lines_of(f, s, "2026-10-01"), "recurring 12900 730");
    assert_string_equal(lines_of(f, s, "2026-11-01"), "");
    assert_int_equal(o.failed, 1);
    assert_int_equal(o.invoiced, 1);
    assert_non_null(strstr(o.report, "\"invoiced\":1"));
    assert_non_null(strstr(o.report, "\"gross\":12900"));
    assert_string_equal(q1(f, "SELECT status || ' ' || invoiced || ' ' || failed FROM bill_runs WHERE id = %lld",
                           (long long)o.run_id), "done 1 1");
}

static void test_failure_is_isolated(void **state)
{
    fixture *f = *state;
    int line;
    /* the bad step fails only for one customer; the other is billed */
    ruleset *rs = rules_with_bad_step(f, "if ctx.customer.tags[1] == 'broken' then return { lines = { { amount = 1.5 } } } end "
                                         "return {}", &line);
    int64_t bad = monthly(f, customer(f, "broken", "2026-01-01"), 1, "2026-10-01", "2026-12-01", "2026-10-31");
    int64_t good = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-10-01", "2026-12-01", "2026-10-31");
    outcome o = run_with(f, rs, "2026-12-01");
    ruleset_unref(rs);
    assert_int_equal(o.failed, 1);
    assert_int_equal(o.invoiced, 1);
    assert_string_equal(lines_of(f, good, "2026-11-01"), "recurring 12900 730");
    assert_string_equal(lines_of(f, bad, "2026-11-01"), "");
    assert_string_equal(q1(f, "SELECT status || ' ' || invoiced || ' ' || failed FROM bill_runs WHERE id = %lld",
                           (long long)o.run_id), "done 1 1");
    /* fixed, the next run bills it */
    o = run(f, "2026-12-01");
    assert_int_equal(o.invoiced, 1);
    assert_string_equal(lines_of(f, bad, "2026-11-01"), "recurring 12900 730");
}

/* ------------------------------------------- the context a bill is read from */

/* A change as subs.c records it (from / to 0: none); its id. */
static int64_t change(fixture *f, int64_t sub, const char *kind, const char *eff, int from, int to, const char *status)
{
    char fp[24] = "NULL", tp[24] = "NULL";
    if (from) snprintf(fp, sizeof fp, "%d", from);
    if (to) snprintf(tp, sizeof tp, "%d", to);
    sql(f, "INSERT INTO subscription_changes (subscription_id, kind, effective_date, from_product_id, to_product_id, status, "
           "requested_at, requested_by, applied_at) VALUES (%lld, '%s', '%s', %s, %s, '%s', 't', 't', %s)",
        (long long)sub, kind, eff, fp, tp, status, strcmp(status, "applied") ? "NULL" : "'t'");
    return db_last_id(f->d);
}

/* The bill that took each change of a subscription, in id order: the first
 * day of its period, "-" for none. */
static const char *changes_billed(fixture *f, int64_t sub)
{
    return q1(f, "SELECT group_concat(p, ' ') FROM (SELECT COALESCE(i.period_from, '-') p FROM subscription_changes c "
                 "LEFT JOIN invoices i ON i.id = c.invoice_id WHERE c.subscription_id = %lld ORDER BY c.id)",
              (long long)sub);
}

/* FIB259: 259.00 a month, postpaid (product 12). */
static void add_fib259(fixture *f)
{
    sql(f, "INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
           "(12, 'FIB259', 'plan', 'Fiber 259', 'active', 't', 't');"
           "INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, rule, "
           "params, attrs, regions, tags, created_at, created_by) VALUES (12, 1, '2020-01-01', 25900, 1, 'internet', "
           "'tariffs.monthly', '{\"proration\":\"daily\",\"rounding\":\"half_up\"}', "
           "'{\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":0}', '[]', '[]', 't', 't')");
}

/* A run whose steps are each given the context and fail, after tax, with
 * what they see of it as one line of text: the plan's code, the
 * subscription's suspended_since, previous, the customer's region and the
 * changes (id kind day), "-" for what is absent. Nothing is written; the
 * run's id, for seen(). */
static int64_t probe_run(fixture *f, const char *as_of)
{
    int line;
    ruleset *rs = rules_with_bad_step(
        f,
        "local r, pv, ids = ctx.customer.region, ctx.previous, {} "
        "for i = 1, #ctx.changes do local c = ctx.changes[i] ids[i] = c.id .. ' ' .. c.kind .. ' ' .. c.effective_date end "
        "error('PROBE ' .. ctx.plan.code .. '|' .. (ctx.subscription.suspended_since or '-') .. '|' .. "
        "(pv and pv.from .. '..' .. pv.to or '-') .. '|' .. (r.province or '-') .. '/' .. (r.city or '-') .. '/' .. "
        "(r.district or '-') .. '|' .. table.concat(ids, ','), 0)",
        &line);
    outcome o = run_with(f, rs, as_of);
    ruleset_unref(rs);
    assert_int_equal(o.invoiced, 0);
    assert_true(o.failed > 0);
    return o.run_id;
}

/* What a subscription's steps saw in that run. */
static const char *seen(fixture *f, int64_t run_id, int64_t sub)
{
    const char *msg = q1(f, "SELECT message FROM bill_run_failures WHERE run_id = %lld AND subscription_id = %lld",
                         (long long)run_id, (long long)sub);
    const char *p = strstr(msg, "PROBE ");
    if (!p) print_error("message: %s\n", msg);
    assert_non_null(p);
    return p + 6;
}

/* Suspended and resumed on one day: the one made last is in force.
 *   s1: suspended and resumed on 20 October (in that order): no day is
 *       suspended, and on 1 November the service runs: October and
 *       November in full, 12900 (tax 730) each.
 *   s2: suspended 5 October, resumed and suspended again on the 20th (in
 *       that order). October, 31 days: 5 to 19 given back, 15 days:
 *       -12900 x 15 / 31 = -6241.94 -> -6242; tax -6242 x 6 / 106 = -353.32
 *       -> -353; 20 to 31, 12 days: -12900 x 12 / 31 = -4993.55 -> -4994;
 *       tax -4994 x 6 / 106 = -282.68 -> -283. gross 12900 - 6242 - 4994 =
 *       1664; tax 730 - 353 - 283 = 94. November: suspended since 20
 *       October, all of it given back: -12900, tax -730, gross 0 (paid
 *       as issued). */
static void test_suspend_resume_same_day(void **state)
{
    fixture *f = *state;
    int64_t s1 = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-11-01", "2026-09-30");
    int64_t s2 = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-11-01", "2026-09-30");
    change(f, s1, "suspend", "2026-10-20", 0, 0, "applied");
    change(f, s1, "resume", "2026-10-20", 0, 0, "applied");
    change(f, s2, "suspend", "2026-10-05", 0, 0, "applied");
    change(f, s2, "resume", "2026-10-20", 0, 0, "applied");
    change(f, s2, "suspend", "2026-10-20", 0, 0, "applied");
    assert_int_equal(run(f, "2026-11-01").invoiced, 2);
    assert_string_equal(lines_of(f, s1, "2026-10-01"), "recurring 12900 730");
    assert_string_equal(lines_of(f, s2, "2026-10-01"), "recurring 12900 730|proration -6242 -353|proration -4994 -283");
    assert_string_equal(invoice_of(f, s2, "2026-10-01"), "1664 1570 94 open 2026-11-01 2026-11-16 2026-10-31");
    assert_string_equal(changes_billed(f, s1), "2026-10-01 2026-10-01");
    assert_string_equal(changes_billed(f, s2), "2026-10-01 2026-10-01 2026-10-01");
    /* November: the changes are on October's bill; what is in force on 1
     * November comes from them all the same */
    assert_int_equal(run(f, "2026-12-01").invoiced, 2);
    assert_string_equal(lines_of(f, s1, "2026-11-01"), "recurring 12900 730");
    assert_string_equal(lines_of(f, s2, "2026-11-01"), "recurring 12900 730|proration -12900 -730");
    /* a bill of nothing owes nothing: paid as issued */
    assert_string_equal(invoice_of(f, s2, "2026-11-01"), "0 0 0 paid 2026-12-01 2026-12-16 2026-11-30");
}

/* Two plan changes on 10 November, FIB129 -> FIB199 then FIB199 -> FIB259
 * (the plan is FIB259 now). The plan on 1 November is the one the first
 * made moved from, FIB129: 12900, tax 730. 10 to 30 November is 21 of 30
 * days, and the lines follow the order the changes were made:
 *   FIB129 back: -12900 x 21 / 30 = -9030; tax -9030 x 6 / 106 = -511.13 -> -511
 *   FIB199:       19900 x 21 / 30 = 13930; tax 13930 x 6 / 106 = 788.49 -> 788
 *   FIB199 back: -13930, tax -788
 *   FIB259:       25900 x 21 / 30 = 18130; tax 18130 x 6 / 106 = 1026.23 -> 1026
 * gross 12900 - 9030 + 13930 - 13930 + 18130 = 22000 (9 days of FIB129,
 * 3870, and 21 of FIB259); tax 730 - 511 + 788 - 788 + 1026 = 1245.
 * December: FIB259, 25900; tax 25900 x 6 / 106 = 1466.04 -> 1466. */
static void test_two_plan_changes_same_day(void **state)
{
    fixture *f = *state;
    add_fib259(f);
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 12, "2026-01-01", "2026-12-01", "2026-10-31");
    change(f, s, "upgrade", "2026-11-10", 1, 2, "applied");
    change(f, s, "upgrade", "2026-11-10", 2, 12, "applied");
    run(f, "2026-12-01");
    assert_string_equal(lines_of(f, s, "2026-11-01"),
                        "recurring 12900 730|proration -9030 -511|proration 13930 788|proration -13930 -788|proration 18130 1026");
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "22000 20755 1245 open 2026-12-01 2026-12-16 2026-11-30");
    assert_string_equal(q1(f, "SELECT group_concat(product_code, ' ') FROM (SELECT l.product_code FROM invoice_lines l "
                              "JOIN invoices i ON i.id = l.invoice_id WHERE i.subscription_id = %lld ORDER BY l.seq)",
                           (long long)s),
                        "FIB129 FIB129 FIB199 FIB199 FIB259");
    assert_string_equal(changes_billed(f, s), "2026-11-01 2026-11-01");
    run(f, "2027-01-01");
    assert_string_equal(lines_of(f, s, "2026-12-01"), "recurring 25900 1466");
}

/* Changes on the first and the last day of a period (October has 31 days,
 * November 30). October is billed first, then November, then December.
 *   s1: FIB129 -> FIB199 on 1 November. October at FIB129 (the change is
 *       after it: not on its bill). November opens on FIB199: 19900, tax
 *       19900 x 6 / 106 = 1126.42 -> 1126, nothing prorated, and the change
 *       is on November's bill.
 *   s2: FIB129 -> FIB199 on 30 November. November at FIB129 and one day
 *       changed: -12900 / 30 = -430, tax -430 x 6 / 106 = -24.34 -> -24;
 *       19900 / 30 = 663.33 -> 663, tax 663 x 6 / 106 = 37.53 -> 38. gross
 *       12900 - 430 + 663 = 13133; tax 730 - 24 + 38 = 744. December:
 *       FIB199.
 *   s3: suspended 1 November, resumed 30 November: 1 to 29 given back,
 *       -12900 x 29 / 30 = -12470, tax -12470 x 6 / 106 = -705.85 -> -706;
 *       gross 430, tax 24. December in full: running on 1 December.
 *   s4: suspended 31 October, resumed 1 December. October: one day back,
 *       -12900 / 31 = -416.13 -> -416, tax -416 x 6 / 106 = -23.55 -> -24.
 *       November: suspended all through, -12900, tax -730. December in
 *       full. */
static void test_changes_on_first_and_last_day(void **state)
{
    fixture *f = *state;
    int64_t s1 = monthly(f, customer(f, "", "2026-01-01"), 2, "2026-01-01", "2026-11-01", "2026-09-30");
    int64_t s2 = monthly(f, customer(f, "", "2026-01-01"), 2, "2026-01-01", "2026-11-01", "2026-09-30");
    int64_t s3 = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-11-01", "2026-09-30");
    int64_t s4 = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-11-01", "2026-09-30");
    change(f, s1, "upgrade", "2026-11-01", 1, 2, "applied");
    change(f, s2, "upgrade", "2026-11-30", 1, 2, "applied");
    change(f, s3, "suspend", "2026-11-01", 0, 0, "applied");
    change(f, s3, "resume", "2026-11-30", 0, 0, "applied");
    change(f, s4, "suspend", "2026-10-31", 0, 0, "applied");
    change(f, s4, "resume", "2026-12-01", 0, 0, "applied");
    assert_int_equal(run(f, "2026-11-01").invoiced, 4);
    assert_string_equal(lines_of(f, s1, "2026-10-01"), "recurring 12900 730");
    assert_string_equal(lines_of(f, s2, "2026-10-01"), "recurring 12900 730");
    assert_string_equal(lines_of(f, s3, "2026-10-01"), "recurring 12900 730");
    assert_string_equal(lines_of(f, s4, "2026-10-01"), "recurring 12900 730|proration -416 -24");
    assert_int_equal(run(f, "2026-12-01").invoiced, 4);
    assert_string_equal(lines_of(f, s1, "2026-11-01"), "recurring 19900 1126");
    assert_string_equal(lines_of(f, s2, "2026-11-01"), "recurring 12900 730|proration -430 -24|proration 663 38");
    assert_string_equal(invoice_of(f, s2, "2026-11-01"), "13133 12389 744 open 2026-12-01 2026-12-16 2026-11-30");
    assert_string_equal(lines_of(f, s3, "2026-11-01"), "recurring 12900 730|proration -12470 -706");
    assert_string_equal(lines_of(f, s4, "2026-11-01"), "recurring 12900 730|proration -12900 -730");
    assert_string_equal(changes_billed(f, s1), "2026-11-01");
    assert_string_equal(changes_billed(f, s2), "2026-11-01");
    assert_string_equal(changes_billed(f, s3), "2026-11-01 2026-11-01");
    assert_string_equal(changes_billed(f, s4), "2026-10-01 -");
    assert_int_equal(run(f, "2027-01-01").invoiced, 4);
    assert_string_equal(lines_of(f, s1, "2026-12-01"), "recurring 19900 1126");
    assert_string_equal(lines_of(f, s2, "2026-12-01"), "recurring 19900 1126");
    assert_string_equal(lines_of(f, s3, "2026-12-01"), "recurring 12900 730");
    assert_string_equal(lines_of(f, s4, "2026-12-01"), "recurring 12900 730");
    assert_string_equal(changes_billed(f, s4), "2026-10-01 2026-12-01");
}

/* Changes recorded out of the order of their days (entered late,
 * back-dated): the day counts, not the id.
 *   s1 (FIB259 now): first recorded FIB199 -> FIB259 on 20 November, then
 *       FIB129 -> FIB199 on 10 November. The plan on 1 November is FIB129;
 *       the lines go by day:
 *         10 to 30 November, 21 of 30 days: FIB129 back -9030 (tax -511),
 *           FIB199 13930 (tax 788)
 *         20 to 30 November, 11 of 30 days: FIB199 back
 *           -19900 x 11 / 30 = -7296.67 -> -7297, tax -7297 x 6 / 106 =
 *           -413.04 -> -413; FIB259 25900 x 11 / 30 = 9496.67 -> 9497, tax
 *           9497 x 6 / 106 = 537.57 -> 538
 *       gross 12900 - 9030 + 13930 - 7297 + 9497 = 20000; tax 730 - 511 +
 *       788 - 413 + 538 = 1132.
 *   s2 (FIB129): first recorded a resume on 25 October, then the suspension
 *       on 10 October it ended. October: 10 to 24 given back, 15 of 31
 *       days: -6242, tax -353; gross 6658, tax 377. November: resumed
 *       since 25 October, in full. */
static void test_changes_out_of_id_order(void **state)
{
    fixture *f = *state;
    add_fib259(f);
    int64_t s1 = monthly(f, customer(f, "", "2026-01-01"), 12, "2026-01-01", "2026-11-01", "2026-09-30");
    int64_t s2 = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-11-01", "2026-09-30");
    change(f, s1, "upgrade", "2026-11-20", 2, 12, "applied");
    change(f, s1, "upgrade", "2026-11-10", 1, 2, "applied");
    change(f, s2, "resume", "2026-10-25", 0, 0, "applied");
    change(f, s2, "suspend", "2026-10-10", 0, 0, "applied");
    assert_int_equal(run(f, "2026-11-01").invoiced, 2);
    assert_string_equal(lines_of(f, s1, "2026-10-01"), "recurring 12900 730");
    assert_string_equal(lines_of(f, s2, "2026-10-01"), "recurring 12900 730|proration -6242 -353");
    assert_string_equal(invoice_of(f, s2, "2026-10-01"), "6658 6281 377 open 2026-11-01 2026-11-16 2026-10-31");
    assert_int_equal(run(f, "2026-12-01").invoiced, 2);
    assert_string_equal(lines_of(f, s1, "2026-11-01"),
                        "recurring 12900 730|proration -9030 -511|proration 13930 788|proration -7297 -413|proration 9497 538");
    assert_string_equal(invoice_of(f, s1, "2026-11-01"), "20000 18868 1132 open 2026-12-01 2026-12-16 2026-11-30");
    assert_string_equal(q1(f, "SELECT group_concat(d, ' ') FROM (SELECT l.product_code || ':' || l.period_from d "
                              "FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.subscription_id = %lld "
                              "AND l.kind = 'proration' ORDER BY l.seq)", (long long)s1),
                        "FIB129:2026-11-10 FIB199:2026-11-10 FIB199:2026-11-20 FIB259:2026-11-20");
    assert_string_equal(lines_of(f, s2, "2026-11-01"), "recurring 12900 730");
}

/* Changes scheduled (not applied yet) or cancelled are not on a bill and
 * change nothing on it, nor does the change that created the subscription.
 * Applied: FIB129 -> FIB199 on 20 November (the plan is FIB199 now). Not:
 * a suspension in October and a downgrade FIB199 -> FIB129 on 5 November,
 * both cancelled, and a suspension on 25 November, scheduled. November
 * opens on FIB129: 12900, tax 730; 20 to 30 November, 11 of 30 days:
 *   FIB129 back: -12900 x 11 / 30 = -4730; tax -4730 x 6 / 106 = -267.74 -> -268
 *   FIB199:       19900 x 11 / 30 = 7296.67 -> 7297; tax 7297 x 6 / 106 = 413.04 -> 413
 * gross 12900 - 4730 + 7297 = 15467; tax 730 - 268 + 413 = 875. */
static void test_scheduled_and_cancelled_changes_not_billed(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 2, "2026-01-01", "2026-12-01", "2026-10-31");
    change(f, s, "create", "2026-01-01", 0, 1, "applied");
    change(f, s, "suspend", "2026-10-20", 0, 0, "cancelled");
    change(f, s, "downgrade", "2026-11-05", 2, 1, "cancelled");
    int64_t up = change(f, s, "upgrade", "2026-11-20", 1, 2, "applied");
    change(f, s, "suspend", "2026-11-25", 0, 0, "scheduled");
    char want[128];
    snprintf(want, sizeof want, "FIB129|-|-|浙江省/杭州市/西湖区|%lld upgrade 2026-11-20", (long long)up);
    assert_string_equal(seen(f, probe_run(f, "2026-12-01"), s), want);
    assert_int_equal(run(f, "2026-12-01").invoiced, 1);
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 12900 730|proration -4730 -268|proration 7297 413");
    assert_string_equal(invoice_of(f, s, "2026-11-01"), "15467 14592 875 open 2026-12-01 2026-12-16 2026-11-30");
    assert_string_equal(changes_billed(f, s), "- - - 2026-11-01 -");
}

/* HZLOYAL: 10.00 off the plan for everyone whose service address is in
 * Hangzhou (product 13, a loyalty promotion sold to one region). */
static void add_hangzhou_loyalty(fixture *f)
{
    sql(f, "INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
           "(13, 'HZLOYAL', 'promotion', 'HZLOYAL', 'active', 't', 't');"
           "INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, rule, "
           "params, attrs, regions, tags, created_at, created_by) VALUES (13, 1, '2020-01-01', 0, 1, 'internet', "
           "'promotions.fixed_off', '{\"amount\":1000}', '{\"promo_type\":\"loyalty\",\"applies_to\":\"plan\",\"products\":[],"
           "\"requires\":[],\"min_tenure_months\":0,\"stackable\":false}', '[\"浙江省/杭州市\"]', '[]', 't', 't')");
}

/* Without a service address a customer is in no region: a promotion sold
 * to a region is not theirs, the others are, and the bill is made.
 *   c1, service address in Hangzhou: HZLOYAL, -1000; tax -1000 x 6 / 106 =
 *       -56.60 -> -57; gross 11900, tax 673.
 *   c2, VIP, no address at all: no HZLOYAL; VIP 99.00, -3000, tax -170.
 *   c3, only a billing address, in Hangzhou: no HZLOYAL. */
static void test_no_service_address(void **state)
{
    fixture *f = *state;
    add_hangzhou_loyalty(f);
    int64_t c1 = customer(f, "", "2026-01-01"), c2 = customer(f, "vip", "2026-01-01"), c3 = customer(f, "", "2026-01-01");
    sql(f, "DELETE FROM addresses WHERE customer_id = %lld; UPDATE addresses SET kind = 'billing' WHERE customer_id = %lld",
        (long long)c2, (long long)c3);
    int64_t s1 = monthly(f, c1, 1, "2026-01-01", "2026-12-01", "2026-10-31");
    int64_t s2 = monthly(f, c2, 1, "2026-01-01", "2026-12-01", "2026-10-31");
    int64_t s3 = monthly(f, c3, 1, "2026-01-01", "2026-12-01", "2026-10-31");
    int64_t pr = probe_run(f, "2026-12-01");
    assert_string_equal(seen(f, pr, s1), "FIB129|-|-|浙江省/杭州市/西湖区|");
    assert_string_equal(seen(f, pr, s2), "FIB129|-|-|-/-/-|");
    assert_string_equal(seen(f, pr, s3), "FIB129|-|-|-/-/-|");
    outcome o = run(f, "2026-12-01");
    assert_int_equal(o.invoiced, 3);
    assert_int_equal(o.failed, 0);
    assert_string_equal(lines_of(f, s1, "2026-11-01"), "recurring 12900 730|discount -1000 -57");
    assert_string_equal(invoice_of(f, s1, "2026-11-01"), "11900 11227 673 open 2026-12-01 2026-12-16 2026-11-30");
    assert_string_equal(lines_of(f, s2, "2026-11-01"), "recurring 12900 730|discount -3000 -170");
    assert_string_equal(lines_of(f, s3, "2026-11-01"), "recurring 12900 730");
}

/* One-time charges: the subscription's own and the customer's (no
 * subscription named) go on its bill; another subscription's, cancelled
 * ones and billed ones do not. Installation is taxed at 9%:
 *   5000 x 9 / 109 = 412.84 -> 413; 20000 x 9 / 109 = 1651.38 -> 1651;
 *   8000 x 9 / 109 = 660.55 -> 661; 1500 x 9 / 109 = 123.85 -> 124.
 * Customer c: s1 takes its visit, 5000, and the customer's router, 20000
 * (s1 is billed first); s2 its relocation, 8000; a cancelled visit of s1
 * and one billed already go nowhere. Customer c2, whose only open charge
 * names no subscription (and a cancelled one names s3): s3 takes it. */
static void test_charges_other_subscription_and_cancelled(void **state)
{
    fixture *f = *state;
    int64_t c = customer(f, "", "2026-01-01"), c2 = customer(f, "", "2026-01-01");
    int64_t s1 = monthly(f, c, 1, "2026-01-01", "2026-12-01", "2026-10-31");
    int64_t s2 = monthly(f, c, 1, "2026-01-01", "2026-12-01", "2026-10-31");
    int64_t s3 = monthly(f, c2, 1, "2026-01-01", "2026-12-01", "2026-10-31");
    sql(f, "INSERT INTO pending_charges (customer_id, subscription_id, description, quantity, unit_price, tax_category, "
           "created_at, created_by, billed_on, cancelled_at) VALUES "
           "(%lld, %lld, 'repair visit', 1, 5000, 'installation', 't', 't', NULL, NULL), "
           "(%lld, NULL, 'router', 1, 20000, 'installation', 't', 't', NULL, NULL), "
           "(%lld, %lld, 'relocation', 1, 8000, 'installation', 't', 't', NULL, NULL), "
           "(%lld, %lld, 'visit called off', 1, 3000, 'installation', 't', 't', NULL, 't'), "
           "(%lld, %lld, 'billed before', 1, 4000, 'installation', 't', 't', '2026-10-01', NULL), "
           "(%lld, NULL, 'wall plate', 1, 1500, 'installation', 't', 't', NULL, NULL), "
           "(%lld, %lld, 'visit called off', 1, 2500, 'installation', 't', 't', NULL, 't')",
        (long long)c, (long long)s1, (long long)c, (long long)c, (long long)s2, (long long)c, (long long)s1, (long long)c,
        (long long)s1, (long long)c2, (long long)c2, (long long)s3);
    outcome o = run(f, "2026-12-01");
    assert_int_equal(o.invoiced, 3);
    assert_int_equal(o.failed, 0);
    assert_string_equal(lines_of(f, s1, "2026-11-01"), "recurring 12900 730|one_time 5000 413|one_time 20000 1651");
    assert_string_equal(invoice_of(f, s1, "2026-11-01"), "37900 35106 2794 open 2026-12-01 2026-12-16 2026-11-30");
    assert_string_equal(lines_of(f, s2, "2026-11-01"), "recurring 12900 730|one_time 8000 661");
    assert_string_equal(lines_of(f, s3, "2026-11-01"), "recurring 12900 730|one_time 1500 124");
    /* the cancelled ones and the one billed before are as they were */
    assert_string_equal(q1(f, "SELECT group_concat(d, ' ') FROM (SELECT description || ':' || COALESCE(billed_on, '-') || ':' "
                              "|| COALESCE(invoice_id, '-') d FROM pending_charges WHERE cancelled_at IS NOT NULL "
                              "OR invoice_id IS NULL ORDER BY id)"),
                        "visit called off:-:- billed before:2026-10-01:- visit called off:-:-");
}

/* IPTV items (15.00 a month each) crossing the ends of the periods
 * (October 31 days, November 30, December 31):
 *   i1, 20 October to 10 December: October 20 to 31, 12 days:
 *       1500 x 12 / 31 = 580.65 -> 581, tax 581 x 6 / 106 = 32.89 -> 33;
 *       November in full, 1500, tax 1500 x 6 / 106 = 84.91 -> 85;
 *       December 1 to 10: 1500 x 10 / 31 = 483.87 -> 484, tax 484 x 6 /
 *       106 = 27.40 -> 27.
 *   i2, two of them, 1 September to 31 October: October in full, 2 x 1500 =
 *       3000, tax 3000 x 6 / 106 = 169.81 -> 170; then nothing.
 *   i3, from 30 November: November one day, 1500 / 30 = 50, tax 50 x 6 /
 *       106 = 2.83 -> 3; December in full. */
static void test_addon_crossing_period_boundary(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-11-01", "2026-09-30");
    sql(f, "INSERT INTO subscription_items (subscription_id, product_id, quantity, start_date, end_date) VALUES "
           "(%lld, 3, 1, '2026-10-20', '2026-12-10'), (%lld, 3, 2, '2026-09-01', '2026-10-31'), (%lld, 3, 1, '2026-11-30', NULL)",
        (long long)s, (long long)s, (long long)s);
    run(f, "2026-11-01");
    assert_string_equal(lines_of(f, s, "2026-10-01"), "recurring 12900 730|addon 581 33|addon 3000 170");
    run(f, "2026-12-01");
    assert_string_equal(lines_of(f, s, "2026-11-01"), "recurring 12900 730|addon 1500 85|addon 50 3");
    run(f, "2027-01-01");
    assert_string_equal(lines_of(f, s, "2026-12-01"), "recurring 12900 730|addon 484 27|addon 1500 85");
    assert_string_equal(q1(f, "SELECT group_concat(d, ' ') FROM (SELECT l.period_from || '..' || l.period_to d "
                              "FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.subscription_id = %lld "
                              "AND l.kind = 'addon' ORDER BY i.period_from, l.seq)", (long long)s),
                        "2026-10-20..2026-10-31 2026-10-01..2026-10-31 2026-11-01..2026-11-30 2026-11-30..2026-11-30 "
                        "2026-12-01..2026-12-10 2026-12-01..2026-12-31");
}

/* ctx.previous is the latest bill not void. August, September and October
 * are billed at FIB129; October's bill is voided, and an upgrade to FIB199
 * on 20 September, not on a bill, is recorded. October billed again: the
 * previous bill is September's (not the void October, not August), so
 * 20 to 30 September, 11 of its 30 days, are given back and charged again:
 *   FIB129 back: -12900 x 11 / 30 = -4730; tax -4730 x 6 / 106 = -267.74 -> -268
 *   FIB199:       19900 x 11 / 30 = 7296.67 -> 7297; tax 7297 x 6 / 106 = 413.04 -> 413
 * and October at FIB199: 19900, tax 1126. gross 19900 - 4730 + 7297 =
 * 22467; tax 1126 - 268 + 413 = 1271. */
static void test_previous_is_latest_not_void(void **state)
{
    fixture *f = *state;
    int64_t s = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-08-01", "2026-09-01", "");
    run(f, "2026-09-01");
    run(f, "2026-10-01");
    run(f, "2026-11-01");
    assert_string_equal(lines_of(f, s, "2026-10-01"), "recurring 12900 730");
    err e;
    err_clear(&e);
    int64_t oct = q1i(f, "SELECT id FROM invoices WHERE subscription_id = %lld AND period_from = '2026-10-01'", (long long)s);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_void(f->d, oct, "wrong plan", "test", &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_string_equal(sub_dates(f, s), "2026-11-01 2026-09-30");
    sql(f, "UPDATE subscriptions SET product_id = 2 WHERE id = %lld", (long long)s);
    int64_t ch = change(f, s, "upgrade", "2026-09-20", 1, 2, "applied");
    char want[128];
    snprintf(want, sizeof want, "FIB199|-|2026-09-01..2026-09-30|浙江省/杭州市/西湖区|%lld upgrade 2026-09-20", (long long)ch);
    assert_string_equal(seen(f, probe_run(f, "2026-11-01"), s), want);
    assert_int_equal(run(f, "2026-11-01").invoiced, 1);
    assert_string_equal(lines_of(f, s, "2026-10-01"), "recurring 19900 1126|proration -4730 -268|proration 7297 413");
    assert_string_equal(invoice_of(f, s, "2026-10-01"), "22467 21196 1271 open 2026-11-01 2026-11-16 2026-10-31");
    assert_string_equal(changes_billed(f, s), "2026-10-01");
}

/* What the steps see of changes around the period's start: a suspension
 * that begins on its first day is one of its changes, not a suspension in
 * force when it began (suspended_since is for those); one that began
 * before and was billed is. Changes by day, then in the order made. */
static void test_context_suspension_at_period_start(void **state)
{
    fixture *f = *state;
    int64_t s1 = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-12-01", "2026-10-31");
    int64_t s2 = monthly(f, customer(f, "", "2026-01-01"), 1, "2026-01-01", "2026-11-01", "2026-09-30");
    int64_t a = change(f, s1, "resume", "2026-11-20", 0, 0, "applied");
    int64_t b = change(f, s1, "suspend", "2026-11-01", 0, 0, "applied");
    int64_t c = change(f, s1, "addon_add", "2026-11-20", 0, 3, "applied");
    change(f, s2, "suspend", "2026-10-31", 0, 0, "applied");
    change(f, s2, "resume", "2026-11-01", 0, 0, "cancelled");
    /* s2's October is billed first: its suspension is on that bill */
    assert_int_equal(run(f, "2026-11-01").invoiced, 1);
    assert_string_equal(lines_of(f, s2, "2026-10-01"), "recurring 12900 730|proration -416 -24");
    int64_t pr = probe_run(f, "2026-12-01");
    char want[160];
    snprintf(want, sizeof want, "FIB129|-|-|浙江省/杭州市/西湖区|%lld suspend 2026-11-01,%lld resume 2026-11-20,%lld addon_add 2026-11-20",
             (long long)b, (long long)a, (long long)c);
    assert_string_equal(seen(f, pr, s1), want);
    assert_string_equal(seen(f, pr, s2), "FIB129|2026-10-31|2026-10-01..2026-10-31|浙江省/杭州市/西湖区|");
    /* s1: 1 to 19 November given back, 19 of 30 days: -12900 x 19 / 30 =
     * -8170, tax -8170 x 6 / 106 = -462.45 -> -462 */
    assert_int_equal(run(f, "2026-12-01").invoiced, 2);
    assert_string_equal(lines_of(f, s1, "2026-11-01"), "recurring 12900 730|proration -8170 -462");
}

/* ------------------------------------------------------------ property */

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static int pick(int n) { return (int)(rnd() % (uint64_t)n); }

static void test_property_24_months(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    enum { CUSTOMERS = 30 };
    int64_t cust[CUSTOMERS], subs[CUSTOMERS];
    /* customers start on random days of 2025; plans 1, 2 postpaid, 4 prepaid */
    for (int i = 0; i < CUSTOMERS; i++) {
        char start[11];
        date_format(date_from_ymd(2025, 1, 1) + pick(60), start);
        static const char *const tags[] = {"", "vip", "new_user", "promo_fy", "vip,new_user"};
        cust[i] = customer(f, tags[pick(5)], start);
        int plan = (int[]){1, 2, 4}[pick(3)];
        subs_new sn = {.customer_id = cust[i], .plan = plan == 1 ? "FIB129" : plan == 2 ? "FIB199" : "YEAR1200",
                       .start_date = start, .today = start, .by = "test"};
        assert_int_equal(db_begin(f->d, &e), 0);
        if (subs_create(f->d, f->rs, &sn, &subs[i], NULL, &e)) print_error("subs_create: %s\n", e.msg);
        assert_int_equal(db_commit(f->d, &e), 0);
    }
    int32_t day0 = date_from_ymd(2025, 1, 1), end = date_from_ymd(2027, 1, 1);
    int receipts = 0;
    for (int32_t dd = day0; dd <= end; dd++) {
        char day[11];
        date_format(dd, day);
        int applied;
        assert_int_equal(subs_apply_due(f->d, day, NULL, &applied, &e), 0);
        /* the daily pass (renewals) and the monthly one are the same pass */
        outcome o = run(f, day);
        if (o.failed) print_error("%s: %s\n", day, o.report);
        assert_int_equal(o.failed, 0);
        /* random events of the day */
        for (int i = 0; i < CUSTOMERS; i++) {
            int r = pick(400);
            if (r < 3) {
                static const char *const kinds[] = {"upgrade", "downgrade", "suspend", "resume", "addon_add", "addon_remove"};
                const char *k = kinds[pick(6)];
                const char *prod = !strcmp(k, "upgrade") ? "FIB199" : !strcmp(k, "downgrade") ? "FIB129"
                                   : !strncmp(k, "addon", 5) ? "IPTV" : NULL;
                subs_change_req rq = {.kind = k, .product = prod, .today = day, .by = "test"};
                subs_change_out co;
                assert_int_equal(db_begin(f->d, &e), 0);
                if (subs_change(f->d, f->rs, subs[i], &rq, &co, NULL, &e)) db_rollback(f->d);
                else assert_int_equal(db_commit(f->d, &e), 0);
            } else if (r < 6) {
                /* a payment of a random amount, sometimes more than is owed */
                char txn[32];
                snprintf(txn, sizeof txn, "R-%d", ++receipts);
                payment_new p = {.customer_id = cust[i], .channel = "counter", .channel_txn_id = txn,
                                 .amount = 1000 + pick(30000), .entry_date = day, .by = "test"};
                int64_t pid;
                assert_int_equal(db_begin(f->d, &e), 0);
                if (payments_record(f->d, &p, &pid, NULL, &e)) print_error("payment: %s\n", e.msg);
                assert_int_equal(db_commit(f->d, &e), 0);
            } else if (r < 7) {
                /* a credit note for the whole of the customer's latest invoice */
                int64_t inv = strtoll(q1(f, "SELECT COALESCE(MAX(id), 0) FROM invoices WHERE customer_id = %lld "
                                            "AND status <> 'void' AND credited = 0 AND gross > 0", (long long)cust[i]), NULL, 10);
                if (inv) {
                    int64_t cn;
                    char number[INVOICE_NUMBER_MAX];
                    assert_int_equal(db_begin(f->d, &e), 0);
                    if (invoices_credit(f->d, inv, NULL, 0, "goodwill", day, "test", &cn, number, &e)) {
                        print_error("credit note: %s\n", e.msg);
                        db_rollback(f->d);
                    } else {
                        assert_int_equal(db_commit(f->d, &e), 0);
                    }
                }
            } else if (r < 8) {
                /* a one-time charge for the next bill */
                subs_charge_new ch = {.customer_id = cust[i], .subscription_id = subs[i], .description = "repair visit",
                                      .has_unit_price = 1, .unit_price = 5000, .tax_category = "installation",
                                      .quantity = 1, .today = day, .by = "test"};
                int64_t cid;
                assert_int_equal(db_begin(f->d, &e), 0);
                if (subs_charge_create(f->d, f->rs, &ch, &cid, &e)) db_rollback(f->d);
                else assert_int_equal(db_commit(f->d, &e), 0);
            }
        }
    }
    /* invoices - credit notes - payments = the ledger balance, for everyone */
    for (int i = 0; i < CUSTOMERS; i++) {
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)cust[i]);
        int64_t inv = q1i(f, "SELECT COALESCE(SUM(gross), 0) FROM invoices WHERE customer_id = %s AND status <> 'void'", id);
        int64_t cn = q1i(f, "SELECT COALESCE(SUM(gross), 0) FROM credit_notes WHERE customer_id = %s", id);
        int64_t pay = q1i(f, "SELECT COALESCE(SUM(amount), 0) FROM payments WHERE customer_id = %s", id);
        ledger_balance lb;
        assert_int_equal(ledger_balance_of(f->d, cust[i], &lb, &e), 0);
        if (inv - cn - pay != lb.balance)
            print_error("customer %s: invoices %lld - credit notes %lld - payments %lld != balance %lld\n", id,
                        (long long)inv, (long long)cn, (long long)pay, (long long)lb.balance);
        assert_int_equal(inv - cn - pay, lb.balance);
    }
    /* one invoice per subscription and period, and periods that follow each
     * other without a gap or an overlap */
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM (SELECT subscription_id, period_from FROM invoices WHERE status <> 'void' "
                            "GROUP BY 1, 2 HAVING COUNT(*) > 1) WHERE %s", "1"), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM invoices a JOIN invoices b ON a.subscription_id = b.subscription_id "
                            "AND a.id <> b.id AND a.period_from <= b.period_to AND b.period_from <= a.period_to WHERE %s", "1"), 0);
    for (int i = 0; i < CUSTOMERS; i++) {
        err qe;
        db_stmt *s = db_prepare_once(f->d, "SELECT period_from, period_to FROM invoices WHERE subscription_id = ? "
                                           "ORDER BY period_from", &qe);
        assert_non_null(s);
        db_bind_int(s, 1, subs[i]);
        char prev_to[11] = "";
        int n = 0;
        while (db_step(f->d, s, &qe) == DB_ROW) {
            if (prev_to[0]) {
                int32_t t, fr;
                date_parse(prev_to, 10, &t, &qe);
                date_parse(db_col_text(s, 0), 10, &fr, &qe);
                if (fr != t + 1) print_error("subscription %lld: %s follows %s\n", (long long)subs[i], db_col_text(s, 0), prev_to);
                assert_int_equal(fr, t + 1);
            }
            snprintf(prev_to, sizeof prev_to, "%s", db_col_text(s, 1));
            n++;
        }
        db_finalize(s);
        /* monthly plans have 24 bills, yearly ones at least 2 */
        assert_true(n >= 2);
    }
    /* numbers without a gap: INV-YYYY-000001 up to the count, per year */
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM (SELECT substr(number, 1, 8) y, COUNT(*) n, "
                            "MAX(CAST(substr(number, 10) AS INTEGER)) m FROM invoices GROUP BY 1) WHERE n <> m AND %s", "1"), 0);
}

static void problem(void *ud, int64_t customer_id, const char *what)
{
    (void)ud;
    print_error("ledger verify: customer %lld: %s\n", (long long)customer_id, what);
}

/* Runs after the property test on the same database: the ledger engine's
 * own proof must agree. */
static void test_property_ledger_verify(void **state)
{
    fixture *f = *state;
    test_property_24_months(state);
    err e;
    err_clear(&e);
    ledger_report rep;
    int rc = ledger_verify(f->d, 0, problem, NULL, &rep, &e);
    if (rc) print_error("ledger_verify: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.problems, 0);
    assert_true(rep.customers >= 30);
}


/* ------------------------------------------------- bills computed ahead */

/* Two subscriptions of one customer with 150.00 of credit: the first bill
 * takes 129.00 of it, the second the 21.00 left. The feeder thread computes
 * the second from the database as committed, before the first is written
 * (both are in one batch): issued as computed it would take 129.00 again.
 * It must be computed again after the first. */
static void test_ahead_customer_second_bill_sees_the_first(void **state)
{
    fixture *f = *state;
    int64_t c = customer(f, "", "2026-01-01");
    int64_t s1 = monthly(f, c, 1, "2026-10-01", "2026-12-01", "2026-10-31");
    int64_t s2 = monthly(f, c, 1, "2026-10-01", "2026-12-01", "2026-10-31");
    counter_payment(f->d, c, "R-2", 15000, "2026-11-20");
    err e;
    err_clear(&e);
    billrun_opts o = {.as_of = "2026-12-01", .rs = f->rs, .trigger = "manual", .by = "test"};
    billrun_result r;
    assert_int_equal(billrun_exec(f->d, &o, &r, &e), 0);
    assert_int_equal(r.invoiced, 2);
    /* computed ahead, then again once the first bill was written */
    assert_true(r.recomputed >= 1);
    billrun_result_free(&r);
    assert_string_equal(lines_of(f, s1, "2026-11-01"), "recurring 12900 730|credit -12900 0");
    assert_string_equal(lines_of(f, s2, "2026-11-01"), "recurring 12900 730|credit -2100 0");
    ledger_balance lb;
    assert_int_equal(ledger_balance_of(f->d, c, &lb, &e), 0);
    /* -15000 + 12900 + 12900 = 10800 owed */
    assert_int_equal(lb.balance, 10800);
}

typedef struct other_writer {
    const char *path;
    int64_t customer, sub;
    int calls;
} other_writer;

/* After the first batch, another connection records a payment for the
 * customer of the second bill of the next batch, which the feeder has
 * computed by then. */
static void pay_between_batches(void *ud, const billrun_progress *pg)
{
    other_writer *w = ud;
    if (w->calls++ || pg->done >= pg->due) return;
    db *d2;
    err e;
    err_clear(&e);
    assert_int_equal(db_open(w->path, 0, &d2, &e), 0);
    db_stmt *s = db_prepare(d2, "SELECT id, customer_id FROM subscriptions ORDER BY id LIMIT 1 OFFSET ?", &e);
    assert_non_null(s);
    db_bind_int(s, 1, pg->done + 1);
    assert_int_equal(db_step(d2, s, &e), DB_ROW);
    w->sub = db_col_int(s, 0);
    w->customer = db_col_int(s, 1);
    db_done(s);
    counter_payment(d2, w->customer, "R-3", 5000, "2026-11-30");
    db_close(d2);
}

/* A bill the feeder computed before another writer's commit is computed
 * again: the payment recorded between two batches is on the bill. */
static void test_ahead_another_writer_between_batches(void **state)
{
    fixture *f = *state;
    sql(f, "BEGIN");
    for (int i = 0; i < 40; i++) monthly(f, customer(f, "", "2026-01-01"), 1, "2026-10-01", "2026-12-01", "2026-10-31");
    sql(f, "COMMIT");
    other_writer w = {.path = f->path};
    billrun_opts o = {.as_of = "2026-12-01", .rs = f->rs, .trigger = "manual", .by = "test",
                      .progress = pay_between_batches, .ud = &w, .batch = 8};
    billrun_result r;
    err e;
    err_clear(&e);
    assert_int_equal(billrun_exec(f->d, &o, &r, &e), 0);
    assert_int_equal(r.invoiced, 40);
    assert_true(w.calls >= 2);
    assert_true(w.sub > 0);
    /* the bills computed before the payment were computed again */
    assert_true(r.recomputed >= 1);
    billrun_result_free(&r);
    assert_string_equal(lines_of(f, w.sub, "2026-11-01"), "recurring 12900 730|credit -5000 0");
}

int main(void)
{
    log_set_level(LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_month, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_17th_of_30_day_month, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_17th_of_31_day_month, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_29_february, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_on_the_10th, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downgrade_next_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_year_promotion_ends_mid_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vip_beats_new_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addon_removed_mid_month, setup, teardown),
        cmocka_unit_test_setup_teardown(test_annual_prepaid_renewal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepaid_upgrade_inside_billed_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepaid_suspension_inside_billed_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vip_upgrade_mid_month, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vip_suspended_mid_month, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_changes_all_billed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_larger_than_the_bill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tax_half_fen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tax_half_fen_half_up_not_half_even, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_and_preview_write_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_returns_float, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_returns_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_returns_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_returns_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_other_contract_breaches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_returns_nan_infinity_whole_float, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_line_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_failure_counts_earlier_invoices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspend_resume_same_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_plan_changes_same_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_on_first_and_last_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_out_of_id_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduled_and_cancelled_changes_not_billed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_service_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_charges_other_subscription_and_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addon_crossing_period_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previous_is_latest_not_void, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_suspension_at_period_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_property_24_months, setup, teardown),
        cmocka_unit_test_setup_teardown(test_property_ledger_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ahead_customer_second_bill_sees_the_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ahead_another_writer_between_batches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
