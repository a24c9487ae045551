/* test_json.c - jv values, the arena, the limited parser, jv_diff and the
 * writer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Each test gets a fresh unlimited arena in *state. */
static int arena_setup(void **state)
{
    jv_arena *a = malloc(sizeof *a);
    if (!a) return -1;
    jv_arena_init(a, 0);
    *state = a;
    return 0;
}

static int arena_teardown(void **state)
{
    jv_arena *a = *state;
    jv_arena_free(a);
    free(a);
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, arena_setup, arena_teardown)

static jv *parse_lim(jv_arena *a, const char *text, const json_limits *lim)
{
    jv *v = NULL;
    err e;
    err_clear(&e);
    int rc = json_parse(text, strlen(text), lim, a, &v, &e);
    if (rc) print_error("json_parse(%s): %s [%s] field \"%s\"\n", text, e.msg, e.tag, e.field);
    assert_int_equal(rc, 0);
    assert_non_null(v);
    return v;
}

static jv *parse(jv_arena *a, const char *text) { return parse_lim(a, text, NULL); }

/* Parses text expecting a failure; returns the error. */
static err parse_err_n(jv_arena *a, const char *text, size_t len, const json_limits *lim, int code,
                       const char *tag)
{
    jv *v = (jv *)1;
    err e;
    err_clear(&e);
    int rc = json_parse(text, len, lim, a, &v, &e);
    if (rc != code || strcmp(err_tag(&e), tag) != 0)
        print_error("json_parse(%.*s): rc %d tag \"%s\" msg \"%s\"; want rc %d tag %s\n", (int)len, text, rc,
                    err_tag(&e), e.msg, code, tag);
    assert_int_equal(rc, code);
    assert_int_equal(e.code, code);
    assert_string_equal(err_tag(&e), tag);
    assert_null(v);
    assert_true(e.msg[0] != '\0');
    return e;
}

static err parse_err(jv_arena *a, const char *text, const json_limits *lim, int code, const char *tag)
{
    return parse_err_n(a, text, strlen(text), lim, code, tag);
}

static void check_field(jv_arena *a, const char *text, const json_limits *lim, int code, const char *tag,
                        const char *field)
{
    err e = parse_err(a, text, lim, code, tag);
    if (strcmp(e.field, field) != 0)
        print_error("json_parse(%s): field \"%s\", want \"%s\" (%s)\n", text, e.field, field, e.msg);
    assert_string_equal(e.field, field);
}

static json_limits big_limits(void)
{
    json_limits l = json_default_limits;
    return l;
}

/* The first difference as jv_diff words it ("" when equal). */
static void check_diff(jv_arena *a, const char *expected, const char *actual, const char *want)
{
    buf out = {0};
    int d = jv_diff(parse(a, expected), parse(a, actual), &out);
    if (strcmp(buf_cstr(&out), want) != 0)
        print_error("jv_diff(%s, %s) = \"%s\", want \"%s\"\n", expected, actual, buf_cstr(&out), want);
    assert_int_equal(d, want[0] != '\0');
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
}

/* ------------------------------------------------------------- scalars */

static void test_parse_null_and_booleans(void **state)
{
    jv_arena *a = *state;
    assert_int_equal(parse(a, "null")->kind, JV_NULL);
    jv *t = parse(a, "true"), *f = parse(a, "false");
    assert_int_equal(t->kind, JV_BOOL);
    assert_int_equal(t->u.b, 1);
    assert_int_equal(f->kind, JV_BOOL);
    assert_int_equal(f->u.b, 0);
}

static void test_parse_integers_are_exact_int64(void **state)
{
    jv_arena *a = *state;
    jv *v = parse(a, "42");
    assert_int_equal(v->kind, JV_INT);
    assert_int_equal(v->u.i, 42);
    v = parse(a, "-7");
    assert_int_equal(v->kind, JV_INT);
    assert_int_equal(v->u.i, -7);
    v = parse(a, "0");
    assert_int_equal(v->kind, JV_INT);
    assert_int_equal(v->u.i, 0);
    v = parse(a, "-0");
    assert_int_equal(v->kind, JV_INT);
    assert_int_equal(v->u.i, 0);
    /* 2^53 + 1 is not representable as a double: must stay exact */
    v = parse(a, "9007199254740993");
    assert_int_equal(v->kind, JV_INT);
    assert_int_equal(v->u.i, 9007199254740993LL);
}

static void test_parse_int64_extremes(void **state)
{
    jv_arena *a = *state;
    jv *v = parse(a, "9223372036854775807");
    assert_int_equal(v->kind, JV_INT);
    assert_int_equal(v->u.i, INT64_MAX);
    v = parse(a, "-9223372036854775808");
    assert_int_equal(v->kind, JV_INT);
    assert_int_equal(v->u.i, INT64_MIN);
}

static void test_parse_integer_out_of_range(void **state)
{
    jv_arena *a = *state;
    parse_err(a, "9223372036854775808", NULL, ERR_INVALID, "json_number_out_of_range");   /* INT64_MAX + 1 */
    parse_err(a, "-9223372036854775809", NULL, ERR_INVALID, "json_number_out_of_range");  /* INT64_MIN - 1 */
    parse_err(a, "99999999999999999999", NULL, ERR_INVALID, "json_number_out_of_range");
    parse_err(a, "18446744073709551616", NULL, ERR_INVALID, "json_number_out_of_range");  /* 2^64 */
    /* its place in the document */
    check_field(a, "[1, 99999999999999999999]", NULL, ERR_INVALID, "json_number_out_of_range", "[1]");
    check_field(a, "{\"fen\": 9223372036854775808}", NULL, ERR_INVALID, "json_number_out_of_range", "fen");
}

