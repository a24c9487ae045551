/* notify_engine.c - the dispatcher: claims due messages, renders them with
 * rules/notices.lua, sends them through their channel's driver and records
 * what came of each (see notify.h). One engine runs on one event loop and
 * one database connection; the daemon gives it a thread of its own, the
 * command line and the job run it until nothing is due. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>

#include "crypto.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "notify_int.h"
#include "privacy.h"
#include "rules.h"

#define AAD_RECIPIENT "outbox.recipient"
/* A claimed message is due again after this if its worker dies: longer
 * than it may wait in memory (rate * 5 s of messages) plus a send. */
#define LEASE_S 300 /* at least */
#define FLUSH_AT 256
#define FLUSH_MS 50
#define MAX_CAPACITY 1000

enum { DRV_LOG, DRV_SMTP, DRV_PLUGIN };
enum { OUT_SENT, OUT_FAILED, OUT_DEAD, OUT_POSTPONED, OUT_RELEASE };

static const char *const outcome_names[] = {"sent", "failed", "dead", "postponed", "released"};

typedef struct engine engine;

typedef struct nmsg {
    struct nmsg *prev, *next;
    engine *en;
    int ch;
    int64_t id;
    int attempts;                  /* made before this one */
    char event[64], customer[32];
    char *recipient_enc, *payload; /* malloc'd */
    /* while in flight */
    int64_t t0_us;
    jv_arena a;
    buf plain;                     /* the recipient in clear */
    notify_rendered r;
    notichan_message nm;
    notichan_kv data[NOTIFY_MAX_FIELDS];
    char message_id[160];
    char version[RULES_VERSION_LEN];
    char lease[25];                /* next_attempt_at as this claim set it: the outcome is ours only while it holds */
} nmsg;

typedef struct nresult {
    int64_t id, next_ms, duration_ms, at_ms;
    int attempt, outcome, ch;
    long status_code;
    char driver[24];
    char provider_id[128];
    char error[400];
    char version[RULES_VERSION_LEN];
    char lease[25];
} nresult;

typedef struct nchan {
    int on;
    int drv;
    char driver[32];
    const notichan_plugin *p;
    void *h;
    nsmtp_conf smtp;
    char from[256], from_name[128];
    double rate, burst, tokens;
    int64_t refill_us;
    nmsg *qh, *qt;
    int queued, inflight, capacity, more, pumping;
    struct event *wake;
    metric *m_out[5];
    metric *m_lat;
} nchan;

struct engine {
    const cfg *cfg;
    db *db;
    vault *v;
    ino_t keys_ino;
    struct timespec keys_mtime;
    struct event_base *base;
    int live;                      /* rules from the live set (daemon) */
    ruleset *rs;
    char version[RULES_VERSION_LEN];
    notify_quiet quiet[NOTIFY_CHANNELS];
    char quiet_err[400];
    nchan ch[NOTIFY_CHANNELS];
    notify_backoff bo;
    int timeout_s, concurrency;
    int64_t lease_s;            /* how long a claim holds a message: longer than it can wait here */
    nh_pool *http;
    nsmtp *smtp;
    nresult *res;
    int nres, capres;
    struct event *flush_ev, *tick_ev, *claim_ev, *stop_ev, *grace_ev;
    int flush_armed, claim_armed;
    int drain, stopping, plugins;
    int64_t limit, handled;
    const volatile int *stop;
    notify_report rep;
    nmsg *inflight;
    int64_t poll_ms;
    int claimed_none;              /* drain: the last claim found nothing */
    err fatal;                     /* drain: what stopped it */
    int has_fatal;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void msg_free(nmsg *m)
{
    if (!m) return;
    free(m->recipient_enc);
    free(m->payload);
    if (m->plain.data) memset(m->plain.data, 0, m->plain.len);
    buf_free(&m->plain);
    jv_arena_free(&m->a);
    free(m);
}

/* ============================================================ channels */

static const char *default_driver(int ch)
{
    static const char *const d[] = {"log", "sms_http", "smtp", "wechat_tpl"};
    return d[ch];
}

static const char *setting(const cfg *c, int ch, const char *key)
{
    for (int i = 0; i < c->nntset; i++)
        if (!strcmp(c->ntset[i].channel, notify_channel_names[ch]) && !strcmp(c->ntset[i].key, key)) return c->ntset[i].value;
    return NULL;
}

static int setting_int(const cfg *c, int ch, const char *key, int64_t min, int64_t max, int64_t def, int64_t *out, err *e)
{
    const char *v = setting(c, ch, key);
    *out = def;
    if (!v) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!v[0] || *end || errno || x < min || x > max)
        return err_field(e, ERR_INVALID, "invalid_config", key, "notify.%s.%s must be a whole number from %lld to %lld, got '%s'",
                         notify_channel_names[ch], key, (long long)min, (long long)max, v);
    *out = x;
    return 0;
}

static int smtp_open(const cfg *c, int ch, nchan *n, err *e)
{
    static const char *const known[] = {"url", "from", "from_name", "username", "password", "tls", NULL};
    for (int i = 0; i < c->nntset; i++) {
        if (strcmp(c->ntset[i].channel, notify_channel_names[ch])) continue;
        const char *k = c->ntset[i].key;
        int ok = !strcmp(k, "driver") || !strcmp(k, "rate") || !strcmp(k, "burst");
        for (const char *const *x = known; *x && !ok; x++) ok = !strcmp(*x, k);
        if (!ok)
            return err_field(e, ERR_INVALID, "unknown_config_key", k,
                             "notify.%s.%s: the smtp driver takes url, from, from_name, username, password, tls (and driver, rate, burst)",
                             notify_channel_names[ch], k);
    }
    const char *url = setting(c, ch, "url"), *from = setting(c, ch, "from"), *tls = setting(c, ch, "tls");
    if (!url || (strncmp(url, "smtp://", 7) && strncmp(url, "smtps://", 8)) || strlen(url) >= sizeof n->smtp.url)
        return err_field(e, ERR_INVALID, "invalid_config", "url", "notify.%s.url must be smtp://HOST:PORT or smtps://HOST:PORT",
                         notify_channel_names[ch]);
    if (!from || !strchr(from, '@') || strpbrk(from, " \t\r\n<>") || strlen(from) >= sizeof n->from)
        return err_field(e, ERR_INVALID, "invalid_config", "from", "notify.%s.from must be the sender's e-mail address",
                         notify_channel_names[ch]);
    snprintf(n->smtp.url, sizeof n->smtp.url, "%s", url);
    snprintf(n->from, sizeof n->from, "%s", from);
    const char *fn = setting(c, ch, "from_name"), *user = setting(c, ch, "username"), *pw = setting(c, ch, "password");
    snprintf(n->from_name, sizeof n->from_name, "%s", fn ? fn : "");
    snprintf(n->smtp.username, sizeof n->smtp.username, "%s", user ? user : "");
    snprintf(n->smtp.password, sizeof n->smtp.password, "%s", pw ? pw : "");
    n->smtp.tls = 1;
    if (tls) {
        if (!strcmp(tls, "none")) n->smtp.tls = 0;
        else if (!strcmp(tls, "try")) n->smtp.tls = 1;
        else if (!strcmp(tls, "required")) n->smtp.tls = 2;
        else
            return err_field(e, ERR_INVALID, "invalid_config", "tls", "notify.%s.tls is none, try or required, got '%s'",
                             notify_channel_names[ch], tls);
    }
    return 0;
}

