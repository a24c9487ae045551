/* test_customers.c - the customer file: codes and their check digit,
 * validation of ID cards, phones, tax ids and tags; create, read and update
 * on a migrated database with a real key file (what is stored encrypted,
 * what is found by hash); duplicates; status transitions; phone
 * verification with a movable clock; the outbox; search through each index
 * (checked with EXPLAIN QUERY PLAN) with keyset pagination; the 360 view.
 *
 * Expected codes are computed by hand with Damm's table: the check digit of
 * 00000001 is 3, of 00000002 is 1, of 00000003 is 7 (C000000013, ...). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "customers.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "outbox.h"
#include "vault.h"
#include "unit_fs.h"

/* ------------------------------------------------------------ fixture */

typedef struct fixture {
    char dir[64];
    char keys[128];
    char dbpath[128];
    vault *v;
    db *d;
    jv_arena a;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_customers_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->keys, sizeof f->keys, "%s/bandbill.keys", f->dir);
    snprintf(f->dbpath, sizeof f->dbpath, "%s/bandbill.db", f->dir);
    err e;
    err_clear(&e);
    if (vault_create_file(f->keys, &e) || vault_open(f->keys, &f->v, &e) || db_open(f->dbpath, DB_OPEN_CREATE, &f->d, &e) ||
        migrate_apply(f->d, NULL, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    jv_arena_init(&f->a, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    jv_arena_free(&f->a);
    db_close(f->d);
    vault_close(f->v);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static jv *J(fixture *f, const char *text)
{
    jv *v = NULL;
    err e;
    if (json_parse(text, strlen(text), NULL, &f->a, &v, &e)) fail_msg("bad test JSON: %s: %s", e.msg, text);
    return v;
}

/* Creates a customer in a transaction of its own as the API does: on any
 * error nothing stays. Returns the error code; *id gets the new id. */
static int create(fixture *f, const char *json, int64_t *id, err *e)
{
    err_clear(e);
    int64_t ignored;
    int rc = db_begin(f->d, e);
    if (!rc) rc = customers_create(f->d, f->v, "C", J(f, json), "test", id ? id : &ignored, e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    return rc;
}

static int64_t create_ok(fixture *f, const char *json)
{
    err e;
    int64_t id = 0;
    int rc = create(f, json, &id, &e);
    if (rc) fail_msg("create failed: %s (field %s)", e.msg, e.field);
    return id;
}

static int update(fixture *f, int64_t id, const char *json, err *e)
{
    err_clear(e);
    int rc = db_begin(f->d, e);
    if (!rc) rc = customers_update(f->d, f->v, id, J(f, json), NULL, NULL, e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    return rc;
}

static jv *get(fixture *f, int64_t id)
{
    err e;
    jv *o = NULL;
    if (customers_get(f->d, f->v, id, &f->a, &o, &e)) fail_msg("get %lld: %s", (long long)id, e.msg);
    return o;
}

static const char *S(const jv *o, const char *key)
{
    const jv *v = jv_get(o, key);
    return v && v->kind == JV_STR ? v->u.str.s : NULL;
}

static int64_t count(fixture *f, const char *sql)
{
    err e;
    int64_t n = -1;
    if (db_get_int(f->d, &e, &n, sql, "")) fail_msg("%s: %s", sql, e.msg);
    return n;
}

static void run(fixture *f, const char *sql)
{
    err e;
    if (db_exec_script(f->d, sql, &e)) fail_msg("%s: %s", sql, e.msg);
}

/* a residential customer with everything */
#define ZHANG                                                                                                         \
    "{\"name\":\" 张三丰 \",\"id_card\":\"11010519491231002x\",\"phone\":\"+86 138 1234 8000\","                       \
    "\"phone2\":\"0571-88886666\",\"email\":\"Zhang.San@Example.COM\","                                              \
    "\"address\":{\"province\":\"浙江省\",\"city\":\"杭州市\",\"district\":\"西湖区\",\"street\":\"文新街道\","           \
    "\"community\":\"翠苑一区\",\"building\":\"3\",\"unit\":\"2\",\"floor\":\"5\",\"room\":\"502\"},"                 \
    "\"tags\":[\"vip\",\"fiber\",\"vip\"],\"notes\":\"gate code 1234\\nring twice\"}"

#define ADDR(community, building) \
    "\"address\":{\"province\":\"浙江省\",\"city\":\"杭州市\",\"district\":\"西湖区\",\"community\":\"" community "\",\"building\":\"" building "\"}"

/* -------------------------------------------------------------- codes */

static void test_codes(void **state)
{
    (void)state;
    char code[CUSTOMER_CODE_MAX];
    customers_make_code("C", 1, code);
    assert_string_equal(code, "C000000013");
    customers_make_code("C", 2, code);
    assert_string_equal(code, "C000000021");
    customers_make_code("KH", 1234, code);
    assert_string_equal(code, "KH000012340");
    err e;
    int64_t id = 0;
    assert_int_equal(customers_parse_code("C", "C000000013", &id, &e), 0);
    assert_int_equal(id, 1);
    assert_int_equal(customers_parse_code("C", "c000012340", &id, &e), 0);
    assert_int_equal(id, 1234);
    /* one wrong digit, and two neighbours swapped: both caught as typos */
    assert_int_equal(customers_parse_code("C", "C000000014", &id, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "typo"));
    assert_string_equal(e.field, "code");
    assert_int_equal(customers_parse_code("C", "C000012430", &id, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "typo"));
    assert_int_equal(customers_parse_code("C", "C12", &id, &e), ERR_INVALID);
    assert_null(strstr(e.msg, "typo"));
    assert_int_equal(customers_parse_code("C", "X000000013", &id, &e), ERR_INVALID);
}

static void test_id_by_code(void **state)
{
    fixture *f = *state;
    create_ok(f, "{\"name\":\"甲\"," ADDR("a", "1") "}");
    int64_t id = 0;
    err e;
    assert_int_equal(customers_id_by_code(f->d, "C000000013", &id, &e), 0);
    assert_int_equal(id, 1);
    /* lower case is the same code */
    assert_int_equal(customers_id_by_code(f->d, "c000000013", &id, &e), 0);
    assert_int_equal(customers_id_by_code(f->d, "C000000031", &id, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "typo"));
    assert_int_equal(customers_id_by_code(f->d, "C000000021", &id, &e), ERR_NOTFOUND);
    /* the right digits under another prefix are not this customer */
    assert_int_equal(customers_id_by_code(f->d, "K000000013", &id, &e), ERR_NOTFOUND);
    char code[CUSTOMER_CODE_MAX];
    assert_int_equal(customers_code_by_id(f->d, 1, code, &e), 0);
    assert_string_equal(code, "C000000013");
}

/* ---------------------------------------------------------- validation */

static void test_id_card(void **state)
{
    (void)state;
    char out[20];
    err e;
    assert_int_equal(customers_normalize_id_card("11010519491231002X", out, &e), 0);
    assert_string_equal(out, "11010519491231002X");
    assert_int_equal(customers_normalize_id_card("11010519491231002x", out, &e), 0);
    assert_string_equal(out, "11010519491231002X");
    /* by hand: weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 over 11010119900307451 sum to 206;
     * 206 mod 11 = 8, and position 8 of 1 0 X 9 8 7 6 5 4 3 2 is 4 */
    assert_int_equal(customers_normalize_id_card("110101199003074514", out, &e), 0);
    assert_int_equal(customers_normalize_id_card("110101199003074513", out, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "typo"));
    assert_string_equal(e.field, "id_card");
    assert_int_equal(customers_normalize_id_card("110105194902301234", out, &e), ERR_INVALID); /* 30 February */
    assert_int_equal(customers_normalize_id_card("1101051949123100", out, &e), ERR_INVALID);
    assert_int_equal(customers_normalize_id_card("11010519491231002Y", out, &e), ERR_INVALID);
}

static void test_mobile(void **state)
{
    (void)state;
    char out[16];
    err e;
    static const char *const ok[] = {"+86 138 1234 8000", "13812348000", "0086-138-1234-8000", "8613812348000",
                                     "138 1234 8000", NULL};
    for (const char *const *p = ok; *p; p++) {
        assert_int_equal(customers_normalize_mobile(*p, out, &e), 0);
        assert_string_equal(out, "13812348000");
    }
    assert_int_equal(customers_normalize_mobile("12812348000", out, &e), ERR_INVALID);
    assert_string_equal(e.field, "phone");
    assert_int_equal(customers_normalize_mobile("1381234800", out, &e), ERR_INVALID);
    assert_int_equal(customers_normalize_mobile("138123480001", out, &e), ERR_INVALID);
    assert_int_equal(customers_normalize_mobile("0571-88886666", out, &e), ERR_INVALID);
}

static void test_phone2(void **state)
{
    (void)state;
    char out[16];
    err e;
    assert_int_equal(customers_normalize_phone2("0571-88886666", out, &e), 0);
    assert_string_equal(out, "057188886666");
    assert_int_equal(customers_normalize_phone2("(010) 6552 9988", out, &e), 0);
    assert_string_equal(out, "01065529988");
    assert_int_equal(customers_normalize_phone2("+86 571 8888 6666", out, &e), 0);
    assert_string_equal(out, "057188886666");
    assert_int_equal(customers_normalize_phone2("+86 138 1234 8000", out, &e), 0);
    assert_string_equal(out, "13812348000");
    assert_int_equal(customers_normalize_phone2("88886666", out, &e), ERR_INVALID); /* no area code */
    assert_string_equal(e.field, "phone2");
    assert_int_equal(customers_normalize_phone2("0571-8888x666", out, &e), ERR_INVALID);
    assert_int_equal(customers_normalize_phone2("+1 571 8888 6666", out, &e), ERR_INVALID);
    assert_int_equal(customers_normalize_phone2("00571 8888 6666", out, &e), ERR_INVALID);
}

static void test_tax_id(void **state)
{
    (void)state;
    char out[20];
    err e;
    /* published codes; by hand for 91350100M000100Y4: the values times 3^i mod 31 sum to 1640,
     * 1640 mod 31 = 28, 31 - 28 = 3 */
    assert_int_equal(customers_normalize_tax_id("91350100M000100Y43", out, &e), 0);
    assert_string_equal(out, "91350100M000100Y43");
    assert_int_equal(customers_normalize_tax_id("91110000600037341l", out, &e), 0);
    assert_string_equal(out, "91110000600037341L");
    assert_int_equal(customers_normalize_tax_id("91440300708461136T", out, &e), 0);
    assert_int_equal(customers_normalize_tax_id("91350100M000100Y44", out, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "typo"));
    assert_string_equal(e.field, "tax_id");
    assert_int_equal(customers_normalize_tax_id("91350100M0001I0Y43", out, &e), ERR_INVALID); /* I is not used */
    assert_null(strstr(e.msg, "typo"));
    assert_int_equal(customers_normalize_tax_id("9135A100M000100Y43", out, &e), ERR_INVALID); /* region not digits */
    assert_int_equal(customers_normalize_tax_id("91350100M000100Y4", out, &e), ERR_INVALID);
}

static void test_tags_and_statuses(void **state)
{
    (void)state;
    assert_true(customers_tag_valid("vip"));
    assert_true(customers_tag_valid("fiber_1000m-2"));
    assert_false(customers_tag_valid("VIP"));
    assert_false(customers_tag_valid(""));
    assert_false(customers_tag_valid("a b"));
    assert_false(customers_tag_valid("abcdefghijklmnopqrstuvwxyz0123456")); /* 33 */
    assert_true(customers_status_valid("overdue"));
    assert_false(customers_status_valid("deleted"));
    char next[96];
    customers_next_statuses("active", next, sizeof next);
    assert_string_equal(next, "overdue, suspended, closed");
    customers_next_statuses("closed", next, sizeof next);
    assert_string_equal(next, "none");
}

/* ----------------------------------------------------------- records */

static void test_create_get_update(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, ZHANG);
    assert_int_equal(id, 1);
    jv *o = get(f, id);
    assert_string_equal(S(o, "code"), "C000000013");
    assert_string_equal(S(o, "id"), "C000000013");
    assert_string_equal(S(o, "type"), "residential");
    assert_string_equal(S(o, "status"), "prospect");
    assert_string_equal(S(o, "name"), "张三丰"); /* trimmed */
    assert_string_equal(S(o, "id_card"), "11010519491231002X");
    assert_string_equal(S(o, "phone"), "13812348000");
    assert_string_equal(S(o, "phone2"), "057188886666");
    assert_string_equal(S(o, "email"), "Zhang.San@example.com");
    assert_string_equal(S(o, "notes"), "gate code 1234\nring twice");
    assert_string_equal(S(o, "created_by"), "test");
    assert_false(jv_get(o, "phone_verified")->u.b);
    assert_int_equal(jv_get(o, "billing_address")->kind, JV_NULL);
    const jv *ad = jv_get(o, "address");
    assert_string_equal(S(ad, "community"), "翠苑一区");
    assert_string_equal(S(ad, "room"), "502");
    assert_int_equal(jv_get(ad, "gis_code")->kind, JV_NULL);
    const jv *tags = jv_get(o, "tags");
    assert_int_equal(jv_len(tags), 2); /* "vip" twice is one tag; sorted */
    assert_string_equal(jv_at(tags, 0)->u.str.s, "fiber");
    assert_string_equal(jv_at(tags, 1)->u.str.s, "vip");

    /* what is stored: personal numbers only encrypted, with lookup hashes */
    assert_int_equal(count(f, "SELECT count(*) FROM customers WHERE phone_enc LIKE 'enc:v1:%' AND id_card_enc LIKE 'enc:v1:%' "
                              "AND phone2_enc LIKE 'enc:v1:%' AND email_enc LIKE 'enc:v1:%'"),
                     1);
    assert_int_equal(count(f, "SELECT count(*) FROM customers WHERE phone_enc LIKE '%8000%' OR id_card_enc LIKE '%002X%'"), 0);
    char idx[VAULT_INDEX_HEX];
    vault_index(f->v, "phone", "13812348000", idx);
    err e;
    int64_t found = 0;
    assert_int_equal(db_get_int(f->d, &e, &found, "SELECT id FROM customers WHERE phone_idx = ?", "s", idx), 0);
    assert_int_equal(found, 1);
    vault_index(f->v, "idcard", "11010519491231002X", idx);
    assert_int_equal(db_get_int(f->d, &e, &found, "SELECT id FROM customers WHERE id_card_idx = ?", "s", idx), 0);
    vault_index(f->v, "phone", "057188886666", idx);
    assert_int_equal(db_get_int(f->d, &e, &found, "SELECT id FROM customers WHERE phone2_idx = ?", "s", idx), 0);

    /* a verified phone stays verified through other changes... */
    run(f, "UPDATE customers SET phone_verified_at = '2026-01-01T00:00:00.000Z' WHERE id = 1");
    assert_int_equal(update(f, id,
                            "{\"address\":{\"room\":\"601\"},\"tags\":[\"fiber\"],\"notes\":null,"
                            "\"billing_address\":{\"province\":\"浙江省\",\"city\":\"杭州市\",\"district\":\"上城区\"}}",
                            &e),
                     0);
    o = get(f, id);
    ad = jv_get(o, "address");
    assert_string_equal(S(ad, "room"), "601");
    assert_string_equal(S(ad, "community"), "翠苑一区"); /* kept: a patch merges address parts */
    assert_string_equal(S(jv_get(o, "billing_address"), "district"), "上城区");
    assert_int_equal(jv_len(jv_get(o, "tags")), 1);
    assert_int_equal(jv_get(o, "notes")->kind, JV_NULL);
    assert_true(jv_get(o, "phone_verified")->u.b);
    /* ... the same number in another format changes nothing ... */
    assert_int_equal(update(f, id, "{\"phone\":\"138-1234-8000\",\"billing_address\":null}", &e), 0);
    o = get(f, id);
    assert_true(jv_get(o, "phone_verified")->u.b);
    assert_int_equal(jv_get(o, "billing_address")->kind, JV_NULL);
    assert_int_equal(count(f, "SELECT count(*) FROM addresses WHERE customer_id = 1"), 1);
    /* ... a new number is not verified */
    assert_int_equal(update(f, id, "{\"phone\":\"13900001111\"}", &e), 0);
    o = get(f, id);
    assert_false(jv_get(o, "phone_verified")->u.b);
    assert_int_equal(jv_get(o, "phone_verified_at")->kind, JV_NULL);
    assert_string_equal(S(o, "phone"), "13900001111");
    /* clearing optional contacts */
    assert_int_equal(update(f, id, "{\"phone2\":null,\"email\":\"\"}", &e), 0);
    o = get(f, id);
    assert_int_equal(jv_get(o, "phone2")->kind, JV_NULL);
    assert_int_equal(jv_get(o, "email")->kind, JV_NULL);
    assert_int_equal(count(f, "SELECT count(*) FROM customers WHERE phone2_idx IS NULL AND phone2_enc IS NULL"), 1);

    /* the second customer gets the next code */
    assert_int_equal(create_ok(f, "{\"name\":\"乙\"," ADDR("a", "1") "}"), 2);
    assert_string_equal(S(get(f, 2), "code"), "C000000021");
}

static void test_business(void **state)
{
    fixture *f = *state;
    err e;
    int64_t id = create_ok(f, "{\"type\":\"business\",\"name\":\"王经理\",\"company_name\":\"杭州某某科技有限公司\","
                              "\"tax_id\":\"91350100m000100y43\"," ADDR("a", "1") "}");
    jv *o = get(f, id);
    assert_string_equal(S(o, "tax_id"), "91350100M000100Y43");
    assert_string_equal(S(o, "company_name"), "杭州某某科技有限公司");
    assert_int_equal(update(f, id, "{\"tax_id\":null}", &e), ERR_INVALID);
    assert_string_equal(e.field, "tax_id");
    assert_int_equal(update(f, id, "{\"type\":\"residential\"}", &e), ERR_INVALID);
    assert_string_equal(e.field, "type");
    assert_int_equal(update(f, id, "{\"status\":\"active\"}", &e), ERR_INVALID);
    assert_string_equal(e.field, "status");
}

static void test_validation_names_the_field(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"name\":\"x\"}", "address"},
        {"{" ADDR("a", "1") "}", "name"},
        {"{\"name\":\"  \"," ADDR("a", "1") "}", "name"},
        {"{\"name\":7," ADDR("a", "1") "}", "name"},
        {"{\"name\":\"x\",\"nickname\":\"y\"," ADDR("a", "1") "}", "nickname"},
        {"{\"name\":\"x\",\"address\":{\"province\":\"p\",\"district\":\"d\"}}", "address.city"},
        {"{\"name\":\"x\",\"address\":{\"province\":\"p\",\"city\":\"c\",\"district\":\"d\",\"flor\":\"3\"}}", "address.flor"},
        {"{\"name\":\"x\",\"billing_address\":{\"province\":\"p\"}," ADDR("a", "1") "}", "billing_address.city"},
        {"{\"name\":\"x\",\"tags\":[\"ok\",\"Not OK\"]," ADDR("a", "1") "}", "tags[1]"},
        {"{\"name\":\"x\",\"tags\":\"vip\"," ADDR("a", "1") "}", "tags"},
        {"{\"name\":\"x\",\"phone\":\"12345\"," ADDR("a", "1") "}", "phone"},
        {"{\"name\":\"x\",\"phone2\":\"12345\"," ADDR("a", "1") "}", "phone2"},
        {"{\"name\":\"x\",\"id_card\":\"110101199003074513\"," ADDR("a", "1") "}", "id_card"},
        {"{\"name\":\"x\",\"email\":\"nobody\"," ADDR("a", "1") "}", "email"},
        {"{\"name\":\"x\",\"type\":\"company\"," ADDR("a", "1") "}", "type"},
        {"{\"name\":\"x\",\"type\":\"business\",\"company_name\":\"c\"," ADDR("a", "1") "}", "tax_id"},
        {"{\"name\":\"x\",\"type\":\"business\",\"tax_id\":\"91350100M000100Y43\"," ADDR("a", "1") "}", "company_name"},
        {"{\"name\":\"x\",\"tax_id\":\"91350100M000100Y43\"," ADDR("a", "1") "}", "tax_id"},
        {"{\"name\":\"x\",\"status\":\"closed\"," ADDR("a", "1") "}", "status"},
        {"{\"name\":\"x\",\"notes\":\"bell\\u0007\"," ADDR("a", "1") "}", "notes"},
        {"{\"name\":\"一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十"
         "一二三四五六七八九十一二三四五六七八九十一二三四五\"," ADDR("a", "1") "}",
         "name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err e;
        int rc = create(f, cases[i].json, NULL, &e);
        if (rc != ERR_INVALID || strcmp(e.field, cases[i].field))
            fail_msg("case %zu: rc %d field '%s' (%s), expected field '%s'", i, rc, e.field, e.msg, cases[i].field);
    }
    /* nothing of the failed attempts was written */
    assert_int_equal(count(f, "SELECT count(*) FROM customers"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM addresses"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM customer_tags"), 0);
    /* the name limit is in characters, not bytes: 64 CJK characters pass */
    create_ok(f, "{\"name\":\"一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十"
                 "一二三四五六七八九十一二三四五六七八九十一二三四\"," ADDR("a", "1") "}");
}

static void test_duplicates(void **state)
{
    fixture *f = *state;
    create_ok(f, ZHANG);
    err e;
    int rc = create(f, "{\"name\":\"李四\",\"id_card\":\"11010519491231002X\"," ADDR("a", "1") "}", NULL, &e);
    assert_int_equal(rc, ERR_CONFLICT);
    assert_string_equal(e.tag, "duplicate");
    assert_string_equal(e.field, "id_card");
    assert_non_null(strstr(e.msg, "C000000013"));
    /* the same number written otherwise is the same number */
    rc = create(f, "{\"name\":\"李四\",\"phone\":\"0086 13812348000\"," ADDR("a", "1") "}", NULL, &e);
    assert_int_equal(rc, ERR_CONFLICT);
    assert_string_equal(e.field, "phone");
    assert_non_null(strstr(e.msg, "C000000013"));
    assert_int_equal(count(f, "SELECT count(*) FROM customers"), 1);
    /* a shared backup phone is allowed (families, offices) */
    int64_t li = create_ok(f, "{\"name\":\"李四\",\"phone\":\"13900001111\",\"phone2\":\"0571-88886666\"," ADDR("a", "1") "}");
    assert_int_equal(update(f, li, "{\"phone\":\"13812348000\"}", &e), ERR_CONFLICT);
    assert_string_equal(e.field, "phone");
    assert_non_null(strstr(e.msg, "C000000013"));
    assert_int_equal(update(f, li, "{\"id_card\":\"11010519491231002X\"}", &e), ERR_CONFLICT);
    assert_string_equal(e.field, "id_card");
    /* one's own numbers are no duplicate */
    assert_int_equal(update(f, 1, "{\"phone\":\"13812348000\",\"id_card\":\"11010519491231002X\"}", &e), 0);
}

static void test_status(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, "{\"name\":\"甲\"," ADDR("a", "1") "}");
    err e;
    assert_int_equal(customers_set_status(f->d, id, "active", &e), 0);
    assert_string_equal(S(get(f, id), "status"), "active");
    assert_int_equal(customers_set_status(f->d, id, "prospect", &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "invalid_transition");
    assert_non_null(strstr(e.msg, "overdue, suspended, closed"));
    assert_int_equal(customers_set_status(f->d, id, "active", &e), ERR_CONFLICT); /* to itself is no move */
    assert_int_equal(customers_set_status(f->d, id, "overdue", &e), 0);
    assert_int_equal(customers_set_status(f->d, id, "suspended", &e), 0);
    assert_int_equal(customers_set_status(f->d, id, "active", &e), 0);
    assert_int_equal(customers_set_status(f->d, id, "closed", &e), 0);
    assert_int_equal(customers_set_status(f->d, id, "active", &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "allowed: none"));
    assert_int_equal(customers_set_status(f->d, id, "gone", &e), ERR_INVALID);
    assert_string_equal(e.field, "status");
    assert_int_equal(customers_set_status(f->d, 99, "active", &e), ERR_NOTFOUND);
    /* a new customer may start active (taken over), nothing else */
    int64_t b = create_ok(f, "{\"name\":\"乙\",\"status\":\"active\"," ADDR("a", "1") "}");
    assert_string_equal(S(get(f, b), "status"), "active");
    /* an erased customer cannot be given personal data again */
    run(f, "UPDATE customers SET erased_at = '2026-11-01T00:00:00.000Z' WHERE id = 2");
    assert_int_equal(update(f, b, "{\"phone\":\"13900001111\"}", &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "erased");
}

/* --------------------------------------------------------- verification */

#define T0 1800000000000LL /* 2027-01-15T08:00:00Z, any fixed instant */

static int send_code(fixture *f, int64_t id, int64_t now, char code[7], verify_sent *vs, err *e)
{
    err_clear(e);
    int rc = db_begin(f->d, e);
    if (!rc) rc = customers_verify_send(f->d, f->v, id, now, vs, code, e);
    if (!rc) rc = db_commit(f->d, e);
    else db_rollback(f->d);
    return rc;
}

static verify_result confirm(fixture *f, int64_t id, const char *code, int64_t now, int *left)
{
    err e;
    verify_result r = VERIFY_NONE;
    if (db_begin(f->d, &e) || customers_verify_confirm(f->d, f->v, id, code, now, &r, left, &e) || db_commit(f->d, &e))
        fail_msg("confirm: %s", e.msg);
    return r;
}

/* A code that is not `code`. */
static void other_code(const char *code, char out[7])
{
    snprintf(out, 7, "%s", code);
    out[0] = out[0] == '9' ? '0' : (char)(out[0] + 1);
}

static void test_verification(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, ZHANG);
    char code[7], wrong[7];
    verify_sent vs;
    err e;
    int left = -1;
    assert_int_equal(confirm(f, id, "123456", T0, &left), VERIFY_NONE);
    assert_int_equal(send_code(f, id, T0, code, &vs, &e), 0);
    assert_int_equal(strlen(code), 6);
    assert_int_equal(strspn(code, "0123456789"), 6);
    assert_string_equal(vs.expires_at, "2027-01-15T08:05:00.000Z");
    /* only a keyed hash of the code is kept */
    char hash[VAULT_INDEX_HEX], mat[32];
    snprintf(mat, sizeof mat, "%lld:%s", (long long)id, code);
    vault_index(f->v, "vcode", mat, hash);
    int64_t n = 0;
    assert_int_equal(db_get_int(f->d, &e, &n, "SELECT count(*) FROM verification_codes WHERE code_hash = ?", "s", hash), 0);
    assert_int_equal(n, 1);
    assert_int_equal(db_get_int(f->d, &e, &n, "SELECT count(*) FROM verification_codes WHERE instr(code_hash, ?) > 0", "s", code), 0);
    assert_int_equal(n, 0);
    /* the message waits in the outbox, its recipient encrypted */
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE event = 'verification_code' AND channel = 'log' "
                              "AND status = 'pending' AND customer_id = 1 AND recipient_enc LIKE 'enc:v1:%'"),
                     1);
    char like[32];
    snprintf(like, sizeof like, "%%\"code\":\"%s\"%%", code);
    assert_int_equal(db_get_int(f->d, &e, &n, "SELECT count(*) FROM outbox WHERE payload LIKE ?", "s", like), 0);
    assert_int_equal(n, 1);

    /* no second code within a minute */
    assert_int_equal(send_code(f, id, T0 + 30000, NULL, &vs, &e), ERR_LIMIT);
    assert_string_equal(e.tag, "too_many_requests");
    assert_int_equal(vs.retry_after_s, 30);
    assert_int_equal(send_code(f, id, T0 + 59500, NULL, &vs, &e), ERR_LIMIT);
    assert_int_equal(vs.retry_after_s, 1);

    other_code(code, wrong);
    assert_int_equal(confirm(f, id, wrong, T0 + 10000, &left), VERIFY_WRONG);
    assert_int_equal(left, 4);
    assert_int_equal(count(f, "SELECT attempts FROM verification_codes"), 1);
    assert_int_equal(confirm(f, id, code, T0 + 20000, &left), VERIFY_OK);
    jv *o = get(f, id);
    assert_true(jv_get(o, "phone_verified")->u.b);
    assert_string_equal(S(o, "phone_verified_at"), "2027-01-15T08:00:20.000Z");
    /* used once only */
    assert_int_equal(confirm(f, id, code, T0 + 21000, &left), VERIFY_EXPIRED);
    assert_int_equal(send_code(f, id, T0 + 120000, NULL, &vs, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "already_verified");
    verify_result r;
    assert_int_equal(customers_verify_confirm(f->d, f->v, id, "12345", T0, &r, &left, &e), ERR_INVALID);
    assert_string_equal(e.field, "code");
}

static void test_verification_expiry_and_attempts(void **state)
{
    fixture *f = *state;
    int64_t id = create_ok(f, ZHANG);
    char code[7], wrong[7];
    verify_sent vs;
    err e;
    int left;
    /* five minutes to the millisecond */
    assert_int_equal(send_code(f, id, T0, code, &vs, &e), 0);
    assert_int_equal(confirm(f, id, code, T0 + CUSTOMERS_VCODE_TTL_MS, &left), VERIFY_EXPIRED);
    assert_false(jv_get(get(f, id), "phone_verified")->u.b);
    /* a new code replaces it; a minute later is allowed */
    assert_int_equal(send_code(f, id, T0 + 60000, code, &vs, &e), 0);
    other_code(code, wrong);
    for (int i = 4; i >= 0; i--) {
        assert_int_equal(confirm(f, id, wrong, T0 + 61000, &left), VERIFY_WRONG);
        assert_int_equal(left, i);
    }
    /* after five wrong ones even the right code is refused */
    assert_int_equal(confirm(f, id, code, T0 + 62000, &left), VERIFY_TOO_MANY);
    assert_false(jv_get(get(f, id), "phone_verified")->u.b);
    /* a code sent to a number the customer no longer has is void */
    assert_int_equal(send_code(f, id, T0 + 180000, code, &vs, &e), 0);
    assert_int_equal(update(f, id, "{\"phone\":\"13900001111\"}", &e), 0);
    assert_int_equal(confirm(f, id, code, T0 + 181000, &left), VERIFY_EXPIRED);
    /* no phone, no code */
    int64_t b = create_ok(f, "{\"name\":\"乙\"," ADDR("a", "1") "}");
    assert_int_equal(send_code(f, b, T0, code, &vs, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "no_phone");
    /* a code is for its customer only */
    int64_t c = create_ok(f, "{\"name\":\"丙\",\"phone\":\"13700000000\"," ADDR("a", "1") "}");
    assert_int_equal(send_code(f, c, T0, code, &vs, &e), 0);
    assert_int_equal(update(f, b, "{\"phone\":\"13700000001\"}", &e), 0);
    assert_int_equal(send_code(f, b, T0, wrong, &vs, &e), 0);
    assert_int_equal(confirm(f, b, code, T0 + 1000, &left), strcmp(code, wrong) ? VERIFY_WRONG : VERIFY_OK);
}

/* --------------------------------------------------------------- outbox */

static void test_outbox(void **state)
{
    fixture *f = *state;
    create_ok(f, ZHANG);
    err e;
    jv *payload = J(f, "{\"code\":\"424242\",\"customer\":\"C000000013\",\"name\":\"张三丰\"}");
    assert_int_equal(outbox_enqueue(f->d, f->v, "verification_code", "log", 1, "13812348000", payload, NULL, &e), ERR_INTERNAL);
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "verification_code", "log", 1, "13812348000", payload, "k1", &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "verification_code", "log", 1, "13812348000", payload, "k1", &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "reminder", "sms", 1, "13812348000", NULL, NULL, &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "note", "log", 0, NULL, NULL, NULL, &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "note", "pigeon", 0, NULL, NULL, NULL, &e), ERR_INTERNAL);
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox"), 3); /* the repeated dedupe key is dropped */
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE recipient_enc LIKE '%8000%'"), 0);

    /* delivery writes log lines: capture them */
    char logpath[160];
    snprintf(logpath, sizeof logpath, "%s/log", f->dir);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    int old = log_set_fd(fd);
    log_set_level(LOG_INFO);
    int sent = -1;
    assert_int_equal(outbox_deliver_log(f->d, f->v, 1, &sent, &e), 0);
    assert_int_equal(sent, 1);
    assert_int_equal(outbox_deliver_log(f->d, f->v, 100, &sent, &e), 0);
    assert_int_equal(sent, 1);
    assert_int_equal(outbox_deliver_log(f->d, f->v, 100, &sent, &e), 0);
    assert_int_equal(sent, 0);
    log_set_level(LOG_OFF);
    log_set_fd(old);
    close(fd);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE channel = 'log' AND status = 'sent' AND sent_at IS NOT NULL "
                              "AND attempts = 1"),
                     2);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE channel = 'sms' AND status = 'pending'"), 1);
    FILE *lf = fopen(logpath, "r");
    assert_non_null(lf);
    char text[4096] = "";
    size_t got = fread(text, 1, sizeof text - 1, lf);
    fclose(lf);
    text[got] = '\0';
    assert_non_null(strstr(text, "\"event\":\"outbox_log\""));
    assert_non_null(strstr(text, "138****8000"));
    assert_null(strstr(text, "13812348000"));
    assert_non_null(strstr(text, "424242"));             /* the message itself */
    assert_non_null(strstr(text, "C000000013"));
    assert_null(strstr(text, "张三丰"));                  /* a name in the payload is masked */

    /* a recipient that does not decrypt is dead, not retried forever */
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "note", "log", 0, "x@example.com", NULL, NULL, &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    run(f, "UPDATE outbox SET recipient_enc = 'enc:v1:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' WHERE status = 'pending' "
           "AND channel = 'log'");
    assert_int_equal(outbox_deliver_log(f->d, f->v, 10, &sent, &e), 0);
    assert_int_equal(sent, 0);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE status = 'dead' AND last_error IS NOT NULL"), 1);
}

