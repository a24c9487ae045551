/* customers.c - customer codes, validation of personal data, lookups,
 * status transitions, the customer records themselves, search, phone
 * verification and the 360-degree view (customers.h). */
#include "customers.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog.h"
#include "collect.h"
#include "crypto.h"
#include "date.h"
#include "devices.h"
#include "invoices.h"
#include "ledger.h"
#include "outbox.h"

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
                         "'%s' is not a customer code (expected %s followed by 9 digits, e.g. %s000000013)", code ? code : "",
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
    if (strspn(s, "0123456789") < 17 || !(isdigit((unsigned char)s[17]) || s[17] == 'X'))
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
    /* any prefix: the digits carry the id and the check (codes made under an
     * earlier customer.code_prefix stay valid) */
    size_t i = 0;
    while (code[i] && !isdigit((unsigned char)code[i]) && i < 8) i++;
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.*s", (int)i, code);
    int64_t parsed;
    int rc = customers_parse_code(prefix, code, &parsed, e);
    if (rc) return rc;
    /* by the primary key, comparing the whole code without regard to case:
     * "c000012347" typed in lower case is the same customer */
    db_stmt *s = db_prepare(d, "SELECT code FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, parsed);
    rc = db_step(d, s, e);
    int same = rc == DB_ROW && strcasecmp(db_col_text(s, 0), code) == 0;
    db_done(s);
    if (rc < 0) return rc;
    if (!same) return err_field(e, ERR_NOTFOUND, "not_found", "code", "no customer %s", code);
    *id = parsed;
    return 0;
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

int customers_status_valid(const char *s)
{
    static const char *const all[] = {"prospect", "active", "overdue", "suspended", "closed", NULL};
    for (const char *const *p = all; s && *p; p++)
        if (!strcmp(*p, s)) return 1;
    return 0;
}

void customers_next_statuses(const char *from, char *out, size_t n)
{
    static const char *const all[] = {"prospect", "active", "overdue", "suspended", "closed", NULL};
    size_t used = 0;
    out[0] = '\0';
    for (const char *const *p = all; *p; p++)
        if (customers_transition_ok(from, *p) && used < n) used += (size_t)snprintf(out + used, n - used, "%s%s", used ? ", " : "", *p);
    if (!out[0]) snprintf(out, n, "none");
}

/* --------------------------------------------------- more validation */

int customers_normalize_phone2(const char *in, char out[16], err *e)
{
    if (customers_normalize_mobile(in, out, NULL) == 0) return 0;
    /* a landline: area code (0 and 2-3 digits) and a 7-8 digit number, with
     * blanks, dashes or parentheses anywhere; +86 or 0086 stands for the 0 */
    char d[32];
    size_t n = 0;
    int intl = 0;
    const char *p = in;
    if (*p == '+') {
        intl = 1;
        p++;
    }
    for (; *p && n < sizeof d - 1; p++) {
        if (*p == ' ' || *p == '-' || *p == '(' || *p == ')') continue;
        if (!isdigit((unsigned char)*p)) {
            n = 0;
            break;
        }
        d[n++] = *p;
    }
    d[n] = '\0';
    const char *s = d;
    if (intl && n >= 2 && d[0] == '8' && d[1] == '6') {
        s += 2;
    } else if (!intl && n >= 4 && d[0] == '0' && d[1] == '0' && d[2] == '8' && d[3] == '6') {
        s += 4;
        intl = 1;
    } else if (intl) {
        n = 0;
    }
    char num[24];
    snprintf(num, sizeof num, "%s%s", intl ? "0" : "", s);
    size_t len = strlen(num);
    if (n == 0 || len < 10 || len > 12 || num[0] != '0' || num[1] == '0')
        return err_field(e, ERR_INVALID, "invalid_phone", "phone2",
                         "'%s' is neither a mainland mobile nor a landline with its area code (0571-88886666)", in);
    snprintf(out, 16, "%s", num);
    return 0;
}

int customers_normalize_tax_id(const char *in, char out[20], err *e)
{
    static const char chars[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    static const int weight[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
    char s[20];
    size_t n = strlen(in);
    if (n != 18)
        return err_field(e, ERR_INVALID, "invalid_tax_id", "tax_id", "a unified social credit code has 18 characters");
    int sum = 0, value[18];
    for (size_t i = 0; i < 18; i++) {
        s[i] = (char)toupper((unsigned char)in[i]);
        const char *at = s[i] ? strchr(chars, s[i]) : NULL;
        if (!at)
            return err_field(e, ERR_INVALID, "invalid_tax_id", "tax_id",
                             "a unified social credit code has only digits and the letters A-H J-N P-R T U W-Y (no I, O, S, V, Z)");
        value[i] = (int)(at - chars);
    }
    s[18] = '\0';
    if (strspn(s + 2, "0123456789") < 6)
        return err_field(e, ERR_INVALID, "invalid_tax_id", "tax_id",
                         "characters 3-8 of a unified social credit code are the region's digits");
    for (int i = 0; i < 17; i++) sum += value[i] * weight[i];
    int check = (31 - sum % 31) % 31;
    if (value[17] != check)
        return err_field(e, ERR_INVALID, "invalid_tax_id", "tax_id",
                         "the unified social credit code's check character is wrong: probably a typo");
    memcpy(out, s, 19);
    return 0;
}

int customers_tag_valid(const char *tag)
{
    size_t n = strlen(tag);
    return n >= 1 && n <= 32 && strspn(tag, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* ------------------------------------------------- records: input */

#define NAME_MAX_CHARS 64
#define COMPANY_MAX_CHARS 128
#define PART_MAX_CHARS 64
#define NOTES_MAX_CHARS 2000
#define MAX_TAGS 32

enum { A_PROVINCE, A_CITY, A_DISTRICT, A_STREET, A_COMMUNITY, A_BUILDING, A_UNIT, A_FLOOR, A_ROOM, A_GIS, A_COUNT };
static const char *const addr_keys[A_COUNT] = {"province", "city", "district", "street", "community",
                                                "building", "unit", "floor", "room", "gis_code"};
#define A_REQUIRED 3   /* province, city, district */

typedef struct addr_in {
    const char *part[A_COUNT];   /* NULL: not given (optional parts are stored as "") */
} addr_in;

/* A customer's fields once validated and normalised. */
typedef struct cust_in {
    const char *type, *name, *company_name, *tax_id, *notes, *status;
    char id_card[20], phone[16], phone2[16], email[256];   /* "" for none */
    addr_in addr;
    int has_billing;
    addr_in billing;
    const char *tags[MAX_TAGS];
    int ntags;
} cust_in;

static const char *const input_keys[] = {"type",   "name",    "company_name", "tax_id",          "id_card", "phone",
                                         "phone2", "email",   "address",      "billing_address", "tags",    "notes",
                                         "status", NULL};

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

/* A text input: a string without control characters (notes may hold line
 * breaks), trimmed of surrounding blanks (ASCII and the ideographic space
 * of Chinese input methods), at most max characters. Absent, null or blank:
 * *out NULL, an error when required. */
static int text_in(jv_arena *a, const jv *v, const char *field, size_t max, int required, int multiline,
                   const char **out, err *e)
{
    *out = NULL;
    if (!v || v->kind == JV_NULL) {
        if (required) return err_field(e, ERR_INVALID, "missing_field", field, "%s is required", field);
        return 0;
    }
    if (v->kind != JV_STR) return err_field(e, ERR_INVALID, "invalid_field", field, "%s must be a string", field);
    const char *s = v->u.str.s;
    size_t n = v->u.str.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(multiline && (c == '\n' || c == '\t' || c == '\r'))) || c == 0x7f)
            return err_field(e, ERR_INVALID, "invalid_field", field, "%s must not contain control characters", field);
    }
    for (;;) {
        if (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) s++, n--;
        else if (n >= 3 && !memcmp(s, "\xE3\x80\x80", 3)) s += 3, n -= 3;
        else break;
    }
    for (;;) {
        if (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
        else if (n >= 3 && !memcmp(s + n - 3, "\xE3\x80\x80", 3)) n -= 3;
        else break;
    }
    if (!n) {
        if (required) return err_field(e, ERR_INVALID, "missing_field", field, "%s must not be empty", field);
        return 0;
    }
    if (utf8_chars(s, n) > max)
        return err_field(e, ERR_INVALID, "invalid_field", field, "%s has more than %zu characters", field, max);
    if (!(*out = jv_strdup(a, s, n))) return ERR_NOMEM_RET(e);
    return 0;
}

/* Renames the field of an error made for a bare name ("phone") to the
 * field's path in the request. */
static int at_field(err *e, int rc, const char *field)
{
    if (rc && e) snprintf(e->field, sizeof e->field, "%s", field);
    return rc;
}

/* Runs a normaliser over a text input; *out stays "" for none. */
static int normalized_in(jv_arena *a, const jv *v, const char *field, size_t maxlen,
                         int (*norm)(const char *, char *, err *), char *out, err *e)
{
    const char *t;
    out[0] = '\0';
    int rc = text_in(a, v, field, 256, 0, 0, &t, e);
    if (rc || !t) return rc;
    if (strlen(t) >= maxlen) return err_field(e, ERR_INVALID, "invalid_field", field, "%s is too long", field);
    return at_field(e, norm(t, out, e), field);
}

static int email_norm(const char *in, char *out, err *e) { return customers_normalize_email(in, out, e); }
static int mobile_norm(const char *in, char *out, err *e) { return customers_normalize_mobile(in, out, e); }
static int phone2_norm(const char *in, char *out, err *e) { return customers_normalize_phone2(in, out, e); }
static int idcard_norm(const char *in, char *out, err *e) { return customers_normalize_id_card(in, out, e); }
static int taxid_norm(const char *in, char *out, err *e) { return customers_normalize_tax_id(in, out, e); }

static int addr_in_parse(jv_arena *a, const jv *v, const char *field, addr_in *out, err *e)
{
    memset(out, 0, sizeof *out);
    if (!v || v->kind != JV_OBJ)
        return err_field(e, ERR_INVALID, v ? "invalid_field" : "missing_field", field,
                         "%s must be an object with province, city, district and the finer parts", field);
    char path[96];
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const jv_member *m = &v->u.obj.m[i];
        int k = 0;
        while (k < A_COUNT && (strlen(addr_keys[k]) != m->klen || memcmp(addr_keys[k], m->key, m->klen))) k++;
        snprintf(path, sizeof path, "%s.%.*s", field, (int)m->klen, m->key);
        if (k == A_COUNT) return err_field(e, ERR_INVALID, "unknown_field", path, "unknown field '%s'", path);
    }
    for (int k = 0; k < A_COUNT; k++) {
        snprintf(path, sizeof path, "%s.%s", field, addr_keys[k]);
        int rc = text_in(a, jv_get(v, addr_keys[k]), path, PART_MAX_CHARS, k < A_REQUIRED, 0, &out->part[k], e);
        if (rc) return rc;
    }
    return 0;
}

/* Validates a whole customer (API shape). `creating` allows type and
 * status; an update validates the current record merged with the patch. */
static int cust_in_parse(jv_arena *a, const jv *in, int creating, cust_in *c, err *e)
{
    memset(c, 0, sizeof *c);
    if (!in || in->kind != JV_OBJ) return err_field(e, ERR_INVALID, "invalid_body", "", "expected a JSON object");
    for (size_t i = 0; i < in->u.obj.n; i++) {
        const char *k = in->u.obj.m[i].key;
        const char *const *p = input_keys;
        while (*p && strcmp(*p, k)) p++;
        if (!*p || (!creating && !strcmp(k, "status")))
            return err_field(e, ERR_INVALID, "unknown_field", k, "unknown field '%s'", k);
    }
    int rc = text_in(a, jv_get(in, "type"), "type", 16, 0, 0, &c->type, e);
    if (rc) return rc;
    if (!c->type) c->type = "residential";
    if (strcmp(c->type, "residential") && strcmp(c->type, "business"))
        return err_field(e, ERR_INVALID, "invalid_field", "type", "type is residential or business");
    int business = !strcmp(c->type, "business");
    if ((rc = text_in(a, jv_get(in, "name"), "name", NAME_MAX_CHARS, 1, 0, &c->name, e))) return rc;
    if ((rc = text_in(a, jv_get(in, "company_name"), "company_name", COMPANY_MAX_CHARS, business, 0, &c->company_name, e)))
        return rc;
    char tax[20];
    if ((rc = normalized_in(a, jv_get(in, "tax_id"), "tax_id", 20, taxid_norm, tax, e))) return rc;
    if (business && !tax[0])
        return err_field(e, ERR_INVALID, "missing_field", "tax_id",
                         "a business customer needs its unified social credit code (it goes on invoices)");
    if (!business && (c->company_name || tax[0]))
        return err_field(e, ERR_INVALID, "invalid_field", c->company_name ? "company_name" : "tax_id",
                         "%s is only for business customers", c->company_name ? "company_name" : "tax_id");
    if (tax[0] && !(c->tax_id = jv_strdup(a, tax, strlen(tax)))) return ERR_NOMEM_RET(e);
    if ((rc = normalized_in(a, jv_get(in, "id_card"), "id_card", 20, idcard_norm, c->id_card, e))) return rc;
    if ((rc = normalized_in(a, jv_get(in, "phone"), "phone", 32, mobile_norm, c->phone, e))) return rc;
    if ((rc = normalized_in(a, jv_get(in, "phone2"), "phone2", 32, phone2_norm, c->phone2, e))) return rc;
    if ((rc = normalized_in(a, jv_get(in, "email"), "email", 255, email_norm, c->email, e))) return rc;
    if ((rc = addr_in_parse(a, jv_get(in, "address"), "address", &c->addr, e))) return rc;
    const jv *b = jv_get(in, "billing_address");
    if (b && b->kind != JV_NULL) {
        if ((rc = addr_in_parse(a, b, "billing_address", &c->billing, e))) return rc;
        c->has_billing = 1;
    }
    const jv *tags = jv_get(in, "tags");
    if (tags && tags->kind != JV_NULL) {
        if (tags->kind != JV_ARR) return err_field(e, ERR_INVALID, "invalid_field", "tags", "tags must be a list of strings");
        for (size_t i = 0; i < tags->u.arr.n; i++) {
            const jv *t = tags->u.arr.items[i];
            char path[32];
            snprintf(path, sizeof path, "tags[%zu]", i);
            if (t->kind != JV_STR || strlen(t->u.str.s) != t->u.str.len || !customers_tag_valid(t->u.str.s))
                return err_field(e, ERR_INVALID, "invalid_tag", path, "a tag is 1-32 of a-z 0-9 _ -");
            int dup = 0;
            for (int k = 0; k < c->ntags && !dup; k++) dup = !strcmp(c->tags[k], t->u.str.s);
            if (dup) continue; /* a tag is there or not: repeating it changes nothing */
            if (c->ntags == MAX_TAGS)
                return err_field(e, ERR_INVALID, "invalid_field", "tags", "at most %d tags", MAX_TAGS);
            c->tags[c->ntags++] = t->u.str.s;
        }
    }
    if ((rc = text_in(a, jv_get(in, "notes"), "notes", NOTES_MAX_CHARS, 0, 1, &c->notes, e))) return rc;
    if (creating) {
        if ((rc = text_in(a, jv_get(in, "status"), "status", 16, 0, 0, &c->status, e))) return rc;
        if (!c->status) c->status = "prospect";
        /* a new customer is a prospect, or active when taken over from an
         * earlier system; every other status is reached through transitions */
        if (strcmp(c->status, "prospect") && strcmp(c->status, "active"))
            return err_field(e, ERR_INVALID, "invalid_field", "status", "a new customer is prospect (the default) or active");
    }
    return 0;
}

/* ------------------------------------------------ records: storage */

/* Encrypts a value for its column (nothing for ""); idx gets the keyed
 * lookup hash of kind when kind is given. */
static int seal(const vault *v, const char *aad, const char *kind, const char *plain, buf *enc, char idx[VAULT_INDEX_HEX],
                err *e)
{
    if (idx) idx[0] = '\0';
    if (!plain[0]) return 0;
    if (!v) return err_set(e, ERR_INTERNAL, "no key file: personal data cannot be stored");
    int rc = vault_encrypt(v, aad, plain, strlen(plain), enc, e);
    if (!rc && idx) {
        vault_index(v, kind, plain, idx);
        if (!idx[0]) rc = err_set(e, ERR_INTERNAL, "the lookup hash of %s could not be computed", aad);
    }
    return rc;
}

static const char *or_null(const buf *b) { return b->len ? buf_cstr(b) : NULL; }
static const char *idx_or_null(const char *idx) { return idx[0] ? idx : NULL; }

/* ERR_CONFLICT naming the customer (other than self) who already has this
 * ID card or primary phone. */
static int check_duplicates(db *d, int64_t self, const char *idcard_idx, const char *phone_idx, err *e)
{
    for (int k = 0; k < 2; k++) {
        const char *idx = k == 0 ? idcard_idx : phone_idx;
        if (!idx[0]) continue;
        db_stmt *s = k == 0 ? db_prepare(d, "SELECT code FROM customers WHERE id_card_idx = ? AND id <> ?", e)
                            : db_prepare(d, "SELECT code FROM customers WHERE phone_idx = ? AND id <> ?", e);
        if (!s) return e->code;
        db_bind_text(s, 1, idx);
        db_bind_int(s, 2, self);
        int rc = db_step(d, s, e);
        char code[CUSTOMER_CODE_MAX] = "";
        if (rc == DB_ROW) snprintf(code, sizeof code, "%s", db_col_text(s, 0));
        db_done(s);
        if (rc < 0) return rc;
        if (code[0])
            return err_field(e, ERR_CONFLICT, "duplicate", k == 0 ? "id_card" : "phone",
                             "this %s already belongs to customer %s", k == 0 ? "ID-card number" : "phone number", code);
    }
    return 0;
}

static int write_address(db *d, int64_t id, const char *kind, const addr_in *ad, err *e)
{
    const char *p[A_COUNT];
    for (int k = 0; k < A_COUNT; k++) p[k] = ad->part[k] ? ad->part[k] : (k == A_GIS ? NULL : "");
    /* an upsert keeps the row (and its id) of an address that changes */
    return db_run(d, e,
                  "INSERT INTO addresses (customer_id, kind, province, city, district, street, community, building, unit, "
                  "floor, room, gis_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (customer_id, kind) DO UPDATE SET province = excluded.province, city = excluded.city, "
                  "district = excluded.district, street = excluded.street, community = excluded.community, "
                  "building = excluded.building, unit = excluded.unit, floor = excluded.floor, room = excluded.room, "
                  "gis_code = excluded.gis_code",
                  "isssssssssss", id, kind, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]);
}

/* fresh: a customer just inserted, with no billing address or tags to
 * remove */
static int write_details(db *d, int64_t id, const cust_in *c, int fresh, err *e)
{
    int rc = write_address(d, id, "service", &c->addr, e);
    if (!rc && c->has_billing) rc = write_address(d, id, "billing", &c->billing, e);
    if (!rc && !c->has_billing && !fresh)
        rc = db_run(d, e, "DELETE FROM addresses WHERE customer_id = ? AND kind = 'billing'", "i", id);
    if (!rc && !fresh) rc = db_run(d, e, "DELETE FROM customer_tags WHERE customer_id = ?", "i", id);
    for (int i = 0; !rc && i < c->ntags; i++)
        rc = db_run(d, e, "INSERT INTO customer_tags (customer_id, tag) VALUES (?, ?)", "is", id, c->tags[i]);
    return rc;
}

/* Encrypted forms and lookup hashes of a customer's personal data. */
typedef struct sealed {
    buf id_card, phone, phone2, email;
    char id_card_idx[VAULT_INDEX_HEX], phone_idx[VAULT_INDEX_HEX], phone2_idx[VAULT_INDEX_HEX];
} sealed;

static void sealed_free(sealed *s)
{
    buf_free(&s->id_card);
    buf_free(&s->phone);
    buf_free(&s->phone2);
    buf_free(&s->email);
}

static int seal_all(const vault *v, const cust_in *c, sealed *s, err *e)
{
    memset(s, 0, sizeof *s);
    int rc = seal(v, "customers.id_card", "idcard", c->id_card, &s->id_card, s->id_card_idx, e);
    if (!rc) rc = seal(v, "customers.phone", "phone", c->phone, &s->phone, s->phone_idx, e);
    /* the same kind as the primary phone: one number finds either */
    if (!rc) rc = seal(v, "customers.phone2", "phone", c->phone2, &s->phone2, s->phone2_idx, e);
    if (!rc) rc = seal(v, "customers.email", NULL, c->email, &s->email, NULL, e);
    return rc;
}

/* A customer validated, normalised and sealed: everything customers_create
 * does before it touches the database, self-contained (the strings live in
 * its own arena), so that it can be made on another thread. */
struct customer_prepared {
    jv_arena a;
    cust_in c;
    sealed z;
};

void customers_prepared_free(customer_prepared *p)
{
    if (!p) return;
    sealed_free(&p->z);
    jv_arena_free(&p->a);
    free(p);
}

int customers_prepare(const vault *v, const jv *in, customer_prepared **out, err *e)
{
    *out = NULL;
    customer_prepared *p = calloc(1, sizeof *p);
    if (!p) return ERR_NOMEM_RET(e);
    jv_arena_init(&p->a, 0);
    int rc = cust_in_parse(&p->a, in, 1, &p->c, e);
    /* the parse keeps the tags as the input's strings: copied, so that
     * the input may go before the prepared customer does */
    for (int i = 0; !rc && i < p->c.ntags; i++)
        if (!(p->c.tags[i] = jv_strdup(&p->a, p->c.tags[i], strlen(p->c.tags[i])))) rc = ERR_NOMEM_RET(e);
    if (!rc) rc = seal_all(v, &p->c, &p->z, e);
    if (rc) {
        customers_prepared_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void customers_prepared_place(const customer_prepared *p, const char **city, const char **district)
{
    *city = p->c.addr.part[A_CITY];
    *district = p->c.addr.part[A_DISTRICT];
}

int customers_insert(db *d, const char *code_prefix, const customer_prepared *p, const char *by, int64_t next_id, int64_t *id,
                     err *e)
{
    const cust_in *c = &p->c;
    const sealed *z = &p->z;
    char now[25], tmp[40], code[CUSTOMER_CODE_MAX];
    db_now(now);
    int rc = 0;
    if (next_id > 0) {
        customers_make_code(code_prefix, next_id, code);
    } else {
        /* the code depends on the id, known only after the insert: a unique
         * placeholder first, the real code in the same transaction */
        unsigned char r[12];
        char hex[25];
        if (crypto_random(r, sizeof r)) return err_set(e, ERR_INTERNAL, "no randomness for a placeholder code");
        crypto_hex(r, sizeof r, hex);
        snprintf(tmp, sizeof tmp, "new-%s", hex);
    }
    /* duplicates are caught by the unique indexes and only then explained:
     * one statement instead of two lookups and an insert */
    db_stmt *s = next_id > 0 ? db_prepare(d,
                                          "INSERT INTO customers (id, code, type, name, company_name, tax_id, id_card_enc, "
                                          "id_card_idx, phone_enc, phone_idx, phone2_enc, phone2_idx, email_enc, status, notes, "
                                          "created_at, created_by, updated_at) "
                                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                          e)
                             : db_prepare(d,
                                          "INSERT INTO customers (code, type, name, company_name, tax_id, id_card_enc, "
                                          "id_card_idx, phone_enc, phone_idx, phone2_enc, phone2_idx, email_enc, status, notes, "
                                          "created_at, created_by, updated_at) "
                                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                          e);
    if (!s) return e->code;
    const char *vals[17] = {next_id > 0 ? code : tmp,
                            c->type,
                            c->name,
                            c->company_name,
                            c->tax_id,
                            or_null(&z->id_card),
                            idx_or_null(z->id_card_idx),
                            or_null(&z->phone),
                            idx_or_null(z->phone_idx),
                            or_null(&z->phone2),
                            idx_or_null(z->phone2_idx),
                            or_null(&z->email),
                            c->status,
                            c->notes,
                            now,
                            by ? by : "system",
                            now};
    int first = 1;
    if (next_id > 0) db_bind_int(s, first++, next_id);
    for (int i = 0; i < 17; i++) db_bind_text(s, first + i, vals[i]);
    rc = db_step(d, s, e);
    db_done(s);
    if (rc == DB_DONE) rc = 0;
    else if (rc == ERR_CONFLICT) {
        err ce;
        if (check_duplicates(d, 0, z->id_card_idx, z->phone_idx, &ce)) {
            *e = ce;
            return e->code;
        }
    }
    if (rc) return rc;
    int64_t nid = next_id > 0 ? next_id : db_last_id(d);
    if (next_id <= 0) {
        customers_make_code(code_prefix, nid, code);
        rc = db_run(d, e, "UPDATE customers SET code = ? WHERE id = ?", "si", code, nid);
    }
    if (!rc) rc = write_details(d, nid, c, 1, e);
    if (!rc) *id = nid;
    return rc;
}

int customers_create(db *d, const vault *v, const char *code_prefix, const jv *in, const char *by, int64_t *id, err *e)
{
    customer_prepared *p;
    int rc = customers_prepare(v, in, &p, e);
    if (rc) return rc;
    rc = customers_insert(d, code_prefix, p, by, 0, id, e);
    customers_prepared_free(p);
    return rc;
}

/* ------------------------------------------------- records: reading */

static int decrypted(const vault *v, jv_arena *a, const char *aad, db_stmt *s, int col, jv **out, err *e)
{
    *out = NULL;
    if (db_col_is_null(s, col)) return (*out = jv_null(a)) ? 0 : ERR_NOMEM_RET(e);
    if (!v) return err_set(e, ERR_INTERNAL, "no key file: %s cannot be read", aad);
    buf plain = {0};
    int rc = vault_decrypt(v, aad, db_col_text(s, col), &plain, e);
    /* a value that does not decrypt is the server's fault (a lost key, a
     * damaged row), never the caller's: not a 403 */
    if (rc) {
        char why[sizeof e->msg];
        snprintf(why, sizeof why, "%s", e->msg);
        rc = err_set(e, ERR_INTERNAL, "%s cannot be decrypted: %s", aad, why);
    } else if (!(*out = jv_strn(a, buf_cstr(&plain), plain.len))) rc = ERR_NOMEM_RET(e);
    if (plain.data) memset(plain.data, 0, plain.len);
    buf_free(&plain);
    return rc;
}

static jv *text_or_null(jv_arena *a, db_stmt *s, int col)
{
    return db_col_is_null(s, col) ? jv_null(a) : jv_strn(a, db_col_text(s, col), db_col_bytes(s, col));
}

static int address_jv(db_stmt *s, jv_arena *a, jv **out)
{
    jv *o = jv_obj_sized(a, A_COUNT);
    if (!o) return ERR_NOMEM;
    for (int k = 0; k < A_COUNT; k++)
        if (jv_obj_set(a, o, addr_keys[k], text_or_null(a, s, 1 + k))) return ERR_NOMEM;
    *out = o;
    return 0;
}

int customers_get(db *d, const vault *v, int64_t id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT code, type, name, company_name, tax_id, id_card_enc, phone_enc, phone_verified_at, "
                            "phone2_enc, email_enc, status, notes, created_at, created_by, updated_at, erased_at "
                            "FROM customers WHERE id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_field(e, ERR_NOTFOUND, "not_found", "code", "no customer with id %lld", (long long)id);
    }
    jv *o = jv_obj_sized(a, 24), *idc = NULL, *ph = NULL, *ph2 = NULL, *em = NULL;
    rc = o ? 0 : ERR_NOMEM_RET(e);
    if (!rc) rc = decrypted(v, a, "customers.id_card", s, 5, &idc, e);
    if (!rc) rc = decrypted(v, a, "customers.phone", s, 6, &ph, e);
    if (!rc) rc = decrypted(v, a, "customers.phone2", s, 8, &ph2, e);
    if (!rc) rc = decrypted(v, a, "customers.email", s, 9, &em, e);
    if (!rc) {
        int bad = 0;
        /* "id" is the code too: the one public identifier (the audit of
         * clear views names resources by their "id") */
        bad |= jv_obj_set(a, o, "id", text_or_null(a, s, 0));
        bad |= jv_obj_set(a, o, "code", text_or_null(a, s, 0));
        bad |= jv_obj_set(a, o, "type", text_or_null(a, s, 1));
        bad |= jv_obj_set(a, o, "name", text_or_null(a, s, 2));
        bad |= jv_obj_set(a, o, "company_name", text_or_null(a, s, 3));
        bad |= jv_obj_set(a, o, "tax_id", text_or_null(a, s, 4));
        bad |= jv_obj_set(a, o, "id_card", idc);
        bad |= jv_obj_set(a, o, "phone", ph);
        bad |= jv_obj_set_bool(a, o, "phone_verified", !db_col_is_null(s, 7));
        bad |= jv_obj_set(a, o, "phone_verified_at", text_or_null(a, s, 7));
        bad |= jv_obj_set(a, o, "phone2", ph2);
        bad |= jv_obj_set(a, o, "email", em);
        bad |= jv_obj_set(a, o, "status", text_or_null(a, s, 10));
        bad |= jv_obj_set(a, o, "notes", text_or_null(a, s, 11));
        bad |= jv_obj_set(a, o, "created_at", text_or_null(a, s, 12));
        bad |= jv_obj_set(a, o, "created_by", text_or_null(a, s, 13));
        bad |= jv_obj_set(a, o, "updated_at", text_or_null(a, s, 14));
        bad |= jv_obj_set(a, o, "erased_at", text_or_null(a, s, 15));
        if (bad) rc = ERR_NOMEM_RET(e);
    }
    db_done(s);
    if (rc) return rc;
    jv *service = NULL, *billing = NULL;
    s = db_prepare(d,
                   "SELECT kind, province, city, district, street, community, building, unit, floor, room, gis_code "
                   "FROM addresses WHERE customer_id = ?",
                   e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *ad;
        if (address_jv(s, a, &ad)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
        if (!strcmp(db_col_text(s, 0), "service")) service = ad;
        else billing = ad;
    }
    db_done(s);
    if (rc < 0) return rc;
    jv *tags = jv_arr(a);
    if (!tags) return ERR_NOMEM_RET(e);
    s = db_prepare(d, "SELECT tag FROM customer_tags WHERE customer_id = ? ORDER BY tag", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    rc = 0;
    while ((rc = db_step(d, s, e)) == DB_ROW)
        if (jv_arr_push(a, tags, jv_str(a, db_col_text(s, 0)))) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    db_done(s);
    if (rc < 0) return rc;
    if (jv_obj_set(a, o, "address", service ? service : jv_null(a)) ||
        jv_obj_set(a, o, "billing_address", billing ? billing : jv_null(a)) || jv_obj_set(a, o, "tags", tags))
        return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}

/* ------------------------------------------------ records: changes */

/* Sets key in obj, replacing a member already there. */
static int obj_put(jv_arena *a, jv *obj, const char *key, jv *val)
{
    if (!val) return ERR_NOMEM;
    for (size_t i = 0; i < obj->u.obj.n; i++)
        if (!strcmp(obj->u.obj.m[i].key, key)) {
            obj->u.obj.m[i].val = val;
            return 0;
        }
    return jv_obj_set(a, obj, key, val);
}

/* The current address merged with the patch's parts (null clears a part). */
static jv *merge_address(jv_arena *a, const jv *cur, const jv *patch)
{
    if (patch->kind != JV_OBJ || !cur || cur->kind != JV_OBJ) return jv_copy(a, patch);
    jv *m = jv_obj(a);
    if (!m) return NULL;
    for (size_t i = 0; i < cur->u.obj.n; i++)
        if (jv_obj_set(a, m, cur->u.obj.m[i].key, cur->u.obj.m[i].val)) return NULL;
    for (size_t i = 0; i < patch->u.obj.n; i++)
        if (obj_put(a, m, patch->u.obj.m[i].key, patch->u.obj.m[i].val)) return NULL;
    return m;
}

int customers_update(db *d, const vault *v, int64_t id, const jv *patch, jv_arena *ba, jv **before, err *e)
{
    if (!patch || patch->kind != JV_OBJ) return err_field(e, ERR_INVALID, "invalid_body", "", "expected a JSON object");
    for (size_t i = 0; i < patch->u.obj.n; i++) {
        const char *k = patch->u.obj.m[i].key;
        if (!strcmp(k, "type"))
            return err_field(e, ERR_INVALID, "immutable_field", "type",
                             "a customer's type cannot change: close the customer and create a new one");
        if (!strcmp(k, "status"))
            return err_field(e, ERR_INVALID, "immutable_field", "status",
                             "status changes go through POST /api/v1/customers/{code}/status");
        const char *const *p = input_keys;
        while (*p && strcmp(*p, k)) p++;
        if (!*p) return err_field(e, ERR_INVALID, "unknown_field", k, "unknown field '%s'", k);
    }
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *cur = NULL, *merged = NULL;
    cust_in c;
    sealed z;
    memset(&z, 0, sizeof z);
    /* cur lives in the caller's arena when the caller wants it back: the
     * merged record below points into it, and it outlives a */
    int rc = customers_get(d, v, id, before ? ba : &a, &cur, e);
    if (!rc && before) *before = cur;
    /* an erased customer's personal data is gone for good (PIPL): nothing
     * may bring it back */
    const jv *erased = rc ? NULL : jv_get(cur, "erased_at");
    if (erased && erased->kind == JV_STR)
        rc = err_field(e, ERR_CONFLICT, "erased", "code", "customer %s was erased on %.10s and cannot change",
                       jv_get(cur, "code")->u.str.s, erased->u.str.s);
    if (!rc && !(merged = jv_obj(&a))) rc = ERR_NOMEM_RET(e);
    /* the current record in the input's shape, then the patch over it */
    for (const char *const *k = input_keys; !rc && *k; k++) {
        if (!strcmp(*k, "status")) continue;
        const jv *pv = jv_get(patch, *k), *cv = jv_get(cur, *k);
        jv *val = NULL;
        if (pv && (!strcmp(*k, "address") || !strcmp(*k, "billing_address")) && pv->kind != JV_NULL)
            val = merge_address(&a, cv && cv->kind != JV_NULL ? cv : NULL, pv);
        else if (pv)
            val = (jv *)pv;
        else if (cv)
            val = (jv *)cv;
        else
            continue;
        if (obj_put(&a, merged, *k, val)) rc = ERR_NOMEM_RET(e);
    }
    if (!rc) rc = cust_in_parse(&a, merged, 0, &c, e);
    if (!rc) rc = seal_all(v, &c, &z, e);
    if (!rc) rc = check_duplicates(d, id, z.id_card_idx, z.phone_idx, e);
    if (!rc) {
        const jv *old = jv_get(cur, "phone");
        const char *oldp = old && old->kind == JV_STR ? old->u.str.s : "";
        /* a verification is of a number: a new number is not verified */
        int64_t phone_changed = strcmp(oldp, c.phone) != 0;
        char now[25];
        db_now(now);
        db_stmt *s = db_prepare(d,
                                "UPDATE customers SET name = ?, company_name = ?, tax_id = ?, id_card_enc = ?, "
                                "id_card_idx = ?, phone_enc = ?, phone_idx = ?, "
                                "phone_verified_at = CASE WHEN ? = 1 THEN NULL ELSE phone_verified_at END, "
                                "phone2_enc = ?, phone2_idx = ?, email_enc = ?, notes = ?, updated_at = ? WHERE id = ?",
                                e);
        if (!s) rc = e->code;
        else {
            db_bind_text(s, 1, c.name);
            db_bind_text(s, 2, c.company_name);
            db_bind_text(s, 3, c.tax_id);
            db_bind_text(s, 4, or_null(&z.id_card));
            db_bind_text(s, 5, idx_or_null(z.id_card_idx));
            db_bind_text(s, 6, or_null(&z.phone));
            db_bind_text(s, 7, idx_or_null(z.phone_idx));
            db_bind_int(s, 8, phone_changed);
            db_bind_text(s, 9, or_null(&z.phone2));
            db_bind_text(s, 10, idx_or_null(z.phone2_idx));
            db_bind_text(s, 11, or_null(&z.email));
            db_bind_text(s, 12, c.notes);
            db_bind_text(s, 13, now);
            db_bind_int(s, 14, id);
            rc = db_step(d, s, e);
            db_done(s);
            if (rc == DB_DONE) rc = 0;
        }
    }
    if (!rc) rc = write_details(d, id, &c, 0, e);
    sealed_free(&z);
    jv_arena_free(&a);
    return rc;
}

int customers_set_status(db *d, int64_t id, const char *status, err *e)
{
    if (!customers_status_valid(status))
        return err_field(e, ERR_INVALID, "invalid_field", "status",
                         "status is one of prospect, active, overdue, suspended, closed");
    db_stmt *s = db_prepare(d, "SELECT status FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    char from[16] = "";
    if (rc == DB_ROW) snprintf(from, sizeof from, "%s", db_col_text(s, 0));
    db_done(s);
    if (rc < 0) return rc;
    if (rc == DB_DONE) return err_field(e, ERR_NOTFOUND, "not_found", "code", "no customer with id %lld", (long long)id);
    if (!customers_transition_ok(from, status)) {
        char next[96];
        customers_next_statuses(from, next, sizeof next);
        return err_field(e, ERR_CONFLICT, "invalid_transition", "status", "the customer is %s and cannot become %s (allowed: %s)",
                         from, status, next);
    }
    char now[25];
    db_now(now);
    return db_run(d, e, "UPDATE customers SET status = ?, updated_at = ? WHERE id = ?", "ssi", status, now, id);
}

/* ------------------------------------------------- phone verification */

/* The channel verification codes go out on until an SMS gateway exists. */
#define VERIFY_CHANNEL "log"

/* Six random digits, uniformly: values at or above the largest multiple of
 * a million below 2^32 are drawn again. */
static int random_code(char out[7])
{
    for (;;) {
        uint32_t r;
        if (crypto_random(&r, sizeof r)) return -1;
        if (r >= 4294000000u) continue;
        snprintf(out, 7, "%06u", (unsigned)(r % 1000000u));
        return 0;
    }
}

/* A code is kept only as a keyed hash bound to its customer, so a database
 * copy does not reveal live codes and a code is no use for another customer. */
static int code_hash(const vault *v, int64_t id, const char *code, char out[VAULT_INDEX_HEX], err *e)
{
    char material[48];
    snprintf(material, sizeof material, "%lld:%s", (long long)id, code);
    vault_index(v, "vcode", material, out);
    return out[0] ? 0 : err_set(e, ERR_INTERNAL, "the verification code could not be hashed");
}

int customers_verify_send(db *d, const vault *v, int64_t id, int64_t now_ms, verify_sent *out, char code_out[7], err *e)
{
    memset(out, 0, sizeof *out);
    if (!v) return err_set(e, ERR_INTERNAL, "no key file: codes cannot be sent");
    db_stmt *s = db_prepare(d, "SELECT code, phone_enc, phone_idx, phone_verified_at FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    char code[CUSTOMER_CODE_MAX] = "", idx[VAULT_INDEX_HEX] = "";
    buf enc = {0}, phone = {0};
    int has_phone = 0, verified = 0;
    if (rc == DB_ROW) {
        snprintf(code, sizeof code, "%s", db_col_text(s, 0));
        has_phone = !db_col_is_null(s, 1);
        if (has_phone && buf_puts(&enc, db_col_text(s, 1))) rc = ERR_NOMEM_RET(e);
        snprintf(idx, sizeof idx, "%s", db_col_text(s, 2));
        verified = !db_col_is_null(s, 3);
    }
    db_done(s);
    if (rc == DB_DONE) rc = err_field(e, ERR_NOTFOUND, "not_found", "code", "no customer with id %lld", (long long)id);
    else if (rc == DB_ROW && !has_phone)
        rc = err_field(e, ERR_CONFLICT, "no_phone", "phone", "customer %s has no phone number to verify", code);
    else if (rc == DB_ROW && verified)
        rc = err_field(e, ERR_CONFLICT, "already_verified", "phone", "the phone number of customer %s is already verified", code);
    else if (rc == DB_ROW)
        rc = 0;
    if (!rc) {
        s = db_prepare(d,
                       "SELECT created_at FROM verification_codes WHERE customer_id = ? AND purpose = 'verify_phone' "
                       "ORDER BY id DESC LIMIT 1",
                       e);
        if (!s) rc = e->code;
        else {
            db_bind_int(s, 1, id);
            int64_t last = 0;
            rc = db_step(d, s, e);
            if (rc == DB_ROW && db_parse_time(db_col_text(s, 0), &last)) last = 0;
            db_done(s);
            if (rc >= 0) rc = 0;
            if (!rc && last && now_ms - last < CUSTOMERS_VCODE_RESEND_MS) {
                out->retry_after_s = (last + CUSTOMERS_VCODE_RESEND_MS - now_ms + 999) / 1000;
                rc = err_field(e, ERR_LIMIT, "too_many_requests", "", "a code was sent less than a minute ago; try again in %lld s",
                               (long long)out->retry_after_s);
            }
        }
    }
    char vcode[7] = "", hash[VAULT_INDEX_HEX], created[25];
    if (!rc && random_code(vcode)) rc = err_set(e, ERR_INTERNAL, "no randomness for a verification code");
    if (!rc) rc = code_hash(v, id, vcode, hash, e);
    if (!rc) {
        db_format_time(now_ms, created);
        db_format_time(now_ms + CUSTOMERS_VCODE_TTL_MS, out->expires_at);
        rc = db_run(d, e,
                    "INSERT INTO verification_codes (customer_id, purpose, target_idx, code_hash, created_at, expires_at) "
                    "VALUES (?, 'verify_phone', ?, ?, ?, ?)",
                    "issss", id, idx, hash, created, out->expires_at);
    }
    if (!rc) rc = vault_decrypt(v, "customers.phone", buf_cstr(&enc), &phone, e);
    if (!rc) {
        jv_arena a;
        jv_arena_init(&a, 0);
        jv *payload = jv_obj(&a);
        if (!payload || jv_obj_set_str(&a, payload, "code", vcode) || jv_obj_set_str(&a, payload, "customer", code))
            rc = ERR_NOMEM_RET(e);
        else
            rc = outbox_enqueue(d, v, "verification_code", VERIFY_CHANNEL, id, buf_cstr(&phone), payload, NULL, e);
        jv_arena_free(&a);
    }
    if (!rc && code_out) snprintf(code_out, 7, "%s", vcode);
    if (phone.data) memset(phone.data, 0, phone.len);
    buf_free(&phone);
    buf_free(&enc);
    return rc;
}

int customers_verify_confirm(db *d, const vault *v, int64_t id, const char *code, int64_t now_ms, verify_result *res,
                             int *attempts_left, err *e)
{
    *res = VERIFY_NONE;
    *attempts_left = 0;
    if (!code || strlen(code) != 6 || strspn(code, "0123456789") != 6)
        return err_field(e, ERR_INVALID, "invalid_field", "code", "the code is the 6 digits the customer received");
    if (!v) return err_set(e, ERR_INTERNAL, "no key file: codes cannot be checked");
    char phone_idx[VAULT_INDEX_HEX] = "";
    db_stmt *s = db_prepare(d, "SELECT coalesce(phone_idx, '') FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) snprintf(phone_idx, sizeof phone_idx, "%s", db_col_text(s, 0));
    db_done(s);
    if (rc < 0) return rc;
    if (rc == DB_DONE) return err_field(e, ERR_NOTFOUND, "not_found", "code", "no customer with id %lld", (long long)id);
    s = db_prepare(d,
                   "SELECT id, target_idx, code_hash, expires_at, attempts, used_at FROM verification_codes "
                   "WHERE customer_id = ? AND purpose = 'verify_phone' ORDER BY id DESC LIMIT 1",
                   e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    rc = db_step(d, s, e);
    int64_t vid = 0, attempts = 0, expires = 0;
    int used = 0;
    char target[VAULT_INDEX_HEX] = "", stored[VAULT_INDEX_HEX] = "";
    if (rc == DB_ROW) {
        vid = db_col_int(s, 0);
        snprintf(target, sizeof target, "%s", db_col_text(s, 1));
        snprintf(stored, sizeof stored, "%s", db_col_text(s, 2));
        if (db_parse_time(db_col_text(s, 3), &expires)) expires = 0;
        attempts = db_col_int(s, 4);
        used = !db_col_is_null(s, 5);
    }
    db_done(s);
    if (rc < 0) return rc;
    if (rc == DB_DONE) return 0; /* VERIFY_NONE */
    /* only the latest code counts; a used one, an old one or one sent to a
     * number the customer no longer has is gone */
    if (attempts >= CUSTOMERS_VCODE_ATTEMPTS) {
        *res = VERIFY_TOO_MANY;
        return 0;
    }
    if (used || now_ms >= expires || strcmp(target, phone_idx) != 0) {
        *res = VERIFY_EXPIRED;
        return 0;
    }
    char hash[VAULT_INDEX_HEX];
    if ((rc = code_hash(v, id, code, hash, e))) return rc;
    char now[25];
    db_format_time(now_ms, now);
    if (strlen(stored) == strlen(hash) && crypto_equal(stored, hash, strlen(hash))) {
        *res = VERIFY_OK;
        *attempts_left = (int)(CUSTOMERS_VCODE_ATTEMPTS - attempts);
        rc = db_run(d, e, "UPDATE verification_codes SET used_at = ? WHERE id = ?", "si", now, vid);
        if (!rc)
            rc = db_run(d, e, "UPDATE customers SET phone_verified_at = ?, updated_at = ? WHERE id = ?", "ssi", now, now, id);
        return rc;
    }
    *res = VERIFY_WRONG;
    *attempts_left = (int)(CUSTOMERS_VCODE_ATTEMPTS - attempts - 1);
    return db_run(d, e, "UPDATE verification_codes SET attempts = attempts + 1 WHERE id = ?", "i", vid);
}

/* ------------------------------------------------------------ search */

/* A search runs one statement chosen by what drives it (the most selective
 * filter given, which has an index) and by the sort. Every statement
 * applies every filter (a NULL parameter switches a filter off), so the
 * driver only decides which index finds the candidates. Parameters are
 * numbered so that each statement binds the same values:
 *
 *   ?1 code  ?2 phone hash  ?3 ID-card hash  ?4 ?5 name prefix and its
 *   successor  ?6 PPPoE user  ?7 serial  ?8 "some address part given"
 *   ?9-?16 province city district street community building unit room
 *   ?17 status  ?18 tag  ?19 cursor id  ?20 cursor text  ?21 limit
 *
 * Pagination is by keyset: (sort key, id) of the last row, so a page costs
 * the same at any depth. Keyset terms carry a unary + where the driver is
 * another index, so that the planner cannot prefer walking the whole table
 * in sort order to the driver's index. */

enum { D_ALL, D_CODE, D_IDCARD, D_PHONE, D_PPPOE, D_SERIAL, D_NAME, D_COMM_BLDG, D_COMM, D_DISTRICT, D_TAG, D_STATUS,
       D_COUNT };
static const char *const driver_names[D_COUNT] = {"all",  "code",      "id_card",   "phone",    "pppoe", "serial",
                                                  "name", "community", "community", "district", "tag",   "status"};
enum { S_ID_ASC, S_ID_DESC, S_CODE_ASC, S_CODE_DESC, S_NAME_ASC, S_NAME_DESC, S_COUNT };
static const char *const sort_names[S_COUNT] = {"created_at", "-created_at", "code", "-code", "name", "-name"};

#define CS_SEL "SELECT c.id, c.name, c.code "
#define CS_RESID                                                                                                         \
    " AND (?1 IS NULL OR c.code = ?1)"                                                                                   \
    " AND (?2 IS NULL OR c.phone_idx = ?2 OR c.phone2_idx = ?2)"                                                         \
    " AND (?3 IS NULL OR c.id_card_idx = ?3)"                                                                            \
    " AND (?4 IS NULL OR (c.name >= ?4 AND c.name < ?5))"                                                                \
    " AND (?6 IS NULL OR EXISTS (SELECT 1 FROM service_accounts sa2 WHERE sa2.customer_id = c.id AND sa2.username = ?6))" \
    " AND (?7 IS NULL OR EXISTS (SELECT 1 FROM installations i2 JOIN devices dv2 ON dv2.id = i2.device_id"                \
    " WHERE i2.customer_id = c.id AND i2.removed_on IS NULL AND dv2.serial = ?7))"                                       \
    " AND (?8 IS NULL OR EXISTS (SELECT 1 FROM addresses a2 WHERE a2.customer_id = c.id AND a2.kind = 'service'"          \
    " AND (?9 IS NULL OR a2.province = ?9) AND (?10 IS NULL OR a2.city = ?10) AND (?11 IS NULL OR a2.district = ?11)"     \
    " AND (?12 IS NULL OR a2.street = ?12) AND (?13 IS NULL OR a2.community = ?13)"                                      \
    " AND (?14 IS NULL OR a2.building = ?14) AND (?15 IS NULL OR a2.unit = ?15) AND (?16 IS NULL OR a2.room = ?16)))"     \
    " AND (?17 IS NULL OR c.status = ?17)"                                                                               \
    " AND (?18 IS NULL OR EXISTS (SELECT 1 FROM customer_tags t2 WHERE t2.customer_id = c.id AND t2.tag = ?18))"

/* K: the keyset column of id order, O: the column to order by, P: "+" or "" */
#define CS_SORTS(FW, K, O, P)                                                                                      \
    {                                                                                                              \
        CS_SEL FW CS_RESID " AND " K " > ?19 ORDER BY " O " LIMIT ?21",                                            \
            CS_SEL FW CS_RESID " AND " K " < ?19 ORDER BY " O " DESC LIMIT ?21",                                   \
            CS_SEL FW CS_RESID " AND " P "c.code > ?20 ORDER BY c.code LIMIT ?21",                                 \
            CS_SEL FW CS_RESID " AND " P "c.code < ?20 ORDER BY c.code DESC LIMIT ?21",                            \
            CS_SEL FW CS_RESID " AND " P "c.name >= ?20 AND (c.name > ?20 OR c.id > ?19) ORDER BY c.name, c.id LIMIT ?21", \
            CS_SEL FW CS_RESID " AND " P "c.name <= ?20 AND (c.name < ?20 OR c.id < ?19) "                         \
                               "ORDER BY c.name DESC, c.id DESC LIMIT ?21"                                          \
    }

static const char *const search_sql[D_COUNT][S_COUNT] = {
    CS_SORTS("FROM customers c WHERE 1 = 1", "c.id", "c.id", ""),
    CS_SORTS("FROM customers c WHERE c.code = ?1", "+c.id", "c.id", "+"),
    CS_SORTS("FROM customers c WHERE c.id_card_idx = ?3", "+c.id", "c.id", "+"),
    CS_SORTS("FROM customers c WHERE (c.phone_idx = ?2 OR c.phone2_idx = ?2)", "+c.id", "c.id", "+"),
    CS_SORTS("FROM service_accounts sa JOIN customers c ON c.id = sa.customer_id WHERE sa.username = ?6", "+c.id", "c.id",
             "+"),
    CS_SORTS("FROM devices dv JOIN installations i ON i.device_id = dv.id AND i.removed_on IS NULL "
             "JOIN customers c ON c.id = i.customer_id WHERE dv.serial = ?7",
             "+c.id", "c.id", "+"),
    CS_SORTS("FROM customers c WHERE c.name >= ?4 AND c.name < ?5", "+c.id", "c.id", ""),
    CS_SORTS("FROM addresses a JOIN customers c ON c.id = a.customer_id "
             "WHERE a.community = ?13 AND a.building = ?14 AND a.kind = 'service'",
             "+c.id", "c.id", "+"),
    CS_SORTS("FROM addresses a JOIN customers c ON c.id = a.customer_id WHERE a.community = ?13 AND a.kind = 'service'",
             "+c.id", "c.id", "+"),
    CS_SORTS("FROM addresses a JOIN customers c ON c.id = a.customer_id "
             "WHERE a.district = ?11 AND a.street = ?12 AND a.kind = 'service'",
             "+c.id", "c.id", "+"),
    /* a tag or a status may match a large share of the customers: walking
     * the sort's own index and checking each row can then be the better
     * plan (the planner decides with the statistics of db.optimize), and
     * the keyset terms stay usable so that it seeks to the cursor */
    CS_SORTS("FROM customer_tags t JOIN customers c ON c.id = t.customer_id WHERE t.tag = ?18", "t.customer_id",
             "t.customer_id", ""),
    CS_SORTS("FROM customers c WHERE c.status = ?17", "c.id", "c.id", ""),
};

/* What a search binds, after validation and guessing. */
typedef struct search_plan {
    int driver, sort;
    const char *p[19];          /* ?1 .. ?18 (index 0 unused) as text */
    char code[CUSTOMER_CODE_MAX];
    char phone_idx[VAULT_INDEX_HEX], idcard_idx[VAULT_INDEX_HEX];
    char name_hi[512];
    char serial[DEVICE_SERIAL_BUF > 96 ? DEVICE_SERIAL_BUF : 96];
    int64_t cursor_id;
    char cursor_text[300];
    int64_t limit;
} search_plan;

static int param_err(err *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int param_err(err *e, const char *param, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_field(e, ERR_INVALID, "invalid_parameter", param, "%s", msg);
}

/* The smallest string greater than every string starting with p: the last
 * byte incremented (UTF-8 never uses 0xFF, so there is always room). */
static int prefix_successor(const char *p, char *out, size_t n)
{
    size_t len = strlen(p);
    if (len == 0 || len >= n) return -1;
    memcpy(out, p, len + 1);
    out[len - 1] = (char)((unsigned char)out[len - 1] + 1);
    return 0;
}

/* A customer code typed anywhere: 1-4 letters then 9-16 digits. */
static int looks_like_code(const char *s)
{
    size_t l = 0;
    while (s[l] && isalpha((unsigned char)s[l])) l++;
    size_t dgt = strspn(s + l, "0123456789");
    return l >= 1 && l <= 4 && dgt >= 9 && dgt <= 16 && !s[l + dgt];
}

static int exists_text(db *d, const char *sql_which, const char *value, int *found, err *e)
{
    db_stmt *s = !strcmp(sql_which, "pppoe") ? db_prepare(d, "SELECT 1 FROM service_accounts WHERE username = ?", e)
                                             : db_prepare(d, "SELECT 1 FROM devices WHERE serial = ?", e);
    if (!s) return e->code;
    db_bind_text(s, 1, value);
    int rc = db_step(d, s, e);
    db_done(s);
    if (rc < 0) return rc;
    *found = rc == DB_ROW;
    return 0;
}

static void upper_copy(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++) out[i] = (char)toupper((unsigned char)in[i]);
    out[i] = '\0';
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Cursor: hex of "v1|<sort>|<id>|<text>" - opaque to clients, and bound to
 * its sort so that a cursor is never read under another order. */
static void cursor_make(int sort, int64_t id, const char *text, char out[CUSTOMERS_CURSOR_MAX])
{
    char raw[CUSTOMERS_CURSOR_MAX / 2];
    int n = snprintf(raw, sizeof raw, "v1|%d|%lld|%s", sort, (long long)id, text);
    if (n < 0 || (size_t)n >= sizeof raw) n = (int)sizeof raw - 1;
    crypto_hex((const uint8_t *)raw, (size_t)n, out);
}

static int cursor_read(const char *cur, search_plan *sp, err *e)
{
    size_t n = strlen(cur);
    char raw[CUSTOMERS_CURSOR_MAX / 2];
    if (n % 2 || n / 2 >= sizeof raw) return param_err(e, "cursor", "cursor '%.40s' is not one this server gave out", cur);
    for (size_t i = 0; i < n / 2; i++) {
        int h = hexval(cur[2 * i]), l = hexval(cur[2 * i + 1]);
        if (h < 0 || l < 0) return param_err(e, "cursor", "cursor '%.40s' is not one this server gave out", cur);
        raw[i] = (char)(h * 16 + l);
    }
    raw[n / 2] = '\0';
    int sort = -1, used = 0;
    long long id = 0;
    if (sscanf(raw, "v1|%d|%lld|%n", &sort, &id, &used) != 2 || !used || id < 0 || strlen(raw) != n / 2)
        return param_err(e, "cursor", "cursor '%.40s' is not one this server gave out", cur);
    if (sort != sp->sort)
        return param_err(e, "cursor", "this cursor belongs to another sort order than '%s'", sort_names[sp->sort]);
    sp->cursor_id = id;
    snprintf(sp->cursor_text, sizeof sp->cursor_text, "%s", raw + used);
    return 0;
}

static int plan_search(db *d, const vault *v, const customer_query *cq, search_plan *sp, err *e)
{
    memset(sp, 0, sizeof *sp);
    const char *code = cq->code, *idcard = cq->id_card, *phone = cq->phone, *name = cq->name, *pppoe = cq->pppoe,
               *serial = cq->serial;
    /* the free-text query: the most specific reading that fits. A PPPoE
     * user name is tried before phone numbers because many operators use
     * the subscriber's number as the account name. */
    if (cq->q && cq->q[0]) {
        enum { K_CODE, K_PPPOE, K_IDCARD, K_PHONE, K_SERIAL, K_NAME };
        static const char *const kinds[] = {"code", "pppoe", "id_card", "phone", "serial", "name"};
        const char *q = cq->q;
        char tmp[32], up[DEVICE_SERIAL_BUF > 96 ? DEVICE_SERIAL_BUF : 96];
        err ignore;
        int found = 0, rc, kind;
        if (looks_like_code(q)) {
            kind = K_CODE;
        } else if ((rc = exists_text(d, "pppoe", q, &found, e))) {
            return rc;
        } else if (found) {
            kind = K_PPPOE;
        } else if (customers_normalize_id_card(q, tmp, &ignore) == 0) {
            kind = K_IDCARD;
        } else if (customers_normalize_phone2(q, tmp, &ignore) == 0) {
            kind = K_PHONE;
        } else {
            char vendor[DEVICE_VENDOR_BUF];
            if (devices_normalize_serial("onu", q, up, vendor, NULL)) upper_copy(q, up, sizeof up);
            if ((rc = exists_text(d, "serial", up, &found, e))) return rc;
            kind = found ? K_SERIAL : K_NAME;
        }
        const char **slot = kind == K_CODE     ? &code
                            : kind == K_PPPOE  ? &pppoe
                            : kind == K_IDCARD ? &idcard
                            : kind == K_PHONE  ? &phone
                            : kind == K_SERIAL ? &serial
                                               : &name;
        if (*slot)
            return err_field(e, ERR_INVALID, "invalid_parameter", "q", "q reads as a %s, and %s is given too: give one of them",
                             kinds[kind], kinds[kind]);
        *slot = q;
    }
    if (code) {
        int64_t ignored;
        size_t l = 0;
        while (code[l] && isalpha((unsigned char)code[l]) && l < 8) l++;
        char prefix[16];
        snprintf(prefix, sizeof prefix, "%.*s", (int)l, code);
        int rc = customers_parse_code(prefix, code, &ignored, e);
        if (rc) return at_field(e, rc, cq->code ? "code" : "q");
        upper_copy(code, sp->code, sizeof sp->code);
        sp->p[1] = sp->code;
    }
    if (phone) {
        char norm[16];
        if (customers_normalize_phone2(phone, norm, e))
            return param_err(e, cq->phone ? "phone" : "q", "'%s' is neither a mobile nor a landline number", phone);
        if (!v) return err_set(e, ERR_INTERNAL, "no key file: phone numbers cannot be looked up");
        vault_index(v, "phone", norm, sp->phone_idx);
        sp->p[2] = sp->phone_idx;
    }
    if (idcard) {
        char norm[20];
        if (customers_normalize_id_card(idcard, norm, e)) return at_field(e, ERR_INVALID, cq->id_card ? "id_card" : "q");
        if (!v) return err_set(e, ERR_INTERNAL, "no key file: ID cards cannot be looked up");
        vault_index(v, "idcard", norm, sp->idcard_idx);
        sp->p[3] = sp->idcard_idx;
    }
    if (name) {
        if (prefix_successor(name, sp->name_hi, sizeof sp->name_hi))
            return param_err(e, cq->name ? "name" : "q", "a name prefix is 1-500 bytes");
        sp->p[4] = name;
        sp->p[5] = sp->name_hi;
    }
    sp->p[6] = pppoe;
    if (serial) {
        /* stored normalised (devices.h): any spelling of an ONU serial finds
         * it; anything else is compared upper case */
        char vendor[DEVICE_VENDOR_BUF];
        if (devices_normalize_serial("onu", serial, sp->serial, vendor, NULL)) upper_copy(serial, sp->serial, sizeof sp->serial);
        sp->p[7] = sp->serial;
    }
    const char *parts[8] = {cq->province, cq->city, cq->district, cq->street, cq->community, cq->building, cq->unit, cq->room};
    for (int i = 0; i < 8; i++)
        if (parts[i]) {
            sp->p[9 + i] = parts[i];
            sp->p[8] = "1";
        }
    if (cq->status) {
        if (!customers_status_valid(cq->status))
            return param_err(e, "status", "status '%s' is not one of prospect, active, overdue, suspended, closed", cq->status);
        sp->p[17] = cq->status;
    }
    if (cq->tag) {
        if (!customers_tag_valid(cq->tag)) return param_err(e, "tag", "'%s' is not a tag (1-32 of a-z 0-9 _ -)", cq->tag);
        sp->p[18] = cq->tag;
    }
    /* the most selective filter with an index drives. A district alone is
     * too coarse to drive (a tenth of the customers): the newest customers
     * are walked by id and checked, which finds a page after a few dozen
     * rows; with its street it is selective and drives through the
     * address index. */
    sp->driver = sp->p[1]    ? D_CODE
                 : sp->p[3]  ? D_IDCARD
                 : sp->p[2]  ? D_PHONE
                 : sp->p[6]  ? D_PPPOE
                 : sp->p[7]  ? D_SERIAL
                 : sp->p[13] ? (sp->p[14] ? D_COMM_BLDG : D_COMM)
                 : sp->p[4]  ? D_NAME
                 : sp->p[11] && sp->p[12] ? D_DISTRICT
                 : sp->p[18] ? D_TAG
                 : sp->p[17] ? D_STATUS
                             : D_ALL;
    /* name searches read best in name order; everything else newest first */
    sp->sort = sp->driver == D_NAME ? S_NAME_ASC : S_ID_DESC;
    if (cq->sort) {
        int k = 0;
        while (k < S_COUNT && strcmp(sort_names[k], cq->sort)) k++;
        if (k == S_COUNT)
            return param_err(e, "sort", "sort '%s' is not one of code, -code, name, -name, created_at, -created_at", cq->sort);
        sp->sort = k;
    }
    /* the first page starts before every key */
    static const char top[] = "\xff";
    sp->cursor_id = sp->sort == S_ID_DESC || sp->sort == S_NAME_DESC ? INT64_MAX : 0;
    snprintf(sp->cursor_text, sizeof sp->cursor_text, "%s", sp->sort == S_CODE_DESC || sp->sort == S_NAME_DESC ? top : "");
    if (cq->cursor && cursor_read(cq->cursor, sp, e)) return e->code;
    sp->limit = cq->limit < 1 ? 50 : cq->limit > 500 ? 500 : cq->limit;
    return 0;
}

static void bind_search(db_stmt *s, const search_plan *sp)
{
    for (int i = 1; i <= 18; i++) db_bind_text(s, i, sp->p[i]);
    db_bind_int(s, 19, sp->cursor_id);
    db_bind_text(s, 20, sp->cursor_text);
    db_bind_int(s, 21, sp->limit + 1);
}

int customers_search(db *d, const vault *v, const customer_query *cq, jv_arena *a, jv **list,
                     char next[CUSTOMERS_CURSOR_MAX], const char **matched, err *e)
{
    next[0] = '\0';
    search_plan sp;
    int rc = plan_search(d, v, cq, &sp, e);
    if (rc) return rc;
    if (matched) *matched = driver_names[sp.driver];
    db_stmt *s = db_prepare(d, search_sql[sp.driver][sp.sort], e);
    if (!s) return e->code;
    bind_search(s, &sp);
    /* ids first, objects after: loading a customer uses other statements */
    int64_t *ids = jv_alloc(a, (size_t)(sp.limit + 1) * sizeof *ids);
    if (!ids) {
        db_done(s);
        return ERR_NOMEM_RET(e);
    }
    int n = 0;
    char last_name[300] = "", last_code[CUSTOMER_CODE_MAX] = "";
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        if (n == sp.limit) break;
        ids[n++] = db_col_int(s, 0);
        snprintf(last_name, sizeof last_name, "%s", db_col_text(s, 1));
        snprintf(last_code, sizeof last_code, "%s", db_col_text(s, 2));
    }
    int more = rc == DB_ROW;
    db_done(s);
    if (rc < 0) return rc;
    jv *out = jv_arr_sized(a, (size_t)n);
    if (!out) return ERR_NOMEM_RET(e);
    for (int i = 0; i < n; i++) {
        jv *o;
        if ((rc = customers_get(d, v, ids[i], a, &o, e))) return rc;
        if (jv_arr_push(a, out, o)) return ERR_NOMEM_RET(e);
    }
    if (more && n)
        cursor_make(sp.sort, ids[n - 1], sp.sort == S_CODE_ASC || sp.sort == S_CODE_DESC ? last_code
                                         : sp.sort == S_NAME_ASC || sp.sort == S_NAME_DESC ? last_name
                                                                                           : "",
                    next);
    *list = out;
    return 0;
}

int customers_search_plan(db *d, const vault *v, const customer_query *cq, buf *plan, err *e)
{
    search_plan sp;
    int rc = plan_search(d, v, cq, &sp, e);
    if (rc) return rc;
    /* assembled from program constants only (db_prepare_once) */
    buf sql = {0};
    if (buf_puts(&sql, "EXPLAIN QUERY PLAN ") || buf_puts(&sql, search_sql[sp.driver][sp.sort])) {
        buf_free(&sql);
        return ERR_NOMEM_RET(e);
    }
    db_stmt *s = db_prepare_once(d, buf_cstr(&sql), e);
    buf_free(&sql);
    if (!s) return e->code;
    bind_search(s, &sp);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        /* columns: id, parent, notused, detail */
        if (buf_puts(plan, db_col_text(s, 3)) || buf_putc(plan, '\n')) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------ the 360-degree view */

static int ov_accounts(db *d, int64_t id, jv_arena *a, jv *o, err *e)
{
    jv *list = jv_arr(a);
    if (!list) return ERR_NOMEM_RET(e);
    /* never the password: RADIUS needs it, the console does not */
    db_stmt *s = db_prepare(d, "SELECT username, status, created_at FROM service_accounts WHERE customer_id = ? ORDER BY id", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 3);
        if (!x || jv_obj_set(a, x, "username", text_or_null(a, s, 0)) || jv_obj_set(a, x, "status", text_or_null(a, s, 1)) ||
            jv_obj_set(a, x, "created_at", text_or_null(a, s, 2)) || jv_arr_push(a, list, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    return jv_obj_set(a, o, "service_accounts", list) ? ERR_NOMEM_RET(e) : 0;
}

static int ov_devices(db *d, int64_t id, jv_arena *a, jv *o, err *e)
{
    jv *list = jv_arr(a);
    if (!list) return ERR_NOMEM_RET(e);
    /* the install address is left out: it is personal data outside the
     * profile's filtered fields */
    db_stmt *s = db_prepare(d,
                            "SELECT dv.serial, dv.kind, dv.vendor, dv.model, dv.mac, i.installed_on, sa.username, "
                            "dep.id, dep.product, dep.amount, dep.taken_on FROM installations i "
                            "JOIN devices dv ON dv.id = i.device_id "
                            "LEFT JOIN service_accounts sa ON sa.id = i.service_account_id "
                            "LEFT JOIN deposits dep ON dep.device_id = i.device_id AND dep.status = 'held' "
                            "AND dep.customer_id = i.customer_id "
                            "WHERE i.customer_id = ? AND i.removed_on IS NULL ORDER BY i.id",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 8), *dep = NULL;
        int bad = !x;
        if (!bad && !db_col_is_null(s, 7)) {
            dep = jv_obj_sized(a, 3);
            bad = !dep || jv_obj_set(a, dep, "product", text_or_null(a, s, 8)) ||
                  jv_obj_set_int(a, dep, "amount", db_col_int(s, 9)) || jv_obj_set(a, dep, "taken_on", text_or_null(a, s, 10));
        }
        static const char *const keys[] = {"serial", "kind", "vendor", "model", "mac", "installed_on", "service_account"};
        for (int k = 0; !bad && k < 7; k++) bad = jv_obj_set(a, x, keys[k], text_or_null(a, s, k)) != 0;
        if (bad || jv_obj_set(a, x, "deposit", dep ? dep : jv_null(a)) || jv_arr_push(a, list, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    return jv_obj_set(a, o, "devices", list) ? ERR_NOMEM_RET(e) : 0;
}

static int ov_deposits(db *d, int64_t id, jv_arena *a, jv *o, err *e)
{
    jv *list = jv_arr(a);
    if (!list) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d,
                            "SELECT dep.id, dv.serial, dep.product, dep.amount, dep.status, dep.taken_on, dep.settled_on "
                            "FROM deposits dep JOIN devices dv ON dv.id = dep.device_id WHERE dep.customer_id = ? "
                            "ORDER BY dep.id DESC LIMIT 50",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 7);
        if (!x || jv_obj_set_int(a, x, "id", db_col_int(s, 0)) || jv_obj_set(a, x, "serial", text_or_null(a, s, 1)) ||
            jv_obj_set(a, x, "product", text_or_null(a, s, 2)) || jv_obj_set_int(a, x, "amount", db_col_int(s, 3)) ||
            jv_obj_set(a, x, "status", text_or_null(a, s, 4)) || jv_obj_set(a, x, "taken_on", text_or_null(a, s, 5)) ||
            jv_obj_set(a, x, "settled_on", text_or_null(a, s, 6)) || jv_arr_push(a, list, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    return jv_obj_set(a, o, "deposits", list) ? ERR_NOMEM_RET(e) : 0;
}

/* The price in force today of a product, or null when it has no version
 * yet (a product whose first version starts later). */
static int price_today(db *d, int64_t product_id, const char *today, jv_arena *a, jv *x, err *e)
{
    product_version pv;
    int rc = catalog_version_at(d, product_id, today, a, &pv, e);
    if (rc == ERR_NOTFOUND) {
        if (jv_obj_set(a, x, "price", jv_null(a)) || jv_obj_set(a, x, "price_version", jv_null(a)) ||
            jv_obj_set(a, x, "price_includes_tax", jv_null(a)))
            return ERR_NOMEM_RET(e);
        return 0;
    }
    if (rc) return rc;
    if (jv_obj_set_int(a, x, "price", pv.price) || jv_obj_set_int(a, x, "price_version", pv.version) ||
        jv_obj_set_bool(a, x, "price_includes_tax", pv.price_includes_tax))
        return ERR_NOMEM_RET(e);
    return 0;
}

static int ov_addons(db *d, int64_t sub_id, const char *today, jv_arena *a, jv *x, err *e)
{
    jv *list = jv_arr(a);
    if (!list) return ERR_NOMEM_RET(e);
    /* collected first: pricing each uses other statements */
    int64_t pids[64];
    jv *items[64];
    int n = 0;
    db_stmt *s = db_prepare(d,
                            "SELECT p.id, p.code, p.name, it.quantity, it.start_date, it.end_date FROM subscription_items it "
                            "JOIN products p ON p.id = it.product_id "
                            "WHERE it.subscription_id = ? AND (it.end_date IS NULL OR it.end_date >= ?) ORDER BY it.id",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, sub_id);
    db_bind_text(s, 2, today);
    int rc;
    while (n < 64 && (rc = db_step(d, s, e)) == DB_ROW) {
        jv *it = jv_obj_sized(a, 8);
        if (!it || jv_obj_set(a, it, "code", text_or_null(a, s, 1)) || jv_obj_set(a, it, "name", text_or_null(a, s, 2)) ||
            jv_obj_set_int(a, it, "quantity", db_col_int(s, 3)) || jv_obj_set(a, it, "start_date", text_or_null(a, s, 4)) ||
            jv_obj_set(a, it, "end_date", text_or_null(a, s, 5))) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
        pids[n] = db_col_int(s, 0);
        items[n++] = it;
    }
    db_done(s);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++) {
        if ((rc = price_today(d, pids[i], today, a, items[i], e))) return rc;
        if (jv_arr_push(a, list, items[i])) return ERR_NOMEM_RET(e);
    }
    return jv_obj_set(a, x, "addons", list) ? ERR_NOMEM_RET(e) : 0;
}

#define OV_MAX_SUBS 50
#define OV_LATEST 5                /* invoices and payments shown */

static int ov_subscriptions(db *d, int64_t id, const char *today, jv_arena *a, jv *o, err *e)
{
    jv *list = jv_arr(a);
    if (!list) return ERR_NOMEM_RET(e);
    int64_t sids[OV_MAX_SUBS], pids[OV_MAX_SUBS];
    jv *subs[OV_MAX_SUBS];
    int n = 0;
    db_stmt *s = db_prepare(d,
                            "SELECT s.id, p.id, p.code, p.name, s.status, s.billing, s.period, s.start_date, s.contract_end, "
                            "s.paid_through, s.next_bill_date, s.end_date, sa.username FROM subscriptions s "
                            "JOIN products p ON p.id = s.product_id "
                            "LEFT JOIN service_accounts sa ON sa.id = s.service_account_id "
                            "WHERE s.customer_id = ? ORDER BY s.id DESC LIMIT 50",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc;
    while (n < OV_MAX_SUBS && (rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 16), *plan = jv_obj_sized(a, 2);
        int bad = !x || !plan || jv_obj_set(a, plan, "code", text_or_null(a, s, 2)) ||
                  jv_obj_set(a, plan, "name", text_or_null(a, s, 3)) || jv_obj_set_int(a, x, "id", db_col_int(s, 0)) ||
                  jv_obj_set(a, x, "plan", plan);
        static const char *const keys[] = {"status",       "billing",        "period",   "start_date", "contract_end",
                                           "paid_through", "next_bill_date", "end_date", "service_account"};
        for (int k = 0; !bad && k < 9; k++) bad = jv_obj_set(a, x, keys[k], text_or_null(a, s, 4 + k)) != 0;
        if (bad) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
        sids[n] = db_col_int(s, 0);
        pids[n] = db_col_int(s, 1);
        subs[n++] = x;
    }
    db_done(s);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++) {
        if ((rc = price_today(d, pids[i], today, a, subs[i], e)) || (rc = ov_addons(d, sids[i], today, a, subs[i], e)))
            return rc;
        if (jv_arr_push(a, list, subs[i])) return ERR_NOMEM_RET(e);
    }
    return jv_obj_set(a, o, "subscriptions", list) ? ERR_NOMEM_RET(e) : 0;
}

static int ov_charges(db *d, int64_t id, jv_arena *a, jv *o, err *e)
{
    jv *list = jv_arr(a);
    if (!list) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d,
                            "SELECT id, description, quantity, unit_price, tax_category, created_at FROM pending_charges "
                            "WHERE customer_id = ? AND billed_on IS NULL AND cancelled_at IS NULL ORDER BY id LIMIT 100",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 6);
        if (!x || jv_obj_set_int(a, x, "id", db_col_int(s, 0)) || jv_obj_set(a, x, "description", text_or_null(a, s, 1)) ||
            jv_obj_set_int(a, x, "quantity", db_col_int(s, 2)) || jv_obj_set_int(a, x, "unit_price", db_col_int(s, 3)) ||
            jv_obj_set(a, x, "tax_category", text_or_null(a, s, 4)) || jv_obj_set(a, x, "created_at", text_or_null(a, s, 5)) ||
            jv_arr_push(a, list, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    return jv_obj_set(a, o, "pending_charges", list) ? ERR_NOMEM_RET(e) : 0;
}

int customers_overview(db *d, const vault *v, int64_t id, const char *today, jv_arena *a, jv **out, err *e)
{
    jv *o;
    int rc = customers_get(d, v, id, a, &o, e);
    if (!rc) rc = ov_accounts(d, id, a, o, e);
    if (!rc) rc = ov_devices(d, id, a, o, e);
    if (!rc) rc = ov_deposits(d, id, a, o, e);
    if (!rc) rc = ov_subscriptions(d, id, today, a, o, e);
    if (!rc) rc = ov_charges(d, id, a, o, e);
    ledger_balance bal;
    jv *invoices = NULL, *payments = NULL;
    if (!rc) rc = invoices_overview_parts(d, id, OV_LATEST, a, &bal, &invoices, &payments, e);
    if (rc) return rc;
    /* where the collection ladder stands: its latest stage for this
     * customer (none: never chased) and the open collection tasks;
     * tickets do not exist yet: their empty shape */
    jv *dunning = jv_obj(a);
    if (!dunning) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d,
                            "SELECT a.stage, a.status, a.acted_on, i.number FROM dunning_actions a "
                            "JOIN invoices i ON i.id = a.invoice_id WHERE a.customer_id = ? AND a.status = 'done' "
                            "ORDER BY a.id DESC LIMIT 1",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int st = db_step(d, s, e);
    if (st == DB_ROW) {
        if (jv_obj_set_str(a, dunning, "state", db_col_text(s, 0)) || jv_obj_set_str(a, dunning, "on", db_col_text(s, 2)) ||
            jv_obj_set_str(a, dunning, "invoice", db_col_text(s, 3)))
            st = ERR_NOMEM_RET(e);
    } else if (st == DB_DONE && jv_obj_set_str(a, dunning, "state", "none")) {
        st = ERR_NOMEM_RET(e);
    }
    db_done(s);
    if (st < 0) return st;
    int64_t tasks = 0;
    if ((rc = db_get_int(d, e, &tasks, "SELECT count(*) FROM collection_tasks WHERE customer_id = ? AND status = 'open'", "i",
                         id)))
        return rc;
    /* the ladder's last few records: what it did lately, and under which rules */
    jv *recent = NULL;
    if ((rc = collect_actions(d, id, NULL, 5, a, &recent, NULL, 0, e))) return rc;
    if (jv_obj_set_int(a, dunning, "open_tasks", tasks) || jv_obj_set(a, dunning, "recent", recent) ||
        jv_obj_set_int(a, o, "balance", bal.balance) ||
        jv_obj_set_int(a, o, "credit", bal.credit) || jv_obj_set_int(a, o, "deposits_held", bal.deposits_held) ||
        jv_obj_set(a, o, "latest_invoices", invoices) || jv_obj_set(a, o, "latest_payments", payments) ||
        jv_obj_set(a, o, "dunning", dunning) || jv_obj_set(a, o, "tickets", jv_arr(a)))
        return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}
