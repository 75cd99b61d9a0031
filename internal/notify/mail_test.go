package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// Set GITMON_TEST_SMTP_HOST, _PORT, _FROM, _TO (and _USER, _PASSWORD) to
// send through a real SMTP server; the in-process server's assertions are
// then skipped.

func mailSetup(t *testing.T) (*Mail, []string, *smtpServer) {
	if host := os.Getenv("GITMON_TEST_SMTP_HOST"); host != "" {
		port, _ := strconv.Atoi(os.Getenv("GITMON_TEST_SMTP_PORT"))
		return &Mail{Host: host, Port: port, From: os.Getenv("GITMON_TEST_SMTP_FROM"),
				User: os.Getenv("GITMON_TEST_SMTP_USER"), Password: os.Getenv("GITMON_TEST_SMTP_PASSWORD")},
			strings.Split(os.Getenv("GITMON_TEST_SMTP_TO"), ","), nil
	}
	srv := newSMTPServer(t, "gitmon", "smtp-pass")
	return &Mail{Host: "127.0.0.1", Port: srv.port(t), From: "gitmon@example.com", User: "gitmon", Password: "smtp-pass",
		TLSConfig: &tls.Config{RootCAs: srv.pool}, Timeout: 10 * time.Second}, []string{"alice@example.com", "ops@qa.example.com"}, srv
}

func parseMail(t *testing.T, data string) (subject, body string, h netmail.Header) {
	t.Helper()
	m, err := netmail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return subject, string(b), m.Header
}

func TestMailSTARTTLSAuth(t *testing.T) {
	ctx := context.Background()
	m, to, srv := mailSetup(t)
	rec := testRecord(store.StatusFailed)
	msg := RecordFinished(rec, Options{Secrets: []string{canary}, TicketURL: "https://jira.example.com/browse/OPS-7"})
	it, err := EmailItem(rec.ID, EventFinished, to, msg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Send(ctx, it)
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Error("no Message-ID")
	}
	if srv == nil {
		return
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	g := got[0]
	if !g.TLS || g.User != "gitmon" || g.From != "gitmon@example.com" || strings.Join(g.To, ",") != strings.Join(to, ",") {
		t.Errorf("envelope: TLS %v, user %q, from %q, to %v", g.TLS, g.User, g.From, g.To)
	}
	noCanary(t, "e-mail", g.Data)
	subject, body, h := parseMail(t, g.Data)
	noCanary(t, "e-mail body", body)
	if subject != "[gitmon] payments 1.4.1 → 1.4.2 in qa: failed" {
		t.Errorf("subject %q", subject)
	}
	if !strings.Contains(h.Get("From"), "gitmon@example.com") || !strings.Contains(h.Get("To"), "alice@example.com") {
		t.Errorf("headers From %q To %q", h.Get("From"), h.Get("To"))
	}
	for _, want := range []string{"Environment: qa", "Service:     payments", "Version:     1.4.1 -> 1.4.2",
		"Commit:      0123456789abcdef0123456789abcdef01234567", "Committer:   alice@example.com",
		"healthcheck: failed", "changes: port 22 not allowed; token=<redacted>", "Maintainer:  @bob@example.com",
		"Ticket:      https://jira.example.com/browse/OPS-7"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestMailRefuses(t *testing.T) {
	ctx := context.Background()
	if _, err := EmailItem("r", EventStarted, nil, Message{}); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("EmailItem to nobody: %v", err)
	}
	m := &Mail{Host: "127.0.0.1", Port: 1, From: "gitmon@example.com"}
	if _, err := m.Send(ctx, store.OutboxItem{Key: "k", Payload: []byte(`{"to":[]}`)}); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("Send to nobody: %v", err)
	}
	m = &Mail{Host: "smtp.example.com", From: "gitmon@example.com", TLSConfig: &tls.Config{InsecureSkipVerify: true}}
	if _, err := m.Send(ctx, store.OutboxItem{Key: "k", Payload: []byte(`{"to":["a@example.com"]}`)}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("insecure TLS to a remote host: %v", err)
	}
}

// TestWorkerOutageReopen: SMTP is down and Slack answers 500; the items
// survive a store reopen and go out once both are back.
func TestWorkerOutageReopen(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
	// A free port with nothing listening: SMTP is down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)

	dir := t.TempDir()
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sl, ch, fake := slackSetup(t, st)
	clk := newClock()
	m := &Mail{Host: "127.0.0.1", Port: port, From: "gitmon@example.com", User: "gitmon", Password: "smtp-pass", Timeout: 5 * time.Second}
	worker := func(st store.Store) *Worker {
		return &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxSlack: sl, store.OutboxEmail: m}, Now: clk.Now,
			MinBackoff: time.Second, MaxBackoff: time.Minute}
	}

	rec := testRecord(store.StatusFailed)
	items, err := Items(rec.ID, EventFinished, RecordFinished(rec, Options{Redact: NewRedactor([]string{canary})}),
		[]string{ch}, []string{"alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Enqueue(ctx, items...); err != nil {
		t.Fatal(err)
	}
	fake.failNext(500)
	if n, err := worker(st).RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("during the outage: %d sent, %v", n, err)
	}
	for _, it := range items {
		got, _, _ := st.OutboxItem(ctx, it.Key)
		if got.Sent() || got.Attempts != 1 || got.LastError == "" {
			t.Errorf("%s after failure: %+v", it.Key, got)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Both come back; gitmon restarts.
	srv := newSMTPServerAt(t, addr, "gitmon", "smtp-pass")
	m.TLSConfig = &tls.Config{RootCAs: srv.pool}
	st, err = store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sl.outbox = st
	w := worker(st)
	if n, _ := w.RunOnce(ctx); n != 0 {
		t.Fatal("retried before the backoff")
	}
	clk.Advance(time.Second)

	// Run the real loop until it has delivered both.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	w.Interval = 10 * time.Millisecond
	go func() { done <- w.Run(runCtx) }()
	w.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for {
		due, err := st.DueOutbox(ctx, clk.Now().Add(time.Hour), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %+v", due)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	if posts := fake.sent(); len(posts) != 1 {
		t.Errorf("%d Slack posts", len(posts))
	} else {
		noCanary(t, "slack post", posts[0].Raw)
	}
	msgs := srv.received()
	if len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("%d e-mails", len(msgs))
	}
	noCanary(t, "e-mail", msgs[0].Data)
}
