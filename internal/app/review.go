package app

import (
	"context"
	"errors"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// review decides again every record waiting on JIRA, through the same
// decider as a new commit: it becomes allowed, rejected, or keeps waiting
// until jira.unavailable_timeout.
func (a *App) review(ctx context.Context) error {
	pending, err := a.store.Pending(ctx)
	if err != nil {
		return err
	}
	for _, rec := range pending {
		if rec.Phase != store.PhasePolicy {
			continue
		}
		r, env := a.repo(rec.Repository), a.cfg.Environment(rec.Environment)
		if r == nil || env == nil || a.engines[env.Name] == nil {
			continue // no longer configured
		}
		if err := a.reviewOne(ctx, a.decider(r, env), rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // superseded since the list was read: the others still get their review
			}
			return err
		}
	}
	return nil
}

// reviewOne decides one pending record again, holding decideMu.
func (a *App) reviewOne(ctx context.Context, d *decider, rec *store.Record) error {
	a.decideMu.Lock()
	defer a.decideMu.Unlock()
	br, err := a.store.Branch(ctx, rec.Repository, rec.Environment)
	if err != nil {
		return err
	}
	supersede, err := d.review(ctx, rec, reviewPause(br))
	if err != nil {
		return err
	}
	if err := a.store.Decide(ctx, rec, supersede); err != nil {
		return err
	}
	a.afterApply(ctx, store.Batch{Records: []*store.Record{rec}, Supersede: supersede})
	return nil
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

// reviewPause is what a paused branch refuses in a record decided again:
// after a force-push, everything, as processBranch refuses a new commit.
func reviewPause(br store.Branch) string {
	if br.Paused == store.PauseForcePush {
		return policy.RuleForcePush
	}
	return ""
}
