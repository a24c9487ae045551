/* test_radius_state.c - network enforcement against a migrated database and
 * the real radius plugin (BB_PLUGIN_DIR/radius.so) writing a FreeRADIUS
 * SQLite file, with a NAS played by a thread on loopback:
 *
 * - netstate_set_customer moves a customer's accounts up the ladder only
 *   (throttled, suspended), keeps closed accounts closed, and a restore
 *   brings back only accounts whose subscription is active;
 * - the triggers record every change that matters (status, password,
 *   throttle rate, name, a subscription's plan or account, a new plan
 *   version) and nothing else (a re-encrypted password, an unchanged
 *   status), and only once the sync is set up;
 * - an account's desired record (password in clear, the plan's rate on a
 *   day, the throttle rate);
 * - netsync: the first pass applies every account; later passes follow the
 *   feed; a rate change of a live session is a CoA the NAS acknowledges, a
 *   suspension a Disconnect it refuses (reported, with its Error-Cause),
 *   a NAS that never answers is reported after the retries; the cursor
 *   moves only when the plugin took the changes;
 * - resync finds missing, wrong and extra entries and names no account
 *   has, repairs them, and finds nothing afterwards; Huawei's rate
 *   attributes and the walled garden. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "accounts.h"
#include "cfg.h"
#include "db.h"
#include "metrics.h"
#include "migrate.h"
#include "netstate.h"
#include "netsync.h"
#include "vault.h"

#include "../../plugins/radius/radpkt.c"
#include "unit_fs.h"

typedef struct nas_thread {
    int fd;
    int port;
    volatile int mode;          /* 0 ACK, 1 NAK 404, 2 silent, 3 NAK 503 */
    volatile int stop;
    volatile int received;
    uint8_t last[RADPKT_MAX];
    volatile size_t last_len;
    pthread_t tid;
} nas_thread;

typedef struct fixture {
    char dir[64];
    char path[128], keys[128], radius[128];
    db *d;
    vault *v;
    cfg c;
    nas_thread nas;
} fixture;

static const char *SECRET = "nas-secret-1";

/* The NAS: answers each request with an ACK or a NAK (Error-Cause 503),
 * or not at all, signed as RFC 5176 says. */
