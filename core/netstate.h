/* netstate.h - a PPPoE account's desired state on the network.
 *
 * The service account's status is the desired state of the line: active
 * (the plan's rate), throttled (the throttle rate the dunning rule named),
 * suspended (no service, or a walled garden) and closed (gone from the
 * network). The dunning pass and a payment's restore change it here, in
 * their own transaction; triggers of schema/0009_network.sql record every
 * change of an account, its subscription or its plan in the change feed
 * (network_changes) that the network plugin follows (netsync.c).
 *
 * Rates are kbit/s, download and upload from the customer's point of view.
 * The text form (the dunning rule's `rate = "2M/2M"`, config values) is
 * DOWN/UP, each a number with at most three decimals and a unit: K
 * (kbit/s), M (1000 kbit/s) or G (1000000 kbit/s), upper or lower case:
 * "2M/2M", "512K/128K", "1.5M/512k", "1G/500M". Each side is a whole
 * number of kbit/s from 1 kbit/s to 100 Gbit/s. */
#ifndef BB_NETSTATE_H
#define BB_NETSTATE_H

#include <stdint.h>

#include "accounts.h"
#include "db.h"
#include "err.h"
#include "vault.h"

#define NETSTATE_KBPS_MAX 100000000 /* 100 Gbit/s */
#define NETSTATE_RATE_TEXT 48

typedef struct netstate_rate {
    int64_t down_kbps;
    int64_t up_kbps;
} netstate_rate;

/* Parses a rate "DOWN/UP" (see above). ERR_INVALID (tag invalid_rate,
 * field "rate") saying what is wrong. */
int netstate_rate_parse(const char *text, netstate_rate *out, err *e);
/* The normalised text of a rate: each side in the largest unit that holds
 * it whole ("2M/2M", "1500K/512K"). */
void netstate_rate_format(const netstate_rate *r, char out[NETSTATE_RATE_TEXT]);

/* Moves the customer's PPPoE accounts to `state`, inside the caller's
 * transaction:
 *   throttled  active and throttled accounts, at `rate` (required);
 *   suspended  active and throttled accounts;
 *   active     (a payment's restore) throttled and suspended accounts whose
 *              subscription is active - an account suspended with its
 *              subscription (a customer's own pause) stays so;
 *   closed     every account not closed yet.
 * Closed accounts stay closed, and a state never goes back down the ladder
 * (a suspended account is not throttled). *changed gets how many accounts
 * moved (may be NULL). */
int netstate_set_customer(db *d, int64_t customer_id, const char *state, const netstate_rate *rate, int64_t *changed,
                          err *e);

/* A subscription's own pause ends: its account goes back to what the
 * collection ladder holds for the customer (throttled or suspended while
 * a bill that got there is unpaid), else active; a closed account stays
 * closed. Inside the caller's transaction. */
int netstate_resume_account(db *d, int64_t account_id, int64_t customer_id, err *e);

/* What the network should hold for one account. */
typedef struct netstate_record {
    int64_t account_id;
    int64_t customer_id;
    char username[ACCOUNT_USERNAME_BUF];
    char password[ACCOUNT_PASSWORD_BUF]; /* in clear ("" when closed): netstate_wipe it after use */
    char state[16];                      /* active, throttled, suspended, closed */
    netstate_rate rate;                  /* the rate to enforce; 0/0: none known */
    char rate_from[16];                  /* "plan", "throttle" or "none" */
    char plan[49];                       /* the plan's product code, or "" */
    char error[256];                     /* why the record could not be made ("" when it was) */
} netstate_record;

/* The desired record of one account as of `today` (YYYY-MM-DD: the plan
 * version in force that day): its status; the password decrypted with the
 * vault; the rate of the plan of its subscription (the latest one not
 * terminated), or the throttle rate while throttled (the plan's when
 * none was stored). An account whose password does not decrypt gets
 * out->error and still returns 0; ERR_NOTFOUND if there is no such
 * account. */
int netstate_desired(db *d, const vault *v, int64_t account_id, const char *today, netstate_record *out, err *e);
/* The desired records of the accounts with id > after, in id order, at
 * most max; *n gets how many. */
int netstate_desired_batch(db *d, const vault *v, int64_t after, const char *today, netstate_record *out, int max, int *n,
                           err *e);
/* Forgets the passwords of n records. */
void netstate_wipe(netstate_record *r, int n);

#endif