/* --------------------------------------------------------------- search */

static void search_world(fixture *f)
{
    create_ok(f, ZHANG); /* 1 */
    create_ok(f, "{\"name\":\"张三\",\"phone\":\"13900001111\",\"tags\":[\"vip\"]," ADDR("翠苑一区", "3") "}");   /* 2 */
    create_ok(f, "{\"name\":\"张伟\",\"phone\":\"13900002222\",\"tags\":[\"fiber\"]," ADDR("翠苑一区", "4") "}"); /* 3 */
    create_ok(f, "{\"name\":\"李娜\",\"phone\":\"13900003333\",\"tags\":[\"vip\"]," ADDR("嘉绿苑", "1") "}");     /* 4 */
    create_ok(f, "{\"name\":\"王芳\",\"phone2\":\"0571-88886666\"," ADDR("嘉绿苑", "2") "}");                      /* 5 */
    run(f, "INSERT INTO service_accounts (customer_id, username, password_enc, created_at, password_changed_at) "
           "VALUES (3, 'zw0571', 'x', 'now', 'now');"
           "INSERT INTO devices (kind, serial, created_at) VALUES ('onu', 'ZTEG12345678', 'now'), ('onu', 'HWTC0000AAAA', 'now');"
           "INSERT INTO installations (device_id, customer_id, installed_on, engineer, address, created_at) "
           "VALUES (1, 4, '2026-01-01', 'e', 'x', 'now');"
           /* a device taken out is no longer found at that customer */
           "INSERT INTO installations (device_id, customer_id, installed_on, engineer, address, removed_on, created_at) "
           "VALUES (2, 2, '2026-01-01', 'e', 'x', '2026-02-01', 'now');");
}

