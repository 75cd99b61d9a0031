package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/integrations/jira"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// JiraClient is what the JIRA sender needs of a JIRA instance;
// *jira.Client has it.
type JiraClient interface {
	Comment(ctx context.Context, key, body string) error
	FailureTicket(ctx context.Context, req jira.FailureTicketRequest) (key string, created bool, err error)
	ResolveNote(ctx context.Context, env, service, body string) (key string, err error)
}

// JiraCommentPayload is the payload of a store.OutboxJiraComment item.
type JiraCommentPayload struct {
	// Keys are the tickets to comment on (one per item since issue 7;
	// older items may hold several).
	Keys []string `json:"keys"`
	Body string   `json:"body"`
	// Resolve comments on the service's open failure ticket instead.
	Resolve     bool   `json:"resolve,omitempty"`
	Environment string `json:"environment,omitempty"`
	Service     string `json:"service,omitempty"`
}

// Jira delivers store.OutboxJiraComment and store.OutboxJiraFailure
// items: comments on a record's tickets, the failure ticket of a failed
// record, the note on it when the service recovers.
type Jira struct {
	Client JiraClient
	// Secrets are redacted from every text before it is sent. Pass the
	// daemon's secrets.
	Secrets []string
}

// Send delivers one item and returns the ticket key(s) it went to. JIRA's
// 4xx answers other than 429 (a missing ticket, no permission, a refused
// field), a request that can never be sent and a payload that cannot be
// read are permanent (ErrPermanent); a 429 or 503 with Retry-After is a
// *RetryAfterError.
func (j *Jira) Send(ctx context.Context, it store.OutboxItem) (string, error) {
	switch it.Kind {
	case store.OutboxJiraFailure:
		var req jira.FailureTicketRequest
		if err := decodeRedacted(it.Payload, j.Secrets, &req); err != nil {
			return "", undecodable("jira failure ticket", it.Key, err)
		}
		key, _, err := j.Client.FailureTicket(ctx, req)
		return key, jiraError(err)
	case store.OutboxJiraComment:
		var p JiraCommentPayload
		if err := decodeRedacted(it.Payload, j.Secrets, &p); err != nil {
			return "", undecodable("jira comment", it.Key, err)
		}
		if p.Resolve {
			key, err := j.Client.ResolveNote(ctx, p.Environment, p.Service, p.Body)
			return key, jiraError(err)
		}
		if len(p.Keys) == 0 {
			return "", Permanent(fmt.Errorf("jira comment %s names no ticket", it.Key))
		}
		for _, k := range p.Keys {
			if err := j.Client.Comment(ctx, k, p.Body); err != nil {
				return "", jiraError(err)
			}
		}
		return strings.Join(p.Keys, ","), nil
	}
	return "", Permanent(fmt.Errorf("jira: outbox item %s has kind %q", it.Key, it.Kind))
}

// jiraError classifies an error of the JIRA client.
func jiraError(err error) error {
	if err == nil {
		return nil
	}
	var e *jira.Error
	if errors.As(err, &e) {
		if e.RetryAfter > 0 {
			return &RetryAfterError{After: e.RetryAfter, Err: err}
		}
		if permanentStatus(e.Status) {
			return Permanent(err)
		}
	}
	if errors.Is(err, jira.ErrInvalidRequest) || errors.Is(err, policy.ErrTicketNotFound) {
		return Permanent(err)
	}
	return err
}

// JiraOptions are what JiraItems needs beside the record.
type JiraOptions struct {
	// FailureTickets is whether integrations.jira.failure_tickets is set.
	FailureTickets bool
	// Secrets are redacted from every text (pass config.Secrets()).
	Secrets []string
}

// JiraCommentKey is the outbox key of a record's comment on ticket.
func JiraCommentKey(recordID, ticket string) string {
	return "jira:comment:" + recordID + ":" + ticket
}

// JiraFailureKey is the outbox key of a failed record's failure ticket.
func JiraFailureKey(recordID string) string { return "jira:failure:" + recordID }

// JiraResolveKey is the outbox key of the note that a record's success
// leaves on its service's open failure ticket.
func JiraResolveKey(recordID string) string { return "jira:resolve:" + recordID }

