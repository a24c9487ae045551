/* http.c - one request from arrival to access log. */
#define _GNU_SOURCE /* struct ucred */
#include "http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "date.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "privacy.h"
#include "server.h"
#include "session.h"
#include "vault.h"

struct http_req {
    server *srv;
    struct evhttp_request *r;
    const route *route;
    route_match m;
    const char *method;
    const char *path;
    char *pvals[ROUTER_MAX_PARAMS];   /* decoded parameters, in the arena */
    struct evkeyvalq query;
    int query_parsed;
    jv *body;
    const char *raw;        /* ROUTE_RAW_BODY: the body as received, in the arena */
    size_t raw_len;
    jv_arena arena;
    principal who;
    char rid[72];
    int64_t t0_us;
    int status;
    size_t bytes;
    int replied;
    int audited;            /* the handler wrote its own audit record */
    char source[64];
    http_req *next_free;
};

static _Thread_local http_req *t_free;
static uint32_t g_rid_prefix;
static uint64_t g_rid_counter;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static http_req *req_new(server *s, struct evhttp_request *r)
{
    http_req *q = t_free;
    if (q) {
        t_free = q->next_free;
        jv_arena a = q->arena;
        memset(q, 0, sizeof *q);
        q->arena = a;
    } else {
        q = calloc(1, sizeof *q);
        if (!q) return NULL;
        jv_arena_init(&q->arena, 64u << 20);
    }
    q->srv = s;
    q->r = r;
    q->query.tqh_first = NULL;
    q->query.tqh_last = &q->query.tqh_first;
    return q;
}

static void req_free(http_req *q)
{
    if (q->query_parsed) evhttp_clear_headers(&q->query);
    jv_arena_reset(&q->arena);
    q->next_free = t_free;
    t_free = q;
}

void http_release(void)
{
    while (t_free) {
        http_req *n = t_free->next_free;
        jv_arena_free(&t_free->arena);
        free(t_free);
        t_free = n;
    }
}

/* ------------------------------------------------------------- accessors */

const char *http_param(const http_req *q, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < q->m.nparams; i++)
        if (q->m.params[i].name_len == n && memcmp(q->m.params[i].name, name, n) == 0) return q->pvals[i];
    return NULL;
}

const char *http_query(http_req *q, const char *name)
{
    if (!q->query_parsed) {
        q->query_parsed = 1;
        const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(q->r));
        if (qs) evhttp_parse_query_str(qs, &q->query);
    }
    return evhttp_find_header(&q->query, name);
}

const char *http_header(http_req *q, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(q->r), name);
}

const jv *http_body(const http_req *q) { return q->body; }

const char *http_raw_body(const http_req *q, size_t *len)
{
    *len = q->raw_len;
    return q->raw ? q->raw : "";
}

size_t http_headers(http_req *q, const char **names, const char **values, size_t max)
{
    size_t n = 0;
    struct evkeyvalq *h = evhttp_request_get_input_headers(q->r);
    for (struct evkeyval *kv = h->tqh_first; kv && n < max; kv = kv->next.tqe_next, n++) {
        names[n] = kv->key;
        values[n] = kv->value;
    }
    return n;
}
jv_arena *http_arena(http_req *q) { return &q->arena; }
const principal *http_who(const http_req *q) { return &q->who; }
void http_set_who(http_req *q, const principal *p) { q->who = *p; }
const char *http_rid(const http_req *q) { return q->rid; }
const char *http_method(const http_req *q) { return q->method; }
server *http_server(const http_req *q) { return q->srv; }

const char *http_source(http_req *q)
{
    if (!q->source[0]) {
        if (q->who.kind == PRINCIPAL_LOCAL) {
            snprintf(q->source, sizeof q->source, "local");
        } else {
            char *addr = NULL;
            ev_uint16_t port = 0;
            struct evhttp_connection *c = evhttp_request_get_connection(q->r);
            if (c) evhttp_connection_get_peer(c, &addr, &port);
            snprintf(q->source, sizeof q->source, "%s", addr ? addr : "?");
        }
    }
    return q->source;
}

void http_add_header(http_req *q, const char *key, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(q->r), key, value);
}

/* --------------------------------------------------------------- metrics */

#define STATUS_SLOTS 8
typedef struct route_metrics {
    metric *latency;
    struct { int status; metric *m; } by_status[STATUS_SLOTS];
} route_metrics;