/* Searches and returns the codes found, comma-separated. */
static const char *codes(fixture *f, const customer_query *cq, const char **matched, char *next)
{
    static char out[256];
    jv *list;
    char nx[CUSTOMERS_CURSOR_MAX];
    err e;
    if (customers_search(f->d, f->v, cq, &f->a, &list, nx, matched, &e)) fail_msg("search: %s (%s)", e.msg, e.field);
    out[0] = '\0';
    for (size_t i = 0; i < jv_len(list); i++) {
        if (i) strcat(out, ",");
        strcat(out, S(jv_at(list, i), "code"));
    }
    if (next) strcpy(next, nx);
    return out;
}

static void check_plan(fixture *f, const customer_query *cq, const char *index)
{
    buf plan = {0};
    err e;
    if (customers_search_plan(f->d, f->v, cq, &plan, &e)) fail_msg("plan: %s", e.msg);
    const char *p = buf_cstr(&plan);
    /* the driving step uses the expected index, and no step reads a whole table */
    if (!strstr(p, index) || !(strstr(p, "USING INDEX") || strstr(p, "USING COVERING INDEX") || strstr(p, "USING INTEGER PRIMARY KEY")))
        fail_msg("plan does not use %s:\n%s", index, p);
    for (const char *l = p; *l; l = strchr(l, '\n') + 1)
        if (!strncmp(l, "SCAN", 4)) fail_msg("plan scans a table:\n%s", p);
    if (strstr(p, "SCAN customers") || strstr(p, "SCAN c ")) fail_msg("plan scans customers:\n%s", p);
    buf_free(&plan);
}

