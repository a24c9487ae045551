/* test_date.c - the civil calendar on day numbers (days since 1970-01-01). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "date.h"

/* Day numbers worked out by hand:
 *   2000-01-01: 1970..1999 is 30 years with 7 leap years (72..96): 30*365+7 = 10957
 *   2026-01-01: 2000..2025 is 26 years with 7 leap years (00..24): 10957 + 26*365+7 = 20454
 *   2026-11-27: Jan..Oct 2026 = 31+28+31+30+31+30+31+31+30+31 = 304 days; 20454+304+26 = 20784
 *   2028-01-01: 20454 + 365 + 365 = 21184; 2028-02-29 = 21184 + 31 + 28 = 21243
 *   1600-01-01: 1600..1969 is 370 years, 93 multiples of 4 less 1700/1800/1900 = 90 leap
 *               years: -(370*365+90) = -135140
 *   2400-12-31: 1970..2400 is 431 years, 108 multiples of 4 less 2100/2200/2300 = 105
 *               leap years: 431*365+105 = 157420 is 2401-01-01, so 157419 */
#define D_1970_01_01 0
#define D_2000_01_01 10957
#define D_2026_01_01 20454
#define D_2026_11_27 20784
#define D_2028_02_29 21243
#define D_1600_01_01 (-135140)
#define D_2400_12_31 157419

/* An oracle independent of date.c. */
static int my_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
static int my_dim(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && my_leap(y) ? 29 : dim[m - 1];
}

static int32_t parse_ok(const char *s)
{
    int32_t d = 0;
    err e;
    err_clear(&e);
    int rc = date_parse(s, strlen(s), &d, &e);
    if (rc) print_error("date_parse(\"%s\"): %s\n", s, e.msg);
    assert_int_equal(rc, 0);
    return d;
}

