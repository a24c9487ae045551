/* dunning.h - the daily collection pass: for each unpaid bill, the stage
 * rules/dunning.lua says is due, carried out once. C checks what the rule
 * returns and records it; which stage, when and what it does is the
 * rule's. A paid bill is not open, so a payment stops the ladder. */
#ifndef BB_DUNNING_H
#define BB_DUNNING_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "vault.h"

struct ruleset;

typedef struct dunning_report {
    int64_t invoices;        /* unpaid bills looked at */
    int64_t acted;           /* stages carried out */
    int64_t skipped;         /* stages passed over (recorded as skipped) */
    int64_t notices, status_changes, network, tasks;
    int64_t failed;          /* bills whose rule failed (logged, the pass goes on) */
} dunning_report;

/* One pass as of business day as_of (YYYY-MM-DD) with rule set rs (its
 * version recorded with each action). Bills are read and acted on in
 * batches, each one transaction holding the write lock (a bill is a
 * savepoint in it), so nothing pays a bill between reading it as unpaid
 * and acting; a crash loses at most the batch in progress, which the next
 * pass does again. Stages are counted in /metrics after each commit.
 * dry_run computes and counts, and writes nothing. */
int dunning_pass(db *d, const vault *v, struct ruleset *rs, const char *rules_version, const char *as_of, int dry_run,
                 dunning_report *r, err *e);

/* The ladder lets go of a customer who has nothing overdue left (after a
 * payment by any channel, or a credit note): a customer it held (overdue,
 * suspended, or a line throttled or cut - a late pass acts the throttle
 * only) is active again, the PPPoE accounts too (the network plugin
 * follows within a second, netsync.c), and `service.restore` goes into the
 * outbox with reason, channel and payment (both may be NULL / 0). Inside
 * the caller's transaction; *restored (may be NULL) says whether it did. */
int dunning_release(db *d, int64_t customer_id, const char *reason, const char *channel, int64_t payment_id, int *restored,
                    err *e);

#endif
