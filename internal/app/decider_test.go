package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/monitor"
	"github.com/gitmon-dev/gitmon/policy"
)

// fakeState is a deciderState held in memory.
type fakeState struct {
	svcs    map[string]store.Service
	claims  map[string][]string
	pending []*store.Record
}

func (f *fakeState) Service(_ context.Context, repo, env, service string) (store.Service, error) {
	if sv, ok := f.svcs[service]; ok {
		return sv, nil
	}
	return store.Service{Repository: repo, Environment: env, Service: service, Attribution: policy.Attribution{}}, nil
}
func (f *fakeState) Claims(_ context.Context, _, service string) ([]string, error) {
	return f.claims[service], nil
}
func (f *fakeState) Records(_ context.Context, flt store.Filter) ([]*store.Record, error) {
	var out []*store.Record
	for _, r := range f.pending {
		if r.Service == flt.Service {
			out = append(out, r)
		}
	}
	return out, nil
}

// deciderRig decides commits whose blobs are the descriptor texts
// themselves: a FileChange's NewBlob is the YAML.
type deciderRig struct {
	t     *testing.T
	d     *decider
	state *fakeState
	svcs  *services
	n     int
}

func newDeciderRig(t *testing.T, committers ...string) *deciderRig {
	cfg := policy.DefaultConfig()
	cfg.Committers = &committers
	e, err := policy.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeState{svcs: map[string]store.Service{}, claims: map[string][]string{}}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := &decider{repo: "deployments", env: "qa", glob: "services/*.yaml", engine: e, state: st,
		now: func() time.Time { return now },
		read: func(_ context.Context, file, blob string) (*descriptors.Descriptor, error) {
			return descriptors.Parse(file, []byte(blob))
		}}
	return &deciderRig{t: t, d: d, state: st, svcs: newServices("deployments", "qa", nil)}
}

// deployed makes svc's descriptor the last good and attempted.
func (r *deciderRig) deployed(yaml string) {
	r.t.Helper()
	d, err := descriptors.Parse("", []byte(yaml))
	if err != nil {
		r.t.Fatal(err)
	}
	sv := r.svcs.get(d.Service)
	sv.Current, sv.Present = d, true
	r.state.svcs[d.Service] = store.Service{Service: d.Service, LastGood: d, LastAttempted: d, Attribution: policy.Attribution{}}
}

func (r *deciderRig) commit(who, msg string, replay bool, files map[string]string) decision {
	r.t.Helper()
	r.n++
	email := who
	c := monitor.Commit{SHA: strings.Repeat(string(rune('0'+r.n%10)), 40), Message: msg}
	c.Author.Email, c.Committer.Email = email, email
	var changes []monitor.FileChange
	for svc, text := range files {
		changes = append(changes, monitor.FileChange{Path: "services/" + svc + ".yaml", NewBlob: text})
	}
	dec, err := r.d.commit(context.Background(), r.svcs, c, changes, "", replay)
	if err != nil {
		r.t.Fatal(err)
	}
	return dec
}

func TestDeciderRepairDoesNotLaunder(t *testing.T) {
	r := newDeciderRig(t, "alice@example.com")
	r.deployed("service: pay\nversion: 1.0.0\nimage: ok/pay:1\n")
	dec := r.commit("mallory@evil.example", "tidy", false, map[string]string{"pay": "service: pay\nversion: 1.0.0\nimage: evil/pay:1\nversion: 1.0.0\n"})
	if len(dec.records) != 1 || dec.records[0].Status != store.StatusRejected || dec.records[0].Reasons[0].Rule != policy.RuleDescriptor {
		t.Fatalf("broken commit: %+v", dec.records)
	}
	bad := dec.records[0].Commit
	dec = r.commit("alice@example.com", "fix", false, map[string]string{"pay": "service: pay\nversion: 1.0.0\nimage: evil/pay:1\n"})
	rec := dec.records[0]
	if rec.Status != store.StatusRejected || !hasReason(rec, policy.RuleCommitters, bad, "image") {
		t.Fatalf("repair: %s %+v, want rejected naming %.6s for image", rec.Status, rec.Reasons, bad)
	}
	// The outsider's image stays blocked while it is in the file.
	dec = r.commit("alice@example.com", "bump", false, map[string]string{"pay": "service: pay\nversion: 1.0.1\nimage: evil/pay:1\n"})
	if rec := dec.records[0]; rec.Status != store.StatusRejected || !hasReason(rec, policy.RuleCommitters, bad, "image") {
		t.Errorf("a later bump: %s %+v, want still rejected", rec.Status, rec.Reasons)
	}
	dec = r.commit("alice@example.com", "own image", false, map[string]string{"pay": "service: pay\nversion: 1.0.1\nimage: ok/pay:2\n"})
	if rec := dec.records[0]; rec.Status != store.StatusPending || rec.Phase != store.PhaseQueued {
		t.Errorf("overwritten by an allowed commit: %s %+v, want queued", rec.Status, rec.Reasons)
	}
}

