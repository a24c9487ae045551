"""`bandbill demo` through the real binary: a living ISP of about 2,000
customers in a few districts of Hangzhou, five plans (100M, 300M, 500M,
1000M monthly and 500M annual prepaid), add-ons, fees, deposits,
promotions, tags, devices and deposits; the same data in two fresh
databases (only ciphertexts and keyed hashes differ: each has its own
key); a second run in the same database writes no customer data; and a
`bill run` for last month afterwards bills it without a failure, one month
per postpaid monthly subscription (no catch-up since the start)."""

import datetime
import json
import zoneinfo

import bbtest
from bbtest import BBTestCase

PLANS = ["FIBER100", "FIBER1000", "FIBER300", "FIBER500", "FIBER500Y"]

# every table the demo writes customer data into, with its columns in clear
CLEAR = {
    "customers": "code, type, name, company_name, tax_id, status",
    "addresses": "customer_id, kind, province, city, district, street, community, building, unit, floor, room",
    "customer_tags": "customer_id, tag",
    "service_accounts": "customer_id, username, status",
    "devices": "kind, serial, vendor, mac, model, status",
    "installations": "device_id, customer_id, service_account_id, installed_on, engineer, address, removed_on, removal_reason",
    "deposits": "customer_id, device_id, product, amount, status, taken_on, settled_on",
    "subscriptions": "customer_id, product_id, service_account_id, status, billing, period, start_date, contract_end, "
                     "anchor_day, paid_through, next_bill_date, end_date, billed_through",
    "subscription_items": "subscription_id, product_id, quantity, start_date, end_date",
    "subscription_changes": "subscription_id, kind, effective_date, from_product_id, to_product_id, status, fee",
    "pending_charges": "customer_id, subscription_id, product_id, description, quantity, unit_price, tax_category",
    "products": "code, kind, name, status",
    "product_versions": "product_id, version, effective_from, price, tax_category, rule, params, attrs",
}


def today_in_shanghai():
    return datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai")).date()


def last_month(today):
    first = today.replace(day=1)
    prev = first - datetime.timedelta(days=1)
    return prev.strftime("%Y-%m"), prev.replace(day=1), first


