// Package scm talks to the Git host's API (SPEC §8 "SCM statuses"): it
// sets commit statuses, lists the open pull requests into a branch, and
// opens a pull request for `gitmon promote --branch`. GitHub goes through
// google/go-github, GitLab through gitlab.com/gitlab-org/api/client-go and
// Gitea through code.gitea.io/sdk/gitea, behind one small Client.
//
// Every call is one request (the libraries' own retries are off): the
// outbox retries statuses, and the pull-request checks run again at the
// next poll. Errors are *Error with the HTTP status and what a rate limit
// asked to wait, so that the caller can tell a permanent failure (a 4xx
// other than 429 and rate limits) from one to retry; they never hold the
// token (they are redacted of it and of Options.Secrets).
package scm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/runners"
)

// State is a commit status's state.
type State string

// States gitmon sets.
const (
	Pending State = "pending"
	Success State = "success"
	Failure State = "failure"
)

// MaxDescription is the longest description, in characters: GitHub's
// limit; GitLab and Gitea statuses are cut alike.
const MaxDescription = 140

// Status is one commit status.
type Status struct {
	State State
	// Running says a pending status is for work that has started: GitLab
	// has a state for it ("running"); GitHub and Gitea show pending.
	Running     bool
	Context     string // such as gitmon/prod/payments
	Description string // cut to MaxDescription characters
	TargetURL   string
}

// PullRequest is an open pull (GitLab: merge) request.
type PullRequest struct {
	Number  int64
	HeadSHA string // the head commit
	HeadRef string // the source branch
	BaseRef string // the target branch
	URL     string // its web page
	// GitRef is the ref of the head commit on the Git host:
	// refs/pull/N/head (GitHub, Gitea) or refs/merge-requests/N/head
	// (GitLab). It names a fork's commits too.
	GitRef string
}

// Client is the Git host's API as gitmon uses it. Implementations are
// safe for concurrent use.
type Client interface {
	// SetStatus sets a commit status on sha in project ("owner/name", or a
	// GitLab path or numeric id).
	SetStatus(ctx context.Context, project, sha string, s Status) error
	// OpenPullRequests lists the open pull requests into base, at most
	// MaxPullRequests of them.
	OpenPullRequests(ctx context.Context, project, base string) ([]PullRequest, error)
	// CreatePullRequest opens a pull request from branch head into base
	// and returns its web URL. When one is open already for head into
	// base, it returns that one's URL.
	CreatePullRequest(ctx context.Context, project, head, base, title, body string) (url string, err error)
}

// MaxPullRequests bounds what one OpenPullRequests lists.
const MaxPullRequests = 1000

// Options tune a client. The zero value is usable.
type Options struct {
	// Timeout bounds each HTTP request (default 30s).
	Timeout time.Duration
	// Transport is the underlying transport (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// Secrets are redacted from every error, besides the token.
	Secrets []string
	// Now is the clock for rate-limit resets (default time.Now).
	Now func() time.Time
}

// New returns a client for cfg. It makes no request.
func New(cfg config.SCM, opts Options) (Client, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errors.New("scm: integrations.scm.url must be an http(s) URL without credentials")
	}
	token := cfg.Token.Value()
	if token == "" {
		return nil, errors.New("scm: no token configured (integrations.scm.token_env)")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := base{provider: cfg.Provider, secrets: append([]string{token}, opts.Secrets...), now: opts.Now, http: httpClient(opts)}
	base := strings.TrimRight(u.String(), "/")
	switch cfg.Provider {
	case config.SCMGitHub:
		return newGitHub(b, base, token)
	case config.SCMGitLab:
		return newGitLab(b, base, token)
	case config.SCMGitea:
		return newGitea(b, base, token), nil
	}
	return nil, fmt.Errorf("scm: unknown provider %q", cfg.Provider)
}

// httpClient is the client every provider sends through: bounded, and
// never following a redirect to another host, which would carry the
// token (GitLab's PRIVATE-TOKEN header survives Go's redirect rules).
func httpClient(opts Options) *http.Client {
	tr := opts.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSHandshakeTimeout = 10 * time.Second
		t.ResponseHeaderTimeout = 20 * time.Second
		t.MaxIdleConnsPerHost = 4
		tr = t
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
				return http.ErrUseLastResponse
			}
			return nil
		}}
}

// base is what every provider's client shares.
type base struct {
	provider string
	secrets  []string
	now      func() time.Time
	http     *http.Client
}

// Error is a failed call.
type Error struct {
	Provider string
	Op       string // set status, list pull requests, create pull request
	Status   int    // HTTP status; 0 when no answer came
	// RetryAfter is what a rate limit asked to wait (0: it did not say).
	RetryAfter time.Duration
	// RateLimited says the host refused for a rate limit (GitHub answers
	// those with 403 too): retry, never give up for it.
	RateLimited bool
	msg         string
	kind        error
}

func (e *Error) Error() string {
	s := "scm " + e.Provider + ": " + e.Op
	if e.Status != 0 {
		s += ": HTTP " + strconv.Itoa(e.Status)
	}
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// Unwrap returns the sentinel the error counts as, if any.
func (e *Error) Unwrap() error { return e.kind }

// Permanent reports whether the same call fails again however often it
// is tried: a 4xx answer other than 429 and rate limits, or a request
// gitmon can never send.
func (e *Error) Permanent() bool {
	if errors.Is(e.kind, ErrInvalidRequest) {
		return true
	}
	return !e.RateLimited && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests
}

// ErrInvalidRequest is wrapped by errors for a call gitmon can never make
// as it is (a project that is not owner/name, a SHA that is not one).
var ErrInvalidRequest = errors.New("invalid request")

// fail builds the *Error of a call; msg is redacted.
func (b *base) fail(op string, status int, err error) *Error {
	e := &Error{Provider: b.provider, Op: op, Status: status}
	if err != nil {
		e.msg = b.redact(err.Error())
	}
	return e
}

func (b *base) invalid(op, format string, args ...any) *Error {
	return &Error{Provider: b.provider, Op: op, msg: b.redact(fmt.Sprintf(format, args...)), kind: ErrInvalidRequest}
}

func (b *base) redact(s string) string {
	s = runners.Redact(s, b.secrets)
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

// retryAfter reads a Retry-After header in seconds (0 when absent).
func retryAfter(h http.Header) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && n > 0 {
		return time.Duration(min(n, 3600)) * time.Second
	}
	return 0
}

// Truncate cuts s to MaxDescription characters, ending with "…" when it
// was longer, and keeps it on one line.
func Truncate(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= MaxDescription {
		return s
	}
	return string(r[:MaxDescription-1]) + "…"
}

var shaRe = regexp.MustCompile(`^[0-9a-f]{40}$|^[0-9a-f]{64}$`)

// ValidSHA reports whether s is a full commit id (SHA-1 or SHA-256).
func ValidSHA(s string) bool { return shaRe.MatchString(s) }

// ownerName splits "owner/name" (GitHub, Gitea).
func ownerName(project string) (string, string, bool) {
	o, n, ok := strings.Cut(project, "/")
	return o, n, ok && o != "" && n != "" && !strings.Contains(n, "/")
}

// keep reports whether a listed pull request is usable: a positive
// number and a full head SHA. What the host sends is not trusted.
func keep(pr PullRequest) bool {
	return pr.Number > 0 && ValidSHA(pr.HeadSHA)
}
