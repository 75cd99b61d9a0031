package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/gitmon-dev/gitmon/internal/integrations/jira"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
	"github.com/gitmon-dev/gitmon/test/fakejira"
)

// awkward is a secret made of the characters that JSON, HTML and Slack
// mrkdwn escape, so that redaction on escaped text would miss it.
const awkward = `pa"ss<wo&rd>\x`

var secrets = []string{canary, awkward}

// leaks reports which secret s contains, if any.
func leaks(s string) string {
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			return sec
		}
	}
	return ""
}

func noSecret(t *testing.T, what, s string) {
	t.Helper()
	if sec := leaks(s); sec != "" {
		t.Errorf("%s contains the secret %q:\n%s", what, sec, s)
	}
}

// jsonStrings returns every string in a JSON text, decoded, one a line.
func jsonStrings(t *testing.T, text string) string {
	t.Helper()
	if text == "" {
		return ""
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("%v: %s", err, text)
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			b.WriteString(x + "\n")
		case []any:
			for _, y := range x {
				walk(y)
			}
		case map[string]any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(v)
	return b.String()
}

// sendAll delivers everything due, advancing clk past each backoff.
func sendAll(t *testing.T, w *Worker, st *store.SQLite, clk *clock) {
	t.Helper()
	ctx := context.Background()
	for range 10 {
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		due, err := st.DueOutbox(ctx, clk.Now().Add(time.Hour), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) == 0 {
			return
		}
		clk.Advance(time.Hour)
	}
	t.Fatal("the outbox does not drain")
}

// TestSendersRedactAtTheBoundary: whatever payload the outbox holds,
// nothing a sender sends contains a secret: Slack text and blocks, e-mail
// subject and body, JIRA comments, ticket summaries and descriptions.
func TestSendersRedactAtTheBoundary(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
	st := openStore(t, t.TempDir())
	sl, _, fake := slackSetup(t, st)
	sl.Secrets = secrets
	srv := newSMTPServer(t, "", "")
	m := &Mail{Host: "127.0.0.1", Port: srv.port(t), From: "gitmon@example.com", TLSConfig: &tls.Config{RootCAs: srv.pool}, Secrets: secrets}
	f := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeCloud})
	f.AddIssue(fakejira.Issue{Key: "PAY-1"})
	j := &Jira{Client: jiraClient(t, f, true), Secrets: secrets}
	clk := newClock()
	w := &Worker{Outbox: st, Now: clk.Now, Secrets: secrets, Senders: map[string]Sender{
		store.OutboxSlack: sl, store.OutboxEmail: m, store.OutboxJiraComment: j, store.OutboxJiraFailure: j}}

	leak := "token " + canary + " and " + awkward
	mustJSON := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	blocks := slack.Blocks{BlockSet: []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, leak, false, false)),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, leak, false, false),
			[]*slack.TextBlockObject{slack.NewTextBlockObject(slack.MarkdownType, leak, false, false)}, nil),
		slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, leak, false, false)),
	}}
	items := []store.OutboxItem{
		{Kind: store.OutboxSlack, Key: "slack", Payload: mustJSON(SlackPayload{Channel: "#qa", Text: leak, Blocks: blocks})},
		{Kind: store.OutboxEmail, Key: "email", Payload: mustJSON(EmailPayload{To: []string{"a@example.com"}, Subject: leak, Body: leak})},
		{Kind: store.OutboxJiraComment, Key: "comment", Payload: mustJSON(JiraCommentPayload{Keys: []string{"PAY-1"}, Body: leak})},
		{Kind: store.OutboxJiraFailure, Key: "failure", Payload: mustJSON(jira.FailureTicketRequest{RecordID: "r1",
			Environment: "qa", Service: "payments", Summary: leak, Description: leak})},
	}
	if err := st.Enqueue(ctx, items...); err != nil {
		t.Fatal(err)
	}
	sendAll(t, w, st, clk)
	for _, it := range items {
		if got := item(t, st, it.Key); !got.Sent() {
			t.Errorf("%s not sent: %+v", it.Key, got)
		}
	}

	posts := fake.sent()
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	noSecret(t, "slack text", posts[0].Text)
	noSecret(t, "slack blocks", jsonStrings(t, posts[0].BlocksJSON))
	if !strings.Contains(posts[0].Text, runners.Redacted) || strings.Count(jsonStrings(t, posts[0].BlocksJSON), runners.Redacted) < 8 {
		t.Errorf("the post lost its text: %q %s", posts[0].Text, posts[0].BlocksJSON)
	}
	mails := srv.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	subject, body, _ := parseMail(t, mails[0].Data)
	noSecret(t, "e-mail subject", subject)
	noSecret(t, "e-mail body", body)
	noSecret(t, "e-mail", mails[0].Data)
	for _, c := range f.Comments("PAY-1") {
		noSecret(t, "jira comment", c)
	}
	created := f.CreatedIssues()
	if len(created) != 1 || len(f.Comments("PAY-1")) != 1 {
		t.Fatalf("%d tickets, comments %q", len(created), f.Comments("PAY-1"))
	}
	noSecret(t, "ticket summary", created[0].Summary)
	noSecret(t, "ticket description", created[0].Description)
}

