/* test_db.c - the SQLite layer (connection settings, statement cache, typed
 * helpers, nested transactions, backup, time format) and the migrations. */
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

#include "crypto.h"
#include "db.h"
#include "migrate.h"
#include "unit_fs.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    db *d;
} fixture;

/* Removes a folder and what is in it (one level of subfolders). */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_db_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
    err e;
    err_clear(&e);
    if (db_open(f->path, DB_OPEN_CREATE, &f->d, &e)) {
        print_error("db_open: %s\n", e.msg);
        return -1;
    }
    if (db_exec_script(f->d,
                       "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER, b BLOB);", &e)) {
        print_error("create: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

/* The same, without the test table (for migrations). */
static int setup_empty(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_db_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
    err e;
    err_clear(&e);
    if (db_open(f->path, DB_OPEN_CREATE, &f->d, &e)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    db_close(f->d);
    remove_tree(f->dir);
    free(f);
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TE(fn) cmocka_unit_test_setup_teardown(fn, setup_empty, teardown)

static int64_t count_rows(db *d)
{
    int64_t n = -1;
    err e;
    err_clear(&e);
    assert_int_equal(db_get_int(d, &e, &n, "SELECT count(*) FROM t", NULL), 0);
    return n;
}

static void insert(db *d, const char *name, int64_t n)
{
    err e;
    err_clear(&e);
    int rc = db_run(d, &e, "INSERT INTO t (name, n) VALUES (?, ?)", "si", name, n);
    if (rc) print_error("insert %s: %s\n", name, e.msg);
    assert_int_equal(rc, 0);
}

static int has_name(db *d, const char *name)
{
    int64_t n = -1;
    err e;
    err_clear(&e);
    assert_int_equal(db_get_int(d, &e, &n, "SELECT count(*) FROM t WHERE name = ?", "s", name), 0);
    return n > 0;
}

/* ---------------------------------------------------------- open, pragmas */

static void test_open_and_close(void **state)
{
    fixture *f = *state;
    assert_non_null(f->d);
    assert_string_equal(db_path(f->d), f->path);
    assert_false(db_in_tx(f->d));
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
}

static void test_open_missing_without_create_fails(void **state)
{
    fixture *f = *state;
    char p[192];
    snprintf(p, sizeof p, "%s/missing.db", f->dir);
    db *d = (db *)1;
    err e;
    err_clear(&e);
    assert_int_equal(db_open(p, 0, &d, &e), ERR_IO);
    assert_null(d);
    assert_non_null(strstr(e.msg, p));
    assert_int_not_equal(access(p, F_OK), 0);   /* and nothing was created */
}

static void test_pragma_journal_mode_is_wal(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    db_stmt *s = db_prepare(f->d, "PRAGMA journal_mode", &e);
    assert_non_null(s);
    assert_int_equal(db_step(f->d, s, &e), DB_ROW);
    assert_string_equal(db_col_text(s, 0), "wal");
    db_step(f->d, s, &e);
}

static void test_pragma_foreign_keys_on(void **state)
{
    fixture *f = *state;
    int64_t v = -1;
    err e;
    err_clear(&e);
    assert_int_equal(db_get_int(f->d, &e, &v, "PRAGMA foreign_keys", NULL), 0);
    assert_int_equal(v, 1);
}

static void test_pragma_synchronous_full(void **state)
{
    fixture *f = *state;
    int64_t v = -1;
    err e;
    err_clear(&e);
    assert_int_equal(db_get_int(f->d, &e, &v, "PRAGMA synchronous", NULL), 0);
    assert_int_equal(v, 2);   /* FULL */
}

static void test_foreign_keys_are_enforced(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_exec_script(f->d,
                                    "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                                    "CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER NOT NULL REFERENCES parent(id));",
                                    &e),
                     0);
    assert_int_equal(db_run(f->d, &e, "INSERT INTO child (p) VALUES (?)", "i", (int64_t)42), ERR_CONFLICT);
}

static void test_readonly_open_refuses_writes(void **state)
{
    fixture *f = *state;
    insert(f->d, "a", 1);
    db *ro = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(db_open(f->path, DB_OPEN_READONLY, &ro, &e), 0);
    int64_t n = -1;
    assert_int_equal(db_get_int(ro, &e, &n, "SELECT count(*) FROM t", NULL), 0);
    assert_int_equal(n, 1);
    assert_true(db_run(ro, &e, "INSERT INTO t (name) VALUES ('b')", NULL) < 0);
    db_close(ro);
}

/* --------------------------------------------------------- binds, columns */

static void test_run_and_get_int_with_int_and_string(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e, "INSERT INTO t (name, n) VALUES (?, ?)", "si", "big", INT64_MIN), 0);
    assert_int_equal(db_changes(f->d), 1);
    int64_t id = db_last_id(f->d);
    assert_true(id > 0);
    int64_t v = 0;
    assert_int_equal(db_get_int(f->d, &e, &v, "SELECT n FROM t WHERE name = ?", "s", "big"), 0);
    assert_int_equal(v, INT64_MIN);
    assert_int_equal(db_get_int(f->d, &e, &v, "SELECT id FROM t WHERE n = ?", "i", INT64_MIN), 0);
    assert_int_equal(v, id);
}

