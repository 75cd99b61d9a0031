package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// The gate is steps 5 and 6 of SPEC §5, applied to a record that passed
// steps 1-4: the promotion gate (the artifact must have succeeded
// upstream, soaked, and not failed there since) and the windows, freezes
// and halts of the environment, which break-glass passes. serve, plan and
// retry go through it inside the decider, so they agree; serve also asks
// it again at the moment a queued release would start (open).

// gateState is what the gate reads of gitmon's state: the upstream
// environment's records of an artifact, its services (a baseline counts as
// succeeded there), and the freezes operators set.
type gateState interface {
	Artifact(ctx context.Context, repo, env, service, version string) ([]*store.Record, error)
	Service(ctx context.Context, repo, env, service string) (store.Service, error)
	Freezes(ctx context.Context) ([]store.Freeze, error)
}

// gateResult is the gate's answer for one record.
type gateResult struct {
	// status is pending (it waits: phase says where) or rejected; ""
	// passes.
	status, phase string
	reason        *policy.Reason
	// wake is when a waiting record is decided again (zero: on events).
	wake time.Time
	// upstream is the record that let a promotion through; breakGlass
	// says a window or freeze was passed by a ticket, named in note.
	upstream   *store.Upstream
	breakGlass bool
	note       *policy.Reason
}

// gate decides steps 5 and 6 for one environment.
type gate struct {
	repo, env string
	// from is the upstream environment (upstreamOf); "" when env has
	// none, which fails a required promotion closed.
	from   string
	engine *policy.Engine
	state  gateState
}

// upstreamOf is env's upstream environment (SPEC §0, §3
// policy.promotion.from): the one its policy names, by default the one
// listed just before it; "" for the first environment.
func upstreamOf(cfg *config.Config, env string) string {
	for i := range cfg.Environments {
		e := &cfg.Environments[i]
		if e.Name != env {
			continue
		}
		if e.Policy.Promotion.From != "" || i == 0 {
			return e.Policy.Promotion.From
		}
		return cfg.Environments[i-1].Name
	}
	return ""
}

// check applies steps 5 and 6 to ch, the change rec stands for, at now.
func (g *gate) check(ctx context.Context, ch *policy.Change, rec *store.Record, now time.Time) (gateResult, error) {
	res, err := g.promotion(ctx, ch, rec, now)
	if err != nil || res.status != "" {
		return res, err
	}
	held, err := g.held(ctx, ch.Commit.SHA, now)
	if err != nil || held.status == "" {
		held.upstream = res.upstream
		return held, err
	}
	if ticket, ok := g.engine.BreakGlass(ctx, ch, now); ok {
		return gateResult{upstream: res.upstream, breakGlass: true, note: &policy.Reason{Rule: policy.RuleWindow, Commit: ch.Commit.SHA,
			Message: fmt.Sprintf("break-glass by %s: %s", ticket, held.reason.Message)}}, nil
	}
	held.upstream = res.upstream
	return held, nil
}

