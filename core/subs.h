/* subs.h - subscriptions, their changes, and one-time charges.
 *
 * A subscription is one plan plus add-ons for a customer, with its billing
 * (prepaid or postpaid), period, start date, contract end, billing anchor,
 * next bill date and paid-through date. Every change to it (upgrade,
 * downgrade, suspend, resume, terminate, add or remove an add-on) is a row
 * of subscription_changes: applied at once or scheduled for a date.
 *
 * Decisions are rules (rules/subscriptions.lua, contracts in
 * docs/RULES.md, "Subscriptions"): subscriptions.schedule sets the dates of a
 * new subscription, subscriptions.addon_fits says whether an add-on goes
 * with a plan, subscriptions.change says whether a change is allowed, when
 * it takes effect and the early-termination fee. This module checks what
 * the rules return, stores it, and applies changes when they are due.
 *
 * The write functions run inside the caller's transaction (ERR_INTERNAL
 * otherwise): the caller adds its audit record and commits, or rolls back
 * on any error, so nothing is ever half written. They read everything they
 * decide on inside that transaction, so a concurrent change cannot slip in
 * between the check and the write. Dates are "YYYY-MM-DD"; `today` is the
 * caller's (the API: date_of_time(time(NULL))), never read here. */
#ifndef BB_SUBS_H
#define BB_SUBS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"
#include "lua_host.h"
#include "rules.h"

#define SUBS_MAX_ADDONS 32

/* ---- subscriptions ---- */

typedef struct subs_new {
    int64_t customer_id;
    const char *plan;                 /* product code of an active plan */
    const char *start_date;           /* NULL: today */
    const char *const *addons;        /* add-on product codes */
    size_t naddons;
    const char *account;              /* service account username, or NULL */
    const char *note;                 /* kept on the 'create' change, or NULL */
    const char *today;
    const char *by;                   /* who asks: "user:alice", "cli:root" */
} subs_new;

/* Validates and creates a subscription with its add-on items and a
 * 'create' change (applied, or scheduled when it starts after today; the
 * subscription is then 'pending' until subs_apply_due starts it).
 * ERR_INVALID / ERR_NOTFOUND / ERR_CONFLICT name the field at fault
 * ("plan", "addons[1]", "account", "start_date"); a rule that fails or
 * returns something outside its contract is ERR_RULE with `detail` (may be
 * NULL) filled. */
int subs_create(db *d, ruleset *rs, const subs_new *in, int64_t *id, rule_error *detail, err *e);

/* ---- bulk creation (imports, benchmarks) ----
 * subs_create in two halves: subs_prepare decides everything that needs
 * no database - the plan and add-ons for sale and available to the
 * customer, subscriptions.addon_fits, subscriptions.schedule - from a
 * catalog read once, on any thread that has its own rule set;
 * subs_insert checks what does need the database (the customer is not
 * closed, the account is the customer's, open and free) and writes. */
typedef struct subs_catalog subs_catalog;
/* Every product with every version, as catalog_version_at reads them. */
int subs_catalog_load(db *d, subs_catalog **out, err *e);
void subs_catalog_free(subs_catalog *c);

typedef struct subs_prepared {
    int64_t plan_id;
    int64_t addon_ids[SUBS_MAX_ADDONS];
    size_t naddons;
    char start_date[11];
    char billing[16], period[16];
    char contract_end[11], next_bill_date[11], paid_through[11];   /* "" when absent */
    int anchor_day;
    char rules_version[RULES_VERSION_LEN];
} subs_prepared;

/* Decides a subscription of `in` (customer_id and account are not used)
 * for a customer with this service address (an object: province, city,
 * district, ...) and tags (a list; NULL: none), with the same checks and
 * errors as subs_create. The catalog is only read: threads may share it. */
int subs_prepare(const subs_catalog *cat, ruleset *rs, const subs_new *in, const jv *address, const jv *tags,
                 subs_prepared *out, rule_error *detail, err *e);
/* Writes a prepared subscription for the customer, carried by account_id
 * (0: none), inside the caller's transaction; pending when it starts after
 * today. fresh: the caller created the customer and the account in this
 * transaction (so the customer is open, and the account its own, open and
 * free): not read back. */
int subs_insert(db *d, const subs_prepared *p, int64_t customer_id, int64_t account_id, int fresh, const char *note,
                const char *today, const char *by, int64_t *id, err *e);

/* Flags for subs_get. */
enum { SUBS_WITH_CHANGES = 1 };

