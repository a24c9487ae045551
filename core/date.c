/* date.c - proleptic Gregorian calendar on day numbers.
 * The conversions are Howard Hinnant's public-domain civil algorithms. */
#include "date.h"

#include <stdio.h>

int date_is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int date_days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12) return 0;
    return m == 2 && date_is_leap(y) ? 29 : dim[m - 1];
}

int date_valid(int y, int m, int d)
{
    return y >= DATE_MIN_YEAR && y <= DATE_MAX_YEAR && m >= 1 && m <= 12 && d >= 1 &&
           d <= date_days_in_month(y, m);
}

int32_t date_from_ymd(int y, int m, int d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153u * (unsigned)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (unsigned)d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int32_t)doe - 719468;
}

void date_to_ymd(int32_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int date_parse(const char *s, size_t n, int32_t *days, err *e)
{
    int y, m, d;
    if (n != 10 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) || digits(s + 5, 2, &m) ||
        digits(s + 8, 2, &d))
        return err_set(e, ERR_INVALID, "\"%.*s\" is not a date (expected YYYY-MM-DD)",
                       (int)(n > 40 ? 40 : n), s);
    if (!date_valid(y, m, d))
        return err_set(e, ERR_INVALID, "%.10s is not a valid calendar date", s);
    *days = date_from_ymd(y, m, d);
    return 0;
}

static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
}

void date_format(int32_t days, char out[11])
{
    int y, m, d;
    date_to_ymd(days, &y, &m, &d);
    put_digits(out, (unsigned)y, 4);
    out[4] = '-';
    put_digits(out + 5, (unsigned)m, 2);
    out[7] = '-';
    put_digits(out + 8, (unsigned)d, 2);
    out[10] = '\0';
}

int date_add_months(int32_t days, int months, int32_t *out, err *e)
{
    int y, m, d;
    date_to_ymd(days, &y, &m, &d);
    long total = (long)y * 12 + (m - 1) + months;
    long ny = total >= 0 ? total / 12 : -((-total + 11) / 12);
    int nm = (int)(total - ny * 12) + 1;
    if (ny < DATE_MIN_YEAR || ny > DATE_MAX_YEAR)
        return err_set(e, ERR_INVALID, "date out of range after adding %d months", months);
    int dim = date_days_in_month((int)ny, nm);
    *out = date_from_ymd((int)ny, nm, d > dim ? dim : d);
    return 0;
}

int date_weekday(int32_t days)
{
    /* 1970-01-01 was a Thursday (ISO 4) */
    int w = (int)((days % 7 + 7) % 7);
    return (w + 3) % 7 + 1;
}

int32_t date_of_time(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    return date_from_ymd(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
