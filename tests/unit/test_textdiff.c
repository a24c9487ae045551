/* test_textdiff.c - unified diffs. The expected outputs were produced by
 * GNU diff 3.8 (`diff -u --label old.lua --label new.lua old new`) and are
 * compared byte for byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "textdiff.h"

#define TWENTY "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n20\n"

static const struct golden {
    const char *name, *old_text, *new_text, *want;
} goldens[] = {
    {"insert_start",
     "a\nb\nc\nd\ne\n",
     "new\na\nb\nc\nd\ne\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,3 +1,4 @@\n"
     "+new\n"
     " a\n"
     " b\n"
     " c\n"},
    {"insert_middle",
     TWENTY,
     "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n10.5\n11\n12\n13\n14\n15\n16\n17\n18\n19\n20\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -8,6 +8,7 @@\n"
     " 8\n"
     " 9\n"
     " 10\n"
     "+10.5\n"
     " 11\n"
     " 12\n"
     " 13\n"},
    {"insert_end",
     TWENTY,
     "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n20\n21\n22\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -18,3 +18,5 @@\n"
     " 18\n"
     " 19\n"
     " 20\n"
     "+21\n"
     "+22\n"},
    {"delete_start",
     TWENTY,
     "3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n20\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,5 +1,3 @@\n"
     "-1\n"
     "-2\n"
     " 3\n"
     " 4\n"
     " 5\n"},
    {"delete_middle",
     TWENTY,
     "1\n2\n3\n4\n5\n6\n7\n8\n12\n13\n14\n15\n16\n17\n18\n19\n20\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -6,9 +6,6 @@\n"
     " 6\n"
     " 7\n"
     " 8\n"
     "-9\n"
     "-10\n"
     "-11\n"
     " 12\n"
     " 13\n"
     " 14\n"},
    {"delete_end",
     TWENTY,
     "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -16,5 +16,3 @@\n"
     " 16\n"
     " 17\n"
     " 18\n"
     "-19\n"
     "-20\n"},
    {"change_start",
     TWENTY,
     "one\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n20\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,4 +1,4 @@\n"
     "-1\n"
     "+one\n"
     " 2\n"
     " 3\n"
     " 4\n"},
    {"change_middle",
     TWENTY,
     "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ntwelve\n13\n14\n15\n16\n17\n18\n19\n20\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -9,7 +9,7 @@\n"
     " 9\n"
     " 10\n"
     " 11\n"
     "-12\n"
     "+twelve\n"
     " 13\n"
     " 14\n"
     " 15\n"},
    {"change_end",
     TWENTY,
     "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\ntwenty\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -17,4 +17,4 @@\n"
     " 17\n"
     " 18\n"
     " 19\n"
     "-20\n"
     "+twenty\n"},
    {"from_empty",
     "",
     "a\nb\nc\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -0,0 +1,3 @@\n"
     "+a\n"
     "+b\n"
     "+c\n"},
    {"to_empty",
     "a\nb\nc\n",
     "",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,3 +0,0 @@\n"
     "-a\n"
     "-b\n"
     "-c\n"},
    {"single_line",
     "a\n",
     "b\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1 +1 @@\n"
     "-a\n"
     "+b\n"},
    {"two_hunks",
     TWENTY,
     "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\n12\n1three\n14\n15\n16\nseventeen\n18\n19\n"
     "20\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,6 +1,6 @@\n"
     " 1\n"
     " 2\n"
     "-3\n"
     "+three\n"
     " 4\n"
     " 5\n"
     " 6\n"
     "@@ -10,11 +10,11 @@\n"
     " 10\n"
     " 11\n"
     " 12\n"
     "-13\n"
     "+1three\n"
     " 14\n"
     " 15\n"
     " 16\n"
     "-17\n"
     "+seventeen\n"
     " 18\n"
     " 19\n"
     " 20\n"},
    {"gap_6_one_hunk",
     TWENTY,
     "1\n2\nthree\n4\n5\n6\n7\n8\n9\nten\n11\n12\n1three\n14\n15\n16\n17\n18\n19\n20\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,16 +1,16 @@\n"
     " 1\n"
     " 2\n"
     "-3\n"
     "+three\n"
     " 4\n"
     " 5\n"
     " 6\n"
     " 7\n"
     " 8\n"
     " 9\n"
     "-10\n"
     "+ten\n"
     " 11\n"
     " 12\n"
     "-13\n"
     "+1three\n"
     " 14\n"
     " 15\n"
     " 16\n"},
    {"gap_7_two_hunks",
     TWENTY,
     "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\neleven\n12\n1three\n14\n15\n16\n17\n18\n19\n20\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,6 +1,6 @@\n"
     " 1\n"
     " 2\n"
     "-3\n"
     "+three\n"
     " 4\n"
     " 5\n"
     " 6\n"
     "@@ -8,9 +8,9 @@\n"
     " 8\n"
     " 9\n"
     " 10\n"
     "-11\n"
     "+eleven\n"
     " 12\n"
     "-13\n"
     "+1three\n"
     " 14\n"
     " 15\n"
     " 16\n"},
    {"add_final_newline",
     "a\nb\nc",
     "a\nb\nc\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,3 +1,3 @@\n"
     " a\n"
     " b\n"
     "-c\n"
     "\\ No newline at end of file\n"
     "+c\n"},
    {"remove_final_newline",
     "a\nb\nc\n",
     "a\nb\nc",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,3 +1,3 @@\n"
     " a\n"
     " b\n"
     "-c\n"
     "+c\n"
     "\\ No newline at end of file\n"},
    {"change_no_newline",
     "a\nb\nc",
     "a\nb\nd",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,3 +1,3 @@\n"
     " a\n"
     " b\n"
     "-c\n"
     "\\ No newline at end of file\n"
     "+d\n"
     "\\ No newline at end of file\n"},
    {"context_no_newline",
     "a\nb\nc\nd",
     "x\nb\nc\nd",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,4 +1,4 @@\n"
     "-a\n"
     "+x\n"
     " b\n"
     " c\n"
     " d\n"
     "\\ No newline at end of file\n"},
    {"append_after_no_newline",
     "a\nb",
     "a\nb\nc\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,2 +1,3 @@\n"
     " a\n"
     "-b\n"
     "\\ No newline at end of file\n"
     "+b\n"
     "+c\n"},
    {"only_no_newline_line",
     "x",
     "y",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1 +1 @@\n"
     "-x\n"
     "\\ No newline at end of file\n"
     "+y\n"
     "\\ No newline at end of file\n"},
    {"repeated_insert",
     "a\nb\nb\nc\n",
     "a\nb\nb\nb\nc\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,4 +1,5 @@\n"
     " a\n"
     " b\n"
     " b\n"
     "+b\n"
     " c\n"},
    {"repeated_delete",
     "x\ny\ny\ny\nz\n",
     "x\ny\ny\nz\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,5 +1,4 @@\n"
     " x\n"
     " y\n"
     " y\n"
     "-y\n"
     " z\n"},
    {"blank_lines",
     "a\n\n\nb\n\nc\n",
     "a\n\nb\n\n\nc\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,6 +1,6 @@\n"
     " a\n"
     " \n"
     "-\n"
     " b\n"
     " \n"
     "+\n"
     " c\n"},
    {"reorder",
     "a\nb\nc\nd\n",
     "c\nd\na\nb\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,4 +1,4 @@\n"
     "-a\n"
     "-b\n"
     " c\n"
     " d\n"
     "+a\n"
     "+b\n"},
    {"crlf",
     "a\r\nb\r\nc\r\n",
     "a\r\nB\r\nc\r\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,3 +1,3 @@\n"
     " a\r\n"
     "-b\r\n"
     "+B\r\n"
     " c\r\n"},
    {"slide_deletion_down",
     "b\na\na\n",
     "a\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,3 +1 @@\n"
     "-b\n"
     "-a\n"
     " a\n"},
    {"slide_next_to_replacement",
     "a\na\n",
     "b\na\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,2 +1,2 @@\n"
     "-a\n"
     "+b\n"
     " a\n"},
    {"slide_insertion_merge",
     "a\n",
     "x\na\na\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1 +1,3 @@\n"
     "+x\n"
     "+a\n"
     " a\n"},
    {"append_repeated_line",
     "a\na\na\na\n",
     "a\na\na\na\na\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -2,3 +2,4 @@\n"
     " a\n"
     " a\n"
     " a\n"
     "+a\n"},
    {"suffix_context_limit",
     "a\na\na\na\n",
     "x\na\na\na\na\na\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,3 +1,5 @@\n"
     "+x\n"
     "+a\n"
     " a\n"
     " a\n"
     " a\n"},
    {"suffix_context_limit_2",
     "a\nb\na\na\na\na\n",
     "b\na\na\na\na\na\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,6 +1,6 @@\n"
     "-a\n"
     " b\n"
     " a\n"
     " a\n"
     " a\n"
     "+a\n"
     " a\n"},
    {"long_repeated_tail",
     "b\nb\nc\nc\na\na\na\na\na\n",
     "b\nc\nc\na\na\na\na\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,9 +1,7 @@\n"
     " b\n"
     "-b\n"
     " c\n"
     " c\n"
     " a\n"
     " a\n"
     " a\n"
     "-a\n"
     " a\n"},
    {"insert_before_no_newline_line",
     "a\na\n",
     "x\na\na",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,2 +1,3 @@\n"
     "+x\n"
     " a\n"
     "-a\n"
     "+a\n"
     "\\ No newline at end of file\n"},
    {"slide_onto_replacement",
     "a\nb\nb\nb\nb\na\na\na\nb\n",
     "a\nb\nC\nb\na\na\nb\na\na\nb\n",
     "--- old.lua\n"
     "+++ new.lua\n"
     "@@ -1,9 +1,10 @@\n"
     " a\n"
     " b\n"
     "-b\n"
     "-b\n"
     "+C\n"
     " b\n"
     " a\n"
     " a\n"
     "+b\n"
     "+a\n"
     " a\n"
     " b\n"},
};

static const char lua_old[] =
    "-- billing rules for residential plans\n"
    "local M = {}\n"
    "\n"
    "local VAT = 0.06\n"
    "\n"
    "function M.monthly_fee(plan, days)\n"
    "  if plan.kind == \"fiber\" then\n"
    "    return plan.price\n"
    "  end\n"
    "  local fee = plan.price * days / 30\n"
    "  return math.floor(fee + 0.5)\n"
    "end\n"
    "\n"
    "function M.overage(plan, gb)\n"
    "  if gb <= plan.quota_gb then\n"
    "    return 0\n"
    "  end\n"
    "  return (gb - plan.quota_gb) * plan.over_price\n"
    "end\n"
    "\n"
    "function M.tax(amount)\n"
    "  return amount * VAT\n"
    "end\n"
    "\n"
    "return M\n";

static const char lua_new[] =
    "-- billing rules for residential plans\n"
    "local M = {}\n"
    "\n"
    "local VAT = 0.09\n"
    "\n"
    "function M.monthly_fee(plan, days)\n"
    "  if plan.kind == \"fiber\" or plan.kind == \"fiber-pro\" then\n"
    "    return plan.price\n"
    "  end\n"
    "  local fee = plan.price * days / 30\n"
    "  return math.floor(fee + 0.5)\n"
    "end\n"
    "\n"
    "function M.overage(plan, gb)\n"
    "  if gb <= plan.quota_gb then\n"
    "    return 0\n"
    "  end\n"
    "  return (gb - plan.quota_gb) * plan.over_price\n"
    "end\n"
    "\n"
    "function M.discount(amount, months)\n"
    "  if months >= 12 then\n"
    "    return amount * 0.1\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "\n"
    "function M.tax(amount)\n"
    "  return amount * VAT\n"
    "end\n"
    "\n"
    "return M\n";

static const char lua_diff[] =
    "--- old.lua\n"
    "+++ new.lua\n"
    "@@ -1,10 +1,10 @@\n"
    " -- billing rules for residential plans\n"
    " local M = {}\n"
    " \n"
    "-local VAT = 0.06\n"
    "+local VAT = 0.09\n"
    " \n"
    " function M.monthly_fee(plan, days)\n"
    "-  if plan.kind == \"fiber\" then\n"
    "+  if plan.kind == \"fiber\" or plan.kind == \"fiber-pro\" then\n"
    "     return plan.price\n"
    "   end\n"
    "   local fee = plan.price * days / 30\n"
    "@@ -18,6 +18,13 @@\n"
    "   return (gb - plan.quota_gb) * plan.over_price\n"
    " end\n"
    " \n"
    "+function M.discount(amount, months)\n"
    "+  if months >= 12 then\n"
    "+    return amount * 0.1\n"
    "+  end\n"
    "+  return 0\n"
    "+end\n"
    "+\n"
    " function M.tax(amount)\n"
    "   return amount * VAT\n"
    " end\n";

static void diff_into(buf *out, const char *old_text, size_t old_len, const char *new_text,
                      size_t new_len)
{
    int rc = textdiff_unified("old.lua", old_text, old_len, "new.lua", new_text, new_len, out);
    assert_int_equal(rc, 0);
}

static void expect_diff(const char *name, const char *old_text, const char *new_text,
                        const char *want)
{
    buf out = {0};
    diff_into(&out, old_text, strlen(old_text), new_text, strlen(new_text));
    if (strcmp(buf_cstr(&out), want) != 0) {
        print_error("case %s: got\n%s\nwant\n%s\n", name, buf_cstr(&out), want);
        buf_free(&out);
        fail();
    }
    buf_free(&out);
}

static void test_matches_diff_u(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++)
        expect_diff(goldens[i].name, goldens[i].old_text, goldens[i].new_text, goldens[i].want);
}

static void test_lua_rules_file(void **state)
{
    (void)state;
    expect_diff("lua_rules", lua_old, lua_new, lua_diff);
}

static void test_equal_texts_give_nothing(void **state)
{
    (void)state;
    static const char *const texts[] = {"", "\n", "a\n", "a\nb\nc\n", "no newline", "a\n\n\nb"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        buf out = {0};
        /* different buffers with the same bytes */
        char *copy = strdup(texts[i]);
        assert_non_null(copy);
        diff_into(&out, texts[i], strlen(texts[i]), copy, strlen(copy));
        assert_int_equal(out.len, 0);
        assert_null(out.data);
        free(copy);
    }
    buf out = {0};
    assert_int_equal(textdiff_unified("a", NULL, 0, "b", NULL, 0, &out), 0);
    assert_int_equal(out.len, 0);
}

