package app

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
)

// failCommits is a runner that fails the releases of the commits it
// names and logs every release it ran, in order (service@commit[:8]).
type failCommits struct {
	mu   sync.Mutex
	fail map[string]bool
	ran  []string
	dead func() bool // a dead gitmon runs nothing
}

func (f *failCommits) Run(ctx context.Context, req *runners.Request, _ io.Writer, _ runners.Handle) (runners.Result, error) {
	f.mu.Lock()
	if f.dead != nil && f.dead() {
		f.mu.Unlock()
		<-ctx.Done()
		return runners.Result{}, ctx.Err()
	}
	defer f.mu.Unlock()
	f.ran = append(f.ran, req.Service+"@"+req.Commit[:8])
	return runners.Result{OK: !f.fail[req.Commit]}, nil
}

func (f *failCommits) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ran)
}

// raceApply is a store that runs race once, just before it writes the
// batch holding a record of service at commit: after serve decided that
// commit, before its decision is written.
type raceApply struct {
	store.Store
	mu              sync.Mutex
	service, commit string
	race            func()
}

func (r *raceApply) arm(service, commit string, race func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.service, r.commit, r.race = service, commit, race
}

func (r *raceApply) Apply(ctx context.Context, b store.Batch) error {
	r.mu.Lock()
	var race func()
	for _, rec := range b.Records {
		if r.race != nil && rec.Service == r.service && rec.Commit == r.commit {
			race, r.race = r.race, nil
		}
	}
	r.mu.Unlock()
	if race != nil {
		race()
	}
	return r.Store.Apply(ctx, b)
}

