package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
)

// RecordSummary is the gist of a record, as `status` shows it: no
// descriptor, stages, evidence or message, so that reading one costs a row
// of small columns.
type RecordSummary struct {
	Seq         int64
	ID          string
	Repository  string
	Environment string
	Service     string
	Action      string
	Version     string
	Commit      string
	Committer   string
	Status      string
	Phase       string
	Reasons     []policy.Reason
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
}

// Standing is where one service stands in one environment of one
// repository: its last good, the record that made it so and its newest
// record.
type Standing struct {
	Repository  string
	Environment string
	Service     string
	// Present says whether the branch holds the descriptor.
	Present bool
	// Good says whether there is a last good descriptor; Version and
	// Commit are its version and commit ("" without one).
	Good    bool
	Version string
	Commit  string
	// Succeeded is the succeeded deploy record that made the last good,
	// nil when the last good is a baseline (or there is none); Last is the
	// service's newest record, nil when it has none.
	Succeeded *RecordSummary
	Last      *RecordSummary
}

// Standings is where the services of an environment stand and the
// records in flight there, from one snapshot: a record is never both
// ended as a service's newest and still pending among those in flight.
type Standings struct {
	// Services are by environment, repository and service.
	Services []Standing
	// InFlight are the pending and running records, oldest first.
	InFlight []RecordSummary
}

const summaryColumns = `seq, id, repository, environment, service, action, version, commit_sha, committer,
	status, phase, reasons, created_at, started_at, finished_at`

func scanSummary(row interface{ Scan(...any) error }) (RecordSummary, error) {
	var (
		r                 RecordSummary
		reasons, created  string
		started, finished sql.NullString
	)
	if err := row.Scan(&r.Seq, &r.ID, &r.Repository, &r.Environment, &r.Service, &r.Action, &r.Version, &r.Commit,
		&r.Committer, &r.Status, &r.Phase, &reasons, &created, &started, &finished); err != nil {
		return r, err
	}
	var d decoder
	d.json(reasons, &r.Reasons)
	r.CreatedAt = d.time(sql.NullString{String: created, Valid: true})
	r.StartedAt = d.timePtr(started)
	r.FinishedAt = d.timePtr(finished)
	if d.err != nil {
		return r, fmt.Errorf("record %s: %w", r.ID, d.err)
	}
	r.Reasons = orEmpty(r.Reasons)
	return r, nil
}

// standingsQuery reads the services of one environment (or all) with the
// seqs of their newest record and of the succeeded record of their last
// good. Each subquery is one short index range whatever the length of the
// history: the newest record is the top of records_env_service for the
// service, and the last good's record is found among the records of its
// version (records_artifact), not by walking back over failures. The
// indexes are named: left to itself, SQLite walks records_repo_env, every
// record of the branch newest first, until it meets the service.
const standingsQuery = `SELECT s.environment, s.repository, s.service, s.present, s.last_good IS NOT NULL,
	COALESCE(json_extract(s.last_good, '$.version'), ''), s.last_good_commit,
	(SELECT r.seq FROM records r INDEXED BY records_env_service
		WHERE r.environment = s.environment AND r.service = s.service AND r.repository = s.repository
		ORDER BY r.seq DESC LIMIT 1),
	(SELECT r.seq FROM records r INDEXED BY records_artifact
		WHERE r.repository = s.repository AND r.environment = s.environment AND r.service = s.service
			AND r.version = json_extract(s.last_good, '$.version') AND r.commit_sha = s.last_good_commit
			AND r.status = 'succeeded' AND r.action = 'deploy'
		ORDER BY r.seq DESC LIMIT 1)
	FROM services s WHERE ? = '' OR s.environment = ?
	ORDER BY s.environment, s.repository, s.service`

// Standings returns where every service of env ("" every environment)
// stands and the records in flight there, from one snapshot in three
// queries.
func (s *SQLite) Standings(ctx context.Context, env string) (Standings, error) {
	var out Standings
	err := s.read(ctx, func(tx *cachedTx) error {
		var err error
		if out.Services, err = standings(ctx, tx, env); err != nil {
			return err
		}
		out.InFlight, err = inFlight(ctx, tx, env)
		return err
	})
	if err != nil {
		return Standings{}, fmt.Errorf("read the standing of the services of %s: %w", envName(env), err)
	}
	return out, nil
}

func standings(ctx context.Context, tx *cachedTx, env string) ([]Standing, error) {
	rows, err := tx.QueryContext(ctx, standingsQuery, env, env)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type refs struct{ last, good sql.NullInt64 }
	var (
		out  []Standing
		seqs []refs
	)
	for rows.Next() {
		var (
			st Standing
			rf refs
		)
		if err := rows.Scan(&st.Environment, &st.Repository, &st.Service, &st.Present, &st.Good, &st.Version,
			&st.Commit, &rf.last, &rf.good); err != nil {
			return nil, err
		}
		if !st.Good {
			st.Version, st.Commit = "", ""
		}
		out = append(out, st)
		seqs = append(seqs, rf)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	var want []int64
	for _, rf := range seqs {
		for _, n := range []sql.NullInt64{rf.last, rf.good} {
			if n.Valid {
				want = append(want, n.Int64)
			}
		}
	}
	bySeq, err := summaries(ctx, tx, want)
	if err != nil {
		return nil, err
	}
	for i, rf := range seqs {
		if rf.last.Valid {
			out[i].Last = bySeq[rf.last.Int64]
		}
		if rf.good.Valid {
			out[i].Succeeded = bySeq[rf.good.Int64]
		}
	}
	return out, nil
}

// summaries reads the records of seqs, by seq, in one query: the list is
// one JSON parameter, so that the statement stays the same (and cached)
// whatever the number of services.
func summaries(ctx context.Context, tx *cachedTx, seqs []int64) (map[int64]*RecordSummary, error) {
	out := make(map[int64]*RecordSummary, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	var list strings.Builder
	list.WriteByte('[')
	for i, n := range seqs {
		if i > 0 {
			list.WriteByte(',')
		}
		list.WriteString(strconv.FormatInt(n, 10))
	}
	list.WriteByte(']')
	rows, err := tx.QueryContext(ctx, `SELECT `+summaryColumns+` FROM records
		WHERE seq IN (SELECT value FROM json_each(?))`, list.String())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanSummary(rows)
		if err != nil {
			return nil, err
		}
		out[r.Seq] = &r
	}
	return out, rows.Err()
}

// inFlightQuery reads the pending and running records of one environment
// (or all), oldest first, from records_status: the records in flight,
// never the history.
const inFlightQuery = `SELECT ` + summaryColumns + ` FROM records INDEXED BY records_status
	WHERE status IN (?, ?) AND (? = '' OR environment = ?) ORDER BY seq`

func inFlight(ctx context.Context, tx *cachedTx, env string) ([]RecordSummary, error) {
	rows, err := tx.QueryContext(ctx, inFlightQuery, StatusPending, StatusRunning, env, env)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RecordSummary
	for rows.Next() {
		r, err := scanSummary(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func envName(env string) string {
	if env == "" {
		return "every environment"
	}
	return env
}
