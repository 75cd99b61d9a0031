package scm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/integrations/scm"
	"github.com/gitmon-dev/gitmon/test/fakescm"
)

func client(t *testing.T, provider, url, token string) scm.Client {
	t.Helper()
	c, err := scm.New(config.SCM{Provider: provider, URL: url, Token: config.NewSecret(token)}, scm.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// readBack lists sha's statuses through the provider's own read API (so
// that the same check works on a real instance): context → state and
// description of the newest, with GitLab's words mapped to gitmon's.
func readBack(t *testing.T, tg fakescm.Target, sha string) map[string][2]string {
	t.Helper()
	var u, hdr, val string
	switch tg.Provider {
	case fakescm.GitHub:
		u, hdr, val = fmt.Sprintf("%s/repos/%s/commits/%s/statuses?per_page=100", tg.URL, tg.Project, sha), "Authorization", "Bearer "+tg.Token
	case fakescm.GitLab:
		u, hdr, val = fmt.Sprintf("%s/api/v4/projects/%s/repository/commits/%s/statuses?per_page=100", tg.URL, url.PathEscape(tg.Project), sha), "PRIVATE-TOKEN", tg.Token
	case fakescm.Gitea:
		u, hdr, val = fmt.Sprintf("%s/api/v1/repos/%s/statuses/%s?limit=50&sort=recentupdate", tg.URL, tg.Project, sha), "Authorization", "token "+tg.Token
	}
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, u, nil)
	req.Header.Set(hdr, val)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reading statuses back: HTTP %d", resp.StatusCode)
	}
	var list []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, s := range list { // newest first
		ctxName, _ := s["context"].(string)
		if tg.Provider == fakescm.GitLab {
			ctxName, _ = s["name"].(string)
		}
		state, _ := s["state"].(string)
		if state == "" {
			state, _ = s["status"].(string)
		}
		state = map[string]string{"failed": "failure", "running": "pending"}[state] + state
		if strings.HasPrefix(state, "failure") {
			state = "failure"
		} else if strings.HasPrefix(state, "pending") {
			state = "pending"
		}
		desc, _ := s["description"].(string)
		if _, seen := out[ctxName]; !seen {
			out[ctxName] = [2]string{state, desc}
		}
	}
	return out
}

// TestContract runs one suite against each provider: the fake, or the
// real instance GITMON_SCM_<PROVIDER>_URL names.
func TestContract(t *testing.T) {
	for _, p := range fakescm.Providers {
		t.Run(p, func(t *testing.T) {
			tg := fakescm.FromEnv(t, p)
			c := client(t, p, tg.URL, tg.Token)
			context := fmt.Sprintf("gitmon/test/%d", time.Now().UnixNano())
			long := strings.Repeat("ü", 300)
			for _, st := range []scm.Status{
				{State: scm.Pending, Context: context, Description: "waiting for a window", TargetURL: "https://gitmon.example.com/records/1"},
				{State: scm.Pending, Running: true, Context: context, Description: "running deploy"},
				{State: scm.Pending, Running: true, Context: context, Description: "running deploy"}, // a redelivery
				{State: scm.Failure, Context: context, Description: long, TargetURL: "https://gitmon.example.com/records/1"},
			} {
				if err := c.SetStatus(ctx(t), tg.Project, tg.SHA, st); err != nil {
					t.Fatalf("SetStatus %s: %v", st.State, err)
				}
			}
			if f := tg.Fake; f != nil && p == fakescm.GitLab && (f.Calls(fakescm.OpSetStatus) != 4 || len(f.Statuses()) != 3) {
				t.Errorf("GitLab got %d calls and kept %d statuses, want 4 and 3 (it refuses running again over running)",
					f.Calls(fakescm.OpSetStatus), len(f.Statuses()))
			}
			got := readBack(t, tg, tg.SHA)[context]
			if got[0] != "failure" || len([]rune(got[1])) != scm.MaxDescription || !strings.HasSuffix(got[1], "…") {
				t.Errorf("newest status = %q (%d characters), want failure cut to %d characters", got, len([]rune(got[1])), scm.MaxDescription)
			}
			if err := c.SetStatus(ctx(t), tg.Project, tg.SHA, scm.Status{State: scm.Success, Context: context, Description: "deployed"}); err != nil {
				t.Fatal(err)
			}
			if got := readBack(t, tg, tg.SHA)[context]; got != [2]string{"success", "deployed"} {
				t.Errorf("after success: %q", got)
			}

			prs, err := c.OpenPullRequests(ctx(t), tg.Project, tg.Base)
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range prs {
				if pr.BaseRef != tg.Base || !scm.ValidSHA(pr.HeadSHA) || pr.Number <= 0 || pr.URL == "" {
					t.Errorf("listed %+v", pr)
				}
				want := fmt.Sprintf("refs/pull/%d/head", pr.Number)
				if p == fakescm.GitLab {
					want = fmt.Sprintf("refs/merge-requests/%d/head", pr.Number)
				}
				if pr.GitRef != want {
					t.Errorf("GitRef %q, want %q", pr.GitRef, want)
				}
			}
			if tg.Fake != nil && len(prs) != 1 {
				t.Errorf("listed %d pull requests, want the fake's one", len(prs))
			}
			if tg.Head == "" {
				return // a real instance without a branch to open one from
			}
			url, err := c.CreatePullRequest(ctx(t), tg.Project, tg.Head, tg.Base, "gitmon: promote", "body")
			if err != nil || url == "" {
				t.Fatalf("CreatePullRequest: %q, %v", url, err)
			}
			again, err := c.CreatePullRequest(ctx(t), tg.Project, tg.Head, tg.Base, "gitmon: promote", "body")
			if err != nil || again != url {
				t.Errorf("opening it again: %q, %v; want the open one, %q", again, err, url)
			}
		})
	}
}

