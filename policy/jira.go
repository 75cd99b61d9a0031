package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// CheckedTicket is a ticket as policy saw it while judging a change, and
// when (SPEC §7 evidence.tickets: key, status, approvers, labels,
// checked_at).
type CheckedTicket struct {
	Ticket
	// At is the time of the judgement (the now Evaluate was given).
	At time.Time
}

// lookups holds the JIRA answers of one judgement, so that a ticket
// named by several commits is looked up once, and records what was seen
// for the evidence. It is not safe for concurrent use; each judgement
// has its own.
type lookups struct {
	e       *Engine
	now     time.Time
	tickets []lookup
	jql     []lookup
	checked []CheckedTicket
}

// lookup is one JIRA answer: a ticket, or whether it matches the JQL
// condition, or the error.
type lookup struct {
	key   string
	t     Ticket
	match bool
	err   error
}

func (l *lookups) ticket(ctx context.Context, key string) (Ticket, error) {
	for _, x := range l.tickets {
		if x.key == key {
			return x.t, x.err
		}
	}
	t, err := l.e.tickets.Ticket(ctx, key)
	if err == nil && t.Key == "" {
		t.Key = key
	}
	l.tickets = append(l.tickets, lookup{key: key, t: t, err: err})
	if err == nil {
		// The evidence never changes afterwards, whatever the checker
		// does with its own slices.
		seen := t
		seen.Approvers, seen.Labels = slices.Clone(t.Approvers), slices.Clone(t.Labels)
		l.checked = append(l.checked, CheckedTicket{Ticket: seen, At: l.now})
	}
	return t, err
}

// evidence returns the tickets looked up, in the order of their first
// lookup; [] when none.
func (l *lookups) evidence() []CheckedTicket {
	if l.checked == nil {
		return []CheckedTicket{}
	}
	return l.checked
}

func (l *lookups) matchesJQL(ctx context.Context, m JQLMatcher, key, jql string) (bool, error) {
	for _, x := range l.jql {
		if x.key == key {
			return x.match, x.err
		}
	}
	match, err := m.MatchesJQL(ctx, key, jql)
	l.jql = append(l.jql, lookup{key: key, match: match, err: err})
	return match, err
}

// ruleRequiresNothing reports whether the jira rule asks nothing of a
// ticket: neither that one is named nor anything of it.
func (j JiraConfig) ruleRequiresNothing() bool {
	return !j.Required && len(j.Statuses) == 0 && !j.Approval.Required && j.JQL == ""
}

// judgeTicket says how ticket key, named by commit c, fares under the
// jira rule: err when JIRA could not answer (the caller waits or fails
// closed), else problem, "" when the ticket passes. It is the one
// judgement of a ticket, for step 1 and for break-glass alike. It needs
// a ticket checker (l.e.tickets != nil). With the rule requiring nothing
// of tickets, a ticket that exists passes.
func (e *Engine) judgeTicket(ctx context.Context, l *lookups, key string, c Commit) (t Ticket, problem string, err error) {
	j := e.cfg.Jira
	t, err = l.ticket(ctx, key)
	switch {
	case errors.Is(err, ErrTicketNotFound):
		return t, fmt.Sprintf("ticket %s of commit %s does not exist", key, short(c.SHA)), nil
	case err != nil:
		return t, "", err
	case len(j.Statuses) > 0 && !containsFold(j.Statuses, t.Status):
		return t, fmt.Sprintf("ticket %s is %q; allowed: %s", key, t.Status, strings.Join(j.Statuses, ", ")), nil
	}
	if j.Approval.Required {
		if msg := approvalProblem(t, c, j.Approval.FourEyes); msg != "" {
			return t, msg, nil
		}
	}
	if j.JQL != "" {
		m, ok := e.tickets.(JQLMatcher)
		if !ok {
			return t, "policy.jira.jql is set but the JIRA integration cannot evaluate JQL; failing closed", nil
		}
		match, err := l.matchesJQL(ctx, m, key, j.JQL)
		switch {
		case errors.Is(err, ErrTicketNotFound):
			return t, fmt.Sprintf("ticket %s of commit %s does not exist", key, short(c.SHA)), nil
		case err != nil:
			return t, "", err
		case !match:
			return t, fmt.Sprintf("ticket %s does not match the JQL condition %q", key, j.JQL), nil
		}
	}
	return t, "", nil
}

// checkTickets applies the jira rule to commit c of change ch: a reason
// through fail for each ticket that fails it, and the pending reason when
// JIRA could not answer yet (a rejection once unavailable_timeout has
// passed since ch.PendingSince).
func (e *Engine) checkTickets(ctx context.Context, l *lookups, c Commit, ch *Change, now time.Time, fail func(rule, msg string)) *Reason {
	j := e.cfg.Jira
	if j.ruleRequiresNothing() {
		return nil
	}
	keys := TicketKeys(c.Message, j.Projects)
	if len(keys) == 0 {
		if j.Required {
			fail(RuleJira, fmt.Sprintf("commit %s names no JIRA ticket%s", short(c.SHA), projectsHint(j.Projects)))
		}
		return nil
	}
	if e.tickets == nil {
		fail(RuleJira, "JIRA tickets must be checked but no JIRA integration is configured")
		return nil
	}
	var pending *Reason
	for _, k := range keys {
		_, problem, err := e.judgeTicket(ctx, l, k, c)
		switch {
		case err != nil:
			since := ch.PendingSince
			if since.IsZero() {
				since = now
			}
			if now.Sub(since) >= j.UnavailableTimeout {
				fail(RuleJira, fmt.Sprintf("JIRA could not be reached for %s to check ticket %s; failing closed", j.UnavailableTimeout, k))
			} else if pending == nil {
				pending = &Reason{Rule: RuleJira, Commit: c.SHA,
					Message: fmt.Sprintf("waiting for JIRA to check ticket %s (rejected after %s): %v", k, j.UnavailableTimeout, err)}
			}
		case problem != "":
			fail(RuleJira, problem)
		}
	}
	return pending
}

// approvalProblem says why ticket t does not approve commit c, or "".
// With four eyes, an approval by the commit's committer or author does
// not count.
func approvalProblem(t Ticket, c Commit, fourEyes bool) string {
	if len(t.Approvers) == 0 {
		return fmt.Sprintf("ticket %s is not approved", t.Key)
	}
	if !fourEyes {
		return ""
	}
	for _, a := range t.Approvers {
		if !strings.EqualFold(a, c.Committer.Email) && !strings.EqualFold(a, c.Author.Email) {
			return ""
		}
	}
	return fmt.Sprintf("ticket %s is approved only by the person who made commit %s (four eyes: %s)", t.Key, short(c.SHA), strings.Join(t.Approvers, ", "))
}

func projectsHint(p []string) string {
	if len(p) == 0 {
		return ""
	}
	return " of project " + strings.Join(p, ", ")
}
