package app

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// startCount is a store that counts the releases it starts.
type startCount struct {
	store.Store
	n atomic.Int64
}

func (s *startCount) StartRecord(ctx context.Context, id string, st []store.Stage, at time.Time) error {
	err := s.Store.StartRecord(ctx, id, st, at)
	if err == nil {
		s.n.Add(1)
	}
	return err
}

// TestAttackFreezeRacesDispatch: serve releases a stream of commits to
// many services of staging, four at a time, while an operator freezes and
// unfreezes staging again and again. Once serve knows of a freeze, no
// release starts but those its scheduler let go before: every start is
// admitted, and nothing is admitted while the freeze holds. Run under
// -race, it races the freeze cache against dispatch.
func TestAttackFreezeRacesDispatch(t *testing.T) {
	rig := newGateRig(t, `{}`)
	a := rig.a
	a.cfg.Tuning.Concurrency = 4
	counted := &startCount{Store: a.store}
	a.store, a.rel.store = counted, counted
	var admitted atomic.Int64
	var frozenKnown atomic.Bool
	var violations atomic.Int64
	a.sched.conc = 4
	a.sched.admit = func(it schedItem) bool { // under the scheduler's lock
		ok := a.admit(it)
		if ok {
			admitted.Add(1)
			if frozenKnown.Load() {
				violations.Add(1)
			}
		}
		return ok
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.sched.Run(ctx, context.Background()) }()
	go func() { defer wg.Done(); a.waiter.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	const services = 12
	files := func(v int) map[string]string {
		m := map[string]string{}
		for i := range services {
			s := fmt.Sprintf("s%02d", i)
			m["services/"+s+".yaml"] = fmt.Sprintf("service: %s\nversion: 1.%d.0\n", s, v)
		}
		return m
	}
	for round := 1; round <= 20; round++ {
		rig.git.commit("staging", "alice@example.com", files(round))
		polled := make(chan struct{})
		go func() { defer close(polled); rig.poll() }() // decides while the freeze comes
		if err := a.store.Freeze(ctx, store.Freeze{Environment: "staging", Reason: fmt.Sprint("round ", round), Actor: "ops@host"}); err != nil {
			t.Fatal(err)
		}
		a.refreshFreezes(ctx)
		// Serve knows: what the scheduler let go before may still start.
		a.sched.mu.Lock()
		frozenKnown.Store(true)
		before := admitted.Load()
		a.sched.mu.Unlock()
		<-polled
		eventually(t, "what the freeze holds to be decided again", func() bool {
			_, running := a.sched.Len()
			return running == 0 && a.waiter.Len() == 0
		})
		if started := counted.n.Load(); started > before {
			t.Fatalf("round %d: %d releases started, %d admitted before serve knew of the freeze", round, started, before)
		}
		a.sched.mu.Lock()
		frozenKnown.Store(false)
		a.sched.mu.Unlock()
		if _, _, err := a.store.Unfreeze(ctx, "staging", "ops@host"); err != nil {
			t.Fatal(err)
		}
		a.refreshFreezes(ctx)
	}
	eventually(t, "everything to be released", func() bool {
		p, err := counted.Pending(ctx)
		r, err2 := counted.Running(ctx)
		return err == nil && err2 == nil && len(p) == 0 && len(r) == 0
	})
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d releases admitted while serve knew of a freeze", v)
	}
}