static route_metrics *g_rm;   /* routes_count + 1 (unmatched), loop thread only */

static void count_request(const route *rt, const char *method, int status, int64_t us)
{
    if (!g_rm) {
        g_rm = calloc(routes_count + 1, sizeof *g_rm);
        if (!g_rm) return;
    }
    size_t idx = rt ? (size_t)(rt - routes) : routes_count;
    route_metrics *rm = &g_rm[idx];
    const char *pattern = rt ? rt->pattern : "unmatched";
    if (!rm->latency) {
        char label[256];
        snprintf(label, sizeof label, "route=\"%s\"", pattern);
        rm->latency = metrics_histogram("bandbill_http_request_duration_seconds", "HTTP request latency by route", label,
                                        metrics_latency_bounds_us, metrics_latency_nbounds);
    }
    metric_observe_us(rm->latency, us);
    metric *m = NULL;
    int i;
    for (i = 0; i < STATUS_SLOTS && rm->by_status[i].m; i++)
        if (rm->by_status[i].status == status) {
            m = rm->by_status[i].m;
            break;
        }
    if (!m) {
        char label[300];
        snprintf(label, sizeof label, "route=\"%s\",method=\"%s\",status=\"%d\"", pattern, rt ? rt->method : method, status);
        m = metrics_counter("bandbill_http_requests_total", "HTTP requests by route, method and status", label);
        if (i < STATUS_SLOTS) {
            rm->by_status[i].status = status;
            rm->by_status[i].m = m;
        }
    }
    metric_inc(m);
}

/* ------------------------------------------------------------------ audit */

void http_audit_who(http_req *q, audit_who *who, char *actor, size_t n)
{
    auth_label(&q->who, actor, n);
    who->actor = actor;
    who->role = q->who.role[0] ? q->who.role : "anonymous";
    who->source = http_source(q);
    who->request_id = q->rid;
    who->at = NULL;
}

int http_audit(http_req *q, const audit_event *ev, err *e)
{
    vault *v = server_vault(q->srv);
    if (!v) return err_set(e, ERR_INTERNAL, "no key file: the audit trail cannot be written");
    char actor[96];
    audit_who who;
    http_audit_who(q, &who, actor, sizeof actor);
    int rc = audit_append(server_db(q->srv), vault_audit_key(v), &who, ev, e);
    if (!rc) q->audited = 1;
    return rc;
}

int http_audit_as(http_req *q, const char *actor, const char *role, const audit_event *ev, err *e)
{
    vault *v = server_vault(q->srv);
    if (!v) return err_set(e, ERR_INTERNAL, "no key file: the audit trail cannot be written");
    audit_who who = {.actor = actor, .role = role, .source = http_source(q), .request_id = q->rid};
    int rc = audit_append(server_db(q->srv), vault_audit_key(v), &who, ev, e);
    if (!rc) q->audited = 1;
    return rc;
}

/* An audit record in a transaction of its own, for events the HTTP layer
 * itself sees (denials, clear views, changes a handler did not record). */
/* ----------------------------------------------------- batched records
 *
 * Records of things that change nothing - a field seen in clear, a request
 * denied - are queued and written together every AUDIT_FLUSH_MS (or when
 * many are waiting), so that a read does not cost a disk flush of its own.
 * A crash can lose the last moment of them; changes are never queued. */

#define AUDIT_QUEUE_MAX 256

typedef struct queued {
    const char *actor, *role, *source, *request_id, *at;
    const char *action, *object_type, *object_id;
    jv *detail;
} queued;

static queued g_queue[AUDIT_QUEUE_MAX];
static int g_nqueued;
static jv_arena g_qarena;
static int g_qarena_ready;

static const char *qdup(const char *s)
{
    return s ? jv_strdup(&g_qarena, s, strlen(s)) : NULL;
}

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static const char *detail_str(const queued *q, const char *key)
{
    const jv *f = q->detail ? jv_get(q->detail, key) : NULL;
    return f && f->kind == JV_STR ? f->u.str.s : NULL;
}

static int same_view(const queued *a, const queued *b)
{
    return !strcmp(b->action, "field.view") && same_str(a->actor, b->actor) && same_str(a->role, b->role) &&
           same_str(a->source, b->source) && same_str(a->object_type, b->object_type) &&
           same_str(detail_str(a, "fields"), detail_str(b, "fields"));
}

