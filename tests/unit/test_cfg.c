/* test_cfg.c - configuration: defaults, the one setter, INI files, the
 * BANDBILL_* environment, derived values and listen addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"

/* ------------------------------------------------------------ helpers */

static void set_ok(cfg *c, const char *key, const char *value)
{
    err e;
    err_clear(&e);
    int rc = cfg_set(c, key, value, "test", &e);
    if (rc) print_error("cfg_set(%s = %s): %s\n", key, value, e.msg);
    assert_int_equal(rc, 0);
}

static err set_bad(cfg *c, const char *key, const char *value, const char *tag)
{
    err e;
    err_clear(&e);
    int rc = cfg_set(c, key, value, "test", &e);
    if (rc == 0) print_error("cfg_set(%s = %s) accepted it\n", key, value);
    assert_int_equal(rc, ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    assert_string_equal(err_tag(&e), tag);
    /* the origin is named */
    assert_non_null(strstr(e.msg, "test"));
    return e;
}

/* Writes text into a new temporary file; the caller unlinks path. */
static void write_temp(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/bb_test_cfg_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static int load_text(cfg *c, const char *text, char path[64], err *e)
{
    write_temp(path, text);
    err_clear(e);
    int rc = cfg_load_file(c, path, e);
    unlink(path);
    return rc;
}

/* ----------------------------------------------------------- defaults */

static void test_defaults(void **state)
{
    (void)state;
    cfg c;
    memset(&c, 0x5A, sizeof c);   /* defaults must not depend on prior content */
    cfg_defaults(&c);
    assert_string_equal(c.db, "./var/bandbill.db");
    assert_string_equal(c.rules, "./rules");
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.timezone, "Asia/Shanghai");
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.log_file, "");
    assert_string_equal(c.socket, "");       /* derived by cfg_finish */
    assert_string_equal(c.backup_dir, "");   /* derived by cfg_finish */
    assert_string_equal(c.config_file, "");
    assert_int_equal(c.rules_max_instructions, 5000000);
    assert_int_equal(c.rules_max_memory_mb, 64);
    assert_int_equal(c.rules_watch, 0);
    assert_int_equal(c.http_max_body_kb, 1024);
    assert_int_equal(c.http_timeout_s, 60);
    assert_int_equal(c.http_shutdown_s, 5);
    assert_int_equal(c.backup_keep, 7);
    assert_int_equal(c.njobs, 0);
    assert_null(cfg_job_cron(&c, "backup"));
}

static void test_defaults_pass_cfg_finish(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e;
    err_clear(&e);
    int rc = cfg_finish(&c, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
}

/* ------------------------------------------------------------- cfg_set */

static void test_set_string_keys(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "db", "/srv/bb/bandbill.db");
    set_ok(&c, "rules", "/srv/bb/rules");
    set_ok(&c, "listen", "0.0.0.0:9000");
    set_ok(&c, "socket", "/run/bb.sock");
    set_ok(&c, "timezone", "UTC");
    set_ok(&c, "log.level", "debug");
    set_ok(&c, "log.file", "/var/log/bb.log");
    set_ok(&c, "backup.dir", "/srv/backups");
    assert_string_equal(c.db, "/srv/bb/bandbill.db");
    assert_string_equal(c.rules, "/srv/bb/rules");
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_string_equal(c.socket, "/run/bb.sock");
    assert_string_equal(c.timezone, "UTC");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.log_file, "/var/log/bb.log");
    assert_string_equal(c.backup_dir, "/srv/backups");
}

static void test_set_string_too_long(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char longv[CFG_PATH + 10];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    err e = set_bad(&c, "db", longv, "invalid_config");
    assert_string_equal(e.field, "db");
    assert_string_equal(c.db, "./var/bandbill.db");   /* unchanged */
    /* the longest value that fits */
    longv[CFG_PATH - 1] = '\0';
    set_ok(&c, "db", longv);
    assert_int_equal(strlen(c.db), CFG_PATH - 1);
}

