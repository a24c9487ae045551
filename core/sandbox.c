/* sandbox.c - Alipay and WeChat Pay played offline (see sandbox.h). It
 * signs with the channel's own keys and checks bandbill's requests with
 * bandbill's public keys, so the real verification code runs end to end. */
#include "sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "channels.h"
#include "crypto.h"
#include "httpc.h"
#include "json.h"
#include "money.h"

#define APP_ID "2021000000000001"
#define SELLER_ID "2088000000000001"
#define WX_APPID "wxd930ea5d5a258f4f"
#define WX_MCHID "1900000001"

typedef struct sandbox {
    char dir[512], base[300];
    char *ali_priv, *app_pub, *wx_priv, *mch_pub;
    size_t ali_priv_len, app_pub_len, wx_priv_len, mch_pub_len;
    char apiv3[33];
    struct event_base *ev;
    int64_t seq;
} sandbox;

static const paychan_host *H;

/* ------------------------------------------------------------------ keys */

static int write_key(const char *dir, const char *name, EVP_PKEY *k, int private_key, err *e)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
    if (private_key) fchmod(fileno(f), 0600);
    int ok = private_key ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, k);
    if (fclose(f) || ok != 1) return err_set(e, ERR_IO, "cannot write %s", path);
    return 0;
}

/* A pair: the private half to `priv`, the public half to `pub`. */
static int make_pair(const char *dir, const char *priv, const char *pub, err *e)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, priv);
    if (access(path, R_OK) == 0) return 0; /* made before: keep it */
    EVP_PKEY *k = EVP_RSA_gen(2048);
    if (!k) return err_set(e, ERR_INTERNAL, "cannot make an RSA key");
    int rc = write_key(dir, priv, k, 1, e);
    if (!rc) rc = write_key(dir, pub, k, 0, e);
    EVP_PKEY_free(k);
    return rc;
}

int sandbox_init(const char *dir, const char *listen, const char *daemon, err *e)
{
    if (mkdir(dir, 0700) && errno != EEXIST) return err_set(e, ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    /* each side's pair: the channel's own (it signs), bandbill's (it signs requests) */
    int rc = make_pair(dir, "alipay_private.pem", "alipay_public.pem", e);
    if (!rc) rc = make_pair(dir, "app_private.pem", "app_public.pem", e);
    if (!rc) rc = make_pair(dir, "wechatpay_platform_private.pem", "wechatpay_platform_public.pem", e);
    if (!rc) rc = make_pair(dir, "wechatpay_mch_private.pem", "wechatpay_mch_public.pem", e);
    char keyfile[700], apiv3[33];
    snprintf(keyfile, sizeof keyfile, "%s/apiv3.key", dir);
    FILE *f = rc ? NULL : fopen(keyfile, "r");
    if (!rc && !(f && fgets(apiv3, sizeof apiv3, f) && strlen(apiv3) == 32)) {
        static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        unsigned char r[32];
        if (crypto_random(r, sizeof r)) rc = err_set(e, ERR_INTERNAL, "no randomness");
        for (int i = 0; i < 32; i++) apiv3[i] = chars[r[i] % 62];
        apiv3[32] = 0;
        FILE *w = rc ? NULL : fopen(keyfile, "w");
        if (!rc && (!w || fchmod(fileno(w), 0600) || fputs(apiv3, w) < 0)) rc = err_set(e, ERR_IO, "cannot write %s", keyfile);
        if (w) fclose(w);
    }
    if (f) fclose(f);
    if (rc) return rc;
    char ini[700];
    snprintf(ini, sizeof ini, "%s/channels.ini", dir);
    FILE *o = fopen(ini, "w");
    if (!o) return err_set(e, ERR_IO, "cannot write %s: %s", ini, strerror(errno));
    fchmod(fileno(o), 0600); /* it holds the APIv3 key */
    fprintf(o,
            "; made by `bandbill sandbox`: both channels played offline at http://%s\n"
            "[channel.alipay]\npublic_key = %s/alipay_public.pem\napp_id = " APP_ID "\nmerchant_id = " SELLER_ID "\n"
            "app_private_key = %s/app_private.pem\nnotify_url = %s/api/v1/notify/alipay\ngateway = http://%s/alipay/gateway.do\n\n"
            "[channel.wechatpay]\npublic_key = %s/wechatpay_platform_public.pem\napiv3_key = %s\nplatform_serial = SANDBOX\n"
            "app_id = " WX_APPID "\nmerchant_id = " WX_MCHID "\nmch_private_key = %s/wechatpay_mch_private.pem\n"
            "mch_serial = SANDBOXMCH\nnotify_url = %s/api/v1/notify/wechatpay\napi_base = http://%s/wechat\n",
            listen, dir, dir, daemon, listen, dir, apiv3, dir, daemon, listen);
    if (fclose(o)) return err_set(e, ERR_IO, "cannot write %s", ini);
    return 0;
}

/* --------------------------------------------------------------- serving */

static void page(struct evhttp_request *r, int status, const char *title, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(r, 500, NULL);
        return;
    }
    evbuffer_add_printf(b,
                        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>%s</title>"
                        "<body style=\"font-family:sans-serif;max-width:36em;margin:3em auto\"><h1>%s</h1>%s"
                        "<p style=\"color:#888\">bandbill sandbox — no real money moves.</p></body></html>",
                        title, title, body);
    evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type", "text/html; charset=utf-8");
    evhttp_send_reply(r, status, NULL, b);
    evbuffer_free(b);
}

