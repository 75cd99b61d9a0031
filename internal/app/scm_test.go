package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/notify"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/test/fakescm"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// scmTestConfig is a config with integrations.scm on fake f, polling
// repo, with qa and staging.
func scmTestConfig(t *testing.T, dir string, repo *gitserver.Repo, f *fakescm.Server, prs bool, extra string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "scm-token"), []byte("the-scm-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`state: %s
poll_interval: 100ms
public_url: https://gitmon.example.com
tuning: {concurrency: 2, shutdown_grace: 50ms}
repositories:
  - {name: deployments, url: %q, scm: {project: acme/deployments}}
environments:
  - {name: qa, branch: qa, release: [deploy]}
  - {name: staging, branch: staging, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
integrations:
  scm: {provider: %s, url: %q, token_file: scm-token, pull_requests: %t}
%s`, filepath.Join(dir, "state"), repo.Bare, f.Provider(), f.URL(), prs, extra)
}

// TestSCMRecordStatuses: a record's commit status goes pending → success
// on its commit (never back), a rejected record's is failure with its
// reason, each linked to its dashboard page; records of an environment
// after a restart that lost their status get it from the sweep.
func TestSCMRecordStatuses(t *testing.T) {
	f := fakescm.New(t, fakescm.GitHub, "the-scm-token")
	repo := gitserver.NewRepo(t)
	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.0.0"))
	repo.Commit("qa", "initial", tAlice, tAlice)
	dir := t.TempDir()
	cfg := testConfig(t, dir, scmTestConfig(t, dir, repo, f, false, ""))
	a, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoJitter: true, Listener: localListener(t)})
	if err != nil {
		t.Fatal(err)
	}
	stop := runApp(a)
	defer func() { stop() }()

	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	good := repo.Commit("qa", "bump a", tAlice, tAlice)
	const ctxA = "gitmon/qa/a"
	eventually(t, "the success status", func() bool {
		st, ok := f.Latest(good, ctxA)
		return ok && st.State == "success"
	})
	recs, _ := a.store.Records(context.Background(), store.Filter{Environment: "qa", Service: "a"})
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	st, _ := f.Latest(good, ctxA)
	if st.TargetURL != "https://gitmon.example.com/records/"+recs[0].ID || st.Description != "deployed 1.1.0" || st.Project != "acme/deployments" {
		t.Errorf("success status: %+v", st)
	}
	checkMonotone(t, f.Statuses(), good, ctxA)

	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.2.0"))
	bad := repo.Commit("qa", "bump a by mallory", "Mallory <mallory@evil.test>", "Mallory <mallory@evil.test>")
	eventually(t, "the failure status", func() bool {
		st, ok := f.Latest(bad, ctxA)
		return ok && st.State == "failure"
	})
	st, _ = f.Latest(bad, ctxA)
	if !strings.HasPrefix(st.Description, "rejected: committers:") {
		t.Errorf("failure status: %+v", st)
	}
	stop()

	// A crash between a record's write and its status: the item is gone.
	st2, err := store.Open(context.Background(), cfg.State, store.Options{Lock: true})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ = st2.Records(context.Background(), store.Filter{Environment: "qa", Service: "a"})
	rejected := recs[0]
	if rejected.Commit != bad {
		t.Fatalf("newest record %+v", rejected)
	}
	// Stand-in for the lost enqueue: a record with no status item.
	rejected.ID, rejected.Seq = "", 0
	if err := st2.Apply(context.Background(), store.Batch{Repository: "deployments", Environment: "qa", Branch: "qa",
		Commit: bad, Records: []*store.Record{rejected}}); err != nil {
		t.Fatal(err)
	}
	st2.Close()
	a, err = New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoJitter: true, Listener: localListener(t)})
	if err != nil {
		t.Fatal(err)
	}
	stop = runApp(a)
	eventually(t, "the swept status", func() bool {
		it, ok, _ := a.store.OutboxItem(context.Background(), notify.SCMStatusKey(rejected.ID, store.StatusRejected))
		return ok && it.Sent()
	})
}

// checkMonotone fails if a status of (sha, context) came after one of a
// higher rank: pending → success, never success → pending.
func checkMonotone(t *testing.T, all []fakescm.Status, sha, context string) {
	t.Helper()
	rank := map[string]int{"pending": 0, "success": 2, "failure": 2}
	last := -1
	for _, st := range all {
		if st.SHA != sha || st.Context != context {
			continue
		}
		if rank[st.State] < last {
			t.Errorf("%s went back to %s: %+v", context, st.State, all)
		}
		last = rank[st.State]
	}
}