static void test_set_int_keys_at_their_bounds(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "rules.max_instructions", "1000");
    assert_int_equal(c.rules_max_instructions, 1000);
    set_ok(&c, "rules.max_instructions", "1000000000");
    assert_int_equal(c.rules_max_instructions, 1000000000);
    set_ok(&c, "rules.max_memory_mb", "4");
    assert_int_equal(c.rules_max_memory_mb, 4);
    set_ok(&c, "http.max_body_kb", "65536");
    assert_int_equal(c.http_max_body_kb, 65536);
    set_ok(&c, "http.timeout_s", "1");
    assert_int_equal(c.http_timeout_s, 1);
    set_ok(&c, "http.shutdown_s", "60");
    assert_int_equal(c.http_shutdown_s, 60);
    set_ok(&c, "backup.keep", "1000");
    assert_int_equal(c.backup_keep, 1000);
}

static void test_set_int_out_of_range(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e = set_bad(&c, "rules.max_instructions", "999", "invalid_config");
    assert_string_equal(e.field, "rules.max_instructions");
    assert_non_null(strstr(e.msg, "1000"));
    set_bad(&c, "rules.max_instructions", "1000000001", "invalid_config");
    set_bad(&c, "http.shutdown_s", "61", "invalid_config");
    set_bad(&c, "http.timeout_s", "0", "invalid_config");
    set_bad(&c, "backup.keep", "-5", "invalid_config");
    set_bad(&c, "backup.keep", "99999999999999999999999", "invalid_config");   /* beyond long long */
    assert_int_equal(c.rules_max_instructions, 5000000);   /* unchanged */
    assert_int_equal(c.backup_keep, 7);
}

static void test_set_int_not_a_number(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_bad(&c, "backup.keep", "abc", "invalid_config");
    set_bad(&c, "backup.keep", "", "invalid_config");
    set_bad(&c, "backup.keep", "12x", "invalid_config");
    set_bad(&c, "backup.keep", "1.5", "invalid_config");
    set_bad(&c, "backup.keep", "0x10", "invalid_config");
    set_bad(&c, "backup.keep", "12 ", "invalid_config");
    assert_int_equal(c.backup_keep, 7);
}

static void test_set_bool_spellings(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        set_ok(&c, "rules.watch", yes[i]);
        assert_int_equal(c.rules_watch, 1);
        set_ok(&c, "rules.watch", no[i]);
        assert_int_equal(c.rules_watch, 0);
    }
}

static void test_set_bool_bad(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "rules.watch", "yes");
    err e = set_bad(&c, "rules.watch", "maybe", "invalid_config");
    assert_string_equal(e.field, "rules.watch");
    set_bad(&c, "rules.watch", "2", "invalid_config");
    set_bad(&c, "rules.watch", "", "invalid_config");
    set_bad(&c, "rules.watch", "y", "invalid_config");
    assert_int_equal(c.rules_watch, 1);   /* unchanged */
}

static void test_set_unknown_key(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e = set_bad(&c, "nope", "1", "unknown_config_key");
    assert_string_equal(e.field, "nope");
    assert_non_null(strstr(e.msg, "nope"));
    set_bad(&c, "log", "info", "unknown_config_key");
    set_bad(&c, "log.level.x", "info", "unknown_config_key");
    set_bad(&c, "LOG.LEVEL", "info", "unknown_config_key");
    set_bad(&c, "", "x", "unknown_config_key");
    set_bad(&c, "jobs", "off", "unknown_config_key");
    set_bad(&c, "var_dir", "/x", "unknown_config_key");     /* derived, not settable */
    set_bad(&c, "config_file", "/x", "unknown_config_key");
}

static void test_set_job_schedule(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "jobs.backup", "15 2 * * *");
    assert_string_equal(cfg_job_cron(&c, "backup"), "15 2 * * *");
    assert_int_equal(c.njobs, 1);
    /* setting it again replaces it */
    set_ok(&c, "jobs.backup", "@daily");
    assert_string_equal(cfg_job_cron(&c, "backup"), "@daily");
    assert_int_equal(c.njobs, 1);
    assert_null(cfg_job_cron(&c, "db.optimize"));
}

static void test_set_job_off(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "jobs.db.optimize", "off");
    assert_string_equal(cfg_job_cron(&c, "db.optimize"), "off");
}

