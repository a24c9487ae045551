/* fuzz_router.c - router_match of a fuzzed method and path.
 *
 * Input: "METHOD PATH" (split at the first space; without one, the whole
 * input is the path of a GET). The method and path are matched against the
 * real route table (routes.c) and against a synthetic table that reaches the
 * corners (ROUTER_MAX_PARAMS, a long Allow list), and the result is compared
 * with a straightforward reference matcher written here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static const route synthetic[] = {
    {"GET", "/a/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}", NULL, PERM_PUBLIC, "", 0},
    {"GET", "/a/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}/{p9}", NULL, PERM_PUBLIC, "", 0},
    {"GET", "/x/{id}", NULL, PERM_PUBLIC, "", 0},
    {"POST", "/x/{id}", NULL, PERM_PUBLIC, "", 0},
    {"PUT", "/x/{other}", NULL, PERM_PUBLIC, "", 0},
    {"DELETE", "/x/{id}", NULL, PERM_PUBLIC, "", 0},
    {"PROPPATCH-LONG-METHOD-NAME", "/x/{id}", NULL, PERM_PUBLIC, "", 0},
    {"ANOTHER-VERY-LONG-METHOD-NAME", "/x/{id}", NULL, PERM_PUBLIC, "", 0},
    {"PATCH", "/x/{id}", NULL, PERM_PUBLIC, "", 0},
    {"GET", "/x/fixed", NULL, PERM_PUBLIC, "", 0},
    {"GET", "/{}/b", NULL, PERM_PUBLIC, "", 0},
    {"GET", "/{a}/{b}/c", NULL, PERM_PUBLIC, "", 0},
    {"GET", "/", NULL, PERM_PUBLIC, "", 0},
};

static void die(const char *what, const char *method, const char *path)
{
    fprintf(stderr, "fuzz_router: %s: method \"%s\" path \"%s\"\n", what, method, path);
    abort();
}

/* Reference: split both at '/', compare segment by segment. */
static int ref_match(const char *pattern, const char *path, int *nparams)
{
    *nparams = 0;
    if (pattern[0] != '/' || path[0] != '/') return 0;
    const char *p = pattern + 1, *q = path + 1;
    for (;;) {
        size_t pl = strcspn(p, "/"), ql = strcspn(q, "/");
        if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (ql == 0 || *nparams == ROUTER_MAX_PARAMS) return 0;
            (*nparams)++;
        } else if (pl != ql || memcmp(p, q, pl) != 0) {
            return 0;
        }
        p += pl;
        q += ql;
        if (!*p || !*q) return !*p && !*q;
        p++;
        q++;
    }
}

static void check(const route *table, size_t n, const char *method, const char *path)
{
    route_match m;
    int st = router_match(table, n, method, path, &m);

    int want = 404;
    const route *want_route = NULL;
    int want_params = 0;
    char allow[64] = "";
    for (size_t i = 0; i < n; i++) {
        int np;
        if (!ref_match(table[i].pattern, path, &np)) continue;
        if (strcmp(table[i].method, method) == 0) {
            want = 200;
            want_route = &table[i];
            want_params = np;
            break;
        }
        want = 405;
        size_t al = strlen(allow);
        if (!strstr(allow, table[i].method) && al + strlen(table[i].method) + 3 < sizeof allow) {
            if (al) strcat(allow, ", ");
            strcat(allow, table[i].method);
        }
    }
    if (st != want) die("status differs from the reference", method, path);
    if (st == 200) {
        if (m.route != want_route) die("a different route", method, path);
        if (m.nparams != want_params || m.nparams < 0 || m.nparams > ROUTER_MAX_PARAMS)
            die("parameter count", method, path);
        /* substituting the parameters into the pattern gives the path back */
        char rebuilt[8192];
        size_t o = 0;
        const char *p = m.route->pattern;
        int k = 0;
        while (*p) {
            if (*p == '{') {
                const char *close = strchr(p, '}');
                if (k >= m.nparams || m.params[k].name != p + 1 || m.params[k].name_len != (size_t)(close - p - 1))
                    die("parameter name", method, path);
                if (m.params[k].value < path || m.params[k].value + m.params[k].value_len > path + strlen(path))
                    die("parameter value outside the path", method, path);
                if (o + m.params[k].value_len >= sizeof rebuilt) return;
                memcpy(rebuilt + o, m.params[k].value, m.params[k].value_len);
                o += m.params[k].value_len;
                k++;
                p = close + 1;
            } else {
                if (o + 1 >= sizeof rebuilt) return;
                rebuilt[o++] = *p++;
            }
        }
        rebuilt[o] = '\0';
        if (k != m.nparams || strcmp(rebuilt, path) != 0) die("parameters do not rebuild the path", method, path);
    } else {
        if (m.route) die("a route on a non-200", method, path);
        if (strcmp(m.allow, allow) != 0) die("Allow differs from the reference", method, path);
        if (st == 405 && !m.allow[0]) die("405 without Allow", method, path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    const uint8_t *sp = memchr(data, ' ', size);
    size_t ml = sp ? (size_t)(sp - data) : 3;
    size_t po = sp ? ml + 1 : 0;
    /* exact-size, NUL-terminated copies: ASan sees any read past the end */
    char *method = malloc(ml + 1), *path = malloc(size - po + 1);
    if (!method || !path) {
        free(method);
        free(path);
        return 0;
    }
    memcpy(method, sp ? (const char *)data : "GET", ml);
    method[ml] = '\0';
    memcpy(path, data + po, size - po);
    path[size - po] = '\0';
    /* a NUL inside ends the string early: keep the copies exactly that long */
    char *m2 = strdup(method), *p2 = strdup(path);
    free(method);
    free(path);
    if (!m2 || !p2) {
        free(m2);
        free(p2);
        return 0;
    }
    check(routes, routes_count, m2, p2);
    check(synthetic, sizeof synthetic / sizeof *synthetic, m2, p2);
    free(m2);
    free(p2);
    return 0;
}
