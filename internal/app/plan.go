package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing/cache"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/monitor"
	"github.com/gitmon-dev/gitmon/policy"
)

// PlanEntry is what would happen to one service (the JSON of `gitmon plan`).
type PlanEntry struct {
	Repository  string                `json:"repository"`
	Environment string                `json:"environment"`
	Service     string                `json:"service"`
	Action      string                `json:"action"`
	Decision    string                `json:"decision"` // deploy, skip, reject, pending
	LastGood    string                `json:"last_good"`
	Requested   string                `json:"requested"`
	Diff        descriptors.Changes   `json:"diff"`
	Commits     []policy.Contribution `json:"commits"`
	Reasons     []policy.Reason       `json:"reasons"`
	Verified    bool                  `json:"verified"`
}

// PlanOptions say what to plan.
type PlanOptions struct {
	Env  string
	Repo string // "" all
	Ref  string // "" the branch tip
	Now  time.Time
}

// Plan computes what environment env would do if its branch were at ref,
// running nothing and taking no lock. Without a state folder the branch
// tip stands in for the last good.
func Plan(ctx context.Context, cfg *config.Config, o PlanOptions) ([]PlanEntry, error) {
	env := cfg.Environment(o.Env)
	if env == nil {
		return nil, fmt.Errorf("no environment %q", o.Env)
	}
	engine, err := policy.New(env.Policy, nil)
	if err != nil {
		return nil, err
	}
	var st store.Store
	if s, err := store.Open(ctx, cfg.State, store.Options{ReadOnly: true}); err == nil {
		st = s
		defer st.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "gitmon-plan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	objects := cache.NewObjectLRU(cache.FileSize(cfg.Tuning.ObjectCache.Int64()))
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}

	var out []PlanEntry
	for i := range cfg.Repositories {
		rc := &cfg.Repositories[i]
		if o.Repo != "" && rc.Name != o.Repo {
			continue
		}
		g, err := monitor.NewRepo(remote(rc, nil), monitor.Options{Dir: fmt.Sprintf("%s/%d", tmp, i), Cache: objects, Timeout: cfg.Tuning.GitTimeout})
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", rc.Name, err)
		}
		entries, err := planRepo(ctx, g, rc, env, cfg.Environment(upstreamOf(cfg, env.Name)), engine, st, o.Ref, now)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", rc.Name, err)
		}
		out = append(out, entries...)
	}
	return out, nil
}

// planFrom is the upstream environment's name as serve's gate has it
// (upstreamOf): from's, or the one policy names when no environment has
// that name.
func planFrom(from *config.Environment, engine *policy.Engine) string {
	if from != nil {
		return from.Name
	}
	return engine.Config().Promotion.From
}

// tipState stands in for a state folder in plan: the branch tip is every
// service's last good and last attempted, nothing is claimed elsewhere and
// nothing waits.
type tipState struct{ base map[string]store.Service }

func (t tipState) Service(_ context.Context, repo, env, service string) (store.Service, error) {
	if sv, ok := t.base[service]; ok {
		return sv, nil
	}
	return store.Service{Repository: repo, Environment: env, Service: service, Attribution: policy.Attribution{}}, nil
}
func (tipState) Claims(context.Context, string, string) ([]string, error)       { return nil, nil }
func (tipState) Records(context.Context, store.Filter) ([]*store.Record, error) { return nil, nil }
func (tipState) Processed(context.Context, string, string, []string) (map[string]bool, error) {
	return map[string]bool{}, nil
}

// planGate is the gate plan decides with: over the store, or, without a
// state folder, over the upstream branch's tip, which stands in for its
// last good (the artifact there has passed; nothing else has yet).
func planGate(ctx context.Context, g gitRepo, rc *config.Repository, env, from *config.Environment, d *decider, st store.Store, engine *policy.Engine) (*gate, error) {
	gt := &gate{repo: rc.Name, env: env.Name, from: planFrom(from, engine), engine: engine}
	if st != nil {
		gt.state = st
		return gt, nil
	}
	up := tipGates{}
	p := engine.Config().Promotion
	if p.Required && from != nil {
		tips, err := g.ListBranches(ctx)
		if err != nil {
			return nil, err
		}
		if tip, ok := tips[from.Branch]; ok {
			if err := g.Fetch(ctx, from.Branch); err != nil {
				return nil, err
			}
			svcs, err := tipServices(ctx, g, rc, from, d, tip)
			if err != nil {
				return nil, err
			}
			up.services = svcs.m
		}
	}
	gt.state = up
	return gt, nil
}

