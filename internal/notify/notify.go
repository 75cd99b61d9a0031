// Package notify tells people what happened to deployment records: Slack
// messages (Block Kit, threaded per record) and e-mails over SMTP.
//
// Notifications never block a deployment. The caller builds a Message
// (RecordStarted, RecordFinished, RecordRejected), turns it into outbox
// items (SlackItem, EmailItem) and enqueues them in the store; a Worker
// delivers due items in the background, retrying with capped exponential
// backoff (or Slack's Retry-After on 429) until they go through, across
// restarts.
//
// Delivery is at least once. Slack's chat.postMessage and SMTP have no
// idempotency keys, so a message is sent twice only if gitmon dies (or
// the store write fails) between a successful send and MarkSent. The
// outbox key makes every other retry (a re-decided record, a replayed
// commit) enqueue nothing new.
package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
)

// Record events that notify.
const (
	EventStarted  = "started"
	EventFinished = "finished"
	EventRejected = "rejected"
)

// SlackPayload is the payload of a store.OutboxSlack item.
type SlackPayload struct {
	Channel string       `json:"channel"`
	Text    string       `json:"text"` // fallback text (notifications, old clients)
	Blocks  slack.Blocks `json:"blocks"`
	// ThreadKey is the outbox key of the message this one replies to:
	// its ts (external id) becomes thread_ts. The worker holds this item
	// back while that message is unsent; an unknown key posts top-level.
	ThreadKey string `json:"thread_key,omitempty"`
	// TicketKey is the outbox key of the JIRA failure ticket this alert
	// links to; TicketBrowse is the JIRA URL the ticket key is appended
	// to. The worker holds the alert back for up to TicketWait while the
	// ticket is not created yet, then posts it without the link.
	TicketKey    string `json:"ticket_key,omitempty"`
	TicketBrowse string `json:"ticket_browse,omitempty"`
}

// TicketWait is how long a failure alert waits for its JIRA ticket.
const TicketWait = 2 * time.Minute

// EmailPayload is the payload of a store.OutboxEmail item.
type EmailPayload struct {
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Body    string   `json:"body"`
}

// SlackKey is the outbox key of a record event's message to channel.
func SlackKey(recordID, event, channel string) string {
	return "slack:" + recordID + ":" + event + ":" + channel
}

// EmailKey is the outbox key of a record event's e-mail.
func EmailKey(recordID, event string) string {
	return "email:" + recordID + ":" + event
}

// SlackItem is the outbox item posting m to channel for a record event.
// A finished message is threaded under the record's started message in
// that channel, when there is one; a rejected record never started.
func SlackItem(recordID, event, channel string, m Message) (store.OutboxItem, error) {
	p := SlackPayload{Channel: channel, Text: m.Text, Blocks: slack.Blocks{BlockSet: m.Blocks}}
	if event == EventFinished {
		p.ThreadKey = SlackKey(recordID, EventStarted, channel)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("slack message for %s: %w", recordID, err)
	}
	return store.OutboxItem{Kind: store.OutboxSlack, Key: SlackKey(recordID, event, channel), Payload: b}, nil
}

// EmailItem is the outbox item mailing m to to (already filtered by
// policy.email_domains) for a record event. An empty to is an error.
func EmailItem(recordID, event string, to []string, m Message) (store.OutboxItem, error) {
	if len(to) == 0 {
		return store.OutboxItem{}, ErrNoRecipients
	}
	b, err := json.Marshal(EmailPayload{To: to, Subject: m.Subject, Body: m.Body})
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("e-mail for %s: %w", recordID, err)
	}
	return store.OutboxItem{Kind: store.OutboxEmail, Key: EmailKey(recordID, event), Payload: b}, nil
}

// Items returns the outbox items of a record event: one Slack message
// per channel and one e-mail to every address (none when emails is
// empty).
func Items(recordID, event string, m Message, channels, emails []string) ([]store.OutboxItem, error) {
	var items []store.OutboxItem
	for _, ch := range channels {
		it, err := SlackItem(recordID, event, ch, m)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	if len(emails) > 0 {
		it, err := EmailItem(recordID, event, emails, m)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// ErrNoRecipients is returned for an e-mail to nobody.
var ErrNoRecipients = errors.New("e-mail has no recipients")

// RetryAfterError is a delivery failure that says when to try again,
// such as Slack's 429 with Retry-After.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// retryAfter returns how long err asks to wait, if it does.
func retryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	return 0, false
}

// NewRedactor returns a func that replaces every secret in a text by
// "<redacted>": runners.Redact, the one redaction gitmon has, which also
// hides overlapping secrets whole. Empty secrets are ignored.
func NewRedactor(secrets []string) func(string) string {
	ss := append([]string(nil), secrets...)
	return func(s string) string { return runners.Redact(s, ss) }
}
