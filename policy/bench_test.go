package policy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/policy/policytest"
	"github.com/robfig/cron/v3"
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

var stateSink policy.WindowState
var timeSink time.Time

// BenchmarkWindowsAt measures At for the SPEC §3 windows (work hours in
// Rome and a winter freeze) at instants that are open, outside the allow
// window, and inside the freeze, and for a deny that stays open back to
// back (which walks until its budget is spent). The baselines, run in
// the same process, are a time.Now().In(loc) and one cron Next call.
func BenchmarkWindowsAt(b *testing.B) {
	typical := []policy.Window{
		{Kind: policy.WindowAllow, Schedule: "0 9 * * 1-5", Duration: 8 * time.Hour, Timezone: "Europe/Rome"},
		{Kind: policy.WindowDeny, Schedule: "0 0 20 12 *", Duration: 408 * time.Hour, Timezone: "UTC"},
	}
	loc, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("baseline=now-in-zone", func(b *testing.B) {
		for b.Loop() {
			timeSink = time.Now().In(loc)
		}
	})
	sched, err := cron.ParseStandard("0 9 * * 1-5")
	if err != nil {
		b.Fatal(err)
	}
	sched.(*cron.SpecSchedule).Location = loc
	b.Run("baseline=cron-next", func(b *testing.B) {
		at := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
		for b.Loop() {
			timeSink = sched.Next(at)
		}
	})
	cases := []struct {
		name    string
		windows []policy.Window
		at      string
	}{
		{"open", typical, "2026-12-04T10:00:00Z"},
		{"outside-allow", typical, "2026-12-04T20:00:00Z"},
		{"weekend", typical, "2026-12-05T12:00:00Z"},
		{"in-freeze", typical, "2026-12-25T10:00:00Z"},
		{"back-to-back-deny", []policy.Window{{Kind: policy.WindowDeny, Schedule: "* * * * *", Duration: time.Minute}}, "2026-12-04T10:00:00Z"},
		{"overlapping-daily-deny", []policy.Window{{Kind: policy.WindowDeny, Schedule: "0 9 * * *", Duration: 25 * time.Hour, Timezone: "Europe/Rome"}}, "2026-12-04T10:00:00Z"},
	}
	for _, c := range cases {
		ws, ps := policy.CompileWindows(c.windows)
		if ps != nil {
			b.Fatal(ps)
		}
		at, err := time.Parse(time.RFC3339, c.at)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				stateSink = ws.At(at)
			}
		})
	}
}
