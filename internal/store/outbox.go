package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Outbox item kinds. The outbox is open to more.
const (
	OutboxSlack       = "slack"
	OutboxEmail       = "email"
	OutboxJiraComment = "jira_comment"
	OutboxJiraFailure = "jira_failure"
	OutboxSCMStatus   = "scm_status"
)

// OutboxItem is one notification waiting to be delivered, or delivered.
// Notifications are written to the outbox first and delivered by a worker
// later, so that deployments never wait on Slack, SMTP or JIRA.
type OutboxItem struct {
	ID   int64  // assigned by the store
	Kind string // Outbox*
	// Key identifies the notification: enqueueing a key already in the
	// outbox does nothing, so a retried decision never notifies twice.
	Key string
	// Payload is the kind's message, as JSON.
	Payload json.RawMessage
	// Attempts counts failed deliveries; LastError is the newest failure.
	Attempts  int
	LastError string
	// NextAttemptAt is when the item is due; Enqueue makes a zero one
	// due at once.
	NextAttemptAt time.Time
	CreatedAt     time.Time
	// SentAt is set once delivered, with ExternalID: what the far side
	// answered (a Slack ts, a ticket key).
	SentAt     *time.Time
	ExternalID string
	// DeadAt is set once the outbox gave up on the item (a dead letter):
	// it is never tried again, and LastError says why.
	DeadAt *time.Time
}

// Sent reports whether the item was delivered.
func (it OutboxItem) Sent() bool { return it.SentAt != nil }

// Dead reports whether the item is a dead letter.
func (it OutboxItem) Dead() bool { return it.DeadAt != nil }

// Enqueue adds items to the outbox in one transaction. An item whose key
// is already there (sent or not) is ignored.
func (s *SQLite) Enqueue(ctx context.Context, items ...OutboxItem) error {
	for _, it := range items {
		if it.Kind == "" || it.Key == "" {
			return fmt.Errorf("enqueue: outbox item needs a kind and a key (%q, %q)", it.Kind, it.Key)
		}
		if len(it.Payload) > 0 && !json.Valid(it.Payload) {
			return fmt.Errorf("enqueue %s: payload is not JSON", it.Key)
		}
	}
	if len(items) == 0 {
		return nil
	}
	now := s.now()
	return s.write(ctx, func(tx *cachedTx) error {
		for _, it := range items {
			payload := string(it.Payload)
			if payload == "" {
				payload = "null"
			}
			created := it.CreatedAt
			if created.IsZero() {
				created = now
			}
			next := it.NextAttemptAt
			if next.IsZero() {
				next = created
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (kind, key, payload, next_attempt_at, created_at)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
				it.Kind, it.Key, payload, formatTime(next), formatTime(created)); err != nil {
				return fmt.Errorf("enqueue %s: %w", it.Key, err)
			}
		}
		return nil
	})
}

const outboxColumns = `id, kind, key, payload, attempts, next_attempt_at, last_error, created_at, sent_at, external_id, dead_at`

func scanOutbox(row interface{ Scan(...any) error }) (OutboxItem, error) {
	var (
		it            OutboxItem
		payload       string
		next, created string
		sent, dead    sql.NullString
	)
	if err := row.Scan(&it.ID, &it.Kind, &it.Key, &payload, &it.Attempts, &next, &it.LastError, &created, &sent,
		&it.ExternalID, &dead); err != nil {
		return it, err
	}
	it.Payload = json.RawMessage(payload)
	var err error
	if it.NextAttemptAt, err = parseTime(next); err != nil {
		return it, err
	}
	if it.CreatedAt, err = parseTime(created); err != nil {
		return it, err
	}
	if it.SentAt, err = parseTimePtr(sent); err != nil {
		return it, err
	}
	if it.DeadAt, err = parseTimePtr(dead); err != nil {
		return it, err
	}
	return it, nil
}

