/* api_auth.c - console login and logout, the caller's own profile,
 * password and sessions.
 *
 * Login hashes the password on a worker thread (scrypt takes tens of
 * milliseconds by design) and answers failures late, more so after each
 * failure (session.h); an unknown user name costs the same work as a wrong
 * password, so the answer does not tell which it was. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "bg.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "users.h"
#include "vault.h"

#define ACCOUNT_LOCK_MS (30 * 60 * 1000LL)
#define ADDRESS_LOCK_MS (15 * 60 * 1000LL)

/* A hash of a password nobody has, to spend the same time on unknown names. */
static char g_dummy_hash[USERS_HASH_MAX];

typedef struct login {
    http_req *q;
    char username[40];
    char password[260];
    char user_agent[256];
    char stored[USERS_HASH_MAX];
    int known;
    int ok;
    struct event *later;
    int status;
    jw reply;
} login;

static const char *evhttp_find_header_ua(http_req *q) { return http_header(q, "User-Agent"); }


static void login_work(void *arg)
{
    login *l = arg;
    l->ok = users_password_verify(l->password, l->stored) && l->known;
    memset(l->password, 0, sizeof l->password);
}

static void send_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    login *l = arg;
    http_reply_json(l->q, l->status, &l->reply);
    event_free(l->later);
    free(l);
}

static void fail_reply(login *l, int status, const char *code, const char *message, int64_t delay_ms)
{
    jw_init(&l->reply, 0);
    jw_obj_open(&l->reply);
    jw_key(&l->reply, "error");
    jw_obj_open(&l->reply);
    jw_kv_str(&l->reply, "code", code);
    jw_kv_str(&l->reply, "message", message);
    jw_kv_str(&l->reply, "field", "password");
    jw_obj_close(&l->reply);
    jw_obj_close(&l->reply);
    l->status = status;
    if (server_draining(http_server(l->q))) delay_ms = 0; /* no timers once the loop stops */
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
    l->later = evtimer_new(server_base(http_server(l->q)), send_later, l);
    if (!l->later || evtimer_add(l->later, &tv)) {
        if (l->later) event_free(l->later);
        http_reply_json(l->q, status, &l->reply);
        free(l);
    }
}

