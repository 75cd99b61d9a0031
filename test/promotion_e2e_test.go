package test

import (
	"strings"
	"testing"
	"time"
)

// Promotion gates end to end (SPEC §5 step 5), on the rig of
// gates_rig_test.go: nothing reaches staging that did not succeed in qa,
// and nothing reaches prod that did not succeed in staging, however it got
// onto the branch.

// TestPromotionSkippedUpstreamIsRejected: a version skipped in qa (skip
// marker), then merged into staging with `git merge`, is rejected there
// (rule promotion, naming qa), and merged on into prod it is rejected
// again: it never deploys anywhere. While it stays in staging's file, a
// later staging commit of its own fields does not carry it through
// (no ride-along).
func TestPromotionSkippedUpstreamIsRejected(t *testing.T) {
	r := pmNewRig(t, pmStagingGated, pmProdGated, "pay")

	q := r.bump("qa", "pay", "2.0.0", 8080, "pay 2.0.0 [skip deploy]")
	pmWant(t, r.ended("qa", "pay", q), "skipped", "skip")

	m := r.merge("staging", "qa")
	st := r.ended("staging", "pay", m)
	pmWant(t, st, "rejected", "promotion")
	pmWantMessage(t, st, "promotion", "qa", "2.0.0", "skipped")
	pmWantNoRun(t, st)
	if st.Version != "2.0.0" || st.Evidence.Upstream != nil {
		t.Errorf("staging record: version %q upstream %s, want 2.0.0 and none", st.Version, aJSON(st.Evidence.Upstream))
	}

	p := r.merge("prod", "staging")
	pr := r.ended("prod", "pay", p)
	pmWant(t, pr, "rejected", "promotion")
	pmWantMessage(t, pr, "promotion", "staging", "2.0.0")
	pmWantNoRun(t, pr)

	// staging's own port change: the version it would carry is still the
	// skipped one, so the gate still stops it.
	own := r.bump("staging", "pay", "2.0.0", 9090, "staging: pay on port 9090")
	ride := r.ended("staging", "pay", own)
	pmWant(t, ride, "rejected", "promotion")
	pmWantNoRun(t, ride)

	for _, env := range []string{"qa", "staging", "prod"} {
		if lines := r.deployed(env, "pay"); len(lines) != 0 {
			t.Errorf("pay ran in %s: %q", env, lines)
		}
	}
}

// TestPromotionStraightToStagingTimesOut: a version committed straight
// to staging, which qa never saw, waits pending (rule promotion) for
// policy.promotion.wait (3s), then is rejected (rule promotion), not
// earlier; it never runs.
func TestPromotionStraightToStagingTimesOut(t *testing.T) {
	const wait = 3 * time.Second
	r := pmNewRig(t, "{promotion: {required: true, from: qa, wait: 3s}}", "", "pay")

	c := r.bump("staging", "pay", "2.0.0", 8080, "pay 2.0.0 straight to staging")
	p := r.pending("staging", "pay", c, "promotion")
	pmWantMessage(t, p, "promotion", "qa", "2.0.0")
	pmWantNoRun(t, p)

	rec := r.ended("staging", "pay", c)
	pmWant(t, rec, "rejected", "promotion")
	pmWantNoRun(t, rec)
	held := rec.FinishedAt.Sub(rec.CreatedAt)
	if held < wait {
		t.Errorf("rejected %s after it was created, before the wait of %s ran out", held, wait)
	}
	if held > wait+15*time.Second { // a sanity bound, not a timing assert
		t.Errorf("rejected %s after it was created; the wait is %s", held, wait)
	}
	if !strings.Contains(pmReason(rec, "promotion"), "3s") {
		t.Errorf("the rejection does not say it waited 3s: %q", pmReason(rec, "promotion"))
	}
	t.Logf("FIGURE promotion-wait-rejected-after wait=%s held=%.1fms", wait, float64(held)/float64(time.Millisecond))
	if lines := r.deployed("staging", "pay"); len(lines) != 0 {
		t.Errorf("pay ran in staging: %q", lines)
	}
}

