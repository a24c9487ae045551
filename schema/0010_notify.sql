-- 0010 notification delivery: the dispatcher's record of every attempt,
-- what the gateway called a message it took, the customers' WeChat
-- openids, and who may read and retry messages.
--
-- A message's status: pending (not tried yet) -> sent, or failed (an
-- attempt failed; tried again at next_attempt_at) -> ... -> dead (after
-- notify.max_attempts, or an answer that no retry can change). A worker
-- claims a due message by moving its next_attempt_at past a lease, so a
-- worker that dies leaves it due again when the lease ends; the rendered
-- text is never stored (the payload and the rules version reproduce it,
-- and a one-time code is not copied outside its message), nor is the
-- recipient in clear.

ALTER TABLE outbox ADD COLUMN provider_id TEXT;      -- the gateway's id of the message it took (or our Message-ID)
ALTER TABLE outbox ADD COLUMN driver TEXT;           -- what delivered it: log, sms_http, smtp, wechat_tpl
ALTER TABLE outbox ADD COLUMN updated_at TEXT;

CREATE INDEX outbox_claim ON outbox(channel, status, next_attempt_at);
CREATE INDEX outbox_customer ON outbox(customer_id, id);
CREATE INDEX outbox_event ON outbox(event, id);

CREATE TABLE outbox_attempts (
    id             INTEGER PRIMARY KEY,
    message_id     INTEGER NOT NULL REFERENCES outbox(id),
    attempt        INTEGER NOT NULL,                 -- 1, 2, ... (0: postponed before any attempt)
    at             TEXT NOT NULL,
    driver         TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('sent', 'failed', 'dead', 'postponed')),
    status_code    INTEGER,                          -- the HTTP status or SMTP reply code, when one came
    provider_id    TEXT,
    error          TEXT,
    duration_ms    INTEGER,
    rules_version  TEXT                              -- the templates that rendered it
);
CREATE INDEX outbox_attempts_message ON outbox_attempts(message_id, id);

-- The WeChat openid a customer follows the ISP's official account with.
CREATE TABLE customer_wechat (
    customer_id  INTEGER PRIMARY KEY REFERENCES customers(id),
    openid_enc   TEXT NOT NULL,                      -- vault place customer_wechat.openid
    updated_at   TEXT NOT NULL,
    updated_by   TEXT NOT NULL
);

INSERT INTO role_permissions (role, permission) VALUES
    ('billing_clerk', 'message.read'), ('billing_clerk', 'message.retry'),
    ('customer_service', 'message.read'), ('customer_service', 'message.retry'),
    ('auditor', 'message.read');

-- A message's recipient is the customer's phone, e-mail or openid: each
-- role sees it as it sees the customer's own (resource "message").
INSERT INTO field_policies (role, resource, field, level)
    SELECT role, 'message', field, level FROM field_policies
    WHERE resource = 'customer' AND field IN ('phone', 'email');
INSERT INTO field_policies (role, resource, field, level)
    SELECT DISTINCT role, 'message', 'openid', CASE role WHEN 'admin' THEN 'clear' ELSE 'masked' END
    FROM field_policies WHERE resource = 'customer';
