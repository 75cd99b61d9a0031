package policy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/policy/policytest"
)

const base = `service: payments
version: 1.4.1
domain: payments.qa.example.com
port: 8080
healthcheck: {endpoints: [/healthz]}
resources: {cpu: 500m, memory: 512Mi}
ports: [8080]
notifications: {emails: [team@example.com], slack: ["#payments"]}
maintainer: alice@example.com
`

// desc parses base with the given top-level lines replaced or added.
func desc(t testing.TB, overrides ...string) *descriptors.Descriptor {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(base), "\n")
	for _, o := range overrides {
		key, _, _ := strings.Cut(o, ":")
		done := false
		for i, l := range lines {
			if strings.HasPrefix(l, key+":") {
				lines[i] = o
				done = true
			}
		}
		if !done {
			lines = append(lines, o)
		}
	}
	d, err := descriptors.Parse("", []byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("test descriptor: %v", err)
	}
	return d
}

func commit(sha, who, msg string) policy.Commit {
	id := policy.Identity{Name: strings.Split(who, "@")[0], Email: who}
	return policy.Commit{SHA: strings.Repeat(sha, 40/len(sha)), Message: msg, Author: id, Committer: id}
}

func list(s ...string) *[]string { return &s }

func engine(t testing.TB, mod func(*policy.Config), tickets policy.TicketChecker) *policy.Engine {
	t.Helper()
	cfg := policy.DefaultConfig()
	cfg.Committers = list("alice@example.com", "*@platform.example.com")
	if mod != nil {
		mod(&cfg)
	}
	e, err := policy.New(cfg, tickets)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestEvaluate(t *testing.T) {
	good := desc(t)
	alice := commit("a1", "alice@example.com", "bump payments")
	bob := commit("b2", "bob@platform.example.com", "bump payments")
	mallory := commit("c3", "mallory@evil.example", "innocent change")

	tests := []struct {
		name    string
		cfg     func(*policy.Config)
		tickets policy.TicketChecker
		change  policy.Change
		want    policy.Decision
		rules   []string // rules of the reasons, in order
		fields  []string // fields of the reasons, when set
	}{
		{
			name:   "allowed version bump",
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:   policy.Allow,
		},
		{
			name:   "first deployment has no last good",
			change: policy.Change{Commit: alice, Requested: desc(t, "version: 0.1.0")},
			want:   policy.Allow,
		},
		{
			name:   "committer glob matches case-insensitively",
			change: policy.Change{Commit: commit("d4", "Carol@Platform.Example.COM", "x"), LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.5.0")},
			want:   policy.Allow,
		},
		{
			name:   "committer not in allowlist",
			change: policy.Change{Commit: mallory, LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:   policy.Reject,
			rules:  []string{policy.RuleCommitters},
		},
		{
			name: "empty allowlist allows nobody",
			cfg:  func(c *policy.Config) { c.Committers = list() },
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good,
				Requested: desc(t, "version: 1.4.2")},
			want:  policy.Reject,
			rules: []string{policy.RuleCommitters},
		},
		{
			name:   "absent allowlist allows everyone",
			cfg:    func(c *policy.Config) { c.Committers = nil },
			change: policy.Change{Commit: mallory, LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:   policy.Allow,
		},
		{
			name: "identity author checks the author",
			cfg:  func(c *policy.Config) { c.Identity = policy.IdentityAuthor },
			change: policy.Change{Commit: policy.Commit{SHA: strings.Repeat("e", 40), Message: "x",
				Author: policy.Identity{Email: "mallory@evil.example"}, Committer: policy.Identity{Email: "alice@example.com"}},
				LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:  policy.Reject,
			rules: []string{policy.RuleCommitters},
		},
		{
			name: "ride-along: allowed commit carries a field from a rejected one",
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good,
				Requested:   desc(t, "version: 1.4.2", "ports: [8080, 22]"),
				Attribution: policy.Attribution{"version": {alice}, "ports": {mallory}}},
			want:   policy.Reject,
			rules:  []string{policy.RuleCommitters},
			fields: []string{"ports"},
		},
		{
			name: "ride-along ends once an allowed commit overwrites the field",
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good,
				Requested:   desc(t, "version: 1.4.2", "ports: [8080, 8443]"),
				Attribution: policy.Attribution{"version": {alice}, "ports": {bob}}},
			want: policy.Allow,
		},
		{
			name: "rejected field reverted to last good no longer counts",
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good,
				Requested:   desc(t, "version: 1.4.2"),
				Attribution: policy.Attribution{"version": {alice}, "ports": {mallory}}},
			want: policy.Allow,
		},
		{
			name:   "skip marker, any case",
			change: policy.Change{Commit: commit("f5", "alice@example.com", "WIP [Skip Deploy]"), LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:   policy.Skip,
			rules:  []string{policy.RuleSkip},
		},
		{
			name:   "identity is checked before the skip marker",
			change: policy.Change{Commit: commit("f6", "mallory@evil.example", "skip deployment"), LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:   policy.Reject,
			rules:  []string{policy.RuleCommitters},
		},
		{
			name:   "already in place",
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: desc(t, "version: 1.4.2"), Requested: desc(t, "version: 1.4.2", "resources: {cpu: 0.5, memory: 536870912}")},
			want:   policy.Skip,
			rules:  []string{policy.RuleUnchanged},
		},
		{
			name:   "revert after a failure runs",
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: desc(t, "version: 1.4.2"), Requested: desc(t)},
			want:   policy.Allow,
		},
		{
			name:   "skip marker comes before already in place",
			change: policy.Change{Commit: commit("f7", "alice@example.com", "skip deployment"), LastGood: good, LastAttempted: good, Requested: good},
			want:   policy.Skip,
			rules:  []string{policy.RuleSkip},
		},
		{
			name:   "downgrade",
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.3.9")},
			want:   policy.Reject,
			rules:  []string{policy.RuleDowngrade},
			fields: []string{"version"},
		},
		{
			name:   "1.10 is not a downgrade from 1.9",
			change: policy.Change{Commit: alice, LastGood: desc(t, "version: 1.9"), LastAttempted: desc(t, "version: 1.9"), Requested: desc(t, "version: 1.10")},
			want:   policy.Allow,
		},
		{
			name:   "incomparable versions count as a downgrade",
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "version: latest")},
			want:   policy.Reject,
			rules:  []string{policy.RuleDowngrade},
		},
		{
			name:   "allow_downgrade",
			cfg:    func(c *policy.Config) { c.Changes.AllowDowngrade = true },
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.0.0")},
			want:   policy.Allow,
		},
		{
			name:   "port outside allowed ranges",
			cfg:    func(c *policy.Config) { c.Changes.AllowedPorts = list("80", "443", "8000-8999") },
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "ports: [8080, 22]")},
			want:   policy.Reject,
			rules:  []string{policy.RulePorts},
			fields: []string{"ports"},
		},
		{
			name:   "ports inside allowed ranges",
			cfg:    func(c *policy.Config) { c.Changes.AllowedPorts = list("80", "443", "8000-8999") },
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "ports: [8080, 443, 8999]")},
			want:   policy.Allow,
		},
		{
			name:   "main port outside allowed ranges",
			cfg:    func(c *policy.Config) { c.Changes.AllowedPorts = list("8000-8999") },
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "port: 9090")},
			want:   policy.Reject,
			rules:  []string{policy.RulePorts},
			fields: []string{"port"},
		},
		{
			name:   "untouched fields are not judged",
			cfg:    func(c *policy.Config) { c.Changes.AllowedPorts = list("443") },
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:   policy.Allow,
		},
		{
			name: "cpu and memory over the max",
			cfg: func(c *policy.Config) {
				c.Changes.MaxCPU = descriptors.MustParseQuantity("4")
				c.Changes.MaxMemory = descriptors.MustParseQuantity("8Gi")
			},
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "resources: {cpu: 4500m, memory: 9Gi}")},
			want:   policy.Reject,
			rules:  []string{policy.RuleCPU, policy.RuleMemory},
		},
		{
			name: "cpu at the max is fine",
			cfg: func(c *policy.Config) {
				c.Changes.MaxCPU = descriptors.MustParseQuantity("4")
				c.Changes.MaxMemory = descriptors.MustParseQuantity("8Gi")
			},
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "resources: {cpu: 4000m, memory: 8589934592}")},
			want:   policy.Allow,
		},
		{
			name:   "delete not allowed",
			change: policy.Change{Action: policy.ActionRemove, Commit: alice, LastGood: good, LastAttempted: good},
			want:   policy.Reject,
			rules:  []string{policy.RuleDelete},
		},
		{
			name:   "delete allowed",
			cfg:    func(c *policy.Config) { c.Changes.AllowDelete = true },
			change: policy.Change{Action: policy.ActionRemove, Commit: alice, LastGood: good, LastAttempted: good},
			want:   policy.Allow,
		},
		{
			name:   "healthcheck host outside the allowlist",
			cfg:    func(c *policy.Config) { c.Changes.HealthcheckHosts = list("*.svc.example.com") },
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "healthcheck: {endpoints: [/healthz, 'https://metadata.example.net/x']}")},
			want:   policy.Reject,
			rules:  []string{policy.RuleHealthcheckHosts, policy.RuleHealthcheckHosts},
		},
		{
			name:   "link-local healthcheck host is never allowed",
			cfg:    func(c *policy.Config) { c.Changes.HealthcheckHosts = nil },
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "healthcheck: {endpoints: ['http://169.254.169.254/latest/meta-data']}")},
			want:   policy.Reject,
			rules:  []string{policy.RuleHealthcheckHosts},
		},
		{
			name:   "link-local IPv6 domain",
			change: policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "domain: fe80::1")},
			want:   policy.Reject,
			rules:  []string{policy.RuleHealthcheckHosts},
		},
		{
			name: "jira required, no key",
			cfg: func(c *policy.Config) {
				c.Jira = policy.JiraConfig{Required: true, Projects: []string{"OPS"}, Statuses: []string{"Approved"}, UnavailableTimeout: 10 * time.Minute}
			},
			tickets: policytest.NewTickets(),
			change:  policy.Change{Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:    policy.Reject,
			rules:   []string{policy.RuleJira},
		},
		{
			name: "jira key of another project does not count",
			cfg: func(c *policy.Config) {
				c.Jira = policy.JiraConfig{Required: true, Projects: []string{"OPS"}, Statuses: []string{"Approved"}, UnavailableTimeout: 10 * time.Minute}
			},
			tickets: policytest.NewTickets(policy.Ticket{Key: "PAY-1", Status: "Approved"}),
			change:  policy.Change{Commit: commit("a8", "alice@example.com", "PAY-1 bump"), LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:    policy.Reject,
			rules:   []string{policy.RuleJira},
		},
		{
			name: "jira approved ticket",
			cfg: func(c *policy.Config) {
				c.Jira = policy.JiraConfig{Required: true, Projects: []string{"OPS"}, Statuses: []string{"Approved"}, UnavailableTimeout: 10 * time.Minute}
			},
			tickets: policytest.NewTickets(policy.Ticket{Key: "OPS-12", Status: "approved"}),
			change:  policy.Change{Commit: commit("a9", "alice@example.com", "OPS-12: bump"), LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:    policy.Allow,
		},
		{
			name: "jira ticket in a wrong status",
			cfg: func(c *policy.Config) {
				c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved"}, UnavailableTimeout: 10 * time.Minute}
			},
			tickets: policytest.NewTickets(policy.Ticket{Key: "OPS-12", Status: "In Progress"}),
			change:  policy.Change{Commit: commit("aa", "alice@example.com", "OPS-12: bump"), LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:    policy.Reject,
			rules:   []string{policy.RuleJira},
		},
		{
			name: "jira ticket missing",
			cfg: func(c *policy.Config) {
				c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved"}, UnavailableTimeout: 10 * time.Minute}
			},
			tickets: policytest.NewTickets(),
			change:  policy.Change{Commit: commit("ab", "alice@example.com", "OPS-99: bump"), LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:    policy.Reject,
			rules:   []string{policy.RuleJira},
		},
		{
			name: "jira required without an integration fails closed",
			cfg: func(c *policy.Config) {
				c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved"}, UnavailableTimeout: 10 * time.Minute}
			},
			change: policy.Change{Commit: commit("ac", "alice@example.com", "OPS-1: bump"), LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")},
			want:   policy.Reject,
			rules:  []string{policy.RuleJira},
		},
		{
			name: "ride-along of a commit without a ticket",
			cfg: func(c *policy.Config) {
				c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved"}, UnavailableTimeout: 10 * time.Minute}
			},
			tickets: policytest.NewTickets(policy.Ticket{Key: "OPS-1", Status: "Approved"}),
			change: policy.Change{Commit: commit("ad", "alice@example.com", "OPS-1: bump"), LastGood: good, LastAttempted: good,
				Requested:   desc(t, "version: 1.4.2", "resources: {cpu: '2', memory: 512Mi}"),
				Attribution: policy.Attribution{"resources.cpu": {commit("ae", "bob@platform.example.com", "more cpu")}}},
			want:   policy.Reject,
			rules:  []string{policy.RuleJira},
			fields: []string{"resources.cpu"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := engine(t, tc.cfg, tc.tickets)
			v := e.Evaluate(context.Background(), &tc.change, now)
			if v.Decision != tc.want {
				t.Fatalf("decision = %s, want %s; reasons: %v", v.Decision, tc.want, v.Reasons)
			}
			var rules, fields []string
			for _, r := range v.Reasons {
				rules = append(rules, r.Rule)
				if r.Field != "" {
					fields = append(fields, r.Field)
				}
				if r.Message == "" {
					t.Errorf("reason %s has no message", r.Rule)
				}
			}
			if fmt.Sprint(rules) != fmt.Sprint(tc.rules) {
				t.Errorf("rules = %v, want %v; reasons: %v", rules, tc.rules, v.Reasons)
			}
			if tc.fields != nil && fmt.Sprint(fields) != fmt.Sprint(tc.fields) {
				t.Errorf("fields = %v, want %v", fields, tc.fields)
			}
			if tc.want == policy.Allow && len(v.Reasons) != 0 {
				t.Errorf("allowed with reasons %v", v.Reasons)
			}
		})
	}
}

func TestJiraApprovalAndJQL(t *testing.T) {
	good := desc(t)
	approved := func(mod func(*policy.JiraConfig)) func(*policy.Config) {
		return func(c *policy.Config) {
			c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved"}, UnavailableTimeout: time.Minute,
				Approval: policy.JiraApproval{Required: true, FourEyes: true}}
			if mod != nil {
				mod(&c.Jira)
			}
		}
	}
	tickets := policytest.NewTickets(
		policy.Ticket{Key: "OPS-1", Status: "Approved", Approvers: []string{"bob@platform.example.com"}},
		policy.Ticket{Key: "OPS-2", Status: "Approved", Approvers: []string{"ALICE@example.com"}},
		policy.Ticket{Key: "OPS-3", Status: "Approved"},
	)
	tickets.SetJQL("OPS-1", true)
	tests := []struct {
		name string
		cfg  func(*policy.Config)
		msg  string
		want policy.Decision
	}{
		{"approved by someone else", approved(nil), "OPS-1 bump", policy.Allow},
		{"approved only by the committer: four eyes", approved(nil), "OPS-2 bump", policy.Reject},
		{"four eyes off", approved(func(j *policy.JiraConfig) { j.Approval.FourEyes = false }), "OPS-2 bump", policy.Allow},
		{"not approved", approved(nil), "OPS-3 bump", policy.Reject},
		{"jql holds", approved(func(j *policy.JiraConfig) { j.JQL = "labels = release" }), "OPS-1 bump", policy.Allow},
		{"jql does not hold", approved(func(j *policy.JiraConfig) { j.Approval.Required = false; j.JQL = "labels = release" }), "OPS-3 bump", policy.Reject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := engine(t, tc.cfg, tickets)
			v := e.Evaluate(context.Background(), &policy.Change{Commit: commit("a1", "alice@example.com", tc.msg),
				LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")}, now)
			if v.Decision != tc.want {
				t.Fatalf("decision %s, want %s: %v", v.Decision, tc.want, v.Reasons)
			}
			if tc.want == policy.Reject && (len(v.Reasons) != 1 || v.Reasons[0].Rule != policy.RuleJira) {
				t.Errorf("reasons %v, want one jira reason", v.Reasons)
			}
		})
	}

	// A JQL condition with a checker that cannot evaluate JQL fails closed.
	plain := struct{ policy.TicketChecker }{tickets}
	e := engine(t, approved(func(j *policy.JiraConfig) { j.JQL = "labels = release" }), plain)
	v := e.Evaluate(context.Background(), &policy.Change{Commit: commit("a1", "alice@example.com", "OPS-1"),
		LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")}, now)
	if v.Decision != policy.Reject {
		t.Fatalf("JQL without a JQL-capable checker: %s, want reject", v.Decision)
	}
}

func TestRideAlongReasonNamesTheCommit(t *testing.T) {
	good := desc(t)
	mallory := commit("c3", "mallory@evil.example", "open ssh")
	alice := commit("a1", "alice@example.com", "bump")
	v := engine(t, nil, nil).Evaluate(context.Background(), &policy.Change{
		Commit: alice, LastGood: good, LastAttempted: good,
		Requested:   desc(t, "version: 1.4.2", "ports: [8080, 22]"),
		Attribution: policy.Attribution{"version": {alice}, "ports": {mallory}},
	}, now)
	if len(v.Reasons) != 1 || v.Reasons[0].Commit != mallory.SHA || v.Reasons[0].Field != "ports" {
		t.Fatalf("reasons = %+v, want one committers reason for %s on ports", v.Reasons, mallory.SHA)
	}
	want := []policy.Contribution{
		{Commit: mallory.SHA, Author: "mallory@evil.example", Committer: "mallory@evil.example", Fields: []string{"ports"}},
		{Commit: alice.SHA, Author: "alice@example.com", Committer: "alice@example.com", Fields: []string{"version"}},
	}
	if fmt.Sprint(v.Commits) != fmt.Sprint(want) {
		t.Errorf("commits = %+v\nwant %+v", v.Commits, want)
	}
}

func TestJiraOutageWaitsThenFailsClosed(t *testing.T) {
	tickets := policytest.NewTickets(policy.Ticket{Key: "OPS-7", Status: "Approved"})
	tickets.SetDown(true)
	e := engine(t, func(c *policy.Config) {
		c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved"}, UnavailableTimeout: 10 * time.Minute}
	}, tickets)
	good := desc(t)
	ch := policy.Change{Commit: commit("a1", "alice@example.com", "OPS-7 bump"), LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2")}

	v := e.Evaluate(context.Background(), &ch, now)
	if v.Decision != policy.Pending || v.Reasons[0].Rule != policy.RuleJira {
		t.Fatalf("first look while JIRA is down: %s %v, want pending (jira)", v.Decision, v.Reasons)
	}
	ch.PendingSince = now
	if v := e.Evaluate(context.Background(), &ch, now.Add(9*time.Minute)); v.Decision != policy.Pending {
		t.Fatalf("after 9m: %s, want still pending", v.Decision)
	}
	if v := e.Evaluate(context.Background(), &ch, now.Add(10*time.Minute)); v.Decision != policy.Reject || v.Reasons[0].Rule != policy.RuleJira {
		t.Fatalf("after 10m: %s %v, want rejected (jira)", v.Decision, v.Reasons)
	}
	tickets.SetDown(false)
	if v := e.Evaluate(context.Background(), &ch, now.Add(5*time.Minute)); v.Decision != policy.Allow {
		t.Fatalf("JIRA back: %s %v, want allow", v.Decision, v.Reasons)
	}
}

func TestDefiniteRejectionWinsOverPending(t *testing.T) {
	tickets := policytest.NewTickets()
	tickets.SetDown(true)
	e := engine(t, func(c *policy.Config) {
		c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved"}, UnavailableTimeout: time.Minute}
	}, tickets)
	good := desc(t)
	v := e.Evaluate(context.Background(), &policy.Change{Commit: commit("c3", "mallory@evil.example", "OPS-1"),
		LastGood: good, LastAttempted: good, Requested: desc(t, "version: 2.0.0")}, now)
	if v.Decision != policy.Reject {
		t.Fatalf("decision = %s, want reject: a committer failure needs no JIRA answer", v.Decision)
	}
}

func TestRecipients(t *testing.T) {
	good := desc(t)
	e := engine(t, func(c *policy.Config) { c.EmailDomains = list("example.com", "*.example.com") }, nil)
	req := desc(t, "version: 1.4.2", "notifications: {emails: [team@example.com, attacker@evil.example, ops@eu.example.com], slack: ['#payments', '#leak']}")

	v := e.Evaluate(context.Background(), &policy.Change{Commit: commit("a1", "alice@example.com", "x"), LastGood: good, LastAttempted: good, Requested: req}, now)
	if v.Decision != policy.Allow {
		t.Fatalf("decision %s %v", v.Decision, v.Reasons)
	}
	if got := fmt.Sprint(v.Emails); got != "[team@example.com ops@eu.example.com alice@example.com]" {
		t.Errorf("emails = %s", got)
	}
	if got := fmt.Sprint(v.Dropped); got != "[attacker@evil.example]" {
		t.Errorf("dropped = %s", got)
	}

	// A rejected change notifies the last good recipients, never the ones
	// it added.
	v = e.Evaluate(context.Background(), &policy.Change{Commit: commit("c3", "mallory@evil.example", "x"), LastGood: good, LastAttempted: good, Requested: req}, now)
	if v.Decision != policy.Reject {
		t.Fatalf("decision %s", v.Decision)
	}
	if got := fmt.Sprint(v.Emails, v.Slack); got != "[team@example.com alice@example.com] [#payments]" {
		t.Errorf("rejected recipients = %s", got)
	}
}

func TestAttributionRecord(t *testing.T) {
	v1 := desc(t)
	v2 := desc(t, "version: 1.4.2")
	v2again := desc(t, "version: 1.4.2", "# a comment only")
	v3 := desc(t, "version: 1.4.2", "ports: [8080, 9090]")
	c1, c2, c3 := commit("01", "alice@example.com", "1"), commit("02", "bob@platform.example.com", "2"), commit("03", "mallory@evil.example", "3")

	a := policy.Attribution{}
	a.Record(c1, descriptors.Diff(v1, v2))
	a.Record(c2, descriptors.Diff(v2, v2again)) // writes the same value again
	a.Record(c3, descriptors.Diff(v2again, v3))
	if a["version"][0].SHA != c1.SHA {
		t.Errorf("version attributed to %s, want %s (rewriting a value changes nothing)", a["version"][0].SHA, c1.SHA)
	}
	if a["ports"][0].SHA != c3.SHA {
		t.Errorf("ports attributed to %s, want %s", a["ports"][0].SHA, c3.SHA)
	}
}

// TestRepairDoesNotLaunderABrokenCommit: an outsider's change hidden in a
// descriptor that did not parse, repaired by an allowed committer, is
// attributed to both; the outsider's commit is rejected, field by field.
func TestRepairDoesNotLaunderABrokenCommit(t *testing.T) {
	e := engine(t, nil, nil)
	good := desc(t)
	repaired := desc(t, "image: evil.example/payments:1")
	outsider := commit("0b", "mallory@evil.example", "new image (and a duplicate key)")
	fixer := commit("0f", "alice@example.com", "fix the duplicate key")
	a := policy.Attribution{}
	a.RecordAll([]policy.Commit{outsider, fixer}, descriptors.Diff(good, repaired))
	v := e.Evaluate(context.Background(), &policy.Change{Service: "payments", Action: policy.ActionDeploy, Commit: fixer,
		LastGood: good, LastAttempted: good, Requested: repaired, Attribution: a}, time.Now())
	if v.Decision != policy.Reject {
		t.Fatalf("decision %s, want reject: %v", v.Decision, v.Reasons)
	}
	if len(v.Reasons) != 1 || v.Reasons[0].Commit != outsider.SHA || v.Reasons[0].Field != "image" || v.Reasons[0].Rule != policy.RuleCommitters {
		t.Errorf("reasons %v, want one committers reason naming %s and image", v.Reasons, outsider.SHA)
	}
	if len(v.Commits) != 2 {
		t.Errorf("contributions %+v, want the outsider's and the fixer's", v.Commits)
	}
}

func TestTicketKeys(t *testing.T) {
	tests := []struct {
		msg      string
		projects []string
		want     string
	}{
		{"OPS-12: fix", nil, "[OPS-12]"},
		{"OPS-12 and PAY-3, OPS-12 again", nil, "[OPS-12 PAY-3]"},
		{"OPS-12 and PAY-3", []string{"PAY"}, "[PAY-3]"},
		{"ops-12 lower case is not a key", nil, "[]"},
		{"XOPS-12 is another project", []string{"OPS"}, "[]"},
		{"OPS-0 is not a key", nil, "[]"},
		{"(OPS-44)", []string{"OPS"}, "[OPS-44]"},
	}
	for _, tc := range tests {
		if got := fmt.Sprint(policy.TicketKeys(tc.msg, tc.projects)); got != tc.want && !(got == "[]" && tc.want == "[]") {
			t.Errorf("TicketKeys(%q, %v) = %s, want %s", tc.msg, tc.projects, got, tc.want)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	cfg := policy.DefaultConfig()
	cfg.Identity = "root"
	cfg.ForcePush = "sometimes"
	cfg.Jira.Required = true
	cfg.Changes.AllowedPorts = list("80", "9000-8000", "http")
	cfg.Committers = list("[")
	ps := cfg.Check()
	var paths []string
	for _, p := range ps {
		paths = append(paths, p.Path)
	}
	want := "[identity force_push committers[0] jira.statuses changes.allowed_ports[1] changes.allowed_ports[2]]"
	if fmt.Sprint(paths) != want {
		t.Errorf("problems at %v, want %s", paths, want)
	}
	if _, err := policy.New(cfg, nil); err == nil {
		t.Error("New accepted an invalid config")
	}
}
