package test

import (
	"strings"
	"testing"
	"time"
)

// Freezes and halts end to end (SPEC §5 step 6, §6): `gitmon freeze`
// and `gitmon unfreeze` run beside a real `gitmon serve`, which acts on
// them within a second. A frozen environment holds its new records
// pending (rule window, naming the freeze and who set it) and releases
// them in commit order when the freeze is lifted; a running stage is never
// cut. The rig is gates_rig_test.go's.

// cli runs a gitmon command with the rig's config: cmd, then --config,
// then args.
func (r *pmRig) cli(cmd string, args ...string) result {
	r.t.Helper()
	return r.d.Gitmon(append([]string{cmd, "--config", r.d.Config}, args...)...)
}

// mustCLI runs a command that must exit 0.
func (r *pmRig) mustCLI(cmd string, args ...string) result {
	r.t.Helper()
	res := r.cli(cmd, args...)
	if res.code != 0 {
		r.t.Fatalf("gitmon %s %q: %v", cmd, args, res)
	}
	return res
}

// freeze runs `gitmon freeze` with args, then waits until serve has acted
// on it (SPEC §6: within a second; its log line for the freeze, §9), so
// that what the test does next meets the freeze. It returns how long
// serve took from the command's return.
func (r *pmRig) freeze(args ...string) time.Duration {
	r.t.Helper()
	mark := len(r.d.Logs())
	r.mustCLI("freeze", args...)
	done := time.Now()
	target := "halt"
	for i, a := range args {
		if a == "--env" && i+1 < len(args) {
			target = "env=" + args[i+1]
		}
	}
	var at time.Time
	r.d.Eventually(30*time.Second, "serve acting on the freeze ("+target+")", func() bool {
		for _, l := range strings.Split(r.d.Logs()[mark:], "\n") {
			if strings.Contains(l, "level=INFO") && strings.Contains(l, "freeze") && strings.Contains(l, target) ||
				target == "halt" && strings.Contains(l, "level=INFO") && strings.Contains(l, "halt") {
				at = time.Now()
				return true
			}
		}
		return false
	})
	return at.Sub(done)
}

