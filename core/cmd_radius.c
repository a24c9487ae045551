/* cmd_radius.c - `bandbill radius sync|resync|status`: network enforcement
 * from the command line (netsync.h), for operators without the daemon and
 * for repairs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "cli.h"
#include "date.h"
#include "json.h"
#include "netsync.h"
#include "vault.h"

typedef struct env {
    db *d;
    vault *v;
    netsync_plugin p;
    char today[11];
} env;

static int open_env(cli *c, env *x, err *e)
{
    memset(x, 0, sizeof *x);
    date_format(date_of_time(time(NULL)), x->today);
    if (!netsync_configured(&c->cfg))
        return err_set(e, ERR_INVALID, "radius.db is not set: configure the FreeRADIUS database (and the NASes) first");
    int rc = cli_open_db(c, &x->d, e);
    if (!rc) rc = cli_open_vault(c, &x->v, e);
    if (!rc) rc = netsync_open(&c->cfg, &x->p, e);
    return rc;
}

static int close_env(env *x, int rc)
{
    netsync_close(&x->p);
    vault_close(x->v);
    if (x->d) db_close(x->d);
    return rc;
}

static void report_json(jw *w, const netsync_report *r)
{
    jw_kv_int(w, "accounts", r->accounts);
    jw_kv_int(w, "changed", r->changed);
    jw_kv_int(w, "errors", r->errors);
    jw_key(w, "sessions");
    jw_obj_open(w);
    jw_kv_int(w, "found", r->sessions);
    jw_kv_int(w, "coa", r->coa);
    jw_kv_int(w, "disconnect", r->disconnect);
    jw_kv_int(w, "acked", r->acked);
    jw_kv_int(w, "naked", r->naked);
    jw_kv_int(w, "timed_out", r->timed_out);
    jw_kv_int(w, "failed", r->failed);
    jw_obj_close(w);
}

static void report_text(const netsync_report *r)
{
    if (r->coa || r->disconnect || r->sessions)
        printf("live sessions: %lld found, %lld CoA and %lld Disconnect requests; %lld acknowledged, %lld refused (NAK), "
               "%lld unanswered, %lld not sent\n",
               (long long)r->sessions, (long long)r->coa, (long long)r->disconnect, (long long)r->acked, (long long)r->naked,
               (long long)r->timed_out, (long long)r->failed);
}

/* A NAS that did not take a request is an error of the command: the
 * tables are right, a live session may not be. */
static int session_failures(const netsync_report *r, err *e)
{
    int64_t bad = r->naked + r->timed_out + r->failed;
    if (!bad) return 0;
    return err_set(e, ERR_IO,
                   "%lld live session%s not told: %lld refused, %lld unanswered, %lld not sent (the log names the NAS and why; "
                   "see bandbill radius status)",
                   (long long)bad, bad == 1 ? " was" : "s were", (long long)r->naked, (long long)r->timed_out, (long long)r->failed);
}

/* `radius sync`: the pending changes, once. */
int cmd_radius_sync(cli *c, err *e)
{
    env x;
    int rc = open_env(c, &x, e);
    netsync_report r;
    memset(&r, 0, sizeof r);
    if (!rc) rc = netsync_run(x.d, x.v, &x.p, x.today, 0, &r, e);
    if (!rc && c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_bool(&w, "baseline", r.baseline);
        jw_kv_int(&w, "changes", r.changes);
        report_json(&w, &r);
        jw_obj_close(&w);
        rc = cli_print_json(&w, e);
    } else if (!rc) {
        if (r.baseline) printf("first sync: every account applied (%lld, %lld changed)\n", (long long)r.accounts, (long long)r.changed);
        printf("%lld change%s applied to %lld account%s (%lld changed on the network)\n", (long long)r.changes,
               r.changes == 1 ? "" : "s", (long long)r.accounts, r.accounts == 1 ? "" : "s", (long long)r.changed);
        report_text(&r);
    }
    if (!rc && r.errors)
        rc = err_set(e, ERR_INVALID, "%lld account%s could not be applied (the log says why)", (long long)r.errors,
                     r.errors == 1 ? "" : "s");
    if (!rc) rc = session_failures(&r, e);
    fflush(stdout);
    return close_env(&x, rc);
}

typedef struct drift_out {
    int json;
    jw *w;
    int64_t n;
} drift_out;

