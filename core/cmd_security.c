/* cmd_security.c - `bandbill user ...`, `audit ...`, `keys ...`.
 *
 * Changes made from the command line are recorded in the audit trail like
 * those made over the API, as the local operating-system user. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "customers.h"
#include "pipl.h"
#include "session.h"
#include "users.h"
#include "vault.h"

int cli_open_vault(cli *c, vault **out, err *e)
{
    int rc = vault_open(c->cfg.keys_file, out, e);
    if (rc == ERR_IO || rc == ERR_NOTFOUND) err_prefix(e, "run `bandbill init` to create the key file, or set keys.file");
    return rc;
}

int cli_audit(cli *c, db *d, const vault *v, const audit_event *ev, err *e)
{
    char actor[96];
    cli_actor(actor, sizeof actor);
    audit_who who = {.actor = actor, .role = "admin", .source = "cli", .request_id = NULL};
    c->audited = 1;
    return audit_append(d, vault_audit_key(v), &who, ev, e);
}

void cli_anchor(cli *c)
{
    db *d;
    vault *v;
    err e;
    if (cli_open_db(c, &d, &e)) return;
    if (cli_open_vault(c, &v, &e) == 0) {
        audit_anchor_write(d, vault_audit_key(v), c->cfg.audit_anchor, &e);
        vault_close(v);
    }
    db_close(d);
}

/* A password from standard input (--password-stdin), else generated. */
static int read_password(cli *c, char *out, size_t n, int *generated, err *e)
{
    *generated = 0;
    if (!cli_opt_value(c, "password-stdin")) {
        users_password_generate(out);
        *generated = 1;
        return 0;
    }
    if (!fgets(out, (int)n, stdin)) return err_set(e, ERR_INVALID, "no password on standard input");
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

/* db + vault, opened together for the commands here. */
static int open_both(cli *c, db **d, vault **v, err *e)
{
    int rc = cli_open_db(c, d, e);
    if (rc) return rc;
    rc = cli_open_vault(c, v, e);
    if (rc) db_close(*d);
    return rc;
}

static int finish(db *d, vault *v, int rc)
{
    if (rc && db_in_tx(d)) db_rollback(d);
    db_close(d);
    vault_close(v);
    return rc;
}

int cmd_user_add(cli *c, err *e)
{
    const char *name = c->argv[0], *role = cli_opt_value(c, "role");
    if (!role) return err_set(e, ERR_USAGE, "user add needs --role ROLE");
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    char pw[300], hash[USERS_HASH_MAX], by[96];
    int generated;
    cli_actor(by, sizeof by);
    int64_t id;
    rc = read_password(c, pw, sizeof pw, &generated, e);
    if (!rc) rc = users_password_check(pw, name, e);
    if (!rc) rc = users_password_hash(pw, hash, e);
    if (!rc) rc = db_begin(d, e);
    if (!rc)
        rc = users_create(d, v, name, cli_opt_value(c, "display-name"), role, hash, cli_opt_value(c, "email"),
                          cli_opt_value(c, "phone"), by, &id, e);
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *after = jv_obj(&a);
    jv_obj_set_str(&a, after, "username", name);
    jv_obj_set_str(&a, after, "role", role);
    audit_event ev = {.action = "user.create", .object_type = "user", .object_id = name, .after = after};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    jv_arena_free(&a);
    rc = finish(d, v, rc);
    if (rc) return rc;
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "username", name);
        jw_kv_str(&w, "role", role);
        if (generated) jw_kv_str(&w, "password", pw);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    printf("user %s created with role %s\n", name, role);
    if (generated) printf("password (shown once): %s\n", pw);
    return 0;
}

static int set_status(cli *c, const char *status, err *e)
{
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    const char *name = c->argv[0];
    staff_user u;
    rc = users_get(d, name, 0, &u, e);
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = users_set_status(d, name, status, e);
    if (!rc && !strcmp(status, "disabled")) rc = session_revoke_user(d, u.id, 0, "account disabled", e);
    audit_event ev = {.action = strcmp(status, "disabled") ? "user.enable" : "user.disable", .object_type = "user",
                      .object_id = name};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    rc = finish(d, v, rc);
    if (!rc && !c->json) printf("user %s %s\n", name, status);
    if (!rc && c->json) printf("{\"username\":\"%s\",\"status\":\"%s\"}\n", name, status);
    return rc;
}

