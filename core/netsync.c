/* netsync.c - making the network hold each account's desired state (see
 * netsync.h). */
#include "netsync.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "channels.h"
#include "crypto.h"
#include "date.h"
#include "log.h"
#include "metrics.h"
#include "netstate.h"

#define BATCH 256
#define PLUGIN_NAME "radius"

/* ------------------------------------------------------------- the host */

static void host_log(int level, const char *event, const char *message)
{
    if (level < LOG_DEBUG || level > LOG_ERROR) level = LOG_WARN;
    log_msg(level, event && event[0] ? event : "netplug", "%s", message ? message : "");
}

static int host_random(void *out, size_t n) { return crypto_random(out, n) ? -1 : 0; }

static const netplug_host host = {NETPLUG_ABI, host_log, host_random};

const netplug_host *netsync_host(void) { return &host; }

/* -------------------------------------------------------------- loading */

/* Network plugins loaded so far, with the file each came from. */
#define MAX_PLUGINS 8
static struct {
    void *dl;
    const netplug_plugin *p;
    char path[PATH_MAX];
} loaded[MAX_PLUGINS];
static int nloaded;
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Loads the network plugins of dir (files exporting bandbill_netplug) not
 * loaded yet, in name order. */
static int load_dir(const char *dir, err *e)
{
    DIR *dh = opendir(dir);
    if (!dh) return err_set(e, ERR_IO, "cannot open the plugins folder %s: %s", dir, strerror(errno));
    char *names[64];
    int nn = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(dh)) && nn < 64) {
        size_t l = strlen(de->d_name);
        if (l > 3 && !strcmp(de->d_name + l - 3, ".so") && (names[nn] = strdup(de->d_name))) nn++;
    }
    closedir(dh);
    qsort(names, (size_t)nn, sizeof *names, by_name);
    for (int i = 0; i < nn && !rc; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int known = 0;
        for (int k = 0; k < nloaded && !known; k++) known = !strcmp(loaded[k].path, path);
        if (known) continue;
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
            rc = err_set(e, ERR_INVALID, "plugin %s does not load: %s", path, dlerror());
            break;
        }
        netplug_entry_fn entry;
        *(void **)&entry = dlsym(dl, NETPLUG_ENTRY);
        if (!entry) { /* a payment channel, or another kind */
            dlclose(dl);
            continue;
        }
        const netplug_plugin *p = entry(&host);
        if (!p || p->abi != NETPLUG_ABI || !p->name || !p->open || !p->close || !p->apply || !p->users)
            rc = err_set(e, ERR_INVALID, "plugin %s: not a network plugin of interface version %d", path, NETPLUG_ABI);
        else if (nloaded == MAX_PLUGINS)
            rc = err_set(e, ERR_LIMIT, "plugin %s: more than %d network plugins", path, MAX_PLUGINS);
        if (rc) {
            dlclose(dl);
            break;
        }
        loaded[nloaded].dl = dl;
        loaded[nloaded].p = p;
        snprintf(loaded[nloaded].path, sizeof loaded[nloaded].path, "%s", path);
        nloaded++;
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    return rc;
}

int netsync_configured(const cfg *c) { return c->radius_db[0] != 0; }

