/* cmd_admin.c - init, migrate, demo, serve, backup, tokens, config, version. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/opensslv.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_version.h>

#include "audit.h"
#include "auth.h"
#include "vault.h"
#include "lua_host.h"
#include "backup.h"
#include "cli.h"
#include "migrate.h"
#include "rules.h"
#include "server.h"

static int make_dirs(const char *dir, err *e)
{
    char tmp[CFG_PATH];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) && errno != EEXIST) return err_set(e, ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0700) && errno != EEXIST) return err_set(e, ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    return 0;
}

int cmd_init(cli *c, err *e)
{
    int rc = make_dirs(c->cfg.var_dir, e);
    if (rc) return rc;
    db *d;
    if ((rc = db_open(c->cfg.db, DB_OPEN_CREATE, &d, e))) return rc;
    chmod(c->cfg.db, 0600);
    int applied = 0;
    rc = migrate_apply(d, &applied, e);
    db_close(d);
    if (rc) return rc;
    /* the key file: created once, never overwritten */
    struct stat st;
    int new_keys = 0;
    if (stat(c->cfg.keys_file, &st) != 0) {
        if ((rc = vault_create_file(c->cfg.keys_file, e))) return rc;
        new_keys = 1;
    }
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "db", c->cfg.db);
        jw_kv_int(&w, "schema", migrate_latest());
        jw_kv_int(&w, "applied", applied);
        jw_kv_str(&w, "keys_file", c->cfg.keys_file);
        jw_kv_bool(&w, "keys_created", new_keys);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    printf("initialised %s (schema %d, %d migration%s applied)\n", c->cfg.db, migrate_latest(), applied, applied == 1 ? "" : "s");
    if (new_keys)
        printf("created the key file %s (mode 0600): keep it apart from the database and its backups\n", c->cfg.keys_file);
    return 0;
}

int cmd_migrate(cli *c, err *e)
{
    db *d;
    int rc = db_open(c->cfg.db, 0, &d, e), cur = 0, applied = 0;
    if (rc) return rc;
    rc = migrate_current(d, &cur, e);
    if (!rc && cli_opt_value(c, "check")) {
        db_close(d);
        if (c->json) {
            jw w;
            jw_init(&w, 0);
            jw_obj_open(&w);
            jw_kv_int(&w, "current", cur);
            jw_kv_int(&w, "latest", migrate_latest());
            jw_obj_close(&w);
            cli_print_json(&w, e);
        } else {
            printf("schema %d of %d%s\n", cur, migrate_latest(), cur < migrate_latest() ? ": migrations pending" : "");
        }
        return cur < migrate_latest() ? 1 : 0;
    }
    if (!rc) rc = migrate_apply(d, &applied, e);
    db_close(d);
    if (rc) return rc;
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_int(&w, "schema", migrate_latest());
        jw_kv_int(&w, "applied", applied);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    printf("schema %d (%d migration%s applied)\n", migrate_latest(), applied, applied == 1 ? "" : "s");
    return 0;
}

int cmd_demo(cli *c, err *e)
{
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    rules_snapshot *snap = NULL;
    ruleset *rs = NULL;
    char actor[96], token[AUTH_TOKEN_LEN] = "", path[CFG_PATH + 32];
    cli_actor(actor, sizeof actor);
    rc = rules_snapshot_read(c->cfg.rules, &snap, e);
    if (!rc) rc = ruleset_load(snap, NULL, 1, &rs, NULL, e);
    if (!rc) rc = rules_store(d, snap, actor, "cli", e);
    int created = 0;
    snprintf(path, sizeof path, "%s/demo-admin.token", c->cfg.var_dir);
    if (!rc) {
        int64_t id;
        err ne;
        if (db_get_int(d, &ne, &id, "SELECT id FROM api_tokens WHERE name = 'demo-admin' AND revoked_at IS NULL", NULL) == ERR_NOTFOUND ||
            access(path, R_OK) != 0) {
            db_run(d, &ne, "UPDATE api_tokens SET revoked_at = 'replaced by demo' WHERE name = 'demo-admin'", NULL);
            db_run(d, &ne, "UPDATE api_tokens SET name = name || '-' || id WHERE name = 'demo-admin'", NULL);
            rc = auth_token_create(d, "demo-admin", "admin", actor, token, e);
            if (!rc) {
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0) rc = err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
                else {
                    if (write(fd, token, strlen(token)) != (ssize_t)strlen(token)) rc = err_set(e, ERR_IO, "cannot write %s", path);
                    close(fd);
                }
                created = 1;
            }
        }
    }
    ruleset_unref(rs);
    rules_snapshot_unref(snap);
    db_close(d);
    if (rc) return rc;
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "token_file", path);
        jw_kv_bool(&w, "token_created", created);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    printf("demo data ready; admin API token in %s%s\n", path, created ? " (new)" : "");
    return 0;
}

int cmd_serve(cli *c, err *e) { return server_run(&c->cfg, e); }

