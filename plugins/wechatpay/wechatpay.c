/* wechatpay.c - the WeChat Pay API v3 channel: payment notifications.
 *
 * WeChat signs `timestamp \n nonce \n body \n` (the raw body bytes, the
 * trailing newline included) with SHA256withRSA under the platform key
 * that the Wechatpay-Serial header names; a notification older or newer
 * than five minutes is refused. The payment itself is in `resource`,
 * encrypted with AES-256-GCM under the merchant's APIv3 key (IV = the
 * nonce's bytes, AAD = associated_data, the tag the last 16 bytes).
 *
 * Pay links are Native orders (a QR code's content): the core sends the
 * request this plugin signs with the merchant's key (WECHATPAY2-SHA256-
 * RSA2048 over method, path, timestamp, nonce and body) and hands back the
 * answer, whose own signature is checked like a notification's.
 *
 * Settings: public_key (the platform public key or certificate, a PEM file; required),
 * platform_serial (when set, a notification signed under another serial is
 * refused), apiv3_key (the 32-character APIv3 key, required); for pay links
 * app_id, merchant_id, mch_private_key (PEM file), mch_serial, notify_url
 * and api_base (default https://api.mch.weixin.qq.com). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "paychan.h"

#define EXPORT __attribute__((visibility("default")))
#define WINDOW_SECONDS 300

static const paychan_host *H;

typedef struct wechatpay {
    char *key;
    size_t key_len;
    char serial[80];
    /* the platform's next key, for the weeks WeChat Pay signs with either
     * while it rotates them: each notification names its key's serial */
    char *key2;
    size_t key2_len;
    char serial2[80];
    unsigned char apiv3[32];
    size_t apiv3_len;
    char *mch_key; /* NULL: no pay links */
    size_t mch_key_len;
    char mch_serial[80], appid[64], mchid[64], notify_url[512], api_base[256];
} wechatpay;

static int fail(paychan_error *err, const char *check, const char *field, int status, const char *msg)
{
    snprintf(err->check, sizeof err->check, "%s", check);
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    snprintf(err->message, sizeof err->message, "%s", msg);
    err->reply_status = status;
    return -1;
}

static const char *setting(const paychan_settings *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].key, key)) return s->items[i].value;
    return NULL;
}

static void close_wechatpay(void *handle)
{
    wechatpay *w = handle;
    if (!w) return;
    H->free(w->mch_key);
    H->free(w->key2);
    H->free(w->key);
    memset(w->apiv3, 0, sizeof w->apiv3);
    H->free(w);
}

