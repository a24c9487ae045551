/* migrate.c - applies embedded schema migrations. */
#include "migrate.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"

int migrate_latest(void)
{
    return migrate_embedded_count ? migrate_embedded[migrate_embedded_count - 1].version : 0;
}

static int ensure_table(db *d, err *e)
{
    return db_run(d, e,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                  " checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
                  NULL);
}

static const struct migration *find(int version)
{
    for (int i = 0; i < migrate_embedded_count; i++)
        if (migrate_embedded[i].version == version) return &migrate_embedded[i];
    return NULL;
}

int migrate_current(db *d, int *version, err *e)
{
    *version = 0;
    int rc = ensure_table(d, e);
    if (rc) return rc;
    db_stmt *s = db_prepare(d, "SELECT version, name, checksum FROM schema_migrations ORDER BY version", e);
    if (!s) return e->code;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        int v = (int)db_col_int(s, 0);
        const struct migration *m = find(v);
        if (!m) {
            db_done(s);
            err_set(e, ERR_CONFLICT,
                    "the database has migration %04d (%s), which this bandbill %s does not know: "
                    "the database is newer than the binary; upgrade bandbill",
                    v, db_col_text(s, 1), BB_VERSION);
            return ERR_CONFLICT;
        }
        char sum[SHA256_HEX_LEN];
        crypto_sha256_hex(m->sql, m->len, sum);
        if (strcmp(sum, db_col_text(s, 2)) != 0) {
            char recorded[16];
            snprintf(recorded, sizeof recorded, "%.12s", db_col_text(s, 2));
            db_done(s);
            err_set(e, ERR_CONFLICT,
                    "migration %04d_%s was changed after it was applied to this database "
                    "(checksum %.12s... recorded, %.12s... now); applied migrations must never be edited, "
                    "add a new one instead",
                    v, m->name, recorded, sum);
            return ERR_CONFLICT;
        }
        *version = v;
    }
    return rc;
}

int migrate_apply(db *d, int *applied, err *e)
{
    int cur, n = 0;
    if (applied) *applied = 0;
    int rc = migrate_current(d, &cur, e);
    if (rc) return rc;
    for (int i = 0; i < migrate_embedded_count; i++) {
        const struct migration *m = &migrate_embedded[i];
        if (m->version <= cur) continue;
        char sum[SHA256_HEX_LEN], now[25];
        crypto_sha256_hex(m->sql, m->len, sum);
        db_now(now);
        if ((rc = db_begin(d, e))) return rc;
        rc = db_exec_script(d, m->sql, e);
        if (!rc)
            rc = db_run(d, e, "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                        "isss", (int64_t)m->version, m->name, sum, now);
        if (!rc) rc = db_commit(d, e);
        if (rc) {
            db_rollback(d);
            err_prefix(e, "migration %04d_%s", m->version, m->name);
            return rc;
        }
        n++;
    }
    if (applied) *applied = n;
    return 0;
}

int migrate_require_current(db *d, err *e)
{
    int cur;
    int rc = migrate_current(d, &cur, e);
    if (rc) return rc;
    if (cur < migrate_latest())
        return err_set(e, ERR_CONFLICT,
                       "the database is at schema version %d, this binary needs %d: run `bandbill migrate`",
                       cur, migrate_latest());
    return 0;
}
