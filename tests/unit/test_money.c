/* test_money.c - money_parse, money_format*, money_ratio, rounding modes,
 * money_add. Every expected value is worked out by hand in a comment. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "money.h"

/* ------------------------------------------------------------ helpers */

static int64_t parse_ok(const char *s)
{
    int64_t v = 0;
    err e;
    err_clear(&e);
    int rc = money_parse(s, strlen(s), &v, &e);
    if (rc) print_error("money_parse(\"%s\") failed: %s\n", s, e.msg);
    assert_int_equal(rc, 0);
    return v;
}

static void parse_bad(const char *s)
{
    int64_t v = 0;
    err e;
    err_clear(&e);
    int rc = money_parse(s, strlen(s), &v, &e);
    if (rc == 0) print_error("money_parse(\"%s\") accepted it as %lld fen\n", s, (long long)v);
    assert_int_equal(rc, ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    assert_true(e.msg[0] != '\0');
}

static int64_t ratio_ok(int64_t amount, int64_t num, int64_t den, round_mode mode)
{
    int64_t v = 0;
    err e;
    err_clear(&e);
    int rc = money_ratio(amount, num, den, mode, &v, &e);
    if (rc)
        print_error("money_ratio(%lld, %lld, %lld, %d) failed: %s\n", (long long)amount, (long long)num,
                    (long long)den, (int)mode, e.msg);
    assert_int_equal(rc, 0);
    return v;
}

static void ratio_bad(int64_t amount, int64_t num, int64_t den, round_mode mode)
{
    int64_t v = 0;
    err e;
    err_clear(&e);
    int rc = money_ratio(amount, num, den, mode, &v, &e);
    assert_int_equal(rc, ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    assert_true(e.msg[0] != '\0');
}

static void check_format(int64_t fen, const char *want)
{
    char out[MONEY_FMT_MAX];
    memset(out, 'x', sizeof out);
    money_format(fen, out);
    assert_string_equal(out, want);
}

static void check_display(int64_t fen, const char *want)
{
    char out[MONEY_FMT_MAX];
    memset(out, 'x', sizeof out);
    money_format_display(fen, out);
    assert_string_equal(out, want);
}

/* ------------------------------------------------------ money_parse ok */

static void test_parse_whole_yuan(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("129"), 12900);   /* 129 yuan * 100 */
    assert_int_equal(parse_ok("0"), 0);
    assert_int_equal(parse_ok("7"), 700);
}

static void test_parse_one_decimal_is_tens_of_fen(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("129.5"), 12950);  /* 129*100 + 5*10 */
    assert_int_equal(parse_ok("0.1"), 10);
}

static void test_parse_two_decimals(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("129.50"), 12950);
    assert_int_equal(parse_ok("0.01"), 1);
    assert_int_equal(parse_ok("0.99"), 99);
    assert_int_equal(parse_ok("12.05"), 1205);  /* "05" is 5 fen, not 50 */
}

static void test_parse_negative(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("-0.05"), -5);
    assert_int_equal(parse_ok("-129"), -12900);
    assert_int_equal(parse_ok("-1,290.00"), -129000);
}

static void test_parse_explicit_plus(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("+3"), 300);
    assert_int_equal(parse_ok("+0.30"), 30);
}

static void test_parse_thousands_separators(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1,290.00"), 129000);         /* 1290 yuan */
    assert_int_equal(parse_ok("1,234,567.89"), 123456789);  /* 1234567 yuan 89 fen */
    assert_int_equal(parse_ok("999,999"), 99999900);
    assert_int_equal(parse_ok("12,345"), 1234500);
}

static void test_parse_yen_sign(void **state)
{
    (void)state;
    /* U+00A5 YEN SIGN is C2 A5 in UTF-8 */
    assert_int_equal(parse_ok("\xC2\xA5" "1,290.00"), 129000);
    assert_int_equal(parse_ok("-\xC2\xA5" "0.50"), -50);  /* what money_format_display writes */
}