static void test_search_by_each_index(void **state)
{
    fixture *f = *state;
    search_world(f);
    const char *m;
    customer_query q;

#define Q(...) (q = (customer_query){__VA_ARGS__}, &q)
    assert_string_equal(codes(f, Q(.code = "C000000037"), &m, NULL), "C000000037");
    assert_string_equal(m, "code");
    check_plan(f, &q, "sqlite_autoindex_customers_1 (code=?)");

    assert_string_equal(codes(f, Q(.phone = "+86 139 0000 2222"), &m, NULL), "C000000037");
    assert_string_equal(m, "phone");
    check_plan(f, &q, "customers_phone (phone_idx=?)");
    check_plan(f, &q, "customers_phone2 (phone2_idx=?)");
    /* a landline finds the backup phone */
    assert_string_equal(codes(f, Q(.phone = "0571 8888 6666"), &m, NULL), "C000000059,C000000013");

    assert_string_equal(codes(f, Q(.id_card = "11010519491231002x"), &m, NULL), "C000000013");
    check_plan(f, &q, "customers_id_card (id_card_idx=?)");

    /* name prefix: a range, not LIKE; in name order by default */
    assert_string_equal(codes(f, Q(.name = "张"), &m, NULL), "C000000021,C000000013,C000000037");
    assert_string_equal(m, "name");
    check_plan(f, &q, "customers_name (name>? AND name<?)");
    assert_string_equal(codes(f, Q(.name = "张三"), &m, NULL), "C000000021,C000000013");

    assert_string_equal(codes(f, Q(.pppoe = "zw0571"), &m, NULL), "C000000037");
    check_plan(f, &q, "sqlite_autoindex_service_accounts_1 (username=?)");

    assert_string_equal(codes(f, Q(.serial = "zteg12345678"), &m, NULL), "C000000045");
    check_plan(f, &q, "installations_active_device (device_id=?)");
    assert_string_equal(codes(f, Q(.serial = "HWTC0000AAAA"), &m, NULL), "");
    /* any spelling of the serial: spaced, dashed, the OLT's hex form ("ZTEG" is 5A 54 45 47) */
    assert_string_equal(codes(f, Q(.serial = "zteg 1234-5678"), &m, NULL), "C000000045");
    assert_string_equal(codes(f, Q(.q = "5A54454712345678"), &m, NULL), "C000000045");
    assert_string_equal(m, "serial");

    assert_string_equal(codes(f, Q(.community = "翠苑一区", .building = "3"), &m, NULL), "C000000021,C000000013");
    check_plan(f, &q, "addresses_community (community=? AND building=?)");
    assert_string_equal(codes(f, Q(.community = "嘉绿苑"), &m, NULL), "C000000059,C000000045");
    check_plan(f, &q, "addresses_community (community=?)");
    assert_string_equal(codes(f, Q(.district = "西湖区", .street = "文新街道"), &m, NULL), "C000000013");
    assert_string_equal(m, "district");
    check_plan(f, &q, "addresses_place (district=? AND street=?)");
    /* a district alone is too coarse to drive: newest first by id, checked */
    assert_string_equal(codes(f, Q(.district = "西湖区", .room = "502"), &m, NULL), "C000000013");
    assert_string_equal(m, "all");
    check_plan(f, &q, "INTEGER PRIMARY KEY (rowid<?)");
    check_plan(f, &q, "sqlite_autoindex_addresses_1 (customer_id=? AND kind=?)");

    assert_string_equal(codes(f, Q(.tag = "vip"), &m, NULL), "C000000045,C000000021,C000000013");
    check_plan(f, &q, "customer_tags_tag (tag=?");

    run(f, "UPDATE customers SET status = 'active' WHERE id IN (2, 5)");
    assert_string_equal(codes(f, Q(.status = "active"), &m, NULL), "C000000059,C000000021");
    check_plan(f, &q, "customers_status (status=?");

    assert_string_equal(codes(f, Q(.limit = 50), &m, NULL), "C000000059,C000000045,C000000037,C000000021,C000000013");
    assert_string_equal(m, "all");
    check_plan(f, &q, "INTEGER PRIMARY KEY (rowid<?)");

    /* filters combine */
    assert_string_equal(codes(f, Q(.tag = "vip", .name = "张"), &m, NULL), "C000000021,C000000013");
    assert_string_equal(codes(f, Q(.tag = "vip", .community = "嘉绿苑"), &m, NULL), "C000000045");
    assert_string_equal(codes(f, Q(.status = "active", .tag = "fiber"), &m, NULL), "");
    /* every sort of a driver uses the driver's index */
    static const char *const sorts[] = {"code", "-code", "name", "-name", "created_at", "-created_at", NULL};
    for (const char *const *s = sorts; *s; s++) {
        check_plan(f, Q(.name = "张", .sort = *s), "customers_name (name>? AND name<?)");
        check_plan(f, Q(.tag = "vip", .sort = *s), "customer_tags_tag (tag=?");
        check_plan(f, Q(.community = "翠苑一区", .building = "3", .sort = *s), "addresses_community");
        check_plan(f, Q(.sort = *s), "USING");
    }
}

