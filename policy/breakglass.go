package policy

import (
	"context"
	"strings"
	"time"
)

// BreakGlass reports whether change ch may pass the windows and freezes
// that hold it (SPEC §5 step 6, policy.break_glass): ok when one of the
// ticket keys of the record's own commit message (jira.projects apply)
// names a ticket that exists, passes the jira rule for that commit
// exactly as step 1 judges it (statuses, approval with four eyes, JQL; a
// rule that requires nothing needs the ticket to exist), and carries one
// of break_glass.jira_labels, compared case-insensitively. ticket is that
// key, for the reason "break-glass by <ticket>".
//
// It fails closed: with no labels configured, no ticket checker, JIRA
// unavailable or a missing ticket, ch is not break-glass. Each call looks
// its tickets up afresh, so a label added or removed since counts; now is
// the time of the judgement.
//
// Call it only for a record that passed steps 1 to 5 and that a window,
// freeze or halt would hold, and only to let it pass those: it never
// lifts another rule, and every call costs JIRA lookups.
func (e *Engine) BreakGlass(ctx context.Context, ch *Change, now time.Time) (ticket string, ok bool) {
	labels := e.cfg.BreakGlass.JiraLabels
	if len(labels) == 0 || e.tickets == nil || ch == nil {
		return "", false
	}
	l := &lookups{e: e, now: now}
	for _, k := range TicketKeys(ch.Commit.Message, e.cfg.Jira.Projects) {
		t, problem, err := e.judgeTicket(ctx, l, k, ch.Commit)
		if err != nil || problem != "" {
			continue
		}
		for _, label := range t.Labels {
			if strings.TrimSpace(label) != "" && containsFold(labels, label) {
				return k, true
			}
		}
	}
	return "", false
}
