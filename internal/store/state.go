package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
)

const branchColumns = `repository, environment, branch, last_processed, paused, anchor, paused_at`

func scanBranch(row interface{ Scan(...any) error }) (Branch, error) {
	var (
		b        Branch
		pausedAt sql.NullString
	)
	if err := row.Scan(&b.Repository, &b.Environment, &b.Branch, &b.LastProcessed, &b.Paused, &b.Anchor, &pausedAt); err != nil {
		return b, err
	}
	b.Known = true
	var err error
	b.PausedAt, err = parseNullTime(pausedAt)
	return b, err
}

// Branch returns the state of a branch; Known is false if never seen.
func (s *SQLite) Branch(ctx context.Context, repo, env string) (Branch, error) {
	b, err := scanBranch(s.r.QueryRowContext(ctx,
		`SELECT `+branchColumns+` FROM branches WHERE repository = ? AND environment = ?`, repo, env))
	if errors.Is(err, sql.ErrNoRows) {
		return Branch{Repository: repo, Environment: env}, nil
	}
	if err != nil {
		return Branch{}, fmt.Errorf("read branch %s/%s: %w", repo, env, err)
	}
	return b, nil
}

const serviceColumns = `repository, environment, service, present, current, attribution,
	last_good, last_good_commit, last_attempted, last_attempted_commit, broken`

// scanService reads a service row; the SHAs of the commits whose messages
// it needs are added to want (see fillMessages).
func scanService(row interface{ Scan(...any) error }, want map[string]bool) (Service, error) {
	var (
		sv                       Service
		attribution, broken      string
		current, good, attempted sql.NullString
	)
	if err := row.Scan(&sv.Repository, &sv.Environment, &sv.Service, &sv.Present, &current, &attribution,
		&good, &sv.LastGoodCommit, &attempted, &sv.LastAttemptedCommit, &broken); err != nil {
		return sv, err
	}
	var d decoder
	sv.Current = d.descriptor(current)
	sv.LastGood = d.descriptor(good)
	sv.LastAttempted = d.descriptor(attempted)
	if d.err == nil {
		sv.Attribution, sv.Broken, d.err = decodeAttribution(attribution, broken, want)
	}
	if d.err != nil {
		return sv, fmt.Errorf("service %s/%s/%s: %w", sv.Repository, sv.Environment, sv.Service, d.err)
	}
	return sv, nil
}

// Services returns the services of a (repository, environment), by name.
func (s *SQLite) Services(ctx context.Context, repo, env string) ([]Service, error) {
	var out []Service
	err := s.read(ctx, func(tx *cachedTx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+serviceColumns+` FROM services
			WHERE repository = ? AND environment = ? ORDER BY service`, repo, env)
		if err != nil {
			return err
		}
		defer rows.Close()
		want := map[string]bool{}
		for rows.Next() {
			sv, err := scanService(rows, want)
			if err != nil {
				return err
			}
			out = append(out, sv)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		return fillMessages(ctx, tx, repo, out, want)
	})
	if err != nil {
		return nil, fmt.Errorf("read services of %s/%s: %w", repo, env, err)
	}
	return out, nil
}

