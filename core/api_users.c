/* api_users.c - staff accounts, roles with their permissions and field
 * policies, and other users' sessions (administration). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "privacy.h"
#include "server.h"
#include "session.h"
#include "users.h"
#include "vault.h"



/* Nobody hands out more than they hold: a role can be given to a user, or
 * a permission to a role, only by someone who has every permission in it. */
static int may_grant_role(http_req *q, db *d, const char *role, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT permission FROM role_permissions WHERE role = ?", e);
    if (!s) return e->code;
    db_bind_text(s, 1, role);
    char perms[128][48];
    int n = 0;
    while (n < 128 && db_step(d, s, e) == DB_ROW) snprintf(perms[n++], 48, "%s", db_col_text(s, 0));
    db_done(s);
    for (int i = 0; i < n; i++)
        if (auth_authorize(d, http_who(q), perms[i], e))
            return err_field(e, ERR_FORBIDDEN, "forbidden", "role",
                             "you cannot give role %s: it has permission %s, which you do not have", role, perms[i]);
    return 0;
}

static int user_json(http_req *q, const staff_user *u, jv **out)
{
    err e;
    server *s = http_server(q);
    if (users_to_jv(server_db(s), server_vault(s), u, http_arena(q), out, &e)) {
        http_reply_error(q, 500, &e);
        return -1;
    }
    return 0;
}

static int user_item(void *ud, db *d, jv_arena *a, int64_t id, jv **out, err *e)
{
    staff_user u;
    int rc = users_get(d, NULL, id, &u, e);
    if (!rc) rc = users_to_jv(d, server_vault(http_server(ud)), &u, a, out, e);
    return rc;
}

