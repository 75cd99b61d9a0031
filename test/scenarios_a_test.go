package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// Scenarios A: end-to-end user journeys through a real `gitmon serve`
// watching a real Git server. Every test starts from a baseline: the
// descriptors are committed before the daemon starts, so its first sight
// runs nothing, and only the scenario's later commits make records.

// aCanary is a Git password that must never show in logs or records.
const aCanary = "s3cret-canary"

// aPath is the descriptor path of a service.
func aPath(service string) string { return "services/" + service + ".yaml" }

// aNewDaemon is NewDaemon (kept as the file's own entry point).
func aNewDaemon(t *testing.T, o ConfigOptions) *Daemon {
	t.Helper()
	return NewDaemon(t, o)
}

// aSetRepoKey adds key: value to the repository entry of d's config (the
// harness's ConfigOptions has no field for it).
func aSetRepoKey(t *testing.T, d *Daemon, key, value string) {
	t.Helper()
	b, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg, n := string(b), 0
	for _, ins := range []string{"    insecure: false\n", "    insecure: true\n"} {
		if i := strings.Index(cfg, ins); i >= 0 {
			cfg = cfg[:i+len(ins)] + fmt.Sprintf("    %s: %q\n", key, value) + cfg[i+len(ins):]
			n++
		}
	}
	if n != 1 {
		t.Fatalf("cannot find the repository entry in:\n%s", b)
	}
	if err := os.WriteFile(d.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// aStart starts d and checks that its first sight of qa was a baseline
// at base that ran nothing. A config serve would refuse fails at once
// (Start would wait for readiness until its timeout).
func aStart(t *testing.T, d *Daemon, base string) {
	t.Helper()
	if r := d.Gitmon("validate", "--config", d.Config); r.code != 0 {
		t.Fatalf("the test's config is invalid: %v", r)
	}
	d.Start() // ready = one successful poll, which took the baseline
	var found bool
	for _, e := range d.Events() {
		if e.Kind == "baseline" && e.Environment == "qa" && e.Commit == base {
			found = true
		}
	}
	if !found {
		t.Fatalf("no baseline event at %.10s: %+v", base, d.Events())
	}
	if recs := d.Records(); len(recs) != 0 {
		t.Fatalf("a baseline makes no records, got %d:\n%s", len(recs), aJSON(recs))
	}
	if lines := d.Deployed(); len(lines) != 0 {
		t.Fatalf("a baseline runs nothing, deployed.log has %q", lines)
	}
}

// aJSON renders v for failure messages.
func aJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// aDeployLine is the line DeployScript writes for one run.
func aDeployLine(service, version, action, commit string) string {
	return fmt.Sprintf("%s %s %s %s", service, version, action, commit)
}

// aWantDeployed checks that deployed.log holds exactly want, in order.
func aWantDeployed(t *testing.T, d *Daemon, want ...string) {
	t.Helper()
	if got := d.Deployed(); !slices.Equal(got, want) {
		t.Errorf("deployed.log:\n got %q\nwant %q", got, want)
	}
}

// aWantStatus checks a record's status and action, and prints it whole
// when they are wrong.
func aWantStatus(t *testing.T, r Record, status, action string) {
	t.Helper()
	if r.Status != status || r.Action != action {
		t.Fatalf("record of %s at %.10s: status %q action %q, want %q %q\n%s",
			r.Service, r.Commit, r.Status, r.Action, status, action, aJSON(r))
	}
}

// aWantReason checks that r has a reason with rule, and with commit and
// field when they are not empty.
func aWantReason(t *testing.T, r Record, rule, commit, field string) {
	t.Helper()
	for _, rs := range r.Reasons {
		if rs.Rule == rule && (commit == "" || rs.Commit == commit) && (field == "" || rs.Field == field) {
			if rs.Message == "" {
				t.Errorf("reason %s has no message", rule)
			}
			return
		}
	}
	t.Errorf("record of %s at %.10s has no reason {rule %s, commit %.10s, field %s}:\n%s",
		r.Service, r.Commit, rule, commit, field, aJSON(r.Reasons))
}

// aWantNoStages checks that nothing ran for a record decided by policy.
func aWantNoStages(t *testing.T, r Record) {
	t.Helper()
	if len(r.Stages) != 0 {
		t.Errorf("record %s ran stages: %s", r.Status, aJSON(r.Stages))
	}
}

// aWantStage checks stage i of a record.
func aWantStage(t *testing.T, r Record, i int, name, status string) {
	t.Helper()
	if len(r.Stages) <= i {
		t.Fatalf("record has %d stages, want stage %d %s:\n%s", len(r.Stages), i, name, aJSON(r))
	}
	st := r.Stages[i]
	if st.Name != name || st.Status != status || st.Runner != "exec" {
		t.Errorf("stage %d: %s/%s/%s, want %s/exec/%s", i, st.Name, st.Runner, st.Status, name, status)
	}
	if st.StartedAt == nil || st.FinishedAt == nil {
		t.Errorf("stage %s has no started_at or finished_at: %s", st.Name, aJSON(st))
	}
}

// aWantCommits checks a record's contributing commits: commit → fields.
func aWantCommits(t *testing.T, r Record, want map[string][]string) {
	t.Helper()
	got := map[string][]string{}
	for _, c := range r.Commits {
		got[c.Commit] = c.Fields
	}
	if len(got) != len(want) || len(r.Commits) != len(want) {
		t.Errorf("commits: got %s, want %v", aJSON(r.Commits), want)
		return
	}
	for sha, fields := range want {
		if !slices.Equal(slices.Sorted(slices.Values(got[sha])), slices.Sorted(slices.Values(fields))) {
			t.Errorf("commit %.10s contributed %v, want %v", sha, got[sha], fields)
		}
	}
}

// aEvent waits for an event of kind in qa that pick accepts.
func aEvent(d *Daemon, kind string, pick func(Event) bool) Event {
	var found Event
	d.Eventually(30*time.Second, "a "+kind+" event", func() bool {
		for _, e := range d.Events() {
			if e.Kind == kind && e.Environment == "qa" && (pick == nil || pick(e)) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// TestScenarioA_HTTPBasicAuthDeploy: users watch a repository over smart
// HTTP with a password read from the environment. A version bump deploys
// once, the record tells which commit changed which field and what was
// there before, and the password shows nowhere: not in the daemon's logs,
// not in records or events, not in a stage's environment or output.
func TestScenarioA_HTTPBasicAuthDeploy(t *testing.T) {
	repo := NewGitRepo(t)
	// gitmon refuses to send credentials over plain http:// (even with
	// insecure: true), so basic auth runs over HTTPS with a test CA.
	srv := gitserver.StartHTTPS(t, repo, "git", aCanary)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.4.1"))
	base := repo.Commit("qa", "payments 1.4.1", Alice, Alice)

	d := aNewDaemon(t, ConfigOptions{URL: srv.URL, Auth: "username_env: GIT_USER\npassword_env: GIT_TOKEN\n"})
	aSetRepoKey(t, d, "ca_file", srv.CAFile)
	d.Env = append(d.Env, "GIT_USER=git", "GIT_TOKEN="+aCanary)
	// The stage prints its whole environment: the password must not be in it.
	d.Script("deploy.sh", DeployScript+"env | sort\n")
	aStart(t, d, base)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.4.2"))
	bump := repo.Commit("qa", "payments 1.4.2", Alice, Alice)
	r := d.RecordFor("qa", "payments", bump)

	aWantStatus(t, r, "succeeded", "deploy")
	if r.Version != "1.4.2" || r.PreviousVersion != "1.4.1" {
		t.Errorf("version %q previous %q, want 1.4.2 after 1.4.1", r.Version, r.PreviousVersion)
	}
	if r.Repository != "deployments" || r.Author != "alice@example.com" || r.Committer != "alice@example.com" {
		t.Errorf("repository %q author %q committer %q", r.Repository, r.Author, r.Committer)
	}
	if len(r.Stages) != 1 {
		t.Fatalf("want one stage, got %s", aJSON(r.Stages))
	}
	aWantStage(t, r, 0, "deploy", "succeeded")
	aWantCommits(t, r, map[string][]string{bump: {"version"}})
	if len(r.Reasons) != 0 {
		t.Errorf("a succeeded record with reasons: %s", aJSON(r.Reasons))
	}
	if out := r.Stages[0].Output; !strings.Contains(out, "deploying payments 1.4.2") || !strings.Contains(out, "GITMON_SERVICE=payments") {
		t.Errorf("stage output lacks the script's output and environment:\n%s", out)
	}
	if strings.Contains(r.Stages[0].Output, "GIT_TOKEN") {
		t.Errorf("the stage's environment holds GIT_TOKEN:\n%s", r.Stages[0].Output)
	}
	aWantDeployed(t, d, aDeployLine("payments", "1.4.2", "deploy", bump))
	if srv.Requests.Load() == 0 {
		t.Errorf("the HTTP server saw no request")
	}

	for what, text := range map[string]string{
		"daemon logs":       d.Logs(),
		"history --json":    d.Gitmon("history", "--config", d.Config, "--json").stdout,
		"history":           d.Gitmon("history", "--config", d.Config).stdout,
		"history --events":  d.Gitmon("history", "--config", d.Config, "--events", "--json").stdout,
		"deployed.log":      strings.Join(d.Deployed(), "\n"),
		"state folder file": aGrepDir(t, filepath.Join(d.Dir, "state"), aCanary),
	} {
		if strings.Contains(text, aCanary) {
			t.Errorf("the password shows in %s", what)
		}
	}
}

// aGrepDir returns the names of the files under dir that contain s.
func aGrepDir(t *testing.T, dir, s string) string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			hits = append(hits, p+": "+s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(hits, "\n")
}

// TestScenarioA_SkipMarkerDefersChange: a commit with a skip marker
// deploys nothing, but its change is not lost: the next deployment of the
// service carries it, and the record credits both commits.
func TestScenarioA_SkipMarkerDefersChange(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	res := func(cpu string) string { return "resources: {cpu: " + cpu + ", memory: 512Mi}" }
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0", res("500m")))
	base := repo.Commit("qa", "payments 1.0.0", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0", res("500m")))
	skip := repo.Commit("qa", "bump (skip deployment)", Alice, Alice)
	r := d.RecordFor("qa", "payments", skip)
	aWantStatus(t, r, "skipped", "deploy")
	aWantReason(t, r, "skip", skip, "")
	aWantNoStages(t, r)
	aWantDeployed(t, d)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0", res("750m")))
	cpu := repo.Commit("qa", "more cpu for payments", Bob, Bob)
	r = d.RecordFor("qa", "payments", cpu)
	aWantStatus(t, r, "succeeded", "deploy")
	if r.Version != "1.1.0" || r.PreviousVersion != "1.0.0" {
		t.Errorf("version %q previous %q, want 1.1.0 after 1.0.0", r.Version, r.PreviousVersion)
	}
	aWantCommits(t, r, map[string][]string{skip: {"version"}, cpu: {"resources.cpu"}})
	aWantStage(t, r, 0, "deploy", "succeeded")
	aWantDeployed(t, d, aDeployLine("payments", "1.1.0", "deploy", cpu))
}

// TestScenarioA_UnlistedCommitterRejected: a commit by someone outside the
// committers allowlist deploys nothing, and the record says why.
func TestScenarioA_UnlistedCommitterRejected(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	base := repo.Commit("qa", "payments 1.0.0", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "6.6.6"))
	evil := repo.Commit("qa", "payments 6.6.6", Mallory, Mallory)
	r := d.RecordFor("qa", "payments", evil)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "committers", evil, "")
	aWantNoStages(t, r)
	if r.Committer != "mallory@evil.example.net" {
		t.Errorf("committer %q", r.Committer)
	}
	if r.FinishedAt == nil {
		t.Errorf("a rejected record has no finished_at")
	}
	aWantDeployed(t, d)
}

// TestScenarioA_RideAlongBlockedUntilOverwritten: a change that failed
// policy cannot reach the environment by riding along with a later,
// allowed commit; once an allowed committer takes it out, the service
// deploys again.
func TestScenarioA_RideAlongBlockedUntilOverwritten(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	base := repo.Commit("qa", "payments 1.0.0", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0", "ports: [22]"))
	evil := repo.Commit("qa", "open a port", Mallory, Mallory)
	r := d.RecordFor("qa", "payments", evil)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "committers", evil, "")

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0", "ports: [22]"))
	bump := repo.Commit("qa", "payments 1.1.0", Alice, Alice)
	r = d.RecordFor("qa", "payments", bump)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "committers", evil, "ports")
	for _, rs := range r.Reasons {
		if rs.Commit == bump {
			t.Errorf("Alice's own commit is blamed: %s", aJSON(rs))
		}
	}
	aWantCommits(t, r, map[string][]string{evil: {"ports"}, bump: {"version"}})
	aWantNoStages(t, r)
	aWantDeployed(t, d)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0"))
	fix := repo.Commit("qa", "close the port again", Bob, Bob)
	r = d.RecordFor("qa", "payments", fix)
	aWantStatus(t, r, "succeeded", "deploy")
	if r.Version != "1.1.0" || r.PreviousVersion != "1.0.0" {
		t.Errorf("version %q previous %q, want 1.1.0 after 1.0.0", r.Version, r.PreviousVersion)
	}
	aWantCommits(t, r, map[string][]string{bump: {"version"}})
	aWantDeployed(t, d, aDeployLine("payments", "1.1.0", "deploy", fix))
}

// TestScenarioA_FailedDeployThenRevert: a release that fails is recorded
// as failed at its stage, with the runner's message; reverting to the last
// good version then runs (it is not "unchanged": the environment may hold
// the broken version) and succeeds.
func TestScenarioA_FailedDeployThenRevert(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	base := repo.Commit("qa", "payments 1.0.0", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "2.0.0-bad"))
	bad := repo.Commit("qa", "payments 2.0.0-bad", Alice, Alice)
	r := d.RecordFor("qa", "payments", bad)
	aWantStatus(t, r, "failed", "deploy")
	aWantStage(t, r, 0, "deploy", "failed")
	if msg := r.Stages[0].Message; msg != "exit status 3" {
		t.Errorf("stage message %q, want %q", msg, "exit status 3")
	}
	if !strings.Contains(r.Stages[0].Output, "boom") {
		t.Errorf("stage output lacks the script's stderr: %q", r.Stages[0].Output)
	}

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	revert := repo.Commit("qa", "Revert payments 2.0.0-bad", Bob, Bob)
	r = d.RecordFor("qa", "payments", revert)
	aWantStatus(t, r, "succeeded", "deploy")
	if r.Version != "1.0.0" || r.PreviousVersion != "2.0.0-bad" {
		t.Errorf("version %q previous %q, want 1.0.0 after 2.0.0-bad", r.Version, r.PreviousVersion)
	}
	aWantStage(t, r, 0, "deploy", "succeeded")
	aWantDeployed(t, d,
		aDeployLine("payments", "2.0.0-bad", "deploy", bad),
		aDeployLine("payments", "1.0.0", "deploy", revert))
}

// aRewrite builds a commit on top of from without publishing it (through
// a local branch no environment watches), then force-pushes branch to it.
func aRewrite(repo *gitserver.Repo, branch, from, msg, ident string) string {
	repo.AutoPush = false
	defer func() { repo.AutoPush = true }()
	repo.Branch("a-rewrite", from)
	sha := repo.Commit("a-rewrite", msg, ident, ident)
	repo.ForcePush(branch, sha)
	return sha
}

// TestScenarioA_ForcePushPausesUntilResume: under the default
// force_push: reject, rewriting an environment branch pauses the
// environment: the rewrite is recorded with the commits it dropped, every
// record is rejected until an operator runs `gitmon resume`, which records
// who did it, and then deployments go on.
func TestScenarioA_ForcePushPausesUntilResume(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	base := repo.Commit("qa", "payments 1.0.0", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0"))
	c1 := repo.Commit("qa", "payments 1.1.0", Alice, Alice)
	aWantStatus(t, d.RecordFor("qa", "payments", c1), "succeeded", "deploy")

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.2.0"))
	x := aRewrite(repo, "qa", base, "payments 1.2.0, rewritten", Alice)
	ev := aEvent(d, "force_push", nil)
	if !slices.Contains(ev.Commits, c1) {
		t.Errorf("force_push event does not name the dropped commit %.10s: %s", c1, aJSON(ev))
	}
	if slices.Contains(ev.Commits, base) {
		t.Errorf("force_push event names the kept commit %.10s as dropped: %s", base, aJSON(ev))
	}
	r := d.RecordFor("qa", "payments", x)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "force_push", "", "")
	aWantNoStages(t, r)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.3.0"))
	c3 := repo.Commit("qa", "payments 1.3.0", Alice, Alice)
	r = d.RecordFor("qa", "payments", c3)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "force_push", "", "")
	aWantNoStages(t, r)

	res := d.Gitmon("resume", "--config", d.Config, "--env", "qa")
	if res.code != 0 {
		t.Fatalf("gitmon resume: %v", res)
	}
	ev = aEvent(d, "resume", nil)
	if ev.Actor == "" {
		t.Errorf("resume event names no actor: %s", aJSON(ev))
	} else if u, err := user.Current(); err == nil && !strings.Contains(ev.Actor, u.Username) {
		t.Errorf("resume event actor %q does not name the user %q", ev.Actor, u.Username)
	}

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.4.0"))
	c4 := repo.Commit("qa", "payments 1.4.0", Alice, Alice)
	r = d.RecordFor("qa", "payments", c4)
	aWantStatus(t, r, "succeeded", "deploy")
	if r.Version != "1.4.0" || r.PreviousVersion != "1.1.0" {
		t.Errorf("version %q previous %q, want 1.4.0 after 1.1.0", r.Version, r.PreviousVersion)
	}
	aWantCommits(t, r, map[string][]string{c4: {"version"}})
	aWantDeployed(t, d,
		aDeployLine("payments", "1.1.0", "deploy", c1),
		aDeployLine("payments", "1.4.0", "deploy", c4))
}

// TestScenarioA_ForcePushAllowDeploysRewrite: with force_push: allow, a
// rewritten history is followed from the merge base: its change deploys
// with no pause, and the rewrite is still recorded.
func TestScenarioA_ForcePushAllowDeploysRewrite(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	base := repo.Commit("qa", "payments 1.0.0", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Policy: "  force_push: allow\n  committers: [\"*@example.com\", \"*@platform.example.com\"]\n"})
	aStart(t, d, base)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0"))
	c1 := repo.Commit("qa", "payments 1.1.0", Alice, Alice)
	aWantStatus(t, d.RecordFor("qa", "payments", c1), "succeeded", "deploy")

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.2.0"))
	x := aRewrite(repo, "qa", base, "payments 1.2.0, rewritten", Bob)
	r := d.RecordFor("qa", "payments", x)
	aWantStatus(t, r, "succeeded", "deploy")
	if r.Version != "1.2.0" || r.PreviousVersion != "1.1.0" {
		t.Errorf("version %q previous %q, want 1.2.0 after 1.1.0", r.Version, r.PreviousVersion)
	}
	aWantCommits(t, r, map[string][]string{x: {"version"}})
	ev := aEvent(d, "force_push", nil)
	if !slices.Contains(ev.Commits, c1) {
		t.Errorf("force_push event does not name the dropped commit %.10s: %s", c1, aJSON(ev))
	}

	// Not paused: the next commit deploys too.
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.3.0"))
	c3 := repo.Commit("qa", "payments 1.3.0", Alice, Alice)
	aWantStatus(t, d.RecordFor("qa", "payments", c3), "succeeded", "deploy")
	aWantDeployed(t, d,
		aDeployLine("payments", "1.1.0", "deploy", c1),
		aDeployLine("payments", "1.2.0", "deploy", x),
		aDeployLine("payments", "1.3.0", "deploy", c3))
}

// TestScenarioA_DeleteRejectedByDefault: deleting a descriptor never
// removes a service unless the policy allows deletions.
func TestScenarioA_DeleteRejectedByDefault(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	repo.WriteFile(aPath("search"), Descriptor("search", "2.0.0"))
	base := repo.Commit("qa", "payments and search", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Envs: "  - {name: qa, branch: qa, release: [deploy], remove: [deploy]}\n"})
	aStart(t, d, base)

	repo.Remove(aPath("search"))
	del := repo.Commit("qa", "drop search", Alice, Alice)
	r := d.RecordFor("qa", "search", del)
	aWantStatus(t, r, "rejected", "remove")
	aWantReason(t, r, "delete", del, "")
	aWantNoStages(t, r)
	if r.Version != "2.0.0" {
		t.Errorf("a remove record's version is the last good one: %q, want 2.0.0", r.Version)
	}
	if recs := d.Records(); len(recs) != 1 {
		t.Errorf("want only the remove record, got:\n%s", aJSON(recs))
	}
	aWantDeployed(t, d)
}