static void *nas_main(void *arg)
{
    nas_thread *n = arg;
    while (!n->stop) {
        struct pollfd p = {n->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        uint8_t b[RADPKT_MAX];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t got = recvfrom(n->fd, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
        if (got < 20) continue;
        memcpy(n->last, b, (size_t)got);
        n->last_len = (size_t)got;
        n->received++;
        if (n->mode == 2) continue;
        uint8_t a[64];
        size_t len = 20;
        a[0] = (uint8_t)(b[0] + (n->mode == 1 || n->mode == 3 ? 2 : 1));
        a[1] = b[1];
        if (n->mode == 1 || n->mode == 3) {
            uint8_t cause[6] = {RAD_ATTR_ERROR_CAUSE, 6, 0, 0, 0x01, n->mode == 3 ? 0xf7 : 0x94};
            memcpy(a + len, cause, 6);
            len += 6;
        }
        a[2] = 0;
        a[3] = (uint8_t)len;
        memcpy(a + 4, b + 4, 16);
        uint8_t auth[16];
        md5(a, len, (const uint8_t *)SECRET, strlen(SECRET), auth);
        memcpy(a + 4, auth, 16);
        sendto(n->fd, a, len, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

/* Products: 1 FIB100 (100/20 Mbit/s, 200/50 from 2027-01-01), 2 FIB300
 * (300/50). Customer 1 (two accounts: zs001 on FIB100, zs002 whose
 * subscription the customer paused), customer 2 (ls001 on FIB300), and a
 * closed account of customer 1 (zs003). */
static const char *SEED =
    "INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) VALUES "
    "(1, 'C000000013', 'residential', 'Zhang San', 'active', 't', 't', 't'),"
    "(2, 'C000000021', 'residential', 'Li Si', 'active', 't', 't', 't');"
    "INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
    "(1, 'FIB100', 'plan', 'Fiber 100', 'active', 't', 't'), (2, 'FIB300', 'plan', 'Fiber 300', 'active', 't', 't');"
    "INSERT INTO product_versions (product_id, version, effective_from, price, tax_category, rule, attrs, created_at, "
    "created_by) VALUES "
    "(1, 1, '2020-01-01', 9900, 'internet', 'tariffs.monthly', "
    "'{\"download_mbps\":100,\"upload_mbps\":20,\"period\":\"month\",\"billing\":\"postpaid\"}', 't', 't'),"
    "(1, 2, '2027-01-01', 9900, 'internet', 'tariffs.monthly', "
    "'{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\"}', 't', 't'),"
    "(2, 1, '2020-01-01', 12900, 'internet', 'tariffs.monthly', "
    "'{\"download_mbps\":300,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\"}', 't', 't');";

static void subscribe(fixture *f, int64_t customer, int64_t product, int64_t acc, const char *status)
{
    err e;
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO subscriptions (customer_id, product_id, service_account_id, status, billing, period, "
                            "start_date, anchor_day, next_bill_date, created_at, created_by) "
                            "VALUES (?, ?, ?, ?, 'postpaid', 'month', '2026-01-01', 1, '2026-12-01', 't', 't')",
                            "iiis", customer, product, acc, status),
                     0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_radius_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
    snprintf(f->keys, sizeof f->keys, "%s/test.key", f->dir);
    snprintf(f->radius, sizeof f->radius, "%s/radius.db", f->dir);
    err e;
    err_clear(&e);
    if (db_open(f->path, DB_OPEN_CREATE, &f->d, &e) || migrate_apply(f->d, NULL, &e) || vault_create_file(f->keys, &e) ||
        vault_open(f->keys, &f->v, &e) || db_exec_script(f->d, SEED, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    int64_t id;
    if (accounts_create(f->d, f->v, 1, "zs001", "Pw-zs001-x", &id, &e) || accounts_create(f->d, f->v, 1, "zs002", "Pw-zs002-x", &id, &e) ||
        accounts_create(f->d, f->v, 2, "ls001", "Pw-ls001-x", &id, &e) || accounts_create(f->d, f->v, 1, "zs003", "Pw-zs003-x", &id, &e) ||
        db_run(f->d, &e, "UPDATE service_accounts SET status = 'closed' WHERE id = 4", "") ||
        db_run(f->d, &e, "UPDATE service_accounts SET status = 'suspended' WHERE id = 2", "")) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    subscribe(f, 1, 1, 1, "active");
    subscribe(f, 1, 1, 2, "suspended");
    subscribe(f, 2, 2, 3, "active");
    /* the NAS */
    f->nas.fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (f->nas.fd < 0 || bind(f->nas.fd, (struct sockaddr *)&a, sizeof a) || getsockname(f->nas.fd, (struct sockaddr *)&a, &al))
        return -1;
    f->nas.port = ntohs(a.sin_port);
    if (pthread_create(&f->nas.tid, NULL, nas_main, &f->nas)) return -1;
    /* the config of a daemon with radius */
    cfg_defaults(&f->c);
    snprintf(f->c.plugins_dir, sizeof f->c.plugins_dir, "%s", BB_PLUGIN_DIR);
    snprintf(f->c.radius_db, sizeof f->c.radius_db, "%s", f->radius);
    f->c.radius_coa_timeout_ms = 100;
    f->c.radius_coa_retries = 1;
    f->c.nnas = 1;
    snprintf(f->c.nas[0].name, sizeof f->c.nas[0].name, "bras1");
    snprintf(f->c.nas[0].address, sizeof f->c.nas[0].address, "127.0.0.1");
    snprintf(f->c.nas[0].secret, sizeof f->c.nas[0].secret, "%s", SECRET);
    f->c.nas[0].coa_port = f->nas.port;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    f->nas.stop = 1;
    pthread_join(f->nas.tid, NULL);
    close(f->nas.fd);
    db_close(f->d);
    vault_close(f->v);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static int64_t i1(db *d, const char *sql)
{
    int64_t v = -1;
    err e;
    if (db_get_int(d, &e, &v, sql, "")) fail_msg("%s: %s", sql, e.msg);
    return v;
}

static const char *t1(fixture *f, const char *sql)
{
    static char out[4][512];
    static int slot;
    char *r = out[slot++ % 4];
    err e;
    db_stmt *s = db_prepare_once(f->d, sql, &e);
    assert_non_null(s);
    int rc = db_step(f->d, s, &e);
    snprintf(r, 512, "%s", rc == DB_ROW ? db_col_text(s, 0) : "<none>");
    db_finalize(s);
    return r;
}

/* One row of the FreeRADIUS file as "a|b|c" lines, in order. */
static const char *rad(fixture *f, const char *sql)
{
    static char out[2048];
    out[0] = 0;
    sqlite3 *r;
    assert_int_equal(sqlite3_open(f->radius, &r), SQLITE_OK);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r, sql, -1, &st, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(r));
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++)
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? "|" : "", (const char *)sqlite3_column_text(st, i));
        snprintf(out + strlen(out), sizeof out - strlen(out), "\n");
    }
    sqlite3_finalize(st);
    sqlite3_close(r);
    return out;
}

static void rad_exec(fixture *f, const char *sql)
{
    sqlite3 *r;
    assert_int_equal(sqlite3_open(f->radius, &r), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(r, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
    sqlite3_close(r);
}

static int64_t set_customer(fixture *f, int64_t customer, const char *state, const char *rate)
{
    err e;
    netstate_rate r;
    if (rate) assert_int_equal(netstate_rate_parse(rate, &r, &e), 0);
    int64_t changed = -1;
    assert_int_equal(db_begin(f->d, &e), 0);
    if (netstate_set_customer(f->d, customer, state, rate ? &r : NULL, &changed, &e)) fail_msg("%s: %s", state, e.msg);
    assert_int_equal(db_commit(f->d, &e), 0);
    return changed;
}

static const char *statuses(fixture *f)
{
    return t1(f, "SELECT group_concat(username || ':' || status || ':' || coalesce(throttle_down_kbps, '-') || '/' || "
                 "coalesce(throttle_up_kbps, '-'), ' ') FROM (SELECT * FROM service_accounts ORDER BY id)");
}

static const char *feed(fixture *f)
{
    return t1(f, "SELECT coalesce(group_concat(account_id || ':' || reason, ' '), '') FROM "
                 "(SELECT * FROM network_changes ORDER BY id)");
}

/* ------------------------------------------------------------------ tests */

static void test_ladder_and_feed(void **state)
{
    fixture *f = *state;
    err e;
    /* before the sync is set up, nothing is recorded */
    assert_int_equal(set_customer(f, 1, "throttled", "2M/1M"), 1);
    assert_string_equal(feed(f), "");
    assert_int_equal(set_customer(f, 1, "active", NULL), 1);
    assert_int_equal(db_run(f->d, &e, "INSERT INTO network_sync (id, created_at) VALUES (1, 't')", ""), 0);

    assert_int_equal(set_customer(f, 1, "throttled", "2M/1M"), 1);
    assert_string_equal(statuses(f), "zs001:throttled:2000/1000 zs002:suspended:-/- ls001:active:-/- zs003:closed:-/-");
    assert_int_equal(set_customer(f, 1, "throttled", "4M/1M"), 1); /* a new rate */
    assert_int_equal(set_customer(f, 1, "throttled", "4M/1M"), 1); /* the same: matched, no change recorded */
    assert_string_equal(feed(f), "1:account 1:account");
    assert_int_equal(set_customer(f, 1, "suspended", NULL), 1);
    assert_int_equal(set_customer(f, 1, "throttled", "2M/2M"), 0); /* never back down the ladder */
    assert_string_equal(statuses(f), "zs001:suspended:-/- zs002:suspended:-/- ls001:active:-/- zs003:closed:-/-");
    /* a payment: zs002's own pause stays */
    assert_int_equal(set_customer(f, 1, "active", NULL), 1);
    assert_string_equal(statuses(f), "zs001:active:-/- zs002:suspended:-/- ls001:active:-/- zs003:closed:-/-");
    assert_int_equal(set_customer(f, 1, "closed", NULL), 2);
    assert_int_equal(set_customer(f, 1, "active", NULL), 0); /* closed stays closed */
    assert_string_equal(feed(f), "1:account 1:account 1:account 1:account 1:account 2:account");

    /* refusals */
    netstate_rate r = {0, 0};
    int64_t ch;
    assert_int_equal(netstate_set_customer(f->d, 2, "throttled", NULL, &ch, &e), ERR_INTERNAL); /* outside a transaction */
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(netstate_set_customer(f->d, 2, "throttled", NULL, &ch, &e), ERR_INVALID);
    assert_int_equal(netstate_set_customer(f->d, 2, "throttled", &r, &ch, &e), ERR_INVALID);
    assert_int_equal(netstate_set_customer(f->d, 2, "slow", NULL, &ch, &e), ERR_INVALID);
    assert_string_equal(e.field, "state");
    db_rollback(f->d);

    /* the other triggers */
    assert_int_equal(db_run(f->d, &e, "DELETE FROM network_changes", ""), 0);
    assert_int_equal(accounts_set_password(f->d, f->v, 3, "New-pw-123", &e), 0);
    assert_string_equal(feed(f), "3:account");
    /* keys rotate: a re-encrypted password is not a change */
    assert_int_equal(db_run(f->d, &e, "UPDATE service_accounts SET password_enc = password_enc || '' WHERE id = 3", ""), 0);
    assert_int_equal(db_run(f->d, &e, "UPDATE service_accounts SET status = status", ""), 0);
    assert_string_equal(feed(f), "3:account");
    assert_int_equal(db_run(f->d, &e, "UPDATE subscriptions SET product_id = 1 WHERE service_account_id = 3", ""), 0);
    assert_int_equal(db_run(f->d, &e, "UPDATE subscriptions SET next_bill_date = '2027-01-01'", ""), 0); /* billing: nothing */
    assert_string_equal(feed(f), "3:account 3:subscription");
    assert_int_equal(db_run(f->d, &e, "DELETE FROM network_changes", ""), 0);
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO product_versions (product_id, version, effective_from, price, tax_category, rule, attrs, "
                            "created_at, created_by) VALUES (1, 3, '2028-01-01', 1, 'internet', 'tariffs.monthly', '{}', 't', 't')",
                            ""),
                     0);
    /* every account on FIB100 but the terminated: 1, 2 (suspended), 3 */
    assert_string_equal(t1(f, "SELECT group_concat(account_id || ':' || reason, ' ') FROM "
                              "(SELECT * FROM network_changes ORDER BY account_id)"),
                        "1:plan 2:plan 3:plan");
    assert_int_equal(db_run(f->d, &e, "DELETE FROM network_changes", ""), 0);
    int64_t id;
    assert_int_equal(accounts_create(f->d, f->v, 2, "ls002", "Pw-ls002-x", &id, &e), 0);
    subscribe(f, 2, 2, id, "pending");
    assert_int_equal(db_run(f->d, &e, "UPDATE service_accounts SET username = 'ls002b' WHERE id = ?", "i", id), 0);
    assert_string_equal(feed(f), "5:account 5:subscription 5:account");
}

static void test_desired(void **state)
{
    fixture *f = *state;
    err e;
    netstate_record r;
    assert_int_equal(netstate_desired(f->d, f->v, 1, "2026-11-20", &r, &e), 0);
    assert_string_equal(r.username, "zs001");
    assert_string_equal(r.password, "Pw-zs001-x");
    assert_string_equal(r.state, "active");
    assert_int_equal(r.rate.down_kbps, 100000);
    assert_int_equal(r.rate.up_kbps, 20000);
    assert_string_equal(r.rate_from, "plan");
    assert_string_equal(r.plan, "FIB100");
    assert_string_equal(r.error, "");
    /* the plan's version of a later day */
    assert_int_equal(netstate_desired(f->d, f->v, 1, "2027-01-01", &r, &e), 0);
    assert_int_equal(r.rate.down_kbps, 200000);
    assert_int_equal(r.rate.up_kbps, 50000);
    /* throttled */
    set_customer(f, 2, "throttled", "512K/256K");
    assert_int_equal(netstate_desired(f->d, f->v, 3, "2026-11-20", &r, &e), 0);
    assert_int_equal(r.rate.down_kbps, 512);
    assert_int_equal(r.rate.up_kbps, 256);
    assert_string_equal(r.rate_from, "throttle");
    assert_string_equal(r.plan, "FIB300");
    /* closed: no password read */
    assert_int_equal(netstate_desired(f->d, f->v, 4, "2026-11-20", &r, &e), 0);
    assert_string_equal(r.state, "closed");
    assert_string_equal(r.password, "");
    /* a password that does not decrypt: the record says so */
    assert_int_equal(db_run(f->d, &e, "UPDATE service_accounts SET password_enc = 'enc:v1:k1:AAAA' WHERE id = 2", ""), 0);
    assert_int_equal(netstate_desired(f->d, f->v, 2, "2026-11-20", &r, &e), 0);
    assert_non_null(strstr(r.error, "does not decrypt"));
    assert_int_equal(netstate_desired(f->d, f->v, 99, "2026-11-20", &r, &e), ERR_NOTFOUND);
    /* in batches, in id order */
    netstate_record b[3];
    int n = 0;
    assert_int_equal(netstate_desired_batch(f->d, f->v, 1, "2026-11-20", b, 3, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(b[0].account_id, 2);
    assert_int_equal(b[2].account_id, 4);
    assert_string_equal(b[1].password, "Pw-ls001-x");
    netstate_wipe(b, n);
    assert_string_equal(b[1].password, "");
}

static void insert_session(fixture *f, const char *user, const char *sid, const char *framed)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, acctstarttime, framedipaddress) "
             "VALUES ('%s', '%s-u', '%s', '127.0.0.1', '2026-11-20 10:00:00', '%s')",
             sid, sid, user, framed);
    rad_exec(f, sql);
}

static void test_sync(void **state)
{
    fixture *f = *state;
    err e;
    netsync_plugin p;
    if (netsync_open(&f->c, &p, &e)) fail_msg("%s", e.msg);
    netsync_report r;
    /* the first pass: every account */
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-11-20", 0, &r, &e), 0);
    assert_int_equal(r.baseline, 1);
    assert_int_equal(r.accounts, 4);
    assert_string_equal(rad(f, "SELECT username, attribute, op, value FROM radreply ORDER BY username"),
                        "ls001|Mikrotik-Rate-Limit|:=|50000k/300000k\n"
                        "zs001|Mikrotik-Rate-Limit|:=|20000k/100000k\n");
    assert_string_equal(rad(f, "SELECT username, attribute, op, value FROM radcheck ORDER BY username"),
                        "ls001|Cleartext-Password|:=|Pw-ls001-x\n"
                        "zs001|Cleartext-Password|:=|Pw-zs001-x\n"
                        "zs002|Auth-Type|:=|Reject\n");
    assert_int_equal(i1(f->d, "SELECT baseline FROM network_sync"), 1);
    /* nothing pending: nothing done */
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-11-20", 0, &r, &e), 0);
    assert_int_equal(r.accounts, 0);

    /* zs001 is online; throttling it is a CoA the NAS acknowledges */
    insert_session(f, "zs001", "sess-1", "100.64.1.1");
    set_customer(f, 1, "throttled", "2M/2M");
    int before = f->nas.received;
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-11-20", 0, &r, &e), 0);
    assert_int_equal(r.changes, 1);
    assert_int_equal(r.coa, 1);
    assert_int_equal(r.acked, 1);
    assert_int_equal(f->nas.received, before + 1);
    assert_int_equal(f->nas.last[0], RAD_COA_REQUEST);
    assert_string_equal(rad(f, "SELECT value FROM radreply WHERE username = 'zs001'"), "2000k/2000k\n");
    assert_string_equal(t1(f, "SELECT state || ' ' || down_kbps || '/' || up_kbps || ' ' || session_result || ' ' || sessions "
                              "FROM network_accounts WHERE account_id = 1"),
                        "throttled 2000/2000 ok 1");
    assert_int_equal(i1(f->d, "SELECT count(*) FROM network_changes"), 0); /* applied changes go */
    /* a password change: rows only, no session touched */
    assert_int_equal(accounts_set_password(f->d, f->v, 1, "Another-pw-9", &e), 0);
    before = f->nas.received;
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-11-20", 0, &r, &e), 0);
    assert_int_equal(r.changed, 1);
    assert_int_equal(r.coa + r.disconnect, 0);
    assert_int_equal(f->nas.received, before);
    assert_string_equal(rad(f, "SELECT value FROM radcheck WHERE username = 'zs001'"), "Another-pw-9\n");

    /* suspension: rows first, then a Disconnect the NAS refuses */
    f->nas.mode = 1;
    set_customer(f, 1, "suspended", NULL);
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-11-20", 0, &r, &e), 0);
    assert_int_equal(r.disconnect, 1);
    assert_int_equal(r.naked, 1);
    assert_int_equal(f->nas.last[0], RAD_DISCONNECT_REQUEST);
    assert_string_equal(rad(f, "SELECT attribute || ' ' || value FROM radcheck WHERE username = 'zs001'"), "Auth-Type Reject\n");
    assert_string_equal(rad(f, "SELECT count(*) FROM radreply WHERE username = 'zs001'"), "0\n");
    assert_string_equal(t1(f, "SELECT session_result FROM network_accounts WHERE account_id = 1"), "failed");
    assert_non_null(strstr(t1(f, "SELECT session_error FROM network_accounts WHERE account_id = 1"),
                           "Error-Cause 404 Invalid-Request"));

    /* a NAS that never answers: 2 tries, then reported */
    f->nas.mode = 2;
    insert_session(f, "ls001", "sess-2", "100.64.1.2");
    set_customer(f, 2, "throttled", "1M/1M");
    before = f->nas.received;
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-11-20", 0, &r, &e), 0);
    assert_int_equal(r.timed_out, 1);
    assert_int_equal(f->nas.received, before + 2);
    assert_non_null(strstr(t1(f, "SELECT session_error FROM network_accounts WHERE account_id = 3"), "did not answer"));
    /* the rows are in all the same */
    assert_string_equal(rad(f, "SELECT value FROM radreply WHERE username = 'ls001'"), "1000k/1000k\n");
    /* a Disconnect for a session the NAS no longer has (NAK 503): done */
    f->nas.mode = 3;
    set_customer(f, 2, "suspended", NULL);
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-11-20", 0, &r, &e), 0);
    assert_int_equal(r.disconnect, 1);
    assert_int_equal(r.naked, 0);
    assert_int_equal(r.acked, 1);
    assert_string_equal(t1(f, "SELECT session_result FROM network_accounts WHERE account_id = 3"), "ok");
    f->nas.mode = 0;

    /* a plugin that cannot write keeps the changes for the next pass */
    set_customer(f, 2, "active", NULL);
    int64_t cursor = i1(f->d, "SELECT cursor FROM network_sync");
    chmod(f->radius, 0400);
    netsync_plugin ro;
    f->c.radius_coa_retries = 0;
    if (getuid() != 0) { /* root writes through file modes */
        assert_int_equal(netsync_open(&f->c, &ro, &e), 0);
        assert_int_not_equal(netsync_run(f->d, f->v, &ro, "2026-11-20", 0, &r, &e), 0);
        assert_int_equal(i1(f->d, "SELECT cursor FROM network_sync"), cursor);
        assert_int_equal(i1(f->d, "SELECT last_error IS NOT NULL FROM network_sync"), 1);
        netsync_close(&ro);
    }
    chmod(f->radius, 0600);
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-11-20", 0, &r, &e), 0);
    assert_true(i1(f->d, "SELECT cursor FROM network_sync") > cursor);
    assert_int_equal(i1(f->d, "SELECT last_error IS NULL FROM network_sync"), 1);
    assert_string_equal(rad(f, "SELECT value FROM radreply WHERE username = 'ls001'"), "50000k/300000k\n");

    /* a new plan version in force from a later day: picked up that day */
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-12-31", 0, &r, &e), 0);
    assert_int_equal(r.accounts, 0);
    set_customer(f, 1, "active", NULL);
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-12-31", 0, &r, &e), 0);
    assert_string_equal(rad(f, "SELECT value FROM radreply WHERE username = 'zs001'"), "20000k/100000k\n");
    assert_int_equal(netsync_run(f->d, f->v, &p, "2027-01-01", 0, &r, &e), 0);
    assert_int_equal(r.changes, 2); /* zs001 and zs002 are on FIB100 */
    assert_string_equal(rad(f, "SELECT value FROM radreply WHERE username = 'zs001'"), "50000k/200000k\n");
    /* a new name: the old one's entries go, its session is disconnected */
    assert_int_equal(db_run(f->d, &e, "UPDATE service_accounts SET username = 'zs001b' WHERE id = 1", ""), 0);
    before = f->nas.received;
    assert_int_equal(netsync_run(f->d, f->v, &p, "2027-01-01", 0, &r, &e), 0);
    assert_int_equal(r.disconnect, 1);
    assert_int_equal(f->nas.received, before + 1);
    assert_int_equal(f->nas.last[0], RAD_DISCONNECT_REQUEST);
    assert_string_equal(rad(f, "SELECT username, attribute FROM radcheck WHERE username LIKE 'zs001%' ORDER BY 1"),
                        "zs001b|Cleartext-Password\n");
    assert_string_equal(t1(f, "SELECT username FROM network_accounts WHERE account_id = 1"), "zs001b");
    netsync_close(&p);
}

typedef struct drifts {
    char text[4096];
    int n;
} drifts;

static void collect(void *arg, const netplug_drift *d)
{
    drifts *x = arg;
    x->n++;
    snprintf(x->text + strlen(x->text), sizeof x->text - strlen(x->text), "%s %s %s %s [%s] [%s]\n", d->username, d->kind,
             d->where, d->attribute, d->have, d->want);
}

static void test_resync(void **state)
{
    fixture *f = *state;
    err e;
    netsync_plugin p;
    assert_int_equal(netsync_open(&f->c, &p, &e), 0);
    netsync_report r;
    assert_int_equal(netsync_run(f->d, f->v, &p, "2026-11-20", 0, &r, &e), 0);
    /* drift made by hand: a lost rate, another password, a stranger, a row too many */
    rad_exec(f, "DELETE FROM radreply WHERE username = 'ls001';"
                "UPDATE radcheck SET value = 'guessed' WHERE username = 'zs001';"
                "INSERT INTO radcheck (username, attribute, op, value) VALUES ('olduser', 'Cleartext-Password', ':=', 'x');"
                "INSERT INTO radreply (username, attribute, op, value) VALUES ('zs001', 'Framed-IP-Address', ':=', '1.2.3.4');");
    drifts d = {"", 0};
    assert_int_equal(netsync_resync(f->d, f->v, &p, "2026-11-20", 1, collect, &d, &r, &e), 0);
    assert_string_equal(d.text,
                        "zs001 wrong radcheck Cleartext-Password [(another password)] [:= (the password)]\n"
                        "zs001 extra radreply Framed-IP-Address [:= 1.2.3.4] []\n"
                        "ls001 missing radreply Mikrotik-Rate-Limit [] [:= 50000k/300000k]\n"
                        "olduser extra radcheck Cleartext-Password [:= (a password)] []\n");
    assert_int_equal(r.drift, 4);
    assert_int_equal(r.extra_users, 1);
    assert_string_equal(rad(f, "SELECT count(*) FROM radcheck WHERE username = 'olduser'"), "1\n"); /* a dry run */
    /* suspended zs002 is online: a resync disconnects it */
    insert_session(f, "zs002", "sess-9", "");
    memset(&d, 0, sizeof d);
    int before = f->nas.received;
    assert_int_equal(netsync_resync(f->d, f->v, &p, "2026-11-20", 0, collect, &d, &r, &e), 0);
    assert_int_equal(r.drift, 5);
    assert_non_null(strstr(d.text, "zs002 session radacct  [1 open session] [none (suspended)]"));
    assert_int_equal(r.disconnect, 1);
    assert_int_equal(f->nas.received, before + 1);
    assert_int_equal(f->nas.last[0], RAD_DISCONNECT_REQUEST);
    assert_string_equal(rad(f, "SELECT count(*) FROM radcheck WHERE username = 'olduser'"), "0\n");
    /* in sync now (the session stays in radacct until the NAS says it stopped) */
    memset(&d, 0, sizeof d);
    rad_exec(f, "UPDATE radacct SET acctstoptime = '2026-11-20 10:05:00' WHERE username = 'zs002'");
    assert_int_equal(netsync_resync(f->d, f->v, &p, "2026-11-20", 1, collect, &d, &r, &e), 0);
    assert_string_equal(d.text, "");
    assert_int_equal(r.accounts, 4);
    netsync_close(&p);

    /* Huawei's attributes, and the walled garden */
    snprintf(f->c.radius_rate_format, sizeof f->c.radius_rate_format, "huawei");
    snprintf(f->c.radius_suspended, sizeof f->c.radius_suspended, "walled_garden");
    snprintf(f->c.radius_walled_group, sizeof f->c.radius_walled_group, "unpaid");
    snprintf(f->c.radius_walled_reply, sizeof f->c.radius_walled_reply,
             "Mikrotik-Address-List := unpaid, WISPr-Redirection-URL = http://pay.example/?a=1");
    assert_int_equal(netsync_open(&f->c, &p, &e), 0);
    memset(&d, 0, sizeof d);
    assert_int_equal(netsync_resync(f->d, f->v, &p, "2026-11-20", 0, collect, &d, &r, &e), 0);
    assert_string_equal(rad(f, "SELECT username, attribute, value FROM radreply ORDER BY username, attribute"),
                        "ls001|Huawei-Input-Average-Rate|50000000\n"
                        "ls001|Huawei-Output-Average-Rate|300000000\n"
                        "zs001|Huawei-Input-Average-Rate|20000000\n"
                        "zs001|Huawei-Output-Average-Rate|100000000\n");
    assert_string_equal(rad(f, "SELECT username, groupname FROM radusergroup"), "zs002|unpaid\n");
    assert_string_equal(rad(f, "SELECT username, attribute, value FROM radcheck WHERE username = 'zs002'"),
                        "zs002|Cleartext-Password|Pw-zs002-x\n");
    assert_string_equal(rad(f, "SELECT groupname, attribute, op, value FROM radgroupreply ORDER BY id"),
                        "unpaid|Mikrotik-Address-List|:=|unpaid\n"
                        "unpaid|WISPr-Redirection-URL|=|http://pay.example/?a=1\n");
    assert_non_null(strstr(d.text, " missing radgroupreply:unpaid Mikrotik-Address-List [] [:= unpaid]"));
    netsync_close(&p);

    /* settings the plugin refuses, by name */
    snprintf(f->c.radius_walled_reply, sizeof f->c.radius_walled_reply, "Bad Attr := x");
    assert_int_equal(netsync_open(&f->c, &p, &e), ERR_INVALID);
    assert_string_equal(e.field, "radius.walled_garden_reply");
    snprintf(f->c.radius_walled_reply, sizeof f->c.radius_walled_reply, "A := b");
    snprintf(f->c.nas[0].address, sizeof f->c.nas[0].address, "nas.example");
    assert_int_equal(netsync_open(&f->c, &p, &e), ERR_INVALID);
    assert_string_equal(e.field, "nas.bras1");
    snprintf(f->c.nas[0].address, sizeof f->c.nas[0].address, "127.0.0.1");
    snprintf(f->c.plugins_dir, sizeof f->c.plugins_dir, "%s", f->dir);
    assert_int_equal(netsync_open(&f->c, &p, &e), ERR_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ladder_and_feed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_desired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    metrics_reset();
    return rc;
}
