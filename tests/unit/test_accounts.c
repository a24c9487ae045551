/* test_accounts.c - PPPoE accounts (user names given and made by the rule,
 * what the rule may return, password checks and generation, encryption
 * round trip, status), SMS reset codes (phone checks, resend limit, expiry,
 * attempts), devices (serial and MAC normalisation, registration),
 * installations (install, remove, swap, history, one place at a time) and
 * deposits (take, price default, settle), each on a real migrated database
 * with a real key file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accounts.h"
#include "customers.h"
#include "db.h"
#include "devices.h"
#include "migrate.h"
#include "rules.h"
#include "vault.h"
#include "unit_fs.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    char keys[128];
    db *d;
    vault *v;
    jv_arena a;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_accounts_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
    snprintf(f->keys, sizeof f->keys, "%s/test.key", f->dir);
    jv_arena_init(&f->a, 0);
    err e;
    err_clear(&e);
    if (db_open(f->path, DB_OPEN_CREATE, &f->d, &e) || migrate_apply(f->d, NULL, &e) ||
        vault_create_file(f->keys, &e) || vault_open(f->keys, &f->v, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    db_close(f->d);
    vault_close(f->v);
    jv_arena_free(&f->a);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

#define assert_contains(hay, needle)                                                                      \
    do {                                                                                                 \
        if (!strstr((hay), (needle))) fail_msg("'%s' does not contain '%s'", (hay), (needle));           \
    } while (0)

/* A customer with a service address (city NULL: none), as the customers
 * module will write it; the code carries the id and its check digit. */
static int64_t add_customer(fixture *f, int64_t id, const char *city, const char *district)
{
    char code[CUSTOMER_CODE_MAX];
    customers_make_code("C", id, code);
    err e;
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) "
                            "VALUES (?, ?, 'residential', 'Test', 'active', '2026-01-01T00:00:00.000Z', 'test', "
                            "'2026-01-01T00:00:00.000Z')",
                            "is", id, code),
                     0);
    if (city)
        assert_int_equal(db_run(f->d, &e,
                                "INSERT INTO addresses (customer_id, kind, province, city, district, street, community, "
                                "building, unit, floor, room) VALUES (?, 'service', '浙江省', ?, ?, '文三路', '金都花园', "
                                "'3幢', '2单元', '', '501')",
                                "iss", id, city, district),
                         0);
    return id;
}

static void set_phone(fixture *f, int64_t customer_id, const char *phone, int verified)
{
    buf enc = {0};
    err e;
    char idx[VAULT_INDEX_HEX];
    assert_int_equal(vault_encrypt(f->v, "customers.phone", phone, strlen(phone), &enc, &e), 0);
    vault_index(f->v, "phone", phone, idx);
    assert_int_equal(db_run(f->d, &e, "UPDATE customers SET phone_enc = ?, phone_idx = ?, phone_verified_at = ? WHERE id = ?",
                            "sssi", buf_cstr(&enc), idx, verified ? "2026-01-02T00:00:00.000Z" : NULL, customer_id),
                     0);
    buf_free(&enc);
}

static int64_t count(fixture *f, const char *sql)
{
    int64_t n = -1;
    err e;
    /* only literals below: statements are cached by address */
    assert_int_equal(db_get_int(f->d, &e, &n, sql, ""), 0);
    return n;
}

static ruleset *load_rules_text(const char *text)
{
    rule_file files[1] = {{(char *)"accounts.lua", (char *)text, strlen(text)}};
    rules_snapshot *s;
    ruleset *rs = NULL;
    err e;
    assert_int_equal(rules_snapshot_from("mem", files, 1, &s, &e), 0);
    rule_error d;
    int rc = ruleset_load(s, NULL, 1, &rs, &d, &e);
    if (rc) print_error("ruleset_load: %s\n", e.msg);
    assert_int_equal(rc, 0);
    rules_snapshot_unref(s);
    return rs;
}

/* The shipped rules/accounts.lua, examples checked. */
static ruleset *load_shipped_rules(void)
{
    FILE *fp = fopen(BB_SOURCE_DIR "/rules/accounts.lua", "rb");
    assert_non_null(fp);
    static char text[64 * 1024];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    return load_rules_text(text);
}

/* ------------------------------------------------------------- user names */

static void test_username_check(void **state)
{
    (void)state;
    static const char *const good[] = {"hz12340", "abcd", "a.b_c@d-e", "0123", "user@isp.cn",
                                       "abcdefghijklmnopqrstuvwxyz012345" /* 32 */};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        err e;
        err_clear(&e);
        if (accounts_username_check(good[i], &e)) fail_msg("'%s' refused: %s", good[i], e.msg);
    }
    static const struct {
        const char *name, *msg;
    } bad[] = {
        {"abc", "4 to 32 characters, not 3"},
        {"abcdefghijklmnopqrstuvwxyz0123456", "not 33"},
        {"", "not 0"},
        {"Hz12340", "lower case: 'H' at position 1"},
        {"hz 1234", "' ' (position 3)"},
        {"hz#1234", "'#' (position 3) is not allowed"},
        {"hz1234\xc3\xa9", "byte 0xc3 (position 7)"},
        {".hz1234", "starts with a letter or a digit, not '.'"},
        {"@isp.cn", "not '@'"},
        {"-abcd", "not '-'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err e;
        err_clear(&e);
        assert_int_equal(accounts_username_check(bad[i].name, &e), ERR_INVALID);
        assert_string_equal(e.tag, "invalid_username");
        assert_string_equal(e.field, "username");
        assert_contains(e.msg, bad[i].msg);
    }
    err e;
    assert_int_equal(accounts_username_check(NULL, &e), ERR_INVALID);
}

static void test_password_check(void **state)
{
    (void)state;
    err e;
    assert_int_equal(accounts_password_check("s3cret!!", "hz1", &e), 0);          /* 8: the minimum */
    assert_int_equal(accounts_password_check("~!@#$%^&*()_+{}|:<>?", NULL, &e), 0);
    assert_int_equal(accounts_password_check("short7!", "hz1", &e), ERR_INVALID); /* 7 */
    assert_string_equal(e.field, "password");
    assert_string_equal(e.tag, "weak_password");
    assert_contains(e.msg, "at least 8");
    char longpw[66];
    memset(longpw, 'a', 65);
    longpw[65] = '\0';
    assert_int_equal(accounts_password_check(longpw, NULL, &e), ERR_INVALID);
    assert_contains(e.msg, "at most 64");
    longpw[64] = '\0';
    assert_int_equal(accounts_password_check(longpw, NULL, &e), 0);
    assert_int_equal(accounts_password_check("pass word", NULL, &e), ERR_INVALID);
    assert_contains(e.msg, "position 5");
    assert_int_equal(accounts_password_check("p\xc3\xa4sswort1", NULL, &e), ERR_INVALID);
    assert_contains(e.msg, "printable ASCII");
    assert_int_equal(accounts_password_check("hz123456", "hz123456", &e), ERR_INVALID);
    assert_contains(e.msg, "user name");
}