static void test_set_job_unknown_name(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e = set_bad(&c, "jobs.nope", "0 3 * * *", "unknown_config_key");
    /* lists the jobs there are */
    assert_non_null(strstr(e.msg, "backup"));
    assert_non_null(strstr(e.msg, "db.optimize"));
    set_bad(&c, "jobs.", "off", "unknown_config_key");
    assert_int_equal(c.njobs, 0);
}

static void test_set_job_bad_cron(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e = set_bad(&c, "jobs.backup", "61 * * * *", "invalid");
    assert_non_null(strstr(e.msg, "jobs.backup"));
    set_bad(&c, "jobs.backup", "* * *", "invalid");
    set_bad(&c, "jobs.backup", "", "invalid");
    set_bad(&c, "jobs.backup", "Off", "invalid");   /* "off" is the only word for disabled */
    assert_null(cfg_job_cron(&c, "backup"));
    assert_int_equal(c.njobs, 0);
}

/* ---------------------------------------------------------- cfg_load_file */

static void test_load_file_sections_and_comments(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char path[64];
    write_temp(path,
               "# a comment\n"
               "; another comment\n"
               "db = /srv/bb/bandbill.db\n"
               "listen = 0.0.0.0:9090\n"
               "\n"
               "[log]\n"
               "level = debug\n"
               "\n"
               "[rules]\n"
               "max_instructions = 20000\n"
               "watch = yes\n"
               "\n"
               "[jobs]\n"
               "backup = 0 2 * * *\n"
               "db.optimize = off\n");
    err e;
    err_clear(&e);
    int rc = cfg_load_file(&c, path, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(c.db, "/srv/bb/bandbill.db");
    assert_string_equal(c.listen, "0.0.0.0:9090");
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.rules_max_instructions, 20000);
    assert_int_equal(c.rules_watch, 1);
    assert_string_equal(cfg_job_cron(&c, "backup"), "0 2 * * *");
    assert_string_equal(cfg_job_cron(&c, "db.optimize"), "off");
    assert_string_equal(c.config_file, path);
    /* untouched keys keep their defaults */
    assert_int_equal(c.backup_keep, 7);
    unlink(path);
}

static void test_load_file_unknown_key_names_file_and_line(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char path[64], want[128];
    err e;
    int rc = load_text(&c, "db = /x/y.db\n\n[log]\nlevel = info\nbogus = 1\n", path, &e);
    assert_int_equal(rc, ERR_INVALID);
    assert_string_equal(err_tag(&e), "unknown_config_key");
    snprintf(want, sizeof want, "%s:5:", path);   /* bogus is on line 5 */
    if (strncmp(e.msg, want, strlen(want)) != 0) print_error("message: %s\n", e.msg);
    assert_true(strncmp(e.msg, want, strlen(want)) == 0);
    assert_non_null(strstr(e.msg, "log.bogus"));
    assert_string_equal(c.config_file, "");   /* a failed file is not recorded */
}

static void test_load_file_bad_value_names_file_and_line(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char path[64], want[128];
    err e;
    int rc = load_text(&c, "[http]\ntimeout_s = 0\n", path, &e);
    assert_int_equal(rc, ERR_INVALID);
    snprintf(want, sizeof want, "%s:2:", path);
    assert_true(strncmp(e.msg, want, strlen(want)) == 0);
    assert_non_null(strstr(e.msg, "http.timeout_s"));
    assert_int_equal(c.http_timeout_s, 60);
}

static void test_load_file_bad_cron_names_file_and_line(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char path[64], want[128];
    err e;
    int rc = load_text(&c, "[jobs]\n# nightly\nbackup = 0 25 * * *\n", path, &e);
    assert_int_equal(rc, ERR_INVALID);
    snprintf(want, sizeof want, "%s:3:", path);
    if (strncmp(e.msg, want, strlen(want)) != 0) print_error("message: %s\n", e.msg);
    assert_true(strncmp(e.msg, want, strlen(want)) == 0);
    assert_non_null(strstr(e.msg, "jobs.backup"));
}

