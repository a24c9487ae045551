/* customers.h - the customer file.
 *
 * A customer is known by a code the system makes: a prefix, an 8-digit
 * sequence and a Damm check digit ("C000012340"), so a mistyped code is
 * caught instead of finding someone else. Codes are never reused.
 *
 * Personal data: the ID-card number, phones and e-mail are encrypted with
 * the vault and found through keyed hashes (vault_index kinds "idcard",
 * "phone", "email"); the name and the address stay in clear so they can be
 * searched, and are masked per role on output (privacy.h). Status moves
 * prospect -> active -> overdue -> suspended -> closed along the allowed
 * transitions only.
 *
 * Search, phone verification and the 360-degree view are here too: they
 * are what the API, the CLI and the tests share. */
#ifndef BB_CUSTOMERS_H
#define BB_CUSTOMERS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "db.h"
#include "err.h"
#include "json.h"
#include "vault.h"

#define CUSTOMER_CODE_MAX 24

/* ---- codes ---- */
/* The Damm check digit of a string of decimal digits. */
int customers_check_digit(const char *digits);
/* "C" + 8-digit id + check digit. */
void customers_make_code(const char *prefix, int64_t id, char out[CUSTOMER_CODE_MAX]);
/* 0 if code is well formed with a correct check digit, else ERR_INVALID
 * saying what is wrong (a typo is reported as such). */
int customers_parse_code(const char *prefix, const char *code, int64_t *id, err *e);

/* ---- validation and normalisation of personal data ---- */
/* Mainland mobile: accepts spaces, dashes and a +86/0086 prefix; writes
 * the 11 digits. */
int customers_normalize_mobile(const char *in, char out[16], err *e);
/* 18-character resident ID: region, birth date and ISO 7064 MOD 11-2
 * check character; a lower-case x is accepted and written upper case. */
int customers_normalize_id_card(const char *in, char out[20], err *e);
int customers_normalize_email(const char *in, char out[256], err *e);

/* ---- lookups used by other subsystems ---- */
/* The internal id of a customer code (ERR_NOTFOUND, or ERR_INVALID for a
 * malformed code or a wrong check digit). */
int customers_id_by_code(db *d, const char *code, int64_t *id, err *e);
int customers_code_by_id(db *d, int64_t id, char code[CUSTOMER_CODE_MAX], err *e);

/* ---- status ---- */
/* 1 if the transition from -> to is allowed. */
int customers_transition_ok(const char *from, const char *to);

/* ---- records (implemented in customers.c) ---- */

/* Creates a customer from an API-shaped object:
 *   {type, name, company_name?, tax_id?, id_card?, phone?, phone2?, email?,
 *    address: {province, city, district, street?, community?, building?,
 *              unit?, floor?, room?, gis_code?},
 *    billing_address?: {...}, tags?: [..], notes?, status?}
 * Every field is validated (ERR_INVALID naming the field); an ID card or
 * primary phone that already belongs to someone else is ERR_CONFLICT naming
 * that customer's code. Runs inside the caller's transaction. */
int customers_create(db *d, const vault *v, const char *code_prefix, const jv *in, const char *by, int64_t *id,
                     err *e);
/* The customer as an API object (decrypted, unmasked: the caller filters it
 * through privacy_filter), in arena a. */
int customers_get(db *d, const vault *v, int64_t id, jv_arena *a, jv **out, err *e);
/* Applies a partial update (same fields as create except type and status);
 * changing a phone number clears its verification. When `before` is not
 * NULL it gets the customer as it was (as customers_get, in arena ba): the
 * update reads it anyway, and an audited caller needs it for the diff. */
int customers_update(db *d, const vault *v, int64_t id, const jv *patch, jv_arena *ba, jv **before, err *e);
int customers_set_status(db *d, int64_t id, const char *status, err *e);

/* ---- bulk creation (imports, benchmarks) ----
 * customers_create is customers_prepare then customers_insert. The first
 * does everything that needs no database - parsing, validation,
 * normalisation, encryption, keyed hashes - and may run on any thread
 * (the vault is read-only); the second writes on the connection's thread.
 * The data written is the same either way. */
typedef struct customer_prepared customer_prepared;
/* Validates and seals `in` (the shape of customers_create). The result
 * holds copies of everything it needs; free it with customers_prepared_free. */
int customers_prepare(const vault *v, const jv *in, customer_prepared **out, err *e);
void customers_prepared_free(customer_prepared *p);
/* The service address's city and district (what accounts.username gets). */
void customers_prepared_place(const customer_prepared *p, const char **city, const char **district);
/* Writes a prepared customer, inside the caller's transaction. An ID card
 * or phone that someone has is ERR_CONFLICT naming that customer, as with
 * customers_create (the unique indexes catch it; it is explained after).
 * next_id 0: the database picks the id. next_id > 0: the customer gets that
 * id (and its code at once, sparing a second write) - for a bulk load that
 * holds the write lock and counts on from the highest id ever used. */
int customers_insert(db *d, const char *code_prefix, const customer_prepared *p, const char *by, int64_t next_id, int64_t *id,
                     err *e);

