package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// TestOperatorTextIsBounded: a freeze's reason and an actor come from
// operators (the CLI caps them; an API client may not): the state refuses
// what it would copy into every record a freeze holds, and keeps nothing
// of a refused action.
func TestOperatorTextIsBounded(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	huge := strings.Repeat("x", 1<<20)
	for what, err := range map[string]error{
		"freeze reason": s.Freeze(ctx, Freeze{Environment: "qa", Reason: huge, Actor: "ops@host"}),
		"freeze actor":  s.Freeze(ctx, Freeze{Environment: "qa", Reason: "why", Actor: huge}),
		"halt reason":   s.Freeze(ctx, Freeze{Reason: huge, Actor: "ops@host"}),
		"unfreeze actor": func() error {
			_, _, err := s.Unfreeze(ctx, "qa", huge)
			return err
		}(),
		"retry actor": s.Retry(ctx, &Record{Repository: "deployments", Environment: "qa", Service: "payments", Actor: huge,
			Status: StatusPending, Phase: PhaseQueued, Trigger: TriggerRetry}, "r1"),
	} {
		if !errors.Is(err, ErrTooLong) {
			t.Errorf("%s of 1 MiB: %v, want ErrTooLong", what, err)
		}
	}
	fs, err := s.Freezes(ctx)
	must(t, err)
	evs, err := s.Events(ctx, Filter{})
	must(t, err)
	if len(fs) != 0 || len(evs) != 0 {
		t.Fatalf("refused actions left %d freezes and %d events", len(fs), len(evs))
	}
	// At the bounds, and with a newline (shown on one line by status and
	// history, which clean it): kept as given.
	reason, actor := strings.Repeat("r", MaxReason-1)+"\n", strings.Repeat("a", MaxActor)
	must(t, s.Freeze(ctx, Freeze{Environment: "qa", Reason: reason, Actor: actor}))
	if fs, err = s.Freezes(ctx); err != nil || len(fs) != 1 || fs[0].Reason != reason || fs[0].Actor != actor {
		t.Fatalf("a freeze at the bounds: %v, %v", fs, err)
	}
}

// BenchmarkRetry is Retry's check-and-insert for a service whose failed
// release is old, under n later records of other services of its
// environment (n=100 is the same run's baseline): it reads the service's
// history, so its cost must not follow n.
func BenchmarkRetry(b *testing.B) {
	for _, n := range []int{100, 20000} {
		b.Run(fmt.Sprintf("others=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, _ := newStore(b)
			failed := pendingRecord(b, 1, "1.0.0")
			applyRecord(b, s, failed)
			must(b, s.StartRecord(ctx, failed.ID, nil, t0))
			must(b, s.FinishRecord(ctx, failed.ID, StatusFailed, t0))
			for i := 0; i < n; i += 500 {
				var recs []*Record
				for j := i; j < min(i+500, n); j++ {
					r := pendingRecord(b, j+2, "1.0.0")
					r.Service, r.Status, r.Phase = fmt.Sprintf("other%d", j%50), StatusSucceeded, ""
					recs = append(recs, r)
				}
				must(b, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(i + 2), Records: recs}))
			}
			for b.Loop() {
				r := pendingRecord(b, 1, "1.0.0")
				r.Trigger, r.Actor = TriggerRetry, "carol@laptop"
				if err := s.Retry(ctx, r, failed.ID); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				must(b, s.Decide(ctx, &Record{ID: r.ID, Status: StatusSuperseded}, nil)) // nothing pending again
				b.StartTimer()
			}
		})
	}
}

// BenchmarkArtifactAnyVersion is the promotion gate's read when the
// promotion fields do not include version (Artifact with ""): ten records
// of the service under n records of other services of the environment
// (n=100 is the same run's baseline); its cost must follow the service.
func BenchmarkArtifactAnyVersion(b *testing.B) {
	for _, n := range []int{100, 20000} {
		b.Run(fmt.Sprintf("others=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, _ := newStore(b)
			for i := 0; i < n+10; i += 500 {
				var recs []*Record
				for j := i; j < min(i+500, n+10); j++ {
					r := pendingRecord(b, j+1, "1.0.0")
					r.Status, r.Phase = StatusSucceeded, ""
					if j >= 10 {
						r.Service = fmt.Sprintf("other%d", j%50)
					}
					recs = append(recs, r)
				}
				must(b, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(i + 1), Records: recs}))
			}
			for b.Loop() {
				if recs, err := s.Artifact(ctx, "deployments", "qa", "payments", ""); err != nil || len(recs) != 10 {
					b.Fatalf("%d records, %v", len(recs), err)
				}
			}
		})
	}
}
