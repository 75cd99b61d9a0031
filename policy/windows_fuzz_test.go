package policy_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
	"github.com/robfig/cron/v3"
)

// refParser reads schedules for the reference, apart from the code under
// test.
var refParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// matches is the reference meaning of a schedule: the wall clock of t in
// loc matches every field (cron's day rule: with a * in day-of-month or
// day-of-week both must match, else either).
func matches(s *cron.SpecSchedule, t time.Time) bool {
	t = t.In(s.Location)
	bit := func(set uint64, v int) bool { return set&(1<<uint(v)) != 0 }
	const star = 1 << 63
	day := bit(s.Dom, t.Day()) && bit(s.Dow, int(t.Weekday()))
	if s.Dom&star == 0 && s.Dow&star == 0 {
		day = bit(s.Dom, t.Day()) || bit(s.Dow, int(t.Weekday()))
	}
	return bit(s.Second, t.Second()) && bit(s.Minute, t.Minute()) && bit(s.Hour, t.Hour()) && bit(s.Month, int(t.Month())) && day
}

// reference is every minute of a span, judged one by one.
type reference struct {
	base   time.Time
	ws     []policy.Window
	active [][]bool // [window][minute]
	open   []bool
}

func newReference(t *testing.T, ws []policy.Window, base time.Time, minutes int) *reference {
	r := &reference{base: base, ws: ws, open: make([]bool, minutes)}
	for _, w := range ws {
		loc := time.UTC
		if w.Timezone != "" {
			var err error
			if loc, err = time.LoadLocation(w.Timezone); err != nil {
				t.Fatal(err)
			}
		}
		sc, err := refParser.Parse(w.Schedule)
		if err != nil {
			t.Fatal(err)
		}
		spec := sc.(*cron.SpecSchedule)
		spec.Location = loc
		d := int(w.Duration / time.Minute)
		act := make([]bool, minutes)
		last := -1 << 30
		for i := range minutes {
			if matches(spec, base.Add(time.Duration(i)*time.Minute)) {
				last = i
			}
			act[i] = last > i-d
		}
		r.active = append(r.active, act)
	}
	hasAllow := false
	for _, w := range ws {
		hasAllow = hasAllow || w.Kind == policy.WindowAllow
	}
	for i := range minutes {
		allow, deny := false, false
		for k, w := range ws {
			if r.active[k][i] {
				allow = allow || w.Kind == policy.WindowAllow
				deny = deny || w.Kind == policy.WindowDeny
			}
		}
		r.open[i] = !deny && (allow || !hasAllow)
	}
	return r
}

func (r *reference) at(i int) time.Time { return r.base.Add(time.Duration(i) * time.Minute) }

// index returns the minute of x, and whether x falls on one.
func (r *reference) index(x time.Time) (int, bool) {
	d := x.Sub(r.base)
	return int(d / time.Minute), d%time.Minute == 0
}

// changesNear reports whether a window opens or closes within a minute
// of minute i.
func (r *reference) changesNear(i int) bool {
	for _, act := range r.active {
		for j := max(i-1, 1); j <= i+2 && j < len(act); j++ {
			if act[j] != act[j-1] {
				return true
			}
		}
	}
	return false
}

// firstFrom returns the first minute from i on with f true, or -1.
func firstFrom(i int, n int, f func(int) bool) int {
	for ; i < n; i++ {
		if f(i) {
			return i
		}
	}
	return -1
}

var (
	fuzzZones   = []string{"", "UTC", "Europe/Rome", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Kolkata"}
	fuzzMinutes = []string{"*", "0", "30", "*/15", "0,30", "5-10", "59", "*/7"}
	fuzzHours   = []string{"*", "0", "1", "2", "3", "9", "23", "0-6", "*/3", "1,2", "22-23", "9-17"}
	fuzzDoms    = []string{"*", "*", "*", "1", "15", "28-31", "1-7", "29", "31"}
	fuzzMonths  = []string{"*", "*", "*", "2", "3", "10,11", "12", "1", "4"}
	fuzzDows    = []string{"*", "*", "*", "1-5", "0", "6", "0,6"}
	fuzzDescs   = []string{"@daily", "@hourly", "@weekly", "@monthly", "@yearly"}
	fuzzDurs    = []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 59 * time.Minute, time.Hour, 61 * time.Minute,
		2 * time.Hour, 8 * time.Hour, 23 * time.Hour, 24 * time.Hour, 25 * time.Hour, 48 * time.Hour}
	// Instants near daylight saving changes, year ends and leap days.
	fuzzAround = []string{
		"2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z", // Europe/Rome
		"2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z", // America/New_York
		"2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z", // Australia/Lord_Howe, 30-minute shifts
		"2018-11-04T03:00:00Z", "2019-02-17T02:00:00Z", // America/Sao_Paulo, at midnight
		"2026-12-31T23:00:00Z", "2028-02-29T12:00:00Z",
	}
)

func fuzzWindows(rng *rand.Rand) []policy.Window {
	pick := func(l []string) string { return l[rng.IntN(len(l))] }
	ws := make([]policy.Window, 1+rng.IntN(3))
	for i := range ws {
		w := &ws[i]
		w.Kind = policy.WindowAllow
		if rng.IntN(2) == 0 {
			w.Kind = policy.WindowDeny
		}
		if rng.IntN(8) == 0 {
			w.Schedule = pick(fuzzDescs)
		} else {
			w.Schedule = strings.Join([]string{pick(fuzzMinutes), pick(fuzzHours), pick(fuzzDoms), pick(fuzzMonths), pick(fuzzDows)}, " ")
		}
		if rng.IntN(3) == 0 {
			w.Duration = time.Duration(1+rng.IntN(3*24*60)) * time.Minute
		} else {
			w.Duration = fuzzDurs[rng.IntN(len(fuzzDurs))]
		}
		w.Timezone = pick(fuzzZones)
	}
	return ws
}

