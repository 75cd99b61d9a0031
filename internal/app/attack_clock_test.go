package app

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// TestAttackClockJumpsBackAtTheGate: the clock jumps back an hour while
// records wait at the gate (NTP stepping a clock, a VM restored). A soak
// must not end early, a promotion's wait must not run out early, and a
// freeze's until must not lift early: each ends when the clock reaches
// its time again, not before.
func TestAttackClockJumpsBackAtTheGate(t *testing.T) {
	t.Run("soak and wait", func(t *testing.T) {
		r := newGateRig(t, `{promotion: {required: true, from: qa, soak: 30m, wait: 2h}}`)
		r.git.commit("qa", "alice@example.com", desc("pay", "1.1.0"))
		r.poll()
		r.release(r.last("qa"), store.StatusSucceeded) // at 10:00
		r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
		r.poll()
		soaking := r.last("staging")
		r.git.commit("staging", "alice@example.com", desc("web", "9.9.9")) // qa never had it: waits up to 2h
		r.poll()
		waiting := r.lastOf("staging", "web")
		r.clock.add(20 * time.Minute)
		r.clock.add(-time.Hour) // 09:20
		// At 09:20, 09:50 and 10:29 nothing has passed its time.
		for _, step := range []time.Duration{0, 30 * time.Minute, 39 * time.Minute} {
			r.clock.add(step)
			r.wake()
			r.want(soaking, store.StatusPending, store.PhasePromotion, policy.RulePromotion)
			r.want(waiting, store.StatusPending, store.PhasePromotion, policy.RulePromotion)
		}
		r.clock.add(time.Minute) // 10:30: the soak ends
		r.wake()
		r.want(soaking, store.StatusPending, store.PhaseQueued, "")
		r.clock.add(89 * time.Minute) // 11:59
		r.wake()
		r.want(waiting, store.StatusPending, store.PhasePromotion, policy.RulePromotion)
		r.clock.add(time.Minute) // 12:00: two hours after it was decided
		r.wake()
		r.want(waiting, store.StatusRejected, "", policy.RulePromotion)
	})
	t.Run("freeze until", func(t *testing.T) {
		r := newGateRig(t, `{}`)
		ctx := context.Background()
		until := r.clock.now().Add(30 * time.Minute)
		if err := r.a.store.Freeze(ctx, store.Freeze{Environment: "staging", Reason: "train", Actor: "ops@host", Until: &until}); err != nil {
			t.Fatal(err)
		}
		r.a.refreshFreezes(ctx)
		r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
		r.poll()
		held := r.last("staging")
		r.clock.add(-time.Hour)
		r.wake()
		r.clock.add(89 * time.Minute) // 10:29
		r.wake()
		r.want(held, store.StatusPending, store.PhaseWindow, policy.RuleWindow)
		if r.a.admit(schedItemOf(held)) {
			t.Fatal("admit lets a record start before the freeze's until")
		}
		r.clock.add(time.Minute) // 10:30
		r.wake()
		r.want(held, store.StatusPending, store.PhaseQueued, "")
	})
}

// lastOf returns the newest record of service in env.
func (r *gateRig) lastOf(env, service string) *store.Record {
	r.t.Helper()
	recs, err := r.a.store.Records(context.Background(), store.Filter{Environment: env, Service: service, Limit: 1})
	if err != nil || len(recs) == 0 {
		r.t.Fatalf("records of %s in %s: %v, %v", service, env, recs, err)
	}
	return recs[0]
}

// TestAttackWaiterClockJumpsBack: the waiter's own loop, in a bubble of
// fake time, with an injected clock that jumps back an hour: a record due
// in 30 minutes is not woken while the clock is behind, however many
// ticks pass, and is woken within a tick of the clock reaching its time.
func TestAttackWaiterClockJumpsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &testClock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
		var mu sync.Mutex
		var woken []string
		w := newWaiter(waiterDeps{Now: clock.now, Review: func(_ context.Context, ids []string) {
			mu.Lock()
			woken = append(woken, ids...)
			mu.Unlock()
		}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		w.Wait("soak", 1, clock.now().Add(30*time.Minute))
		clock.add(-time.Hour)
		for range 89 * 60 { // 89 minutes of ticks, the clock moving with them
			time.Sleep(time.Second)
			clock.add(time.Second)
		}
		synctest.Wait()
		mu.Lock()
		early := len(woken)
		mu.Unlock()
		if early != 0 || w.Len() != 1 {
			t.Fatalf("at 10:29 after the jump: woken %d, waiting %d; want 0 and 1", early, w.Len())
		}
		clock.add(time.Minute) // 10:30
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		got := append([]string(nil), woken...)
		mu.Unlock()
		if len(got) != 1 || got[0] != "soak" || w.Len() != 0 {
			t.Fatalf("at 10:30: woken %v, waiting %d; want [soak], 0", got, w.Len())
		}
		cancel()
		<-done
	})
}
