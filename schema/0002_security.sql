-- 0002 security: roles and permissions as data, field visibility, staff
-- accounts and sessions, login throttling, the audit trail, secrets.

CREATE TABLE roles (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    builtin      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE role_permissions (
    role        TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
    permission  TEXT NOT NULL,
    PRIMARY KEY (role, permission)
);

-- Per role, how each sensitive field of a resource is shown.
CREATE TABLE field_policies (
    role      TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
    resource  TEXT NOT NULL,
    field     TEXT NOT NULL,
    level     TEXT NOT NULL CHECK (level IN ('hidden', 'masked', 'clear')),
    PRIMARY KEY (role, resource, field)
);

CREATE TABLE staff_users (
    id                   INTEGER PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,
    display_name         TEXT NOT NULL,
    role                 TEXT NOT NULL REFERENCES roles(name),
    password_hash        TEXT NOT NULL,       -- scrypt$N$r$p$salt$hash (base64)
    status               TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    email_enc            TEXT,                -- encrypted (vault)
    phone_enc            TEXT,                -- encrypted (vault)
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    locked_until         TEXT,                -- a lockout, lifted by time or by an admin
    password_changed_at  TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    created_by           TEXT NOT NULL,
    last_login_at        TEXT
);

CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,       -- SHA-256 of the cookie value
    csrf_hash     TEXT NOT NULL,              -- SHA-256 of the CSRF token
    user_id       INTEGER NOT NULL REFERENCES staff_users(id),
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,              -- absolute expiry
    source        TEXT,
    user_agent    TEXT,
    revoked_at    TEXT,
    revoked_why   TEXT
);
CREATE INDEX sessions_user ON sessions(user_id, revoked_at);

-- Failed logins per account ("user:NAME") and per client address
-- ("addr:1.2.3.4") within the current window.
CREATE TABLE login_failures (
    subject       TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    window_start  TEXT NOT NULL,
    locked_until  TEXT
);