/* 1 if item is one of the comma-separated entries of list. */
static int in_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !memcmp(p, item, n)) return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* The detail of views [i, j) as one: the fields, every id and every
 * request id with its time; *object_id gets the ids when they are short
 * enough to search by, else NULL. */
static jv *merged_views(int i, int j, const char **object_id)
{
    jv_arena *a = &g_qarena;
    buf ids = {0};
    jv *d = jv_obj(a), *reqs = jv_arr(a);
    if (!d || !reqs) return NULL;
    for (int k = i; k < j; k++) {
        const char *one = detail_str(&g_queue[k], "ids");
        if (one && *one && !in_list(buf_cstr(&ids), one)) {
            if (ids.len) buf_putc(&ids, ',');
            buf_puts(&ids, one);
        }
        jv *r = jv_obj(a);
        if (!r || jv_obj_set_str(a, r, "request_id", g_queue[k].request_id ? g_queue[k].request_id : "") ||
            jv_obj_set_str(a, r, "at", g_queue[k].at) || jv_arr_push(a, reqs, r)) {
            buf_free(&ids);
            return NULL;
        }
    }
    int bad = jv_obj_set_str(a, d, "fields", detail_str(&g_queue[i], "fields")) ||
              jv_obj_set_str(a, d, "ids", buf_cstr(&ids)) || jv_obj_set(a, d, "requests", reqs);
    *object_id = ids.len < 200 ? qdup(buf_cstr(&ids)) : NULL;
    buf_free(&ids);
    return bad ? NULL : d;
}

void http_audit_flush(server *s)
{
    if (g_nqueued == 0) return;
    vault *v = server_vault(s);
    db *d = server_db(s);
    err e;
    /* These records waited in memory up to a tick already, so a commit
     * that does not wait for the disk loses nothing a crash would not:
     * the requests behind it on the loop do not wait for a flush either.
     * The next durable commit (any change) carries them to the disk. */
    int rc = v ? db_exec_script(d, "PRAGMA synchronous = NORMAL", &e) : err_set(&e, ERR_INTERNAL, "no key file");
    if (!rc) rc = db_begin(d, &e);
    for (int i = 0, next; !rc && i < g_nqueued; i = next) {
        queued *qe = &g_queue[i];
        next = i + 1;
        jv *detail = qe->detail;
        const char *object_id = qe->object_id;
        if (!strcmp(qe->action, "field.view")) {
            /* one desk paging through customers makes a clear view per
             * request: the views that follow one another with the same
             * who and the same fields become one record listing every
             * object and request, so reading costs no write per request */
            while (next < g_nqueued && same_view(qe, &g_queue[next])) next++;
            if (next - i > 1) detail = merged_views(i, next, &object_id);
        }
        audit_who who = {qe->actor, qe->role, qe->source, qe->request_id, qe->at};
        audit_event ev = {.action = qe->action, .object_type = qe->object_type, .object_id = object_id, .detail = detail};
        rc = detail || !qe->detail ? audit_append(d, vault_audit_key(v), &who, &ev, &e) : ERR_NOMEM_RET(&e);
    }
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        if (db_in_tx(d)) db_rollback(d);
        log_msg(LOG_ERROR, "audit_failed", "%d queued records: %s", g_nqueued, e.msg);
    }
    err se;
    if (v && db_exec_script(d, "PRAGMA synchronous = FULL", &se))
        log_msg(LOG_ERROR, "audit_failed", "cannot restore synchronous=FULL: %s", se.msg);
    g_nqueued = 0;
    jv_arena_reset(&g_qarena);
}

void http_audit_release(void)
{
    if (g_qarena_ready) jv_arena_free(&g_qarena);
    g_qarena_ready = 0;
}

void http_audit_later(http_req *q, const audit_event *ev)
{
    if (!g_qarena_ready) {
        jv_arena_init(&g_qarena, 0);
        g_qarena_ready = 1;
    }
    if (g_nqueued == AUDIT_QUEUE_MAX) http_audit_flush(q->srv);
    char actor[96];
    audit_who who;
    http_audit_who(q, &who, actor, sizeof actor);
    queued *qe = &g_queue[g_nqueued++];
    qe->actor = qdup(who.actor);
    qe->role = qdup(who.role);
    qe->source = qdup(who.source);
    qe->request_id = qdup(who.request_id);
    char now[25];
    db_now(now);
    qe->at = qdup(now); /* the time it happened, not the time it is written */
    qe->action = qdup(ev->action);
    qe->object_type = qdup(ev->object_type);
    qe->object_id = qdup(ev->object_id);
    qe->detail = ev->detail ? jv_copy(&g_qarena, ev->detail) : NULL;
    q->audited = 1;
}

