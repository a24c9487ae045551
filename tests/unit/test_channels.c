/* test_channels.c - the payment channel plugins as the daemon loads them:
 * the official SDKs' own notifications (tests/data/vectors) verify and
 * their tampered twins do not; notifications signed here with keys made
 * here check every refusal: a changed field, one changed byte of the body,
 * the wrong key, a stale or future timestamp, a probe, the wrong platform
 * serial, a resource that does not decrypt, amounts that are not fen. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "channels.h"

#define VEC BB_SOURCE_DIR "/tests/data/vectors"

static const paychan_host *H;

/* ------------------------------------------------------------- fixtures */

typedef struct keys {
    char dir[64];
    char pub[128], priv[128], other_pub[128];
    char *priv_pem;
    size_t priv_len;
} keys;

static keys K;

static char *slurp(const char *path, size_t *len)
{
    char why[200];
    size_t n = 0;
    char *s = H->read_file(path, &n, why, sizeof why);
    if (!s) fail_msg("%s", why);
    if (len) *len = n;
    return s;
}

static void write_key(EVP_PKEY *k, const char *path, int private_key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(private_key ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, k), 1);
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    err e;
    err_clear(&e);
    if (channels_load(BB_PLUGIN_DIR, NULL, &e)) {
        fprintf(stderr, "channels_load: %s\n", e.msg);
        return -1;
    }
    H = channels_host();
    snprintf(K.dir, sizeof K.dir, "/tmp/bb_test_channels_XXXXXX");
    if (!mkdtemp(K.dir)) return -1;
    snprintf(K.pub, sizeof K.pub, "%s/pub.pem", K.dir);
    snprintf(K.priv, sizeof K.priv, "%s/priv.pem", K.dir);
    snprintf(K.other_pub, sizeof K.other_pub, "%s/other.pem", K.dir);
    EVP_PKEY *k = EVP_RSA_gen(2048), *other = EVP_RSA_gen(2048);
    if (!k || !other) return -1;
    write_key(k, K.pub, 0);
    write_key(k, K.priv, 1);
    write_key(other, K.other_pub, 0);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
    K.priv_pem = slurp(K.priv, &K.priv_len);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    H->free(K.priv_pem);
    unlink(K.pub);
    unlink(K.priv);
    unlink(K.other_pub);
    rmdir(K.dir);
    channels_unload();
    return 0;
}

static channel_handle open_channel(const char *name, const char *pub, const char *apiv3, const char *serial)
{
    paychan_kv kv[3];
    size_t n = 0;
    kv[n++] = (paychan_kv){"public_key", pub};
    if (apiv3) kv[n++] = (paychan_kv){"apiv3_key", apiv3};
    if (serial) kv[n++] = (paychan_kv){"platform_serial", serial};
    paychan_settings s = {kv, n};
    channel_handle ch;
    err e;
    err_clear(&e);
    if (channel_open(name, &s, &ch, &e)) fail_msg("channel_open %s: %s", name, e.msg);
    return ch;
}

/* Verifies; returns 0 or -1 and leaves the outcome in *nt / *pe. */
static int check(channel_handle *ch, const paychan_kv *hdr, size_t nh, const char *body, size_t len, int64_t now,
                 paychan_notice *nt, paychan_error *pe)
{
    memset(pe, 0, sizeof *pe);
    paychan_request r = {hdr, nh, body, len};
    int rc = ch->p->verify_notification(ch->h, &r, now, nt, pe);
    if (rc == 0) assert_non_null(nt->fields_json);
    return rc;
}

/* --------------------------------------------------- the official vectors */

static void test_loaded(void **state)
{
    (void)state;
    assert_int_equal(channels_count(), 2);
    assert_non_null(channels_find("alipay"));
    assert_non_null(channels_find("wechatpay"));
    assert_null(channels_find("unionpay"));
    err e;
    err_clear(&e);
    /* the same folder again: nothing new, no duplicate */
    int n = 0;
    assert_int_equal(channels_load(BB_PLUGIN_DIR, &n, &e), 0);
    assert_int_equal(n, 2);
}

