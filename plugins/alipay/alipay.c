/* alipay.c - the Alipay channel: asynchronous trade notifications
 * (trade_status_sync), signed RSA2 = SHA256withRSA by Alipay.
 *
 * The string Alipay signs: every parameter of the form except `sign` and
 * `sign_type`, and except those with an empty value, sorted by name in
 * byte order, as name=value joined with '&', values URL-decoded exactly
 * once and never re-encoded. It is checked with Alipay's public key, not
 * the app's own.
 *
 * Pay links (alipay.trade.page.pay) are made offline: the request's
 * parameters signed with the app's private key, where only `sign` itself
 * and empty values are left out of the signed string.
 *
 * Settings: public_key (Alipay's public key, a PEM file; required);
 * app_id, app_private_key (a PEM file), gateway (default Alipay's) and
 * notify_url, return_url for pay links. */
#include <ctype.h>
#include <stddef.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paychan.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_PARAMS 64

static const paychan_host *H;

typedef struct alipay {
    char *pubkey;
    size_t pubkey_len;
    char *privkey; /* NULL: no pay links */
    size_t privkey_len;
    char app_id[40];
    char merchant_id[40];
    char gateway[256];
    char notify_url[512];
    char return_url[512];
} alipay;

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

static void close_alipay(void *handle)
{
    alipay *a = handle;
    if (!a) return;
    H->free(a->pubkey);
    H->free(a->privkey);
    H->free(a);
}

static int open_alipay(const paychan_settings *s, void **handle, paychan_error *err)
{
    const char *path = setting(s, "public_key");
    if (!path || !path[0]) return fail(err, "settings", "public_key", 500, "Alipay's public key (a PEM file) is required");
    alipay *a = H->alloc(sizeof *a);
    if (!a) return fail(err, "settings", NULL, 500, "out of memory");
    memset(a, 0, sizeof *a);
    char why[200];
    a->pubkey = H->read_file(path, &a->pubkey_len, why, sizeof why);
    if (!a->pubkey) {
        H->free(a);
        return fail(err, "settings", "public_key", 500, why);
    }
    static const struct {
        const char *key;
        size_t off, size;
    } text[] = {{"app_id", offsetof(alipay, app_id), sizeof a->app_id},
                {"merchant_id", offsetof(alipay, merchant_id), sizeof a->merchant_id},
                {"gateway", offsetof(alipay, gateway), sizeof a->gateway},
                {"notify_url", offsetof(alipay, notify_url), sizeof a->notify_url},
                {"return_url", offsetof(alipay, return_url), sizeof a->return_url}};
    snprintf(a->gateway, sizeof a->gateway, "https://openapi.alipay.com/gateway.do");
    for (size_t i = 0; i < sizeof text / sizeof *text; i++) {
        const char *v = setting(s, text[i].key);
        if (!v) continue;
        if (strlen(v) >= text[i].size) {
            close_alipay(a);
            return fail(err, "settings", text[i].key, 500, "too long");
        }
        memcpy((char *)a + text[i].off, v, strlen(v) + 1);
    }
    const char *priv = setting(s, "app_private_key");
    if (priv && priv[0] && !(a->privkey = H->read_file(priv, &a->privkey_len, why, sizeof why))) {
        close_alipay(a);
        return fail(err, "settings", "app_private_key", 500, why);
    }
    if (a->privkey && !a->app_id[0]) {
        close_alipay(a);
        return fail(err, "settings", "app_id", 500, "pay links need the app id");
    }
    *handle = a;
    return 0;
}

/* ------------------------------------------------------------- the form */

typedef struct param {
    char *key, *value; /* decoded, NUL-terminated, inside the decoded copy */
} param;

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes application/x-www-form-urlencoded text in place ('+' is a space);
 * -1 on a broken %-escape. */
static int url_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '+') {
            *w++ = ' ';
        } else if (*r == '%') {
            int hi = hexval((unsigned char)r[1]), lo = hi < 0 ? -1 : hexval((unsigned char)r[2]);
            if (hi < 0 || lo < 0) return -1;
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    return 0;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const param *)a)->key, ((const param *)b)->key);
}

