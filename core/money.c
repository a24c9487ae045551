/* money.c - integer money arithmetic (see money.h). */
#include "money.h"

#include <stdio.h>
#include <string.h>

int money_parse(const char *s, size_t n, int64_t *fen, err *e)
{
    size_t i = 0;
    int neg = 0;
    while (i < n && s[i] == ' ') i++;
    while (n > i && s[n - 1] == ' ') n--;
    /* one sign at most, before or after the currency sign: "-¥5" or "¥-5" */
    int signs = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        neg = s[i++] == '-';
        signs++;
    }
    /* "¥" is U+00A5 (C2 A5); the full-width "￥" is U+FFE5 (EF BF A5) */
    if (n - i >= 2 && (unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] == 0xA5) i += 2;
    else if (n - i >= 3 && (unsigned char)s[i] == 0xEF && (unsigned char)s[i + 1] == 0xBF &&
             (unsigned char)s[i + 2] == 0xA5) i += 3;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        if (signs) goto bad;
        neg = s[i++] == '-';
    }
    uint64_t yuan = 0;
    int digits = 0, group = -1; /* group: digits since the last comma, -1 before any comma */
    for (; i < n && s[i] != '.'; i++) {
        char c = s[i];
        if (c == ',') {
            if (digits == 0 || (group >= 0 && group != 3) || (group < 0 && digits > 3))
                goto bad;
            group = 0;
            continue;
        }
        if (c < '0' || c > '9') goto bad;
        if (yuan > (uint64_t)INT64_MAX / 100) goto range;
        yuan = yuan * 10 + (uint64_t)(c - '0');
        digits++;
        if (group >= 0) group++;
    }
    if (digits == 0 || (group >= 0 && group != 3)) goto bad;
    uint64_t cents = 0;
    if (i < n) {
        i++; /* '.' */
        int dec = 0;
        for (; i < n; i++, dec++) {
            if (s[i] < '0' || s[i] > '9') goto bad;
            if (dec >= 2) {
                return err_set(e, ERR_INVALID, "amount \"%.*s\" has more than two decimals",
                               (int)(n > 60 ? 60 : n), s);
            }
            cents = cents * 10 + (uint64_t)(s[i] - '0');
        }
        if (dec == 0) goto bad;
        if (dec == 1) cents *= 10;
    }
    /* a negative amount may reach INT64_MIN, one more than INT64_MAX */
    const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (yuan > (lim - cents) / 100) goto range;
    uint64_t v = yuan * 100 + cents;
    *fen = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
bad:
    return err_set(e, ERR_INVALID, "\"%.*s\" is not an amount (expected e.g. 129.00)",
                   (int)(n > 60 ? 60 : n), s);
range:
    return err_set(e, ERR_INVALID, "amount \"%.*s\" is out of range", (int)(n > 60 ? 60 : n), s);
}

static void fmt(int64_t fen, char *out, int display)
{
    uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
    uint64_t yuan = a / 100;
    unsigned cents = (unsigned)(a % 100);
    char digits[32], grouped[48];
    snprintf(digits, sizeof digits, "%llu", (unsigned long long)yuan);
    const char *y = digits;
    if (display) {
        size_t len = strlen(digits), o = 0;
        for (size_t k = 0; k < len; k++) {
            if (k && (len - k) % 3 == 0) grouped[o++] = ',';
            grouped[o++] = digits[k];
        }
        grouped[o] = '\0';
        y = grouped;
    }
    snprintf(out, MONEY_FMT_MAX, "%s%s%s.%02u", fen < 0 ? "-" : "", display ? "\xC2\xA5" : "", y, cents);
}

void money_format(int64_t fen, char *out) { fmt(fen, out, 0); }
void money_format_display(int64_t fen, char *out) { fmt(fen, out, 1); }

int money_round_frac(__int128 num, __int128 den, round_mode mode, int64_t *out)
{
    if (den == 0) return -1;
    if (den < 0) { num = -num; den = -den; }
    __int128 q = num / den, r = num % den;  /* truncated toward zero */
    if (r != 0) {
        int neg = num < 0;
        __int128 ar = r < 0 ? -r : r;
        __int128 twice = ar * 2;
        int away = 0;
        switch (mode) {
        case ROUND_HALF_UP: away = twice >= den; break;
        case ROUND_HALF_EVEN: away = twice > den || (twice == den && (q % 2 != 0)); break;
        case ROUND_DOWN: away = 0; break;
        case ROUND_UP: away = 1; break;
        case ROUND_FLOOR: away = neg; break;
        case ROUND_CEILING: away = !neg; break;
        }
        if (away) q += neg ? -1 : 1;
    }
    if (q > INT64_MAX || q < INT64_MIN) return -1;
    *out = (int64_t)q;
    return 0;
}

int money_ratio(int64_t amount, int64_t num, int64_t den, round_mode mode, int64_t *out, err *e)
{
    if (den == 0) return err_set(e, ERR_INVALID, "ratio with a zero denominator");
    if (money_round_frac((__int128)amount * num, den, mode, out))
        return err_set(e, ERR_INVALID, "amount out of range");
    return 0;
}

int money_round_mode(const char *name, round_mode *mode)
{
    static const struct { const char *n; round_mode m; } modes[] = {
        {"half_up", ROUND_HALF_UP}, {"half_even", ROUND_HALF_EVEN}, {"down", ROUND_DOWN},
        {"up", ROUND_UP}, {"floor", ROUND_FLOOR}, {"ceiling", ROUND_CEILING},
    };
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (strcmp(name, modes[i].n) == 0) {
            *mode = modes[i].m;
            return 0;
        }
    return -1;
}

int money_add(int64_t a, int64_t b, int64_t *out, err *e)
{
    if (__builtin_add_overflow(a, b, out)) return err_set(e, ERR_INVALID, "amount out of range");
    return 0;
}

int money_parse_plain(const char *s, int64_t *fen)
{
    int64_t v = 0;
    int digits = 0, decimals = -1;
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '.') {
            if (decimals >= 0 || !digits) return -1;
            decimals = 0;
            continue;
        }
        if (*p < '0' || *p > '9' || ++digits > 15) return -1;
        if (decimals >= 0 && ++decimals > 2) return -1;
        v = v * 10 + (*p - '0');
    }
    if (!digits || decimals == 0) return -1;
    for (int d = decimals < 0 ? 0 : decimals; d < 2; d++) v *= 10;
    *fen = v;
    return 0;
}

