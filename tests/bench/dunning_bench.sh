#!/usr/bin/env bash
# The daily collection pass over a large database (run by hand; see
# docs/BENCHMARKS.md). Takes a database made by `bandbill bench billrun`
# (one bill per customer, or a few more), copies it, marks every bill paid
# except those of one customer in ten (PAID: the pass reads only a bill's
# status and balance, so the payments themselves are not made), then
# times `bandbill dunning run` as of DATE - by default seven days after the
# latest due date, so every unpaid bill goes through the whole ladder in
# one pass (each records five stages as skipped and acts the suspension:
# status, line state, task, outbox) - and once more on the same day (it
# must act on nothing).
# Usage: tests/bench/dunning_bench.sh SOURCE_DIR [BUILD_DIR] [DATE]
#   DATE: e.g. three days after the latest due date, where most unpaid
#   bills take the throttle stage (a notice to the customer's phone and a
#   line change) instead of the suspension
#   SOURCE_DIR holds bb.db and its bandbill.key (e.g. after
#   `bandbill --db DIR/bb.db bench billrun --customers 1000000`)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src=${1:?usage: dunning_bench.sh SOURCE_DIR [BUILD_DIR] [DATE]}
build=${2:-$root/build-rel}
bin=$build/bandbill
work=${BENCH_WORK:-$src-dunning}
rm -rf "$work"
mkdir -p "$work"
echo "== copying $src to $work"
cp "$src/bb.db" "$src/bandbill.key" "$work/"
# what the source's write-ahead log holds belongs to the database too
[ -s "$src/bb.db-wal" ] && cp "$src/bb.db-wal" "$work/"
[ -f "$src/audit.anchor" ] && cp "$src/audit.anchor" "$work/"
"$bin" --db "$work/bb.db" migrate >/dev/null
date=${3:-$(python3 - "$work/bb.db" <<'PY'
import datetime, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
last = con.execute("SELECT max(due_date) FROM invoices").fetchone()[0]
print(datetime.date.fromisoformat(last) + datetime.timedelta(days=7))
PY
)}
echo "== marking the bills of nine customers in ten paid"
python3 - "$work/bb.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("UPDATE invoices SET paid = gross, status = 'paid' WHERE customer_id % 10 <> 0 AND status = 'open'")
con.commit()
print("   unpaid bills: %d of %d; customers: %d" % (
    con.execute("SELECT count(*) FROM invoices WHERE status = 'open'").fetchone()[0],
    con.execute("SELECT count(*) FROM invoices").fetchone()[0],
    con.execute("SELECT count(*) FROM customers").fetchone()[0]))
PY
# with the network feed on (as when radius is configured), every line
# change is also recorded for the network plugin by the triggers
python3 - "$work/bb.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("INSERT OR IGNORE INTO network_sync (id, cursor, baseline, created_at) VALUES (1, 0, 1, '2026-01-01T00:00:00.000Z')")
con.commit()
PY
sync
echo "== bandbill dunning run --date $date (rules: $root/rules)"
/usr/bin/time -f "   %e s elapsed, %U s user, %S s system, max RSS %M KB" \
    "$bin" --db "$work/bb.db" --rules "$root/rules" dunning run --date "$date" --json
echo "== the same pass again (acts on nothing)"
/usr/bin/time -f "   %e s elapsed, %U s user, %S s system, max RSS %M KB" \
    "$bin" --db "$work/bb.db" --rules "$root/rules" dunning run --date "$date" --json
python3 - "$work/bb.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
q = lambda s: con.execute(s).fetchone()[0]
print("   ladder records %d (done %d), open tasks %d, suspended customers %d, outbox messages from the pass %d" % (
    q("SELECT count(*) FROM dunning_actions"), q("SELECT count(*) FROM dunning_actions WHERE status = 'done'"),
    q("SELECT count(*) FROM collection_tasks WHERE status = 'open'"),
    q("SELECT count(*) FROM customers WHERE status = 'suspended'"),
    q("SELECT count(*) FROM outbox WHERE event LIKE 'dunning.%' OR event LIKE 'service.%'")))
print("   network changes recorded for the plugin %d; notices by channel %s" % (
    q("SELECT count(*) FROM network_changes"),
    con.execute("SELECT channel, count(*) FROM outbox WHERE event LIKE 'dunning.%' GROUP BY channel").fetchall()))
PY