static void test_parse_fraction_or_exponent_is_num(void **state)
{
    jv_arena *a = *state;
    jv *v = parse(a, "1.5");
    assert_int_equal(v->kind, JV_NUM);
    assert_true(v->u.num == 1.5);
    v = parse(a, "1e3");
    assert_int_equal(v->kind, JV_NUM);
    assert_true(v->u.num == 1000.0);
    v = parse(a, "1.0");   /* integral value, but written as a fraction */
    assert_int_equal(v->kind, JV_NUM);
    assert_true(v->u.num == 1.0);
    v = parse(a, "-2.5E-1");
    assert_int_equal(v->kind, JV_NUM);
    assert_true(v->u.num == -0.25);
}

static void test_parse_float_out_of_range(void **state)
{
    jv_arena *a = *state;
    parse_err(a, "1e400", NULL, ERR_INVALID, "json_number_out_of_range");
    parse_err(a, "-1e400", NULL, ERR_INVALID, "json_number_out_of_range");
}

static void test_parse_strings_and_escapes(void **state)
{
    jv_arena *a = *state;
    jv *v = parse(a, "\"hi\"");
    assert_int_equal(v->kind, JV_STR);
    assert_int_equal(v->u.str.len, 2);
    assert_string_equal(v->u.str.s, "hi");
    /* \n, \u00e9 (C3 A9), \" and \\ */
    v = parse(a, "\"a\\n\\u00e9\\\"\\\\\"");
    assert_int_equal(v->u.str.len, 6);
    assert_memory_equal(v->u.str.s, "a\n\xC3\xA9\"\\", 6);
    /* a raw UTF-8 character: 中 is E4 B8 AD */
    v = parse(a, "\"\xE4\xB8\xAD\"");
    assert_int_equal(v->u.str.len, 3);
    assert_memory_equal(v->u.str.s, "\xE4\xB8\xAD", 3);
    /* an escaped NUL keeps its length */
    v = parse(a, "\"a\\u0000b\"");
    assert_int_equal(v->u.str.len, 3);
    assert_memory_equal(v->u.str.s, "a\0b", 3);
    v = parse(a, "\"\"");
    assert_int_equal(v->kind, JV_STR);
    assert_int_equal(v->u.str.len, 0);
}

static void test_parse_array_and_object(void **state)
{
    jv_arena *a = *state;
    jv *v = parse(a, "{\"a\": [1, \"x\", null], \"b\": {\"c\": true}, \"d\": -1.5}");
    assert_int_equal(v->kind, JV_OBJ);
    assert_int_equal(jv_len(v), 3);
    /* members keep document order */
    assert_string_equal(v->u.obj.m[0].key, "a");
    assert_string_equal(v->u.obj.m[1].key, "b");
    assert_string_equal(v->u.obj.m[2].key, "d");
    const jv *arr = jv_get(v, "a");
    assert_non_null(arr);
    assert_int_equal(arr->kind, JV_ARR);
    assert_int_equal(jv_len(arr), 3);
    assert_int_equal(jv_at(arr, 0)->u.i, 1);
    assert_string_equal(jv_at(arr, 1)->u.str.s, "x");
    assert_int_equal(jv_at(arr, 2)->kind, JV_NULL);
    assert_int_equal(jv_get(jv_get(v, "b"), "c")->u.b, 1);
    assert_true(jv_get(v, "d")->u.num == -1.5);
}

static void test_parse_empty_containers(void **state)
{
    jv_arena *a = *state;
    jv *v = parse(a, "[]");
    assert_int_equal(v->kind, JV_ARR);
    assert_int_equal(jv_len(v), 0);
    v = parse(a, "{}");
    assert_int_equal(v->kind, JV_OBJ);
    assert_int_equal(jv_len(v), 0);
    v = parse(a, "[[], {}]");
    assert_int_equal(jv_len(v), 2);
}

static void test_parse_allows_surrounding_whitespace(void **state)
{
    jv_arena *a = *state;
    jv *v = parse(a, " \n\t[1] \r\n");
    assert_int_equal(jv_len(v), 1);
}

static void test_parse_refuses_empty_document(void **state)
{
    jv_arena *a = *state;
    parse_err(a, "", NULL, ERR_INVALID, "invalid_json");
    parse_err(a, "   \n", NULL, ERR_INVALID, "invalid_json");
}

static void test_parse_refuses_trailing_garbage(void **state)
{
    jv_arena *a = *state;
    parse_err(a, "[1] x", NULL, ERR_INVALID, "invalid_json");
    parse_err(a, "1 2", NULL, ERR_INVALID, "invalid_json");
    parse_err(a, "{}{}", NULL, ERR_INVALID, "invalid_json");
    parse_err(a, "null,", NULL, ERR_INVALID, "invalid_json");
    /* a NUL byte inside the given length is garbage too */
    parse_err_n(a, "[1]\0", 4, NULL, ERR_INVALID, "invalid_json");
}

