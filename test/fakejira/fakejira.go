// Package fakejira is a fake JIRA server for tests. It follows the JSON
// shapes of the documented REST API v2 and of the Jira Service Management
// approvals API, closely enough for gitmon's client:
//
//	GET  /rest/api/2/serverInfo
//	GET  /rest/api/2/issue/{key}            PUT (labels only)
//	POST /rest/api/2/issue
//	GET  /rest/api/2/search                 (Server/DC; 410 Gone on Cloud)
//	GET|POST /rest/api/2/search/jql         (Cloud; 404 on Server)
//	GET  /rest/api/2/user/search?query=|username=
//	POST /rest/api/2/issue/{key}/comment
//	GET|POST /rest/api/2/issue/{key}/transitions
//	GET  /rest/servicedeskapi/request/{key}/approval
//
// Every call but serverInfo needs HTTP basic auth with the configured user
// and token. Tests control it through methods: add issues, users,
// statuses, labels and approvals, make it fail or drop connections, and
// inspect what the client created. An issue's labels are served as
// fields.labels, an array of strings ([] when it has none), as REST API
// v2 and v3 document them.
//
// Tests that can run against a real instance call FromEnv: when
// GITMON_TEST_JIRA_URL is set they get its URL and credentials instead.
package fakejira

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Mode is the deployment the fake imitates.
type Mode int

// Modes.
const (
	ModeServer Mode = iota // Server / Data Center: names, rest/api/2/search
	ModeCloud              // Cloud: accountIds, rest/api/2/search/jql
)

func (m Mode) String() string {
	if m == ModeCloud {
		return "cloud"
	}
	return "server"
}

// Options configure a fake.
type Options struct {
	Mode Mode
	// ContextPath is a prefix such as "/jira"; empty for none.
	ContextPath string
	// User and Token are the basic-auth credentials accepted (defaults:
	// "gitmon" and "token").
	User, Token string
}

// Issue is one issue the fake holds.
type Issue struct {
	ID          string
	Key         string
	Project     string
	IssueType   string
	Summary     string
	Description string
	Status      string // default "To Do"
	Labels      []string
	// Assignee is the accountId (Cloud) or name (Server) of the assignee.
	Assignee string
	Comments []string
	// Created is true for issues the client created through the API.
	Created bool
}

// User is a JIRA user.
type User struct {
	AccountID   string // Cloud
	Name        string // Server
	Email       string
	DisplayName string
}

// Approval is one Jira Service Management approval of a request.
type Approval struct {
	Name          string
	FinalDecision string // approved, declined, pending
	Approvers     []Approver
}

// Approver is one approver's decision.
type Approver struct {
	Email    string
	Decision string // approved, declined, pending
}

// Server is a running fake.
type Server struct {
	// URL is the base URL to configure the client with, including the
	// context path.
	URL  string
	User string
	// Token is the accepted API token.
	Token string

	mode Mode
	srv  *httptest.Server

	mu         sync.Mutex
	issues     []*Issue
	users      []User
	statuses   map[string]string // name → category key
	approvals  map[string][]Approval
	failCode   int
	failPath   string
	down       bool
	calls      map[string]int
	nextID     int
	projectSeq map[string]int
}

// New starts a fake; it is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	f := &Server{
		User: opts.User, Token: opts.Token, mode: opts.Mode,
		statuses: map[string]string{
			"Open": "new", "To Do": "new", "Backlog": "new",
			"In Progress": "indeterminate", "In Review": "indeterminate", "Approved": "indeterminate",
			"Done": "done", "Closed": "done", "Resolved": "done",
		},
		approvals:  map[string][]Approval{},
		calls:      map[string]int{},
		nextID:     10000,
		projectSeq: map[string]int{},
	}
	if f.User == "" {
		f.User = "gitmon"
	}
	if f.Token == "" {
		f.Token = "token"
	}
	prefix := strings.TrimRight(opts.ContextPath, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("/", f.serve)
	var h http.Handler = mux
	if prefix != "" {
		h = http.StripPrefix(prefix, mux)
	}
	f.srv = httptest.NewServer(h)
	f.URL = f.srv.URL + prefix
	t.Cleanup(f.srv.Close)
	return f
}