// eventBy waits for an event of env ("" for any) whose actor is actor: an
// operator command is recorded with who asked for it.
func (r *pmRig) eventBy(env, actor string) Event {
	r.t.Helper()
	var found Event
	r.d.Eventually(30*time.Second, "an event in "+env+" by "+actor, func() bool {
		for _, e := range r.d.Events() {
			if e.Actor == actor && (env == "" || e.Environment == env) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// still checks that the record of (env, service, commit) is still
// pending with rule, as serve keeps deciding.
func (r *pmRig) still(env, service, commit, rule string) {
	r.t.Helper()
	for _, rec := range r.records(env, service) {
		if rec.Commit == commit {
			pmWant(r.t, rec, "pending", rule)
			pmWantNoRun(r.t, rec)
			return
		}
	}
	r.t.Fatalf("no record of %s/%s at %.10s", env, service, commit)
}

// TestFreezeHoldsNewRecordsUntilUnfreeze: with qa frozen, a new record
// waits pending (rule window, naming the reason and the actor); a later
// commit of the same service supersedes it while it waits; staging, not
// frozen, deploys meanwhile. `gitmon unfreeze` releases the newest within
// a second (measured from the command; a generous bound asserted).
func TestFreezeHoldsNewRecordsUntilUnfreeze(t *testing.T) {
	const actor = "carol@example.com"
	r := pmNewRig(t, "", "", "pay", "web")
	acted := r.freeze("--env", "qa", "--reason", "release train", "--actor", actor)
	t.Logf("FIGURE freeze-acted-by-serve d=%.1fms", float64(acted)/float64(time.Millisecond))
	if e := r.eventBy("qa", actor); !strings.Contains(e.Message, "release train") {
		t.Errorf("the freeze event does not give the reason: %+v", e)
	}

	c1 := r.bump("qa", "pay", "2.0.0", 8080, "pay 2.0.0")
	p := r.pending("qa", "pay", c1, "window")
	pmWantMessage(t, p, "window", actor, "release train")
	pmWantNoRun(t, p)
	c2 := r.bump("qa", "pay", "2.1.0", 8080, "pay 2.1.0")
	r.pending("qa", "pay", c2, "window")
	if rec := r.ended("qa", "pay", c1); rec.Status != "superseded" {
		t.Errorf("the older held record is %s, want superseded:\n%s", rec.Status, aJSON(rec))
	}

	// A freeze of qa holds qa only.
	s := r.bump("staging", "web", "1.0.0", 9090, "staging: web on 9090")
	pmWant(t, r.ended("staging", "web", s), "succeeded")
	r.still("qa", "pay", c2, "window")

	start := time.Now()
	r.mustCLI("unfreeze", "--env", "qa", "--actor", actor)
	rec := r.ended("qa", "pay", c2)
	pmWant(t, rec, "succeeded")
	if rec.StartedAt == nil {
		t.Fatalf("a succeeded record without started_at:\n%s", aJSON(rec))
	}
	d := rec.StartedAt.Sub(start)
	if d > 10*time.Second { // a sanity bound, not a timing assert (SPEC: within a second)
		t.Errorf("started %s after `gitmon unfreeze` was run", d)
	}
	t.Logf("FIGURE unfreeze-to-start d=%.1fms", float64(d)/float64(time.Millisecond))
	if lines := r.deployed("qa", "pay"); len(lines) != 1 || !strings.HasPrefix(lines[0], "qa pay 2.1.0 ") {
		t.Errorf("qa ran %q, want 2.1.0 once", lines)
	}
}

// TestFreezeNeverCutsARunningStage: a freeze set while a stage runs holds
// the next record, but the running stage finishes and its record
// succeeds; unfreeze then releases the held one.
func TestFreezeNeverCutsARunningStage(t *testing.T) {
	const actor = "carol@example.com"
	r := pmNewRig(t, "", "", "pay", "web")
	r.touch("hold-qa")
	c := r.bump("qa", "pay", "2.0.0", 8080, "pay 2.0.0")
	r.running("qa", "pay", c)

	r.freeze("--env", "qa", "--reason", "incident 42", "--actor", actor)
	w := r.bump("qa", "web", "2.0.0", 8080, "web 2.0.0")
	pmWantMessage(t, r.pending("qa", "web", w, "window"), "window", actor, "incident 42")
	r.still("qa", "web", w, "window")

	r.touch("release-qa-pay-2.0.0")
	rec := r.ended("qa", "pay", c)
	pmWant(t, rec, "succeeded")
	if len(rec.Stages) != 1 || rec.Stages[0].Status != "succeeded" {
		t.Errorf("the running stage was cut: %s", aJSON(rec.Stages))
	}
	r.still("qa", "web", w, "window")

	r.touch("release-qa-web-2.0.0")
	r.mustCLI("unfreeze", "--env", "qa")
	pmWant(t, r.ended("qa", "web", w), "succeeded")
}

// TestFreezeUntilLiftsItself: a freeze with --until holds new records
// until that time, then lets them start without an unfreeze, not earlier.
func TestFreezeUntilLiftsItself(t *testing.T) {
	const actor = "carol@example.com"
	r := pmNewRig(t, "", "", "pay")
	until := time.Now().Add(5 * time.Second).UTC().Truncate(time.Second)
	r.freeze("--env", "qa", "--reason", "maintenance", "--until", until.Format(time.RFC3339), "--actor", actor)

	c := r.bump("qa", "pay", "2.0.0", 8080, "pay 2.0.0")
	pmWantMessage(t, r.pending("qa", "pay", c, "window"), "window", actor, "maintenance")
	rec := r.ended("qa", "pay", c)
	pmWant(t, rec, "succeeded")
	if rec.StartedAt == nil || rec.StartedAt.Before(until) {
		t.Fatalf("started at %v, before the freeze's end %v", rec.StartedAt, until)
	}
	if late := rec.StartedAt.Sub(until); late > 10*time.Second { // sanity only
		t.Errorf("started %s after the freeze ended", late)
	}
}

// TestHaltHoldsEveryEnvironment: `gitmon freeze --all` holds new records
// in qa, staging and prod (rule window, naming the actor); `gitmon
// unfreeze --all` releases every one.
func TestHaltHoldsEveryEnvironment(t *testing.T) {
	const actor = "dave@example.com"
	r := pmNewRig(t, "", "", "pay")
	r.freeze("--all", "--reason", "incident 7", "--actor", actor)
	r.eventBy("", actor)

	held := map[string]string{
		"qa":      r.bump("qa", "pay", "2.0.0", 8080, "qa: pay 2.0.0"),
		"staging": r.bump("staging", "pay", "1.0.0", 9090, "staging: pay on 9090"),
		"prod":    r.bump("prod", "pay", "1.0.0", 9090, "prod: pay on 9090"),
	}
	for env, c := range held {
		p := r.pending(env, "pay", c, "window")
		pmWantMessage(t, p, "window", actor, "incident 7")
		pmWantNoRun(t, p)
	}
	for env, c := range held {
		r.still(env, "pay", c, "window")
	}

	r.mustCLI("unfreeze", "--all", "--actor", actor)
	for env, c := range held {
		pmWant(t, r.ended(env, "pay", c), "succeeded")
		if lines := r.deployed(env, "pay"); len(lines) != 1 {
			t.Errorf("%s ran %q, want once", env, lines)
		}
	}
}

// TestFreezeCommandErrors: bad freeze, unfreeze and retry invocations
// exit 2 with a message and change nothing: a later commit deploys.
func TestFreezeCommandErrors(t *testing.T) {
	r := pmNewRig(t, "", "", "pay")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"freeze without --env or --all", []string{"freeze", "--reason", "x"}},
		{"freeze of an unknown environment", []string{"freeze", "--env", "nowhere", "--reason", "x"}},
		{"freeze with both --env and --all", []string{"freeze", "--env", "qa", "--all", "--reason", "x"}},
		{"freeze without --reason", []string{"freeze", "--env", "qa"}},
		{"freeze with a bad --until", []string{"freeze", "--env", "qa", "--reason", "x", "--until", "next tuesday"}},
		{"unfreeze without --env or --all", []string{"unfreeze"}},
		{"unfreeze of an unknown environment", []string{"unfreeze", "--env", "nowhere"}},
		{"retry in an unknown environment", []string{"retry", "--env", "nowhere", "--service", "pay"}},
		{"retry of an unknown service", []string{"retry", "--env", "qa", "--service", "nosuch"}},
		{"retry with no release to retry", []string{"retry", "--env", "qa", "--service", "pay"}},
	} {
		res := r.cli(tc.args[0], tc.args[1:]...)
		if res.code != 2 || strings.TrimSpace(res.stderr) == "" {
			t.Errorf("%s: want exit 2 with a message, got %v", tc.name, res)
		}
	}
	for _, cmd := range []string{"freeze", "unfreeze", "retry"} {
		res := r.d.Gitmon(cmd, "-h")
		if res.code != 0 || !strings.Contains(res.stdout+res.stderr, "gitmon "+cmd) {
			t.Errorf("gitmon %s -h: want exit 0 and help with an example, got %v", cmd, res)
		}
	}
	c := r.bump("qa", "pay", "2.0.0", 8080, "pay 2.0.0")
	pmWant(t, r.ended("qa", "pay", c), "succeeded")
	if recs := r.records("qa", "pay"); len(recs) != 1 {
		t.Errorf("qa has %d records of pay, want 1:\n%s", len(recs), aJSON(recs))
	}
}