int netsync_open(const cfg *c, netsync_plugin *out, err *e)
{
    out->p = NULL;
    out->h = NULL;
    if (!netsync_configured(c)) return err_field(e, ERR_INVALID, "invalid_config", "radius.db", "radius.db is not set: no network enforcement is configured");
    char dir[CFG_PATH];
    channels_dir(c, dir, sizeof dir);
    pthread_mutex_lock(&load_mu);
    int rc = load_dir(dir, e);
    const netplug_plugin *p = NULL;
    size_t dl = strlen(dir);
    for (int i = 0; !rc && i < nloaded; i++)
        if (!strcmp(loaded[i].p->name, PLUGIN_NAME) && !strncmp(loaded[i].path, dir, dl) && loaded[i].path[dl] == '/' &&
            !strchr(loaded[i].path + dl + 1, '/'))
            p = loaded[i].p;
    pthread_mutex_unlock(&load_mu);
    if (rc) return rc;
    if (!p) return err_set(e, ERR_NOTFOUND, "radius.db is set but there is no network plugin '%s' in %s", PLUGIN_NAME, dir);
    char timeout[24], retries[24];
    snprintf(timeout, sizeof timeout, "%lld", (long long)c->radius_coa_timeout_ms);
    snprintf(retries, sizeof retries, "%lld", (long long)c->radius_coa_retries);
    netplug_kv kv[] = {
        {"db", c->radius_db},
        {"rate_format", c->radius_rate_format},
        {"suspended", c->radius_suspended},
        {"walled_garden_group", c->radius_walled_group},
        {"walled_garden_reply", c->radius_walled_reply},
        {"coa_timeout_ms", timeout},
        {"coa_retries", retries},
    };
    netplug_nas nas[CFG_MAX_NAS];
    for (int i = 0; i < c->nnas; i++)
        nas[i] = (netplug_nas){c->nas[i].name, c->nas[i].address, c->nas[i].secret, (int)c->nas[i].coa_port};
    netplug_settings s = {kv, sizeof kv / sizeof *kv, nas, (size_t)c->nnas};
    netplug_error pe;
    memset(&pe, 0, sizeof pe);
    if (p->open(&s, &out->h, &pe)) {
        char field[96];
        if (!strncmp(pe.field, "nas.", 4)) snprintf(field, sizeof field, "%s", pe.field);
        else snprintf(field, sizeof field, "radius%s%s", pe.field[0] ? "." : "", pe.field);
        return err_field(e, ERR_INVALID, "invalid_setting", field, "network plugin %s: %s%s%s", PLUGIN_NAME, field,
                         ": ", pe.message);
    }
    out->p = p;
    return 0;
}

void netsync_close(netsync_plugin *p)
{
    if (p->p && p->h) p->p->close(p->h);
    p->p = NULL;
    p->h = NULL;
}

/* --------------------------------------------------------------- metrics */

static void count(const char *name, const char *help, const char *labels, int64_t n)
{
    if (n > 0) metric_add(metrics_counter(name, help, labels), (uint64_t)n);
}

static void count_outcome(const netplug_outcome *o, netsync_report *r)
{
    if (o->action == NETPLUG_NO_ACTION) return;
    const char *kind = o->action == NETPLUG_COA ? "coa" : "disconnect";
    int64_t asked = o->acked + o->naked + o->timed_out + o->failed;
    r->sessions += o->sessions;
    if (o->action == NETPLUG_COA) r->coa += asked;
    else r->disconnect += asked;
    r->acked += o->acked;
    r->naked += o->naked;
    r->timed_out += o->timed_out;
    r->failed += o->failed;
    static const char help[] = "RFC 5176 requests to the NASes by kind (coa, disconnect) and result (ack, nak, timeout, error)";
    const char *results[] = {"ack", "nak", "timeout", "error"};
    int n[] = {o->acked, o->naked, o->timed_out, o->failed};
    char sent[32];
    snprintf(sent, sizeof sent, "kind=\"%s\"", kind);
    count("bandbill_radius_requests_sent_total", "RFC 5176 requests sent to the NASes (once per session, retries apart)", sent,
          (int64_t)o->acked + o->naked + o->timed_out);
    for (int i = 0; i < 4; i++) {
        char label[64];
        snprintf(label, sizeof label, "kind=\"%s\",result=\"%s\"", kind, results[i]);
        count("bandbill_radius_requests_total", help, label, n[i]);
    }
}

/* ------------------------------------------------------------- records */

static netplug_state state_of(const char *s)
{
    if (!strcmp(s, "throttled")) return NETPLUG_THROTTLED;
    if (!strcmp(s, "suspended")) return NETPLUG_SUSPENDED;
    if (!strcmp(s, "closed")) return NETPLUG_CLOSED;
    return NETPLUG_ACTIVE;
}

typedef struct drift_ctx {
    netsync_drift_fn fn;
    void *arg;
    netsync_report *r;
    int dry;
} drift_ctx;