static void test_empty_side(void **state)
{
    (void)state;
    buf out = {0};
    assert_int_equal(textdiff_unified("a", NULL, 0, "b", "x\n", 2, &out), 0);
    assert_string_equal(buf_cstr(&out), "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n");
    buf_reset(&out);
    assert_int_equal(textdiff_unified("a", "x", 1, "b", NULL, 0, &out), 0);
    assert_string_equal(buf_cstr(&out),
                        "--- a\n+++ b\n@@ -1 +0,0 @@\n-x\n\\ No newline at end of file\n");
    buf_reset(&out);
    /* an empty line is a line */
    assert_int_equal(textdiff_unified("a", "", 0, "b", "\n", 1, &out), 0);
    assert_string_equal(buf_cstr(&out), "--- a\n+++ b\n@@ -0,0 +1 @@\n+\n");
    buf_free(&out);
}

static void test_appends_to_buffer(void **state)
{
    (void)state;
    buf out = {0};
    assert_int_equal(buf_puts(&out, "diff of rule set 7\n"), 0);
    assert_int_equal(textdiff_unified("rules/v1 (active)", "a\nb\n", 4, "rules/v2\t(draft)",
                                      "a\nc\n", 4, &out),
                     0);
    assert_string_equal(buf_cstr(&out), "diff of rule set 7\n"
                                        "--- rules/v1 (active)\n"
                                        "+++ rules/v2\t(draft)\n"
                                        "@@ -1,2 +1,2 @@\n"
                                        " a\n"
                                        "-b\n"
                                        "+c\n");
    /* equal texts leave the buffer exactly as it was */
    size_t len = out.len;
    assert_int_equal(textdiff_unified("x", "a\n", 2, "y", "a\n", 2, &out), 0);
    assert_int_equal(out.len, len);
    buf_free(&out);
}

