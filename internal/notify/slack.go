package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/slack-go/slack"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// OutboxLookup finds an outbox item by key (store.Store does).
type OutboxLookup interface {
	OutboxItem(ctx context.Context, key string) (store.OutboxItem, bool, error)
}

// ErrThreadNotReady is returned for a reply whose thread's first message
// has not been delivered yet: the worker tries again shortly.
var ErrThreadNotReady = errors.New("slack: the thread's first message is not sent yet")

// Slack posts store.OutboxSlack items with chat.postMessage.
type Slack struct {
	client  *slack.Client
	outbox  OutboxLookup
	channel string
}

// NewSlack returns a Slack notifier. apiURL is integrations.slack.api_url
// (config.DefaultSlackAPIURL when empty; it must end with "/"); channel is
// the default channel, used for payloads without one; outbox finds the
// ts of a thread's first message. httpClient may be nil.
func NewSlack(token, apiURL, channel string, outbox OutboxLookup, httpClient *http.Client) *Slack {
	opts := []slack.Option{}
	if apiURL != "" {
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	opts = append(opts, slack.OptionHTTPClient(httpClient))
	return &Slack{client: slack.New(token, opts...), outbox: outbox, channel: channel}
}

// Send posts one item and returns the message's ts. A 429 comes back as a
// *RetryAfterError.
func (s *Slack) Send(ctx context.Context, it store.OutboxItem) (string, error) {
	var p SlackPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		return "", fmt.Errorf("slack payload of %s: %w", it.Key, err)
	}
	channel := p.Channel
	if channel == "" {
		channel = s.channel
	}
	if channel == "" {
		return "", fmt.Errorf("slack message %s has no channel", it.Key)
	}
	// Options are set once each: slack-go adds, rather than replaces,
	// a repeated text option.
	text, blocks := p.Text, p.Blocks.BlockSet
	opts := []slack.MsgOption{slack.MsgOptionDisableLinkUnfurl()}
	if p.ThreadKey != "" && s.outbox != nil {
		parent, ok, err := s.outbox.OutboxItem(ctx, p.ThreadKey)
		if err != nil {
			return "", err
		}
		if ok && !parent.Sent() {
			return "", ErrThreadNotReady
		}
		if ok && parent.ExternalID != "" {
			opts = append(opts, slack.MsgOptionTS(parent.ExternalID))
		}
	}
	if p.TicketKey != "" && s.outbox != nil {
		ticket, ok, err := s.outbox.OutboxItem(ctx, p.TicketKey)
		if err != nil {
			return "", err
		}

		switch {
		case ok && ticket.Sent() && ticket.ExternalID != "":
			link := fmt.Sprintf("JIRA: <%s%s|%s>", p.TicketBrowse, ticket.ExternalID, ticket.ExternalID)
			text += "\n" + link
			if len(blocks) > 0 {
				blocks = append(append([]slack.Block{}, blocks...),
					slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, link, false, false), nil, nil))
			}
		case ok && !ticket.Sent() && time.Since(ticket.CreatedAt) < TicketWait:
			return "", ErrThreadNotReady // the ticket is on its way
		}
	}
	opts = append(opts, slack.MsgOptionText(text, false))
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	_, ts, err := s.client.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			return "", &RetryAfterError{After: rl.RetryAfter, Err: err}
		}
		return "", fmt.Errorf("slack %s: %w", channel, err)
	}
	return ts, nil
}