/* The subscription as an API object (in arena a):
 *   {id, customer, plan, plan_name, status, billing, period, start_date,
 *    contract_end, anchor_day, paid_through, next_bill_date, end_date,
 *    account, created_at, created_by,
 *    items: [{id, product, name, quantity, start_date, end_date}],
 *    changes: [...] with SUBS_WITH_CHANGES (oldest first)}
 * Absent dates are null. ERR_NOTFOUND when there is no such subscription. */
int subs_get(db *d, int64_t id, int flags, jv_arena *a, jv **out, err *e);
/* The customer a subscription belongs to. */
int subs_customer_of(db *d, int64_t id, int64_t *customer_id, err *e);

/* ---- changes ---- */

typedef struct subs_change_req {
    const char *kind;       /* upgrade, downgrade, suspend, resume, terminate, addon_add, addon_remove */
    const char *product;    /* the plan (upgrade, downgrade) or add-on (addon_*); NULL otherwise */
    const char *note;       /* or NULL */
    const char *today;
    const char *by;
} subs_change_req;

typedef struct subs_change_out {
    int64_t change_id;
    int applied;            /* 1 applied now, 0 scheduled for effective_date */
    char effective_date[11];
    int64_t fee;
    int64_t charge_id;      /* the pending charge of the fee, when applied with a fee */
} subs_change_out;

/* Asks subscriptions.change and records its answer: a refusal is
 * ERR_CONFLICT tagged "change_refused" with the rule's reason as message;
 * an allowed change effective today (or earlier: never, a rule returning a
 * past date is ERR_RULE) is applied at once, a later one is scheduled.
 * Only one plan change or termination may be scheduled at a time
 * (ERR_CONFLICT "change_pending"). */
int subs_change(db *d, ruleset *rs, int64_t sub_id, const subs_change_req *req, subs_change_out *out,
                rule_error *detail, err *e);

/* A change as an API object: {id, subscription_id, kind, status,
 * effective_date, from, to, fee, rules_version, note, requested_at,
 * requested_by, applied_at}. */
int subs_change_get(db *d, int64_t change_id, jv_arena *a, jv **out, err *e);

/* Cancels a scheduled change of subscription sub_id; ERR_NOTFOUND if the
 * change is not one of its changes, ERR_CONFLICT unless it is scheduled
 * (a scheduled 'create' cannot be cancelled: terminate instead). */
int subs_cancel_change(db *d, int64_t sub_id, int64_t change_id, err *e);

/* Applies every scheduled change with effective_date <= date, oldest date
 * first, each in a transaction of its own with an audit record by "system"
 * when audit_key is not NULL. Starts pending subscriptions on their start
 * date the same way. *applied counts what was applied; a failing change is
 * left scheduled, the others still run, and the first error is returned. */
int subs_apply_due(db *d, const char *date, const uint8_t *audit_key, int *applied, err *e);

/* The scheduler job "subscriptions.apply" (daily at 00:05): opens the key
 * file named by the config for the audit trail and runs subs_apply_due for
 * the day the run was scheduled for (in the process time zone). */
struct job_ctx;
int subs_job_apply(struct job_ctx *ctx, err *e);

/* ---- one-time charges ---- */

typedef struct subs_charge_new {
    int64_t customer_id;
    int64_t subscription_id;          /* 0: none */
    const char *product;              /* a product of kind fee, or NULL */
    const char *description;          /* required without product; overrides the product's name */
    int has_unit_price;
    int64_t unit_price;               /* fen, without product */
    const char *tax_category;         /* without product */
    int64_t quantity;                 /* >= 1 */
    const char *source;               /* manual (default), install, ticket */
    const char *today;
    const char *by;
} subs_charge_new;

/* Validates and adds a pending charge. With a product, its price and tax
 * category in force today are used; a tax category is checked against the
 * tax rule's `rates` table when the rules have one. */
int subs_charge_create(db *d, ruleset *rs, const subs_charge_new *in, int64_t *id, err *e);
/* {id, customer, subscription_id, product, description, quantity,
 *  unit_price, amount, tax_category, source, status (open, billed,
 *  cancelled), created_at, created_by, billed_on, cancelled_at} */
int subs_charge_get(db *d, int64_t id, jv_arena *a, jv **out, err *e);
/* Cancels a charge no bill has taken: ERR_CONFLICT once billed or cancelled. */
int subs_charge_cancel(db *d, int64_t id, err *e);
int subs_charge_customer_of(db *d, int64_t id, int64_t *customer_id, err *e);

/* 1 if s is a real "YYYY-MM-DD" date. */
int subs_date_ok(const char *s);

#endif