int cmd_backup(cli *c, err *e)
{
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    const char *path = c->argv[0];
    if (cli_opt_value(c, "force")) unlink(path);
    int64_t bytes = 0;
    rc = backup_to(d, path, &bytes, e);
    db_close(d);
    if (rc) return rc;
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "path", path);
        jw_kv_int(&w, "bytes", bytes);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    printf("backup written to %s (%lld bytes)\n", path, (long long)bytes);
    return 0;
}

int cmd_token_create(cli *c, err *e)
{
    const char *name = cli_opt_value(c, "name"), *role = cli_opt_value(c, "role");
    if (!name || !role) return err_set(e, ERR_USAGE, "token create needs --name NAME and --role ROLE");
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    char token[AUTH_TOKEN_LEN], actor[96];
    cli_actor(actor, sizeof actor);
    vault *v = NULL;
    rc = cli_open_vault(c, &v, e);
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = auth_token_create(d, name, role, actor, token, e);
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *after = jv_obj(&a);
    jv_obj_set_str(&a, after, "name", name);
    jv_obj_set_str(&a, after, "role", role);
    audit_event ev = {.action = "token.create", .object_type = "token", .object_id = name, .after = after};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    if (rc && db_in_tx(d)) db_rollback(d);
    jv_arena_free(&a);
    vault_close(v);
    db_close(d);
    if (rc) return rc;
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "name", name);
        jw_kv_str(&w, "role", role);
        jw_kv_str(&w, "token", token);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    printf("%s\n", token);
    return 0;
}

int cmd_token_list(cli *c, err *e)
{
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    db_stmt *s = db_prepare(d, "SELECT name, role, prefix, created_at, created_by, revoked_at FROM api_tokens ORDER BY id", e);
    if (!s) {
        db_close(d);
        return e->code;
    }
    jw w;
    if (c->json) {
        jw_init(&w, 0);
        jw_arr_open(&w);
    } else {
        printf("%-24s %-10s %-12s %-25s %s\n", "NAME", "ROLE", "PREFIX", "CREATED", "STATUS");
    }
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        int revoked = !db_col_is_null(s, 5);
        if (c->json) {
            jw_obj_open(&w);
            jw_kv_str(&w, "name", db_col_text(s, 0));
            jw_kv_str(&w, "role", db_col_text(s, 1));
            jw_kv_str(&w, "prefix", db_col_text(s, 2));
            jw_kv_str(&w, "created_at", db_col_text(s, 3));
            jw_kv_str(&w, "created_by", db_col_text(s, 4));
            jw_kv_str(&w, "revoked_at", revoked ? db_col_text(s, 5) : NULL);
            jw_obj_close(&w);
        } else {
            printf("%-24s %-10s %-12s %-25s %s\n", db_col_text(s, 0), db_col_text(s, 1), db_col_text(s, 2),
                   db_col_text(s, 3), revoked ? "revoked" : "live");
        }
    }
    db_close(d);
    if (rc < 0) {
        if (c->json) jw_free(&w);
        return rc;
    }
    if (c->json) {
        jw_arr_close(&w);
        return cli_print_json(&w, e);
    }
    return 0;
}

int cmd_token_revoke(cli *c, err *e)
{
    db *d;
    vault *v = NULL;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    rc = cli_open_vault(c, &v, e);
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = auth_token_revoke(d, c->argv[0], e);
    audit_event ev = {.action = "token.revoke", .object_type = "token", .object_id = c->argv[0]};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    if (rc && db_in_tx(d)) db_rollback(d);
    vault_close(v);
    db_close(d);
    if (rc) return rc;
    if (!c->json) printf("token %s revoked\n", c->argv[0]);
    else printf("{\"revoked\":true}\n");
    return 0;
}

static void emit_kv(void *ud, const char *k, const char *v)
{
    jw *w = ud;
    if (w) jw_kv_str(w, k, v);
    else printf("%s = %s\n", k, v);
}

int cmd_config(cli *c, err *e)
{
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        cfg_dump(&c->cfg, emit_kv, &w);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    cfg_dump(&c->cfg, emit_kv, NULL);
    return 0;
}

int cmd_version(cli *c, err *e)
{
    char ssl[64];
    snprintf(ssl, sizeof ssl, "%s", OPENSSL_VERSION_TEXT);
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "bandbill", BB_VERSION);
        jw_kv_int(&w, "schema", migrate_latest());
        jw_kv_str(&w, "lua", lhost_lua_version());
        jw_kv_str(&w, "sqlite", sqlite3_libversion());
        jw_kv_str(&w, "libevent", event_get_version());
        jw_kv_int(&w, "yajl", YAJL_VERSION);
        jw_kv_str(&w, "openssl", ssl);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    printf("bandbill %s (schema %d; %s, SQLite %s, libevent %s, yajl %d, %s)\n", BB_VERSION, migrate_latest(), lhost_lua_version(),
           sqlite3_libversion(), event_get_version(), YAJL_VERSION, ssl);
    return 0;
}
