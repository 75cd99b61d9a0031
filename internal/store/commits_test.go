package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
)

// TestMessagesAreKeptOncePerCommit: one commit's message, however many
// services and fields it touches, is one capped row; services and records
// read it back.
func TestMessagesAreKeptOncePerCommit(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	huge := strings.Repeat("é", MaxMessage) // 2 bytes a rune: twice the cap
	c := policy.Commit{SHA: sha(1), Message: huge, Author: policy.Identity{Email: "a@example.com"}}
	b := Batch{Repository: "deployments", Environment: "qa", Commit: sha(1)}
	for i := range 50 {
		name := fmt.Sprintf("svc%02d", i)
		d := desc(t, name, "1.0.0", "")
		attr := policy.Attribution{}
		for _, f := range descriptors.Diff(nil, d).Fields() {
			attr[f] = []policy.Commit{c}
		}
		b.Services = append(b.Services, Service{Service: name, Present: true, Current: d, Attribution: attr})
		r := pendingRecord(t, 1, "1.0.0")
		r.Service, r.Message = name, huge
		b.Records = append(b.Records, r)
	}
	must(t, s.Apply(ctx, b))
	var rows, size int
	must(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*), SUM(LENGTH(CAST(message AS BLOB))) FROM messages`).Scan(&rows, &size))
	if rows != 1 || size > MaxMessage {
		t.Errorf("messages: %d rows, %d bytes; want 1 row of at most %d bytes", rows, size, MaxMessage)
	}
	var attrBytes int
	must(t, s.r.QueryRowContext(ctx, `SELECT MAX(LENGTH(attribution)) FROM services`).Scan(&attrBytes))
	if attrBytes > 4096 {
		t.Errorf("an attribution takes %d bytes: the message is stored with it", attrBytes)
	}
	sv, err := s.Service(ctx, "deployments", "qa", "svc07")
	must(t, err)
	if got := sv.Attribution["version"][0].Message; got != CapMessage(huge) || !utf8.ValidString(got) {
		t.Errorf("attributed message: %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
	if got := get(t, s, b.Records[3].ID).Message; got != CapMessage(huge) {
		t.Errorf("record message: %d bytes, want %d", len(got), len(CapMessage(huge)))
	}
	done, err := s.Processed(ctx, "deployments", "qa", []string{sha(1), sha(2)})
	must(t, err)
	if !done[sha(1)] || done[sha(2)] {
		t.Errorf("Processed = %v, want only %s", done, sha(1))
	}
}

// TestAttributionBefore0003Decodes: a service written before the
// messages table (each field with its whole commit) still reads.
func TestAttributionBefore0003Decodes(t *testing.T) {
	want := map[string]bool{}
	a, broken, err := decodeAttribution(`{"version":{"SHA":"abc","Message":"bump","Author":{"name":"A","email":"a@example.com"},"Committer":{"name":"C","email":"c@example.com"}}}`, "[]", want)
	must(t, err)
	if len(broken) != 0 || len(a["version"]) != 1 || a["version"][0].SHA != "abc" || a["version"][0].Message != "bump" ||
		a["version"][0].Committer.Email != "c@example.com" {
		t.Errorf("decoded %+v, %+v", a, broken)
	}
}
