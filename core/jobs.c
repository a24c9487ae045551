/* jobs.c - the table of scheduled jobs. Each subsystem that needs a
 * schedule adds its entry here; the config names jobs by these names. */
#include <stdio.h>

#include "backup.h"
#include "scheduler.h"

static int job_backup(job_ctx *ctx, err *e)
{
    char path[4096];
    int rc = backup_rotate(ctx->db, ctx->cfg->backup_dir, (int)ctx->cfg->backup_keep, path, sizeof path, e);
    if (!rc) snprintf(ctx->summary, sizeof ctx->summary, "wrote %s", path);
    return rc;
}

static int job_optimize(job_ctx *ctx, err *e)
{
    int rc = db_maintain(ctx->db, e);
    if (!rc) snprintf(ctx->summary, sizeof ctx->summary, "statistics refreshed, WAL checkpointed");
    return rc;
}

const job_def sched_jobs[] = {
    {"backup", "0 3 * * *", job_backup, "online backup of the database into backup.dir, keeping backup.keep copies"},
    {"db.optimize", "30 4 * * 0", job_optimize, "refresh query planner statistics and checkpoint the WAL"},
};
const int sched_jobs_count = sizeof sched_jobs / sizeof *sched_jobs;