static const char *get(const param *p, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(p[i].key, key)) return p[i].value;
    return NULL;
}

static int copy(char *dst, size_t cap, const char *src, const char *field, paychan_error *err)
{
    if (!src) src = "";
    if (strlen(src) >= cap) return fail(err, "format", field, 400, "the value is too long");
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int verify_alipay(void *handle, const paychan_request *req, int64_t now, paychan_notice *out, paychan_error *err)
{
    (void)now; /* Alipay notifications carry no replay window: duplicates are the core's unique key */
    alipay *a = handle;
    memset(out, 0, sizeof *out);
    char *text = H->alloc(req->body_len + 1);
    if (!text) return fail(err, "format", NULL, 500, "out of memory");
    memcpy(text, req->body, req->body_len);
    text[req->body_len] = 0;
    if (strlen(text) != req->body_len) {
        H->free(text);
        return fail(err, "format", NULL, 400, "the body holds a NUL byte");
    }
    param p[MAX_PARAMS];
    int n = 0, rc = 0;
    for (char *save = NULL, *pair = strtok_r(text, "&", &save); pair && !rc; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq) {
            rc = fail(err, "format", pair, 400, "a form parameter without '='");
            break;
        }
        *eq = 0;
        if (n == MAX_PARAMS) rc = fail(err, "format", NULL, 400, "more than 64 parameters");
        else if (url_decode(pair) || url_decode(eq + 1)) rc = fail(err, "format", pair, 400, "a broken %-escape");
        else if (get(p, n, pair)) rc = fail(err, "format", pair, 400, "a parameter given twice");
        else p[n++] = (param){pair, eq + 1};
    }
    const char *sign = rc ? NULL : get(p, n, "sign");
    const char *sign_type = rc ? NULL : get(p, n, "sign_type");
    if (!rc && (!sign || !sign[0])) rc = fail(err, "signature", "sign", 400, "no signature");
    if (!rc && sign_type && strcmp(sign_type, "RSA2"))
        rc = fail(err, "signature", "sign_type", 400, "only RSA2 (SHA256withRSA) signatures are accepted");

    /* the canonical string */
    char *canon = NULL;
    size_t clen = 0;
    if (!rc) {
        qsort(p, (size_t)n, sizeof *p, by_key);
        size_t cap = req->body_len + 1;
        canon = H->alloc(cap);
        if (!canon) rc = fail(err, "format", NULL, 500, "out of memory");
        for (int i = 0; i < n && !rc; i++) {
            if (!strcmp(p[i].key, "sign") || !strcmp(p[i].key, "sign_type") || !p[i].value[0]) continue;
            size_t kl = strlen(p[i].key), vl = strlen(p[i].value);
            /* decoding only shortens, so the body's length bounds the string */
            if (clen + kl + vl + 2 > cap) {
                rc = fail(err, "format", NULL, 400, "the canonical string does not fit");
                break;
            }
            if (clen) canon[clen++] = '&';
            memcpy(canon + clen, p[i].key, kl);
            clen += kl;
            canon[clen++] = '=';
            memcpy(canon + clen, p[i].value, vl);
            clen += vl;
        }
    }
    if (!rc) {
        unsigned char sig[1024];
        size_t slen = 0;
        char why[200] = "";
        if (H->b64_decode(sign, strlen(sign), sig, sizeof sig, &slen))
            rc = fail(err, "signature", "sign", 400, "the signature is not base64");
        else {
            int v = H->rsa_sha256_verify(a->pubkey, a->pubkey_len, canon, clen, sig, slen, why, sizeof why);
            if (v < 0) rc = fail(err, "settings", "public_key", 500, why);
            else if (v == 0)
                rc = fail(err, "signature", "sign", 400,
                          "the signature does not match the parameters with Alipay's public key");
        }
    }
    H->free(canon);

    /* decode what was verified */
    if (!rc) {
        static const char *const required[] = {"out_trade_no", "trade_no", "total_amount", "trade_status"};
        for (size_t i = 0; i < sizeof required / sizeof *required && !rc; i++) {
            const char *v = get(p, n, required[i]);
            if (!v || !v[0]) rc = fail(err, "format", required[i], 400, "a required field is missing");
        }
    }
    if (!rc && H->yuan_to_fen(get(p, n, "total_amount"), &out->amount))
        rc = fail(err, "format", "total_amount", 400, "not an amount in yuan with at most two decimals");
    if (!rc) {
        const char *st = get(p, n, "trade_status");
        out->state = !strcmp(st, "TRADE_SUCCESS") || !strcmp(st, "TRADE_FINISHED") ? PAYCHAN_PAID : PAYCHAN_NOT_PAID;
        rc = copy(out->status, sizeof out->status, st, "trade_status", err);
    }
    if (!rc) rc = copy(out->event, sizeof out->event, get(p, n, "notify_type"), "notify_type", err);
    if (!rc) rc = copy(out->out_trade_no, sizeof out->out_trade_no, get(p, n, "out_trade_no"), "out_trade_no", err);
    if (!rc) rc = copy(out->channel_txn_id, sizeof out->channel_txn_id, get(p, n, "trade_no"), "trade_no", err);
    if (!rc) rc = copy(out->app_id, sizeof out->app_id, get(p, n, "app_id"), "app_id", err);
    if (!rc) rc = copy(out->merchant_id, sizeof out->merchant_id, get(p, n, "seller_id"), "seller_id", err);
    if (!rc) rc = copy(out->paid_at, sizeof out->paid_at, get(p, n, "gmt_payment"), "gmt_payment", err);
    if (!rc) memcpy(out->currency, "CNY", 4);
    if (!rc) {
        paychan_kv kv[MAX_PARAMS];
        size_t k = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(p[i].key, "sign")) kv[k++] = (paychan_kv){p[i].key, p[i].value};
        out->fields_json = H->json_object_of(kv, k);
        if (!out->fields_json) rc = fail(err, "format", NULL, 500, "out of memory");
    }
    H->free(text);
    return rc;
}