static void test_parse_refuses_malformed(void **state)
{
    jv_arena *a = *state;
    static const char *const bad[] = {
        "[1,]", "{\"a\":}", "{a:1}", "'x'", "[1", "{\"a\":1", "nul", "tru", "01", "+1", "NaN",
        "Infinity", "[1 2]", "{\"a\" 1}", "\"unterminated", "/* c */ 1", "1.", ".5", "-", "[,1]",
        "{,}", "\"\\x41\"", "\"tab\there\"", "]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) parse_err(a, bad[i], NULL, ERR_INVALID, "invalid_json");
}

static void test_parse_refuses_invalid_utf8(void **state)
{
    jv_arena *a = *state;
    parse_err(a, "\"\xFF\"", NULL, ERR_INVALID, "invalid_json");         /* never valid */
    parse_err(a, "\"\xC3\"", NULL, ERR_INVALID, "invalid_json");         /* truncated sequence */
    parse_err(a, "\"\x80\"", NULL, ERR_INVALID, "invalid_json");         /* lone continuation */
    parse_err(a, "{\"\xFE\": 1}", NULL, ERR_INVALID, "invalid_json");    /* in a key */
    parse_err(a, "[1, \xE4\xB8\xAD]", NULL, ERR_INVALID, "invalid_json"); /* outside a string */
}

static void test_parse_refuses_non_shortest_utf8(void **state)
{
    jv_arena *a = *state;
    /* RFC 3629: none of these byte sequences is UTF-8 */
    static const char *const bad[] = {
        "\"\xC0\xAF\"",         /* overlong '/' (2 bytes) */
        "\"\xC1\xBF\"",         /* overlong U+007F */
        "\"\xE0\x80\xAF\"",     /* overlong '/' (3 bytes) */
        "\"\xED\xA0\x80\"",     /* UTF-16 surrogate U+D800 */
        "\"\xF4\x90\x80\x80\"", /* U+110000, above the last code point */
        "\"\xF5\x80\x80\x80\"", /* F5 never starts a sequence */
    };
    int accepted = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        jv *v = NULL;
        err e;
        err_clear(&e);
        int rc = json_parse(bad[i], strlen(bad[i]), NULL, a, &v, &e);
        if (rc != ERR_INVALID || strcmp(err_tag(&e), "invalid_json") != 0) {
            print_error("invalid UTF-8 case %zu accepted (rc %d)\n", i, rc);
            accepted++;
        }
    }
    assert_int_equal(accepted, 0);
}

static void test_parse_refuses_duplicate_keys(void **state)
{
    jv_arena *a = *state;
    check_field(a, "{\"a\": 1, \"a\": 2}", NULL, ERR_INVALID, "json_duplicate_key", "a");
    check_field(a, "{\"a\": 1, \"b\": 2, \"a\": 1}", NULL, ERR_INVALID, "json_duplicate_key", "a");
    /* the same key in two different objects is fine */
    parse(a, "{\"a\": {\"a\": 1}, \"b\": [{\"a\": 1}, {\"a\": 2}]}");
}

static void test_parse_duplicate_key_path_in_nested_object(void **state)
{
    jv_arena *a = *state;
    check_field(a, "{\"x\": {\"a\": 1, \"a\": 2}}", NULL, ERR_INVALID, "json_duplicate_key", "x.a");
}

/* ------------------------------------------------------------ limits */

static void test_limit_max_bytes(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_bytes = 10;
    parse_lim(a, "[1,2,3,45]", &l);   /* exactly 10 bytes */
    err e = parse_err(a, "[1,2,3,4,5]", &l, ERR_LIMIT, "json_too_large");  /* 11 bytes */
    assert_string_equal(e.field, "");  /* the whole document */
}

static void test_limit_max_depth(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_depth = 2;
    parse_lim(a, "[[1]]", &l);
    parse_lim(a, "{\"a\": {\"b\": 1}}", &l);
    parse_err(a, "[[[1]]]", &l, ERR_LIMIT, "json_too_deep");
    parse_err(a, "{\"a\": {\"b\": {}}}", &l, ERR_LIMIT, "json_too_deep");
}

static void test_limit_max_depth_path(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_depth = 2;
    /* the third container opens at a.b */
    check_field(a, "{\"a\": {\"b\": {\"c\": 1}}}", &l, ERR_LIMIT, "json_too_deep", "a.b");
}

static void test_limit_default_depth_is_32(void **state)
{
    jv_arena *a = *state;
    char doc[200];
    /* 32 nested arrays are allowed, 33 are not */
    memset(doc, '[', 32);
    memset(doc + 32, ']', 32);
    doc[64] = '\0';
    parse(a, doc);
    memset(doc, '[', 33);
    memset(doc + 33, ']', 33);
    doc[66] = '\0';
    parse_err(a, doc, NULL, ERR_LIMIT, "json_too_deep");
}

static void test_limit_max_string(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_string = 3;
    parse_lim(a, "\"abc\"", &l);
    parse_err(a, "\"abcd\"", &l, ERR_LIMIT, "json_string_too_long");
    check_field(a, "{\"k\": \"abcd\"}", &l, ERR_LIMIT, "json_string_too_long", "k");
    check_field(a, "[\"a\", \"abcd\"]", &l, ERR_LIMIT, "json_string_too_long", "[1]");
    /* keys count too */
    parse_err(a, "{\"abcd\": 1}", &l, ERR_LIMIT, "json_string_too_long");
    /* the limit is on decoded bytes: \u00e9 is 2 bytes, 3 of them are 6 */
    parse_err(a, "\"\\u00e9\\u00e9\\u00e9\"", &l, ERR_LIMIT, "json_string_too_long");
}

static void test_limit_max_string_path_in_nested_array(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_string = 3;
    check_field(a, "{\"a\": {\"b\": [1, 2, \"long\"]}}", &l, ERR_LIMIT, "json_string_too_long", "a.b[2]");
}

