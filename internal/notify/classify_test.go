package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/integrations/jira"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/test/fakejira"
)

func jiraClient(t *testing.T, f *fakejira.Server, failureTickets bool) *jira.Client {
	t.Helper()
	cfg := config.Jira{URL: f.URL, User: config.NewSecret(f.User), Token: config.NewSecret(f.Token)}
	if failureTickets {
		cfg.FailureTickets = &config.FailureTickets{Project: "OPS", IssueType: "Bug"}
	}
	c, err := jira.New(cfg, jira.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestJiraFailuresClassified: JIRA's 4xx answers make dead letters, its
// 5xx, 429 and dropped connections are retried; a comment on a missing
// ticket dies without holding back the comment on the record's other
// ticket.
func TestJiraFailuresClassified(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fail      int    // fakejira.Fail code on comments
		down      bool   // connections dropped
		ticket    string // the ticket commented on; PAY-1 exists
		dies      bool
		wantAfter time.Duration
	}{
		{name: "missing ticket (404)", ticket: "PAY-404", dies: true},
		{name: "no permission (403)", fail: http.StatusForbidden, ticket: "PAY-1", dies: true},
		{name: "bad request (400)", fail: http.StatusBadRequest, ticket: "PAY-1", dies: true},
		{name: "not an issue key", ticket: "not a key", dies: true},
		{name: "503", fail: http.StatusServiceUnavailable, ticket: "PAY-1"},
		{name: "429 Retry-After 1", fail: http.StatusTooManyRequests, ticket: "PAY-1", wantAfter: time.Second},
		{name: "connection dropped", down: true, ticket: "PAY-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeCloud})
			other := f.AddIssue(fakejira.Issue{Key: "OPS-7", Summary: "other"})
			f.AddIssue(fakejira.Issue{Key: "PAY-1", Summary: "release"})
			st := openStore(t, t.TempDir())
			clk := newClock()
			dead := &deadLetters{}
			j := &Jira{Client: jiraClient(t, f, false)}
			w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxJiraComment: j}, Now: clk.Now, DeadLetter: dead.add}

			rec := testRecord(store.StatusSucceeded)
			rec.Tickets = []string{tc.ticket, other}
			items, err := JiraItems(rec, JiraOptions{Secrets: []string{canary}})
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != 2 {
				t.Fatalf("%d items: %+v", len(items), items)
			}
			if err := st.Enqueue(ctx, items...); err != nil {
				t.Fatal(err)
			}
			if tc.fail != 0 {
				f.Fail(tc.fail, "/"+strings.ToUpper(tc.ticket)+"/comment")
			}
			f.SetDown(tc.down)
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			got := item(t, st, items[0].Key)
			if got.Dead() != tc.dies || got.Sent() || got.Attempts != 1 || got.LastError == "" {
				t.Fatalf("after the failure: %+v", got)
			}
			if tc.wantAfter != 0 && !got.NextAttemptAt.Equal(clk.Now().Add(tc.wantAfter)) {
				t.Errorf("retry at %s, want now + %s", got.NextAttemptAt, tc.wantAfter)
			}
			if tc.wantAfter != 0 {
				// A rate limit holds back the kind's other items, without an attempt.
				if o := item(t, st, items[1].Key); o.Sent() || o.Attempts != 0 {
					t.Errorf("the other comment during a rate limit: %+v", o)
				}
			} else if !tc.down {
				if !item(t, st, items[1].Key).Sent() || len(f.Comments(other)) != 1 {
					t.Errorf("the comment on the other ticket: %+v, %q", item(t, st, items[1].Key), f.Comments(other))
				}
			}
			if tc.dies {
				if strings.Join(dead.kinds, ",") != store.OutboxJiraComment || countDead(t, st) != 1 {
					t.Errorf("dead letters: %v, %d", dead.kinds, countDead(t, st))
				}
				return
			}
			// JIRA is back: the comment goes out.
			f.Fail(0, "")
			f.SetDown(false)
			clk.Advance(got.NextAttemptAt.Sub(clk.Now()))
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if !item(t, st, items[0].Key).Sent() || len(f.Comments("PAY-1")) != 1 || len(dead.kinds) != 0 {
				t.Errorf("after recovery: %+v, comments %q, dead %v", item(t, st, items[0].Key), f.Comments("PAY-1"), dead.kinds)
			}
		})
	}
}

