-- 0001: branches, services, records with their stages, events.
--
-- Times are TEXT in UTC, RFC 3339 with nanoseconds, fixed width so that they
-- sort as strings. Lists and descriptors are JSON text; a NULL descriptor
-- means none.

-- A row exists once gitmon has seen the branch (Branch.Known).
CREATE TABLE branches (
    repository     TEXT NOT NULL,
    environment    TEXT NOT NULL,
    branch         TEXT NOT NULL DEFAULT '',
    last_processed TEXT NOT NULL DEFAULT '',
    paused         TEXT NOT NULL DEFAULT '',
    anchor         TEXT NOT NULL DEFAULT '',
    paused_at      TEXT,
    PRIMARY KEY (repository, environment)
) WITHOUT ROWID;

CREATE TABLE services (
    repository            TEXT NOT NULL,
    environment           TEXT NOT NULL,
    service               TEXT NOT NULL,
    present               INTEGER NOT NULL DEFAULT 0,
    current               TEXT,
    attribution           TEXT NOT NULL DEFAULT '{}',
    last_good             TEXT,
    last_good_commit      TEXT NOT NULL DEFAULT '',
    last_attempted        TEXT,
    last_attempted_commit TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (repository, environment, service)
) WITHOUT ROWID;

-- Claims: which repositories hold a service in an environment.
CREATE INDEX services_claims ON services (environment, service) WHERE present = 1;

CREATE TABLE records (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    repository       TEXT NOT NULL,
    environment      TEXT NOT NULL,
    service          TEXT NOT NULL,
    action           TEXT NOT NULL,
    version          TEXT NOT NULL DEFAULT '',
    previous_version TEXT NOT NULL DEFAULT '',
    commit_sha       TEXT NOT NULL DEFAULT '',
    author           TEXT NOT NULL DEFAULT '',
    committer        TEXT NOT NULL DEFAULT '',
    verified         INTEGER NOT NULL DEFAULT 0,
    tickets          TEXT NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL,
    phase            TEXT NOT NULL DEFAULT '',
    reasons          TEXT NOT NULL DEFAULT '[]',
    commits          TEXT NOT NULL DEFAULT '[]',
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    pending_since    TEXT,
    descriptor       TEXT,
    message          TEXT NOT NULL DEFAULT '',
    diff             TEXT NOT NULL DEFAULT 'null',
    emails           TEXT NOT NULL DEFAULT 'null',
    slack            TEXT NOT NULL DEFAULT 'null',
    dropped          TEXT NOT NULL DEFAULT 'null'
);

-- Pending and Running, and history --status.
CREATE INDEX records_status ON records (status, seq);
-- history --env E [--service S].
CREATE INDEX records_env_service ON records (environment, service, seq);
-- history of one repository.
CREATE INDEX records_repo_env ON records (repository, environment, seq);

CREATE TABLE stages (
    record_id   TEXT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    runner      TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    message     TEXT NOT NULL DEFAULT '',
    output      TEXT NOT NULL DEFAULT '',
    url         TEXT NOT NULL DEFAULT '',
    run_id      TEXT NOT NULL DEFAULT '',
    handle      TEXT,
    PRIMARY KEY (record_id, idx)
) WITHOUT ROWID;

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    repository  TEXT NOT NULL DEFAULT '',
    environment TEXT NOT NULL DEFAULT '',
    branch      TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL DEFAULT '',
    commit_sha  TEXT NOT NULL DEFAULT '',
    commits     TEXT NOT NULL DEFAULT '[]',
    actor       TEXT NOT NULL DEFAULT ''
);

CREATE INDEX events_env ON events (environment, id);
CREATE INDEX events_repo_env ON events (repository, environment, id);
