/* test_sched.c - the scheduler's decision (pure) and its runs against a real
 * migrated database: adoption, one run per due time, catch-up for the
 * latest missed time only, leases and run records. */
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
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "cron.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "scheduler.h"
#include "unit_fs.h"

/* ------------------------------------------------------------ helpers */

static void use_shanghai(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
}

/* A Shanghai wall-clock time (UTC+8 all year, no DST) as a Unix time,
 * computed with timegm from the UTC fields: local - 8 h. */
static time_t sh(int y, int mo, int d, int h, int mi)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return timegm(&tm) - 8 * 3600;
}

static cron_expr cron(const char *s)
{
    cron_expr ce;
    err e;
    err_clear(&e);
    int rc = cron_parse(s, &ce, &e);
    if (rc) print_error("cron_parse(%s): %s\n", s, e.msg);
    assert_int_equal(rc, 0);
    return ce;
}

typedef struct fixture {
    char dir[64];
    char path[128];
    db *d;
    cfg c;
} fixture;

static int setup(void **state)
{
    use_shanghai();
    log_set_level(LOG_OFF);
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_sched_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/bandbill.db", f->dir);
    err e;
    err_clear(&e);
    if (db_open(f->path, DB_OPEN_CREATE, &f->d, &e) || migrate_apply(f->d, NULL, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    cfg_defaults(&f->c);
    snprintf(f->c.backup_dir, sizeof f->c.backup_dir, "%s/backups", f->dir);
    /* these tests follow backup and db.optimize; the other jobs would only
     * add runs to count (and want a key file) */
    for (int i = 0; i < sched_jobs_count; i++) {
        if (strcmp(sched_jobs[i].name, "backup") && strcmp(sched_jobs[i].name, "db.optimize")) {
            char key[128];
            snprintf(key, sizeof key, "jobs.%s", sched_jobs[i].name);
            if (cfg_set(&f->c, key, "off", "test", &e)) return -1;
        }
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    db_close(f->d);
    remove_tree(f->dir);
    free(f);
    metrics_reset();
    log_release();
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static int64_t get_int(db *d, const char *sql, const char *arg)
{
    int64_t v = -1;
    err e;
    err_clear(&e);
    int rc = arg ? db_get_int(d, &e, &v, sql, "s", arg) : db_get_int(d, &e, &v, sql, NULL);
    if (rc) print_error("%s: %s\n", sql, e.msg);
    assert_int_equal(rc, 0);
    return v;
}

/* The first column of the first row as text ("" for NULL), "(none)" if no row. */
static void get_text(db *d, const char *sql, const char *arg, char *out, size_t n)
{
    err e;
    err_clear(&e);
    db_stmt *s = db_prepare(d, sql, &e);
    assert_non_null(s);
    if (arg) db_bind_text(s, 1, arg);
    int rc = db_step(d, s, &e);
    assert_true(rc >= 0);
    snprintf(out, n, "%s", rc == DB_ROW ? (db_col_is_null(s, 0) ? "(null)" : db_col_text(s, 0)) : "(none)");
    while (rc == DB_ROW) rc = db_step(d, s, &e);
}

static int64_t runs(db *d) { return get_int(d, "SELECT count(*) FROM job_runs", NULL); }
static int64_t runs_of(db *d, const char *job) { return get_int(d, "SELECT count(*) FROM job_runs WHERE job = ?", job); }

static void check_last_scheduled(db *d, const char *job, const char *want)
{
    char got[64];
    get_text(d, "SELECT last_scheduled_for FROM job_state WHERE job = ?", job, got, sizeof got);
    if (strcmp(got, want)) print_error("job_state(%s).last_scheduled_for = %s, want %s\n", job, got, want);
    assert_string_equal(got, want);
}

static int count_backup_files(const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dh)))
        if (!strncmp(de->d_name, "bandbill-", 9) && strstr(de->d_name, ".db") &&
            !strstr(de->d_name, ".partial"))
            n++;
    closedir(dh);
    return n;
}

/* -------------------------------------------------------- sched_decide */

static void test_decide_first_sight_adopts(void **state)
{
    (void)state;
    use_shanghai();
    cron_expr ce = cron("0 3 * * *");
    time_t at = 0;
    assert_int_equal(sched_decide(&ce, -1, sh(2026, 11, 27, 10, 0), &at), SCHED_ADOPT);
    assert_int_equal(at, sh(2026, 11, 27, 3, 0));   /* the latest scheduled time, remembered */
}

static void test_decide_last_equal_to_latest_is_idle(void **state)
{
    (void)state;
    use_shanghai();
    cron_expr ce = cron("0 3 * * *");
    time_t at = 0;
    assert_int_equal(sched_decide(&ce, sh(2026, 11, 27, 3, 0), sh(2026, 11, 27, 10, 0), &at), SCHED_IDLE);
    assert_int_equal(sched_decide(&ce, sh(2026, 11, 27, 3, 0), sh(2026, 11, 28, 2, 59), &at), SCHED_IDLE);
}

static void test_decide_missed_one_runs_it(void **state)
{
    (void)state;
    use_shanghai();
    cron_expr ce = cron("0 3 * * *");
    time_t at = 0;
    assert_int_equal(sched_decide(&ce, sh(2026, 11, 26, 3, 0), sh(2026, 11, 27, 10, 0), &at), SCHED_RUN);
    assert_int_equal(at, sh(2026, 11, 27, 3, 0));
}

static void test_decide_missed_many_runs_latest_only(void **state)
{
    (void)state;
    use_shanghai();
    cron_expr ce = cron("0 3 * * *");
    time_t at = 0;
    /* down from after the run of 11-20 to 11-27 10:00: 7 runs missed, one run for 11-27 03:00 */
    assert_int_equal(sched_decide(&ce, sh(2026, 11, 20, 3, 0), sh(2026, 11, 27, 10, 0), &at), SCHED_RUN);
    assert_int_equal(at, sh(2026, 11, 27, 3, 0));
    assert_int_not_equal(at, sh(2026, 11, 21, 3, 0));
    /* once run for it, nothing more is due */
    assert_int_equal(sched_decide(&ce, at, sh(2026, 11, 27, 10, 0), &at), SCHED_IDLE);
}

static void test_decide_at_the_exact_minute_runs(void **state)
{
    (void)state;
    use_shanghai();
    cron_expr ce = cron("0 3 * * *");
    time_t at = 0;
    assert_int_equal(sched_decide(&ce, sh(2026, 11, 26, 3, 0), sh(2026, 11, 27, 3, 0), &at), SCHED_RUN);
    assert_int_equal(at, sh(2026, 11, 27, 3, 0));
    /* 59 seconds into the minute: still that minute */
    assert_int_equal(sched_decide(&ce, sh(2026, 11, 26, 3, 0), sh(2026, 11, 27, 3, 0) + 59, &at), SCHED_RUN);
    assert_int_equal(at, sh(2026, 11, 27, 3, 0));
}

static void test_decide_before_the_time_is_idle(void **state)
{
    (void)state;
    use_shanghai();
    cron_expr ce = cron("0 3 * * *");
    time_t at = 0;
    assert_int_equal(sched_decide(&ce, sh(2026, 11, 26, 3, 0), sh(2026, 11, 27, 2, 59), &at), SCHED_IDLE);
}

static void test_decide_weekly_latest_is_last_sunday(void **state)
{
    (void)state;
    use_shanghai();
    cron_expr ce = cron("30 4 * * 0");
    time_t at = 0;
    /* Friday 2026-11-27: the latest Sunday 04:30 is 2026-11-22 */
    assert_int_equal(sched_decide(&ce, sh(2026, 11, 1, 4, 30), sh(2026, 11, 27, 10, 0), &at), SCHED_RUN);
    assert_int_equal(at, sh(2026, 11, 22, 4, 30));
}

static void test_decide_clock_moved_back_is_idle(void **state)
{
    (void)state;
    use_shanghai();
    cron_expr ce = cron("0 3 * * *");
    time_t at = 0;
    /* last run is for a time after now: nothing runs again */
    assert_int_equal(sched_decide(&ce, sh(2026, 11, 28, 3, 0), sh(2026, 11, 27, 10, 0), &at), SCHED_IDLE);
}

static void test_decide_never_firing_schedule_is_idle(void **state)
{
    (void)state;
    use_shanghai();
    cron_expr ce = cron("0 0 30 2 *");   /* February 30th */
    time_t at = 0;
    assert_int_equal(sched_decide(&ce, -1, sh(2026, 11, 27, 10, 0), &at), SCHED_IDLE);
}

/* ---------------------------------------------------------- job table */

static void test_job_find(void **state)
{
    (void)state;
    const job_def *j = sched_job_find("backup");
    assert_non_null(j);
    assert_string_equal(j->name, "backup");
    assert_non_null(j->fn);
    assert_non_null(sched_job_find("db.optimize"));
    assert_null(sched_job_find("nope"));
    assert_null(sched_job_find(""));
    assert_null(sched_job_find("BACKUP"));
    assert_null(sched_job_find("backup "));
}

static void test_job_names_lists_every_job(void **state)
{
    (void)state;
    const char *names = sched_job_names();
    for (int i = 0; i < sched_jobs_count; i++) assert_non_null(strstr(names, sched_jobs[i].name));
}

static void test_every_job_default_schedule_parses(void **state)
{
    (void)state;
    for (int i = 0; i < sched_jobs_count; i++) {
        assert_non_null(sched_jobs[i].help);
        if (strcmp(sched_jobs[i].cron, "off") == 0) continue;
        cron(sched_jobs[i].cron);
    }
}

static void test_schedule_from_config_or_default(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    const job_def *j = sched_job_find("backup");
    cron_expr ce;
    const char *text = NULL;
    int enabled = -1;
    err e;
    err_clear(&e);
    assert_int_equal(sched_schedule(&c, j, &ce, &text, &enabled, &e), 0);
    assert_string_equal(text, j->cron);
    assert_int_equal(enabled, 1);
    assert_int_equal(cfg_set(&c, "jobs.backup", "15 2 * * *", "test", &e), 0);
    assert_int_equal(sched_schedule(&c, j, &ce, &text, &enabled, &e), 0);
    assert_string_equal(text, "15 2 * * *");
    assert_true(ce.hour == (1u << 2));
    assert_true(ce.minute == ((uint64_t)1 << 15));
    assert_int_equal(cfg_set(&c, "jobs.backup", "off", "test", &e), 0);
    assert_int_equal(sched_schedule(&c, j, &ce, &text, &enabled, &e), 0);
    assert_int_equal(enabled, 0);
}

/* -------------------------------------------------- sched_tick with a db */

static void test_tick_first_sight_adopts_without_running(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    /* Thursday 2026-11-26 10:00 in Shanghai */
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 26, 10, 0), NULL, &e), 0);
    assert_int_equal(runs(f->d), 0);
    /* backup: 2026-11-26 03:00 +08 = 2026-11-25T19:00Z */
    check_last_scheduled(f->d, "backup", "2026-11-25T19:00:00.000Z");
    /* db.optimize: Sunday 2026-11-22 04:30 +08 = 2026-11-21T20:30Z */
    check_last_scheduled(f->d, "db.optimize", "2026-11-21T20:30:00.000Z");
    assert_int_equal(count_backup_files(f->c.backup_dir), 0);
}

