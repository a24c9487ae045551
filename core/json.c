/* json.c - jv trees, the yajl-based parser with limits, and the writer. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

/* ------------------------------------------------------------------ arena */

struct jv_chunk {
    jv_chunk *next;
    size_t size, used;
    max_align_t data[];
};

#define CHUNK_MIN 4096

void jv_arena_init(jv_arena *a, size_t limit)
{
    a->head = NULL;
    a->used_total = 0;
    a->limit = limit;
}

void jv_arena_reset(jv_arena *a)
{
    jv_chunk *c = a->head;
    if (!c) return;
    /* keep the largest chunk only: it is the one a steady workload needs */
    jv_chunk *keep = c;
    for (jv_chunk *p = c; p; p = p->next)
        if (p->size > keep->size) keep = p;
    while (c) {
        jv_chunk *n = c->next;
        if (c != keep) free(c);
        c = n;
    }
    keep->next = NULL;
    keep->used = 0;
    a->head = keep;
    a->used_total = 0;
}

void jv_arena_free(jv_arena *a)
{
    jv_chunk *c = a->head;
    while (c) {
        jv_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used_total = 0;
}

void *jv_alloc(jv_arena *a, size_t n)
{
    const size_t al = sizeof(max_align_t);
    n = (n + al - 1) & ~(al - 1);
    if (n == 0) n = al;
    if (a->limit && a->used_total + n > a->limit) return NULL;
    jv_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = c ? c->size * 2 : CHUNK_MIN;
        if (size > (1u << 20)) size = 1u << 20;
        if (size < n) size = n;
        jv_chunk *nc = malloc(sizeof *nc + size);
        if (!nc) return NULL;
        nc->size = size;
        nc->used = 0;
        nc->next = c;
        a->head = c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->used_total += n;
    return p;
}

char *jv_strdup(jv_arena *a, const char *s, size_t n)
{
    char *p = jv_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ----------------------------------------------------------- construction */

static jv *mk(jv_arena *a, jv_kind k)
{
    jv *v = jv_alloc(a, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->kind = k;
    }
    return v;
}

jv *jv_null(jv_arena *a) { return mk(a, JV_NULL); }

jv *jv_bool(jv_arena *a, int b)
{
    jv *v = mk(a, JV_BOOL);
    if (v) v->u.b = b ? 1 : 0;
    return v;
}

jv *jv_int(jv_arena *a, int64_t i)
{
    jv *v = mk(a, JV_INT);
    if (v) v->u.i = i;
    return v;
}

jv *jv_num(jv_arena *a, double d)
{
    jv *v = mk(a, JV_NUM);
    if (v) v->u.num = d;
    return v;
}

jv *jv_strn(jv_arena *a, const char *s, size_t n)
{
    jv *v = mk(a, JV_STR);
    if (!v) return NULL;
    char *p = jv_strdup(a, s, n);
    if (!p) return NULL;
    v->u.str.s = p;
    v->u.str.len = n;
    return v;
}

jv *jv_str(jv_arena *a, const char *s) { return jv_strn(a, s, strlen(s)); }
jv *jv_arr(jv_arena *a) { return mk(a, JV_ARR); }
jv *jv_obj(jv_arena *a) { return mk(a, JV_OBJ); }

jv *jv_arr_sized(jv_arena *a, size_t n)
{
    jv *v = mk(a, JV_ARR);
    if (v && n) {
        v->u.arr.items = jv_alloc(a, n * sizeof(jv *));
        if (!v->u.arr.items) return NULL;
        v->u.arr.cap = n;
    }
    return v;
}

jv *jv_obj_sized(jv_arena *a, size_t n)
{
    jv *v = mk(a, JV_OBJ);
    if (v && n) {
        v->u.obj.m = jv_alloc(a, n * sizeof(jv_member));
        if (!v->u.obj.m) return NULL;
        v->u.obj.cap = n;
    }
    return v;
}

static int grow(jv_arena *a, void **items, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = jv_alloc(a, ncap * elem);
    if (!p) return ERR_NOMEM;
    if (n) memcpy(p, *items, n * elem);
    *items = p;
    *cap = ncap;
    return 0;
}

int jv_arr_push(jv_arena *a, jv *arr, jv *v)
{
    if (!arr || !v || arr->kind != JV_ARR) return ERR_NOMEM;
    if (grow(a, (void **)&arr->u.arr.items, &arr->u.arr.cap, arr->u.arr.n, sizeof(jv *)))
        return ERR_NOMEM;
    arr->u.arr.items[arr->u.arr.n++] = v;
    return 0;
}

int jv_obj_setn(jv_arena *a, jv *obj, const char *key, size_t klen, jv *v)
{
    if (!obj || !v || obj->kind != JV_OBJ) return ERR_NOMEM;
    if (grow(a, (void **)&obj->u.obj.m, &obj->u.obj.cap, obj->u.obj.n, sizeof(jv_member)))
        return ERR_NOMEM;
    char *k = jv_strdup(a, key, klen);
    if (!k) return ERR_NOMEM;
    jv_member *m = &obj->u.obj.m[obj->u.obj.n++];
    m->key = k;
    m->klen = klen;
    m->val = v;
    return 0;
}

int jv_obj_set(jv_arena *a, jv *obj, const char *key, jv *v)
{
    return jv_obj_setn(a, obj, key, strlen(key), v);
}

int jv_obj_set_str(jv_arena *a, jv *obj, const char *key, const char *s)
{
    return jv_obj_set(a, obj, key, s ? jv_str(a, s) : jv_null(a));
}

int jv_obj_set_int(jv_arena *a, jv *obj, const char *key, int64_t i)
{
    return jv_obj_set(a, obj, key, jv_int(a, i));
}

int jv_obj_set_bool(jv_arena *a, jv *obj, const char *key, int b)
{
    return jv_obj_set(a, obj, key, jv_bool(a, b));
}

jv *jv_copy(jv_arena *a, const jv *v)
{
    switch (v->kind) {
    case JV_NULL: return jv_null(a);
    case JV_BOOL: return jv_bool(a, v->u.b);
    case JV_INT: return jv_int(a, v->u.i);
    case JV_NUM: return jv_num(a, v->u.num);
    case JV_STR: return jv_strn(a, v->u.str.s, v->u.str.len);
    case JV_ARR: {
        jv *r = jv_arr(a);
        for (size_t i = 0; r && i < v->u.arr.n; i++)
            if (jv_arr_push(a, r, jv_copy(a, v->u.arr.items[i]))) return NULL;
        return r;
    }
    case JV_OBJ: {
        jv *r = jv_obj(a);
        for (size_t i = 0; r && i < v->u.obj.n; i++) {
            const jv_member *m = &v->u.obj.m[i];
            if (jv_obj_setn(a, r, m->key, m->klen, jv_copy(a, m->val))) return NULL;
        }
        return r;
    }
    }
    return NULL;
}

/* ----------------------------------------------------------------- access */

const jv *jv_getn(const jv *obj, const char *key, size_t klen)
{
    if (!obj || obj->kind != JV_OBJ) return NULL;
    for (size_t i = 0; i < obj->u.obj.n; i++) {
        const jv_member *m = &obj->u.obj.m[i];
        if (m->klen == klen && memcmp(m->key, key, klen) == 0) return m->val;
    }
    return NULL;
}

const jv *jv_get(const jv *obj, const char *key) { return jv_getn(obj, key, strlen(key)); }

const char *jv_get_str(const jv *obj, const char *key)
{
    const jv *v = jv_get(obj, key);
    return v && v->kind == JV_STR ? v->u.str.s : NULL;
}

int64_t jv_get_int(const jv *obj, const char *key)
{
    const jv *v = jv_get(obj, key);
    return v && v->kind == JV_INT ? v->u.i : 0;
}

const jv *jv_at(const jv *arr, size_t i)
{
    if (!arr || arr->kind != JV_ARR || i >= arr->u.arr.n) return NULL;
    return arr->u.arr.items[i];
}

size_t jv_len(const jv *v)
{
    if (!v) return 0;
    if (v->kind == JV_ARR) return v->u.arr.n;
    if (v->kind == JV_OBJ) return v->u.obj.n;
    return 0;
}

const char *jv_kind_name(jv_kind k)
{
    static const char *names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* The same verdict as jv_diff without writing a description: the audit
 * diff asks this of every field of every audited write. */
int jv_equal(const jv *a, const jv *b)
{
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case JV_NULL: return 1;
    case JV_BOOL: return a->u.b == b->u.b;
    case JV_INT: return a->u.i == b->u.i;
    case JV_NUM: return a->u.num == b->u.num;
    case JV_STR: return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case JV_ARR:
        if (a->u.arr.n != b->u.arr.n) return 0;
        for (size_t i = 0; i < a->u.arr.n; i++)
            if (!jv_equal(a->u.arr.items[i], b->u.arr.items[i])) return 0;
        return 1;
    case JV_OBJ:
        /* every key of a in b with an equal value, and no key of b missing
         * from a (duplicate keys make a count comparison wrong) */
        for (size_t i = 0; i < a->u.obj.n; i++) {
            const jv *bv = jv_getn(b, a->u.obj.m[i].key, a->u.obj.m[i].klen);
            if (!bv || !jv_equal(jv_getn(a, a->u.obj.m[i].key, a->u.obj.m[i].klen), bv)) return 0;
        }
        for (size_t i = 0; i < b->u.obj.n; i++)
            if (!jv_getn(a, b->u.obj.m[i].key, b->u.obj.m[i].klen)) return 0;
        return 1;
    }
    return 0;
}

static void describe(buf *out, const jv *v)
{
    switch (v->kind) {
    case JV_NULL: buf_puts(out, "nil"); break;
    case JV_BOOL: buf_puts(out, v->u.b ? "true" : "false"); break;
    case JV_INT: buf_printf(out, "%" PRId64, v->u.i); break;
    case JV_NUM: buf_printf(out, "%.17g (a float)", v->u.num); break;
    case JV_STR:
        buf_json_str(out, v->u.str.s, v->u.str.len > 80 ? 80 : v->u.str.len);
        break;
    case JV_ARR: buf_printf(out, "a list of %zu", v->u.arr.n); break;
    case JV_OBJ: buf_printf(out, "a table of %zu keys", v->u.obj.n); break;
    }
}

static int diff_at(const jv *x, const jv *y, buf *path, buf *out)
{
    size_t mark = path->len;
#define WHERE (path->len ? path->data : "(result)")
    if (x->kind != y->kind) {
        buf_printf(out, "%s: expected ", WHERE);
        describe(out, x);
        buf_puts(out, ", got ");
        describe(out, y);
        return 1;
    }
    switch (x->kind) {
    case JV_NULL: return 0;
    case JV_BOOL: if (x->u.b == y->u.b) return 0; break;
    case JV_INT: if (x->u.i == y->u.i) return 0; break;
    case JV_NUM: if (x->u.num == y->u.num) return 0; break;
    case JV_STR:
        if (x->u.str.len == y->u.str.len && memcmp(x->u.str.s, y->u.str.s, x->u.str.len) == 0)
            return 0;
        break;
    case JV_ARR: {
        size_t n = x->u.arr.n < y->u.arr.n ? x->u.arr.n : y->u.arr.n;
        for (size_t i = 0; i < n; i++) {
            buf_printf(path, "[%zu]", i + 1);
            if (diff_at(x->u.arr.items[i], y->u.arr.items[i], path, out)) return 1;
            path->len = mark;
            path->data[mark] = '\0';
        }
        if (x->u.arr.n == y->u.arr.n) return 0;
        buf_printf(out, "%s: expected %zu items, got %zu", WHERE, x->u.arr.n, y->u.arr.n);
        return 1;
    }
    case JV_OBJ: {
        for (size_t i = 0; i < x->u.obj.n; i++) {
            const jv_member *m = &x->u.obj.m[i];
            const jv *yv = jv_getn(y, m->key, m->klen);
            if (path->len) buf_putc(path, '.');
            buf_append(path, m->key, m->klen);
            if (!yv) {
                buf_printf(out, "%s: expected ", path->data);
                describe(out, m->val);
                buf_puts(out, ", got nil");
                return 1;
            }
            if (diff_at(m->val, yv, path, out)) return 1;
            path->len = mark;
            if (path->data) path->data[mark] = '\0';
        }
        for (size_t i = 0; i < y->u.obj.n; i++) {
            const jv_member *m = &y->u.obj.m[i];
            if (!jv_getn(x, m->key, m->klen)) {
                if (path->len) buf_putc(path, '.');
                buf_append(path, m->key, m->klen);
                buf_printf(out, "%s: expected nil, got ", path->data);
                describe(out, m->val);
                return 1;
            }
        }
        return 0;
    }
    }
    buf_printf(out, "%s: expected ", WHERE);
    describe(out, x);
    buf_puts(out, ", got ");
    describe(out, y);
    return 1;
#undef WHERE
}

int jv_diff(const jv *expected, const jv *actual, buf *out)
{
    buf path = {0};
    int d = diff_at(expected, actual, &path, out);
    buf_free(&path);
    return d;
}

/* ---------------------------------------------------------------- parsing */

const json_limits json_default_limits = {
    .max_bytes = 1 << 20,
    .max_depth = 32,
    .max_string = 64 * 1024,
    .max_keys = 1000,
    .max_items = 100000,
    .max_nodes = 200000,
};

#define MAX_FRAMES 256

typedef struct frame {
    jv *v;
    const char *key;   /* pending key for an object frame */
    size_t klen;
} frame;

typedef struct pstate {
    jv_arena *a;
    const json_limits *lim;
    err *e;
    frame st[MAX_FRAMES];
    unsigned depth;
    size_t nodes;
    jv *root;
} pstate;

/* The path of the value being parsed when an error strikes. An outer
 * frame is inside its last member (the container being filled); the
 * innermost frame is at its pending key, or at the next array position.
 * Array positions count from 0, as JSON pointers do. */
static void path_of(pstate *p, char *out, size_t n)
{
    size_t off = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < p->depth && off < n; i++) {
        const frame *f = &p->st[i];
        int inner = i + 1 == p->depth, w;
        if (f->v->kind == JV_OBJ) {
            const char *k = inner ? f->key : f->v->u.obj.n ? f->v->u.obj.m[f->v->u.obj.n - 1].key : NULL;
            size_t kl = inner ? f->klen : f->v->u.obj.n ? f->v->u.obj.m[f->v->u.obj.n - 1].klen : 0;
            if (!k) break;
            w = snprintf(out + off, n - off, "%s%.*s", off ? "." : "", (int)(kl > 40 ? 40 : kl), k);
        } else {
            size_t at = inner ? f->v->u.arr.n : f->v->u.arr.n ? f->v->u.arr.n - 1 : 0;
            w = snprintf(out + off, n - off, "[%zu]", at);
        }
        if (w < 0) break;
        off += (size_t)w;
    }
}

int json_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    /* ASCII runs eight bytes at a time: most text is ASCII */
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull) break;
        i += 8;
    }
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        unsigned min;
        if ((c & 0xE0) == 0xC0) { len = 2; c &= 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; c &= 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; c &= 0x07; min = 0x10000; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        /* no overlong forms, no surrogates, nothing past U+10FFFF */
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

static int fail(pstate *p, int code, const char *tag, const char *msg)
{
    if (p->e->code == 0) {
        char path[96];
        path_of(p, path, sizeof path);
        err_field(p->e, code, tag, path, "%s%s%s", msg, path[0] ? " at " : "", path);
    }
    return 0;
}

static int add(pstate *p, jv *v)
{
    if (!v) return fail(p, ERR_NOMEM, "out_of_memory", "out of memory");
    if (++p->nodes > p->lim->max_nodes)
        return fail(p, ERR_LIMIT, "json_too_many_values", "too many values in the document");
    if (p->depth == 0) {
        p->root = v;
        return 1;
    }
    frame *f = &p->st[p->depth - 1];
    if (f->v->kind == JV_ARR) {
        if (f->v->u.arr.n >= p->lim->max_items)
            return fail(p, ERR_LIMIT, "json_too_many_items", "too many items in an array");
        if (jv_arr_push(p->a, f->v, v)) return fail(p, ERR_NOMEM, "out_of_memory", "out of memory");
    } else {
        if (jv_obj_setn(p->a, f->v, f->key, f->klen, v))
            return fail(p, ERR_NOMEM, "out_of_memory", "out of memory");
        f->key = NULL;
    }
    return 1;
}

static int cb_null(void *ctx) { pstate *p = ctx; return add(p, jv_null(p->a)); }
static int cb_bool(void *ctx, int b) { pstate *p = ctx; return add(p, jv_bool(p->a, b)); }

static int cb_number(void *ctx, const char *s, size_t n)
{
    pstate *p = ctx;
    int integral = 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') integral = 0;
    if (integral) {
        size_t i = 0;
        int neg = 0;
        if (s[0] == '-') { neg = 1; i = 1; }
        uint64_t acc = 0;
        const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (; i < n; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (acc > (lim - d) / 10)
                return fail(p, ERR_INVALID, "json_number_out_of_range", "integer out of range");
            acc = acc * 10 + d;
        }
        int64_t v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
        return add(p, jv_int(p->a, v));
    }
    char tmp[64];
    if (n >= sizeof tmp) return fail(p, ERR_INVALID, "json_number_out_of_range", "number too long");
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    double d = strtod(tmp, NULL);
    if (errno == ERANGE || !isfinite(d))
        return fail(p, ERR_INVALID, "json_number_out_of_range", "number out of range");
    return add(p, jv_num(p->a, d));
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    pstate *p = ctx;
    if (n > p->lim->max_string)
        return fail(p, ERR_LIMIT, "json_string_too_long", "string too long");
    /* yajl's own check lets overlong forms and surrogates through */
    if (!json_utf8_valid((const char *)s, n)) return fail(p, ERR_INVALID, "invalid_json", "invalid UTF-8 in a string");
    return add(p, jv_strn(p->a, (const char *)s, n));
}

static int open_container(pstate *p, jv *v)
{
    if (!v) return fail(p, ERR_NOMEM, "out_of_memory", "out of memory");
    if (p->depth >= p->lim->max_depth || p->depth >= MAX_FRAMES)
        return fail(p, ERR_LIMIT, "json_too_deep", "nesting too deep");
    if (!add(p, v)) return 0;
    frame *f = &p->st[p->depth++];
    f->v = v;
    f->key = NULL;
    f->klen = 0;
    return 1;
}

static int cb_start_map(void *ctx) { pstate *p = ctx; return open_container(p, jv_obj(p->a)); }
static int cb_start_array(void *ctx) { pstate *p = ctx; return open_container(p, jv_arr(p->a)); }
static int cb_end(void *ctx) { pstate *p = ctx; p->depth--; return 1; }

static int cb_map_key(void *ctx, const unsigned char *k, size_t n)
{
    pstate *p = ctx;
    frame *f = &p->st[p->depth - 1];
    if (n > p->lim->max_string) return fail(p, ERR_LIMIT, "json_string_too_long", "key too long");
    if (!json_utf8_valid((const char *)k, n)) return fail(p, ERR_INVALID, "invalid_json", "invalid UTF-8 in a key");
    if (f->v->u.obj.n >= p->lim->max_keys)
        return fail(p, ERR_LIMIT, "json_too_many_keys", "too many keys in an object");
    if (jv_getn(f->v, (const char *)k, n)) {
        f->key = (const char *)k;
        f->klen = n;
        return fail(p, ERR_INVALID, "json_duplicate_key", "duplicate key");
    }
    char *kk = jv_strdup(p->a, (const char *)k, n);
    if (!kk) return fail(p, ERR_NOMEM, "out_of_memory", "out of memory");
    f->key = kk;
    f->klen = n;
    return 1;
}

static const yajl_callbacks callbacks = {
    cb_null, cb_bool, NULL, NULL, cb_number, cb_string,
    cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

int json_parse(const char *text, size_t len, const json_limits *lim, jv_arena *a, jv **out, err *e)
{
    if (!lim) lim = &json_default_limits;
    err local;
    if (!e) e = &local;
    err_clear(e);
    *out = NULL;
    if (len > lim->max_bytes)
        return err_field(e, ERR_LIMIT, "json_too_large", "", "JSON document of %zu bytes exceeds the limit of %zu", len, lim->max_bytes);
    pstate p = {.a = a, .lim = lim, .e = e};
    yajl_handle h = yajl_alloc(&callbacks, NULL, &p);
    if (!h) return err_set(e, ERR_NOMEM, "out of memory");
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok) st = yajl_complete_parse(h);
    int rc = 0;
    if (st != yajl_status_ok) {
        if (e->code == 0) {
            unsigned char *m = yajl_get_error(h, 0, (const unsigned char *)text, len);
            size_t off = yajl_get_bytes_consumed(h);
            /* yajl's text spans lines (it draws an arrow under the input) */
            char what[256];
            snprintf(what, sizeof what, "%s", m ? (const char *)m : "parse error");
            char *nl = strchr(what, '\n');
            if (nl) *nl = '\0';
            err_field(e, ERR_INVALID, "invalid_json", "", "invalid JSON near byte %zu: %s", off, what);
            if (m) yajl_free_error(h, m);
        }
        rc = e->code;
    } else if (!p.root) {
        rc = err_field(e, ERR_INVALID, "invalid_json", "", "empty JSON document");
    } else {
        *out = p.root;
    }
    yajl_free(h);
    return rc;
}

/* ----------------------------------------------------------------- writer */

int jw_init(jw *w, int pretty)
{
    w->rc = 0;
    w->g = yajl_gen_alloc(NULL);
    if (!w->g) return ERR_NOMEM;
    yajl_gen_config(w->g, yajl_gen_validate_utf8, 1);
    if (pretty) {
        yajl_gen_config(w->g, yajl_gen_beautify, 1);
        yajl_gen_config(w->g, yajl_gen_indent_string, "  ");
    }
    return 0;
}

void jw_free(jw *w)
{
    if (w->g) yajl_gen_free(w->g);
    w->g = NULL;
}

#define JW(call) do { if (w->rc == 0 && (call) != yajl_gen_status_ok) w->rc = ERR_INVALID; } while (0)

void jw_obj_open(jw *w) { JW(yajl_gen_map_open(w->g)); }
void jw_obj_close(jw *w) { JW(yajl_gen_map_close(w->g)); }
void jw_arr_open(jw *w) { JW(yajl_gen_array_open(w->g)); }
void jw_arr_close(jw *w) { JW(yajl_gen_array_close(w->g)); }
void jw_key(jw *w, const char *k) { JW(yajl_gen_string(w->g, (const unsigned char *)k, strlen(k))); }
void jw_strn(jw *w, const char *s, size_t n) { JW(yajl_gen_string(w->g, (const unsigned char *)s, n)); }
void jw_str(jw *w, const char *s)
{
    if (!s) jw_null(w);
    else jw_strn(w, s, strlen(s));
}
void jw_int(jw *w, int64_t i) { JW(yajl_gen_integer(w->g, (long long)i)); }
void jw_bool(jw *w, int b) { JW(yajl_gen_bool(w->g, b)); }
void jw_null(jw *w) { JW(yajl_gen_null(w->g)); }
void jw_raw_num(jw *w, const char *d) { JW(yajl_gen_number(w->g, d, strlen(d))); }
void jw_kv_str(jw *w, const char *k, const char *s) { jw_key(w, k); jw_str(w, s); }
void jw_kv_int(jw *w, const char *k, int64_t i) { jw_key(w, k); jw_int(w, i); }
void jw_kv_bool(jw *w, const char *k, int b) { jw_key(w, k); jw_bool(w, b); }

static int member_cmp(const jv_member *a, const jv_member *b)
{
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int r = memcmp(a->key, b->key, n);
    return r ? r : (a->klen > b->klen) - (a->klen < b->klen);
}

void jw_jv(jw *w, const jv *v)
{
    switch (v->kind) {
    case JV_NULL: jw_null(w); break;
    case JV_BOOL: jw_bool(w, v->u.b); break;
    case JV_INT: jw_int(w, v->u.i); break;
    case JV_NUM: {
        char tmp[40];
        if (!isfinite(v->u.num)) { jw_null(w); break; }
        snprintf(tmp, sizeof tmp, "%.17g", v->u.num);
        /* keep it recognisably non-integral so a reader does not mistake it for fen */
        if (!strpbrk(tmp, ".eEn")) strcat(tmp, ".0");
        jw_raw_num(w, tmp);
        break;
    }
    case JV_STR: jw_strn(w, v->u.str.s, v->u.str.len); break;
    case JV_ARR:
        jw_arr_open(w);
        for (size_t i = 0; i < v->u.arr.n; i++) jw_jv(w, v->u.arr.items[i]);
        jw_arr_close(w);
        break;
    case JV_OBJ: {
        /* keys in byte order: the same value always serialises the same
         * way, whatever order a Lua table happened to iterate in */
        const jv_member *small[32], **ord = small;
        size_t n = v->u.obj.n;
        if (n > 32 && !(ord = malloc(n * sizeof *ord))) {
            w->rc = ERR_NOMEM;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const jv_member *m = &v->u.obj.m[i];
            size_t j = i;
            while (j > 0 && member_cmp(m, ord[j - 1]) < 0) {
                ord[j] = ord[j - 1];
                j--;
            }
            ord[j] = m;
        }
        jw_obj_open(w);
        for (size_t i = 0; i < n; i++) {
            jw_strn(w, ord[i]->key, ord[i]->klen);
            jw_jv(w, ord[i]->val);
        }
        jw_obj_close(w);
        if (ord != small) free(ord);
        break;
    }
    }
}

const char *jw_finish(jw *w, size_t *len)
{
    const unsigned char *p = NULL;
    size_t n = 0;
    if (w->rc || yajl_gen_get_buf(w->g, &p, &n) != yajl_gen_status_ok) return NULL;
    if (len) *len = n;
    return (const char *)p;
}

int json_write(buf *b, const jv *v)
{
    jw w;
    if (jw_init(&w, 0)) return ERR_NOMEM;
    jw_jv(&w, v);
    size_t n;
    const char *s = jw_finish(&w, &n);
    int rc = s ? buf_append(b, s, n) : ERR_INVALID;
    jw_free(&w);
    return rc;
}