static void test_parse_fullwidth_yen_sign(void **state)
{
    (void)state;
    /* U+FFE5 FULLWIDTH YEN SIGN is EF BF A5 in UTF-8 */
    assert_int_equal(parse_ok("\xEF\xBF\xA5" "5"), 500);
}

static void test_parse_largest_amount(void **state)
{
    (void)state;
    /* INT64_MAX = 9223372036854775807 fen = 92233720368547758.07 yuan */
    assert_int_equal(parse_ok("92233720368547758.07"), INT64_MAX);
    assert_int_equal(parse_ok("-92233720368547758.07"), -INT64_MAX);
}

static void test_parse_reads_only_n_bytes(void **state)
{
    (void)state;
    int64_t v = 0;
    err e;
    err_clear(&e);
    /* only "12.34" of "12.345" is given: 1234 fen */
    assert_int_equal(money_parse("12.345", 5, &v, &e), 0);
    assert_int_equal(v, 1234);
    /* "129" out of a longer, otherwise invalid buffer */
    assert_int_equal(money_parse("129abc", 3, &v, &e), 0);
    assert_int_equal(v, 12900);
}

/* ----------------------------------------------------- money_parse bad */

static void test_parse_refuses_empty(void **state)
{
    (void)state;
    parse_bad("");
    parse_bad("-");
    parse_bad("+");
    parse_bad("\xC2\xA5");  /* a yen sign and nothing else */
}

static void test_parse_refuses_three_decimals_without_rounding(void **state)
{
    (void)state;
    int64_t v = 0;
    err e;
    err_clear(&e);
    assert_int_equal(money_parse("1.234", 5, &v, &e), ERR_INVALID);
    /* the message says why, rather than rounding 1.234 to 1.23 */
    assert_non_null(strstr(e.msg, "decimals"));
    parse_bad("1.230");   /* even a trailing zero is a third decimal */
    parse_bad("0.001");
}

static void test_parse_refuses_misplaced_separators(void **state)
{
    (void)state;
    parse_bad("1,29.00");   /* group of 2 after a comma */
    parse_bad("12,3456");   /* group of 4 after a comma */
    parse_bad("1234,567");  /* 4 digits before the first comma */
    parse_bad(",123");      /* comma first */
    parse_bad("1,234,");    /* comma last */
    parse_bad("1,,234");    /* two commas */
    parse_bad("1,234.5,6"); /* comma among decimals */
}

static void test_parse_refuses_non_numbers(void **state)
{
    (void)state;
    parse_bad("abc");
    parse_bad("12a");
    parse_bad("1.2.3");
    parse_bad("1..2");
    parse_bad("0x10");
    parse_bad("1e3");
}

static void test_parse_refuses_bare_point(void **state)
{
    (void)state;
    parse_bad("1.");   /* a point needs a decimal after it */
    parse_bad(".5");   /* and a digit before it */
    parse_bad(".");
}

static void test_parse_refuses_two_signs(void **state)
{
    (void)state;
    parse_bad("--5");
    parse_bad("+-5");   /* "+-5" is not an amount, it must not become -5 */
    parse_bad("-+5");
}

static void test_parse_refuses_overflow(void **state)
{
    (void)state;
    /* one fen more than INT64_MAX */
    parse_bad("92233720368547758.08");
    parse_bad("92233720368547759");
    parse_bad("99999999999999999999");
    parse_bad("-92233720368547758.09");
    parse_bad("92,233,720,368,547,759.00");
}

/* ------------------------------------------------------------ format */

static void test_format_plain(void **state)
{
    (void)state;
    check_format(12900, "129.00");
    check_format(12950, "129.50");
    check_format(5, "0.05");
    check_format(123456789, "1234567.89");  /* no separators in the plain form */
}

static void test_format_zero(void **state)
{
    (void)state;
    check_format(0, "0.00");
}

static void test_format_negative(void **state)
{
    (void)state;
    check_format(-50, "-0.50");
    check_format(-5, "-0.05");
    check_format(-12900, "-129.00");
}