// tipGates are the gates' state without a state folder: the upstream tip,
// no records, no freezes.
type tipGates struct{ services map[string]*store.Service }

func (tipGates) Artifact(context.Context, string, string, string, string) ([]*store.Record, error) {
	return nil, nil
}
func (t tipGates) Service(_ context.Context, repo, env, service string) (store.Service, error) {
	if sv, ok := t.services[service]; ok {
		return *sv, nil
	}
	return store.Service{Repository: repo, Environment: env, Service: service}, nil
}
func (tipGates) Freezes(context.Context) ([]store.Freeze, error) { return nil, nil }

// planState is what plan reads: the store's, or the tip's.
type planState interface {
	deciderState
	Processed(ctx context.Context, repo, env string, shas []string) (map[string]bool, error)
}

// planRepo decides, without writing, the records serve would make if the
// branch moved from where gitmon stands to ref: the same walk, the same
// branch rules (rewrites, pauses, commits processed before) and the same
// decider. It returns one entry per service that would get a record: its
// last record's.
func planRepo(ctx context.Context, g gitRepo, rc *config.Repository, env, from *config.Environment, engine *policy.Engine, st store.Store, ref string, now time.Time) ([]PlanEntry, error) {
	tips, err := g.ListBranches(ctx)
	if err != nil {
		return nil, err
	}
	tip, ok := tips[env.Branch]
	if !ok {
		return nil, fmt.Errorf("branch %s does not exist", env.Branch)
	}
	if err := g.Fetch(ctx, env.Branch); err != nil {
		return nil, err
	}
	target := tip
	if ref != "" {
		if target, err = g.Resolve(ctx, ref); err != nil {
			return nil, err
		}
	}

	// Where the environment stands: the store's view, or the branch tip.
	base := tip
	var state planState
	var svcs *services
	var br store.Branch
	if st != nil {
		if br, err = st.Branch(ctx, rc.Name, env.Name); err != nil {
			return nil, err
		}
	}
	run := &branchRun{repo: &repoState{cfg: rc, git: g}, env: env}
	d := &decider{repo: rc.Name, env: env.Name, glob: rc.Descriptors, engine: engine, now: func() time.Time { return now },
		read: func(ctx context.Context, file, blob string) (*descriptors.Descriptor, error) {
			return readDescriptor(ctx, g, file, blob)
		}}
	run.d = d
	if st != nil && !br.Known {
		// serve's first sight of the branch, at target.
		return planFirstSight(ctx, g, rc, env, from, d, st, target)
	}
	if br.Known {
		base = br.LastProcessed
		list, err := st.Services(ctx, rc.Name, env.Name)
		if err != nil {
			return nil, err
		}
		svcs, state = newServices(rc.Name, env.Name, list), st
	} else {
		if svcs, err = tipServices(ctx, g, rc, env, d, base); err != nil {
			return nil, err
		}
		ts := tipState{base: make(map[string]store.Service, len(svcs.m))}
		for name, sv := range svcs.m {
			ts.base[name] = *sv // as found at the tip, before the walk moves svcs
		}
		state = ts
	}
	d.state, run.services = state, svcs
	if d.gate, err = planGate(ctx, g, rc, env, from, d, st, engine); err != nil {
		return nil, err
	}

	// The branch rules of processBranch, without their writes.
	restored := false
	if br.Paused == store.PauseForcePush {
		if back, err := g.IsAncestor(ctx, br.Anchor, target); err == nil && back {
			restored = true
		} else {
			run.paused = policy.RuleForcePush
		}
	}
	commits, rw, err := g.Walk(ctx, base, target, walkLimit)
	if err != nil {
		return nil, err
	}
	if rw != nil {
		if !restored && env.Policy.ForcePush != policy.ForcePushAllow {
			run.paused = policy.RuleForcePush
		}
		if err := run.rebase(ctx, rw.MergeBase); err != nil {
			return nil, err
		}
	}
	shas := make([]string, len(commits))
	for i, c := range commits {
		shas[i] = c.SHA
	}
	done, err := state.Processed(ctx, rc.Name, env.Name, shas)
	if err != nil {
		return nil, err
	}
	last := map[string]*store.Record{}
	for _, c := range commits {
		changes, err := g.Changed(ctx, c, rc.Descriptors)
		if err != nil {
			return nil, err
		}
		dec, err := d.commit(ctx, svcs, c, changes, run.paused, done[c.SHA])
		if err != nil {
			return nil, err
		}
		for _, rec := range dec.records {
			last[rec.Service] = rec
		}
	}

	return planEntries(ctx, state, rc, env, last)
}

