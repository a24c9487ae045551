/* test_demo.c - the demo data set: every generated value is valid by the
 * same checks the API applies (ID cards, mobiles, landlines, tax ids,
 * e-mails, device serials of the vendor formats), values that must be
 * unique are, the same seed and index always give the same customer and
 * story and another seed another one, the catalog has the five plans of the
 * issue with add-ons, fees, deposits and promotions; and loaded through the
 * modules into two fresh databases, a slice of the demo is the same in both
 * (names, codes, addresses, plans, dates), and the billing position leaves
 * each postpaid monthly subscription due for exactly one month. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "customers.h"
#include "date.h"
#include "db.h"
#include "demo.h"
#include "json.h"
#include "migrate.h"
#include "rules.h"
#include "vault.h"
#include "unit_fs.h"

#define N DEMO_CUSTOMERS

static int cmp_str(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* How many adjacent equal strings a sorted array of n fixed-size strings has. */
static int dups(char *base, size_t n, size_t size)
{
    qsort(base, n, size, cmp_str);
    int d = 0;
    for (size_t i = 1; i < n; i++) d += !strcmp(base + (i - 1) * size, base + i * size);
    return d;
}

/* ------------------------------------------------------------ values */

static void test_values_pass_the_api_checks(void **state)
{
    (void)state;
    static char phones[N][16], cards[N][20];
    err e;
    err_clear(&e);
    int business = 0, with_phone2 = 0, with_email = 0;
    for (uint64_t i = 0; i < N; i++) {
        demo_customer c;
        demo_customer_make(DEMO_SEED, i, &c);
        char out[256];
        assert_int_equal(customers_normalize_mobile(c.phone, phones[i], &e), 0);
        assert_string_equal(phones[i], c.phone);
        assert_int_equal(customers_normalize_id_card(c.id_card, cards[i], &e), 0);
        /* the ID card's birth year is the customer's, and an adult's */
        char year[5];
        memcpy(year, c.id_card + 6, 4);
        year[4] = '\0';
        assert_int_equal(atoi(year), c.birth_year);
        assert_in_range(c.birth_year, 1950, 2005);
        /* the 17th digit's parity is the sex */
        assert_int_equal((c.id_card[16] - '0') % 2, c.male);
        if (c.phone2[0]) {
            with_phone2++;
            assert_int_equal(customers_normalize_phone2(c.phone2, out, &e), 0);
        }
        if (c.email[0]) {
            with_email++;
            assert_int_equal(customers_normalize_email(c.email, out, &e), 0);
        }
        if (c.business) {
            business++;
            assert_true(c.company[0]);
            assert_int_equal(customers_normalize_tax_id(c.tax_id, out, &e), 0);
        }
        assert_true(c.name[0]);
        assert_string_equal(c.province, "浙江省");
        assert_string_equal(c.city, "杭州市");
        assert_true(c.district && c.street && c.community && c.building[0] && c.room[0]);
    }
    /* a mix, not all or nothing */
    assert_in_range(business, N / 50, N / 4);
    assert_in_range(with_phone2, 1, N - 1);
    assert_in_range(with_email, 1, N - 1);
    assert_int_equal(dups(&phones[0][0], N, sizeof phones[0]), 0);
    assert_int_equal(dups(&cards[0][0], N, sizeof cards[0]), 0);
}

static void test_a_few_districts_of_hangzhou(void **state)
{
    (void)state;
    const char *seen[32];
    int nseen = 0;
    for (uint64_t i = 0; i < N; i++) {
        demo_customer c;
        demo_customer_make(DEMO_SEED, i, &c);
        int k = 0;
        while (k < nseen && strcmp(seen[k], c.district)) k++;
        if (k == nseen) {
            assert_true(nseen < 32);
            seen[nseen++] = c.district;
        }
        assert_non_null(strstr(c.district, "区"));
    }
    /* "a few districts": more than one, not the whole city */
    assert_in_range(nseen, 3, 8);
}

static int vendor_serial(const char *s, size_t letters, size_t hex)
{
    if (strlen(s) != letters + hex) return 0;
    for (size_t i = 0; i < letters; i++)
        if (!isupper((unsigned char)s[i])) return 0;
    for (size_t i = letters; i < letters + hex; i++)
        if (!isxdigit((unsigned char)s[i]) || islower((unsigned char)s[i])) return 0;
    return 1;
}

static int mac_ok(const char *m)
{
    if (strlen(m) != 17) return 0;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? m[i] != ':' : !isxdigit((unsigned char)m[i]) || isupper((unsigned char)m[i])) return 0;
    return 1;
}

