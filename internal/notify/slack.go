package notify

import (
	"context"
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

	// Secrets are redacted from every text of a message before it is
	// posted. Pass the daemon's secrets.
	Secrets []string
	// Now is the clock of the wait for a failure ticket; time.Now when nil.
	Now func() time.Time
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
// *RetryAfterError; an answer that says the same post can never succeed
// (an unknown or archived channel, a bad token, a 4xx) and a payload that
// cannot be read are permanent (ErrPermanent).
func (s *Slack) Send(ctx context.Context, it store.OutboxItem) (string, error) {
	var p SlackPayload
	if err := decodeRedacted(it.Payload, s.Secrets, &p); err != nil {
		return "", undecodable("slack", it.Key, err)
	}
	channel := p.Channel
	if channel == "" {
		channel = s.channel
	}
	if channel == "" {
		return "", Permanent(fmt.Errorf("slack message %s has no channel", it.Key))
	}
	if p.Text == "" && len(p.Blocks.BlockSet) == 0 {
		return "", Permanent(fmt.Errorf("slack message %s has no text", it.Key))
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
		// A dead first message leaves the reply top-level.
		if ok && !parent.Sent() && !parent.Dead() {
			return "", ErrThreadNotReady
		}
		if ok && parent.Sent() && parent.ExternalID != "" {
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
		case ok && !ticket.Sent() && !ticket.Dead() && s.now().Sub(ticket.CreatedAt) < TicketWait:
			return "", ErrThreadNotReady // the ticket is on its way
		}
	}
	opts = append(opts, slack.MsgOptionText(text, false))
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	_, ts, err := s.client.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return "", slackError(channel, err)
	}
	return ts, nil
}

func (s *Slack) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// slackTransient are the errors of Slack's Web API (in an "ok": false
// answer) that a later retry may not get. Every other one says that the
// request itself is wrong (channel_not_found, not_in_channel,
// is_archived, invalid_auth, token_revoked, missing_scope,
// invalid_blocks, msg_too_long...).
var slackTransient = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"ratelimited":         true,
	"rate_limited":        true,
}

// slackError classifies a failed post to channel.
func slackError(channel string, err error) error {
	wrapped := fmt.Errorf("slack %s: %w", channel, err)
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &RetryAfterError{After: rl.RetryAfter, Err: wrapped}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && permanentStatus(sc.Code) {
		return Permanent(wrapped)
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && !slackTransient[se.Err] {
		return Permanent(wrapped)
	}
	return wrapped
}
