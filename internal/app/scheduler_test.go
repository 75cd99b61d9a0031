package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// schedHarness runs a scheduler inside a synctest bubble. Its Start records
// each call, checks the per-service and overall bounds, and blocks until the
// test ends that release with finish (or returns at once with auto).
type schedHarness struct {
	t    *testing.T
	s    *scheduler
	conc int
	auto bool
	// onStart, when set, is called under mu as each release starts.
	onStart func(id string)

	mu         sync.Mutex
	items      map[string]schedItem // every item the test added, by ID
	started    []string
	calls      map[string]int
	running    map[string]chan struct{}
	svcRunning map[svcKey]string
	maxRunning int

	begin    time.Time
	stopped  bool
	cancel   context.CancelFunc
	runDone  chan struct{}
	runCtxOK bool
}

type runCtxKey struct{}

func newSchedHarness(t *testing.T, conc int, auto bool) *schedHarness {
	t.Helper()
	h := &schedHarness{
		t: t, conc: conc, auto: auto, items: map[string]schedItem{}, calls: map[string]int{},
		running: map[string]chan struct{}{}, svcRunning: map[svcKey]string{}, begin: time.Now(), runCtxOK: true,
	}
	h.s = newScheduler(schedulerDeps{Concurrency: conc, Start: h.start, Log: testLogger(t)})
	return h
}

// run starts Run; releases get a runCtx that the test can recognise.
func (h *schedHarness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	runCtx := context.WithValue(context.Background(), runCtxKey{}, true)
	h.cancel, h.runDone = cancel, make(chan struct{})
	go func() {
		defer close(h.runDone)
		h.s.Run(ctx, runCtx)
	}()
	// A test that fails half-way still stops every goroutine of its bubble.
	h.t.Cleanup(h.stop)
	synctest.Wait()
}

func (h *schedHarness) start(ctx context.Context, id string) {
	h.mu.Lock()
	it := h.items[id]
	k := svcKey{it.Repository, it.Environment, it.Service}
	if other, ok := h.svcRunning[k]; ok {
		h.t.Errorf("%s started while %s of the same service runs", id, other)
	}
	h.svcRunning[k] = id
	h.started = append(h.started, id)
	h.calls[id]++
	if h.calls[id] > 1 {
		h.t.Errorf("%s started %d times", id, h.calls[id])
	}
	if ctx.Value(runCtxKey{}) == nil {
		h.runCtxOK = false
	}
	ch := make(chan struct{})
	h.running[id] = ch
	h.maxRunning = max(h.maxRunning, len(h.running))
	if len(h.running) > h.conc {
		h.t.Errorf("%d releases running at once, concurrency %d", len(h.running), h.conc)
	}
	if h.onStart != nil {
		h.onStart(id)
	}
	h.mu.Unlock()
	if !h.auto {
		<-ch
	}
	h.mu.Lock()
	delete(h.running, id)
	delete(h.svcRunning, k)
	h.mu.Unlock()
}

// add adds items and waits until the scheduler has done what it will.
func (h *schedHarness) add(items ...schedItem) {
	h.mu.Lock()
	for _, it := range items {
		if _, ok := h.items[it.ID]; !ok {
			h.items[it.ID] = it
		}
	}
	h.mu.Unlock()
	h.s.Add(items...)
	synctest.Wait()
}

func (h *schedHarness) ready(id string) {
	h.s.Ready(id)
	synctest.Wait()
}

func (h *schedHarness) remove(ids ...string) {
	h.s.Remove(ids...)
	synctest.Wait()
}

// finish ends the running release id.
func (h *schedHarness) finish(id string) {
	h.t.Helper()
	h.mu.Lock()
	ch, ok := h.running[id]
	h.mu.Unlock()
	if !ok {
		h.t.Fatalf("finish %s: not running (running %v)", id, h.runningIDs())
	}
	close(ch)
	synctest.Wait()
}

// startedSince returns the IDs started after the first n.
func (h *schedHarness) startedSince(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.started[n:])
}

func (h *schedHarness) nStarted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.started)
}

