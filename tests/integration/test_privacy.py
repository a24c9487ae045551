"""PIPL: `bandbill privacy export` gives a person everything held about them,
audited; `bandbill privacy erase` anonymises a closed customer and keeps
the records accounting needs. Through the real CLI, daemon and database."""

import json
import os
import stat

from bbtest import BBTestCase

ZHANG = {
    "name": "张三丰",
    "id_card": "11010519491231002X",
    "phone": "13812348000",
    "phone2": "0571-88886666",
    "email": "zhang.san@example.com",
    "address": {"province": "浙江省", "city": "杭州市", "district": "西湖区", "street": "文新街道",
                "community": "翠苑一区", "building": "3", "unit": "2", "floor": "5", "room": "502"},
    "tags": ["vip"],
    "notes": "gate code 4711",
}
C1, C2 = "C000000013", "C000000021"


class Privacy(BBTestCase):
    def setUp(self):
        super().setUp()
        self.token = self.ws.token()
        self.srv = self.ws.serve()
        r = self.api("POST", "/customers", ZHANG)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body["code"], C1)
        r = self.api("POST", "/customers/%s/accounts" % C1, {})
        self.assertEqual(r.status, 201, r.body)
        self.username = r.body["username"]
        r = self.api("POST", "/customers/%s/phone-verification" % C1, {})
        self.assertEqual(r.status, 202, r.body)

    def api(self, method, path, body=None):
        return self.srv.request(method, "/api/v1" + path, body=body, token=self.token)

    def audit_actions(self):
        return [a for (a,) in self.ws.sql("SELECT action FROM audit_log WHERE object_id = ? ORDER BY id", (C1,))]

    def test_export_to_stdout_and_to_a_private_file(self):
        r = self.ws.ok("privacy", "export", C1)
        doc = json.loads(r.out)
        self.assertEqual(doc["customer"]["code"], C1)
        # in clear: it is the person's own copy
        self.assertEqual(doc["customer"]["id_card"], ZHANG["id_card"])
        self.assertEqual(doc["customer"]["phone"], ZHANG["phone"])
        self.assertEqual(doc["customer"]["email"], ZHANG["email"])
        self.assertEqual(doc["customer"]["address"]["room"], "502")
        self.assertEqual([a["username"] for a in doc["service_accounts"]], [self.username])
        self.assertEqual([m["event"] for m in doc["messages"]], ["verification_code"])
        self.assertIn("customer.create", [h["action"] for h in doc["history"]])
        self.assertEqual(self.audit_actions().count("privacy.export"), 1)

        out = self.ws.path("export.json")
        r = self.ws.ok("privacy", "export", C1, "--out", out, "--json")
        self.assertEqual(json.loads(r.out), {"customer": C1, "file": out})
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        with open(out, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["customer"]["id_card"], ZHANG["id_card"])
        rec = self.ws.sql("SELECT diff FROM audit_log WHERE action = 'privacy.export' ORDER BY id DESC LIMIT 1")[0][0]
        self.assertEqual(json.loads(rec)["detail"]["to"], out)
        self.ws.ok("audit", "verify")

    def test_export_of_unknown_or_mistyped_customer(self):
        self.assertOneErrorLine(self.ws.run("privacy", "export", C2), "no customer " + C2)
        self.assertOneErrorLine(self.ws.run("privacy", "export", "C000000014"), "check digit")
        self.assertEqual(self.audit_actions().count("privacy.export"), 0)

    def test_erase_needs_yes_and_a_closed_customer(self):
        before = self.ws.sql("SELECT * FROM customers")
        self.assertOneErrorLine(self.ws.run("privacy", "erase", C1), "--yes", rc=2)
        self.assertOneErrorLine(self.ws.run("privacy", "erase", C1, "--yes"), "only a closed customer")
        self.assertEqual(self.ws.sql("SELECT * FROM customers"), before)
        self.assertNotIn("privacy.erase", self.audit_actions())

    def test_erase_a_closed_customer(self):
        r = self.api("POST", "/customers/%s/status" % C1, {"status": "closed", "reason": "moved away"})
        self.assertEqual(r.status, 200, r.body)
        r = self.ws.ok("privacy", "erase", C1, "--yes", "--json")
        self.assertEqual(json.loads(r.out)["customer"], C1)

        # the person is gone from the record ...
        r = self.api("GET", "/customers/" + C1)
        self.assertEqual(r.status, 200, r.body)
        c = r.body
        self.assertEqual(c["name"], "(erased)")
        for f in ("id_card", "phone", "phone2", "email", "notes"):
            self.assertIsNone(c.get(f), f)
        self.assertEqual(c["tags"], [])
        self.assertEqual((c["address"]["district"], c["address"]["community"], c["address"]["room"]), ("西湖区", "", ""))
        row = self.ws.sql("SELECT id_card_enc, id_card_idx, phone_enc, phone_idx, phone2_enc, email_enc, erased_at "
                          "FROM customers WHERE id = 1")[0]
        self.assertEqual(row[:6], (None,) * 6)
        self.assertTrue(row[6])
        self.assertEqual(self.ws.sql("SELECT count(*) FROM verification_codes")[0][0], 0)
        self.assertEqual(self.ws.sql("SELECT recipient_enc, payload FROM outbox"), [(None, "{}")])
        # ... not findable by phone or ID card, and the number can be reused
        r = self.api("GET", "/customers?phone=" + ZHANG["phone"])
        self.assertEqual(r.body["data"], [])
        r = self.api("POST", "/customers", ZHANG)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body["code"], C2)

        # ... while the records stay: the code, the account, the audit trail
        self.assertEqual(self.ws.sql("SELECT username FROM service_accounts WHERE customer_id = 1"), [(self.username,)])
        self.assertIn("privacy.erase", self.audit_actions())
        self.ws.ok("audit", "verify")
        # nothing of the person left in an export either
        text = self.ws.ok("privacy", "export", C1).out
        for secret in (ZHANG["id_card"], ZHANG["phone"], ZHANG["email"], "张三丰", "gate code", "502"):
            self.assertNotIn(secret, text)

        self.assertOneErrorLine(self.ws.run("privacy", "erase", C1, "--yes"), "already erased")
