package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
)

const recordColumns = `seq, id, repository, environment, service, action, version, previous_version,
	commit_sha, author, committer, verified, tickets, status, phase, reasons, commits,
	created_at, finished_at, pending_since, descriptor,
	COALESCE((SELECT m.message FROM messages m WHERE m.repository = records.repository AND m.sha = records.commit_sha), records.message),
	diff, emails, slack, dropped, trigger, actor, evidence, started_at, wake_at, signer`

func scanRecord(rows *sql.Rows) (*Record, error) {
	var (
		r                                  Record
		tickets, reasons, commits          string
		diff, emails, slack, dropped       string
		created                            string
		finished, pendingSince, descriptor sql.NullString
		evidence                           string
		started, wake, signer              sql.NullString
	)
	if err := rows.Scan(&r.Seq, &r.ID, &r.Repository, &r.Environment, &r.Service, &r.Action, &r.Version,
		&r.PreviousVersion, &r.Commit, &r.Author, &r.Committer, &r.Verified, &tickets, &r.Status, &r.Phase,
		&reasons, &commits, &created, &finished, &pendingSince, &descriptor, &r.Message, &diff, &emails,
		&slack, &dropped, &r.Trigger, &r.Actor, &evidence, &started, &wake, &signer); err != nil {
		return nil, err
	}
	var d decoder
	d.json(tickets, &r.Tickets)
	d.json(reasons, &r.Reasons)
	d.json(commits, &r.Commits)
	d.json(diff, &r.Diff)
	d.json(emails, &r.Emails)
	d.json(slack, &r.Slack)
	d.json(dropped, &r.Dropped)
	d.json(evidence, &r.Evidence)
	if signer.Valid {
		d.json(signer.String, &r.Signer)
	}
	r.StartedAt = d.timePtr(started)
	r.WakeAt = d.time(wake)
	r.CreatedAt = d.time(sql.NullString{String: created, Valid: true})
	r.FinishedAt = d.timePtr(finished)
	r.PendingSince = d.time(pendingSince)
	r.Descriptor = d.descriptor(descriptor)
	if d.err != nil {
		return nil, fmt.Errorf("record %s: %w", r.ID, d.err)
	}
	r.Tickets = orEmpty(r.Tickets)
	r.Reasons = orEmpty(r.Reasons)
	r.Commits = orEmpty(r.Commits)
	for i := range r.Commits {
		r.Commits[i].Fields = orEmpty(r.Commits[i].Fields)
	}
	r.Evidence = normEvidence(r.Evidence)
	r.Stages = []Stage{}
	return &r, nil
}

// normEvidence gives an evidence's lists their empty form (SPEC §7: [],
// never null).
func normEvidence(e Evidence) Evidence {
	e.Diff = orEmpty(e.Diff)
	e.Tickets = orEmpty(e.Tickets)
	for i := range e.Tickets {
		e.Tickets[i].Approvers = orEmpty(e.Tickets[i].Approvers)
		e.Tickets[i].Labels = orEmpty(e.Tickets[i].Labels)
	}
	return e
}

const stageColumns = `record_id, idx, name, runner, status, started_at, finished_at, message, output, url, run_id, handle`

// queryRecords returns the records a WHERE clause selects, in order, with
// their stages, from one snapshot.
func (s *SQLite) queryRecords(ctx context.Context, where string, args []any, order string, limit int) ([]*Record, error) {
	return s.queryRecordsFrom(ctx, `records`, where, args, order, limit)
}