// DueOutbox returns at most limit items to deliver (neither sent nor
// dead) that are due at now, the earliest due first (then in enqueue
// order). limit <= 0 means no limit. With kinds, only items of those
// kinds: a worker asks for the kinds it can send, so that items of
// another kind never fill its batches.
func (s *SQLite) DueOutbox(ctx context.Context, now time.Time, limit int, kinds ...string) ([]OutboxItem, error) {
	if limit <= 0 {
		limit = -1
	}
	q := `SELECT ` + outboxColumns + ` FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ?`
	args := []any{formatTime(now)}
	if len(kinds) > 0 {
		q += ` AND kind IN (?` + strings.Repeat(`, ?`, len(kinds)-1) + `)`
		for _, k := range kinds {
			args = append(args, k)
		}
	}
	q += ` ORDER BY next_attempt_at, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("due outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("due outbox: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due outbox: %w", err)
	}
	return out, nil
}

// MarkSent records that item id was delivered at at, with what the far
// side answered. Marking an item sent again keeps the first delivery.
// It fails with ErrNotFound for an unknown id.
func (s *SQLite) MarkSent(ctx context.Context, id int64, externalID string, at time.Time) error {
	return s.markOutbox(ctx, id, "sent", `UPDATE outbox SET sent_at = ?, external_id = ?, last_error = ''
		WHERE id = ? AND sent_at IS NULL`, formatTime(at), externalID, id)
}

// MarkFailed records a failed delivery of item id: one more attempt, the
// error, and when to try again. A sent item or a dead letter is left
// alone. It fails with ErrNotFound for an unknown id.
func (s *SQLite) MarkFailed(ctx context.Context, id int64, errText string, next time.Time) error {
	return s.markOutbox(ctx, id, "failed", `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
		WHERE id = ? AND sent_at IS NULL AND dead_at IS NULL`, errText, formatTime(next), id)
}

// MarkDead makes item id a dead letter at at: one more attempt, the
// error that made the outbox give up, and no attempt ever again. A sent
// item is left alone, and so is a dead letter (the first reason stays).
// It reports whether this call made the item dead, and fails with
// ErrNotFound for an unknown id.
func (s *SQLite) MarkDead(ctx context.Context, id int64, errText string, at time.Time) (bool, error) {
	var changed bool
	err := s.write(ctx, func(tx *cachedTx) error {
		var err error
		changed, err = markOutboxTx(ctx, tx, id, "dead", `UPDATE outbox SET attempts = attempts + 1, last_error = ?, dead_at = ?
			WHERE id = ? AND sent_at IS NULL AND dead_at IS NULL`, errText, formatTime(at), id)
		return err
	})
	return changed, err
}

// DeadLetters counts the outbox's dead letters.
func (s *SQLite) DeadLetters(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE dead_at IS NOT NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// markOutbox runs one UPDATE of an outbox item in a write transaction.
func (s *SQLite) markOutbox(ctx context.Context, id int64, what, query string, args ...any) error {
	return s.write(ctx, func(tx *cachedTx) error {
		_, err := markOutboxTx(ctx, tx, id, what, query, args...)
		return err
	})
}

// markOutboxTx runs query on item id and reports whether it changed the
// row; an id that is not in the outbox is ErrNotFound.
func markOutboxTx(ctx context.Context, tx *cachedTx, id int64, what, query string, args ...any) (bool, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("outbox %d %s: %w", id, what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("outbox %d %s: %w", id, what, err)
	}
	if n > 0 {
		return true, nil
	}
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM outbox WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("outbox %d: %w", id, ErrNotFound)
	} else if err != nil {
		return false, fmt.Errorf("outbox %d %s: %w", id, what, err)
	}
	return false, nil
}

// OutboxItem returns the item with key; false if there is none.
func (s *SQLite) OutboxItem(ctx context.Context, key string) (OutboxItem, bool, error) {
	it, err := scanOutbox(s.r.QueryRowContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return OutboxItem{}, false, nil
	}
	if err != nil {
		return OutboxItem{}, false, fmt.Errorf("outbox %s: %w", key, err)
	}
	return it, true, nil
}

// Unannounced returns the ids of the records created at or after since
// whose outbox key prefix+id+":"+status is not in the outbox, newest
// first. It walks the records back from the newest and stops at the
// first one created before since, so its cost follows the records of
// the period, not the history.
func (s *SQLite) Unannounced(ctx context.Context, prefix string, since time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.id, r.created_at,
		EXISTS (SELECT 1 FROM outbox o WHERE o.key = ? || r.id || ':' || r.status)
		FROM records r ORDER BY r.seq DESC`, prefix)
	if err != nil {
		return nil, fmt.Errorf("unannounced records: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var (
			id, created string
			announced   bool
		)
		if err := rows.Scan(&id, &created, &announced); err != nil {
			return nil, fmt.Errorf("unannounced records: %w", err)
		}
		at, err := parseTime(created)
		if err != nil {
			return nil, fmt.Errorf("unannounced records: record %s: %w", id, err)
		}
		if at.Before(since) {
			break
		}
		if !announced {
			ids = append(ids, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unannounced records: %w", err)
	}
	return ids, nil
}