static void parse_bad(const char *s)
{
    int32_t d = 0;
    err e;
    err_clear(&e);
    int rc = date_parse(s, strlen(s), &d, &e);
    if (rc == 0) print_error("date_parse(\"%s\") accepted it\n", s);
    assert_int_equal(rc, ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    assert_true(e.msg[0] != '\0');
}

static void check_add(const char *from, int months, const char *want)
{
    int32_t out = 0;
    err e;
    err_clear(&e);
    int rc = date_add_months(parse_ok(from), months, &out, &e);
    if (rc) print_error("%s %+d months: %s\n", from, months, e.msg);
    assert_int_equal(rc, 0);
    char got[11];
    date_format(out, got);
    assert_string_equal(got, want);
}

static void check_add_bad(int32_t from, int months)
{
    int32_t out = 0;
    err e;
    err_clear(&e);
    assert_int_equal(date_add_months(from, months, &out, &e), ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
}

/* ------------------------------------------------------------ leap, dim */

static void test_leap_years(void **state)
{
    (void)state;
    assert_false(date_is_leap(1900));  /* century not divisible by 400 */
    assert_true(date_is_leap(2000));   /* divisible by 400 */
    assert_true(date_is_leap(2024));
    assert_false(date_is_leap(2026));
    assert_false(date_is_leap(2100));
    assert_true(date_is_leap(2400));
    assert_true(date_is_leap(2028));
}

static void test_days_in_month_common_year(void **state)
{
    (void)state;
    static const int want[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++) assert_int_equal(date_days_in_month(2026, m), want[m - 1]);
}

static void test_days_in_february(void **state)
{
    (void)state;
    assert_int_equal(date_days_in_month(2024, 2), 29);
    assert_int_equal(date_days_in_month(2026, 2), 28);
    assert_int_equal(date_days_in_month(1900, 2), 28);
    assert_int_equal(date_days_in_month(2000, 2), 29);
    assert_int_equal(date_days_in_month(2100, 2), 28);
}

static void test_days_in_invalid_month_is_zero(void **state)
{
    (void)state;
    assert_int_equal(date_days_in_month(2026, 0), 0);
    assert_int_equal(date_days_in_month(2026, 13), 0);
    assert_int_equal(date_days_in_month(2026, -1), 0);
}

static void test_date_valid(void **state)
{
    (void)state;
    assert_true(date_valid(2026, 11, 27));
    assert_true(date_valid(2028, 2, 29));
    assert_false(date_valid(2026, 2, 29));
    assert_false(date_valid(2026, 4, 31));
    assert_false(date_valid(2026, 13, 1));
    assert_false(date_valid(2026, 0, 1));
    assert_false(date_valid(2026, 1, 0));
    assert_true(date_valid(1, 1, 1));
    assert_false(date_valid(0, 12, 31));      /* below DATE_MIN_YEAR */
    assert_true(date_valid(9999, 12, 31));
    assert_false(date_valid(10000, 1, 1));    /* above DATE_MAX_YEAR */
}

/* ----------------------------------------------------- day numbers */

static void test_known_day_numbers(void **state)
{
    (void)state;
    assert_int_equal(date_from_ymd(1970, 1, 1), D_1970_01_01);
    assert_int_equal(date_from_ymd(1970, 1, 2), 1);
    assert_int_equal(date_from_ymd(1969, 12, 31), -1);
    assert_int_equal(date_from_ymd(2000, 1, 1), D_2000_01_01);
    assert_int_equal(date_from_ymd(2026, 1, 1), D_2026_01_01);
    assert_int_equal(date_from_ymd(2026, 11, 27), D_2026_11_27);
    assert_int_equal(date_from_ymd(2028, 2, 29), D_2028_02_29);
    assert_int_equal(date_from_ymd(1600, 1, 1), D_1600_01_01);
    assert_int_equal(date_from_ymd(2400, 12, 31), D_2400_12_31);
}

static void test_every_day_1600_to_2400_round_trips(void **state)
{
    (void)state;
    /* walk the calendar with the independent oracle, one day at a time */
    int y = 1600, m = 1, d = 1;
    int32_t n = D_1600_01_01;
    for (;;) {
        int32_t got = date_from_ymd(y, m, d);
        if (got != n) {
            print_error("date_from_ymd(%04d-%02d-%02d) = %d, want %d\n", y, m, d, (int)got, (int)n);
            fail();
        }
        int gy, gm, gd;
        date_to_ymd(n, &gy, &gm, &gd);
        if (gy != y || gm != m || gd != d) {
            print_error("date_to_ymd(%d) = %04d-%02d-%02d, want %04d-%02d-%02d\n", (int)n, gy, gm, gd, y,
                        m, d);
            fail();
        }
        if (y == 2400 && m == 12 && d == 31) break;
        n++;
        if (++d > my_dim(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
    assert_int_equal(n, D_2400_12_31);
}

static void test_range_ends_round_trip(void **state)
{
    (void)state;
    int y, m, d;
    date_to_ymd(date_from_ymd(1, 1, 1), &y, &m, &d);
    assert_int_equal(y, 1);
    assert_int_equal(m, 1);
    assert_int_equal(d, 1);
    date_to_ymd(date_from_ymd(9999, 12, 31), &y, &m, &d);
    assert_int_equal(y, 9999);
    assert_int_equal(m, 12);
    assert_int_equal(d, 31);
    /* 9999-12-31 - 0001-01-01: 9998 years with 2424 leap years
     * (2499 multiples of 4, less 75 non-400 centuries), plus 364 days */
    assert_int_equal(date_from_ymd(9999, 12, 31) - date_from_ymd(1, 1, 1), 9998 * 365 + 2424 + 364);
}

/* ------------------------------------------------------------ parse */

static void test_parse_valid_dates(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1970-01-01"), D_1970_01_01);
    assert_int_equal(parse_ok("2026-11-27"), D_2026_11_27);
    assert_int_equal(parse_ok("2028-02-29"), D_2028_02_29);  /* 2028 is a leap year */
    assert_int_equal(parse_ok("1600-01-01"), D_1600_01_01);
}

static void test_parse_refuses_impossible_dates(void **state)
{
    (void)state;
    parse_bad("2026-02-29");  /* 2026 is not a leap year */
    parse_bad("2100-02-29");
    parse_bad("2026-04-31");
    parse_bad("2026-13-01");
    parse_bad("2026-00-10");
    parse_bad("2026-01-00");
    parse_bad("0000-01-01");  /* year 0 is before DATE_MIN_YEAR */
}

static void test_parse_is_strict_about_shape(void **state)
{
    (void)state;
    parse_bad("2026-1-01");
    parse_bad("2026-01-1");
    parse_bad("2026-01-01x");
    parse_bad(" 2026-01-01");
    parse_bad("2026-01-01 ");
    parse_bad("2026/01/01");
    parse_bad("20260101");
    parse_bad("2026-0a-01");
    parse_bad("+026-01-01");
    parse_bad("-026-01-01");
    parse_bad("2026-01-+1");
    parse_bad("");
    parse_bad("2026-01-01T00:00:00Z");
}

static void test_parse_reads_only_n_bytes(void **state)
{
    (void)state;
    int32_t d = 0;
    err e;
    err_clear(&e);
    assert_int_equal(date_parse("2026-11-27T10:00:00", 10, &d, &e), 0);
    assert_int_equal(d, D_2026_11_27);
    assert_int_equal(date_parse("2026-11-2", 9, &d, &e), ERR_INVALID);
}

/* ----------------------------------------------------------- format */

static void test_format(void **state)
{
    (void)state;
    char out[11];
    date_format(D_1970_01_01, out);
    assert_string_equal(out, "1970-01-01");
    date_format(D_2026_11_27, out);
    assert_string_equal(out, "2026-11-27");
    date_format(D_2028_02_29, out);
    assert_string_equal(out, "2028-02-29");
    date_format(-1, out);
    assert_string_equal(out, "1969-12-31");
    date_format(D_1600_01_01, out);
    assert_string_equal(out, "1600-01-01");
}

static void test_format_pads_small_years(void **state)
{
    (void)state;
    char out[11];
    /* 0001-01-01 is 719162 days before 1970-01-01: 1969 years with 477 leap years
     * (492 multiples of 4 less 15 non-400 centuries): 1969*365+477 = 719162 */
    date_format(-719162, out);
    assert_string_equal(out, "0001-01-01");
    date_format(-719162 + 31 + 28 + 9, out);   /* 0001-03-10 */
    assert_string_equal(out, "0001-03-10");
}

static void test_format_then_parse(void **state)
{
    (void)state;
    for (int32_t n = D_2026_01_01 - 800; n < D_2026_01_01 + 800; n += 7) {
        char out[11];
        date_format(n, out);
        assert_int_equal(parse_ok(out), n);
    }
}

/* ------------------------------------------------------- add months */

static void test_add_months_clamps_to_month_end(void **state)
{
    (void)state;
    check_add("2026-01-31", 1, "2026-02-28");
    check_add("2028-01-31", 1, "2028-02-29");  /* leap year */
    check_add("2026-03-31", -1, "2026-02-28");
    check_add("2026-05-31", 1, "2026-06-30");
    check_add("2026-01-30", 1, "2026-02-28");
    check_add("2024-02-29", 12, "2025-02-28");
}

static void test_add_months_keeps_the_day(void **state)
{
    (void)state;
    check_add("2026-11-27", 0, "2026-11-27");
    check_add("2026-11-27", 1, "2026-12-27");
    check_add("2026-02-28", 1, "2026-03-28");  /* not clamped back to a month end */
    check_add("2026-01-15", 2, "2026-03-15");
}

static void test_add_months_across_years(void **state)
{
    (void)state;
    check_add("2026-11-27", 12, "2027-11-27");
    check_add("2026-11-27", -24, "2024-11-27");
    check_add("2026-12-15", 1, "2027-01-15");
    check_add("2026-01-15", -1, "2025-12-15");
    check_add("2026-01-15", -13, "2024-12-15");
    check_add("2026-06-30", 120, "2036-06-30");
}

static void test_add_months_out_of_range(void **state)
{
    (void)state;
    check_add("9999-11-30", 1, "9999-12-30");     /* the last month still works */
    check_add("0001-02-28", -1, "0001-01-28");
    check_add_bad(parse_ok("9999-12-01"), 1);     /* year 10000 */
    check_add_bad(parse_ok("9999-12-31"), 12);
    check_add_bad(parse_ok("0001-01-31"), -1);    /* year 0 */
    check_add_bad(parse_ok("2026-01-01"), INT_MAX);
    check_add_bad(parse_ok("2026-01-01"), INT_MIN);
}

/* ---------------------------------------------------------- weekday */

static void test_weekday(void **state)
{
    (void)state;
    assert_int_equal(date_weekday(D_1970_01_01), 4);  /* Thursday */
    assert_int_equal(date_weekday(D_2026_11_27), 5);  /* Friday */
    assert_int_equal(date_weekday(D_2000_01_01), 6);  /* Saturday */
    assert_int_equal(date_weekday(-1), 3);            /* 1969-12-31, Wednesday */
    assert_int_equal(date_weekday(-3), 1);            /* 1969-12-29, Monday */
    assert_int_equal(date_weekday(-4), 7);            /* 1969-12-28, Sunday */
    /* 146097 days (400 years) is a whole number of weeks: 1600-01-01 was a Saturday too */
    assert_int_equal(date_weekday(D_1600_01_01), 6);
    assert_int_equal(date_weekday(D_2026_11_27 + 2), 7);  /* Sunday 2026-11-29 */
}

static void test_weekday_cycles_through_one_to_seven(void **state)
{
    (void)state;
    /* 1969-12-29 (day -3) was a Monday */
    for (int32_t n = -3 - 7 * 100; n < 7 * 100; n++) {
        int want = (int)(((n + 3) % 7 + 7) % 7) + 1;
        assert_int_equal(date_weekday(n), want);
    }
}

/* ------------------------------------------------------ date_of_time */

static void test_date_of_time_uses_local_zone(void **state)
{
    (void)state;
    /* 2026-11-26T16:00:00Z = 20783 days * 86400 + 16 h = 1795651200 + 57600 = 1795708800,
     * which is 2026-11-27 00:00 in Shanghai (UTC+8) */
    const time_t t = (time_t)1795708800;
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    assert_int_equal(date_of_time(t), D_2026_11_27);
    assert_int_equal(date_of_time(t - 1), D_2026_11_27 - 1);
    setenv("TZ", "UTC", 1);
    tzset();
    assert_int_equal(date_of_time(t), D_2026_11_27 - 1);
    assert_int_equal(date_of_time(t + 8 * 3600), D_2026_11_27);
    assert_int_equal(date_of_time(0), D_1970_01_01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_days_in_month_common_year),
        cmocka_unit_test(test_days_in_february),
        cmocka_unit_test(test_days_in_invalid_month_is_zero),
        cmocka_unit_test(test_date_valid),
        cmocka_unit_test(test_known_day_numbers),
        cmocka_unit_test(test_every_day_1600_to_2400_round_trips),
        cmocka_unit_test(test_range_ends_round_trip),
        cmocka_unit_test(test_parse_valid_dates),
        cmocka_unit_test(test_parse_refuses_impossible_dates),
        cmocka_unit_test(test_parse_is_strict_about_shape),
        cmocka_unit_test(test_parse_reads_only_n_bytes),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_pads_small_years),
        cmocka_unit_test(test_format_then_parse),
        cmocka_unit_test(test_add_months_clamps_to_month_end),
        cmocka_unit_test(test_add_months_keeps_the_day),
        cmocka_unit_test(test_add_months_across_years),
        cmocka_unit_test(test_add_months_out_of_range),
        cmocka_unit_test(test_weekday),
        cmocka_unit_test(test_weekday_cycles_through_one_to_seven),
        cmocka_unit_test(test_date_of_time_uses_local_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
