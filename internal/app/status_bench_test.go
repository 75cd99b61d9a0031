package app

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// BenchmarkStatus measures `gitmon status` (the report and its text) on a
// history of 10,000 and 100,000 records of 50 services in 3 environments, against
// the same run's `history --limit 100` (store.Records, Limit 100): status
// should cost about as much as reading one page of history, whatever the
// length of the history.
func BenchmarkStatus(b *testing.B) {
	for _, history := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("records=%d", history), func(b *testing.B) { benchStatus(b, history) })
	}
}

func benchStatus(b *testing.B, history int) {
	const (
		services = 50
		versions = 20
		batch    = 1000
	)
	r := newStatusRig(b)
	r.at = statusNow.Add(-time.Hour)
	ctx := context.Background()
	envs := []string{"qa", "staging", "prod"}
	descs := make([][]*descriptors.Descriptor, services)
	for s := range services {
		for v := range versions {
			descs[s] = append(descs[s], r.desc(fmt.Sprintf("svc-%02d", s), fmt.Sprintf("1.%d.0", v)))
		}
	}
	for e, env := range envs {
		var svcs []string
		for s := range services {
			svcs = append(svcs, fmt.Sprintf("svc-%02d=1.0.0", s))
		}
		r.baseline("deployments", env, 1_000_000+e, svcs...)
	}

	// The history: most records succeeded, some failed, rejected or
	// skipped, spread evenly over every service of every environment.
	statuses := []string{store.StatusSucceeded, store.StatusSucceeded, store.StatusSucceeded, store.StatusSucceeded,
		store.StatusSucceeded, store.StatusSucceeded, store.StatusSucceeded, store.StatusSucceeded,
		store.StatusFailed, store.StatusRejected}
	byEnv := map[string][]*store.Record{}
	flush := func(env string) {
		if len(byEnv[env]) == 0 {
			return
		}
		recs := byEnv[env]
		r.must(r.st.Apply(ctx, store.Batch{Repository: "deployments", Environment: env, Branch: env,
			Commit: recs[len(recs)-1].Commit, Records: recs}))
		byEnv[env] = nil
	}
	end := statusNow.Add(-2 * time.Hour)
	n := 0
	// Each service's newest release succeeded, and its next commit waits
	// at a gate (or, for every tenth service, runs). svc-00 has been quiet
	// since: its records are the oldest of all, under the whole history.
	final := func(s int) {
		for e, env := range envs {
			d := descs[s][0]
			good := r.record("deployments", env, d.Service, 2_000_000+e*services+s, d.Version, "")
			r.run(good, end, store.StatusSucceeded)
			next := descs[s][1]
			if s%10 == 0 {
				rec := r.record("deployments", env, d.Service, 3_000_000+e*services+s, next.Version, "")
				r.run(rec, statusNow.Add(-time.Minute), "")
			} else {
				r.record("deployments", env, d.Service, 3_000_000+e*services+s, next.Version, store.PhasePromotion,
					policy.Reason{Rule: policy.RulePromotion, Message: "waits for upstream", Field: "version"})
			}
			n += 2
		}
	}
	final(0)
	for i := 0; n < history-2*(services-1)*len(envs); i++ {
		env := envs[(i/services)%len(envs)]
		s := i % services
		if s == 0 {
			continue
		}
		d := descs[s][(i/(services*len(envs)))%versions]
		rec := &store.Record{Repository: "deployments", Environment: env, Service: d.Service, Action: "deploy",
			Version: d.Version, Commit: fmt.Sprintf("%040x", i), Author: "alice@example.com", Committer: "alice@example.com",
			Status: statuses[i%len(statuses)], Descriptor: d, Message: "bump", FinishedAt: &end,
			Reasons: []policy.Reason{}}
		byEnv[env] = append(byEnv[env], rec)
		if len(byEnv[env]) == batch {
			flush(env)
		}
		n++
	}
	for _, env := range envs {
		flush(env)
	}

	for s := 1; s < services; s++ {
		final(s)
	}
	rep := r.status("")
	for _, e := range rep.Environments {
		if len(e.Services) != services || len(e.Running) != services/10 || e.Services[0].DeployedAt == nil ||
			e.Services[1].DeployedAt == nil || len(e.Services[1].Waiting) != 1 {
			b.Fatalf("%s: %d services, %d running: the fixture is not what the benchmark measures", e.Name, len(e.Services), len(e.Running))
		}
	}

	var statusTime, historyTime time.Duration
	loops := 0
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		rep, err := Status(ctx, r.cfg, r.st, StatusOptions{Now: statusNow})
		if err != nil {
			b.Fatal(err)
		}
		if err := rep.WriteText(io.Discard); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := r.st.Records(ctx, store.Filter{Limit: 100}); err != nil {
			b.Fatal(err)
		}
		statusTime += t1.Sub(t0)
		historyTime += time.Since(t1)
		loops++
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(loops) / float64(time.Millisecond) }
	b.ReportMetric(float64(n), "records")
	b.ReportMetric(ms(statusTime), "status-ms")
	b.ReportMetric(ms(historyTime), "history100-ms")
	b.ReportMetric(float64(statusTime)/float64(historyTime), "status/history100")
}