static void on_drift(void *arg, const netplug_drift *d)
{
    drift_out *o = arg;
    o->n++;
    if (o->json) {
        jw_obj_open(o->w);
        jw_kv_str(o->w, "username", d->username);
        jw_kv_str(o->w, "kind", d->kind);
        jw_kv_str(o->w, "where", d->where);
        jw_kv_str(o->w, "attribute", d->attribute);
        jw_kv_str(o->w, "have", d->have);
        jw_kv_str(o->w, "want", d->want);
        jw_obj_close(o->w);
        return;
    }
    printf("%-24s %-8s %s%s%s", d->username[0] ? d->username : "(group)", d->kind, d->where, d->attribute[0] ? " " : "",
           d->attribute);
    if (d->have[0]) printf(": have %s", d->have);
    if (d->want[0]) printf("%s want %s", d->have[0] ? "," : ":", d->want);
    putchar('\n');
}

/* `radius resync [--dry-run]`: every account against the tables. */
int cmd_radius_resync(cli *c, err *e)
{
    int dry = cli_opt_value(c, "dry-run") != NULL;
    env x;
    int rc = open_env(c, &x, e);
    jw w;
    int jw_ok = 0;
    if (!rc && c->json) {
        if (jw_init(&w, 0)) rc = ERR_NOMEM_RET(e);
        else jw_ok = 1;
    }
    drift_out o = {c->json, &w, 0};
    netsync_report r;
    memset(&r, 0, sizeof r);
    if (jw_ok) {
        jw_obj_open(&w);
        jw_key(&w, "drift");
        jw_arr_open(&w);
    }
    if (!rc) rc = netsync_resync(x.d, x.v, &x.p, x.today, dry, on_drift, &o, &r, e);
    if (!rc && !dry) {
        /* a repair of the network is recorded like any change made here */
        jv_arena a;
        jv_arena_init(&a, 0);
        jv *det = jv_obj(&a);
        if (!det || jv_obj_set_int(&a, det, "accounts", r.accounts) || jv_obj_set_int(&a, det, "differences", r.drift) ||
            jv_obj_set_int(&a, det, "accounts_changed", r.changed) || jv_obj_set_int(&a, det, "extra_users", r.extra_users) ||
            jv_obj_set_int(&a, det, "disconnect", r.disconnect) || jv_obj_set_int(&a, det, "coa", r.coa))
            rc = ERR_NOMEM_RET(e);
        audit_event ev = {.action = "network.resync", .object_type = "network", .object_id = "radius", .detail = det};
        if (!rc) rc = db_begin(x.d, e);
        if (!rc) {
            rc = cli_audit(c, x.d, x.v, &ev, e);
            if (!rc) rc = db_commit(x.d, e);
            else db_rollback(x.d);
        }
        jv_arena_free(&a);
    }
    if (!rc && jw_ok) {
        jw_arr_close(&w);
        jw_kv_bool(&w, "dry_run", dry);
        jw_kv_int(&w, "differences", r.drift);
        jw_kv_int(&w, "extra_users", r.extra_users);
        report_json(&w, &r);
        jw_kv_bool(&w, "in_sync", r.drift == 0);
        jw_obj_close(&w);
        jw_ok = 0;
        rc = cli_print_json(&w, e);
    } else if (!rc) {
        printf("%lld account%s compared%s: %lld difference%s in %lld account%s, %lld name%s with no account%s\n",
               (long long)r.accounts, r.accounts == 1 ? "" : "s", dry ? " (dry run: nothing repaired)" : "",
               (long long)r.drift, r.drift == 1 ? "" : "s", (long long)r.changed, r.changed == 1 ? "" : "s",
               (long long)r.extra_users, r.extra_users == 1 ? "" : "s", dry || !r.extra_users ? "" : " (removed)");
        if (!r.drift) printf("the network holds what every account says\n");
        else if (!dry) printf("repaired\n");
        report_text(&r);
    }
    if (jw_ok) jw_free(&w);
    if (!rc && r.errors)
        rc = err_set(e, ERR_INVALID, "%lld account%s could not be compared (the log says why)", (long long)r.errors,
                     r.errors == 1 ? "" : "s");
    if (!rc) rc = session_failures(&r, e);
    /* a dry run that found differences fails like a check: explained above */
    if (!rc && dry && r.drift) rc = 1;
    fflush(stdout);
    return close_env(&x, rc);
}

