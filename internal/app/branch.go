package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/monitor"
	"github.com/gitmon-dev/gitmon/policy"
)

// gitRepo is what the daemon needs of a watched repository; monitor.Repo
// implements it over go-git.
type gitRepo interface {
	ListBranches(ctx context.Context) (map[string]string, error)
	Fetch(ctx context.Context, branch string) error
	Walk(ctx context.Context, from, to string, limit int) ([]monitor.Commit, *monitor.Rewrite, error)
	Commit(ctx context.Context, sha string) (monitor.Commit, error)
	Changed(ctx context.Context, c monitor.Commit, glob string) ([]monitor.FileChange, error)
	Files(ctx context.Context, sha, glob string) ([]monitor.File, error)
	ReadBlob(ctx context.Context, blob string, max int64) ([]byte, error)
	IsAncestor(ctx context.Context, a, b string) (bool, error)
	// Resolve returns the commit a branch, tag or (short) SHA names.
	Resolve(ctx context.Context, ref string) (string, error)
}

// walkLimit bounds how many commits one poll walks on one branch.
const walkLimit = 100000

// branchRun is the branch state machine of one (repository, environment)
// in one poll: first sight (baseline, or every descriptor requested),
// absent, deleted, force-pushed (paused, or walked from the merge base),
// put back and restored. It holds the services' state as it advances
// commit by commit, and hands each new commit to the decider; a commit
// processed before (a branch force-pushed away and back) only advances
// the state.
type branchRun struct {
	a      *App
	repo   *repoState
	env    *config.Environment
	d      *decider
	seenAt time.Time // when the poll saw the tip
	// state of each service at the commit being processed
	services *services
	// pause applied to every record of this run ("" none)
	paused string
}

// decider returns the decider of an environment branch of r.
func (a *App) decider(r *repoState, env *config.Environment) *decider {
	return &decider{repo: r.cfg.Name, env: env.Name, glob: r.cfg.Descriptors, engine: a.engines[env.Name],
		state: a.store, now: a.now, read: func(ctx context.Context, file, blob string) (*descriptors.Descriptor, error) {
			return readDescriptor(ctx, r.git, file, blob)
		},
		gate: &gate{repo: r.cfg.Name, env: env.Name, from: upstreamOf(a.cfg, env.Name), engine: a.engines[env.Name],
			state: serveGates{a.store, a.freezes}}}
}

