/* cmd_bench.c - `bandbill bench customers`: creates N customers with a
 * PPPoE account, an ONU (and a set-top box with IPTV), their deposits and a
 * subscription, then times lookups by customer code, by phone and by PPPoE
 * account.
 *
 * The data is what the API would write: the customers of demo.c, validated
 * and sealed by customers_prepare (every phone and ID-card number
 * encrypted, with its keyed hash), PPPoE names from the rule
 * accounts.username, passwords encrypted, subscriptions decided by
 * subscriptions.addon_fits and subscriptions.schedule. It goes through the
 * modules' bulk paths: a worker thread does what needs no database
 * (generation, validation, encryption, rule calls with its own rule set)
 * while this thread writes, in one transaction. The audit trail gets one
 * record for the whole load, not one per row: the load is the audited act,
 * as an import would be.
 *
 * The secondary indexes whose keys are random (keyed hashes of phones and
 * ID cards, names, addresses, dates) are built after the rows, inside the
 * same transaction and the timed load, as a bulk import does: SQLite then
 * sorts each key list once instead of descending a B-tree at a random place
 * for every row (at a million customers that was half the writer's time).
 * The indexes are the schema's own (their SQL is read back from
 * sqlite_master), UNIQUE ones included: a duplicate fails the rebuild and
 * the whole load rolls back, and a crash at any point leaves the database
 * as it was. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounts.h"
#include "audit.h"
#include "cli.h"
#include "customers.h"
#include "date.h"
#include "demo.h"
#include "devices.h"
#include "rules.h"
#include "subs.h"
#include "vault.h"

#define BENCH_DEFAULT 100000
#define BENCH_MAX 10000000
#define BATCH 500                  /* customers per hand-over between the threads */
#define QUEUE 8                    /* batches prepared ahead */
#define LOOKUPS 10000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_s(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts)) return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ the work */

/* One customer, everything that needs no database done. */
typedef struct item {
    customer_prepared *cust;
    char username[ACCOUNT_USERNAME_BUF];
    buf pw_enc;
    device_prepared onu, stb;
    int has_stb, onu_deposit;
    char start[11];
    char address[DEVICE_ADDRESS_MAX + 1];
    const char *engineer;
    subs_prepared sub;
} item;

typedef struct batch {
    int64_t first_id;              /* the id the first customer will get */
    int n;
    int rc;                        /* the worker's error, with e */
    err e;
    item it[BATCH];
} batch;

typedef struct bench {
    /* read by the worker, set before it starts */
    const vault *v;
    rules_snapshot *snap;
    lhost_limits lim;
    const subs_catalog *cat;
    const char *prefix, *today, *by;
    int64_t base_id, count;
    uint64_t base_index;           /* customer id base_id is demo index base_index */
    /* the queue */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch *q[QUEUE];
    int head, len;
    int stop;                      /* the writer gave up */
    double worker_cpu;             /* the worker's CPU time, set as it ends */
} bench;

static void batch_free(batch *b)
{
    if (!b) return;
    for (int i = 0; i < b->n; i++) {
        customers_prepared_free(b->it[i].cust);
        buf_free(&b->it[i].pw_enc);
    }
    free(b);
}

/* The install address as devices_service_address writes it. */
static void address_line(const demo_customer *c, char *out, size_t n)
{
    const char *parts[] = {c->province, c->city, c->district, c->street, c->community, c->building, c->unit, c->floor, c->room};
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        if (!parts[i] || !parts[i][0]) continue;
        int w = snprintf(out + len, n - len, "%s%s", len ? " " : "", parts[i]);
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
}

