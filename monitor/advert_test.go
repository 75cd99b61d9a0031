package monitor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// TestLeanListingAgreesWithGoGit lists the same repository over git:// and
// smart HTTP with the lean reader and with go-git: the branches must be
// identical, tags and other refs left out.
func TestLeanListingAgreesWithGoGit(t *testing.T) {
	gitserver.Require(t)
	repo := gitserver.NewRepo(t)
	repo.WriteFile("services/a.yaml", "service: a\nversion: 1\n")
	repo.Commit("qa", "one", "A <a@example.com>", "A <a@example.com>")
	repo.Branch("staging", "qa")
	repo.Tag("v1", repo.Head("qa"))
	repo.WriteFile("services/a.yaml", "service: a\nversion: 2\n")
	repo.Commit("qa", "two", "A <a@example.com>", "A <a@example.com>")

	daemonURL := gitserver.Daemon(t, repo)
	httpURL, _ := gitserver.HTTP(t, repo, "git", "pw-canary")
	for name, cfg := range map[string]Remote{
		"git":  {URL: daemonURL, Insecure: true},
		"http": {URL: httpURL, Insecure: true, Username: "git", Password: "pw-canary"},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := NewRepo(cfg, Options{Dir: t.TempDir(), Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.lean == nil {
				t.Fatal("the lean reader is not used for this scheme")
			}
			lean, err := r.lean.list(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			auth, _, _ := r.transport(context.Background())
			refs, err := r.goGitLister().ListContext(context.Background(), &git.ListOptions{Auth: auth, PeelingOption: git.IgnorePeeled})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, ref := range refs {
				if ref.Type() == plumbing.HashReference && ref.Name().IsBranch() {
					want[ref.Name().Short()] = ref.Hash().String()
				}
			}
			if !maps.Equal(lean, want) || len(want) != 2 {
				t.Fatalf("lean %v, go-git %v", lean, want)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		r, err := NewRepo(Remote{URL: httpURL, Insecure: true,
			Username: "git", Password: "wrong-canary"}, Options{Dir: t.TempDir(), Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = r.ListBranches(context.Background())
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("err = %v, want ErrAuth", err)
		}
	})
}

func TestReadPkt(t *testing.T) {
	for _, bad := range []string{"zzzz", "0002", "fff1" + "x"} {
		if _, err := readAdvertisement(bufioReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	refs, err := readAdvertisement(bufioReader("003f" + "0000000000000000000000000000000000000000 capabilities^{}\x00x\n" + "0000"))
	if err != nil || len(refs) != 0 {
		t.Errorf("empty repository: %v %v", refs, err)
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// TestLsRefsV2: a repository told its watched branches lists them over
// git:// with v0 while its advertisement is small; once one held more
// than v2Refs refs, it asks for protocol v2 and ls-refs with their
// prefixes, and returns exactly the watched branches (not "qa-old",
// which the "qa" prefix also matches on the server).
func TestLsRefsV2(t *testing.T) {
	gitserver.Require(t)
	repo := gitserver.NewRepo(t)
	seed(t, repo, 2)
	repo.Branch("qa-old", "qa")
	repo.Branch("feature", "qa")
	repo.Tag("v1", repo.Head("qa"))
	daemon := gitserver.Daemon(t, repo)
	u, _ := url.Parse(daemon)
	var sent strings.Builder
	var mu sync.Mutex
	rl := startRelay(t, u.Host, relayOpts{tap: func(b []byte) { mu.Lock(); sent.Write(b); mu.Unlock() }})
	sentV2 := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(sent.String(), "version=2")
	}
	r := open(t, Remote{URL: relayed(t, daemon, rl), Insecure: true, Branches: []string{"qa", "prod", "staging"}})
	want := map[string]string{"qa": repo.Head("qa"), "prod": repo.Head("prod")}
	for i := range 2 {
		got, err := r.ListBranches(context.Background())
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("v0 listing %d = %v, %v; want %v", i, got, err, want)
		}
	}
	if sentV2() {
		t.Fatal("a small repository was listed with v2")
	}

	r.lean.v2Refs = 3 // this repository's 6 refs count as many
	for i := range 3 {
		got, err := r.ListBranches(context.Background())
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("listing %d = %v, %v; want %v", i, got, err, want)
		}
	}
	mu.Lock()
	req := sent.String()
	mu.Unlock()
	for _, w := range []string{"\x00version=2\x00", "command=ls-refs\n", "ref-prefix refs/heads/qa\n", "ref-prefix refs/heads/staging\n"} {
		if !strings.Contains(req, w) {
			t.Errorf("the client did not send %q: %q", w, req)
		}
	}
}

// TestLsRefsFallsBackToV0: a server that answers a v2 request with a v0
// advertisement (one that does not speak v2) is read as v0.
func TestLsRefsFallsBackToV0(t *testing.T) {
	const sha = "1111111111111111111111111111111111111111"
	adv := pkt(sha+" refs/heads/qa\x00multi_ack\n") + pkt(sha+" refs/heads/prod\n") + pkt(sha+" refs/tags/v1\n") + "0000"
	l := &leanLister{branches: []string{"qa"}}
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		server.Write([]byte(adv))
		io.Copy(io.Discard, server)
	}()
	got, err := l.listGitV2(client, bufio.NewReader(client))
	if err != nil || !maps.Equal(got, map[string]string{"qa": sha, "prod": sha}) {
		t.Fatalf("listGitV2 over a v0 answer = %v, %v", got, err)
	}
	for name, answer := range map[string]string{
		"sha256 repository": pkt("version 2\n") + pkt("ls-refs=unborn\n") + pkt("object-format=sha256\n") + "0000",
		"no ls-refs":        pkt("version 2\n") + pkt("fetch\n") + "0000",
	} {
		client, server := net.Pipe()
		go func() {
			server.Write([]byte(answer))
			io.Copy(io.Discard, server)
		}()
		if _, err := l.listGitV2(client, bufio.NewReader(client)); !errors.Is(err, errProtocol) {
			t.Errorf("%s: err = %v, want errProtocol (go-git lists it)", name, err)
		}
		client.Close()
	}
}

func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// TestLsRefsV2HTTP: over smart HTTP, a repository told its watched
// branches asks the first time for v2; the server answers v2, so every
// later listing is a single POST of ls-refs, returning the watched
// branches as go-git's full listing has them.
func TestLsRefsV2HTTP(t *testing.T) {
	gitserver.Require(t)
	repo := gitserver.NewRepo(t)
	seed(t, repo, 2)
	repo.Branch("qa-old", "qa")
	repo.Tag("v1", repo.Head("qa"))
	httpURL, _ := gitserver.HTTP(t, repo, user, token)
	u, _ := url.Parse(httpURL)
	var sent strings.Builder
	var mu sync.Mutex
	rl := startRelay(t, u.Host, relayOpts{tap: func(b []byte) { mu.Lock(); sent.Write(b); mu.Unlock() }})
	r := open(t, Remote{URL: relayed(t, httpURL, rl), Insecure: true, Username: user, Password: token, Branches: []string{"qa", "prod"}})
	want := map[string]string{"qa": repo.Head("qa"), "prod": repo.Head("prod")}
	for i := range 3 {
		got, err := r.ListBranches(context.Background())
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("listing %d = %v, %v; want %v", i, got, err, want)
		}
	}
	mu.Lock()
	req := sent.String()
	mu.Unlock()
	if gets, posts := strings.Count(req, "GET /"), strings.Count(req, "POST /"); gets != 1 || posts != 3 {
		t.Errorf("%d GETs and %d POSTs for 3 listings, want 1 (the capabilities) and 3 (ls-refs)", gets, posts)
	}
	if !strings.Contains(req, "Git-Protocol: version=2") || !strings.Contains(req, "ref-prefix refs/heads/prod\n") {
		t.Errorf("the requests do not ask for v2 ls-refs: %q", req)
	}
}
