/* db.c - SQLite connection, transactions, statement cache. */
#include "db.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cache_slot {
    const char *sql;   /* the literal's address is the key */
    sqlite3_stmt *st;
} cache_slot;

struct db {
    sqlite3 *h;
    char *path;
    int depth;         /* transaction nesting */
    cache_slot *cache;
    size_t cache_cap, cache_len;
};

static int map_rc(db *d, int rc, err *e, const char *what)
{
    int code;
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: code = ERR_CONFLICT; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = ERR_BUSY; break;
    case SQLITE_NOMEM: code = ERR_NOMEM; break;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL: code = ERR_IO; break;
    default: code = ERR_DB;
    }
    return err_set(e, code, "%s: %s", what, d && d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc));
}

static int pragma(db *d, const char *sql, err *e)
{
    char *msg = NULL;
    int rc = sqlite3_exec(d->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        err_set(e, ERR_DB, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return ERR_DB;
    }
    return 0;
}

/* SQLite's memory statistics take one global mutex on every allocation:
 * two threads each with a connection (the billing pass and its feeder, the
 * daemon's workers) would queue on it. Nothing reads those statistics. */
static void db_configure(void) { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

int db_open(const char *path, int flags, db **out, err *e)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, db_configure);
    *out = NULL;
    db *d = calloc(1, sizeof *d);
    if (!d) return ERR_NOMEM_RET(e);
    d->path = strdup(path);
    if (!d->path) {
        free(d);
        return ERR_NOMEM_RET(e);
    }
    int oflags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    oflags |= (flags & DB_OPEN_READONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (flags & DB_OPEN_CREATE) oflags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &d->h, oflags, NULL);
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_CANTOPEN)
            err_set(e, ERR_IO, "cannot open database %s (run `bandbill init` to create it)", path);
        else
            map_rc(d, rc, e, path);
        db_close(d);
        return e ? e->code : ERR_DB;
    }
    sqlite3_busy_timeout(d->h, 5000);
    /* synchronous=FULL: an acknowledged payment must survive power loss */
    static const char *const rw[] = {
        "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON",
        "PRAGMA trusted_schema=OFF", "PRAGMA cache_size=-32768", NULL};
    static const char *const ro[] = {"PRAGMA foreign_keys=ON", "PRAGMA trusted_schema=OFF", NULL};
    for (const char *const *p = (flags & DB_OPEN_READONLY) ? ro : rw; *p; p++)
        if (pragma(d, *p, e)) {
            db_close(d);
            return ERR_DB;
        }
    *out = d;
    return 0;
}

void db_close(db *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->cache_cap; i++)
        if (d->cache && d->cache[i].st) sqlite3_finalize(d->cache[i].st);
    free(d->cache);
    if (d->h) sqlite3_close(d->h);
    free(d->path);
    free(d);
}

const char *db_path(const db *d) { return d->path; }
int db_in_tx(const db *d) { return d->depth > 0; }

/* --------------------------------------------------------- transactions */

/* Transaction statements are prepared once like any other: parsing
 * "BEGIN IMMEDIATE" and "COMMIT" afresh cost more than executing them. */
static const char *const savepoints[] = {"SAVEPOINT s1", "SAVEPOINT s2", "SAVEPOINT s3", "SAVEPOINT s4",
                                         "SAVEPOINT s5", "SAVEPOINT s6", "SAVEPOINT s7", "SAVEPOINT s8"};
static const char *const releases[] = {"RELEASE s1", "RELEASE s2", "RELEASE s3", "RELEASE s4",
                                       "RELEASE s5", "RELEASE s6", "RELEASE s7", "RELEASE s8"};
static const char *const rollbacks[] = {"ROLLBACK TO s1", "ROLLBACK TO s2", "ROLLBACK TO s3", "ROLLBACK TO s4",
                                        "ROLLBACK TO s5", "ROLLBACK TO s6", "ROLLBACK TO s7", "ROLLBACK TO s8"};
#define MAX_SAVEPOINTS (int)(sizeof savepoints / sizeof *savepoints)

