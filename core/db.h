/* db.h - the storage layer: one SQLite connection per thread.
 *
 * Owns the connection settings (WAL, foreign keys, busy timeout,
 * synchronous=FULL), nested transactions through savepoints, a cache of
 * prepared statements and typed bind/column helpers. SQL text given to this
 * layer is always a string literal of the program: statements are cached by
 * the literal's address, and no SQL is ever built from user text.
 *
 * SQL passed here is kept portable (no SQLite-only syntax) so that a
 * PostgreSQL backend can implement the same interface. */
#ifndef BB_DB_H
#define BB_DB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct db db;
typedef struct db_stmt db_stmt;

enum { DB_DONE = 0, DB_ROW = 1 };
enum { DB_OPEN_CREATE = 1, DB_OPEN_READONLY = 2 };

/* Opens (or with DB_OPEN_CREATE creates) the database at path. */
int db_open(const char *path, int flags, db **out, err *e);
void db_close(db *d);
const char *db_path(const db *d);

/* Transactions nest: the outermost is BEGIN IMMEDIATE, inner ones are
 * savepoints. Every db_begin is matched by one db_commit or db_rollback. */
int db_begin(db *d, err *e);
int db_commit(db *d, err *e);
void db_rollback(db *d);
int db_in_tx(const db *d);
/* A read transaction (BEGIN DEFERRED): every read until db_read_end sees
 * the one snapshot its first read takes, and pays for the WAL's read lock
 * once instead of per statement. Not for writing; not nested. */
int db_read_begin(db *d, err *e);
void db_read_end(db *d);

/* Runs a trusted multi-statement script (migrations only). */
int db_exec_script(db *d, const char *sql, err *e);

/* Returns the cached statement for this SQL literal, reset and unbound, or
 * NULL with e set. */
db_stmt *db_prepare(db *d, const char *sql, err *e);
/* For SQL assembled from program constants (table and column names of a
 * registry, never user text): prepared without the cache, freed with
 * db_finalize. */
db_stmt *db_prepare_once(db *d, const char *sql, err *e);
void db_finalize(db_stmt *s);
int db_bind_int(db_stmt *s, int i, int64_t v);
int db_bind_text(db_stmt *s, int i, const char *v);   /* NULL binds NULL */
/* As db_bind_text, without SQLite's private copy of the value (a malloc,
 * copy and free per value): v must stay unchanged until the statement has
 * been stepped and reset. For the hot inserts of a billing run. */
int db_bind_text_ref(db_stmt *s, int i, const char *v);
int db_bind_textn(db_stmt *s, int i, const char *v, size_t n);
int db_bind_blob(db_stmt *s, int i, const void *p, size_t n);
int db_bind_null(db_stmt *s, int i);
/* DB_ROW, DB_DONE, or a negative code with e set (a unique or check
 * violation is ERR_CONFLICT, a lock timeout ERR_BUSY). */
int db_step(db *d, db_stmt *s, err *e);
int64_t db_col_int(db_stmt *s, int i);
/* Valid until the next step or prepare of the same statement; "" for NULL. */
const char *db_col_text(db_stmt *s, int i);
size_t db_col_bytes(db_stmt *s, int i);
const void *db_col_blob(db_stmt *s, int i);
int db_col_is_null(db_stmt *s, int i);
/* Ends a statement's use: a statement left after its first row keeps a read
 * snapshot open (blocking writers from upgrading and WAL checkpoints). */
void db_done(db_stmt *s);
/* Ends every cached statement's use: the HTTP layer calls it after each
 * request and the scheduler after each job, as a safety net. Never call it
 * while iterating over a statement. */
void db_release(db *d);
int64_t db_changes(db *d);
int64_t db_last_id(db *d);

/* One-shot helpers. `types` has one letter per argument:
 *   i int64_t, s const char* (NULL binds NULL), t (const char*, size_t) text
 *   with a length, b (const void*, size_t) blob, n NULL.
 * db_run executes to completion; db_get_int reads the first column of the
 * first row (ERR_NOTFOUND if there is none). */
int db_run(db *d, err *e, const char *sql, const char *types, ...);
int db_get_int(db *d, err *e, int64_t *out, const char *sql, const char *types, ...);

/* Online backup of the whole database into a new file at dest. */
int db_backup(db *d, const char *dest, err *e);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" (the storage format of
 * instants). out must hold 25 bytes. */
void db_now(char out[25]);
/* Parses the storage format back to Unix milliseconds. */
int db_parse_time(const char *s, int64_t *unix_ms);
/* Keeps this connection's temporary storage (savepoint sub-journals, sort
 * and ephemeral tables) in memory instead of temporary files: for passes
 * that nest a savepoint per item inside a large transaction (billing runs),
 * where each savepoint's page images would otherwise be written to disk
 * and thrown away. Changes nothing that is stored. */
int db_temp_in_memory(db *d, err *e);
/* Housekeeping: refreshes query planner statistics and truncates the WAL. */
int db_maintain(db *d, err *e);
void db_format_time(int64_t unix_ms, char out[25]);
int64_t db_now_ms(void);

#endif
