/* test_sandbox.c - escape attempts against the rule sandbox.
 *
 * Every test builds a rule set in memory, tries one way out of the sandbox
 * and checks that it is REFUSED with a clear, located error (err.msg and the
 * fields of lhost_last_error(): kind, file, line, function) and that nothing
 * crashes. Most rules are one module "esc.lua" written as
 *
 *     line 1  local M = {}
 *     line 2  function M.f(ctx)
 *     line 3  <first line of the body>
 *     ...     end / return M
 *
 * so an error on the first body line is reported at esc.lua:3. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "buf.h"
#include "json.h"
#include "lua_host.h"
#include "metrics.h"
#include "rules.h"

/* ------------------------------------------------------------ helpers */

#define SRC_HEAD "local M = {}\nfunction M.f(ctx)\n"
#define SRC_TAIL "\nend\nreturn M\n"
#define BODY_LINE 3

/* A small budget keeps the loops fast; the memory cap is generous enough
 * for every non-memory test. */
static const lhost_limits fast_limits = {.max_instructions = 200000, .max_memory = 16u << 20};

#define RF(p, t) {(char *)(p), (char *)(t), sizeof(t) - 1}

static void assert_contains_at(const char *hay, const char *needle, const char *file, int line)
{
    if (!hay || !needle || !strstr(hay, needle)) {
        print_error("%s:%d: expected to find \"%s\" in \"%s\"\n", file, line, needle ? needle : "(null)",
                    hay ? hay : "(null)");
        fail();
    }
}
#define assert_contains(hay, needle) assert_contains_at((hay), (needle), __FILE__, __LINE__)

typedef struct box {
    char src[8192];
    rule_file file;
    lhost *h;
    jv_arena a;
    err e;
    rule_error detail;
} box;

/* Opens the one-module rule set "esc.lua" whose function f runs `body`. */
static void box_open_lim(box *b, const char *body, const lhost_limits *lim)
{
    memset(b, 0, sizeof *b);
    snprintf(b->src, sizeof b->src, SRC_HEAD "%s" SRC_TAIL, body);
    b->file.path = (char *)"esc.lua";
    b->file.text = b->src;
    b->file.len = strlen(b->src);
    jv_arena_init(&b->a, 8u << 20);
    int rc = lhost_open(&b->file, 1, lim, &b->h, &b->detail, &b->e);
    if (rc) print_error("esc.lua did not load: %s\n", b->e.msg);
    assert_int_equal(rc, 0);
    assert_non_null(b->h);
}

static void box_open(box *b, const char *body) { box_open_lim(b, body, &fast_limits); }

/* Calls esc.f with one context parsed from JSON (or none). */
static int box_call_ctx(box *b, const char *fn, const char *ctx_json, jv **out)
{
    const jv *args[1];
    int nargs = 0;
    if (ctx_json) {
        jv *ctx = NULL;
        err pe;
        err_clear(&pe);
        int rc = json_parse(ctx_json, strlen(ctx_json), &json_default_limits, &b->a, &ctx, &pe);
        if (rc) print_error("bad test context %s: %s\n", ctx_json, pe.msg);
        assert_int_equal(rc, 0);
        args[nargs++] = ctx;
    }
    err_clear(&b->e);
    *out = NULL;
    return lhost_call(b->h, "esc", fn, args, nargs, &b->a, out, &b->e);
}

static int box_call(box *b, jv **out) { return box_call_ctx(b, "f", NULL, out); }

static void box_close(box *b)
{
    lhost_close(b->h);
    b->h = NULL;
    jv_arena_free(&b->a);
}

/* The call must fail with ERR_RULE, of `kind`, located at esc.lua:`line` in
 * function `fn`, with `needle` in the API message and in rule_error.message;
 * the API message names the rule and its location. */
static void check_refused_ctx(const char *body, const char *ctx_json, const lhost_limits *lim, int line,
                              const char *fn, const char *kind, const char *needle)
{
    box b;
    box_open_lim(&b, body, lim);
    jv *out = NULL;
    int rc = box_call_ctx(&b, "f", ctx_json, &out);
    if (rc == 0) {
        buf s = {0};
        json_write(&s, out);
        print_error("the rule was NOT refused; it returned %s\n", buf_cstr(&s));
        buf_free(&s);
    }
    assert_int_equal(rc, ERR_RULE);
    assert_int_equal(b.e.code, ERR_RULE);
    const rule_error *r = lhost_last_error(b.h);
    assert_string_equal(r->kind, kind);
    assert_string_equal(r->rule, "esc.f");
    assert_string_equal(r->file, "esc.lua");
    assert_int_equal(r->line, line);
    assert_string_equal(r->function, fn);
    assert_contains(r->message, needle);
    assert_contains(b.e.msg, needle);
    char where[64];
    snprintf(where, sizeof where, "rule esc.f failed at esc.lua:%d (function '%s')", line, fn);
    assert_contains(b.e.msg, where);
    /* the message is reported apart from its location */
    assert_null(strstr(r->message, "esc.lua:"));
    box_close(&b);
}

static void check_refused(const char *body, int line, const char *kind, const char *needle)
{
    check_refused_ctx(body, NULL, &fast_limits, line, "f", kind, needle);
}

/* Runs esc.f and returns its result serialised as JSON into out. */
static void run_ok(const char *body, char *out, size_t n)
{
    box b;
    box_open(&b, body);
    jv *res = NULL;
    int rc = box_call(&b, &res);
    if (rc) print_error("call failed: %s\n", b.e.msg);
    assert_int_equal(rc, 0);
    buf s = {0};
    assert_int_equal(json_write(&s, res), 0);
    snprintf(out, n, "%s", buf_cstr(&s));
    buf_free(&s);
    box_close(&b);
}

/* Opens a rule set that must fail to load; returns the error. */
static int open_fails(const rule_file *files, size_t n, rule_error *detail, err *e)
{
    static char sentinel;
    lhost *h = (lhost *)&sentinel; /* lhost_open must reset it to NULL */
    err_clear(e);
    int rc = lhost_open(files, n, &fast_limits, &h, detail, e);
    assert_null(h);
    return rc;
}

/* ------------------------------------------------- no files, no OS */

static void test_io_open_refused(void **state)
{
    (void)state;
    check_refused("  return io.open('/etc/passwd'):read('a')", BODY_LINE, "runtime",
                  "attempt to index a nil value (global 'io')");
}

static void test_os_execute_refused(void **state)
{
    (void)state;
    check_refused("  return os.execute('id')", BODY_LINE, "runtime", "attempt to index a nil value (global 'os')");
}

static void test_package_absent(void **state)
{
    (void)state;
    check_refused("  package.path = '/etc/?'\n  return package.loaded", BODY_LINE, "runtime",
                  "attempt to index a nil value (global 'package')");
}

