package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

const (
	tAlice = "Alice <alice@example.com>"
)

func tDescriptor(service, version string) string {
	return fmt.Sprintf("service: %s\nversion: %s\ndomain: %s.example.com\nport: 8080\n", service, version, service)
}

// errCrashed is what every write returns once a crashStore "died".
var errCrashed = errors.New("crashed: gitmon is dead")

// crashStore is a store that dies after its n-th durable write: that write
// commits, and every later one fails without writing, as if the process
// had been killed right after it. With n == 0 it never dies and counts.
// failing makes the writes it names fail that many times first (a disk
// that is full for a while).
type crashStore struct {
	store.Store
	n       atomic.Int64 // dies after this write; 0 never (dieAfterNext sets it later)
	writes  atomic.Int64
	dead    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	failing map[string]int
}

func newCrashStore(s store.Store, n int64) *crashStore {
	c := &crashStore{Store: s, dead: make(chan struct{}), failing: map[string]int{}}
	c.n.Store(n)
	return c
}

// dieAfterNext makes the store die after its next durable write.
func (c *crashStore) dieAfterNext() { c.n.Store(c.writes.Load() + 1) }

func (c *crashStore) crashed() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// write runs one durable write under the crash rules.
func (c *crashStore) write(what string, fn func() error) error {
	if c.crashed() {
		return errCrashed
	}
	c.mu.Lock()
	if c.failing[what] > 0 {
		c.failing[what]--
		c.mu.Unlock()
		return fmt.Errorf("%s: disk I/O error (injected)", what)
	}
	c.mu.Unlock()
	if err := fn(); err != nil {
		return err
	}
	if k, n := c.writes.Add(1), c.n.Load(); n > 0 && k >= n {
		c.once.Do(func() { close(c.dead) })
	}
	return nil
}

func (c *crashStore) Apply(ctx context.Context, b store.Batch) error {
	return c.write("apply", func() error { return c.Store.Apply(ctx, b) })
}
func (c *crashStore) Decide(ctx context.Context, r *store.Record, sup []string) error {
	return c.write("decide", func() error { return c.Store.Decide(ctx, r, sup) })
}
func (c *crashStore) StartRecord(ctx context.Context, id string, st []store.Stage, at time.Time) error {
	return c.write("start", func() error { return c.Store.StartRecord(ctx, id, st, at) })
}
func (c *crashStore) UpdateStage(ctx context.Context, id string, i int, s store.Stage) error {
	return c.write("stage", func() error { return c.Store.UpdateStage(ctx, id, i, s) })
}
func (c *crashStore) FinishRecord(ctx context.Context, id, status string, at time.Time) error {
	return c.write("finish", func() error { return c.Store.FinishRecord(ctx, id, status, at) })
}
func (c *crashStore) EndRecord(ctx context.Context, id string, e store.End) error {
	return c.write("end", func() error { return c.Store.EndRecord(ctx, id, e) })
}
func (c *crashStore) AddEvent(ctx context.Context, e store.Event) error {
	return c.write("event", func() error { return c.Store.AddEvent(ctx, e) })
}
func (c *crashStore) Freeze(ctx context.Context, f store.Freeze) error {
	return c.write("freeze", func() error { return c.Store.Freeze(ctx, f) })
}
func (c *crashStore) Unfreeze(ctx context.Context, env, actor string) (store.Freeze, bool, error) {
	var (
		f     store.Freeze
		found bool
	)
	err := c.write("unfreeze", func() error {
		var err error
		f, found, err = c.Store.Unfreeze(ctx, env, actor)
		return err
	})
	return f, found, err
}
func (c *crashStore) Retry(ctx context.Context, r *store.Record, of string) error {
	return c.write("retry", func() error { return c.Store.Retry(ctx, r, of) })
}

// ranLog is an in-process runner that logs every stage it really ran (a
// dead gitmon runs nothing), saves a handle like exec does, and notes the
// handles recovery asked it to end.
type ranLog struct {
	mu     sync.Mutex
	ran    map[string]int // commit/service/stage → runs
	killed int
	dead   func() bool
}

func (l *ranLog) Run(ctx context.Context, req *runners.Request, out io.Writer, h runners.Handle) (runners.Result, error) {
	if l.dead() {
		<-ctx.Done() // a dead process starts nothing
		return runners.Result{}, ctx.Err()
	}
	if err := h.Save(ctx, json.RawMessage(`{"run":"`+req.RunID+`"}`)); err != nil {
		return runners.Result{}, err
	}
	if l.dead() {
		<-ctx.Done()
		return runners.Result{}, ctx.Err()
	}
	l.mu.Lock()
	l.ran[req.Commit[:8]+"/"+req.Service+"/"+req.Stage]++
	l.mu.Unlock()
	fmt.Fprintf(out, "%s %s ok\n", req.Stage, req.Version)
	return runners.Result{OK: true}, nil
}

func (l *ranLog) Recover(ctx context.Context, handle json.RawMessage) error {
	l.mu.Lock()
	l.killed++
	l.mu.Unlock()
	return nil
}

func (l *ranLog) runs(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ran[key]
}