static void test_tick_at_scheduled_time_runs_once(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 26, 10, 0), NULL, &e), 0);
    /* 30 s after Friday 2026-11-27 03:00: the backup is due, db.optimize is not */
    time_t now = sh(2026, 11, 27, 3, 0) + 30;
    assert_int_equal(sched_tick(f->d, &f->c, now, NULL, &e), 0);
    assert_int_equal(runs(f->d), 1);
    assert_int_equal(runs_of(f->d, "backup"), 1);
    char s[64];
    get_text(f->d, "SELECT trigger FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_true(!strcmp(s, "schedule") || !strcmp(s, "catchup"));
    get_text(f->d, "SELECT status FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "ok");
    /* 2026-11-27 03:00 +08 = 2026-11-26T19:00Z */
    get_text(f->d, "SELECT scheduled_for FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "2026-11-26T19:00:00.000Z");
    check_last_scheduled(f->d, "backup", "2026-11-26T19:00:00.000Z");
    assert_int_equal(count_backup_files(f->c.backup_dir), 1);

    /* the same time again: nothing more */
    assert_int_equal(sched_tick(f->d, &f->c, now, NULL, &e), 0);
    assert_int_equal(runs(f->d), 1);
    /* a minute later: still nothing */
    assert_int_equal(sched_tick(f->d, &f->c, now + 60, NULL, &e), 0);
    assert_int_equal(runs(f->d), 1);
    check_last_scheduled(f->d, "backup", "2026-11-26T19:00:00.000Z");
}

static void test_tick_on_time_is_schedule_trigger(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 26, 10, 0), NULL, &e), 0);
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 27, 3, 0) + 30, NULL, &e), 0);
    char s[64];
    get_text(f->d, "SELECT trigger FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "schedule");
}