// JiraItems are the JIRA outbox items of a finished record: a comment on
// each of its tickets (one item each, so that a missing ticket does not
// hold back the others), and with failure tickets on, the failure ticket
// of a failed record or a note on the open one when it succeeded.
func JiraItems(rec *store.Record, o JiraOptions) ([]store.OutboxItem, error) {
	var items []store.OutboxItem
	add := func(kind, key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("jira item for %s: %w", rec.ID, err)
		}
		items = append(items, store.OutboxItem{Kind: kind, Key: key, Payload: b})
		return nil
	}
	red := NewRedactor(o.Secrets)
	body := stageSummary(rec, red)
	for _, k := range rec.Tickets {
		if err := add(store.OutboxJiraComment, JiraCommentKey(rec.ID, k), JiraCommentPayload{Keys: []string{k}, Body: body}); err != nil {
			return nil, err
		}
	}
	if !o.FailureTickets {
		return items, nil
	}
	switch rec.Status {
	case store.StatusFailed:
		req := jira.FailureTicketRequest{RecordID: rec.ID, Environment: rec.Environment, Service: rec.Service,
			Summary:     red(fmt.Sprintf("gitmon: %s %s failed in %s", rec.Service, rec.Version, rec.Environment)),
			Description: body, Committer: rec.Committer}
		if rec.Descriptor != nil {
			req.Maintainer = rec.Descriptor.Maintainer
		}
		if err := add(store.OutboxJiraFailure, JiraFailureKey(rec.ID), req); err != nil {
			return nil, err
		}
	case store.StatusSucceeded:
		note := red(fmt.Sprintf("gitmon: %s %s succeeded again in %s (commit %s).", rec.Service, rec.Version, rec.Environment, short(rec.Commit)))
		if err := add(store.OutboxJiraComment, JiraResolveKey(rec.ID),
			JiraCommentPayload{Resolve: true, Environment: rec.Environment, Service: rec.Service, Body: note}); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// LinkTicket makes every Slack item among items link the failure ticket
// that the outbox item with key ticketKey creates, once it exists; browse
// is the JIRA URL that the ticket's key is appended to.
func LinkTicket(items []store.OutboxItem, ticketKey, browse string) error {
	for i := range items {
		if items[i].Kind != store.OutboxSlack {
			continue
		}
		var p SlackPayload
		if err := json.Unmarshal(items[i].Payload, &p); err != nil {
			return fmt.Errorf("slack item %s: %w", items[i].Key, err)
		}
		p.TicketKey, p.TicketBrowse = ticketKey, browse
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("slack item %s: %w", items[i].Key, err)
		}
		items[i].Payload = b
	}
	return nil
}

// stageSummary is the text of JIRA comments and failure tickets: what
// ran, how it ended, and the tail of a failing stage's output, redacted
// with red. The output is redacted before it is cut, so that the cut
// never leaves a part of a secret.
func stageSummary(rec *store.Record, red func(string) string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Environment %s, service %s, version %s (previous %s)\nCommit %s by %s\nStatus: %s\n",
		rec.Environment, rec.Service, rec.Version, orNone(rec.PreviousVersion), rec.Commit, rec.Committer, rec.Status)
	for _, c := range rec.Diff {
		fmt.Fprintf(&b, "  %s: %s → %s\n", c.Field, orNone(c.Old), orNone(c.New))
	}
	for _, st := range rec.Stages {
		fmt.Fprintf(&b, "Stage %s (%s): %s %s %s\n", st.Name, st.Runner, st.Status, st.Message, st.URL)
		if st.Status == store.StageFailed || st.Status == store.StageInterrupted {
			out := red(st.Output)
			if len(out) > 2000 {
				i := len(out) - 2000
				for i < len(out) && !isRuneStart(out[i]) {
					i++
				}
				out = out[i:]
			}
			fmt.Fprintf(&b, "Output (tail):\n%s\n", out)
		}
	}
	return red(b.String())
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

var (
	_ Sender     = (*Jira)(nil)
	_ Sender     = (*Slack)(nil)
	_ Sender     = (*Mail)(nil)
	_ JiraClient = (*jira.Client)(nil)
)
