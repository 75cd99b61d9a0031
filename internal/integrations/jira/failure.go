package jira

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	gojira "github.com/andygrunwald/go-jira"
)

// FailureTicketRequest describes one failed record.
type FailureTicketRequest struct {
	// RecordID identifies the failure; retrying with the same id never
	// opens or comments twice on the same ticket. Required.
	RecordID string
	// Environment and Service pick the one open ticket. Required.
	Environment string
	Service     string
	// Summary defaults to "gitmon: <service> failed in <environment>".
	Summary string
	// Description is the caller's text: diff, failing stage, output tail.
	Description string
	// Committer and Maintainer are e-mails; the ticket is assigned to the
	// committer, else the maintainer, else nobody.
	Committer  string
	Maintainer string
	// Project and IssueType override integrations.jira.failure_tickets.
	Project   string
	IssueType string
	// Labels are added to a new ticket besides gitmon's own.
	Labels []string
}

// maxText keeps descriptions and comments under JIRA's 32767-character
// limit.
const maxText = 30000

// Label is the label on every ticket gitmon opens.
const Label = "gitmon"

// FailureLabel is the label that ties tickets to an (environment,
// service): readable, plus a hash so that distinct pairs never share it.
func FailureLabel(env, service string) string {
	return "gitmon-" + cut(sanitize(env)+"-"+sanitize(service), 200) + "-" + hash8(env+"\x00"+service)
}

// RecordLabel marks the ticket that handled failure record id.
func RecordLabel(id string) string {
	s := cut(sanitize(id), 200)
	if s != id {
		s += "-" + hash8(id)
	}
	return "gitmon-record-" + s
}

func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '.' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

func hash8(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Keep whole runes.
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// tail keeps the end of s, where the output's last lines are.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !isRuneStart(s[i]) {
		i++
	}
	return "[… truncated …]\n" + s[i:]
}

// FailureTicket reports a failed record: it comments on the open ticket of
// (environment, service) if there is one, else opens one. It returns the
// ticket key and whether this call created it. Calling it again for the
// same RecordID returns the ticket that record already went to, without
// creating or commenting again.
func (c *Client) FailureTicket(ctx context.Context, ft FailureTicketRequest) (key string, created bool, err error) {
	if ft.RecordID == "" || ft.Environment == "" || ft.Service == "" {
		return "", false, &Error{Op: "failure ticket", msg: "record id, environment and service are required", kind: ErrInvalidRequest}
	}
	project, issueType := ft.Project, ft.IssueType
	if c.failure != nil {
		if project == "" {
			project = c.failure.Project
		}
		if issueType == "" {
			issueType = c.failure.IssueType
		}
	}
	if project == "" {
		return "", false, &Error{Op: "failure ticket", msg: "no project (integrations.jira.failure_tickets.project)", kind: ErrInvalidRequest}
	}
	if issueType == "" {
		issueType = "Bug"
	}
	rl, fl := RecordLabel(ft.RecordID), FailureLabel(ft.Environment, ft.Service)

	// 1. Already handled?
	c.mu.Lock()
	k := c.created[rl]
	c.mu.Unlock()
	if k != "" {
		return k, false, nil
	}
	issues, err := c.search(ctx, "search failure record", "labels = "+jqlString(rl), []string{"key"}, 1)
	if err != nil {
		return "", false, err
	}
	if len(issues) > 0 {
		c.remember(rl, "", issues[0].Key)
		return issues[0].Key, false, nil
	}

	// 2. An open ticket for (environment, service)?
	open, err := c.openTicket(ctx, fl)
	if err != nil {
		return "", false, err
	}
	if open != "" {
		body := fmt.Sprintf("gitmon: %s failed again in %s (record %s) at %s.\n\n%s",
			ft.Service, ft.Environment, ft.RecordID, c.now().UTC().Format(time.RFC3339), ft.Description)
		if err := c.Comment(ctx, open, tail(body, maxText)); err != nil {
			return "", false, err
		}
		// Marking after commenting: a crash in between may repeat the
		// comment on retry, never open a second ticket.
		resp, err := c.api.Issue.UpdateIssueWithContext(ctx, open, map[string]any{
			"update": map[string]any{"labels": []map[string]string{{"add": rl}}},
		})
		if err != nil {
			return "", false, c.fail("label "+open, resp, wrapResp(resp, err))
		}
		closeResp(resp)
		c.remember(rl, "", open)
		return open, false, nil
	}

	// 3. Open one.
	summary := ft.Summary
	if summary == "" {
		summary = fmt.Sprintf("gitmon: %s failed in %s", ft.Service, ft.Environment)
	}
	summary = cut(strings.Join(strings.Fields(summary), " "), 250)
	labels := []string{Label, fl, rl}
	for _, l := range ft.Labels {
		if l = sanitize(l); l != "" && len(l) <= 255 {
			labels = append(labels, l)
		}
	}
	var assignee *gojira.User
	for _, email := range []string{ft.Committer, ft.Maintainer} {
		ref, err := c.userRef(ctx, email)
		if err != nil {
			if unavailable(err) {
				return "", false, err
			}
			continue // e.g. no permission to browse users
		}
		if ref != "" {
			d, _ := c.Deployment(ctx)
			if d == DeploymentCloud {
				assignee = &gojira.User{AccountID: ref}
			} else {
				assignee = &gojira.User{Name: ref}
			}
			break
		}
	}
	issue := &gojira.Issue{Fields: &gojira.IssueFields{
		Project:     gojira.Project{Key: project},
		Type:        gojira.IssueType{Name: issueType},
		Summary:     summary,
		Description: tail(ft.Description, maxText),
		Labels:      labels,
		Assignee:    assignee,
	}}
	newIssue, err := c.create(ctx, issue)
	if err != nil && assignee != nil && status(err) == http.StatusBadRequest && fieldError(err, "assignee") {
		// The user exists but cannot be assigned here: open it unassigned.
		issue.Fields.Assignee = nil
		newIssue, err = c.create(ctx, issue)
	}
	if err != nil {
		return "", false, err
	}
	c.remember(rl, fl, newIssue)
	return newIssue, true, nil
}

