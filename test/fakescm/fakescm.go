// Package fakescm is a fake Git host API for tests: the parts of GitHub's,
// GitLab's and Gitea's REST APIs that gitmon's SCM integration uses, with
// the JSON shapes, auth headers, pagination and errors each vendor
// documents.
//
//	GitHub (API base = URL):
//	  POST /repos/{o}/{r}/statuses/{sha}        {state, target_url, description, context} → 201
//	  GET  /repos/{o}/{r}/commits/{sha}/statuses
//	  GET  /repos/{o}/{r}/pulls?state=open&base=&per_page=&page=   (Link: rel="next")
//	  POST /repos/{o}/{r}/pulls                 {title, head, base, body} → 201; 422 when one exists
//	  Authorization: Bearer <token> or token <token>; else 401 "Bad credentials"
//	GitLab (API base = URL + /api/v4):
//	  POST /projects/{id}/statuses/{sha}        {state, name|context, target_url, description} → 201;
//	       400 "Cannot transition status via :enqueue from :pending" when the same pending/running is set again
//	  GET  /projects/{id}/repository/commits/{sha}/statuses
//	  GET  /projects/{id}/merge_requests?state=opened&target_branch=&per_page=&page=   (X-Next-Page)
//	  POST /projects/{id}/merge_requests        {source_branch, target_branch, title, description} → 201; 409 when one exists
//	  PRIVATE-TOKEN: <token> (or Authorization: Bearer); else 401 "401 Unauthorized"
//	Gitea (API base = URL + /api/v1):
//	  POST /repos/{o}/{r}/statuses/{sha}        {state, target_url, description, context} → 201
//	  GET  /repos/{o}/{r}/statuses/{sha}
//	  GET  /repos/{o}/{r}/pulls?state=open&page=&limit=             (Link: rel="next"; no base filter)
//	  POST /repos/{o}/{r}/pulls                 {head, base, title, body} → 201; 409 when one exists
//	  Authorization: token <token>; else 401
//
// {id} is a numeric id or a URL-encoded path (group%2Fname). Tests add
// pull requests, move their heads, make calls fail for a while, and read
// what the fake received. Tests that can run against a real instance
// call FromEnv first (GITMON_SCM_<PROVIDER>_URL, _TOKEN, _PROJECT, _SHA,
// _BASE, _HEAD).
package fakescm

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Providers.
const (
	GitHub = "github"
	GitLab = "gitlab"
	Gitea  = "gitea"
)

// Providers lists every provider the fake imitates.
var Providers = []string{GitHub, GitLab, Gitea}

// Operations, as Calls and Fail name them.
const (
	OpSetStatus    = "set_status"
	OpListStatuses = "list_statuses"
	OpListPulls    = "list_pulls"
	OpCreatePull   = "create_pull"
)

// Status is one commit status the fake received, in the vendor's words
// (GitLab's "failed" and "running" stay as they are).
type Status struct {
	Project     string
	SHA         string
	State       string
	Context     string
	Description string
	TargetURL   string
}

// Pull is an open pull (merge) request.
type Pull struct {
	Number  int64
	Head    string // source branch
	HeadSHA string
	Base    string // target branch
	Title   string
	Body    string
	Closed  bool
}

// Server is a fake of one provider's API.
type Server struct {
	provider string
	token    string
	srv      *httptest.Server

	mu       sync.Mutex
	statuses []Status
	pulls    map[string][]*Pull // by project as the client names it
	next     int64
	calls    map[string]int
	authFail int
	fail     func(op string) int
}

// New starts a fake of provider that accepts token. It stops when the
// test ends.
func New(t testing.TB, provider, token string) *Server {
	t.Helper()
	if !slices.Contains(Providers, provider) {
		t.Fatalf("fakescm: unknown provider %q", provider)
	}
	s := &Server{provider: provider, token: token, pulls: map[string][]*Pull{}, calls: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is what integrations.scm.url is set to for this fake.
func (s *Server) URL() string { return s.srv.URL }

// Provider is the provider the fake imitates.
func (s *Server) Provider() string { return s.provider }

// Close stops the server: later calls fail to connect.
func (s *Server) Close() { s.srv.Close() }

// OpenPull adds an open pull request to project and returns its number.
func (s *Server) OpenPull(project string, p Pull) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	p.Number = s.next
	s.pulls[project] = append(s.pulls[project], &p)
	return p.Number
}

// MoveHead sets the head commit of a pull request (a push to its branch).
func (s *Server) MoveHead(project string, number int64, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pulls[project] {
		if p.Number == number {
			p.HeadSHA = sha
		}
	}
}

// ClosePull closes a pull request.
func (s *Server) ClosePull(project string, number int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pulls[project] {
		if p.Number == number {
			p.Closed = true
		}
	}
}

// Pulls returns project's pull requests, open and closed.
func (s *Server) Pulls(project string) []Pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Pull, 0, len(s.pulls[project]))
	for _, p := range s.pulls[project] {
		out = append(out, *p)
	}
	return out
}