static int run_literal(db *d, const char *sql, err *e, const char *what)
{
    db_stmt *s = db_prepare(d, sql, e);
    if (!s) return e ? e->code : ERR_DB;
    int rc = sqlite3_step((sqlite3_stmt *)s);
    sqlite3_reset((sqlite3_stmt *)s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return map_rc(d, rc, e, what);
    return 0;
}

int db_begin(db *d, err *e)
{
    if (d->depth > MAX_SAVEPOINTS) return err_set(e, ERR_INTERNAL, "transactions nested too deeply");
    int rc = run_literal(d, d->depth == 0 ? "BEGIN IMMEDIATE" : savepoints[d->depth - 1], e, "begin transaction");
    if (rc) return rc;
    d->depth++;
    return 0;
}

int db_read_begin(db *d, err *e)
{
    if (d->depth != 0) return err_set(e, ERR_INTERNAL, "a read transaction inside a transaction");
    int rc = run_literal(d, "BEGIN DEFERRED", e, "begin read transaction");
    if (rc) return rc;
    d->depth++;
    return 0;
}

void db_read_end(db *d)
{
    if (d->depth != 1) return;
    for (size_t i = 0; i < d->cache_cap; i++)
        if (d->cache && d->cache[i].st) sqlite3_reset(d->cache[i].st);
    err e;
    run_literal(d, "COMMIT", &e, "end read transaction");
    d->depth--;
}

int db_commit(db *d, err *e)
{
    if (d->depth <= 0) return err_set(e, ERR_INTERNAL, "commit without a transaction");
    int rc = run_literal(d, d->depth == 1 ? "COMMIT" : releases[d->depth - 2], e, "commit");
    if (rc) {
        db_rollback(d);
        return rc;
    }
    d->depth--;
    return 0;
}

void db_rollback(db *d)
{
    if (d->depth <= 0) return;
    /* statements still stepping would keep the transaction open */
    for (size_t i = 0; i < d->cache_cap; i++)
        if (d->cache && d->cache[i].st) sqlite3_reset(d->cache[i].st);
    err e;
    if (d->depth == 1) {
        run_literal(d, "ROLLBACK", &e, "rollback");
    } else {
        run_literal(d, rollbacks[d->depth - 2], &e, "rollback");
        run_literal(d, releases[d->depth - 2], &e, "rollback");
    }
    d->depth--;
}

int db_exec_script(db *d, const char *sql, err *e)
{
    char *msg = NULL;
    int rc = sqlite3_exec(d->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        err_set(e, ERR_DB, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return ERR_DB;
    }
    return 0;
}

/* ------------------------------------------------------------ statements */

static size_t slot_of(const char *sql, size_t cap)
{
    uintptr_t x = (uintptr_t)sql;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 7) & (cap - 1);
}

static int cache_grow(db *d)
{
    size_t ncap = d->cache_cap ? d->cache_cap * 2 : 64;
    cache_slot *n = calloc(ncap, sizeof *n);
    if (!n) return ERR_NOMEM;
    for (size_t i = 0; i < d->cache_cap; i++) {
        if (!d->cache[i].sql) continue;
        size_t j = slot_of(d->cache[i].sql, ncap);
        while (n[j].sql) j = (j + 1) & (ncap - 1);
        n[j] = d->cache[i];
    }
    free(d->cache);
    d->cache = n;
    d->cache_cap = ncap;
    return 0;
}

db_stmt *db_prepare(db *d, const char *sql, err *e)
{
    if (d->cache_len * 2 >= d->cache_cap && cache_grow(d)) {
        ERR_NOMEM_RET(e);
        return NULL;
    }
    size_t j = slot_of(sql, d->cache_cap);
    while (d->cache[j].sql && d->cache[j].sql != sql) j = (j + 1) & (d->cache_cap - 1);
    cache_slot *s = &d->cache[j];
    if (s->sql) {
        sqlite3_reset(s->st);
        sqlite3_clear_bindings(s->st);
        return (db_stmt *)s->st;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        map_rc(d, rc, e, "prepare");
        err_prefix(e, "%.80s", sql);
        return NULL;
    }
    s->sql = sql;
    s->st = st;
    d->cache_len++;
    return (db_stmt *)st;
}

#define ST(s) ((sqlite3_stmt *)(s))

db_stmt *db_prepare_once(db *d, const char *sql, err *e)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        map_rc(d, rc, e, "prepare");
        err_prefix(e, "%.80s", sql);
        return NULL;
    }
    return (db_stmt *)st;
}