static int plugin_open(const cfg *c, int ch, nchan *n, err *e)
{
    notichan_kv kv[CFG_MAX_CHANNEL_SETTINGS];
    size_t nkv = 0;
    for (int i = 0; i < c->nntset; i++) {
        if (strcmp(c->ntset[i].channel, notify_channel_names[ch])) continue;
        const char *k = c->ntset[i].key;
        if (!strcmp(k, "driver") || !strcmp(k, "rate") || !strcmp(k, "burst")) continue;
        int ok = 0;
        for (const char *const *x = n->p->settings; x && *x && !ok; x++) ok = !strcmp(*x, k);
        if (!ok) {
            char list[256] = "driver, rate, burst";
            for (const char *const *x = n->p->settings; x && *x; x++) snprintf(list + strlen(list), sizeof list - strlen(list), ", %s", *x);
            return err_field(e, ERR_INVALID, "unknown_config_key", k, "notify.%s.%s: driver %s takes %s", notify_channel_names[ch], k,
                             n->p->name, list);
        }
        kv[nkv++] = (notichan_kv){k, c->ntset[i].value};
    }
    notichan_settings s = {kv, nkv};
    notichan_error pe;
    memset(&pe, 0, sizeof pe);
    if (n->p->open(&s, &n->h, &pe))
        return err_field(e, ERR_INVALID, "invalid_setting", pe.field, "notify.%s%s%s: %s", notify_channel_names[ch], pe.field[0] ? "." : "",
                         pe.field, pe.message);
    return 0;
}

/* Reads every channel's settings and opens its driver. Channels with no
 * settings are off, but "log", which needs none. */
static int channels_open(engine *en, const cfg *c, err *e)
{
    for (int i = 0; i < c->nntset; i++)
        if (notify_channel_index(c->ntset[i].channel) < 0)
            return err_field(e, ERR_INVALID, "unknown_config_key", "notify",
                             "notify.%s.%s: '%s' is not a channel (log, sms, email, wechat)", c->ntset[i].channel, c->ntset[i].key,
                             c->ntset[i].channel);
    int rc = 0;
    for (int ch = 0; ch < NOTIFY_CHANNELS && !rc; ch++) {
        nchan *n = &en->ch[ch];
        int any = 0;
        for (int i = 0; i < c->nntset && !any; i++) any = !strcmp(c->ntset[i].channel, notify_channel_names[ch]);
        if (!any && ch != 0) continue;
        const char *drv = setting(c, ch, "driver");
        snprintf(n->driver, sizeof n->driver, "%s", drv ? drv : default_driver(ch));
        int64_t rate = 0, burst = 0;
        rc = setting_int(c, ch, "rate", 0, 100000, 0, &rate, e);
        if (!rc) rc = setting_int(c, ch, "burst", 1, 100000, rate > 0 ? rate : 1, &burst, e);
        if (rc) break;
        n->rate = (double)rate;
        n->burst = (double)burst;
        n->tokens = n->burst;
        n->refill_us = now_us();
        if (!strcmp(n->driver, "log")) {
            n->drv = DRV_LOG;
            for (int i = 0; i < c->nntset && !rc; i++)
                if (!strcmp(c->ntset[i].channel, notify_channel_names[ch]) && strcmp(c->ntset[i].key, "driver") &&
                    strcmp(c->ntset[i].key, "rate") && strcmp(c->ntset[i].key, "burst"))
                    rc = err_field(e, ERR_INVALID, "unknown_config_key", c->ntset[i].key,
                                   "notify.%s.%s: the log driver takes driver, rate and burst only", notify_channel_names[ch],
                                   c->ntset[i].key);
        } else if (!strcmp(n->driver, "smtp")) {
            n->drv = DRV_SMTP;
            rc = smtp_open(c, ch, n, e);
        } else {
            n->drv = DRV_PLUGIN;
            n->p = nplug_find(n->driver);
            if (!n->p)
                rc = err_field(e, ERR_INVALID, "invalid_config", "driver",
                               "notify.%s.driver: no driver '%s' (built in: log, smtp; plugins in the plugins folder)",
                               notify_channel_names[ch], n->driver);
            else rc = plugin_open(c, ch, n, e);
        }
        if (rc) break;
        n->on = 1;
        /* messages held in memory: a few seconds' worth at the rate */
        int cap = n->rate > 0 ? (int)(n->rate * 5) : en->concurrency * 16;
        n->capacity = cap < 1 ? 1 : cap > MAX_CAPACITY ? MAX_CAPACITY : cap;
        for (int o = 0; o < 5; o++) {
            char label[96];
            snprintf(label, sizeof label, "channel=\"%s\",outcome=\"%s\"", notify_channel_names[ch], outcome_names[o]);
            n->m_out[o] = metrics_counter("bandbill_notify_messages_total", "Outbox messages handled by the dispatcher, by channel and outcome",
                                          label);
        }
        char label[64];
        snprintf(label, sizeof label, "channel=\"%s\"", notify_channel_names[ch]);
        n->m_lat = metrics_histogram("bandbill_notify_send_seconds", "Time from sending a message to the gateway's answer", label,
                                     metrics_latency_bounds_us, metrics_latency_nbounds);
    }
    if (rc) err_prefix(e, "notifications");
    return rc;
}