static void test_bind_text_with_length(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    const char *s = "abcdef";
    assert_int_equal(db_run(f->d, &e, "INSERT INTO t (name, n) VALUES (?, 1)", "t", s, (size_t)3), 0);
    assert_true(has_name(f->d, "abc"));
    assert_false(has_name(f->d, "abcdef"));
    int64_t v = 0;
    assert_int_equal(db_get_int(f->d, &e, &v, "SELECT length(name) FROM t WHERE n = 1", NULL), 0);
    assert_int_equal(v, 3);
}

static void test_bind_blob(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    const unsigned char blob[] = {0x00, 0xFF, 0x10, 0x00};
    assert_int_equal(db_run(f->d, &e, "INSERT INTO t (name, b) VALUES ('blob', ?)", "b", blob, sizeof blob), 0);
    db_stmt *s = db_prepare(f->d, "SELECT b, typeof(b) FROM t WHERE name = 'blob'", &e);
    assert_non_null(s);
    assert_int_equal(db_step(f->d, s, &e), DB_ROW);
    assert_int_equal(db_col_bytes(s, 0), 4);
    assert_memory_equal(db_col_blob(s, 0), blob, 4);
    assert_string_equal(db_col_text(s, 1), "blob");
    assert_int_equal(db_step(f->d, s, &e), DB_DONE);
}

static void test_bind_null_letter_and_null_string(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e, "INSERT INTO t (name, n) VALUES (?, ?)", "sn", "x"), 0);
    assert_int_equal(db_run(f->d, &e, "INSERT INTO t (name, n) VALUES (?, ?)", "si", (const char *)NULL,
                            (int64_t)5),
                     0);
    int64_t v = -1;
    assert_int_equal(db_get_int(f->d, &e, &v, "SELECT count(*) FROM t WHERE n IS NULL AND name = 'x'", NULL), 0);
    assert_int_equal(v, 1);
    assert_int_equal(db_get_int(f->d, &e, &v, "SELECT count(*) FROM t WHERE name IS NULL AND n = 5", NULL), 0);
    assert_int_equal(v, 1);
    /* NULL columns read as "" and are flagged */
    db_stmt *s = db_prepare(f->d, "SELECT name, n FROM t WHERE n = 5", &e);
    assert_int_equal(db_step(f->d, s, &e), DB_ROW);
    assert_string_equal(db_col_text(s, 0), "");
    assert_true(db_col_is_null(s, 0));
    assert_false(db_col_is_null(s, 1));
    assert_int_equal(db_col_int(s, 1), 5);
}

static void test_get_int_without_row_is_not_found(void **state)
{
    fixture *f = *state;
    int64_t v = 77;
    err e;
    err_clear(&e);
    assert_int_equal(db_get_int(f->d, &e, &v, "SELECT n FROM t WHERE name = ?", "s", "nobody"), ERR_NOTFOUND);
    assert_int_equal(e.code, ERR_NOTFOUND);
    assert_int_equal(v, 77);
}

static void test_unknown_type_letter_is_an_error(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e, "INSERT INTO t (name) VALUES (?)", "x", "a"), ERR_INTERNAL);
    assert_int_equal(count_rows(f->d), 0);
}

static void test_bad_sql_is_an_error(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_null(db_prepare(f->d, "SELEKT nothing", &e));
    assert_int_equal(e.code, ERR_DB);
    assert_non_null(strstr(e.msg, "SELEKT"));
    err_clear(&e);
    assert_true(db_run(f->d, &e, "SELECT * FROM no_such_table", NULL) < 0);
    assert_true(e.msg[0] != '\0');
}

static void test_unique_violation_is_conflict(void **state)
{
    fixture *f = *state;
    insert(f->d, "dup", 1);
    err e;
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e, "INSERT INTO t (name, n) VALUES (?, ?)", "si", "dup", (int64_t)2), ERR_CONFLICT);
    assert_int_equal(e.code, ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "UNIQUE"));
    assert_int_equal(count_rows(f->d), 1);
    /* the statement is usable again afterwards */
    insert(f->d, "other", 3);
    assert_int_equal(count_rows(f->d), 2);
}

/* -------------------------------------------------------- statement cache */

static const char SQL_A[] = "SELECT 1";
static const char SQL_B[] = "SELECT 2";

static void test_cache_returns_same_statement_for_same_literal(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    db_stmt *a1 = db_prepare(f->d, SQL_A, &e);
    db_stmt *b1 = db_prepare(f->d, SQL_B, &e);
    db_stmt *a2 = db_prepare(f->d, SQL_A, &e);
    assert_non_null(a1);
    assert_non_null(b1);
    assert_ptr_equal(a1, a2);
    assert_ptr_not_equal(a1, b1);
}

static void test_cache_keys_on_address_not_text(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    char copy[sizeof SQL_A];
    memcpy(copy, SQL_A, sizeof copy);
    db_stmt *a = db_prepare(f->d, SQL_A, &e);
    db_stmt *c = db_prepare(f->d, copy, &e);
    assert_ptr_not_equal(a, c);
}

