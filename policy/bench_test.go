package policy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/policy/policytest"
)

// BenchmarkEvaluate10Commits judges a change whose fields come from ten
// commits, with every rule switched on: allowlist, JIRA (in memory),
// ports, quotas, downgrade and healthcheck hosts. The goal is ≤ 20 µs.
func BenchmarkEvaluate10Commits(b *testing.B) {
	e := engine(b, func(c *policy.Config) {
		c.Jira = policy.JiraConfig{Required: true, Projects: []string{"OPS"}, Statuses: []string{"Approved"}, UnavailableTimeout: time.Minute}
		c.Changes.AllowedPorts = list("80", "443", "8000-8999")
		c.Changes.MaxCPU = descriptors.MustParseQuantity("4")
		c.Changes.MaxMemory = descriptors.MustParseQuantity("8Gi")
		c.Changes.HealthcheckHosts = list("*.example.com")
		c.EmailDomains = list("example.com")
	}, policytest.NewTickets(policy.Ticket{Key: "OPS-1", Status: "Approved"}))
	good := desc(b)
	steps := []string{"version: 1.4.2", "ports: [8080, 8443]", "resources: {cpu: '1', memory: 1Gi}", "domain: payments.eu.example.com",
		"healthcheck: {endpoints: [/healthz, /ready]}", "image: reg.example.com/payments:1.4.2", "maintainer: bob@example.com",
		"port: 8081", "notifications: {emails: [team@example.com], slack: ['#pay']}", "version: 1.5.0"}
	attr := policy.Attribution{}
	prev := good
	var overrides []string
	var last policy.Commit
	for i, s := range steps {
		overrides = append(overrides, s)
		next := desc(b, overrides...)
		last = commit(fmt.Sprintf("%02d", i), "alice@example.com", fmt.Sprintf("OPS-1: step %d", i))
		attr.Record(last, descriptors.Diff(prev, next))
		prev = next
	}
	ch := &policy.Change{Commit: last, LastGood: good, LastAttempted: desc(b), Requested: prev, Attribution: attr}
	ctx := context.Background()
	if v := e.Evaluate(ctx, ch, now); v.Decision != policy.Allow {
		b.Fatalf("decision %s %v", v.Decision, v.Reasons)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Evaluate(ctx, ch, now)
	}
}
