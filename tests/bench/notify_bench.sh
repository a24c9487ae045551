#!/usr/bin/env bash
# Payment notifications per second through the daemon, durable commits
# (synchronous=FULL), real RSA2 verification, each one a different order
# that it credits (run by hand; see docs/BENCHMARKS.md).
# Usage: tests/bench/notify_bench.sh [BUILD_DIR] [SECONDS] [N] [CONNECTIONS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-rel}
secs=${2:-10}
n=${3:-40000}
conns=${4:-8}
bin=$build/bandbill
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=
mkdir -p "$tmp/var"
cp -r "$root/rules" "$tmp/rules"
python3 "$root/tests/bench/notify_prepare.py" "$bin" "$tmp" "$n"
cat > "$tmp/bb.ini" <<INI
[channel.alipay]
public_key = $tmp/alipay_pub.pem
app_id = 2021000000000001
merchant_id = 2088000000000001
INI
"$bin" serve --db "$tmp/var/bb.db" --rules "$tmp/rules" --config "$tmp/bb.ini" --listen 127.0.0.1:0 \
    --set log.file="$tmp/var/log" 2>/dev/null &
pid=$!
for _ in $(seq 200); do grep -q '"event":"ready"' "$tmp/var/log" 2>/dev/null && break; sleep 0.05; done
addr=$(grep '"event":"ready"' "$tmp/var/log" | sed 's/.*"listen":"\([^"]*\)".*/\1/')
echo "== wrk -t2 -c$conns -d${secs}s POST /api/v1/notify/alipay ($n different orders)"
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$root/tests/bench/notify_bench.lua" "http://$addr/api/v1/notify/alipay" \
    -- "$tmp/bodies.txt" 2 | grep -E 'Requests/sec|Latency|50%|90%|99%|Non-2xx|Socket errors|requests in'
kill -TERM $pid; wait $pid || true
pid=
python3 - "$tmp/var/bb.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
print("   credited %d, duplicates %d, held %d; payments %d; paid invoices %d" % (
    con.execute("SELECT count(*) FROM payment_notifications WHERE outcome = 'credited'").fetchone()[0],
    con.execute("SELECT count(*) FROM payment_notifications WHERE outcome = 'duplicate'").fetchone()[0],
    con.execute("SELECT count(*) FROM payment_notifications WHERE outcome = 'held'").fetchone()[0],
    con.execute("SELECT count(*) FROM payments").fetchone()[0],
    con.execute("SELECT count(*) FROM invoices WHERE status = 'paid'").fetchone()[0]))
PY
