/* test_clifit.c - cli_fit: text cut and padded to terminal columns, a
 * Chinese character two columns, never cut inside a character. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "cli.h"

static void test_ascii_is_padded_and_cut(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(cli_fit("abc", 6, out, sizeof out), "abc   ");
    assert_string_equal(cli_fit("abcdefgh", 5, out, sizeof out), "abcde");
    assert_string_equal(cli_fit(NULL, 3, out, sizeof out), "   ");
}

static void test_chinese_takes_two_columns(void **state)
{
    (void)state;
    char out[64];
    /* 胡静怡: 3 characters, 6 columns, 9 bytes */
    assert_string_equal(cli_fit("胡静怡", 8, out, sizeof out), "胡静怡  ");
    /* 7 columns: the third character does not fit whole, so a space instead */
    assert_string_equal(cli_fit("胡静怡", 5, out, sizeof out), "胡静 ");
    assert_string_equal(cli_fit("光宽带 500M", 9, out, sizeof out), "光宽带 50");
}

static void test_no_broken_character_and_bad_bytes(void **state)
{
    (void)state;
    char out[64];
    cli_fit("包月包月包月", 7, out, sizeof out);
    assert_string_equal(out, "包月包 ");
    /* a lone continuation byte is one column, passed through */
    assert_int_equal(strlen(cli_fit("a\x80z", 4, out, sizeof out)), 4);
    /* the buffer bounds the result */
    char small[8];
    cli_fit("包月包月包月包月", 40, small, sizeof small);
    assert_true(strlen(small) < sizeof small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_is_padded_and_cut),
        cmocka_unit_test(test_chinese_takes_two_columns),
        cmocka_unit_test(test_no_broken_character_and_bad_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
