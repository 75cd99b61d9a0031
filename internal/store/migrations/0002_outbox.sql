-- 0002: the notification outbox.
--
-- Every notification (Slack message, e-mail, JIRA comment...) is written
-- here first and delivered later by a worker, so that a deployment never
-- waits on Slack, SMTP or JIRA and nothing is lost when they are down or
-- gitmon restarts. key is the idempotency key: enqueueing the same key
-- twice keeps the first row. external_id is what the far side answered
-- (a Slack ts, a ticket key), for threading and follow-ups.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL UNIQUE,
    payload         TEXT NOT NULL DEFAULT 'null',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    external_id     TEXT NOT NULL DEFAULT ''
);

-- DueOutbox: unsent items by due time.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE sent_at IS NULL;
