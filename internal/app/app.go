// Package app is the daemon: it wires config, monitor, policy, runners and
// store together, polls every repository, turns new commits into records
// and runs their releases, and serves /healthz, /readyz and /metrics. It
// is started and stopped in-process, so tests run the real thing.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/cache"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/integrations/jira"
	"github.com/gitmon-dev/gitmon/internal/notify"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/monitor"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/runners"
)

// Log keys.
const (
	keyRepo    = "repo"
	keyEnv     = "env"
	keyRecord  = "record"
	keyService = "service"
	keyErr     = "err"
)

// Options tune an App beyond its config, for tests and benchmarks.
type Options struct {
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Store replaces the embedded store (default: SQLite in cfg.State).
	Store store.Store
	// Tickets is the JIRA lookup for policy (nil: none configured).
	Tickets policy.TicketChecker
	// Listener serves HTTP (default: listen on cfg.Listen).
	Listener net.Listener
	// Runners overrides the runner of a pipeline by name.
	Runners map[string]runners.Runner
	// NoJitter polls every repository at once when Run starts, rather
	// than each at its own phase of the interval (later polls keep to
	// the phase grid): for tests and the demo, which watch a few.
	NoJitter bool
	// Announcer hears about records (default: nobody).
	Announcer Announcer
}

// App is a running gitmon daemon.
type App struct {
	cfg     *config.Config
	opts    Options
	log     *slog.Logger
	store   store.Store
	engines map[string]*policy.Engine
	runners map[string]runners.Runner
	repos   []*repoState
	metrics *metrics
	sched   *scheduler
	rel     *releaser
	// resumed are the releases Recover found running that go on; the
	// scheduler takes them up first.
	resumed []*store.Record
	// secrets are every secret value the config read, for redaction.
	secrets []string
	// jira is the JIRA integration (nil when not configured); worker
	// delivers the outbox (nil when no integration is configured).
	jira   *jira.Client
	worker *notify.Worker
	// statuses writes records' commit statuses to the outbox (nil
	// without integrations.scm).
	statuses *scmStatuses
	now      func() time.Time

	// decideMu orders deciding a commit's records against starting a
	// release: a record is superseded before it starts, or starts before
	// a later commit is decided, never both half-way.
	decideMu sync.Mutex

	seenMu sync.Mutex
	seenAt map[string]time.Time // pending record id → when its tip was seen

	// poller runs the repositories' polls (poll.go).
	poller *poller
	// freezes are the operators' freezes as serve last read them; waiter
	// wakes records waiting at a gate for a time (holds.go).
	freezes *freezeCache
	waiter  *waiter
}

// repoState is one watched repository.
type repoState struct {
	cfg     *config.Repository
	git     gitRepo
	trigger chan struct{} // coalescing: size 1
	// absent are env branches this process saw missing.
	absent map[string]bool
	poll   pollState // the poller's (poll.go)

	mu       sync.Mutex
	polled   bool
	lastErr  error
	failures int
}

