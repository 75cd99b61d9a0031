package policy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
)

func allow(schedule string, d time.Duration, tz string) policy.Window {
	return policy.Window{Kind: policy.WindowAllow, Schedule: schedule, Duration: d, Timezone: tz}
}

func deny(schedule string, d time.Duration, tz string) policy.Window {
	return policy.Window{Kind: policy.WindowDeny, Schedule: schedule, Duration: d, Timezone: tz}
}

func compileWindows(t testing.TB, ws ...policy.Window) *policy.Windows {
	t.Helper()
	c, ps := policy.CompileWindows(ws)
	if ps != nil {
		t.Fatalf("CompileWindows(%v): %v", ws, ps)
	}
	return c
}

// instant reads RFC 3339; "" is the zero time.
func instant(t testing.TB, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const (
	workdays = "0 9 * * 1-5"
	rome     = "Europe/Rome"
	newYork  = "America/New_York"
	hour     = time.Hour
)

// TestWindowsAt is the arithmetic of windows, one instant at a time. Times
// are written in the zone of the window they come from, as At returns
// them; By and Opener are indexes into the windows (-1: none).
func TestWindowsAt(t *testing.T) {
	winter := deny("0 0 20 12 *", 408*hour, "")
	cases := []struct {
		name    string
		windows []policy.Window
		at      string
		open    bool
		next    string // when closed
		until   string // when open, or when the blocking deny ends
		by      int
		opener  int
	}{
		{name: "inside work hours", windows: []policy.Window{allow(workdays, 8*hour, rome)},
			at: "2026-12-04T10:00:00+01:00", open: true, until: "2026-12-04T17:00:00+01:00", by: -1, opener: -1},
		{name: "the opening instant is inside", windows: []policy.Window{allow(workdays, 8*hour, rome)},
			at: "2026-12-04T09:00:00+01:00", open: true, until: "2026-12-04T17:00:00+01:00", by: -1, opener: -1},
		{name: "the closing instant is outside", windows: []policy.Window{allow(workdays, 8*hour, rome)},
			at: "2026-12-04T17:00:00+01:00", next: "2026-12-07T09:00:00+01:00", by: -1, opener: 0},
		{name: "a second before opening", windows: []policy.Window{allow(workdays, 8*hour, rome)},
			at: "2026-12-07T07:59:59Z", next: "2026-12-07T09:00:00+01:00", by: -1, opener: 0},
		{name: "the weekend", windows: []policy.Window{allow(workdays, 8*hour, rome)},
			at: "2026-12-05T12:00:00Z", next: "2026-12-07T09:00:00+01:00", by: -1, opener: 0},
		{name: "spans midnight", windows: []policy.Window{allow("0 22 * * *", 4*hour, "")},
			at: "2026-12-04T23:30:00Z", open: true, until: "2026-12-05T02:00:00Z", by: -1, opener: -1},
		{name: "after midnight", windows: []policy.Window{allow("0 22 * * *", 4*hour, "")},
			at: "2026-12-05T01:59:59Z", open: true, until: "2026-12-05T02:00:00Z", by: -1, opener: -1},
		{name: "spans the year end", windows: []policy.Window{winter},
			at: "2026-12-31T23:59:00Z", next: "2027-01-06T00:00:00Z", until: "2027-01-06T00:00:00Z", by: 0, opener: -1},
		{name: "after the freeze until the next one", windows: []policy.Window{winter},
			at: "2027-01-06T00:00:00Z", open: true, until: "2027-12-20T00:00:00Z", by: -1, opener: -1},
		{name: "deny over the allows, then the next allow", windows: []policy.Window{allow(workdays, 8*hour, rome), winter},
			at: "2026-12-22T10:00:00+01:00", next: "2027-01-06T09:00:00+01:00", until: "2027-01-06T00:00:00Z", by: 1, opener: 0},
		{name: "overlapping allows join", windows: []policy.Window{allow("0 9 * * *", 4*hour, ""), allow("0 11 * * *", 4*hour, "")},
			at: "2026-12-04T10:00:00Z", open: true, until: "2026-12-04T15:00:00Z", by: -1, opener: -1},
		{name: "adjacent allows are continuous", windows: []policy.Window{allow("0 9 * * *", hour, ""), allow("0 10 * * *", 2*hour, "")},
			at: "2026-12-04T09:30:00Z", open: true, until: "2026-12-04T12:00:00Z", by: -1, opener: -1},
		{name: "back-to-back occurrences are continuous", windows: []policy.Window{allow("0 9-11 * * *", hour, "")},
			at: "2026-12-04T09:10:00Z", open: true, until: "2026-12-04T12:00:00Z", by: -1, opener: -1},
		{name: "a deny inside an allow ends it", windows: []policy.Window{allow("0 9 * * *", 8*hour, ""), deny("0 12 * * *", hour, "")},
			at: "2026-12-04T10:00:00Z", open: true, until: "2026-12-04T12:00:00Z", by: -1, opener: -1},
		{name: "inside the deny inside the allow", windows: []policy.Window{allow("0 9 * * *", 8*hour, ""), deny("0 12 * * *", hour, "")},
			at: "2026-12-04T12:30:00Z", next: "2026-12-04T13:00:00Z", until: "2026-12-04T13:00:00Z", by: 1, opener: 0},
		{name: "a deny ending outside the allows", windows: []policy.Window{allow("0 9 * * *", 2*hour, ""), deny("0 10 * * *", 3*hour, "")},
			at: "2026-12-04T10:30:00Z", next: "2026-12-05T09:00:00Z", until: "2026-12-04T13:00:00Z", by: 1, opener: 0},
		{name: "the longest deny blocks", windows: []policy.Window{deny("0 10 * * *", hour, ""), deny("30 9 * * *", 3*hour, ""), deny("0 9 * * *", 2*hour, "")},
			at: "2026-12-04T10:15:00Z", next: "2026-12-04T12:30:00Z", until: "2026-12-04T12:30:00Z", by: 1, opener: -1},
		{name: "denies that chain", windows: []policy.Window{deny("0 10 * * *", hour, ""), deny("0 11 * * *", hour, "")},
			at: "2026-12-04T10:15:00Z", next: "2026-12-04T12:00:00Z", until: "2026-12-04T11:00:00Z", by: 0, opener: -1},
		{name: "descriptor", windows: []policy.Window{deny("@daily", hour, newYork)},
			at: "2026-12-04T05:30:00Z", next: "2026-12-04T01:00:00-05:00", until: "2026-12-04T01:00:00-05:00", by: 0, opener: -1},

		// Daylight saving time. Occurrences are the instants whose wall
		// clock matches, as robfig/cron's Next yields them; durations are
		// elapsed time.
		{name: "Rome spring forward: 02:30 does not occur", windows: []policy.Window{allow("30 2 * * *", hour, rome)},
			at: "2026-03-29T03:15:00+02:00", next: "2026-03-30T02:30:00+02:00", by: -1, opener: 0},
		{name: "Rome spring forward: the day before", windows: []policy.Window{allow("30 2 * * *", hour, rome)},
			at: "2026-03-28T02:45:00+01:00", open: true, until: "2026-03-28T03:30:00+01:00", by: -1, opener: -1},
		{name: "Rome spring forward: 2h from 01:00 ends at 04:00", windows: []policy.Window{allow("0 1 * * *", 2*hour, rome)},
			at: "2026-03-29T03:30:00+02:00", open: true, until: "2026-03-29T04:00:00+02:00", by: -1, opener: -1},
		{name: "Rome fall back: 02:30 occurs twice", windows: []policy.Window{allow("30 2 * * *", hour, rome)},
			at: "2026-10-25T02:45:00+02:00", open: true, until: "2026-10-25T03:30:00+01:00", by: -1, opener: -1},
		{name: "Rome fall back: inside the second 02:30", windows: []policy.Window{deny("30 2 * * *", hour, rome)},
			at: "2026-10-25T02:50:00+01:00", next: "2026-10-25T03:30:00+01:00", until: "2026-10-25T03:30:00+01:00", by: 0, opener: -1},
		{name: "New York spring forward: the 02:30 deny does not occur", windows: []policy.Window{deny("30 2 * * *", hour, newYork)},
			at: "2026-03-08T03:15:00-04:00", open: true, until: "2026-03-09T02:30:00-04:00", by: -1, opener: -1},
		{name: "New York spring forward: no 02:00 hour", windows: []policy.Window{allow("0 * * * *", 30*time.Minute, newYork)},
			at: "2026-03-08T01:40:00-05:00", next: "2026-03-08T03:00:00-04:00", by: -1, opener: 0},
		{name: "New York fall back: a 1h deny at 01:30 blocks for two hours", windows: []policy.Window{deny("30 1 * * *", hour, newYork)},
			at: "2026-11-01T01:00:00-05:00", next: "2026-11-01T02:30:00-05:00", until: "2026-11-01T02:30:00-05:00", by: 0, opener: -1},
		{name: "New York fall back: a 24h window leaves an hour out", windows: []policy.Window{allow("0 9 * * *", 24*hour, newYork)},
			at: "2026-11-01T08:30:00-05:00", next: "2026-11-01T09:00:00-05:00", by: -1, opener: 0},
		{name: "New York fall back: the 24h window ends at 08:00", windows: []policy.Window{allow("0 9 * * *", 24*hour, newYork)},
			at: "2026-10-31T12:00:00-04:00", open: true, until: "2026-11-01T08:00:00-05:00", by: -1, opener: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := compileWindows(t, c.windows...)
			st := ws.At(instant(t, c.at))
			window := func(i int) *policy.Window {
				if i < 0 {
					return nil
				}
				return &c.windows[i]
			}
			same := func(what string, got time.Time, want string) {
				t.Helper()
				if want == "" {
					if !got.IsZero() {
						t.Errorf("%s = %s, want none", what, got)
					}
					return
				}
				// The same instant, written in the same zone.
				if got.Format(time.RFC3339) != want {
					t.Errorf("%s = %s, want %s", what, got.Format(time.RFC3339), want)
				}
			}
			sameWindow := func(what string, got *policy.Window, want int) {
				t.Helper()
				if w := window(want); (got == nil) != (w == nil) || (got != nil && *got != *w) {
					t.Errorf("%s = %v, want %v", what, got, w)
				}
			}
			if st.Open != c.open {
				t.Fatalf("open = %t, want %t (%s)", st.Open, c.open, st)
			}
			same("next", st.Next, c.next)
			same("until", st.Until, c.until)
			sameWindow("by", st.By, c.by)
			sameWindow("opener", st.Opener, c.opener)
			if !st.Checked.IsZero() {
				t.Errorf("checked = %s: the search gave up", st.Checked)
			}
		})
	}
}

