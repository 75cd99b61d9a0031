// Package jira is gitmon's JIRA client: ticket lookups for policy
// (status, JSM approvals, JQL), and the calls behind post-deployment
// comments and failure tickets, which internal/notify sends from the
// outbox. It works with Jira Cloud and Server/Data Center through
// github.com/andygrunwald/go-jira v1.
//
// Errors never contain the API token: every error leaving the package is
// redacted (runners.Redact) of it and of Options.Secrets. Errors are
// *Error with the HTTP status; they wrap policy.ErrTicketNotFound for a
// missing issue and policy.ErrUnavailable when JIRA cannot answer
// (network errors, timeouts, 5xx, 429), so ticket checks fail closed, and
// ErrInvalidRequest for a request that can never be sent.
package jira

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gojira "github.com/andygrunwald/go-jira"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/policy"
	"github.com/gitmon-dev/gitmon/runners"
)

// Deployment is the kind of JIRA instance.
type Deployment int

// Deployments. DeploymentAuto asks rest/api/2/serverInfo once (hosts
// under atlassian.net are taken as Cloud without asking).
const (
	DeploymentAuto Deployment = iota
	DeploymentCloud
	DeploymentServer
)

func (d Deployment) String() string {
	switch d {
	case DeploymentCloud:
		return "cloud"
	case DeploymentServer:
		return "server"
	}
	return "auto"
}

// Options tune a Client. The zero value is usable.
type Options struct {
	// Deployment says whether the instance is Cloud or Server/DC;
	// DeploymentAuto detects it.
	Deployment Deployment
	// Timeout bounds each HTTP request (default 30s).
	Timeout time.Duration
	// Transport is the underlying transport (default: a clone of
	// http.DefaultTransport); tests may set it.
	Transport http.RoundTripper
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Secrets are redacted from every error, besides the client's own
	// credentials. Pass the daemon's secrets.
	Secrets []string
}

// Client talks to one JIRA instance. It is safe for concurrent use.
type Client struct {
	api     *gojira.Client
	base    string
	failure *config.FailureTickets
	now     func() time.Time
	secrets []string

	mu         sync.Mutex
	deployment Deployment
	// created remembers the ticket of each failure record this process
	// handled, because Cloud search is eventually consistent and may not
	// show a ticket created a moment ago.
	created map[string]string
	open    map[string]string // failure label → open ticket created here
}

