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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