/* ---- more validation ---- */
/* A backup phone: a mainland mobile, or a landline with its area code
 * ("0571-88886666", "(010) 6552 9988", "+86 571 8888 6666"); writes the
 * digits ("057188886666"). Errors name the field "phone2". */
int customers_normalize_phone2(const char *in, char out[16], err *e);
/* Unified social credit code (GB 32100-2015): 18 characters of
 * 0-9 A-H J-N P-R T U W-Y, digits in positions 3-8 (the region), and the
 * MOD 31 check character. Lower case is accepted and written upper case;
 * errors name the field "tax_id". */
int customers_normalize_tax_id(const char *in, char out[20], err *e);
/* 1 if tag is 1-32 of a-z 0-9 _ - . */
int customers_tag_valid(const char *tag);
/* 1 if s is one of prospect, active, overdue, suspended, closed. */
int customers_status_valid(const char *s);
/* The statuses `from` may move to, as "active, closed" ("none" for none). */
void customers_next_statuses(const char *from, char *out, size_t n);

/* ---- search ---- */
#define CUSTOMERS_CURSOR_MAX 600

/* Filters are combined with AND; NULL means "not given". `q` is guessed:
 * a customer code (checked: a wrong check digit is an error, not a miss),
 * an ID-card number, a mobile or landline number (primary or backup phone),
 * a PPPoE user name, an installed device's serial, else a name prefix. */
typedef struct customer_query {
    const char *q;
    const char *code, *id_card, *phone, *name, *pppoe, *serial;
    const char *province, *city, *district, *street, *community, *building, *unit, *room;
    const char *status, *tag;
    const char *sort;      /* code, -code, name, -name, created_at, -created_at; NULL: the default */
    const char *cursor;    /* from a previous page, or NULL */
    int64_t limit;         /* 1-500 */
} customer_query;

/* One page of customers (API objects, unmasked: the caller filters them) in
 * a, and in `next` the cursor of the following page ("" on the last one).
 * *matched (may be NULL) gets what the search went by: "code", "id_card",
 * "phone", "pppoe", "serial", "name", "community", "district", "tag",
 * "status" or "all". ERR_INVALID names the parameter at fault. */
int customers_search(db *d, const vault *v, const customer_query *cq, jv_arena *a, jv **list,
                     char next[CUSTOMERS_CURSOR_MAX], const char **matched, err *e);
/* The SQLite query plan of the statement customers_search would run for cq
 * (one line per step), for tests that every search uses an index. */
int customers_search_plan(db *d, const vault *v, const customer_query *cq, buf *plan, err *e);

/* ---- phone verification ---- */
#define CUSTOMERS_VCODE_TTL_MS (5 * 60 * 1000LL)
#define CUSTOMERS_VCODE_ATTEMPTS 5
#define CUSTOMERS_VCODE_RESEND_MS (60 * 1000LL)

typedef struct verify_sent {
    char expires_at[25];
    int64_t retry_after_s;   /* with ERR_LIMIT: how long until a new code may be sent */
} verify_sent;

/* Makes a 6-digit code for the customer's primary phone and queues it in the
 * outbox (event verification_code, channel log, payload {code, customer})
 * inside the caller's transaction; only a keyed hash of the code is kept.
 * `now_ms` is the time to act at (Unix ms), so tests can move the clock.
 * ERR_CONFLICT (tags no_phone, already_verified); ERR_LIMIT (tag
 * too_many_requests) within a minute of the previous code, with
 * out->retry_after_s. `code` (may be NULL) gets the code, for tests. */
int customers_verify_send(db *d, const vault *v, int64_t id, int64_t now_ms, verify_sent *out, char code[7], err *e);

typedef enum {
    VERIFY_OK,            /* right code: phone_verified_at set, code used */
    VERIFY_WRONG,         /* attempts + 1; *attempts_left tells how many remain */
    VERIFY_EXPIRED,       /* older than 5 minutes, used, or for another number */
    VERIFY_TOO_MANY,      /* 5 wrong attempts already */
    VERIFY_NONE           /* no code was ever sent */
} verify_result;

/* Checks a code the customer read back. Returns 0 with *res (the writes of
 * VERIFY_OK and VERIFY_WRONG are made in the caller's transaction, which
 * should commit for both), or a negative error. A code that is not 6
 * digits is ERR_INVALID naming "code". */
int customers_verify_confirm(db *d, const vault *v, int64_t id, const char *code, int64_t now_ms, verify_result *res,
                             int *attempts_left, err *e);

/* ---- the 360-degree view ---- */
/* The customer (as customers_get) with, beside the profile: service_accounts,
 * devices (with their held deposit), deposits, subscriptions (plan, add-ons
 * and the price in force on `today`), pending_charges, balance,
 * latest_invoices, latest_payments, dunning and tickets. Only the profile
 * fields are personal data (the nested parts carry none), so the whole
 * object goes through the "customer" field filter. */
int customers_overview(db *d, const vault *v, int64_t id, const char *today, jv_arena *a, jv **out, err *e);

#endif
