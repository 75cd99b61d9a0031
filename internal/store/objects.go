package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// insertObjects keeps commit objects, each once per repository; a merge's
// list of commits, once known, is kept too.
func insertObjects(ctx context.Context, tx *cachedTx, repo string, objs []CommitObject) error {
	for _, o := range objs {
		if o.SHA == "" || len(o.Object) == 0 {
			continue
		}
		var merged any
		if o.KnownMergedIn {
			b, err := json.Marshal(orEmpty(o.MergedIn))
			if err != nil {
				return err
			}
			merged = string(b)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO commit_objects (repository, sha, object, merged_in) VALUES (?, ?, ?, ?)
			ON CONFLICT (repository, sha) DO UPDATE SET merged_in = COALESCE(commit_objects.merged_in, excluded.merged_in)`,
			repo, o.SHA, o.Object, merged); err != nil {
			return fmt.Errorf("keep the object of %.12s: %w", o.SHA, err)
		}
	}
	return nil
}

// CommitObjects returns the kept objects of the given commits of repo.
func (s *SQLite) CommitObjects(ctx context.Context, repo string, shas []string) (map[string]CommitObject, error) {
	out := make(map[string]CommitObject, len(shas))
	for len(shas) > 0 {
		n := min(500, len(shas))
		args := []any{repo}
		for _, sha := range shas[:n] {
			args = append(args, sha)
		}
		rows, err := s.r.QueryContext(ctx, `SELECT sha, object, merged_in FROM commit_objects WHERE repository = ? AND sha IN (?`+
			strings.Repeat(`, ?`, n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read commit objects of %s: %w", repo, err)
		}
		for rows.Next() {
			var o CommitObject
			var merged sql.NullString
			if err := rows.Scan(&o.SHA, &o.Object, &merged); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read commit objects of %s: %w", repo, err)
			}
			if merged.Valid {
				if err := json.Unmarshal([]byte(merged.String), &o.MergedIn); err != nil {
					rows.Close()
					return nil, fmt.Errorf("stored merged-in commits of %.12s: %w", o.SHA, err)
				}
				o.KnownMergedIn = true
			}
			out[o.SHA] = o
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read commit objects of %s: %w", repo, err)
		}
		shas = shas[n:]
	}
	return out, nil
}
