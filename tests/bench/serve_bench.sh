#!/usr/bin/env bash
# HTTP benchmarks against a real daemon (run by hand; see docs/BENCHMARKS.md):
#   healthz   wrk -t2 -c50 on GET /healthz with logging and metrics on
#   reload    the same load while the rules are reloaded every 100 ms; counts failed requests
#   startup   time from exec to the "ready" log line, empty database, 20 runs
# Usage: tests/bench/serve_bench.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-rel}
secs=${2:-10}
bin=$build/bandbill
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
cp -r "$root/rules" "$tmp/rules"
"$bin" init --db "$tmp/var/bb.db" >/dev/null
"$bin" serve --db "$tmp/var/bb.db" --rules "$tmp/rules" --listen 127.0.0.1:0 --set log.file="$tmp/var/log" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q '"event":"ready"' "$tmp/var/log" 2>/dev/null && break; sleep 0.05; done
addr=$(grep '"event":"ready"' "$tmp/var/log" | sed 's/.*"listen":"\([^"]*\)".*/\1/')
echo "== healthz: wrk -t2 -c50 -d${secs}s --latency http://$addr/healthz"
wrk -t2 -c50 -d"${secs}s" --latency "http://$addr/healthz" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|Socket errors'

echo "== reload every 100 ms under the same load (each reload swaps in a changed rule set)"
( end=$((SECONDS + secs)); n=0; while [ $SECONDS -lt $end ]; do
      printf 'return { n = %d }\n' "$n" > "$tmp/rules/zz_bench.lua"
      kill -HUP $pid; n=$((n + 1)); sleep 0.1
  done; echo "   $n reloads sent" ) &
wrk -t2 -c50 -d"${secs}s" --latency "http://$addr/healthz" | grep -E 'Requests/sec|99%|Non-2xx|Socket errors|requests in' || true
wait %2 2>/dev/null || true
echo "   reloads done: $(grep -c '"event":"rules_reloaded"' "$tmp/var/log") ($(grep '"event":"rules_reloaded"' "$tmp/var/log" | grep -c '"changed":1') swapped a new version), failed: $(grep -c '"event":"rules_reload_failed"' "$tmp/var/log")"
echo "   non-200 responses in the access log: $(grep '"event":"http"' "$tmp/var/log" | grep -vc '"status":200' || true)"
kill -TERM $pid; wait $pid || true

echo "== start to ready, empty database, 20 runs"
best=999999; total=0
for i in $(seq 20); do
    rm -rf "$tmp/s"; mkdir -p "$tmp/s"
    "$bin" init --db "$tmp/s/bb.db" >/dev/null
    t0=$(date +%s%N)
    "$bin" serve --db "$tmp/s/bb.db" --rules "$tmp/rules" --listen 127.0.0.1:0 2>"$tmp/s/log" &
    p=$!
    until grep -q '"event":"ready"' "$tmp/s/log" 2>/dev/null; do sleep 0.001; done
    t1=$(date +%s%N)
    kill -TERM $p; wait $p || true
    ms=$(( (t1 - t0) / 1000000 )); total=$((total + ms)); [ $ms -lt $best ] && best=$ms
done
echo "   start to ready: mean $((total / 20)) ms, best $best ms (including the polling of the log)"
