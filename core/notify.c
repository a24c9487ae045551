/* notify.c - recipients, the retry and quiet-hours policy, and reading the
 * outbox (see notify.h). Delivery itself is in notify_engine.c. */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "outbox.h"
#include "privacy.h"
#include "rules.h"

const char *const notify_channel_names[NOTIFY_CHANNELS] = {"log", "sms", "email", "wechat"};

int notify_channel_index(const char *name)
{
    for (int i = 0; name && i < NOTIFY_CHANNELS; i++)
        if (!strcmp(notify_channel_names[i], name)) return i;
    return -1;
}

#define AAD_PHONE "customers.phone"
#define AAD_EMAIL "customers.email"
#define AAD_OPENID "customer_wechat.openid"
#define AAD_RECIPIENT "outbox.recipient"

/* ------------------------------------------------------------- recipients */

static void wipe(buf *b)
{
    if (b->data) memset(b->data, 0, b->len);
    buf_free(b);
}

/* Checks the channels a rule asked for before anything is queued; *n gets
 * their count (at most NOTIFY_CHANNELS, as none is named twice). */
static int check_channels(const char *const *channels, int *n, err *e)
{
    int k;
    for (k = 0; channels[k]; k++) {
        if (notify_channel_index(channels[k]) < 0)
            return err_field(e, ERR_RULE, "invalid_channel", "channels", "channels[%d]: '%.32s' is not a channel (log, sms, email, wechat)",
                             k + 1, channels[k]);
        for (int j = 0; j < k; j++)
            if (!strcmp(channels[j], channels[k]))
                return err_field(e, ERR_RULE, "invalid_channel", "channels", "channels[%d]: '%s' is named twice", k + 1, channels[k]);
    }
    *n = k;
    return 0;
}

/* The customer's contacts for the channels (NULL: by preference), read in
 * one row and decrypted: ch[i] gets each message's channel (a static name;
 * "log" for a contact there is none of or that cannot be read, at most
 * once), plain[i] its recipient in clear (empty for the log); why[j] gets
 * why the contact of channel j could not be read (malloc'ed), for the
 * caller to log when it queues. *n gets the number of messages. */
static int read_contacts(db *d, const vault *v, int64_t customer_id, const char *const *channels, const char *ch[NOTIFY_CHANNELS],
                         buf plain[NOTIFY_CHANNELS], char *why[NOTIFY_CHANNELS], int *n, err *e)
{
    *n = 0;
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "notify_customer needs the caller's transaction");
    int k = 0, rc = 0;
    if (channels && (rc = check_channels(channels, &k, e))) return rc;
    /* contacts, openid and preference (a preference is the customer's data,
     * as a phone number is; rules may ask for other channels) in one read:
     * every bill of a billing run comes here */
    db_stmt *s = db_prepare(d,
                            "SELECT c.phone_enc, c.email_enc, w.openid_enc, "
                            "EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = 'prefer_wechat'), "
                            "EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = 'prefer_email') "
                            "FROM customers c LEFT JOIN customer_wechat w ON w.customer_id = c.id WHERE c.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_field(e, ERR_NOTFOUND, "not_found", "customer", "no customer with id %lld", (long long)customer_id);
    }
    const char *pref[2] = {NULL, NULL};
    if (!channels) {
        pref[0] = db_col_int(s, 3) ? "wechat" : db_col_int(s, 4) ? "email" : "sms";
        channels = pref;
        k = 1;
    }
    /* each channel's recipient, decrypted while the row is at hand */
    int logged = 0;
    rc = 0;
    for (int i = 0; i < k; i++) {
        const char *c = notify_channel_names[notify_channel_index(channels[i])];
        int col = !strcmp(c, "sms") ? 0 : !strcmp(c, "email") ? 1 : !strcmp(c, "wechat") ? 2 : -1;
        const char *aad = col == 0 ? AAD_PHONE : col == 1 ? AAD_EMAIL : AAD_OPENID;
        err de;
        buf *p = &plain[*n];
        /* no way to reach the customer there: the message is not lost, it
         * goes to the log, where staff see it */
        if (col < 0 || !db_col_bytes(s, col)) {
            c = "log";
        } else if (!v || vault_decrypt(v, aad, db_col_text(s, col), p, &de)) {
            /* a contact that cannot be read (no key file, a key pruned too
             * early) must not undo the change that sends the message */
            wipe(p);
            c = "log";
            size_t wl = strlen(aad) + strlen(v ? de.msg : "no key file") + 3;
            char *w = malloc(wl);
            if (!w) {
                rc = ERR_NOMEM_RET(e);
                break;
            }
            snprintf(w, wl, "%s: %s", aad, v ? de.msg : "no key file");
            free(why[i]);
            why[i] = w;
        }
        /* the log gets one message however many channels fell back to it */
        if (!strcmp(c, "log") && logged++) continue;
        ch[(*n)++] = c;
    }
    db_done(s);
    return rc;
}

