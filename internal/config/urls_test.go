package config

import (
	"strings"
	"testing"
)

func TestCheckRepoURL(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		resolved string
		kind     urlKind
		problem  string // a substring; "" means valid
	}{
		{"https://git.example.com/r.git", false, "", kindHTTPS, ""},
		{"HTTPS://git.example.com/r.git", false, "", kindHTTPS, ""},
		{"ssh://git@git.example.com:2222/r.git", false, "", kindSSH, ""},
		{"git@git.example.com:org/r.git", false, "", kindSSH, ""},
		{"git.example.com:r.git", false, "", kindSSH, ""},
		{"file:///srv/git/r.git", false, "", kindFile, ""},
		{"/srv/git/r.git", false, "", kindFile, ""},
		{"../repos/r", false, "/etc/repos/r", kindFile, ""},
		{"repo", false, "/etc/gitmon/repo", kindFile, ""},
		{"./a/b:c", false, "/etc/gitmon/a/b:c", kindFile, ""},
		{"http://git.example.com/r.git", false, "", kindHTTP, "anyone on the network path can tamper"},
		{"http://git.example.com/r.git", true, "", kindHTTP, ""},
		{"git://git.example.com/r.git", false, "", kindGit, "anyone on the network path can tamper"},
		{"git://git.example.com/r.git", true, "", kindGit, ""},
		{"https://u:secretpw@git.example.com/r.git", false, "", kindHTTPS, "holds credentials"},
		{"https://secrettoken@git.example.com/r.git", false, "", kindHTTPS, "holds credentials"},
		{"ssh://git:secretpw@git.example.com/r.git", false, "", kindSSH, "holds a password"},
		{"u:secretpw@git.example.com:r.git", false, "", kindSSH, "holds credentials"},
		{"https://u:secret%zzpw@git.example.com/", false, "", kindUnknown, "is not a valid URL"},
		{"ftp://git.example.com/r.git", false, "", kindUnknown, "not supported"},
		{"ext::sh -c touch% /tmp/pwned", false, "", kindUnknown, "spaces"},
		{"ext::sh%20-c", false, "", kindUnknown, "remote helper"},
		{"fd::17", false, "", kindUnknown, "remote helper"},
		{"-uhttps://x", false, "", kindUnknown, "must not start with '-'"},
		{"https://", false, "", kindHTTPS, "has no host"},
		{"file://host/r.git", false, "", kindFile, "names a host"},
		{"git@:r.git", false, "", kindSSH, "not a valid scp-like"},
		{"host:", false, "", kindSSH, "not a valid scp-like"},
	}
	for _, tt := range tests {
		resolved, kind, problem := checkRepoURL(tt.url, tt.insecure, "/etc/gitmon")
		if tt.problem == "" && problem != "" || !strings.Contains(problem, tt.problem) {
			t.Errorf("%q: problem %q, want %q", tt.url, problem, tt.problem)
		}
		if kind != tt.kind {
			t.Errorf("%q: kind %d, want %d", tt.url, kind, tt.kind)
		}
		want := tt.resolved
		if want == "" {
			want = tt.url
		}
		if resolved != want {
			t.Errorf("%q: resolved to %q, want %q", tt.url, resolved, want)
		}
		if strings.Contains(problem, "secret") {
			t.Errorf("%q: problem shows the credentials: %s", tt.url, problem)
		}
	}
}

func TestCheckServiceURL(t *testing.T) {
	ok := []string{"https://jira.example.com", "https://slack.com/api/", "http://127.0.0.1:8089/api/", "http://localhost/", "http://[::1]:80/"}
	for _, u := range ok {
		if p := checkServiceURL(u); p != "" {
			t.Errorf("%q: %s", u, p)
		}
	}
	bad := []string{"http://jira.example.com", "ftp://x", "jira.example.com", "https://u:secret@jira.example.com", "https:///x"}
	for _, u := range bad {
		p := checkServiceURL(u)
		if p == "" {
			t.Errorf("%q: want a problem", u)
		}
		if strings.Contains(p, "secret") {
			t.Errorf("%q: shows the credentials: %s", u, p)
		}
	}
}

func TestCheckBranch(t *testing.T) {
	for _, b := range []string{"qa", "release/2024-01", "env.prod", "feature_x"} {
		if p := checkBranch(b); p != "" {
			t.Errorf("%q: %s", b, p)
		}
	}
	for _, b := range []string{"-x", "/x", "x/", "x.", "x.lock", "a..b", "a//b", "a@{b", "@", "a b", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b", `a\b`, "a/.b", strings.Repeat("x", 256)} {
		if p := checkBranch(b); p == "" {
			t.Errorf("%q: want a problem", b)
		}
	}
}

func TestCheckListen(t *testing.T) {
	for _, s := range []string{"127.0.0.1:8080", ":8080", "[::1]:0", "localhost:9090", "0.0.0.0:80"} {
		if p := checkListen(s); p != "" {
			t.Errorf("%q: %s", s, p)
		}
	}
	for _, s := range []string{"8080", "localhost", "127.0.0.1:http", "127.0.0.1:70000", "bad host:80"} {
		if p := checkListen(s); p == "" {
			t.Errorf("%q: want a problem", s)
		}
	}
}