// TestAttackRetryRacesANewCommit: a's release of c1 failed; `gitmon
// retry` inserts its retry while serve decides c2 of a, between the
// decision and its write. c2 passed steps 1-4, so the retry of c1 is
// superseded (SPEC §5 step 7): it never starts, and c1 never starts after
// c2, not even after a restart.
func TestAttackRetryRacesANewCommit(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy]}`, `{committers: ["*@example.com"]}`)
	state := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, state)
	ctx := context.Background()
	cfg := *rig.cfg
	cfg.State = state
	run := &failCommits{fail: map[string]bool{}}
	start := func() (*raceApply, func()) {
		real, err := store.Open(ctx, state, store.Options{Lock: true})
		if err != nil {
			t.Fatal(err)
		}
		rs := &raceApply{Store: real}
		a, err := New(ctx, &cfg, Options{Store: rs, Logger: rig.quiet, NoJitter: true, Listener: localListener(t),
			Runners: map[string]runners.Runner{"deploy": run}})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		exited := make(chan error, 1)
		go func() { exited <- a.Run(runCtx) }()
		return rs, func() { cancel(); <-exited }
	}
	rs, stop := start()
	defer func() { stop() }()
	cli, err := store.Open(ctx, state, store.Options{}) // gitmon retry, beside serve
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	newest := func() *store.Record {
		recs, err := cli.Records(ctx, store.Filter{Environment: "qa", Service: "a", Limit: 1})
		if err != nil || len(recs) == 0 {
			return nil
		}
		return recs[0]
	}

	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	rig.repo.AutoPush = false // each commit is pushed once the test is ready for it
	c1 := rig.repo.Commit("qa", "a 1.1.0", tAlice, tAlice)
	run.mu.Lock()
	run.fail[c1] = true
	run.mu.Unlock()
	rig.repo.Git("push", "-q", "origin", "qa")
	eventually(t, "c1's release to fail", func() bool {
		r := newest()
		return r != nil && r.Commit == c1 && r.Status == store.StatusFailed
	})

	var retried *store.Record
	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.2.0"))
	c2 := rig.repo.Commit("qa", "a 1.2.0", tAlice, tAlice)
	rs.arm("a", c2, func() {
		rec, err := Retry(ctx, &cfg, cli, RetryOptions{Env: "qa", Service: "a", Actor: "carol@laptop"})
		if err != nil {
			t.Errorf("the retry beside serve: %v", err)
			return
		}
		retried = rec
	})
	rig.repo.Git("push", "-q", "origin", "qa")
	eventually(t, "c2's release to end", func() bool {
		r := newest()
		return r != nil && r.Commit == c2 && store.Finished(r.Status)
	})
	if retried == nil {
		t.Fatal("the retry did not race")
	}
	got, err := cli.Record(ctx, retried.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusSuperseded {
		t.Errorf("the retry of c1 is %s once c2 (which passed steps 1-4) was written; want superseded", got.Status)
	}
	// A restart must not start c1 after c2 either.
	stop()
	_, stop = start()
	eventually(t, "nothing to be in flight after the restart", func() bool {
		p, err := cli.Pending(ctx)
		r, err2 := cli.Running(ctx)
		return err == nil && err2 == nil && len(p) == 0 && len(r) == 0
	})
	want := []string{"a@" + c1[:8], "a@" + c2[:8]}
	if ran := run.log(); !slices.Equal(ran, want) {
		t.Fatalf("releases ran %v, want %v: c1 once (its failure), then c2", ran, want)
	}
}

// TestAttackCrashWhileRetryRacesANewCommit: the race of
// TestAttackRetryRacesANewCommit, with serve dying after each durable
// write (the retry's insert, made through serve's store so that it counts,
// c2's decision, its start and end) and restarting. Whatever the crash
// point, c2 gets one record that ends once, and c1 never runs after c2.
func TestAttackCrashWhileRetryRacesANewCommit(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy]}`, `{committers: ["*@example.com"]}`)
	ctx := context.Background()
	rig.repo.AutoPush = false
	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	c1 := rig.repo.Commit("qa", "a 1.1.0", tAlice, tAlice)
	rig.repo.Git("push", "-q", "origin", "qa")
	// The base: c1 failed.
	base := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, base)
	runOn := func(state string, n int64, run *failCommits, arm func(*raceApply, *crashStore), done func(store.Store) bool) *crashStore {
		real, err := store.Open(ctx, state, store.Options{Lock: true})
		if err != nil {
			t.Fatal(err)
		}
		cs := newCrashStore(real, n)
		rs := &raceApply{Store: cs}
		if arm != nil {
			arm(rs, cs)
		}
		run.mu.Lock()
		run.dead = cs.crashed
		run.mu.Unlock()
		cfg := *rig.cfg
		cfg.State = state
		a, err := New(ctx, &cfg, Options{Store: rs, Logger: rig.quiet, NoJitter: true, Listener: localListener(t),
			Runners: map[string]runners.Runner{"deploy": run}})
		if err != nil {
			t.Fatal(err)
		}
		a.rel.retry, a.rel.drain = time.Millisecond, 0
		runCtx, cancel := context.WithCancel(ctx)
		exited := make(chan error, 1)
		go func() { exited <- a.Run(runCtx) }()
		deadline := time.Now().Add(20 * time.Second)
		for !cs.crashed() && !done(cs) {
			if time.Now().After(deadline) {
				cancel()
				<-exited
				t.Fatalf("run (crash after write %d): not done within 20s", n)
			}
			select {
			case <-cs.dead:
			case <-time.After(5 * time.Millisecond): // re-check the condition
			}
		}
		cancel()
		<-exited
		return cs
	}
	failed := func(st store.Store) bool {
		recs, err := st.Records(ctx, store.Filter{Environment: "qa", Service: "a", Limit: 1})
		return err == nil && len(recs) == 1 && recs[0].Commit == c1 && recs[0].Status == store.StatusFailed
	}
	runOn(base, 0, &failCommits{fail: map[string]bool{c1: true}}, nil, failed)

	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.2.0"))
	c2 := rig.repo.Commit("qa", "a 1.2.0", tAlice, tAlice)
	rig.repo.Git("push", "-q", "origin", "qa")
	cfg := *rig.cfg
	race := func(rs *raceApply, cs *crashStore) {
		rs.arm("a", c2, func() {
			_, _ = Retry(ctx, &cfg, cs, RetryOptions{Env: "qa", Service: "a", Actor: "carol@laptop"}) // a dead store refuses it
		})
	}
	settled := func(st store.Store) bool {
		b, err := st.Branch(ctx, "deployments", "qa")
		if err != nil || b.LastProcessed != c2 {
			return false
		}
		p, err := st.Pending(ctx)
		r, err2 := st.Running(ctx)
		return err == nil && err2 == nil && len(p) == 0 && len(r) == 0
	}
	fresh := func() string {
		state := filepath.Join(t.TempDir(), "state")
		copyDir(t, base, state)
		return state
	}
	total := runOn(fresh(), 0, &failCommits{}, race, settled).writes.Load()
	t.Logf("crash points: %d durable writes", total)
	for n := int64(0); n <= total; n++ {
		state, run := fresh(), &failCommits{}
		if n > 0 {
			runOn(state, n, run, race, settled)
		}
		runOn(state, 0, run, nil, settled)
		st, err := store.Open(ctx, state, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		fail := func(format string, args ...any) {
			t.Errorf("crash after write %d/%d: %s", n, total, fmt.Sprintf(format, args...))
		}
		recs, err := st.Records(ctx, store.Filter{Environment: "qa", Service: "a"})
		if err != nil {
			t.Fatal(err)
		}
		var of2 []*store.Record
		for _, r := range recs {
			if r.Commit == c2 {
				of2 = append(of2, r)
			}
		}
		if len(of2) != 1 || !store.Finished(of2[0].Status) {
			fail("c2 has %d records (%v), want one that ended", len(of2), of2)
		}
		ran := run.log()
		if i := slices.Index(ran, "a@"+c2[:8]); i >= 0 && slices.Contains(ran[i:], "a@"+c1[:8]) {
			fail("c1 ran after c2: %v", ran)
		}
		if n := strings.Count(strings.Join(ran, " "), "a@"+c2[:8]); n > 1 {
			fail("c2 ran %d times: %v", n, ran)
		}
		st.Close()
	}
}

