/* bench_security.c - what the security layers add to a write request.
 *
 * The typical API write is PATCH /api/v1/customers/{code}: parse the body,
 * one transaction that updates the customer (personal data encrypted with
 * the vault), read the customer back for the reply, commit durably, write
 * the JSON reply. The security core adds to it: the route's permission
 * check, keeping the customer as it was before the change (for the diff:
 * the update reads it anyway and hands it over), the audit
 * record (HMAC chain, masked before/after diff) inside the same
 * transaction, and the field filter on the reply. The record of the fields
 * the reply shows in clear is left out: the daemon queues it and writes the
 * views of one desk as one record per 100 ms (tests/bench/security_http.sh
 * measures the whole request, that included). This times both on the
 * same database, interleaved, and prints the overhead; HTTP parsing and the
 * log line, which would make the share smaller, are left out of both.
 *
 *   bench_security DIR [REQUESTS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "auth.h"
#include "customers.h"
#include "migrate.h"
#include "privacy.h"
#include "vault.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* the request body: a new backup phone and a note, different each time */
static int patch_of(int i, jv_arena *a, jv **out, err *e)
{
    char body[160];
    int n = snprintf(body, sizeof body, "{\"phone2\": \"0571-8%07d\", \"notes\": \"call before visit %d\"}", i % 10000000, i);
    return json_parse(body, (size_t)n, NULL, a, out, e);
}

static int reply(jv *obj, err *e)
{
    jw w;
    jw_init(&w, 0);
    jw_jv(&w, obj);
    size_t n;
    int rc = jw_finish(&w, &n) ? 0 : err_set(e, ERR_INTERNAL, "encode");
    jw_free(&w);
    return rc;
}

static int write_plain(db *d, vault *v, int64_t id, int i, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *patch, *after = NULL;
    int rc = patch_of(i, &a, &patch, e);
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = customers_update(d, v, id, patch, NULL, NULL, e);
    if (!rc) rc = customers_get(d, v, id, &a, &after, e);
    if (!rc) rc = db_commit(d, e);
    if (!rc) rc = reply(after, e);
    jv_arena_free(&a);
    return rc;
}

static int write_secured(db *d, vault *v, const principal *p, int64_t id, const char *code, int i, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *patch, *before = NULL, *after = NULL;
    int rc = auth_authorize(d, p, "customer.write", e);
    if (!rc) rc = patch_of(i, &a, &patch, e);
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = customers_update(d, v, id, patch, &a, &before, e);
    if (!rc) rc = customers_get(d, v, id, &a, &after, e);
    audit_who who = {.actor = "token:bench", .role = p->role, .source = "127.0.0.1", .request_id = "r1"};
    audit_event ev = {.action = "customer.update", .object_type = "customer", .object_id = code, .before = before, .after = after};
    if (!rc) rc = audit_append(d, vault_audit_key(v), &who, &ev, e);
    buf clear = {0};
    if (!rc) rc = privacy_filter(d, &a, p->role, "customer", after, &clear, e);
    if (!rc) rc = db_commit(d, e);
    if (!rc) rc = reply(after, e);
    buf_free(&clear);
    jv_arena_free(&a);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    char path[1024], keys[1024];
    snprintf(path, sizeof path, "%s/bench-security.db", dir);
    snprintf(keys, sizeof keys, "%s/bench-security.key", dir);
    unlink(path);
    unlink(keys);
    db *d;
    vault *v;
    err e;
    if (db_open(path, DB_OPEN_CREATE, &d, &e) || migrate_apply(d, NULL, &e) || vault_create_file(keys, &e) ||
        vault_open(keys, &v, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        return 1;
    }
    static const char person[] =
        "{\"name\": \"张三丰\", \"id_card\": \"11010519491231002X\", \"phone\": \"13812348000\", "
        "\"email\": \"zhang.san@example.com\", \"address\": {\"province\": \"浙江省\", \"city\": \"杭州市\", "
        "\"district\": \"西湖区\", \"street\": \"文新街道\", \"community\": \"翠苑一区\", \"building\": \"3\", "
        "\"unit\": \"2\", \"floor\": \"5\", \"room\": \"502\"}, \"tags\": [\"vip\"]}";
    jv_arena pa;
    jv_arena_init(&pa, 0);
    jv *pj;
    int64_t id;
    char code[CUSTOMER_CODE_MAX];
    if (json_parse(person, sizeof person - 1, NULL, &pa, &pj, &e) || db_begin(d, &e) ||
        customers_create(d, v, "C", pj, "bench", &id, &e) || db_commit(d, &e) || customers_code_by_id(d, id, code, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        return 1;
    }
    jv_arena_free(&pa);
    /* a customer-service desk: its masking levels apply to the reply */
    principal p = {.kind = PRINCIPAL_TOKEN, .id = 1};
    snprintf(p.name, sizeof p.name, "bench");
    snprintf(p.role, sizeof p.role, "customer_service");
    double plain = 0, secured = 0;
    /* interleaved rounds, so disk and cache conditions hit both alike */
    for (int r = 0; r < 10; r++) {
        double t0 = now_s();
        for (int i = 0; i < n / 10; i++)
            if (write_plain(d, v, id, 2 * (r * n + i), &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        double t1 = now_s();
        for (int i = 0; i < n / 10; i++)
            if (write_secured(d, v, &p, id, code, 2 * (r * n + i) + 1, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        double t2 = now_s();
        plain += t1 - t0;
        secured += t2 - t1;
    }
    int per = (n / 10) * 10;
    printf("customer update, durable commit, reply:          %.3f ms per request\n", plain * 1e3 / per);
    printf("+ permission, before-image, audit record, filter: %.3f ms per request\n", secured * 1e3 / per);
    printf("overhead: %.1f%%\n", (secured - plain) * 100.0 / plain);
    audit_check c;
    if (audit_verify(d, vault_audit_key(v), &c, &e) == 0)
        printf("audit chain: %lld records, %s\n", (long long)c.records, c.first_bad_id ? "BROKEN" : "intact");
    vault_close(v);
    db_close(d);
    unlink(path);
    unlink(keys);
    return 0;
}