/* `radius status`: where the sync stands. */
int cmd_radius_status(cli *c, err *e)
{
    db *d = NULL;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    jw w;
    if (jw_init(&w, 0)) {
        db_close(d);
        return ERR_NOMEM_RET(e);
    }
    jw_obj_open(&w);
    jw_kv_bool(&w, "configured", netsync_configured(&c->cfg));
    jw_kv_str(&w, "db", c->cfg.radius_db);
    db_stmt *s = db_prepare(d,
                            "SELECT cursor, baseline, created_at, last_run_at, last_ok_at, last_error, applied, "
                            "(SELECT count(*) FROM network_changes WHERE id > network_sync.cursor) FROM network_sync WHERE id = 1",
                            e);
    if (!s) rc = e->code;
    int set_up = 0;
    int64_t pending = 0, applied = 0;
    char last_ok[25] = "", last_error[512] = "";
    if (!rc) {
        int st = db_step(d, s, e);
        if (st == DB_ROW) {
            set_up = 1;
            jw_kv_int(&w, "cursor", db_col_int(s, 0));
            jw_kv_bool(&w, "baseline", db_col_int(s, 1) != 0);
            jw_kv_str(&w, "set_up_at", db_col_text(s, 2));
            jw_key(&w, "last_run_at");
            db_col_is_null(s, 3) ? jw_null(&w) : jw_str(&w, db_col_text(s, 3));
            jw_key(&w, "last_ok_at");
            db_col_is_null(s, 4) ? jw_null(&w) : jw_str(&w, db_col_text(s, 4));
            jw_key(&w, "last_error");
            db_col_is_null(s, 5) ? jw_null(&w) : jw_str(&w, db_col_text(s, 5));
            snprintf(last_ok, sizeof last_ok, "%s", db_col_text(s, 4));
            snprintf(last_error, sizeof last_error, "%s", db_col_text(s, 5));
            applied = db_col_int(s, 6);
            pending = db_col_int(s, 7);
            jw_kv_int(&w, "applied", applied);
            jw_kv_int(&w, "pending", pending);
        } else if (st < 0) {
            rc = st;
        }
        db_done(s);
    }
    jw_kv_bool(&w, "set_up", set_up);
    if (!rc && !c->json) {
        if (netsync_configured(&c->cfg)) printf("network enforcement: radius, %s\n", c->cfg.radius_db);
        else printf("network enforcement: not configured (radius.db)\n");
        if (!set_up) printf("not set up yet: the first sync (the daemon, or bandbill radius sync) applies every account\n");
        else
            printf("%lld account records applied; %lld change%s pending; last good pass %s%s%s\n", (long long)applied,
                   (long long)pending, pending == 1 ? "" : "s", last_ok[0] ? last_ok : "never",
                   last_error[0] ? "; last error: " : "", last_error);
    }
    /* the sessions a NAS did not take: the operator's to look at */
    if (!rc) {
        jw_key(&w, "session_failures");
        jw_arr_open(&w);
        s = db_prepare(d,
                       "SELECT username, state, sessions, session_error, applied_at FROM network_accounts "
                       "WHERE session_result = 'failed' ORDER BY applied_at DESC LIMIT 100",
                       e);
        if (!s) rc = e->code;
        int st = DB_DONE;
        while (!rc && (st = db_step(d, s, e)) == DB_ROW) {
            jw_obj_open(&w);
            jw_kv_str(&w, "username", db_col_text(s, 0));
            jw_kv_str(&w, "state", db_col_text(s, 1));
            jw_kv_int(&w, "sessions", db_col_int(s, 2));
            jw_kv_str(&w, "error", db_col_text(s, 3));
            jw_kv_str(&w, "at", db_col_text(s, 4));
            jw_obj_close(&w);
            if (!c->json)
                printf("session not told: %s (%s) at %s: %s\n", db_col_text(s, 0), db_col_text(s, 1), db_col_text(s, 4),
                       db_col_text(s, 3));
        }
        if (s) db_done(s);
        if (!rc && st < 0) rc = st;
        jw_arr_close(&w);
    }
    jw_obj_close(&w);
    if (!rc && c->json) rc = cli_print_json(&w, e);
    else jw_free(&w);
    fflush(stdout);
    db_close(d);
    return rc;
}
