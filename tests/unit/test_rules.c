/* test_rules.c - the rule host and rule sets: calls and strict results, the
 * bandbill helpers as rule code sees them, context views, examples, rule set
 * snapshots and versions, rules_call, hot reload of the live set, and the
 * starter rules. Every expected number is worked out by hand in a comment. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "lua_host.h"
#include "metrics.h"
#include "rules.h"

/* ------------------------------------------------------------ helpers */

#define RF(p, t) {(char *)(p), (char *)(t), sizeof(t) - 1}

static void assert_contains_at(const char *hay, const char *needle, const char *file, int line)
{
    if (!hay || !needle || !strstr(hay, needle)) {
        print_error("%s:%d: expected to find \"%s\" in \"%s\"\n", file, line, needle ? needle : "(null)",
                    hay ? hay : "(null)");
        fail();
    }
}
#define assert_contains(hay, needle) assert_contains_at((hay), (needle), __FILE__, __LINE__)

static void to_json(const jv *v, char *out, size_t n)
{
    buf s = {0};
    assert_int_equal(json_write(&s, v), 0);
    snprintf(out, n, "%s", buf_cstr(&s));
    buf_free(&s);
}

static jv *parse(jv_arena *a, const char *text)
{
    jv *v = NULL;
    err e;
    err_clear(&e);
    int rc = json_parse(text, strlen(text), &json_default_limits, a, &v, &e);
    if (rc) print_error("bad test JSON %s: %s\n", text, e.msg);
    assert_int_equal(rc, 0);
    return v;
}

/* The outcome of one call of a one-module rule set "t.lua". The host is
 * closed before eval returns; the result lives in r->a. */
typedef struct res {
    int rc;
    jv_arena a;
    jv *v;
    char json[4096];
    err e;
    rule_error last;
} res;

static void eval_src(res *r, const char *src, const char *fn, const char *ctx_json)
{
    memset(r, 0, sizeof *r);
    jv_arena_init(&r->a, 8u << 20);
    rule_file f = {(char *)"t.lua", (char *)src, strlen(src)};
    lhost *h;
    int rc = lhost_open(&f, 1, NULL, &h, NULL, &r->e);
    if (rc) print_error("t.lua did not load: %s\n", r->e.msg);
    assert_int_equal(rc, 0);
    const jv *args[1];
    int nargs = 0;
    if (ctx_json) args[nargs++] = parse(&r->a, ctx_json);
    err_clear(&r->e);
    r->rc = lhost_call(h, "t", fn, args, nargs, &r->a, &r->v, &r->e);
    r->last = *lhost_last_error(h);
    lhost_close(h);
    if (r->rc == 0) {
        buf js = {0};
        if (json_write(&js, r->v) == 0) snprintf(r->json, sizeof r->json, "%s", buf_cstr(&js));
        else snprintf(r->json, sizeof r->json, "(accepted, but json_write refused it)");
        buf_free(&js);
    }
}

/* Rule code for the body of t.f(ctx); the body's first line is line 4. */
#define BODY_HEAD "local M = {}\nlocal money, date = bandbill.money, bandbill.date\nfunction M.f(ctx)\n"
#define BODY_TAIL "\nend\nreturn M\n"

static void eval_body(res *r, const char *body, const char *ctx_json)
{
    char src[8192];
    snprintf(src, sizeof src, BODY_HEAD "%s" BODY_TAIL, body);
    eval_src(r, src, "f", ctx_json);
}

static void res_free(res *r) { jv_arena_free(&r->a); }

/* The body must succeed and give exactly `want` as JSON. */
static void expect_json(const char *body, const char *ctx_json, const char *want)
{
    res r;
    eval_body(&r, body, ctx_json);
    if (r.rc) print_error("call failed: %s\n", r.e.msg);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.json, want);
    res_free(&r);
}

/* The body must fail with ERR_RULE and `needle` in the message. */
static void expect_fail(const char *body, const char *ctx_json, const char *kind, const char *needle)
{
    res r;
    eval_body(&r, body, ctx_json);
    if (r.rc == 0) print_error("expected a failure, got %s\n", r.json);
    assert_int_equal(r.rc, ERR_RULE);
    assert_string_equal(r.last.kind, kind);
    assert_string_equal(r.last.rule, "t.f");
    assert_string_equal(r.last.file, "t.lua");
    assert_contains(r.e.msg, needle);
    res_free(&r);
}

/* ---------------------------------------------------- calls, results */

static const char BILL_SRC[] =
    "local money, date = bandbill.money, bandbill.date\n"
    "local M = {}\n"
    "function M.bill(ctx)\n"
    "  local p = ctx.period\n"
    "  local total = date.diff(p.from, p.to) + 1\n"
    "  local used = date.diff(ctx.active_from, p.to) + 1\n"
    "  local discount = money.percent(ctx.router_rent, ctx.discount_pct)\n"
    "  local lines = {\n"
    "    { code = 'plan', amount = money.prorate(ctx.price, used, total), days = used },\n"
    "    { code = 'install', amount = ctx.install_fee },\n"
    "    { code = 'router', amount = ctx.router_rent - discount, discount = discount },\n"
    "  }\n"
    "  return { customer_id = ctx.customer_id, name = ctx.name, vip = ctx.vip,\n"
    "           lines = lines, total = money.sum(lines, 'amount') }\n"
    "end\n"
    "return M\n";

static void test_call_ten_field_context_three_lines(void **state)
{
    (void)state;
    /* 10 fields: customer_id name plan price install_fee router_rent
     * discount_pct period active_from vip */
    const char *ctx = "{\"customer_id\":1001,\"name\":\"Li Wei\",\"plan\":\"fiber-300\",\"price\":12900,"
                      "\"install_fee\":20000,\"router_rent\":1500,\"discount_pct\":\"8.5\","
                      "\"period\":{\"from\":\"2026-11-01\",\"to\":\"2026-11-30\"},"
                      "\"active_from\":\"2026-11-17\",\"vip\":false}";
    res r;
    eval_src(&r, BILL_SRC, "bill", ctx);
    if (r.rc) print_error("%s\n", r.e.msg);
    assert_int_equal(r.rc, 0);
    /* plan:    November has 30 days; 17..30 is 14 days;
     *          12900 * 14 / 30 = 180600 / 30 = 6020 exactly
     * install: 20000
     * router:  8.5% of 1500 = 1500 * 85 / 1000 = 127.5 -> half up 128;
     *          1500 - 128 = 1372
     * total:   6020 + 20000 + 1372 = 27392 */
    assert_string_equal(r.json, "{\"customer_id\":1001,\"lines\":["
                                "{\"amount\":6020,\"code\":\"plan\",\"days\":14},"
                                "{\"amount\":20000,\"code\":\"install\"},"
                                "{\"amount\":1372,\"code\":\"router\",\"discount\":128}],"
                                "\"name\":\"Li Wei\",\"total\":27392,\"vip\":false}");
    /* the jv tree itself: kinds, not only the text */
    assert_int_equal(r.v->kind, JV_OBJ);
    assert_int_equal(r.v->u.obj.n, 5);
    const jv *lines = jv_get(r.v, "lines");
    assert_int_equal(lines->kind, JV_ARR);
    assert_int_equal(lines->u.arr.n, 3);
    assert_int_equal(jv_get(jv_at(lines, 0), "amount")->kind, JV_INT);
    assert_int_equal(jv_get(jv_at(lines, 2), "discount")->u.i, 128);
    assert_int_equal(jv_get(r.v, "vip")->kind, JV_BOOL);
    assert_int_equal(jv_get(r.v, "total")->u.i, 27392);
    res_free(&r);
}

static void test_integer_result_is_jv_int(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return 12900", NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.v->kind, JV_INT);
    assert_int_equal(r.v->u.i, 12900);
    res_free(&r);
}

static void test_float_result_is_jv_num(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return 12900.0", NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.v->kind, JV_NUM);
    assert_true(r.v->u.num == 12900.0);
    assert_string_equal(r.json, "12900.0");
    res_free(&r);
}

static void test_division_result_stays_float(void **state)
{
    (void)state;
    /* '/' is float division in Lua: 25800 / 2 = 12900.0; '//' keeps integers */
    expect_json("  return { slash = 25800 / 2, floor = 25800 // 2 }", NULL, "{\"floor\":12900,\"slash\":12900.0}");
}

static void test_nil_result_is_null(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return nil", NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.v->kind, JV_NULL);
    res_free(&r);
}

static void test_nan_refused_with_path(void **state)
{
    (void)state;
    expect_fail("  return { lines = { { amount = 100 }, { amount = 0/0 } } }", NULL, "output",
                "returned an invalid value: result.lines[2].amount: NaN (not a number)");
}

static void test_nan_refused_names_rule_and_place(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return { lines = { { amount = 100 }, { amount = 0/0 } } }", NULL);
    assert_int_equal(r.rc, ERR_RULE);
    /* the function is defined on line 3 of t.lua */
    assert_string_equal(r.e.msg, "rule t.f failed at t.lua:3 (function 'f'): returned an invalid value: "
                                 "result.lines[2].amount: NaN (not a number)");
    assert_string_equal(r.e.tag, "rule_error");
    assert_int_equal(r.last.line, 3);
    assert_string_equal(r.last.function, "f");
    res_free(&r);
}