// FromEnv returns the real instance named by GITMON_TEST_JIRA_URL,
// GITMON_TEST_JIRA_USER and GITMON_TEST_JIRA_TOKEN; ok is false when the
// URL is unset, and the caller uses a fake.
func FromEnv() (url, user, token string, ok bool) {
	url = os.Getenv("GITMON_TEST_JIRA_URL")
	return url, os.Getenv("GITMON_TEST_JIRA_USER"), os.Getenv("GITMON_TEST_JIRA_TOKEN"), url != ""
}

// Mode returns the deployment the fake imitates.
func (f *Server) Mode() Mode { return f.mode }

// Close stops the server: later calls fail to connect.
func (f *Server) Close() { f.srv.Close() }

// AddIssue adds an issue and returns its key. Key defaults to the next
// key of Project (default "OPS").
func (f *Server) AddIssue(is Issue) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addLocked(is)
}

func (f *Server) addLocked(is Issue) string {
	if is.Project == "" {
		is.Project = "OPS"
		if i := strings.LastIndexByte(is.Key, '-'); i > 0 {
			is.Project = is.Key[:i]
		}
	}
	if is.Key == "" {
		f.projectSeq[is.Project]++
		is.Key = fmt.Sprintf("%s-%d", is.Project, f.projectSeq[is.Project])
	}
	if is.Status == "" {
		is.Status = "To Do"
	}
	if is.IssueType == "" {
		is.IssueType = "Task"
	}
	f.nextID++
	is.ID = strconv.Itoa(f.nextID)
	is.Labels = slices.Clone(is.Labels)
	is.Comments = slices.Clone(is.Comments)
	f.issues = append(f.issues, &is)
	return is.Key
}

// SetStatus sets an issue's status.
func (f *Server) SetStatus(key, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if is := f.find(key); is != nil {
		is.Status = status
	}
}

// SetLabels replaces an issue's labels, as an edit in JIRA would while
// the fake runs.
func (f *Server) SetLabels(key string, labels ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if is := f.find(key); is != nil {
		is.Labels = slices.Clone(labels)
	}
}

// AddLabel adds a label to an issue, unless it carries it already
// (labels are case-sensitive when stored).
func (f *Server) AddLabel(key, label string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if is := f.find(key); is != nil && !slices.Contains(is.Labels, label) {
		is.Labels = append(is.Labels, label)
	}
}

// RemoveLabel removes a label from an issue.
func (f *Server) RemoveLabel(key, label string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if is := f.find(key); is != nil {
		is.Labels = slices.DeleteFunc(is.Labels, func(x string) bool { return x == label })
	}
}

// AddStatus declares a status with its category key: new,
// indeterminate or done.
func (f *Server) AddStatus(name, category string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses[name] = category
}

// AddUser adds a user.
func (f *Server) AddUser(u User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users = append(f.users, u)
}

// SetApprovals makes key a service desk request with these approvals.
func (f *Server) SetApprovals(key string, a ...Approval) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.approvals[strings.ToUpper(key)] = slices.Clone(a)
}

// Fail makes every request whose path contains pathContains ("" for all)
// answer code; code 0 stops failing.
func (f *Server) Fail(code int, pathContains string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCode, f.failPath = code, pathContains
}

// SetDown makes the server drop every connection without answering.
func (f *Server) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// Issue returns a copy of the issue, or false.
func (f *Server) Issue(key string) (Issue, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	is := f.find(key)
	if is == nil {
		return Issue{}, false
	}
	return copyIssue(is), true
}

// Issues returns copies of all issues, oldest first.
func (f *Server) Issues() []Issue {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Issue, len(f.issues))
	for i, is := range f.issues {
		out[i] = copyIssue(is)
	}
	return out
}