// TestJiraFailureTicketWithoutProjectDies: a failure ticket that can
// never be opened (no project configured) dies at once, without a call.
func TestJiraFailureTicketWithoutProjectDies(t *testing.T) {
	ctx := context.Background()
	f := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeCloud})
	st := openStore(t, t.TempDir())
	w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxJiraFailure: &Jira{Client: jiraClient(t, f, false)}},
		Now: newClock().Now}
	items, err := JiraItems(testRecord(store.StatusFailed), JiraOptions{FailureTickets: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Enqueue(ctx, items...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	it := item(t, st, JiraFailureKey(testRecord("").ID))
	if !it.Dead() || !strings.Contains(it.LastError, "no project") {
		t.Errorf("failure ticket without a project: %+v", it)
	}
	if n := f.Calls("POST /rest/api/2/issue"); n != 0 {
		t.Errorf("%d issues created", n)
	}
}

// TestSMTPFailuresClassified: an SMTP 5xx reply makes a dead letter, a
// 4xx reply or a server that cannot be reached is retried.
func TestSMTPFailuresClassified(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rcpt     int    // RCPT TO reply code
		password string // the password gitmon sends
		down     bool
		dies     bool
	}{
		{name: "mailbox unavailable (550)", rcpt: 550, password: "smtp-pass", dies: true},
		{name: "authentication failed (535)", password: "wrong", dies: true},
		{name: "try again later (451)", rcpt: 451, password: "smtp-pass"},
		{name: "server down", down: true, password: "smtp-pass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := newSMTPServer(t, "gitmon", "smtp-pass")
			if tc.rcpt != 0 {
				srv.rejectRcpt(tc.rcpt, "no such user")
			}
			m := &Mail{Host: "127.0.0.1", Port: srv.port(t), From: "gitmon@example.com", User: "gitmon", Password: tc.password,
				TLSConfig: &tls.Config{RootCAs: srv.pool}, Timeout: 5 * time.Second}
			if tc.down {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				m.Port = l.Addr().(*net.TCPAddr).Port
				_ = l.Close()
			}
			st := openStore(t, t.TempDir())
			clk := newClock()
			w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxEmail: m}, Now: clk.Now}
			rec := testRecord(store.StatusFailed)
			it, err := EmailItem(rec.ID, EventFinished, []string{"alice@example.com"}, RecordFinished(rec, Options{}))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Enqueue(ctx, it); err != nil {
				t.Fatal(err)
			}
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			got := item(t, st, it.Key)
			if got.Dead() != tc.dies || got.Sent() || got.Attempts != 1 || got.LastError == "" {
				t.Fatalf("after the failure: %+v", got)
			}
			if len(srv.received()) != 0 {
				t.Errorf("%d mails received", len(srv.received()))
			}
		})
	}
}

// TestUndecodableItemsDie: an item whose payload this gitmon cannot read
// dies after one attempt, without a request to anyone, and the good item
// behind it is delivered in the same round.
func TestUndecodableItemsDie(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
	st := openStore(t, t.TempDir())
	sl, _, fake := slackSetup(t, st)
	srv := newSMTPServer(t, "", "")
	m := &Mail{Host: "127.0.0.1", Port: srv.port(t), From: "gitmon@example.com", TLSConfig: &tls.Config{RootCAs: srv.pool}}
	f := fakejira.New(t, fakejira.Options{Mode: fakejira.ModeCloud})
	j := &Jira{Client: jiraClient(t, f, true), Secrets: []string{canary}}
	log, logs := newLog()
	w := &Worker{Outbox: st, Now: newClock().Now, Log: log, Secrets: []string{canary}, Senders: map[string]Sender{
		store.OutboxSlack: sl, store.OutboxEmail: m, store.OutboxJiraComment: j, store.OutboxJiraFailure: j}}

	bad := map[string][]string{
		store.OutboxSlack:       {`{"channel": 5, "text": "x"}`, `"just a string"`, `null`, `{"channel": "#qa"}`, `{"text": "x", "blocks": "nope"}`, `{"text": "x", "blocks": [{"type": 7}]}`},
		store.OutboxEmail:       {`{"to": "a@example.com"}`, `{"to": []}`, `{"to": ["not an address"], "subject": "s"}`, `[1, 2]`},
		store.OutboxJiraComment: {`{"keys": 1}`, `{"keys": [], "body": "x"}`, `{"resolve": "yes"}`},
		store.OutboxJiraFailure: {`[1]`, `{}`, `{"RecordID": ["r"]}`},
	}
	var items []store.OutboxItem
	for kind, payloads := range bad {
		for i, p := range payloads {
			items = append(items, store.OutboxItem{Kind: kind, Key: kind + ":bad:" + string(rune('a'+i)), Payload: json.RawMessage(p)})
		}
	}
	good := slackItem(t, "01JREC0000000000000000000A", "#qa")
	if err := st.Enqueue(ctx, append(items, good)...); err != nil {
		t.Fatal(err)
	}
	if n, err := w.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("%d sent, %v", n, err)
	}
	for _, it := range items {
		got := item(t, st, it.Key)
		if !got.Dead() || got.Attempts != 1 || got.LastError == "" {
			t.Errorf("%s (%s): %+v", it.Key, it.Payload, got)
		}
	}
	if got := countDead(t, st); got != len(items) {
		t.Errorf("DeadLetters = %d, want %d", got, len(items))
	}
	if n := strings.Count(logs.String(), "outbox dead letter"); n != len(items) {
		t.Errorf("%d dead-letter lines for %d items", n, len(items))
	}
	if len(fake.sent()) != 1 || fake.tried("#qa") != 1 || len(srv.received()) != 0 {
		t.Errorf("requests for undecodable items: %d posts, %d mails", len(fake.sent()), len(srv.received()))
	}
	for _, call := range []string{"POST /rest/api/2/issue", "GET /rest/api/2/search/jql", "GET /rest/api/2/serverInfo"} {
		if n := f.Calls(call); n != 0 {
			t.Errorf("%d calls %s", n, call)
		}
	}
}
