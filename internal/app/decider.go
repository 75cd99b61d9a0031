package app

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/monitor"
	"github.com/gitmon-dev/gitmon/policy"
)

// deciderState is what the decider reads of gitmon's state: each
// service's last good and last attempted, the other repositories' claims,
// and the records that have not started. The store implements it; plan
// without a state folder uses the branch tip instead (tipState).
type deciderState interface {
	Service(ctx context.Context, repo, env, service string) (store.Service, error)
	Claims(ctx context.Context, env, service string) ([]string, error)
	Records(ctx context.Context, f store.Filter) ([]*store.Record, error)
}

// decider turns the commits of one (repository, environment) branch into
// records (SPEC §5 "How a record is decided"). serve, plan and the JIRA
// re-review decide through it alone, so plan says what serve does.
type decider struct {
	repo, env string
	glob      string // the repository's descriptors glob
	engine    *policy.Engine
	state     deciderState
	// gate is steps 5 and 6 (gate.go); nil passes every record, for
	// tests of the steps before.
	gate *gate
	// trigger is what asks for the records made (default: commit).
	trigger string
	// read fetches and parses a descriptor blob.
	read func(ctx context.Context, file, blob string) (*descriptors.Descriptor, error)
	now  func() time.Time
}

// decision is what one commit makes: its records, the records they
// supersede, and the services whose record supersedes every record of
// theirs that has not started (store.Batch.Superseding).
type decision struct {
	records     []*store.Record
	supersede   []string
	superseding []string
}

// commit advances svcs through commit c's descriptor changes, and (unless
// replay: a commit processed before, whose records exist) decides a record
// for every service it changes semantically. paused is "" or the rule that
// refuses every record of the branch (policy.RuleForcePush).
func (d *decider) commit(ctx context.Context, svcs *services, c monitor.Commit, changes []monitor.FileChange, paused string, replay bool) (decision, error) {
	var out decision
	pc := commitOf(c)
	for _, fc := range changes {
		if ok, _ := path.Match(d.glob, fc.Path); !ok {
			continue
		}
		name := descriptors.Stem(fc.Path)
		svc := svcs.get(name)
		var requested *descriptors.Descriptor
		if fc.NewBlob != "" {
			r, err := d.read(ctx, fc.Path, fc.NewBlob)
			if err != nil {
				// Only this service's record fails; the rest go on. What
				// the broken commit changed is attributed to it once the
				// descriptor parses again.
				svc.Present = true
				svc.Broken = append(svc.Broken, pc)
				if !replay {
					rec := d.newRecord(c, name)
					rec.Status = store.StatusRejected
					rec.Reasons = []policy.Reason{{Rule: policy.RuleDescriptor, Commit: c.SHA, Message: err.Error()}}
					d.finish(rec)
					out.records = append(out.records, rec)
				}
				continue
			}
			requested = r
		}
		diff := descriptors.Diff(svc.Current, requested)
		broken := svc.Broken
		svc.Broken = nil
		if len(diff) == 0 && svc.Present == (requested != nil) {
			continue // no semantic change: no record
		}
		if len(broken) > 0 {
			svc.Attribution.RecordAll(append(broken, pc), diff)
		} else {
			svc.Attribution.Record(pc, diff)
		}
		svc.Current, svc.Present = requested, requested != nil
		if replay {
			continue
		}
		rec, sup, supersedes, err := d.decide(ctx, svc, c, requested, paused)
		if err != nil {
			return decision{}, err
		}
		out.records = append(out.records, rec)
		out.supersede = append(out.supersede, sup...)
		if supersedes {
			out.superseding = append(out.superseding, svc.Service)
		}
	}
	return out, nil
}

// decide makes the record of one service at commit c; supersedes says
// whether it supersedes the service's records that have not started, sup
// those it read.
func (d *decider) decide(ctx context.Context, svc *store.Service, c monitor.Commit, requested *descriptors.Descriptor, paused string) (rec *store.Record, sup []string, supersedes bool, err error) {
	rec = d.newRecord(c, svc.Service)
	sv, err := d.state.Service(ctx, d.repo, d.env, svc.Service)
	if err != nil {
		return nil, nil, false, err
	}
	action := policy.ActionDeploy
	if requested == nil {
		action = policy.ActionRemove
	}
	ch := &policy.Change{
		Repository: d.repo, Environment: d.env, Service: svc.Service, Action: action, Commit: commitOf(c),
		LastGood: sv.LastGood, LastAttempted: sv.LastAttempted, Requested: requested,
		Attribution: svc.Attribution.Clone(),
	}
	v := d.engine.Evaluate(ctx, ch, d.now())
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
	passed, err := d.judge(ctx, rec, ch, v, paused)
	if err != nil {
		return nil, nil, false, err
	}
	// A record that passed steps 1-4 supersedes the service's records
	// that have not started, those waiting at steps 5 and 6 too; so does
	// one already in place (a revert while a bad release waits), or the
	// older one would start after it.
	supersedes = passed || hasRule(rec, policy.RuleUnchanged)
	if supersedes {
		if sup, err = d.unstarted(ctx, svc.Service, 0); err != nil {
			return nil, nil, false, err
		}
	}
	d.finish(rec)
	return rec, sup, supersedes, nil
}