static void test_tick_after_downtime_catches_up_once_for_latest(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 26, 10, 0), NULL, &e), 0);
    /* down until Monday 2026-11-30 09:00: backups of 27, 28, 29 and 30 missed,
     * db.optimize of Sunday 29 missed */
    time_t now = sh(2026, 11, 30, 9, 0);
    assert_int_equal(sched_tick(f->d, &f->c, now, NULL, &e), 0);
    assert_int_equal(runs_of(f->d, "backup"), 1);
    assert_int_equal(runs_of(f->d, "db.optimize"), 1);
    char s[64];
    get_text(f->d, "SELECT trigger FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "catchup");
    get_text(f->d, "SELECT status FROM job_runs WHERE job = ?", "db.optimize", s, sizeof s);
    assert_string_equal(s, "ok");
    /* 2026-11-30 03:00 +08 = 2026-11-29T19:00Z; 2026-11-29 04:30 +08 = 2026-11-28T20:30Z */
    check_last_scheduled(f->d, "backup", "2026-11-29T19:00:00.000Z");
    check_last_scheduled(f->d, "db.optimize", "2026-11-28T20:30:00.000Z");
    get_text(f->d, "SELECT scheduled_for FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "2026-11-29T19:00:00.000Z");

    assert_int_equal(sched_tick(f->d, &f->c, now, NULL, &e), 0);
    assert_int_equal(runs(f->d), 2);
}

static void test_tick_skips_jobs_that_are_off(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(cfg_set(&f->c, "jobs.backup", "off", "test", &e), 0);
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 26, 10, 0), NULL, &e), 0);
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 30, 9, 0), NULL, &e), 0);
    assert_int_equal(runs_of(f->d, "backup"), 0);
    assert_int_equal(runs_of(f->d, "db.optimize"), 1);
}