func TestNoWindowsAreOpen(t *testing.T) {
	ws, ps := policy.CompileWindows(nil)
	if ws != nil || ps != nil {
		t.Fatalf("CompileWindows(nil) = %v, %v", ws, ps)
	}
	if st := ws.At(time.Now()); !st.Open || !st.Until.IsZero() {
		t.Errorf("no windows: %+v", st)
	}
}

// A schedule that keeps a window open back to back gives up within its
// budget, yet says how far it is sure, so a waiting record re-checks then
// and not in a busy loop.
func TestWindowsGiveUpWithProgress(t *testing.T) {
	at := instant(t, "2026-12-04T10:00:00Z")
	for _, w := range []policy.Window{
		deny("* * * * *", time.Minute, ""),
		deny("@hourly", 25*hour, "Asia/Kolkata"),
		deny("* * * * *", policy.MaxWindowDuration, ""),
	} {
		st := compileWindows(t, w).At(at)
		if st.Open || !st.Next.IsZero() || st.By == nil {
			t.Errorf("%v: %+v, want closed with no next opening", w, st)
		}
		if !st.Checked.After(at.Add(time.Hour)) {
			t.Errorf("%v: checked %s, want some hours ahead", w, st.Checked)
		}
		if !strings.Contains(st.String(), "not open before") {
			t.Errorf("%v: %s", w, st)
		}
	}
	st := compileWindows(t, allow("* * * * *", time.Minute, "")).At(at)
	if !st.Open || !st.Until.IsZero() || !st.Checked.After(at.Add(time.Hour)) || !strings.Contains(st.String(), "at least until") {
		t.Errorf("always allowed: %+v (%s), want open with no end known, checked hours ahead", st, st)
	}
	// Allow windows that never open again within the horizon.
	st = compileWindows(t, allow("0 0 29 2 *", hour, "")).At(at)
	if st.Open || st.Next.Format(time.RFC3339) != "2028-02-29T00:00:00Z" {
		t.Errorf("leap day: %+v", st)
	}
}

