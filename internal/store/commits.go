package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gitmon-dev/gitmon/policy"
)

// MaxMessage is how much of a commit message gitmon keeps and judges
// (SPEC §5 Bounded work).
const MaxMessage = 64 << 10

// CapMessage returns at most MaxMessage bytes of a commit message, cut at
// a rune boundary, in a string of its own (so that a huge message read
// from Git is not kept alive by its first 64 KiB).
func CapMessage(s string) string {
	if len(s) <= MaxMessage {
		return s
	}
	cut := MaxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.Clone(s[:cut])
}

// attributionJSON is how an attribution is stored: fields name commits by
// SHA, and each commit's identities are stored once. Messages live in the
// messages table, once per commit of the repository.
type attributionJSON struct {
	Fields  map[string][]string       `json:"fields"`
	Commits map[string]commitIdentity `json:"commits"`
}

type commitIdentity struct {
	Author    policy.Identity `json:"author"`
	Committer policy.Identity `json:"committer"`
}

// encodeAttribution stores a, adding each commit's message to msgs.
func encodeAttribution(a policy.Attribution, broken []policy.Commit, msgs map[string]string) (attr, brk string, err error) {
	j := attributionJSON{Fields: make(map[string][]string, len(a)), Commits: map[string]commitIdentity{}}
	for f, cs := range a {
		shas := make([]string, len(cs))
		for i, c := range cs {
			shas[i] = c.SHA
			if _, ok := j.Commits[c.SHA]; !ok {
				j.Commits[c.SHA] = commitIdentity{Author: c.Author, Committer: c.Committer}
				msgs[c.SHA] = c.Message
			}
		}
		j.Fields[f] = shas
	}
	b, err := json.Marshal(j)
	if err != nil {
		return "", "", err
	}
	bs := make([]commitJSON, len(broken))
	for i, c := range broken {
		bs[i] = commitJSON{SHA: c.SHA, Author: c.Author, Committer: c.Committer}
		msgs[c.SHA] = c.Message
	}
	bb, err := json.Marshal(bs)
	return string(b), string(bb), err
}

type commitJSON struct {
	SHA       string          `json:"sha"`
	Author    policy.Identity `json:"author"`
	Committer policy.Identity `json:"committer"`
}

// decodeAttribution reads a stored attribution, in this format or the one
// before it (each field with its whole commit, message included). The
// commits' messages are left for fillMessages; want collects their SHAs.
func decodeAttribution(attr, broken string, want map[string]bool) (policy.Attribution, []policy.Commit, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(attr), &raw); err != nil {
		return nil, nil, fmt.Errorf("stored attribution: %w", err)
	}
	out := policy.Attribution{}
	if _, ok := raw["fields"]; !ok {
		// Before 0003: {"field": {"SHA", "Message", "Author", "Committer"}}.
		for f, v := range raw {
			var c policy.Commit
			if err := json.Unmarshal(v, &c); err != nil {
				return nil, nil, fmt.Errorf("stored attribution of %s: %w", f, err)
			}
			out[f] = []policy.Commit{c}
		}
	} else {
		var j attributionJSON
		if err := json.Unmarshal([]byte(attr), &j); err != nil {
			return nil, nil, fmt.Errorf("stored attribution: %w", err)
		}
		commits := make(map[string]policy.Commit, len(j.Commits))
		for sha, id := range j.Commits {
			commits[sha] = policy.Commit{SHA: sha, Author: id.Author, Committer: id.Committer}
			want[sha] = true
		}
		for f, shas := range j.Fields {
			cs := make([]policy.Commit, len(shas))
			for i, sha := range shas {
				cs[i] = commits[sha]
				cs[i].SHA = sha
			}
			out[f] = cs
		}
	}
	var bs []commitJSON
	if broken != "" {
		if err := json.Unmarshal([]byte(broken), &bs); err != nil {
			return nil, nil, fmt.Errorf("stored broken commits: %w", err)
		}
	}
	var brk []policy.Commit
	for _, c := range bs {
		brk = append(brk, policy.Commit{SHA: c.SHA, Author: c.Author, Committer: c.Committer})
		want[c.SHA] = true
	}
	return out, brk, nil
}

// fillMessages sets the messages of the services' commits from the
// messages table; one string per commit is shared by every field.
func fillMessages(ctx context.Context, q rowsQuerier, repo string, svcs []Service, want map[string]bool) error {
	if len(want) == 0 {
		return nil
	}
	msgs, err := loadMessages(ctx, q, repo, want)
	if err != nil {
		return err
	}
	for i := range svcs {
		for _, cs := range svcs[i].Attribution {
			for j := range cs {
				if m, ok := msgs[cs[j].SHA]; ok && cs[j].Message == "" {
					cs[j].Message = m
				}
			}
		}
		for j := range svcs[i].Broken {
			svcs[i].Broken[j].Message = msgs[svcs[i].Broken[j].SHA]
		}
	}
	return nil
}

type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadMessages reads the messages of the given commits of repo.
func loadMessages(ctx context.Context, q rowsQuerier, repo string, shas map[string]bool) (map[string]string, error) {
	out := make(map[string]string, len(shas))
	list := make([]any, 0, len(shas))
	for sha := range shas {
		list = append(list, sha)
	}
	const chunk = 500
	for len(list) > 0 {
		n := min(chunk, len(list))
		args := append([]any{repo}, list[:n]...)
		rows, err := q.QueryContext(ctx, `SELECT sha, message FROM messages WHERE repository = ? AND sha IN (?`+
			strings.Repeat(`, ?`, n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read commit messages: %w", err)
		}
		for rows.Next() {
			var sha, msg string
			if err := rows.Scan(&sha, &msg); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read commit messages: %w", err)
			}
			out[sha] = msg
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read commit messages: %w", err)
		}
		list = list[n:]
	}
	return out, nil
}

// insertMessages keeps each commit's message once (capped).
func insertMessages(ctx context.Context, tx *cachedTx, repo string, msgs map[string]string) error {
	for sha, msg := range msgs {
		if sha == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO messages (repository, sha, message) VALUES (?, ?, ?)`,
			repo, sha, CapMessage(msg)); err != nil {
			return fmt.Errorf("write the message of %.12s: %w", sha, err)
		}
	}
	return nil
}

// Processed returns which of the given commits were processed on the
// (repository, environment) branch: their records are written.
func (s *SQLite) Processed(ctx context.Context, repo, env string, shas []string) (map[string]bool, error) {
	out := map[string]bool{}
	for len(shas) > 0 {
		n := min(500, len(shas))
		args := []any{repo, env}
		for _, sha := range shas[:n] {
			args = append(args, sha)
		}
		rows, err := s.r.QueryContext(ctx, `SELECT sha FROM processed WHERE repository = ? AND environment = ? AND sha IN (?`+
			strings.Repeat(`, ?`, n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read processed commits of %s/%s: %w", repo, env, err)
		}
		for rows.Next() {
			var sha string
			if err := rows.Scan(&sha); err != nil {
				rows.Close()
				return nil, err
			}
			out[sha] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		shas = shas[n:]
	}
	return out, nil
}