// New builds an App from a loaded config: it opens the store (locking the
// state folder), compiles policies and builds runners. It starts nothing.
func New(ctx context.Context, cfg *config.Config, opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Announcer == nil {
		opts.Announcer = noAnnouncer{}
	}
	a := &App{cfg: cfg, opts: opts, log: opts.Logger, now: opts.Now, engines: map[string]*policy.Engine{},
		runners: map[string]runners.Runner{}, metrics: newMetrics(), seenAt: map[string]time.Time{}, secrets: cfg.Secrets(),
		freezes: &freezeCache{}}

	if ig := cfg.Integrations.Jira; ig != nil {
		c, err := jira.New(*ig, jira.Options{Now: opts.Now, Secrets: a.secrets})
		if err != nil {
			return nil, fmt.Errorf("integrations.jira: %w", err)
		}
		a.jira = c
		if opts.Tickets == nil {
			a.opts.Tickets = c // policy's ticket lookup
		}
	}
	for i := range cfg.Environments {
		env := &cfg.Environments[i]
		e, err := policy.New(env.Policy, a.opts.Tickets)
		if err != nil {
			return nil, fmt.Errorf("environment %s: %w", env.Name, err)
		}
		a.engines[env.Name] = e
	}
	a.store = opts.Store
	if a.store == nil {
		s, err := store.Open(ctx, cfg.State, store.Options{Lock: true, Now: opts.Now})
		if err != nil {
			return nil, err
		}
		a.store = s
	}
	envNames := make([]string, len(cfg.Environments))
	for i, e := range cfg.Environments {
		envNames[i] = e.Name
	}
	a.metrics.reg.MustRegister(&stateCollector{store: a.store, envs: envNames,
		log: func(err error) { a.log.Warn("metrics: reading the state", keyErr, err) }})
	// After the lock: building runners clears the state's run folder.
	rs, err := buildRunners(cfg, a.opts, a.secrets)
	if err != nil {
		a.store.Close()
		return nil, err
	}
	a.runners = rs
	objects := cache.NewObjectLRU(cache.FileSize(cfg.Tuning.ObjectCache.Int64()))
	a.poller = newPoller()
	for i := range cfg.Repositories {
		rc := &cfg.Repositories[i]
		g, err := monitor.NewRepo(remote(rc, envBranches(cfg)), monitor.Options{
			Dir: filepath.Join(cfg.State, "git", rc.Name), Cache: objects, Timeout: cfg.Tuning.GitTimeout,
		})
		if err != nil {
			a.store.Close()
			return nil, fmt.Errorf("repository %s: %w", rc.Name, err)
		}
		a.repos = append(a.repos, a.newRepoState(rc, g))
	}
	if err := a.setupIntegrations(); err != nil {
		a.store.Close()
		return nil, err
	}
	a.rel = &releaser{store: a.store, runners: a.runners, pipelines: cfg.Pipelines, env: cfg.Environment, now: a.now,
		log: a.log, secrets: a.secrets, outputCap: int(cfg.Tuning.OutputCap.Int64()), grace: cfg.Tuning.ShutdownGrace,
		metrics: a.metrics, announce: a.announcer(), seen: a.takeSeen,
		ended: a.releaseEnded,
		retry: 100 * time.Millisecond, retryMax: 5 * time.Second, drain: 5 * time.Second}
	a.sched = newScheduler(schedulerDeps{Concurrency: cfg.Tuning.Concurrency, Log: a.log,
		Start: func(ctx context.Context, id string) {
			if err := a.rel.Run(ctx, id); err != nil && ctx.Err() == nil {
				a.log.Error("release", keyRecord, id, keyErr, err)
			}
		},
		Admit: a.admit, Held: func(ids []string) { a.wakeNow(ids...) }})
	a.waiter = newWaiter(waiterDeps{Now: a.now, Review: a.reviewIDs})
	return a, nil
}

// Run polls and releases until ctx is done, then shuts down: it stops
// polling, lets running stages finish within shutdown_grace, cancels and
// records the rest, and returns nil on a clean stop.
func (a *App) Run(ctx context.Context) error {
	defer a.store.Close()
	defer a.closeRunners()

	resumed, err := a.rel.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recovering interrupted stages: %w", err)
	}
	fs, err := a.store.Freezes(ctx)
	if err != nil {
		return fmt.Errorf("reading the freezes: %w", err)
	}
	a.freezes.set(fs)
	a.statuses.sweep(ctx)
	// The queue starts with what was running (it goes on) and what waits;
	// records waiting at a gate for a time are woken then.
	pending, err := a.store.Pending(ctx)
	if err != nil {
		return fmt.Errorf("reading the pending records: %w", err)
	}
	var lastSeq int64
	for _, rec := range append(resumed, pending...) {
		it := schedItemOf(rec)
		// Decided again at once, before anything starts: upstream,
		// freezes and windows may have moved while gitmon was down, and
		// a queued promotion whose artifact upstream failed meanwhile (or
		// as gitmon died) must not start.
		again := rec.Status == store.StatusPending && (rec.Phase == store.PhasePromotion || rec.Phase == store.PhaseWindow ||
			rec.Phase == store.PhaseQueued && a.gated(rec.Environment))
		if again {
			it.Ready = false
		}
		a.sched.Add(it)
		if again {
			a.waiter.Wait(rec.ID, rec.Seq, a.now())
		}
		lastSeq = max(lastSeq, rec.Seq)
	}

	srv, err := a.serveHTTP()
	if err != nil {
		return err
	}

	// Releases run on their own context: shutdown lets them finish within
	// the grace period before cancelling them.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		a.sched.Run(ctx, runCtx)
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.pollRepos(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.reviewLoop(ctx)
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.waiter.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		a.operatorLoop(ctx, lastSeq)
	}()
	if a.worker != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.worker.Run(ctx) // undelivered items stay in the outbox for the next start
		}()
	}

	<-ctx.Done()
	a.log.Info("shutting down", "grace", a.cfg.Tuning.ShutdownGrace)
	wg.Wait()
	grace := time.NewTimer(a.cfg.Tuning.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-schedDone:
	case <-grace.C:
		a.log.Warn("shutdown grace elapsed; cancelling running stages")
		cancelRuns()
		<-schedDone
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	return nil
}

func (a *App) closeRunners() {
	for _, r := range a.runners {
		if c, ok := r.(runners.Closer); ok {
			c.Close()
		}
	}
}

