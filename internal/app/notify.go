package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/integrations/jira"
	"github.com/gitmon-dev/gitmon/internal/notify"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// outboxAnnouncer turns records into outbox items: Slack posts to the
// service's, the environment's and the integration's channels, e-mail to
// the service's recipients within email_domains, JIRA comments on the
// record's tickets and failure tickets. Items are written before they are
// sent, and keyed so a retry never enqueues twice; the worker delivers
// them, so a release never waits on a notification.
type outboxAnnouncer struct {
	a      *App
	slack  bool
	email  bool
	jira   bool
	worker *notify.Worker
}

// Payloads of the JIRA outbox kinds.
type jiraCommentPayload struct {
	Keys []string `json:"keys"`
	Body string   `json:"body"`
	// Resolve comments on the service's open failure ticket instead.
	Resolve     bool   `json:"resolve,omitempty"`
	Environment string `json:"environment,omitempty"`
	Service     string `json:"service,omitempty"`
}

func (o *outboxAnnouncer) enqueue(ctx context.Context, items []store.OutboxItem) {
	if len(items) == 0 {
		return
	}
	if err := o.a.store.Enqueue(context.WithoutCancel(ctx), items...); err != nil {
		o.a.log.Error("writing notifications to the outbox", keyErr, err)
		return
	}
	o.worker.Wake()
}

func (o *outboxAnnouncer) options(rec *store.Record) notify.Options {
	opts := notify.Options{Secrets: o.a.secrets}
	if rec.Descriptor != nil {
		opts.Maintainer = rec.Descriptor.Maintainer
	}
	return opts
}

// recipients are the record's channels and e-mails plus the
// environment's, within email_domains; nothing when the integration is off.
func (o *outboxAnnouncer) recipients(rec *store.Record) (channels, emails []string) {
	env := o.a.cfg.Environment(rec.Environment)
	add := func(list *[]string, v string) {
		if v == "" {
			return
		}
		for _, x := range *list {
			if strings.EqualFold(x, v) {
				return
			}
		}
		*list = append(*list, v)
	}
	if o.slack {
		for _, c := range rec.Slack {
			add(&channels, c)
		}
		if env != nil {
			for _, c := range env.Notifications.Slack {
				add(&channels, c)
			}
		}
		add(&channels, o.a.cfg.Integrations.Slack.Channel)
	}
	if o.email {
		for _, e := range rec.Emails {
			add(&emails, e)
		}
		if env != nil {
			engine := o.a.engines[rec.Environment]
			for _, e := range env.Notifications.Emails {
				if engine == nil || engine.EmailAllowed(e) {
					add(&emails, e)
				}
			}
		}
	}
	return channels, emails
}

func (o *outboxAnnouncer) Decided(ctx context.Context, rec *store.Record) {
	if rec.Status != store.StatusRejected {
		return
	}
	channels, emails := o.recipients(rec)
	items, err := notify.Items(rec.ID, notify.EventRejected, notify.RecordRejected(rec, o.options(rec)), channels, emails)
	o.done(ctx, items, err)
}

func (o *outboxAnnouncer) Started(ctx context.Context, rec *store.Record) {
	channels, _ := o.recipients(rec)
	items, err := notify.Items(rec.ID, notify.EventStarted, notify.RecordStarted(rec, o.options(rec)), channels, nil)
	o.done(ctx, items, err)
}

func (o *outboxAnnouncer) Finished(ctx context.Context, rec *store.Record) {
	channels, emails := o.recipients(rec)
	items, err := notify.Items(rec.ID, notify.EventFinished, notify.RecordFinished(rec, o.options(rec)), channels, emails)
	if err != nil {
		o.done(ctx, nil, err)
		return
	}
	if o.jira {
		jiraItems := o.jiraItems(rec)
		for _, it := range jiraItems {
			if it.Kind != store.OutboxJiraFailure {
				continue
			}
			// The failure alert links to the ticket once it exists.
			browse := strings.TrimSuffix(o.a.cfg.Integrations.Jira.URL, "/") + "/browse/"
			for i := range items {
				if items[i].Kind == store.OutboxSlack {
					items[i].Payload = withTicket(items[i].Payload, it.Key, browse)
				}
			}
		}
		items = append(items, jiraItems...)
	}
	o.done(ctx, items, nil)
}

// withTicket sets a Slack payload's ticket link.
func withTicket(payload json.RawMessage, key, browse string) json.RawMessage {
	var p notify.SlackPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return payload
	}
	p.TicketKey, p.TicketBrowse = key, browse
	b, err := json.Marshal(p)
	if err != nil {
		return payload
	}
	return b
}

func (o *outboxAnnouncer) done(ctx context.Context, items []store.OutboxItem, err error) {
	if err != nil {
		o.a.log.Error("building notifications", keyErr, err)
	}
	o.enqueue(ctx, items)
}