// promotion is step 5.
func (g *gate) promotion(ctx context.Context, ch *policy.Change, rec *store.Record, now time.Time) (gateResult, error) {
	p := g.engine.Config().Promotion
	if !p.Required || ch.Action == policy.ActionRemove || ch.Requested == nil {
		return gateResult{}, nil
	}
	if !touchesArtifact(descriptors.Diff(ch.LastGood, ch.Requested), p.Fields) {
		return gateResult{}, nil // the environment's own fields: not a promotion
	}
	p.From = g.from
	art := artifactOf(ch.Requested, p.Fields)
	sha := ch.Commit.SHA
	reject := func(format string, args ...any) gateResult {
		return gateResult{status: store.StatusRejected, reason: &policy.Reason{Rule: policy.RulePromotion, Commit: sha,
			Field: p.Fields[0], Message: fmt.Sprintf(format, args...)}}
	}
	if p.From == "" {
		// Required, with nothing upstream to have passed it: closed.
		return reject("%s requires promotion, but it has no upstream environment (policy.promotion.from, or an environment listed before it)", g.env), nil
	}
	up, err := g.upstream(ctx, ch.Service, ch.Requested, p.Fields)
	if err != nil {
		return gateResult{}, err
	}
	// The first success of the artifact upstream since its last failure:
	// it has run there since then. A failure after a success blocks it.
	// A success with no end time (a damaged state) proves nothing.
	var ok *store.Record
scan:
	for i, r := range up { // newest first
		switch {
		case r.Status == store.StatusFailed:
			if ok == nil && slices.ContainsFunc(up[i+1:], func(x *store.Record) bool { return x.Status == store.StatusSucceeded }) {
				return reject("%s %s failed in %s after it succeeded there (record %s)", ch.Service, art, p.From, r.ID), nil
			}
			break scan
		case r.Status == store.StatusSucceeded && r.FinishedAt != nil:
			ok = r
		}
	}
	since := rec.CreatedAt
	if since.IsZero() {
		since = now
	}
	deadline := since.Add(p.Wait)
	wait := func(until time.Time, format string, args ...any) gateResult {
		if !now.Before(deadline) {
			return reject("waited %s for %s: %s", p.Wait, p.From, fmt.Sprintf(format, args...))
		}
		wake := deadline
		if !until.IsZero() && until.Before(wake) {
			wake = until
		}
		msg := fmt.Sprintf(format, args...) + fmt.Sprintf("; rejected at %s if it does not pass", deadline.UTC().Format(time.RFC3339))
		return gateResult{status: store.StatusPending, phase: store.PhasePromotion, wake: wake,
			reason: &policy.Reason{Rule: policy.RulePromotion, Commit: sha, Field: p.Fields[0], Message: msg}}
	}
	if ok != nil {
		at := *ok.FinishedAt
		if soaked := at.Add(p.Soak); now.Before(soaked) {
			return wait(soaked, "waiting for %s %s to soak in %s until %s (%s since it succeeded there)",
				ch.Service, art, p.From, soaked.UTC().Format(time.RFC3339), p.Soak), nil
		}
		return gateResult{upstream: &store.Upstream{Environment: p.From, Record: ok.ID, SucceededAt: at}}, nil
	}
	// A baseline upstream is its last good with no release of it there: it
	// was running before gitmon, which counts as succeeded and soaked. A
	// later record of it that was rejected, skipped or is running does not
	// undo that; a release that failed (or whose success is unproven)
	// does.
	sv, err := g.state.Service(ctx, g.repo, p.From, ch.Service)
	if err != nil {
		return gateResult{}, err
	}
	released := slices.ContainsFunc(up, func(r *store.Record) bool {
		return r.Status == store.StatusFailed || r.Status == store.StatusSucceeded
	})
	if sv.LastGood != nil && sameArtifact(sv.LastGood, ch.Requested, p.Fields) && !released {
		return gateResult{}, nil
	}
	if len(up) > 0 {
		last := up[0]
		switch last.Status {
		case store.StatusPending, store.StatusRunning:
			return wait(time.Time{}, "waiting for %s to release %s %s (record %s is %s there)", p.From, ch.Service, art, last.ID, last.Status), nil
		case store.StatusSkipped, store.StatusRejected, store.StatusFailed:
			why := ""
			if len(last.Reasons) > 0 {
				why = ": " + last.Reasons[0].Rule
			}
			return reject("%s %s was %s in %s (record %s%s); it must succeed there first", ch.Service, art, last.Status, p.From, last.ID, why), nil
		}
	}
	return wait(time.Time{}, "waiting for %s %s to succeed in %s, which has not released it yet", ch.Service, art, p.From), nil
}

// upstream returns the upstream records of the requested artifact, newest
// first: the records at its version whose artifact fields are the same.
func (g *gate) upstream(ctx context.Context, service string, req *descriptors.Descriptor, fields []string) ([]*store.Record, error) {
	from := g.from
	version := ""
	if fieldIn(descriptors.FieldVersion, fields) {
		version = req.Version // the index narrows the history to this version
	}
	recs, err := g.state.Artifact(ctx, g.repo, from, service, version)
	if err != nil {
		return nil, err
	}
	out := recs[:0]
	for _, r := range recs {
		if r.Action == string(policy.ActionDeploy) && sameArtifact(r.Descriptor, req, fields) {
			out = append(out, r)
		}
	}
	return out, nil
}