static int open_wechatpay(const paychan_settings *s, void **handle, paychan_error *err)
{
    const char *path = setting(s, "public_key"), *serial = setting(s, "platform_serial");
    const char *apiv3 = setting(s, "apiv3_key");
    if (!path || !path[0])
        return fail(err, "settings", "public_key", 500, "the platform public key or certificate (a PEM file) is required");
    /* production keys are 32 bytes (AES-256); shorter AES key sizes are
     * accepted so that captured test notifications can be inspected */
    size_t alen = apiv3 ? strlen(apiv3) : 0;
    if (alen != 32 && alen != 24 && alen != 16)
        return fail(err, "settings", "apiv3_key", 500, "the APIv3 key is 32 characters");
    if (serial && strlen(serial) >= 80) return fail(err, "settings", "platform_serial", 500, "too long");
    wechatpay *w = H->alloc(sizeof *w);
    if (!w) return fail(err, "settings", NULL, 500, "out of memory");
    memset(w, 0, sizeof *w);
    char why[200];
    w->key = H->read_file(path, &w->key_len, why, sizeof why);
    if (!w->key) {
        H->free(w);
        return fail(err, "settings", "public_key", 500, why);
    }
    snprintf(w->serial, sizeof w->serial, "%s", serial ? serial : "");
    const char *path2 = setting(s, "next_public_key"), *serial2 = setting(s, "next_platform_serial");
    if (path2 && path2[0]) {
        if (!serial2 || !serial2[0] || strlen(serial2) >= sizeof w->serial2 || !w->serial[0]) {
            close_wechatpay(w);
            return fail(err, "settings", "next_platform_serial", 500,
                        "a next key needs its serial, and the current key its platform_serial");
        }
        if (!(w->key2 = H->read_file(path2, &w->key2_len, why, sizeof why))) {
            close_wechatpay(w);
            return fail(err, "settings", "next_public_key", 500, why);
        }
        snprintf(w->serial2, sizeof w->serial2, "%s", serial2);
    }
    memcpy(w->apiv3, apiv3, alen);
    w->apiv3_len = alen;
    static const struct {
        const char *key;
        size_t off, size;
    } text[] = {{"mch_serial", offsetof(wechatpay, mch_serial), sizeof w->mch_serial},
                {"app_id", offsetof(wechatpay, appid), sizeof w->appid},
                {"merchant_id", offsetof(wechatpay, mchid), sizeof w->mchid},
                {"notify_url", offsetof(wechatpay, notify_url), sizeof w->notify_url},
                {"api_base", offsetof(wechatpay, api_base), sizeof w->api_base}};
    snprintf(w->api_base, sizeof w->api_base, "https://api.mch.weixin.qq.com");
    for (size_t i = 0; i < sizeof text / sizeof *text; i++) {
        const char *v = setting(s, text[i].key);
        if (!v) continue;
        /* they go into JSON and a header unescaped: plain text only */
        if (strlen(v) >= text[i].size || strpbrk(v, "\"\\\r\n")) {
            close_wechatpay(w);
            return fail(err, "settings", text[i].key, 500, "too long, or holds a quote, backslash or line break");
        }
        memcpy((char *)w + text[i].off, v, strlen(v) + 1);
    }
    const char *mk = setting(s, "mch_private_key");
    if (mk && mk[0]) {
        if (!(w->mch_key = H->read_file(mk, &w->mch_key_len, why, sizeof why))) {
            close_wechatpay(w);
            return fail(err, "settings", "mch_private_key", 500, why);
        }
        const char *missing = !w->mch_serial[0] ? "mch_serial" : !w->appid[0] ? "app_id" : !w->mchid[0] ? "merchant_id"
                            : !w->notify_url[0] ? "notify_url" : NULL;
        if (missing) {
            close_wechatpay(w);
            return fail(err, "settings", missing, 500, "pay links need it");
        }
    }
    *handle = w;
    return 0;
}


static const char *header(const paychan_request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (!strcasecmp(r->headers[i].key, name)) return r->headers[i].value;
    return NULL;
}

