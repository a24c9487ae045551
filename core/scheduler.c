/* scheduler.c - job schedules, catch-up, leases and run records. */
#include "scheduler.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define LEASE_MS (6 * 3600 * 1000LL)

const job_def *sched_job_find(const char *name)
{
    for (int i = 0; i < sched_jobs_count; i++)
        if (strcmp(sched_jobs[i].name, name) == 0) return &sched_jobs[i];
    return NULL;
}

const char *sched_job_names(void)
{
    static char names[512];
    if (!names[0]) {
        size_t off = 0;
        for (int i = 0; i < sched_jobs_count && off < sizeof names; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "", sched_jobs[i].name);
    }
    return names;
}

int sched_schedule(const cfg *c, const job_def *j, cron_expr *ce, const char **text, int *enabled, err *e)
{
    const char *s = cfg_job_cron(c, j->name);
    if (!s) s = j->cron;
    *text = s;
    *enabled = strcmp(s, "off") != 0;
    if (!*enabled) return 0;
    if (cron_parse(s, ce, e)) return err_prefix(e, "job %s", j->name);
    return 0;
}

sched_decision sched_decide(const cron_expr *ce, time_t last, time_t now, time_t *scheduled_for)
{
    time_t prev = cron_prev(ce, now);
    if (prev < 0) return SCHED_IDLE;
    *scheduled_for = prev;
    if (last < 0) return SCHED_ADOPT;
    return prev > last ? SCHED_RUN : SCHED_IDLE;
}

static void iso(time_t t, char out[25]) { db_format_time((int64_t)t * 1000, out); }

static void holder_id(char *out, size_t n)
{
    char host[128] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(out, n, "%s:%d", host, (int)getpid());
}

/* A holder on this machine whose process is gone (killed, crashed) holds
 * nothing: its job may be taken over at once rather than after the lease. */
