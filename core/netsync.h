/* netsync.h - making the network hold each account's desired state through
 * the network plugin (core/netplug.h; the radius plugin).
 *
 * The triggers of schema/0009_network.sql record in network_changes every
 * account whose desired record (netstate.h) may have changed. A pass reads
 * the changes after the cursor, makes each account's record, hands them to
 * the plugin, and only once the plugin has taken them records what was
 * applied (network_accounts) and moves the cursor, in one transaction: a
 * failing plugin leaves the changes where they are, and the next pass
 * tries them again. The first pass ever (network_sync has no row yet) sets
 * the feed up and applies every account.
 *
 * `bandbill serve` runs passes on a thread of its own every radius.poll_ms
 * when radius.db is set; `bandbill radius sync` runs one; `bandbill radius
 * resync` compares every account (and every name the plugin's tables hold)
 * and repairs what differs. Everything is counted in /metrics. */
#ifndef BB_NETSYNC_H
#define BB_NETSYNC_H

#include <stdint.h>

#include "cfg.h"
#include "db.h"
#include "err.h"
#include "netplug.h"
#include "vault.h"

/* The plugin that enforces the network ("radius"), opened. */
typedef struct netsync_plugin {
    const netplug_plugin *p;
    void *h;
} netsync_plugin;

/* 1 when network enforcement is configured (radius.db is set). */
int netsync_configured(const cfg *c);
/* Loads the plugins folder and opens the radius plugin with the radius.*
 * settings and the NASes (nas.NAME.*). A missing plugin or a refused
 * setting is an error naming it. */
int netsync_open(const cfg *c, netsync_plugin *out, err *e);
void netsync_close(netsync_plugin *p);
/* The host table network plugins get (tests load plugins with it). */
const netplug_host *netsync_host(void);

typedef struct netsync_report {
    int64_t changes;        /* change records taken from the feed */
    int64_t accounts;       /* account records handed to the plugin */
    int64_t changed;        /* of those, with entries that differed */
    int64_t errors;         /* accounts whose record could not be made (a password that does not decrypt) */
    int64_t sessions;       /* live sessions found */
    int64_t coa;            /* CoA-Requests sent (sessions) */
    int64_t disconnect;     /* Disconnect-Requests sent (sessions) */
    int64_t acked, naked, timed_out, failed;
    int64_t drift;          /* differences found (resync) */
    int64_t extra_users;    /* names with no account, removed (resync) */
    int baseline;           /* this pass applied every account (the first one) */
    int more;               /* changes are left for another pass */
} netsync_report;

/* One pass over the change feed (at most `limit` changes; 0: all of it).
 * today is the business day (plan versions in force). */
int netsync_run(db *d, const vault *v, netsync_plugin *p, const char *today, int64_t limit, netsync_report *r, err *e);

/* Each difference found, with the account it is about ("" for entries of
 * no account, such as a group's). */
typedef void (*netsync_drift_fn)(void *arg, const netplug_drift *d);
/* Compares every account's record, and every name the plugin's entries
 * hold, with the network; reports each difference to fn and, unless
 * dry_run, repairs it (disconnecting live sessions of suspended and closed
 * lines too). */
int netsync_resync(db *d, const vault *v, netsync_plugin *p, const char *today, int dry_run, netsync_drift_fn fn, void *arg,
                   netsync_report *r, err *e);

/* The daemon's worker: a thread with its own database connection, key file
 * and plugin handle, running passes every radius.poll_ms. *out is NULL
 * (and 0 returned) when radius is not configured; an error (no plugin, a
 * bad setting) means the daemon should not start. */
typedef struct netsync netsync;
int netsync_start(const cfg *c, netsync **out, err *e);
void netsync_stop(netsync *ns);

#endif