static void test_debug_absent(void **state)
{
    (void)state;
    check_refused("  return debug.getregistry()", BODY_LINE, "runtime",
                  "attempt to index a nil value (global 'debug')");
}

static void test_coroutine_absent(void **state)
{
    (void)state;
    check_refused("  return coroutine.wrap(function() end)", BODY_LINE, "runtime",
                  "attempt to index a nil value (global 'coroutine')");
}

static void test_real_globals_absent(void **state)
{
    (void)state;
    char out[256];
    /* _G would hand out the unfiltered globals; none of these may exist */
    run_ok("  return type(_G) .. ' ' .. type(io) .. ' ' .. type(os) .. ' ' .. type(debug)\n"
           "    .. ' ' .. type(package) .. ' ' .. type(coroutine)",
           out, sizeof out);
    assert_string_equal(out, "\"nil nil nil nil nil nil\"");
}

/* ---------------------------------------------------------- loaders */

static void test_load_refused(void **state)
{
    (void)state;
    check_refused("  return load('return 1')()", BODY_LINE, "runtime",
                  "attempt to call a nil value (global 'load')");
}

static void test_load_bytecode_string_refused(void **state)
{
    (void)state;
    /* "\27Lua" is the bytecode signature: no loader may accept it */
    check_refused("  local chunk = '\\27LuaT\\0\\25\\147\\r\\n\\26\\n'\n  return load(chunk, 'x', 'b')()", BODY_LINE + 1,
                  "runtime", "attempt to call a nil value (global 'load')");
}

static void test_loadstring_refused(void **state)
{
    (void)state;
    check_refused("  return loadstring('return 1')()", BODY_LINE, "runtime",
                  "attempt to call a nil value (global 'loadstring')");
}

static void test_dofile_refused(void **state)
{
    (void)state;
    check_refused("  return dofile('/etc/passwd')", BODY_LINE, "runtime",
                  "attempt to call a nil value (global 'dofile')");
}

static void test_loadfile_refused(void **state)
{
    (void)state;
    check_refused("  return loadfile('/etc/passwd')", BODY_LINE, "runtime",
                  "attempt to call a nil value (global 'loadfile')");
}

static void test_no_loader_reachable(void **state)
{
    (void)state;
    char out[256];
    run_ok("  return type(load) .. ' ' .. type(loadstring) .. ' ' .. type(dofile) .. ' '\n"
           "    .. type(loadfile) .. ' ' .. type(string.dump) .. ' ' .. type(('').dump)",
           out, sizeof out);
    assert_string_equal(out, "\"nil nil nil nil nil nil\"");
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    return buf_append(ud, p, sz) ? 1 : 0;
}

/* A real precompiled chunk given as a rule file is refused by the only
 * loader there is (require loads text only). */