void db_finalize(db_stmt *s)
{
    if (s) sqlite3_finalize(ST(s));
}

int db_bind_int(db_stmt *s, int i, int64_t v) { return sqlite3_bind_int64(ST(s), i, v) == SQLITE_OK ? 0 : ERR_DB; }
int db_bind_null(db_stmt *s, int i) { return sqlite3_bind_null(ST(s), i) == SQLITE_OK ? 0 : ERR_DB; }

int db_bind_textn(db_stmt *s, int i, const char *v, size_t n)
{
    if (!v) return db_bind_null(s, i);
    return sqlite3_bind_text64(ST(s), i, v, n, SQLITE_TRANSIENT, SQLITE_UTF8) == SQLITE_OK ? 0 : ERR_DB;
}

int db_bind_text(db_stmt *s, int i, const char *v) { return db_bind_textn(s, i, v, v ? strlen(v) : 0); }

/* SQLITE_STATIC leaves a pointer bound after the reset: harmless, as
 * db_prepare clears the bindings before a statement is used again. */
int db_bind_text_ref(db_stmt *s, int i, const char *v)
{
    if (!v) return db_bind_null(s, i);
    return sqlite3_bind_text64(ST(s), i, v, strlen(v), SQLITE_STATIC, SQLITE_UTF8) == SQLITE_OK ? 0 : ERR_DB;
}

int db_bind_blob(db_stmt *s, int i, const void *p, size_t n)
{
    return sqlite3_bind_blob64(ST(s), i, p, n, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : ERR_DB;
}

int db_step(db *d, db_stmt *s, err *e)
{
    int rc = sqlite3_step(ST(s));
    if (rc == SQLITE_ROW) return DB_ROW;
    if (rc == SQLITE_DONE) return DB_DONE;
    int code = map_rc(d, rc, e, "query");
    sqlite3_reset(ST(s));
    return code;
}

int64_t db_col_int(db_stmt *s, int i) { return sqlite3_column_int64(ST(s), i); }
const char *db_col_text(db_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(ST(s), i);
    return t ? (const char *)t : "";
}
size_t db_col_bytes(db_stmt *s, int i) { return (size_t)sqlite3_column_bytes(ST(s), i); }
const void *db_col_blob(db_stmt *s, int i) { return sqlite3_column_blob(ST(s), i); }
int db_col_is_null(db_stmt *s, int i) { return sqlite3_column_type(ST(s), i) == SQLITE_NULL; }
void db_done(db_stmt *s)
{
    if (s) sqlite3_reset(ST(s));
}

void db_release(db *d)
{
    sqlite3_stmt *st = NULL;
    while ((st = sqlite3_next_stmt(d->h, st)))
        if (sqlite3_stmt_busy(st)) sqlite3_reset(st);
}

int64_t db_changes(db *d) { return sqlite3_changes64(d->h); }
int64_t db_last_id(db *d) { return sqlite3_last_insert_rowid(d->h); }

static int bind_va(db_stmt *s, const char *types, va_list ap)
{
    int rc = 0;
    for (int i = 0; types && types[i] && !rc; i++) {
        switch (types[i]) {
        case 'i': rc = db_bind_int(s, i + 1, va_arg(ap, int64_t)); break;
        case 's': rc = db_bind_text(s, i + 1, va_arg(ap, const char *)); break;
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            rc = db_bind_blob(s, i + 1, p, n);
            break;
        }
        case 't': {
            const char *p = va_arg(ap, const char *);
            size_t n = va_arg(ap, size_t);
            rc = db_bind_textn(s, i + 1, p, n);
            break;
        }
        case 'n': rc = db_bind_null(s, i + 1); break;
        default: rc = ERR_INTERNAL;
        }
    }
    return rc;
}

/* The cached statement for sql with the arguments bound, or NULL. */
static db_stmt *prepare_bound(db *d, err *e, const char *sql, const char *types, va_list ap)
{
    db_stmt *s = db_prepare(d, sql, e);
    if (s && bind_va(s, types, ap)) {
        err_set(e, ERR_INTERNAL, "bad bind for %.60s", sql);
        return NULL;
    }
    return s;
}

int db_run(db *d, err *e, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    db_stmt *s = prepare_bound(d, e, sql, types, ap);
    va_end(ap);
    if (!s) return e ? e->code : ERR_DB;
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
    }
    sqlite3_reset(ST(s));
    return rc;
}