static void test_math_huge_refused(void **state)
{
    (void)state;
    expect_fail("  return { total = math.huge }", NULL, "output", "result.total: an infinite number");
}

static void test_minus_huge_refused_top_level_list(void **state)
{
    (void)state;
    expect_fail("  return { 1, -math.huge }", NULL, "output", "result[2]: an infinite number");
}

static void test_function_refused(void **state)
{
    (void)state;
    expect_fail("  return { lines = { { amount = print } } }", NULL, "output",
                "result.lines[1].amount: a function value");
}

static void test_mixed_table_refused(void **state)
{
    (void)state;
    expect_fail("  return { lines = { 100, 200, note = 'x' } }", NULL, "output",
                "result.lines: a table mixes list items and named fields");
}

static void test_list_hole_refused(void **state)
{
    (void)state;
    expect_fail("  local t = {}\n  t[1] = 100\n  t[3] = 300\n  return { lines = t }", NULL, "output",
                "result.lines: a list with holes (nil in the middle)");
}

/* The same hole written in a table constructor lands in Lua's array part,
 * where the border is 3: it must be refused all the same, not come out as
 * [100, null, 300]. */
static void test_list_hole_in_constructor_refused(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return { lines = { 100, nil, 300 } }", NULL);
    int rc = r.rc;
    char seen[1200];
    snprintf(seen, sizeof seen, "%s", rc ? r.e.msg : r.json);
    res_free(&r);
    if (rc == 0) print_error("BUG: a list with a hole was accepted as %s\n", seen);
    assert_int_equal(rc, ERR_RULE);
    assert_contains(seen, "result.lines: a list with holes");
}

static void test_invalid_utf8_refused(void **state)
{
    (void)state;
    /* caf\xe9 is Latin-1, not UTF-8 */
    expect_fail("  return { lines = { { name = 'caf\\xe9' } } }", NULL, "output",
                "result.lines[1].name: a string that is not valid UTF-8");
}

static void test_overlong_utf8_refused(void **state)
{
    (void)state;
    /* C0 AF is an overlong '/' */
    expect_fail("  return { path = '\\xc0\\xaf' }", NULL, "output", "result.path: a string that is not valid UTF-8");
}

static void test_valid_utf8_accepted(void **state)
{
    (void)state;
    expect_json("  return { name = '\\u{674E}\\u{4F1F}' }", NULL, "{\"name\":\"\xe6\x9d\x8e\xe4\xbc\x9f\"}");
}

/* Keys are strings of the result too: one that is not UTF-8 would end up
 * in JSON output. */
static void test_invalid_utf8_key_refused(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return { lines = { { ['caf\\xe9'] = 1 } } }", NULL);
    int rc = r.rc;
    char seen[1200];
    snprintf(seen, sizeof seen, "%s", rc ? r.e.msg : "(accepted)");
    res_free(&r);
    if (rc == 0) print_error("BUG: a key that is not UTF-8 was accepted\n");
    assert_int_equal(rc, ERR_RULE);
    assert_contains(seen, "not valid UTF-8");
}

static void test_bad_key_type_refused(void **state)
{
    (void)state;
    expect_fail("  return { [1.5] = 'x' }", NULL, "output", "table keys must be strings or list positions");
}

static void test_self_nested_table_refused(void **state)
{
    (void)state;
    expect_fail("  local t = {}\n  t.self = t\n  return t", NULL, "output", "nested too deeply");
}

static void test_empty_table_is_empty_list(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return {}", NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.v->kind, JV_ARR);
    assert_int_equal(r.v->u.arr.n, 0);
    assert_string_equal(r.json, "[]");
    res_free(&r);
}

static void test_object_keys_sorted(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return { zeta = 1, alpha = 2, Mid = 3, ab = 4, a = 5 }", NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.v->kind, JV_OBJ);
    assert_int_equal(r.v->u.obj.n, 5);
    assert_int_equal(jv_get(r.v, "Mid")->u.i, 3);
    assert_int_equal(jv_get(r.v, "zeta")->u.i, 1);
    /* byte order: 'M' (0x4D) < 'a' (0x61); "a" < "ab" < "alpha" < "zeta" */
    assert_string_equal(r.json, "{\"Mid\":3,\"a\":5,\"ab\":4,\"alpha\":2,\"zeta\":1}");
    res_free(&r);
}

static void test_nested_keys_sorted(void **state)
{
    (void)state;
    expect_json("  return { lines = { { z = 1, code = 'a', amount = 2 } }, b = { y = 1, x = 2 } }", NULL,
                "{\"b\":{\"x\":2,\"y\":1},\"lines\":[{\"amount\":2,\"code\":\"a\",\"z\":1}]}");
}

static void test_returned_view_is_copied(void **state)
{
    (void)state;
    const char *ctx = "{\"a\":[1,2,{\"b\":\"x\"}],\"n\":null,\"f\":1.5}";
    expect_json("  return ctx", ctx, "{\"a\":[1,2,{\"b\":\"x\"}],\"f\":1.5,\"n\":null}");
}

static void test_view_inside_result_is_copied(void **state)
{
    (void)state;
    expect_json("  return { first = ctx.lines[1], count = #ctx.lines }", "{\"lines\":[{\"amount\":7}]}",
                "{\"count\":1,\"first\":{\"amount\":7}}");
}

/* ------------------------------------------------------------ money */

static void test_money_parse(void **state)
{
    (void)state;
    /* "129" -> 129 * 100; "129.5" -> 12950; "1,290.00" -> 129000;
     * "\xc2\xa5" is the yen sign; "-0.05" -> -5 */
    expect_json("  return { money.parse('129'), money.parse('129.5'), money.parse('1,290.00'),\n"
                "           money.parse('\xc2\xa5" "1,290.00'), money.parse('-0.05') }",
                NULL, "[12900,12950,129000,129000,-5]");
}

static void test_money_parse_three_decimals_refused(void **state)
{
    (void)state;
    expect_fail("  return money.parse('1.234')", NULL, "runtime", "has more than two decimals");
}

static void test_money_format(void **state)
{
    (void)state;
    expect_json("  return { money.format(129000), money.format(-50), money.format(5), money.format(0) }", NULL,
                "[\"1290.00\",\"-0.50\",\"0.05\",\"0.00\"]");
}

static void test_money_format_refuses_float(void **state)
{
    (void)state;
    expect_fail("  return money.format(129.0)", NULL, "runtime", "amount must be an integer count of fen");
}

static void test_money_display(void **state)
{
    (void)state;
    expect_json("  return { money.display(129000), money.display(-50), money.display(123456789) }", NULL,
                "[\"\xc2\xa5" "1,290.00\",\"-\xc2\xa5" "0.50\",\"\xc2\xa5" "1,234,567.89\"]");
}

static void test_money_ratio(void **state)
{
    (void)state;
    /* 12900 * 6 / 106 = 77400 / 106 = 730.19 -> 730
     * 5 * 1 / 2 = 2.5: half_up 3, half_even 2, down 2, up 3
     * -5 / 2 = -2.5: half_up away from zero -3, floor -3, ceiling -2 */
    expect_json("  return { money.ratio(12900, 6, 106), money.ratio(5, 1, 2), money.ratio(5, 1, 2, 'half_even'),\n"
                "    money.ratio(5, 1, 2, 'down'), money.ratio(5, 1, 2, 'up'), money.ratio(-5, 1, 2),\n"
                "    money.ratio(-5, 1, 2, 'floor'), money.ratio(-5, 1, 2, 'ceiling') }",
                NULL, "[730,3,2,2,3,-3,-3,-2]");
}

static void test_money_ratio_zero_denominator(void **state)
{
    (void)state;
    expect_fail("  return money.ratio(100, 1, 0)", NULL, "runtime", "ratio with a zero denominator");
}

static void test_money_ratio_unknown_mode(void **state)
{
    (void)state;
    expect_fail("  return money.ratio(100, 1, 3, 'bankers')", NULL, "runtime", "unknown rounding mode 'bankers'");
}

static void test_money_percent_integer(void **state)
{
    (void)state;
    /* 2525 * 6 / 100 = 151.5 -> 152; 2524 * 6 / 100 = 151.44 -> 151 */
    expect_json("  return { money.percent(2525, 6), money.percent(2524, 6) }", NULL, "[152,151]");
}

static void test_money_percent_string(void **state)
{
    (void)state;
    /* "8.5" = 85/1000: 10000 * 85 / 1000 = 850; 1234 * 85 / 1000 = 104.89 -> 105
     * "0.25" = 25/10000: 999 * 25 / 10000 = 2.4975 -> 2
     * "8.5" rounded down: 1234 -> 104 */
    expect_json("  return { money.percent(10000, '8.5'), money.percent(1234, '8.5'),\n"
                "           money.percent(999, '0.25'), money.percent(1234, '8.5', 'down') }",
                NULL, "[850,105,2,104]");
}

static void test_money_percent_float_refused(void **state)
{
    (void)state;
    expect_fail("  return money.percent(1000, 8.5)", NULL, "runtime", "write fractions as a string");
}

