package app

import (
	"context"
	"errors"
	"fmt"
	"path"
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
}

// walkLimit bounds how many commits one poll walks on one branch.
const walkLimit = 100000

// branchRun is the processing of one (repository, environment) branch in
// one poll: it holds the services' state as it advances commit by commit.
type branchRun struct {
	a      *App
	repo   *repoState
	env    *config.Environment
	engine *policy.Engine
	seenAt time.Time // when the poll saw the tip
	// state of each service at the commit being processed
	services map[string]*store.Service
	// pause applied to every record of this run ("" none)
	paused string
}

// processBranch brings one environment branch of one repository up to tip.
func (a *App) processBranch(ctx context.Context, r *repoState, env *config.Environment, tips map[string]string, seenAt time.Time) error {
	st, err := a.store.Branch(ctx, r.cfg.Name, env.Name)
	if err != nil {
		return err
	}
	tip, exists := tips[env.Branch]
	run := &branchRun{a: a, repo: r, env: env, engine: a.engines[env.Name], seenAt: seenAt}

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
	if rw != nil {
		if err := run.rebase(ctx, rw.MergeBase); err != nil {
			return err
		}
	}
	if len(commits) == 0 {
		// Nothing new to judge (a rewrite to an ancestor): still record
		// the events and the new position.
		return a.store.Apply(ctx, store.Batch{Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch,
			Commit: tip, Events: events, Pause: pause, Anchor: anchor, Unpause: unpause, Services: run.all()})
	}
	for i, c := range commits {
		b := store.Batch{Repository: r.cfg.Name, Environment: env.Name, Branch: env.Branch, Commit: c.SHA}
		if i == 0 {
			b.Events, b.Pause, b.Anchor, b.Unpause = events, pause, anchor, unpause
			if rw != nil {
				b.Services = run.all()
			}
		}
		changes, err := r.git.Changed(ctx, c, r.cfg.Descriptors)
		if err != nil {
			return fmt.Errorf("diff %s: %w", short(c.SHA), err)
		}
		if err := a.decide(ctx, run, c, changes, &b); err != nil {
			return err
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
	run.services = map[string]*store.Service{}
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
			d, err := run.read(ctx, f.Path, f.Blob)
			svc := run.service(name)
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
		b.Services = run.all()
		b.Events = []store.Event{a.event(r, env, store.EventBaseline, tip, msg)}
		return a.store.Apply(ctx, b)
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
	return a.decide(ctx, run, c, changes, &b)
}

// decide makes a commit's records and writes them with the branch's new
// position, holding decideMu so no release starts in between.
func (a *App) decide(ctx context.Context, run *branchRun, c monitor.Commit, changes []monitor.FileChange, b *store.Batch) error {
	a.decideMu.Lock()
	defer a.decideMu.Unlock()
	if err := run.commit(ctx, c, changes, b); err != nil {
		return err
	}
	if err := a.store.Apply(ctx, *b); err != nil {
		return err
	}
	a.afterApply(ctx, *b)
	return nil
}

// sawAbsent reports whether gitmon ever recorded the branch as absent.
func (a *App) sawAbsent(ctx context.Context, r *repoState, env *config.Environment) (bool, error) {
	evs, err := a.store.Events(ctx, store.Filter{Repository: r.cfg.Name, Environment: env.Name})
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
	run.services = make(map[string]*store.Service, len(svcs))
	for i := range svcs {
		s := svcs[i]
		if s.Attribution == nil {
			s.Attribution = policy.Attribution{}
		}
		run.services[s.Service] = &s
	}
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
	for name, svc := range run.services {
		f, ok := at[name]
		if !ok {
			svc.Present, svc.Current, svc.Attribution = false, nil, policy.Attribution{}
			continue
		}
		d, err := run.read(ctx, f.Path, f.Blob)
		svc.Present = true
		if err != nil {
			continue
		}
		old := svc.Attribution
		svc.Current, svc.Attribution = d, policy.Attribution{}
		for _, field := range descriptors.Diff(nil, d).Fields() {
			c, ok := old[field]
			if ok {
				k, seen := keep[c.SHA]
				if !seen {
					k, _ = r.git.IsAncestor(ctx, c.SHA, base)
					keep[c.SHA] = k
				}
				if k {
					svc.Attribution[field] = c
					continue
				}
			}
			svc.Attribution[field] = commitOf(baseCommit)
		}
	}
	for name, f := range at {
		if _, ok := run.services[name]; ok {
			continue
		}
		svc := run.service(name)
		svc.Present = true
		if d, err := run.read(ctx, f.Path, f.Blob); err == nil {
			svc.Current = d
			svc.Attribution.Record(commitOf(baseCommit), descriptors.Diff(nil, d))
		}
	}
	return nil
}

func (run *branchRun) service(name string) *store.Service {
	s, ok := run.services[name]
	if !ok {
		s = &store.Service{Repository: run.repo.cfg.Name, Environment: run.env.Name, Service: name, Attribution: policy.Attribution{}}
		run.services[name] = s
	}
	return s
}

func (run *branchRun) all() []store.Service {
	out := make([]store.Service, 0, len(run.services))
	for _, s := range run.services {
		out = append(out, *s)
	}
	return out
}

// read fetches and parses one descriptor blob.
func (run *branchRun) read(ctx context.Context, file, blob string) (*descriptors.Descriptor, error) {
	data, err := run.repo.git.ReadBlob(ctx, blob, descriptors.MaxSize)
	if err != nil {
		if errors.Is(err, monitor.ErrTooLarge) {
			return nil, fmt.Errorf("%s: file is larger than the %d KiB limit", file, descriptors.MaxSize>>10)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return descriptors.Parse(file, data)
}

// commit turns one commit's descriptor changes into records in b, and
// advances the services' state.
func (run *branchRun) commit(ctx context.Context, c monitor.Commit, changes []monitor.FileChange, b *store.Batch) error {
	a, r, env := run.a, run.repo, run.env
	pc := commitOf(c)
	for _, fc := range changes {
		if ok, _ := path.Match(r.cfg.Descriptors, fc.Path); !ok {
			continue
		}
		name := descriptors.Stem(fc.Path)
		svc := run.service(name)
		rec := run.newRecord(c, name)

		var requested *descriptors.Descriptor
		if fc.NewBlob != "" {
			d, err := run.read(ctx, fc.Path, fc.NewBlob)
			if err != nil {
				// Only this service's record fails; the rest go on.
				svc.Present = true
				rec.Status = store.StatusRejected
				rec.Reasons = []policy.Reason{{Rule: policy.RuleDescriptor, Commit: c.SHA, Message: err.Error()}}
				run.finish(rec)
				b.Records = append(b.Records, rec)
				continue
			}
			requested = d
		}
		diff := descriptors.Diff(svc.Current, requested)
		if len(diff) == 0 && svc.Present == (requested != nil) {
			continue // no semantic change: no record
		}
		svc.Attribution.Record(pc, diff)
		svc.Current, svc.Present = requested, requested != nil

		sv, err := a.store.Service(ctx, r.cfg.Name, env.Name, name)
		if err != nil {
			return err
		}
		action := policy.ActionDeploy
		if requested == nil {
			action = policy.ActionRemove
		}
		ch := &policy.Change{
			Repository: r.cfg.Name, Environment: env.Name, Service: name, Action: action, Commit: pc,
			LastGood: sv.LastGood, LastAttempted: sv.LastAttempted, Requested: requested,
			Attribution: svc.Attribution.Clone(),
		}
		v := run.engine.Evaluate(ctx, ch, a.now())
		rec.Action = string(action)
		rec.Descriptor = requested
		if requested != nil {
			rec.Version = requested.Version
		} else if sv.LastGood != nil {
			rec.Descriptor, rec.Version = sv.LastGood, sv.LastGood.Version
		}
		if sv.LastAttempted != nil {
			rec.PreviousVersion = sv.LastAttempted.Version
		}
		applyVerdict(rec, v)

		// Policy comes first; then what gitmon itself refuses.
		if rec.Status != store.StatusRejected {
			if reason := run.refuse(ctx, name, c); reason != nil {
				rec.Status, rec.Phase = store.StatusRejected, ""
				rec.Reasons = []policy.Reason{*reason}
			}
		}
		// A record that passed steps 1-4 supersedes the service's records
		// that have not started; so does one already in place (a revert
		// while a bad release waits), or the older one would start after it.
		if rec.Status == store.StatusPending && rec.Phase == store.PhaseQueued || hasRule(rec, policy.RuleUnchanged) {
			sup, err := a.unstarted(ctx, r.cfg.Name, env.Name, name, 0)
			if err != nil {
				return err
			}
			b.Supersede = append(b.Supersede, sup...)
		}
		run.finish(rec)
		b.Records = append(b.Records, rec)
	}
	b.Services = mergeServices(b.Services, run.touched(changes))
	return nil
}

// refuse returns the reason gitmon refuses a record whatever policy says:
// a paused environment, or a service claimed by two repositories.
func (run *branchRun) refuse(ctx context.Context, service string, c monitor.Commit) *policy.Reason {
	switch run.paused {
	case policy.RuleForcePush:
		return &policy.Reason{Rule: policy.RuleForcePush, Commit: c.SHA,
			Message: fmt.Sprintf("%s is paused after a force-push of %s; run `gitmon resume --env %s`", run.env.Name, run.env.Branch, run.env.Name)}
	case policy.RulePaused:
		return &policy.Reason{Rule: policy.RulePaused, Commit: c.SHA, Message: fmt.Sprintf("%s is paused", run.env.Name)}
	}
	claims, err := run.a.store.Claims(ctx, run.env.Name, service)
	if err != nil {
		return &policy.Reason{Rule: policy.RuleCollision, Commit: c.SHA, Message: "cannot check other repositories' claims: " + err.Error()}
	}
	for _, other := range claims {
		if other != run.repo.cfg.Name {
			return &policy.Reason{Rule: policy.RuleCollision, Commit: c.SHA,
				Message: fmt.Sprintf("service %s in %s is also claimed by repository %s", service, run.env.Name, other)}
		}
	}
	return nil
}

func (run *branchRun) touched(changes []monitor.FileChange) []store.Service {
	var out []store.Service
	for _, fc := range changes {
		if s, ok := run.services[descriptors.Stem(fc.Path)]; ok {
			out = append(out, *s)
		}
	}
	return out
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

func (run *branchRun) newRecord(c monitor.Commit, service string) *store.Record {
	return &store.Record{
		Repository: run.repo.cfg.Name, Environment: run.env.Name, Service: service, Action: string(policy.ActionDeploy),
		Commit: c.SHA, Author: c.Author.Email, Committer: c.Committer.Email, Message: c.Message,
		Tickets: []string{}, Reasons: []policy.Reason{}, Commits: []policy.Contribution{}, Stages: []store.Stage{},
		CreatedAt: run.a.now(),
	}
}

// finish sets finished_at on a record that ends at its decision.
func (run *branchRun) finish(rec *store.Record) {
	switch rec.Status {
	case store.StatusRejected, store.StatusSkipped:
		t := run.a.now()
		rec.FinishedAt = &t
	}
	run.a.seen(rec, run.seenAt)
}

// applyVerdict copies a policy verdict onto a record.
func applyVerdict(rec *store.Record, v policy.Verdict) {
	rec.Reasons, rec.Tickets, rec.Commits, rec.Diff = v.Reasons, v.Tickets, v.Commits, v.Diff
	rec.Emails, rec.Slack, rec.Dropped = v.Emails, v.Slack, v.Dropped
	switch v.Decision {
	case policy.Allow:
		rec.Status, rec.Phase = store.StatusPending, store.PhaseQueued
	case policy.Pending:
		rec.Status, rec.Phase = store.StatusPending, store.PhasePolicy
		if rec.PendingSince.IsZero() {
			rec.PendingSince = rec.CreatedAt
		}
	case policy.Skip:
		rec.Status, rec.Phase = store.StatusSkipped, ""
	default:
		rec.Status, rec.Phase = store.StatusRejected, ""
	}
}

// unstarted returns the ids of a service's records that have not started
// (pending), older than Seq before (0: all of them): a later record that
// passes policy, or is already in place, supersedes them (SPEC §5).
func (a *App) unstarted(ctx context.Context, repo, env, service string, before int64) ([]string, error) {
	recs, err := a.store.Records(ctx, store.Filter{Repository: repo, Environment: env, Service: service, Status: []string{store.StatusPending}})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, r := range recs {
		if before == 0 || r.Seq < before {
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}

func hasRule(rec *store.Record, rule string) bool {
	for _, r := range rec.Reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}

func commitOf(c monitor.Commit) policy.Commit {
	return policy.Commit{SHA: c.SHA, Message: c.Message,
		Author:    policy.Identity{Name: c.Author.Name, Email: c.Author.Email},
		Committer: policy.Identity{Name: c.Committer.Name, Email: c.Committer.Email}}
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