static void test_password_generate(void **state)
{
    (void)state;
    static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    enum { N = 300 };
    static char pw[N][ACCOUNT_PASSWORD_BUF];
    int seen[256] = {0};
    for (int i = 0; i < N; i++) {
        err e;
        assert_int_equal(accounts_password_generate(pw[i], &e), 0);
        assert_int_equal(strlen(pw[i]), 16);
        int lower = 0, upper = 0, digit = 0;
        for (int k = 0; k < 16; k++) {
            char c = pw[i][k];
            if (!strchr(alphabet, c)) fail_msg("'%c' in %s is not in the alphabet", c, pw[i]);
            seen[(unsigned char)c]++;
            lower |= c >= 'a' && c <= 'z';
            upper |= c >= 'A' && c <= 'Z';
            digit |= c >= '0' && c <= '9';
        }
        assert_true(lower && upper && digit);
        /* a generated password passes the check for given ones */
        assert_int_equal(accounts_password_check(pw[i], "hz12340", &e), 0);
        for (int j = 0; j < i; j++) assert_string_not_equal(pw[i], pw[j]);
    }
    /* 4,800 draws of 56 symbols: each turns up about 86 times; missing one
     * (or never leaving a corner of the alphabet) means a biased draw */
    for (const char *c = alphabet; *c; c++)
        if (seen[(unsigned char)*c] < 30) fail_msg("'%c' drawn only %d times", *c, seen[(unsigned char)*c]);
    for (const char *c = "0O1lIo"; *c; c++) assert_int_equal(seen[(unsigned char)*c], 0);
}

static void test_username_from_shipped_rule(void **state)
{
    fixture *f = *state;
    ruleset *rs = load_shipped_rules();
    add_customer(f, 1234, "杭州市", "西湖区");     /* C000012340 */
    add_customer(f, 56789, "宁波市", "海曙区");    /* C000567894 */
    add_customer(f, 1, NULL, NULL);                 /* C000000013, no address */
    char name[ACCOUNT_USERNAME_BUF];
    rule_error re;
    err e;
    assert_int_equal(accounts_username_from_rule(f->d, rs, 1234, &f->a, name, &re, &e), 0);
    assert_string_equal(name, "hz12340");
    assert_int_equal(accounts_create(f->d, f->v, 1234, name, "s3cret-pass", NULL, &e), 0);
    /* the second account: sequence 2 */
    assert_int_equal(accounts_username_from_rule(f->d, rs, 1234, &f->a, name, &re, &e), 0);
    assert_string_equal(name, "hz12340-2");
    assert_int_equal(accounts_username_from_rule(f->d, rs, 56789, &f->a, name, &re, &e), 0);
    assert_string_equal(name, "nb567894");
    assert_int_equal(accounts_username_from_rule(f->d, rs, 1, &f->a, name, &re, &e), 0);
    assert_string_equal(name, "hz13");
    /* hz13 taken by someone else's hand-made account: attempt 2 -> hz13-2 */
    assert_int_equal(accounts_create(f->d, f->v, 56789, "hz13", "s3cret-pass", NULL, &e), 0);
    assert_int_equal(accounts_username_from_rule(f->d, rs, 1, &f->a, name, &re, &e), 0);
    assert_string_equal(name, "hz13-2");
    ruleset_unref(rs);
}

