/* test_ledger.c - the customer ledger: what ledger_post accepts (kinds,
 * accounts, signs, the document each names), append-only entries,
 * adjustments with four eyes, the balance and the credit available through
 * a hand-computed sequence of invoices, payments, credit notes,
 * adjustments and a write-off, deposits held, returned and forfeited, the
 * running balance of a page of entries, and ledger_verify: silent on a
 * consistent database, and naming each corruption made behind its back
 * (an amount changed, an allocation deleted, a stray entry, a date moved,
 * an approver removed, a document changed). */
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
#include "devices.h"
#include "invoices.h"
#include "json.h"
#include "ledger.h"
#include "migrate.h"
#include "payments.h"
#include "rules.h"
#include "unit_fs.h"

typedef struct fixture {
    char dir[64], dbpath[128];
    db *d;
    jv_arena a;
    char problems[64][600];
    int nproblems;
} fixture;

static const char *SEED =
    "INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) VALUES "
    "(1, 'C000000013', 'residential', 'Zhang San', 'active', 't', 't', 't'),"
    "(2, 'C000000021', 'residential', 'Li Si', 'active', 't', 't', 't');"
    "INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
    "(2, 'ONUDEP', 'deposit', 'ONU deposit', 'active', 't', 't');"
    "INSERT INTO devices (id, kind, serial, status, created_at) VALUES (1, 'onu', 'ZTEG00000001', 'installed', 't'),"
    "(2, 'onu', 'ZTEG00000002', 'installed', 't'), (3, 'onu', 'ZTEG00000003', 'installed', 't');"
    "INSERT INTO deposits (id, customer_id, device_id, product, amount, status, taken_on) VALUES "
    "(1, 1, 1, 'ONUDEP', 30000, 'held', '2026-10-01'), (2, 1, 2, 'ONUDEP', 20000, 'held', '2026-10-01'),"
    "(3, 1, 3, 'ONUDEP', 10000, 'held', '2026-10-01');";

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_ledger_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->dbpath, sizeof f->dbpath, "%s/bandbill.db", f->dir);
    jv_arena_init(&f->a, 0);
    err e;
    err_clear(&e);
    if (db_open(f->dbpath, DB_OPEN_CREATE, &f->d, &e) || migrate_apply(f->d, NULL, &e) || db_exec_script(f->d, SEED, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    invoices_set_prefixes("INV", "CN");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    db_close(f->d);
    jv_arena_free(&f->a);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static int64_t q1i(fixture *f, const char *sql, int64_t id)
{
    err e;
    db_stmt *s = db_prepare_once(f->d, sql, &e);
    if (!s) fail_msg("%s: %s", sql, e.msg);
    db_bind_int(s, 1, id);
    int rc = db_step(f->d, s, &e);
    assert_true(rc >= 0);
    int64_t v = rc == DB_ROW ? db_col_int(s, 0) : -999999;
    db_finalize(s);
    return v;
}

static void sql(fixture *f, const char *script)
{
    err e;
    if (db_exec_script(f->d, script, &e)) fail_msg("%s: %s", script, e.msg);
}

static int post(fixture *f, const ledger_entry *le, err *e)
{
    err_clear(e);
    int rc = db_begin(f->d, e);
    if (!rc) rc = ledger_post(f->d, le, NULL, e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    return rc;
}

static int64_t invoice(fixture *f, int64_t c, const char *date, int64_t amount, int64_t tax, int64_t credit_applied, int64_t deposit_id)
{
    invoice_line_in l[3] = {{.kind = "recurring", .description = "Fiber", .quantity = 1, .unit_price = amount, .amount = amount,
                             .tax_category = "internet", .tax_rate = 6, .tax = tax, .step = "t", .rule = "t.t"}};
    size_t n = 1;
    if (deposit_id) {
        int64_t amt = q1i(f, "SELECT amount FROM deposits WHERE id = ?", deposit_id);
        l[n++] = (invoice_line_in){.kind = "deposit", .description = "ONU deposit", .quantity = 1, .unit_price = amt, .amount = amt,
                                   .tax_category = "deposit", .tax_rate = 0, .tax = 0, .step = "deposits", .rule = "billing.deposits",
                                   .deposit_id = deposit_id};
    }
    if (credit_applied)
        l[n++] = (invoice_line_in){.kind = "credit", .description = "Credit applied", .quantity = 1, .unit_price = -credit_applied,
                                   .amount = -credit_applied, .tax_category = "credit", .step = "credit", .rule = "billing.credit"};
    invoice_new in = {.customer_id = c, .issue_date = date, .due_date = date, .rules_version = "rv", .lines = l, .nlines = n, .by = "test"};
    err e;
    int64_t id = 0;
    char num[INVOICE_NUMBER_MAX];
    if (db_begin(f->d, &e) || invoices_issue(f->d, NULL, &in, &id, num, &e) || db_commit(f->d, &e)) fail_msg("issue: %s", e.msg);
    return id;
}


static int64_t pay(fixture *f, int64_t c, const char *date, int64_t amount, const char *txn)
{
    /* the project's rules order what a payment settles beyond its own invoice */
    ruleset *rs = NULL;
    err re;
    if (rules_load_folder(BB_SOURCE_DIR "/rules", &rs, &re)) fail_msg("rules: %s", re.msg);
    payment_new p = {.customer_id = c, .channel = "counter", .channel_txn_id = txn, .amount = amount, .entry_date = date, .by = "test",
                     .rules = rs};
    err e;
    int64_t id = 0;
    if (db_begin(f->d, &e) || payments_record(f->d, &p, &id, NULL, &e) || db_commit(f->d, &e)) fail_msg("pay: %s", e.msg);
    ruleset_unref(rs);
    return id;
}

static int adjust(fixture *f, int64_t c, int64_t amount, const char *approver, const char *by, err *e)
{
    err_clear(e);
    int rc = db_begin(f->d, e);
    if (!rc) rc = ledger_adjust(f->d, c, amount, "goodwill", approver, "2026-12-06", by, NULL, e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    return rc;
}

static void credit_note(fixture *f, int64_t inv, int64_t amount, const char *date)
{
    err e;
    int64_t lid, id;
    char num[INVOICE_NUMBER_MAX];
    if (invoices_line_id(f->d, inv, 1, "line", &lid, &e)) fail_msg("line: %s", e.msg);
    credit_line_in cl = {lid, amount};
    if (db_begin(f->d, &e) || invoices_credit(f->d, inv, &cl, 1, "wrong speed", date, "test", &id, num, &e) || db_commit(f->d, &e))
        fail_msg("credit: %s", e.msg);
}

static void expect_balance(fixture *f, int64_t c, int64_t balance, int64_t open, int64_t credit)
{
    ledger_balance b;
    err e;
    if (ledger_balance_of(f->d, c, &b, &e)) fail_msg("balance: %s", e.msg);
    if (b.balance != balance || b.open != open || b.credit != credit)
        fail_msg("balance %lld open %lld credit %lld, expected %lld %lld %lld", (long long)b.balance, (long long)b.open,
                 (long long)b.credit, (long long)balance, (long long)open, (long long)credit);
}

static void on_problem(void *ud, int64_t customer_id, const char *what)
{
    fixture *f = ud;
    if (f->nproblems < 64) snprintf(f->problems[f->nproblems++], 600, "%lld: %s", (long long)customer_id, what);
}

static ledger_report verify(fixture *f, int64_t c)
{
    ledger_report r;
    err e;
    f->nproblems = 0;
    if (ledger_verify(f->d, c, on_problem, f, &r, &e)) fail_msg("verify: %s", e.msg);
    assert_int_equal(r.problems, f->nproblems);
    return r;
}

/* 1 if some problem contains every needle */
static int named(fixture *f, const char *n1, const char *n2)
{
    for (int i = 0; i < f->nproblems; i++)
        if (strstr(f->problems[i], n1) && (!n2 || strstr(f->problems[i], n2))) return 1;
    return 0;
}

static void dump(fixture *f)
{
    for (int i = 0; i < f->nproblems; i++) print_message("  problem: %s\n", f->problems[i]);
}

/* ------------------------------------------------------------ posting */

static void test_post_checks_kind_sign_account_document(void **state)
{
    fixture *f = *state;
    err e;
    ledger_entry ok = {.customer_id = 1, .kind = "payment", .amount = -100, .entry_date = "2026-12-01", .payment_id = 1, .by = "t"};
    /* outside a transaction */
    assert_int_equal(ledger_post(f->d, &ok, NULL, &e), ERR_INTERNAL);
    ledger_entry x = ok;
    x.amount = 100;
    assert_int_equal(post(f, &x, &e), ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "negative"));
    x = ok;
    x.amount = 0;
    assert_int_equal(post(f, &x, &e), ERR_INTERNAL);
    x = ok;
    x.payment_id = 0;
    assert_int_equal(post(f, &x, &e), ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "names its document"));
    x = ok;
    x.account = "deposit";
    assert_int_equal(post(f, &x, &e), ERR_INTERNAL);
    x = ok;
    x.kind = "gift";
    assert_int_equal(post(f, &x, &e), ERR_INTERNAL);
    x = ok;
    x.entry_date = "2026-13-01";
    assert_int_equal(post(f, &x, &e), ERR_INTERNAL);
    ledger_entry adj = {.customer_id = 1, .kind = "adjustment", .amount = -100, .entry_date = "2026-12-01", .reason = "goodwill", .by = "t"};
    assert_int_equal(post(f, &adj, &e), ERR_INTERNAL);
    ledger_entry inv = {.customer_id = 1, .kind = "invoice", .amount = -100, .entry_date = "2026-12-01", .invoice_id = 1, .by = "t"};
    assert_int_equal(post(f, &inv, &e), ERR_INTERNAL);
    /* a reversal has the other sign, and only reversible kinds have one */
    inv.reversal = 1;
    ledger_entry pay_rev = ok;
    pay_rev.amount = 100;
    pay_rev.reversal = 1;
    assert_int_equal(post(f, &pay_rev, &e), ERR_INTERNAL);
    ledger_entry held = {.customer_id = 1, .account = "customer", .kind = "deposit_held", .amount = 100, .entry_date = "2026-12-01",
                         .deposit_id = 1, .by = "t"};
    assert_int_equal(post(f, &held, &e), ERR_INTERNAL);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE ? > 0", 1), 0);
    /* what is right goes in */
    adj.approved_by = "bob";
    assert_int_equal(post(f, &adj, &e), 0);
    held.account = "deposit";
    assert_int_equal(post(f, &held, &e), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE ? > 0", 1), 2);
}

static int post_many(fixture *f, const ledger_entry *les, size_t n, err *e)
{
    err_clear(e);
    int rc = db_begin(f->d, e);
    if (!rc) rc = ledger_post_many(f->d, les, n, e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    return rc;
}

/* Entries posted together go in together, in their order, whatever the
 * number of statements it takes (four a statement); a bad one anywhere
 * leaves none of them. */
static void test_post_many(void **state)
{
    fixture *f = *state;
    err e;
    ledger_entry les[6];
    for (int i = 0; i < 6; i++)
        les[i] = (ledger_entry){.customer_id = 1, .kind = "adjustment", .amount = i + 1, .entry_date = "2026-12-01",
                                .reason = "goodwill", .approved_by = "bob", .by = "t"};
    assert_int_equal(ledger_post_many(f->d, les, 2, &e), ERR_INTERNAL); /* outside a transaction */
    assert_int_equal(post_many(f, les, 6, &e), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE customer_id = ?", 1), 6);
    assert_int_equal(q1i(f, "SELECT SUM(amount) FROM ledger_entries WHERE customer_id = ?", 1), 21);
    /* in order: the n-th id carries amount n */
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE id - (SELECT MIN(id) FROM ledger_entries) + 1 <> amount "
                            "AND customer_id = ?", 1), 0);
    /* one that breaks the rules, in the first statement's share: nothing */
    ledger_entry bad[3] = {les[0], les[1], les[2]};
    bad[2].amount = 0;
    assert_int_equal(post_many(f, bad, 3, &e), ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "of 0"));
    /* one the database refuses (no invoice 999), in the second statement:
     * the first statement's four go too */
    ledger_entry mixed[6] = {les[0], les[1], les[2], les[3], les[4], les[5]};
    mixed[5] = (ledger_entry){.customer_id = 1, .kind = "invoice", .amount = 100, .entry_date = "2026-12-01", .invoice_id = 999,
                              .by = "t"};
    assert_int_not_equal(post_many(f, mixed, 6, &e), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE customer_id = ?", 1), 6);
    /* and one alone is an ordinary post */
    assert_int_equal(post_many(f, les, 1, &e), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE customer_id = ?", 1), 7);
}

static void test_append_only(void **state)
{
    fixture *f = *state;
    err e;
    ledger_entry adj = {.customer_id = 1, .kind = "adjustment", .amount = -100, .entry_date = "2026-12-01", .reason = "goodwill",
                        .approved_by = "bob", .by = "t"};
    assert_int_equal(post(f, &adj, &e), 0);
    assert_int_not_equal(db_exec_script(f->d, "UPDATE ledger_entries SET amount = -1", &e), 0);
    assert_non_null(strstr(e.msg, "append-only"));
    assert_int_not_equal(db_exec_script(f->d, "DELETE FROM ledger_entries", &e), 0);
    assert_non_null(strstr(e.msg, "append-only"));
    assert_int_equal(q1i(f, "SELECT amount FROM ledger_entries WHERE id = ?", 1), -100);
}

static void test_adjust_four_eyes(void **state)
{
    fixture *f = *state;
    err e;
    assert_int_equal(adjust(f, 1, -2000, "alice", "user:alice", &e), ERR_FORBIDDEN);
    assert_string_equal(e.tag, "same_approver");
    assert_string_equal(e.field, "approved_by");
    assert_int_equal(adjust(f, 1, -2000, "ALICE", "user:alice", &e), ERR_FORBIDDEN);
    assert_int_equal(adjust(f, 1, -2000, "", "user:alice", &e), ERR_INVALID);
    assert_string_equal(e.field, "approved_by");
    assert_int_equal(adjust(f, 1, 0, "bob", "user:alice", &e), ERR_INVALID);
    assert_string_equal(e.field, "amount");
    assert_int_equal(adjust(f, 99, -100, "bob", "user:alice", &e), ERR_NOTFOUND);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE ? > 0", 1), 0);
    /* somebody else approves; the operator at the machine approves alone */
    assert_int_equal(adjust(f, 1, -2000, "bob", "user:alice", &e), 0);
    assert_int_equal(adjust(f, 1, 500, "root", "cli:root", &e), 0);
    expect_balance(f, 1, -1500, 0, 1500);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE approved_by IS NOT NULL AND reason = 'goodwill' AND ? > 0", 1), 2);
}

/* Balance, open and credit available (= open - balance, never below 0)
 * after each step, computed by hand:
 *   1 invoice A 100.00                      balance 10000   open 10000  credit    0
 *   2 payment 150.00 (pays A, 50.00 left)   balance -5000   open     0  credit 5000
 *   3 invoice B 80.00                       balance  3000   open  8000  credit 5000
 *   4 credit adjustment -20.00              balance  1000   open  8000  credit 7000
 *   5 invoice C 60.00, credit applied 60.00 balance  7000   open  8000  credit 1000
 *   6 credit note 30.00 on A (paid in full) balance  4000   open  8000  credit 4000
 *   7 debit adjustment +50.00               balance  9000   open  8000  credit    0
 *   8 payment 100.00 (pays B)               balance -1000   open     0  credit 1000
 *   9 invoice D 40.00                       balance  3000   open  4000  credit 1000
 *  10 D written off                         balance -1000   open     0  credit 1000 */
static void test_credit_available_through_a_sequence(void **state)
{
    fixture *f = *state;
    err e;
    int64_t a = invoice(f, 1, "2026-11-01", 10000, 566, 0, 0);
    expect_balance(f, 1, 10000, 10000, 0);
    pay(f, 1, "2026-11-05", 15000, "R1");
    expect_balance(f, 1, -5000, 0, 5000);
    invoice(f, 1, "2026-12-01", 8000, 453, 0, 0);
    expect_balance(f, 1, 3000, 8000, 5000);
    assert_int_equal(adjust(f, 1, -2000, "bob", "user:alice", &e), 0);
    expect_balance(f, 1, 1000, 8000, 7000);
    int64_t c = invoice(f, 1, "2026-12-02", 6000, 340, 6000, 0);
    assert_int_equal(q1i(f, "SELECT paid FROM invoices WHERE id = ?", c), 6000);
    expect_balance(f, 1, 7000, 8000, 1000);
    credit_note(f, a, 3000, "2026-12-03");
    expect_balance(f, 1, 4000, 8000, 4000);
    assert_int_equal(adjust(f, 1, 5000, "bob", "user:alice", &e), 0);
    expect_balance(f, 1, 9000, 8000, 0);
    pay(f, 1, "2026-12-07", 10000, "R2");
    expect_balance(f, 1, -1000, 0, 1000);
    int64_t d = invoice(f, 1, "2026-12-08", 4000, 226, 0, 0);
    expect_balance(f, 1, 3000, 4000, 1000);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_write_off(f->d, d, "bankrupt", "2026-12-09", "test", &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    expect_balance(f, 1, -1000, 0, 1000);
    /* and all of it ties out */
    ledger_report r = verify(f, 0);
    dump(f);
    assert_int_equal(r.problems, 0);
    assert_int_equal(r.customers, 2);
    /* A, payment, B, adjustment, C, credit note, adjustment, payment, D,
     * write-off; on 9 days (both adjustments on 2026-12-06) */
    assert_int_equal(r.entries, 10);
    assert_int_equal(r.days, 9);
}

static void test_list_running_balance(void **state)
{
    fixture *f = *state;
    err e;
    invoice(f, 1, "2026-11-01", 10000, 566, 0, 0);
    pay(f, 1, "2026-11-05", 4000, "R1");
    assert_int_equal(adjust(f, 1, -500, "bob", "user:alice", &e), 0);
    jv *list;
    char next[32];
    assert_int_equal(ledger_list(f->d, 1, NULL, 2, &f->a, &list, next, sizeof next, &e), 0);
    assert_int_equal(jv_len(list), 2);
    assert_string_equal(jv_get(jv_at(list, 0), "kind")->u.str.s, "adjustment");
    assert_int_equal(jv_get(jv_at(list, 0), "balance_after")->u.i, 5500);
    assert_int_equal(jv_get(jv_at(list, 1), "balance_after")->u.i, 6000);
    assert_string_equal(next, "2");
    assert_int_equal(ledger_list(f->d, 1, next, 2, &f->a, &list, next, sizeof next, &e), 0);
    assert_int_equal(jv_len(list), 1);
    assert_string_equal(jv_get(jv_at(list, 0), "invoice")->u.str.s, "INV-2026-000001");
    assert_int_equal(jv_get(jv_at(list, 0), "balance_after")->u.i, 10000);
    assert_string_equal(next, "");
    assert_int_equal(ledger_list(f->d, 1, "x", 2, &f->a, &list, next, sizeof next, &e), ERR_INVALID);
    assert_string_equal(e.field, "cursor");
}

/* Deposits: billed (held +300.00 on the deposit account), then returned:
 * the customer gets 300.00 of credit and the deposit account is empty.
 * Another is forfeited: the deposit account only. One never billed is
 * returned: nothing on the ledger. */
static void test_deposits(void **state)
{
    fixture *f = *state;
    err e;
    invoice(f, 1, "2026-11-01", 10000, 566, 0, 1);
    invoice(f, 1, "2026-11-02", 10000, 566, 0, 2);
    ledger_balance b;
    assert_int_equal(ledger_balance_of(f->d, 1, &b, &e), 0);
    assert_int_equal(b.balance, 70000);
    assert_int_equal(b.deposits_held, 50000);
    pay(f, 1, "2026-11-03", 70000, "R1");
    const char *st[3] = {"returned", "forfeited", "returned"};
    for (int64_t id = 1; id <= 3; id++) {
        assert_int_equal(db_begin(f->d, &e), 0);
        /* the settlement posts its own ledger entries (ledger_deposit_settled) */
        assert_int_equal(deposits_settle(f->d, id, st[id - 1], "2026-12-01", "test", NULL, &e), 0);
        assert_int_equal(db_commit(f->d, &e), 0);
    }
    assert_int_equal(ledger_balance_of(f->d, 1, &b, &e), 0);
    assert_int_equal(b.balance, -30000);
    assert_int_equal(b.credit, 30000);
    assert_int_equal(b.deposits_held, 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE deposit_id = ?", 3), 0);
    assert_int_equal(q1i(f, "SELECT COUNT(*) FROM ledger_entries WHERE deposit_id = ?", 1), 3);
    ledger_report r = verify(f, 1);
    dump(f);
    assert_int_equal(r.problems, 0);
}

/* ------------------------------------------------------------ verify */

/* A customer with everything: invoices (one voided, one with a deposit,
 * one written off), payments, a credit note giving money back, an
 * adjustment, a deposit returned. */
static void rich(fixture *f)
{
    err e;
    int64_t a = invoice(f, 1, "2026-11-01", 12900, 730, 0, 1);
    int64_t v = invoice(f, 1, "2026-11-02", 5000, 283, 0, 0);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_void(f->d, v, "wrong plan", "test", &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    pay(f, 1, "2026-11-05", 50000, "R1");
    credit_note(f, a, 2900, "2026-11-10");
    assert_int_equal(adjust(f, 1, -1000, "bob", "user:alice", &e), 0);
    int64_t w = invoice(f, 1, "2026-12-01", 80000, 4528, 0, 0);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(invoices_write_off(f->d, w, "gone", "2026-12-20", "test", &e), 0);
    assert_int_equal(deposits_settle(f->d, 1, "returned", "2026-12-21", "test", NULL, &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    invoice(f, 2, "2026-12-01", 3000, 170, 0, 0);
    pay(f, 2, "2026-12-02", 1000, "R2");
}

static void test_verify_clean(void **state)
{
    fixture *f = *state;
    rich(f);
    ledger_report r = verify(f, 0);
    dump(f);
    assert_int_equal(r.problems, 0);
    assert_int_equal(r.customers, 2);
    r = verify(f, 1);
    assert_int_equal(r.problems, 0);
    assert_int_equal(r.customers, 1);
}

/* Tampering behind the application's back: whoever has the file can drop
 * the triggers that keep documents and the ledger append-only. */
static void corrupt(fixture *f, const char *script)
{
    sql(f, "DROP TRIGGER ledger_no_update; DROP TRIGGER ledger_no_delete;"
           "DROP TRIGGER invoices_issued_fixed; DROP TRIGGER invoices_issued_kept;"
           "DROP TRIGGER invoice_lines_fixed; DROP TRIGGER invoice_lines_kept;"
           "DROP TRIGGER credit_notes_fixed; DROP TRIGGER credit_notes_kept;"
           "DROP TRIGGER credit_note_lines_fixed; DROP TRIGGER credit_note_lines_kept;"
           "DROP TRIGGER allocations_fixed; DROP TRIGGER allocations_kept;"
           "DROP TRIGGER payments_fixed; DROP TRIGGER payments_kept;");
    sql(f, script);
}

static void test_verify_names_a_changed_amount(void **state)
{
    fixture *f = *state;
    rich(f);
    /* the first invoice is 129.00 + a deposit of 300.00 */
    corrupt(f, "UPDATE ledger_entries SET amount = 43900 WHERE kind = 'invoice' AND invoice_id = 1 AND account = 'customer'");
    ledger_report r = verify(f, 0);
    dump(f);
    assert_true(named(f, "1: invoice INV-2026-000001: its invoice entries add up to 439.00", "says 429.00"));
    assert_true(named(f, "1: balance", NULL));
    assert_true(named(f, "2026-11-01: the invoice entries of the day", NULL));
    assert_false(named(f, "2: ", NULL));
    assert_int_equal(r.problems, 3);
}

static void test_verify_names_a_deleted_allocation(void **state)
{
    fixture *f = *state;
    rich(f);
    /* invoice 1 (429.00) was paid by the 500.00, then credited 29.00:
     * its live allocation is the 400.00 that stayed */
    corrupt(f, "DELETE FROM allocations WHERE reversed_at IS NULL AND invoice_id = 1");
    verify(f, 0);
    dump(f);
    assert_true(named(f, "1: invoice INV-2026-000001: paid 400.00, but its allocations add up to 0.00", NULL));
    assert_int_equal(f->nproblems, 1);
}

static void test_verify_names_a_stray_entry(void **state)
{
    fixture *f = *state;
    rich(f);
    corrupt(f, "INSERT INTO ledger_entries (customer_id, account, kind, amount, entry_date, created_at, created_by) "
               "VALUES (2, 'customer', 'payment', -777, '2026-12-03', 't', 'intruder')");
    verify(f, 0);
    dump(f);
    assert_true(named(f, "2: entry", "payment of -7.77 on 2026-12-03 that no document accounts for"));
    assert_true(named(f, "2: balance", NULL));
    assert_true(named(f, "2: 2026-12-03: the payment entries", NULL));
    assert_false(named(f, "1: ", NULL));
}

static void test_verify_names_more(void **state)
{
    fixture *f = *state;
    rich(f);
    /* an entry moved to another day */
    corrupt(f, "UPDATE ledger_entries SET entry_date = '2026-11-06' WHERE kind = 'payment' AND customer_id = 1");
    verify(f, 1);
    dump(f);
    assert_true(named(f, "2026-11-05: the payment entries of the day add up to 0.00", NULL));
    assert_true(named(f, "2026-11-06: the payment entries", NULL));
    /* an adjustment whose approver disappeared */
    sql(f, "UPDATE ledger_entries SET entry_date = '2026-11-05' WHERE kind = 'payment' AND customer_id = 1;"
           "UPDATE ledger_entries SET approved_by = NULL WHERE kind = 'adjustment'");
    verify(f, 1);
    dump(f);
    assert_true(named(f, "an adjustment of -10.00 without an approver", NULL));
    assert_int_equal(f->nproblems, 1);
    /* a payment's amount changed in its own table; a credit note line; a
     * deposit entry deleted */
    sql(f, "UPDATE ledger_entries SET approved_by = 'bob' WHERE kind = 'adjustment';"
           "UPDATE payments SET amount = 30000 WHERE channel_txn_id = 'R1';"
           "UPDATE credit_note_lines SET amount = 2800, net = 2800 - tax;"
           "DELETE FROM ledger_entries WHERE kind = 'deposit_returned' AND account = 'deposit'");
    verify(f, 1);
    dump(f);
    assert_true(named(f, "payment 1: its payment entries add up to -500.00", "-300.00"));
    assert_true(named(f, "payment 1: 400.00 of it is allocated, more than its 300.00", NULL));
    assert_true(named(f, "credit note CN-2026-000001: its lines add up to 28.00", NULL));
    assert_true(named(f, "deposit 1: no deposit_returned entry on the deposit account", NULL));
    assert_true(named(f, "deposit account 300.00", NULL));
    /* the whole-database run names the same */
    ledger_report r = verify(f, 0);
    assert_true(r.problems >= 5);
    assert_int_equal(r.customers, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_post_checks_kind_sign_account_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adjust_four_eyes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_available_through_a_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_running_balance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deposits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_a_changed_amount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_a_deleted_allocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_a_stray_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_more, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
