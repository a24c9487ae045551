/* router.c - segment-wise matching of request paths against patterns. */
#include "router.h"

#include <string.h>

/* Matches path against pattern, filling params. 1 on a match. */
static int match(const char *pattern, const char *path, route_match *m)
{
    const char *p = pattern, *q = path;
    m->nparams = 0;
    while (*p && *q) {
        if (*p != '/' || *q != '/') return 0;
        p++;
        q++;
        const char *pe = strchr(p, '/'), *qe = strchr(q, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t ql = qe ? (size_t)(qe - q) : strlen(q);
        if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (ql == 0 || m->nparams == ROUTER_MAX_PARAMS) return 0;
            m->params[m->nparams].name = p + 1;
            m->params[m->nparams].name_len = pl - 2;
            m->params[m->nparams].value = q;
            m->params[m->nparams].value_len = ql;
            m->nparams++;
        } else if (pl != ql || memcmp(p, q, pl) != 0) {
            return 0;
        }
        p += pl;
        q += ql;
    }
    return *p == '\0' && *q == '\0';
}

int router_match(const route *table, size_t n, const char *method, const char *path, route_match *m)
{
    memset(m, 0, sizeof *m);
    int path_seen = 0;
    route_match tmp;
    memset(&tmp, 0, sizeof tmp);
    for (size_t i = 0; i < n; i++) {
        if (!match(table[i].pattern, path, &tmp)) continue;
        if (strcmp(table[i].method, method) == 0) {
            char allow[sizeof m->allow];
            memcpy(allow, m->allow, sizeof allow);
            *m = tmp;
            memcpy(m->allow, allow, sizeof allow);
            m->route = &table[i];
            return 200;
        }
        size_t al = strlen(m->allow);
        if (!strstr(m->allow, table[i].method) && al + strlen(table[i].method) + 3 < sizeof m->allow) {
            if (al) strcat(m->allow, ", ");
            strcat(m->allow, table[i].method);
        }
        path_seen = 1;
    }
    return path_seen ? 405 : 404;
}