static void test_username_rule_output_checked(void **state)
{
    fixture *f = *state;
    add_customer(f, 7, "杭州市", "西湖区");
    static const struct {
        const char *src, *kind, *msg;
    } cases[] = {
        {"return { username = function(ctx) return 42 end }", "output", "returned a number, expected the user name"},
        {"return { username = function(ctx) return 4.5 end }", "output", "returned a number"},
        {"return { username = function(ctx) return nil end }", "output", "returned nil, expected the user name"},
        {"return { username = function(ctx) return { 'hz7' } end }", "output", "returned a table"},
        {"return { username = function(ctx) return true end }", "output", "returned a boolean"},
        {"return { username = function(ctx) return 'HZ0007' end }", "output",
         "returned 'HZ0007', which is not a valid user name: a PPPoE user name is lower case"},
        {"return { username = function(ctx) return 'hz' end }", "output", "4 to 32 characters, not 2"},
        {"return { username = function(ctx)\n  error('no prefix for ' .. ctx.city)\nend }", "runtime",
         "no prefix for 杭州市"},
        {"return { other = function(ctx) return 'x' end }", "not_found", "give a username"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ruleset *rs = load_rules_text(cases[i].src);
        char name[ACCOUNT_USERNAME_BUF] = "";
        rule_error re;
        err e;
        err_clear(&e);
        int rc = accounts_username_from_rule(f->d, rs, 7, &f->a, name, &re, &e);
        if (rc != ERR_RULE) fail_msg("case %zu: rc %d (%s)", i, rc, e.msg);
        assert_string_equal(re.kind, cases[i].kind);
        assert_string_equal(re.rule, "accounts.username");
        assert_contains(e.msg, cases[i].msg);
        if (!strcmp(cases[i].kind, "runtime")) {
            assert_string_equal(re.file, "accounts.lua");
            assert_int_equal(re.line, 2);
        }
        assert_string_equal(name, "");
        ruleset_unref(rs);
    }
    /* a rule that ignores the attempt and offers a taken name: 409 */
    err e;
    assert_int_equal(accounts_create(f->d, f->v, 7, "taken1", "s3cret-pass", NULL, &e), 0);
    ruleset *rs = load_rules_text("local n = 0\nreturn { username = function(ctx) return 'taken1' end }");
    char name[ACCOUNT_USERNAME_BUF];
    rule_error re;
    assert_int_equal(accounts_username_from_rule(f->d, rs, 7, &f->a, name, &re, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "username_taken");
    assert_contains(e.msg, "'taken1'");
    ruleset_unref(rs);
    /* one that uses the attempt gets there on the third */
    assert_int_equal(accounts_create(f->d, f->v, 7, "try-1", "s3cret-pass", NULL, &e), 0);
    assert_int_equal(accounts_create(f->d, f->v, 7, "try-2", "s3cret-pass", NULL, &e), 0);
    rs = load_rules_text("return { username = function(ctx) return 'try-' .. ctx.attempt end }");
    assert_int_equal(accounts_username_from_rule(f->d, rs, 7, &f->a, name, &re, &e), 0);
    assert_string_equal(name, "try-3");
    ruleset_unref(rs);
    /* all five attempts taken */
    assert_int_equal(accounts_create(f->d, f->v, 7, "try-3", "s3cret-pass", NULL, &e), 0);
    assert_int_equal(accounts_create(f->d, f->v, 7, "try-4", "s3cret-pass", NULL, &e), 0);
    assert_int_equal(accounts_create(f->d, f->v, 7, "try-5", "s3cret-pass", NULL, &e), 0);
    rs = load_rules_text("return { username = function(ctx) return 'try-' .. ctx.attempt end }");
    assert_int_equal(accounts_username_from_rule(f->d, rs, 7, &f->a, name, &re, &e), ERR_CONFLICT);
    assert_contains(e.msg, "'try-5'");
    ruleset_unref(rs);
    /* the context the rule sees */
    rs = load_rules_text("return { username = function(ctx)\n"
                         "  return string.format('%s.%d.%d.%d', ctx.customer, ctx.customer_id, ctx.sequence, ctx.attempt)\n"
                         "    :lower() .. (ctx.district == '西湖区' and '.x' or '.none')\nend }");
    assert_int_equal(accounts_username_from_rule(f->d, rs, 7, &f->a, name, &re, &e), 0);
    /* taken1 and try-1 .. try-5: 6 accounts so far, sequence 7 */
    assert_string_equal(name, "c000000076.7.7.1.x");
    ruleset_unref(rs);
}

/* -------------------------------------------------------------- records */

static void test_create_encrypts_password(void **state)
{
    fixture *f = *state;
    add_customer(f, 3, "杭州市", "西湖区");
    err e;
    int64_t id;
    assert_int_equal(accounts_create(f->d, f->v, 3, "hz000031", "Kx7-secret", &id, &e), 0);
    assert_int_equal(accounts_create(f->d, f->v, 3, "hz000031", "other-secret", NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "username_taken");
    assert_string_equal(e.field, "username");
    /* stored encrypted under the place's aad, and it comes back */
    db_stmt *s = db_prepare(f->d, "SELECT password_enc FROM service_accounts WHERE id = ?", &e);
    db_bind_int(s, 1, id);
    assert_int_equal(db_step(f->d, s, &e), DB_ROW);
    char stored[256];
    snprintf(stored, sizeof stored, "%s", db_col_text(s, 0));
    db_done(s);
    assert_int_equal(strncmp(stored, "enc:v1:k1:", 10), 0);
    assert_null(strstr(stored, "Kx7-secret"));
    buf out = {0};
    assert_int_equal(accounts_password(f->d, f->v, id, &out, &e), 0);
    assert_string_equal(buf_cstr(&out), "Kx7-secret");
    buf_reset(&out);
    /* the same stored value read as another column's does not decrypt */
    assert_int_equal(vault_decrypt(f->v, "customers.phone", stored, &out, &e), ERR_FORBIDDEN);
    buf_reset(&out);
    account acc;
    assert_int_equal(accounts_get(f->d, "hz000031", 0, &acc, &e), 0);
    assert_int_equal(acc.id, id);
    assert_string_equal(acc.status, "active");
    assert_int_equal(strlen(acc.created_at), 24);
    /* a new password: re-encrypted, a fresh nonce, the time stamped */
    assert_int_equal(db_run(f->d, &e, "UPDATE service_accounts SET password_changed_at = '2020-01-01T00:00:00.000Z'", ""),
                     0);
    assert_int_equal(accounts_set_password(f->d, f->v, id, "New-pass-99", &e), 0);
    assert_int_equal(accounts_password(f->d, f->v, id, &out, &e), 0);
    assert_string_equal(buf_cstr(&out), "New-pass-99");
    buf_free(&out);
    account after;
    assert_int_equal(accounts_get(f->d, NULL, id, &after, &e), 0);
    assert_true(strcmp(after.password_changed_at, "2020-01-01T00:00:00.000Z") > 0);
    /* the API object never carries the password */
    jv *o;
    assert_int_equal(accounts_to_jv(f->d, &after, &f->a, &o, &e), 0);
    assert_null(jv_get(o, "password"));
    assert_string_equal(jv_get(o, "customer")->u.str.s, "C000000037");
    assert_string_equal(jv_get(o, "username")->u.str.s, "hz000031");
    assert_int_equal(accounts_get(f->d, "nobody", 0, &acc, &e), ERR_NOTFOUND);
    assert_string_equal(e.field, "username");
}

static void test_status(void **state)
{
    fixture *f = *state;
    add_customer(f, 4, NULL, NULL);
    err e;
    int64_t id;
    account acc;
    assert_int_equal(accounts_create(f->d, f->v, 4, "st-test", "s3cret-pass", &id, &e), 0);
    static const char *const path[] = {"throttled", "active", "suspended", "suspended", "active", "closed"};
    for (size_t i = 0; i < sizeof path / sizeof *path; i++) {
        assert_int_equal(accounts_set_status(f->d, id, path[i], &e), 0);
        assert_int_equal(accounts_get(f->d, NULL, id, &acc, &e), 0);
        assert_string_equal(acc.status, path[i]);
    }
    /* closed stays closed; its name stays taken */
    assert_int_equal(accounts_set_status(f->d, id, "closed", &e), 0);
    assert_int_equal(accounts_set_status(f->d, id, "active", &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "account_closed");
    assert_int_equal(accounts_set_password(f->d, f->v, id, "whatever-1", &e), ERR_CONFLICT);
    assert_int_equal(accounts_create(f->d, f->v, 4, "st-test", "s3cret-pass", NULL, &e), ERR_CONFLICT);
    assert_int_equal(accounts_set_status(f->d, id, "deleted", &e), ERR_INVALID);
    assert_string_equal(e.field, "status");
    assert_int_equal(accounts_set_status(f->d, id, NULL, &e), ERR_INVALID);
    assert_int_equal(accounts_set_status(f->d, 999, "active", &e), ERR_NOTFOUND);
}

/* ----------------------------------------------------------- reset codes */

#define T0 1790000000000LL   /* a fixed "now" in ms */

/* The code in the newest outbox message, and checks of that message. */
static void last_code(fixture *f, int64_t customer_id, const char *phone, const char *username, char code[7])
{
    err e;
    db_stmt *s = db_prepare(f->d,
                            "SELECT event, channel, customer_id, recipient_enc, payload, status FROM outbox "
                            "ORDER BY id DESC LIMIT 1",
                            &e);
    assert_int_equal(db_step(f->d, s, &e), DB_ROW);
    assert_string_equal(db_col_text(s, 0), "pppoe_reset_code");
    assert_string_equal(db_col_text(s, 1), "log");
    assert_int_equal(db_col_int(s, 2), customer_id);
    assert_string_equal(db_col_text(s, 5), "pending");
    buf ph = {0};
    assert_int_equal(vault_decrypt(f->v, "outbox.recipient", db_col_text(s, 3), &ph, &e), 0);
    assert_string_equal(buf_cstr(&ph), phone);
    buf_free(&ph);
    jv *p;
    const char *payload = db_col_text(s, 4);
    assert_int_equal(json_parse(payload, strlen(payload), NULL, &f->a, &p, &e), 0);
    db_done(s);
    const jv *c = jv_get(p, "code");
    assert_non_null(c);
    assert_int_equal(c->kind, JV_STR);
    assert_int_equal(c->u.str.len, 6);
    assert_int_equal(strspn(c->u.str.s, "0123456789"), 6);
    assert_string_equal(jv_get(p, "username")->u.str.s, username);
    memcpy(code, c->u.str.s, 7);
}

/* A 6-digit code that is not `code`. */
static void other_code(const char *code, char out[7])
{
    snprintf(out, 7, "%s", code);
    out[0] = out[0] == '9' ? '0' : (char)(out[0] + 1);
}

static void test_reset_code_needs_verified_phone(void **state)
{
    fixture *f = *state;
    add_customer(f, 5, NULL, NULL);
    err e;
    int64_t id, exp, retry;
    account acc;
    assert_int_equal(accounts_create(f->d, f->v, 5, "rc-test", "s3cret-pass", &id, &e), 0);
    assert_int_equal(accounts_get(f->d, NULL, id, &acc, &e), 0);
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0, &exp, &retry, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "no_phone");
    set_phone(f, 5, "13812348000", 0);
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0, &exp, &retry, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "phone_not_verified");
    assert_int_equal(count(f, "SELECT count(*) FROM outbox"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM verification_codes"), 0);
    set_phone(f, 5, "13812348000", 1);
    char masked[32];
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0, &exp, &retry, masked, &e), 0);
    assert_string_equal(masked, "138****8000");
    assert_int_equal(exp, T0 + 300000);
    /* a closed account gets no code */
    assert_int_equal(accounts_set_status(f->d, id, "closed", &e), 0);
    assert_int_equal(accounts_get(f->d, NULL, id, &acc, &e), 0);
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0 + 120000, &exp, &retry, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "account_closed");
}

static void test_reset_code_lifecycle(void **state)
{
    fixture *f = *state;
    add_customer(f, 6, NULL, NULL);
    set_phone(f, 6, "13912345678", 1);
    err e;
    int64_t id, exp, retry = 0;
    account acc;
    assert_int_equal(accounts_create(f->d, f->v, 6, "lc-test", "s3cret-pass", &id, &e), 0);
    assert_int_equal(accounts_get(f->d, NULL, id, &acc, &e), 0);
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0, &exp, &retry, NULL, &e), 0);
    char code[7], wrong[7];
    last_code(f, 6, "13912345678", "lc-test", code);
    /* the stored row: keyed hash of "<customer>:<code>", 5 minutes, target = the phone's index */
    char hash[VAULT_INDEX_HEX], subject[32], phone_idx[VAULT_INDEX_HEX];
    snprintf(subject, sizeof subject, "6:%s", code);
    vault_index(f->v, "vcode", subject, hash);
    vault_index(f->v, "phone", "13912345678", phone_idx);
    db_stmt *s = db_prepare(f->d,
                            "SELECT purpose, code_hash, created_at, expires_at, attempts, target_idx FROM verification_codes "
                            "WHERE customer_id = 6",
                            &e);
    assert_int_equal(db_step(f->d, s, &e), DB_ROW);
    assert_string_equal(db_col_text(s, 0), "reset_pppoe");
    assert_string_equal(db_col_text(s, 1), hash);
    char t0[25], t5[25];
    db_format_time(T0, t0);
    db_format_time(T0 + 5 * 60 * 1000, t5);
    assert_string_equal(db_col_text(s, 2), t0);
    assert_string_equal(db_col_text(s, 3), t5);
    assert_int_equal(db_col_int(s, 4), 0);
    assert_string_equal(db_col_text(s, 5), phone_idx);
    assert_null(strstr(db_col_text(s, 1), code));
    db_done(s);

    /* a resend within the minute: how long to wait, rounded up */
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0 + 20000, &exp, &retry, NULL, &e), ERR_LIMIT);
    assert_string_equal(e.tag, "too_soon");
    assert_int_equal(retry, 40);
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0 + 59500, &exp, &retry, NULL, &e), ERR_LIMIT);
    assert_int_equal(retry, 1);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox"), 1);

    /* wrong codes count down; a malformed one does not count */
    other_code(code, wrong);
    int left = -1;
    assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, "12345", T0 + 1000, &left, &e), ERR_INVALID);
    assert_string_equal(e.tag, "invalid_field");
    assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, wrong, T0 + 1000, &left, &e), ERR_INVALID);
    assert_string_equal(e.tag, "wrong_code");
    assert_string_equal(e.field, "code");
    assert_int_equal(left, 4);
    assert_contains(e.msg, "4 attempts left");
    assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, wrong, T0 + 2000, &left, &e), ERR_INVALID);
    assert_int_equal(left, 3);
    /* the right one, once */
    assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, code, T0 + 3000, &left, &e), 0);
    assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, code, T0 + 4000, &left, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "no_code");
    assert_contains(e.msg, "already used");

    /* a new code after the minute; the old one no longer counts */
    char code2[7];
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0 + 61000, &exp, &retry, NULL, &e), 0);
    last_code(f, 6, "13912345678", "lc-test", code2);
    if (strcmp(code, code2)) {
        assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, code, T0 + 62000, &left, &e), ERR_INVALID);
        assert_int_equal(left, 4);
    }
    /* it expires 5 minutes after it was sent */
    assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, code2, T0 + 61000 + 300000, &left, &e), ERR_CONFLICT);
    assert_contains(e.msg, "expired");
    assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, code2, T0 + 61000 + 299999, &left, &e), 0);

    /* five wrong attempts and the code is dead, even the right one */
    char code3[7];
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0 + 200000, &exp, &retry, NULL, &e), 0);
    last_code(f, 6, "13912345678", "lc-test", code3);
    other_code(code3, wrong);
    for (int i = 4; i >= 0; i--) {
        assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, wrong, T0 + 201000, &left, &e), ERR_INVALID);
        assert_int_equal(left, i);
    }
    assert_contains(e.msg, "last attempt");
    assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, code3, T0 + 202000, &left, &e), ERR_CONFLICT);
    assert_contains(e.msg, "too many wrong codes");

    /* a code sent to a phone the customer no longer has proves nothing */
    char code4[7];
    assert_int_equal(accounts_reset_code_send(f->d, f->v, &acc, T0 + 300000, &exp, &retry, NULL, &e), 0);
    last_code(f, 6, "13912345678", "lc-test", code4);
    set_phone(f, 6, "13700001111", 1);
    assert_int_equal(accounts_reset_code_check(f->d, f->v, &acc, code4, T0 + 301000, &left, &e), ERR_CONFLICT);
    assert_contains(e.msg, "phone changed");
    assert_int_equal(count(f, "SELECT count(*) FROM outbox"), 4);
}

