package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/integrations/jira"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// ErrNothingToRetry is returned by Retry when the service's last release
// did not fail, or there is none.
var ErrNothingToRetry = errors.New("nothing to retry")

// RetryOptions say what to retry (SPEC §5 Retry).
type RetryOptions struct {
	Env, Service string
	Repo         string // "" the one repository that holds the service in Env
	Actor        string
	Now          time.Time
	// Tickets replaces the JIRA lookup of integrations.jira (tests).
	Tickets policy.TicketChecker
}

// retryScan is how many of a service's newest records Retry reads to find
// its last release.
const retryScan = 100

// Retry asks again for the last failed (or interrupted) release of a
// service: a new record (trigger retry, with the actor) for the same
// descriptor at the same commit, decided through steps 1 and 4-7 against
// the state now. A running serve starts it within a second. It returns the
// record, pending (queued or waiting at a gate) or rejected.
func Retry(ctx context.Context, cfg *config.Config, st store.Store, o RetryOptions) (*store.Record, error) {
	env := cfg.Environment(o.Env)
	if env == nil {
		return nil, fmt.Errorf("no environment %q", o.Env)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	failed, err := lastRelease(ctx, cfg, st, o)
	if err != nil {
		return nil, err
	}
	tickets := o.Tickets
	if tickets == nil && cfg.Integrations.Jira != nil {
		c, err := jira.New(*cfg.Integrations.Jira, jira.Options{Now: func() time.Time { return now }, Secrets: cfg.Secrets()})
		if err != nil {
			return nil, fmt.Errorf("integrations.jira: %w", err)
		}
		tickets = c
	}
	engine, err := policy.New(env.Policy, tickets)
	if err != nil {
		return nil, err
	}
	clock := func() time.Time { return now }
	d := &decider{repo: failed.Repository, env: env.Name, engine: engine, state: st, now: clock,
		gate: &gate{repo: failed.Repository, env: env.Name, from: upstreamOf(cfg, env.Name), engine: engine, state: st}}
	br, err := st.Branch(ctx, failed.Repository, env.Name)
	if err != nil {
		return nil, err
	}
	// The new record carries the failed one's contributions, so that it is
	// judged with their attribution, through the one re-decision path.
	rec := &store.Record{
		Repository: failed.Repository, Environment: env.Name, Service: failed.Service, Action: failed.Action,
		Version: failed.Version, PreviousVersion: failed.Version, Commit: failed.Commit, Author: failed.Author,
		Committer: failed.Committer, Message: failed.Message, Descriptor: failed.Descriptor,
		Tickets: []string{}, Reasons: []policy.Reason{}, Commits: failed.Commits, Stages: []store.Stage{},
		Trigger: store.TriggerRetry, Actor: o.Actor, CreatedAt: now,
	}
	// Nothing of the service is pending (store.Retry checks it), so the
	// re-decision supersedes nothing.
	if _, err := d.review(ctx, rec, reviewPause(br)); err != nil {
		return nil, err
	}
	if err := st.Retry(ctx, rec, failed.ID); err != nil {
		if errors.Is(err, store.ErrNotRetryable) {
			return nil, fmt.Errorf("%w: %v", ErrNothingToRetry, err)
		}
		return nil, err
	}
	return rec, nil
}

// lastRelease returns the service's last record that started, which must
// have failed.
func lastRelease(ctx context.Context, cfg *config.Config, st store.Store, o RetryOptions) (*store.Record, error) {
	repos := []string{o.Repo}
	if o.Repo == "" {
		repos = repos[:0]
		for _, r := range cfg.Repositories {
			repos = append(repos, r.Name)
		}
	} else if cfg.Repository(o.Repo) == nil {
		return nil, fmt.Errorf("no repository %q", o.Repo)
	}
	var found []*store.Record
	for _, repo := range repos {
		recs, err := st.Records(ctx, store.Filter{Repository: repo, Environment: o.Env, Service: o.Service, Limit: retryScan})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.StartedAt != nil || r.Status == store.StatusRunning {
				found = append(found, r)
				break
			}
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("%w: %s has no release in %s", ErrNothingToRetry, o.Service, o.Env)
	case len(found) > 1:
		return nil, fmt.Errorf("%s in %s is released from %d repositories: name one with --repo", o.Service, o.Env, len(found))
	}
	last := found[0]
	if last.Status != store.StatusFailed {
		return nil, fmt.Errorf("%w: the last release of %s in %s (record %s, %s) is %s", ErrNothingToRetry,
			o.Service, o.Env, last.ID, last.Version, last.Status)
	}
	return last, nil
}
