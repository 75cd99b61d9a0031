package app

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// waiter wakes records that wait at a gate (SPEC §5 steps 5 and 6) when
// their time comes: a soak that ends, a window that opens, a freeze's
// `until`, a promotion `wait` that runs out. Records waiting for an event
// (an upstream release ending, an operator's unfreeze) are woken by whoever
// sees the event; the waiter holds only times.
//
// It keeps one entry per record in a min-heap by wake time and sleeps until
// the earliest, but never longer than tick, so that a clock that jumps (an
// injected one in tests, a suspended machine) is noticed within a tick. A
// wake costs O(log n), however many records wait.
type waiter struct {
	now    func() time.Time
	tick   time.Duration
	review func(ctx context.Context, ids []string)

	mu   sync.Mutex
	at   map[string]*wakeItem
	h    wakeHeap
	kick chan struct{}
}

// waiterDeps are what a waiter needs.
type waiterDeps struct {
	Now func() time.Time
	// Tick is the longest sleep (default 1s).
	Tick time.Duration
	// Review decides records again, oldest first; it is called from
	// Run's goroutine.
	Review func(ctx context.Context, ids []string)
}

func newWaiter(d waiterDeps) *waiter {
	if d.Tick <= 0 {
		d.Tick = time.Second
	}
	return &waiter{now: d.Now, tick: d.Tick, review: d.Review, at: map[string]*wakeItem{}, kick: make(chan struct{}, 1)}
}

// Wait wakes record id at t (seq orders records due together); a zero t
// forgets it.
func (w *waiter) Wait(id string, seq int64, t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if it, ok := w.at[id]; ok {
		if t.IsZero() {
			heap.Remove(&w.h, it.i)
			delete(w.at, id)
			return
		}
		it.t = t
		heap.Fix(&w.h, it.i)
	} else {
		if t.IsZero() {
			return
		}
		it := &wakeItem{id: id, seq: seq, t: t}
		heap.Push(&w.h, it)
		w.at[id] = it
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Len is how many records wait for a time.
func (w *waiter) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.h)
}

// due takes the records whose time has come, in (time, seq) order, and
// says how long to sleep before the next.
func (w *waiter) due() ([]string, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var ids []string
	for len(w.h) > 0 && !w.h[0].t.After(now) {
		it := heap.Pop(&w.h).(*wakeItem)
		delete(w.at, it.id)
		ids = append(ids, it.id)
	}
	sleep := w.tick
	if len(w.h) > 0 {
		sleep = min(sleep, w.h[0].t.Sub(now))
	}
	return ids, max(sleep, time.Millisecond)
}

// Run wakes records until ctx is done.
func (w *waiter) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
			t.Stop()
		}
		ids, sleep := w.due()
		if len(ids) > 0 {
			w.review(ctx, ids)
		}
		t.Reset(sleep)
	}
}

type wakeItem struct {
	id  string
	seq int64
	t   time.Time
	i   int
}

type wakeHeap []*wakeItem

func (h wakeHeap) Len() int { return len(h) }
func (h wakeHeap) Less(i, j int) bool {
	if !h[i].t.Equal(h[j].t) {
		return h[i].t.Before(h[j].t)
	}
	return h[i].seq < h[j].seq
}
func (h wakeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].i = i; h[j].i = j }
func (h *wakeHeap) Push(x any)   { it := x.(*wakeItem); it.i = len(*h); *h = append(*h, it) }
func (h *wakeHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
