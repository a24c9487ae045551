/* api_billing.c - billing runs and bill previews over HTTP.
 *
 * A run is started here and carried out on a worker thread (the bg pool)
 * with its own database connection, its own copy of the live rules and
 * its own key file handle; the client polls GET /bill-runs/{id} for its
 * progress and then its report. A dry run is computed the same way and
 * answered when it is done (it writes nothing, not even a run record). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "bg.h"
#include "billrun.h"
#include "customers.h"
#include "date.h"
#include "log.h"
#include "rules.h"
#include "server.h"
#include "vault.h"

static void reply_obj(http_req *q, int status, const jv *o)
{
    jw w;
    jw_init(&w, 0);
    jw_jv(&w, o);
    http_reply_json(q, status, &w);
}

typedef struct run_job {
    server *s;
    http_req *q;              /* the request waiting (dry run), or NULL */
    char as_of[11], period[8], by[96], holder[160];
    int has_period, dry_run;
    int64_t run_id;
    volatile int stop;
    /* results, for the loop thread */
    int rc;
    err e;
    jv_arena a;
    jv *report;
} run_job;

static void on_progress(void *ud, const billrun_progress *p)
{
    (void)p;
    run_job *j = ud;
    /* a daemon that drains stops the pass between bills: it is recorded
     * interrupted and the next pass finishes it */
    if (server_draining(j->s)) j->stop = 1;
}

static void run_work(void *arg)
{
    run_job *j = arg;
    const cfg *c = server_cfg(j->s);
    db *d = NULL;
    vault *v = NULL;
    ruleset *rs = NULL;
    err_clear(&j->e);
    j->rc = db_open(c->db, 0, &d, &j->e);
    if (!j->rc) j->rc = billrun_load_rules(d, c->rules, &rs, &j->e);
    if (!j->rc) j->rc = vault_open(c->keys_file, &v, &j->e);
    if (j->rc) {
        if (d && j->run_id) billrun_abandon(d, j->run_id, j->holder, "the run could not start");
        log_msg(LOG_ERROR, "bill_run_failed", "run %lld: %s", (long long)j->run_id, j->e.msg);
    } else {
        billrun_opts o = {.as_of = j->as_of, .period = j->has_period ? j->period : NULL, .dry_run = j->dry_run,
                          .rs = rs, .v = v, .trigger = "api", .by = j->by, .run_id = j->run_id,
                          .holder = j->run_id ? j->holder : NULL, .progress = on_progress, .ud = j, .stop = &j->stop};
        billrun_result r;
        j->rc = billrun_exec(d, &o, &r, &j->e);
        if (!j->rc && r.report) j->report = jv_copy(&j->a, r.report);
        billrun_result_free(&r);
    }
    vault_close(v);
    ruleset_unref(rs);
    if (d) {
        db_release(d);
        db_close(d);
    }
    log_release();
}

static void run_done(void *arg)
{
    run_job *j = arg;
    if (j->q) {
        if (j->rc) {
            http_reply_error(j->q, 0, &j->e);
        } else if (!j->report) {
            http_reply_errf(j->q, 500, "internal", "", "out of memory");
        } else {
            jv_arena *a = http_arena(j->q);
            jv *o = jv_obj(a);
            if (!o || jv_obj_set(a, o, "run_id", jv_null(a)) || jv_obj_set_str(a, o, "status", "done") ||
                jv_obj_set(a, o, "report", jv_copy(a, j->report)))
                http_reply_errf(j->q, 500, "internal", "", "out of memory");
            else reply_obj(j->q, 200, o);
        }
    }
    jv_arena_free(&j->a);
    free(j);
}

