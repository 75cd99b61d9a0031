package jira

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/test/fakejira"
)

const canary = "jira-token-canary-7f3a9c"

var modes = []fakejira.Mode{fakejira.ModeServer, fakejira.ModeCloud}

type env struct {
	f *fakejira.Server
	c *Client
}

func setup(t *testing.T, mode fakejira.Mode, deployment Deployment) env {
	t.Helper()
	f := fakejira.New(t, fakejira.Options{Mode: mode, ContextPath: "/jira", User: "gitmon-bot", Token: canary})
	c, err := New(config.Jira{
		URL:            f.URL,
		User:           config.NewSecret(f.User),
		Token:          config.NewSecret(f.Token),
		FailureTickets: &config.FailureTickets{Project: "OPS", IssueType: "Bug"},
	}, Options{Deployment: deployment, Timeout: 5 * time.Second,
		Now: func() time.Time { return time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	f.AddUser(fakejira.User{AccountID: "5b10a2844c20165700ede21g", Name: "alice", Email: "alice@example.com", DisplayName: "Alice"})
	f.AddUser(fakejira.User{AccountID: "5b10ac8d82e05b22cc7d4ef5", Name: "bob", Email: "bob@example.com", DisplayName: "Bob"})
	return env{f, c}
}

func forModes(t *testing.T, fn func(t *testing.T, e env)) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			t.Parallel()
			fn(t, setup(t, m, DeploymentAuto))
		})
	}
}

func noCanary(t *testing.T, err error) {
	t.Helper()
	if err != nil && (strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "Z2l0bW9uLWJvdDpqaXJh")) {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestTicketStatus(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		k := e.f.AddIssue(fakejira.Issue{Project: "PAY", Summary: "release", Status: "Approved"})
		var _ policy.TicketChecker = e.c
		got, err := e.c.Ticket(ctx, strings.ToLower(k))
		if err != nil {
			t.Fatal(err)
		}
		if got.Key != k || got.Status != "Approved" || len(got.Approvers) != 0 {
			t.Errorf("got %+v", got)
		}
		e.f.SetStatus(k, "Done")
		if got, _ := e.c.Ticket(ctx, k); got.Status != "Done" {
			t.Errorf("status %q after change", got.Status)
		}
	})
}

// TestTicketLabels: labels (fields.labels) come through as JIRA spells
// them, and every lookup asks JIRA afresh: a label added or removed
// while gitmon runs counts at the next lookup, since nothing is cached.
func TestTicketLabels(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		k := e.f.AddIssue(fakejira.Issue{Summary: "hotfix", Status: "Approved", Labels: []string{"team-pay", "Emergency-Change"}})
		got, err := e.c.Ticket(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Labels, []string{"team-pay", "Emergency-Change"}) {
			t.Errorf("labels = %q", got.Labels)
		}
		plain := e.f.AddIssue(fakejira.Issue{Summary: "plain"})
		if got, err := e.c.Ticket(ctx, plain); err != nil || got.Labels == nil || len(got.Labels) != 0 {
			t.Errorf("no labels: %#v, %v; want []", got.Labels, err)
		}

		e.f.AddLabel(plain, "sev1")
		if got, _ := e.c.Ticket(ctx, plain); !slices.Equal(got.Labels, []string{"sev1"}) {
			t.Errorf("after AddLabel: %q", got.Labels)
		}
		e.f.RemoveLabel(k, "Emergency-Change")
		if got, _ := e.c.Ticket(ctx, k); !slices.Equal(got.Labels, []string{"team-pay"}) {
			t.Errorf("after RemoveLabel: %q", got.Labels)
		}
		if n := e.f.Calls("GET /rest/api/2/issue/" + k); n != 2 {
			t.Errorf("%d issue reads of %s, want 2: one per lookup", n, k)
		}
	})
}

