/* jobs.c - the table of scheduled jobs. Each subsystem that needs a
 * schedule adds its entry here; the config names jobs by these names. */
#include <stdio.h>
#include <time.h>

#include "backup.h"
#include "rules.h"
#include "dunning.h"
#include "date.h"
#include "billrun.h"
#include "notify.h"
#include "payorders.h"
#include "scheduler.h"
#include "subs.h"
#include "vault.h"

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

/* Delivers what is due on every configured channel, as `bandbill outbox
 * deliver` does: the daemon's dispatcher delivers continuously, this
 * catches up when it is off (notify.dispatch) or no daemon runs. A minute
 * with nothing due loads no rules. */
static int job_outbox_deliver(job_ctx *ctx, err *e)
{
    char now[25];
    db_now(now);
    int64_t due = 0;
    int rc = db_get_int(ctx->db, e, &due, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'failed') AND next_attempt_at <= ?",
                        "s", now);
    if (rc || !due) {
        ctx->idle = !rc;
        return rc;
    }
    notify_report r;
    rc = notify_deliver(ctx->db, ctx->cfg, NULL, 0, ctx->stop, &r, e);
    if (!rc)
        snprintf(ctx->summary, sizeof ctx->summary, "%lld sent, %lld failed (tried again later), %lld dead, %lld postponed",
                 (long long)r.sent, (long long)r.failed, (long long)r.dead, (long long)r.postponed);
    ctx->idle = !rc && r.sent + r.failed + r.dead + r.postponed == 0;
    return rc;
}

/* Orders nobody paid in time stop being payable. (A late notification for
 * one is still credited: the money is real.) */
static int job_orders_expire(job_ctx *ctx, err *e)
{
    int n = 0;
    int rc = payorders_expire(ctx->db, &n, e);
    if (!rc) snprintf(ctx->summary, sizeof ctx->summary, "%d payment order(s) expired", n);
    ctx->idle = !rc && n == 0;
    return rc;
}

/* Orders open for payments.query_after_min (10) minutes without a
 * notification: the channel is asked, and what it says was paid is
 * settled (a lost notification). */
static int job_orders_query(job_ctx *ctx, err *e)
{
    vault *v;
    int rc = vault_open(ctx->cfg->keys_file, &v, e);
    if (rc) return rc;
    int asked = 0, credited = 0;
    rc = payorders_query_due(ctx->db, v, ctx->cfg, ctx->cfg->query_after_min, 200, &asked, &credited, e);
    vault_close(v);
    if (!rc) snprintf(ctx->summary, sizeof ctx->summary, "asked about %d order(s), %d found paid", asked, credited);
    ctx->idle = !rc && asked == 0;
    return rc;
}

/* The collection ladder, once a day: 09:00 by default, inside the hours
 * customers may be messaged. */
static int job_dunning(job_ctx *ctx, err *e)
{
    vault *v;
    int rc = vault_open(ctx->cfg->keys_file, &v, e);
    if (rc) return rc;
    ruleset *rs = NULL;
    rc = rules_load_folder(ctx->cfg->rules, &rs, e);
    char day[11];
    date_format(date_of_time(ctx->scheduled_for ? ctx->scheduled_for : time(NULL)), day);
    dunning_report r;
    if (!rc) rc = dunning_pass(ctx->db, v, rs, rs->snap->version, day, 0, &r, e);
    if (!rc)
        snprintf(ctx->summary, sizeof ctx->summary, "%lld unpaid bills: %lld stages acted, %lld skipped, %lld failed",
                 (long long)r.invoices, (long long)r.acted, (long long)r.skipped, (long long)r.failed);
    if (!rc) ctx->idle = r.acted == 0 && r.skipped == 0 && r.failed == 0;
    if (rs) ruleset_unref(rs);
    vault_close(v);
    return rc;
}

const job_def sched_jobs[] = {
    {"backup", "0 3 * * *", job_backup, "online backup of the database into backup.dir, keeping backup.keep copies"},
    {"db.optimize", "30 4 * * 0", job_optimize, "refresh query planner statistics and checkpoint the WAL"},
    {"outbox.deliver", "* * * * *", job_outbox_deliver, "deliver due outbox messages on every configured channel (catch-up for the daemon's dispatcher)"},
    {"subscriptions.apply", "5 0 * * *", subs_job_apply, "apply scheduled subscription changes (downgrades, ends of suspension) that are due"},
    {"billing.run", "30 0 1 * *", billrun_job, "the monthly billing run: bill every subscription due on or before the day"},
    {"dunning.run", "0 9 * * *", job_dunning, "the collection ladder: each unpaid bill's due stage of rules/dunning.lua, once"},
    {"payments.expire", "*/5 * * * *", job_orders_expire, "mark payment orders nobody paid in time as expired"},
    {"payments.query", "*/5 * * * *", job_orders_query, "ask the channels about orders open for payments.query_after_min minutes without a notification, and settle what was paid"},
    {"billing.renewals", "45 0 * * *", billrun_job, "bill what falls due between monthly runs (prepaid renewals, final bills)"},
};
const int sched_jobs_count = sizeof sched_jobs / sizeof *sched_jobs;
