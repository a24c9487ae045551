-- Payment orders and the notifications of the payment channels (Alipay,
-- WeChat Pay and any channel plugin, docs/PLUGINS.md).

-- What we asked a channel to collect: our out_trade_no, the exact amount,
-- for an invoice (or a renewal), until it expires. A notification settles
-- the order it names, and only with that amount.
CREATE TABLE payment_orders (
    id            INTEGER PRIMARY KEY,
    out_trade_no  TEXT NOT NULL UNIQUE,
    channel       TEXT NOT NULL,
    customer_id   INTEGER NOT NULL REFERENCES customers(id),
    invoice_id    INTEGER REFERENCES invoices(id),
    amount        INTEGER NOT NULL CHECK (amount > 0),            -- fen
    status        TEXT NOT NULL CHECK (status IN ('open', 'paid', 'held', 'expired', 'closed')),
    expires_at    TEXT NOT NULL,
    pay_url       TEXT,                                            -- the channel's pay link or QR content
    payment_id    INTEGER REFERENCES payments(id),
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    settled_at    TEXT
);
CREATE INDEX payment_orders_open ON payment_orders(expires_at) WHERE status = 'open';
CREATE INDEX payment_orders_invoice ON payment_orders(invoice_id);
CREATE INDEX payment_orders_customer ON payment_orders(customer_id, id);

-- Every verified notification, as received (headers and body kept for
-- audit), with what it did. Refused ones change nothing and go to the log
-- only: an unauthenticated route must not fill the database.
CREATE TABLE payment_notifications (
    id              INTEGER PRIMARY KEY,
    channel         TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    source          TEXT NOT NULL,
    headers         TEXT NOT NULL,            -- JSON object
    body            TEXT NOT NULL,
    fields          TEXT NOT NULL,            -- JSON: what the plugin decoded
    outcome         TEXT NOT NULL CHECK (outcome IN ('credited', 'duplicate', 'held', 'ignored')),
    reason          TEXT,                     -- why held or ignored
    out_trade_no    TEXT,
    channel_txn_id  TEXT,
    amount          INTEGER,
    order_id        INTEGER REFERENCES payment_orders(id),
    payment_id      INTEGER REFERENCES payments(id)
);
CREATE INDEX payment_notifications_txn ON payment_notifications(channel, channel_txn_id);
CREATE INDEX payment_notifications_held ON payment_notifications(id) WHERE outcome = 'held';
