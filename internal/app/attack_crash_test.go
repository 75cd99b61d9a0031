package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// newCrashRigEnv is newCrashRig with its own environment and policy
// lines: the same repository (a and b at 1.0.0), baselined.
func newCrashRigEnv(t *testing.T, env, pol string) *crashRig {
	t.Helper()
	repo := gitserver.NewRepo(t)
	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.0.0"))
	repo.WriteFile("services/b.yaml", tDescriptor("b", "1.0.0"))
	repo.Commit("qa", "initial", tAlice, tAlice)
	dir := t.TempDir()
	cfgText := fmt.Sprintf(`state: %s
poll_interval: 100ms
tuning: {concurrency: 1, shutdown_grace: 50ms}
repositories:
  - {name: deployments, url: %q}
environments:
  - %s
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
  smoke: {runner: exec, command: ["/bin/true"]}
policy: %s
`, filepath.Join(dir, "state"), repo.Bare, env, pol)
	path := filepath.Join(dir, "gitmon.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path, config.Options{Mode: config.ModeServe})
	if err != nil {
		t.Fatal(err)
	}
	rig := &crashRig{t: t, repo: repo, cfg: cfg, log: &ranLog{ran: map[string]int{}},
		quiet: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rig.base = cfg.State
	rig.run(rig.base, 0, func(s *crashStore) bool { return rig.branchAt(s, repo.Head("qa")) })
	return rig
}

// crashEveryWrite stops gitmon after each durable write of processing tip
// in turn, restarts it, and checks SPEC §5 Crashes for services a and b:
// one record each with the given action and stage count, no stage run
// twice, succeeded only if every stage ran and succeeded, failed only with
// an interrupted stage, and last good as okGood says (the version a
// succeeded record leaves; "" none) or as the baseline left it.
func crashEveryWrite(t *testing.T, rig *crashRig, tip, action string, stages int, okGood string) {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	copyDir(t, rig.base, state)
	clean := rig.run(state, 0, func(s *crashStore) bool { return rig.branchAt(s, tip) })
	total := clean.writes.Load()
	t.Logf("crash points: %d durable writes", total)
	for n := int64(1); n <= total; n++ {
		rig.log.ran = map[string]int{}
		state := filepath.Join(t.TempDir(), "state")
		copyDir(t, rig.base, state)
		rig.run(state, n, func(s *crashStore) bool { return rig.branchAt(s, tip) })
		rig.run(state, 0, func(s *crashStore) bool { return rig.branchAt(s, tip) })
		ctx := context.Background()
		st, err := store.Open(ctx, state, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := st.Records(ctx, store.Filter{Repository: "deployments", Environment: "qa"})
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range []string{"a", "b"} {
			fail := func(format string, args ...any) {
				t.Errorf("crash after write %d/%d, service %s: %s", n, total, svc, fmt.Sprintf(format, args...))
			}
			var mine []*store.Record
			for _, r := range recs {
				if r.Service == svc && r.Commit == tip {
					mine = append(mine, r)
				}
			}
			if len(mine) != 1 {
				fail("%d records for the commit, want 1", len(mine))
				continue
			}
			rec := mine[0]
			if rec.Action != action {
				fail("action %q, want %q", rec.Action, action)
			}
			if len(rec.Stages) != stages {
				fail("%d stages, want %d", len(rec.Stages), stages)
			}
			allRan, interrupted := true, false
			for _, stg := range rec.Stages {
				runs := rig.log.runs(tip[:8] + "/" + svc + "/" + stg.Name)
				if runs > 1 {
					fail("stage %s ran %d times", stg.Name, runs)
				}
				if stg.Status == store.StageSucceeded && runs != 1 {
					fail("stage %s is succeeded but ran %d times", stg.Name, runs)
				}
				allRan = allRan && stg.Status == store.StageSucceeded
				interrupted = interrupted || stg.Status == store.StageInterrupted
			}
			want := "1.0.0"
			switch rec.Status {
			case store.StatusSucceeded:
				if !allRan {
					fail("succeeded although not every stage ran and succeeded: %+v", rec.Stages)
				}
				want = okGood
			case store.StatusFailed:
				if !interrupted {
					fail("failed with no interrupted stage: %+v", rec.Stages)
				}
			default:
				fail("status %s after restart", rec.Status)
			}
			sv, err := st.Service(ctx, "deployments", "qa", svc)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if sv.LastGood != nil {
				got = sv.LastGood.Version
			}
			if got != want {
				fail("last good %q, want %q (record %s)", got, want, rec.Status)
			}
		}
		st.Close()
	}
}

// TestAttackCrashAtEveryWriteOfARemove: deleting two descriptors with
// allow_delete runs the environment's two remove pipelines for each; a
// crash after any write of it keeps SPEC §5 Crashes.
func TestAttackCrashAtEveryWriteOfARemove(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy], remove: [smoke, deploy]}`,
		`{committers: ["*@example.com"], changes: {allow_delete: true}}`)
	rig.repo.Remove("services/a.yaml")
	rig.repo.Remove("services/b.yaml")
	tip := rig.repo.Commit("qa", "remove a and b", tAlice, tAlice)
	crashEveryWrite(t, rig, tip, "remove", 2, "")
}

// TestAttackCrashAtEveryWriteOfAReleaseOfNoStages: `release: []` runs
// nothing; a crash after any write still ends each record succeeded, once.
func TestAttackCrashAtEveryWriteOfAReleaseOfNoStages(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: []}`, `{committers: ["*@example.com"]}`)
	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	rig.repo.WriteFile("services/b.yaml", tDescriptor("b", "1.1.0"))
	tip := rig.repo.Commit("qa", "bump a and b", tAlice, tAlice)
	crashEveryWrite(t, rig, tip, "deploy", 0, "1.1.0")
}
