-- 0006 billing: billing runs, invoices and their lines, credit notes, the
-- gapless number series, payments and what they settle, and the customer
-- ledger. Money is integer fen, tax included unless a column says net.
-- Documents that were issued never change; corrections are new rows.

-- Gapless numbering: a series' next number is taken in the transaction that
-- finalizes the document, so a rollback gives it back and drafts never take
-- one. Series are named by the code ("INV-2026", "CN-2026").
CREATE TABLE number_series (
    series  TEXT PRIMARY KEY,
    next    INTEGER NOT NULL DEFAULT 1 CHECK (next >= 1)
);

-- One billing pass. It bills every subscription due on or before as_of,
-- each in its own transaction; the unique key on invoices makes a second
-- pass (or a pass restarted after a crash) create nothing twice.
CREATE TABLE bill_runs (
    id             INTEGER PRIMARY KEY,
    as_of          TEXT NOT NULL,                  -- date: what is due on or before it is billed
    period         TEXT,                           -- 'YYYY-MM' when the run was asked for by period
    trigger        TEXT NOT NULL CHECK (trigger IN ('schedule', 'catchup', 'manual', 'api')),
    status         TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    rules_version  TEXT NOT NULL,
    due            INTEGER NOT NULL DEFAULT 0,     -- subscriptions found due when it started
    invoiced       INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    skipped        INTEGER NOT NULL DEFAULT 0,     -- billed already (by an earlier pass) or nothing to bill
    report         TEXT,                           -- JSON, when finished: totals by plan and tax rate, failures
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    requested_by   TEXT NOT NULL
);
CREATE INDEX bill_runs_started ON bill_runs(started_at);

-- A subscription whose bill could not be made in a run, and why: the rule,
-- its file and line, the message.
CREATE TABLE bill_run_failures (
    run_id           INTEGER NOT NULL REFERENCES bill_runs(id),
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions(id),
    customer_id      INTEGER NOT NULL REFERENCES customers(id),
    period_from      TEXT,
    code             TEXT NOT NULL,                -- rule_failed, bad_output, ...
    message          TEXT NOT NULL,
    rule             TEXT,
    file             TEXT,
    line             INTEGER,
    at               TEXT NOT NULL,
    PRIMARY KEY (run_id, subscription_id)
);

CREATE TABLE invoices (
    id               INTEGER PRIMARY KEY,
    number           TEXT UNIQUE,                  -- allocated when finalized; NULL while a draft
    customer_id      INTEGER NOT NULL REFERENCES customers(id),
    subscription_id  INTEGER REFERENCES subscriptions(id),
    period_from      TEXT,                         -- the service period billed (inclusive)
    period_to        TEXT,
    status           TEXT NOT NULL CHECK (status IN ('draft', 'open', 'partially_paid', 'paid', 'void', 'written_off')),
    issue_date       TEXT,
    due_date         TEXT,
    currency         TEXT NOT NULL DEFAULT 'CNY',
    net              INTEGER NOT NULL,             -- totals of the charge lines (credit lines excluded)
    tax              INTEGER NOT NULL,
    gross            INTEGER NOT NULL CHECK (gross = net + tax),
    paid             INTEGER NOT NULL DEFAULT 0 CHECK (paid >= 0),      -- allocated payments and credit
    credited         INTEGER NOT NULL DEFAULT 0 CHECK (credited >= 0),  -- credit notes against it
    written_off      INTEGER NOT NULL DEFAULT 0 CHECK (written_off >= 0),
    rules_version    TEXT NOT NULL,
    bill_run_id      INTEGER REFERENCES bill_runs(id),
    bill_to          TEXT NOT NULL DEFAULT '{}',   -- JSON as on the day: name, company, tax id, addresses
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    finalized_at     TEXT,
    voided_at        TEXT,
    voided_on        TEXT,                         -- business day of the void (its reversing ledger entry)
    void_reason      TEXT,
    written_off_on   TEXT,                         -- business day of the write-off (its ledger entry)
    -- the subscription as it was before this bill moved it on, so that a
    -- void of its latest bill puts it back and the period is billed again
    prev_billed_through  TEXT,
    prev_next_bill_date  TEXT,
    draft_refs       TEXT,                         -- a draft's changes and billed_through (JSON), taken when issued
    CHECK (paid + credited + written_off <= gross OR gross < 0)
);
-- one bill per subscription and period, whatever runs and reruns happen; a
-- voided bill frees its period for a corrected one
CREATE UNIQUE INDEX invoices_period ON invoices(subscription_id, period_from)
    WHERE subscription_id IS NOT NULL AND status <> 'void';