static void log_unreadable(int64_t customer_id, char *why[NOTIFY_CHANNELS], int n)
{
    for (int i = 0; i < n; i++)
        if (why[i]) {
            log_msg(LOG_ERROR, "notify_contact_unreadable", "customer %lld, %s", (long long)customer_id, why[i]);
            free(why[i]);
            why[i] = NULL;
        }
}

/* notify_customer with the payload as a jv or as JSON text. */
static int queue_for_customer(db *d, const vault *v, const char *event, int64_t customer_id, const char *const *channels,
                              const jv *payload, const char *payload_json, const char *dedupe_key, int *queued, err *e)
{
    if (queued) *queued = 0;
    const char *ch[NOTIFY_CHANNELS];
    buf plain[NOTIFY_CHANNELS];
    char *why[NOTIFY_CHANNELS];
    memset(plain, 0, sizeof plain);
    memset(why, 0, sizeof why);
    int n = 0;
    int rc = read_contacts(d, v, customer_id, channels, ch, plain, why, &n, e);
    log_unreadable(customer_id, why, NOTIFY_CHANNELS);
    for (int i = 0; i < n; i++) {
        if (!rc) {
            char key[256];
            if (dedupe_key) snprintf(key, sizeof key, "%s:%s", dedupe_key, ch[i]);
            const char *to = plain[i].len ? buf_cstr(&plain[i]) : NULL, *k = dedupe_key ? key : NULL;
            rc = payload_json ? outbox_enqueue_json(d, v, event, ch[i], customer_id, to, payload_json, k, e)
                              : outbox_enqueue(d, v, event, ch[i], customer_id, to, payload, k, e);
            if (!rc && queued) (*queued)++;
        }
        wipe(&plain[i]);
    }
    return rc;
}

int notify_recipients(db *d, const vault *v, int64_t customer_id, const char *const *channels, notify_to *t, err *e)
{
    for (int i = 0; i < NOTIFY_CHANNELS; i++) {
        buf_reset(&t->enc[i]);
        free(t->why[i]);
        t->why[i] = NULL;
    }
    t->n = 0;
    t->customer_id = customer_id;
    buf plain[NOTIFY_CHANNELS];
    memset(plain, 0, sizeof plain);
    int n = 0;
    int rc = read_contacts(d, v, customer_id, channels, t->channel, plain, t->why, &n, e);
    /* sealed here as outbox_enqueue would seal them: the clear text goes no further */
    for (int i = 0; i < n; i++) {
        if (!rc && plain[i].len) rc = outbox_seal_recipient(v, buf_cstr(&plain[i]), &t->enc[i], e);
        wipe(&plain[i]);
    }
    if (!rc) t->n = n;
    return rc;
}

int notify_queue_json(db *d, notify_to *t, const char *event, const char *payload, const char *dedupe_key, int *queued, err *e)
{
    if (queued) *queued = 0;
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "notify_customer needs the caller's transaction");
    log_unreadable(t->customer_id, t->why, NOTIFY_CHANNELS);
    int rc = 0;
    for (int i = 0; i < t->n && !rc; i++) {
        char key[256];
        if (dedupe_key) snprintf(key, sizeof key, "%s:%s", dedupe_key, t->channel[i]);
        rc = outbox_enqueue_sealed(d, event, t->channel[i], t->customer_id, t->enc[i].len ? buf_cstr(&t->enc[i]) : NULL,
                                   payload ? payload : "{}", dedupe_key ? key : NULL, e);
        if (!rc && queued) (*queued)++;
    }
    return rc;
}