void http_nothing_changed(http_req *q) { q->audited = 1; }

void http_audit_now(http_req *q, const audit_event *ev)
{
    db *d = server_db(q->srv);
    err e;
    int rc = db_begin(d, &e);
    if (!rc) rc = http_audit(q, ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        if (db_in_tx(d)) db_rollback(d);
        log_msg(LOG_ERROR, "audit_failed", "%s %s: %s", q->method, q->path, e.msg);
    }
}

static int state_changing(const http_req *q)
{
    return q->route && !(q->route->flags & ROUTE_READS) &&
           (!strcmp(q->method, "POST") || !strcmp(q->method, "PUT") || !strcmp(q->method, "PATCH") ||
            !strcmp(q->method, "DELETE"));
}

/* ---------------------------------------------------------------- replies */

static void finish(http_req *q)
{
    /* no statement may keep a read snapshot open past its request */
    db_release(server_db(q->srv));
    int64_t us = now_us() - q->t0_us;
    count_request(q->route, q->method, q->status, us);
    log_line *l = log_begin(LOG_INFO, "http");
    if (l) {
        char who[96];
        auth_label(&q->who, who, sizeof who);
        log_str(l, "rid", q->rid);
        log_str(l, "method", q->method);
        log_str(l, "path", q->path);
        if (q->route) log_str(l, "route", q->route->pattern);
        log_int(l, "status", q->status);
        log_us(l, "ms", us);
        log_int(l, "bytes", (int64_t)q->bytes);
        log_str(l, "who", who);
        log_end(l);
    }
    req_free(q);
}

static void reply_send(http_req *q, int status, const char *ctype, const char *body, size_t n)
{
    if (q->replied) return;
    q->replied = 1;
    /* every change that succeeded leaves a trace, even if its handler forgot */
    if (status < 400 && state_changing(q) && !q->audited) {
        log_msg(LOG_WARN, "audit_generic", "%s %s changed state without an audit record of its own", q->method, q->route->pattern);
        jv_arena *a = &q->arena;
        jv *params = jv_obj(a);
        for (int i = 0; params && i < q->m.nparams; i++)
            jv_obj_setn(a, params, q->m.params[i].name, q->m.params[i].name_len, jv_str(a, q->pvals[i] ? q->pvals[i] : ""));
        audit_event ev = {.action = q->route->perm, .object_type = "route", .object_id = q->route->pattern, .detail = params};
        http_audit_now(q, &ev);
    }
    q->status = status;
    q->bytes = n;
    struct evkeyvalq *h = evhttp_request_get_output_headers(q->r);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "X-Request-Id", q->rid);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (server_draining(q->srv)) evhttp_add_header(h, "Connection", "close");
    struct evbuffer *out = evbuffer_new();
    if (strcmp(q->method, "HEAD") == 0) {
        /* the headers of the GET, without its body */
        char len[32];
        snprintf(len, sizeof len, "%zu", n);
        evhttp_add_header(h, "Content-Length", len);
    } else if (out) {
        evbuffer_add(out, body, n);
    }
    evhttp_send_reply(q->r, status, NULL, out);
    if (out) evbuffer_free(out);
    finish(q);
}

void http_reply_raw(http_req *q, int status, const char *ctype, const char *body, size_t n)
{
    reply_send(q, status, ctype, body, n);
}

void http_reply_json(http_req *q, int status, jw *w)
{
    size_t n;
    const char *s = jw_finish(w, &n);
    if (!s) {
        static const char fail[] = "{\"error\":{\"code\":\"internal\",\"message\":\"could not encode the response\",\"field\":\"\"}}";
        reply_send(q, 500, "application/json; charset=utf-8", fail, sizeof fail - 1);
    } else {
        reply_send(q, status, "application/json; charset=utf-8", s, n);
    }
    jw_free(w);
}

static void error_body(jw *w, const char *code, const char *message, const char *field)
{
    jw_key(w, "error");
    jw_obj_open(w);
    jw_kv_str(w, "code", code);
    jw_kv_str(w, "message", message);
    jw_kv_str(w, "field", field ? field : "");
}

