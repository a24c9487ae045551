/* fuzz_cron.c - cron_parse on arbitrary text; for an expression that parses,
 * cron_next/cron_prev from fixed times around DST changes, month and year
 * ends and leap days.
 *
 * Checked: cron_next(t) is -1 or a whole minute > t that the expression
 * matches in local time; cron_prev(t) is -1 or a matching whole minute <= t;
 * nothing matches strictly between t and cron_next(t) (cron_prev of the
 * minute before finds t's side, not a skipped fire time).
 *
 * The zone is Europe/Berlin (DST), or $BB_FUZZ_TZ. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "err.h"

/* Instants, described in Europe/Berlin local time. */
static const time_t times[] = {
    0,              /* 1970-01-01 01:00:00 CET */
    1774745400,     /* 2026-03-29 01:50:00 CET: 10 min before 02:00 jumps to 03:00 */
    1792889400,     /* 2026-10-25 02:50:00 CEST: first pass of the repeated hour */
    1792893000,     /* 2026-10-25 02:50:00 CET: second pass */
    1709161199,     /* 2024-02-28 23:59:59 CET: before a leap day */
    1798757999,     /* 2026-12-31 23:59:59 CET */
    1798758030,     /* 2027-01-01 00:00:30 CET: seconds are dropped */
    4102441140,     /* 2099-12-31 23:59:00 CET */
};

static void die(const char *what, const char *expr, time_t t, time_t r)
{
    char a[64] = "", b[64] = "";
    struct tm tm;
    if (localtime_r(&t, &tm)) strftime(a, sizeof a, "%Y-%m-%d %H:%M:%S %Z", &tm);
    if (r != -1 && localtime_r(&r, &tm)) strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S %Z", &tm);
    fprintf(stderr, "fuzz_cron: %s: \"%s\" at %lld (%s) -> %lld (%s)\n", what, expr, (long long)t, a,
            (long long)r, b);
    abort();
}

static int weekday_of(const struct tm *tm) { return tm->tm_wday; }

/* Does local time t match c (at the minute)? */
static int matches(const cron_expr *c, time_t t)
{
    struct tm tm;
    if (!localtime_r(&t, &tm) || tm.tm_sec != 0) return 0;
    if (!((c->minute >> tm.tm_min) & 1) || !((c->hour >> tm.tm_hour) & 1) ||
        !((c->month >> (tm.tm_mon + 1)) & 1))
        return 0;
    int dom = (c->mday >> tm.tm_mday) & 1, dow = (c->wday >> weekday_of(&tm)) & 1;
    return (c->mday_star || c->wday_star) ? (dom && dow) : (dom || dow);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tz = getenv("BB_FUZZ_TZ");
    setenv("TZ", tz && *tz ? tz : "Europe/Berlin", 1);
    tzset();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024) return 0;
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    cron_expr c;
    err e;
    err_clear(&e);
    if (cron_parse(s, &c, &e)) {
        if (e.code != ERR_INVALID || !e.msg[0]) die("error without a message", s, 0, -1);
        free(s);
        return 0;
    }
    /* the bit sets stay inside their fields */
    if ((c.minute >> 60) || (c.hour >> 24) || (c.mday & 1) || (c.month & 1) ||
        (c.month >> 13) || (c.wday >> 7))
        die("field bits out of range", s, 0, -1);

    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        time_t t = times[i];
        time_t n = cron_next(&c, t);
        if (n != -1) {
            if (n <= t) die("cron_next not after the time", s, t, n);
            if (n % 60) die("cron_next not on a whole minute", s, t, n);
            if (!matches(&c, n)) die("cron_next does not match", s, t, n);
            /* nothing matched in between: the last match at or before n-1 is <= t */
            time_t p = cron_prev(&c, n - 1);
            if (p != -1 && p > t) die("cron_next skipped a fire time", s, t, p);
            if (cron_prev(&c, n) != n) die("cron_prev of a fire time is not itself", s, n, cron_prev(&c, n));
        }
        time_t p = cron_prev(&c, t);
        if (p != -1) {
            if (p > t) die("cron_prev after the time", s, t, p);
            if (p % 60) die("cron_prev not on a whole minute", s, t, p);
            if (!matches(&c, p)) die("cron_prev does not match", s, t, p);
        }
    }
    free(s);
    return 0;
}