static void test_format_int64_edges(void **state)
{
    (void)state;
    check_format(INT64_MAX, "92233720368547758.07");
    /* |INT64_MIN| = 9223372036854775808 fen */
    check_format(INT64_MIN, "-92233720368547758.08");
}

static void test_format_display_groups_and_sign(void **state)
{
    (void)state;
    check_display(129000, "\xC2\xA5" "1,290.00");
    check_display(-50, "-\xC2\xA5" "0.50");
    check_display(0, "\xC2\xA5" "0.00");
    check_display(99999, "\xC2\xA5" "999.99");         /* no comma below 1000 */
    check_display(100000, "\xC2\xA5" "1,000.00");
    check_display(123456789, "\xC2\xA5" "1,234,567.89");
    check_display(-100000000, "-\xC2\xA5" "1,000,000.00");
}

static void test_format_display_int64_edges(void **state)
{
    (void)state;
    check_display(INT64_MAX, "\xC2\xA5" "92,233,720,368,547,758.07");
    check_display(INT64_MIN, "-\xC2\xA5" "92,233,720,368,547,758.08");
    /* both fit MONEY_FMT_MAX with room to spare */
    char out[MONEY_FMT_MAX];
    money_format_display(INT64_MIN, out);
    assert_true(strlen(out) < MONEY_FMT_MAX);
}

static void test_format_output_parses_back(void **state)
{
    (void)state;
    static const int64_t values[] = {0, 1, -1, 99, 100, -12950, 129000, 123456789, INT64_MAX, -INT64_MAX};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        char out[MONEY_FMT_MAX];
        money_format(values[i], out);
        assert_int_equal(parse_ok(out), values[i]);
        money_format_display(values[i], out);
        assert_int_equal(parse_ok(out), values[i]);
    }
}

/* ------------------------------------------------------------- ratio */

static void test_ratio_positive_tie_every_mode(void **state)
{
    (void)state;
    /* 12345 * 10 / 100 = 1234.5 exactly */
    assert_int_equal(ratio_ok(12345, 10, 100, ROUND_HALF_UP), 1235);
    assert_int_equal(ratio_ok(12345, 10, 100, ROUND_HALF_EVEN), 1234);  /* 1234 is even */
    assert_int_equal(ratio_ok(12345, 10, 100, ROUND_DOWN), 1234);
    assert_int_equal(ratio_ok(12345, 10, 100, ROUND_UP), 1235);
    assert_int_equal(ratio_ok(12345, 10, 100, ROUND_FLOOR), 1234);
    assert_int_equal(ratio_ok(12345, 10, 100, ROUND_CEILING), 1235);
}

static void test_ratio_negative_tie_every_mode(void **state)
{
    (void)state;
    /* -12345 * 10 / 100 = -1234.5 exactly */
    assert_int_equal(ratio_ok(-12345, 10, 100, ROUND_HALF_UP), -1235);   /* away from zero */
    assert_int_equal(ratio_ok(-12345, 10, 100, ROUND_HALF_EVEN), -1234);
    assert_int_equal(ratio_ok(-12345, 10, 100, ROUND_DOWN), -1234);      /* toward zero */
    assert_int_equal(ratio_ok(-12345, 10, 100, ROUND_UP), -1235);
    assert_int_equal(ratio_ok(-12345, 10, 100, ROUND_FLOOR), -1235);
    assert_int_equal(ratio_ok(-12345, 10, 100, ROUND_CEILING), -1234);
}

