-- 0004 catalog and subscriptions: products with effective-dated versions
-- priced by Lua rules, subscriptions with add-ons, scheduled changes, and
-- one-time charges waiting for a bill.

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('plan', 'addon', 'fee', 'deposit', 'promotion')),
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'retired')),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);

-- What a product is and costs from a date on. A bill for a period uses the
-- version in force then; a new price is a new version, never an edit.
CREATE TABLE product_versions (
    id                  INTEGER PRIMARY KEY,
    product_id          INTEGER NOT NULL REFERENCES products(id),
    version             INTEGER NOT NULL,
    effective_from      TEXT NOT NULL,              -- date, inclusive
    price               INTEGER NOT NULL,           -- fen
    price_includes_tax  INTEGER NOT NULL DEFAULT 1, -- retail prices are tax-inclusive
    tax_category        TEXT NOT NULL,              -- internet, installation, equipment, deposit, ...
    rule                TEXT NOT NULL,              -- "module.function" that prices it
    params              TEXT NOT NULL DEFAULT '{}', -- JSON, validated against the rule's schema
    attrs               TEXT NOT NULL DEFAULT '{}', -- JSON, by kind: bandwidth and period of a plan, plans an add-on fits...
    regions             TEXT NOT NULL DEFAULT '[]', -- JSON list of address prefixes where it is sold; [] = everywhere
    tags                TEXT NOT NULL DEFAULT '[]', -- JSON list of customer tags it is sold to; [] = everyone
    created_at          TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    UNIQUE (product_id, version),
    UNIQUE (product_id, effective_from)
);

CREATE TABLE subscriptions (
    id                  INTEGER PRIMARY KEY,
    customer_id         INTEGER NOT NULL REFERENCES customers(id),
    product_id          INTEGER NOT NULL REFERENCES products(id),   -- the plan
    service_account_id  INTEGER REFERENCES service_accounts(id),
    status              TEXT NOT NULL DEFAULT 'active'
                        CHECK (status IN ('pending', 'active', 'suspended', 'terminated')),
    billing             TEXT NOT NULL CHECK (billing IN ('prepaid', 'postpaid')),
    period              TEXT NOT NULL CHECK (period IN ('month', 'quarter', 'half_year', 'year')),
    start_date          TEXT NOT NULL,
    contract_end        TEXT,               -- end of the minimum term, if any
    anchor_day          INTEGER NOT NULL CHECK (anchor_day BETWEEN 1 AND 31),  -- postpaid: the day periods start
    paid_through        TEXT,               -- prepaid: service is paid up to and including this date
    next_bill_date      TEXT NOT NULL,
    end_date            TEXT,               -- set when terminated
    created_at          TEXT NOT NULL,
    created_by          TEXT NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions(customer_id);
CREATE INDEX subscriptions_next_bill ON subscriptions(status, next_bill_date);

-- Add-ons of a subscription, each with its own dates.
CREATE TABLE subscription_items (
    id               INTEGER PRIMARY KEY,
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions(id),
    product_id       INTEGER NOT NULL REFERENCES products(id),
    quantity         INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    start_date       TEXT NOT NULL,
    end_date         TEXT                   -- inclusive last day, when removed
);
CREATE INDEX subscription_items_sub ON subscription_items(subscription_id);

-- Every change to a subscription: applied at once or scheduled.
CREATE TABLE subscription_changes (
    id               INTEGER PRIMARY KEY,
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions(id),
    kind             TEXT NOT NULL CHECK (kind IN ('create', 'upgrade', 'downgrade', 'suspend', 'resume', 'terminate',
                                                   'addon_add', 'addon_remove')),
    effective_date   TEXT NOT NULL,
    from_product_id  INTEGER REFERENCES products(id),
    to_product_id    INTEGER REFERENCES products(id),
    status           TEXT NOT NULL CHECK (status IN ('scheduled', 'applied', 'cancelled')),
    fee              INTEGER NOT NULL DEFAULT 0,   -- early-termination fee in fen, from the contract rule
    rules_version    TEXT,
    note             TEXT,
    requested_at     TEXT NOT NULL,
    requested_by     TEXT NOT NULL,
    applied_at       TEXT
);
CREATE INDEX subscription_changes_sub ON subscription_changes(subscription_id, id);
CREATE INDEX subscription_changes_due ON subscription_changes(status, effective_date);

-- One-time charges (installation, repair visit, a technician's field charge)
-- waiting for the next bill.
CREATE TABLE pending_charges (
    id               INTEGER PRIMARY KEY,
    customer_id      INTEGER NOT NULL REFERENCES customers(id),
    subscription_id  INTEGER REFERENCES subscriptions(id),
    product_id       INTEGER REFERENCES products(id),
    description      TEXT NOT NULL,
    quantity         INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    unit_price       INTEGER NOT NULL,             -- fen, tax-inclusive
    tax_category     TEXT NOT NULL,
    source           TEXT NOT NULL DEFAULT 'manual',   -- manual, install, ticket
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    billed_on        TEXT,                         -- set when a bill takes it (billing issue)
    cancelled_at     TEXT
);
CREATE INDEX pending_charges_open ON pending_charges(customer_id) WHERE billed_on IS NULL AND cancelled_at IS NULL;
