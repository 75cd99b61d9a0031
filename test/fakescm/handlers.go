package fakescm

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var shaRe = regexp.MustCompile(`^[0-9a-f]{40}$|^[0-9a-f]{64}$`)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// params reads a request's parameters from its JSON or form body, and
// its query.
func params(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		out[k] = v[0]
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || len(body) == 0 {
		return out, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		vals, err := url.ParseQuery(string(body))
		for k, v := range vals {
			out[k] = v[0]
		}
		return out, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return out, err
	}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case nil:
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// page reads page and per-page (GitHub and GitLab per_page, Gitea limit),
// with each vendor's default and cap.
func (s *Server) page(r *http.Request) (page, per int) {
	q := r.URL.Query()
	page, _ = strconv.Atoi(q.Get("page"))
	if page < 1 {
		page = 1
	}
	key, def, maxPer := "per_page", 30, 100
	switch s.provider {
	case GitLab:
		def = 20
	case Gitea:
		key, def, maxPer = "limit", 30, 50
	}
	per, _ = strconv.Atoi(q.Get(key))
	if per < 1 {
		per = def
	}
	return page, min(per, maxPer)
}

// open returns project's open pulls into base ("" any), oldest first.
func (s *Server) open(project, base string) []Pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Pull
	for _, p := range s.pulls[project] {
		if !p.Closed && (base == "" || p.Base == base) {
			out = append(out, *p)
		}
	}
	return out
}

// paginate cuts list to the page asked for and sets the next-page
// headers each vendor documents.
func paginate[T any](s *Server, w http.ResponseWriter, r *http.Request, list []T) []T {
	page, per := s.page(r)
	from := min((page-1)*per, len(list))
	to := min(from+per, len(list))
	if to < len(list) {
		switch s.provider {
		case GitLab:
			w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
		default:
			u := *r.URL
			q := u.Query()
			q.Set("page", strconv.Itoa(page+1))
			u.RawQuery = q.Encode()
			w.Header().Set("Link", fmt.Sprintf(`<http://%s%s>; rel="next"`, r.Host, u.RequestURI()))
		}
	}
	if s.provider == GitLab {
		w.Header().Set("X-Page", strconv.Itoa(page))
		w.Header().Set("X-Per-Page", strconv.Itoa(per))
	}
	return list[from:to]
}

func (s *Server) webURL(project string, n int64) string {
	switch s.provider {
	case GitLab:
		return fmt.Sprintf("%s/%s/-/merge_requests/%d", s.srv.URL, project, n)
	case Gitea:
		return fmt.Sprintf("%s/%s/pulls/%d", s.srv.URL, project, n)
	}
	return fmt.Sprintf("%s/%s/pull/%d", s.srv.URL, project, n)
}

// record stores a status; for GitLab it refuses what GitLab's state
// machine refuses: pending or running again over a pending or running
// status of the same name (enqueue/run), or running → pending.
func (s *Server) record(st Status) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider == GitLab {
		if last, ok := s.latestLocked(st.Project, st.SHA, st.Context); ok {
			event := map[string]string{"pending": "enqueue", "running": "run"}[st.State]
			live := last.State == "pending" || last.State == "running"
			if event != "" && live && (st.State == last.State || st.State == "pending") {
				return http.StatusBadRequest, map[string]string{"message": fmt.Sprintf(
					"Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via \"%s\")", event, last.State, event)}
			}
		}
	}
	s.statuses = append(s.statuses, st)
	return http.StatusCreated, nil
}

// statusesOf returns the statuses of (project, sha), newest first.
func (s *Server) statusesOf(project, sha string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for i := len(s.statuses) - 1; i >= 0; i-- {
		if st := s.statuses[i]; st.Project == project && st.SHA == sha {
			out = append(out, st)
		}
	}
	return out
}

// createPull opens a pull request unless one is open for head into base.
func (s *Server) createPull(project, head, base, title, body string) (Pull, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pulls[project] {
		if !p.Closed && p.Head == head && p.Base == base {
			return *p, false
		}
	}
	s.next++
	p := &Pull{Number: s.next, Head: head, HeadSHA: strings.Repeat("e", 40), Base: base, Title: title, Body: body}
	s.pulls[project] = append(s.pulls[project], p)
	return *p, true
}

// splitRepo parses "/repos/{o}/{r}/rest" (GitHub, Gitea).
func splitRepo(path string) (project string, rest []string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) < 4 || parts[0] != "repos" {
		return "", nil, false
	}
	o, err1 := url.PathUnescape(parts[1])
	r, err2 := url.PathUnescape(parts[2])
	if err1 != nil || err2 != nil {
		return "", nil, false
	}
	return o + "/" + r, parts[3:], true
}