// judge applies a verdict of steps 1-4 to rec, then what gitmon itself
// refuses, then the gate (steps 5 and 6). passed reports whether rec
// passed steps 1-4 and the refusals, whatever the gate said.
func (d *decider) judge(ctx context.Context, rec *store.Record, ch *policy.Change, v policy.Verdict, paused string) (passed bool, err error) {
	applyVerdict(rec, v)
	rec.Evidence, rec.WakeAt = evidenceOf(v), time.Time{}
	if rec.Status == store.StatusRejected {
		return false, nil
	}
	if reason := d.refuse(ctx, rec.Service, rec.Commit, paused); reason != nil {
		rec.Status, rec.Phase = store.StatusRejected, ""
		rec.Reasons = []policy.Reason{*reason}
		return false, nil
	}
	if v.Decision != policy.Allow {
		return false, nil
	}
	if d.gate == nil {
		return true, nil
	}
	g, err := d.gate.check(ctx, ch, rec, d.now())
	if err != nil {
		return true, err
	}
	rec.Evidence.Upstream, rec.Evidence.BreakGlass = g.upstream, g.breakGlass
	if g.note != nil {
		rec.Reasons = append(rec.Reasons, *g.note)
	}
	switch g.status {
	case store.StatusPending:
		rec.Phase, rec.WakeAt = g.phase, g.wake
		rec.Reasons = append(rec.Reasons, *g.reason)
	case store.StatusRejected:
		rec.Status, rec.Phase = store.StatusRejected, ""
		rec.Reasons = append(rec.Reasons, *g.reason)
	}
	return true, nil
}

// evidenceOf is what a record keeps of the verdict it was decided with:
// the diff, and each ticket as policy saw it (SPEC §7).
func evidenceOf(v policy.Verdict) store.Evidence {
	e := store.Evidence{Diff: make([]store.EvidenceChange, 0, len(v.Diff)), Tickets: make([]store.EvidenceTicket, 0, len(v.Checked))}
	for _, c := range v.Diff {
		e.Diff = append(e.Diff, store.EvidenceChange{Field: c.Field, From: c.Old, To: c.New})
	}
	for _, t := range v.Checked {
		e.Tickets = append(e.Tickets, store.EvidenceTicket{Key: t.Key, Status: t.Status,
			Approvers: slices.Clone(t.Approvers), Labels: slices.Clone(t.Labels), CheckedAt: t.At})
	}
	return e
}

// review decides a pending record again (the JIRA re-review, a gate that
// may open, an upstream that moved): the same rules, against the service's
// state now, and the same refusals (paused as in commit) and gates. It
// returns the records the new verdict supersedes.
func (d *decider) review(ctx context.Context, rec *store.Record, paused string) ([]string, error) {
	sv, err := d.state.Service(ctx, rec.Repository, rec.Environment, rec.Service)
	if err != nil {
		return nil, err
	}
	ch := &policy.Change{
		Repository: rec.Repository, Environment: rec.Environment, Service: rec.Service, Action: policy.Action(rec.Action),
		Commit:   policy.Commit{SHA: rec.Commit, Message: rec.Message, Author: policy.Identity{Email: rec.Author}, Committer: policy.Identity{Email: rec.Committer}},
		LastGood: sv.LastGood, LastAttempted: sv.LastAttempted, Attribution: recordAttribution(rec, sv), PendingSince: rec.PendingSince,
	}
	if rec.Action != string(policy.ActionRemove) {
		ch.Requested = rec.Descriptor
	}
	ch.Retry = rec.Trigger == store.TriggerRetry
	passed, err := d.judge(ctx, rec, ch, d.engine.Evaluate(ctx, ch, d.now()), paused)
	if err != nil {
		return nil, err
	}
	if rec.Status != store.StatusPending {
		t := d.now()
		rec.FinishedAt = &t
		return nil, nil
	}
	if !passed {
		return nil, nil
	}
	return d.unstarted(ctx, rec.Service, rec.Seq)
}

