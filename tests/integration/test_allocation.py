"""What a payment settles beyond its own invoice is the rule's to order
(rules/payments.lua, payments.allocation_order): the oldest bill first by
default, the newest first when an analyst says so; a rule that fails or
names an invoice it was not offered settles nothing more — the money is
recorded and stays the customer's credit. October's and November's bills
are 129.00 each."""

import os
import shutil

from bbtest import BBTestCase, SOURCE_DIR
from test_billing import code_of, seed


class Allocation(BBTestCase):
    def setUp(self):
        super().setUp()
        seed(self.ws, 1, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        self.ws.ok("bill", "run", "--period", "2026-11")
        self.oct, self.nov = [n for (n,) in self.ws.sql("SELECT number FROM invoices ORDER BY period_from")]

    def rules_with(self, body):
        d = self.ws.path("rules-alloc")
        shutil.copytree(os.path.join(SOURCE_DIR, "rules"), d)
        with open(os.path.join(d, "payments.lua"), "w") as f:
            f.write(body)
        return d

    def status(self):
        return dict(self.ws.sql("SELECT number, status FROM invoices"))

    def test_oldest_first_by_default(self):
        self.ws.ok("payment", "record", code_of(1), "--amount", "129.00", "--receipt", "R1",
                   "--rules", os.path.join(SOURCE_DIR, "rules"))
        self.assertEqual(self.status(), {self.oct: "paid", self.nov: "open"})

    def test_the_rule_decides(self):
        d = self.rules_with('''local M = {}
function M.allocation_order(ctx)
  local list = {}
  for i, inv in ipairs(ctx.open) do list[i] = inv.number end
  table.sort(list, function(a, b) return a > b end)
  return { order = list }
end
return M
''')
        self.ws.ok("payment", "record", code_of(1), "--amount", "129.00", "--receipt", "R1", "--rules", d)
        self.assertEqual(self.status(), {self.oct: "open", self.nov: "paid"})

    def test_a_bad_order_leaves_credit(self):
        d = self.rules_with('''local M = {}
function M.allocation_order(ctx) return { order = { "INV-1999-000001" } } end
return M
''')
        self.ws.ok("payment", "record", code_of(1), "--amount", "129.00", "--receipt", "R1", "--rules", d)
        self.assertEqual(self.status(), {self.oct: "open", self.nov: "open"})
        self.assertEqual(self.ws.sql("SELECT amount FROM payments"), [(12900,)])
        self.ws.ok("ledger", "verify")
