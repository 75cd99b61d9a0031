package scm

import (
	"context"
	"fmt"
	"net/http"

	"code.gitea.io/sdk/gitea"
)

// gitEa is Gitea (and Forgejo; /api/v1 is added to the URL). The SDK
// keeps one context per client, so each call builds its own (cheap: it
// holds a few fields, and the server's version is never asked for). Its
// pull-request list has no base filter, so pulls into other branches are
// dropped here.
type gitEa struct {
	base
	url, token string
}

var _ Client = (*gitEa)(nil)

func newGitea(b base, apiURL, token string) *gitEa {
	return &gitEa{base: b, url: apiURL, token: token}
}

func (g *gitEa) client(ctx context.Context) (*gitea.Client, error) {
	return gitea.NewClient(g.url, gitea.SetToken(g.token), gitea.SetHTTPClient(g.http), gitea.SetContext(ctx),
		gitea.SetGiteaVersion(""), gitea.SetUserAgent("gitmon"))
}

func (g *gitEa) SetStatus(ctx context.Context, project, sha string, s Status) error {
	const op = "set status"
	owner, name, ok := ownerName(project)
	if !ok {
		return g.invalid(op, "project %q is not owner/name", project)
	}
	if !ValidSHA(sha) {
		return g.invalid(op, "%q is not a commit id", sha)
	}
	c, err := g.client(ctx)
	if err != nil {
		return g.fail(op, 0, err)
	}
	state := gitea.StatusPending
	switch s.State {
	case Success:
		state = gitea.StatusSuccess
	case Failure:
		state = gitea.StatusFailure
	}
	_, resp, err := c.CreateStatus(owner, name, sha, gitea.CreateStatusOption{State: state, TargetURL: s.TargetURL,
		Description: Truncate(s.Description), Context: s.Context})
	return g.err(op, resp, err)
}

// giteaPage is the page size asked for: Gitea's default MAX_RESPONSE_ITEMS.
const giteaPage = 50

func (g *gitEa) OpenPullRequests(ctx context.Context, project, base string) ([]PullRequest, error) {
	const op = "list pull requests"
	owner, name, ok := ownerName(project)
	if !ok {
		return nil, g.invalid(op, "project %q is not owner/name", project)
	}
	c, err := g.client(ctx)
	if err != nil {
		return nil, g.fail(op, 0, err)
	}
	var out []PullRequest
	for page, pages := 1, 0; ; pages++ {
		prs, resp, err := c.ListRepoPullRequests(owner, name, gitea.ListPullRequestsOptions{State: gitea.StateOpen,
			ListOptions: gitea.ListOptions{Page: page, PageSize: giteaPage}})
		if err != nil {
			return nil, g.err(op, resp, err)
		}
		for _, p := range prs {
			if p == nil || p.Head == nil || p.Base == nil {
				continue
			}
			pr := PullRequest{Number: p.Index, HeadSHA: p.Head.Sha, HeadRef: p.Head.Ref, BaseRef: p.Base.Ref, URL: p.HTMLURL}
			pr.GitRef = fmt.Sprintf("refs/pull/%d/head", pr.Number)
			if keep(pr) && pr.BaseRef == base && len(out) < MaxPullRequests {
				out = append(out, pr)
			}
		}
		// Gitea filters nothing by base: bound the pages read, not only
		// the pulls kept.
		if resp == nil || resp.NextPage <= page || len(out) >= MaxPullRequests || pages >= 4*MaxPullRequests/giteaPage {
			return out, nil
		}
		page = resp.NextPage
	}
}

func (g *gitEa) CreatePullRequest(ctx context.Context, project, head, base, title, body string) (string, error) {
	const op = "create pull request"
	owner, name, ok := ownerName(project)
	if !ok {
		return "", g.invalid(op, "project %q is not owner/name", project)
	}
	c, err := g.client(ctx)
	if err != nil {
		return "", g.fail(op, 0, err)
	}
	pr, resp, err := c.CreatePullRequest(owner, name, gitea.CreatePullRequestOption{Head: head, Base: base, Title: title, Body: body})
	if err == nil {
		return pr.HTMLURL, nil
	}
	if resp != nil && resp.StatusCode == http.StatusConflict {
		if url, ok := existing(ctx, g, project, head, base); ok {
			return url, nil
		}
	}
	return "", g.err(op, resp, err)
}

func (g *gitEa) err(op string, resp *gitea.Response, err error) error {
	if err == nil {
		return nil
	}
	status := 0
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	}
	e := g.fail(op, status, err)
	if status == http.StatusTooManyRequests {
		e.RateLimited = true
		e.RetryAfter = retryAfter(resp.Header)
	}
	return e
}
