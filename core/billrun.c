/* billrun.c - billing passes, dry runs, what-ifs, previews and the billing
 * jobs (see billrun.h). */
#include "billrun.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "billing.h"
#include "date.h"
#include "invoices.h"
#include "log.h"
#include "rules.h"
#include "scheduler.h"
#include "vault.h"

#define LEASE_JOB "billing.pass"
#define LEASE_MS (10 * 60 * 1000)
#define BATCH_MS 500

/* ------------------------------------------------------------------ lease */

void billrun_holder(char *out, size_t n)
{
    static atomic_int seq;
    char host[128] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(out, n, "%s:%d:billing-%d", host, (int)getpid(), atomic_fetch_add(&seq, 1) + 1);
}

/* A holder on this machine whose process is gone holds nothing. */
static int holder_dead(const char *holder)
{
    char host[128] = "?";
    gethostname(host, sizeof host - 1);
    size_t hl = strlen(host);
    if (strncmp(holder, host, hl) != 0 || holder[hl] != ':') return 0;
    int pid = atoi(holder + hl + 1);
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

static int lease_take(db *d, const char *holder, err *e)
{
    char now[25], until[25];
    int64_t ms = db_now_ms();
    db_format_time(ms, now);
    db_format_time(ms + LEASE_MS, until);
    int rc = db_begin(d, e);
    if (rc) return rc;
    rc = db_run(d, e, "INSERT INTO job_state (job) VALUES (?) ON CONFLICT (job) DO NOTHING", "s", LEASE_JOB);
    db_stmt *q = rc ? NULL : db_prepare(d, "SELECT lease_holder FROM job_state WHERE job = ? AND lease_holder IS NOT NULL", e);
    char held[160] = "";
    if (!rc && !q) rc = e->code;
    if (!rc) {
        db_bind_text(q, 1, LEASE_JOB);
        int s = db_step(d, q, e);
        if (s == DB_ROW) snprintf(held, sizeof held, "%s", db_col_text(q, 0));
        db_done(q);
        if (s < 0) rc = s;
    }
    if (!rc && held[0] && strcmp(held, holder) && holder_dead(held)) {
        log_msg(LOG_WARN, "billing_lease_recovered", "billing pass was held by %s, which is gone", held);
        rc = db_run(d, e, "UPDATE job_state SET lease_holder = NULL, lease_until = NULL WHERE job = ?", "s", LEASE_JOB);
    }
    if (!rc)
        rc = db_run(d, e,
                    "UPDATE job_state SET lease_holder = ?, lease_until = ? "
                    "WHERE job = ? AND (lease_until IS NULL OR lease_until < ? OR lease_holder = ?)",
                    "sssss", holder, until, LEASE_JOB, now, holder);
    if (!rc && db_changes(d) == 0) {
        int64_t running = 0;
        err ign;
        db_get_int(d, &ign, &running, "SELECT MAX(id) FROM bill_runs WHERE status = 'running'", "");
        rc = err_field(e, ERR_BUSY, "run_in_progress", "",
                       running ? "a billing run is in progress (run %lld); one pass at a time"
                               : "a billing pass is in progress (a dry run or what-if%.0lld); one pass at a time",
                       (long long)running);
    }
    if (!rc) rc = db_commit(d, e);
    if (rc) db_rollback(d);
    return rc;
}

/* Renews the lease inside the caller's transaction. */
static int lease_renew(db *d, const char *holder, err *e)
{
    char until[25];
    db_format_time(db_now_ms() + LEASE_MS, until);
    return db_run(d, e, "UPDATE job_state SET lease_until = ? WHERE job = ? AND lease_holder = ?", "sss", until, LEASE_JOB,
                  holder);
}

static void lease_give(db *d, const char *holder)
{
    err e;
    if (db_in_tx(d)) db_rollback(d);
    db_run(d, &e, "UPDATE job_state SET lease_holder = NULL, lease_until = NULL WHERE job = ? AND lease_holder = ?", "ss",
           LEASE_JOB, holder);
}

/* ------------------------------------------------------------------ dates */

int billrun_period_as_of(const char *period, char as_of[11], err *e)
{
    int y, m;
    char tail;
    if (!period || strlen(period) != 7 || sscanf(period, "%4d-%2d%c", &y, &m, &tail) != 2 || period[4] != '-' ||
        m < 1 || m > 12 || y < 1970 || y > 9998)
        return err_field(e, ERR_INVALID, "invalid_period", "period", "period must be a month \"YYYY-MM\", got '%s'",
                         period ? period : "");
    if (m == 12) {
        y++;
        m = 1;
    } else {
        m++;
    }
    date_format(date_from_ymd(y, m, 1), as_of);
    return 0;
}

/* ------------------------------------------------------------------ report */

typedef struct plan_total {
    char plan[49];
    int64_t invoices, net, tax, gross, credit;
} plan_total;

typedef struct rate_total {
    int64_t lines, net, tax, gross;
} rate_total;

typedef struct diff_row {
    int64_t sub_id;
    char customer[32];
    int64_t live, cand;       /* gross over the periods of this pass */
    int live_failed, cand_failed;
} diff_row;

typedef struct acc {
    plan_total *plans;
    size_t nplans, cplans;
    rate_total rates[101];
    int64_t invoices, net, tax, gross, credit;
    int64_t due, done, invoiced, failed, skipped, behind;
    jv_arena *ra;            /* report arena */
    jv *failures;            /* up to BILLRUN_REPORT_FAILURES */
    /* what-if */
    /* the largest differences only, largest first: a what-if over a million
     * customers that changes every bill keeps ten rows, not a million */
    diff_row diffs[BILLRUN_REPORT_LARGEST];
    size_t ndiffs;
    int64_t changed;
    int64_t compared, total_live, total_cand, increased, decreased, failed_live, failed_cand;
} acc;

static int add_bill(acc *A, const bill *b, err *e)
{
    plan_total *p = NULL;
    for (size_t i = 0; i < A->nplans; i++)
        if (!strcmp(A->plans[i].plan, b->plan)) p = &A->plans[i];
    if (!p) {
        if (A->nplans == A->cplans) {
            size_t nc = A->cplans ? A->cplans * 2 : 16;
            plan_total *np = realloc(A->plans, nc * sizeof *np);
            if (!np) return ERR_NOMEM_RET(e);
            A->plans = np;
            A->cplans = nc;
        }
        p = &A->plans[A->nplans++];
        memset(p, 0, sizeof *p);
        snprintf(p->plan, sizeof p->plan, "%s", b->plan);
    }
    p->invoices++;
    p->net += b->net;
    p->tax += b->tax;
    p->gross += b->gross;
    p->credit += b->credit;
    A->invoices++;
    A->net += b->net;
    A->tax += b->tax;
    A->gross += b->gross;
    A->credit += b->credit;
    for (size_t i = 0; i < b->nlines; i++) {
        const invoice_line_in *L = &b->lines[i];
        if (!strcmp(L->kind, "credit") || L->tax_rate < 0 || L->tax_rate > 100) continue;
        rate_total *r = &A->rates[L->tax_rate];
        r->lines++;
        r->net += L->amount - L->tax;
        r->tax += L->tax;
        r->gross += L->amount;
    }
    return 0;
}

static int add_failure(acc *A, const char *customer, int64_t sub_id, const char *period_from, const char *code,
                       const bill_error *f, const char *message)
{
    if (jv_len(A->failures) >= BILLRUN_REPORT_FAILURES) return 0;
    jv_arena *a = A->ra;
    jv *o = jv_obj_sized(a, 9);
    if (!o) return ERR_NOMEM;
    int rc = jv_obj_set_str(a, o, "customer", customer);
    rc |= jv_obj_set_int(a, o, "subscription_id", sub_id);
    rc |= jv_obj_set(a, o, "period_from", period_from && period_from[0] ? jv_str(a, period_from) : jv_null(a));
    rc |= jv_obj_set_str(a, o, "code", code);
    rc |= jv_obj_set(a, o, "step", f && f->step[0] ? jv_str(a, f->step) : jv_null(a));
    rc |= jv_obj_set(a, o, "rule", f && f->rule[0] ? jv_str(a, f->rule) : jv_null(a));
    rc |= jv_obj_set(a, o, "file", f && f->file[0] ? jv_str(a, f->file) : jv_null(a));
    rc |= jv_obj_set(a, o, "line", f && f->line ? jv_int(a, f->line) : jv_null(a));
    rc |= jv_obj_set_str(a, o, "message", message);
    rc |= jv_arr_push(a, A->failures, o);
    return rc ? ERR_NOMEM : 0;
}

static int cmp_diff(const void *pa, const void *pb)
{
    const diff_row *a = pa, *b = pb;
    int64_t da = a->cand - a->live, db_ = b->cand - b->live;
    if (da < 0) da = -da;
    if (db_ < 0) db_ = -db_;
    if (da != db_) return da > db_ ? -1 : 1;
    return a->sub_id < b->sub_id ? -1 : a->sub_id > b->sub_id;
}

static jv *build_report(acc *A, const billrun_opts *o, const char *rules_version, int64_t ms, err *e)
{
    jv_arena *a = A->ra;
    jv *r = jv_obj_sized(a, 20);
    if (!r) return NULL;
    int rc = jv_obj_set_str(a, r, "as_of", o->as_of);
    rc |= jv_obj_set(a, r, "period", o->period ? jv_str(a, o->period) : jv_null(a));
    rc |= jv_obj_set_bool(a, r, "dry_run", o->dry_run || o->candidate);
    rc |= jv_obj_set_str(a, r, "rules_version", rules_version);
    rc |= jv_obj_set_int(a, r, "due", A->due);
    rc |= jv_obj_set_int(a, r, "done", A->done);
    rc |= jv_obj_set_int(a, r, "invoiced", A->invoiced);
    rc |= jv_obj_set_int(a, r, "failed", A->failed);
    rc |= jv_obj_set_int(a, r, "skipped", A->skipped);
    rc |= jv_obj_set_int(a, r, "still_behind", A->behind);
    rc |= jv_obj_set_int(a, r, "duration_ms", ms);
    jv *t = jv_obj_sized(a, 6);
    rc |= !t;
    if (t) {
        rc |= jv_obj_set_int(a, t, "invoices", A->invoices);
        rc |= jv_obj_set_int(a, t, "net", A->net);
        rc |= jv_obj_set_int(a, t, "tax", A->tax);
        rc |= jv_obj_set_int(a, t, "gross", A->gross);
        rc |= jv_obj_set_int(a, t, "credit", A->credit);
        rc |= jv_obj_set_int(a, t, "amount_due", A->gross - A->credit);
        rc |= jv_obj_set(a, r, "totals", t);
    }
    jv *bp = jv_arr_sized(a, A->nplans);
    rc |= !bp;
    for (size_t i = 0; bp && i < A->nplans; i++) {
        jv *p = jv_obj_sized(a, 6);
        if (!p) return NULL;
        rc |= jv_obj_set_str(a, p, "plan", A->plans[i].plan);
        rc |= jv_obj_set_int(a, p, "invoices", A->plans[i].invoices);
        rc |= jv_obj_set_int(a, p, "net", A->plans[i].net);
        rc |= jv_obj_set_int(a, p, "tax", A->plans[i].tax);
        rc |= jv_obj_set_int(a, p, "gross", A->plans[i].gross);
        rc |= jv_arr_push(a, bp, p);
    }
    rc |= jv_obj_set(a, r, "by_plan", bp);
    jv *br = jv_arr(a);
    rc |= !br;
    for (int i = 0; br && i <= 100; i++) {
        if (!A->rates[i].lines) continue;
        jv *p = jv_obj_sized(a, 5);
        if (!p) return NULL;
        rc |= jv_obj_set_int(a, p, "rate", i);
        rc |= jv_obj_set_int(a, p, "lines", A->rates[i].lines);
        rc |= jv_obj_set_int(a, p, "net", A->rates[i].net);
        rc |= jv_obj_set_int(a, p, "tax", A->rates[i].tax);
        rc |= jv_obj_set_int(a, p, "gross", A->rates[i].gross);
        rc |= jv_arr_push(a, br, p);
    }
    rc |= jv_obj_set(a, r, "by_tax_rate", br);
    rc |= jv_obj_set(a, r, "failures", A->failures);
    if (o->candidate) {
        jv *w = jv_obj_sized(a, 12);
        if (!w) return NULL;
        rc |= jv_obj_set_str(a, w, "candidate_version", o->candidate->snap->version);
        rc |= jv_obj_set_int(a, w, "compared", A->compared);
        rc |= jv_obj_set_int(a, w, "changed", A->changed);
        rc |= jv_obj_set_int(a, w, "unchanged", A->compared - A->changed);
        rc |= jv_obj_set_int(a, w, "increased", A->increased);
        rc |= jv_obj_set_int(a, w, "decreased", A->decreased);
        rc |= jv_obj_set_int(a, w, "failed_live", A->failed_live);
        rc |= jv_obj_set_int(a, w, "failed_candidate", A->failed_cand);
        rc |= jv_obj_set_int(a, w, "total_live", A->total_live);
        rc |= jv_obj_set_int(a, w, "total_candidate", A->total_cand);
        rc |= jv_obj_set_int(a, w, "difference", A->total_cand - A->total_live);
        jv *l = jv_arr(a);
        rc |= !l;
        for (size_t i = 0; l && i < A->ndiffs; i++) {
            const diff_row *d = &A->diffs[i];
            jv *x = jv_obj_sized(a, 6);
            if (!x) return NULL;
            rc |= jv_obj_set_str(a, x, "customer", d->customer);
            rc |= jv_obj_set_int(a, x, "subscription_id", d->sub_id);
            rc |= jv_obj_set(a, x, "live", d->live_failed ? jv_null(a) : jv_int(a, d->live));
            rc |= jv_obj_set(a, x, "candidate", d->cand_failed ? jv_null(a) : jv_int(a, d->cand));
            rc |= jv_obj_set_int(a, x, "difference", d->cand - d->live);
            rc |= jv_arr_push(a, l, x);
        }
        rc |= jv_obj_set(a, w, "largest", l);
        rc |= jv_obj_set(a, r, "what_if", w);
    }
    if (rc) {
        ERR_NOMEM_RET(e);
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------------ pass */

typedef struct pass {
    int64_t ns_compute, ns_issue, ns_commit;   /* where the time went */
    int64_t ns_ahead;         /* computing on the feeder thread */
    int64_t recomputed;       /* bills the feeder computed that were computed again here */
    db *d;
    const billrun_opts *o;
    billing_cache *live, *cand;
    jv_arena ba;              /* one bill at a time */
    acc A;
    int64_t run_id;
    char by[128];
} pass;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time of the calling thread: what each thread of a pass costs, which
 * a busy machine's wall clock hides. */
static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int record_failure(pass *P, int64_t sub_id, int64_t customer_id, const char *customer, const char *period_from,
                          const char *code, const bill_error *f, const char *message, err *e)
{
    int rc = add_failure(&P->A, customer, sub_id, period_from, code, f, message);
    if (rc) return ERR_NOMEM_RET(e);
    if (P->o->dry_run || P->o->candidate || !P->run_id) return 0;
    char now[25];
    db_now(now);
    rc = db_begin(P->d, e);
    if (rc) return rc;
    rc = db_run(P->d, e,
                "INSERT INTO bill_run_failures (run_id, subscription_id, customer_id, period_from, code, message, rule, "
                "file, line, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, subscription_id) DO NOTHING",
                "iiisssssis", P->run_id, sub_id, customer_id, period_from && period_from[0] ? period_from : NULL, code,
                message, f && f->rule[0] ? f->rule : NULL, f && f->file[0] ? f->file : NULL, (int64_t)(f ? f->line : 0),
                now);
    if (!rc) rc = db_commit(P->d, e);
    else db_rollback(P->d);
    return rc;
}

static int customer_of(db *d, int64_t sub_id, int64_t *cid, char code[32])
{
    err e;
    db_stmt *s = db_prepare(d, "SELECT c.id, c.code FROM subscriptions s JOIN customers c ON c.id = s.customer_id WHERE s.id = ?", &e);
    if (!s) return -1;
    db_bind_int(s, 1, sub_id);
    int rc = db_step(d, s, &e);
    if (rc == DB_ROW) {
        *cid = db_col_int(s, 0);
        snprintf(code, 32, "%s", db_col_text(s, 1));
    }
    db_done(s);
    return rc == DB_ROW ? 0 : -1;
}

/* Bills one subscription, period after period, inside the caller's batch
 * transaction: each bill in a savepoint. With rs/bc given (what-if) it
 * only sums gross into *total and leaves everything rolled back.
 * Returns 0 (failures are recorded, not returned) or a fatal error. */
static int bill_one(pass *P, int64_t sub_id, ruleset *rs, billing_cache *bc, int record, int64_t *total, int *failed,
                    bill *ahead, invoice_prep *ahead_prep, err *e)
{
    const billrun_opts *o = P->o;
    int issued = 0, rc = 0;
    *failed = 0;
    if (total) *total = 0;
    for (int k = 0; k < BILLRUN_MAX_PERIODS; k++) {
        bill local, *bp = &local;
        bill_error f;
        err be;
        err_clear(&be);
        int64_t t0 = mono_ns();
        if (k == 0 && ahead) {
            /* computed on the feeder thread from the same facts */
            bp = ahead;
            rc = 0;
        } else {
            jv_arena_reset(&P->ba);
            rc = billing_compute(P->d, rs, bc, sub_id, o->as_of, P->by, &P->ba, bp, &f, &be);
        }
        int64_t t1 = mono_ns();
        P->ns_compute += t1 - t0;
        if (rc == ERR_NOTFOUND && k == 0 && !bp->customer_id) return 0; /* gone since the list was read */
        if (!rc && bp->finished) break;
        if (rc) {
            if (rc == ERR_NOMEM || rc == ERR_DB || rc == ERR_BUSY || rc == ERR_IO) {
                *e = be;
                return rc;
            }
            *failed = 1;
            if (record) {
                int64_t cid = bp->customer_id;
                char code[32];
                snprintf(code, sizeof code, "%s", bp->customer);
                if (!cid) customer_of(P->d, sub_id, &cid, code);
                const char *msg = rc == ERR_RULE && f.message[0] ? f.message : be.msg;
                char m2[1200];
                if (rc != ERR_RULE) {
                    snprintf(m2, sizeof m2, "customer %s, subscription %lld: %s", code, (long long)sub_id, be.msg);
                    msg = m2;
                }
                int r2 = record_failure(P, sub_id, cid, code, bp->period_from, rc == ERR_RULE ? f.code : err_tag(&be),
                                        rc == ERR_RULE ? &f : NULL, msg, e);
                if (r2) return r2;
                /* the periods billed before this one stand: they are in the
                 * totals, so they count as invoiced too */
                P->A.invoiced += issued;
            }
            return 0;
        }
        if ((rc = db_begin(P->d, e))) return rc;
        if (bp->nothing) {
            rc = db_run(P->d, &be, "UPDATE subscriptions SET next_bill_date = ?, billed_through = ? WHERE id = ?", "ssi",
                        bp->next_bill_date, bp->billed_through, sub_id);
        } else {
            bp->inv.bill_run_id = P->run_id;
            /* the subscription moves on in the invoice's own write */
            bp->inv.next_bill_date = bp->next_bill_date;
            int64_t id = 0;
            char number[INVOICE_NUMBER_MAX];
            /* what issuing reads, the feeder read with the bill */
            rc = k == 0 && ahead_prep ? invoices_issue_prepared(P->d, &bp->inv, ahead_prep, &id, number, &be)
                                      : invoices_issue(P->d, o->v, &bp->inv, &id, number, &be);
            if (rc == ERR_CONFLICT && !strcmp(be.tag, "already_billed")) {
                /* made by an earlier pass or by hand: move on past it */
                db_rollback(P->d);
                if ((rc = db_begin(P->d, e))) return rc;
                bp->nothing = 1;
                rc = db_run(P->d, &be, "UPDATE subscriptions SET next_bill_date = ? WHERE id = ?", "si", bp->next_bill_date,
                            sub_id);
            } else if (!rc) {
                if (total) *total += bp->gross;
                if (record && (rc = add_bill(&P->A, bp, e))) {
                    db_rollback(P->d);
                    return rc;
                }
            }
        }
        if (rc) {
            db_rollback(P->d);
            if (rc == ERR_NOMEM || rc == ERR_DB || rc == ERR_BUSY || rc == ERR_IO) {
                *e = be;
                return rc;
            }
            *failed = 1;
            if (record) {
                char msg[1200];
                snprintf(msg, sizeof msg, "customer %s, subscription %lld, period from %s: the invoice was refused: %s",
                         bp->customer, (long long)sub_id, bp->from, be.msg);
                int r2 = record_failure(P, sub_id, bp->customer_id, bp->customer, bp->from, err_tag(&be), NULL, msg, e);
                if (r2) return r2;
                P->A.invoiced += issued;
            }
            return 0;
        }
        rc = db_commit(P->d, e);
        P->ns_issue += mono_ns() - t1;
        if (rc) return rc;
        if (!bp->nothing) issued++;
        if (strcmp(bp->next_bill_date, o->as_of) > 0) break;
        if (k == BILLRUN_MAX_PERIODS - 1 && record) P->A.behind++;
    }
    if (record) {
        if (issued) P->A.invoiced += issued;
        else P->A.skipped++;
    }
    return 0;
}

static int what_if_one(pass *P, int64_t sub_id, int *failed, err *e)
{
    int64_t live = 0, cand = 0;
    int lf = 0, cf = 0, rc;
    /* each side in a savepoint of its own, rolled back: they must see the
     * same starting state. The live side makes the report's totals. */
    if ((rc = db_begin(P->d, e))) return rc;
    rc = bill_one(P, sub_id, P->o->rs, P->live, 1, &live, &lf, NULL, NULL, e);
    db_rollback(P->d);
    if (rc) return rc;
    *failed = lf;
    if ((rc = db_begin(P->d, e))) return rc;
    rc = bill_one(P, sub_id, P->o->candidate, P->cand, 0, &cand, &cf, NULL, NULL, e);
    db_rollback(P->d);
    if (rc) return rc;
    acc *A = &P->A;
    A->compared++;
    if (lf) A->failed_live++;
    if (cf) A->failed_cand++;
    if (!lf) A->total_live += live;
    if (!cf) A->total_cand += cand;
    if (lf || cf || live != cand) {
        diff_row row = {.sub_id = sub_id, .live = lf ? 0 : live, .cand = cf ? 0 : cand, .live_failed = lf, .cand_failed = cf};
        A->changed++;
        /* into the sorted top rows if it beats the last (same order as
         * sorting every change: largest first, then by subscription) */
        size_t at = A->ndiffs;
        while (at > 0 && cmp_diff(&row, &A->diffs[at - 1]) < 0) at--;
        if (at < BILLRUN_REPORT_LARGEST) {
            size_t keep = A->ndiffs < BILLRUN_REPORT_LARGEST ? A->ndiffs : BILLRUN_REPORT_LARGEST - 1;
            memmove(&A->diffs[at + 1], &A->diffs[at], (keep - at) * sizeof *A->diffs);
            A->diffs[at] = row;
            if (A->ndiffs < BILLRUN_REPORT_LARGEST) A->ndiffs++;
        }
        if (!lf && !cf && cand > live) A->increased++;
        if (!lf && !cf && cand < live) A->decreased++;
    }
    return 0;
}

/* Due subscriptions are read in id order, a chunk at a time after the last
 * one billed: memory stays flat whatever the number of customers, and the
 * writes that follow go in key order. */
#define DUE_CHUNK 4096

static int count_due(db *d, const char *as_of, int64_t *n, err *e)
{
    return db_get_int(d, e, n,
                      "SELECT COUNT(*) FROM subscriptions WHERE next_bill_date <= ? "
                      "AND NOT (status = 'terminated' AND (end_date IS NULL OR (billed_through IS NOT NULL "
                      "AND billed_through >= end_date)))",
                      "s", as_of);
}

static int read_due(db *d, const char *as_of, int64_t after, int64_t *ids, size_t *n, err *e)
{
    *n = 0;
    db_stmt *s = db_prepare(d,
                            "SELECT id FROM subscriptions WHERE id > ? AND next_bill_date <= ? "
                            "AND NOT (status = 'terminated' AND (end_date IS NULL OR (billed_through IS NOT NULL "
                            "AND billed_through >= end_date))) ORDER BY id LIMIT ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, after);
    db_bind_text(s, 2, as_of);
    db_bind_int(s, 3, DUE_CHUNK);
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW && *n < DUE_CHUNK) ids[(*n)++] = db_col_int(s, 0);
    db_done(s);
    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ feeder */

/* Bills are computed ahead on a second thread, with its own connection and
 * rule host, while this one issues them: computing a bill (its context
 * read, the rules, the checks) is about half the work, and only reads. A
 * bill computed ahead is used only when nothing it read can have changed
 * before it is issued:
 *  - a bill of a customer who had an earlier bill in this pass is
 *    "dependent" (deposits, charges and credit are the customer's, and the
 *    earlier bill may have used them): it is computed again here, after the
 *    earlier one's writes, as are the catch-up periods of a subscription;
 *  - a commit by any other connection (a payment, a staff edit) seen at the
 *    start of a batch moves the epoch on, and every bill computed in an
 *    earlier epoch is computed again here. This thread holds the write lock
 *    from a batch's start to its commit, so no other commit can land
 *    between the check and the bills the batch issues.
 * What the feeder could not compute is computed again here too. The feeder
 * changes how fast a pass runs, never what it writes. */
#define FEED_SLOTS 256
#define FEED_SNAPSHOT 64
#define FEED_CHECKPOINT_BILLS 8192

typedef struct feed_slot {
    int64_t sub_id;
    int rc;                     /* billing_compute's */
    int dependent;
    uint64_t epoch;
    jv_arena a;                 /* the bill's memory, until the slot is released */
    bill b;
    bill_error f;
    err e;
    invoice_prep prep;          /* what issuing b reads, when prepared */
    int prepared;
} feed_slot;

typedef struct feeder {
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* a slot filled or freed, the end, stop */
    feed_slot slots[FEED_SLOTS];
    uint64_t head, tail;        /* released, filled: slots head..tail-1 are ready */
    int done, stop, failed;
    int pause, paused;          /* the writer checkpoints; the feeder holds no snapshot */
    int writer_waits, feeder_waits;
    err fe;                     /* why the feeder ended early */
    _Atomic uint64_t epoch;
    int64_t data_version;       /* the writer connection's, at the last check */
    db *d;
    ruleset *rs;
    billing_cache *bc;
    const char *as_of, *by;
    const vault *v;
    unsigned char *seen;        /* a bit per customer id with a bill in this pass */
    size_t nseen;               /* bytes */
    int64_t ns;                 /* time spent computing, on the feeder */
    int64_t cpu_ns;             /* the feeder thread's CPU time */
} feeder;

/* 1 when cid was seen before, 0 when not (now it is), < 0 out of memory. */
static int feed_seen(feeder *F, int64_t cid)
{
    size_t byte = (size_t)(cid >> 3);
    if (byte >= F->nseen) {
        size_t n = F->nseen ? F->nseen : 1 << 16;
        while (n <= byte) n *= 2;
        unsigned char *m = realloc(F->seen, n);
        if (!m) return -1;
        memset(m + F->nseen, 0, n - F->nseen);
        F->seen = m;
        F->nseen = n;
    }
    unsigned char bit = (unsigned char)(1u << (cid & 7));
    int was = (F->seen[byte] & bit) != 0;
    F->seen[byte] |= bit;
    return was;
}

static void *feed_main(void *arg)
{
    feeder *F = arg;
    int64_t cpu0 = thread_cpu_ns();
    int64_t *ids = malloc(DUE_CHUNK * sizeof *ids), last = 0;
    err e;
    err_clear(&e);
    int rc = ids ? 0 : ERR_NOMEM_RET(&e), in_read = 0;
    uint64_t epoch = 0;
    size_t since = 0;
    while (!rc) {
        size_t n = 0;
        if (in_read) {
            db_read_end(F->d);
            in_read = 0;
        }
        if ((rc = read_due(F->d, F->as_of, last, ids, &n, &e)) || n == 0) break;
        for (size_t i = 0; i < n && !rc; i++) {
            pthread_mutex_lock(&F->mu);
            for (;;) {
                if (F->stop) break;
                if (F->pause) {
                    /* the writer checkpoints: no snapshot of ours may hold the WAL */
                    pthread_mutex_unlock(&F->mu);
                    if (in_read) db_read_end(F->d);
                    in_read = 0;
                    pthread_mutex_lock(&F->mu);
                    F->paused = 1;
                    pthread_cond_broadcast(&F->cv);
                    while (F->pause && !F->stop) pthread_cond_wait(&F->cv, &F->mu);
                    F->paused = 0;
                    continue;
                }
                if (F->tail - F->head < FEED_SLOTS) break;
                F->feeder_waits = 1;
                pthread_cond_wait(&F->cv, &F->mu);
                F->feeder_waits = 0;
            }
            int stop = F->stop;
            uint64_t queued = F->tail - F->head;
            pthread_mutex_unlock(&F->mu);
            if (stop) {
                rc = 1;
                break;
            }
            /* bills are read FEED_SNAPSHOT at a time in one snapshot; the
             * epoch is taken before the snapshot, so a commit the writer
             * has not seen yet can only make a bill look older than it is */
            if (!in_read || ++since >= FEED_SNAPSHOT) {
                if (in_read) db_read_end(F->d);
                epoch = atomic_load(&F->epoch);
                if ((rc = db_read_begin(F->d, &e))) break;
                in_read = 1;
                since = 0;
            }
            feed_slot *s = &F->slots[F->tail % FEED_SLOTS];
            s->sub_id = ids[i];
            s->epoch = epoch;
            jv_arena_reset(&s->a);
            err_clear(&s->e);
            int64_t t0 = mono_ns();
            s->rc = billing_compute(F->d, F->rs, F->bc, ids[i], F->as_of, F->by, &s->a, &s->b, &s->f, &s->e);
            /* a customer's later bills wait for the writes of the first */
            s->dependent = s->b.customer_id > 0 ? feed_seen(F, s->b.customer_id) != 0 : 1;
            /* and what issuing the bill reads, from the same snapshot, when
             * the writer is the slower (half the ring waits for it): else,
             * or when this fails, the writer prepares it */
            err pe;
            s->prepared = queued >= FEED_SLOTS / 2 && !s->rc && !s->dependent && !s->b.nothing && !s->b.finished &&
                          invoices_prepare(F->d, F->v, &s->b.inv, &s->prep, &pe) == 0;
            F->ns += mono_ns() - t0;
            pthread_mutex_lock(&F->mu);
            F->tail++;
            if (F->writer_waits) pthread_cond_broadcast(&F->cv);
            pthread_mutex_unlock(&F->mu);
        }
        last = ids[n - 1];
    }
    if (in_read) db_read_end(F->d);
    free(ids);
    F->cpu_ns = thread_cpu_ns() - cpu0;
    pthread_mutex_lock(&F->mu);
    if (rc < 0) {
        F->failed = 1;
        F->fe = e;
    }
    F->done = 1;
    pthread_cond_broadcast(&F->cv);
    pthread_mutex_unlock(&F->mu);
    return NULL;
}

/* Stops the feeder and frees it; *cpu_ns (may be NULL): its thread's CPU time. */
static void feed_free(feeder *F, int64_t *cpu_ns)
{
    if (!F) return;
    if (F->started) {
        pthread_mutex_lock(&F->mu);
        F->stop = 1;
        pthread_cond_broadcast(&F->cv);
        pthread_mutex_unlock(&F->mu);
        pthread_join(F->th, NULL);
    }
    if (cpu_ns) *cpu_ns = F->cpu_ns;
    pthread_mutex_destroy(&F->mu);
    pthread_cond_destroy(&F->cv);
    for (size_t i = 0; i < FEED_SLOTS; i++) {
        jv_arena_free(&F->slots[i].a);
        invoices_prep_free(&F->slots[i].prep);
    }
    billing_cache_free(F->bc);
    if (F->rs) ruleset_unref(F->rs);
    db_close(F->d);
    free(F->seen);
    free(F);
}

/* Starts the feeder over the subscriptions due as of as_of. *out stays
 * NULL (bills are computed here, one by one) when the database cannot be
 * opened a second time (in memory) or the feeder cannot start. */
static void feed_start(feeder **out, db *d, ruleset *rs, const vault *v, const char *as_of, const char *by)
{
    *out = NULL;
    const char *path = db_path(d);
    if (!path || !path[0] || !strcmp(path, ":memory:") || !strncmp(path, "file:", 5)) return;
    err e;
    err_clear(&e);
    feeder *F = calloc(1, sizeof *F);
    if (!F) return;
    pthread_mutex_init(&F->mu, NULL);
    pthread_cond_init(&F->cv, NULL);
    for (size_t i = 0; i < FEED_SLOTS; i++) jv_arena_init(&F->slots[i].a, 0);
    F->as_of = as_of;
    F->by = by;
    F->v = v;
    int rc = db_open(path, 0, &F->d, &e);
    if (!rc) rc = ruleset_twin(rs, &F->rs, &e);
    if (!rc) rc = billing_cache_open(F->d, F->rs, &F->bc, &e);
    if (!rc) rc = db_get_int(d, &e, &F->data_version, "PRAGMA data_version", NULL);
    if (!rc && pthread_create(&F->th, NULL, feed_main, F) != 0) rc = err_set(&e, ERR_INTERNAL, "cannot start a thread");
    if (rc) {
        log_msg(LOG_WARN, "bill_run_feeder", "bills are computed one by one: %s", e.msg);
        feed_free(F, NULL);
        return;
    }
    F->started = 1;
    *out = F;
}

/* The next computed slot, in due order; NULL at the end. */
static int feed_next(feeder *F, feed_slot **out, err *e)
{
    int rc = 0;
    pthread_mutex_lock(&F->mu);
    while (F->tail == F->head && !F->done) {
        F->writer_waits = 1;
        pthread_cond_wait(&F->cv, &F->mu);
        F->writer_waits = 0;
    }
    *out = NULL;
    if (F->tail != F->head) *out = &F->slots[F->head % FEED_SLOTS];
    else if (F->failed) {
        *e = F->fe;
        rc = e->code ? e->code : ERR_INTERNAL;
    }
    pthread_mutex_unlock(&F->mu);
    return rc;
}

static void feed_release(feeder *F)
{
    pthread_mutex_lock(&F->mu);
    F->head++;
    if (F->feeder_waits) pthread_cond_broadcast(&F->cv);
    pthread_mutex_unlock(&F->mu);
}

/* A reader that always holds a snapshot keeps the WAL from ever starting
 * over: it grows without end and every page read searches more of it. So
 * the writer checkpoints itself, every few thousand bills, while the feeder holds
 * none; the next write then starts the WAL from its beginning. */
static int feed_checkpoint(feeder *F, db *d, err *e)
{
    pthread_mutex_lock(&F->mu);
    F->pause = 1;
    pthread_cond_broadcast(&F->cv);
    while (!F->paused && !F->done) pthread_cond_wait(&F->cv, &F->mu);
    pthread_mutex_unlock(&F->mu);
    int rc = db_run(d, e, "PRAGMA wal_checkpoint(PASSIVE)", NULL);
    pthread_mutex_lock(&F->mu);
    F->pause = 0;
    pthread_cond_broadcast(&F->cv);
    pthread_mutex_unlock(&F->mu);
    return rc;
}

/* At the start of a batch, inside its transaction: anything committed by
 * another connection since the last batch makes every bill computed so far
 * stale. */
static int feed_batch_start(feeder *F, db *d, err *e)
{
    int64_t v;
    int rc = db_get_int(d, e, &v, "PRAGMA data_version", NULL);
    if (rc) return rc;
    if (v != F->data_version) {
        F->data_version = v;
        atomic_fetch_add(&F->epoch, 1);
    }
    return 0;
}

/* The slot's bill when it can be issued as it is, or NULL. */
static bill *feed_usable(feeder *F, feed_slot *s)
{
    if (s->rc || s->dependent || s->epoch != atomic_load(&F->epoch)) return NULL;
    return &s->b;
}

static int create_run(db *d, const billrun_opts *o, int64_t *id, err *e)
{
    char now[25];
    db_now(now);
    int rc = db_begin(d, e);
    if (rc) return rc;
    rc = db_run(d, e,
                "INSERT INTO bill_runs (as_of, period, trigger, status, rules_version, started_at, requested_by) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?)",
                "ssssss", o->as_of, o->period, o->trigger ? o->trigger : "manual", o->rs->snap->version, now,
                o->by ? o->by : "system");
    if (!rc) *id = db_last_id(d);
    /* runs left 'running' by a process that died: the lease is ours now */
    if (!rc)
        rc = db_run(d, e, "UPDATE bill_runs SET status = 'interrupted', finished_at = ? WHERE status = 'running' AND id <> ?",
                    "si", now, *id);
    if (!rc) rc = db_commit(d, e);
    if (rc) db_rollback(d);
    return rc;
}

int billrun_start(db *d, const billrun_opts *o, const char *holder, int64_t *run_id, err *e)
{
    int rc = lease_take(d, holder, e);
    if (rc) return rc;
    rc = create_run(d, o, run_id, e);
    if (rc) lease_give(d, holder);
    return rc;
}

void billrun_abandon(db *d, int64_t run_id, const char *holder, const char *why)
{
    err e;
    char now[25];
    db_now(now);
    db_run(d, &e, "UPDATE bill_runs SET status = 'failed', finished_at = ?, report = ? WHERE id = ? AND status = 'running'",
           "ssi", now, why, run_id);
    lease_give(d, holder);
}

static int64_t elapsed(int64_t t0) { return db_now_ms() - t0; }

static int update_counts(pass *P, err *e)
{
    acc *A = &P->A;
    return db_run(P->d, e, "UPDATE bill_runs SET due = ?, invoiced = ?, failed = ?, skipped = ? WHERE id = ?", "iiiii",
                  A->due, A->invoiced, A->failed, A->skipped, P->run_id);
}

static void progress(pass *P, int64_t t0)
{
    if (!P->o->progress) return;
    billrun_progress p = {.run_id = P->run_id, .due = P->A.due, .done = P->A.done, .invoiced = P->A.invoiced,
                          .failed = P->A.failed, .skipped = P->A.skipped, .gross = P->A.gross, .elapsed_ms = elapsed(t0)};
    P->o->progress(P->o->ud, &p);
}

int billrun_exec(db *d, const billrun_opts *o, billrun_result *out, err *e)
{
    memset(out, 0, sizeof *out);
    jv_arena_init(&out->a, 0);
    if (!o->rs) return err_set(e, ERR_INTERNAL, "billing: no rules to bill with");
    int32_t dd;
    if (!o->as_of || strlen(o->as_of) != 10 || date_parse(o->as_of, 10, &dd, e))
        return err_field(e, ERR_INVALID, "invalid_date", "as_of", "as_of must be a date \"YYYY-MM-DD\"");
    int writes = !o->dry_run && !o->candidate;
    char holder[160];
    if (o->holder) snprintf(holder, sizeof holder, "%s", o->holder);
    else billrun_holder(holder, sizeof holder);
    int rc = 0;
    /* dry runs and what-ifs write nothing: they need no lease */
    if (writes && !o->run_id && (rc = lease_take(d, holder, e))) return rc;
    int64_t t0 = db_now_ms(), cpu0 = thread_cpu_ns();
    pass P = {.d = d, .o = o, .run_id = o->run_id};
    snprintf(P.by, sizeof P.by, "%s", o->by ? o->by : "system");
    jv_arena_init(&P.ba, 0);
    P.A.ra = &out->a;
    P.A.failures = jv_arr(&out->a);
    int64_t *ids = malloc(DUE_CHUNK * sizeof *ids), due = 0;
    if (!P.A.failures || !ids) rc = ERR_NOMEM_RET(e);
    /* a savepoint per bill: its page images stay in memory */
    if (!rc) rc = db_temp_in_memory(d, e);
    if (!rc) rc = billing_cache_open(d, o->rs, &P.live, e);
    if (!rc && o->candidate) rc = billing_cache_open(d, o->candidate, &P.cand, e);
    if (!rc) rc = count_due(d, o->as_of, &due, e);
    /* a scheduled pass that finds nothing due leaves no run behind */
    int quiet = due == 0 && o->trigger && !strcmp(o->trigger, "schedule");
    if (!rc && writes && !P.run_id && !quiet) rc = create_run(d, o, &P.run_id, e);
    P.A.due = due;
    log_line *l = log_begin(LOG_INFO, "bill_run_start");
    log_int(l, "run_id", P.run_id);
    log_str(l, "as_of", o->as_of);
    log_int(l, "due", due);
    log_str(l, "mode", o->candidate ? "what_if" : o->dry_run ? "dry_run" : "run");
    log_end(l);

    int interrupted = 0, in_batch = 0;
    int64_t batch_t = 0;
    size_t batch_n = 0;
    size_t n = 0, i = 0;
    int64_t last = 0;
    /* a what-if compares two rule sets bill by bill: computed here */
    feeder *F = NULL;
    size_t since_checkpoint = 0, batch_max = o->batch > 0 ? (size_t)o->batch : BILLRUN_BATCH;
    if (!rc && !o->candidate && due > 1) feed_start(&F, d, o->rs, o->v, o->as_of, P.by);
    /* checkpoints are the pass's own while the feeder reads (feed_checkpoint) */
    if (F && writes && (rc = db_run(d, e, "PRAGMA wal_autocheckpoint = 0", NULL))) {
        feed_free(F, NULL);
        F = NULL;
    }
    while (!rc) {
        int64_t sub_id;
        feed_slot *slot = NULL;
        if (F) {
            if ((rc = feed_next(F, &slot, e)) || !slot) break;
            sub_id = slot->sub_id;
        } else {
            if (i == n) {
                if ((rc = read_due(d, o->as_of, last, ids, &n, e))) break;
                i = 0;
                if (n == 0) break;
            }
            sub_id = ids[i++];
        }
        last = sub_id;
        if (o->stop && *o->stop) {
            interrupted = 1;
            break;
        }
        if (!in_batch) {
            if ((rc = db_begin(d, e))) break;
            in_batch = 1;
            batch_t = db_now_ms();
            batch_n = 0;
            if (F && (rc = feed_batch_start(F, d, e))) break;
        }
        int failed = 0;
        if (o->candidate) rc = what_if_one(&P, sub_id, &failed, e);
        else {
            bill *ahead = slot ? feed_usable(F, slot) : NULL;
            if (slot && !ahead) P.recomputed++;
            rc = bill_one(&P, sub_id, o->rs, P.live, 1, NULL, &failed, ahead, ahead && slot->prepared ? &slot->prep : NULL, e);
        }
        if (slot) feed_release(F);
        if (rc) break;
        if (failed) P.A.failed++;
        P.A.done++;
        batch_n++;
        if (batch_n >= batch_max || db_now_ms() - batch_t >= BATCH_MS) {
            int64_t tc = mono_ns();
            if (writes && P.run_id) {
                rc = update_counts(&P, e);
                if (!rc) rc = lease_renew(d, holder, e);
                if (!rc) rc = db_commit(d, e);
            } else {
                db_rollback(d);
            }
            in_batch = 0;
            since_checkpoint += batch_n;
            if (!rc && F && writes && since_checkpoint >= FEED_CHECKPOINT_BILLS) {
                rc = feed_checkpoint(F, d, e);
                since_checkpoint = 0;
            }
            P.ns_commit += mono_ns() - tc;
            if (rc) break;
            progress(&P, t0);
        }
    }
    if (in_batch) {
        if (!rc && writes && P.run_id) {
            rc = update_counts(&P, e);
            if (!rc) rc = db_commit(d, e);
            if (rc) db_rollback(d);
        } else {
            db_rollback(d);
        }
    }
    free(ids);
    int64_t writer_cpu = thread_cpu_ns() - cpu0, feeder_cpu = 0;
    if (F) {
        P.ns_ahead = F->ns;
        feed_free(F, &feeder_cpu);
        err ce;
        /* SQLite's default, which the connection had before */
        if (writes) db_run(d, &ce, "PRAGMA wal_autocheckpoint = 1000", NULL);
    }
    int64_t ms = elapsed(t0);
    jv *report = NULL;
    /* the customers of the largest differences, the only ones reported */
    for (size_t k = 0; !rc && k < P.A.ndiffs; k++) {
        int64_t cid;
        customer_of(d, P.A.diffs[k].sub_id, &cid, P.A.diffs[k].customer);
    }
    if (!rc) {
        report = build_report(&P.A, o, o->rs->snap->version, ms, e);
        if (!report) rc = ERR_NOMEM_RET(e);
    }
    if (P.run_id && writes) {
        /* the run's end, whatever happened: done, interrupted or failed */
        char now[25];
        db_now(now);
        buf b = {0};
        if (report) json_write(&b, report);
        else {
            buf_puts(&b, "{\"error\":");
            jw w;
            jw_init(&w, 0);
            jw_str(&w, e->msg);
            size_t wl;
            const char *ws = jw_finish(&w, &wl);
            if (ws) buf_append(&b, ws, wl);
            jw_free(&w);
            buf_puts(&b, "}");
        }
        err fe;
        const char *status = rc ? "failed" : interrupted ? "interrupted" : "done";
        P.A.due = P.A.due ? P.A.due : due;
        if (db_run(d, &fe,
                   "UPDATE bill_runs SET status = ?, finished_at = ?, report = ?, due = ?, invoiced = ?, failed = ?, "
                   "skipped = ? WHERE id = ?",
                   "sssiiiii", status, now, b.data ? b.data : "{}", P.A.due, P.A.invoiced, P.A.failed, P.A.skipped,
                   P.run_id))
            log_msg(LOG_ERROR, "bill_run_finish", "run %lld: %s", (long long)P.run_id, fe.msg);
        buf_free(&b);
    }
    if (writes) lease_give(d, holder);
    progress(&P, t0);
    billing_cache_free(P.live);
    billing_cache_free(P.cand);
    jv_arena_free(&P.ba);
    free(P.A.plans);
    out->run_id = P.run_id;
    out->due = P.A.due;
    out->invoiced = P.A.invoiced;
    out->failed = P.A.failed;
    out->skipped = P.A.skipped;
    out->compute_ms = P.ns_compute / 1000000;
    out->issue_ms = P.ns_issue / 1000000;
    out->commit_ms = P.ns_commit / 1000000;
    out->ahead_ms = P.ns_ahead / 1000000;
    out->writer_cpu_ms = writer_cpu / 1000000;
    out->feeder_cpu_ms = feeder_cpu / 1000000;
    out->recomputed = P.recomputed;
    out->report = report;
    snprintf(out->status, sizeof out->status, "%s", rc ? "failed" : interrupted ? "interrupted" : "done");
    l = log_begin(rc ? LOG_ERROR : LOG_INFO, "bill_run_done");
    log_int(l, "run_id", P.run_id);
    log_str(l, "status", out->status);
    log_int(l, "invoiced", P.A.invoiced);
    log_int(l, "failed", P.A.failed);
    log_int(l, "ms", ms);
    log_int(l, "compute_ms", out->compute_ms);
    log_int(l, "issue_ms", out->issue_ms);
    log_int(l, "commit_ms", out->commit_ms);
    log_int(l, "ahead_ms", out->ahead_ms);
    log_int(l, "recomputed", out->recomputed);
    log_end(l);
    return rc;
}

void billrun_result_free(billrun_result *r)
{
    if (!r) return;
    jv_arena_free(&r->a);
    r->report = NULL;
}

/* ------------------------------------------------------------------ reads */

static jv *run_obj(db_stmt *s, jv_arena *a, int with_report, err *e)
{
    jv *o = jv_obj_sized(a, 16);
    if (!o) return NULL;
    int rc = jv_obj_set_int(a, o, "id", db_col_int(s, 0));
    rc |= jv_obj_set_str(a, o, "as_of", db_col_text(s, 1));
    rc |= jv_obj_set(a, o, "period", db_col_is_null(s, 2) ? jv_null(a) : jv_str(a, db_col_text(s, 2)));
    rc |= jv_obj_set_str(a, o, "trigger", db_col_text(s, 3));
    rc |= jv_obj_set_str(a, o, "status", db_col_text(s, 4));
    rc |= jv_obj_set_str(a, o, "rules_version", db_col_text(s, 5));
    int64_t due = db_col_int(s, 6), inv = db_col_int(s, 7), failed = db_col_int(s, 8), skipped = db_col_int(s, 9);
    rc |= jv_obj_set_int(a, o, "due", due);
    rc |= jv_obj_set_int(a, o, "invoiced", inv);
    rc |= jv_obj_set_int(a, o, "failed", failed);
    rc |= jv_obj_set_int(a, o, "skipped", skipped);
    rc |= jv_obj_set_str(a, o, "started_at", db_col_text(s, 11));
    rc |= jv_obj_set(a, o, "finished_at", db_col_is_null(s, 12) ? jv_null(a) : jv_str(a, db_col_text(s, 12)));
    rc |= jv_obj_set_str(a, o, "requested_by", db_col_text(s, 13));
    /* progress: subscriptions done (each is invoiced, failed or skipped) */
    jv *p = jv_obj_sized(a, 2);
    if (!p) return NULL;
    int64_t done = failed + skipped;
    /* invoiced counts bills, and catch-up may make several for one
     * subscription: done is at most due */
    done += inv;
    if (done > due) done = due;
    if (!strcmp(db_col_text(s, 4), "done")) done = due;
    rc |= jv_obj_set_int(a, p, "done", done);
    rc |= jv_obj_set_int(a, p, "percent", due ? done * 100 / due : 100);
    rc |= jv_obj_set(a, o, "progress", p);
    if (with_report) {
        jv *rep = NULL;
        if (!db_col_is_null(s, 10)) {
            const char *t = db_col_text(s, 10);
            if (json_parse(t, strlen(t), NULL, a, &rep, e)) rep = NULL;
        }
        rc |= jv_obj_set(a, o, "report", rep ? rep : jv_null(a));
    }
    return rc ? NULL : o;
}

int billrun_get(db *d, int64_t id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT id, as_of, period, trigger, status, rules_version, due, invoiced, failed, skipped, report, "
                            "started_at, finished_at, requested_by FROM bill_runs WHERE id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        *out = run_obj(s, a, 1, e);
        rc = *out ? 0 : ERR_NOMEM_RET(e);
    } else if (rc == DB_DONE) {
        rc = err_set(e, ERR_NOTFOUND, "no billing run %lld", (long long)id);
    }
    db_done(s);
    return rc;
}

int billrun_list(db *d, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next, size_t nnext, err *e)
{
    int64_t before = INT64_MAX;
    if (cursor && cursor[0]) {
        char *end;
        before = strtoll(cursor, &end, 10);
        if (*end || before <= 0) return err_field(e, ERR_INVALID, "invalid_cursor", "cursor", "invalid cursor");
    }
    if (nnext) next[0] = '\0';
    *list = jv_arr(a);
    if (!*list) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d,
                            "SELECT id, as_of, period, trigger, status, rules_version, due, invoiced, failed, skipped, NULL, "
                            "started_at, finished_at, requested_by FROM bill_runs WHERE id < ? ORDER BY id DESC LIMIT ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, before);
    db_bind_int(s, 2, limit + 1);
    int rc;
    int64_t n = 0, last = 0;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        if (n == limit) {
            if (nnext) snprintf(next, nnext, "%lld", (long long)last);
            break;
        }
        jv *o = run_obj(s, a, 0, e);
        if (!o || jv_arr_push(a, *list, o)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
        last = db_col_int(s, 0);
        n++;
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ preview */

int billrun_preview(db *d, ruleset *rs, int64_t customer_id, const char *today, jv_arena *a, jv **out, err *e)
{
    billing_cache *bc;
    int rc = billing_cache_open(d, rs, &bc, e);
    if (rc) return rc;
    int64_t *ids;
    char(*next)[11];
    size_t n;
    jv *bills = jv_arr(a), *fails = jv_arr(a), *o = jv_obj_sized(a, 5);
    rc = billing_customer_subs(d, customer_id, a, &ids, &next, &n, e);
    if (!rc && (!bills || !fails || !o)) rc = ERR_NOMEM_RET(e);
    char code[32] = "";
    for (size_t i = 0; !rc && i < n; i++) {
        char as_of[11];
        /* due now: as of today; else the bill it will get on its day */
        snprintf(as_of, sizeof as_of, "%s", strcmp(next[i], today) > 0 ? next[i] : today);
        bill b;
        bill_error f;
        err be;
        err_clear(&be);
        int brc = billing_compute(d, rs, bc, ids[i], as_of, "preview", a, &b, &f, &be);
        if (b.customer[0]) snprintf(code, sizeof code, "%s", b.customer);
        if (brc == ERR_RULE) {
            jv *x = jv_obj_sized(a, 8);
            if (!x || jv_obj_set_int(a, x, "subscription_id", ids[i]) || jv_obj_set_str(a, x, "code", f.code) ||
                jv_obj_set_str(a, x, "step", f.step) || jv_obj_set_str(a, x, "rule", f.rule) ||
                jv_obj_set_str(a, x, "file", f.file) || jv_obj_set_int(a, x, "line", f.line) ||
                jv_obj_set_str(a, x, "message", f.message) || jv_arr_push(a, fails, x))
                rc = ERR_NOMEM_RET(e);
            continue;
        }
        if (brc) {
            *e = be;
            rc = brc;
            break;
        }
        if (b.nothing || b.finished) continue;
        jv *x = billing_bill_jv(a, &b);
        if (!x || jv_obj_set_str(a, x, "as_of", as_of) || jv_arr_push(a, bills, x)) rc = ERR_NOMEM_RET(e);
    }
    billing_cache_free(bc);
    if (rc) return rc;
    if (jv_obj_set_str(a, o, "customer", code) || jv_obj_set_str(a, o, "today", today) ||
        jv_obj_set_str(a, o, "rules_version", rs->snap->version) || jv_obj_set(a, o, "bills", bills) ||
        jv_obj_set(a, o, "failures", fails))
        return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}

/* ------------------------------------------------------------------ rules */

int billrun_load_rules(db *d, const char *dir, ruleset **out, err *e)
{
    *out = NULL;
    rules_snapshot *snap = NULL;
    int check = 0, rc = 0;
    ruleset *live = rules_live();
    if (live) {
        snap = rules_snapshot_ref(live->snap);
        ruleset_unref(live);
    } else {
        db_stmt *s = db_prepare(d, "SELECT version FROM rule_loads ORDER BY id DESC LIMIT 1", e);
        if (!s) return e->code;
        char ver[RULES_VERSION_LEN] = "";
        rc = db_step(d, s, e);
        if (rc == DB_ROW) snprintf(ver, sizeof ver, "%s", db_col_text(s, 0));
        db_done(s);
        if (rc < 0) return rc;
        rc = 0;
        if (ver[0]) {
            rc = rules_stored(d, ver, &snap, e);
        } else {
            rc = rules_snapshot_read(dir, &snap, e);
            if (rc) err_prefix(e, "rules folder %s", dir);
            check = 1;
        }
        if (rc) return rc;
    }
    rule_error re;
    rc = ruleset_load(snap, rules_limits(), check, out, &re, e);
    rules_snapshot_unref(snap);
    return rc;
}

/* ------------------------------------------------------------------ job */

int billrun_job(job_ctx *ctx, err *e)
{
    char day[11];
    date_format(date_of_time(ctx->scheduled_for ? ctx->scheduled_for : time(NULL)), day);
    ruleset *rs = NULL;
    vault *v = NULL;
    int rc = billrun_load_rules(ctx->db, ctx->cfg->rules, &rs, e);
    if (!rc && (rc = vault_open(ctx->cfg->keys_file, &v, e))) err_prefix(e, "billing needs the key file");
    billrun_result r;
    memset(&r, 0, sizeof r);
    if (!rc) {
        billrun_opts o = {.as_of = day, .rs = rs, .v = v, .trigger = ctx->scheduled_for ? "schedule" : "manual",
                          .by = "system", .stop = ctx->stop};
        rc = billrun_exec(ctx->db, &o, &r, e);
    }
    if (!rc) {
        snprintf(ctx->summary, sizeof ctx->summary, "run %lld as of %s: %lld due, %lld invoice(s), %lld failed, %lld skipped (%s)",
                 (long long)r.run_id, day, (long long)r.due, (long long)r.invoiced, (long long)r.failed,
                 (long long)r.skipped, r.status);
        ctx->idle = r.due == 0;
    }
    billrun_result_free(&r);
    vault_close(v);
    ruleset_unref(rs);
    return rc;
}
