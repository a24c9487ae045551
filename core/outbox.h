/* outbox.h - the transactional outbox: messages to customers.
 *
 * A message (a verification code now; bills, reminders and dunning notices
 * later) is written in the same transaction as the change that causes it and
 * delivered afterwards by the job "outbox.deliver". So a change that rolls
 * back never sends anything, and a change that commits is never forgotten
 * because the process died before talking to a gateway.
 *
 * A message is:
 *   event      what happened, the template's name ("verification_code")
 *   channel    how it goes: log, sms, email, wechat
 *   customer   who it is about (may be none)
 *   recipient  a phone number or an address; stored encrypted (vault place
 *              "outbox.recipient"), never in clear
 *   payload    the template's variables, a JSON object
 *   dedupe_key optional: a second message with the same key is dropped, so a
 *              retried request or job does not send twice
 *
 * Delivery is at least once: a message may go out twice if the process dies
 * between handing it over and recording it as sent. The dispatcher
 * (notify.h) delivers every channel that has settings: SMS, e-mail and
 * WeChat through their drivers, with retries and dead letters; "log" as a
 * log line, for development and for operators without a gateway. To queue
 * a message to a customer by their preference, use notify_customer(). */
#ifndef BB_OUTBOX_H
#define BB_OUTBOX_H

#include <stdint.h>

#include "buf.h"
#include "db.h"
#include "err.h"
#include "json.h"
#include "vault.h"

/* Queues one message inside the caller's open transaction (ERR_INTERNAL
 * outside one). event: 1-48 of a-z 0-9 _ . ; channel: log, sms, email or
 * wechat; customer_id 0 for none; recipient (plain text, may be NULL) is
 * encrypted here; payload must be an object (NULL: {}); dedupe_key may be
 * NULL. A message whose dedupe_key is already queued is silently dropped
 * (returns 0). */
int outbox_enqueue(db *d, const vault *v, const char *event, const char *channel, int64_t customer_id,
                   const char *recipient, const jv *payload, const char *dedupe_key, err *e);
/* The same with the payload as the JSON text of an object (NULL: {}), as
 * json_write would write it: for callers that queue a message per bill and
 * write their few fields directly. */
int outbox_enqueue_json(db *d, const vault *v, const char *event, const char *channel, int64_t customer_id,
                        const char *recipient, const char *payload, const char *dedupe_key, err *e);

/* The recipient's stored form (encrypted for the place "outbox.recipient"),
 * appended to out: what outbox_enqueue stores for it. */
int outbox_seal_recipient(const vault *v, const char *recipient, buf *out, err *e);
/* outbox_enqueue_json with the recipient sealed ahead (outbox_seal_recipient),
 * or NULL for none. */
int outbox_enqueue_sealed(db *d, const char *event, const char *channel, int64_t customer_id, const char *recipient_enc,
                          const char *payload, const char *dedupe_key, err *e);

/* The log channel alone, in one transaction (the dispatcher of notify.h
 * does this and the rest; kept for callers that want only the log).
 * Delivers up to `limit` due messages of the "log" channel, oldest first, in
 * one transaction of its own: each becomes one log line (event
 * "outbox_log") with the recipient masked (138****8000) and the payload's
 * personal fields masked, and is marked sent. A message whose recipient
 * cannot be decrypted is marked dead with the reason. *sent gets how many
 * were delivered. */
int outbox_deliver_log(db *d, const vault *v, int limit, int *sent, err *e);

#endif