static void test_lengths_not_nul(void **state)
{
    (void)state;
    /* the lengths decide, not NUL bytes: only the first 4 bytes are text */
    buf out = {0};
    assert_int_equal(textdiff_unified("a", "a\nb\nIGNORED", 4, "b", "a\nc\nALSO", 4, &out), 0);
    assert_string_equal(buf_cstr(&out), "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
    buf_reset(&out);
    static const char with_nul_old[] = {'a', '\n', 'x', '\0', 'y', '\n'};
    static const char with_nul_new[] = {'a', '\n', 'x', '\0', 'z', '\n'};
    assert_int_equal(textdiff_unified("a", with_nul_old, sizeof with_nul_old, "b", with_nul_new,
                                      sizeof with_nul_new, &out),
                     0);
    static const char want[] = "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-x\0y\n+x\0z\n";
    assert_int_equal(out.len, sizeof want - 1);
    assert_memory_equal(out.data, want, sizeof want - 1);
    buf_free(&out);
}

/* --------------------------------------------------------------------- */
/* Property checks: the diff applies, and it is minimal                   */
/* --------------------------------------------------------------------- */

typedef struct text_lines {
    const char **s;
    size_t *len; /* with the '\n', if any */
    size_t n;
} text_lines;

static void split(const char *text, size_t len, text_lines *tl)
{
    tl->s = malloc(sizeof *tl->s * (len + 1));
    tl->len = malloc(sizeof *tl->len * (len + 1));
    assert_non_null(tl->s);
    assert_non_null(tl->len);
    tl->n = 0;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) + 1 : len;
        tl->s[tl->n] = text + i;
        tl->len[tl->n++] = e - i;
        i = e;
    }
}

