package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

func TestMain(m *testing.M) {
	// file:// URLs run git-upload-pack in this process's environment.
	os.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	os.Exit(m.Run())
}

// countingStore counts every call to the store, by method and
// environment, and can fail the next Branch read of one environment.
type countingStore struct {
	store.Store
	mu       sync.Mutex
	calls    map[string]int // "Method env" → calls
	failNext string         // fail the next Branch read of this environment
}

var errInjected = errors.New("injected store failure")

func (c *countingStore) count(method, env string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[strings.TrimSpace(method+" "+env)]++
}

// take returns the calls counted since the last take.
func (c *countingStore) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.calls
	c.calls = map[string]int{}
	return got
}

func (c *countingStore) Branch(ctx context.Context, repo, env string) (store.Branch, error) {
	c.count("Branch", env)
	c.mu.Lock()
	fail := c.failNext == env
	if fail {
		c.failNext = ""
	}
	c.mu.Unlock()
	if fail {
		return store.Branch{}, errInjected
	}
	return c.Store.Branch(ctx, repo, env)
}
func (c *countingStore) Services(ctx context.Context, repo, env string) ([]store.Service, error) {
	c.count("Services", env)
	return c.Store.Services(ctx, repo, env)
}
func (c *countingStore) Service(ctx context.Context, repo, env, service string) (store.Service, error) {
	c.count("Service", env)
	return c.Store.Service(ctx, repo, env, service)
}
func (c *countingStore) Claims(ctx context.Context, env, service string) ([]string, error) {
	c.count("Claims", env)
	return c.Store.Claims(ctx, env, service)
}
func (c *countingStore) Apply(ctx context.Context, b store.Batch) error {
	c.count("Apply", b.Environment)
	return c.Store.Apply(ctx, b)
}
func (c *countingStore) Record(ctx context.Context, id string) (*store.Record, error) {
	c.count("Record", "")
	return c.Store.Record(ctx, id)
}
func (c *countingStore) Records(ctx context.Context, f store.Filter) ([]*store.Record, error) {
	c.count("Records", f.Environment)
	return c.Store.Records(ctx, f)
}
func (c *countingStore) Pending(ctx context.Context) ([]*store.Record, error) {
	c.count("Pending", "")
	return c.Store.Pending(ctx)
}
func (c *countingStore) Running(ctx context.Context) ([]*store.Record, error) {
	c.count("Running", "")
	return c.Store.Running(ctx)
}
func (c *countingStore) Decide(ctx context.Context, r *store.Record, supersede []string) error {
	c.count("Decide", r.Environment)
	return c.Store.Decide(ctx, r, supersede)
}
func (c *countingStore) StartRecord(ctx context.Context, id string, stages []store.Stage, at time.Time) error {
	c.count("StartRecord", "")
	return c.Store.StartRecord(ctx, id, stages, at)
}
func (c *countingStore) UpdateStage(ctx context.Context, id string, i int, s store.Stage) error {
	c.count("UpdateStage", "")
	return c.Store.UpdateStage(ctx, id, i, s)
}
func (c *countingStore) FinishRecord(ctx context.Context, id, status string, at time.Time) error {
	c.count("FinishRecord", "")
	return c.Store.FinishRecord(ctx, id, status, at)
}
func (c *countingStore) AddEvent(ctx context.Context, e store.Event) error {
	c.count("AddEvent", e.Environment)
	return c.Store.AddEvent(ctx, e)
}
func (c *countingStore) Events(ctx context.Context, f store.Filter) ([]store.Event, error) {
	c.count("Events", f.Environment)
	return c.Store.Events(ctx, f)
}
func (c *countingStore) Resume(ctx context.Context, env, repo, actor string) ([]store.Branch, error) {
	c.count("Resume", env)
	return c.Store.Resume(ctx, env, repo, actor)
}
func (c *countingStore) Enqueue(ctx context.Context, items ...store.OutboxItem) error {
	c.count("Enqueue", "")
	return c.Store.Enqueue(ctx, items...)
}
func (c *countingStore) DueOutbox(ctx context.Context, now time.Time, limit int, kinds ...string) ([]store.OutboxItem, error) {
	c.count("DueOutbox", "")
	return c.Store.DueOutbox(ctx, now, limit, kinds...)
}
func (c *countingStore) MarkDead(ctx context.Context, id int64, errText string, at time.Time) (bool, error) {
	c.count("MarkDead", "")
	return c.Store.MarkDead(ctx, id, errText, at)
}
func (c *countingStore) DeadLetters(ctx context.Context) (int, error) {
	c.count("DeadLetters", "")
	return c.Store.DeadLetters(ctx)
}
func (c *countingStore) Processed(ctx context.Context, repo, env string, shas []string) (map[string]bool, error) {
	c.count("Processed", env)
	return c.Store.Processed(ctx, repo, env, shas)
}
func (c *countingStore) EndRecord(ctx context.Context, id string, e store.End) error {
	c.count("EndRecord", "")
	return c.Store.EndRecord(ctx, id, e)
}
func (c *countingStore) Deployed(ctx context.Context) ([]store.Deployed, error) {
	c.count("Deployed", "")
	return c.Store.Deployed(ctx)
}
func (c *countingStore) Branches(ctx context.Context) ([]store.Branch, error) {
	c.count("Branches", "")
	return c.Store.Branches(ctx)
}
func (c *countingStore) MarkSent(ctx context.Context, id int64, externalID string, at time.Time) error {
	c.count("MarkSent", "")
	return c.Store.MarkSent(ctx, id, externalID, at)
}
func (c *countingStore) MarkFailed(ctx context.Context, id int64, errText string, next time.Time) error {
	c.count("MarkFailed", "")
	return c.Store.MarkFailed(ctx, id, errText, next)
}
func (c *countingStore) OutboxItem(ctx context.Context, key string) (store.OutboxItem, bool, error) {
	c.count("OutboxItem", "")
	return c.Store.OutboxItem(ctx, key)
}