// processBranch brings one environment branch of one repository up to tip.
func (a *App) processBranch(ctx context.Context, r *repoState, env *config.Environment, tips map[string]string, seenAt time.Time) error {
	st, err := a.store.Branch(ctx, r.cfg.Name, env.Name)
	if err != nil {
		return err
	}
	tip, exists := tips[env.Branch]
	run := &branchRun{a: a, repo: r, env: env, d: a.decider(r, env), seenAt: seenAt}

	switch {
	case !exists:
		if st.Known && st.Paused != store.PauseDeleted {
			return a.store.Apply(ctx, store.Batch{
				Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch, Commit: st.LastProcessed,
				Pause: store.PauseDeleted, Anchor: st.LastProcessed,
				Events: []store.Event{a.event(r, env, store.EventBranchDeleted, st.LastProcessed,
					fmt.Sprintf("branch %s was deleted; %s is paused until `gitmon resume --env %s` or the branch returns; nothing is removed", env.Branch, env.Name, env.Name))},
			})
		}
		if !st.Known && !r.absent[env.Branch] {
			// Remember, durably, that the branch did not exist: when it
			// appears, its descriptors are requested, not baselined.
			seen, err := a.sawAbsent(ctx, r, env)
			if err != nil {
				return err
			}
			if !seen {
				if err := a.store.AddEvent(ctx, a.event(r, env, store.EventBranchAbsent, "",
					fmt.Sprintf("branch %s does not exist yet; when it appears, every descriptor at its tip is requested", env.Branch))); err != nil {
					return err
				}
			}
		}
		r.absent[env.Branch] = true
		return nil
	case st.Known && tip == st.LastProcessed:
		if st.Paused == store.PauseDeleted {
			return a.store.Apply(ctx, store.Batch{
				Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch, Commit: tip, Unpause: true,
				Events: []store.Event{a.event(r, env, store.EventUnpaused, tip, fmt.Sprintf("branch %s is back at %s", env.Branch, short(tip)))},
			})
		}
		return nil
	}

	if err := r.git.Fetch(ctx, env.Branch); err != nil {
		return fmt.Errorf("fetch %s: %w", env.Branch, err)
	}
	a.metrics.fetches.WithLabelValues(r.cfg.Name).Inc()

	if !st.Known {
		return run.firstSight(ctx, tip, st)
	}
	if err := run.load(ctx); err != nil {
		return err
	}

	// unpause lifts the branch's pause; restored says the branch is back
	// on top of the commit it was paused at, so its rewrite of the
	// paused-at history is no new force-push.
	var unpause, restored bool
	var events []store.Event
	switch st.Paused {
	case store.PauseForcePush:
		// An anchor gitmon can no longer find counts as "not back".
		back, err := r.git.IsAncestor(ctx, st.Anchor, tip)
		if err == nil && back {
			unpause, restored = true, true
			events = append(events, a.event(r, env, store.EventUnpaused, tip,
				fmt.Sprintf("branch %s is back on top of %s; %s resumes", env.Branch, short(st.Anchor), env.Name)))
		} else {
			run.paused = policy.RuleForcePush
		}
	case store.PauseDeleted:
		unpause = true
		events = append(events, a.event(r, env, store.EventUnpaused, tip, fmt.Sprintf("branch %s is back at %s", env.Branch, short(tip))))
	}

	commits, rw, err := r.git.Walk(ctx, st.LastProcessed, tip, walkLimit)
	if err != nil {
		return fmt.Errorf("walk %s: %w", env.Branch, err)
	}
	var pause, anchor string
	if rw != nil && !restored {
		events = append(events, store.Event{
			At: a.now(), Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch, Kind: store.EventForcePush,
			Commit: tip, Commits: rw.Dropped,
			Message: fmt.Sprintf("branch %s was rewritten: %d processed commits dropped; merge base %s; policy force_push: %s",
				env.Branch, len(rw.Dropped), orNone(short(rw.MergeBase)), env.Policy.ForcePush),
		})
		if env.Policy.ForcePush != policy.ForcePushAllow && st.Paused != store.PauseForcePush {
			pause, anchor, unpause = store.PauseForcePush, st.LastProcessed, false
			run.paused = policy.RuleForcePush
		}
	}
	var dropped []string // unstarted records of the commits the rewrite dropped
	if rw != nil {
		if err := run.rebase(ctx, rw.MergeBase); err != nil {
			return err
		}
		if dropped, err = run.droppedRecords(ctx, rw.Dropped); err != nil {
			return err
		}
	}
	if len(commits) == 0 {
		// Nothing new to judge (a rewrite to an ancestor): still record
		// the events and the new position.
		b := store.Batch{Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch,
			Commit: tip, Events: events, Pause: pause, Anchor: anchor, Unpause: unpause, Services: run.services.all(), Supersede: dropped}
		if err := a.applyBranchOnly(ctx, b); err != nil {
			return err
		}
		a.logEvents(events)
		return nil
	}
	// A commit is processed once per environment, whatever the branch did
	// in between (SPEC §5 Crashes, Force-pushes).
	shas := make([]string, len(commits))
	for i, c := range commits {
		shas[i] = c.SHA
	}
	done, err := a.store.Processed(ctx, r.cfg.Name, env.Name, shas)
	if err != nil {
		return err
	}
	for i, c := range commits {
		b := store.Batch{Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch, Commit: c.SHA}
		if i == 0 {
			b.Events, b.Pause, b.Anchor, b.Unpause, b.Supersede = events, pause, anchor, unpause, dropped
			if rw != nil {
				b.Services = run.services.all()
			}
		}
		changes, err := r.git.Changed(ctx, c, r.cfg.Descriptors)
		if err != nil {
			return fmt.Errorf("diff %s: %w", short(c.SHA), err)
		}
		if err := a.decide(ctx, run, c, changes, &b, done[c.SHA]); err != nil {
			return err
		}
		if i == 0 {
			a.logEvents(events)
		}
	}
	return nil
}

