package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// statusNow is the time the status reports of these tests are of.
var statusNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// statusRig is a real store with a config of two repositories and three
// environments; the store's clock is at, which the helpers move.
type statusRig struct {
	t   testing.TB
	cfg *config.Config
	st  *store.SQLite
	at  time.Time
}

func newStatusRig(t testing.TB) *statusRig {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(t, dir, fmt.Sprintf(`state: %s
repositories:
  - {name: deployments, url: %q}
  - {name: other, url: %q}
environments:
  - {name: qa, branch: qa, release: [deploy]}
  - {name: staging, branch: staging, release: [deploy]}
  - {name: prod, branch: prod, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "state"), filepath.Join(dir, "deployments.git"), filepath.Join(dir, "other.git")))
	r := &statusRig{t: t, cfg: cfg, at: statusNow.Add(-30 * 24 * time.Hour)}
	st, err := store.Open(context.Background(), cfg.State, store.Options{Lock: true, Now: func() time.Time { return r.at }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.st = st
	return r
}

func (r *statusRig) must(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

// statusSHA is a commit SHA whose short form tells n.
func statusSHA(n int) string { return strings.Repeat(fmt.Sprintf("%02x", n%256), 20) }

func (r *statusRig) desc(service, version string) *descriptors.Descriptor {
	r.t.Helper()
	d, err := descriptors.Parse("services/"+service+".yaml", []byte(tDescriptor(service, version)))
	r.must(err)
	return d
}

// baseline is the first sight of (repo, env) at commit, with the services
// at these versions ("service=version").
func (r *statusRig) baseline(repo, env string, commit int, svcs ...string) {
	r.t.Helper()
	b := store.Batch{Repository: repo, Environment: env, Branch: env, Commit: statusSHA(commit), Baseline: true}
	for _, s := range svcs {
		name, version, _ := strings.Cut(s, "=")
		b.Services = append(b.Services, store.Service{Repository: repo, Environment: env, Service: name, Present: true,
			Current: r.desc(name, version)})
	}
	r.must(r.st.Apply(context.Background(), b))
}

// record is a record of service at version, decided at commit: queued,
// unless phase and reasons say what it waits for.
func (r *statusRig) record(repo, env, service string, commit int, version, phase string, reasons ...policy.Reason) *store.Record {
	r.t.Helper()
	if phase == "" {
		phase = store.PhaseQueued
	}
	rec := &store.Record{Repository: repo, Environment: env, Service: service, Action: "deploy", Version: version,
		Commit: statusSHA(commit), Author: "alice@example.com", Committer: "alice@example.com",
		Status: store.StatusPending, Phase: phase, Reasons: reasons, Descriptor: r.desc(service, version), Message: "bump"}
	r.must(r.st.Apply(context.Background(), store.Batch{Repository: repo, Environment: env, Branch: env, Commit: rec.Commit,
		Records:  []*store.Record{rec},
		Services: []store.Service{{Repository: repo, Environment: env, Service: service, Present: true, Current: rec.Descriptor}}}))
	return rec
}

// run starts rec at start; with an end status, it ends five minutes later.
func (r *statusRig) run(rec *store.Record, start time.Time, status string) {
	r.t.Helper()
	ctx := context.Background()
	r.must(r.st.StartRecord(ctx, rec.ID, []store.Stage{{Name: "deploy", Runner: "exec"}}, start))
	if status != "" {
		r.must(r.st.FinishRecord(ctx, rec.ID, status, start.Add(5*time.Minute)))
	}
}

func (r *statusRig) freeze(env, actor, reason string, since time.Time, until *time.Time) {
	r.t.Helper()
	r.must(r.st.Freeze(context.Background(), store.Freeze{Environment: env, Actor: actor, Reason: reason, Since: since, Until: until}))
}

func (r *statusRig) status(env string) *StatusReport {
	r.t.Helper()
	rep, err := Status(context.Background(), r.cfg, r.st, StatusOptions{Env: env, Now: statusNow})
	r.must(err)
	return rep
}

func at(d time.Duration) *time.Time {
	t := statusNow.Add(d)
	return &t
}

// fullStatus is a state with something of every kind status reports:
// deployed, baseline, failed, waiting, queued and running services, a
// paused environment, a freeze with a hostile reason, an expired freeze,
// a halt and dead letters.
func fullStatus(t testing.TB) *statusRig {
	r := newStatusRig(t)
	ctx := context.Background()
	r.baseline("deployments", "qa", 1, "payments=1.0.0", "search=2.0.0", "cart=3.0.0")
	pay := r.record("deployments", "qa", "payments", 2, "1.1.0", "")
	r.run(pay, statusNow.Add(-3*time.Hour-5*time.Minute), store.StatusSucceeded)
	bad := r.record("deployments", "qa", "payments", 3, "1.2.0", "")
	r.run(bad, statusNow.Add(-time.Hour), store.StatusFailed)
	r.record("deployments", "qa", "cart", 4, "3.1.0", store.PhasePolicy,
		policy.Reason{Rule: policy.RuleJira, Message: "JIRA cannot be reached:\n\tdial tcp 10.0.0.7:443: connection refused; the record waits until 2026-12-01T12:10:00Z before it is rejected", Commit: statusSHA(4)})
	r.record("deployments", "qa", "cart", 5, "3.2.0", store.PhaseWindow,
		policy.Reason{Rule: policy.RuleWindow, Message: "held by the halt set by bob", Commit: statusSHA(5)})

	r.baseline("other", "qa", 20, "web=5.0.0")
	web := r.record("other", "qa", "web", 21, "5.1.0", "")
	r.run(web, statusNow.Add(-2*time.Minute), "")
	r.record("other", "qa", "web", 22, "5.2.0", "")
	r.at = statusNow.Add(-30 * time.Minute)
	r.must(r.st.Apply(ctx, store.Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Pause: store.PauseForcePush, Anchor: statusSHA(5)}))

	r.baseline("deployments", "staging", 30, "payments=1.1.0")
	r.record("deployments", "staging", "payments", 31, "1.2.0", store.PhasePromotion,
		policy.Reason{Rule: policy.RulePromotion, Message: "waits for 1.2.0 to succeed in qa (until 2026-12-01T13:00:00Z)", Commit: statusSHA(31), Field: "version"})
	r.freeze("staging", "alice@laptop", "release freeze\n\x1b[31mQ4\u202e", statusNow.Add(-2*time.Hour), at(10*time.Hour))

	r.baseline("deployments", "prod", 40, "payments=1.0.0")
	r.freeze("prod", "carol", "expired", statusNow.Add(-48*time.Hour), at(-time.Hour))
	r.freeze("", "bob", "incident 42", statusNow.Add(-5*time.Minute), nil)

	for _, key := range []string{"a", "b"} {
		r.must(r.st.Enqueue(ctx, store.OutboxItem{Kind: store.OutboxSlack, Key: key}))
		it, ok, err := r.st.OutboxItem(ctx, key)
		r.must(err)
		if !ok {
			t.Fatalf("outbox item %s is missing", key)
		}
		_, err = r.st.MarkDead(ctx, it.ID, "channel_not_found", statusNow)
		r.must(err)
	}
	return r
}

func findService(t *testing.T, rep *StatusReport, env, repo, service string) ServiceStatus {
	t.Helper()
	for _, e := range rep.Environments {
		if e.Name != env {
			continue
		}
		for _, sv := range e.Services {
			if sv.Repository == repo && sv.Service == service {
				return sv
			}
		}
	}
	t.Fatalf("no %s/%s in %s", repo, service, env)
	return ServiceStatus{}
}

func TestStatusServices(t *testing.T) {
	r := fullStatus(t)
	rep := r.status("")
	var names []string
	for _, e := range rep.Environments {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"qa", "staging", "prod"}) {
		t.Fatalf("environments %v, want the config's order", names)
	}
	var qa []string
	for _, sv := range rep.Environments[0].Services {
		qa = append(qa, sv.Repository+"/"+sv.Service)
	}
	if want := []string{"deployments/cart", "deployments/payments", "deployments/search", "other/web"}; !slices.Equal(qa, want) {
		t.Errorf("qa's services %v, want %v (config repository order, then by name)", qa, want)
	}

	// The last good is the succeeded record, not the newer failure.
	pay := findService(t, rep, "qa", "deployments", "payments")
	if pay.Version != "1.1.0" || pay.Commit != statusSHA(2) || pay.Committer != "alice@example.com" ||
		pay.DeployedAt == nil || !pay.DeployedAt.Equal(statusNow.Add(-3*time.Hour)) {
		t.Errorf("payments' last good = %s %s by %q at %v", pay.Version, pay.Commit, pay.Committer, pay.DeployedAt)
	}
	if l := pay.LastRecord; l == nil || l.Status != store.StatusFailed || l.Version != "1.2.0" || l.Commit != statusSHA(3) {
		t.Errorf("payments' last record = %+v, want the failed 1.2.0", l)
	}

	// A baseline: the branch's commit, nobody, no time, no record.
	search := findService(t, rep, "qa", "deployments", "search")
	if search.Version != "2.0.0" || search.Commit != statusSHA(1) || search.Committer != "" || search.DeployedAt != nil ||
		search.LastRecord != nil || search.Waiting == nil || len(search.Waiting) != 0 || search.Pending != 0 {
		t.Errorf("baseline service = %+v", search)
	}

	// Waiting: the reasons of the pending records, oldest first.
	cart := findService(t, rep, "qa", "deployments", "cart")
	var rules []string
	for _, w := range cart.Waiting {
		rules = append(rules, w.Rule)
	}
	if !slices.Equal(rules, []string{"jira", "window"}) || cart.Pending != 2 || cart.Waiting[0].Commit != statusSHA(4) {
		t.Errorf("cart waits for %v (%d pending), want [jira window] from 2 records", rules, cart.Pending)
	}
	if l := cart.LastRecord; l == nil || l.Status != store.StatusPending || l.Version != "3.2.0" {
		t.Errorf("cart's last record = %+v, want the pending 3.2.0", l)
	}

	// A queued record waits for no reason; the running one is listed.
	web := findService(t, rep, "qa", "other", "web")
	if len(web.Waiting) != 0 || web.Pending != 1 || web.LastRecord == nil || web.LastRecord.Version != "5.2.0" {
		t.Errorf("web = %+v, want one queued 5.2.0 and no waiting reason", web)
	}
	run := rep.Environments[0].Running
	if len(run) != 1 || run[0].Service != "web" || run[0].Version != "5.1.0" || run[0].StartedAt == nil ||
		!run[0].StartedAt.Equal(statusNow.Add(-2*time.Minute)) {
		t.Errorf("qa runs %+v, want web 5.1.0", run)
	}
	if rep.DeadLetters != 2 {
		t.Errorf("dead letters = %d, want 2", rep.DeadLetters)
	}
}

func TestStatusFreezes(t *testing.T) {
	rep := fullStatus(t).status("")
	frozen := map[string]*FreezeStatus{}
	for _, e := range rep.Environments {
		frozen[e.Name] = e.Frozen
	}
	if f := frozen["staging"]; f == nil || f.All || f.Actor != "alice@laptop" || f.Until == nil || !f.Until.Equal(statusNow.Add(10*time.Hour)) {
		t.Errorf("staging frozen = %+v, want its own freeze", f)
	}
	for _, env := range []string{"qa", "prod"} { // prod's own freeze has expired
		if f := frozen[env]; f == nil || !f.All || f.Actor != "bob" || f.Reason != "incident 42" || f.Until != nil {
			t.Errorf("%s frozen = %+v, want the halt", env, f)
		}
	}
	if h := rep.Halted; h == nil || h.Actor != "bob" || !h.Since.Equal(statusNow.Add(-5*time.Minute)) {
		t.Errorf("halted = %+v", h)
	}

	tests := []struct {
		name       string
		set        func(r *statusRig)
		frozen     string // the actor of qa's freeze, "" for none
		halted     bool
		frozenHalt bool
	}{
		{"none", func(*statusRig) {}, "", false, false},
		{"expired freeze", func(r *statusRig) { r.freeze("qa", "carol", "over", statusNow.Add(-time.Hour), at(-time.Second)) }, "", false, false},
		{"freeze until now", func(r *statusRig) { r.freeze("qa", "carol", "over", statusNow.Add(-time.Hour), at(0)) }, "", false, false},
		{"active freeze", func(r *statusRig) { r.freeze("qa", "carol", "on", statusNow.Add(-time.Hour), at(time.Second)) }, "carol", false, false},
		{"freeze of another environment", func(r *statusRig) { r.freeze("prod", "carol", "on", statusNow, nil) }, "", false, false},
		{"expired halt", func(r *statusRig) { r.freeze("", "bob", "over", statusNow.Add(-time.Hour), at(-time.Minute)) }, "", false, false},
		{"halt", func(r *statusRig) { r.freeze("", "bob", "on", statusNow, nil) }, "bob", true, true},
		{"freeze and halt", func(r *statusRig) {
			r.freeze("qa", "carol", "on", statusNow, nil)
			r.freeze("", "bob", "on", statusNow, nil)
		}, "carol", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newStatusRig(t)
			tt.set(r)
			rep := r.status("qa")
			f := rep.Environments[0].Frozen
			switch {
			case tt.frozen == "" && f != nil:
				t.Errorf("qa frozen = %+v, want null", f)
			case tt.frozen != "" && (f == nil || f.Actor != tt.frozen || f.All != tt.frozenHalt):
				t.Errorf("qa frozen = %+v, want %s's (halt %v)", f, tt.frozen, tt.frozenHalt)
			}
			if (rep.Halted != nil) != tt.halted {
				t.Errorf("halted = %+v, want %v", rep.Halted, tt.halted)
			}
			b, err := json.Marshal(rep)
			r.must(err)
			if tt.frozen == "" && !bytes.Contains(b, []byte(`"frozen":null`)) {
				t.Errorf("JSON %s: want \"frozen\":null", b)
			}
		})
	}
}

func TestStatusPaused(t *testing.T) {
	r := newStatusRig(t)
	ctx := context.Background()
	r.baseline("deployments", "qa", 1, "payments=1.0.0")
	r.baseline("other", "qa", 2, "web=1.0.0")
	r.baseline("deployments", "prod", 3, "payments=1.0.0")
	if rep := r.status(""); rep.Environments[0].Paused || rep.Environments[2].Paused {
		t.Fatal("an environment is paused before any pause")
	}
	r.at = statusNow.Add(-time.Hour)
	r.must(r.st.Apply(ctx, store.Batch{Repository: "other", Environment: "qa", Pause: store.PauseDeleted}))
	// A repository the config no longer names pauses nothing it shows.
	r.must(r.st.Apply(ctx, store.Batch{Repository: "gone", Environment: "prod", Pause: store.PauseForcePush}))

	rep := r.status("")
	qa, prod := rep.Environments[0], rep.Environments[2]
	if !qa.Paused || len(qa.Pauses) != 1 {
		t.Fatalf("qa paused %v by %+v, want other's deleted branch", qa.Paused, qa.Pauses)
	}
	if p := qa.Pauses[0]; p.Repository != "other" || p.Branch != "qa" || p.Reason != store.PauseDeleted ||
		p.Since == nil || !p.Since.Equal(statusNow.Add(-time.Hour)) {
		t.Errorf("qa's pause = %+v, want other's deleted branch an hour ago", p)
	}
	if prod.Paused || len(prod.Pauses) != 0 {
		t.Errorf("prod paused %v by %+v, want not paused", prod.Paused, prod.Pauses)
	}
	if _, err := r.st.Resume(ctx, "qa", "", "dave"); err != nil {
		t.Fatal(err)
	}
	if r.status("qa").Environments[0].Paused {
		t.Error("qa is still paused after resume")
	}
}

// TestStatusWaitingFlood: a JIRA outage holds every commit of a service
// pending; status counts them all and lists the first maxWaiting reasons.
func TestStatusWaitingFlood(t *testing.T) {
	r := newStatusRig(t)
	r.baseline("deployments", "qa", 1, "payments=1.0.0")
	const n = 3 * maxWaiting
	for i := range n {
		r.record("deployments", "qa", "payments", 100+i, fmt.Sprintf("1.0.%d", i+1), store.PhasePolicy,
			policy.Reason{Rule: policy.RuleJira, Message: "JIRA cannot be reached", Commit: statusSHA(100 + i)})
	}
	sv := findService(t, r.status("qa"), "qa", "deployments", "payments")
	if sv.Pending != n || len(sv.Waiting) != maxWaiting || sv.Waiting[0].Commit != statusSHA(100) ||
		sv.Waiting[maxWaiting-1].Commit != statusSHA(100+maxWaiting-1) {
		t.Errorf("%d pending, %d waiting reasons, want %d and the oldest %d", sv.Pending, len(sv.Waiting), n, maxWaiting)
	}
	if l := sv.LastRecord; l == nil || l.Commit != statusSHA(100+n-1) {
		t.Errorf("last record = %+v, want the newest", l)
	}
}

func TestStatusEnvFilter(t *testing.T) {
	r := fullStatus(t)
	rep := r.status("staging")
	if len(rep.Environments) != 1 || rep.Environments[0].Name != "staging" {
		t.Fatalf("--env staging reports %+v", rep.Environments)
	}
	if sv := rep.Environments[0].Services; len(sv) != 1 || sv[0].Service != "payments" || sv[0].Version != "1.1.0" ||
		len(sv[0].Waiting) != 1 || sv[0].Waiting[0].Rule != policy.RulePromotion {
		t.Errorf("staging's services %+v", sv)
	}
	if rep.Halted == nil || rep.DeadLetters != 2 {
		t.Errorf("--env staging: halted %v, dead letters %d: the halt and the dead letters concern every environment", rep.Halted, rep.DeadLetters)
	}
	_, err := Status(context.Background(), r.cfg, r.st, StatusOptions{Env: "qa2", Now: statusNow})
	if !errors.Is(err, ErrUnknownEnvironment) || !strings.Contains(err.Error(), `"qa2"`) || !strings.Contains(err.Error(), "qa, staging, prod") {
		t.Errorf("unknown environment: %v, want ErrUnknownEnvironment naming it and the known ones", err)
	}
}

// statusAdditions are the keys the report adds to SPEC §7's, per object.
var statusAdditions = map[string][]string{
	"":                                   {"halted", "at"},
	".environments":                      {"pauses", "running"},
	".environments.frozen":               {"all"},
	".environments.services":             {"pending"},
	".environments.services.last_record": {"action"},
}

// TestStatusJSONShape checks `status --json` against SPEC §7's example key
// by key: every object has the SPEC's keys in the SPEC's order, then only
// the additions listed above; values have the SPEC's types, times are RFC
// 3339, and lists are [] where they are empty.
func TestStatusJSONShape(t *testing.T) {
	spec, err := os.ReadFile(filepath.Join("testdata", "status_spec7.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, rep := range map[string]*StatusReport{"full": fullStatus(t).status(""), "empty": newStatusRig(t).status("")} {
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		got, want := keyOrders(t, b), keyOrders(t, spec)
		for path, keys := range want {
			if _, seen := got[path]; !seen && name == "full" {
				t.Errorf("%s: the report has no %q object to compare", name, path)
				continue
			}
			if g := got[path]; g != nil && !reflect.DeepEqual(g, append(slices.Clone(keys), statusAdditions[path]...)) {
				t.Errorf("%s: keys of %q\n got %v\nwant %v then %v", name, path, g, keys, statusAdditions[path])
			}
		}
		var gv, wv any
		if err := json.Unmarshal(b, &gv); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(spec, &wv); err != nil {
			t.Fatal(err)
		}
		statusShape(t, name, "", gv, wv)
		m := gv.(map[string]any)
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(m["at"])); err != nil {
			t.Errorf("%s: at = %v", name, m["at"])
		}
		for _, e := range m["environments"].([]any) {
			for _, k := range []string{"services", "pauses", "running"} {
				if _, ok := e.(map[string]any)[k].([]any); !ok {
					t.Errorf("%s: %s = %v, want a list", name, k, e.(map[string]any)[k])
				}
			}
		}
	}
}

var (
	statusTimes     = map[string]bool{"since": true, "until": true, "deployed_at": true}
	statusNullables = map[string]bool{"frozen": true, "last_record": true, "until": true, "deployed_at": true}
)

// statusShape compares the SPEC's keys of got with want by JSON type.
func statusShape(t *testing.T, name, path string, got, want any) {
	t.Helper()
	key := path[strings.LastIndex(path, ".")+1:]
	if got == nil && statusNullables[key] {
		return
	}
	if statusTimes[key] {
		if s, ok := got.(string); !ok {
			t.Errorf("%s: %s = %v, want an RFC 3339 time", name, path, got)
		} else if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("%s: %s = %q: %v", name, path, s, err)
		}
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: %s = %v, want an object", name, path, got)
			return
		}
		for k, wv := range w {
			statusShape(t, name, path+"."+k, g[k], wv)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			t.Errorf("%s: %s = %v, want a list", name, path, got)
			return
		}
		for _, e := range g {
			statusShape(t, name, path, e, w[0])
		}
	default:
		if reflect.TypeOf(got) != reflect.TypeOf(want) {
			t.Errorf("%s: %s = %#v, want the type of %#v", name, path, got, want)
		}
	}
}

// keyOrders lists, for each object path ("" is the top; lists are walked
// through), its keys in order of first appearance.
func keyOrders(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	out := map[string][]string{}
	var walk func(path string)
	walk = func(path string) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		switch tok {
		case json.Delim('{'):
			if out[path] == nil {
				out[path] = []string{}
			}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(out[path], k.(string)) {
					out[path] = append(out[path], k.(string))
				}
				walk(path + "." + k.(string))
			}
			_, err = dec.Token()
		case json.Delim('['):
			for dec.More() {
				walk(path)
			}
			_, err = dec.Token()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	walk("")
	return out
}

func TestStatusTextGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := fullStatus(t).status("").WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", "status.golden.txt")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/app -run TestStatusTextGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if the change is right)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
	// What the state holds never reaches the terminal as control.
	for i, line := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
		if strings.ContainsFunc(line, func(c rune) bool { return c < ' ' || c == 0x7f || c == '\u202e' }) {
			t.Errorf("line %d %q holds a control character", i+1, line)
		}
	}
}

func TestStatusTextEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := newStatusRig(t).status("prod").WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "prod\n  no services\n"; got != want {
		t.Errorf("empty status:\n%q\nwant\n%q", got, want)
	}
}

func TestStatusTextWriteError(t *testing.T) {
	errFull := errors.New("disk full")
	if err := fullStatus(t).status("").WriteText(failingWriter{errFull}); !errors.Is(err, errFull) {
		t.Errorf("WriteText = %v, want the writer's error", err)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }
