"""The customer file through the real daemon and CLI: create, read, change,
search, history and the 360 view over HTTP; masking per role and the audit
of clear views; duplicates and bad fields; phone verification through the
outbox and the outbox.deliver job; CSRF on cookie sessions; the CLI
commands."""

import json
import re
import time

import bbtest
from bbtest import BBTestCase, poll

PASSWORD = "Correct-Horse-42-Battery"

ZHANG = {
    "name": "张三丰",
    "id_card": "11010519491231002X",
    "phone": "+86 138 1234 8000",
    "email": "zhang.san@example.com",
    "address": {"province": "浙江省", "city": "杭州市", "district": "西湖区", "street": "文新街道",
                "community": "翠苑一区", "building": "3", "unit": "2", "floor": "5", "room": "502"},
    "tags": ["vip", "fiber"],
}
# codes by hand (Damm check digit of the 8-digit id): 1 -> 3, 2 -> 1, 3 -> 7, 4 -> 5
C1, C2, C3, C4 = "C000000013", "C000000021", "C000000037", "C000000045"


def addr(community="嘉绿苑", building="1"):
    return {"province": "浙江省", "city": "杭州市", "district": "西湖区", "community": community, "building": building}


class CustomersCase(BBTestCase):
    def setUp(self):
        super().setUp()
        self.token = self.ws.token()
        self.srv = self.ws.serve()

    # -- helpers
    def api(self, method, path, body=None, token=None, **kw):
        return self.srv.request(method, "/api/v1" + path, body=body, token=token or self.token, **kw)

    def create(self, body, status=201):
        r = self.api("POST", "/customers", body)
        self.assertEqual(r.status, status, r.body)
        return r.body

    def count(self, sql, params=()):
        return self.ws.sql(sql, params)[0][0]

    def user_session(self, name, role):
        """A staff user of `role`, logged in: (cookie header, csrf token)."""
        self.ws.ok("user", "add", name, "--role", role, "--password-stdin", input=PASSWORD + "\n")
        r = self.srv.post("/api/v1/auth/login", {"username": name, "password": PASSWORD})
        self.assertEqual(r.status, 200, r.body)
        cookie = r.headers["Set-Cookie"].split(";")[0]
        self.assertTrue(cookie.startswith("bb_session="), cookie)
        return cookie, r.body["csrf_token"]

    def as_user(self, method, path, cookie, body=None, csrf=None):
        headers = {"Cookie": cookie}
        if csrf:
            headers["X-CSRF-Token"] = csrf
        return self.srv.request(method, "/api/v1" + path, body=body, headers=headers)