// TestErrorsClassified: a 4xx other than 429 is permanent; 5xx, 429 and
// rate limits are not, and say how long to wait.
func TestErrorsClassified(t *testing.T) {
	for _, p := range fakescm.Providers {
		t.Run(p, func(t *testing.T) {
			f := fakescm.New(t, p, "tok")
			project := "acme/deployments"
			sha := strings.Repeat("a", 40)
			st := scm.Status{State: scm.Success, Context: "gitmon/qa/x"}
			c := client(t, p, f.URL(), "wrong")
			err := c.SetStatus(ctx(t), project, sha, st)
			var se *scm.Error
			if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || !se.Permanent() {
				t.Errorf("bad token: %v, want a permanent 401", err)
			}
			c = client(t, p, f.URL(), "tok")
			for code, permanent := range map[int]bool{500: false, 502: false, 404: true, 422: true, 429: false} {
				f.Fail(func(string) int { return code })
				err := c.SetStatus(ctx(t), project, sha, st)
				if !errors.As(err, &se) || se.Status != code || se.Permanent() != permanent {
					t.Errorf("HTTP %d: %v, permanent %v; want permanent %v", code, err, se != nil && se.Permanent(), permanent)
				}
				if code == 429 && (!se.RateLimited || se.RetryAfter != time.Second) {
					t.Errorf("429: rate limited %v, retry after %s; want 1s", se.RateLimited, se.RetryAfter)
				}
				_, err = c.OpenPullRequests(ctx(t), project, "qa")
				if !errors.As(err, &se) || se.Permanent() != permanent {
					t.Errorf("listing, HTTP %d: %v", code, err)
				}
			}
			f.Fail(nil)
			if err := c.SetStatus(ctx(t), "not a project", sha, st); p != fakescm.GitLab && !errors.Is(err, scm.ErrInvalidRequest) {
				t.Errorf("a project that is not owner/name: %v", err)
			}
			if err := c.SetStatus(ctx(t), project, "HEAD", st); !errors.Is(err, scm.ErrInvalidRequest) {
				t.Errorf("a ref that is not a commit id: %v", err)
			}
			f.Close()
			err = c.SetStatus(ctx(t), project, sha, st)
			if !errors.As(err, &se) || se.Status != 0 || se.Permanent() {
				t.Errorf("no server: %v, want a retryable error", err)
			}
		})
	}
}

// TestGitHubRateLimit403: GitHub answers a spent rate limit with 403 and
// X-RateLimit-Remaining: 0; that is retried at the reset, not given up.
func TestGitHubRateLimit403(t *testing.T) {
	reset := time.Now().Add(90 * time.Second).Unix()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(reset))
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message": "API rate limit exceeded"}`)
	}))
	defer srv.Close()
	c := client(t, fakescm.GitHub, srv.URL, "tok")
	err := c.SetStatus(ctx(t), "a/b", strings.Repeat("a", 40), scm.Status{State: scm.Pending})
	var se *scm.Error
	if !errors.As(err, &se) || se.Permanent() || !se.RateLimited || se.RetryAfter < 60*time.Second || se.RetryAfter > 91*time.Second {
		t.Fatalf("rate-limited 403: %v (%+v), want a retry at the reset", err, se)
	}
}