void notify_to_free(notify_to *t)
{
    for (int i = 0; i < NOTIFY_CHANNELS; i++) {
        buf_free(&t->enc[i]);
        free(t->why[i]);
        t->why[i] = NULL;
    }
    t->n = 0;
}

int notify_customer(db *d, const vault *v, const char *event, int64_t customer_id, const char *const *channels,
                    const jv *payload, const char *dedupe_key, int *queued, err *e)
{
    return queue_for_customer(d, v, event, customer_id, channels, payload, NULL, dedupe_key, queued, e);
}

int notify_customer_json(db *d, const vault *v, const char *event, int64_t customer_id, const char *const *channels,
                         const char *payload, const char *dedupe_key, int *queued, err *e)
{
    return queue_for_customer(d, v, event, customer_id, channels, NULL, payload ? payload : "{}", dedupe_key, queued, e);
}

int notify_set_wechat(db *d, const vault *v, int64_t customer_id, const char *openid, const char *by, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "notify_set_wechat needs the caller's transaction");
    if (!openid) return db_run(d, e, "DELETE FROM customer_wechat WHERE customer_id = ?", "i", customer_id);
    size_t n = strlen(openid);
    /* WeChat openids are 28 characters of [A-Za-z0-9_-]; other apps' ids are similar */
    if (n < 6 || n > 64 || strspn(openid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != n)
        return err_field(e, ERR_INVALID, "invalid_field", "openid", "an openid is 6 to 64 letters, digits, '_' or '-'");
    if (!v) return err_set(e, ERR_INTERNAL, "no key file to encrypt the openid");
    buf enc = {0};
    int rc = vault_encrypt(v, AAD_OPENID, openid, n, &enc, e);
    char now[25];
    db_now(now);
    if (!rc)
        rc = db_run(d, e,
                    "INSERT INTO customer_wechat (customer_id, openid_enc, updated_at, updated_by) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (customer_id) DO UPDATE SET openid_enc = excluded.openid_enc, updated_at = excluded.updated_at, "
                    "updated_by = excluded.updated_by",
                    "isss", customer_id, buf_cstr(&enc), now, by);
    buf_free(&enc);
    return rc;
}

