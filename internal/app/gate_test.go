package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/policy/policytest"
)

// testClock is an injected clock that tests move.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// gateRig is qa feeding staging, whose policy is stagingPolicy, over an
// in-memory Git and a real store, with an injected clock. Nothing runs
// by itself: the test polls, ends upstream records and wakes the waiter.
type gateRig struct {
	t     *testing.T
	a     *App
	git   *fakeGit
	clock *testClock
}

func newGateRig(t *testing.T, stagingPolicy string) *gateRig {
	return newGateRigTickets(t, stagingPolicy, nil)
}

func newGateRigTickets(t *testing.T, stagingPolicy string, tickets policy.TicketChecker) *gateRig {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(t, dir, fmt.Sprintf(`state: %s
repositories:
  - {name: deployments, url: %q}
environments:
  - {name: qa, branch: qa, release: [deploy]}
  - {name: staging, branch: staging, release: [deploy], policy: %s}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "state"), filepath.Join(dir, "unused.git"), stagingPolicy))
	clock := &testClock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	a, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Listener: localListener(t), Now: clock.now, Tickets: tickets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.store.Close() })
	g := newFakeGit()
	a.repos[0].git = g
	r := &gateRig{t: t, a: a, git: g, clock: clock}
	// Both branches exist at a baseline of 1.0.0.
	both := map[string]string{"services/pay.yaml": "service: pay\nversion: 1.0.0\n", "services/web.yaml": "service: web\nversion: 1.0.0\n"}
	g.commit("qa", "alice@example.com", both)
	g.commit("staging", "alice@example.com", both)
	r.poll()
	return r
}

func (r *gateRig) poll() {
	r.t.Helper()
	if err := r.a.poll(context.Background(), r.a.repos[0]); err != nil {
		r.t.Fatal(err)
	}
}

// last returns the newest record of pay in env.
func (r *gateRig) last(env string) *store.Record {
	r.t.Helper()
	recs, err := r.a.store.Records(context.Background(), store.Filter{Environment: env, Service: "pay", Limit: 1})
	if err != nil || len(recs) == 0 {
		r.t.Fatalf("records of pay in %s: %v, %v", env, recs, err)
	}
	return recs[0]
}

// release runs a pending record to status as a release would, and tells
// serve the record ended.
func (r *gateRig) release(rec *store.Record, status string) {
	r.t.Helper()
	ctx := context.Background()
	now := r.clock.now()
	if err := r.a.store.StartRecord(ctx, rec.ID, []store.Stage{{Name: "deploy", Runner: "exec"}}, now); err != nil {
		r.t.Fatal(err)
	}
	if err := r.a.store.EndRecord(ctx, rec.ID, store.End{Status: status, At: now}); err != nil {
		r.t.Fatal(err)
	}
	r.a.upstreamMoved(ctx, rec.Repository, rec.Environment, rec.Service)
}

// wake decides again what the waiter holds as due now.
func (r *gateRig) wake() {
	ids, _ := r.a.waiter.due()
	r.a.reviewIDs(context.Background(), ids)
}

// want checks a record's status, phase and first gate rule.
func (r *gateRig) want(rec *store.Record, status, phase, rule string) {
	r.t.Helper()
	got, err := r.a.store.Record(context.Background(), rec.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	if got.Status != status || got.Phase != phase || rule != "" && !hasRule(got, rule) || rule == "" && len(got.Reasons) > 0 && got.Status != store.StatusPending {
		r.t.Fatalf("record %s of %s: %s/%s %v; want %s/%s rule %q", got.ID, got.Environment, got.Status, got.Phase, got.Reasons, status, phase, rule)
	}
}

const gated = `{promotion: {required: true}}` // from: the environment listed before

func TestGateSkippedUpstreamIsRejected(t *testing.T) {
	r := newGateRig(t, gated)
	r.git.commit("qa", "alice@example.com", map[string]string{"services/pay.yaml": "service: pay\nversion: 2.1.0\n"})
	r.a.poll(context.Background(), r.a.repos[0])
	// A skip marker in qa: 2.1.0 never ran there.
	r.git.commitMsg("qa", "alice@example.com", "bump [skip deploy]", map[string]string{"services/pay.yaml": "service: pay\nversion: 2.2.0\n"})
	r.poll()
	if q := r.last("qa"); q.Status != store.StatusSkipped {
		t.Fatalf("qa 2.2.0: %s", q.Status)
	}
	r.git.commit("staging", "alice@example.com", desc("pay", "2.2.0"))
	r.poll()
	r.want(r.last("staging"), store.StatusRejected, "", policy.RulePromotion)
}

func TestGateWaitsForUpstreamThenFollows(t *testing.T) {
	r := newGateRig(t, gated)
	r.git.commit("qa", "alice@example.com", desc("pay", "1.1.0"))
	r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	qa, st := r.last("qa"), r.last("staging")
	r.want(st, store.StatusPending, store.PhasePromotion, policy.RulePromotion)
	if !r.a.sched.Has(st.ID) || r.a.admitReady(st.ID) {
		t.Fatalf("a waiting promotion is queued not ready")
	}
	// Other services of staging are not held.
	r.git.commit("staging", "alice@example.com", map[string]string{"services/web.yaml": "service: web\nversion: 1.0.0\nport: 8443\n"})
	r.poll()
	web, _ := r.a.store.Records(context.Background(), store.Filter{Environment: "staging", Service: "web"})
	if len(web) != 1 || web[0].Phase != store.PhaseQueued {
		t.Fatalf("web in staging: %+v", web)
	}
	r.release(qa, store.StatusSucceeded)
	r.wake() // at once: no clock moved
	r.want(st, store.StatusPending, store.PhaseQueued, "")
	got, _ := r.a.store.Record(context.Background(), st.ID)
	if got.Evidence.Upstream == nil || got.Evidence.Upstream.Record != qa.ID || got.Evidence.Upstream.Environment != "qa" {
		t.Fatalf("evidence.upstream = %+v, want qa's record %s", got.Evidence.Upstream, qa.ID)
	}
}

func TestGateSoak(t *testing.T) {
	r := newGateRig(t, `{promotion: {required: true, from: qa, soak: 30m}}`)
	r.git.commit("qa", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	r.release(r.last("qa"), store.StatusSucceeded)
	r.clock.add(10 * time.Minute)
	r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	st := r.last("staging")
	r.want(st, store.StatusPending, store.PhasePromotion, policy.RulePromotion)
	got, _ := r.a.store.Record(context.Background(), st.ID)
	if want := r.clock.now().Add(20 * time.Minute); !got.WakeAt.Equal(want) {
		t.Fatalf("wake at %s, want the end of the soak %s", got.WakeAt, want)
	}
	r.clock.add(19 * time.Minute)
	r.wake()
	r.want(st, store.StatusPending, store.PhasePromotion, policy.RulePromotion)
	r.clock.add(time.Minute)
	r.wake()
	r.want(st, store.StatusPending, store.PhaseQueued, "")
}

func TestGateStraightToGatedIsRejectedAfterWait(t *testing.T) {
	r := newGateRig(t, `{promotion: {required: true, from: qa, wait: 10m}}`)
	r.git.commit("staging", "alice@example.com", desc("pay", "9.9.9"))
	r.poll()
	st := r.last("staging")
	r.want(st, store.StatusPending, store.PhasePromotion, policy.RulePromotion)
	r.clock.add(10 * time.Minute)
	r.wake()
	r.want(st, store.StatusRejected, "", policy.RulePromotion)
}

func TestGateOwnFieldsAreNotHeld(t *testing.T) {
	r := newGateRig(t, gated)
	r.git.commit("staging", "alice@example.com", map[string]string{"services/pay.yaml": "service: pay\nversion: 1.0.0\ndomain: pay.staging.example.com\nport: 443\n"})
	r.poll()
	r.want(r.last("staging"), store.StatusPending, store.PhaseQueued, "")
}

func TestGateUpstreamFailureBlocksAgain(t *testing.T) {
	r := newGateRig(t, gated)
	r.git.commit("qa", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	r.release(r.last("qa"), store.StatusSucceeded)
	r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	st := r.last("staging")
	r.want(st, store.StatusPending, store.PhaseQueued, "")
	// qa releases the same artifact again, with another port, and fails.
	r.git.commit("qa", "alice@example.com", map[string]string{"services/pay.yaml": "service: pay\nversion: 1.1.0\nport: 8443\n"})
	r.poll()
	r.release(r.last("qa"), store.StatusFailed)
	r.wake()
	r.want(st, store.StatusRejected, "", policy.RulePromotion)
}

func TestGateFreezeHoldsAndUnfreezeReleases(t *testing.T) {
	r := newGateRig(t, `{}`)
	ctx := context.Background()
	if err := r.a.store.Freeze(ctx, store.Freeze{Environment: "staging", Reason: "incident 42", Actor: "ops@host"}); err != nil {
		t.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	st := r.last("staging")
	r.want(st, store.StatusPending, store.PhaseWindow, policy.RuleWindow)
	if g, q := gauge(t, r.a, "gitmon_environment_frozen", "staging"), gauge(t, r.a, "gitmon_environment_frozen", "qa"); g != 1 || q != 0 {
		t.Fatalf("gitmon_environment_frozen: staging %v, qa %v; want 1, 0", g, q)
	}
	if _, _, err := r.a.store.Unfreeze(ctx, "staging", "ops@host"); err != nil {
		t.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	r.wake()
	r.want(st, store.StatusPending, store.PhaseQueued, "")
	// A halt holds every environment, qa too, and what was queued.
	if err := r.a.store.Freeze(ctx, store.Freeze{Reason: "stop the line", Actor: "cto@host"}); err != nil {
		t.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	r.wake()
	r.want(st, store.StatusPending, store.PhaseWindow, policy.RuleWindow)
	if r.a.admit(schedItemOf(r.last("staging"))) {
		t.Fatal("admit lets a record start during a halt")
	}
}

// admitReady reports whether the scheduler would start id now.
func (a *App) admitReady(id string) bool {
	a.sched.mu.Lock()
	defer a.sched.mu.Unlock()
	e := a.sched.ids[id]
	return e != nil && e.Ready
}

func TestGateBreakGlassPassesAFreeze(t *testing.T) {
	tickets := policytest.NewTickets(
		policy.Ticket{Key: "OPS-1", Status: "Approved", Labels: []string{"emergency-change"}},
		policy.Ticket{Key: "OPS-2", Status: "Approved", Labels: []string{"routine"}},
		policy.Ticket{Key: "OPS-3", Status: "Open", Labels: []string{"emergency-change"}})
	r := newGateRigTickets(t, `{jira: {projects: [OPS], statuses: [Approved]}, break_glass: {jira_labels: [emergency-change]}}`, tickets)
	ctx := context.Background()
	if err := r.a.store.Freeze(ctx, store.Freeze{Environment: "staging", Reason: "change freeze", Actor: "ops@host"}); err != nil {
		t.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	// A routine ticket is held; one that fails the jira rule is rejected
	// by step 1 whatever its label.
	r.git.commitMsg("staging", "alice@example.com", "OPS-2 routine", desc("pay", "1.1.0"))
	r.poll()
	r.want(r.last("staging"), store.StatusPending, store.PhaseWindow, policy.RuleWindow)
	r.git.commitMsg("staging", "alice@example.com", "OPS-3 not approved yet", desc("pay", "1.2.0"))
	r.poll()
	r.want(r.last("staging"), store.StatusRejected, "", policy.RuleJira)
	r.git.commitMsg("staging", "alice@example.com", "OPS-1 hotfix", desc("pay", "1.3.0"))
	r.poll()
	bg := r.last("staging")
	r.want(bg, store.StatusPending, store.PhaseQueued, policy.RuleWindow)
	if !bg.Evidence.BreakGlass || !strings.Contains(bg.Reasons[0].Message, "break-glass by OPS-1") {
		t.Fatalf("break-glass record: evidence %+v, reasons %v", bg.Evidence, bg.Reasons)
	}
	if len(bg.Evidence.Tickets) != 1 || bg.Evidence.Tickets[0].Key != "OPS-1" || bg.Evidence.Tickets[0].Status != "Approved" {
		t.Fatalf("evidence.tickets = %+v", bg.Evidence.Tickets)
	}
	if it := schedItemOf(bg); !it.Pass {
		t.Fatal("a break-glass record is not passed by Admit")
	}
}

// TestGateBreakGlassAfterQueued: a record queued before a freeze comes is
// decided again when it comes; break-glass lets it through, and the
// scheduler then starts it rather than holding it at every dispatch.
func TestGateBreakGlassAfterQueued(t *testing.T) {
	tickets := policytest.NewTickets(policy.Ticket{Key: "OPS-1", Status: "Approved", Labels: []string{"emergency-change"}})
	r := newGateRigTickets(t, `{jira: {projects: [OPS]}, break_glass: {jira_labels: [emergency-change]}}`, tickets)
	ctx := context.Background()
	r.git.commitMsg("staging", "alice@example.com", "OPS-1 hotfix", desc("pay", "1.1.0"))
	r.poll()
	rec := r.last("staging")
	r.want(rec, store.StatusPending, store.PhaseQueued, "")
	if err := r.a.store.Freeze(ctx, store.Freeze{Environment: "staging", Reason: "freeze", Actor: "ops@host"}); err != nil {
		t.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	r.wake()
	got := r.last("staging")
	if got.Phase != store.PhaseQueued || !got.Evidence.BreakGlass {
		t.Fatalf("after the freeze: %s/%s break-glass %v %v", got.Status, got.Phase, got.Evidence.BreakGlass, got.Reasons)
	}
	r.a.sched.mu.Lock()
	e := r.a.sched.ids[rec.ID]
	pass := e != nil && e.Pass && e.Ready
	r.a.sched.mu.Unlock()
	if !pass {
		t.Fatal("the scheduler would hold a break-glass record at every dispatch")
	}
}

// TestGateDenyWindow: inside a deny window a record waits (rule window,
// naming when it may start) and is decided again when the window ends;
// running stages are not the gate's business, starts are.
func TestGateDenyWindow(t *testing.T) {
	// 10:00 UTC on a Wednesday; deny 09:00-11:00 every day.
	r := newGateRig(t, `{windows: [{kind: deny, schedule: "0 9 * * *", duration: 2h, timezone: UTC}]}`)
	r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	st := r.last("staging")
	r.want(st, store.StatusPending, store.PhaseWindow, policy.RuleWindow)
	got, _ := r.a.store.Record(context.Background(), st.ID)
	end := time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)
	if !got.WakeAt.Equal(end) || !strings.Contains(got.Reasons[0].Message, "deny window 0 9 * * *") {
		t.Fatalf("held until %s (%v), want %s", got.WakeAt, got.Reasons, end)
	}
	if r.a.admit(schedItemOf(got)) {
		t.Fatal("admit lets a record start inside a deny window")
	}
	r.clock.add(59 * time.Minute)
	r.wake()
	r.want(st, store.StatusPending, store.PhaseWindow, policy.RuleWindow)
	r.clock.add(time.Minute)
	r.wake()
	r.want(st, store.StatusPending, store.PhaseQueued, "")
	// qa has no windows: never held.
	r.git.commit("qa", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	r.want(r.last("qa"), store.StatusPending, store.PhaseQueued, "")
}

// TestGateAllowWindowInjectedClock: with allow windows, only inside one;
// the record waits for the next opening in the window's time zone, and a
// deny inside the allow still wins.
func TestGateAllowWindowInjectedClock(t *testing.T) {
	// 10:00 UTC = 11:00 in Rome, a Wednesday. Allow 14:00-16:00 Rome on
	// weekdays, deny 15:00-15:30 Rome.
	r := newGateRig(t, `{windows: [
  {kind: allow, schedule: "0 14 * * 1-5", duration: 2h, timezone: Europe/Rome},
  {kind: deny, schedule: "0 15 * * *", duration: 30m, timezone: Europe/Rome}]}`)
	r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	st := r.last("staging")
	r.want(st, store.StatusPending, store.PhaseWindow, policy.RuleWindow)
	got, _ := r.a.store.Record(context.Background(), st.ID)
	opens := time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC) // 14:00 in Rome (CET, UTC+1)
	if !got.WakeAt.Equal(opens) || !strings.Contains(got.Reasons[0].Message, "outside the allow windows") {
		t.Fatalf("held until %s (%v), want %s", got.WakeAt, got.Reasons, opens)
	}
	r.clock.add(3 * time.Hour) // 13:00 UTC: the window opens
	r.wake()
	r.want(st, store.StatusPending, store.PhaseQueued, "")
	if !r.a.admit(schedItemOf(r.last("staging"))) {
		t.Fatal("admit refuses inside an allow window")
	}
	r.clock.add(time.Hour + 10*time.Minute) // 15:10 Rome: the deny inside the allow
	if r.a.admit(schedItemOf(r.last("staging"))) {
		t.Fatal("admit lets a record start in a deny window inside an allow window")
	}
}