static void test_money_percent_bad_string_refused(void **state)
{
    (void)state;
    expect_fail("  return money.percent(1000, '8,5')", NULL, "runtime", "'8,5' is not a percentage");
}

static void test_money_prorate(void **state)
{
    (void)state;
    /* 12900 * 14 / 30 = 6020; 12900 * 15 / 31 = 6241.94 -> 6242;
     * 12900 * 1 / 29 = 444.83 -> 445; 0 of 30 days -> 0; all 31 -> 12900 */
    expect_json("  return { money.prorate(12900, 14, 30), money.prorate(12900, 15, 31),\n"
                "           money.prorate(12900, 1, 29), money.prorate(12900, 0, 30), money.prorate(12900, 31, 31) }",
                NULL, "[6020,6242,445,0,12900]");
}

static void test_money_prorate_more_days_than_period(void **state)
{
    (void)state;
    expect_fail("  return money.prorate(12900, 31, 30)", NULL, "runtime",
                "days used (31) must be between 0 and the days in the period (30)");
}

static void test_money_allocate_equal_thirds(void **state)
{
    (void)state;
    /* 100 / 3 = 33 rest 1 each; the one fen left goes to the earliest */
    expect_json("  local s = money.allocate(100, {1, 1, 1})\n  return { shares = s, sum = money.sum(s) }", NULL,
                "{\"shares\":[34,33,33],\"sum\":100}");
}

static void test_money_allocate_weighted(void **state)
{
    (void)state;
    /* weights 1:2:3 of 1000 (total 6): 166 r4, 333 r2, 500 r0 = 999;
     * the fen left goes to the largest remainder (the first) -> 167 */
    expect_json("  local s = money.allocate(1000, {1, 2, 3})\n  return { shares = s, sum = money.sum(s) }", NULL,
                "{\"shares\":[167,333,500],\"sum\":1000}");
}

static void test_money_allocate_ties_and_negative(void **state)
{
    (void)state;
    /* 7 over four equal weights: 1 r3 each, 3 fen left -> 2,2,2,1 (sum 7)
     * -100 over thirds mirrors +100: -34,-33,-33 (sum -100) */
    expect_json("  return { money.allocate(7, {1, 1, 1, 1}), money.allocate(-100, {1, 1, 1}) }", NULL,
                "[[2,2,2,1],[-34,-33,-33]]");
}

static void test_money_allocate_zero_weights_refused(void **state)
{
    (void)state;
    expect_fail("  return money.allocate(100, {0, 0})", NULL, "runtime", "weights add up to zero");
}

static void test_money_sum(void **state)
{
    (void)state;
    /* 100 + 250 + 1 = 351; 12900 + 1500 = 14400 */
    expect_json("  return { money.sum({100, 250, 1}), money.sum({{amount = 12900}, {amount = 1500}}, 'amount'),\n"
                "           money.sum({}) }",
                NULL, "[351,14400,0]");
}

static void test_money_sum_refuses_float(void **state)
{
    (void)state;
    expect_fail("  return money.sum({100, 1.5})", NULL, "runtime", "item must be an integer count of fen, got the float");
}

static void test_money_sum_refuses_overflow(void **state)
{
    (void)state;
    expect_fail("  return money.sum({math.maxinteger, 1})", NULL, "runtime", "sum out of range");
}

/* RULES.md: the context "behaves like a read-only table"; summing the
 * lines it carries is the first thing a billing rule does. */
static void test_money_sum_of_context_list(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return money.sum(ctx.lines, 'amount')", "{\"lines\":[{\"amount\":100},{\"amount\":250}]}");
    int rc = r.rc;
    char seen[1200];
    snprintf(seen, sizeof seen, "%s", rc ? r.e.msg : r.json);
    res_free(&r);
    if (rc) print_error("BUG: money.sum over a context list: %s\n", seen);
    assert_int_equal(rc, 0);
    /* 100 + 250 = 350 */
    assert_string_equal(seen, "350");
}

static void test_money_allocate_context_weights(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return money.allocate(100, ctx.weights)", "{\"weights\":[1,1,1]}");
    int rc = r.rc;
    char seen[1200];
    snprintf(seen, sizeof seen, "%s", rc ? r.e.msg : r.json);
    res_free(&r);
    if (rc) print_error("BUG: money.allocate with context weights: %s\n", seen);
    assert_int_equal(rc, 0);
    assert_string_equal(seen, "[34,33,33]");
}

static void test_money_check_integer(void **state)
{
    (void)state;
    expect_json("  return money.check(12900, 'price')", NULL, "12900");
}

static void test_money_check_refuses_float(void **state)
{
    (void)state;
    expect_fail("  return money.check(129.0, 'price')", NULL, "runtime",
                "price must be an integer count of fen, got the float 129.0");
}

static void test_money_check_refuses_string(void **state)
{
    (void)state;
    expect_fail("  return money.check('12900')", NULL, "runtime", "amount must be an integer count of fen, got string");
}

static void test_money_check_float_from_context(void **state)
{
    (void)state;
    /* a JSON 129.0 arrives as a float and is refused the same way */
    expect_fail("  return money.check(ctx.price, 'price')", "{\"price\":129.0}", "runtime",
                "price must be an integer count of fen");
}

/* ------------------------------------------------------------- date */

static void test_date_valid(void **state)
{
    (void)state;
    /* 2026 is not a leap year, 2028 is; month 13 and unpadded digits are not dates */
    expect_json("  return { date.valid('2026-02-28'), date.valid('2026-02-29'), date.valid('2028-02-29'),\n"
                "           date.valid('2026-13-01'), date.valid('2026-1-5'), date.valid(20260101), date.valid(nil) }",
                NULL, "[true,false,true,false,false,false,false]");
}

static void test_date_ymd(void **state)
{
    (void)state;
    expect_json("  return { date.ymd('2026-03-15') }", NULL, "[2026,3,15]");
}

static void test_date_make(void **state)
{
    (void)state;
    expect_json("  return { date.make(2026, 1, 5), date.make(2028, 2, 29) }", NULL, "[\"2026-01-05\",\"2028-02-29\"]");
}

static void test_date_make_invalid(void **state)
{
    (void)state;
    expect_fail("  return date.make(2026, 2, 29)", NULL, "runtime", "2026-2-29 is not a valid date");
}

static void test_date_add_days(void **state)
{
    (void)state;
    expect_json("  return { date.add_days('2026-12-31', 1), date.add_days('2028-02-28', 1),\n"
                "           date.add_days('2026-03-01', -1), date.add_days('2026-01-01', 365) }",
                NULL, "[\"2027-01-01\",\"2028-02-29\",\"2026-02-28\",\"2027-01-01\"]");
}

static void test_date_add_months(void **state)
{
    (void)state;
    /* the day is kept, clamped to the end of the target month */
    expect_json("  return { date.add_months('2026-01-31', 1), date.add_months('2028-01-31', 1),\n"
                "           date.add_months('2026-03-31', -1), date.add_months('2026-11-30', 3),\n"
                "           date.add_months('2026-05-15', 12) }",
                NULL, "[\"2026-02-28\",\"2028-02-29\",\"2026-02-28\",\"2027-02-28\",\"2027-05-15\"]");
}

static void test_date_diff(void **state)
{
    (void)state;
    /* December: 31 - 1 = 30; 2026 has 365 days, 2028 (leap) 366; reversed is negative */
    expect_json("  return { date.diff('2026-12-01', '2026-12-31'), date.diff('2026-01-01', '2027-01-01'),\n"
                "           date.diff('2028-01-01', '2029-01-01'), date.diff('2026-12-31', '2026-12-01') }",
                NULL, "[30,365,366,-30]");
}

static void test_date_bad_string_refused(void **state)
{
    (void)state;
    res r;
    eval_body(&r, "  return date.diff('2026-12-01', '2026/12/31')", NULL);
    assert_int_equal(r.rc, ERR_RULE);
    assert_string_equal(r.last.kind, "runtime");
    assert_int_equal(r.last.line, 4);
    res_free(&r);
}

static void test_date_days_in_month(void **state)
{
    (void)state;
    /* 2100 is not a leap year (divisible by 100, not 400); 2000 is */
    expect_json("  return { date.days_in_month(2026, 2), date.days_in_month(2028, 2), date.days_in_month('2026-04-10'),\n"
                "           date.days_in_month(2100, 2), date.days_in_month(2000, 2), date.days_in_month(2026, 12) }",
                NULL, "[28,29,30,28,29,31]");
}

static void test_date_days_in_month_bad_month(void **state)
{
    (void)state;
    expect_fail("  return date.days_in_month(2026, 13)", NULL, "runtime", "month must be 1 to 12, got 13");
}

static void test_date_is_leap(void **state)
{
    (void)state;
    expect_json("  return { date.is_leap(2028), date.is_leap(2026), date.is_leap(2100), date.is_leap(2000),\n"
                "           date.is_leap('2024-06-01') }",
                NULL, "[true,false,false,true,true]");
}