// Statuses returns every status received, in order.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses)
}

// Latest returns the newest status of (sha, context).
func (s *Server) Latest(sha, context string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latestLocked("", sha, context)
}

func (s *Server) latestLocked(project, sha, context string) (Status, bool) {
	for i := len(s.statuses) - 1; i >= 0; i-- {
		st := s.statuses[i]
		if st.SHA == sha && strings.EqualFold(st.Context, context) && (project == "" || st.Project == project) {
			return st, true
		}
	}
	return Status{}, false
}

// Calls counts the calls of op that were answered (auth failures
// included; failures that Fail injected too).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// AuthFailures counts the requests refused for their credentials.
func (s *Server) AuthFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authFail
}

// Fail makes calls answer with the HTTP status fn returns for their
// operation (0: answer normally). Fail(nil) restores normal answers.
func (s *Server) Fail(fn func(op string) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fn
}

// Target is an SCM project tests talk to: a fake, or a real instance.
type Target struct {
	Provider string
	URL      string // integrations.scm.url
	Token    string
	Project  string
	SHA      string // a commit of Project
	Base     string // a branch of Project
	Head     string // a branch of Project with commits Base lacks, for creating a pull request ("" skips that)
	Fake     *Server
}

// FromEnv returns the real instance of provider named by
// GITMON_SCM_<PROVIDER>_URL (with _TOKEN, _PROJECT, _SHA, _BASE and
// _HEAD), or else a new fake with a project "acme/deployments" (GitLab:
// "acme/infra/deployments") seeded with one open pull request into
// "staging".
func FromEnv(t testing.TB, provider string) Target {
	t.Helper()
	p := "GITMON_SCM_" + strings.ToUpper(provider) + "_"
	if url := os.Getenv(p + "URL"); url != "" {
		tg := Target{Provider: provider, URL: url, Token: os.Getenv(p + "TOKEN"), Project: os.Getenv(p + "PROJECT"),
			SHA: os.Getenv(p + "SHA"), Base: os.Getenv(p + "BASE"), Head: os.Getenv(p + "HEAD")}
		if tg.Token == "" || tg.Project == "" || tg.SHA == "" || tg.Base == "" {
			t.Fatalf("%sURL is set: %sTOKEN, %sPROJECT, %sSHA and %sBASE are needed too", p, p, p, p, p)
		}
		return tg
	}
	const token = "fake-scm-token-0123456789"
	f := New(t, provider, token)
	tg := Target{Provider: provider, URL: f.URL(), Token: token, Project: "acme/deployments",
		SHA: strings.Repeat("ab", 20), Base: "staging", Head: "promote-qa", Fake: f}
	if provider == GitLab {
		tg.Project = "acme/infra/deployments"
	}
	f.OpenPull(tg.Project, Pull{Head: "feature", HeadSHA: strings.Repeat("cd", 20), Base: tg.Base, Title: "a change"})
	return tg
}

func (s *Server) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	if s.fail != nil {
		return s.fail(op)
	}
	return 0
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.mu.Lock()
		s.authFail++
		s.mu.Unlock()
		msg := "Bad credentials"
		if s.provider == GitLab {
			msg = "401 Unauthorized"
		}
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": msg})
		return
	}
	switch s.provider {
	case GitHub:
		s.github(w, r, r.URL.EscapedPath())
	case GitLab:
		s.gitlab(w, r, strings.TrimPrefix(r.URL.EscapedPath(), "/api/v4"))
	case Gitea:
		s.gitea(w, r, strings.TrimPrefix(r.URL.EscapedPath(), "/api/v1"))
	}
}

func (s *Server) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	switch s.provider {
	case GitHub:
		return auth == "Bearer "+s.token || auth == "token "+s.token
	case GitLab:
		return r.Header.Get("PRIVATE-TOKEN") == s.token || auth == "Bearer "+s.token
	default:
		return auth == "token "+s.token
	}
}

// failed answers an injected failure of op, if there is one.
func (s *Server) failed(w http.ResponseWriter, op string) bool {
	code := s.count(op)
	if code == 0 {
		return false
	}
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, map[string]string{"message": fmt.Sprintf("injected %d", code)})
	return true
}
