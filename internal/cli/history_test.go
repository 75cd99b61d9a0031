package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// seedHistory writes what a serve would have recorded: in qa four
// records of payments from ten days to a minute ago, a service search
// seen at the baseline with no record, and events at the same times.
func seedHistory(t *testing.T, r *rig) {
	t.Helper()
	now := time.Now()
	at := func(d time.Duration) time.Time { return now.Add(-d).UTC() }
	finished := at(time.Minute)
	hostile := "policy says no\n\x1b[2Jpwned\r\n" + strings.Repeat("very long reason ", 40)
	recs := []*store.Record{
		{Repository: "deployments", Environment: "qa", Service: "payments", Action: "deploy", Version: "1.0.0", Commit: sha,
			Committer: "alice@example.com", Status: store.StatusSucceeded, CreatedAt: at(10 * 24 * time.Hour)},
		{Repository: "deployments", Environment: "qa", Service: "payments", Action: "deploy", Version: "1.1.0", PreviousVersion: "1.0.0",
			Commit: sha, Committer: "bob@example.com", Status: store.StatusRejected, CreatedAt: at(3 * 24 * time.Hour),
			Reasons: []policy.Reason{{Rule: "committers", Message: hostile}}},
		{Repository: "deployments", Environment: "qa", Service: "payments", Action: "deploy", Version: "1.2.0", PreviousVersion: "1.0.0",
			Commit: sha, Committer: "alice@example.com", Status: store.StatusFailed, CreatedAt: at(2 * time.Hour), FinishedAt: &finished,
			Stages: []store.Stage{{Name: "deploy", Runner: "exec", Status: store.StageFailed, Message: "exit status 3\nboom\ttrace"}}},
		{Repository: "deployments", Environment: "qa", Service: "payments", Action: "deploy", Version: "1.3.0", PreviousVersion: "1.0.0",
			Commit: sha, Committer: "alice@example.com", Status: store.StatusPending, CreatedAt: at(time.Minute),
			Reasons: []policy.Reason{{Rule: "window", Message: "qa is frozen"}}},
	}
	st := r.store()
	if err := st.Apply(t.Context(), store.Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha, Baseline: true,
		Records: recs, Services: []store.Service{{Service: "payments", Present: true}, {Service: "search", Present: true}},
		Events: []store.Event{
			{Kind: store.EventBaseline, Message: "baseline of qa\nsecond line", At: at(10 * 24 * time.Hour)},
			{Kind: store.EventPollError, Message: "poll failed", At: at(2 * time.Hour)},
		}}); err != nil {
		t.Fatal(err)
	}
}

// history runs gitmon history --json on the rig and decodes the records.
func history(t *testing.T, r *rig, args ...string) []store.Record {
	t.Helper()
	res := gitmon(t, append([]string{"history", "--config", r.cfg, "--json"}, args...)...)
	if res.code != ExitOK {
		t.Fatalf("history %v: %v", args, res)
	}
	var recs []store.Record
	if err := json.Unmarshal([]byte(res.out), &recs); err != nil {
		t.Fatalf("history %v: %v\n%s", args, err, res.out)
	}
	return recs
}

func versions(recs []store.Record) string {
	var vs []string
	for _, r := range recs {
		vs = append(vs, r.Version)
	}
	return strings.Join(vs, " ")
}

// TestHistoryFilters: --status (repeated or comma-separated), --since
// (RFC 3339 or a duration back), --limit, and each combined, newest
// first.
func TestHistoryFilters(t *testing.T) {
	r := newRig(t)
	seedHistory(t, r)
	rfc := time.Now().Add(-4 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "1.3.0 1.2.0 1.1.0 1.0.0"},
		{[]string{"--status", "failed"}, "1.2.0"},
		{[]string{"--status", "failed,rejected"}, "1.2.0 1.1.0"},
		{[]string{"--status", "failed", "--status", "rejected"}, "1.2.0 1.1.0"},
		{[]string{"--status", "failed,failed"}, "1.2.0"},
		{[]string{"--status", "superseded"}, ""},
		{[]string{"--since", "24h"}, "1.3.0 1.2.0"},
		{[]string{"--since", "5d"}, "1.3.0 1.2.0 1.1.0"},
		{[]string{"--since", "1d12h"}, "1.3.0 1.2.0"},
		{[]string{"--since", rfc}, "1.3.0 1.2.0 1.1.0"},
		{[]string{"--since", "30s"}, ""},
		{[]string{"--limit", "1"}, "1.3.0"},
		{[]string{"--limit", "2", "--since", "30d"}, "1.3.0 1.2.0"},
		{[]string{"--status", "succeeded,rejected", "--since", "5d"}, "1.1.0"},
		{[]string{"--env", "qa", "--service", "payments", "--status", "pending"}, "1.3.0"},
		{[]string{"--env", "prod", "--service", "payments"}, ""}, // seen in qa only
		{[]string{"--service", "search"}, ""},                    // seen at the baseline, no record
		{[]string{"--repo", "deployments", "--limit", "1"}, "1.3.0"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if got := versions(history(t, r, tc.args...)); got != tc.want {
				t.Errorf("history %v = %q, want %q", tc.args, got, tc.want)
			}
		})
	}

	// Events: --since applies to them too.
	res := gitmon(t, "history", "--config", r.cfg, "--events", "--json", "--since", "3d")
	var evs []store.Event
	if err := json.Unmarshal([]byte(res.out), &evs); err != nil || res.code != ExitOK {
		t.Fatalf("history --events --since: %v %v", err, res)
	}
	if len(evs) != 1 || evs[0].Kind != store.EventPollError {
		t.Errorf("history --events --since 3d = %+v, want the poll error only", evs)
	}
}

