/* sms_http.c - SMS through an HTTP gateway: a JSON body signed with a
 * shared secret.
 *
 * The request (POST to the configured url):
 *
 *     Content-Type: application/json; charset=utf-8
 *     Idempotency-Key: bb-42
 *     X-Bandbill-Timestamp: 1795682087
 *     X-Bandbill-Signature: sha256=<hex HMAC-SHA256(secret, timestamp "." body)>
 *
 *     {"id":"bb-42","to":"13812348000","text":"...","sender":"...","event":"dunning.due_reminder","attempt":1}
 *
 * The signature covers the timestamp, so the gateway can refuse a request
 * replayed later; the id is the same on every attempt, so a gateway that
 * took a message whose answer was lost can recognise it.
 *
 * The answer: 2xx is taken; its JSON's "message_id" (or "id"), a string
 * or a number, is the gateway's id of the message. 401, 403, 408, 409,
 * 425, 429 and 5xx are tried again (a gateway that is down, busy, or whose
 * secret is being changed); any other 4xx (a bad number, a text it
 * refuses) is final. The reason is the answer's "error" or "message".
 *
 * Settings: url (http or https; required), secret (the shared key, at
 * least 16 characters; required), sender (the signature name the gateway
 * shows, optional). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notichan.h"

#define EXPORT __attribute__((visibility("default")))

static const notichan_host *H;

typedef struct sms {
    char url[1024];
    char secret[256];
    char sender[128];
} sms;

static int fail(notichan_error *e, const char *field, int permanent, const char *msg)
{
    snprintf(e->field, sizeof e->field, "%s", field);
    snprintf(e->message, sizeof e->message, "%s", msg);
    e->permanent = permanent;
    return -1;
}

static const char *get(const notichan_settings *s, const char *k)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].key, k)) return s->items[i].value;
    return NULL;
}

static int open_(const notichan_settings *s, void **handle, notichan_error *e)
{
    const char *url = get(s, "url"), *secret = get(s, "secret"), *sender = get(s, "sender");
    if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
        return fail(e, "url", 1, "the gateway's URL (http:// or https://) is required");
    if (strlen(url) >= sizeof ((sms *)0)->url) return fail(e, "url", 1, "too long");
    if (!secret || strlen(secret) < 16 || strlen(secret) >= sizeof ((sms *)0)->secret)
        return fail(e, "secret", 1, "the shared secret (16 to 255 characters) is required");
    if (sender && strlen(sender) >= sizeof ((sms *)0)->sender) return fail(e, "sender", 1, "too long");
    sms *h = H->alloc(sizeof *h);
    if (!h) return fail(e, "", 0, "out of memory");
    memset(h, 0, sizeof *h);
    snprintf(h->url, sizeof h->url, "%s", url);
    snprintf(h->secret, sizeof h->secret, "%s", secret);
    snprintf(h->sender, sizeof h->sender, "%s", sender ? sender : "");
    *handle = h;
    return 0;
}

static void close_(void *handle)
{
    sms *h = handle;
    if (!h) return;
    memset(h->secret, 0, sizeof h->secret);
    H->free(h);
}

static int add(char *out, size_t cap, const char *s)
{
    size_t have = strlen(out), n = strlen(s);
    if (have + n + 1 > cap) return -1;
    memcpy(out + have, s, n + 1);
    return 0;
}

static int request(void *handle, const notichan_message *m, int64_t now, notichan_http *out, notichan_error *e)
{
    sms *h = handle;
    if (!m->recipient || !m->text) return fail(e, "", 1, "an SMS needs a phone number and a text");
    size_t cap = 512 + 6 * (strlen(m->recipient) + strlen(m->text) + strlen(h->sender) + strlen(m->event));
    char *body = H->alloc(cap);
    if (!body) return fail(e, "", 0, "out of memory");
    char id[40];
    snprintf(id, sizeof id, "bb-%lld", (long long)m->id);
    body[0] = 0;
    int bad = add(body, cap, "{\"id\":") || H->json_quote(id, body, cap) || add(body, cap, ",\"to\":") ||
              H->json_quote(m->recipient, body, cap) || add(body, cap, ",\"text\":") || H->json_quote(m->text, body, cap);
    if (!bad && h->sender[0]) bad = add(body, cap, ",\"sender\":") || H->json_quote(h->sender, body, cap);
    char tail[64];
    snprintf(tail, sizeof tail, ",\"attempt\":%d}", m->attempt);
    bad = bad || add(body, cap, ",\"event\":") || H->json_quote(m->event, body, cap) || add(body, cap, tail);
    if (bad) {
        H->free(body);
        return fail(e, "", 1, "the message does not fit the request");
    }
    size_t blen = strlen(body);
    /* signed: the timestamp, a dot, the body exactly as sent */
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    size_t slen = strlen(ts) + 1 + blen;
    char *signed_text = H->alloc(slen + 1);
    unsigned char mac[32];
    char hex[65];
    if (!signed_text) {
        H->free(body);
        return fail(e, "", 0, "out of memory");
    }
    snprintf(signed_text, slen + 1, "%s.%s", ts, body);
    int rc = H->hmac_sha256(h->secret, strlen(h->secret), signed_text, slen, mac);
    H->free(signed_text);
    if (rc) {
        H->free(body);
        return fail(e, "", 0, "cannot sign the request");
    }
    H->hex(mac, sizeof mac, hex);
    snprintf(out->method, sizeof out->method, "POST");
    snprintf(out->url, sizeof out->url, "%s", h->url);
    snprintf(out->headers, sizeof out->headers,
             "Content-Type: application/json; charset=utf-8\nIdempotency-Key: %s\nX-Bandbill-Timestamp: %s\n"
             "X-Bandbill-Signature: sha256=%s\n",
             id, ts, hex);
    out->body = body;
    out->body_len = blen;
    return 0;
}

