package demo

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// story is the demo's timeline: commits pushed to the repository while
// serve runs, and an operator's commands beside it, each followed by what
// gitmon did.
type story struct {
	p     *printer
	w     *watcher
	a     *app.App
	cfg   *config.Config
	st    store.Store // the state, as gitmon's commands open it beside serve
	reads *freezeReads
	repo  *gitRepo
	cl    *cluster
	port  int
	step  int
}

// tell runs the story, from the baselines to the status table.
func (s *story) tell(ctx context.Context) error {
	if _, err := s.w.until(ctx, "the first poll of every branch", func([]*store.Record) (bool, error) {
		ok, _ := s.a.Ready()
		return ok, nil
	}); err != nil {
		return err
	}
	s.p.events(ctx, s.st)
	for _, chapter := range []func(context.Context) error{s.policy, s.skipped, s.waits, s.freeze, s.retry} {
		if err := chapter(ctx); err != nil {
			return err
		}
	}
	return s.status(ctx, "what runs where, what waits and why", "")
}

// title starts a step of the timeline.
func (s *story) title(t string) {
	s.step++
	s.p.title(s.step, t)
}

// push makes a commit with do and has serve poll at once (a webhook
// would do the same).
func (s *story) push(env string, do func() (string, error)) (string, error) {
	sha, err := do()
	if err != nil {
		return "", err
	}
	s.p.say("commit %s pushed to %s", short(sha), env)
	s.a.Trigger("")
	return sha, nil
}

// release pushes a commit and waits until its n records ended.
func (s *story) release(ctx context.Context, env string, n int, do func() (string, error)) (string, error) {
	sha, err := s.push(env, do)
	if err != nil {
		return "", err
	}
	_, err = s.w.until(ctx, fmt.Sprintf("%d records of commit %s in %s", n, short(sha), env), ended(sha, n))
	return sha, err
}

// pay is payments' descriptor in qa.
func (s *story) pay(version, ports string) map[string]string {
	return map[string]string{"services/payments.yaml": descriptor("payments", "qa", version, ports, s.port)}
}

// policy: what policy decides in qa, one commit at a time.
func (s *story) policy(ctx context.Context) error {
	steps := []struct {
		title string
		do    func() (string, error)
	}{
		{"a normal release: alice bumps payments to 1.4.2 in qa", func() (string, error) {
			return s.repo.commit("qa", s.pay("1.4.2", "8080"), "Release payments 1.4.2", alice)
		}},
		{"a skip: alice bumps search to 2.1.0 but says \"skip deployment\"", func() (string, error) {
			return s.repo.commit("qa", map[string]string{"services/search.yaml": descriptor("search", "qa", "2.1.0", "8080", s.port)},
				"Bump search to 2.1.0 (skip deployment: docs only)", alice)
		}},
		{"a rejected committer: mallory opens port 22 on payments", func() (string, error) {
			return s.repo.commit("qa", s.pay("1.4.2", "8080, 22"), "Open a debug port", mallory)
		}},
		{"the ride-along attempt: alice releases payments 1.4.3 while mallory's port 22 is still in the file", func() (string, error) {
			return s.repo.commit("qa", s.pay("1.4.3", "8080, 22"), "Release payments 1.4.3", alice)
		}},
		{"bob (platform team) closes port 22: payments 1.4.3 deploys", func() (string, error) {
			return s.repo.commit("qa", s.pay("1.4.3", "8080"), "Close the debug port", bob)
		}},
	}
	for _, st := range steps {
		s.title(st.title)
		if _, err := s.release(ctx, "qa", 1, st.do); err != nil {
			return err
		}
	}
	return nil
}

// skipped: a merge carries the version qa skipped into staging, where the
// promotion gate rejects it.
func (s *story) skipped(ctx context.Context) error {
	s.title("promotion cannot skip a step: bob merges qa into staging, and with it search 2.1.0, which qa skipped")
	if _, err := s.release(ctx, "staging", 2, func() (string, error) { return s.repo.merge("qa", "staging", bob, s.port) }); err != nil {
		return err
	}
	s.p.say("staging released payments 1.4.3, which succeeded in qa; search 2.1.0 never ran in qa, so it does not run in staging,")
	s.p.say("and prod, which takes only what succeeded in staging, never sees it")
	return nil
}

// waits: a promotion pushed while upstream still runs the version waits
// for it, and follows the moment it succeeds, through staging to prod.
func (s *story) waits(ctx context.Context) error {
	const version = "1.5.0"
	s.title("a promotion that waits: alice releases payments " + version + " in qa, and bob promotes it to staging and prod while qa still runs it")
	held := s.cl.hold("qa", "payments", version)
	defer s.cl.unhold("qa", "payments", version)
	qa, err := s.push("qa", func() (string, error) {
		return s.repo.commit("qa", s.pay(version, "8080"), "Release payments "+version, alice)
	})
	if err != nil {
		return err
	}
	if _, err := s.w.until(ctx, "qa's healthcheck of payments "+version, func(recs []*store.Record) (bool, error) {
		select {
		case <-held.arrived:
			return true, nil
		default:
		}
		if r := find(recs, "qa", qa); r != nil && r.FinishedAt != nil {
			return false, fmt.Errorf("qa/payments %s ended %s before its healthcheck asked", version, r.Status)
		}
		return false, nil
	}); err != nil {
		return err
	}
	s.p.say("qa is running payments %s: its healthcheck is held open until the demo lets the service answer", version)
	staging, err := s.push("staging", func() (string, error) { return s.repo.merge("qa", "staging", bob, s.port) })
	if err != nil {
		return err
	}
	if _, err := s.w.until(ctx, "staging's record to wait for qa", waiting("staging", staging, store.PhasePromotion)); err != nil {
		return err
	}
	prod, err := s.push("prod", func() (string, error) { return s.repo.promote("staging", "prod", "payments", bob, s.port) })
	if err != nil {
		return err
	}
	recs, err := s.w.until(ctx, "prod's record to wait for staging", waiting("prod", prod, store.PhasePromotion))
	if err != nil {
		return err
	}
	ids := []string{find(recs, "qa", qa).ID, find(recs, "staging", staging).ID, find(recs, "prod", prod).ID}
	s.p.say("the service answers: qa's healthcheck passes")
	s.cl.unhold("qa", "payments", version)
	if recs, err = s.w.until(ctx, "payments "+version+" in qa, staging and prod", endedIDs(ids...)); err != nil {
		return err
	}
	q, st, pr := find(recs, "qa", qa), find(recs, "staging", staging), find(recs, "prod", prod)
	if q.FinishedAt != nil && st.StartedAt != nil && st.FinishedAt != nil && pr.StartedAt != nil {
		s.p.say("staging started %s after qa succeeded, prod %s after staging did: a waiting promotion follows the moment upstream succeeds",
			gap(*q.FinishedAt, *st.StartedAt), gap(*st.FinishedAt, *pr.StartedAt))
	}
	return nil
}

