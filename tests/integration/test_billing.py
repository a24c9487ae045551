"""Billing runs end to end through the real binary: `bill run` (text and
--json), `bill runs`, `bill show`, `bill preview`; a dry run that writes
nothing; a what-if with a changed tariff that reports the difference; the
API (start a run, poll its progress and report, list runs, preview a
customer's bill, a dry run, bad input); and a run killed with SIGKILL in
the middle and started again: every subscription has exactly one invoice
per period and the invoice numbers have no gap.

Customers, products and subscriptions are written with SQL (schema/0003,
0004, 0006), so these tests depend only on the billing engine. Figures are
hand-computed: a full month of FIB129 is 129.00 with tax 12900 x 6 / 106 =
730.19 -> 7.30; October and November of 2,000 subscriptions make 4,000
invoices.
"""

import json
import os
import signal
import subprocess
import time
import unittest

from bbtest import BBTestCase, BIN, clean_env, poll, read, write


def damm(digits):
    t = [[0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
         [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
         [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
         [2, 5, 8, 1, 4, 3, 6, 7, 9, 0]]
    i = 0
    for c in digits:
        i = t[i][int(c)]
    return i


def code_of(n):
    d = "%08d" % n
    return "C%s%d" % (d, damm(d))


PLAN = '{"period":"month","billing":"postpaid","min_contract_months":0}'


def seed(ws, n, start="2026-11-01", next_bill="2026-12-01"):
    """n customers, each with one FIB129 subscription from `start`."""
    ws.sql("INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
           "(1, 'FIB129', 'plan', 'Fiber 129', 'active', 't', 't')")
    ws.sql("INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, "
           "rule, params, attrs, created_at, created_by) VALUES (1, 1, '2020-01-01', 12900, 1, 'internet', "
           "'tariffs.monthly', '{}', ?, 't', 't')", (PLAN,))
    import sqlite3
    con = sqlite3.connect(ws.db, timeout=10)
    try:
        con.executemany("INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) "
                        "VALUES (?, ?, 'residential', 'Test', 'active', '2026-01-01T00:00:00.000Z', 't', 't')",
                        [(i, code_of(i)) for i in range(1, n + 1)])
        con.executemany("INSERT INTO subscriptions (id, customer_id, product_id, status, billing, period, start_date, "
                        "anchor_day, next_bill_date, created_at, created_by) VALUES (?, ?, 1, 'active', 'postpaid', "
                        "'month', ?, 1, ?, 't', 't')", [(i, i, start, next_bill) for i in range(1, n + 1)])
        con.commit()
    finally:
        con.close()


class BillCase(BBTestCase):
    def count(self, table, where="1"):
        return self.ws.sql("SELECT COUNT(*) FROM %s WHERE %s" % (table, where))[0][0]

    def snapshot(self):
        """Everything billing could write, to prove a dry run wrote nothing."""
        out = {}
        for t in ("invoices", "invoice_lines", "ledger_entries", "allocations", "number_series", "bill_runs",
                  "bill_run_failures", "outbox", "audit_log"):
            out[t] = self.count(t)
        out["subs"] = self.ws.sql("SELECT id, next_bill_date, billed_through FROM subscriptions ORDER BY id")
        return out


class Cli(BillCase):
    def test_progress_bar_on_a_terminal(self):
        """On a terminal the run draws a bar with its rate and ETA, ending
        at 100% (stderr is a pseudo-terminal here, as in an operator's shell)."""
        import pty
        seed(self.ws, 300)
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([BIN, "bill", "run", "--period", "2026-11", "--db", self.ws.db],
                                 stdout=subprocess.PIPE, stderr=slave, env=clean_env({"BANDBILL_RULES": self.ws.rules}),
                                 cwd=self.ws.dir)
            os.close(slave)
            slave = None
            seen = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:   # the run ended and closed its end
                    break
                if not chunk:
                    break
                seen += chunk
            out, _ = p.communicate(timeout=60)
        finally:
            os.close(master)
            if slave is not None:
                os.close(slave)
        text = seen.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, text)
        self.assertRegex(text, r"\r\[#{40}\] 100% 300/300  \d+/s  ETA 0:00  0 failed")
        self.assertNotIn("billing: ", text)   # the plain lines are for pipes and logs
        self.assertEqual(self.count("invoices"), 300)

    def test_run_show_runs_preview(self):
        seed(self.ws, 3)
        r = self.ws.ok("bill", "preview", code_of(1))
        self.assertIn("nothing is written", r.out)
        self.assertIn("129.00", r.out)
        pv = json.loads(self.ws.ok("bill", "preview", code_of(1), "--json").out)
        self.assertEqual(len(pv["bills"]), 1)
        b = pv["bills"][0]
        self.assertEqual((b["gross"], b["tax"], b["net"]), (12900, 730, 12170))
        self.assertEqual(b["period"], {"from": "2026-11-01", "to": "2026-11-30"})
        self.assertEqual(self.count("invoices"), 0)

        r = self.ws.ok("bill", "run", "--period", "2026-11")
        self.assertIn("run 1 done", r.out)
        self.assertIn("3 invoices", r.out)
        self.assertIn("FIB129", r.out)
        # plain progress lines on a pipe
        self.assertIn("billing: 3 of 3 subscriptions (100%)", r.err)
        self.assertEqual(self.count("invoices"), 3)
        rows = self.ws.sql("SELECT number, gross, tax, period_from, period_to, issue_date, due_date, bill_run_id "
                           "FROM invoices ORDER BY id")
        self.assertEqual([x[0] for x in rows], ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"])
        self.assertEqual(rows[0][1:], (12900, 730, "2026-11-01", "2026-11-30", "2026-12-01", "2026-12-16", 1))
        # the run is audited
        self.assertEqual(self.count("audit_log", "action = 'billing.run'"), 1)

        # a second run makes nothing
        j = json.loads(self.ws.ok("bill", "run", "--period", "2026-11", "--json").out)
        self.assertEqual((j["run_id"], j["status"], j["report"]["invoiced"], j["report"]["due"]), (2, "done", 0, 0))
        self.assertEqual(self.count("invoices"), 3)

        runs = json.loads(self.ws.ok("bill", "runs", "--json").out)
        self.assertEqual([x["id"] for x in runs], [2, 1])
        self.assertEqual(runs[1]["invoiced"], 3)
        self.assertEqual(runs[1]["progress"], {"done": 3, "percent": 100})
        show = json.loads(self.ws.ok("bill", "show", "1", "--json").out)
        rep = show["report"]
        self.assertEqual(rep["totals"], {"invoices": 3, "net": 36510, "tax": 2190, "gross": 38700, "credit": 0,
                                         "amount_due": 38700})
        self.assertEqual(rep["by_plan"], [{"plan": "FIB129", "invoices": 3, "net": 36510, "tax": 2190, "gross": 38700}])
        self.assertEqual(rep["by_tax_rate"], [{"rate": 6, "lines": 3, "net": 36510, "tax": 2190, "gross": 38700}])
        self.assertIn("387.00", self.ws.ok("bill", "show", "1").out)
        r = self.ws.run("bill", "show", "99")
        self.assertEqual(r.rc, 1)
        self.assertIn("no billing run 99", r.err)
        r = self.ws.run("bill", "run", "--period", "2026-13")
        self.assertEqual(r.rc, 2, str(r))
        r = self.ws.run("bill", "run", "--period", "2026-11", "--date", "2026-12-01")
        self.assertEqual(r.rc, 2, str(r))

    def test_dry_run_writes_nothing(self):
        seed(self.ws, 5)
        before = self.snapshot()
        j = json.loads(self.ws.ok("bill", "run", "--date", "2026-12-01", "--dry-run", "--json").out)
        self.assertIsNone(j["run_id"])
        self.assertEqual(j["report"]["invoiced"], 5)
        self.assertTrue(j["report"]["dry_run"])
        self.assertEqual(j["report"]["totals"]["gross"], 5 * 12900)
        self.assertEqual(self.snapshot(), before)
        r = self.ws.ok("bill", "run", "--date", "2026-12-01", "--dry-run")
        self.assertIn("dry run: nothing written", r.out)
        self.assertEqual(self.snapshot(), before)

    def test_failures_are_reported_and_the_run_goes_on(self):
        seed(self.ws, 3)
        # customer 2's bill is refused by a rule that returns a float for it
        path = os.path.join(self.ws.rules, "billing.lua")
        text = read(path)
        text = text.replace('"tax", "credit" }', '"tax", "late", "credit" }')
        text = text.replace("\nreturn M", "\nfunction M.late(ctx)\n  if ctx.customer.code == '%s' then\n"
                                          "    return { lines = { { kind = 'fee', description = 'late', amount = 12.5,"
                                          " tax_category = 'internet' } } }\n  end\n  return {}\nend\nreturn M"
                            % code_of(2))
        write(path, text)
        j = json.loads(self.ws.ok("bill", "run", "--date", "2026-12-01", "--json").out)
        rep = j["report"]
        self.assertEqual((rep["invoiced"], rep["failed"]), (2, 1))
        f = rep["failures"][0]
        self.assertEqual((f["customer"], f["code"], f["step"], f["rule"], f["file"]),
                         (code_of(2), "bad_output", "late", "billing.late", "billing.lua"))
        self.assertIn("lines[1].amount: expected an integer count of fen, got a float (12.5)", f["message"])
        self.assertIn("billing.lua:%d" % f["line"], f["message"])
        rows = self.ws.sql("SELECT subscription_id, code, file, line FROM bill_run_failures")
        self.assertEqual(rows, [(2, "bad_output", "billing.lua", f["line"])])
        self.assertEqual(self.count("invoices", "subscription_id = 2"), 0)
        r = self.ws.ok("bill", "show", "1")
        self.assertIn("got a float (12.5)", r.out)


class WhatIf(BillCase):
    def test_changed_tariff(self):
        seed(self.ws, 4)
        # one customer started on the 16th: a partial month the change leaves alone
        self.ws.sql("UPDATE subscriptions SET start_date = '2026-11-16' WHERE id = 4")
        # the rules go live (the daemon stores the version it loads)
        srv = self.ws.serve()
        live = srv.rules_version()
        srv.stop()
        cand = self.ws.copy_rules("candidate")
        p = os.path.join(cand, "tariffs.lua")
        text = read(p)
        self.assertIn("  if used == total then\n    amount = ctx.price\n", text)
        # a full period now costs 1.00 more
        write(p, text.replace("  if used == total then\n    amount = ctx.price\n",
                                        "  if used == total then\n    amount = ctx.price + 100\n"))
        before = self.snapshot()
        j = json.loads(self.ws.ok("bill", "run", "--date", "2026-12-01", "--rules", cand, "--json").out)
        self.assertIsNone(j["run_id"])
        rep = j["report"]
        self.assertEqual(rep["rules_version"], live)
        w = rep["what_if"]
        # 3 full months x 129.00 + 15 of 30 days x 129.00 = 38700 + 6450 live
        self.assertEqual((w["compared"], w["changed"], w["unchanged"], w["increased"], w["decreased"]), (4, 3, 1, 3, 0))
        self.assertEqual((w["total_live"], w["total_candidate"], w["difference"]), (45150, 45450, 300))
        self.assertEqual([(x["customer"], x["live"], x["candidate"], x["difference"]) for x in w["largest"]],
                         [(code_of(i), 12900, 13000, 100) for i in (1, 2, 3)])
        self.assertNotEqual(w["candidate_version"], live)
        self.assertEqual(self.snapshot(), before)
        r = self.ws.ok("bill", "run", "--date", "2026-12-01", "--rules", cand)
        self.assertIn("3 change (3 up, 0 down), 1 unchanged", r.out)
        self.assertIn("difference 3.00", r.out)
        self.assertEqual(self.snapshot(), before)

    def test_no_live_version_is_refused(self):
        # nothing was ever loaded (no rule_loads row): --rules cannot be
        # compared with anything, and must not become the rules billed with
        seed(self.ws, 3)
        cand = self.ws.copy_rules("candidate")
        self.assertEqual(self.count("rule_loads"), 0)
        before = self.snapshot()
        for extra in ([], ["--json"], ["--dry-run"]):
            r = self.ws.run("bill", "run", "--date", "2026-12-01", "--rules", cand, *extra)
            self.assertEqual(r.rc, 1, str(r))
            self.assertEqual(r.out, "")
            lines = r.err.strip().splitlines()
            self.assertEqual(len(lines), 1, r.err)
            self.assertIn("a what-if compares candidate rules with the live ones, and none are recorded yet", lines[0])
            self.assertIn("without --rules", lines[0])
            self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.count("invoices"), 0)
        self.assertEqual(self.count("bill_runs"), 0)
        # the configured folder bills for real
        j = json.loads(self.ws.ok("bill", "run", "--date", "2026-12-01", "--json").out)
        self.assertEqual((j["status"], j["report"]["invoiced"]), ("done", 3))

    def test_largest_of_many(self):
        # 14 customers; customer i started on 15 - i November, so later ones
        # used more days: 16 + i of 30, live 12900 x (16 + i) / 30 = 430 x (16 + i)
        seed(self.ws, 14)
        for i in range(1, 15):
            self.ws.sql("UPDATE subscriptions SET start_date = ? WHERE id = ?", ("2026-11-%02d" % (15 - i), i))
        srv = self.ws.serve()
        srv.stop()
        cand = self.ws.copy_rules("candidate")
        p = os.path.join(cand, "tariffs.lua")
        text = read(p)
        head = 'function M.monthly(ctx)\n  money.check(ctx.price, "price")\n'
        self.assertIn(head, text)
        # the candidate doubles every plan: each bill changes by its live amount
        write(p, text.replace(head, head + "  ctx = bandbill.copy(ctx)\n  ctx.price = ctx.price * 2\n"))
        j = json.loads(self.ws.ok("bill", "run", "--date", "2026-12-01", "--rules", cand, "--json").out)
        w = j["report"]["what_if"]
        self.assertEqual((w["compared"], w["changed"], w["unchanged"], w["increased"], w["decreased"]), (14, 14, 0, 14, 0))
        live = sum(430 * (16 + i) for i in range(1, 15))
        self.assertEqual((w["total_live"], w["total_candidate"], w["difference"]), (live, 2 * live, live))
        # only the ten largest, largest first: customers 14 down to 5
        self.assertEqual([(x["customer"], x["live"], x["candidate"], x["difference"]) for x in w["largest"]],
                         [(code_of(i), 430 * (16 + i), 860 * (16 + i), 430 * (16 + i)) for i in range(14, 4, -1)])


class Api(BillCase):
    def test_runs_preview_and_dry_run(self):
        seed(self.ws, 3)
        tok = self.ws.token()
        srv = self.ws.serve()
        r = srv.get("/api/v1/customers/%s/bill-preview?as_of=2026-12-01" % code_of(1), token=tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["bills"][0]["gross"], 12900)
        self.assertEqual([l["kind"] for l in r.body["bills"][0]["lines"]], ["recurring"])
        r = srv.get("/api/v1/customers/%s/bill-preview" % code_of(999), token=tok)
        self.assertEqual(r.status, 404, r.body)

        before = self.snapshot()
        r = srv.post("/api/v1/bill-runs", {"as_of": "2026-12-01", "dry_run": True}, token=tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(r.body["run_id"])
        self.assertEqual(r.body["report"]["invoiced"], 3)
        self.assertEqual(self.snapshot(), before)

        for body, field in (({"as_of": "2026-12-01", "bogus": 1}, "bogus"), ({"as_of": "2026-13-01"}, "as_of"),
                            ({"period": "2026-11", "as_of": "2026-12-01"}, "period"), ({"dry_run": "yes"}, "dry_run"),
                            ({"period": "11/2026"}, "period")):
            r = srv.post("/api/v1/bill-runs", body, token=tok)
            self.assertEqual(r.status, 400, (body, r.body))
            self.assertEqual(r.body["error"]["field"], field, r.body)

        r = srv.post("/api/v1/bill-runs", {"period": "2026-11"}, token=tok)
        self.assertEqual(r.status, 202, r.body)
        run = r.body
        self.assertEqual((run["as_of"], run["period"], run["trigger"], run["status"]), ("2026-12-01", "2026-11", "api", "running"))
        self.assertEqual(r.headers["Location"], "/api/v1/bill-runs/%d" % run["id"])

        def finished():
            x = srv.get("/api/v1/bill-runs/%d" % run["id"], token=tok)
            return x.body if x.body["status"] != "running" else None
        done = poll(finished, timeout=30, what="the run to finish")
        self.assertEqual(done["status"], "done")
        self.assertEqual((done["due"], done["invoiced"], done["failed"]), (3, 3, 0))
        self.assertEqual(done["progress"], {"done": 3, "percent": 100})
        self.assertEqual(done["report"]["totals"]["gross"], 38700)
        self.assertEqual(self.count("invoices"), 3)
        lst = srv.get("/api/v1/bill-runs?limit=1", token=tok)
        self.assertEqual(lst.status, 200)
        self.assertEqual([x["id"] for x in lst.body["data"]], [run["id"]])
        self.assertIsNone(lst.body["next_cursor"])
        self.assertEqual(srv.get("/api/v1/bill-runs/999", token=tok).status, 404)
        rows = self.ws.sql("SELECT object_type, object_id FROM audit_log WHERE action = 'billing.run'")
        self.assertEqual(rows, [("bill_run", str(run["id"]))])
        # a technician may not start runs
        tech = self.ws.token("it-tech", "technician")
        self.assertEqual(srv.post("/api/v1/bill-runs", {}, token=tech).status, 403)


class KillNine(BillCase):
    # enough for a run to outlast its first batch (half a second at most)
    # by far, whatever the build: the kill lands between commits
    N = 8000

    def test_kill_midway_and_run_again(self):
        # October and November are due: 2 invoices each, 16,000 in all
        seed(self.ws, self.N, start="2026-10-01", next_bill="2026-11-01")
        # the configured rules folder (BANDBILL_RULES), not --rules: on `bill
        # run`, --rules asks for a what-if, which writes nothing
        args = [BIN, "bill", "run", "--date", "2026-12-01", "--db", self.ws.db]
        p = subprocess.Popen(args, cwd=self.ws.dir, env=clean_env({"BANDBILL_RULES": self.ws.rules}),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            poll(lambda: self.count("invoices") >= 300, timeout=120, interval=0.02, what="the run to be under way")
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        made = self.count("invoices")
        self.assertLess(made, 2 * self.N, "the run finished before it was killed; nothing was tested")
        self.assertEqual(self.ws.sql("SELECT status FROM bill_runs"), [("running",)])
        # what was committed is whole: each invoice with its lines and ledger entry
        self.assertEqual(self.count("invoice_lines"), made)
        self.assertEqual(self.count("ledger_entries", "kind = 'invoice'"), made)

        j = json.loads(self.ws.ok("bill", "run", "--date", "2026-12-01", "--set", "rules=" + self.ws.rules, "--json",
                                  timeout=300).out)
        self.assertEqual(j["status"], "done")
        self.assertEqual(j["report"]["invoiced"], 2 * self.N - made)
        self.assertEqual(self.ws.sql("SELECT id, status FROM bill_runs ORDER BY id"), [(1, "interrupted"), (2, "done")])
        # exactly one invoice per subscription and period, and no gap in numbers
        self.assertEqual(self.count("invoices"), 2 * self.N)
        self.assertEqual(self.ws.sql("SELECT COUNT(*) FROM (SELECT subscription_id, period_from FROM invoices "
                                     "GROUP BY 1, 2 HAVING COUNT(*) <> 1)"), [(0,)])
        self.assertEqual(self.ws.sql("SELECT COUNT(DISTINCT subscription_id), MIN(period_from), MAX(period_to) FROM invoices"),
                         [(self.N, "2026-10-01", "2026-11-30")])
        nums = sorted(int(x[0].split("-")[2]) for x in self.ws.sql("SELECT number FROM invoices"))
        self.assertEqual(nums, list(range(1, 2 * self.N + 1)))
        self.assertEqual(self.ws.sql("SELECT next FROM number_series"), [(2 * self.N + 1,)])
        self.assertEqual(self.ws.sql("SELECT DISTINCT next_bill_date, billed_through FROM subscriptions"),
                         [("2027-01-01", "2026-11-30")])
        # and a third run has nothing to do
        j = json.loads(self.ws.ok("bill", "run", "--date", "2026-12-01", "--json").out)
        self.assertEqual(j["report"]["due"], 0)
        self.assertEqual(self.count("invoices"), 2 * self.N)


if __name__ == "__main__":
    unittest.main()