CREATE INDEX invoices_customer ON invoices(customer_id, id);
CREATE INDEX invoices_open ON invoices(customer_id, issue_date) WHERE status IN ('open', 'partially_paid');
CREATE INDEX invoices_run ON invoices(bill_run_id);

CREATE TABLE invoice_lines (
    id                  INTEGER PRIMARY KEY,
    invoice_id          INTEGER NOT NULL REFERENCES invoices(id),
    seq                 INTEGER NOT NULL,             -- 1, 2, ... in the order the steps made them
    kind                TEXT NOT NULL CHECK (kind IN ('recurring', 'addon', 'one_time', 'proration', 'discount',
                                                      'deposit', 'credit', 'fee', 'adjustment')),
    description         TEXT NOT NULL,
    product_code        TEXT,
    product_version     INTEGER,
    quantity            INTEGER NOT NULL DEFAULT 1,
    unit_price          INTEGER NOT NULL,             -- fen, tax included
    amount              INTEGER NOT NULL,             -- fen, tax included; negative for discounts and credits
    tax_category        TEXT NOT NULL,
    tax_rate            INTEGER NOT NULL CHECK (tax_rate BETWEEN 0 AND 100),   -- percent
    tax                 INTEGER NOT NULL,
    net                 INTEGER NOT NULL CHECK (net + tax = amount),
    period_from         TEXT,
    period_to           TEXT,
    step                TEXT NOT NULL,                -- the billing step that made it
    rule                TEXT NOT NULL,                -- "module.function" of that step
    detail              TEXT,                         -- JSON: what the rule said (days, percentages, reasons)
    pending_charge_id   INTEGER REFERENCES pending_charges(id),
    deposit_id          INTEGER REFERENCES deposits(id),
    UNIQUE (invoice_id, seq)
);

CREATE TABLE credit_notes (
    id            INTEGER PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE,
    invoice_id    INTEGER NOT NULL REFERENCES invoices(id),
    customer_id   INTEGER NOT NULL REFERENCES customers(id),
    reason        TEXT NOT NULL,
    net           INTEGER NOT NULL,
    tax           INTEGER NOT NULL,
    gross         INTEGER NOT NULL CHECK (gross = net + tax AND gross > 0),
    issue_date    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL
);
CREATE INDEX credit_notes_invoice ON credit_notes(invoice_id);
CREATE INDEX credit_notes_customer ON credit_notes(customer_id, id);

CREATE TABLE credit_note_lines (
    credit_note_id   INTEGER NOT NULL REFERENCES credit_notes(id),
    invoice_line_id  INTEGER NOT NULL REFERENCES invoice_lines(id),
    amount           INTEGER NOT NULL,                -- fen, tax included, same sign as the line
    tax              INTEGER NOT NULL,
    net              INTEGER NOT NULL CHECK (net + tax = amount),
    PRIMARY KEY (credit_note_id, invoice_line_id)
);
CREATE INDEX credit_note_lines_line ON credit_note_lines(invoice_line_id);

-- Money received. The channels (counter, Alipay, WeChat Pay, bank transfer)
-- fill it; a channel's own transaction id is unique, so a notification that
-- comes twice is credited once.
CREATE TABLE payments (
    id              INTEGER PRIMARY KEY,
    customer_id     INTEGER NOT NULL REFERENCES customers(id),
    channel         TEXT NOT NULL,
    channel_txn_id  TEXT,                            -- the channel's transaction id (receipt number at the counter)
    amount          INTEGER NOT NULL CHECK (amount > 0),
    refunded        INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    status          TEXT NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'held')),
    entry_date      TEXT NOT NULL,                   -- the business day it counts on
    received_at     TEXT NOT NULL,
    note            TEXT,
    created_by      TEXT NOT NULL,
    UNIQUE (channel, channel_txn_id)
);
CREATE INDEX payments_customer ON payments(customer_id, id);

