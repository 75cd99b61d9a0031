package app

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// switchTickets is JIRA that is down until up is set; then every ticket
// is Approved by someone else.
type switchTickets struct{ up atomic.Bool }

func (s *switchTickets) Ticket(_ context.Context, key string) (policy.Ticket, error) {
	if !s.up.Load() {
		return policy.Ticket{}, policy.ErrUnavailable
	}
	return policy.Ticket{Key: key, Status: "Approved", Approvers: []string{"carol@example.com"}}, nil
}

// jiraDeciderRig is a deciderRig whose policy requires an approved OPS
// ticket, looked up in tickets.
func jiraDeciderRig(t *testing.T, tickets policy.TicketChecker) *deciderRig {
	t.Helper()
	cfg := policy.DefaultConfig()
	committers := []string{"*@example.com"}
	cfg.Committers = &committers
	cfg.Jira = policy.JiraConfig{Required: true, Projects: []string{"OPS"}, Statuses: []string{"Approved"}, UnavailableTimeout: time.Hour}
	e, err := policy.New(cfg, tickets)
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeState{svcs: map[string]store.Service{}, claims: map[string][]string{}}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := &decider{repo: "deployments", env: "qa", glob: "services/*.yaml", engine: e, state: st,
		now: func() time.Time { return now },
		read: func(_ context.Context, file, blob string) (*descriptors.Descriptor, error) {
			return descriptors.Parse(file, []byte(blob))
		}}
	return &deciderRig{t: t, d: d, state: st, svcs: newServices("deployments", "qa", nil)}
}

// TestAttackReviewRefusesWhatServeRefuses: a record waits on JIRA; while
// it waits, another repository claims its service, or its environment is
// paused by a force-push. When JIRA answers, the re-review must refuse it
// as serve refuses a new commit (SPEC §5 Collisions, Force-pushes: "every
// record is rejected until resume"); it must not queue it to deploy.
func TestAttackReviewRefusesWhatServeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, paused, rule string
		claimed            bool
	}{
		{name: "collision", claimed: true, rule: policy.RuleCollision},
		{name: "force-push pause", paused: policy.RuleForcePush, rule: policy.RuleForcePush},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jira := &switchTickets{}
			r := jiraDeciderRig(t, jira)
			r.deployed("service: pay\nversion: 1.0.0\n")
			dec := r.commit("alice@example.com", "OPS-1 bump", false, map[string]string{"pay": "service: pay\nversion: 1.1.0\n"})
			rec := dec.records[0]
			if rec.Status != store.StatusPending || rec.Phase != store.PhasePolicy {
				t.Fatalf("while JIRA is down: %s/%s %+v, want pending on policy", rec.Status, rec.Phase, rec.Reasons)
			}
			if tc.claimed {
				r.state.claims["pay"] = []string{"deployments", "other"}
			}
			jira.up.Store(true)
			if _, err := r.d.review(context.Background(), rec, tc.paused); err != nil {
				t.Fatal(err)
			}
			if rec.Status != store.StatusRejected || !hasRule(rec, tc.rule) {
				t.Errorf("re-review: %s/%s %+v, want rejected (rule %s)", rec.Status, rec.Phase, rec.Reasons, tc.rule)
			}
		})
	}
}

// TestAttackReviewJudgesTheRecordsOwnAttribution: Alice's commit waits on
// JIRA; Mallory (an outsider) then changes the same field, and is
// rejected. When JIRA answers, Alice's record is judged on what its own
// requested descriptor was attributed to (SPEC §5 step 1, No ride-along),
// not on the branch's attribution since: Mallory's rejected commit is not
// in it, and must not block or be blamed for Alice's release.
func TestAttackReviewJudgesTheRecordsOwnAttribution(t *testing.T) {
	jira := &switchTickets{}
	r := jiraDeciderRig(t, jira)
	r.deployed("service: pay\nversion: 1.0.0\nimage: ok/pay:1\n")
	dec := r.commit("alice@example.com", "OPS-1 new image", false, map[string]string{"pay": "service: pay\nversion: 1.0.0\nimage: ok/pay:2\n"})
	rec := dec.records[0]
	if rec.Status != store.StatusPending || rec.Phase != store.PhasePolicy {
		t.Fatalf("while JIRA is down: %s/%s %+v, want pending on policy", rec.Status, rec.Phase, rec.Reasons)
	}
	rec.Seq = 1
	dec = r.commit("mallory@evil.example", "OPS-2 my image", false, map[string]string{"pay": "service: pay\nversion: 1.0.0\nimage: evil/pay:1\n"})
	if m := dec.records[0]; m.Status != store.StatusRejected {
		t.Fatalf("the outsider's commit: %s %+v, want rejected", m.Status, m.Reasons)
	}
	// The store now holds the branch's state at Mallory's commit.
	sv := r.state.svcs["pay"]
	sv.Attribution = r.svcs.get("pay").Attribution.Clone()
	r.state.svcs["pay"] = sv
	jira.up.Store(true)
	if _, err := r.d.review(context.Background(), rec, ""); err != nil {
		t.Fatal(err)
	}
	if rec.Status != store.StatusPending || rec.Phase != store.PhaseQueued {
		t.Errorf("Alice's record after JIRA answered: %s/%s %+v, want queued", rec.Status, rec.Phase, rec.Reasons)
	}
}
