/* session.c - sessions and failed-login throttling. */
#include "session.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "vault.h"

#define WINDOW_MS (15 * 60 * 1000LL)
/* last_seen_at is written at most this often per session: a request should
 * not cost a disk write just to say "still here" */
#define TOUCH_EVERY_MS (60 * 1000LL)

static int random_token(char out[SESSION_TOKEN_LEN], err *e)
{
    uint8_t raw[32];
    if (crypto_random(raw, sizeof raw)) return err_set(e, ERR_INTERNAL, "no randomness available");
    crypto_hex(raw, sizeof raw, out);
    return 0;
}

static void csrf_of(const vault *v, const char *token_hash, char csrf[SESSION_TOKEN_LEN])
{
    vault_index(v, "csrf", token_hash, csrf);
}

int session_create(db *d, const cfg *c, const vault *v, int64_t user_id, const char *source, const char *user_agent,
                   char token[SESSION_TOKEN_LEN], char csrf[SESSION_TOKEN_LEN], int64_t *id, char expires[25], err *e)
{
    if (random_token(token, e)) return e->code;
    char th[SHA256_HEX_LEN], ch[SHA256_HEX_LEN], now[25];
    crypto_sha256_hex(token, strlen(token), th);
    csrf_of(v, th, csrf);
    crypto_sha256_hex(csrf, strlen(csrf), ch);
    int64_t ms = db_now_ms();
    db_format_time(ms, now);
    db_format_time(ms + c->session_max_hours * 3600 * 1000, expires);
    char ua[256];
    snprintf(ua, sizeof ua, "%s", user_agent ? user_agent : "");
    int rc = db_run(d, e,
                    "INSERT INTO sessions (token_hash, csrf_hash, user_id, created_at, last_seen_at, expires_at, source, user_agent) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    "ssisssss", th, ch, user_id, now, now, expires, source, ua);
    if (!rc && id) *id = db_last_id(d);
    return rc;
}

int session_lookup(db *d, const cfg *c, const char *token, principal *out, err *e)
{
    memset(out, 0, sizeof *out);
    if (strlen(token) != SESSION_TOKEN_LEN - 1) return err_set(e, ERR_UNAUTH, "invalid session");
    char th[SHA256_HEX_LEN];
    crypto_sha256_hex(token, strlen(token), th);
    db_stmt *s = db_prepare(d,
                            "SELECT s.id, s.last_seen_at, s.expires_at, s.revoked_at, u.id, u.username, u.role, u.status "
                            "FROM sessions s JOIN staff_users u ON u.id = s.user_id WHERE s.token_hash = ?",
                            e);
    if (!s) return e->code;
    db_bind_text(s, 1, th);
    int rc = db_step(d, s, e);
    if (rc < 0) return rc;
    if (rc != DB_ROW) return err_set(e, ERR_UNAUTH, "invalid session");
    int64_t sid = db_col_int(s, 0), seen = 0, exp = 0, now = db_now_ms();
    db_parse_time(db_col_text(s, 1), &seen);
    db_parse_time(db_col_text(s, 2), &exp);
    int revoked = !db_col_is_null(s, 3);
    out->kind = PRINCIPAL_SESSION;
    out->id = db_col_int(s, 4);
    out->session_id = sid;
    snprintf(out->name, sizeof out->name, "%s", db_col_text(s, 5));
    snprintf(out->role, sizeof out->role, "%s", db_col_text(s, 6));
    int disabled = strcmp(db_col_text(s, 7), "active") != 0;
    db_done(s);
    if (revoked) return err_set(e, ERR_UNAUTH, "the session was ended");
    if (disabled) return err_set(e, ERR_UNAUTH, "the account is disabled");
    if (now >= exp) return err_set(e, ERR_UNAUTH, "the session expired");
    /* last_seen_at is written only every touch interval, so a session is
     * idle once that much more has passed: it ends up to one interval late,
     * never early */
    int64_t idle_ms = c->session_idle_min * 60 * 1000;
    int64_t touch = idle_ms / 4 < TOUCH_EVERY_MS ? idle_ms / 4 : TOUCH_EVERY_MS;
    if (now - seen >= idle_ms + touch) {
        char t[25];
        db_now(t);
        db_run(d, e, "UPDATE sessions SET revoked_at = ?, revoked_why = 'idle' WHERE id = ?", "si", t, sid);
        return err_set(e, ERR_UNAUTH, "the session ended after %lld idle minutes", (long long)c->session_idle_min);
    }
    if (now - seen >= touch) {
        char t[25];
        db_format_time(now, t);
        err ignore;
        db_run(d, &ignore, "UPDATE sessions SET last_seen_at = ? WHERE id = ?", "si", t, sid);
    }
    return 0;
}

int session_csrf(db *d, const vault *v, int64_t session_id, char csrf[SESSION_TOKEN_LEN], err *e)
{
    db_stmt *s = db_prepare(d, "SELECT token_hash FROM sessions WHERE id = ? AND revoked_at IS NULL", e);
    if (!s) return e->code;
    db_bind_int(s, 1, session_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        csrf_of(v, db_col_text(s, 0), csrf);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_set(e, ERR_NOTFOUND, "no live session");
    }
    db_done(s);
    return rc;
}

int session_csrf_ok(db *d, int64_t session_id, const char *csrf)
{
    if (!csrf || strlen(csrf) != SESSION_TOKEN_LEN - 1) return 0;
    err e;
    db_stmt *s = db_prepare(d, "SELECT csrf_hash FROM sessions WHERE id = ?", &e);
    if (!s) return 0;
    db_bind_int(s, 1, session_id);
    int ok = 0;
    if (db_step(d, s, &e) == DB_ROW) {
        char ch[SHA256_HEX_LEN];
        crypto_sha256_hex(csrf, strlen(csrf), ch);
        ok = strlen(db_col_text(s, 0)) == SHA256_HEX_LEN - 1 && crypto_equal(ch, db_col_text(s, 0), SHA256_HEX_LEN - 1);
    }
    db_done(s);
    return ok;
}

int session_revoke(db *d, int64_t id, const char *why, err *e)
{
    char now[25];
    db_now(now);
    int rc = db_run(d, e, "UPDATE sessions SET revoked_at = ?, revoked_why = ? WHERE id = ? AND revoked_at IS NULL", "ssi",
                    now, why, id);
    if (!rc && db_changes(d) == 0) rc = err_set(e, ERR_NOTFOUND, "no live session %lld", (long long)id);
    return rc;
}

int session_revoke_user(db *d, int64_t user_id, int64_t keep, const char *why, err *e)
{
    char now[25];
    db_now(now);
    return db_run(d, e,
                  "UPDATE sessions SET revoked_at = ?, revoked_why = ? WHERE user_id = ? AND id != ? AND revoked_at IS NULL",
                  "ssii", now, why, user_id, keep);
}

/* ------------------------------------------------------------- throttling */

int throttle_get(db *d, const char *subject, int64_t now_ms, throttle *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_stmt *s = db_prepare(d, "SELECT failures, window_start, locked_until FROM login_failures WHERE subject = ?", e);
    if (!s) return e->code;
    db_bind_text(s, 1, subject);
    int rc = db_step(d, s, e);
    if (rc < 0) return rc;
    if (rc == DB_ROW) {
        int64_t start = 0, locked = 0;
        db_parse_time(db_col_text(s, 1), &start);
        if (!db_col_is_null(s, 2)) db_parse_time(db_col_text(s, 2), &locked);
        if (now_ms - start < WINDOW_MS) out->failures = (int)db_col_int(s, 0);
        if (locked > now_ms) out->locked_until = locked;
    }
    db_done(s);
    return 0;
}

int throttle_fail(db *d, const char *subject, int64_t now_ms, int lock_at, int64_t lock_ms, throttle *out, err *e)
{
    throttle t;
    int rc = throttle_get(d, subject, now_ms, &t, e);
    if (rc) return rc;
    char now[25], until[25] = "";
    db_format_time(now_ms, now);
    t.failures++;
    if (t.failures >= lock_at) {
        t.locked_until = now_ms + lock_ms;
        db_format_time(t.locked_until, until);
    }
    /* a new window starts with the first failure after the old one ended */
    rc = db_run(d, e,
                "INSERT INTO login_failures (subject, failures, window_start, locked_until) VALUES (?, 1, ?, ?) "
                "ON CONFLICT (subject) DO UPDATE SET failures = ?, locked_until = ?, "
                "window_start = CASE WHEN ? = 1 THEN excluded.window_start ELSE login_failures.window_start END",
                "sssisi", subject, now, until[0] ? until : NULL, (int64_t)t.failures, until[0] ? until : NULL,
                (int64_t)(t.failures == 1));
    if (out) *out = t;
    return rc;
}

int throttle_clear(db *d, const char *subject, err *e)
{
    return db_run(d, e, "DELETE FROM login_failures WHERE subject = ?", "s", subject);
}

int64_t throttle_delay_ms(int failures)
{
    if (failures < THROTTLE_DELAY_FROM) return 0;
    int64_t ms = 1000LL << (failures - THROTTLE_DELAY_FROM);
    return ms > 8000 ? 8000 : ms;
}
