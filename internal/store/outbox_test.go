package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func TestOutboxEnqueueDueMarkReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	s := openAt(t, dir, Options{Lock: true, Now: func() time.Time { return t0 }})

	a := OutboxItem{Kind: OutboxSlack, Key: "slack:r1:started:#qa", Payload: json.RawMessage(`{"text":"a"}`)}
	b := OutboxItem{Kind: OutboxEmail, Key: "email:r1:started", Payload: json.RawMessage(`{"subject":"b"}`)}
	later := OutboxItem{Kind: OutboxSlack, Key: "later", NextAttemptAt: t0.Add(time.Hour)}
	must(t, s.Enqueue(ctx, a, b, later))
	// A retry of the same notification is ignored, even with another payload.
	must(t, s.Enqueue(ctx, OutboxItem{Kind: OutboxSlack, Key: a.Key, Payload: json.RawMessage(`{"text":"other"}`)}))

	due, err := s.DueOutbox(ctx, t0, 10)
	must(t, err)
	if len(due) != 2 || due[0].Key != a.Key || due[1].Key != b.Key || string(due[0].Payload) != `{"text":"a"}` {
		t.Fatalf("due: %+v", due)
	}
	if due, _ := s.DueOutbox(ctx, t0, 1); len(due) != 1 {
		t.Fatalf("limit 1: %d items", len(due))
	}

	must(t, s.MarkFailed(ctx, due[0].ID, "slack: 500", t0.Add(time.Minute)))
	must(t, s.MarkSent(ctx, due[1].ID, "", t0))
	if due, _ := s.DueOutbox(ctx, t0, 0); len(due) != 0 {
		t.Fatalf("due after failure and send: %+v", due)
	}
	must(t, s.Close())

	// Nothing lost across a reopen.
	s = openAt(t, dir, Options{Lock: true})
	due, err = s.DueOutbox(ctx, t0.Add(time.Minute), 0)
	must(t, err)
	if len(due) != 1 || due[0].Key != a.Key || due[0].Attempts != 1 || due[0].LastError != "slack: 500" {
		t.Fatalf("due after reopen: %+v", due)
	}
	must(t, s.MarkSent(ctx, due[0].ID, "1700000000.000100", t0.Add(2*time.Minute)))
	// A second MarkSent keeps the first delivery; MarkFailed leaves it sent.
	must(t, s.MarkSent(ctx, due[0].ID, "other", t0.Add(3*time.Minute)))
	must(t, s.MarkFailed(ctx, due[0].ID, "late", t0))

	it, ok, err := s.OutboxItem(ctx, a.Key)
	must(t, err)
	if !ok || !it.Sent() || it.ExternalID != "1700000000.000100" || !it.SentAt.Equal(t0.Add(2*time.Minute)) || it.LastError != "" {
		t.Fatalf("item: %+v", it)
	}
	if _, ok, err := s.OutboxItem(ctx, "nope"); ok || err != nil {
		t.Fatalf("missing item: %v %v", ok, err)
	}
	if err := s.MarkSent(ctx, 999, "", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkSent unknown: %v", err)
	}
	if err := s.MarkFailed(ctx, 999, "", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkFailed unknown: %v", err)
	}
	if err := s.Enqueue(ctx, OutboxItem{Kind: OutboxSlack}); err == nil {
		t.Error("item without key enqueued")
	}
	if err := s.Enqueue(ctx, OutboxItem{Kind: OutboxSlack, Key: "k", Payload: json.RawMessage(`{`)}); err == nil {
		t.Error("bad JSON enqueued")
	}
	if _, ok, _ := s.OutboxItem(ctx, "k"); ok {
		t.Error("rejected batch partly written")
	}
}

func TestOutboxReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openAt(t, dir, Options{})
	must(t, s.Enqueue(ctx, OutboxItem{Kind: OutboxEmail, Key: "x"}))
	ro := openAt(t, dir, Options{ReadOnly: true})
	if err := ro.Enqueue(ctx, OutboxItem{Kind: OutboxEmail, Key: "y"}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only enqueue: %v", err)
	}
	if _, ok, err := ro.OutboxItem(ctx, "x"); !ok || err != nil {
		t.Errorf("read-only lookup: %v %v", ok, err)
	}
}