int api_users_list(http_req *q)
{
    int64_t limit;
    const char *cursor;
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    int64_t after = 0;
    if (cursor) {
        char *end;
        after = strtoll(cursor, &end, 10);
        if (*end || after < 0) {
            http_reply_errf(q, 400, "invalid_parameter", "cursor", "cursor is not one this server gave out");
            return HTTP_DONE;
        }
    }
    const char *role = http_query(q, "role"), *status = http_query(q, "status");
    db *d = server_db(http_server(q));
    err e;
    db_stmt *s = db_prepare(d,
                            "SELECT id FROM staff_users WHERE id > ? AND (? IS NULL OR role = ?) AND (? IS NULL OR status = ?) "
                            "ORDER BY id LIMIT ?",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_int(s, 1, after);
    db_bind_text(s, 2, role);
    db_bind_text(s, 3, role);
    db_bind_text(s, 4, status);
    db_bind_text(s, 5, status);
    db_bind_int(s, 6, limit + 1);
    http_reply_id_page(q, d, s, limit, "user", user_item, q);
    return HTTP_DONE;
}

int api_users_get(http_req *q)
{
    staff_user u;
    err e;
    jv *o;
    if (users_get(server_db(http_server(q)), http_param(q, "username"), 0, &u, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    if (user_json(q, &u, &o)) return HTTP_DONE;
    http_reply_resource(q, 200, "user", o);
    return HTTP_DONE;
}

int api_users_create(http_req *q)
{
    static const http_field spec[] = {{"username", 's', 1}, {"display_name", 's', 0}, {"role", 's', 1}, {"password", 's', 0},
                                      {"email", 's', 0},    {"phone", 's', 0},        {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *name = http_str(body, "username"), *role = http_str(body, "role"), *pw = http_str(body, "password");
    if (!name || !role) {
        http_reply_errf(q, 400, "missing_field", !name ? "username" : "role", "username and role are required");
        return HTTP_DONE;
    }
    server *s = http_server(q);
    db *d = server_db(s);
    err e;
    if (may_grant_role(q, d, role, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    char generated[32] = "", hash[USERS_HASH_MAX];
    if (!pw) {
        users_password_generate(generated);
        pw = generated;
    }
    if (users_password_check(pw, name, &e) || users_password_hash(pw, hash, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    char by[96];
    auth_label(http_who(q), by, sizeof by);
    int64_t id;
    staff_user u;
    jv *o = NULL;
    int rc = db_begin(d, &e);
    if (!rc)
        rc = users_create(d, server_vault(s), name, http_str(body, "display_name"), role, hash, http_str(body, "email"),
                          http_str(body, "phone"), by, &id, &e);
    if (!rc) rc = users_get(d, NULL, id, &u, &e);
    if (!rc && user_json(q, &u, &o)) {
        db_rollback(d);
        return HTTP_DONE;
    }
    audit_event ev = {.action = "user.create", .object_type = "user", .object_id = name, .after = o};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    /* a generated password is shown this once */
    if (generated[0]) jv_obj_set_str(http_arena(q), o, "password", generated);
    http_reply_resource(q, 201, "user", o);
    return HTTP_DONE;
}

int api_users_update(http_req *q)
{
    static const http_field spec[] = {{"display_name", 's', 0}, {"role", 's', 0}, {"status", 's', 0},
                                      {"email", 's', 0},        {"phone", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    server *s = http_server(q);
    db *d = server_db(s);
    vault *v = server_vault(s);
    err e;
    staff_user u;
    jv *before = NULL, *after = NULL;
    const char *name = http_param(q, "username");
    if (users_get(d, name, 0, &u, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    if (user_json(q, &u, &before)) return HTTP_DONE;
    const char *status = http_str(body, "status"), *role = http_str(body, "role");
    if (status && strcmp(status, "active") && strcmp(status, "disabled")) {
        http_reply_errf(q, 400, "invalid_field", "status", "status is active or disabled");
        return HTTP_DONE;
    }
    if (role && !auth_role_valid(d, role)) {
        http_reply_errf(q, 400, "invalid_role", "role", "unknown role '%s'", role);
        return HTTP_DONE;
    }
    if (role && may_grant_role(q, d, role, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    int rc = db_begin(d, &e);
    const char *dn = http_str(body, "display_name");
    if (!rc && dn) rc = db_run(d, &e, "UPDATE staff_users SET display_name = ? WHERE id = ?", "si", dn, u.id);
    if (!rc && role) rc = db_run(d, &e, "UPDATE staff_users SET role = ? WHERE id = ?", "si", role, u.id);
    if (!rc && status) {
        rc = db_run(d, &e, "UPDATE staff_users SET status = ? WHERE id = ?", "si", status, u.id);
        if (!rc && !strcmp(status, "disabled")) rc = session_revoke_user(d, u.id, 0, "account disabled", &e);
    }
    /* a role change ends the user's sessions: they act with the old role */
    if (!rc && role && strcmp(role, u.role)) rc = session_revoke_user(d, u.id, 0, "role changed", &e);
    static const char *const pii[][2] = {{"email", "staff_users.email"}, {"phone", "staff_users.phone"}};
    for (int i = 0; i < 2 && !rc; i++) {
        const jv *val = jv_get(body, pii[i][0]);
        if (!val) continue;
        buf enc = {0};
        if (val->kind == JV_STR && val->u.str.len) {
            if (!v) rc = err_set(&e, ERR_INTERNAL, "no key file open");
            else rc = vault_encrypt(v, pii[i][1], val->u.str.s, val->u.str.len, &enc, &e);
        }
        if (!rc && i == 0)
            rc = db_run(d, &e, "UPDATE staff_users SET email_enc = ? WHERE id = ?", "si", enc.len ? buf_cstr(&enc) : NULL, u.id);
        if (!rc && i == 1)
            rc = db_run(d, &e, "UPDATE staff_users SET phone_enc = ? WHERE id = ?", "si", enc.len ? buf_cstr(&enc) : NULL, u.id);
        buf_free(&enc);
    }
    if (!rc) rc = users_get(d, NULL, u.id, &u, &e);
    if (!rc && user_json(q, &u, &after)) {
        db_rollback(d);
        return HTTP_DONE;
    }
    audit_event ev = {.action = "user.update", .object_type = "user", .object_id = name, .before = before, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "user", after);
    return HTTP_DONE;
}

int api_users_unlock(http_req *q)
{
    db *d = server_db(http_server(q));
    err e;
    const char *name = http_param(q, "username");
    int rc = db_begin(d, &e);
    if (!rc) rc = users_unlock(d, name, &e);
    audit_event ev = {.action = "user.unlock", .object_type = "user", .object_id = name};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_bool(&w, "unlocked", 1);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

int api_users_password(http_req *q)
{
    static const http_field spec[] = {{"password", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, HTTP_BODY_OPTIONAL)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    err e;
    const char *name = http_param(q, "username");
    staff_user u;
    if (users_get(d, name, 0, &u, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    char generated[32] = "", hash[USERS_HASH_MAX];
    const char *pw = http_str(body, "password");
    if (!pw) {
        users_password_generate(generated);
        pw = generated;
    }
    if (users_password_check(pw, name, &e) || users_password_hash(pw, hash, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    int rc = db_begin(d, &e);
    if (!rc) rc = users_set_password(d, name, hash, &e);
    if (!rc) rc = session_revoke_user(d, u.id, 0, "password reset by an administrator", &e);
    audit_event ev = {.action = "user.password_reset", .object_type = "user", .object_id = name};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_bool(&w, "reset", 1);
    if (generated[0]) jw_kv_str(&w, "password", generated);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

int api_users_sessions(http_req *q)
{
    staff_user u;
    err e;
    if (users_get(server_db(http_server(q)), http_param(q, "username"), 0, &u, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    api_write_sessions(q, u.id, 0);
    return HTTP_DONE;
}

/* ------------------------------------------------------------------ roles */

static int role_json(db *d, jv_arena *a, const char *name, jv **out, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT description, builtin FROM roles WHERE name = ?", e);
    if (!s) return e->code;
    db_bind_text(s, 1, name);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_field(e, ERR_NOTFOUND, "not_found", "name", "no role %s", name);
    }
    jv *o = jv_obj(a);
    jv_obj_set_str(a, o, "name", name);
    jv_obj_set_str(a, o, "description", db_col_text(s, 0));
    jv_obj_set_bool(a, o, "builtin", (int)db_col_int(s, 1));
    db_done(s);
    jv *perms = jv_arr(a);
    s = db_prepare(d, "SELECT permission FROM role_permissions WHERE role = ? ORDER BY permission", e);
    if (!s) return e->code;
    db_bind_text(s, 1, name);
    while (db_step(d, s, e) == DB_ROW) jv_arr_push(a, perms, jv_str(a, db_col_text(s, 0)));
    jv_obj_set(a, o, "permissions", perms);
    jv *fp = jv_obj(a);
    s = db_prepare(d, "SELECT resource, field, level FROM field_policies WHERE role = ? ORDER BY resource, field", e);
    if (!s) return e->code;
    db_bind_text(s, 1, name);
    while (db_step(d, s, e) == DB_ROW) {
        char key[96];
        snprintf(key, sizeof key, "%s.%s", db_col_text(s, 0), db_col_text(s, 1));
        jv_obj_set_str(a, fp, key, db_col_text(s, 2));
    }
    jv_obj_set(a, o, "field_policies", fp);
    *out = o;
    return 0;
}

int api_roles_list(http_req *q)
{
    db *d = server_db(http_server(q));
    err e;
    db_stmt *s = db_prepare(d, "SELECT name FROM roles ORDER BY name", &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    char names[64][32];
    int n = 0;
    while (n < 64 && db_step(d, s, &e) == DB_ROW) snprintf(names[n++], 32, "%s", db_col_text(s, 0));
    db_done(s);
    jv *list = jv_arr(http_arena(q));
    for (int i = 0; i < n; i++) {
        jv *o;
        if (role_json(d, http_arena(q), names[i], &o, &e) == 0) jv_arr_push(http_arena(q), list, o);
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_key(&w, "data");
    jw_jv(&w, list);
    jw_kv_str(&w, "next_cursor", NULL);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

/* Writes permissions and field policies of a role from a request body. */
static int write_role(http_req *q, db *d, const char *name, const jv *body, err *e)
{
    const jv *perms = jv_get(body, "permissions"), *fp = jv_get(body, "field_policies");
    if (perms) {
        if (perms->kind != JV_ARR) return err_field(e, ERR_INVALID, "invalid_field", "permissions", "permissions must be a list of names");
        /* admin keeps every permission: a roles table that locks everyone
         * out could not be repaired over the API */
        if (!strcmp(name, "admin"))
            return err_field(e, ERR_CONFLICT, "builtin_role", "permissions", "the admin role always has every permission");
        int rc = db_run(d, e, "DELETE FROM role_permissions WHERE role = ?", "s", name);
        for (size_t i = 0; !rc && i < perms->u.arr.n; i++) {
            const jv *p = perms->u.arr.items[i];
            if (p->kind != JV_STR || !auth_permission_known(p->u.str.s))
                return err_field(e, ERR_INVALID, "unknown_permission", "permissions", "unknown permission %s",
                                 p->kind == JV_STR ? p->u.str.s : "(not a string)");
            if (auth_authorize(d, http_who(q), p->u.str.s, e))
                return err_field(e, ERR_FORBIDDEN, "forbidden", "permissions",
                                 "you cannot grant %s: you do not have it yourself", p->u.str.s);
            rc = db_run(d, e, "INSERT INTO role_permissions (role, permission) VALUES (?, ?) ON CONFLICT DO NOTHING", "ss",
                        name, p->u.str.s);
        }
        if (rc) return rc;
    }
    if (fp) {
        if (fp->kind != JV_OBJ)
            return err_field(e, ERR_INVALID, "invalid_field", "field_policies", "field_policies maps \"resource.field\" to hidden, masked or clear");
        for (size_t i = 0; i < fp->u.obj.n; i++) {
            const jv_member *m = &fp->u.obj.m[i];
            const char *dot = strchr(m->key, '.');
            visibility vis;
            char resource[32], field[48];
            int known = 0;
            if (dot && (size_t)(dot - m->key) < sizeof resource) {
                snprintf(resource, sizeof resource, "%.*s", (int)(dot - m->key), m->key);
                snprintf(field, sizeof field, "%s", dot + 1);
                for (int k = 0; k < privacy_fields_count; k++)
                    known |= !strcmp(privacy_fields[k].resource, resource) && !strcmp(privacy_fields[k].field, field);
            }
            if (!known)
                return err_field(e, ERR_INVALID, "unknown_field", m->key, "%s is not a sensitive field", m->key);
            if (m->val->kind != JV_STR || visibility_parse(m->val->u.str.s, &vis))
                return err_field(e, ERR_INVALID, "invalid_field", m->key, "%s must be hidden, masked or clear", m->key);
            int rc = db_run(d, e,
                            "INSERT INTO field_policies (role, resource, field, level) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT (role, resource, field) DO UPDATE SET level = excluded.level",
                            "ssss", name, resource, field, visibility_name(vis));
            if (rc) return rc;
        }
    }
    return 0;
}

static int role_change(http_req *q, int creating)
{
    /* a role is named by its path once it exists: renaming would orphan
     * the users and tokens that hold it */
    static const http_field create[] = {{"name", 's', 1},          {"description", 's', 0}, {"permissions", 'a', 0},
                                        {"field_policies", 'o', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, creating ? create : create + 1, 0)) return HTTP_DONE;
    db *d = server_db(http_server(q));
    err e;
    const char *name = creating ? http_str(body, "name") : http_param(q, "name");
    const char *desc = http_str(body, "description");
    if (!name || !users_name_valid(name)) {
        http_reply_errf(q, 400, "invalid_field", "name", "a role name is 2-32 of a-z 0-9 . _ -");
        return HTTP_DONE;
    }
    jv *before = NULL, *after = NULL;
    int rc = db_begin(d, &e);
    if (!rc && creating) {
        rc = db_run(d, &e, "INSERT INTO roles (name, description) VALUES (?, ?)", "ss", name, desc ? desc : name);
        if (rc == ERR_CONFLICT) err_field(&e, ERR_CONFLICT, "exists", "name", "role %s already exists", name);
    } else if (!rc) {
        rc = role_json(d, http_arena(q), name, &before, &e);
        if (!rc && desc) rc = db_run(d, &e, "UPDATE roles SET description = ? WHERE name = ?", "ss", desc, name);
    }
    if (!rc) rc = write_role(q, d, name, body, &e);
    if (!rc) rc = role_json(d, http_arena(q), name, &after, &e);
    audit_event ev = {.action = creating ? "role.create" : "role.update", .object_type = "role", .object_id = name,
                      .before = before, .after = after};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    auth_reload();
    privacy_reload();
    jw w;
    jw_init(&w, 0);
    jw_jv(&w, after);
    http_reply_json(q, creating ? 201 : 200, &w);
    return HTTP_DONE;
}

int api_roles_create(http_req *q) { return role_change(q, 1); }
int api_roles_update(http_req *q) { return role_change(q, 0); }

int api_roles_delete(http_req *q)
{
    db *d = server_db(http_server(q));
    err e;
    const char *name = http_param(q, "name");
    int64_t builtin = 0, users = 0;
    int rc = db_get_int(d, &e, &builtin, "SELECT builtin FROM roles WHERE name = ?", "s", name);
    if (rc == ERR_NOTFOUND) rc = err_field(&e, ERR_NOTFOUND, "not_found", "name", "no role %s", name);
    if (!rc && builtin) rc = err_field(&e, ERR_CONFLICT, "builtin_role", "name", "role %s is built in and cannot be deleted", name);
    if (!rc) rc = db_get_int(d, &e, &users, "SELECT count(*) FROM staff_users WHERE role = ?", "s", name);
    if (!rc) {
        int64_t tokens = 0;
        rc = db_get_int(d, &e, &tokens, "SELECT count(*) FROM api_tokens WHERE role = ? AND revoked_at IS NULL", "s", name);
        users += tokens;
    }
    if (!rc && users) rc = err_field(&e, ERR_CONFLICT, "role_in_use", "name", "role %s is held by %lld users or tokens", name, (long long)users);
    jv *before = NULL;
    if (!rc) rc = db_begin(d, &e);
    if (!rc) rc = role_json(d, http_arena(q), name, &before, &e);
    if (!rc) rc = db_run(d, &e, "DELETE FROM roles WHERE name = ?", "s", name);
    audit_event ev = {.action = "role.delete", .object_type = "role", .object_id = name, .before = before};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    auth_reload();
    privacy_reload();
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_bool(&w, "deleted", 1);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}
