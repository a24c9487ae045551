/* notify_render.c - what rules/notices.lua makes of a message, checked
 * against its channel's contract, and e-mails as they go over SMTP. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "notify.h"
#include "rules.h"

#define SMS_MAX_CHARS 500
#define LOG_MAX_CHARS 4000
#define SUBJECT_MAX_CHARS 200
#define BODY_MAX_BYTES (100 * 1024)
#define WX_VALUE_MAX_CHARS 200

static size_t chars_of(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

static int has_control(const char *s, size_t n, int allow_newlines)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t'))) || c == 0x7F) return 1;
    }
    return 0;
}

/* A refusal of the rule's output: which rule, for which message, what. */
static int bad(err *e, const char *event, const char *channel, const char *field, const char *what)
{
    return err_field(e, ERR_RULE, "rule_output", field, "rule notices.render returned an invalid value for %s on %s: %s: %s", event,
                     channel, field, what);
}

/* A string field of the result: present (unless optional), a string,
 * within min..max characters, no control characters (newlines where
 * allowed). */
static int str_field(const jv *res, const char *key, int optional, size_t min, size_t max, int newlines, const char *event,
                     const char *channel, const char **out, err *e)
{
    const jv *v = jv_get(res, key);
    *out = NULL;
    if (!v || v->kind == JV_NULL) return optional ? 0 : bad(e, event, channel, key, "missing");
    if (v->kind != JV_STR) {
        char d[64];
        snprintf(d, sizeof d, "must be a string, got %s", jv_kind_name(v->kind));
        return bad(e, event, channel, key, d);
    }
    size_t n = chars_of(v->u.str.s, v->u.str.len);
    if (n < min || n > max) {
        char d[96];
        snprintf(d, sizeof d, "%zu characters, must be %zu to %zu", n, min, max);
        return bad(e, event, channel, key, d);
    }
    if (has_control(v->u.str.s, v->u.str.len, newlines))
        return bad(e, event, channel, key, newlines ? "control characters (other than line breaks)" : "control characters or line breaks");
    *out = v->u.str.s;
    return 0;
}

static int only_fields(const jv *res, const char *const *allowed, const char *event, const char *channel, err *e)
{
    for (size_t i = 0; i < res->u.obj.n; i++) {
        int ok = 0;
        for (const char *const *k = allowed; *k && !ok; k++) ok = !strcmp(*k, res->u.obj.m[i].key);
        if (!ok) return bad(e, event, channel, res->u.obj.m[i].key, "unexpected field");
    }
    return 0;
}