static void test_load_file_syntax_error_names_file_and_line(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char path[64], want[128];
    err e;
    int rc = load_text(&c, "db = /x.db\nthis line is not ini\n", path, &e);
    assert_int_equal(rc, ERR_INVALID);
    snprintf(want, sizeof want, "%s:2:", path);
    assert_true(strncmp(e.msg, want, strlen(want)) == 0);
}

static void test_load_file_error_line_matches_the_message(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char path[64], at2[128], at3[128];
    err e;
    /* line 2 is not ini, line 3 has an unknown key: whichever is reported,
     * the line number must be the one of the line the message describes */
    int rc = load_text(&c, "[log]\nthis is not ini\nbogus = 1\n", path, &e);
    assert_int_equal(rc, ERR_INVALID);
    snprintf(at2, sizeof at2, "%s:2:", path);
    snprintf(at3, sizeof at3, "%s:3:", path);
    if (strstr(e.msg, "bogus")) {
        if (strncmp(e.msg, at3, strlen(at3)) != 0) print_error("message: %s\n", e.msg);
        assert_true(strncmp(e.msg, at3, strlen(at3)) == 0);
    } else {
        assert_true(strncmp(e.msg, at2, strlen(at2)) == 0);
    }
}

static void test_load_file_missing(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e;
    err_clear(&e);
    assert_int_equal(cfg_load_file(&c, "/nonexistent/dir/bandbill.ini", &e), ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent/dir/bandbill.ini"));
}

/* ----------------------------------------------------------- cfg_load_env */

static void test_load_env_known_variables(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char *envp[] = {
        "PATH=/usr/bin:/bin",
        "HOME=/root",
        "BANDBILL_DB=/srv/bb/bandbill.db",
        "BANDBILL_LOG_LEVEL=debug",
        "BANDBILL_RULES_MAX_INSTRUCTIONS=123456",
        "BANDBILL_JOBS_BACKUP=0 1 * * *",
        "BANDBILL_JOBS_DB_OPTIMIZE=off",
        "BANDBILL_CONFIG=/nonexistent.ini",
        "BANDBILL_RULES_WATCH=true",
        "BANDBILL_HTTP_MAX_BODY_KB=2048",
        "BANDBILL_BACKUP_DIR=/srv/backups",
        NULL,
    };
    err e;
    err_clear(&e);
    int rc = cfg_load_env(&c, envp, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(c.db, "/srv/bb/bandbill.db");
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.rules_max_instructions, 123456);
    assert_string_equal(cfg_job_cron(&c, "backup"), "0 1 * * *");
    assert_string_equal(cfg_job_cron(&c, "db.optimize"), "off");   /* DB_OPTIMIZE -> db.optimize */
    assert_int_equal(c.rules_watch, 1);
    assert_int_equal(c.http_max_body_kb, 2048);
    assert_string_equal(c.backup_dir, "/srv/backups");
    /* BANDBILL_CONFIG is for the caller: neither applied nor an error */
    assert_string_equal(c.config_file, "");
}

static void test_load_env_ignores_other_variables(void **state)
{
    (void)state;
    cfg c, d;
    cfg_defaults(&c);
    cfg_defaults(&d);
    char *envp[] = {"PATH=/bin", "bandbill_db=/x.db", "XBANDBILL_DB=/y.db", "BANDBILL_CONFIG=/z.ini",
                    "BANDBILLDB=/w.db", NULL};
    err e;
    err_clear(&e);
    assert_int_equal(cfg_load_env(&c, envp, &e), 0);
    assert_memory_equal(&c, &d, sizeof c);
    assert_int_equal(cfg_load_env(&c, NULL, &e), 0);
}

static void test_load_env_unknown_variable(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char *envp[] = {"BANDBILL_FOO=1", NULL};
    err e;
    err_clear(&e);
    assert_int_equal(cfg_load_env(&c, envp, &e), ERR_INVALID);
    assert_string_equal(err_tag(&e), "unknown_config_key");
    assert_string_equal(e.field, "BANDBILL_FOO");
    assert_non_null(strstr(e.msg, "BANDBILL_FOO"));
}

static void test_load_env_bad_value_names_the_variable(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char *envp[] = {"BANDBILL_HTTP_TIMEOUT_S=0", NULL};
    err e;
    err_clear(&e);
    assert_int_equal(cfg_load_env(&c, envp, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "BANDBILL_HTTP_TIMEOUT_S"));
    assert_int_equal(c.http_timeout_s, 60);
}

static void test_load_env_unknown_job_and_bad_cron(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    char *unknown_job[] = {"BANDBILL_JOBS_NOPE=off", NULL};
    char *bad_cron[] = {"BANDBILL_JOBS_BACKUP=0 0 32 * *", NULL};
    err e;
    err_clear(&e);
    assert_int_equal(cfg_load_env(&c, unknown_job, &e), ERR_INVALID);
    assert_string_equal(err_tag(&e), "unknown_config_key");
    err_clear(&e);
    assert_int_equal(cfg_load_env(&c, bad_cron, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "BANDBILL_JOBS_BACKUP"));
    assert_int_equal(c.njobs, 0);
}

/* ------------------------------------------------------------- cfg_finish */

static void test_finish_derives_paths_from_db_folder(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e;
    err_clear(&e);
    assert_int_equal(cfg_finish(&c, &e), 0);
    assert_string_equal(c.var_dir, "./var");
    assert_string_equal(c.socket, "./var/bandbill.sock");
    assert_string_equal(c.backup_dir, "./var/backups");

    cfg_defaults(&c);
    set_ok(&c, "db", "/srv/bb/data.db");
    assert_int_equal(cfg_finish(&c, &e), 0);
    assert_string_equal(c.var_dir, "/srv/bb");
    assert_string_equal(c.socket, "/srv/bb/bandbill.sock");
    assert_string_equal(c.backup_dir, "/srv/bb/backups");
}

static void test_finish_db_without_folder(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "db", "bandbill.db");
    err e;
    err_clear(&e);
    assert_int_equal(cfg_finish(&c, &e), 0);
    assert_string_equal(c.var_dir, ".");
    assert_string_equal(c.socket, "./bandbill.sock");
    assert_string_equal(c.backup_dir, "./backups");
}