// crashRig is one repository, one environment with a two-stage release,
// and a state folder that has seen the baseline.
type crashRig struct {
	t     *testing.T
	repo  *gitserver.Repo
	cfg   *config.Config
	base  string // the baselined state folder, copied for each run
	tip   string
	log   *ranLog
	quiet *slog.Logger
}

// newCrashRig releases through two stages, deploy and smoke.
func newCrashRig(t *testing.T) *crashRig {
	t.Helper()
	return newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy, smoke]}`, `{committers: ["*@example.com"]}`)
}

// newCrashRigEnv is a repository with services a and b at 1.0.0, and a
// config of one environment and policy (YAML flow lines), baselined.
func newCrashRigEnv(t *testing.T, env, pol string) *crashRig {
	t.Helper()
	repo := gitserver.NewRepo(t)
	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.0.0"))
	repo.WriteFile("services/b.yaml", tDescriptor("b", "1.0.0"))
	repo.Commit("qa", "initial", tAlice, tAlice)
	dir := t.TempDir()
	cfgText := fmt.Sprintf(`state: %s
poll_interval: 100ms
tuning: {concurrency: 1, shutdown_grace: 50ms}
repositories:
  - {name: deployments, url: %q}
environments:
  - %s
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
  smoke: {runner: exec, command: ["/bin/true"]}
