package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks compare the scheduler with scanSched, a copy of the
// scheduler it replaced (legacy_sched.go), which rereads and re-sorts every
// pending record per dispatch. Both run in each iteration, interleaved, so
// each figure has a baseline from the same run and the ratio is reported.
// The baseline reads an in-memory map instead of SQLite: it is a lower
// bound of the old cost.
//
//	go test -run '^$' -bench BenchmarkScheduler -benchtime 1x -count 3 ./internal/app

// releaseQueue is what the benchmarks drive.
type releaseQueue interface {
	Add(items ...schedItem)
	Run(ctx, runCtx context.Context)
}

type queueMaker func(conc int, start func(ctx context.Context, id string)) releaseQueue

var benchQueues = []struct {
	name string
	mk   queueMaker
}{
	{"new", func(conc int, start func(context.Context, string)) releaseQueue {
		return newScheduler(schedulerDeps{Concurrency: conc, Start: start})
	}},
	{"old", func(conc int, start func(context.Context, string)) releaseQueue { return newScanSched(conc, start) }},
}

// bulk is n queued records: one commit touching n services of qa, or
// commits of one service each touching n/perService services.
func bulk(n, perService int) []schedItem {
	items := make([]schedItem, n)
	for i := range items {
		items[i] = schedItem{ID: fmt.Sprint("q", i), Seq: int64(i + 1), Repository: "deployments", Environment: "qa",
			Service: fmt.Sprint("svc", i/perService), Ready: true}
	}
	return items
}

// drain queues items at once and returns how long until every release
// (a no-op) has started and ended.
func drain(mk queueMaker, conc int, items []schedItem) time.Duration {
	var n atomic.Int64
	done := make(chan struct{})
	q := mk(conc, func(context.Context, string) {
		if n.Add(1) == int64(len(items)) {
			close(done)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); q.Run(ctx, context.Background()) }()
	t0 := time.Now()
	q.Add(items...)
	<-done
	d := time.Since(t0)
	cancel()
	<-stopped
	return d
}

func BenchmarkSchedulerDrain(b *testing.B) {
	for _, shape := range []struct {
		name       string
		perService int
	}{{"services", 1}, {"commits", 100}} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/n=%d", shape.name, n), func(b *testing.B) {
				items := bulk(n, shape.perService)
				total := map[string]time.Duration{}
				for b.Loop() {
					for _, q := range benchQueues {
						total[q.name] += drain(q.mk, 8, items)
					}
				}
				rate := func(name string) float64 { return float64(n*b.N) / total[name].Seconds() }
				b.ReportMetric(rate("new"), "new-releases/s")
				b.ReportMetric(rate("old"), "old-releases/s")
				b.ReportMetric(rate("new")/rate("old"), "speedup")
			})
		}
	}
}

