/* probe_billrun.c - the floor under a billing run (issue 5): for each
 * subscription of a `bench customers` database, in key order, read it with
 * its customer and plan price in one streaming query, make one Lua call
 * (tariffs.monthly for the month), and insert an invoice and 3 lines.
 * No context, no steps, no validation, no ledger, no number series, no
 * e-bill: what is left when the engine does nothing but the unavoidable.
 * Commits every 8192 invoices or half a second, whichever comes first,
 * with the connection's settings (WAL, synchronous=FULL), as `bill run`
 * does.
 *
 * Built with the tests (tests/bench/CMakeLists.txt): build-rel/tests/bench/probe_billrun
 * after `cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel -j2`,
 * and run it on a scratch copy (it writes):
 *
 *   build-rel/tests/bench/probe_billrun DB RULES_DIR [bare]
 *
 * With "bare", SQLite is also told not to evaluate the schema's CHECK
 * constraints and foreign keys: what those cost, measured the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "db.h"
#include "json.h"
#include "rules.h"

#define BATCH 8192
#define BATCH_S 0.5

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int line(db *d, int64_t inv, int seq, const char *kind, int64_t amount, err *e)
{
    db_stmt *s = db_prepare(d,
                            "INSERT INTO invoice_lines (invoice_id, seq, kind, description, quantity, unit_price, amount, "
                            "tax_category, tax_rate, tax, net, step, rule) VALUES (?, ?, ?, ?, 1, ?, ?, 'internet', 6, ?, ?, "
                            "'probe', 'probe')",
                            e);
    if (!s) return e->code;
    int64_t tax = (amount * 6 + 53) / 106;
    db_bind_int(s, 1, inv);
    db_bind_int(s, 2, seq);
    db_bind_text(s, 3, kind);
    db_bind_text(s, 4, "probe line");
    db_bind_int(s, 5, amount);
    db_bind_int(s, 6, amount);
    db_bind_int(s, 7, tax);
    db_bind_int(s, 8, amount - tax);
    int rc = db_step(d, s, e);
    db_done(s);
    return rc < 0 ? rc : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "bare"))) {
        fprintf(stderr, "usage: %s DB RULES_DIR [bare]\n", argv[0]);
        return 2;
    }
    int bare = argc == 4;
    err e;
    err_clear(&e);
    db *d = NULL;
    rules_snapshot *snap = NULL;
    ruleset *rs = NULL;
    int rc = db_open(argv[1], 0, &d, &e);
    if (!rc) rc = rules_snapshot_read(argv[2], &snap, &e);
    if (!rc) rc = ruleset_load(snap, rules_limits(), 0, &rs, NULL, &e);
    static const char *const bare_sql[] = {"PRAGMA ignore_check_constraints = ON", "PRAGMA foreign_keys = OFF"};
    for (int k = 0; !rc && bare && k < 2; k++) {
        db_stmt *p = db_prepare_once(d, bare_sql[k], &e);
        if (!p) rc = e.code;
        else if (db_step(d, p, &e) < 0) rc = e.code;
        db_finalize(p);
    }
    if (rc) {
        fprintf(stderr, "probe: %s\n", e.msg);
        return 1;
    }
    /* the read: one streaming query in key order, on a statement of its own
     * so that commits in between do not reset it */
    db_stmt *q = db_prepare_once(d,
                                 "SELECT s.id, s.customer_id, c.code, v.price FROM subscriptions s "
                                 "JOIN customers c ON c.id = s.customer_id "
                                 "JOIN product_versions v ON v.product_id = s.product_id "
                                 "AND v.version = (SELECT MAX(version) FROM product_versions WHERE product_id = s.product_id) "
                                 "ORDER BY s.id",
                                 &e);
    if (!q) {
        fprintf(stderr, "probe: %s\n", e.msg);
        return 1;
    }
    jv_arena a;
    jv_arena_init(&a, 0);
    char now[25];
    db_now(now);
    int64_t n = 0, lines = 0;
    double t0 = mono_s();
    int in_tx = 0, nb = 0;
    double tb = t0;
    while (!rc && (rc = db_step(d, q, &e)) == DB_ROW) {
        rc = 0;
        if (!in_tx && !(rc = db_begin(d, &e))) {
            in_tx = 1;
            tb = mono_s();
            nb = 0;
        }
        int64_t sid = db_col_int(q, 0), cid = db_col_int(q, 1), price = db_col_int(q, 3);
        jv_arena_reset(&a);
        jv *ctx = jv_obj_sized(&a, 3), *per = jv_obj_sized(&a, 2), *res = NULL;
        if (!ctx || !per || jv_obj_set_str(&a, per, "from", "2026-11-01") || jv_obj_set_str(&a, per, "to", "2026-11-30") ||
            jv_obj_set_int(&a, ctx, "price", price) || jv_obj_set(&a, ctx, "period", per) ||
            jv_obj_set(&a, ctx, "active", per)) {
            rc = ERR_NOMEM;
            break;
        }
        const jv *args[1] = {ctx};
        if (!rc) rc = rules_call(rs, "tariffs.monthly", args, 1, &a, &res, &e);
        const jv *am = rc ? NULL : jv_get(res, "amount");
        int64_t amount = am && am->kind == JV_INT ? am->u.i : price;
        char number[40];
        snprintf(number, sizeof number, "PRB-%s-%lld", db_col_text(q, 2), (long long)sid);
        if (!rc)
            rc = db_run(d, &e,
                        "INSERT INTO invoices (number, customer_id, subscription_id, period_from, period_to, status, "
                        "issue_date, due_date, net, tax, gross, rules_version, created_at, created_by) "
                        "VALUES (?, ?, ?, '2026-11-01', '2026-11-30', 'open', '2026-12-01', '2026-12-16', ?, ?, ?, ?, ?, "
                        "'probe')",
                        "siiiiiss", number, cid, sid, (int64_t)(3 * amount - 3 * ((amount * 6 + 53) / 106)),
                        (int64_t)(3 * ((amount * 6 + 53) / 106)), (int64_t)(3 * amount), rs->snap->version, now);
        int64_t inv = db_last_id(d);
        for (int k = 1; !rc && k <= 3; k++, lines++) rc = line(d, inv, k, k == 1 ? "recurring" : "addon", amount, &e);
        n++;
        if (!rc && (++nb == BATCH || mono_s() - tb >= BATCH_S)) {
            rc = db_commit(d, &e);
            in_tx = 0;
        }
    }
    if (rc == DB_DONE) rc = 0;
    if (!rc && in_tx) rc = db_commit(d, &e);
    else if (in_tx) db_rollback(d);
    double secs = mono_s() - t0;
    db_finalize(q);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (rc) fprintf(stderr, "probe: %s\n", e.msg);
    else
        printf("probe%s: %lld invoices, %lld lines in %.2f s: %.0f invoices/s; CPU %.1f s; peak RSS %ld MB\n",
               bare ? " (no CHECK, no foreign keys)" : "", (long long)n, (long long)lines, secs, (double)n / secs,
               (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                   (double)ru.ru_stime.tv_usec / 1e6,
               ru.ru_maxrss / 1024);
    jv_arena_free(&a);
    ruleset_unref(rs);
    rules_snapshot_unref(snap);
    db_close(d);
    return rc ? 1 : 0;
}
