/* api_dunning.c - collection tasks and the ladder's record, over HTTP. */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "collect.h"
#include "customers.h"
#include "server.h"

#define CURSOR_MAX 32

static int task_id_of(http_req *q, int64_t *id)
{
    const char *p = http_param(q, "id");
    char *end;
    long long v = p ? strtoll(p, &end, 10) : 0;
    if (!p || *end || v <= 0) {
        http_reply_errf(q, 404, "task_not_found", "id", "no collection task %s", p ? p : "");
        return -1;
    }
    *id = v;
    return 0;
}

int api_collection_tasks_list(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t limit;
    const char *cursor, *code = http_query(q, "customer");
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    collect_filter f = {.status = http_query(q, "status"), .priority = http_query(q, "priority"),
                        .assigned_to = http_query(q, "assigned_to")};
    err e = {0};
    if (code && customers_id_by_code(d, code, &f.customer_id, &e)) {
        snprintf(e.field, sizeof e.field, "customer");
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    jv *list;
    char next[CURSOR_MAX];
    if (collect_list(d, &f, cursor, limit, http_arena(q), &list, next, sizeof next, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resources(q, "collection_task", list, next[0] ? next : NULL);
    return HTTP_DONE;
}

int api_collection_tasks_get(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t id = 0;
    if (task_id_of(q, &id)) return HTTP_DONE;
    jv *o;
    err e = {0};
    if (collect_get(d, id, http_arena(q), &o, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "collection_task", o);
    return HTTP_DONE;
}

/* A field that may be null in the body (null clears it): "" stands for
 * null in collect_change. */
static const char *clearable(const jv *body, const char *key)
{
    const jv *v = jv_get(body, key);
    if (!v) return NULL;
    return v->kind == JV_NULL ? "" : http_str(body, key);
}

int api_collection_tasks_update(http_req *q)
{
    static const http_field spec[] = {{"assigned_to", 's', 0}, {"status", 's', 0}, {"outcome", 's', 0},
                                      {"note", 's', 0},        {"promised_until", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    jv_arena *a = http_arena(q);
    int64_t id = 0;
    if (task_id_of(q, &id)) return HTTP_DONE;
    collect_change ch = {.assigned_to = clearable(body, "assigned_to"), .status = http_str(body, "status"),
                         .outcome = http_str(body, "outcome"), .note = http_str(body, "note"),
                         .promised_until = clearable(body, "promised_until")};
    char by[96], today[11];
    auth_label(http_who(q), by, sizeof by);
    http_today(today);
    err e = {0};
    jv *before = NULL, *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc) rc = collect_get(d, id, a, &before, &e);
    if (!rc) rc = collect_update(d, id, &ch, by, today, &e);
    if (!rc) rc = collect_get(d, id, a, &after, &e);
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", (long long)id);
    audit_event ev = {.action = "collection_task.update", .object_type = "collection_task", .object_id = oid,
                      .before = before, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "collection_task", after);
    return HTTP_DONE;
}

int api_customers_dunning(http_req *q)
{
    db *d = server_db(http_server(q));
    int64_t limit, customer;
    const char *cursor;
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    err e = {0};
    if (customers_id_by_code(d, http_param(q, "code"), &customer, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    jv *list;
    char next[CURSOR_MAX];
    if (collect_actions(d, customer, cursor, limit, http_arena(q), &list, next, sizeof next, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resources(q, "dunning_action", list, next[0] ? next : NULL);
    return HTTP_DONE;
}