static void test_cached_statement_comes_back_reset_and_unbound(void **state)
{
    fixture *f = *state;
    insert(f->d, "a", 1);
    insert(f->d, "b", 2);
    err e;
    err_clear(&e);
    static const char sql[] = "SELECT name FROM t WHERE n >= ? ORDER BY n";
    db_stmt *s = db_prepare(f->d, sql, &e);
    db_bind_int(s, 1, 2);
    assert_int_equal(db_step(f->d, s, &e), DB_ROW);
    assert_string_equal(db_col_text(s, 0), "b");
    /* prepared again mid-way: starts over, with the parameter unbound (NULL) */
    s = db_prepare(f->d, sql, &e);
    assert_int_equal(db_step(f->d, s, &e), DB_DONE);   /* n >= NULL matches nothing */
    s = db_prepare(f->d, sql, &e);
    db_bind_int(s, 1, 0);
    assert_int_equal(db_step(f->d, s, &e), DB_ROW);
    assert_string_equal(db_col_text(s, 0), "a");
}

static void test_cache_survives_growth(void **state)
{
    fixture *f = *state;
    /* more distinct literals than the initial table holds */
    static char sqls[200][32];
    db_stmt *first[200];
    err e;
    err_clear(&e);
    for (int i = 0; i < 200; i++) {
        snprintf(sqls[i], sizeof sqls[i], "SELECT %d", i);
        first[i] = db_prepare(f->d, sqls[i], &e);
        assert_non_null(first[i]);
    }
    for (int i = 0; i < 200; i++) {
        db_stmt *s = db_prepare(f->d, sqls[i], &e);
        assert_ptr_equal(s, first[i]);
        assert_int_equal(db_step(f->d, s, &e), DB_ROW);
        assert_int_equal(db_col_int(s, 0), i);
    }
}

/* ----------------------------------------------------------- transactions */

static void test_commit_keeps_writes(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_true(db_in_tx(f->d));
    insert(f->d, "a", 1);
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_false(db_in_tx(f->d));
    assert_true(has_name(f->d, "a"));
}

static void test_rollback_drops_writes(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_begin(f->d, &e), 0);
    insert(f->d, "a", 1);
    db_rollback(f->d);
    assert_false(db_in_tx(f->d));
    assert_int_equal(count_rows(f->d), 0);
}

static void test_inner_rollback_keeps_outer_writes(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_begin(f->d, &e), 0);
    insert(f->d, "outer", 1);
    assert_int_equal(db_begin(f->d, &e), 0);
    insert(f->d, "inner", 2);
    db_rollback(f->d);
    assert_true(db_in_tx(f->d));   /* still in the outer one */
    insert(f->d, "outer2", 3);
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_false(db_in_tx(f->d));
    assert_true(has_name(f->d, "outer"));
    assert_true(has_name(f->d, "outer2"));
    assert_false(has_name(f->d, "inner"));
}

static void test_outer_rollback_drops_committed_inner(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_begin(f->d, &e), 0);
    insert(f->d, "outer", 1);
    assert_int_equal(db_begin(f->d, &e), 0);
    insert(f->d, "inner", 2);
    assert_int_equal(db_commit(f->d, &e), 0);
    db_rollback(f->d);
    assert_false(db_in_tx(f->d));
    assert_int_equal(count_rows(f->d), 0);
}

static void test_three_levels_commit(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(db_begin(f->d, &e), 0);
        char name[8];
        snprintf(name, sizeof name, "l%d", i);
        insert(f->d, name, i);
    }
    for (int i = 0; i < 3; i++) assert_int_equal(db_commit(f->d, &e), 0);
    assert_false(db_in_tx(f->d));
    assert_int_equal(count_rows(f->d), 3);
}

static void test_middle_rollback_of_three_levels(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_begin(f->d, &e), 0);
    insert(f->d, "l0", 0);
    assert_int_equal(db_begin(f->d, &e), 0);
    insert(f->d, "l1", 1);
    assert_int_equal(db_begin(f->d, &e), 0);
    insert(f->d, "l2", 2);
    assert_int_equal(db_commit(f->d, &e), 0);   /* l2 into level 1 */
    db_rollback(f->d);                          /* level 1 with l1 and l2 */
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_true(has_name(f->d, "l0"));
    assert_false(has_name(f->d, "l1"));
    assert_false(has_name(f->d, "l2"));
}

static void test_commit_without_transaction_is_an_error(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_commit(f->d, &e), ERR_INTERNAL);
    db_rollback(f->d);   /* harmless */
    assert_false(db_in_tx(f->d));
}

