/* fuzz_json.c - json_parse under tight limits, then a write/reparse round trip.
 *
 * Any document that parses must serialise (json_write), the output must parse
 * again under the same structural limits, and the two trees must be equal
 * (jv_equal). Failures of the parser itself (bad input, limits, arena full)
 * are fine; anything ASan/UBSan/LSan reports is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "json.h"

static const json_limits limits = {
    .max_bytes = 64 * 1024,
    .max_depth = 16,
    .max_string = 1024,
    .max_keys = 64,
    .max_items = 256,
    .max_nodes = 4096,
};

#define ARENA_LIMIT (1u << 20)

static void die(const char *what, const char *detail, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_json: %s: %s\ninput (%zu bytes): %.*s\n", what, detail, size,
            (int)(size > 2000 ? 2000 : size), (const char *)data);
    abort();
}

/* The limits hold for the tree: nesting, items, keys, string sizes, nodes. */
static int within_limits(const jv *v, unsigned depth, size_t *nodes)
{
    if (++*nodes > limits.max_nodes) return 0;
    switch (v->kind) {
    case JV_STR: return v->u.str.len <= limits.max_string;
    case JV_ARR:
        if (depth + 1 > limits.max_depth || v->u.arr.n > limits.max_items) return 0;
        for (size_t i = 0; i < v->u.arr.n; i++)
            if (!within_limits(v->u.arr.items[i], depth + 1, nodes)) return 0;
        return 1;
    case JV_OBJ:
        if (depth + 1 > limits.max_depth || v->u.obj.n > limits.max_keys) return 0;
        for (size_t i = 0; i < v->u.obj.n; i++) {
            const jv_member *m = &v->u.obj.m[i];
            if (m->klen > limits.max_string || strlen(m->key) > m->klen) return 0;
            /* no duplicate keys (the parser refuses them) */
            for (size_t k = 0; k < i; k++)
                if (v->u.obj.m[k].klen == m->klen && memcmp(v->u.obj.m[k].key, m->key, m->klen) == 0)
                    return 0;
            if (!within_limits(m->val, depth + 1, nodes)) return 0;
        }
        return 1;
    default: return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jv_arena a;
    jv_arena_init(&a, ARENA_LIMIT);
    jv *v = NULL;
    err e;
    int rc = json_parse((const char *)data, size, &limits, &a, &v, &e);
    if (rc) {
        if (e.code != rc || !e.msg[0]) die("error without a message", e.msg, data, size);
        jv_arena_free(&a);
        return 0;
    }
    if (!v) die("json_parse returned 0 and no value", "", data, size);

    size_t nodes = 0;
    if (!within_limits(v, 0, &nodes)) die("parsed tree breaks the limits", "", data, size);

    buf out = {0};
    rc = json_write(&out, v);
    if (rc) die("json_write failed on a parsed value", err_code_name(rc), data, size);

    /* The text may grow when written ("1e2" -> "100.0", "\u00e9" stays
     * escaped as UTF-8...), so only the size limit is relaxed. */
    json_limits relaxed = limits;
    relaxed.max_bytes = 4u << 20;
    jv_arena b;
    jv_arena_init(&b, 4 * ARENA_LIMIT);
    jv *w = NULL;
    err e2;
    rc = json_parse(buf_cstr(&out), out.len, &relaxed, &b, &w, &e2);
    if (rc) die("reparse of json_write output failed", e2.msg, (const uint8_t *)buf_cstr(&out), out.len);
    if (!jv_equal(v, w)) {
        buf d = {0};
        jv_diff(v, w, &d);
        fprintf(stderr, "written: %s\n", buf_cstr(&out));
        die("round trip changed the value", buf_cstr(&d), data, size);
    }
    /* and writing is deterministic */
    buf out2 = {0};
    if (json_write(&out2, w) || out2.len != out.len || memcmp(out2.data, out.data, out.len) != 0)
        die("second write differs", buf_cstr(&out2), (const uint8_t *)buf_cstr(&out), out.len);

    /* jv_copy must give an equal tree, in a fresh arena */
    jv_arena c;
    jv_arena_init(&c, 4 * ARENA_LIMIT);
    jv *cp = jv_copy(&c, v);
    if (!cp || !jv_equal(v, cp)) die("jv_copy differs", "", data, size);

    buf_free(&out2);
    buf_free(&out);
    jv_arena_free(&c);
    jv_arena_free(&b);
    jv_arena_free(&a);
    return 0;
}
