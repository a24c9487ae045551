#!/usr/bin/env bash
# Command 2 of the README: installs what is missing, then builds and runs
# every test: unit and integration tests on a normal build, the same on an
# AddressSanitizer + UndefinedBehaviorSanitizer build, the unit tests under
# valgrind, and each fuzz target for a fixed time.
#   FUZZ_SECONDS=30 (per target)   JOBS=$(nproc)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(bb_root)"

bb_need "${BB_BUILD_DEPS[@]}" libcmocka-dev python3 python3-yaml python3-cryptography python3-aiosmtpd valgrind clang libclang-rt-14-dev lua5.4 freeradius freeradius-utils
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
start=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }

step "build (warnings are errors)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DBB_TESTS=ON >/dev/null
cmake --build build-test -j"$JOBS"

step "optimised build, as the demo command makes it (gcc warns about more at -O2)"
cmake -S . -B build-opt -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBB_TESTS=OFF >/dev/null
cmake --build build-opt -j"$JOBS"

step "unit and integration tests"
(cd build-test && ctest --output-on-failure -j"$JOBS")

step "AddressSanitizer + UndefinedBehaviorSanitizer build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBB_SANITIZE=ON -DBB_TESTS=ON >/dev/null
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j"$JOBS")

step "unit tests under valgrind"
for t in build-test/tests/test_*; do
    [ -x "$t" ] || continue
    valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=1 "$t" >/dev/null 2>"$t.valgrind" || { cat "$t.valgrind"; echo "valgrind: $t failed"; exit 1; }
done
echo "valgrind: no errors, no leaks"

step "fuzzing, ${FUZZ_SECONDS}s per target"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBB_FUZZ=ON -DBB_TESTS=ON >/dev/null
cmake --build build-fuzz -j"$JOBS" --target fuzz_all
tests/fuzz/run.sh build-fuzz "$FUZZ_SECONDS"

step "all tests passed in $(( $(date +%s) - start ))s"
