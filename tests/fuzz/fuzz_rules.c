/* fuzz_rules.c - a fuzzed rule file loaded, checked and called.
 *
 * The input is the text of "fuzz.lua"; the rule set also holds a fixed
 * "lib/helper.lua" that the input may require. The set is loaded as the
 * daemon loads it (rules_snapshot_from + ruleset_load with check = 1, so the
 * module's examples run), under small limits. If it loads, every function
 * every module exports is called with a small fixed context, and a few
 * fields are read back. Errors of all kinds are expected; crashes, hangs,
 * leaks and sanitizer reports are bugs.
 *
 * The harness gives the rules nothing beyond the sandbox: no files, no
 * host functions of its own. Set BB_FUZZ_LOG=1 to see the rules' log lines
 * (and the message of a Lua panic) on stderr. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "lua_host.h"
#include "rules.h"

static const char helper_lua[] =
    "-- lib/helper.lua: a fixed module that the fuzzed rule may require.\n"
    "local money, date = bandbill.money, bandbill.date\n"
    "local H = {}\n"
    "H.rates = { internet = 6, bandwidth = 9, equipment = 13 }\n"
    "function H.tax(gross, rate)\n"
    "  return money.ratio(gross, rate, 100 + rate)\n"
    "end\n"
    "function H.days(p)\n"
    "  return date.diff(p.from, p.to) + 1\n"
    "end\n"
    "function H.lines(ctx)\n"
    "  local out = {}\n"
    "  for i, l in ipairs(ctx.lines) do\n"
    "    local rate = H.rates[l.category] or 0\n"
    "    out[i] = { gross = l.gross, tax = H.tax(l.gross, rate) }\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "function H.echo(x) return x end\n"
    "function H.copy(x) return bandbill.copy(x) end\n"
    "function H.keys(t)\n"
    "  local ks = {}\n"
    "  for k in pairs(t) do ks[#ks + 1] = tostring(k) end\n"
    "  table.sort(ks)\n"
    "  return ks\n"
    "end\n"
    "H.examples = {\n"
    "  { fn = \"tax\", name = \"6% of 106.00\", args = { 10600, 6 }, expect = 600 },\n"
    "  { fn = \"echo\", input = { a = 1, b = { 2, 3 } }, expect = { a = 1, b = { 2, 3 } } },\n"
    "}\n"
    "return H\n";

static const char ctx_json[] =
    "{\"price\":12900,\"qty\":3,\"rate\":\"8.5\",\"category\":\"internet\",\"gross\":10600,"
    "\"period\":{\"from\":\"2026-11-01\",\"to\":\"2026-11-30\"},"
    "\"active\":{\"from\":\"2026-11-17\",\"to\":\"2026-11-30\"},"
    "\"lines\":[{\"gross\":100,\"category\":\"internet\"},{\"gross\":20000,\"category\":\"bandwidth\"}],"
    "\"weights\":[1,2,3],\"name\":\"\\u00e9t\\u00e9\",\"vip\":true,\"none\":null,\"f\":1.5}";

static const lhost_limits limits = {
    .max_instructions = 200000,
    .max_memory = 8u << 20,
};

static jv_arena g_ctx_arena;
static const jv *g_ctx;
static int g_verbose;   /* BB_FUZZ_VERBOSE=1: what loaded, what each call gave */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* Rule log lines go through the real logger (so its escaping is fuzzed
     * too) but into /dev/null, unless asked for. */
    if (!getenv("BB_FUZZ_LOG")) {
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) log_set_fd(fd);
    }
    log_set_level(LOG_DEBUG);
    g_verbose = getenv("BB_FUZZ_VERBOSE") != NULL;
    jv_arena_init(&g_ctx_arena, 0);
    jv *ctx;
    err e;
    if (json_parse(ctx_json, sizeof ctx_json - 1, NULL, &g_ctx_arena, &ctx, &e)) {
        fprintf(stderr, "fuzz_rules: context: %s\n", e.msg);
        abort();
    }
    g_ctx = ctx;
    return 0;
}

static void call_all(lhost *h)
{
    jv_arena a;
    jv_arena_init(&a, 1u << 20);
    const jv *args[1] = {g_ctx};
    static const char *const fields[] = {"examples", "rates", "params", "version"};
    for (size_t m = 0; m < lhost_module_count(h); m++) {
        const char *module = lhost_module_name(h, m);
        buf names = {0};
        if (lhost_module_functions(h, module, &names) == 0 && names.data) {
            char *save = NULL;
            for (char *fn = strtok_r(names.data, "\n", &save); fn; fn = strtok_r(NULL, "\n", &save)) {
                jv *res = NULL;
                err e;
                err_clear(&e);
                int rc = lhost_call(h, module, fn, args, 1, &a, &res, &e);
                if (g_verbose) {
                    buf out = {0};
                    if (rc == 0 && res) json_write(&out, res);
                    fprintf(stderr, "  %s.%s -> %s\n", module, fn, rc ? e.msg : buf_cstr(&out));
                    buf_free(&out);
                }
                if (rc == 0) {
                    /* a result always converts to JSON */
                    buf out = {0};
                    if (!res || json_write(&out, res)) {
                        fprintf(stderr, "fuzz_rules: %s.%s returned a value json_write refuses\n", module, fn);
                        abort();
                    }
                    buf_free(&out);
                } else if (!e.msg[0]) {
                    fprintf(stderr, "fuzz_rules: %s.%s failed without a message\n", module, fn);
                    abort();
                }
                jv_arena_reset(&a);
            }
        }
        buf_free(&names);
        /* a missing function is an error, not a crash */
        jv *res;
        err ce;
        lhost_call(h, module, "no_such_function", args, 1, &a, &res, &ce);
        jv_arena_reset(&a);
        for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
            jv *v;
            err e;
            lhost_get_field(h, module, fields[f], &a, &v, &e);
            jv_arena_reset(&a);
        }
    }
    jv_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) return 0;
    rule_file files[2] = {
        {.path = "fuzz.lua", .text = (char *)data, .len = size},
        {.path = "lib/helper.lua", .text = (char *)helper_lua, .len = sizeof helper_lua - 1},
    };
    rules_snapshot *snap = NULL;
    err e;
    err_clear(&e);
    if (rules_snapshot_from("fuzz", files, 2, &snap, &e)) return 0;
    ruleset *rs = NULL;
    rule_error detail;
    int rc = ruleset_load(snap, &limits, 1, &rs, &detail, &e);
    if (g_verbose)
        fprintf(stderr, "load: %s%s\n", rc ? "failed: " : "ok", rc ? e.msg : "");
    if (rc == 0) {
        call_all(rs->host);
        ruleset_unref(rs);
    } else if (!e.msg[0]) {
        fprintf(stderr, "fuzz_rules: ruleset_load failed without a message\n");
        abort();
    }
    rules_snapshot_unref(snap);
    return 0;
}