static void on_drift(void *arg, const netplug_drift *d)
{
    drift_ctx *x = arg;
    x->r->drift++;
    char label[48];
    snprintf(label, sizeof label, "kind=\"%s\"", !strcmp(d->kind, "missing") || !strcmp(d->kind, "extra") ||
                                                     !strcmp(d->kind, "wrong") || !strcmp(d->kind, "session") ? d->kind : "other");
    metric_inc(metrics_counter(x->dry ? "bandbill_network_drift_found_total" : "bandbill_network_drift_repaired_total",
                               x->dry ? "Differences between the accounts and the network found by a dry-run resync, by kind"
                                      : "Differences between the accounts and the network repaired, by kind",
                               label));
    if (x->fn) x->fn(x->arg, d);
}

/* The name the account was last applied under, if any. */
static int applied_name(db *d, int64_t account_id, char out[ACCOUNT_USERNAME_BUF + 32], err *e)
{
    out[0] = 0;
    db_stmt *s = db_prepare(d, "SELECT username FROM network_accounts WHERE account_id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, account_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) snprintf(out, ACCOUNT_USERNAME_BUF + 32, "%s", db_col_text(s, 0));
    db_done(s);
    return rc < 0 ? rc : 0;
}

static void set_failure(db *d, const char *why)
{
    char now[25];
    err e;
    db_now(now);
    if (db_in_tx(d)) return;
    db_run(d, &e, "UPDATE network_sync SET last_run_at = ?, last_error = ? WHERE id = 1", "ss", now, why);
}

/* Hands n records to the plugin and, once it has taken them, records what
 * was applied - with the cursor moved to cursor_to (0: not moved) in the
 * same transaction. */
static int apply_records(db *d, netsync_plugin *p, netstate_record *recs, int n, int flags, netsync_drift_fn fn, void *arg,
                         int64_t cursor_to, netsync_report *r, err *e)
{
    netplug_record *pr = calloc((size_t)(n ? n : 1), sizeof *pr);
    netplug_outcome *out = calloc((size_t)(n ? n : 1), sizeof *out);
    char(*old)[ACCOUNT_USERNAME_BUF + 32] = calloc((size_t)(n ? n : 1), sizeof *old);
    int *map = calloc((size_t)(n ? n : 1), sizeof *map);
    int rc = pr && out && old && map ? 0 : ERR_NOMEM_RET(e), m = 0;
    for (int i = 0; !rc && i < n; i++) {
        netstate_record *x = &recs[i];
        if (x->error[0]) {
            r->errors++;
            count("bandbill_network_record_errors_total", "Accounts whose desired record could not be made", "", 1);
            /* retried every pass until it can be made (see below): said once a minute */
            static int64_t said_ms;
            if (db_now_ms() - said_ms >= 60000) {
                said_ms = db_now_ms();
                log_msg(LOG_WARN, "network_record_failed", "account %s (id %lld) left as it is on the network: %s", x->username,
                        (long long)x->account_id, x->error);
            }
            continue;
        }
        rc = applied_name(d, x->account_id, old[m], e);
        if (rc) break;
        pr[m] = (netplug_record){x->username, strcmp(x->state, "closed") ? x->password : NULL, state_of(x->state),
                                 x->rate.down_kbps, x->rate.up_kbps,
                                 old[m][0] && strcmp(old[m], x->username) ? old[m] : NULL};
        map[m++] = i;
    }
    drift_ctx dx = {fn, arg, r, (flags & NETPLUG_DRY_RUN) != 0};
    netplug_error pe;
    memset(&pe, 0, sizeof pe);
    if (!rc && m && p->p->apply(p->h, pr, (size_t)m, flags, out, on_drift, &dx, &pe)) {
        rc = err_set(e, ERR_IO, "network plugin %s: %s%s%s", p->p->name, pe.check, pe.check[0] ? ": " : "", pe.message);
        count("bandbill_network_sync_failures_total", "Passes the network plugin could not apply (retried)", "", 1);
    }
    if (!rc) {
        r->accounts += m;
        for (int k = 0; k < m; k++) {
            r->changed += out[k].changed != 0;
            count_outcome(&out[k], r);
        }
    }
    if (!rc && !(flags & NETPLUG_DRY_RUN)) {
        char now[25];
        db_now(now);
        rc = db_begin(d, e);
        for (int k = 0; !rc && k < m; k++) {
            netstate_record *x = &recs[map[k]];
            const netplug_outcome *o = &out[k];
            int acted = o->action != NETPLUG_NO_ACTION;
            int bad = o->naked + o->timed_out + o->failed;
            rc = db_run(d, e,
                        "INSERT INTO network_accounts (account_id, username, state, down_kbps, up_kbps, applied_at, sessions, "
                        "session_result, session_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET "
                        "username = excluded.username, state = excluded.state, down_kbps = excluded.down_kbps, "
                        "up_kbps = excluded.up_kbps, applied_at = excluded.applied_at, "
                        "sessions = CASE WHEN excluded.session_result = 'none' THEN network_accounts.sessions ELSE excluded.sessions END, "
                        "session_error = CASE WHEN excluded.session_result = 'none' THEN network_accounts.session_error "
                        "ELSE excluded.session_error END, "
                        "session_result = CASE WHEN excluded.session_result = 'none' THEN network_accounts.session_result "
                        "ELSE excluded.session_result END",
                        "issiisiss", x->account_id, x->username, x->state, x->rate.down_kbps, x->rate.up_kbps, now,
                        (int64_t)o->sessions, !acted ? "none" : bad ? "failed" : "ok", bad ? o->error : NULL);
        }
        if (!rc && cursor_to > 0)
            rc = db_run(d, e,
                        "UPDATE network_sync SET cursor = CASE WHEN cursor < ? THEN ? ELSE cursor END WHERE id = 1", "ii",
                        cursor_to, cursor_to);
        if (!rc && cursor_to > 0) rc = db_run(d, e, "DELETE FROM network_changes WHERE id <= ?", "i", cursor_to);
        /* an account whose record could not be made (a password that does
         * not decrypt: a key rotation under way, a key pruned too early)
         * is not passed over for good: it goes back on the feed, so a
         * suspension still reaches the network once it can */
        for (int i = 0; !rc && cursor_to > 0 && i < n; i++)
            if (recs[i].error[0])
                rc = db_run(d, e, "INSERT INTO network_changes (account_id, reason, at) VALUES (?, 'retry', ?)", "is",
                            recs[i].account_id, now);
        if (!rc)
            rc = db_run(d, e,
                        "UPDATE network_sync SET applied = applied + ?, last_run_at = ?, last_ok_at = ?, last_error = NULL "
                        "WHERE id = 1",
                        "iss", (int64_t)m, now, now);
        if (!rc) rc = db_commit(d, e);
        else db_rollback(d);
        if (!rc) count("bandbill_network_accounts_applied_total", "Account records the network plugin applied", "", m);
    }
    for (int k = 0; old && k < m; k++) explicit_bzero(old[k], sizeof old[k]);
    free(pr);
    free(out);
    free(old);
    free(map);
    return rc;
}

/* The names the plugin's entries hold that no account has. */
typedef struct extras {
    db *d;
    char (*names)[ACCOUNT_USERNAME_BUF + 32];
    size_t n, cap;
    int rc;
    err *e;
} extras;

static int extras_cb(void *arg, const char *name)
{
    extras *x = arg;
    int64_t one;
    int rc = db_get_int(x->d, x->e, &one, "SELECT 1 FROM service_accounts WHERE username = ?", "s", name);
    if (rc == 0) return 0;
    if (rc != ERR_NOTFOUND) {
        x->rc = rc;
        return 1;
    }
    if (strlen(name) >= sizeof x->names[0]) return 0; /* not a name of ours: FreeRADIUS would not match it either */
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        void *nv = realloc(x->names, cap * sizeof *x->names);
        if (!nv) {
            x->rc = ERR_NOMEM_RET(x->e);
            return 1;
        }
        x->names = nv;
        x->cap = cap;
    }
    snprintf(x->names[x->n++], sizeof x->names[0], "%s", name);
    return 0;
}