static void channels_close(engine *en)
{
    for (int ch = 0; ch < NOTIFY_CHANNELS; ch++) {
        nchan *n = &en->ch[ch];
        if (n->drv == DRV_PLUGIN && n->p && n->h && n->p->close) n->p->close(n->h);
        n->h = NULL;
        for (nmsg *m = n->qh, *next; m; m = next) {
            next = m->next;
            msg_free(m);
        }
        n->qh = n->qt = NULL;
        if (n->wake) event_free(n->wake);
        n->wake = NULL;
    }
}

/* ============================================================ results */

static void schedule_flush(engine *en);
static int flush(engine *en);
static int idle(const engine *en);
static void pump(engine *en, int ch);
static void want_claim(engine *en);

static void count(engine *en, int ch, int outcome)
{
    metric_inc(en->ch[ch].m_out[outcome]);
    switch (outcome) {
    case OUT_SENT: en->rep.sent++; break;
    case OUT_FAILED: en->rep.failed++; break;
    case OUT_DEAD: en->rep.dead++; break;
    case OUT_POSTPONED: en->rep.postponed++; break;
    default: en->rep.released++; break;
    }
}

/* What a gateway said goes into the message's record and out as JSON: a
 * reason cut by bytes loses its half character, and an answer that is not
 * UTF-8 (many Chinese gateways answer in GBK) keeps its ASCII only. */
static void clean_text(char *s)
{
    err_utf8_trim(s);
    if (json_utf8_valid(s, strlen(s))) return;
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p >= 0x80 || *p < 0x20) *p = '?';
}

/* Records what came of one message (written with the next flush). A
 * failure becomes dead once the attempts are used up. */
static void result(engine *en, const nmsg *m, int outcome, long status_code, const char *provider_id, const char *error,
                   int64_t next_ms)
{
    if (en->nres == en->capres) {
        int nc = en->capres ? en->capres * 2 : 64;
        nresult *nr = realloc(en->res, (size_t)nc * sizeof *nr);
        if (!nr) {
            /* the message stays claimed: due again when its lease ends */
            log_msg(LOG_ERROR, "notify_oom", "message %lld: no memory to record its outcome", (long long)m->id);
            return;
        }
        en->res = nr;
        en->capres = nc;
    }
    nresult *r = &en->res[en->nres++];
    memset(r, 0, sizeof *r);
    r->id = m->id;
    r->ch = m->ch;
    r->attempt = outcome == OUT_POSTPONED || outcome == OUT_RELEASE ? m->attempts : m->attempts + 1;
    r->status_code = status_code;
    r->next_ms = next_ms;
    r->duration_ms = m->t0_us ? (now_us() - m->t0_us) / 1000 : 0;
    r->at_ms = db_now_ms();
    snprintf(r->driver, sizeof r->driver, "%s", en->ch[m->ch].driver);
    snprintf(r->provider_id, sizeof r->provider_id, "%s", provider_id ? provider_id : "");
    snprintf(r->error, sizeof r->error, "%s", error ? error : "");
    clean_text(r->provider_id);
    clean_text(r->error);
    snprintf(r->version, sizeof r->version, "%s", m->version);
    snprintf(r->lease, sizeof r->lease, "%s", m->lease);
    if (outcome == OUT_FAILED && r->attempt >= en->bo.max_attempts) {
        outcome = OUT_DEAD;
        char tmp[sizeof r->error];
        snprintf(tmp, sizeof tmp, "after %d attempts: %s", r->attempt, r->error);
        snprintf(r->error, sizeof r->error, "%s", tmp);
        err_utf8_trim(r->error);
    }
    if (outcome == OUT_FAILED && !next_ms) {
        uint32_t rnd = 0;
        crypto_random(&rnd, sizeof rnd);
        r->next_ms = db_now_ms() + notify_backoff_delay(&en->bo, r->attempt, rnd) * 1000;
    }
    r->outcome = outcome;
    count(en, m->ch, outcome);
    if (outcome == OUT_SENT || outcome == OUT_FAILED || outcome == OUT_DEAD) {
        if (m->t0_us) metric_observe_us(en->ch[m->ch].m_lat, now_us() - m->t0_us);
        log_line *l = log_begin(outcome == OUT_SENT ? LOG_DEBUG : outcome == OUT_FAILED ? LOG_WARN : LOG_ERROR,
                                outcome == OUT_SENT ? "notify_sent" : outcome == OUT_FAILED ? "notify_failed" : "notify_dead");
        log_int(l, "id", m->id);
        log_str(l, "message_event", m->event);
        log_str(l, "channel", notify_channel_names[m->ch]);
        log_str(l, "driver", r->driver);
        log_int(l, "attempt", r->attempt);
        if (status_code) log_int(l, "status", status_code);
        if (r->provider_id[0]) log_str(l, "provider_id", r->provider_id);
        if (r->error[0]) log_str(l, "error", r->error);
        log_end(l);
    }
    if (en->nres >= FLUSH_AT) flush(en);
    else schedule_flush(en);
}