-- The audit trail: append-only and chained (see core/audit.h).
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    role         TEXT NOT NULL,
    source       TEXT,
    request_id   TEXT,
    action       TEXT NOT NULL,
    object_type  TEXT,
    object_id    TEXT,
    diff         TEXT,              -- JSON {"before":{...},"after":{...},"detail":{...}}, sensitive values masked
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
-- No index on `at`: every index is one more page written with each
-- record, and ids grow with time anyway (export scans, rarely).
CREATE INDEX audit_log_object ON audit_log(object_type, object_id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

-- Credentials of integrations (payment channels, SMS gateway, NAS secrets),
-- encrypted with the vault.
CREATE TABLE secrets (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    value_enc   TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

-- ---------------------------------------------------------------- roles
INSERT INTO roles (name, description, builtin) VALUES
    ('admin', 'Administrator: everything', 1),
    ('billing_clerk', 'Billing clerk: invoices, payments, adjustments', 1),
    ('customer_service', 'Customer service: customers, subscriptions, tickets; reads bills', 1),
    ('technician', 'Technician: own tickets, devices, field charges', 1),
    ('analyst', 'Analyst: rules, reports, catalog; customers read-only with masked personal data', 1),
    ('auditor', 'Auditor: reads everything including the audit trail; writes nothing', 1);

-- admin's permissions are every permission of the route table (a wildcard)
INSERT INTO role_permissions (role, permission) VALUES ('admin', '*');

INSERT INTO role_permissions (role, permission) VALUES
    ('billing_clerk', 'auth.self'), ('billing_clerk', 'customer.read'), ('billing_clerk', 'subscription.read'),
    ('billing_clerk', 'catalog.read'), ('billing_clerk', 'device.read'), ('billing_clerk', 'invoice.read'),
    ('billing_clerk', 'invoice.adjust'), ('billing_clerk', 'billrun.run'), ('billing_clerk', 'payment.read'),
    ('billing_clerk', 'payment.write'), ('billing_clerk', 'payment.refund'), ('billing_clerk', 'dunning.read'),
    ('billing_clerk', 'dunning.write'), ('billing_clerk', 'report.read'),

    ('customer_service', 'auth.self'), ('customer_service', 'customer.read'), ('customer_service', 'customer.write'),
    ('customer_service', 'subscription.read'), ('customer_service', 'subscription.write'),
    ('customer_service', 'catalog.read'), ('customer_service', 'device.read'), ('customer_service', 'device.write'),
    ('customer_service', 'invoice.read'), ('customer_service', 'payment.read'), ('customer_service', 'ticket.read'),
    ('customer_service', 'ticket.write'), ('customer_service', 'dunning.read'),

    ('technician', 'auth.self'), ('technician', 'customer.read'), ('technician', 'device.read'),
    ('technician', 'device.write'), ('technician', 'ticket.read'), ('technician', 'ticket.write'),
    ('technician', 'fieldcharge.write'),

    ('analyst', 'auth.self'), ('analyst', 'rules.read'), ('analyst', 'rules.reload'), ('analyst', 'rules.call'),
    ('analyst', 'catalog.read'), ('analyst', 'catalog.write'), ('analyst', 'report.read'),
    ('analyst', 'customer.read'), ('analyst', 'subscription.read'), ('analyst', 'invoice.read'),
    ('analyst', 'payment.read'),

    ('auditor', 'auth.self'), ('auditor', 'audit.read'), ('auditor', 'rules.read'), ('auditor', 'user.read'),
    ('auditor', 'role.read'), ('auditor', 'customer.read'), ('auditor', 'subscription.read'),
    ('auditor', 'catalog.read'), ('auditor', 'device.read'), ('auditor', 'invoice.read'),
    ('auditor', 'payment.read'), ('auditor', 'ticket.read'), ('auditor', 'dunning.read'),
    ('auditor', 'report.read'), ('auditor', 'job.read');

-- -------------------------------------------------------- field policies
-- admin sees everything in clear
INSERT INTO field_policies (role, resource, field, level) VALUES
    ('admin', 'customer', 'name', 'clear'), ('admin', 'customer', 'id_card', 'clear'),
    ('admin', 'customer', 'phone', 'clear'), ('admin', 'customer', 'phone2', 'clear'),
    ('admin', 'customer', 'email', 'clear'), ('admin', 'customer', 'address', 'clear'),
    ('admin', 'customer', 'billing_address', 'clear'), ('admin', 'service_account', 'password', 'masked'),
    ('admin', 'payment_account', 'account_no', 'clear'), ('admin', 'user', 'email', 'clear'),
    ('admin', 'user', 'phone', 'clear'),

    ('billing_clerk', 'customer', 'name', 'clear'), ('billing_clerk', 'customer', 'id_card', 'masked'),
    ('billing_clerk', 'customer', 'phone', 'clear'), ('billing_clerk', 'customer', 'phone2', 'masked'),
    ('billing_clerk', 'customer', 'email', 'clear'), ('billing_clerk', 'customer', 'address', 'masked'),
    ('billing_clerk', 'customer', 'billing_address', 'clear'), ('billing_clerk', 'service_account', 'password', 'hidden'),
    ('billing_clerk', 'payment_account', 'account_no', 'masked'), ('billing_clerk', 'user', 'email', 'masked'),
    ('billing_clerk', 'user', 'phone', 'masked'),

    ('customer_service', 'customer', 'name', 'clear'), ('customer_service', 'customer', 'id_card', 'masked'),
    ('customer_service', 'customer', 'phone', 'clear'), ('customer_service', 'customer', 'phone2', 'clear'),
    ('customer_service', 'customer', 'email', 'clear'), ('customer_service', 'customer', 'address', 'clear'),
    ('customer_service', 'customer', 'billing_address', 'clear'), ('customer_service', 'service_account', 'password', 'hidden'),
    ('customer_service', 'payment_account', 'account_no', 'masked'), ('customer_service', 'user', 'email', 'masked'),
    ('customer_service', 'user', 'phone', 'masked'),

    ('technician', 'customer', 'name', 'clear'), ('technician', 'customer', 'id_card', 'hidden'),
    ('technician', 'customer', 'phone', 'clear'), ('technician', 'customer', 'phone2', 'masked'),
    ('technician', 'customer', 'email', 'hidden'), ('technician', 'customer', 'address', 'clear'),
    ('technician', 'customer', 'billing_address', 'hidden'), ('technician', 'service_account', 'password', 'hidden'),
    ('technician', 'payment_account', 'account_no', 'hidden'), ('technician', 'user', 'email', 'masked'),
    ('technician', 'user', 'phone', 'masked'),

    ('analyst', 'customer', 'name', 'masked'), ('analyst', 'customer', 'id_card', 'masked'),
    ('analyst', 'customer', 'phone', 'masked'), ('analyst', 'customer', 'phone2', 'masked'),
    ('analyst', 'customer', 'email', 'masked'), ('analyst', 'customer', 'address', 'masked'),
    ('analyst', 'customer', 'billing_address', 'masked'), ('analyst', 'service_account', 'password', 'hidden'),
    ('analyst', 'payment_account', 'account_no', 'hidden'), ('analyst', 'user', 'email', 'masked'),
    ('analyst', 'user', 'phone', 'masked'),

    ('auditor', 'customer', 'name', 'masked'), ('auditor', 'customer', 'id_card', 'masked'),
    ('auditor', 'customer', 'phone', 'masked'), ('auditor', 'customer', 'phone2', 'masked'),
    ('auditor', 'customer', 'email', 'masked'), ('auditor', 'customer', 'address', 'masked'),
    ('auditor', 'customer', 'billing_address', 'masked'), ('auditor', 'service_account', 'password', 'hidden'),
    ('auditor', 'payment_account', 'account_no', 'masked'), ('auditor', 'user', 'email', 'masked'),
    ('auditor', 'user', 'phone', 'masked');
