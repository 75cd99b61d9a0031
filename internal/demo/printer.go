package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/gitmon-dev/gitmon/internal/notify"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// printer writes the timeline: every line starts with the seconds since
// the demo began.
type printer struct {
	w     io.Writer
	start time.Time
	mu    sync.Mutex
	in    *inbox // the fake Slack's and SMTP server's deliveries
}

func (p *printer) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "  %6.2fs  %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// at is t on the timeline.
func (p *printer) at(t time.Time) string { return fmt.Sprintf("%.2fs", t.Sub(p.start).Seconds()) }

// command shows an operator's command line and what it printed.
func (p *printer) command(line string, out ...string) {
	p.say("$ gitmon %s", line)
	for _, l := range out {
		p.say("  %s", l)
	}
}

// block writes text (a command's table) under the timeline, indented.
func (p *printer) block(text []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range bytes.Split(bytes.TrimRight(text, "\n"), []byte("\n")) {
		if len(l) == 0 {
			fmt.Fprintln(p.w)
			continue
		}
		fmt.Fprintf(p.w, "           %s\n", l)
	}
}

func (p *printer) title(n int, t string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\n%d. %s\n", n, t)
}

// notes prints the notifications delivered since the last call.
func (p *printer) notes() {
	if p.in == nil {
		return
	}
	for _, l := range p.in.take() {
		p.say("          %s", l)
	}
}

func (p *printer) events(ctx context.Context, st store.Store) {
	evs, _ := st.Events(ctx, store.Filter{})
	for i := len(evs) - 1; i >= 0; i-- {
		p.say("event %s: %s", evs[i].Kind, evs[i].Message)
	}
}

// record prints a record: one line for what it is and its status, then
// its reasons, where a promotion came from, and its stages.
func (p *printer) record(r *store.Record) {
	step := r.Version
	if r.PreviousVersion != "" && r.PreviousVersion != r.Version {
		step = r.PreviousVersion + " → " + r.Version
	}
	by := fmt.Sprintf("commit %s by %s", short(r.Commit), r.Committer)
	if r.Trigger == store.TriggerRetry {
		by = fmt.Sprintf("a retry of commit %s, asked by %s", short(r.Commit), r.Actor)
	}
	p.say("%s/%s %s: %s (%s)", r.Environment, r.Service, step, strings.ToUpper(r.Status), by)
	for _, rs := range r.Reasons {
		where := ""
		if rs.Field != "" && rs.Commit != "" && rs.Commit != r.Commit {
			where = fmt.Sprintf(" [field %s, commit %s]", rs.Field, short(rs.Commit))
		}
		p.say("          reason %s: %s%s", rs.Rule, rs.Message, where)
	}
	if u := r.Evidence.Upstream; u != nil && r.FinishedAt != nil {
		p.say("          upstream: %s released it at %s (record %s)", u.Environment, p.at(u.SucceededAt), u.Record)
	}
	for _, s := range r.Stages {
		if r.FinishedAt == nil {
			break
		}
		line := fmt.Sprintf("          stage %-11s %-9s", s.Name, s.Status)
		if s.Message != "" {
			line += " " + s.Message
		} else if out := lastLine(s.Output); out != "" {
			line += " " + out
		}
		p.say("%s", line)
	}
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

// lastKey is the outbox key of a record's last Slack message (its
// outcome, to its service's first channel), or "" when it has none: a
// skipped record is not announced.
func lastKey(r *store.Record) string {
	if len(r.Slack) == 0 || r.FinishedAt == nil || r.Status == store.StatusSkipped || r.Status == store.StatusSuperseded {
		return ""
	}
	ev := notify.EventFinished
	if r.Status == store.StatusRejected {
		ev = notify.EventRejected
	}
	return notify.SlackKey(r.ID, ev, r.Slack[0])
}

// summary counts the records and the notifications delivered.
func (p *printer) summary(ctx context.Context, st store.Store) error {
	recs, err := st.Records(ctx, store.Filter{})
	if err != nil {
		return err
	}
	count := map[string]int{}
	for _, r := range recs {
		count[r.Status]++
	}
	b, _ := json.Marshal(count)
	fmt.Fprintf(p.w, "\n%d records %s. Every one is in the store: `gitmon history --json` prints them.\n", len(recs), b)
	if p.in != nil {
		posts, mails := p.in.counts()
		fmt.Fprintf(p.w, "%d Slack posts delivered to the fake Slack API and %d e-mails to the local SMTP server.\n", posts, mails)
	}
	return nil
}