static int prepare_one(bench *b, ruleset *rs, uint64_t index, int64_t id, jv_arena *a, item *it, err *e)
{
    demo_customer c;
    demo_story s;
    demo_customer_make(DEMO_SEED, index, &c);
    demo_story_make(DEMO_SEED, index, c.business, &s);
    /* every bench customer is a live one: the demo's prospects started as
     * long ago as they would have started ahead */
    int days = s.start_days_ago < 0 ? -s.start_days_ago : s.start_days_ago;
    int32_t t = 0;
    date_parse(b->today, 10, &t, NULL);
    date_format(t - days, it->start);

    const char *tags[4];
    size_t ntags = 0;
    if (c.business) tags[ntags++] = "business";
    if (s.vip) tags[ntags++] = "vip";
    if (s.staff) tags[ntags++] = "staff";
    if (days <= 90) tags[ntags++] = "new_user";
    jv *in;
    int rc = demo_customer_jv(&c, "active", tags, ntags, a, &in, e);
    if (!rc) rc = customers_prepare(b->v, in, &it->cust, e);
    if (rc) return err_prefix(e, "customer %s", c.name);

    char code[CUSTOMER_CODE_MAX];
    customers_make_code(b->prefix, id, code);
    rule_error re;
    if ((rc = accounts_username_rule(rs, code, id, c.city, c.district, 1, 1, a, it->username, &re, e))) return rc;
    char pw[ACCOUNT_PASSWORD_BUF];
    rc = accounts_password_generate(pw, e);
    if (!rc) rc = accounts_seal_password(b->v, pw, &it->pw_enc, e);
    explicit_bzero(pw, sizeof pw);
    if (rc) return rc;

    char serial[17], mac[18];
    const char *vendor, *model;
    demo_onu(DEMO_SEED, index, serial, mac, &vendor, &model);
    if ((rc = devices_prepare("onu", serial, mac, model, vendor, &it->onu, e))) return rc;
    it->onu_deposit = !s.own_onu;
    if (s.addons & DEMO_ADDON_IPTV) {
        demo_stb(DEMO_SEED, index, serial, mac, &vendor, &model);
        if ((rc = devices_prepare("stb", serial, mac, model, vendor, &it->stb, e))) return rc;
        it->has_stb = 1;
    }
    address_line(&c, it->address, sizeof it->address);
    it->engineer = demo_engineer(index);

    static const struct {
        int bit;
        const char *code;
    } ADDONS[] = {{DEMO_ADDON_IP, "STATICIP"}, {DEMO_ADDON_IPTV, "IPTV"}, {DEMO_ADDON_BOOST, "BOOST"}};
    const char *addons[3];
    size_t nad = 0;
    for (size_t k = 0; k < 3; k++)
        if (s.addons & ADDONS[k].bit) addons[nad++] = ADDONS[k].code;
    subs_new sn = {.plan = demo_plan_codes[s.plan],
                   .start_date = it->start,
                   .addons = addons,
                   .naddons = nad,
                   .today = b->today,
                   .by = b->by};
    const jv *addr = jv_get(in, "address"), *tl = jv_get(in, "tags");
    if ((rc = subs_prepare(b->cat, rs, &sn, addr, tl, &it->sub, &re, e))) return err_prefix(e, "customer %s: subscription", code);
    return 0;
}