static void test_devices_have_vendor_formats_and_are_unique(void **state)
{
    (void)state;
    static char serials[2 * N][20], macs[2 * N][20];
    for (uint64_t i = 0; i < N; i++) {
        char serial[17], mac[18];
        const char *vendor, *model;
        demo_onu(DEMO_SEED, i, serial, mac, &vendor, &model);
        assert_true(vendor_serial(serial, 4, 8));
        assert_true(!strncmp(serial, "ZTEG", 4) || !strncmp(serial, "HWTC", 4));
        assert_string_equal(vendor, !strncmp(serial, "ZTEG", 4) ? "ZTE" : "Huawei");
        assert_true(mac_ok(mac));
        assert_true(model && model[0]);
        snprintf(serials[2 * i], sizeof serials[0], "%s", serial);
        snprintf(macs[2 * i], sizeof macs[0], "%s", mac);
        demo_stb(DEMO_SEED, i, serial, mac, &vendor, &model);
        assert_true(mac_ok(mac));
        snprintf(serials[2 * i + 1], sizeof serials[0], "%s", serial);
        snprintf(macs[2 * i + 1], sizeof macs[0], "%s", mac);
    }
    assert_int_equal(dups(&serials[0][0], 2 * N, sizeof serials[0]), 0);
    assert_int_equal(dups(&macs[0][0], 2 * N, sizeof macs[0]), 0);
}

/* ------------------------------------------------------------ determinism */

static int same_customer(const demo_customer *a, const demo_customer *b)
{
    return a->business == b->business && a->male == b->male && a->birth_year == b->birth_year && !strcmp(a->name, b->name) &&
           !strcmp(a->company, b->company) && !strcmp(a->id_card, b->id_card) && !strcmp(a->phone, b->phone) &&
           !strcmp(a->phone2, b->phone2) && !strcmp(a->email, b->email) && !strcmp(a->district, b->district) &&
           !strcmp(a->community, b->community) && !strcmp(a->building, b->building) && !strcmp(a->room, b->room);
}

static void test_same_seed_same_data_other_seed_other_data(void **state)
{
    (void)state;
    int differ = 0;
    /* any order: customer i does not depend on the ones made before it */
    for (int64_t i = N - 1; i >= 0; i--) {
        demo_customer a, b, c;
        demo_customer_make(DEMO_SEED, (uint64_t)i, &a);
        demo_customer_make(DEMO_SEED, (uint64_t)(N - 1 - i), &c);
        demo_customer_make(DEMO_SEED, (uint64_t)i, &b);
        assert_true(same_customer(&a, &b));
        demo_story s1, s2;
        demo_story_make(DEMO_SEED, (uint64_t)i, a.business, &s1);
        demo_story_make(DEMO_SEED, (uint64_t)i, a.business, &s2);
        assert_memory_equal(&s1, &s2, sizeof s1);
        demo_customer_make(DEMO_SEED + 1, (uint64_t)i, &b);
        differ += !same_customer(&a, &b);
    }
    assert_int_equal(differ, N);
}

static void test_stories_make_a_living_isp(void **state)
{
    (void)state;
    int by_status[5] = {0}, by_plan[DEMO_PLANS] = {0}, iptv = 0, ip = 0, boost = 0, vip = 0, own = 0;
    for (uint64_t i = 0; i < N; i++) {
        demo_customer c;
        demo_story s;
        demo_customer_make(DEMO_SEED, i, &c);
        demo_story_make(DEMO_SEED, i, c.business, &s);
        by_status[s.status]++;
        by_plan[s.plan]++;
        /* add-ons only where the catalog lets them fit */
        if (s.addons & DEMO_ADDON_IPTV) {
            iptv++;
            assert_int_not_equal(s.plan, DEMO_PLAN_100);
        }
        if (s.addons & DEMO_ADDON_IP) {
            ip++;
            assert_true(s.plan == DEMO_PLAN_500 || s.plan == DEMO_PLAN_1000 || s.plan == DEMO_PLAN_500Y);
        }
        if (s.addons & DEMO_ADDON_BOOST) {
            boost++;
            assert_true(s.plan == DEMO_PLAN_100 || s.plan == DEMO_PLAN_300);
        }
        vip += s.vip;
        own += s.own_onu;
        /* prospects start ahead, everyone else within two years (a closed
         * customer stayed at least two months) */
        if (s.status == DEMO_PROSPECT) assert_true(s.start_days_ago < 0);
        else assert_in_range(s.start_days_ago, 0, 731 + 60);
        if (s.upgraded_days_ago) assert_true(s.upgraded_days_ago < s.start_days_ago);
        if (s.status == DEMO_CLOSED || s.status == DEMO_SUSPENDED) assert_in_range(s.event_days_ago, 1, s.start_days_ago);
    }
    /* most customers are active, and every state and plan occurs */
    assert_true(by_status[DEMO_ACTIVE] > N * 7 / 10);
    for (int k = 0; k < 5; k++) assert_true(by_status[k] > 0);
    for (int k = 0; k < DEMO_PLANS; k++) assert_true(by_plan[k] > N / 50);
    assert_true(iptv > 0 && ip > 0 && boost > 0 && vip > 0 && own > 0);
}