-- What settles an invoice: part of a payment, or the customer's credit
-- (overpayments, credit notes and credits given back, applied at billing).
-- Undone allocations stay, marked, so the history reads true.
CREATE TABLE allocations (
    id           INTEGER PRIMARY KEY,
    invoice_id   INTEGER NOT NULL REFERENCES invoices(id),
    payment_id   INTEGER REFERENCES payments(id),    -- NULL: from the customer's credit
    amount       INTEGER NOT NULL CHECK (amount > 0),
    created_at   TEXT NOT NULL,
    reversed_at  TEXT,
    reason       TEXT
);
CREATE INDEX allocations_invoice ON allocations(invoice_id);
CREATE INDEX allocations_payment ON allocations(payment_id) WHERE payment_id IS NOT NULL;

-- The customer's account: append-only. amount > 0 means the customer owes
-- more (or, on the deposit account, that more of their money is held). The
-- balance is the sum; credit available = open invoice amounts - balance.
CREATE TABLE ledger_entries (
    id              INTEGER PRIMARY KEY,
    customer_id     INTEGER NOT NULL REFERENCES customers(id),
    account         TEXT NOT NULL DEFAULT 'customer' CHECK (account IN ('customer', 'deposit')),
    kind            TEXT NOT NULL CHECK (kind IN ('invoice', 'payment', 'credit_note', 'adjustment', 'refund',
                                                  'deposit_held', 'deposit_returned', 'deposit_forfeited',
                                                  'write_off')),
    amount          INTEGER NOT NULL,
    entry_date      TEXT NOT NULL,                   -- business day, operator's time zone
    invoice_id      INTEGER REFERENCES invoices(id),
    credit_note_id  INTEGER REFERENCES credit_notes(id),
    payment_id      INTEGER REFERENCES payments(id),
    deposit_id      INTEGER REFERENCES deposits(id),
    reason          TEXT,                            -- adjustments and write-offs
    approved_by     TEXT,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE INDEX ledger_customer ON ledger_entries(customer_id, account, id);
CREATE INDEX ledger_day ON ledger_entries(entry_date, kind);

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only: post a correcting entry');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only: post a correcting entry');
END;

-- What a bill has taken: a subscription's last billed day, the changes,
-- charges and deposits already on an invoice.
ALTER TABLE subscriptions ADD COLUMN billed_through TEXT;
ALTER TABLE subscription_changes ADD COLUMN invoice_id INTEGER REFERENCES invoices(id);
ALTER TABLE pending_charges ADD COLUMN invoice_id INTEGER REFERENCES invoices(id);
ALTER TABLE deposits ADD COLUMN invoice_id INTEGER REFERENCES invoices(id);

-- An invoice names the customer and where the service is: the same
-- personal data as the customer file, shown per role the same way.
INSERT INTO field_policies (role, resource, field, level) VALUES
    ('admin', 'invoice', 'customer_name', 'clear'), ('admin', 'invoice', 'service_address', 'clear'),
    ('admin', 'invoice', 'billing_address', 'clear'),
    ('billing_clerk', 'invoice', 'customer_name', 'clear'), ('billing_clerk', 'invoice', 'service_address', 'masked'),
    ('billing_clerk', 'invoice', 'billing_address', 'clear'),
    ('customer_service', 'invoice', 'customer_name', 'clear'), ('customer_service', 'invoice', 'service_address', 'clear'),
    ('customer_service', 'invoice', 'billing_address', 'clear'),
    ('technician', 'invoice', 'customer_name', 'hidden'), ('technician', 'invoice', 'service_address', 'hidden'),
    ('technician', 'invoice', 'billing_address', 'hidden'),
    ('analyst', 'invoice', 'customer_name', 'masked'), ('analyst', 'invoice', 'service_address', 'masked'),
    ('analyst', 'invoice', 'billing_address', 'masked'),
    ('auditor', 'invoice', 'customer_name', 'masked'), ('auditor', 'invoice', 'service_address', 'masked'),
    ('auditor', 'invoice', 'billing_address', 'masked');

