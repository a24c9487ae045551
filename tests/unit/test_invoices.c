/* test_invoices.c - invoices, numbering, payments, voids, credit notes and
 * write-offs against a migrated database, with figures computed by hand
 * in the comments: tax per line at its rate (half up, within a fen of the
 * exact value), credit notes whole and per line with the half-fen case,
 * a line credited in full giving back exactly its tax, the excess of a
 * credit note over what was left to pay going back to credit (newest
 * allocation first), and gapless numbers through rollbacks, refusals, a
 * change of year and two processes issuing at once. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "customers.h"
#include "db.h"
#include "invoices.h"
#include "json.h"
#include "ledger.h"
#include "migrate.h"
#include "payments.h"
#include "rules.h"
#include "vault.h"
#include "unit_fs.h"

typedef struct fixture {
    char dir[64], dbpath[128], keys[128];
    db *d;
    vault *v;
    jv_arena a;
    int64_t c1, c2;       /* customers */
    int64_t sub1;         /* C1's subscription */
} fixture;

static const char *SEED =
    "INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
    "(1, 'FIBER300', 'plan', 'Fiber 300M', 'active', 't', 't'), (2, 'ONUDEP', 'deposit', 'ONU deposit', 'active', 't', 't');"
    "INSERT INTO subscriptions (id, customer_id, product_id, status, billing, period, start_date, anchor_day, next_bill_date, "
    "created_at, created_by) VALUES (1, 1, 1, 'active', 'postpaid', 'month', '2026-10-01', 1, '2026-12-01', 't', 't');"
    "INSERT INTO subscription_changes (id, subscription_id, kind, effective_date, status, requested_at, requested_by) VALUES "
    "(1, 1, 'upgrade', '2026-11-10', 'applied', 't', 't');"
    "INSERT INTO pending_charges (id, customer_id, description, quantity, unit_price, tax_category, created_at, created_by) VALUES "
    "(1, 1, 'Installation', 1, 20000, 'installation', 't', 't'), (2, 2, 'Repair', 1, 5000, 'installation', 't', 't');"
    "INSERT INTO devices (id, kind, serial, status, created_at) VALUES (1, 'onu', 'ZTEG00000001', 'installed', 't');"
    "INSERT INTO deposits (id, customer_id, device_id, product, amount, status, taken_on) VALUES (1, 1, 1, 'ONUDEP', 30000, 'held', "
    "'2026-10-01');";

