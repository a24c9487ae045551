/* json.h - JSON values (jv) in an arena, a limited parser and a writer.
 *
 * jv is the neutral data tree of the core: request bodies are parsed into it,
 * rule contexts are built from it and rule results are read back into it.
 * Every jv lives in a jv_arena and is freed with the arena, never alone.
 *
 * Numbers: integers are kept exactly as int64 (JV_INT); anything with a
 * fraction or exponent is JV_NUM (a double) and is never accepted as money. */
#ifndef BB_JSON_H
#define BB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>

#include "buf.h"
#include "err.h"

typedef enum { JV_NULL, JV_BOOL, JV_INT, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_kind;

typedef struct jv jv;
typedef struct jv_member { const char *key; size_t klen; jv *val; } jv_member;

struct jv {
    jv_kind kind;
    union {
        int b;
        int64_t i;
        double num;
        struct { const char *s; size_t len; } str;
        struct { jv **items; size_t n, cap; } arr;
        struct { jv_member *m; size_t n, cap; } obj;
    } u;
};

/* ---- arena ---- */
typedef struct jv_chunk jv_chunk;
typedef struct jv_arena {
    jv_chunk *head;
    size_t used_total;    /* bytes handed out since init/reset */
    size_t limit;         /* 0 = unlimited */
} jv_arena;

void jv_arena_init(jv_arena *a, size_t limit);
/* Frees every chunk but the first, so a reused arena stops allocating. */
void jv_arena_reset(jv_arena *a);
void jv_arena_free(jv_arena *a);
/* NULL when out of memory or over the arena's limit. */
void *jv_alloc(jv_arena *a, size_t n);
char *jv_strdup(jv_arena *a, const char *s, size_t n);

/* ---- construction (all return NULL on allocation failure) ---- */
jv *jv_null(jv_arena *a);
jv *jv_bool(jv_arena *a, int b);
jv *jv_int(jv_arena *a, int64_t i);
jv *jv_num(jv_arena *a, double d);
jv *jv_str(jv_arena *a, const char *s);           /* copies */
jv *jv_strn(jv_arena *a, const char *s, size_t n); /* copies */
jv *jv_arr(jv_arena *a);
jv *jv_obj(jv_arena *a);
/* The same with room for n items or members (no regrowth up to n). */
jv *jv_arr_sized(jv_arena *a, size_t n);
jv *jv_obj_sized(jv_arena *a, size_t n);
/* Append / set; return 0 or ERR_NOMEM. jv_obj_set does not check for an
 * existing key (the builder's caller knows its keys). */
int jv_arr_push(jv_arena *a, jv *arr, jv *v);
int jv_obj_set(jv_arena *a, jv *obj, const char *key, jv *v);
int jv_obj_setn(jv_arena *a, jv *obj, const char *key, size_t klen, jv *v);
/* Convenience setters: return 0 or ERR_NOMEM. */
int jv_obj_set_str(jv_arena *a, jv *obj, const char *key, const char *s);
int jv_obj_set_int(jv_arena *a, jv *obj, const char *key, int64_t i);
int jv_obj_set_bool(jv_arena *a, jv *obj, const char *key, int b);
/* Deep copy into another arena. */
jv *jv_copy(jv_arena *a, const jv *v);

/* ---- access ---- */
const jv *jv_get(const jv *obj, const char *key);   /* NULL if absent or not an object */
/* The member key when it is a string, else NULL. */
const char *jv_get_str(const jv *obj, const char *key);
/* The member key when it is a whole number, else 0. */
int64_t jv_get_int(const jv *obj, const char *key);
const jv *jv_getn(const jv *obj, const char *key, size_t klen);
const jv *jv_at(const jv *arr, size_t i);
size_t jv_len(const jv *v);                          /* items or members; 0 otherwise */
const char *jv_kind_name(jv_kind k);
int jv_equal(const jv *a, const jv *b);
/* Finds the first difference between two values, writing a path such as
 * "lines[2].amount" and a description into `out`. Returns 1 if they differ. */
int jv_diff(const jv *expected, const jv *actual, buf *out);

/* ---- parsing ---- */
typedef struct json_limits {
    size_t max_bytes;     /* whole document */
    unsigned max_depth;   /* nesting of arrays/objects */
    size_t max_string;    /* bytes in one string or key */
    size_t max_keys;      /* members in one object */
    size_t max_items;     /* items in one array */
    size_t max_nodes;     /* values in the whole document */
} json_limits;

extern const json_limits json_default_limits;

/* Parses `len` bytes of UTF-8 JSON into `*out` (allocated in `a`).
 * On failure returns ERR_INVALID or ERR_LIMIT with e->tag one of
 * invalid_json, json_too_large, json_too_deep, json_string_too_long,
 * json_too_many_keys, json_too_many_items, json_too_many_values,
 * json_duplicate_key, json_number_out_of_range; e->field holds the JSON path. */
int json_parse(const char *text, size_t len, const json_limits *lim,
               jv_arena *a, jv **out, err *e);

/* 1 if s is well-formed UTF-8: shortest forms, no surrogates, at most
 * U+10FFFF. */
int json_utf8_valid(const char *s, size_t n);

/* ---- writing ---- */
/* A thin writer over yajl_gen. Errors stick in `rc` and are reported by
 * jw_finish, so handlers write straight-line code. */
typedef struct jw {
    yajl_gen g;
    int rc;
} jw;

int jw_init(jw *w, int pretty);
void jw_free(jw *w);
void jw_obj_open(jw *w);
void jw_obj_close(jw *w);
void jw_arr_open(jw *w);
void jw_arr_close(jw *w);
void jw_key(jw *w, const char *k);
void jw_str(jw *w, const char *s);       /* NULL writes null */
void jw_strn(jw *w, const char *s, size_t n);
void jw_int(jw *w, int64_t i);
void jw_bool(jw *w, int b);
void jw_null(jw *w);
void jw_raw_num(jw *w, const char *digits);
/* Writes v; object keys come out in byte order (deterministic output). */
void jw_jv(jw *w, const jv *v);
void jw_kv_str(jw *w, const char *k, const char *s);
void jw_kv_int(jw *w, const char *k, int64_t i);
void jw_kv_bool(jw *w, const char *k, int b);
/* Returns the document (owned by w until jw_free) or NULL when a write failed. */
const char *jw_finish(jw *w, size_t *len);

/* Serialises v into b (compact). */
int json_write(buf *b, const jv *v);

#endif
