package store

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
)

// record is a queued deploy of service at version in (repo, env).
func record(t testing.TB, repo, env, service string, commit int, version string) *Record {
	r := pendingRecord(t, commit, version)
	r.Repository, r.Environment, r.Service = repo, env, service
	r.Descriptor = desc(t, service, version, "")
	return r
}

// release runs a queued record through its release to status.
func release(t testing.TB, s Store, r *Record, status string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	must(t, s.StartRecord(ctx, r.ID, []Stage{{Name: "deploy", Runner: "exec"}}, at))
	must(t, s.FinishRecord(ctx, r.ID, status, at.Add(time.Minute)))
}

func baseline(t testing.TB, s Store, repo, env string, commit int, svcs ...Service) {
	t.Helper()
	for i := range svcs {
		svcs[i].Repository, svcs[i].Environment, svcs[i].Present = repo, env, true
	}
	must(t, s.Apply(context.Background(), Batch{Repository: repo, Environment: env, Branch: env, Commit: sha(commit),
		Baseline: true, Services: svcs}))
}

// apply writes records with the service rows a commit leaves (present).
func apply(t testing.TB, s Store, recs ...*Record) {
	t.Helper()
	r0 := recs[0]
	var svcs []Service
	for _, r := range recs {
		svcs = append(svcs, Service{Repository: r.Repository, Environment: r.Environment, Service: r.Service,
			Present: r.Action != "remove", Current: r.Descriptor})
	}
	must(t, s.Apply(context.Background(), Batch{Repository: r0.Repository, Environment: r0.Environment,
		Branch: r0.Environment, Commit: r0.Commit, Records: recs, Services: svcs}))
}

func TestStandings(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	t1 := t0.Add(time.Hour)
	baseline(t, s, "deployments", "qa", 1,
		Service{Service: "payments", Current: desc(t, "payments", "1.0.0", "")},
		Service{Service: "search", Current: desc(t, "search", "2.0.0", "")},
		Service{Service: "cart", Current: desc(t, "cart", "3.0.0", "")},
		Service{Service: "legacy", Current: desc(t, "legacy", "0.9.0", "")})

	// payments: 1.1.0 succeeds, then 1.2.0 fails, then a 1.1.0 edit of
	// another field fails too: the last good stays 1.1.0 at sha(2).
	good := record(t, "deployments", "qa", "payments", 2, "1.1.0")
	good.Committer = "carol@example.com"
	apply(t, s, good)
	release(t, s, good, StatusSucceeded, t1)
	bad := record(t, "deployments", "qa", "payments", 3, "1.2.0")
	apply(t, s, bad)
	release(t, s, bad, StatusFailed, t1.Add(time.Hour))
	again := record(t, "deployments", "qa", "payments", 4, "1.1.0")
	apply(t, s, again)
	release(t, s, again, StatusFailed, t1.Add(2*time.Hour))

	// billing appears with a commit policy rejects: no last good.
	rej := record(t, "deployments", "qa", "billing", 5, "0.1.0")
	rej.Status, rej.Phase = StatusRejected, ""
	apply(t, s, rej)

	// cart is removed: no last good any more.
	rm := record(t, "deployments", "qa", "cart", 6, "3.0.0")
	rm.Action = "remove"
	apply(t, s, rm)
	release(t, s, rm, StatusSucceeded, t1)

	// legacy fails and its retry at the same commit succeeds.
	failed := record(t, "deployments", "qa", "legacy", 7, "1.0.0")
	apply(t, s, failed)
	release(t, s, failed, StatusFailed, t1)
	retry := record(t, "deployments", "qa", "legacy", 7, "1.0.0")
	retry.Trigger, retry.Actor = TriggerRetry, "dave"
	must(t, s.Retry(ctx, retry, failed.ID))
	release(t, s, retry, StatusSucceeded, t1.Add(time.Hour))

	// Another repository claims payments in qa; staging has its own.
	other := record(t, "other", "qa", "payments", 8, "9.9.9")
	apply(t, s, other)
	stg := record(t, "deployments", "staging", "payments", 9, "1.1.0")
	apply(t, s, stg)
	release(t, s, stg, StatusSucceeded, t1)

	qaStanding, err := s.Standings(ctx, "qa")
	must(t, err)
	got := qaStanding.Services
	type row struct {
		key, version, commit string
		present, good        bool
		succeeded, last      string
	}
	id := func(r *RecordSummary) string {
		if r == nil {
			return ""
		}
		return r.ID
	}
	var rows []row
	for _, st := range got {
		rows = append(rows, row{st.Environment + "/" + st.Repository + "/" + st.Service, st.Version, st.Commit,
			st.Present, st.Good, id(st.Succeeded), id(st.Last)})
	}
	want := []row{
		{"qa/deployments/billing", "", "", true, false, "", rej.ID},
		{"qa/deployments/cart", "", "", false, false, "", rm.ID},
		{"qa/deployments/legacy", "1.0.0", sha(7), true, true, retry.ID, retry.ID},
		{"qa/deployments/payments", "1.1.0", sha(2), true, true, good.ID, again.ID},
		{"qa/deployments/search", "2.0.0", sha(1), true, true, "", ""},
		{"qa/other/payments", "", "", true, false, "", other.ID},
	}
	if len(rows) != len(want) {
		t.Fatalf("Standings(qa) = %+v\nwant %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("Standings(qa)[%d] = %+v\nwant %+v", i, rows[i], want[i])
		}
	}

	// The summaries carry what status shows.
	pay := got[3]
	if g := pay.Succeeded; g.Committer != "carol@example.com" || g.Status != StatusSucceeded || g.FinishedAt == nil ||
		!g.FinishedAt.Equal(t1.Add(time.Minute)) || g.StartedAt == nil || !g.StartedAt.Equal(t1) {
		t.Errorf("payments' last good record = %+v", g)
	}
	if l := pay.Last; l.Status != StatusFailed || l.Version != "1.1.0" || l.Commit != sha(4) || l.Action != "deploy" {
		t.Errorf("payments' last record = %+v", l)
	}
	if l := got[0].Last; l.Status != StatusRejected || l.Reasons == nil {
		t.Errorf("billing's last record = %+v (reasons must be [], never nil)", l)
	}

	everywhere, err := s.Standings(ctx, "")
	must(t, err)
	all := everywhere.Services
	if len(all) != len(want)+1 || all[0].Environment != "qa" || all[len(all)-1].Environment != "staging" ||
		id(all[len(all)-1].Succeeded) != stg.ID {
		t.Errorf("Standings(\"\") = %d standings, want qa's then staging's", len(all))
	}
	none, err := s.Standings(ctx, "prod")
	must(t, err)
	if len(none.Services) != 0 || len(none.InFlight) != 0 {
		t.Errorf("Standings(prod) = %+v, want none", none)
	}
}

