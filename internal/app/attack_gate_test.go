package app

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/policy/policytest"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

const promoGated = `{promotion: {required: true, from: qa}}`

// payPort is pay at version with another port: the same artifact, another
// descriptor.
func payPort(version string, port int) string {
	return fmt.Sprintf("service: pay\nversion: %s\ndomain: pay.example.com\nport: %d\n", version, port)
}

// TestAttackGateUpstreamFailsWhileQueued: staging's pay 1.1.0 passed the
// gate (qa released it) and is queued behind the one busy slot, which is
// qa releasing the same artifact again. That release fails: the queued
// record must be rejected (SPEC §5 step 5, re-verification), not started
// the moment the slot frees.
func TestAttackGateUpstreamFailsWhileQueued(t *testing.T) {
	rig := newPromoRig(t, promoGated, 1)
	run := &holdRunner{}
	s := rig.serve(rig.state(), 0, run)

	rig.repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.1.0"))
	q1 := rig.repo.Commit("qa", "pay 1.1.0", tAlice, tAlice)
	eventually(t, "qa to release pay 1.1.0", func() bool {
		r := s.record("qa", "pay", q1)
		return r != nil && r.Status == store.StatusSucceeded
	})
	qaOutcome := run.holdNext("qa", "pay")
	rig.repo.WriteFile("services/pay.yaml", payPort("1.1.0", 8443))
	q2 := rig.repo.Commit("qa", "pay 1.1.0 on 8443", tAlice, tAlice)
	eventually(t, "qa's second release of 1.1.0 to run", func() bool {
		r := s.record("qa", "pay", q2)
		return r != nil && r.Status == store.StatusRunning
	})
	rig.repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.1.0"))
	st := rig.repo.Commit("staging", "promote pay 1.1.0", tAlice, tAlice)
	eventually(t, "staging's record to be queued behind the busy slot", func() bool {
		r := s.record("staging", "pay", st)
		return r != nil && r.Status == store.StatusPending && r.Phase == store.PhaseQueued
	})
	qaOutcome <- false // qa fails 1.1.0
	eventually(t, "staging's record to end", func() bool {
		r := s.record("staging", "pay", st)
		return r != nil && r.Status != store.StatusPending && r.Status != store.StatusRunning
	})
	got := s.record("staging", "pay", st)
	if got.Status != store.StatusRejected || !hasRule(got, policy.RulePromotion) || run.runs("staging", "pay", st) != 0 {
		t.Fatalf("staging pay 1.1.0 after qa failed it: %s %v, released %d times; want rejected (promotion), never released",
			got.Status, got.Reasons, run.runs("staging", "pay", st))
	}
}

// TestAttackGateDecidedAsUpstreamEnds races staging's decision of pay
// against the end of qa's release of the same artifact, again and again:
// staging's gate may read qa's record as running, and qa's end must then
// still wake it (SPEC §5 step 5: the wait ends the moment upstream
// succeeds). A wake lost in between leaves it waiting until `wait` runs
// out, an hour.
func TestAttackGateDecidedAsUpstreamEnds(t *testing.T) {
	r := newGateRig(t, gated)
	ctx := context.Background()
	for i := 1; i <= 100; i++ {
		v := fmt.Sprintf("1.%d.0", i)
		r.git.commit("qa", "alice@example.com", desc("pay", v))
		r.poll()
		qa := r.last("qa")
		if err := r.a.store.StartRecord(ctx, qa.ID, []store.Stage{{Name: "deploy", Runner: "exec"}}, r.clock.now()); err != nil {
			t.Fatal(err)
		}
		r.git.commit("staging", "alice@example.com", desc("pay", v))
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := r.a.store.EndRecord(ctx, qa.ID, store.End{Status: store.StatusSucceeded, At: r.clock.now()}); err != nil {
				t.Error(err)
				return
			}
			r.a.releaseEnded(ctx, qa)
		}()
		r.poll()
		<-done
		r.wake()
		if got := r.last("staging"); got.Status != store.StatusPending || got.Phase != store.PhaseQueued {
			t.Fatalf("try %d: staging pay %s is %s/%s %v after qa released it; want queued at once", i, v, got.Status, got.Phase, got.Reasons)
		}
	}
}

