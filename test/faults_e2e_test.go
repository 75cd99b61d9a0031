package test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/runners"
	"github.com/gitmon-dev/gitmon/test/fakejenkins"
	"github.com/gitmon-dev/gitmon/test/fakejira"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// fJenkinsExtra is the integrations block for a fake Jenkins.
func fJenkinsExtra(url string) string {
	return "integrations:\n  jenkins: {url: " + url + ", user_env: JENKINS_USER, token_env: JENKINS_TOKEN}\n"
}

// fJiraPolicy is a policy requiring an Approved JIRA ticket.
const fJiraPolicy = `  committers: ["*@example.com", "*@platform.example.com"]
  jira: {required: true, statuses: ["Approved"], unavailable_timeout: 3s}
`

// fJiraDaemon starts a daemon whose policy requires an Approved ticket on
// the given fake JIRA, on a repository with a payments baseline.
func fJiraDaemon(t *testing.T, jira *fakejira.Server) (*gitserver.Repo, *Daemon) {
	t.Helper()
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	url := gitserver.Daemon(t, repo)
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true, Policy: fJiraPolicy, Extra: "integrations:\n  jira: {url: " + jira.URL + ", user_env: JIRA_USER, token_env: JIRA_TOKEN}\n"})
	d.Env = append(d.Env, "JIRA_USER=gitmon", "JIRA_TOKEN=jira-token")
	d.Start()
	return repo, d
}

// fRecord returns the record of (qa, payments, sha), finished or not.
func fRecord(d *Daemon, sha string) (Record, bool) {
	for _, r := range d.Records() {
		if r.Environment == "qa" && r.Service == "payments" && r.Commit == sha {
			return r, true
		}
	}
	return Record{}, false
}

// fWaitPendingJira waits until the record of sha is pending with rule jira.
func fWaitPendingJira(t *testing.T, d *Daemon, sha string) Record {
	t.Helper()
	var rec Record
	d.Eventually(30*time.Second, "a pending record with rule jira", func() bool {
		r, ok := fRecord(d, sha)
		if !ok {
			return false
		}
		if r.FinishedAt != nil {
			t.Fatalf("record ended %s (%v) while JIRA was down; want pending", r.Status, r.Reasons)
		}
		rec = r
		return r.Status == "pending" && slices.Contains(r.Rules(), "jira")
	})
	return rec
}

// TestFault_JenkinsReattachAfterSIGKILL: a Jenkins stage running when
// gitmon is SIGKILLed is re-attached on restart, not triggered again.
func TestFault_JenkinsReattachAfterSIGKILL(t *testing.T) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	url := gitserver.Daemon(t, repo)

	jk := fakejenkins.New("gitmon", "jenkins-token")
	defer jk.Close()
	jk.AddJob("regression-suite", runners.JenkinsParameters...)
	// The runner polls every 2s: 4 build polls leave ample time to kill
	// gitmon while the build runs, and the remainder ends it after the
	// restart.
	jk.SetBuildPolls(4)
	jk.SetResult("SUCCESS")

	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Envs:      "  - {name: qa, branch: qa, release: [regression]}\n",
		Pipelines: "  regression: {runner: jenkins, job: regression-suite, timeout: 2m}\n",
		Extra:     fJenkinsExtra(jk.URL)})
	d.Env = append(d.Env, "JENKINS_USER=gitmon", "JENKINS_TOKEN=jenkins-token")
	d.Start()

	repo.WriteFile("services/payments.yaml", Descriptor("payments", "2.0.0"))
	sha := repo.Commit("qa", "Release payments 2.0.0", Alice, Alice)

	d.Eventually(60*time.Second, "the regression stage running with its build started", func() bool {
		bs := jk.Builds("regression-suite")
		if len(bs) != 1 || bs[0].Number == 0 || !bs[0].Building {
			return false
		}
		r, ok := fRecord(d, sha)
		return ok && len(r.Stages) == 1 && r.Stages[0].Status == "running"
	})
	d.Kill()
	if bs := jk.Builds("regression-suite"); !bs[0].Building {
		t.Fatalf("the build ended before gitmon was killed; the test lost its race: %+v", bs[0])
	}

	d.Start()
	rec := d.RecordFor("qa", "payments", sha)
	bs := jk.Builds("regression-suite")
	if len(bs) != 1 {
		t.Errorf("the fake saw %d builds, want exactly 1 (re-attached, not re-run): %+v", len(bs), bs)
	}
	if rec.Status != "succeeded" {
		t.Fatalf("record %s %v %+v, want succeeded\nlogs:\n%s", rec.Status, rec.Reasons, rec.Stages, d.Logs())
	}
	want := jk.URL + "/job/regression-suite/1/"
	if len(rec.Stages) != 1 || rec.Stages[0].Status != "succeeded" || rec.Stages[0].URL != want {
		t.Errorf("stages %+v, want one succeeded regression stage with url %s", rec.Stages, want)
	}
	if len(rec.Stages) == 1 && !strings.Contains(rec.Stages[0].Output, "reattached to build #1") {
		t.Errorf("the stage output does not show the re-attachment:\n%s", rec.Stages[0].Output)
	}
	triggers := 0
	for _, r := range jk.Requests() {
		if strings.HasPrefix(r, "POST ") && strings.Contains(r, "/buildWithParameters") {
			triggers++
		}
	}
	if triggers != 1 {
		t.Errorf("the job was triggered %d times, want 1", triggers)
	}
}

