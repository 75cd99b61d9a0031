package jira

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/test/fakejira"
)

// BenchmarkEvaluateOverHTTP judges a change whose fields come from ten
// commits that all name one ticket, against the fake JIRA on loopback
// (Server/DC): what step 1 costs when every lookup is a real request. It
// reports the HTTP requests one decision makes.
func BenchmarkEvaluateOverHTTP(b *testing.B) {
	f := fakejira.New(b, fakejira.Options{Mode: fakejira.ModeServer})
	k := f.AddIssue(fakejira.Issue{Project: "OPS", Summary: "release", Status: "Approved", Labels: []string{"emergency-change"}})
	c := setupClientFor(b, f)
	cfg := policy.DefaultConfig()
	cfg.Jira = policy.JiraConfig{Required: true, Projects: []string{"OPS"}, Statuses: []string{"Approved"}, UnavailableTimeout: time.Minute}
	eng, err := policy.New(cfg, c)
	if err != nil {
		b.Fatal(err)
	}
	parse := func(extra string) *descriptors.Descriptor {
		d, err := descriptors.Parse("", []byte("service: payments\nversion: 1.4.1\ndomain: payments.example.com\nport: 8080\n"+extra))
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	good := parse("")
	fields := []string{"image: reg.example.com/payments:1", "maintainer: bob@example.com", "ports: [8080]", "resources: {cpu: '1'}",
		"notifications: {slack: ['#pay']}", "healthcheck: {endpoints: [/healthz]}", "x-a: 1", "x-b: 2", "x-c: 3"}
	req := parse("")
	attr := policy.Attribution{}
	extra := ""
	var last policy.Commit
	for i, fl := range fields {
		extra += fl + "\n"
		next := parse(extra)
		last = policy.Commit{SHA: fmt.Sprintf("%040d", i), Message: fmt.Sprintf("%s: step %d", k, i),
			Committer: policy.Identity{Email: "alice@example.com"}, Author: policy.Identity{Email: "alice@example.com"}}
		attr.Record(last, descriptors.Diff(req, next))
		req = next
	}
	ch := &policy.Change{Commit: last, LastGood: good, LastAttempted: good, Requested: req, Attribution: attr}
	ctx := context.Background()
	if v := eng.Evaluate(ctx, ch, time.Now()); v.Decision != policy.Allow || len(v.Commits) != len(fields) {
		b.Fatalf("decision %s %v, %d commits", v.Decision, v.Reasons, len(v.Commits))
	}
	before := f.Calls("GET /rest/api/2/issue/"+k) + f.Calls("GET /rest/servicedeskapi/request/"+k+"/approval")
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		eng.Evaluate(ctx, ch, time.Now())
		n++
	}
	after := f.Calls("GET /rest/api/2/issue/"+k) + f.Calls("GET /rest/servicedeskapi/request/"+k+"/approval")
	b.ReportMetric(float64(after-before)/float64(n), "requests/op")
}
