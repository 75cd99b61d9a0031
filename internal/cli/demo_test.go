package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/demo"
)

// TestMain makes the test binary gitmon for the demo's exec stages, which
// run `<exe> demo-stage ...`. It leaves with syscall.Exit, because
// os.Exit(0) in a race-enabled binary sleeps a second first (GORACE
// atexit_sleep_ms); a stage has one goroutine, so there is no race to
// report.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == demo.StageCommand {
		syscall.Exit(Run(context.Background(), Streams{Out: os.Stdout, Err: os.Stderr}, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestDemoKeep: `gitmon demo --keep DIR` leaves a repository, config and
// state that status, history, plan and validate work on afterwards, and
// refuses a folder that is not empty.
func TestDemoKeep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gitmon-demo")
	res := gitmon(t, "demo", "--keep", dir)
	if res.code != ExitOK {
		t.Fatalf("demo --keep: %v", res)
	}
	cfg := filepath.Join(dir, "gitmon.yaml")
	for _, want := range []string{"gitmon status --config " + cfg, "gitmon history --config " + cfg, "gitmon plan --config " + cfg + " --env prod"} {
		if !strings.Contains(res.out, want) {
			t.Errorf("the demo does not say to try %q:\n%s", want, res.out)
		}
	}
	if b, err := os.ReadFile(cfg); err != nil || !strings.Contains(string(b), `url: "file://`+filepath.Join(dir, "deployments", ".git")+`"`) {
		t.Errorf("the kept config does not watch the kept repository by file://: %v\n%s", err, b)
	}

	t.Run("status", func(t *testing.T) {
		res := gitmon(t, "status", "--config", cfg, "--json")
		if res.code != ExitOK {
			t.Fatalf("status: %v", res)
		}
		var rep struct {
			Environments []struct {
				Name     string
				Frozen   *struct{ Actor string }
				Services []struct{ Service, Version string }
			}
		}
		if err := json.Unmarshal([]byte(res.out), &rep); err != nil {
			t.Fatalf("status --json: %v\n%s", err, res.out)
		}
		got := map[string]string{}
		for _, e := range rep.Environments {
			if e.Frozen != nil {
				t.Errorf("%s is still frozen by %s", e.Name, e.Frozen.Actor)
			}
			for _, s := range e.Services {
				got[e.Name+"/"+s.Service] = s.Version
			}
		}
		// What the story released where: prod has only what passed staging.
		want := map[string]string{"qa/payments": demo.BrokenVersion, "qa/search": "2.2.0", "staging/payments": "1.5.0",
			"staging/search": "2.2.0", "prod/payments": "1.5.0", "prod/search": "2.2.0"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("status: %s is %q, want %q (all: %v)", k, got[k], v, got)
			}
		}
		if text := gitmon(t, "status", "--config", cfg); text.code != ExitOK || !strings.Contains(text.out, "SERVICE") {
			t.Errorf("status table: %v", text)
		}
	})

	t.Run("history", func(t *testing.T) {
		res := gitmon(t, "history", "--config", cfg)
		if res.code != ExitOK || !strings.Contains(res.out, "promotion: search 2.1.0") {
			t.Fatalf("history does not show the rejected promotion: %v", res)
		}
		res = gitmon(t, "history", "--config", cfg, "--env", "prod", "--json")
		if res.code != ExitOK {
			t.Fatalf("history --env prod: %v", res)
		}
		var recs []struct{ Service, Version, Status string }
		if err := json.Unmarshal([]byte(res.out), &recs); err != nil || len(recs) == 0 {
			t.Fatalf("history --json: %v, %d records\n%s", err, len(recs), res.out)
		}
		for _, r := range recs {
			if r.Version == "2.1.0" {
				t.Errorf("prod has a record of %s 2.1.0 (%s): the version qa skipped reached prod", r.Service, r.Status)
			}
		}
		if ev := gitmon(t, "history", "--config", cfg, "--events"); ev.code != ExitOK ||
			!strings.Contains(ev.out, "froze prod") || !strings.Contains(ev.out, "retried payments") {
			t.Errorf("history --events lacks the freeze or the retry: %v", ev)
		}
	})

	t.Run("plan", func(t *testing.T) {
		res := gitmon(t, "plan", "--config", cfg, "--env", "prod")
		if res.code != ExitPlanNoChange || !strings.Contains(res.out, "prod: no change") {
			t.Errorf("plan --env prod: %v", res)
		}
	})

	t.Run("validate", func(t *testing.T) {
		// The exec stages' command (the kept copy of the binary) resolves.
		if res := gitmon(t, "validate", "--config", cfg); res.code != ExitOK || strings.Contains(res.out+res.errOut, "warning:") {
			t.Errorf("validate: %v", res)
		}
	})

	t.Run("refuses a folder that is not empty", func(t *testing.T) {
		before, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		res := gitmon(t, "demo", "--keep", dir)
		if res.code != ExitUsage || !strings.Contains(res.errOut, "must be an empty folder or not exist") {
			t.Errorf("demo --keep on the kept folder: %v", res)
		}
		if after, err := os.ReadFile(cfg); err != nil || string(after) != string(before) {
			t.Errorf("the refused demo changed %s", cfg)
		}
	})
}