/* -------------------------------------------------------------- devices */

static void test_serial_normalisation(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *in, *out, *vendor;
    } good[] = {
        {"onu", "ZTEG12345678", "ZTEG12345678", "ZTE"},
        {"onu", "zteg 1234 5678", "ZTEG12345678", "ZTE"},
        {"onu", "hwtc1a2b3c4d", "HWTC1A2B3C4D", "Huawei"},
        {"onu", "ALCL-B1C2D3E4", "ALCLB1C2D3E4", "Nokia/Alcatel"},
        {"onu", "FHTT0000abcd", "FHTT0000ABCD", "FiberHome"},
        {"onu", "GPON00112233", "GPON00112233", "generic"},
        {"onu", "ABCD12345678", "ABCD12345678", ""},            /* unknown vendor: still a serial */
        {"onu", "5A54454712345678", "ZTEG12345678", "ZTE"},    /* the OLT's all-hex form */
        {"onu", "48575443 1A2B3C4D", "HWTC1A2B3C4D", "Huawei"},
        {"stb", "SN12345", "SN12345", ""},
        {"stb", "hwtc1a2b3c4d", "HWTC1A2B3C4D", "Huawei"},
        {"router", "a1b2c3", "A1B2C3", ""},
        {"router", "TP-LINK 2201 0099 8877", "TPLINK220100998877", ""},
        {"router", "abcdefghijklmnopqrstuvwxyz012345", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", ""},
        {"router", "5A54454712345678", "5A54454712345678", ""},  /* only ONUs get the hex form rewritten */
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char out[DEVICE_SERIAL_BUF], vendor[DEVICE_VENDOR_BUF];
        err e;
        err_clear(&e);
        if (devices_normalize_serial(good[i].kind, good[i].in, out, vendor, &e))
            fail_msg("%s '%s' refused: %s", good[i].kind, good[i].in, e.msg);
        assert_string_equal(out, good[i].out);
        assert_string_equal(vendor, good[i].vendor);
    }
    static const struct {
        const char *kind, *in, *tag, *msg;
    } bad[] = {
        {"onu", "ZTEG1234567", "invalid_serial", "not an ONU serial"},     /* 7 hex */
        {"onu", "ZTEG1234567G", "invalid_serial", "not an ONU serial"},    /* G is not hex */
        {"onu", "ZT3G12345678", "invalid_serial", "not an ONU serial"},    /* digit in the vendor code */
        {"onu", "SN1234567", "invalid_serial", "not an ONU serial"},
        {"onu", "5A54454712345G78", "invalid_serial", "not an ONU serial"},
        {"stb", "AB12", "invalid_serial", "6 to 32"},
        {"router", "abcdefghijklmnopqrstuvwxyz0123456", "invalid_serial", "not 33"},
        {"router", "SN_12345", "invalid_serial", "letters and digits only"},
        {"router", "   ", "invalid_serial", "empty"},
        {"modem", "ZTEG12345678", "invalid_kind", "onu, stb or router"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char out[DEVICE_SERIAL_BUF];
        err e;
        err_clear(&e);
        if (devices_normalize_serial(bad[i].kind, bad[i].in, out, NULL, &e) != ERR_INVALID)
            fail_msg("%s '%s' accepted as %s", bad[i].kind, bad[i].in, out);
        assert_string_equal(e.tag, bad[i].tag);
        assert_contains(e.msg, bad[i].msg);
    }
    assert_string_equal(devices_vendor_of("HWTC"), "Huawei");
    assert_null(devices_vendor_of("ABCD"));
}

static void test_mac_normalisation(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } good[] = {
        {"AA-BB-CC-DD-EE-F0", "aa:bb:cc:dd:ee:f0"},
        {"aa:bb:cc:dd:ee:f0", "aa:bb:cc:dd:ee:f0"},
        {"AA:BB:CC:DD:EE:F0", "aa:bb:cc:dd:ee:f0"},
        {"aabb.ccdd.eef0", "aa:bb:cc:dd:ee:f0"},
        {"AABBCCDDEEF0", "aa:bb:cc:dd:ee:f0"},
        {"  00:1a:2b:3c:4d:5e  ", "00:1a:2b:3c:4d:5e"},
        {"02-00-00-00-00-01", "02:00:00:00:00:01"},   /* locally administered: fine */
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char out[DEVICE_MAC_BUF];
        err e;
        err_clear(&e);
        if (devices_normalize_mac(good[i].in, out, &e)) fail_msg("'%s' refused: %s", good[i].in, e.msg);
        assert_string_equal(out, good[i].out);
    }
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"aa:bb:cc:dd:ee", "not a MAC address"},
        {"aa:bb:cc:dd:ee:f0:11", "not a MAC address"},
        {"aa:bb-cc:dd:ee:f0", "not a MAC address"},      /* mixed separators */
        {"aa:bb:cc:dd:ee:fg", "not a MAC address"},
        {"aabb.ccdd.ee", "not a MAC address"},
        {"aabbccddee", "not a MAC address"},
        {"aa bb cc dd ee f0", "not a MAC address"},
        {"", "not a MAC address"},
        {"00:00:00:00:00:00", "no device's"},
        {"ff:ff:ff:ff:ff:ff", "multicast or broadcast"},
        {"01:00:5e:00:00:01", "multicast or broadcast"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char out[DEVICE_MAC_BUF];
        err e;
        err_clear(&e);
        if (devices_normalize_mac(bad[i].in, out, &e) != ERR_INVALID) fail_msg("'%s' accepted as %s", bad[i].in, out);
        assert_string_equal(e.tag, "invalid_mac");
        assert_string_equal(e.field, "mac");
        assert_contains(e.msg, bad[i].msg);
    }
}