static void test_ratio_half_even_rounds_odd_tie_up(void **state)
{
    (void)state;
    /* 12355 * 10 / 100 = 1235.5: 1235 is odd, so to 1236 */
    assert_int_equal(ratio_ok(12355, 10, 100, ROUND_HALF_EVEN), 1236);
    assert_int_equal(ratio_ok(-12355, 10, 100, ROUND_HALF_EVEN), -1236);
    /* 5/2 = 2.5 -> 2, 7/2 = 3.5 -> 4, 1/2 = 0.5 -> 0 */
    assert_int_equal(ratio_ok(5, 1, 2, ROUND_HALF_EVEN), 2);
    assert_int_equal(ratio_ok(7, 1, 2, ROUND_HALF_EVEN), 4);
    assert_int_equal(ratio_ok(1, 1, 2, ROUND_HALF_EVEN), 0);
    assert_int_equal(ratio_ok(-1, 1, 2, ROUND_HALF_EVEN), 0);
}

static void test_ratio_above_half_every_mode(void **state)
{
    (void)state;
    /* 1000 * 2 / 3 = 666.666... */
    assert_int_equal(ratio_ok(1000, 2, 3, ROUND_HALF_UP), 667);
    assert_int_equal(ratio_ok(1000, 2, 3, ROUND_HALF_EVEN), 667);
    assert_int_equal(ratio_ok(1000, 2, 3, ROUND_DOWN), 666);
    assert_int_equal(ratio_ok(1000, 2, 3, ROUND_UP), 667);
    assert_int_equal(ratio_ok(1000, 2, 3, ROUND_FLOOR), 666);
    assert_int_equal(ratio_ok(1000, 2, 3, ROUND_CEILING), 667);
    /* -666.666... */
    assert_int_equal(ratio_ok(-1000, 2, 3, ROUND_HALF_UP), -667);
    assert_int_equal(ratio_ok(-1000, 2, 3, ROUND_HALF_EVEN), -667);
    assert_int_equal(ratio_ok(-1000, 2, 3, ROUND_DOWN), -666);
    assert_int_equal(ratio_ok(-1000, 2, 3, ROUND_UP), -667);
    assert_int_equal(ratio_ok(-1000, 2, 3, ROUND_FLOOR), -667);
    assert_int_equal(ratio_ok(-1000, 2, 3, ROUND_CEILING), -666);
}

static void test_ratio_below_half_every_mode(void **state)
{
    (void)state;
    /* 1000 * 1 / 3 = 333.333... */
    assert_int_equal(ratio_ok(1000, 1, 3, ROUND_HALF_UP), 333);
    assert_int_equal(ratio_ok(1000, 1, 3, ROUND_HALF_EVEN), 333);
    assert_int_equal(ratio_ok(1000, 1, 3, ROUND_DOWN), 333);
    assert_int_equal(ratio_ok(1000, 1, 3, ROUND_UP), 334);
    assert_int_equal(ratio_ok(1000, 1, 3, ROUND_FLOOR), 333);
    assert_int_equal(ratio_ok(1000, 1, 3, ROUND_CEILING), 334);
    /* -333.333... */
    assert_int_equal(ratio_ok(-1000, 1, 3, ROUND_HALF_UP), -333);
    assert_int_equal(ratio_ok(-1000, 1, 3, ROUND_HALF_EVEN), -333);
    assert_int_equal(ratio_ok(-1000, 1, 3, ROUND_DOWN), -333);
    assert_int_equal(ratio_ok(-1000, 1, 3, ROUND_UP), -334);
    assert_int_equal(ratio_ok(-1000, 1, 3, ROUND_FLOOR), -334);
    assert_int_equal(ratio_ok(-1000, 1, 3, ROUND_CEILING), -333);
}

static void test_ratio_exact_is_the_same_in_every_mode(void **state)
{
    (void)state;
    static const round_mode modes[] = {ROUND_HALF_UP, ROUND_HALF_EVEN, ROUND_DOWN,
                                       ROUND_UP,      ROUND_FLOOR,     ROUND_CEILING};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        assert_int_equal(ratio_ok(500, 3, 2, modes[i]), 750);     /* 1500 / 2 */
        assert_int_equal(ratio_ok(-500, 3, 2, modes[i]), -750);
        assert_int_equal(ratio_ok(0, 7, 3, modes[i]), 0);
        assert_int_equal(ratio_ok(12900, 1, 1, modes[i]), 12900);
    }
}