static void test_finish_keeps_explicit_socket_and_backup_dir(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "db", "/srv/bb/data.db");
    set_ok(&c, "socket", "/run/bb.sock");
    set_ok(&c, "backup.dir", "/mnt/backups");
    err e;
    err_clear(&e);
    assert_int_equal(cfg_finish(&c, &e), 0);
    assert_string_equal(c.socket, "/run/bb.sock");
    assert_string_equal(c.backup_dir, "/mnt/backups");
    assert_string_equal(c.var_dir, "/srv/bb");
}

static void test_finish_refuses_bad_timezone(void **state)
{
    (void)state;
    static const char *const bad[] = {"Mars/Olympus_Mons", "", "../../../etc/passwd", "/etc/localtime",
                                      "Asia", "Asia/../Asia/Shanghai"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cfg c;
        cfg_defaults(&c);
        set_ok(&c, "timezone", bad[i]);
        err e;
        err_clear(&e);
        if (cfg_finish(&c, &e) != ERR_INVALID) print_error("timezone \"%s\" accepted\n", bad[i]);
        assert_int_equal(e.code, ERR_INVALID);
        assert_string_equal(e.field, "timezone");
    }
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "timezone", "UTC");
    err e;
    err_clear(&e);
    assert_int_equal(cfg_finish(&c, &e), 0);
}

static void test_finish_refuses_bad_listen(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "listen", "localhost");
    err e;
    err_clear(&e);
    assert_int_equal(cfg_finish(&c, &e), ERR_INVALID);
    assert_string_equal(e.field, "listen");
}

static void test_finish_refuses_bad_log_level(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    set_ok(&c, "log.level", "verbose");
    err e;
    err_clear(&e);
    assert_int_equal(cfg_finish(&c, &e), ERR_INVALID);
    assert_string_equal(e.field, "log.level");
}

/* ------------------------------------------------------- cfg_split_listen */