static void json_reply(sandbox *sb, struct evhttp_request *r, int status, const char *json)
{
    /* signed as WeChat Pay signs its answers: timestamp, nonce, body */
    char ts[24], nonce[40], msg[4096], sig[1024], why[200];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    snprintf(nonce, sizeof nonce, "sandbox%lld", (long long)++sb->seq);
    int n = snprintf(msg, sizeof msg, "%s\n%s\n%s\n", ts, nonce, json);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);
    if (n > 0 && (size_t)n < sizeof msg &&
        !H->rsa_sha256_sign(sb->wx_priv, sb->wx_priv_len, msg, (size_t)n, sig, sizeof sig, why, sizeof why)) {
        evhttp_add_header(h, "Wechatpay-Timestamp", ts);
        evhttp_add_header(h, "Wechatpay-Nonce", nonce);
        evhttp_add_header(h, "Wechatpay-Signature", sig);
        evhttp_add_header(h, "Wechatpay-Serial", "SANDBOX");
    }
    evhttp_add_header(h, "Content-Type", "application/json");
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add(b, json, strlen(json));
    evhttp_send_reply(r, status, NULL, b);
    if (b) evbuffer_free(b);
}

static char *body_of(struct evhttp_request *r, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    *len = evbuffer_get_length(in);
    char *s = malloc(*len + 1);
    if (!s) return NULL;
    evbuffer_copyout(in, s, *len);
    s[*len] = 0;
    return s;
}

/* The page a pay link opens: bandbill's request signature checked first. */
static void alipay_page(sandbox *sb, struct evhttp_request *r)
{
    const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r));
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (!qs || evhttp_parse_query_str(qs, &q)) {
        page(r, 400, "支付宝 sandbox", "<p>Not a pay link.</p>");
        return;
    }
    /* the signed string: every parameter but sign, non-empty, sorted */
    const char *keys[32], *vals[32], *sign = NULL;
    int n = 0;
    for (struct evkeyval *kv = q.tqh_first; kv && n < 32; kv = kv->next.tqe_next) {
        if (!strcmp(kv->key, "sign")) sign = kv->value;
        else if (kv->value[0]) keys[n] = kv->key, vals[n++] = kv->value;
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(keys[j], keys[i]) < 0) {
                const char *k = keys[i], *v = vals[i];
                keys[i] = keys[j], vals[i] = vals[j], keys[j] = k, vals[j] = v;
            }
    buf canon = {0};
    for (int i = 0; i < n; i++) buf_printf(&canon, "%s%s=%s", i ? "&" : "", keys[i], vals[i]);
    unsigned char sig[1024];
    size_t sl = 0;
    char why[200];
    int ok = sign && !H->b64_decode(sign, strlen(sign), sig, sizeof sig, &sl) &&
             H->rsa_sha256_verify(sb->app_pub, sb->app_pub_len, canon.data ? canon.data : "", canon.len, sig, sl, why,
                                  sizeof why) == 1;
    buf_free(&canon);
    const char *biz = evhttp_find_header(&q, "biz_content"), *notify = evhttp_find_header(&q, "notify_url");
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *b = NULL;
    err e;
    if (!ok || !biz || !notify || json_parse(biz, strlen(biz), &json_default_limits, &a, &b, &e)) {
        page(r, 400, "支付宝 sandbox", "<p>The pay link's signature does not check out with the app's public key.</p>");
    } else {
        const char *no = jv_get_str(b, "out_trade_no"), *amt = jv_get_str(b, "total_amount"), *subj = jv_get_str(b, "subject");
        char html[2048];
        snprintf(html, sizeof html,
                 "<p>%s</p><p style=\"font-size:2em\">¥ %s</p><p>订单 %s</p>"
                 "<form method=\"post\" action=\"/alipay/pay\"><input type=\"hidden\" name=\"out_trade_no\" value=\"%s\">"
                 "<input type=\"hidden\" name=\"total_amount\" value=\"%s\"><input type=\"hidden\" name=\"notify_url\" value=\"%s\">"
                 "<button id=\"pay\" style=\"font-size:1.5em\">确认付款 Pay</button></form>",
                 subj ? subj : "", amt ? amt : "?", no ? no : "?", no ? no : "", amt ? amt : "", notify);
        page(r, 200, "支付宝 sandbox", html);
    }
    jv_arena_free(&a);
    evhttp_clear_headers(&q);
}

