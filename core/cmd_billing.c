/* cmd_billing.c - `bandbill bill run|runs|show|preview` and `bench billrun`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "billrun.h"
#include "cli.h"
#include "customers.h"
#include "date.h"
#include "money.h"
#include "vault.h"

/* The version loaded last (what the daemon bills with), or NULL when
 * nothing was ever loaded. */
static int live_rules(db *d, ruleset **out, err *e)
{
    *out = NULL;
    db_stmt *s = db_prepare(d, "SELECT version FROM rule_loads ORDER BY id DESC LIMIT 1", e);
    if (!s) return e->code;
    char ver[RULES_VERSION_LEN] = "";
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) snprintf(ver, sizeof ver, "%s", db_col_text(s, 0));
    db_done(s);
    if (rc < 0) return rc;
    if (!ver[0]) return 0;
    rules_snapshot *snap;
    if ((rc = rules_stored(d, ver, &snap, e))) return rc;
    rc = ruleset_load(snap, rules_limits(), 0, out, NULL, e);
    rules_snapshot_unref(snap);
    return rc;
}

static int folder_rules(const char *dir, ruleset **out, err *e) { return rules_load_folder(dir, out, e); }

static void today_str(char out[11]) { date_format(date_of_time(time(NULL)), out); }

static void fen(int64_t v, char *out) { money_format(v, out); }

/* ------------------------------------------------------------------ progress */

typedef struct prog {
    int tty;
    int64_t last_pct;
    int64_t last_ms;
} prog;