// TestTicketLabelsBounded: whatever a server sends, a ticket keeps at
// most 100 labels, none empty, repeated or longer than JIRA allows (255).
func TestTicketLabelsBounded(t *testing.T) {
	e := setup(t, fakejira.ModeCloud, DeploymentAuto)
	var many []string
	for i := range 500 {
		many = append(many, fmt.Sprintf("l%03d", i))
	}
	long := strings.Repeat("x", 256)
	k := e.f.AddIssue(fakejira.Issue{Summary: "flood"})
	e.f.SetLabels(k, append([]string{"", long, "l000", "l000", strings.Repeat("y", 255)}, many...)...)
	got, err := e.c.Ticket(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"l000", strings.Repeat("y", 255)}, many[1:99]...)
	if !slices.Equal(got.Labels, want) {
		t.Errorf("got %d labels %q...", len(got.Labels), got.Labels[:min(3, len(got.Labels))])
	}
}

func TestTicketNotFound(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		for _, key := range []string{"OPS-999", "not a key", "OPS-1/../../x"} {
			_, err := e.c.Ticket(context.Background(), key)
			if !errors.Is(err, policy.ErrTicketNotFound) || errors.Is(err, policy.ErrUnavailable) {
				t.Errorf("%s: err = %v, want ErrTicketNotFound", key, err)
			}
			noCanary(t, err)
		}
	})
}

func TestTicketUnavailable(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		k := e.f.AddIssue(fakejira.Issue{Summary: "x"})
		for _, code := range []int{500, 502, 503, 429} {
			e.f.Fail(code, "")
			_, err := e.c.Ticket(ctx, k)
			if !errors.Is(err, policy.ErrUnavailable) {
				t.Errorf("HTTP %d: err = %v, want ErrUnavailable", code, err)
			}
			noCanary(t, err)
		}
		// Approvals failing makes the check fail closed too.
		e.f.Fail(500, "/servicedeskapi/")
		if _, err := e.c.Ticket(ctx, k); !errors.Is(err, policy.ErrUnavailable) {
			t.Errorf("approvals 500: err = %v", err)
		}
		e.f.Fail(0, "")
		e.f.SetDown(true)
		_, err := e.c.Ticket(ctx, k)
		if !errors.Is(err, policy.ErrUnavailable) {
			t.Errorf("connection dropped: err = %v", err)
		}
		noCanary(t, err)
		e.f.SetDown(false)
		if _, err := e.c.Ticket(ctx, k); err != nil {
			t.Errorf("after recovery: %v", err)
		}
		e.f.Close()
		_, err = e.c.Ticket(ctx, k)
		if !errors.Is(err, policy.ErrUnavailable) {
			t.Errorf("server down: err = %v", err)
		}
		noCanary(t, err)
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := e.c.Ticket(ctx, k); !errors.Is(err, policy.ErrUnavailable) {
			t.Errorf("cancelled: err = %v", err)
		}
	})
}

func TestApprovalsFourEyes(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		k := e.f.AddIssue(fakejira.Issue{Summary: "change", Status: "Approved"})
		e.f.SetApprovals(k,
			fakejira.Approval{Name: "CAB", FinalDecision: "approved", Approvers: []fakejira.Approver{
				{Email: "Bob@example.com", Decision: "approved"},
				{Email: "carol@example.com", Decision: "pending"},
			}},
			fakejira.Approval{Name: "Security", FinalDecision: "pending", Approvers: []fakejira.Approver{
				{Email: "dave@example.com", Decision: "approved"},
			}},
		)
		got, err := e.c.Ticket(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Approvers) != 1 || got.Approvers[0] != "bob@example.com" {
			t.Fatalf("approvers = %v", got.Approvers)
		}
		if !FourEyes(got, "alice@example.com") {
			t.Error("bob approved alice's change: four eyes")
		}
		if FourEyes(got, "BOB@example.com") {
			t.Error("bob approved his own change: not four eyes")
		}
		if FourEyes(policy.Ticket{}, "alice@example.com") {
			t.Error("no approvers: not four eyes")
		}
		// Not a service desk request: no approvers, no error.
		k2 := e.f.AddIssue(fakejira.Issue{Summary: "plain"})
		if got, err := e.c.Ticket(ctx, k2); err != nil || got.Approvers != nil {
			t.Errorf("plain issue: %+v, %v", got, err)
		}
	})
}