// queryRecordsFrom is queryRecords from table, which may name the index
// to read (INDEXED BY).
func (s *SQLite) queryRecordsFrom(ctx context.Context, table, where string, args []any, order string, limit int) ([]*Record, error) {
	sel := `SELECT ` + recordColumns + ` FROM ` + table
	if where != "" {
		sel += ` WHERE ` + where
	}
	sel += ` ORDER BY seq ` + order
	if limit > 0 {
		sel += fmt.Sprintf(` LIMIT %d`, limit)
	}
	var out []*Record
	err := s.read(ctx, func(tx *cachedTx) error {
		rows, err := tx.QueryContext(ctx, sel, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		byID := map[string]*Record{}
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
			byID[r.ID] = r
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}
		ids := strings.Replace(sel, `SELECT `+recordColumns, `SELECT id`, 1)
		return loadStages(ctx, tx, `SELECT `+stageColumns+` FROM stages WHERE record_id IN (`+ids+`) ORDER BY record_id, idx`, args, byID)
	})
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	return out, nil
}

func loadStages(ctx context.Context, tx *cachedTx, query string, args []any, byID map[string]*Record) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st                Stage
			id                string
			idx               int
			started, finished sql.NullString
			handle            sql.NullString
		)
		if err := rows.Scan(&id, &idx, &st.Name, &st.Runner, &st.Status, &started, &finished, &st.Message,
			&st.Output, &st.URL, &st.RunID, &handle); err != nil {
			return err
		}
		var d decoder
		st.StartedAt = d.timePtr(started)
		st.FinishedAt = d.timePtr(finished)
		if d.err != nil {
			return fmt.Errorf("record %s stage %d: %w", id, idx, d.err)
		}
		if handle.Valid {
			st.Handle = json.RawMessage(handle.String)
		}
		if r := byID[id]; r != nil {
			r.Stages = append(r.Stages, st)
		}
	}
	return rows.Err()
}

// Record returns one record, or an error wrapping ErrNotFound.
func (s *SQLite) Record(ctx context.Context, id string) (*Record, error) {
	rs, err := s.queryRecords(ctx, `id = ?`, []any{id}, "ASC", 0)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("record %s: %w", id, ErrNotFound)
	}
	return rs[0], nil
}

// Records returns the records f selects, newest first.
func (s *SQLite) Records(ctx context.Context, f Filter) ([]*Record, error) {
	var conds []string
	var args []any
	for _, c := range []struct{ col, val string }{
		{"repository", f.Repository}, {"environment", f.Environment}, {"service", f.Service},
	} {
		if c.val != "" {
			conds = append(conds, c.col+` = ?`)
			args = append(args, c.val)
		}
	}
	if len(f.Status) > 0 {
		conds = append(conds, `status IN (?`+strings.Repeat(`, ?`, len(f.Status)-1)+`)`)
		for _, st := range f.Status {
			args = append(args, st)
		}
	}
	if !f.Since.IsZero() {
		// The stored text sorts as time (formatTime), and a plain comparison
		// leaves the index of the other conditions usable.
		conds = append(conds, `created_at >= ?`)
		args = append(args, formatTime(f.Since))
	}
	table := `records`
	if f.Environment != "" && f.Service != "" {
		// One service's history: without the hint SQLite reads the whole
		// branch's (records_repo_env), and every decision, which reads the
		// service's unstarted records, costs as much as the branch's
		// history, so that a flood of n held records costs n².
		table = `records INDEXED BY records_env_service`
	}
	return s.queryRecordsFrom(ctx, table, strings.Join(conds, ` AND `), args, "DESC", f.Limit)
}

// Pending returns every pending record, oldest first.
func (s *SQLite) Pending(ctx context.Context) ([]*Record, error) {
	return s.queryRecords(ctx, `status = ?`, []any{StatusPending}, "ASC", 0)
}

// Running returns every running record, oldest first.
func (s *SQLite) Running(ctx context.Context) ([]*Record, error) {
	return s.queryRecords(ctx, `status = ?`, []any{StatusRunning}, "ASC", 0)
}

