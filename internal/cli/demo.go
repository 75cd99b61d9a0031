package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
)

// demoStep is one commit to the qa branch of the demo's history.
type demoStep struct {
	who, msg string
	file     string // services/payments.yaml at this commit
}

const demoBase = `service: payments
version: %s
image: registry.example.com/payments:%s
domain: payments.qa.example.com
port: 8080
healthcheck: {endpoints: [/healthz], retries: 5, interval: 10s}
resources: {cpu: 500m, memory: 512Mi}
ports: [%s]
notifications: {emails: [payments-team@example.com], slack: ["#payments"]}
maintainer: alice@example.com
`

func demoFile(version, ports string) string {
	return fmt.Sprintf(demoBase, version, version, ports)
}

var demoSteps = []demoStep{
	{"alice@example.com", "Release payments 1.4.2", demoFile("1.4.2", "8080")},
	{"alice@example.com", "Bump to 1.4.3, docs only: skip deployment", demoFile("1.4.3", "8080")},
	{"mallory@contractor.example.net", "Open a debug port", demoFile("1.4.3", "8080, 22")},
	{"alice@example.com", "Release payments 1.5.0", demoFile("1.5.0", "8080, 22")},
	{"bob@platform.example.com", "Close the debug port", demoFile("1.5.0", "8080")},
	{"alice@example.com", "Roll back to 1.0.0 by hand", demoFile("1.0.0", "8080")},
	{"bob@platform.example.com", "Revert the rollback", demoFile("1.5.0", "8080")},
	{"bob@platform.example.com", "Reformat the file", strings.Replace(demoFile("1.5.0", "8080"), "resources: {cpu: 500m, memory: 512Mi}", "resources:\n  memory: 536870912   # same as 512Mi\n  cpu: 0.5", 1)},
	{"alice@example.com", "Release payments 1.6.0", demoFile("1.6.0", "8080")},
}

// runDemo replays a short history of one service on the qa branch through
// the policy engine and prints each verdict. It runs nothing: the daemon,
// which deploys, comes with a later release of gitmon.
func runDemo(ctx context.Context, s Streams, args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(s.Err, "usage: gitmon demo")
		return ExitUsage
	}
	cfg := policy.DefaultConfig()
	committers := []string{"alice@example.com", "*@platform.example.com"}
	ports := []string{"80", "443", "8000-8999"}
	cfg.Committers = &committers
	cfg.Changes.AllowedPorts = &ports
	cfg.Changes.MaxCPU = descriptors.MustParseQuantity("4")
	engine, err := policy.New(cfg, nil)
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon demo: %v\n", err)
		return ExitUsage
	}
	w := s.Out
	fmt.Fprintln(w, "gitmon demo: the policy engine on a short history of services/payments.yaml in qa.")
	fmt.Fprintln(w, "Nothing is deployed: this build has no daemon yet, so \"allow\" means \"the release would run\".")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "policy: committers %s · allowed_ports %s · max_cpu 4 · no downgrades\n", strings.Join(committers, ", "), strings.Join(ports, ", "))

	baseline, err := descriptors.Parse("services/payments.yaml", []byte(demoFile("1.4.1", "8080")))
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon demo: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintf(w, "baseline: payments %s is deployed (last good)\n\n", baseline.Version)

	lastGood, lastAttempted, prev := baseline, baseline, baseline
	attr := policy.Attribution{}
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for i, st := range demoSteps {
		id := policy.Identity{Name: strings.Split(st.who, "@")[0], Email: st.who}
		c := policy.Commit{SHA: fmt.Sprintf("%07x%033d", 0xc0ffee0+i*0x1111, i), Message: st.msg, Author: id, Committer: id}
		req, err := descriptors.Parse("services/payments.yaml", []byte(st.file))
		if err != nil {
			fmt.Fprintf(s.Err, "gitmon demo: %v\n", err)
			return ExitUsage
		}
		own := descriptors.Diff(prev, req)
		attr.Record(c, own)
		prev = req
		if len(own) == 0 {
			fmt.Fprintf(w, "%s  %-32s %q\n          no semantic change: no record\n\n", c.SHA[:7], st.who, st.msg)
			continue
		}
		v := engine.Evaluate(ctx, &policy.Change{
			Repository: "deployments", Environment: "qa", Service: "payments", Action: policy.ActionDeploy,
			Commit: c, LastGood: lastGood, LastAttempted: lastAttempted, Requested: req, Attribution: attr.Clone(),
		}, at)
		fmt.Fprintf(w, "%s  %-32s %q\n", c.SHA[:7], st.who, st.msg)
		fmt.Fprintf(w, "          %-7s %s\n", strings.ToUpper(string(v.Decision)), summarise(v.Diff))
		for _, r := range v.Reasons {
			fmt.Fprintf(w, "          reason  %s: %s\n", r.Rule, r.Message)
		}
		if v.Decision == policy.Allow {
			// In the daemon the release runs here; the demo assumes it succeeds.
			lastGood, lastAttempted = req, req
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "end: payments %s is last good in qa.\n", lastGood.Version)
	return ExitOK
}

func summarise(cs descriptors.Changes) string {
	if len(cs) == 0 {
		return "no change from last good"
	}
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		switch {
		case len(c.Added) > 0:
			parts = append(parts, fmt.Sprintf("%s +%s", c.Field, strings.Join(c.Added, ",")))
		case len(c.Removed) > 0:
			parts = append(parts, fmt.Sprintf("%s -%s", c.Field, strings.Join(c.Removed, ",")))
		default:
			parts = append(parts, fmt.Sprintf("%s %s → %s", c.Field, c.Old, c.New))
		}
	}
	return strings.Join(parts, "; ")
}
