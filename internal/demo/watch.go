package demo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// waitFor bounds every wait of the demo: past it, gitmon did not do what
// the story expects, and the demo says what it was waiting for.
const waitFor = time.Minute

// watcher follows the records in the store: it prints each record when it
// starts waiting at a gate and when it ends, and waits for conditions over
// them, never for a time.
type watcher struct {
	p  *printer
	st store.Store
	// shown is what was printed of each record: its status, or
	// pending/<phase> for one that waits at a gate.
	shown map[string]string
	// keys are the outbox keys of the outcomes shown, whose delivery the
	// timeline shows before it goes on.
	keys []string
}

func newWatcher(p *printer, st store.Store) *watcher {
	return &watcher{p: p, st: st, shown: map[string]string{}}
}

// cond is what the story waits for, over the records (newest first): true
// once it holds, an error once it never will.
type cond func(recs []*store.Record) (bool, error)

// until waits until c holds, printing the records as they change, then
// until their notifications are delivered.
func (w *watcher) until(ctx context.Context, what string, c cond) ([]*store.Record, error) {
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		recs, err := w.st.Records(ctx, store.Filter{})
		if err != nil {
			return nil, err
		}
		w.show(recs)
		w.p.notes()
		ok, err := c(recs)
		if err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			w.settle(ctx)
			return recs, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("timed out after %s waiting for %s", waitFor, what)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// show prints what changed, oldest record first.
func (w *watcher) show(recs []*store.Record) {
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		state := r.Status
		switch {
		case r.FinishedAt != nil:
		case r.Status == store.StatusPending && (r.Phase == store.PhasePromotion || r.Phase == store.PhaseWindow):
			state = r.Status + "/" + r.Phase
		default:
			continue // deciding, queued or running: shown when it ends
		}
		if w.shown[r.ID] == state {
			continue
		}
		w.shown[r.ID] = state
		w.p.record(r)
		if k := lastKey(r); k != "" {
			w.keys = append(w.keys, k)
		}
	}
}

// settle waits (a few seconds at most: notifications never hold a
// release, and neither do they hold the demo) until the notifications of
// the records shown are delivered, printing them as they arrive.
func (w *watcher) settle(ctx context.Context) {
	if len(w.keys) == 0 {
		return
	}
	defer func() { w.keys = nil }()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if w.delivered(ctx) {
			break
		}
		w.p.notes()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	w.p.notes()
}

// delivered reports whether the outcomes shown were sent and nothing else
// is due in the outbox.
func (w *watcher) delivered(ctx context.Context) bool {
	for _, k := range w.keys {
		if it, ok, err := w.st.OutboxItem(ctx, k); err != nil || !ok || !it.Sent() {
			return false
		}
	}
	due, err := w.st.DueOutbox(ctx, time.Now().Add(time.Hour), 1)
	return err == nil && len(due) == 0
}

// The conditions the story waits for.

// ended reports whether n records of commit ended.
func ended(commit string, n int) cond {
	return func(recs []*store.Record) (bool, error) {
		got := 0
		for _, r := range recs {
			if r.Commit == commit && r.FinishedAt != nil {
				got++
			}
		}
		return got >= n, nil
	}
}

// endedIDs reports whether the records ids ended.
func endedIDs(ids ...string) cond {
	return func(recs []*store.Record) (bool, error) {
		left := len(ids)
		for _, r := range recs {
			for _, id := range ids {
				if r.ID == id && r.FinishedAt != nil {
					left--
				}
			}
		}
		return left == 0, nil
	}
}

// waiting reports whether a record of commit in env waits at the gate
// phase; one that ended never will.
func waiting(env, commit, phase string) cond {
	return func(recs []*store.Record) (bool, error) {
		r := find(recs, env, commit)
		switch {
		case r == nil:
			return false, nil
		case r.FinishedAt != nil:
			return false, fmt.Errorf("%s/%s %s ended %s instead", env, r.Service, r.Version, r.Status)
		}
		return r.Status == store.StatusPending && r.Phase == phase, nil
	}
}

// find returns the newest record of commit in env, nil if none.
func find(recs []*store.Record, env, commit string) *store.Record {
	for _, r := range recs {
		if r.Environment == env && r.Commit == commit && r.Trigger != store.TriggerRetry {
			return r
		}
	}
	return nil
}

// freezeReads is serve's store, counting the times serve reads the
// freezes. serve reads them in a loop (every second) and acts on what it
// read before it reads them again, so once two reads have begun after a
// freeze was written, serve holds what it freezes: the demo waits for
// that, not for a second to pass.
type freezeReads struct {
	store.Store
	mu    sync.Mutex
	reads int
	more  chan struct{} // closed at the next read
}

func newFreezeReads(st store.Store) *freezeReads {
	return &freezeReads{Store: st, more: make(chan struct{})}
}

func (f *freezeReads) Freezes(ctx context.Context) ([]store.Freeze, error) {
	f.mu.Lock()
	f.reads++
	close(f.more)
	f.more = make(chan struct{})
	f.mu.Unlock()
	return f.Store.Freezes(ctx)
}

// mark is taken just after a freeze is written.
func (f *freezeReads) mark() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// acted waits until serve acted on the freezes written before mark.
func (f *freezeReads) acted(ctx context.Context, mark int) error {
	timeout := time.NewTimer(waitFor)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		n, more := f.reads, f.more
		f.mu.Unlock()
		if n >= mark+2 {
			return nil
		}
		select {
		case <-more:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("timed out after %s waiting for serve to read the freezes", waitFor)
		}
	}
}
