"""The collection ladder (`bandbill dunning run`, rules/dunning.lua) on a
bill due 2026-11-16: nothing six days before; the first reminder five days
before, once however often the pass runs; a pass that missed days acts the
latest due stage only and records the others as skipped; seven days over,
the customer is suspended with a high-priority task; a dry run writes
nothing; a paid bill is not chased; a VIP gets five more days."""

import json

from bbtest import BBTestCase
from test_billing import seed


class Ladder(BBTestCase):
    def setUp(self):
        super().setUp()
        seed(self.ws, 2, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        self.assertEqual(self.ws.sql("SELECT DISTINCT due_date FROM invoices"), [("2026-11-16",)])

    def run_on(self, date, *extra):
        return json.loads(self.ws.ok("dunning", "run", "--date", date, "--json", *extra).out)

    def stages(self, customer=1):
        return self.ws.sql("SELECT stage, status FROM dunning_actions WHERE customer_id = ? ORDER BY id", (customer,))

    def test_the_ladder(self):
        self.assertEqual(self.run_on("2026-11-10")["acted"], 0)
        r = self.run_on("2026-11-11")
        self.assertEqual((r["invoices"], r["acted"], r["notices"]), (2, 2, 2))
        self.assertEqual(self.stages(), [("reminder_5", "done")])
        self.assertEqual(self.ws.sql("SELECT count(*) FROM outbox WHERE event = 'dunning.renewal_reminder'"), [(2,)])
        # again the same day, and again: once
        self.assertEqual(self.run_on("2026-11-11")["acted"], 0)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM outbox WHERE event = 'dunning.renewal_reminder'"), [(2,)])
        # a dry run on a later day says what it would do and writes nothing
        before = self.ws.sql("SELECT count(*) FROM dunning_actions")
        r = self.run_on("2026-11-19", "--dry-run")
        self.assertEqual((r["acted"], r["skipped"]), (2, 6))
        self.assertEqual(self.ws.sql("SELECT count(*) FROM dunning_actions"), before)
        # the pass missed a week: three days over acts the throttle only, the rest skipped
        r = self.run_on("2026-11-19")
        self.assertEqual((r["acted"], r["skipped"], r["network"]), (2, 6, 2))
        self.assertEqual(self.stages(), [("reminder_5", "done"), ("reminder_3", "skipped"), ("due", "skipped"),
                                         ("overdue_1", "skipped"), ("throttle_3", "done")])
        self.assertEqual(self.ws.sql("SELECT count(*) FROM outbox WHERE event = 'service.throttled'"), [(2,)])
        # seven days over: suspended, with a high-priority task
        r = self.run_on("2026-11-23")
        self.assertEqual((r["acted"], r["status_changes"], r["tasks"]), (2, 2, 2))
        self.assertEqual(self.ws.sql("SELECT DISTINCT status FROM customers"), [("suspended",)])
        self.assertEqual(self.ws.sql("SELECT DISTINCT priority, status FROM collection_tasks"), [("high", "open")])
        self.assertEqual(self.run_on("2026-11-30")["acted"], 0)   # the end of the ladder
        # the 360-degree view says where the ladder stands
        srv = self.ws.serve()
        r = srv.get("/api/v1/customers/C000000013/overview", token=self.ws.token())
        recent = r.body["dunning"].pop("recent")
        self.assertEqual(r.body["dunning"], {"state": "suspend_7", "on": "2026-11-23", "invoice": "INV-2026-000001",
                                             "open_tasks": 1})
        # the last five records, newest first, each with its rule-set version
        self.assertEqual([(x["stage"], x["result"], x["acted_on"]) for x in recent],
                         [("suspend_7", "done", "2026-11-23"), ("throttle_3", "done", "2026-11-19"),
                          ("overdue_1", "skipped", "2026-11-19"), ("due", "skipped", "2026-11-19"),
                          ("reminder_3", "skipped", "2026-11-19")])
        self.assertEqual({x["rules_version"] for x in recent}, {srv.rules_version()})

    def test_paid_bills_and_vips(self):
        # customer 1 pays; customer 2 is a VIP
        self.ws.ok("payment", "record", "C000000013", "--amount", "129.00", "--receipt", "R1")
        self.ws.sql("INSERT INTO customer_tags (customer_id, tag) VALUES (2, 'vip')")
        self.run_on("2026-11-11")
        self.assertEqual(self.stages(1), [])
        srv = self.ws.serve()
        r = srv.get("/api/v1/customers/C000000013/overview", token=self.ws.token())
        self.assertEqual(r.body["dunning"], {"state": "none", "open_tasks": 0, "recent": []})
        srv.stop()
        self.assertEqual(self.stages(2), [("reminder_5", "done")])
        self.run_on("2026-11-17")   # one day over: the VIP has five more days
        self.assertEqual(self.stages(2)[-1], ("due", "done"))
        self.run_on("2026-11-22")
        self.assertEqual(self.stages(2)[-1], ("overdue_1", "done"))
        self.assertEqual(self.ws.sql("SELECT status FROM customers WHERE id = 2"), [("overdue",)])
        self.assertEqual(self.ws.sql("SELECT priority FROM collection_tasks WHERE customer_id = 2"), [("low",)])
