package fakejira

// The HTTP side of the fake: one handler per documented endpoint, under
// the server's lock.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func jiraError(w http.ResponseWriter, code int, msgs []string, errs map[string]string) {
	if msgs == nil {
		msgs = []string{}
	}
	if errs == nil {
		errs = map[string]string{}
	}
	writeJSON(w, code, map[string]any{"errorMessages": msgs, "errors": errs})
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[r.Method+" "+r.URL.Path]++
	if f.down {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if f.failCode != 0 && strings.Contains(r.URL.Path, f.failPath) {
		if f.failCode == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		jiraError(w, f.failCode, []string{fmt.Sprintf("fake failure %d", f.failCode)}, nil)
		return
	}
	p := r.URL.Path
	if p == "/rest/api/2/serverInfo" && r.Method == http.MethodGet {
		dt := "Server"
		if f.mode == ModeCloud {
			dt = "Cloud"
		}
		writeJSON(w, 200, map[string]any{"baseUrl": f.URL, "version": "9.12.0", "deploymentType": dt, "serverTime": time.Now().Format("2006-01-02T15:04:05.000-0700")})
		return
	}
	if u, pw, ok := r.BasicAuth(); !ok || u != f.User || pw != f.Token {
		w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
		jiraError(w, 401, []string{"You are not authenticated. Authentication required to perform this operation."}, nil)
		return
	}
	switch {
	case p == "/rest/api/2/issue" && r.Method == http.MethodPost:
		f.create(w, r)
	case p == "/rest/api/2/search" && r.Method == http.MethodGet:
		if f.mode == ModeCloud {
			jiraError(w, http.StatusGone, []string{"The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."}, nil)
			return
		}
		f.search(w, r, false)
	case p == "/rest/api/2/search/jql" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		if f.mode != ModeCloud {
			jiraError(w, 404, []string{"null for uri: " + p}, nil)
			return
		}
		f.search(w, r, true)
	case p == "/rest/api/2/user/search" && r.Method == http.MethodGet:
		f.userSearch(w, r)
	case strings.HasPrefix(p, "/rest/api/2/issue/"):
		f.issueRoutes(w, r, strings.Split(strings.TrimPrefix(p, "/rest/api/2/issue/"), "/"))
	case strings.HasPrefix(p, "/rest/servicedeskapi/request/") && strings.HasSuffix(p, "/approval") && r.Method == http.MethodGet:
		key := strings.TrimSuffix(strings.TrimPrefix(p, "/rest/servicedeskapi/request/"), "/approval")
		f.approval(w, r, key)
	default:
		jiraError(w, 404, []string{"null for uri: " + p}, nil)
	}
}