func TestWindowStateString(t *testing.T) {
	ws := compileWindows(t, allow(workdays, 8*hour, rome), deny("0 0 20 12 *", 408*hour, "UTC"))
	cases := []struct{ at, want string }{
		{"2026-12-04T20:00:00Z", "outside the allow windows; next opens 2026-12-07T09:00:00+01:00 (0 9 * * 1-5, 8h, Europe/Rome)"},
		{"2026-12-25T10:00:00Z", "in deny window 0 0 20 12 * (408h, UTC) until 2027-01-06T00:00:00Z; next opens 2027-01-06T09:00:00+01:00 (0 9 * * 1-5, 8h, Europe/Rome)"},
		{"2026-12-04T10:00:00Z", "inside the windows until 2026-12-04T17:00:00+01:00"},
	}
	for _, c := range cases {
		if got := ws.At(instant(t, c.at)).String(); got != c.want {
			t.Errorf("at %s:\n got %s\nwant %s", c.at, got, c.want)
		}
	}
	st := compileWindows(t, deny("0 0 20 12 *", 408*hour, "")).At(instant(t, "2026-12-25T10:00:00Z"))
	if got, want := st.String(), "in deny window 0 0 20 12 * (408h, UTC) until 2027-01-06T00:00:00Z"; got != want {
		t.Errorf("deny only:\n got %s\nwant %s", got, want)
	}
	if got, want := allow("0 9 * * 1-5", 90*time.Minute, "").String(), "allow 0 9 * * 1-5 (1h30m, UTC)"; got != want {
		t.Errorf("Window.String() = %q, want %q", got, want)
	}
}

