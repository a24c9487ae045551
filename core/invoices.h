/* invoices.h - invoices, credit notes, numbering and what settles a bill.
 *
 * An invoice is made by the billing engine (billing.h) or by staff, always
 * inside the caller's transaction, and is either a draft (no number, not on
 * the ledger, editable by replacing it) or issued: it then has a gapless
 * number from its series, taken in the same transaction, a ledger entry for
 * its gross, and an "invoice_issued" message in the outbox. An issued
 * invoice never changes except for what settles it (paid, credited, written
 * off, and the status those give: open, partially_paid, paid, written_off)
 * and voiding, which only an invoice nothing has settled allows.
 * Corrections are credit notes, whole or per line, with a series of their
 * own.
 *
 * Lines carry gross amounts (tax included), their tax category, rate and
 * tax, and which billing step and rule made them. Lines of kind "credit"
 * show customer credit applied to the bill: they are not part of net, tax
 * or gross; they are an allocation of credit (see ledger.h).
 *
 * Numbers are PREFIX-YYYY-NNNNNN (a series per prefix and year of the
 * issue date): "INV-2026-000001"; credit notes "CN-2026-000001". */
#ifndef BB_INVOICES_H
#define BB_INVOICES_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "db.h"
#include "err.h"
#include "json.h"
#include "ledger.h"
#include "notify.h"
#include "vault.h"

#define INVOICE_NUMBER_MAX 32
#define INVOICES_CURSOR_MAX 32

/* The prefixes of the two series (config billing.invoice_prefix and
 * billing.credit_note_prefix; "INV" and "CN" until called). Process-wide:
 * call it once after the configuration is read and before any thread
 * issues a document (the CLI after cfg_finish, which covers `serve`). */
void invoices_set_prefixes(const char *invoice_prefix, const char *credit_note_prefix);

typedef struct invoice_line_in {
    const char *kind;            /* recurring, addon, one_time, proration, discount, deposit, credit, fee, adjustment */
    const char *description;
    const char *product_code;    /* or NULL */
    int product_version;         /* 0: none */
    int64_t quantity;            /* >= 1 */
    int64_t unit_price;          /* fen */
    int64_t amount;              /* fen, tax included; quantity * unit_price unless the rule prorated */
    const char *tax_category;
    int tax_rate;                /* percent, 0-100 */
    int64_t tax;                 /* fen, same sign as amount */
    const char *period_from, *period_to;   /* or NULL */
    const char *step;            /* the billing step that made it ("manual" for staff) */
    const char *rule;            /* its "module.function" ("manual" for staff) */
    const jv *detail;            /* an object or NULL */
    int64_t pending_charge_id;   /* 0: none; the charge is marked billed on this invoice */
    int64_t deposit_id;          /* 0: none; the deposit is marked billed and held */
} invoice_line_in;

typedef struct invoice_new {
    int64_t customer_id;
    int64_t subscription_id;     /* 0: none */
    const char *period_from, *period_to;   /* the service period, or NULL */
    const char *issue_date;      /* YYYY-MM-DD */
    const char *due_date;        /* >= issue_date */
    const char *rules_version;
    int64_t bill_run_id;         /* 0: none */
    const invoice_line_in *lines;
    size_t nlines;
    const int64_t *change_ids;   /* subscription changes this bill accounts for */
    size_t nchanges;
    const char *billed_through;  /* the subscription's new billed_through, or NULL */
    const char *next_bill_date;  /* with billed_through: the subscription's next bill date moves there in the
                                  * same write (the billing run's), or NULL to leave it */
    const char *by;
} invoice_new;

/* Checks every line (a known kind, a description, integer fen, quantity
 * >= 1, rate 0-100, tax consistent with the rate: |tax - amount * rate /
 * (100 + rate)| < 1 fen, credit lines negative and untaxed and no larger
 * than the credit available or the bill), then writes the invoice and its
 * lines and issues it: number, ledger entry, credit allocation, the
 * charges, deposits and changes marked as billed, the subscription's
 * billed_through, the outbox message (vault for its recipient). A second
 * invoice for the same subscription and period is ERR_CONFLICT tagged
 * "already_billed" and writes nothing. Errors name the line
 * ("lines[3].tax"). *id and number (may be NULL) get what was made. */
int invoices_issue(db *d, const vault *v, const invoice_new *in, int64_t *id, char number[INVOICE_NUMBER_MAX],
                   err *e);

/* invoices_issue in two halves, for a billing run that reads on one thread
 * and writes on another. invoices_prepare only reads (in a read or a write
 * transaction): invoices_issue's checks, the credit available, the
 * subscription's billed_through, the customer as the bill names them, the
 * e-bill's recipients (sealed) and its payload but for the number, the
 * lines' details as JSON. invoices_issue_prepared then takes the number
 * and writes what invoices_issue writes, in the caller's write
 * transaction; its errors are invoices_issue's for the writes, and it does
 * not check again what the preparation checked. A preparation is made for
 * one invoice_new, `in` itself (the same object, unchanged but for
 * bill_run_id and next_bill_date, which it does not read), serves it once,
 * and holds while nothing of that customer (file, addresses, contacts,
 * tags, ledger, open invoices) or subscription has changed since it read
 * them: the caller sees to that. Nothing else is read ahead: the number
 * series is the writer's. An invoice_prep starts zeroed; invoices_prepare
 * may reuse one (keeping its memory); invoices_prep_free frees it. Its
 * members are invoices.c's. */
