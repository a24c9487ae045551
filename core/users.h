/* users.h - staff accounts: names, roles, passwords, lockouts.
 *
 * Passwords are hashed with scrypt (OpenSSL; N = 2^15, r = 8, p = 1, a
 * 16-byte random salt per user), stored as "scrypt$15$8$1$<salt>$<hash>"
 * in base64. A password must be at least 10 characters with three of
 * lower case, upper case, digits and symbols (or at least 16 characters of
 * anything), must not contain the user name and must not be a common
 * password. Staff e-mail and phone are encrypted with the vault. */
#ifndef BB_USERS_H
#define BB_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"
#include "vault.h"

#define USERS_HASH_MAX 160

typedef struct staff_user {
    int64_t id;
    char username[40];
    char display_name[128];
    char role[32];
    char status[16];             /* active, disabled */
    char locked_until[25];       /* "" when not locked */
    char last_login_at[25];
    char created_at[25];
    char password_hash[USERS_HASH_MAX];
    int failed_logins;
} staff_user;

/* 0 if the password is strong enough for this user, else ERR_INVALID with
 * a message saying what is missing. */
int users_password_check(const char *password, const char *username, err *e);
/* Hashes a password (about 50-100 ms of CPU by design). */
int users_password_hash(const char *password, char out[USERS_HASH_MAX], err *e);
/* 1 if the password matches the stored hash, 0 if not (constant time). */
int users_password_verify(const char *password, const char *stored);
/* A random strong password (for accounts created without one). */
void users_password_generate(char out[32]);

/* Names: 2-32 of a-z 0-9 . _ - */
int users_name_valid(const char *name);

int users_create(db *d, const vault *v, const char *username, const char *display_name, const char *role,
                 const char *password_hash, const char *email, const char *phone, const char *by, int64_t *id,
                 err *e);
/* By name (id 0) or by id (name NULL). ERR_NOTFOUND if absent. */
int users_get(db *d, const char *username, int64_t id, staff_user *out, err *e);
/* The account as an API object (email and phone decrypted), in arena a. */
int users_to_jv(db *d, const vault *v, const staff_user *u, jv_arena *a, jv **out, err *e);
int users_set_status(db *d, const char *username, const char *status, err *e);
int users_set_password(db *d, const char *username, const char *password_hash, err *e);
int users_unlock(db *d, const char *username, err *e);

#endif
