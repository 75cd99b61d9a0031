package fakejira

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// get fetches path (with query) from f as the configured user and decodes
// the JSON answer into out.
func get(t *testing.T, f *Server, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(f.User, f.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// TestIssueLabelsJSON: labels are served as REST API v2/v3 document them,
// fields.labels an array of strings, [] for none, left out when the
// fields asked for do not name it; tests change them while it runs.
func TestIssueLabelsJSON(t *testing.T) {
	f := New(t, Options{ContextPath: "/jira"})
	k := f.AddIssue(Issue{Summary: "hotfix", Labels: []string{"emergency-change", "Team-Pay"}})
	plain := f.AddIssue(Issue{Summary: "plain"})
	labels := func(key, fields string) (json.RawMessage, bool) {
		t.Helper()
		var body struct {
			Key    string                     `json:"key"`
			Fields map[string]json.RawMessage `json:"fields"`
		}
		path := "/rest/api/2/issue/" + key
		if fields != "" {
			path += "?fields=" + url.QueryEscape(fields)
		}
		if code := get(t, f, path, &body); code != http.StatusOK || body.Key != key {
			t.Fatalf("GET %s: %d %+v", path, code, body)
		}
		raw, ok := body.Fields["labels"]
		return raw, ok
	}
	for _, tc := range []struct {
		key, fields, want string
	}{
		{k, "", `["emergency-change","Team-Pay"]`},
		{k, "status,labels", `["emergency-change","Team-Pay"]`},
		{k, "*all", `["emergency-change","Team-Pay"]`},
		{plain, "labels", `[]`},
	} {
		if raw, ok := labels(tc.key, tc.fields); !ok || string(raw) != tc.want {
			t.Errorf("%s fields=%q: labels %s (present %v), want %s", tc.key, tc.fields, raw, ok, tc.want)
		}
	}
	if raw, ok := labels(k, "status"); ok {
		t.Errorf("fields=status: labels %s served, want left out", raw)
	}

	f.AddLabel(plain, "sev1")
	f.AddLabel(plain, "sev1")
	f.RemoveLabel(k, "Team-Pay")
	if raw, _ := labels(plain, "labels"); string(raw) != `["sev1"]` {
		t.Errorf("after AddLabel twice: %s", raw)
	}
	if raw, _ := labels(k, "labels"); string(raw) != `["emergency-change"]` {
		t.Errorf("after RemoveLabel: %s", raw)
	}
	f.SetLabels(k)
	if raw, _ := labels(k, "labels"); string(raw) != `[]` {
		t.Errorf("after SetLabels(): %s", raw)
	}
	if is, _ := f.Issue(plain); !slices.Equal(is.Labels, []string{"sev1"}) {
		t.Errorf("Issue(%s).Labels = %q", plain, is.Labels)
	}
}

// TestJQLLabels: labels = X, labels in (...), not in and is EMPTY, with
// values compared case-insensitively as Jira 7.10+ and Cloud search them.
func TestJQLLabels(t *testing.T) {
	for _, mode := range []Mode{ModeServer, ModeCloud} {
		t.Run(mode.String(), func(t *testing.T) {
			f := New(t, Options{Mode: mode})
			a := f.AddIssue(Issue{Summary: "a", Labels: []string{"emergency-change", "team-pay"}})
			b := f.AddIssue(Issue{Summary: "b", Labels: []string{"Sev1"}})
			c := f.AddIssue(Issue{Summary: "c"})
			search := func(jql string) []string {
				t.Helper()
				path := "/rest/api/2/search?jql="
				if mode == ModeCloud {
					path = "/rest/api/2/search/jql?fields=key&jql="
				}
				var body struct {
					Issues []struct {
						Key string `json:"key"`
					} `json:"issues"`
				}
				if code := get(t, f, path+url.QueryEscape(jql), &body); code != http.StatusOK {
					t.Fatalf("%s: HTTP %d", jql, code)
				}
				keys := []string{}
				for _, is := range body.Issues {
					keys = append(keys, is.Key)
				}
				return keys
			}
			for jql, want := range map[string][]string{
				`labels = emergency-change`:                    {a},
				`labels = "EMERGENCY-CHANGE"`:                  {a},
				`labels in (sev1, nothing)`:                    {b},
				`labels in ("emergency-change", "SEV1")`:       {a, b},
				`labels not in (sev1)`:                         {a},
				`labels is EMPTY`:                              {c},
				`labels is not EMPTY AND labels != "team-pay"`: {b},
				`key = ` + a + ` AND labels = team-pay`:        {a},
				`key = ` + c + ` AND labels in (team-pay)`:     {},
			} {
				if got := search(jql); !slices.Equal(got, want) {
					t.Errorf("%s: %v, want %v", jql, got, want)
				}
			}
			f.AddLabel(c, "team-pay")
			if got := search(`labels = team-pay`); !slices.Equal(got, []string{a, c}) {
				t.Errorf("after AddLabel: %v", got)
			}
		})
	}
}