typedef struct paid_ctx {
    struct evhttp_request *r;
    char title[64];
} paid_ctx;

static void on_notified(void *arg, int status, const paychan_kv *headers, size_t nh, const char *body, size_t len,
                        const char *error)
{
    (void)headers;
    (void)nh;
    paid_ctx *p = arg;
    char html[700];
    if (!status) snprintf(html, sizeof html, "<p id=\"result\">Paid, but bandbill did not answer: %s</p>", error);
    else
        snprintf(html, sizeof html, "<p id=\"result\">Paid. bandbill answered %d %.*s</p>", status, (int)(len > 200 ? 200 : len),
                 body);
    page(p->r, 200, p->title, html);
    free(p);
}

static int notify(sandbox *sb, struct evhttp_request *r, const char *title, const char *url, const char *headers,
                  const char *body, size_t len)
{
    paid_ctx *p = calloc(1, sizeof *p);
    err e;
    if (!p) return -1;
    p->r = r;
    snprintf(p->title, sizeof p->title, "%s", title);
    if (httpc_request(sb->ev, "POST", url, headers, body, len, 10, on_notified, p, &e)) {
        free(p);
        char html[600];
        snprintf(html, sizeof html, "<p>Cannot reach bandbill: %s</p>", e.msg);
        page(r, 502, title, html);
    }
    return 0;
}

static void alipay_pay(sandbox *sb, struct evhttp_request *r)
{
    size_t len;
    char *body = body_of(r, &len);
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (!body || evhttp_parse_query_str(body, &q)) {
        free(body);
        page(r, 400, "支付宝 sandbox", "<p>Bad form.</p>");
        return;
    }
    const char *no = evhttp_find_header(&q, "out_trade_no"), *amt = evhttp_find_header(&q, "total_amount");
    const char *url = evhttp_find_header(&q, "notify_url");
    char trade_no[40], now[24], notify_id[40];
    snprintf(trade_no, sizeof trade_no, "2026%010lld%014lld", (long long)time(NULL) % 10000000000LL, (long long)++sb->seq);
    time_t t = time(NULL) + 8 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(notify_id, sizeof notify_id, "sandbox%lld", (long long)sb->seq);
    /* Alipay's notification, keys in byte order for the signed string */
    const char *f[][2] = {{"app_id", APP_ID},          {"gmt_payment", now},          {"notify_id", notify_id},
                          {"notify_time", now},        {"notify_type", "trade_status_sync"},
                          {"out_trade_no", no ? no : ""}, {"seller_id", SELLER_ID},   {"total_amount", amt ? amt : ""},
                          {"trade_no", trade_no},      {"trade_status", "TRADE_SUCCESS"}};
    enum { NF = sizeof f / sizeof *f };
    buf canon = {0}, form = {0};
    for (int i = 0; i < NF; i++) buf_printf(&canon, "%s%s=%s", i ? "&" : "", f[i][0], f[i][1]);
    char sig[1024], why[200];
    int bad = !no || !amt || !url ||
              H->rsa_sha256_sign(sb->ali_priv, sb->ali_priv_len, canon.data, canon.len, sig, sizeof sig, why, sizeof why);
    for (int i = 0; i < NF + 2 && !bad; i++) {
        const char *k = i < NF ? f[i][0] : i == NF ? "sign" : "sign_type", *v = i < NF ? f[i][1] : i == NF ? sig : "RSA2";
        char *enc = evhttp_encode_uri(v);
        if (!enc) bad = 1;
        else buf_printf(&form, "%s%s=%s", i ? "&" : "", k, enc);
        free(enc);
    }
    if (bad) page(r, 400, "支付宝 sandbox", "<p>Cannot make the notification.</p>");
    else notify(sb, r, "支付宝 sandbox", url, "Content-Type: application/x-www-form-urlencoded; charset=utf-8\n", form.data, form.len);
    buf_free(&canon);
    buf_free(&form);
    evhttp_clear_headers(&q);
    free(body);
}

