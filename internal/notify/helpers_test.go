package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// canary is a secret that must never leave gitmon.
const canary = "CANARY-s3cr3t-7f1e"

func testRecord(status string) *store.Record {
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	return &store.Record{
		ID: "01JREC0000000000000000000A", Repository: "deployments", Environment: "qa", Service: "payments",
		Action: "deploy", Version: "1.4.2", PreviousVersion: "1.4.1",
		Commit: "0123456789abcdef0123456789abcdef01234567", Author: "alice@example.com", Committer: "alice@example.com",
		Tickets: []string{"PAY-12"}, Status: status,
		Reasons: []policy.Reason{{Rule: "changes", Message: "port 22 not allowed; token=" + canary}},
		Stages: []store.Stage{
			{Name: "deploy", Status: store.StageSucceeded, StartedAt: &now, FinishedAt: &now, Message: "exit 0"},
			{Name: "healthcheck", Status: store.StageFailed, Message: "GET https://x/?key=" + canary + ": 503", Output: canary},
		},
		Descriptor: &descriptors.Descriptor{Service: "payments", Version: "1.4.2", Maintainer: "bob@example.com"},
	}
}

// fakeSlack is a slacktest server with its own chat.postMessage: it keeps
// every post, answers unique ts values (slacktest's own collide within a
// second) and can fail on demand.
type fakeSlack struct {
	srv *slacktest.Server

	mu    sync.Mutex
	posts []slackPost
	fail  []int // status codes to answer next, in order (429 adds Retry-After: 7; dropConn drops it)
	n     int
	// errs are the Slack errors ("ok": false) answered for a channel.
	errs map[string]string
	// calls counts the posts tried, by channel.
	calls map[string]int
}

// dropConn in fakeSlack.failNext closes the connection without an answer.
const dropConn = -1

type slackPost struct {
	Channel, Text, ThreadTS, TS string
	Blocks                      slack.Blocks
	Raw                         string
	BlocksJSON                  string // the blocks form value, as posted
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.postMessage)
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

// failChannel makes every post to channel answer "ok": false with slackErr.
func (f *fakeSlack) failChannel(channel, slackErr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[string]string{}
	}
	f.errs[channel] = slackErr
}

// tried returns how many posts to channel were tried.
func (f *fakeSlack) tried(channel string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[channel]
}

func (f *fakeSlack) failNext(codes ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = append(f.fail, codes...)
}

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[r.FormValue("channel")]++
	if len(f.fail) > 0 {
		code := f.fail[0]
		f.fail = f.fail[1:]
		switch code {
		case dropConn:
			panic(http.ErrAbortHandler)
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(code)
		return
	}
	if e := f.errs[r.FormValue("channel")]; e != "" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": e})
		return
	}
	f.n++
	p := slackPost{Channel: r.FormValue("channel"), Text: r.FormValue("text"), ThreadTS: r.FormValue("thread_ts"),
		TS: fmt.Sprintf("1700000000.%06d", f.n), Raw: r.Form.Encode(), BlocksJSON: r.FormValue("blocks")}
	if b := r.FormValue("blocks"); b != "" {
		if err := json.Unmarshal([]byte(b), &p.Blocks); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
	}
	f.posts = append(f.posts, p)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": p.Channel, "ts": p.TS})
}

func (f *fakeSlack) sent() []slackPost {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackPost(nil), f.posts...)
}

// smtpServer is a real SMTP server (emersion/go-smtp) on 127.0.0.1 with
// STARTTLS on a throwaway certificate and AUTH PLAIN.
type smtpServer struct {
	srv  *smtp.Server
	addr string
	pool *x509.CertPool

	mu   sync.Mutex
	msgs []smtpMsg
	tls  []bool
	auth []string
	// rcptErr, when set, is the reply to every RCPT TO.
	rcptErr *smtp.SMTPError
}

// rejectRcpt makes the server answer every RCPT TO with code and msg.
func (s *smtpServer) rejectRcpt(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptErr = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: msg}
}

type smtpMsg struct {
	From string
	To   []string
	Data string
	TLS  bool
	User string
}

func newSMTPServer(t *testing.T, user, pass string) *smtpServer {
	return newSMTPServerAt(t, "127.0.0.1:0", user, pass)
}

func newSMTPServerAt(t *testing.T, addr, user, pass string) *smtpServer {
	cert, pool := throwawayCert(t)
	s := &smtpServer{pool: pool}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s, c: c, user: user, pass: pass}, nil
	})
	s.srv = smtp.NewServer(be)
	s.srv.Domain = "localhost"
	s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go func() { _ = s.srv.Serve(l) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *smtpServer) port(t *testing.T) int {
	_, p, _ := net.SplitHostPort(s.addr)
	var n int
	if _, err := fmt.Sscan(p, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *smtpServer) received() []smtpMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMsg(nil), s.msgs...)
}

type smtpSession struct {
	s          *smtpServer
	c          *smtp.Conn
	user, pass string
	authed     string
	msg        smtpMsg
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.user || password != ss.pass {
			// What real servers answer (RFC 4954 §6); go-smtp's default is a 454.
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication credentials invalid"}
		}
		ss.authed = username
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user != "" && ss.authed == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	ss.msg = smtpMsg{From: from}
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	rerr := ss.s.rcptErr
	ss.s.mu.Unlock()
	if rerr != nil {
		return rerr
	}
	ss.msg.To = append(ss.msg.To, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.c.TLSConnectionState()
	ss.msg.Data, ss.msg.TLS, ss.msg.User = string(b), isTLS, ss.authed
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.msg)
	ss.s.mu.Unlock()
	return nil
}

func (ss *smtpSession) Reset()        { ss.msg = smtpMsg{} }
func (ss *smtpSession) Logout() error { return nil }

func throwawayCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gitmon test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}

func openStore(t *testing.T, dir string) *store.SQLite {
	t.Helper()
	s, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// logBuffer collects a logger's lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

func noCanary(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, canary) {
		t.Errorf("%s contains the canary secret:\n%s", what, s)
	}
}