static int response(void *handle, const notichan_message *m, const notichan_answer *a, notichan_result *out, notichan_error *e)
{
    (void)handle;
    (void)m;
    char why[200] = "";
    void *doc = a->body_len ? H->json_parse(a->body, a->body_len, why, sizeof why) : NULL;
    const char *reason = doc ? H->json_str(doc, "error") : NULL;
    if (doc && !reason) reason = H->json_str(doc, "message");
    if (a->status >= 200 && a->status < 300) {
        const char *id = doc ? H->json_str(doc, "message_id") : NULL;
        int64_t num;
        if (doc && !id) id = H->json_str(doc, "id");
        if (id) snprintf(out->provider_id, sizeof out->provider_id, "%s", id);
        else if (doc && (H->json_int(doc, "message_id", &num) == 0 || H->json_int(doc, "id", &num) == 0))
            snprintf(out->provider_id, sizeof out->provider_id, "%lld", (long long)num);
        if (doc) H->json_free(doc);
        return 0;
    }
    int s = a->status;
    int temporary = s == 401 || s == 403 || s == 408 || s == 409 || s == 425 || s == 429 || s >= 500 || s < 400;
    char msg[256];
    if (reason) snprintf(msg, sizeof msg, "the gateway answered %d: %.200s", s, reason);
    else snprintf(msg, sizeof msg, "the gateway answered %d%s%.120s", s, a->body_len ? ": " : "", a->body_len ? a->body : "");
    if (doc) H->json_free(doc);
    return fail(e, "", !temporary, msg);
}

static const char *const settings[] = {"url", "secret", "sender", NULL};
static const notichan_plugin plugin = {NOTICHAN_ABI, "sms_http", "SMS over an HTTP gateway (HMAC-SHA256 signed JSON)", settings,
                                       open_, close_, request, response};

EXPORT const notichan_plugin *bandbill_notichan(const notichan_host *host)
{
    H = host;
    return &plugin;
}
