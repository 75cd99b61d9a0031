package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/integrations/scm"
	"github.com/gitmon-dev/gitmon/internal/notify"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// outboxAnnouncer turns records into outbox items: Slack posts to the
// service's, the environment's and the integration's channels, e-mail to
// the service's recipients within email_domains, JIRA comments on the
// record's tickets and failure tickets. Items are written before they are
// sent, and keyed so a retry never enqueues twice; the worker delivers
// them through notify's senders, so a release never waits on a
// notification.
type outboxAnnouncer struct {
	a      *App
	slack  bool
	email  bool
	jira   bool
	worker *notify.Worker
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
		if v == "" || slices.ContainsFunc(*list, func(x string) bool { return strings.EqualFold(x, v) }) {
			return
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
	if err != nil || !o.jira {
		o.done(ctx, items, err)
		return
	}
	jiraItems, err := notify.JiraItems(rec, notify.JiraOptions{
		FailureTickets: o.a.cfg.Integrations.Jira.FailureTickets != nil, Secrets: o.a.secrets})
	if err != nil {
		o.done(ctx, items, err)
		return
	}
	for _, it := range jiraItems {
		if it.Kind == store.OutboxJiraFailure {
			// The failure alert links to the ticket once it exists.
			browse := strings.TrimSuffix(o.a.cfg.Integrations.Jira.URL, "/") + "/browse/"
			err = notify.LinkTicket(items, it.Key, browse)
		}
	}
	o.done(ctx, append(items, jiraItems...), err)
}

func (o *outboxAnnouncer) done(ctx context.Context, items []store.OutboxItem, err error) {
	if err != nil {
		o.a.log.Error("building notifications", keyErr, err)
	}
	o.enqueue(ctx, items)
}

// setupIntegrations builds notify's senders and the outbox worker from
// the config.
func (a *App) setupIntegrations() error {
	ig := a.cfg.Integrations
	senders := map[string]notify.Sender{}
	ann := &outboxAnnouncer{a: a}
	if a.jira != nil {
		j := &notify.Jira{Client: a.jira, Secrets: a.secrets}
		senders[store.OutboxJiraComment] = j
		senders[store.OutboxJiraFailure] = j
		ann.jira = true
	}
	if ig.Slack != nil {
		s := notify.NewSlack(ig.Slack.Token.Value(), ig.Slack.APIURL, ig.Slack.Channel, a.store, nil)
		s.Secrets, s.Now = a.secrets, a.now
		senders[store.OutboxSlack] = s
		ann.slack = true
	}
	if ig.SMTP != nil {
		senders[store.OutboxEmail] = &notify.Mail{Host: ig.SMTP.Host, Port: ig.SMTP.Port, From: ig.SMTP.From,
			User: ig.SMTP.User.Value(), Password: ig.SMTP.Password.Value(), Secrets: a.secrets}
		ann.email = true
	}
	if ig.SCM != nil {
		c, err := scm.New(*ig.SCM, scm.Options{Timeout: scmTimeout, Secrets: a.secrets, Now: a.now})
		if err != nil {
			return fmt.Errorf("integrations.scm: %w", err)
		}
		senders[store.OutboxSCMStatus] = &notify.SCM{Client: c, Outbox: a.store, Secrets: a.secrets}
		a.statuses = newSCMStatuses(a, c)
	}
	if len(senders) == 0 {
		return nil
	}
	for kind := range senders {
		a.metrics.deadLetters.WithLabelValues(kind) // 0 until the first one
	}
	ann.worker = &notify.Worker{Outbox: a.store, Senders: senders, Secrets: a.secrets, Now: a.now,
		Log:        a.log.With("component", "outbox"),
		DeadLetter: func(kind string) { a.metrics.deadLetters.WithLabelValues(kind).Inc() }}
	a.worker = ann.worker
	if a.statuses != nil {
		a.statuses.worker = ann.worker
	}
	if _, isDefault := a.opts.Announcer.(noAnnouncer); isDefault {
		a.opts.Announcer = ann
	}
	return nil
}

// announcer is who hears about records: the configured announcer, and
// the commit statuses.
func (a *App) announcer() Announcer {
	if a.statuses == nil {
		return a.opts.Announcer
	}
	return multiAnnouncer{a.opts.Announcer, a.statuses}
}

var _ Announcer = (*outboxAnnouncer)(nil)
