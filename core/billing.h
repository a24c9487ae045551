/* billing.h - one subscription's bill, computed by the rules.
 *
 * The core gathers the facts of a bill from the database - the customer and
 * their tags, the subscription, the plan and add-on versions in force, the
 * changes, pending charges and deposits not yet billed, the promotions the
 * customer may have, the balance - into a read-only context (data only, no
 * decisions). rules/billing.lua decides: billing.schedule names the period
 * and the dates, and each step of billing.steps adds lines (and the tax
 * step their tax). Every line a step returns is checked at once; a rule
 * that fails or misbehaves refuses the bill with a located error (the
 * step, its rule file and line, the customer, the path of the bad part).
 * What comes out is an invoice_new ready for invoices_issue. Nothing here
 * writes: billrun.c issues the bills, each in its own transaction. */
#ifndef BB_BILLING_H
#define BB_BILLING_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "invoices.h"
#include "json.h"
#include "rules.h"

/* What a pass reads once: the catalog (every product with its versions),
 * the tax rule's rates, the steps and where each is defined. Tied to one
 * ruleset and one thread. */
typedef struct billing_cache billing_cache;
int billing_cache_open(db *d, ruleset *rs, billing_cache **out, err *e);
void billing_cache_free(billing_cache *c);

/* Why a bill was refused. */
typedef struct bill_error {
    char code[32];          /* rule_failed (the rule raised an error), bad_output (it broke its contract) */
    char step[64];          /* "schedule", "recurring", ... or "checks" for what is checked after all steps */
    char rule[128];         /* "billing.recurring" */
    char file[128];         /* "billing.lua" */
    int line;               /* 0 when unknown */
    char message[1024];     /* located: "steps.promotions (billing.lua:210): lines[2].amount: a float (129.5)" */
} bill_error;

typedef struct bill {
    int64_t subscription_id, customer_id;
    char customer[32];      /* the customer code */
    char plan[49];          /* the plan in force at the start of the period */
    char period_from[11], period_to[11];   /* the period the rule scheduled */
    char from[11], to[11];  /* the days of it the service ran: the invoice's period */
    char issue_date[11], due_date[11], next_bill_date[11], billed_through[11];
    int nothing;            /* no day of service in the period: no invoice; next_bill_date moves on */
    int finished;           /* terminated and billed to its end: nothing more, ever (no other field set) */
    invoice_line_in *lines;
    size_t nlines;
    int64_t *changes;
    size_t nchanges;
    int64_t net, tax, gross;   /* totals of the lines that are not credit */
    int64_t credit;            /* credit applied (>= 0) */
    invoice_new inv;        /* for invoices_issue; points into the bill */
} bill;

/* Computes the next bill of subscription sub_id as of as_of (the period
 * billing.schedule gives for its next_bill_date), in arena a (the bill
 * lives as long as a). Writes nothing. ERR_RULE with f filled when a rule
 * failed or returned something outside its contract; ERR_NOTFOUND when
 * there is no such subscription; other errors are the database's. */
int billing_compute(db *d, ruleset *rs, billing_cache *bc, int64_t sub_id, const char *as_of, const char *by,
                    jv_arena *a, bill *out, bill_error *f, err *e);

/* The bill as an API object: {subscription_id, customer, plan, period,
 * service, issue_date, due_date, next_bill_date, lines: [...], net, tax,
 * gross, credit, amount_due, rules_version}. */
jv *billing_bill_jv(jv_arena *a, const bill *b);

/* The customer's subscriptions that will get a bill (not terminated and
 * fully billed), oldest first; *n set. Allocated in a. */
int billing_customer_subs(db *d, int64_t customer_id, jv_arena *a, int64_t **ids, char (**next)[11], size_t *n,
                          err *e);

#endif
