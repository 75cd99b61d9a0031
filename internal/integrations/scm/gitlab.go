package scm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go"
	"golang.org/x/time/rate"
)

// gitLab is GitLab (gitlab.com or self-managed; /api/v4 is added to the
// URL). Its statuses are named by "name", and GitLab refuses to set a
// pending or running status again over a live one with the same name
// (400 "Cannot transition status via :enqueue from :pending"): that
// answer means the status is already there, so it counts as done.
type gitLab struct {
	base
	api *gitlab.Client
}

var _ Client = (*gitLab)(nil)

func newGitLab(b base, apiURL, token string) (*gitLab, error) {
	api, err := gitlab.NewClient(token, gitlab.WithBaseURL(apiURL), gitlab.WithHTTPClient(b.http), gitlab.WithoutRetries(),
		// No client-side limiter: the outbox and the poll pace the calls,
		// and a 429 comes back as one.
		gitlab.WithCustomLimiter(rate.NewLimiter(rate.Inf, 0)))
	if err != nil {
		return nil, fmt.Errorf("scm: %w", err)
	}
	return &gitLab{base: b, api: api}, nil
}

// pid is a GitLab project: a numeric id, or its path.
func pid(project string) any {
	if n, err := strconv.ParseInt(project, 10, 64); err == nil && n > 0 {
		return n
	}
	return project
}

func (g *gitLab) SetStatus(ctx context.Context, project, sha string, s Status) error {
	const op = "set status"
	if !ValidSHA(sha) {
		return g.invalid(op, "%q is not a commit id", sha)
	}
	state := gitlab.Pending
	switch {
	case s.State == Success:
		state = gitlab.Success
	case s.State == Failure:
		state = gitlab.Failed
	case s.Running:
		state = gitlab.Running
	}
	opt := &gitlab.SetCommitStatusOptions{State: state, Name: gitlab.Ptr(s.Context), Description: gitlab.Ptr(Truncate(s.Description))}
	if s.TargetURL != "" {
		opt.TargetURL = gitlab.Ptr(s.TargetURL)
	}
	_, resp, err := g.api.Commits.SetCommitStatus(pid(project), sha, opt, gitlab.WithContext(ctx))
	if err != nil && resp != nil && resp.StatusCode == http.StatusBadRequest && strings.Contains(err.Error(), "Cannot transition status") {
		return nil // already in that state (a redelivery)
	}
	return g.err(op, resp, err)
}

func (g *gitLab) OpenPullRequests(ctx context.Context, project, base string) ([]PullRequest, error) {
	const op = "list merge requests"
	opt := &gitlab.ListProjectMergeRequestsOptions{State: gitlab.Ptr("opened"), TargetBranch: gitlab.Ptr(base),
		ListOptions: gitlab.ListOptions{PerPage: 100}}
	var out []PullRequest
	for page := int64(1); ; {
		opt.Page = page
		mrs, resp, err := g.api.MergeRequests.ListProjectMergeRequests(pid(project), opt, gitlab.WithContext(ctx))
		if err != nil {
			return nil, g.err(op, resp, err)
		}
		for _, m := range mrs {
			pr := PullRequest{Number: m.IID, HeadSHA: m.SHA, HeadRef: m.SourceBranch, BaseRef: m.TargetBranch, URL: m.WebURL}
			pr.GitRef = fmt.Sprintf("refs/merge-requests/%d/head", pr.Number)
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

func (g *gitLab) CreatePullRequest(ctx context.Context, project, head, base, title, body string) (string, error) {
	const op = "create merge request"
	mr, resp, err := g.api.MergeRequests.CreateMergeRequest(pid(project), &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr(title), Description: gitlab.Ptr(body), SourceBranch: gitlab.Ptr(head), TargetBranch: gitlab.Ptr(base),
	}, gitlab.WithContext(ctx))
	if err == nil {
		return mr.WebURL, nil
	}
	if resp != nil && resp.StatusCode == http.StatusConflict {
		if url, ok := existing(ctx, g, project, head, base); ok {
			return url, nil
		}
	}
	return "", g.err(op, resp, err)
}

func (g *gitLab) err(op string, resp *gitlab.Response, err error) error {
	if err == nil {
		return nil
	}
	status := 0
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	} else if errors.Is(err, gitlab.ErrNotFound) {
		status = http.StatusNotFound
	}
	e := g.fail(op, status, err)
	if status == http.StatusTooManyRequests {
		e.RateLimited = true
		e.RetryAfter = retryAfter(resp.Header)
	}
	return e
}
