/* pipl.h - a person's rights under China's Personal Information Protection
 * Law: to get a copy of everything held about them, and to have it erased
 * once the relationship has ended.
 *
 * Export gathers every table that holds something about one customer.
 * Erasure anonymises a closed customer: names, ID-card number, phones,
 * e-mail, the detailed address, tags, notes and message recipients go;
 * the records themselves - invoices, payments, the ledger, subscriptions,
 * the audit trail - stay, because accounting law requires them and they no
 * longer point to a person. Subsystems that add personal data add it here. */
#ifndef BB_PIPL_H
#define BB_PIPL_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"
#include "vault.h"

/* Everything held about the customer, decrypted, as one object in arena a. */
int pipl_export(db *d, const vault *v, int64_t customer_id, jv_arena *a, jv **out, err *e);
/* Anonymises a closed customer inside the caller's transaction (ERR_CONFLICT
 * unless closed; already erased is ERR_CONFLICT too). *summary gets what
 * was removed, for the audit record. */
int pipl_erase(db *d, int64_t customer_id, jv_arena *a, jv **summary, err *e);

#endif