static void test_alipay_sdk_vector(void **state)
{
    (void)state;
    channel_handle ch = open_channel("alipay", VEC "/ali/pub.pem", NULL, NULL);
    size_t len;
    char *body = slurp(VEC "/ali/notify_form.txt", &len);
    while (len && (body[len - 1] == '\n' || body[len - 1] == '\r')) len--;
    paychan_notice nt;
    paychan_error pe;
    assert_int_equal(check(&ch, NULL, 0, body, len, 0, &nt, &pe), 0);
    assert_int_equal(nt.state, PAYCHAN_PAID);
    assert_string_equal(nt.status, "TRADE_SUCCESS");
    assert_string_equal(nt.out_trade_no, "20190815155618536-564-57");
    assert_string_equal(nt.channel_txn_id, "2019081522001468450512505578");
    assert_int_equal(nt.amount, 10); /* "0.10" */
    assert_string_equal(nt.app_id, "2019073166072302");
    assert_string_equal(nt.merchant_id, "2088531891668739");
    /* values decoded once, never re-encoded: the JSON text of fund_bill_list survives */
    assert_non_null(strstr(nt.fields_json, "\"fund_bill_list\":\"[{\\\"amount\\\":\\\"0.10\\\""));
    assert_null(strstr(nt.fields_json, "\"sign\":"));
    free(nt.fields_json);
    H->free(body);

    body = slurp(VEC "/ali/notify_form_tampered.txt", &len);
    while (len && (body[len - 1] == '\n' || body[len - 1] == '\r')) len--;
    assert_int_equal(check(&ch, NULL, 0, body, len, 0, &nt, &pe), -1);
    assert_string_equal(pe.check, "signature");
    assert_string_equal(pe.field, "sign");
    paychan_reply r;
    ch.p->reply(ch.h, 0, &pe, &r);
    assert_string_equal(r.body, "fail");
    ch.p->reply(ch.h, 1, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "success");
    H->free(body);
    channel_close(&ch);
}

/* The canonical string is the one without sign_type: the SDK's signature
 * verifies over it and not over the string that keeps sign_type. */
static void test_alipay_canonical_string(void **state)
{
    (void)state;
    size_t pl, sl, gl, bl;
    char *pub = slurp(VEC "/ali/pub.pem", &pl), *sig = slurp(VEC "/ali/sig.bin", &sl);
    char *good = slurp(VEC "/ali/v1_no_sign_type.txt", &gl), *bad = slurp(VEC "/ali/keep_sign_type.txt", &bl);
    char why[200];
    assert_int_equal(H->rsa_sha256_verify(pub, pl, good, gl, (unsigned char *)sig, sl, why, sizeof why), 1);
    assert_int_equal(H->rsa_sha256_verify(pub, pl, bad, bl, (unsigned char *)sig, sl, why, sizeof why), 0);
    H->free(pub);
    H->free(sig);
    H->free(good);
    H->free(bad);
}

static size_t read_headers(char *text, paychan_kv *kv)
{
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(l, ':');
        if (!colon) continue;
        *colon = 0;
        kv[n++] = (paychan_kv){l, colon + 2};
    }
    return n;
}

