/* accounts.h - service accounts: PPPoE logins of customers.
 *
 * A PPPoE account has a unique user name, either given by staff or made by
 * the rule accounts.username (rules/accounts.lua), and a password that
 * RADIUS needs back in clear, so it is stored encrypted with the vault
 * (place "service_accounts.password"), never hashed. A password is shown
 * once, to whoever created or reset it; nothing reads it back except
 * accounts_password() for the network side.
 *
 * An account's status follows its subscription (active, throttled,
 * suspended, closed): the subscription and dunning code set it with
 * accounts_set_status(). Closed is final: the name stays taken forever so a
 * new customer never inherits someone else's login.
 *
 * The customer can reset the password through a 6-digit code sent to the
 * verified primary phone (verification_codes purpose "reset_pppoe", message
 * through the outbox). */
#ifndef BB_ACCOUNTS_H
#define BB_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "db.h"
#include "err.h"
#include "json.h"
#include "lua_host.h"
#include "rules.h"
#include "vault.h"

#define ACCOUNT_USERNAME_MIN 4
#define ACCOUNT_USERNAME_MAX 32
#define ACCOUNT_USERNAME_BUF (ACCOUNT_USERNAME_MAX + 1)
#define ACCOUNT_PASSWORD_MIN 8
#define ACCOUNT_PASSWORD_MAX 64
#define ACCOUNT_PASSWORD_BUF (ACCOUNT_PASSWORD_MAX + 1)
/* Length of a generated password. */
#define ACCOUNT_PASSWORD_GEN 16
/* How often accounts.username is asked again when its name is taken. */
#define ACCOUNT_RULE_ATTEMPTS 5

/* Reset codes sent by SMS. */
#define ACCOUNT_CODE_TTL_MS (5 * 60 * 1000)
#define ACCOUNT_CODE_ATTEMPTS 5
#define ACCOUNT_CODE_RESEND_MS (60 * 1000)

typedef struct account {
    int64_t id;
    int64_t customer_id;
    char username[ACCOUNT_USERNAME_BUF];
    char status[16];                 /* active, throttled, suspended, closed */
    char created_at[25];
    char password_changed_at[25];
} account;

/* ---- names and passwords ---- */
/* 0 if name is 4-32 of [a-z0-9._@-] starting with a letter or digit, else
 * ERR_INVALID (tag invalid_username, field "username") saying what is wrong. */
int accounts_username_check(const char *name, err *e);
/* 0 if a given password is usable: 8-64 printable ASCII characters without
 * spaces (what CPE web forms and every RADIUS server accept), not the user
 * name. ERR_INVALID naming field "password" otherwise. */
int accounts_password_check(const char *password, const char *username, err *e);
/* A random password of ACCOUNT_PASSWORD_GEN characters from an alphabet
 * without look-alikes (no 0 O o 1 l I), with at least one lower-case
 * letter, one upper-case letter and one digit (about 92 bits). */
int accounts_password_generate(char out[ACCOUNT_PASSWORD_BUF], err *e);

/* Asks the rule accounts.username for a name for a new account of the
 * customer, with ctx {customer = code, customer_id, city, district,
 * sequence, attempt} (city and district of the service address, absent
 * when it has none; sequence = the customer's accounts + 1). What the rule
 * returns must be a string of the user-name format; a name that is taken
 * makes the rule be asked again with attempt + 1, up to
 * ACCOUNT_RULE_ATTEMPTS times, then ERR_CONFLICT (tag username_taken).
 * A failing rule or an invalid result is ERR_RULE with *re filled. */
int accounts_username_from_rule(db *d, ruleset *rs, int64_t customer_id, jv_arena *a,
                                char out[ACCOUNT_USERNAME_BUF], rule_error *re, err *e);

/* The rule alone, without the database: asks accounts.username once with
 * ctx {customer = code, customer_id, city, district, sequence, attempt}
 * (city and district NULL: no service address) and checks what it returns
 * as accounts_username_from_rule does - but not whether the name is taken.
 * For bulk loads that ask the rule on another thread (with their own rule
 * set) and let the unique index say whether the name is free. */