// logEvents logs what happened to branches (SPEC §9): baselines,
// force-pushes, pauses, deletions, returns.
func (a *App) logEvents(evs []store.Event) {
	for _, e := range evs {
		a.log.Info(e.Message, "event", e.Kind, keyRepo, e.Repository, keyEnv, e.Environment, "branch", e.Branch, "commit", short(e.Commit))
	}
}

// ruleList names the rules of a record's reasons.
func ruleList(r *store.Record) []string {
	out := make([]string, 0, len(r.Reasons))
	for _, rs := range r.Reasons {
		if !slices.Contains(out, rs.Rule) {
			out = append(out, rs.Rule)
		}
	}
	return out
}

// schedItemOf is a pending (or resumed running) record as the scheduler
// sees it: ready unless it waits for policy.
func schedItemOf(r *store.Record) schedItem {
	return schedItem{ID: r.ID, Seq: r.Seq, Repository: r.Repository, Environment: r.Environment, Service: r.Service,
		Ready: r.Status == store.StatusRunning || r.Phase == store.PhaseQueued,
		Pass:  r.Status == store.StatusRunning || r.Evidence.BreakGlass}
}

// afterApply logs a batch's decisions, queues its pending records and
// forgets the ones it superseded, and announces the records that ended at
// their decision.
func (a *App) afterApply(ctx context.Context, b store.Batch) {
	a.forget(b.Supersede...)
	superseded := b.Supersede
	for _, r := range b.Records {
		if slices.Contains(b.Superseding, r.Service) {
			// What the store superseded with it that the decider did not
			// list: queued by another process meanwhile (a retry).
			ids := a.sched.RemoveBefore(r.Repository, r.Environment, r.Service, r.Seq)
			a.forget(ids...)
			superseded = append(slices.Clip(superseded), ids...)
		}
	}
	a.statuses.decided(ctx, b, superseded)
	for _, r := range b.Records {
		a.log.Info("record decided", keyRepo, r.Repository, keyEnv, r.Environment, keyService, r.Service,
			"commit", short(r.Commit), "version", r.Version, "status", r.Status, "phase", r.Phase, "rules", ruleList(r), keyRecord, r.ID)
		if store.Finished(r.Status) {
			a.metrics.records.WithLabelValues(r.Environment, r.Status).Inc() // once, at its terminal status
		}
		switch {
		case r.Status == store.StatusPending:
			a.queue(r)
		case r.Status == store.StatusRejected || r.Status == store.StatusSkipped:
			a.forget(r.ID)
			a.opts.Announcer.Decided(ctx, r)
			// Downstream promotions of this artifact may be rejected now.
			a.upstreamMoved(ctx, r.Repository, r.Environment, r.Service)
		}
	}
}

// forget drops what serve keeps in memory of records that ended before
// they started (superseded, rejected, skipped): their place in the
// scheduler and in the waiter, and when their tip was seen.
func (a *App) forget(ids ...string) {
	a.sched.Remove(ids...)
	a.seenMu.Lock()
	for _, id := range ids {
		delete(a.seenAt, id)
	}
	a.seenMu.Unlock()
	for _, id := range ids {
		a.waiter.Wait(id, 0, time.Time{})
	}
}

// seen remembers when the tip that produced a record was seen, for the
// detection-latency metric, once the store has given it its id.
func (a *App) seen(rec *store.Record, at time.Time) {
	if rec.Status != store.StatusPending {
		return
	}
	a.seenMu.Lock()
	defer a.seenMu.Unlock()
	a.seenAt[rec.ID] = at
}

func (a *App) takeSeen(rec *store.Record) (time.Time, bool) {
	a.seenMu.Lock()
	defer a.seenMu.Unlock()
	t, ok := a.seenAt[rec.ID]
	delete(a.seenAt, rec.ID)
	return t, ok
}

// repo returns the watched repository named name, or nil.
func (a *App) repo(name string) *repoState {
	for _, r := range a.repos {
		if r.cfg.Name == name {
			return r
		}
	}
	return nil
}

// Ready reports whether every repository was polled once (successfully
// or not), and the last error of each repository that is failing.
func (a *App) Ready() (bool, map[string]string) {
	ready := true
	errs := map[string]string{}
	for _, r := range a.repos {
		r.mu.Lock()
		if !r.polled {
			ready = false
		}
		if r.lastErr != nil {
			errs[r.cfg.Name] = r.lastErr.Error()
		}
		r.mu.Unlock()
	}
	return ready, errs
}

// Addr returns the HTTP listen address once Run started serving.
func (a *App) Addr() string {
	if a.opts.Listener != nil {
		return a.opts.Listener.Addr().String()
	}
	return a.cfg.Listen
}
