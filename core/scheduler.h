/* scheduler.h - the scheduler: jobs, their cron schedules, catch-up after
 * downtime, and the record of every run.
 *
 * Jobs are declared by subsystems in the table in jobs.c. A job's schedule
 * comes from the config (jobs.NAME = cron expression, or "off") or its
 * default. The last scheduled time each job ran for is persisted; when the
 * daemon comes back after missing one or more runs, the job runs once for
 * the latest missed time ("catchup"), never once per missed time. A lease in
 * the database keeps two daemons from running the same job at once. */
#ifndef BB_SCHED_H
#define BB_SCHED_H

#include <time.h>

#include "cfg.h"
#include "cron.h"
#include "db.h"
#include "err.h"

typedef struct job_ctx {
    db *db;
    const cfg *cfg;
    const volatile int *stop;   /* set when the daemon stops: long jobs return early */
    time_t scheduled_for;       /* 0 when run on demand */
    char summary[512];          /* one line the job leaves for the log and the run record */
    int idle;                   /* set by a job that found nothing to do: a scheduled
                                 * run then leaves no run record, so a job that runs
                                 * every minute does not fill job_runs with no-ops */
} job_ctx;

typedef int (*job_fn)(job_ctx *ctx, err *e);

typedef struct job_def {
    const char *name;
    const char *cron;           /* default schedule */
    job_fn fn;
    const char *help;
} job_def;

extern const job_def sched_jobs[];
extern const int sched_jobs_count;

const job_def *sched_job_find(const char *name);
/* "a, b, c": for error messages. */
const char *sched_job_names(void);

/* The effective schedule of a job. *enabled is 0 when configured "off". */
int sched_schedule(const cfg *c, const job_def *j, cron_expr *ce, const char **text, int *enabled, err *e);

typedef enum {
    SCHED_IDLE,     /* nothing to do */
    SCHED_ADOPT,    /* first sight of the job: remember now, run nothing */
    SCHED_RUN       /* run for *scheduled_for */
} sched_decision;

/* Pure: what to do at `now` given the last scheduled time run (-1: never). */
sched_decision sched_decide(const cron_expr *ce, time_t last, time_t now, time_t *scheduled_for);

typedef struct job_result {
    int64_t run_id;
    int ok;
    char trigger[16];
    char summary[512];
    int64_t duration_ms;
} job_result;

/* Runs one job now and records it. trigger: "schedule", "catchup" or
 * "manual". Returns 0 when the run was recorded (whether the job itself
 * succeeded is in out->ok), ERR_BUSY when another process holds the job. */
int sched_run(db *d, const cfg *c, const job_def *j, const char *trigger, time_t scheduled_for,
              const volatile int *stop, job_result *out, err *e);

/* One pass over every enabled job at `now`: runs what is due. */
int sched_tick(db *d, const cfg *c, time_t now, const volatile int *stop, err *e);

/* For `jobs list`. */
typedef struct job_status {
    const job_def *job;
    char schedule[96];
    int enabled;
    time_t next;            /* -1 if none */
    char last_status[16];   /* "" if never run */
    char last_started[25];
    char last_message[256];
} job_status;
int sched_status(db *d, const cfg *c, const job_def *j, time_t now, job_status *out, err *e);

#endif