static void test_wechatpay_sdk_vector(void **state)
{
    (void)state;
    size_t hl, bl;
    char *htext = slurp(VEC "/wx/headers.txt", &hl), *body = slurp(VEC "/wx/body.json", &bl);
    paychan_kv hdr[8];
    size_t nh = read_headers(htext, hdr);
    assert_int_equal(nh, 4);
    const int64_t ts = 1624523846;
    paychan_notice nt;
    paychan_error pe;
    /* the certificate and the bare public key both work; the test's APIv3 key is 16 bytes */
    const char *keyfiles[] = {VEC "/wx/cert.pem", VEC "/wx/pub.pem"};
    for (int i = 0; i < 2; i++) {
        channel_handle ch = open_channel("wechatpay", keyfiles[i], "testMchAPIv3Key0", "D7CE59D1F522D701");
        assert_int_equal(check(&ch, hdr, nh, body, bl, ts + 10, &nt, &pe), 0);
        assert_string_equal(nt.event, "PAYSCORE.USER_OPEN_SERVICE");
        assert_int_equal(nt.state, PAYCHAN_NOT_PAID); /* verified, but not a payment */
        assert_non_null(strstr(nt.fields_json, "\"out_contract_code\":\"21640bdbd08e473e828f3206a2741c6e\""));
        free(nt.fields_json);
        /* live, it is years old */
        assert_int_equal(check(&ch, hdr, nh, body, bl, ts + 300, &nt, &pe), -1);
        assert_string_equal(pe.check, "timestamp");
        assert_string_equal(pe.field, "Wechatpay-Timestamp");
        assert_int_equal(check(&ch, hdr, nh, body, bl, ts + 299, &nt, &pe), 0);
        free(nt.fields_json);
        assert_int_equal(check(&ch, hdr, nh, body, bl, ts - 299, &nt, &pe), 0);
        free(nt.fields_json);
        assert_int_equal(check(&ch, hdr, nh, body, bl, ts - 300, &nt, &pe), -1);
        /* one byte of the body */
        body[30] ^= 1;
        assert_int_equal(check(&ch, hdr, nh, body, bl, ts, &nt, &pe), -1);
        assert_string_equal(pe.check, "signature");
        body[30] ^= 1;
        /* the signed message ends with a newline after the body */
        size_t ml, nl;
        char *m = slurp(VEC "/wx/message.txt", &ml), *mn = slurp(VEC "/wx/message_nonl.txt", &nl), *sig;
        size_t sl;
        sig = slurp(VEC "/wx/sig.bin", &sl);
        size_t kl;
        char *kp = slurp(keyfiles[i], &kl);
        char why[200];
        assert_int_equal(H->rsa_sha256_verify(kp, kl, m, ml, (unsigned char *)sig, sl, why, sizeof why), 1);
        assert_int_equal(H->rsa_sha256_verify(kp, kl, mn, nl, (unsigned char *)sig, sl, why, sizeof why), 0);
        H->free(m);
        H->free(mn);
        H->free(sig);
        H->free(kp);
        channel_close(&ch);
    }
    /* the wrong APIv3 key: verified, but the resource does not open (5xx: WeChat retries) */
    channel_handle ch = open_channel("wechatpay", VEC "/wx/pub.pem", "testMchAPIv3Key1", NULL);
    assert_int_equal(check(&ch, hdr, nh, body, bl, ts, &nt, &pe), -1);
    assert_string_equal(pe.check, "decrypt");
    assert_int_equal(pe.reply_status, 500);
    channel_close(&ch);
    /* a platform serial other than the configured one */
    ch = open_channel("wechatpay", VEC "/wx/pub.pem", "testMchAPIv3Key0", "5157F09EFDC096DE15EBE81A47057A72");
    assert_int_equal(check(&ch, hdr, nh, body, bl, ts, &nt, &pe), -1);
    assert_string_equal(pe.check, "serial");
    channel_close(&ch);
    H->free(htext);
    H->free(body);
}

/* ------------------------------------------------ Alipay, our own keys */

/* Signs params (already in form order) the way Alipay does and returns the
 * urlencoded form with sign and sign_type appended (caller frees). */
static char *alipay_form(const char *const *kv, size_t n, const char *sign_type, int tamper_after)
{
    /* canonical: sorted, without empty values */
    const char *sorted[64];
    memcpy(sorted, kv, n * sizeof *kv);
    for (size_t i = 0; i < n; i += 2)
        for (size_t j = i + 2; j < n; j += 2)
            if (strcmp(sorted[j], sorted[i]) < 0) {
                const char *k = sorted[i], *v = sorted[i + 1];
                sorted[i] = sorted[j];
                sorted[i + 1] = sorted[j + 1];
                sorted[j] = k;
                sorted[j + 1] = v;
            }
    char canon[4096] = "", form[8192] = "";
    for (size_t i = 0; i < n; i += 2) {
        if (!sorted[i + 1][0]) continue;
        if (canon[0]) strcat(canon, "&");
        strcat(canon, sorted[i]);
        strcat(canon, "=");
        strcat(canon, sorted[i + 1]);
    }
    char sig[1024], why[200];
    assert_int_equal(H->rsa_sha256_sign(K.priv_pem, K.priv_len, canon, strlen(canon), sig, sizeof sig, why, sizeof why), 0);
    for (size_t i = 0; i < n; i += 2) {
        if (form[0]) strcat(form, "&");
        strcat(form, kv[i]);
        strcat(form, "=");
        /* urlencode the few characters the tests use */
        for (const char *p = kv[i + 1]; *p; p++) {
            char enc[4] = {*p, 0};
            if (*p == ' ') strcpy(enc, "+");
            else if (*p == '&' || *p == '=' || *p == '+' || *p == '%' || *p == '"')
                snprintf(enc, sizeof enc, "%%%02X", (unsigned char)*p);
            strcat(form, enc);
        }
    }
    strcat(form, "&sign=");
    for (const char *p = sig; *p; p++) {
        size_t fl = strlen(form);
        if (*p == '+') strcat(form, "%2B");
        else if (*p == '/') strcat(form, "%2F");
        else if (*p == '=') strcat(form, "%3D");
        else {
            form[fl] = *p;
            form[fl + 1] = 0;
        }
    }
    if (sign_type) {
        strcat(form, "&sign_type=");
        strcat(form, sign_type);
    }
    if (tamper_after) {
        char *amt = strstr(form, "total_amount=129.00");
        if (amt) amt[13] = '2'; /* 229.00 */
    }
    return strdup(form);
}

