package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// clock ticks one second per reading, from t0.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func openAt(t testing.TB, dir string, opts Options) *SQLite {
	t.Helper()
	s, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newStore(t testing.TB) (*SQLite, *clock) {
	t.Helper()
	c := newClock()
	s := openAt(t, t.TempDir(), Options{Now: c.Now})
	// Open reads the clock once per migration it applies: restart it, so
	// that the times in golden files do not move with each migration.
	c.mu.Lock()
	c.t = t0.Add(3 * time.Second) // where three migrations left it when the golden files were made
	c.mu.Unlock()
	return s, c
}

func desc(t testing.TB, service, version string, extra string) *descriptors.Descriptor {
	t.Helper()
	d, err := descriptors.Parse("services/"+service+".yaml",
		[]byte(fmt.Sprintf("service: %s\nversion: %s\n%s", service, version, extra)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sha(n int) string { return fmt.Sprintf("%040x", n) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func descJSON(t testing.TB, d *descriptors.Descriptor) string {
	t.Helper()
	if d == nil {
		return "null"
	}
	b, err := json.Marshal(d)
	must(t, err)
	return string(b)
}

func sameDesc(t testing.TB, what string, got, want *descriptors.Descriptor) {
	t.Helper()
	if g, w := descJSON(t, got), descJSON(t, want); g != w {
		t.Errorf("%s = %s, want %s", what, g, w)
	}
}

// pendingRecord is a queued deploy of payments in qa.
func pendingRecord(t testing.TB, commit int, version string) *Record {
	return &Record{
		Repository: "deployments", Environment: "qa", Service: "payments", Action: "deploy",
		Version: version, Commit: sha(commit), Author: "alice@example.com", Committer: "alice@example.com",
		Status: StatusPending, Phase: PhaseQueued, Descriptor: desc(t, "payments", version, ""),
		Message: "bump payments",
	}
}

func applyRecord(t testing.TB, s Store, r *Record) {
	t.Helper()
	must(t, s.Apply(context.Background(), Batch{
		Repository: r.Repository, Environment: r.Environment, Branch: r.Environment, Commit: r.Commit,
		Records: []*Record{r},
	}))
}

func get(t testing.TB, s Store, id string) *Record {
	t.Helper()
	r, err := s.Record(context.Background(), id)
	must(t, err)
	return r
}

func TestApplyInsertsRecords(t *testing.T) {
	ctx := context.Background()
	s, c := newStore(t)
	a := pendingRecord(t, 1, "1.0.0")
	b := pendingRecord(t, 1, "1.0.0")
	b.Service = "orders"
	b.ID = "given-id"
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha(1),
		Records: []*Record{a, b}}))

	if len(a.ID) != 26 {
		t.Errorf("assigned ID %q, want 26 characters", a.ID)
	}
	if b.ID != "given-id" {
		t.Errorf("given ID became %q", b.ID)
	}
	if a.Seq == 0 || b.Seq <= a.Seq {
		t.Errorf("Seq %d, %d: want increasing from 1", a.Seq, b.Seq)
	}
	if !a.CreatedAt.Equal(c.t) || !b.CreatedAt.Equal(c.t) {
		t.Errorf("CreatedAt %v, want the store's clock", a.CreatedAt)
	}
	got := get(t, s, a.ID)
	if got.Seq != a.Seq || !got.CreatedAt.Equal(a.CreatedAt) || got.FinishedAt != nil {
		t.Errorf("stored %d %v %v", got.Seq, got.CreatedAt, got.FinishedAt)
	}
	for name, n := range map[string]bool{"Tickets": got.Tickets == nil, "Reasons": got.Reasons == nil,
		"Commits": got.Commits == nil, "Stages": got.Stages == nil} {
		if n {
			t.Errorf("%s is nil, want empty", name)
		}
	}
	js, err := json.Marshal(got)
	must(t, err)
	var m map[string]json.RawMessage
	must(t, json.Unmarshal(js, &m))
	for _, k := range []string{"tickets", "reasons", "commits", "stages"} {
		if string(m[k]) != "[]" {
			t.Errorf("%s = %s, want []", k, m[k])
		}
	}
	if string(m["finished_at"]) != "null" {
		t.Errorf("finished_at = %s, want null", m["finished_at"])
	}
	if got.Phase != PhaseQueued || got.Message != "bump payments" {
		t.Errorf("phase %q message %q", got.Phase, got.Message)
	}
}

func TestApplyRecordFieldsRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	old := desc(t, "payments", "1.0.0", "ports: [80]\n")
	nw := desc(t, "payments", "1.1.0", "ports: [80, 443]\nresources: {cpu: 500m, memory: 512Mi}\nx-team: {a: [1, 2]}\n")
	started := t0.Add(time.Minute)
	r := &Record{
		ID: "r1", Repository: "deployments", Environment: "qa", Service: "payments", Action: "deploy",
		Version: "1.1.0", PreviousVersion: "1.0.0", Commit: sha(7), Author: "a@example.com", Committer: "c@example.com",
		Tickets: []string{"OPS-1"}, Status: StatusPending, Phase: PhasePolicy, Trigger: TriggerCommit,
		Evidence: Evidence{Diff: []EvidenceChange{}, Tickets: []EvidenceTicket{}},
		Reasons:  []policy.Reason{{Rule: "jira", Message: "JIRA unavailable", Commit: sha(7), Field: ""}},
		Commits:  []policy.Contribution{{Commit: sha(7), Author: "a@example.com", Committer: "c@example.com", Fields: []string{"ports", "version"}}},
		Stages: []Stage{{Name: "deploy", Runner: "exec", Status: StageSucceeded, StartedAt: &started, RunID: "run-1",
			Handle: json.RawMessage(`{"pgid":42}`)}},
		CreatedAt: t0, PendingSince: t0.Add(30 * time.Second), Descriptor: nw, Message: "msg\nbody",
		Diff: descriptors.Diff(old, nw), Emails: []string{"team@example.com"}, Slack: []string{}, Dropped: nil,
	}
	applyRecord(t, s, r)
	got := get(t, s, "r1")
	sameDesc(t, "Descriptor", got.Descriptor, nw)
	got.Descriptor, r.Descriptor = nil, nil
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
	}
}

func TestDescriptorRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	d := desc(t, "payments", "1.10", `image: registry.example.com/payments:1.10
healthcheck: {endpoints: [/healthz, "https://x.example.com/ready"], retries: 5, interval: 10s, initial_delay: 30s}
domain: payments.qa.example.com
port: 8080
resources: {cpu: "1.5", memory: 1Gi}
ports: [9090, 8080]
notifications: {emails: [a@example.com], slack: ["#p"]}
maintainer: alice@example.com
params: {big: 9007199254740993, f: 1.5, nested: {list: [1, "two", null, true]}}
x-team: checkout
x-nothing: null
`)
	bump := policy.Commit{SHA: sha(1), Message: "bump", Author: policy.Identity{Name: "A", Email: "a@example.com"},
		Committer: policy.Identity{Name: "C", Email: "c@example.com"}}
	attr := policy.Attribution{
		"version":    {bump},
		"params.big": {{SHA: sha(2)}},
		"image":      {bump, {SHA: sha(2)}}, // across a descriptor that did not parse
	}
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(2), Baseline: true,
		Services: []Service{{Service: "payments", Present: true, Current: d, Attribution: attr}}}))
	sv, err := s.Service(ctx, "deployments", "qa", "payments")
	must(t, err)
	for name, got := range map[string]*descriptors.Descriptor{"Current": sv.Current, "LastGood": sv.LastGood, "LastAttempted": sv.LastAttempted} {
		sameDesc(t, name, got, d)
		if !reflect.DeepEqual(got, d) {
			t.Errorf("%s: got %#v\nwant %#v", name, got, d)
		}
		if !descriptors.Equal(got, d) {
			t.Errorf("%s not Equal to the original", name)
		}
	}
	if !reflect.DeepEqual(sv.Attribution, attr) {
		t.Errorf("Attribution = %+v, want %+v", sv.Attribution, attr)
	}
}

func TestApplyServicesAndBaseline(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	v1 := desc(t, "payments", "1.0.0", "")
	v2 := desc(t, "payments", "2.0.0", "")
	o1 := desc(t, "orders", "1.0.0", "")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha(1), Baseline: true,
		Services: []Service{
			{Service: "payments", Present: true, Current: v1},
			{Service: "orders", Present: true, Current: o1},
			{Service: "broken", Present: true}, // present but does not parse
		}}))
	sv, err := s.Service(ctx, "deployments", "qa", "payments")
	must(t, err)
	if !sv.Present || sv.LastGoodCommit != sha(1) || sv.LastAttemptedCommit != sha(1) {
		t.Errorf("baseline service %+v", sv)
	}
	sameDesc(t, "LastGood", sv.LastGood, v1)
	sameDesc(t, "LastAttempted", sv.LastAttempted, v1)
	if sv.Attribution == nil {
		t.Error("Attribution is nil, want empty")
	}
	br, err := s.Service(ctx, "deployments", "qa", "broken")
	must(t, err)
	if !br.Present || br.Current != nil || br.LastGood != nil || br.LastGoodCommit != "" {
		t.Errorf("broken baseline service %+v", br)
	}

	// A later commit: upsert without Baseline leaves last good / attempted.
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(2),
		Services: []Service{{Service: "payments", Present: true, Current: v2,
			Attribution: policy.Attribution{"version": {{SHA: sha(2)}}},
			// ignored outside a baseline:
			LastGood: v2, LastGoodCommit: sha(2)}}}))
	sv, err = s.Service(ctx, "deployments", "qa", "payments")
	must(t, err)
	sameDesc(t, "Current", sv.Current, v2)
	sameDesc(t, "LastGood", sv.LastGood, v1)
	sameDesc(t, "LastAttempted", sv.LastAttempted, v1)
	if sv.LastGoodCommit != sha(1) || sv.Attribution["version"][0].SHA != sha(2) {
		t.Errorf("after upsert %+v", sv)
	}

	// Deleted: Present false, nil Current.
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(3),
		Services: []Service{{Service: "orders", Present: false}}}))
	svs, err := s.Services(ctx, "deployments", "qa")
	must(t, err)
	var names []string
	for _, sv := range svs {
		names = append(names, fmt.Sprintf("%s:%v", sv.Service, sv.Present))
	}
	if want := []string{"broken:true", "orders:false", "payments:true"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Services = %v, want %v", names, want)
	}

	none, err := s.Service(ctx, "deployments", "qa", "nothing")
	must(t, err)
	if none.Present || none.Current != nil || none.Service != "nothing" {
		t.Errorf("missing service = %+v", none)
	}
}

