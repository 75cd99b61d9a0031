package app

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// This file is serve's side of the gates (gate.go): what it remembers of
// the operators' freezes, what it asks at the moment a release would start,
// and the events that decide a waiting record again.

// freezeCache is serve's copy of the freezes, read again every second
// (operatorLoop) so that `gitmon freeze` from another process is acted on
// within a second, and so that the scheduler's Admit never reads the store.
type freezeCache struct {
	mu   sync.Mutex
	list []store.Freeze
}

func (f *freezeCache) get() []store.Freeze {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.list
}

// set stores fs and returns the environments whose freeze changed ("" is
// the halt).
func (f *freezeCache) set(fs []store.Freeze) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := map[string]store.Freeze{}
	for _, x := range f.list {
		old[x.Environment] = x
	}
	var changed []string
	for _, x := range fs {
		if o, ok := old[x.Environment]; !ok || !sameFreeze(o, x) {
			changed = append(changed, x.Environment)
		}
		delete(old, x.Environment)
	}
	for env := range old {
		changed = append(changed, env)
	}
	f.list = fs
	return changed
}

func sameFreeze(a, b store.Freeze) bool {
	return a.Reason == b.Reason && a.Actor == b.Actor && a.Since.Equal(b.Since) &&
		(a.Until == nil) == (b.Until == nil) && (a.Until == nil || a.Until.Equal(*b.Until))
}

// serveGates is the gates' state in serve: the store, with the freezes
// from the cache.
type serveGates struct {
	store.Store
	freezes *freezeCache
}

func (s serveGates) Freezes(context.Context) ([]store.Freeze, error) { return s.freezes.get(), nil }

// admit says whether a queued record may start now (the scheduler's
// Admit): its environment is not frozen or halted and is inside its
// windows. Running stages are never cut: only a start is refused.
func (a *App) admit(it schedItem) bool {
	now := a.now()
	if _, frozen := activeFreeze(a.freezes.get(), it.Environment, now); frozen {
		return false
	}
	e := a.engines[it.Environment]
	return e == nil || e.Windows().At(now).Open
}

// wakeNow decides records again on the waiter's goroutine, at once.
func (a *App) wakeNow(ids ...string) {
	now := a.now()
	for _, id := range ids {
		a.waiter.Wait(id, 0, now)
	}
}

// reviewIDs decides records again, those still pending (the waiter's
// Review).
func (a *App) reviewIDs(ctx context.Context, ids []string) {
	for _, id := range ids {
		rec, err := a.store.Record(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			a.forget(id)
			continue
		}
		if err != nil {
			a.log.Warn("deciding a waiting record again", keyRecord, id, keyErr, err)
			a.waiter.Wait(id, 0, a.now().Add(time.Second)) // try again
			continue
		}
		if rec.Status != store.StatusPending {
			if store.Finished(rec.Status) {
				a.forget(id) // it ended meanwhile (superseded by another's write)
			}
			continue
		}
		r, env := a.repo(rec.Repository), a.cfg.Environment(rec.Environment)
		if r == nil || env == nil || a.engines[env.Name] == nil {
			continue // no longer configured
		}
		if err := a.reviewOne(ctx, a.decider(r, env), rec); err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			a.log.Warn("deciding a waiting record again", keyRecord, id, keyErr, err)
			a.waiter.Wait(id, rec.Seq, a.now().Add(time.Second))
		}
	}
}

// releaseEnded hears that a release ended (the releaser's ended): what
// waits for it downstream is decided again.
func (a *App) releaseEnded(ctx context.Context, rec *store.Record) {
	a.decideMu.Lock()
	defer a.decideMu.Unlock()
	a.upstreamMoved(ctx, rec.Repository, rec.Environment, rec.Service)
}

// upstreamMoved decides again, at once, the pending records of service in
// the environments that env feeds (promotion.from): a release there ended,
// or a record was rejected or skipped, so a waiting promotion may pass,
// and a queued one that upstream has failed since must not start (SPEC
// §5 step 5, re-verification). Those records are held until their new
// decision: the upstream release that ended may be what kept their slot
// busy, and it frees the slot as soon as this returns.
//
// The caller holds decideMu, so that a downstream record is either
// decided after upstream moved (and sees it) or written before this
// reads what waits (and is woken): never decided on what upstream was and
// written after, which would wait for an event that has passed.
func (a *App) upstreamMoved(ctx context.Context, repo, env, service string) {
	for _, down := range a.cfg.Environments {
		if !down.Policy.Promotion.Required || upstreamOf(a.cfg, down.Name) != env {
			continue
		}
		a.wakePending(ctx, store.Filter{Repository: repo, Environment: down.Name, Service: service}, true)
	}
}