/* WeChat Pay's Native order API: bandbill's signature checked, a code_url
 * that opens the sandbox's pay page. */
static void wechat_native(sandbox *sb, struct evhttp_request *r)
{
    size_t len;
    char *body = body_of(r, &len);
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(r), "Authorization");
    char ts[24] = "", nonce[80] = "", sig[1024] = "";
    const char *p;
    if (auth && (p = strstr(auth, "timestamp=\""))) sscanf(p + 11, "%23[^\"]", ts);
    if (auth && (p = strstr(auth, "nonce_str=\""))) sscanf(p + 11, "%79[^\"]", nonce);
    if (auth && (p = strstr(auth, "signature=\""))) sscanf(p + 11, "%1023[^\"]", sig);
    buf msg = {0};
    buf_printf(&msg, "POST\n/v3/pay/transactions/native\n%s\n%s\n%s\n", ts, nonce, body ? body : "");
    unsigned char raw[1024];
    size_t rl = 0;
    char why[200];
    int ok = body && sig[0] && !H->b64_decode(sig, strlen(sig), raw, sizeof raw, &rl) &&
             H->rsa_sha256_verify(sb->mch_pub, sb->mch_pub_len, msg.data, msg.len, raw, rl, why, sizeof why) == 1;
    buf_free(&msg);
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *b = NULL;
    err e;
    if (!ok || json_parse(body, len, &json_default_limits, &a, &b, &e)) {
        json_reply(sb, r, 401, "{\"code\":\"SIGN_ERROR\",\"message\":\"the signature does not check out\"}");
    } else {
        const jv *amount = jv_get(jv_get(b, "amount"), "total");
        const char *no = jv_get_str(b, "out_trade_no"), *url = jv_get_str(b, "notify_url");
        char *eno = evhttp_encode_uri(no ? no : ""), *eurl = evhttp_encode_uri(url ? url : "");
        char out[2048];
        snprintf(out, sizeof out, "{\"code_url\":\"http://%s/wechat/pay?out_trade_no=%s&total=%lld&notify_url=%s\"}", sb->base,
                 eno ? eno : "", (long long)(amount && amount->kind == JV_INT ? amount->u.i : 0), eurl ? eurl : "");
        free(eno);
        free(eurl);
        json_reply(sb, r, 200, out);
    }
    jv_arena_free(&a);
    free(body);
}

static void wechat_page(sandbox *sb, struct evhttp_request *r)
{
    (void)sb;
    const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r));
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (!qs || evhttp_parse_query_str(qs, &q)) {
        page(r, 400, "微信支付 sandbox", "<p>Not a pay code.</p>");
        return;
    }
    const char *no = evhttp_find_header(&q, "out_trade_no"), *total = evhttp_find_header(&q, "total");
    const char *url = evhttp_find_header(&q, "notify_url");
    int64_t fen = total ? strtoll(total, NULL, 10) : 0;
    char yuan[MONEY_FMT_MAX], html[2048];
    money_format(fen, yuan);
    snprintf(html, sizeof html,
             "<p style=\"font-size:2em\">¥ %s</p><p>订单 %s</p><form method=\"post\" action=\"/wechat/pay\">"
             "<input type=\"hidden\" name=\"out_trade_no\" value=\"%s\"><input type=\"hidden\" name=\"total\" value=\"%lld\">"
             "<input type=\"hidden\" name=\"notify_url\" value=\"%s\"><button id=\"pay\" style=\"font-size:1.5em\">确认支付 Pay</button></form>",
             yuan, no ? no : "?", no ? no : "", (long long)fen, url ? url : "");
    page(r, 200, "微信支付 sandbox", html);
    evhttp_clear_headers(&q);
}