// TestNoSecretLeaves: a failed record that quotes secrets in its reasons,
// stage messages and output, notified on every channel while the SMTP
// server's refusal quotes one too: no secret reaches the fake servers,
// the outbox (payloads and stored errors), the database files or the log.
func TestNoSecretLeaves(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
	dir := t.TempDir()
	st := openStore(t, dir)
	sl, ch, fake := slackSetup(t, st)
	sl.Secrets = secrets
	srv := newSMTPServer(t, "", "")
	srv.rejectRcpt(451, "mailbox busy, ask "+canary+" "+awkward)
	m := &Mail{Host: "127.0.0.1", Port: srv.port(t), From: "gitmon@example.com", TLSConfig: &tls.Config{RootCAs: srv.pool}, Secrets: secrets}
	f := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeCloud})
	f.AddIssue(fakejira.Issue{Key: "PAY-12"})
	j := &Jira{Client: jiraClient(t, f, true), Secrets: secrets}
	clk := newClock()
	log, logs := newLog()
	w := &Worker{Outbox: st, Now: clk.Now, Secrets: secrets, Log: log, Senders: map[string]Sender{
		store.OutboxSlack: sl, store.OutboxEmail: m, store.OutboxJiraComment: j, store.OutboxJiraFailure: j}}

	rec := testRecord(store.StatusFailed)
	// The JIRA text keeps the output's last 2,000 bytes: a cut in the
	// middle of the canary must not leave its second half.
	rec.Stages[1].Output = awkward + canary + strings.Repeat("x", 2000-len(canary)/2)
	rec.Stages[1].Message += " " + awkward
	rec.Reasons[0].Message += " " + awkward
	opts := Options{Secrets: secrets}
	items, err := Items(rec.ID, EventFinished, RecordFinished(rec, opts), []string{ch}, []string{"alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	jiraItems, err := JiraItems(rec, JiraOptions{FailureTickets: true, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	if err := LinkTicket(items, JiraFailureKey(rec.ID), f.URL+"/browse/"); err != nil {
		t.Fatal(err)
	}
	items = append(items, jiraItems...)
	if err := st.Enqueue(ctx, items...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	mail := item(t, st, EmailKey(rec.ID, EventFinished))
	if mail.Attempts != 1 || !strings.Contains(mail.LastError, "mailbox busy") || !strings.Contains(mail.LastError, runners.Redacted) {
		t.Errorf("the refused e-mail: %+v", mail)
	}
	srv.mu.Lock()
	srv.rcptErr = nil
	srv.mu.Unlock()
	sendAll(t, w, st, clk)

	if len(fake.sent()) != 1 || len(srv.received()) != 1 || len(f.CreatedIssues()) != 1 || len(f.Comments("PAY-12")) != 1 {
		t.Fatalf("%d posts, %d mails, %d tickets, comments %q", len(fake.sent()), len(srv.received()), len(f.CreatedIssues()), f.Comments("PAY-12"))
	}
	for _, p := range fake.sent() {
		noSecret(t, "slack text", p.Text)
		noSecret(t, "slack blocks", jsonStrings(t, p.BlocksJSON))
	}
	for _, msg := range srv.received() {
		subject, body, _ := parseMail(t, msg.Data)
		noSecret(t, "e-mail subject", subject)
		noSecret(t, "e-mail body", body)
	}
	for _, is := range f.Issues() {
		noSecret(t, "ticket", is.Summary+"\n"+is.Description+"\n"+strings.Join(is.Comments, "\n"))
	}
	if d := f.CreatedIssues()[0].Description; !strings.Contains(d, "healthcheck") || !strings.Contains(d, runners.Redacted) ||
		strings.Contains(d, canary[len(canary)/2:]) {
		t.Errorf("ticket description:\n%s", d)
	}
	for _, it := range items {
		got := item(t, st, it.Key)
		noSecret(t, "outbox payload of "+it.Key, jsonStrings(t, string(got.Payload)))
		noSecret(t, "outbox error of "+it.Key, got.LastError)
	}
	noSecret(t, "log", logs.String())
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, store.DBFile+"*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("database files: %v %v", files, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range append(secrets, jsonEscaped(t, awkward)) {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("%s holds the secret %q", filepath.Base(file), sec)
			}
		}
	}
}

// jsonEscaped is s as encoding/json writes it inside a string.
func jsonEscaped(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[1 : len(b)-1])
}
