package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Freeze sets the freeze of f.Environment ("" is a halt), replacing one
// already set, and records a freeze event naming its actor.
func (s *SQLite) Freeze(ctx context.Context, f Freeze) error {
	if err := errors.Join(bounded("reason", f.Reason, MaxReason), bounded("actor", f.Actor, MaxActor)); err != nil {
		return fmt.Errorf("freeze %s: %w", freezeTarget(f.Environment), err)
	}
	now := s.now()
	if f.Since.IsZero() {
		f.Since = now
	}
	var until any
	if f.Until != nil {
		until = formatTime(*f.Until)
	}
	err := s.write(ctx, func(tx *cachedTx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO freezes (environment, reason, actor, since, until) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (environment) DO UPDATE SET reason = excluded.reason, actor = excluded.actor,
				since = excluded.since, until = excluded.until`,
			f.Environment, f.Reason, f.Actor, formatTime(f.Since), until); err != nil {
			return err
		}
		msg := fmt.Sprintf("%s froze %s: %s", f.Actor, freezeTarget(f.Environment), f.Reason)
		if f.Until != nil {
			msg += " (until " + f.Until.UTC().Format(time.RFC3339) + ")"
		}
		return insertEvent(ctx, tx, Event{Environment: f.Environment, Kind: EventFreeze, Message: msg, Actor: f.Actor}, now)
	})
	if err != nil {
		return fmt.Errorf("freeze %s: %w", freezeTarget(f.Environment), err)
	}
	return nil
}

// Unfreeze lifts the freeze of env ("" lifts the halt) and records an
// unfreeze event; it returns the freeze it lifted, false when none was set.
func (s *SQLite) Unfreeze(ctx context.Context, env, actor string) (Freeze, bool, error) {
	if err := bounded("actor", actor, MaxActor); err != nil {
		return Freeze{}, false, fmt.Errorf("unfreeze %s: %w", freezeTarget(env), err)
	}
	now := s.now()
	var (
		f     Freeze
		found bool
	)
	err := s.write(ctx, func(tx *cachedTx) error {
		fs, err := queryFreezes(ctx, tx, `WHERE environment = ?`, env)
		if err != nil || len(fs) == 0 {
			found = false
			return err
		}
		f, found = fs[0], true
		if _, err := tx.ExecContext(ctx, `DELETE FROM freezes WHERE environment = ?`, env); err != nil {
			return err
		}
		return insertEvent(ctx, tx, Event{Environment: env, Kind: EventUnfreeze, Actor: actor,
			Message: fmt.Sprintf("%s lifted the freeze of %s set by %s (%s)", actor, freezeTarget(env), f.Actor, f.Reason)}, now)
	})
	if err != nil {
		return Freeze{}, false, fmt.Errorf("unfreeze %s: %w", freezeTarget(env), err)
	}
	return f, found, nil
}

// Freezes returns every freeze set, the halt first.
func (s *SQLite) Freezes(ctx context.Context) ([]Freeze, error) {
	var out []Freeze
	err := s.read(ctx, func(tx *cachedTx) error {
		var err error
		out, err = queryFreezes(ctx, tx, `ORDER BY environment`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read freezes: %w", err)
	}
	return out, nil
}

func queryFreezes(ctx context.Context, tx *cachedTx, tail string, args ...any) ([]Freeze, error) {
	rows, err := tx.QueryContext(ctx, `SELECT environment, reason, actor, since, until FROM freezes `+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Freeze
	for rows.Next() {
		var (
			f            Freeze
			since        string
			until        sql.NullString
			dec          decoder
			sinceNotNull = sql.NullString{Valid: true}
		)
		if err := rows.Scan(&f.Environment, &f.Reason, &f.Actor, &since, &until); err != nil {
			return nil, err
		}
		sinceNotNull.String = since
		f.Since = dec.time(sinceNotNull)
		f.Until = dec.timePtr(until)
		if dec.err != nil {
			return nil, fmt.Errorf("freeze of %q: %w", f.Environment, dec.err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// bounded refuses an operator's text longer than max bytes.
func bounded(what, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("the %s is %d bytes; at most %d are kept: %w", what, len(v), max, ErrTooLong)
	}
	return nil
}

func freezeTarget(env string) string {
	if env == "" {
		return "every environment (halt)"
	}
	return env
}

// PendingAfter returns the pending records after seq, oldest first.
func (s *SQLite) PendingAfter(ctx context.Context, seq int64) ([]*Record, error) {
	return s.queryRecords(ctx, `status = ? AND seq > ?`, []any{StatusPending, seq}, "ASC", 0)
}

// Artifact returns the records of (repo, env, service) at version (any
// version when it is ""), newest first, without their stages
// (records_artifact): with a version the promotion gate reads a handful of
// rows whatever the length of the history.
func (s *SQLite) Artifact(ctx context.Context, repo, env, service, version string) ([]*Record, error) {
	sel := `SELECT ` + recordColumns + ` FROM records
		WHERE repository = ? AND environment = ? AND service = ? AND version = ? ORDER BY seq DESC`
	args := []any{repo, env, service, version}
	if version == "" {
		// The service's history, not the branch's (records_repo_env).
		sel = `SELECT ` + recordColumns + ` FROM records INDEXED BY records_env_service
			WHERE environment = ? AND service = ? AND repository = ? ORDER BY seq DESC`
		args = []any{env, service, repo}
	}
	var out []*Record
	err := s.read(ctx, func(tx *cachedTx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, sel, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read the records of %s %s in %s: %w", service, version, env, err)
	}
	return out, nil
}

// Retry inserts r, a retry of record of, with a retry event, if of is
// still the last record of its service that started and nothing of the
// service is pending or running; otherwise ErrNotRetryable.
func (s *SQLite) Retry(ctx context.Context, r *Record, of string) error {
	if err := bounded("actor", r.Actor, MaxActor); err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	if r.ID == "" {
		r.ID = NewID()
	}
	now := s.now()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	err := s.write(ctx, func(tx *cachedTx) error {
		var last string
		// The service's history (records_env_service), not the branch's.
		err := tx.QueryRowContext(ctx, `SELECT id FROM records INDEXED BY records_env_service
			WHERE environment = ? AND service = ? AND repository = ? AND started_at IS NOT NULL ORDER BY seq DESC LIMIT 1`,
			r.Environment, r.Service, r.Repository).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) || err == nil && last != of {
			return fmt.Errorf("%w: record %s is not the last release of %s in %s", ErrNotRetryable, of, r.Service, r.Environment)
		}
		if err != nil {
			return err
		}
		var busy int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM records INDEXED BY records_env_service
			WHERE environment = ? AND service = ? AND repository = ? AND status IN (?, ?)`,
			r.Environment, r.Service, r.Repository, StatusPending, StatusRunning).Scan(&busy); err != nil {
			return err
		}
		if busy > 0 {
			return fmt.Errorf("%w: %s in %s has a record pending or running", ErrNotRetryable, r.Service, r.Environment)
		}
		seq, err := insertRecord(ctx, tx, r)
		if err != nil {
			return err
		}
		r.Seq = seq
		return insertEvent(ctx, tx, Event{Repository: r.Repository, Environment: r.Environment, Kind: EventRetry,
			Commit: r.Commit, Actor: r.Actor,
			Message: fmt.Sprintf("%s retried %s %s (record %s) as record %s", r.Actor, r.Service, r.Version, of, r.ID)}, now)
	})
	if err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	return nil
}
