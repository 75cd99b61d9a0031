package app

import (
	"context"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// fakeGates is the gate's state, by hand: qa's records of the artifact
// and its last good.
type fakeGates struct {
	upstream []*store.Record
	lastGood *descriptors.Descriptor
}

func (f fakeGates) Artifact(context.Context, string, string, string, string) ([]*store.Record, error) {
	return f.upstream, nil
}
func (f fakeGates) Service(_ context.Context, repo, env, service string) (store.Service, error) {
	return store.Service{Repository: repo, Environment: env, Service: service, LastGood: f.lastGood}, nil
}
func (fakeGates) Freezes(context.Context) ([]store.Freeze, error) { return nil, nil }

// TestAttackGateBaselineUpstream: pay 1.0.0 runs in qa from before gitmon
// (its baseline: succeeded and soaked, with no record). A later record of
// the same artifact there that was rejected (a port change by someone
// outside the allowlist) or is still running does not undo that: staging
// may take 1.0.0. A failure of it there does.
func TestAttackGateBaselineUpstream(t *testing.T) {
	cfg := policy.DefaultConfig()
	cfg.Promotion.Required, cfg.Promotion.Soak = true, time.Hour
	engine, err := policy.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := func(version string, port int) *descriptors.Descriptor {
		x := descriptors.New()
		x.Service, x.Version, x.Port = "pay", version, port
		return x
	}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	ch := &policy.Change{Repository: "deployments", Environment: "staging", Service: "pay", Action: policy.ActionDeploy,
		Commit: policy.Commit{SHA: "c0ffee"}, LastGood: d("0.9.0", 8080), Requested: d("1.0.0", 8080), Attribution: policy.Attribution{}}
	upRec := func(status string) *store.Record {
		r := &store.Record{ID: status, Action: "deploy", Status: status, Descriptor: d("1.0.0", 9999), CreatedAt: now}
		if store.Finished(status) {
			r.FinishedAt = &now
		}
		return r
	}
	for _, tc := range []struct {
		upstream string
		want     string // "" passes
	}{
		{"", ""}, {store.StatusRejected, ""}, {store.StatusSkipped, ""}, {store.StatusRunning, ""},
		{store.StatusFailed, store.StatusRejected},
	} {
		st := fakeGates{lastGood: d("1.0.0", 8080)}
		if tc.upstream != "" {
			st.upstream = []*store.Record{upRec(tc.upstream)}
		}
		g := &gate{repo: "deployments", env: "staging", from: "qa", engine: engine, state: st}
		res, err := g.check(context.Background(), ch, &store.Record{CreatedAt: now}, now)
		if err != nil {
			t.Fatal(err)
		}
		if res.status != tc.want {
			t.Errorf("qa's baseline 1.0.0 and a later record %q of it: staging %q %v; want %q", tc.upstream, res.status, res.reason, tc.want)
		}
	}
}
