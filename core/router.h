/* router.h - the route table and path matching.
 *
 * Every HTTP route is one row of the table in routes.c: method, path
 * pattern ("/api/v1/rules/versions/{version}"), handler, the permission it
 * needs, and a summary for the API reference. A pattern segment in braces
 * captures that path segment. */
#ifndef BB_ROUTER_H
#define BB_ROUTER_H

#include <stddef.h>

typedef struct http_req http_req;
typedef int (*route_fn)(http_req *req);

/* Permission of routes anyone may call (health, metrics, payment callbacks). */
#define PERM_PUBLIC "public"

/* Route flags. */
enum {
    ROUTE_READS = 1,        /* a POST that changes nothing (no audit record) */
    ROUTE_NO_CSRF = 2,      /* no CSRF token needed (login itself) */
    ROUTE_RAW_BODY = 4      /* the body is kept as received, any type (payment notifications) */
};

typedef struct route {
    const char *method;
    const char *pattern;
    route_fn fn;
    const char *perm;       /* a permission name, or PERM_PUBLIC; never NULL */
    const char *summary;
    int flags;
} route;

extern const route routes[];
extern const size_t routes_count;

#define ROUTER_MAX_PARAMS 8

typedef struct route_match {
    const route *route;
    int nparams;
    struct {
        const char *name;   /* points into the pattern */
        size_t name_len;
        const char *value;  /* points into the path, still percent-encoded */
        size_t value_len;
    } params[ROUTER_MAX_PARAMS];
    char allow[64];         /* on a 405: the methods the path does accept */
} route_match;

/* 200 when a route matches, 404 when no pattern matches the path, 405 when
 * one matches the path but not the method (m->allow lists the methods). */
int router_match(const route *table, size_t n, const char *method, const char *path, route_match *m);

#endif