// Service returns one service; if there is none, a Service that names it
// with Present false and nothing else.
func (s *SQLite) Service(ctx context.Context, repo, env, service string) (Service, error) {
	var sv Service
	err := s.read(ctx, func(tx *cachedTx) error {
		want := map[string]bool{}
		var err error
		sv, err = scanService(tx.QueryRowContext(ctx, `SELECT `+serviceColumns+` FROM services
			WHERE repository = ? AND environment = ? AND service = ?`, repo, env, service), want)
		if err != nil {
			return err
		}
		svcs := []Service{sv}
		err = fillMessages(ctx, tx, repo, svcs, want)
		sv = svcs[0]
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return Service{Repository: repo, Environment: env, Service: service, Attribution: policy.Attribution{}}, nil
	}
	if err != nil {
		return Service{}, fmt.Errorf("read service %s/%s/%s: %w", repo, env, service, err)
	}
	return sv, nil
}

// Claims returns the repositories whose branch of env holds service
// (Present), by name.
func (s *SQLite) Claims(ctx context.Context, env, service string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT repository FROM services
		WHERE environment = ? AND service = ? AND present = 1 ORDER BY repository`, env, service)
	if err != nil {
		return nil, fmt.Errorf("read claims of %s/%s: %w", env, service, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var repo string
		if err := rows.Scan(&repo); err != nil {
			return nil, fmt.Errorf("read claims of %s/%s: %w", env, service, err)
		}
		out = append(out, repo)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read claims of %s/%s: %w", env, service, err)
	}
	return out, nil
}

// Apply writes a batch in one transaction: nothing of it is written if any
// part fails. It upserts the branch (Known; LastProcessed := Commit and
// Branch := Branch, each unless empty), sets or clears its pause (a pause
// takes Anchor and the store's clock as PausedAt), inserts the records,
// upserts the services, supersedes the listed records that are still
// pending, and appends the events (an event's empty At, Repository,
// Environment and Branch come from the store's clock and the batch).
//
// A record gets an ID (NewID) and CreatedAt (the store's clock) when they
// are empty, and always a new Seq; a record inserted already ended
// (skipped, rejected...) without FinishedAt gets its CreatedAt. The store
// writes these back into b.Records once the transaction has committed.
func (s *SQLite) Apply(ctx context.Context, b Batch) error {
	if b.Repository == "" || b.Environment == "" {
		return errors.New("apply: batch names no repository or environment")
	}
	if b.Pause != "" && b.Unpause {
		return errors.New("apply: batch both pauses and unpauses")
	}
	now := s.now()
	type assigned struct {
		id       string
		created  time.Time
		finished *time.Time
		seq      int64
	}
	out := make([]assigned, len(b.Records))
	for i, r := range b.Records {
		a := assigned{id: r.ID, created: r.CreatedAt, finished: r.FinishedAt}
		if a.id == "" {
			a.id = ids.next(now)
		}
		if a.created.IsZero() {
			a.created = now
		}
		if !validStatus(r.Status) {
			return fmt.Errorf("apply: record %s: unknown status %q", a.id, r.Status)
		}
		if a.finished == nil && Finished(r.Status) {
			t := a.created
			a.finished = &t
		}
		out[i] = a
	}

	err := s.write(ctx, func(tx *cachedTx) error {
		if err := applyBranch(ctx, tx, b, now); err != nil {
			return err
		}
		msgs := map[string]string{}
		for i, r := range b.Records {
			rec := *r
			rec.ID, rec.CreatedAt, rec.FinishedAt = out[i].id, out[i].created, out[i].finished
			seq, err := insertRecord(ctx, tx, &rec)
			if err != nil {
				return err
			}
			out[i].seq = seq
			if r.Commit != "" {
				msgs[r.Commit] = r.Message
			}
		}
		for _, sv := range b.Services {
			if err := upsertService(ctx, tx, b, sv, msgs); err != nil {
				return err
			}
		}
		if err := insertMessages(ctx, tx, b.Repository, msgs); err != nil {
			return err
		}
		if err := insertObjects(ctx, tx, b.Repository, b.Objects); err != nil {
			return err
		}
		for _, sha := range append(b.Processed, b.Commit) {
			if sha == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO processed (repository, environment, sha) VALUES (?, ?, ?)`,
				b.Repository, b.Environment, sha); err != nil {
				return fmt.Errorf("mark %.12s processed: %w", sha, err)
			}
		}
		if err := supersede(ctx, tx, b.Supersede, "", now); err != nil {
			return err
		}
		for _, svc := range b.Superseding {
			var by int64
			for i, r := range b.Records {
				if r.Service == svc {
					by = max(by, out[i].seq)
				}
			}
			if by == 0 {
				continue // no record of it in the batch: nothing supersedes
			}
			// The service's history, not the whole branch's.
			if _, err := tx.ExecContext(ctx, `UPDATE records INDEXED BY records_env_service SET status = ?, finished_at = ?
				WHERE environment = ? AND service = ? AND seq < ? AND repository = ? AND status = ?`,
				StatusSuperseded, formatTime(now), b.Environment, svc, by, b.Repository, StatusPending); err != nil {
				return fmt.Errorf("supersede the records of %s before %d: %w", svc, by, err)
			}
		}
		if err := insertEvents(ctx, tx, b.Events, b.Repository, b.Environment, b.Branch, now); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply %s/%s at %.12s: %w", b.Repository, b.Environment, b.Commit, err)
	}
	for i, r := range b.Records {
		r.ID, r.CreatedAt, r.FinishedAt, r.Seq = out[i].id, out[i].created, out[i].finished, out[i].seq
	}
	return nil
}

