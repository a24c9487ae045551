/* accounts.c - PPPoE service accounts: names, passwords, status, and the
 * customer's password reset through an SMS code. */
#include "accounts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "customers.h"
#include "privacy.h"

#define AAD_PASSWORD "service_accounts.password"
#define AAD_PHONE "customers.phone"
#define AAD_RECIPIENT "outbox.recipient"
#define PURPOSE_RESET "reset_pppoe"

/* ------------------------------------------------------------ names */

static int name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' || c == '-';
}

int accounts_username_check(const char *name, err *e)
{
    size_t n = name ? strlen(name) : 0;
    if (n < ACCOUNT_USERNAME_MIN || n > ACCOUNT_USERNAME_MAX)
        return err_field(e, ERR_INVALID, "invalid_username", "username",
                         "a PPPoE user name has %d to %d characters, not %zu", ACCOUNT_USERNAME_MIN, ACCOUNT_USERNAME_MAX,
                         n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (name_char_ok((char)c)) continue;
        if (c >= 'A' && c <= 'Z')
            return err_field(e, ERR_INVALID, "invalid_username", "username",
                             "a PPPoE user name is lower case: '%c' at position %zu", c, i + 1);
        if (c >= 0x20 && c < 0x7f)
            return err_field(e, ERR_INVALID, "invalid_username", "username",
                             "'%c' (position %zu) is not allowed in a PPPoE user name: use a-z 0-9 . _ @ -", c, i + 1);
        return err_field(e, ERR_INVALID, "invalid_username", "username",
                         "byte 0x%02x (position %zu) is not allowed in a PPPoE user name: use a-z 0-9 . _ @ -", c, i + 1);
    }
    /* NAS and RADIUS configurations treat a leading punctuation mark as
     * syntax (realm separators, comments) more often than not */
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
        return err_field(e, ERR_INVALID, "invalid_username", "username",
                         "a PPPoE user name starts with a letter or a digit, not '%c'", name[0]);
    return 0;
}

/* -------------------------------------------------------- passwords */

int accounts_password_check(const char *pw, const char *username, err *e)
{
    size_t n = pw ? strlen(pw) : 0;
    if (n < ACCOUNT_PASSWORD_MIN)
        return err_field(e, ERR_INVALID, "weak_password", "password", "a PPPoE password has at least %d characters",
                         ACCOUNT_PASSWORD_MIN);
    if (n > ACCOUNT_PASSWORD_MAX)
        return err_field(e, ERR_INVALID, "invalid_password", "password", "a PPPoE password has at most %d characters",
                         ACCOUNT_PASSWORD_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pw[i];
        /* the password is typed into a router's web form and compared by
         * RADIUS byte for byte: anything outside printable ASCII breaks
         * one of them sooner or later */
        if (c <= 0x20 || c >= 0x7f)
            return err_field(e, ERR_INVALID, "invalid_password", "password",
                             "a PPPoE password is printable ASCII without spaces (position %zu is not)", i + 1);
    }
    if (username && !strcmp(pw, username))
        return err_field(e, ERR_INVALID, "weak_password", "password", "the password must not be the user name");
    return 0;
}

/* Lower case without l and o, upper case without I and O, digits without 0
 * and 1: nothing a customer reading it off a slip can confuse. */