// TestScenarioA_DeleteAllowedRunsRemovePipeline: with allow_delete,
// deleting a descriptor runs the environment's remove pipelines, with
// action remove.
func TestScenarioA_DeleteAllowedRunsRemovePipeline(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	repo.WriteFile(aPath("search"), Descriptor("search", "2.0.0"))
	base := repo.Commit("qa", "payments and search", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Envs:      "  - {name: qa, branch: qa, release: [deploy], remove: [undeploy]}\n",
		Pipelines: "  deploy: {runner: exec, command: [./deploy.sh], timeout: 30s}\n  undeploy: {runner: exec, command: [./undeploy.sh], timeout: 30s}\n",
		Policy:    "  committers: [\"*@example.com\", \"*@platform.example.com\"]\n  changes: {allow_delete: true}\n",
	})
	d.Script("deploy.sh", DeployScript)
	d.Script("undeploy.sh", "#!/bin/sh\necho \"$GITMON_SERVICE $GITMON_VERSION $GITMON_ACTION $GITMON_COMMIT $GITMON_STAGE\" >> undeployed.log\n"+
		strings.TrimPrefix(DeployScript, "#!/bin/sh\n"))
	aStart(t, d, base)

	repo.Remove(aPath("search"))
	del := repo.Commit("qa", "drop search", Alice, Alice)
	r := d.RecordFor("qa", "search", del)
	aWantStatus(t, r, "succeeded", "remove")
	if len(r.Stages) != 1 {
		t.Fatalf("want the one remove stage, got %s", aJSON(r.Stages))
	}
	aWantStage(t, r, 0, "undeploy", "succeeded")
	if r.Version != "2.0.0" {
		t.Errorf("a remove record's version is the last good one: %q, want 2.0.0", r.Version)
	}
	aWantDeployed(t, d, aDeployLine("search", "2.0.0", "remove", del))
	b, err := os.ReadFile(filepath.Join(d.Dir, "undeployed.log"))
	if want := aDeployLine("search", "2.0.0", "remove", del) + " undeploy\n"; err != nil || string(b) != want {
		t.Errorf("undeployed.log: %q (%v), want %q", b, err, want)
	}
	if recs := d.Records(); len(recs) != 1 {
		t.Errorf("want only the remove record, got:\n%s", aJSON(recs))
	}
}

