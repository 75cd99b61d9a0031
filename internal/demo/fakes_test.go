package demo

import (
	"context"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/notify"
)

func TestFakes(t *testing.T) {
	ctx := context.Background()
	in := &inbox{}
	s := in.startSlack()
	defer s.Stop()
	sl := notify.NewSlack("xoxb-demo", s.GetAPIURL(), "", nil, nil)
	var seen []string
	for _, id := range []string{"r1", "r2"} {
		it, err := notify.SlackItem(id, notify.EventStarted, "#payments", notify.Message{Text: "payments 1.4.1 → 1.4.2 in qa: started"})
		if err != nil {
			t.Fatal(err)
		}
		ts, err := sl.Send(ctx, it)
		if err != nil || ts == "" {
			t.Fatalf("slack: ts %q, %v", ts, err)
		}
		seen = append(seen, ts)
	}
	if seen[0] == seen[1] {
		t.Errorf("the fake Slack answered the same ts twice: %q", seen[0])
	}

	srv, port, err := in.startSMTP()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m := &notify.Mail{Host: "127.0.0.1", Port: port, From: "gitmon@example.com"}
	it, err := notify.EmailItem("r1", notify.EventFinished, []string{"payments-team@example.com"},
		notify.Message{Subject: "[gitmon] payments 1.4.1 → 1.4.2 in qa: succeeded", Body: "ok\n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Send(ctx, it); err != nil {
		t.Fatalf("smtp: %v", err)
	}

	lines := strings.Join(in.take(), "\n")
	for _, want := range []string{
		"slack #payments: payments 1.4.1 → 1.4.2 in qa: started",
		"e-mail to payments-team@example.com: [gitmon] payments 1.4.1 → 1.4.2 in qa: succeeded",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("inbox lacks %q:\n%s", want, lines)
		}
	}
	if posts, mails := in.counts(); posts != 2 || mails != 1 {
		t.Errorf("counts: %d posts, %d e-mails; want 2 and 1", posts, mails)
	}
	if l := in.take(); len(l) != 0 {
		t.Errorf("take twice: %q", l)
	}
}
