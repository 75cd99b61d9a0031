package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// promoRig is a real Git server with qa feeding staging (its policy
// given), services pay and web at 1.0.0 on both branches, and a state
// folder that has seen their baselines. Each serve runs on a copy of it.
type promoRig struct {
	t     *testing.T
	repo  *gitserver.Repo
	cfg   *config.Config
	base  string
	quiet *slog.Logger
}

func newPromoRig(t *testing.T, stagingPolicy string, concurrency int) *promoRig {
	t.Helper()
	repo := gitserver.NewRepo(t)
	repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.0.0"))
	repo.WriteFile("services/web.yaml", tDescriptor("web", "1.0.0"))
	repo.Commit("qa", "initial", tAlice, tAlice)
	repo.Branch("staging", "qa")
	dir := t.TempDir()
	cfg := testConfig(t, dir, fmt.Sprintf(`state: %s
poll_interval: 100ms
tuning: {concurrency: %d, shutdown_grace: 50ms}
repositories:
  - {name: deployments, url: %q}
environments:
  - {name: qa, branch: qa, release: [deploy]}
  - {name: staging, branch: staging, release: [deploy], policy: %s}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "state"), concurrency, repo.Bare, stagingPolicy))
	r := &promoRig{t: t, repo: repo, cfg: cfg, base: cfg.State, quiet: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s := r.serve(r.base, 0, &holdRunner{})
	eventually(t, "both baselines", func() bool {
		for _, env := range []string{"qa", "staging"} {
			if b, err := s.store.Branch(context.Background(), "deployments", env); err != nil || !b.Known {
				return false
			}
		}
		return true
	})
	s.stop()
	return r
}

// state copies the baselined state folder for one run.
func (r *promoRig) state() string {
	state := filepath.Join(r.t.TempDir(), "state")
	copyDir(r.t, r.base, state)
	return state
}

// promoServe is one serve of a promoRig.
type promoServe struct {
	t      *testing.T
	a      *App
	store  *crashStore
	cancel context.CancelFunc
	exited chan error
	once   sync.Once
}

// serve starts an App on state whose store dies after write n (0: never),
// releasing through run.
func (r *promoRig) serve(state string, n int64, run runners.Runner) *promoServe {
	r.t.Helper()
	ctx := context.Background()
	real, err := store.Open(ctx, state, store.Options{Lock: true})
	if err != nil {
		r.t.Fatal(err)
	}
	cs := newCrashStore(real, n)
	if h, ok := run.(*holdRunner); ok {
		h.setDead(cs.crashed)
	}
	cfg := *r.cfg
	cfg.State = state
	a, err := New(ctx, &cfg, Options{Store: cs, Logger: r.quiet, NoJitter: true, Listener: localListener(r.t),
		Runners: map[string]runners.Runner{"deploy": run}})
	if err != nil {
		r.t.Fatal(err)
	}
	a.rel.retry, a.rel.drain = time.Millisecond, 0
	runCtx, cancel := context.WithCancel(ctx)
	s := &promoServe{t: r.t, a: a, store: cs, cancel: cancel, exited: make(chan error, 1)}
	go func() { s.exited <- a.Run(runCtx) }()
	r.t.Cleanup(s.stop)
	return s
}

// stop stops the serve and waits for it to exit.
func (s *promoServe) stop() {
	s.once.Do(func() {
		s.cancel()
		if err := <-s.exited; err != nil && !errors.Is(err, errCrashed) {
			s.t.Logf("serve: %v", err)
		}
	})
}

// record returns the newest record of service in env at commit, nil if
// none.
func (s *promoServe) record(env, service, commit string) *store.Record {
	recs, err := s.store.Records(context.Background(), store.Filter{Environment: env, Service: service})
	if err != nil {
		return nil
	}
	for _, r := range recs {
		if r.Commit == commit {
			return r
		}
	}
	return nil
}

// holdRunner runs releases in process: a release of an "env/service" it
// holds waits for its outcome (true succeeds) from that channel; the
// others succeed at once. It logs what it really ran, in order; a dead
// gitmon runs nothing.
type holdRunner struct {
	mu   sync.Mutex
	hold map[string]chan bool
	ran  []string // env/service@commit[:8]
	dead func() bool
}

func (h *holdRunner) setDead(dead func() bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dead = dead
}

// holdNext makes the next releases of env/service wait for an outcome
// on the channel returned.
func (h *holdRunner) holdNext(env, service string) chan bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold == nil {
		h.hold = map[string]chan bool{}
	}
	ch := make(chan bool, 1)
	h.hold[env+"/"+service] = ch
	return ch
}

func (h *holdRunner) Run(ctx context.Context, req *runners.Request, _ io.Writer, _ runners.Handle) (runners.Result, error) {
	h.mu.Lock()
	dead := h.dead != nil && h.dead()
	ch := h.hold[req.Environment+"/"+req.Service]
	if !dead {
		h.ran = append(h.ran, req.Environment+"/"+req.Service+"@"+req.Commit[:8])
	}
	h.mu.Unlock()
	if dead {
		<-ctx.Done()
		return runners.Result{}, ctx.Err()
	}
	if ch == nil {
		return runners.Result{OK: true}, nil
	}
	select {
	case ok := <-ch:
		return runners.Result{OK: ok}, nil
	case <-ctx.Done():
		return runners.Result{}, ctx.Err()
	}
}

// runs counts the releases of env/service at commit.
func (h *holdRunner) runs(env, service, commit string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.ran {
		if r == env+"/"+service+"@"+commit[:8] {
			n++
		}
	}
	return n
}
