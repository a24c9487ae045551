/* auth.c - API tokens and the permission check. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"

/* Until roles become data (with staff accounts), the admin role may do
 * everything and there is no other. */
static const char *const roles[] = {"admin", NULL};

int auth_role_valid(const char *role)
{
    for (const char *const *r = roles; *r; r++)
        if (strcmp(*r, role) == 0) return 1;
    return 0;
}

const char *auth_roles(void) { return "admin"; }

static void token_hash(const char *token, char out[SHA256_HEX_LEN])
{
    crypto_sha256_hex(token, strlen(token), out);
}

int auth_token_create(db *d, const char *name, const char *role, const char *by, char token[AUTH_TOKEN_LEN], err *e)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > 60 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != nl)
        return err_field(e, ERR_INVALID, "invalid_name", "name", "token name must be 1-60 letters, digits, '-', '_' or '.'");
    if (!auth_role_valid(role))
        return err_field(e, ERR_INVALID, "invalid_role", "role", "unknown role '%s' (known: %s)", role, auth_roles());
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

int auth_authorize(const principal *p, const char *perm, err *e)
{
    if (!p || p->kind == PRINCIPAL_NONE) return err_set(e, ERR_UNAUTH, "authentication required");
    if (strcmp(p->role, "admin") == 0) return 0;
    return err_field(e, ERR_FORBIDDEN, "forbidden", "", "role %s may not %s", p->role, perm);
}

void auth_label(const principal *p, char *out, size_t n)
{
    switch (p->kind) {
    case PRINCIPAL_TOKEN: snprintf(out, n, "token:%s", p->name); break;
    case PRINCIPAL_LOCAL: snprintf(out, n, "local:%s", p->name); break;
    default: snprintf(out, n, "anonymous");
    }
}
