package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/policy/policytest"
)

// FuzzEvaluate feeds arbitrary commit messages, identities and requested
// descriptors to the engine: it must never panic, and its verdicts must
// keep their invariants.
func FuzzEvaluate(f *testing.F) {
	f.Add("OPS-1: bump", "alice@example.com", "bob@platform.example.com", []byte(base))
	f.Add("skip deployment", "", "x@y", []byte("service: x\nversion: latest\nports: [22]\n"))
	f.Add("OPS-99999 [SKIP DEPLOY]", "ALICE@EXAMPLE.COM", "@", []byte("service: payments\nversion: 0.0.1\nhealthcheck: {endpoints: ['http://[fe80::1]:80/']}\n"))
	tickets := policytest.NewTickets(policy.Ticket{Key: "OPS-1", Status: "Approved"})
	e := engine(f, func(c *policy.Config) {
		c.Jira = policy.JiraConfig{Required: true, Projects: []string{"OPS"}, Statuses: []string{"Approved"}, UnavailableTimeout: time.Minute}
		c.Changes.AllowedPorts = list("80", "443", "8000-8999")
		c.Changes.MaxCPU = descriptors.MustParseQuantity("4")
		c.Changes.HealthcheckHosts = list("*.example.com")
		c.EmailDomains = list("example.com")
	}, tickets)
	good := desc(f)
	f.Fuzz(func(t *testing.T, msg, author, committer string, requested []byte) {
		req, err := descriptors.Parse("", requested)
		if err != nil {
			return
		}
		other := policy.Commit{SHA: "ffffffffffffffffffffffffffffffffffffffff", Message: msg, Author: policy.Identity{Email: author}, Committer: policy.Identity{Email: committer}}
		me := commit("a1", "alice@example.com", msg)
		attr := policy.Attribution{}
		attr.Record(other, descriptors.Diff(good, req))
		ch := &policy.Change{Commit: me, LastGood: good, LastAttempted: good, Requested: req, Attribution: attr}
		if descriptors.Equal(good, req) != (len(descriptors.Diff(good, req)) == 0) {
			t.Fatalf("Equal and Diff disagree: %v", descriptors.Diff(good, req))
		}
		v := e.Evaluate(context.Background(), ch, now)
		switch v.Decision {
		case policy.Allow:
			if len(v.Reasons) != 0 {
				t.Fatalf("allow with reasons %v", v.Reasons)
			}
		case policy.Reject, policy.Skip, policy.Pending:
			if len(v.Reasons) == 0 {
				t.Fatalf("%s without a reason", v.Decision)
			}
		default:
			t.Fatalf("unknown decision %q", v.Decision)
		}
		if v.Emails == nil || v.Slack == nil || v.Tickets == nil || v.Commits == nil {
			t.Fatal("nil list in a verdict")
		}
	})
}
