-- The collection ladder (rules/dunning.lua): what each stage did for each
-- unpaid bill. One row per (invoice, stage) - the unique key is what makes
-- a pass that runs twice, late, or after a crash act once.
CREATE TABLE dunning_actions (
    id             INTEGER PRIMARY KEY,
    invoice_id     INTEGER NOT NULL REFERENCES invoices(id),
    customer_id    INTEGER NOT NULL REFERENCES customers(id),
    stage          TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('done', 'skipped')),
    actions        TEXT NOT NULL DEFAULT '[]',   -- JSON: what the rule asked, as carried out
    rules_version  TEXT NOT NULL,
    acted_on       TEXT NOT NULL,                -- the business day of the pass
    at             TEXT NOT NULL,
    UNIQUE (invoice_id, stage)
);
CREATE INDEX dunning_actions_customer ON dunning_actions(customer_id, id);

-- Staff's work on a customer's unpaid bills: one task per bill.
CREATE TABLE collection_tasks (
    id              INTEGER PRIMARY KEY,
    customer_id     INTEGER NOT NULL REFERENCES customers(id),
    invoice_id      INTEGER NOT NULL UNIQUE REFERENCES invoices(id),
    priority        TEXT NOT NULL CHECK (priority IN ('low', 'high')),
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    assigned_to     TEXT,
    promised_until  TEXT,                        -- a promise to pay pauses the ladder until then
    notes           TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX collection_tasks_open ON collection_tasks(status, priority) WHERE status = 'open';
CREATE INDEX collection_tasks_customer ON collection_tasks(customer_id, status);