static void test_search_guesses(void **state)
{
    fixture *f = *state;
    search_world(f);
    const char *m;
    customer_query q;
    assert_string_equal(codes(f, Q(.q = "c000000037"), &m, NULL), "C000000037");
    assert_string_equal(m, "code");
    assert_string_equal(codes(f, Q(.q = "13900003333"), &m, NULL), "C000000045");
    assert_string_equal(m, "phone");
    assert_string_equal(codes(f, Q(.q = "0571-88886666"), &m, NULL), "C000000059,C000000013");
    assert_string_equal(codes(f, Q(.q = "11010519491231002X"), &m, NULL), "C000000013");
    assert_string_equal(m, "id_card");
    assert_string_equal(codes(f, Q(.q = "zw0571"), &m, NULL), "C000000037");
    assert_string_equal(m, "pppoe");
    assert_string_equal(codes(f, Q(.q = "zteg12345678"), &m, NULL), "C000000045");
    assert_string_equal(m, "serial");
    assert_string_equal(codes(f, Q(.q = "李"), &m, NULL), "C000000045");
    assert_string_equal(m, "name");
    assert_string_equal(codes(f, Q(.q = "nobody"), &m, NULL), "");
    /* a code with a wrong check digit is a typo, not an empty result */
    jv *list;
    char nx[CUSTOMERS_CURSOR_MAX];
    err e;
    assert_int_equal(customers_search(f->d, f->v, Q(.q = "C000000073"), &f->a, &list, nx, &m, &e), ERR_INVALID);
    assert_string_equal(e.field, "q");
    assert_non_null(strstr(e.msg, "typo"));
    assert_int_equal(customers_search(f->d, f->v, Q(.status = "gone"), &f->a, &list, nx, &m, &e), ERR_INVALID);
    assert_string_equal(e.field, "status");
    assert_int_equal(customers_search(f->d, f->v, Q(.sort = "phone"), &f->a, &list, nx, &m, &e), ERR_INVALID);
    assert_string_equal(e.field, "sort");
    assert_int_equal(customers_search(f->d, f->v, Q(.tag = "VIP"), &f->a, &list, nx, &m, &e), ERR_INVALID);
    assert_string_equal(e.field, "tag");
    assert_int_equal(customers_search(f->d, f->v, Q(.q = "13900003333", .phone = "13900001111"), &f->a, &list, nx, &m, &e),
                     ERR_INVALID);
    assert_string_equal(e.field, "q");
    assert_int_equal(customers_search(f->d, f->v, Q(.phone = "12"), &f->a, &list, nx, &m, &e), ERR_INVALID);
    assert_string_equal(e.field, "phone");
}