-- Issued documents never change: corrections are credit notes, settlements
-- are allocations, and what an invoice or credit note said stays as it was
-- said. The code keeps to this; the triggers make it hold for any other
-- writer too. What moves on an issued invoice is only how it is settled
-- (paid, credited, written off, status) and the record of a void.
CREATE TRIGGER invoices_issued_fixed BEFORE UPDATE ON invoices
WHEN OLD.status <> 'draft' AND (
     NEW.number IS NOT OLD.number OR NEW.customer_id IS NOT OLD.customer_id
  OR NEW.subscription_id IS NOT OLD.subscription_id OR NEW.period_from IS NOT OLD.period_from
  OR NEW.period_to IS NOT OLD.period_to OR NEW.issue_date IS NOT OLD.issue_date
  OR NEW.due_date IS NOT OLD.due_date OR NEW.currency IS NOT OLD.currency OR NEW.net IS NOT OLD.net
  OR NEW.tax IS NOT OLD.tax OR NEW.gross IS NOT OLD.gross OR NEW.rules_version IS NOT OLD.rules_version
  OR NEW.bill_to IS NOT OLD.bill_to OR NEW.created_at IS NOT OLD.created_at
  OR NEW.finalized_at IS NOT OLD.finalized_at OR NEW.status = 'draft')
BEGIN
    SELECT RAISE(ABORT, 'invoices: an issued invoice never changes (correct it with a credit note)');
END;
CREATE TRIGGER invoices_issued_kept BEFORE DELETE ON invoices
WHEN OLD.status <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'invoices: an issued invoice is never deleted (void it or credit it)');
END;
CREATE TRIGGER invoice_lines_fixed BEFORE UPDATE ON invoice_lines
WHEN (SELECT status FROM invoices WHERE id = OLD.invoice_id) <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'invoice_lines: the lines of an issued invoice never change');
END;
CREATE TRIGGER invoice_lines_kept BEFORE DELETE ON invoice_lines
WHEN (SELECT status FROM invoices WHERE id = OLD.invoice_id) <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'invoice_lines: the lines of an issued invoice are never deleted');
END;
CREATE TRIGGER credit_notes_fixed BEFORE UPDATE ON credit_notes
BEGIN
    SELECT RAISE(ABORT, 'credit_notes: an issued credit note never changes');
END;
CREATE TRIGGER credit_notes_kept BEFORE DELETE ON credit_notes
BEGIN
    SELECT RAISE(ABORT, 'credit_notes: an issued credit note is never deleted');
END;
CREATE TRIGGER credit_note_lines_fixed BEFORE UPDATE ON credit_note_lines
BEGIN
    SELECT RAISE(ABORT, 'credit_note_lines: the lines of a credit note never change');
END;
CREATE TRIGGER credit_note_lines_kept BEFORE DELETE ON credit_note_lines
BEGIN
    SELECT RAISE(ABORT, 'credit_note_lines: the lines of a credit note are never deleted');
END;
-- an allocation is undone by marking it, never by rewriting or removing it
CREATE TRIGGER allocations_fixed BEFORE UPDATE ON allocations
WHEN NEW.invoice_id IS NOT OLD.invoice_id OR NEW.payment_id IS NOT OLD.payment_id OR NEW.amount IS NOT OLD.amount
  OR NEW.created_at IS NOT OLD.created_at OR OLD.reversed_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'allocations: an allocation is undone by marking it reversed, once');
END;
CREATE TRIGGER allocations_kept BEFORE DELETE ON allocations
BEGIN
    SELECT RAISE(ABORT, 'allocations: an allocation is never deleted (mark it reversed)');
END;
-- what was received stays received: refunds and holds are recorded beside it
CREATE TRIGGER payments_fixed BEFORE UPDATE ON payments
WHEN NEW.customer_id IS NOT OLD.customer_id OR NEW.channel IS NOT OLD.channel
  OR NEW.channel_txn_id IS NOT OLD.channel_txn_id OR NEW.amount IS NOT OLD.amount
  OR NEW.received_at IS NOT OLD.received_at OR NEW.entry_date IS NOT OLD.entry_date
BEGIN
    SELECT RAISE(ABORT, 'payments: a received payment never changes (refund it)');
END;
CREATE TRIGGER payments_kept BEFORE DELETE ON payments
BEGIN
    SELECT RAISE(ABORT, 'payments: a received payment is never deleted (refund it)');
END;