static void test_tick_runs_due_db_optimize_successfully(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(cfg_set(&f->c, "jobs.backup", "off", "test", &e), 0);
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 26, 10, 0), NULL, &e), 0);
    /* 30 s after Sunday 2026-11-29 04:30 */
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 29, 4, 30) + 30, NULL, &e), 0);
    assert_int_equal(runs_of(f->d, "db.optimize"), 1);
    char s[600];
    get_text(f->d, "SELECT status FROM job_runs WHERE job = ?", "db.optimize", s, sizeof s);
    if (strcmp(s, "ok")) {
        char msg[600];
        get_text(f->d, "SELECT message FROM job_runs WHERE job = ?", "db.optimize", msg, sizeof msg);
        print_error("db.optimize: %s\n", msg);
    }
    assert_string_equal(s, "ok");
}

static void test_tick_uses_configured_schedule(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(cfg_set(&f->c, "jobs.backup", "*/15 * * * *", "test", &e), 0);
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 26, 10, 5), NULL, &e), 0);
    check_last_scheduled(f->d, "backup", "2026-11-26T02:00:00.000Z");   /* 10:00 +08 */
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 26, 10, 16), NULL, &e), 0);
    assert_int_equal(runs_of(f->d, "backup"), 1);
    check_last_scheduled(f->d, "backup", "2026-11-26T02:15:00.000Z");   /* 10:15 +08 */
}