policy: %s
`, filepath.Join(dir, "state"), repo.Bare, env, pol)
	cfg := testConfig(t, dir, cfgText)
	rig := &crashRig{t: t, repo: repo, cfg: cfg, log: &ranLog{ran: map[string]int{}},
		quiet: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rig.base = cfg.State
	rig.run(rig.base, 0, func(s *crashStore) bool { return rig.branchAt(s, repo.Head("qa")) })
	return rig
}

// crashEveryWrite stops gitmon after each durable write of processing tip
// in turn, restarts it, and checks SPEC §5 Crashes for services a and b:
// one record each with the given action and stage count, no stage run
// twice, succeeded only if every stage ran and succeeded, failed only with
// an interrupted stage, and last good as okGood says (the version a
// succeeded record leaves; "" none) or as the baseline left it.
func crashEveryWrite(t *testing.T, rig *crashRig, tip, action string, stages int, okGood string) int64 {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, state)
	clean := rig.run(state, 0, func(s *crashStore) bool { return rig.branchAt(s, tip) })
	total := clean.writes.Load()
	t.Logf("crash points: %d durable writes", total)
	for n := int64(1); n <= total; n++ {
		rig.log.ran = map[string]int{}
		state := filepath.Join(t.TempDir(), "state")
		copyDir(t, rig.base, state)
		rig.run(state, n, func(s *crashStore) bool { return rig.branchAt(s, tip) })
		rig.run(state, 0, func(s *crashStore) bool { return rig.branchAt(s, tip) })
		ctx := context.Background()
		st, err := store.Open(ctx, state, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := st.Records(ctx, store.Filter{Repository: "deployments", Environment: "qa"})
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range []string{"a", "b"} {
			fail := func(format string, args ...any) {
				t.Errorf("crash after write %d/%d, service %s: %s", n, total, svc, fmt.Sprintf(format, args...))
			}
			var mine []*store.Record
			for _, r := range recs {
				if r.Service == svc && r.Commit == tip {
					mine = append(mine, r)
				}
			}
			if len(mine) != 1 {
				fail("%d records for the commit, want 1", len(mine))
				continue
			}
			rec := mine[0]
			if rec.Action != action {
				fail("action %q, want %q", rec.Action, action)
			}
			if len(rec.Stages) != stages {
				fail("%d stages, want %d", len(rec.Stages), stages)
			}
			allRan, interrupted := true, false
			for _, stg := range rec.Stages {
				runs := rig.log.runs(tip[:8] + "/" + svc + "/" + stg.Name)
				if runs > 1 {
					fail("stage %s ran %d times", stg.Name, runs)
				}
				if stg.Status == store.StageSucceeded && runs != 1 {
					fail("stage %s is succeeded but ran %d times", stg.Name, runs)
				}
				allRan = allRan && stg.Status == store.StageSucceeded
				interrupted = interrupted || stg.Status == store.StageInterrupted
			}
			want := "1.0.0"
			switch rec.Status {
			case store.StatusSucceeded:
				if !allRan {
					fail("succeeded although not every stage ran and succeeded: %+v", rec.Stages)
				}
				want = okGood
			case store.StatusFailed:
				if !interrupted {
					fail("failed with no interrupted stage: %+v", rec.Stages)
				}
			default:
				fail("status %s after restart", rec.Status)
			}
			sv, err := st.Service(ctx, "deployments", "qa", svc)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if sv.LastGood != nil {
				got = sv.LastGood.Version
			}
			if got != want {
				fail("last good %q, want %q (record %s)", got, want, rec.Status)
			}
		}
		st.Close()
	}
	return total
}

// run starts an App on state with a store that dies after write n (0:
// never), until done says so or the store died, and stops it.
func (r *crashRig) run(state string, n int64, done func(*crashStore) bool) *crashStore {
	r.t.Helper()
	ctx := context.Background()
	real, err := store.Open(ctx, state, store.Options{Lock: true})
	if err != nil {
		r.t.Fatal(err)
	}
	cs := newCrashStore(real, n)
	r.log.dead = cs.crashed
	cfg := *r.cfg
	cfg.State = state
	a, err := New(ctx, &cfg, Options{Store: cs, Logger: r.quiet, NoJitter: true, Listener: localListener(r.t),
		Runners: map[string]runners.Runner{"deploy": r.log, "smoke": r.log}})
	if err != nil {
		r.t.Fatal(err)
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
			r.t.Fatalf("run (crash after write %d): not done within 20s", n)
		}
		select {
		case <-cs.dead:
		case <-time.After(5 * time.Millisecond): // re-check the condition
		}
	}
	cancel()
	if err := <-exited; err != nil && !errors.Is(err, errCrashed) {
		r.t.Logf("run: %v", err)
	}
	return cs
}

// branchAt says whether the branch was processed up to sha and nothing
// is pending or running.
func (r *crashRig) branchAt(s *crashStore, sha string) bool {
	ctx := context.Background()
	b, err := s.Branch(ctx, "deployments", "qa")
	if err != nil || b.LastProcessed != sha {
		return false
	}
	p, err := s.Pending(ctx)
	if err != nil || len(p) > 0 {
		return false
	}
	rs, err := s.Running(ctx)
	return err == nil && len(rs) == 0
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if d.Name() == store.LockFile {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCrashAtEveryWriteOfARelease stops gitmon right after each durable
// write of a commit that releases two services through two stages, then
// restarts it, and checks what SPEC §5 Crashes promises: one record per
// service, no stage run twice, succeeded only when every stage ran and
// succeeded, last good only moved by a succeeded record, and the branch
// processed to its tip.
func TestCrashAtEveryWriteOfARelease(t *testing.T) {
	rig := newCrashRig(t)
	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	rig.repo.WriteFile("services/b.yaml", tDescriptor("b", "1.1.0"))
	tip := rig.repo.Commit("qa", "bump a and b", tAlice, tAlice)
	if total := crashEveryWrite(t, rig, tip, "deploy", 2, "1.1.0"); total < 8 {
		t.Fatalf("an uninterrupted release made %d writes; want at least 8 (decide, 2×(start, stage, stage, end))", total)
	}
}

// TestFailedWriteAtAStageEndIsRetried: a stage's end that cannot be
// written (the disk is full for a while) is retried until it is; the
// record ends succeeded, no stage runs twice, and the service's next
// release does not start meanwhile.
func TestFailedWriteAtAStageEndIsRetried(t *testing.T) {
	rig := newCrashRig(t)
	state := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, state)
	ctx := context.Background()
	real, err := store.Open(ctx, state, store.Options{Lock: true})
	if err != nil {
		t.Fatal(err)
	}
	cs := newCrashStore(real, 0)
	cs.failing["stage"] = 5 // the first stage's end, five times
	cs.failing["end"] = 3   // then the release's end, three times
	rig.log.dead = cs.crashed
	cfg := *rig.cfg
	cfg.State = state
	a, err := New(ctx, &cfg, Options{Store: cs, Logger: rig.quiet, NoJitter: true, Listener: localListener(t),
		Runners: map[string]runners.Runner{"deploy": rig.log, "smoke": rig.log}})
	if err != nil {
		t.Fatal(err)
	}
	a.rel.retry = 5 * time.Millisecond
	defer runApp(a)()

	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	c1 := rig.repo.Commit("qa", "bump a", tAlice, tAlice)
	eventually(t, "the first stage's end to fail", func() bool {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		return cs.failing["stage"] < 5
	})
	// A later commit of the same service arrives while the write fails.
	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.2.0"))
	c2 := rig.repo.Commit("qa", "bump a again", tAlice, tAlice)
	eventually(t, "both releases to end", func() bool { return rig.branchAt(cs, c2) })

	recs, err := cs.Records(ctx, store.Filter{Service: "a", Environment: "qa"})
	if err != nil || len(recs) != 2 {
		t.Fatalf("records %v, %v", recs, err)
	}
	second, first := recs[0], recs[1]
	for _, r := range recs {
		if r.Status != store.StatusSucceeded {
			t.Errorf("record %s %s: status %s, want succeeded: %+v", r.Commit[:8], r.Version, r.Status, r.Stages)
		}
	}
	for _, c := range []string{c1, c2} {
		for _, stage := range []string{"deploy", "smoke"} {
			if n := rig.log.runs(c[:8] + "/a/" + stage); n != 1 {
				t.Errorf("%s of %s ran %d times, want 1", stage, c[:8], n)
			}
		}
	}
	if first.FinishedAt == nil || second.Stages[0].StartedAt == nil || second.Stages[0].StartedAt.Before(*first.FinishedAt) {
		t.Errorf("the second release started at %v, before the first one ended at %v", second.Stages[0].StartedAt, first.FinishedAt)
	}
}

// eventually waits for cond, checking it every few milliseconds, and fails
// the test after 20 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func localListener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
