// Package fakejenkins is an in-process Jenkins for tests. It follows the
// documented remote access API and its JSON shapes, for the part gitmon
// uses: the crumb issuer, a job's parameter definitions,
// buildWithParameters, queue items, builds, stop, cancelItem and
// consoleText. Queue items and builds advance by polls, not by time, so
// tests are deterministic: a queue item stays queued for QueuePolls GETs
// of it, then becomes a build that stays building for BuildPolls GETs of
// it, then ends with Result.
//
// Every request needs HTTP basic auth with User and Token (401
// otherwise). The server may sit under a context path, as Jenkins does
// behind a reverse proxy (https://ci.example.com/jenkins).
package fakejenkins

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Crumb modes.
const (
	CrumbOK       = iota // the issuer answers with a crumb
	CrumbDisabled        // 404, as with CSRF protection off
	CrumbBroken          // the connection is dropped: a network failure
)

// Forever as QueuePolls keeps queue items queued until cancelled.
const Forever = -1

// Build is a build the fake started (or a queue item it holds).
type Build struct {
	Job      string
	QueueID  int64
	Number   int64 // 0 while queued
	Params   map[string]string
	Building bool
	Result   string // "" while running
	Stopped  bool   // POST stop was received
	// Cancelled is set when the queue item was cancelled before starting.
	Cancelled bool

	queuePolls, buildPolls int
	queueLeft, buildLeft   int
	result                 string
}

// Job is a job of the fake.
type Job struct {
	Name   string
	Class  string   // _class, default hudson.model.FreeStyleProject
	Params []string // names of its string parameters
	next   int64
}

// Server is a fake Jenkins. Change its settings through the setters,
// which are safe while it serves.
type Server struct {
	// URL is the base URL, with the context path, without a trailing slash.
	URL         string
	ContextPath string
	User, Token string

	srv *httptest.Server

	mu         sync.Mutex
	jobs       map[string]*Job
	queue      map[int64]*Build
	nextQueue  int64
	queuePolls int
	buildPolls int
	result     string
	console    string
	crumbMode  int
	down       bool // every connection is dropped unanswered
	fail       int  // status every request gets when non-zero
	requests   []string
}

// Crumb is the crumb the issuer hands out.
const Crumb = "fake-crumb-0123456789"

// New starts a fake Jenkins at the root of its host.
func New(user, token string) *Server { return NewWithContextPath(user, token, "") }

