package policy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/policy/policytest"
)

// TestCheckedEvidence: the verdict holds every ticket step 1 looked up,
// once each however many commits name it, as JIRA answered at the
// decision (SPEC §7 evidence.tickets), and JIRA is asked once per ticket.
func TestCheckedEvidence(t *testing.T) {
	good := desc(t)
	labels := []string{"emergency-change"}
	approvers := []string{"bob@platform.example.com"}
	tickets := policytest.NewTickets(
		policy.Ticket{Key: "OPS-1", Status: "Approved", Approvers: approvers, Labels: labels},
		policy.Ticket{Key: "OPS-2", Status: "In Progress"},
	)
	e := engine(t, func(c *policy.Config) {
		c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved", "In Progress"}, UnavailableTimeout: time.Minute}
	}, tickets)
	carol := commit("c3", "carol@platform.example.com", "OPS-1: open 9090 (and OPS-3)")
	dave := commit("d4", "dave@platform.example.com", "OPS-2, OPS-1: more memory")
	ch := &policy.Change{Commit: commit("a1", "alice@example.com", "OPS-1 bump"), LastGood: good, LastAttempted: good,
		Requested:   desc(t, "version: 1.4.2", "ports: [8080, 9090]", "resources: {cpu: 500m, memory: 1Gi}"),
		Attribution: policy.Attribution{"ports": {carol}, "resources.memory": {dave}}}
	v := e.Evaluate(context.Background(), ch, now)
	if v.Decision != policy.Reject || len(v.Reasons) != 1 || v.Reasons[0].Commit != carol.SHA {
		t.Fatalf("decision %s %v, want rejected for carol's missing OPS-3", v.Decision, v.Reasons)
	}
	want := []policy.CheckedTicket{
		{Ticket: policy.Ticket{Key: "OPS-1", Status: "Approved", Approvers: approvers, Labels: labels}, At: now},
		{Ticket: policy.Ticket{Key: "OPS-2", Status: "In Progress"}, At: now},
	}
	if fmt.Sprint(v.Checked) != fmt.Sprint(want) {
		t.Errorf("checked = %+v\nwant %+v", v.Checked, want)
	}
	if n := tickets.Calls(); n != 3 {
		t.Errorf("%d ticket lookups, want 3 (OPS-1, OPS-3, OPS-2 once each)", n)
	}

	// Evidence never changes afterwards, even if the checker's own data
	// does.
	labels[0], approvers[0] = "changed", "mallory@evil.example"
	if got := v.Checked[0]; got.Labels[0] != "emergency-change" || got.Approvers[0] != "bob@platform.example.com" {
		t.Errorf("evidence changed with the checker's data: %+v", got)
	}
}

func TestCheckedEvidenceEmpty(t *testing.T) {
	good := desc(t)
	ch := func(msg string) *policy.Change {
		return &policy.Change{Commit: commit("a1", "alice@example.com", msg), LastGood: good, LastAttempted: good,
			Requested: desc(t, "version: 1.4.2")}
	}
	jira := func(c *policy.Config) {
		c.Jira = policy.JiraConfig{Required: true, Statuses: []string{"Approved"}, UnavailableTimeout: time.Minute}
	}

	// A rule that asks nothing of tickets looks nothing up.
	tickets := policytest.NewTickets(policy.Ticket{Key: "OPS-1", Status: "Approved"})
	v := engine(t, nil, tickets).Evaluate(context.Background(), ch("OPS-1"), now)
	if v.Decision != policy.Allow || v.Checked == nil || len(v.Checked) != 0 || tickets.Calls() != 0 {
		t.Errorf("no jira rule: %s, checked %#v, %d lookups", v.Decision, v.Checked, tickets.Calls())
	}

	// JIRA down: nothing was seen.
	tickets.SetDown(true)
	v = engine(t, jira, tickets).Evaluate(context.Background(), ch("OPS-1"), now)
	if v.Decision != policy.Pending || v.Checked == nil || len(v.Checked) != 0 {
		t.Errorf("JIRA down: %s, checked %#v", v.Decision, v.Checked)
	}

	// A missing ticket is a reason, not evidence.
	tickets.SetDown(false)
	v = engine(t, jira, tickets).Evaluate(context.Background(), ch("OPS-404"), now)
	if v.Decision != policy.Reject || len(v.Checked) != 0 {
		t.Errorf("missing ticket: %s, checked %#v", v.Decision, v.Checked)
	}

	// A rejection before any lookup (no key) has empty evidence.
	v = engine(t, jira, tickets).Evaluate(context.Background(), ch("no key"), now)
	if v.Decision != policy.Reject || v.Checked == nil || len(v.Checked) != 0 {
		t.Errorf("no key: %s, checked %#v", v.Decision, v.Checked)
	}
}
