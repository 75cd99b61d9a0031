// Package notify tells people what happened to deployment records, and
// owns every sender that does: Slack messages (Block Kit, threaded per
// record), e-mails over SMTP, and JIRA comments and failure tickets.
//
// Notifications never block a deployment. The caller builds a Message
// (RecordStarted, RecordFinished, RecordRejected), turns it into outbox
// items (SlackItem, EmailItem, JiraItems) and enqueues them in the store;
// a Worker delivers due items in the background, across restarts. A send
// says whether a retry can help: a permanent failure (ErrPermanent) makes
// the item a dead letter at once, any other is retried with capped,
// jittered exponential backoff (or the Retry-After of a 429) until it
// goes through or 24 hours have passed since it was enqueued.
//
// Every text that leaves, and every error that is stored or logged, goes
// through runners.Redact with the daemon's secrets: when a message is
// built, and again when it is sent.
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

// ErrNoRecipients is returned for an e-mail to nobody. It is permanent.
var ErrNoRecipients = Permanent(errors.New("e-mail has no recipients"))