// TestPromotionOwnFieldsDeployAtOnce: a gated environment's own fields
// (domain, port), with the version unchanged, are no promotion: staging
// and prod deploy them without waiting for upstream (wait is 1m, so a
// wrong hold would stay pending), and their evidence has no upstream.
func TestPromotionOwnFieldsDeployAtOnce(t *testing.T) {
	r := pmNewRig(t, pmStagingGated, pmProdGated, "pay")
	for _, env := range []string{"staging", "prod"} {
		r.repo.WriteFile(pmPath("pay"), strings.Replace(pmDesc("pay", "1.0.0", env, 9090),
			"pay."+env+".example.com", "payments."+env+".example.com", 1))
		c := r.repo.Commit(env, env+": pay's new domain and port", Alice, Alice)
		rec := r.ended(env, "pay", c)
		pmWant(t, rec, "succeeded")
		if len(rec.Reasons) != 0 || rec.Evidence.Upstream != nil {
			t.Errorf("%s: reasons %s upstream %s, want none", env, aJSON(rec.Reasons), aJSON(rec.Evidence.Upstream))
		}
		if rec.StartedAt == nil {
			t.Fatalf("%s: a succeeded record without started_at:\n%s", env, aJSON(rec))
		}
		if d := rec.StartedAt.Sub(rec.CreatedAt); d > 10*time.Second { // sanity only
			t.Errorf("%s: started %s after it was created", env, d)
		}
		if lines := r.deployed(env, "pay"); len(lines) != 1 || !strings.HasSuffix(lines[0], " 1.0.0 "+c) {
			t.Errorf("%s: deployed.log %q, want one run of 1.0.0 at %.10s", env, lines, c)
		}
	}
	if lines := r.deployed("qa", "pay"); len(lines) != 0 {
		t.Errorf("qa ran: %q", lines)
	}
}

// TestPromotionMergeCherryPickHandEditHeldAlike: the same version reaching
// staging by a merge commit (pay), a cherry-pick (web) and a hand edit
// (api) is held alike: each waits pending (rule promotion) while qa runs
// it, each follows once qa succeeds, on the evidence of qa's record. When
// qa fails the next version, all three ways are rejected alike.
func TestPromotionMergeCherryPickHandEditHeldAlike(t *testing.T) {
	services := []string{"pay", "web", "api"}
	r := pmNewRig(t, pmStagingGated, "", services...)
	r.touch("hold-qa")

	qa := map[string]string{}
	for _, s := range services {
		qa[s] = r.bump("qa", s, "2.0.0", 8080, s+" 2.0.0")
	}
	for _, s := range services {
		r.running("qa", s, qa[s])
	}
	staging := map[string]string{
		"web": r.cherryPick("staging", qa["web"]),
		"api": r.bump("staging", "api", "2.0.0", 8080, "api 2.0.0 by hand"),
	}
	staging["pay"] = r.merge("staging", "qa")
	for _, s := range services {
		p := r.pending("staging", s, staging[s], "promotion")
		pmWantMessage(t, p, "promotion", "qa", "2.0.0")
		pmWantNoRun(t, p)
	}
	// The merge, decided by now, changed only pay in staging.
	if n := len(r.records("staging", "web")) + len(r.records("staging", "api")); n != 2 {
		t.Fatalf("staging has %d records of web and api, want 2 (the merge changes only pay there)", n)
	}

	for _, s := range services {
		r.touch("release-qa-" + s + "-2.0.0")
	}
	for _, s := range services {
		up := r.ended("qa", s, qa[s])
		pmWant(t, up, "succeeded")
		rec := r.ended("staging", s, staging[s])
		pmWant(t, rec, "succeeded")
		pmWantUpstream(t, rec, up)
		if !rec.StartedAt.After(*up.FinishedAt) && !rec.StartedAt.Equal(*up.FinishedAt) {
			t.Errorf("%s started in staging at %v, before qa succeeded at %v", s, rec.StartedAt, up.FinishedAt)
		}
	}

	// 3.0.0 fails in qa: a merge, a cherry-pick and a hand edit of it are
	// all rejected in staging, and none runs there.
	r.rm("hold-qa")
	r.touch("fail-qa")
	for _, s := range services {
		qa[s] = r.bump("qa", s, "3.0.0", 8080, s+" 3.0.0")
		pmWant(t, r.ended("qa", s, qa[s]), "failed")
	}
	staging = map[string]string{
		"web": r.cherryPick("staging", qa["web"]),
		"api": r.bump("staging", "api", "3.0.0", 8080, "api 3.0.0 by hand"),
	}
	staging["pay"] = r.merge("staging", "qa")
	for _, s := range services {
		rec := r.ended("staging", s, staging[s])
		pmWant(t, rec, "rejected", "promotion")
		pmWantMessage(t, rec, "promotion", "qa", "3.0.0", "failed")
		pmWantNoRun(t, rec)
		if lines := r.deployed("staging", s); len(lines) != 1 || !strings.Contains(lines[0], " 2.0.0 ") {
			t.Errorf("%s in staging: deployed.log %q, want only 2.0.0", s, lines)
		}
	}
}
