package policy

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // the static binary knows every IANA zone, whatever the host has

	"github.com/robfig/cron/v3"
)

// Limits of policy.windows.
const (
	// MaxWindows is the most windows one policy may list: At's cost grows
	// with their number.
	MaxWindows = 64
	// MinWindowDuration is the shortest window: schedules have a
	// one-minute resolution.
	MinWindowDuration = time.Minute
	// MaxWindowDuration is the longest window, a leap year.
	MaxWindowDuration = 366 * 24 * time.Hour
	// WindowHorizon is how far ahead At walks to find the next opening or
	// closing. The step that crosses it is still judged, so an allow
	// window that opens later (on the next February 29th) is found.
	WindowHorizon = 400 * 24 * time.Hour
	// maxScheduleLen bounds the text of one schedule.
	maxScheduleLen = 256
	// lookupsBase and lookupsPerWindow bound the schedule look-ups (cron
	// Next calls, 0.3 to 4 µs each) of one At call. Typical windows need a
	// handful; only schedules that keep a window open back to back or
	// overlapping for a long time, such as "* * * * *" for 1m, walk that
	// far (see At).
	lookupsBase      = 128
	lookupsPerWindow = 16
)

// cronParser reads the 5 fields of SPEC §3 (minute hour day-of-month
// month day-of-week) and descriptors such as @daily.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Windows are an environment's compiled policy.windows, with Argo CD's
// sync-window semantics. A nil *Windows means no windows: always open. It
// is safe for concurrent use.
type Windows struct {
	list     []window
	hasAllow bool
}

// window is one compiled Window.
type window struct {
	cfg   Window
	sched *cron.SpecSchedule
	loc   *time.Location
	dur   time.Duration
	deny  bool
}

// WindowState is what the windows say of one instant. Its times are in
// the time zone of the window they come from, so that String words them
// as the operator wrote that window.
type WindowState struct {
	// Open says releases may start.
	Open bool
	// Next, when not Open, is the earliest instant at which releases may
	// start; zero when none was found within WindowHorizon (or the walk
	// gave up, see Checked).
	Next time.Time
	// By, when not Open, is the deny window that blocks: of the deny
	// windows open at that instant, the one that stays open longest. Nil
	// means the instant is outside every allow window.
	By *Window
	// Opener, when Next is set and allow windows exist, is the allow
	// window open at Next.
	Opener *Window
	// Until, when Open, is when releases stop being allowed: the earliest
	// of the end of the covering allow windows and the next opening of a
	// deny window. When closed by a deny window, it is when that window
	// ends, which may come before Next. Zero when never or unknown.
	Until time.Time
	// Checked is set when the search gave up or reached its horizon (see
	// At). When not Open and Next is zero, releases may not start before
	// Checked, and a caller that waits for the windows re-evaluates then;
	// when Open and Until is zero, releases stay allowed at least until
	// Checked.
	Checked time.Time
}

