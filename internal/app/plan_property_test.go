package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

const tMallory = "Mallory <mallory@evil.example.net>"

// TestPlanPredictsServe is the property of SPEC §5 "Plan agrees with
// serve": over random histories (bumps, skip markers, outsiders, rule
// breaks, reverts, comment-only edits, two services in one commit,
// descriptors that do not parse and their repair), `plan` of each commit
// before it reaches the branch predicts the records `serve` then makes for
// it: the same services, decisions and rules.
func TestPlanPredictsServe(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { planProperty(t, seed, 14) })
	}
}

func planProperty(t *testing.T, seed uint64, steps int) {
	rnd := rand.New(rand.NewPCG(seed, 7))
	repo := gitserver.NewRepo(t)
	svcs := []string{"a", "b", "c"}
	version := map[string]int{}
	content := map[string]string{}
	set := func(svc string, extra ...string) {
		c := fmt.Sprintf("service: %s\nversion: 1.%d.0\nport: 8080\n%s", svc, version[svc], strings.Join(extra, "\n"))
		content[svc] = c
		repo.WriteFile("services/"+svc+".yaml", c)
	}
	for _, s := range svcs {
		set(s)
	}
	repo.Commit("qa", "initial", tAlice, tAlice)

	dir := t.TempDir()
	cfgText := fmt.Sprintf(`state: %s
poll_interval: 100ms
tuning: {concurrency: 2}
repositories:
  - {name: deployments, url: %q}
environments:
  - {name: qa, branch: qa, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy:
  committers: ["*@example.com"]
  changes: {allowed_ports: ["8000-8999"]}
`, filepath.Join(dir, "state"), repo.Bare)
	cfg := testConfig(t, dir, cfgText)
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
	eventually(t, "the baseline", func() bool { return rig.branchAt(cs, repo.Head("qa")) })

	repo.AutoPush = false
	for step := range steps {
		// Build the next commit on a branch qa does not see yet.
		repo.Branch("next", "qa")
		who, msg := tAlice, fmt.Sprintf("step %d", step)
		touched := []string{svcs[rnd.IntN(len(svcs))]}
		switch k := rnd.IntN(9); k {
		case 0: // two services in one commit
			touched = append(touched, svcs[(slices.Index(svcs, touched[0])+1)%len(svcs)])
		case 1:
			msg += " [skip deploy]"
		case 2:
			who = tMallory
		case 3: // a rule break: a port outside allowed_ports
			content[touched[0]] += "\nports: [22]"
			repo.WriteFile("services/"+touched[0]+".yaml", content[touched[0]])
			touched = nil
		case 4: // a comment-only edit
			content[touched[0]] += "\n# a comment"
			repo.WriteFile("services/"+touched[0]+".yaml", content[touched[0]])
			touched = nil
		case 5: // a descriptor that does not parse
			repo.WriteFile("services/"+touched[0]+".yaml", content[touched[0]]+"\nport: 8081")
			touched = nil
		case 6: // a revert to the previous version
			if version[touched[0]] > 0 {
				version[touched[0]]--
			}
			set(touched[0])
			touched = nil
		}
		for _, s := range touched {
			version[s]++
			set(s)
		}
		sha := repo.Commit("next", msg, who, who)
		repo.Push("next")

		plan, err := Plan(ctx, cfg, PlanOptions{Env: "qa", Ref: sha, Now: time.Now()})
		if err != nil {
			t.Fatalf("step %d: plan: %v", step, err)
		}
		repo.Branch("qa", sha)
		repo.Push("qa")
		eventually(t, "serve to process the step", func() bool { return rig.branchAt(cs, sha) })

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
		want := map[string]string{}
		for _, e := range plan {
			rules := []string{}
			for _, r := range e.Reasons {
				if !slices.Contains(rules, r.Rule) {
					rules = append(rules, r.Rule)
				}
			}
			want[e.Service] = e.Decision + " " + strings.Join(rules, ",")
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("step %d (%q by %s): plan predicted %v, serve made %v", step, msg, who, want, got)
		}
	}
}

// servedDecision is what serve decided of a record, whatever happened to
// it since: a record that was queued is a "deploy".
func servedDecision(r *store.Record) string {
	switch r.Status {
	case store.StatusSkipped:
		return "skip"
	case store.StatusRejected:
		return "reject"
	case store.StatusPending:
		if r.Phase == store.PhasePolicy {
			return "pending"
		}
	}
	return "deploy"
}