static int write_result(engine *en, const nresult *r, err *e)
{
    db *d = en->db;
    char next[25], now[25];
    /* when the answer came, not when it is written */
    db_format_time(r->at_ms, now);
    db_format_time(r->next_ms ? r->next_ms : db_now_ms(), next);
    const char *pid = r->provider_id[0] ? r->provider_id : NULL, *er = r->error[0] ? r->error : NULL;
    int rc = 0;
    switch (r->outcome) {
    case OUT_SENT:
        rc = db_run(d, e,
                    "UPDATE outbox SET status = 'sent', attempts = ?, sent_at = ?, provider_id = ?, driver = ?, last_error = NULL, "
                    "updated_at = ? WHERE id = ? AND status IN ('pending', 'failed') AND next_attempt_at = ?",
                    "issssis", (int64_t)r->attempt, now, pid, r->driver, now, r->id, r->lease);
        break;
    case OUT_FAILED:
        rc = db_run(d, e,
                    "UPDATE outbox SET status = 'failed', attempts = ?, next_attempt_at = ?, last_error = ?, driver = ?, updated_at = ? "
                    "WHERE id = ? AND status IN ('pending', 'failed') AND next_attempt_at = ?",
                    "issssis", (int64_t)r->attempt, next, er, r->driver, now, r->id, r->lease);
        break;
    case OUT_DEAD:
        rc = db_run(d, e,
                    "UPDATE outbox SET status = 'dead', attempts = ?, last_error = ?, driver = ?, updated_at = ? "
                    "WHERE id = ? AND status IN ('pending', 'failed') AND next_attempt_at = ?",
                    "isssis", (int64_t)r->attempt, er, r->driver, now, r->id, r->lease);
        break;
    default: /* postponed, released: due again at next, no attempt made */
        rc = db_run(d, e,
                    "UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE id = ? AND status IN ('pending', 'failed') "
                    "AND next_attempt_at = ?",
                    "ssis", next, now, r->id, r->lease);
        break;
    }
    /* the claim lapsed and another worker holds the message now: its
     * outcome is that worker's to record */
    if (!rc && db_changes(d) == 0) {
        log_msg(LOG_WARN, "notify_lease_lost", "message %lld: claimed again elsewhere before its outcome was recorded",
                (long long)r->id);
        return 0;
    }
    if (!rc && r->outcome != OUT_RELEASE)
        rc = db_run(d, e,
                    "INSERT INTO outbox_attempts (message_id, attempt, at, driver, outcome, status_code, provider_id, error, "
                    "duration_ms, rules_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    "iisssissis", r->id, (int64_t)r->attempt, now, r->driver, outcome_names[r->outcome], (int64_t)r->status_code,
                    pid, er, r->duration_ms, r->version[0] ? r->version : NULL);
    return rc;
}

/* Writes every recorded outcome in one transaction: one durable commit
 * for many messages. On failure they stay for the next flush. */
static int flush(engine *en)
{
    if (!en->nres) return 0;
    err e;
    int rc = db_begin(en->db, &e);
    for (int i = 0; !rc && i < en->nres; i++) rc = write_result(en, &en->res[i], &e);
    if (!rc) rc = db_commit(en->db, &e);
    if (rc) {
        if (db_in_tx(en->db)) db_rollback(en->db);
        log_msg(LOG_ERROR, "notify_record_failed", "%d outcome(s) not recorded yet: %s", en->nres, e.msg);
        schedule_flush(en);
        return rc;
    }
    en->nres = 0;
    return 0;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine *en = arg;
    en->flush_armed = 0;
    flush(en);
}

static void schedule_flush(engine *en)
{
    if (en->flush_armed) return;
    struct timeval tv = {0, FLUSH_MS * 1000};
    if (event_add(en->flush_ev, &tv) == 0) en->flush_armed = 1;
}

/* ============================================================== sending */

static void done(engine *en, nmsg *m, int outcome, long status_code, const char *provider_id, const char *error)
{
    nchan *n = &en->ch[m->ch];
    result(en, m, outcome, status_code, provider_id, error, 0);
    if (m->prev) m->prev->next = m->next;
    else en->inflight = m->next;
    if (m->next) m->next->prev = m->prev;
    n->inflight--;
    int ch = m->ch;
    msg_free(m);
    pump(en, ch);
    /* stopping (the daemon, or the job told to stop): once nothing is in
     * flight the loop ends - idle keep-alive connections would keep it */
    if (en->stopping && idle(en)) event_base_loopbreak(en->base);
    want_claim(en);
}

static void log_delivery(engine *en, nmsg *m, jv *payload)
{
    buf masked = {0}, body = {0};
    if (m->plain.len)
        privacy_mask_text(strchr(buf_cstr(&m->plain), '@') ? MASK_EMAIL : MASK_PHONE, buf_cstr(&m->plain), m->plain.len, &masked);
    /* the log is read by more people than the customer file: personal
     * fields of the payload are masked like those of a customer */
    jv *shown = privacy_masked_copy(&m->a, "customer", payload);
    if (shown) json_write(&body, shown);
    log_line *l = log_begin(LOG_INFO, "outbox_log");
    log_int(l, "id", m->id);
    log_str(l, "message_event", m->event);
    log_str(l, "channel", notify_channel_names[m->ch]);
    if (m->customer[0]) log_str(l, "customer", m->customer);
    if (m->plain.len) log_str(l, "recipient", buf_cstr(&masked));
    if (m->r.subject) log_str(l, "subject", m->r.subject);
    if (m->r.text) log_str(l, "text", m->r.text);
    if (m->r.body) log_str(l, "text", m->r.body);
    if (m->r.template_id) log_str(l, "template_id", m->r.template_id);
    log_str(l, "payload", shown ? buf_cstr(&body) : "{}");
    log_end(l);
    (void)en;
    buf_free(&masked);
    buf_free(&body);
}

static void on_http(void *arg, int status, const notichan_kv *headers, size_t nh, const char *body, size_t len, const char *error)
{
    nmsg *m = arg;
    engine *en = m->en;
    nchan *n = &en->ch[m->ch];
    if (!status) {
        done(en, m, OUT_FAILED, 0, NULL, error);
        return;
    }
    notichan_answer a = {status, headers, nh, body, len};
    notichan_result res;
    notichan_error pe;
    memset(&res, 0, sizeof res);
    memset(&pe, 0, sizeof pe);
    if (n->p->response(n->h, &m->nm, &a, &res, &pe) == 0) done(en, m, OUT_SENT, status, res.provider_id, NULL);
    else done(en, m, pe.permanent ? OUT_DEAD : OUT_FAILED, status, NULL, pe.message[0] ? pe.message : "refused by the gateway");
}

static void on_smtp(void *arg, int ok, long code, const char *error)
{
    nmsg *m = arg;
    if (ok) {
        done(m->en, m, OUT_SENT, code, m->message_id, NULL);
        return;
    }
    /* a 5xx reply (no such mailbox, refused) will not change by itself */
    char why[400];
    snprintf(why, sizeof why, "%s%s%ld", error ? error : "refused", code ? "; the server's last reply: " : "", code);
    if (!code) snprintf(why, sizeof why, "%s", error ? error : "refused");
    done(m->en, m, code >= 500 && code < 600 ? OUT_DEAD : OUT_FAILED, code, NULL, why);
}