static void login_done(void *arg)
{
    login *l = arg;
    http_req *q = l->q;
    server *s = http_server(q);
    db *d = server_db(s);
    err e;
    int64_t now = db_now_ms();
    char subj_user[64], subj_addr[96];
    snprintf(subj_user, sizeof subj_user, "user:%s", l->username);
    snprintf(subj_addr, sizeof subj_addr, "addr:%s", http_source(q));
    jv_arena *a = http_arena(q);
    if (!l->ok) {
        throttle tu = {0}, ta = {0};
        int rc = db_begin(d, &e);
        if (!rc) rc = throttle_fail(d, subj_user, now, THROTTLE_LOCK_ACCOUNT, ACCOUNT_LOCK_MS, &tu, &e);
        if (!rc) rc = throttle_fail(d, subj_addr, now, THROTTLE_LOCK_ADDRESS, ADDRESS_LOCK_MS, &ta, &e);
        if (!rc && l->known && tu.failures == THROTTLE_LOCK_ACCOUNT) {
            char until[25];
            db_format_time(tu.locked_until, until);
            rc = db_run(d, &e, "UPDATE staff_users SET locked_until = ?, failed_logins = ? WHERE username = ?", "sis",
                        until, (int64_t)tu.failures, l->username);
            jv *detail = jv_obj(a);
            jv_obj_set_str(a, detail, "locked_until", until);
            audit_event lock = {.action = "auth.locked", .object_type = "user", .object_id = l->username, .detail = detail};
            if (!rc) rc = http_audit(q, &lock, &e);
            log_msg(LOG_WARN, "account_locked", "user %s locked until %s after %d failed logins", l->username, until,
                    tu.failures);
        }
        jv *detail = jv_obj(a);
        jv_obj_set_str(a, detail, "username", l->username);
        jv_obj_set_int(a, detail, "failures", tu.failures);
        audit_event ev = {.action = "auth.login_failed", .object_type = "user", .object_id = l->username, .detail = detail};
        if (!rc) rc = http_audit(q, &ev, &e);
        if (!rc) rc = db_commit(d, &e);
        if (rc) {
            db_rollback(d);
            log_msg(LOG_ERROR, "login_record_failed", "%s", e.msg);
        }
        int f = tu.failures > ta.failures ? tu.failures : ta.failures;
        fail_reply(l, 401, "invalid_credentials", "wrong user name or password", throttle_delay_ms(f));
        return;
    }
    /* success */
    char token[SESSION_TOKEN_LEN], csrf[SESSION_TOKEN_LEN], expires[25];
    int64_t sid = 0;
    staff_user u;
    const char *ua = l->user_agent;
    int rc = users_get(d, l->username, 0, &u, &e);
    if (!rc) rc = db_begin(d, &e);
    if (!rc) {
        rc = session_create(d, server_cfg(s), server_vault(s), u.id, http_source(q), ua, token, csrf, &sid, expires, &e);
        char now_s[25];
        db_now(now_s);
        if (!rc) rc = db_run(d, &e, "UPDATE staff_users SET last_login_at = ?, failed_logins = 0, locked_until = NULL WHERE id = ?",
                             "si", now_s, u.id);
        if (!rc) rc = throttle_clear(d, subj_user, &e);
        /* the principal is now this user, for the audit record */
        principal who = {.kind = PRINCIPAL_SESSION, .id = u.id, .session_id = sid};
        snprintf(who.name, sizeof who.name, "%s", u.username);
        snprintf(who.role, sizeof who.role, "%s", u.role);
        http_set_who(q, &who);
        jv *detail = jv_obj(a);
        jv_obj_set_int(a, detail, "session", sid);
        audit_event ev = {.action = "auth.login", .object_type = "user", .object_id = u.username, .detail = detail};
        if (!rc) rc = http_audit(q, &ev, &e);
        if (!rc) rc = db_commit(d, &e);
        if (rc) db_rollback(d);
    }
    if (rc) {
        http_reply_error(q, 500, &e);
        free(l);
        return;
    }
    char cookie[256];
    snprintf(cookie, sizeof cookie, "bb_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", token,
             (long long)server_cfg(s)->session_max_hours * 3600, server_tls(s) ? "; Secure" : "");
    http_add_header(q, "Set-Cookie", cookie);
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_str(&w, "username", u.username);
    jw_kv_str(&w, "display_name", u.display_name);
    jw_kv_str(&w, "role", u.role);
    jw_kv_str(&w, "csrf_token", csrf);
    jw_kv_str(&w, "expires_at", expires);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    free(l);
}

