#!/usr/bin/env bash
# Notification delivery: N SMS messages queued in the outbox, delivered by
# the dispatcher (`bandbill outbox deliver`: the daemon's code, run once) to
# an SMS gateway on loopback that checks every body's HMAC-SHA256 signature.
# Each message is claimed, rendered by rules/notices.lua, signed, sent on a
# keep-alive connection and recorded durably (synchronous=FULL, results
# committed in batches). Run by hand; see docs/BENCHMARKS.md.
# Usage: tests/bench/dispatch_bench.sh [BUILD_DIR] [N] [CONCURRENCY]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-rel}
n=${2:-20000}
conc=${3:-16}
bin=$build/bandbill
secret=bench-secret-0123456789
tmp=$(mktemp -d)
rpid=
trap '[ -n "$rpid" ] && kill $rpid 2>/dev/null; rm -rf "$tmp"' EXIT
cp -r "$root/rules" "$tmp/rules"
# the time of day must not matter: no quiet hours in the bench's rules
python3 - "$tmp/rules/notices.lua" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p, encoding="utf-8").read()
s = re.sub(r"^M\.quiet_hours = \{.*?\n\}\n", "M.quiet_hours = {}\n", s, count=1, flags=re.S | re.M)
open(p, "w", encoding="utf-8").write(s)
PY
"$bin" init --db "$tmp/var/bb.db" >/dev/null
python3 "$root/tests/bench/dispatch_bench.py" prepare "$tmp/var/bb.db" "$tmp/var/bandbill.key" "$n"
python3 "$root/tests/bench/dispatch_bench.py" receive "$tmp/port" "$secret" "$tmp/stats.json" &
rpid=$!
for _ in $(seq 100); do [ -f "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port")
echo "== $n SMS through sms_http to 127.0.0.1:$port, notify.concurrency=$conc ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
t0=$(date +%s.%N)
"$bin" outbox deliver --db "$tmp/var/bb.db" --rules "$tmp/rules" --json \
    --set notify.sms.url="http://127.0.0.1:$port/sms" --set notify.sms.secret="$secret" \
    --set notify.concurrency="$conc" > "$tmp/report.json"
t1=$(date +%s.%N)
kill -TERM $rpid; wait $rpid || true
rpid=
python3 - "$tmp" "$t0" "$t1" "$n" <<'PY'
import json, sqlite3, sys
tmp, t0, t1, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rep = json.load(open(tmp + "/report.json"))
st = json.load(open(tmp + "/stats.json"))
con = sqlite3.connect(tmp + "/var/bb.db")
sent = con.execute("SELECT count(*) FROM outbox WHERE status = 'sent' AND provider_id IS NOT NULL").fetchone()[0]
att = con.execute("SELECT count(*) FROM outbox_attempts WHERE outcome = 'sent'").fetchone()[0]
print("   %d messages in %.2f s: %.0f msg/s end to end (the receiver saw %d in %.2f s; %d bad signatures)" % (
    n, t1 - t0, n / (t1 - t0), st["received"], st["span_s"], st["bad_signatures"]))
print("   dispatcher: sent %d, failed %d, dead %d; recorded sent with the gateway's id %d, attempts %d" % (
    rep["sent"], rep["failed"], rep["dead"], sent, att))
PY
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
