/* notify.h - delivering the outbox to customers: SMS, e-mail, WeChat
 * template messages and the log.
 *
 * Messages are queued with outbox_enqueue() (or notify_customer(), which
 * finds the customer's phone, address or openid) in the transaction of the
 * change that causes them. A dispatcher then delivers them:
 *
 *   claim    due messages (pending or failed, next_attempt_at <= now) are
 *            claimed in short transactions by moving next_attempt_at past a
 *            lease: a worker that dies leaves them due again;
 *   render   rules/notices.lua turns (event, channel, payload) into the text,
 *            subject and body, or WeChat template fields; what it returns is
 *            checked (types, lengths: an SMS of more than 500 characters is
 *            refused); a failing rule fails that attempt, never the worker.
 *            Its quiet_hours postpone a channel's messages to the window's end;
 *   send     through the channel's driver: "log" and "smtp" are built in, the
 *            others are plugins (notichan.h: sms_http, wechat_tpl) whose HTTP
 *            requests the core sends on its event loop, at most
 *            notify.concurrency at a time per channel and notify.CHANNEL.rate
 *            per second (a token bucket);
 *   record   sent (time, the gateway's id), or a failed attempt tried again
 *            after base * factor^(n-1) seconds (capped, with jitter), or dead
 *            after notify.max_attempts or a refusal no retry changes. Every
 *            attempt is a row of outbox_attempts. Results are written in
 *            batches (one durable commit for many messages).
 *
 * Delivery is at least once: a message handed to a gateway whose result is
 * not yet recorded when the process dies is sent again after its lease.
 * A channel with no settings (no notify.CHANNEL.* key; "log" is always
 * there) is not delivered: its messages wait, pending, until it is set up.
 *
 * The daemon runs the dispatcher on a thread of its own (its own event
 * loop, database connection, key file and copy of the live rules, taken
 * again whenever the live version changes). `bandbill outbox deliver` and
 * the job outbox.deliver run the same code once over what is due. */
#ifndef BB_NOTIFY_H
#define BB_NOTIFY_H

#include <stdint.h>

#include "buf.h"
#include "cfg.h"
#include "db.h"
#include "err.h"
#include "json.h"
#include "vault.h"

struct ruleset;

/* The outbox channels. */
#define NOTIFY_CHANNELS 4
extern const char *const notify_channel_names[NOTIFY_CHANNELS]; /* log, sms, email, wechat */
int notify_channel_index(const char *name);                     /* -1 if unknown */

/* ------------------------------------------------------------- recipients */

/* Queues `event` for a customer, inside the caller's transaction: one
 * message per channel of `channels` (NULL-terminated; NULL: the customer's
 * preference - tag prefer_email or prefer_wechat, else sms), each to the
 * customer's phone (sms), e-mail (email) or WeChat openid (wechat). A
 * channel the customer has no contact for falls back to "log" (once). With
 * a dedupe_key, each message's key is dedupe_key ":" channel. *queued (may
 * be NULL) gets how many messages were queued. ERR_RULE for a channel name
 * that is not one (a rule asked for it). */
int notify_customer(db *d, const vault *v, const char *event, int64_t customer_id, const char *const *channels,
                    const jv *payload, const char *dedupe_key, int *queued, err *e);
/* The same with the payload as the JSON text of an object, as json_write
 * would write it (an issued bill's e-bill: written directly, once). */
int notify_customer_json(db *d, const vault *v, const char *event, int64_t customer_id, const char *const *channels,
                         const char *payload, const char *dedupe_key, int *queued, err *e);

/* notify_customer_json in two halves, for a caller that reads on one
 * thread and writes on another (a billing run's feeder prepares each
 * bill's e-bill): notify_recipients only reads (inside a read or write
 * transaction): the channels and each one's recipient, sealed as the
 * outbox stores it; notify_queue_json then queues the messages in the
 * caller's write transaction, and logs a contact that could not be read
 * then. The recipients are valid while nothing of the customer changes.
 * A notify_to starts zeroed; notify_recipients may reuse one. */
typedef struct notify_to {
    int64_t customer_id;
    int n;                                   /* messages */
    const char *channel[NOTIFY_CHANNELS];    /* static names */
    buf enc[NOTIFY_CHANNELS];                /* the recipient's stored form, empty for none */
    char *why[NOTIFY_CHANNELS];              /* a contact that fell back to the log, and why */
} notify_to;
int notify_recipients(db *d, const vault *v, int64_t customer_id, const char *const *channels, notify_to *t, err *e);
int notify_queue_json(db *d, notify_to *t, const char *event, const char *payload, const char *dedupe_key, int *queued,
                      err *e);
void notify_to_free(notify_to *t);

/* Sets (openid non-NULL) or removes a customer's WeChat openid, stored
 * encrypted (vault place customer_wechat.openid). Inside the caller's
 * transaction. */
int notify_set_wechat(db *d, const vault *v, int64_t customer_id, const char *openid, const char *by, err *e);
/* The customer's openid in clear into out (cleared when there is none). */
int notify_get_wechat(db *d, const vault *v, int64_t customer_id, buf *out, int *found, err *e);

/* ------------------------------------------------------------------ policy */

