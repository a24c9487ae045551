/* customers.h - the customer file.
 *
 * A customer is known by a code the system makes: a prefix, an 8-digit
 * sequence and a Damm check digit ("C000012347"), so a mistyped code is
 * caught instead of finding someone else. Codes are never reused.
 *
 * Personal data: the ID-card number, phones and e-mail are encrypted with
 * the vault and found through keyed hashes (vault_index kinds "idcard",
 * "phone", "email"); the name and the address stay in clear so they can be
 * searched, and are masked per role on output (privacy.h). Status moves
 * prospect -> active -> overdue -> suspended -> closed along the allowed
 * transitions only. */
#ifndef BB_CUSTOMERS_H
#define BB_CUSTOMERS_H

#include <stddef.h>
#include <stdint.h>

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
 * changing a phone number clears its verification. */
int customers_update(db *d, const vault *v, int64_t id, const jv *patch, err *e);
int customers_set_status(db *d, int64_t id, const char *status, err *e);

#endif