static int holder_dead(const char *holder)
{
    char host[128] = "?";
    gethostname(host, sizeof host - 1);
    size_t hl = strlen(host);
    if (strncmp(holder, host, hl) != 0 || holder[hl] != ':') return 0;
    int pid = atoi(holder + hl + 1);
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

/* Takes the job's lease; ERR_BUSY if another holder has it. */
static int lease(db *d, const char *job, const char *holder, err *e)
{
    char now[25], until[25];
    int64_t ms = db_now_ms();
    db_format_time(ms, now);
    db_format_time(ms + LEASE_MS, until);
    int rc = db_run(d, e, "INSERT INTO job_state (job) VALUES (?) ON CONFLICT (job) DO NOTHING", "s", job);
    if (rc) return rc;
    db_stmt *q = db_prepare(d, "SELECT lease_holder FROM job_state WHERE job = ? AND lease_holder IS NOT NULL", e);
    if (!q) return e->code;
    db_bind_text(q, 1, job);
    if ((rc = db_step(d, q, e)) < 0) return rc;
    char held[160] = "";
    if (rc == DB_ROW) snprintf(held, sizeof held, "%s", db_col_text(q, 0));
    db_done(q);
    if (held[0] && holder_dead(held)) {
        log_msg(LOG_WARN, "job_lease_recovered", "job %s was held by %s, which is gone", job, held);
        rc = db_run(d, e, "UPDATE job_runs SET status = 'failed', finished_at = ?, message = 'interrupted: the process stopped' "
                          "WHERE job = ? AND status = 'running'", "ss", now, job);
        if (!rc) rc = db_run(d, e, "UPDATE job_state SET lease_holder = NULL, lease_until = NULL WHERE job = ?", "s", job);
        if (rc) return rc;
    }
    rc = db_run(d, e,
                "UPDATE job_state SET lease_holder = ?, lease_until = ? "
                "WHERE job = ? AND (lease_until IS NULL OR lease_until < ? OR lease_holder = ?)",
                "sssss", holder, until, job, now, holder);
    if (rc) return rc;
    if (db_changes(d) == 0) return err_set(e, ERR_BUSY, "job %s is running in another process", job);
    return 0;
}

static void unlease(db *d, const char *job, const char *holder)
{
    err e;
    db_run(d, &e, "UPDATE job_state SET lease_holder = NULL, lease_until = NULL WHERE job = ? AND lease_holder = ?", "ss",
           job, holder);
}

static void count(const char *job, const char *status)
{
    char label[160];
    snprintf(label, sizeof label, "job=\"%s\",status=\"%s\"", job, status);
    metric_inc(metrics_counter("bandbill_job_runs_total", "Job runs by job and outcome", label));
}

int sched_run(db *d, const cfg *c, const job_def *j, const char *trigger, time_t scheduled_for,
              const volatile int *stop, job_result *out, err *e)
{
    memset(out, 0, sizeof *out);
    snprintf(out->trigger, sizeof out->trigger, "%s", trigger);
    char holder[160], started[25], sched_at[25] = "";
    holder_id(holder, sizeof holder);
    int rc = lease(d, j->name, holder, e);
    if (rc) return rc;
    int64_t t0 = db_now_ms();
    db_format_time(t0, started);
    if (scheduled_for) iso(scheduled_for, sched_at);
    rc = db_run(d, e, "INSERT INTO job_runs (job, scheduled_for, trigger, started_at, status) VALUES (?, ?, ?, ?, 'running')",
                "ssss", j->name, scheduled_for ? sched_at : NULL, trigger, started);
    if (rc) {
        unlease(d, j->name, holder);
        return rc;
    }
    out->run_id = db_last_id(d);
    /* debug: job_done or job_failed says all of it, and an idle run of an
     * every-minute job should leave no trace at the info level */
    log_line *l = log_begin(LOG_DEBUG, "job_start");
    log_str(l, "job", j->name);
    log_str(l, "trigger", trigger);
    if (scheduled_for) log_str(l, "scheduled_for", sched_at);
    log_end(l);

    job_ctx ctx = {.db = d, .cfg = c, .stop = stop, .scheduled_for = scheduled_for};
    err je;
    err_clear(&je);
    int jrc = j->fn(&ctx, &je);
    if (db_in_tx(d)) db_rollback(d); /* a job must not leave a transaction open */
    out->ok = jrc == 0;
    out->duration_ms = db_now_ms() - t0;
    snprintf(out->summary, sizeof out->summary, "%s", jrc ? je.msg : ctx.summary);
    char finished[25];
    db_now(finished);
    int forget = out->ok && ctx.idle && scheduled_for;
    if (forget)
        rc = db_run(d, e, "DELETE FROM job_runs WHERE id = ?", "i", out->run_id);
    else
        rc = db_run(d, e, "UPDATE job_runs SET finished_at = ?, status = ?, message = ? WHERE id = ?", "sssi", finished,
                    out->ok ? "ok" : "failed", out->summary, out->run_id);
    if (!rc && scheduled_for)
        rc = db_run(d, e, "UPDATE job_state SET last_scheduled_for = ? WHERE job = ?", "ss", sched_at, j->name);
    unlease(d, j->name, holder);
    count(j->name, out->ok ? "ok" : "failed");
    if (out->ok) {
        char label[96];
        snprintf(label, sizeof label, "job=\"%s\"", j->name);
        metric_set(metrics_gauge("bandbill_job_last_success_timestamp_seconds", "When each job last succeeded", label),
                   (int64_t)time(NULL));
    }
    l = log_begin(out->ok ? (forget ? LOG_DEBUG : LOG_INFO) : LOG_ERROR, out->ok ? "job_done" : "job_failed");
    log_str(l, "job", j->name);
    log_str(l, "trigger", trigger);
    log_int(l, "run_id", out->run_id);
    log_int(l, "ms", out->duration_ms);
    log_str(l, out->ok ? "summary" : "error", out->summary);
    log_end(l);
    return rc;
}

static int last_scheduled(db *d, const char *job, time_t *last, err *e)
{
    *last = -1;
    db_stmt *s = db_prepare(d, "SELECT last_scheduled_for FROM job_state WHERE job = ?", e);
    if (!s) return e->code;
    db_bind_text(s, 1, job);
    int rc = db_step(d, s, e);
    if (rc < 0) return rc;
    int64_t ms;
    if (rc == DB_ROW && !db_col_is_null(s, 0) && db_parse_time(db_col_text(s, 0), &ms) == 0) *last = (time_t)(ms / 1000);
    db_done(s);
    return 0;
}

int sched_tick(db *d, const cfg *c, time_t now, const volatile int *stop, err *e)
{
    for (int i = 0; i < sched_jobs_count && !(stop && *stop); i++) {
        const job_def *j = &sched_jobs[i];
        db_release(d);
        cron_expr ce;
        const char *text;
        int enabled;
        if (sched_schedule(c, j, &ce, &text, &enabled, e)) return e->code;
        if (!enabled) continue;
        time_t last, at;
        if (last_scheduled(d, j->name, &last, e)) return e->code;
        sched_decision dec = sched_decide(&ce, last, now, &at);
        if (dec == SCHED_IDLE) continue;
        if (dec == SCHED_ADOPT) {
            char ts[25];
            iso(at, ts);
            int rc = db_run(d, e,
                            "INSERT INTO job_state (job, last_scheduled_for) VALUES (?, ?) "
                            "ON CONFLICT (job) DO UPDATE SET last_scheduled_for = excluded.last_scheduled_for",
                            "ss", j->name, ts);
            if (rc) return rc;
            continue;
        }
        /* a run for the latest scheduled time only, however many were missed */
        const char *trigger = now - at < 120 ? "schedule" : "catchup";
        job_result r;
        err re;
        int rc = sched_run(d, c, j, trigger, at, stop, &r, &re);
        if (rc && rc != ERR_BUSY) log_msg(LOG_ERROR, "job_error", "job %s: %s", j->name, re.msg);
    }
    return 0;
}

int sched_status(db *d, const cfg *c, const job_def *j, time_t now, job_status *out, err *e)
{
    memset(out, 0, sizeof *out);
    out->job = j;
    cron_expr ce;
    const char *text;
    if (sched_schedule(c, j, &ce, &text, &out->enabled, e)) return e->code;
    snprintf(out->schedule, sizeof out->schedule, "%s", text);
    out->next = out->enabled ? cron_next(&ce, now) : -1;
    db_stmt *s = db_prepare(d, "SELECT status, started_at, message FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT 1", e);
    if (!s) return e->code;
    db_bind_text(s, 1, j->name);
    int rc = db_step(d, s, e);
    if (rc < 0) return rc;
    if (rc == DB_ROW) {
        snprintf(out->last_status, sizeof out->last_status, "%s", db_col_text(s, 0));
        snprintf(out->last_started, sizeof out->last_started, "%s", db_col_text(s, 1));
        snprintf(out->last_message, sizeof out->last_message, "%s", db_col_text(s, 2));
    }
    db_done(s);
    return 0;
}