// TestOutboxDeadLetters: a dead letter is durable, never due again, never
// revived by a re-enqueue or a late MarkFailed, counted, and does not
// stand in the way of the items behind it.
func TestOutboxDeadLetters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	s := openAt(t, dir, Options{Lock: true, Now: func() time.Time { return t0 }})

	dead := OutboxItem{Kind: OutboxSlack, Key: "slack:r1:started:#gone", Payload: json.RawMessage(`{"text":"a"}`)}
	next := OutboxItem{Kind: OutboxSlack, Key: "slack:r2:started:#qa", Payload: json.RawMessage(`{"text":"b"}`)}
	mail := OutboxItem{Kind: OutboxEmail, Key: "email:r2:started", Payload: json.RawMessage(`{"subject":"c"}`)}
	must(t, s.Enqueue(ctx, dead, next, mail))
	if n, err := s.DeadLetters(ctx); err != nil || n != 0 {
		t.Fatalf("dead letters of a fresh outbox: %d, %v", n, err)
	}
	due, err := s.DueOutbox(ctx, t0, 1)
	must(t, err)
	if len(due) != 1 || due[0].Key != dead.Key {
		t.Fatalf("due: %+v", due)
	}
	id := due[0].ID
	changed, err := s.MarkDead(ctx, id, "slack #gone: channel_not_found", t0.Add(time.Second))
	must(t, err)
	if !changed {
		t.Fatal("MarkDead of a live item changed nothing")
	}

	// The next items come up at once, in the same batch size.
	due, err = s.DueOutbox(ctx, t0.Add(48*time.Hour), 1)
	must(t, err)
	if len(due) != 1 || due[0].Key != next.Key {
		t.Fatalf("due after a dead letter: %+v", due)
	}
	// The kinds filter.
	due, err = s.DueOutbox(ctx, t0, 0, OutboxEmail)
	must(t, err)
	if len(due) != 1 || due[0].Key != mail.Key {
		t.Fatalf("due e-mails: %+v", due)
	}
	due, err = s.DueOutbox(ctx, t0, 0, OutboxEmail, OutboxSlack)
	must(t, err)
	if len(due) != 2 {
		t.Fatalf("due e-mails and Slack: %+v", due)
	}
	if due, _ := s.DueOutbox(ctx, t0, 0, OutboxJiraComment); len(due) != 0 {
		t.Fatalf("due JIRA comments: %+v", due)
	}

	// Nothing revives it: a late failure, a second MarkDead, a re-enqueue.
	must(t, s.MarkFailed(ctx, id, "late", t0))
	if changed, err := s.MarkDead(ctx, id, "second reason", t0.Add(time.Hour)); err != nil || changed {
		t.Fatalf("second MarkDead: %v, %v", changed, err)
	}
	must(t, s.Enqueue(ctx, dead))
	must(t, s.Close())

	s = openAt(t, dir, Options{Lock: true})
	it, ok, err := s.OutboxItem(ctx, dead.Key)
	must(t, err)
	if !ok || !it.Dead() || it.Sent() || !it.DeadAt.Equal(t0.Add(time.Second)) || it.Attempts != 1 ||
		it.LastError != "slack #gone: channel_not_found" {
		t.Fatalf("dead letter after reopen: %+v", it)
	}
	if due, _ := s.DueOutbox(ctx, t0.Add(48*time.Hour), 0); len(due) != 2 {
		t.Fatalf("due after reopen: %+v", due)
	}
	if n, err := s.DeadLetters(ctx); err != nil || n != 1 {
		t.Fatalf("dead letters: %d, %v", n, err)
	}

	// A delivered item never becomes a dead letter.
	must(t, s.MarkSent(ctx, due[0].ID, "ts", t0))
	if changed, err := s.MarkDead(ctx, due[0].ID, "too late", t0); err != nil || changed {
		t.Fatalf("MarkDead of a sent item: %v, %v", changed, err)
	}
	if it, _, _ := s.OutboxItem(ctx, due[0].Key); !it.Sent() || it.Dead() || it.LastError != "" {
		t.Fatalf("sent item after MarkDead: %+v", it)
	}
	if _, err := s.MarkDead(ctx, 999, "", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkDead unknown: %v", err)
	}
	if n, _ := s.DeadLetters(ctx); n != 1 {
		t.Errorf("dead letters: %d", n)
	}

	ro := openAt(t, dir, Options{ReadOnly: true})
	if n, err := ro.DeadLetters(ctx); err != nil || n != 1 {
		t.Errorf("read-only dead letters: %d, %v", n, err)
	}
	if _, err := ro.MarkDead(ctx, it.ID, "x", t0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only MarkDead: %v", err)
	}
}