static void *worker(void *arg)
{
    bench *b = arg;
    ruleset *rs = NULL;
    err e;
    err_clear(&e);
    /* a rule set is used by one thread at a time: the worker loads its own
     * copy of the same snapshot (same files, same version, same answers) */
    int rc = ruleset_load(b->snap, &b->lim, 0, &rs, NULL, &e);
    jv_arena a;
    jv_arena_init(&a, 0);
    for (int64_t done = 0; done < b->count;) {
        batch *bt = calloc(1, sizeof *bt);
        if (!bt) {
            rc = ERR_NOMEM_RET(&e);
        } else {
            bt->first_id = b->base_id + done;
            bt->rc = rc;
            if (rc) bt->e = e;
            for (int i = 0; !bt->rc && i < BATCH && done + i < b->count; i++) {
                int64_t k = done + i;
                bt->rc = prepare_one(b, rs, b->base_index + (uint64_t)k, b->base_id + k, &a, &bt->it[i], &bt->e);
                bt->n = i + 1;
                jv_arena_reset(&a);
            }
        }
        pthread_mutex_lock(&b->mu);
        while (b->len == QUEUE && !b->stop) pthread_cond_wait(&b->cv, &b->mu);
        int stop = b->stop;
        if (!stop && bt) {
            b->q[(b->head + b->len) % QUEUE] = bt;
            b->len++;
            pthread_cond_broadcast(&b->cv);
        }
        pthread_mutex_unlock(&b->mu);
        if (stop || !bt) {
            batch_free(bt);
            break;
        }
        if (bt->rc) break;
        done += bt->n;
    }
    jv_arena_free(&a);
    ruleset_unref(rs);
    b->worker_cpu = thread_cpu_s(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
}

static batch *next_batch(bench *b)
{
    pthread_mutex_lock(&b->mu);
    while (b->len == 0) pthread_cond_wait(&b->cv, &b->mu);
    batch *bt = b->q[b->head];
    b->head = (b->head + 1) % QUEUE;
    b->len--;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return bt;
}

typedef struct totals {
    int64_t customers, accounts, devices, deposits, subscriptions;
} totals;

/* The writes of one customer, in the open transaction. */
static int write_one(db *d, ruleset *rs, const bench *b, const item *it, int64_t id, int64_t price_onu, int64_t price_stb,
                     totals *t, err *e)
{
    int64_t cid, acc, dev, inst, dep, sid;
    int rc = customers_insert(d, b->prefix, it->cust, b->by, id, &cid, e);
    if (rc) return rc;
    t->customers++;
    rc = accounts_insert(d, cid, it->username, buf_cstr(&it->pw_enc), &acc, e);
    if (rc == ERR_CONFLICT) {
        /* someone has that name already: the rule is asked again here,
         * where the names in use can be seen */
        char name[ACCOUNT_USERNAME_BUF];
        rule_error re;
        jv_arena a;
        jv_arena_init(&a, 0);
        rc = accounts_username_from_rule(d, rs, cid, &a, name, &re, e);
        jv_arena_free(&a);
        if (!rc) rc = accounts_insert(d, cid, name, buf_cstr(&it->pw_enc), &acc, e);
    }
    if (rc) return rc;
    t->accounts++;
    install_req ir = {.customer_id = cid, .account_id = acc, .installed_on = it->start, .engineer = it->engineer,
                      .address = it->address};
    if ((rc = devices_insert_installed(d, &it->onu, &ir, 1, &dev, &inst, e))) return rc;
    t->devices++;
    if (it->onu_deposit) {
        if ((rc = deposits_insert_new(d, cid, &it->onu, dev, "DEP-ONU", price_onu, it->start, NULL, &dep, e))) return rc;
        t->deposits++;
    }
    if (it->has_stb) {
        install_req sr = ir;
        sr.account_id = 0;
        if ((rc = devices_insert_installed(d, &it->stb, &sr, 1, &dev, &inst, e))) return rc;
        if ((rc = deposits_insert_new(d, cid, &it->stb, dev, "DEP-STB", price_stb, it->start, NULL, &dep, e))) return rc;
        t->devices++;
        t->deposits++;
    }
    if ((rc = subs_insert(d, &it->sub, cid, acc, 1, NULL, b->today, b->by, &sid, e))) return rc;
    t->subscriptions++;
    return 0;
}

/* ------------------------------------------------------------ deferred indexes */

/* The indexes built after the rows: random keys, so one sort beats a
 * million inserts at random places. The ones keyed by the customer or
 * subscription id grow at their right edge and stay. */
static const struct {
    const char *name, *drop;
} DEFERRED[] = {
    {"customers_id_card", "DROP INDEX customers_id_card"},
    {"customers_phone", "DROP INDEX customers_phone"},
    {"customers_phone2", "DROP INDEX customers_phone2"},
    {"customers_name", "DROP INDEX customers_name"},
    {"addresses_place", "DROP INDEX addresses_place"},
    {"addresses_community", "DROP INDEX addresses_community"},
    {"subscriptions_next_bill", "DROP INDEX subscriptions_next_bill"},
    {"subscription_changes_due", "DROP INDEX subscription_changes_due"},
};
#define NDEFERRED (sizeof DEFERRED / sizeof *DEFERRED)

/* Reads each deferred index's CREATE statement from the schema and drops
 * the index, inside the open transaction. sql[i] is NULL for an index the
 * database does not have (nothing to rebuild). */
static int indexes_drop(db *d, char *sql[NDEFERRED], err *e)
{
    for (size_t i = 0; i < NDEFERRED; i++) {
        db_stmt *s = db_prepare(d, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ? AND sql IS NOT NULL", e);
        if (!s) return e->code;
        db_bind_text(s, 1, DEFERRED[i].name);
        int rc = db_step(d, s, e);
        if (rc == DB_ROW && !(sql[i] = strdup(db_col_text(s, 0)))) rc = ERR_NOMEM_RET(e);
        db_done(s);
        if (rc < 0) return rc;
        if (!sql[i]) continue;
        s = db_prepare_once(d, DEFERRED[i].drop, e);
        if (!s) return e->code;
        rc = db_step(d, s, e);
        db_finalize(s);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Builds the dropped indexes again from the schema's own SQL (text the
 * migrations wrote, not user input). */
static int indexes_build(db *d, char *sql[NDEFERRED], err *e)
{
    for (size_t i = 0; i < NDEFERRED; i++) {
        if (!sql[i]) continue;
        db_stmt *s = db_prepare_once(d, sql[i], e);
        if (!s) return e->code;
        int rc = db_step(d, s, e);
        db_finalize(s);
        if (rc < 0) return err_prefix(e, "rebuilding index %s", DEFERRED[i].name);
        free(sql[i]);
        sql[i] = NULL;
    }
    return 0;
}

/* ------------------------------------------------------------ lookups */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double p50, p99, max;
} stats;

static stats summarize(double *us, int n)
{
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    stats s = {us[n / 2], us[(int)((double)n * 0.99)], us[n - 1]};
    return s;
}

/* Times customers_search by one key for each of the n customers; each
 * must find exactly its customer. */
static int time_lookups(db *d, const vault *v, const char *what, char (*keys)[40], char (*codes)[CUSTOMER_CODE_MAX], int n,
                        double *us, stats *out, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    int rc = 0;
    for (int i = 0; !rc && i < n; i++) {
        customer_query q;
        memset(&q, 0, sizeof q);
        q.limit = 20;
        if (!strcmp(what, "code")) q.code = keys[i];
        else if (!strcmp(what, "phone")) q.phone = keys[i];
        else q.pppoe = keys[i];
        jv *list;
        char next[CUSTOMERS_CURSOR_MAX];
        double t0 = now_s();
        rc = customers_search(d, v, &q, &a, &list, next, NULL, e);
        us[i] = (now_s() - t0) * 1e6;
        const jv *first = rc ? NULL : jv_at(list, 0), *code = jv_get(first, "code");
        if (!rc && (jv_len(list) != 1 || !code || code->kind != JV_STR || strcmp(code->u.str.s, codes[i])))
            rc = err_set(e, ERR_INTERNAL, "lookup by %s %s did not find exactly customer %s", what, keys[i], codes[i]);
        jv_arena_reset(&a);
    }
    jv_arena_free(&a);
    if (!rc) *out = summarize(us, n);
    return rc;
}

static int lookups(db *d, const vault *v, const bench *b, int64_t created, int want, stats out[3], int *n_out, err *e)
{
    int n = created < want ? (int)created : want;
    *n_out = n;
    if (n <= 0) return 0;
    char (*codes)[CUSTOMER_CODE_MAX] = calloc((size_t)n, sizeof *codes);
    char (*phones)[40] = calloc((size_t)n, sizeof *phones), (*users)[40] = calloc((size_t)n, sizeof *users);
    double *us = calloc((size_t)n, sizeof *us);
    int rc = codes && phones && users && us ? 0 : ERR_NOMEM_RET(e);
    /* random customers of this load, the same ones on every run */
    demo_rng r;
    demo_rng_seed(&r, DEMO_SEED ^ 0x100c0f5ull);
    for (int i = 0; !rc && i < n; i++) {
        int64_t k = created > 0xffffffffLL ? (int64_t)(demo_rng_next(&r) % (uint64_t)created) : demo_rng_below(&r, (uint32_t)created);
        int64_t id = b->base_id + k;
        customers_make_code(b->prefix, id, codes[i]);
        char phone[12];
        demo_mobile(DEMO_SEED, b->base_index + (uint64_t)k, phone);
        snprintf(phones[i], sizeof phones[i], "%s", phone);
        db_stmt *s = db_prepare(d, "SELECT username FROM service_accounts WHERE customer_id = ? ORDER BY id LIMIT 1", e);
        if (!s) rc = e->code;
        else {
            db_bind_int(s, 1, id);
            if ((rc = db_step(d, s, e)) == DB_ROW) {
                snprintf(users[i], sizeof users[i], "%s", db_col_text(s, 0));
                rc = 0;
            } else if (rc == DB_DONE) {
                rc = err_set(e, ERR_INTERNAL, "customer %s has no PPPoE account", codes[i]);
            }
            db_done(s);
        }
    }
    if (!rc) {
        char (*keys)[40] = calloc((size_t)n, sizeof *keys);
        if (!keys) rc = ERR_NOMEM_RET(e);
        for (int i = 0; !rc && i < n; i++) snprintf(keys[i], sizeof keys[i], "%s", codes[i]);
        if (!rc) rc = time_lookups(d, v, "code", keys, codes, n, us, &out[0], e);
        free(keys);
    }
    if (!rc) rc = time_lookups(d, v, "phone", phones, codes, n, us, &out[1], e);
    if (!rc) rc = time_lookups(d, v, "pppoe", users, codes, n, us, &out[2], e);
    free(codes);
    free(phones);
    free(users);
    free(us);
    return rc;
}

/* ------------------------------------------------------------ the command */

/* A PRAGMA that answers one row: its text in out (may be NULL). */
static int pragma(db *d, const char *sql, char *out, size_t n, err *e)
{
    db_stmt *s = db_prepare(d, sql, e);
    if (!s) return e->code;
    int rc = db_step(d, s, e);
    if (out) snprintf(out, n, "%s", rc == DB_ROW ? db_col_text(s, 0) : "");
    db_done(s);
    return rc < 0 ? rc : 0;
}

/* Every row the load wrote satisfies every CHECK and NOT NULL constraint
 * of its table (and the tables and their indexes are sound). */
static int verify(db *d, err *e)
{
    static const char *const checks[] = {
        "PRAGMA quick_check(customers)",          "PRAGMA quick_check(addresses)",
        "PRAGMA quick_check(customer_tags)",      "PRAGMA quick_check(service_accounts)",
        "PRAGMA quick_check(devices)",            "PRAGMA quick_check(installations)",
        "PRAGMA quick_check(deposits)",           "PRAGMA quick_check(subscriptions)",
        "PRAGMA quick_check(subscription_items)", "PRAGMA quick_check(subscription_changes)",
    };
    for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
        char res[256];
        int rc = pragma(d, checks[i], res, sizeof res, e);
        if (rc) return rc;
        if (strcmp(res, "ok")) return err_set(e, ERR_INTERNAL, "%s: %s", checks[i], res);
    }
    return 0;
}

int cmd_bench_customers(cli *c, err *e)
{
    const char *cnt = cli_opt_value(c, "count"), *nl_opt = cli_opt_value(c, "lookups");
    int with_checks = cli_opt_value(c, "checks") != NULL;
    char *end = NULL;
    long long count = cnt ? strtoll(cnt, &end, 10) : BENCH_DEFAULT;
    if (cnt && (!*cnt || *end || count < 1 || count > BENCH_MAX))
        return err_set(e, ERR_USAGE, "--count must be a whole number from 1 to %d, not '%s'", BENCH_MAX, cnt);
    long long nlookups = nl_opt ? strtoll(nl_opt, &end, 10) : LOOKUPS;
    if (nl_opt && (!*nl_opt || *end || nlookups < 0 || nlookups > 1000000))
        return err_set(e, ERR_USAGE, "--lookups must be a whole number from 0 to 1000000, not '%s'", nl_opt);
    /* SQLite's temporary structures come and go millions of times: keep
     * freed memory in the process instead of giving it back each time */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_TOP_PAD, 16 << 20);

    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    vault *v = NULL;
    rules_snapshot *snap = NULL;
    ruleset *rs = NULL;
    subs_catalog *cat = NULL;
    char actor[96], today[11], journal[32] = "wal";
    cli_actor(actor, sizeof actor);
    date_format(date_of_time(time(NULL)), today);
    bench b;
    memset(&b, 0, sizeof b);
    b.lim = (lhost_limits){(uint64_t)c->cfg.rules_max_instructions, (size_t)c->cfg.rules_max_memory_mb << 20};
    rc = rules_snapshot_read(c->cfg.rules, &snap, e);
    if (!rc) rc = ruleset_load(snap, &b.lim, 1, &rs, NULL, e);
    if (!rc) rc = cli_open_vault(c, &v, e);
    demo_env env = {.d = d, .v = v, .rs = rs, .seed = DEMO_SEED, .today = today, .by = actor, .code_prefix = c->cfg.customer_prefix};
    demo_counts dc;
    memset(&dc, 0, sizeof dc);
    int64_t price_onu = 0, price_stb = 0, max_id = 0;
    /* the catalog the customers subscribe to: the demo's */
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = demo_catalog_load(&env, &dc, e);
    if (!rc) rc = db_commit(d, e);
    if (!rc) rc = subs_catalog_load(d, &cat, e);
    if (!rc) rc = deposits_product_check(d, "DEP-ONU", today, &price_onu, e);
    if (!rc) rc = deposits_product_check(d, "DEP-STB", today, &price_stb, e);
    if (!rc) rc = db_get_int(d, e, &max_id, "SELECT coalesce(max(id), 0) FROM customers", NULL);
    b.v = v;
    b.snap = snap;
    b.cat = cat;
    b.prefix = c->cfg.customer_prefix;
    b.today = today;
    b.by = actor;
    b.base_id = max_id + 1;
    b.count = count;
    /* demo index = id - 1 + DEMO_CUSTOMERS: never one of the demo's own
     * customers (0 .. DEMO_CUSTOMERS - 1), so phones, ID cards and serials
     * stay unique next to the demo and across runs */
    b.base_index = (uint64_t)max_id + DEMO_CUSTOMERS;
    if (!rc && b.base_index + (uint64_t)count >= DEMO_STOCK_BASE)
        rc = err_set(e, ERR_LIMIT, "the database already holds %lld customers: use a fresh one", (long long)max_id);
    /* Tuning of this connection for a bulk load; none changes what is
     * written. A page cache that holds what the load touches. The
     * schema's CHECK constraints spell their value lists as IN (...), which
     * SQLite 3.40 evaluates by building a temporary index for every row
     * (about 3 us each, ten per customer): the modules have already checked
     * the same values, and verify() proves every row against them after
     * the load, so SQLite is asked not to repeat the work unless --checks.
     * A rollback journal instead of the WAL writes each page once instead
     * of twice (WAL, then checkpoint); it is as safe, and the WAL comes
     * back at the end. */
    if (!rc) rc = pragma(d, "PRAGMA cache_size = -4194304", NULL, 0, e);
    /* the index builds at the end sort with a helper thread: by then the
     * worker is done and its core is free */
    if (!rc) rc = pragma(d, "PRAGMA threads = 1", NULL, 0, e);
    if (!rc && !with_checks) rc = pragma(d, "PRAGMA ignore_check_constraints = ON", NULL, 0, e);
    if (!rc) {
        err je;
        /* refused while another connection has the database open: the load
         * then goes through the WAL */
        if (pragma(d, "PRAGMA journal_mode = DELETE", journal, sizeof journal, &je)) snprintf(journal, sizeof journal, "wal");
    }
    if (rc) goto out;
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, worker, &b)) {
        rc = err_set(e, ERR_INTERNAL, "cannot start the worker thread");
        goto out;
    }

    if (!c->json) {
        printf("bench customers: %lld customers into %s (ids from %lld; %s journal during the load; CHECK constraints %s)\n",
               count, c->cfg.db, (long long)b.base_id, journal,
               with_checks ? "evaluated by SQLite on every row" : "enforced by the modules, verified after the load");
        fflush(stdout);
    }
    totals t;
    memset(&t, 0, sizeof t);
    char *index_sql[NDEFERRED] = {0};
    double t0 = now_s(), cpu0 = thread_cpu_s(CLOCK_THREAD_CPUTIME_ID), wcpu = 0, index_s = 0;
    int64_t done = 0;
    rc = db_begin(d, e);
    if (!rc) rc = indexes_drop(d, index_sql, e);
    while (!rc && done < count) {
        batch *bt = next_batch(&b);
        if (bt->rc) {
            rc = bt->rc;
            *e = bt->e;
        }
        for (int i = 0; !rc && i < bt->n; i++) {
            rc = write_one(d, rs, &b, &bt->it[i], bt->first_id + i, price_onu, price_stb, &t, e);
            if (rc) err_prefix(e, "customer %lld of the load", (long long)(done + i + 1));
        }
        done += bt->n;
        batch_free(bt);
        if (!rc && done % 100000 == 0 && done < count && !c->json) {
            printf("  %lld customers, %.1f s\n", (long long)done, now_s() - t0);
            fflush(stdout);
        }
    }
    if (!rc) {
        double i0 = now_s();
        rc = indexes_build(d, index_sql, e);
        index_s = now_s() - i0;
    }
    for (size_t i = 0; i < NDEFERRED; i++) free(index_sql[i]);
    /* one audit record for the whole load */
    audit_event ev = {.action = "bench.customers", .object_type = "customer"};
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *detail = jv_obj(&a);
    if (!rc && (!detail || jv_obj_set_int(&a, detail, "customers", t.customers) ||
                jv_obj_set_int(&a, detail, "first_id", b.base_id)))
        rc = ERR_NOMEM_RET(e);
    ev.detail = detail;
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    jv_arena_free(&a);
    if (rc && db_in_tx(d)) db_rollback(d);
    if (strcmp(journal, "wal")) {
        err je;
        if (pragma(d, "PRAGMA journal_mode = WAL", NULL, 0, &je) && !rc) {
            rc = je.code;
            *e = je;
        }
    }
    double elapsed = now_s() - t0, cpu = thread_cpu_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    pthread_mutex_lock(&b.mu);
    b.stop = 1;
    pthread_cond_broadcast(&b.cv);
    pthread_mutex_unlock(&b.mu);
    pthread_join(th, NULL);
    wcpu = b.worker_cpu;
    while (b.len) batch_free(next_batch(&b));
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    err ie;
    pragma(d, "PRAGMA ignore_check_constraints = OFF", NULL, 0, &ie);
    if (rc) goto out;

    /* not timed: the proof that skipping SQLite's CHECKs skipped nothing */
    double v0 = now_s();
    rc = verify(d, e);
    double verified = now_s() - v0;
    stats st[3];
    int nl = 0;
    if (!rc) rc = lookups(d, v, &b, t.customers, (int)nlookups, st, &nl, e);
    if (rc) goto out;
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_int(&w, "customers", t.customers);
        jw_kv_int(&w, "accounts", t.accounts);
        jw_kv_int(&w, "devices", t.devices);
        jw_kv_int(&w, "deposits", t.deposits);
        jw_kv_int(&w, "subscriptions", t.subscriptions);
        jw_kv_int(&w, "first_id", b.base_id);
        jw_kv_str(&w, "journal", journal);
        jw_kv_bool(&w, "sqlite_checks", with_checks);
        char num[64];
        static const char *const keys[] = {"elapsed_s", "writer_cpu_s", "worker_cpu_s", "index_build_s", "verify_s"};
        double vals[] = {elapsed, cpu, wcpu, index_s, verified};
        for (int k = 0; k < 5; k++) {
            snprintf(num, sizeof num, "%.3f", vals[k]);
            jw_key(&w, keys[k]);
            jw_raw_num(&w, num);
        }
        snprintf(num, sizeof num, "%.0f", (double)t.customers / elapsed);
        jw_key(&w, "customers_per_s");
        jw_raw_num(&w, num);
        jw_kv_int(&w, "lookups", nl);
        static const char *const names[] = {"by_code", "by_phone", "by_pppoe"};
        for (int k = 0; k < 3 && nl; k++) {
            jw_key(&w, names[k]);
            jw_obj_open(&w);
            snprintf(num, sizeof num, "%.1f", st[k].p50);
            jw_key(&w, "p50_us");
            jw_raw_num(&w, num);
            snprintf(num, sizeof num, "%.1f", st[k].p99);
            jw_key(&w, "p99_us");
            jw_raw_num(&w, num);
            snprintf(num, sizeof num, "%.1f", st[k].max);
            jw_key(&w, "max_us");
            jw_raw_num(&w, num);
            jw_obj_close(&w);
        }
        jw_obj_close(&w);
        rc = cli_print_json(&w, e);
    } else {
        printf("created %lld customers with %lld PPPoE accounts, %lld devices, %lld deposits, %lld subscriptions "
               "in %.2f s: %.0f customers/s\n",
               (long long)t.customers, (long long)t.accounts, (long long)t.devices, (long long)t.deposits,
               (long long)t.subscriptions, elapsed, (double)t.customers / elapsed);
        printf("  CPU: writer thread %.1f s, worker thread %.1f s; of the elapsed time, %.1f s built %zu secondary indexes\n",
               cpu, wcpu, index_s, NDEFERRED);
        printf("  constraints verified after the load in %.1f s (load and verification: %.1f s)\n", verified,
               elapsed + verified);
        static const char *const names[] = {"customer code", "phone (keyed hash)", "PPPoE account"};
        for (int k = 0; k < 3 && nl; k++)
            printf("lookup by %-19s %d random customers: p50 %.1f us, p99 %.1f us, max %.1f us\n", names[k], nl, st[k].p50,
                   st[k].p99, st[k].max);
    }
out:
    subs_catalog_free(cat);
    ruleset_unref(rs);
    if (snap) rules_snapshot_unref(snap);
    vault_close(v);
    db_close(d);
    return rc;
}
