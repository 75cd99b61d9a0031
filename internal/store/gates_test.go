package store

import (
	"context"
	"testing"
)

// TestApplySupersedingTakesWhatOthersQueued: a batch whose record
// supersedes its service's unstarted records (Batch.Superseding) takes, in
// its own transaction, the pending ones it did not list, such as a retry
// another process wrote after the caller read them; and nothing else:
// not a running record, not a later one, not another service's or another
// repository's.
func TestApplySupersedingTakesWhatOthersQueued(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	listed := pendingRecord(t, 1, "1.0.0")
	run := pendingRecord(t, 2, "1.1.0")
	other := pendingRecord(t, 3, "2.0.0")
	other.Service = "web"
	elsewhere := pendingRecord(t, 4, "1.1.0")
	elsewhere.Repository = "other"
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(3), Records: []*Record{listed, run, other}}))
	must(t, s.Apply(ctx, Batch{Repository: "other", Environment: "qa", Commit: sha(4), Records: []*Record{elsewhere}}))
	must(t, s.StartRecord(ctx, run.ID, nil, t0))
	raced := pendingRecord(t, 5, "1.1.0") // a retry, written after the caller read what to supersede
	raced.Trigger = TriggerRetry
	applyRecord(t, s, raced)

	nw := pendingRecord(t, 6, "1.3.0")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(6), Records: []*Record{nw},
		Supersede: []string{listed.ID}, Superseding: []string{"payments"}}))
	later := pendingRecord(t, 7, "1.4.0")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(7), Records: []*Record{later},
		Superseding: []string{"web", "not-in-the-batch"}})) // web has no record here: it supersedes nothing
	for what, c := range map[string]struct {
		id, want string
	}{
		"listed": {listed.ID, StatusSuperseded}, "raced retry": {raced.ID, StatusSuperseded}, "running": {run.ID, StatusRunning},
		"other service": {other.ID, StatusPending}, "other repository": {elsewhere.ID, StatusPending},
		"the new record": {nw.ID, StatusPending}, "a later record": {later.ID, StatusPending},
	} {
		got := get(t, s, c.id)
		if got.Status != c.want {
			t.Errorf("%s: status %s, want %s", what, got.Status, c.want)
		}
		if c.want == StatusSuperseded && got.FinishedAt == nil {
			t.Errorf("%s: superseded without finished_at", what)
		}
	}
}