// New returns a client for cfg. It makes no request.
func New(cfg config.Jira, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("jira: integrations.jira.url must be an http(s) URL")
	}
	if u.User != nil {
		return nil, errors.New("jira: integrations.jira.url must not carry credentials; use user_env and token_env")
	}
	user, token := cfg.User.Value(), cfg.Token.Value()
	if token == "" {
		return nil, errors.New("jira: no API token configured (integrations.jira.token_env)")
	}
	tr := opts.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSHandshakeTimeout = 10 * time.Second
		t.ResponseHeaderTimeout = 20 * time.Second
		t.MaxIdleConnsPerHost = 4
		tr = t
	}
	var auth http.RoundTripper
	if user != "" {
		auth = &gojira.BasicAuthTransport{Username: user, Password: token, Transport: tr}
	} else {
		// Server/DC personal access token.
		auth = &gojira.PATAuthTransport{Token: token, Transport: tr}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	hc := &http.Client{
		Transport: auth,
		Timeout:   timeout,
		// The auth transport adds credentials to every request, so never
		// follow a redirect to another host.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	base := strings.TrimRight(u.String(), "/")
	api, err := gojira.NewClient(hc, base+"/")
	if err != nil {
		return nil, fmt.Errorf("jira: %w", err)
	}
	c := &Client{api: api, base: base, failure: cfg.FailureTickets, now: opts.Now,
		deployment: opts.Deployment, created: map[string]string{}, open: map[string]string{}}
	if c.now == nil {
		c.now = time.Now
	}
	if c.deployment == DeploymentAuto && strings.HasSuffix(strings.ToLower(u.Hostname()), ".atlassian.net") {
		c.deployment = DeploymentCloud
	}
	c.secrets = append(append(c.secrets, opts.Secrets...), token, base64.StdEncoding.EncodeToString([]byte(user+":"+token)))
	if user == "" {
		c.secrets = append(c.secrets, "Bearer "+token)
	}
	return c, nil
}

// ---------------------------------------------------------------------
// Errors.

// ErrNotFound is wrapped by errors for a missing issue (besides
// policy.ErrTicketNotFound, which Ticket wraps).
var ErrNotFound = policy.ErrTicketNotFound

// ErrInvalidRequest is wrapped by errors for a request that gitmon can
// never send as it is (no project for a failure ticket, no record id).
var ErrInvalidRequest = errors.New("invalid request")

// Error is an error from JIRA. Its text is redacted of credentials.
type Error struct {
	Op     string
	Status int // HTTP status, 0 when no response came
	// RetryAfter is what a 429 or 503 answer's Retry-After asked for
	// (in seconds); 0 when it did not say.
	RetryAfter time.Duration
	msg        string
	fields     map[string]bool // the fields JIRA found fault with
	kind       error           // policy.ErrUnavailable, policy.ErrTicketNotFound, ErrInvalidRequest or nil
}

func (e *Error) Error() string {
	s := "jira: " + e.Op
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// Unwrap returns the sentinel the error counts as.
func (e *Error) Unwrap() error { return e.kind }

// Field reports whether JIRA found fault with field name (such as
// "assignee") in the request.
func (e *Error) Field(name string) bool { return e.fields[name] }

func (c *Client) scrub(s string) string { return runners.Redact(s, c.secrets) }

// fail classifies err from a request of op. resp may be nil.
func (c *Client) fail(op string, resp *gojira.Response, err error) error {
	e := &Error{Op: op}
	if resp != nil && resp.Response != nil {
		e.Status = resp.StatusCode
		if secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && secs > 0 &&
			(e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable) {
			e.RetryAfter = time.Duration(min(secs, 86400)) * time.Second
		}
	}
	var jerr *gojira.Error
	if errors.As(err, &jerr) {
		var parts []string
		parts = append(parts, jerr.ErrorMessages...)
		for k, v := range jerr.Errors {
			parts = append(parts, k+": "+v)
			if e.fields == nil {
				e.fields = map[string]bool{}
			}
			e.fields[k] = true
		}
		e.msg = strings.Join(parts, "; ")
	}
	switch {
	case e.Status == 0:
		e.kind = policy.ErrUnavailable
		if e.msg == "" && err != nil {
			e.msg = err.Error()
		}
	case e.Status == http.StatusNotFound:
		e.kind = policy.ErrTicketNotFound
	case e.Status >= 500, e.Status == http.StatusTooManyRequests, e.Status == http.StatusRequestTimeout:
		e.kind = policy.ErrUnavailable
	}
	if len(e.msg) > 300 {
		e.msg = e.msg[:300] + "…"
	}
	e.msg = c.scrub(e.msg)
	return e
}

// unavailable reports whether err means JIRA could not answer.
func unavailable(err error) bool { return errors.Is(err, policy.ErrUnavailable) }

func status(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// ---------------------------------------------------------------------
// Plumbing.

// do sends one request built with go-jira and decodes the answer into out.
func (c *Client) do(ctx context.Context, op, method, path string, body, out any) error {
	req, err := c.api.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return &Error{Op: op, msg: c.scrub(err.Error())}
	}
	resp, err := c.api.Do(req, out)
	if err != nil {
		if resp != nil {
			err = gojira.NewJiraError(resp, err)
		}
		return c.fail(op, resp, err)
	}
	if resp != nil && resp.Body != nil && out == nil {
		_ = resp.Body.Close()
	}
	return nil
}

// Deployment returns the kind of instance, detecting it if needed.
func (c *Client) Deployment(ctx context.Context) (Deployment, error) {
	c.mu.Lock()
	d := c.deployment
	c.mu.Unlock()
	if d != DeploymentAuto {
		return d, nil
	}
	var info struct {
		DeploymentType string `json:"deploymentType"`
	}
	if err := c.do(ctx, "server info", http.MethodGet, "rest/api/2/serverInfo", nil, &info); err != nil {
		return d, err
	}
	d = DeploymentServer
	if strings.EqualFold(info.DeploymentType, "Cloud") {
		d = DeploymentCloud
	}
	c.mu.Lock()
	c.deployment = d
	c.mu.Unlock()
	return d, nil
}

var keyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*-[1-9][0-9]*$`)

// validKey normalises an issue key, or reports that it cannot be one. It
// keeps keys out of JQL and URL paths unless they are plain keys.
func validKey(key string) (string, bool) {
	k := strings.ToUpper(strings.TrimSpace(key))
	return k, keyRE.MatchString(k)
}

// search runs jql and returns up to max issues with fields, through
// search/jql on Cloud and search on Server/DC.
func (c *Client) search(ctx context.Context, op, jql string, fields []string, max int) ([]gojira.Issue, error) {
	d, err := c.Deployment(ctx)
	if err != nil {
		return nil, err
	}
	var issues []gojira.Issue
	var resp *gojira.Response
	if d == DeploymentCloud {
		issues, resp, err = c.api.Issue.SearchV2JQLWithContext(ctx, jql, &gojira.SearchOptionsV2{MaxResults: max, Fields: fields})
	} else {
		issues, resp, err = c.api.Issue.SearchWithContext(ctx, jql, &gojira.SearchOptions{MaxResults: max, Fields: fields})
	}
	if err != nil {
		return nil, c.fail(op, resp, err)
	}
	return issues, nil
}

// jqlString quotes s as a JQL string literal.
func jqlString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// ---------------------------------------------------------------------
// Tickets.

// Ticket implements policy.TicketChecker: the issue's status, its labels
// (fields.labels, for break_glass.jira_labels) and, when it is a Jira
// Service Management request, the e-mails of the approvers who approved
// an approval whose final decision is "approved". Approvers whose e-mail
// JIRA hides are left out, since four eyes cannot be proven for them.
// Nothing is cached: every call asks JIRA, so a status, label or
// approval changed since counts at once.
func (c *Client) Ticket(ctx context.Context, key string) (policy.Ticket, error) {
	k, ok := validKey(key)
	if !ok {
		return policy.Ticket{}, &Error{Op: "get " + key, msg: "not an issue key", kind: policy.ErrTicketNotFound}
	}
	is, resp, err := c.api.Issue.GetWithContext(ctx, k, &gojira.GetQueryOptions{Fields: "status,labels"})
	if err != nil {
		return policy.Ticket{}, c.fail("get "+k, resp, err)
	}
	t := policy.Ticket{Key: is.Key}
	if t.Key == "" {
		t.Key = k
	}
	if is.Fields != nil {
		if is.Fields.Status != nil {
			t.Status = is.Fields.Status.Name
		}
		t.Labels = labelsOf(is.Fields.Labels)
	}
	if t.Approvers, err = c.approvers(ctx, t.Key); err != nil {
		return policy.Ticket{}, err
	}
	return t, nil
}

// maxLabels bounds the labels kept of one issue, and maxLabelLen the
// length of one: JIRA refuses a label over 255 characters, so a longer
// one did not come from JIRA, and the evidence of a record stays small
// whatever the server sends.
const (
	maxLabels   = 100
	maxLabelLen = 255
)

// labelsOf returns the issue's labels (fields.labels) as JIRA spells
// them, without empty, over-long or repeated ones, at most maxLabels;
// [] when there are none.
func labelsOf(in []string) []string {
	out := []string{}
	for _, l := range in {
		if len(out) == maxLabels {
			break
		}
		if l == "" || len(l) > maxLabelLen || slices.Contains(out, l) {
			continue
		}
		out = append(out, l)
	}
	return out
}

type approvalPage struct {
	IsLastPage bool `json:"isLastPage"`
	Values     []struct {
		FinalDecision string `json:"finalDecision"`
		Approvers     []struct {
			Approver struct {
				AccountID    string `json:"accountId"`
				EmailAddress string `json:"emailAddress"`
			} `json:"approver"`
			ApproverDecision string `json:"approverDecision"`
		} `json:"approvers"`
	} `json:"values"`
}

// approvers reads the JSM approvals of key. A 404 means the issue is not
// a service desk request (or JSM is not installed): no approvers.
func (c *Client) approvers(ctx context.Context, key string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for start, pages := 0, 0; pages < 20; pages++ {
		var page approvalPage
		path := fmt.Sprintf("rest/servicedeskapi/request/%s/approval?start=%d&limit=50", url.PathEscape(key), start)
		if err := c.do(ctx, "approvals of "+key, http.MethodGet, path, nil, &page); err != nil {
			if status(err) == http.StatusNotFound {
				return nil, nil
			}
			return nil, err
		}
		for _, v := range page.Values {
			if !strings.EqualFold(v.FinalDecision, "approved") {
				continue
			}
			for _, a := range v.Approvers {
				e := strings.ToLower(strings.TrimSpace(a.Approver.EmailAddress))
				if strings.EqualFold(a.ApproverDecision, "approved") && e != "" && !seen[e] {
					seen[e] = true
					out = append(out, e)
				}
			}
		}
		if page.IsLastPage || len(page.Values) == 0 {
			break
		}
		start += len(page.Values)
	}
	return out, nil
}

// FourEyes reports whether t was approved by someone other than the
// committer (compared case-insensitively by e-mail).
func FourEyes(t policy.Ticket, committer string) bool {
	committer = strings.TrimSpace(committer)
	for _, a := range t.Approvers {
		if a = strings.TrimSpace(a); a != "" && !strings.EqualFold(a, committer) {
			return true
		}
	}
	return false
}

// MatchesJQL reports whether issue key matches jql, by searching
// `key = KEY AND (jql)`.
func (c *Client) MatchesJQL(ctx context.Context, key, jql string) (bool, error) {
	k, ok := validKey(key)
	if !ok {
		return false, &Error{Op: "jql " + key, msg: "not an issue key", kind: policy.ErrTicketNotFound}
	}
	q := "key = " + k
	if strings.TrimSpace(jql) != "" {
		q += " AND (" + jql + ")"
	}
	issues, err := c.search(ctx, "jql "+k, q, []string{"key"}, 1)
	if err != nil {
		return false, err
	}
	return len(issues) > 0, nil
}

// Comment adds a comment to an issue.
func (c *Client) Comment(ctx context.Context, key, body string) error {
	k, ok := validKey(key)
	if !ok {
		return &Error{Op: "comment " + key, msg: "not an issue key", kind: policy.ErrTicketNotFound}
	}
	_, resp, err := c.api.Issue.AddCommentWithContext(ctx, k, &gojira.Comment{Body: body})
	if err != nil {
		return c.fail("comment on "+k, resp, err)
	}
	return nil
}

// ---------------------------------------------------------------------
// Users.

// userRef finds the JIRA user with e-mail email and returns the reference
// an assignee needs: the accountId on Cloud, the name on Server/DC. It
// returns "" when no such user is found.
func (c *Client) userRef(ctx context.Context, email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" || !strings.Contains(email, "@") {
		return "", nil
	}
	d, err := c.Deployment(ctx)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	if d == DeploymentCloud {
		q.Set("query", email)
	} else {
		q.Set("username", email)
	}
	q.Set("maxResults", "20")
	var users []gojira.User
	if err := c.do(ctx, "user search", http.MethodGet, "rest/api/2/user/search?"+q.Encode(), nil, &users); err != nil {
		return "", err
	}
	ref := func(u gojira.User) string {
		if d == DeploymentCloud {
			return u.AccountID
		}
		return u.Name
	}
	for _, u := range users {
		if strings.EqualFold(u.EmailAddress, email) && ref(u) != "" {
			return ref(u), nil
		}
	}
	// Cloud hides e-mails by privacy setting: one hit for the exact
	// address is the user.
	if d == DeploymentCloud && len(users) == 1 && users[0].EmailAddress == "" {
		return ref(users[0]), nil
	}
	return "", nil
}

// The policy engine looks tickets up and evaluates JQL through these.
var (
	_ policy.TicketChecker = (*Client)(nil)
	_ policy.JQLMatcher    = (*Client)(nil)
)