int db_get_int(db *d, err *e, int64_t *out, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    db_stmt *s = prepare_bound(d, e, sql, types, ap);
    va_end(ap);
    if (!s) return e ? e->code : ERR_DB;
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        *out = db_col_int(s, 0);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_set(e, ERR_NOTFOUND, "no row");
    }
    sqlite3_reset(ST(s));
    return rc;
}

/* ---------------------------------------------------------------- backup */

int db_backup(db *d, const char *dest, err *e)
{
    sqlite3 *out = NULL;
    int rc = sqlite3_open_v2(dest, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        err_set(e, ERR_IO, "cannot create %s: %s", dest, out ? sqlite3_errmsg(out) : sqlite3_errstr(rc));
        sqlite3_close(out);
        return ERR_IO;
    }
    sqlite3_backup *b = sqlite3_backup_init(out, "main", d->h, "main");
    if (!b) {
        err_set(e, ERR_DB, "backup: %s", sqlite3_errmsg(out));
        sqlite3_close(out);
        return ERR_DB;
    }
    /* copy in steps so writers are not blocked for the whole copy */
    do {
        rc = sqlite3_backup_step(b, 1024);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(20);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        err_set(e, ERR_IO, "backup to %s failed: %s", dest, sqlite3_errstr(rc));
        sqlite3_close(out);
        return ERR_IO;
    }
    /* the copy is a self-contained file: no WAL to carry along */
    rc = sqlite3_exec(out, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    sqlite3_close(out);
    if (rc != SQLITE_OK) return err_set(e, ERR_IO, "backup to %s: cannot finalise the copy", dest);
    return 0;
}

/* ------------------------------------------------------------------ time */

int64_t db_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void db_format_time(int64_t ms, char out[25])
{
    /* floor division: -1500 ms is 23:59:58.500 of the day before */
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    time_t t = (time_t)sec;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    unsigned frac = (unsigned)(ms - sec * 1000);
    /* four-digit years (strftime writes others with as many digits as they have) */
    if (gmtime_r(&t, &tm) && tm.tm_year >= 1000 - 1900 && tm.tm_year <= 9999 - 1900) {
        /* digits by hand: strftime was most of the cost of a timestamp,
         * and a billing run writes several per bill */
        int y = tm.tm_year + 1900;
        put2(out, y / 100);
        put2(out + 2, y % 100);
        out[4] = '-';
        put2(out + 5, tm.tm_mon + 1);
        out[7] = '-';
        put2(out + 8, tm.tm_mday);
        out[10] = 'T';
        put2(out + 11, tm.tm_hour);
        out[13] = ':';
        put2(out + 14, tm.tm_min);
        out[16] = ':';
        put2(out + 17, tm.tm_sec);
        out[19] = '.';
        out[20] = (char)('0' + frac / 100);
        out[21] = (char)('0' + frac / 10 % 10);
        out[22] = (char)('0' + frac % 10);
        out[23] = 'Z';
        out[24] = '\0';
        return;
    }
    strftime(out, 25, "%Y-%m-%dT%H:%M:%S", &tm);
    size_t n = strlen(out);
    if (n + 6 <= 25) {
        out[n] = '.';
        out[n + 1] = (char)('0' + frac / 100);
        out[n + 2] = (char)('0' + frac / 10 % 10);
        out[n + 3] = (char)('0' + frac % 10);
        out[n + 4] = 'Z';
        out[n + 5] = '\0';
    }
}

void db_now(char out[25]) { db_format_time(db_now_ms(), out); }

int db_parse_time(const char *s, int64_t *unix_ms)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != sizeof shape - 1) return ERR_INVALID;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) return ERR_INVALID;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &ms) != 7)
        return ERR_INVALID;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *unix_ms = (int64_t)timegm(&tm) * 1000 + ms;
    return 0;
}

int db_temp_in_memory(db *d, err *e) { return pragma(d, "PRAGMA temp_store = MEMORY", e); }

int db_maintain(db *d, err *e)
{
    int rc = pragma(d, "PRAGMA optimize", e);
    if (!rc) rc = pragma(d, "PRAGMA wal_checkpoint(TRUNCATE)", e);
    return rc;
}