// jiraItems comment on the record's tickets, and open (or comment on)
// the service's failure ticket when it failed, or note its recovery.
func (o *outboxAnnouncer) jiraItems(rec *store.Record) []store.OutboxItem {
	var items []store.OutboxItem
	body := stageSummary(rec, o.a.secrets)
	if len(rec.Tickets) > 0 {
		p, _ := json.Marshal(jiraCommentPayload{Keys: rec.Tickets, Body: body})
		items = append(items, store.OutboxItem{Kind: store.OutboxJiraComment, Key: "jira:comment:" + rec.ID, Payload: p})
	}
	ft := o.a.cfg.Integrations.Jira.FailureTickets
	switch {
	case ft == nil:
	case rec.Status == store.StatusFailed:
		req := jira.FailureTicketRequest{RecordID: rec.ID, Environment: rec.Environment, Service: rec.Service,
			Summary:     fmt.Sprintf("gitmon: %s %s failed in %s", rec.Service, rec.Version, rec.Environment),
			Description: body, Committer: rec.Committer}
		if rec.Descriptor != nil {
			req.Maintainer = rec.Descriptor.Maintainer
		}
		p, _ := json.Marshal(req)
		items = append(items, store.OutboxItem{Kind: store.OutboxJiraFailure, Key: "jira:failure:" + rec.ID, Payload: p})
	case rec.Status == store.StatusSucceeded:
		p, _ := json.Marshal(jiraCommentPayload{Resolve: true, Environment: rec.Environment, Service: rec.Service,
			Body: fmt.Sprintf("gitmon: %s %s succeeded again in %s (commit %s).", rec.Service, rec.Version, rec.Environment, short(rec.Commit))})
		items = append(items, store.OutboxItem{Kind: store.OutboxJiraComment, Key: "jira:resolve:" + rec.ID, Payload: p})
	}
	return items
}

// stageSummary is the text of JIRA comments and failure tickets: what
// ran, how it ended, and the tail of a failing stage's output.
func stageSummary(rec *store.Record, secrets []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Environment %s, service %s, version %s (previous %s)\nCommit %s by %s\nStatus: %s\n",
		rec.Environment, rec.Service, rec.Version, orNone(rec.PreviousVersion), rec.Commit, rec.Committer, rec.Status)
	for _, c := range rec.Diff {
		fmt.Fprintf(&b, "  %s: %s → %s\n", c.Field, orNone(c.Old), orNone(c.New))
	}
	for _, st := range rec.Stages {
		fmt.Fprintf(&b, "Stage %s (%s): %s %s %s\n", st.Name, st.Runner, st.Status, st.Message, st.URL)
		if st.Status == store.StageFailed || st.Status == store.StageInterrupted {
			out := st.Output
			if len(out) > 2000 {
				out = out[len(out)-2000:]
			}
			fmt.Fprintf(&b, "Output (tail):\n%s\n", out)
		}
	}
	return notify.NewRedactor(secrets)(b.String())
}

// jiraSender delivers the JIRA outbox kinds.
type jiraSender struct {
	c    *jira.Client
	kind string
}

func (s jiraSender) Send(ctx context.Context, it store.OutboxItem) (string, error) {
	switch s.kind {
	case store.OutboxJiraFailure:
		var req jira.FailureTicketRequest
		if err := json.Unmarshal(it.Payload, &req); err != nil {
			return "", err
		}
		key, _, err := s.c.FailureTicket(ctx, req)
		return key, err
	default:
		var p jiraCommentPayload
		if err := json.Unmarshal(it.Payload, &p); err != nil {
			return "", err
		}
		if p.Resolve {
			return s.c.ResolveNote(ctx, p.Environment, p.Service, p.Body)
		}
		for _, k := range p.Keys {
			if err := s.c.Comment(ctx, k, p.Body); err != nil {
				return "", err
			}
		}
		return strings.Join(p.Keys, ","), nil
	}
}

// setupIntegrations builds the notification senders and the outbox worker
// from the config.
func (a *App) setupIntegrations() error {
	ig := a.cfg.Integrations
	senders := map[string]notify.Sender{}
	ann := &outboxAnnouncer{a: a}
	if a.jira != nil {
		senders[store.OutboxJiraComment] = jiraSender{c: a.jira, kind: store.OutboxJiraComment}
		senders[store.OutboxJiraFailure] = jiraSender{c: a.jira, kind: store.OutboxJiraFailure}
		ann.jira = true
	}
	if ig.Slack != nil {
		senders[store.OutboxSlack] = notify.NewSlack(ig.Slack.Token.Value(), ig.Slack.APIURL, ig.Slack.Channel, a.store, nil)
		ann.slack = true
	}
	if ig.SMTP != nil {
		senders[store.OutboxEmail] = &notify.Mail{Host: ig.SMTP.Host, Port: ig.SMTP.Port, From: ig.SMTP.From,
			User: ig.SMTP.User.Value(), Password: ig.SMTP.Password.Value()}
		ann.email = true
	}
	if len(senders) == 0 {
		return nil
	}
	ann.worker = &notify.Worker{Outbox: a.store, Senders: senders, Now: a.now, Log: a.log.With("component", "outbox")}
	a.worker = ann.worker
	if _, isDefault := a.opts.Announcer.(noAnnouncer); isDefault {
		a.opts.Announcer = ann
	}
	return nil
}

var (
	_ Announcer     = (*outboxAnnouncer)(nil)
	_ notify.Sender = jiraSender{}
)