static void wechat_pay(sandbox *sb, struct evhttp_request *r)
{
    size_t len;
    char *body = body_of(r, &len);
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (!body || evhttp_parse_query_str(body, &q)) {
        free(body);
        page(r, 400, "微信支付 sandbox", "<p>Bad form.</p>");
        return;
    }
    const char *no = evhttp_find_header(&q, "out_trade_no"), *total = evhttp_find_header(&q, "total");
    const char *url = evhttp_find_header(&q, "notify_url");
    char txn[40], when[40], plain[1024];
    snprintf(txn, sizeof txn, "42000%013lld%010lld", (long long)time(NULL), (long long)++sb->seq);
    time_t t = time(NULL) + 8 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
    snprintf(plain, sizeof plain,
             "{\"appid\":\"" WX_APPID "\",\"mchid\":\"" WX_MCHID "\",\"out_trade_no\":\"%s\",\"transaction_id\":\"%s\","
             "\"trade_type\":\"NATIVE\",\"trade_state\":\"SUCCESS\",\"success_time\":\"%s\","
             "\"amount\":{\"total\":%lld,\"payer_total\":%lld,\"currency\":\"CNY\"}}",
             no ? no : "", txn, when, total ? strtoll(total, NULL, 10) : 0LL, total ? strtoll(total, NULL, 10) : 0LL);
    /* AES-256-GCM under the APIv3 key, as WeChat Pay encrypts a resource */
    unsigned char iv[12], ct[1200];
    char nonce[13];
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    crypto_random(iv, sizeof iv);
    for (int i = 0; i < 12; i++) nonce[i] = chars[iv[i] % 36];
    nonce[12] = 0;
    int n = 0, m = 0, ok = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
        EVP_EncryptInit_ex(c, NULL, NULL, (const unsigned char *)sb->apiv3, (const unsigned char *)nonce) == 1 &&
        EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)"transaction", 11) == 1 &&
        EVP_EncryptUpdate(c, ct, &n, (const unsigned char *)plain, (int)strlen(plain)) == 1 &&
        EVP_EncryptFinal_ex(c, ct + n, &m) == 1 && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct + n + m) == 1)
        ok = 1;
    EVP_CIPHER_CTX_free(c);
    char b64[2000], json[2600], ts[24], hdr[2200], sig[1024], why[200], msgbuf[3000];
    if (ok) ok = !H->b64_encode(ct, (size_t)(n + m + 16), b64, sizeof b64);
    snprintf(json, sizeof json,
             "{\"id\":\"sandbox-%lld\",\"create_time\":\"%s\",\"resource_type\":\"encrypt-resource\","
             "\"event_type\":\"TRANSACTION.SUCCESS\",\"summary\":\"支付成功\",\"resource\":{\"original_type\":\"transaction\","
             "\"algorithm\":\"AEAD_AES_256_GCM\",\"ciphertext\":\"%s\",\"associated_data\":\"transaction\",\"nonce\":\"%s\"}}",
             (long long)sb->seq, when, ok ? b64 : "", nonce);
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    int ml = snprintf(msgbuf, sizeof msgbuf, "%s\nsandbox%lld\n%s\n", ts, (long long)sb->seq, json);
    if (ok) ok = ml > 0 && (size_t)ml < sizeof msgbuf &&
                 !H->rsa_sha256_sign(sb->wx_priv, sb->wx_priv_len, msgbuf, (size_t)ml, sig, sizeof sig, why, sizeof why);
    snprintf(hdr, sizeof hdr,
             "Content-Type: application/json\nWechatpay-Timestamp: %s\nWechatpay-Nonce: sandbox%lld\n"
             "Wechatpay-Signature: %s\nWechatpay-Serial: SANDBOX\n",
             ts, (long long)sb->seq, sig);
    if (!ok || !no || !url) page(r, 400, "微信支付 sandbox", "<p>Cannot make the notification.</p>");
    else notify(sb, r, "微信支付 sandbox", url, hdr, json, strlen(json));
    evhttp_clear_headers(&q);
    free(body);
}

