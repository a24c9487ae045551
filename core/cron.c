/* cron.c - crontab(5) expressions and their fire times (see cron.h).
 *
 * The search walks the local calendar, not the time line: a civil minute
 * (year, month, day, hour, minute) is matched against the bit sets field by
 * field, and a field that does not match skips straight to the next value
 * that does, resetting the smaller fields. Only a civil minute that matches
 * everything is turned into a time_t, which is where DST comes in: a civil
 * minute may not exist (spring forward) or exist twice (fall back). Its fire
 * time is its first occurrence; a minute that does not exist never fires. */
#include "cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

enum { F_MINUTE, F_HOUR, F_MDAY, F_MONTH, F_WDAY, F_COUNT };

typedef struct field_spec {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] stands for min + i; NULL: numbers only */
    const char *name_hint;
} field_spec;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const wday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

/* Day-of-week accepts 7 so that ranges can end on Sunday ("fri-7");
 * bit 7 is folded into bit 0 once the field is parsed. */
static const field_spec fields[F_COUNT] = {
    {"minute", 0, 59, NULL, NULL},
    {"hour", 0, 23, NULL, NULL},
    {"day-of-month", 1, 31, NULL, NULL},
    {"month", 1, 12, month_names, "jan..dec"},
    {"day-of-week", 0, 7, wday_names, "sun..sat"},
};

static const struct {
    const char *name;
    const char *expansion;
} macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* Every message starts with the whole expression, because the caller only
 * knows which configuration key it came from, not which part is wrong. */