// TestAttackGateDecidedAsFreezeLifts races staging's decision of pay
// against `gitmon unfreeze` seen by serve, again and again: a record the
// gate held on the freeze as serve knew it must still be woken by the
// unfreeze, or it waits until the next freeze changes (for ever).
func TestAttackGateDecidedAsFreezeLifts(t *testing.T) {
	r := newGateRig(t, `{}`)
	ctx := context.Background()
	for i := 1; i <= 100; i++ {
		if err := r.a.store.Freeze(ctx, store.Freeze{Environment: "staging", Reason: fmt.Sprint("train ", i), Actor: "ops@host"}); err != nil {
			t.Fatal(err)
		}
		r.a.refreshFreezes(ctx)
		v := fmt.Sprintf("1.%d.0", i)
		r.git.commit("staging", "alice@example.com", desc("pay", v))
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, _, err := r.a.store.Unfreeze(ctx, "staging", "ops@host"); err != nil {
				t.Error(err)
				return
			}
			r.a.refreshFreezes(ctx)
		}()
		r.poll()
		<-done
		r.wake()
		if got := r.last("staging"); got.Status != store.StatusPending || got.Phase != store.PhaseQueued {
			t.Fatalf("try %d: staging pay %s is %s/%s %v after the unfreeze; want queued at once", i, v, got.Status, got.Phase, got.Reasons)
		}
	}
}

// TestAttackGateUpstreamFailsAsServeDies: as in
// TestAttackGateUpstreamFailsWhileQueued, but serve dies right after it
// writes qa's failure, before it decides staging's queued record again.
// After the restart that record must be rejected, not started.
func TestAttackGateUpstreamFailsAsServeDies(t *testing.T) {
	rig := newPromoRig(t, promoGated, 1)
	run := &holdRunner{}
	state := rig.state()
	s := rig.serve(state, 0, run)

	rig.repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.1.0"))
	q1 := rig.repo.Commit("qa", "pay 1.1.0", tAlice, tAlice)
	eventually(t, "qa to release pay 1.1.0", func() bool {
		r := s.record("qa", "pay", q1)
		return r != nil && r.Status == store.StatusSucceeded
	})
	qaOutcome := run.holdNext("qa", "pay")
	rig.repo.WriteFile("services/pay.yaml", payPort("1.1.0", 8443))
	q2 := rig.repo.Commit("qa", "pay 1.1.0 on 8443", tAlice, tAlice)
	eventually(t, "qa's second release of 1.1.0 to run", func() bool {
		r := s.record("qa", "pay", q2)
		return r != nil && r.Status == store.StatusRunning
	})
	rig.repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.1.0"))
	st := rig.repo.Commit("staging", "promote pay 1.1.0", tAlice, tAlice)
	eventually(t, "staging's record to be queued behind the busy slot", func() bool {
		r := s.record("staging", "pay", st)
		return r != nil && r.Status == store.StatusPending && r.Phase == store.PhaseQueued
	})
	s.store.dieAfterNext() // qa's end
	qaOutcome <- false
	<-s.store.dead
	s.stop()

	s = rig.serve(state, 0, run)
	eventually(t, "staging's record to end", func() bool {
		r := s.record("staging", "pay", st)
		return r != nil && store.Finished(r.Status)
	})
	if q := s.record("qa", "pay", q2); q.Status != store.StatusFailed {
		t.Fatalf("qa's second release is %s, want failed as written before the crash", q.Status)
	}
	got := s.record("staging", "pay", st)
	if got.Status != store.StatusRejected || !hasRule(got, policy.RulePromotion) || run.runs("staging", "pay", st) != 0 {
		t.Fatalf("staging pay 1.1.0 after qa failed it and serve restarted: %s %v, released %d times; want rejected (promotion)",
			got.Status, got.Reasons, run.runs("staging", "pay", st))
	}
}

