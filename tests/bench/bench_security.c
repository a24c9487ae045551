/* bench_security.c - what the security layers add to a write request.
 *
 * A typical API write is: one transaction that changes a row and commits
 * durably. The security core adds to it: the route's permission check, an
 * audit record (HMAC chain, masked before/after diff) inside the same
 * transaction, and the field filter on the response. This times both, on
 * the same database, interleaved, and prints the overhead.
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
#include "migrate.h"
#include "privacy.h"
#include "vault.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_plain(db *d, int i, err *e)
{
    char name[32];
    snprintf(name, sizeof name, "Agent %d", i);
    int rc = db_begin(d, e);
    if (!rc) rc = db_run(d, e, "UPDATE staff_users SET display_name = ? WHERE username = 'bench'", "s", name);
    if (!rc) rc = db_commit(d, e);
    return rc;
}

static int write_secured(db *d, vault *v, const principal *p, int i, err *e)
{
    char name[32], old[32];
    snprintf(name, sizeof name, "Agent %d", i);
    snprintf(old, sizeof old, "Agent %d", i - 1);
    jv_arena a;
    jv_arena_init(&a, 0);
    int rc = auth_authorize(d, p, "user.write", e);
    /* the objects a handler builds for the record and the reply */
    jv *before = jv_obj(&a), *after = jv_obj(&a);
    jv_obj_set_str(&a, before, "username", "bench");
    jv_obj_set_str(&a, before, "display_name", old);
    jv_obj_set_str(&a, before, "email", "bench@example.com");
    jv_obj_set_str(&a, before, "phone", "13812348000");
    jv_obj_set_str(&a, after, "username", "bench");
    jv_obj_set_str(&a, after, "display_name", name);
    jv_obj_set_str(&a, after, "email", "bench@example.com");
    jv_obj_set_str(&a, after, "phone", "13812348000");
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = db_run(d, e, "UPDATE staff_users SET display_name = ? WHERE username = 'bench'", "s", name);
    audit_who who = {.actor = "token:bench", .role = "customer_service", .source = "127.0.0.1", .request_id = "r1"};
    audit_event ev = {.action = "user.update", .object_type = "user", .object_id = "bench", .before = before, .after = after};
    if (!rc) rc = audit_append(d, vault_audit_key(v), &who, &ev, e);
    if (!rc) rc = db_commit(d, e);
    buf clear = {0};
    if (!rc) rc = privacy_filter(d, &a, p->role, "user", after, &clear, e);
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
    db_run(d, &e,
           "INSERT INTO staff_users (username, display_name, role, password_hash, password_changed_at, created_at, created_by) "
           "VALUES ('bench', 'Agent 0', 'customer_service', 'x', 'now', 'now', 'bench')",
           NULL);
    principal p = {.kind = PRINCIPAL_TOKEN, .id = 1};
    snprintf(p.name, sizeof p.name, "bench");
    snprintf(p.role, sizeof p.role, "admin");
    double plain = 0, secured = 0;
    /* interleaved rounds, so disk and cache conditions hit both alike */
    for (int r = 0; r < 10; r++) {
        double t0 = now_s();
        for (int i = 0; i < n / 10; i++)
            if (write_plain(d, r * n + i, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        double t1 = now_s();
        for (int i = 0; i < n / 10; i++)
            if (write_secured(d, v, &p, r * n + i + 1, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        double t2 = now_s();
        plain += t1 - t0;
        secured += t2 - t1;
    }
    int per = (n / 10) * 10;
    printf("plain write (update + durable commit):       %.3f ms per request\n", plain * 1e3 / per);
    printf("with permission check + audit record + filter: %.3f ms per request\n", secured * 1e3 / per);
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
