"""Subscriptions, their changes and one-time charges through the daemon and
the CLI: create, read, list; upgrade at once, downgrade and termination for
the next period with the contract fee; cancelling a scheduled change;
suspend and resume with the service account; refusals (409) and bad input
(400); charges; a rule that breaks its contract (422, nothing written); and
the audit records of all of it.

Customers and products are written with SQL (see schema/0003 and 0004), so
these tests do not depend on the customer and catalog APIs.

Fees below are hand-computed. A subscription that starts today on a plan
with a 24-month contract is billed postpaid on the 1st: the next period
starts on the 1st of next month (F), and the contract's last day is today +
24 months - 1. From F, 23 whole months fit before the contract ends
(F + 23 months is the 1st of the month of today + 24 months, F + 24 months
is a month later), whatever today is.
"""

import datetime
import json
import unittest
import zoneinfo

from bbtest import BBTestCase

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")     # the daemon's default time zone


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


C1 = code_of(1)       # C000000013: active, in 浙江省杭州市西湖区, account zs001
C2 = code_of(2)       # C000000021: another customer, account ls001
C3 = code_of(3)       # C000000037: no such customer

PLAN = '{"period":"month","billing":"postpaid","min_contract_months":24}'
PRODUCTS = [
    # id, code, kind, status, price, includes tax, tax category, attrs, regions
    (1, "FIBER100", "plan", "active", 9900, 1, "internet", PLAN, "[]"),
    (2, "FIBER300", "plan", "active", 12998, 1, "internet", PLAN, "[]"),
    (3, "FIBER500", "plan", "active", 19900, 1, "internet", PLAN, "[]"),
    (4, "IPTV", "addon", "active", 1500, 1, "internet", '{"fits":["FIBER300","FIBER500"]}', "[]"),
    (5, "STATICIP", "addon", "active", 2000, 1, "internet", '{"fits":[]}', "[]"),
    (6, "INSTALL", "fee", "active", 20000, 1, "installation", '{"purpose":"installation"}', "[]"),
    (7, "SHONLY", "plan", "active", 9900, 1, "internet", PLAN, '["上海市"]'),
]


def today():
    return datetime.datetime.now(TZ).date()


def first_of_next_month(d):
    return (d.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)


def seed(ws):
    ws.sql("INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) VALUES "
           "(1, ?, 'residential', 'Zhang San', 'active', 't', 't', 't'), (2, ?, 'residential', 'Li Si', 'active', 't', 't', 't')",
           (C1, C2))
    ws.sql("INSERT INTO addresses (customer_id, kind, province, city, district) VALUES "
           "(1, 'service', '浙江省', '杭州市', '西湖区'), (2, 'service', '浙江省', '杭州市', '上城区')")
    ws.sql("INSERT INTO service_accounts (id, customer_id, username, password_enc, status, created_at, password_changed_at) "
           "VALUES (1, 1, 'zs001', 'x', 'active', 't', 't'), (2, 2, 'ls001', 'x', 'active', 't', 't')")
    for pid, code, kind, status, price, inc, tax, attrs, regions in PRODUCTS:
        ws.sql("INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES (?, ?, ?, ?, ?, 't', 't')",
               (pid, code, kind, code.title(), status))
        ws.sql("INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, "
               "rule, attrs, regions, created_at, created_by) VALUES (?, 1, '2020-01-01', ?, ?, ?, 'tariffs.flat', ?, ?, 't', 't')",
               (pid, price, inc, tax, attrs, regions))


class SubsCase(BBTestCase):
    def setUp(self):
        super().setUp()
        seed(self.ws)
        self.tok = self.ws.token()
        self.srv = self.ws.serve()

    def post(self, path, body):
        return self.srv.post(path, body, token=self.tok)

    def get(self, path):
        return self.srv.get(path, token=self.tok)

    def delete(self, path):
        return self.srv.request("DELETE", path, token=self.tok)

    def subscribe(self, plan="FIBER300", **kw):
        body = dict(plan=plan, **kw)
        r = self.post("/api/v1/customers/%s/subscriptions" % C1, body)
        self.assertEqual(r.status, 201, r.body)
        return r.body

    def change(self, sid, kind, product=None, status=201):
        body = {"kind": kind}
        if product:
            body["product"] = product
        r = self.post("/api/v1/subscriptions/%d/changes" % sid, body)
        self.assertEqual(r.status, status, r.body)
        return r.body

    def audit(self, action):
        rows = self.ws.sql("SELECT actor, object_type, object_id, diff FROM audit_log WHERE action = ? ORDER BY id", (action,))
        return [(a, t, o, json.loads(d) if d else None) for a, t, o, d in rows]

    def count(self, table):
        return self.ws.sql("SELECT COUNT(*) FROM %s" % table)[0][0]