func TestDeciderReplayMakesNoRecordButAdvances(t *testing.T) {
	r := newDeciderRig(t, "*@example.com")
	r.deployed("service: pay\nversion: 1.0.0\n")
	if dec := r.commit("alice@example.com", "again", true, map[string]string{"pay": "service: pay\nversion: 1.1.0\n"}); len(dec.records) != 0 {
		t.Fatalf("a replayed commit made records: %+v", dec.records)
	}
	if v := r.svcs.get("pay").Current.Version; v != "1.1.0" {
		t.Errorf("state after replay at %s, want 1.1.0", v)
	}
	if a := r.svcs.get("pay").Attribution["version"]; len(a) != 1 || a[0].Message != "again" {
		t.Errorf("attribution after replay %+v", a)
	}
}

func TestDeciderRefusalsAndSupersede(t *testing.T) {
	r := newDeciderRig(t, "*@example.com")
	r.deployed("service: pay\nversion: 1.0.0\n")
	r.state.pending = []*store.Record{{ID: "old", Service: "pay", Seq: 1, Status: store.StatusPending, Phase: store.PhaseQueued}}
	dec := r.commit("alice@example.com", "bump", false, map[string]string{"pay": "service: pay\nversion: 1.1.0\n"})
	if len(dec.supersede) != 1 || dec.supersede[0] != "old" {
		t.Errorf("supersede %v, want the unstarted record", dec.supersede)
	}
	// A comment-only edit makes no record.
	if dec := r.commit("alice@example.com", "comment", false, map[string]string{"pay": "# hi\nservice: pay\nversion: 1.1.0\n"}); len(dec.records) != 0 {
		t.Errorf("a comment made records: %+v", dec.records)
	}
	r.state.claims["pay"] = []string{"deployments", "other"}
	dec = r.commit("alice@example.com", "bump", false, map[string]string{"pay": "service: pay\nversion: 1.2.0\n"})
	if rec := dec.records[0]; rec.Status != store.StatusRejected || rec.Reasons[0].Rule != policy.RuleCollision {
		t.Errorf("claimed by two repositories: %s %+v", rec.Status, rec.Reasons)
	}
	delete(r.state.claims, "pay")
	c := monitor.Commit{SHA: strings.Repeat("f", 40), Message: strings.Repeat("x", 1<<20)}
	c.Committer.Email = "alice@example.com"
	dec, err := r.d.commit(context.Background(), r.svcs, c, []monitor.FileChange{{Path: "services/pay.yaml", NewBlob: "service: pay\nversion: 1.3.0\n"}}, policy.RuleForcePush, false)
	if err != nil {
		t.Fatal(err)
	}
	rec := dec.records[0]
	if rec.Status != store.StatusRejected || rec.Reasons[0].Rule != policy.RuleForcePush {
		t.Errorf("paused: %s %+v", rec.Status, rec.Reasons)
	}
	if len(rec.Message) != store.MaxMessage || len(r.svcs.get("pay").Attribution["version"][0].Message) != store.MaxMessage {
		t.Errorf("a 1 MiB message kept as %d bytes in the record, %d in the attribution; want %d", len(rec.Message),
			len(r.svcs.get("pay").Attribution["version"][0].Message), store.MaxMessage)
	}
}

func hasReason(rec *store.Record, rule, commit, field string) bool {
	for _, r := range rec.Reasons {
		if r.Rule == rule && r.Commit == commit && r.Field == field {
			return true
		}
	}
	return false
}
