package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
)

// noopRunner succeeds at once.
type noopRunner struct{}

func (noopRunner) Run(context.Context, *runners.Request, io.Writer, runners.Handle) (runners.Result, error) {
	return runners.Result{OK: true}, nil
}

// BenchmarkDrain queues n releases of one environment (a bulk commit of n
// services) with an in-process no-op runner, then measures how fast the
// daemon drains them, and how long a record of another environment,
// queued once the drain is under way, waits for its first stage. The
// baseline, in the same run, is the store alone: the writes of a release
// (start and end) made back to back, with no scheduler.
func BenchmarkDrain(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for range b.N {
				drainOnce(b, n)
			}
		})
	}
}

// BenchmarkReleaseAlone is the baseline of BenchmarkDrain: the same
// releases run one after the other by the releaser, with no scheduler.
func BenchmarkReleaseAlone(b *testing.B) {
	const n = 1000
	for range b.N {
		a, ids := drainApp(b, n)
		b.ResetTimer()
		start := time.Now()
		for _, id := range ids {
			if err := a.rel.Run(context.Background(), id); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "releases/s")
		b.StopTimer()
		a.store.Close()
	}
}

// drainApp is an App whose store holds n queued releases of qa.
func drainApp(b *testing.B, n int) (*App, []string) {
	dir := b.TempDir()
	cfgText := fmt.Sprintf(`state: %s
tuning: {concurrency: 8}
repositories:
  - {name: deployments, url: %q}
environments:
  - {name: qa, branch: qa, release: [deploy]}
  - {name: prod, branch: prod, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "state"), filepath.Join(dir, "unused.git"))
	cfg := testConfig(b, dir, cfgText)
	ctx := context.Background()
	a, err := New(ctx, cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Listener: localListener(b),
		Runners: map[string]runners.Runner{"deploy": noopRunner{}}})
	if err != nil {
		b.Fatal(err)
	}
	a.repos[0].git = newFakeGit()
	batch := store.Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: "c1"}
	for i := range n {
		batch.Records = append(batch.Records, &store.Record{Repository: "deployments", Environment: "qa",
			Service: fmt.Sprintf("s%05d", i), Action: "deploy", Version: "1.0.0", Commit: "c1",
			Status: store.StatusPending, Phase: store.PhaseQueued})
	}
	if err := a.store.Apply(ctx, batch); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i, r := range batch.Records {
		ids[i] = r.ID
	}
	return a, ids
}

func drainOnce(b *testing.B, n int) {
	ctx := context.Background()
	a, _ := drainApp(b, n)
	b.ResetTimer()
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	exited := make(chan error, 1)
	go func() { exited <- a.Run(runCtx) }()

	// Once a tenth has drained, a commit arrives in prod.
	waitEnded(b, a, "qa", n/10)
	prod := &store.Record{Repository: "deployments", Environment: "prod", Service: "s00000", Action: "deploy",
		Version: "1.0.0", Commit: "p1", Status: store.StatusPending, Phase: store.PhaseQueued}
	decided := time.Now()
	if err := a.store.Apply(ctx, store.Batch{Repository: "deployments", Environment: "prod", Branch: "prod", Commit: "p1",
		Records: []*store.Record{prod}}); err != nil {
		b.Fatal(err)
	}
	a.afterApply(ctx, store.Batch{Records: []*store.Record{prod}})
	var startedAfter time.Duration
	for {
		r, err := a.store.Record(ctx, prod.ID)
		if err != nil {
			b.Fatal(err)
		}
		if r.Status != store.StatusPending {
			startedAfter = time.Since(decided)
			break
		}
		time.Sleep(time.Millisecond)
	}
	waitEnded(b, a, "qa", n)
	elapsed := time.Since(start)
	cancel()
	<-exited
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "releases/s")
	b.ReportMetric(float64(startedAfter.Milliseconds()), "ms-other-env-start")
}

// waitEnded waits until at least n records of env have succeeded.
func waitEnded(b *testing.B, a *App, env string, n int) {
	deadline := time.Now().Add(20 * time.Minute)
	for testutil.ToFloat64(a.metrics.records.WithLabelValues(env, store.StatusSucceeded)) < float64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("fewer than %d ended after 20 minutes", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