// planFirstSight plans what serve does when it first sees a branch at
// target with this state folder: a baseline makes no records; with
// `initial: deploy`, or for a branch gitmon saw absent, every descriptor
// at target is requested, attributed to target (firstSight).
func planFirstSight(ctx context.Context, g gitRepo, rc *config.Repository, env, from *config.Environment, d *decider, st store.Store, target string) ([]PlanEntry, error) {
	appeared, err := sawAbsent(ctx, st, rc.Name, env)
	if err != nil {
		return nil, err
	}
	if env.Initial == config.InitialBaseline && !appeared {
		return []PlanEntry{}, nil
	}
	c, err := g.Commit(ctx, target)
	if err != nil {
		return nil, err
	}
	files, err := g.Files(ctx, target, rc.Descriptors)
	if err != nil {
		return nil, err
	}
	changes := make([]monitor.FileChange, len(files))
	for i, f := range files {
		changes[i] = monitor.FileChange{Path: f.Path, NewBlob: f.Blob}
	}
	d.state, d.trigger = st, store.TriggerInitial
	d.gate = &gate{repo: rc.Name, env: env.Name, from: planFrom(from, d.engine), engine: d.engine, state: st}
	dec, err := d.commit(ctx, newServices(rc.Name, env.Name, nil), c, changes, "", false)
	if err != nil {
		return nil, err
	}
	last := map[string]*store.Record{}
	for _, rec := range dec.records {
		last[rec.Service] = rec
	}
	return planEntries(ctx, st, rc, env, last)
}

// planEntries is one entry per service that gets a record: its last one's.
func planEntries(ctx context.Context, state deciderState, rc *config.Repository, env *config.Environment, last map[string]*store.Record) ([]PlanEntry, error) {
	names := make([]string, 0, len(last))
	for n := range last {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]PlanEntry, 0, len(names))
	for _, name := range names {
		rec := last[name]
		sv, err := state.Service(ctx, rc.Name, env.Name, name)
		if err != nil {
			return nil, err
		}
		e := PlanEntry{Repository: rc.Name, Environment: env.Name, Service: name, Action: rec.Action,
			Diff: orEmptyDiff(rec.Diff), Commits: rec.Commits, Reasons: rec.Reasons, Verified: rec.Verified}
		if sv.LastGood != nil {
			e.LastGood = sv.LastGood.Version
		}
		if rec.Action != string(policy.ActionRemove) && rec.Descriptor != nil {
			e.Requested = rec.Descriptor.Version
		}
		e.Decision = planDecision(rec)
		out = append(out, e)
	}
	return out, nil
}

// planDecision is a record's status as plan names it.
func planDecision(rec *store.Record) string {
	switch {
	case rec.Status == store.StatusPending && rec.Phase == store.PhaseQueued:
		return "deploy"
	case rec.Status == store.StatusPending:
		return "pending"
	case rec.Status == store.StatusSkipped:
		return "skip"
	default:
		return "reject"
	}
}

func orEmptyDiff(d descriptors.Changes) descriptors.Changes {
	if d == nil {
		return descriptors.Changes{}
	}
	return d
}

// tipServices is the state of a branch gitmon never processed: every
// descriptor at sha is in place, attributed to sha.
func tipServices(ctx context.Context, g gitRepo, rc *config.Repository, env *config.Environment, d *decider, sha string) (*services, error) {
	c, err := g.Commit(ctx, sha)
	if err != nil {
		return nil, err
	}
	files, err := g.Files(ctx, sha, rc.Descriptors)
	if err != nil {
		return nil, err
	}
	svcs := newServices(rc.Name, env.Name, nil)
	for _, f := range files {
		sv := svcs.get(descriptors.Stem(f.Path))
		sv.Present = true
		if desc, err := d.read(ctx, f.Path, f.Blob); err == nil {
			sv.Current, sv.LastGood, sv.LastAttempted = desc, desc, desc
			sv.Attribution.Record(commitOf(c), descriptors.Diff(nil, desc))
		}
	}
	return svcs, nil
}