static void test_limit_path_in_array_of_arrays(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_string = 3;
    /* the second item of the second item: [1][1] (0-based, as "[1]" above) */
    check_field(a, "[[1, 2], [3, \"long\"]]", &l, ERR_LIMIT, "json_string_too_long", "[1][1]");
}

static void test_limit_max_string_key_path_in_nested_object(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_string = 3;
    err e = parse_err(a, "{\"o\": {\"long\": 1}}", &l, ERR_LIMIT, "json_string_too_long");
    /* "o" or "o.long": either way it names the object */
    if (strncmp(e.field, "o", 1) != 0) print_error("field \"%s\" does not name o\n", e.field);
    assert_true(strncmp(e.field, "o", 1) == 0);
}

static void test_limit_max_keys(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_keys = 2;
    parse_lim(a, "{\"a\": 1, \"b\": 2}", &l);
    parse_err(a, "{\"a\": 1, \"b\": 2, \"c\": 3}", &l, ERR_LIMIT, "json_too_many_keys");
}

static void test_limit_max_keys_path_in_nested_object(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_keys = 2;
    err e = parse_err(a, "{\"o\": {\"a\": 1, \"b\": 2, \"c\": 3}}", &l, ERR_LIMIT, "json_too_many_keys");
    if (strncmp(e.field, "o", 1) != 0) print_error("field \"%s\" does not name o\n", e.field);
    assert_true(strncmp(e.field, "o", 1) == 0);
}

static void test_limit_max_items(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_items = 2;
    parse_lim(a, "[1, 2]", &l);
    check_field(a, "[1, 2, 3]", &l, ERR_LIMIT, "json_too_many_items", "[2]");
}

static void test_limit_max_items_path_in_object(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_items = 2;
    check_field(a, "{\"list\": [1, 2, 3]}", &l, ERR_LIMIT, "json_too_many_items", "list[2]");
}

static void test_limit_max_nodes(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_nodes = 3;
    parse_lim(a, "[1, 2]", &l);  /* the array and two numbers: 3 values */
    check_field(a, "[1, 2, 3]", &l, ERR_LIMIT, "json_too_many_values", "[2]");
    check_field(a, "{\"a\": 1, \"b\": 2, \"c\": 3}", &l, ERR_LIMIT, "json_too_many_values", "c");
}

static void test_limit_max_nodes_path_in_nested_array(void **state)
{
    jv_arena *a = *state;
    json_limits l = big_limits();
    l.max_nodes = 3;
    /* object (1), array (2), 1 (3), 2 (4): the 4th value is a[1] */
    check_field(a, "{\"a\": [1, 2]}", &l, ERR_LIMIT, "json_too_many_values", "a[1]");
}

static void test_parse_fails_cleanly_when_the_arena_is_full(void **state)
{
    (void)state;
    jv_arena small;
    jv_arena_init(&small, 256);
    char doc[4000];
    size_t o = 0;
    doc[o++] = '[';
    for (int i = 0; i < 500; i++) o += (size_t)snprintf(doc + o, sizeof doc - o, "%s%d", i ? "," : "", i);
    doc[o++] = ']';
    doc[o] = '\0';
    jv *v = (jv *)1;
    err e;
    err_clear(&e);
    assert_int_equal(json_parse(doc, o, NULL, &small, &v, &e), ERR_NOMEM);
    assert_null(v);
    assert_true(small.used_total <= 256);
    jv_arena_free(&small);
}

/* ----------------------------------------------------------- builders */

static void test_build_scalars(void **state)
{
    jv_arena *a = *state;
    assert_int_equal(jv_null(a)->kind, JV_NULL);
    jv *b = jv_bool(a, 7);
    assert_int_equal(b->kind, JV_BOOL);
    assert_int_equal(b->u.b, 1);   /* normalised */
    assert_int_equal(jv_bool(a, 0)->u.b, 0);
    jv *i = jv_int(a, INT64_MIN);
    assert_int_equal(i->kind, JV_INT);
    assert_int_equal(i->u.i, INT64_MIN);
    jv *n = jv_num(a, 0.25);
    assert_int_equal(n->kind, JV_NUM);
    assert_true(n->u.num == 0.25);
}

static void test_build_strings_copy(void **state)
{
    jv_arena *a = *state;
    char src[] = "hello";
    jv *s = jv_str(a, src);
    jv *sn = jv_strn(a, "a\0b", 3);
    src[0] = 'J';
    assert_int_equal(s->kind, JV_STR);
    assert_string_equal(s->u.str.s, "hello");
    assert_int_equal(s->u.str.len, 5);
    assert_int_equal(sn->u.str.len, 3);
    assert_memory_equal(sn->u.str.s, "a\0b", 3);
    assert_int_equal(sn->u.str.s[3], '\0');   /* still NUL-terminated */
}

static void test_build_array(void **state)
{
    jv_arena *a = *state;
    jv *arr = jv_arr(a);
    for (int i = 0; i < 100; i++) assert_int_equal(jv_arr_push(a, arr, jv_int(a, i)), 0);
    assert_int_equal(jv_len(arr), 100);
    for (size_t i = 0; i < 100; i++) assert_int_equal(jv_at(arr, i)->u.i, (int64_t)i);
    assert_null(jv_at(arr, 100));
}

