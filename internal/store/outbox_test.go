package store

import (
	"context"
	"encoding/json"
	"errors"
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
