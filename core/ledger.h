/* ledger.h - each customer's account: an append-only list of entries whose
 * sum is the balance.
 *
 * Sign: amount > 0 means the customer owes more (an invoice, a refund paid
 * out, a debit adjustment); amount < 0 means less (a payment, a credit
 * note, a credit adjustment, a write-off, a deposit given back). The
 * "deposit" account holds what the ISP keeps of the customer's money as
 * device deposits: deposit_held adds to it, deposit_returned and
 * deposit_forfeited take from it.
 *
 * Credit available to a customer = the open amounts of their invoices
 * minus the balance: money received or credited that no invoice has taken
 * yet. Nothing else stores it, so it cannot drift.
 *
 * Entries are written only by the modules that make the documents behind
 * them (invoices, credit notes, payments, deposits), in the transaction
 * that makes the document. The schema refuses UPDATE and DELETE. */
#ifndef BB_LEDGER_H
#define BB_LEDGER_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"

typedef struct ledger_entry {
    int64_t customer_id;
    const char *account;        /* "customer" (NULL means it) or "deposit" */
    const char *kind;           /* invoice, payment, credit_note, adjustment, refund, deposit_held,
                                 * deposit_returned, deposit_forfeited, write_off */
    int64_t amount;             /* fen, signed as above; never 0 */
    const char *entry_date;     /* business day, YYYY-MM-DD */
    int64_t invoice_id, credit_note_id, payment_id, deposit_id;   /* 0: none */
    const char *reason;         /* adjustments and write-offs: required */
    const char *approved_by;    /* adjustments: required */
    const char *by;             /* who: "user:alice", "system", "cli:root" */
    int reversal;               /* 1: takes back an earlier entry of the same kind and document
                                 * (a void: invoice, deposit_held), so its sign is the opposite */
} ledger_entry;

/* Appends one entry inside the caller's transaction (ERR_INTERNAL
 * otherwise); *id (may be NULL) gets its id. Checks the kind against the
 * account and the sign against the kind. */
int ledger_post(db *d, const ledger_entry *le, int64_t *id, err *e);
/* Appends n entries (each checked as by ledger_post) in as few statements
 * as it can: what a document posts at once (an invoice and the deposits it
 * bills). All or none. */
int ledger_post_many(db *d, const ledger_entry *les, size_t n, err *e);

typedef struct ledger_balance {
    int64_t balance;            /* sum of the customer account: > 0 owed */
    int64_t open;               /* sum of the open amounts of issued invoices */
    int64_t credit;             /* open - balance when positive, else 0 */
    int64_t deposits_held;      /* sum of the deposit account */
} ledger_balance;

int ledger_balance_of(db *d, int64_t customer_id, ledger_balance *out, err *e);

/* A credit or debit adjustment: reason and approver required; an approver
 * who is the person asking is refused (four eyes) unless it is the
 * command line's local admin. Posts the entry and, for a debit, nothing
 * else; a credit becomes credit available. Inside the caller's
 * transaction. */
int ledger_adjust(db *d, int64_t customer_id, int64_t amount, const char *reason, const char *approved_by,
                  const char *entry_date, const char *by, int64_t *id, err *e);

/* The customer's entries, newest first, as API objects, one page. */
int ledger_list(db *d, int64_t customer_id, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next,
                size_t nnext, err *e);

/* A held deposit was settled (devices.c deposits_settle calls it in the
 * same transaction, after its UPDATE): when an issued invoice billed the
 * deposit, "returned" posts deposit_returned -amount on the customer
 * account (the customer gets it as credit) and on the deposit account;
 * "kept" and "forfeited" post deposit_forfeited -amount on the deposit
 * account. A deposit no invoice has billed was never on the ledger: nothing
 * is posted. Inside the caller's transaction. */
int ledger_deposit_settled(db *d, int64_t deposit_id, const char *status, const char *settled_on, const char *by,
                           err *e);

/* ---- verification ---- */

typedef void (*ledger_problem_fn)(void *ud, int64_t customer_id, const char *what);

typedef struct ledger_report {
    int64_t customers;          /* checked */
    int64_t entries;
    int64_t days;
    int64_t problems;
} ledger_report;

/* Proves, for every customer (or one, when customer_id != 0), that the
 * ledger agrees with the documents: every invoice, credit note, payment,
 * refund, write-off and deposit movement has exactly its entry with the
 * same amount; the balance equals invoices - credit notes - payments +
 * refunds +/- adjustments - write-offs - deposits returned; each invoice's
 * paid equals its live allocations and paid + credited + written off <=
 * gross; each payment's allocations do not exceed it; the deposit account
 * equals the deposits billed and not yet returned or forfeited. And for
 * every business day, that the entries of each kind add up to the
 * documents of that day. Every disagreement is passed to fn (one line each,
 * naming the documents); the report counts them. Returns 0 when it could
 * check (problems or not). */
int ledger_verify(db *d, int64_t customer_id, ledger_problem_fn fn, void *ud, ledger_report *out, err *e);

#endif
