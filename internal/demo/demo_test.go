package demo

import (
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestRepoBuild(t *testing.T) {
	g, err := newRepo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var parents []plumbing.Hash
	for _, env := range []string{"qa", "staging"} {
		sha, err := g.commit(env, map[string]string{"services/a.yaml": "service: a\nversion: 1\n"}, "x", bob, parents...)
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		parents = []plumbing.Hash{plumbing.NewHash(sha)}
	}
}