// How much of a freeze's actor and reason a held record's reason quotes.
const (
	freezeActorWidth  = 60
	freezeReasonWidth = 200
)

// held is step 6 without break-glass: a freeze, a halt, or the windows.
func (g *gate) held(ctx context.Context, sha string, now time.Time) (gateResult, error) {
	fs, err := g.state.Freezes(ctx)
	if err != nil {
		return gateResult{}, err
	}
	if f, ok := activeFreeze(fs, g.env, now); ok {
		// Every record the freeze holds carries this: one line, bounded,
		// whatever an operator (or the state) put in the freeze.
		actor, why := cut(oneLine(f.Actor), freezeActorWidth), cut(oneLine(f.Reason), freezeReasonWidth)
		msg := fmt.Sprintf("%s is frozen by %s since %s: %s", g.env, actor, f.Since.UTC().Format(time.RFC3339), why)
		if f.Environment == "" {
			msg = fmt.Sprintf("every environment is halted by %s since %s: %s", actor, f.Since.UTC().Format(time.RFC3339), why)
		}
		var wake time.Time
		if f.Until != nil {
			wake = *f.Until
			msg += "; until " + wake.UTC().Format(time.RFC3339)
		} else {
			msg += "; until `gitmon unfreeze`"
		}
		return gateResult{status: store.StatusPending, phase: store.PhaseWindow, wake: wake,
			reason: &policy.Reason{Rule: policy.RuleWindow, Commit: sha, Message: msg}}, nil
	}
	ws := g.engine.Windows().At(now)
	if ws.Open {
		return gateResult{}, nil
	}
	// Decided again when it may start, or where the search stopped.
	wake := ws.Next
	if wake.IsZero() {
		wake = ws.Checked
	}
	return gateResult{status: store.StatusPending, phase: store.PhaseWindow, wake: wake,
		reason: &policy.Reason{Rule: policy.RuleWindow, Commit: sha, Message: windowMessage(g.env, ws)}}, nil
}

// windowMessage says why the windows hold env and when it may start, such
// as "prod is outside the allow windows; next opens 2026-12-07T09:00:00+01:00
// (0 9 * * 1-5, 8h, Europe/Rome)".
func windowMessage(env string, ws policy.WindowState) string {
	return env + " is " + ws.String()
}

// activeFreeze returns the freeze that holds env at now: its own, else a
// halt.
func activeFreeze(fs []store.Freeze, env string, now time.Time) (store.Freeze, bool) {
	var halt *store.Freeze
	for i := range fs {
		f := &fs[i]
		if !f.Active(now) {
			continue
		}
		if f.Environment == env {
			return *f, true
		}
		if f.Environment == "" {
			halt = f
		}
	}
	if halt != nil {
		return *halt, true
	}
	return store.Freeze{}, false
}

// touchesArtifact reports whether a diff changes one of the promotion
// fields (a field names itself and every leaf under it).
func touchesArtifact(diff descriptors.Changes, fields []string) bool {
	for _, c := range diff {
		if fieldIn(c.Field, fields) {
			return true
		}
	}
	return false
}

func fieldIn(field string, fields []string) bool {
	for _, f := range fields {
		if field == f || strings.HasPrefix(field, f+".") {
			return true
		}
	}
	return false
}

// sameArtifact reports whether a and b agree on every promotion field.
func sameArtifact(a, b *descriptors.Descriptor, fields []string) bool {
	if a == nil || b == nil {
		return false
	}
	return !touchesArtifact(descriptors.Diff(a, b), fields)
}

// artifactOf words an artifact for reasons: its version, and its image
// when that is a promotion field.
func artifactOf(d *descriptors.Descriptor, fields []string) string {
	s := d.Version
	if fieldIn("image", fields) && d.Image != "" {
		s += " (" + d.Image + ")"
	}
	return s
}
