/* outbox.c - the transactional outbox (see outbox.h). */
#include "outbox.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "privacy.h"

#define RECIPIENT_AAD "outbox.recipient"

static int channel_known(const char *c)
{
    static const char *const known[] = {"log", "sms", "email", "wechat", NULL};
    for (const char *const *k = known; *k; k++)
        if (!strcmp(*k, c)) return 1;
    return 0;
}

static int event_valid(const char *ev)
{
    size_t n = strlen(ev);
    return n >= 1 && n <= 48 && strspn(ev, "abcdefghijklmnopqrstuvwxyz0123456789_.") == n;
}

static int enqueue_checks(db *d, const vault *v, const char *event, const char *channel, const char *recipient,
                          int payload_ok, err *e)
{
    /* the point of an outbox is to commit with the change that causes it */
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "outbox_enqueue needs the caller's transaction");
    if (!event || !event_valid(event)) return err_set(e, ERR_INTERNAL, "outbox: bad event name '%s'", event ? event : "");
    if (!channel || !channel_known(channel))
        return err_set(e, ERR_INTERNAL, "outbox: unknown channel '%s'", channel ? channel : "");
    if (!payload_ok) return err_set(e, ERR_INTERNAL, "outbox: the payload must be an object");
    if (recipient && !v) return err_set(e, ERR_INTERNAL, "outbox: no key file to encrypt the recipient");
    return 0;
}

int outbox_seal_recipient(const vault *v, const char *recipient, buf *out, err *e)
{
    if (!v) return err_set(e, ERR_INTERNAL, "outbox: no key file to encrypt the recipient");
    return vault_encrypt(v, RECIPIENT_AAD, recipient, strlen(recipient), out, e);
}

/* The row, once checked; payload is the JSON text of an object; the
 * recipient sealed already (recipient_enc) or in clear (recipient). */
static int enqueue_row(db *d, const vault *v, const char *event, const char *channel, int64_t customer_id,
                       const char *recipient, const char *recipient_enc, const char *payload, const char *dedupe_key, err *e)
{
    buf enc = {0};
    int rc = 0;
    if (recipient) {
        rc = vault_encrypt(v, RECIPIENT_AAD, recipient, strlen(recipient), &enc, e);
        recipient_enc = buf_cstr(&enc);
    }
    if (!rc) {
        char now[25];
        db_now(now);
        db_stmt *s = db_prepare(d,
                                "INSERT INTO outbox (created_at, event, channel, customer_id, recipient_enc, payload, status, "
                                "next_attempt_at, dedupe_key) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) "
                                "ON CONFLICT (dedupe_key) DO NOTHING",
                                e);
        if (!s) rc = e->code;
        else {
            /* every value outlives the step: bound without copies */
            db_bind_text_ref(s, 1, now);
            db_bind_text_ref(s, 2, event);
            db_bind_text_ref(s, 3, channel);
            if (customer_id > 0) db_bind_int(s, 4, customer_id);
            else db_bind_null(s, 4);
            db_bind_text_ref(s, 5, recipient_enc);
            db_bind_text_ref(s, 6, payload);
            db_bind_text_ref(s, 7, now);
            db_bind_text_ref(s, 8, dedupe_key);
            rc = db_step(d, s, e);
            db_done(s);
            if (rc == DB_DONE) rc = 0;
            else if (rc == DB_ROW) rc = err_set(e, ERR_INTERNAL, "outbox: the insert returned a row");
        }
    }
    buf_free(&enc);
    return rc;
}

int outbox_enqueue(db *d, const vault *v, const char *event, const char *channel, int64_t customer_id,
                   const char *recipient, const jv *payload, const char *dedupe_key, err *e)
{
    int rc = enqueue_checks(d, v, event, channel, recipient, !payload || payload->kind == JV_OBJ, e);
    if (rc) return rc;
    buf body = {0};
    if (payload) {
        rc = json_write(&body, payload);
        if (rc) err_set(e, rc, "outbox: the payload cannot be written as JSON");
    } else if (buf_puts(&body, "{}")) {
        rc = ERR_NOMEM_RET(e);
    }
    if (!rc) rc = enqueue_row(d, v, event, channel, customer_id, recipient, NULL, buf_cstr(&body), dedupe_key, e);
    buf_free(&body);
    return rc;
}

int outbox_enqueue_json(db *d, const vault *v, const char *event, const char *channel, int64_t customer_id,
                        const char *recipient, const char *payload, const char *dedupe_key, err *e)
{
    int rc = enqueue_checks(d, v, event, channel, recipient, !payload || payload[0] == '{', e);
    if (rc) return rc;
    return enqueue_row(d, v, event, channel, customer_id, recipient, NULL, payload ? payload : "{}", dedupe_key, e);
}

int outbox_enqueue_sealed(db *d, const char *event, const char *channel, int64_t customer_id, const char *recipient_enc,
                          const char *payload, const char *dedupe_key, err *e)
{
    int rc = enqueue_checks(d, NULL, event, channel, NULL, !payload || payload[0] == '{', e);
    if (rc) return rc;
    return enqueue_row(d, NULL, event, channel, customer_id, NULL, recipient_enc, payload ? payload : "{}", dedupe_key, e);
}

