/* payorders.h - payment orders (what we asked a channel to collect) and
 * the settlement of the channels' verified notifications.
 *
 * A notification that a channel plugin verified (channels.h) is settled
 * here, in the caller's transaction, together with the record of the
 * notification itself: it credits the order it names exactly once (the
 * channel's transaction id is unique per channel, payments.h), holds for
 * review anything that does not match the order (amount, app, merchant,
 * currency, an unknown order) and credits nothing then. When the payment
 * leaves an overdue or suspended customer with nothing overdue, the
 * customer is active again and a service.restore event is queued for the
 * network. */
#ifndef BB_PAYORDERS_H
#define BB_PAYORDERS_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"
#include "paychan.h"
#include "vault.h"

#define PAYORDER_NO_MAX 40

typedef struct payorder_new {
    int64_t customer_id;
    int64_t invoice_id;      /* the invoice it pays, or 0 */
    const char *channel;
    int64_t amount;          /* fen, > 0 */
    int64_t ttl_min;         /* minutes until it expires */
    const char *by;
} payorder_new;

/* Creates an open order inside the caller's transaction; writes its
 * out_trade_no ("BB" + YYYYMMDD + 8 digits: only letters and digits, as
 * every channel accepts). */
int payorders_create(db *d, const payorder_new *in, int64_t *id, char out_trade_no[PAYORDER_NO_MAX], err *e);
/* The order as an API object. */
int payorders_get(db *d, const char *out_trade_no, jv_arena *a, jv **out, err *e);

/* What the channel's settings say the notification must show (NULL or ""
 * for a setting not given). */
typedef struct payorder_expect {
    const char *app_id;
    const char *merchant_id;
    struct ruleset *rules;   /* orders what a payment settles beyond its order's invoice (payments.h) */
} payorder_expect;

/* The notification as received, kept with its outcome. */
typedef struct payorder_raw {
    const char *headers_json;
    const char *body;
    size_t body_len;
    const char *source;
} payorder_raw;

typedef struct payorder_result {
    char outcome[16];        /* credited, duplicate, held, ignored */
    char reason[200];        /* why held or ignored */
    int64_t notification_id;
    int64_t order_id;
    int64_t payment_id;
    int64_t customer_id;
    int restored;            /* the customer became active again */
} payorder_result;

/* Settles a verified notice inside the caller's transaction (ERR_INTERNAL
 * outside one). Returns 0 for every outcome (held and ignored included:
 * they are recorded, the channel is answered that all is well); an error
 * only when the database fails - then nothing may be acknowledged. */
int payorders_settle(db *d, const vault *v, const char *channel, const payorder_expect *x, const paychan_notice *nt,
                     const payorder_raw *raw, const char *today, payorder_result *r, err *e);

struct cfg;
/* Asks the channels about open orders no notification came for in
 * after_min minutes (at most `limit` of them), and settles what they say
 * was paid as a notification would be, each in its own transaction with
 * its audit record (actor job:payments.query). Channels without queries
 * are skipped. *asked and *credited get how many. Runs its own event loop
 * for the requests: call it from a job, never from the daemon's loop. */
int payorders_query_due(db *d, const vault *v, const struct cfg *c, int64_t after_min, int limit, int *asked, int *credited,
                        err *e);

/* Marks open orders whose time is up as expired; *n gets how many. */
int payorders_expire(db *d, int *n, err *e);

#endif
