/* billrun.h - billing passes: every subscription due on or before a date
 * gets its bills, each computed by billing.c and issued by invoices.c.
 *
 * A pass records a bill_runs row, then bills each due subscription - one
 * period after another while its next_bill_date is still on or before
 * as_of (catch-up, at most BILLRUN_MAX_PERIODS per pass) - each bill in a
 * transaction of its own (a savepoint: the invoice, its number, its ledger
 * entry and the next_bill_date move together; bills are committed in
 * batches of at most BILLRUN_BATCH or half a second). A crash loses at most
 * the batch being written, and the next pass makes it again: the unique
 * key on (subscription, period) and next_bill_date make a rerun skip what
 * is done, so there is never a duplicate, and numbers are taken in the
 * bill's own transaction, so there is never a gap. A customer whose rules
 * fail gets no bill, a bill_run_failures row with the located error, and
 * the pass goes on. One pass at a time: a lease in job_state
 * ("billing.pass"), taken over at once from a process that died.
 *
 * A dry run computes and issues exactly as a real one inside transactions
 * that are rolled back: it writes nothing (no run row either) and reports
 * what the real run would make. A what-if (candidate rules) does the same
 * with both rule sets and reports the difference per customer and in
 * total. */
#ifndef BB_BILLRUN_H
#define BB_BILLRUN_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"
#include "rules.h"

#define BILLRUN_MAX_PERIODS 36
/* Subscriptions per commit (or half a second, whichever comes first). Each
 * commit waits for the disk (synchronous=FULL: 10-40 ms here for a batch's
 * pages), so batches of 256 spent a quarter of a run in fsync; 1024 keeps
 * it near a tenth, and a crash still loses under a second of work. */
#define BILLRUN_BATCH 4096
#define BILLRUN_REPORT_FAILURES 100
#define BILLRUN_REPORT_LARGEST 10

struct vault;
struct job_ctx;

typedef struct billrun_progress {
    int64_t run_id;         /* 0 for a dry run */
    int64_t due, done;      /* subscriptions due, and done so far */
    int64_t invoiced, failed, skipped;
    int64_t gross;          /* fen billed so far */
    int64_t elapsed_ms;
} billrun_progress;

typedef void (*billrun_progress_fn)(void *ud, const billrun_progress *p);

typedef struct billrun_opts {
    const char *as_of;          /* YYYY-MM-DD: bills what is due on or before it */
    const char *period;         /* "YYYY-MM" when asked for by period, or NULL */
    int dry_run;
    ruleset *rs;                /* the rules to bill with (the live version) */
    ruleset *candidate;         /* what-if: also compute with these, write nothing */
    const struct vault *v;
    const char *trigger;        /* schedule, catchup, manual, api */
    const char *by;             /* "cli:root", "user:alice", "system" */
    int64_t run_id;             /* a run already started by billrun_start (the API), or 0 */
    const char *holder;         /* its lease holder, with run_id */
    billrun_progress_fn progress;
    void *ud;
    const volatile int *stop;   /* set: the pass stops between bills (interrupted) */
    int batch;                  /* bills per batch at most; 0: BILLRUN_BATCH (tests set a few) */
} billrun_opts;

typedef struct billrun_result {
    int64_t run_id;
    int64_t due, invoiced, failed, skipped;
    char status[16];            /* done, interrupted (a dry run: done) */
    /* where the pass spent its time: computing bills (context, rules,
     * checks), issuing them (invoice, lines, ledger, outbox, each in its
     * savepoint), committing batches (durable writes) */
    int64_t compute_ms, issue_ms, commit_ms;
    /* bills computed ahead on a second thread (ahead_ms of its time), and
     * how many of those were computed again here because something they
     * read may have changed (a customer's later bill, another writer) */
    int64_t ahead_ms, recomputed;
    int64_t writer_cpu_ms, feeder_cpu_ms;   /* CPU time of each thread */
    jv_arena a;
    jv *report;                 /* the report (see billrun_get), in a */
} billrun_result;

/* "YYYY-MM" -> as_of, the first day after the month. */
int billrun_period_as_of(const char *period, char as_of[11], err *e);

/* A lease holder name for this process and thread, for billrun_start. */
void billrun_holder(char *out, size_t n);

/* Takes the pass lease and records a run 'running' (as the API does before
 * it hands the pass to a worker): ERR_BUSY tagged run_in_progress when a
 * pass is going on. The worker then calls billrun_exec with the run id and
 * the same holder. */
int billrun_start(db *d, const billrun_opts *o, const char *holder, int64_t *run_id, err *e);
/* Gives the lease back and marks a run started but never executed failed
 * (when the worker could not start). */
void billrun_abandon(db *d, int64_t run_id, const char *holder, const char *why);

/* The pass. Returns 0 when it ran (some bills may have failed: see the
 * counts), ERR_BUSY when another pass holds the lease, other errors when
 * it could not run at all. Free the result with billrun_result_free. */
int billrun_exec(db *d, const billrun_opts *o, billrun_result *out, err *e);
void billrun_result_free(billrun_result *r);

/* A run as an API object: {id, as_of, period, trigger, status,
 * rules_version, due, invoiced, failed, skipped, started_at, finished_at,
 * requested_by, progress: {done, percent}, report}. ERR_NOTFOUND. */
int billrun_get(db *d, int64_t id, jv_arena *a, jv **out, err *e);
/* Runs newest first, one page (without their reports). */
int billrun_list(db *d, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next, size_t nnext, err *e);

/* The customer's next bills as they would be made now (each subscription's
 * next bill: as of today when it is due, else as of its next bill date),
 * written nowhere: {customer, as_of, bills: [...], failures: [...]}. */
int billrun_preview(db *d, ruleset *rs, int64_t customer_id, const char *today, jv_arena *a, jv **out, err *e);

/* The rules a pass bills with in this process: a fresh copy of the live
 * set (the daemon), else the version loaded last (rule_loads), else the
 * folder dir (checked) when nothing was ever loaded. */
int billrun_load_rules(db *d, const char *dir, ruleset **out, err *e);

/* Scheduler jobs "billing.run" and "billing.renewals": a pass as of the
 * day they were scheduled for (today when run by hand). */
int billrun_job(struct job_ctx *ctx, err *e);

#endif
