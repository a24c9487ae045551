/* users.c - staff accounts and password hashing. */
#define _GNU_SOURCE /* strcasestr */
#include "users.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define SCRYPT_LOG_N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SALT_LEN 16
#define HASH_LEN 32

/* A few of the passwords every list of leaked passwords starts with. */
static const char *const common[] = {
    "password", "password1", "password123", "passw0rd", "qwerty", "qwertyuiop", "123456", "1234567890",
    "12345678", "abc123", "iloveyou", "admin123", "welcome1", "letmein", "woaini1314", "Aa123456",
    "P@ssw0rd", "Passw0rd!", "1q2w3e4r", "zxcvbnm", "changeme", "bandbill", NULL};

int users_password_check(const char *pw, const char *username, err *e)
{
    size_t n = strlen(pw);
    int lower = 0, upper = 0, digit = 0, other = 0;
    for (const char *p = pw; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (islower(c)) lower = 1;
        else if (isupper(c)) upper = 1;
        else if (isdigit(c)) digit = 1;
        else other = 1;
    }
    if (n < 10)
        return err_field(e, ERR_INVALID, "weak_password", "password", "a password needs at least 10 characters");
    if (n > 256) return err_field(e, ERR_INVALID, "weak_password", "password", "a password may have at most 256 characters");
    if (n < 16 && lower + upper + digit + other < 3)
        return err_field(e, ERR_INVALID, "weak_password", "password",
                         "a password under 16 characters needs three of: lower case, upper case, digits, symbols");
    for (const char *const *c = common; *c; c++)
        if (strcasecmp(pw, *c) == 0 || (strlen(*c) >= 8 && strcasestr(pw, *c)))
            return err_field(e, ERR_INVALID, "weak_password", "password", "that password is too common");
    if (username && strlen(username) >= 3 && strcasestr(pw, username))
        return err_field(e, ERR_INVALID, "weak_password", "password", "a password must not contain the user name");
    return 0;
}

static int b64(const unsigned char *in, int n, char *out, size_t cap)
{
    if ((size_t)(4 * ((n + 2) / 3) + 1) > cap) return -1;
    return EVP_EncodeBlock((unsigned char *)out, in, n);
}

static int unb64(const char *in, unsigned char *out, int want)
{
    size_t n = strlen(in);
    unsigned char tmp[128];
    if (n == 0 || n > 4 * (sizeof tmp / 3)) return -1;
    int got = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
    if (got < 0) return -1;
    while (n > 0 && in[n - 1] == '=') {
        got--;
        n--;
    }
    if (got != want) return -1;
    memcpy(out, tmp, (size_t)want);
    return 0;
}

static int kdf(const char *pw, const unsigned char *salt, int logn, int r, int p, unsigned char out[HASH_LEN])
{
    uint64_t N = 1ull << logn;
    uint64_t maxmem = 128ull * N * (uint64_t)r + (1u << 20);
    return EVP_PBE_scrypt(pw, strlen(pw), salt, SALT_LEN, N, (uint64_t)r, (uint64_t)p, maxmem, out, HASH_LEN) == 1 ? 0 : -1;
}

int users_password_hash(const char *pw, char out[USERS_HASH_MAX], err *e)
{
    unsigned char salt[SALT_LEN], h[HASH_LEN];
    char s64[32], h64[64];
    if (crypto_random(salt, sizeof salt)) return err_set(e, ERR_INTERNAL, "no randomness available");
    if (kdf(pw, salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, h)) return err_set(e, ERR_INTERNAL, "scrypt failed");
    b64(salt, SALT_LEN, s64, sizeof s64);
    b64(h, HASH_LEN, h64, sizeof h64);
    OPENSSL_cleanse(h, sizeof h);
    snprintf(out, USERS_HASH_MAX, "scrypt$%d$%d$%d$%s$%s", SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, s64, h64);
    return 0;
}

