/* auth.c - API tokens and the permission check. */
#include "auth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "router.h"

int auth_role_valid(db *d, const char *role)
{
    err e;
    int64_t one;
    return db_get_int(d, &e, &one, "SELECT 1 FROM roles WHERE name = ?", "s", role) == 0;
}

static void token_hash(const char *token, char out[SHA256_HEX_LEN])
{
    crypto_sha256_hex(token, strlen(token), out);
}

int auth_token_create(db *d, const char *name, const char *role, const char *by, char token[AUTH_TOKEN_LEN], err *e)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > 60 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != nl)
        return err_field(e, ERR_INVALID, "invalid_name", "name", "token name must be 1-60 letters, digits, '-', '_' or '.'");
    if (!auth_role_valid(d, role))
        return err_field(e, ERR_INVALID, "invalid_role", "role", "unknown role '%s' (see bandbill user roles)", role);
    uint8_t raw[24];
    if (crypto_random(raw, sizeof raw)) return err_set(e, ERR_INTERNAL, "no randomness available");
    memcpy(token, "bb_", 3);
    crypto_hex(raw, sizeof raw, token + 3);
    char hash[SHA256_HEX_LEN], prefix[16], now[25];
    token_hash(token, hash);
    snprintf(prefix, sizeof prefix, "%.10s", token);
    db_now(now);
    int rc = db_run(d, e,
                    "INSERT INTO api_tokens (name, role, token_hash, prefix, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                    "ssssss", name, role, hash, prefix, now, by);
    if (rc == ERR_CONFLICT) return err_field(e, ERR_CONFLICT, "exists", "name", "a token named '%s' already exists", name);
    return rc;
}

int auth_token_lookup(db *d, const char *token, principal *out, err *e)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(token);
    if (n < 8 || n > 128) return err_set(e, ERR_UNAUTH, "invalid token");
    char hash[SHA256_HEX_LEN];
    token_hash(token, hash);
    db_stmt *s = db_prepare(d, "SELECT id, name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL", e);
    if (!s) return e->code;
    db_bind_text(s, 1, hash);
    int rc = db_step(d, s, e);
    if (rc < 0) return rc;
    if (rc != DB_ROW) return err_set(e, ERR_UNAUTH, "invalid or revoked token");
    out->kind = PRINCIPAL_TOKEN;
    out->id = db_col_int(s, 0);
    snprintf(out->name, sizeof out->name, "%s", db_col_text(s, 1));
    snprintf(out->role, sizeof out->role, "%s", db_col_text(s, 2));
    db_done(s);
    return 0;
}

int auth_token_revoke(db *d, const char *name, err *e)
{
    char now[25];
    db_now(now);
    int rc = db_run(d, e, "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", "ss", now, name);
    if (rc) return rc;
    if (db_changes(d) == 0) return err_field(e, ERR_NOTFOUND, "not_found", "name", "no live token named '%s'", name);
    return 0;
}

/* ------------------------------------------------------------ permissions */

#define CACHE_TTL_MS 10000

typedef struct grant { char role[32]; char perm[48]; } grant;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static grant *g_grants;
static size_t g_ngrants;
static int64_t g_loaded_ms;

void auth_reload(void)
{
    pthread_mutex_lock(&g_lock);
    g_loaded_ms = 0;
    pthread_mutex_unlock(&g_lock);
}

static void load(db *d)
{
    err e;
    db_stmt *s = db_prepare(d, "SELECT role, permission FROM role_permissions", &e);
    if (!s) return;
    size_t n = 0, cap = 0;
    grant *g = NULL;
    while (db_step(d, s, &e) == DB_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 128;
            grant *ng = realloc(g, cap * sizeof *ng);
            if (!ng) break;
            g = ng;
        }
        snprintf(g[n].role, sizeof g[n].role, "%s", db_col_text(s, 0));
        snprintf(g[n].perm, sizeof g[n].perm, "%s", db_col_text(s, 1));
        n++;
    }
    db_done(s);
    free(g_grants);
    g_grants = g;
    g_ngrants = n;
    g_loaded_ms = db_now_ms();
}

int auth_authorize(db *d, const principal *p, const char *perm, err *e)
{
    if (!p || p->kind == PRINCIPAL_NONE) return err_set(e, ERR_UNAUTH, "authentication required");
    /* the control socket is open to the daemon's own user and root only:
     * whatever the roles table says, it can always repair it */
    if (p->kind == PRINCIPAL_LOCAL) return 0;
    int ok = 0;
    pthread_mutex_lock(&g_lock);
    if (!g_loaded_ms || db_now_ms() - g_loaded_ms > CACHE_TTL_MS) load(d);
    for (size_t i = 0; i < g_ngrants && !ok; i++)
        ok = !strcmp(g_grants[i].role, p->role) && (!strcmp(g_grants[i].perm, "*") || !strcmp(g_grants[i].perm, perm));
    pthread_mutex_unlock(&g_lock);
    if (ok) return 0;
    return err_field(e, ERR_FORBIDDEN, "forbidden", "", "role %s does not have permission %s", p->role, perm);
}

int auth_permission_known(const char *perm)
{
    /* permissions of features whose routes come later are known too, so
     * roles can be prepared for them */
    static const char *const extra[] = {"*", "auth.self", "customer.read", "customer.write", "catalog.read",
        "catalog.write", "subscription.read", "subscription.write", "device.read", "device.write", "invoice.read",
        "invoice.adjust", "billrun.run", "payment.read", "payment.write", "payment.refund", "ticket.read",
        "ticket.write", "fieldcharge.write", "dunning.read", "dunning.write", "report.read", "privacy.export",
        "privacy.erase", "job.read", "job.run", "audit.read", "user.read", "user.write", "role.read", "role.write",
        NULL};
    for (const char *const *x = extra; *x; x++)
        if (!strcmp(*x, perm)) return 1;
    for (size_t i = 0; i < routes_count; i++)
        if (!strcmp(routes[i].perm, perm)) return 1;
    return 0;
}

void auth_label(const principal *p, char *out, size_t n)
{
    switch (p->kind) {
    case PRINCIPAL_TOKEN: snprintf(out, n, "token:%s", p->name); break;
    case PRINCIPAL_LOCAL: snprintf(out, n, "local:%s", p->name); break;
    case PRINCIPAL_SESSION: snprintf(out, n, "user:%s", p->name); break;
    default: snprintf(out, n, "anonymous");
    }
}