static void test_ratio_negative_denominator(void **state)
{
    (void)state;
    /* 1000 * 1 / -3 = -333.33 */
    assert_int_equal(ratio_ok(1000, 1, -3, ROUND_FLOOR), -334);
    assert_int_equal(ratio_ok(1000, 1, -3, ROUND_CEILING), -333);
    assert_int_equal(ratio_ok(1000, 1, -3, ROUND_DOWN), -333);
    /* 12345 * 10 / -100 = -1234.5 */
    assert_int_equal(ratio_ok(12345, 10, -100, ROUND_HALF_UP), -1235);
    /* -12345 * -10 / 100 = +1234.5 */
    assert_int_equal(ratio_ok(-12345, -10, 100, ROUND_HALF_UP), 1235);
    assert_int_equal(ratio_ok(-12345, -10, 100, ROUND_FLOOR), 1234);
    /* -1000 * 1 / -3 = +333.33 */
    assert_int_equal(ratio_ok(-1000, 1, -3, ROUND_CEILING), 334);
}

static void test_ratio_zero_denominator_is_an_error(void **state)
{
    (void)state;
    ratio_bad(100, 1, 0, ROUND_HALF_UP);
    ratio_bad(0, 0, 0, ROUND_DOWN);
}

static void test_ratio_result_outside_int64_is_an_error(void **state)
{
    (void)state;
    ratio_bad(INT64_MAX, 2, 1, ROUND_HALF_UP);
    ratio_bad(INT64_MIN, 2, 1, ROUND_HALF_UP);
    ratio_bad(INT64_MIN, -1, 1, ROUND_DOWN);   /* +2^63 */
    ratio_bad(INT64_MIN, 1, -1, ROUND_DOWN);   /* +2^63 */
    /* edges that do fit */
    assert_int_equal(ratio_ok(INT64_MIN, 1, 1, ROUND_DOWN), INT64_MIN);
    assert_int_equal(ratio_ok(INT64_MAX, -1, 1, ROUND_DOWN), -INT64_MAX);
}

/* (2^64-1)/3 = 6148914691236517205 exactly; times 3 over 2 is
 * (2^64-1)/2 = 9223372036854775807.5 = INT64_MAX + 0.5 */
static const int64_t THIRD_OF_2_64_MINUS_1 = 6148914691236517205LL;

static void test_ratio_rounding_down_at_int64_max_fits(void **state)
{
    (void)state;
    assert_int_equal(ratio_ok(THIRD_OF_2_64_MINUS_1, 3, 2, ROUND_DOWN), INT64_MAX);
    assert_int_equal(ratio_ok(THIRD_OF_2_64_MINUS_1, 3, 2, ROUND_FLOOR), INT64_MAX);
}

static void test_ratio_rounding_up_past_int64_max_is_an_error(void **state)
{
    (void)state;
    /* HALF_UP, UP and CEILING give 2^63; HALF_EVEN too, as INT64_MAX is odd */
    ratio_bad(THIRD_OF_2_64_MINUS_1, 3, 2, ROUND_HALF_UP);
    ratio_bad(THIRD_OF_2_64_MINUS_1, 3, 2, ROUND_HALF_EVEN);
    ratio_bad(THIRD_OF_2_64_MINUS_1, 3, 2, ROUND_UP);
    ratio_bad(THIRD_OF_2_64_MINUS_1, 3, 2, ROUND_CEILING);
}

