/* test_notify.c - notification delivery: the backoff schedule, quiet
 * hours in the operator's time zone, the HMAC signer of the SMS driver
 * (checked against OpenSSL's HMAC and RFC 4231's vector), the drivers'
 * reading of gateway answers, what rules/notices.lua may return, e-mails
 * as sent (RFC 2047 subjects), recipients by the customer's preference,
 * and the dispatcher itself over the log driver (no network) on a
 * migrated database.
 *
 * Expected values are worked out by hand: with base 30 s and factor 2 the
 * waits are 30, 60, 120, ... 1920, then the 3600 s cap; "宽带" is the
 * UTF-8 bytes E5 AE BD E5 B8 A6, base64 "5a695bim". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cfg.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "notichan.h"
#include "notify.h"
#include "notify_int.h"
#include "outbox.h"
#include "rules.h"
#include "vault.h"
#include "unit_fs.h"

/* ------------------------------------------------------------- backoff */

static void test_backoff_schedule(void **state)
{
    (void)state;
    notify_backoff b = {.base_s = 30, .factor = 2, .cap_s = 3600, .jitter_pct = 0, .max_attempts = 8};
    const int64_t want[] = {30, 60, 120, 240, 480, 960, 1920, 3600, 3600};
    for (int n = 1; n <= 9; n++) assert_int_equal(notify_backoff_delay(&b, n, 12345), want[n - 1]);
    /* no overflow however many attempts */
    assert_int_equal(notify_backoff_delay(&b, 1000000, 0), 3600);
    b.factor = 10;
    assert_int_equal(notify_backoff_delay(&b, 3, 0), 3000);
    assert_int_equal(notify_backoff_delay(&b, 4, 0), 3600);
    /* factor 1: the same wait every time */
    b.factor = 1;
    assert_int_equal(notify_backoff_delay(&b, 7, 0), 30);
    /* jitter 20%: 30 s moves within 24..36, uniformly over rnd */
    b = (notify_backoff){.base_s = 30, .factor = 2, .cap_s = 3600, .jitter_pct = 20};
    assert_int_equal(notify_backoff_delay(&b, 1, 0), 24);
    assert_int_equal(notify_backoff_delay(&b, 1, UINT32_MAX), 36);
    assert_int_equal(notify_backoff_delay(&b, 1, 0x80000000u), 30);   /* (2^31 * 13) >> 32 = 6: no move */
    assert_int_equal(notify_backoff_delay(&b, 2, UINT32_MAX), 72);    /* 60 + 12 */
    /* never below a second */
    b = (notify_backoff){.base_s = 1, .factor = 2, .cap_s = 10, .jitter_pct = 100};
    for (uint32_t r = 0; r < 0xF0000000u; r += 0x10000000u) assert_true(notify_backoff_delay(&b, 1, r) >= 1);
    assert_int_equal(notify_backoff_delay(&b, 1, UINT32_MAX), 2);
}

/* ---------------------------------------------------------- quiet hours */

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm);
}

static void test_quiet_hours(void **state)
{
    (void)state;
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    notify_quiet q = {.set = 1, .from_min = 21 * 60, .to_min = 8 * 60, .nexempt = 1};
    snprintf(q.exempt[0], sizeof q.exempt[0], "verification_code");
    /* 21:30 in Shanghai (13:30 UTC): quiet until 08:00 tomorrow, 00:00 UTC */
    assert_int_equal(notify_quiet_until(&q, "dunning.due_reminder", utc(2026, 11, 27, 13, 30)), utc(2026, 11, 28, 0, 0));
    /* 21:00 sharp is inside, 08:00 sharp outside */
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 27, 13, 0)), utc(2026, 11, 28, 0, 0));
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 28, 0, 0)), 0);
    /* 07:59 the next morning: the same morning's end */
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 27, 23, 59)), utc(2026, 11, 28, 0, 0));
    /* 20:59: not yet */
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 27, 12, 59)), 0);
    /* a one-time code goes at night too */
    assert_int_equal(notify_quiet_until(&q, "verification_code", utc(2026, 11, 27, 13, 30)), 0);
    /* a window within one day: 12:00-14:00 */
    q = (notify_quiet){.set = 1, .from_min = 12 * 60, .to_min = 14 * 60};
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 27, 4, 30)), utc(2026, 11, 27, 6, 0));
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 27, 6, 0)), 0);
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 27, 3, 59)), 0);
    /* the end of a month and of a year */
    q = (notify_quiet){.set = 1, .from_min = 21 * 60, .to_min = 8 * 60};
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 12, 31, 15, 0)), utc(2026, 12, 31, 0, 0) + 86400);
    /* none set, or an empty window: never quiet */
    q.set = 0;
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 27, 13, 30)), 0);
    q = (notify_quiet){.set = 1, .from_min = 600, .to_min = 600};
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 27, 2, 0)), 0);
    /* in another zone the same instant is daytime */
    setenv("TZ", "UTC", 1);
    tzset();
    q = (notify_quiet){.set = 1, .from_min = 21 * 60, .to_min = 8 * 60};
    assert_int_equal(notify_quiet_until(&q, "x", utc(2026, 11, 27, 13, 30)), 0);
}