// TestAttackBreakGlassThatLapsesHoldsAgain: a record passes a freeze by
// break-glass, then its ticket loses the label and a new decision holds
// it at the freeze. Once it is queued again it must not start during the
// next freeze as if it still had break-glass: the scheduler's pass ends
// with the decision that gave it.
func TestAttackBreakGlassThatLapsesHoldsAgain(t *testing.T) {
	tickets := policytest.NewTickets(policy.Ticket{Key: "OPS-1", Status: "Approved", Labels: []string{"emergency-change"}})
	r := newGateRigTickets(t, `{jira: {projects: [OPS]}, break_glass: {jira_labels: [emergency-change]}}`, tickets)
	ctx := context.Background()
	freeze := func(reason string) {
		t.Helper()
		if err := r.a.store.Freeze(ctx, store.Freeze{Environment: "staging", Reason: reason, Actor: "ops@host"}); err != nil {
			t.Fatal(err)
		}
		r.a.refreshFreezes(ctx)
	}
	freeze("change freeze")
	r.git.commitMsg("staging", "alice@example.com", "OPS-1 hotfix", desc("pay", "1.1.0"))
	r.poll()
	rec := r.last("staging")
	r.want(rec, store.StatusPending, store.PhaseQueued, policy.RuleWindow) // break-glass
	tickets.Put(policy.Ticket{Key: "OPS-1", Status: "Approved"})           // the label is taken off
	freeze("change freeze, extended")
	r.wake()
	r.want(rec, store.StatusPending, store.PhaseWindow, policy.RuleWindow)
	if _, _, err := r.a.store.Unfreeze(ctx, "staging", "ops@host"); err != nil {
		t.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	r.wake()
	r.want(rec, store.StatusPending, store.PhaseQueued, "")
	// A new freeze; the scheduler dispatches before the record's new
	// decision: Admit must hold it.
	freeze("another freeze")
	started := make(chan string, 1)
	r.a.sched.start = func(_ context.Context, id string) { started <- id }
	held := r.a.sched.dispatch(ctx, ctx)
	if _, running := r.a.sched.Len(); running != 0 || !slices.Contains(held, rec.ID) {
		t.Fatalf("during a freeze, with break-glass gone from its ticket, the record started (running %d, held %v)", running, held)
	}
}

// TestAttackGateDefaultUpstream: `promotion: {required: true}` without
// `from` gates on the environment listed just before (SPEC §3); it must
// not pass every artifact. On the first environment, with nothing
// upstream, a required promotion fails closed.
func TestAttackGateDefaultUpstream(t *testing.T) {
	r := newGateRig(t, `{promotion: {required: true}}`)
	r.git.commit("staging", "alice@example.com", desc("pay", "9.9.9"))
	r.poll()
	r.want(r.last("staging"), store.StatusPending, store.PhasePromotion, policy.RulePromotion)
	r.git.commit("qa", "alice@example.com", desc("pay", "9.9.9"))
	r.poll()
	r.release(r.last("qa"), store.StatusSucceeded)
	r.wake()
	r.want(r.last("staging"), store.StatusPending, store.PhaseQueued, "")

	first := newPromoRig(t, `{}`, 1) // qa is first: gate qa itself
	cfg := *first.cfg
	cfg.Environments = slices.Clone(cfg.Environments)
	cfg.Environments[0].Policy.Promotion.Required = true
	first.cfg = &cfg
	s := first.serve(first.state(), 0, &holdRunner{})
	first.repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.1.0"))
	q := first.repo.Commit("qa", "pay 1.1.0", tAlice, tAlice)
	eventually(t, "qa's record to be decided", func() bool {
		rec := s.record("qa", "pay", q)
		return rec != nil && rec.Status != store.StatusPending && rec.Status != store.StatusRunning
	})
	if rec := s.record("qa", "pay", q); rec.Status != store.StatusRejected || !hasRule(rec, policy.RulePromotion) {
		t.Fatalf("a required promotion in the first environment: %s %v; want rejected (promotion): nothing upstream passed it", rec.Status, rec.Reasons)
	}
}

// TestAttackGateSoakCountsFromTheFirstSuccess: qa released pay 1.1.0,
// then released the same artifact again with another port 25 minutes
// later. With a 30m soak staging may take 1.1.0 30 minutes after the
// first success (SPEC §5 step 5: a succeeded record at least soak ago,
// and no failure after it), not 30 minutes after every redeploy: qa
// redeploying more often than the soak would otherwise hold staging until
// its wait runs out.
func TestAttackGateSoakCountsFromTheFirstSuccess(t *testing.T) {
	r := newGateRig(t, `{promotion: {required: true, from: qa, soak: 30m}}`)
	r.git.commit("qa", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	r.release(r.last("qa"), store.StatusSucceeded)
	r.clock.add(25 * time.Minute)
	r.git.commit("qa", "alice@example.com", map[string]string{"services/pay.yaml": "service: pay\nversion: 1.1.0\nport: 8443\n"})
	r.poll()
	r.release(r.last("qa"), store.StatusSucceeded)
	r.clock.add(6 * time.Minute)
	r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	st := r.last("staging")
	r.want(st, store.StatusPending, store.PhaseQueued, "")
	// A failure after the successes still blocks it.
	r.git.commit("qa", "alice@example.com", map[string]string{"services/pay.yaml": "service: pay\nversion: 1.1.0\nport: 9443\n"})
	r.poll()
	r.release(r.last("qa"), store.StatusFailed)
	r.wake()
	r.want(st, store.StatusRejected, "", policy.RulePromotion)
}

// TestAttackPlanDefaultUpstream: plan, like serve, gates a required
// promotion without from on the environment listed before.
func TestAttackPlanDefaultUpstream(t *testing.T) {
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
  - {name: staging, release: [deploy], policy: {promotion: {required: true}}}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "no-state"), repo.Bare))
	repo.Branch("pr", "staging")
	repo.WriteFile("services/pay.yaml", tDescriptor("pay", "2.0.0"))
	pr := repo.Commit("pr", "pay 2.0.0 straight into staging", tAlice, tAlice)
	es, err := Plan(context.Background(), cfg, PlanOptions{Env: "staging", Ref: pr})
	if err != nil || len(es) != 1 || es[0].Decision != "pending" {
		t.Fatalf("plan of a version qa's tip does not hold: %+v, %v; want pending (promotion)", es, err)
	}
}
