/* cmd_admin.c - init, migrate, demo, serve, backup, tokens, config, version. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/opensslv.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_version.h>

#include "audit.h"
#include "auth.h"
#include "vault.h"
#include "lua_host.h"
#include "backup.h"
#include "cli.h"
#include "date.h"
#include "demo.h"
#include "migrate.h"
#include "rules.h"
#include "server.h"
#include "session.h"
#include "users.h"

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

/* ------------------------------------------------------------------ demo */

/* One staff account per built-in role, for trying the console and the
 * API's permissions; their passwords go to var/demo-staff.txt. */
static const struct {
    const char *user, *role, *display;
} DEMO_STAFF[] = {
    {"demo-admin", "admin", "演示 管理员"},
    {"demo-billing", "billing_clerk", "演示 账务员"},
    {"demo-service", "customer_service", "演示 客服"},
    {"demo-tech", "technician", "演示 装维工程师"},
    {"demo-analyst", "analyst", "演示 分析师"},
    {"demo-auditor", "auditor", "演示 审计员"},
};
#define N_DEMO_STAFF (sizeof DEMO_STAFF / sizeof *DEMO_STAFF)
#define DEMO_STOCK 60

/* Writes path with mode 0600 before anything goes in. */
static int write_private_file(const char *path, const char *text, err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
    size_t n = strlen(text);
    int rc = 0;
    if (fchmod(fd, 0600) || write(fd, text, n) != (ssize_t)n) rc = err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
    if (close(fd) && !rc) rc = err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return rc;
}

/* The demo's customers, catalog and warehouse, in one transaction: all or
 * nothing. */
static int demo_data(cli *c, db *d, vault *v, ruleset *rs, const char *today, const char *actor, demo_counts *n, err *e)
{
    audit_who who = {.actor = actor, .role = "admin", .source = "cli"};
    demo_env env = {.d = d,
                    .v = v,
                    .rs = rs,
                    .seed = DEMO_SEED,
                    .today = today,
                    .by = actor,
                    .code_prefix = c->cfg.customer_prefix,
                    .audit_key = vault_audit_key(v),
                    .who = &who};
    int rc = db_begin(d, e);
    if (rc) return rc;
    rc = demo_catalog_load(&env, n, e);
    for (uint64_t i = 0; !rc && i < DEMO_CUSTOMERS; i++) rc = demo_customer_load(&env, i, n, e);
    for (uint64_t k = 0; !rc && k < DEMO_STOCK; k++) rc = demo_stock_load(&env, k, n, e);
    int64_t moved = 0;
    if (!rc) rc = demo_billing_position(&env, &moved, e);
    /* one record for everything else the demo made */
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *detail = jv_obj(&a);
    if (!rc && (!detail || jv_obj_set_int(&a, detail, "seed", DEMO_SEED) || jv_obj_set_int(&a, detail, "customers", n->customers) ||
                jv_obj_set_int(&a, detail, "products", n->products) || jv_obj_set_int(&a, detail, "accounts", n->accounts) ||
                jv_obj_set_int(&a, detail, "devices", n->devices) || jv_obj_set_int(&a, detail, "deposits", n->deposits) ||
                jv_obj_set_int(&a, detail, "subscriptions", n->subscriptions) ||
                jv_obj_set_int(&a, detail, "charges", n->charges) || jv_obj_set_int(&a, detail, "billed_through_set", moved)))
        rc = ERR_NOMEM_RET(e);
    audit_event ev = {.action = "demo.load", .object_type = "demo", .detail = detail};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    jv_arena_free(&a);
    if (!rc) rc = db_commit(d, e);
    if (rc && db_in_tx(d)) db_rollback(d);
    return rc;
}

/* Makes sure every demo staff account exists with the password in the
 * staff file. Nothing changes while the accounts and the file are there;
 * when the file is gone (or an account), every demo account gets a new
 * password and the file is written again, like the token file. */
