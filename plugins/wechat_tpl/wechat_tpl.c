/* wechat_tpl.c - WeChat official account template messages.
 *
 * The request (POST to url?access_token=TOKEN), WeChat's own JSON shape:
 *
 *     {"touser":"OPENID","template_id":"ID","url":"https://...",
 *      "data":{"first":{"value":"..."},"keyword1":{"value":"...","color":"#FF0000"}}}
 *
 * The answer is HTTP 200 with {"errcode":0,"errmsg":"ok","msgid":200228332}
 * when taken (msgid is the provider id). A non-zero errcode is a refusal:
 * final for 40003 (not an openid of this account), 43004 (the user does
 * not follow the account), 43101 (the user refused the message) and 47003
 * (a template field the template does not have); anything else (-1 busy,
 * 40001/42001 an access token that expired and is being renewed, 45009
 * the daily quota) is tried again. Any status but 2xx is tried again.
 *
 * Settings: access_token (required; renewed by whatever owns the account's
 * AppSecret, and given here through the config), url (default WeChat's
 * https://api.weixin.qq.com/cgi-bin/message/template/send). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notichan.h"

#define EXPORT __attribute__((visibility("default")))
#define DEFAULT_URL "https://api.weixin.qq.com/cgi-bin/message/template/send"

static const notichan_host *H;

typedef struct wx {
    char url[1024];
    char token[512];
} wx;

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
    const char *url = get(s, "url"), *token = get(s, "access_token");
    if (!url) url = DEFAULT_URL;
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) return fail(e, "url", 1, "an http:// or https:// URL");
    if (strlen(url) >= sizeof ((wx *)0)->url) return fail(e, "url", 1, "too long");
    if (!token || !token[0] || strlen(token) >= sizeof ((wx *)0)->token)
        return fail(e, "access_token", 1, "the official account's access token is required");
    wx *h = H->alloc(sizeof *h);
    if (!h) return fail(e, "", 0, "out of memory");
    memset(h, 0, sizeof *h);
    snprintf(h->url, sizeof h->url, "%s", url);
    snprintf(h->token, sizeof h->token, "%s", token);
    *handle = h;
    return 0;
}

static void close_(void *handle)
{
    wx *h = handle;
    if (!h) return;
    memset(h->token, 0, sizeof h->token);
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
    (void)now;
    wx *h = handle;
    if (!m->recipient || !m->template_id || !m->ndata) return fail(e, "", 1, "a template message needs an openid, a template and fields");
    size_t cap = 512 + 6 * (strlen(m->recipient) + strlen(m->template_id) + (m->url ? strlen(m->url) : 0));
    for (size_t i = 0; i < m->ndata; i++) cap += 64 + 6 * (strlen(m->data[i].key) + strlen(m->data[i].value));
    char *body = H->alloc(cap);
    if (!body) return fail(e, "", 0, "out of memory");
    body[0] = 0;
    int bad = add(body, cap, "{\"touser\":") || H->json_quote(m->recipient, body, cap) || add(body, cap, ",\"template_id\":") ||
              H->json_quote(m->template_id, body, cap);
    if (!bad && m->url) bad = add(body, cap, ",\"url\":") || H->json_quote(m->url, body, cap);
    bad = bad || add(body, cap, ",\"data\":{");
    for (size_t i = 0; !bad && i < m->ndata; i++) {
        bad = (i && add(body, cap, ",")) || H->json_quote(m->data[i].key, body, cap) || add(body, cap, ":{\"value\":") ||
              H->json_quote(m->data[i].value, body, cap);
        if (!bad && m->colors && m->colors[i]) bad = add(body, cap, ",\"color\":") || H->json_quote(m->colors[i], body, cap);
        bad = bad || add(body, cap, "}");
    }
    bad = bad || add(body, cap, "}}");
    char token[1600];
    if (!bad) bad = H->url_encode(h->token, token, sizeof token) != 0;
    if (bad) {
        H->free(body);
        return fail(e, "", 1, "the message does not fit the request");
    }
    snprintf(out->method, sizeof out->method, "POST");
    if ((size_t)snprintf(out->url, sizeof out->url, "%s%saccess_token=%s", h->url, strchr(h->url, '?') ? "&" : "?", token) >=
        sizeof out->url) {
        H->free(body);
        return fail(e, "url", 1, "the URL with the access token is too long");
    }
    snprintf(out->headers, sizeof out->headers, "Content-Type: application/json; charset=utf-8\n");
    out->body = body;
    out->body_len = strlen(body);
    return 0;
}

static int response(void *handle, const notichan_message *m, const notichan_answer *a, notichan_result *out, notichan_error *e)
{
    (void)handle;
    (void)m;
    char msg[256];
    if (a->status < 200 || a->status >= 300) {
        snprintf(msg, sizeof msg, "WeChat answered HTTP %d", a->status);
        return fail(e, "", 0, msg);
    }
    char why[200] = "";
    void *doc = H->json_parse(a->body, a->body_len, why, sizeof why);
    if (!doc) {
        snprintf(msg, sizeof msg, "WeChat's answer is not JSON: %s", why);
        return fail(e, "", 0, msg);
    }
    int64_t code = -1, msgid = 0;
    if (H->json_int(doc, "errcode", &code)) code = 0; /* absent: taken */
    if (code != 0) {
        const char *em = H->json_str(doc, "errmsg");
        snprintf(msg, sizeof msg, "WeChat refused it: errcode %lld%s%.180s", (long long)code, em ? ", " : "", em ? em : "");
        H->json_free(doc);
        int permanent = code == 40003 || code == 43004 || code == 43101 || code == 47003;
        return fail(e, "", permanent, msg);
    }
    const char *sid = H->json_str(doc, "msgid");
    if (sid) snprintf(out->provider_id, sizeof out->provider_id, "%s", sid);
    else if (H->json_int(doc, "msgid", &msgid) == 0) snprintf(out->provider_id, sizeof out->provider_id, "%lld", (long long)msgid);
    H->json_free(doc);
    return 0;
}

static const char *const settings[] = {"access_token", "url", NULL};
static const notichan_plugin plugin = {NOTICHAN_ABI, "wechat_tpl", "WeChat official account template messages", settings,
                                       open_, close_, request, response};

EXPORT const notichan_plugin *bandbill_notichan(const notichan_host *host)
{
    H = host;
    return &plugin;
}
