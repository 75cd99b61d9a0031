package app

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
)

// The scheduler holds the pending records of every repository in memory and
// starts their releases (SPEC §5):
//
//   - per (repository, environment, service), records start in Seq order, one
//     running at a time; a record that waits (not Ready) at the head of its
//     service blocks the later ones of that service, and no other;
//   - at most Concurrency releases run at once;
//   - a free slot goes round-robin across environments first, then across the
//     repositories of that environment, then across the services of that
//     repository's branch, so a bulk commit in qa never holds back prod, and a
//     service with many queued commits never holds back its neighbours.
//
// Each level keeps a ring of its members that may have work: a service is in
// its branch's ring while its head is Ready and it runs nothing; a branch is in
// its environment's ring, and an environment in the root ring, while their own
// ring is not empty. Members leave a ring lazily: a dispatch drops the ones it
// finds with no work left. A dispatch therefore costs O(1) amortised, however
// many records are queued. Waits end on events (Add, Ready, Remove, a release
// ending); nothing polls and no goroutine waits per queued record.

// schedItem is one pending record as the scheduler sees it.
type schedItem struct {
	ID          string
	Seq         int64 // the store's order; an earlier Seq of the same service always goes first
	Repository  string
	Environment string
	Service     string
	Ready       bool // may start now (allowed, queued); false: it waits (policy pending on JIRA, a window)
	// Pass starts it whatever Admit says: a release that goes on after a
	// restart, or a break-glass record.
	Pass bool
}

// schedulerDeps are what a scheduler needs.
type schedulerDeps struct {
	// Concurrency is how many releases run at once (tuning.concurrency);
	// below 1 counts as 1.
	Concurrency int
	// Start runs one release to its end. It is called at most once per
	// record, on its own goroutine, with Run's runCtx.
	Start func(ctx context.Context, id string)
	// Log hears about records the scheduler refuses to start because a
	// later one of their service started (default: discarded).
	Log *slog.Logger
	// Admit, when set, is asked at the moment a ready record would start
	// (SPEC §5 step 6: a window may have closed, a freeze come, since it
	// was queued). It is called with the scheduler's lock held, so it must
	// be quick and must not call the scheduler. A refused record waits, not
	// ready, and is passed to Held.
	Admit func(schedItem) bool
	// Held hears, outside the lock, about the records Admit refused.
	Held func(ids []string)
}

// scheduler is the queue of pending records and the dispatcher of their
// releases. Its methods are safe for concurrent use; Run is called once.
type scheduler struct {
	conc  int
	start func(ctx context.Context, id string)
	admit func(schedItem) bool
	held  func(ids []string)
	log   *slog.Logger
	wake  chan struct{} // coalesced: something may be able to start

	mu       sync.Mutex
	ids      map[string]*schedEntry // queued and running records
	services map[svcKey]*svcQueue
	branches map[branchKey]*branchRing
	envs     map[string]*envRing
	ready    fifo[*envRing] // the root ring: environments that may have work
	queued   int            // records not started, waiting or ready
	running  int

	wg sync.WaitGroup // running releases
}

