/* backup.h - online backups of the database. */
#ifndef BB_BACKUP_H
#define BB_BACKUP_H

#include <stdint.h>

#include "db.h"
#include "err.h"

/* Copies the live database into a new file at path (refused if it exists)
 * through SQLite's online backup, writing a temporary file first so a
 * crash never leaves a half backup under the final name. */
int backup_to(db *d, const char *path, int64_t *bytes, err *e);
/* Writes dir/bandbill-YYYYMMDD-HHMMSS-mmm.db (UTC) and keeps only the newest `keep`
 * such files. */
int backup_rotate(db *d, const char *dir, int keep, char *written, size_t n, err *e);

#endif