func TestMatchesJQL(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		k := e.f.AddIssue(fakejira.Issue{Project: "PAY", Summary: "x", Status: "In Progress", Labels: []string{"prod-ok"}})
		for jql, want := range map[string]bool{
			`status = "In Progress"`:                        true,
			`labels = "prod-ok" AND statusCategory != Done`: true,
			`project in (OPS, PAY) AND status = Done`:       false,
			`status = Done OR labels = prod-ok`:             true,
		} {
			got, err := e.c.MatchesJQL(ctx, k, jql)
			if err != nil || got != want {
				t.Errorf("%s: %v, %v; want %v", jql, got, err, want)
			}
		}
		if _, err := e.c.MatchesJQL(ctx, k, `nosuchfield = 1`); err == nil {
			t.Error("bad JQL: no error")
		}
	})
}

func TestComment(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		k := e.f.AddIssue(fakejira.Issue{Summary: "x"})
		if err := e.c.Comment(ctx, k, "deployed 1.2.3 to prod"); err != nil {
			t.Fatal(err)
		}
		if c := e.f.Comments(k); len(c) != 1 || c[0] != "deployed 1.2.3 to prod" {
			t.Errorf("comments = %q", c)
		}
		err := e.c.Comment(ctx, "OPS-404", "x")
		if !errors.Is(err, policy.ErrTicketNotFound) {
			t.Errorf("missing issue: %v", err)
		}
	})
}

func TestFailureTicket(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		req := FailureTicketRequest{RecordID: "rec-1", Environment: "qa", Service: "payments",
			Description: "stage deploy failed\n--- output\nboom", Committer: "alice@example.com", Maintainer: "bob@example.com"}
		k1, created, err := e.c.FailureTicket(ctx, req)
		if err != nil || !created {
			t.Fatalf("first failure: %s %v %v", k1, created, err)
		}
		is, _ := e.f.Issue(k1)
		wantAssignee := "alice"
		if e.f.Mode() == fakejira.ModeCloud {
			wantAssignee = "5b10a2844c20165700ede21g"
		}
		if is.Project != "OPS" || is.IssueType != "Bug" || is.Assignee != wantAssignee ||
			!strings.Contains(is.Description, "boom") || !strings.Contains(is.Summary, "payments") {
			t.Errorf("created %+v", is)
		}
		for _, l := range []string{"gitmon", FailureLabel("qa", "payments"), RecordLabel("rec-1")} {
			if !contains(is.Labels, l) {
				t.Errorf("label %q missing from %v", l, is.Labels)
			}
		}
		// Retrying the same record, even from a fresh client (restart).
		c2 := setupClientFor(t, e.f)
		for _, c := range []*Client{e.c, c2} {
			k, created, err := c.FailureTicket(ctx, req)
			if err != nil || created || k != k1 {
				t.Errorf("retry: %s %v %v", k, created, err)
			}
		}
		if n := len(e.f.CreatedIssues()); n != 1 || len(e.f.Comments(k1)) != 0 {
			t.Errorf("retry changed JIRA: %d issues, comments %q", n, e.f.Comments(k1))
		}
		// A second failure comments on the open ticket, once.
		req2 := req
		req2.RecordID = "rec-2"
		req2.Description = "healthcheck failed"
		for _, c := range []*Client{c2, e.c, c2} {
			k, created, err := c.FailureTicket(ctx, req2)
			if err != nil || created || k != k1 {
				t.Errorf("second failure: %s %v %v", k, created, err)
			}
		}
		if n := len(e.f.CreatedIssues()); n != 1 {
			t.Errorf("%d issues after the second failure", n)
		}
		if cm := e.f.Comments(k1); len(cm) != 1 || !strings.Contains(cm[0], "healthcheck failed") || !strings.Contains(cm[0], "rec-2") {
			t.Errorf("comments = %q", cm)
		}
		// Another service gets its own ticket.
		other := req
		other.RecordID, other.Service = "rec-3", "billing"
		k3, created, err := e.c.FailureTicket(ctx, other)
		if err != nil || !created || k3 == k1 {
			t.Errorf("other service: %s %v %v", k3, created, err)
		}
		// Success: note on the open ticket; none for a healthy service.
		if k, err := e.c.ResolveNote(ctx, "qa", "payments", ""); err != nil || k != k1 {
			t.Errorf("resolve: %s %v", k, err)
		}
		if cm := e.f.Comments(k1); len(cm) != 2 || !strings.Contains(cm[1], "succeeded again") {
			t.Errorf("comments after resolve = %q", cm)
		}
		if k, err := e.c.ResolveNote(ctx, "prod", "payments", ""); err != nil || k != "" {
			t.Errorf("resolve without ticket: %q %v", k, err)
		}
		cloudCalls, serverCalls := e.f.Calls("GET /rest/api/2/search/jql"), e.f.Calls("GET /rest/api/2/search")
		if (e.f.Mode() == fakejira.ModeCloud) != (cloudCalls > 0 && serverCalls == 0) || (cloudCalls == 0) == (serverCalls == 0) {
			t.Errorf("search calls: search/jql %d, search %d", cloudCalls, serverCalls)
		}
		// Once the ticket is closed, the next failure opens a new one.
		e.f.SetStatus(k1, "Done")
		req4 := req
		req4.RecordID = "rec-4"
		k4, created, err := c2.FailureTicket(ctx, req4)
		if err != nil || !created || k4 == k1 {
			t.Errorf("after close: %s %v %v", k4, created, err)
		}
	})
}

