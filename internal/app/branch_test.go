package app

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/monitor"
)

// fakeGit is an in-memory repository for the branch state machine's unit
// tests: commits with files, branches, first-parent walks and rewrites as
// monitor.Repo computes them. Blob ids are the file contents.
type fakeGit struct {
	commits  map[string]fakeCommit
	branches map[string]string
	n        int
}

type fakeCommit struct {
	monitor.Commit
	files map[string]string
}

func newFakeGit() *fakeGit {
	return &fakeGit{commits: map[string]fakeCommit{}, branches: map[string]string{}}
}

// commit adds a commit on branch with files changed (content "" deletes).
func (g *fakeGit) commit(branch, email string, files map[string]string) string {
	return g.commitMsg(branch, email, "", files)
}

// commitMsg is commit with a message ("": "commit N").
func (g *fakeGit) commitMsg(branch, email, msg string, files map[string]string) string {
	g.n++
	sum := sha1.Sum([]byte(fmt.Sprint(g.n, branch, files)))
	sha := hex.EncodeToString(sum[:])
	parent, tree := g.branches[branch], map[string]string{}
	if parent != "" {
		for p, c := range g.commits[parent].files {
			tree[p] = c
		}
	}
	for p, c := range files {
		if c == "" {
			delete(tree, p)
		} else {
			tree[p] = c
		}
	}
	c := monitor.Commit{SHA: sha, Message: cmp.Or(msg, fmt.Sprintf("commit %d", g.n))}
	if parent != "" {
		c.Parents = []string{parent}
	}
	c.Author.Email, c.Committer.Email = email, email
	g.commits[sha] = fakeCommit{Commit: c, files: tree}
	g.branches[branch] = sha
	return sha
}