class Records(CustomersCase):
    def test_create_get_update_history(self):
        c = self.create(ZHANG)
        self.assertEqual(c["code"], C1)
        self.assertEqual(c["phone"], "13812348000")          # normalised; admin sees it in clear
        self.assertEqual(c["status"], "prospect")
        self.assertFalse(c["phone_verified"])
        self.assertEqual(c["tags"], ["fiber", "vip"])
        self.assertEqual(c["address"]["room"], "502")
        self.assertIsNone(c["billing_address"])
        stored = self.ws.sql("SELECT name, phone_enc, id_card_enc FROM customers")[0]
        self.assertEqual(stored[0], "张三丰")
        self.assertTrue(stored[1].startswith("enc:v1:") and "8000" not in stored[1])
        self.assertTrue(stored[2].startswith("enc:v1:"))

        r = self.api("GET", "/customers/" + C1)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["id_card"], "11010519491231002X")
        r = self.api("GET", "/customers/" + C1.lower())
        self.assertEqual(r.body["code"], C1)

        r = self.api("PATCH", "/customers/" + C1, {"phone": "139 0000 1111", "address": {"room": "601"}, "notes": "back door"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["phone"], "13900001111")
        self.assertEqual(r.body["address"]["room"], "601")
        self.assertEqual(r.body["address"]["community"], "翠苑一区")

        r = self.api("GET", "/customers/%s/history" % C1)
        self.assertEqual(r.status, 200, r.body)
        recs = r.body["data"]
        self.assertEqual([x["action"] for x in recs], ["customer.update", "customer.create"])
        upd = recs[0]
        self.assertEqual(upd["actor"], "token:it-admin")
        self.assertEqual(upd["role"], "admin")
        self.assertRegex(upd["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        # old and new values as the audit trail stores them: masked, changed fields only
        self.assertEqual(upd["before"]["phone"], "138****8000")
        self.assertEqual(upd["after"]["phone"], "139****1111")
        # notes are free text about a person: the trail keeps only their length
        self.assertEqual(upd["after"]["notes"], "(9 characters)")
        self.assertNotIn("name", upd["after"])
        self.assertEqual(upd["after"]["address"]["room"], "*")
        self.assertEqual(recs[1]["after"]["id_card"], "1101**********002X")
        self.assertIsNone(r.body["next_cursor"])
        # views in clear are in the audit trail (written just after the reply),
        # and in the history on request
        bbtest.poll(lambda: "field.view" in [x["action"] for x in
                                             self.api("GET", "/customers/%s/history?views=true" % C1).body["data"]],
                    what="the view in the history")
        # paginated, newest first
        r = self.api("GET", "/customers/%s/history?limit=1" % C1)
        self.assertEqual([x["action"] for x in r.body["data"]], ["customer.update"])
        r = self.api("GET", "/customers/%s/history?limit=1&cursor=%s" % (C1, r.body["next_cursor"]))
        self.assertEqual([x["action"] for x in r.body["data"]], ["customer.create"])

    def test_bad_field_names_it_and_writes_nothing(self):
        bad = dict(ZHANG, address={"province": "浙江省", "district": "西湖区"})
        r = self.api("POST", "/customers", bad)
        err = self.assertError(r, 400, "missing_field")
        self.assertEqual(err["field"], "address.city")
        r = self.api("POST", "/customers", dict(ZHANG, nickname="老张"))
        self.assertEqual(self.assertError(r, 400, "unknown_field")["field"], "nickname")
        r = self.api("POST", "/customers", dict(ZHANG, phone="12345"))
        self.assertEqual(self.assertError(r, 400)["field"], "phone")
        r = self.api("POST", "/customers", dict(ZHANG, tags=["ok", "Not OK"]))
        self.assertEqual(self.assertError(r, 400, "invalid_tag")["field"], "tags[1]")
        r = self.api("POST", "/customers", dict(ZHANG, type="business", company_name="某某公司", tax_id="91350100M000100Y44"))
        err = self.assertError(r, 400, "invalid_tax_id")
        self.assertIn("typo", err["message"])
        self.assertEqual(self.count("SELECT count(*) FROM customers"), 0)
        self.assertEqual(self.count("SELECT count(*) FROM addresses"), 0)
        self.assertEqual(self.count("SELECT count(*) FROM audit_log WHERE object_type = 'customer'"), 0)
        # a bad patch leaves the customer as it was
        self.create(ZHANG)
        r = self.api("PATCH", "/customers/" + C1, {"phone": "13900001111", "address": {"city": ""}})
        self.assertEqual(self.assertError(r, 400)["field"], "address.city")
        r = self.api("PATCH", "/customers/" + C1, {"status": "active"})
        self.assertEqual(self.assertError(r, 400)["field"], "status")
        r = self.api("PATCH", "/customers/" + C1, {"type": "business"})
        self.assertEqual(self.assertError(r, 400)["field"], "type")
        self.assertEqual(self.api("GET", "/customers/" + C1).body["phone"], "13812348000")
        self.assertEqual(self.count("SELECT count(*) FROM audit_log WHERE action = 'customer.update'"), 0)

    def test_duplicate_names_the_other_customer(self):
        self.create(ZHANG)
        r = self.api("POST", "/customers", {"name": "李四", "id_card": "11010519491231002x", "address": addr()})
        err = self.assertError(r, 409, "duplicate")
        self.assertEqual(err["field"], "id_card")
        self.assertEqual(err["customer"], C1)
        self.assertIn(C1, err["message"])
        r = self.api("POST", "/customers", {"name": "李四", "phone": "0086 138-1234-8000", "address": addr()})
        err = self.assertError(r, 409, "duplicate")
        self.assertEqual((err["field"], err["customer"]), ("phone", C1))
        other = self.create({"name": "李四", "phone": "13700000000", "address": addr()})
        r = self.api("PATCH", "/customers/" + other["code"], {"phone": "13812348000"})
        self.assertEqual(self.assertError(r, 409, "duplicate")["customer"], C1)
        self.assertEqual(self.count("SELECT count(*) FROM customers"), 2)

    def test_codes_with_typos_and_unknown_codes(self):
        self.create(ZHANG)
        r = self.api("GET", "/customers/C000000014")
        err = self.assertError(r, 400, "invalid_customer_code")
        self.assertIn("typo", err["message"])
        self.assertError(self.api("GET", "/customers/C000000021"), 404)
        self.assertError(self.api("GET", "/customers/nonsense"), 400, "invalid_customer_code")
        self.assertError(self.api("GET", "/customers/C000000014/overview"), 400)

    def test_status_transitions(self):
        self.create(ZHANG)
        r = self.api("POST", "/customers/%s/status" % C1, {"status": "active", "reason": "installed"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["status"], "active")
        r = self.api("POST", "/customers/%s/status" % C1, {"status": "prospect"})
        err = self.assertError(r, 409, "invalid_transition")
        self.assertEqual(err["allowed"], ["overdue", "suspended", "closed"])
        self.assertError(self.api("POST", "/customers/%s/status" % C1, {"status": "gone"}), 400)
        self.assertError(self.api("POST", "/customers/%s/status" % C1, {"status": "closed", "why": "x"}), 400, "unknown_field")
        rec = self.api("GET", "/customers/%s/history" % C1).body["data"][0]
        self.assertEqual(rec["action"], "customer.status")
        self.assertEqual((rec["before"], rec["after"], rec["detail"]),
                         ({"status": "prospect"}, {"status": "active"}, {"reason": "installed"}))


class Search(CustomersCase):
    def setUp(self):
        super().setUp()
        self.create(ZHANG)                                                                            # C1
        self.create({"name": "张三", "phone": "13900001111", "tags": ["vip"], "address": addr("翠苑一区", "3")})  # C2
        self.create({"name": "李娜", "phone2": "0571-88886666", "address": addr("翠苑一区", "4")})          # C3
        self.create({"name": "王芳", "phone": "13900003333", "tags": ["vip"], "address": addr()})            # C4
        self.ws.sql("INSERT INTO service_accounts (customer_id, username, password_enc, created_at, password_changed_at) "
                    "VALUES (3, 'hz0571ln', 'x', 'now', 'now')")
        self.ws.sql("INSERT INTO devices (kind, serial, created_at) VALUES ('onu', 'ZTEG12345678', 'now')")
        self.ws.sql("INSERT INTO installations (device_id, customer_id, installed_on, engineer, address, created_at) "
                    "VALUES (1, 4, '2026-01-01', 'e', 'x', 'now')")

    def find(self, query, status=200):
        r = self.api("GET", "/customers?" + query)
        self.assertEqual(r.status, status, r.body)
        return r

    def codes(self, query):
        return [c["code"] for c in self.find(query).body["data"]]

    def test_free_text_guesses(self):
        for q, codes, how in [("13812348000", [C1], "phone"), ("%2B86%20139%200000%201111", [C2], "phone"),
                              ("0571-88886666", [C3], "phone"), ("hz0571ln", [C3], "pppoe"),
                              ("zteg12345678", [C4], "serial"), (C2.lower(), [C2], "code"),
                              ("11010519491231002X", [C1], "id_card"), ("%E5%BC%A0", [C2, C1], "name")]:
            r = self.find("q=" + q)
            self.assertEqual([c["code"] for c in r.body["data"]], codes, q)
            self.assertEqual(r.headers["X-Search-Matched-By"], how, q)
        err = self.assertError(self.find("q=C000000031", 400), 400, "invalid_customer_code")
        self.assertEqual(err["field"], "q")
        self.assertIn("typo", err["message"])

    def test_filters_sort_and_pages(self):
        self.assertEqual(self.codes("community=%E7%BF%A0%E8%8B%91%E4%B8%80%E5%8C%BA&building=3"), [C2, C1])
        self.assertEqual(self.codes("tag=vip"), [C4, C2, C1])
        self.assertEqual(self.codes("tag=vip&name=%E7%8E%8B"), [C4])
        self.assertEqual(self.codes("status=prospect&sort=code"), [C1, C2, C3, C4])
        self.assertEqual(self.codes("sort=-name"), [C4, C3, C1, C2])     # 王 > 李 > 张三丰 > 张三 in byte order
        seen, cursor = [], None
        while True:
            r = self.find("sort=name&limit=1" + ("&cursor=" + cursor if cursor else ""))
            seen += [c["code"] for c in r.body["data"]]
            cursor = r.body["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, [C2, C1, C3, C4])
        self.assertEqual(self.assertError(self.find("status=gone", 400), 400)["field"], "status")
        self.assertEqual(self.assertError(self.find("sort=phone", 400), 400)["field"], "sort")
        self.assertEqual(self.assertError(self.find("cursor=abc", 400), 400)["field"], "cursor")
        self.assertEqual(self.assertError(self.find("limit=0", 400), 400)["field"], "limit")

    def test_results_are_masked_per_role(self):
        cookie, _ = self.user_session("ana", "analyst")
        r = self.as_user("GET", "/customers?q=13812348000", cookie)
        self.assertEqual(r.status, 200, r.body)
        c = r.body["data"][0]
        self.assertEqual((c["phone"], c["name"]), ("138****8000", "张**"))


class Privacy(CustomersCase):
    def test_masking_per_role_and_clear_views_audited(self):
        self.create(ZHANG)
        seen = {}
        for name, role in [("ana", "analyst"), ("tech", "technician"), ("clerk", "billing_clerk")]:
            cookie, _ = self.user_session(name, role)
            r = self.as_user("GET", "/customers/" + C1, cookie)
            self.assertEqual(r.status, 200, r.body)
            seen[role] = r.body
        a = seen["analyst"]
        self.assertEqual(a["phone"], "138****8000")
        self.assertEqual(a["name"], "张**")
        self.assertEqual(a["id_card"], "1101**********002X")
        self.assertEqual(a["email"], "z********@example.com")
        self.assertEqual(a["address"]["room"], "*")
        self.assertEqual(a["address"]["district"], "西湖区")
        t = seen["technician"]
        self.assertNotIn("id_card", t)
        self.assertNotIn("email", t)
        self.assertEqual(t["phone"], "13812348000")
        self.assertEqual(t["address"]["room"], "502")
        b = seen["billing_clerk"]
        self.assertEqual(b["id_card"], "1101**********002X")
        self.assertEqual(b["phone"], "13812348000")
        r = self.api("GET", "/customers/" + C1)
        self.assertEqual((r.body["id_card"], r.body["name"]), ("11010519491231002X", "张三丰"))

        def views():
            r = self.api("GET", "/audit?action=field.view&object_type=customer")
            self.assertEqual(r.status, 200, r.body)
            found = {x["actor"]: x for x in r.body["data"] if x["object_id"] == C1}
            return found if "token:it-admin" in found and "user:tech" in found else None
        # views are written just after their reply
        by_actor = bbtest.poll(views, what="the field.view records")
        self.assertIn("id_card", by_actor["token:it-admin"]["diff"]["detail"]["fields"])
        self.assertIn("user:tech", by_actor)                  # a clear phone is a clear view too
        self.assertNotIn("id_card", by_actor["user:tech"]["diff"]["detail"]["fields"])
        self.assertNotIn("user:ana", by_actor)                # everything masked: nothing seen in clear

        # the overview goes through the same filter
        cookie, _ = self.user_session("ana2", "analyst")
        r = self.as_user("GET", "/customers/%s/overview" % C1, cookie)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["phone"], r.body["name"]), ("138****8000", "张**"))

        # history: a hidden field stays hidden
        cookie, _ = self.user_session("tech2", "technician")
        r = self.as_user("GET", "/customers/%s/history" % C1, cookie)
        self.assertEqual(r.status, 200, r.body)
        self.assertNotIn("id_card", r.body["data"][-1]["after"])

    def test_cookie_changes_need_the_csrf_token(self):
        self.create(ZHANG)
        cookie, csrf = self.user_session("cs", "customer_service")
        r = self.as_user("PATCH", "/customers/" + C1, cookie, {"notes": "x"})
        self.assertError(r, 403, "csrf_failed")
        r = self.as_user("PATCH", "/customers/" + C1, cookie, {"notes": "x"}, csrf="0" * 64)
        self.assertError(r, 403, "csrf_failed")
        self.assertIsNone(self.api("GET", "/customers/" + C1).body["notes"])
        r = self.as_user("PATCH", "/customers/" + C1, cookie, {"notes": "x"}, csrf=csrf)
        self.assertEqual(r.status, 200, r.body)
        rec = self.api("GET", "/customers/%s/history" % C1).body["data"][0]
        self.assertEqual((rec["action"], rec["actor"], rec["role"]), ("customer.update", "user:cs", "customer_service"))
        # read-only roles cannot change anything
        cookie, csrf = self.user_session("ana", "analyst")
        self.assertError(self.as_user("PATCH", "/customers/" + C1, cookie, {"notes": "y"}, csrf=csrf), 403)


class Verification(CustomersCase):
    def deliver(self, expect=True):
        """Runs the outbox.deliver job from the CLI and returns the outbox_log
        records it wrote (the daemon may deliver first at a minute boundary:
        its lines count too)."""
        mark = max(0, self.srv.mark() - 50)
        for _ in range(20):
            r = self.ws.run("jobs", "run", "outbox.deliver", "--db", self.ws.db, "--set", "log.level=info")
            if r.rc == 0:
                break
            time.sleep(0.2)       # the daemon holds the job's lease this instant
        self.assertEqual(r.rc, 0, str(r))
        recs = [json.loads(l) for l in r.err.splitlines() if l.startswith("{")]
        recs = [x for x in recs if x.get("event") == "outbox_log"]
        if expect and not recs:
            # delivered by the daemon just before: its line may still be on its way
            try:
                recs = [self.srv.wait_event("outbox_log", timeout=2, start=mark)]
            except AssertionError:
                pass
        return recs

    def test_code_through_the_outbox(self):
        self.create(ZHANG)
        path = "/customers/%s/phone-verification" % C1
        r = self.api("POST", path)
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(r.body["channel"], "log")
        r2 = self.api("POST", path)
        self.assertError(r2, 429, "too_many_requests")
        self.assertTrue(1 <= int(r2.headers["Retry-After"]) <= 60, r2.headers)
        self.assertEqual(self.count("SELECT count(*) FROM verification_codes"), 1)
        # queued once; the daemon's dispatcher may have sent it already
        self.assertEqual(self.count("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sent')"), 1)

        recs = self.deliver()
        self.assertEqual(len(recs), 1, recs)
        rec = recs[0]
        self.assertEqual((rec["message_event"], rec["customer"], rec["recipient"]), ("verification_code", C1, "138****8000"))
        code = json.loads(rec["payload"])["code"]
        self.assertRegex(code, r"^\d{6}$")
        # the daemon's dispatcher logs the line before its batch of outcomes commits
        poll(lambda: self.count("SELECT count(*) FROM outbox WHERE status = 'sent'") == 1, timeout=5, what="recorded as sent")
        self.assertEqual(self.deliver(expect=False), [])          # sent once

        wrong = "%06d" % ((int(code) + 1) % 1000000)
        r = self.api("POST", path + "/confirm", {"code": wrong})
        # well-formed but wrong: 422 invalid_code, as the PPPoE reset answers
        err = self.assertError(r, 422, "invalid_code")
        self.assertEqual((err["field"], err["attempts_left"]), ("code", 4))
        self.assertError(self.api("POST", path + "/confirm", {"code": "12"}), 400)
        self.assertError(self.api("POST", path + "/confirm", {"code": code, "x": "y"}), 400, "unknown_field")
        r = self.api("POST", path + "/confirm", {"code": code})
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.body["verified"])
        c = self.api("GET", "/customers/" + C1).body
        self.assertTrue(c["phone_verified"])
        self.assertEqual(c["phone_verified_at"], r.body["phone_verified_at"])
        # used: gone
        self.assertError(self.api("POST", path + "/confirm", {"code": code}), 410, "expired")
        self.assertError(self.api("POST", path), 409, "already_verified")
        actions = [x["action"] for x in self.api("GET", "/customers/%s/history" % C1).body["data"]]
        self.assertEqual(actions[:3], ["customer.phone_verified", "customer.phone_verification_failed",
                                       "customer.phone_verification_sent"])
        # a new number is not verified
        r = self.api("PATCH", "/customers/" + C1, {"phone": "13900001111"})
        self.assertFalse(r.body["phone_verified"])
        self.assertIsNone(r.body["phone_verified_at"])

    def test_five_wrong_codes_and_no_code(self):
        self.create(ZHANG)
        path = "/customers/%s/phone-verification" % C1
        self.assertError(self.api("POST", path + "/confirm", {"code": "123456"}), 404, "no_code")
        self.assertEqual(self.api("POST", path).status, 202)
        code = json.loads(self.ws.sql("SELECT payload FROM outbox")[0][0])["code"]
        wrong = "%06d" % ((int(code) + 1) % 1000000)
        for left in (4, 3, 2, 1, 0):
            err = self.assertError(self.api("POST", path + "/confirm", {"code": wrong}), 422, "invalid_code")
            self.assertEqual(err["attempts_left"], left)
        self.assertError(self.api("POST", path + "/confirm", {"code": code}), 410, "too_many_attempts")
        self.assertFalse(self.api("GET", "/customers/" + C1).body["phone_verified"])
        # no phone, nothing to send
        other = self.create({"name": "乙", "address": addr()})
        self.assertError(self.api("POST", "/customers/%s/phone-verification" % other["code"]), 409, "no_phone")


class Overview(CustomersCase):
    def test_360_view(self):
        self.create(ZHANG)
        sqls = [
            "INSERT INTO service_accounts (customer_id, username, password_enc, created_at, password_changed_at) "
            "VALUES (1, 'zsf0571', 'enc:v1:k1:secret', 'now', 'now')",
            "INSERT INTO devices (kind, serial, model, created_at) VALUES ('onu', 'ZTEG12345678', 'F663N', 'now')",
            "INSERT INTO installations (device_id, customer_id, service_account_id, installed_on, engineer, address, created_at) "
            "VALUES (1, 1, 1, '2026-01-05', 'e', '翠苑一区3幢2单元502', 'now')",
            "INSERT INTO deposits (customer_id, device_id, product, amount, taken_on) VALUES (1, 1, 'ONU-DEP', 20000, '2026-01-05')",
            "INSERT INTO products (code, kind, name, status, created_at, created_by) VALUES ('F300', 'plan', '光纤300M', 'active', 'now', 't')",
            "INSERT INTO product_versions (product_id, version, effective_from, price, tax_category, rule, created_at, created_by) "
            "VALUES (1, 1, '2020-01-01', 9900, 'internet', 'tariffs.flat', 'now', 't'), "
            "(1, 2, '2099-01-01', 19900, 'internet', 'tariffs.flat', 'now', 't')",
            "INSERT INTO subscriptions (customer_id, product_id, service_account_id, billing, period, start_date, anchor_day, "
            "next_bill_date, created_at, created_by) VALUES (1, 1, 1, 'postpaid', 'month', '2026-01-05', 5, '2026-12-05', 'now', 't')",
        ]
        for s in sqls:
            self.ws.sql(s)
        t0 = time.monotonic()
        r = self.api("GET", "/customers/%s/overview" % C1)
        self.assertEqual(r.status, 200, r.body)
        o = r.body
        self.assertEqual(o["code"], C1)
        self.assertEqual(o["phone"], "13812348000")
        self.assertEqual(o["service_accounts"], [{"username": "zsf0571", "status": "active", "created_at": "now"}])
        self.assertNotIn("secret", json.dumps(o))
        dev = o["devices"][0]
        self.assertEqual((dev["serial"], dev["model"], dev["service_account"]), ("ZTEG12345678", "F663N", "zsf0571"))
        self.assertEqual(dev["deposit"]["amount"], 20000)
        self.assertNotIn("address", dev)
        sub = o["subscriptions"][0]
        self.assertEqual((sub["plan"]["code"], sub["plan"]["name"], sub["price"], sub["price_version"]), ("F300", "光纤300M", 9900, 1))
        self.assertEqual(sub["addons"], [])
        self.assertEqual((o["balance"], o["credit"], o["deposits_held"]), (0, 0, 0))
        self.assertEqual((o["latest_invoices"], o["latest_payments"], o["tickets"]), ([], [], []))
        self.assertEqual(o["dunning"], {"state": "none", "open_tasks": 0, "recent": []})
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_billing_in_the_view_and_deposits_on_the_ledger(self):
        """A real bill run and a counter payment show in the view; settling
        billed deposits posts their ledger entries, an unbilled one posts none.

        By hand: October 2026 of FIB129 (129.00 a month, tax included) is
        12900; the ONU deposit 20000 and the set-top box deposit 10000 are
        billed with it: gross 42900. A payment of 100.00 leaves 32900 to pay
        and a balance of 32900; 30000 is held as deposits. The ONU returned:
        -20000 on the customer account (balance 12900) and on the deposit
        account; the set-top box forfeited: -10000 on the deposit account
        only. Credit = open 32900 - balance 12900 = 20000."""
        self.create(ZHANG)
        plan = '{"period":"month","billing":"postpaid","min_contract_months":0}'
        for q, p in [
            ("INSERT INTO products (id, code, kind, name, status, created_at, created_by) "
             "VALUES (1, 'FIB129', 'plan', '光纤129', 'active', 't', 't')", ()),
            ("INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, "
             "rule, params, attrs, created_at, created_by) VALUES (1, 1, '2020-01-01', 12900, 1, 'internet', "
             "'tariffs.monthly', '{}', ?, 't', 't')", (plan,)),
            ("INSERT INTO subscriptions (id, customer_id, product_id, status, billing, period, start_date, anchor_day, "
             "next_bill_date, created_at, created_by) VALUES (1, 1, 1, 'active', 'postpaid', 'month', '2026-10-01', 1, "
             "'2026-11-01', 't', 't')", ()),
            ("INSERT INTO devices (id, kind, serial, model, status, created_at) VALUES "
             "(1, 'onu', 'ZTEG12345678', 'F663N', 'installed', 'now'), (2, 'stb', 'HWTC1A2B3C4D', 'EC6108', 'installed', 'now'), "
             "(3, 'onu', 'ZTEG87654321', 'F663N', 'installed', 'now')", ()),
            ("INSERT INTO deposits (id, customer_id, device_id, product, amount, taken_on) VALUES "
             "(1, 1, 1, 'DEP-ONU', 20000, '2026-10-01'), (2, 1, 2, 'DEP-STB', 10000, '2026-10-01')", ()),
        ]:
            self.ws.sql(q, p)
        r = self.ws.ok("bill", "run", "--period", "2026-10", "--json").json()
        self.assertEqual((r["report"]["invoiced"], r["report"]["failed"]), (1, 0), r)
        # taken after the bill: never on an invoice, so never on the ledger
        self.ws.sql("INSERT INTO deposits (id, customer_id, device_id, product, amount, taken_on) "
                    "VALUES (3, 1, 3, 'DEP-ONU', 20000, '2026-11-02')")
        pay = self.ws.ok("payment", "record", C1, "--amount", "100.00", "--receipt", "R-1", "--json").json()
        self.assertEqual((pay["amount"], pay["unallocated"]), (10000, 0))

        o = self.api("GET", "/customers/%s/overview" % C1).body
        self.assertEqual((o["balance"], o["credit"], o["deposits_held"]), (32900, 0, 30000))
        self.assertEqual(o["latest_invoices"], [{
            "number": "INV-2026-000001", "period_from": "2026-10-01", "period_to": "2026-10-31",
            "issue_date": "2026-11-01", "due_date": "2026-11-16", "gross": 42900, "paid": 10000,
            "balance_due": 32900, "status": "partially_paid"}])
        self.assertEqual(o["latest_payments"], [{"id": pay["id"], "channel": "counter", "amount": 10000,
                                                 "entry_date": pay["entry_date"], "unallocated": 0}])
        self.assertEqual(o["dunning"], {"state": "none", "open_tasks": 0, "recent": []})
        self.assertEqual(o["tickets"], [])

        today = pay["entry_date"]
        for dep, status in ((1, "returned"), (2, "forfeited"), (3, "forfeited")):
            r = self.api("POST", "/deposits/%d/settle" % dep, {"status": status, "settled_on": today})
            self.assertEqual(r.status, 200, r.body)
        rows = self.ws.sql("SELECT deposit_id, account, kind, amount FROM ledger_entries WHERE kind LIKE 'deposit_%' "
                           "AND amount < 0 ORDER BY id")
        self.assertEqual(rows, [(1, "customer", "deposit_returned", -20000), (1, "deposit", "deposit_returned", -20000),
                                (2, "deposit", "deposit_forfeited", -10000)])
        o = self.api("GET", "/customers/%s/overview" % C1).body
        self.assertEqual((o["balance"], o["credit"], o["deposits_held"]), (12900, 20000, 0))
        self.assertEqual([d["status"] for d in o["deposits"]], ["forfeited", "forfeited", "returned"])
        self.assertTrue(json.loads(self.ws.ok("ledger", "verify", "--json").out)["ok"])

        # a settlement whose ledger entry cannot be posted is not written
        # either: the already-settled deposit stays as it was
        r = self.api("POST", "/deposits/1/settle", {"status": "kept", "settled_on": today})
        self.assertEqual(r.status, 409, r.body)
        self.assertEqual(self.count("SELECT count(*) FROM ledger_entries WHERE deposit_id = 1"), 3)


class Cli(BBTestCase):
    def test_add_show_find_edit(self):
        r = self.ws.run("customer", "add", "--name", "张三丰", "--phone", "+86 138 1234 8000", "--id-card", "11010519491231002X",
                        "--province", "浙江省", "--city", "杭州市", "--district", "西湖区", "--community", "翠苑一区",
                        "--building", "3", "--room", "502", "--tags", "vip, fiber")
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.out.strip(), "customer %s created" % C1)
        j = json.loads(self.ws.ok("customer", "show", C1, "--json").out)
        self.assertEqual((j["phone"], j["id_card"], j["tags"]), ("13812348000", "11010519491231002X", ["fiber", "vip"]))
        out = self.ws.ok("customer", "show", C1).out
        self.assertIn("13812348000 (not verified)", out)
        self.assertIn("翠苑一区 3 502", out)

        out = self.ws.ok("customer", "find", "--phone", "13812348000").out.splitlines()
        self.assertEqual(len(out), 2, out)
        self.assertTrue(out[1].startswith(C1), out)
        found = json.loads(self.ws.ok("customer", "find", "张", "--json").out)
        self.assertEqual([c["code"] for c in found], [C1])

        r = self.ws.run("customer", "edit", C1, "--status", "active", "--room", "601", "--email", "z@example.com")
        self.assertEqual(r.rc, 0, str(r))
        j = json.loads(self.ws.ok("customer", "show", C1, "--json").out)
        self.assertEqual((j["status"], j["address"]["room"], j["address"]["community"], j["email"]),
                         ("active", "601", "翠苑一区", "z@example.com"))
        self.ws.ok("customer", "edit", C1, "--email", "")
        self.assertIsNone(json.loads(self.ws.ok("customer", "show", C1, "--json").out)["email"])
        actions = [a for (a,) in self.ws.sql("SELECT action FROM audit_log WHERE object_id = ? ORDER BY id", (C1,))]
        self.assertEqual([a for a in actions if a != "field.view"],
                         ["customer.create", "customer.update", "customer.status", "customer.update"])
        self.assertIn("field.view", actions)
        self.assertTrue(all(a.startswith("cli:") for (a,) in self.ws.sql("SELECT actor FROM audit_log")))

    def test_errors_and_exit_codes(self):
        base = ["--province", "浙江省", "--city", "杭州市", "--district", "西湖区"]
        self.ws.ok("customer", "add", "--name", "甲", "--phone", "13812348000", *base)
        r = self.ws.run("customer", "add", "--name", "乙", "--phone", "138-1234-8000", *base)
        self.assertOneErrorLine(r, "already belongs to customer " + C1)
        r = self.ws.run("customer", "add", "--name", "乙", "--phone", "12345", *base)
        self.assertOneErrorLine(r, "mobile")
        r = self.ws.run("customer", "show", "C000000014")
        self.assertOneErrorLine(r, "typo")
        r = self.ws.run("customer", "show", C2)
        self.assertOneErrorLine(r, "no customer")
        r = self.ws.run("customer", "edit", C1, "--status", "closed")
        self.assertEqual(r.rc, 0, str(r))
        r = self.ws.run("customer", "edit", C1, "--status", "active")
        self.assertOneErrorLine(r, "cannot become active")
        r = self.ws.run("customer", "edit", C1)
        self.assertOneErrorLine(r, "nothing to change", rc=2)
        r = self.ws.run("customer", "add", "--name", "x", "--status", "active", *base)
        self.assertOneErrorLine(r, "--status", rc=2)
        r = self.ws.run("customer", "find", "--limit", "0")
        self.assertOneErrorLine(r, "--limit", rc=2)
        self.ws.sql("SELECT 1")
        self.assertEqual(self.ws.sql("SELECT count(*) FROM customers")[0][0], 1)

    def test_json_file(self):
        path = self.ws.path("c.json")
        bbtest.write(path, json.dumps(dict(ZHANG, type="business", company_name="杭州某某科技有限公司",
                                           tax_id="91350100M000100Y43")))
        j = json.loads(self.ws.ok("customer", "add", "--json-file", path, "--json").out)
        self.assertEqual((j["code"], j["type"], j["tax_id"]), (C1, "business", "91350100M000100Y43"))
        r = self.ws.run("customer", "add", "--json-file", path, "--name", "x")
        self.assertOneErrorLine(r, "not both", rc=2)
        bbtest.write(path, json.dumps({"notes": "vip line", "billing_address": {"province": "浙江省", "city": "杭州市",
                                                                                  "district": "上城区"}}))
        self.ws.ok("customer", "edit", C1, "--json-file", path)
        j = json.loads(self.ws.ok("customer", "show", C1, "--json").out)
        self.assertEqual((j["notes"], j["billing_address"]["district"]), ("vip line", "上城区"))
        bbtest.write(path, json.dumps({"nickname": "x"}))
        r = self.ws.run("customer", "edit", C1, "--json-file", path)
        self.assertOneErrorLine(r, "nickname")
        self.assertTrue(re.search(r"unknown field", r.err), r.err)
