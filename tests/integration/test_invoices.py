"""Invoices, credit notes, the ledger and payments through the real binary:
bills made by `bandbill bill run`, then the API of the daemon and the CLI.

What is checked: an invoice's personal fields (customer_name,
service_address, billing_address) per role, with views in clear audited;
every change audited with before/after; 4xx bodies naming the field
(floats refused as money, unknown fields, missing reasons) with nothing
written; pagination; four eyes on adjustments; the e-bill in the outbox;
and `bandbill ledger verify` (CLI and API) naming corruption made behind
its back. Figures by hand: 129.00 at 6% tax included -> tax 7.30
(12900 * 6 / 106 = 730.19)."""

import datetime
import json
import sqlite3
import time

from bbtest import BBTestCase, poll

try:
    from zoneinfo import ZoneInfo
    TZ = ZoneInfo("Asia/Shanghai")
except Exception:  # noqa: BLE001 - fixed offset fallback
    TZ = datetime.timezone(datetime.timedelta(hours=8))


def damm(digits):
    t = [[0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
         [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
         [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
         [2, 5, 8, 1, 4, 3, 6, 7, 9, 0]]
    i = 0
    for ch in digits:
        i = t[i][int(ch)]
    return i


def code_of(n):
    d = "%08d" % n
    return "C%s%d" % (d, damm(d))


C1, C2, C3 = code_of(1), code_of(2), code_of(3)

TODAY = datetime.datetime.now(TZ).date()
MONTH_START = TODAY.replace(day=1)
PERIOD = TODAY.strftime("%Y-%m")
AS_OF = (MONTH_START.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
YEAR = AS_OF.year
INV1, INV2, INV3 = ("INV-%d-%06d" % (YEAR, n) for n in (1, 2, 3))
CN1 = "CN-%d-000001" % YEAR

PLAN_ATTRS = '{"period":"month","billing":"postpaid","download_mbps":300,"upload_mbps":50}'

ZHANG = ["--name", "张三丰", "--phone", "13812348000", "--province", "浙江省", "--city", "杭州市", "--district", "西湖区",
         "--street", "文三路", "--community", "翠苑一区", "--building", "3", "--unit", "2", "--room", "1101"]


def make_bills(ws):
    """Three customers on a 129.00 plan since the 1st, billed for this month:
    INV1 (C1), INV2 (C2), INV3 (C3), 129.00 each (tax 7.30)."""
    ws.ok("customer", "add", *ZHANG)
    ws.ok("customer", "add", "--name", "李四", "--province", "浙江省", "--city", "杭州市", "--district", "上城区",
          "--street", "解放路", "--room", "202")
    ws.ok("customer", "add", "--name", "王五", "--province", "浙江省", "--city", "杭州市", "--district", "滨江区")
    # billing address of C1, different from the service address
    ws.sql("INSERT INTO addresses (customer_id, kind, province, city, district, street, room) "
           "VALUES (1, 'billing', '浙江省', '杭州市', '上城区', '解放路', '808')")
    ws.sql("INSERT INTO products (id, code, kind, name, status, created_at, created_by) "
           "VALUES (1, 'FIBER300', 'plan', 'Fiber 300M', 'active', 't', 't')")
    ws.sql("INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, "
           "rule, attrs, regions, created_at, created_by) VALUES (1, 1, '2020-01-01', 12900, 1, 'internet', 'tariffs.monthly', "
           "?, '[]', 't', 't')", (PLAN_ATTRS,))
    for c in (C1, C2, C3):
        ws.ok("subscribe", c, "FIBER300", "--start", MONTH_START.isoformat())
    r = ws.ok("bill", "run", "--period", PERIOD)
    n = ws.sql("SELECT COUNT(*) FROM invoices WHERE status = 'open'")[0][0]
    assert n == 3, "expected 3 bills from the run:\n%s" % r


class InvoiceCase(BBTestCase):
    def setUp(self):
        super().setUp()
        make_bills(self.ws)
        self.tok = self.ws.token()
        self.srv = self.ws.serve()

    def api(self, method, path, body=None, token=None):
        return self.srv.request(method, "/api/v1" + path, body=body, token=token or self.tok)

    def audit(self, action):
        return self.ws.sql("SELECT object_type, object_id, diff, actor FROM audit_log WHERE action = ? ORDER BY id", (action,))

    def count(self, table):
        return self.ws.sql("SELECT COUNT(*) FROM %s" % table)[0][0]


class Invoices(InvoiceCase):
    def test_invoice_contents_and_the_ebill(self):
        r = self.api("GET", "/invoices/" + INV1)
        self.assertEqual(r.status, 200, r.body)
        o = r.body
        self.assertEqual(o["id"], INV1)
        self.assertEqual(o["customer"], C1)
        self.assertEqual(o["status"], "open")
        self.assertEqual((o["net"], o["tax"], o["gross"], o["paid"], o["balance_due"]), (12170, 730, 12900, 0, 12900))
        self.assertEqual(o["totals"], {"net": 12170, "tax": 730, "gross": 12900})
        self.assertEqual(o["period"], {"from": MONTH_START.isoformat(), "to": (AS_OF - datetime.timedelta(days=1)).isoformat()})
        self.assertEqual(o["issue_date"], AS_OF.isoformat())
        self.assertEqual(o["customer_name"], "张三丰")
        self.assertEqual(o["service_address"]["room"], "1101")
        self.assertEqual(o["billing_address"]["room"], "808")
        self.assertTrue(o["rules_version"])
        self.assertEqual(len(o["lines"]), 1)
        line = o["lines"][0]
        for k in ("kind", "description", "quantity", "unit_price", "amount", "tax_category", "tax_rate", "tax", "step", "rule"):
            self.assertIn(k, line)
        self.assertEqual((line["amount"], line["tax_rate"], line["tax"], line["tax_category"]), (12900, 6, 730, "internet"))
        # explain: each line with step, rule, rule-set version
        r = self.api("GET", "/invoices/%s/explain" % INV1)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["lines"][0]["rules_version"], o["rules_version"])
        self.assertIn("step " + line["step"], r.body["text"][0])
        # the e-bill, queued with the invoice
        rows = self.ws.sql("SELECT event, channel, payload, dedupe_key, recipient_enc FROM outbox WHERE dedupe_key = ?",
                           ("invoice_issued:%s:sms" % INV1,))
        self.assertEqual(len(rows), 1)
        ev, ch, payload, key, rec = rows[0]
        self.assertEqual((ev, ch), ("invoice_issued", "sms"))     # to the customer's phone: no preference for another
        self.assertEqual(json.loads(payload), {"number": INV1, "customer": C1, "amount_due": 12900,
                                               "due_date": o["due_date"], "pay_link": "/pay/" + INV1,
                                               "period": "%s..%s" % (o["period"]["from"], o["period"]["to"])})
        self.assertTrue(rec.startswith("enc:v1:"), rec)
        self.assertNotIn("13812348000", rec)
        # unknown invoices
        self.assertError(self.api("GET", "/invoices/INV-1999-000001"), 404, "not_found")
        self.assertError(self.api("GET", "/credit-notes/CN-1999-000001"), 404, "not_found")

    def test_personal_fields_per_role(self):
        toks = {role: self.ws.token("t-" + role, role) for role in ("billing_clerk", "analyst", "customer_service", "technician")}
        r = self.api("GET", "/invoices/" + INV1, token=toks["billing_clerk"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["customer_name"], "张三丰")
        self.assertEqual(r.body["service_address"]["room"], "*")          # masked for billing clerks
        self.assertEqual(r.body["service_address"]["district"], "西湖区")
        self.assertEqual(r.body["billing_address"]["room"], "808")
        r = self.api("GET", "/invoices/" + INV1, token=toks["analyst"])
        self.assertEqual(r.body["customer_name"], "张**")
        self.assertEqual(r.body["billing_address"]["street"], "*")
        self.assertEqual(r.body["gross"], 12900)
        r = self.api("GET", "/invoices/" + INV1, token=toks["customer_service"])
        self.assertEqual(r.body["service_address"]["room"], "1101")
        self.assertError(self.api("GET", "/invoices/" + INV1, token=toks["technician"]), 403, "forbidden")
        # lists are filtered the same way
        r = self.api("GET", "/invoices?customer=" + C1, token=toks["analyst"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([x["customer_name"] for x in r.body["data"]], ["张**"])
        # a view in clear is recorded (the queue is flushed every 100 ms)
        poll(lambda: [x for x in self.audit("field.view") if x[0] == "invoice" and x[1] and INV1 in x[1]],
             what="field.view record of the invoice")

    def test_list_pages_and_filters(self):
        r = self.api("GET", "/invoices?limit=2")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([x["id"] for x in r.body["data"]], [INV3, INV2])
        self.assertTrue(r.body["next_cursor"])
        r = self.api("GET", "/invoices?limit=2&cursor=" + r.body["next_cursor"])
        self.assertEqual([x["id"] for x in r.body["data"]], [INV1])
        self.assertIsNone(r.body["next_cursor"])
        r = self.api("GET", "/invoices?status=paid")
        self.assertEqual(r.body["data"], [])
        self.assertError(self.api("GET", "/invoices?status=unpaid"), 400, "invalid_parameter")
        self.assertError(self.api("GET", "/invoices?cursor=abc"), 400, "invalid_parameter")
        err = self.assertError(self.api("GET", "/invoices?customer=C000000014"), 400)
        self.assertEqual(err["field"], "customer")
        self.assertError(self.api("GET", "/invoices?limit=0"), 400, "invalid_parameter")


class Payments(InvoiceCase):
    def test_record_allocate_and_duplicates(self):
        r = self.api("POST", "/customers/%s/payments" % C1, {"amount": 20000, "receipt": "R-0001"})
        self.assertEqual(r.status, 201, r.body)
        p = r.body
        self.assertEqual((p["amount"], p["channel"], p["channel_txn_id"], p["unallocated"]), (20000, "counter", "R-0001", 7100))
        self.assertEqual([(a["invoice"], a["amount"]) for a in p["allocations"]], [(INV1, 12900)])
        self.assertEqual(self.api("GET", "/invoices/" + INV1).body["status"], "paid")
        led = self.api("GET", "/customers/%s/ledger" % C1).body
        self.assertEqual((led["balance"], led["open"], led["credit"]), (-7100, 0, 7100))
        self.assertEqual([e["kind"] for e in led["data"]], ["payment", "invoice"])
        self.assertEqual(led["data"][0]["balance_after"], -7100)
        audits = self.audit("payment.record")
        self.assertEqual(len(audits), 1)
        self.assertEqual(audits[0][1], str(p["id"]))
        # the same receipt again: refused, nothing credited
        r = self.api("POST", "/customers/%s/payments" % C1, {"amount": 20000, "receipt": "R-0001"})
        err = self.assertError(r, 409, "duplicate")
        self.assertEqual(err["field"], "receipt")
        self.assertIn("payment %d" % p["id"], err["message"])
        self.assertEqual(self.count("payments"), 1)
        self.assertEqual(self.api("GET", "/customers/%s/ledger" % C1).body["balance"], -7100)
        self.assertEqual(len(self.audit("payment.record")), 1)
        # the payment, the list, paginated
        r = self.api("POST", "/customers/%s/payments" % C1, {"amount": 100, "receipt": "B-7", "channel": "bank", "note": "transfer"})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.api("GET", "/payments/%d" % p["id"]).body["allocations"][0]["invoice"], INV1)
        r = self.api("GET", "/customers/%s/payments?limit=1" % C1)
        self.assertEqual([x["channel"] for x in r.body["data"]], ["bank"])
        r = self.api("GET", "/customers/%s/payments?limit=1&cursor=%s" % (C1, r.body["next_cursor"]))
        self.assertEqual([x["channel_txn_id"] for x in r.body["data"]], ["R-0001"])
        self.assertIsNone(r.body["next_cursor"])
        self.assertError(self.api("GET", "/payments/999"), 404, "not_found")
        self.assertError(self.api("GET", "/payments/abc"), 404, "not_found")

    def test_payment_for_an_invoice(self):
        # made for INV2 (C2's own): it pays that one
        r = self.api("POST", "/customers/%s/payments" % C2, {"amount": 12900, "receipt": "R-2", "invoice": INV2})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body["allocations"][0]["invoice"], INV2)
        # an invoice of somebody else is refused, naming the field
        err = self.assertError(self.api("POST", "/customers/%s/payments" % C2, {"amount": 100, "receipt": "R-3", "invoice": INV1}), 400)
        self.assertEqual(err["field"], "invoice")

    def test_refusals_name_the_field_and_write_nothing(self):
        cases = [
            ({"amount": 100.5, "receipt": "R"}, "invalid_money", "amount"),
            ({"amount": 1e4, "receipt": "R"}, "invalid_money", "amount"),
            ({"amount": "100", "receipt": "R"}, "invalid_money", "amount"),
            ({"amount": 0, "receipt": "R"}, "invalid_field", "amount"),
            ({"amount": -5, "receipt": "R"}, "invalid_money", "amount"),
            ({"receipt": "R"}, "missing_field", "amount"),
            ({"amount": 100}, "missing_field", "receipt"),
            ({"amount": 100, "receipt": "R", "tip": 5}, "unknown_field", "tip"),
            ({"amount": 100, "receipt": "R", "channel": "alipay"}, "invalid_field", "channel"),
            ({"amount": 100, "receipt": "R", "date": "2026-02-30"}, "invalid_date", "date"),
            ({"amount": 100, "receipt": "R", "date": "2999-01-01"}, "invalid_date", "date"),
            ({"amount": 100, "receipt": "R", "invoice": "INV-1999-000009"}, "not_found", "invoice"),
        ]
        for body, code, field in cases:
            with self.subTest(body=body):
                err = self.assertError(self.api("POST", "/customers/%s/payments" % C1, body), 400, code)
                self.assertEqual(err["field"], field)
        self.assertError(self.api("POST", "/customers/C000000014/payments", {"amount": 100, "receipt": "R"}), 400)
        self.assertError(self.api("POST", "/customers/%s/payments" % code_of(9), {"amount": 100, "receipt": "R"}), 404)
        self.assertEqual(self.count("payments"), 0)
        self.assertEqual(self.ws.sql("SELECT COUNT(*) FROM ledger_entries WHERE kind = 'payment'")[0][0], 0)
        # a technician may not record payments
        tech = self.ws.token("tech", "technician")
        self.assertError(self.api("POST", "/customers/%s/payments" % C1, {"amount": 100, "receipt": "R"}, token=tech), 403)


class Corrections(InvoiceCase):
    def test_credit_notes(self):
        # 10.00 of line 1 at 6%: 1000 * 6 / 106 = 56.6 -> 57
        r = self.api("POST", "/invoices/%s/credit-notes" % INV1, {"reason": "outage", "lines": [{"line": 1, "amount": 1000}]})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual((r.body["number"], r.body["invoice"], r.body["gross"], r.body["tax"], r.body["net"]), (CN1, INV1, 1000, 57, 943))
        inv = self.api("GET", "/invoices/" + INV1).body
        self.assertEqual((inv["credited"], inv["balance_due"], inv["status"]), (1000, 11900, "partially_paid"))
        self.assertEqual(inv["credit_notes"][0]["number"], CN1)
        self.assertEqual(inv["lines"][0]["credited"], 1000)
        r = self.api("GET", "/credit-notes/" + CN1)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["lines"], [{"line": 1, "kind": "recurring", "description": inv["lines"][0]["description"],
                                            "amount": 1000, "tax": 57, "net": 943, "tax_rate": 6}])
        audits = self.audit("invoice.credit")
        self.assertEqual(len(audits), 1)
        self.assertEqual(audits[0][:2], ("invoice", INV1))
        diff = json.loads(audits[0][2])
        self.assertEqual(diff["before"]["credited"], 0)
        self.assertEqual(diff["after"]["credited"], 1000)
        # the rest, whole: exactly the tax left (730 - 57)
        r = self.api("POST", "/invoices/%s/credit-notes" % INV1, {"reason": "cancelled"})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual((r.body["gross"], r.body["tax"]), (11900, 673))
        self.assertEqual(self.api("GET", "/invoices/" + INV1).body["balance_due"], 0)
        # refusals, nothing written
        cases = [
            ({"lines": [{"line": 1, "amount": 100}]}, "missing_field", "reason"),
            ({"reason": "x", "lines": [{"line": 9, "amount": 100}]}, "invalid_field", "lines[0].line"),
            ({"reason": "x", "lines": [{"line": 1, "amount": 10.5}]}, "invalid_money", "lines[0].amount"),
            ({"reason": "x", "lines": [{"line": 1}]}, "missing_field", "lines[0].amount"),
            ({"reason": "x", "lines": [{"line": 1, "amount": 1, "tax": 0}]}, "unknown_field", "lines[0].tax"),
            ({"reason": "x", "lines": []}, "invalid_field", "lines"),
            ({"reason": "x", "lines": "all"}, "invalid_field", "lines"),
            ({"reason": "x", "memo": 1}, "unknown_field", "memo"),
        ]
        for body, code, field in cases:
            with self.subTest(body=body):
                err = self.assertError(self.api("POST", "/invoices/%s/credit-notes" % INV2, body), 400, code)
                self.assertEqual(err["field"], field)
        # more than is left of the line: the first line fine, the second not
        err = self.assertError(self.api("POST", "/invoices/%s/credit-notes" % INV2,
                                        {"reason": "x", "lines": [{"line": 1, "amount": 100}, {"line": 1, "amount": 100}]}), 400)
        self.assertEqual(err["field"], "lines[1].line")
        err = self.assertError(self.api("POST", "/invoices/%s/credit-notes" % INV2,
                                        {"reason": "x", "lines": [{"line": 1, "amount": 12901}]}), 400, "over_credit")
        self.assertEqual(err["field"], "lines[0].amount")
        self.assertEqual(self.count("credit_notes"), 2)
        self.assertEqual(self.api("GET", "/invoices/" + INV2).body["credited"], 0)
        self.assertError(self.api("POST", "/invoices/INV-1999-000001/credit-notes", {"reason": "x"}), 404, "not_found")

    def test_void_and_write_off(self):
        # pay part of INV1: it can no longer be voided
        self.assertEqual(self.api("POST", "/customers/%s/payments" % C1, {"amount": 500, "receipt": "R-1"}).status, 201)
        err = self.assertError(self.api("POST", "/invoices/%s/void" % INV1, {"reason": "wrong"}), 409, "invoice_settled")
        self.assertIn("5.00", err["message"])
        self.assertEqual(self.api("GET", "/invoices/" + INV1).body["status"], "partially_paid")
        # INV2 is voided: its period is free again, the ledger takes it back
        self.assertError(self.api("POST", "/invoices/%s/void" % INV2, {}), 400, "missing_field")
        self.assertError(self.api("POST", "/invoices/%s/void" % INV2, {"reason": "   "}), 400, "missing_field")
        r = self.api("POST", "/invoices/%s/void" % INV2, {"reason": "billed to the wrong customer"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["status"], r.body["balance_due"], r.body["void_reason"]), ("void", 0, "billed to the wrong customer"))
        led = self.api("GET", "/customers/%s/ledger" % C2).body
        self.assertEqual(led["balance"], 0)
        self.assertEqual([e["amount"] for e in led["data"]], [-12900, 12900])
        audits = self.audit("invoice.void")
        self.assertEqual(len(audits), 1)
        diff = json.loads(audits[0][2])
        self.assertEqual((diff["before"]["status"], diff["after"]["status"]), ("open", "void"))
        self.assertNotIn("李四", audits[0][2])     # the name is masked in the trail
        self.assertError(self.api("POST", "/invoices/%s/void" % INV2, {"reason": "again"}), 409, "invoice_void")
        # INV3 is written off
        r = self.api("POST", "/invoices/%s/write-off" % INV3, {"reason": "moved away", "date": TODAY.isoformat()})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["status"], r.body["written_off"], r.body["balance_due"]), ("written_off", 12900, 0))
        self.assertEqual(len(self.audit("invoice.write_off")), 1)
        self.assertError(self.api("POST", "/invoices/%s/write-off" % INV3, {"reason": "again"}), 409, "nothing_to_write_off")
        self.assertError(self.api("POST", "/invoices/%s/write-off" % INV1, {"reason": "x", "date": "tomorrow"}), 400, "invalid_date")
        # an analyst reads but does not change
        ana = self.ws.token("ana", "analyst")
        self.assertError(self.api("POST", "/invoices/%s/write-off" % INV1, {"reason": "x"}, token=ana), 403)

    def test_adjustments_need_four_eyes(self):
        self.ws.ok("user", "add", "alice", "--role", "billing_clerk")
        self.ws.ok("user", "add", "bob", "--role", "billing_clerk")
        self.ws.ok("user", "add", "tom", "--role", "technician")
        alice = self.ws.token("alice", "billing_clerk")        # a token named like the user asking
        body = {"amount": -2000, "reason": "outage compensation", "approved_by": "alice"}
        err = self.assertError(self.api("POST", "/customers/%s/adjustments" % C1, body, token=alice), 403, "same_approver")
        self.assertEqual(err["field"], "approved_by")
        for approver, status, code in (("nobody", 400, "unknown_approver"), ("tom", 403, "approver_not_allowed")):
            err = self.assertError(self.api("POST", "/customers/%s/adjustments" % C1, dict(body, approved_by=approver), token=alice),
                                   status, code)
            self.assertEqual(err["field"], "approved_by")
        for bad, code, field in ((dict(body, amount=-20.5), "invalid_money", "amount"), (dict(body, amount=0), "invalid_field", "amount"),
                                 ({"amount": 100, "approved_by": "bob"}, "missing_field", "reason"),
                                 (dict(body, approved_by=None), "missing_field", "approved_by"),
                                 (dict(body, when="now"), "unknown_field", "when")):
            with self.subTest(body=bad):
                err = self.assertError(self.api("POST", "/customers/%s/adjustments" % C1, bad, token=alice), 400, code)
                self.assertEqual(err["field"], field)
        self.assertEqual(self.ws.sql("SELECT COUNT(*) FROM ledger_entries WHERE kind = 'adjustment'")[0][0], 0)
        r = self.api("POST", "/customers/%s/adjustments" % C1, dict(body, approved_by="bob"), token=alice)
        self.assertEqual(r.status, 201, r.body)
        # a credit is credit available: the open invoice stays as it is
        self.assertEqual((r.body["balance"], r.body["open"], r.body["credit"]), (10900, 12900, 2000))
        self.assertEqual((r.body["entry"]["reason"], r.body["entry"]["approved_by"]), ("outage compensation", "bob"))
        audits = self.audit("ledger.adjust")
        self.assertEqual(len(audits), 1)
        self.assertEqual((audits[0][1], audits[0][3]), (C1, "token:alice"))
        # a credit larger than what is owed becomes credit available
        r = self.api("POST", "/customers/%s/adjustments" % C1, dict(body, amount=-20000, approved_by="bob"), token=alice)
        self.assertEqual((r.body["balance"], r.body["open"], r.body["credit"]), (-9100, 12900, 22000))


class VoidLatest(InvoiceCase):
    def test_void_only_the_latest_bill(self):
        # the next month billed too: C2's first bill is no longer its latest,
        # and voiding it would leave its period unbilled for ever
        nxt = (AS_OF.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
        self.ws.ok("bill", "run", "--date", nxt.isoformat())
        later = self.ws.sql("SELECT i.number FROM invoices i JOIN customers c ON c.id = i.customer_id "
                            "WHERE c.code = ? AND i.period_from = ?", (C2, AS_OF.isoformat()))[0][0]
        err = self.assertError(self.api("POST", "/invoices/%s/void" % INV2, {"reason": "wrong"}), 409, "not_latest")
        self.assertIn("void only the subscription's latest bill; correct this one with a credit note", err["message"])
        self.assertEqual(err["field"], "number")
        self.assertOneErrorLine(self.ws.run("invoice", "void", INV2, "--reason", "wrong"),
                                "void only the subscription's latest bill; correct this one with a credit note")
        self.assertEqual(self.api("GET", "/invoices/" + INV2).body["status"], "open")
        self.assertEqual(self.audit("invoice.void"), [])
        # the latest first; then INV2 is the latest and may go too
        self.assertEqual(self.api("POST", "/invoices/%s/void" % later, {"reason": "wrong"}).status, 200)
        r = self.api("POST", "/invoices/%s/void" % INV2, {"reason": "wrong"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.ws.sql("SELECT billed_through FROM subscriptions s JOIN customers c ON c.id = s.customer_id "
                                     "WHERE c.code = ?", (C2,)), [(None,)])


class Cli(InvoiceCase):
    def test_cli_commands(self):
        ws = self.ws
        r = ws.ok("invoice", "list")
        self.assertIn(INV1, r.out)
        self.assertIn("129.00", r.out)
        r = ws.ok("invoice", "list", "--customer", C2, "--json")
        self.assertEqual([x["id"] for x in r.json()], [INV2])
        self.assertEqual(r.json()[0]["customer_name"], "李四")
        r = ws.ok("invoice", "show", INV1)
        for s in ("Invoice " + INV1, "张三丰", "文三路", "1101", "808", "129.00", "7.30", "121.70", "balance due", "6%"):
            self.assertIn(s, r.out)
        r = ws.ok("invoice", "show", INV1, "--json")
        self.assertEqual(r.json()["gross"], 12900)
        r = ws.ok("invoice", "explain", INV1)
        self.assertIn("step", r.out)
        self.assertIn("rule set", r.out)
        self.assertEqual(ws.ok("invoice", "explain", INV1, "--json").json()["id"], INV1)
        # payment in yuan, exact
        r = ws.ok("payment", "record", C1, "--amount", "200.00", "--receipt", "R-9", "--json")
        self.assertEqual((r.json()["amount"], r.json()["unallocated"]), (20000, 7100))
        r = ws.run("payment", "record", C1, "--amount", "200.00", "--receipt", "R-9")
        self.assertOneErrorLine(r, "recorded already")
        r = ws.run("payment", "record", C1, "--amount", "12.345", "--receipt", "R-10")
        self.assertOneErrorLine(r, "--amount")
        self.assertOneErrorLine(ws.run("payment", "record", C1, "--receipt", "R-10"), "--amount", rc=2)
        self.assertOneErrorLine(ws.run("payment", "record", C1, "--amount", "1"), "--receipt", rc=2)
        self.assertOneErrorLine(ws.run("payment", "record", C1, "--amount", "1", "--receipt", "x", "--channel", "cash"), rc=2)
        # credit note of lines in yuan: 1.00 of line 1 -> tax 0.06 (5.66)
        r = ws.ok("invoice", "credit", INV2, "--reason", "outage", "--lines", "1:1.00", "--json")
        self.assertEqual((r.json()["gross"], r.json()["tax"]), (100, 6))
        self.assertOneErrorLine(ws.run("invoice", "credit", INV2, "--lines", "1:1.00"), "--reason", rc=2)
        self.assertOneErrorLine(ws.run("invoice", "credit", INV2, "--reason", "x", "--lines", "1-1.00"), "--lines", rc=2)
        self.assertOneErrorLine(ws.run("invoice", "credit", INV2, "--reason", "x", "--lines", "7:1.00"), "no line 7")
        # adjustments: the local admin approves alone
        r = ws.ok("ledger", "adjust", C3, "--amount", "-20.00", "--reason", "goodwill", "--approved-by", "root")
        self.assertIn("-20.00", r.out)
        self.assertOneErrorLine(ws.run("ledger", "adjust", C3, "--amount", "-20", "--reason", "x"), "--approved-by", rc=2)
        self.assertOneErrorLine(ws.run("ledger", "adjust", C3, "--amount", "-0.001", "--reason", "x", "--approved-by", "b"), "--amount")
        r = ws.ok("ledger", "show", C3)
        self.assertIn("balance 109.00", r.out)
        self.assertIn("goodwill, approved by root", r.out)
        r = ws.ok("ledger", "show", C3, "--json")
        self.assertEqual((r.json()["balance"], len(r.json()["entries"])), (10900, 2))
        # void, write-off
        self.assertOneErrorLine(ws.run("invoice", "void", INV1, "--reason", "x"), "cannot be voided")
        ws.ok("invoice", "write-off", INV3, "--reason", "gone")
        self.assertOneErrorLine(ws.run("invoice", "void", "INV-1999-000001", "--reason", "x"), "no invoice")
        self.assertOneErrorLine(ws.run("invoice", "void", INV1), "--reason", rc=2)
        for action in ("payment.record", "invoice.credit", "ledger.adjust", "invoice.write_off"):
            rows = self.audit(action)
            self.assertEqual(len(rows), 1, action)
            self.assertTrue(rows[0][3].startswith("cli:"), rows[0])
        r = ws.ok("ledger", "verify")
        self.assertIn("agree", r.out)


class Verify(InvoiceCase):
    def test_ledger_verify_names_corruption(self):
        ws = self.ws
        self.assertEqual(self.api("POST", "/customers/%s/payments" % C1, {"amount": 20000, "receipt": "R-1"}).status, 201)
        self.assertEqual(self.api("POST", "/invoices/%s/credit-notes" % INV2, {"reason": "x", "lines": [{"line": 1, "amount": 900}]}).status, 201)
        r = ws.ok("ledger", "verify")
        self.assertIn("3 customers", r.out)
        r = self.api("GET", "/ledger/verify")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["ok"], r.body["problems"], r.body["customers"]), (True, 0, 3))
        # behind the application's back: the triggers go, then an amount
        # changes, an allocation disappears, a stray entry appears
        con = sqlite3.connect(ws.db)
        con.executescript(
            "DROP TRIGGER ledger_no_update; DROP TRIGGER ledger_no_delete;"
            "DROP TRIGGER allocations_fixed; DROP TRIGGER allocations_kept;"
            "UPDATE ledger_entries SET amount = 13900 WHERE kind = 'invoice' AND customer_id = 3;"
            "DELETE FROM allocations WHERE invoice_id = 1;"
            "INSERT INTO ledger_entries (customer_id, account, kind, amount, entry_date, created_at, created_by) "
            "VALUES (2, 'customer', 'payment', -4200, '%s', 't', 'x');" % TODAY.isoformat())
        con.commit()
        con.close()
        r = ws.run("ledger", "verify")
        self.assertOneErrorLine(r, "disagreement")
        out = r.out
        self.assertIn("%s: invoice %s: its invoice entries add up to 139.00" % (C3, INV3), out)
        self.assertIn("%s: invoice %s: paid 129.00, but its allocations add up to 0.00" % (C1, INV1), out)
        self.assertIn("%s: entry" % C2, out)
        self.assertIn("a payment of -42.00 on %s that no document accounts for" % TODAY.isoformat(), out)
        # one customer only
        r = ws.run("ledger", "verify", C2)
        self.assertEqual(r.rc, 1)
        self.assertNotIn(C1, r.out)
        self.assertIn("1 customers", r.out)
        r = ws.run("ledger", "verify", "--json")
        self.assertEqual(r.rc, 1, r)
        self.assertFalse(r.json()["ok"])
        self.assertGreaterEqual(r.json()["problems"], 4)
        # the API names them too
        r = self.api("GET", "/ledger/verify")
        self.assertFalse(r.body["ok"])
        msgs = ["%s %s" % (x["customer"], x["problem"]) for x in r.body["disagreements"]]
        self.assertTrue(any(C3 in m and "139.00" in m for m in msgs), msgs)
        self.assertTrue(any(C1 in m and "allocations" in m for m in msgs), msgs)
        self.assertTrue(any(C2 in m and "no document accounts for" in m for m in msgs), msgs)
        r = self.api("GET", "/ledger/verify?customer=" + C1)
        self.assertEqual(r.body["customers"], 1)
        self.assertTrue(all(x["customer"] == C1 for x in r.body["disagreements"]))
        self.assertError(self.api("GET", "/ledger/verify?customer=C000000014"), 400)
        tech = self.ws.token("tech", "technician")
        self.assertError(self.api("GET", "/ledger/verify", token=tech), 403)


if __name__ == "__main__":
    import unittest
    unittest.main()