static void test_bytecode_rule_file_refused(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    assert_int_equal(luaL_loadstring(L, "local M = {} function M.f() return 1 end return M"), LUA_OK);
    buf code = {0};
    assert_int_equal(lua_dump(L, dump_writer, &code, 0), 0);
    lua_close(L);
    assert_true(code.len > 4);
    assert_memory_equal(code.data, "\x1bLua", 4);

    rule_file files[] = {{(char *)"evil.lua", code.data, code.len}};
    rule_error d;
    err e;
    int rc = open_fails(files, 1, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(d.kind, "syntax");
    assert_string_equal(d.rule, "evil (loading)");
    assert_contains(d.message, "attempt to load a binary chunk (mode is 't')");
    assert_contains(e.msg, "rule evil (loading) failed");
    assert_contains(e.msg, "binary chunk");
    buf_free(&code);
}

/* The same through require from another module. */
static void test_bytecode_through_require_refused(void **state)
{
    (void)state;
    static const char bin[] = "\x1bLuaT\x00\x19\x93\r\n\x1a\n\x04\x08\x08";
    rule_file files[] = {
        RF("a.lua", "local b = require('zbin')\nreturn {}\n"),
        {(char *)"zbin.lua", (char *)bin, sizeof bin - 1},
    };
    rule_error d;
    err e;
    int rc = open_fails(files, 2, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(d.kind, "syntax");
    assert_string_equal(d.rule, "a (loading)");
    assert_contains(d.message, "attempt to load a binary chunk");
    assert_contains(e.msg, "binary chunk");
}

/* ---------------------------------------------------------- require */

static void test_require_parent_path_refused(void **state)
{
    (void)state;
    check_refused("  return require('../etc/passwd')", BODY_LINE, "runtime",
                  "invalid module name '../etc/passwd'");
}

static void test_require_absolute_path_refused(void **state)
{
    (void)state;
    check_refused("  return require('/etc/passwd')", BODY_LINE, "runtime", "invalid module name '/etc/passwd'");
}

static void test_require_dotdot_module_refused(void **state)
{
    (void)state;
    /* dots separate folders; ".." would climb out of the rules folder */
    check_refused("  return require('lib..secret')", BODY_LINE, "runtime", "invalid module name 'lib..secret'");
}

static void test_require_missing_module(void **state)
{
    (void)state;
    check_refused("  return require('missing')", BODY_LINE, "runtime",
                  "module 'missing' not found in the rules folder");
}

static void test_require_finds_rule_set_module(void **state)
{
    (void)state;
    rule_file files[] = {
        RF("main.lua", "local cal = require('lib.cal')\nlocal M = {}\n"
                       "function M.f() return cal.days * 2 end\nreturn M\n"),
        RF("lib/cal.lua", "return { days = 21 }\n"),
    };
    lhost *h;
    err e;
    int rc = lhost_open(files, 2, &fast_limits, &h, NULL, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    assert_int_equal(lhost_call(h, "main", "f", NULL, 0, &a, &out, &e), 0);
    /* 21 * 2 = 42 */
    assert_int_equal(out->kind, JV_INT);
    assert_int_equal(out->u.i, 42);
    jv_arena_free(&a);
    lhost_close(h);
}

static void test_circular_require_refused(void **state)
{
    (void)state;
    rule_file files[] = {
        RF("a.lua", "local b = require('b')\nreturn {}\n"),
        RF("b.lua", "local a = require('a')\nreturn {}\n"),
    };
    rule_error d;
    err e;
    int rc = open_fails(files, 2, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(d.kind, "runtime");
    assert_string_equal(d.rule, "a (loading)");
    /* a loads first (sorted), requires b, whose line 1 requires a again */
    assert_string_equal(d.file, "b.lua");
    assert_int_equal(d.line, 1);
    assert_string_equal(d.function, "main chunk");
    assert_contains(d.message, "circular require of module 'a'");
    assert_contains(e.msg, "circular require of module 'a'");
    assert_contains(e.msg, "b.lua:1");
}

/* ------------------------------------------------ string metatable */

static void test_string_metatable_hidden(void **state)
{
    (void)state;
    char out[64];
    run_ok("  return getmetatable('')", out, sizeof out);
    assert_string_equal(out, "false");
}

static void test_setmetatable_on_string_metatable_refused(void **state)
{
    (void)state;
    check_refused("  setmetatable(getmetatable(''), { __index = function() return 'pwned' end })\n  return ('').x",
                  BODY_LINE, "runtime", "bad argument #1 to 'setmetatable' (table expected, got boolean)");
}

static void test_string_metatable_index_refused(void **state)
{
    (void)state;
    check_refused("  local real = getmetatable('').__index\n  real.upper = nil", BODY_LINE, "runtime",
                  "attempt to index a boolean value");
}

static void test_string_methods_still_work(void **state)
{
    (void)state;
    char out[64];
    /* method calls go through the hidden metatable: "ab" * 3 = "ababab" */
    run_ok("  return ('ab'):rep(3) .. ('X'):lower()", out, sizeof out);
    assert_string_equal(out, "\"abababx\"");
}

static void test_string_method_dump_absent(void **state)
{
    (void)state;
    check_refused("  return ('').dump(function() end)", BODY_LINE, "runtime",
                  "attempt to call a nil value (field 'dump')");
}

static void test_string_dump_absent(void **state)
{
    (void)state;
    check_refused("  return string.dump(M.f)", BODY_LINE, "runtime", "attempt to call a nil value (field 'dump')");
}

/* ----------------------------------------------- read-only libraries */

static void test_rawset_on_string_refused(void **state)
{
    (void)state;
    check_refused("  rawset(string, 'upper', function() return 'pwned' end)\n  return string.upper('x')", BODY_LINE,
                  "runtime", "attempt to modify a read-only table with rawset");
}

static void test_assign_string_upper_refused(void **state)
{
    (void)state;
    check_refused("  string.upper = nil\n  return 1", BODY_LINE, "runtime",
                  "attempt to modify a read-only table (field 'upper')");
}

static void test_assign_nested_helper_refused(void **state)
{
    (void)state;
    check_refused("  bandbill.money.parse = function() return 0 end\n  return 1", BODY_LINE, "runtime",
                  "attempt to modify a read-only table (field 'parse')");
}

static void test_rawset_on_nested_helper_refused(void **state)
{
    (void)state;
    check_refused("  rawset(bandbill.date, 'diff', print)\n  return 1", BODY_LINE, "runtime",
                  "attempt to modify a read-only table with rawset");
}

static void test_library_metatable_locked(void **state)
{
    (void)state;
    check_refused("  setmetatable(math, nil)\n  return 1", BODY_LINE, "runtime", "cannot change a protected metatable");
}

static void test_rawset_on_own_table_allowed(void **state)
{
    (void)state;
    char out[64];
    run_ok("  local t = {}\n  rawset(t, 'k', 7)\n  return t", out, sizeof out);
    assert_string_equal(out, "{\"k\":7}");
}

/* One module's attempts (caught by its own pcall) leave what the next
 * module sees untouched, and its own globals do not leak to others. */
static void test_one_module_cannot_change_libraries_for_another(void **state)
{
    (void)state;
    rule_file files[] = {
        RF("a.lua", "pcall(function() string.upper = nil end)\n"
                    "pcall(rawset, string, 'upper', nil)\n"
                    "pcall(function() math.floor = nil end)\n"
                    "tostring = nil\n"   /* its own global: fine, local to a */
                    "return {}\n"),
        RF("b.lua", "local M = {}\nfunction M.f() return string.upper('ok') .. tostring(math.floor(2.5)) end\n"
                    "return M\n"),
    };
    lhost *h;
    err e;
    int rc = lhost_open(files, 2, &fast_limits, &h, NULL, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    assert_int_equal(lhost_call(h, "b", "f", NULL, 0, &a, &out, &e), 0);
    /* math.floor(2.5) = 2 */
    assert_int_equal(out->kind, JV_STR);
    assert_string_equal(out->u.str.s, "OK2");
    jv_arena_free(&a);
    lhost_close(h);
}

/* ------------------------------------------------ finalizers, GC, rng */

static void test_gc_finalizer_refused(void **state)
{
    (void)state;
    check_refused("  setmetatable({}, { __gc = function() while true do end end })\n  return 1", BODY_LINE, "runtime",
                  "finalizers (__gc) are not allowed in rules");
}

static void test_gc_finalizer_false_refused(void **state)
{
    (void)state;
    /* any __gc field marks the object for finalization */
    check_refused("  setmetatable({}, { __gc = false })\n  return 1", BODY_LINE, "runtime",
                  "finalizers (__gc) are not allowed in rules");
}

static void test_collectgarbage_absent(void **state)
{
    (void)state;
    check_refused("  collectgarbage('collect')\n  return 1", BODY_LINE, "runtime",
                  "attempt to call a nil value (global 'collectgarbage')");
}

static void test_math_random_absent(void **state)
{
    (void)state;
    check_refused("  return math.random(1, 6)", BODY_LINE, "runtime", "attempt to call a nil value (field 'random')");
}

static void test_math_randomseed_absent(void **state)
{
    (void)state;
    check_refused("  math.randomseed(42)\n  return 1", BODY_LINE, "runtime",
                  "attempt to call a nil value (field 'randomseed')");
}

/* ------------------------------------------------------------ budget */

static void test_infinite_loop_budget(void **state)
{
    (void)state;
    check_refused("  while true do end", BODY_LINE, "budget", "instruction budget of 200000 exceeded");
}

static void test_infinite_loop_default_budget(void **state)
{
    (void)state;
    check_refused_ctx("  local n = 0\n  while true do n = n + 1 end", NULL, NULL, BODY_LINE + 1, "f", "budget",
                      "instruction budget of 5000000 exceeded");
}

static void test_pcall_cannot_swallow_budget(void **state)
{
    (void)state;
    check_refused("  local ok, msg = pcall(function() while true do end end)\n  return 'escaped'", BODY_LINE,
                  "budget", "instruction budget of 200000 exceeded");
}

static void test_pcall_in_loop_cannot_swallow_budget(void **state)
{
    (void)state;
    check_refused("  for i = 1, 1000 do pcall(function() while true do end end) end\n  return 'escaped'", BODY_LINE,
                  "budget", "instruction budget of 200000 exceeded");
}

static void test_nested_pcall_cannot_swallow_budget(void **state)
{
    (void)state;
    check_refused("  local ok = pcall(pcall, function() while true do end end)\n  return 'escaped'", BODY_LINE,
                  "budget", "instruction budget of 200000 exceeded");
}

static void test_xpcall_cannot_swallow_budget(void **state)
{
    (void)state;
    check_refused("  local ok = xpcall(function() while true do end end, function(m) return m end)\n"
                  "  return 'escaped'",
                  BODY_LINE, "budget", "instruction budget of 200000 exceeded");
}

/* Runs fn in a child process so that a rule the budget fails to stop makes
 * the test fail after `seconds` instead of hanging the whole suite. fn
 * returns 0 when the behaviour is right and may describe what it saw. */
typedef int (*child_fn)(char *msg, size_t n);

static int run_guarded(child_fn fn, unsigned seconds, char *msg, size_t n)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alarm(seconds);
        char m[512] = "";
        int rc = fn(m, sizeof m);
        ssize_t w = write(fds[1], m, strlen(m));
        (void)w;
        _exit(rc ? 1 : 0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fds[0], msg + got, n - 1 - got)) > 0) got += (size_t)r;
    msg[got] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        snprintf(msg, n, "the call was still running after %u s: the budget did not stop it", seconds);
        return 2;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    return 1;
}

static int xpcall_handler_loop_child(char *msg, size_t n)
{
    static const char src[] = SRC_HEAD
        "  local ok = xpcall(function() while true do end end, function(m) while true do end end)\n"
        "  return 'escaped'" SRC_TAIL;
    rule_file f = RF("esc.lua", src);
    lhost *h;
    err e;
    if (lhost_open(&f, 1, &fast_limits, &h, NULL, &e)) {
        snprintf(msg, n, "load failed: %s", e.msg);
        return 1;
    }
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    int rc = lhost_call(h, "esc", "f", NULL, 0, &a, &out, &e);
    const rule_error *r = lhost_last_error(h);
    int bad = rc != ERR_RULE || strcmp(r->kind, "budget") != 0 || r->line != BODY_LINE;
    snprintf(msg, n, "rc=%d kind=%s line=%d: %s", rc, r->kind, r->line, e.msg);
    jv_arena_free(&a);
    lhost_close(h);
    return bad;
}

/* The budget error is raised inside the count hook; Lua then calls the
 * xpcall message handler from inside that hook, where hooks are disabled. A
 * handler that loops must still be stopped by the budget. */
static void test_xpcall_handler_loop_budget(void **state)
{
    (void)state;
    char msg[600];
    int rc = run_guarded(xpcall_handler_loop_child, 20, msg, sizeof msg);
    if (rc) print_error("BUG: xpcall(loop, looping handler): %s\n", msg);
    assert_int_equal(rc, 0);
}

static void test_budget_in_metamethod_from_c(void **state)
{
    (void)state;
    /* a Lua callback run by a C library function still counts */
    check_refused("  return (string.gsub('aaa', 'a', function() while true do end end))", BODY_LINE, "budget",
                  "instruction budget of 200000 exceeded");
}

static void test_budget_rearmed_for_next_call(void **state)
{
    (void)state;
    box b;
    box_open(&b, "  if ctx.spin then while true do end end\n  return ctx.n * 3");
    jv *out;
    assert_int_equal(box_call_ctx(&b, "f", "{\"spin\":true,\"n\":1}", &out), ERR_RULE);
    assert_string_equal(lhost_last_error(b.h)->kind, "budget");
    /* the next call gets a fresh budget: 14 * 3 = 42 */
    assert_int_equal(box_call_ctx(&b, "f", "{\"spin\":false,\"n\":14}", &out), 0);
    assert_int_equal(out->kind, JV_INT);
    assert_int_equal(out->u.i, 42);
    box_close(&b);
}

static void test_budget_at_module_load(void **state)
{
    (void)state;
    rule_file files[] = {RF("spin.lua", "local M = {}\nwhile true do end\nreturn M\n")};
    rule_error d;
    err e;
    int rc = open_fails(files, 1, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(d.kind, "budget");
    assert_string_equal(d.rule, "spin (loading)");
    assert_string_equal(d.file, "spin.lua");
    assert_int_equal(d.line, 2);
    assert_contains(e.msg, "instruction budget of 200000 exceeded");
}

/* ------------------------------------------------------------ memory */

static const lhost_limits mem_limits = {.max_instructions = 5000000, .max_memory = 8u << 20};

static const char MEM_SRC[] = "local M = {}\n"
                              "function M.bomb()\n"          /* line 2 */
                              "  local s = 'x'\n"
                              "  while true do s = s .. s end\n"
                              "end\n"
                              "function M.bomb_in_pcall()\n" /* line 6 */
                              "  local ok = pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end)\n"
                              "  return 'escaped'\n"
                              "end\n"
                              "function M.normal()\n"
                              "  return { n = 6 * 7 }\n"
                              "end\n"
                              "return M\n";

static void test_memory_bomb_refused(void **state)
{
    (void)state;
    rule_file files[] = {RF("mem.lua", MEM_SRC)};
    lhost *h;
    err e;
    assert_int_equal(lhost_open(files, 1, &mem_limits, &h, NULL, &e), 0);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    int rc = lhost_call(h, "mem", "bomb", NULL, 0, &a, &out, &e);
    assert_int_equal(rc, ERR_RULE);
    const rule_error *r = lhost_last_error(h);
    assert_string_equal(r->kind, "memory");
    assert_string_equal(r->rule, "mem.bomb");
    /* located where the function is defined */
    assert_string_equal(r->file, "mem.lua");
    assert_int_equal(r->line, 2);
    assert_string_equal(r->function, "bomb");
    /* 8 MiB = 8 << 20 bytes */
    assert_contains(r->message, "memory limit of 8 MiB exceeded");
    assert_contains(e.msg, "rule mem.bomb failed at mem.lua:2 (function 'bomb'): memory limit of 8 MiB exceeded");
    /* the bomb's garbage is gone: well under the cap again */
    assert_true(lhost_memory(h) < (2u << 20));

    /* a normal call on the same host still works: 6 * 7 = 42 */
    assert_int_equal(lhost_call(h, "mem", "normal", NULL, 0, &a, &out, &e), 0);
    assert_int_equal(out->kind, JV_OBJ);
    assert_int_equal(jv_get(out, "n")->u.i, 42);
    jv_arena_free(&a);
    lhost_close(h);
}

static void test_memory_bomb_in_pcall_refused(void **state)
{
    (void)state;
    rule_file files[] = {RF("mem.lua", MEM_SRC)};
    lhost *h;
    err e;
    lhost_limits lim = mem_limits;
    lim.max_instructions = 100000000; /* memory must run out first */
    assert_int_equal(lhost_open(files, 1, &lim, &h, NULL, &e), 0);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    int rc = lhost_call(h, "mem", "bomb_in_pcall", NULL, 0, &a, &out, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(lhost_last_error(h)->kind, "memory");
    assert_int_equal(lhost_last_error(h)->line, 6);
    assert_contains(e.msg, "memory limit of 8 MiB exceeded");
    assert_int_equal(lhost_call(h, "mem", "normal", NULL, 0, &a, &out, &e), 0);
    assert_int_equal(jv_get(out, "n")->u.i, 42);
    jv_arena_free(&a);
    lhost_close(h);
}

/* A refused allocation that Lua's emergency collection then satisfies is
 * not a memory error: the call stays within its cap. `churn` makes 1.6 MB of
 * old garbage and then builds another 1.6 MB string (a 1.6 MB buffer plus the
 * 1.6 MB result): with the garbage that is about 4.8 MB, over the 4.75 MiB
 * (4,980,736 bytes) cap, so one allocation is refused; Lua then collects the
 * garbage by itself and retries, and the call peaks near 3.2 MB. `plain`
 * proves the work fits (it also passes with any cap from 4 to 5.5 MiB); the
 * others differ only by a pcall or an error. */
static const char REC_SRC[] =
    "local M = {}\n"
    "local function churn()\n"
    "  local big = string.rep('a', 1600000)\n"                                 /* kept alive...      */
    "  for i = 1, 200 do local t = {} for j = 1, 50 do t[j] = {j} end end\n"  /* ...until it is old */
    "  big = nil\n"                                                           /* old garbage now    */
    "  return string.rep('b', 1600000)\n"
    "end\n"
    "function M.plain()\n"
    "  return #churn()\n"
    "end\n"
    "function M.with_pcall()\n"
    "  local again = churn()\n"
    "  local ok, msg = pcall(error, 'ordinary', 0)\n"
    "  return { ok = ok, msg = msg, len = #again }\n"
    "end\n"
    "function M.with_error()\n"
    "  local again = churn()\n"
    "  error('ordinary failure ' .. #again)\n" /* line 18 */
    "end\n"
    "return M\n";

typedef struct rec_result {
    int rc;
    char kind[32];
    char msg[1024];
    char json[256];
} rec_result;

static void rec_run(const char *fn, rec_result *r)
{
    rule_file files[] = {RF("rec.lua", REC_SRC)};
    lhost_limits lim = {.max_instructions = 5000000, .max_memory = 4864u << 10};
    lhost *h;
    err e;
    assert_int_equal(lhost_open(files, 1, &lim, &h, NULL, &e), 0);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out = NULL;
    err_clear(&e);
    r->rc = lhost_call(h, "rec", fn, NULL, 0, &a, &out, &e);
    snprintf(r->kind, sizeof r->kind, "%s", r->rc ? lhost_last_error(h)->kind : "");
    snprintf(r->msg, sizeof r->msg, "%s", e.msg);
    buf s = {0};
    if (r->rc == 0) json_write(&s, out);
    snprintf(r->json, sizeof r->json, "%s", buf_cstr(&s));
    buf_free(&s);
    jv_arena_free(&a);
    lhost_close(h);
}

static void test_recovered_allocation_fits(void **state)
{
    (void)state;
    rec_result r;
    rec_run("plain", &r);
    if (r.rc) print_error("%s: %s\n", r.kind, r.msg);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.json, "1600000");
}

static void test_recovered_allocation_does_not_poison_pcall(void **state)
{
    (void)state;
    rec_result r;
    rec_run("with_pcall", &r);
    if (r.rc) print_error("BUG: pcall(error) after a recovered allocation: %s: %s\n", r.kind, r.msg);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.json, "{\"len\":1600000,\"msg\":\"ordinary\",\"ok\":false}");
}

static void test_recovered_allocation_keeps_error_kind(void **state)
{
    (void)state;
    rec_result r;
    rec_run("with_error", &r);
    if (strcmp(r.kind, "runtime") != 0) print_error("BUG: an ordinary error reported as: %s: %s\n", r.kind, r.msg);
    assert_int_equal(r.rc, ERR_RULE);
    assert_string_equal(r.kind, "runtime");
    assert_contains(r.msg, "rec.lua:18");
    assert_contains(r.msg, "ordinary failure 1600000");
}

/* ------------------------------------------------------ stack depth */

static void test_deep_recursion_stack_overflow(void **state)
{
    (void)state;
    /* default limits: the Lua stack (1,000,000 slots) overflows long before
     * 5,000,000 instructions or 64 MiB */
    check_refused_ctx("  local function down(n) return 1 + down(n + 1) end\n  return down(1)", NULL, NULL, BODY_LINE,
                      "down", "runtime", "stack overflow");
}

static void test_deep_c_recursion_stack_overflow(void **state)
{
    (void)state;
    /* recursion through a metamethod nests C calls */
    check_refused_ctx("  local t = setmetatable({}, { __index = function(t, k) return t[k] end })\n  return t.x", NULL,
                      NULL, BODY_LINE, "index", "runtime", "stack overflow");
}

/* ----------------------------------------------------------- errors */

static void test_error_with_table_value(void **state)
{
    (void)state;
    check_refused("  error({ code = 42 })", BODY_LINE, "runtime", "table");
}

static void test_error_with_tostring_table(void **state)
{
    (void)state;
    check_refused("  error(setmetatable({}, { __tostring = function() return 'custom failure' end }))", BODY_LINE,
                  "runtime", "custom failure");
}

static void test_error_with_nil_value(void **state)
{
    (void)state;
    check_refused("  error(nil)", BODY_LINE, "runtime", "nil");
}

static void test_error_in_helper_names_helper(void **state)
{
    (void)state;
    check_refused_ctx("  local function helper(x)\n    error('bad input ' .. x)\n  end\n  helper('q')", NULL,
                      &fast_limits, BODY_LINE + 1, "helper", "runtime", "bad input q");
}

static void test_error_has_traceback(void **state)
{
    (void)state;
    box b;
    box_open(&b, "  local function inner() error('deep') end\n  inner()");
    jv *out;
    assert_int_equal(box_call(&b, &out), ERR_RULE);
    const rule_error *r = lhost_last_error(b.h);
    assert_contains(r->traceback, "stack traceback:");
    assert_contains(r->traceback, "esc.lua:3");
    assert_contains(r->traceback, "esc.lua:4");
    box_close(&b);
}

/* --------------------------------------------------------- contexts */

static void test_context_write_refused(void **state)
{
    (void)state;
    check_refused_ctx("  ctx.total = 0\n  return ctx.total", "{\"total\":12900}", &fast_limits, BODY_LINE, "f", "runtime",
                      "the context is read-only (attempt to set 'total')");
}

static void test_context_nested_write_refused(void **state)
{
    (void)state;
    check_refused_ctx("  ctx.lines[1].amount = 1\n  return 1", "{\"lines\":[{\"amount\":100}]}", &fast_limits, BODY_LINE,
                      "f", "runtime", "the context is read-only (attempt to set 'amount')");
}

static void test_context_table_insert_refused(void **state)
{
    (void)state;
    check_refused_ctx("  table.insert(ctx.lines, { amount = 1 })\n  return 1", "{\"lines\":[]}", &fast_limits,
                      BODY_LINE, "f", "runtime", "the context is read-only");
}

static void test_context_rawset_refused(void **state)
{
    (void)state;
    check_refused_ctx("  rawset(ctx, 'total', 0)\n  return 1", "{\"total\":1}", &fast_limits, BODY_LINE, "f", "runtime",
                      "bad argument #1 to 'rawset' (table expected, got record)");
}

static void test_context_metatable_locked(void **state)
{
    (void)state;
    box b;
    box_open(&b, "  return getmetatable(ctx)");
    jv *res;
    assert_int_equal(box_call_ctx(&b, "f", "{\"a\":1}", &res), 0);
    assert_int_equal(res->kind, JV_BOOL);
    assert_false(res->u.b);
    box_close(&b);
}

static const char KEEP_SRC[] = "local M = {}\n"
                               "local kept\n"
                               "function M.keep(ctx)\n"
                               "  kept = ctx\n"
                               "  M.saved = ctx\n"
                               "  return kept.n\n"
                               "end\n"
                               "function M.read()\n"
                               "  return kept.n\n"        /* line 9 */
                               "end\n"
                               "function M.walk()\n"
                               "  for k in pairs(kept) do end\n" /* line 12 */
                               "end\n"
                               "function M.give()\n"     /* line 14 */
                               "  return { old = kept }\n"
                               "end\n"
                               "return M\n";

static void keep_open(lhost **h, jv_arena *a, rule_file *f)
{
    f->path = (char *)"keep.lua";
    f->text = (char *)KEEP_SRC;
    f->len = sizeof KEEP_SRC - 1;
    err e;
    assert_int_equal(lhost_open(f, 1, &fast_limits, h, NULL, &e), 0);
    jv_arena_init(a, 1u << 20);
}

static void keep_first_call(lhost *h, jv_arena *a)
{
    jv *ctx = jv_obj(a);
    assert_int_equal(jv_obj_set_int(a, ctx, "n", 7), 0);
    const jv *args[] = {ctx};
    jv *out;
    err e;
    assert_int_equal(lhost_call(h, "keep", "keep", args, 1, a, &out, &e), 0);
    assert_int_equal(out->u.i, 7);
}

static void test_kept_context_read_refused(void **state)
{
    (void)state;
    rule_file f;
    lhost *h;
    jv_arena a;
    keep_open(&h, &a, &f);
    keep_first_call(h, &a);
    jv *out;
    err e;
    assert_int_equal(lhost_call(h, "keep", "read", NULL, 0, &a, &out, &e), ERR_RULE);
    const rule_error *r = lhost_last_error(h);
    assert_string_equal(r->kind, "runtime");
    assert_string_equal(r->file, "keep.lua");
    assert_int_equal(r->line, 9);
    assert_string_equal(r->function, "read");
    assert_contains(r->message, "a context record was kept after its call ended");
    assert_contains(e.msg, "kept after its call ended; copy what you need with bandbill.copy()");
    jv_arena_free(&a);
    lhost_close(h);
}

static void test_kept_context_iteration_refused(void **state)
{
    (void)state;
    rule_file f;
    lhost *h;
    jv_arena a;
    keep_open(&h, &a, &f);
    keep_first_call(h, &a);
    jv *out;
    err e;
    assert_int_equal(lhost_call(h, "keep", "walk", NULL, 0, &a, &out, &e), ERR_RULE);
    assert_int_equal(lhost_last_error(h)->line, 12);
    assert_contains(e.msg, "kept after its call ended");
    jv_arena_free(&a);
    lhost_close(h);
}

static void test_kept_context_returned_refused(void **state)
{
    (void)state;
    rule_file f;
    lhost *h;
    jv_arena a;
    keep_open(&h, &a, &f);
    keep_first_call(h, &a);
    jv *out;
    err e;
    assert_int_equal(lhost_call(h, "keep", "give", NULL, 0, &a, &out, &e), ERR_RULE);
    const rule_error *r = lhost_last_error(h);
    assert_string_equal(r->kind, "output");
    assert_int_equal(r->line, 14);
    assert_contains(e.msg, "result.old: a context record kept from an earlier call");
    jv_arena_free(&a);
    lhost_close(h);
}

/* lhost_get_field reads module data after a call; a context the rule stored
 * there (M.saved = ctx) belongs to a call that has ended, and its jv may be
 * freed already: it must be refused like any other kept record. */
static void test_kept_context_via_get_field_refused(void **state)
{
    (void)state;
    rule_file f;
    lhost *h;
    jv_arena a;
    keep_open(&h, &a, &f);
    keep_first_call(h, &a);
    /* the first call's context is still allocated here, so a wrong accept
     * is a failed assertion rather than a use after free */
    jv_arena out_a;
    jv_arena_init(&out_a, 1u << 20);
    jv *out = NULL;
    err e;
    err_clear(&e);
    int rc = lhost_get_field(h, "keep", "saved", &out_a, &out, &e);
    if (rc == 0) print_error("BUG: lhost_get_field returned the kept context of an ended call\n");
    jv_arena_free(&out_a);
    jv_arena_free(&a);
    lhost_close(h);
    assert_int_equal(rc, ERR_RULE);
    assert_contains(e.msg, "kept from an earlier call");
}

/* ------------------------------------------------- loading failures */

static void test_module_not_returning_table(void **state)
{
    (void)state;
    rule_file files[] = {RF("noret.lua", "local M = {}\nfunction M.f() return 1 end\n")};
    rule_error d;
    err e;
    int rc = open_fails(files, 1, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(d.rule, "noret (loading)");
    assert_contains(d.message, "module 'noret' (noret.lua) must return a table of functions, returned nil");
    assert_contains(e.msg, "noret.lua");
    assert_contains(e.msg, "must return a table of functions, returned nil");
}

static void test_module_returning_number(void **state)
{
    (void)state;
    rule_file files[] = {RF("num.lua", "return 42\n")};
    rule_error d;
    err e;
    assert_int_equal(open_fails(files, 1, &d, &e), ERR_RULE);
    assert_contains(e.msg, "module 'num' (num.lua) must return a table of functions, returned number");
}

static void test_syntax_error_located(void **state)
{
    (void)state;
    rule_file files[] = {RF("bad.lua", "local M = {}\n"
                                       "function M.f()\n"
                                       "  return 1 +\n"
                                       "end\n" /* line 4: the parser stops here */
                                       "return M\n")};
    rule_error d;
    err e;
    int rc = open_fails(files, 1, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(d.kind, "syntax");
    assert_string_equal(d.rule, "bad (loading)");
    assert_string_equal(d.file, "bad.lua");
    assert_int_equal(d.line, 4);
    assert_string_equal(d.function, "main chunk");
    assert_string_equal(d.message, "unexpected symbol near 'end'");
    assert_string_equal(e.msg, "rule bad (loading) failed at bad.lua:4 (function 'main chunk'): "
                               "unexpected symbol near 'end'");
    assert_string_equal(e.tag, "rule_error");
}

static void test_syntax_error_in_nested_folder(void **state)
{
    (void)state;
    rule_file files[] = {RF("lib/cal.lua", "local M = {}\nM.x = = 1\nreturn M\n")};
    rule_error d;
    err e;
    assert_int_equal(open_fails(files, 1, &d, &e), ERR_RULE);
    assert_string_equal(d.kind, "syntax");
    assert_string_equal(d.rule, "lib.cal (loading)");
    assert_string_equal(d.file, "lib/cal.lua");
    assert_int_equal(d.line, 2);
    assert_contains(e.msg, "lib/cal.lua:2");
}

/* A syntax error in a module that another module requires while loading
 * must still be reported at its own file and line. */
static void test_syntax_error_in_required_module_located(void **state)
{
    (void)state;
    rule_file files[] = {
        RF("a.lua", "local b = require('b')\nreturn {}\n"),
        RF("b.lua", "local M = {}\n"
                    "\n"
                    "M.x = = 1\n" /* line 3 */
                    "return M\n"),
    };
    rule_error d;
    err e;
    int rc = open_fails(files, 2, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(d.kind, "syntax");
    assert_contains(e.msg, "b.lua:3");
    if (strcmp(d.file, "b.lua") != 0 || d.line != 3)
        print_error("BUG: syntax error in b.lua:3 reported at %s:%d (%s)\n", d.file, d.line, e.msg);
    assert_string_equal(d.file, "b.lua");
    assert_int_equal(d.line, 3);
    assert_string_equal(d.message, "unexpected symbol near '='");
}

static void test_runtime_error_at_load_located(void **state)
{
    (void)state;
    rule_file files[] = {RF("boom.lua", "local M = {}\nlocal x = nil\nlocal y = x.field\nreturn M\n")};
    rule_error d;
    err e;
    assert_int_equal(open_fails(files, 1, &d, &e), ERR_RULE);
    assert_string_equal(d.kind, "runtime");
    assert_string_equal(d.file, "boom.lua");
    assert_int_equal(d.line, 3);
    assert_string_equal(d.function, "main chunk");
    assert_contains(d.message, "attempt to index a nil value (local 'x')");
}

static void test_bad_file_name_dash(void **state)
{
    (void)state;
    rule_file files[] = {
        RF("good.lua", "return {}\n"),
        RF("my-rule.lua", "return {}\n"),
    };
    rule_error d;
    err e;
    int rc = open_fails(files, 2, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_string_equal(e.msg, "my-rule.lua: file names in the rules folder may use letters, digits and '_' only");
    assert_string_equal(e.tag, "rule_error");
    assert_string_equal(e.field, "my-rule.lua");
    assert_string_equal(d.kind, "syntax");
    assert_string_equal(d.file, "my-rule.lua");
}

static void test_bad_file_name_space(void **state)
{
    (void)state;
    rule_file files[] = {RF("lib/my rule.lua", "return {}\n")};
    rule_error d;
    err e;
    assert_int_equal(open_fails(files, 1, &d, &e), ERR_RULE);
    assert_contains(e.msg, "lib/my rule.lua: file names in the rules folder may use letters, digits and '_' only");
    assert_string_equal(d.file, "lib/my rule.lua");
}

static void test_bad_file_name_dotdot_folder(void **state)
{
    (void)state;
    rule_file files[] = {RF("../up.lua", "return {}\n")};
    rule_error d;
    err e;
    assert_int_equal(open_fails(files, 1, &d, &e), ERR_RULE);
    assert_contains(e.msg, "../up.lua: file names in the rules folder may use letters, digits and '_' only");
}

/* A '.' inside a file name is not a letter, digit or '_'; the rule set must
 * be refused naming the file, not fail later with a misleading message. */
static void test_bad_file_name_extra_dot(void **state)
{
    (void)state;
    rule_file files[] = {RF("tariff.v2.lua", "return {}\n")};
    rule_error d;
    err e;
    int rc = open_fails(files, 1, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    if (!strstr(e.msg, "letters, digits and '_' only"))
        print_error("BUG: tariff.v2.lua gives: %s (file '%s')\n", e.msg, d.file);
    assert_contains(e.msg, "tariff.v2.lua: file names in the rules folder may use letters, digits and '_' only");
    assert_string_equal(d.file, "tariff.v2.lua");
}

/* Files that are not .lua are carried in the set but never loaded. */
static void test_non_lua_files_ignored(void **state)
{
    (void)state;
    rule_file files[] = {
        RF("README.md", "not lua at all = = ="),
        RF("m.lua", "return { f = function() return 1 end }\n"),
    };
    lhost *h;
    err e;
    assert_int_equal(lhost_open(files, 2, &fast_limits, &h, NULL, &e), 0);
    assert_int_equal(lhost_module_count(h), 1);
    assert_string_equal(lhost_module_name(h, 0), "m");
    lhost_close(h);
}

/* ------------------------------------------- shared module tables */

/* lua_host.c: "no rule can change what another rule sees"; RULES.md:
 * "shared tables cannot be changed by one module for another". A module
 * table handed out by require is shared: another module must not be able
 * to rewrite the data or functions the core calls. */
static void test_module_cannot_rewrite_another_module(void **state)
{
    (void)state;
    rule_file files[] = {
        RF("evil.lua", "local M = {}\n"
                       "function M.f()\n"
                       "  local tax = require('tax')\n"
                       "  pcall(function() tax.rates.internet = 0 end)\n"
                       "  pcall(function() tax.split = function() return 'hijacked' end end)\n"
                       "  return 1\n"
                       "end\n"
                       "return M\n"),
        RF("tax.lua", "local M = { rates = { internet = 6 } }\n"
                      "function M.split(g) return g * M.rates.internet end\n"
                      "return M\n"),
    };
    lhost *h;
    err e;
    assert_int_equal(lhost_open(files, 2, &fast_limits, &h, NULL, &e), 0);
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    jv *out;
    assert_int_equal(lhost_call(h, "evil", "f", NULL, 0, &a, &out, &e), 0);
    jv *g = jv_int(&a, 100);
    const jv *args[] = {g};
    int rc = lhost_call(h, "tax", "split", args, 1, &a, &out, &e);
    buf got = {0};
    if (rc == 0) json_write(&got, out);
    char seen[128];
    snprintf(seen, sizeof seen, "%s", rc ? e.msg : buf_cstr(&got));
    buf_free(&got);
    jv_arena_free(&a);
    lhost_close(h);
    if (strcmp(seen, "600") != 0) print_error("BUG: after evil.f, tax.split(100) returns %s\n", seen);
    assert_int_equal(rc, 0);
    /* 100 * 6 = 600 */
    assert_string_equal(seen, "600");
}

/* ----------------------------------------- the same via rule sets */

static void test_ruleset_load_refuses_escape_at_load(void **state)
{
    (void)state;
    rule_file files[] = {RF("x.lua", "local f = io.open('/etc/passwd')\nreturn {}\n")};
    rules_snapshot *s;
    err e;
    assert_int_equal(rules_snapshot_from("mem", files, 1, &s, &e), 0);
    static char sentinel;
    ruleset *rs = (ruleset *)&sentinel; /* ruleset_load must reset it to NULL */
    rule_error d;
    int rc = ruleset_load(s, &fast_limits, 1, &rs, &d, &e);
    assert_int_equal(rc, ERR_RULE);
    assert_null(rs);
    assert_string_equal(d.file, "x.lua");
    assert_int_equal(d.line, 1);
    assert_contains(e.msg, "attempt to index a nil value (global 'io')");
    rules_snapshot_unref(s);
}

static int group_teardown(void **state)
{
    (void)state;
    metrics_reset();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_open_refused),
        cmocka_unit_test(test_os_execute_refused),
        cmocka_unit_test(test_package_absent),
        cmocka_unit_test(test_debug_absent),
        cmocka_unit_test(test_coroutine_absent),
        cmocka_unit_test(test_real_globals_absent),
        cmocka_unit_test(test_load_refused),
        cmocka_unit_test(test_load_bytecode_string_refused),
        cmocka_unit_test(test_loadstring_refused),
        cmocka_unit_test(test_dofile_refused),
        cmocka_unit_test(test_loadfile_refused),
        cmocka_unit_test(test_no_loader_reachable),
        cmocka_unit_test(test_bytecode_rule_file_refused),
        cmocka_unit_test(test_bytecode_through_require_refused),
        cmocka_unit_test(test_require_parent_path_refused),
        cmocka_unit_test(test_require_absolute_path_refused),
        cmocka_unit_test(test_require_dotdot_module_refused),
        cmocka_unit_test(test_require_missing_module),
        cmocka_unit_test(test_require_finds_rule_set_module),
        cmocka_unit_test(test_circular_require_refused),
        cmocka_unit_test(test_string_metatable_hidden),
        cmocka_unit_test(test_setmetatable_on_string_metatable_refused),
        cmocka_unit_test(test_string_metatable_index_refused),
        cmocka_unit_test(test_string_methods_still_work),
        cmocka_unit_test(test_string_method_dump_absent),
        cmocka_unit_test(test_string_dump_absent),
        cmocka_unit_test(test_rawset_on_string_refused),
        cmocka_unit_test(test_assign_string_upper_refused),
        cmocka_unit_test(test_assign_nested_helper_refused),
        cmocka_unit_test(test_rawset_on_nested_helper_refused),
        cmocka_unit_test(test_library_metatable_locked),
        cmocka_unit_test(test_rawset_on_own_table_allowed),
        cmocka_unit_test(test_one_module_cannot_change_libraries_for_another),
        cmocka_unit_test(test_gc_finalizer_refused),
        cmocka_unit_test(test_gc_finalizer_false_refused),
        cmocka_unit_test(test_collectgarbage_absent),
        cmocka_unit_test(test_math_random_absent),
        cmocka_unit_test(test_math_randomseed_absent),
        cmocka_unit_test(test_infinite_loop_budget),
        cmocka_unit_test(test_infinite_loop_default_budget),
        cmocka_unit_test(test_pcall_cannot_swallow_budget),
        cmocka_unit_test(test_pcall_in_loop_cannot_swallow_budget),
        cmocka_unit_test(test_nested_pcall_cannot_swallow_budget),
        cmocka_unit_test(test_xpcall_cannot_swallow_budget),
        cmocka_unit_test(test_xpcall_handler_loop_budget),
        cmocka_unit_test(test_budget_in_metamethod_from_c),
        cmocka_unit_test(test_budget_rearmed_for_next_call),
        cmocka_unit_test(test_budget_at_module_load),
        cmocka_unit_test(test_memory_bomb_refused),
        cmocka_unit_test(test_memory_bomb_in_pcall_refused),
        cmocka_unit_test(test_recovered_allocation_fits),
        cmocka_unit_test(test_recovered_allocation_does_not_poison_pcall),
        cmocka_unit_test(test_recovered_allocation_keeps_error_kind),
        cmocka_unit_test(test_deep_recursion_stack_overflow),
        cmocka_unit_test(test_deep_c_recursion_stack_overflow),
        cmocka_unit_test(test_error_with_table_value),
        cmocka_unit_test(test_error_with_tostring_table),
        cmocka_unit_test(test_error_with_nil_value),
        cmocka_unit_test(test_error_in_helper_names_helper),
        cmocka_unit_test(test_error_has_traceback),
        cmocka_unit_test(test_context_write_refused),
        cmocka_unit_test(test_context_nested_write_refused),
        cmocka_unit_test(test_context_table_insert_refused),
        cmocka_unit_test(test_context_rawset_refused),
        cmocka_unit_test(test_context_metatable_locked),
        cmocka_unit_test(test_kept_context_read_refused),
        cmocka_unit_test(test_kept_context_iteration_refused),
        cmocka_unit_test(test_kept_context_returned_refused),
        cmocka_unit_test(test_kept_context_via_get_field_refused),
        cmocka_unit_test(test_module_not_returning_table),
        cmocka_unit_test(test_module_returning_number),
        cmocka_unit_test(test_syntax_error_located),
        cmocka_unit_test(test_syntax_error_in_nested_folder),
        cmocka_unit_test(test_syntax_error_in_required_module_located),
        cmocka_unit_test(test_runtime_error_at_load_located),
        cmocka_unit_test(test_bad_file_name_dash),
        cmocka_unit_test(test_bad_file_name_space),
        cmocka_unit_test(test_bad_file_name_dotdot_folder),
        cmocka_unit_test(test_bad_file_name_extra_dot),
        cmocka_unit_test(test_non_lua_files_ignored),
        cmocka_unit_test(test_module_cannot_rewrite_another_module),
        cmocka_unit_test(test_ruleset_load_refuses_escape_at_load),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
