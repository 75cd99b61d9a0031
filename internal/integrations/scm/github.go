package scm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-github/v72/github"
)

// gitHub is GitHub (github.com or Enterprise Server, whose API base is
// https://host/api/v3).
type gitHub struct {
	base
	api *github.Client
}

var _ Client = (*gitHub)(nil)

func newGitHub(b base, apiURL, token string) (*gitHub, error) {
	api := github.NewClient(b.http).WithAuthToken(token)
	u, err := url.Parse(apiURL + "/")
	if err != nil {
		return nil, fmt.Errorf("scm: %w", err)
	}
	api.BaseURL = u
	return &gitHub{base: b, api: api}, nil
}

func (g *gitHub) SetStatus(ctx context.Context, project, sha string, s Status) error {
	const op = "set status"
	owner, name, ok := ownerName(project)
	if !ok {
		return g.invalid(op, "project %q is not owner/name", project)
	}
	if !ValidSHA(sha) {
		return g.invalid(op, "%q is not a commit id", sha)
	}
	st := &github.RepoStatus{State: github.Ptr(string(s.State)), Context: github.Ptr(s.Context),
		Description: github.Ptr(Truncate(s.Description))}
	if s.TargetURL != "" {
		st.TargetURL = github.Ptr(s.TargetURL)
	}
	_, resp, err := g.api.Repositories.CreateStatus(ctx, owner, name, sha, st)
	return g.err(op, resp, err)
}

func (g *gitHub) OpenPullRequests(ctx context.Context, project, base string) ([]PullRequest, error) {
	const op = "list pull requests"
	owner, name, ok := ownerName(project)
	if !ok {
		return nil, g.invalid(op, "project %q is not owner/name", project)
	}
	opts := &github.PullRequestListOptions{State: "open", Base: base, ListOptions: github.ListOptions{PerPage: 100}}
	var out []PullRequest
	for page := 1; ; {
		opts.Page = page
		prs, resp, err := g.api.PullRequests.List(ctx, owner, name, opts)
		if err != nil {
			return nil, g.err(op, resp, err)
		}
		for _, p := range prs {
			pr := PullRequest{Number: int64(p.GetNumber()), HeadSHA: p.GetHead().GetSHA(), HeadRef: p.GetHead().GetRef(),
				BaseRef: p.GetBase().GetRef(), URL: p.GetHTMLURL()}
			pr.GitRef = fmt.Sprintf("refs/pull/%d/head", pr.Number)
			if keep(pr) && pr.BaseRef == base && len(out) < MaxPullRequests {
				out = append(out, pr)
			}
		}
		if resp.NextPage <= page || len(out) >= MaxPullRequests {
			return out, nil
		}
		page = resp.NextPage
	}
}

func (g *gitHub) CreatePullRequest(ctx context.Context, project, head, base, title, body string) (string, error) {
	const op = "create pull request"
	owner, name, ok := ownerName(project)
	if !ok {
		return "", g.invalid(op, "project %q is not owner/name", project)
	}
	pr, resp, err := g.api.PullRequests.Create(ctx, owner, name, &github.NewPullRequest{
		Title: github.Ptr(title), Head: github.Ptr(head), Base: github.Ptr(base), Body: github.Ptr(body)})
	if err == nil {
		return pr.GetHTMLURL(), nil
	}
	e := g.err(op, resp, err)
	var se *Error
	if errors.As(e, &se) && se.Status == http.StatusUnprocessableEntity {
		// "A pull request already exists": hand back that one.
		if url, ok := existing(ctx, g, project, head, base); ok {
			return url, nil
		}
	}
	return "", e
}

// existing finds the open pull request from head into base.
func existing(ctx context.Context, c Client, project, head, base string) (string, bool) {
	prs, err := c.OpenPullRequests(ctx, project, base)
	if err != nil {
		return "", false
	}
	for _, p := range prs {
		if p.HeadRef == head {
			return p.URL, true
		}
	}
	return "", false
}

// err turns a go-github error into an *Error: rate limits (GitHub's are
// 403s as well as 429s) are retryable with the wait they name.
func (g *gitHub) err(op string, resp *github.Response, err error) error {
	if err == nil {
		return nil
	}
	status := 0
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	}
	e := g.fail(op, status, err)
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	switch {
	case errors.As(err, &rl):
		e.RateLimited = true
		e.RetryAfter = max(time.Second, rl.Rate.Reset.Sub(g.now()))
	case errors.As(err, &abuse):
		e.RateLimited = true
		e.RetryAfter = time.Minute
		if abuse.RetryAfter != nil {
			e.RetryAfter = max(time.Second, *abuse.RetryAfter)
		}
	case status == http.StatusTooManyRequests && resp != nil:
		e.RateLimited = true
		e.RetryAfter = retryAfter(resp.Header)
	}
	return e
}
