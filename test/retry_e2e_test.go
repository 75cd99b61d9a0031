package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Retry end to end (SPEC §5 Retry, §6): `gitmon retry` beside a running
// `gitmon serve` makes a new record (trigger retry, with the actor) for
// the last failed release's descriptor at the same commit, which serve
// starts within a second; it goes through the gates as they are now. The
// rig is gates_rig_test.go's.

// descriptorRuns returns, for each run of service in env, the commit and
// the hash of the descriptor JSON it got ("commit hash").
func (r *pmRig) descriptorRuns(env, service string) []string {
	b, _ := os.ReadFile(filepath.Join(r.d.Dir, "descriptors.log"))
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if rest, ok := strings.CutPrefix(l, env+" "+service+" "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// TestRetryRunsTheFailedCommitAgain: a release that failed (the deploy
// target was down) is retried by an operator: a new record with trigger
// retry and the actor, at the same commit and version, that runs the same
// descriptor again, although the branch moved on meanwhile (a comment in
// the descriptor, another service). Its failed record stays as it was. A
// second retry has nothing to retry: exit 2, no record.
func TestRetryRunsTheFailedCommitAgain(t *testing.T) {
	const actor = "carol@example.com"
	r := pmNewRig(t, "", "", "pay", "web")
	r.touch("fail-qa")
	c := r.bump("qa", "pay", "2.0.0", 8080, "pay 2.0.0")
	failed := r.ended("qa", "pay", c)
	pmWant(t, failed, "failed")
	if failed.Trigger != "commit" || failed.Actor != "" {
		t.Errorf("a commit's record: trigger %q actor %q, want commit and none", failed.Trigger, failed.Actor)
	}
	r.rm("fail-qa")
	// The branch moves on: a comment in pay's file (no record) and web.
	r.repo.WriteFile(pmPath("pay"), "# on call: bob\n"+pmDesc("pay", "2.0.0", "qa", 8080))
	r.repo.Commit("qa", "pay: a comment", Alice, Alice)
	w := r.bump("qa", "web", "2.0.0", 8080, "web 2.0.0")
	pmWant(t, r.ended("qa", "web", w), "succeeded")

	start := time.Now()
	r.mustCLI("retry", "--env", "qa", "--service", "pay", "--actor", actor)
	rec := r.wait("a retry that ended", "qa", "pay", c, "retry", func(rec pmRecord) bool { return rec.FinishedAt != nil })
	pmWant(t, rec, "succeeded")
	if rec.ID == failed.ID || rec.Actor != actor || rec.Version != "2.0.0" || rec.StartedAt == nil {
		t.Fatalf("the retry record: id %s (failed %s) actor %q version %q started %v, want a new one by %s at 2.0.0",
			rec.ID, failed.ID, rec.Actor, rec.Version, rec.StartedAt, actor)
	}
	if len(rec.Stages) != 1 || rec.Stages[0].Status != "succeeded" {
		t.Errorf("the retry's stages: %s", aJSON(rec.Stages))
	}
	d := rec.StartedAt.Sub(start)
	if d > 10*time.Second { // a sanity bound, not a timing assert (SPEC: within a second)
		t.Errorf("the retry started %s after `gitmon retry` was run", d)
	}
	t.Logf("FIGURE retry-to-start d=%.1fms", float64(d)/float64(time.Millisecond))
	runs := r.descriptorRuns("qa", "pay")
	if len(runs) != 2 || runs[0] != runs[1] || !strings.HasPrefix(runs[0], c+" ") {
		t.Errorf("pay's runs in qa (commit, descriptor hash): %q, want the same descriptor at %.10s twice", runs, c)
	}
	for _, old := range r.records("qa", "pay") {
		if old.ID == failed.ID && (old.Status != "failed" || old.Trigger != "commit") {
			t.Errorf("the failed record changed: %s %s", old.Status, old.Trigger)
		}
	}
	r.eventBy("qa", actor)

	if res := r.cli("retry", "--env", "qa", "--service", "pay", "--actor", actor); res.code != 2 || res.stderr == "" {
		t.Errorf("retry of a succeeded release: want exit 2 with a message, got %v", res)
	}
	if recs := r.records("qa", "pay"); len(recs) != 2 {
		t.Errorf("qa has %d records of pay, want 2:\n%s", len(recs), aJSON(recs))
	}
}

// TestRetryWhileFrozenWaitsForUnfreeze: a retry in a frozen environment
// is queued (exit 0) and waits pending (rule window, naming who froze
// it); unfreeze releases it.
func TestRetryWhileFrozenWaitsForUnfreeze(t *testing.T) {
	r := pmNewRig(t, "", "", "pay")
	r.touch("fail-qa")
	c := r.bump("qa", "pay", "2.0.0", 8080, "pay 2.0.0")
	pmWant(t, r.ended("qa", "pay", c), "failed")
	r.rm("fail-qa")

	r.freeze("--env", "qa", "--reason", "release train", "--actor", "carol@example.com")
	r.mustCLI("retry", "--env", "qa", "--service", "pay", "--actor", "dave@example.com")
	p := r.wait("a pending retry", "qa", "pay", c, "retry", func(rec pmRecord) bool {
		return rec.Status == "pending" && pmReason(rec, "window") != ""
	})
	pmWantMessage(t, p, "window", "carol@example.com", "release train")
	pmWantNoRun(t, p)
	if p.Actor != "dave@example.com" {
		t.Errorf("the retry's actor is %q, want dave@example.com", p.Actor)
	}

	// serve has taken the retry in (it logs the records it handles)
	// before the freeze lifts; TestRetryFrozenThenUnfrozenAtOnce is the
	// same without this wait.
	r.d.Eventually(30*time.Second, "serve to take the retry in", func() bool {
		return strings.Contains(r.d.Logs(), "record="+p.ID)
	})
	r.mustCLI("unfreeze", "--env", "qa")
	rec := r.wait("the retry ended", "qa", "pay", c, "retry", func(rec pmRecord) bool { return rec.FinishedAt != nil })
	pmWant(t, rec, "succeeded")
	if rec.ID != p.ID {
		t.Errorf("the held retry %s was not the one that ran (%s)", p.ID, rec.ID)
	}
}

// TestRetryFrozenThenUnfrozenAtOnce: an operator retries in a frozen
// environment and lifts the freeze right away, so that serve may read the
// unfreeze and the queued retry in one pass: the retry still runs once
// the freeze is gone. Each round is a new failed release; several rounds,
// because the two commands land in one of serve's reads only some of the
// time.
//
// It fails on main as of this commit: serve's operatorLoop
// (internal/app/holds.go) first sees the unfreeze (refreshFreezes →
// wakePending → waiter.Wait(id, seq, now), the retry being pending in the
// store already), then queues the retry (queue → waiter.Wait(id, seq,
// r.WakeAt)); a freeze hold has a zero WakeAt, and a zero time makes the
// waiter forget the wake just set. Unless the waiter's goroutine took the
// wake in between, the retry stays pending (rule window, naming a freeze
// that no longer exists) for good.
func TestRetryFrozenThenUnfrozenAtOnce(t *testing.T) {
	r := pmNewRig(t, "", "", "pay")
	for i := range 6 {
		v := fmt.Sprintf("2.%d.0", i)
		r.touch("fail-qa")
		c := r.bump("qa", "pay", v, 8080, "pay "+v)
		pmWant(t, r.ended("qa", "pay", c), "failed")
		r.rm("fail-qa")

		r.freeze("--env", "qa", "--reason", "release train", "--actor", "carol@example.com")
		r.mustCLI("retry", "--env", "qa", "--service", "pay", "--actor", "dave@example.com")
		r.mustCLI("unfreeze", "--env", "qa")
		rec := r.wait(fmt.Sprintf("round %d: the retry ended", i), "qa", "pay", c, "retry", func(rec pmRecord) bool { return rec.FinishedAt != nil })
		pmWant(t, rec, "succeeded")
	}
}

// TestRetryRejectedByPromotionExits4: a retry goes through the promotion
// gate as it is now. staging's release of 2.0.0 failed; since then qa
// failed 2.0.0 too (a later record with the same artifact), so a retry in
// staging is rejected (rule promotion): exit 4, a rejected retry record,
// nothing run.
func TestRetryRejectedByPromotionExits4(t *testing.T) {
	r := pmNewRig(t, pmStagingGated, "", "pay")
	q := r.bump("qa", "pay", "2.0.0", 8080, "pay 2.0.0")
	pmWant(t, r.ended("qa", "pay", q), "succeeded")
	r.touch("fail-staging")
	m := r.merge("staging", "qa")
	pmWant(t, r.ended("staging", "pay", m), "failed")

	r.touch("fail-qa")
	q2 := r.bump("qa", "pay", "2.0.0", 9090, "qa: pay on 9090")
	pmWant(t, r.ended("qa", "pay", q2), "failed")
	r.rm("fail-staging")

	res := r.cli("retry", "--env", "staging", "--service", "pay", "--actor", "carol@example.com")
	if res.code != 4 {
		t.Fatalf("retry past a failed upstream: want exit 4 (rejected), got %v", res)
	}
	rec := r.wait("a rejected retry", "staging", "pay", m, "retry", func(rec pmRecord) bool { return rec.FinishedAt != nil })
	pmWant(t, rec, "rejected", "promotion")
	pmWantMessage(t, rec, "promotion", "qa", "2.0.0", "failed")
	pmWantNoRun(t, rec)
	if rec.Actor != "carol@example.com" {
		t.Errorf("the retry's actor is %q", rec.Actor)
	}
	if lines := r.deployed("staging", "pay"); len(lines) != 1 {
		t.Errorf("staging ran %q, want the one failed run", lines)
	}
}
