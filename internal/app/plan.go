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
		entries, err := planRepo(ctx, g, rc, env, engine, st, o.Ref, now)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", rc.Name, err)
		}
		out = append(out, entries...)
	}
	return out, nil
}

func planRepo(ctx context.Context, g gitRepo, rc *config.Repository, env *config.Environment, engine *policy.Engine, st store.Store, ref string, now time.Time) ([]PlanEntry, error) {
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
		if sha, isBranch := tips[ref]; isBranch {
			if err := g.Fetch(ctx, ref); err != nil {
				return nil, err
			}
			target = sha
		} else if _, err := g.Commit(ctx, ref); err == nil {
			target = ref
		} else {
			return nil, fmt.Errorf("ref %q is neither a branch nor a commit reachable from %s", ref, env.Branch)
		}
	}

	// Where the environment stands: the store's view, or the branch tip.
	base := tip
	services := map[string]*store.Service{}
	if st != nil {
		if b, err := st.Branch(ctx, rc.Name, env.Name); err == nil && b.Known {
			base = b.LastProcessed
			svcs, err := st.Services(ctx, rc.Name, env.Name)
			if err != nil {
				return nil, err
			}
			for i := range svcs {
				s := svcs[i]
				if s.Attribution == nil {
					s.Attribution = policy.Attribution{}
				}
				services[s.Service] = &s
			}
		}
	}
	run := &branchRun{repo: &repoState{cfg: rc, git: g}, env: env, services: services}
	if len(services) == 0 {
		baseCommit, err := g.Commit(ctx, base)
		if err != nil {
			return nil, err
		}
		files, err := g.Files(ctx, base, rc.Descriptors)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			s := run.service(descriptors.Stem(f.Path))
			s.Present = true
			if d, err := run.read(ctx, f.Path, f.Blob); err == nil {
				s.Current, s.LastGood, s.LastAttempted = d, d, d
				s.Attribution.Record(commitOf(baseCommit), descriptors.Diff(nil, d))
			}
		}
	}

	// Walk base → target, attributing fields as the daemon would.
	commits, _, err := g.Walk(ctx, base, target, walkLimit)
	if err != nil {
		return nil, err
	}
	broken := map[string]error{}
	for _, c := range commits {
		changes, err := g.Changed(ctx, c, rc.Descriptors)
		if err != nil {
			return nil, err
		}
		for _, fc := range changes {
			s := run.service(descriptors.Stem(fc.Path))
			var d *descriptors.Descriptor
			if fc.NewBlob != "" {
				if d, err = run.read(ctx, fc.Path, fc.NewBlob); err != nil {
					broken[s.Service] = err
					continue
				}
			}
			delete(broken, s.Service)
			s.Attribution.Record(commitOf(c), descriptors.Diff(s.Current, d))
			s.Current, s.Present = d, d != nil
		}
	}
	head, err := g.Commit(ctx, target)
	if err != nil {
		return nil, err
	}

	names := make([]string, 0, len(services))
	for n := range run.services {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []PlanEntry
	for _, name := range names {
		s := run.services[name]
		e := PlanEntry{Repository: rc.Name, Environment: env.Name, Service: name, Action: string(policy.ActionDeploy),
			Diff: descriptors.Changes{}, Commits: []policy.Contribution{}, Reasons: []policy.Reason{}}
		if s.LastGood != nil {
			e.LastGood = s.LastGood.Version
		}
		if err, bad := broken[name]; bad {
			e.Decision = "reject"
			e.Reasons = []policy.Reason{{Rule: policy.RuleDescriptor, Commit: target, Message: err.Error()}}
			out = append(out, e)
			continue
		}
		if s.Current == nil && s.LastGood == nil {
			continue
		}
		action := policy.ActionDeploy
		if s.Current == nil {
			action = policy.ActionRemove
		} else {
			e.Requested = s.Current.Version
		}
		e.Action = string(action)
		v := engine.Evaluate(ctx, &policy.Change{Repository: rc.Name, Environment: env.Name, Service: name, Action: action,
			Commit: commitOf(head), LastGood: s.LastGood, LastAttempted: s.LastAttempted, Requested: s.Current, Attribution: s.Attribution}, now)
		if v.Decision == policy.Skip && len(v.Diff) == 0 {
			continue // nothing would happen to this service
		}
		e.Diff, e.Commits, e.Reasons = v.Diff, v.Commits, v.Reasons
		switch v.Decision {
		case policy.Allow:
			e.Decision = "deploy"
		default:
			e.Decision = string(v.Decision)
		}
		out = append(out, e)
	}
	return out, nil
}
