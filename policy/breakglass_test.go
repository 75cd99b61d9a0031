package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/policy/policytest"
)

// breakGlassTickets are JIRA's tickets for the break-glass tests; alice
// commits, bob approves.
func breakGlassTickets() *policytest.Tickets {
	bob := []string{"bob@platform.example.com"}
	emergency := []string{"team-payments", "emergency-change"}
	f := policytest.NewTickets(
		policy.Ticket{Key: "OPS-1", Status: "Approved", Approvers: bob, Labels: emergency},
		policy.Ticket{Key: "OPS-2", Status: "Approved", Approvers: bob, Labels: []string{"Emergency-CHANGE"}},
		policy.Ticket{Key: "OPS-3", Status: "Approved", Approvers: bob, Labels: []string{"emergency", "change", "emergency-change-2"}},
		policy.Ticket{Key: "OPS-4", Status: "Approved", Approvers: bob},
		policy.Ticket{Key: "OPS-5", Status: "In Progress", Approvers: bob, Labels: emergency},
		policy.Ticket{Key: "OPS-6", Status: "Approved", Approvers: []string{"ALICE@example.com"}, Labels: emergency},
		policy.Ticket{Key: "OPS-8", Status: "Approved", Approvers: bob, Labels: emergency},
		policy.Ticket{Key: "OPS-9", Status: "Approved", Labels: emergency},
		policy.Ticket{Key: "PAY-1", Status: "Approved", Approvers: bob, Labels: emergency},
	)
	f.SetJQL("OPS-1", true)
	f.SetJQL("OPS-8", false)
	return f
}

// strictJira is a jira rule that asks everything of a ticket: a status,
// an approval with four eyes.
func strictJira(mod func(*policy.JiraConfig)) func(*policy.Config) {
	return func(c *policy.Config) {
		c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved"}, UnavailableTimeout: time.Minute,
			Approval: policy.JiraApproval{Required: true, FourEyes: true}}
		c.BreakGlass.JiraLabels = []string{"emergency-change", "sev1"}
		if mod != nil {
			mod(&c.Jira)
		}
	}
}

func TestBreakGlass(t *testing.T) {
	good := desc(t)
	change := func(msg string) *policy.Change {
		return &policy.Change{Commit: commit("a1", "alice@example.com", msg), LastGood: good, LastAttempted: good,
			Requested: desc(t, "version: 1.4.2")}
	}
	down := breakGlassTickets()
	down.SetDown(true)
	tests := []struct {
		name    string
		cfg     func(*policy.Config)
		tickets policy.TicketChecker // nil: breakGlassTickets()
		noJIRA  bool
		ch      *policy.Change
		want    string // the break-glass ticket; "" for none
	}{
		{name: "label present", cfg: strictJira(nil), ch: change("OPS-1 hotfix"), want: "OPS-1"},
		{name: "label in another case", cfg: strictJira(nil), ch: change("OPS-2 hotfix"), want: "OPS-2"},
		{name: "other labels only, none equal to a configured one", cfg: strictJira(nil), ch: change("OPS-3 hotfix")},
		{name: "no labels", cfg: strictJira(nil), ch: change("OPS-4 hotfix")},
		{name: "ticket rejected by status", cfg: strictJira(nil), ch: change("OPS-5 hotfix")},
		{name: "approved only by the committer under four eyes", cfg: strictJira(nil), ch: change("OPS-6 hotfix")},
		{name: "approved by the committer, four eyes off",
			cfg: strictJira(func(j *policy.JiraConfig) { j.Approval.FourEyes = false }), ch: change("OPS-6 hotfix"), want: "OPS-6"},
		{name: "not approved", cfg: strictJira(nil), ch: change("OPS-9 hotfix")},
		{name: "approval not required", cfg: strictJira(func(j *policy.JiraConfig) { j.Approval.Required = false }),
			ch: change("OPS-9 hotfix"), want: "OPS-9"},
		{name: "ticket not found", cfg: strictJira(nil), ch: change("OPS-7 hotfix")},
		{name: "JIRA down", cfg: strictJira(nil), tickets: down, ch: change("OPS-1 hotfix")},
		{name: "no ticket checker", cfg: strictJira(nil), noJIRA: true, ch: change("OPS-1 hotfix")},
		{name: "no labels configured", cfg: func(c *policy.Config) {
			strictJira(nil)(c)
			c.BreakGlass.JiraLabels = nil
		}, ch: change("OPS-1 hotfix")},
		{name: "JQL holds", cfg: strictJira(func(j *policy.JiraConfig) { j.JQL = "priority = Highest" }), ch: change("OPS-1 hotfix"), want: "OPS-1"},
		{name: "JQL does not hold", cfg: strictJira(func(j *policy.JiraConfig) { j.JQL = "priority = Highest" }), ch: change("OPS-8 hotfix")},
		{name: "JQL without a checker that can evaluate it",
			cfg:     strictJira(func(j *policy.JiraConfig) { j.JQL = "priority = Highest" }),
			tickets: struct{ policy.TicketChecker }{breakGlassTickets()}, ch: change("OPS-1 hotfix")},
		{name: "first ticket fails, the second breaks glass", cfg: strictJira(nil), ch: change("OPS-5, OPS-7 and OPS-1"), want: "OPS-1"},
		{name: "key of a project outside jira.projects",
			cfg: strictJira(func(j *policy.JiraConfig) { j.Projects = []string{"OPS"} }), ch: change("PAY-1 hotfix")},
		{name: "key of a listed project",
			cfg: strictJira(func(j *policy.JiraConfig) { j.Projects = []string{"PAY"} }), ch: change("PAY-1 hotfix"), want: "PAY-1"},
		{name: "not a key: lower case", cfg: strictJira(nil), ch: change("ops-1 hotfix")},
		{name: "no key at all", cfg: strictJira(nil), ch: change("hotfix")},
		{name: "rule requires nothing: the ticket exists", cfg: func(c *policy.Config) {
			c.BreakGlass.JiraLabels = []string{"emergency-change"}
		}, ch: change("OPS-5 hotfix"), want: "OPS-5"},
		{name: "rule requires nothing: a missing ticket", cfg: func(c *policy.Config) {
			c.BreakGlass.JiraLabels = []string{"emergency-change"}
		}, ch: change("OPS-7 hotfix")},
		{name: "a contributing commit's ticket does not count", cfg: strictJira(nil), ch: &policy.Change{
			Commit: commit("a1", "alice@example.com", "bump"), LastGood: good, LastAttempted: good,
			Requested: desc(t, "version: 1.4.2", "port: 8081"),
			Attribution: policy.Attribution{
				"port": {commit("b2", "carol@platform.example.com", "OPS-1 port")},
			}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tickets policy.TicketChecker = breakGlassTickets()
			if tc.tickets != nil {
				tickets = tc.tickets
			}
			if tc.noJIRA {
				tickets = nil
			}
			e := engine(t, tc.cfg, tickets)
			got, ok := e.BreakGlass(context.Background(), tc.ch, now)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("BreakGlass = %q, %v; want %q, %v", got, ok, tc.want, tc.want != "")
			}
		})
	}
}