// TestScenarioA_TwoServicesOneCommit: one commit changing two descriptors
// is a deployment request for each: two records, both deployed.
func TestScenarioA_TwoServicesOneCommit(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	repo.WriteFile(aPath("search"), Descriptor("search", "2.0.0"))
	base := repo.Commit("qa", "payments and search", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0"))
	repo.WriteFile(aPath("search"), Descriptor("search", "2.1.0"))
	c := repo.Commit("qa", "payments 1.1.0, search 2.1.0", Alice, Alice)
	for svc, v := range map[string][2]string{"payments": {"1.1.0", "1.0.0"}, "search": {"2.1.0", "2.0.0"}} {
		r := d.RecordFor("qa", svc, c)
		aWantStatus(t, r, "succeeded", "deploy")
		if r.Version != v[0] || r.PreviousVersion != v[1] {
			t.Errorf("%s: version %q previous %q, want %s after %s", svc, r.Version, r.PreviousVersion, v[0], v[1])
		}
		aWantCommits(t, r, map[string][]string{c: {"version"}})
	}
	got := d.Deployed()
	slices.Sort(got)
	want := []string{aDeployLine("payments", "1.1.0", "deploy", c), aDeployLine("search", "2.1.0", "deploy", c)}
	if !slices.Equal(got, want) {
		t.Errorf("deployed.log:\n got %q\nwant %q", got, want)
	}
	if recs := d.Records(); len(recs) != 2 {
		t.Errorf("want two records, got:\n%s", aJSON(recs))
	}
}

// aRecord waits until a record of (qa, service, commit) exists, finished
// or not, and returns it.
func aRecord(d *Daemon, service, commit string) Record {
	var found Record
	d.Eventually(30*time.Second, fmt.Sprintf("a record of %s at %.10s", service, commit), func() bool {
		for _, r := range d.Records() {
			if r.Environment == "qa" && r.Service == service && r.Commit == commit {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// TestScenarioA_RevertWhileBadQueued: a user who pushes a bad version and
// reverts it before its release started expects the environment to end on
// what the branch asks for, the reverted version: the queued bad release
// is superseded (or, at the least, the revert runs after it). The release
// slot is held by another service's release (concurrency 1) so that the
// bad record is still queued when the revert is judged.
func TestScenarioA_RevertWhileBadQueued(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("gate"), Descriptor("gate", "1.0.0"))
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	base := repo.Commit("qa", "gate and payments", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	b, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "\ntuning: {", "\ntuning: {concurrency: 1, ", 1)
	if err := os.WriteFile(d.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// gate's release holds the only slot until the test creates "open";
	// it gives up when gitmon (its parent) dies, so a failing test leaves
	// no loop behind.
	d.Script("deploy.sh", "#!/bin/sh\nif [ \"$GITMON_SERVICE\" = gate ]; then\n"+
		"  while [ ! -e open ]; do kill -0 $PPID 2>/dev/null || exit 1; sleep 0.05; done\nfi\n"+
		strings.TrimPrefix(DeployScript, "#!/bin/sh\n"))
	aStart(t, d, base)

	repo.WriteFile(aPath("gate"), Descriptor("gate", "1.1.0"))
	g := repo.Commit("qa", "gate 1.1.0", Alice, Alice)
	d.Eventually(30*time.Second, "gate's release running", func() bool {
		return aRecord(d, "gate", g).Status == "running"
	})
	repo.WriteFile(aPath("payments"), Descriptor("payments", "2.0.0-bad"))
	bad := repo.Commit("qa", "payments 2.0.0-bad", Alice, Alice)
	if r := aRecord(d, "payments", bad); r.Status != "pending" {
		t.Fatalf("the bad record should wait for the slot: %s", aJSON(r))
	}
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	revert := repo.Commit("qa", "Revert payments 2.0.0-bad", Alice, Alice)
	aRecord(d, "payments", revert)
	if err := os.WriteFile(filepath.Join(d.Dir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.RecordFor("qa", "gate", g)
	rb := d.RecordFor("qa", "payments", bad)
	rv := d.RecordFor("qa", "payments", revert)

	var last string
	for _, l := range d.Deployed() {
		if strings.HasPrefix(l, "payments ") {
			last = strings.Fields(l)[1]
		}
	}
	if last != "" && last != "1.0.0" {
		t.Errorf("the environment ends on payments %s, but the branch asks for 1.0.0 since the revert:\n"+
			"bad record (earlier commit): %s, started after the revert was judged\nrevert record (later commit): %s %v\ndeployed.log %q",
			last, rb.Status, rv.Status, rv.Reasons, d.Deployed())
	}
}