// retryHook is a store whose Retry runs before first, between the
// retry's decision and its insert.
type retryHook struct {
	store.Store
	before func()
}

func (r *retryHook) Retry(ctx context.Context, rec *store.Record, of string) error {
	r.before()
	return r.Store.Retry(ctx, rec, of)
}

// TestAttackRetryDecidedOnAFreezeThatLifts: `gitmon retry` decides its
// record while qa is frozen (held, rule window) and the freeze is lifted,
// and seen by serve, before the record is written. Serve takes the record
// up and must decide it again, not leave it waiting for an unfreeze that
// has passed.
func TestAttackRetryDecidedOnAFreezeThatLifts(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy]}`, `{committers: ["*@example.com"]}`)
	state := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, state)
	ctx := context.Background()
	cfg := *rig.cfg
	cfg.State = state
	rig.repo.AutoPush = false
	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	c1 := rig.repo.Commit("qa", "a 1.1.0", tAlice, tAlice)
	run := &failCommits{fail: map[string]bool{c1: true}}
	a, err := New(ctx, &cfg, Options{Logger: rig.quiet, NoJitter: true, Listener: localListener(t),
		Runners: map[string]runners.Runner{"deploy": run}})
	if err != nil {
		t.Fatal(err)
	}
	defer runApp(a)()
	cli, err := store.Open(ctx, state, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rig.repo.Git("push", "-q", "origin", "qa")
	eventually(t, "c1's release to fail", func() bool {
		recs, err := cli.Records(ctx, store.Filter{Environment: "qa", Service: "a", Limit: 1})
		return err == nil && len(recs) == 1 && recs[0].Status == store.StatusFailed
	})
	run.mu.Lock()
	run.fail = map[string]bool{}
	run.mu.Unlock()
	if err := cli.Freeze(ctx, store.Freeze{Environment: "qa", Reason: "incident", Actor: "ops@host"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "serve to see the freeze", func() bool { return len(a.freezes.get()) == 1 })
	hook := &retryHook{Store: cli, before: func() {
		if _, _, err := cli.Unfreeze(ctx, "qa", "ops@host"); err != nil {
			t.Error(err)
		}
		eventually(t, "serve to see the unfreeze", func() bool { return len(a.freezes.get()) == 0 })
	}}
	rec, err := Retry(ctx, &cfg, hook, RetryOptions{Env: "qa", Service: "a", Actor: "carol@laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Phase != store.PhaseWindow {
		t.Fatalf("the retry was decided %s/%s; the test needs it held by the freeze", rec.Status, rec.Phase)
	}
	eventually(t, "the retry to run once the freeze is gone", func() bool {
		got, err := cli.Record(ctx, rec.ID)
		return err == nil && got.Status == store.StatusSucceeded
	})
}

// TestAttackRetryRacesANewCommitWhileFrozen: the race of
// TestAttackRetryRacesANewCommit while qa is frozen, with serve taking up
// the held retry before c2's decision is written. c2's write supersedes
// the retry; serve must then drop it from its queue too: held at the head
// of its service, it would keep c2 from ever starting once the freeze
// lifts.
func TestAttackRetryRacesANewCommitWhileFrozen(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy]}`, `{committers: ["*@example.com"]}`)
	state := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, state)
	ctx := context.Background()
	cfg := *rig.cfg
	cfg.State = state
	real, err := store.Open(ctx, state, store.Options{Lock: true})
	if err != nil {
		t.Fatal(err)
	}
	rs := &raceApply{Store: real}
	rig.repo.AutoPush = false
	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	c1 := rig.repo.Commit("qa", "a 1.1.0", tAlice, tAlice)
	run := &failCommits{fail: map[string]bool{c1: true}}
	a, err := New(ctx, &cfg, Options{Store: rs, Logger: rig.quiet, NoJitter: true, Listener: localListener(t),
		Runners: map[string]runners.Runner{"deploy": run}})
	if err != nil {
		t.Fatal(err)
	}
	defer runApp(a)()
	cli, err := store.Open(ctx, state, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rig.repo.Git("push", "-q", "origin", "qa")
	eventually(t, "c1's release to fail", func() bool {
		recs, err := cli.Records(ctx, store.Filter{Environment: "qa", Service: "a", Limit: 1})
		return err == nil && len(recs) == 1 && recs[0].Status == store.StatusFailed
	})
	if err := cli.Freeze(ctx, store.Freeze{Environment: "qa", Reason: "incident", Actor: "ops@host"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "serve to see the freeze", func() bool { return len(a.freezes.get()) == 1 })

	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.2.0"))
	c2 := rig.repo.Commit("qa", "a 1.2.0", tAlice, tAlice)
	var retried *store.Record
	rs.arm("a", c2, func() {
		rec, err := Retry(ctx, &cfg, cli, RetryOptions{Env: "qa", Service: "a", Actor: "carol@laptop"})
		if err != nil {
			t.Errorf("the retry beside serve: %v", err)
			return
		}
		retried = rec
		eventually(t, "serve to take the retry up", func() bool { return a.sched.Has(rec.ID) })
	})
	rig.repo.Git("push", "-q", "origin", "qa")
	eventually(t, "c2 to be decided", func() bool {
		recs, err := cli.Records(ctx, store.Filter{Environment: "qa", Service: "a", Limit: 1})
		return err == nil && len(recs) == 1 && recs[0].Commit == c2
	})
	if retried == nil {
		t.Fatal("the retry did not race")
	}
	if _, _, err := cli.Unfreeze(ctx, "qa", "ops@host"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c2's release to end once the freeze lifts", func() bool {
		recs, err := cli.Records(ctx, store.Filter{Environment: "qa", Service: "a", Limit: 1})
		return err == nil && len(recs) == 1 && recs[0].Commit == c2 && store.Finished(recs[0].Status)
	})
	if got, err := cli.Record(ctx, retried.ID); err != nil || got.Status != store.StatusSuperseded || a.sched.Has(retried.ID) {
		t.Fatalf("the raced retry: %v, %v, still queued %v; want superseded and gone", got.Status, err, a.sched.Has(retried.ID))
	}
}