static void test_build_object(void **state)
{
    jv_arena *a = *state;
    jv *o = jv_obj(a);
    assert_int_equal(jv_obj_set_str(a, o, "name", "x"), 0);
    assert_int_equal(jv_obj_set_str(a, o, "none", NULL), 0);
    assert_int_equal(jv_obj_set_int(a, o, "n", -5), 0);
    assert_int_equal(jv_obj_set_bool(a, o, "ok", 3), 0);
    assert_int_equal(jv_obj_setn(a, o, "keyXX", 3, jv_null(a)), 0);
    assert_int_equal(jv_len(o), 5);
    assert_string_equal(jv_get(o, "name")->u.str.s, "x");
    assert_int_equal(jv_get(o, "none")->kind, JV_NULL);
    assert_int_equal(jv_get(o, "n")->u.i, -5);
    assert_int_equal(jv_get(o, "ok")->u.b, 1);
    assert_non_null(jv_get(o, "key"));
    assert_null(jv_get(o, "keyXX"));
}

static void test_build_sized_containers_do_not_regrow(void **state)
{
    jv_arena *a = *state;
    jv *arr = jv_arr_sized(a, 3);
    jv **items = arr->u.arr.items;
    for (int i = 0; i < 3; i++) assert_int_equal(jv_arr_push(a, arr, jv_int(a, i)), 0);
    assert_ptr_equal(arr->u.arr.items, items);
    assert_int_equal(jv_arr_push(a, arr, jv_int(a, 3)), 0);   /* the 4th grows */
    assert_int_equal(jv_len(arr), 4);
    assert_int_equal(jv_at(arr, 3)->u.i, 3);
    assert_int_equal(jv_at(arr, 0)->u.i, 0);

    jv *o = jv_obj_sized(a, 2);
    jv_member *m = o->u.obj.m;
    assert_int_equal(jv_obj_set_int(a, o, "a", 1), 0);
    assert_int_equal(jv_obj_set_int(a, o, "b", 2), 0);
    assert_ptr_equal(o->u.obj.m, m);
    assert_int_equal(jv_obj_set_int(a, o, "c", 3), 0);
    assert_int_equal(jv_get(o, "a")->u.i, 1);
    assert_int_equal(jv_get(o, "c")->u.i, 3);
}

static void test_build_propagates_failed_values(void **state)
{
    jv_arena *a = *state;
    jv *arr = jv_arr(a), *o = jv_obj(a);
    /* a NULL value (a failed allocation upstream) is an error, not a hole */
    assert_int_equal(jv_arr_push(a, arr, NULL), ERR_NOMEM);
    assert_int_equal(jv_obj_set(a, o, "k", NULL), ERR_NOMEM);
    assert_int_equal(jv_len(arr), 0);
    assert_int_equal(jv_len(o), 0);
    /* and pushing into the wrong kind is refused */
    assert_true(jv_arr_push(a, o, jv_null(a)) != 0);
    assert_true(jv_obj_set(a, arr, "k", jv_null(a)) != 0);
}

/* ------------------------------------------------------------- access */

static void test_access_on_wrong_kinds(void **state)
{
    jv_arena *a = *state;
    jv *arr = parse(a, "[1]"), *obj = parse(a, "{\"0\": 1}"), *num = parse(a, "5");
    assert_null(jv_get(arr, "0"));
    assert_null(jv_get(num, "x"));
    assert_null(jv_get(NULL, "x"));
    assert_null(jv_at(obj, 0));
    assert_null(jv_at(NULL, 0));
    assert_null(jv_at(arr, 1));
    assert_int_equal(jv_len(num), 0);
    assert_int_equal(jv_len(NULL), 0);
    assert_int_equal(jv_len(parse(a, "\"abc\"")), 0);   /* a string has no items */
}

static void test_getn_matches_exact_length(void **state)
{
    jv_arena *a = *state;
    jv *o = parse(a, "{\"ab\": 1, \"abc\": 2}");
    assert_int_equal(jv_getn(o, "abcdef", 2)->u.i, 1);
    assert_int_equal(jv_getn(o, "abcdef", 3)->u.i, 2);
    assert_null(jv_getn(o, "abcdef", 1));
    assert_null(jv_get(o, "ABC"));   /* case-sensitive */
}

static void test_kind_names_are_distinct(void **state)
{
    (void)state;
    const jv_kind kinds[] = {JV_NULL, JV_BOOL, JV_INT, JV_NUM, JV_STR, JV_ARR, JV_OBJ};
    for (size_t i = 0; i < 7; i++) {
        assert_true(jv_kind_name(kinds[i])[0] != '\0');
        for (size_t j = 0; j < i; j++) assert_string_not_equal(jv_kind_name(kinds[i]), jv_kind_name(kinds[j]));
    }
}

/* --------------------------------------------------------- copy, equal */

static const char *const RICH =
    "{\"s\": \"x\\u00e9\", \"i\": -9223372036854775808, \"j\": 9223372036854775807, \"f\": 0.1,"
    " \"t\": true, \"n\": null, \"a\": [1, [2, {\"k\": []}], {}], \"o\": {\"p\": {\"q\": \"r\"}}}";

static void test_copy_is_deep_and_outlives_the_source(void **state)
{
    jv_arena *b = *state;
    jv_arena src;
    jv_arena_init(&src, 0);
    jv *orig = parse(&src, RICH);
    jv *copy = jv_copy(b, orig);
    assert_non_null(copy);
    assert_true(jv_equal(orig, copy));
    jv_arena_free(&src);   /* nothing of the copy may live in the source arena */
    assert_true(jv_equal(copy, parse(b, RICH)));
    assert_string_equal(jv_get(jv_get(jv_get(copy, "o"), "p"), "q")->u.str.s, "r");
}

static void test_equal_ignores_member_order(void **state)
{
    jv_arena *a = *state;
    assert_true(jv_equal(parse(a, "{\"a\": 1, \"b\": [1, 2]}"), parse(a, "{\"b\": [1, 2], \"a\": 1}")));
}