static int64_t create_customer(fixture *f, const char *json)
{
    jv *in = NULL;
    err e;
    int64_t id = 0;
    if (json_parse(json, strlen(json), NULL, &f->a, &in, &e)) fail_msg("bad JSON: %s", e.msg);
    assert_int_equal(db_begin(f->d, &e), 0);
    if (customers_create(f->d, f->v, "C", in, "test", &id, &e)) fail_msg("customers_create: %s", e.msg);
    assert_int_equal(db_commit(f->d, &e), 0);
    return id;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_invoices_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->keys, sizeof f->keys, "%s/bandbill.keys", f->dir);
    snprintf(f->dbpath, sizeof f->dbpath, "%s/bandbill.db", f->dir);
    jv_arena_init(&f->a, 0);
    err e;
    err_clear(&e);
    if (vault_create_file(f->keys, &e) || vault_open(f->keys, &f->v, &e) || db_open(f->dbpath, DB_OPEN_CREATE, &f->d, &e) ||
        migrate_apply(f->d, NULL, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    invoices_set_prefixes("INV", "CN");
    f->c1 = create_customer(f, "{\"type\":\"residential\",\"name\":\"张三\",\"phone\":\"13812348000\","
                               "\"address\":{\"province\":\"浙江省\",\"city\":\"杭州市\",\"district\":\"西湖区\",\"street\":\"文三路\","
                               "\"community\":\"翠苑一区\",\"building\":\"3\",\"unit\":\"2\",\"room\":\"1101\"},"
                               "\"billing_address\":{\"province\":\"浙江省\",\"city\":\"杭州市\",\"district\":\"上城区\",\"street\":\"解放路\"}}");
    f->c2 = create_customer(f, "{\"type\":\"residential\",\"name\":\"李四\",\"address\":{\"province\":\"浙江省\",\"city\":\"杭州市\","
                               "\"district\":\"西湖区\"}}");
    if (f->c1 != 1 || f->c2 != 2 || db_exec_script(f->d, SEED, &e)) {
        print_error("seed: %s\n", e.msg);
        return -1;
    }
    f->sub1 = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    db_close(f->d);
    vault_close(f->v);
    jv_arena_free(&f->a);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static const char *q1(fixture *f, const char *sql, int64_t id)
{
    static char out[8][512];
    static int slot;
    char *r = out[slot++ % 8];
    err e;
    db_stmt *s = db_prepare_once(f->d, sql, &e);
    if (!s) fail_msg("%s: %s", sql, e.msg);
    db_bind_int(s, 1, id);
    int rc = db_step(f->d, s, &e);
    assert_true(rc >= 0);
    snprintf(r, 512, "%s", rc == DB_ROW ? db_col_text(s, 0) : "<none>");
    db_finalize(s);
    return r;
}

static int64_t q1i(fixture *f, const char *sql, int64_t id) { return strtoll(q1(f, sql, id), NULL, 10); }

static invoice_line_in L(const char *kind, const char *desc, int64_t amount, const char *cat, int rate, int64_t tax)
{
    invoice_line_in l = {.kind = kind, .description = desc, .quantity = 1, .unit_price = amount, .amount = amount,
                         .tax_category = cat, .tax_rate = rate, .tax = tax, .step = "test", .rule = "test.rule"};
    return l;
}

typedef struct bill {
    int64_t customer, sub;
    const char *from, *to, *issue, *due, *billed_through;
    const int64_t *changes;
    size_t nchanges;
} bill;

static int issue_b(fixture *f, const bill *b, const invoice_line_in *lines, size_t n, int64_t *id, char number[INVOICE_NUMBER_MAX],
                   err *e)
{
    invoice_new in = {.customer_id = b->customer, .subscription_id = b->sub, .period_from = b->from, .period_to = b->to,
                      .issue_date = b->issue ? b->issue : "2026-12-01", .due_date = b->due ? b->due : "2026-12-16",
                      .rules_version = "rv-test", .lines = lines, .nlines = n, .change_ids = b->changes, .nchanges = b->nchanges,
                      .billed_through = b->billed_through, .by = "test"};
    err_clear(e);
    int rc = db_begin(f->d, e);
    if (!rc) rc = invoices_issue(f->d, f->v, &in, id, number, e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    return rc;
}

/* An invoice for customer c issued on `date` with one 6% internet line. */
static int64_t simple(fixture *f, int64_t c, const char *date, int64_t amount, int64_t tax, char number[INVOICE_NUMBER_MAX])
{
    invoice_line_in l = L("recurring", "Fiber 300M", amount, "internet", 6, tax);
    bill b = {.customer = c, .issue = date, .due = date};
    int64_t id = 0;
    char num[INVOICE_NUMBER_MAX];
    err e;
    if (issue_b(f, &b, &l, 1, &id, number ? number : num, &e)) fail_msg("issue: %s (%s)", e.msg, e.field);
    return id;
}


static int pay(fixture *f, int64_t c, int64_t amount, const char *txn, int64_t invoice, int64_t *id, err *e)
{
    /* the project's rules order what a payment settles beyond its own invoice */
    ruleset *rs = NULL;
    err re;
    if (rules_load_folder(BB_SOURCE_DIR "/rules", &rs, &re)) fail_msg("rules: %s", re.msg);
    payment_new p = {.customer_id = c, .channel = "counter", .channel_txn_id = txn, .amount = amount, .invoice_id = invoice,
                     .entry_date = "2026-12-05", .by = "test", .rules = rs};
    err_clear(e);
    int rc = db_begin(f->d, e);
    if (!rc) rc = payments_record(f->d, &p, id, NULL, e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    ruleset_unref(rs);
    return rc;
}

static int64_t pay_ok(fixture *f, int64_t c, int64_t amount, const char *txn, int64_t invoice)
{
    err e;
    int64_t id = 0;
    if (pay(f, c, amount, txn, invoice, &id, &e)) fail_msg("pay: %s", e.msg);
    return id;
}

static int credit(fixture *f, int64_t inv, const credit_line_in *l, size_t n, int64_t *id, char num[INVOICE_NUMBER_MAX], err *e)
{
    err_clear(e);
    int rc = db_begin(f->d, e);
    if (!rc) rc = invoices_credit(f->d, inv, l, n, "wrong speed", "2026-12-10", "test", id, num, e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    return rc;
}

static int void_inv(fixture *f, int64_t inv, err *e)
{
    err_clear(e);
    int rc = db_begin(f->d, e);
    if (!rc) rc = invoices_void(f->d, inv, "issued in error", "test", e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    return rc;
}

static ledger_balance bal(fixture *f, int64_t c)
{
    ledger_balance b;
    err e;
    if (ledger_balance_of(f->d, c, &b, &e)) fail_msg("balance: %s", e.msg);
    return b;
}

static int64_t line_id(fixture *f, int64_t inv, int64_t seq)
{
    int64_t id;
    err e;
    if (invoices_line_id(f->d, inv, seq, "line", &id, &e)) fail_msg("line: %s", e.msg);
    return id;
}

#define INV(col, id) q1(f, "SELECT " col " FROM invoices WHERE id = ?", id)
#define INVI(col, id) q1i(f, "SELECT " col " FROM invoices WHERE id = ?", id)

/* ------------------------------------------------------------- issuing */

/* 129.00 at 6% tax included: tax = 12900 * 6 / 106 = 730.19 -> 730, net
 * 12170. Installation 200.00 at 9%: 20000 * 9 / 109 = 1651.38 -> 1651. */
static void test_issue_writes_everything(void **state)
{
    fixture *f = *state;
    invoice_line_in lines[2] = {L("recurring", "Fiber 300M November", 12900, "internet", 6, 730),
                                L("one_time", "Installation", 20000, "installation", 9, 1651)};
    lines[1].pending_charge_id = 1;
    int64_t changes[1] = {1};
    bill b = {.customer = f->c1, .sub = f->sub1, .from = "2026-11-01", .to = "2026-11-30", .billed_through = "2026-11-30",
              .changes = changes, .nchanges = 1};
    int64_t id = 0;
    char num[INVOICE_NUMBER_MAX];
    err e;
    assert_int_equal(issue_b(f, &b, lines, 2, &id, num, &e), 0);
    assert_string_equal(num, "INV-2026-000001");
    assert_string_equal(INV("status", id), "open");
    assert_int_equal(INVI("gross", id), 32900);
    assert_int_equal(INVI("tax", id), 2381);
    assert_int_equal(INVI("net", id), 30519);
    assert_int_equal(q1i(f, "SELECT SUM(net) FROM invoice_lines WHERE invoice_id = ?", id), 30519);
    /* the snapshot of who is billed */
    assert_non_null(strstr(INV("bill_to", id), "\"customer_name\":\"张三\""));
    assert_non_null(strstr(INV("bill_to", id), "\"room\":\"1101\""));
    assert_non_null(strstr(INV("bill_to", id), "上城区"));
    /* the ledger, the charge, the change, the subscription */
    assert_int_equal(q1i(f, "SELECT SUM(amount) FROM ledger_entries WHERE invoice_id = ? AND kind = 'invoice'", id), 32900);
    assert_int_equal(q1i(f, "SELECT invoice_id FROM pending_charges WHERE id = ?", 1), id);
    assert_string_equal(q1(f, "SELECT billed_on FROM pending_charges WHERE id = ?", 1), "2026-12-01");
    assert_int_equal(q1i(f, "SELECT invoice_id FROM subscription_changes WHERE id = ?", 1), id);
    assert_string_equal(q1(f, "SELECT billed_through FROM subscriptions WHERE id = ?", 1), "2026-11-30");
    ledger_balance lb = bal(f, f->c1);
    assert_int_equal(lb.balance, 32900);
    assert_int_equal(lb.open, 32900);
    assert_int_equal(lb.credit, 0);
    /* the e-bill, to the customer's phone */
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM outbox WHERE event = 'invoice_issued' AND customer_id = ?", f->c1), 1);
    assert_string_equal(q1(f, "SELECT dedupe_key FROM outbox WHERE customer_id = ?", f->c1), "invoice_issued:INV-2026-000001:sms");
    assert_string_equal(q1(f, "SELECT channel FROM outbox WHERE customer_id = ?", f->c1), "sms");
    const char *payload = q1(f, "SELECT payload FROM outbox WHERE customer_id = ?", f->c1);
    assert_non_null(strstr(payload, "\"amount_due\":32900"));
    assert_non_null(strstr(payload, "\"pay_link\":\"/pay/INV-2026-000001\""));
    assert_non_null(strstr(payload, "\"due_date\":\"2026-12-16\""));
    assert_non_null(strstr(payload, "\"period\":\"2026-11-01..2026-11-30\""));
    assert_non_null(strstr(payload, "\"customer\":\"C000000013\""));
    /* written directly (not through a jv tree): byte for byte what
     * json_write made of the same object, keys in byte order */
    assert_string_equal(payload, "{\"amount_due\":32900,\"customer\":\"C000000013\",\"due_date\":\"2026-12-16\","
                                 "\"number\":\"INV-2026-000001\",\"pay_link\":\"/pay/INV-2026-000001\","
                                 "\"period\":\"2026-11-01..2026-11-30\"}");
    buf phone = {0};
    assert_int_equal(vault_decrypt(f->v, "outbox.recipient", q1(f, "SELECT recipient_enc FROM outbox WHERE customer_id = ?", f->c1),
                                   &phone, &e), 0);
    assert_string_equal(buf_cstr(&phone), "13812348000");
    buf_free(&phone);
    /* the API object: personal fields at the top, for the field filter */
    jv *o;
    assert_int_equal(invoices_get(f->d, id, &f->a, &o, &e), 0);
    assert_string_equal(jv_get(o, "customer_name")->u.str.s, "张三");
    assert_string_equal(jv_get(jv_get(o, "service_address"), "room")->u.str.s, "1101");
    assert_string_equal(jv_get(jv_get(o, "billing_address"), "district")->u.str.s, "上城区");
    assert_int_equal(jv_get(o, "balance_due")->u.i, 32900);
    assert_int_equal(jv_len(jv_get(o, "lines")), 2);
    assert_int_equal(jv_get(jv_at(jv_get(o, "lines"), 1), "tax")->u.i, 1651);
    assert_string_equal(jv_get(o, "rules_version")->u.str.s, "rv-test");
}

/* A billing run reads what issuing needs on its feeder thread, with a
 * connection of its own, and writes on another: prepared there in a read
 * transaction and issued here, the invoice is what invoices_issue writes
 * (the number taken here, the bill-to snapshot, the e-bill's payload byte
 * for byte and its recipient). A preparation serves the invoice it was
 * made for, once. */
static void test_issue_prepared_on_another_connection(void **state)
{
    fixture *f = *state;
    invoice_line_in lines[1] = {L("recurring", "Fiber 300M November", 12900, "internet", 6, 730)};
    invoice_new in = {.customer_id = f->c1, .subscription_id = f->sub1, .period_from = "2026-11-01", .period_to = "2026-11-30",
                      .issue_date = "2026-12-01", .due_date = "2026-12-16", .rules_version = "rv-test", .lines = lines,
                      .nlines = 1, .billed_through = "2026-11-30", .by = "test"};
    invoice_new other = in;
    db *d2;
    err e;
    err_clear(&e);
    assert_int_equal(db_open(f->dbpath, 0, &d2, &e), 0);
    invoice_prep p = {0};
    assert_int_equal(db_read_begin(d2, &e), 0);
    assert_int_equal(invoices_prepare(d2, f->v, &in, &p, &e), 0);
    db_read_end(d2);
    db_close(d2);
    int64_t id = 0, id2 = 0;
    char num[INVOICE_NUMBER_MAX];
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_issue_prepared(f->d, &other, &p, &id, num, &e), ERR_INTERNAL);
    assert_int_equal(invoices_issue_prepared(f->d, &in, &p, &id, num, &e), 0);
    assert_int_equal(invoices_issue_prepared(f->d, &in, &p, &id2, num, &e), ERR_INTERNAL);
    assert_int_equal(db_commit(f->d, &e), 0);
    invoices_prep_free(&p);
    assert_string_equal(num, "INV-2026-000001");
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM invoices WHERE id > ?", 0), 1);
    assert_string_equal(INV("status", id), "open");
    assert_int_equal(INVI("gross", id), 12900);
    assert_int_equal(INVI("net", id), 12170);
    assert_string_equal(INV("coalesce(prev_billed_through, 'none')", id), "none");
    assert_string_equal(INV("prev_next_bill_date", id), "2026-12-01");
    assert_string_equal(q1(f, "SELECT billed_through FROM subscriptions WHERE id = ?", 1), "2026-11-30");
    assert_int_equal(q1i(f, "SELECT SUM(amount) FROM ledger_entries WHERE invoice_id = ?", id), 12900);
    assert_string_equal(q1(f, "SELECT dedupe_key FROM outbox WHERE customer_id = ?", f->c1), "invoice_issued:INV-2026-000001:sms");
    assert_string_equal(q1(f, "SELECT payload FROM outbox WHERE customer_id = ?", f->c1),
                        "{\"amount_due\":12900,\"customer\":\"C000000013\",\"due_date\":\"2026-12-16\","
                        "\"number\":\"INV-2026-000001\",\"pay_link\":\"/pay/INV-2026-000001\","
                        "\"period\":\"2026-11-01..2026-11-30\"}");
    buf phone = {0};
    assert_int_equal(vault_decrypt(f->v, "outbox.recipient", q1(f, "SELECT recipient_enc FROM outbox WHERE customer_id = ?", f->c1),
                                   &phone, &e), 0);
    assert_string_equal(buf_cstr(&phone), "13812348000");
    buf_free(&phone);
    /* the same snapshot of who is billed as a bill issued in one go */
    int64_t id3 = simple(f, f->c1, "2026-12-02", 5000, 283, NULL);
    char bill_to[512];
    snprintf(bill_to, sizeof bill_to, "%s", INV("bill_to", id));
    assert_non_null(strstr(bill_to, "\"customer_name\":\"张三\""));
    assert_string_equal(INV("bill_to", id3), bill_to);
}

/* A prefix JSON must escape (configured so): the e-bill's number is
 * escaped as in any JSON the core writes. */
static void test_ebill_number_escaped(void **state)
{
    fixture *f = *state;
    invoices_set_prefixes("I\"V", NULL);
    char num[INVOICE_NUMBER_MAX], want[512];
    simple(f, f->c2, "2026-12-01", 12900, 730, num);
    invoices_set_prefixes("INV", "CN");
    assert_string_equal(num, "I\"V-2026-000001");
    snprintf(want, sizeof want,
             "{\"amount_due\":12900,\"customer\":\"%s\",\"due_date\":\"2026-12-01\",\"number\":\"I\\\"V-2026-000001\","
             "\"pay_link\":\"/pay/I\\\"V-2026-000001\",\"period\":null}",
             q1(f, "SELECT code FROM customers WHERE id = ?", f->c2));
    assert_string_equal(q1(f, "SELECT payload FROM outbox WHERE customer_id = ?", f->c2), want);
}

static void test_issue_refusals_write_nothing(void **state)
{
    fixture *f = *state;
    err e;
    int64_t id;
    char num[INVOICE_NUMBER_MAX];
    bill b = {.customer = f->c1};
    /* 1 fen off: 12900 at 6% is 730 (730.19); 731 is still within a fen, 732 is not */
    invoice_line_in ok731 = L("recurring", "x", 12900, "internet", 6, 731);
    invoice_line_in bad[2] = {L("recurring", "x", 12900, "internet", 6, 730), L("recurring", "y", 12900, "internet", 6, 732)};
    assert_int_equal(issue_b(f, &b, bad, 2, &id, num, &e), ERR_INVALID);
    assert_string_equal(e.field, "lines[1].tax");
    assert_string_equal(e.tag, "tax_mismatch");
    invoice_line_in neg = L("recurring", "x", -100, "internet", 6, -6);
    assert_int_equal(issue_b(f, &b, &neg, 1, &id, num, &e), ERR_INVALID);
    assert_string_equal(e.field, "lines[0].amount");
    invoice_line_in nodesc = L("recurring", "", 100, "internet", 6, 6);
    assert_int_equal(issue_b(f, &b, &nodesc, 1, &id, num, &e), ERR_INVALID);
    assert_string_equal(e.field, "lines[0].description");
    invoice_line_in kind = L("bogus", "x", 100, "internet", 6, 6);
    assert_int_equal(issue_b(f, &b, &kind, 1, &id, num, &e), ERR_INVALID);
    assert_string_equal(e.field, "lines[0].kind");
    invoice_line_in sign = L("recurring", "x", 100, "internet", 6, -6);
    assert_int_equal(issue_b(f, &b, &sign, 1, &id, num, &e), ERR_INVALID);
    assert_string_equal(e.field, "lines[0].tax");
    /* a charge of someone else: refused after the number was taken, so
     * the rollback must give the number back */
    invoice_line_in other = L("one_time", "Repair", 5000, "installation", 9, 413);
    other.pending_charge_id = 2;
    assert_int_equal(issue_b(f, &b, &other, 1, &id, num, &e), ERR_CONFLICT);
    assert_string_equal(e.field, "lines[0].pending_charge_id");
    /* credit that the customer does not have */
    invoice_line_in cr[2] = {L("recurring", "x", 12900, "internet", 6, 730), L("credit", "credit", -100, "credit", 0, 0)};
    assert_int_equal(issue_b(f, &b, cr, 2, &id, num, &e), ERR_CONFLICT);
    assert_string_equal(e.field, "lines[1].amount");
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM invoices WHERE ? > 0", 1), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE ? > 0", 1), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM outbox WHERE ? > 0", 1), 0);
    assert_string_equal(q1(f, "SELECT invoice_id FROM pending_charges WHERE id = ?", 2), "");
    /* and the first invoice that goes through is number 1 */
    assert_int_equal(issue_b(f, &b, &ok731, 1, &id, num, &e), 0);
    assert_string_equal(num, "INV-2026-000001");
}

static void test_one_bill_per_period(void **state)
{
    fixture *f = *state;
    err e;
    int64_t id1, id2;
    char n1[INVOICE_NUMBER_MAX], n2[INVOICE_NUMBER_MAX];
    invoice_line_in l = L("recurring", "Fiber", 12900, "internet", 6, 730);
    bill b = {.customer = f->c1, .sub = f->sub1, .from = "2026-11-01", .to = "2026-11-30", .billed_through = "2026-11-30"};
    assert_int_equal(issue_b(f, &b, &l, 1, &id1, n1, &e), 0);
    assert_int_equal(issue_b(f, &b, &l, 1, &id2, n2, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "already_billed");
    assert_non_null(strstr(e.msg, "INV-2026-000001"));
    /* another customer's subscription is refused by name */
    bill b2 = {.customer = f->c2, .sub = f->sub1, .from = "2026-12-01", .to = "2026-12-31"};
    assert_int_equal(issue_b(f, &b2, &l, 1, &id2, n2, &e), ERR_INVALID);
    assert_string_equal(e.field, "subscription_id");
    /* next period: the next number, no gap for the refusals */
    bill b3 = {.customer = f->c1, .sub = f->sub1, .from = "2026-12-01", .to = "2026-12-31", .issue = "2027-01-01", .due = "2027-01-16"};
    assert_int_equal(issue_b(f, &b3, &l, 1, &id2, n2, &e), 0);
    assert_string_equal(n2, "INV-2027-000001");
}

/* ------------------------------------------------------------ numbering */

static void test_numbers_gapless_through_rollbacks_and_years(void **state)
{
    fixture *f = *state;
    err e;
    char num[INVOICE_NUMBER_MAX];
    simple(f, f->c1, "2026-12-30", 100, 6, num);
    assert_string_equal(num, "INV-2026-000001");
    /* an issuer whose own transaction rolls back gives its number back */
    for (int i = 0; i < 3; i++) {
        invoice_line_in l = L("recurring", "x", 100, "internet", 6, 6);
        invoice_new in = {.customer_id = f->c1, .issue_date = "2026-12-30", .due_date = "2026-12-30", .rules_version = "r",
                          .lines = &l, .nlines = 1, .by = "test"};
        int64_t id;
        assert_int_equal(db_begin(f->d, &e), 0);
        assert_int_equal(invoices_issue(f->d, f->v, &in, &id, num, &e), 0);
        assert_string_equal(num, "INV-2026-000002");
        db_rollback(f->d);
    }
    simple(f, f->c1, "2026-12-31", 100, 6, num);
    assert_string_equal(num, "INV-2026-000002");
    /* a new year starts a new series; the old one goes on where it was */
    simple(f, f->c2, "2027-01-01", 100, 6, num);
    assert_string_equal(num, "INV-2027-000001");
    simple(f, f->c2, "2027-01-02", 100, 6, num);
    assert_string_equal(num, "INV-2027-000002");
    simple(f, f->c2, "2026-12-31", 100, 6, num);
    assert_string_equal(num, "INV-2026-000003");
    /* credit notes are a series of their own, also per year */
    credit_line_in cl = {line_id(f, 1, 1), 50};
    int64_t cn;
    assert_int_equal(credit(f, 1, &cl, 1, &cn, num, &e), 0);
    assert_string_equal(num, "CN-2026-000001");
    /* configured prefixes */
    invoices_set_prefixes("BB", "BC");
    simple(f, f->c2, "2027-03-01", 100, 6, num);
    assert_string_equal(num, "BB-2027-000001");
    invoices_set_prefixes("INV", "CN");
    assert_int_equal(q1i(f, "SELECT next FROM number_series WHERE series = 'INV-2027' AND ? > 0", 1), 3);
}

/* One issuer process: N invoices for customer c on its own connection,
 * every third thrown away after taking its number. The test runs two of
 * them at once as fresh processes (this binary again, with --issuer), so
 * nothing of the parent's connection crosses a fork. */
enum { ISSUES = 40 };

static int issuer(const char *path, int64_t c)
{
    db *d;
    err e;
    if (db_open(path, 0, &d, &e)) return 3;
    int bad = 0;
    for (int i = 0; i < ISSUES && !bad; i++) {
        invoice_line_in l = L("recurring", "x", 100, "internet", 6, 6);
        invoice_new in = {.customer_id = c, .issue_date = "2026-12-01", .due_date = "2026-12-01", .rules_version = "r", .lines = &l,
                          .nlines = 1, .by = "test"};
        char num[INVOICE_NUMBER_MAX];
        int64_t id;
        int rc = db_begin(d, &e);
        if (!rc) rc = invoices_issue(d, NULL, &in, &id, num, &e);
        if (!rc && i % 3 == 2) db_rollback(d);
        else if (!rc) rc = db_commit(d, &e);
        else db_rollback(d);
        if (rc) fprintf(stderr, "issuer %lld: %s\n", (long long)c, e.msg);
        bad = rc != 0;
    }
    db_close(d);
    return bad;
}

static const char *g_self;

/* Two processes with their own connections issue at once: BEGIN
 * IMMEDIATE makes them take turns, and the numbers are 1..2N with no gap
 * and no duplicate. */
static void test_numbers_two_processes(void **state)
{
    fixture *f = *state;
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            char cid[24];
            snprintf(cid, sizeof cid, "%lld", (long long)(k ? f->c2 : f->c1));
            execl(g_self, g_self, "--issuer", f->dbpath, cid, (char *)NULL);
            _exit(4);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    /* 2 x (40 - 13 thrown away) = 54 */
    int64_t kept = 2 * (ISSUES - ISSUES / 3);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM invoices WHERE ? > 0", 1), kept);
    assert_int_equal(q1i(f, "SELECT COUNT(DISTINCT number) FROM invoices WHERE ? > 0", 1), kept);
    assert_int_equal(q1i(f, "SELECT COUNT(DISTINCT customer_id) FROM invoices WHERE ? > 0", 1), 2);
    assert_string_equal(q1(f, "SELECT MIN(number) FROM invoices WHERE ? > 0", 1), "INV-2026-000001");
    char last[32];
    snprintf(last, sizeof last, "INV-2026-%06lld", (long long)kept);
    assert_string_equal(q1(f, "SELECT MAX(number) FROM invoices WHERE ? > 0", 1), last);
}

/* ------------------------------------------------------------- payments */

/* Invoices of 100.00 (Dec 1) and 50.00 (Dec 2); a payment of 180.00 made
 * for the second pays it (50), then the oldest (100); 30.00 is credit. */
static void test_payment_allocation_and_duplicates(void **state)
{
    fixture *f = *state;
    err e;
    int64_t a = simple(f, f->c1, "2026-12-01", 10000, 566, NULL);
    int64_t b = simple(f, f->c1, "2026-12-02", 5000, 283, NULL);
    int64_t p = pay_ok(f, f->c1, 18000, "R-001", b);
    assert_string_equal(INV("status", a), "paid");
    assert_string_equal(INV("status", b), "paid");
    assert_int_equal(q1i(f, "SELECT amount FROM allocations WHERE invoice_id = ?", b), 5000);
    assert_int_equal(q1i(f, "SELECT amount FROM allocations WHERE invoice_id = ?", a), 10000);
    ledger_balance lb = bal(f, f->c1);
    assert_int_equal(lb.balance, -3000);
    assert_int_equal(lb.open, 0);
    assert_int_equal(lb.credit, 3000);
    /* the same receipt again: refused, naming the payment, nothing credited */
    int64_t other = 0;
    assert_int_equal(pay(f, f->c1, 18000, "R-001", 0, &other, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "duplicate");
    assert_int_equal(other, p);
    assert_int_equal(bal(f, f->c1).balance, -3000);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM payments WHERE ? > 0", 1), 1);
    /* the same receipt number on another channel is another payment */
    payment_new pb = {.customer_id = f->c1, .channel = "bank", .channel_txn_id = "R-001", .amount = 100, .entry_date = "2026-12-05",
                      .by = "test"};
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(payments_record(f->d, &pb, &other, NULL, &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    /* partly: a new invoice of 100.00 and a payment of 40.00 */
    int64_t c = simple(f, f->c1, "2026-12-03", 10000, 566, NULL);
    pay_ok(f, f->c1, 4000, "R-002", 0);
    assert_string_equal(INV("status", c), "partially_paid");
    assert_int_equal(INVI("paid", c), 4000);
    /* refusals */
    assert_int_equal(pay(f, f->c1, 0, "R-003", 0, &other, &e), ERR_INVALID);
    assert_string_equal(e.field, "amount");
    assert_int_equal(pay(f, f->c2, 100, "R-004", c, &other, &e), ERR_INVALID);
    assert_string_equal(e.field, "invoice");
    jv *o;
    assert_int_equal(payments_get(f->d, p, &f->a, &o, &e), 0);
    assert_int_equal(jv_get(o, "unallocated")->u.i, 3000);
    assert_int_equal(jv_len(jv_get(o, "allocations")), 2);
}

/* Credit applied by a credit line is an allocation of credit. C1 paid
 * 50.00 with nothing to pay: credit 50.00. A bill of 129.00 applies 50.00
 * of it: paid 50.00, 79.00 due, no credit left. */
static void test_credit_line(void **state)
{
    fixture *f = *state;
    err e;
    pay_ok(f, f->c1, 5000, "R-1", 0);
    assert_int_equal(bal(f, f->c1).credit, 5000);
    invoice_line_in lines[2] = {L("recurring", "Fiber", 12900, "internet", 6, 730), L("credit", "Credit applied", -5000, "credit", 0, 0)};
    bill b = {.customer = f->c1};
    int64_t id;
    char num[INVOICE_NUMBER_MAX];
    assert_int_equal(issue_b(f, &b, lines, 2, &id, num, &e), 0);
    assert_int_equal(INVI("gross", id), 12900);
    assert_int_equal(INVI("paid", id), 5000);
    assert_string_equal(INV("status", id), "partially_paid");
    assert_string_equal(q1(f, "SELECT payment_id FROM allocations WHERE invoice_id = ?", id), "");
    ledger_balance lb = bal(f, f->c1);
    assert_int_equal(lb.balance, 7900);
    assert_int_equal(lb.open, 7900);
    assert_int_equal(lb.credit, 0);
    assert_non_null(strstr(q1(f, "SELECT payload FROM outbox WHERE customer_id = ?", f->c1), "\"amount_due\":7900"));
    /* something is due: the e-bill carries the pay link */
    assert_non_null(strstr(q1(f, "SELECT payload FROM outbox WHERE customer_id = ?", f->c1), "\"pay_link\":\"/pay/"));
    /* no credit left: a second credit line is refused */
    assert_int_equal(issue_b(f, &b, lines, 2, &id, num, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "credit_exceeded");
    /* a credit line larger than the bill is refused outright */
    invoice_line_in big[2] = {L("recurring", "Fiber", 100, "internet", 6, 6), L("credit", "Credit applied", -101, "credit", 0, 0)};
    assert_int_equal(issue_b(f, &b, big, 2, &id, num, &e), ERR_INVALID);
    assert_string_equal(e.field, "lines[1].amount");
}

/* A bill paid in full by credit: the e-bill still goes out (the customer
 * learns of the bill) but with nothing to pay, so no pay link. */
static void test_ebill_without_pay_link_when_nothing_due(void **state)
{
    fixture *f = *state;
    err e;
    pay_ok(f, f->c2, 20000, "R-9", 0);
    invoice_line_in lines[2] = {L("recurring", "Fiber", 12900, "internet", 6, 730),
                                L("credit", "Credit applied", -12900, "credit", 0, 0)};
    bill b = {.customer = f->c2};
    int64_t id;
    char num[INVOICE_NUMBER_MAX];
    assert_int_equal(issue_b(f, &b, lines, 2, &id, num, &e), 0);
    assert_string_equal(INV("status", id), "paid");
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM outbox WHERE event = 'invoice_issued' AND customer_id = ?", f->c2), 1);
    const char *payload = q1(f, "SELECT payload FROM outbox WHERE event = 'invoice_issued' AND customer_id = ?", f->c2);
    assert_non_null(strstr(payload, "\"amount_due\":0"));
    assert_non_null(strstr(payload, "\"pay_link\":null"));
    assert_null(strstr(payload, "/pay/"));
    char want[512];
    snprintf(want, sizeof want,
             "{\"amount_due\":0,\"customer\":\"%s\",\"due_date\":\"2026-12-16\",\"number\":\"%s\",\"pay_link\":null,"
             "\"period\":null}",
             q1(f, "SELECT code FROM customers WHERE id = ?", f->c2), num);
    assert_string_equal(payload, want);
}

/* ----------------------------------------------------------------- voids */

/* Two bills of one subscription, October then November: the October one
 * cannot be voided (its period would never be billed again: the
 * subscription only goes back to where its latest bill found it); the
 * November one can, and then October is the latest and can be too. */
static void test_void_only_the_latest(void **state)
{
    fixture *f = *state;
    err e;
    invoice_line_in oct = L("recurring", "Fiber October", 12900, "internet", 6, 730);
    invoice_line_in nov = L("recurring", "Fiber November", 12900, "internet", 6, 730);
    bill b1 = {.customer = f->c1, .sub = f->sub1, .from = "2026-10-01", .to = "2026-10-31", .billed_through = "2026-10-31"};
    bill b2 = {.customer = f->c1, .sub = f->sub1, .from = "2026-11-01", .to = "2026-11-30", .billed_through = "2026-11-30"};
    int64_t id1, id2;
    char num[INVOICE_NUMBER_MAX];
    assert_int_equal(db_run(f->d, &e, "UPDATE subscriptions SET billed_through = '2026-09-30' WHERE id = 1", ""), 0);
    assert_int_equal(issue_b(f, &b1, &oct, 1, &id1, num, &e), 0);
    assert_int_equal(issue_b(f, &b2, &nov, 1, &id2, num, &e), 0);
    assert_int_equal(void_inv(f, id1, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "not_latest");
    assert_string_equal(e.field, "number");
    assert_non_null(strstr(e.msg, "void only the subscription's latest bill; correct this one with a credit note"));
    /* nothing moved */
    assert_string_equal(INV("status", id1), "open");
    assert_string_equal(q1(f, "SELECT billed_through FROM subscriptions WHERE id = ?", 1), "2026-11-30");
    assert_int_equal(bal(f, f->c1).balance, 25800);
    /* the latest goes, then the one before it is the latest */
    assert_int_equal(void_inv(f, id2, &e), 0);
    assert_string_equal(q1(f, "SELECT billed_through FROM subscriptions WHERE id = ?", 1), "2026-10-31");
    assert_int_equal(void_inv(f, id1, &e), 0);
    assert_string_equal(q1(f, "SELECT billed_through FROM subscriptions WHERE id = ?", 1), "2026-09-30");
    assert_int_equal(bal(f, f->c1).balance, 0);
}

static void test_void(void **state)
{
    fixture *f = *state;
    err e;
    invoice_line_in lines[3] = {L("recurring", "Fiber November", 12900, "internet", 6, 730),
                                L("one_time", "Installation", 20000, "installation", 9, 1651),
                                L("deposit", "ONU deposit", 30000, "deposit", 0, 0)};
    lines[1].pending_charge_id = 1;
    lines[2].deposit_id = 1;
    int64_t changes[1] = {1};
    bill b = {.customer = f->c1, .sub = f->sub1, .from = "2026-11-01", .to = "2026-11-30", .billed_through = "2026-11-30",
              .changes = changes, .nchanges = 1};
    int64_t id;
    char num[INVOICE_NUMBER_MAX];
    assert_int_equal(db_run(f->d, &e, "UPDATE subscriptions SET billed_through = '2026-10-31' WHERE id = 1", ""), 0);
    assert_int_equal(issue_b(f, &b, lines, 3, &id, num, &e), 0);
    assert_int_equal(INVI("gross", id), 62900);
    assert_int_equal(bal(f, f->c1).deposits_held, 30000);
    assert_int_equal(q1i(f, "SELECT invoice_id FROM deposits WHERE id = ?", 1), id);
    /* the engine moves the subscription on after issuing */
    assert_int_equal(db_run(f->d, &e, "UPDATE subscriptions SET next_bill_date = '2027-01-01' WHERE id = 1", ""), 0);
    assert_int_equal(void_inv(f, id, &e), 0);
    assert_string_equal(INV("status", id), "void");
    assert_string_equal(INV("void_reason", id), "issued in error");
    ledger_balance lb = bal(f, f->c1);
    assert_int_equal(lb.balance, 0);
    assert_int_equal(lb.open, 0);
    assert_int_equal(lb.deposits_held, 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE invoice_id = ?", id), 4);
    /* everything it took is free again, and the subscription is back */
    assert_string_equal(q1(f, "SELECT invoice_id FROM pending_charges WHERE id = ?", 1), "");
    assert_string_equal(q1(f, "SELECT billed_on FROM pending_charges WHERE id = ?", 1), "");
    assert_string_equal(q1(f, "SELECT invoice_id FROM deposits WHERE id = ?", 1), "");
    assert_string_equal(q1(f, "SELECT invoice_id FROM subscription_changes WHERE id = ?", 1), "");
    assert_string_equal(q1(f, "SELECT billed_through FROM subscriptions WHERE id = ?", 1), "2026-10-31");
    assert_string_equal(q1(f, "SELECT next_bill_date FROM subscriptions WHERE id = ?", 1), "2026-12-01");
    /* the period can be billed again, with the same charge and deposit */
    int64_t id2;
    assert_int_equal(issue_b(f, &b, lines, 3, &id2, num, &e), 0);
    assert_string_equal(num, "INV-2026-000002");
    assert_int_equal(void_inv(f, id, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "invoice_void");
    /* void refused after a payment, naming what settled it */
    pay_ok(f, f->c1, 100, "R-1", id2);
    assert_int_equal(void_inv(f, id2, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "invoice_settled");
    assert_string_equal(INV("status", id2), "partially_paid");
    /* and after a credit note */
    int64_t id3 = simple(f, f->c2, "2026-12-01", 1000, 57, NULL), cn;
    credit_line_in cl = {line_id(f, id3, 1), 100};
    assert_int_equal(credit(f, id3, &cl, 1, &cn, num, &e), 0);
    assert_int_equal(void_inv(f, id3, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "invoice_settled");
    /* a void invoice cannot be credited or written off */
    assert_int_equal(credit(f, id, NULL, 0, &cn, num, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "invoice_void");
}

/* ---------------------------------------------------------- credit notes */

/* The invoice of the credit-note tests, 439.49 in four lines:
 *   1 recurring  129.00 at  6%: tax 730 (730.19)
 *   2 one_time   200.00 at  9%: tax 1651 (1651.38)
 *   3 fee        123.39 at 20%: exactly 2056.5; the rule rounded down: 2056
 *   4 discount   -12.90 at  6%: tax -73 (-73.02)
 * gross 43949, tax 4364, net 39585. */
static int64_t four_lines(fixture *f)
{
    invoice_line_in lines[4] = {L("recurring", "Fiber 300M", 12900, "internet", 6, 730),
                                L("one_time", "Installation", 20000, "installation", 9, 1651),
                                L("fee", "Late visit", 12339, "special", 20, 2056), L("discount", "Loyalty", -1290, "internet", 6, -73)};
    bill b = {.customer = f->c1};
    int64_t id;
    char num[INVOICE_NUMBER_MAX];
    err e;
    if (issue_b(f, &b, lines, 4, &id, num, &e)) fail_msg("issue: %s", e.msg);
    assert_int_equal(INVI("gross", id), 43949);
    assert_int_equal(INVI("tax", id), 4364);
    return id;
}

static void test_credit_note_tax_per_line(void **state)
{
    fixture *f = *state;
    err e;
    int64_t inv = four_lines(f), cn;
    char num[INVOICE_NUMBER_MAX];
    /* 6.03 of line 3 at 20%: 603 * 20 / 120 = 100.5 -> 101 half up (half
     * even and truncation would say 100); 10.00 of line 1 at 6%: 1000 * 6
     * / 106 = 56.60 -> 57; -6.45 of line 4: 645 * 6 / 106 = 36.51 -> -37 */
    credit_line_in cl[3] = {{line_id(f, inv, 3), 603}, {line_id(f, inv, 1), 1000}, {line_id(f, inv, 4), -645}};
    assert_int_equal(credit(f, inv, cl, 3, &cn, num, &e), 0);
    assert_string_equal(num, "CN-2026-000001");
    assert_int_equal(q1i(f, "SELECT tax FROM credit_note_lines WHERE credit_note_id = 1 AND invoice_line_id = ?", line_id(f, inv, 3)), 101);
    assert_int_equal(q1i(f, "SELECT tax FROM credit_note_lines WHERE credit_note_id = 1 AND invoice_line_id = ?", line_id(f, inv, 1)), 57);
    assert_int_equal(q1i(f, "SELECT tax FROM credit_note_lines WHERE credit_note_id = 1 AND invoice_line_id = ?", line_id(f, inv, 4)), -37);
    /* 603 + 1000 - 645 = 958; tax 101 + 57 - 37 = 121; net 837 */
    assert_int_equal(q1i(f, "SELECT gross FROM credit_notes WHERE id = ?", cn), 958);
    assert_int_equal(q1i(f, "SELECT tax FROM credit_notes WHERE id = ?", cn), 121);
    assert_int_equal(q1i(f, "SELECT net FROM credit_notes WHERE id = ?", cn), 837);
    assert_int_equal(INVI("credited", inv), 958);
    assert_int_equal(q1i(f, "SELECT amount FROM ledger_entries WHERE credit_note_id = ?", cn), -958);
    /* the rest of line 3, 117.36, gives back exactly the 19.55 of tax left
     * on it (2056 - 101), not 117.36 / 6 = 19.56 */
    credit_line_in rest = {line_id(f, inv, 3), 11736};
    assert_int_equal(credit(f, inv, &rest, 1, &cn, num, &e), 0);
    assert_string_equal(num, "CN-2026-000002");
    assert_int_equal(q1i(f, "SELECT tax FROM credit_notes WHERE id = ?", cn), 1955);
    assert_int_equal(q1i(f, "SELECT SUM(tax) FROM credit_note_lines WHERE invoice_line_id = ?", line_id(f, inv, 3)), 2056);
    /* nothing is left of line 3 */
    credit_line_in more = {line_id(f, inv, 3), 1};
    assert_int_equal(credit(f, inv, &more, 1, &cn, num, &e), ERR_INVALID);
    assert_string_equal(e.field, "lines[0].amount");
    /* the sign of the line, a line of another invoice, a line twice */
    credit_line_in wrong = {line_id(f, inv, 1), -100};
    assert_int_equal(credit(f, inv, &wrong, 1, &cn, num, &e), ERR_INVALID);
    int64_t other = simple(f, f->c2, "2026-12-01", 1000, 57, NULL);
    credit_line_in foreign = {line_id(f, other, 1), 100};
    assert_int_equal(credit(f, inv, &foreign, 1, &cn, num, &e), ERR_INVALID);
    assert_string_equal(e.field, "lines[0].line");
    credit_line_in twice[2] = {{line_id(f, inv, 2), 100}, {line_id(f, inv, 2), 100}};
    assert_int_equal(credit(f, inv, twice, 2, &cn, num, &e), ERR_INVALID);
    assert_string_equal(e.field, "lines[1].line");
    /* a note that gives back nothing in total: -6.45 of the discount alone */
    credit_line_in disc = {line_id(f, inv, 4), -100};
    assert_int_equal(credit(f, inv, &disc, 1, &cn, num, &e), ERR_INVALID);
    /* whatever is left, whole: line 1 119.00 (tax 730 - 57 = 673), line 2
     * 200.00 (1651), line 4 -6.45 (-73 + 37 = -36): 31255, tax 2288 */
    assert_int_equal(credit(f, inv, NULL, 0, &cn, num, &e), 0);
    assert_int_equal(q1i(f, "SELECT gross FROM credit_notes WHERE id = ?", cn), 31255);
    assert_int_equal(q1i(f, "SELECT tax FROM credit_notes WHERE id = ?", cn), 2288);
    /* every line gave back all its tax: 4364 in all */
    assert_int_equal(q1i(f, "SELECT SUM(tax) FROM credit_notes WHERE invoice_id = ?", inv), 4364);
    assert_int_equal(INVI("credited", inv), 43949);
    assert_string_equal(INV("status", inv), "paid");
    assert_int_equal(credit(f, inv, NULL, 0, &cn, num, &e), ERR_INVALID);
    assert_string_equal(e.tag, "nothing_to_credit");
    ledger_balance lb = bal(f, f->c1);
    assert_int_equal(lb.balance, 0);
    assert_int_equal(lb.credit, 0);
    jv *o;
    assert_int_equal(invoices_credit_note_get(f->d, 1, &f->a, &o, &e), 0);
    assert_int_equal(jv_len(jv_get(o, "lines")), 3);
}

/* Paid 300.00 of 439.49 by two payments: 200.00 (allocation 1) then
 * 100.00 (allocation 2). A credit note for everything leaves nothing to
 * pay: the 300.00 paid is the excess and goes back to credit, newest
 * allocation first. A second scenario takes back only part of the
 * newest-but-one allocation. */
static void test_credit_note_excess_back_to_credit(void **state)
{
    fixture *f = *state;
    err e;
    int64_t inv = four_lines(f), cn;
    char num[INVOICE_NUMBER_MAX];
    pay_ok(f, f->c1, 20000, "R-1", inv);
    pay_ok(f, f->c1, 10000, "R-2", inv);
    assert_int_equal(INVI("paid", inv), 30000);
    /* 200.00 of line 2: left to pay 13949 - 20000 < 0, so 6051 paid goes
     * back: allocation 2 (100.00) is reversed, and 39.49 of it stays */
    credit_line_in cl = {line_id(f, inv, 2), 20000};
    assert_int_equal(credit(f, inv, &cl, 1, &cn, num, &e), 0);
    assert_int_equal(INVI("credited", inv), 20000);
    assert_int_equal(INVI("paid", inv), 23949);
    assert_string_equal(INV("status", inv), "paid");
    assert_string_not_equal(q1(f, "SELECT reversed_at FROM allocations WHERE id = ?", 2), "");
    assert_non_null(strstr(q1(f, "SELECT reason FROM allocations WHERE id = ?", 2), "CN-2026-000001"));
    assert_string_equal(q1(f, "SELECT reversed_at FROM allocations WHERE id = ?", 1), "");
    assert_int_equal(q1i(f, "SELECT amount FROM allocations WHERE id = ?", 3), 3949);
    assert_int_equal(q1i(f, "SELECT payment_id FROM allocations WHERE id = ?", 3), 2);
    ledger_balance lb = bal(f, f->c1);
    /* balance 43949 - 30000 - 20000 = -6051: all of it credit */
    assert_int_equal(lb.balance, -6051);
    assert_int_equal(lb.open, 0);
    assert_int_equal(lb.credit, 6051);
    /* the rest of the invoice: 23949 more goes back (allocation 3, then 1) */
    assert_int_equal(credit(f, inv, NULL, 0, &cn, num, &e), 0);
    assert_int_equal(INVI("paid", inv), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM allocations WHERE invoice_id = ? AND reversed_at IS NULL", inv), 0);
    lb = bal(f, f->c1);
    assert_int_equal(lb.balance, -30000);
    assert_int_equal(lb.credit, 30000);
    /* the payments are free again: the next bill applies them (its credit
     * line), and what is left stays credit */
    invoice_line_in nl[2] = {L("recurring", "Fiber", 12900, "internet", 6, 730), L("credit", "Credit applied", -12900, "credit", 0, 0)};
    bill b = {.customer = f->c1};
    int64_t next;
    assert_int_equal(issue_b(f, &b, nl, 2, &next, num, &e), 0);
    assert_string_equal(INV("status", next), "paid");
    assert_int_equal(bal(f, f->c1).credit, 30000 - 12900);
}

/* ------------------------------------------------------------- write-off */

static void test_write_off(void **state)
{
    fixture *f = *state;
    err e;
    int64_t inv = simple(f, f->c1, "2026-12-01", 10000, 566, NULL);
    pay_ok(f, f->c1, 2500, "R-1", inv);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_write_off(f->d, inv, "", "2026-12-20", "test", &e), ERR_INVALID);
    assert_string_equal(e.field, "reason");
    assert_int_equal(invoices_write_off(f->d, inv, "customer moved abroad", "2026-12-20", "test", &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_string_equal(INV("status", inv), "written_off");
    assert_int_equal(INVI("written_off", inv), 7500);
    assert_int_equal(q1i(f, "SELECT amount FROM ledger_entries WHERE kind = 'write_off' AND invoice_id = ?", inv), -7500);
    ledger_balance lb = bal(f, f->c1);
    assert_int_equal(lb.balance, 0);
    assert_int_equal(lb.open, 0);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_write_off(f->d, inv, "again", "2026-12-20", "test", &e), ERR_CONFLICT);
    db_rollback(f->d);
    /* a credit note cannot give back what was written off */
    int64_t cn;
    char num[INVOICE_NUMBER_MAX];
    credit_line_in cl = {line_id(f, inv, 1), 5000};
    assert_int_equal(credit(f, inv, &cl, 1, &cn, num, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "over_credit");
    /* up to what was paid it can: 25.00 back to credit */
    credit_line_in cl2 = {line_id(f, inv, 1), 2500};
    assert_int_equal(credit(f, inv, &cl2, 1, &cn, num, &e), 0);
    assert_int_equal(bal(f, f->c1).credit, 2500);
}

/* ---------------------------------------------------- drafts, lists, views */

static void test_draft_then_finalize(void **state)
{
    fixture *f = *state;
    err e;
    invoice_line_in lines[2] = {L("recurring", "Fiber", 12900, "internet", 6, 730), L("one_time", "Installation", 20000, "installation", 9, 1651)};
    lines[1].pending_charge_id = 1;
    int64_t changes[1] = {1};
    invoice_new in = {.customer_id = f->c1, .subscription_id = f->sub1, .period_from = "2026-11-01", .period_to = "2026-11-30",
                      .issue_date = "2026-12-01", .due_date = "2026-12-16", .rules_version = "rv", .lines = lines, .nlines = 2,
                      .change_ids = changes, .nchanges = 1, .billed_through = "2026-11-30", .by = "test"};
    int64_t id;
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_create_draft(f->d, &in, &id, &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    /* a draft takes no number, is not on the ledger, takes no charge */
    assert_string_equal(INV("number", id), "");
    assert_string_equal(INV("status", id), "draft");
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM number_series WHERE ? > 0", 1), 0);
    assert_int_equal(bal(f, f->c1).balance, 0);
    assert_string_equal(q1(f, "SELECT invoice_id FROM pending_charges WHERE id = ?", 1), "");
    char num[INVOICE_NUMBER_MAX];
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_finalize(f->d, f->v, id, NULL, "test", num, &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_string_equal(num, "INV-2026-000001");
    assert_string_equal(INV("status", id), "open");
    assert_int_equal(bal(f, f->c1).balance, 32900);
    assert_int_equal(q1i(f, "SELECT invoice_id FROM pending_charges WHERE id = ?", 1), id);
    assert_int_equal(q1i(f, "SELECT invoice_id FROM subscription_changes WHERE id = ?", 1), id);
    assert_string_equal(q1(f, "SELECT billed_through FROM subscriptions WHERE id = ?", 1), "2026-11-30");
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_finalize(f->d, f->v, id, NULL, "test", num, &e), ERR_CONFLICT);
    db_rollback(f->d);
}

static void test_list_explain_overview(void **state)
{
    fixture *f = *state;
    err e;
    jv_arena *a = &f->a;
    jv *detail = NULL;
    const char *dt = "{\"reason\":\"vip price 99.00 beats new_user 109.00\",\"days\":30}";
    assert_int_equal(json_parse(dt, strlen(dt), NULL, a, &detail, &e), 0);
    invoice_line_in l = L("recurring", "Fiber 300M", 9900, "internet", 6, 560);
    l.step = "tag_prices";
    l.rule = "promotions.tag_price";
    l.detail = detail;
    bill b = {.customer = f->c1};
    int64_t id;
    char num[INVOICE_NUMBER_MAX];
    assert_int_equal(issue_b(f, &b, &l, 1, &id, num, &e), 0);
    for (int i = 0; i < 3; i++) simple(f, f->c1, "2026-12-02", 100, 6, NULL);
    simple(f, f->c2, "2026-12-02", 100, 6, NULL);
    jv *x;
    assert_int_equal(invoices_explain(f->d, id, a, &x, &e), 0);
    const char *t = jv_at(jv_get(x, "text"), 0)->u.str.s;
    assert_non_null(strstr(t, "step tag_prices"));
    assert_non_null(strstr(t, "rule promotions.tag_price"));
    assert_non_null(strstr(t, "rules rv-test"));
    assert_non_null(strstr(t, "vip price 99.00 beats new_user 109.00"));
    assert_non_null(strstr(t, "days=30"));
    /* pages of 2, newest first, of one customer */
    jv *list;
    char next[INVOICES_CURSOR_MAX];
    assert_int_equal(invoices_list(f->d, f->c1, NULL, NULL, 2, a, &list, next, sizeof next, &e), 0);
    assert_int_equal(jv_len(list), 2);
    assert_string_equal(jv_get(jv_at(list, 0), "number")->u.str.s, "INV-2026-000004");
    assert_string_not_equal(next, "");
    assert_int_equal(invoices_list(f->d, f->c1, NULL, next, 2, a, &list, next, sizeof next, &e), 0);
    assert_int_equal(jv_len(list), 2);
    assert_string_equal(jv_get(jv_at(list, 1), "number")->u.str.s, "INV-2026-000001");
    assert_string_equal(next, "");
    assert_int_equal(invoices_list(f->d, 0, "open", NULL, 50, a, &list, next, sizeof next, &e), 0);
    assert_int_equal(jv_len(list), 5);
    assert_int_equal(invoices_list(f->d, 0, "bogus", NULL, 50, a, &list, next, sizeof next, &e), ERR_INVALID);
    assert_string_equal(e.field, "status");
    pay_ok(f, f->c1, 100, "R-1", 0);
    ledger_balance lb;
    jv *li, *lp;
    assert_int_equal(invoices_overview_parts(f->d, f->c1, 3, a, &lb, &li, &lp, &e), 0);
    assert_int_equal(lb.balance, 9900 + 300 - 100);
    assert_int_equal(jv_len(li), 3);
    assert_int_equal(jv_len(lp), 1);
    assert_null(jv_get(jv_at(li, 0), "customer_name"));
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--issuer")) return issuer(argv[2], strtoll(argv[3], NULL, 10));
    g_self = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_issue_writes_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_prepared_on_another_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ebill_number_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_refusals_write_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_bill_per_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers_gapless_through_rollbacks_and_years, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payment_allocation_and_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_void, setup, teardown),
        cmocka_unit_test_setup_teardown(test_void_only_the_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ebill_without_pay_link_when_nothing_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_note_tax_per_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_note_excess_back_to_credit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_draft_then_finalize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_explain_overview, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