/* Turns one claimed message into a request, or an outcome at once. */
static void start(engine *en, nmsg *m)
{
    nchan *n = &en->ch[m->ch];
    m->t0_us = now_us();
    m->prev = NULL;
    m->next = en->inflight;
    if (en->inflight) en->inflight->prev = m;
    en->inflight = m;
    n->inflight++;
    en->handled++;
    jv_arena_init(&m->a, 0);
    snprintf(m->version, sizeof m->version, "%s", en->version);
    err e;
    err_clear(&e);
    /* what retrying cannot fix: a recipient that does not decrypt, a
     * payload that is not JSON */
    if (m->recipient_enc && (!en->v || vault_decrypt(en->v, AAD_RECIPIENT, m->recipient_enc, &m->plain, &e))) {
        done(en, m, OUT_DEAD, 0, NULL, en->v ? e.msg : "no key file to decrypt the recipient");
        return;
    }
    jv *payload = NULL;
    if (json_parse(m->payload, strlen(m->payload), NULL, &m->a, &payload, &e) || payload->kind != JV_OBJ) {
        done(en, m, OUT_DEAD, 0, NULL, "the payload is not a JSON object");
        return;
    }
    const char *channel = notify_channel_names[m->ch];
    int logged = n->drv == DRV_LOG;
    if (en->quiet_err[0] && !logged) {
        done(en, m, OUT_FAILED, 0, NULL, en->quiet_err);
        return;
    }
    int rc = notify_render(en->rs, &m->a, m->id, m->event, channel, m->customer, payload, &m->r, &e);
    if (logged) {
        /* the log takes every message: without a template it shows the payload */
        if (rc) memset(&m->r, 0, sizeof m->r);
        log_delivery(en, m, payload);
        done(en, m, OUT_SENT, 0, NULL, NULL);
        return;
    }
    if (rc) {
        done(en, m, OUT_FAILED, 0, NULL, e.msg);
        return;
    }
    if (m->r.none) {
        char why[200];
        snprintf(why, sizeof why, "rules/notices.lua has no template for %s on %s", m->event, channel);
        done(en, m, OUT_FAILED, 0, NULL, why);
        return;
    }
    if (!m->plain.len) {
        done(en, m, OUT_DEAD, 0, NULL, "no recipient");
        return;
    }
    if (n->drv == DRV_SMTP) {
        buf mime = {0};
        unsigned char rnd[6];
        char hex[13];
        crypto_random(rnd, sizeof rnd);
        crypto_hex(rnd, sizeof rnd, hex);
        const char *dom = strchr(n->from, '@');
        snprintf(m->message_id, sizeof m->message_id, "<bb.%lld.%d.%s%s>", (long long)m->id, m->attempts + 1, hex, dom ? dom : "@bandbill");
        rc = notify_mime(n->from, n->from_name, buf_cstr(&m->plain), m->r.subject, m->r.body, m->message_id, (int64_t)time(NULL), &mime,
                         &e);
        if (!rc) rc = nsmtp_send(en->smtp, &n->smtp, n->from, buf_cstr(&m->plain), &mime, en->timeout_s, on_smtp, m, &e);
        buf_free(&mime);
        if (rc) done(en, m, e.code == ERR_INVALID ? OUT_DEAD : OUT_FAILED, 0, NULL, e.msg);
        return;
    }
    notichan_message *nm = &m->nm;
    memset(nm, 0, sizeof *nm);
    nm->id = m->id;
    nm->attempt = m->attempts + 1;
    nm->channel = channel;
    nm->event = m->event;
    nm->recipient = buf_cstr(&m->plain);
    nm->text = m->r.text;
    nm->subject = m->r.subject;
    nm->body = m->r.body;
    nm->template_id = m->r.template_id;
    nm->url = m->r.url;
    for (int i = 0; i < m->r.nfields; i++) m->data[i] = (notichan_kv){m->r.keys[i], m->r.values[i]};
    nm->data = m->data;
    nm->colors = m->r.colors;
    nm->ndata = (size_t)m->r.nfields;
    notichan_http http;
    notichan_error pe;
    memset(&http, 0, sizeof http);
    memset(&pe, 0, sizeof pe);
    if (n->p->request(n->h, nm, (int64_t)time(NULL), &http, &pe)) {
        free(http.body);
        done(en, m, pe.permanent ? OUT_DEAD : OUT_FAILED, 0, NULL, pe.message[0] ? pe.message : "the driver refused the message");
        return;
    }
    rc = nh_request(en->http, http.method[0] ? http.method : "POST", http.url, http.headers, http.body, http.body_len, en->timeout_s,
                    on_http, m, &e);
    if (http.body) memset(http.body, 0, http.body_len);
    free(http.body);
    if (rc) done(en, m, OUT_FAILED, 0, NULL, e.msg);
}

static void on_wake(evutil_socket_t fd, short what, void *arg);

/* Sends what the channel's queue holds, within its concurrency and rate. */
static void pump(engine *en, int ch)
{
    nchan *n = &en->ch[ch];
    /* a message that ends at once (the log, a refusal) comes back here
     * through done(): the loop below goes on with the next one */
    if (n->pumping) return;
    n->pumping = 1;
    while (n->qh && n->inflight < en->concurrency) {
        if (n->rate > 0) {
            int64_t t = now_us();
            n->tokens += (double)(t - n->refill_us) * n->rate / 1e6;
            if (n->tokens > n->burst) n->tokens = n->burst;
            n->refill_us = t;
            if (n->tokens < 1.0) {
                int64_t wait = (int64_t)((1.0 - n->tokens) * 1e6 / n->rate) + 1;
                struct timeval tv = {(time_t)(wait / 1000000), (suseconds_t)(wait % 1000000)};
                if (!n->wake) n->wake = evtimer_new(en->base, on_wake, en);
                if (n->wake && !evtimer_pending(n->wake, NULL)) evtimer_add(n->wake, &tv);
                break;
            }
            n->tokens -= 1.0;
        }
        nmsg *m = n->qh;
        n->qh = m->next;
        if (!n->qh) n->qt = NULL;
        n->queued--;
        start(en, m);
    }
    n->pumping = 0;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine *en = arg;
    for (int ch = 0; ch < NOTIFY_CHANNELS; ch++)
        if (en->ch[ch].on) pump(en, ch);
}