static int bad(const char *expr, err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(const char *expr, err *e, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return err_set(e, ERR_INVALID, "cron expression \"%.200s\": %s", expr, detail);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* Reads a number or a name at *pp. `item` is the whole list item, for the
 * messages. */
static int parse_value(const char *expr, const field_spec *fs, const char *item, size_t item_len,
                       const char **pp, const char *end, int *out, err *e)
{
    const char *p = *pp, *tok = p;
    int ilen = (int)(item_len > 64 ? 64 : item_len);

    if (p < end && is_digit(*p)) {
        long v = 0;
        while (p < end && is_digit(*p)) {
            /* clamped, not wrapped, so that a long number still reads as
             * out of range; the message prints the digits as written */
            if (v < 100000) v = v * 10 + (*p - '0');
            p++;
        }
        if (v < fs->min || v > fs->max)
            return bad(expr, e, "%s %.*s out of range %d-%d", fs->name,
                       (int)(p - tok > 32 ? 32 : p - tok), tok, fs->min, fs->max);
        *out = (int)v;
        *pp = p;
        return 0;
    }
    if (p < end && is_alpha(*p)) {
        while (p < end && is_alpha(*p)) p++;
        int tlen = (int)(p - tok > 32 ? 32 : p - tok);
        if (!fs->names)
            return bad(expr, e, "%s \"%.*s\": names are not allowed in this field", fs->name,
                       ilen, item);
        if (p - tok == 3) {
            for (int i = 0; fs->names[i]; i++) {
                const char *n = fs->names[i];
                if (lower(tok[0]) == n[0] && lower(tok[1]) == n[1] && lower(tok[2]) == n[2]) {
                    *out = fs->min + i;
                    *pp = p;
                    return 0;
                }
            }
        }
        return bad(expr, e, "%s name \"%.*s\" unknown (expected %s)", fs->name, tlen, tok,
                   fs->name_hint);
    }
    if (p == end)
        return bad(expr, e, "%s \"%.*s\": a number is missing at the end", fs->name, ilen, item);
    return bad(expr, e, "%s \"%.*s\": expected a number at \"%.*s\"", fs->name, ilen, item,
               (int)(end - p > 32 ? 32 : end - p), p);
}

/* One list item: '*', 'a', 'a-b', each optionally followed by '/step'. */
static int parse_item(const char *expr, const field_spec *fs, const char *s, size_t n,
                      uint64_t *set, err *e)
{
    const char *p = s, *end = s + n;
    int lo, hi, step = 1, single = 0, rc;
    int ilen = (int)(n > 64 ? 64 : n);

    if (*p == '*') {
        lo = fs->min;
        hi = fs->max;
        p++;
    } else {
        if ((rc = parse_value(expr, fs, s, n, &p, end, &lo, e))) return rc;
        if (p < end && *p == '-') {
            p++;
            if ((rc = parse_value(expr, fs, s, n, &p, end, &hi, e))) return rc;
            if (hi < lo)
                return bad(expr, e, "%s range \"%.*s\" is reversed%s", fs->name, ilen, s,
                           fs->names == wday_names && hi == 0
                               ? " (a range ending on Sunday ends on 7)"
                               : "");
        } else {
            hi = lo;
            single = 1;
        }
    }
    if (p < end && *p == '/') {
        const char *tok = ++p;
        long v = 0;
        while (p < end && is_digit(*p)) {
            if (v < 100000) v = v * 10 + (*p - '0');
            p++;
        }
        if (p == tok)
            return bad(expr, e, "%s \"%.*s\": a step number must follow '/'", fs->name, ilen, s);
        if (v < 1 || v > fs->max)
            return bad(expr, e, "%s step %.*s out of range 1-%d", fs->name,
                       (int)(p - tok > 32 ? 32 : p - tok), tok, fs->max);
        step = (int)v;
        /* "5/15" means "5-59/15", as in cronie and most other crons */
        if (single) hi = fs->max;
    }
    if (p != end)
        return bad(expr, e, "%s \"%.*s\": unexpected \"%.*s\"", fs->name, ilen, s,
                   (int)(end - p > 32 ? 32 : end - p), p);
    for (int v = lo; v <= hi; v += step) *set |= (uint64_t)1 << v;
    return 0;
}

static int parse_field(const char *expr, const field_spec *fs, const char *s, size_t n,
                       uint64_t *bits, err *e)
{
    const char *p = s, *end = s + n;
    uint64_t set = 0;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        if (item_end == p)
            return bad(expr, e, "%s \"%.*s\" has an empty list item", fs->name,
                       (int)(n > 64 ? 64 : n), s);
        int rc = parse_item(expr, fs, p, (size_t)(item_end - p), &set, e);
        if (rc) return rc;
        if (!comma) break;
        p = comma + 1;
    }
    *bits = set;
    return 0;
}

static int parse_fields(const char *expr, const char *s, cron_expr *out, err *e)
{
    const char *start[F_COUNT];
    size_t len[F_COUNT];
    int count = 0;
    const char *p = s;

    for (;;) {
        while (is_blank(*p)) p++;
        if (!*p) break;
        const char *f = p;
        while (*p && !is_blank(*p)) p++;
        if (count < F_COUNT) {
            start[count] = f;
            len[count] = (size_t)(p - f);
        }
        count++;
    }
    if (count != F_COUNT)
        return bad(expr, e,
                   "expected 5 fields (minute hour day-of-month month day-of-week), got %d",
                   count);

    uint64_t bits[F_COUNT];
    for (int i = 0; i < F_COUNT; i++) {
        int rc = parse_field(expr, &fields[i], start[i], len[i], &bits[i], e);
        if (rc) return rc;
    }
    if (bits[F_WDAY] & (1u << 7)) bits[F_WDAY] = (bits[F_WDAY] | 1u) & 0x7f;

    cron_expr c;
    memset(&c, 0, sizeof c);
    c.minute = bits[F_MINUTE];
    c.hour = (uint32_t)bits[F_HOUR];
    c.mday = (uint32_t)bits[F_MDAY];
    c.month = (uint16_t)bits[F_MONTH];
    c.wday = (uint8_t)bits[F_WDAY];
    /* Vixie cron decides "unrestricted" by the field's first character, so
     * "*\/2" in day-of-month still combines with day-of-week by AND; doing
     * the same keeps existing crontab lines meaning what they meant. */
    c.mday_star = start[F_MDAY][0] == '*';
    c.wday_star = start[F_WDAY][0] == '*';
    *out = c;
    return 0;
}

int cron_parse(const char *s, cron_expr *out, err *e)
{
    if (!s) return err_set(e, ERR_INVALID, "cron expression is missing");
    const char *p = s;
    while (is_blank(*p)) p++;
    if (*p != '@') return parse_fields(s, p, out, e);

    const char *name = p;
    while (*p && !is_blank(*p)) p++;
    size_t n = (size_t)(p - name);
    const char *rest = p;
    while (is_blank(*rest)) rest++;
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
        if (strlen(macros[i].name) != n || strncmp(macros[i].name, name, n) != 0) continue;
        if (*rest)
            return bad(s, e, "unexpected \"%.32s\" after %s", rest, macros[i].name);
        return parse_fields(s, macros[i].expansion, out, e);
    }
    return bad(s, e,
               "unknown macro \"%.*s\" (expected @yearly, @annually, @monthly, @weekly, "
               "@daily, @midnight or @hourly)",
               (int)(n > 32 ? 32 : n), name);
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                                */
/* ------------------------------------------------------------------------ */

/* A local wall-clock minute. Fields may run one past their range while
 * searching (min 60, hour 24, mday 0 ...): the search treats a value with no
 * matching bit as "carry into the next larger field". */
typedef struct civil {
    int year, mon, mday, hour, min;
} civil;

static int is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* 0 = Sunday (Sakamoto's method). */
static int weekday(int y, int m, int d)
{
    static const int t[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (m < 3) y--;
    return ((y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7 + 7) % 7;
}

static int day_matches(const cron_expr *c, int mday, int wday)
{
    int dom = (c->mday >> mday) & 1, dow = (c->wday >> wday) & 1;
    if (c->mday_star || c->wday_star) return dom && dow;
    return dom || dow;
}

/* Lowest set bit at or above `from`, or -1. */
static int next_bit(uint64_t mask, int from)
{
    if (from < 0) from = 0;
    if (from > 63) return -1;
    mask >>= from;
    return mask ? from + __builtin_ctzll(mask) : -1;
}

/* Highest set bit at or below `from`, or -1. */
static int prev_bit(uint64_t mask, int from)
{
    if (from < 0) return -1;
    if (from < 63) mask &= ((uint64_t)2 << from) - 1;
    return mask ? 63 - __builtin_clzll(mask) : -1;
}

/* Orders civil minutes, including the out-of-range values the search uses
 * for carrying (each field is offset by one and given room to spare). */
static int64_t civil_key(const civil *cv)
{
    return (((((int64_t)cv->year * 16 + cv->mon + 1) * 64 + cv->mday + 1) * 32 + cv->hour + 1) *
                64 +
            cv->min + 1);
}

static void civil_from_tm(civil *cv, const struct tm *tm)
{
    cv->year = tm->tm_year + 1900;
    cv->mon = tm->tm_mon + 1;
    cv->mday = tm->tm_mday;
    cv->hour = tm->tm_hour;
    cv->min = tm->tm_min;
}

static int shows(const struct tm *tm, const civil *cv)
{
    return tm->tm_year == cv->year - 1900 && tm->tm_mon == cv->mon - 1 &&
           tm->tm_mday == cv->mday && tm->tm_hour == cv->hour && tm->tm_min == cv->min &&
           tm->tm_sec == 0;
}

/* The first instant at which the local clock shows cv (at second 0).
 * A result of mktime that does not read back as cv was moved out of a gap:
 * that minute does not exist. For a repeated minute mktime may return
 * either occurrence; the earlier one, if any, lies one offset change
 * before, and the clock ran ahead of the current offset a day earlier.
 * (Passing tm_isdst = 1 instead would find it too, but in a zone without
 * DST glibc then searches years of time for a DST period: ~100x slower.) */
static int first_occurrence(const civil *cv, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = cv->year - 1900;
    tm.tm_mon = cv->mon - 1;
    tm.tm_mday = cv->mday;
    tm.tm_hour = cv->hour;
    tm.tm_min = cv->min;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (!shows(&tm, cv)) return 0;

    struct tm before;
    time_t day_before = t - 86400;
    if (localtime_r(&day_before, &before) && before.tm_gmtoff > tm.tm_gmtoff) {
        time_t earlier = t - (before.tm_gmtoff - tm.tm_gmtoff);
        if (localtime_r(&earlier, &before) && shows(&before, cv)) t = earlier;
    }
    *out = t;
    return 1;
}

/* The latest civil minute whose first occurrence is at or before t. That is
 * the minute t shows, except during the second pass of a fall-back hour:
 * then the clock has already been further ahead (up to just before the
 * transition), and those later minutes have fired already. */
static int civil_floor(time_t t, civil *cv)
{
    struct tm tm;
    if (!localtime_r(&t, &tm)) return -1;
    civil_from_tm(cv, &tm);

    time_t first;
    if (!first_occurrence(cv, &first) || first >= t - tm.tm_sec) return 0;

    /* Bisect for the transition between the two passes: lo keeps the
     * first pass's UTC offset, hi the second's. */
    struct tm lt;
    if (!localtime_r(&first, &lt)) return 0;
    long off_first = lt.tm_gmtoff;
    time_t lo = first, hi = t;
    while (hi - lo > 1) {
        time_t mid = lo + (hi - lo) / 2;
        if (!localtime_r(&mid, &lt)) return 0;
        if (lt.tm_gmtoff == off_first) lo = mid;
        else hi = mid;
    }
    if (!localtime_r(&lo, &lt)) return 0;
    civil_from_tm(cv, &lt);
    return 0;
}

time_t cron_next(const cron_expr *c, time_t after)
{
    civil cv, lim;
    if (civil_floor(after, &cv)) return -1;
    lim = cv;
    lim.year += 5;
    int64_t lim_key = civil_key(&lim);
    cv.min++;

    while (civil_key(&cv) <= lim_key) {
        int m = next_bit(c->month, cv.mon);
        if (m < 0) {
            cv = (civil){cv.year + 1, 1, 1, 0, 0};
            continue;
        }
        if (m != cv.mon) cv = (civil){cv.year, m, 1, 0, 0};

        int dim = days_in_month(cv.year, cv.mon);
        int wd = weekday(cv.year, cv.mon, cv.mday);
        int d = cv.mday;
        while (d <= dim && !day_matches(c, d, wd)) {
            d++;
            wd = (wd + 1) % 7;
        }
        if (d > dim) {
            cv = (civil){cv.year, cv.mon + 1, 1, 0, 0};
            continue;
        }
        if (d != cv.mday) cv = (civil){cv.year, cv.mon, d, 0, 0};

        int h = next_bit(c->hour, cv.hour);
        if (h < 0) {
            cv = (civil){cv.year, cv.mon, cv.mday + 1, 0, 0};
            continue;
        }
        if (h != cv.hour) {
            cv.hour = h;
            cv.min = 0;
        }

        int mi = next_bit(c->minute, cv.min);
        if (mi < 0) {
            cv.hour++;
            cv.min = 0;
            continue;
        }
        cv.min = mi;
        if (civil_key(&cv) > lim_key) break;

        time_t t;
        if (first_occurrence(&cv, &t)) return t;
        cv.min++; /* in a DST gap: the next matching minute may exist */
    }
    return -1;
}

time_t cron_prev(const cron_expr *c, time_t at)
{
    civil cv, lim;
    if (civil_floor(at, &cv)) return -1;
    lim = cv;
    lim.year -= 5;
    int64_t lim_key = civil_key(&lim);

    while (civil_key(&cv) >= lim_key) {
        int m = prev_bit(c->month, cv.mon);
        if (m < 0) {
            cv = (civil){cv.year - 1, 12, 31, 23, 59};
            continue;
        }
        if (m != cv.mon) cv = (civil){cv.year, m, 31, 23, 59};

        int dim = days_in_month(cv.year, cv.mon);
        if (cv.mday > dim) cv = (civil){cv.year, cv.mon, dim, 23, 59};
        int d = cv.mday;
        int wd = d >= 1 ? weekday(cv.year, cv.mon, d) : 0;
        while (d >= 1 && !day_matches(c, d, wd)) {
            d--;
            wd = (wd + 6) % 7;
        }
        if (d < 1) {
            cv = (civil){cv.year, cv.mon - 1, 31, 23, 59};
            continue;
        }
        if (d != cv.mday) cv = (civil){cv.year, cv.mon, d, 23, 59};

        int h = prev_bit(c->hour, cv.hour);
        if (h < 0) {
            cv = (civil){cv.year, cv.mon, cv.mday - 1, 23, 59};
            continue;
        }
        if (h != cv.hour) {
            cv.hour = h;
            cv.min = 59;
        }

        int mi = prev_bit(c->minute, cv.min);
        if (mi < 0) {
            cv.hour--;
            cv.min = 59;
            continue;
        }
        cv.min = mi;
        if (civil_key(&cv) < lim_key) break;

        time_t t;
        if (first_occurrence(&cv, &t)) return t;
        cv.min--;
    }
    return -1;
}