/* ------------------------------------------------------ the SMS driver */

static const notichan_plugin *load_driver(const char *name, void **dl)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.so", BB_PLUGIN_DIR, name);
    *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*dl) print_error("dlopen %s: %s\n", path, dlerror());
    assert_non_null(*dl);
    notichan_entry_fn entry;
    *(void **)&entry = dlsym(*dl, NOTICHAN_ENTRY);
    assert_non_null(entry);
    const notichan_plugin *p = entry(nplug_host());
    assert_non_null(p);
    assert_int_equal(p->abi, NOTICHAN_ABI);
    return p;
}

/* A gateway's answer with a literal body. */
#define ANSWER(status, body) ((notichan_answer){(status), NULL, 0, (body), sizeof(body) - 1})

static const char *header(const char *headers, const char *name, char *out, size_t n)
{
    const char *h = strstr(headers, name);
    if (!h) return NULL;
    h += strlen(name) + 2;
    size_t k = strcspn(h, "\n");
    snprintf(out, n, "%.*s", (int)k, h);
    return out;
}

static void test_hmac_known_answer(void **state)
{
    (void)state;
    /* RFC 4231, test case 2 */
    unsigned char mac[32];
    char hex[65];
    assert_int_equal(nplug_host()->hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
    nplug_host()->hex(mac, 32, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_sms_signer(void **state)
{
    (void)state;
    void *dl;
    const notichan_plugin *p = load_driver("sms_http", &dl);
    assert_string_equal(p->name, "sms_http");
    notichan_kv kv[] = {{"url", "http://127.0.0.1:9/sms"}, {"secret", "0123456789abcdef"}, {"sender", "示例宽带"}};
    notichan_settings s = {kv, 3};
    notichan_error pe;
    memset(&pe, 0, sizeof pe);
    void *h = NULL;
    assert_int_equal(p->open(&s, &h, &pe), 0);
    notichan_message m = {.id = 42, .attempt = 2, .channel = "sms", .event = "dunning.due_reminder", .recipient = "13812348000",
                          .text = "应付\"129.00\"元\n请缴费"};
    notichan_http http;
    memset(&http, 0, sizeof http);
    assert_int_equal(p->request(h, &m, 1795682087, &http, &pe), 0);
    assert_string_equal(http.method, "POST");
    assert_string_equal(http.url, "http://127.0.0.1:9/sms");
    const char *want = "{\"id\":\"bb-42\",\"to\":\"13812348000\",\"text\":\"应付\\\"129.00\\\"元\\n请缴费\","
                       "\"sender\":\"示例宽带\",\"event\":\"dunning.due_reminder\",\"attempt\":2}";
    assert_int_equal(http.body_len, strlen(want));
    assert_memory_equal(http.body, want, http.body_len);
    char v[200];
    assert_string_equal(header(http.headers, "X-Bandbill-Timestamp", v, sizeof v), "1795682087");
    assert_string_equal(header(http.headers, "Idempotency-Key", v, sizeof v), "bb-42");
    /* the signature: HMAC-SHA256 over "timestamp.body" with the secret, computed here by OpenSSL */
    char signed_text[1024];
    int n = snprintf(signed_text, sizeof signed_text, "1795682087.%.*s", (int)http.body_len, http.body);
    unsigned char mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), "0123456789abcdef", 16, (const unsigned char *)signed_text, (size_t)n, mac, &ml);
    char hex[65], sig[80];
    crypto_hex(mac, 32, hex);
    snprintf(sig, sizeof sig, "sha256=%s", hex);
    assert_string_equal(header(http.headers, "X-Bandbill-Signature", v, sizeof v), sig);
    free(http.body);

    /* the gateway's answers */
    notichan_result r;
    notichan_answer a = ANSWER(200, "{\"message_id\":\"gw-7\"}");
    memset(&r, 0, sizeof r);
    assert_int_equal(p->response(h, &m, &a, &r, &pe), 0);
    assert_string_equal(r.provider_id, "gw-7");
    a = ANSWER(202, "{\"id\":987654321}");
    memset(&r, 0, sizeof r);
    assert_int_equal(p->response(h, &m, &a, &r, &pe), 0);
    assert_string_equal(r.provider_id, "987654321");
    a = ANSWER(200, "");
    memset(&r, 0, sizeof r);
    assert_int_equal(p->response(h, &m, &a, &r, &pe), 0);
    assert_string_equal(r.provider_id, "");
    static const struct {
        int status;
        int permanent;
    } cases[] = {{500, 0}, {503, 0}, {429, 0}, {408, 0}, {401, 0}, {403, 0}, {400, 1}, {404, 1}, {422, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        a = ANSWER(cases[i].status, "{\"error\":\"invalid number\"}");
        memset(&pe, 0, sizeof pe);
        assert_int_equal(p->response(h, &m, &a, &r, &pe), -1);
        assert_int_equal(pe.permanent, cases[i].permanent);
        assert_non_null(strstr(pe.message, "invalid number"));
    }
    p->close(h);
    /* settings it refuses, naming them */
    notichan_kv bad1[] = {{"url", "ftp://x"}, {"secret", "0123456789abcdef"}};
    notichan_kv bad2[] = {{"url", "https://sms.example"}, {"secret", "short"}};
    s = (notichan_settings){bad1, 2};
    assert_int_equal(p->open(&s, &h, &pe), -1);
    assert_string_equal(pe.field, "url");
    s = (notichan_settings){bad2, 2};
    assert_int_equal(p->open(&s, &h, &pe), -1);
    assert_string_equal(pe.field, "secret");
    dlclose(dl);
}

static void test_wechat_driver(void **state)
{
    (void)state;
    void *dl;
    const notichan_plugin *p = load_driver("wechat_tpl", &dl);
    notichan_kv kv[] = {{"access_token", "TOK+/="}, {"url", "http://127.0.0.1:9/cgi-bin/message/template/send"}};
    notichan_settings s = {kv, 2};
    notichan_error pe;
    memset(&pe, 0, sizeof pe);
    void *h = NULL;
    assert_int_equal(p->open(&s, &h, &pe), 0);
    notichan_kv data[] = {{"first", "停机预警"}, {"keyword1", "INV-1"}};
    const char *colors[] = {"#FF0000", NULL};
    notichan_message m = {.id = 9, .attempt = 1, .channel = "wechat", .event = "e", .recipient = "oABC123456",
                          .template_id = "TPL_X", .url = "https://pay.example/p", .data = data, .colors = colors, .ndata = 2};
    notichan_http http;
    memset(&http, 0, sizeof http);
    assert_int_equal(p->request(h, &m, 0, &http, &pe), 0);
    assert_string_equal(http.url, "http://127.0.0.1:9/cgi-bin/message/template/send?access_token=TOK%2B%2F%3D");
    const char *want = "{\"touser\":\"oABC123456\",\"template_id\":\"TPL_X\",\"url\":\"https://pay.example/p\","
                       "\"data\":{\"first\":{\"value\":\"停机预警\",\"color\":\"#FF0000\"},\"keyword1\":{\"value\":\"INV-1\"}}}";
    assert_int_equal(http.body_len, strlen(want));
    assert_memory_equal(http.body, want, http.body_len);
    free(http.body);
    notichan_result r;
    memset(&r, 0, sizeof r);
    notichan_answer a = ANSWER(200, "{\"errcode\":0,\"errmsg\":\"ok\",\"msgid\":200228332}");
    assert_int_equal(p->response(h, &m, &a, &r, &pe), 0);
    assert_string_equal(r.provider_id, "200228332");
    a = ANSWER(200, "{\"errcode\":43004,\"errmsg\":\"require subscribe\"}");
    assert_int_equal(p->response(h, &m, &a, &r, &pe), -1);
    assert_int_equal(pe.permanent, 1);
    assert_non_null(strstr(pe.message, "43004"));
    a = ANSWER(200, "{\"errcode\":42001,\"errmsg\":\"access_token expired\"}");
    assert_int_equal(p->response(h, &m, &a, &r, &pe), -1);
    assert_int_equal(pe.permanent, 0);
    a = ANSWER(502, "");
    assert_int_equal(p->response(h, &m, &a, &r, &pe), -1);
    assert_int_equal(pe.permanent, 0);
    p->close(h);
    notichan_kv none[] = {{"url", "https://x"}};
    s = (notichan_settings){none, 1};
    assert_int_equal(p->open(&s, &h, &pe), -1);
    assert_string_equal(pe.field, "access_token");
    dlclose(dl);
}

/* ------------------------------------------------------------ rendering */

static ruleset *rules_of(const char *notices)
{
    rule_file f = {(char *)"notices.lua", (char *)notices, strlen(notices)};
    rules_snapshot *snap;
    ruleset *rs;
    err e;
    assert_int_equal(rules_snapshot_from("test", &f, 1, &snap, &e), 0);
    int rc = ruleset_load(snap, &lhost_default_limits, 0, &rs, NULL, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    rules_snapshot_unref(snap);
    return rs;
}

/* renders `event` on `channel` with the rule returning what RESULT[event] is */
static jv_arena g_render;

static int render(ruleset *rs, const char *event, const char *channel, notify_rendered *out, err *e)
{
    jv_arena_free(&g_render);
    jv_arena_init(&g_render, 0);
    return notify_render(rs, &g_render, 1, event, channel, "C000000013", jv_obj(&g_render), out, e);
}

static void test_render_contract(void **state)
{
    (void)state;
    ruleset *rs = rules_of("local M = {}\n"
                           "local R = {\n"
                           "  ok = { text = string.rep('长', 500) },\n"
                           "  long = { text = string.rep('长', 501) },\n"
                           "  empty = { text = '' },\n"
                           "  number = { text = 12 },\n"
                           "  extra = { text = 'x', sender = 'y' },\n"
                           "  mail = { subject = '宽带账单', body = 'a\\nb' },\n"
                           "  mail_nl = { subject = 'a\\nBcc: x@y', body = 'b' },\n"
                           "  wx = { template_id = 'TPL_1', url = 'https://p.example/1', data = { first = 'a', k = { value = 'b', color = '#00FF00' } } },\n"
                           "  wx_id = { template_id = 'TPL 1', data = { first = 'a' } },\n"
                           "  wx_color = { template_id = 'T', data = { first = { value = 'a', color = 'red' } } },\n"
                           "  wx_none = { template_id = 'T', data = {} },\n"
                           "}\n"
                           "function M.render(m)\n"
                           "  if m.event == 'boom' then error('no way') end\n"
                           "  return R[m.event]\n"
                           "end\n"
                           "return M\n");
    notify_rendered r;
    err e;
    assert_int_equal(render(rs, "ok", "sms", &r, &e), 0);
    assert_int_equal(strlen(r.text), 1500);
    assert_int_equal(render(rs, "long", "sms", &r, &e), ERR_RULE);
    assert_string_equal(e.field, "text");
    assert_non_null(strstr(e.msg, "501 characters, must be 1 to 500"));
    assert_non_null(strstr(e.msg, "for long on sms"));
    /* the log takes longer texts */
    assert_int_equal(render(rs, "long", "log", &r, &e), 0);
    assert_int_equal(render(rs, "empty", "sms", &r, &e), ERR_RULE);
    assert_int_equal(render(rs, "number", "sms", &r, &e), ERR_RULE);
    assert_non_null(strstr(e.msg, "must be a string, got integer"));
    assert_int_equal(render(rs, "extra", "sms", &r, &e), ERR_RULE);
    assert_string_equal(e.field, "sender");
    assert_non_null(strstr(e.msg, "unexpected field"));
    assert_int_equal(render(rs, "mail", "email", &r, &e), 0);
    assert_string_equal(r.subject, "宽带账单");
    assert_string_equal(r.body, "a\nb");
    assert_int_equal(render(rs, "mail_nl", "email", &r, &e), ERR_RULE);
    assert_string_equal(e.field, "subject");
    assert_int_equal(render(rs, "ok", "email", &r, &e), ERR_RULE);   /* an SMS shape on e-mail */
    assert_int_equal(render(rs, "wx", "wechat", &r, &e), 0);
    assert_string_equal(r.template_id, "TPL_1");
    assert_string_equal(r.url, "https://p.example/1");
    assert_int_equal(r.nfields, 2);
    for (int i = 0; i < 2; i++) {
        if (!strcmp(r.keys[i], "k")) {
            assert_string_equal(r.values[i], "b");
            assert_string_equal(r.colors[i], "#00FF00");
        } else {
            assert_string_equal(r.keys[i], "first");
            assert_null(r.colors[i]);
        }
    }
    assert_int_equal(render(rs, "wx_id", "wechat", &r, &e), ERR_RULE);
    assert_string_equal(e.field, "template_id");
    assert_int_equal(render(rs, "wx_color", "wechat", &r, &e), ERR_RULE);
    assert_string_equal(e.field, "data.first");
    assert_int_equal(render(rs, "wx_none", "wechat", &r, &e), ERR_RULE);
    assert_string_equal(e.field, "data");
    /* nil: no template */
    assert_int_equal(render(rs, "nothing", "sms", &r, &e), 0);
    assert_int_equal(r.none, 1);
    /* a failing rule: located */
    assert_int_equal(render(rs, "boom", "sms", &r, &e), ERR_RULE);
    assert_non_null(strstr(e.msg, "rule notices.render failed at notices.lua:16"));
    ruleset_unref(rs);
    /* no render at all */
    rs = rules_of("return {}\n");
    assert_int_equal(render(rs, "ok", "sms", &r, &e), ERR_RULE);
    ruleset_unref(rs);
    assert_int_equal(render(NULL, "x", "sms", &r, &e), ERR_RULE);
    jv_arena_free(&g_render);
}

static void test_quiet_hours_from_the_rule(void **state)
{
    (void)state;
    notify_quiet q[NOTIFY_CHANNELS];
    err e;
    ruleset *rs = rules_of("return { quiet_hours = { sms = { from = '21:30', to = '07:05', except = { 'verification_code' } } } }\n");
    assert_int_equal(notify_quiet_load(rs, q, &e), 0);
    assert_int_equal(q[1].set, 1);
    assert_int_equal(q[1].from_min, 21 * 60 + 30);
    assert_int_equal(q[1].to_min, 7 * 60 + 5);
    assert_int_equal(q[1].nexempt, 1);
    assert_int_equal(q[0].set + q[2].set + q[3].set, 0);
    ruleset_unref(rs);
    static const char *const bad[] = {
        "return { quiet_hours = { pigeon = { from = '21:00', to = '08:00' } } }\n",
        "return { quiet_hours = { sms = { from = '25:00', to = '08:00' } } }\n",
        "return { quiet_hours = { sms = { from = '9:00', to = '08:00' } } }\n",
        "return { quiet_hours = { sms = { from = '21:00', to = '08:00', till = 'x' } } }\n",
        "return { quiet_hours = { sms = { from = '21:00', to = '08:00', except = { 3 } } } }\n",
        "return { quiet_hours = 'night' }\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rs = rules_of(bad[i]);
        assert_int_equal(notify_quiet_load(rs, q, &e), ERR_RULE);
        assert_non_null(strstr(e.msg, "notices.quiet_hours"));
        assert_int_equal(q[1].set, 0);
        ruleset_unref(rs);
    }
    rs = rules_of("return { quiet_hours = {} }\n");
    assert_int_equal(notify_quiet_load(rs, q, &e), 0);
    ruleset_unref(rs);
    rs = rules_of("return {}\n");
    assert_int_equal(notify_quiet_load(rs, q, &e), 0);
    ruleset_unref(rs);
}

/* ----------------------------------------------------------------- MIME */

static void test_mime(void **state)
{
    (void)state;
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    buf out = {0};
    err e;
    assert_int_equal(notify_mime("billing@isp.example", "宽带", "zhang@example.com", "宽带", "第一行\n第二行\n", "<bb.1@isp.example>",
                                 (int64_t)utc(2026, 11, 27, 13, 30), &out, &e),
                     0);
    const char *m = buf_cstr(&out);
    assert_non_null(strstr(m, "Date: Fri, 27 Nov 2026 21:30:00 +0800\r\n"));
    assert_non_null(strstr(m, "From: =?UTF-8?B?5a695bim?= <billing@isp.example>\r\n"));
    assert_non_null(strstr(m, "To: <zhang@example.com>\r\n"));
    assert_non_null(strstr(m, "Subject: =?UTF-8?B?5a695bim?=\r\n"));
    assert_non_null(strstr(m, "Message-ID: <bb.1@isp.example>\r\n"));
    assert_non_null(strstr(m, "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
    /* the body: CRLF lines, base64 */
    const char *b = strstr(m, "\r\n\r\n") + 4;
    unsigned char dec[256];
    int n = EVP_DecodeBlock(dec, (const unsigned char *)b, (int)(strlen(b) - 2));
    assert_true(n >= 22);
    assert_memory_equal(dec, "第一行\r\n第二行\r\n", 22);
    buf_free(&out);
    /* a long subject: several encoded words on folded lines, none over 76 characters, whole characters each */
    char subject[400] = "";
    for (int i = 0; i < 40; i++) strcat(subject, "账");
    assert_int_equal(notify_mime("a@b.c", NULL, "d@e.f", subject, "x", "<i@b.c>", 0, &out, &e), 0);
    m = buf_cstr(&out);
    for (const char *l = m; *l;) {
        const char *nl = strstr(l, "\r\n");
        assert_non_null(nl);
        assert_true(nl - l <= 76);
        l = nl + 2;
    }
    assert_non_null(strstr(m, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(m, "?=\r\n =?UTF-8?B?"));
    /* 39 bytes (13 characters) per word: the first word's 52 base64 characters */
    const char *w = strstr(m, "Subject: =?UTF-8?B?") + 19;
    assert_int_equal(strstr(w, "?=") - w, 52);
    buf_free(&out);
    /* an ASCII subject as it is; header injection refused */
    assert_int_equal(notify_mime("a@b.c", NULL, "d@e.f", "Your bill", "x", "<i@b.c>", 0, &out, &e), 0);
    assert_non_null(strstr(buf_cstr(&out), "Subject: Your bill\r\n"));
    buf_free(&out);
    assert_int_equal(notify_mime("a@b.c", NULL, "d@e.f", "a\r\nBcc: x@y.z", "x", "<i@b.c>", 0, &out, &e), ERR_INVALID);
    buf_free(&out);
    assert_int_equal(notify_mime("a@b.c", NULL, "d@e.f>\r\nBcc: <x@y.z", "s", "x", "<i@b.c>", 0, &out, &e), ERR_INVALID);
    buf_free(&out);
}

/* ------------------------------------------------------ with a database */

typedef struct fixture {
    char dir[64], keys[128], dbpath[128], log[160];
    vault *v;
    db *d;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_notify_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->keys, sizeof f->keys, "%s/bandbill.key", f->dir);
    snprintf(f->dbpath, sizeof f->dbpath, "%s/bandbill.db", f->dir);
    snprintf(f->log, sizeof f->log, "%s/log", f->dir);
    err e;
    if (vault_create_file(f->keys, &e) || vault_open(f->keys, &f->v, &e) || db_open(f->dbpath, DB_OPEN_CREATE, &f->d, &e) ||
        migrate_apply(f->d, NULL, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    db_close(f->d);
    vault_close(f->v);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static void run(fixture *f, const char *sql)
{
    db_stmt *s = db_prepare_once(f->d, sql, NULL);
    assert_non_null(s);
    err e;
    assert_true(db_step(f->d, s, &e) >= 0);
    db_finalize(s);
}

static int64_t count(fixture *f, const char *sql)
{
    int64_t n = -1;
    db_stmt *s = db_prepare_once(f->d, sql, NULL);
    err e;
    if (s && db_step(f->d, s, &e) == DB_ROW) n = db_col_int(s, 0);
    db_finalize(s);
    return n;
}

static const char *text_of(fixture *f, const char *sql, char *out, size_t n)
{
    out[0] = 0;
    db_stmt *s = db_prepare_once(f->d, sql, NULL);
    err e;
    if (s && db_step(f->d, s, &e) == DB_ROW) snprintf(out, n, "%s", db_col_text(s, 0));
    db_finalize(s);
    return out;
}

static void customer(fixture *f, int64_t id, const char *phone, const char *email)
{
    err e;
    buf p = {0}, m = {0};
    if (phone) assert_int_equal(vault_encrypt(f->v, "customers.phone", phone, strlen(phone), &p, &e), 0);
    if (email) assert_int_equal(vault_encrypt(f->v, "customers.email", email, strlen(email), &m, &e), 0);
    char code[24];
    snprintf(code, sizeof code, "X%lld", (long long)id);
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO customers (id, code, type, name, phone_enc, email_enc, status, created_at, created_by, updated_at) "
                            "VALUES (?, ?, 'residential', 'T', ?, ?, 'active', 't', 't', 't')",
                            "isss", id, code, phone ? buf_cstr(&p) : NULL, email ? buf_cstr(&m) : NULL),
                     0);
    buf_free(&p);
    buf_free(&m);
}

static void test_recipients_by_preference(void **state)
{
    fixture *f = *state;
    err e;
    customer(f, 1, "13812348000", "zhang@example.com");
    customer(f, 2, "13900001111", NULL);
    run(f, "INSERT INTO customer_tags (customer_id, tag) VALUES (1, 'prefer_email'), (2, 'prefer_email')");
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *payload = jv_obj(&a);
    jv_obj_set_int(&a, payload, "amount", 12900);
    int queued = 0;
    assert_int_equal(notify_customer(f->d, f->v, "x", 1, NULL, payload, NULL, &queued, &e), ERR_INTERNAL); /* no transaction */
    assert_int_equal(db_begin(f->d, &e), 0);
    /* the preference: e-mail for 1; 2 has no address, so the log */
    assert_int_equal(notify_customer(f->d, f->v, "dunning.due_reminder", 1, NULL, payload, "k1", &queued, &e), 0);
    assert_int_equal(queued, 1);
    assert_int_equal(notify_customer(f->d, f->v, "dunning.due_reminder", 2, NULL, payload, "k2", &queued, &e), 0);
    /* channels named by a rule; the log once however many fall back */
    const char *both[] = {"sms", "wechat", "email", "log", NULL};
    assert_int_equal(notify_customer(f->d, f->v, "service.restore", 2, both, payload, "k3", &queued, &e), 0);
    assert_int_equal(queued, 2);
    /* again: the dedupe keys drop them */
    assert_int_equal(notify_customer(f->d, f->v, "service.restore", 2, both, payload, "k3", &queued, &e), 0);
    const char *bad[] = {"sms", "pigeon", NULL}, *twice[] = {"sms", "sms", NULL};
    assert_int_equal(notify_customer(f->d, f->v, "x", 2, bad, payload, NULL, &queued, &e), ERR_RULE);
    assert_non_null(strstr(e.msg, "channels[2]: 'pigeon' is not a channel"));
    assert_int_equal(notify_customer(f->d, f->v, "x", 2, twice, payload, NULL, &queued, &e), ERR_RULE);
    assert_int_equal(notify_customer(f->d, f->v, "x", 99, NULL, payload, NULL, &queued, &e), ERR_NOTFOUND);
    /* a WeChat openid, encrypted */
    assert_int_equal(notify_set_wechat(f->d, f->v, 1, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "test", &e), 0);
    assert_int_equal(notify_set_wechat(f->d, f->v, 1, "bad id!", "test", &e), ERR_INVALID);
    run(f, "INSERT INTO customer_tags (customer_id, tag) VALUES (1, 'prefer_wechat')");
    assert_int_equal(notify_customer(f->d, f->v, "invoice_issued", 1, NULL, payload, "k4", &queued, &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    jv_arena_free(&a);
    char t[256];
    assert_string_equal(text_of(f, "SELECT group_concat(channel || '=' || dedupe_key, ' ') FROM (SELECT * FROM outbox ORDER BY id)",
                                t, sizeof t),
                        "email=k1:email log=k2:log sms=k3:sms log=k3:log wechat=k4:wechat");
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE channel = 'log' AND recipient_enc IS NOT NULL"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM customer_wechat WHERE openid_enc LIKE '%WeS6o%'"), 0);
    buf plain = {0};
    int found = 0;
    assert_int_equal(notify_get_wechat(f->d, f->v, 1, &plain, &found, &e), 0);
    assert_int_equal(found, 1);
    assert_string_equal(buf_cstr(&plain), "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    buf_free(&plain);
    /* the recipient of the e-mail is the customer's address, re-encrypted for the outbox */
    char enc[512];
    text_of(f, "SELECT recipient_enc FROM outbox WHERE channel = 'email'", enc, sizeof enc);
    assert_int_equal(vault_decrypt(f->v, "outbox.recipient", enc, &plain, &e), 0);
    assert_string_equal(buf_cstr(&plain), "zhang@example.com");
    buf_free(&plain);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return NULL;
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = 0;
    return text;
}

/* The dispatcher over the log driver: the sms channel set to "log" for a
 * machine without a gateway. Rendered with the repository's rules. */
static void test_dispatcher_over_the_log(void **state)
{
    fixture *f = *state;
    err e;
    customer(f, 1, "13812348000", NULL);
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *payload = jv_obj(&a);
    jv_obj_set_str(&a, payload, "code", "424242");
    jv_obj_set_str(&a, payload, "customer", "X1");
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "verification_code", "sms", 1, "13812348000", payload, NULL, &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "service.suspended", "log", 1, NULL, payload, NULL, &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "verification_code", "email", 1, "x@example.com", payload, NULL, &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "no.template", "log", 1, NULL, payload, NULL, &e), 0);
    assert_int_equal(outbox_enqueue(f->d, f->v, "verification_code", "sms", 1, "13900000000", payload, NULL, &e), 0);
    assert_int_equal(db_commit(f->d, &e), 0);
    jv_arena_free(&a);
    /* a recipient that does not decrypt: dead, not tried for ever */
    run(f, "UPDATE outbox SET recipient_enc = 'enc:v1:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' WHERE id = 5");
    cfg c;
    cfg_defaults(&c);
    snprintf(c.db, sizeof c.db, "%s", f->dbpath);
    snprintf(c.keys_file, sizeof c.keys_file, "%s", f->keys);
    snprintf(c.rules, sizeof c.rules, "%s/rules", BB_SOURCE_DIR);
    snprintf(c.plugins_dir, sizeof c.plugins_dir, "%s", BB_PLUGIN_DIR);
    assert_int_equal(cfg_set(&c, "notify.sms.driver", "log", "test", &e), 0);
    assert_int_equal(notify_check_config(&c, &e), 0);
    int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int old = log_set_fd(fd);
    log_set_level(LOG_INFO);
    notify_report r;
    int rc = notify_deliver(f->d, &c, NULL, 0, NULL, &r, &e);
    log_set_level(LOG_OFF);
    log_set_fd(old);
    close(fd);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    /* the e-mail waits: no e-mail channel is set up */
    assert_int_equal(r.sent, 3);
    assert_int_equal(r.dead, 1);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE status = 'sent' AND attempts = 1 AND driver = 'log' AND sent_at IS NOT NULL"), 3);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE channel = 'email' AND status = 'pending' AND attempts = 0"), 1);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE id = 5 AND status = 'dead' AND last_error IS NOT NULL"), 1);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox_attempts WHERE outcome = 'sent' AND rules_version IS NOT NULL"), 3);
    const char *log = slurp(f->log);
    assert_non_null(log);
    assert_non_null(strstr(log, "\"text\":\"验证码424242，用于验证"));
    assert_non_null(strstr(log, "\"recipient\":\"138****8000\""));
    assert_null(strstr(log, "13812348000"));
    /* the log takes what has no template, or cannot be rendered ({{invoice}} missing), with its payload */
    assert_non_null(strstr(log, "\"message_event\":\"no.template\""));
    assert_non_null(strstr(log, "\"message_event\":\"service.suspended\""));
    /* nothing is due any more */
    rc = notify_deliver(f->d, &c, NULL, 0, NULL, &r, &e);
    assert_int_equal(rc, 0);
    assert_int_equal(r.sent + r.failed + r.dead, 0);
    /* the list and one message, as the API shows them */
    jv_arena_init(&a, 0);
    jv *list = NULL, *one = NULL;
    char next[32];
    notify_filter fl = {0, "sent", NULL, NULL};
    assert_int_equal(notify_list(f->d, f->v, &fl, NULL, 2, &a, &list, next, sizeof next, &e), 0);
    assert_int_equal(jv_len(list), 2);
    assert_string_equal(next, "2");
    assert_int_equal(jv_get(jv_at(list, 0), "id")->u.i, 4);
    assert_int_equal(notify_list(f->d, f->v, &fl, next, 2, &a, &list, next, sizeof next, &e), 0);
    assert_int_equal(jv_len(list), 1);
    assert_string_equal(next, "");
    assert_int_equal(notify_get(f->d, f->v, 1, &a, &one, &e), 0);
    assert_string_equal(jv_get(one, "phone")->u.str.s, "13812348000");
    assert_string_equal(jv_get(jv_get(one, "payload"), "code")->u.str.s, "******");
    assert_int_equal(jv_len(jv_get(one, "history")), 1);
    assert_int_equal(notify_retry(f->d, 1, &e), ERR_CONFLICT);
    assert_int_equal(notify_retry(f->d, 5, &e), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE id = 5 AND status = 'pending' AND attempts = 0"), 1);
    assert_int_equal(notify_retry(f->d, 77, &e), ERR_NOTFOUND);
    fl = (notify_filter){0, "lost", NULL, NULL};
    assert_int_equal(notify_list(f->d, f->v, &fl, NULL, 2, &a, &list, next, sizeof next, &e), ERR_INVALID);
    assert_string_equal(e.field, "status");
    jv_arena_free(&a);
    /* settings a channel does not take, or a driver that does not exist, stop it */
    cfg_set(&c, "notify.sms.url", "http://x", "test", &e);
    assert_int_equal(notify_check_config(&c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "the log driver takes driver, rate and burst only"));
    cfg_defaults(&c);
    snprintf(c.plugins_dir, sizeof c.plugins_dir, "%s", BB_PLUGIN_DIR);
    cfg_set(&c, "notify.wechat.driver", "carrier_pigeon", "test", &e);
    assert_int_equal(notify_check_config(&c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "no driver 'carrier_pigeon'"));
    cfg_defaults(&c);
    snprintf(c.plugins_dir, sizeof c.plugins_dir, "%s", BB_PLUGIN_DIR);
    cfg_set(&c, "notify.sms.url", "http://127.0.0.1:9/sms", "test", &e);
    assert_int_equal(notify_check_config(&c, &e), ERR_INVALID);   /* no secret */
    assert_string_equal(e.field, "secret");
    cfg_set(&c, "notify.sms.secret", "0123456789abcdef", "test", &e);
    cfg_set(&c, "notify.sms.colour", "blue", "test", &e);
    assert_int_equal(notify_check_config(&c, &e), ERR_INVALID);
    assert_string_equal(e.field, "colour");
    cfg_defaults(&c);
    cfg_set(&c, "notify.email.url", "http://mail", "test", &e);
    assert_int_equal(notify_check_config(&c, &e), ERR_INVALID);
    assert_string_equal(e.field, "url");
}

int main(void)
{
    log_set_level(LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_quiet_hours),
        cmocka_unit_test(test_hmac_known_answer),
        cmocka_unit_test(test_sms_signer),
        cmocka_unit_test(test_wechat_driver),
        cmocka_unit_test(test_render_contract),
        cmocka_unit_test(test_quiet_hours_from_the_rule),
        cmocka_unit_test(test_mime),
        cmocka_unit_test_setup_teardown(test_recipients_by_preference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatcher_over_the_log, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
