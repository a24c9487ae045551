#!/usr/bin/env bash
# The 360-degree view over HTTP at scale (run by hand; see docs/BENCHMARKS.md,
# "Customers, catalog and the 360° view"). Serves a database made by
# `bandbill bench customers` (a million customers: profile, PPPoE account,
# ONU and deposits, subscription with add-ons) and sends
# GET /api/v1/customers/{code}/overview for customers drawn at random from
# all of them, as a customer-service desk's token: permission check, every
# part of the view (profile decrypted, accounts, devices, deposits,
# subscriptions with today's prices, charges, balance, latest invoices and
# payments), the role's field filter and the audit of clear views.
# Prints wrk's latency distribution: one client, then 8 at once, and for
# reference the same for GET /healthz (what the machine adds to the tail).
#
# Usage: tests/bench/bench_overview.sh DB [BUILD_DIR] [SECONDS] [ROLE]
#   DB         a database of `bench customers` (its key file beside it)
#   BUILD_DIR  default build-rel
#   SECONDS    per measured run, default 20
#   ROLE       the token's role, default customer_service (masked fields);
#              admin sees everything in clear
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
db=${1:?usage: bench_overview.sh DB [BUILD_DIR] [SECONDS] [ROLE]}
build=${2:-$root/build-rel}
secs=${3:-20}
role=${4:-customer_service}
bin=$build/bandbill
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
command -v sqlite3 >/dev/null || { echo "needs sqlite3 (apt-get install sqlite3)"; exit 1; }
tmp=$(mktemp -d)
name=bench-overview-$$
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    "$bin" token revoke "$name" --db "$db" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

n=$(sqlite3 "$db" "SELECT count(*) FROM customers")
echo "== $db: $n customers; $(sqlite3 "$db" "SELECT count(*) FROM invoices") invoices, $(sqlite3 "$db" "SELECT count(*) FROM payments") payments"
# 20,000 customers drawn at random from all of them
sqlite3 "$db" "SELECT code FROM customers ORDER BY random() LIMIT 20000" > "$tmp/codes"
echo "   $(wc -l < "$tmp/codes") random customers"

token=$("$bin" token create --db "$db" --name "$name" --role "$role")
# the scheduled jobs stay off: a billing run or a backup of the whole
# database in the middle would be measured too
jobs=()
for j in billing.run billing.renewals backup db.optimize outbox.deliver subscriptions.apply; do jobs+=(--set "jobs.$j=off"); done
"$bin" serve --db "$db" --rules "$root/rules" --listen 127.0.0.1:0 --set log.file="$tmp/log" --set log.level=info \
    --set rules.watch=false "${jobs[@]}" 2>/dev/null &
pid=$!
for _ in $(seq 200); do grep -q '"event":"ready"' "$tmp/log" 2>/dev/null && break; sleep 0.05; done
addr=$(grep '"event":"ready"' "$tmp/log" | sed 's/.*"listen":"\([^"]*\)".*/\1/')
[ -n "$addr" ] || { echo "the daemon did not start:"; cat "$tmp/log"; exit 1; }

# one view, to show what is measured
one=$(head -1 "$tmp/codes")
curl -sf "http://$addr/api/v1/customers/$one/overview" -H "Authorization: Bearer $token" > "$tmp/one.json"
python3 - "$tmp/one.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
print("   one view (%s): %d bytes; %d accounts, %d devices, %d deposits, %d subscriptions, balance %s, %d invoices, %d payments"
      % (o["code"], len(open(sys.argv[1], "rb").read()), len(o["service_accounts"]), len(o["devices"]), len(o["deposits"]),
         len(o["subscriptions"]), o["balance"], len(o["latest_invoices"]), len(o["latest_payments"])))
PY

cat > "$tmp/overview.lua" <<LUA
local codes = {}
for line in io.lines("$tmp/codes") do codes[#codes + 1] = line end
local headers = {["Authorization"] = "Bearer $token"}
init = function(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000) end
request = function()
  return wrk.format("GET", "/api/v1/customers/" .. codes[math.random(#codes)] .. "/overview", headers)
end
LUA
# the same client against the cheapest route: what the machine itself adds
# to the tail (a shared machine's scheduler shows here too)
echo "== reference: GET /healthz, wrk -t1 -c1 -d5s"
wrk -t1 -c1 -d5s --latency "http://$addr/healthz" | grep -E 'Requests/sec|50%|99%'
show() { grep -E 'Requests/sec|Latency |50%|90%|99%|Non-2xx|requests in|Socket errors'; }
echo "== warm-up, 5 s (not counted): the first visit of a customer reads its pages from the file"
wrk -t1 -c1 -d5s --latency -s "$tmp/overview.lua" "http://$addr" | show
echo "== GET /customers/{random}/overview: wrk -t1 -c1 -d${secs}s (one client)"
wrk -t1 -c1 -d"${secs}s" --latency -s "$tmp/overview.lua" "http://$addr" | show
echo "== GET /customers/{random}/overview: wrk -t2 -c8 -d${secs}s (8 clients at once)"
wrk -t2 -c8 -d"${secs}s" --latency -s "$tmp/overview.lua" "http://$addr" | show