static void check_listen(const char *listen, const char *host, int port)
{
    char h[256];
    int p = -1;
    err e;
    err_clear(&e);
    int rc = cfg_split_listen(listen, h, sizeof h, &p, &e);
    if (rc) print_error("cfg_split_listen(%s): %s\n", listen, e.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(h, host);
    assert_int_equal(p, port);
}

static void check_listen_bad(const char *listen, size_t hostn)
{
    char h[256];
    int p = -1;
    err e;
    err_clear(&e);
    int rc = cfg_split_listen(listen, h, hostn, &p, &e);
    if (rc == 0) print_error("cfg_split_listen(%s) accepted it\n", listen);
    assert_int_equal(rc, ERR_INVALID);
    assert_string_equal(e.field, "listen");
}

static void test_split_listen_good(void **state)
{
    (void)state;
    check_listen("127.0.0.1:8080", "127.0.0.1", 8080);
    check_listen("[::1]:8080", "::1", 8080);
    check_listen("[2001:db8::1]:443", "2001:db8::1", 443);
    check_listen("localhost:0", "localhost", 0);   /* port 0: pick a free one */
    check_listen("0.0.0.0:65535", "0.0.0.0", 65535);
}

static void test_split_listen_bad(void **state)
{
    (void)state;
    check_listen_bad("localhost", 256);
    check_listen_bad(":8080", 256);
    check_listen_bad("host:", 256);
    check_listen_bad("host:65536", 256);
    check_listen_bad("host:-1", 256);
    check_listen_bad("host:80x", 256);
    check_listen_bad("[]:80", 256);
    check_listen_bad("", 256);
    check_listen_bad("abcd:80", 4);   /* the host does not fit the buffer */
}

/* --------------------------------------------------------------- cfg_dump */

typedef struct dump_acc {
    int n;
    char watch[16], keep[16], backup_job[96];
} dump_acc;

static void on_dump(void *ud, const char *key, const char *value)
{
    dump_acc *d = ud;
    d->n++;
    if (!strcmp(key, "rules.watch")) snprintf(d->watch, sizeof d->watch, "%s", value);
    if (!strcmp(key, "backup.keep")) snprintf(d->keep, sizeof d->keep, "%s", value);
    if (!strcmp(key, "jobs.backup")) snprintf(d->backup_job, sizeof d->backup_job, "%s", value);
}

static void test_dump_lists_every_key(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    dump_acc d = {0};
    cfg_dump(&c, on_dump, &d);
    /* 26 keys: db rules listen socket timezone log.level log.file customer.code_prefix
     * billing.invoice_prefix billing.credit_note_prefix audit.anchor_file
     * rules.max_instructions rules.max_memory_mb rules.watch http.max_body_kb
     * http.timeout_s http.shutdown_s keys.file plugins.dir payments.query_after_min
     * auth.session_idle_min auth.session_max_hours tls.cert tls.key backup.dir backup.keep;
     * 8 radius.*: db rate_format suspended walled_garden_group walled_garden_reply poll_ms
     * coa_timeout_ms coa_retries; 9 notify.*: dispatch max_attempts backoff_base_s backoff_factor
     * backoff_cap_s backoff_jitter_pct timeout_s concurrency poll_ms */
    assert_int_equal(d.n, 26 + 8 + 9);
    assert_string_equal(d.watch, "false");
    assert_string_equal(d.keep, "7");
    set_ok(&c, "jobs.backup", "0 4 * * *");
    memset(&d, 0, sizeof d);
    cfg_dump(&c, on_dump, &d);
    assert_int_equal(d.n, 26 + 8 + 9 + 1);
    assert_string_equal(d.backup_job, "0 4 * * *");
}

/* ------------------------------------------------------ radius and NASes */

static void test_radius_and_nas(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e;
    assert_string_equal(c.radius_db, "");
    assert_string_equal(c.radius_rate_format, "mikrotik");
    assert_string_equal(c.radius_suspended, "reject");
    assert_int_equal(c.radius_poll_ms, 200);
    set_ok(&c, "nas.bras1.address", "10.0.0.1");
    set_ok(&c, "nas.bras1.secret", "s3cret");
    char *envp[] = {"BANDBILL_NAS_BRAS2_ADDRESS=10.0.0.2", "BANDBILL_NAS_BRAS2_SECRET=x", "BANDBILL_NAS_BRAS2_COA_PORT=1700",
                    "BANDBILL_RADIUS_RATE_FORMAT=h3c", NULL};
    assert_int_equal(cfg_load_env(&c, envp, &e), 0);
    assert_int_equal(c.nnas, 2);
    assert_int_equal(c.nas[0].coa_port, 3799);
    assert_string_equal(c.nas[1].name, "bras2");
    assert_int_equal(c.nas[1].coa_port, 1700);
    assert_string_equal(c.radius_rate_format, "h3c");
    assert_int_equal(cfg_finish(&c, &e), 0);
    set_bad(&c, "nas.bras1.port", "1", "unknown_config_key");
    set_bad(&c, "nas.BRAS.address", "10.0.0.3", "unknown_config_key");
    set_bad(&c, "nas.bras_1.address", "10.0.0.3", "unknown_config_key");
    set_bad(&c, "nas.bras1.coa_port", "0", "invalid_config");
    set_bad(&c, "nas.bras1.coa_port", "65536", "invalid_config");
    set_bad(&c, "nas.bras1.coa_port", "+12", "invalid_config");
    /* cross-checks once everything is set */
    set_ok(&c, "nas.bras3.address", "10.0.0.1");
    assert_int_equal(cfg_finish(&c, &e), ERR_INVALID); /* no secret */
    assert_string_equal(e.field, "nas.bras3");
    set_ok(&c, "nas.bras3.secret", "y");
    assert_int_equal(cfg_finish(&c, &e), ERR_INVALID); /* bras1's address */
    assert_non_null(strstr(e.msg, "same address"));
    set_ok(&c, "nas.bras3.address", "nas3.example");
    assert_int_equal(cfg_finish(&c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "IPv4"));
    set_ok(&c, "nas.bras3.address", "10.0.0.3");
    assert_int_equal(cfg_finish(&c, &e), 0);
    set_ok(&c, "radius.rate_format", "cisco");
    assert_int_equal(cfg_finish(&c, &e), ERR_INVALID);
    assert_string_equal(e.field, "radius.rate_format");
    set_ok(&c, "radius.rate_format", "huawei");
    set_ok(&c, "radius.suspended", "drop");
    assert_int_equal(cfg_finish(&c, &e), ERR_INVALID);
    assert_string_equal(e.field, "radius.suspended");
    set_ok(&c, "radius.suspended", "walled_garden");
    assert_int_equal(cfg_finish(&c, &e), 0);
    /* the dump names each NAS's keys and never a secret */
    dump_acc d = {0};
    cfg_dump(&c, on_dump, &d);
    assert_int_equal(d.n, 26 + 8 + 9 + 3 * 3);
}

/* ------------------------------------------------------- notification channels */

typedef struct notify_acc {
    int n;
    char url[64], secret[64], attempts[16];
} notify_acc;

static void on_notify_dump(void *ud, const char *key, const char *value)
{
    notify_acc *d = ud;
    d->n++;
    if (!strcmp(key, "notify.sms.url")) snprintf(d->url, sizeof d->url, "%s", value);
    if (!strcmp(key, "notify.sms.secret")) snprintf(d->secret, sizeof d->secret, "%s", value);
    if (!strcmp(key, "notify.max_attempts")) snprintf(d->attempts, sizeof d->attempts, "%s", value);
}

static void test_notify_settings(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e;
    assert_int_equal(c.notify_dispatch, 1);
    assert_int_equal(c.notify_max_attempts, 8);
    assert_int_equal(c.notify_backoff_base_s, 30);
    assert_int_equal(c.notify_backoff_factor, 2);
    assert_int_equal(c.notify_backoff_cap_s, 3600);
    assert_int_equal(c.nntset, 0);
    /* a channel's settings are notify.CHANNEL.KEY, from every source */
    set_ok(&c, "notify.sms.url", "http://127.0.0.1:9/sms");
    set_ok(&c, "notify.sms.url", "http://127.0.0.1:8/sms");   /* set again: replaced, not added */
    char *envp[] = {"BANDBILL_NOTIFY_SMS_SECRET=0123456789abcdef", "BANDBILL_NOTIFY_EMAIL_FROM_NAME=示例宽带",
                    "BANDBILL_NOTIFY_MAX_ATTEMPTS=3", NULL};
    assert_int_equal(cfg_load_env(&c, envp, &e), 0);
    assert_int_equal(c.nntset, 3);
    assert_string_equal(c.ntset[0].channel, "sms");
    assert_string_equal(c.ntset[0].value, "http://127.0.0.1:8/sms");
    assert_string_equal(c.ntset[1].key, "secret");
    assert_string_equal(c.ntset[2].channel, "email");
    assert_string_equal(c.ntset[2].key, "from_name");   /* the first '_' after the channel is the break */
    assert_int_equal(c.notify_max_attempts, 3);         /* a fixed key before a channel setting */
    set_bad(&c, "notify.max_attempts", "0", "invalid_config");
    set_bad(&c, "notify.backoff_factor", "11", "invalid_config");
    set_bad(&c, "notify.nosuch", "1", "unknown_config_key");
    set_bad(&c, "notify.SMS.url", "x", "unknown_config_key");
    set_bad(&c, "notify.sms.", "x", "unknown_config_key");
    set_bad(&c, "notify.sms.url-x", "x", "unknown_config_key");
    /* the dump: 26 + 8 + 9 fixed keys and the three settings, the secret not shown */
    notify_acc d = {0};
    cfg_dump(&c, on_notify_dump, &d);
    assert_int_equal(d.n, 26 + 8 + 9 + 3);
    assert_string_equal(d.url, "http://127.0.0.1:8/sms");
    assert_string_equal(d.secret, "(set, not shown)");
    assert_string_equal(d.attempts, "3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_settings),
        cmocka_unit_test(test_radius_and_nas),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_defaults_pass_cfg_finish),
        cmocka_unit_test(test_set_string_keys),
        cmocka_unit_test(test_set_string_too_long),
        cmocka_unit_test(test_set_int_keys_at_their_bounds),
        cmocka_unit_test(test_set_int_out_of_range),
        cmocka_unit_test(test_set_int_not_a_number),
        cmocka_unit_test(test_set_bool_spellings),
        cmocka_unit_test(test_set_bool_bad),
        cmocka_unit_test(test_set_unknown_key),
        cmocka_unit_test(test_set_job_schedule),
        cmocka_unit_test(test_set_job_off),
        cmocka_unit_test(test_set_job_unknown_name),
        cmocka_unit_test(test_set_job_bad_cron),
        cmocka_unit_test(test_load_file_sections_and_comments),
        cmocka_unit_test(test_load_file_unknown_key_names_file_and_line),
        cmocka_unit_test(test_load_file_bad_value_names_file_and_line),
        cmocka_unit_test(test_load_file_bad_cron_names_file_and_line),
        cmocka_unit_test(test_load_file_syntax_error_names_file_and_line),
        cmocka_unit_test(test_load_file_error_line_matches_the_message),
        cmocka_unit_test(test_load_file_missing),
        cmocka_unit_test(test_load_env_known_variables),
        cmocka_unit_test(test_load_env_ignores_other_variables),
        cmocka_unit_test(test_load_env_unknown_variable),
        cmocka_unit_test(test_load_env_bad_value_names_the_variable),
        cmocka_unit_test(test_load_env_unknown_job_and_bad_cron),
        cmocka_unit_test(test_finish_derives_paths_from_db_folder),
        cmocka_unit_test(test_finish_db_without_folder),
        cmocka_unit_test(test_finish_keeps_explicit_socket_and_backup_dir),
        cmocka_unit_test(test_finish_refuses_bad_timezone),
        cmocka_unit_test(test_finish_refuses_bad_listen),
        cmocka_unit_test(test_finish_refuses_bad_log_level),
        cmocka_unit_test(test_split_listen_good),
        cmocka_unit_test(test_split_listen_bad),
        cmocka_unit_test(test_dump_lists_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