class Demo(BBTestCase):
    def rows(self, table, cols, ws=None):
        return (ws or self.ws).sql("SELECT %s FROM %s ORDER BY rowid" % (cols, table))

    def everything(self):
        """Every row of every table the demo writes, ciphertexts included."""
        return {t: self.rows(t, "*") for t in list(CLEAR) + ["staff_users", "api_tokens", "verification_codes"]}

    def test_living_isp_idempotent_and_billable(self):
        today = today_in_shanghai()
        j = json.loads(self.ws.ok("demo", "--json").out)
        self.assertTrue(j["data_created"])
        c = j["created"]
        self.assertEqual(c["customers"], 2000)
        self.assertEqual(sum(c["by_status"].values()), 2000)
        self.assertTrue(c["by_status"]["active"] > 1400, c)
        for s in ("prospect", "overdue", "suspended", "closed"):
            self.assertGreater(c["by_status"][s], 0, s)
        self.assertEqual((c["products"], c["accounts"], c["subscriptions"]), (17, 2000, 2000))
        count = lambda sql, p=(): self.ws.sql(sql, p)[0][0]
        self.assertEqual(count("SELECT count(*) FROM customers"), 2000)
        self.assertEqual(count("SELECT count(*) FROM devices"), c["devices"])
        self.assertEqual(count("SELECT count(*) FROM deposits"), c["deposits"])
        self.assertGreater(c["deposits"], 1500)

        # the catalog: five plans, add-ons, fees, deposits, promotions
        kinds = dict(self.ws.sql("SELECT kind, count(*) FROM products GROUP BY kind"))
        self.assertEqual(kinds, {"plan": 5, "addon": 3, "fee": 3, "deposit": 2, "promotion": 4})
        self.assertEqual([r[0] for r in self.ws.sql("SELECT code FROM products WHERE kind = 'plan' ORDER BY code")], PLANS)
        attrs = {code: json.loads(a) for code, a in self.ws.sql(
            "SELECT p.code, v.attrs FROM products p JOIN product_versions v ON v.product_id = p.id "
            "WHERE p.kind = 'plan' AND v.version = 1")}
        self.assertEqual({k: (a["download_mbps"], a["period"], a["billing"]) for k, a in attrs.items()},
                         {"FIBER100": (100, "month", "postpaid"), "FIBER300": (300, "month", "postpaid"),
                          "FIBER500": (500, "month", "postpaid"), "FIBER1000": (1000, "month", "postpaid"),
                          "FIBER500Y": (500, "year", "prepaid")})
        # everyone subscribes, every plan is sold, add-ons too
        self.assertEqual(count("SELECT count(DISTINCT product_id) FROM subscriptions"), 5)
        self.assertGreater(count("SELECT count(*) FROM subscription_items"), 100)

        # Hangzhou, a few districts, realistic people
        self.assertEqual(self.ws.sql("SELECT DISTINCT province, city FROM addresses"), [("浙江省", "杭州市")])
        self.assertTrue(3 <= count("SELECT count(DISTINCT district) FROM addresses") <= 8)
        self.assertGreater(count("SELECT count(DISTINCT community) FROM addresses"), 10)
        self.assertGreater(count("SELECT count(DISTINCT name) FROM customers"), 1500)
        self.assertEqual(count("SELECT count(*) FROM customers WHERE phone_enc IS NULL OR id_card_enc IS NULL"), 0)
        tags = dict(self.ws.sql("SELECT tag, count(*) FROM customer_tags GROUP BY tag"))
        for t in ("vip", "new_user", "business", "staff"):
            self.assertGreater(tags.get(t, 0), 0, t)
        # devices of the vendor formats, each installed at most once at a time
        self.assertEqual(count("SELECT count(*) FROM devices WHERE kind = 'onu' AND serial NOT GLOB "
                               "'[A-Z][A-Z][A-Z][A-Z][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F]'"), 0)

        # a second run: nothing of the data changes, not a byte
        before = self.everything()
        j2 = json.loads(self.ws.ok("demo", "--json").out)
        self.assertFalse(j2["data_created"])
        self.assertEqual(j2["customers"], 2000)
        self.assertEqual(self.everything(), before)

        # billed for last month: one month, no failure, the ledger agrees
        period, first_of_last, first_of_this = last_month(today)
        r = json.loads(self.ws.ok("bill", "run", "--period", period, "--json").out)
        rep = r["report"]
        self.assertEqual(rep["failed"], 0, rep)
        self.assertGreater(rep["invoiced"], 1000)
        # postpaid monthly: exactly the month, at most one bill each
        self.assertEqual(count("SELECT count(*) FROM (SELECT i.subscription_id FROM invoices i JOIN subscriptions s "
                               "ON s.id = i.subscription_id WHERE s.billing = 'postpaid' GROUP BY i.subscription_id "
                               "HAVING count(*) > 1)"), 0)
        last_day = str(first_of_this - datetime.timedelta(days=1))
        self.assertEqual(count("SELECT count(*) FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id "
                               "WHERE s.billing = 'postpaid' AND (i.period_from < ? OR i.period_to > ?)",
                               (str(first_of_last), last_day)), 0)
        self.assertGreater(count("SELECT count(*) FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id "
                                 "WHERE s.billing = 'postpaid' AND i.period_from = ?", (str(first_of_last),)), 1000)
        self.assertTrue(json.loads(self.ws.ok("ledger", "verify", "--json").out)["ok"])
        # and a second run for the month has nothing left to bill
        r = json.loads(self.ws.ok("bill", "run", "--period", period, "--json").out)
        self.assertEqual((r["report"]["invoiced"], r["report"]["failed"]), (0, 0))

    def test_same_data_in_another_database(self):
        self.ws.ok("demo")
        other = bbtest.Workspace()
        self.addCleanup(other.close)
        other.init()
        other.ok("demo")
        for table, cols in CLEAR.items():
            self.assertEqual(self.rows(table, cols), self.rows(table, cols, other), table)
        # the personal data is encrypted under each database's own key
        a = self.ws.sql("SELECT phone_enc, phone_idx FROM customers WHERE id = 1")[0]
        b = other.sql("SELECT phone_enc, phone_idx FROM customers WHERE id = 1")[0]
        self.assertNotEqual(a, b)
        self.assertEqual(json.loads(self.ws.ok("customer", "show", "C000000013", "--json").out)["phone"],
                         json.loads(other.ok("customer", "show", "C000000013", "--json").out)["phone"])
