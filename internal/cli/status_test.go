package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// failedRelease stores a failed release of payments 1.1.0 in staging.
func failedRelease(t *testing.T, st store.Store) *store.Record {
	t.Helper()
	ctx := t.Context()
	d := descriptors.New()
	d.Service, d.Version = "payments", "1.1.0"
	sha := strings.Repeat("ab", 20)
	rec := &store.Record{Repository: "deployments", Environment: "staging", Service: "payments", Action: "deploy",
		Version: "1.1.0", Commit: sha, Committer: "alice@example.com", Author: "alice@example.com",
		Status: store.StatusPending, Phase: store.PhaseQueued, Descriptor: d, Message: "bump payments"}
	if err := st.Apply(ctx, store.Batch{Repository: "deployments", Environment: "staging", Branch: "staging", Commit: sha,
		Records: []*store.Record{rec}, Services: []store.Service{{Repository: "deployments", Environment: "staging", Service: "payments", Present: true, Current: d}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.StartRecord(ctx, rec.ID, []store.Stage{{Name: "deploy", Runner: "exec"}}, now); err != nil {
		t.Fatal(err)
	}
	if err := st.EndRecord(ctx, rec.ID, store.End{Status: store.StatusFailed, At: now}); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestStatusCommand(t *testing.T) {
	r := newRig(t)
	st := r.store()
	failedRelease(t, st)
	if err := st.Freeze(t.Context(), store.Freeze{Environment: "prod", Reason: "quarter-end", Actor: "ops@host"}); err != nil {
		t.Fatal(err)
	}
	res := gitmon(t, "status", "--json", "--config", r.cfg)
	if res.code != ExitOK {
		t.Fatalf("status --json: %v", res)
	}
	var rep struct {
		Environments []struct {
			Name     string
			Frozen   *struct{ Reason, Actor string }
			Services []struct {
				Service    string
				LastRecord *struct{ Status, Version string } `json:"last_record"`
			}
		}
		DeadLetters *int `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(res.out), &rep); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, res.out)
	}
	if len(rep.Environments) != 3 || rep.DeadLetters == nil {
		t.Fatalf("status: %s", res.out)
	}
	for _, e := range rep.Environments {
		switch e.Name {
		case "staging":
			if len(e.Services) != 1 || e.Services[0].LastRecord == nil || e.Services[0].LastRecord.Status != "failed" {
				t.Errorf("staging: %+v", e)
			}
		case "prod":
			if e.Frozen == nil || e.Frozen.Actor != "ops@host" || e.Frozen.Reason != "quarter-end" {
				t.Errorf("prod is not shown frozen: %+v", e)
			}
		}
	}
	res = gitmon(t, "status", "--config", r.cfg, "--env", "prod")
	if res.code != ExitOK || !strings.Contains(res.out, "FROZEN") || !strings.Contains(res.out, "ops@host") {
		t.Errorf("status --env prod: %v", res)
	}
	if res := gitmon(t, "status", "--config", r.cfg, "--env", "nowhere"); res.code != ExitUsage || !strings.Contains(res.errOut, "nowhere") {
		t.Errorf("status of an unknown environment: %v", res)
	}
}

func TestRetryCommand(t *testing.T) {
	r := newRig(t)
	st := r.store()
	if res := gitmon(t, "retry", "--config", r.cfg, "--env", "staging", "--service", "payments"); res.code != ExitUsage ||
		!strings.Contains(res.errOut, "nothing to retry") {
		t.Fatalf("retry with no release: %v", res)
	}
	failed := failedRelease(t, st)
	res := gitmon(t, "retry", "--env", "staging", "--service", "payments", "--actor", "carol@example.com", "--config", r.cfg)
	if res.code != ExitOK || !strings.Contains(res.out, "queued a retry of payments 1.1.0 in staging") || !strings.Contains(res.out, "carol@example.com") {
		t.Fatalf("retry: %v", res)
	}
	recs, err := st.Records(t.Context(), store.Filter{Environment: "staging", Service: "payments"})
	if err != nil || len(recs) != 2 {
		t.Fatalf("records %v, %v", recs, err)
	}
	if n := recs[0]; n.Trigger != store.TriggerRetry || n.Actor != "carol@example.com" || n.Commit != failed.Commit || n.Status != store.StatusPending {
		t.Errorf("retry record: %+v", n)
	}
	if res := gitmon(t, "retry", "--config", r.cfg, "--env", "staging", "--service", "payments"); res.code != ExitUsage {
		t.Errorf("a second retry while one waits: %v", res)
	}
	if res := gitmon(t, "retry", "--config", r.cfg, "--service", "payments"); res.code != ExitUsage || !strings.Contains(res.errOut, "--env") {
		t.Errorf("retry without --env: %v", res)
	}
}

func TestRetryRejectedExits4(t *testing.T) {
	r := newRig(t)
	st := r.store()
	failedRelease(t, st)
	// The committer is no longer allowed: step 1 applies to a retry.
	r.write("gitmon.yaml", strings.Replace(rigConfig, `committers: ["*@example.com"]`, `committers: ["bob@example.com"]`, 1), 0o644)
	res := gitmon(t, "retry", "--config", r.cfg, "--env", "staging", "--service", "payments")
	if res.code != ExitRetryRejected || !strings.Contains(res.out, "rejected") || !strings.Contains(res.out, "committers") {
		t.Fatalf("retry by a committer no longer allowed: %v", res)
	}
}