static void test_equal_detects_differences(void **state)
{
    jv_arena *a = *state;
    assert_false(jv_equal(parse(a, "1"), parse(a, "1.0")));        /* integer vs float */
    assert_false(jv_equal(parse(a, "[1, 2]"), parse(a, "[2, 1]")));  /* order matters in lists */
    assert_false(jv_equal(parse(a, "{\"a\": 1}"), parse(a, "{\"a\": 1, \"b\": null}")));
    assert_false(jv_equal(parse(a, "\"ab\""), parse(a, "\"abc\"")));
    assert_false(jv_equal(parse(a, "null"), parse(a, "false")));
    assert_false(jv_equal(parse(a, "{}"), parse(a, "[]")));
    assert_true(jv_equal(parse(a, RICH), parse(a, RICH)));
}

/* ---------------------------------------------------------------- diff */

static void test_diff_equal_values_write_nothing(void **state)
{
    check_diff(*state, RICH, RICH, "");
}

static void test_diff_path_with_one_based_list_index(void **state)
{
    check_diff(*state, "{\"lines\": [{\"amount\": 100}, {\"amount\": 200}]}",
               "{\"lines\": [{\"amount\": 100}, {\"amount\": 250}]}", "lines[2].amount: expected 200, got 250");
}

static void test_diff_missing_and_extra_keys(void **state)
{
    check_diff(*state, "{\"a\": 1, \"b\": 2}", "{\"a\": 1}", "b: expected 2, got nil");
    check_diff(*state, "{\"a\": 1}", "{\"a\": 1, \"z\": true}", "z: expected nil, got true");
    check_diff(*state, "{\"o\": {\"a\": 1}}", "{\"o\": {}}", "o.a: expected 1, got nil");
}

static void test_diff_kind_mismatch(void **state)
{
    check_diff(*state, "{\"a\": 1}", "{\"a\": \"1\"}", "a: expected 1, got \"1\"");
    check_diff(*state, "{\"a\": {}}", "{\"a\": []}", "a: expected a table of 0 keys, got a list of 0");
    check_diff(*state, "1.5", "1", "(result): expected 1.5 (a float), got 1");
    check_diff(*state, "null", "false", "(result): expected nil, got false");
}

static void test_diff_list_lengths(void **state)
{
    check_diff(*state, "{\"l\": [1, 2]}", "{\"l\": [1, 2, 3]}", "l: expected 2 items, got 3");
    check_diff(*state, "[1]", "[]", "(result): expected 1 items, got 0");
}

static void test_diff_top_level_and_nested_lists(void **state)
{
    check_diff(*state, "1", "2", "(result): expected 1, got 2");
    check_diff(*state, "[1, 2]", "[1, 3]", "[2]: expected 2, got 3");
    check_diff(*state, "[[1], [2, 3]]", "[[1], [2, 4]]", "[2][2]: expected 3, got 4");
    check_diff(*state, "[{\"a\": 1}, {\"a\": 2}]", "[{\"a\": 1}, {\"a\": 3}]", "[2].a: expected 2, got 3");
}

static void test_diff_path_resets_between_siblings(void **state)
{
    check_diff(*state, "{\"a\": {\"x\": 1}, \"b\": {\"y\": 2}}", "{\"a\": {\"x\": 1}, \"b\": {\"y\": 3}}",
               "b.y: expected 2, got 3");
    check_diff(*state, "{\"l\": [[1], [2]], \"m\": 5}", "{\"l\": [[1], [2]], \"m\": 6}", "m: expected 5, got 6");
}

static void test_diff_strings_are_quoted_and_escaped(void **state)
{
    check_diff(*state, "{\"s\": \"a\\\"b\"}", "{\"s\": \"a\\nb\"}", "s: expected \"a\\\"b\", got \"a\\nb\"");
}

/* -------------------------------------------------------------- writer */

static void test_writer_builds_a_document(void **state)
{
    (void)state;
    jw w;
    assert_int_equal(jw_init(&w, 0), 0);
    jw_obj_open(&w);
    jw_kv_str(&w, "name", "x");
    jw_kv_int(&w, "n", -5);
    jw_kv_bool(&w, "ok", 1);
    jw_kv_str(&w, "none", NULL);
    jw_key(&w, "list");
    jw_arr_open(&w);
    jw_null(&w);
    jw_raw_num(&w, "1.25");
    jw_strn(&w, "ab", 1);
    jw_int(&w, INT64_MIN);
    jw_bool(&w, 0);
    jw_arr_close(&w);
    jw_obj_close(&w);
    size_t n = 0;
    const char *s = jw_finish(&w, &n);
    assert_non_null(s);
    const char *want =
        "{\"name\":\"x\",\"n\":-5,\"ok\":true,\"none\":null,\"list\":[null,1.25,\"a\",-9223372036854775808,false]}";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(s, want, n);
    jw_free(&w);
}

static void test_writer_escapes_strings(void **state)
{
    (void)state;
    jw w;
    assert_int_equal(jw_init(&w, 0), 0);
    jw_str(&w, "q\"b\\n\nt\t");
    size_t n = 0;
    const char *s = jw_finish(&w, &n);
    assert_non_null(s);
    const char *want = "\"q\\\"b\\\\n\\nt\\t\"";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(s, want, n);
    jw_free(&w);
}

static void test_writer_reports_invalid_utf8(void **state)
{
    (void)state;
    jw w;
    assert_int_equal(jw_init(&w, 0), 0);
    jw_arr_open(&w);
    jw_str(&w, "ok");
    jw_str(&w, "\xFF");
    jw_arr_close(&w);
    assert_null(jw_finish(&w, NULL));
    jw_free(&w);
}