class Subscriptions(SubsCase):
    def test_create_get_and_list(self):
        t = today()
        s = self.subscribe("FIBER300", addons=["IPTV", "STATICIP"], account="zs001", note="sold at the door")
        self.assertEqual(s["customer"], C1)
        self.assertEqual(s["plan"], "FIBER300")
        self.assertEqual(s["status"], "active")
        self.assertEqual(s["billing"], "postpaid")
        self.assertEqual(s["period"], "month")
        self.assertEqual(s["start_date"], t.isoformat())
        self.assertEqual(s["anchor_day"], 1)
        self.assertEqual(s["next_bill_date"], first_of_next_month(t).isoformat())
        self.assertIsNone(s["paid_through"])
        self.assertIsNone(s["end_date"])
        self.assertEqual(s["account"], "zs001")
        self.assertEqual([i["product"] for i in s["items"]], ["IPTV", "STATICIP"])
        self.assertEqual([(c["kind"], c["status"], c["to"], c["note"]) for c in s["changes"]],
                         [("create", "applied", "FIBER300", "sold at the door")])
        self.assertEqual(s["changes"][0]["rules_version"], self.srv.rules_version())
        self.assertTrue(s["created_by"].startswith("token:"), s["created_by"])

        r = self.get("/api/v1/subscriptions/%d" % s["id"])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, s)

        s2 = self.subscribe("FIBER100", start_date=(t + datetime.timedelta(days=10)).isoformat())
        self.assertEqual(s2["status"], "pending")
        self.assertEqual(s2["changes"][0]["status"], "scheduled")
        # newest first, one per page
        r = self.get("/api/v1/customers/%s/subscriptions?limit=1" % C1)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([x["id"] for x in r.body["data"]], [s2["id"]])
        self.assertNotIn("changes", r.body["data"][0])
        r = self.get("/api/v1/customers/%s/subscriptions?limit=1&cursor=%s" % (C1, r.body["next_cursor"]))
        self.assertEqual([x["id"] for x in r.body["data"]], [s["id"]])
        self.assertIsNone(r.body["next_cursor"])
        r = self.get("/api/v1/customers/%s/subscriptions?status=pending" % C1)
        self.assertEqual([x["id"] for x in r.body["data"]], [s2["id"]])
        r = self.get("/api/v1/customers/%s/subscriptions" % C2)
        self.assertEqual(r.body["data"], [])
        self.assertIsNone(r.body["next_cursor"])

        rec = self.audit("subscription.create")
        self.assertEqual(len(rec), 2)
        self.assertEqual(rec[0][:3], ("token:it-admin", "subscription", str(s["id"])))
        self.assertEqual(rec[0][3]["after"]["plan"], "FIBER300")
        self.assertEqual(self.ws.run("audit", "verify").rc, 0)

    def test_create_bad_input_and_refusals(self):
        base = "/api/v1/customers/%s/subscriptions" % C1
        cases = [
            ({"plan": "FIBER100", "colour": "red"}, 400, "unknown_field", "colour"),
            ({}, 400, "missing_field", "plan"),
            ({"plan": 7}, 400, "invalid_field", "plan"),
            ({"plan": "FIBER100", "start_date": "2026-02-30"}, 400, "invalid_date", "start_date"),
            ({"plan": "FIBER100", "addons": "IPTV"}, 400, "invalid_field", "addons"),
            ({"plan": "FIBER100", "addons": [1]}, 400, "invalid_field", "addons[0]"),
            ({"plan": "NOPE"}, 404, "not_found", "plan"),
            ({"plan": "IPTV"}, 400, "wrong_product_kind", "plan"),
            ({"plan": "SHONLY"}, 409, "not_available", "plan"),
            ({"plan": "FIBER100", "addons": ["STATICIP", "IPTV"]}, 409, "addon_refused", "addons[1]"),
            ({"plan": "FIBER100", "account": "ls001"}, 409, "account_of_another", "account"),
            ({"plan": "FIBER100", "account": "nobody"}, 404, "not_found", "account"),
        ]
        for body, status, code, field in cases:
            r = self.post(base, body)
            err = self.assertError(r, status, code)
            self.assertEqual(err["field"], field, (body, r.body))
        r = self.post(base, {"plan": "FIBER100", "addons": ["IPTV"]})
        self.assertEqual(self.assertError(r, 409, "addon_refused")["message"],
                         "add-on IPTV does not fit plan FIBER100 (it fits FIBER300, FIBER500)")
        self.assertError(self.post("/api/v1/customers/%s/subscriptions" % C3, {"plan": "FIBER100"}), 404)
        self.assertError(self.post("/api/v1/customers/C000000014/subscriptions", {"plan": "FIBER100"}), 400,
                         "invalid_customer_code")
        self.assertError(self.get("/api/v1/subscriptions/999"), 404, "not_found")
        self.assertError(self.get("/api/v1/subscriptions/abc"), 404, "not_found")
        self.assertError(self.get("/api/v1/customers/%s/subscriptions?status=odd" % C1), 400, "invalid_parameter")
        self.assertEqual(self.count("subscriptions"), 0)
        self.assertEqual(self.count("subscription_changes"), 0)
        self.assertEqual(self.audit("subscription.create"), [])

    def test_permissions(self):
        clerk = self.ws.token("clerk", "billing_clerk")      # subscription.read only
        r = self.srv.post("/api/v1/customers/%s/subscriptions" % C1, {"plan": "FIBER100"}, token=clerk)
        self.assertError(r, 403, "forbidden")
        self.assertEqual(self.srv.get("/api/v1/customers/%s/subscriptions" % C1, token=clerk).status, 200)