static const char PW_ALPHABET[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
#define PW_ALPHABET_LEN (sizeof PW_ALPHABET - 1)

int accounts_password_generate(char out[ACCOUNT_PASSWORD_BUF], err *e)
{
    /* 256 - 256 % 56 = 224: bytes from 224 up are drawn again so that each
     * symbol is exactly as likely as any other */
    const unsigned limit = 256 - 256 % PW_ALPHABET_LEN;
    for (int tries = 0; tries < 64; tries++) {
        unsigned char r[64];
        size_t got = 0;
        while (got < ACCOUNT_PASSWORD_GEN) {
            if (crypto_random(r, sizeof r)) {
                explicit_bzero(out, ACCOUNT_PASSWORD_BUF);
                return err_set(e, ERR_INTERNAL, "the system's random generator failed");
            }
            for (size_t i = 0; i < sizeof r && got < ACCOUNT_PASSWORD_GEN; i++)
                if (r[i] < limit) out[got++] = PW_ALPHABET[r[i] % PW_ALPHABET_LEN];
        }
        explicit_bzero(r, sizeof r);
        out[ACCOUNT_PASSWORD_GEN] = '\0';
        int lower = 0, upper = 0, digit = 0;
        for (int i = 0; i < ACCOUNT_PASSWORD_GEN; i++) {
            char c = out[i];
            lower |= c >= 'a' && c <= 'z';
            upper |= c >= 'A' && c <= 'Z';
            digit |= c >= '0' && c <= '9';
        }
        /* redrawing (rather than forcing a class into a fixed position)
         * keeps every position uniform */
        if (lower && upper && digit) return 0;
    }
    explicit_bzero(out, ACCOUNT_PASSWORD_BUF);
    return err_set(e, ERR_INTERNAL, "could not generate a password");
}

/* --------------------------------------------------- names by rule */

static int service_place(db *d, int64_t customer_id, char city[300], char district[300], int *placed, err *e)
{
    *placed = 0;
    db_stmt *s = db_prepare(d, "SELECT city, district FROM addresses WHERE customer_id = ? AND kind = 'service'", e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        rc = 0;
        snprintf(city, 300, "%s", db_col_text(s, 0));
        snprintf(district, 300, "%s", db_col_text(s, 1));
        *placed = 1;
    } else if (rc == DB_DONE) {
        rc = 0;
    }
    db_done(s);
    return rc;
}

static int username_taken(db *d, const char *name, int *taken, err *e)
{
    int64_t one;
    int rc = db_get_int(d, e, &one, "SELECT 1 FROM service_accounts WHERE username = ?", "s", name);
    if (rc == ERR_NOTFOUND) {
        *taken = 0;
        return 0;
    }
    if (!rc) *taken = 1;
    return rc;
}

__attribute__((format(printf, 3, 4))) static int output_error(rule_error *re, err *e, const char *fmt, ...)
{
    memset(re, 0, sizeof *re);
    snprintf(re->rule, sizeof re->rule, "accounts.username");
    snprintf(re->file, sizeof re->file, "accounts.lua");
    snprintf(re->function, sizeof re->function, "username");
    snprintf(re->kind, sizeof re->kind, "output");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(re->message, sizeof re->message, fmt, ap);
    va_end(ap);
    return err_field(e, ERR_RULE, "rule_invalid_output", "username", "rule accounts.username %s", re->message);
}

static const char *kind_words(jv_kind k)
{
    switch (k) {
    case JV_BOOL: return "a boolean";
    case JV_INT:
    case JV_NUM: return "a number";
    case JV_ARR:
    case JV_OBJ: return "a table";
    default: return "something else";
    }
}

int accounts_username_rule(ruleset *rs, const char *code, int64_t customer_id, const char *city, const char *district,
                           int64_t sequence, int attempt, jv_arena *a, char out[ACCOUNT_USERNAME_BUF], rule_error *re, err *e)
{
    memset(re, 0, sizeof *re);
    jv *ctx = jv_obj(a);
    if (!ctx || jv_obj_set_str(a, ctx, "customer", code) || jv_obj_set_int(a, ctx, "customer_id", customer_id) ||
        jv_obj_set_int(a, ctx, "sequence", sequence) || jv_obj_set_int(a, ctx, "attempt", attempt))
        return ERR_NOMEM_RET(e);
    /* no service address: the rule sees no city */
    if (city && district && (jv_obj_set_str(a, ctx, "city", city) || jv_obj_set_str(a, ctx, "district", district)))
        return ERR_NOMEM_RET(e);
    const jv *args[1] = {ctx};
    jv *res = NULL;
    int rc = rules_call(rs, "accounts.username", args, 1, a, &res, e);
    if (rc) {
        *re = *lhost_last_error(rs->host);
        /* a rule set without the function is the rules' fault too, and
         * the caller can always give a name instead */
        if (rc == ERR_NOTFOUND)
            err_field(e, ERR_RULE, "rule_not_found", "username", "the rules have no accounts.username: give a username");
        e->code = ERR_RULE;
        return ERR_RULE;
    }
    if (!res || res->kind == JV_NULL) return output_error(re, e, "returned nil, expected the user name as a string");
    if (res->kind != JV_STR)
        return output_error(re, e, "returned %s, expected the user name as a string", kind_words(res->kind));
    if (res->u.str.len != strlen(res->u.str.s)) return output_error(re, e, "returned a name with a NUL byte");
    err ve;
    if (accounts_username_check(res->u.str.s, &ve)) {
        char shown[48];
        snprintf(shown, sizeof shown, "%.40s", res->u.str.s);
        return output_error(re, e, "returned '%s', which is not a valid user name: %s", shown, ve.msg);
    }
    snprintf(out, ACCOUNT_USERNAME_BUF, "%s", res->u.str.s);
    return 0;
}

int accounts_username_from_rule(db *d, ruleset *rs, int64_t customer_id, jv_arena *a,
                                char out[ACCOUNT_USERNAME_BUF], rule_error *re, err *e)
{
    memset(re, 0, sizeof *re);
    char code[CUSTOMER_CODE_MAX], city[300] = "", district[300] = "";
    int64_t count = 0;
    int placed = 0;
    int rc = customers_code_by_id(d, customer_id, code, e);
    if (!rc) rc = accounts_count(d, customer_id, &count, e);
    if (!rc) rc = service_place(d, customer_id, city, district, &placed, e);
    if (rc) return rc;
    char previous[ACCOUNT_USERNAME_BUF] = "";
    for (int attempt = 1; attempt <= ACCOUNT_RULE_ATTEMPTS; attempt++) {
        char name[ACCOUNT_USERNAME_BUF];
        if ((rc = accounts_username_rule(rs, code, customer_id, placed ? city : NULL, placed ? district : NULL, count + 1,
                                         attempt, a, name, re, e)))
            return rc;
        int taken;
        if ((rc = username_taken(d, name, &taken, e))) return rc;
        if (!taken) {
            snprintf(out, ACCOUNT_USERNAME_BUF, "%s", name);
            return 0;
        }
        /* a rule that ignores `attempt` would only repeat itself */
        if (!strcmp(previous, name)) break;
        snprintf(previous, sizeof previous, "%s", name);
    }
    return err_field(e, ERR_CONFLICT, "username_taken", "username",
                     "the rule accounts.username offered only names that are taken (the last was '%s'): give a username",
                     previous);
}

/* ------------------------------------------------------------ records */

int accounts_count(db *d, int64_t customer_id, int64_t *n, err *e)
{
    return db_get_int(d, e, n, "SELECT count(*) FROM service_accounts WHERE customer_id = ?", "i", customer_id);
}

int accounts_seal_password(const vault *v, const char *password, buf *enc, err *e)
{
    if (!v) return err_set(e, ERR_INTERNAL, "no key file open: a PPPoE password cannot be stored");
    return vault_encrypt(v, AAD_PASSWORD, password, strlen(password), enc, e);
}

int accounts_insert(db *d, int64_t customer_id, const char *username, const char *password_enc, int64_t *id, err *e)
{
    char now[25];
    db_now(now);
    int rc = db_run(d, e,
                    "INSERT INTO service_accounts (customer_id, username, password_enc, status, created_at, "
                    "password_changed_at) VALUES (?, ?, ?, 'active', ?, ?)",
                    "issss", customer_id, username, password_enc, now, now);
    if (rc == ERR_CONFLICT)
        return err_field(e, ERR_CONFLICT, "username_taken", "username", "the PPPoE user name '%s' is taken", username);
    if (!rc && id) *id = db_last_id(d);
    return rc;
}

int accounts_create(db *d, const vault *v, int64_t customer_id, const char *username, const char *password,
                    int64_t *id, err *e)
{
    buf enc = {0};
    int rc = accounts_seal_password(v, password, &enc, e);
    if (!rc) rc = accounts_insert(d, customer_id, username, buf_cstr(&enc), id, e);
    buf_free(&enc);
    return rc;
}

static int read_account(db *d, db_stmt *s, account *out, err *e)
{
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        out->id = db_col_int(s, 0);
        out->customer_id = db_col_int(s, 1);
        snprintf(out->username, sizeof out->username, "%s", db_col_text(s, 2));
        snprintf(out->status, sizeof out->status, "%s", db_col_text(s, 3));
        snprintf(out->created_at, sizeof out->created_at, "%s", db_col_text(s, 4));
        snprintf(out->password_changed_at, sizeof out->password_changed_at, "%s", db_col_text(s, 5));
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = ERR_NOTFOUND;
    }
    db_done(s);
    return rc;
}

