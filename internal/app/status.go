package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// ErrUnknownEnvironment is wrapped by Status for an environment the config
// does not name.
var ErrUnknownEnvironment = errors.New("no such environment")

// maxWaiting bounds the reasons a service's waiting lists: a JIRA outage
// can hold every commit pending, and status must stay one screen and one
// small reply. Pending still counts every pending record.
const maxWaiting = 50

// StatusOptions say what Status reports.
type StatusOptions struct {
	Env string // "" every environment
	// Now is the time the report is of: freezes whose until passed are
	// over, and ages count from it (zero: time.Now).
	Now time.Time
}

// StatusReport is what runs where, what waits and why (SPEC §6 `gitmon
// status`). Its JSON is SPEC §7 `status --json`; the keys after the
// SPEC's are additions.
type StatusReport struct {
	Environments []EnvironmentStatus `json:"environments"`
	DeadLetters  int                 `json:"dead_letters"`
	// Halted is the active halt of every environment, nil if none.
	Halted *FreezeStatus `json:"halted"`
	// At is the time the report is of.
	At time.Time `json:"at"`
}

// EnvironmentStatus is one environment, in config order.
type EnvironmentStatus struct {
	Name string `json:"name"`
	// Paused is true when any repository's branch of the environment is
	// paused (a force-push or a deleted branch): Pauses says which.
	Paused bool `json:"paused"`
	// Frozen is the environment's active freeze, else the active halt
	// (All), else nil.
	Frozen   *FreezeStatus   `json:"frozen"`
	Services []ServiceStatus `json:"services"`
	Pauses   []PauseStatus   `json:"pauses"`
	// Running are the records whose release runs, oldest first.
	Running []RunningStatus `json:"running"`
}

// FreezeStatus is an operator's freeze, or the halt.
type FreezeStatus struct {
	Reason string     `json:"reason"`
	Actor  string     `json:"actor"`
	Since  time.Time  `json:"since"`
	Until  *time.Time `json:"until"` // nil: until unfreeze
	// All says it is the halt of every environment (freeze --all).
	All bool `json:"all"`
}

// PauseStatus is one paused branch of an environment.
type PauseStatus struct {
	Repository string     `json:"repository"`
	Branch     string     `json:"branch"`
	Reason     string     `json:"reason"` // force_push | deleted
	Since      *time.Time `json:"since"`
}

// ServiceStatus is one service of one repository in an environment.
type ServiceStatus struct {
	Repository string `json:"repository"`
	Service    string `json:"service"`
	// Version, Commit, Committer and DeployedAt are the last good: the
	// committer and end of the record that made it, "" and nil for a
	// baseline.
	Version    string     `json:"version"`
	Commit     string     `json:"commit"`
	Committer  string     `json:"committer"`
	DeployedAt *time.Time `json:"deployed_at"`
	// LastRecord is the service's newest record, nil if it has none.
	LastRecord *LastRecord `json:"last_record"`
	// Waiting are the reasons of the service's pending records, oldest
	// first (at most maxWaiting).
	Waiting []policy.Reason `json:"waiting"`
	// Pending counts the service's pending records: those waiting with a
	// reason, and those allowed and queued for a runner.
	Pending int `json:"pending"`
}

// LastRecord is the gist of a service's newest record.
type LastRecord struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Action  string `json:"action"` // deploy | remove
}

// RunningStatus is one record whose release runs.
type RunningStatus struct {
	Repository string     `json:"repository"`
	Service    string     `json:"service"`
	ID         string     `json:"id"`
	Version    string     `json:"version"`
	Commit     string     `json:"commit"`
	StartedAt  *time.Time `json:"started_at"`
}

// statusStore is what Status reads of the store.
type statusStore interface {
	Standings(ctx context.Context, env string) (store.Standings, error)
	Branches(ctx context.Context) ([]store.Branch, error)
	Freezes(ctx context.Context) ([]store.Freeze, error)
	DeadLetters(ctx context.Context) (int, error)
}

