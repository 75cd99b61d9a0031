package app

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
)

// flakyReads is a crashStore whose reads of a service's state fail the
// first n times (SQLITE_BUSY, an I/O error for a moment).
type flakyReads struct {
	*crashStore
	mu      sync.Mutex
	service int
	record  int
}

func (f *flakyReads) Service(ctx context.Context, repo, env, service string) (store.Service, error) {
	if p, err := f.crashStore.Pending(ctx); err != nil || len(p) == 0 {
		// Deciding reads the service before its record exists; only a
		// release's start reads it with the record pending.
		return f.crashStore.Service(ctx, repo, env, service)
	}
	f.mu.Lock()
	fail := f.service > 0
	if fail {
		f.service--
	}
	f.mu.Unlock()
	if fail {
		return store.Service{}, fmt.Errorf("read service %s: disk I/O error (injected)", service)
	}
	return f.crashStore.Service(ctx, repo, env, service)
}

func (f *flakyReads) Record(ctx context.Context, id string) (*store.Record, error) {
	f.mu.Lock()
	fail := f.record > 0
	if fail {
		f.record--
	}
	f.mu.Unlock()
	if fail {
		return nil, fmt.Errorf("read record %s: disk I/O error (injected)", id)
	}
	return f.crashStore.Record(ctx, id)
}

// TestAttackAReadThatFailsAtAReleaseStartIsRetried: a read that fails as
// a release starts (the service's last attempted, the record itself) must
// not drop the release: SPEC §5 Crashes, "no commit is skipped", and "a
// write that fails is retried; until it succeeds, nothing that depends on
// it runs". Dropped, the record stays pending until a restart, and then
// starts after the service's later releases.
func TestAttackAReadThatFailsAtAReleaseStartIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name            string
		service, record int
	}{
		{name: "service", service: 3},
		{name: "record", record: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy]}`, `{committers: ["*@example.com"]}`)
			state := filepath.Join(t.TempDir(), "state")
			copyDir(t, rig.base, state)
			ctx := context.Background()
			real, err := store.Open(ctx, state, store.Options{Lock: true})
			if err != nil {
				t.Fatal(err)
			}
			cs := newCrashStore(real, 0)
			rig.log.dead = cs.crashed
			cfg := *rig.cfg
			cfg.State = state
			flaky := &flakyReads{crashStore: cs}
			a, err := New(ctx, &cfg, Options{Store: flaky, Logger: rig.quiet, NoJitter: true, Listener: localListener(t),
				Runners: map[string]runners.Runner{"deploy": rig.log}})
			if err != nil {
				t.Fatal(err)
			}
			a.rel.retry = 0
			runCtx, cancel := context.WithCancel(ctx)
			exited := make(chan error, 1)
			go func() { exited <- a.Run(runCtx) }()
			defer func() { cancel(); <-exited }()
			eventually(t, "the baseline to be read", func() bool { return rig.branchAt(cs, rig.repo.Head("qa")) })

			flaky.mu.Lock()
			flaky.service, flaky.record = tc.service, tc.record
			flaky.mu.Unlock()
			rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
			rig.repo.Commit("qa", "bump a", tAlice, tAlice)
			eventually(t, "a's release to end", func() bool {
				// Under decideMu: a record decided is queued before it
				// is released, so the queue is never seen empty between.
				a.decideMu.Lock()
				defer a.decideMu.Unlock()
				recs, err := cs.Records(ctx, store.Filter{Service: "a", Environment: "qa"})
				if err != nil || len(recs) != 1 {
					return false
				}
				q, r := a.sched.Len()
				return store.Finished(recs[0].Status) || (q == 0 && r == 0)
			})
			recs, err := cs.Records(ctx, store.Filter{Service: "a", Environment: "qa"})
			if err != nil {
				t.Fatal(err)
			}
			if recs[0].Status != store.StatusSucceeded {
				t.Fatalf("a's record is %s after a failed read; want succeeded (the scheduler forgot it)", recs[0].Status)
			}
			flaky.mu.Lock()
			left := flaky.service + flaky.record
			flaky.mu.Unlock()
			if left != 0 {
				t.Errorf("%d injected failures were not reached", left)
			}
		})
	}
}