// TestFault_JiraOutageStaysPendingThenRejects: while JIRA can't be
// reached a record is pending (rule jira); after unavailable_timeout it
// is rejected; if JIRA comes back in time it deploys.
func TestFault_JiraOutageStaysPendingThenRejects(t *testing.T) {
	jira := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeServer, User: "gitmon", Token: "jira-token"})
	jira.AddIssue(fakejira.Issue{Key: "OPS-1", Status: "Approved", Summary: "bump"})
	repo, d := fJiraDaemon(t, jira)

	t.Run("timeout", func(t *testing.T) {
		jira.SetDown(true)
		repo.WriteFile("services/payments.yaml", Descriptor("payments", "2.0.0"))
		sha := repo.Commit("qa", "OPS-1: bump", Alice, Alice)
		fWaitPendingJira(t, d, sha)
		rec := d.RecordFor("qa", "payments", sha)
		if rec.Status != "rejected" || !slices.Contains(rec.Rules(), "jira") {
			t.Fatalf("record %s %v, want rejected with rule jira", rec.Status, rec.Reasons)
		}
		if waited := rec.FinishedAt.Sub(rec.CreatedAt); waited < 2500*time.Millisecond {
			t.Errorf("rejected after %s, before unavailable_timeout (3s)", waited)
		}
		if len(d.Deployed()) != 0 {
			t.Errorf("something deployed while JIRA was down: %v", d.Deployed())
		}
	})

	t.Run("recovers", func(t *testing.T) {
		jira.SetDown(true)
		repo.WriteFile("services/payments.yaml", Descriptor("payments", "3.0.0"))
		sha := repo.Commit("qa", "OPS-1: bump again", Alice, Alice)
		fWaitPendingJira(t, d, sha)
		jira.SetDown(false)
		rec := d.RecordFor("qa", "payments", sha)
		if rec.Status != "succeeded" {
			t.Fatalf("record %s %v, want succeeded once JIRA was back", rec.Status, rec.Reasons)
		}
		if dep := d.Deployed(); len(dep) != 1 || !strings.HasPrefix(dep[0], "payments 3.0.0 deploy") {
			t.Errorf("deployed %v, want only payments 3.0.0", dep)
		}
	})

	t.Run("failing_500", func(t *testing.T) {
		jira.Fail(500, "/rest/api/2/issue")
		defer jira.Fail(0, "")
		repo.WriteFile("services/payments.yaml", Descriptor("payments", "4.0.0"))
		sha := repo.Commit("qa", "OPS-1: bump once more", Alice, Alice)
		fWaitPendingJira(t, d, sha)
		rec := d.RecordFor("qa", "payments", sha)
		if rec.Status != "rejected" || !slices.Contains(rec.Rules(), "jira") {
			t.Fatalf("record %s %v, want rejected with rule jira", rec.Status, rec.Reasons)
		}
	})
}

// TestFault_JiraApprovedTicketGate: only a commit naming a ticket in an
// allowed status deploys.
func TestFault_JiraApprovedTicketGate(t *testing.T) {
	jira := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeServer, User: "gitmon", Token: "jira-token"})
	jira.AddIssue(fakejira.Issue{Key: "OPS-1", Status: "Approved", Summary: "approved"})
	jira.AddIssue(fakejira.Issue{Key: "OPS-2", Status: "In Progress", Summary: "in progress"})
	repo, d := fJiraDaemon(t, jira)

	repo.WriteFile("services/payments.yaml", Descriptor("payments", "2.0.0"))
	sha := repo.Commit("qa", "OPS-2: bump", Alice, Alice)
	rec := d.RecordFor("qa", "payments", sha)
	if rec.Status != "rejected" || !slices.Contains(rec.Rules(), "jira") {
		t.Errorf("OPS-2 (In Progress): record %s %v, want rejected with rule jira", rec.Status, rec.Reasons)
	}

	repo.WriteFile("services/payments.yaml", Descriptor("payments", "3.0.0"))
	sha = repo.Commit("qa", "OPS-1: bump", Alice, Alice)
	rec = d.RecordFor("qa", "payments", sha)
	if rec.Status != "succeeded" {
		t.Errorf("OPS-1 (Approved): record %s %v, want succeeded", rec.Status, rec.Reasons)
	}
	if !slices.Contains(rec.Tickets, "OPS-1") {
		t.Errorf("tickets %v, want OPS-1", rec.Tickets)
	}

	repo.WriteFile("services/payments.yaml", Descriptor("payments", "4.0.0"))
	sha = repo.Commit("qa", "bump without a ticket", Alice, Alice)
	rec = d.RecordFor("qa", "payments", sha)
	if rec.Status != "rejected" || !slices.Contains(rec.Rules(), "jira") {
		t.Errorf("no ticket: record %s %v, want rejected with rule jira", rec.Status, rec.Reasons)
	}
	if dep := d.Deployed(); len(dep) != 1 || !strings.HasPrefix(dep[0], "payments 3.0.0 deploy") {
		t.Errorf("deployed %v, want only payments 3.0.0", dep)
	}
}