func (f *Server) issueRoutes(w http.ResponseWriter, r *http.Request, parts []string) {
	is := f.find(parts[0])
	if is == nil {
		jiraError(w, 404, []string{"Issue does not exist or you do not have permission to see it."}, nil)
		return
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		var fields []string
		if v := r.URL.Query().Get("fields"); v != "" {
			fields = strings.Split(v, ",")
		}
		writeJSON(w, 200, f.issueJSON(is, fields))
	case len(parts) == 1 && r.Method == http.MethodPut:
		var body struct {
			Fields struct {
				Labels *[]string `json:"labels"`
			} `json:"fields"`
			Update struct {
				Labels []map[string]string `json:"labels"`
			} `json:"update"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			jiraError(w, 400, []string{"Unexpected body: " + err.Error()}, nil)
			return
		}
		if body.Fields.Labels != nil {
			is.Labels = slices.Clone(*body.Fields.Labels)
		}
		for _, op := range body.Update.Labels {
			if l, ok := op["add"]; ok {
				if strings.ContainsAny(l, " \t") {
					jiraError(w, 400, nil, map[string]string{"labels": "The label '" + l + "' contains spaces which is invalid."})
					return
				}
				if !slices.Contains(is.Labels, l) {
					is.Labels = append(is.Labels, l)
				}
			}
			if l, ok := op["remove"]; ok {
				is.Labels = slices.DeleteFunc(is.Labels, func(x string) bool { return x == l })
			}
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 2 && parts[1] == "comment" && r.Method == http.MethodPost:
		var body struct {
			Body string `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Body == "" {
			jiraError(w, 400, nil, map[string]string{"comment": "Comment body can not be empty!"})
			return
		}
		is.Comments = append(is.Comments, body.Body)
		id := strconv.Itoa(len(is.Comments) + 20000)
		writeJSON(w, 201, map[string]any{"id": id, "body": body.Body, "self": f.URL + "/rest/api/2/issue/" + is.ID + "/comment/" + id})
	case len(parts) == 2 && parts[1] == "transitions" && r.Method == http.MethodGet:
		names := make([]string, 0, len(f.statuses))
		for n := range f.statuses {
			names = append(names, n)
		}
		slices.Sort(names)
		var ts []map[string]any
		for i, n := range names {
			if n == is.Status {
				continue
			}
			c := f.category(n)
			ts = append(ts, map[string]any{"id": strconv.Itoa(11 + i), "name": n,
				"to": map[string]any{"name": n, "statusCategory": map[string]any{"key": c, "name": categoryNames[c]}}})
		}
		writeJSON(w, 200, map[string]any{"transitions": ts})
	case len(parts) == 2 && parts[1] == "transitions" && r.Method == http.MethodPost:
		var body struct {
			Transition struct {
				ID string `json:"id"`
			} `json:"transition"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		names := make([]string, 0, len(f.statuses))
		for n := range f.statuses {
			names = append(names, n)
		}
		slices.Sort(names)
		i, err := strconv.Atoi(body.Transition.ID)
		if err != nil || i-11 < 0 || i-11 >= len(names) {
			jiraError(w, 400, nil, map[string]string{"transition": "Transition id '" + body.Transition.ID + "' is not valid for this issue."})
			return
		}
		is.Status = names[i-11]
		w.WriteHeader(http.StatusNoContent)
	default:
		jiraError(w, 405, []string{"method not allowed"}, nil)
	}
}

func (f *Server) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Fields struct {
			Project struct {
				Key string `json:"key"`
			} `json:"project"`
			IssueType struct {
				Name string `json:"name"`
			} `json:"issuetype"`
			Summary     string   `json:"summary"`
			Description string   `json:"description"`
			Labels      []string `json:"labels"`
			Assignee    *struct {
				AccountID string `json:"accountId"`
				Name      string `json:"name"`
			} `json:"assignee"`
		} `json:"fields"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		jiraError(w, 400, []string{"Unexpected body: " + err.Error()}, nil)
		return
	}
	fl := body.Fields
	errs := map[string]string{}
	if fl.Project.Key == "" {
		errs["project"] = "project is required"
	}
	if fl.IssueType.Name == "" {
		errs["issuetype"] = "issue type is required"
	}
	if fl.Summary == "" {
		errs["summary"] = "You must specify a summary of the issue."
	}
	if len(fl.Summary) > 255 {
		errs["summary"] = "Summary must be less than 255 characters."
	}
	for _, l := range fl.Labels {
		if strings.ContainsAny(l, " \t") || len(l) > 255 {
			errs["labels"] = "The label '" + l + "' contains spaces which is invalid."
		}
	}
	assignee := ""
	if a := fl.Assignee; a != nil {
		ref := a.Name
		if f.mode == ModeCloud {
			ref = a.AccountID
			if ref == "" && a.Name != "" {
				errs["assignee"] = "'accountId' must be the only user identifying query parameter in GDPR strict mode."
			}
		}
		if ref != "" {
			if u := f.userByRef(ref); u == nil || (f.mode == ModeCloud && u.AccountID != ref) || (f.mode == ModeServer && u.Name != ref) {
				errs["assignee"] = "User '" + ref + "' does not exist."
			}
			assignee = ref
		}
	}
	if len(errs) > 0 {
		jiraError(w, 400, nil, errs)
		return
	}
	key := f.addLocked(Issue{Project: fl.Project.Key, IssueType: fl.IssueType.Name, Summary: fl.Summary,
		Description: fl.Description, Labels: fl.Labels, Assignee: assignee, Created: true})
	is := f.find(key)
	writeJSON(w, 201, map[string]any{"id": is.ID, "key": is.Key, "self": f.URL + "/rest/api/2/issue/" + is.ID})
}

func (f *Server) search(w http.ResponseWriter, r *http.Request, cloud bool) {
	q := r.URL.Query()
	params := struct {
		JQL           string   `json:"jql"`
		Fields        []string `json:"fields"`
		MaxResults    int      `json:"maxResults"`
		StartAt       int      `json:"startAt"`
		NextPageToken string   `json:"nextPageToken"`
	}{JQL: q.Get("jql"), NextPageToken: q.Get("nextPageToken")}
	if v := q.Get("fields"); v != "" {
		params.Fields = strings.Split(v, ",")
	}
	params.MaxResults, _ = strconv.Atoi(q.Get("maxResults"))
	params.StartAt, _ = strconv.Atoi(q.Get("startAt"))
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&params); err != nil {
			jiraError(w, 400, []string{"Unexpected body: " + err.Error()}, nil)
			return
		}
	}
	if cloud {
		params.StartAt, _ = strconv.Atoi(params.NextPageToken)
		if params.NextPageToken != "" && params.StartAt <= 0 {
			jiraError(w, 400, []string{"The provided next page token is invalid or expired."}, nil)
			return
		}
		if params.JQL == "" {
			jiraError(w, 400, []string{"Unbounded JQL queries are not allowed here. Please add a search restriction to your query."}, nil)
			return
		}
	}
	if params.MaxResults <= 0 {
		params.MaxResults = 50
	}
	pred, err := parseJQL(params.JQL)
	if err != nil {
		jiraError(w, 400, []string{"Error in the JQL Query: " + err.Error()}, nil)
		return
	}
	var hits []*Issue
	for _, is := range f.issues {
		if pred(f, is) {
			hits = append(hits, is)
		}
	}
	fields := params.Fields
	if cloud && len(fields) == 0 {
		fields = []string{"id"}
	}
	total := len(hits)
	start := min(params.StartAt, total)
	end := min(start+params.MaxResults, total)
	out := []map[string]any{}
	for _, is := range hits[start:end] {
		out = append(out, f.issueJSON(is, fields))
	}
	if cloud {
		resp := map[string]any{"issues": out, "isLast": end >= total}
		if end < total {
			resp["nextPageToken"] = strconv.Itoa(end)
		}
		writeJSON(w, 200, resp)
		return
	}
	writeJSON(w, 200, map[string]any{"startAt": start, "maxResults": params.MaxResults, "total": total, "issues": out})
}

