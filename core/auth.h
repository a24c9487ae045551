/* auth.h - who is calling, and may they.
 *
 * A principal is established once per request (bearer token, or the local
 * control socket) and every route's permission is checked by the one call
 * auth_authorize(), from the HTTP layer, never from handlers. Tokens are
 * random, shown once, and stored only as their SHA-256. */
#ifndef BB_AUTH_H
#define BB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

enum { PRINCIPAL_NONE = 0, PRINCIPAL_TOKEN, PRINCIPAL_LOCAL, PRINCIPAL_SESSION };

typedef struct principal {
    int kind;
    int64_t id;          /* token id, or staff user id for a session */
    int64_t session_id;  /* for a session */
    char name[64];       /* token name, user name, or the local user */
    char role[32];
} principal;

#define AUTH_TOKEN_LEN 64  /* buffer size for a printed token */

/* Roles are data (table roles); 1 if this one exists. */
int auth_role_valid(db *d, const char *role);

/* Creates a named token for a role; writes the token (never stored). */
int auth_token_create(db *d, const char *name, const char *role, const char *by, char token[AUTH_TOKEN_LEN], err *e);
/* Finds the live token; ERR_UNAUTH when unknown or revoked. */
int auth_token_lookup(db *d, const char *token, principal *out, err *e);
int auth_token_revoke(db *d, const char *name, err *e);

/* 0 if the principal's role has `perm` (or "*"), else ERR_FORBIDDEN with a
 * message. Role permissions are cached for a few seconds; auth_reload()
 * drops the cache after an edit. */
int auth_authorize(db *d, const principal *p, const char *perm, err *e);
void auth_reload(void);
/* 1 if perm is one bandbill knows (a route's permission or a known name). */
int auth_permission_known(const char *perm);
/* "token:billing-bot" or "local:root", for logs and records. */
void auth_label(const principal *p, char *out, size_t n);

#endif