func TestFailureTicketAssigneeFallback(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		k, _, err := e.c.FailureTicket(ctx, FailureTicketRequest{RecordID: "r1", Environment: "qa", Service: "a",
			Committer: "stranger@elsewhere.org", Maintainer: "bob@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		is, _ := e.f.Issue(k)
		want := "bob"
		if e.f.Mode() == fakejira.ModeCloud {
			want = "5b10ac8d82e05b22cc7d4ef5"
		}
		if is.Assignee != want {
			t.Errorf("assignee %q, want the maintainer %q", is.Assignee, want)
		}
		k, _, err = e.c.FailureTicket(ctx, FailureTicketRequest{RecordID: "r2", Environment: "qa", Service: "b",
			Committer: "stranger@elsewhere.org"})
		if err != nil {
			t.Fatal(err)
		}
		if is, _ := e.f.Issue(k); is.Assignee != "" {
			t.Errorf("assignee %q, want none", is.Assignee)
		}
	})
}

func TestFailureTicketUnavailable(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		req := FailureTicketRequest{RecordID: "r1", Environment: "qa", Service: "a"}
		e.f.Fail(503, "/rest/api/2/issue")
		_, _, err := e.c.FailureTicket(ctx, req)
		if !errors.Is(err, policy.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
		noCanary(t, err)
		e.f.Fail(0, "")
		if _, created, err := e.c.FailureTicket(ctx, req); err != nil || !created {
			t.Fatalf("retry: %v %v", created, err)
		}
		if n := len(e.f.CreatedIssues()); n != 1 {
			t.Errorf("%d issues", n)
		}
	})
}

func TestDeploymentDetection(t *testing.T) {
	for _, m := range modes {
		e := setup(t, m, DeploymentAuto)
		d, err := e.c.Deployment(context.Background())
		want := DeploymentServer
		if m == fakejira.ModeCloud {
			want = DeploymentCloud
		}
		if err != nil || d != want {
			t.Errorf("%s: %s %v", m, d, err)
		}
	}
	// The wrong explicit deployment fails loudly rather than silently.
	e := setup(t, fakejira.ModeCloud, DeploymentServer)
	if _, err := e.c.MatchesJQL(context.Background(), "OPS-1", ""); err == nil {
		t.Error("Server search against Cloud: no error")
	}
}

