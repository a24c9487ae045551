"""Collection tasks as staff work them (API and CLI): list by status,
priority and assignee; assign to an active staff user only; outcomes and
notes kept as an append-only history; a promise to pay pauses the ladder
until the promised day; closing needs an outcome; bad input is a 4xx
naming the field and changes nothing. Also: the ladder's record per
customer, public holidays, and the dunning counts in /metrics."""

import json
import re

from bbtest import BBTestCase
from test_billing import seed


class Collection(BBTestCase):
    def setUp(self):
        super().setUp()
        seed(self.ws, 3, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        # due 2026-11-16: one day over opens a low-priority task for each bill
        self.ws.ok("dunning", "run", "--date", "2026-11-17")
        self.assertEqual(self.ws.sql("SELECT count(*) FROM collection_tasks WHERE priority = 'low'"), [(3,)])
        self.ws.ok("user", "add", "wang", "--role", "billing_clerk")
        self.ws.ok("user", "add", "li", "--role", "billing_clerk")
        self.ws.ok("user", "disable", "li")

    def task_ids(self):
        return [r[0] for r in self.ws.sql("SELECT id FROM collection_tasks ORDER BY id")]

    def test_api(self):
        srv = self.ws.serve()
        tok = self.ws.token()
        t1, t2, t3 = self.task_ids()
        r = srv.get("/api/v1/collection-tasks?status=open&limit=2", token=tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([t["id"] for t in r.body["data"]], [t3, t2])
        more = srv.get("/api/v1/collection-tasks?status=open&limit=2&cursor=" + r.body["next_cursor"], token=tok)
        self.assertEqual([t["id"] for t in more.body["data"]], [t1])
        self.assertIsNone(more.body["next_cursor"])
        first = more.body["data"][0]
        self.assertEqual((first["customer"], first["invoice"], first["balance_due"], first["priority"], first["due_date"]),
                         ("C000000013", "INV-2026-000001", 12900, "low", "2026-11-16"))

        # assign, then list by assignee and as unassigned
        r = srv.request("PATCH", "/api/v1/collection-tasks/%d" % t1, body={"assigned_to": "wang"}, token=tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["assigned_to"], "wang")
        r = srv.get("/api/v1/collection-tasks?assigned_to=wang", token=tok)
        self.assertEqual([t["id"] for t in r.body["data"]], [t1])
        r = srv.get("/api/v1/collection-tasks?assigned_to=", token=tok)
        self.assertEqual([t["id"] for t in r.body["data"]], [t3, t2])

        # refused, naming the field, and nothing changes
        before = self.ws.sql("SELECT * FROM collection_tasks ORDER BY id")
        notes = self.ws.sql("SELECT count(*) FROM collection_task_notes")
        for body, field, code in [
            ({"assigned_to": "nobody"}, "assigned_to", "unknown_user"),
            ({"assigned_to": "li"}, "assigned_to", "user_disabled"),
            ({"status": "closed"}, "status", "invalid_field"),
            ({"outcome": "maybe"}, "outcome", "invalid_field"),
            ({"promised_until": "2020-01-01"}, "promised_until", "invalid_date"),
            ({"promised_until": "2026-02-30"}, "promised_until", "invalid_date"),
            ({"status": "done"}, "outcome", "missing_field"),
            ({"note": ""}, "note", "invalid_field"),
            ({}, "note", "missing_field"),
            ({"colour": "red"}, "colour", "unknown_field"),
            ({"note": 5}, "note", "invalid_field"),
        ]:
            r = srv.request("PATCH", "/api/v1/collection-tasks/%d" % t2, body=body, token=tok)
            self.assertError(r, 400, code)
            self.assertEqual(r.body["error"]["field"], field, (body, r.body))
        self.assertError(srv.request("PATCH", "/api/v1/collection-tasks/99999", body={"note": "x"}, token=tok), 404,
                         "task_not_found")
        self.assertError(srv.get("/api/v1/collection-tasks/abc", token=tok), 404, "task_not_found")
        self.assertError(srv.get("/api/v1/collection-tasks?priority=urgent", token=tok), 400, "invalid_parameter")
        self.assertEqual(self.ws.sql("SELECT * FROM collection_tasks ORDER BY id"), before)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM collection_task_notes"), notes)

        # a promise to pay: recorded as the outcome, and the ladder waits for it
        r = srv.request("PATCH", "/api/v1/collection-tasks/%d" % t2,
                        body={"promised_until": "2026-12-05", "note": "pays at the end of the month"}, token=tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["promised_until"], r.body["outcome"]), ("2026-12-05", "promised"))
        srv.stop()
        self.ws.ok("dunning", "run", "--date", "2026-11-23")
        stages = lambda c: [s for (s,) in self.ws.sql(
            "SELECT stage FROM dunning_actions WHERE customer_id = ? AND status = 'done' ORDER BY id", (c,))]
        self.assertEqual(stages(2)[-1], "overdue_1")           # paused
        self.assertEqual(stages(1)[-1], "suspend_7")           # not paused
        self.assertEqual(self.ws.sql("SELECT status FROM customers WHERE id = 2"), [("overdue",)])
        # the promise broken: the day after, the latest stage acts
        self.ws.ok("dunning", "run", "--date", "2026-12-06")
        self.assertEqual(stages(2)[-1], "suspend_7")

        srv = self.ws.serve()
        # close with an outcome; the notes keep every update, who and what
        r = srv.request("PATCH", "/api/v1/collection-tasks/%d" % t2,
                        body={"status": "done", "outcome": "disputed", "note": "says the line was down"}, token=tok)
        self.assertEqual(r.status, 200, r.body)
        r = srv.get("/api/v1/collection-tasks/%d" % t2, token=tok)
        self.assertEqual(r.body["status"], "done")
        notes = r.body["notes"]
        self.assertEqual([n["changes"] for n in notes],
                         [{"promised_until": "2026-12-05", "outcome": "promised"},
                          {"status": "done", "outcome": "disputed"}])
        self.assertEqual([n["note"] for n in notes], ["pays at the end of the month", "says the line was down"])
        self.assertTrue(all(n["by"] for n in notes))
        self.assertEqual([x["stage"] for x in r.body["ladder"]][-1], "suspend_7")
        # the notes are append-only
        with self.assertRaises(Exception):
            self.ws.sql("UPDATE collection_task_notes SET note = 'x'")
        # every change is in the audit trail
        self.assertEqual(self.ws.sql("SELECT count(*) FROM audit_log WHERE action = 'collection_task.update'"), [(3,)])

        # the ladder's record for a customer: stage, result, rule version, newest first
        code2 = self.ws.sql("SELECT code FROM customers WHERE id = 2")[0][0]
        r = srv.get("/api/v1/customers/%s/dunning" % code2, token=tok)
        self.assertEqual(r.status, 200, r.body)
        got = [(x["stage"], x["result"]) for x in r.body["data"]]
        self.assertEqual(got[0], ("suspend_7", "done"))
        self.assertIn(("throttle_3", "skipped"), got)
        self.assertTrue(all(re.fullmatch(r"[0-9a-f]{64}", x["rules_version"]) for x in r.body["data"]))
        self.assertError(srv.get("/api/v1/customers/C000000000/dunning", token=tok), 404)

        # a technician may not see collection work; a clerk may work it
        tech = self.ws.token("it-tech", "technician")
        self.assertError(srv.get("/api/v1/collection-tasks", token=tech), 403)
        cs = self.ws.token("it-cs", "customer_service")
        self.assertEqual(srv.get("/api/v1/collection-tasks", token=cs).status, 200)
        self.assertError(srv.request("PATCH", "/api/v1/collection-tasks/%d" % t3, body={"note": "x"}, token=cs), 403)

        # /metrics: the open tasks by priority (t2 is closed)
        m = srv.get("/metrics").body
        self.assertIn('bandbill_collection_tasks_open{priority="high"} 2', m)
        self.assertIn('bandbill_collection_tasks_open{priority="low"} 0', m)

    def test_cli(self):
        t1, t2, _ = self.task_ids()
        r = self.ws.ok("collection", "assign", str(t1), "wang", "--note", "yours")
        self.assertIn("assigned to     wang", r.out)
        r = self.ws.ok("collection", "list", "--assigned", "wang", "--json")
        self.assertEqual([t["id"] for t in json.loads(r.out)], [t1])
        r = self.ws.ok("collection", "list", "--assigned", "-")
        self.assertEqual(len([l for l in r.out.splitlines() if l.strip()]), 3)   # header and two tasks
        r = self.ws.run("collection", "update", str(t1), "--status", "done")
        self.assertOneErrorLine(r, "outcome")
        r = self.ws.run("collection", "update", str(t1))
        self.assertOneErrorLine(r, "nothing to change", rc=2)
        r = self.ws.run("collection", "show", "x1")
        self.assertOneErrorLine(r, "task", rc=2)
        r = self.ws.run("collection", "assign", str(t2), "li")
        self.assertOneErrorLine(r, "disabled")
        r = self.ws.ok("collection", "update", str(t1), "--outcome", "paid", "--status", "done", "--json")
        t = json.loads(r.out)
        self.assertEqual((t["status"], t["outcome"], t["assigned_to"]), ("done", "paid", "wang"))
        self.assertEqual(len(t["notes"]), 2)
        r = self.ws.ok("collection", "update", str(t2), "--promised-until", "2026-12-01")
        r = self.ws.ok("collection", "update", str(t2), "--promised-until", "-", "--json")
        self.assertIsNone(json.loads(r.out)["promised_until"])
        r = self.ws.ok("collection", "list", "--status", "done", "--json")
        self.assertEqual([t["id"] for t in json.loads(r.out)], [t1])


class Holidays(BBTestCase):
    def test_no_action_on_a_public_holiday(self):
        seed(self.ws, 1, start="2026-08-01", next_bill="2026-09-01")
        self.ws.ok("bill", "run", "--period", "2026-08")
        due = self.ws.sql("SELECT due_date FROM invoices")[0][0]
        self.assertEqual(due, "2026-09-16")
        # the ladder reaches day 17 over during the National Day holidays: nothing happens
        for day in ("2026-10-01", "2026-10-03", "2026-10-07"):
            r = json.loads(self.ws.ok("dunning", "run", "--date", day, "--json").out)
            self.assertEqual((r["acted"], r["skipped"]), (0, 0), day)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM dunning_actions"), [(0,)])
        # the first working day acts the latest stage only
        r = json.loads(self.ws.ok("dunning", "run", "--date", "2026-10-08", "--json").out)
        self.assertEqual((r["acted"], r["skipped"]), (1, 5))
        self.assertEqual(self.ws.sql("SELECT stage FROM dunning_actions WHERE status = 'done'"), [("suspend_7",)])


class DaemonPass(BBTestCase):
    def test_the_daemons_pass_is_counted_in_metrics(self):
        seed(self.ws, 3, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        # the daily pass was last scheduled long ago: the daemon catches up
        # at once, as of today (every bill is well over seven days late)
        self.ws.sql("INSERT INTO job_state (job, last_scheduled_for) VALUES ('dunning.run', '2026-01-01T09:00:00.000Z')")
        srv = self.ws.serve()
        from bbtest import poll
        poll(lambda: self.ws.sql("SELECT status FROM job_runs WHERE job = 'dunning.run' AND status <> 'running'"),
             timeout=20, what="the dunning catch-up run")
        self.assertEqual(self.ws.sql("SELECT status FROM job_runs WHERE job = 'dunning.run'"), [("ok",)])
        m = srv.get("/metrics").body
        self.assertIn('bandbill_dunning_stages_total{stage="suspend_7",result="done"} 3', m)
        self.assertIn('bandbill_dunning_stages_total{stage="throttle_3",result="skipped"} 3', m)
        self.assertIn('bandbill_collection_tasks_open{priority="high"} 3', m)


class ByPlan(BBTestCase):
    def test_the_rule_sees_the_bills_plan(self):
        """A ladder that varies by plan: the rule gets the plan's code and
        the billing kind of the bill's subscription."""
        seed(self.ws, 1, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        path = self.ws.path("rules", "dunning.lua")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("function M.plan(ctx)\n",
                            "function M.plan(ctx)\n"
                            "  if ctx.invoice.plan == 'FIB129' and ctx.invoice.billing == 'postpaid' and ctx.days >= 0 then\n"
                            "    return { stage = 'fib129_' .. ctx.invoice.billing, actions = {}, skip = {} }\n"
                            "  end\n", 1)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        self.ws.ok("dunning", "run", "--date", "2026-11-16")
        self.assertEqual(self.ws.sql("SELECT stage, status FROM dunning_actions"), [("fib129_postpaid", "done")])


class BadActions(BBTestCase):
    def test_a_bad_action_fails_that_bill_only(self):
        """A rate that is not one, or a channel that does not exist, is the
        rule's failure for that bill (logged, counted); the pass goes on
        and acts on the other bills."""
        seed(self.ws, 3, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        path = self.ws.path("rules", "dunning.lua")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("function M.plan(ctx)\n",
                            "function M.plan(ctx)\n"
                            "  if ctx.customer.code == 'C000000013' then\n"
                            "    return { stage = 'x', actions = { { kind = 'network', state = 'throttled', rate = 'fast' } }, skip = {} }\n"
                            "  elseif ctx.customer.code == 'C000000021' then\n"
                            "    return { stage = 'x', actions = { { kind = 'notify', template = 'due_reminder', channels = { 'pigeon' } } }, skip = {} }\n"
                            "  end\n", 1)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        r = self.ws.run("dunning", "run", "--date", "2026-11-16", "--json")
        self.assertEqual(r.rc, 0, r)
        out = json.loads(r.out)
        self.assertEqual((out["invoices"], out["failed"], out["acted"]), (3, 2, 1))
        self.assertEqual(self.ws.sql("SELECT customer_id, stage, status FROM dunning_actions"),
                         [(3, "reminder_5", "skipped"), (3, "reminder_3", "skipped"), (3, "due", "done")])
