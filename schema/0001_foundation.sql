-- 0001 foundation: API tokens, rule-set versions, the scheduler's memory.
-- Instants are UTC text "YYYY-MM-DDTHH:MM:SS.mmmZ"; calendar dates "YYYY-MM-DD".

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,   -- SHA-256 of the token; the token itself is never stored
    prefix       TEXT NOT NULL,          -- first characters, to recognise a token in lists
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

-- A rule set version is the SHA-256 of the whole rules folder.
CREATE TABLE rule_versions (
    version     TEXT PRIMARY KEY,
    file_count  INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);

-- File contents, stored once however many versions share them.
CREATE TABLE rule_blobs (
    sha256   TEXT PRIMARY KEY,
    content  TEXT NOT NULL
);

CREATE TABLE rule_files (
    version  TEXT NOT NULL REFERENCES rule_versions(version),
    path     TEXT NOT NULL,
    sha256   TEXT NOT NULL REFERENCES rule_blobs(sha256),
    PRIMARY KEY (version, path)
);

-- Every time a version went live: when, by whom, how.
CREATE TABLE rule_loads (
    id         INTEGER PRIMARY KEY,
    version    TEXT NOT NULL REFERENCES rule_versions(version),
    loaded_at  TEXT NOT NULL,
    loaded_by  TEXT NOT NULL,
    source     TEXT NOT NULL            -- start, sighup, api, cli, watch
);
CREATE INDEX rule_loads_version ON rule_loads(version);

-- The scheduler's memory: the last scheduled time each job ran for, and a
-- lease so that only one daemon runs a job at a time.
CREATE TABLE job_state (
    job                 TEXT PRIMARY KEY,
    last_scheduled_for  TEXT,
    lease_holder        TEXT,
    lease_until         TEXT
);

CREATE TABLE job_runs (
    id             INTEGER PRIMARY KEY,
    job            TEXT NOT NULL,
    scheduled_for  TEXT,                -- NULL for a run on demand
    trigger        TEXT NOT NULL CHECK (trigger IN ('schedule', 'catchup', 'manual')),
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    status         TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    message        TEXT
);
CREATE INDEX job_runs_job ON job_runs(job, id);
