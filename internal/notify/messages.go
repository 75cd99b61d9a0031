package notify

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// Message is one notification in both forms: Slack blocks with their
// fallback text, and an e-mail subject and plain-text body.
type Message struct {
	Text    string
	Blocks  []slack.Block
	Subject string
	Body    string
}

// Options are what the builders need beside the record.
type Options struct {
	// Redact is applied to every text that goes into a message (stage
	// messages and reasons may quote secrets); Secrets are redacted too.
	// Pass config.Secrets().
	Redact  func(string) string
	Secrets []string
	// Maintainer is mentioned in failure and rejection alerts. When
	// empty, RecordFinished uses the record's descriptor's maintainer;
	// RecordRejected never does, since a rejected change may have set it
	// (SPEC §5: the last good descriptor's recipients).
	Maintainer string
	// TicketURL links the JIRA failure ticket, when there is one.
	TicketURL string
}

func (o Options) redactor() func(string) string {
	secrets := NewRedactor(o.Secrets)
	return func(s string) string {
		if o.Redact != nil {
			s = o.Redact(s)
		}
		return secrets(s)
	}
}

// RecordStarted announces that a record's release is starting.
func RecordStarted(rec *store.Record, o Options) Message {
	return build(rec, o, "started", "", false)
}

// RecordFinished reports how a record ended: succeeded, failed (with the
// maintainer mentioned and the JIRA ticket linked), skipped or
// superseded.
func RecordFinished(rec *store.Record, o Options) Message {
	maint := o.Maintainer
	if maint == "" && rec.Descriptor != nil {
		maint = rec.Descriptor.Maintainer
	}
	return build(rec, o, rec.Status, maint, rec.Status == store.StatusFailed)
}

// RecordRejected reports a record that policy rejected, with its reasons.
func RecordRejected(rec *store.Record, o Options) Message {
	return build(rec, o, store.StatusRejected, o.Maintainer, true)
}

var statusEmoji = map[string]string{
	"started":              ":rocket:",
	store.StatusSucceeded:  ":white_check_mark:",
	store.StatusFailed:     ":x:",
	store.StatusRejected:   ":no_entry:",
	store.StatusSkipped:    ":fast_forward:",
	store.StatusSuperseded: ":arrow_heading_down:",
	store.StatusRunning:    ":hourglass:",
	store.StatusPending:    ":hourglass:",
}

func build(rec *store.Record, o Options, what, maintainer string, alert bool) Message {
	red := o.redactor()
	// Slack mrkdwn: &, < and > must be escaped in text we did not write.
	esc := func(s string) string {
		return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(red(s))
	}

	action := rec.Action
	if action == "" {
		action = "deploy"
	}
	version := rec.Version
	if rec.PreviousVersion != "" && rec.PreviousVersion != rec.Version {
		version = rec.PreviousVersion + " → " + rec.Version
	}
	if action == "remove" {
		version = "remove " + rec.PreviousVersion
	}
	title := fmt.Sprintf("%s %s in %s: %s", rec.Service, version, rec.Environment, what)
	title = red(title)

	var lines []string // plain text, for the e-mail body
	add := func(k, v string) {
		if v != "" {
			lines = append(lines, fmt.Sprintf("%-12s %s", k+":", red(v)))
		}
	}
	add("Environment", rec.Environment)
	add("Service", rec.Service)
	add("Action", action)
	if rec.PreviousVersion != "" {
		add("Version", rec.PreviousVersion+" -> "+rec.Version)
	} else {
		add("Version", rec.Version)
	}
	add("Status", what)
	add("Repository", rec.Repository)
	add("Commit", rec.Commit)
	add("Committer", rec.Committer)
	if rec.Author != rec.Committer {
		add("Author", rec.Author)
	}
	add("Tickets", strings.Join(rec.Tickets, ", "))
	add("Record", rec.ID)
	if alert && maintainer != "" {
		add("Maintainer", "@"+maintainer)
	}
	add("Ticket", o.TicketURL)

	// Slack blocks.
	fields := []*slack.TextBlockObject{
		mrkdwn("*Environment*\n" + esc(rec.Environment)),
		mrkdwn("*Service*\n" + esc(rec.Service)),
		mrkdwn("*Version*\n" + esc(strings.ReplaceAll(version, "→", "->"))),
		mrkdwn("*Commit*\n`" + esc(short(rec.Commit)) + "`"),
	}
	if rec.Committer != "" {
		fields = append(fields, mrkdwn("*Committer*\n"+esc(rec.Committer)))
	}
	if len(rec.Tickets) > 0 {
		fields = append(fields, mrkdwn("*Tickets*\n"+esc(strings.Join(rec.Tickets, ", "))))
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(statusEmoji[what]+" "+title, 150), true, false)),
		slack.NewSectionBlock(nil, fields, nil),
	}

	var stageLines, slackStages []string
	for _, s := range rec.Stages {
		line := s.Name + ": " + s.Status
		if s.Message != "" {
			line += " (" + s.Message + ")"
		}
		if s.URL != "" {
			line += " " + s.URL
		}
		stageLines = append(stageLines, "  - "+red(line))
		sl := fmt.Sprintf("%s *%s*: %s", statusEmoji[s.Status], esc(s.Name), esc(s.Status))
		if s.Message != "" {
			sl += " — " + esc(s.Message)
		}
		if s.URL != "" {
			sl += " <" + esc(s.URL) + "|logs>"
		}
		slackStages = append(slackStages, strings.TrimSpace(sl))
	}
	if len(stageLines) > 0 {
		lines = append(lines, "", "Stages:")
		lines = append(lines, stageLines...)
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncate(strings.Join(slackStages, "\n"), 3000)), nil, nil))
	}

	var reasonLines, slackReasons []string
	for _, r := range rec.Reasons {
		line := r.Rule + ": " + r.Message
		if r.Commit != "" {
			line += " (commit " + short(r.Commit) + ")"
		}
		reasonLines = append(reasonLines, "  - "+red(line))
		slackReasons = append(slackReasons, "• *"+esc(r.Rule)+"*: "+esc(r.Message))
	}
	if len(reasonLines) > 0 {
		lines = append(lines, "", "Reasons:")
		lines = append(lines, reasonLines...)
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncate(strings.Join(slackReasons, "\n"), 3000)), nil, nil))
	}

	text := title
	if alert {
		var ctx []slack.MixedElement
		if maintainer != "" {
			text += " — @" + red(maintainer)
			ctx = append(ctx, mrkdwn("Maintainer: @"+esc(maintainer)))
		}
		if o.TicketURL != "" {
			text += " — " + red(o.TicketURL)
			ctx = append(ctx, mrkdwn("JIRA: <"+esc(o.TicketURL)+"|ticket>"))
		}
		if len(ctx) > 0 {
			blocks = append(blocks, slack.NewContextBlock("", ctx...))
		}
	}

	return Message{
		Text:    text,
		Blocks:  blocks,
		Subject: "[gitmon] " + title,
		Body:    strings.Join(lines, "\n") + "\n",
	}
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