// firstSight handles a branch gitmon has never processed: a baseline, or
// (initial: deploy, or a branch that appeared while gitmon watched the
// repository) a request for every descriptor at the tip.
func (run *branchRun) firstSight(ctx context.Context, tip string, st store.Branch) error {
	a, r, env := run.a, run.repo, run.env
	c, err := r.git.Commit(ctx, tip)
	if err != nil {
		return err
	}
	files, err := r.git.Files(ctx, tip, r.cfg.Descriptors)
	if err != nil {
		return err
	}
	run.services = newServices(r.cfg.Name, env.Name, nil)
	appeared := r.absent[env.Branch]
	if !appeared {
		var err error
		if appeared, err = a.sawAbsent(ctx, r, env); err != nil {
			return err
		}
	}
	if env.Initial == config.InitialBaseline && !appeared {
		b := store.Batch{Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch, Commit: tip, Baseline: true}
		var names, broken []string
		for _, f := range files {
			name := descriptors.Stem(f.Path)
			d, err := run.d.read(ctx, f.Path, f.Blob)
			svc := run.services.get(name)
			svc.Present = true
			if err != nil {
				broken = append(broken, f.Path)
				continue
			}
			svc.Current = d
			svc.Attribution = policy.Attribution{}
			svc.Attribution.Record(commitOf(c), descriptors.Diff(nil, d))
			names = append(names, name)
		}
		msg := fmt.Sprintf("baseline of %s at %s: %d services are last good (%s); nothing runs", env.Branch, short(tip), len(names), strings.Join(names, ", "))
		if len(broken) > 0 {
			msg += fmt.Sprintf("; %d descriptors do not parse: %s", len(broken), strings.Join(broken, ", "))
		}
		b.Services = run.services.all()
		b.Events = []store.Event{a.event(r, env, store.EventBaseline, tip, msg)}
		if err := a.store.Apply(ctx, b); err != nil {
			return err
		}
		a.logEvents(b.Events)
		return nil
	}
	// Every descriptor at the tip is requested, attributed to the tip.
	changes := make([]monitor.FileChange, len(files))
	for i, f := range files {
		changes[i] = monitor.FileChange{Path: f.Path, NewBlob: f.Blob}
	}
	b := store.Batch{Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch, Commit: tip}
	why := "initial: deploy"
	if appeared {
		why = "the branch appeared while gitmon was watching"
	}
	b.Events = []store.Event{a.event(r, env, store.EventBaseline, tip,
		fmt.Sprintf("first sight of %s at %s (%s): every descriptor is requested", env.Branch, short(tip), why))}
	run.d.trigger = store.TriggerInitial // SPEC §7: a branch's first tip requested
	defer func() { run.d.trigger = "" }()
	if err := a.decide(ctx, run, c, changes, &b, false); err != nil {
		return err
	}
	a.logEvents(b.Events)
	return nil
}

// decide makes a commit's records (none when replay: it was processed
// before) and writes them with the branch's new position, holding
// decideMu so that a re-review never decides the same service at once.
func (a *App) decide(ctx context.Context, run *branchRun, c monitor.Commit, changes []monitor.FileChange, b *store.Batch, replay bool) error {
	a.decideMu.Lock()
	defer a.decideMu.Unlock()
	dec, err := run.d.commit(ctx, run.services, c, changes, run.paused, replay)
	if err != nil {
		return err
	}
	b.Records = append(b.Records, dec.records...)
	b.Supersede = append(b.Supersede, dec.supersede...)
	// The store supersedes, as it writes them, what another process
	// queued since unstarted read (a retry).
	b.Superseding = append(b.Superseding, dec.superseding...)
	b.Services = mergeServices(b.Services, run.services.touched(changes))
	if err := a.store.Apply(ctx, *b); err != nil {
		return err
	}
	for _, rec := range dec.records {
		a.seen(rec, run.seenAt)
	}
	a.afterApply(ctx, *b)
	return nil
}

// droppedRecords returns the records of the branch that have not started
// and belong to commits a rewrite dropped: the branch no longer asks for
// them, so they never start (they are superseded by the rewrite).
func (run *branchRun) droppedRecords(ctx context.Context, dropped []string) ([]string, error) {
	if len(dropped) == 0 {
		return nil, nil
	}
	gone := make(map[string]bool, len(dropped))
	for _, sha := range dropped {
		gone[sha] = true
	}
	recs, err := run.a.store.Records(ctx, store.Filter{Repository: run.repo.cfg.Name, Environment: run.env.Name,
		Status: []string{store.StatusPending}})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, rec := range recs {
		if gone[rec.Commit] {
			ids = append(ids, rec.ID)
		}
	}
	return ids, nil
}

// applyBranchOnly writes a batch that decides no commit (a rewrite to an
// ancestor) and forgets the records it supersedes, holding decideMu like
// decide.
func (a *App) applyBranchOnly(ctx context.Context, b store.Batch) error {
	a.decideMu.Lock()
	defer a.decideMu.Unlock()
	if err := a.store.Apply(ctx, b); err != nil {
		return err
	}
	a.forget(b.Supersede...)
	return nil
}

