package app

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// TestPlanShowsThePromotionGate: plan goes through the gate as serve does,
// as in CI on a pull request into staging. Without a state folder the
// upstream branch's tip stands in for its last good: a version qa's tip
// does not hold waits (decision pending, rule promotion), one it holds
// deploys, and a gated environment's own field change is no promotion.
func TestPlanShowsThePromotionGate(t *testing.T) {
	repo := gitserver.NewRepo(t)
	repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.0.0"))
	repo.Commit("qa", "initial", tAlice, tAlice)
	repo.Branch("staging", "qa")
	dir := t.TempDir()
	cfg := testConfig(t, dir, fmt.Sprintf(`state: %s
repositories:
  - {name: deployments, url: %q}
environments:
  - {name: qa, release: [deploy]}
  - {name: staging, release: [deploy], policy: {promotion: {required: true, from: qa}}}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "no-state"), repo.Bare))
	plan := func(ref string) PlanEntry {
		t.Helper()
		es, err := Plan(context.Background(), cfg, PlanOptions{Env: "staging", Ref: ref})
		if err != nil || len(es) != 1 {
			t.Fatalf("plan of %s: %+v, %v", ref, es, err)
		}
		return es[0]
	}
	rules := func(e PlanEntry) []string {
		var out []string
		for _, r := range e.Reasons {
			out = append(out, r.Rule)
		}
		return out
	}

	repo.Branch("pr", "staging")
	repo.WriteFile("services/pay.yaml", tDescriptor("pay", "2.0.0"))
	pr := repo.Commit("pr", "pay 2.0.0 straight into staging", tAlice, tAlice)
	if e := plan(pr); e.Decision != "pending" || !slices.Contains(rules(e), policy.RulePromotion) {
		t.Fatalf("a version qa's tip does not hold: %s %v", e.Decision, e.Reasons)
	}
	repo.WriteFile("services/pay.yaml", tDescriptor("pay", "2.0.0"))
	repo.Commit("qa", "pay 2.0.0 in qa", tAlice, tAlice)
	if e := plan(pr); e.Decision != "deploy" {
		t.Fatalf("a version qa's tip holds: %s %v", e.Decision, e.Reasons)
	}
	repo.Branch("own", "staging")
	repo.WriteFile("services/pay.yaml", "service: pay\nversion: 1.0.0\ndomain: pay.staging.example.com\nport: 8443\n")
	own := repo.Commit("own", "staging's own port", tAlice, tAlice)
	if e := plan(own); e.Decision != "deploy" || slices.Contains(rules(e), policy.RulePromotion) {
		t.Fatalf("staging's own field: %s %v", e.Decision, e.Reasons)
	}
}