int cmd_user_disable(cli *c, err *e) { return set_status(c, "disabled", e); }
int cmd_user_enable(cli *c, err *e) { return set_status(c, "active", e); }

int cmd_user_passwd(cli *c, err *e)
{
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    const char *name = c->argv[0];
    char pw[300], hash[USERS_HASH_MAX];
    int generated;
    staff_user u;
    rc = users_get(d, name, 0, &u, e);
    if (!rc) rc = read_password(c, pw, sizeof pw, &generated, e);
    if (!rc) rc = users_password_check(pw, name, e);
    if (!rc) rc = users_password_hash(pw, hash, e);
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = users_set_password(d, name, hash, e);
    if (!rc) rc = session_revoke_user(d, u.id, 0, "password reset", e);
    audit_event ev = {.action = "user.password_reset", .object_type = "user", .object_id = name};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    rc = finish(d, v, rc);
    if (rc) return rc;
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "username", name);
        if (generated) jw_kv_str(&w, "password", pw);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    printf("password of %s reset; the user's sessions are ended\n", name);
    if (generated) printf("password (shown once): %s\n", pw);
    return 0;
}

int cmd_user_unlock(cli *c, err *e)
{
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    const char *name = c->argv[0];
    rc = db_begin(d, e);
    if (!rc) rc = users_unlock(d, name, e);
    audit_event ev = {.action = "user.unlock", .object_type = "user", .object_id = name};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    rc = finish(d, v, rc);
    if (!rc && c->json) printf("{\"unlocked\":true}\n");
    else if (!rc) printf("user %s unlocked\n", name);
    return rc;
}

int cmd_user_list(cli *c, err *e)
{
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    db_stmt *s = db_prepare(d, "SELECT username, display_name, role, status, locked_until, last_login_at FROM staff_users ORDER BY username", e);
    if (!s) {
        db_close(d);
        return e->code;
    }
    jw w;
    if (c->json) {
        jw_init(&w, 0);
        jw_arr_open(&w);
    } else {
        printf("%-20s %-18s %-10s %-22s %s\n", "USER", "ROLE", "STATUS", "LAST LOGIN", "NAME");
    }
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        const char *locked = db_col_is_null(s, 4) ? NULL : db_col_text(s, 4);
        if (c->json) {
            jw_obj_open(&w);
            jw_kv_str(&w, "username", db_col_text(s, 0));
            jw_kv_str(&w, "display_name", db_col_text(s, 1));
            jw_kv_str(&w, "role", db_col_text(s, 2));
            jw_kv_str(&w, "status", db_col_text(s, 3));
            jw_kv_str(&w, "locked_until", locked);
            jw_kv_str(&w, "last_login_at", db_col_is_null(s, 5) ? NULL : db_col_text(s, 5));
            jw_obj_close(&w);
        } else {
            printf("%-20s %-18s %-10s %-22.19s %s\n", db_col_text(s, 0), db_col_text(s, 2),
                   locked ? "locked" : db_col_text(s, 3), db_col_is_null(s, 5) ? "never" : db_col_text(s, 5),
                   db_col_text(s, 1));
        }
    }
    db_close(d);
    if (c->json) {
        if (rc < 0) {
            jw_free(&w);
            return rc;
        }
        jw_arr_close(&w);
        return cli_print_json(&w, e);
    }
    return rc < 0 ? rc : 0;
}

int cmd_user_roles(cli *c, err *e)
{
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    db_stmt *s = db_prepare(d,
                            "SELECT r.name, r.description, coalesce(group_concat(p.permission, ' '), '') FROM roles r "
                            "LEFT JOIN role_permissions p ON p.role = r.name GROUP BY r.name ORDER BY r.name",
                            e);
    if (!s) {
        db_close(d);
        return e->code;
    }
    jw w;
    if (c->json) {
        jw_init(&w, 0);
        jw_arr_open(&w);
    }
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        if (c->json) {
            jw_obj_open(&w);
            jw_kv_str(&w, "name", db_col_text(s, 0));
            jw_kv_str(&w, "description", db_col_text(s, 1));
            jw_kv_str(&w, "permissions", db_col_text(s, 2));
            jw_obj_close(&w);
        } else {
            printf("%s: %s\n    %s\n", db_col_text(s, 0), db_col_text(s, 1), db_col_text(s, 2));
        }
    }
    db_close(d);
    if (c->json) {
        if (rc < 0) {
            jw_free(&w);
            return rc;
        }
        jw_arr_close(&w);
        return cli_print_json(&w, e);
    }
    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ audit */