// FuzzWindowsAt checks At against a minute-by-minute reference over a day
// and a half of random schedules around daylight saving changes, month
// and year ends: Open, Next, Until, By and Opener must all agree.
func FuzzWindowsAt(f *testing.F) {
	for i := range 24 {
		f.Add(uint64(i))
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		ws := fuzzWindows(rng)
		compiled, ps := policy.CompileWindows(ws)
		if ps != nil {
			// Only schedules no date matches ("0 0 31 2 *") are refused.
			for _, p := range ps {
				if !strings.Contains(p.Msg, "never opens") {
					t.Fatalf("%v refused: %v", ws, ps)
				}
			}
			return
		}
		around, _ := time.Parse(time.RFC3339, fuzzAround[rng.IntN(len(fuzzAround))])
		start := around.Add(-time.Duration(rng.IntN(24*60)) * time.Minute)
		const span = 36 * 60      // minutes checked
		const ahead = 5 * 24 * 60 // minutes the reference looks ahead for Next and Until
		var maxDur time.Duration
		for _, w := range ws {
			maxDur = max(maxDur, w.Duration)
		}
		back := int(maxDur/time.Minute) + 1
		ref := newReference(t, ws, start.Add(-time.Duration(back)*time.Minute), back+span+ahead)
		n := len(ref.open)
		for m := range span {
			i := back + m
			if m >= 2*60 && m%13 != 0 && !ref.changesNear(i) {
				continue // every minute for 2 hours, then changes and samples
			}
			probes := []time.Time{ref.at(i)}
			if m%7 == 0 {
				probes = append(probes, ref.at(i).Add(30*time.Second+time.Millisecond))
			}
			for _, x := range probes {
				checkState(t, ws, ref, i, n, x, compiled.At(x))
			}
		}
	})
}

// checkState compares st, what At said of x (within minute i), with the
// reference.
func checkState(t *testing.T, ws []policy.Window, ref *reference, i, n int, x time.Time, st policy.WindowState) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("windows %v at %s: %s\n  got %+v (%s)", ws, x.UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...), st, st)
	}
	// must says st's time u equals the reference minute j (-1: beyond
	// the reference, where u may be zero or later).
	must := func(what string, u time.Time, j int) {
		t.Helper()
		if j < 0 {
			if k, _ := ref.index(u); !u.IsZero() && k < n {
				fail("%s is %s, but the reference sees none before %s", what, u, ref.at(n))
			}
			return
		}
		if !u.Equal(ref.at(j)) {
			fail("%s is %s, want %s", what, u, ref.at(j))
		}
	}
	isWindow := func(p *policy.Window, k int) bool { return p != nil && *p == ws[k] }
	if st.Open != ref.open[i] {
		fail("open %t, want %t", st.Open, ref.open[i])
	}
	if st.Open {
		end := firstFrom(i+1, n, func(j int) bool { return !ref.open[j] })
		if st.Until.IsZero() && !st.Checked.IsZero() {
			// The walk gave up: it must be right as far as it says.
			if k, _ := ref.index(st.Checked); end >= 0 && k > end {
				fail("checked %s, but releases stop at %s", st.Checked, ref.at(end))
			}
			return
		}
		must("until", st.Until, end)
		return
	}
	// The deny windows open at i, and when each closes.
	longest, blockers := -2, []int{}
	for k, w := range ws {
		if w.Kind != policy.WindowDeny || !ref.active[k][i] {
			continue
		}
		end := firstFrom(i+1, n, func(j int) bool { return !ref.active[k][j] })
		if end < 0 {
			end = n + 1
		}
		if end > longest {
			longest, blockers = end, nil
		}
		if end == longest {
			blockers = append(blockers, k)
		}
	}
	switch {
	case len(blockers) == 0 && st.By != nil:
		fail("blocked by %v, but no deny window is open", st.By)
	case len(blockers) > 0:
		found := false
		for _, k := range blockers {
			found = found || isWindow(st.By, k)
		}
		if !found {
			fail("blocked by %v, want one of the deny windows %v", st.By, blockers)
		}
		if longest <= n && st.Checked.IsZero() {
			must("until (the deny window's end)", st.Until, longest)
		}
	}
	next := firstFrom(i, n, func(j int) bool { return ref.open[j] })
	if st.Next.IsZero() && !st.Checked.IsZero() {
		// The walk gave up: it must have made progress, and be right so far.
		if !st.Checked.After(x) {
			fail("checked %s is not after the instant", st.Checked)
		}
		if k, _ := ref.index(st.Checked); next >= 0 && k > next {
			fail("checked %s, but releases may start at %s", st.Checked, ref.at(next))
		}
		return
	}
	must("next", st.Next, next)
	if st.Next.IsZero() {
		return
	}
	hasAllow := false
	for _, w := range ws {
		hasAllow = hasAllow || w.Kind == policy.WindowAllow
	}
	j, _ := ref.index(st.Next)
	if j >= n {
		return // beyond the reference
	}
	if hasAllow {
		ok := false
		for k, w := range ws {
			ok = ok || (w.Kind == policy.WindowAllow && ref.active[k][j] && isWindow(st.Opener, k))
		}
		if !ok {
			fail("opener %v is not an allow window open at %s", st.Opener, st.Next)
		}
	} else if st.Opener != nil {
		fail("opener %v without allow windows", st.Opener)
	}
}