typedef struct notify_backoff {
    int64_t base_s, factor, cap_s, jitter_pct, max_attempts;
} notify_backoff;

/* The policy of the config (notify.max_attempts, notify.backoff_*). */
void notify_backoff_of(const cfg *c, notify_backoff *b);
/* Seconds to wait after the n-th failed attempt (n >= 1): base * factor^(n-1),
 * at most cap, then moved by up to jitter_pct percent either way with rnd
 * (uniform in 0..UINT32_MAX), never below one second. */
int64_t notify_backoff_delay(const notify_backoff *b, int n, uint32_t rnd);

/* A channel's quiet hours, from rules/notices.lua: local times of day in
 * minutes (from 21:00 = 1260, to 08:00 = 480; from > to spans midnight)
 * and events exempt from them (one-time codes). */
#define NOTIFY_QUIET_EXEMPT 16
typedef struct notify_quiet {
    int set;
    int from_min, to_min;
    char exempt[NOTIFY_QUIET_EXEMPT][49];
    int nexempt;
} notify_quiet;

/* 0 when `now` is outside the window (or the event is exempt); else the
 * Unix time the window ends, in the process's time zone (TZ). */
int64_t notify_quiet_until(const notify_quiet *q, const char *event, int64_t now);

/* Reads notices.quiet_hours of a rule set: {CHANNEL = {from = "HH:MM",
 * to = "HH:MM", except = {events}}}. Absent is none. ERR_RULE naming the
 * bad part. */
int notify_quiet_load(struct ruleset *rs, notify_quiet q[NOTIFY_CHANNELS], err *e);

/* -------------------------------------------------------------- rendering */

#define NOTIFY_MAX_FIELDS 20

/* What notices.render returned, checked. Strings live in the arena. */
typedef struct notify_rendered {
    int none;                    /* the rule has no template for this event on this channel */
    const char *text;            /* sms, log */
    const char *subject, *body;  /* email */
    const char *template_id;     /* wechat */
    const char *url;             /* wechat, may be NULL */
    const char *keys[NOTIFY_MAX_FIELDS], *values[NOTIFY_MAX_FIELDS], *colors[NOTIFY_MAX_FIELDS];
    int nfields;
} notify_rendered;

/* Calls notices.render{id, event, channel, customer?, payload} and checks
 * the result against the channel's contract. ERR_RULE with a located
 * message (and e->field the bad part) when the rule fails or returns
 * something the channel cannot send. */
int notify_render(struct ruleset *rs, jv_arena *a, int64_t id, const char *event, const char *channel,
                  const char *customer, const jv *payload, notify_rendered *out, err *e);

/* An e-mail as sent (RFC 5322 with MIME): UTF-8 subject and display name as
 * RFC 2047 encoded words, a text/plain UTF-8 body in base64, CRLF lines. */
int notify_mime(const char *from, const char *from_name, const char *to, const char *subject, const char *body,
                const char *message_id, int64_t now, buf *out, err *e);

/* -------------------------------------------------------------- delivery */

typedef struct notify_report {
    int64_t sent, failed, dead, postponed, released;
} notify_report;

/* Checks the channel settings of the config: every notify.CHANNEL.* names
 * a known channel, a driver that exists (plugins loaded from the plugins
 * folder) and settings it takes, and the driver opens. What
 * `bandbill serve` refuses to start with. */
int notify_check_config(const cfg *c, err *e);

/* Delivers what is due now, with the rules of rules_dir (NULL: the
 * configured folder), until nothing due is left, `limit` messages were
 * handled (0: no limit) or *stop is set. For `bandbill outbox deliver` and
 * the job outbox.deliver. */
int notify_deliver(db *d, const cfg *c, const char *rules_dir, int64_t limit, const volatile int *stop, notify_report *r,
                   err *e);

/* The daemon's dispatcher thread (uses the live rules). */
typedef struct notify_dispatcher notify_dispatcher;
int notify_start(const cfg *c, notify_dispatcher **out, err *e);
/* Stops claiming, waits a moment for requests in flight, records what
 * finished and gives what did not back to the queue (due at once). */
void notify_stop(notify_dispatcher *d);

/* ---------------------------------------------------------------- reading */

/* Filters of a list; NULL / 0 for any. */
typedef struct notify_filter {
    int64_t customer_id;
    const char *status, *channel, *event;
} notify_filter;

/* A page of messages, newest first (API and CLI): id, created_at, event,
 * channel, customer, status, attempts, next_attempt_at, sent_at,
 * provider_id, last_error, and the recipient in clear as `phone`, `email`
 * or `openid` (the caller filters it for the viewer). cursor: the last id
 * of the previous page. next gets the cursor of the next page or "". */
int notify_list(db *d, const vault *v, const notify_filter *f, const char *cursor, int64_t limit, jv_arena *a, jv **list,
                char *next, size_t nnext, err *e);
/* One message with its payload (one-time codes and personal fields
 * masked) and its attempts. */
int notify_get(db *d, const vault *v, int64_t id, jv_arena *a, jv **out, err *e);
/* A dead message back to pending, due now, with a fresh attempt budget
 * (its attempts stay in the history). ERR_CONFLICT (not_dead) otherwise. */
int notify_retry(db *d, int64_t id, err *e);


#endif
