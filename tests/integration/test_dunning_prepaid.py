"""The ladder on prepaid terms: the renewal bill is made seven days before
the term ends and falls due on the first day of the next term, so the
reminders come 5 and 3 days before the paid-through date ends; a customer
who paid the renewal (or whose credit covered it when it was made) is
never touched, however late the pass runs; one who did not goes through
the ladder from the first unpaid day."""

import json

from bbtest import BBTestCase
from test_billing import code_of


def seed_prepaid(ws, n):
    """n customers, each with an annual prepaid subscription at 1,188.00
    paid through 2026-11-30 (the renewal is billed on 2026-11-24)."""
    ws.sql("INSERT INTO products (id, code, kind, name, status, created_at, created_by) VALUES "
           "(1, 'FIB500Y', 'plan', 'Fiber 500 annual', 'active', 't', 't')")
    ws.sql("INSERT INTO product_versions (product_id, version, effective_from, price, price_includes_tax, tax_category, "
           "rule, params, attrs, created_at, created_by) VALUES (1, 1, '2020-01-01', 118800, 1, 'internet', "
           "'tariffs.monthly', '{}', '{\"period\":\"year\",\"billing\":\"prepaid\",\"min_contract_months\":0}', 't', 't')")
    for i in range(1, n + 1):
        ws.sql("INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) "
               "VALUES (?, ?, 'residential', 'Test', 'active', '2025-01-01T00:00:00.000Z', 't', 't')", (i, code_of(i)))
        ws.sql("INSERT INTO subscriptions (id, customer_id, product_id, status, billing, period, start_date, anchor_day, "
               "paid_through, next_bill_date, created_at, created_by) VALUES (?, ?, 1, 'active', 'prepaid', 'year', "
               "'2025-12-01', 1, '2026-11-30', '2026-11-24', 't', 't')", (i, i))


class PrepaidLadder(BBTestCase):
    def run_on(self, date):
        return json.loads(self.ws.ok("dunning", "run", "--date", date, "--json").out)

    def stages(self, customer):
        return self.ws.sql("SELECT stage, status FROM dunning_actions WHERE customer_id = ? ORDER BY id", (customer,))

    def test_renewals(self):
        seed_prepaid(self.ws, 3)
        # customer 3 has paid ahead: 1,200.00 of credit before the renewal is made
        self.ws.ok("payment", "record", code_of(3), "--amount", "1200.00", "--receipt", "R-ADV")
        self.ws.ok("bill", "run", "--date", "2026-11-24")
        rows = self.ws.sql("SELECT customer_id, due_date, gross, status FROM invoices ORDER BY customer_id")
        self.assertEqual(rows, [(1, "2026-12-01", 118800, "open"), (2, "2026-12-01", 118800, "open"),
                                (3, "2026-12-01", 118800, "paid")])
        # five days before the paid-through date ends (and the renewal is due)
        r = self.run_on("2026-11-26")
        self.assertEqual((r["invoices"], r["acted"]), (2, 2))
        self.assertEqual(self.stages(1), [("reminder_5", "done")])
        # customer 1 renews at the counter; customer 2 does not
        self.ws.ok("payment", "record", code_of(1), "--amount", "1188.00", "--receipt", "R1")
        for day in ("2026-11-28", "2026-12-01", "2026-12-02", "2026-12-04", "2026-12-08", "2027-01-15"):
            self.run_on(day)
        self.assertEqual(self.stages(1), [("reminder_5", "done")])      # paid: never touched again
        self.assertEqual(self.stages(3), [])                             # paid up ahead: never touched
        self.assertEqual([s for s, _ in self.stages(2)],
                         ["reminder_5", "reminder_3", "due", "overdue_1", "throttle_3", "suspend_7"])
        self.assertEqual(self.ws.sql("SELECT id, status FROM customers ORDER BY id"),
                         [(1, "active"), (2, "suspended"), (3, "active")])
        self.assertEqual(self.ws.sql("SELECT customer_id FROM collection_tasks"), [(2,)])