class Changes(SubsCase):
    def test_upgrade_downgrade_cancel_terminate(self):
        t = today()
        nxt = first_of_next_month(t).isoformat()
        s = self.subscribe("FIBER300", account="zs001")
        sid = s["id"]

        # upgrade: at once
        b = self.change(sid, "upgrade", "FIBER500")
        self.assertEqual((b["change"]["kind"], b["change"]["status"], b["change"]["effective_date"], b["change"]["fee"]),
                         ("upgrade", "applied", t.isoformat(), 0))
        self.assertEqual((b["change"]["from"], b["change"]["to"]), ("FIBER300", "FIBER500"))
        self.assertEqual(b["subscription"]["plan"], "FIBER500")
        self.assertEqual(len(b["subscription"]["changes"]), 2)

        # downgrade: next period, fee 23 months x (199.00 - 129.98) x 20%
        # = 23 x 6902 x 0.2 = 31749.2 fen, half up 31749
        b = self.change(sid, "downgrade", "FIBER300")
        dg = b["change"]
        self.assertEqual((dg["status"], dg["effective_date"], dg["fee"]), ("scheduled", nxt, 31749))
        self.assertEqual(b["subscription"]["plan"], "FIBER500")
        self.assertEqual(self.count("pending_charges"), 0)

        # one plan change at a time
        r = self.post("/api/v1/subscriptions/%d/changes" % sid, {"kind": "terminate"})
        self.assertError(r, 409, "change_pending")

        # cancel the scheduled downgrade; only once; never an applied change
        r = self.delete("/api/v1/subscriptions/%d/changes/%d" % (sid, dg["id"]))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["change"]["status"], "cancelled")
        self.assertEqual([c["status"] for c in r.body["subscription"]["changes"]], ["applied", "applied", "cancelled"])
        self.assertError(self.delete("/api/v1/subscriptions/%d/changes/%d" % (sid, dg["id"])), 409, "change_not_scheduled")
        self.assertError(self.delete("/api/v1/subscriptions/%d/changes/%d" % (sid, b["subscription"]["changes"][1]["id"])),
                         409, "change_not_scheduled")
        self.assertError(self.delete("/api/v1/subscriptions/%d/changes/9999" % sid), 404, "not_found")

        # terminate: at the end of the period, fee 23 x 19900 x 20% = 91540
        b = self.change(sid, "terminate")
        self.assertEqual((b["change"]["status"], b["change"]["effective_date"], b["change"]["fee"]), ("scheduled", nxt, 91540))
        self.assertEqual(b["subscription"]["status"], "active")

        ch = self.audit("subscription.change")
        self.assertEqual(len(ch), 3)
        actor, otype, oid, diff = ch[0]
        self.assertEqual((actor, otype, oid), ("token:it-admin", "subscription", str(sid)))
        self.assertEqual(diff["before"]["plan"], "FIBER300")
        self.assertEqual(diff["after"]["plan"], "FIBER500")
        self.assertEqual(diff["detail"]["kind"], "upgrade")
        cancel = self.audit("subscription.change_cancel")
        self.assertEqual(len(cancel), 1)
        self.assertEqual(cancel[0][3]["before"]["status"], "scheduled")
        self.assertEqual(cancel[0][3]["after"]["status"], "cancelled")

    def test_suspend_resume_and_refusals(self):
        s = self.subscribe("FIBER100", account="zs001")
        sid = s["id"]
        r = self.post("/api/v1/subscriptions/%d/changes" % sid, {"kind": "resume"})
        self.assertEqual(self.assertError(r, 409, "change_refused")["message"],
                         "only a suspended subscription can be resumed; this one is active")
        b = self.change(sid, "suspend")
        self.assertEqual(b["subscription"]["status"], "suspended")
        self.assertEqual(self.ws.sql("SELECT status FROM service_accounts WHERE id = 1"), [("suspended",)])
        b = self.change(sid, "resume")
        self.assertEqual(b["subscription"]["status"], "active")
        self.assertEqual(self.ws.sql("SELECT status FROM service_accounts WHERE id = 1"), [("active",)])

        r = self.post("/api/v1/subscriptions/%d/changes" % sid, {"kind": "addon_add", "product": "IPTV"})
        err = self.assertError(r, 409, "change_refused")
        self.assertEqual(err["message"], "add-on IPTV does not fit plan FIBER100 (it fits FIBER300, FIBER500)")
        self.assertEqual(err["field"], "product")
        refused = self.audit("subscription.change_refused")
        self.assertEqual(len(refused), 2)
        self.assertEqual(refused[1][3]["detail"]["reason"], err["message"])

        b = self.change(sid, "addon_add", "STATICIP")
        self.assertEqual([i["product"] for i in b["subscription"]["items"]], ["STATICIP"])
        self.assertError(self.post("/api/v1/subscriptions/%d/changes" % sid, {"kind": "addon_add", "product": "STATICIP"}),
                         409, "addon_present")

        bad = [
            ({"kind": "pause"}, 400, "invalid_field", "kind"),
            ({"kind": "upgrade"}, 400, "missing_field", "product"),
            ({"kind": "suspend", "product": "FIBER100"}, 400, "invalid_field", "product"),
            ({"kind": "upgrade", "product": "FIBER500", "when": "now"}, 400, "unknown_field", "when"),
            ({"product": "FIBER500"}, 400, "missing_field", "kind"),
            ({"kind": "upgrade", "product": "IPTV"}, 400, "wrong_product_kind", "product"),
            ({"kind": "upgrade", "product": "FIBER100"}, 409, "change_refused", "product"),
        ]
        n = self.count("subscription_changes")
        for body, status, code, field in bad:
            err = self.assertError(self.post("/api/v1/subscriptions/%d/changes" % sid, body), status, code)
            self.assertEqual(err["field"], field, (body, err))
        self.assertEqual(self.count("subscription_changes"), n)
        self.assertError(self.post("/api/v1/subscriptions/999/changes", {"kind": "suspend"}), 404, "not_found")