void http_reply_error(http_req *q, int status, const err *e)
{
    http_reply_rule_error(q, status, e, NULL);
}

void http_reply_rule_error(http_req *q, int status, const err *e, const rule_error *re)
{
    if (!status) status = err_http_status(e->code);
    if (status >= 500) log_msg(LOG_ERROR, "http_error", "%s %s: %s", q->method, q->path, e->msg);
    jw w;
    if (jw_init(&w, 0)) {
        reply_send(q, 500, "application/json; charset=utf-8", "{}", 2);
        return;
    }
    jw_obj_open(&w);
    error_body(&w, err_tag(e), e->msg, e->field);
    if (re && re->kind[0]) {
        jw_key(&w, "rule");
        jw_obj_open(&w);
        jw_kv_str(&w, "rule", re->rule);
        jw_kv_str(&w, "kind", re->kind);
        jw_kv_str(&w, "file", re->file);
        jw_kv_int(&w, "line", re->line);
        jw_kv_str(&w, "function", re->function);
        jw_kv_str(&w, "message", re->message);
        jw_kv_str(&w, "traceback", re->traceback);
        jw_obj_close(&w);
    }
    jw_obj_close(&w);
    jw_obj_close(&w);
    http_reply_json(q, status, &w);
}

void http_reply_errf(http_req *q, int status, const char *code, const char *field, const char *fmt, ...)
{
    err e;
    err_clear(&e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    snprintf(e.tag, sizeof e.tag, "%s", code);
    snprintf(e.field, sizeof e.field, "%s", field ? field : "");
    e.code = ERR_INVALID;
    http_reply_error(q, status, &e);
}

/* Filters a resource for the caller's role; records clear views. */
static int filter_resource(http_req *q, const char *resource, jv *obj, buf *clear_ids, buf *clear_fields)
{
    err e;
    buf clear = {0};
    int rc = privacy_filter(server_db(q->srv), &q->arena, q->who.role[0] ? q->who.role : "anonymous", resource, obj,
                            &clear, &e);
    if (!rc && clear.len) {
        const jv *id = jv_get(obj, "id");
        if (clear_ids->len) buf_putc(clear_ids, ',');
        if (id && id->kind == JV_STR) buf_append(clear_ids, id->u.str.s, id->u.str.len);
        else if (id && id->kind == JV_INT) buf_printf(clear_ids, "%lld", (long long)id->u.i);
        /* the union of fields seen */
        for (char *f = clear.data, *next; f && *f; f = next) {
            next = strchr(f, ',');
            size_t fl = next ? (size_t)(next - f) : strlen(f);
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)fl, f);
            if (!strstr(buf_cstr(clear_fields), name)) {
                if (clear_fields->len) buf_putc(clear_fields, ',');
                buf_puts(clear_fields, name);
            }
            next = next ? next + 1 : NULL;
        }
    }
    buf_free(&clear);
    return rc;
}

static void record_views(http_req *q, const char *resource, buf *ids, buf *fields)
{
    if (!fields->len) return;
    jv_arena *a = &q->arena;
    jv *detail = jv_obj(a);
    jv_obj_set_str(a, detail, "fields", buf_cstr(fields));
    jv_obj_set_str(a, detail, "ids", buf_cstr(ids));
    audit_event ev = {.action = "field.view", .object_type = resource, .object_id = ids->len < 200 ? buf_cstr(ids) : NULL,
                      .detail = detail};
    int was = q->audited;
    http_audit_later(q, &ev);
    /* a view is not the change a write handler must record itself */
    q->audited = was;
}

void http_reply_resource(http_req *q, int status, const char *resource, jv *obj)
{
    buf ids = {0}, fields = {0};
    if (filter_resource(q, resource, obj, &ids, &fields)) {
        buf_free(&ids);
        buf_free(&fields);
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return;
    }
    record_views(q, resource, &ids, &fields);
    buf_free(&ids);
    buf_free(&fields);
    jw w;
    jw_init(&w, 0);
    jw_jv(&w, obj);
    http_reply_json(q, status, &w);
}