/* ---------------------------------------------------------------- delivery */

typedef struct pending {
    int64_t id;
    char event[64];
    char customer[32];
    char *recipient_enc;   /* in the arena */
    char *payload;         /* in the arena */
} pending;

/* The recipient as it may appear in a log: a phone keeps its ends, an
 * address its domain. */
static void mask_recipient(const char *r, buf *out)
{
    privacy_mask_text(strchr(r, '@') ? MASK_EMAIL : MASK_PHONE, r, strlen(r), out);
}

static int deliver_one(db *d, const vault *v, jv_arena *a, const pending *p, const char *now, int *sent, err *e)
{
    buf plain = {0}, masked = {0}, body = {0};
    err de;
    err_clear(&de);
    int rc = 0, ok = 1;
    if (p->recipient_enc) {
        if (!v) {
            ok = 0;
            err_set(&de, ERR_INTERNAL, "no key file to decrypt the recipient");
        } else if (vault_decrypt(v, RECIPIENT_AAD, p->recipient_enc, &plain, &de)) {
            ok = 0;
        }
        if (ok) mask_recipient(buf_cstr(&plain), &masked);
    }
    jv *payload = NULL;
    if (ok && json_parse(p->payload, strlen(p->payload), NULL, a, &payload, &de)) ok = 0;
    /* the log is read by more people than the customer file: personal
     * fields of the payload are masked like those of a customer */
    jv *shown = ok ? privacy_masked_copy(a, "customer", payload) : NULL;
    if (ok && (!shown || json_write(&body, shown))) {
        buf_free(&plain);
        buf_free(&masked);
        buf_free(&body);
        return ERR_NOMEM_RET(e);
    }
    if (ok) {
        log_line *l = log_begin(LOG_INFO, "outbox_log");
        log_int(l, "id", p->id);
        log_str(l, "message_event", p->event);
        log_str(l, "channel", "log");
        if (p->customer[0]) log_str(l, "customer", p->customer);
        if (p->recipient_enc) log_str(l, "recipient", buf_cstr(&masked));
        log_str(l, "payload", buf_cstr(&body));
        log_end(l);
        rc = db_run(d, e,
                    "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL "
                    "WHERE id = ? AND status = 'pending'",
                    "si", now, p->id);
        if (!rc) (*sent)++;
    } else {
        /* retrying cannot fix a value that does not decrypt or parse */
        log_msg(LOG_ERROR, "outbox_dead", "outbox message %lld: %s", (long long)p->id, de.msg);
        rc = db_run(d, e,
                    "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ? "
                    "WHERE id = ? AND status = 'pending'",
                    "si", de.msg, p->id);
    }
    /* the plain recipient does not outlive its use */
    if (plain.data) memset(plain.data, 0, plain.len);
    buf_free(&plain);
    buf_free(&masked);
    buf_free(&body);
    return rc;
}

int outbox_deliver_log(db *d, const vault *v, int limit, int *sent, err *e)
{
    *sent = 0;
    if (limit < 1) return 0;
    if (limit > 1000) limit = 1000;
    jv_arena a;
    jv_arena_init(&a, 0);
    pending *list = jv_alloc(&a, (size_t)limit * sizeof *list);
    if (!list) {
        jv_arena_free(&a);
        return ERR_NOMEM_RET(e);
    }
    char now[25];
    db_now(now);
    int rc = db_begin(d, e);
    if (rc) {
        jv_arena_free(&a);
        return rc;
    }
    /* read the batch first: the rows are updated below */
    int n = 0;
    db_stmt *s = db_prepare(d,
                            "SELECT o.id, o.event, coalesce(c.code, ''), o.recipient_enc, o.payload FROM outbox o "
                            "LEFT JOIN customers c ON c.id = o.customer_id "
                            "WHERE o.status = 'pending' AND o.next_attempt_at <= ? AND o.channel = 'log' "
                            "ORDER BY o.next_attempt_at, o.id LIMIT ?",
                            e);
    if (!s) rc = e->code;
    else {
        db_bind_text(s, 1, now);
        db_bind_int(s, 2, limit);
        while (n < limit && (rc = db_step(d, s, e)) == DB_ROW) {
            pending *p = &list[n];
            p->id = db_col_int(s, 0);
            snprintf(p->event, sizeof p->event, "%s", db_col_text(s, 1));
            snprintf(p->customer, sizeof p->customer, "%s", db_col_text(s, 2));
            p->recipient_enc = db_col_is_null(s, 3) ? NULL : jv_strdup(&a, db_col_text(s, 3), db_col_bytes(s, 3));
            p->payload = jv_strdup(&a, db_col_text(s, 4), db_col_bytes(s, 4));
            if (!p->payload || (!db_col_is_null(s, 3) && !p->recipient_enc)) {
                rc = ERR_NOMEM_RET(e);
                break;
            }
            n++;
        }
        db_done(s);
        if (rc > 0) rc = 0;
    }
    for (int i = 0; !rc && i < n; i++) rc = deliver_one(d, v, &a, &list[i], now, sent, e);
    if (!rc) rc = db_commit(d, e);
    if (rc) {
        db_rollback(d);
        *sent = 0;
    }
    jv_arena_free(&a);
    return rc;
}