func (f *Server) userSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("query")
	if f.mode == ModeServer && r.URL.Query().Get("username") != "" {
		q = r.URL.Query().Get("username")
	}
	if q == "" {
		jiraError(w, 400, []string{"The query parameter 'query' is required."}, nil)
		return
	}
	lq := strings.ToLower(q)
	out := []map[string]any{}
	for i := range f.users {
		u := &f.users[i]
		if strings.Contains(strings.ToLower(u.Email), lq) || strings.Contains(strings.ToLower(u.DisplayName), lq) ||
			(f.mode == ModeServer && strings.Contains(strings.ToLower(u.Name), lq)) {
			out = append(out, f.userJSON(u))
		}
	}
	writeJSON(w, 200, out)
}

func (f *Server) approval(w http.ResponseWriter, r *http.Request, key string) {
	is := f.find(key)
	approvals, ok := f.approvals[strings.ToUpper(key)]
	if is == nil || !ok {
		jiraError(w, 404, []string{"The request could not be found, or you do not have permission to view it."}, nil)
		return
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("start"))
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 50
	}
	start = min(max(start, 0), len(approvals))
	end := min(start+limit, len(approvals))
	values := []map[string]any{}
	for i, a := range approvals[start:end] {
		var aps []map[string]any
		for _, ap := range a.Approvers {
			u := f.userByRef(ap.Email)
			if u == nil {
				u = &User{Email: ap.Email, AccountID: "acc-" + ap.Email, Name: ap.Email, DisplayName: ap.Email}
			}
			aps = append(aps, map[string]any{"approver": f.userJSON(u), "approverDecision": ap.Decision})
		}
		values = append(values, map[string]any{"id": strconv.Itoa(start + i + 1), "name": a.Name,
			"finalDecision": a.FinalDecision, "canAnswerApproval": false, "approvers": aps})
	}
	writeJSON(w, 200, map[string]any{"size": len(values), "start": start, "limit": limit,
		"isLastPage": end >= len(approvals), "values": values})
}