// insertRecord inserts r as given, with its stages, and returns its seq.
func insertRecord(ctx context.Context, tx *cachedTx, r *Record) (int64, error) {
	var e encoder
	args := []any{r.ID, r.Repository, r.Environment, r.Service, r.Action, r.Version, r.PreviousVersion,
		r.Commit, r.Author, r.Committer, r.Verified, e.json(orEmpty(r.Tickets)), r.Status, r.Phase,
		e.json(orEmpty(r.Reasons)), e.json(normContributions(r.Commits)), formatTime(r.CreatedAt),
		nullTimePtr(r.FinishedAt), nullTime(r.PendingSince), e.descriptor(r.Descriptor), "", // the message is kept once per commit
		e.json(r.Diff), e.json(r.Emails), e.json(r.Slack), e.json(r.Dropped),
		triggerOf(r), r.Actor, e.json(normEvidence(r.Evidence)), nullTime(r.WakeAt), e.signer(r.Signer)}
	if e.err != nil {
		return 0, fmt.Errorf("record %s: %w", r.ID, e.err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO records (id, repository, environment, service, action, version,
		previous_version, commit_sha, author, committer, verified, tickets, status, phase, reasons, commits,
		created_at, finished_at, pending_since, descriptor, message, diff, emails, slack, dropped,
		trigger, actor, evidence, wake_at, signer)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	if err != nil {
		return 0, fmt.Errorf("insert record %s: %w", r.ID, err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if err := insertStages(ctx, tx, r.ID, r.Stages); err != nil {
		return 0, err
	}
	return seq, nil
}

func triggerOf(r *Record) string {
	if r.Trigger == "" {
		return TriggerCommit
	}
	return r.Trigger
}

func normContributions(cs []policy.Contribution) []policy.Contribution {
	out := make([]policy.Contribution, len(cs))
	for i, c := range cs {
		c.Fields = orEmpty(c.Fields)
		out[i] = c
	}
	return out
}

func insertStages(ctx context.Context, tx *cachedTx, id string, stages []Stage) error {
	for i, st := range stages {
		if st.Status == "" {
			st.Status = StagePending
		}
		handle, err := handleText(st.Handle)
		if err != nil {
			return fmt.Errorf("record %s stage %d: %w", id, i, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO stages (`+stageColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, i, st.Name, st.Runner, st.Status, nullTimePtr(st.StartedAt), nullTimePtr(st.FinishedAt),
			st.Message, st.Output, st.URL, st.RunID, handle); err != nil {
			return fmt.Errorf("insert record %s stage %d: %w", id, i, err)
		}
	}
	return nil
}

func handleText(h json.RawMessage) (any, error) {
	if len(h) == 0 {
		return nil, nil
	}
	if !json.Valid(h) {
		return nil, errors.New("stage handle is not valid JSON")
	}
	return string(h), nil
}

// supersede ends the listed records that are still pending.
func supersede(ctx context.Context, tx *cachedTx, ids []string, skip string, at time.Time) error {
	for _, id := range ids {
		if id == skip {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE records SET status = ?, finished_at = ? WHERE id = ? AND status = ?`,
			StatusSuperseded, formatTime(at), id, StatusPending); err != nil {
			return fmt.Errorf("supersede record %s: %w", id, err)
		}
	}
	return nil
}

// Decide writes policy's new verdict on a pending record: its status,
// phase, reasons, pending-since, tickets, contributing commits, diff,
// recipients, verified and signer; a record it ends (skipped, rejected, superseded) gets
// FinishedAt, r's own or now. The records in supersede that are still
// pending become superseded, in the same transaction. Decide fails with
// ErrNotFound if r is no longer pending, and refuses running, succeeded
// and failed, which only StartRecord and FinishRecord write.
func (s *SQLite) Decide(ctx context.Context, r *Record, supersedeIDs []string) error {
	switch r.Status {
	case StatusPending, StatusSkipped, StatusRejected, StatusSuperseded:
	default:
		return fmt.Errorf("decide record %s: status %q is not a decision", r.ID, r.Status)
	}
	now := s.now()
	var finished *time.Time
	if Finished(r.Status) {
		finished = r.FinishedAt
		if finished == nil {
			finished = &now
		}
	}
	var e encoder
	args := []any{r.Status, r.Phase, e.json(orEmpty(r.Reasons)), nullTime(r.PendingSince),
		e.json(orEmpty(r.Tickets)), e.json(normContributions(r.Commits)), e.json(r.Diff), e.json(r.Emails),
		e.json(r.Slack), e.json(r.Dropped), nullTimePtr(finished), e.json(normEvidence(r.Evidence)),
		nullTime(r.WakeAt), r.Verified, e.signer(r.Signer), r.ID, StatusPending}
	if e.err != nil {
		return fmt.Errorf("decide record %s: %w", r.ID, e.err)
	}
	err := s.write(ctx, func(tx *cachedTx) error {
		res, err := tx.ExecContext(ctx, `UPDATE records SET status = ?, phase = ?, reasons = ?, pending_since = ?,
			tickets = ?, commits = ?, diff = ?, emails = ?, slack = ?, dropped = ?, finished_at = ?,
			evidence = ?, wake_at = ?, verified = ?, signer = ?
			WHERE id = ? AND status = ?`, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("pending record %s: %w", r.ID, ErrNotFound)
		}
		return supersede(ctx, tx, supersedeIDs, r.ID, now)
	})
	if err != nil {
		return fmt.Errorf("decide: %w", err)
	}
	r.FinishedAt = finished
	return nil
}

// recordTarget is what StartRecord and FinishRecord need of a record.
type recordTarget struct {
	repository, environment, service, action, commit string
	descriptor                                       sql.NullString
}

// target reads a record whose status is one of statuses; ErrNotFound if
// there is none.
func target(ctx context.Context, tx *cachedTx, id string, statuses ...string) (recordTarget, error) {
	var t recordTarget
	err := tx.QueryRowContext(ctx, `SELECT repository, environment, service, action, commit_sha, descriptor
		FROM records WHERE id = ? AND status IN (?`+strings.Repeat(`, ?`, len(statuses)-1)+`)`,
		append([]any{id}, anySlice(statuses)...)...).
		Scan(&t.repository, &t.environment, &t.service, &t.action, &t.commit, &t.descriptor)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("%s record %s: %w", strings.Join(statuses, " or "), id, ErrNotFound)
	}
	return t, err
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// StartRecord marks a pending record running with the given stages (a
// stage with no status is pending) and makes its descriptor the service's
// last attempted, with its commit (a remove clears the descriptor). It
// fails with ErrNotFound if the record is no longer pending.
func (s *SQLite) StartRecord(ctx context.Context, id string, stages []Stage, at time.Time) error {
	err := s.write(ctx, func(tx *cachedTx) error {
		t, err := target(ctx, tx, id, StatusPending)
		if err != nil {
			return err
		}
		// The previous version is the last attempted one as the release
		// starts, not as the record was decided: an earlier release of the
		// service may have started in between.
		var prev sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT last_attempted FROM services WHERE repository = ? AND environment = ? AND service = ?`,
			t.repository, t.environment, t.service).Scan(&prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		prevVersion := ""
		if prev.Valid && prev.String != "" {
			var d struct {
				Version string `json:"version"`
			}
			if err := json.Unmarshal([]byte(prev.String), &d); err != nil {
				return fmt.Errorf("last attempted descriptor: %w", err)
			}
			prevVersion = d.Version
		}
		if _, err := tx.ExecContext(ctx, `UPDATE records SET status = ?, started_at = ?, previous_version = ? WHERE id = ?`,
			StatusRunning, nullTime(at), prevVersion, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM stages WHERE record_id = ?`, id); err != nil {
			return err
		}
		if err := insertStages(ctx, tx, id, stages); err != nil {
			return err
		}
		attempted := any(nil)
		if t.action != string(policy.ActionRemove) && t.descriptor.Valid {
			attempted = t.descriptor.String
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO services (repository, environment, service, last_attempted, last_attempted_commit)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (repository, environment, service) DO UPDATE SET
				last_attempted = excluded.last_attempted, last_attempted_commit = excluded.last_attempted_commit`,
			t.repository, t.environment, t.service, attempted, t.commit)
		return err
	})
	if err != nil {
		return fmt.Errorf("start record: %w", err)
	}
	return nil
}

// UpdateStage writes stage i of a record whole. It returns once the write
// is durable, or an error wrapping ErrNotFound if the stage does not exist.
func (s *SQLite) UpdateStage(ctx context.Context, id string, i int, st Stage) error {
	if err := s.write(ctx, func(tx *cachedTx) error { return updateStage(ctx, tx, id, i, st) }); err != nil {
		return fmt.Errorf("update stage: %w", err)
	}
	return nil
}

func updateStage(ctx context.Context, tx *cachedTx, id string, i int, st Stage) error {
	handle, err := handleText(st.Handle)
	if err != nil {
		return fmt.Errorf("record %s stage %d: %w", id, i, err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE stages SET name = ?, runner = ?, status = ?, started_at = ?,
		finished_at = ?, message = ?, output = ?, url = ?, run_id = ?, handle = ? WHERE record_id = ? AND idx = ?`,
		st.Name, st.Runner, st.Status, nullTimePtr(st.StartedAt), nullTimePtr(st.FinishedAt), st.Message,
		st.Output, st.URL, st.RunID, handle, id, i)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("record %s stage %d: %w", id, i, ErrNotFound)
	}
	return nil
}

// FinishRecord ends a pending or running record with a final status at
// the given time (EndRecord with nothing else).
func (s *SQLite) FinishRecord(ctx context.Context, id, status string, at time.Time) error {
	return s.EndRecord(ctx, id, End{Status: status, At: at})
}

// EndRecord ends a pending or running record with a final status at
// e.At, writing e.Stages and appending e.Events in the same transaction.
// Succeeded makes the record's descriptor and commit the service's last
// good; a succeeded remove clears both last good and last attempted. Any
// other status leaves the service alone. It fails with ErrNotFound if the
// record has already ended, and writes nothing then.
func (s *SQLite) EndRecord(ctx context.Context, id string, e End) error {
	if !Finished(e.Status) {
		return fmt.Errorf("finish record %s: %q is not a final status", id, e.Status)
	}
	var now time.Time
	if len(e.Events) > 0 {
		now = s.now()
	}
	err := s.write(ctx, func(tx *cachedTx) error {
		t, err := target(ctx, tx, id, StatusPending, StatusRunning)
		if err != nil {
			return err
		}
		for i, st := range e.Stages {
			if err := updateStage(ctx, tx, id, i, st); err != nil {
				return err
			}
		}
		if err := insertEvents(ctx, tx, e.Events, t.repository, t.environment, "", now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE records SET status = ?, finished_at = ? WHERE id = ?`,
			e.Status, formatTime(e.At), id); err != nil {
			return err
		}
		if e.Status != StatusSucceeded {
			return nil
		}
		if t.action == string(policy.ActionRemove) {
			_, err = tx.ExecContext(ctx, `INSERT INTO services (repository, environment, service, last_good_commit)
				VALUES (?, ?, ?, ?)
				ON CONFLICT (repository, environment, service) DO UPDATE SET
					last_good = NULL, last_good_commit = excluded.last_good_commit, last_attempted = NULL`,
				t.repository, t.environment, t.service, t.commit)
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO services (repository, environment, service, last_good, last_good_commit)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (repository, environment, service) DO UPDATE SET
				last_good = excluded.last_good, last_good_commit = excluded.last_good_commit`,
			t.repository, t.environment, t.service, t.descriptor, t.commit)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish record: %w", err)
	}
	return nil
}
