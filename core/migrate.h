/* migrate.h - numbered schema migrations, compiled into the binary.
 *
 * schema/NNNN_name.sql files are embedded at build time. Each is applied in
 * its own transaction and recorded with its SHA-256; a database that has a
 * migration this binary does not know (a newer database), or whose recorded
 * checksum differs from the file (an edited migration), is refused. */
#ifndef BB_MIGRATE_H
#define BB_MIGRATE_H

#include <stddef.h>

#include "db.h"
#include "err.h"

struct migration {
    int version;
    const char *name;
    const char *sql;
    size_t len;
};

extern const struct migration migrate_embedded[];
extern const int migrate_embedded_count;

/* The newest migration this binary knows. */
int migrate_latest(void);
/* The database's version (0 for an empty database). Checks the history
 * against the binary: ERR_CONFLICT for a newer database or an edited
 * migration. */
int migrate_current(db *d, int *version, err *e);
/* Applies what is missing; *applied gets how many (may be NULL). */
int migrate_apply(db *d, int *applied, err *e);
/* For the daemon: ok only when the database is exactly at migrate_latest(). */
int migrate_require_current(db *d, err *e);

#endif