static void test_writer_reports_a_non_string_key(void **state)
{
    (void)state;
    jw w;
    assert_int_equal(jw_init(&w, 0), 0);
    jw_obj_open(&w);
    jw_int(&w, 1);   /* a key must be a string */
    jw_obj_close(&w);
    assert_null(jw_finish(&w, NULL));
    jw_free(&w);
}

static void test_writer_pretty_indents(void **state)
{
    (void)state;
    jw w;
    assert_int_equal(jw_init(&w, 1), 0);
    jw_obj_open(&w);
    jw_kv_int(&w, "a", 1);
    jw_obj_close(&w);
    const char *s = jw_finish(&w, NULL);
    assert_non_null(s);
    assert_non_null(strstr(s, "\n  \"a\""));
    jw_free(&w);
}

static void test_writer_round_trip(void **state)
{
    jv_arena *a = *state;
    static const char *const docs[] = {
        "null", "true", "-9223372036854775808", "9223372036854775807", "0.1", "1e3", "-2.5e-7",
        "1.7976931348623157e308", "\"\"", "\"\\u0000\\u001f\\\"\\\\/\\u00e9\xE4\xB8\xAD\"", "[]", "{}",
        "[1, [2, [3, []]], {\"a\": {\"b\": null}}]",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        jv *v = parse(a, docs[i]);
        jw w;
        assert_int_equal(jw_init(&w, 0), 0);
        jw_jv(&w, v);
        size_t n = 0;
        const char *s = jw_finish(&w, &n);
        assert_non_null(s);
        jv *back = NULL;
        err e;
        err_clear(&e);
        int rc = json_parse(s, n, NULL, a, &back, &e);
        if (rc || !jv_equal(v, back)) print_error("%s -> %.*s (%s)\n", docs[i], (int)n, s, e.msg);
        assert_int_equal(rc, 0);
        assert_true(jv_equal(v, back));
        jw_free(&w);
    }
    /* and the rich document, through json_write */
    jv *v = parse(a, RICH);
    buf b = {0};
    assert_int_equal(json_write(&b, v), 0);
    assert_true(jv_equal(v, parse(a, buf_cstr(&b))));
    buf_free(&b);
}

static void test_writer_keeps_integral_floats_floats(void **state)
{
    jv_arena *a = *state;
    buf b = {0};
    /* 1000.0 must not come back as the integer 1000 (it could be read as fen) */
    assert_int_equal(json_write(&b, jv_num(a, 1000.0)), 0);
    jv *back = parse(a, buf_cstr(&b));
    assert_int_equal(back->kind, JV_NUM);
    assert_true(back->u.num == 1000.0);
    buf_free(&b);
}

static void test_writer_non_finite_is_null(void **state)
{
    jv_arena *a = *state;
    buf b = {0};
    jv *arr = jv_arr(a);
    jv_arr_push(a, arr, jv_num(a, INFINITY));
    jv_arr_push(a, arr, jv_num(a, NAN));
    assert_int_equal(json_write(&b, arr), 0);
    assert_string_equal(buf_cstr(&b), "[null,null]");
    buf_free(&b);
}

static void test_json_write_compact(void **state)
{
    jv_arena *a = *state;
    buf b = {0};
    buf_puts(&b, "prefix:");   /* json_write appends */
    assert_int_equal(json_write(&b, parse(a, "{ \"a\" : 1 , \"b\" : [ true , null , \"x\\\"y\" ] }")), 0);
    assert_string_equal(buf_cstr(&b), "prefix:{\"a\":1,\"b\":[true,null,\"x\\\"y\"]}");
    buf_free(&b);
}

static void test_json_write_sorts_keys(void **state)
{
    jv_arena *a = *state;
    buf b = {0};
    jv *o = jv_obj(a);
    jv_obj_set_int(a, o, "b", 1);
    jv_obj_set_int(a, o, "ab", 2);
    jv_obj_set_int(a, o, "a", 3);
    jv_obj_set_int(a, o, "B", 4);
    assert_int_equal(json_write(&b, o), 0);
    /* byte order: "B" (0x42) < "a" < "ab" < "b" */
    assert_string_equal(buf_cstr(&b), "{\"B\":4,\"a\":3,\"ab\":2,\"b\":1}");
    buf_free(&b);
}