func TestApplyBranchAndPause(t *testing.T) {
	ctx := context.Background()
	s, c := newStore(t)
	br, err := s.Branch(ctx, "deployments", "qa")
	must(t, err)
	if br.Known {
		t.Fatal("unseen branch is Known")
	}
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha(1)}))
	br, err = s.Branch(ctx, "deployments", "qa")
	must(t, err)
	if want := (Branch{Repository: "deployments", Environment: "qa", Branch: "qa", Known: true, LastProcessed: sha(1)}); br != want {
		t.Errorf("Branch = %+v, want %+v", br, want)
	}

	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha(2),
		Pause: PauseForcePush, Anchor: sha(1)}))
	at := c.t // the clock reading Apply took
	br, err = s.Branch(ctx, "deployments", "qa")
	must(t, err)
	if br.Paused != PauseForcePush || br.Anchor != sha(1) || !br.PausedAt.Equal(at) || br.LastProcessed != sha(2) {
		t.Errorf("paused Branch = %+v", br)
	}

	// An empty Commit keeps the position (a deleted branch has no tip).
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Pause: PauseDeleted}))
	br, err = s.Branch(ctx, "deployments", "qa")
	must(t, err)
	if br.LastProcessed != sha(2) || br.Branch != "qa" || br.Paused != PauseDeleted {
		t.Errorf("after pause without commit: %+v", br)
	}

	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(3), Unpause: true}))
	br, err = s.Branch(ctx, "deployments", "qa")
	must(t, err)
	if br.Paused != "" || br.Anchor != "" || !br.PausedAt.IsZero() || br.LastProcessed != sha(3) {
		t.Errorf("unpaused Branch = %+v", br)
	}

	if err := s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Pause: PauseDeleted, Unpause: true}); err == nil {
		t.Error("Apply with Pause and Unpause: no error")
	}
}

func TestApplySupersedesOnlyPending(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	old := pendingRecord(t, 1, "1.0.0")
	run := pendingRecord(t, 2, "1.1.0")
	done := pendingRecord(t, 3, "1.2.0")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(3), Records: []*Record{old, run, done}}))
	must(t, s.StartRecord(ctx, run.ID, nil, t0))
	must(t, s.StartRecord(ctx, done.ID, nil, t0))
	must(t, s.FinishRecord(ctx, done.ID, StatusFailed, t0))

	nw := pendingRecord(t, 4, "1.3.0")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(4), Records: []*Record{nw},
		Supersede: []string{old.ID, run.ID, done.ID, "no-such-record"}}))
	for id, want := range map[string]string{old.ID: StatusSuperseded, run.ID: StatusRunning, done.ID: StatusFailed, nw.ID: StatusPending} {
		if got := get(t, s, id); got.Status != want {
			t.Errorf("%s: status %s, want %s", id, got.Status, want)
		}
	}
	if got := get(t, s, old.ID); got.FinishedAt == nil {
		t.Error("superseded record has no finished_at")
	}
}

func TestApplyEvents(t *testing.T) {
	ctx := context.Background()
	s, c := newStore(t)
	at := t0.Add(-time.Hour)
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa-branch", Commit: sha(1),
		Events: []Event{
			{Kind: EventBaseline, Message: "baseline", Commit: sha(1)},
			{Kind: EventForcePush, At: at, Commits: []string{sha(8), sha(9)}, Repository: "other", Environment: "prod", Branch: "main"},
		}}))
	now := c.t
	evs, err := s.Events(ctx, Filter{})
	must(t, err)
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	want := []Event{
		{ID: 2, At: at, Repository: "other", Environment: "prod", Branch: "main", Kind: EventForcePush, Commits: []string{sha(8), sha(9)}},
		{ID: 1, At: now, Repository: "deployments", Environment: "qa", Branch: "qa-branch", Kind: EventBaseline, Message: "baseline", Commit: sha(1), Commits: []string{}},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("Events =\n%+v\nwant\n%+v", evs, want)
	}
	if err := s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Events: []Event{{}}}); err == nil {
		t.Error("event without kind accepted")
	}
}

