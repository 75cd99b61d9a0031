package app

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitmon-dev/gitmon/internal/backoff"
	"github.com/gitmon-dev/gitmon/internal/redact"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/internal/workers"
)

// pollState is what the poller keeps of one repository between polls.
// Its fields up to next are the poller's, under its lock; settled is the
// running poll's.
type pollState struct {
	// phase is the repository's offset within the poll interval.
	phase time.Duration
	// next is when the repository polls next; index is its place in the
	// poller's queue (-1: not queued: being polled, or not yet started).
	next  time.Time
	index int
	// busy: a poll of the repository runs; rerun: a trigger came during
	// it, so it polls again at once.
	busy, rerun bool
	// settled is, by environment, the branch as the last poll that
	// processed it without error listed it. A poll whose listing says the
	// same calls nothing and reads nothing from the store.
	settled map[string]listed
	// The repository's counters, resolved once.
	polls, pollErrors prometheus.Counter
}

// listed is an environment branch as a ref listing shows it.
type listed struct {
	tip     string
	present bool
}

// Trigger asks for a poll of a repository now (a webhook; "" means all);
// bursts coalesce into one poll, and a burst during a poll into one more.
// The repository's size-1 trigger channel holds the pending request: a
// send that finds it full is coalesced.
func (a *App) Trigger(repo string) {
	for _, r := range a.repos {
		if r.cfg.Name == repo || repo == "" {
			select {
			case r.trigger <- struct{}{}:
				a.poller.triggered(r)
			default:
			}
		}
	}
}

// phase is a repository's stable offset within the interval, taken from
// a hash of its name: N repositories' polls spread evenly over the
// interval instead of meeting, and a restart keeps each one's. It
// replaces the ±10% jitter, which left the first polls of every
// repository together at start (the Git server's accept queue overflowed
// and 36–63% of the expected polls were made) and let them drift into each
// other later. Two daemons watching one repository under one name poll it
// together; their other repositories stay spread.
func phase(name string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	sum := sha256.Sum256([]byte(name))
	hi, _ := bits.Mul64(binary.BigEndian.Uint64(sum[:8]), uint64(interval))
	return time.Duration(hi)
}

// slotAfter is the first time after t at which a repository of that
// phase polls: phase past a whole number of intervals since the Unix
// epoch. The grid is the wall clock's, so a restart polls each
// repository at its usual moment.
func slotAfter(t time.Time, phase, interval time.Duration) time.Time {
	n, p, i := t.UnixNano(), int64(phase), int64(interval)
	k := (n - p) / i
	if n-p < 0 && (n-p)%i != 0 {
		k-- // floor, not truncation
	}
	s := k*i + p
	for s <= n {
		s += i
	}
	return time.Unix(0, s)
}

// startRate is how many first polls a second a start makes at most when
// the interval is longer than they need: PERFORMANCE.md measured 2,000
// polls in 20 s (100/s) without a listen-queue overflow; half of that
// leaves room for the servers' other clients.
const startRate = 50

// startSpread is how long the first polls of n repositories take at
// start: their own phase of the interval when the interval is short
// enough, else n/startRate. A long interval (an hour, with webhooks) must
// not leave /readyz failing and pushes made while gitmon was down unseen
// for up to that hour.
func startSpread(n int, interval time.Duration) time.Duration {
	return min(interval, time.Duration(n)*time.Second/startRate)
}

// firstPoll is when a repository polls first after a start at now: its
// slot on the grid if that comes within spread, else at its stable offset
// within spread (a hash of its name, as its phase is); from then on it
// keeps to its slots.
func firstPoll(now time.Time, name string, ph, interval, spread time.Duration) time.Time {
	if slot := slotAfter(now, ph, interval); !slot.After(now.Add(spread)) {
		return slot
	}
	return now.Add(phase(name, spread))
}