// TestOutboxUpgradeKeepsItems: items written before the dead-letter
// migration are still due after it.
func TestOutboxUpgradeKeepsItems(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	// A database as gitmon left it before migration 0004.
	db, err := sql.Open("sqlite", filepath.Join(dir, DBFile))
	must(t, err)
	_, err = db.ExecContext(ctx, createMigrationsTable)
	must(t, err)
	for _, m := range migrations {
		if m.name == "dead_letters" {
			break
		}
		_, err = db.ExecContext(ctx, m.sql)
		must(t, err)
		_, err = db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, '')`, m.version, m.name)
		must(t, err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO outbox (kind, key, payload, next_attempt_at, created_at) VALUES (?, ?, '{}', ?, ?)`,
		OutboxSlack, "old", formatTime(t0), formatTime(t0))
	must(t, err)
	must(t, db.Close())

	s := openAt(t, dir, Options{Lock: true})
	due, err := s.DueOutbox(ctx, t0, 0)
	must(t, err)
	if len(due) != 1 || due[0].Key != "old" || due[0].Dead() {
		t.Fatalf("due after the upgrade: %+v", due)
	}
	if n, err := s.DeadLetters(ctx); err != nil || n != 0 {
		t.Fatalf("dead letters after the upgrade: %d, %v", n, err)
	}
}

// BenchmarkDueOutbox measures the worker's look for due items with 50
// items due, beside many dead letters (left out by the index) or many
// items of a kind the worker cannot send (skipped by the kinds filter).
func BenchmarkDueOutbox(b *testing.B) {
	for _, tc := range []struct {
		name       string
		dead, away int
	}{
		{name: "baseline"},
		{name: "dead=10000", dead: 10000},
		{name: "other_kind=10000", away: 10000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
			s := openAt(b, b.TempDir(), Options{Now: func() time.Time { return t0 }})
			var items []OutboxItem
			for i := range tc.dead + tc.away {
				kind := OutboxSlack
				if i >= tc.dead {
					kind = OutboxEmail
				}
				items = append(items, OutboxItem{Kind: kind, Key: fmt.Sprintf("old-%d", i), Payload: json.RawMessage(`{"text":"x"}`)})
			}
			for i := range 50 {
				items = append(items, OutboxItem{Kind: OutboxSlack, Key: fmt.Sprintf("due-%d", i),
					Payload: json.RawMessage(`{"text":"x"}`), NextAttemptAt: t0.Add(time.Second)})
			}
			must(b, s.Enqueue(ctx, items...))
			_, err := s.w.ExecContext(ctx, `UPDATE outbox SET dead_at = ? WHERE key LIKE 'old-%' AND kind = ?`, formatTime(t0), OutboxSlack)
			must(b, err)
			now := t0.Add(time.Minute)
			b.ReportAllocs()
			for b.Loop() {
				due, err := s.DueOutbox(ctx, now, 50, OutboxSlack)
				if err != nil || len(due) != 50 {
					b.Fatalf("%d due, %v", len(due), err)
				}
			}
		})
	}
}

// TestUnannounced: the records of the period whose current status has no
// outbox item under the prefix, newest first; older records are not read.
func TestUnannounced(t *testing.T) {
	ctx := context.Background()
	s, c := newStore(t)
	var recs []*Record
	for i := 1; i <= 4; i++ {
		r := pendingRecord(t, i, fmt.Sprintf("1.0.%d", i))
		applyRecord(t, s, r)
		recs = append(recs, r)
	}
	since := recs[1].CreatedAt
	must(t, s.Enqueue(ctx, OutboxItem{Kind: OutboxSCMStatus, Key: "scm:" + recs[2].ID + ":pending"},
		// The item of another status, or under another prefix, does not count.
		OutboxItem{Kind: OutboxSCMStatus, Key: "scm:" + recs[3].ID + ":running"},
		OutboxItem{Kind: OutboxSlack, Key: "slack:" + recs[1].ID + ":pending"}))
	got, err := s.Unannounced(ctx, "scm:", since)
	must(t, err)
	if want := []string{recs[3].ID, recs[1].ID}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Unannounced = %v, want %v", got, want)
	}
	must(t, s.FinishRecord(ctx, recs[2].ID, StatusRejected, c.Now()))
	got, err = s.Unannounced(ctx, "scm:", since)
	must(t, err)
	if len(got) != 3 || got[1] != recs[2].ID {
		t.Fatalf("after recs[2] was rejected: %v", got)
	}
}