static void test_catalog_has_the_five_plans(void **state)
{
    (void)state;
    jv_arena a;
    jv_arena_init(&a, 0);
    err e;
    err_clear(&e);
    jv *list;
    assert_int_equal(demo_catalog_json("2026-11-27", &a, &list, &e), 0);
    int kinds[5] = {0};
    static const char *const kind_names[] = {"plan", "addon", "fee", "deposit", "promotion"};
    int plans_seen = 0;
    for (size_t i = 0; i < jv_len(list); i++) {
        const jv *p = jv_get(jv_at(list, i), "product"), *v = jv_get(p, "version"), *attrs = jv_get(v, "attrs");
        const char *kind = jv_get(p, "kind")->u.str.s, *code = jv_get(p, "code")->u.str.s;
        for (int k = 0; k < 5; k++) kinds[k] += !strcmp(kind, kind_names[k]);
        /* every version starts before the oldest subscription (two years) */
        assert_true(strcmp(jv_get(v, "effective_from")->u.str.s, "2024-11-27") < 0);
        if (strcmp(kind, "plan")) continue;
        int k = 0;
        while (k < DEMO_PLANS && strcmp(demo_plan_codes[k], code)) k++;
        assert_true(k < DEMO_PLANS);
        plans_seen |= 1 << k;
        static const int mbps[DEMO_PLANS] = {100, 300, 500, 1000, 500};
        assert_int_equal(jv_get(attrs, "download_mbps")->u.i, mbps[k]);
        assert_string_equal(jv_get(attrs, "period")->u.str.s, k == DEMO_PLAN_500Y ? "year" : "month");
        assert_string_equal(jv_get(attrs, "billing")->u.str.s, k == DEMO_PLAN_500Y ? "prepaid" : "postpaid");
    }
    assert_int_equal(plans_seen, (1 << DEMO_PLANS) - 1);
    assert_int_equal(kinds[0], 5);
    assert_int_equal(kinds[1], 3);
    assert_int_equal(kinds[2], 3);
    assert_int_equal(kinds[3], 2);
    assert_int_equal(kinds[4], 4);
    jv_arena_free(&a);
}

/* ------------------------------------------------------------ loading */

#define LOADED 40

typedef struct world {
    char dir[64];
    db *d;
    vault *v;
} world;

/* A fresh database and key file with the first LOADED demo customers,
 * loaded as `bandbill demo` loads them. */
