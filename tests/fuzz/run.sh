#!/usr/bin/env bash
# run.sh - runs each libFuzzer target for a fixed time over a copy of its
# seed corpus (the source tree is never written to).
#
#   tests/fuzz/run.sh [BUILD_DIR] [SECONDS] [TARGET...]
#
#   BUILD_DIR  a build configured with -DBB_FUZZ=ON (default: build-fuzz)
#   SECONDS    per target (default: 30)
#   TARGET     json rules money cron router (default: all)
#
# Environment:
#   FUZZ_TIMEOUT=20   seconds one input may take before it counts as a hang
#   FUZZ_KEEP=1       keep every work directory (grown corpus, logs), not only
#                     those of failed targets
#   FUZZ_ARGS="..."   extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# Exits 1 if any target crashed, leaked, hung or ran out of memory, after
# printing the path of each crashing input; 2 on usage errors. A crashing
# input replays with: BUILD_DIR/tests/fuzz/fuzz_TARGET PATH
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-build-fuzz}
duration=${2:-30}
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json rules money cron router)

case $duration in
    ''|*[!0-9]*) echo "run.sh: SECONDS must be a whole number, got '$duration'" >&2; exit 2 ;;
esac
# A relative build directory is taken from the current directory, else from
# the repository root.
if [ ! -d "$build" ] && [ -d "$here/../../$build" ]; then build="$here/../../$build"; fi
[ -d "$build" ] || { echo "run.sh: no build directory '$build' (configure with -DBB_FUZZ=ON)" >&2; exit 2; }
build=$(cd "$build" && pwd)

timeout_s=${FUZZ_TIMEOUT:-20}
read -r -a extra <<< "${FUZZ_ARGS:-}"

# halt on the first report, with stacks; libFuzzer checks leaks per input
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

max_len_of() {
    case $1 in
        json) echo 16384 ;;
        rules) echo 8192 ;;
        money) echo 128 ;;
        cron) echo 256 ;;
        router) echo 512 ;;
        *) echo 4096 ;;
    esac
}

failed=()
summary=()
for t in "${targets[@]}"; do
    bin="$build/tests/fuzz/fuzz_$t"
    seeds="$here/corpus/$t"
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin is missing (cmake --build $build --target fuzz_all)" >&2
        exit 2
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/bandbill-fuzz-$t.XXXXXX")
    mkdir -p "$work/corpus" "$work/artifacts"
    [ -d "$seeds" ] && cp -R "$seeds/." "$work/corpus/"
    args=(-max_total_time="$duration" -timeout="$timeout_s" -rss_limit_mb=2048
          -max_len="$(max_len_of "$t")" -print_final_stats=1
          -artifact_prefix="$work/artifacts/")
    [ -f "$here/$t.dict" ] && args+=(-dict="$here/$t.dict")

    echo "==> fuzz_$t for ${duration}s (work: $work)"
    rc=0
    FUZZ_KEEP_THIS=0
    "$bin" "${args[@]}" "${extra[@]}" "$work/corpus" > "$work/fuzz.log" 2>&1 || rc=$?

    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/fuzz.log" | tail -n 1 || true)
    [ -n "$done_line" ] || done_line=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 1 || true)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<< "$done_line")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<< "$done_line")
    corp=$(sed -nE 's/.*corp: ([0-9]+(\/[0-9]+[a-zA-Z]*)?).*/\1/p' <<< "$done_line")
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$work/fuzz.log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<< "$done_line")
    eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$work/fuzz.log" | tail -n 1)
    # (-fork mode prints no stat:: lines; a run that crashes early reports 0)
    if [ -z "$eps" ] || [ "$eps" = 0 ]; then
        eps=$(sed -nE 's/.*exec\/s:? ([0-9]+).*/\1/p' <<< "$done_line")
    fi

    shopt -s nullglob
    found=("$work"/artifacts/crash-* "$work"/artifacts/leak-* "$work"/artifacts/timeout-* \
           "$work"/artifacts/oom-*)
    slow=("$work"/artifacts/slow-unit-*)
    shopt -u nullglob
    status=ok
    if [ "$rc" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
        status="FAILED (exit $rc)"
        failed+=("$t")
        echo "--- fuzz_$t failed; the report:"
        grep -nE 'ERROR: |runtime error:|panic|SUMMARY:|Test unit written|deadly signal|timeout after|out-of-memory' \
            "$work/fuzz.log" | head -n 20 || true
        echo "--- last lines of $work/fuzz.log:"
        tail -n 40 "$work/fuzz.log"
        for f in "${found[@]}"; do
            echo "CRASH INPUT: $f"
            echo "  replay: $bin $f"
        done
        [ ${#found[@]} -gt 0 ] || echo "CRASH INPUT: none written; see $work/fuzz.log"
    fi
    for f in "${slow[@]}"; do echo "slow input (not a failure): $f"; done
    [ ${#slow[@]} -eq 0 ] || [ "$status" != ok ] || FUZZ_KEEP_THIS=1
    line=$(printf '%-7s %-18s execs %-10s exec/s %-7s cov %-6s ft %-7s corpus %s' \
        "$t" "$status" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
    summary+=("$line")
    echo "$line"
    if [ "$status" = ok ] && [ "${FUZZ_KEEP:-0}" != 1 ] && [ "${FUZZ_KEEP_THIS:-0}" != 1 ]; then
        rm -rf "$work"
    else
        echo "    kept: $work"
    fi
done

echo
echo "==> fuzzing summary (${duration}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all targets ran ${duration}s without a finding"