// recordAttribution is the attribution a pending record was decided with:
// its own contributions (SPEC §5 No ride-along: the commits that last
// changed each field as of the record's commit), not the branch's since,
// which may name later commits. A field its contributions do not name
// (the last good moved since) keeps the branch's attribution. Messages
// come from the record and the branch's commits; a commit found in
// neither is judged with none, which fails a ticket rule closed.
func recordAttribution(rec *store.Record, sv store.Service) policy.Attribution {
	msgs := map[string]string{rec.Commit: rec.Message}
	for _, cs := range sv.Attribution {
		for _, c := range cs {
			if _, ok := msgs[c.SHA]; !ok {
				msgs[c.SHA] = c.Message
			}
		}
	}
	for _, c := range sv.Broken {
		if _, ok := msgs[c.SHA]; !ok {
			msgs[c.SHA] = c.Message
		}
	}
	out := sv.Attribution.Clone()
	own := policy.Attribution{}
	for _, con := range rec.Commits {
		pc := policy.Commit{SHA: con.Commit, Message: msgs[con.Commit],
			Author: policy.Identity{Email: con.Author}, Committer: policy.Identity{Email: con.Committer}}
		for _, f := range con.Fields {
			own[f] = append(own[f], pc)
		}
	}
	for f, cs := range own {
		out[f] = cs
	}
	return out
}

// refuse returns the reason gitmon refuses a record whatever policy says:
// a paused environment, or a service claimed by two repositories.
func (d *decider) refuse(ctx context.Context, service, sha, paused string) *policy.Reason {
	switch paused {
	case policy.RuleForcePush:
		return &policy.Reason{Rule: policy.RuleForcePush, Commit: sha,
			Message: fmt.Sprintf("%s is paused after a force-push; run `gitmon resume --env %s`", d.env, d.env)}
	case policy.RulePaused:
		return &policy.Reason{Rule: policy.RulePaused, Commit: sha, Message: fmt.Sprintf("%s is paused", d.env)}
	}
	claims, err := d.state.Claims(ctx, d.env, service)
	if err != nil {
		return &policy.Reason{Rule: policy.RuleCollision, Commit: sha, Message: "cannot check other repositories' claims: " + err.Error()}
	}
	for _, other := range claims {
		if other != d.repo {
			return &policy.Reason{Rule: policy.RuleCollision, Commit: sha,
				Message: fmt.Sprintf("service %s in %s is also claimed by repository %s", service, d.env, other)}
		}
	}
	return nil
}

// unstarted returns the ids of a service's records that have not started
// (pending), older than Seq before (0: all of them).
func (d *decider) unstarted(ctx context.Context, service string, before int64) ([]string, error) {
	recs, err := d.state.Records(ctx, store.Filter{Repository: d.repo, Environment: d.env, Service: service, Status: []string{store.StatusPending}})
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

func (d *decider) newRecord(c monitor.Commit, service string) *store.Record {
	return &store.Record{
		Repository: d.repo, Environment: d.env, Service: service, Action: string(policy.ActionDeploy),
		Commit: c.SHA, Author: c.Author.Email, Committer: c.Committer.Email, Message: store.CapMessage(c.Message),
		Tickets: []string{}, Reasons: []policy.Reason{}, Commits: []policy.Contribution{}, Stages: []store.Stage{},
		Trigger: cmp.Or(d.trigger, store.TriggerCommit), CreatedAt: d.now(),
	}
}

// finish sets finished_at on a record that ends at its decision.
func (d *decider) finish(rec *store.Record) {
	if store.Finished(rec.Status) {
		t := d.now()
		rec.FinishedAt = &t
	}
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

func hasRule(rec *store.Record, rule string) bool {
	for _, r := range rec.Reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}

// commitOf is what policy sees of a commit: its message capped as it is
// stored (SPEC §5 Bounded work).
func commitOf(c monitor.Commit) policy.Commit {
	return policy.Commit{SHA: c.SHA, Message: store.CapMessage(c.Message),
		Author:    policy.Identity{Name: c.Author.Name, Email: c.Author.Email},
		Committer: policy.Identity{Name: c.Committer.Name, Email: c.Committer.Email}}
}

// services is the state of a branch's services at the commit being
// processed.
type services struct {
	repo, env string
	m         map[string]*store.Service
}

func newServices(repo, env string, list []store.Service) *services {
	s := &services{repo: repo, env: env, m: make(map[string]*store.Service, len(list))}
	for i := range list {
		sv := list[i]
		if sv.Attribution == nil {
			sv.Attribution = policy.Attribution{}
		}
		s.m[sv.Service] = &sv
	}
	return s
}

func (s *services) get(name string) *store.Service {
	sv, ok := s.m[name]
	if !ok {
		sv = &store.Service{Repository: s.repo, Environment: s.env, Service: name, Attribution: policy.Attribution{}}
		s.m[name] = sv
	}
	return sv
}

func (s *services) all() []store.Service {
	out := make([]store.Service, 0, len(s.m))
	for _, sv := range s.m {
		out = append(out, *sv)
	}
	return out
}

// touched returns the services a commit's changes name.
func (s *services) touched(changes []monitor.FileChange) []store.Service {
	var out []store.Service
	seen := map[string]bool{}
	for _, fc := range changes {
		name := descriptors.Stem(fc.Path)
		if sv, ok := s.m[name]; ok && !seen[name] {
			seen[name] = true
			out = append(out, *sv)
		}
	}
	return out
}