static const char *const TRADE[] = {
    "notify_type", "trade_status_sync", "app_id", "2021000000000001", "seller_id", "2088000000000001",
    "out_trade_no", "BB-2026-000042", "trade_no", "2026112722001400000000000001", "trade_status", "TRADE_SUCCESS",
    "total_amount", "129.00", "gmt_payment", "2026-11-27 10:00:00", "subject", "光宽带 300M 包月 & IPTV",
    "passback_params", "", "body", "a+b=c 100%",
};
#define NTRADE (sizeof TRADE / sizeof *TRADE)

static void test_alipay_own_keys(void **state)
{
    (void)state;
    channel_handle ch = open_channel("alipay", K.pub, NULL, NULL);
    paychan_notice nt;
    paychan_error pe;
    char *form = alipay_form(TRADE, NTRADE, "RSA2", 0);
    assert_int_equal(check(&ch, NULL, 0, form, strlen(form), 0, &nt, &pe), 0);
    assert_int_equal(nt.state, PAYCHAN_PAID);
    assert_int_equal(nt.amount, 12900);
    assert_string_equal(nt.out_trade_no, "BB-2026-000042");
    assert_non_null(strstr(nt.fields_json, "\"subject\":\"光宽带 300M 包月 & IPTV\""));
    assert_non_null(strstr(nt.fields_json, "\"body\":\"a+b=c 100%\""));
    free(nt.fields_json);
    /* one byte of the body: the last character of the signature's encoding */
    form[strlen(form) - 12] ^= 1;
    assert_int_equal(check(&ch, NULL, 0, form, strlen(form), 0, &nt, &pe), -1);
    free(form);
    /* a field changed after signing */
    form = alipay_form(TRADE, NTRADE, "RSA2", 1);
    assert_int_equal(check(&ch, NULL, 0, form, strlen(form), 0, &nt, &pe), -1);
    assert_string_equal(pe.check, "signature");
    free(form);
    /* without sign_type it still verifies (sign_type is never signed) */
    form = alipay_form(TRADE, NTRADE, NULL, 0);
    assert_int_equal(check(&ch, NULL, 0, form, strlen(form), 0, &nt, &pe), 0);
    free(nt.fields_json);
    free(form);
    /* RSA (SHA1) is not accepted */
    form = alipay_form(TRADE, NTRADE, "RSA", 0);
    assert_int_equal(check(&ch, NULL, 0, form, strlen(form), 0, &nt, &pe), -1);
    assert_string_equal(pe.field, "sign_type");
    free(form);
    channel_close(&ch);
    /* the wrong key */
    ch = open_channel("alipay", K.other_pub, NULL, NULL);
    form = alipay_form(TRADE, NTRADE, "RSA2", 0);
    assert_int_equal(check(&ch, NULL, 0, form, strlen(form), 0, &nt, &pe), -1);
    assert_string_equal(pe.check, "signature");
    free(form);
    channel_close(&ch);
}

