package notify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/integrations/scm"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/test/fakescm"
)

func TestSCMStatusItem(t *testing.T) {
	opts := SCMStatusOptions{Project: "acme/deployments", PublicURL: "https://gitmon.example.com", Secrets: []string{canary}}
	tests := []struct {
		status, state string
		running       bool
		desc          string
	}{
		{store.StatusPending, "pending", false, "waiting: changes: port 22 not allowed; token=<redacted>"},
		{store.StatusRunning, "pending", true, "running 1.4.2: deploy, healthcheck"},
		{store.StatusSucceeded, "success", false, "deployed 1.4.2"},
		{store.StatusFailed, "failure", false, "failed at healthcheck: GET https://x/?key=<redacted>: 503"},
		{store.StatusRejected, "failure", false, "rejected: changes: port 22 not allowed; token=<redacted>"},
		{store.StatusSkipped, "success", false, "skipped: changes: port 22 not allowed; token=<redacted>"},
		{store.StatusSuperseded, "success", false, "superseded by a later commit"},
	}
	for _, tt := range tests {
		rec := testRecord(tt.status)
		it, err := SCMStatusItem(rec, opts)
		if err != nil {
			t.Fatal(err)
		}
		var p SCMStatusPayload
		if err := json.Unmarshal(it.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if it.Kind != store.OutboxSCMStatus || it.Key != "scm:"+rec.ID+":"+tt.status {
			t.Errorf("%s: kind %s key %s", tt.status, it.Kind, it.Key)
		}
		if p.State != tt.state || p.Running != tt.running || p.Description != tt.desc || p.Context != "gitmon/qa/payments" ||
			p.TargetURL != "https://gitmon.example.com/records/"+rec.ID || p.SHA != rec.Commit || p.Project != "acme/deployments" {
			t.Errorf("%s: %+v", tt.status, p)
		}
		if strings.Contains(string(it.Payload), canary) {
			t.Errorf("%s: the payload holds a secret", tt.status)
		}
	}
	rec := testRecord(store.StatusRejected)
	rec.Reasons[0].Message = strings.Repeat("long reason ", 40)
	it, _ := SCMStatusItem(rec, opts)
	var p SCMStatusPayload
	_ = json.Unmarshal(it.Payload, &p)
	if n := len([]rune(p.Description)); n != scm.MaxDescription {
		t.Errorf("a long reason makes a %d-character description", n)
	}
	rec.Commit = "HEAD"
	if _, err := SCMStatusItem(rec, opts); err == nil {
		t.Error("a record without a commit id got a status")
	}
}

func scmRig(t *testing.T, provider, token string) (*fakescm.Server, *store.SQLite, *Worker, *clock) {
	t.Helper()
	f := fakescm.New(t, provider, "the-token")
	st := openStore(t, t.TempDir())
	c, err := scm.New(config.SCM{Provider: provider, URL: f.URL(), Token: config.NewSecret(token)}, scm.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxSCMStatus: &SCM{Client: c, Outbox: st, Secrets: []string{token}}},
		Now: clk.Now, MinBackoff: 5 * time.Second, MaxBackoff: time.Minute, Rand: func() float64 { return 0 }}
	return f, st, w, clk
}

func enqueueStatus(t *testing.T, st store.Store, rec *store.Record) store.OutboxItem {
	t.Helper()
	it, err := SCMStatusItem(rec, SCMStatusOptions{Project: "acme/deployments", PublicURL: "http://127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Enqueue(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	return it
}

// TestSCMStalePendingSkipped: a pending that failed and waits for its
// retry while the record succeeds is skipped when it comes due: the host
// ends at success, never at pending again.
func TestSCMStalePendingSkipped(t *testing.T) {
	for _, p := range fakescm.Providers {
		t.Run(p, func(t *testing.T) {
			ctx := context.Background()
			f, st, w, clk := scmRig(t, p, "the-token")
			f.Fail(func(string) int { return 500 })
			pending := enqueueStatus(t, st, testRecord(store.StatusPending))
			if n, _ := w.RunOnce(ctx); n != 0 {
				t.Fatal("sent during the outage")
			}
			f.Fail(nil)
			enqueueStatus(t, st, testRecord(store.StatusRunning))
			enqueueStatus(t, st, testRecord(store.StatusSucceeded))
			if n, err := w.RunOnce(ctx); n != 2 || err != nil {
				t.Fatalf("running and success: %d sent, %v", n, err)
			}
			clk.Advance(time.Minute)
			if n, err := w.RunOnce(ctx); n != 1 || err != nil {
				t.Fatalf("the stale pending: %d, %v", n, err)
			}
			it, _, _ := st.OutboxItem(ctx, pending.Key)
			if !it.Sent() || it.ExternalID != SkippedStale {
				t.Errorf("stale pending: %+v", it)
			}
			last, _ := f.Latest(testRecord("").Commit, "gitmon/qa/payments")
			// The running one was skipped too: success was queued when it came due.
			if last.State != "success" || len(f.Statuses()) != 1 {
				t.Errorf("host has %+v after %d statuses, want success alone", last, len(f.Statuses()))
			}
		})
	}
}

// TestSCMOutageThenRecovery: a host answering 500 for a while gets the
// status late, after capped backoff; a redelivery of what went out is
// harmless (GitLab's "cannot transition" counts as done).
func TestSCMOutageThenRecovery(t *testing.T) {
	for _, p := range fakescm.Providers {
		t.Run(p, func(t *testing.T) {
			ctx := context.Background()
			f, st, w, clk := scmRig(t, p, "the-token")
			fails := 0
			f.Fail(func(string) int {
				if fails < 3 {
					fails++
					return 503
				}
				return 0
			})
			it := enqueueStatus(t, st, testRecord(store.StatusRunning))
			for i := 0; i < 10; i++ {
				w.RunOnce(ctx)
				if got, _, _ := st.OutboxItem(ctx, it.Key); got.Sent() {
					break
				}
				clk.Advance(time.Minute)
			}
			got, _, _ := st.OutboxItem(ctx, it.Key)
			if !got.Sent() || got.Attempts != 3 || f.Calls(fakescm.OpSetStatus) != 4 {
				t.Fatalf("after the outage: %+v, %d calls", got, f.Calls(fakescm.OpSetStatus))
			}
			// gitmon died between the send and MarkSent: the same status again.
			sender := w.Senders[store.OutboxSCMStatus]
			if _, err := sender.Send(ctx, got); err != nil {
				t.Errorf("redelivery: %v", err)
			}
		})
	}
}

// TestSCMUnauthorizedIsDeadLetter: a 401 is permanent: a dead letter at
// once, whose error does not hold the token.
func TestSCMUnauthorizedIsDeadLetter(t *testing.T) {
	for _, p := range fakescm.Providers {
		t.Run(p, func(t *testing.T) {
			ctx := context.Background()
			const token = "wrong-token-canary-77"
			f, st, w, _ := scmRig(t, p, token)
			dead := 0
			w.DeadLetter = func(string) { dead++ }
			it := enqueueStatus(t, st, testRecord(store.StatusFailed))
			w.RunOnce(ctx)
			got, _, _ := st.OutboxItem(ctx, it.Key)
			if !got.Dead() || dead != 1 || !strings.Contains(got.LastError, "401") || strings.Contains(got.LastError, token) {
				t.Fatalf("after a 401: %+v (dead letters %d)", got, dead)
			}
			if f.AuthFailures() != 1 {
				t.Errorf("%d tries with a bad token, want 1", f.AuthFailures())
			}
		})
	}
}