static int copy(char *dst, size_t cap, const char *src, const char *field, paychan_error *err)
{
    if (!src) src = "";
    if (strlen(src) >= cap) return fail(err, "format", field, 400, "the value is too long");
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

/* Decrypts resource into a parsed document (json_free it). */
static void *decrypt_resource(wechatpay *w, const void *doc, paychan_error *err)
{
    const char *alg = H->json_str(doc, "resource.algorithm"), *ct64 = H->json_str(doc, "resource.ciphertext");
    const char *nonce = H->json_str(doc, "resource.nonce"), *aad = H->json_str(doc, "resource.associated_data");
    if (!alg || strcmp(alg, "AEAD_AES_256_GCM")) {
        fail(err, "format", "resource.algorithm", 400, "the resource is not encrypted with AEAD_AES_256_GCM");
        return NULL;
    }
    if (!ct64 || !nonce) {
        fail(err, "format", !ct64 ? "resource.ciphertext" : "resource.nonce", 400, "a required field is missing");
        return NULL;
    }
    size_t cap = strlen(ct64) / 4 * 3 + 3, ctlen = 0;
    unsigned char *ct = H->alloc(cap), *pt = H->alloc(cap + 1);
    void *out = NULL;
    if (!ct || !pt) {
        fail(err, "decrypt", NULL, 500, "out of memory");
    } else if (H->b64_decode(ct64, strlen(ct64), ct, cap, &ctlen) || ctlen < 16) {
        fail(err, "format", "resource.ciphertext", 400, "the ciphertext is not base64 of at least a tag");
    } else if (H->aes_gcm_decrypt(w->apiv3, w->apiv3_len, (const unsigned char *)nonce, strlen(nonce),
                                  (const unsigned char *)(aad ? aad : ""), aad ? strlen(aad) : 0, ct, ctlen, pt)) {
        /* a 5xx makes WeChat try again: the key may be in the middle of a change */
        fail(err, "decrypt", "resource.ciphertext", 500,
             "the resource does not decrypt with the APIv3 key (wrong key, nonce or associated data)");
    } else {
        char why[200];
        out = H->json_parse((const char *)pt, ctlen - 16, why, sizeof why);
        if (!out) fail(err, "format", "resource", 400, "the decrypted resource is not JSON");
    }
    H->free(ct);
    H->free(pt);
    return out;
}

/* The Wechatpay-* headers of a notification or of an answer to our
 * request: the signature over timestamp, nonce and body with the platform
 * key, inside the time window, under the configured serial. */
static int check_signed(wechatpay *w, const paychan_request *req, int64_t now, paychan_error *err)
{
    static const char *const names[] = {"Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature",
                                        "Wechatpay-Serial"};
    const char *h[4];
    for (int i = 0; i < 4; i++)
        if (!(h[i] = header(req, names[i])) || !h[i][0])
            return fail(err, "format", names[i], 401, "a required header is missing");
    const char *ts = h[0], *nonce = h[1], *sig64 = h[2], *serial = h[3];
    /* WeChat's probes must fail, loudly */
    if (!strncmp(sig64, "WECHATPAY/SIGNTEST/", 19))
        return fail(err, "signature", "Wechatpay-Signature", 401, "a WeChat Pay signature probe: refused as it must be");
    int64_t t = 0;
    for (const char *p = ts; *p; p++) {
        if (*p < '0' || *p > '9' || t > 100000000000LL) return fail(err, "format", "Wechatpay-Timestamp", 401, "not a Unix time");
        t = t * 10 + (*p - '0');
    }
    if (t - now >= WINDOW_SECONDS || now - t >= WINDOW_SECONDS) {
        char m[160];
        snprintf(m, sizeof m, "the timestamp %lld is %lld s away from now (%lld); the window is %d s", (long long)t,
                 (long long)(t > now ? t - now : now - t), (long long)now, WINDOW_SECONDS);
        return fail(err, "timestamp", "Wechatpay-Timestamp", 401, m);
    }
    /* the key the notification names */
    const char *key = w->key;
    size_t key_len = w->key_len;
    if (w->key2 && !strcmp(w->serial2, serial)) {
        key = w->key2;
        key_len = w->key2_len;
    } else if (w->serial[0] && strcmp(w->serial, serial)) {
        char m[200];
        snprintf(m, sizeof m, "signed under platform key %.60s, not a configured one (%.60s%s%.60s)", serial, w->serial,
                 w->key2 ? ", " : "", w->key2 ? w->serial2 : "");
        return fail(err, "serial", "Wechatpay-Serial", 401, m);
    }
    size_t tl = strlen(ts), nl = strlen(nonce), mlen = tl + nl + req->body_len + 3;
    char *msg = H->alloc(mlen);
    if (!msg) return fail(err, "format", NULL, 500, "out of memory");
    memcpy(msg, ts, tl);
    msg[tl] = '\n';
    memcpy(msg + tl + 1, nonce, nl);
    msg[tl + 1 + nl] = '\n';
    memcpy(msg + tl + nl + 2, req->body, req->body_len);
    msg[mlen - 1] = '\n';
    unsigned char sig[1024];
    size_t slen = 0;
    char why[200] = "";
    int rc = 0;
    if (H->b64_decode(sig64, strlen(sig64), sig, sizeof sig, &slen)) {
        rc = fail(err, "signature", "Wechatpay-Signature", 401, "the signature is not base64");
    } else {
        int v = H->rsa_sha256_verify(key, key_len, msg, mlen, sig, slen, why, sizeof why);
        if (v < 0) rc = fail(err, "settings", "public_key", 500, why);
        else if (v == 0)
            rc = fail(err, "signature", "Wechatpay-Signature", 401,
                      "the signature does not match timestamp, nonce and body with the platform key");
    }
    H->free(msg);
    return rc;
}

/* A transaction object (a notification's decrypted resource, or a
 * query's answer) into the notice. One not paid carries no transaction id. */
static int fill_transaction(const void *res, paychan_notice *out, paychan_error *err)
{
    const char *state = H->json_str(res, "trade_state");
    if (!state) return fail(err, "format", "trade_state", 400, "a required field is missing");
    if (!H->json_str(res, "out_trade_no")) return fail(err, "format", "out_trade_no", 400, "a required field is missing");
    int paid = !strcmp(state, "SUCCESS"), refunded = !strcmp(state, "REFUND");
    out->state = paid ? PAYCHAN_PAID : refunded ? PAYCHAN_REFUNDED : PAYCHAN_NOT_PAID;
    int rc = copy(out->status, sizeof out->status, state, "trade_state", err);
    if (!rc && (paid || refunded) && !H->json_str(res, "transaction_id"))
        rc = fail(err, "format", "transaction_id", 400, "a required field is missing");
    if (!rc && (H->json_int(res, "amount.total", &out->amount) || out->amount < 0) && (paid || refunded))
        rc = fail(err, "format", "amount.total", 400, "the amount is not a whole number of fen");
    if (!rc) rc = copy(out->out_trade_no, sizeof out->out_trade_no, H->json_str(res, "out_trade_no"), "out_trade_no", err);
    if (!rc) rc = copy(out->channel_txn_id, sizeof out->channel_txn_id, H->json_str(res, "transaction_id"), "transaction_id", err);
    if (!rc) rc = copy(out->app_id, sizeof out->app_id, H->json_str(res, "appid"), "appid", err);
    if (!rc) rc = copy(out->merchant_id, sizeof out->merchant_id, H->json_str(res, "mchid"), "mchid", err);
    if (!rc) rc = copy(out->paid_at, sizeof out->paid_at, H->json_str(res, "success_time"), "success_time", err);
    const char *cur = H->json_str(res, "amount.currency");
    if (!rc) rc = copy(out->currency, sizeof out->currency, cur ? cur : "CNY", "amount.currency", err);
    return rc;
}

static int verify_wechatpay(void *handle, const paychan_request *req, int64_t now, paychan_notice *out,
                            paychan_error *err)
{
    wechatpay *w = handle;
    memset(out, 0, sizeof *out);
    int rc = check_signed(w, req, now, err);
    if (rc) return rc;

    char jwhy[200];
    void *doc = H->json_parse(req->body, req->body_len, jwhy, sizeof jwhy);
    if (!doc) return fail(err, "format", "body", 400, jwhy);
    void *res = decrypt_resource(w, doc, err);
    if (!res) {
        H->json_free(doc);
        return -1;
    }
    const char *event = H->json_str(doc, "event_type");
    rc = copy(out->event, sizeof out->event, event, "event_type", err);
    const char *type = H->json_str(doc, "resource.original_type");
    int is_txn = event && !strncmp(event, "TRANSACTION.", 12) && (!type || !strcmp(type, "transaction"));
    if (!rc && is_txn) {
        rc = fill_transaction(res, out, err);
    } else if (!rc) {
        /* a notification of another kind (refund, pay score...): verified, decoded, nothing to credit */
        out->state = PAYCHAN_NOT_PAID;
        rc = copy(out->status, sizeof out->status, type ? type : "", "resource.original_type", err);
    }
    if (!rc) {
        out->fields_json = H->json_text(res);
        if (!out->fields_json) rc = fail(err, "format", NULL, 500, "out of memory");
    }
    H->json_free(res);
    H->json_free(doc);
    return rc;
}

/* ------------------------------------------------------------ pay links */

static const char NATIVE_PATH[] = "/v3/pay/transactions/native";

/* A request to the API signed with the merchant's key: WECHATPAY2-SHA256-
 * RSA2048 over method, path (with its query), timestamp, nonce and body. */
static int signed_request(wechatpay *w, const char *method, const char *path, const char *body, size_t bl, int64_t now,
                          paychan_http *h, paychan_error *err)
{
    if (!w->mch_key) return fail(err, "settings", "mch_private_key", 500, "requests to WeChat Pay need the merchant's private key");
    unsigned char rnd[16];
    if (H->random(rnd, sizeof rnd)) return fail(err, "format", NULL, 500, "no randomness");
    char nonce[33];
    for (int i = 0; i < 16; i++) snprintf(nonce + 2 * i, 3, "%02X", rnd[i]);
    char msg[2600], sig[1024], why[200];
    int ml = snprintf(msg, sizeof msg, "%s\n%s\n%lld\n%s\n%.*s\n", method, path, (long long)now, nonce, (int)bl, body);
    if (ml < 0 || (size_t)ml >= sizeof msg) return fail(err, "format", NULL, 500, "the request does not fit");
    if (H->rsa_sha256_sign(w->mch_key, w->mch_key_len, msg, (size_t)ml, sig, sizeof sig, why, sizeof why))
        return fail(err, "settings", "mch_private_key", 500, why);
    snprintf(h->method, sizeof h->method, "%s", method);
    snprintf(h->url, sizeof h->url, "%s%s", w->api_base, path);
    snprintf(h->headers, sizeof h->headers,
             "%sAccept: application/json\nUser-Agent: bandbill\n"
             "Authorization: WECHATPAY2-SHA256-RSA2048 mchid=\"%s\",nonce_str=\"%s\",signature=\"%s\","
             "timestamp=\"%lld\",serial_no=\"%s\"\n",
             bl ? "Content-Type: application/json\n" : "", w->mchid, nonce, sig, (long long)now, w->mch_serial);
    h->body = NULL;
    h->body_len = 0;
    if (bl) {
        if (!(h->body = H->alloc(bl))) return fail(err, "format", NULL, 500, "out of memory");
        memcpy(h->body, body, bl);
        h->body_len = bl;
    }
    return PAYCHAN_HTTP;
}

static int create_wechatpay(void *handle, const paychan_order *o, int64_t now, paychan_link *out, paychan_error *err)
{
    wechatpay *w = handle;
    memset(out, 0, sizeof *out);
    if (!w->mch_key) return fail(err, "settings", "mch_private_key", 500, "pay links need the merchant's private key");
    char expire[40], desc[256];
    time_t bj = (time_t)(o->expires + 8 * 3600);
    struct tm tm;
    gmtime_r(&bj, &tm);
    strftime(expire, sizeof expire, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
    /* the subject is ours; keep it JSON-safe */
    size_t n = 0;
    for (const char *p = o->subject ? o->subject : o->out_trade_no; *p && n + 2 < sizeof desc; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) desc[n++] = *p;
    desc[n] = 0;
    const char *notify = o->notify_url && o->notify_url[0] ? o->notify_url : w->notify_url;
    char body[2048];
    int bl = snprintf(body, sizeof body,
                      "{\"appid\":\"%s\",\"mchid\":\"%s\",\"description\":\"%s\",\"out_trade_no\":\"%s\","
                      "\"time_expire\":\"%s\",\"notify_url\":\"%s\",\"amount\":{\"total\":%lld,\"currency\":\"CNY\"}}",
                      w->appid, w->mchid, desc, o->out_trade_no, expire, notify, (long long)o->amount);
    if (bl < 0 || (size_t)bl >= sizeof body) return fail(err, "format", NULL, 500, "the order does not fit");
    return signed_request(w, "POST", NATIVE_PATH, body, (size_t)bl, now, &out->http, err);
}

static int order_response_wechatpay(void *handle, const paychan_order *o, int status, const paychan_request *resp,
                                    int64_t now, paychan_link *out, paychan_error *err)
{
    (void)o;
    wechatpay *w = handle;
    memset(out, 0, sizeof *out);
    char jwhy[200];
    void *doc = resp->body_len ? H->json_parse(resp->body, resp->body_len, jwhy, sizeof jwhy) : NULL;
    if (status != 200) {
        char m[256];
        const char *code = doc ? H->json_str(doc, "code") : NULL, *msg = doc ? H->json_str(doc, "message") : NULL;
        snprintf(m, sizeof m, "WeChat Pay answered %d %s: %s", status, code ? code : "", msg ? msg : "(no message)");
        H->json_free(doc);
        return fail(err, "order", "status", 502, m);
    }
    /* an answer is only as good as its signature */
    int rc = check_signed(w, resp, now, err);
    const char *url = !rc && doc ? H->json_str(doc, "code_url") : NULL;
    if (!rc && !url) rc = fail(err, "order", "code_url", 502, "the answer has no code_url");
    if (!rc && strlen(url) >= sizeof out->qr) rc = fail(err, "order", "code_url", 502, "code_url is too long");
    if (!rc) memcpy(out->qr, url, strlen(url) + 1);
    H->json_free(doc);
    return rc;
}

static int query_wechatpay(void *handle, const char *out_trade_no, int64_t now, paychan_http *out, paychan_error *err)
{
    wechatpay *w = handle;
    memset(out, 0, sizeof *out);
    /* our order numbers are letters and digits: nothing to escape in the path */
    if (strspn(out_trade_no, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(out_trade_no))
        return fail(err, "format", "out_trade_no", 400, "not an order number of ours");
    char path[256];
    snprintf(path, sizeof path, "/v3/pay/transactions/out-trade-no/%s?mchid=%s", out_trade_no, w->mchid);
    return signed_request(w, "GET", path, "", 0, now, out, err);
}

static int query_response_wechatpay(void *handle, const char *out_trade_no, int status, const paychan_request *resp,
                                    int64_t now, paychan_notice *out, paychan_error *err)
{
    wechatpay *w = handle;
    memset(out, 0, sizeof *out);
    char jwhy[200];
    void *doc = resp->body_len ? H->json_parse(resp->body, resp->body_len, jwhy, sizeof jwhy) : NULL;
    int rc = 0;
    if (status == 404) {
        /* never paid, never even opened: nothing to credit */
        out->state = PAYCHAN_NOT_PAID;
        snprintf(out->status, sizeof out->status, "ORDER_NOT_EXIST");
        rc = copy(out->out_trade_no, sizeof out->out_trade_no, out_trade_no, "out_trade_no", err);
    } else if (status != 200) {
        char m[256];
        const char *code = doc ? H->json_str(doc, "code") : NULL;
        snprintf(m, sizeof m, "WeChat Pay answered %d %s", status, code ? code : "");
        rc = fail(err, "query", "status", 502, m);
    } else if (!(rc = check_signed(w, resp, now, err))) {
        if (!doc) rc = fail(err, "format", "body", 502, "the answer is not JSON");
        else if (!(rc = fill_transaction(doc, out, err)) && strcmp(out->out_trade_no, out_trade_no))
            rc = fail(err, "query", "out_trade_no", 502, "the answer is about another order");
        if (!rc && !(out->fields_json = H->json_text(doc))) rc = fail(err, "format", NULL, 500, "out of memory");
        if (!rc) snprintf(out->event, sizeof out->event, "query");
    }
    H->json_free(doc);
    return rc;
}

/* ---------------------------------------------------------------- refunds */

static int refund_wechatpay(void *handle, const paychan_refund *r, int64_t now, paychan_http *out, paychan_error *err)
{
    wechatpay *w = handle;
    memset(out, 0, sizeof *out);
    char reason[160];
    size_t n = 0;
    for (const char *p = r->reason ? r->reason : ""; *p && n + 2 < sizeof reason; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) reason[n++] = *p;
    reason[n] = 0;
    char body[1024];
    int bl = snprintf(body, sizeof body,
                      "{\"transaction_id\":\"%s\",\"out_refund_no\":\"%s\",\"reason\":\"%s\","
                      "\"amount\":{\"refund\":%lld,\"total\":%lld,\"currency\":\"CNY\"}}",
                      r->channel_txn_id, r->out_refund_no, reason, (long long)r->amount, (long long)r->total);
    if (bl < 0 || (size_t)bl >= sizeof body) return fail(err, "format", NULL, 500, "the refund does not fit");
    return signed_request(w, "POST", "/v3/refund/domestic/refunds", body, (size_t)bl, now, out, err);
}

static int refund_response_wechatpay(void *handle, const paychan_refund *r, int status, const paychan_request *resp,
                                     int64_t now, paychan_refund_result *out, paychan_error *err)
{
    wechatpay *w = handle;
    memset(out, 0, sizeof *out);
    char jwhy[200];
    void *doc = resp->body_len ? H->json_parse(resp->body, resp->body_len, jwhy, sizeof jwhy) : NULL;
    int rc = 0;
    if (status != 200) {
        char m[256];
        const char *code = doc ? H->json_str(doc, "code") : NULL, *msg = doc ? H->json_str(doc, "message") : NULL;
        snprintf(m, sizeof m, "WeChat Pay answered %d %s: %s", status, code ? code : "", msg ? msg : "(no message)");
        rc = fail(err, "refund", "status", 502, m);
    } else if (!(rc = check_signed(w, resp, now, err))) {
        const char *id = doc ? H->json_str(doc, "refund_id") : NULL, *st = doc ? H->json_str(doc, "status") : NULL;
        const char *no = doc ? H->json_str(doc, "out_refund_no") : NULL;
        if (!id || !st || !no || strcmp(no, r->out_refund_no))
            rc = fail(err, "refund", "refund_id", 502, "the answer does not name this refund");
        /* accepted: done at once, or on its way back to the payer */
        else if (strcmp(st, "SUCCESS") && strcmp(st, "PROCESSING"))
            rc = fail(err, "refund", "status", 502, "WeChat Pay did not take the refund");
        if (!rc) rc = copy(out->refund_id, sizeof out->refund_id, id, "refund_id", err);
        if (!rc) rc = copy(out->status, sizeof out->status, st, "status", err);
    }
    H->json_free(doc);
    return rc;
}

/* ------------------------------------------------------------- statements */

/* The trade bill (交易账单, bill type ALL) as the merchant platform gives
 * it: a header line, then one line a transaction with every value behind
 * a backtick, then a summary from the line that starts with 总交易单数.
 * Columns are found by their names. */
typedef struct wx_bill {
    int (*row)(void *arg, const paychan_statement_row *r);
    void *arg;
    int col[7]; /* time, txn, out_trade_no, state, amount, refund id, refund amount */
    int have_header, done, line, failed;
    paychan_error *err;
} wx_bill;

static const char *wx_value(const char *const *f, size_t n, int i)
{
    if (i < 0 || (size_t)i >= n) return "";
    const char *v = f[i];
    while (*v == '`' || *v == ' ') v++;
    return v;
}

static int wx_row(void *arg, const char *const *f, size_t n)
{
    wx_bill *b = arg;
    b->line++;
    if (b->done || n == 0) return 0;
    const char *first = wx_value(f, n, 0);
    if (!b->have_header) {
        static const char *const names[7] = {"交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号", "退款金额"};
        for (int k = 0; k < 7; k++) {
            b->col[k] = -1;
            for (size_t i = 0; i < n; i++)
                if (!strcmp(wx_value(f, n, (int)i), names[k])) b->col[k] = (int)i;
        }
        for (int k = 0; k < 5; k++)
            if (b->col[k] < 0) {
                char m[120];
                snprintf(m, sizeof m, "line %d: no column %s: not a WeChat Pay trade bill", b->line, names[k]);
                b->failed = fail(b->err, "format", names[k], 400, m);
                return 1;
            }
        b->have_header = 1;
        return 0;
    }
    if (!strncmp(first, "总交易单数", strlen("总交易单数"))) {
        b->done = 1; /* the summary follows */
        return 0;
    }
    const char *state = wx_value(f, n, b->col[3]);
    paychan_statement_row r;
    memset(&r, 0, sizeof r);
    r.refund = !strcmp(state, "REFUND");
    if (!r.refund && strcmp(state, "SUCCESS")) return 0; /* not money moved */
    const char *amount = wx_value(f, n, r.refund ? b->col[6] : b->col[4]);
    char m[160];
    if (H->yuan_to_fen(amount, &r.amount) || r.amount <= 0) {
        snprintf(m, sizeof m, "line %d: the amount '%.40s' is not yuan with two decimals", b->line, amount);
        b->failed = fail(b->err, "format", r.refund ? "退款金额" : "应结订单金额", 400, m);
        return 1;
    }
    snprintf(r.channel_txn_id, sizeof r.channel_txn_id, "%s", wx_value(f, n, b->col[1]));
    snprintf(r.out_trade_no, sizeof r.out_trade_no, "%s", wx_value(f, n, b->col[2]));
    snprintf(r.at, sizeof r.at, "%s", wx_value(f, n, b->col[0]));
    if (r.refund) snprintf(r.refund_id, sizeof r.refund_id, "%s", wx_value(f, n, b->col[5]));
    if (b->row(b->arg, &r)) {
        b->done = 1;
        return 1;
    }
    return 0;
}

static int statement_wechatpay(void *handle, const char *text, size_t len,
                               int (*row)(void *arg, const paychan_statement_row *r), void *arg, paychan_error *err)
{
    (void)handle;
    wx_bill b = {.row = row, .arg = arg, .err = err};
    char why[200];
    if (H->csv_rows(text, len, wx_row, &b, why, sizeof why)) return fail(err, "format", NULL, 400, why);
    if (b.failed) return -1;
    if (!b.have_header) return fail(err, "format", NULL, 400, "an empty statement");
    return 0;
}

/* 204 with no body once recorded; otherwise a 4xx/5xx with the code and
 * message WeChat shows in the merchant platform. */
static void reply_wechatpay(void *handle, int ok, const paychan_error *why, paychan_reply *out)
{
    (void)handle;
    memset(out, 0, sizeof *out);
    if (ok) {
        out->status = 204;
        return;
    }
    out->status = why && why->reply_status ? why->reply_status : 400;
    snprintf(out->content_type, sizeof out->content_type, "application/json");
    /* check names are plain ASCII words: no escaping needed */
    snprintf(out->body, sizeof out->body, "{\"code\":\"FAIL\",\"message\":\"%s\"}",
             why && why->check[0] ? why->check : "refused");
}

static const char *const settings[] = {"public_key", "platform_serial", "next_public_key", "next_platform_serial", "apiv3_key",
                                       "mch_private_key", "mch_serial",
                                       "notify_url", "api_base", NULL};

static const paychan_plugin plugin = {
    .abi = PAYCHAN_ABI,
    .name = "wechatpay",
    .title = "微信支付 WeChat Pay",
    .open = open_wechatpay,
    .close = close_wechatpay,
    .verify_notification = verify_wechatpay,
    .reply = reply_wechatpay,
    .settings = settings,
    .create_order = create_wechatpay,
    .order_response = order_response_wechatpay,
    .query_order = query_wechatpay,
    .query_response = query_response_wechatpay,
    .refund = refund_wechatpay,
    .refund_response = refund_response_wechatpay,
    .parse_statement = statement_wechatpay,
};

EXPORT const paychan_plugin *bandbill_paychan(const paychan_host *host)
{
    if (!host || host->abi != PAYCHAN_ABI) return NULL;
    H = host;
    return &plugin;
}