func (h *schedHarness) runningIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.running))
	for id := range h.running {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// wantLen checks the scheduler's counts.
func (h *schedHarness) wantLen(queued, running int) {
	h.t.Helper()
	if q, r := h.s.Len(); q != queued || r != running {
		h.t.Errorf("Len() = %d queued, %d running; want %d, %d", q, r, queued, running)
	}
}

// stop cancels Run, ends every running release and waits for Run; it also
// checks that nothing waited on the clock: every wait ended on an event.
// Only the first call does anything.
func (h *schedHarness) stop() {
	h.t.Helper()
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	synctest.Wait()
	for _, id := range h.runningIDs() {
		h.finish(id)
	}
	<-h.runDone
	if !h.runCtxOK {
		h.t.Error("a release did not get Run's runCtx")
	}
	if d := time.Since(h.begin); d != 0 {
		h.t.Errorf("the fake clock moved %s: something waited on a timer instead of an event", d)
	}
}

func item(id string, seq int64, env, service string, ready bool) schedItem {
	return schedItem{ID: id, Seq: seq, Repository: "deployments", Environment: env, Service: service, Ready: ready}
}

// testLogger sends the scheduler's log to the test's output.
func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

func TestSchedulerServiceOrder(t *testing.T) {
	tests := []struct {
		name  string
		batch []schedItem // added at once
		want  []string    // start order, one at a time
	}{
		{"in order", []schedItem{item("a1", 1, "qa", "a", true), item("a2", 2, "qa", "a", true), item("a3", 3, "qa", "a", true)}, []string{"a1", "a2", "a3"}},
		{"reverse order", []schedItem{item("a3", 3, "qa", "a", true), item("a2", 2, "qa", "a", true), item("a1", 1, "qa", "a", true)}, []string{"a1", "a2", "a3"}},
		{"shuffled with gaps", []schedItem{item("a9", 90, "qa", "a", true), item("a1", 10, "qa", "a", true), item("a5", 50, "qa", "a", true), item("a2", 20, "qa", "a", true)}, []string{"a1", "a2", "a5", "a9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newSchedHarness(t, 4, false)
				h.add(tc.batch...)
				h.run()
				for i, id := range tc.want {
					if got := h.startedSince(i); !slices.Equal(got, []string{id}) {
						t.Fatalf("after %d finished: started %v, want [%s]", i, got, id)
					}
					h.finish(id)
				}
				h.wantLen(0, 0)
				h.stop()
			})
		})
	}
}

func TestSchedulerAddBehindRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 4, false)
		h.run()
		h.add(item("a1", 1, "qa", "a", true))
		h.add(item("a3", 3, "qa", "a", true), item("a2", 2, "qa", "a", true))
		if got := h.startedSince(0); !slices.Equal(got, []string{"a1"}) {
			t.Fatalf("started %v, want [a1]: later records of a running service wait", got)
		}
		h.wantLen(2, 1)
		h.finish("a1")
		h.finish("a2")
		h.finish("a3")
		if got := h.startedSince(0); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
			t.Errorf("started %v", got)
		}
		h.stop()
	})
}

func TestSchedulerWaitingHead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 4, false)
		h.run()
		// a1 waits (say, for JIRA): a2 waits behind it; b is not held.
		h.add(item("a1", 1, "qa", "a", false), item("a2", 2, "qa", "a", true), item("b1", 3, "qa", "b", true),
			item("p1", 4, "prod", "a", true))
		if got := h.runningIDs(); !slices.Equal(got, []string{"b1", "p1"}) {
			t.Fatalf("running %v, want [b1 p1]", got)
		}
		h.wantLen(2, 2)
		h.ready("a2") // not its turn: a1 still waits
		if got := h.runningIDs(); !slices.Equal(got, []string{"b1", "p1"}) {
			t.Fatalf("a2 started before the waiting a1: running %v", got)
		}
		h.ready("a1")
		if got := h.runningIDs(); !slices.Equal(got, []string{"a1", "b1", "p1"}) {
			t.Fatalf("running %v after a1 became ready", got)
		}
		h.ready("a1") // again: nothing changes
		h.finish("a1")
		if got := h.runningIDs(); !slices.Equal(got, []string{"a2", "b1", "p1"}) {
			t.Fatalf("running %v after a1 ended", got)
		}
		h.stop()
	})
}

func TestSchedulerWaitingHeadRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 2, false)
		h.run()
		h.add(item("a1", 1, "qa", "a", false), item("a2", 2, "qa", "a", true))
		if n := h.nStarted(); n != 0 {
			t.Fatalf("%d started behind a waiting head", n)
		}
		h.remove("a1") // superseded while it waited
		if got := h.runningIDs(); !slices.Equal(got, []string{"a2"}) {
			t.Fatalf("running %v, want [a2]", got)
		}
		h.stop()
	})
}

func TestSchedulerConcurrencyBound(t *testing.T) {
	for _, conc := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newSchedHarness(t, conc, false)
				var items []schedItem
				seq := int64(0)
				for r := range 3 {
					for svc := range 10 {
						seq++
						items = append(items, item(fmt.Sprintf("s%d-%d", svc, r), seq, []string{"qa", "staging"}[svc%2], fmt.Sprint(svc), true))
					}
				}
				h.add(items...)
				h.run()
				left := map[string]int{} // service → records not ended
				for _, it := range items {
					left[it.Service]++
				}
				for len(left) > 0 {
					ids := h.runningIDs()
					if want := min(conc, len(left)); len(ids) != want {
						t.Fatalf("%d running with %d services left, want %d", len(ids), len(left), want)
					}
					for _, id := range ids {
						h.finish(id)
						if svc := h.items[id].Service; left[svc] == 1 {
							delete(left, svc)
						} else {
							left[svc]--
						}
					}
				}
				if h.maxRunning != min(conc, 10) {
					t.Errorf("at most %d ran at once, want %d", h.maxRunning, min(conc, 10))
				}
				h.wantLen(0, 0)
				h.stop()
			})
		})
	}
}

func TestSchedulerFairness(t *testing.T) {
	bulk := func(n int, mk func(i int) schedItem) []schedItem {
		items := make([]schedItem, n)
		for i := range items {
			items[i] = mk(i)
		}
		return items
	}
	tests := []struct {
		name string
		bulk []schedItem
		late schedItem
	}{
		{"another environment", bulk(1000, func(i int) schedItem { return item(fmt.Sprint("q", i), int64(i+1), "qa", fmt.Sprint("svc", i), true) }),
			item("prod", 5000, "prod", "svc0", true)},
		{"another service", bulk(1000, func(i int) schedItem { return item(fmt.Sprint("q", i), int64(i+1), "qa", "busy", true) }),
			item("other", 5000, "qa", "quiet", true)},
		{"another repository", bulk(1000, func(i int) schedItem { return item(fmt.Sprint("q", i), int64(i+1), "qa", fmt.Sprint("svc", i), true) }),
			schedItem{ID: "repo2", Seq: 5000, Repository: "other", Environment: "qa", Service: "svc0", Ready: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newSchedHarness(t, 1, false)
				h.add(tc.bulk...)
				h.run()
				for range 10 { // the bulk drains for a while
					h.finish(h.runningIDs()[0])
				}
				n := h.nStarted()
				h.add(tc.late)
				for range 2 {
					h.finish(h.runningIDs()[0])
				}
				if got := h.startedSince(n); !slices.Contains(got, tc.late.ID) {
					t.Fatalf("next 2 starts %v, want %s among them", got, tc.late.ID)
				}
				h.stop()
			})
		})
	}
}

func TestSchedulerRoundRobin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 1, false)
		var items []schedItem
		seq := int64(0)
		// qa has two services of three records; prod one service of three.
		for i := range 3 {
			for _, e := range []struct{ env, svc string }{{"qa", "a"}, {"qa", "b"}, {"prod", "a"}} {
				seq++
				items = append(items, item(fmt.Sprintf("%s-%s%d", e.env, e.svc, i), seq, e.env, e.svc, true))
			}
		}
		h.add(items...)
		h.run()
		for range len(items) {
			h.finish(h.runningIDs()[0])
		}
		want := []string{"qa-a0", "prod-a0", "qa-b0", "prod-a1", "qa-a1", "prod-a2", "qa-b1", "qa-a2", "qa-b2"}
		if got := h.startedSince(0); !slices.Equal(got, want) {
			t.Errorf("start order\n got %v\nwant %v", got, want)
		}
		h.stop()
	})
}

func TestSchedulerRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 1, false)
		h.run()
		h.add(item("a1", 1, "qa", "a", true), item("a2", 2, "qa", "a", true), item("a3", 3, "qa", "a", true),
			item("b1", 4, "qa", "b", true))
		h.wantLen(3, 1)
		h.remove("a2", "b1", "unknown", "a1") // a1 runs: left alone
		h.wantLen(1, 1)
		h.remove("a2") // again
		h.wantLen(1, 1)
		h.finish("a1")
		h.finish("a3")
		if got := h.startedSince(0); !slices.Equal(got, []string{"a1", "a3"}) {
			t.Errorf("started %v, want [a1 a3]", got)
		}
		h.wantLen(0, 0)
		h.stop()
	})
}

func TestSchedulerRemoveMany(t *testing.T) {
	// Superseding most of a long queue reclaims the tombstones and keeps
	// the order of the rest.
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 1, false)
		h.add(item("block", 0, "qa", "a", false))
		var want []string
		for i := 1; i <= 500; i++ {
			id := fmt.Sprint("a", i)
			h.add(item(id, int64(i), "qa", "a", true))
			if i%7 == 0 {
				want = append(want, id)
			} else {
				h.remove(id)
			}
		}
		h.remove("block")
		h.run()
		for range want {
			h.finish(h.runningIDs()[0])
		}
		if got := h.startedSince(0); !slices.Equal(got, want) {
			t.Errorf("started %v\nwant %v", got, want)
		}
		h.stop()
	})
}

func TestSchedulerAddIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 2, false)
		a1, a2 := item("a1", 1, "qa", "a", true), item("a2", 2, "qa", "a", false)
		h.add(a1, a1, a2)
		h.add(a2)
		h.wantLen(2, 0)
		h.run()
		h.add(a1, a2) // a1 runs, a2 waits
		h.wantLen(1, 1)
		h.finish("a1")
		h.add(a1) // ended: not again
		h.ready("a2")
		h.finish("a2")
		h.add(a1, a2, item("a0", 0, "qa", "a", true)) // a0 comes before started ones: refused
		h.wantLen(0, 0)
		if got := h.startedSince(0); !slices.Equal(got, []string{"a1", "a2"}) {
			t.Errorf("started %v, want [a1 a2]", got)
		}
		h.stop()
	})
}

func TestSchedulerShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 1, false)
		h.run()
		h.add(item("a1", 1, "qa", "a", true), item("b1", 2, "qa", "b", true))
		h.cancel()
		synctest.Wait()
		select {
		case <-h.runDone:
			t.Fatal("Run returned while a release ran")
		default:
		}
		h.finish("a1")
		<-h.runDone
		if got := h.startedSince(0); !slices.Equal(got, []string{"a1"}) {
			t.Errorf("started %v, want [a1]: nothing starts after shutdown", got)
		}
		h.wantLen(1, 0)
		h.stop()
	})
}

func TestSchedulerAddBeforeRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 2, false)
		h.add(item("a1", 1, "qa", "a", true))
		if n := h.nStarted(); n != 0 {
			t.Fatalf("%d started before Run", n)
		}
		h.run()
		if got := h.runningIDs(); !slices.Equal(got, []string{"a1"}) {
			t.Fatalf("running %v", got)
		}
		h.stop()
	})
}

func TestSchedulerConcurrencyBelowOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t, 1, false)
		h.s = newScheduler(schedulerDeps{Concurrency: 0, Start: h.start})
		h.run()
		h.add(item("a1", 1, "qa", "a", true), item("b1", 2, "qa", "b", true))
		if got := h.runningIDs(); !slices.Equal(got, []string{"a1"}) {
			t.Fatalf("running %v, want one", got)
		}
		h.stop()
	})
}