static void test_alipay_amounts_and_form(void **state)
{
    (void)state;
    channel_handle ch = open_channel("alipay", K.pub, NULL, NULL);
    paychan_notice nt;
    paychan_error pe;
    static const struct {
        const char *yuan;
        int64_t fen; /* -1: refused */
    } cases[] = {{"129.00", 12900}, {"0.1", 10}, {"0.01", 1}, {"7", 700}, {"100000.99", 10000099}, {"1.234", -1},
                 {"-1.00", -1},     {"1e3", -1}, {".50", -1}, {"1.", -1}, {"1,000.00", -1}, {" 1.00", -1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *kv[NTRADE];
        memcpy(kv, TRADE, sizeof TRADE);
        kv[13] = cases[i].yuan;
        char *form = alipay_form(kv, NTRADE, "RSA2", 0);
        int rc = check(&ch, NULL, 0, form, strlen(form), 0, &nt, &pe);
        if (cases[i].fen < 0) {
            assert_int_equal(rc, -1);
            assert_string_equal(pe.field, "total_amount");
        } else {
            if (rc) fail_msg("%s: %s", cases[i].yuan, pe.message);
            assert_int_equal(nt.amount, cases[i].fen);
            free(nt.fields_json);
        }
        free(form);
    }
    /* not paid yet */
    const char *kv[NTRADE];
    memcpy(kv, TRADE, sizeof TRADE);
    kv[11] = "WAIT_BUYER_PAY";
    char *form = alipay_form(kv, NTRADE, "RSA2", 0);
    assert_int_equal(check(&ch, NULL, 0, form, strlen(form), 0, &nt, &pe), 0);
    assert_int_equal(nt.state, PAYCHAN_NOT_PAID);
    free(nt.fields_json);
    free(form);
    /* a parameter twice, a broken escape, no signature */
    const char *bad[] = {"a=1&a=2&sign=x", "a=%zz&sign=x", "a=1", "a&sign=x"};
    const char *field[] = {"a", "a", "sign", "a"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(check(&ch, NULL, 0, bad[i], strlen(bad[i]), 0, &nt, &pe), -1);
        assert_string_equal(pe.field, field[i]);
    }
    channel_close(&ch);
}

/* ---------------------------------------------- WeChat Pay, our own keys */

static const char APIV3[] = "0123456789abcdefghijklmnopqrstuv"; /* 32 bytes */

/* A TRANSACTION.SUCCESS notification: resource encrypted with APIV3,
 * headers signed with our key. */
static char *wx_body(const char *plain, const char *nonce, const char *aad)
{
    unsigned char ct[2048];
    int n = 0, m = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, (int)strlen(nonce), NULL), 1);
    assert_int_equal(EVP_EncryptInit_ex(c, NULL, NULL, (const unsigned char *)APIV3, (const unsigned char *)nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)), 1);
    assert_int_equal(EVP_EncryptUpdate(c, ct, &n, (const unsigned char *)plain, (int)strlen(plain)), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, ct + n, &m), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct + n + m), 1);
    EVP_CIPHER_CTX_free(c);
    char b64[4096];
    assert_int_equal(H->b64_encode(ct, (size_t)(n + m + 16), b64, sizeof b64), 0);
    char *body = malloc(8192);
    assert_non_null(body);
    snprintf(body, 8192,
             "{\"id\":\"EV-1\",\"create_time\":\"2026-11-27T10:00:00+08:00\",\"resource_type\":\"encrypt-resource\","
             "\"event_type\":\"TRANSACTION.SUCCESS\",\"summary\":\"支付成功\",\"resource\":{\"original_type\":"
             "\"transaction\",\"algorithm\":\"AEAD_AES_256_GCM\",\"ciphertext\":\"%s\",\"associated_data\":\"%s\","
             "\"nonce\":\"%s\"}}",
             b64, aad, nonce);
    return body;
}

typedef struct wx_req {
    char ts[24], nonce[40], sig[1024], serial[40];
    paychan_kv h[4];
} wx_req;

static void wx_sign(wx_req *r, const char *body, int64_t ts)
{
    snprintf(r->ts, sizeof r->ts, "%lld", (long long)ts);
    snprintf(r->nonce, sizeof r->nonce, "n0nce%lld", (long long)ts);
    snprintf(r->serial, sizeof r->serial, "PUB_KEY_ID_0001");
    char msg[8192];
    int len = snprintf(msg, sizeof msg, "%s\n%s\n%s\n", r->ts, r->nonce, body);
    char why[200];
    assert_int_equal(H->rsa_sha256_sign(K.priv_pem, K.priv_len, msg, (size_t)len, r->sig, sizeof r->sig, why, sizeof why), 0);
    /* header names arrive in any case */
    r->h[0] = (paychan_kv){"wechatpay-timestamp", r->ts};
    r->h[1] = (paychan_kv){"Wechatpay-Nonce", r->nonce};
    r->h[2] = (paychan_kv){"WECHATPAY-SIGNATURE", r->sig};
    r->h[3] = (paychan_kv){"Wechatpay-Serial", r->serial};
}

