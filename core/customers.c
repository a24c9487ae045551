/* customers.c - customer codes, validation of personal data, lookups,
 * status transitions, and the customer records themselves. */
#include "customers.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "date.h"

/* ------------------------------------------------------------------ codes */

/* Damm's quasigroup of order 10: one check digit catches every single-digit
 * error and every transposition of adjacent digits. */
static const unsigned char damm[10][10] = {
    {0, 3, 1, 7, 5, 9, 8, 6, 4, 2}, {7, 0, 9, 2, 1, 5, 4, 8, 6, 3}, {4, 2, 0, 6, 8, 7, 1, 3, 5, 9},
    {1, 7, 5, 0, 9, 8, 3, 4, 2, 6}, {6, 1, 2, 3, 0, 4, 5, 9, 7, 8}, {3, 6, 7, 4, 2, 0, 9, 5, 8, 1},
    {5, 8, 6, 9, 7, 2, 0, 1, 3, 4}, {8, 9, 4, 5, 3, 6, 2, 0, 1, 7}, {9, 4, 3, 8, 6, 1, 7, 2, 0, 5},
    {2, 5, 8, 1, 4, 3, 6, 7, 9, 0},
};

int customers_check_digit(const char *digits)
{
    int interim = 0;
    for (const char *p = digits; *p; p++) interim = damm[interim][*p - '0'];
    return interim;
}

void customers_make_code(const char *prefix, int64_t id, char out[CUSTOMER_CODE_MAX])
{
    char digits[24];
    snprintf(digits, sizeof digits, "%08lld", (long long)id);
    snprintf(out, CUSTOMER_CODE_MAX, "%s%s%d", prefix, digits, customers_check_digit(digits));
}

int customers_parse_code(const char *prefix, const char *code, int64_t *id, err *e)
{
    size_t pl = strlen(prefix), n = code ? strlen(code) : 0;
    if (n < pl + 9 || n > pl + 16 || strncasecmp(code, prefix, pl) != 0 || strspn(code + pl, "0123456789") != n - pl)
        return err_field(e, ERR_INVALID, "invalid_customer_code", "code",
                         "'%s' is not a customer code (expected %s followed by 9 digits, e.g. %s000000017)", code ? code : "",
                         prefix, prefix);
    char digits[24];
    snprintf(digits, sizeof digits, "%.*s", (int)(n - pl - 1), code + pl);
    if (customers_check_digit(digits) != code[n - 1] - '0')
        return err_field(e, ERR_INVALID, "invalid_customer_code", "code",
                         "customer code %s has a wrong check digit: probably a typo", code);
    long long v = 0;
    for (const char *p = digits; *p; p++) v = v * 10 + (*p - '0');
    *id = v;
    return 0;
}

/* ------------------------------------------------------------- validation */

int customers_normalize_mobile(const char *in, char out[16], err *e)
{
    char d[32];
    size_t n = 0;
    for (const char *p = in; *p && n < sizeof d - 1; p++) {
        if (*p == ' ' || *p == '-') continue;
        if (*p == '+' && p == in) continue;
        d[n++] = *p;
    }
    d[n] = '\0';
    const char *s = d;
    if (!strncmp(s, "0086", 4)) s += 4;
    else if (!strncmp(s, "86", 2) && strlen(s) == 13) s += 2;
    if (strlen(s) != 11 || strspn(s, "0123456789") != 11 || s[0] != '1' || s[1] < '3')
        return err_field(e, ERR_INVALID, "invalid_phone", "phone", "'%s' is not a mainland mobile number (11 digits starting 13-19)", in);
    snprintf(out, 16, "%s", s);
    return 0;
}

int customers_normalize_id_card(const char *in, char out[20], err *e)
{
    static const int weight[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[11] = {'1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'};
    char s[20];
    size_t n = strlen(in);
    if (n != 18) return err_field(e, ERR_INVALID, "invalid_id_card", "id_card", "an ID-card number has 18 characters");
    for (size_t i = 0; i < 18; i++) s[i] = (char)toupper((unsigned char)in[i]);
    s[18] = '\0';
    if (strspn(s, "0123456789") != 17 || !(isdigit((unsigned char)s[17]) || s[17] == 'X'))
        return err_field(e, ERR_INVALID, "invalid_id_card", "id_card", "an ID-card number is 17 digits and a digit or X");
    int y = (s[6] - '0') * 1000 + (s[7] - '0') * 100 + (s[8] - '0') * 10 + (s[9] - '0');
    int m = (s[10] - '0') * 10 + (s[11] - '0'), dd = (s[12] - '0') * 10 + (s[13] - '0');
    if (s[0] == '0' || y < 1900 || !date_valid(y, m, dd))
        return err_field(e, ERR_INVALID, "invalid_id_card", "id_card", "the ID-card number has no valid region or birth date");
    int sum = 0;
    for (int i = 0; i < 17; i++) sum += (s[i] - '0') * weight[i];
    if (check[sum % 11] != s[17])
        return err_field(e, ERR_INVALID, "invalid_id_card", "id_card", "the ID-card number's check character is wrong: probably a typo");
    memcpy(out, s, 19);
    return 0;
}

int customers_normalize_email(const char *in, char out[256], err *e)
{
    size_t n = strlen(in);
    const char *at = strchr(in, '@');
    if (n < 3 || n > 254 || !at || at == in || !strchr(at + 1, '.') || strchr(at + 1, '@') || strpbrk(in, " \t<>,;\"") ||
        at[1] == '.' || in[n - 1] == '.')
        return err_field(e, ERR_INVALID, "invalid_email", "email", "'%s' is not an e-mail address", in);
    for (size_t i = 0; i <= n; i++) out[i] = i > (size_t)(at - in) ? (char)tolower((unsigned char)in[i]) : in[i];
    return 0;
}

/* ----------------------------------------------------------------- lookups */

int customers_id_by_code(db *d, const char *code, int64_t *id, err *e)
{
    /* any prefix: the digits carry the id and the check */
    size_t i = 0;
    while (code[i] && !isdigit((unsigned char)code[i]) && i < 8) i++;
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.*s", (int)i, code);
    int rc = customers_parse_code(prefix, code, id, e);
    if (rc) return rc;
    int64_t found;
    rc = db_get_int(d, e, &found, "SELECT id FROM customers WHERE code = ?", "s", code);
    if (rc == ERR_NOTFOUND) return err_field(e, ERR_NOTFOUND, "not_found", "code", "no customer %s", code);
    if (!rc) *id = found;
    return rc;
}

int customers_code_by_id(db *d, int64_t id, char code[CUSTOMER_CODE_MAX], err *e)
{
    db_stmt *s = db_prepare(d, "SELECT code FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        snprintf(code, CUSTOMER_CODE_MAX, "%s", db_col_text(s, 0));
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_set(e, ERR_NOTFOUND, "no customer with id %lld", (long long)id);
    }
    db_done(s);
    return rc;
}

/* ------------------------------------------------------------------ status */

int customers_transition_ok(const char *from, const char *to)
{
    static const char *const allowed[][2] = {
        {"prospect", "active"}, {"prospect", "closed"},   {"active", "overdue"},    {"active", "suspended"},
        {"active", "closed"},   {"overdue", "active"},    {"overdue", "suspended"}, {"overdue", "closed"},
        {"suspended", "active"}, {"suspended", "closed"},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        if (!strcmp(allowed[i][0], from) && !strcmp(allowed[i][1], to)) return 1;
    return 0;
}