func (g *fakeGit) ListBranches(context.Context) (map[string]string, error) {
	out := map[string]string{}
	for b, s := range g.branches {
		out[b] = s
	}
	return out, nil
}
func (g *fakeGit) Fetch(context.Context, string) error { return nil }
func (g *fakeGit) Commit(_ context.Context, sha string) (monitor.Commit, error) {
	c, ok := g.commits[sha]
	if !ok {
		return monitor.Commit{}, fmt.Errorf("no commit %s", sha)
	}
	return c.Commit, nil
}
func (g *fakeGit) chain(sha string) []string { // first parents, newest first
	var out []string
	for sha != "" {
		out = append(out, sha)
		ps := g.commits[sha].Parents
		sha = ""
		if len(ps) > 0 {
			sha = ps[0]
		}
	}
	return out
}
func (g *fakeGit) Walk(_ context.Context, from, to string, _ int) ([]monitor.Commit, *monitor.Rewrite, error) {
	chain := g.chain(to)
	var out []monitor.Commit
	if i := slices.Index(chain, from); i >= 0 || from == "" {
		if from == "" {
			i = 1
		}
		for j := i - 1; j >= 0; j-- {
			out = append(out, g.commits[chain[j]].Commit)
		}
		return out, nil, nil
	}
	old := g.chain(from)
	rw := &monitor.Rewrite{}
	base := len(chain)
	for i, c := range chain {
		if slices.Contains(old, c) {
			rw.MergeBase, base = c, i
			break
		}
	}
	for _, c := range old {
		if c == rw.MergeBase {
			break
		}
		rw.Dropped = append(rw.Dropped, c)
	}
	for j := base - 1; j >= 0; j-- {
		out = append(out, g.commits[chain[j]].Commit)
	}
	return out, rw, nil
}
func (g *fakeGit) Changed(_ context.Context, c monitor.Commit, _ string) ([]monitor.FileChange, error) {
	now, before := g.commits[c.SHA].files, map[string]string{}
	if len(c.Parents) > 0 {
		before = g.commits[c.Parents[0]].files
	}
	var out []monitor.FileChange
	for p, b := range now {
		if before[p] != b {
			out = append(out, monitor.FileChange{Path: p, OldBlob: before[p], NewBlob: b})
		}
	}
	for p, b := range before {
		if _, ok := now[p]; !ok {
			out = append(out, monitor.FileChange{Path: p, OldBlob: b})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
func (g *fakeGit) Files(_ context.Context, sha, _ string) ([]monitor.File, error) {
	var out []monitor.File
	for p, b := range g.commits[sha].files {
		out = append(out, monitor.File{Path: p, Blob: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
func (g *fakeGit) ReadBlob(_ context.Context, blob string, _ int64) ([]byte, error) {
	return []byte(blob), nil
}
func (g *fakeGit) IsAncestor(_ context.Context, a, b string) (bool, error) {
	for _, c := range g.chain(b) {
		if c == a {
			return true, nil
		}
	}
	return false, nil
}
func (g *fakeGit) Resolve(_ context.Context, ref string) (string, error) {
	if s, ok := g.branches[ref]; ok {
		return s, nil
	}
	return ref, nil
}

// branchRig is an App over a fakeGit and a real store, polled by hand.
type branchRig struct {
	t   testing.TB
	a   *App
	git *fakeGit
}

func newBranchRig(t testing.TB, policyYAML string) *branchRig {
	t.Helper()
	dir := t.TempDir()
	cfgText := fmt.Sprintf(`state: %s
repositories:
  - {name: deployments, url: %q}
environments:
  - {name: qa, branch: qa, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]%s}
`, filepath.Join(dir, "state"), filepath.Join(dir, "unused.git"), policyYAML)
	cfg := testConfig(t, dir, cfgText)
	a, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Listener: localListener(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.store.Close() })
	g := newFakeGit()
	a.repos[0].git = g
	return &branchRig{t: t, a: a, git: g}
}

func (r *branchRig) poll() {
	r.t.Helper()
	if err := r.a.poll(context.Background(), r.a.repos[0]); err != nil {
		r.t.Fatal(err)
	}
}

func (r *branchRig) records(sha string) []*store.Record {
	r.t.Helper()
	recs, err := r.a.store.Records(context.Background(), store.Filter{Environment: "qa"})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []*store.Record
	for _, rec := range recs {
		if rec.Commit == sha {
			out = append(out, rec)
		}
	}
	return out
}

func (r *branchRig) branch() store.Branch {
	r.t.Helper()
	b, err := r.a.store.Branch(context.Background(), "deployments", "qa")
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func (r *branchRig) events(kind string) int {
	evs, err := r.a.store.Events(context.Background(), store.Filter{Environment: "qa"})
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func desc(svc, version string) map[string]string {
	return map[string]string{"services/" + svc + ".yaml": fmt.Sprintf("service: %s\nversion: %s\n", svc, version)}
}

func TestBranchBaselineThenCommit(t *testing.T) {
	r := newBranchRig(t, "")
	base := r.git.commit("qa", "alice@example.com", desc("pay", "1.0.0"))
	r.poll()
	if b := r.branch(); !b.Known || b.LastProcessed != base || r.events(store.EventBaseline) != 1 || len(r.records(base)) != 0 {
		t.Fatalf("baseline: %+v, %d baseline events, %d records", b, r.events(store.EventBaseline), len(r.records(base)))
	}
	c := r.git.commit("qa", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	r.poll() // an unchanged tip changes nothing
	if recs := r.records(c); len(recs) != 1 || recs[0].Status != store.StatusPending {
		t.Errorf("records of the commit: %+v", recs)
	}
}

func TestBranchAbsentThenAppearsIsRequested(t *testing.T) {
	r := newBranchRig(t, "")
	r.git.commit("main", "alice@example.com", desc("pay", "1.0.0"))
	r.poll()
	r.poll()
	if n := r.events(store.EventBranchAbsent); n != 1 {
		t.Fatalf("%d branch_absent events, want 1", n)
	}
	tip := r.git.commit("qa", "alice@example.com", desc("pay", "1.0.0"))
	r.poll()
	if recs := r.records(tip); len(recs) != 1 || recs[0].Status != store.StatusPending {
		t.Errorf("a branch that appeared: every descriptor is requested; records %+v", recs)
	}
}

func TestBranchDeletedPausesAndReturns(t *testing.T) {
	r := newBranchRig(t, "")
	base := r.git.commit("qa", "alice@example.com", desc("pay", "1.0.0"))
	r.poll()
	delete(r.git.branches, "qa")
	r.poll()
	if b := r.branch(); b.Paused != store.PauseDeleted {
		t.Fatalf("deleted branch: pause %q", b.Paused)
	}
	if got := gauge(t, r.a, "gitmon_environment_paused", "qa"); got != 1 {
		t.Errorf("gitmon_environment_paused{qa} = %v while paused, want 1", got)
	}
	if got := gauge(t, r.a, "gitmon_service_info", "qa", "deployments", "pay", "1.0.0"); got != 1 {
		t.Errorf("gitmon_service_info of the baseline = %v, want 1", got)
	}
	r.git.branches["qa"] = base
	r.poll()
	if got := gauge(t, r.a, "gitmon_environment_paused", "qa"); got != 0 {
		t.Errorf("gitmon_environment_paused{qa} = %v once back, want 0", got)
	}
	if b := r.branch(); b.Paused != "" || r.events(store.EventUnpaused) != 1 {
		t.Errorf("branch back: pause %q, %d unpaused events", b.Paused, r.events(store.EventUnpaused))
	}
}

func TestBranchForcePushAwayAndBackProcessesOnce(t *testing.T) {
	for _, mode := range []string{"reject", "allow"} {
		t.Run(mode, func(t *testing.T) {
			r := newBranchRig(t, ", force_push: "+mode)
			base := r.git.commit("qa", "alice@example.com", desc("pay", "1.0.0"))
			r.poll()
			x := r.git.commit("qa", "alice@example.com", desc("pay", "1.1.0"))
			z := r.git.commit("qa", "alice@example.com", desc("pay", "1.2.0"))
			r.poll()
			r.git.branches["qa"] = base // push -f X~1
			r.poll()
			if r.events(store.EventForcePush) != 1 {
				t.Fatalf("%d force_push events, want 1", r.events(store.EventForcePush))
			}
			if b := r.branch(); (mode == "reject") != (b.Paused == store.PauseForcePush) {
				t.Errorf("after the force-push: pause %q under force_push %s", b.Paused, mode)
			}
			r.git.branches["qa"] = z // and back
			r.poll()
			for _, c := range []string{x, z} {
				if n := len(r.records(c)); n != 1 {
					t.Errorf("commit %.8s has %d records, want 1", c, n)
				}
			}
			if b := r.branch(); b.Paused != "" || b.LastProcessed != z {
				t.Errorf("back on top: pause %q at %.8s, want none at %.8s", b.Paused, b.LastProcessed, z)
			}
			w := r.git.commit("qa", "alice@example.com", desc("pay", "1.3.0"))
			r.poll()
			if recs := r.records(w); len(recs) != 1 || recs[0].Status != store.StatusPending {
				t.Errorf("the next commit: %+v", recs)
			}
		})
	}
}

func TestBranchForcePushElsewherePausesUntilBack(t *testing.T) {
	r := newBranchRig(t, "")
	base := r.git.commit("qa", "alice@example.com", desc("pay", "1.0.0"))
	r.poll()
	x := r.git.commit("qa", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	r.git.branches["qa"] = base
	y := r.git.commit("qa", "alice@example.com", desc("pay", "1.5.0")) // a rewrite on top of base
	r.poll()
	if recs := r.records(y); len(recs) != 1 || recs[0].Status != store.StatusRejected || recs[0].Reasons[0].Rule != "force_push" {
		t.Fatalf("the rewritten commit: %+v", recs)
	}
	r.git.branches["qa"] = x
	r.git.commit("qa", "alice@example.com", desc("pay", "1.6.0"))
	r.poll()
	if b := r.branch(); b.Paused != "" {
		t.Errorf("back on top of %.8s: still paused %q", x, b.Paused)
	}
}

// gauge returns the value of the metric name with exactly these label
// values (labels sorted by name), or -1.
func gauge(t *testing.T, a *App, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, l := range m.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			if slices.Equal(vals, labels) {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
