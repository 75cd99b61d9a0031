package config

import (
	"slices"
	"strings"
	"testing"
)

func TestSCMTokenJoinsSecrets(t *testing.T) {
	for _, f := range []string{"testdata/good/scm.yaml", "testdata/good/scm-github-default.yaml"} {
		cfg, _, err := Load(f, optionsFor(t, f))
		if err != nil {
			t.Fatal(err)
		}
		tok := cfg.Integrations.SCM.Token.Value()
		if tok == "" || !slices.Contains(cfg.Secrets(), tok) {
			t.Errorf("%s: the scm token %q is not among Secrets()", f, tok)
		}
		if strings.Contains(cfg.String(), tok) {
			t.Errorf("%s: config printing shows the scm token", f)
		}
	}
}

func TestSCMProjects(t *testing.T) {
	tests := []struct {
		provider, project string
		ok                bool
	}{
		{SCMGitHub, "platform/deployments", true},
		{SCMGitHub, "a.b/c_d-e", true},
		{SCMGitHub, "platform", false},
		{SCMGitHub, "a/b/c", false},
		{SCMGitHub, "a/..", false},
		{SCMGitHub, "a/b?c", false},
		{SCMGitHub, "a/b%2fc", false},
		{SCMGitHub, "a/ b", false},
		{SCMGitea, "owner/repo", true},
		{SCMGitea, "owner/repo.git", false},
		{SCMGitLab, "group/sub/name", true},
		{SCMGitLab, "group/name", true},
		{SCMGitLab, "4211", true},
		{SCMGitLab, "0", false},
		{SCMGitLab, "name", false},
		{SCMGitLab, "group//name", false},
		{SCMGitLab, "group/./name", false},
		{SCMGitLab, strings.Repeat("g/", 25) + "n", false},
	}
	for _, tt := range tests {
		if got := checkProject(tt.provider, tt.project) == ""; got != tt.ok {
			t.Errorf("checkProject(%s, %q) ok = %v, want %v", tt.provider, tt.project, got, tt.ok)
		}
	}
}

func TestPublicURLDefault(t *testing.T) {
	l := &loader{}
	for listen, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"0.0.0.0:80":     "http://localhost:80",
		":9000":          "http://localhost:9000",
		"[::]:9000":      "http://localhost:9000",
		"[::1]:9000":     "http://[::1]:9000",
	} {
		if got := l.publicURL("", listen); got != want {
			t.Errorf("publicURL default for %s = %s, want %s", listen, got, want)
		}
	}
	if got := l.publicURL("https://gitmon.example.com/base/", ""); got != "https://gitmon.example.com/base" {
		t.Errorf("trailing slash kept: %s", got)
	}
}
