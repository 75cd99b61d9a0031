package app

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// BenchmarkGate is the promotion gate's cost per decision (SPEC §5 step 5)
// against an upstream environment holding n records of the service, one
// version each, the promoted one among them succeeded. The baseline in the
// same run is policy's steps 1-4 on the same change (policy-evaluate).
// The gate reads the upstream records of one version through an index, so
// its cost must not grow with n.
func BenchmarkGate(b *testing.B) {
	for _, n := range []int{10, 10000} {
		st, g, ch, rec := gateBenchRig(b, n)
		b.Run(fmt.Sprintf("upstream=%d", n), func(b *testing.B) {
			ctx := context.Background()
			now := time.Now()
			for b.Loop() {
				res, err := g.check(ctx, ch, rec, now)
				if err != nil || res.status != "" || res.upstream == nil {
					b.Fatalf("gate: %+v, %v", res, err)
				}
			}
		})
		if n == 10 {
			b.Run("policy-evaluate", func(b *testing.B) {
				ctx := context.Background()
				now := time.Now()
				for b.Loop() {
					if v := g.engine.Evaluate(ctx, ch, now); v.Decision != policy.Allow {
						b.Fatal(v.Reasons)
					}
				}
			})
		}
		st.Close()
	}
}

func gateBenchRig(b *testing.B, n int) (store.Store, *gate, *policy.Change, *store.Record) {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "state"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 500
	for i := 0; i < n; i += batch {
		var recs []*store.Record
		for j := i; j < min(i+batch, n); j++ {
			d := descriptors.New()
			d.Service, d.Version = "pay", fmt.Sprintf("1.%d.0", j)
			fin := t0.Add(time.Duration(j) * time.Minute)
			recs = append(recs, &store.Record{Repository: "deployments", Environment: "qa", Service: "pay", Action: "deploy",
				Version: d.Version, Commit: fmt.Sprintf("%040x", j), Status: store.StatusSucceeded, Descriptor: d,
				CreatedAt: fin, FinishedAt: &fin})
		}
		if err := st.Apply(ctx, store.Batch{Repository: "deployments", Environment: "qa", Branch: "qa",
			Commit: fmt.Sprintf("%040x", i), Records: recs}); err != nil {
			b.Fatal(err)
		}
	}
	cfg := policy.DefaultConfig()
	cfg.Promotion.Required, cfg.Promotion.From = true, "qa"
	engine, err := policy.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	last, req := descriptors.New(), descriptors.New()
	last.Service, last.Version = "pay", "1.0.0"
	req.Service, req.Version = "pay", fmt.Sprintf("1.%d.0", n/2) // somewhere in the history
	ch := &policy.Change{Repository: "deployments", Environment: "staging", Service: "pay", Action: policy.ActionDeploy,
		Commit: policy.Commit{SHA: fmt.Sprintf("%040x", n+1)}, LastGood: last, LastAttempted: last, Requested: req,
		Attribution: policy.Attribution{}}
	rec := &store.Record{CreatedAt: time.Now()}
	// As serve reads it: the freezes from its cache.
	return st, &gate{repo: "deployments", env: "staging", from: "qa", engine: engine, state: serveGates{st, &freezeCache{}}}, ch, rec
}