// TestBreakGlassJudgesTicketsAsStepOne: a ticket carrying a break-glass
// label breaks glass exactly when step 1 lets its commit through, for
// every ticket and every jira rule that asks something of a ticket.
func TestBreakGlassJudgesTicketsAsStepOne(t *testing.T) {
	good := desc(t)
	rules := map[string]func(*policy.Config){
		"strict":         strictJira(nil),
		"four eyes off":  strictJira(func(j *policy.JiraConfig) { j.Approval.FourEyes = false }),
		"no approval":    strictJira(func(j *policy.JiraConfig) { j.Approval.Required = false }),
		"status only":    strictJira(func(j *policy.JiraConfig) { j.Required = false; j.Approval.Required = false }),
		"approval only":  strictJira(func(j *policy.JiraConfig) { j.Required = false; j.Statuses = nil }),
		"with JQL":       strictJira(func(j *policy.JiraConfig) { j.JQL = "priority = Highest" }),
		"other statuses": strictJira(func(j *policy.JiraConfig) { j.Statuses = []string{"In Progress"} }),
	}
	for name, rule := range rules {
		for _, key := range []string{"OPS-1", "OPS-5", "OPS-6", "OPS-7", "OPS-8", "OPS-9", "PAY-1"} {
			tickets := breakGlassTickets()
			// Every ticket carries the label here, so only the rule decides.
			if tk, err := tickets.Ticket(context.Background(), key); err == nil {
				tk.Labels = []string{"sev1"}
				tickets.Put(tk)
			}
			e := engine(t, rule, tickets)
			ch := &policy.Change{Commit: commit("a1", "alice@example.com", key+" hotfix"), LastGood: good, LastAttempted: good,
				Requested: desc(t, "version: 1.4.2")}
			v := e.Evaluate(context.Background(), ch, now)
			_, ok := e.BreakGlass(context.Background(), ch, now)
			if ok != (v.Decision == policy.Allow) {
				t.Errorf("%s, %s: break-glass %v, step 1 %s %v", name, key, ok, v.Decision, v.Reasons)
			}
		}
	}
}

// TestBreakGlassSeesTheTicketNow: each call asks JIRA again, so a label
// added after the record was decided counts, and one removed no longer
// does.
func TestBreakGlassSeesTheTicketNow(t *testing.T) {
	tickets := policytest.NewTickets(policy.Ticket{Key: "OPS-4", Status: "Approved", Approvers: []string{"bob@platform.example.com"}})
	e := engine(t, strictJira(nil), tickets)
	ch := &policy.Change{Commit: commit("a1", "alice@example.com", "OPS-4 hotfix"), Requested: desc(t)}
	if _, ok := e.BreakGlass(context.Background(), ch, now); ok {
		t.Fatal("break-glass without the label")
	}
	tickets.Put(policy.Ticket{Key: "OPS-4", Status: "Approved", Approvers: []string{"bob@platform.example.com"}, Labels: []string{"SEV1"}})
	if k, ok := e.BreakGlass(context.Background(), ch, now); !ok || k != "OPS-4" {
		t.Fatalf("label added: %q %v, want OPS-4", k, ok)
	}
	tickets.Put(policy.Ticket{Key: "OPS-4", Status: "Approved", Approvers: []string{"bob@platform.example.com"}, Labels: []string{}})
	if _, ok := e.BreakGlass(context.Background(), ch, now); ok {
		t.Fatal("break-glass after the label was removed")
	}
}
