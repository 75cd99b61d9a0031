package app

import (
	"context"
	"sync"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// legacySched is the store-scanning scheduler that scheduler (scheduler.go)
// replaces; it goes once App is wired to scheduler.
//
// legacySched runs queued releases: records in Seq order, one at a time per
// (repository, environment, service), at most tuning.concurrency at once.
type legacySched struct {
	a       *App
	wakeCh  chan struct{}
	mu      sync.Mutex
	running map[string]bool // service key → a release is running
	slots   chan struct{}
	wg      sync.WaitGroup
}

func newLegacySched(a *App) *legacySched {
	n := a.cfg.Tuning.Concurrency
	if n <= 0 {
		n = 1
	}
	return &legacySched{a: a, wakeCh: make(chan struct{}, 1), running: map[string]bool{}, slots: make(chan struct{}, n)}
}

func (s *legacySched) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

func serviceKey(r *store.Record) string {
	return r.Repository + "\x00" + r.Environment + "\x00" + r.Service
}

// run dispatches until ctx is done, then waits for running releases, which
// run on runCtx.
func (s *legacySched) run(ctx, runCtx context.Context) {
	defer s.wg.Wait()
	for _, j := range s.a.reattach {
		s.follow(runCtx, j)
	}
	tick := time.NewTicker(5 * time.Second) // a safety net; wake is the fast path
	defer tick.Stop()
	s.wake()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wakeCh:
		case <-tick.C:
		}
		if err := s.dispatch(ctx, runCtx); err != nil && ctx.Err() == nil {
			s.a.log.Error("dispatching releases", keyErr, err)
		}
	}
}

// dispatch starts every queued record that may start now.
func (s *legacySched) dispatch(ctx, runCtx context.Context) error {
	pending, err := s.a.store.Pending(ctx)
	if err != nil {
		return err
	}
	blocked := map[string]bool{}
	for _, rec := range pending {
		key := serviceKey(rec)
		// An earlier record of the same service, whatever it waits for,
		// goes first: a later commit never starts before an earlier one.
		if blocked[key] {
			continue
		}
		blocked[key] = true
		if rec.Phase != store.PhaseQueued {
			continue
		}
		s.mu.Lock()
		busy := s.running[key]
		s.mu.Unlock()
		if busy {
			continue
		}
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		default:
			return nil // every slot busy: a finishing release wakes us
		}
		s.mu.Lock()
		s.running[key] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.running, key)
				s.mu.Unlock()
				<-s.slots
				s.wake()
			}()
			if err := s.release(runCtx, rec); err != nil && runCtx.Err() == nil {
				s.a.log.Error("release", keyRecord, rec.ID, keyErr, err)
			}
		}()
	}
	return nil
}