static void test_date_weekday(void **state)
{
    (void)state;
    /* 2026-01-01 is a Thursday (4); + 59 days (Jan 31 + Feb 28) = 2026-03-01,
     * 59 = 8 weeks + 3 days: Thursday + 3 = Sunday (7); then Monday (1) */
    expect_json("  return { date.weekday('2026-01-01'), date.weekday('2026-03-01'), date.weekday('2026-03-02') }", NULL,
                "[4,7,1]");
}

static void test_date_month_start_end(void **state)
{
    (void)state;
    expect_json("  return { date.month_start('2026-02-14'), date.month_end('2028-02-14'), date.month_end('2026-02-14'),\n"
                "           date.month_end('2026-12-05'), date.month_start('2026-12-31') }",
                NULL, "[\"2026-02-01\",\"2028-02-29\",\"2026-02-28\",\"2026-12-31\",\"2026-12-01\"]");
}

/* ----------------------------------------------------- views, copy */

static void test_copy_of_view_is_mutable(void **state)
{
    (void)state;
    expect_json("  local c = bandbill.copy(ctx)\n"
                "  c.lines[1].amount = 5\n"
                "  c.extra = true\n"
                "  table.insert(c.lines, { amount = 7 })\n"
                "  return c",
                "{\"lines\":[{\"amount\":100}],\"name\":\"x\"}",
                "{\"extra\":true,\"lines\":[{\"amount\":5},{\"amount\":7}],\"name\":\"x\"}");
}

static void test_copy_leaves_view_unchanged(void **state)
{
    (void)state;
    expect_json("  local c = bandbill.copy(ctx.lines)\n  c[1].amount = 5\n  return { ctx.lines[1].amount, c[1].amount }",
                "{\"lines\":[{\"amount\":100}]}", "[100,5]");
}

static void test_copy_of_plain_table_is_deep(void **state)
{
    (void)state;
    expect_json("  local t = { a = { 1, 2 } }\n  local c = bandbill.copy(t)\n  c.a[1] = 9\n  return { t.a[1], c.a[1] }",
                NULL, "[1,9]");
}

static void test_type_of_view_is_table(void **state)
{
    (void)state;
    expect_json("  return { type(ctx), type(ctx.lines), type(ctx.name), type(ctx.lines[1]) }",
                "{\"lines\":[{\"amount\":1}],\"name\":\"x\"}", "[\"table\",\"table\",\"string\",\"table\"]");
}

static void test_pairs_on_object_view(void **state)
{
    (void)state;
    expect_json("  local ks = {}\n"
                "  for k, v in pairs(ctx) do ks[#ks + 1] = k .. '=' .. tostring(v) end\n"
                "  table.sort(ks)\n"
                "  return ks",
                "{\"b\":2,\"a\":1,\"c\":3}", "[\"a=1\",\"b=2\",\"c=3\"]");
}

static void test_ipairs_on_list_view(void **state)
{
    (void)state;
    /* 10 + 20 + 30 = 60; positions 1, 2, 3 */
    expect_json("  local sum, idx = 0, ''\n"
                "  for i, x in ipairs(ctx.xs) do sum = sum + x; idx = idx .. i end\n"
                "  return { sum = sum, idx = idx }",
                "{\"xs\":[10,20,30]}", "{\"idx\":\"123\",\"sum\":60}");
}

static void test_length_of_views(void **state)
{
    (void)state;
    /* a list has its item count; a record, like a Lua table of names, 0 */
    expect_json("  return { #ctx.xs, #ctx, #ctx.empty }", "{\"xs\":[10,20,30],\"empty\":[]}", "[3,0,0]");
}

static void test_next_on_views(void **state)
{
    (void)state;
    expect_json("  local k1, v1 = next(ctx.xs)\n"
                "  local k2, v2 = next(ctx.xs, 2)\n"
                "  local k3 = next(ctx.xs, 3)\n"
                "  local ok, ov = next(ctx.one)\n"
                "  local oe = next(ctx.one, ok)\n"
                "  return { k1, v1, k2, v2, k3 == nil, ok, ov, oe == nil, next(ctx.empty) == nil }",
                "{\"xs\":[10,20,30],\"one\":{\"only\":5},\"empty\":[]}", "[1,10,3,30,true,\"only\",5,true,true]");
}

static void test_view_missing_fields_are_nil(void **state)
{
    (void)state;
    expect_json("  return { ctx.nope == nil, ctx.xs[0] == nil, ctx.xs[4] == nil, ctx.xs.x == nil, ctx.xs[1] }",
                "{\"xs\":[10,20,30]}", "[true,true,true,true,10]");
}

static void test_view_json_kinds(void **state)
{
    (void)state;
    /* JSON integers come in as Lua integers, fractions as floats, null as nil */
    expect_json("  return { math.type(ctx.i), math.type(ctx.f), ctx.n == nil, ctx.b, ctx.s }",
                "{\"i\":12900,\"f\":129.5,\"n\":null,\"b\":true,\"s\":\"x\"}",
                "[\"integer\",\"float\",true,true,\"x\"]");
}

static void test_view_equality_and_tostring(void **state)
{
    (void)state;
    expect_json("  return { ctx.xs == ctx.xs, ctx.xs == ctx.ys, tostring(ctx.xs), tostring(ctx) }",
                "{\"xs\":[1,2],\"ys\":[1,2]}", "[true,false,\"record list (2 items)\",\"record (2 fields)\"]");
}

static void test_several_arguments(void **state)
{
    (void)state;
    static const char src[] = "local M = {}\nfunction M.add(a, b, c) return a.n + b + (c or 0) end\nreturn M\n";
    rule_file f = RF("t.lua", src);
    lhost *h;
    err e;
    assert_int_equal(lhost_open(&f, 1, NULL, &h, NULL, &e), 0);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    const jv *args[] = {parse(&a, "{\"n\":40}"), parse(&a, "2")};
    jv *out;
    assert_int_equal(lhost_call(h, "t", "add", args, 2, &a, &out, &e), 0);
    /* 40 + 2 + 0 = 42 */
    assert_int_equal(out->u.i, 42);
    assert_int_equal(lhost_calls(h), 1);
    assert_true(lhost_has(h, "t", "add"));
    assert_false(lhost_has(h, "t", "sub"));
    assert_false(lhost_has(h, "nomodule", "add"));
    jv_arena_free(&a);
    lhost_close(h);
}

static void test_get_field_and_functions(void **state)
{
    (void)state;
    static const char src[] = "local M = { schema = { price = 'integer', days = 30 } }\n"
                              "function M.b() end\nfunction M.a() end\nreturn M\n";
    rule_file f = RF("t.lua", src);
    lhost *h;
    err e;
    assert_int_equal(lhost_open(&f, 1, NULL, &h, NULL, &e), 0);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    assert_int_equal(lhost_get_field(h, "t", "schema", &a, &out, &e), 0);
    char js[256];
    to_json(out, js, sizeof js);
    assert_string_equal(js, "{\"days\":30,\"price\":\"integer\"}");
    assert_int_equal(lhost_get_field(h, "t", "nothing", &a, &out, &e), ERR_NOTFOUND);
    buf names = {0};
    assert_int_equal(lhost_module_functions(h, "t", &names), 0);
    assert_string_equal(buf_cstr(&names), "a\nb\n");
    buf_free(&names);
    jv_arena_free(&a);
    lhost_close(h);
}

/* ---------------------------------------------------------- examples */

typedef struct ex_log {
    int n;
    example_result r[8];
} ex_log;

static void collect(void *ud, const example_result *r)
{
    ex_log *l = ud;
    if (l->n < 8) l->r[l->n] = *r;
    l->n++;
}

static const char EX_SRC[] = "local M = {}\n"
                             "function M.bill(ctx) return { lines = { { amount = ctx.price - 100 } } } end\n"
                             "function M.add(a, b) return a + b end\n"
                             "function M.fail(x) error('no such plan ' .. x.plan) end\n"
                             "M.examples = {\n"
                             "  { fn = 'add', name = 'two args', args = { 2, 3 }, expect = 5 },\n"
                             "  { fn = 'bill', name = 'off by 100', input = { price = 12900 },\n"
                             "    expect = { lines = { { amount = 12900 } } } },\n"
                             "  { fn = 'fail', name = 'refused', input = { plan = 'x' }, expect_error = 'no such plan x' },\n"
                             "}\n"
                             "return M\n";

static void test_examples_report_pass_and_first_difference(void **state)
{
    (void)state;
    rule_file f = RF("ex.lua", EX_SRC);
    lhost *h;
    err e;
    assert_int_equal(lhost_open(&f, 1, NULL, &h, NULL, &e), 0);
    ex_log l = {0};
    int total = -1, failed = -1;
    assert_int_equal(lhost_run_examples(h, NULL, collect, &l, &total, &failed, &e), 0);
    assert_int_equal(total, 3);
    assert_int_equal(failed, 1);
    assert_int_equal(l.n, 3);
    /* 2 + 3 = 5 */
    assert_string_equal(l.r[0].module, "ex");
    assert_int_equal(l.r[0].index, 1);
    assert_string_equal(l.r[0].fn, "add");
    assert_true(l.r[0].passed);
    /* 12900 - 100 = 12800 */
    assert_false(l.r[1].passed);
    assert_int_equal(l.r[1].index, 2);
    assert_string_equal(l.r[1].name, "off by 100");
    assert_string_equal(l.r[1].detail, "lines[1].amount: expected 12900, got 12800");
    assert_true(l.r[2].passed);
    assert_string_equal(l.r[2].name, "refused");
    lhost_close(h);
}