func (s *Server) github(w http.ResponseWriter, r *http.Request, path string) {
	project, rest, ok := splitRepo(path)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	switch {
	case r.Method == http.MethodPost && len(rest) == 2 && rest[0] == "statuses":
		if s.failed(w, OpSetStatus) {
			return
		}
		p, err := params(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
			return
		}
		if !slices.Contains([]string{"error", "failure", "pending", "success"}, p["state"]) || !shaRe.MatchString(rest[1]) {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
				"errors": []map[string]string{{"resource": "Status", "field": "state", "code": "invalid"}}})
			return
		}
		if len([]rune(p["description"])) > 140 {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
				"errors": []map[string]string{{"resource": "Status", "code": "custom", "field": "description",
					"message": "description is too long (maximum is 140 characters)"}}})
			return
		}
		st := Status{Project: project, SHA: rest[1], State: p["state"], Context: cmpOr(p["context"], "default"),
			Description: p["description"], TargetURL: p["target_url"]}
		code, _ := s.record(st)
		writeJSON(w, code, map[string]any{"id": len(s.Statuses()), "state": st.State, "context": st.Context,
			"description": st.Description, "target_url": st.TargetURL})
	case r.Method == http.MethodGet && len(rest) == 3 && rest[0] == "commits" && rest[2] == "statuses":
		if s.failed(w, OpListStatuses) {
			return
		}
		var out []map[string]any
		for _, st := range s.statusesOf(project, rest[1]) {
			out = append(out, map[string]any{"state": st.State, "context": st.Context, "description": st.Description, "target_url": st.TargetURL})
		}
		writeJSON(w, http.StatusOK, paginate(s, w, r, orEmpty(out)))
	case len(rest) == 1 && rest[0] == "pulls":
		s.pullsHandler(w, r, project)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}

func (s *Server) gitea(w http.ResponseWriter, r *http.Request, path string) {
	project, rest, ok := splitRepo(path)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	switch {
	case len(rest) == 2 && rest[0] == "statuses" && r.Method == http.MethodPost:
		if s.failed(w, OpSetStatus) {
			return
		}
		p, err := params(r)
		sha, _ := url.QueryUnescape(rest[1])
		if err != nil || !slices.Contains([]string{"pending", "success", "error", "failure", "warning"}, p["state"]) || !shaRe.MatchString(sha) {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "invalid state or sha"})
			return
		}
		st := Status{Project: project, SHA: sha, State: p["state"], Context: p["context"], Description: p["description"], TargetURL: p["target_url"]}
		code, _ := s.record(st)
		writeJSON(w, code, map[string]any{"id": len(s.Statuses()), "status": st.State, "context": st.Context,
			"description": st.Description, "target_url": st.TargetURL})
	case len(rest) == 2 && rest[0] == "statuses" && r.Method == http.MethodGet:
		if s.failed(w, OpListStatuses) {
			return
		}
		var out []map[string]any
		for _, st := range s.statusesOf(project, rest[1]) {
			out = append(out, map[string]any{"status": st.State, "context": st.Context, "description": st.Description, "target_url": st.TargetURL})
		}
		writeJSON(w, http.StatusOK, paginate(s, w, r, orEmpty(out)))
	case len(rest) == 1 && rest[0] == "pulls":
		s.pullsHandler(w, r, project)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}

// pullsHandler serves GitHub's and Gitea's pulls: list (GitHub filters
// by base, Gitea does not) and create.
func (s *Server) pullsHandler(w http.ResponseWriter, r *http.Request, project string) {
	switch r.Method {
	case http.MethodGet:
		if s.failed(w, OpListPulls) {
			return
		}
		q := r.URL.Query()
		if st := q.Get("state"); st != "" && st != "open" {
			writeJSON(w, http.StatusOK, []any{})
			return
		}
		base := ""
		if s.provider == GitHub {
			base = q.Get("base")
		}
		var out []map[string]any
		for _, p := range s.open(project, base) {
			out = append(out, map[string]any{"number": p.Number, "state": "open", "title": p.Title, "body": p.Body,
				"html_url": s.webURL(project, p.Number),
				"head":     map[string]any{"ref": p.Head, "sha": p.HeadSHA, "label": strings.Split(project, "/")[0] + ":" + p.Head},
				"base":     map[string]any{"ref": p.Base, "label": strings.Split(project, "/")[0] + ":" + p.Base}})
		}
		writeJSON(w, http.StatusOK, paginate(s, w, r, orEmpty(out)))
	case http.MethodPost:
		if s.failed(w, OpCreatePull) {
			return
		}
		p, err := params(r)
		if err != nil || p["head"] == "" || p["base"] == "" || p["title"] == "" {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
			return
		}
		head := p["head"]
		if i := strings.IndexByte(head, ':'); i >= 0 {
			head = head[i+1:]
		}
		pr, created := s.createPull(project, head, p["base"], p["title"], p["body"])
		if !created {
			if s.provider == GitHub {
				writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
					"errors": []map[string]string{{"resource": "PullRequest", "code": "custom",
						"message": "A pull request already exists for " + strings.Split(project, "/")[0] + ":" + head + "."}}})
			} else {
				writeJSON(w, http.StatusConflict, map[string]string{"message": "pull request already exists for these targets"})
			}
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"number": pr.Number, "state": "open", "title": pr.Title,
			"html_url": s.webURL(project, pr.Number), "head": map[string]any{"ref": pr.Head, "sha": pr.HeadSHA},
			"base": map[string]any{"ref": pr.Base}})
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "Method Not Allowed"})
	}
}