// crossEnvLatency drains n records of qa and, each time another tenth of
// them has started, adds a record in prod; it returns how long each prod
// record took from Add to Start.
func crossEnvLatency(mk queueMaker, conc, n int) []time.Duration {
	const probes = 9
	var (
		qa     atomic.Int64
		mu     sync.Mutex
		added  = map[string]time.Time{}
		lat    []time.Duration
		probed sync.WaitGroup
	)
	signal := make(chan struct{}, probes)
	qaDone := make(chan struct{})
	probed.Add(probes)
	q := mk(conc, func(_ context.Context, id string) {
		if id[0] == 'p' {
			now := time.Now()
			mu.Lock()
			lat = append(lat, now.Sub(added[id]))
			mu.Unlock()
			probed.Done()
			return
		}
		switch c := qa.Add(1); {
		case c == int64(n):
			close(qaDone)
		case c%int64(n/(probes+1)) == 0 && c < int64(n):
			signal <- struct{}{}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); q.Run(ctx, context.Background()) }()
	go func() {
		for i := range probes {
			<-signal
			id := fmt.Sprint("p", i)
			mu.Lock()
			added[id] = time.Now()
			mu.Unlock()
			q.Add(schedItem{ID: id, Seq: int64(n + 1 + i), Repository: "deployments", Environment: "prod", Service: fmt.Sprint("svc", i), Ready: true})
		}
	}()
	q.Add(bulk(n, 1)...)
	<-qaDone
	probed.Wait()
	cancel()
	<-stopped
	return lat
}

func BenchmarkSchedulerCrossEnvLatency(b *testing.B) {
	const n = 10000
	lat := map[string][]time.Duration{}
	for b.Loop() {
		for _, q := range benchQueues {
			lat[q.name] = append(lat[q.name], crossEnvLatency(q.mk, 8, n)...)
		}
	}
	pct := func(name string, p float64) float64 {
		l := slices.Clone(lat[name])
		slices.Sort(l)
		return float64(l[int(p*float64(len(l)-1))]) / float64(time.Millisecond)
	}
	for _, name := range []string{"new", "old"} {
		b.ReportMetric(pct(name, 0.5), name+"-p50-ms")
		b.ReportMetric(pct(name, 0.9), name+"-p90-ms")
		b.ReportMetric(pct(name, 1), name+"-max-ms")
	}
	b.ReportMetric(pct("old", 0.5)/pct("new", 0.5), "p50-ratio")
}

// BenchmarkSchedulerDispatch is the queue alone: one dispatch and the end of
// that release, synchronously, with n records queued behind. Its cost should
// not grow with n.
func BenchmarkSchedulerDispatch(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("new/n=%d", n), func(b *testing.B) {
			s := newScheduler(schedulerDeps{Start: func(context.Context, string) {}})
			s.Add(bulk(n, 1)...)
			seq := int64(n)
			for b.Loop() {
				s.mu.Lock()
				q := s.next()
				e := q.pop()
				q.running, q.started, q.lastSeq = true, true, e.Seq
				s.mu.Unlock()
				s.finish(e)
				seq++ // keep n queued: the ended record's service queues again
				s.Add(schedItem{ID: fmt.Sprint("q", seq), Seq: seq, Repository: e.Repository, Environment: e.Environment, Service: e.Service, Ready: true})
			}
		})
		if n > 10000 {
			continue // the old one takes minutes
		}
		b.Run(fmt.Sprintf("old/n=%d", n), func(b *testing.B) {
			s := newScanSched(1, func(context.Context, string) {})
			s.Add(bulk(n, 1)...)
			seq := int64(n)
			for b.Loop() {
				it, _ := s.pick()
				s.mu.Lock()
				delete(s.pending, it.ID)
				s.mu.Unlock()
				seq++
				s.Add(schedItem{ID: fmt.Sprint("q", seq), Seq: seq, Repository: it.Repository, Environment: it.Environment, Service: it.Service, Ready: true})
			}
		})
	}
}

// scanSched is the old algorithm: every dispatch reads every pending record
// in Seq order (store.Pending) and starts the first of each service that may
// start, while slots are free.
type scanSched struct {
	start   func(ctx context.Context, id string)
	wakeCh  chan struct{}
	slots   chan struct{}
	mu      sync.Mutex
	pending map[string]schedItem // the store's pending records
	running map[string]bool      // service key → a release runs
	wg      sync.WaitGroup
}

func newScanSched(conc int, start func(context.Context, string)) *scanSched {
	return &scanSched{start: start, wakeCh: make(chan struct{}, 1), slots: make(chan struct{}, conc),
		pending: map[string]schedItem{}, running: map[string]bool{}}
}

func (s *scanSched) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

func (s *scanSched) Add(items ...schedItem) {
	s.mu.Lock()
	for _, it := range items {
		s.pending[it.ID] = it
	}
	s.mu.Unlock()
	s.wake()
}

func (s *scanSched) Run(ctx, runCtx context.Context) {
	defer s.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wakeCh:
		}
		s.dispatch(runCtx)
	}
}

// read is store.Pending: every pending record, in Seq order.
func (s *scanSched) read() []schedItem {
	s.mu.Lock()
	all := make([]schedItem, 0, len(s.pending))
	for _, it := range s.pending {
		all = append(all, it)
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b schedItem) int { return cmp.Compare(a.Seq, b.Seq) })
	return all
}

// pick is one scan: the first record that may start, if any.
func (s *scanSched) pick() (schedItem, bool) {
	blocked := map[string]bool{}
	for _, it := range s.read() {
		key := it.Repository + "\x00" + it.Environment + "\x00" + it.Service
		if blocked[key] {
			continue
		}
		blocked[key] = true
		s.mu.Lock()
		busy := s.running[key]
		s.mu.Unlock()
		if it.Ready && !busy {
			return it, true
		}
	}
	return schedItem{}, false
}

func (s *scanSched) dispatch(runCtx context.Context) {
	blocked := map[string]bool{}
	for _, it := range s.read() {
		key := it.Repository + "\x00" + it.Environment + "\x00" + it.Service
		if blocked[key] {
			continue
		}
		blocked[key] = true
		if !it.Ready {
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
		default:
			return // every slot busy: a finishing release wakes us
		}
		s.mu.Lock()
		s.running[key] = true
		delete(s.pending, it.ID) // StartRecord: no longer pending
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
			s.start(runCtx, it.ID)
		}()
	}
}