int cmd_audit_verify(cli *c, err *e)
{
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    audit_check chk;
    rc = audit_verify(d, vault_audit_key(v), &chk, e);
    if (!rc && !chk.first_bad_id) rc = audit_anchor_check(d, vault_audit_key(v), c->cfg.audit_anchor, &chk, e);
    finish(d, v, 0);
    if (rc) return rc;
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_int(&w, "records", chk.records);
        jw_kv_bool(&w, "intact", chk.first_bad_id == 0);
        if (chk.first_bad_id) {
            jw_kv_int(&w, "first_bad_id", chk.first_bad_id);
            jw_kv_str(&w, "why", chk.why);
        }
        jw_obj_close(&w);
        if (cli_print_json(&w, e)) return e->code;
        return chk.first_bad_id ? 1 : 0;
    }
    if (chk.first_bad_id) return err_set(e, ERR_CONFLICT, "audit chain broken at record %lld: %s", (long long)chk.first_bad_id, chk.why);
    printf("audit chain intact: %lld records\n", (long long)chk.records);
    return 0;
}

int cmd_audit_export(cli *c, err *e)
{
    const char *from = cli_opt_value(c, "from"), *to = cli_opt_value(c, "to");
    /* dates are accepted for convenience: 2026-11-01 = 2026-11-01T00:00:00.000Z */
    char f[32], t[32];
    int64_t ms;
    if (from && strlen(from) == 10) {
        snprintf(f, sizeof f, "%sT00:00:00.000Z", from);
        from = f;
    }
    if (to && strlen(to) == 10) {
        snprintf(t, sizeof t, "%sT00:00:00.000Z", to);
        to = t;
    }
    if ((from && db_parse_time(from, &ms)) || (to && db_parse_time(to, &ms)))
        return err_set(e, ERR_USAGE, "--from and --to take YYYY-MM-DD or a UTC time like 2026-11-27T00:00:00.000Z");
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    int64_t n = 0;
    rc = audit_export(d, from, to, stdout, &n, e);
    db_close(d);
    if (!rc) fprintf(stderr, "%lld records\n", (long long)n);
    return rc;
}

/* ------------------------------------------------------------------- keys */

static void print_count(void *ud, const char *key, int64_t n)
{
    jw *w = ud;
    if (w) jw_kv_int(w, key, n);
    else printf("  %-6s %lld values\n", key, (long long)n);
}

int cmd_keys_status(cli *c, err *e)
{
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    jw w;
    if (c->json) {
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "key_file", vault_path(v));
        jw_kv_str(&w, "current", vault_current_key(v));
        jw_key(&w, "values_by_key");
        jw_obj_open(&w);
    } else {
        printf("key file %s, current key %s\n", vault_path(v), vault_current_key(v));
    }
    rc = vault_count(d, print_count, c->json ? &w : NULL, e);
    finish(d, v, 0);
    if (c->json) {
        jw_obj_close(&w);
        jw_obj_close(&w);
        if (rc) {
            jw_free(&w);
            return rc;
        }
        return cli_print_json(&w, e);
    }
    return rc;
}

int cmd_keys_rotate(cli *c, err *e)
{
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    char id[16] = "";
    /* a rotation killed midway is resumed, not restarted with yet another key */
    vault_rotation r = {0};
    int resume = cli_opt_value(c, "resume") != NULL;
    if (!resume) rc = vault_add_key(v, id, e);
    if (!rc) {
        rc = db_begin(d, e);
        jv_arena a;
        jv_arena_init(&a, 0);
        jv *detail = jv_obj(&a);
        jv_obj_set_str(&a, detail, "new_key", resume ? vault_current_key(v) : id);
        jv_obj_set_bool(&a, detail, "resume", resume);
        audit_event ev = {.action = "keys.rotate", .object_type = "keys", .detail = detail};
        if (!rc) rc = cli_audit(c, d, v, &ev, e);
        if (!rc) rc = db_commit(d, e);
        jv_arena_free(&a);
    }
    if (!rc) rc = vault_rotate(d, v, 500, NULL, &r, e);
    rc = finish(d, v, rc);
    if (rc) return err_prefix(e, "rotation stopped; run `bandbill keys rotate --resume` to finish it");
    if (c->json) printf("{\"current\":\"%s\",\"rewritten\":%lld,\"remaining\":%lld}\n", resume ? "" : id, (long long)r.rewritten,
                        (long long)r.remaining);
    else printf("%s%s: %lld values re-encrypted, %lld left\n", resume ? "resumed" : "new key ", resume ? "" : id,
                (long long)r.rewritten, (long long)r.remaining);
    return 0;
}