/* Every account, in id order; then the names no account has. */
static int full_pass(db *d, const vault *v, netsync_plugin *p, const char *today, int dry, netsync_drift_fn fn, void *arg,
                     netsync_report *r, err *e)
{
    netstate_record *recs = calloc(BATCH, sizeof *recs);
    if (!recs) return ERR_NOMEM_RET(e);
    int flags = NETPLUG_RESYNC | (dry ? NETPLUG_DRY_RUN : 0), rc = 0, n = 0;
    int64_t after = 0;
    do {
        rc = netstate_desired_batch(d, v, after, today, recs, BATCH, &n, e);
        if (rc || !n) break;
        after = recs[n - 1].account_id;
        rc = apply_records(d, p, recs, n, flags, fn, arg, 0, r, e);
        netstate_wipe(recs, n);
    } while (!rc && n == BATCH);
    /* names in the tables that no account has (renamed, removed by hand) */
    extras x = {.d = d, .e = e};
    if (!rc) {
        netplug_error pe;
        memset(&pe, 0, sizeof pe);
        if (p->p->users(p->h, extras_cb, &x, &pe))
            rc = err_set(e, ERR_IO, "network plugin %s: %s: %s", p->p->name, pe.check, pe.message);
        else rc = x.rc;
    }
    for (size_t i = 0; !rc && i < x.n; i += BATCH) {
        size_t k = x.n - i < BATCH ? x.n - i : BATCH;
        netplug_record pr[BATCH];
        netplug_outcome out[BATCH];
        for (size_t j = 0; j < k; j++) pr[j] = (netplug_record){x.names[i + j], NULL, NETPLUG_CLOSED, 0, 0, NULL};
        drift_ctx dx = {fn, arg, r, dry};
        netplug_error pe;
        memset(&pe, 0, sizeof pe);
        if (p->p->apply(p->h, pr, k, flags, out, on_drift, &dx, &pe))
            rc = err_set(e, ERR_IO, "network plugin %s: %s: %s", p->p->name, pe.check, pe.message);
        for (size_t j = 0; !rc && j < k; j++) {
            r->extra_users++;
            count_outcome(&out[j], r);
        }
    }
    free(x.names);
    free(recs);
    return rc;
}