int accounts_get(db *d, const char *username, int64_t id, account *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_stmt *s;
    if (username) {
        s = db_prepare(d,
                       "SELECT id, customer_id, username, status, created_at, password_changed_at FROM service_accounts "
                       "WHERE username = ?",
                       e);
        if (!s) return e->code;
        db_bind_text(s, 1, username);
    } else {
        s = db_prepare(d,
                       "SELECT id, customer_id, username, status, created_at, password_changed_at FROM service_accounts "
                       "WHERE id = ?",
                       e);
        if (!s) return e->code;
        db_bind_int(s, 1, id);
    }
    int rc = read_account(d, s, out, e);
    if (rc == ERR_NOTFOUND) {
        if (username) return err_field(e, ERR_NOTFOUND, "not_found", "username", "no PPPoE account '%s'", username);
        return err_field(e, ERR_NOTFOUND, "not_found", "account", "no PPPoE account with id %lld", (long long)id);
    }
    return rc;
}

int accounts_to_jv(db *d, const account *acc, jv_arena *a, jv **out, err *e)
{
    char code[CUSTOMER_CODE_MAX];
    int rc = customers_code_by_id(d, acc->customer_id, code, e);
    if (rc) return rc;
    jv *o = jv_obj_sized(a, 6);
    if (!o || jv_obj_set_int(a, o, "id", acc->id) || jv_obj_set_str(a, o, "username", acc->username) ||
        jv_obj_set_str(a, o, "customer", code) || jv_obj_set_str(a, o, "status", acc->status) ||
        jv_obj_set_str(a, o, "created_at", acc->created_at) ||
        jv_obj_set_str(a, o, "password_changed_at", acc->password_changed_at))
        return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}