typedef struct invoice_prep {
    const invoice_new *in;       /* what it was made for; NULL: not made */
    int64_t net, tax, gross, credit;
    char code[32];               /* the customer's */
    int moves_sub, have_prev_billed;
    char prev_billed_through[11], prev_next_bill_date[11];
    buf bill_to;                 /* JSON */
    int pay_split;               /* the e-bill's payload is pay_head NUMBER pay_tail, the link made here */
    int pay_link;                /* it has a pay link */
    buf pay_head, pay_tail, pay; /* pay: the payload, on the writer */
    notify_to to;
    int details;                 /* the lines' details are written: */
    buf detail_text;             /* each NUL-terminated, */
    size_t *detail_at, detail_cap;   /* line i's at detail_at[i] (SIZE_MAX: none) */
} invoice_prep;
int invoices_prepare(db *d, const vault *v, const invoice_new *in, invoice_prep *p, err *e);
int invoices_issue_prepared(db *d, const invoice_new *in, invoice_prep *p, int64_t *id, char number[INVOICE_NUMBER_MAX],
                            err *e);
void invoices_prep_free(invoice_prep *p);

/* The same checks and writes without issuing: a draft (no number, not on
 * the ledger, charges not taken). invoices_finalize issues it. */
int invoices_create_draft(db *d, const invoice_new *in, int64_t *id, err *e);
int invoices_finalize(db *d, const vault *v, int64_t id, const char *issue_date, const char *by,
                      char number[INVOICE_NUMBER_MAX], err *e);

/* Voids an issued invoice that nothing has settled (ERR_CONFLICT otherwise)
 * with a reason: status void, a reversing ledger entry, its charges and
 * deposits free again for the next bill, its period free for a new one. */
int invoices_void(db *d, int64_t id, const char *reason, const char *by, err *e);

/* The invoice as an API object with its lines and settlements; by number
 * or id. ERR_NOTFOUND when there is none. */
int invoices_get(db *d, int64_t id, jv_arena *a, jv **out, err *e);
int invoices_id_by_number(db *d, const char *number, int64_t *id, err *e);
/* Filters: customer_id 0 for all; status NULL for any; one page, newest first. */
int invoices_list(db *d, int64_t customer_id, const char *status, const char *cursor, int64_t limit, jv_arena *a,
                  jv **list, char *next, size_t nnext, err *e);

/* "Why was I charged this?": each line with its step, rule, rule-set
 * version and the rule's own explanation, as text lines in out. */
int invoices_explain(db *d, int64_t id, jv_arena *a, jv **out, err *e);

/* ---- credit notes ---- */

typedef struct credit_line_in {
    int64_t invoice_line_id;
    int64_t amount;              /* fen, tax included, same sign as the line, at most what is left of it */
} credit_line_in;

/* A credit note against an issued invoice: whole (nlines 0: every line for
 * what is left of it) or per line. Tax is split at each line's rate, half
 * up; a line credited in full gives back exactly its tax. The note takes a
 * number, a ledger entry, raises the invoice's credited and, when the
 * invoice was already paid beyond what is left to pay, moves the excess
 * back to the customer's credit. A void invoice cannot be credited. */
int invoices_credit(db *d, int64_t invoice_id, const credit_line_in *lines, size_t nlines, const char *reason,
                    const char *issue_date, const char *by, int64_t *id, char number[INVOICE_NUMBER_MAX], err *e);
int invoices_credit_note_get(db *d, int64_t id, jv_arena *a, jv **out, err *e);
int invoices_credit_note_id_by_number(db *d, const char *number, int64_t *id, err *e);
/* The id of the invoice's line number seq (1, 2, ... as shown), for
 * callers that name lines as people see them. ERR_INVALID naming `field`
 * when there is no such line. */
int invoices_line_id(db *d, int64_t invoice_id, int64_t seq, const char *field, int64_t *line_id, err *e);

/* Writes off what is left to pay of an issued invoice (status written_off,
 * a ledger entry), with a reason. */
int invoices_write_off(db *d, int64_t id, const char *reason, const char *entry_date, const char *by, err *e);

/* ---- settling ---- */

/* Allocates `amount` of payment payment_id (0: of the customer's credit) to
 * the invoice: at most what is left to pay, and for a payment at most what
 * is left of it. Updates paid and the status. */
int invoices_allocate(db *d, int64_t invoice_id, int64_t payment_id, int64_t amount, err *e);

/* ---- the 360-degree view ---- */

/* What customers_overview shows of billing: the balance (ledger.h), the
 * newest invoices and payments (up to `n` each, newest first) as short
 * objects without personal data: invoices {number, period_from, period_to,
 * issue_date, due_date, gross, paid, balance_due, status}, payments {id,
 * channel, amount, entry_date, unallocated}. */
int invoices_overview_parts(db *d, int64_t customer_id, int n, jv_arena *a, ledger_balance *balance,
                            jv **latest_invoices, jv **latest_payments, err *e);

#endif