int cmd_keys_prune(cli *c, err *e)
{
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    char removed[512] = "";
    rc = vault_prune(d, v, removed, sizeof removed, e);
    finish(d, v, 0);
    if (rc) return rc;
    if (c->json) printf("{\"removed\":\"%s\"}\n", removed);
    else if (removed[0]) printf("removed keys: %s\n", removed);
    else printf("no unused keys\n");
    return 0;
}

/* ---------------------------------------------------------------- PIPL */

static int customer_arg(db *d, const char *code, int64_t *id, err *e)
{
    int rc = customers_id_by_code(d, code, id, e);
    if (rc == ERR_NOTFOUND) return err_set(e, ERR_NOTFOUND, "no customer %s", code);
    return rc;
}

/* The file is written 0600 and only then filled: it holds a person's data
 * in clear. */
static int write_private(const char *path, const char *s, size_t n, err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
    int rc = 0;
    if (fchmod(fd, 0600) || write(fd, s, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd))
        rc = err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
    if (close(fd) && !rc) rc = err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return rc;
}

int cmd_privacy_export(cli *c, err *e)
{
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    const char *code = c->argv[0], *out = cli_opt_value(c, "out");
    int64_t id = 0;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *doc = NULL;
    jw w;
    jw_init(&w, 1);
    rc = customer_arg(d, code, &id, e);
    /* the export and its audit record in one transaction: a copy handed out
     * is always on record */
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = pipl_export(d, v, id, &a, &doc, e);
    audit_event ev = {.action = "privacy.export", .object_type = "customer", .object_id = code};
    jv *detail = jv_obj(&a);
    if (!detail) rc = rc ? rc : ERR_NOMEM_RET(e);
    if (!rc) jv_obj_set_str(&a, detail, "to", out ? out : "standard output");
    ev.detail = detail;
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    size_t n = 0;
    const char *s = NULL;
    if (!rc) {
        jw_jv(&w, doc);
        s = jw_finish(&w, &n);
        if (!s) rc = err_set(e, ERR_INTERNAL, "could not encode the export as JSON");
    }
    if (!rc && out) rc = write_private(out, s, n, e);
    if (!rc) rc = db_commit(d, e);
    rc = finish(d, v, rc);
    if (!rc) {
        if (!out) {
            fwrite(s, 1, n, stdout);
            fputc('\n', stdout);
        } else if (c->json) {
            printf("{\"customer\":\"%s\",\"file\":", code);
            jw f;
            jw_init(&f, 0);
            jw_str(&f, out);
            const char *fs = jw_finish(&f, NULL);
            printf("%s}\n", fs ? fs : "null");
            jw_free(&f);
        } else
            printf("everything held about %s written to %s\n", code, out);
    }
    jw_free(&w);
    jv_arena_free(&a);
    return rc;
}

int cmd_privacy_erase(cli *c, err *e)
{
    const char *code = c->argv[0];
    if (!cli_opt_value(c, "yes"))
        return err_set(e, ERR_USAGE, "erasing %s's personal data cannot be undone: add --yes to go ahead", code);
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    int64_t id = 0;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *summary = NULL;
    rc = customer_arg(d, code, &id, e);
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = pipl_erase(d, id, &a, &summary, e);
    audit_event ev = {.action = "privacy.erase", .object_type = "customer", .object_id = code, .detail = summary};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    rc = finish(d, v, rc);
    if (!rc) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "customer", code);
        jw_key(&w, "erased");
        jw_jv(&w, summary);
        jw_obj_close(&w);
        if (c->json) rc = cli_print_json(&w, e);
        else {
            jw_free(&w);
            printf("personal data of %s erased; invoices, payments and the ledger are kept\n", code);
        }
    }
    jv_arena_free(&a);
    return rc;
}