// NewWithContextPath starts a fake Jenkins under a context path such as
// "/jenkins".
func NewWithContextPath(user, token, contextPath string) *Server {
	s := &Server{
		ContextPath: strings.TrimSuffix(contextPath, "/"),
		User:        user,
		Token:       token,
		jobs:        map[string]*Job{},
		queue:       map[int64]*Build{},
		nextQueue:   100,
		queuePolls:  1,
		buildPolls:  2,
		result:      "SUCCESS",
		console:     "Started by remote API\nFinished\n",
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + s.ContextPath
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddJob adds a job defining the given string parameters.
func (s *Server) AddJob(name string, params ...string) *Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := &Job{Name: name, Class: "hudson.model.FreeStyleProject", Params: params}
	s.jobs[name] = j
	return j
}

// SetQueuePolls sets how many GETs a new queue item stays queued for
// (Forever: until cancelled).
func (s *Server) SetQueuePolls(n int) { s.mu.Lock(); s.queuePolls = n; s.mu.Unlock() }

// SetBuildPolls sets how many GETs a new build stays building for.
func (s *Server) SetBuildPolls(n int) { s.mu.Lock(); s.buildPolls = n; s.mu.Unlock() }

// SetResult sets the result new builds end with.
func (s *Server) SetResult(r string) { s.mu.Lock(); s.result = r; s.mu.Unlock() }

// SetConsole sets the console text of every build.
func (s *Server) SetConsole(c string) { s.mu.Lock(); s.console = c; s.mu.Unlock() }

// SetCrumbMode sets how the crumb issuer behaves (CrumbOK...).
func (s *Server) SetCrumbMode(m int) { s.mu.Lock(); s.crumbMode = m; s.mu.Unlock() }

// SetDown makes the server drop every connection without an answer, as
// a Jenkins that is down behind a proxy or restarting does (false: answer
// again). Dropped requests are still listed by Requests.
func (s *Server) SetDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

// SetJobParams replaces the parameters a job defines (none: a job without
// parameters).
func (s *Server) SetJobParams(name string, params ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[name]; j != nil {
		j.Params = params
	}
}

// SetFail makes every authenticated request answer status
// (0 turns it off).
func (s *Server) SetFail(status int) { s.mu.Lock(); s.fail = status; s.mu.Unlock() }

// Builds returns copies of every queue item and build of a job, oldest
// first.
func (s *Server) Builds(job string) []Build {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Build
	for _, b := range s.queue {
		if b.Job == job {
			c := *b
			c.Params = map[string]string{}
			for k, v := range b.Params {
				c.Params[k] = v
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].QueueID < out[k].QueueID })
	return out
}

// Requests returns "METHOD path" of every request received, in order,
// with the context path removed.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

var (
	reJob        = regexp.MustCompile(`^/job/([^/]+)/api/json$`)
	reTrigger    = regexp.MustCompile(`^/job/([^/]+)/(buildWithParameters|build)$`)
	reBuild      = regexp.MustCompile(`^/job/([^/]+)/(\d+)/api/json$`)
	reStop       = regexp.MustCompile(`^/job/([^/]+)/(\d+)/stop$`)
	reConsole    = regexp.MustCompile(`^/job/([^/]+)/(\d+)/consoleText$`)
	reQueueItem  = regexp.MustCompile(`^/queue/item/(\d+)/api/json$`)
	reCancelItem = regexp.MustCompile(`^/queue/cancelItem$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, s.ContextPath)
	if !ok || (path != "" && path[0] != '/') {
		http.NotFound(w, r)
		return
	}
	path = strings.TrimSuffix(path, "/") // gojenkins adds a slash to GETs
	if path == "" {
		path = "/"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+path)

	if s.down {
		drop(w)
		return
	}
	if path == "/crumbIssuer/api/json" {
		switch s.crumbMode {
		case CrumbDisabled:
			http.NotFound(w, r)
			return
		case CrumbBroken:
			drop(w)
			return
		}
	}
	u, p, hasAuth := r.BasicAuth()
	if !hasAuth || subtle.ConstantTimeCompare([]byte(u), []byte(s.User)) != 1 ||
		subtle.ConstantTimeCompare([]byte(p), []byte(s.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="Jenkins"`)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, "<html><body>Invalid password/token for user</body></html>")
		return
	}
	if s.fail != 0 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(s.fail)
		fmt.Fprint(w, "<html><body>Oops! A problem occurred while processing the request.</body></html>")
		return
	}
	if h := r.Header.Get("Jenkins-Crumb"); h != "" && h != Crumb {
		http.Error(w, "No valid crumb was included in the request", http.StatusForbidden)
		return
	}

	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost
	switch m := match(path); {
	case get && (path == "/" || path == "/api/json"):
		s.json(w, map[string]any{"_class": "hudson.model.Hudson", "mode": "NORMAL", "nodeDescription": "fake", "useCrumbs": s.crumbMode == CrumbOK, "jobs": s.jobList()})
	case get && path == "/crumbIssuer/api/json":
		s.json(w, map[string]any{"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": Crumb, "crumbRequestField": "Jenkins-Crumb"})
	case get && m(reJob) != nil:
		s.getJob(w, m(reJob)[1])
	case post && m(reTrigger) != nil:
		s.trigger(w, r, m(reTrigger)[1])
	case get && m(reQueueItem) != nil:
		id, _ := strconv.ParseInt(m(reQueueItem)[1], 10, 64)
		s.getQueueItem(w, id)
	case post && m(reCancelItem) != nil:
		id, _ := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
		if b := s.queue[id]; b != nil && b.Number == 0 && !b.Cancelled {
			b.Cancelled = true
		}
		w.WriteHeader(http.StatusNoContent)
	case get && m(reBuild) != nil:
		sm := m(reBuild)
		s.getBuild(w, sm[1], sm[2])
	case post && m(reStop) != nil:
		sm := m(reStop)
		b := s.build(sm[1], sm[2])
		if b == nil {
			http.NotFound(w, r)
			return
		}
		b.Stopped = true
		if b.Building {
			b.Building, b.Result = false, "ABORTED"
		}
		w.WriteHeader(http.StatusOK)
	case get && m(reConsole) != nil:
		sm := m(reConsole)
		if s.build(sm[1], sm[2]) == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
		fmt.Fprint(w, s.console)
	default:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<html><body>Not Found</body></html>")
	}
}

// drop closes the connection without an answer: a network failure.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func match(path string) func(*regexp.Regexp) []string {
	return func(re *regexp.Regexp) []string { return re.FindStringSubmatch(path) }
}

func (s *Server) json(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) jobURL(name string) string { return s.URL + "/job/" + url.PathEscape(name) + "/" }

func (s *Server) jobList() []map[string]any {
	var out []map[string]any
	for _, j := range s.jobs {
		out = append(out, map[string]any{"_class": j.Class, "name": j.Name, "url": s.jobURL(j.Name)})
	}
	return out
}