int netsync_resync(db *d, const vault *v, netsync_plugin *p, const char *today, int dry_run, netsync_drift_fn fn, void *arg,
                   netsync_report *r, err *e)
{
    memset(r, 0, sizeof *r);
    return full_pass(d, v, p, today, dry_run, fn, arg, r, e);
}

/* ------------------------------------------------------------- the feed */

/* New plan versions in force from a day since the last pass: every
 * account on those plans again. */
static int plan_days(db *d, const char *today, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT coalesce(plan_day, '') FROM network_sync WHERE id = 1", e);
    if (!s) return e->code;
    int rc = db_step(d, s, e);
    char last[11] = "";
    if (rc == DB_ROW) snprintf(last, sizeof last, "%s", db_col_text(s, 0));
    db_done(s);
    if (rc < 0) return rc;
    if (!strcmp(last, today)) return 0;
    char now[25];
    db_now(now);
    rc = db_begin(d, e);
    if (!rc && last[0])
        rc = db_run(d, e,
                    "INSERT INTO network_changes (account_id, reason, at) SELECT DISTINCT s.service_account_id, 'plan_day', ? "
                    "FROM subscriptions s JOIN product_versions v ON v.product_id = s.product_id "
                    "WHERE v.effective_from > ? AND v.effective_from <= ? AND s.service_account_id IS NOT NULL "
                    "AND s.status <> 'terminated'",
                    "sss", now, last, today);
    if (!rc) rc = db_run(d, e, "UPDATE network_sync SET plan_day = ? WHERE id = 1", "s", today);
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    return rc;
}