static void test_search_pages(void **state)
{
    fixture *f = *state;
    search_world(f);
    customer_query q;
    char next[CUSTOMERS_CURSOR_MAX], cur[CUSTOMERS_CURSOR_MAX];
    /* by name: 张三 < 张三丰 < 张伟 < 李娜 < 王芳 in UTF-8 byte order */
    assert_string_equal(codes(f, Q(.sort = "name", .limit = 2), NULL, next), "C000000021,C000000013");
    assert_true(next[0]);
    strcpy(cur, next);
    assert_string_equal(codes(f, Q(.sort = "name", .limit = 2, .cursor = cur), NULL, next), "C000000037,C000000045");
    strcpy(cur, next);
    assert_string_equal(codes(f, Q(.sort = "name", .limit = 2, .cursor = cur), NULL, next), "C000000059");
    assert_string_equal(next, "");
    assert_string_equal(codes(f, Q(.sort = "-name", .limit = 3), NULL, next), "C000000059,C000000045,C000000037");
    strcpy(cur, next);
    assert_string_equal(codes(f, Q(.sort = "-name", .limit = 3, .cursor = cur), NULL, next), "C000000013,C000000021");
    /* a page boundary between equal names holds (keyset on name and id) */
    run(f, "UPDATE customers SET name = '同名' WHERE id IN (2, 3, 4)");
    assert_string_equal(codes(f, Q(.name = "同", .limit = 2), NULL, next), "C000000021,C000000037");
    strcpy(cur, next);
    assert_string_equal(codes(f, Q(.name = "同", .limit = 2, .cursor = cur), NULL, next), "C000000045");
    /* by code and by creation */
    assert_string_equal(codes(f, Q(.sort = "code", .limit = 3), NULL, next), "C000000013,C000000021,C000000037");
    strcpy(cur, next);
    assert_string_equal(codes(f, Q(.sort = "code", .limit = 3, .cursor = cur), NULL, next), "C000000045,C000000059");
    assert_string_equal(codes(f, Q(.sort = "-code", .limit = 4), NULL, next), "C000000059,C000000045,C000000037,C000000021");
    assert_string_equal(codes(f, Q(.sort = "created_at", .limit = 4), NULL, next), "C000000013,C000000021,C000000037,C000000045");
    strcpy(cur, next);
    assert_string_equal(codes(f, Q(.sort = "created_at", .limit = 4, .cursor = cur), NULL, next), "C000000059");
    assert_string_equal(codes(f, Q(.tag = "vip", .limit = 2), NULL, next), "C000000045,C000000021");
    strcpy(cur, next);
    assert_string_equal(codes(f, Q(.tag = "vip", .limit = 2, .cursor = cur), NULL, next), "C000000013");
    /* a cursor is bound to its sort, and made by the server */
    jv *list;
    err e;
    char nx[CUSTOMERS_CURSOR_MAX];
    assert_int_equal(customers_search(f->d, f->v, Q(.sort = "code", .cursor = cur), &f->a, &list, nx, NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "cursor");
    assert_int_equal(customers_search(f->d, f->v, Q(.cursor = "zz"), &f->a, &list, nx, NULL, &e), ERR_INVALID);
    assert_int_equal(customers_search(f->d, f->v, Q(.cursor = "7631"), &f->a, &list, nx, NULL, &e), ERR_INVALID);
#undef Q
}

/* -------------------------------------------------------------- overview */

static void test_overview(void **state)
{
    fixture *f = *state;
    search_world(f);
    run(f, "INSERT INTO products (code, kind, name, status, created_at, created_by) VALUES "
           "('FIBER300', 'plan', '光纤300M', 'active', 'now', 't'), ('IPTV', 'addon', '电视', 'active', 'now', 't');"
           "INSERT INTO product_versions (product_id, version, effective_from, price, tax_category, rule, created_at, "
           "created_by) VALUES (1, 1, '2026-01-01', 9900, 'internet', 'tariffs.flat', 'now', 't'), "
           "(1, 2, '2026-06-01', 12900, 'internet', 'tariffs.flat', 'now', 't'), "
           "(1, 3, '2099-01-01', 19900, 'internet', 'tariffs.flat', 'now', 't'), "
           "(2, 1, '2099-01-01', 1500, 'internet', 'tariffs.flat', 'now', 't');"
           "INSERT INTO subscriptions (customer_id, product_id, service_account_id, billing, period, start_date, anchor_day, "
           "next_bill_date, created_at, created_by) VALUES (3, 1, 1, 'postpaid', 'month', '2026-06-10', 10, '2026-12-10', "
           "'now', 't');"
           "INSERT INTO subscription_items (subscription_id, product_id, start_date) VALUES (1, 2, '2026-06-10');"
           "INSERT INTO installations (device_id, customer_id, service_account_id, installed_on, engineer, address, created_at) "
           "VALUES (2, 3, 1, '2026-06-10', 'e', '杭州市西湖区翠苑一区4幢', 'now');"
           "INSERT INTO deposits (customer_id, device_id, product, amount, taken_on) VALUES (3, 2, 'ONU-DEP', 20000, '2026-06-10');"
           "INSERT INTO pending_charges (customer_id, description, unit_price, tax_category, created_at, created_by) "
           "VALUES (3, '安装费', 10000, 'installation', 'now', 't');");
    err e;
    jv *o;
    assert_int_equal(customers_overview(f->d, f->v, 3, "2026-11-27", &f->a, &o, &e), 0);
    assert_string_equal(S(o, "code"), "C000000037");
    assert_string_equal(S(o, "phone"), "13900002222");
    const jv *acc = jv_get(o, "service_accounts");
    assert_int_equal(jv_len(acc), 1);
    assert_string_equal(S(jv_at(acc, 0), "username"), "zw0571");
    assert_null(jv_get(jv_at(acc, 0), "password"));
    assert_null(jv_get(jv_at(acc, 0), "password_enc"));
    const jv *dev = jv_get(o, "devices");
    assert_int_equal(jv_len(dev), 1);
    assert_string_equal(S(jv_at(dev, 0), "serial"), "HWTC0000AAAA");
    assert_string_equal(S(jv_at(dev, 0), "service_account"), "zw0571");
    assert_null(jv_get(jv_at(dev, 0), "address")); /* personal data outside the filtered profile */
    assert_int_equal(jv_get(jv_get(jv_at(dev, 0), "deposit"), "amount")->u.i, 20000);
    assert_int_equal(jv_len(jv_get(o, "deposits")), 1);
    const jv *sub = jv_at(jv_get(o, "subscriptions"), 0);
    assert_string_equal(S(jv_get(sub, "plan"), "name"), "光纤300M");
    /* the version in force on 2026-11-27 is v2 (from 2026-06-01), not v3 (2099) */
    assert_int_equal(jv_get(sub, "price")->u.i, 12900);
    assert_int_equal(jv_get(sub, "price_version")->u.i, 2);
    const jv *addon = jv_at(jv_get(sub, "addons"), 0);
    assert_string_equal(S(addon, "code"), "IPTV");
    assert_int_equal(jv_get(addon, "price")->kind, JV_NULL); /* no version yet */
    assert_int_equal(jv_get(jv_at(jv_get(o, "pending_charges"), 0), "unit_price")->u.i, 10000);
    assert_int_equal(jv_get(o, "balance")->u.i, 0);
    assert_int_equal(jv_len(jv_get(o, "latest_invoices")), 0);
    assert_string_equal(S(jv_get(o, "dunning"), "state"), "none");
    /* another customer sees nothing of it */
    assert_int_equal(customers_overview(f->d, f->v, 4, "2026-11-27", &f->a, &o, &e), 0);
    assert_int_equal(jv_len(jv_get(o, "subscriptions")), 0);
    assert_int_equal(jv_len(jv_get(o, "devices")), 1);
    assert_int_equal(jv_get(jv_at(jv_get(o, "devices"), 0), "deposit")->kind, JV_NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes),
        cmocka_unit_test_setup_teardown(test_id_by_code, setup, teardown),
        cmocka_unit_test(test_id_card),
        cmocka_unit_test(test_mobile),
        cmocka_unit_test(test_phone2),
        cmocka_unit_test(test_tax_id),
        cmocka_unit_test(test_tags_and_statuses),
        cmocka_unit_test_setup_teardown(test_create_get_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_business, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation_names_the_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verification_expiry_and_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_by_each_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_guesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overview, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