int accounts_set_password(db *d, const vault *v, int64_t id, const char *password, err *e)
{
    account acc;
    int rc = accounts_get(d, NULL, id, &acc, e);
    if (rc) return rc;
    if (!strcmp(acc.status, "closed"))
        return err_field(e, ERR_CONFLICT, "account_closed", "username", "PPPoE account '%s' is closed", acc.username);
    if (!v) return err_set(e, ERR_INTERNAL, "no key file open: a PPPoE password cannot be stored");
    buf enc = {0};
    rc = vault_encrypt(v, AAD_PASSWORD, password, strlen(password), &enc, e);
    char now[25];
    db_now(now);
    if (!rc)
        rc = db_run(d, e, "UPDATE service_accounts SET password_enc = ?, password_changed_at = ? WHERE id = ?", "ssi",
                    buf_cstr(&enc), now, id);
    buf_free(&enc);
    return rc;
}

int accounts_password(db *d, const vault *v, int64_t id, buf *out, err *e)
{
    if (!v) return err_set(e, ERR_INTERNAL, "no key file open: a PPPoE password cannot be read");
    db_stmt *s = db_prepare(d, "SELECT password_enc FROM service_accounts WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) rc = vault_decrypt(v, AAD_PASSWORD, db_col_text(s, 0), out, e);
    else if (rc == DB_DONE) rc = err_field(e, ERR_NOTFOUND, "not_found", "account", "no PPPoE account with id %lld", (long long)id);
    db_done(s);
    return rc;
}

int accounts_set_status(db *d, int64_t account_id, const char *status, err *e)
{
    static const char *const known[] = {"active", "throttled", "suspended", "closed"};
    int ok = 0;
    for (size_t i = 0; status && i < sizeof known / sizeof *known; i++) ok |= !strcmp(status, known[i]);
    if (!ok)
        return err_field(e, ERR_INVALID, "invalid_status", "status",
                         "'%s' is not a PPPoE account status (active, throttled, suspended, closed)", status ? status : "");
    account acc;
    int rc = accounts_get(d, NULL, account_id, &acc, e);
    if (rc) return rc;
    if (!strcmp(acc.status, status)) return 0;
    if (!strcmp(acc.status, "closed"))
        return err_field(e, ERR_CONFLICT, "account_closed", "status",
                         "PPPoE account '%s' is closed and stays closed (open a new one)", acc.username);
    return db_run(d, e, "UPDATE service_accounts SET status = ? WHERE id = ?", "si", status, account_id);
}

/* --------------------------------------------------------- reset codes */

/* Six decimal digits, uniform: 4,294,000,000 is the largest multiple of a
 * million below 2^32, and values from there up are drawn again. */
static int random_code(char out[7], err *e)
{
    for (;;) {
        uint32_t r;
        if (crypto_random(&r, sizeof r)) return err_set(e, ERR_INTERNAL, "the system's random generator failed");
        if (r < 4294000000u) {
            snprintf(out, 7, "%06u", (unsigned)(r % 1000000u));
            return 0;
        }
    }
}

static void code_hash(const vault *v, int64_t customer_id, const char *code, char out[VAULT_INDEX_HEX])
{
    char subject[48];
    snprintf(subject, sizeof subject, "%lld:%s", (long long)customer_id, code);
    vault_index(v, "vcode", subject, out);
    explicit_bzero(subject, sizeof subject);
}

int accounts_reset_code_send(db *d, const vault *v, const account *acc, int64_t now_ms, int64_t *expires_ms,
                             int64_t *retry_after_s, char masked_phone[32], err *e)
{
    if (!v) return err_set(e, ERR_INTERNAL, "no key file open: a code cannot be sent");
    if (!strcmp(acc->status, "closed"))
        return err_field(e, ERR_CONFLICT, "account_closed", "username", "PPPoE account '%s' is closed", acc->username);
    /* the phone: it must be there and verified, or the code could go to a
     * number nobody confirmed belongs to the customer */
    db_stmt *s = db_prepare(d, "SELECT phone_enc, phone_idx, phone_verified_at FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, acc->customer_id);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_set(e, ERR_NOTFOUND, "no customer with id %lld", (long long)acc->customer_id);
    }
    buf phone = {0};
    char target[VAULT_INDEX_HEX];
    snprintf(target, sizeof target, "%s", db_col_text(s, 1));
    int has_phone = !db_col_is_null(s, 0) && db_col_text(s, 0)[0];
    int verified = !db_col_is_null(s, 2) && db_col_text(s, 2)[0];
    rc = 0;
    if (has_phone && verified) rc = vault_decrypt(v, AAD_PHONE, db_col_text(s, 0), &phone, e);
    db_done(s);
    if (!rc && !has_phone)
        rc = err_field(e, ERR_CONFLICT, "no_phone", "phone", "the customer has no primary phone to send a code to");
    if (!rc && !verified)
        rc = err_field(e, ERR_CONFLICT, "phone_not_verified", "phone",
                       "the customer's primary phone is not verified: verify it before sending codes to it");
    /* at most one code a minute: SMS costs money and floods annoy */
    if (!rc) {
        s = db_prepare(d,
                       "SELECT created_at FROM verification_codes WHERE customer_id = ? AND purpose = 'reset_pppoe' "
                       "ORDER BY id DESC LIMIT 1",
                       e);
        if (!s) rc = e->code;
    }
    if (!rc) {
        db_bind_int(s, 1, acc->customer_id);
        int st = db_step(d, s, e);
        int64_t last = 0;
        if (st == DB_ROW && db_parse_time(db_col_text(s, 0), &last)) last = 0;
        db_done(s);
        if (st < 0) rc = st;
        else if (st == DB_ROW && now_ms - last < ACCOUNT_CODE_RESEND_MS) {
            int64_t wait_ms = ACCOUNT_CODE_RESEND_MS - (now_ms - last);
            if (retry_after_s) *retry_after_s = (wait_ms + 999) / 1000;
            rc = err_field(e, ERR_LIMIT, "too_soon", "", "a code was sent less than a minute ago: try again in %lld s",
                           (long long)((wait_ms + 999) / 1000));
        }
    }
    char code[7] = "", hash[VAULT_INDEX_HEX], created[25], expires[25];
    if (!rc) rc = random_code(code, e);
    if (!rc) {
        code_hash(v, acc->customer_id, code, hash);
        if (!target[0]) vault_index(v, "phone", buf_cstr(&phone), target);
        db_format_time(now_ms, created);
        db_format_time(now_ms + ACCOUNT_CODE_TTL_MS, expires);
        rc = db_run(d, e,
                    "INSERT INTO verification_codes (customer_id, purpose, target_idx, code_hash, created_at, expires_at, "
                    "attempts) VALUES (?, 'reset_pppoe', ?, ?, ?, ?, 0)",
                    "issss", acc->customer_id, target, hash, created, expires);
    }
    /* the message, in the same transaction: it goes out only if the code
     * is stored, and the code is stored only if the message is queued */
    buf recipient = {0}, payload = {0};
    if (!rc) rc = vault_encrypt(v, AAD_RECIPIENT, phone.data, phone.len, &recipient, e);
    if (!rc && (buf_puts(&payload, "{\"code\":") || buf_json_str(&payload, code, strlen(code)) ||
                buf_puts(&payload, ",\"username\":") || buf_json_str(&payload, acc->username, strlen(acc->username)) ||
                buf_putc(&payload, '}')))
        rc = ERR_NOMEM_RET(e);
    if (!rc)
        rc = db_run(d, e,
                    "INSERT INTO outbox (created_at, event, channel, customer_id, recipient_enc, payload, status, attempts, "
                    "next_attempt_at) VALUES (?, 'pppoe_reset_code', 'log', ?, ?, ?, 'pending', 0, ?)",
                    "sisss", created, acc->customer_id, buf_cstr(&recipient), buf_cstr(&payload), created);
    if (!rc && masked_phone) {
        buf m = {0};
        privacy_mask_text(MASK_PHONE, buf_cstr(&phone), phone.len, &m);
        snprintf(masked_phone, 32, "%s", buf_cstr(&m));
        buf_free(&m);
    }
    if (!rc && expires_ms) *expires_ms = now_ms + ACCOUNT_CODE_TTL_MS;
    if (payload.data) explicit_bzero(payload.data, payload.len);
    if (phone.data) explicit_bzero(phone.data, phone.len);
    explicit_bzero(code, sizeof code);
    buf_free(&payload);
    buf_free(&recipient);
    buf_free(&phone);
    return rc;
}

int accounts_reset_code_check(db *d, const vault *v, const account *acc, const char *code, int64_t now_ms,
                              int *attempts_left, err *e)
{
    if (attempts_left) *attempts_left = 0;
    if (!v) return err_set(e, ERR_INTERNAL, "no key file open: a code cannot be checked");
    if (!code || strlen(code) != 6 || strspn(code, "0123456789") != 6)
        return err_field(e, ERR_INVALID, "invalid_field", "code", "the code is the 6 digits the customer received");
    if (!strcmp(acc->status, "closed"))
        return err_field(e, ERR_CONFLICT, "account_closed", "username", "PPPoE account '%s' is closed", acc->username);
    /* only the newest code counts: asking for a new one retires the old */
    db_stmt *s = db_prepare(d,
                            "SELECT id, target_idx, code_hash, expires_at, attempts, used_at FROM verification_codes "
                            "WHERE customer_id = ? AND purpose = 'reset_pppoe' ORDER BY id DESC LIMIT 1",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, acc->customer_id);
    int rc = db_step(d, s, e);
    if (rc < 0) {
        db_done(s);
        return rc;
    }
    if (rc == DB_DONE) {
        db_done(s);
        return err_field(e, ERR_CONFLICT, "no_code", "code", "no code was sent for this customer: ask for one");
    }
    int64_t row = db_col_int(s, 0), attempts = db_col_int(s, 4), expires = 0;
    char target[VAULT_INDEX_HEX], stored[VAULT_INDEX_HEX];
    snprintf(target, sizeof target, "%s", db_col_text(s, 1));
    snprintf(stored, sizeof stored, "%s", db_col_text(s, 2));
    int bad_time = db_parse_time(db_col_text(s, 3), &expires);
    int used = !db_col_is_null(s, 5);
    db_done(s);
    if (used) return err_field(e, ERR_CONFLICT, "no_code", "code", "the last code was already used: ask for a new one");
    if (bad_time || now_ms >= expires)
        return err_field(e, ERR_CONFLICT, "no_code", "code", "the code has expired: ask for a new one");
    if (attempts >= ACCOUNT_CODE_ATTEMPTS)
        return err_field(e, ERR_CONFLICT, "no_code", "code", "too many wrong codes: ask for a new one");
    /* a code sent to a number the customer no longer has (or no longer
     * verified) proves nothing */
    s = db_prepare(d, "SELECT phone_idx, phone_verified_at FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, acc->customer_id);
    rc = db_step(d, s, e);
    int same_phone = rc == DB_ROW && !db_col_is_null(s, 1) && !strcmp(db_col_text(s, 0), target);
    db_done(s);
    if (rc < 0) return rc;
    if (!same_phone)
        return err_field(e, ERR_CONFLICT, "no_code", "code",
                         "the customer's phone changed or lost its verification since the code was sent: ask for a new one");
    char hash[VAULT_INDEX_HEX];
    code_hash(v, acc->customer_id, code, hash);
    if (strlen(stored) == VAULT_INDEX_HEX - 1 && crypto_equal(hash, stored, VAULT_INDEX_HEX - 1)) {
        char now[25];
        db_format_time(now_ms, now);
        return db_run(d, e, "UPDATE verification_codes SET used_at = ? WHERE id = ?", "si", now, row);
    }
    rc = db_run(d, e, "UPDATE verification_codes SET attempts = attempts + 1 WHERE id = ?", "i", row);
    if (rc) return rc;
    int left = (int)(ACCOUNT_CODE_ATTEMPTS - attempts - 1);
    if (attempts_left) *attempts_left = left;
    if (left <= 0)
        return err_field(e, ERR_INVALID, "wrong_code", "code", "wrong code, and that was the last attempt: ask for a new one");
    return err_field(e, ERR_INVALID, "wrong_code", "code", "wrong code: %d attempt%s left", left, left == 1 ? "" : "s");
}