// tipsFixture is an App watching one real repository (file://) with
// environments qa, staging and prod, over a counting SQLite store.
type tipsFixture struct {
	t     *testing.T
	repo  *gitserver.Repo
	state string
	cfg   *config.Config
	st    *countingStore
	a     *App
}

const alice = "Alice <alice@example.com>"

func newTipsFixture(t *testing.T) *tipsFixture {
	t.Helper()
	gitserver.Require(t)
	f := &tipsFixture{t: t, repo: gitserver.NewRepo(t)}
	f.repo.WriteFile("services/api.yaml", "service: api\nversion: 1.0.0\n")
	f.repo.Commit("qa", "api 1.0.0", alice, alice)
	f.repo.Branch("staging", "qa")
	// prod does not exist yet.
	dir := t.TempDir()
	f.state = filepath.Join(dir, "state")
	cfgText := fmt.Sprintf(`state: %s
poll_interval: 1h
repositories:
  - {name: deployments, url: %q}
environments:
  - {name: qa, branch: qa, release: [deploy]}
  - {name: staging, branch: staging, release: [deploy]}
  - {name: prod, branch: prod, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, f.state, "file://"+f.repo.Bare)
	cfg := testConfig(t, dir, cfgText)
	f.cfg = cfg
	f.start()
	return f
}

// start opens the state and builds the App, as `serve` starting does.
func (f *tipsFixture) start() {
	f.t.Helper()
	s, err := store.Open(context.Background(), f.state, store.Options{Lock: true})
	if err != nil {
		f.t.Fatal(err)
	}
	f.st = &countingStore{Store: s, calls: map[string]int{}}
	a, err := New(context.Background(), f.cfg, Options{Store: f.st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.t.Fatal(err)
	}
	f.a = a
	f.t.Cleanup(f.stop)
}

func (f *tipsFixture) stop() {
	if f.a == nil {
		return
	}
	for _, r := range f.a.repos {
		if c, ok := r.git.(io.Closer); ok {
			c.Close()
		}
	}
	f.st.Store.Close()
	f.a = nil
}

// poll polls the repository once and returns the store calls it made.
func (f *tipsFixture) poll() map[string]int {
	f.t.Helper()
	f.st.take()
	if err := f.a.poll(context.Background(), f.a.repos[0]); err != nil {
		f.t.Fatalf("poll: %v", err)
	}
	return f.st.take()
}

func (f *tipsFixture) branch(env string) store.Branch {
	f.t.Helper()
	b, err := f.st.Store.Branch(context.Background(), "deployments", env)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *tipsFixture) events(kind, env string) int {
	f.t.Helper()
	evs, err := f.st.Store.Events(context.Background(), store.Filter{Repository: "deployments", Environment: env})
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func envsOf(calls map[string]int) []string {
	seen := map[string]bool{}
	for k := range calls {
		if i := strings.IndexByte(k, ' '); i >= 0 {
			seen[k[i+1:]] = true
		} else {
			seen[""] = true
		}
	}
	var out []string
	for e := range seen {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// TestUnchangedPollTouchesNoStore: once every branch is processed, a poll
// whose listing is unchanged makes no store call at all; a moved branch
// makes calls for its environment only.
func TestUnchangedPollTouchesNoStore(t *testing.T) {
	f := newTipsFixture(t)
	if calls := f.poll(); calls["Branch qa"] == 0 || calls["Branch staging"] == 0 || calls["Branch prod"] == 0 {
		t.Fatalf("the first poll did not read every branch: %v", calls)
	}
	for i := range 3 {
		if calls := f.poll(); len(calls) != 0 {
			t.Fatalf("unchanged poll %d made store calls: %v", i+1, calls)
		}
	}
	f.repo.WriteFile("services/api.yaml", "service: api\nversion: 1.1.0\n")
	tip := f.repo.Commit("qa", "api 1.1.0", alice, alice)
	calls := f.poll()
	if envs := envsOf(calls); len(envs) != 1 || envs[0] != "qa" {
		t.Errorf("a poll after qa moved made calls for %v, want qa only: %v", envs, calls)
	}
	if got := f.branch("qa").LastProcessed; got != tip {
		t.Fatalf("qa processed to %.10s, want %.10s", got, tip)
	}
	if calls := f.poll(); len(calls) != 0 {
		t.Fatalf("unchanged poll after the move made store calls: %v", calls)
	}
}

// TestFailedBranchIsRetried: a branch whose processing failed is
// processed again at the next poll, though its tip did not move; the
// others are not.
func TestFailedBranchIsRetried(t *testing.T) {
	f := newTipsFixture(t)
	f.st.failNext = "staging"
	if err := f.a.poll(context.Background(), f.a.repos[0]); !errors.Is(err, errInjected) {
		t.Fatalf("poll = %v, want the injected failure", err)
	}
	calls := f.poll()
	if calls["Branch staging"] != 1 || calls["Branch qa"] != 0 || calls["Branch prod"] != 0 {
		t.Fatalf("the poll after a failure read %v, want staging's branch only", calls)
	}
	if f.branch("staging").LastProcessed != f.repo.Head("staging") {
		t.Fatal("staging was not processed by the retry")
	}
	if calls := f.poll(); len(calls) != 0 {
		t.Fatalf("unchanged poll made store calls: %v", calls)
	}
}

// TestDeletedAndAbsentBranches: with the in-memory tips, a deleted branch
// still pauses its environment once, an absent one is recorded
// branch_absent once (across a restart too), a returning branch lifts
// the pause, and an appearing one requests every descriptor.
func TestDeletedAndAbsentBranches(t *testing.T) {
	f := newTipsFixture(t)
	f.poll()
	staging := f.repo.Head("staging")
	if n := f.events(store.EventBranchAbsent, "prod"); n != 1 {
		t.Fatalf("%d branch_absent events for prod, want 1", n)
	}

	f.repo.DeleteBranch("staging")
	f.poll()
	if b := f.branch("staging"); b.Paused != store.PauseDeleted || b.LastProcessed != staging {
		t.Fatalf("deleted staging: %+v, want paused (deleted) at %.10s", b, staging)
	}
	for range 3 {
		if calls := f.poll(); len(calls) != 0 {
			t.Fatalf("a poll with staging still deleted made store calls: %v", calls)
		}
	}
	if n := f.events(store.EventBranchDeleted, "staging"); n != 1 {
		t.Errorf("%d branch_deleted events, want 1", n)
	}

	// A restart forgets the tips: each branch is processed once more,
	// with no second event.
	f.stop()
	f.start()
	f.poll()
	f.poll()
	if n := f.events(store.EventBranchDeleted, "staging"); n != 1 {
		t.Errorf("%d branch_deleted events after a restart, want 1", n)
	}
	if n := f.events(store.EventBranchAbsent, "prod"); n != 1 {
		t.Errorf("%d branch_absent events after a restart, want 1", n)
	}

	f.repo.Branch("staging", staging)
	f.poll()
	if b := f.branch("staging"); b.Paused != "" {
		t.Fatalf("staging returned but is still paused: %+v", b)
	}
	if n := f.events(store.EventUnpaused, "staging"); n != 1 {
		t.Errorf("%d unpaused events, want 1", n)
	}

	f.repo.Branch("prod", "qa")
	f.poll()
	recs, err := f.st.Store.Records(context.Background(), store.Filter{Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Service != "api" || recs[0].Status == store.StatusSkipped {
		t.Fatalf("prod appeared: records %+v, want api requested", recs)
	}
	if calls := f.poll(); len(calls) != 0 {
		t.Fatalf("unchanged poll made store calls: %v", calls)
	}
}