int users_password_verify(const char *pw, const char *stored)
{
    int logn, r, p;
    char s64[64], h64[96];
    if (sscanf(stored, "scrypt$%d$%d$%d$%63[^$]$%95s", &logn, &r, &p, s64, h64) != 5) return 0;
    if (logn < 10 || logn > 22 || r < 1 || r > 32 || p < 1 || p > 16) return 0;
    unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
    if (unb64(s64, salt, SALT_LEN) || unb64(h64, want, HASH_LEN)) return 0;
    if (kdf(pw, salt, logn, r, p, got)) return 0;
    int ok = crypto_equal(got, want, HASH_LEN);
    OPENSSL_cleanse(got, sizeof got);
    return ok;
}

void users_password_generate(char out[32])
{
    /* no look-alike characters; 20 of 56 symbols is about 116 bits */
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    unsigned char r[20];
    if (crypto_random(r, sizeof r)) memset(r, 0, sizeof r);
    for (int i = 0; i < 20; i++) out[i] = alphabet[r[i] % (sizeof alphabet - 1)];
    /* make sure three classes are present */
    out[5] = 'K';
    out[11] = 'm';
    out[17] = '7';
    out[20] = '\0';
}

int users_name_valid(const char *name)
{
    size_t n = strlen(name);
    return n >= 2 && n <= 32 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int encrypt_opt(const vault *v, const char *aad, const char *value, buf *out, err *e)
{
    if (!value || !value[0]) return 0;
    if (!v) return err_set(e, ERR_INTERNAL, "no key file open to encrypt %s", aad);
    return vault_encrypt(v, aad, value, strlen(value), out, e);
}

int users_create(db *d, const vault *v, const char *username, const char *display_name, const char *role,
                 const char *password_hash, const char *email, const char *phone, const char *by, int64_t *id, err *e)
{
    if (!users_name_valid(username))
        return err_field(e, ERR_INVALID, "invalid_username", "username",
                         "user names are 2-32 of lower-case letters, digits, '.', '_' and '-'");
    int64_t one;
    if (db_get_int(d, e, &one, "SELECT 1 FROM roles WHERE name = ?", "s", role))
        return e->code == ERR_NOTFOUND ? err_field(e, ERR_INVALID, "invalid_role", "role", "unknown role '%s'", role) : e->code;
    if (email && email[0] && (!strchr(email, '@') || strlen(email) > 254))
        return err_field(e, ERR_INVALID, "invalid_email", "email", "'%s' is not an e-mail address", email);
    buf em = {0}, ph = {0};
    int rc = encrypt_opt(v, "staff_users.email", email, &em, e);
    if (!rc) rc = encrypt_opt(v, "staff_users.phone", phone, &ph, e);
    char now[25];
    db_now(now);
    if (!rc)
        rc = db_run(d, e,
                    "INSERT INTO staff_users (username, display_name, role, password_hash, email_enc, phone_enc, "
                    "password_changed_at, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    "sssssssss", username, display_name && display_name[0] ? display_name : username, role,
                    password_hash, em.len ? buf_cstr(&em) : NULL, ph.len ? buf_cstr(&ph) : NULL, now, now, by);
    buf_free(&em);
    buf_free(&ph);
    if (rc == ERR_CONFLICT) return err_field(e, ERR_CONFLICT, "exists", "username", "user %s already exists", username);
    if (!rc && id) *id = db_last_id(d);
    return rc;
}

int users_get(db *d, const char *username, int64_t id, staff_user *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_stmt *s = db_prepare(d,
                            "SELECT id, username, display_name, role, status, locked_until, last_login_at, created_at, "
                            "password_hash, failed_logins FROM staff_users WHERE username = ? OR id = ?",
                            e);
    if (!s) return e->code;
    db_bind_text(s, 1, username ? username : "");
    db_bind_int(s, 2, username ? -1 : id);
    int rc = db_step(d, s, e);
    if (rc < 0) return rc;
    if (rc != DB_ROW) return err_set(e, ERR_NOTFOUND, "no user %s", username ? username : "with that id");
    out->id = db_col_int(s, 0);
    snprintf(out->username, sizeof out->username, "%s", db_col_text(s, 1));
    snprintf(out->display_name, sizeof out->display_name, "%s", db_col_text(s, 2));
    snprintf(out->role, sizeof out->role, "%s", db_col_text(s, 3));
    snprintf(out->status, sizeof out->status, "%s", db_col_text(s, 4));
    snprintf(out->locked_until, sizeof out->locked_until, "%s", db_col_text(s, 5));
    snprintf(out->last_login_at, sizeof out->last_login_at, "%s", db_col_text(s, 6));
    snprintf(out->created_at, sizeof out->created_at, "%s", db_col_text(s, 7));
    snprintf(out->password_hash, sizeof out->password_hash, "%s", db_col_text(s, 8));
    out->failed_logins = (int)db_col_int(s, 9);
    db_done(s);
    return 0;
}

static void set_decrypted(db *d, const vault *v, jv_arena *a, jv *o, const char *key, const char *sql_col_aad,
                          int64_t id)
{
    err e;
    db_stmt *s = NULL;
    if (!strcmp(key, "email"))
        s = db_prepare(d, "SELECT email_enc FROM staff_users WHERE id = ?", &e);
    else
        s = db_prepare(d, "SELECT phone_enc FROM staff_users WHERE id = ?", &e);
    jv *val = jv_null(a);
    if (s) {
        db_bind_int(s, 1, id);
        if (db_step(d, s, &e) == DB_ROW && !db_col_is_null(s, 0) && v) {
            buf plain = {0};
            if (vault_decrypt(v, sql_col_aad, db_col_text(s, 0), &plain, &e) == 0) val = jv_strn(a, buf_cstr(&plain), plain.len);
            buf_free(&plain);
        }
        db_done(s);
    }
    jv_obj_set(a, o, key, val);
}

int users_to_jv(db *d, const vault *v, const staff_user *u, jv_arena *a, jv **out, err *e)
{
    jv *o = jv_obj(a);
    if (!o) return ERR_NOMEM_RET(e);
    jv_obj_set_int(a, o, "id", u->id);
    jv_obj_set_str(a, o, "username", u->username);
    jv_obj_set_str(a, o, "display_name", u->display_name);
    jv_obj_set_str(a, o, "role", u->role);
    jv_obj_set_str(a, o, "status", u->status);
    jv_obj_set_str(a, o, "locked_until", u->locked_until[0] ? u->locked_until : NULL);
    jv_obj_set_str(a, o, "last_login_at", u->last_login_at[0] ? u->last_login_at : NULL);
    jv_obj_set_str(a, o, "created_at", u->created_at);
    set_decrypted(d, v, a, o, "email", "staff_users.email", u->id);
    set_decrypted(d, v, a, o, "phone", "staff_users.phone", u->id);
    *out = o;
    return 0;
}

static int one_change(db *d, err *e, const char *username)
{
    if (db_changes(d) == 0) return err_field(e, ERR_NOTFOUND, "not_found", "username", "no user %s", username);
    return 0;
}

int users_set_status(db *d, const char *username, const char *status, err *e)
{
    int rc = db_run(d, e, "UPDATE staff_users SET status = ? WHERE username = ?", "ss", status, username);
    return rc ? rc : one_change(d, e, username);
}

int users_set_password(db *d, const char *username, const char *hash, err *e)
{
    char now[25];
    db_now(now);
    int rc = db_run(d, e,
                    "UPDATE staff_users SET password_hash = ?, password_changed_at = ?, failed_logins = 0, locked_until = NULL "
                    "WHERE username = ?",
                    "sss", hash, now, username);
    return rc ? rc : one_change(d, e, username);
}

int users_unlock(db *d, const char *username, err *e)
{
    int rc = db_run(d, e, "UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE username = ?", "s", username);
    if (!rc) rc = one_change(d, e, username);
    if (!rc) {
        char subject[64];
        snprintf(subject, sizeof subject, "user:%s", username);
        rc = db_run(d, e, "DELETE FROM login_failures WHERE subject = ?", "s", subject);
    }
    return rc;
}
