package app

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// waitingWidth is how much of a waiting reason the table shows.
const waitingWidth = 72

// WriteText writes the report for people: per environment a banner line
// for each pause, freeze or halt, then one table row per service; last, the
// dead letters when there are any. Ages count from the report's At, so the
// text depends on nothing else.
func (r *StatusReport) WriteText(w io.Writer) error {
	bw := &errWriter{w: w}
	for i, env := range r.Environments {
		if i > 0 {
			bw.printf("\n")
		}
		bw.printf("%s\n", oneLine(env.Name))
		for _, p := range env.Pauses {
			why := "paused"
			switch p.Reason {
			case store.PauseForcePush:
				why = "after a force-push"
			case store.PauseDeleted:
				why = "its branch was deleted"
			}
			since := ""
			if p.Since != nil {
				since = ", since " + r.when(*p.Since)
			}
			bw.printf("  PAUSED %s (branch %s): %s%s; `gitmon resume --env %s` lifts it\n",
				oneLine(p.Repository), oneLine(p.Branch), why, since, oneLine(env.Name))
		}
		if f := env.Frozen; f != nil && !f.All {
			bw.printf("  FROZEN %s\n", r.freezeText(f))
		}
		if r.Halted != nil {
			bw.printf("  HALTED (every environment) %s\n", r.freezeText(r.Halted))
		}
		if len(env.Services) == 0 {
			bw.printf("  no services\n")
			continue
		}
		tw := tabwriter.NewWriter(bw, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SERVICE\tVERSION\tCOMMIT\tDEPLOYED\tBY\tLAST\tWAITING")
		several := severalRepositories(env.Services)
		for _, sv := range env.Services {
			name := sv.Service
			if several {
				name = sv.Repository + "/" + sv.Service
			}
			deployed := "-"
			switch {
			case sv.DeployedAt != nil:
				deployed = r.age(*sv.DeployedAt)
			case sv.Version != "":
				deployed = "baseline"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(name), cell(sv.Version), cell(short(sv.Commit)),
				deployed, cell(sv.Committer), cell(lastText(sv, env.Running)), cell(waitingText(sv)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	switch {
	case r.DeadLetters == 1:
		bw.printf("\n1 dead letter: a notification gitmon gave up on (the log says why)\n")
	case r.DeadLetters > 1:
		bw.printf("\n%d dead letters: notifications gitmon gave up on (the log says why)\n", r.DeadLetters)
	}
	return bw.err
}

// freezeText is who froze, why, since and until when.
func (r *StatusReport) freezeText(f *FreezeStatus) string {
	until := "until unfreeze"
	if f.Until != nil {
		until = "until " + r.when(*f.Until)
	}
	who := ""
	if f.Actor != "" {
		who = "by " + cut(oneLine(f.Actor), 60) + ": "
	}
	reason := cut(oneLine(f.Reason), 120)
	if reason == "" {
		reason = "no reason given"
	}
	return fmt.Sprintf("%s%s; since %s, %s", who, reason, r.when(f.Since), until)
}

// lastText is the status of the service's newest record, with its version
// when it is not the deployed one, and the release that runs when it is
// another record.
func lastText(sv ServiceStatus, running []RunningStatus) string {
	l := sv.LastRecord
	if l == nil {
		return "-"
	}
	s := l.Status
	if l.Action == string(policy.ActionRemove) {
		s += " remove"
	} else if l.Version != sv.Version {
		s += " " + l.Version
	}
	for _, run := range running {
		if run.Repository == sv.Repository && run.Service == sv.Service && run.ID != l.ID {
			s += ", running " + run.Version
		}
	}
	return s
}

// waitingText is the first reason the service waits for, on one line.
func waitingText(sv ServiceStatus) string {
	if len(sv.Waiting) == 0 {
		if sv.Pending > 0 {
			return "queued for a runner"
		}
		return "-"
	}
	first := sv.Waiting[0]
	text := first.Message
	if first.Rule != "" {
		text = first.Rule + ": " + text
	}
	more := ""
	if n := len(sv.Waiting) - 1; n > 0 {
		more = fmt.Sprintf(" (+%d)", n)
	}
	return cut(oneLine(text), waitingWidth-len(more)) + more
}

func severalRepositories(svcs []ServiceStatus) bool {
	for _, sv := range svcs {
		if sv.Repository != svcs[0].Repository {
			return true
		}
	}
	return false
}

// age is how long before the report t was; a time after the report (a
// clock ahead) or long before it is written as the time or the day.
func (r *StatusReport) age(t time.Time) string {
	d := r.At.Sub(t)
	switch {
	case d < 0:
		return t.UTC().Format(time.RFC3339)
	case d >= 30*24*time.Hour:
		return t.UTC().Format(time.DateOnly)
	}
	return span(d) + " ago"
}

// when is a time as RFC 3339, with its distance from the report when that
// is under 30 days.
func (r *StatusReport) when(t time.Time) string {
	s := t.UTC().Format(time.RFC3339)
	switch d := t.Sub(r.At); {
	case d > 0 && d < 30*24*time.Hour:
		return s + " (in " + span(d) + ")"
	case d <= 0 && -d < 30*24*time.Hour:
		return s + " (" + span(-d) + " ago)"
	}
	return s
}

// span is a duration in its two largest units: 42s, 5m, 3h05m, 2d07h.
func span(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < day:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/day), int(d%day/time.Hour))
}

// cell is a table cell: one line, "-" when empty.
func cell(s string) string {
	if s = oneLine(s); s == "" {
		return "-"
	}
	return s
}

// oneLine makes text from the state safe for a terminal line: control
// characters (newlines, tabs, escape sequences) and bidirectional
// overrides become spaces, and runs of spaces one.
func oneLine(s string) string {
	var b strings.Builder
	space := false
	for _, c := range s {
		if unicode.IsControl(c) || unicode.IsSpace(c) || unicode.Is(unicode.Bidi_Control, c) || c == utf8.RuneError {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(c)
	}
	return b.String()
}

// cut shortens s to n characters, the last one "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

// errWriter keeps the first write error, so that the text is written
// without checking every line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
