package monitor

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"strings"
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
			refs, err := r.lister.ListContext(context.Background(), &git.ListOptions{Auth: auth, PeelingOption: git.IgnorePeeled})
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
