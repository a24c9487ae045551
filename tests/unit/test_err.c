/* test_err.c - error messages cut to their buffer never end in half a
 * UTF-8 character (they go out as JSON), and whole characters stay. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "err.h"
#include "json.h"

static void test_trim(void **state)
{
    (void)state;
    char a[] = "abc";
    err_utf8_trim(a);
    assert_string_equal(a, "abc");
    char b[] = "价格";                 /* two whole 3-byte characters */
    err_utf8_trim(b);
    assert_string_equal(b, "价格");
    char c[] = "价格";
    c[5] = '\0';                       /* the second cut after 2 of its 3 bytes */
    err_utf8_trim(c);
    assert_string_equal(c, "价");
    char d[] = "价格";
    d[4] = '\0';                       /* after 1 of 3 */
    err_utf8_trim(d);
    assert_string_equal(d, "价");
    char f[] = "x\xF0\x9F\x98";        /* 3 of a 4-byte emoji */
    err_utf8_trim(f);
    assert_string_equal(f, "x");
    char g[] = "\xC3";                 /* a lone lead byte */
    err_utf8_trim(g);
    assert_string_equal(g, "");
    char h[] = "";
    err_utf8_trim(h);
    assert_string_equal(h, "");
}

static void test_messages_cut_whole(void **state)
{
    (void)state;
    err e;
    char long_text[1200];
    /* 399 three-byte characters and then some: past the message buffer */
    size_t n = 0;
    while (n + 3 < sizeof long_text - 1) {
        memcpy(long_text + n, "费", 3);
        n += 3;
    }
    long_text[n] = '\0';
    for (int shift = 0; shift < 3; shift++) {
        err_set(&e, ERR_RULE, "%.*s%s", shift, "xx", long_text);
        assert_true(json_utf8_valid(e.msg, strlen(e.msg)));
        assert_true(strlen(e.msg) >= sizeof e.msg - 4);
        err_field(&e, ERR_RULE, "t", "f", "%.*s%s", shift, "xx", long_text);
        assert_true(json_utf8_valid(e.msg, strlen(e.msg)));
        err_set(&e, ERR_RULE, "%s", "价");
        err_prefix(&e, "%.*s%s", shift, "xx", long_text);
        assert_true(json_utf8_valid(e.msg, strlen(e.msg)));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_messages_cut_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