static void test_json_write_refuses_invalid_utf8(void **state)
{
    jv_arena *a = *state;
    buf b = {0};
    assert_int_equal(json_write(&b, jv_strn(a, "\xC3", 1)), ERR_INVALID);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* --------------------------------------------------------------- arena */

static void test_arena_limit_refuses_beyond_it(void **state)
{
    (void)state;
    const size_t al = sizeof(max_align_t);
    jv_arena a;
    jv_arena_init(&a, 4 * al);
    for (int i = 0; i < 4; i++) assert_non_null(jv_alloc(&a, al));
    assert_int_equal(a.used_total, 4 * al);
    assert_null(jv_alloc(&a, 1));
    assert_null(jv_int(&a, 1));
    assert_null(jv_str(&a, "x"));
    jv_arena_free(&a);
}

static void test_arena_limit_counts_rounded_sizes(void **state)
{
    (void)state;
    const size_t al = sizeof(max_align_t);
    jv_arena a;
    jv_arena_init(&a, 2 * al);
    assert_non_null(jv_alloc(&a, 1));       /* takes a whole unit */
    assert_non_null(jv_alloc(&a, al));
    assert_null(jv_alloc(&a, 1));
    jv_arena_free(&a);
}

static void test_arena_allocations_are_aligned_and_distinct(void **state)
{
    jv_arena *a = *state;
    char *prev = NULL;
    for (int i = 1; i < 200; i++) {
        char *p = jv_alloc(a, (size_t)i);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        memset(p, 0xAB, (size_t)i);   /* ASan/valgrind: the whole block is usable */
        assert_true(p != prev);
        prev = p;
    }
    /* one larger than a chunk */
    char *big = jv_alloc(a, 100000);
    assert_non_null(big);
    memset(big, 0, 100000);
}

static void test_arena_strdup_terminates(void **state)
{
    jv_arena *a = *state;
    char *s = jv_strdup(a, "abcdef", 3);
    assert_string_equal(s, "abc");
    char *z = jv_strdup(a, NULL, 0);
    assert_non_null(z);
    assert_string_equal(z, "");
}

static void test_arena_reset_reuses_memory(void **state)
{
    (void)state;
    jv_arena a;
    jv_arena_init(&a, 0);
    /* enough for several chunks */
    for (int i = 0; i < 10; i++) assert_non_null(jv_alloc(&a, 3000));
    jv_arena_reset(&a);
    assert_int_equal(a.used_total, 0);
    void *p1 = jv_alloc(&a, 64);
    assert_non_null(p1);
    jv_arena_reset(&a);
    void *p2 = jv_alloc(&a, 64);
    assert_ptr_equal(p1, p2);   /* the kept chunk, no new allocation */
    /* a parse after reset works as on a new arena */
    jv_arena_reset(&a);
    jv *v = NULL;
    assert_int_equal(json_parse(RICH, strlen(RICH), NULL, &a, &v, NULL), 0);
    assert_int_equal(jv_len(v), 8);
    jv_arena_free(&a);
    jv_arena_free(&a);   /* freeing twice is harmless */
}

static void test_arena_reset_restores_the_limit_budget(void **state)
{
    (void)state;
    const size_t al = sizeof(max_align_t);
    jv_arena a;
    jv_arena_init(&a, 2 * al);
    assert_non_null(jv_alloc(&a, 2 * al));
    assert_null(jv_alloc(&a, 1));
    jv_arena_reset(&a);
    assert_non_null(jv_alloc(&a, 2 * al));
    jv_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_parse_null_and_booleans),
        T(test_parse_integers_are_exact_int64),
        T(test_parse_int64_extremes),
        T(test_parse_integer_out_of_range),
        T(test_parse_fraction_or_exponent_is_num),
        T(test_parse_float_out_of_range),
        T(test_parse_strings_and_escapes),
        T(test_parse_array_and_object),
        T(test_parse_empty_containers),
        T(test_parse_allows_surrounding_whitespace),
        T(test_parse_refuses_empty_document),
        T(test_parse_refuses_trailing_garbage),
        T(test_parse_refuses_malformed),
        T(test_parse_refuses_invalid_utf8),
        T(test_parse_refuses_non_shortest_utf8),
        T(test_parse_refuses_duplicate_keys),
        T(test_parse_duplicate_key_path_in_nested_object),
        T(test_limit_max_bytes),
        T(test_limit_max_depth),
        T(test_limit_max_depth_path),
        T(test_limit_default_depth_is_32),
        T(test_limit_max_string),
        T(test_limit_max_string_path_in_nested_array),
        T(test_limit_path_in_array_of_arrays),
        T(test_limit_max_string_key_path_in_nested_object),
        T(test_limit_max_keys),
        T(test_limit_max_keys_path_in_nested_object),
        T(test_limit_max_items),
        T(test_limit_max_items_path_in_object),
        T(test_limit_max_nodes),
        T(test_limit_max_nodes_path_in_nested_array),
        T(test_parse_fails_cleanly_when_the_arena_is_full),
        T(test_build_scalars),
        T(test_build_strings_copy),
        T(test_build_array),
        T(test_build_object),
        T(test_build_sized_containers_do_not_regrow),
        T(test_build_propagates_failed_values),
        T(test_access_on_wrong_kinds),
        T(test_getn_matches_exact_length),
        T(test_kind_names_are_distinct),
        T(test_copy_is_deep_and_outlives_the_source),
        T(test_equal_ignores_member_order),
        T(test_equal_detects_differences),
        T(test_diff_equal_values_write_nothing),
        T(test_diff_path_with_one_based_list_index),
        T(test_diff_missing_and_extra_keys),
        T(test_diff_kind_mismatch),
        T(test_diff_list_lengths),
        T(test_diff_top_level_and_nested_lists),
        T(test_diff_path_resets_between_siblings),
        T(test_diff_strings_are_quoted_and_escaped),
        T(test_writer_builds_a_document),
        T(test_writer_escapes_strings),
        T(test_writer_reports_invalid_utf8),
        T(test_writer_reports_a_non_string_key),
        T(test_writer_pretty_indents),
        T(test_writer_round_trip),
        T(test_writer_keeps_integral_floats_floats),
        T(test_writer_non_finite_is_null),
        T(test_json_write_compact),
        T(test_json_write_sorts_keys),
        T(test_json_write_refuses_invalid_utf8),
        T(test_arena_limit_refuses_beyond_it),
        T(test_arena_limit_counts_rounded_sizes),
        T(test_arena_allocations_are_aligned_and_distinct),
        T(test_arena_strdup_terminates),
        T(test_arena_reset_reuses_memory),
        T(test_arena_reset_restores_the_limit_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