// CompileWindows checks and compiles ws. Problems name their place as
// "windows[1].schedule". No windows compile to nil, which is always open.
func CompileWindows(ws []Window) (*Windows, []Problem) {
	if len(ws) == 0 {
		return nil, nil
	}
	var ps []Problem
	bad := func(i int, key, format string, args ...any) {
		ps = append(ps, Problem{Path: fmt.Sprintf("windows[%d]%s", i, key), Msg: fmt.Sprintf(format, args...)})
	}
	if len(ws) > MaxWindows {
		ps = append(ps, Problem{Path: "windows", Msg: fmt.Sprintf("%d windows: at most %d are allowed", len(ws), MaxWindows)})
		return nil, ps
	}
	out := &Windows{list: make([]window, 0, len(ws))}
	for i, w := range ws {
		c := window{cfg: w}
		switch w.Kind {
		case WindowAllow:
			out.hasAllow = true
		case WindowDeny:
			c.deny = true
		case "":
			bad(i, ".kind", "a window needs a kind: allow or deny")
		default:
			bad(i, ".kind", "%q must be allow or deny", w.Kind)
		}
		switch {
		case w.Duration <= 0:
			bad(i, ".duration", "a window needs a duration of at least %s, such as 8h", shortDuration(MinWindowDuration))
		case w.Duration < MinWindowDuration:
			bad(i, ".duration", "%s is too short: at least %s (schedules have a one-minute resolution)", w.Duration, shortDuration(MinWindowDuration))
		case w.Duration > MaxWindowDuration:
			bad(i, ".duration", "%s is too long: at most %s (366d)", shortDuration(w.Duration), shortDuration(MaxWindowDuration))
		}
		c.dur = w.Duration
		loc, msg := loadZone(w.Timezone)
		if msg != "" {
			bad(i, ".timezone", "%s", msg)
		}
		c.loc = loc
		sched, msg := parseSchedule(w.Schedule, loc)
		if msg != "" {
			bad(i, ".schedule", "%s", msg)
		}
		c.sched = sched
		out.list = append(out.list, c)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return out, nil
}

// loadZone reads an IANA time zone name; "" is UTC.
func loadZone(name string) (*time.Location, string) {
	switch name {
	case "":
		return time.UTC, ""
	case "Local":
		// Whatever the host says: the same config would mean different
		// hours on different machines.
		return time.UTC, `"Local" depends on the machine; name the zone, such as Europe/Rome or UTC`
	}
	if len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return time.UTC, fmt.Sprintf("%.64q is not an IANA time zone name (such as Europe/Rome or UTC)", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC, fmt.Sprintf("unknown time zone %q: want an IANA name such as Europe/Rome or UTC", name)
	}
	return loc, ""
}

// parseSchedule reads a 5-field cron expression or a descriptor such as
// @daily, in loc.
func parseSchedule(s string, loc *time.Location) (*cron.SpecSchedule, string) {
	const want = "a 5-field cron expression (minute hour day-of-month month day-of-week), such as \"0 9 * * 1-5\""
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return nil, "a window needs a schedule: " + want
	case len(t) > maxScheduleLen:
		return nil, fmt.Sprintf("the schedule is longer than %d characters", maxScheduleLen)
	case strings.HasPrefix(t, "TZ=") || strings.HasPrefix(t, "CRON_TZ="):
		// The parser also panics on "TZ=X" without a space.
		return nil, "put the time zone in the window's timezone key, not in the schedule"
	case strings.HasPrefix(t, "@every"):
		return nil, fmt.Sprintf("%q repeats from whenever it is read, so it names no time of day: use %s", t, want)
	case strings.ContainsFunc(t, func(r rune) bool { return r < ' ' || r > '~' }):
		return nil, fmt.Sprintf("%q holds characters a cron expression never has", t)
	}
	if !strings.HasPrefix(t, "@") {
		if n := len(strings.Fields(t)); n != 5 {
			hint := ""
			if n == 6 {
				hint = "; seconds are not supported"
			}
			return nil, fmt.Sprintf("%q has %d fields, want %s%s", t, n, want, hint)
		}
	}
	parsed, err := cronParser.Parse(t)
	if err != nil {
		return nil, fmt.Sprintf("%q is not a valid schedule (%v): want %s", t, err, want)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Sprintf("%q is not a calendar schedule: want %s", t, want)
	}
	spec.Location = loc
	// Every expression that can fire at all does so within five years of
	// this date, February 29th included; "0 0 30 2 *" never does.
	if spec.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, loc)).IsZero() {
		return nil, fmt.Sprintf("%q never opens: no date matches it", t)
	}
	return spec, ""
}

// At says whether releases may start at t.
//
// A window is open at t when t is in [open, open+duration) for an
// occurrence open of its schedule in its time zone; the duration is
// elapsed time, not wall-clock time. Any open deny window blocks; when
// allow windows exist, t must also be inside one of them.
//
// Occurrences are what robfig/cron's Next yields, which is every instant
// whose wall clock matches the expression: across daylight saving
// changes, a time the clock skips (02:30 on a spring-forward night) does
// not occur that day, and a time the clock repeats (01:30 on a fall-back
// night) occurs twice, an hour apart. A 1h window at 01:30 is then open
// for two hours that night. (Where a zone shifts by half an hour, as
// Australia/Lord_Howe does, cron's Next alone would miss that day's
// matches; they are found all the same.)
//
// Cost: whether a window is open takes one look-up (cron Next from
// t - duration, 0.3 to 4 µs). Next and Until walk the windows'
// occurrences: a window that reopens before it closes is followed from
// occurrence to occurrence; the latest occurrence before an instant is
// found by a few steps forward, then a binary search (about 25 look-ups
// for a year); windows of up to 2h whose occurrences follow each other
// closely ("* 9-17 * * 1-5" for 1m) are walked minute by minute on the
// wall clock (32 minutes cost one look-up). The SPEC §3 pair of windows
// takes 3 to 7 look-ups, about 7 to 25 µs. The walk stops at
// WindowHorizon or after 128 + 16 per window look-ups (well under 1 ms
// for one window); a window that stays open back to back for days (such
// as "* * * * *" for 1m, or "0 9 * * *" for 25h) gets that far, and the
// answer is then zero with Checked saying how far the walk got.
func (ws *Windows) At(t time.Time) WindowState {
	if ws == nil {
		return WindowState{Open: true}
	}
	t = t.Round(0) // compare wall times only
	s := &search{ws: ws, lookups: lookupsBase + lookupsPerWindow*len(ws.list), limit: t.Add(WindowHorizon)}
	blocker, end, known := s.blockingDeny(t)
	if blocker != nil {
		st := WindowState{By: &blocker.cfg}
		if known {
			st.Until = end.In(blocker.loc)
		}
		st.Next, st.Opener, st.Checked = s.nextOpen(end, known)
		return st
	}
	if ws.hasAllow && s.activeAllow(t) == nil {
		var st WindowState
		st.Next, st.Opener, st.Checked = s.nextOpen(t, true)
		return st
	}
	st := WindowState{Open: true}
	st.Until, st.Checked = s.until(t)
	return st
}