void http_reply_resources(http_req *q, const char *resource, jv *list, const char *next_cursor)
{
    buf ids = {0}, fields = {0};
    for (size_t i = 0; list && i < list->u.arr.n; i++)
        if (filter_resource(q, resource, list->u.arr.items[i], &ids, &fields)) {
            buf_free(&ids);
            buf_free(&fields);
            http_reply_errf(q, 500, "internal", "", "out of memory");
            return;
        }
    record_views(q, resource, &ids, &fields);
    buf_free(&ids);
    buf_free(&fields);
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_key(&w, "data");
    if (list) jw_jv(&w, list);
    else {
        jw_arr_open(&w);
        jw_arr_close(&w);
    }
    jw_kv_str(&w, "next_cursor", next_cursor);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
}

int http_page(http_req *q, int64_t *limit, const char **cursor)
{
    *limit = 50;
    *cursor = http_query(q, "cursor");
    const char *l = http_query(q, "limit");
    if (l) {
        char *end;
        long v = strtol(l, &end, 10);
        if (*end || end == l || v < 1 || v > 500) {
            http_reply_errf(q, 400, "invalid_parameter", "limit", "limit must be a whole number from 1 to 500");
            return -1;
        }
        *limit = v;
    }
    return 0;
}

/* ------------------------------------------------------------- dispatch */

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

static void make_rid(http_req *q)
{
    const char *in = evhttp_find_header(evhttp_request_get_input_headers(q->r), "X-Request-Id");
    if (in) {
        size_t n = strlen(in);
        if (n >= 1 && n <= 64 &&
            strspn(in, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n) {
            memcpy(q->rid, in, n + 1);
            return;
        }
    }
    if (!g_rid_prefix) {
        uint32_t seed = (uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL);
        g_rid_prefix = seed ? seed : 1;
    }
    snprintf(q->rid, sizeof q->rid, "%08x%08llx", g_rid_prefix, (unsigned long long)++g_rid_counter);
}

/* The control socket's peer is a local user: the socket file's mode (0600)
 * already limits it to the daemon's own user and root. */
static int local_peer(http_req *q)
{
    struct evhttp_connection *c = evhttp_request_get_connection(q->r);
    struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
    int fd = bev ? (int)bufferevent_getfd(bev) : -1;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) || sa.ss_family != AF_UNIX) return 0;
    struct ucred cr;
    socklen_t cl = sizeof cr;
    uid_t uid = getuid();
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0) uid = cr.uid;
    q->who.kind = PRINCIPAL_LOCAL;
    q->who.id = (int64_t)uid;
    struct passwd pw, *res = NULL;
    char pbuf[1024];
    if (getpwuid_r(uid, &pw, pbuf, sizeof pbuf, &res) == 0 && res)
        snprintf(q->who.name, sizeof q->who.name, "%s", res->pw_name);
    else
        snprintf(q->who.name, sizeof q->who.name, "uid%u", (unsigned)uid);
    snprintf(q->who.role, sizeof q->who.role, "admin");
    return 1;
}

/* The value of cookie `name` in the request, copied into out. */
static int cookie(http_req *q, const char *name, char *out, size_t n)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(q->r), "Cookie");
    size_t nl = strlen(name);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == ';') p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            snprintf(out, n, "%.*s", (int)(len - nl - 1), p + nl + 1);
            return 1;
        }
        p = end;
    }
    return 0;
}

static int authenticate(http_req *q)
{
    if (local_peer(q)) return 0;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(q->r), "Authorization");
    err e;
    char sess[80];
    if (!h && cookie(q, "bb_session", sess, sizeof sess)) {
        if (session_lookup(server_db(q->srv), server_cfg(q->srv), sess, &q->who, &e)) {
            if (e.code != ERR_UNAUTH) {
                http_reply_error(q, 500, &e);
                return -1;
            }
            http_reply_errf(q, 401, "unauthorized", "Cookie", "%s", e.msg);
            return -1;
        }
        /* a cookie rides along with any request a browser makes: changes
         * need the token only the console's own page has */
        if (state_changing(q) && !(q->route->flags & ROUTE_NO_CSRF)) {
            const char *csrf = evhttp_find_header(evhttp_request_get_input_headers(q->r), "X-CSRF-Token");
            if (!session_csrf_ok(server_db(q->srv), q->who.session_id, csrf)) {
                http_reply_errf(q, 403, "csrf_failed", "X-CSRF-Token",
                                "a change made with a session cookie needs its X-CSRF-Token header");
                return -1;
            }
        }
        return 0;
    }
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        http_add_header(q, "WWW-Authenticate", "Bearer");
        http_reply_errf(q, 401, "unauthorized", "Authorization",
                        "this route needs an Authorization: Bearer <token> header");
        return -1;
    }
    if (auth_token_lookup(server_db(q->srv), h + 7, &q->who, &e)) {
        if (e.code == ERR_UNAUTH) {
            http_add_header(q, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
            http_reply_errf(q, 401, "unauthorized", "Authorization", "%s", e.msg);
        } else {
            http_reply_error(q, 500, &e);
        }
        return -1;
    }
    return 0;
}