static int demo_staff(cli *c, db *d, vault *v, const char *actor, const char *path, int *created, err *e)
{
    *created = 0;
    int missing = access(path, R_OK) != 0;
    staff_user u;
    err ne;
    for (size_t i = 0; !missing && i < N_DEMO_STAFF; i++) missing = users_get(d, DEMO_STAFF[i].user, 0, &u, &ne) != 0;
    if (!missing) return 0;
    char pw[N_DEMO_STAFF][32], hash[N_DEMO_STAFF][USERS_HASH_MAX];
    int rc = 0;
    /* scrypt is slow by design: hashed before the write lock is taken */
    for (size_t i = 0; !rc && i < N_DEMO_STAFF; i++) {
        users_password_generate(pw[i]);
        rc = users_password_check(pw[i], DEMO_STAFF[i].user, e);
        if (!rc) rc = users_password_hash(pw[i], hash[i], e);
    }
    buf text = {0};
    if (!rc && buf_puts(&text, "# bandbill demo staff accounts: user role password (made by `bandbill demo`)\n")) rc = ERR_NOMEM_RET(e);
    if (!rc) rc = db_begin(d, e);
    for (size_t i = 0; !rc && i < N_DEMO_STAFF; i++) {
        int64_t id;
        const char *action = "user.create";
        if (users_get(d, DEMO_STAFF[i].user, 0, &u, &ne) == 0) {
            action = "user.password_reset";
            rc = users_set_password(d, DEMO_STAFF[i].user, hash[i], e);
            if (!rc) rc = session_revoke_user(d, u.id, 0, "password reset by demo", e);
        } else {
            rc = users_create(d, v, DEMO_STAFF[i].user, DEMO_STAFF[i].display, DEMO_STAFF[i].role, hash[i], NULL, NULL, actor,
                              &id, e);
        }
        jv_arena a;
        jv_arena_init(&a, 0);
        jv *after = jv_obj(&a);
        if (!rc && (!after || jv_obj_set_str(&a, after, "username", DEMO_STAFF[i].user) ||
                    jv_obj_set_str(&a, after, "role", DEMO_STAFF[i].role)))
            rc = ERR_NOMEM_RET(e);
        audit_event ev = {.action = action, .object_type = "user", .object_id = DEMO_STAFF[i].user, .after = after};
        if (!rc) rc = cli_audit(c, d, v, &ev, e);
        jv_arena_free(&a);
        char line[160];
        snprintf(line, sizeof line, "%s %s %s\n", DEMO_STAFF[i].user, DEMO_STAFF[i].role, pw[i]);
        if (!rc && buf_puts(&text, line)) rc = ERR_NOMEM_RET(e);
    }
    /* the file first: committed accounts whose passwords nobody has would
     * be of no use */
    if (!rc) rc = write_private_file(path, buf_cstr(&text), e);
    if (!rc) rc = db_commit(d, e);
    if (rc && db_in_tx(d)) db_rollback(d);
    explicit_bzero(pw, sizeof pw);
    if (text.data) explicit_bzero(text.data, text.len);
    buf_free(&text);
    if (!rc) *created = 1;
    return rc;
}