static void split_free(text_lines *tl)
{
    free(tl->s);
    free(tl->len);
}

/* A strict patch(1): applies the unified diff `d` to old_text, checking
 * every context and deleted line and every hunk count, and returns the
 * result. Returns the number of changed lines through *changed. */
static void apply_diff(const char *d, size_t dlen, const char *old_text, size_t old_len,
                       buf *result, size_t *deleted, size_t *inserted)
{
    text_lines old, diff;
    split(old_text, old_len, &old);
    split(d, dlen, &diff);
    *deleted = *inserted = 0;
    size_t k = 0, at = 0; /* k: diff line, at: old line */
    if (dlen == 0) goto copy_rest;

    assert_true(diff.n >= 3);
    assert_memory_equal(diff.s[0], "--- ", 4);
    assert_memory_equal(diff.s[1], "+++ ", 4);
    k = 2;
    while (k < diff.n) {
        long a, b = 1, c, e = 1;
        char hdr[128];
        assert_true(diff.len[k] < sizeof hdr);
        memcpy(hdr, diff.s[k], diff.len[k]);
        hdr[diff.len[k]] = '\0';
        if (sscanf(hdr, "@@ -%ld,%ld +", &a, &b) != 2)
            assert_int_equal(sscanf(hdr, "@@ -%ld +", &a), 1);
        const char *plus = strchr(hdr, '+');
        assert_non_null(plus);
        if (sscanf(plus, "+%ld,%ld @@", &c, &e) != 2)
            assert_int_equal(sscanf(plus, "+%ld @@", &c), 1);
        size_t start = b == 0 ? (size_t)a : (size_t)a - 1;
        assert_true(start >= at);
        for (; at < start; at++) assert_int_equal(buf_append(result, old.s[at], old.len[at]), 0);
        /* new-side line numbers must agree with what has been produced */
        size_t produced = 0;
        for (size_t i = 0; i < result->len; i++) produced += result->data[i] == '\n';
        assert_int_equal(e == 0 ? (size_t)c : (size_t)c - 1, produced);
        k++;
        long seen_old = 0, seen_new = 0;
        while (k < diff.n && diff.s[k][0] != '@') {
            char t = diff.s[k][0];
            const char *s = diff.s[k] + 1;
            size_t n = diff.len[k] - 1;
            if (k + 1 < diff.n && diff.s[k + 1][0] == '\\') {
                assert_int_equal(diff.len[k + 1], strlen("\\ No newline at end of file\n"));
                assert_memory_equal(diff.s[k + 1], "\\ No newline at end of file\n",
                                    diff.len[k + 1]);
                n--;
            }
            if (t == ' ' || t == '-') {
                assert_true(at < old.n);
                assert_int_equal(old.len[at], n);
                assert_memory_equal(old.s[at], s, n);
                at++;
                seen_old++;
            }
            if (t == ' ' || t == '+') {
                assert_int_equal(buf_append(result, s, n), 0);
                seen_new++;
            }
            if (t == '-') ++*deleted;
            if (t == '+') ++*inserted;
            assert_true(t == ' ' || t == '-' || t == '+');
            k += k + 1 < diff.n && diff.s[k + 1][0] == '\\' ? 2 : 1;
        }
        assert_int_equal(seen_old, b);
        assert_int_equal(seen_new, e);
    }
copy_rest:
    for (; at < old.n; at++) assert_int_equal(buf_append(result, old.s[at], old.len[at]), 0);
    split_free(&old);
    split_free(&diff);
}