int api_bill_runs_create(http_req *q)
{
    static const http_field spec[] = {
        {"as_of", 's', 0}, {"period", 's', 0}, {"dry_run", 'b', 0}, {NULL, 0, 0},
    };
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, HTTP_BODY_OPTIONAL)) return HTTP_DONE;
    const char *as_of = http_str(body, "as_of"), *period = http_str(body, "period");
    const jv *dj = jv_get(body, "dry_run");
    int dry = dj && dj->kind == JV_BOOL && dj->u.b;
    if (as_of && period) {
        http_reply_errf(q, 400, "invalid_field", "period", "give as_of or period, not both");
        return HTTP_DONE;
    }
    run_job *j = calloc(1, sizeof *j);
    if (!j) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    jv_arena_init(&j->a, 0);
    err e;
    err_clear(&e);
    if (period) {
        if (billrun_period_as_of(period, j->as_of, &e)) {
            free(j);
            http_reply_error(q, 400, &e);
            return HTTP_DONE;
        }
        snprintf(j->period, sizeof j->period, "%s", period);
        j->has_period = 1;
    } else if (as_of) {
        int32_t dd;
        if (strlen(as_of) != 10 || date_parse(as_of, 10, &dd, &e)) {
            free(j);
            http_reply_errf(q, 400, "invalid_date", "as_of", "as_of must be a date YYYY-MM-DD");
            return HTTP_DONE;
        }
        snprintf(j->as_of, sizeof j->as_of, "%s", as_of);
    } else {
        http_today(j->as_of);
    }
    server *s = http_server(q);
    j->s = s;
    j->dry_run = dry;
    auth_label(http_who(q), j->by, sizeof j->by);
    db *d = server_db(s);
    ruleset *rs = rules_live();
    if (!rs) {
        free(j);
        http_reply_errf(q, 503, "unavailable", "", "no rule set is loaded");
        return HTTP_DONE;
    }
    if (dry) {
        /* answered when computed; nothing is written */
        ruleset_unref(rs);
        http_nothing_changed(q);
        j->q = q;
        if (bg_submit(server_bg(s), run_work, run_done, j)) {
            free(j);
            http_reply_errf(q, 503, "unavailable", "", "the server is busy; try again");
            return HTTP_DONE;
        }
        return HTTP_DEFERRED;
    }
    billrun_opts o = {.as_of = j->as_of, .period = j->has_period ? j->period : NULL, .rs = rs, .trigger = "api",
                      .by = j->by};
    billrun_holder(j->holder, sizeof j->holder);
    int rc = billrun_start(d, &o, j->holder, &j->run_id, &e);
    ruleset_unref(rs);
    if (rc) {
        free(j);
        http_reply_error(q, rc == ERR_BUSY ? 409 : 0, &e);
        return HTTP_DONE;
    }
    jv_arena *a = http_arena(q);
    jv *run = NULL;
    char rid[32];
    snprintf(rid, sizeof rid, "%lld", (long long)j->run_id);
    rc = billrun_get(d, j->run_id, a, &run, &e);
    if (!rc) rc = db_begin(d, &e);
    if (!rc) {
        audit_event ev = {.action = "billing.run", .object_type = "bill_run", .object_id = rid, .after = run};
        rc = http_audit(q, &ev, &e);
        if (!rc) rc = db_commit(d, &e);
        if (rc) db_rollback(d);
    }
    if (!rc && bg_submit(server_bg(s), run_work, run_done, j)) rc = err_set(&e, ERR_BUSY, "the server is busy; try again");
    if (rc) {
        billrun_abandon(d, j->run_id, j->holder, rc == ERR_BUSY ? "the server was busy" : e.msg);
        free(j);
        http_reply_error(q, rc == ERR_BUSY ? 503 : 0, &e);
        return HTTP_DONE;
    }
    char loc[64];
    snprintf(loc, sizeof loc, "/api/v1/bill-runs/%s", rid);
    http_add_header(q, "Location", loc);
    reply_obj(q, 202, run);
    return HTTP_DONE;
}

int api_bill_runs_list(http_req *q)
{
    int64_t limit;
    const char *cursor;
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    jv_arena *a = http_arena(q);
    jv *list;
    char next[32];
    err e;
    if (billrun_list(server_db(http_server(q)), cursor, limit, a, &list, next, sizeof next, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_key(&w, "data");
    jw_jv(&w, list);
    jw_kv_str(&w, "next_cursor", next[0] ? next : NULL);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

int api_bill_runs_get(http_req *q)
{
    const char *p = http_param(q, "id");
    char *end;
    long long id = p ? strtoll(p, &end, 10) : 0;
    if (!p || !*p || *end || id <= 0) {
        http_reply_errf(q, 404, "not_found", "id", "no billing run '%s'", p ? p : "");
        return HTTP_DONE;
    }
    jv *o;
    err e;
    if (billrun_get(server_db(http_server(q)), id, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    reply_obj(q, 200, o);
    return HTTP_DONE;
}

int api_bill_preview(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t cid;
    err e;
    if (customers_id_by_code(d, http_param(q, "code"), &cid, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    ruleset *rs = rules_live();
    if (!rs) {
        http_reply_errf(q, 503, "unavailable", "", "no rule set is loaded");
        return HTTP_DONE;
    }
    char today[11];
    http_today(today);
    const char *as_of = http_query(q, "as_of");
    if (as_of) {
        int32_t dd;
        if (strlen(as_of) != 10 || date_parse(as_of, 10, &dd, &e)) {
            ruleset_unref(rs);
            http_reply_errf(q, 400, "invalid_parameter", "as_of", "as_of must be a date YYYY-MM-DD");
            return HTTP_DONE;
        }
        snprintf(today, sizeof today, "%s", as_of);
    }
    jv *o;
    int rc = billrun_preview(d, rs, cid, today, http_arena(q), &o, &e);
    ruleset_unref(rs);
    if (rc) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    reply_obj(q, 200, o);
    return HTTP_DONE;
}
