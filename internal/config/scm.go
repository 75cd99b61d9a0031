package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/redact"
	"github.com/gitmon-dev/gitmon/internal/yamlx"
)

// SCM providers (integrations.scm.provider).
const (
	SCMGitHub = "github"
	SCMGitLab = "gitlab"
	SCMGitea  = "gitea"
)

// SCMProviders are the Git hosts gitmon sets commit statuses on.
var SCMProviders = []string{SCMGitHub, SCMGitLab, SCMGitea}

// Default API bases of the hosted SCMs; Gitea has none.
const (
	DefaultGitHubAPIURL = "https://api.github.com"
	DefaultGitLabAPIURL = "https://gitlab.com"
)

// SCM is integrations.scm: the Git host's API that commit statuses and
// pull-request checks go to (SPEC §8).
type SCM struct {
	Provider string // one of SCMProviders
	// URL is the API base: https://api.github.com (or a GitHub
	// Enterprise https://host/api/v3), a GitLab instance
	// (https://gitlab.example.com; /api/v4 is added), a Gitea instance
	// (https://gitea.example.com; /api/v1 is added). No trailing slash.
	URL   string
	Token Secret
	// PullRequests turns on the gitmon/plan/<environment> checks of open
	// pull requests into environment branches.
	PullRequests bool
}

// RepositorySCM is a repository's scm: its project on integrations.scm.
type RepositorySCM struct {
	// Project is "owner/name" (GitHub, Gitea), or a GitLab project's
	// path ("group/sub/name") or numeric id.
	Project string
}

type rawSCM struct {
	Provider     string `yaml:"provider"`
	URL          string `yaml:"url"`
	TokenEnv     string `yaml:"token_env"`
	TokenFile    string `yaml:"token_file"`
	PullRequests bool   `yaml:"pull_requests"`
}

type rawRepoSCM struct {
	Project string `yaml:"project"`
}

// scm settles integrations.scm.
func (l *loader) scm(s rawSCM) *SCM {
	p := "integrations.scm"
	out := &SCM{Provider: s.Provider, URL: strings.TrimRight(s.URL, "/"), PullRequests: s.PullRequests}
	switch {
	case s.Provider == "":
		l.errorf(p, "scm needs a provider (%s)", strings.Join(SCMProviders, ", "))
	case !slices.Contains(SCMProviders, s.Provider):
		shown := "this"
		if validName(s.Provider) && len(s.Provider) <= 20 {
			shown = fmt.Sprintf("%q", s.Provider)
		}
		l.errorf(yamlx.Join(p, "provider"), "%s is not an scm provider (%s)", shown, strings.Join(SCMProviders, ", "))
	}
	if out.URL == "" {
		switch s.Provider {
		case SCMGitHub:
			out.URL = DefaultGitHubAPIURL
		case SCMGitLab:
			out.URL = DefaultGitLabAPIURL
		case SCMGitea:
			l.errorf(p, "gitea needs a url, such as https://gitea.example.com")
		}
	} else {
		l.serviceURL(yamlx.Join(p, "url"), s.URL, true)
	}
	out.Token = l.secret(p, "token", s.TokenEnv, s.TokenFile)
	if out.Token.IsZero() && !l.inlineBlocks[p] {
		l.errorf(p, "scm needs a token (token_env or token_file) that may set commit statuses")
	}
	return out
}

var (
	// A GitHub or Gitea owner/name: one '/', each part a name.
	ownerNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}/[A-Za-z0-9._-]{1,100}$`)
	// A part of a GitLab project path, and a numeric project id.
	gitlabPartRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$`)
	gitlabIDRe   = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)
)

// repositorySCM settles every repository's scm, once integrations.scm
// is known: the project must name one on that host.
func (l *loader) repositorySCM(raws []rawRepository, cfg *Config) {
	for i, r := range raws {
		if r.SCM == nil || i >= len(cfg.Repositories) {
			continue
		}
		p := yamlx.Join(yamlx.Index("repositories", i), "scm")
		rs := &RepositorySCM{Project: r.SCM.Project}
		cfg.Repositories[i].SCM = rs
		ig := cfg.Integrations.SCM
		if ig == nil {
			l.errorf(p, "scm needs integrations.scm (provider, url and token) to send statuses to")
		}
		if rs.Project == "" {
			l.errorf(p, "scm needs a project, such as platform/deployments")
			continue
		}
		if ig == nil || !slices.Contains(SCMProviders, ig.Provider) {
			continue
		}
		if msg := checkProject(ig.Provider, rs.Project); msg != "" {
			l.errorf(yamlx.Join(p, "project"), "%s", msg)
		}
	}
}

// checkProject checks a project name for provider.
func checkProject(provider, project string) string {
	shown := "this"
	if len(project) <= 200 && !strings.ContainsFunc(project, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		shown = fmt.Sprintf("%q", project)
	}
	switch provider {
	case SCMGitLab:
		if gitlabIDRe.MatchString(project) || gitlabPath(project) {
			return ""
		}
		return shown + " is not a GitLab project path (group/name, group/sub/name) or numeric id"
	default:
		if ownerNameRe.MatchString(project) && !hasDotPart(project) {
			return ""
		}
		return shown + " is not an owner/name project"
	}
}

// gitlabPath reports whether p is a GitLab project path: group/name or
// group/sub.../name, at most 20 levels.
func gitlabPath(p string) bool {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 21 || hasDotPart(p) {
		return false
	}
	for _, part := range parts {
		if !gitlabPartRe.MatchString(part) {
			return false
		}
	}
	return true
}

// hasDotPart reports a path part that is "." or "..", which would move
// an API path elsewhere.
func hasDotPart(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == "." || part == ".." || strings.HasSuffix(part, ".git") {
			return true
		}
	}
	return false
}

// publicURL settles public_url: an http(s) URL with a host, without
// credentials, query or fragment, without its trailing slash. Its
// default is http://<listen>.
func (l *loader) publicURL(raw, listen string) string {
	if raw == "" {
		// An address that listens everywhere is reached as localhost.
		if host, port, err := net.SplitHostPort(listen); err == nil {
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				return "http://" + net.JoinHostPort("localhost", port)
			}
		}
		return "http://" + listen
	}
	shown := redact.URL(raw)
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		l.errorf("public_url", "%q is not an http(s) URL with a host, such as https://gitmon.example.com", shown)
	case u.User != nil:
		l.errorf("public_url", "%q holds credentials; a public URL is shown to people", shown)
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.Contains(raw, "#"):
		l.errorf("public_url", "%q must have no query or fragment: links are made by adding paths", shown)
	default:
		return strings.TrimRight(raw, "/")
	}
	return raw
}