// Status reports, for each environment of cfg (only opt.Env's when set),
// where every service of the configured repositories stands, what waits
// and why, and the pauses, freezes and halt; and the outbox's dead
// letters. Its reads do not grow with the history: a few queries in all,
// not one per service.
func Status(ctx context.Context, cfg *config.Config, st statusStore, opt StatusOptions) (*StatusReport, error) {
	envs := cfg.Environments
	if opt.Env != "" {
		env := cfg.Environment(opt.Env)
		if env == nil {
			names := make([]string, len(cfg.Environments))
			for i, e := range cfg.Environments {
				names[i] = e.Name
			}
			return nil, fmt.Errorf("%w: %q (the config has %s)", ErrUnknownEnvironment, opt.Env, strings.Join(names, ", "))
		}
		envs = []config.Environment{*env}
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	standings, err := st.Standings(ctx, opt.Env)
	if err != nil {
		return nil, err
	}
	branches, err := st.Branches(ctx)
	if err != nil {
		return nil, err
	}
	freezes, err := st.Freezes(ctx)
	if err != nil {
		return nil, err
	}
	dead, err := st.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}

	repoOrder := make(map[string]int, len(cfg.Repositories))
	for i, r := range cfg.Repositories {
		repoOrder[r.Name] = i
	}
	frozen := map[string]*FreezeStatus{}
	for _, f := range freezes {
		if f.Active(now) {
			frozen[f.Environment] = &FreezeStatus{Reason: f.Reason, Actor: f.Actor, Since: f.Since, Until: f.Until,
				All: f.Environment == ""}
		}
	}
	rep := &StatusReport{Environments: make([]EnvironmentStatus, 0, len(envs)), DeadLetters: dead, Halted: frozen[""], At: now}
	for _, env := range envs {
		es := EnvironmentStatus{Name: env.Name, Frozen: frozen[env.Name], Services: []ServiceStatus{},
			Pauses: []PauseStatus{}, Running: []RunningStatus{}}
		if es.Frozen == nil {
			es.Frozen = rep.Halted
		}
		for _, b := range branches {
			if _, ok := repoOrder[b.Repository]; ok && b.Environment == env.Name && b.Paused != "" {
				p := PauseStatus{Repository: b.Repository, Branch: b.Branch, Reason: b.Paused}
				if !b.PausedAt.IsZero() {
					at := b.PausedAt
					p.Since = &at
				}
				es.Pauses = append(es.Pauses, p)
			}
		}
		es.Paused = len(es.Pauses) > 0
		slices.SortFunc(es.Pauses, func(a, b PauseStatus) int { return cmp.Compare(repoOrder[a.Repository], repoOrder[b.Repository]) })
		es.Services, es.Running = serviceRows(env.Name, standings, repoOrder)
		rep.Environments = append(rep.Environments, es)
	}
	return rep, nil
}

// serviceRows builds an environment's service rows from the standings and
// the records in flight, by repository (in config order) and service.
func serviceRows(env string, st store.Standings, repoOrder map[string]int) ([]ServiceStatus, []RunningStatus) {
	type key struct{ repo, service string }
	rows := map[key]*ServiceStatus{}
	lastSeq := map[key]int64{} // of each row's LastRecord
	row := func(repo, service string) *ServiceStatus {
		k := key{repo, service}
		if rows[k] == nil {
			rows[k] = &ServiceStatus{Repository: repo, Service: service, Waiting: []policy.Reason{}}
		}
		return rows[k]
	}
	last := func(sv *ServiceStatus, r *store.RecordSummary) {
		k := key{sv.Repository, sv.Service}
		if sv.LastRecord == nil || r.Seq >= lastSeq[k] {
			sv.LastRecord = &LastRecord{ID: r.ID, Status: r.Status, Version: r.Version, Commit: r.Commit, Action: r.Action}
			lastSeq[k] = r.Seq
		}
	}
	for _, sd := range st.Services {
		if _, ok := repoOrder[sd.Repository]; !ok || sd.Environment != env {
			continue
		}
		// A service removed for good (no descriptor, no last good) is no
		// longer anywhere; one with a record in flight is added below.
		if !sd.Present && !sd.Good {
			continue
		}
		sv := row(sd.Repository, sd.Service)
		sv.Version, sv.Commit = sd.Version, sd.Commit
		if g := sd.Succeeded; g != nil && g.FinishedAt != nil {
			sv.Committer = g.Committer
			at := *g.FinishedAt
			sv.DeployedAt = &at
		}
		if sd.Last != nil {
			last(sv, sd.Last)
		}
	}
	running := []RunningStatus{}
	for _, r := range st.InFlight {
		if _, ok := repoOrder[r.Repository]; !ok || r.Environment != env {
			continue
		}
		sv := row(r.Repository, r.Service)
		last(sv, &r)
		switch r.Status {
		case store.StatusRunning:
			running = append(running, RunningStatus{Repository: r.Repository, Service: r.Service, ID: r.ID,
				Version: r.Version, Commit: r.Commit, StartedAt: r.StartedAt})
		case store.StatusPending:
			sv.Pending++
			if room := maxWaiting - len(sv.Waiting); room > 0 {
				sv.Waiting = append(sv.Waiting, r.Reasons[:min(room, len(r.Reasons))]...)
			}
		}
	}
	out := make([]ServiceStatus, 0, len(rows))
	for _, sv := range rows {
		out = append(out, *sv)
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int {
		return cmp.Or(cmp.Compare(repoOrder[a.Repository], repoOrder[b.Repository]), cmp.Compare(a.Service, b.Service))
	})
	return out, running
}