// gated reports whether env's records pass the promotion gate, which
// upstream may close again while they are queued.
func (a *App) gated(env string) bool {
	e := a.cfg.Environment(env)
	return e != nil && e.Policy.Promotion.Required
}

// wakePending decides again the pending records f selects; with hold,
// the scheduler holds them until then.
func (a *App) wakePending(ctx context.Context, f store.Filter, hold bool) {
	f.Status = []string{store.StatusPending}
	recs, err := a.store.Records(ctx, f)
	if err != nil {
		a.log.Warn("reading the records a gate holds", keyEnv, f.Environment, keyErr, err)
		return
	}
	slices.Reverse(recs) // oldest first: in commit order
	now := a.now()
	for _, r := range recs {
		if hold {
			a.sched.Hold(r.ID)
		}
		a.waiter.Wait(r.ID, r.Seq, now)
	}
}

// operatorTick is how often serve reads what operators did beside it: two
// indexed reads (the freezes, the pending records after the last seen),
// so that a freeze, an unfreeze or a retry is acted on well within the
// second SPEC §6 allows.
const operatorTick = 250 * time.Millisecond

// operatorLoop acts, within a second, on what operators do beside serve:
// freezes set or lifted (records held or released in commit order), and
// records other processes queued (gitmon retry).
func (a *App) operatorLoop(ctx context.Context, after int64) {
	t := time.NewTicker(operatorTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.refreshFreezes(ctx)
		recs, err := a.store.PendingAfter(ctx, after)
		if err != nil {
			a.log.Warn("reading records queued beside serve", keyErr, err)
			continue
		}
		for _, r := range recs {
			after = max(after, r.Seq)
			// Only retries come from other processes; serve queued the rest.
			if r.Trigger != store.TriggerRetry || a.sched.Has(r.ID) {
				continue
			}
			a.log.Info("record queued beside serve", keyRepo, r.Repository, keyEnv, r.Environment, keyService, r.Service,
				keyRecord, r.ID, "trigger", r.Trigger, "actor", r.Actor, "phase", r.Phase)
			a.queue(r)
			a.statuses.record(ctx, r)
			if r.Phase == store.PhasePromotion || r.Phase == store.PhaseWindow {
				// Decided by another process, on upstream and freezes as
				// they were: what moved since woke only what serve knew.
				a.waiter.Wait(r.ID, r.Seq, a.now())
			}
		}
	}
}

// refreshFreezes reads the freezes and wakes the records of every
// environment whose freeze changed. The new freezes hold at once (Admit
// reads them); the wake waits for decideMu, as upstreamMoved does, so
// that a record decided on the old freezes is written before it reads
// what waits.
func (a *App) refreshFreezes(ctx context.Context) {
	fs, err := a.store.Freezes(ctx)
	if err != nil {
		a.log.Warn("reading the freezes", keyErr, err)
		return
	}
	changed := a.freezes.set(fs)
	if len(changed) == 0 {
		return
	}
	a.decideMu.Lock()
	defer a.decideMu.Unlock()
	for _, env := range changed {
		if env == "" {
			a.log.Info("the halt of every environment changed; deciding what waits again")
			a.wakePending(ctx, store.Filter{}, false)
			return
		}
		a.log.Info("the freeze of an environment changed; deciding what waits there again", keyEnv, env)
		a.wakePending(ctx, store.Filter{Environment: env}, false)
	}
}

// queue hands a pending record to the scheduler and, when it waits at a
// gate for a time, to the waiter.
func (a *App) queue(r *store.Record) {
	it := schedItemOf(r)
	a.sched.Add(it)
	a.sched.Pass(r.ID, it.Pass) // break-glass given or taken after it was queued
	if it.Ready {
		a.sched.Ready(r.ID) // a re-reviewed record the queue holds already
	} else {
		a.sched.Hold(r.ID)
	}
	a.waiter.Wait(r.ID, r.Seq, r.WakeAt)
}
