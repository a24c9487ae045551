"""Refunds of counter and bank payments (`bandbill payment refund`,
POST /api/v1/payments/{id}/refunds): only what settles nothing goes back —
the part of the payment no invoice took, within the customer's credit; the
payment's refunded part and a refund entry in the ledger move together and
`ledger verify` still agrees; a refusal names its field and changes
nothing; a channel's payment is refunded through the channel. Figures:
October's bill is 129.00; a payment of 200.00 pays it and leaves 71.00 of
credit."""

import json

from bbtest import BBTestCase
from test_billing import code_of, seed


class Refunds(BBTestCase):
    def setUp(self):
        super().setUp()
        seed(self.ws, 1, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        pay = json.loads(self.ws.ok("payment", "record", code_of(1), "--amount", "200.00", "--receipt", "R1", "--json").out)
        self.pid = pay["id"]
        self.assertEqual(pay["unallocated"], 7100)

    def state(self):
        return (self.ws.sql("SELECT refunded FROM payments"),
                self.ws.sql("SELECT kind, amount FROM ledger_entries WHERE kind = 'refund'"),
                self.ws.sql("SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account = 'customer'"))

    def test_cli(self):
        before = self.state()
        r = self.ws.run("payment", "refund", str(self.pid), "--amount", "80.00", "--reason", "moved away")
        self.assertOneErrorLine(r, "at most 71.00 can be refunded")
        self.assertEqual(self.state(), before)
        r = self.ws.run("payment", "refund", str(self.pid), "--amount", "10.00")
        self.assertOneErrorLine(r, "needs --reason", rc=2)
        r = self.ws.run("payment", "refund", str(self.pid), "--amount", "10.00", "--reason", "x", "--date", "2099-01-01")
        self.assertOneErrorLine(r, "is in the future")
        r = self.ws.run("payment", "refund", str(self.pid), "--amount", "10.00", "--reason", "x", "--date", "2001-01-01")
        self.assertOneErrorLine(r, "cannot come before the payment")
        self.assertEqual(self.state(), before)

        r = self.ws.ok("payment", "refund", str(self.pid), "--amount", "71.00", "--reason", "moved away")
        self.assertEqual(r.out.strip(), "payment %d: 71.00 refunded (71.00 in all)" % self.pid)
        self.assertEqual(self.state(), ([(7100,)], [("refund", 7100)], [(0,)]))
        self.ws.ok("ledger", "verify")
        r = self.ws.run("payment", "refund", str(self.pid), "--amount", "0.01", "--reason", "again")
        self.assertOneErrorLine(r, "at most 0.00 can be refunded")
        self.assertEqual(self.ws.sql("SELECT count(*) FROM audit_log WHERE action = 'payment.refund'"), [(1,)])

    def test_api(self):
        admin = self.ws.token("it-admin", "admin")
        desk = self.ws.token("it-desk", "customer_service")
        srv = self.ws.serve()
        path = "/api/v1/payments/%d/refunds" % self.pid
        self.assertError(srv.post(path, {"amount": 1000, "reason": "x"}, token=desk), 403)
        self.assertError(srv.post(path, {"amount": 10.5, "reason": "x"}, token=admin), 400, "invalid_money")
        self.assertError(srv.post(path, {"amount": 1000}, token=admin), 400, "missing_field")
        r = srv.post(path, {"amount": 7101, "reason": "x"}, token=admin)
        self.assertError(r, 409, "exceeds_refundable")
        self.assertEqual(r.body["error"]["field"], "amount")
        self.assertError(srv.post("/api/v1/payments/999/refunds", {"amount": 100, "reason": "x"}, token=admin), 404)
        r = srv.post(path, {"amount": 5000, "reason": "partial"}, token=admin)
        self.assertEqual((r.status, r.body["refunded"], r.body["unallocated"]), (200, 5000, 2100))
        self.assertEqual(self.state()[1], [("refund", 5000)])
        # the credit a later bill took cannot go back
        self.ws.sql("INSERT INTO payments (customer_id, channel, channel_txn_id, amount, entry_date, received_at, created_by) "
                    "VALUES (1, 'alipay', 'T1', 100, '2026-11-01', 't', 't')")
        tid = self.ws.sql("SELECT id FROM payments WHERE channel = 'alipay'")[0][0]
        r = srv.post("/api/v1/payments/%d/refunds" % tid, {"amount": 100, "reason": "x"}, token=admin)
        self.assertError(r, 409, "refund_through_channel")
