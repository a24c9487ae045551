-- 0009 network enforcement: a PPPoE account's desired state on the network,
-- the change feed the network plugin (RADIUS) follows, and what it applied.
--
-- The desired state is service_accounts.status (active, throttled,
-- suspended, closed) with, while throttled, the throttle rate in kbit/s
-- (download and upload, the dunning rule's `rate = "2M/2M"` normalised by
-- netstate_rate_parse). The rate of an active line is its plan's
-- (product_versions.attrs download_mbps / upload_mbps of the version in
-- force).

ALTER TABLE service_accounts ADD COLUMN throttle_down_kbps INTEGER
    CHECK (throttle_down_kbps IS NULL OR throttle_down_kbps > 0);
ALTER TABLE service_accounts ADD COLUMN throttle_up_kbps INTEGER
    CHECK (throttle_up_kbps IS NULL OR throttle_up_kbps > 0);

-- The live subscription of an account, looked up for every account a sync
-- touches.
CREATE INDEX subscriptions_account ON subscriptions(service_account_id);

-- One row once network enforcement is set up (the first sync makes it):
-- from then on the triggers below record every change. `cursor` is the
-- last change applied; `baseline` is 1 once every account has been
-- brought to its desired state (the first, full pass).
CREATE TABLE network_sync (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    cursor       INTEGER NOT NULL DEFAULT 0,
    baseline     INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    last_run_at  TEXT,                         -- the last pass, whatever its outcome
    last_ok_at   TEXT,                         -- the last pass the plugin took
    last_error   TEXT,                         -- why the last pass failed (NULL: it did not)
    applied      INTEGER NOT NULL DEFAULT 0,   -- accounts applied so far
    plan_day     TEXT                          -- the last day whose new plan versions were queued
);

-- The change feed: an account whose desired record may have changed. Filled
-- by triggers, so that every code path that changes an account, its
-- subscription or its plan is picked up; read in id order from the cursor
-- and deleted once applied. AUTOINCREMENT: an id is never reused after the
-- rows before it are deleted, so the cursor never skips one.
CREATE TABLE network_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL,
    reason      TEXT NOT NULL,     -- account, subscription, plan, plan_day, resync
    at          TEXT NOT NULL
);

-- What was applied for each account, and how its live sessions took it.
CREATE TABLE network_accounts (
    account_id      INTEGER PRIMARY KEY REFERENCES service_accounts(id),
    username        TEXT NOT NULL,               -- the name it was applied under
    state           TEXT NOT NULL,
    down_kbps       INTEGER NOT NULL DEFAULT 0,  -- 0: no rate limit sent
    up_kbps         INTEGER NOT NULL DEFAULT 0,
    applied_at      TEXT NOT NULL,
    sessions        INTEGER NOT NULL DEFAULT 0,  -- live sessions acted on the last time
    session_result  TEXT NOT NULL DEFAULT 'none' CHECK (session_result IN ('none', 'ok', 'failed')),
    session_error   TEXT                         -- why a NAS did not take it (no answer, NAK and its Error-Cause)
);
CREATE INDEX network_accounts_failed ON network_accounts(session_result) WHERE session_result = 'failed';

CREATE TRIGGER network_account_new AFTER INSERT ON service_accounts
WHEN EXISTS (SELECT 1 FROM network_sync)
BEGIN
    INSERT INTO network_changes (account_id, reason, at)
    VALUES (NEW.id, 'account', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;

-- password_changed_at rather than password_enc: re-encrypting under a new
-- key (keys rotate) changes the stored form, not the password.
CREATE TRIGGER network_account_changed
AFTER UPDATE OF username, status, password_changed_at, throttle_down_kbps, throttle_up_kbps ON service_accounts
WHEN EXISTS (SELECT 1 FROM network_sync)
 AND (OLD.username IS NOT NEW.username OR OLD.status IS NOT NEW.status
      OR OLD.password_changed_at IS NOT NEW.password_changed_at
      OR OLD.throttle_down_kbps IS NOT NEW.throttle_down_kbps OR OLD.throttle_up_kbps IS NOT NEW.throttle_up_kbps)
BEGIN
    INSERT INTO network_changes (account_id, reason, at)
    VALUES (NEW.id, 'account', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;

CREATE TRIGGER network_subscription_new AFTER INSERT ON subscriptions
WHEN NEW.service_account_id IS NOT NULL AND EXISTS (SELECT 1 FROM network_sync)
BEGIN
    INSERT INTO network_changes (account_id, reason, at)
    VALUES (NEW.service_account_id, 'subscription', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;

-- A plan change (upgrade, downgrade), a move to another account, a
-- suspension, resumption or termination: the old account and the new.
CREATE TRIGGER network_subscription_changed
AFTER UPDATE OF product_id, service_account_id, status ON subscriptions
WHEN EXISTS (SELECT 1 FROM network_sync)
 AND (OLD.product_id IS NOT NEW.product_id OR OLD.service_account_id IS NOT NEW.service_account_id
      OR OLD.status IS NOT NEW.status)
BEGIN
    INSERT INTO network_changes (account_id, reason, at)
    SELECT OLD.service_account_id, 'subscription', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE OLD.service_account_id IS NOT NULL;
    INSERT INTO network_changes (account_id, reason, at)
    SELECT NEW.service_account_id, 'subscription', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE NEW.service_account_id IS NOT NULL AND NEW.service_account_id IS NOT OLD.service_account_id;
END;

-- A new version of a plan (its rate may change): every account on it. A
-- version that starts on a later day is picked up again that day by the
-- sync (reason plan_day).
CREATE TRIGGER network_plan_version AFTER INSERT ON product_versions
WHEN EXISTS (SELECT 1 FROM network_sync)
BEGIN
    INSERT INTO network_changes (account_id, reason, at)
    SELECT DISTINCT s.service_account_id, 'plan', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    FROM subscriptions s
    WHERE s.product_id = NEW.product_id AND s.service_account_id IS NOT NULL AND s.status <> 'terminated';
END;