// TestHistoryErrors: a filter that cannot match anything because it names
// what does not exist is an error (exit 2), not an empty list.
func TestHistoryErrors(t *testing.T) {
	r := newRig(t)
	seedHistory(t, r)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--env", "live"}, `no environment "live" in ` + r.cfg + " (it has qa, staging, prod)"},
		{[]string{"--repo", "other"}, `no repository "other"`},
		{[]string{"--service", "billing"}, `gitmon has never seen a service "billing" in any environment`},
		{[]string{"--service", "billing", "--env", "qa"}, `never seen a service "billing"`},
		{[]string{"--service", "billing", "--events"}, `never seen a service "billing"`},
		{[]string{"--status", "done"}, `--status "done": want one of pending, running, succeeded, failed, skipped, rejected, superseded`},
		{[]string{"--status", "failed,Failed"}, `--status "Failed"`},
		{[]string{"--status", "failed", "--events"}, "--status selects records; events have none"},
		{[]string{"--since", "yesterday"}, `--since "yesterday": want an RFC 3339 time`},
		{[]string{"--since", "-2h"}, `--since "-2h"`},
		{[]string{"--limit", "-1"}, "--limit -1: want 0 (all) or more"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := gitmon(t, append([]string{"history", "--config", r.cfg}, tc.args...)...)
			if res.code != ExitUsage || !strings.Contains(res.errOut, tc.want) || res.out != "" {
				t.Errorf("want exit 2 saying %q: %v", tc.want, res)
			}
		})
	}
	// Every problem of the flags at once.
	res := gitmon(t, "history", "--config", r.cfg, "--status", "done", "--since", "soon", "--limit", "-3")
	for _, want := range []string{`"done"`, `"soon"`, "-3"} {
		if !strings.Contains(res.errOut, want) {
			t.Errorf("the problems of the flags are not all said (%q missing): %v", want, res)
		}
	}
}

// TestHistoryWhyIsOneLine: reasons and stage messages with newlines,
// control characters and any length show on one bounded line of the
// table; --json keeps them as they are.
func TestHistoryWhyIsOneLine(t *testing.T) {
	r := newRig(t)
	seedHistory(t, r)
	res := gitmon(t, "history", "--config", r.cfg)
	if res.code != ExitOK {
		t.Fatal(res)
	}
	lines := strings.Split(strings.TrimSuffix(res.out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines for 4 records and a header:\n%s", len(lines), res.out)
	}
	if strings.ContainsAny(res.out, "\x1b\r\t") {
		t.Errorf("control characters reached the table: %q", res.out)
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 300 {
			t.Errorf("a line of %d characters: %q", n, l)
		}
	}
	if !strings.Contains(lines[2], "deploy failed: exit status 3 boom trace") {
		t.Errorf("the failed stage's WHY: %q", lines[2])
	}
	if !strings.Contains(lines[3], "committers: policy says no [2Jpwned very long reason") || !strings.HasSuffix(lines[3], "…") {
		t.Errorf("the rejected record's WHY: %q", lines[3])
	}
	if !strings.Contains(lines[1], "window: qa is frozen") {
		t.Errorf("the pending record's WHY: %q", lines[1])
	}

	ev := gitmon(t, "history", "--config", r.cfg, "--events")
	if !strings.Contains(ev.out, "baseline of qa second line") {
		t.Errorf("an event message on two lines:\n%s", ev.out)
	}

	recs := history(t, r, "--status", "rejected")
	if len(recs) != 1 || !strings.HasPrefix(recs[0].Reasons[0].Message, "policy says no\n\x1b[2J") {
		t.Errorf("--json changed the stored reason: %+v", recs)
	}
}