static const char TXN[] =
    "{\"appid\":\"wx0000000000000001\",\"mchid\":\"1900000001\",\"out_trade_no\":\"BB-2026-000043\","
    "\"transaction_id\":\"4200000000202611270000000001\",\"trade_type\":\"NATIVE\",\"trade_state\":\"SUCCESS\","
    "\"success_time\":\"2026-11-27T10:00:05+08:00\",\"payer\":{\"openid\":\"o-abc\"},"
    "\"amount\":{\"total\":12900,\"payer_total\":12900,\"currency\":\"CNY\",\"payer_currency\":\"CNY\"}}";

static void test_wechatpay_own_keys(void **state)
{
    (void)state;
    const int64_t now = 1795800000;
    channel_handle ch = open_channel("wechatpay", K.pub, APIV3, "PUB_KEY_ID_0001");
    paychan_notice nt;
    paychan_error pe;
    char *body = wx_body(TXN, "0123456789ab", "transaction");
    wx_req r;
    wx_sign(&r, body, now - 5);
    assert_int_equal(check(&ch, r.h, 4, body, strlen(body), now, &nt, &pe), 0);
    assert_int_equal(nt.state, PAYCHAN_PAID);
    assert_int_equal(nt.amount, 12900);
    assert_string_equal(nt.out_trade_no, "BB-2026-000043");
    assert_string_equal(nt.channel_txn_id, "4200000000202611270000000001");
    assert_string_equal(nt.merchant_id, "1900000001");
    assert_string_equal(nt.currency, "CNY");
    free(nt.fields_json);
    paychan_reply rep;
    ch.p->reply(ch.h, 1, NULL, &rep);
    assert_int_equal(rep.status, 204);
    assert_string_equal(rep.body, "");

    /* stale and future */
    assert_int_equal(check(&ch, r.h, 4, body, strlen(body), now + 296, &nt, &pe), -1);
    assert_string_equal(pe.check, "timestamp");
    ch.p->reply(ch.h, 0, &pe, &rep);
    assert_int_equal(rep.status, 401);
    assert_string_equal(rep.body, "{\"code\":\"FAIL\",\"message\":\"timestamp\"}");
    assert_int_equal(check(&ch, r.h, 4, body, strlen(body), now - 310, &nt, &pe), -1);
    /* one byte of the body */
    char *evil = strdup(body);
    evil[10] ^= 1;
    assert_int_equal(check(&ch, r.h, 4, evil, strlen(evil), now, &nt, &pe), -1);
    assert_string_equal(pe.check, "signature");
    free(evil);
    /* a probe */
    wx_req probe = r;
    probe.h[2].value = "WECHATPAY/SIGNTEST/abcdef";
    assert_int_equal(check(&ch, probe.h, 4, body, strlen(body), now, &nt, &pe), -1);
    assert_string_equal(pe.check, "signature");
    /* a missing header */
    assert_int_equal(check(&ch, r.h, 3, body, strlen(body), now, &nt, &pe), -1);
    assert_string_equal(pe.field, "Wechatpay-Serial");
    channel_close(&ch);

    /* a rotation: the current key is another, the next one (ours) signed it, named by its serial */
    {
        paychan_kv kv[5] = {{"public_key", K.other_pub}, {"platform_serial", "OLD_SERIAL"}, {"apiv3_key", APIV3},
                            {"next_public_key", K.pub}, {"next_platform_serial", "PUB_KEY_ID_0001"}};
        paychan_settings set = {kv, 5};
        err oe;
        channel_handle ch2;
        if (channel_open("wechatpay", &set, &ch2, &oe)) fail_msg("%s", oe.msg);
        assert_int_equal(check(&ch2, r.h, 4, body, strlen(body), now, &nt, &pe), 0);
        free(nt.fields_json);
        wx_req other = r;
        other.h[3].value = "NOT_A_SERIAL";
        assert_int_equal(check(&ch2, other.h, 4, body, strlen(body), now, &nt, &pe), -1);
        assert_string_equal(pe.check, "serial");
        channel_close(&ch2);
    }

    /* the wrong key */
    ch = open_channel("wechatpay", K.other_pub, APIV3, NULL);
    assert_int_equal(check(&ch, r.h, 4, body, strlen(body), now, &nt, &pe), -1);
    assert_string_equal(pe.check, "signature");
    channel_close(&ch);
    free(body);

    /* a resource that was changed before signing (the attacker signs nothing: it must not decrypt) */
    ch = open_channel("wechatpay", K.pub, APIV3, NULL);
    body = wx_body(TXN, "0123456789ab", "transaction");
    char *ct = strstr(body, "\"ciphertext\":\"") + 14;
    ct[5] = ct[5] == 'A' ? 'B' : 'A';
    wx_sign(&r, body, now);
    assert_int_equal(check(&ch, r.h, 4, body, strlen(body), now, &nt, &pe), -1);
    assert_string_equal(pe.check, "decrypt");
    assert_int_equal(pe.reply_status, 500);
    free(body);
    /* a refund notification is verified but credits nothing */
    char refund[sizeof TXN + 8];
    snprintf(refund, sizeof refund, "%s", TXN);
    memcpy(strstr(refund, "\"SUCCESS\""), "\"REFUND\" ", 9);
    body = wx_body(refund, "0123456789ab", "transaction");
    wx_sign(&r, body, now);
    assert_int_equal(check(&ch, r.h, 4, body, strlen(body), now, &nt, &pe), 0);
    assert_int_equal(nt.state, PAYCHAN_REFUNDED);
    free(nt.fields_json);
    free(body);
    /* an amount that is not fen */
    char floaty[sizeof TXN + 8];
    snprintf(floaty, sizeof floaty, "%s", TXN);
    memcpy(strstr(floaty, "\"total\":12900"), "\"total\":129.0", 13);
    body = wx_body(floaty, "0123456789ab", "transaction");
    wx_sign(&r, body, now);
    assert_int_equal(check(&ch, r.h, 4, body, strlen(body), now, &nt, &pe), -1);
    assert_string_equal(pe.field, "amount.total");
    free(body);
    channel_close(&ch);
}

