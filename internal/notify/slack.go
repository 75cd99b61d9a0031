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
	opts := []slack.MsgOption{slack.MsgOptionText(p.Text, false), slack.MsgOptionDisableLinkUnfurl()}
	if len(p.Blocks.BlockSet) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(p.Blocks.BlockSet...))
	}
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