static void test_device_create_and_lookup(void **state)
{
    fixture *f = *state;
    err e;
    int64_t id;
    device dv;
    assert_int_equal(devices_create(f->d, "onu", "zteg 1234 5678", "AA-BB-CC-DD-EE-F0", "F660", NULL, &id, &e), 0);
    assert_int_equal(devices_get(f->d, "ZTEG12345678", 0, &dv, &e), 0);
    assert_int_equal(dv.id, id);
    assert_string_equal(dv.vendor, "ZTE");
    assert_string_equal(dv.mac, "aa:bb:cc:dd:ee:f0");
    assert_string_equal(dv.status, "stock");
    assert_string_equal(dv.model, "F660");
    /* found however it is typed */
    assert_int_equal(devices_get(f->d, "zteg-1234-5678", 0, &dv, &e), 0);
    assert_int_equal(devices_get(f->d, "5A54454712345678", 0, &dv, &e), 0);
    assert_int_equal(dv.id, id);
    assert_int_equal(devices_get(f->d, "ZTEG87654321", 0, &dv, &e), ERR_NOTFOUND);
    /* the same serial, the same MAC in another notation */
    assert_int_equal(devices_create(f->d, "onu", "ZTEG12345678", NULL, NULL, NULL, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "serial_taken");
    assert_int_equal(devices_create(f->d, "router", "RT0001", "aabb.ccdd.eef0", NULL, NULL, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "mac_taken");
    assert_contains(e.msg, "ZTEG12345678");
    /* vendor: the prefix wins; a stated vendor fills in an unknown prefix */
    assert_int_equal(devices_create(f->d, "onu", "HWTC00000001", NULL, NULL, "ZTE", NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "vendor");
    assert_int_equal(devices_create(f->d, "onu", "HWTC00000001", NULL, NULL, "Huawei", NULL, &e), 0);
    assert_int_equal(devices_create(f->d, "stb", "SKY123456", NULL, NULL, "Skyworth", &id, &e), 0);
    assert_int_equal(devices_get(f->d, NULL, id, &dv, &e), 0);
    assert_string_equal(dv.vendor, "Skyworth");
    assert_string_equal(dv.mac, "");
    assert_int_equal(devices_create(f->d, "stb", "SKY1", NULL, NULL, NULL, NULL, &e), ERR_INVALID);
    assert_int_equal(count(f, "SELECT count(*) FROM devices"), 3);
}

static int64_t add_device(fixture *f, const char *kind, const char *serial)
{
    err e;
    int64_t id;
    int rc = devices_create(f->d, kind, serial, NULL, NULL, NULL, &id, &e);
    if (rc) fail_msg("devices_create %s: %s", serial, e.msg);
    return id;
}

static void test_install_remove_swap(void **state)
{
    fixture *f = *state;
    add_customer(f, 10, "杭州市", "西湖区");   /* C000000101 */
    add_customer(f, 11, NULL, NULL);            /* C000000117 */
    err e;
    int64_t acc_id, acc_other, onu = add_device(f, "onu", "HWTC1A2B3C4D"), onu2 = add_device(f, "onu", "ZTEG00000002");
    int64_t stb = add_device(f, "stb", "STB123456");
    assert_int_equal(accounts_create(f->d, f->v, 10, "hz100", "s3cret-pass", &acc_id, &e), 0);
    assert_int_equal(accounts_create(f->d, f->v, 11, "hz114", "s3cret-pass", &acc_other, &e), 0);
    char addr[DEVICE_ADDRESS_MAX + 1];
    assert_int_equal(devices_service_address(f->d, 10, addr, sizeof addr, &e), 0);
    assert_string_equal(addr, "浙江省 杭州市 西湖区 文三路 金都花园 3幢 2单元 501");
    assert_int_equal(devices_service_address(f->d, 11, addr, sizeof addr, &e), 0);
    assert_string_equal(addr, "");

    /* validation: nothing is written */
    install_req r = {.customer_id = 10, .account_id = acc_other, .installed_on = "2026-03-01", .engineer = "wang"};
    assert_int_equal(devices_install(f->d, onu, &r, NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "account");
    r.account_id = acc_id;
    r.installed_on = "2026-02-30";
    assert_int_equal(devices_install(f->d, onu, &r, NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "installed_on");
    r.installed_on = "2026-03-01";
    r.engineer = "  ";
    assert_int_equal(devices_install(f->d, onu, &r, NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "engineer");
    install_req r11 = {.customer_id = 11, .installed_on = "2026-03-01", .engineer = "li"};
    assert_int_equal(devices_install(f->d, stb, &r11, NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "address");
    assert_int_equal(count(f, "SELECT count(*) FROM installations"), 0);

    /* installed at the service address by default */
    r.engineer = "wang";
    int64_t inst;
    assert_int_equal(devices_install(f->d, onu, &r, &inst, &e), 0);
    device dv;
    assert_int_equal(devices_get(f->d, NULL, onu, &dv, &e), 0);
    assert_string_equal(dv.status, "installed");
    jv *ij;
    assert_int_equal(devices_installation_jv(f->d, inst, &f->a, &ij, &e), 0);
    assert_string_equal(jv_get(ij, "address")->u.str.s, "浙江省 杭州市 西湖区 文三路 金都花园 3幢 2单元 501");
    assert_string_equal(jv_get(ij, "customer")->u.str.s, "C000000101");
    assert_string_equal(jv_get(ij, "account")->u.str.s, "hz100");
    assert_string_equal(jv_get(ij, "engineer")->u.str.s, "wang");
    assert_int_equal(jv_get(ij, "removed_on")->kind, JV_NULL);

    /* one place at a time: a clear conflict naming where it is */
    r11.address = "上城区 解放路 8号";
    assert_int_equal(devices_install(f->d, onu, &r11, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "device_installed");
    assert_contains(e.msg, "HWTC1A2B3C4D is installed at customer C000000101 since 2026-03-01");
    assert_int_equal(devices_install(f->d, onu, &r, NULL, &e), ERR_CONFLICT);
    /* the index itself refuses a second open installation */
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO installations (device_id, customer_id, installed_on, engineer, address, created_at) "
                            "VALUES (?, 11, '2026-03-02', 'x', 'y', '2026-03-02T00:00:00.000Z')",
                            "i", onu),
                     ERR_CONFLICT);

    /* removal: a date before the installation, a bad reason, then returned */
    assert_int_equal(devices_remove(f->d, onu, "returned", "2026-02-28", &e), ERR_INVALID);
    assert_string_equal(e.field, "removed_on");
    assert_int_equal(devices_remove(f->d, onu, "broken", "2026-03-05", &e), ERR_INVALID);
    assert_string_equal(e.field, "reason");
    assert_int_equal(devices_remove(f->d, onu, "returned", "2026-03-05", &e), 0);
    assert_int_equal(devices_get(f->d, NULL, onu, &dv, &e), 0);
    assert_string_equal(dv.status, "returned");
    assert_int_equal(devices_remove(f->d, onu, "returned", "2026-03-06", &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "not_installed");

    /* a returned device goes to the next customer */
    assert_int_equal(devices_install(f->d, onu, &r11, NULL, &e), 0);
    assert_int_equal(devices_get(f->d, NULL, onu, &dv, &e), 0);
    assert_string_equal(dv.status, "installed");

    /* swap: the old one out (reason swap), the new one in at the same place */
    assert_int_equal(devices_swap(f->d, onu, stb, "2026-03-10", "zhao", NULL, NULL, &e), ERR_INVALID);
    assert_string_equal(e.tag, "kind_mismatch");
    assert_int_equal(devices_swap(f->d, onu, onu, "2026-03-10", "zhao", NULL, NULL, &e), ERR_INVALID);
    int64_t new_inst, moved;
    assert_int_equal(devices_swap(f->d, onu, onu2, "2026-03-10", "zhao", &new_inst, &moved, &e), 0);
    assert_int_equal(moved, 0);
    assert_int_equal(devices_get(f->d, NULL, onu, &dv, &e), 0);
    assert_string_equal(dv.status, "returned");
    assert_int_equal(devices_get(f->d, NULL, onu2, &dv, &e), 0);
    assert_string_equal(dv.status, "installed");
    assert_int_equal(devices_installation_jv(f->d, new_inst, &f->a, &ij, &e), 0);
    assert_string_equal(jv_get(ij, "customer")->u.str.s, "C000000117");
    assert_string_equal(jv_get(ij, "address")->u.str.s, "上城区 解放路 8号");
    assert_string_equal(jv_get(ij, "engineer")->u.str.s, "zhao");
    assert_string_equal(jv_get(ij, "installed_on")->u.str.s, "2026-03-10");
    assert_int_equal(jv_get(ij, "account")->kind, JV_NULL);

    /* the old device's history, newest first */
    assert_int_equal(devices_get(f->d, NULL, onu, &dv, &e), 0);
    jv *full;
    assert_int_equal(devices_to_jv(f->d, &dv, 1, &f->a, &full, &e), 0);
    assert_int_equal(jv_get(full, "installation")->kind, JV_NULL);
    const jv *hist = jv_get(full, "history");
    assert_int_equal(jv_len(hist), 2);
    assert_string_equal(jv_get(jv_at(hist, 0), "customer")->u.str.s, "C000000117");
    assert_string_equal(jv_get(jv_at(hist, 0), "removal_reason")->u.str.s, "swap");
    assert_string_equal(jv_get(jv_at(hist, 0), "removed_on")->u.str.s, "2026-03-10");
    assert_string_equal(jv_get(jv_at(hist, 1), "customer")->u.str.s, "C000000101");
    assert_string_equal(jv_get(jv_at(hist, 1), "removal_reason")->u.str.s, "returned");

    /* swapping a device that is not installed */
    assert_int_equal(devices_swap(f->d, onu, stb, "2026-03-11", "zhao", NULL, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "not_installed");

    /* lost and closed: statuses that never come back */
    assert_int_equal(devices_remove(f->d, onu2, "lost", "2026-03-12", &e), 0);
    assert_int_equal(devices_get(f->d, NULL, onu2, &dv, &e), 0);
    assert_string_equal(dv.status, "lost");
    assert_int_equal(devices_install(f->d, onu2, &r, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "device_unavailable");
    r.account_id = 0;
    assert_int_equal(devices_install(f->d, stb, &r, NULL, &e), 0);
    assert_int_equal(devices_remove(f->d, stb, "closed", "2026-03-12", &e), 0);
    assert_int_equal(devices_get(f->d, NULL, stb, &dv, &e), 0);
    assert_string_equal(dv.status, "retired");
    /* onu at 10, onu at 11, onu2 at 11 (the swap), stb at 10 */
    assert_int_equal(count(f, "SELECT count(*) FROM installations"), 4);
    assert_int_equal(count(f, "SELECT count(*) FROM installations WHERE removed_on IS NULL"), 0);
}

/* ------------------------------------------------------------ deposits */

static int64_t add_product(fixture *f, const char *code, const char *kind, const char *status)
{
    err e;
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO products (code, kind, name, status, created_at, created_by) "
                            "VALUES (?, ?, ?, ?, '2020-01-01T00:00:00.000Z', 'test')",
                            "ssss", code, kind, code, status),
                     0);
    return db_last_id(f->d);
}

static void add_version(fixture *f, int64_t product, int version, const char *from, int64_t price)
{
    err e;
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO product_versions (product_id, version, effective_from, price, tax_category, rule, "
                            "created_at, created_by) VALUES (?, ?, ?, ?, 'deposit', 'tariffs.flat', "
                            "'2020-01-01T00:00:00.000Z', 'test')",
                            "iisi", product, (int64_t)version, from, price),
                     0);
}

static void test_deposits(void **state)
{
    fixture *f = *state;
    add_customer(f, 20, "杭州市", "西湖区");   /* C000000207 */
    add_customer(f, 21, "杭州市", "滨江区");
    err e;
    int64_t onu = add_device(f, "onu", "ZTEG000000A1"), onu2 = add_device(f, "onu", "ZTEG000000A2");
    int64_t dep = add_product(f, "ONU-DEPOSIT", "deposit", "active");
    add_version(f, dep, 1, "2020-01-01", 20000);
    add_version(f, dep, 2, "2026-06-01", 30000);
    add_product(f, "PLAN-100M", "plan", "active");
    add_product(f, "OLD-DEPOSIT", "deposit", "retired");
    int64_t nover = add_product(f, "NEW-DEPOSIT", "deposit", "active");
    add_version(f, nover, 1, "2030-01-01", 5000);

    /* the product must be an active deposit with a price then */
    int64_t id;
    assert_int_equal(deposits_take(f->d, 20, onu, "NOPE", -1, "2026-03-01", NULL, &id, &e), ERR_NOTFOUND);
    assert_string_equal(e.field, "product");
    assert_int_equal(deposits_take(f->d, 20, onu, "PLAN-100M", -1, "2026-03-01", NULL, &id, &e), ERR_INVALID);
    assert_string_equal(e.tag, "not_a_deposit");
    assert_int_equal(deposits_take(f->d, 20, onu, "OLD-DEPOSIT", -1, "2026-03-01", NULL, &id, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "product_not_active");
    assert_int_equal(deposits_take(f->d, 20, onu, "NEW-DEPOSIT", -1, "2026-03-01", NULL, &id, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "no_price");
    assert_int_equal(deposits_take(f->d, 20, onu, "ONU-DEPOSIT", -1, "2026-13-01", NULL, &id, &e), ERR_INVALID);
    assert_string_equal(e.field, "taken_on");
    assert_int_equal(count(f, "SELECT count(*) FROM deposits"), 0);

    /* the price in force on the day: version 1 before June, 2 from then */
    assert_int_equal(deposits_take(f->d, 20, onu, "ONU-DEPOSIT", -1, "2026-05-31", "cash", &id, &e), 0);
    deposit dp;
    assert_int_equal(deposits_get(f->d, id, &dp, &e), 0);
    assert_int_equal(dp.amount, 20000);
    assert_string_equal(dp.status, "held");
    assert_string_equal(dp.product, "ONU-DEPOSIT");
    assert_string_equal(dp.note, "cash");
    /* one held deposit per device */
    assert_int_equal(deposits_take(f->d, 20, onu, "ONU-DEPOSIT", 100, "2026-06-01", NULL, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "deposit_held");
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO deposits (customer_id, device_id, product, amount, status, taken_on) "
                            "VALUES (20, ?, 'ONU-DEPOSIT', 1, 'held', '2026-06-01')",
                            "i", onu),
                     ERR_CONFLICT);
    int64_t id2;
    assert_int_equal(deposits_take(f->d, 20, onu2, "ONU-DEPOSIT", -1, "2026-06-01", NULL, &id2, &e), 0);
    assert_int_equal(deposits_get(f->d, id2, &dp, &e), 0);
    assert_int_equal(dp.amount, 30000);

    /* settling: a known outcome, not before it was taken, once */
    assert_int_equal(deposits_settle(f->d, id, "refunded", "2026-07-01", "user:li", NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "status");
    assert_int_equal(deposits_settle(f->d, id, "returned", "2026-05-30", "user:li", NULL, &e), ERR_INVALID);
    assert_string_equal(e.field, "settled_on");
    assert_int_equal(deposits_settle(f->d, id, "returned", "2026-07-01", "user:li", "refunded in cash", &e), 0);
    assert_int_equal(deposits_get(f->d, id, &dp, &e), 0);
    assert_string_equal(dp.status, "returned");
    assert_string_equal(dp.settled_on, "2026-07-01");
    assert_string_equal(dp.settled_by, "user:li");
    assert_string_equal(dp.note, "cash\nrefunded in cash");
    assert_int_equal(deposits_settle(f->d, id, "kept", "2026-07-02", "user:li", NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "already_settled");
    assert_contains(e.msg, "returned on 2026-07-01 by user:li");
    jv *o;
    assert_int_equal(deposits_to_jv(f->d, &dp, &f->a, &o, &e), 0);
    assert_string_equal(jv_get(o, "customer")->u.str.s, "C000000207");
    assert_string_equal(jv_get(o, "device")->u.str.s, "ZTEG000000A1");
    assert_int_equal(jv_get(o, "amount")->u.i, 20000);

    /* once settled, the device may carry a new deposit (an amount given) */
    assert_int_equal(deposits_take(f->d, 20, onu, "ONU-DEPOSIT", 12345, "2026-07-02", NULL, &id, &e), 0);
    assert_int_equal(deposits_get(f->d, id, &dp, &e), 0);
    assert_int_equal(dp.amount, 12345);

    /* a device installed at someone else takes no deposit here */
    int64_t onu3 = add_device(f, "onu", "ZTEG000000A3");
    install_req r = {.customer_id = 21, .installed_on = "2026-03-01", .engineer = "wang"};
    assert_int_equal(devices_install(f->d, onu3, &r, NULL, &e), 0);
    assert_int_equal(deposits_take(f->d, 20, onu3, "ONU-DEPOSIT", -1, "2026-07-02", NULL, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "device_elsewhere");
    assert_contains(e.msg, "C000000210");
    assert_int_equal(deposits_take(f->d, 21, onu3, "ONU-DEPOSIT", -1, "2026-07-02", NULL, &id, &e), 0);

    /* a swap carries the held deposit to the replacement */
    int64_t onu4 = add_device(f, "onu", "ZTEG000000A4"), moved = 0;
    assert_int_equal(devices_swap(f->d, onu3, onu4, "2026-07-03", "zhao", NULL, &moved, &e), 0);
    assert_int_equal(moved, id);
    assert_int_equal(deposits_get(f->d, id, &dp, &e), 0);
    assert_int_equal(dp.device_id, onu4);
    assert_string_equal(dp.status, "held");
    assert_contains(dp.note, "moved from ZTEG000000A3 to ZTEG000000A4 on 2026-07-03 (swap)");
    device dv;
    assert_int_equal(devices_get(f->d, NULL, onu4, &dv, &e), 0);
    jv *full;
    assert_int_equal(devices_to_jv(f->d, &dv, 1, &f->a, &full, &e), 0);
    assert_int_equal(jv_get(jv_get(full, "deposit"), "id")->u.i, id);

    /* a lost device takes no deposit */
    assert_int_equal(devices_remove(f->d, onu4, "lost", "2026-07-04", &e), 0);
    assert_int_equal(deposits_settle(f->d, id, "forfeited", "2026-07-04", "user:li", NULL, &e), 0);
    assert_int_equal(deposits_take(f->d, 21, onu4, "ONU-DEPOSIT", -1, "2026-07-05", NULL, NULL, &e), ERR_CONFLICT);
    assert_string_equal(e.tag, "device_unavailable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username_check),
        cmocka_unit_test(test_password_check),
        cmocka_unit_test(test_password_generate),
        cmocka_unit_test_setup_teardown(test_username_from_shipped_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_username_rule_output_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_encrypts_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_code_needs_verified_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_code_lifecycle, setup, teardown),
        cmocka_unit_test(test_serial_normalisation),
        cmocka_unit_test(test_mac_normalisation),
        cmocka_unit_test_setup_teardown(test_device_create_and_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_remove_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deposits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
