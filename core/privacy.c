/* privacy.c - masking and per-role field visibility. */
#include "privacy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const sensitive_field privacy_fields[] = {
    {"user", "email", MASK_EMAIL},
    {"user", "phone", MASK_PHONE},
    {"customer", "name", MASK_NAME},
    {"customer", "id_card", MASK_IDCARD},
    {"customer", "phone", MASK_PHONE},
    {"customer", "phone2", MASK_PHONE},
    {"customer", "email", MASK_EMAIL},
    {"customer", "address", MASK_ADDRESS},
    {"customer", "billing_address", MASK_ADDRESS},
    {"customer", "notes", MASK_TEXT},
    {"service_account", "password", MASK_SECRET},
    {"invoice", "customer_name", MASK_NAME},
    {"invoice", "service_address", MASK_ADDRESS},
    {"invoice", "billing_address", MASK_ADDRESS},
    {"payment_account", "account_no", MASK_ACCOUNT},
    {"message", "phone", MASK_PHONE},
    {"message", "email", MASK_EMAIL},
    {"message", "openid", MASK_ACCOUNT},
    {"customer", "wechat_openid", MASK_ACCOUNT},
};
const int privacy_fields_count = sizeof privacy_fields / sizeof *privacy_fields;

const char *visibility_name(visibility v)
{
    return v == VIS_HIDDEN ? "hidden" : v == VIS_MASKED ? "masked" : "clear";
}

int visibility_parse(const char *s, visibility *out)
{
    if (!strcmp(s, "hidden")) *out = VIS_HIDDEN;
    else if (!strcmp(s, "masked")) *out = VIS_MASKED;
    else if (!strcmp(s, "clear")) *out = VIS_CLEAR;
    else return -1;
    return 0;
}

static const sensitive_field *find(const char *resource, const char *field, size_t flen)
{
    for (int i = 0; i < privacy_fields_count; i++)
        if (!strcmp(privacy_fields[i].resource, resource) && strlen(privacy_fields[i].field) == flen &&
            !memcmp(privacy_fields[i].field, field, flen))
            return &privacy_fields[i];
    return NULL;
}

/* ----------------------------------------------------------------- masks */

/* Length in bytes of the UTF-8 character starting at s. */
static size_t u8len(unsigned char c)
{
    return c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
}

static size_t count_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i += u8len((unsigned char)s[i])) c++;
    return c;
}

static void stars(buf *out, size_t k)
{
    for (size_t i = 0; i < k; i++) buf_putc(out, '*');
}

/* keep `head` bytes and `tail` bytes, stars in between (at least one) */
static void keep_ends(const char *s, size_t n, size_t head, size_t tail, buf *out)
{
    if (n <= head + tail) {
        /* too short to show both ends: show only the last two */
        size_t keep = n > 2 ? 2 : n / 2;
        stars(out, n - keep);
        buf_append(out, s + n - keep, keep);
        return;
    }
    buf_append(out, s, head);
    stars(out, n - head - tail);
    buf_append(out, s + n - tail, tail);
}

void privacy_mask_text(mask_kind kind, const char *s, size_t n, buf *out)
{
    switch (kind) {
    case MASK_PHONE: keep_ends(s, n, 3, 4, out); break;
    case MASK_IDCARD: keep_ends(s, n, 4, 4, out); break;
    case MASK_ACCOUNT:
        if (n > 4) {
            stars(out, n - 4);
            buf_append(out, s + n - 4, 4);
        } else {
            stars(out, n);
        }
        break;
    case MASK_NAME: {
        /* the first character, then one star per remaining character; a
         * one-character name shows nothing */
        if (n == 0) break;
        size_t first = u8len((unsigned char)s[0]);
        if (first >= n) {
            buf_putc(out, '*');
            break;
        }
        buf_append(out, s, first);
        stars(out, count_chars(s + first, n - first));
        break;
    }
    case MASK_EMAIL: {
        const char *at = memchr(s, '@', n);
        if (!at || at == s) {
            stars(out, n);
            break;
        }
        /* the first letter only when something is left to hide */
        size_t local = (size_t)(at - s);
        if (local >= 2) buf_append(out, s, 1);
        stars(out, local >= 2 ? local - 1 : 1);
        buf_append(out, at, n - local);
        break;
    }
    case MASK_ADDRESS: {
        /* free text: the first three characters */
        size_t i = 0;
        for (int k = 0; k < 3 && i < n; k++) i += u8len((unsigned char)s[i]);
        if (i > n) i = n;
        buf_append(out, s, i);
        stars(out, count_chars(s + i, n - i));
        break;
    }
    case MASK_SECRET: buf_puts(out, "******"); break;
    case MASK_TEXT: {
        /* nothing of the text: notes hold gate codes, relatives' numbers */
        char t[48];
        size_t k = count_chars(s, n);
        snprintf(t, sizeof t, "(%zu character%s)", k, k == 1 ? "" : "s");
        buf_puts(out, t);
        break;
    }
    }
}

