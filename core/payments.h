/* payments.h - money received, and what it settles.
 *
 * A payment is one row with a ledger entry (amount < 0 on the customer
 * account), recorded in the transaction that learns of it. It settles the
 * invoice it was made for, then the oldest open invoices; what is left is
 * the customer's credit (ledger.h), taken by the next bill. A channel's
 * transaction id is unique per channel, so the same money reported twice
 * is credited once. The channels themselves (counter, Alipay, WeChat Pay,
 * bank transfer) and refunds are the payments issue's; this is the part
 * billing needs. */
#ifndef BB_PAYMENTS_H
#define BB_PAYMENTS_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"

typedef struct payment_new {
    int64_t customer_id;
    const char *channel;          /* counter, bank, ... */
    const char *channel_txn_id;   /* the channel's transaction id; a receipt number at the counter */
    int64_t amount;               /* fen, > 0 */
    int64_t invoice_id;           /* the invoice it was made for, or 0 */
    const char *entry_date;       /* business day */
    const char *note;             /* or NULL */
    const char *by;
    struct ruleset *rules;        /* orders what is left after invoice_id (payments.allocation_order);
                                   * NULL: what is left stays credit */
} payment_new;

struct ruleset;

/* Records and allocates a payment inside the caller's transaction. The
 * same channel and channel_txn_id again is ERR_CONFLICT tagged
 * "duplicate" naming the payment that has it (*id gets it). A customer
 * held by the collection ladder (overdue, suspended, a line throttled or
 * cut) with nothing overdue left after it is active again at once, its
 * PPPoE accounts too, with `service.restore` in the outbox; *restored
 * (may be NULL) says so. */
int payments_record(db *d, const payment_new *in, int64_t *id, int *restored, err *e);

typedef struct payment_refund {
    int64_t payment_id;
    int64_t amount;               /* fen, > 0 */
    const char *reason;           /* with the channel's refund id when it went through one */
    const char *entry_date;       /* business day */
    const char *by;
    int via_channel;              /* the channel has taken the refund (its plugin's refund call) */
} payment_refund;

/* What a payment could give back now, and what the channel needs for it. */
typedef struct payment_refundable {
    int64_t customer_id;
    char channel[40], channel_txn_id[65], out_trade_no[40], status[16], entry_date[11];
    int64_t amount, refunded;
    int64_t free_part;            /* of the payment, what no invoice took */
    int64_t credit;               /* the customer's credit */
    int64_t refundable;           /* the smaller of the two */
    int64_t refunds;              /* refunds recorded so far */
} payment_refundable;

int payments_refundable(db *d, int64_t payment_id, payment_refundable *out, err *e);

/* Records money paid back to the customer from a counter or bank payment,
 * inside the caller's transaction: the payment's refunded part and a
 * refund entry in the ledger. Only what settles nothing can go back (the
 * part of the payment no invoice took, within the customer's credit):
 * ERR_CONFLICT exceeds_refundable otherwise, refund_through_channel for
 * a channel's payment the channel has not taken back (via_channel). */
int payments_refund(db *d, const payment_refund *in, err *e);

/* The payment as an API object with its allocations. */
int payments_get(db *d, int64_t id, jv_arena *a, jv **out, err *e);
/* A customer's payments, newest first, one page. */
int payments_list(db *d, int64_t customer_id, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next,
                  size_t nnext, err *e);

#endif