static const char EX_BAD_SRC[] = "local M = {}\n"
                                 "function M.one() return 1 end\n"
                                 "M.examples = {\n"
                                 "  { fn = 'one', expect_error = 'boom' },\n"
                                 "  { fn = 'one', expect = 1.0 },\n"
                                 "  'not a table',\n"
                                 "  { name = 'no fn', expect = 1 },\n"
                                 "  { fn = 'nope', expect = 1 },\n"
                                 "  { fn = 'one', args = { a = 1 }, expect = 1 },\n"
                                 "}\n"
                                 "return M\n";

static void test_examples_malformed_reported(void **state)
{
    (void)state;
    rule_file f = RF("bad.lua", EX_BAD_SRC);
    lhost *h;
    err e;
    assert_int_equal(lhost_open(&f, 1, NULL, &h, NULL, &e), 0);
    ex_log l = {0};
    int total, failed;
    assert_int_equal(lhost_run_examples(h, NULL, collect, &l, &total, &failed, &e), 0);
    assert_int_equal(total, 6);
    assert_int_equal(failed, 6);
    assert_string_equal(l.r[0].detail, "expected an error containing \"boom\", the call succeeded");
    assert_string_equal(l.r[1].detail, "(result): expected 1 (a float), got 1");
    assert_string_equal(l.r[2].detail, "example 3 is not a table");
    assert_string_equal(l.r[3].detail, "example has no 'fn' (the function it calls)");
    assert_string_equal(l.r[4].detail, "example calls bad.nope, which does not exist");
    assert_contains(l.r[5].detail, "example 'args' must be a list of at most 8 values");
    lhost_close(h);
}

static void test_examples_wrong_error_text(void **state)
{
    (void)state;
    static const char src[] = "local M = {}\nfunction M.f() error('plain failure') end\n"
                              "M.examples = { { fn = 'f', expect_error = 'other text' } }\nreturn M\n";
    rule_file f = RF("w.lua", src);
    lhost *h;
    err e;
    assert_int_equal(lhost_open(&f, 1, NULL, &h, NULL, &e), 0);
    ex_log l = {0};
    int total, failed;
    assert_int_equal(lhost_run_examples(h, NULL, collect, &l, &total, &failed, &e), 0);
    assert_int_equal(failed, 1);
    assert_contains(l.r[0].detail, "expected an error containing \"other text\", got: ");
    assert_contains(l.r[0].detail, "plain failure");
    lhost_close(h);
}

static void test_examples_not_a_list(void **state)
{
    (void)state;
    static const char src[] = "return { examples = 'none' }\n";
    rule_file f = RF("nl.lua", src);
    lhost *h;
    err e;
    assert_int_equal(lhost_open(&f, 1, NULL, &h, NULL, &e), 0);
    int total, failed;
    err_clear(&e);
    assert_int_equal(lhost_run_examples(h, NULL, NULL, NULL, &total, &failed, &e), ERR_RULE);
    assert_string_equal(e.msg, "nl: 'examples' must be a list of examples");
    lhost_close(h);
}

static void test_examples_of_one_module(void **state)
{
    (void)state;
    rule_file files[] = {
        RF("a.lua", "return { one = function() return 1 end, examples = { { fn = 'one', expect = 2 } } }\n"),
        RF("b.lua", "return { two = function() return 2 end,\n"
                    "  examples = { { fn = 'two', expect = 2 }, { fn = 'two', expect = 2 } } }\n"),
    };
    lhost *h;
    err e;
    assert_int_equal(lhost_open(files, 2, NULL, &h, NULL, &e), 0);
    ex_log l = {0};
    int total, failed;
    assert_int_equal(lhost_run_examples(h, "b", collect, &l, &total, &failed, &e), 0);
    assert_int_equal(total, 2);
    assert_int_equal(failed, 0);
    assert_string_equal(l.r[0].module, "b");
    assert_int_equal(lhost_run_examples(h, NULL, NULL, NULL, &total, &failed, &e), 0);
    assert_int_equal(total, 3);
    assert_int_equal(failed, 1);
    lhost_close(h);
}

static void test_ruleset_load_check_fails_on_example(void **state)
{
    (void)state;
    rule_file files[] = {RF("ex.lua", EX_SRC)};
    rules_snapshot *s;
    err e;
    assert_int_equal(rules_snapshot_from("mem", files, 1, &s, &e), 0);
    ruleset *rs = NULL;
    rule_error d;
    err_clear(&e);
    int rc = ruleset_load(s, NULL, 1, &rs, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_null(rs);
    assert_string_equal(e.tag, "rule_example_failed");
    assert_contains(e.msg, "1 of 3 examples failed");
    assert_contains(e.msg, "ex example 2 (off by 100): lines[1].amount: expected 12900, got 12800");
    assert_string_equal(d.kind, "example");
    assert_string_equal(d.rule, "ex.bill");
    assert_string_equal(d.file, "ex.lua");
    assert_string_equal(d.message, "lines[1].amount: expected 12900, got 12800");
    /* without the check the same set loads */
    assert_int_equal(ruleset_load(s, NULL, 0, &rs, &d, &e), 0);
    assert_non_null(rs);
    assert_int_equal(rs->examples, 0);
    assert_ptr_equal(rs->snap, s);
    ruleset_unref(rs);
    rules_snapshot_unref(s);
}

static void test_ruleset_load_check_passes(void **state)
{
    (void)state;
    rule_file files[] = {RF("ok.lua", "return { f = function(x) return x.n * 2 end,\n"
                                      "  examples = { { fn = 'f', input = { n = 21 }, expect = 42 } } }\n")};
    rules_snapshot *s;
    err e;
    assert_int_equal(rules_snapshot_from("mem", files, 1, &s, &e), 0);
    ruleset *rs;
    assert_int_equal(ruleset_load(s, NULL, 1, &rs, NULL, &e), 0);
    assert_int_equal(rs->examples, 1);
    assert_int_equal(rs->examples_failed, 0);
    assert_int_equal(rs->refs, 1);
    assert_true(rs->loaded_ms > 0);
    ruleset_unref(rs);
    rules_snapshot_unref(s);
}

/* ------------------------------------------------- temp rule folders */

static void mkdirs_for(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) && errno != EEXIST) fail_msg("mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
}