static int read_body(http_req *q)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
    size_t n = evbuffer_get_length(in);
    if (n == 0) return 0;
    size_t max = (size_t)server_cfg(q->srv)->http_max_body_kb * 1024;
    if (n > max) {
        http_reply_errf(q, 413, "body_too_large", "", "request body of %zu bytes exceeds the limit of %zu bytes", n, max);
        return -1;
    }
    if (q->route->flags & ROUTE_RAW_BODY) {
        const char *p = (const char *)evbuffer_pullup(in, -1);
        char *copy = p ? jv_alloc(&q->arena, n + 1) : NULL;
        if (!copy) {
            http_reply_errf(q, 500, "internal", "", "out of memory");
            return -1;
        }
        memcpy(copy, p, n);
        copy[n] = 0;
        q->raw = copy;
        q->raw_len = n;
        return 0;
    }
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(q->r), "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
        http_reply_errf(q, 415, "unsupported_media_type", "Content-Type", "request bodies must be application/json");
        return -1;
    }
    const char *p = (const char *)evbuffer_pullup(in, -1);
    json_limits lim = json_default_limits;
    lim.max_bytes = max;
    err e;
    if (!p || json_parse(p, n, &lim, &q->arena, &q->body, &e)) {
        if (!p) err_set(&e, ERR_NOMEM, "out of memory");
        http_reply_error(q, e.code == ERR_LIMIT ? 413 : e.code == ERR_NOMEM ? 500 : 400, &e);
        return -1;
    }
    return 0;
}

void http_handle(server *s, struct evhttp_request *r)
{
    http_req *q = req_new(s, r);
    if (!q) {
        evhttp_send_error(r, 503, "out of memory");
        return;
    }
    q->t0_us = now_us();
    make_rid(q);
    q->method = method_name(evhttp_request_get_command(r));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    q->path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!q->path || !q->path[0]) q->path = "/";
    /* HEAD is answered by the GET route (reply_send drops the body) */
    const char *route_method = strcmp(q->method, "HEAD") == 0 ? "GET" : q->method;
    int st = router_match(routes, routes_count, route_method, q->path, &q->m);
    if (st == 404) {
        http_reply_errf(q, 404, "not_found", "", "no route for %s", q->path);
        return;
    }
    if (st == 405) {
        http_add_header(q, "Allow", q->m.allow);
        http_reply_errf(q, 405, "method_not_allowed", "", "%s is not allowed on %s (allowed: %s)", q->method, q->path, q->m.allow);
        return;
    }
    q->route = q->m.route;
    for (int i = 0; i < q->m.nparams; i++) {
        char *raw = jv_strdup(&q->arena, q->m.params[i].value, q->m.params[i].value_len);
        char *dec = raw ? evhttp_uridecode(raw, 0, NULL) : NULL;
        q->pvals[i] = dec ? jv_strdup(&q->arena, dec, strlen(dec)) : NULL;
        free(dec);
        if (!q->pvals[i]) {
            http_reply_errf(q, 500, "internal", "", "out of memory");
            return;
        }
    }
    if (strcmp(q->route->perm, PERM_PUBLIC) != 0) {
        if (authenticate(q)) return;
        err e;
        if (auth_authorize(server_db(q->srv), &q->who, q->route->perm, &e)) {
            if (e.code == ERR_FORBIDDEN) {
                audit_event ev = {.action = "access.denied", .object_type = "route", .object_id = q->route->pattern};
                jv *detail = jv_obj(&q->arena);
                jv_obj_set_str(&q->arena, detail, "permission", q->route->perm);
                jv_obj_set_str(&q->arena, detail, "method", q->method);
                ev.detail = detail;
                http_audit_later(q, &ev);
            }
            http_reply_error(q, e.code == ERR_UNAUTH ? 401 : 403, &e);
            return;
        }
    }
    if (read_body(q)) return;
    int rc = q->route->fn(q);
    if (rc == HTTP_DONE && !q->replied) http_reply_errf(q, 500, "internal", "", "the handler did not reply");
}