static void test_ratio_uses_128_bit_intermediate(void **state)
{
    (void)state;
    /* INT64_MAX * 3 = 27670116110564327421 (beyond 64 bits);
     * / 4 = 6917529027641081855 remainder 1, i.e. ...855.25 */
    assert_int_equal(ratio_ok(INT64_MAX, 3, 4, ROUND_HALF_UP), 6917529027641081855LL);
    assert_int_equal(ratio_ok(INT64_MAX, 3, 4, ROUND_DOWN), 6917529027641081855LL);
    assert_int_equal(ratio_ok(INT64_MAX, 3, 4, ROUND_CEILING), 6917529027641081856LL);
    /* exact ratios of huge products */
    assert_int_equal(ratio_ok(INT64_MAX, 1000, 1000, ROUND_UP), INT64_MAX);
    assert_int_equal(ratio_ok(INT64_MAX, INT64_MAX, INT64_MAX, ROUND_UP), INT64_MAX);
    assert_int_equal(ratio_ok(INT64_MIN, INT64_MIN, INT64_MIN, ROUND_UP), INT64_MIN);
    /* INT64_MAX * 2 / 2 */
    assert_int_equal(ratio_ok(INT64_MAX, 2, 2, ROUND_HALF_UP), INT64_MAX);
}

static void test_ratio_tax_split_examples(void **state)
{
    (void)state;
    /* tax included in 12900 fen at 6%: 12900 * 6 / 106 = 730.188... -> 730 */
    int64_t tax = ratio_ok(12900, 6, 106, ROUND_HALF_UP);
    assert_int_equal(tax, 730);
    assert_int_equal(12900 - tax, 12170);
    /* 10000 fen at 13%: 10000 * 13 / 113 = 1150.44 -> 1150 */
    assert_int_equal(ratio_ok(10000, 13, 113, ROUND_HALF_UP), 1150);
    /* a 5% discount of 199.90 yuan: 19990 * 5 / 100 = 999.5 -> 1000 (HALF_UP), 1000 (HALF_EVEN: 999 odd) */
    assert_int_equal(ratio_ok(19990, 5, 100, ROUND_HALF_UP), 1000);
    assert_int_equal(ratio_ok(19990, 5, 100, ROUND_HALF_EVEN), 1000);
    /* a refund of 12900 at 6%: -730 */
    assert_int_equal(ratio_ok(-12900, 6, 106, ROUND_HALF_UP), -730);
}

static void test_round_frac_direct(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(money_round_frac(5, 2, ROUND_HALF_UP, &v), 0);
    assert_int_equal(v, 3);   /* 2.5 -> 3 */
    assert_int_equal(money_round_frac(-5, 2, ROUND_HALF_UP, &v), 0);
    assert_int_equal(v, -3);
    assert_int_equal(money_round_frac(5, 0, ROUND_HALF_UP, &v), -1);
    /* 2^64 / 4 = 2^62 fits; 2^64 / 1 does not */
    __int128 two64 = (__int128)1 << 64;
    assert_int_equal(money_round_frac(two64, 4, ROUND_DOWN, &v), 0);
    assert_int_equal(v, (int64_t)1 << 62);
    assert_int_equal(money_round_frac(two64, 1, ROUND_DOWN, &v), -1);
}

/* ------------------------------------------------------- round modes */

static void test_round_mode_names(void **state)
{
    (void)state;
    round_mode m = (round_mode)-1;
    assert_int_equal(money_round_mode("half_up", &m), 0);
    assert_int_equal(m, ROUND_HALF_UP);
    assert_int_equal(money_round_mode("half_even", &m), 0);
    assert_int_equal(m, ROUND_HALF_EVEN);
    assert_int_equal(money_round_mode("down", &m), 0);
    assert_int_equal(m, ROUND_DOWN);
    assert_int_equal(money_round_mode("up", &m), 0);
    assert_int_equal(m, ROUND_UP);
    assert_int_equal(money_round_mode("floor", &m), 0);
    assert_int_equal(m, ROUND_FLOOR);
    assert_int_equal(money_round_mode("ceiling", &m), 0);
    assert_int_equal(m, ROUND_CEILING);
}

static void test_round_mode_unknown_names(void **state)
{
    (void)state;
    round_mode m = ROUND_FLOOR;
    assert_int_equal(money_round_mode("", &m), -1);
    assert_int_equal(money_round_mode("HALF_UP", &m), -1);
    assert_int_equal(money_round_mode("half-up", &m), -1);
    assert_int_equal(money_round_mode("nearest", &m), -1);
    assert_int_equal(money_round_mode("half_up ", &m), -1);
    assert_int_equal(m, ROUND_FLOOR);  /* untouched */
}

