package test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/test/fakejira"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// slackPosts is a Slack API that records chat.postMessage calls.
type slackPosts struct {
	mu    sync.Mutex
	posts []map[string]string
	n     int
	// unknown channels answer channel_not_found.
	unknown map[string]bool
}

func (s *slackPosts) handler(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	if s.unknown[r.FormValue("channel")] {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	s.n++
	post := map[string]string{"channel": r.FormValue("channel"), "text": r.FormValue("text"),
		"thread_ts": r.FormValue("thread_ts"), "blocks": r.FormValue("blocks")}
	s.posts = append(s.posts, post)
	ts := time.Now().Format("150405") + "." + strings.Repeat("0", 5) + string(rune('0'+s.n%10))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": post["channel"], "ts": ts})
}

// startSlack serves a fake Slack API recording chat.postMessage; it
// returns the recorder and the API URL.
func startSlack(t *testing.T) (*slackPosts, string) {
	t.Helper()
	posts := &slackPosts{}
	sl := slacktest.NewTestServer(func(c slacktest.Customize) { c.Handle("/chat.postMessage", posts.handler) })
	sl.Start()
	t.Cleanup(sl.Stop)
	return posts, sl.GetAPIURL()
}

func (s *slackPosts) all() []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]string(nil), s.posts...)
}

// TestNotificationsOfAFailedRelease: a failing deploy is announced in
// Slack when it starts and, in the same thread, when it ends; a JIRA
// failure ticket assigned to the committer holds the failing stage; a
// canary secret reaches neither.
func TestNotificationsOfAFailedRelease(t *testing.T) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0",
		"notifications: {slack: ['#payments']}", "maintainer: alice@example.com"))
	repo.Commit("qa", "baseline", Alice, Alice)
	url := gitserver.Daemon(t, repo)

	posts, slackURL := startSlack(t)
	jira := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeCloud, User: "gitmon@example.com", Token: "jira-canary-token"})
	jira.AddUser(fakejira.User{AccountID: "acc-alice", Email: "alice@example.com", DisplayName: "Alice"})

	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true, Extra: `integrations:
  slack: {token_env: SLACK_TOKEN, channel: "#deployments", api_url: "` + slackURL + `"}
  jira:
    url: ` + jira.URL + `
    user_env: JIRA_USER
    token_env: JIRA_TOKEN
    failure_tickets: {project: OPS, issue_type: Bug}
`})
	d.Env = append(d.Env, "SLACK_TOKEN=xoxb-slack-canary", "JIRA_USER=gitmon@example.com", "JIRA_TOKEN=jira-canary-token")
	d.Script("deploy.sh", DeployScript+"echo \"leaking $SLACK_TOKEN\"\n")
	d.Start()

	repo.WriteFile("services/payments.yaml", Descriptor("payments", "2.0.0-bad",
		"notifications: {slack: ['#payments']}", "maintainer: alice@example.com"))
	sha := repo.Commit("qa", "Release payments 2.0.0", Alice, Alice)
	rec := d.RecordFor("qa", "payments", sha)
	if rec.Status != "failed" {
		t.Fatalf("record %s, want failed", rec.Status)
	}

	d.Eventually(30*time.Second, "a started and a finished post in #payments and #deployments", func() bool {
		n := 0
		for _, p := range posts.all() {
			if p["channel"] == "#payments" || p["channel"] == "#deployments" {
				n++
			}
		}
		return n >= 4
	})
	threads := 0
	for _, p := range posts.all() {
		if strings.Contains(p["text"]+p["blocks"], "xoxb-slack-canary") {
			t.Errorf("the Slack token leaked into a post: %v", p)
		}
		if p["thread_ts"] != "" {
			threads++
		}
	}
	if threads < 2 {
		t.Errorf("the finished posts are not threaded under the started ones: %v", posts.all())
	}

	var ticket fakejira.Issue
	d.Eventually(30*time.Second, "a JIRA failure ticket", func() bool {
		for _, is := range jira.CreatedIssues() {
			ticket = is
			return true
		}
		return false
	})
	if ticket.Project != "OPS" || ticket.Assignee != "acc-alice" {
		t.Errorf("ticket in %s assigned to %q, want OPS and acc-alice", ticket.Project, ticket.Assignee)
	}
	if !strings.Contains(ticket.Description, "deploy") || strings.Contains(ticket.Description, "xoxb-slack-canary") {
		t.Errorf("ticket description lacks the failing stage or leaks the token:\n%s", ticket.Description)
	}
	// The failure alert links to the ticket and mentions the maintainer.
	defer func() {
		if t.Failed() {
			for _, p := range posts.all() {
				t.Logf("post %s thread=%q text=%q", p["channel"], p["thread_ts"], p["text"])
			}

		}
	}()
	d.Eventually(30*time.Second, "a failure alert linking the JIRA ticket", func() bool {
		for _, p := range posts.all() {
			if p["thread_ts"] != "" && strings.Contains(p["text"], "/browse/"+ticket.Key) && strings.Contains(p["text"], "alice@example.com") {
				return true
			}
		}
		return false
	})
	for _, s := range []string{d.Logs()} {
		for _, canary := range []string{"xoxb-slack-canary", "jira-canary-token"} {
			if strings.Contains(s, canary) {
				t.Errorf("%s leaked into the logs", canary)
			}
		}
	}
}

// TestOutboxDeadLetterInTheDaemon: a service's Slack channel that does
// not exist makes its messages dead letters after one attempt each:
// logged once, counted in gitmon_outbox_dead_letters_total and in the
// store, while the other channel gets its messages.
func TestOutboxDeadLetterInTheDaemon(t *testing.T) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0", "notifications: {slack: ['#gone']}"))
	repo.Commit("qa", "baseline", Alice, Alice)
	url := gitserver.Daemon(t, repo)

	posts, slackURL := startSlack(t)
	posts.mu.Lock()
	posts.unknown = map[string]bool{"#gone": true}
	posts.mu.Unlock()
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true, Extra: `integrations:
  slack: {token_env: SLACK_TOKEN, channel: "#deployments", api_url: "` + slackURL + `"}
`})
	d.Env = append(d.Env, "SLACK_TOKEN=xoxb-slack-canary")
	d.Start()

	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.1.0", "notifications: {slack: ['#gone']}"))
	sha := repo.Commit("qa", "Release payments 1.1.0", Alice, Alice)
	if rec := d.RecordFor("qa", "payments", sha); rec.Status != "succeeded" {
		t.Fatalf("record %s, want succeeded", rec.Status)
	}
	// The started and the finished message to #gone die; both to
	// #deployments go out.
	d.Eventually(30*time.Second, "two dead letters counted", func() bool {
		return bMetric(d, "gitmon_outbox_dead_letters_total") == 2
	})
	d.Eventually(30*time.Second, "both posts in #deployments", func() bool {
		n := 0
		for _, p := range posts.all() {
			if p["channel"] == "#deployments" {
				n++
			}
		}
		return n == 2
	})
	logs := d.Logs()
	if n := strings.Count(logs, "outbox dead letter"); n != 2 || !strings.Contains(logs, "channel_not_found") {
		t.Errorf("%d dead-letter log lines:\n%s", n, logs)
	}
	if strings.Contains(logs, "xoxb-slack-canary") {
		t.Error("the Slack token leaked into the logs")
	}
	d.Stop()
	st, err := store.Open(context.Background(), filepath.Join(d.Dir, "state"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.DeadLetters(context.Background()); err != nil || n != 2 {
		t.Errorf("DeadLetters = %d, %v", n, err)
	}
}