// poller runs every repository's polls: a queue of the repositories by
// their next poll time, one goroutine (run) that waits for the earliest
// and hands each due repository to a worker of pool, and the workers,
// which poll and queue the repository again at its next slot. No
// goroutine or timer is held per repository, and a poll runs on a worker
// whose stack is grown already (package workers has the figures).
type poller struct {
	pool *workers.Pool
	mu   sync.Mutex
	// queue is a min-heap of repositories by next poll time.
	queue pollQueue
	// wake tells run that the earliest poll time may have moved.
	wake chan struct{}
	// running counts polls handed to workers and not yet queued again.
	running sync.WaitGroup
}

// pollWorkers is how many polls run at once (listing and processing; the
// listings alone are bounded by monitor's DialLimit), which also bounds
// the fetch connections.
const pollWorkers = 64

func newPoller() *poller {
	return &poller{pool: workers.New(pollWorkers), wake: make(chan struct{}, 1)}
}

func (p *poller) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// triggered makes r due now, or, while it is being polled, polls it once
// more after.
func (p *poller) triggered(r *repoState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case r.poll.busy:
		r.poll.rerun = true
	case r.poll.index >= 0:
		r.poll.next = time.Now()
		heap.Fix(&p.queue, r.poll.index)
	}
	p.poke()
}

// pollRepos polls every repository at its phase of every interval until
// ctx ends, then waits for the polls running.
func (a *App) pollRepos(ctx context.Context) {
	p := a.poller
	defer p.running.Wait()
	now := time.Now()
	spread := startSpread(len(a.repos), a.cfg.PollInterval)
	p.mu.Lock()
	for _, r := range a.repos {
		r.poll.next = now // NoJitter, or a trigger came before the start
		if !a.opts.NoJitter && len(r.trigger) == 0 {
			r.poll.next = firstPoll(now, r.cfg.Name, r.poll.phase, a.cfg.PollInterval, spread)
		}
		heap.Push(&p.queue, r)
	}
	p.mu.Unlock()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wake:
		}
		now := time.Now()
		var due []*repoState
		p.mu.Lock()
		for p.queue.Len() > 0 && !p.queue[0].poll.next.After(now) {
			due = append(due, heap.Pop(&p.queue).(*repoState))
		}
		wait := time.Hour
		if p.queue.Len() > 0 {
			wait = p.queue[0].poll.next.Sub(now)
		}
		p.mu.Unlock()
		for _, r := range due {
			p.running.Add(1)
			if err := p.pool.Go(ctx, func() { defer p.running.Done(); a.pollOnce(ctx, r) }); err != nil {
				p.running.Done()
				return
			}
		}
		if len(due) > 0 {
			wait = 0 // time passed while handing out: look again
		}
		t.Reset(wait) // since Go 1.23, Reset discards a stale tick
	}
}

// pollOnce polls r on a worker and queues it again: at its phase of the
// next interval, or after a failure at the first slot after a capped
// exponential backoff, so that repositories that failed together (their
// server was down) come back spread as they were.
func (a *App) pollOnce(ctx context.Context, r *repoState) {
	p := a.poller
	select {
	case <-r.trigger: // this poll answers a pending trigger
	default:
	}
	p.mu.Lock()
	r.poll.busy = true // a trigger from now on asks for one more poll
	p.mu.Unlock()
	err := a.poll(ctx, r)
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	failures := r.failures
	r.polled = true // a failed poll is a poll: /readyz shows its error
	if err != nil {
		r.failures++
		r.lastErr = err
	} else {
		r.failures, r.lastErr = 0, nil
	}
	next := r.failures
	r.mu.Unlock()
	// The event log records each outage once: when polling starts
	// failing, and when it works again.
	switch {
	case err != nil && failures == 0:
		a.repoEvent(ctx, r, store.EventPollError, fmt.Sprintf("polling %s fails: %v", redact.URL(r.cfg.URL), err))
	case err == nil && failures > 0:
		a.log.Info("repository recovered", keyRepo, r.cfg.Name, "after_failures", failures)
		a.repoEvent(ctx, r, store.EventRecovered, fmt.Sprintf("polling %s works again after %d failed attempts", redact.URL(r.cfg.URL), failures))
	}
	interval := a.cfg.PollInterval
	now := time.Now()
	delay := interval
	if next > 0 {
		delay = backoff.Exponential(interval, a.cfg.Tuning.BackoffMax, next)
	}
	// The next slot at least half the interval away: a poll that came
	// early (the first after start, a webhook's late in an interval)
	// does not poll again a moment later at the slot it just preceded.
	at := slotAfter(now.Add(delay-interval/2), r.poll.phase, interval)
	if delay < interval {
		at = now.Add(delay) // a backoff_max shorter than the interval
	}
	if err != nil {
		a.log.Warn("poll failed", keyRepo, r.cfg.Name, keyErr, err, "retry_in", at.Sub(now).Round(time.Millisecond))
	}
	p.mu.Lock()
	r.poll.busy = false
	if r.poll.rerun {
		r.poll.rerun = false
		at = now
	}
	r.poll.next = at
	heap.Push(&p.queue, r)
	first := r.poll.index == 0
	p.mu.Unlock()
	if first {
		p.poke()
	}
}