/* The parts of a structured address that stay visible when masked. */
static int address_public(const char *k, size_t n)
{
    static const char *const keep[] = {"province", "city", "district", "gis_code", NULL};
    for (const char *const *p = keep; *p; p++)
        if (strlen(*p) == n && !memcmp(*p, k, n)) return 1;
    return 0;
}

static jv *masked_value(jv_arena *a, mask_kind kind, const jv *v)
{
    if (v->kind == JV_NULL) return jv_null(a);
    if (kind == MASK_ADDRESS && v->kind == JV_OBJ) {
        jv *o = jv_obj_sized(a, v->u.obj.n);
        for (size_t i = 0; o && i < v->u.obj.n; i++) {
            const jv_member *m = &v->u.obj.m[i];
            jv *mv;
            if (address_public(m->key, m->klen) || m->val->kind != JV_STR || m->val->u.str.len == 0) mv = jv_copy(a, m->val);
            else mv = jv_str(a, "*");
            if (jv_obj_setn(a, o, m->key, m->klen, mv)) return NULL;
        }
        return o;
    }
    if (v->kind != JV_STR) return jv_str(a, "******");
    buf b = {0};
    privacy_mask_text(kind, v->u.str.s, v->u.str.len, &b);
    jv *r = jv_strn(a, buf_cstr(&b), b.len);
    buf_free(&b);
    return r;
}

jv *privacy_masked_copy(jv_arena *a, const char *resource, const jv *obj)
{
    if (!obj) return NULL;
    jv *c = jv_copy(a, obj);
    if (!c || c->kind != JV_OBJ || !resource) return c;
    for (size_t i = 0; i < c->u.obj.n; i++) {
        jv_member *m = &c->u.obj.m[i];
        const sensitive_field *f = find(resource, m->key, m->klen);
        if (f && !(m->val = masked_value(a, f->kind, m->val))) return NULL;
    }
    return c;
}

/* -------------------------------------------------------------- policies */

typedef struct policy {
    char role[32], resource[32], field[48];
    visibility level;
} policy;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static policy *g_policies;
static size_t g_npolicies;
static int g_loaded;

void privacy_reload(void)
{
    pthread_mutex_lock(&g_lock);
    free(g_policies);
    g_policies = NULL;
    g_npolicies = 0;
    g_loaded = 0;
    pthread_mutex_unlock(&g_lock);
}

static void load(db *d)
{
    err e;
    db_stmt *s = db_prepare(d, "SELECT role, resource, field, level FROM field_policies", &e);
    if (!s) return;
    size_t cap = 0;
    while (db_step(d, s, &e) == DB_ROW) {
        if (g_npolicies == cap) {
            cap = cap ? cap * 2 : 64;
            policy *np = realloc(g_policies, cap * sizeof *np);
            if (!np) break;
            g_policies = np;
        }
        policy *p = &g_policies[g_npolicies];
        snprintf(p->role, sizeof p->role, "%s", db_col_text(s, 0));
        snprintf(p->resource, sizeof p->resource, "%s", db_col_text(s, 1));
        snprintf(p->field, sizeof p->field, "%s", db_col_text(s, 2));
        if (visibility_parse(db_col_text(s, 3), &p->level)) p->level = VIS_MASKED;
        g_npolicies++;
    }
    db_done(s);
    g_loaded = 1;
}

visibility privacy_level(db *d, const char *role, const char *resource, const char *field)
{
    if (!find(resource, field, strlen(field))) return VIS_CLEAR;
    visibility v = VIS_MASKED; /* a sensitive field without a policy is masked */
    pthread_mutex_lock(&g_lock);
    if (!g_loaded) load(d);
    for (size_t i = 0; i < g_npolicies; i++) {
        const policy *p = &g_policies[i];
        if (!strcmp(p->role, role) && !strcmp(p->resource, resource) && !strcmp(p->field, field)) {
            v = p->level;
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return v;
}

int privacy_filter(db *d, jv_arena *a, const char *role, const char *resource, jv *obj, buf *clear, err *e)
{
    if (!obj || obj->kind != JV_OBJ) return 0;
    size_t w = 0;
    for (size_t i = 0; i < obj->u.obj.n; i++) {
        jv_member m = obj->u.obj.m[i];
        const sensitive_field *f = find(resource, m.key, m.klen);
        if (f) {
            visibility v = privacy_level(d, role, resource, f->field);
            if (v == VIS_HIDDEN) continue;
            if (v == VIS_MASKED) {
                if (!(m.val = masked_value(a, f->kind, m.val))) return ERR_NOMEM_RET(e);
            } else if (clear && m.val->kind != JV_NULL && !(m.val->kind == JV_STR && m.val->u.str.len == 0)) {
                if (clear->len) buf_putc(clear, ',');
                buf_puts(clear, f->field);
            }
        }
        obj->u.obj.m[w++] = m;
    }
    obj->u.obj.n = w;
    return 0;
}
