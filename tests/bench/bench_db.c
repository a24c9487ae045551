/* bench_db.c - what synchronous=FULL costs: one small transaction per
 * write (an acknowledged payment is one such commit), FULL against NORMAL.
 *
 *   bench_db DIR [COMMITS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *dir, const char *mode, int n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/bench-%s.db", dir, mode);
    unlink(path);
    db *d;
    err e;
    if (db_open(path, DB_OPEN_CREATE, &d, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    if (strcmp(mode, "normal") == 0) db_exec_script(d, "PRAGMA synchronous=NORMAL", &e);
    db_exec_script(d, "CREATE TABLE t (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, note TEXT)", &e);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (db_begin(d, &e) || db_run(d, &e, "INSERT INTO t (amount, note) VALUES (?, ?)", "is", (int64_t)i, "payment") ||
            db_commit(d, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
    }
    double t = now_s() - t0;
    printf("synchronous=%-6s %d commits in %.3f s = %.0f commits/s (%.3f ms each)\n", mode, n, t, n / t, t * 1e3 / n);
    db_close(d);
    unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    return run(dir, "full", n) || run(dir, "normal", n);
}
