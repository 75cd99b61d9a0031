package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// attackPlanRig is one repository and one environment, with a state
// folder that exists but has never seen the branch (a new environment
// added to a running gitmon's config, for example).
func attackPlanRig(t *testing.T, initial string) (*gitserver.Repo, *config.Config) {
	t.Helper()
	repo := gitserver.NewRepo(t)
	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.0.0"))
	repo.WriteFile("services/b.yaml", tDescriptor("b", "1.0.0"))
	repo.Commit("qa", "initial", tAlice, tAlice)
	dir := t.TempDir()
	cfgText := fmt.Sprintf(`state: %s
poll_interval: 100ms
repositories:
  - {name: deployments, url: %q}
environments:
  - {name: qa, branch: qa, initial: %s, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "state"), repo.Bare, initial)
	cfg := testConfig(t, dir, cfgText)
	s, err := store.Open(context.Background(), cfg.State, store.Options{Lock: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return repo, cfg
}

// serveOnce runs serve on cfg until the branch is processed to sha, and
// returns the decisions of the records it made for sha, as plan names them.
func serveOnce(t *testing.T, cfg *config.Config, sha string) map[string]string {
	t.Helper()
	ctx := context.Background()
	real, err := store.Open(ctx, cfg.State, store.Options{Lock: true})
	if err != nil {
		t.Fatal(err)
	}
	cs := newCrashStore(real, 0)
	ran := &ranLog{ran: map[string]int{}, dead: func() bool { return false }}
	a, err := New(ctx, cfg, Options{Store: cs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoJitter: true,
		Listener: localListener(t), Runners: map[string]runners.Runner{"deploy": ran}})
	if err != nil {
		t.Fatal(err)
	}
	defer runApp(a)()
	rig := &crashRig{}
	eventually(t, "serve to process the branch", func() bool { return rig.branchAt(cs, sha) })
	recs, err := cs.Records(ctx, store.Filter{Repository: "deployments", Environment: "qa"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		if r.Commit == sha {
			got[r.Service] = servedDecision(r) + " " + strings.Join(ruleList(r), ",")
		}
	}
	return got
}

func planned(entries []PlanEntry) map[string]string {
	want := map[string]string{}
	for _, e := range entries {
		rules := []string{}
		for _, r := range e.Reasons {
			if !slices.Contains(rules, r.Rule) {
				rules = append(rules, r.Rule)
			}
		}
		want[e.Service] = e.Decision + " " + strings.Join(rules, ",")
	}
	return want
}

// TestAttackPlanOfAFirstSightWithInitialDeploy: with `initial: deploy`,
// serve's first sight of a branch requests every descriptor at its tip
// (SPEC §5 Baseline). plan, given the same state folder, must predict
// those records (SPEC §5 Plan agrees with serve), not an empty plan.
func TestAttackPlanOfAFirstSightWithInitialDeploy(t *testing.T) {
	repo, cfg := attackPlanRig(t, config.InitialDeploy)
	tip := repo.Head("qa")
	plan, err := Plan(context.Background(), cfg, PlanOptions{Env: "qa", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	want := planned(plan)
	got := serveOnce(t, cfg, tip)
	if len(got) != 2 {
		t.Fatalf("serve made %v for the tip; want a record for a and b", got)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plan predicted %v, serve made %v", want, got)
	}
}

// TestAttackPlanOfAFirstSightAtARef: with the default `initial: baseline`
// and a state folder that has not seen the branch, serve's first sight of
// a ref is a baseline that makes no records. plan --ref of that ref must
// not predict records for the commits between today's tip and the ref.
func TestAttackPlanOfAFirstSightAtARef(t *testing.T) {
	repo, cfg := attackPlanRig(t, config.InitialBaseline)
	repo.AutoPush = false
	repo.Branch("next", "qa")
	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	sha := repo.Commit("next", "bump a", tAlice, tAlice)
	repo.Push("next")
	plan, err := Plan(context.Background(), cfg, PlanOptions{Env: "qa", Ref: sha, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	want := planned(plan)
	repo.Branch("qa", sha)
	repo.Push("qa")
	got := serveOnce(t, cfg, sha)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plan predicted %v, serve made %v", want, got)
	}
}

// TestAttackPlanOfDeletionsRenamesAndMerges: plan of each next commit
// before it reaches the branch predicts serve's records for a deletion
// (rejected by allow_delete: false), a rename (a deletion plus a new
// service) and a merge commit (judged along the first parent).
func TestAttackPlanOfDeletionsRenamesAndMerges(t *testing.T) {
	repo, cfg := attackPlanRig(t, config.InitialBaseline)
	serveOnce(t, cfg, repo.Head("qa")) // the baseline
	repo.AutoPush = false
	step := func(name string, build func() string) {
		t.Helper()
		repo.Branch("next", "qa")
		sha := build()
		repo.Push("next")
		plan, err := Plan(context.Background(), cfg, PlanOptions{Env: "qa", Ref: sha, Now: time.Now()})
		if err != nil {
			t.Fatalf("%s: plan: %v", name, err)
		}
		want := planned(plan)
		repo.Branch("qa", sha)
		repo.Push("qa")
		got := serveOnce(t, cfg, sha)
		if len(got) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: plan predicted %v, serve made %v", name, want, got)
		}
	}
	step("deletion", func() string {
		repo.Remove("services/b.yaml")
		return repo.Commit("next", "drop b", tAlice, tAlice)
	})
	step("rename", func() string {
		repo.Remove("services/a.yaml")
		repo.WriteFile("services/c.yaml", tDescriptor("c", "1.0.0"))
		return repo.Commit("next", "a becomes c", tAlice, tAlice)
	})
	step("merge", func() string {
		repo.Branch("feature", "next")
		repo.WriteFile("services/c.yaml", tDescriptor("c", "1.1.0"))
		repo.Commit("feature", "bump c", tAlice, tAlice)
		return repo.Merge("next", "feature", "merge feature", tAlice)
	})
}