// sawAbsent reports whether gitmon ever recorded the branch as absent.
func (a *App) sawAbsent(ctx context.Context, r *repoState, env *config.Environment) (bool, error) {
	return sawAbsent(ctx, a.store, r.cfg.Name, env)
}

// eventReader is what sawAbsent reads of the state.
type eventReader interface {
	Events(ctx context.Context, f store.Filter) ([]store.Event, error)
}

// sawAbsent reports whether the state recorded env's branch of repo as
// absent: when it appears, its descriptors are requested.
func sawAbsent(ctx context.Context, st eventReader, repo string, env *config.Environment) (bool, error) {
	evs, err := st.Events(ctx, store.Filter{Repository: repo, Environment: env.Name})
	if err != nil {
		return false, err
	}
	for _, e := range evs {
		if e.Kind == store.EventBranchAbsent && e.Branch == env.Branch {
			return true, nil
		}
	}
	return false, nil
}

// load reads the services' state at the last processed commit.
func (run *branchRun) load(ctx context.Context) error {
	svcs, err := run.a.store.Services(ctx, run.repo.cfg.Name, run.env.Name)
	if err != nil {
		return err
	}
	run.services = newServices(run.repo.cfg.Name, run.env.Name, svcs)
	return nil
}

// rebase moves the services' state to a merge base after a rewrite: the
// descriptors at the merge base, and attribution that forgets the dropped
// commits (their fields are attributed to the merge base).
func (run *branchRun) rebase(ctx context.Context, base string) error {
	r := run.repo
	var files []monitor.File
	var baseCommit monitor.Commit
	if base != "" {
		var err error
		if files, err = r.git.Files(ctx, base, r.cfg.Descriptors); err != nil {
			return err
		}
		if baseCommit, err = r.git.Commit(ctx, base); err != nil {
			return err
		}
	}
	at := map[string]monitor.File{}
	for _, f := range files {
		at[descriptors.Stem(f.Path)] = f
	}
	keep := map[string]bool{} // commit → still an ancestor of the base
	kept := func(cs []policy.Commit) []policy.Commit {
		var out []policy.Commit
		for _, c := range cs {
			k, seen := keep[c.SHA]
			if !seen {
				k, _ = r.git.IsAncestor(ctx, c.SHA, base)
				keep[c.SHA] = k
			}
			if k {
				out = append(out, c)
			}
		}
		return out
	}
	for name, svc := range run.services.m {
		f, ok := at[name]
		if !ok {
			svc.Present, svc.Current, svc.Attribution, svc.Broken = false, nil, policy.Attribution{}, nil
			continue
		}
		d, err := run.d.read(ctx, f.Path, f.Blob)
		svc.Present = true
		if err != nil {
			svc.Broken = append(kept(svc.Broken), commitOf(baseCommit))
			continue
		}
		old := svc.Attribution
		svc.Current, svc.Attribution, svc.Broken = d, policy.Attribution{}, nil
		for _, field := range descriptors.Diff(nil, d).Fields() {
			if cs := kept(old[field]); len(cs) > 0 {
				svc.Attribution[field] = cs
				continue
			}
			svc.Attribution[field] = []policy.Commit{commitOf(baseCommit)}
		}
	}
	for name, f := range at {
		if _, ok := run.services.m[name]; ok {
			continue
		}
		svc := run.services.get(name)
		svc.Present = true
		if d, err := run.d.read(ctx, f.Path, f.Blob); err == nil {
			svc.Current = d
			svc.Attribution.Record(commitOf(baseCommit), descriptors.Diff(nil, d))
		}
	}
	return nil
}

// readDescriptor fetches and parses one descriptor blob.
func readDescriptor(ctx context.Context, g gitRepo, file, blob string) (*descriptors.Descriptor, error) {
	data, err := g.ReadBlob(ctx, blob, descriptors.MaxSize)
	if err != nil {
		if errors.Is(err, monitor.ErrTooLarge) {
			return nil, fmt.Errorf("%s: file is larger than the %d KiB limit", file, descriptors.MaxSize>>10)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return descriptors.Parse(file, data)
}

func mergeServices(a, b []store.Service) []store.Service {
	for _, s := range b {
		replaced := false
		for i := range a {
			if a[i].Service == s.Service {
				a[i], replaced = s, true
			}
		}
		if !replaced {
			a = append(a, s)
		}
	}
	return a
}

func (a *App) event(r *repoState, env *config.Environment, kind, commit, msg string) store.Event {
	return store.Event{At: a.now(), Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch, Kind: kind, Commit: commit, Message: msg, Commits: []string{}}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