static void on_request(struct evhttp_request *r, void *arg)
{
    sandbox *sb = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(r));
    int get = evhttp_request_get_command(r) == EVHTTP_REQ_GET, post = evhttp_request_get_command(r) == EVHTTP_REQ_POST;
    if (!path) path = "/";
    if (get && !strcmp(path, "/alipay/gateway.do")) alipay_page(sb, r);
    else if (post && !strcmp(path, "/alipay/pay")) alipay_pay(sb, r);
    else if (post && !strcmp(path, "/wechat/v3/pay/transactions/native")) wechat_native(sb, r);
    else if (get && !strcmp(path, "/wechat/pay")) wechat_page(sb, r);
    else if (post && !strcmp(path, "/wechat/pay")) wechat_pay(sb, r);
    else if (get && !strcmp(path, "/"))
        page(r, 200, "bandbill sandbox",
             "<p>Alipay and WeChat Pay, played offline. Make a payment order in bandbill "
             "(<code>POST /api/v1/invoices/{number}/pay-orders</code>) and open its <code>pay_url</code>.</p>");
    else page(r, 404, "bandbill sandbox", "<p>Nothing here.</p>");
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static char *slurp(const char *dir, const char *name, size_t *len, err *e)
{
    char path[700], why[200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = H->read_file(path, len, why, sizeof why);
    if (!s) err_set(e, ERR_IO, "%s (run `bandbill sandbox` once to make the keys)", why);
    return s;
}

int sandbox_serve(const char *dir, const char *listen, err *e)
{
    H = channels_host();
    sandbox sb;
    memset(&sb, 0, sizeof sb);
    snprintf(sb.dir, sizeof sb.dir, "%s", dir);
    snprintf(sb.base, sizeof sb.base, "%s", listen);
    int rc = 0;
    if (!(sb.ali_priv = slurp(dir, "alipay_private.pem", &sb.ali_priv_len, e)) ||
        !(sb.app_pub = slurp(dir, "app_public.pem", &sb.app_pub_len, e)) ||
        !(sb.wx_priv = slurp(dir, "wechatpay_platform_private.pem", &sb.wx_priv_len, e)) ||
        !(sb.mch_pub = slurp(dir, "wechatpay_mch_public.pem", &sb.mch_pub_len, e)))
        rc = e->code;
    size_t kl = 0;
    char *k = rc ? NULL : slurp(dir, "apiv3.key", &kl, e);
    if (!rc && (!k || kl < 32)) rc = err_set(e, ERR_INVALID, "%s/apiv3.key is not a 32-character key", dir);
    if (k) memcpy(sb.apiv3, k, kl >= 32 ? 32 : kl);
    free(k);
    char host[256];
    int port = 0;
    const char *colon = strrchr(listen, ':');
    if (!rc && (!colon || colon == listen || (port = atoi(colon + 1)) <= 0 || (size_t)(colon - listen) >= sizeof host))
        rc = err_set(e, ERR_USAGE, "--listen is HOST:PORT, got '%s'", listen);
    if (!rc) snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    struct evhttp *http = NULL;
    struct event *sig_int = NULL, *sig_term = NULL;
    if (!rc && !(sb.ev = event_base_new())) rc = err_set(e, ERR_NOMEM, "cannot create the event loop");
    if (!rc && !(http = evhttp_new(sb.ev))) rc = err_set(e, ERR_NOMEM, "cannot create the HTTP server");
    if (!rc && evhttp_bind_socket(http, host, (unsigned short)port))
        rc = err_set(e, ERR_IO, "cannot listen on %s: %s", listen, strerror(errno));
    if (!rc) {
        evhttp_set_gencb(http, on_request, &sb);
        sig_int = evsignal_new(sb.ev, SIGINT, on_signal, sb.ev);
        sig_term = evsignal_new(sb.ev, SIGTERM, on_signal, sb.ev);
        if (sig_int) event_add(sig_int, NULL);
        if (sig_term) event_add(sig_term, NULL);
        fprintf(stderr, "sandbox: Alipay and WeChat Pay on http://%s (keys in %s)\n", listen, dir);
        event_base_dispatch(sb.ev);
    }
    if (sig_int) event_free(sig_int);
    if (sig_term) event_free(sig_term);
    if (http) evhttp_free(http);
    if (sb.ev) event_base_free(sb.ev);
    httpc_release();
    free(sb.ali_priv);
    free(sb.app_pub);
    free(sb.wx_priv);
    free(sb.mch_pub);
    return rc;
}