func (s *Server) getJob(w http.ResponseWriter, name string) {
	j := s.jobs[name]
	if j == nil {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<html><body>Not Found</body></html>")
		return
	}
	var defs []map[string]any
	for _, p := range j.Params {
		defs = append(defs, map[string]any{
			"_class":                "hudson.model.StringParameterDefinition",
			"name":                  p,
			"type":                  "StringParameterDefinition",
			"defaultParameterValue": map[string]any{"_class": "hudson.model.StringParameterValue", "name": p, "value": ""},
		})
	}
	props := []map[string]any{{"_class": "jenkins.model.BuildDiscarderProperty"}}
	if len(defs) > 0 {
		props = append(props, map[string]any{"_class": "hudson.model.ParametersDefinitionProperty", "parameterDefinitions": defs})
	}
	inQueue := false
	for _, b := range s.queue {
		if b.Job == name && b.Number == 0 && !b.Cancelled {
			inQueue = true
		}
	}
	s.json(w, map[string]any{
		"_class": j.Class, "name": j.Name, "fullName": j.Name, "url": s.jobURL(j.Name),
		"buildable": true, "inQueue": inQueue, "nextBuildNumber": j.next + 1, "property": props,
	})
}

func (s *Server) trigger(w http.ResponseWriter, r *http.Request, name string) {
	j := s.jobs[name]
	if j == nil {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Jenkins keeps only the parameters the job defines, and merges a
	// trigger into a queued item of the same job with the same parameters.
	params := map[string]string{}
	for _, p := range j.Params {
		if v, ok := r.Form[p]; ok && len(v) > 0 {
			params[p] = v[0]
		}
	}
	for _, b := range s.queue {
		if b.Job == name && b.Number == 0 && !b.Cancelled && sameParams(b.Params, params) {
			w.Header().Set("Location", fmt.Sprintf("%s/queue/item/%d/", s.URL, b.QueueID))
			w.WriteHeader(http.StatusCreated)
			return
		}
	}
	s.nextQueue++
	b := &Build{Job: name, QueueID: s.nextQueue, Params: params, queueLeft: s.queuePolls, buildLeft: s.buildPolls, result: s.result}
	s.queue[b.QueueID] = b
	w.Header().Set("Location", fmt.Sprintf("%s/queue/item/%d/", s.URL, b.QueueID))
	w.WriteHeader(http.StatusCreated)
}

func sameParams(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (s *Server) getQueueItem(w http.ResponseWriter, id int64) {
	b := s.queue[id]
	if b == nil {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<html><body>Not Found</body></html>")
		return
	}
	task := map[string]any{"_class": s.jobs[b.Job].Class, "name": b.Job, "url": s.jobURL(b.Job)}
	self := fmt.Sprintf("queue/item/%d/", id)
	switch {
	case b.Cancelled:
		s.json(w, map[string]any{"_class": "hudson.model.Queue$LeftItem", "id": id, "cancelled": true, "executable": nil, "task": task, "url": self})
		return
	case b.Number == 0 && (b.queueLeft == Forever || b.queueLeft > 0):
		if b.queueLeft > 0 {
			b.queueLeft--
		}
		s.json(w, map[string]any{"_class": "hudson.model.Queue$WaitingItem", "id": id, "blocked": false, "buildable": false, "stuck": false, "why": "In the quiet period.", "task": task, "url": self})
		return
	case b.Number == 0:
		j := s.jobs[b.Job]
		j.next++
		b.Number, b.Building = j.next, true
	}
	s.json(w, map[string]any{
		"_class": "hudson.model.Queue$LeftItem", "id": id, "cancelled": false, "task": task, "url": self,
		"executable": map[string]any{"_class": "hudson.model.FreeStyleBuild", "number": b.Number, "url": s.buildURL(b)},
	})
}

func (s *Server) buildURL(b *Build) string { return fmt.Sprintf("%s%d/", s.jobURL(b.Job), b.Number) }

func (s *Server) build(job, number string) *Build {
	n, _ := strconv.ParseInt(number, 10, 64)
	for _, b := range s.queue {
		if b.Job == job && b.Number == n && n > 0 {
			return b
		}
	}
	return nil
}

func (s *Server) getBuild(w http.ResponseWriter, job, number string) {
	b := s.build(job, number)
	if b == nil {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<html><body>Not Found</body></html>")
		return
	}
	if b.Building {
		if b.buildLeft > 0 {
			b.buildLeft--
		} else {
			b.Building, b.Result = false, b.result
		}
	}
	var result any
	if b.Result != "" {
		result = b.Result
	}
	var params []map[string]any
	for k, v := range b.Params {
		params = append(params, map[string]any{"_class": "hudson.model.StringParameterValue", "name": k, "value": v})
	}
	s.json(w, map[string]any{
		"_class": "hudson.model.FreeStyleBuild", "number": b.Number, "id": strconv.FormatInt(b.Number, 10),
		"building": b.Building, "result": result, "url": s.buildURL(b), "queueId": b.QueueID,
		"actions": []map[string]any{{"_class": "hudson.model.ParametersAction", "parameters": params}},
	})
}
