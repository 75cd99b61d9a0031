package app

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
)

// flakyRunner fails the first fails runs of each service, then succeeds.
type flakyRunner struct {
	mu    sync.Mutex
	fails int
	ran   map[string]int
}

func (f *flakyRunner) Run(_ context.Context, req *runners.Request, _ io.Writer, _ runners.Handle) (runners.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran[req.Service+"@"+req.Commit]++
	return runners.Result{OK: f.ran[req.Service+"@"+req.Commit] > f.fails}, nil
}

func (f *flakyRunner) runs(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ran[key]
}

// TestRetryBesideServe: a release fails; `gitmon retry` (app.Retry on its
// own store handle, as the command opens it beside serve) queues a new
// record for the same commit, with trigger retry and the actor, and the
// running serve starts it: the same descriptor runs again and succeeds.
func TestRetryBesideServe(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy]}`, `{committers: ["*@example.com"]}`)
	state := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, state)
	ctx := context.Background()
	cfg := *rig.cfg
	cfg.State = state
	run := &flakyRunner{fails: 1, ran: map[string]int{}}
	a, err := New(ctx, &cfg, Options{Logger: rig.quiet, NoJitter: true, Listener: localListener(t),
		Runners: map[string]runners.Runner{"deploy": run}})
	if err != nil {
		t.Fatal(err)
	}
	defer runApp(a)()

	cli, err := store.Open(ctx, state, store.Options{}) // beside serve: no lock
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	opts := RetryOptions{Env: "qa", Service: "a", Actor: "carol@laptop"}
	if _, err := Retry(ctx, &cfg, cli, opts); !errors.Is(err, ErrNothingToRetry) {
		t.Fatalf("retry with no release: %v, want ErrNothingToRetry", err)
	}

	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	c := rig.repo.Commit("qa", "bump a", tAlice, tAlice)
	var failed *store.Record
	eventually(t, "a's release to fail", func() bool {
		rs, err := cli.Records(ctx, store.Filter{Environment: "qa", Service: "a", Limit: 1})
		if err == nil && len(rs) == 1 && rs[0].Status == store.StatusFailed {
			failed = rs[0]
		}
		return failed != nil
	})
	rec, err := Retry(ctx, &cfg, cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Trigger != store.TriggerRetry || rec.Actor != "carol@laptop" || rec.Commit != c || rec.Status != store.StatusPending {
		t.Fatalf("retry record: trigger %q actor %q commit %s status %s", rec.Trigger, rec.Actor, rec.Commit, rec.Status)
	}
	// A second retry while the first waits is refused: nothing to retry.
	if _, err := Retry(ctx, &cfg, cli, opts); !errors.Is(err, ErrNothingToRetry) {
		t.Fatalf("a second retry: %v, want ErrNothingToRetry", err)
	}
	eventually(t, "serve to run the retry", func() bool {
		got, err := cli.Record(ctx, rec.ID)
		return err == nil && got.Status == store.StatusSucceeded
	})
	if n := run.runs("a@" + c); n != 2 {
		t.Errorf("the commit ran %d times, want 2 (the failure and the retry)", n)
	}
	sv, err := cli.Service(ctx, "deployments", "qa", "a")
	if err != nil || sv.LastGood == nil || sv.LastGood.Version != "1.1.0" {
		t.Errorf("last good after the retry: %+v, %v", sv.LastGood, err)
	}
	evs, err := cli.Events(ctx, store.Filter{Environment: "qa"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		found = found || e.Kind == store.EventRetry && e.Actor == "carol@laptop"
	}
	if !found {
		t.Errorf("no retry event with the actor in %+v", evs)
	}
	// The retry succeeded: it is the last release, and nothing is left to retry.
	if _, err := Retry(ctx, &cfg, cli, opts); !errors.Is(err, ErrNothingToRetry) {
		t.Fatalf("retry after success: %v, want ErrNothingToRetry", err)
	}
}
