package app

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitmon-dev/gitmon/internal/redact"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// pollState is what the poll loop of one repository keeps between polls.
// Only that loop touches it.
type pollState struct {
	// phase is the repository's offset within the poll interval.
	phase time.Duration
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

// Trigger asks for a poll of a repository now (a webhook); bursts
// coalesce into one poll.
func (a *App) Trigger(repo string) {
	for _, r := range a.repos {
		if r.cfg.Name == repo || repo == "" {
			select {
			case r.trigger <- struct{}{}:
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

// pollLoop polls one repository at its phase of every interval, backing
// off exponentially (on the same grid) while it fails. A trigger polls at
// once; the grid stays.
func (a *App) pollLoop(ctx context.Context, r *repoState) {
	interval := a.cfg.PollInterval
	var wait time.Duration // NoJitter: the first poll at once
	if !a.opts.NoJitter {
		now := time.Now()
		wait = slotAfter(now, r.poll.phase, interval).Sub(now)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.trigger:
		}
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
		// The next poll is the first slot after the backoff's worth of
		// intervals: a failing repository keeps its phase too, so
		// repositories that fail together (their server was down) come
		// back spread as they were.
		now := time.Now()
		delay := interval
		if next > 0 {
			delay = backoff(interval, a.cfg.Tuning.BackoffMax, next)
		}
		if delay < interval {
			wait = delay // a backoff_max shorter than the interval
		} else {
			wait = slotAfter(now.Add(delay-interval), r.poll.phase, interval).Sub(now)
		}
		if err != nil {
			a.log.Warn("poll failed", keyRepo, r.cfg.Name, keyErr, err, "retry_in", wait.Round(time.Millisecond))
		}
		t.Reset(wait) // since Go 1.23, Reset discards a stale tick
	}
}

// repoEvent appends an event about a whole repository.
func (a *App) repoEvent(ctx context.Context, r *repoState, kind, msg string) {
	err := a.store.AddEvent(ctx, store.Event{At: a.now(), Repository: r.cfg.Name, Kind: kind, Message: msg, Commits: []string{}})
	if err != nil && ctx.Err() == nil {
		a.log.Warn("recording an event", keyRepo, r.cfg.Name, keyErr, err)
	}
}

// backoff is base doubled per consecutive failure, capped at max.
func backoff(base, max time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
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
	// On a processing worker: bounded (so are the fetches), and the deep
	// calls do not grow this loop's stack (package workers).
	werr := a.processing.Do(ctx, func() {
		for _, i := range moved {
			env := &a.cfg.Environments[i]
			delete(r.poll.settled, env.Name)
			if err := a.processBranch(ctx, r, env, tips, seen); err != nil {
				if ctx.Err() != nil {
					return
				}
				r.poll.pollErrors.Inc()
				errs = append(errs, fmt.Errorf("%s: %w", env.Branch, err))
				continue
			}
			r.poll.settled[env.Name] = listedIn(tips, env.Branch)
		}
	})
	if werr != nil || ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

func listedIn(tips map[string]string, branch string) listed {
	tip, present := tips[branch]
	return listed{tip: tip, present: present}
}