/* ------------------------------------------------------------ bodies */

void http_fail(http_req *q, db *d, const err *e)
{
    if (db_in_tx(d)) db_rollback(d);
    http_reply_error(q, 0, e);
}

const char *http_str(const jv *obj, const char *key) { return jv_get_str(obj, key); }

void http_today(char out[11]) { date_format(date_of_time(time(NULL)), out); }

static const char *type_name(char t)
{
    switch (t) {
    case 's': return "a string";
    case 'i': return "a whole number";
    case 'b': return "true or false";
    case 'a': return "a list";
    case 'o': return "an object";
    default: return "a value";
    }
}

static int field_ok(http_req *q, const http_field *f, const jv *v)
{
    const char *k = f->name;
    switch (f->type) {
    case 's':
        /* an embedded NUL would cut the value short in C */
        if (v->kind == JV_STR && v->u.str.len == strlen(v->u.str.s)) return 0;
        break;
    case 'i':
        if (v->kind == JV_INT) return 0;
        break;
    case 'm':
    case 'M':
        if (v->kind == JV_INT && (f->type == 'M' || v->u.i >= 0)) return 0;
        if (v->kind == JV_NUM)
            http_reply_errf(q, 400, "invalid_money", k, "'%s' is money: a whole number of fen (129.00 yuan is 12900), never a fraction", k);
        else
            http_reply_errf(q, 400, "invalid_money", k, "'%s' must be a whole number of fen%s", k, f->type == 'm' ? ", 0 or more" : "");
        return -1;
    case 'b':
        if (v->kind == JV_BOOL) return 0;
        break;
    case 'a':
        if (v->kind == JV_ARR) return 0;
        break;
    case 'o':
        if (v->kind == JV_OBJ) return 0;
        break;
    default:
        return 0;
    }
    http_reply_errf(q, 400, "invalid_field", k, "'%s' must be %s", k, type_name(f->type));
    return -1;
}

int http_check_body(http_req *q, const jv *body, const http_field *spec, int flags)
{
    if (body ? body->kind != JV_OBJ : !(flags & HTTP_BODY_OPTIONAL)) {
        http_reply_errf(q, 400, "invalid_body", "", "expected a JSON object");
        return -1;
    }
    for (size_t i = 0; body && i < body->u.obj.n; i++) {
        const jv_member *m = &body->u.obj.m[i];
        const http_field *f = spec;
        while (f->name && strcmp(f->name, m->key)) f++;
        if (!f->name) {
            http_reply_errf(q, 400, "unknown_field", m->key, "unknown field '%s'", m->key);
            return -1;
        }
        if (m->val->kind != JV_NULL && field_ok(q, f, m->val)) return -1;
    }
    for (const http_field *f = spec; f->name; f++) {
        const jv *v = body ? jv_get(body, f->name) : NULL;
        if (f->required && (!v || v->kind == JV_NULL)) {
            http_reply_errf(q, 400, "missing_field", f->name, "'%s' is required", f->name);
            return -1;
        }
    }
    return 0;
}

void http_reply_id_page(http_req *q, db *d, db_stmt *s, int64_t limit, const char *resource, http_item_fn fn, void *ud)
{
    err e;
    err_clear(&e);
    int64_t *ids = malloc(sizeof *ids * (size_t)(limit + 1));
    int n = 0, rc = DB_DONE;
    if (!ids) {
        if (s) db_done(s);
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return;
    }
    while (s && (rc = db_step(d, s, &e)) == DB_ROW && n <= limit) ids[n++] = db_col_int(s, 0);
    if (s) db_done(s);
    int more = n > limit;
    if (more) n = (int)limit;
    jv_arena *a = http_arena(q);
    jv *list = rc < 0 ? NULL : jv_arr_sized(a, (size_t)n);
    for (int i = 0; list && i < n; i++) {
        jv *o = NULL;
        if ((rc = fn(ud, d, a, ids[i], &o, &e)) || jv_arr_push(a, list, o)) list = NULL;
    }
    char next[32];
    snprintf(next, sizeof next, "%lld", (long long)(n ? ids[n - 1] : 0));
    free(ids);
    if (!list) {
        if (e.code) http_reply_error(q, 500, &e);
        else http_reply_errf(q, 500, "internal", "", "out of memory");
        return;
    }
    http_reply_resources(q, resource, list, more ? next : NULL);
}
