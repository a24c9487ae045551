"""Issued documents never change, whoever writes to the database: the
triggers of schema/0006 refuse any change to what an issued invoice, its
lines, a credit note, an allocation or a received payment said, while the
settlement columns the application moves (paid, credited, status, an
allocation's reversal) still move. A bill, a payment and a credit note are
made through the real binary first."""

import sqlite3

from bbtest import BBTestCase
from test_billing import code_of, seed


class IssuedDocuments(BBTestCase):
    def setUp(self):
        super().setUp()
        seed(self.ws, 1, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        self.ws.ok("payment", "record", code_of(1), "--amount", "100.00", "--receipt", "R1")
        self.number = self.ws.sql("SELECT number FROM invoices")[0][0]
        self.ws.ok("invoice", "credit", self.number, "--lines", "1:10.00", "--reason", "outage")

    def refused(self, sql, message):
        con = sqlite3.connect(self.ws.db)
        try:
            with self.assertRaises(sqlite3.DatabaseError) as cm:
                con.execute(sql)
            self.assertIn(message, str(cm.exception))
        finally:
            con.close()

    def test_issued_invoice_is_fixed(self):
        before = self.ws.sql("SELECT * FROM invoices")
        for sql in ("UPDATE invoices SET gross = gross + 100, net = net + 100",
                    "UPDATE invoices SET due_date = '2027-01-31'",
                    "UPDATE invoices SET number = 'INV-2026-999999'",
                    "UPDATE invoices SET bill_to = '{}'",
                    "UPDATE invoices SET status = 'draft'"):
            self.refused(sql, "an issued invoice never changes")
        self.refused("DELETE FROM invoices", "never deleted")
        self.refused("UPDATE invoice_lines SET amount = amount + 1, net = net + 1", "never change")
        self.refused("DELETE FROM invoice_lines", "never deleted")
        self.assertEqual(self.ws.sql("SELECT * FROM invoices"), before)
        # the settlement moves: that is the application's own business
        self.ws.sql("UPDATE invoices SET status = 'paid' WHERE number = ?", (self.number,))

    def test_credit_notes_payments_and_allocations_are_fixed(self):
        self.refused("UPDATE credit_notes SET reason = 'other'", "never changes")
        self.refused("DELETE FROM credit_notes", "never deleted")
        self.refused("UPDATE credit_note_lines SET amount = amount", "never change")
        self.refused("DELETE FROM credit_note_lines", "never deleted")
        self.refused("UPDATE payments SET amount = 1", "never changes")
        self.refused("DELETE FROM payments", "never deleted")
        self.refused("UPDATE allocations SET amount = 1", "undone by marking it reversed")
        self.refused("DELETE FROM allocations", "never deleted")
        # an allocation is reversed by marking it, once
        self.ws.sql("UPDATE allocations SET reversed_at = 't', reason = 'test' WHERE id = (SELECT min(id) FROM allocations)")
        self.refused("UPDATE allocations SET reversed_at = 'again' WHERE id = (SELECT min(id) FROM allocations)",
                     "undone by marking it reversed")
        self.ws.sql("UPDATE payments SET note = 'checked'")   # a note is not what was received