/* -------------------------------------------------------------- add */

static void test_add_in_range(void **state)
{
    (void)state;
    int64_t v = 0;
    err e;
    err_clear(&e);
    assert_int_equal(money_add(12900, -730, &v, &e), 0);
    assert_int_equal(v, 12170);
    assert_int_equal(money_add(INT64_MAX, INT64_MIN, &v, &e), 0);
    assert_int_equal(v, -1);
    assert_int_equal(money_add(INT64_MAX - 1, 1, &v, &e), 0);
    assert_int_equal(v, INT64_MAX);
}

static void test_add_overflow_is_an_error(void **state)
{
    (void)state;
    int64_t v = 0;
    err e;
    err_clear(&e);
    assert_int_equal(money_add(INT64_MAX, 1, &v, &e), ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    err_clear(&e);
    assert_int_equal(money_add(INT64_MIN, -1, &v, &e), ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    assert_int_equal(money_add(INT64_MAX, INT64_MAX, &v, NULL), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_whole_yuan),
        cmocka_unit_test(test_parse_one_decimal_is_tens_of_fen),
        cmocka_unit_test(test_parse_two_decimals),
        cmocka_unit_test(test_parse_negative),
        cmocka_unit_test(test_parse_explicit_plus),
        cmocka_unit_test(test_parse_thousands_separators),
        cmocka_unit_test(test_parse_yen_sign),
        cmocka_unit_test(test_parse_fullwidth_yen_sign),
        cmocka_unit_test(test_parse_largest_amount),
        cmocka_unit_test(test_parse_reads_only_n_bytes),
        cmocka_unit_test(test_parse_refuses_empty),
        cmocka_unit_test(test_parse_refuses_three_decimals_without_rounding),
        cmocka_unit_test(test_parse_refuses_misplaced_separators),
        cmocka_unit_test(test_parse_refuses_non_numbers),
        cmocka_unit_test(test_parse_refuses_bare_point),
        cmocka_unit_test(test_parse_refuses_two_signs),
        cmocka_unit_test(test_parse_refuses_overflow),
        cmocka_unit_test(test_format_plain),
        cmocka_unit_test(test_format_zero),
        cmocka_unit_test(test_format_negative),
        cmocka_unit_test(test_format_int64_edges),
        cmocka_unit_test(test_format_display_groups_and_sign),
        cmocka_unit_test(test_format_display_int64_edges),
        cmocka_unit_test(test_format_output_parses_back),
        cmocka_unit_test(test_ratio_positive_tie_every_mode),
        cmocka_unit_test(test_ratio_negative_tie_every_mode),
        cmocka_unit_test(test_ratio_half_even_rounds_odd_tie_up),
        cmocka_unit_test(test_ratio_above_half_every_mode),
        cmocka_unit_test(test_ratio_below_half_every_mode),
        cmocka_unit_test(test_ratio_exact_is_the_same_in_every_mode),
        cmocka_unit_test(test_ratio_negative_denominator),
        cmocka_unit_test(test_ratio_zero_denominator_is_an_error),
        cmocka_unit_test(test_ratio_result_outside_int64_is_an_error),
        cmocka_unit_test(test_ratio_rounding_down_at_int64_max_fits),
        cmocka_unit_test(test_ratio_rounding_up_past_int64_max_is_an_error),
        cmocka_unit_test(test_ratio_uses_128_bit_intermediate),
        cmocka_unit_test(test_ratio_tax_split_examples),
        cmocka_unit_test(test_round_frac_direct),
        cmocka_unit_test(test_round_mode_names),
        cmocka_unit_test(test_round_mode_unknown_names),
        cmocka_unit_test(test_add_in_range),
        cmocka_unit_test(test_add_overflow_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
