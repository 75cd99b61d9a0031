package app

import (
	"context"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// inMemory is what serve keeps in memory of a record: queued in the
// scheduler, in the waiter's heap, and its tip's time for the detection
// metric.
func (a *App) inMemory(rec *store.Record) (sched, waiter, seen bool) {
	a.waiter.mu.Lock()
	_, waiter = a.waiter.at[rec.ID]
	a.waiter.mu.Unlock()
	a.seenMu.Lock()
	_, seen = a.seenAt[rec.ID]
	a.seenMu.Unlock()
	return a.sched.Has(rec.ID), waiter, seen
}

// TestAttackSupersedeAtTheGate: a record waiting at the promotion gate
// or held by a freeze (each with a time it is woken at) is superseded by
// a later commit that passes steps 1-4, and not by one rejected at step
// 1; serve then forgets the superseded record: scheduler, waiter, the
// detection metric's memory.
func TestAttackSupersedeAtTheGate(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		phase, rule  string
		setup        func(r *gateRig)
	}{
		{name: "promotion", policy: gated, phase: store.PhasePromotion, rule: policy.RulePromotion},
		{name: "freeze", policy: `{}`, phase: store.PhaseWindow, rule: policy.RuleWindow, setup: func(r *gateRig) {
			until := r.clock.now().Add(2 * time.Hour)
			if err := r.a.store.Freeze(context.Background(), store.Freeze{Environment: "staging", Reason: "train", Actor: "ops@host", Until: &until}); err != nil {
				t.Fatal(err)
			}
			r.a.refreshFreezes(context.Background())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newGateRig(t, tc.policy)
			if tc.setup != nil {
				tc.setup(r)
			}
			r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
			r.poll()
			first := r.last("staging")
			r.want(first, store.StatusPending, tc.phase, tc.rule)
			if s, w, _ := r.a.inMemory(first); !s || !w {
				t.Fatalf("the waiting record: queued %v, in the waiter %v; want both", s, w)
			}
			r.git.commit("staging", "mallory@evil.example", desc("pay", "1.2.0"))
			r.poll()
			r.want(r.last("staging"), store.StatusRejected, "", policy.RuleCommitters)
			r.want(first, store.StatusPending, tc.phase, tc.rule) // not superseded by a rejected commit
			r.git.commit("staging", "alice@example.com", desc("pay", "1.3.0"))
			r.poll()
			second := r.last("staging")
			r.want(second, store.StatusPending, tc.phase, tc.rule)
			if got, err := r.a.store.Record(context.Background(), first.ID); err != nil || got.Status != store.StatusSuperseded {
				t.Fatalf("the first record after a later commit passed steps 1-4: %v, %v; want superseded", got.Status, err)
			}
			s, w, seen := r.a.inMemory(first)
			if s || w || seen {
				t.Errorf("the superseded record is still in memory: scheduler %v, waiter %v, seen %v", s, w, seen)
			}
			if n := r.a.waiter.Len(); n != 1 {
				t.Errorf("the waiter holds %d records, want 1 (the one that waits)", n)
			}
			// Rejected by the gate (the wait runs out): forgotten too.
			r.clock.add(3 * time.Hour)
			r.wake()
			if tc.name == "promotion" {
				r.want(second, store.StatusRejected, "", policy.RulePromotion)
			} else {
				r.want(second, store.StatusPending, store.PhaseQueued, "")
			}
			if s, w, seen := r.a.inMemory(second); w || seen && tc.name == "promotion" || s && tc.name == "promotion" {
				t.Errorf("record %s: scheduler %v, waiter %v, seen %v after its decision", second.Status, s, w, seen)
			}
		})
	}
}