static size_t lcs_length(const text_lines *a, const text_lines *b)
{
    size_t *row = calloc((b->n + 1) * 2, sizeof *row);
    assert_non_null(row);
    size_t *prev = row, *cur = row + b->n + 1;
    for (size_t i = 1; i <= a->n; i++) {
        for (size_t j = 1; j <= b->n; j++) {
            if (a->len[i - 1] == b->len[j - 1] &&
                memcmp(a->s[i - 1], b->s[j - 1], a->len[i - 1]) == 0)
                cur[j] = prev[j - 1] + 1;
            else
                cur[j] = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
        }
        size_t *t = prev;
        prev = cur;
        cur = t;
    }
    size_t r = prev[b->n];
    free(row);
    return r;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void random_text(buf *b, uint64_t *seed, int lines, int alphabet)
{
    static const char *const words[] = {"end", "", "  return 0", "a", "b", "local x = 1",
                                        "}", "c", "d", "e"};
    for (int i = 0; i < lines; i++) {
        assert_int_equal(buf_puts(b, words[next_rand(seed) % (uint64_t)alphabet]), 0);
        assert_int_equal(buf_putc(b, '\n'), 0);
    }
    /* sometimes no final newline */
    if (b->len && next_rand(seed) % 5 == 0) b->data[--b->len] = '\0';
}

static void check_pair(const char *a, size_t alen, const char *b, size_t blen)
{
    buf d = {0}, result = {0};
    size_t deleted, inserted;
    diff_into(&d, a, alen, b, blen);
    apply_diff(buf_cstr(&d), d.len, a, alen, &result, &deleted, &inserted);
    if (result.len != blen || (blen && memcmp(result.data, b, blen) != 0)) {
        print_error("diff does not apply:\n%s", buf_cstr(&d));
        fail();
    }
    if (alen < 4000 && blen < 4000) {
        text_lines ta, tb;
        split(a, alen, &ta);
        split(b, blen, &tb);
        size_t lcs = lcs_length(&ta, &tb);
        assert_int_equal(deleted, ta.n - lcs);
        assert_int_equal(inserted, tb.n - lcs);
        split_free(&ta);
        split_free(&tb);
    }
    buf_free(&d);
    buf_free(&result);
}

static void test_random_pairs_apply_and_are_minimal(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 600; round++) {
        buf a = {0}, b = {0};
        int alphabet = 2 + (int)(next_rand(&seed) % 9);
        random_text(&a, &seed, (int)(next_rand(&seed) % 40), alphabet);
        if (next_rand(&seed) % 3 == 0) {
            random_text(&b, &seed, (int)(next_rand(&seed) % 40), alphabet);
        } else {
            /* an edited copy: the common case of a diff */
            const char *p = buf_cstr(&a);
            while (*p) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
                uint64_t r = next_rand(&seed) % 10;
                if (r == 0) random_text(&b, &seed, 1 + (int)(next_rand(&seed) % 3), alphabet);
                if (r != 1) assert_int_equal(buf_append(&b, p, n), 0);
                p += n;
            }
        }
        check_pair(buf_cstr(&a), a.len, buf_cstr(&b), b.len);
        check_pair(buf_cstr(&b), b.len, buf_cstr(&a), a.len);
        buf_free(&a);
        buf_free(&b);
    }
}

