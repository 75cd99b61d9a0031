package demo

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// TestMain makes the test binary the demo's stage command: the demo's
// exec stages run it as `<exe> demo-stage ...`, as they run gitmon. It
// leaves with syscall.Exit, because os.Exit(0) in a race-enabled binary
// sleeps a second first (GORACE atexit_sleep_ms) and the story runs two
// dozen stages; a stage has one goroutine, so there is no race to report.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == StageCommand {
		syscall.Exit(Stage(os.Args[2:], os.Stdout))
	}
	os.Exit(m.Run())
}

func TestRepoBuild(t *testing.T) {
	g, err := newRepo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var parents []plumbing.Hash
	for _, env := range []string{"qa", "staging"} {
		sha, err := g.commit(env, map[string]string{"services/a.yaml": "service: a\nversion: 1\n"}, "x", bob, parents...)
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		parents = []plumbing.Hash{plumbing.NewHash(sha)}
	}
}

// TestStory runs the demo and checks, from the state it leaves, that
// gitmon did what the story tells: the skipped version is rejected at
// staging and never reaches prod, a promotion waits for upstream and then
// follows, a freeze holds prod until unfreeze, and a failed release is
// retried by its actor.
func TestStory(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "demo")
	var out bytes.Buffer
	if err := Run(t.Context(), &out, Options{Exe: exe, Keep: dir}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	st, err := store.Open(t.Context(), filepath.Join(dir, stateDir), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Records(t.Context(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(recs) // oldest first
	pick := func(env, service, version string) []*store.Record {
		var out []*store.Record
		for _, r := range recs {
			if r.Environment == env && r.Service == service && r.Version == version {
				out = append(out, r)
			}
		}
		return out
	}
	one := func(env, service, version string) *store.Record {
		t.Helper()
		rs := pick(env, service, version)
		if len(rs) != 1 {
			t.Fatalf("%d records of %s %s in %s, want 1:\n%s", len(rs), service, version, env, text)
		}
		return rs[0]
	}
	hasRule := func(r *store.Record, rule string) bool {
		return slices.ContainsFunc(r.Reasons, func(x policy.Reason) bool { return x.Rule == rule })
	}

	t.Run("skipped in qa, rejected at staging, never in prod", func(t *testing.T) {
		if q := one("qa", "search", "2.1.0"); q.Status != store.StatusSkipped {
			t.Errorf("qa search 2.1.0 is %s, want skipped", q.Status)
		}
		s := one("staging", "search", "2.1.0")
		if s.Status != store.StatusRejected || !hasRule(s, policy.RulePromotion) || s.StartedAt != nil {
			t.Errorf("staging search 2.1.0: %s %+v started %v; want rejected (rule promotion), never started", s.Status, s.Reasons, s.StartedAt)
		}
		if rs := pick("prod", "search", "2.1.0"); len(rs) != 0 {
			t.Errorf("prod has %d records of search 2.1.0, want none", len(rs))
		}
	})

	t.Run("a promotion waits for upstream, then follows", func(t *testing.T) {
		qa, staging, prod := one("qa", "payments", "1.5.0"), one("staging", "payments", "1.5.0"), one("prod", "payments", "1.5.0")
		for _, r := range []*store.Record{qa, staging, prod} {
			if r.Status != store.StatusSucceeded {
				t.Fatalf("%s payments 1.5.0 is %s, want succeeded", r.Environment, r.Status)
			}
		}
		for _, c := range []struct{ down, up *store.Record }{{staging, qa}, {prod, staging}} {
			// Decided while upstream still ran it: it waited.
			if !c.down.CreatedAt.Before(*c.up.FinishedAt) {
				t.Errorf("%s's record was made at %s, after %s succeeded at %s: it did not wait",
					c.down.Environment, c.down.CreatedAt, c.up.Environment, c.up.FinishedAt)
			}
			if c.down.StartedAt.Before(*c.up.FinishedAt) {
				t.Errorf("%s started before %s succeeded", c.down.Environment, c.up.Environment)
			}
			if u := c.down.Evidence.Upstream; u == nil || u.Environment != c.up.Environment || u.Record != c.up.ID {
				t.Errorf("%s's upstream evidence %+v, want %s record %s", c.down.Environment, u, c.up.Environment, c.up.ID)
			}
		}
		for _, want := range []string{"staging/payments 1.4.3 → 1.5.0: PENDING", "reason promotion: waiting for qa to release payments 1.5.0",
			"prod/payments 1.4.1 → 1.5.0: PENDING", "reason promotion: waiting for staging to release payments 1.5.0"} {
			if !strings.Contains(text, want) {
				t.Errorf("the timeline lacks %q:\n%s", want, text)
			}
		}
	})

	t.Run("a freeze holds prod until unfreeze", func(t *testing.T) {
		evs, err := st.Events(t.Context(), store.Filter{Environment: "prod"})
		if err != nil {
			t.Fatal(err)
		}
		var froze, unfroze *store.Event
		for i := range evs {
			switch e := &evs[i]; e.Kind {
			case store.EventFreeze:
				froze = e
			case store.EventUnfreeze:
				unfroze = e
			}
		}
		if froze == nil || unfroze == nil || froze.Actor != carol || unfroze.Actor != carol {
			t.Fatalf("prod's events: %+v; want a freeze and an unfreeze by %s", evs, carol)
		}
		r := one("prod", "search", "2.2.0")
		if r.Status != store.StatusSucceeded || r.StartedAt == nil {
			t.Fatalf("prod search 2.2.0 is %s, want succeeded", r.Status)
		}
		if r.CreatedAt.Before(froze.At) || r.StartedAt.Before(unfroze.At) {
			t.Errorf("prod search 2.2.0 made at %s, started at %s; frozen at %s, unfrozen at %s: it was not held",
				r.CreatedAt, r.StartedAt, froze.At, unfroze.At)
		}
		if !strings.Contains(text, "prod/search 2.0.0 → 2.2.0: PENDING") ||
			!strings.Contains(text, "reason window: prod is frozen by "+carol) || !strings.Contains(text, "FROZEN by "+carol) {
			t.Errorf("the timeline does not show prod held by carol's freeze, nor status saying so:\n%s", text)
		}
	})

	t.Run("a failed release, retried by its actor", func(t *testing.T) {
		rs := pick("qa", "payments", BrokenVersion)
		if len(rs) != 2 {
			t.Fatalf("%d records of payments %s in qa, want the failed one and its retry", len(rs), BrokenVersion)
		}
		failed, retry := rs[0], rs[1]
		if failed.Status != store.StatusFailed || failed.Trigger == store.TriggerRetry {
			t.Errorf("first record: %s, trigger %q; want failed, from its commit", failed.Status, failed.Trigger)
		}
		if retry.Status != store.StatusSucceeded || retry.Trigger != store.TriggerRetry || retry.Actor != carol || retry.Commit != failed.Commit {
			t.Errorf("retry: %s, trigger %q, actor %q, commit %s; want succeeded, retry by %s at %s",
				retry.Status, retry.Trigger, retry.Actor, short(retry.Commit), carol, short(failed.Commit))
		}
	})

	t.Run("ends with the status table", func(t *testing.T) {
		i := strings.LastIndex(text, "$ gitmon status\n")
		if i < 0 || !strings.Contains(text[i:], "SERVICE") || !strings.Contains(text[i:], "prod") {
			t.Errorf("no final status table:\n%s", text)
		}
	})
}

func TestStage(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GITMON_ENV", "qa")
	t.Setenv("GITMON_SERVICE", "payments")
	t.Setenv("GITMON_VERSION", "1.4.2")
	var out bytes.Buffer
	if code := Stage([]string{"deploy", dir}, &out); code != 0 {
		t.Fatalf("deploy: exit %d: %s", code, out.String())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "qa", "payments")); err != nil || string(b) != "1.4.2" {
		t.Errorf("the cluster has %q, %v; want 1.4.2", b, err)
	}
	for _, args := range [][]string{nil, {"deploy"}, {"smoke", "x"}, {"rm", "-rf"}} {
		out.Reset()
		if code := Stage(args, &out); code != 2 || !strings.Contains(out.String(), "usage: gitmon demo-stage") {
			t.Errorf("Stage(%q) = %d, %q; want a usage error", args, code, out.String())
		}
	}
	// A service name cannot climb out of the cluster folder.
	t.Setenv("GITMON_SERVICE", "../../escape")
	if code := Stage([]string{"deploy", dir}, &out); code != 0 {
		t.Fatalf("deploy: exit %d: %s", code, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "qa", "escape")); err != nil {
		t.Errorf("the version went elsewhere than the cluster folder: %v", err)
	}
}