static void write_file(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    mkdirs_for(path);
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st)) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
                char child[1024];
                snprintf(child, sizeof child, "%s/%s", path, de->d_name);
                rm_rf(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void make_tmpdir(char *out, size_t n)
{
    snprintf(out, n, "/tmp/bb_test_rules.XXXXXX");
    if (!mkdtemp(out)) fail_msg("mkdtemp: %s", strerror(errno));
}

static void test_snapshot_read_folder(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    write_file(dir, "main.lua", "local cal = require('lib.calendar')\n"
                                "return { f = function() return cal.days * 2 end }\n");
    write_file(dir, "lib/calendar.lua", "return { days = 21 }\n");
    write_file(dir, ".hidden.lua", "error('hidden files are not rules')\n");
    write_file(dir, "main.lua~", "error('editor backups are not rules')\n");
    write_file(dir, ".git/config.lua", "error('hidden folders are not rules')\n");
    write_file(dir, "README.md", "notes\n");

    rules_snapshot *s;
    err e;
    int rc = rules_snapshot_read(dir, &s, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(s->nfiles, 3);
    /* sorted by path */
    assert_string_equal(s->files[0].path, "README.md");
    assert_string_equal(s->files[1].path, "lib/calendar.lua");
    assert_string_equal(s->files[2].path, "main.lua");
    assert_int_equal(s->files[1].len, strlen("return { days = 21 }\n"));
    assert_string_equal(s->dir, dir);
    assert_int_equal(s->refs, 1);
    char v[RULES_VERSION_LEN];
    rules_version_of(s->files, s->nfiles, v);
    assert_string_equal(s->version, v);
    assert_int_equal(strlen(s->version), 64);

    ruleset *rs;
    rc = ruleset_load(s, NULL, 1, &rs, NULL, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(lhost_module_count(rs->host), 2);
    assert_string_equal(lhost_module_name(rs->host, 0), "lib.calendar");
    assert_string_equal(lhost_module_name(rs->host, 1), "main");
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    assert_int_equal(rules_call(rs, "main.f", NULL, 0, &a, &out, &e), 0);
    /* 21 * 2 = 42 */
    assert_int_equal(out->u.i, 42);
    jv_arena_free(&a);
    ruleset_unref(rs);
    rules_snapshot_unref(s);
    rm_rf(dir);
}

static void test_snapshot_read_missing_folder(void **state)
{
    (void)state;
    static char sentinel;
    rules_snapshot *s = (rules_snapshot *)&sentinel; /* must be reset to NULL */
    err e;
    assert_int_equal(rules_snapshot_read("/nonexistent/bb/rules", &s, &e), ERR_NOTFOUND);
    assert_null(s);
    assert_contains(e.msg, "rules folder /nonexistent/bb/rules does not exist");
}

/* --------------------------------------------------------- versions */

static void test_version_known_value(void **state)
{
    (void)state;
    rule_file files[] = {RF("a.lua", "hello")};
    char v[RULES_VERSION_LEN];
    rules_version_of(files, 1, v);
    /* printf 'a.lua\0005\000hello' | sha256sum  (path NUL length NUL content) */
    assert_string_equal(v, "e86bdd425d30d842c808bbbcc97f99da7dbe4a572e64affa6e4f79c6bfc5cdf7");
}

static void test_version_two_files_known_value(void **state)
{
    (void)state;
    rule_file files[] = {RF("a.lua", "hello"), RF("b.lua", "bye")};
    char v[RULES_VERSION_LEN];
    rules_version_of(files, 2, v);
    /* printf 'a.lua\0005\000hellob.lua\0003\000bye' | sha256sum */
    assert_string_equal(v, "46c42b3b750f8e7a8a25b9bfaadff2ee9e5c887d7fc865d293c2214811f5fb1a");
}

static void test_version_stable(void **state)
{
    (void)state;
    rule_file files[] = {RF("a.lua", "return {}\n"), RF("lib/b.lua", "return { x = 1 }\n")};
    char v1[RULES_VERSION_LEN], v2[RULES_VERSION_LEN];
    rules_version_of(files, 2, v1);
    rules_version_of(files, 2, v2);
    assert_string_equal(v1, v2);
    assert_int_equal(strlen(v1), 64);
    assert_int_equal(strspn(v1, "0123456789abcdef"), 64);
}

static void test_version_changes_with_one_byte(void **state)
{
    (void)state;
    char t1[] = "return { x = 1 }\n", t2[] = "return { x = 2 }\n";
    rule_file a[] = {RF("a.lua", "return {}\n"), {(char *)"b.lua", t1, sizeof t1 - 1}};
    rule_file b[] = {RF("a.lua", "return {}\n"), {(char *)"b.lua", t2, sizeof t2 - 1}};
    char va[RULES_VERSION_LEN], vb[RULES_VERSION_LEN];
    rules_version_of(a, 2, va);
    rules_version_of(b, 2, vb);
    assert_string_not_equal(va, vb);
}

static void test_version_depends_on_path(void **state)
{
    (void)state;
    rule_file a[] = {RF("a.lua", "return {}\n")};
    rule_file b[] = {RF("b.lua", "return {}\n")};
    char va[RULES_VERSION_LEN], vb[RULES_VERSION_LEN];
    rules_version_of(a, 1, va);
    rules_version_of(b, 1, vb);
    assert_string_not_equal(va, vb);
}

static void test_version_snapshot_independent_of_order(void **state)
{
    (void)state;
    rule_file fwd[] = {RF("a.lua", "hello"), RF("b.lua", "bye")};
    rule_file rev[] = {RF("b.lua", "bye"), RF("a.lua", "hello")};
    rules_snapshot *s1, *s2;
    err e;
    assert_int_equal(rules_snapshot_from("x", fwd, 2, &s1, &e), 0);
    assert_int_equal(rules_snapshot_from("y", rev, 2, &s2, &e), 0);
    assert_string_equal(s1->version, s2->version);
    /* the same value as the hand-computed hash of the sorted files */
    assert_string_equal(s2->version, "46c42b3b750f8e7a8a25b9bfaadff2ee9e5c887d7fc865d293c2214811f5fb1a");
    assert_string_equal(s2->files[0].path, "a.lua");
    rules_snapshot_unref(s1);
    rules_snapshot_unref(s2);
}

/* rules.h: "The version of a set of files: SHA-256 over, for each file in
 * path order, ..." - a set, in path order, whatever order it was given in. */
static void test_version_of_independent_of_order(void **state)
{
    (void)state;
    rule_file fwd[] = {RF("a.lua", "hello"), RF("b.lua", "bye")};
    rule_file rev[] = {RF("b.lua", "bye"), RF("a.lua", "hello")};
    char v1[RULES_VERSION_LEN], v2[RULES_VERSION_LEN];
    rules_version_of(fwd, 2, v1);
    rules_version_of(rev, 2, v2);
    /* printf 'b.lua\0003\000byea.lua\0005\000hello' | sha256sum gives
     * d6ccaaba..., which is what an order-dependent version would be */
    if (strcmp(v1, v2) != 0) print_error("BUG: rules_version_of depends on the order: %s vs %s\n", v1, v2);
    assert_string_equal(v1, v2);
}

/* -------------------------------------------------------- rules_call */

typedef struct loaded {
    rules_snapshot *s;
    ruleset *rs;
} loaded;

static void load_mem(loaded *l, const rule_file *files, size_t n)
{
    err e;
    assert_int_equal(rules_snapshot_from("mem", files, n, &l->s, &e), 0);
    int rc = ruleset_load(l->s, NULL, 1, &l->rs, NULL, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
}

static void unload(loaded *l)
{
    ruleset_unref(l->rs);
    rules_snapshot_unref(l->s);
}

static const char CALLS_SRC[] = "local M = {}\nfunction M.one() return 1 end\nfunction M.two() return 2 end\nreturn M\n";

static void test_rules_call_bad_name(void **state)
{
    (void)state;
    rule_file files[] = {RF("calls.lua", CALLS_SRC)};
    loaded l;
    load_mem(&l, files, 1);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    err e;
    assert_int_equal(rules_call(l.rs, "nodot", NULL, 0, &a, &out, &e), ERR_INVALID);
    assert_string_equal(e.tag, "invalid_rule_name");
    assert_string_equal(e.msg, "'nodot' is not a rule name (expected module.function)");
    assert_int_equal(rules_call(l.rs, ".one", NULL, 0, &a, &out, &e), ERR_INVALID);
    assert_int_equal(rules_call(l.rs, "calls.", NULL, 0, &a, &out, &e), ERR_INVALID);
    jv_arena_free(&a);
    unload(&l);
}

static void test_rules_call_missing_function(void **state)
{
    (void)state;
    rule_file files[] = {RF("calls.lua", CALLS_SRC)};
    loaded l;
    load_mem(&l, files, 1);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    err e;
    assert_int_equal(rules_call(l.rs, "calls.three", NULL, 0, &a, &out, &e), ERR_NOTFOUND);
    assert_string_equal(e.tag, "rule_not_found");
    assert_string_equal(e.msg, "rule calls.three not found: the module has no such function");
    assert_string_equal(lhost_last_error(l.rs->host)->kind, "not_found");
    assert_string_equal(lhost_last_error(l.rs->host)->rule, "calls.three");
    assert_int_equal(rules_call(l.rs, "nomod.one", NULL, 0, &a, &out, &e), ERR_NOTFOUND);
    assert_string_equal(e.msg, "rule nomod.one not found: no such module in the rules folder");
    jv_arena_free(&a);
    unload(&l);
}

static uint64_t calls_of(const char *rule)
{
    char label[128];
    snprintf(label, sizeof label, "rule=\"%s\"", rule);
    return metric_value(metrics_counter("bandbill_rule_calls_total", "Rule calls by rule", label));
}

static void test_rules_call_counts_by_name(void **state)
{
    (void)state;
    rule_file files[] = {RF("calls.lua", CALLS_SRC)};
    loaded l;
    load_mem(&l, files, 1);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    err e;
    uint64_t one0 = calls_of("calls.one"), two0 = calls_of("calls.two");
    /* the same buffer holds two different names, as a request handler's would */
    char name[32];
    snprintf(name, sizeof name, "calls.one");
    assert_int_equal(rules_call(l.rs, name, NULL, 0, &a, &out, &e), 0);
    assert_int_equal(out->u.i, 1);
    snprintf(name, sizeof name, "calls.two");
    assert_int_equal(rules_call(l.rs, name, NULL, 0, &a, &out, &e), 0);
    assert_int_equal(out->u.i, 2);
    assert_int_equal(rules_call(l.rs, name, NULL, 0, &a, &out, &e), 0);
    assert_int_equal(calls_of("calls.one") - one0, 1);
    assert_int_equal(calls_of("calls.two") - two0, 2);
    jv_arena_free(&a);
    unload(&l);
}

/* ------------------------------------------------------- hot reload */

#define V_SRC(answer, expect)                                                                                  \
    "local M = {}\n"                                                                                           \
    "function M.answer() return " answer " end\n"                                                              \
    "M.examples = { { fn = 'answer', name = 'the answer', expect = " expect " } }\n"                           \
    "return M\n"

static int64_t live_answer(void)
{
    ruleset *rs = rules_live();
    assert_non_null(rs);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    err e;
    int rc = rules_call(rs, "v.answer", NULL, 0, &a, &out, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    int64_t v = out->u.i;
    jv_arena_free(&a);
    ruleset_unref(rs);
    return v;
}

static void live_version(char out[RULES_VERSION_LEN])
{
    ruleset *rs = rules_live();
    assert_non_null(rs);
    snprintf(out, RULES_VERSION_LEN, "%s", rs->snap->version);
    ruleset_unref(rs);
}

static void reload_ok(const char *dir)
{
    rule_error d;
    err e;
    int rc = rules_reload(dir, &d, &e);
    if (rc) print_error("reload of %s failed: %s\n", dir, e.msg);
    assert_int_equal(rc, 0);
}

static void test_live_set_and_get(void **state)
{
    (void)state;
    rules_live_clear();
    assert_null(rules_live());
    rule_file files[] = {RF("v.lua", V_SRC("7", "7"))};
    loaded l;
    load_mem(&l, files, 1);
    rules_live_set(ruleset_ref(l.rs));
    assert_int_equal(l.rs->refs, 2);
    ruleset *got = rules_live();
    assert_ptr_equal(got, l.rs);
    assert_int_equal(l.rs->refs, 3);
    ruleset_unref(got);
    assert_int_equal(live_answer(), 7);
    rules_live_clear();
    assert_null(rules_live());
    assert_int_equal(l.rs->refs, 1);
    unload(&l);
}

static void test_reload_changes_live_version(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    write_file(dir, "v.lua", V_SRC("1", "1"));
    reload_ok(dir);
    char v1[RULES_VERSION_LEN], v2[RULES_VERSION_LEN];
    live_version(v1);
    assert_int_equal(live_answer(), 1);
    /* the live version is the folder's */
    rule_file f1[] = {RF("v.lua", V_SRC("1", "1"))};
    char want[RULES_VERSION_LEN];
    rules_version_of(f1, 1, want);
    assert_string_equal(v1, want);

    write_file(dir, "v.lua", V_SRC("2", "2"));
    reload_ok(dir);
    live_version(v2);
    assert_string_not_equal(v1, v2);
    assert_int_equal(live_answer(), 2);
    rules_live_clear();
    rm_rf(dir);
}

static void test_reload_syntax_error_keeps_previous(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    write_file(dir, "v.lua", V_SRC("1", "1"));
    reload_ok(dir);
    char before[RULES_VERSION_LEN], after[RULES_VERSION_LEN];
    live_version(before);
    assert_int_equal(live_answer(), 1);

    write_file(dir, "v.lua", "local M = {}\nfunction M.answer()\n  return = 3\nend\nreturn M\n");
    rule_error d;
    err e;
    int rc = rules_reload(dir, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_contains(e.msg, "v.lua:3");
    assert_string_equal(d.kind, "syntax");
    assert_string_equal(d.file, "v.lua");
    assert_int_equal(d.line, 3);
    /* the previous set is still live and answers as before */
    live_version(after);
    assert_string_equal(before, after);
    assert_int_equal(live_answer(), 1);
    rules_live_clear();
    rm_rf(dir);
}

static void test_reload_failing_example_keeps_previous(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    write_file(dir, "v.lua", V_SRC("1", "1"));
    reload_ok(dir);
    char before[RULES_VERSION_LEN], after[RULES_VERSION_LEN];
    live_version(before);

    write_file(dir, "v.lua", V_SRC("3", "4"));
    rule_error d;
    err e;
    int rc = rules_reload(dir, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(e.tag, "rule_example_failed");
    assert_contains(e.msg, "v example 1 (the answer): (result): expected 4, got 3");
    assert_string_equal(d.kind, "example");
    assert_string_equal(d.file, "v.lua");
    /* the example sits on line 3 of v.lua */
    assert_contains(e.msg, "v.lua:3");
    live_version(after);
    assert_string_equal(before, after);
    assert_int_equal(live_answer(), 1);
    rules_live_clear();
    rm_rf(dir);
}

static void test_reload_missing_folder_keeps_previous(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    write_file(dir, "v.lua", V_SRC("5", "5"));
    reload_ok(dir);
    err e;
    assert_int_equal(rules_reload("/nonexistent/bb/rules", NULL, &e), ERR_NOTFOUND);
    assert_int_equal(live_answer(), 5);
    rules_live_clear();
    rm_rf(dir);
}

static void test_reference_survives_reload(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    write_file(dir, "v.lua", V_SRC("1", "1"));
    reload_ok(dir);
    ruleset *old = rules_live();
    assert_non_null(old);
    char old_version[RULES_VERSION_LEN];
    snprintf(old_version, sizeof old_version, "%s", old->snap->version);

    write_file(dir, "v.lua", V_SRC("2", "2"));
    reload_ok(dir);
    /* the live set answers anew, the reference taken before the swap answers as before */
    assert_int_equal(live_answer(), 2);
    assert_int_equal(old->refs, 1);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    err e;
    assert_int_equal(rules_call(old, "v.answer", NULL, 0, &a, &out, &e), 0);
    assert_int_equal(out->u.i, 1);
    assert_string_equal(old->snap->version, old_version);
    jv_arena_free(&a);

    /* releasing the last reference frees the old host: its memory leaves
     * the process total */
    size_t all_before = lhost_memory_all();
    size_t old_mem = lhost_memory(old->host);
    assert_true(old_mem > 0);
    ruleset_unref(old);
    size_t all_after = lhost_memory_all();
    assert_int_equal(all_before - all_after, old_mem);
    rules_live_clear();
    rm_rf(dir);
}

static void test_reloads_do_not_grow_memory(void **state)
{
    (void)state;
    rules_live_clear();
    size_t base = lhost_memory_all(); /* hosts other tests may hold: none */
    char a[64], b[64];
    make_tmpdir(a, sizeof a);
    make_tmpdir(b, sizeof b);
    /* two folders of the same shape that differ in one answer */
    write_file(a, "v.lua", V_SRC("1", "1"));
    write_file(a, "lib/util.lua", "return { twice = function(x) return 2 * x end }\n");
    write_file(b, "v.lua", V_SRC("2", "2"));
    write_file(b, "lib/util.lua", "return { twice = function(x) return 2 * x end }\n");

    metric *reloads = metrics_counter("bandbill_rules_reloads_total", "Successful rule reloads", "");
    uint64_t reloads0 = metric_value(reloads);
    reload_ok(a);
    size_t first = lhost_memory_all();
    ruleset *rs = rules_live();
    /* only the live set is held: the total is its host's memory */
    assert_int_equal(first - base, lhost_memory(rs->host));
    ruleset_unref(rs);

    /* 1,000 more reloads alternating b, a, ...; the last one is a again */
    for (int i = 0; i < 1000; i++) {
        err e;
        int rc = rules_reload(i % 2 == 0 ? b : a, NULL, &e);
        if (rc) fail_msg("reload %d failed: %s", i, e.msg);
    }
    size_t last = lhost_memory_all();
    assert_int_equal(live_answer(), 1);
    /* 1 + 1,000 reloads went through */
    assert_int_equal(metric_value(reloads) - reloads0, 1001);
    print_message("lhost_memory_all: %zu after the first reload, %zu after 1,000 more\n", first, last);
    long diff = (long)last - (long)first;
    if (diff < -8192 || diff > 8192)
        print_error("memory after the first reload %zu, after 1,000 more %zu (%+ld)\n", first, last, diff);
    assert_true(diff >= -8192 && diff <= 8192);
    rules_live_clear();
    assert_int_equal(lhost_memory_all(), base);
    rm_rf(a);
    rm_rf(b);
}

/* ----------------------------------------------------- starter rules */

static void test_starter_rules_load_and_examples_pass(void **state)
{
    (void)state;
    rules_snapshot *s;
    err e;
    int rc = rules_snapshot_read(BB_SOURCE_DIR "/rules", &s, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_true(s->nfiles >= 2);
    ruleset *rs;
    rule_error d;
    rc = ruleset_load(s, NULL, 1, &rs, &d, &e);
    if (rc) print_error("starter rules: %s\n", e.msg);
    assert_int_equal(rc, 0);
    /* tariffs.lua carries 6 examples and tax.lua 7 */
    assert_true(rs->examples >= 13);
    assert_int_equal(rs->examples_failed, 0);
    assert_true(lhost_has(rs->host, "tariffs", "flat"));
    assert_true(lhost_has(rs->host, "tax", "split"));
    ruleset_unref(rs);
    rules_snapshot_unref(s);
}

static void test_starter_tariff_flat_call(void **state)
{
    (void)state;
    rules_snapshot *s;
    err e;
    assert_int_equal(rules_snapshot_read(BB_SOURCE_DIR "/rules", &s, &e), 0);
    ruleset *rs;
    assert_int_equal(ruleset_load(s, NULL, 0, &rs, NULL, &e), 0);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    const jv *args[] = {parse(&a, "{\"price\":12900,\"period\":{\"from\":\"2026-12-01\",\"to\":\"2026-12-31\"},"
                                  "\"active\":{\"from\":\"2026-12-17\",\"to\":\"2026-12-31\"}}")};
    jv *out;
    int rc = rules_call(rs, "tariffs.flat", args, 1, &a, &out, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    char js[256];
    to_json(out, js, sizeof js);
    /* 17..31 December is 15 of 31 days: 12900 * 15 / 31 = 6241.94 -> 6242 */
    assert_string_equal(js, "{\"amount\":6242,\"days_in_period\":31,\"days_used\":15}");
    jv_arena_free(&a);
    ruleset_unref(rs);
    rules_snapshot_unref(s);
}

/* ---------------------------------------------------------- logging */

typedef struct log_seen {
    int n;
    char level[16], where[64], msg[128];
} log_seen;

static void on_log(void *ud, const char *level, const char *where, const char *msg)
{
    log_seen *l = ud;
    l->n++;
    snprintf(l->level, sizeof l->level, "%s", level);
    snprintf(l->where, sizeof l->where, "%s", where);
    snprintf(l->msg, sizeof l->msg, "%s", msg);
}

/* Runs t.f with a logger attached and returns what it received. */
static void log_run(const char *body, log_seen *l, int *rc)
{
    char src[1024];
    snprintf(src, sizeof src, "local M = {}\nfunction M.f()\n%s\n  return 1\nend\nreturn M\n", body);
    rule_file f = {(char *)"lg.lua", src, strlen(src)};
    lhost *h;
    err e;
    assert_int_equal(lhost_open(&f, 1, NULL, &h, NULL, &e), 0);
    memset(l, 0, sizeof *l);
    lhost_set_logger(h, on_log, l);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    *rc = lhost_call(h, "lg", "f", NULL, 0, &a, &out, &e);
    jv_arena_free(&a);
    lhost_close(h);
}

static void test_log_reaches_logger(void **state)
{
    (void)state;
    log_seen l;
    int rc;
    log_run("  bandbill.warn('low balance', 42)", &l, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.level, "warn");
    assert_string_equal(l.where, "lg.lua:3");
    /* the arguments joined by spaces, nothing else */
    if (strcmp(l.msg, "low balance 42") != 0) print_error("BUG: bandbill.warn logged \"%s\"\n", l.msg);
    assert_string_equal(l.msg, "low balance 42");
}

static void test_log_info_level(void **state)
{
    (void)state;
    log_seen l;
    int rc;
    log_run("  bandbill.log('started')", &l, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.level, "info");
    assert_string_equal(l.where, "lg.lua:3");
    if (strcmp(l.msg, "started") != 0) print_error("BUG: bandbill.log logged \"%s\"\n", l.msg);
    assert_string_equal(l.msg, "started");
}

static void test_print_reaches_logger(void **state)
{
    (void)state;
    log_seen l;
    int rc;
    log_run("  print('total', 27392)", &l, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.level, "info");
    assert_string_equal(l.where, "lg.lua:3");
    /* print joins with tabs, like Lua's own */
    if (strcmp(l.msg, "total\t27392") != 0) print_error("BUG: print logged \"%s\"\n", l.msg);
    assert_string_equal(l.msg, "total\t27392");
}

static int group_teardown(void **state)
{
    (void)state;
    rules_live_clear();
    metrics_reset();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_ten_field_context_three_lines),
        cmocka_unit_test(test_integer_result_is_jv_int),
        cmocka_unit_test(test_float_result_is_jv_num),
        cmocka_unit_test(test_division_result_stays_float),
        cmocka_unit_test(test_nil_result_is_null),
        cmocka_unit_test(test_nan_refused_with_path),
        cmocka_unit_test(test_nan_refused_names_rule_and_place),
        cmocka_unit_test(test_math_huge_refused),
        cmocka_unit_test(test_minus_huge_refused_top_level_list),
        cmocka_unit_test(test_function_refused),
        cmocka_unit_test(test_mixed_table_refused),
        cmocka_unit_test(test_list_hole_refused),
        cmocka_unit_test(test_list_hole_in_constructor_refused),
        cmocka_unit_test(test_invalid_utf8_refused),
        cmocka_unit_test(test_overlong_utf8_refused),
        cmocka_unit_test(test_valid_utf8_accepted),
        cmocka_unit_test(test_invalid_utf8_key_refused),
        cmocka_unit_test(test_bad_key_type_refused),
        cmocka_unit_test(test_self_nested_table_refused),
        cmocka_unit_test(test_empty_table_is_empty_list),
        cmocka_unit_test(test_object_keys_sorted),
        cmocka_unit_test(test_nested_keys_sorted),
        cmocka_unit_test(test_returned_view_is_copied),
        cmocka_unit_test(test_view_inside_result_is_copied),
        cmocka_unit_test(test_money_parse),
        cmocka_unit_test(test_money_parse_three_decimals_refused),
        cmocka_unit_test(test_money_format),
        cmocka_unit_test(test_money_format_refuses_float),
        cmocka_unit_test(test_money_display),
        cmocka_unit_test(test_money_ratio),
        cmocka_unit_test(test_money_ratio_zero_denominator),
        cmocka_unit_test(test_money_ratio_unknown_mode),
        cmocka_unit_test(test_money_percent_integer),
        cmocka_unit_test(test_money_percent_string),
        cmocka_unit_test(test_money_percent_float_refused),
        cmocka_unit_test(test_money_percent_bad_string_refused),
        cmocka_unit_test(test_money_prorate),
        cmocka_unit_test(test_money_prorate_more_days_than_period),
        cmocka_unit_test(test_money_allocate_equal_thirds),
        cmocka_unit_test(test_money_allocate_weighted),
        cmocka_unit_test(test_money_allocate_ties_and_negative),
        cmocka_unit_test(test_money_allocate_zero_weights_refused),
        cmocka_unit_test(test_money_sum),
        cmocka_unit_test(test_money_sum_refuses_float),
        cmocka_unit_test(test_money_sum_refuses_overflow),
        cmocka_unit_test(test_money_sum_of_context_list),
        cmocka_unit_test(test_money_allocate_context_weights),
        cmocka_unit_test(test_money_check_integer),
        cmocka_unit_test(test_money_check_refuses_float),
        cmocka_unit_test(test_money_check_refuses_string),
        cmocka_unit_test(test_money_check_float_from_context),
        cmocka_unit_test(test_date_valid),
        cmocka_unit_test(test_date_ymd),
        cmocka_unit_test(test_date_make),
        cmocka_unit_test(test_date_make_invalid),
        cmocka_unit_test(test_date_add_days),
        cmocka_unit_test(test_date_add_months),
        cmocka_unit_test(test_date_diff),
        cmocka_unit_test(test_date_bad_string_refused),
        cmocka_unit_test(test_date_days_in_month),
        cmocka_unit_test(test_date_days_in_month_bad_month),
        cmocka_unit_test(test_date_is_leap),
        cmocka_unit_test(test_date_weekday),
        cmocka_unit_test(test_date_month_start_end),
        cmocka_unit_test(test_copy_of_view_is_mutable),
        cmocka_unit_test(test_copy_leaves_view_unchanged),
        cmocka_unit_test(test_copy_of_plain_table_is_deep),
        cmocka_unit_test(test_type_of_view_is_table),
        cmocka_unit_test(test_pairs_on_object_view),
        cmocka_unit_test(test_ipairs_on_list_view),
        cmocka_unit_test(test_length_of_views),
        cmocka_unit_test(test_next_on_views),
        cmocka_unit_test(test_view_missing_fields_are_nil),
        cmocka_unit_test(test_view_json_kinds),
        cmocka_unit_test(test_view_equality_and_tostring),
        cmocka_unit_test(test_several_arguments),
        cmocka_unit_test(test_get_field_and_functions),
        cmocka_unit_test(test_log_reaches_logger),
        cmocka_unit_test(test_log_info_level),
        cmocka_unit_test(test_print_reaches_logger),
        cmocka_unit_test(test_examples_report_pass_and_first_difference),
        cmocka_unit_test(test_examples_malformed_reported),
        cmocka_unit_test(test_examples_wrong_error_text),
        cmocka_unit_test(test_examples_not_a_list),
        cmocka_unit_test(test_examples_of_one_module),
        cmocka_unit_test(test_ruleset_load_check_fails_on_example),
        cmocka_unit_test(test_ruleset_load_check_passes),
        cmocka_unit_test(test_snapshot_read_folder),
        cmocka_unit_test(test_snapshot_read_missing_folder),
        cmocka_unit_test(test_version_known_value),
        cmocka_unit_test(test_version_two_files_known_value),
        cmocka_unit_test(test_version_stable),
        cmocka_unit_test(test_version_changes_with_one_byte),
        cmocka_unit_test(test_version_depends_on_path),
        cmocka_unit_test(test_version_snapshot_independent_of_order),
        cmocka_unit_test(test_version_of_independent_of_order),
        cmocka_unit_test(test_rules_call_bad_name),
        cmocka_unit_test(test_rules_call_missing_function),
        cmocka_unit_test(test_rules_call_counts_by_name),
        cmocka_unit_test(test_live_set_and_get),
        cmocka_unit_test(test_reload_changes_live_version),
        cmocka_unit_test(test_reload_syntax_error_keeps_previous),
        cmocka_unit_test(test_reload_failing_example_keeps_previous),
        cmocka_unit_test(test_reload_missing_folder_keeps_previous),
        cmocka_unit_test(test_reference_survives_reload),
        cmocka_unit_test(test_reloads_do_not_grow_memory),
        cmocka_unit_test(test_starter_rules_load_and_examples_pass),
        cmocka_unit_test(test_starter_tariff_flat_call),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
