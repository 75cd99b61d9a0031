-- 0004: dead letters (SPEC §9 "The outbox gives up").
--
-- An outbox item that no retry can deliver (a permanent error, or 24 h of
-- failures since it was enqueued) becomes a dead letter: dead_at is set,
-- last_error says why, and the item is never tried again. It stays in the
-- table so that its key still keeps a re-enqueued notification out, and
-- so that `status` can count it.
ALTER TABLE outbox ADD COLUMN dead_at TEXT;

-- DueOutbox: items still to deliver, by due time. Dead letters are out of
-- the index, so that they never stand in the way of other items.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE sent_at IS NULL AND dead_at IS NULL;

-- DeadLetters: a count that does not scan the delivered items.
CREATE INDEX outbox_dead ON outbox (dead_at) WHERE dead_at IS NOT NULL;