// TestApplyIsAtomic makes the last step of a batch fail and checks that
// none of it was written.
func TestApplyIsAtomic(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	v1 := desc(t, "payments", "1.0.0", "")
	first := pendingRecord(t, 1, "1.0.0")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha(1), Baseline: true,
		Records:  []*Record{first},
		Services: []Service{{Service: "payments", Present: true, Current: v1}}}))

	fresh := pendingRecord(t, 2, "2.0.0")
	dup := pendingRecord(t, 2, "2.0.0")
	dup.ID = first.ID // conflicts: the insert fails
	err := s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha(2),
		Records:   []*Record{fresh, dup},
		Services:  []Service{{Service: "payments", Present: false}, {Service: "orders", Present: true}},
		Supersede: []string{first.ID},
		Pause:     PauseForcePush, Anchor: sha(1),
		Events: []Event{{Kind: EventForcePush}},
	})
	if err == nil {
		t.Fatal("Apply with a duplicate record ID succeeded")
	}
	if fresh.ID != "" || fresh.Seq != 0 || !fresh.CreatedAt.IsZero() {
		t.Errorf("failed Apply wrote back %q %d %v", fresh.ID, fresh.Seq, fresh.CreatedAt)
	}
	br, _ := s.Branch(ctx, "deployments", "qa")
	if br.LastProcessed != sha(1) || br.Paused != "" {
		t.Errorf("branch moved: %+v", br)
	}
	rs, _ := s.Records(ctx, Filter{})
	if len(rs) != 1 || rs[0].Status != StatusPending {
		t.Errorf("records after failed Apply: %d, first %s", len(rs), rs[0].Status)
	}
	sv, _ := s.Service(ctx, "deployments", "qa", "payments")
	if !sv.Present {
		t.Error("service upsert survived")
	}
	if claims, _ := s.Claims(ctx, "qa", "orders"); len(claims) != 0 {
		t.Errorf("orders claimed by %v", claims)
	}
	if evs, _ := s.Events(ctx, Filter{}); len(evs) != 0 {
		t.Errorf("%d events survived", len(evs))
	}
}

func TestClaims(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for _, repo := range []string{"b-repo", "a-repo", "c-repo"} {
		must(t, s.Apply(ctx, Batch{Repository: repo, Environment: "qa", Commit: sha(1),
			Services: []Service{{Service: "payments", Present: repo != "c-repo"}}}))
	}
	must(t, s.Apply(ctx, Batch{Repository: "d-repo", Environment: "prod", Commit: sha(1),
		Services: []Service{{Service: "payments", Present: true}}}))
	got, err := s.Claims(ctx, "qa", "payments")
	must(t, err)
	if want := []string{"a-repo", "b-repo"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Claims = %v, want %v", got, want)
	}
	got, err = s.Claims(ctx, "qa", "orders")
	must(t, err)
	if len(got) != 0 {
		t.Errorf("Claims(orders) = %v", got)
	}
}

func TestDecide(t *testing.T) {
	ctx := context.Background()
	s, c := newStore(t)
	a := pendingRecord(t, 1, "1.0.0")
	a.Phase = PhasePolicy
	b := pendingRecord(t, 2, "1.1.0")
	running := pendingRecord(t, 3, "1.2.0")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(3), Records: []*Record{a, b, running}}))
	must(t, s.StartRecord(ctx, running.ID, nil, t0))

	// Still waiting for JIRA: stays pending with a pending-since.
	a.PendingSince = t0.Add(time.Minute)
	a.Reasons = []policy.Reason{{Rule: "jira", Message: "unavailable"}}
	must(t, s.Decide(ctx, a, nil))
	got := get(t, s, a.ID)
	if got.Status != StatusPending || got.Phase != PhasePolicy || !got.PendingSince.Equal(a.PendingSince) ||
		!reflect.DeepEqual(got.Reasons, a.Reasons) || got.FinishedAt != nil {
		t.Errorf("after pending Decide: %+v", got)
	}

	// Allowed: queued, with the verdict's fields; supersedes b but not the
	// running record.
	a.Phase = PhaseQueued
	a.Reasons = nil
	a.Tickets = []string{"OPS-7"}
	a.Commits = []policy.Contribution{{Commit: sha(1), Fields: []string{"version"}}}
	a.Diff = descriptors.Changes{{Field: "version", Kind: descriptors.VersionUp, Old: "0.9.0", New: "1.0.0"}}
	a.Emails, a.Slack, a.Dropped = []string{"t@example.com"}, []string{"#p"}, []string{"x@evil.test"}
	must(t, s.Decide(ctx, a, []string{b.ID, running.ID, a.ID}))
	got = get(t, s, a.ID)
	if got.Status != StatusPending || got.Phase != PhaseQueued || len(got.Reasons) != 0 ||
		!reflect.DeepEqual(got.Tickets, a.Tickets) || !reflect.DeepEqual(got.Commits, a.Commits) ||
		!reflect.DeepEqual(got.Diff, a.Diff) || !reflect.DeepEqual(got.Emails, a.Emails) ||
		!reflect.DeepEqual(got.Slack, a.Slack) || !reflect.DeepEqual(got.Dropped, a.Dropped) {
		t.Errorf("after queued Decide: %+v", got)
	}
	if st := get(t, s, b.ID).Status; st != StatusSuperseded {
		t.Errorf("b is %s, want superseded", st)
	}
	if st := get(t, s, running.ID).Status; st != StatusRunning {
		t.Errorf("running record is %s", st)
	}

	// Rejected ends the record.
	a.Status = StatusRejected
	a.Reasons = []policy.Reason{{Rule: "jira", Message: "timeout"}}
	must(t, s.Decide(ctx, a, nil))
	got = get(t, s, a.ID)
	if got.Status != StatusRejected || got.FinishedAt == nil || !got.FinishedAt.Equal(c.t) {
		t.Errorf("after reject: %s %v", got.Status, got.FinishedAt)
	}

	// No longer pending.
	for _, r := range []*Record{a, get(t, s, b.ID), get(t, s, running.ID), {ID: "missing", Status: StatusPending}} {
		r.Status = StatusPending
		if err := s.Decide(ctx, r, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("Decide(%s) = %v, want ErrNotFound", r.ID, err)
		}
	}
	if err := s.Decide(ctx, &Record{ID: a.ID, Status: StatusSucceeded}, nil); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Decide to succeeded = %v, want a refusal", err)
	}
}