int notify_get_wechat(db *d, const vault *v, int64_t customer_id, buf *out, int *found, err *e)
{
    buf_reset(out);
    *found = 0;
    db_stmt *s = db_prepare(d, "SELECT openid_enc FROM customer_wechat WHERE customer_id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    buf enc = {0};
    int rc = db_step(d, s, e);
    if (rc == DB_ROW && buf_puts(&enc, db_col_text(s, 0))) rc = ERR_NOMEM_RET(e);
    db_done(s);
    if (rc == DB_ROW) {
        rc = v ? vault_decrypt(v, AAD_OPENID, buf_cstr(&enc), out, e) : err_set(e, ERR_INTERNAL, "no key file");
        if (!rc) *found = 1;
    } else if (rc == DB_DONE) {
        rc = 0;
    }
    buf_free(&enc);
    return rc;
}

/* ------------------------------------------------------------------ policy */

void notify_backoff_of(const cfg *c, notify_backoff *b)
{
    b->base_s = c->notify_backoff_base_s;
    b->factor = c->notify_backoff_factor;
    b->cap_s = c->notify_backoff_cap_s;
    b->jitter_pct = c->notify_backoff_jitter_pct;
    b->max_attempts = c->notify_max_attempts;
}

int64_t notify_backoff_delay(const notify_backoff *b, int n, uint32_t rnd)
{
    int64_t d = b->base_s > 0 ? b->base_s : 1, cap = b->cap_s > 0 ? b->cap_s : 1;
    /* multiplied step by step so that a large n cannot overflow */
    for (int i = 1; i < n && d < cap; i++) d *= b->factor > 1 ? b->factor : 1;
    if (d > cap) d = cap;
    int64_t j = d * (b->jitter_pct > 0 ? b->jitter_pct : 0) / 100;
    /* a uniform offset in [-j, j]: retries of many messages that failed
     * together (a gateway outage) do not all come back at once */
    int64_t off = (int64_t)(((uint64_t)rnd * (uint64_t)(2 * j + 1)) >> 32) - j;
    d += off;
    return d < 1 ? 1 : d;
}

int64_t notify_quiet_until(const notify_quiet *q, const char *event, int64_t now)
{
    if (!q || !q->set || q->from_min == q->to_min) return 0;
    for (int i = 0; event && i < q->nexempt; i++)
        if (!strcmp(q->exempt[i], event)) return 0;
    time_t t = (time_t)now;
    struct tm tm;
    if (!localtime_r(&t, &tm)) return 0;
    int m = tm.tm_hour * 60 + tm.tm_min;
    int quiet = q->from_min < q->to_min ? (m >= q->from_min && m < q->to_min) : (m >= q->from_min || m < q->to_min);
    if (!quiet) return 0;
    /* the window ends at `to` today, or tomorrow once today's is past */
    if (m >= q->to_min) tm.tm_mday++;
    tm.tm_hour = q->to_min / 60;
    tm.tm_min = q->to_min % 60;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    time_t end = mktime(&tm);
    return end > t ? (int64_t)end : now + 60;
}

static int hhmm(const jv *v, int *out)
{
    if (!v || v->kind != JV_STR || v->u.str.len != 5 || v->u.str.s[2] != ':') return -1;
    const char *s = v->u.str.s;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9')) return -1;
    int h = (s[0] - '0') * 10 + s[1] - '0', m = (s[3] - '0') * 10 + s[4] - '0';
    if (h > 23 || m > 59) return -1;
    *out = h * 60 + m;
    return 0;
}

int notify_quiet_load(struct ruleset *rs, notify_quiet q[NOTIFY_CHANNELS], err *e)
{
    memset(q, 0, sizeof *q * NOTIFY_CHANNELS);
    if (!rs) return 0;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *t = NULL;
    err ge;
    int rc = lhost_get_field(rs->host, "notices", "quiet_hours", &a, &t, &ge);
    /* absent, nil or {} (an empty table reads as a list): no quiet hours */
    if (rc == ERR_NOTFOUND || (!rc && (t->kind == JV_NULL || (t->kind == JV_ARR && !jv_len(t))))) {
        jv_arena_free(&a);
        return 0;
    }
    if (rc) {
        jv_arena_free(&a);
        return err_field(e, ERR_RULE, "rule_output", "quiet_hours", "notices.quiet_hours: %s", ge.msg);
    }
    if (t->kind != JV_OBJ) rc = err_field(e, ERR_RULE, "rule_output", "quiet_hours", "notices.quiet_hours must be a table of channels");
    for (size_t i = 0; !rc && i < t->u.obj.n; i++) {
        const jv_member *m = &t->u.obj.m[i];
        int ch = notify_channel_index(m->key);
        int from, to;
        const jv *ex = jv_get(m->val, "except");
        if (ch < 0) {
            rc = err_field(e, ERR_RULE, "rule_output", "quiet_hours", "notices.quiet_hours.%s: not a channel (log, sms, email, wechat)",
                           m->key);
        } else if (m->val->kind != JV_OBJ || hhmm(jv_get(m->val, "from"), &from) || hhmm(jv_get(m->val, "to"), &to)) {
            rc = err_field(e, ERR_RULE, "rule_output", "quiet_hours",
                           "notices.quiet_hours.%s must be {from = \"HH:MM\", to = \"HH:MM\", except = {events}}", m->key);
        } else if (ex && (ex->kind != JV_ARR || jv_len(ex) > NOTIFY_QUIET_EXEMPT)) {
            rc = err_field(e, ERR_RULE, "rule_output", "quiet_hours", "notices.quiet_hours.%s.except is a list of at most %d events",
                           m->key, NOTIFY_QUIET_EXEMPT);
        } else {
            for (size_t k = 0; k < m->val->u.obj.n && !rc; k++) {
                const char *f = m->val->u.obj.m[k].key;
                if (strcmp(f, "from") && strcmp(f, "to") && strcmp(f, "except"))
                    rc = err_field(e, ERR_RULE, "rule_output", "quiet_hours", "notices.quiet_hours.%s: unexpected field '%s'",
                                   m->key, f);
            }
            q[ch].set = 1;
            q[ch].from_min = from;
            q[ch].to_min = to;
            for (size_t k = 0; !rc && k < jv_len(ex); k++) {
                const jv *x = jv_at(ex, k);
                if (x->kind != JV_STR || x->u.str.len < 1 || x->u.str.len > 48)
                    rc = err_field(e, ERR_RULE, "rule_output", "quiet_hours", "notices.quiet_hours.%s.except[%zu] is not an event name",
                                   m->key, k + 1);
                else snprintf(q[ch].exempt[q[ch].nexempt++], sizeof q[ch].exempt[0], "%s", x->u.str.s);
            }
        }
    }
    if (rc) memset(q, 0, sizeof *q * NOTIFY_CHANNELS);
    jv_arena_free(&a);
    return rc;
}

/* ---------------------------------------------------------------- reading */

static int status_known(const char *s)
{
    return !strcmp(s, "pending") || !strcmp(s, "failed") || !strcmp(s, "sent") || !strcmp(s, "dead");
}

/* The recipient of a message as the field of its kind. */
static int set_recipient(const vault *v, jv_arena *a, jv *o, const char *channel, const char *enc, err *e)
{
    if (!enc) return 0;
    const char *field = !strcmp(channel, "sms") ? "phone" : !strcmp(channel, "email") ? "email"
                      : !strcmp(channel, "wechat") ? "openid" : NULL;
    buf plain = {0};
    int rc = v ? vault_decrypt(v, AAD_RECIPIENT, enc, &plain, e) : err_set(e, ERR_INTERNAL, "no key file");
    if (rc) {
        /* a value that does not decrypt is shown as such, not hidden */
        buf_free(&plain);
        return jv_obj_set_str(a, o, "recipient_error", e->msg) ? ERR_NOMEM_RET(e) : 0;
    }
    /* a log message with a recipient: by its shape */
    if (!field) field = strchr(buf_cstr(&plain), '@') ? "email" : "phone";
    rc = jv_obj_set_str(a, o, field, buf_cstr(&plain)) ? ERR_NOMEM_RET(e) : 0;
    wipe(&plain);
    return rc;
}

#define MSG_COLS                                                                                                          \
    "o.id, o.created_at, o.event, o.channel, c.code, o.status, o.attempts, o.next_attempt_at, o.sent_at, o.provider_id, " \
    "o.last_error, o.driver, o.recipient_enc, o.payload, o.dedupe_key, o.updated_at"

static jv *text_or_null(jv_arena *a, db_stmt *s, int i) { return db_col_is_null(s, i) ? jv_null(a) : jv_str(a, db_col_text(s, i)); }

static int msg_object(db_stmt *s, const vault *v, jv_arena *a, jv **out, err *e)
{
    jv *o = jv_obj_sized(a, 16);
    if (!o) return ERR_NOMEM_RET(e);
    const char *status = db_col_text(s, 5);
    int waiting = !strcmp(status, "pending") || !strcmp(status, "failed");
    if (jv_obj_set_int(a, o, "id", db_col_int(s, 0)) || jv_obj_set_str(a, o, "created_at", db_col_text(s, 1)) ||
        jv_obj_set_str(a, o, "event", db_col_text(s, 2)) || jv_obj_set_str(a, o, "channel", db_col_text(s, 3)) ||
        jv_obj_set(a, o, "customer", text_or_null(a, s, 4)) || jv_obj_set_str(a, o, "status", status) ||
        jv_obj_set_int(a, o, "attempts", db_col_int(s, 6)) ||
        jv_obj_set(a, o, "next_attempt_at", waiting ? jv_str(a, db_col_text(s, 7)) : jv_null(a)) ||
        jv_obj_set(a, o, "sent_at", text_or_null(a, s, 8)) || jv_obj_set(a, o, "provider_id", text_or_null(a, s, 9)) ||
        jv_obj_set(a, o, "last_error", text_or_null(a, s, 10)) || jv_obj_set(a, o, "driver", text_or_null(a, s, 11)) ||
        jv_obj_set(a, o, "dedupe_key", text_or_null(a, s, 14)) || jv_obj_set(a, o, "updated_at", text_or_null(a, s, 15)))
        return ERR_NOMEM_RET(e);
    int rc = set_recipient(v, a, o, db_col_text(s, 3), db_col_is_null(s, 12) ? NULL : db_col_text(s, 12), e);
    if (!rc) *out = o;
    return rc;
}

int notify_list(db *d, const vault *v, const notify_filter *f, const char *cursor, int64_t limit, jv_arena *a, jv **list,
                char *next, size_t nnext, err *e)
{
    int64_t before = 0;
    if (cursor && *cursor) {
        char *end;
        before = strtoll(cursor, &end, 10);
        if (*end || before <= 0) return err_field(e, ERR_INVALID, "invalid_parameter", "cursor", "cursor is not one this server gave out");
    }
    if (next && nnext) next[0] = '\0';
    if (f->status && !status_known(f->status))
        return err_field(e, ERR_INVALID, "invalid_parameter", "status", "unknown status '%s' (pending, failed, sent, dead)", f->status);
    if (f->channel && notify_channel_index(f->channel) < 0)
        return err_field(e, ERR_INVALID, "invalid_parameter", "channel", "unknown channel '%s' (log, sms, email, wechat)", f->channel);
    if (f->event && (!f->event[0] || strlen(f->event) > 48))
        return err_field(e, ERR_INVALID, "invalid_parameter", "event", "an event name is 1 to 48 characters");
    if (limit < 1 || limit > 500) return err_field(e, ERR_INVALID, "invalid_parameter", "limit", "limit must be 1 to 500");
    /* one statement each, so that one customer's messages walk their index */
    db_stmt *s = f->customer_id
                     ? db_prepare(d,
                                  "SELECT " MSG_COLS " FROM outbox o LEFT JOIN customers c ON c.id = o.customer_id "
                                  "WHERE o.customer_id = ? AND (? IS NULL OR o.status = ?) AND (? IS NULL OR o.channel = ?) "
                                  "AND (? IS NULL OR o.event = ?) AND (? = 0 OR o.id < ?) ORDER BY o.id DESC LIMIT ?",
                                  e)
                     : db_prepare(d,
                                  "SELECT " MSG_COLS " FROM outbox o LEFT JOIN customers c ON c.id = o.customer_id "
                                  "WHERE ? = 0 AND (? IS NULL OR o.status = ?) AND (? IS NULL OR o.channel = ?) "
                                  "AND (? IS NULL OR o.event = ?) AND (? = 0 OR o.id < ?) ORDER BY o.id DESC LIMIT ?",
                                  e);
    if (!s) return e->code;
    db_bind_int(s, 1, f->customer_id);
    db_bind_text(s, 2, f->status);
    db_bind_text(s, 3, f->status);
    db_bind_text(s, 4, f->channel);
    db_bind_text(s, 5, f->channel);
    db_bind_text(s, 6, f->event);
    db_bind_text(s, 7, f->event);
    db_bind_int(s, 8, before);
    db_bind_int(s, 9, before);
    db_bind_int(s, 10, limit + 1);
    jv *arr = jv_arr(a);
    int rc = arr ? 0 : ERR_NOMEM_RET(e);
    int64_t n = 0, last = 0;
    while (!rc && (rc = db_step(d, s, e)) == DB_ROW) {
        if (n == limit) {
            if (next && nnext) snprintf(next, nnext, "%lld", (long long)last);
            break;
        }
        jv *o;
        rc = msg_object(s, v, a, &o, e);
        if (!rc && jv_arr_push(a, arr, o)) rc = ERR_NOMEM_RET(e);
        last = db_col_int(s, 0);
        n++;
    }
    db_done(s);
    if (rc < 0) return rc;
    *list = arr;
    return 0;
}

/* The payload as staff may read it: one-time codes and passwords never
 * (whoever holds them could pass a check meant for the customer), and
 * personal fields masked as in a log. */
static jv *payload_shown(jv_arena *a, const char *text)
{
    jv *p = NULL;
    err pe;
    if (json_parse(text, strlen(text), NULL, a, &p, &pe) || p->kind != JV_OBJ) return jv_str(a, "(unreadable)");
    for (size_t i = 0; i < p->u.obj.n; i++) {
        const char *k = p->u.obj.m[i].key;
        if (!strcmp(k, "code") || strstr(k, "password") || strstr(k, "secret")) p->u.obj.m[i].val = jv_str(a, "******");
    }
    return privacy_masked_copy(a, "customer", p);
}

int notify_get(db *d, const vault *v, int64_t id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT " MSG_COLS " FROM outbox o LEFT JOIN customers c ON c.id = o.customer_id WHERE o.id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    jv *o = NULL;
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        rc = msg_object(s, v, a, &o, e);
        jv *p = rc ? NULL : payload_shown(a, db_col_text(s, 13));
        if (!rc && (!p || jv_obj_set(a, o, "payload", p))) rc = ERR_NOMEM_RET(e);
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "id", "no message %lld", (long long)id);
    }
    db_done(s);
    if (rc) return rc;
    jv *hist = jv_arr(a);
    if (!hist || jv_obj_set(a, o, "history", hist)) return ERR_NOMEM_RET(e);
    s = db_prepare(d,
                   "SELECT attempt, at, outcome, driver, status_code, provider_id, error, duration_ms, rules_version "
                   "FROM outbox_attempts WHERE message_id = ? ORDER BY id",
                   e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *h = jv_obj_sized(a, 9);
        if (!h || jv_obj_set_int(a, h, "attempt", db_col_int(s, 0)) || jv_obj_set_str(a, h, "at", db_col_text(s, 1)) ||
            jv_obj_set_str(a, h, "outcome", db_col_text(s, 2)) || jv_obj_set_str(a, h, "driver", db_col_text(s, 3)) ||
            jv_obj_set(a, h, "status_code", db_col_is_null(s, 4) ? jv_null(a) : jv_int(a, db_col_int(s, 4))) ||
            jv_obj_set(a, h, "provider_id", text_or_null(a, s, 5)) || jv_obj_set(a, h, "error", text_or_null(a, s, 6)) ||
            jv_obj_set(a, h, "duration_ms", db_col_is_null(s, 7) ? jv_null(a) : jv_int(a, db_col_int(s, 7))) ||
            jv_obj_set(a, h, "rules_version", text_or_null(a, s, 8)) || jv_arr_push(a, hist, h)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    *out = o;
    return 0;
}

int notify_retry(db *d, int64_t id, err *e)
{
    char status[16] = "";
    db_stmt *s = db_prepare(d, "SELECT status FROM outbox WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) snprintf(status, sizeof status, "%s", db_col_text(s, 0));
    db_done(s);
    if (rc < 0) return rc;
    if (rc == DB_DONE) return err_field(e, ERR_NOTFOUND, "not_found", "id", "no message %lld", (long long)id);
    if (strcmp(status, "dead"))
        return err_field(e, ERR_CONFLICT, "not_dead", "id", "message %lld is %s: only a dead message is retried by hand",
                         (long long)id, status);
    char now[25];
    db_now(now);
    /* a fresh budget of attempts; the ones made stay in outbox_attempts */
    return db_run(d, e,
                  "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? "
                  "WHERE id = ? AND status = 'dead'",
                  "ssi", now, now, id);
}
