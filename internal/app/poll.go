package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gitmon-dev/gitmon/internal/redact"
	"github.com/gitmon-dev/gitmon/internal/store"
)

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

// pollLoop polls one repository on a jittered interval, backing off
// exponentially while it fails.
func (a *App) pollLoop(ctx context.Context, r *repoState) {
	log := a.log.With(keyRepo, r.cfg.Name)
	for {
		err := a.poll(ctx, r)
		if ctx.Err() != nil {
			return
		}
		wait := a.cfg.PollInterval
		r.mu.Lock()
		failures := r.failures
		r.polled = true // a failed poll is a poll: /readyz shows its error
		if err != nil {
			r.failures++
			r.lastErr = err
			wait = backoff(a.cfg.PollInterval, a.cfg.Tuning.BackoffMax, r.failures)
		} else {
			r.failures, r.lastErr = 0, nil
		}
		r.mu.Unlock()
		// The event log records each outage once: when polling starts
		// failing, and when it works again.
		switch {
		case err != nil && failures == 0:
			a.repoEvent(ctx, r, store.EventPollError, fmt.Sprintf("polling %s fails: %v", redact.URL(r.cfg.URL), err))
		case err == nil && failures > 0:
			log.Info("repository recovered", "after_failures", failures)
			a.repoEvent(ctx, r, store.EventRecovered, fmt.Sprintf("polling %s works again after %d failed attempts", redact.URL(r.cfg.URL), failures))
		}
		if err != nil {
			log.Warn("poll failed", keyErr, err, "retry_in", wait.Round(time.Millisecond))
		}
		if !a.opts.NoJitter {
			wait = jitter(wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-r.trigger:
			t.Stop()
		}
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

// jitter spreads d by ±10% so many daemons do not poll in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// poll lists the repository's refs once and processes every environment
// branch that moved.
func (a *App) poll(ctx context.Context, r *repoState) error {
	a.metrics.polls.WithLabelValues(r.cfg.Name).Inc()
	tips, err := r.git.ListBranches(ctx)
	seen := a.now()
	if err != nil {
		a.metrics.pollErrors.WithLabelValues(r.cfg.Name).Inc()
		return err
	}
	var errs []error
	for i := range a.cfg.Environments {
		env := &a.cfg.Environments[i]
		if err := a.processBranch(ctx, r, env, tips, seen); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a.metrics.pollErrors.WithLabelValues(r.cfg.Name).Inc()
			errs = append(errs, fmt.Errorf("%s: %w", env.Branch, err))
		}
	}
	return errors.Join(errs...)
}
