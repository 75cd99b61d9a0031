package policy

import (
	"fmt"
	"strings"
	"time"
)

// String words w as "allow 0 9 * * 1-5 (8h, Europe/Rome)".
func (w Window) String() string {
	return w.Kind + " " + w.Schedule + " (" + w.about() + ")"
}

// about is "8h, Europe/Rome".
func (w Window) about() string {
	tz := w.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return shortDuration(w.Duration) + ", " + tz
}

// String words s as the reason a record waits (rule window), such as
// "outside the allow windows; next opens 2026-12-07T09:00:00+01:00
// (0 9 * * 1-5, 8h, Europe/Rome)" or "in deny window 0 0 20 12 * (408h,
// UTC) until 2027-01-06T00:00:00Z".
func (s WindowState) String() string {
	if s.Open {
		if s.Until.IsZero() && !s.Checked.IsZero() {
			return "inside the windows at least until " + stamp(s.Checked)
		}
		if s.Until.IsZero() {
			return "inside the windows"
		}
		return "inside the windows until " + stamp(s.Until)
	}
	var b strings.Builder
	if s.By != nil {
		fmt.Fprintf(&b, "in deny window %s (%s)", s.By.Schedule, s.By.about())
		if !s.Until.IsZero() {
			b.WriteString(" until " + stamp(s.Until))
		}
	} else {
		b.WriteString("outside the allow windows")
	}
	switch {
	case !s.Next.IsZero() && s.Opener != nil:
		fmt.Fprintf(&b, "; next opens %s (%s, %s)", stamp(s.Next), s.Opener.Schedule, s.Opener.about())
	case !s.Next.IsZero() && !s.Next.Equal(s.Until):
		b.WriteString("; next opens " + stamp(s.Next))
	case s.Next.IsZero() && !s.Checked.IsZero():
		b.WriteString("; not open before " + stamp(s.Checked))
	}
	return b.String()
}

func stamp(t time.Time) string { return t.Format(time.RFC3339) }

// shortDuration words d without trailing zero units: 8h, 1h30m, 90s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
