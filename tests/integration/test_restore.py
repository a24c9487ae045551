"""A payment by any channel ends the ladder's hold: a counter payment that
leaves nothing overdue makes the suspended customer and the PPPoE account
active at once, with service.restore in the outbox; a payment that leaves
a bill overdue changes nothing. And a customer's own pause ending does not
lift the ladder's hold: a resumed subscription's account goes back to the
throttle the ladder set on an unpaid bill."""

import json

from bbtest import BBTestCase
from test_billing import seed


class Restore(BBTestCase):
    def setUp(self):
        super().setUp()
        seed(self.ws, 1, start="2026-10-01", next_bill="2026-11-01")
        self.srv = self.ws.serve()
        self.token = self.ws.token()
        r = self.srv.post("/api/v1/customers/C000000013/accounts", {"username": "zs001", "password": "Pw-zs001-x"},
                          token=self.token)
        self.assertEqual(r.status, 201, r.body)
        self.ws.sql("UPDATE subscriptions SET service_account_id = (SELECT id FROM service_accounts)")
        self.srv.stop()
        self.ws.ok("bill", "run", "--period", "2026-10")      # 129.00 due 2026-11-16

    def line(self):
        return self.ws.sql("SELECT status, throttle_down_kbps, throttle_up_kbps FROM service_accounts")[0]

    def customer(self):
        return self.ws.sql("SELECT status FROM customers")[0][0]

    def test_a_counter_payment_restores_the_line(self):
        self.ws.ok("dunning", "run", "--date", "2026-11-23")
        self.assertEqual((self.customer(), self.line()), ("suspended", ("suspended", None, None)))
        # a part payment leaves the bill overdue: nothing changes
        r = self.ws.ok("payment", "record", "C000000013", "--amount", "100.00", "--receipt", "R1")
        self.assertNotIn("active again", r.out)
        self.assertEqual((self.customer(), self.line()[0]), ("suspended", "suspended"))
        self.assertEqual(self.ws.sql("SELECT count(*) FROM outbox WHERE event = 'service.restore'"), [(0,)])
        # the rest: active at once, the line too, and the outbox is told
        r = self.ws.ok("payment", "record", "C000000013", "--amount", "29.00", "--receipt", "R2")
        self.assertIn("the customer and the line are active again", r.out)
        self.assertEqual((self.customer(), self.line()), ("active", ("active", None, None)))
        rows = self.ws.sql("SELECT payload FROM outbox WHERE event = 'service.restore'")
        self.assertEqual(len(rows), 1)
        p = json.loads(rows[0][0])
        self.assertEqual((p["from"], p["reason"], p["channel"], p["accounts"]), ("suspended", "paid", "counter", 1))

    def test_the_end_of_a_pause_keeps_the_ladders_hold(self):
        srv = self.ws.serve()
        sid = self.ws.sql("SELECT id FROM subscriptions")[0][0]
        r = srv.post("/api/v1/subscriptions/%d/changes" % sid, {"kind": "suspend"}, token=self.token)
        self.assertEqual(r.status, 201, r.body)
        srv.stop()
        self.assertEqual(self.line()[0], "suspended")
        # three days over while paused: the paused line stays as it is
        self.ws.ok("dunning", "run", "--date", "2026-11-19")
        self.assertEqual(self.line(), ("suspended", None, None))
        srv = self.ws.serve()
        r = srv.post("/api/v1/subscriptions/%d/changes" % sid, {"kind": "resume"}, token=self.token)
        self.assertEqual(r.status, 201, r.body)
        srv.stop()
        # back to the ladder's throttle (2M/2M), not to a free full-speed line
        self.assertEqual(self.line(), ("throttled", 2000, 2000))
        # paid: the line is active again
        self.ws.ok("payment", "record", "C000000013", "--amount", "129.00", "--receipt", "R1")
        self.assertEqual(self.line(), ("active", None, None))

    def test_a_credit_note_that_clears_the_bill_restores_the_line(self):
        self.ws.ok("dunning", "run", "--date", "2026-11-23")
        self.assertEqual((self.customer(), self.line()[0]), ("suspended", "suspended"))
        number = self.ws.sql("SELECT number FROM invoices")[0][0]
        self.ws.ok("invoice", "credit", number, "--reason", "the line was down all month")
        self.assertEqual((self.customer(), self.line()), ("active", ("active", None, None)))
        p = json.loads(self.ws.sql("SELECT payload FROM outbox WHERE event = 'service.restore'")[0][0])
        self.assertEqual(p["reason"], "credited")