class Charges(SubsCase):
    def test_charges(self):
        base = "/api/v1/customers/%s/charges" % C1
        r = self.post(base, {"product": "INSTALL", "source": "install"})
        self.assertEqual(r.status, 201, r.body)
        inst = r.body
        self.assertEqual((inst["description"], inst["unit_price"], inst["quantity"], inst["amount"], inst["tax_category"],
                          inst["source"], inst["status"]), ("Install", 20000, 1, 20000, "installation", "install", "open"))
        r = self.post(base, {"description": "Technician field visit", "unit_price": 5000, "quantity": 3,
                             "tax_category": "installation", "source": "ticket"})
        self.assertEqual(r.status, 201, r.body)
        visit = r.body
        self.assertEqual(visit["amount"], 15000)

        for body, status, code, field in [
            ({"description": "x", "unit_price": 50.5, "tax_category": "installation"}, 400, "invalid_money", "unit_price"),
            ({"description": "x", "unit_price": "50", "tax_category": "installation"}, 400, "invalid_money", "unit_price"),
            ({"description": "x", "unit_price": 5000}, 400, "missing_field", "tax_category"),
            ({"unit_price": 5000, "tax_category": "installation"}, 400, "missing_field", "description"),
            ({"description": "x", "unit_price": 5000, "tax_category": "snacks"}, 400, "unknown_tax_category", "tax_category"),
            ({"product": "INSTALL", "unit_price": 1}, 400, "invalid_field", "unit_price"),
            ({"product": "FIBER100"}, 400, "wrong_product_kind", "product"),
            ({"product": "INSTALL", "discount": 5}, 400, "unknown_field", "discount"),
            ({"product": "INSTALL", "quantity": 0}, 400, "invalid_field", "quantity"),
        ]:
            err = self.assertError(self.post(base, body), status, code)
            self.assertEqual(err["field"], field, (body, err))

        r = self.get(base)
        self.assertEqual([c["id"] for c in r.body["data"]], [visit["id"], inst["id"]])
        r = self.delete("/api/v1/charges/%d" % visit["id"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["status"], "cancelled")
        self.assertError(self.delete("/api/v1/charges/%d" % visit["id"]), 409, "charge_cancelled")
        self.ws.sql("UPDATE pending_charges SET billed_on = '2030-01-01' WHERE id = ?", (inst["id"],))
        self.assertError(self.delete("/api/v1/charges/%d" % inst["id"]), 409, "charge_billed")
        self.assertError(self.delete("/api/v1/charges/999"), 404, "not_found")
        self.assertEqual(self.get(base).body["data"], [])
        self.assertEqual([c["id"] for c in self.get(base + "?status=cancelled").body["data"]], [visit["id"]])
        self.assertEqual(len(self.get(base + "?status=all").body["data"]), 2)
        self.assertError(self.get(base + "?status=paid"), 400, "invalid_parameter")

        self.assertEqual(len(self.audit("charge.create")), 2)
        cancel = self.audit("charge.cancel")
        self.assertEqual(len(cancel), 1)
        self.assertEqual(cancel[0][2], str(visit["id"]))
        self.assertEqual(cancel[0][3]["after"]["status"], "cancelled")


BAD_RULES = """
local M = {}
function M.schedule(ctx)
  return { billing = "postpaid", period = "month", anchor_day = 1, next_bill_date = "2099-01-01" }
end
function M.addon_fits(ctx) return { allowed = true } end
function M.change(ctx)
  return { allowed = true, effective_date = ctx.today, fee = 12.5 }
end
return M
"""


class RuleAtFault(SubsCase):
    rules_files = {"subscriptions.lua": BAD_RULES}

    def test_a_float_fee_is_422_naming_the_rule_and_nothing_is_written(self):
        s = self.subscribe("FIBER100", account="zs001")
        n = self.count("subscription_changes")
        r = self.post("/api/v1/subscriptions/%d/changes" % s["id"], {"kind": "suspend"})
        err = self.assertError(r, 422, "rule_error")
        self.assertIn("rule subscriptions.change returned an invalid value: fee must be an integer count of fen", err["message"])
        self.assertEqual(err["rule"]["rule"], "subscriptions.change")
        self.assertEqual(err["rule"]["kind"], "output")
        self.assertEqual(err["rule"]["file"], "subscriptions.lua")
        self.assertEqual(self.count("subscription_changes"), n)
        self.assertEqual(self.get("/api/v1/subscriptions/%d" % s["id"]).body["status"], "active")
        self.assertEqual(self.ws.sql("SELECT status FROM service_accounts WHERE id = 1"), [("active",)])
        self.assertEqual(self.audit("subscription.change"), [])


class Cli(BBTestCase):
    def setUp(self):
        super().setUp()
        seed(self.ws)

    def test_subscribe(self):
        t = today()
        r = self.ws.run("subscribe", C1, "FIBER300", "--addons", "IPTV, STATICIP", "--account", "zs001", "--json")
        self.assertEqual(r.rc, 0, str(r))
        s = r.json()
        self.assertEqual((s["customer"], s["plan"], s["start_date"], s["account"]), (C1, "FIBER300", t.isoformat(), "zs001"))
        self.assertEqual([i["product"] for i in s["items"]], ["IPTV", "STATICIP"])
        self.assertTrue(s["created_by"].startswith("cli:"), s)
        rows = self.ws.sql("SELECT actor, object_id FROM audit_log WHERE action = 'subscription.create'")
        self.assertEqual(len(rows), 1)
        self.assertTrue(rows[0][0].startswith("cli:"))
        self.assertEqual(rows[0][1], str(s["id"]))

        r = self.ws.run("subscribe", C2, "FIBER100", "--start", "2031-05-04")
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("from 2031-05-04, pending", r.out)
        self.assertIn("next bill 2031-06-01", r.out)
        self.assertIn("contract until 2033-05-03", r.out)

        self.assertOneErrorLine(self.ws.run("subscribe", C1, "FIBER100", "--addons", "IPTV"), "add-on IPTV does not fit plan FIBER100")
        self.assertOneErrorLine(self.ws.run("subscribe", C1, "FIBER100", "--start", "tomorrow"), "--start", rc=2)
        self.assertOneErrorLine(self.ws.run("subscribe", C1, "FIBER100", "--addons", "IPTV,,X"), "--addons", rc=2)
        self.assertOneErrorLine(self.ws.run("subscribe", C3, "FIBER100"), "no customer")
        self.assertEqual(self.ws.sql("SELECT COUNT(*) FROM subscriptions"), [(2,)])
        self.assertEqual(self.ws.run("audit", "verify").rc, 0)


if __name__ == "__main__":
    unittest.main()