// TestTokenNeverInErrors: a host that echoes the request's headers in
// its error answer does not put the token into gitmon's errors.
func TestTokenNeverInErrors(t *testing.T) {
	const token = "scm-secret-token-canary"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"message": "bad: " + r.Header.Get("Authorization") + r.Header.Get("PRIVATE-TOKEN")})
	}))
	defer srv.Close()
	for _, p := range fakescm.Providers {
		c := client(t, p, srv.URL, token)
		err := c.SetStatus(ctx(t), "a/b", strings.Repeat("a", 40), scm.Status{State: scm.Success})
		if err == nil || strings.Contains(err.Error(), token) {
			t.Errorf("%s: %v", p, err)
		}
		_, err = c.CreatePullRequest(ctx(t), "a/b", "h", "b", "t", "b")
		if err == nil || strings.Contains(err.Error(), token) {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestNoRedirectToAnotherHost: the token never follows a redirect to
// another host.
func TestNoRedirectToAnotherHost(t *testing.T) {
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("PRIVATE-TOKEN") != "" {
			leaked.Add(1)
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	for _, p := range fakescm.Providers {
		c := client(t, p, srv.URL, "tok")
		_ = c.SetStatus(ctx(t), "a/b", strings.Repeat("a", 40), scm.Status{State: scm.Success})
	}
	if n := leaked.Load(); n > 0 {
		t.Fatalf("the token reached another host %d times", n)
	}
}

// TestHostileListing: a host listing junk (no SHA, a negative number,
// another base) and a next page for ever is read within bounds.
func TestHostileListing(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		page := r.URL.Query().Get("page")
		next := fmt.Sprint(atoi(page) + 1)
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?page=%s>; rel="next"`, r.Host, r.URL.Path, next))
		w.Header().Set("X-Next-Page", next)
		w.Header().Set("Content-Type", "application/json")
		n := atoi(page)*10 + 1
		var list []map[string]any
		for i := 0; i < 10; i++ {
			list = append(list, map[string]any{"number": n + i, "iid": n + i, "sha": strings.Repeat("b", 40), "target_branch": "qa",
				"head": map[string]any{"sha": strings.Repeat("b", 40), "ref": "x"}, "base": map[string]any{"ref": "qa"}})
		}
		list = append(list, map[string]any{"number": -1, "iid": -1, "head": map[string]any{"sha": "HEAD"}, "base": map[string]any{"ref": "qa"}},
			map[string]any{"number": 5, "iid": 5, "sha": "zz", "head": map[string]any{"sha": "not-a-sha"}, "base": map[string]any{"ref": "qa"}},
			map[string]any{"number": 6, "iid": 6, "sha": strings.Repeat("c", 40), "target_branch": "prod",
				"head": map[string]any{"sha": strings.Repeat("c", 40)}, "base": map[string]any{"ref": "prod"}})
		json.NewEncoder(w).Encode(list)
	}))
	defer srv.Close()
	for _, p := range fakescm.Providers {
		calls.Store(0)
		prs, err := client(t, p, srv.URL, "tok").OpenPullRequests(ctx(t), "a/b", "qa")
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(prs) == 0 || len(prs) > scm.MaxPullRequests || calls.Load() > 101 {
			t.Errorf("%s: %d pull requests in %d calls, want %d within bounds", p, len(prs), calls.Load(), scm.MaxPullRequests)
		}
		for _, pr := range prs {
			if pr.Number <= 0 || !scm.ValidSHA(pr.HeadSHA) || pr.BaseRef != "qa" {
				t.Fatalf("%s: kept %+v", p, pr)
			}
		}
	}
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return max(n, 1)
}

func TestTruncate(t *testing.T) {
	if got := scm.Truncate("a\nb\t c"); got != "a b c" {
		t.Errorf("%q", got)
	}
	s := strings.Repeat("é", 141)
	if got := []rune(scm.Truncate(s)); len(got) != 140 || got[139] != '…' {
		t.Errorf("%d runes", len(got))
	}
	if got := scm.Truncate(strings.Repeat("x", 140)); len(got) != 140 {
		t.Errorf("140 characters were cut: %d", len(got))
	}
}