func applyBranch(ctx context.Context, tx *cachedTx, b Batch, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO branches (repository, environment, branch, last_processed)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (repository, environment) DO UPDATE SET
			branch = CASE WHEN excluded.branch = '' THEN branch ELSE excluded.branch END,
			last_processed = CASE WHEN excluded.last_processed = '' THEN last_processed ELSE excluded.last_processed END`,
		b.Repository, b.Environment, b.Branch, b.Commit)
	if err != nil {
		return fmt.Errorf("write branch: %w", err)
	}
	switch {
	case b.Pause != "":
		_, err = tx.ExecContext(ctx, `UPDATE branches SET paused = ?, anchor = ?, paused_at = ?
			WHERE repository = ? AND environment = ?`, b.Pause, b.Anchor, formatTime(now), b.Repository, b.Environment)
	case b.Unpause:
		_, err = tx.ExecContext(ctx, `UPDATE branches SET paused = '', anchor = '', paused_at = NULL
			WHERE repository = ? AND environment = ?`, b.Repository, b.Environment)
	}
	if err != nil {
		return fmt.Errorf("write branch pause: %w", err)
	}
	return nil
}

// upsertService writes a service's state at the batch's commit; with
// Baseline, its Current also becomes last good and last attempted at that
// commit (no commit when there is no descriptor).
func upsertService(ctx context.Context, tx *cachedTx, b Batch, sv Service, msgs map[string]string) error {
	var e encoder
	current := e.descriptor(sv.Current)
	attribution, broken, err := encodeAttribution(sv.Attribution, sv.Broken, msgs)
	if e.err == nil {
		e.err = err
	}
	if e.err != nil {
		return fmt.Errorf("service %s: %w", sv.Service, e.err)
	}
	if b.Baseline {
		commit := b.Commit
		if current == nil {
			commit = ""
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO services (repository, environment, service, present, current,
			attribution, last_good, last_good_commit, last_attempted, last_attempted_commit, broken)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (repository, environment, service) DO UPDATE SET
				present = excluded.present, current = excluded.current, attribution = excluded.attribution,
				last_good = excluded.last_good, last_good_commit = excluded.last_good_commit,
				last_attempted = excluded.last_attempted, last_attempted_commit = excluded.last_attempted_commit,
				broken = excluded.broken`,
			b.Repository, b.Environment, sv.Service, sv.Present, current, attribution, current, commit, current, commit, broken)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO services (repository, environment, service, present, current, attribution, broken)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (repository, environment, service) DO UPDATE SET
				present = excluded.present, current = excluded.current, attribution = excluded.attribution,
				broken = excluded.broken`,
			b.Repository, b.Environment, sv.Service, sv.Present, current, attribution, broken)
	}
	if err != nil {
		return fmt.Errorf("write service %s: %w", sv.Service, err)
	}
	return nil
}

func insertEvent(ctx context.Context, tx *cachedTx, e Event, now time.Time) error {
	if e.Kind == "" {
		return errors.New("event has no kind")
	}
	if e.At.IsZero() {
		e.At = now
	}
	commits, err := jsonText(orEmpty(e.Commits))
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (at, repository, environment, branch, kind, message,
		commit_sha, commits, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		formatTime(e.At), e.Repository, e.Environment, e.Branch, e.Kind, e.Message, e.Commit, commits, e.Actor); err != nil {
		return fmt.Errorf("insert %s event: %w", e.Kind, err)
	}
	return nil
}

// insertEvents appends events; their empty repository, environment and
// branch are the given ones.
func insertEvents(ctx context.Context, tx *cachedTx, evs []Event, repo, env, branch string, now time.Time) error {
	for _, e := range evs {
		if e.Repository == "" {
			e.Repository = repo
		}
		if e.Environment == "" {
			e.Environment = env
		}
		if e.Branch == "" {
			e.Branch = branch
		}
		if err := insertEvent(ctx, tx, e, now); err != nil {
			return err
		}
	}
	return nil
}

// AddEvent appends an event; an empty At is the store's clock.
func (s *SQLite) AddEvent(ctx context.Context, e Event) error {
	now := s.now()
	if err := s.write(ctx, func(tx *cachedTx) error { return insertEvent(ctx, tx, e, now) }); err != nil {
		return fmt.Errorf("add event: %w", err)
	}
	return nil
}

// Events returns the events of f's repository and environment, newest
// first. Events belong to branches: f.Service and f.Status do not apply.
func (s *SQLite) Events(ctx context.Context, f Filter) ([]Event, error) {
	q := `SELECT id, at, repository, environment, branch, kind, message, commit_sha, commits, actor FROM events`
	var conds []string
	var args []any
	if f.Repository != "" {
		conds = append(conds, `repository = ?`)
		args = append(args, f.Repository)
	}
	if f.Environment != "" {
		conds = append(conds, `environment = ?`)
		args = append(args, f.Environment)
	}
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var (
			e           Event
			at, commits string
		)
		if err := rows.Scan(&e.ID, &at, &e.Repository, &e.Environment, &e.Branch, &e.Kind, &e.Message, &e.Commit,
			&commits, &e.Actor); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		var d decoder
		e.At = d.time(sql.NullString{String: at, Valid: true})
		d.json(commits, &e.Commits)
		if d.err != nil {
			return nil, fmt.Errorf("read event %d: %w", e.ID, d.err)
		}
		e.Commits = orEmpty(e.Commits)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// Resume lifts the pauses of env's branches (of every repository when repo
// is empty), appending a resume event with actor for each. It returns the
// branches it unpaused as they were, pause reason and anchor included.
func (s *SQLite) Resume(ctx context.Context, env, repo, actor string) ([]Branch, error) {
	if env == "" {
		return nil, errors.New("resume: no environment")
	}
	now := s.now()
	var out []Branch
	err := s.write(ctx, func(tx *cachedTx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT `+branchColumns+` FROM branches
			WHERE environment = ? AND (? = '' OR repository = ?) AND paused != '' ORDER BY repository`, env, repo, repo)
		if err != nil {
			return err
		}
		for rows.Next() {
			b, err := scanBranch(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, b := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE branches SET paused = '', anchor = '', paused_at = NULL
				WHERE repository = ? AND environment = ?`, b.Repository, b.Environment); err != nil {
				return err
			}
			if err := insertEvent(ctx, tx, Event{
				Repository: b.Repository, Environment: b.Environment, Branch: b.Branch, Kind: EventResume,
				Message: fmt.Sprintf("%s lifted the %s pause", actor, b.Paused), Commit: b.LastProcessed, Actor: actor,
			}, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", env, err)
	}
	return out, nil
}

// Deployed is the last good version of one service.
type Deployed struct {
	Repository, Environment, Service, Version, Commit string
}

// Deployed returns every service's last good version, by repository,
// environment and service, without reading whole descriptors.
func (s *SQLite) Deployed(ctx context.Context) ([]Deployed, error) {
	var out []Deployed
	err := s.read(ctx, func(tx *cachedTx) error {
		rows, err := tx.QueryContext(ctx, `SELECT repository, environment, service,
			COALESCE(json_extract(last_good, '$.version'), ''), last_good_commit
			FROM services WHERE last_good IS NOT NULL ORDER BY repository, environment, service`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d Deployed
			if err := rows.Scan(&d.Repository, &d.Environment, &d.Service, &d.Version, &d.Commit); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read deployed versions: %w", err)
	}
	return out, nil
}

// Branches returns the state of every branch gitmon has seen.
func (s *SQLite) Branches(ctx context.Context) ([]Branch, error) {
	var out []Branch
	err := s.read(ctx, func(tx *cachedTx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+branchColumns+` FROM branches ORDER BY repository, environment`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			b, err := scanBranch(rows)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read branches: %w", err)
	}
	return out, nil
}
