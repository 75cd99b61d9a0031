package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	smtp "github.com/emersion/go-smtp"
	"github.com/slack-go/slack/slacktest"
)

// inbox collects what the demo's fake Slack and SMTP servers received,
// for the printer to show in the timeline.
type inbox struct {
	mu     sync.Mutex
	lines  []string // not printed yet
	slack  int
	emails int
	ts     int
}

func (in *inbox) add(line string) {
	in.lines = append(in.lines, line)
}

// take returns the lines received since the last call.
func (in *inbox) take() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	l := in.lines
	in.lines = nil
	return l
}

func (in *inbox) counts() (slack, emails int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.slack, in.emails
}

// startSlack starts a fake Slack API (slacktest) whose chat.postMessage
// records the posts and answers a unique ts. Its API URL ends with "/".
func (in *inbox) startSlack() *slacktest.Server {
	s := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", in.postMessage)
	})
	s.Start()
	return s
}

func (in *inbox) postMessage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	channel, text, thread := r.FormValue("channel"), r.FormValue("text"), r.FormValue("thread_ts")
	in.mu.Lock()
	in.ts++
	ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), in.ts)
	in.slack++
	line := fmt.Sprintf("slack %s: %s", channel, text)
	if thread != "" {
		line += " (thread)"
	}
	in.add(line)
	in.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": channel, "ts": ts})
}

// startSMTP starts a plain SMTP server on 127.0.0.1 (no TLS, no AUTH)
// that records the messages it receives, and returns its port.
func (in *inbox) startSMTP() (*smtp.Server, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{in: in}, nil
	}))
	s.Domain = "localhost"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.MaxMessageBytes = 1 << 20
	go func() { _ = s.Serve(ln) }()
	return s, ln.Addr().(*net.TCPAddr).Port, nil
}

type smtpSession struct {
	in *inbox
	to []string
}

func (s *smtpSession) Reset()                                    { s.to = nil }
func (s *smtpSession) Logout() error                             { return nil }
func (s *smtpSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = append(s.to, to); return nil }
func (s *smtpSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, msg.Body); err != nil {
		return err
	}
	if len(s.to) == 0 {
		return errors.New("no recipients")
	}
	subject := msg.Header.Get("Subject")
	if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = dec
	}
	s.in.mu.Lock()
	s.in.emails++
	s.in.add(fmt.Sprintf("e-mail to %s: %s", strings.Join(s.to, ", "), subject))
	s.in.mu.Unlock()
	return nil
}
