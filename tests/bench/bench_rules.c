/* bench_rules.c - rule calls per second through the full sandbox.
 *
 * A 10-field context goes in as a read-only view, the rule returns three
 * lines, and the result is converted back and validated, exactly as the
 * core calls rules (rules_call: budget hook, counting allocator, message
 * handler, metrics). Also times a reload of a rules folder.
 *
 *   bench_rules [CALLS] [RULES_DIR_FOR_RELOAD]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "rules.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 2000000;
    const char *reload_dir = argc > 2 ? argv[2] : BB_SOURCE_DIR "/rules";
    err e;
    rules_snapshot *snap;
    ruleset *rs;
    if (rules_snapshot_read(BB_SOURCE_DIR "/tests/bench/rules", &snap, &e) ||
        ruleset_load(snap, NULL, 1, &rs, NULL, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        return 1;
    }
    jv_arena ctx_arena, out;
    jv_arena_init(&ctx_arena, 0);
    jv_arena_init(&out, 0);
    static const char ctx_json[] =
        "{\"price\":12900,\"plan\":\"300M\",\"addon\":1000,\"addon_name\":\"IPTV\",\"discount\":500,"
        "\"promo\":\"new user\",\"customer\":\"C1\",\"period\":\"2026-12\",\"tags\":\"vip\",\"region\":\"X\"}";
    jv *ctx;
    if (json_parse(ctx_json, sizeof ctx_json - 1, NULL, &ctx_arena, &ctx, &e)) return 1;
    const jv *args[1] = {ctx};
    jv *res = NULL;
    int64_t check = 0;
    double t0 = now_s();
    for (long i = 0; i < calls; i++) {
        jv_arena_reset(&out);
        if (rules_call(rs, "bench.lines", args, 1, &out, &res, &e)) {
            fprintf(stderr, "bench: %s\n", e.msg);
            return 1;
        }
        check += jv_get(jv_at(res, 0), "amount")->u.i;
    }
    double t = now_s() - t0;
    printf("rule calls: %ld in %.3f s = %.0f calls/s (%.2f us/call) [check %lld]\n", calls, t, (double)calls / t,
           t * 1e6 / (double)calls, (long long)check);

    /* reload: read the folder, build a fresh state, load every file, run every example */
    int n = 50;
    double best = 1e9, total = 0;
    for (int i = 0; i < n; i++) {
        double r0 = now_s();
        rule_error re;
        if (rules_reload(reload_dir, &re, &e)) {
            fprintf(stderr, "bench: reload: %s\n", e.msg);
            return 1;
        }
        double dt = now_s() - r0;
        total += dt;
        if (dt < best) best = dt;
    }
    printf("reload of %s: mean %.2f ms, best %.2f ms over %d reloads\n", reload_dir, total * 1e3 / n, best * 1e3, n);
    rules_live_clear();
    ruleset_unref(rs);
    rules_snapshot_unref(snap);
    jv_arena_free(&ctx_arena);
    jv_arena_free(&out);
    return 0;
}