func (s *Server) gitlab(w http.ResponseWriter, r *http.Request, path string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) < 3 || parts[0] != "projects" {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not Found"})
		return
	}
	project, err := url.PathUnescape(parts[1])
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Project Not Found"})
		return
	}
	rest := parts[2:]
	switch {
	case r.Method == http.MethodPost && len(rest) == 2 && rest[0] == "statuses":
		if s.failed(w, OpSetStatus) {
			return
		}
		p, err := params(r)
		if err != nil || !slices.Contains([]string{"pending", "running", "success", "failed", "canceled"}, p["state"]) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "state does not have a valid value"})
			return
		}
		if !shaRe.MatchString(rest[1]) {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 References Not Found"})
			return
		}
		st := Status{Project: project, SHA: rest[1], State: p["state"], Context: cmpOr(p["name"], p["context"], "default"),
			Description: p["description"], TargetURL: p["target_url"]}
		code, body := s.record(st)
		if body != nil {
			writeJSON(w, code, body)
			return
		}
		writeJSON(w, code, map[string]any{"id": len(s.Statuses()), "sha": st.SHA, "status": st.State, "name": st.Context,
			"description": st.Description, "target_url": st.TargetURL})
	case r.Method == http.MethodGet && len(rest) == 4 && rest[0] == "repository" && rest[1] == "commits" && rest[3] == "statuses":
		if s.failed(w, OpListStatuses) {
			return
		}
		var out []map[string]any
		for _, st := range s.statusesOf(project, rest[2]) {
			out = append(out, map[string]any{"sha": st.SHA, "status": st.State, "name": st.Context, "description": st.Description, "target_url": st.TargetURL})
		}
		writeJSON(w, http.StatusOK, paginate(s, w, r, orEmpty(out)))
	case len(rest) == 1 && rest[0] == "merge_requests" && r.Method == http.MethodGet:
		if s.failed(w, OpListPulls) {
			return
		}
		q := r.URL.Query()
		if st := q.Get("state"); st != "" && st != "opened" {
			writeJSON(w, http.StatusOK, []any{})
			return
		}
		var out []map[string]any
		for _, p := range s.open(project, q.Get("target_branch")) {
			out = append(out, map[string]any{"id": 1000 + p.Number, "iid": p.Number, "state": "opened", "title": p.Title,
				"description": p.Body, "source_branch": p.Head, "target_branch": p.Base, "sha": p.HeadSHA,
				"web_url": s.webURL(project, p.Number)})
		}
		writeJSON(w, http.StatusOK, paginate(s, w, r, orEmpty(out)))
	case len(rest) == 1 && rest[0] == "merge_requests" && r.Method == http.MethodPost:
		if s.failed(w, OpCreatePull) {
			return
		}
		p, err := params(r)
		if err != nil || p["source_branch"] == "" || p["target_branch"] == "" || p["title"] == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "title, source_branch, target_branch are missing"})
			return
		}
		pr, created := s.createPull(project, p["source_branch"], p["target_branch"], p["title"], p["description"])
		if !created {
			writeJSON(w, http.StatusConflict, map[string][]string{"message": {
				fmt.Sprintf("Another open merge request already exists for this source branch: !%d", pr.Number)}})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"id": 1000 + pr.Number, "iid": pr.Number, "state": "opened",
			"title": pr.Title, "source_branch": pr.Head, "target_branch": pr.Base, "sha": pr.HeadSHA,
			"web_url": s.webURL(project, pr.Number)})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not Found"})
	}
}

func cmpOr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func orEmpty(l []map[string]any) []map[string]any {
	if l == nil {
		return []map[string]any{}
	}
	return l
}
