package gitserver

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

const alice = "Alice <alice@example.com>"

// seed makes a repository with two branches and returns it.
func seed(t *testing.T) *Repo {
	t.Helper()
	Require(t)
	r := NewRepo(t)
	r.WriteFile("services/a.yaml", "service: a\n")
	r.Commit("qa", "first", alice, alice)
	r.Branch("prod", "qa")
	r.WriteFile("services/b.yaml", "service: b\n")
	r.Commit("qa", "second", alice, alice)
	return r
}

// lsRemote runs the git CLI's ls-remote and returns its output, or the
// error text.
func lsRemote(url string, env ...string) (string, error) {
	return runGit("", env, "ls-remote", "--heads", url)
}

func TestRepoHelpers(t *testing.T) {
	r := seed(t)
	qa, prod := r.Head("qa"), r.Head("prod")
	if qa == "" || prod == "" || qa == prod {
		t.Fatalf("heads qa=%q prod=%q", qa, prod)
	}
	if got := r.BareGit("rev-parse", qa+"^"); got != prod {
		t.Fatalf("qa's parent is %s, want prod %s", got, prod)
	}
	// A promotion: qa into prod, with a merge commit.
	m := r.Merge("prod", "qa", "promote", "Bob <bob@example.com>")
	if got := r.BareGit("rev-list", "--parents", "-n1", m); got != m+" "+prod+" "+qa {
		t.Fatalf("merge parents: %s", got)
	}
	if got := r.BareGit("log", "-1", "--format=%cn <%ce>|%an", m); got != "Bob <bob@example.com>|Bob" {
		t.Fatalf("merge identity: %s", got)
	}
	// Deletion lands on the named branch only.
	r.Remove("services/a.yaml")
	r.Commit("qa", "drop a", alice, alice)
	if got := r.BareGit("ls-tree", "-r", "--name-only", "qa"); got != "services/b.yaml" {
		t.Fatalf("qa tree: %q", got)
	}
	if got := r.BareGit("ls-tree", "-r", "--name-only", "prod"); got != "services/a.yaml\nservices/b.yaml" {
		t.Fatalf("prod tree: %q", got)
	}
	r.ForcePush("qa", prod)
	if r.Head("qa") != prod {
		t.Fatalf("force-push: qa at %s", r.Head("qa"))
	}
	// The work clone follows: the next commit builds on the new tip.
	c := r.Commit("qa", "after force", alice, alice)
	if got := r.BareGit("rev-parse", c+"^"); got != prod {
		t.Fatalf("commit after force-push has parent %s, want %s", got, prod)
	}
	r.DeleteBranch("qa")
	if r.Head("qa") != "" {
		t.Fatal("qa still exists")
	}
	// Without AutoPush, commits wait for Push.
	r.AutoPush = false
	c1 := r.Commit("prod", "one", alice, alice)
	c2 := r.Commit("prod", "two", alice, alice)
	if r.Head("prod") != m {
		t.Fatal("pushed without AutoPush")
	}
	r.Push("prod")
	if r.Head("prod") != c2 || r.BareGit("rev-parse", c2+"^") != c1 {
		t.Fatal("Push did not publish both commits")
	}
}

func TestHTTP(t *testing.T) {
	r := seed(t)
	s := StartHTTP(t, r, "gituser", "s3cret")
	good := strings.Replace(s.URL, "://", "://gituser:s3cret@", 1)
	out, err := lsRemote(good)
	if err != nil || !strings.Contains(out, r.Head("qa")+"\trefs/heads/qa") {
		t.Fatalf("ls-remote: %v\n%s", err, out)
	}
	for name, url := range map[string]string{
		"none":  s.URL,
		"wrong": strings.Replace(s.URL, "://", "://gituser:nope@", 1),
	} {
		resp, err := http.Get(url + "/info/refs?service=git-upload-pack")
		if name == "wrong" {
			req, _ := http.NewRequest("GET", s.URL+"/info/refs?service=git-upload-pack", nil)
			req.SetBasicAuth("gituser", "nope")
			resp, err = http.DefaultClient.Do(req)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s credentials: status %d, want 401", name, resp.StatusCode)
		}
		if _, err := lsRemote(url); err == nil {
			t.Errorf("%s credentials: ls-remote succeeded", name)
		}
	}

	// Keep-alive: two requests from one client share a connection.
	before := s.Conns.Load()
	client := &http.Client{Transport: &http.Transport{}}
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("GET", s.URL+"/info/refs?service=git-upload-pack", nil)
		req.SetBasicAuth("gituser", "s3cret")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "refs/heads/qa") {
			t.Fatalf("info/refs: %d %s", resp.StatusCode, body)
		}
	}
	if n := s.Conns.Load() - before; n != 1 {
		t.Errorf("two requests used %d connections, want 1 (keep-alive)", n)
	}

	// Down, then back on the same port.
	s.Stop()
	if _, err := lsRemote(good); err == nil {
		t.Fatal("ls-remote succeeded against a stopped server")
	}
	s.Start()
	if _, err := lsRemote(good); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestHTTPS(t *testing.T) {
	r := seed(t)
	s := StartHTTPS(t, r, "", "")
	if _, err := lsRemote(s.URL); err == nil {
		t.Fatal("ls-remote trusted a throwaway certificate")
	}
	out, err := lsRemote(s.URL, "GIT_SSL_CAINFO="+s.CAFile)
	if err != nil || !strings.Contains(out, "refs/heads/prod") {
		t.Fatalf("ls-remote with the CA: %v\n%s", err, out)
	}
}

func TestDaemon(t *testing.T) {
	r := seed(t)
	url := Daemon(t, r)
	out, err := lsRemote(url)
	if err != nil || !strings.Contains(out, r.Head("prod")+"\trefs/heads/prod") {
		t.Fatalf("ls-remote %s: %v\n%s", url, err, out)
	}
}

func TestSSH(t *testing.T) {
	r := seed(t)
	url, key, knownHosts := SSH(t, r)
	out, err := lsRemote(url, "GIT_SSH_COMMAND="+SSHCommand(key, knownHosts))
	if err != nil || !strings.Contains(out, r.Head("qa")+"\trefs/heads/qa") {
		t.Fatalf("ls-remote %s: %v\n%s", url, err, out)
	}
	// Another host key is refused.
	_, _, otherKnownHosts := SSH(t, r)
	if _, err := lsRemote(url, "GIT_SSH_COMMAND="+SSHCommand(key, otherKnownHosts)); err == nil {
		t.Fatal("ssh accepted a host key that known_hosts does not hold")
	}
}
