/* cmd_jobs.c - `bandbill jobs list|run`. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "scheduler.h"

static void local_time(time_t t, char *out, size_t n)
{
    struct tm tm;
    if (t < 0) {
        snprintf(out, n, "-");
        return;
    }
    localtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M %Z", &tm);
}

int cmd_jobs_list(cli *c, err *e)
{
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    jw w;
    if (c->json) {
        jw_init(&w, 0);
        jw_arr_open(&w);
    } else {
        printf("%-14s %-16s %-22s %-8s %s\n", "JOB", "SCHEDULE", "NEXT RUN", "LAST", "LAST RUN (UTC)");
    }
    time_t now = time(NULL);
    for (int i = 0; i < sched_jobs_count && !rc; i++) {
        job_status st;
        if ((rc = sched_status(d, &c->cfg, &sched_jobs[i], now, &st, e))) break;
        char next[64];
        local_time(st.next, next, sizeof next);
        if (c->json) {
            char iso[25];
            db_format_time((int64_t)st.next * 1000, iso);
            jw_obj_open(&w);
            jw_kv_str(&w, "name", st.job->name);
            jw_kv_str(&w, "schedule", st.schedule);
            jw_kv_bool(&w, "enabled", st.enabled);
            jw_kv_str(&w, "next_run", st.next >= 0 ? iso : NULL);
            jw_kv_str(&w, "last_status", st.last_status[0] ? st.last_status : NULL);
            jw_kv_str(&w, "last_started", st.last_started[0] ? st.last_started : NULL);
            jw_kv_str(&w, "last_message", st.last_status[0] ? st.last_message : NULL);
            jw_kv_str(&w, "help", st.job->help);
            jw_obj_close(&w);
        } else {
            printf("%-14s %-16s %-22s %-8s %s\n", st.job->name, st.schedule, st.enabled ? next : "off",
                   st.last_status[0] ? st.last_status : "never", st.last_started[0] ? st.last_started : "");
        }
    }
    db_close(d);
    if (c->json) {
        if (rc) {
            jw_free(&w);
            return rc;
        }
        jw_arr_close(&w);
        return cli_print_json(&w, e);
    }
    return rc;
}

int cmd_jobs_run(cli *c, err *e)
{
    const job_def *j = sched_job_find(c->argv[0]);
    if (!j) return err_field(e, ERR_INVALID, "unknown_job", "name", "unknown job '%s' (known: %s)", c->argv[0], sched_job_names());
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    job_result r;
    rc = sched_run(d, &c->cfg, j, "manual", 0, NULL, &r, e);
    db_close(d);
    if (rc) return rc;
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "job", j->name);
        jw_kv_int(&w, "run_id", r.run_id);
        jw_kv_str(&w, "status", r.ok ? "ok" : "failed");
        jw_kv_str(&w, "message", r.summary);
        jw_kv_int(&w, "ms", r.duration_ms);
        jw_obj_close(&w);
        if (cli_print_json(&w, e)) return e->code;
        return r.ok ? 0 : 1;
    }
    if (!r.ok) return err_set(e, ERR_INTERNAL, "job %s failed: %s", j->name, r.summary);
    printf("job %s ok in %lld ms: %s\n", j->name, (long long)r.duration_ms, r.summary);
    return 0;
}
