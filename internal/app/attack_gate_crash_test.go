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
)

// runUntil runs a serve on state that dies after write n (0: never) until
// drive reports done or the store died, and stops it. drive may act (an
// operator's unfreeze) through the serve's store.
func (r *promoRig) runUntil(state string, n int64, run *holdRunner, drive func(*promoServe) bool) *promoServe {
	r.t.Helper()
	s := r.serve(state, n, run)
	deadline := time.Now().Add(20 * time.Second)
	for !s.store.crashed() && !drive(s) {
		if time.Now().After(deadline) {
			p, _ := s.store.Pending(context.Background())
			for _, rec := range p {
				r.t.Logf("pending: %s %s %.8s %s %v inSched=%v ready=%v", rec.Environment, rec.Service, rec.Commit, rec.Phase, rec.Reasons, s.a.sched.Has(rec.ID), s.a.admitReady(rec.ID))
			}
			for _, env := range []string{"qa", "staging"} {
				b, _ := s.store.Branch(context.Background(), "deployments", env)
				r.t.Logf("branch %s at %.8s", env, b.LastProcessed)
			}
			s.stop()
			r.t.Fatalf("run (crash after write %d): not done within 20s", n)
		}
		select {
		case <-s.store.dead:
		case <-time.After(5 * time.Millisecond): // re-check the condition
		}
	}
	s.stop()
	return s
}

// settled reports whether the branches are processed up to their tips
// and nothing is pending or running.
func (s *promoServe) settled(tips map[string]string) bool {
	ctx := context.Background()
	for env, tip := range tips {
		b, err := s.store.Branch(ctx, "deployments", env)
		if err != nil || b.LastProcessed != tip {
			return false
		}
	}
	p, err := s.store.Pending(ctx)
	if err != nil || len(p) > 0 {
		return false
	}
	rs, err := s.store.Running(ctx)
	return err == nil && len(rs) == 0
}

// crashEveryWrite stops serve right after each durable write of a clean
// run of drive on a copy of base, restarts it and drives it to the end,
// then hands the state and the runner's log to check.
func (r *promoRig) crashEveryWrite(base string, drive func(*promoServe) bool, check func(fail func(string, ...any), st store.Store, run *holdRunner)) {
	r.t.Helper()
	fresh := func() string {
		state := filepath.Join(r.t.TempDir(), "state")
		copyDir(r.t, base, state)
		return state
	}
	clean := r.runUntil(fresh(), 0, &holdRunner{}, drive)
	total := clean.store.writes.Load()
	r.t.Logf("crash points: %d durable writes", total)
	for n := int64(0); n <= total; n++ { // 0: no crash, the clean run checked too
		state, run := fresh(), &holdRunner{}
		if n > 0 {
			r.runUntil(state, n, run, drive)
		}
		r.runUntil(state, 0, run, drive)
		ctx := context.Background()
		st, err := store.Open(ctx, state, store.Options{ReadOnly: true})
		if err != nil {
			r.t.Fatal(err)
		}
		check(func(format string, args ...any) {
			r.t.Errorf("crash after write %d/%d: %s", n, total, fmt.Sprintf(format, args...))
		}, st, run)
		st.Close()
	}
}