static void test_other_connection_does_not_see_uncommitted(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    db *other = NULL;
    assert_int_equal(db_open(f->path, 0, &other, &e), 0);
    assert_int_equal(db_begin(f->d, &e), 0);
    insert(f->d, "pending", 1);
    int64_t n = -1;
    assert_int_equal(db_get_int(other, &e, &n, "SELECT count(*) FROM t", NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_int_equal(db_get_int(other, &e, &n, "SELECT count(*) FROM t", NULL), 0);
    assert_int_equal(n, 1);
    db_close(other);
}

/* ----------------------------------------------------------------- backup */

static void test_backup_copy_has_the_rows(void **state)
{
    fixture *f = *state;
    insert(f->d, "one", 1);
    insert(f->d, "two", 2);
    char dest[192];
    snprintf(dest, sizeof dest, "%s/copy.db", f->dir);
    err e;
    err_clear(&e);
    int rc = db_backup(f->d, dest, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    /* written after the backup: not in the copy */
    insert(f->d, "three", 3);

    db *copy = NULL;
    assert_int_equal(db_open(dest, 0, &copy, &e), 0);
    int64_t n = -1;
    assert_int_equal(db_get_int(copy, &e, &n, "SELECT sum(n) FROM t", NULL), 0);
    assert_int_equal(n, 3);   /* 1 + 2 */
    assert_int_equal(db_get_int(copy, &e, &n, "SELECT count(*) FROM t WHERE name = ?", "s", "two"), 0);
    assert_int_equal(n, 1);
    db_close(copy);
}

static void test_backup_into_missing_folder_fails(void **state)
{
    fixture *f = *state;
    char dest[192];
    snprintf(dest, sizeof dest, "%s/no/such/folder/copy.db", f->dir);
    err e;
    err_clear(&e);
    assert_int_equal(db_backup(f->d, dest, &e), ERR_IO);
    assert_true(e.msg[0] != '\0');
}

/* ------------------------------------------------------------------- time */

static void test_format_time(void **state)
{
    (void)state;
    char out[25];
    db_format_time(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    /* 2026-11-27T10:00:00.123Z: day 20784 * 86400 = 1795737600 s, + 36000 s = 1795773600 s */
    db_format_time(1795773600123LL, out);
    assert_string_equal(out, "2026-11-27T10:00:00.123Z");
    db_format_time(1795773600007LL, out);
    assert_string_equal(out, "2026-11-27T10:00:00.007Z");
    db_format_time(1795773600999LL, out);
    assert_string_equal(out, "2026-11-27T10:00:00.999Z");
}

static void test_format_time_before_1970(void **state)
{
    (void)state;
    char out[25];
    /* -1500 ms is 1969-12-31T23:59:58.500Z */
    db_format_time(-1500, out);
    assert_string_equal(out, "1969-12-31T23:59:58.500Z");
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(db_parse_time("2026-11-27T10:00:00.123Z", &ms), 0);
    assert_int_equal(ms, 1795773600123LL);
    assert_int_equal(db_parse_time("1970-01-01T00:00:00.000Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(db_parse_time("not a time", &ms), ERR_INVALID);
    assert_int_equal(db_parse_time("", &ms), ERR_INVALID);
    assert_int_equal(db_parse_time("2026-11-27", &ms), ERR_INVALID);
}

static void test_time_round_trip(void **state)
{
    (void)state;
    static const int64_t values[] = {0, 1, 999, 1000, 1795773600123LL, 951782400000LL /* 2000-02-29 */,
                                     253402300799999LL /* 9999-12-31T23:59:59.999Z */};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        char out[25];
        int64_t back = -1;
        db_format_time(values[i], out);
        assert_int_equal(strlen(out), 24);
        assert_int_equal(db_parse_time(out, &back), 0);
        assert_int_equal(back, values[i]);
    }
}

static void test_now_is_current(void **state)
{
    (void)state;
    char out[25];
    int64_t before = db_now_ms();
    db_now(out);
    int64_t after = db_now_ms(), parsed = 0;
    assert_int_equal(db_parse_time(out, &parsed), 0);
    /* db_now has millisecond resolution */
    assert_true(parsed >= before - 1 && parsed <= after);
}

/* ------------------------------------------------------------- migrations */

static void test_migrate_empty_db_reaches_latest(void **state)
{
    fixture *f = *state;
    assert_true(migrate_latest() > 0);
    assert_true(migrate_embedded_count > 0);
    err e;
    err_clear(&e);
    int v = -1;
    assert_int_equal(migrate_current(f->d, &v, &e), 0);
    assert_int_equal(v, 0);
    int applied = -1;
    int rc = migrate_apply(f->d, &applied, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(applied, migrate_embedded_count);
    assert_int_equal(migrate_current(f->d, &v, &e), 0);
    assert_int_equal(v, migrate_latest());
    assert_int_equal(migrate_require_current(f->d, &e), 0);
    int64_t n = -1;
    assert_int_equal(db_get_int(f->d, &e, &n, "SELECT count(*) FROM schema_migrations", NULL), 0);
    assert_int_equal(n, migrate_embedded_count);
    /* the schema is there */
    assert_int_equal(db_get_int(f->d, &e, &n, "SELECT count(*) FROM job_state", NULL), 0);
    assert_int_equal(n, 0);
}

static void test_migrate_second_apply_applies_nothing(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    int applied = -1;
    assert_int_equal(migrate_apply(f->d, &applied, &e), 0);
    assert_int_equal(migrate_apply(f->d, &applied, &e), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(migrate_apply(f->d, NULL, &e), 0);
}

static void test_migrate_embedded_versions_ascend(void **state)
{
    (void)state;
    for (int i = 0; i < migrate_embedded_count; i++) {
        assert_true(migrate_embedded[i].version > 0);
        assert_true(migrate_embedded[i].name[0] != '\0');
        assert_int_equal(strlen(migrate_embedded[i].sql), migrate_embedded[i].len);
        if (i) assert_true(migrate_embedded[i].version > migrate_embedded[i - 1].version);
    }
    assert_int_equal(migrate_latest(), migrate_embedded[migrate_embedded_count - 1].version);
}

static void test_migrate_require_current_refuses_empty_db(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(migrate_require_current(f->d, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "migrate"));
}

static void test_migrate_refuses_newer_database(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(migrate_apply(f->d, NULL, &e), 0);
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                            "VALUES (9999, 'from_the_future', 'abc', '2030-01-01T00:00:00.000Z')",
                            NULL),
                     0);
    int v = -1;
    err_clear(&e);
    assert_int_equal(migrate_current(f->d, &v, &e), ERR_CONFLICT);
    assert_int_equal(e.code, ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "9999"));
    assert_non_null(strstr(e.msg, "newer"));
    err_clear(&e);
    assert_int_equal(migrate_apply(f->d, NULL, &e), ERR_CONFLICT);
    err_clear(&e);
    assert_int_equal(migrate_require_current(f->d, &e), ERR_CONFLICT);
}

static void test_migrate_refuses_edited_migration(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(migrate_apply(f->d, NULL, &e), 0);
    assert_int_equal(db_run(f->d, &e, "UPDATE schema_migrations SET checksum = 'x'", NULL), 0);
    int v = -1;
    err_clear(&e);
    assert_int_equal(migrate_current(f->d, &v, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "changed"));
    /* names the migration */
    char num[8];
    snprintf(num, sizeof num, "%04d", migrate_embedded[0].version);
    assert_non_null(strstr(e.msg, num));
    assert_non_null(strstr(e.msg, migrate_embedded[0].name));
    err_clear(&e);
    assert_int_equal(migrate_apply(f->d, NULL, &e), ERR_CONFLICT);
}

static void test_migrate_refusal_leaves_the_connection_usable(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(migrate_apply(f->d, NULL, &e), 0);
    assert_int_equal(db_run(f->d, &e, "UPDATE schema_migrations SET checksum = 'x'", NULL), 0);
    int v = -1;
    assert_int_equal(migrate_current(f->d, &v, &e), ERR_CONFLICT);
    /* a write transaction can still start and commit */
    err_clear(&e);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(db_run(f->d, &e, "INSERT INTO job_state (job) VALUES ('x')", NULL), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    /* and no statement was left holding a read snapshot: the WAL can be truncated */
    int rc = db_maintain(f->d, &e);
    if (rc) print_error("db_maintain: %s\n", e.msg);
    assert_int_equal(rc, 0);
}

/* ------------------------------------------- 0012: the billing CHECKs as OR chains */

/* Applies the embedded migrations after the database's version up to
 * `version` and records them as migrate_apply does: the database a binary
 * of that version left. */
static void migrate_upto(db *d, int version)
{
    err e;
    err_clear(&e);
    int cur = -1;
    assert_int_equal(migrate_current(d, &cur, &e), 0);
    for (int i = 0; i < migrate_embedded_count && migrate_embedded[i].version <= version; i++) {
        const struct migration *m = &migrate_embedded[i];
        if (m->version <= cur) continue;
        char sum[SHA256_HEX_LEN];
        crypto_sha256_hex(m->sql, m->len, sum);
        assert_int_equal(db_begin(d, &e), 0);
        int rc = db_exec_script(d, m->sql, &e);
        if (rc) print_error("%04d: %s\n", m->version, e.msg);
        assert_int_equal(rc, 0);
        assert_int_equal(db_run(d, &e, "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                                "isss", (int64_t)m->version, m->name, sum, "2026-01-01T00:00:00.000Z"),
                         0);
        assert_int_equal(db_commit(d, &e), 0);
    }
    assert_int_equal(migrate_current(d, &cur, &e), 0);
    assert_int_equal(cur, version);
}

/* How many embedded migrations come after `version`. */
static int migrations_after(int version)
{
    int n = 0;
    for (int i = 0; i < migrate_embedded_count; i++) n += migrate_embedded[i].version > version;
    return n;
}

/* The rows that hold the CHECK probes up, made inside a transaction the
 * probes roll back. */
#define PROBE_PARENTS                                                                                                   \
    "INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) "                       \
    "VALUES (1000000, 'C010000003', 'residential', 'probe', 'active', 'now', 'test', 'now');"                           \
    "INSERT INTO invoices (id, customer_id, status, net, tax, gross, rules_version, created_at, created_by) "            \
    "VALUES (1000000, 1000000, 'draft', 94, 6, 100, 'v', 'now', 'test');"                                               \
    "INSERT INTO outbox (id, created_at, event, channel, payload, status, next_attempt_at) "                           \
    "VALUES (1000000, 'now', 'test', 'log', '{}', 'pending', 'now');"

/* A statement that evaluates one of the CHECKs 0012 rewrote, with ? the
 * value, and the values the CHECK allows, as 0003 and 0006 list them. */
typedef struct rewritten_check {
    const char *what, *sql, *explain;
    const char *allowed[10];
} rewritten_check;

#define REWRITTEN(what, sql, ...) {what, sql, "EXPLAIN " sql, {__VA_ARGS__, NULL}}
#define INVOICE_STATUSES "draft", "open", "partially_paid", "paid", "void", "written_off"
#define OUTBOX_STATUSES "pending", "sent", "failed", "dead"
static const rewritten_check REWRITTEN_CHECKS[] = {
    REWRITTEN("invoices.status (insert)",
              "INSERT INTO invoices (customer_id, status, net, tax, gross, rules_version, created_at, created_by) "
              "VALUES (1000000, ?, 94, 6, 100, 'v', 'now', 'test')",
              INVOICE_STATUSES),
    REWRITTEN("invoices.status (update)", "UPDATE invoices SET status = ? WHERE id = 1000000", INVOICE_STATUSES),
    REWRITTEN("invoice_lines.kind",
              "INSERT INTO invoice_lines (invoice_id, seq, kind, description, unit_price, amount, tax_category, tax_rate, "
              "tax, net, step, rule) VALUES (1000000, 1, ?, 'line', 100, 100, 'internet', 6, 6, 94, 'step', 'rule')",
              "recurring", "addon", "one_time", "proration", "discount", "deposit", "credit", "fee", "adjustment"),
    REWRITTEN("ledger_entries.kind",
              "INSERT INTO ledger_entries (customer_id, kind, amount, entry_date, created_at, created_by) "
              "VALUES (1000000, ?, 100, '2026-01-01', 'now', 'test')",
              "invoice", "payment", "credit_note", "adjustment", "refund", "deposit_held", "deposit_returned",
              "deposit_forfeited", "write_off"),
    REWRITTEN("outbox.status (insert)",
              "INSERT INTO outbox (created_at, event, channel, payload, status, next_attempt_at) "
              "VALUES ('now', 'test', 'log', '{}', ?, 'now')",
              OUTBOX_STATUSES),
    REWRITTEN("outbox.status (update)", "UPDATE outbox SET status = ? WHERE id = 1000000", OUTBOX_STATUSES),
};
#define NREWRITTEN (sizeof REWRITTEN_CHECKS / sizeof *REWRITTEN_CHECKS)

static int allows(const rewritten_check *c, const char *v)
{
    for (int i = 0; c->allowed[i]; i++)
        if (!strcmp(c->allowed[i], v)) return 1;
    return 0;
}

/* Runs c's statement with the value (types "s", "i" or "n") in a savepoint
 * it rolls back; returns what the statement returned. */
static int probe(db *d, const rewritten_check *c, const char *types, const char *text, err *e)
{
    err_clear(e);
    assert_int_equal(db_begin(d, e), 0);
    int rc = types[0] == 's' ? db_run(d, e, c->sql, "s", text)
           : types[0] == 'i' ? db_run(d, e, c->sql, "i", (int64_t)1)
                             : db_run(d, e, c->sql, "n");
    if (!rc && db_changes(d) != 1) rc = ERR_INTERNAL; /* an update that hit nothing checked nothing */
    db_rollback(d);
    return rc;
}

static void expect_refused(db *d, const rewritten_check *c, const char *types, const char *v, const char *constraint)
{
    err e;
    int rc = probe(d, c, types, v, &e);
    if (rc != ERR_CONFLICT || !strstr(e.msg, constraint))
        print_error("%s: %s%s%s was not refused by its %s constraint (%d: %s)\n", c->what, v ? "'" : "", v ? v : types,
                    v ? "'" : "", constraint, rc, e.msg);
    assert_int_equal(rc, ERR_CONFLICT);
    assert_non_null(strstr(e.msg, constraint));
}

/* Every value each rewritten CHECK allowed is still allowed, and nothing
 * else is: not the other columns' values, not a value in another case or
 * with a space, not a number, not NULL. */
static void check_rewritten_rules(db *d)
{
    err e;
    err_clear(&e);
    assert_int_equal(db_begin(d, &e), 0);
    int rc = db_exec_script(d, PROBE_PARENTS, &e);
    if (rc) print_error("probe parents: %s\n", e.msg);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < NREWRITTEN; i++) {
        const rewritten_check *c = &REWRITTEN_CHECKS[i];
        for (int k = 0; c->allowed[k]; k++) {
            rc = probe(d, c, "s", c->allowed[k], &e);
            if (rc) print_error("%s: '%s' was refused: %s\n", c->what, c->allowed[k], e.msg);
            assert_int_equal(rc, 0);
            char v[64];
            snprintf(v, sizeof v, "%s ", c->allowed[k]);
            expect_refused(d, c, "s", v, "CHECK constraint failed");
            for (char *p = v; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
            v[strlen(v) - 1] = '\0';
            expect_refused(d, c, "s", v, "CHECK constraint failed");
        }
        for (size_t j = 0; j < NREWRITTEN; j++)
            for (int k = 0; REWRITTEN_CHECKS[j].allowed[k]; k++)
                if (!allows(c, REWRITTEN_CHECKS[j].allowed[k]))
                    expect_refused(d, c, "s", REWRITTEN_CHECKS[j].allowed[k], "CHECK constraint failed");
        expect_refused(d, c, "s", "", "CHECK constraint failed");
        expect_refused(d, c, "s", "bogus", "CHECK constraint failed");
        expect_refused(d, c, "i", NULL, "CHECK constraint failed");
        expect_refused(d, c, "n", NULL, "NOT NULL constraint failed");
    }
    db_rollback(d);
}

/* How many temporary tables or indexes one run of the statement builds. */
static int ephemeral_tables(db *d, const char *explain)
{
    err e;
    err_clear(&e);
    db_stmt *s = db_prepare(d, explain, &e);
    assert_non_null(s);
    int n = 0, rc;
    while ((rc = db_step(d, s, &e)) == DB_ROW)
        if (!strcmp(db_col_text(s, 1), "OpenEphemeral")) n++;
    assert_int_equal(rc, DB_DONE);
    return n;
}

static void test_migrate_0012_keeps_the_rules(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    /* the rules as 0011 enforces them are the lists above ... */
    migrate_upto(f->d, 11);
    assert_true(migrations_after(11) >= 1);
    check_rewritten_rules(f->d);
    /* a connection that has the 0011 schema loaded while another migrates */
    db *d2;
    assert_int_equal(db_open(f->path, 0, &d2, &e), 0);
    check_rewritten_rules(d2);
    int applied = -1;
    int rc = migrate_apply(f->d, &applied, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(applied, migrations_after(11));
    /* ... and stay so, on the connection that migrated and on the other
     * one, without a temporary index of the values per statement run:
     * both read the new schema */
    db *conns[] = {f->d, d2};
    for (size_t c = 0; c < 2; c++) {
        check_rewritten_rules(conns[c]);
        for (size_t i = 0; i < NREWRITTEN; i++) {
            int eph = ephemeral_tables(conns[c], REWRITTEN_CHECKS[i].explain);
            if (eph) print_error("connection %zu, %s: %d ephemeral tables\n", c, REWRITTEN_CHECKS[i].what, eph);
            assert_int_equal(eph, 0);
        }
    }
    db_close(d2);
}

/* Data written at 0011, kept as it was (every row, every rowid, every
 * index, trigger and table root page), with the schema of a database made
 * at the latest version. */
#define DATA_0011                                                                                                       \
    "INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) "                       \
    "VALUES (1, 'C000000017', 'residential', 'one', 'active', 'now', 'test', 'now');"                                   \
    "INSERT INTO invoices (id, number, customer_id, status, issue_date, net, tax, gross, rules_version, created_at, "   \
    "created_by, finalized_at) VALUES (1, 'INV-2026-000001', 1, 'open', '2026-01-01', 85, 5, 90, 'v', 'now', 'test', " \
    "'now'), (2, NULL, 1, 'draft', NULL, 94, 6, 100, 'v', 'now', 'test', NULL);"                                       \
    "INSERT INTO invoice_lines (invoice_id, seq, kind, description, unit_price, amount, tax_category, tax_rate, tax, "  \
    "net, step, rule) VALUES (1, 1, 'recurring', 'plan', 100, 100, 'internet', 6, 6, 94, 'recurring', 'tariffs.m'), "  \
    "(1, 2, 'discount', 'promo', -10, -10, 'internet', 6, -1, -9, 'promotions', 'promos.p'), "                         \
    "(2, 1, 'one_time', 'install', 100, 100, 'install', 6, 6, 94, 'charges', 'charges.c');"                              \
    "INSERT INTO ledger_entries (customer_id, kind, amount, entry_date, invoice_id, created_at, created_by) "           \
    "VALUES (1, 'invoice', 90, '2026-01-01', 1, 'now', 'test'), (1, 'adjustment', -5, '2026-01-02', NULL, 'now', 'test');" \
    "INSERT INTO outbox (created_at, event, channel, customer_id, payload, status, next_attempt_at, dedupe_key) "      \
    "VALUES ('now', 'invoice_issued', 'log', 1, '{}', 'sent', 'now', 'inv:1'), "                                      \
    "('now', 'reminder', 'sms', 1, '{}', 'pending', 'now', NULL);"

static int64_t count_of(db *d, const char *sql)
{
    err e;
    err_clear(&e);
    db_stmt *s = db_prepare_once(d, sql, &e);
    if (!s) print_error("%s: %s\n", sql, e.msg);
    assert_non_null(s);
    assert_int_equal(db_step(d, s, &e), DB_ROW);
    int64_t n = db_col_int(s, 0);
    db_finalize(s);
    return n;
}

#define SCHEMA_OF(db) "SELECT type, name, tbl_name, rootpage, sql FROM " db ".sqlite_schema"
#define TEXT_OF(db) "SELECT type, name, tbl_name, sql FROM " db ".sqlite_schema"
#define THE_FOUR "('invoices', 'invoice_lines', 'ledger_entries', 'outbox')"

static void test_migrate_0012_keeps_the_data(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    migrate_upto(f->d, 11);
    int rc = db_exec_script(f->d, DATA_0011, &e);
    if (rc) print_error("data: %s\n", e.msg);
    assert_int_equal(rc, 0);
    char before[192], fresh[192];
    snprintf(before, sizeof before, "%s/before.db", f->dir);
    snprintf(fresh, sizeof fresh, "%s/fresh.db", f->dir);
    assert_int_equal(db_backup(f->d, before, &e), 0);
    migrate_upto(f->d, 12);

    char sql[512];
    snprintf(sql, sizeof sql, "ATTACH '%s' AS before;", before);
    assert_int_equal(db_exec_script(f->d, sql, &e), 0);
    static const char *const tables[] = {"customers", "invoices", "invoice_lines", "ledger_entries", "outbox"};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM main.%s", tables[i]);
        int64_t rows = count_of(f->d, sql);
        assert_true(rows > 0);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM before.%s", tables[i]);
        assert_int_equal(count_of(f->d, sql), rows);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT * FROM main.%s EXCEPT SELECT * FROM before.%s)", tables[i],
                 tables[i]);
        assert_int_equal(count_of(f->d, sql), 0);
    }
    /* Only the four tables' CREATE text changed: no object was added,
     * dropped or rebuilt (same root pages) ... */
    assert_int_equal(count_of(f->d, "SELECT count(*) FROM (" SCHEMA_OF("main") " EXCEPT " SCHEMA_OF("before") ")"), 4);
    assert_int_equal(count_of(f->d, "SELECT count(*) FROM (" SCHEMA_OF("before") " EXCEPT " SCHEMA_OF("main") ")"), 4);
    assert_int_equal(count_of(f->d, "SELECT count(*) FROM (" SCHEMA_OF("main") " EXCEPT " SCHEMA_OF("before")
                                    ") WHERE type <> 'table' OR name NOT IN " THE_FOUR),
                     0);
    assert_true(count_of(f->d, "SELECT count(*) FROM main.sqlite_schema WHERE type = 'trigger'") > 0);
    assert_int_equal(db_exec_script(f->d, "DETACH before;", &e), 0);

    /* ... and, with what comes after 0012, it is what a database made at
     * the latest version says */
    int applied = -1;
    rc = migrate_apply(f->d, &applied, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(applied, migrations_after(12));
    assert_int_equal(migrate_require_current(f->d, &e), 0);
    db *d2;
    assert_int_equal(db_open(fresh, DB_OPEN_CREATE, &d2, &e), 0);
    assert_int_equal(migrate_apply(d2, NULL, &e), 0);
    db_close(d2);
    snprintf(sql, sizeof sql, "ATTACH '%s' AS fresh;", fresh);
    assert_int_equal(db_exec_script(f->d, sql, &e), 0);
    assert_int_equal(count_of(f->d, "SELECT count(*) FROM (" TEXT_OF("main") " EXCEPT " TEXT_OF("fresh") ")"), 0);
    assert_int_equal(count_of(f->d, "SELECT count(*) FROM (" TEXT_OF("fresh") " EXCEPT " TEXT_OF("main") ")"), 0);
    assert_int_equal(db_exec_script(f->d, "DETACH fresh;", &e), 0);

    db_stmt *s = db_prepare_once(f->d, "PRAGMA integrity_check", &e);
    assert_non_null(s);
    assert_int_equal(db_step(f->d, s, &e), DB_ROW);
    assert_string_equal(db_col_text(s, 0), "ok");
    assert_int_equal(db_step(f->d, s, &e), DB_DONE);
    db_finalize(s);
    s = db_prepare_once(f->d, "PRAGMA foreign_key_check", &e);
    assert_non_null(s);
    assert_int_equal(db_step(f->d, s, &e), DB_DONE);
    db_finalize(s);

    /* the triggers on the rewritten tables still hold */
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e, "UPDATE invoices SET net = net + 1, gross = gross + 1 WHERE id = 1", NULL),
                     ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "an issued invoice never changes"));
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e, "DELETE FROM invoice_lines WHERE invoice_id = 1", NULL), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "never deleted"));
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e, "UPDATE ledger_entries SET amount = 0", NULL), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "append-only"));
    check_rewritten_rules(f->d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_and_close),
        T(test_open_missing_without_create_fails),
        T(test_pragma_journal_mode_is_wal),
        T(test_pragma_foreign_keys_on),
        T(test_pragma_synchronous_full),
        T(test_foreign_keys_are_enforced),
        T(test_readonly_open_refuses_writes),
        T(test_run_and_get_int_with_int_and_string),
        T(test_bind_text_with_length),
        T(test_bind_blob),
        T(test_bind_null_letter_and_null_string),
        T(test_get_int_without_row_is_not_found),
        T(test_unknown_type_letter_is_an_error),
        T(test_bad_sql_is_an_error),
        T(test_unique_violation_is_conflict),
        T(test_cache_returns_same_statement_for_same_literal),
        T(test_cache_keys_on_address_not_text),
        T(test_cached_statement_comes_back_reset_and_unbound),
        T(test_cache_survives_growth),
        T(test_commit_keeps_writes),
        T(test_rollback_drops_writes),
        T(test_inner_rollback_keeps_outer_writes),
        T(test_outer_rollback_drops_committed_inner),
        T(test_three_levels_commit),
        T(test_middle_rollback_of_three_levels),
        T(test_commit_without_transaction_is_an_error),
        T(test_other_connection_does_not_see_uncommitted),
        T(test_backup_copy_has_the_rows),
        T(test_backup_into_missing_folder_fails),
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_format_time_before_1970),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_now_is_current),
        TE(test_migrate_empty_db_reaches_latest),
        TE(test_migrate_second_apply_applies_nothing),
        cmocka_unit_test(test_migrate_embedded_versions_ascend),
        TE(test_migrate_require_current_refuses_empty_db),
        TE(test_migrate_refuses_newer_database),
        TE(test_migrate_refuses_edited_migration),
        TE(test_migrate_refusal_leaves_the_connection_usable),
        TE(test_migrate_0012_keeps_the_rules),
        TE(test_migrate_0012_keeps_the_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
