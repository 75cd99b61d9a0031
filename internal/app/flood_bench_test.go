package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// floodRig is staging with n services, each with a record that a freeze
// holds, over an in-memory Git and a real store; nothing runs by itself.
type floodRig struct {
	tb    testing.TB
	a     *App
	git   *fakeGit
	clock *testClock
	n     int
}

func newFloodRig(tb testing.TB, n int) *floodRig {
	tb.Helper()
	dir := tb.TempDir()
	cfg := testConfig(tb, dir, fmt.Sprintf(`state: %s
repositories:
  - {name: deployments, url: %q}
environments:
  - {name: staging, branch: staging, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "state"), filepath.Join(dir, "unused.git")))
	clock := &testClock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	a, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Listener: localListener(tb), Now: clock.now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.store.Close() })
	g := newFakeGit()
	a.repos[0].git = g
	r := &floodRig{tb: tb, a: a, git: g, clock: clock, n: n}
	files := func(version string) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			s := fmt.Sprintf("svc%05d", i)
			m["services/"+s+".yaml"] = "service: " + s + "\nversion: " + version + "\n"
		}
		return m
	}
	g.commit("staging", "alice@example.com", files("1.0.0"))
	r.poll()
	r.freeze("flood")
	g.commit("staging", "alice@example.com", files("1.1.0"))
	r.poll()
	if held := r.count(store.PhaseWindow); held != n {
		tb.Fatalf("%d records held by the freeze, want %d", held, n)
	}
	return r
}

func (r *floodRig) poll() {
	r.tb.Helper()
	if err := r.a.poll(context.Background(), r.a.repos[0]); err != nil {
		r.tb.Fatal(err)
	}
}

func (r *floodRig) freeze(reason string) {
	r.tb.Helper()
	ctx := context.Background()
	if err := r.a.store.Freeze(ctx, store.Freeze{Environment: "staging", Reason: reason, Actor: "ops@host"}); err != nil {
		r.tb.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	r.wake()
}

func (r *floodRig) unfreeze() {
	r.tb.Helper()
	ctx := context.Background()
	if _, _, err := r.a.store.Unfreeze(ctx, "staging", "ops@host"); err != nil {
		r.tb.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	r.wake()
}

// wake decides again what the waiter holds as due now, as its Run does.
func (r *floodRig) wake() {
	ids, _ := r.a.waiter.due()
	r.a.reviewIDs(context.Background(), ids)
}

// count is how many pending records are at phase.
func (r *floodRig) count(phase string) int {
	p, err := r.a.store.Pending(context.Background())
	if err != nil {
		r.tb.Fatal(err)
	}
	n := 0
	for _, rec := range p {
		if rec.Phase == phase {
			n++
		}
	}
	return n
}

// BenchmarkUnfreezeFlood is how long serve takes, once it sees an
// unfreeze, to decide again and queue n held records (SPEC §5 step 6:
// "starts when the freeze is lifted, in commit order"); n=500 is the
// baseline of the same run: the cost per record (ns/record) must not grow
// with n. After each run it checks that every record is queued, the
// scheduler holds them all ready and the waiter holds none.
func BenchmarkUnfreezeFlood(b *testing.B) {
	for _, n := range []int{500, 5000} {
		r := newFloodRig(b, n)
		b.Run(fmt.Sprintf("held=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if i > 0 {
					r.freeze(fmt.Sprint("flood ", i))
				}
				b.StartTimer()
				r.unfreeze()
				b.StopTimer()
				if q := r.count(store.PhaseQueued); q != n {
					b.Fatalf("%d of %d records queued after the unfreeze", q, n)
				}
				if queued, _ := r.a.sched.Len(); queued != n || r.a.waiter.Len() != 0 {
					b.Fatalf("scheduler queues %d, waiter holds %d; want %d and 0", queued, r.a.waiter.Len(), n)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}

// TestAttackFloodOfSupersedesLeaksNothing: 300 services held by a
// freeze with an until (so each waits in the waiter's heap), then a commit
// that bumps them all again: every held record is superseded, and serve
// keeps in memory only the 300 that wait now, in the scheduler, the
// waiter and the detection metric's memory; the same after a commit that
// step 1 rejects for all of them (it supersedes nothing).
func TestAttackFloodOfSupersedesLeaksNothing(t *testing.T) {
	const n = 300
	r := newFloodRig(t, n)
	ctx := context.Background()
	until := r.clock.now().Add(time.Hour)
	if err := r.a.store.Freeze(ctx, store.Freeze{Environment: "staging", Reason: "flood", Actor: "ops@host", Until: &until}); err != nil {
		t.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	r.wake()
	bump := func(email, version string) {
		files := make(map[string]string, n)
		for i := range n {
			s := fmt.Sprintf("svc%05d", i)
			files["services/"+s+".yaml"] = "service: " + s + "\nversion: " + version + "\n"
		}
		r.git.commit("staging", email, files)
		r.poll()
	}
	check := func(when string) {
		t.Helper()
		queued, running := r.a.sched.Len()
		r.a.seenMu.Lock()
		seen := len(r.a.seenAt)
		r.a.seenMu.Unlock()
		if held := r.count(store.PhaseWindow); held != n || queued != n || running != 0 || r.a.waiter.Len() != n || seen != n {
			t.Fatalf("%s: %d held; scheduler %d queued %d running, waiter %d, seen %d; want %d, %d, 0, %d, %d",
				when, held, queued, running, r.a.waiter.Len(), seen, n, n, n, n)
		}
	}
	check("held by a freeze with an until")
	bump("alice@example.com", "1.2.0")
	check("after a commit that supersedes them all")
	bump("mallory@evil.example", "1.3.0")
	check("after a commit that step 1 rejects")
}
