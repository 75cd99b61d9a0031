package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// Mail sends store.OutboxEmail items over SMTP: STARTTLS whenever the
// server offers it, AUTH (PLAIN or LOGIN, only over TLS) when a user is
// configured.
type Mail struct {
	Host     string
	Port     int // config.DefaultSMTPPort when 0
	From     string
	User     string
	Password string
	// TLSConfig verifies the server; the system roots and Host when nil.
	// InsecureSkipVerify is refused unless Host is a loopback address.
	TLSConfig *tls.Config
	Timeout   time.Duration // per connection; 30s when 0
	// Secrets are redacted from the subject, the body and every other
	// text of a mail before it is sent. Pass the daemon's secrets.
	Secrets []string
}

// Send mails one item and returns its Message-ID. A 5xx reply of the
// server (a refused sender or recipient, failed authentication), an
// address that is not one and a payload that cannot be read are
// permanent (ErrPermanent); 4xx replies and network errors are not.
func (m *Mail) Send(ctx context.Context, it store.OutboxItem) (string, error) {
	var p EmailPayload
	if err := decodeRedacted(it.Payload, m.Secrets, &p); err != nil {
		return "", undecodable("e-mail", it.Key, err)
	}
	if len(p.To) == 0 {
		return "", ErrNoRecipients
	}
	msg := mail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return "", Permanent(fmt.Errorf("smtp from %q: %w", m.From, err))
	}
	if err := msg.To(p.To...); err != nil {
		return "", Permanent(fmt.Errorf("e-mail %s: %w", it.Key, err))
	}
	msg.Subject(p.Subject)
	msg.SetBodyString(mail.TypeTextPlain, p.Body)
	msg.SetDate()
	msg.SetMessageID()

	client, err := m.client()
	if err != nil {
		return "", err
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return "", smtpError(fmt.Errorf("smtp %s: %w", net.JoinHostPort(m.Host, fmt.Sprint(m.port())), err))
	}
	return strings.Trim(first(msg.GetGenHeader(mail.HeaderMessageID)), "<>"), nil
}

// smtpError classifies a failed delivery by the server's reply code: 5xx
// is permanent (RFC 5321 §4.2.1), anything else is worth a retry.
func smtpError(err error) error {
	var se *mail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 {
		return Permanent(err)
	}
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return Permanent(err)
	}
	return err
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

func (m *Mail) port() int {
	if m.Port == 0 {
		return 587
	}
	return m.Port
}

func (m *Mail) client() (*mail.Client, error) {
	tc := m.TLSConfig
	if tc == nil {
		tc = &tls.Config{}
	} else {
		tc = tc.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = m.Host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	if tc.InsecureSkipVerify && !isLoopback(m.Host) {
		return nil, Permanent(errors.New("smtp: skipping TLS verification is only allowed for a loopback host"))
	}
	timeout := m.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	opts := []mail.Option{
		mail.WithPort(m.port()),
		mail.WithTLSPolicy(mail.TLSOpportunistic),
		mail.WithTLSConfig(tc),
		mail.WithTimeout(timeout),
	}
	if m.User != "" {
		opts = append(opts, mail.WithOpportunisticSMTPAuth(mail.SMTPAuthPlain, mail.SMTPAuthLogin),
			mail.WithUsername(m.User), mail.WithPassword(m.Password))
	}
	c, err := mail.NewClient(m.Host, opts...)
	if err != nil {
		return nil, Permanent(fmt.Errorf("smtp: %w", err)) // the configuration, not the server
	}
	return c, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
