/* backup.c - online backup and rotation. */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int backup_to(db *d, const char *path, int64_t *bytes, err *e)
{
    struct stat st;
    if (stat(path, &st) == 0) return err_field(e, ERR_CONFLICT, "exists", "path", "%s already exists; not overwriting it", path);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    unlink(tmp);
    int rc = db_backup(d, tmp, e);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    if (rename(tmp, path)) {
        rc = err_set(e, ERR_IO, "cannot move the backup to %s: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    if (bytes) *bytes = stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
    return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int backup_rotate(db *d, const char *dir, int keep, char *written, size_t n, err *e)
{
    if (mkdir(dir, 0700) && errno != EEXIST) return err_set(e, ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    int64_t ms = db_now_ms();
    time_t now = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32], path[4096];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(path, sizeof path, "%s/bandbill-%s-%03d.db", dir, stamp, (int)(ms % 1000));
    int rc = backup_to(d, path, NULL, e);
    if (rc) return rc;
    if (written) snprintf(written, n, "%s", path);
    DIR *dh = opendir(dir);
    if (!dh) return 0;
    char *names[1024];
    int count = 0;
    struct dirent *de;
    while ((de = readdir(dh)) && count < 1024) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "bandbill-", 9) == 0 && l > 3 && strcmp(de->d_name + l - 3, ".db") == 0) {
            names[count] = strdup(de->d_name);
            if (names[count]) count++;
        }
    }
    closedir(dh);
    qsort(names, (size_t)count, sizeof *names, cmp_name);
    for (int i = 0; i < count; i++) {
        if (i < count - keep) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            unlink(path);
        }
        free(names[i]);
    }
    return 0;
}