// CreatedIssues returns the issues created through the API.
func (f *Server) CreatedIssues() []Issue {
	var out []Issue
	for _, is := range f.Issues() {
		if is.Created {
			out = append(out, is)
		}
	}
	return out
}

// Comments returns an issue's comment bodies.
func (f *Server) Comments(key string) []string {
	is, _ := f.Issue(key)
	return is.Comments
}

// Calls counts requests by "METHOD /path" (path without context path and
// query), for example "POST /rest/api/2/issue".
func (f *Server) Calls(methodPath string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[methodPath]
}

func copyIssue(is *Issue) Issue {
	c := *is
	c.Labels = slices.Clone(is.Labels)
	c.Comments = slices.Clone(is.Comments)
	return c
}

func (f *Server) find(key string) *Issue {
	for _, is := range f.issues {
		if strings.EqualFold(is.Key, key) || is.ID == key {
			return is
		}
	}
	return nil
}

func (f *Server) userByRef(ref string) *User {
	if ref == "" {
		return nil
	}
	for i, u := range f.users {
		if (u.AccountID != "" && u.AccountID == ref) || (u.Name != "" && u.Name == ref) || strings.EqualFold(u.Email, ref) {
			return &f.users[i]
		}
	}
	return nil
}

func (f *Server) userJSON(u *User) map[string]any {
	m := map[string]any{"emailAddress": u.Email, "displayName": u.DisplayName, "active": true}
	if f.mode == ModeCloud {
		m["accountId"] = u.AccountID
		m["accountType"] = "atlassian"
	} else {
		m["name"] = u.Name
		m["key"] = u.Name
	}
	return m
}

func (f *Server) category(status string) string {
	if c, ok := f.statuses[status]; ok {
		return c
	}
	return "new"
}

var categoryNames = map[string]string{"new": "To Do", "indeterminate": "In Progress", "done": "Done"}

func (f *Server) fieldValues(is *Issue, field string) []string {
	switch field {
	case "key":
		return []string{is.Key}
	case "project":
		return []string{is.Project}
	case "status":
		return []string{is.Status}
	case "statuscategory":
		c := f.category(is.Status)
		return []string{c, categoryNames[c]}
	case "labels":
		return is.Labels
	case "issuetype":
		return []string{is.IssueType}
	case "summary":
		return []string{is.Summary}
	case "assignee":
		if is.Assignee == "" {
			return nil
		}
		out := []string{is.Assignee}
		if u := f.userByRef(is.Assignee); u != nil {
			out = append(out, u.Email, u.AccountID, u.Name)
		}
		return out
	}
	return nil
}

func (f *Server) issueJSON(is *Issue, fields []string) map[string]any {
	want := func(name string) bool {
		return len(fields) == 0 || slices.Contains(fields, name) || slices.Contains(fields, "*all") || slices.Contains(fields, "*navigable")
	}
	fl := map[string]any{}
	if want("summary") {
		fl["summary"] = is.Summary
	}
	if want("description") {
		fl["description"] = is.Description
	}
	if want("status") {
		c := f.category(is.Status)
		fl["status"] = map[string]any{"name": is.Status, "statusCategory": map[string]any{"key": c, "name": categoryNames[c]}}
	}
	if want("labels") {
		fl["labels"] = append([]string{}, is.Labels...)
	}
	if want("project") {
		fl["project"] = map[string]any{"key": is.Project}
	}
	if want("issuetype") {
		fl["issuetype"] = map[string]any{"name": is.IssueType}
	}
	if want("assignee") {
		if u := f.userByRef(is.Assignee); u != nil {
			fl["assignee"] = f.userJSON(u)
		} else {
			fl["assignee"] = nil
		}
	}
	return map[string]any{"id": is.ID, "key": is.Key, "self": f.URL + "/rest/api/2/issue/" + is.ID, "fields": fl}
}