static int wechat_fields(const jv *res, const char *event, const char *channel, notify_rendered *out, err *e)
{
    static const char *const allowed[] = {"template_id", "url", "data", NULL};
    int rc = only_fields(res, allowed, event, channel, e);
    if (!rc) rc = str_field(res, "template_id", 0, 1, 64, 0, event, channel, &out->template_id, e);
    if (!rc && strspn(out->template_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(out->template_id))
        rc = bad(e, event, channel, "template_id", "letters, digits, '_' and '-' only");
    if (!rc) rc = str_field(res, "url", 1, 1, 1024, 0, event, channel, &out->url, e);
    if (!rc && out->url && strncmp(out->url, "https://", 8) && strncmp(out->url, "http://", 7))
        rc = bad(e, event, channel, "url", "an http(s) URL");
    const jv *data = jv_get(res, "data");
    if (!rc && (!data || data->kind != JV_OBJ || data->u.obj.n < 1 || data->u.obj.n > NOTIFY_MAX_FIELDS))
        rc = bad(e, event, channel, "data", "a table of 1 to 20 template fields {key = \"value\"} or {key = {value = ..., color = ...}}");
    for (size_t i = 0; !rc && i < data->u.obj.n; i++) {
        const jv_member *m = &data->u.obj.m[i];
        char path[96];
        snprintf(path, sizeof path, "data.%.40s", m->key);
        if (!m->klen || m->klen > 32 || strspn(m->key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != m->klen) {
            rc = bad(e, event, channel, path, "a field name is 1 to 32 letters, digits or '_'");
            break;
        }
        const jv *val = m->val, *color = NULL;
        if (val->kind == JV_OBJ) {
            static const char *const vk[] = {"value", "color", NULL};
            for (size_t k = 0; k < val->u.obj.n && !rc; k++) {
                int ok = 0;
                for (const char *const *x = vk; *x && !ok; x++) ok = !strcmp(*x, val->u.obj.m[k].key);
                if (!ok) {
                    char p2[140];
                    snprintf(p2, sizeof p2, "%s.%.32s", path, val->u.obj.m[k].key);
                    rc = bad(e, event, channel, p2, "unexpected field");
                }
            }
            color = jv_get(val, "color");
            val = jv_get(val, "value");
        }
        if (rc) break;
        if (!val || val->kind != JV_STR) {
            rc = bad(e, event, channel, path, "the value must be a string");
            break;
        }
        size_t n = chars_of(val->u.str.s, val->u.str.len);
        if (n > WX_VALUE_MAX_CHARS || has_control(val->u.str.s, val->u.str.len, 1)) {
            rc = bad(e, event, channel, path, "at most 200 characters, no control characters");
            break;
        }
        if (color && (color->kind != JV_STR || color->u.str.len != 7 || color->u.str.s[0] != '#' ||
                      strspn(color->u.str.s + 1, "0123456789abcdefABCDEF") != 6)) {
            rc = bad(e, event, channel, path, "color is \"#RRGGBB\"");
            break;
        }
        out->keys[out->nfields] = m->key;
        out->values[out->nfields] = val->u.str.s;
        out->colors[out->nfields] = color ? color->u.str.s : NULL;
        out->nfields++;
    }
    return rc;
}

int notify_render(struct ruleset *rs, jv_arena *a, int64_t id, const char *event, const char *channel, const char *customer,
                  const jv *payload, notify_rendered *out, err *e)
{
    memset(out, 0, sizeof *out);
    if (!rs) return err_field(e, ERR_RULE, "rule_error", "", "no rules loaded to render %s", event);
    jv *ctx = jv_obj_sized(a, 5);
    if (!ctx || jv_obj_set_int(a, ctx, "id", id) || jv_obj_set_str(a, ctx, "event", event) ||
        jv_obj_set_str(a, ctx, "channel", channel) || (customer && customer[0] && jv_obj_set_str(a, ctx, "customer", customer)) ||
        jv_obj_set(a, ctx, "payload", payload ? (jv *)payload : jv_obj(a)))
        return ERR_NOMEM_RET(e);
    const jv *args[1] = {ctx};
    jv *res = NULL;
    int rc = rules_call(rs, "notices.render", args, 1, a, &res, e);
    if (rc) return rc == ERR_NOTFOUND ? err_field(e, ERR_RULE, "rule_not_found", "", "%s", e->msg) : rc;
    if (res->kind == JV_NULL) {
        out->none = 1;
        return 0;
    }
    if (res->kind != JV_OBJ)
        return err_field(e, ERR_RULE, "rule_output", "", "rule notices.render returned %s for %s on %s: a table, or nil for no template",
                         jv_kind_name(res->kind), event, channel);
    if (!strcmp(channel, "sms") || !strcmp(channel, "log")) {
        static const char *const allowed[] = {"text", NULL};
        int sms = !strcmp(channel, "sms");
        rc = only_fields(res, allowed, event, channel, e);
        if (!rc) rc = str_field(res, "text", 0, 1, sms ? SMS_MAX_CHARS : LOG_MAX_CHARS, 1, event, channel, &out->text, e);
        return rc;
    }
    if (!strcmp(channel, "email")) {
        static const char *const allowed[] = {"subject", "body", NULL};
        rc = only_fields(res, allowed, event, channel, e);
        if (!rc) rc = str_field(res, "subject", 0, 1, SUBJECT_MAX_CHARS, 0, event, channel, &out->subject, e);
        if (!rc) rc = str_field(res, "body", 0, 1, BODY_MAX_BYTES, 1, event, channel, &out->body, e);
        if (!rc && strlen(out->body) > BODY_MAX_BYTES) rc = bad(e, event, channel, "body", "more than 100 KiB");
        return rc;
    }
    if (!strcmp(channel, "wechat")) return wechat_fields(res, event, channel, out, e);
    return err_set(e, ERR_INTERNAL, "no rendering contract for channel '%s'", channel);
}

/* ------------------------------------------------------------------ MIME */

static int b64(const unsigned char *in, size_t n, buf *out)
{
    char tmp[4 * 48 / 3 + 4];
    while (n) {
        size_t k = n > 48 ? 48 : n;
        int w = EVP_EncodeBlock((unsigned char *)tmp, in, (int)k);
        if (w < 0 || buf_append(out, tmp, (size_t)w)) return -1;
        in += k;
        n -= k;
    }
    return 0;
}

static int ascii_plain(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E) return 0;
    return 1;
}

/* RFC 2047: B-encoded words of at most 75 characters, each holding whole
 * UTF-8 characters, folded onto continuation lines. */
static int encoded_words(const char *s, buf *out)
{
    if (ascii_plain(s) && strlen(s) < 70 && !strstr(s, "=?")) return buf_puts(out, s);
    size_t n = strlen(s), i = 0;
    int first = 1;
    while (i < n) {
        size_t k = 0;
        /* 39 bytes give 52 base64 characters, 64 with the =?UTF-8?B? ?=
         * frame: with "Subject: " a line stays within RFC 2047's 76 */
        while (i + k < n) {
            size_t cl = 1;
            unsigned char c = (unsigned char)s[i + k];
            if (c >= 0xF0) cl = 4;
            else if (c >= 0xE0) cl = 3;
            else if (c >= 0xC0) cl = 2;
            if (k + cl > 39) break;
            k += cl;
        }
        if (!k) return -1;
        if ((!first && buf_puts(out, "\r\n ")) || buf_puts(out, "=?UTF-8?B?") || b64((const unsigned char *)s + i, k, out) ||
            buf_puts(out, "?="))
            return -1;
        first = 0;
        i += k;
    }
    return 0;
}

static int address_ok(const char *a)
{
    size_t n = strlen(a);
    const char *at = strchr(a, '@');
    return n >= 3 && n <= 254 && at && at != a && at[1] && !strchr(at + 1, '@') && !strpbrk(a, " \t\r\n<>,;\"()[]\\");
}

int notify_mime(const char *from, const char *from_name, const char *to, const char *subject, const char *body,
                const char *message_id, int64_t now, buf *out, err *e)
{
    if (!address_ok(from)) return err_field(e, ERR_INVALID, "invalid_setting", "from", "'%s' is not an e-mail address", from);
    if (!address_ok(to)) return err_field(e, ERR_INVALID, "invalid_recipient", "to", "the recipient is not an e-mail address");
    if (has_control(subject, strlen(subject), 0) || (from_name && has_control(from_name, strlen(from_name), 0)))
        return err_field(e, ERR_INVALID, "invalid_field", "subject", "line breaks or control characters in a header");
    char date[64];
    time_t t = (time_t)now;
    struct tm tm;
    localtime_r(&t, &tm);
    /* RFC 5322 names days and months in English whatever the locale */
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    long off = tm.tm_gmtoff / 60;
    snprintf(date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
             (off < 0 ? -off : off) % 60);
    int bad_ = buf_printf(out, "Date: %s\r\nFrom: ", date);
    if (from_name && from_name[0]) {
        bad_ = bad_ || encoded_words(from_name, out) || buf_puts(out, " ");
    }
    bad_ = bad_ || buf_printf(out, "<%s>\r\nTo: <%s>\r\nSubject: ", from, to) || encoded_words(subject, out) ||
           buf_printf(out, "\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                           "Content-Transfer-Encoding: base64\r\n\r\n",
                      message_id);
    /* the body with CRLF line ends, in base64 lines of 76 characters */
    buf crlf = {0};
    for (const char *p = body; !bad_ && *p; p++) {
        if (*p == '\n' && (p == body || p[-1] != '\r')) bad_ = buf_putc(&crlf, '\r') != 0;
        bad_ = bad_ || buf_putc(&crlf, *p);
    }
    const unsigned char *src = (const unsigned char *)buf_cstr(&crlf);
    for (size_t i = 0; !bad_ && i < crlf.len; i += 57)
        bad_ = b64(src + i, crlf.len - i > 57 ? 57 : crlf.len - i, out) || buf_puts(out, "\r\n");
    buf_free(&crlf);
    return bad_ ? ERR_NOMEM_RET(e) : 0;
}
