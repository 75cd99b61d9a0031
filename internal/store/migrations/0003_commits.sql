-- 0003: what a commit leaves behind is bounded.
--
-- processed: every commit whose records were written on a branch, so that
-- a commit is processed once per environment whatever the branch does
-- (force-pushed away and back, re-created).
--
-- messages: a commit message is kept once per commit (capped by the
-- daemon), not once per record or per attributed field. Records and
-- attributions name commits by SHA.
--
-- services.broken: the commits since the service's last descriptor that
-- parsed whose descriptor did not; what changed across them is attributed
-- to them when the descriptor parses again.
CREATE TABLE processed (
    repository  TEXT NOT NULL,
    environment TEXT NOT NULL,
    sha         TEXT NOT NULL,
    PRIMARY KEY (repository, environment, sha)
) WITHOUT ROWID;

INSERT OR IGNORE INTO processed (repository, environment, sha)
    SELECT DISTINCT repository, environment, commit_sha FROM records WHERE commit_sha != '';
INSERT OR IGNORE INTO processed (repository, environment, sha)
    SELECT repository, environment, last_processed FROM branches WHERE last_processed != '';

CREATE TABLE messages (
    repository TEXT NOT NULL,
    sha        TEXT NOT NULL,
    message    TEXT NOT NULL,
    PRIMARY KEY (repository, sha)
) WITHOUT ROWID;

INSERT OR IGNORE INTO messages (repository, sha, message)
    SELECT repository, commit_sha, message FROM records WHERE commit_sha != '' ORDER BY seq;
UPDATE records SET message = '';

ALTER TABLE services ADD COLUMN broken TEXT NOT NULL DEFAULT '[]';