int api_auth_login(http_req *q)
{
    static const http_field spec[] = {{"username", 's', 0}, {"password", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *user = http_str(body, "username"), *pw = http_str(body, "password");
    if (!user || !user[0]) {
        http_reply_errf(q, 400, "missing_field", "username", "username is required");
        return HTTP_DONE;
    }
    if (!pw || !pw[0] || strlen(pw) > 256) {
        http_reply_errf(q, 400, "missing_field", "password", "password is required (at most 256 characters)");
        return HTTP_DONE;
    }
    server *s = http_server(q);
    db *d = server_db(s);
    err e;
    if (!server_vault(s)) {
        http_reply_errf(q, 503, "unavailable", "", "logins need the key file");
        return HTTP_DONE;
    }
    int64_t now = db_now_ms();
    char subj[96];
    snprintf(subj, sizeof subj, "addr:%s", http_source(q));
    throttle ta;
    if (throttle_get(d, subj, now, &ta, &e) == 0 && ta.locked_until) {
        char secs[32];
        snprintf(secs, sizeof secs, "%lld", (long long)((ta.locked_until - now) / 1000 + 1));
        http_add_header(q, "Retry-After", secs);
        http_reply_errf(q, 429, "too_many_attempts", "", "too many failed logins from this address; try again in %s s", secs);
        return HTTP_DONE;
    }
    /* a lock is answered the same way whether the name exists or not:
     * the answer must not tell which names are real */
    char subj_user[64];
    snprintf(subj_user, sizeof subj_user, "user:%s", user);
    throttle tu;
    if (throttle_get(d, subj_user, now, &tu, &e) == 0 && tu.locked_until) {
        char until[25];
        db_format_time(tu.locked_until, until);
        http_reply_errf(q, 423, "account_locked", "username",
                        "the account is locked after repeated failed logins until %s (an administrator can unlock it)", until);
        return HTTP_DONE;
    }
    login *l = calloc(1, sizeof *l);
    if (!l) {
        http_reply_errf(q, 503, "unavailable", "", "out of memory");
        return HTTP_DONE;
    }
    l->q = q;
    const char *ua = evhttp_find_header_ua(q);
    snprintf(l->user_agent, sizeof l->user_agent, "%s", ua ? ua : "");
    snprintf(l->username, sizeof l->username, "%s", user);
    snprintf(l->password, sizeof l->password, "%s", pw);
    staff_user u;
    if (users_get(d, user, 0, &u, &e) == 0) {
        int64_t until = 0;
        if (u.locked_until[0] && db_parse_time(u.locked_until, &until) == 0 && until > now) {
            free(l);
            http_reply_errf(q, 423, "account_locked", "username",
                            "the account is locked after repeated failed logins until %s (an administrator can unlock it)",
                            u.locked_until);
            return HTTP_DONE;
        }
        l->known = strcmp(u.status, "active") == 0;
        snprintf(l->stored, sizeof l->stored, "%s", u.password_hash);
    }
    if (!l->known) {
        if (!g_dummy_hash[0]) users_password_hash("no one has this password 7#Zq", g_dummy_hash, &e);
        snprintf(l->stored, sizeof l->stored, "%s", g_dummy_hash);
    }
    if (bg_submit(server_bg(s), login_work, login_done, l)) {
        free(l);
        http_reply_errf(q, 503, "unavailable", "", "too many logins in progress; try again");
        return HTTP_DONE;
    }
    return HTTP_DEFERRED;
}

int api_auth_logout(http_req *q)
{
    const principal *p = http_who(q);
    if (p->kind == PRINCIPAL_SESSION) {
        db *d = server_db(http_server(q));
        err e;
        int rc = db_begin(d, &e);
        if (!rc) rc = session_revoke(d, p->session_id, "logout", &e);
        audit_event ev = {.action = "auth.logout", .object_type = "user", .object_id = p->name};
        if (!rc) rc = http_audit(q, &ev, &e);
        if (!rc) rc = db_commit(d, &e);
        if (rc) {
            db_rollback(d);
            http_reply_error(q, 0, &e);
            return HTTP_DONE;
        }
        http_add_header(q, "Set-Cookie", "bb_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    } else {
        http_nothing_changed(q);
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_bool(&w, "logged_out", p->kind == PRINCIPAL_SESSION);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

int api_auth_me(http_req *q)
{
    const principal *p = http_who(q);
    server *s = http_server(q);
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    char label[96];
    auth_label(p, label, sizeof label);
    jw_kv_str(&w, "principal", label);
    jw_kv_str(&w, "role", p->role);
    if (p->kind == PRINCIPAL_SESSION) {
        char csrf[SESSION_TOKEN_LEN];
        err e;
        if (server_vault(s) && session_csrf(server_db(s), server_vault(s), p->session_id, csrf, &e) == 0)
            jw_kv_str(&w, "csrf_token", csrf);
        staff_user u;
        if (users_get(server_db(s), NULL, p->id, &u, &e) == 0) {
            jw_kv_str(&w, "username", u.username);
            jw_kv_str(&w, "display_name", u.display_name);
        }
    }
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

typedef struct pwchange {
    http_req *q;
    staff_user u;
    char current[260], next[260];
    char hash[USERS_HASH_MAX];
    int ok;
    err e;
} pwchange;

static void pw_work(void *arg)
{
    pwchange *p = arg;
    p->ok = users_password_verify(p->current, p->u.password_hash);
    if (p->ok && users_password_hash(p->next, p->hash, &p->e)) p->ok = -1;
    memset(p->current, 0, sizeof p->current);
    memset(p->next, 0, sizeof p->next);
}

static void pw_done(void *arg)
{
    pwchange *p = arg;
    http_req *q = p->q;
    db *d = server_db(http_server(q));
    const principal *who = http_who(q);
    err e;
    char subj[64];
    snprintf(subj, sizeof subj, "user:%s", p->u.username);
    if (p->ok != 1) {
        if (p->ok == -1) {
            http_reply_error(q, 500, &p->e);
        } else {
            /* guessing one's own current password is throttled like a login */
            throttle t;
            int rc = db_begin(d, &e);
            if (!rc) rc = throttle_fail(d, subj, db_now_ms(), THROTTLE_LOCK_ACCOUNT, 30 * 60 * 1000LL, &t, &e);
            if (!rc) rc = db_commit(d, &e);
            if (rc) db_rollback(d);
            http_nothing_changed(q);
            http_reply_errf(q, 403, "invalid_credentials", "current", "the current password is wrong");
        }
        free(p);
        return;
    }
    int rc = db_begin(d, &e);
    if (!rc) rc = users_set_password(d, p->u.username, p->hash, &e);
    /* every other session of this user ends: a stolen one dies with the old password */
    if (!rc) rc = session_revoke_user(d, p->u.id, who->session_id, "password changed", &e);
    if (!rc) rc = throttle_clear(d, subj, &e);
    audit_event ev = {.action = "user.password", .object_type = "user", .object_id = p->u.username};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        db_rollback(d);
        http_reply_error(q, 0, &e);
    } else {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_bool(&w, "changed", 1);
        jw_obj_close(&w);
        http_reply_json(q, 200, &w);
    }
    free(p);
}

int api_auth_password(http_req *q)
{
    const principal *p = http_who(q);
    if (p->kind != PRINCIPAL_SESSION) {
        http_reply_errf(q, 400, "not_a_user", "", "only a logged-in staff user can change a password here; tokens have none");
        return HTTP_DONE;
    }
    static const http_field spec[] = {{"current", 's', 0}, {"new", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *cur = http_str(body, "current"), *nw = http_str(body, "new");
    if (!cur || !nw || strlen(cur) > 256 || strlen(nw) > 256) {
        http_reply_errf(q, 400, "missing_field", !cur ? "current" : "new", "give the current and the new password");
        return HTTP_DONE;
    }
    db *d = server_db(http_server(q));
    err e;
    pwchange *pc = calloc(1, sizeof *pc);
    if (!pc) {
        http_reply_errf(q, 503, "unavailable", "", "out of memory");
        return HTTP_DONE;
    }
    pc->q = q;
    if (users_get(d, NULL, p->id, &pc->u, &e) || users_password_check(nw, pc->u.username, &e)) {
        free(pc);
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    char subj[64];
    snprintf(subj, sizeof subj, "user:%s", pc->u.username);
    throttle t;
    if (throttle_get(d, subj, db_now_ms(), &t, &e) == 0 && t.locked_until) {
        free(pc);
        http_reply_errf(q, 423, "account_locked", "current", "too many wrong passwords: try again later");
        return HTTP_DONE;
    }
    snprintf(pc->current, sizeof pc->current, "%s", cur);
    snprintf(pc->next, sizeof pc->next, "%s", nw);
    /* two scrypt runs: off the event loop */
    if (bg_submit(server_bg(http_server(q)), pw_work, pw_done, pc)) {
        free(pc);
        http_reply_errf(q, 503, "unavailable", "", "busy; try again");
        return HTTP_DONE;
    }
    return HTTP_DEFERRED;
}

/* Sessions of one user as {"data": [...]}. */
void api_write_sessions(http_req *q, int64_t user_id, int64_t current)
{
    db *d = server_db(http_server(q));
    err e;
    db_stmt *s = db_prepare(d,
                            "SELECT id, created_at, last_seen_at, expires_at, source, user_agent, revoked_at, revoked_why "
                            "FROM sessions WHERE user_id = ? ORDER BY id DESC LIMIT 100",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return;
    }
    db_bind_int(s, 1, user_id);
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_key(&w, "data");
    jw_arr_open(&w);
    while (db_step(d, s, &e) == DB_ROW) {
        jw_obj_open(&w);
        jw_kv_int(&w, "id", db_col_int(s, 0));
        jw_kv_str(&w, "created_at", db_col_text(s, 1));
        jw_kv_str(&w, "last_seen_at", db_col_text(s, 2));
        jw_kv_str(&w, "expires_at", db_col_text(s, 3));
        jw_kv_str(&w, "source", db_col_text(s, 4));
        jw_kv_str(&w, "user_agent", db_col_text(s, 5));
        jw_kv_str(&w, "revoked_at", db_col_is_null(s, 6) ? NULL : db_col_text(s, 6));
        jw_kv_str(&w, "revoked_why", db_col_is_null(s, 7) ? NULL : db_col_text(s, 7));
        jw_kv_bool(&w, "current", db_col_int(s, 0) == current);
        jw_obj_close(&w);
    }
    jw_arr_close(&w);
    jw_kv_str(&w, "next_cursor", NULL);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
}

int api_auth_sessions(http_req *q)
{
    const principal *p = http_who(q);
    if (p->kind != PRINCIPAL_SESSION) {
        http_reply_errf(q, 400, "not_a_user", "", "only a logged-in staff user has sessions");
        return HTTP_DONE;
    }
    api_write_sessions(q, p->id, p->session_id);
    return HTTP_DONE;
}

/* Ends one session: your own (auth.self), or anyone's with user.write. */
int api_auth_session_delete(http_req *q)
{
    const principal *p = http_who(q);
    server *s = http_server(q);
    db *d = server_db(s);
    err e;
    char *end;
    long long id = strtoll(http_param(q, "id"), &end, 10);
    if (*end || id <= 0) {
        http_reply_errf(q, 400, "invalid_parameter", "id", "a session id is a positive number");
        return HTTP_DONE;
    }
    int64_t owner = 0;
    int rc = db_get_int(d, &e, &owner, "SELECT user_id FROM sessions WHERE id = ?", "i", (int64_t)id);
    /* someone else's session does not exist for you (no probing by id) */
    int mine = p->kind == PRINCIPAL_SESSION && owner == p->id;
    if (rc == 0 && !mine && auth_authorize(d, p, "user.write", &e) != 0) rc = ERR_NOTFOUND;
    if (rc == ERR_NOTFOUND) {
        http_reply_errf(q, 404, "not_found", "id", "no session %lld", id);
        return HTTP_DONE;
    }
    if (!rc) rc = db_begin(d, &e);
    if (!rc) rc = session_revoke(d, id, mine ? "ended by its user" : "ended by an administrator", &e);
    char oid[32];
    snprintf(oid, sizeof oid, "%lld", id);
    audit_event ev = {.action = "session.revoke", .object_type = "session", .object_id = oid};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        if (db_in_tx(d)) db_rollback(d);
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_bool(&w, "revoked", 1);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}