func TestDecideAtomic(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a := pendingRecord(t, 1, "1.0.0")
	b := pendingRecord(t, 2, "1.1.0")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(2), Records: []*Record{a, b}}))
	must(t, s.FinishRecord(ctx, a.ID, StatusRejected, t0))
	// a is no longer pending: b must not be superseded either.
	a.Status = StatusSkipped
	if err := s.Decide(ctx, a, []string{b.ID}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Decide = %v", err)
	}
	if st := get(t, s, b.ID).Status; st != StatusPending {
		t.Errorf("b is %s after a failed Decide", st)
	}
}

func TestStartRecord(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	v1 := desc(t, "payments", "1.0.0", "")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(1), Baseline: true,
		Services: []Service{{Service: "payments", Present: true, Current: v1}}}))
	r := pendingRecord(t, 2, "2.0.0")
	applyRecord(t, s, r)
	stages := []Stage{{Name: "deploy", Runner: "exec", Status: StagePending}, {Name: "healthcheck", Runner: "http"}}
	must(t, s.StartRecord(ctx, r.ID, stages, t0.Add(time.Hour)))

	got := get(t, s, r.ID)
	if got.Status != StatusRunning || len(got.Stages) != 2 {
		t.Fatalf("started record %s with %d stages", got.Status, len(got.Stages))
	}
	for i, st := range got.Stages {
		if st.Name != stages[i].Name || st.Runner != stages[i].Runner || st.Status != StagePending ||
			st.StartedAt != nil || st.FinishedAt != nil || st.Handle != nil {
			t.Errorf("stage %d = %+v", i, st)
		}
	}
	sv, _ := s.Service(ctx, "deployments", "qa", "payments")
	sameDesc(t, "LastAttempted", sv.LastAttempted, r.Descriptor)
	sameDesc(t, "LastGood", sv.LastGood, v1)
	if sv.LastAttemptedCommit != sha(2) || sv.LastGoodCommit != sha(1) {
		t.Errorf("commits: attempted %s good %s", sv.LastAttemptedCommit, sv.LastGoodCommit)
	}
	if rs, _ := s.Running(ctx); len(rs) != 1 || rs[0].ID != r.ID {
		t.Errorf("Running = %v", rs)
	}

	// Twice, superseded, missing: ErrNotFound, nothing written.
	sup := pendingRecord(t, 3, "3.0.0")
	applyRecord(t, s, sup)
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(4), Supersede: []string{sup.ID}}))
	for _, id := range []string{r.ID, sup.ID, "missing"} {
		if err := s.StartRecord(ctx, id, stages[:1], t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("StartRecord(%s) = %v, want ErrNotFound", id, err)
		}
	}
	if got := get(t, s, r.ID); len(got.Stages) != 2 {
		t.Errorf("second start rewrote stages: %d", len(got.Stages))
	}
	sv, _ = s.Service(ctx, "deployments", "qa", "payments")
	if sv.LastAttemptedCommit != sha(2) {
		t.Errorf("superseded start moved last attempted to %s", sv.LastAttemptedCommit)
	}
}

