#!/usr/bin/env bash
# The security core's share of a typical API write, over HTTP (run by hand;
# see docs/BENCHMARKS.md). One keep-alive connection sends
# PATCH /api/v1/customers/{code} with a new backup phone and note each time,
# as a customer-service desk's token: permission check, before/after audit
# record, field filter, durable commit. Prints the request latency; the
# in-process A/B of bench_security gives what the security core adds.
# Usage: tests/bench/security_http.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-rel}
secs=${2:-10}
bin=$build/bandbill
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
db=$tmp/var/bb.db
"$bin" init --db "$db" >/dev/null
token=$("$bin" token create --db "$db" --name bench --role customer_service --json | sed 's/.*"token":"\([^"]*\)".*/\1/')
"$bin" serve --db "$db" --rules "$root/rules" --listen 127.0.0.1:0 --set log.file="$tmp/var/log" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q '"event":"ready"' "$tmp/var/log" 2>/dev/null && break; sleep 0.05; done
addr=$(grep '"event":"ready"' "$tmp/var/log" | sed 's/.*"listen":"\([^"]*\)".*/\1/')
code=$(curl -sf -X POST "http://$addr/api/v1/customers" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"张三丰","id_card":"11010519491231002X","phone":"13812348000","email":"zhang.san@example.com",
         "address":{"province":"浙江省","city":"杭州市","district":"西湖区","street":"文新街道","community":"翠苑一区",
                    "building":"3","unit":"2","floor":"5","room":"502"},"tags":["vip"]}' | sed 's/.*"code":"\([^"]*\)".*/\1/')
cat > "$tmp/patch.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"phone2": "0571-8%07d", "notes": "call before visit %d"}', n, n)
  return wrk.format("PATCH", "/api/v1/customers/$code",
    {["Authorization"] = "Bearer $token", ["Content-Type"] = "application/json"}, body)
end
LUA
echo "== PATCH /api/v1/customers/$code: wrk -t1 -c1 -d${secs}s (one client, durable commits)"
wrk -t1 -c1 -d"${secs}s" --latency -s "$tmp/patch.lua" "http://$addr" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|requests in'
echo "   audit records: $(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'customer.update'" 2>/dev/null || echo '?')"
"$bin" audit verify --db "$db" | head -1
kill -TERM $pid; wait $pid || true