// newScheduler returns an idle scheduler; Run starts dispatching.
func newScheduler(d schedulerDeps) *scheduler {
	if d.Start == nil {
		panic("app: newScheduler without Start")
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &scheduler{
		conc: max(d.Concurrency, 1), start: d.Start, admit: d.Admit, held: d.Held, log: log, wake: make(chan struct{}, 1),
		ids: map[string]*schedEntry{}, services: map[svcKey]*svcQueue{},
		branches: map[branchKey]*branchRing{}, envs: map[string]*envRing{},
	}
}

// Add queues new or recovered pending records, in any order. A record
// already queued or running is not added again, and neither is one whose
// Seq is not after the last started release of its service: starting it
// would start an earlier commit after a later one (and a record that
// already ran has such a Seq).
func (s *scheduler) Add(items ...schedItem) {
	if len(items) == 0 {
		return
	}
	// In Seq order, each record goes to the tail of its service's queue.
	sorted := slices.Clone(items)
	slices.SortStableFunc(sorted, func(a, b schedItem) int { return cmp.Compare(a.Seq, b.Seq) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range sorted {
		if _, ok := s.ids[it.ID]; ok {
			continue
		}
		q := s.service(svcKey{it.Repository, it.Environment, it.Service})
		if q.started && it.Seq <= q.lastSeq {
			if it.Seq < q.lastSeq { // not merely the last started one again
				s.log.Warn("not starting a record that comes before one already started for its service",
					keyRecord, it.ID, keyRepo, it.Repository, keyEnv, it.Environment)
			}
			continue
		}
		e := &schedEntry{schedItem: it, q: q}
		q.insert(e)
		s.ids[it.ID] = e
		s.queued++
		if q.head() == e {
			s.offer(q)
		}
	}
	s.kick()
}

// Ready lets a waiting record start: at once if it heads its service and
// that service runs nothing, else in its turn. An unknown, running or
// already ready record is left alone.
func (s *scheduler) Ready(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.ids[id]
	if e == nil || e.running || e.Ready {
		return
	}
	e.Ready = true
	if e.q.head() == e {
		s.offer(e.q)
		s.kick()
	}
}

// Pass sets whether a queued record starts whatever Admit says: its
// latest decision gave it break-glass, or took it away. A running or
// unknown record is left alone.
func (s *scheduler) Pass(id string, pass bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.ids[id]; e != nil && !e.running {
		e.Pass = pass
	}
}

// Has reports whether a record is queued or running.
func (s *scheduler) Has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

// Hold makes queued records wait again (not ready): a freeze came, or a
// decision moved them back to a gate. A running or unknown record is left
// alone.
func (s *scheduler) Hold(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if e := s.ids[id]; e != nil && !e.running {
			e.Ready = false // its service leaves the rings lazily
		}
	}
}

// Remove forgets records that ended before they started (superseded,
// rejected). A running or unknown record is left alone.
func (s *scheduler) Remove(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		e := s.ids[id]
		if e == nil || e.running {
			continue
		}
		delete(s.ids, id)
		s.queued--
		q := e.q
		wasHead := q.head() == e
		q.remove(e)
		if wasHead {
			s.offer(q) // the next record may be ready
		}
	}
	s.kick()
}

// RemoveBefore forgets the queued records of a service that come before
// seq (a record that superseded them was written) and returns their ids.
// Running records are left alone.
func (s *scheduler) RemoveBefore(repo, env, service string, seq int64) []string {
	s.mu.Lock()
	q := s.services[svcKey{repo, env, service}]
	var ids []string
	if q != nil {
		for _, e := range q.items[q.first:] {
			if !e.removed && !e.running && e.Seq < seq {
				ids = append(ids, e.ID)
			}
		}
	}
	s.mu.Unlock()
	s.Remove(ids...)
	return ids
}

// Len reports how many records wait to start and how many run.
func (s *scheduler) Len() (queued, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued, s.running
}

// Run starts releases until ctx is done, then waits for the running ones to
// end. Releases run on runCtx, so a shutdown can give them a grace period.
func (s *scheduler) Run(ctx, runCtx context.Context) {
	defer s.wg.Wait()
	for {
		if held := s.dispatch(ctx, runCtx); len(held) > 0 && s.held != nil {
			s.held(held)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
	}
}

// dispatch starts releases while slots are free and records may start. It
// returns the records Admit refused.
func (s *scheduler) dispatch(ctx, runCtx context.Context) (held []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.running < s.conc && ctx.Err() == nil {
		q := s.next()
		if q == nil {
			return held
		}
		if h := q.head(); s.admit != nil && !h.Pass && !s.admit(h.schedItem) {
			h.Ready = false // q left the rings in next; Ready brings it back
			held = append(held, h.ID)
			continue
		}
		e := q.pop()
		e.running = true
		q.running, q.started, q.lastSeq = true, true, e.Seq
		s.queued--
		s.running++
		s.wg.Add(1)
		go s.release(runCtx, e)
	}
	return held
}

// release runs one record's release and frees its service and slot.
func (s *scheduler) release(ctx context.Context, e *schedEntry) {
	defer s.wg.Done()
	defer s.finish(e)
	s.start(ctx, e.ID)
}

func (s *scheduler) finish(e *schedEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ids, e.ID)
	e.q.running = false
	s.running--
	s.offer(e.q)
	s.kick()
}

// kick wakes Run when a free slot may be filled. Wakes coalesce.
func (s *scheduler) kick() {
	if s.running >= s.conc || s.ready.len() == 0 {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// service returns the queue of a service, creating it and its rings.
// Queues stay when empty: they remember the last started Seq, and there is
// one per service in the config, not per record.
func (s *scheduler) service(k svcKey) *svcQueue {
	if q := s.services[k]; q != nil {
		return q
	}
	env := s.envs[k.env]
	if env == nil {
		env = &envRing{}
		s.envs[k.env] = env
	}
	bk := branchKey{k.repo, k.env}
	br := s.branches[bk]
	if br == nil {
		br = &branchRing{env: env}
		s.branches[bk] = br
	}
	q := &svcQueue{branch: br}
	s.services[k] = q
	return q
}

// offer puts a service that can start its head into the rings, with its
// branch and environment.
func (s *scheduler) offer(q *svcQueue) {
	if !q.startable() {
		return
	}
	if !q.inRing {
		q.inRing = true
		q.branch.ready.push(q)
	}
	if br := q.branch; !br.inRing {
		br.inRing = true
		br.env.ready.push(br)
	}
	if env := q.branch.env; !env.inRing {
		env.inRing = true
		s.ready.push(env)
	}
}

// next takes the service whose turn it is: the next environment of the
// root ring, its next branch, that branch's next service. Each level moves
// the member it served to the back of its ring, and drops members found
// with no work.
func (s *scheduler) next() *svcQueue {
	return takeTurn(&s.ready, func(env *envRing) (*svcQueue, bool) {
		q := takeTurn(&env.ready, func(br *branchRing) (*svcQueue, bool) {
			q := takeTurn(&br.ready, func(q *svcQueue) (*svcQueue, bool) {
				// A service that starts leaves the ring until its
				// release ends.
				if q.startable() {
					return q, false
				}
				return nil, false
			})
			return q, br.ready.len() > 0
		})
		return q, env.ready.len() > 0
	})
}

// ringMember is a member of a round-robin ring; in reports whether it is in
// the ring.
type ringMember interface{ in() *bool }

// takeTurn serves the members of ring in turn until take yields a service.
// take also says whether the member has more work: then it goes to the back
// of the ring, else it leaves it.
func takeTurn[M ringMember](ring *fifo[M], take func(M) (*svcQueue, bool)) *svcQueue {
	for ring.len() > 0 {
		m := ring.pop()
		q, more := take(m)
		if more {
			ring.push(m)
		} else {
			*m.in() = false
		}
		if q != nil {
			return q
		}
	}
	return nil
}

type (
	svcKey    struct{ repo, env, service string }
	branchKey struct{ repo, env string }
)

// envRing is an environment: its ring of branches that may have work.
type envRing struct {
	ready  fifo[*branchRing]
	inRing bool
}

// branchRing is one repository's branch of an environment: its ring of
// services that may start.
type branchRing struct {
	env    *envRing
	ready  fifo[*svcQueue]
	inRing bool
}

func (e *envRing) in() *bool    { return &e.inRing }
func (b *branchRing) in() *bool { return &b.inRing }
func (q *svcQueue) in() *bool   { return &q.inRing }

// schedEntry is a queued or running record.
type schedEntry struct {
	schedItem
	q       *svcQueue
	running bool
	removed bool // removed while queued; its slot is reclaimed lazily
}

// svcQueue is one service's records in Seq order. Removed records stay as
// tombstones until they reach the head or outnumber the live ones.
type svcQueue struct {
	branch  *branchRing
	items   []*schedEntry // items[first:] by Seq
	first   int
	dead    int // tombstones in items[first:]
	running bool
	started bool  // a release of this service started
	lastSeq int64 // the Seq of the last started release
	inRing  bool
}

// startable reports whether the service runs nothing and its head may start.
func (q *svcQueue) startable() bool {
	h := q.head()
	return !q.running && h != nil && h.Ready
}

// head returns the earliest live record, or nil.
func (q *svcQueue) head() *schedEntry {
	for q.first < len(q.items) && q.items[q.first].removed {
		q.items[q.first] = nil
		q.first++
		q.dead--
	}
	if q.first == len(q.items) {
		q.reset()
		return nil
	}
	return q.items[q.first]
}

// pop takes the head, which must exist.
func (q *svcQueue) pop() *schedEntry {
	e := q.head()
	q.items[q.first] = nil
	q.first++
	if q.first == len(q.items) {
		q.reset()
	} else if q.first >= 32 && q.first*2 >= len(q.items) {
		q.compact()
	}
	return e
}

// insert places e by Seq, after records of an equal Seq.
func (q *svcQueue) insert(e *schedEntry) {
	live := q.items[q.first:]
	if len(live) == 0 || live[len(live)-1].Seq <= e.Seq {
		q.items = append(q.items, e)
		return
	}
	i, _ := slices.BinarySearchFunc(live, e.Seq+1, func(x *schedEntry, seq int64) int { return cmp.Compare(x.Seq, seq) })
	q.items = slices.Insert(q.items, q.first+i, e)
}

// remove marks e removed, compacting when tombstones outnumber the living.
func (q *svcQueue) remove(e *schedEntry) {
	e.removed = true
	q.dead++
	if n := len(q.items) - q.first; q.dead >= 32 && q.dead*2 > n {
		q.compact()
	}
}

// compact drops the popped prefix and the tombstones.
func (q *svcQueue) compact() {
	live := q.items[:0]
	for _, e := range q.items[q.first:] {
		if !e.removed {
			live = append(live, e)
		}
	}
	clear(q.items[len(live):])
	q.items, q.first, q.dead = live, 0, 0
	if len(live) == 0 {
		q.reset()
	}
}

// reset empties the queue, giving a large buffer back.
func (q *svcQueue) reset() {
	if cap(q.items) > 1024 {
		q.items = nil
	} else {
		q.items = q.items[:0]
	}
	q.first, q.dead = 0, 0
}

// fifo is a first-in first-out queue on a slice; the popped prefix is
// reclaimed once it outgrows the rest.
type fifo[T any] struct {
	buf   []T
	first int
}

func (f *fifo[T]) len() int { return len(f.buf) - f.first }

func (f *fifo[T]) push(v T) { f.buf = append(f.buf, v) }

// pop takes the front, which must exist.
func (f *fifo[T]) pop() T {
	var zero T
	v := f.buf[f.first]
	f.buf[f.first] = zero
	f.first++
	switch {
	case f.first == len(f.buf):
		f.buf, f.first = f.buf[:0], 0
		if cap(f.buf) > 1024 {
			f.buf = nil
		}
	case f.first >= 32 && f.first*2 >= len(f.buf):
		n := copy(f.buf, f.buf[f.first:])
		clear(f.buf[n:])
		f.buf, f.first = f.buf[:n], 0
	}
	return v
}
