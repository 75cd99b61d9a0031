-- 0006: signed commits (SPEC §5 Signatures, §7 signer).
--
-- records.signer is who signed the record's commit, JSON
-- {"type", "key", "identity"}, or NULL when it was not verified.
ALTER TABLE records ADD COLUMN signer TEXT;

-- commit_objects keeps the raw object of every commit step 1 verified, as
-- its SHA names it, so that a decision made without the Git object store
-- (gitmon retry beside serve) verifies it again against today's keys and
-- clock. merged_in is, for a merge, the JSON list of the commits it brings
-- in from its other parents (policy.merges: all); NULL when unknown.
CREATE TABLE commit_objects (
    repository TEXT NOT NULL,
    sha        TEXT NOT NULL,
    object     BLOB NOT NULL,
    merged_in  TEXT,
    PRIMARY KEY (repository, sha)
);