// TestFault_CanarySecretsNowhere: secrets a failing deploy script prints
// reach no log, record, event, Slack post, JIRA issue or state file.
func TestFault_CanarySecretsNowhere(t *testing.T) {
	const (
		jenkinsCanary = "jenkins-canary-7f3a9c"
		jiraCanary    = "jira-canary-51e0b2"
		slackCanary   = "xoxb-slack-canary-9d4e11"
	)
	canaries := []string{jenkinsCanary, jiraCanary, slackCanary}

	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0",
		"notifications: {slack: ['#payments']}", "maintainer: alice@example.com"))
	repo.Commit("qa", "baseline", Alice, Alice)
	url := gitserver.Daemon(t, repo)

	posts, slackURL := startSlack(t)
	jira := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeCloud, User: "gitmon@example.com", Token: jiraCanary})
	jira.AddUser(fakejira.User{AccountID: "acc-alice", Email: "alice@example.com", DisplayName: "Alice"})
	jk := fakejenkins.New("gitmon", jenkinsCanary)
	defer jk.Close()
	jk.AddJob("regression-suite", runners.JenkinsParameters...)

	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Pipelines: "  deploy: {runner: exec, command: [./deploy.sh], timeout: 30s, env: [JENKINS_TOKEN, JIRA_TOKEN, SLACK_TOKEN]}\n" +
			"  regression: {runner: jenkins, job: regression-suite, timeout: 2m}\n",
		Extra: `integrations:
  slack: {token_env: SLACK_TOKEN, channel: "#deployments", api_url: "` + slackURL + `"}
  jenkins: {url: ` + jk.URL + `, user_env: JENKINS_USER, token_env: JENKINS_TOKEN}
  jira:
    url: ` + jira.URL + `
    user_env: JIRA_USER
    token_env: JIRA_TOKEN
    failure_tickets: {project: OPS, issue_type: Bug}
`})
	d.Env = append(d.Env, "SLACK_TOKEN="+slackCanary, "JIRA_USER=gitmon@example.com", "JIRA_TOKEN="+jiraCanary,
		"JENKINS_USER=gitmon", "JENKINS_TOKEN="+jenkinsCanary)
	d.Script("deploy.sh", `#!/bin/sh
echo "jenkins=$JENKINS_TOKEN"
echo "jira=$JIRA_TOKEN" >&2
echo "slack=$SLACK_TOKEN"
echo "all: $JENKINS_TOKEN $JIRA_TOKEN $SLACK_TOKEN"
exit 3
`)
	d.Start()

	repo.WriteFile("services/payments.yaml", Descriptor("payments", "2.0.0",
		"notifications: {slack: ['#payments']}", "maintainer: alice@example.com"))
	sha := repo.Commit("qa", "Release payments 2.0.0", Alice, Alice)
	rec := d.RecordFor("qa", "payments", sha)
	if rec.Status != "failed" {
		t.Fatalf("record %s %v, want failed", rec.Status, rec.Reasons)
	}
	if len(rec.Stages) == 0 {
		t.Fatalf("the failed record has no stage")
	}
	for _, w := range []string{"jenkins=<redacted>", "jira=<redacted>", "slack=<redacted>"} {
		if !strings.Contains(rec.Stages[0].Output, w) {
			t.Errorf("the stage output lacks %q:\n%s", w, rec.Stages[0].Output)
		}
	}

	d.Eventually(30*time.Second, "a JIRA failure ticket", func() bool { return len(jira.CreatedIssues()) > 0 })
	d.Eventually(30*time.Second, "started and finished Slack posts", func() bool { return len(posts.all()) >= 2 })

	check := func(where, s string) {
		t.Helper()
		for _, c := range canaries {
			if strings.Contains(s, c) {
				t.Errorf("canary %s leaked into %s", c, where)
			}
		}
	}
	hist := d.Gitmon("history", "--config", d.Config, "--json")
	check("history --json", hist.stdout+hist.stderr)
	evs := d.Gitmon("history", "--config", d.Config, "--events", "--json")
	check("history --events --json", evs.stdout+evs.stderr)
	for _, p := range posts.all() {
		check("a Slack post", p["text"]+p["blocks"])
	}
	for _, is := range jira.Issues() {
		check("JIRA issue "+is.Key, is.Summary+is.Description+strings.Join(is.Labels, ",")+strings.Join(is.Comments, "\n"))
	}

	d.Stop()
	check("the daemon's logs", d.Logs())
	state := filepath.Join(d.Dir, "state")
	n := 0
	err := filepath.WalkDir(state, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		check("state file "+p, string(b))
		return nil
	})
	if err != nil || n == 0 {
		t.Errorf("reading the state folder: %v (%d files)", err, n)
	}
}