static void test_tick_stops_when_asked(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    volatile int stop = 1;
    assert_int_equal(sched_tick(f->d, &f->c, sh(2026, 11, 26, 10, 0), (const volatile int *)&stop, &e), 0);
    assert_int_equal(get_int(f->d, "SELECT count(*) FROM job_state", NULL), 0);
}

/* --------------------------------------------------------- sched_run */

static void test_run_manual_records_the_run(void **state)
{
    fixture *f = *state;
    job_result r;
    err e;
    err_clear(&e);
    int rc = sched_run(f->d, &f->c, sched_job_find("backup"), "manual", 0, NULL, &r, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(r.ok, 1);
    assert_string_equal(r.trigger, "manual");
    assert_true(r.run_id > 0);
    assert_true(r.duration_ms >= 0);
    assert_true(strncmp(r.summary, "wrote ", 6) == 0);
    assert_int_equal(count_backup_files(f->c.backup_dir), 1);

    char s[600];
    get_text(f->d, "SELECT status FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "ok");
    get_text(f->d, "SELECT scheduled_for FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "(null)");   /* on demand */
    get_text(f->d, "SELECT message FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, r.summary);
    get_text(f->d, "SELECT finished_at FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_int_equal(strlen(s), 24);
    /* the lease is given back, and a manual run does not move the schedule */
    get_text(f->d, "SELECT lease_holder FROM job_state WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "(null)");
    check_last_scheduled(f->d, "backup", "(null)");
}

static void test_run_failing_job_is_recorded_as_failed(void **state)
{
    fixture *f = *state;
    /* backup.dir under a regular file cannot be created */
    char file[160];
    snprintf(file, sizeof file, "%s/plainfile", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(f->c.backup_dir, sizeof f->c.backup_dir, "%s/backups", file);
    job_result r;
    err e;
    err_clear(&e);
    assert_int_equal(sched_run(f->d, &f->c, sched_job_find("backup"), "manual", 0, NULL, &r, &e), 0);
    assert_int_equal(r.ok, 0);
    assert_true(r.summary[0] != '\0');
    char s[600];
    get_text(f->d, "SELECT status FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "failed");
    get_text(f->d, "SELECT message FROM job_runs WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, r.summary);
    get_text(f->d, "SELECT lease_holder FROM job_state WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "(null)");
}

static void test_run_refused_while_another_process_holds_the_lease(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO job_state (job, lease_holder, lease_until) "
                            "VALUES ('backup', 'another-host.example:1', '2999-01-01T00:00:00.000Z')",
                            NULL),
                     0);
    job_result r;
    assert_int_equal(sched_run(f->d, &f->c, sched_job_find("backup"), "manual", 0, NULL, &r, &e), ERR_BUSY);
    assert_int_equal(runs(f->d), 0);
    char s[64];
    get_text(f->d, "SELECT lease_holder FROM job_state WHERE job = ?", "backup", s, sizeof s);
    assert_string_equal(s, "another-host.example:1");
}

static void test_run_takes_over_an_expired_lease(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO job_state (job, lease_holder, lease_until) "
                            "VALUES ('backup', 'another-host.example:1', '2000-01-01T00:00:00.000Z')",
                            NULL),
                     0);
    job_result r;
    assert_int_equal(sched_run(f->d, &f->c, sched_job_find("backup"), "manual", 0, NULL, &r, &e), 0);
    assert_int_equal(r.ok, 1);
}

static void test_run_recovers_lease_of_dead_local_process(void **state)
{
    fixture *f = *state;
    char host[128] = "?", holder[200];
    gethostname(host, sizeof host - 1);
    /* no process has pid 999999999 (above any pid_max) */
    snprintf(holder, sizeof holder, "%s:999999999", host);
    err e;
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO job_state (job, lease_holder, lease_until) VALUES ('backup', ?, "
                            "'2999-01-01T00:00:00.000Z')",
                            "s", holder),
                     0);
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO job_runs (job, trigger, started_at, status) "
                            "VALUES ('backup', 'manual', '2026-11-27T00:00:00.000Z', 'running')",
                            NULL),
                     0);
    job_result r;
    assert_int_equal(sched_run(f->d, &f->c, sched_job_find("backup"), "manual", 0, NULL, &r, &e), 0);
    assert_int_equal(r.ok, 1);
    /* the interrupted run is closed as failed */
    assert_int_equal(get_int(f->d, "SELECT count(*) FROM job_runs WHERE status = 'running'", NULL), 0);
    assert_int_equal(get_int(f->d, "SELECT count(*) FROM job_runs WHERE status = 'failed'", NULL), 1);
}

static void test_run_scheduled_moves_last_scheduled_for(void **state)
{
    fixture *f = *state;
    job_result r;
    err e;
    err_clear(&e);
    time_t at = sh(2026, 11, 27, 3, 0);
    assert_int_equal(sched_run(f->d, &f->c, sched_job_find("db.optimize"), "catchup", at, NULL, &r, &e), 0);
    assert_int_equal(r.ok, 1);
    check_last_scheduled(f->d, "db.optimize", "2026-11-26T19:00:00.000Z");
    char s[64];
    get_text(f->d, "SELECT trigger FROM job_runs WHERE job = ?", "db.optimize", s, sizeof s);
    assert_string_equal(s, "catchup");
}

static void test_run_counts_in_metrics(void **state)
{
    fixture *f = *state;
    metrics_reset();
    job_result r;
    err e;
    err_clear(&e);
    assert_int_equal(sched_run(f->d, &f->c, sched_job_find("db.optimize"), "manual", 0, NULL, &r, &e), 0);
    metric *m = metrics_counter("bandbill_job_runs_total", "", "job=\"db.optimize\",status=\"ok\"");
    assert_int_equal(metric_value(m), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_first_sight_adopts),
        cmocka_unit_test(test_decide_last_equal_to_latest_is_idle),
        cmocka_unit_test(test_decide_missed_one_runs_it),
        cmocka_unit_test(test_decide_missed_many_runs_latest_only),
        cmocka_unit_test(test_decide_at_the_exact_minute_runs),
        cmocka_unit_test(test_decide_before_the_time_is_idle),
        cmocka_unit_test(test_decide_weekly_latest_is_last_sunday),
        cmocka_unit_test(test_decide_clock_moved_back_is_idle),
        cmocka_unit_test(test_decide_never_firing_schedule_is_idle),
        cmocka_unit_test(test_job_find),
        cmocka_unit_test(test_job_names_lists_every_job),
        cmocka_unit_test(test_every_job_default_schedule_parses),
        cmocka_unit_test(test_schedule_from_config_or_default),
        T(test_tick_first_sight_adopts_without_running),
        T(test_tick_at_scheduled_time_runs_once),
        T(test_tick_on_time_is_schedule_trigger),
        T(test_tick_after_downtime_catches_up_once_for_latest),
        T(test_tick_skips_jobs_that_are_off),
        T(test_tick_runs_due_db_optimize_successfully),
        T(test_tick_uses_configured_schedule),
        T(test_tick_stops_when_asked),
        T(test_run_manual_records_the_run),
        T(test_run_failing_job_is_recorded_as_failed),
        T(test_run_refused_while_another_process_holds_the_lease),
        T(test_run_takes_over_an_expired_lease),
        T(test_run_recovers_lease_of_dead_local_process),
        T(test_run_scheduled_moves_last_scheduled_for),
        T(test_run_counts_in_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