static int feed_batch(db *d, const vault *v, netsync_plugin *p, const char *today, netsync_report *r, int *got, err *e)
{
    *got = 0;
    int64_t cursor = 0;
    int rc = db_get_int(d, e, &cursor, "SELECT cursor FROM network_sync WHERE id = 1", "");
    if (rc) return rc;
    db_stmt *s = db_prepare(d, "SELECT id, account_id, at FROM network_changes WHERE id > ? ORDER BY id LIMIT ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, cursor);
    db_bind_int(s, 2, BATCH);
    int64_t ids[BATCH], last = 0, oldest_ms = 0;
    int n = 0, rows = 0, st;
    while ((st = db_step(d, s, e)) == DB_ROW) {
        int64_t acc = db_col_int(s, 1);
        last = db_col_int(s, 0);
        if (!rows) db_parse_time(db_col_text(s, 2), &oldest_ms);
        rows++;
        int seen = 0;
        for (int i = 0; i < n && !seen; i++) seen = ids[i] == acc;
        if (!seen) ids[n++] = acc;
    }
    db_done(s);
    if (st < 0) return st;
    if (!rows) return 0;
    netstate_record *recs = calloc((size_t)n, sizeof *recs);
    if (!recs) return ERR_NOMEM_RET(e);
    int m = 0;
    for (int i = 0; !rc && i < n; i++) {
        rc = netstate_desired(d, v, ids[i], today, &recs[m], e);
        if (rc == ERR_NOTFOUND) {
            /* an account that is gone: what was applied for it goes too */
            char name[ACCOUNT_USERNAME_BUF + 32];
            rc = applied_name(d, ids[i], name, e);
            if (!rc && name[0] && strlen(name) < sizeof recs[m].username) {
                memset(&recs[m], 0, sizeof recs[m]);
                recs[m].account_id = ids[i];
                snprintf(recs[m].username, sizeof recs[m].username, "%s", name);
                snprintf(recs[m].state, sizeof recs[m].state, "closed");
                m++;
            }
            continue;
        }
        if (!rc) m++;
    }
    if (!rc) rc = apply_records(d, p, recs, m, 0, NULL, NULL, last, r, e);
    netstate_wipe(recs, m);
    free(recs);
    if (!rc) {
        r->changes += rows;
        *got = rows;
        count("bandbill_network_changes_applied_total", "Changes of the network change feed applied", "", rows);
        if (oldest_ms) {
            static const int64_t bounds[] = {10000, 50000, 100000, 250000, 500000, 1000000, 2000000, 5000000, 30000000};
            metric_observe_us(metrics_histogram("bandbill_network_sync_lag_seconds",
                                                "From a change of an account to the network holding it",
                                                "", bounds, (int)(sizeof bounds / sizeof *bounds)),
                              (db_now_ms() - oldest_ms) * 1000);
        }
    }
    return rc;
}

int netsync_run(db *d, const vault *v, netsync_plugin *p, const char *today, int64_t limit, netsync_report *r, err *e)
{
    memset(r, 0, sizeof *r);
    char now[25];
    db_now(now);
    int64_t baseline = 0;
    int rc = db_run(d, e, "INSERT INTO network_sync (id, created_at) VALUES (1, ?) ON CONFLICT (id) DO NOTHING", "s", now);
    if (!rc) rc = db_get_int(d, e, &baseline, "SELECT baseline FROM network_sync WHERE id = 1", "");
    if (!rc && !baseline) {
        /* the first pass: the feed records changes from now on, and every
         * account is brought to its state */
        rc = full_pass(d, v, p, today, 0, NULL, NULL, r, e);
        if (!rc) rc = db_run(d, e, "UPDATE network_sync SET baseline = 1, last_ok_at = ?, last_error = NULL WHERE id = 1", "s", now);
        if (!rc) r->baseline = 1;
    }
    if (!rc) rc = plan_days(d, today, e);
    while (!rc) {
        int got = 0;
        rc = feed_batch(d, v, p, today, r, &got, e);
        if (rc || got < BATCH) break;
        if (limit && r->changes >= limit) {
            r->more = 1;
            break;
        }
    }
    int64_t pending = 0;
    err pe;
    if (!db_get_int(d, &pe, &pending, "SELECT count(*) FROM network_changes", ""))
        metric_set(metrics_gauge("bandbill_network_pending_changes", "Changes of the network change feed not applied yet", ""),
                   pending);
    if (rc) set_failure(d, e->msg);
    return rc;
}

/* ------------------------------------------------------------ the worker */

struct netsync {
    const cfg *c;
    netsync_plugin p;
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static void *worker(void *arg)
{
    netsync *ns = arg;
    db *d = NULL;
    vault *v = NULL;
    struct stat keys_st;
    memset(&keys_st, 0, sizeof keys_st);
    char last_error[sizeof ((err *)0)->msg] = "";
    int64_t backoff = 0, last_logged = 0;
    for (;;) {
        pthread_mutex_lock(&ns->mu);
        int stop = ns->stop;
        pthread_mutex_unlock(&ns->mu);
        if (stop) break;
        err e;
        err_clear(&e);
        int rc = 0;
        if (!d && (rc = db_open(ns->c->db, 0, &d, &e))) d = NULL;
        /* the key file may be rotated under us: the current one, always */
        struct stat st;
        if (!rc && (!v || (stat(ns->c->keys_file, &st) == 0 &&
                           (st.st_ino != keys_st.st_ino || st.st_mtim.tv_sec != keys_st.st_mtim.tv_sec ||
                            st.st_mtim.tv_nsec != keys_st.st_mtim.tv_nsec)))) {
            vault *nv = NULL;
            if (stat(ns->c->keys_file, &keys_st) || (rc = vault_open(ns->c->keys_file, &nv, &e)) != 0) {
                if (!rc) rc = err_set(&e, ERR_IO, "cannot read the key file %s", ns->c->keys_file);
            } else {
                vault_close(v);
                v = nv;
            }
        }
        netsync_report r;
        memset(&r, 0, sizeof r);
        if (!rc) {
            char today[11];
            date_format(date_of_time(time(NULL)), today);
            rc = netsync_run(d, v, &ns->p, today, 4 * BATCH, &r, &e);
            db_release(d);
        }
        if (rc) {
            int64_t t = db_now_ms();
            /* the same failure again and again is said once a minute */
            if (strcmp(last_error, e.msg) || t - last_logged >= 60000) {
                log_msg(LOG_ERROR, "network_sync_failed", "%s (retrying)", e.msg);
                snprintf(last_error, sizeof last_error, "%s", e.msg);
                last_logged = t;
            }
            backoff = backoff ? backoff * 2 : ns->c->radius_poll_ms;
            if (backoff > 5000) backoff = 5000;
        } else {
            if (last_error[0]) log_msg(LOG_INFO, "network_sync_recovered", "the network plugin applies changes again");
            last_error[0] = 0;
            backoff = 0;
            if (r.baseline || r.accounts) {
                log_line *l = log_begin(r.baseline ? LOG_INFO : LOG_DEBUG, r.baseline ? "network_baseline" : "network_sync");
                log_int(l, "changes", r.changes);
                log_int(l, "accounts", r.accounts);
                log_int(l, "changed", r.changed);
                log_int(l, "coa", r.coa);
                log_int(l, "disconnect", r.disconnect);
                log_int(l, "acked", r.acked);
                log_int(l, "naked", r.naked);
                log_int(l, "timed_out", r.timed_out);
                log_int(l, "failed", r.failed);
                log_end(l);
            }
        }
        int64_t wait_ms = rc ? backoff : r.more ? 0 : ns->c->radius_poll_ms;
        if (!wait_ms) continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&ns->mu);
        while (!ns->stop && pthread_cond_timedwait(&ns->cv, &ns->mu, &until) != ETIMEDOUT) {
        }
        pthread_mutex_unlock(&ns->mu);
    }
    vault_close(v);
    db_close(d);
    log_release();
    return NULL;
}

int netsync_start(const cfg *c, netsync **out, err *e)
{
    *out = NULL;
    if (!netsync_configured(c)) return 0;
    netsync *ns = calloc(1, sizeof *ns);
    if (!ns) return ERR_NOMEM_RET(e);
    ns->c = c;
    int rc = netsync_open(c, &ns->p, e);
    if (rc) {
        free(ns);
        return rc;
    }
    pthread_mutex_init(&ns->mu, NULL);
    pthread_cond_init(&ns->cv, NULL);
    if (pthread_create(&ns->tid, NULL, worker, ns) != 0) {
        netsync_close(&ns->p);
        pthread_mutex_destroy(&ns->mu);
        pthread_cond_destroy(&ns->cv);
        free(ns);
        return err_set(e, ERR_INTERNAL, "cannot start the network sync thread");
    }
    log_msg(LOG_INFO, "network_sync_started", "radius plugin on %s, %d NAS%s, every %lld ms", c->radius_db, c->nnas,
            c->nnas == 1 ? "" : "es", (long long)c->radius_poll_ms);
    *out = ns;
    return 0;
}

void netsync_stop(netsync *ns)
{
    if (!ns) return;
    pthread_mutex_lock(&ns->mu);
    ns->stop = 1;
    pthread_cond_broadcast(&ns->cv);
    pthread_mutex_unlock(&ns->mu);
    pthread_join(ns->tid, NULL);
    netsync_close(&ns->p);
    pthread_mutex_destroy(&ns->mu);
    pthread_cond_destroy(&ns->cv);
    free(ns);
}
