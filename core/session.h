/* session.h - console sessions and the throttling of failed logins.
 *
 * A session is a random token in an HttpOnly, SameSite=Strict cookie plus a
 * CSRF token the console sends back in X-CSRF-Token on every state-changing
 * request; only SHA-256 hashes of both are stored. A session ends when idle
 * for auth.session_idle_min, after auth.session_max_hours in any case, on
 * logout, on revocation, and when its user changes password or is disabled.
 *
 * Failed logins are counted per account and per client address in a
 * sliding 15-minute window: from the 3rd failure replies are delayed (1 s,
 * doubling, at most 8 s); the 10th locks the account for 30 minutes (until
 * an admin unlocks it sooner); the 30th from one address locks that address
 * for 15 minutes. */
#ifndef BB_SESSION_H
#define BB_SESSION_H

#include <stdint.h>

#include "auth.h"
#include "cfg.h"
#include "db.h"
#include "err.h"

#define SESSION_TOKEN_LEN 65  /* 64 hex digits and a NUL */

struct vault;
/* The CSRF token of a session is derived from it (a keyed hash under the
 * vault's index key), so the console can ask for it again after a reload
 * of its page without it being stored anywhere. */
int session_create(db *d, const cfg *c, const struct vault *v, int64_t user_id, const char *source,
                   const char *user_agent, char token[SESSION_TOKEN_LEN], char csrf[SESSION_TOKEN_LEN], int64_t *id,
                   char expires[25], err *e);
/* The CSRF token of a live session. */
int session_csrf(db *d, const struct vault *v, int64_t session_id, char csrf[SESSION_TOKEN_LEN], err *e);
/* Finds a live session and fills the principal (kind PRINCIPAL_SESSION).
 * ERR_UNAUTH when unknown, expired, revoked, or its user is disabled. */
int session_lookup(db *d, const cfg *c, const char *token, principal *out, err *e);
/* 1 if the CSRF token belongs to the session. */
int session_csrf_ok(db *d, int64_t session_id, const char *csrf);
int session_revoke(db *d, int64_t id, const char *why, err *e);
/* Ends every live session of a user but `keep` (0 for none). */
int session_revoke_user(db *d, int64_t user_id, int64_t keep, const char *why, err *e);

/* ---- failed logins ---- */
typedef struct throttle {
    int failures;           /* in the current window */
    int64_t locked_until;   /* Unix ms, 0 when not locked */
} throttle;

#define THROTTLE_DELAY_FROM 3
#define THROTTLE_LOCK_ACCOUNT 10
#define THROTTLE_LOCK_ADDRESS 30

int throttle_get(db *d, const char *subject, int64_t now_ms, throttle *out, err *e);
/* Counts one failure; locks the subject when it reaches `lock_at`
 * (for lock_ms). Returns the new state. */
int throttle_fail(db *d, const char *subject, int64_t now_ms, int lock_at, int64_t lock_ms, throttle *out, err *e);
int throttle_clear(db *d, const char *subject, err *e);
/* The delay before answering a failed login after `failures` failures. */
int64_t throttle_delay_ms(int failures);

#endif