static void test_settings_refused(void **state)
{
    (void)state;
    err e;
    err_clear(&e);
    channel_handle ch;
    paychan_kv none[1] = {{"public_key", ""}};
    paychan_settings s = {none, 1};
    assert_int_equal(channel_open("alipay", &s, &ch, &e), ERR_INVALID);
    assert_string_equal(e.field, "public_key");
    paychan_kv short_key[2] = {{"public_key", K.pub}, {"apiv3_key", "short"}};
    s = (paychan_settings){short_key, 2};
    assert_int_equal(channel_open("wechatpay", &s, &ch, &e), ERR_INVALID);
    assert_string_equal(e.field, "apiv3_key");
    paychan_kv missing[1] = {{"public_key", "/nonexistent/key.pem"}};
    s = (paychan_settings){missing, 1};
    assert_int_equal(channel_open("alipay", &s, &ch, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "/nonexistent/key.pem"));
    assert_int_equal(channel_open("unionpay", &s, &ch, &e), ERR_NOTFOUND);
    /* a key file that is not a key: refused when used, naming the setting */
    paychan_kv notkey[1] = {{"public_key", VEC "/README.md"}};
    s = (paychan_settings){notkey, 1};
    assert_int_equal(channel_open("alipay", &s, &ch, &e), 0);
    char *form = alipay_form(TRADE, NTRADE, "RSA2", 0);
    paychan_notice nt;
    paychan_error pe;
    assert_int_equal(check(&ch, NULL, 0, form, strlen(form), 0, &nt, &pe), -1);
    assert_string_equal(pe.check, "settings");
    assert_int_equal(pe.reply_status, 500);
    free(form);
    channel_close(&ch);
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t n;
    assert_int_equal(H->b64_decode("aGk=", 4, out, sizeof out, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "hi", 2);
    assert_int_equal(H->b64_decode("aGk", 3, out, sizeof out, &n), -1);
    assert_int_equal(H->b64_decode("a=Gk", 4, out, sizeof out, &n), -1);
    assert_int_equal(H->b64_decode("aG k", 4, out, sizeof out, &n), -1);
    assert_int_equal(H->b64_decode("aGVsbG8gd29ybGQhISEh", 20, out, 4, &n), -1); /* too small */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaded),
        cmocka_unit_test(test_alipay_sdk_vector),
        cmocka_unit_test(test_alipay_canonical_string),
        cmocka_unit_test(test_wechatpay_sdk_vector),
        cmocka_unit_test(test_alipay_own_keys),
        cmocka_unit_test(test_alipay_amounts_and_form),
        cmocka_unit_test(test_wechatpay_own_keys),
        cmocka_unit_test(test_settings_refused),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