int accounts_username_rule(ruleset *rs, const char *code, int64_t customer_id, const char *city, const char *district,
                           int64_t sequence, int attempt, jv_arena *a, char out[ACCOUNT_USERNAME_BUF], rule_error *re, err *e);

/* ---- records ---- */
/* Creates an active account (the name and password already checked); a
 * taken name is ERR_CONFLICT (tag username_taken). Runs inside the caller's
 * transaction if there is one. It is accounts_seal_password then
 * accounts_insert. */
int accounts_create(db *d, const vault *v, int64_t customer_id, const char *username, const char *password,
                    int64_t *id, err *e);
/* The stored (encrypted) form of a password, appended to enc: needs no
 * database, may run on any thread. */
int accounts_seal_password(const vault *v, const char *password, buf *enc, err *e);
/* Writes an active account with a password sealed by accounts_seal_password
 * (ERR_CONFLICT, tag username_taken, when the name is taken). */
int accounts_insert(db *d, int64_t customer_id, const char *username, const char *password_enc, int64_t *id, err *e);
/* By name (id 0) or by id (name NULL). ERR_NOTFOUND if absent. */
int accounts_get(db *d, const char *username, int64_t id, account *out, err *e);
/* The account as an API object {id, username, customer, status, created_at,
 * password_changed_at} - never the password. */
int accounts_to_jv(db *d, const account *acc, jv_arena *a, jv **out, err *e);
/* Replaces the password (encrypted) and stamps password_changed_at. A
 * closed account is ERR_CONFLICT. */
int accounts_set_password(db *d, const vault *v, int64_t id, const char *password, err *e);
/* The password in clear (for RADIUS), appended to out. */
int accounts_password(db *d, const vault *v, int64_t id, buf *out, err *e);
/* Moves an account to active, throttled, suspended or closed (the
 * subscription and dunning code call this). Setting the status it already
 * has is a no-op; leaving closed is ERR_CONFLICT; an unknown status is
 * ERR_INVALID; an unknown account ERR_NOTFOUND. */
int accounts_set_status(db *d, int64_t account_id, const char *status, err *e);
/* How many accounts (of any status) the customer has. */
int accounts_count(db *d, int64_t customer_id, int64_t *n, err *e);

/* ---- reset codes (customer self-service) ---- */
/* Sends a 6-digit code for a password reset of acc to the customer's
 * verified primary phone: writes a verification_codes row (purpose
 * reset_pppoe, code as vault_index(v, "vcode", "<customer_id>:<code>"),
 * valid ACCOUNT_CODE_TTL_MS, ACCOUNT_CODE_ATTEMPTS attempts) and an outbox
 * message (event pppoe_reset_code, channel log, payload {code, username}).
 * ERR_CONFLICT (tags no_phone, phone_not_verified, account_closed) when it
 * cannot be sent; ERR_LIMIT (tag too_soon) with *retry_after_s set when the
 * last code went out less than ACCOUNT_CODE_RESEND_MS ago. now_ms is the
 * current time (a parameter so tests can move the clock). *expires_ms gets
 * the code's expiry and masked_phone (may be NULL) where it went. Runs
 * inside the caller's transaction. */
int accounts_reset_code_send(db *d, const vault *v, const account *acc, int64_t now_ms, int64_t *expires_ms,
                             int64_t *retry_after_s, char masked_phone[32], err *e);
/* Checks a code the customer read back against the latest reset code of
 * the account's customer: 0 when it matches (the code is used up),
 * ERR_CONFLICT (tag no_code) when there is no live code (none sent,
 * expired, used or out of attempts), ERR_INVALID (tag wrong_code, field
 * "code") when it does not match - the attempt is counted, so the caller
 * commits that. *attempts_left gets what is left (may be NULL). */
int accounts_reset_code_check(db *d, const vault *v, const account *acc, const char *code, int64_t now_ms,
                              int *attempts_left, err *e);

#endif