int cmd_demo(cli *c, err *e)
{
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    vault *v = NULL;
    rules_snapshot *snap = NULL;
    ruleset *rs = NULL;
    char actor[96], token[AUTH_TOKEN_LEN] = "", path[CFG_PATH + 32], staff_path[CFG_PATH + 32], today[11];
    cli_actor(actor, sizeof actor);
    date_format(date_of_time(time(NULL)), today);
    /* the rules must pass their examples, as the daemon demands: the demo's
     * subscriptions take their dates and fees from them */
    lhost_limits lim = {(uint64_t)c->cfg.rules_max_instructions, (size_t)c->cfg.rules_max_memory_mb << 20};
    rc = rules_snapshot_read(c->cfg.rules, &snap, e);
    if (!rc) rc = ruleset_load(snap, &lim, 1, &rs, NULL, e);
    if (!rc) rc = rules_store(d, snap, actor, "cli", e);
    if (!rc) rc = cli_open_vault(c, &v, e);
    int present = 0, created = 0, staff_created = 0;
    demo_counts n;
    memset(&n, 0, sizeof n);
    int64_t customers = 0;
    if (!rc) rc = demo_present(d, v, DEMO_SEED, &present, e);
    if (!rc && !present) rc = demo_data(c, d, v, rs, today, actor, &n, e);
    if (!rc) rc = db_get_int(d, e, &customers, "SELECT count(*) FROM customers", NULL);
    snprintf(staff_path, sizeof staff_path, "%s/demo-staff.txt", c->cfg.var_dir);
    if (!rc) rc = demo_staff(c, d, v, actor, staff_path, &staff_created, e);
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
    vault_close(v);
    db_close(d);
    if (rc) return rc;
    static const char *const status_names[] = {"active", "prospect", "overdue", "suspended", "closed"};
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "token_file", path);
        jw_kv_bool(&w, "token_created", created);
        jw_kv_bool(&w, "data_created", !present);
        jw_kv_int(&w, "customers", customers);
        if (!present) {
            jw_key(&w, "created");
            jw_obj_open(&w);
            jw_kv_int(&w, "customers", n.customers);
            jw_key(&w, "by_status");
            jw_obj_open(&w);
            for (int i = 0; i < 5; i++) jw_kv_int(&w, status_names[i], n.by_status[i]);
            jw_obj_close(&w);
            jw_kv_int(&w, "products", n.products);
            jw_kv_int(&w, "accounts", n.accounts);
            jw_kv_int(&w, "devices", n.devices);
            jw_kv_int(&w, "installations", n.installations);
            jw_kv_int(&w, "deposits", n.deposits);
            jw_kv_int(&w, "subscriptions", n.subscriptions);
            jw_kv_int(&w, "changes", n.changes);
            jw_kv_int(&w, "charges", n.charges);
            jw_kv_int(&w, "stock", n.stock);
            jw_obj_close(&w);
        }
        jw_kv_str(&w, "staff_file", staff_path);
        jw_kv_bool(&w, "staff_created", staff_created);
        jw_key(&w, "staff");
        jw_arr_open(&w);
        for (size_t i = 0; i < N_DEMO_STAFF; i++) {
            jw_obj_open(&w);
            jw_kv_str(&w, "username", DEMO_STAFF[i].user);
            jw_kv_str(&w, "role", DEMO_STAFF[i].role);
            jw_obj_close(&w);
        }
        jw_arr_close(&w);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    if (present) {
        printf("demo data already present (%lld customers in the database): nothing added\n", (long long)customers);
    } else {
        printf("demo data created: %lld customers in Hangzhou (%lld active, %lld prospect, %lld overdue, %lld suspended, "
               "%lld closed)\n",
               (long long)n.customers, (long long)n.by_status[0], (long long)n.by_status[1], (long long)n.by_status[2],
               (long long)n.by_status[3], (long long)n.by_status[4]);
        printf("  %lld products (5 plans, add-ons, fees, deposits, promotions), %lld PPPoE accounts, %lld subscriptions "
               "(%lld changes), %lld devices (%lld installations, %lld in stock), %lld deposits, %lld pending charges\n",
               (long long)n.products, (long long)n.accounts, (long long)n.subscriptions, (long long)n.changes,
               (long long)n.devices, (long long)n.installations, (long long)n.stock, (long long)n.deposits,
               (long long)n.charges);
    }
    printf("demo staff, one per role, passwords in %s (mode 0600)%s:", staff_path, staff_created ? " (new)" : "");
    for (size_t i = 0; i < N_DEMO_STAFF; i++) printf("%s %s (%s)", i ? "," : "", DEMO_STAFF[i].user, DEMO_STAFF[i].role);
    printf("\n");
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
