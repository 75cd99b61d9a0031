// Package policytest holds fakes of the interfaces package policy
// declares, for tests of policy and of the packages that call it.
package policytest

import (
	"context"
	"fmt"
	"sync"

	"github.com/gitmon-dev/gitmon/policy"
)

// Tickets is an in-memory policy.TicketChecker. Set Down to make every
// lookup fail as if JIRA were unreachable.
type Tickets struct {
	mu      sync.Mutex
	tickets map[string]policy.Ticket
	jql     map[string]bool // key → matches the JQL condition
	down    bool
	calls   int
}

var (
	_ policy.TicketChecker = (*Tickets)(nil)
	_ policy.JQLMatcher    = (*Tickets)(nil)
)

// SetJQL says whether key matches the (single) JQL condition under test.
func (f *Tickets) SetJQL(key string, match bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jql == nil {
		f.jql = map[string]bool{}
	}
	f.jql[key] = match
}

// MatchesJQL implements policy.JQLMatcher.
func (f *Tickets) MatchesJQL(ctx context.Context, key, jql string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false, fmt.Errorf("%w: connection refused", policy.ErrUnavailable)
	}
	if _, ok := f.tickets[key]; !ok {
		return false, fmt.Errorf("%s: %w", key, policy.ErrTicketNotFound)
	}
	return f.jql[key], nil
}

// NewTickets returns a fake holding ts.
func NewTickets(ts ...policy.Ticket) *Tickets {
	f := &Tickets{tickets: map[string]policy.Ticket{}}
	for _, t := range ts {
		f.tickets[t.Key] = t
	}
	return f
}

// Put adds or replaces a ticket.
func (f *Tickets) Put(t policy.Ticket) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tickets[t.Key] = t
}

// SetDown makes JIRA unreachable (true) or reachable again (false).
func (f *Tickets) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// Calls returns how many lookups were made.
func (f *Tickets) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Ticket implements policy.TicketChecker.
func (f *Tickets) Ticket(ctx context.Context, key string) (policy.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err := ctx.Err(); err != nil {
		return policy.Ticket{}, fmt.Errorf("%w: %v", policy.ErrUnavailable, err)
	}
	if f.down {
		return policy.Ticket{}, fmt.Errorf("%w: connection refused", policy.ErrUnavailable)
	}
	t, ok := f.tickets[key]
	if !ok {
		return policy.Ticket{}, fmt.Errorf("%s: %w", key, policy.ErrTicketNotFound)
	}
	return t, nil
}