/* ------------------------------------------------------------ pay links */

/* application/x-www-form-urlencoded, as a URL's query wants it. */
static int url_encode(char *out, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if (*len + 4 > cap) return -1;
        if (plain) {
            out[(*len)++] = (char)*p;
        } else {
            out[(*len)++] = '%';
            out[(*len)++] = hex[*p >> 4];
            out[(*len)++] = hex[*p & 15];
        }
    }
    out[*len] = 0;
    return 0;
}

/* A JSON string's content: the subject is ours, but may hold quotes. */
static void json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = 0;
}

static void beijing_time(int64_t t, char out[20])
{
    time_t bj = (time_t)(t + 8 * 3600); /* Alipay's timestamps are Beijing time */
    struct tm tm;
    gmtime_r(&bj, &tm);
    strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

static int create_alipay(void *handle, const paychan_order *o, int64_t now, paychan_link *out, paychan_error *err)
{
    alipay *a = handle;
    memset(out, 0, sizeof *out);
    if (!a->privkey) return fail(err, "settings", "app_private_key", 500, "pay links need the app's private key");
    char ts[20], expire[20], subject[400], biz[1024];
    beijing_time(now, ts);
    beijing_time(o->expires, expire);
    json_escape(subject, sizeof subject, o->subject ? o->subject : o->out_trade_no);
    snprintf(biz, sizeof biz,
             "{\"out_trade_no\":\"%s\",\"total_amount\":\"%lld.%02lld\",\"subject\":\"%s\","
             "\"product_code\":\"FAST_INSTANT_TRADE_PAY\",\"time_expire\":\"%s\"}",
             o->out_trade_no, (long long)(o->amount / 100), (long long)(o->amount % 100), subject, expire);
    const char *notify = o->notify_url && o->notify_url[0] ? o->notify_url : a->notify_url;
    /* sorted by name: the signed string and the query in one order */
    const char *p[][2] = {{"app_id", a->app_id},   {"biz_content", biz},  {"charset", "utf-8"},
                          {"format", "JSON"},      {"method", "alipay.trade.page.pay"},
                          {"notify_url", notify},  {"return_url", a->return_url},
                          {"sign_type", "RSA2"},   {"timestamp", ts},     {"version", "1.0"}};
    enum { NP = sizeof p / sizeof *p };
    char canon[3072];
    size_t cl = 0;
    for (int i = 0; i < NP; i++) {
        if (!p[i][1][0]) continue;
        int n = snprintf(canon + cl, sizeof canon - cl, "%s%s=%s", cl ? "&" : "", p[i][0], p[i][1]);
        if (n < 0 || (size_t)n >= sizeof canon - cl) return fail(err, "format", NULL, 500, "the order does not fit");
        cl += (size_t)n;
    }
    char sig[1024], why[200];
    if (H->rsa_sha256_sign(a->privkey, a->privkey_len, canon, cl, sig, sizeof sig, why, sizeof why))
        return fail(err, "settings", "app_private_key", 500, why);
    size_t ul = 0;
    int rc = snprintf(out->url, sizeof out->url, "%s?", a->gateway) >= (int)sizeof out->url;
    ul = strlen(out->url);
    for (int i = 0; i < NP + 1 && !rc; i++) {
        const char *k = i < NP ? p[i][0] : "sign", *v = i < NP ? p[i][1] : sig;
        if (!v[0]) continue;
        if (ul + strlen(k) + 3 >= sizeof out->url) rc = -1;
        else ul += (size_t)snprintf(out->url + ul, sizeof out->url - ul, "%s%s=", out->url[ul - 1] == '?' ? "" : "&", k);
        if (!rc) rc = url_encode(out->url, sizeof out->url, &ul, v);
    }
    if (rc) return fail(err, "format", NULL, 500, "the pay link does not fit");
    return 0;
}

/* ---------------------------------------------------------------- queries */

/* The request parameters, signed, as a form body (sorted by name). */
static int signed_form(alipay *a, const char *method, const char *biz, int64_t now, char *out, size_t cap, size_t *len,
                       paychan_error *err)
{
    char ts[20];
    beijing_time(now, ts);
    const char *p[][2] = {{"app_id", a->app_id}, {"biz_content", biz},  {"charset", "utf-8"}, {"format", "JSON"},
                          {"method", method},    {"sign_type", "RSA2"}, {"timestamp", ts},    {"version", "1.0"}};
    enum { NP = sizeof p / sizeof *p };
    char canon[2048];
    size_t cl = 0;
    for (int i = 0; i < NP; i++) {
        int n = snprintf(canon + cl, sizeof canon - cl, "%s%s=%s", cl ? "&" : "", p[i][0], p[i][1]);
        if (n < 0 || (size_t)n >= sizeof canon - cl) return fail(err, "format", NULL, 500, "the request does not fit");
        cl += (size_t)n;
    }
    char sig[1024], why[200];
    if (H->rsa_sha256_sign(a->privkey, a->privkey_len, canon, cl, sig, sizeof sig, why, sizeof why))
        return fail(err, "settings", "app_private_key", 500, why);
    size_t ol = 0;
    out[0] = 0;
    for (int i = 0; i < NP + 1; i++) {
        const char *k = i < NP ? p[i][0] : "sign", *v = i < NP ? p[i][1] : sig;
        int n = snprintf(out + ol, cap - ol, "%s%s=", ol ? "&" : "", k);
        if (n < 0 || (size_t)n >= cap - ol) return fail(err, "format", NULL, 500, "the request does not fit");
        ol += (size_t)n;
        if (url_encode(out, cap, &ol, v)) return fail(err, "format", NULL, 500, "the request does not fit");
    }
    *len = ol;
    return 0;
}

static int query_alipay(void *handle, const char *out_trade_no, int64_t now, paychan_http *out, paychan_error *err)
{
    alipay *a = handle;
    memset(out, 0, sizeof *out);
    if (!a->privkey) return fail(err, "settings", "app_private_key", 500, "queries need the app's private key");
    if (strspn(out_trade_no, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(out_trade_no))
        return fail(err, "format", "out_trade_no", 400, "not an order number of ours");
    char biz[160], form[4096];
    snprintf(biz, sizeof biz, "{\"out_trade_no\":\"%s\"}", out_trade_no);
    size_t fl;
    if (signed_form(a, "alipay.trade.query", biz, now, form, sizeof form, &fl, err)) return -1;
    snprintf(out->method, sizeof out->method, "POST");
    snprintf(out->url, sizeof out->url, "%s", a->gateway);
    snprintf(out->headers, sizeof out->headers, "Content-Type: application/x-www-form-urlencoded;charset=utf-8\n");
    if (!(out->body = H->alloc(fl))) return fail(err, "format", NULL, 500, "out of memory");
    memcpy(out->body, form, fl);
    out->body_len = fl;
    return PAYCHAN_HTTP;
}

/* The exact text of the JSON object that follows "key": in body - what
 * Alipay signs in an answer. NULL when it is not there. */
static const char *object_text(const char *body, size_t len, const char *key, size_t *olen)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = body, *end = body + len;
    size_t pl = strlen(pat);
    for (; p + pl <= end && memcmp(p, pat, pl); p++) {}
    if (p + pl > end) return NULL;
    p += pl;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    if (p >= end || *p != '{') return NULL;
    const char *start = p;
    int depth = 0, in_str = 0;
    for (; p < end; p++) {
        if (in_str) {
            if (*p == '\\') p++;
            else if (*p == '"') in_str = 0;
        } else if (*p == '"') {
            in_str = 1;
        } else if (*p == '{') {
            depth++;
        } else if (*p == '}' && --depth == 0) {
            *olen = (size_t)(p + 1 - start);
            return start;
        }
    }
    return NULL;
}

static int query_response_alipay(void *handle, const char *out_trade_no, int status, const paychan_request *resp,
                                 int64_t now, paychan_notice *out, paychan_error *err)
{
    (void)now;
    alipay *a = handle;
    memset(out, 0, sizeof *out);
    if (status != 200) return fail(err, "query", "status", 502, "Alipay did not answer 200");
    size_t ol = 0;
    const char *obj = object_text(resp->body, resp->body_len, "alipay_trade_query_response", &ol);
    char why[200];
    void *doc = H->json_parse(resp->body, resp->body_len, why, sizeof why);
    const char *sign = doc ? H->json_str(doc, "sign") : NULL;
    int rc = 0;
    if (!obj || !doc) rc = fail(err, "format", "alipay_trade_query_response", 502, "not an answer to alipay.trade.query");
    else if (!sign) rc = fail(err, "signature", "sign", 502, "the answer is not signed");
    if (!rc) {
        unsigned char sig[1024];
        size_t sl = 0;
        if (H->b64_decode(sign, strlen(sign), sig, sizeof sig, &sl)) rc = fail(err, "signature", "sign", 502, "not base64");
        else {
            int v = H->rsa_sha256_verify(a->pubkey, a->pubkey_len, obj, ol, sig, sl, why, sizeof why);
            if (v < 0) rc = fail(err, "settings", "public_key", 500, why);
            else if (!v) rc = fail(err, "signature", "sign", 502, "the answer's signature does not match with Alipay's public key");
        }
    }
    void *r = !rc ? H->json_parse(obj, ol, why, sizeof why) : NULL;
    if (!rc && !r) rc = fail(err, "format", "alipay_trade_query_response", 502, why);
    if (!rc) {
        const char *code = H->json_str(r, "code"), *sub = H->json_str(r, "sub_code");
        const char *st = H->json_str(r, "trade_status");
        snprintf(out->event, sizeof out->event, "query");
        rc = copy(out->out_trade_no, sizeof out->out_trade_no, out_trade_no, "out_trade_no", err);
        if (!rc && code && !strcmp(code, "40004") && sub && !strcmp(sub, "ACQ.TRADE_NOT_EXIST")) {
            out->state = PAYCHAN_NOT_PAID; /* never opened by the buyer */
            snprintf(out->status, sizeof out->status, "TRADE_NOT_EXIST");
        } else if (!rc && (!code || strcmp(code, "10000") || !st)) {
            char m[200];
            snprintf(m, sizeof m, "Alipay answered code %s %s", code ? code : "?", sub ? sub : "");
            rc = fail(err, "query", "code", 502, m);
        } else if (!rc) {
            const char *got = H->json_str(r, "out_trade_no");
            if (!got || strcmp(got, out_trade_no)) rc = fail(err, "query", "out_trade_no", 502, "the answer is about another order");
            out->state = !strcmp(st, "TRADE_SUCCESS") || !strcmp(st, "TRADE_FINISHED") ? PAYCHAN_PAID : PAYCHAN_NOT_PAID;
            if (!rc) rc = copy(out->status, sizeof out->status, st, "trade_status", err);
            if (!rc && out->state == PAYCHAN_PAID) {
                const char *amt = H->json_str(r, "total_amount"), *tn = H->json_str(r, "trade_no");
                if (!amt || H->yuan_to_fen(amt, &out->amount)) rc = fail(err, "format", "total_amount", 502, "not an amount");
                else if (!tn) rc = fail(err, "format", "trade_no", 502, "a required field is missing");
                else rc = copy(out->channel_txn_id, sizeof out->channel_txn_id, tn, "trade_no", err);
                /* the query's answer names no app or seller: ours, we asked with our key */
                if (!rc) rc = copy(out->app_id, sizeof out->app_id, a->app_id, "app_id", err);
                if (!rc) rc = copy(out->merchant_id, sizeof out->merchant_id, a->merchant_id, "merchant_id", err);
                const char *buyer = H->json_str(r, "send_pay_date");
                if (!rc) rc = copy(out->paid_at, sizeof out->paid_at, buyer, "send_pay_date", err);
                memcpy(out->currency, "CNY", 4);
            }
        }
        if (!rc && !(out->fields_json = H->json_text(r))) rc = fail(err, "format", NULL, 500, "out of memory");
    }
    H->json_free(r);
    H->json_free(doc);
    return rc;
}

/* ---------------------------------------------------------------- refunds */

static int refund_alipay(void *handle, const paychan_refund *r, int64_t now, paychan_http *out, paychan_error *err)
{
    alipay *a = handle;
    memset(out, 0, sizeof *out);
    if (!a->privkey) return fail(err, "settings", "app_private_key", 500, "refunds need the app's private key");
    char reason[160], biz[512], form[4096];
    json_escape(reason, sizeof reason, r->reason ? r->reason : "");
    snprintf(biz, sizeof biz, "{\"trade_no\":\"%s\",\"refund_amount\":\"%lld.%02lld\",\"out_request_no\":\"%s\","
                              "\"refund_reason\":\"%s\"}",
             r->channel_txn_id, (long long)(r->amount / 100), (long long)(r->amount % 100), r->out_refund_no, reason);
    size_t fl;
    if (signed_form(a, "alipay.trade.refund", biz, now, form, sizeof form, &fl, err)) return -1;
    snprintf(out->method, sizeof out->method, "POST");
    snprintf(out->url, sizeof out->url, "%s", a->gateway);
    snprintf(out->headers, sizeof out->headers, "Content-Type: application/x-www-form-urlencoded;charset=utf-8\n");
    if (!(out->body = H->alloc(fl))) return fail(err, "format", NULL, 500, "out of memory");
    memcpy(out->body, form, fl);
    out->body_len = fl;
    return PAYCHAN_HTTP;
}

/* An answer of Alipay's gateway: the object named `key`, its signature
 * checked over its exact text; parsed into *obj (json_free it). */
static int signed_answer(alipay *a, const paychan_request *resp, const char *key, void **obj, paychan_error *err)
{
    size_t ol = 0;
    const char *text = object_text(resp->body, resp->body_len, key, &ol);
    char why[200];
    void *doc = H->json_parse(resp->body, resp->body_len, why, sizeof why);
    const char *sign = doc ? H->json_str(doc, "sign") : NULL;
    int rc = 0;
    if (!text || !doc) rc = fail(err, "format", key, 502, "not the answer expected");
    else if (!sign) rc = fail(err, "signature", "sign", 502, "the answer is not signed");
    if (!rc) {
        unsigned char sig[1024];
        size_t sl = 0;
        if (H->b64_decode(sign, strlen(sign), sig, sizeof sig, &sl)) rc = fail(err, "signature", "sign", 502, "not base64");
        else {
            int v = H->rsa_sha256_verify(a->pubkey, a->pubkey_len, text, ol, sig, sl, why, sizeof why);
            if (v < 0) rc = fail(err, "settings", "public_key", 500, why);
            else if (!v) rc = fail(err, "signature", "sign", 502, "the answer's signature does not match with Alipay's public key");
        }
    }
    H->json_free(doc);
    *obj = !rc ? H->json_parse(text, ol, why, sizeof why) : NULL;
    if (!rc && !*obj) rc = fail(err, "format", key, 502, why);
    return rc;
}

static int refund_response_alipay(void *handle, const paychan_refund *r, int status, const paychan_request *resp,
                                  int64_t now, paychan_refund_result *out, paychan_error *err)
{
    (void)now;
    alipay *a = handle;
    memset(out, 0, sizeof *out);
    if (status != 200) return fail(err, "refund", "status", 502, "Alipay did not answer 200");
    void *obj = NULL;
    int rc = signed_answer(a, resp, "alipay_trade_refund_response", &obj, err);
    if (!rc) {
        const char *code = H->json_str(obj, "code"), *sub = H->json_str(obj, "sub_code");
        const char *tn = H->json_str(obj, "trade_no");
        if (!code || strcmp(code, "10000")) {
            char m[200];
            snprintf(m, sizeof m, "Alipay refused the refund: code %s %s", code ? code : "?", sub ? sub : "");
            rc = fail(err, "refund", "code", 502, m);
        } else if (!tn || strcmp(tn, r->channel_txn_id)) {
            rc = fail(err, "refund", "trade_no", 502, "the answer is about another trade");
        }
        /* Alipay's refund has no id of its own: ours, with the trade */
        if (!rc) rc = copy(out->refund_id, sizeof out->refund_id, r->out_refund_no, "out_request_no", err);
        if (!rc) rc = copy(out->status, sizeof out->status, "10000", "code", err);
    }
    H->json_free(obj);
    return rc;
}

/* ------------------------------------------------------------- statements */

/* The trade statement (业务明细) as the merchant platform gives it, in
 * GBK: comment lines starting with '#', a header line, one line a trade or
 * refund (业务类型 交易 / 退款), values padded with spaces and tabs.
 * Columns are found by their names. */
typedef struct ali_bill {
    int (*row)(void *arg, const paychan_statement_row *r);
    void *arg;
    int col[6]; /* trade no, out_trade_no, kind, finished, amount, refund request no */
    int have_header, done, line, failed;
    paychan_error *err;
} ali_bill;

static void trim_copy(char *dst, size_t cap, const char *src)
{
    while (*src == ' ' || *src == '\t') src++;
    size_t n = strlen(src);
    while (n && (src[n - 1] == ' ' || src[n - 1] == '\t' || src[n - 1] == '\r')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static int ali_row(void *arg, const char *const *f, size_t n)
{
    ali_bill *b = arg;
    b->line++;
    if (b->done || n == 0) return 0;
    char first[64];
    trim_copy(first, sizeof first, f[0]);
    if (first[0] == '#') return 0;
    if (!b->have_header) {
        static const char *const names[6] = {"支付宝交易号", "商户订单号", "业务类型", "完成时间", "订单金额（元）", "退款批次号/请求号"};
        for (int k = 0; k < 6; k++) {
            b->col[k] = -1;
            for (size_t i = 0; i < n; i++) {
                char h[64];
                trim_copy(h, sizeof h, f[i]);
                if (!strcmp(h, names[k])) b->col[k] = (int)i;
            }
        }
        for (int k = 0; k < 5; k++)
            if (b->col[k] < 0) {
                char m[120];
                snprintf(m, sizeof m, "line %d: no column %s: not an Alipay trade statement", b->line, names[k]);
                b->failed = fail(b->err, "format", names[k], 400, m);
                return 1;
            }
        b->have_header = 1;
        return 0;
    }
    char kind[32], amount[40];
    trim_copy(kind, sizeof kind, (size_t)b->col[2] < n ? f[b->col[2]] : "");
    paychan_statement_row r;
    memset(&r, 0, sizeof r);
    r.refund = !strcmp(kind, "退款");
    if (!r.refund && strcmp(kind, "交易")) return 0;
    trim_copy(amount, sizeof amount, (size_t)b->col[4] < n ? f[b->col[4]] : "");
    const char *a = amount[0] == '-' ? amount + 1 : amount; /* refunds are written negative */
    if (H->yuan_to_fen(a, &r.amount) || r.amount <= 0) {
        char m[160];
        snprintf(m, sizeof m, "line %d: the amount '%.40s' is not yuan with two decimals", b->line, amount);
        b->failed = fail(b->err, "format", "订单金额（元）", 400, m);
        return 1;
    }
    trim_copy(r.channel_txn_id, sizeof r.channel_txn_id, (size_t)b->col[0] < n ? f[b->col[0]] : "");
    trim_copy(r.out_trade_no, sizeof r.out_trade_no, (size_t)b->col[1] < n ? f[b->col[1]] : "");
    trim_copy(r.at, sizeof r.at, (size_t)b->col[3] < n ? f[b->col[3]] : "");
    if (r.refund && b->col[5] >= 0 && (size_t)b->col[5] < n) trim_copy(r.refund_id, sizeof r.refund_id, f[b->col[5]]);
    if (b->row(b->arg, &r)) {
        b->done = 1;
        return 1;
    }
    return 0;
}

static int statement_alipay(void *handle, const char *text, size_t len,
                            int (*row)(void *arg, const paychan_statement_row *r), void *arg, paychan_error *err)
{
    (void)handle;
    ali_bill b = {.row = row, .arg = arg, .err = err};
    char why[200];
    if (H->csv_rows(text, len, ali_row, &b, why, sizeof why)) return fail(err, "format", NULL, 400, why);
    if (b.failed) return -1;
    if (!b.have_header) return fail(err, "format", NULL, 400, "an empty statement");
    return 0;
}

/* Alipay reads the body only: `success` ends its retries, anything else
 * makes it try again later. */
static void reply_alipay(void *handle, int ok, const paychan_error *why, paychan_reply *out)
{
    (void)handle;
    memset(out, 0, sizeof *out);
    out->status = ok ? 200 : (why && why->reply_status ? why->reply_status : 400);
    snprintf(out->content_type, sizeof out->content_type, "text/plain; charset=utf-8");
    snprintf(out->body, sizeof out->body, "%s", ok ? "success" : "fail");
}

static const char *const settings[] = {"public_key", "app_private_key", "gateway", "notify_url", "return_url", NULL};

static const paychan_plugin plugin = {
    .abi = PAYCHAN_ABI,
    .name = "alipay",
    .title = "支付宝 Alipay",
    .open = open_alipay,
    .close = close_alipay,
    .verify_notification = verify_alipay,
    .reply = reply_alipay,
    .settings = settings,
    .create_order = create_alipay,
    .query_order = query_alipay,
    .query_response = query_response_alipay,
    .refund = refund_alipay,
    .refund_response = refund_response_alipay,
    .parse_statement = statement_alipay,
};

EXPORT const paychan_plugin *bandbill_paychan(const paychan_host *host)
{
    if (!host || host->abi != PAYCHAN_ABI) return NULL;
    H = host;
    return &plugin;
}