// fieldError reports whether err is JIRA's complaint about field.
func fieldError(err error, field string) bool {
	var e *Error
	return errors.As(err, &e) && e.Field(field)
}

func (c *Client) create(ctx context.Context, issue *gojira.Issue) (string, error) {
	is, resp, err := c.api.Issue.CreateWithContext(ctx, issue)
	if err != nil {
		return "", c.fail("create issue", resp, wrapResp(resp, err))
	}
	if is == nil || is.Key == "" {
		return "", &Error{Op: "create issue", msg: "no key in the answer"}
	}
	return is.Key, nil
}

// wrapResp reads JIRA's error body for calls of go-jira that leave it
// unread.
func wrapResp(resp *gojira.Response, err error) error {
	if resp != nil && resp.Response != nil && resp.Body != nil {
		return gojira.NewJiraError(resp, err)
	}
	return err
}

func closeResp(resp *gojira.Response) {
	if resp != nil && resp.Response != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
}

func (c *Client) remember(recordLabel, failureLabel, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.created[recordLabel] = key
	if failureLabel != "" {
		c.open[failureLabel] = key
	}
}

// openTicket returns the oldest open ticket labelled fl, or "".
func (c *Client) openTicket(ctx context.Context, fl string) (string, error) {
	jql := "labels = " + jqlString(fl) + " AND statusCategory != Done ORDER BY created ASC"
	issues, err := c.search(ctx, "search open failure ticket", jql, []string{"key", "status"}, 1)
	if err != nil {
		return "", err
	}
	if len(issues) > 0 {
		return issues[0].Key, nil
	}
	// Cloud search lags behind writes: a ticket this process just opened
	// may not show yet.
	c.mu.Lock()
	k := c.open[fl]
	c.mu.Unlock()
	if k == "" {
		return "", nil
	}
	is, resp, err := c.api.Issue.GetWithContext(ctx, k, &gojira.GetQueryOptions{Fields: "status"})
	if err != nil {
		err = c.fail("get "+k, resp, err)
		if status(err) == http.StatusNotFound {
			return "", nil
		}
		return "", err
	}
	if is.Fields != nil && is.Fields.Status != nil && strings.EqualFold(is.Fields.Status.StatusCategory.Key, "done") {
		c.mu.Lock()
		delete(c.open, fl)
		c.mu.Unlock()
		return "", nil
	}
	return k, nil
}

// ResolveNote comments body (default: "service succeeded again") on the
// open failure ticket of (environment, service), if any, and returns its
// key or "".
func (c *Client) ResolveNote(ctx context.Context, env, service, body string) (string, error) {
	k, err := c.openTicket(ctx, FailureLabel(env, service))
	if err != nil || k == "" {
		return "", err
	}
	if strings.TrimSpace(body) == "" {
		body = fmt.Sprintf("gitmon: %s succeeded again in %s at %s.", service, env, c.now().UTC().Format(time.RFC3339))
	}
	if err := c.Comment(ctx, k, tail(body, maxText)); err != nil {
		return "", err
	}
	return k, nil
}