/* ============================================================== claims */

static int room_of(engine *en, int ch)
{
    nchan *n = &en->ch[ch];
    int room = n->capacity - n->queued - n->inflight;
    if (en->limit > 0) {
        int64_t queued = 0;
        for (int i = 0; i < NOTIFY_CHANNELS; i++) queued += en->ch[i].queued;
        int64_t left = en->limit - en->handled - queued;
        if (left < room) room = (int)(left > 0 ? left : 0);
    }
    return room > 0 ? room : 0;
}

/* Reads up to `room` due messages of one channel with one status into
 * *list (oldest due first). */
static int claim_status(engine *en, int ch, const char *status, const char *now, int room, nmsg **head, nmsg **tail, int *got,
                        err *e)
{
    db_stmt *s = db_prepare(en->db,
                            "SELECT o.id, o.event, coalesce(c.code, ''), o.recipient_enc, o.payload, o.attempts FROM outbox o "
                            "LEFT JOIN customers c ON c.id = o.customer_id "
                            "WHERE o.channel = ? AND o.status = ? AND o.next_attempt_at <= ? "
                            "ORDER BY o.next_attempt_at, o.id LIMIT ?",
                            e);
    if (!s) return e->code;
    db_bind_text(s, 1, notify_channel_names[ch]);
    db_bind_text(s, 2, status);
    db_bind_text(s, 3, now);
    db_bind_int(s, 4, room);
    int rc;
    while ((rc = db_step(en->db, s, e)) == DB_ROW) {
        nmsg *m = calloc(1, sizeof *m);
        if (!m) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
        m->en = en;
        m->ch = ch;
        m->id = db_col_int(s, 0);
        snprintf(m->event, sizeof m->event, "%s", db_col_text(s, 1));
        snprintf(m->customer, sizeof m->customer, "%s", db_col_text(s, 2));
        m->recipient_enc = db_col_is_null(s, 3) ? NULL : strdup(db_col_text(s, 3));
        m->payload = strdup(db_col_text(s, 4));
        m->attempts = (int)db_col_int(s, 5);
        if (!m->payload || (!db_col_is_null(s, 3) && !m->recipient_enc)) {
            msg_free(m);
            rc = ERR_NOMEM_RET(e);
            break;
        }
        if (*tail) (*tail)->next = m;
        else *head = m;
        *tail = m;
        (*got)++;
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

static int quiet_check(engine *en, nmsg *m)
{
    int64_t until = notify_quiet_until(&en->quiet[m->ch], m->event, (int64_t)time(NULL));
    if (!until) return 0;
    char why[160], at[25];
    db_format_time(until * 1000, at);
    snprintf(why, sizeof why, "quiet hours on %s (rules/notices.lua): postponed to %s", notify_channel_names[m->ch], at);
    m->t0_us = 0;
    snprintf(m->version, sizeof m->version, "%s", en->version);
    result(en, m, OUT_POSTPONED, 0, NULL, why, until * 1000);
    return 1;
}

/* One claim: for every channel with room, its due messages (retries first,
 * then new ones) are read without a lock, then taken in one short write
 * transaction by moving their next_attempt_at past the lease - each only
 * if it is still due, so that another worker (a second daemon, the job)
 * that took it first keeps it - and join the channel's queue. */
static int claim(engine *en)
{
    if (en->stopping) return 0;
    char now[25], lease[25];
    int64_t now_ms = db_now_ms();
    db_format_time(now_ms, now);
    db_format_time(now_ms + en->lease_s * 1000, lease);
    err e;
    int rc = 0, found = 0;
    nmsg *heads[NOTIFY_CHANNELS] = {0}, *tails[NOTIFY_CHANNELS] = {0};
    for (int ch = 0; ch < NOTIFY_CHANNELS && !rc; ch++) {
        nchan *n = &en->ch[ch];
        int room = n->on ? room_of(en, ch) : 0;
        n->more = 0;
        if (!room) continue;
        int got = 0;
        rc = claim_status(en, ch, "failed", now, room, &heads[ch], &tails[ch], &got, &e);
        if (!rc && got < room) rc = claim_status(en, ch, "pending", now, room - got, &heads[ch], &tails[ch], &got, &e);
        n->more = got == room;
        found += got;
    }
    if (!rc && found && !(rc = db_begin(en->db, &e))) {
        for (int ch = 0; ch < NOTIFY_CHANNELS; ch++) {
            nmsg *kept = NULL, *last = NULL;
            for (nmsg *m = heads[ch], *next; m; m = next) {
                next = m->next;
                m->next = NULL;
                if (!rc)
                    rc = db_run(en->db, &e,
                                "UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status IN ('pending', 'failed') "
                                "AND next_attempt_at <= ?",
                                "sis", lease, m->id, now);
                if (!rc && db_changes(en->db) == 1) {
                    snprintf(m->lease, sizeof m->lease, "%s", lease);
                    if (last) last->next = m;
                    else kept = m;
                    last = m;
                } else {
                    msg_free(m);
                }
            }
            heads[ch] = kept;
        }
        if (!rc) rc = db_commit(en->db, &e);
    }
    if (rc) {
        if (db_in_tx(en->db)) db_rollback(en->db);
        for (int ch = 0; ch < NOTIFY_CHANNELS; ch++)
            for (nmsg *m = heads[ch], *next; m; m = next) {
                next = m->next;
                msg_free(m);
            }
        log_msg(LOG_ERROR, "notify_claim_failed", "%s", e.msg);
        if (en->drain) {
            en->fatal = e;
            en->has_fatal = 1;
            en->stopping = 1;
        }
        return rc;
    }
    for (int ch = 0; ch < NOTIFY_CHANNELS; ch++) {
        nchan *n = &en->ch[ch];
        for (nmsg *m = heads[ch], *next; m; m = next) {
            next = m->next;
            m->next = NULL;
            if (quiet_check(en, m)) {
                msg_free(m);
                continue;
            }
            if (n->qt) n->qt->next = m;
            else n->qh = m;
            n->qt = m;
            n->queued++;
        }
        pump(en, ch);
    }
    /* found but not taken: another worker's; looking again finds the rest */
    en->claimed_none = found == 0;
    return 0;
}

static int idle(const engine *en)
{
    for (int ch = 0; ch < NOTIFY_CHANNELS; ch++)
        if (en->ch[ch].queued || en->ch[ch].inflight) return 0;
    return 1;
}

static void on_claim(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine *en = arg;
    en->claim_armed = 0;
    if (en->stop && *en->stop) en->stopping = 1;
    if (!en->stopping) claim(en);
    if (!en->drain || !idle(en)) return;
    /* the command line: done when nothing is due, queued or in flight */
    if (en->claimed_none || en->stopping || (en->limit > 0 && en->handled >= en->limit)) {
        flush(en);
        event_base_loopbreak(en->base);
    } else {
        /* what was claimed ended at once (postponed, the log): claim again */
        en->claim_armed = 1;
        event_active(en->claim_ev, 0, 0);
    }
}

/* Claims again soon when a channel has room and more may be due. */
static void want_claim(engine *en)
{
    if (en->claim_armed || en->stopping) return;
    int go = en->drain && idle(en);
    for (int ch = 0; ch < NOTIFY_CHANNELS && !go; ch++) {
        nchan *n = &en->ch[ch];
        go = n->on && n->more && n->queued + n->inflight <= n->capacity / 2;
    }
    if (go) {
        en->claim_armed = 1;
        event_active(en->claim_ev, 0, 0);
    }
}

/* =============================================================== rules */

static void set_rules(engine *en, ruleset *rs)
{
    if (en->rs) ruleset_unref(en->rs);
    en->rs = rs;
    snprintf(en->version, sizeof en->version, "%s", rs ? rs->snap->version : "");
    err e;
    en->quiet_err[0] = 0;
    if (notify_quiet_load(rs, en->quiet, &e)) {
        /* sending at night by mistake is worse than waiting: every message
         * of a channel fails its attempt until the rule is fixed */
        snprintf(en->quiet_err, sizeof en->quiet_err, "%s", e.msg);
        log_msg(LOG_ERROR, "notify_quiet_hours", "%s", e.msg);
    }
}

/* The daemon follows the live rules: a reload is used from the next
 * message on. */
static void refresh_rules(engine *en)
{
    ruleset *live = rules_live();
    if (!live) return;
    if (strcmp(live->snap->version, en->version)) {
        ruleset *rs = NULL;
        err e;
        if (ruleset_load(live->snap, rules_limits(), 0, &rs, NULL, &e) == 0) {
            set_rules(en, rs);
            log_msg(LOG_INFO, "notify_rules", "templates of rules version %.12s", en->version);
        } else {
            log_msg(LOG_ERROR, "notify_rules_failed", "keeping version %.12s: %s", en->version, e.msg);
        }
    }
    ruleset_unref(live);
}

/* The key file may change under us (`bandbill keys rotate`). */
static void refresh_vault(engine *en)
{
    struct stat st;
    if (stat(en->cfg->keys_file, &st)) return;
    if (en->v && st.st_ino == en->keys_ino && st.st_mtim.tv_sec == en->keys_mtime.tv_sec &&
        st.st_mtim.tv_nsec == en->keys_mtime.tv_nsec)
        return;
    vault *nv;
    err e;
    if (vault_open(en->cfg->keys_file, &nv, &e) == 0) {
        vault_close(en->v);
        en->v = nv;
        en->keys_ino = st.st_ino;
        en->keys_mtime = st.st_mtim;
    } else if (!en->v) {
        log_msg(LOG_ERROR, "notify_keys", "%s", e.msg);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine *en = arg;
    if (en->stopping) return;
    if (en->live) refresh_rules(en);
    refresh_vault(en);
    claim(en);
}

/* ============================================================ lifecycle */

static void engine_free(engine *en)
{
    if (!en) return;
    /* what never got an answer stays claimed: due again after its lease */
    for (nmsg *m = en->inflight, *next; m; m = next) {
        next = m->next;
        msg_free(m);
    }
    nh_pool_free(en->http);
    nsmtp_free(en->smtp);
    channels_close(en);
    struct event *evs[] = {en->flush_ev, en->tick_ev, en->claim_ev, en->stop_ev, en->grace_ev};
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++)
        if (evs[i]) event_free(evs[i]);
    free(en->res);
    if (en->rs) ruleset_unref(en->rs);
    vault_close(en->v);
    if (en->plugins) nplug_release();
    free(en);
}

static int engine_new(const cfg *c, struct event_base *base, db *d, engine **out, err *e)
{
    engine *en = calloc(1, sizeof *en);
    if (!en) return ERR_NOMEM_RET(e);
    en->cfg = c;
    en->db = d;
    en->base = base;
    en->timeout_s = (int)c->notify_timeout_s;
    en->concurrency = (int)c->notify_concurrency;
    en->poll_ms = c->notify_poll_ms;
    notify_backoff_of(c, &en->bo);
    int rc = nplug_acquire(c, e);
    if (!rc) en->plugins = 1;
    if (!rc) rc = channels_open(en, c, e);
    if (!rc) {
        /* A claimed message waits in its channel's queue behind at most
         * capacity others, concurrency at a time, each taking up to the
         * timeout (and the rate's pace): the lease outlasts that, so
         * nobody claims it again while it is still to be sent here. */
        en->lease_s = LEASE_S;
        for (int ch = 0; ch < NOTIFY_CHANNELS; ch++) {
            const nchan *n = &en->ch[ch];
            if (!n->on) continue;
            int conc = en->concurrency > 0 ? en->concurrency : 1;
            int64_t wait = ((int64_t)n->capacity / conc + 2) * en->timeout_s + (n->rate > 0 ? (int64_t)(n->capacity / n->rate) + 1 : 0);
            if (wait * 2 > en->lease_s) en->lease_s = wait * 2;
        }
    }
    if (!rc) {
        en->http = nh_pool_new(base, en->concurrency);
        en->flush_ev = evtimer_new(base, on_flush, en);
        en->claim_ev = event_new(base, -1, 0, on_claim, en);
        if (!en->http || !en->flush_ev || !en->claim_ev) rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        for (int ch = 0; ch < NOTIFY_CHANNELS && !rc; ch++)
            if (en->ch[ch].on && en->ch[ch].drv == DRV_SMTP && !en->smtp) rc = nsmtp_new(base, &en->smtp, e);
    }
    if (!rc) refresh_vault(en);
    if (rc) {
        engine_free(en);
        return rc;
    }
    *out = en;
    return 0;
}

int notify_check_config(const cfg *c, err *e)
{
    struct event_base *base = event_base_new();
    if (!base) return err_set(e, ERR_NOMEM, "cannot create an event loop");
    engine *en = NULL;
    int rc = engine_new(c, base, NULL, &en, e);
    engine_free(en);
    event_base_free(base);
    return rc;
}

int notify_deliver(db *d, const cfg *c, const char *rules_dir, int64_t limit, const volatile int *stop, notify_report *r, err *e)
{
    memset(r, 0, sizeof *r);
    struct event_base *base = event_base_new();
    if (!base) return err_set(e, ERR_NOMEM, "cannot create an event loop");
    engine *en = NULL;
    int rc = engine_new(c, base, d, &en, e);
    ruleset *rs = NULL;
    if (!rc && !en->v) rc = err_set(e, ERR_IO, "cannot open the key file %s: recipients cannot be read", c->keys_file);
    /* nothing due on a channel that is set up (a job's minute, mostly):
     * no rules to load */
    int due = 0;
    char now[25];
    db_now(now);
    for (int ch = 0; !rc && ch < NOTIFY_CHANNELS && !due; ch++) {
        if (!en->ch[ch].on) continue;
        int64_t n = 0;
        rc = db_get_int(d, e, &n,
                        "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE channel = ? AND status IN ('pending', 'failed') "
                        "AND next_attempt_at <= ? LIMIT 1)",
                        "ss", notify_channel_names[ch], now);
        due = n > 0;
    }
    if (!rc && due) rc = rules_load_folder(rules_dir ? rules_dir : c->rules, &rs, e);
    if (!rc && due) {
        set_rules(en, rs);
        en->drain = 1;
        en->limit = limit;
        en->stop = stop;
        en->claim_armed = 1;
        event_active(en->claim_ev, 0, 0);
        event_base_dispatch(base);
        flush(en);
        *r = en->rep;
        if (en->has_fatal) {
            *e = en->fatal;
            rc = e->code ? e->code : ERR_DB;
        } else if (en->nres)
            rc = err_set(e, ERR_DB, "%d outcome(s) could not be recorded (they are sent again later)", en->nres);
    }
    engine_free(en);
    event_base_free(base);
    return rc;
}

/* ============================================================== daemon */

struct notify_dispatcher {
    pthread_t tid;
    struct event_base *base;
    db *db;
    engine *en;
};

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine *en = arg;
    event_base_loopbreak(en->base);
}

/* Stopping: no more claims; what is queued goes back (due at once, for the
 * next start or another daemon); requests in flight get a moment. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine *en = arg;
    en->stopping = 1;
    for (int ch = 0; ch < NOTIFY_CHANNELS; ch++) {
        nchan *n = &en->ch[ch];
        for (nmsg *m = n->qh, *next; m; m = next) {
            next = m->next;
            result(en, m, OUT_RELEASE, 0, NULL, NULL, db_now_ms());
            msg_free(m);
        }
        n->qh = n->qt = NULL;
        n->queued = 0;
    }
    flush(en);
    if (idle(en)) {
        event_base_loopbreak(en->base);
        return;
    }
    struct timeval tv = {2, 0};
    en->grace_ev = evtimer_new(en->base, on_grace, en);
    if (!en->grace_ev || evtimer_add(en->grace_ev, &tv)) event_base_loopbreak(en->base);
}

static void *dispatch_thread(void *arg)
{
    notify_dispatcher *d = arg;
    event_base_dispatch(d->base);
    flush(d->en);
    log_release();
    return NULL;
}

int notify_start(const cfg *c, notify_dispatcher **out, err *e)
{
    *out = NULL;
    notify_dispatcher *d = calloc(1, sizeof *d);
    if (!d) return ERR_NOMEM_RET(e);
    int rc = 0;
    if (!(d->base = event_base_new())) rc = err_set(e, ERR_NOMEM, "cannot create the dispatcher's event loop");
    if (!rc) rc = db_open(c->db, 0, &d->db, e);
    if (!rc) rc = engine_new(c, d->base, d->db, &d->en, e);
    if (!rc) {
        engine *en = d->en;
        en->live = 1;
        refresh_rules(en);
        struct timeval tv = {(time_t)(en->poll_ms / 1000), (suseconds_t)(en->poll_ms % 1000) * 1000};
        en->tick_ev = event_new(d->base, -1, EV_PERSIST, on_tick, en);
        en->stop_ev = event_new(d->base, -1, 0, on_stop, en);
        if (!en->tick_ev || !en->stop_ev || event_add(en->tick_ev, &tv))
            rc = err_set(e, ERR_NOMEM, "cannot start the dispatcher's timers");
        /* a first look at once, then every poll_ms */
        en->claim_armed = 1;
        if (!rc) event_active(en->claim_ev, 0, 0);
    }
    if (!rc && pthread_create(&d->tid, NULL, dispatch_thread, d) != 0)
        rc = err_set(e, ERR_INTERNAL, "cannot start the dispatcher thread");
    if (rc) {
        engine_free(d->en);
        db_close(d->db);
        if (d->base) event_base_free(d->base);
        free(d);
        return rc;
    }
    int on = 0;
    char list[128] = "";
    for (int ch = 0; ch < NOTIFY_CHANNELS; ch++)
        if (d->en->ch[ch].on) {
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s=%s", on++ ? " " : "", notify_channel_names[ch],
                     d->en->ch[ch].driver);
        }
    log_msg(LOG_INFO, "notify_started", "delivering %s", list);
    *out = d;
    return 0;
}

void notify_stop(notify_dispatcher *d)
{
    if (!d) return;
    /* event_active is safe from another thread (libevent's pthreads support) */
    event_active(d->en->stop_ev, 0, 0);
    pthread_join(d->tid, NULL);
    engine_free(d->en);
    db_close(d->db);
    event_base_free(d->base);
    free(d);
}