func TestStandingsInFlight(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	wait := record(t, "deployments", "qa", "payments", 1, "1.0.0")
	wait.Phase = PhasePromotion
	wait.Reasons = []policy.Reason{{Rule: policy.RulePromotion, Message: "waits for staging", Commit: sha(1)}}
	apply(t, s, wait)
	run := record(t, "deployments", "qa", "search", 2, "2.0.0")
	apply(t, s, run)
	must(t, s.StartRecord(ctx, run.ID, []Stage{{Name: "deploy"}}, t0))
	done := record(t, "deployments", "qa", "cart", 3, "3.0.0")
	apply(t, s, done)
	release(t, s, done, StatusSucceeded, t0)
	prod := record(t, "deployments", "prod", "payments", 4, "1.0.0")
	apply(t, s, prod)

	everywhere, err := s.Standings(ctx, "")
	must(t, err)
	got := everywhere.InFlight
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if want := []string{wait.ID, run.ID, prod.ID}; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("in flight: %v, want %v (oldest first, no ended record)", ids, want)
	}
	if g := got[0]; g.Phase != PhasePromotion || len(g.Reasons) != 1 || g.Reasons[0] != wait.Reasons[0] {
		t.Errorf("pending summary = %+v", g)
	}
	if g := got[1]; g.Status != StatusRunning || g.StartedAt == nil || !g.StartedAt.Equal(t0) {
		t.Errorf("running summary = %+v", g)
	}
	qa, err := s.Standings(ctx, "qa")
	must(t, err)
	if len(qa.InFlight) != 2 {
		t.Errorf("in flight in qa: %d records, want 2", len(qa.InFlight))
	}
}

// TestStatusQueriesUseIndexes checks the plans of the status queries: no
// step reads the records table whole, so their cost follows the number of
// services and of records in flight, not the length of the history.
func TestStatusQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for _, q := range []struct {
		name  string
		query string
		args  []any
		uses  []string
	}{
		{"standings", standingsQuery, []any{"qa", "qa"}, []string{
			"SEARCH r USING INDEX records_env_service (environment=? AND service=?)",
			"SEARCH r USING INDEX records_artifact (repository=? AND environment=? AND service=? AND version=?)"}},
		{"summaries", `SELECT ` + summaryColumns + ` FROM records WHERE seq IN (SELECT value FROM json_each(?))`, []any{"[1,2]"},
			[]string{"SEARCH records USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"in flight", inFlightQuery, []any{"pending", "running", "", ""},
			[]string{"SEARCH records USING INDEX records_status (status=?)"}},
	} {
		rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q.query, q.args...)
		must(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			must(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		must(t, rows.Err())
		rows.Close()
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN r") && !strings.HasPrefix(step, "SCAN r USING") || strings.HasPrefix(step, "SCAN records") {
				t.Errorf("%s: step %q reads the whole history\nplan: %s", q.name, step, strings.Join(plan, "; "))
			}
		}
		for _, step := range q.uses {
			if !slices.Contains(plan, step) {
				t.Errorf("%s: no step %q\nplan: %s", q.name, step, strings.Join(plan, "; "))
			}
		}
	}
}