// freeze: an operator freezes prod; a promotion into prod waits until
// the freeze is lifted, while qa and staging go on.
func (s *story) freeze(ctx context.Context) error {
	const version, reason = "2.2.0", "quarter-end close"
	s.title("a freeze: carol (on call) freezes prod for the " + reason + "; search " + version + " goes through qa and staging, and waits at prod")
	if err := s.st.Freeze(ctx, store.Freeze{Environment: "prod", Reason: reason, Actor: carol}); err != nil {
		return err
	}
	mark := s.reads.mark()
	s.p.command(fmt.Sprintf("freeze --env prod --reason %q --actor %s", reason, carol),
		fmt.Sprintf("froze prod: %s; recorded as %s", reason, carol))
	if _, err := s.release(ctx, "qa", 1, func() (string, error) {
		return s.repo.commit("qa", map[string]string{"services/search.yaml": descriptor("search", "qa", version, "8080", s.port)},
			"Release search "+version, alice)
	}); err != nil {
		return err
	}
	if _, err := s.release(ctx, "staging", 1, func() (string, error) { return s.repo.merge("qa", "staging", bob, s.port) }); err != nil {
		return err
	}
	// serve acts on a freeze within a second; the promotion is pushed once
	// it has.
	if err := s.reads.acted(ctx, mark); err != nil {
		return err
	}
	s.p.say("serve acted on the freeze (it reads freezes every second): prod starts nothing new")
	prod, err := s.push("prod", func() (string, error) { return s.repo.promote("staging", "prod", "search", bob, s.port) })
	if err != nil {
		return err
	}
	recs, err := s.w.until(ctx, "prod's record to be held by the freeze", waiting("prod", prod, store.PhaseWindow))
	if err != nil {
		return err
	}
	id := find(recs, "prod", prod).ID
	if err := s.status(ctx, "", "prod"); err != nil {
		return err
	}
	lifted, _, err := s.st.Unfreeze(ctx, "prod", carol)
	if err != nil {
		return err
	}
	unfrozen := time.Now()
	s.p.command("unfreeze --env prod --actor "+carol, fmt.Sprintf("unfroze prod (frozen by %s since %s: %s); recorded as %s",
		lifted.Actor, s.p.at(lifted.Since), lifted.Reason, carol))
	if recs, err = s.w.until(ctx, "prod's record to run once unfrozen", endedIDs(id)); err != nil {
		return err
	}
	if r := find(recs, "prod", prod); r.StartedAt != nil {
		s.p.say("prod started search %s %s after the unfreeze", version, gap(unfrozen, *r.StartedAt))
	}
	return nil
}

// retry: a release fails; once the cause is fixed, an operator retries
// it, without a commit.
func (s *story) retry(ctx context.Context) error {
	s.title("a failed release, retried: alice releases payments " + BrokenVersion + " in qa, and its database migration fails")
	if _, err := s.release(ctx, "qa", 1, func() (string, error) {
		return s.repo.commit("qa", s.pay(BrokenVersion, "8080"), "Release payments "+BrokenVersion, alice)
	}); err != nil {
		return err
	}
	s.cl.heal()
	s.p.say("the database team fixes the migration: the service now answers its healthcheck")
	rec, err := app.Retry(ctx, s.cfg, s.st, app.RetryOptions{Env: "qa", Service: "payments", Actor: carol})
	if err != nil {
		return err
	}
	s.p.command("retry --env qa --service payments --actor "+carol, fmt.Sprintf("queued a retry of %s %s in %s at %s (record %s), asked by %s",
		rec.Service, rec.Version, rec.Environment, short(rec.Commit), rec.ID, rec.Actor))
	_, err = s.w.until(ctx, "the retry of payments "+BrokenVersion, endedIDs(rec.ID))
	return err
}

// status prints `gitmon status` (of env, "" every environment).
func (s *story) status(ctx context.Context, title, env string) error {
	rep, err := app.Status(ctx, s.cfg, s.st, app.StatusOptions{Env: env})
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		return err
	}
	if title != "" {
		s.p.title(s.step+1, title)
	}
	line := "status"
	if env != "" {
		line += " --env " + env
	}
	s.p.command(line)
	s.p.block(b.Bytes())
	return nil
}

// gap is how long after from to came, in milliseconds.
func gap(from, to time.Time) string {
	return fmt.Sprintf("%dms", to.Sub(from).Milliseconds())
}
