/* http.h - requests and replies: what every handler sees.
 *
 * The HTTP layer does, in this order and for every route: request id,
 * route match, authentication, the route's permission check, JSON body
 * parsing under limits, then the handler; and after the reply the access
 * log line and the metrics. Handlers only read the request and reply. */
#ifndef BB_HTTP_H
#define BB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "auth.h"
#include "err.h"
#include "json.h"
#include "lua_host.h"
#include "router.h"

struct server;
struct evhttp_request;

/* What a handler returns. */
enum { HTTP_DONE = 0, HTTP_DEFERRED = 1 };

const char *http_param(const http_req *q, const char *name);  /* decoded path parameter */
const char *http_query(http_req *q, const char *name);        /* decoded query parameter or NULL */
const char *http_header(http_req *q, const char *name);       /* request header or NULL */
const jv *http_body(const http_req *q);                       /* parsed JSON body or NULL */
/* The body as received, for routes with ROUTE_RAW_BODY ("" without one). */
const char *http_raw_body(const http_req *q, size_t *len);
/* The request's headers as sent, up to max; returns how many. */
size_t http_headers(http_req *q, const char **names, const char **values, size_t max);
jv_arena *http_arena(http_req *q);                            /* freed with the request */
const principal *http_who(const http_req *q);
/* Replaces the request's principal (a login establishes a new one). */
void http_set_who(http_req *q, const principal *p);
const char *http_rid(const http_req *q);
const char *http_method(const http_req *q);
struct server *http_server(const http_req *q);

/* Replies. Each request gets exactly one; for a deferred request the reply
 * may come later from the loop thread. */
void http_reply_json(http_req *q, int status, jw *w);
void http_reply_raw(http_req *q, int status, const char *ctype, const char *body, size_t n);
/* {"error":{"code","message","field"}} from e; status 0 maps e->code. */
void http_reply_error(http_req *q, int status, const err *e);
/* The same with the located details of a failed rule. */
void http_reply_rule_error(http_req *q, int status, const err *e, const rule_error *re);
void http_reply_errf(http_req *q, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void http_add_header(http_req *q, const char *key, const char *value);
/* Rolls back the transaction the handler left open and replies e. */
void http_fail(http_req *q, db *d, const err *e);

/* ---- request bodies ---- */

/* One field a body may have. Types: 's' a string without NUL bytes, 'i' a
 * whole number, 'm' money (a whole number of fen, 0 or more: a fraction is
 * refused with invalid_money, never rounded), 'M' money that may be
 * negative, 'b' a boolean, 'a' a list, 'o' an object, '*' anything. */
typedef struct http_field {
    const char *name;
    char type;
    int required;
} http_field;

enum { HTTP_BODY_OPTIONAL = 1 };   /* no body at all reads as {} */

/* The body must be an object with only fields of spec (ending with a NULL
 * name), each of its type; null counts as absent; required fields must be
 * there. Otherwise replies 400 (invalid_body, unknown_field,
 * missing_field, invalid_field or invalid_money, naming the field) and
 * returns -1. */
int http_check_body(http_req *q, const jv *body, const http_field *spec, int flags);
/* The string field key of an object, or NULL. */
const char *http_str(const jv *obj, const char *key);
/* Today in the operator's time zone, YYYY-MM-DD. */
void http_today(char out[11]);

/* The client's address (or "local" for the control socket). */
const char *http_source(http_req *q);

/* Sends a resource (an object of type `resource`, e.g. "customer") after
 * the caller's field visibility is applied (privacy.h); a view of any
 * sensitive field in clear is recorded in the audit trail. Every handler
 * that returns personal data replies through these two. */
void http_reply_resource(http_req *q, int status, const char *resource, jv *obj);
/* A page of resources: {"data": [...], "next_cursor": ...}. */
void http_reply_resources(http_req *q, const char *resource, jv *list, const char *next_cursor);

/* Makes the API object of one id (in arena a). */
typedef int (*http_item_fn)(void *ud, db *d, jv_arena *a, int64_t id, jv **out, err *e);
/* The common list: s (bound, its LIMIT set to limit + 1) selects ids,
 * newest or oldest first; each becomes an object through fn, and the page
 * goes out through http_reply_resources with the last id as the cursor.
 * s NULL is an empty page. Replies 500 on a database error. */
void http_reply_id_page(http_req *q, db *d, db_stmt *s, int64_t limit, const char *resource, http_item_fn fn, void *ud);

/* Appends an audit record for this request (who, role, address, request
 * id) inside the caller's open transaction. A state-changing request that
 * succeeds without one gets a generic record from the HTTP layer. */
int http_audit(http_req *q, const audit_event *ev, err *e);
void http_audit_who(http_req *q, audit_who *who, char *actor, size_t n);
/* The same, for an actor that is not the request's principal (a payment
 * channel whose notification was verified by its signature). */
int http_audit_as(http_req *q, const char *actor, const char *role, const audit_event *ev, err *e);
/* The same in a transaction of its own (for events that change nothing
 * else: a login attempt). Failures are logged. */
void http_audit_now(http_req *q, const audit_event *ev);
/* Queues a record of something that changed nothing (a view in clear, a
 * denial); queued records are written together, every 100 ms or when many
 * wait (server.c flushes them). */
void http_audit_later(http_req *q, const audit_event *ev);
#define AUDIT_FLUSH_MS 100
void http_audit_flush(struct server *s);
/* Tells the HTTP layer that this state-changing request changed nothing
 * after all (no generic audit record). */
void http_nothing_changed(http_req *q);
void http_audit_release(void);

/* Pagination of lists: ?limit= (1-500, default 50) and ?cursor=. Replies
 * 400 itself and returns -1 on a bad value. */
int http_page(http_req *q, int64_t *limit, const char **cursor);

/* Server side, for server.c. */
void http_handle(struct server *s, struct evhttp_request *r);
/* Frees the calling thread's request freelist. */
void http_release(void);

#endif