func TestCanaryNeverInErrors(t *testing.T) {
	e := setup(t, fakejira.ModeCloud, DeploymentAuto)
	ctx := context.Background()
	bad, err := New(config.Jira{URL: e.f.URL, User: config.NewSecret("gitmon-bot"), Token: config.NewSecret(canary + "-wrong")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Ticket(ctx, "OPS-1")
	if err == nil || status(err) != 401 {
		t.Errorf("bad token: %v", err)
	}
	noCanary(t, err)
	for _, cfg := range []config.Jira{
		{URL: "ftp://x", Token: config.NewSecret(canary)},
		{URL: "https://gitmon-bot:" + canary + "@jira.example.com", Token: config.NewSecret(canary)},
		{URL: "https://jira.example.com"},
	} {
		_, err := New(cfg, Options{})
		if err == nil {
			t.Errorf("New(%s) accepted", cfg.URL)
		}
		noCanary(t, err)
	}
	// Whatever text an underlying error carries is scrubbed.
	got := e.c.fail("x", nil, errors.New("dial: boom "+canary))
	noCanary(t, got)
}

// TestRealOrFake runs read-only checks against GITMON_TEST_JIRA_URL when
// set (GITMON_TEST_JIRA_KEY names an existing issue), else the fake.
func TestRealOrFake(t *testing.T) {
	url, user, token, real := fakejira.FromEnv()
	key := ""
	if !real {
		f := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeCloud})
		url, user, token = f.URL, f.User, f.Token
		key = f.AddIssue(fakejira.Issue{Summary: "smoke"})
	} else {
		key = strings.TrimSpace(strings.ToUpper(os.Getenv("GITMON_TEST_JIRA_KEY")))
	}
	c, err := New(config.Jira{URL: url, User: config.NewSecret(user), Token: config.NewSecret(token)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Deployment(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.Ticket(ctx, "GITMONNOPE-987654")
	if !errors.Is(err, policy.ErrTicketNotFound) {
		t.Errorf("missing: %v", err)
	}
	if key != "" {
		tk, err := c.Ticket(ctx, key)
		if err != nil || tk.Status == "" {
			t.Errorf("%s: %+v %v", key, tk, err)
		}
		if ok, err := c.MatchesJQL(ctx, key, "statusCategory != Done OR statusCategory = Done"); err != nil || !ok {
			t.Errorf("jql: %v %v", ok, err)
		}
	}
}

func setupClientFor(t testing.TB, f *fakejira.Server) *Client {
	t.Helper()
	c, err := New(config.Jira{URL: f.URL, User: config.NewSecret(f.User), Token: config.NewSecret(f.Token),
		FailureTickets: &config.FailureTickets{Project: "OPS", IssueType: "Bug"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestErrorDetails: errors carry what the outbox needs to decide on a
// retry: the status, a Retry-After, the fields JIRA refused, and
// ErrInvalidRequest for a request that can never be sent.
func TestErrorDetails(t *testing.T) {
	forModes(t, func(t *testing.T, e env) {
		ctx := context.Background()
		k := e.f.AddIssue(fakejira.Issue{Summary: "x"})

		e.f.Fail(429, "/comment")
		err := e.c.Comment(ctx, k, "hello")
		var je *Error
		if !errors.As(err, &je) || je.Status != 429 || je.RetryAfter != time.Second || !errors.Is(err, policy.ErrUnavailable) {
			t.Errorf("429: %#v", err)
		}
		e.f.Fail(0, "")

		// The fake refuses an empty comment with a field error.
		err = e.c.Comment(ctx, k, "")
		if !errors.As(err, &je) || je.Status != 400 || !je.Field("comment") || je.Field("assignee") || je.RetryAfter != 0 {
			t.Errorf("empty comment: %#v", err)
		}
		if errors.Is(err, policy.ErrUnavailable) || errors.Is(err, ErrInvalidRequest) {
			t.Errorf("empty comment classified as %v", err)
		}

		if _, _, err := e.c.FailureTicket(ctx, FailureTicketRequest{}); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("empty failure ticket request: %v", err)
		}
		noProject, err := New(config.Jira{URL: e.f.URL, User: config.NewSecret(e.f.User), Token: config.NewSecret(e.f.Token)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = noProject.FailureTicket(ctx, FailureTicketRequest{RecordID: "r", Environment: "qa", Service: "a"})
		if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "failure_tickets.project") {
			t.Errorf("no project: %v", err)
		}
		if n := e.f.Calls("POST /rest/api/2/issue"); n != 0 {
			t.Errorf("%d issues created", n)
		}
	})
}

// TestErrorsRedactDaemonSecrets: Options.Secrets are redacted from errors
// like the client's own token.
func TestErrorsRedactDaemonSecrets(t *testing.T) {
	f := fakejira.New(t, fakejira.Options{})
	const other = "slack-token-canary-99"
	c, err := New(config.Jira{URL: f.URL, User: config.NewSecret(f.User), Token: config.NewSecret(f.Token)},
		Options{Secrets: []string{other}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.fail("x", nil, errors.New("dial: boom "+other)); strings.Contains(got.Error(), other) {
		t.Errorf("error leaks a daemon secret: %v", got)
	}
}
