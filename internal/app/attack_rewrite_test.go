package app

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
)

// gateRunner holds every release of service a until open is closed, and
// logs what it ran.
type gateRunner struct {
	open chan struct{}
	mu   sync.Mutex
	ran  map[string]int // commit/service
}

func (g *gateRunner) Run(ctx context.Context, req *runners.Request, out io.Writer, h runners.Handle) (runners.Result, error) {
	if req.Service == "a" {
		select {
		case <-g.open:
		case <-ctx.Done():
			return runners.Result{}, ctx.Err()
		}
	}
	g.mu.Lock()
	g.ran[req.Commit[:8]+"/"+req.Service]++
	g.mu.Unlock()
	return runners.Result{OK: true}, nil
}

func (g *gateRunner) runs(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ran[key]
}

// TestAttackDroppedCommitDoesNotDeployAfterAForcePush: a record queued
// behind a running release (one slot) belongs to a commit that a
// force-push then drops. The environment pauses (force_push: reject), and
// the branch no longer has that commit: its release must not start.
func TestAttackDroppedCommitDoesNotDeployAfterAForcePush(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy]}`, `{committers: ["*@example.com"]}`)
	state := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, state)
	ctx := context.Background()
	real, err := store.Open(ctx, state, store.Options{Lock: true})
	if err != nil {
		t.Fatal(err)
	}
	cs := newCrashStore(real, 0)
	gate := &gateRunner{open: make(chan struct{}), ran: map[string]int{}}
	cfg := *rig.cfg
	cfg.State = state
	a, err := New(ctx, &cfg, Options{Store: cs, Logger: rig.quiet, NoJitter: true, Listener: localListener(t),
		Runners: map[string]runners.Runner{"deploy": gate}})
	if err != nil {
		t.Fatal(err)
	}
	defer runApp(a)()

	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	c1 := rig.repo.Commit("qa", "bump a", tAlice, tAlice)
	eventually(t, "a's release to run", func() bool {
		rs, err := cs.Running(ctx)
		return err == nil && len(rs) == 1
	})
	rig.repo.WriteFile("services/b.yaml", tDescriptor("b", "1.1.0"))
	c2 := rig.repo.Commit("qa", "bump b", tAlice, tAlice)
	eventually(t, "b's record to be queued", func() bool {
		b, err := cs.Branch(ctx, "deployments", "qa")
		return err == nil && b.LastProcessed == c2
	})
	rig.repo.ForcePush("qa", c1) // drops c2
	eventually(t, "the force-push to pause qa", func() bool {
		b, err := cs.Branch(ctx, "deployments", "qa")
		return err == nil && b.Paused == store.PauseForcePush
	})
	close(gate.open)
	eventually(t, "nothing to be running", func() bool {
		rs, err := cs.Running(ctx)
		if err != nil || len(rs) > 0 {
			return false
		}
		q, r := a.sched.Len()
		return q == 0 && r == 0
	})
	recs, err := cs.Records(ctx, store.Filter{Repository: "deployments", Environment: "qa", Service: "b"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("records of b: %v, %v", recs, err)
	}
	if n := gate.runs(c2[:8] + "/b"); n != 0 || recs[0].Status == store.StatusSucceeded || recs[0].Status == store.StatusRunning {
		t.Errorf("the dropped commit %s deployed b (ran %d times, record %s) while qa is paused", c2[:8], n, recs[0].Status)
	}
	if recs[0].Status == store.StatusPending {
		t.Errorf("the dropped commit's record is still pending; it would start on resume")
	}
	sv, err := cs.Service(ctx, "deployments", "qa", "b")
	if err != nil || sv.LastGood == nil || sv.LastGood.Version != "1.0.0" {
		t.Errorf("b's last good %+v (%v), want 1.0.0", sv.LastGood, err)
	}
}
