-- 0005: promotion gates, windows, freezes and operator actions.
--
-- records.trigger and records.actor say what asked for a record (SPEC §7:
-- commit, retry, initial) and who (a retry's actor). records.evidence is
-- what the record was decided with (the upstream record that let it
-- through, break-glass), JSON, written at the decision and never changed.
-- records.wake_at is when a record waiting at a gate is looked at again
-- (a soak or a window that ends, a wait that runs out).
ALTER TABLE records ADD COLUMN trigger TEXT NOT NULL DEFAULT 'commit';
ALTER TABLE records ADD COLUMN actor TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN evidence TEXT NOT NULL DEFAULT 'null';
ALTER TABLE records ADD COLUMN wake_at TEXT;

-- The promotion gate: an environment's records of one service and
-- version (the artifact's first field in the default), newest first.
CREATE INDEX records_artifact ON records (repository, environment, service, version, seq);

-- freezes: an operator's deny (SPEC §6 freeze). environment '' is a halt:
-- every environment is frozen. until is NULL for "until unfreeze".
CREATE TABLE freezes (
    environment TEXT NOT NULL PRIMARY KEY,
    reason      TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL DEFAULT '',
    since       TEXT NOT NULL,
    until       TEXT
) WITHOUT ROWID;