func TestStartRecordRemove(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	v1 := desc(t, "payments", "1.0.0", "")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(1), Baseline: true,
		Services: []Service{{Service: "payments", Present: true, Current: v1}}}))
	r := pendingRecord(t, 2, "1.0.0")
	r.Action, r.Descriptor = "remove", v1 // the last good one
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(2), Records: []*Record{r},
		Services: []Service{{Service: "payments", Present: false}}}))
	must(t, s.StartRecord(ctx, r.ID, []Stage{{Name: "undeploy", Runner: "exec"}}, t0))
	sv, _ := s.Service(ctx, "deployments", "qa", "payments")
	if sv.LastAttempted != nil || sv.LastAttemptedCommit != sha(2) {
		t.Errorf("remove start: attempted %v %s", sv.LastAttempted, sv.LastAttemptedCommit)
	}
	sameDesc(t, "LastGood", sv.LastGood, v1)
	sameDesc(t, "record Descriptor", get(t, s, r.ID).Descriptor, v1)

	must(t, s.FinishRecord(ctx, r.ID, StatusSucceeded, t0))
	sv, _ = s.Service(ctx, "deployments", "qa", "payments")
	if sv.LastGood != nil || sv.LastAttempted != nil || sv.LastGoodCommit != sha(2) || sv.Present {
		t.Errorf("removed service %+v", sv)
	}
}

func TestUpdateStage(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r := pendingRecord(t, 1, "1.0.0")
	applyRecord(t, s, r)
	must(t, s.StartRecord(ctx, r.ID, []Stage{{Name: "deploy", Runner: "exec"}, {Name: "smoke", Runner: "jenkins"}}, t0))

	start, end := t0.Add(time.Second), t0.Add(time.Minute)
	st := Stage{Name: "deploy", Runner: "exec", Status: StageRunning, StartedAt: &start, RunID: "01RUN",
		Handle: json.RawMessage(`{"pgid":1234,"boot_id":"b","start":99}`)}
	must(t, s.UpdateStage(ctx, r.ID, 0, st))
	if got := get(t, s, r.ID).Stages[0]; !reflect.DeepEqual(got, st) {
		t.Errorf("stage 0 = %+v, want %+v", got, st)
	}
	st.Status, st.FinishedAt, st.Message, st.Output, st.URL = StageSucceeded, &end, "ok", "tail of output", "https://ci.example.com/1"
	st.Handle = nil
	must(t, s.UpdateStage(ctx, r.ID, 0, st))
	got := get(t, s, r.ID)
	if !reflect.DeepEqual(got.Stages[0], st) {
		t.Errorf("stage 0 = %+v, want %+v", got.Stages[0], st)
	}
	if got.Stages[1].Status != StagePending || got.Stages[1].Name != "smoke" {
		t.Errorf("stage 1 = %+v", got.Stages[1])
	}
	for _, c := range []struct {
		id string
		i  int
	}{{r.ID, 2}, {r.ID, -1}, {"missing", 0}} {
		if err := s.UpdateStage(ctx, c.id, c.i, st); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateStage(%s, %d) = %v, want ErrNotFound", c.id, c.i, err)
		}
	}
	if err := s.UpdateStage(ctx, r.ID, 1, Stage{Name: "smoke", Status: StageRunning, Handle: json.RawMessage("{")}); err == nil {
		t.Error("invalid handle JSON accepted")
	}
}

func TestFinishRecord(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	v1 := desc(t, "payments", "1.0.0", "")
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(1), Baseline: true,
		Services: []Service{{Service: "payments", Present: true, Current: v1}}}))

	// Failed: last good stays, last attempted is the failed one.
	bad := pendingRecord(t, 2, "2.0.0")
	applyRecord(t, s, bad)
	must(t, s.StartRecord(ctx, bad.ID, []Stage{{Name: "deploy"}}, t0))
	end := t0.Add(time.Hour)
	must(t, s.FinishRecord(ctx, bad.ID, StatusFailed, end))
	got := get(t, s, bad.ID)
	if got.Status != StatusFailed || got.FinishedAt == nil || !got.FinishedAt.Equal(end) {
		t.Errorf("failed record: %s %v", got.Status, got.FinishedAt)
	}
	sv, _ := s.Service(ctx, "deployments", "qa", "payments")
	sameDesc(t, "LastGood after failure", sv.LastGood, v1)
	sameDesc(t, "LastAttempted after failure", sv.LastAttempted, bad.Descriptor)
	if sv.LastGoodCommit != sha(1) || sv.LastAttemptedCommit != sha(2) {
		t.Errorf("commits after failure: %s %s", sv.LastGoodCommit, sv.LastAttemptedCommit)
	}

	// Succeeded: last good is the record's.
	good := pendingRecord(t, 3, "3.0.0")
	applyRecord(t, s, good)
	must(t, s.StartRecord(ctx, good.ID, []Stage{{Name: "deploy"}}, t0))
	must(t, s.FinishRecord(ctx, good.ID, StatusSucceeded, end))
	sv, _ = s.Service(ctx, "deployments", "qa", "payments")
	sameDesc(t, "LastGood after success", sv.LastGood, good.Descriptor)
	if sv.LastGoodCommit != sha(3) || sv.LastAttemptedCommit != sha(3) {
		t.Errorf("commits after success: %s %s", sv.LastGoodCommit, sv.LastAttemptedCommit)
	}

	// Ended records can't end again; statuses must be final.
	if err := s.FinishRecord(ctx, good.ID, StatusFailed, end); !errors.Is(err, ErrNotFound) {
		t.Errorf("second FinishRecord = %v, want ErrNotFound", err)
	}
	if err := s.FinishRecord(ctx, "missing", StatusFailed, end); !errors.Is(err, ErrNotFound) {
		t.Errorf("FinishRecord(missing) = %v, want ErrNotFound", err)
	}
	if err := s.FinishRecord(ctx, good.ID, StatusRunning, end); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("FinishRecord(running) = %v, want a refusal", err)
	}
	if got := get(t, s, good.ID); got.Status != StatusSucceeded {
		t.Errorf("status changed to %s", got.Status)
	}
}

func TestPendingAndRunningOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var ids []string
	for i := range 6 {
		r := pendingRecord(t, i, fmt.Sprintf("1.%d.0", i))
		r.Service = fmt.Sprintf("svc%d", 5-i) // names sort against Seq
		r.ID = fmt.Sprintf("z%d", 9-i)        // ids too
		applyRecord(t, s, r)
		ids = append(ids, r.ID)
	}
	for _, i := range []int{4, 1, 3} {
		must(t, s.StartRecord(ctx, ids[i], nil, t0))
	}
	must(t, s.FinishRecord(ctx, ids[3], StatusSucceeded, t0))
	must(t, s.FinishRecord(ctx, ids[5], StatusRejected, t0))
	idsOf := func(rs []*Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	p, err := s.Pending(ctx)
	must(t, err)
	if want := []string{ids[0], ids[2]}; !reflect.DeepEqual(idsOf(p), want) {
		t.Errorf("Pending = %v, want %v", idsOf(p), want)
	}
	r, err := s.Running(ctx)
	must(t, err)
	if want := []string{ids[1], ids[4]}; !reflect.DeepEqual(idsOf(r), want) {
		t.Errorf("Running = %v, want %v", idsOf(r), want)
	}
}

func TestRecordsFilter(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	type key struct{ repo, env, svc string }
	var all []*Record
	n := 0
	for _, k := range []key{{"a", "qa", "pay"}, {"a", "qa", "ord"}, {"b", "qa", "pay"}, {"a", "prod", "pay"}, {"a", "qa", "pay"}} {
		n++
		r := pendingRecord(t, n, "1.0.0")
		r.Repository, r.Environment, r.Service = k.repo, k.env, k.svc
		applyRecord(t, s, r)
		all = append(all, r)
	}
	must(t, s.StartRecord(ctx, all[0].ID, []Stage{{Name: "deploy"}, {Name: "hc"}}, t0))
	must(t, s.FinishRecord(ctx, all[0].ID, StatusSucceeded, t0))
	must(t, s.FinishRecord(ctx, all[2].ID, StatusRejected, t0))

	pick := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, all[i].ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    Filter
		want []string
	}{
		{"all newest first", Filter{}, pick(4, 3, 2, 1, 0)},
		{"env", Filter{Environment: "qa"}, pick(4, 2, 1, 0)},
		{"repo env", Filter{Repository: "a", Environment: "qa"}, pick(4, 1, 0)},
		{"service", Filter{Environment: "qa", Service: "pay"}, pick(4, 2, 0)},
		{"status", Filter{Status: []string{StatusSucceeded, StatusRejected}}, pick(2, 0)},
		{"status and repo", Filter{Repository: "a", Status: []string{StatusPending}}, pick(4, 3, 1)},
		{"limit", Filter{Limit: 2}, pick(4, 3)},
		{"limit with filter", Filter{Service: "pay", Limit: 3}, pick(4, 3, 2)},
		{"nothing", Filter{Repository: "zzz"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs, err := s.Records(ctx, c.f)
			must(t, err)
			var got []string
			for _, r := range rs {
				got = append(got, r.ID)
				want := 0
				if r.ID == all[0].ID {
					want = 2
				}
				if len(r.Stages) != want {
					t.Errorf("%s has %d stages, want %d", r.ID, len(r.Stages), want)
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	if _, err := s.Record(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Record(missing) = %v", err)
	}
}

func TestEventsFilter(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for _, e := range []Event{
		{Repository: "a", Environment: "qa", Kind: EventBaseline},
		{Repository: "b", Environment: "qa", Kind: EventBaseline},
		{Repository: "a", Environment: "prod", Kind: EventPollError},
		{Repository: "a", Environment: "qa", Kind: EventForcePush},
	} {
		must(t, s.AddEvent(ctx, e))
	}
	for _, c := range []struct {
		name string
		f    Filter
		want []int64
	}{
		{"all", Filter{}, []int64{4, 3, 2, 1}},
		{"env", Filter{Environment: "qa"}, []int64{4, 2, 1}},
		{"repo env", Filter{Repository: "a", Environment: "qa"}, []int64{4, 1}},
		{"repo", Filter{Repository: "a"}, []int64{4, 3, 1}},
		{"limit", Filter{Environment: "qa", Limit: 1}, []int64{4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			evs, err := s.Events(ctx, c.f)
			must(t, err)
			var got []int64
			for _, e := range evs {
				got = append(got, e.ID)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	s, c := newStore(t)
	pause := func(repo, env, reason string) {
		must(t, s.Apply(ctx, Batch{Repository: repo, Environment: env, Branch: env, Commit: sha(len(repo)), Pause: reason, Anchor: sha(9)}))
	}
	pause("a", "prod", PauseForcePush)
	pause("bb", "prod", PauseDeleted)
	pause("ccc", "qa", PauseForcePush)
	must(t, s.Apply(ctx, Batch{Repository: "dddd", Environment: "prod", Commit: sha(4)})) // not paused

	got, err := s.Resume(ctx, "prod", "bb", "carol")
	must(t, err)
	if len(got) != 1 || got[0].Repository != "bb" || got[0].Paused != PauseDeleted || got[0].Anchor != sha(9) {
		t.Errorf("Resume(prod, bb) = %+v", got)
	}
	now := c.t
	got, err = s.Resume(ctx, "prod", "", "dave")
	must(t, err)
	if len(got) != 1 || got[0].Repository != "a" || got[0].Paused != PauseForcePush {
		t.Errorf("Resume(prod) = %+v", got)
	}
	for _, repo := range []string{"a", "bb"} {
		br, _ := s.Branch(ctx, repo, "prod")
		if br.Paused != "" || br.Anchor != "" || !br.PausedAt.IsZero() || br.LastProcessed != sha(len(repo)) {
			t.Errorf("%s after resume: %+v", repo, br)
		}
	}
	if br, _ := s.Branch(ctx, "ccc", "qa"); br.Paused != PauseForcePush {
		t.Errorf("qa was resumed too: %+v", br)
	}
	evs, err := s.Events(ctx, Filter{Environment: "prod"})
	must(t, err)
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	if e := evs[0]; e.Kind != EventResume || e.Actor != "dave" || e.Repository != "a" || e.Branch != "prod" ||
		e.Commit != sha(1) || !e.At.After(now) {
		t.Errorf("resume event %+v", e)
	}
	if e := evs[1]; e.Kind != EventResume || e.Actor != "carol" || e.Repository != "bb" {
		t.Errorf("resume event %+v", e)
	}
	got, err = s.Resume(ctx, "prod", "", "erin")
	must(t, err)
	if len(got) != 0 {
		t.Errorf("nothing to resume, got %+v", got)
	}
}

// TestEndRecordIsOneTransaction: the last stage, the record's end, its
// events and the service's last good are written together, and a record
// that already ended takes none of them.
func TestEndRecordIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r := pendingRecord(t, 1, "1.0.0")
	applyRecord(t, s, r)
	must(t, s.StartRecord(ctx, r.ID, []Stage{{Name: "deploy", Runner: "exec", Status: StageRunning, StartedAt: &t0},
		{Name: "smoke", Runner: "exec"}}, t0))
	end := t0.Add(time.Minute)
	e := End{Status: StatusFailed, At: end,
		Stages: map[int]Stage{0: {Name: "deploy", Runner: "exec", Status: StageInterrupted, StartedAt: &t0, FinishedAt: &end},
			1: {Name: "smoke", Runner: "exec", Status: StageSkipped}},
		Events: []Event{{Kind: EventInterrupted, Message: "it ended failed"}}}
	must(t, s.EndRecord(ctx, r.ID, e))
	got := get(t, s, r.ID)
	if got.Status != StatusFailed || got.Stages[0].Status != StageInterrupted || got.Stages[1].Status != StageSkipped {
		t.Errorf("record %s, stages %+v", got.Status, got.Stages)
	}
	evs, err := s.Events(ctx, Filter{Environment: r.Environment})
	if err != nil || len(evs) != 1 || evs[0].Kind != EventInterrupted || evs[0].Repository != r.Repository {
		t.Errorf("events %+v, %v", evs, err)
	}
	// Ended already: nothing of a second end is written.
	e.Status, e.Events = StatusSucceeded, []Event{{Kind: EventInterrupted, Message: "again"}}
	if err := s.EndRecord(ctx, r.ID, e); !errors.Is(err, ErrNotFound) {
		t.Errorf("second EndRecord = %v, want ErrNotFound", err)
	}
	if evs, _ := s.Events(ctx, Filter{}); len(evs) != 1 {
		t.Errorf("%d events after a refused end, want 1", len(evs))
	}
	if sv, _ := s.Service(ctx, r.Repository, r.Environment, r.Service); sv.LastGood != nil {
		t.Errorf("a failed record made %v last good", sv.LastGood)
	}
}