/* --------------------------------------------------------------------- */
/* Large inputs                                                           */
/* --------------------------------------------------------------------- */

static void numbered(buf *b, long n, const char *prefix)
{
    for (long i = 1; i <= n; i++) assert_int_equal(buf_printf(b, "%s %ld\n", prefix, i), 0);
}

static void test_100k_lines_small_edit(void **state)
{
    (void)state;
    buf a = {0}, b = {0}, d = {0}, want = {0};
    numbered(&a, 100000, "line");
    for (long i = 1; i <= 100000; i++) {
        if (i == 50000) assert_int_equal(buf_puts(&b, "changed\n"), 0);
        else if (i != 99999) assert_int_equal(buf_printf(&b, "line %ld\n", i), 0);
    }
    diff_into(&d, a.data, a.len, b.data, b.len);
    assert_int_equal(buf_puts(&want, "--- old.lua\n+++ new.lua\n"
                                     "@@ -49997,7 +49997,7 @@\n"
                                     " line 49997\n line 49998\n line 49999\n"
                                     "-line 50000\n+changed\n"
                                     " line 50001\n line 50002\n line 50003\n"
                                     "@@ -99996,5 +99996,4 @@\n"
                                     " line 99996\n line 99997\n line 99998\n"
                                     "-line 99999\n"
                                     " line 100000\n"),
                     0);
    assert_string_equal(buf_cstr(&d), buf_cstr(&want));
    buf_free(&a);
    buf_free(&b);
    buf_free(&d);
    buf_free(&want);
}