static void load_world(world *w, ruleset *rs, const char *today)
{
    snprintf(w->dir, sizeof w->dir, "/tmp/bb_test_demo_XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    char path[128], key[128];
    snprintf(path, sizeof path, "%s/test.db", w->dir);
    snprintf(key, sizeof key, "%s/test.key", w->dir);
    err e;
    err_clear(&e);
    assert_int_equal(db_open(path, DB_OPEN_CREATE, &w->d, &e), 0);
    assert_int_equal(migrate_apply(w->d, NULL, &e), 0);
    assert_int_equal(vault_create_file(key, &e), 0);
    assert_int_equal(vault_open(key, &w->v, &e), 0);
    demo_env env = {.d = w->d, .v = w->v, .rs = rs, .seed = DEMO_SEED, .today = today, .by = "test", .code_prefix = "C"};
    demo_counts n;
    memset(&n, 0, sizeof n);
    int present = 1;
    assert_int_equal(demo_present(w->d, w->v, DEMO_SEED, &present, &e), 0);
    assert_false(present);
    assert_int_equal(db_begin(w->d, &e), 0);
    int rc = demo_catalog_load(&env, &n, &e);
    for (uint64_t i = 0; !rc && i < LOADED; i++) rc = demo_customer_load(&env, i, &n, &e);
    if (rc) print_error("demo load: %s\n", e.msg);
    assert_int_equal(rc, 0);
    int64_t moved = -1;
    assert_int_equal(demo_billing_position(&env, &moved, &e), 0);
    assert_true(moved > 0);
    /* a second time finds nothing left to move */
    assert_int_equal(demo_billing_position(&env, &moved, &e), 0);
    assert_int_equal(moved, 0);
    assert_int_equal(db_commit(w->d, &e), 0);
    assert_int_equal(n.customers, LOADED);
    assert_int_equal(n.accounts, LOADED);
    assert_int_equal(n.subscriptions, LOADED);
    assert_int_equal(n.products, 17);
    assert_int_equal(demo_present(w->d, w->v, DEMO_SEED, &present, &e), 0);
    assert_true(present);
}

static void free_world(world *w)
{
    vault_close(w->v);
    db_close(w->d);
    remove_tree(w->dir);
}

/* Everything of the loaded slice that is not encrypted (ciphertexts carry
 * random nonces) nor a time of day, one row per line. */
static void dump(world *w, buf *out)
{
    static const char *const queries[] = {
        "SELECT c.code || '|' || c.type || '|' || c.name || '|' || c.status || '|' || a.district || '|' || a.community || '|' "
        "|| a.building || '|' || a.room FROM customers c JOIN addresses a ON a.customer_id = c.id "
        "AND a.kind = 'service' ORDER BY c.id",
        "SELECT customer_id || '|' || username || '|' || status FROM service_accounts ORDER BY id",
        "SELECT d.serial || '|' || coalesce(d.mac, '') || '|' || d.status || '|' || i.installed_on || '|' || i.engineer "
        "FROM devices d JOIN installations i ON i.device_id = d.id ORDER BY i.id",
        "SELECT customer_id || '|' || product || '|' || amount || '|' || status || '|' || taken_on FROM deposits ORDER BY id",
        "SELECT s.customer_id || '|' || p.code || '|' || s.status || '|' || s.start_date || '|' || coalesce(s.contract_end, '') "
        "|| '|' || s.next_bill_date || '|' || coalesce(s.billed_through, '') || '|' || coalesce(s.paid_through, '') "
        "FROM subscriptions s JOIN products p ON p.id = s.product_id ORDER BY s.id",
        "SELECT subscription_id || '|' || kind || '|' || status || '|' || effective_date FROM subscription_changes ORDER BY id",
        "SELECT customer_id || '|' || description || '|' || unit_price FROM pending_charges ORDER BY id",
    };
    err e;
    err_clear(&e);
    for (size_t q = 0; q < sizeof queries / sizeof *queries; q++) {
        db_stmt *s = db_prepare_once(w->d, queries[q], &e);
        assert_non_null(s);
        int rc;
        while ((rc = db_step(w->d, s, &e)) == DB_ROW) {
            assert_int_equal(buf_puts(out, db_col_text(s, 0)), 0);
            assert_int_equal(buf_puts(out, "\n"), 0);
        }
        assert_int_equal(rc, DB_DONE);
        db_finalize(s);
    }
}

static int64_t one_int(db *d, const char *sql)
{
    err e;
    err_clear(&e);
    int64_t v = -1;
    assert_int_equal(db_get_int(d, &e, &v, sql, NULL), 0);
    return v;
}

static void test_loaded_twice_the_same_and_due_for_one_month(void **state)
{
    (void)state;
    err e;
    err_clear(&e);
    rules_snapshot *snap;
    ruleset *rs;
    assert_int_equal(rules_snapshot_read(BB_SOURCE_DIR "/rules", &snap, &e), 0);
    assert_int_equal(ruleset_load(snap, NULL, 0, &rs, NULL, &e), 0);
    world w1, w2;
    load_world(&w1, rs, "2026-11-27");
    load_world(&w2, rs, "2026-11-27");
    buf a = {0}, b = {0};
    dump(&w1, &a);
    dump(&w2, &b);
    /* everything but ciphertexts and keyed hashes (the keys differ) */
    assert_true(a.len > 1000);
    assert_string_equal(buf_cstr(&a), buf_cstr(&b));
    buf_free(&a);
    buf_free(&b);

    /* postpaid monthly ones that started before October are billed through
     * September and due on November 1st: `bill run --period 2026-10` bills
     * October, one month */
    int64_t before = one_int(w1.d, "SELECT count(*) FROM subscriptions WHERE billing = 'postpaid' AND period = 'month' "
                                   "AND start_date <= '2026-09-30'");
    assert_true(before > LOADED / 2);
    assert_int_equal(one_int(w1.d, "SELECT count(*) FROM subscriptions WHERE billing = 'postpaid' AND period = 'month' "
                                   "AND start_date <= '2026-09-30' AND next_bill_date = '2026-11-01' "
                                   "AND billed_through = min('2026-09-30', coalesce(end_date, '2026-09-30'))"),
                     before);
    /* the rest keep what the schedule rule gave them: none is due before November */
    assert_int_equal(one_int(w1.d, "SELECT count(*) FROM subscriptions WHERE billing = 'postpaid' AND next_bill_date < '2026-11-01'"), 0);
    free_world(&w1);
    free_world(&w2);
    ruleset_unref(rs);
    rules_snapshot_unref(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_pass_the_api_checks),
        cmocka_unit_test(test_a_few_districts_of_hangzhou),
        cmocka_unit_test(test_devices_have_vendor_formats_and_are_unique),
        cmocka_unit_test(test_same_seed_same_data_other_seed_other_data),
        cmocka_unit_test(test_stories_make_a_living_isp),
        cmocka_unit_test(test_catalog_has_the_five_plans),
        cmocka_unit_test(test_loaded_twice_the_same_and_due_for_one_month),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
