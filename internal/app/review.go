package app

import (
	"context"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// review runs policy again for every record waiting on JIRA: it becomes
// allowed, rejected, or keeps waiting until jira.unavailable_timeout.
func (a *App) review(ctx context.Context) error {
	pending, err := a.store.Pending(ctx)
	if err != nil {
		return err
	}
	for _, rec := range pending {
		if rec.Phase != store.PhasePolicy {
			continue
		}
		engine := a.engines[rec.Environment]
		if engine == nil {
			continue
		}
		sv, err := a.store.Service(ctx, rec.Repository, rec.Environment, rec.Service)
		if err != nil {
			return err
		}
		ch := &policy.Change{
			Repository: rec.Repository, Environment: rec.Environment, Service: rec.Service, Action: policy.Action(rec.Action),
			Commit:   policy.Commit{SHA: rec.Commit, Message: rec.Message, Author: policy.Identity{Email: rec.Author}, Committer: policy.Identity{Email: rec.Committer}},
			LastGood: sv.LastGood, LastAttempted: sv.LastAttempted, Attribution: sv.Attribution, PendingSince: rec.PendingSince,
		}
		if rec.Action != string(policy.ActionRemove) {
			ch.Requested = rec.Descriptor
		}
		if err := a.reviewOne(ctx, engine, ch, rec); err != nil {
			return err
		}
		if rec.Phase == store.PhaseQueued {
			a.sched.wake()
		}
	}
	return nil
}

// reviewOne decides one pending record again, holding decideMu.
func (a *App) reviewOne(ctx context.Context, engine *policy.Engine, ch *policy.Change, rec *store.Record) error {
	a.decideMu.Lock()
	defer a.decideMu.Unlock()
	v := engine.Evaluate(ctx, ch, a.now())
	applyVerdict(rec, v)
	var supersede []string
	switch rec.Status {
	case store.StatusPending:
		if rec.Phase == store.PhaseQueued {
			var err error
			if supersede, err = a.unstarted(ctx, rec.Repository, rec.Environment, rec.Service, rec.Seq); err != nil {
				return err
			}
		}
	default:
		t := a.now()
		rec.FinishedAt = &t
	}
	return a.store.Decide(ctx, rec, supersede)
}

// reviewLoop runs policy again for records waiting on JIRA.
func (a *App) reviewLoop(ctx context.Context) {
	t := time.NewTicker(max(a.cfg.PollInterval, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.review(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("reviewing pending records", keyErr, err)
		}
	}
}