static void on_progress(void *ud, const billrun_progress *p)
{
    prog *g = ud;
    int64_t pct = p->due ? p->done * 100 / p->due : 100;
    double secs = (double)p->elapsed_ms / 1000.0;
    double rate = secs > 0 ? (double)p->done / secs : 0;
    if (g->tty) {
        char bar[41];
        int fill = (int)(pct * 40 / 100);
        for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : '.';
        bar[40] = '\0';
        int64_t left = rate > 0 ? (int64_t)((double)(p->due - p->done) / rate) : 0;
        fprintf(stderr, "\r[%s] %3lld%% %lld/%lld  %.0f/s  ETA %lld:%02lld  %lld failed ", bar, (long long)pct,
                (long long)p->done, (long long)p->due, rate, (long long)(left / 60), (long long)(left % 60),
                (long long)p->failed);
        if (p->done == p->due) fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    /* a log or a pipe: a line every 10% or 10 seconds, and at the end */
    if (p->done < p->due && pct < g->last_pct + 10 && p->elapsed_ms < g->last_ms + 10000) return;
    if (p->done == p->due && g->last_pct == 100) return;
    g->last_pct = pct;
    g->last_ms = p->elapsed_ms;
    fprintf(stderr, "billing: %lld of %lld subscriptions (%lld%%), %lld invoices, %lld failed, %.0f/s\n",
            (long long)p->done, (long long)p->due, (long long)pct, (long long)p->invoiced, (long long)p->failed, rate);
}

/* ------------------------------------------------------------------ report */

static const char *sget(const jv *o, const char *k)
{
    const char *v = jv_get_str(o, k);
    return v ? v : "";
}

static void print_report(const jv *r)
{
    char n1[MONEY_FMT_MAX], n2[MONEY_FMT_MAX], n3[MONEY_FMT_MAX], n4[MONEY_FMT_MAX];
    printf("as of %s%s: %lld due, %lld invoices, %lld failed, %lld skipped, in %.2f s\n", sget(r, "as_of"),
           jv_get(r, "dry_run") && jv_get(r, "dry_run")->u.b ? " (dry run: nothing written)" : "",
           (long long)jv_get_int(r, "due"), (long long)jv_get_int(r, "invoiced"), (long long)jv_get_int(r, "failed"),
           (long long)jv_get_int(r, "skipped"), (double)jv_get_int(r, "duration_ms") / 1000.0);
    if (jv_get_int(r, "still_behind"))
        printf("%lld subscription(s) are still behind after %d periods: run again\n", (long long)jv_get_int(r, "still_behind"),
               BILLRUN_MAX_PERIODS);
    const jv *t = jv_get(r, "totals");
    fen(jv_get_int(t, "net"), n1);
    fen(jv_get_int(t, "tax"), n2);
    fen(jv_get_int(t, "gross"), n3);
    fen(jv_get_int(t, "credit"), n4);
    printf("totals: net %s, tax %s, gross %s, credit applied %s\n", n1, n2, n3, n4);
    const jv *bp = jv_get(r, "by_plan");
    if (jv_len(bp)) {
        printf("\n%-16s %9s %14s %12s %14s\n", "PLAN", "INVOICES", "NET", "TAX", "GROSS");
        for (size_t i = 0; i < jv_len(bp); i++) {
            const jv *p = jv_at(bp, i);
            fen(jv_get_int(p, "net"), n1);
            fen(jv_get_int(p, "tax"), n2);
            fen(jv_get_int(p, "gross"), n3);
            printf("%-16s %9lld %14s %12s %14s\n", sget(p, "plan"), (long long)jv_get_int(p, "invoices"), n1, n2, n3);
        }
    }
    const jv *br = jv_get(r, "by_tax_rate");
    if (jv_len(br)) {
        printf("\n%-6s %9s %14s %12s %14s\n", "RATE", "LINES", "NET", "TAX", "GROSS");
        for (size_t i = 0; i < jv_len(br); i++) {
            const jv *p = jv_at(br, i);
            fen(jv_get_int(p, "net"), n1);
            fen(jv_get_int(p, "tax"), n2);
            fen(jv_get_int(p, "gross"), n3);
            printf("%4lld%%  %9lld %14s %12s %14s\n", (long long)jv_get_int(p, "rate"), (long long)jv_get_int(p, "lines"), n1, n2, n3);
        }
    }
    const jv *fl = jv_get(r, "failures");
    if (jv_len(fl)) {
        printf("\nfailures:\n");
        for (size_t i = 0; i < jv_len(fl); i++) printf("  %s\n", sget(jv_at(fl, i), "message"));
        if ((int64_t)jv_len(fl) < jv_get_int(r, "failed")) printf("  ... %lld more (bill_run_failures)\n", (long long)(jv_get_int(r, "failed") - (int64_t)jv_len(fl)));
    }
    const jv *w = jv_get(r, "what_if");
    if (w) {
        fen(jv_get_int(w, "total_live"), n1);
        fen(jv_get_int(w, "total_candidate"), n2);
        fen(jv_get_int(w, "difference"), n3);
        printf("\nwhat-if with rules %.12s against the live %.12s:\n", sget(w, "candidate_version"), sget(r, "rules_version"));
        printf("  %lld subscriptions compared: %lld change (%lld up, %lld down), %lld unchanged\n",
               (long long)jv_get_int(w, "compared"), (long long)jv_get_int(w, "changed"), (long long)jv_get_int(w, "increased"),
               (long long)jv_get_int(w, "decreased"), (long long)jv_get_int(w, "unchanged"));
        printf("  total billed: live %s, candidate %s, difference %s\n", n1, n2, n3);
        if (jv_get_int(w, "failed_live") || jv_get_int(w, "failed_candidate"))
            printf("  bills refused: %lld with the live rules, %lld with the candidate\n", (long long)jv_get_int(w, "failed_live"),
                   (long long)jv_get_int(w, "failed_candidate"));
        const jv *l = jv_get(w, "largest");
        if (jv_len(l)) {
            printf("  largest changes:\n  %-12s %6s %14s %14s %14s\n", "CUSTOMER", "SUB", "LIVE", "CANDIDATE", "DIFFERENCE");
            for (size_t i = 0; i < jv_len(l); i++) {
                const jv *x = jv_at(l, i);
                const jv *lv = jv_get(x, "live"), *cv = jv_get(x, "candidate");
                if (lv && lv->kind == JV_INT) fen(lv->u.i, n1);
                else snprintf(n1, sizeof n1, "refused");
                if (cv && cv->kind == JV_INT) fen(cv->u.i, n2);
                else snprintf(n2, sizeof n2, "refused");
                fen(jv_get_int(x, "difference"), n3);
                printf("  %-12s %6lld %14s %14s %14s\n", sget(x, "customer"), (long long)jv_get_int(x, "subscription_id"), n1,
                       n2, n3);
            }
        }
    }
}

/* ------------------------------------------------------------------ commands */

int cmd_bill_run(cli *c, err *e)
{
    const char *period = cli_opt_value(c, "period"), *date = cli_opt_value(c, "date");
    const char *explicit_rules = cli_opt_value(c, "rules");
    int dry = cli_opt_value(c, "dry-run") != NULL;
    char as_of[11];
    if (period && date) return err_set(e, ERR_USAGE, "give --period or --date, not both");
    int rc = 0;
    if (period) rc = billrun_period_as_of(period, as_of, e);
    else if (date) {
        int32_t dd;
        if (strlen(date) != 10 || date_parse(date, 10, &dd, e))
            return err_set(e, ERR_USAGE, "--date must be a date YYYY-MM-DD, got '%s'", date);
        snprintf(as_of, sizeof as_of, "%s", date);
    } else {
        today_str(as_of);
    }
    if (rc) return err_set(e, ERR_USAGE, "%s", e->msg);
    db *d = NULL;
    vault *v = NULL;
    ruleset *live = NULL, *cand = NULL;
    if ((rc = cli_open_db(c, &d, e))) return rc;
    rc = live_rules(d, &live, e);
    /* --rules on this command asks for a what-if, never for a real run:
     * without a live version to compare with, the candidate would become
     * the rules billed with and the run would write invoices */
    if (!rc && explicit_rules && !live)
        rc = err_set(e, ERR_CONFLICT,
                     "a what-if compares candidate rules with the live ones, and none are recorded yet: start the "
                     "daemon once, or run `bandbill bill run` without --rules to bill with the configured rules folder");
    if (!rc) rc = cli_open_vault(c, &v, e);
    if (!rc && live && explicit_rules) {
        /* the what-if: candidate rules against the live version */
        rc = folder_rules(c->cfg.rules, &cand, e);
    } else if (!rc && !live) {
        rc = folder_rules(c->cfg.rules, &live, e);
    }
    char by[96];
    cli_actor(by, sizeof by);
    prog g = {.tty = isatty(2), .last_pct = -100};
    billrun_result r;
    memset(&r, 0, sizeof r);
    if (!rc) {
        billrun_opts o = {.as_of = as_of, .period = period, .dry_run = dry, .rs = live, .candidate = cand, .v = v,
                          .trigger = "manual", .by = by, .progress = c->json ? NULL : on_progress, .ud = &g};
        rc = billrun_exec(d, &o, &r, e);
    }
    if (!rc && r.run_id) {
        /* the run is on record; so is who asked for it */
        char rid[32];
        snprintf(rid, sizeof rid, "%lld", (long long)r.run_id);
        jv_arena a;
        jv_arena_init(&a, 0);
        jv *after = jv_obj(&a);
        if (after) {
            jv_obj_set_str(&a, after, "as_of", as_of);
            jv_obj_set_str(&a, after, "status", r.status);
            jv_obj_set_int(&a, after, "invoiced", r.invoiced);
            jv_obj_set_int(&a, after, "failed", r.failed);
        }
        audit_event ev = {.action = "billing.run", .object_type = "bill_run", .object_id = rid, .after = after};
        rc = db_begin(d, e);
        if (!rc) rc = cli_audit(c, d, v, &ev, e);
        if (!rc) rc = db_commit(d, e);
        else db_rollback(d);
        jv_arena_free(&a);
    }
    if (!rc) {
        if (c->json) {
            jw w;
            jw_init(&w, 0);
            jw_obj_open(&w);
            if (r.run_id) jw_kv_int(&w, "run_id", r.run_id);
            else {
                jw_key(&w, "run_id");
                jw_null(&w);
            }
            jw_kv_str(&w, "status", r.status);
            jw_key(&w, "report");
            jw_jv(&w, r.report);
            jw_obj_close(&w);
            rc = cli_print_json(&w, e);
        } else {
            if (r.run_id) printf("run %lld %s\n", (long long)r.run_id, r.status);
            print_report(r.report);
        }
    }
    billrun_result_free(&r);
    ruleset_unref(live);
    ruleset_unref(cand);
    vault_close(v);
    db_close(d);
    return rc;
}

int cmd_bill_runs(cli *c, err *e)
{
    int64_t limit;
    int rc = cli_opt_limit(c, 20, 500, &limit, e);
    if (rc) return rc;
    db *d;
    rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *list;
    char next[32];
    rc = billrun_list(d, NULL, limit, &a, &list, next, sizeof next, e);
    if (!rc) {
        if (c->json) {
            jw w;
            jw_init(&w, 0);
            jw_jv(&w, list);
            rc = cli_print_json(&w, e);
        } else {
            printf("%-6s %-12s %-11s %-9s %8s %9s %7s %8s  %s\n", "RUN", "STATUS", "AS OF", "TRIGGER", "DUE", "INVOICED",
                   "FAILED", "SKIPPED", "STARTED (UTC)");
            for (size_t i = 0; i < jv_len(list); i++) {
                const jv *x = jv_at(list, i);
                printf("%-6lld %-12s %-11s %-9s %8lld %9lld %7lld %8lld  %s\n", (long long)jv_get_int(x, "id"), sget(x, "status"),
                       sget(x, "as_of"), sget(x, "trigger"), (long long)jv_get_int(x, "due"), (long long)jv_get_int(x, "invoiced"),
                       (long long)jv_get_int(x, "failed"), (long long)jv_get_int(x, "skipped"), sget(x, "started_at"));
            }
        }
    }
    jv_arena_free(&a);
    db_close(d);
    return rc;
}

int cmd_bill_show(cli *c, err *e)
{
    char *end;
    long long id = strtoll(c->argv[0], &end, 10);
    if (*end || id <= 0) return err_set(e, ERR_USAGE, "RUN is a run number, got '%s'", c->argv[0]);
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *o;
    rc = billrun_get(d, id, &a, &o, e);
    if (!rc) {
        if (c->json) {
            jw w;
            jw_init(&w, 0);
            jw_jv(&w, o);
            rc = cli_print_json(&w, e);
        } else {
            const jv *p = jv_get(o, "progress");
            printf("run %lld: %s, as of %s, %s by %s, rules %.12s\n", id, sget(o, "status"), sget(o, "as_of"),
                   sget(o, "trigger"), sget(o, "requested_by"), sget(o, "rules_version"));
            printf("started %s, finished %s; %lld of %lld subscriptions done (%lld%%)\n", sget(o, "started_at"),
                   jv_get(o, "finished_at")->kind == JV_STR ? sget(o, "finished_at") : "-", (long long)jv_get_int(p, "done"),
                   (long long)jv_get_int(o, "due"), (long long)jv_get_int(p, "percent"));
            const jv *r = jv_get(o, "report");
            if (r && r->kind == JV_OBJ && jv_get(r, "totals")) print_report(r);
            else if (r && r->kind == JV_OBJ && jv_get(r, "error")) printf("error: %s\n", sget(r, "error"));
        }
    }
    jv_arena_free(&a);
    db_close(d);
    return rc;
}

int cmd_bill_preview(cli *c, err *e)
{
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    int64_t cid;
    ruleset *rs = NULL;
    rc = customers_id_by_code(d, c->argv[0], &cid, e);
    if (!rc) rc = live_rules(d, &rs, e);
    if (!rc && !rs) rc = folder_rules(c->cfg.rules, &rs, e);
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *o = NULL;
    char today[11];
    today_str(today);
    if (!rc) rc = billrun_preview(d, rs, cid, today, &a, &o, e);
    if (!rc) {
        if (c->json) {
            jw w;
            jw_init(&w, 0);
            jw_jv(&w, o);
            rc = cli_print_json(&w, e);
        } else {
            const jv *bills = jv_get(o, "bills");
            char n1[MONEY_FMT_MAX], n2[MONEY_FMT_MAX], n3[MONEY_FMT_MAX];
            printf("customer %s: %zu bill(s) as they would be made now (nothing is written)\n", sget(o, "customer"),
                   jv_len(bills));
            for (size_t i = 0; i < jv_len(bills); i++) {
                const jv *b = jv_at(bills, i), *sv = jv_get(b, "service");
                printf("\nsubscription %lld, plan %s, service %s to %s, issued %s, due %s\n",
                       (long long)jv_get_int(b, "subscription_id"), sget(b, "plan"), sget(sv, "from"), sget(sv, "to"),
                       sget(b, "issue_date"), sget(b, "due_date"));
                const jv *ls = jv_get(b, "lines");
                for (size_t k = 0; k < jv_len(ls); k++) {
                    const jv *l = jv_at(ls, k);
                    fen(jv_get_int(l, "amount"), n1);
                    fen(jv_get_int(l, "tax"), n2);
                    char desc[240];
                    printf("  %2lld %-10s %s %12s  tax %9s (%lld%%)\n", (long long)jv_get_int(l, "seq"), sget(l, "kind"),
                           cli_fit(sget(l, "description"), 56, desc, sizeof desc), n1, n2, (long long)jv_get_int(l, "tax_rate"));
                }
                fen(jv_get_int(b, "net"), n1);
                fen(jv_get_int(b, "tax"), n2);
                fen(jv_get_int(b, "gross"), n3);
                printf("  net %s, tax %s, gross %s", n1, n2, n3);
                fen(jv_get_int(b, "amount_due"), n1);
                printf(", amount due %s\n", n1);
            }
            const jv *fl = jv_get(o, "failures");
            for (size_t i = 0; i < jv_len(fl); i++) printf("\nrefused: %s\n", sget(jv_at(fl, i), "message"));
        }
    }
    jv_arena_free(&a);
    ruleset_unref(rs);
    db_close(d);
    return rc;
}

/* ------------------------------------------------------------------ bench */

#define BENCH_BILLRUN_DEFAULT 100000
#define BENCH_BILLRUN_MAX 10000000

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The customers are made by `bench customers` in a child process: its page
 * cache and allocator settings are tuned for a bulk load, and the peak
 * memory this bench reports must be the billing run's alone. */
static int bench_create(cli *c, long long n, err *e)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return err_set(e, ERR_IO, "bench billrun: cannot start the process that creates the customers");
    if (pid == 0) {
        cli sub = *c;
        char count[32];
        snprintf(count, sizeof count, "%lld", n);
        sub.nopts = 0;
        sub.opts[sub.nopts].name = "count";
        sub.opts[sub.nopts++].value = count;
        sub.opts[sub.nopts].name = "lookups";
        sub.opts[sub.nopts++].value = "0";
        /* with --json, stdout carries this bench's document only */
        if (c->json) dup2(2, 1);
        err ce;
        err_clear(&ce);
        int rc = cmd_bench_customers(&sub, &ce);
        if (rc) fprintf(stderr, "bench billrun: creating the customers: %s\n", ce.msg);
        /* what cli_main does after a command that audited: the load is on
         * record (one audit record), and the chain's head is anchored */
        if (sub.audited) cli_anchor(&sub);
        fflush(stdout);
        fflush(stderr);
        /* a forked child ends without running the parent's exit handlers
         * or flushing its copies of the parent's buffers twice */
        _exit(rc ? 1 : 0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return err_set(e, ERR_IO, "bench billrun: lost the process that creates the customers");
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return err_set(e, ERR_INTERNAL, "bench billrun: creating the customers failed");
    return 0;
}

/* Subscriptions of the bench start on days up to two years back and have
 * never been billed: a run would catch up every month since. The bench
 * measures one month, so the postpaid monthly ones are put where a running
 * system has them, billed through the month before (`prev_end`) and due on
 * as_of. Prepaid terms are left as made: their renewals are due (those paid
 * through more than a year back catch up a second term). Touches only
 * subscriptions never billed. */
static int bench_one_period(db *d, const char *as_of, const char *prev_end, int64_t *moved, err *e)
{
    int rc = db_begin(d, e);
    if (rc) return rc;
    rc = db_run(d, e,
                "UPDATE subscriptions SET billed_through = ?, next_bill_date = ? WHERE billing = 'postpaid' "
                "AND period = 'month' AND billed_through IS NULL AND next_bill_date < ? AND start_date <= ?",
                "ssss", prev_end, as_of, as_of, prev_end);
    *moved = rc ? 0 : db_changes(d);
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    return rc;
}

int cmd_bench_billrun(cli *c, err *e)
{
    const char *cnt = cli_opt_value(c, "customers");
    int dry = cli_opt_value(c, "dry-run") != NULL, reuse = cli_opt_value(c, "reuse") != NULL;
    char *end = NULL;
    long long n = cnt ? strtoll(cnt, &end, 10) : BENCH_BILLRUN_DEFAULT;
    if (cnt && (!*cnt || *end || n < 1 || n > BENCH_BILLRUN_MAX))
        return err_set(e, ERR_USAGE, "--customers must be a whole number from 1 to %d, not '%s'", BENCH_BILLRUN_MAX, cnt);
    int rc = 0;
    if (!reuse && (rc = bench_create(c, n, e))) return rc;

    /* the month being billed: this one, as the run on the 1st of the next
     * month bills it */
    char today[11], period[8], as_of[11], prev_end[11];
    today_str(today);
    snprintf(period, sizeof period, "%.7s", today);
    if ((rc = billrun_period_as_of(period, as_of, e))) return rc;
    int y, m;
    sscanf(today, "%4d-%2d", &y, &m);
    date_format(date_from_ymd(y, m, 1) - 1, prev_end);

    db *d = NULL;
    vault *v = NULL;
    ruleset *rs = NULL;
    int64_t subs = 0, moved = 0;
    if ((rc = cli_open_db(c, &d, e))) return rc;
    rc = cli_open_vault(c, &v, e);
    if (!rc) rc = db_get_int(d, e, &subs, "SELECT COUNT(*) FROM subscriptions", "");
    if (!rc && subs == 0) rc = err_set(e, ERR_USAGE, "--reuse: %s has no subscriptions; run without --reuse first", c->cfg.db);
    if (!rc) rc = bench_one_period(d, as_of, prev_end, &moved, e);
    /* the rules a `bill run` would use */
    if (!rc) rc = live_rules(d, &rs, e);
    if (!rc && !rs) rc = folder_rules(c->cfg.rules, &rs, e);
    char by[96];
    cli_actor(by, sizeof by);
    if (!rc && !c->json) {
        printf("bench billrun: %s over %lld subscriptions in %s, as of %s%s\n", dry ? "dry run" : "billing run",
               (long long)subs, c->cfg.db, as_of, dry ? " (nothing written)" : "");
        fflush(stdout);
    }
    billrun_result r;
    memset(&r, 0, sizeof r);
    double t0 = mono_s(), secs = 0;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    if (!rc) {
        /* exactly what `bill run --period` does */
        billrun_opts o = {.as_of = as_of, .period = period, .dry_run = dry, .rs = rs, .v = v, .trigger = "manual", .by = by};
        rc = billrun_exec(d, &o, &r, e);
    }
    secs = mono_s() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6;
    double sys = (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

    /* not timed: the run is on record as `bill run` puts it */
    if (!rc && r.run_id) {
        char rid[32];
        snprintf(rid, sizeof rid, "%lld", (long long)r.run_id);
        jv_arena aa;
        jv_arena_init(&aa, 0);
        jv *after = jv_obj(&aa);
        if (!after || jv_obj_set_str(&aa, after, "as_of", as_of) || jv_obj_set_str(&aa, after, "status", r.status) ||
            jv_obj_set_int(&aa, after, "invoiced", r.invoiced) || jv_obj_set_int(&aa, after, "failed", r.failed))
            rc = ERR_NOMEM_RET(e);
        audit_event ev = {.action = "billing.run", .object_type = "bill_run", .object_id = rid, .after = after};
        if (!rc) rc = db_begin(d, e);
        if (!rc) {
            rc = cli_audit(c, d, v, &ev, e);
            if (!rc) rc = db_commit(d, e);
            else db_rollback(d);
        }
        jv_arena_free(&aa);
    }
    /* not timed: what the run wrote (a dry run: what it would have) */
    int64_t lines = 0, credit_lines = 0, ledger = 0, outbox = 0;
    const jv *rates = rc ? NULL : jv_get(r.report, "by_tax_rate");
    for (size_t i = 0; i < jv_len(rates); i++) {
        const jv *x = jv_get(jv_at(rates, i), "lines");
        if (x && x->kind == JV_INT) lines += x->u.i;
    }
    if (!rc && r.run_id) {
        rc = db_get_int(d, e, &lines,
                        "SELECT COUNT(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.bill_run_id = ?", "i",
                        r.run_id);
        if (!rc)
            rc = db_get_int(d, e, &credit_lines,
                            "SELECT COUNT(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                            "WHERE i.bill_run_id = ? AND l.kind = 'credit'",
                            "i", r.run_id);
        if (!rc)
            rc = db_get_int(d, e, &ledger,
                            "SELECT COUNT(*) FROM ledger_entries g JOIN invoices i ON i.id = g.invoice_id WHERE i.bill_run_id = ?",
                            "i", r.run_id);
        if (!rc)
            rc = db_get_int(d, e, &outbox,
                            "SELECT COUNT(*) FROM outbox WHERE event = 'invoice_issued' AND created_at >= "
                            "(SELECT started_at FROM bill_runs WHERE id = ?)",
                            "i", r.run_id);
    }
    double rate = secs > 0 ? (double)r.invoiced / secs : 0;
    long rss_mb = ru1.ru_maxrss / 1024;
    if (!rc) {
        if (c->json) {
            jw w;
            jw_init(&w, 0);
            jw_obj_open(&w);
            jw_kv_bool(&w, "dry_run", dry);
            jw_kv_str(&w, "as_of", as_of);
            jw_kv_int(&w, "subscriptions", subs);
            jw_kv_int(&w, "due", r.due);
            jw_kv_int(&w, "invoices", r.invoiced);
            jw_kv_int(&w, "failed", r.failed);
            jw_kv_int(&w, "skipped", r.skipped);
            jw_kv_int(&w, "lines", lines);
            jw_kv_int(&w, "ledger_entries", ledger);
            jw_kv_int(&w, "outbox_messages", outbox);
            char num[64];
            static const char *const keys[] = {"elapsed_s", "user_cpu_s", "system_cpu_s"};
            double vals[] = {secs, cpu, sys};
            for (int k = 0; k < 3; k++) {
                snprintf(num, sizeof num, "%.3f", vals[k]);
                jw_key(&w, keys[k]);
                jw_raw_num(&w, num);
            }
            snprintf(num, sizeof num, "%.0f", rate);
            jw_key(&w, "invoices_per_s");
            jw_raw_num(&w, num);
            jw_kv_int(&w, "peak_rss_mb", rss_mb);
            jw_kv_int(&w, "compute_ms", r.compute_ms);
            jw_kv_int(&w, "issue_ms", r.issue_ms);
            jw_kv_int(&w, "commit_ms", r.commit_ms);
            jw_kv_int(&w, "ahead_ms", r.ahead_ms);
            jw_kv_int(&w, "recomputed", r.recomputed);
            jw_kv_int(&w, "writer_cpu_ms", r.writer_cpu_ms);
            jw_kv_int(&w, "feeder_cpu_ms", r.feeder_cpu_ms);
            jw_obj_close(&w);
            rc = cli_print_json(&w, e);
        } else {
            printf("%s: %lld due, %lld invoices, %lld failed, %lld skipped in %.2f s: %.0f invoices/s\n",
                   dry ? "dry run" : "run", (long long)r.due, (long long)r.invoiced, (long long)r.failed, (long long)r.skipped,
                   secs, rate);
            if (r.run_id)
                printf("  written: %lld lines (%lld of them credit), %lld ledger entries, %lld e-bill messages\n",
                       (long long)lines, (long long)credit_lines, (long long)ledger, (long long)outbox);
            else
                printf("  computed: %lld taxed lines (nothing written)\n", (long long)lines);
            printf("  CPU: user %.1f s, system %.1f s (the issuing thread %.1f s, the feeder %.1f s); peak RSS %ld MB\n",
                   cpu, sys, (double)r.writer_cpu_ms / 1000, (double)r.feeder_cpu_ms / 1000, rss_mb);
            printf("  time: computing bills %.1f s, issuing them %.1f s, committing batches %.1f s\n",
                   (double)r.compute_ms / 1000, (double)r.issue_ms / 1000, (double)r.commit_ms / 1000);
            if (r.ahead_ms || r.recomputed)
                printf("  computed ahead on a second thread: %.1f s; %lld of those computed again (a customer's later "
                       "bill, or another writer's commit)\n", (double)r.ahead_ms / 1000, (long long)r.recomputed);
            if (moved) printf("  (%lld never-billed postpaid subscriptions were set as billed through %s first)\n", (long long)moved, prev_end);
            if (!r.due) printf("  nothing was due: this database was billed for %s already (bench a fresh copy)\n", period);
        }
    }
    billrun_result_free(&r);
    ruleset_unref(rs);
    vault_close(v);
    db_close(d);
    return rc;
}
