-- 0003 customers: the customer file, contact verification, service accounts
-- (PPPoE), devices and their installations, deposits, and the notification
-- outbox that verification codes (and later bills and reminders) go through.

CREATE TABLE customers (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused
    code               TEXT NOT NULL UNIQUE,                -- prefix, sequence, check digit: C000012347
    type               TEXT NOT NULL CHECK (type IN ('residential', 'business')),
    name               TEXT NOT NULL,                       -- in clear: searched by prefix; masked per role on output
    company_name       TEXT,
    tax_id             TEXT,                                -- unified social credit code, for invoices
    id_card_enc        TEXT,                                -- vault
    id_card_idx        TEXT,                                -- keyed hash, for lookups and uniqueness
    phone_enc          TEXT,
    phone_idx          TEXT,
    phone_verified_at  TEXT,
    phone2_enc         TEXT,
    phone2_idx         TEXT,
    email_enc          TEXT,
    status             TEXT NOT NULL DEFAULT 'prospect'
                       CHECK (status IN ('prospect', 'active', 'overdue', 'suspended', 'closed')),
    notes              TEXT,
    created_at         TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    erased_at          TEXT                                 -- personal data removed (PIPL); the records stay
);
CREATE UNIQUE INDEX customers_id_card ON customers(id_card_idx) WHERE id_card_idx IS NOT NULL;
CREATE UNIQUE INDEX customers_phone ON customers(phone_idx) WHERE phone_idx IS NOT NULL;
CREATE INDEX customers_phone2 ON customers(phone2_idx) WHERE phone2_idx IS NOT NULL;
CREATE INDEX customers_name ON customers(name);
CREATE INDEX customers_status ON customers(status);

-- Structured addresses: the service address, and a billing address when different.
CREATE TABLE addresses (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(id),
    kind         TEXT NOT NULL CHECK (kind IN ('service', 'billing')),
    province     TEXT NOT NULL,
    city         TEXT NOT NULL,
    district     TEXT NOT NULL,
    street       TEXT NOT NULL DEFAULT '',      -- street or town
    community    TEXT NOT NULL DEFAULT '',      -- residential community (小区)
    building     TEXT NOT NULL DEFAULT '',
    unit         TEXT NOT NULL DEFAULT '',
    floor        TEXT NOT NULL DEFAULT '',
    room         TEXT NOT NULL DEFAULT '',
    gis_code     TEXT,                          -- optional GIS / address-book code
    UNIQUE (customer_id, kind)
);
CREATE INDEX addresses_place ON addresses(district, street, community, building, unit, room);
CREATE INDEX addresses_community ON addresses(community, building);

CREATE TABLE customer_tags (
    customer_id  INTEGER NOT NULL REFERENCES customers(id),
    tag          TEXT NOT NULL,
    PRIMARY KEY (customer_id, tag)
);
CREATE INDEX customer_tags_tag ON customer_tags(tag, customer_id);

-- Phone verification codes: stored as keyed hashes, 5 minutes, 5 attempts.
CREATE TABLE verification_codes (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(id),
    purpose      TEXT NOT NULL,                 -- verify_phone, reset_pppoe
    target_idx   TEXT NOT NULL,                 -- keyed hash of the phone number the code went to
    code_hash    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    used_at      TEXT
);
CREATE INDEX verification_codes_customer ON verification_codes(customer_id, purpose, id);

-- Service accounts: PPPoE logins. The password is kept encrypted because
-- RADIUS needs it back.
CREATE TABLE service_accounts (
    id                   INTEGER PRIMARY KEY,
    customer_id          INTEGER NOT NULL REFERENCES customers(id),
    username             TEXT NOT NULL UNIQUE,
    password_enc         TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'throttled', 'suspended', 'closed')),
    created_at           TEXT NOT NULL,
    password_changed_at  TEXT NOT NULL
);
CREATE INDEX service_accounts_customer ON service_accounts(customer_id);

-- Devices (ONU, set-top box, router) and where they are installed.
CREATE TABLE devices (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('onu', 'stb', 'router')),
    serial      TEXT NOT NULL UNIQUE,           -- normalised: upper case, vendor prefix + hex, e.g. ZTEG12345678
    vendor      TEXT NOT NULL DEFAULT '',
    mac         TEXT UNIQUE,                    -- normalised aa:bb:cc:dd:ee:ff
    model       TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'stock' CHECK (status IN ('stock', 'installed', 'returned', 'lost', 'retired')),
    created_at  TEXT NOT NULL
);

CREATE TABLE installations (
    id                  INTEGER PRIMARY KEY,
    device_id           INTEGER NOT NULL REFERENCES devices(id),
    customer_id         INTEGER NOT NULL REFERENCES customers(id),
    service_account_id  INTEGER REFERENCES service_accounts(id),
    installed_on        TEXT NOT NULL,          -- date
    engineer            TEXT NOT NULL,
    address             TEXT NOT NULL,          -- the install address as text
    removed_on          TEXT,
    removal_reason      TEXT,                   -- swap, returned, lost, closed
    created_at          TEXT NOT NULL
);
-- a device is installed at one place at a time
CREATE UNIQUE INDEX installations_active_device ON installations(device_id) WHERE removed_on IS NULL;
CREATE INDEX installations_customer ON installations(customer_id);
CREATE INDEX installations_account ON installations(service_account_id);

-- A refundable deposit taken for a device, tied to its serial.
CREATE TABLE deposits (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(id),
    device_id    INTEGER NOT NULL REFERENCES devices(id),
    product      TEXT NOT NULL,                 -- the deposit product's code
    amount       INTEGER NOT NULL CHECK (amount >= 0),   -- fen
    status       TEXT NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'returned', 'kept', 'forfeited')),
    taken_on     TEXT NOT NULL,
    settled_on   TEXT,
    settled_by   TEXT,
    note         TEXT
);
CREATE INDEX deposits_customer ON deposits(customer_id);
CREATE UNIQUE INDEX deposits_held_device ON deposits(device_id) WHERE status = 'held';

-- The transactional outbox: a message is written in the same transaction
-- as the change that causes it and delivered afterwards.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    created_at       TEXT NOT NULL,
    event            TEXT NOT NULL,             -- verification_code, invoice_issued, reminder, ...
    channel          TEXT NOT NULL,             -- log, sms, email, wechat
    customer_id      INTEGER REFERENCES customers(id),
    recipient_enc    TEXT,                      -- vault: a phone number or address
    payload          TEXT NOT NULL,             -- JSON variables for the template
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    sent_at          TEXT,
    dedupe_key       TEXT UNIQUE
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