static void test_100k_lines_nothing_in_common(void **state)
{
    (void)state;
    buf a = {0}, b = {0}, d = {0};
    numbered(&a, 100000, "old");
    numbered(&b, 100000, "new");
    clock_t start = clock();
    diff_into(&d, a.data, a.len, b.data, b.len);
    double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
    /* one hunk: every old line deleted, then every new line inserted */
    assert_memory_equal(d.data, "--- old.lua\n+++ new.lua\n@@ -1,100000 +1,100000 @@\n-old 1\n",
                        strlen("--- old.lua\n+++ new.lua\n@@ -1,100000 +1,100000 @@\n-old 1\n"));
    assert_int_equal(d.len, strlen("--- old.lua\n+++ new.lua\n@@ -1,100000 +1,100000 @@\n") +
                                a.len + b.len + 200000);
    /* lines without a match never enter the O(ND) search */
    if (secs > 10.0) {
        print_error("took %.2fs\n", secs);
        fail();
    }
    buf_free(&a);
    buf_free(&b);
    buf_free(&d);
}

/* Far more than `too_expensive` edits: the search bounds its cost and the
 * result, while no longer guaranteed minimal, must still apply. */
static void test_large_reordering_applies(void **state)
{
    (void)state;
    buf a = {0}, b = {0};
    uint64_t seed = 12345;
    long n = 20000;
    long *perm = malloc(sizeof *perm * (size_t)n);
    assert_non_null(perm);
    for (long i = 0; i < n; i++) perm[i] = i;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(next_rand(&seed) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (long i = 0; i < n; i++) {
        assert_int_equal(buf_printf(&a, "row %ld\n", i), 0);
        assert_int_equal(buf_printf(&b, "row %ld\n", perm[i]), 0);
    }
    check_pair(a.data, a.len, b.data, b.len);
    free(perm);
    buf_free(&a);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_diff_u),
        cmocka_unit_test(test_lua_rules_file),
        cmocka_unit_test(test_equal_texts_give_nothing),
        cmocka_unit_test(test_empty_side),
        cmocka_unit_test(test_appends_to_buffer),
        cmocka_unit_test(test_lengths_not_nul),
        cmocka_unit_test(test_random_pairs_apply_and_are_minimal),
        cmocka_unit_test(test_100k_lines_small_edit),
        cmocka_unit_test(test_100k_lines_nothing_in_common),
        cmocka_unit_test(test_large_reordering_applies),
    };
    return cmocka_run_group_tests_name("textdiff", tests, NULL, NULL);
}
