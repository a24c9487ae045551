"""The product catalog over HTTP and from the command line: every product
kind, parameter and attribute validation with nothing written on an error,
effective-dated prices (a future price leaves today's alone), status
transitions, the pricing-rule schemas the console draws forms from, the
offers a customer may be sold, and `bandbill product list|add|price`."""

import datetime
import json
import unittest
import zoneinfo

from bbtest import BBTestCase

# calendar dates are in the operator's time zone (the default config)
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


def day(delta=0):
    return (datetime.datetime.now(TZ).date() + datetime.timedelta(days=delta)).isoformat()


DAMM = [[0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
        [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
        [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
        [2, 5, 8, 1, 4, 3, 6, 7, 9, 0]]


def customer_code(n):
    digits = "%08d" % n
    c = 0
    for ch in digits:
        c = DAMM[c][int(ch)]
    return "C%s%d" % (digits, c)


PLAN_ATTRS = {"download_mbps": 200, "upload_mbps": 50, "period": "month", "billing": "postpaid"}


def plan(code, price=12900, status="active", **version):
    v = {"price": price, "tax_category": "internet", "rule": "tariffs.monthly", "attrs": dict(PLAN_ATTRS)}
    v.update(version)
    return {"code": code, "kind": "plan", "name": "光纤 " + code, "status": status, "version": v}


class CatalogCase(BBTestCase):
    def setUp(self):
        super().setUp()
        self.token = self.ws.token()
        self.srv = self.ws.serve()

    def post(self, path, body, token=None):
        return self.srv.post(path, body, token=token or self.token)

    def get(self, path, token=None):
        return self.srv.get(path, token=token or self.token)

    def patch(self, path, body):
        return self.srv.request("PATCH", path, body=body, token=self.token)

    def create(self, body):
        r = self.post("/api/v1/products", body)
        self.assertEqual(r.status, 201, r.body)
        return r.body

    def count(self, table):
        return self.ws.sql("SELECT count(*) FROM %s" % table)[0][0]

    def audit_actions(self, code):
        return [a for (a,) in self.ws.sql("SELECT action FROM audit_log WHERE object_type = 'product' AND object_id = ? "
                                          "ORDER BY id", (code,))]


class Products(CatalogCase):
    def test_create_every_kind(self):
        p = self.create(plan("FTTH200"))
        self.assertEqual((p["code"], p["kind"], p["status"]), ("FTTH200", "plan", "active"))
        self.assertEqual(p["current"]["price"], 12900)
        self.assertEqual(p["current"]["effective_from"], day())
        self.assertEqual(p["current"]["params"], {"proration": "daily", "rounding": "half_up"})
        self.assertEqual(p["current"]["attrs"], dict(PLAN_ATTRS, min_contract_months=0, contract_lock=False))
        self.assertTrue(p["current"]["price_includes_tax"])
        self.assertEqual(len(p["versions"]), 1)

        a = self.create({"code": "PUBLIC-IP", "kind": "addon", "name": "公网IP", "version": {
            "price": 3000, "tax_category": "internet", "rule": "tariffs.flat", "attrs": {"fits": ["FTTH200"]}}})
        self.assertEqual(a["status"], "draft")
        self.assertEqual(a["current"]["attrs"], {"fits": ["FTTH200"]})
        f = self.create({"code": "INSTALL", "kind": "fee", "name": "安装费", "version": {
            "price": 20000, "tax_category": "installation", "rule": "tariffs.flat", "attrs": {"purpose": "installation"}}})
        self.assertEqual(f["current"]["tax_category"], "installation")
        d = self.create({"code": "ONU-DEPOSIT", "kind": "deposit", "name": "光猫押金", "version": {
            "price": 30000, "tax_category": "deposit", "rule": "tariffs.flat", "attrs": {"device": "onu"}}})
        self.assertEqual(d["current"]["attrs"], {"device": "onu", "refundable": True})
        pr = self.create({"code": "FIRST-YEAR-15", "kind": "promotion", "name": "首年85折", "version": {
            "price": 0, "tax_category": "internet", "rule": "promotions.first_year", "params": {"percent": 15},
            "attrs": {"promo_type": "first_year", "applies_to": "plan", "products": ["FTTH200"]}}})
        self.assertEqual(pr["current"]["params"], {"percent": 15})

        r = self.get("/api/v1/products/ONU-DEPOSIT")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, d)
        self.assertEqual(self.audit_actions("FTTH200"), ["product.create"])
        diff = json.loads(self.ws.sql("SELECT diff FROM audit_log WHERE object_id = 'FTTH200'")[0][0])
        self.assertEqual(diff["after"]["code"], "FTTH200")

        # list: newest first, filters, pages
        r = self.get("/api/v1/products")
        self.assertEqual([x["code"] for x in r.body["data"]],
                         ["FIRST-YEAR-15", "ONU-DEPOSIT", "INSTALL", "PUBLIC-IP", "FTTH200"])
        self.assertIsNone(r.body["next_cursor"])
        self.assertNotIn("versions", r.body["data"][0])
        self.assertEqual([x["code"] for x in self.get("/api/v1/products?kind=plan").body["data"]], ["FTTH200"])
        self.assertEqual([x["code"] for x in self.get("/api/v1/products?status=draft&kind=addon").body["data"]],
                         ["PUBLIC-IP"])
        page = self.get("/api/v1/products?limit=2").body
        codes = [x["code"] for x in page["data"]]
        while page["next_cursor"]:
            page = self.get("/api/v1/products?limit=2&cursor=" + page["next_cursor"]).body
            codes += [x["code"] for x in page["data"]]
        self.assertEqual(codes, ["FIRST-YEAR-15", "ONU-DEPOSIT", "INSTALL", "PUBLIC-IP", "FTTH200"])
        self.assertError(self.get("/api/v1/products?kind=bundle"), 400, "invalid_parameter")
        self.assertError(self.get("/api/v1/products?cursor=abc"), 400, "invalid_parameter")
        self.assertError(self.get("/api/v1/products/NOPE"), 404, "not_found")

    def test_bad_input_is_refused_and_nothing_written(self):
        self.create(plan("FTTH200"))
        cases = [
            (plan("P2", params={"proration": "weekly"}), 400, "invalid_field", "version.params.proration"),
            (plan("P2", params={"colour": "red"}), 400, "unknown_field", "version.params.colour"),
            (plan("P2", params={"price": 100}), 400, "unknown_field", "version.params.price"),
            (plan("P2", price=129.5), 400, "invalid_money", "version.price"),
            (plan("P2", tax_category="snacks"), 400, "unknown_tax_category", "version.tax_category"),
            (plan("P2", rule="tariffs.nope"), 400, "unknown_rule", "version.rule"),
            (plan("P2", rule="tax.split"), 400, "rule_without_schema", "version.rule"),
            (plan("P2", attrs={"download_mbps": 200}), 400, "missing_field", "version.attrs.upload_mbps"),
            (plan("P2", effective_from=day(-1)), 400, "effective_from_in_past", "version.effective_from"),
            (dict(plan("P2"), colour="red"), 400, "unknown_field", "colour"),
            (plan("P2", colour="red"), 400, "unknown_field", "version.colour"),
            (plan("p2"), 400, "invalid_field", "code"),
            (plan("FTTH200"), 409, "exists", "code"),
            ({"code": "IPX", "kind": "addon", "name": "x", "version": {
                "price": 1, "tax_category": "internet", "rule": "tariffs.flat", "attrs": {"fits": ["NOPE"]}}},
             400, "unknown_product", "version.attrs.fits[0]"),
            ({"code": "C1", "kind": "promotion", "name": "x", "version": {
                "price": 0, "tax_category": "internet", "rule": "promotions.percent_off", "params": {"percent": "8.1234567"},
                "attrs": {"promo_type": "coupon", "applies_to": "any", "coupon": "SAVE8"}}},
             400, "invalid_field", "version.params.percent"),
        ]
        for body, status, code, field in cases:
            with self.subTest(field=field, code=code):
                err = self.assertError(self.post("/api/v1/products", body), status, code)
                self.assertEqual(err["field"], field)
        self.assertEqual(self.count("products"), 1)
        self.assertEqual(self.count("product_versions"), 1)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM audit_log WHERE object_type = 'product'")[0][0], 1)
        self.assertError(self.srv.post("/api/v1/products", raw="[1]", token=self.token), 400, "invalid_body")

        # a new version with bad parameters: 400 naming params.x, nothing added
        err = self.assertError(self.post("/api/v1/products/FTTH200/versions",
                                         {"effective_from": day(30), "params": {"proration": "weekly"}}), 400, "invalid_field")
        self.assertEqual(err["field"], "params.proration")
        err = self.assertError(self.post("/api/v1/products/FTTH200/versions",
                                         {"effective_from": day(30), "params": {"rounding": "half_up", "x": 1}}),
                               400, "unknown_field")
        self.assertEqual(err["field"], "params.x")
        self.assertEqual(self.count("product_versions"), 1)
        self.assertEqual(self.audit_actions("FTTH200"), ["product.create"])

    def test_future_price_leaves_today_alone(self):
        self.create(plan("FTTH300", price=15900))
        r = self.post("/api/v1/products/FTTH300/versions", {"effective_from": day(30), "price": 16900})
        self.assertEqual(r.status, 201, r.body)
        p = self.get("/api/v1/products/FTTH300").body
        self.assertEqual(p["current"]["price"], 15900)
        self.assertEqual(p["current"]["version"], 1)
        self.assertEqual([(v["version"], v["effective_from"], v["price"]) for v in p["versions"]],
                         [(1, day(), 15900), (2, day(30), 16900)])
        # the new version kept what it did not change
        self.assertEqual(p["versions"][1]["rule"], "tariffs.monthly")
        self.assertEqual(p["versions"][1]["attrs"], p["versions"][0]["attrs"])
        self.assertEqual(self.get("/api/v1/products?kind=plan").body["data"][0]["current"]["price"], 15900)
        # history is never rewritten; an active product's prices never start in the past
        err = self.assertError(self.post("/api/v1/products/FTTH300/versions", {"effective_from": day(30), "price": 1}),
                               409, "effective_from_not_after_latest")
        self.assertEqual(err["field"], "effective_from")
        self.assertError(self.post("/api/v1/products/FTTH300/versions", {"effective_from": day(10), "price": 1}),
                         409, "effective_from_not_after_latest")
        self.assertError(self.post("/api/v1/products/FTTH300/versions", {"price": 1}), 400, "missing_field")
        self.assertError(self.post("/api/v1/products/NOPE/versions", {"effective_from": day(40)}), 404, "not_found")
        self.assertEqual(self.count("product_versions"), 2)
        diff = json.loads(self.ws.sql("SELECT diff FROM audit_log WHERE action = 'product.version_add'")[0][0])
        self.assertEqual(len(diff["before"]["versions"]), 1)
        self.assertEqual(len(diff["after"]["versions"]), 2)

    def test_draft_takes_past_prices(self):
        self.create(plan("OLD", status="draft", effective_from="2025-01-01"))
        r = self.post("/api/v1/products/OLD/versions", {"effective_from": "2025-06-01", "price": 11900})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body["current"]["price"], 11900)
        self.assertEqual(self.patch("/api/v1/products/OLD", {"status": "active"}).status, 200)
        err = self.assertError(self.post("/api/v1/products/OLD/versions", {"effective_from": day(-1), "price": 1}),
                               400, "effective_from_in_past")
        self.assertEqual(err["field"], "effective_from")

    def test_patch_name_and_status(self):
        self.create(plan("P1", status="draft"))
        r = self.patch("/api/v1/products/P1", {"name": "光纤 P1 新名"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["name"], r.body["status"]), ("光纤 P1 新名", "draft"))
        self.assertEqual(self.patch("/api/v1/products/P1", {"status": "active"}).body["status"], "active")
        err = self.assertError(self.patch("/api/v1/products/P1", {"status": "draft"}), 409, "invalid_transition")
        self.assertEqual(err["field"], "status")
        self.assertEqual(self.patch("/api/v1/products/P1", {"status": "retired"}).body["status"], "retired")
        self.assertError(self.patch("/api/v1/products/P1", {"status": "active"}), 409, "invalid_transition")
        self.assertError(self.patch("/api/v1/products/P1", {"status": "gone"}), 400, "invalid_field")
        self.assertError(self.patch("/api/v1/products/P1", {"price": 1}), 400, "unknown_field")
        self.assertError(self.patch("/api/v1/products/P1", {"name": ""}), 400, "invalid_field")
        self.assertError(self.patch("/api/v1/products/P1", {"name": 5}), 400, "invalid_field")
        self.assertError(self.patch("/api/v1/products/NOPE", {"name": "x"}), 404, "not_found")
        self.assertEqual(self.ws.sql("SELECT name, status FROM products")[0], ("光纤 P1 新名", "retired"))
        self.assertEqual(self.audit_actions("P1"), ["product.create"] + ["product.update"] * 3)
        diff = json.loads(self.ws.sql("SELECT diff FROM audit_log WHERE action = 'product.update' ORDER BY id LIMIT 1")[0][0])
        self.assertEqual(diff["before"]["name"], "光纤 P1")
        self.assertEqual(diff["after"]["name"], "光纤 P1 新名")

    def test_permissions(self):
        reader = self.ws.token(name="auditor", role="auditor")
        self.assertEqual(self.get("/api/v1/products", token=reader).status, 200)
        self.assertEqual(self.get("/api/v1/pricing-rules", token=reader).status, 200)
        self.assertEqual(self.post("/api/v1/products", plan("X1"), token=reader).status, 403)
        self.assertEqual(self.srv.get("/api/v1/products").status, 401)
        self.assertEqual(self.count("products"), 0)


class PricingRules(CatalogCase):
    def test_schemas_for_forms(self):
        r = self.get("/api/v1/pricing-rules")
        self.assertEqual(r.status, 200, r.body)
        by_rule = {x["rule"]: x for x in r.body["data"]}
        for rule in ("tariffs.flat", "tariffs.monthly", "promotions.percent_off", "promotions.first_year",
                     "promotions.fixed_off"):
            self.assertIn(rule, by_rule)
            self.assertTrue(by_rule[rule]["valid"], by_rule[rule])
        self.assertNotIn("tax.split", by_rule)     # no schema: not a pricing rule
        self.assertIsNone(r.body["next_cursor"])
        self.assertEqual(len(r.body["rules_version"]), 64)
        flat = by_rule["tariffs.flat"]
        self.assertEqual((flat["module"], flat["function"]), ("tariffs", "flat"))
        self.assertEqual(flat["schema"]["price"]["type"], "money")
        self.assertEqual(flat["schema"]["price"]["min"], 0)
        self.assertEqual(flat["schema"]["price"]["label"], {"zh": "价格", "en": "Price"})
        monthly = by_rule["tariffs.monthly"]
        self.assertEqual(monthly["fields"], ["price", "proration", "rounding"])
        self.assertEqual(monthly["schema"]["proration"]["values"], ["daily", "full", "none"])
        self.assertEqual(monthly["schema"]["proration"]["default"], "daily")
        po = by_rule["promotions.percent_off"]
        self.assertEqual(po["fields"], ["percent", "months"])
        self.assertEqual(po["schema"]["percent"]["type"], "percent")
        self.assertIs(po["schema"]["months"]["required"], False)

    def test_broken_schema_is_reported(self):
        with open(self.ws.path("rules", "broken.lua"), "w", encoding="utf-8") as f:
            f.write("local M = {}\nM.schemas = { price = { x = { type = 'money2' } } }\n"
                    "function M.price(ctx) return { amount = 0 } end\nreturn M\n")
        self.assertEqual(self.post("/api/v1/rules/reload", None).status, 200)
        by_rule = {x["rule"]: x for x in self.get("/api/v1/pricing-rules").body["data"]}
        self.assertFalse(by_rule["broken.price"]["valid"])
        self.assertIn("unknown type 'money2'", by_rule["broken.price"]["error"])
        r = self.post("/api/v1/products", {"code": "B1", "kind": "fee", "name": "x", "version": {
            "price": 1, "tax_category": "installation", "rule": "broken.price", "attrs": {"purpose": "other"}}})
        self.assertError(r, 422, "invalid_schema")
        self.assertEqual(self.count("products"), 0)


class Offers(CatalogCase):
    def add_customer(self, n, address, tags=()):
        code = customer_code(n)
        now = "2026-01-01T00:00:00.000Z"
        self.ws.sql("INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) "
                    "VALUES (?, ?, 'residential', '张三', 'active', ?, 'test', ?)", (n, code, now, now))
        if address:
            self.ws.sql("INSERT INTO addresses (customer_id, kind, province, city, district, street) "
                        "VALUES (?, 'service', ?, ?, ?, ?)", (n,) + tuple(address))
        for t in tags:
            self.ws.sql("INSERT INTO customer_tags (customer_id, tag) VALUES (?, ?)", (n, t))
        return code

    def offers(self, code, query=""):
        r = self.get("/api/v1/customers/%s/offers%s" % (code, query))
        self.assertEqual(r.status, 200, r.body)
        return [o["code"] for o in r.body["data"]]

    def test_offers_by_region_tags_and_status(self):
        self.create(plan("EVERYWHERE"))
        self.create(plan("XIHU", regions=["浙江省/杭州市/西湖区"]))
        self.create(plan("HANGZHOU", regions=["浙江省/杭州市"]))
        self.create(plan("NINGBO", regions=["浙江省/宁波市"]))
        self.create(plan("NEWUSER", tags=["new_user"]))
        self.create(plan("DRAFT", status="draft"))
        self.create(plan("RETIRED"))
        self.assertEqual(self.patch("/api/v1/products/RETIRED", {"status": "retired"}).status, 200)
        self.create(plan("LATER", effective_from=day(5)))     # not priced yet today
        self.create({"code": "INSTALL", "kind": "fee", "name": "安装费", "status": "active", "version": {
            "price": 20000, "tax_category": "installation", "rule": "tariffs.flat", "attrs": {"purpose": "installation"}}})

        xihu = self.add_customer(1, ("浙江省", "杭州市", "西湖区", "文三路"))
        binjiang_new = self.add_customer(2, ("浙江省", "杭州市", "滨江区", ""), tags=("new_user", "vip"))
        nowhere = self.add_customer(3, None)
        self.assertEqual(self.offers(xihu), ["EVERYWHERE", "HANGZHOU", "INSTALL", "XIHU"])
        self.assertEqual(self.offers(binjiang_new), ["EVERYWHERE", "HANGZHOU", "INSTALL", "NEWUSER"])
        self.assertEqual(self.offers(nowhere), ["EVERYWHERE", "INSTALL"])
        self.assertEqual(self.offers(xihu, "?kind=fee"), ["INSTALL"])
        o = self.get("/api/v1/customers/%s/offers" % xihu).body["data"][0]
        self.assertEqual(o["current"]["price"], 12900)
        self.assertEqual(o["kind"], "plan")
        # a tag added to the customer opens the new-user offer
        self.ws.sql("INSERT INTO customer_tags (customer_id, tag) VALUES (1, 'new_user')")
        self.assertIn("NEWUSER", self.offers(xihu))
        # the retired product still prices its existing subscribers
        self.assertEqual(self.get("/api/v1/products/RETIRED").body["current"]["price"], 12900)

        self.assertError(self.get("/api/v1/customers/%s/offers" % customer_code(99)), 404, "not_found")
        typo = xihu[:-1] + str((int(xihu[-1]) + 1) % 10)     # a wrong check digit
        self.assertError(self.get("/api/v1/customers/%s/offers" % typo), 400, "invalid_customer_code")
        self.assertError(self.get("/api/v1/customers/%s/offers?kind=x" % xihu), 400, "invalid_parameter")


class ProductCLI(BBTestCase):
    def test_add_list_price(self):
        r = self.ws.ok("product", "add", "FTTH200", "--kind", "plan", "--name", "光纤200M", "--price", "129.00",
                       "--tax-category", "internet", "--rule", "tariffs.monthly", "--status", "active",
                       "--attrs", json.dumps(PLAN_ATTRS))
        self.assertIn("product FTTH200 created (plan, active)", r.out)
        self.assertIn("129.00", r.out)
        r = self.ws.ok("product", "add", "IPTV", "--kind", "addon", "--name", "IPTV", "--price-fen", "1500",
                       "--tax-category", "internet", "--rule", "tariffs.flat", "--attrs", '{"fits":["FTTH200"]}', "--json")
        p = r.json()
        self.assertEqual((p["code"], p["status"], p["current"]["price"]), ("IPTV", "draft", 1500))

        r = self.ws.ok("product", "price", "FTTH200", "--price", "139.00", "--from", day(30))
        self.assertIn("version 2 from %s: 139.00" % day(30), r.out)
        r = self.ws.ok("product", "price", "FTTH200", "--price-fen", "14900", "--from", day(60),
                       "--params", '{"proration":"full"}', "--json")
        v = r.json()["versions"]
        self.assertEqual([(x["version"], x["price"]) for x in v], [(1, 12900), (2, 13900), (3, 14900)])
        self.assertEqual(v[2]["params"], {"proration": "full", "rounding": "half_up"})

        r = self.ws.ok("product", "list")
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["CODE", "KIND", "STATUS", "PRICE", "NAME"])
        self.assertEqual(lines[1].split(), ["FTTH200", "plan", "active", "129.00", "光纤200M"])
        self.assertEqual(lines[2].split(), ["IPTV", "addon", "draft", "15.00", "IPTV"])
        self.assertEqual(len(lines), 3)
        self.assertEqual([x["code"] for x in self.ws.ok("product", "list", "--kind", "addon", "--json").json()], ["IPTV"])
        self.assertEqual(self.ws.ok("product", "list", "--status", "retired", "--json").json(), [])

        actions = self.ws.sql("SELECT action, object_id, actor, source FROM audit_log WHERE object_type = 'product' ORDER BY id")
        self.assertEqual([(a, o) for a, o, _, _ in actions],
                         [("product.create", "FTTH200"), ("product.create", "IPTV"),
                          ("product.version_add", "FTTH200"), ("product.version_add", "FTTH200")])
        self.assertTrue(all(actor.startswith("cli:") and src == "cli" for _, _, actor, src in actions))

    def test_errors(self):
        base = ["product", "add", "P1", "--kind", "plan", "--name", "x", "--tax-category", "internet",
                "--rule", "tariffs.monthly", "--attrs", json.dumps(PLAN_ATTRS)]
        r = self.ws.run(*base, "--price", "129.001")
        self.assertOneErrorLine(r, "--price")
        r = self.ws.run(*base, "--price", "1", "--price-fen", "100")
        self.assertOneErrorLine(r, "--price", rc=2)
        r = self.ws.run(*base)
        self.assertOneErrorLine(r, "--price", rc=2)
        r = self.ws.run(*base, "--price", "1", "--params", "{bad")
        self.assertOneErrorLine(r, "--params is not valid JSON", rc=2)
        r = self.ws.run(*base, "--price", "1", "--params", '{"proration":"weekly"}')
        self.assertOneErrorLine(r, "version.params.proration")
        r = self.ws.run("product", "add", "P1", "--kind", "plan", "--name", "x", "--price", "1")
        self.assertOneErrorLine(r, "--tax-category", rc=2)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM products")[0][0], 0)
        self.ws.ok(*base, "--price", "1")
        r = self.ws.run("product", "price", "P1", "--price", "2")
        self.assertOneErrorLine(r, "--from", rc=2)
        r = self.ws.run("product", "price", "P1", "--from", day(3))
        self.assertOneErrorLine(r, "--price", rc=2)
        r = self.ws.run("product", "price", "NOPE", "--price", "2", "--from", day(3))
        self.assertOneErrorLine(r, "no product NOPE")
        r = self.ws.run("product", "list", "--kind", "bundle")
        self.assertOneErrorLine(r, "--kind", rc=2)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM product_versions")[0][0], 1)


if __name__ == "__main__":
    unittest.main()
