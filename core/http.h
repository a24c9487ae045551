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
const jv *http_body(const http_req *q);                       /* parsed JSON body or NULL */
jv_arena *http_arena(http_req *q);                            /* freed with the request */
const principal *http_who(const http_req *q);
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

/* Pagination of lists: ?limit= (1-500, default 50) and ?cursor=. Replies
 * 400 itself and returns -1 on a bad value. */
int http_page(http_req *q, int64_t *limit, const char **cursor);

/* Server side, for server.c. */
void http_handle(struct server *s, struct evhttp_request *r);
/* Frees the calling thread's request freelist. */
void http_release(void);

#endif
