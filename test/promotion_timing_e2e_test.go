package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Promotion gates in time (SPEC §5 step 5): a record held while upstream
// still runs its artifact follows as soon as upstream succeeds, and not
// before the soak has passed.

// pmTries is how many held promotions the follow test measures.
const pmTries = 20

// TestPromotionWaitsForRunningUpstreamThenFollows: a version merged into
// staging while qa still runs it waits pending (rule promotion, naming qa
// and the version), and follows once qa succeeds, on the evidence of
// qa's record. Over pmTries versions it measures qa's finished_at →
// staging's first stage started_at (logged as a FIGURE line, beside the
// same run's baseline: qa's own ungated start after its record was
// created; only a generous sanity bound is asserted).
func TestPromotionWaitsForRunningUpstreamThenFollows(t *testing.T) {
	r := pmNewRig(t, pmStagingGated, pmProdGated, "pay")
	r.touch("hold-qa")
	// delays are held starts; baseline is the same run's ungated start in
	// qa (record created → first stage started).
	var delays, baseline []time.Duration
	for i := 1; i <= pmTries; i++ {
		v := fmt.Sprintf("2.0.%d", i)
		q := r.bump("qa", "pay", v, 8080, "pay "+v)
		r.running("qa", "pay", q)
		m := r.merge("staging", "qa")
		p := r.pending("staging", "pay", m, "promotion")
		pmWantMessage(t, p, "promotion", "qa", v)
		pmWantNoRun(t, p)

		r.touch("release-qa-pay-" + v)
		up := r.ended("qa", "pay", q)
		pmWant(t, up, "succeeded")
		rec := r.ended("staging", "pay", m)
		pmWant(t, rec, "succeeded")
		pmWantUpstream(t, rec, up)
		if rec.Trigger != "commit" || rec.Version != v || len(rec.Stages) == 0 || rec.Stages[0].StartedAt == nil {
			t.Fatalf("staging record of %s: trigger %q version %q stages %s", v, rec.Trigger, rec.Version, aJSON(rec.Stages))
		}
		d := rec.Stages[0].StartedAt.Sub(*up.FinishedAt)
		if d < 0 {
			t.Errorf("%s started in staging %s before it succeeded in qa", v, -d)
		}
		if d > 10*time.Second { // a sanity bound, not a timing assert
			t.Errorf("%s started in staging %s after it succeeded in qa", v, d)
		}
		delays = append(delays, d)
		baseline = append(baseline, up.Stages[0].StartedAt.Sub(up.CreatedAt))
	}
	t.Log(pmFigure("held-start-after-upstream", delays))
	t.Log(pmFigure("baseline-ungated-start-after-decision", baseline))
	// prod was never asked: nothing ran there.
	if lines := r.deployed("prod", "pay"); len(lines) != 0 {
		t.Errorf("prod ran: %q", lines)
	}
	if lines := r.deployed("staging", "pay"); len(lines) != pmTries {
		t.Errorf("staging ran %d times, want %d: %q", len(lines), pmTries, lines)
	}
}

// TestPromotionSoakHoldsUntilUpstreamSucceededPlusSoak: with soak: 2s, a
// version merged into staging while qa runs it waits for qa, then for the
// soak (its reason says so), and starts no earlier than qa's success +
// 2s.
func TestPromotionSoakHoldsUntilUpstreamSucceededPlusSoak(t *testing.T) {
	const soak = 2 * time.Second
	r := pmNewRig(t, "{promotion: {required: true, from: qa, soak: 2s, wait: 1m}}", "", "pay")
	r.touch("hold-qa")
	q := r.bump("qa", "pay", "2.0.0", 8080, "pay 2.0.0")
	r.running("qa", "pay", q)
	m := r.merge("staging", "qa")
	pmWantMessage(t, r.pending("staging", "pay", m, "promotion"), "promotion", "qa", "2.0.0")

	r.touch("release-qa-pay-2.0.0")
	up := r.ended("qa", "pay", q)
	pmWant(t, up, "succeeded")
	// Once qa has succeeded, staging waits for the soak, or has started
	// (which the assertions below catch when it was too early).
	soaking := r.wait("soaking or started", "staging", "pay", m, "", func(rec pmRecord) bool {
		return rec.StartedAt != nil || strings.Contains(pmReason(rec, "promotion"), "soak")
	})
	rec := r.ended("staging", "pay", m)
	pmWant(t, rec, "succeeded")
	pmWantUpstream(t, rec, up)
	if rec.StartedAt == nil {
		t.Fatalf("a succeeded record without started_at:\n%s", aJSON(rec))
	}
	earliest := up.FinishedAt.Add(soak)
	if rec.StartedAt.Before(earliest) {
		t.Errorf("staging started at %v, %s before qa's success + soak (%v)", rec.StartedAt, earliest.Sub(*rec.StartedAt), earliest)
	}
	if soaking.StartedAt != nil {
		t.Errorf("the record was never seen waiting for the soak (it started at %v)", soaking.StartedAt)
	}
	late := rec.StartedAt.Sub(earliest)
	if late > 10*time.Second { // a sanity bound, not a timing assert
		t.Errorf("staging started %s after the soak ended", late)
	}
	t.Logf("FIGURE soak-start-after-soak-end soak=%s late=%.1fms", soak, float64(late)/float64(time.Millisecond))
}