func TestCompileWindowsProblems(t *testing.T) {
	ok := allow(workdays, 8*hour, rome)
	cases := []struct {
		name string
		w    policy.Window
		path string
		msg  string
	}{
		{"no duration", allow(workdays, 0, ""), "windows[1].duration", "needs a duration"},
		{"too short", allow(workdays, 30*time.Second, ""), "windows[1].duration", "too short"},
		{"over a year", allow(workdays, policy.MaxWindowDuration+time.Minute, ""), "windows[1].duration", "too long"},
		{"bad cron", allow("61 * * * *", hour, ""), "windows[1].schedule", "not a valid schedule"},
		{"six fields", allow("0 0 9 * * 1-5", hour, ""), "windows[1].schedule", "seconds are not supported"},
		{"four fields", allow("0 9 * *", hour, ""), "windows[1].schedule", "has 4 fields"},
		{"no schedule", allow("  ", hour, ""), "windows[1].schedule", "needs a schedule"},
		{"zone in the schedule", allow("TZ=UTC", hour, ""), "windows[1].schedule", "timezone key"},
		{"cron zone in the schedule", allow("CRON_TZ=Europe/Rome 0 9 * * *", hour, ""), "windows[1].schedule", "timezone key"},
		{"every", allow("@every 1h", hour, ""), "windows[1].schedule", "names no time of day"},
		{"unknown descriptor", allow("@reboot", hour, ""), "windows[1].schedule", "not a valid schedule"},
		{"never", allow("0 0 30 2 *", hour, ""), "windows[1].schedule", "never opens"},
		{"control characters", allow("0 9 * * *\x00", hour, ""), "windows[1].schedule", "characters"},
		{"long", allow(strings.Repeat("1,", 200)+"1 * * * *", hour, ""), "windows[1].schedule", "longer than"},
		{"unknown zone", allow(workdays, hour, "Mars/Olympus_Mons"), "windows[1].timezone", "unknown time zone"},
		{"path as zone", allow(workdays, hour, "../../etc/passwd"), "windows[1].timezone", "unknown time zone"},
		{"machine zone", allow(workdays, hour, "Local"), "windows[1].timezone", "depends on the machine"},
		{"no kind", policy.Window{Schedule: workdays, Duration: hour}, "windows[1].kind", "needs a kind"},
		{"other kind", policy.Window{Kind: "maybe", Schedule: workdays, Duration: hour}, "windows[1].kind", `"maybe" must be allow or deny`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws, ps := policy.CompileWindows([]policy.Window{ok, c.w})
			if ws != nil {
				t.Error("compiled despite problems")
			}
			if len(ps) != 1 || ps[0].Path != c.path || !strings.Contains(ps[0].Msg, c.msg) {
				t.Errorf("problems %v, want one at %s saying %q", ps, c.path, c.msg)
			}
		})
	}

	// Every problem at once, in order.
	_, ps := policy.CompileWindows([]policy.Window{{Kind: "x", Schedule: "bad", Duration: -1, Timezone: "Nowhere"}, ok, deny("* * * * * *", hour, "")})
	var paths []string
	for _, p := range ps {
		paths = append(paths, p.Path)
	}
	if got, want := fmt.Sprint(paths), "[windows[0].kind windows[0].duration windows[0].timezone windows[0].schedule windows[2].schedule]"; got != want {
		t.Errorf("problems at %s, want %s", got, want)
	}

	many := make([]policy.Window, policy.MaxWindows+1)
	for i := range many {
		many[i] = ok
	}
	if _, ps := policy.CompileWindows(many); len(ps) != 1 || ps[0].Path != "windows" {
		t.Errorf("%d windows: %v", len(many), ps)
	}
	for _, s := range []string{"@daily", "@weekly", "@monthly", "@yearly", "@hourly", "0 9 * * MON-FRI", "*/15 8-18 * JAN,DEC ?"} {
		if _, ps := policy.CompileWindows([]policy.Window{allow(s, hour, "")}); ps != nil {
			t.Errorf("%q refused: %v", s, ps)
		}
	}
}

// FuzzCompileWindows feeds arbitrary schedules and zones: CompileWindows
// never panics (the cron parser does on "TZ=X"), and what compiles
// answers At.
func FuzzCompileWindows(f *testing.F) {
	for _, s := range []string{"0 9 * * 1-5", "TZ=UTC", "CRON_TZ=", "@every 1s", "@daily", "*/0 * * * *", "1-2-3 * * * *", "0 0 31 2 *", "5/ * * * *", "-1 * * * *"} {
		f.Add(s, "Europe/Rome", int64(time.Hour))
	}
	f.Add("0 0 * * *", "../../../../dev/zero", int64(time.Minute))
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, schedule, tz string, d int64) {
		ws, ps := policy.CompileWindows([]policy.Window{deny(schedule, time.Duration(d), tz), allow("0 9 * * *", 8*hour, "")})
		if (ws == nil) == (ps == nil) {
			t.Fatalf("CompileWindows returned %v and %v", ws, ps)
		}
		if ws != nil {
			st := ws.At(at)
			if !st.Open && st.Next.IsZero() && !st.Checked.After(at) {
				t.Fatalf("closed with no progress: %+v", st)
			}
		}
	})
}