// checkPromotion checks SPEC §5 steps 5 and 7 and Crashes for one qa
// record of pay at q and one staging record of it at st: staging's
// release ran once at most and only after qa's succeeded, it ended
// exactly once; when qa's did not succeed, staging's was rejected
// (promotion) and never ran. notBefore, when set, is what else staging
// must start after (the unfreeze).
func checkPromotion(fail func(string, ...any), st store.Store, run *holdRunner, q, s string, notBefore func() *time.Time) {
	ctx := context.Background()
	one := func(env, commit string) *store.Record {
		recs, err := st.Records(ctx, store.Filter{Environment: env, Service: "pay"})
		if err != nil {
			fail("records: %v", err)
			return nil
		}
		var mine []*store.Record
		for _, r := range recs {
			if r.Commit == commit {
				mine = append(mine, r)
			}
		}
		if len(mine) != 1 {
			fail("%d records of pay in %s at %.8s, want 1", len(mine), env, commit)
			return nil
		}
		return mine[0]
	}
	qa, sg := one("qa", q), one("staging", s)
	if qa == nil || sg == nil {
		return
	}
	if n := run.runs("qa", "pay", q); n > 1 {
		fail("qa's release ran %d times", n)
	}
	ran := run.runs("staging", "pay", s)
	if ran > 1 {
		fail("staging's release ran %d times", ran)
	}
	if qa.Status != store.StatusSucceeded {
		if sg.Status != store.StatusRejected || !hasRule(sg, policy.RulePromotion) || ran != 0 || sg.StartedAt != nil {
			fail("qa %s, staging %s %v (ran %d); want staging rejected (promotion), never started", qa.Status, sg.Status, sg.Reasons, ran)
		}
		return
	}
	switch sg.Status {
	case store.StatusSucceeded:
		if ran != 1 {
			fail("staging succeeded but its release ran %d times", ran)
		}
	case store.StatusFailed:
		if !slices.ContainsFunc(sg.Stages, func(x store.Stage) bool { return x.Status == store.StageInterrupted }) {
			fail("staging failed with no interrupted stage: %+v", sg.Stages)
		}
	default:
		fail("qa succeeded, staging %s %v; want it released", sg.Status, sg.Reasons)
		return
	}
	if sg.StartedAt == nil || qa.FinishedAt == nil || sg.StartedAt.Before(*qa.FinishedAt) {
		fail("staging started at %v, before qa's success at %v", sg.StartedAt, qa.FinishedAt)
	}
	if up := sg.Evidence.Upstream; up == nil || up.Record != qa.ID {
		fail("staging's evidence.upstream %+v, want qa's record %s", up, qa.ID)
	}
	if i, j := slices.Index(run.ran, "qa/pay@"+q[:8]), slices.Index(run.ran, "staging/pay@"+s[:8]); j >= 0 && (i < 0 || j < i) {
		fail("the runner ran %v: staging before qa", run.ran)
	}
	if notBefore != nil {
		if t := notBefore(); t == nil || sg.StartedAt.Before(*t) {
			fail("staging started at %v, before %v", sg.StartedAt, t)
		}
	}
}

// TestAttackCrashWhilePromotionWaits: qa and staging both get pay 1.1.0;
// staging's record waits for qa, which releases it; serve dies after each
// durable write of that (the decisions, qa's start and end, staging's
// re-review, start and end) and restarts.
func TestAttackCrashWhilePromotionWaits(t *testing.T) {
	rig := newPromoRig(t, promoGated, 1)
	rig.repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.1.0"))
	q := rig.repo.Commit("qa", "pay 1.1.0", tAlice, tAlice)
	rig.repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.1.0"))
	s := rig.repo.Commit("staging", "promote pay 1.1.0", tAlice, tAlice)
	tips := map[string]string{"qa": q, "staging": s}
	rig.crashEveryWrite(rig.base, func(ps *promoServe) bool { return ps.settled(tips) },
		func(fail func(string, ...any), st store.Store, run *holdRunner) {
			checkPromotion(fail, st, run, q, s, nil)
		})
}

// TestAttackCrashWhilePromotionWaitsFrozen: as above with staging frozen;
// the operator lifts the freeze once qa released pay. Serve dies after
// each write, the unfreeze included; staging's release never starts
// before the unfreeze.
func TestAttackCrashWhilePromotionWaitsFrozen(t *testing.T) {
	rig := newPromoRig(t, promoGated, 1)
	ctx := context.Background()
	frozen := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, frozen)
	st, err := store.Open(ctx, frozen, store.Options{Lock: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Freeze(ctx, store.Freeze{Environment: "staging", Reason: "release train", Actor: "ops@host"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	rig.repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.1.0"))
	q := rig.repo.Commit("qa", "pay 1.1.0", tAlice, tAlice)
	rig.repo.WriteFile("services/pay.yaml", tDescriptor("pay", "1.1.0"))
	s := rig.repo.Commit("staging", "promote pay 1.1.0", tAlice, tAlice)
	tips := map[string]string{"qa": q, "staging": s}
	drive := func(ps *promoServe) bool {
		if r := ps.record("qa", "pay", q); r != nil && store.Finished(r.Status) {
			if fs, err := ps.store.Freezes(ctx); err == nil && len(fs) > 0 {
				_, _, _ = ps.store.Unfreeze(ctx, "staging", "ops@host") // a crash may refuse it; the restart does it
			}
		}
		return ps.settled(tips)
	}
	rig.crashEveryWrite(frozen, drive, func(fail func(string, ...any), st store.Store, run *holdRunner) {
		checkPromotion(fail, st, run, q, s, func() *time.Time {
			evs, err := st.Events(ctx, store.Filter{Environment: "staging"})
			if err != nil {
				return nil
			}
			for _, e := range evs {
				if e.Kind == store.EventUnfreeze {
					return &e.At
				}
			}
			return nil
		})
	})
}