// pollQueue is a min-heap of repositories by next poll time.
type pollQueue []*repoState

func (q pollQueue) Len() int           { return len(q) }
func (q pollQueue) Less(i, j int) bool { return q[i].poll.next.Before(q[j].poll.next) }
func (q pollQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].poll.index, q[j].poll.index = i, j
}
func (q *pollQueue) Push(x any) {
	r := x.(*repoState)
	r.poll.index = len(*q)
	*q = append(*q, r)
}
func (q *pollQueue) Pop() any {
	old := *q
	r := old[len(old)-1]
	old[len(old)-1] = nil
	r.poll.index = -1
	*q = old[:len(old)-1]
	return r
}

// repoEvent appends an event about a whole repository.
func (a *App) repoEvent(ctx context.Context, r *repoState, kind, msg string) {
	err := a.store.AddEvent(ctx, store.Event{At: a.now(), Repository: r.cfg.Name, Kind: kind, Message: msg, Commits: []string{}})
	if err != nil && ctx.Err() == nil {
		a.log.Warn("recording an event", keyRepo, r.cfg.Name, keyErr, err)
	}
}

// poll lists the repository's refs once and processes every environment
// branch whose listing differs from the one last processed: a moved,
// deleted or returning branch, or one this process has not processed
// yet (each branch's first poll after a start, or after an error). An
// unchanged poll touches neither the store nor the object store.
//
// This rests on processBranch's promise: when it returns nil, the branch
// is processed up to the tip it was given (or its absence is recorded),
// so calling it again with the same listing would do nothing.
func (a *App) poll(ctx context.Context, r *repoState) error {
	r.poll.polls.Inc()
	tips, err := r.git.ListBranches(ctx)
	seen := a.now()
	if err != nil {
		r.poll.pollErrors.Inc()
		return err
	}
	var moved []int // environments whose listing differs
	for i := range a.cfg.Environments {
		env := &a.cfg.Environments[i]
		if last, ok := r.poll.settled[env.Name]; !ok || last != listedIn(tips, env.Branch) {
			moved = append(moved, i)
		}
	}
	if len(moved) == 0 {
		return nil
	}
	var errs []error
	for _, i := range moved {
		env := &a.cfg.Environments[i]
		delete(r.poll.settled, env.Name)
		if err := a.processBranch(ctx, r, env, tips, seen); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.poll.pollErrors.Inc()
			errs = append(errs, fmt.Errorf("%s: %w", env.Branch, err))
			continue
		}
		r.poll.settled[env.Name] = listedIn(tips, env.Branch)
	}
	return errors.Join(errs...)
}

func listedIn(tips map[string]string, branch string) listed {
	tip, present := tips[branch]
	return listed{tip: tip, present: present}
}
