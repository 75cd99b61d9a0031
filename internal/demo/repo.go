package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// The people of the demo: alice and bob are in the committers allowlist
// (bob through *@platform.example.com), mallory is not; carol is the
// operator on call, who freezes and retries.
var (
	alice   = object.Signature{Name: "Alice", Email: "alice@example.com"}
	bob     = object.Signature{Name: "Bob", Email: "bob@platform.example.com"}
	mallory = object.Signature{Name: "Mallory", Email: "mallory@contractor.example.net"}
	carol   = "carol@platform.example.com"
)

// gitRepo builds the demo's history with go-git: a real repository on
// disk, with a work tree, that needs no git binary.
type gitRepo struct {
	dir  string
	r    *git.Repository
	wt   *git.Worktree
	tick time.Time
}

func newRepo(dir string) (*gitRepo, error) {
	r, err := git.PlainInit(dir, false)
	if err != nil {
		return nil, err
	}
	wt, err := r.Worktree()
	if err != nil {
		return nil, err
	}
	return &gitRepo{dir: dir, r: r, wt: wt, tick: time.Now().Add(-time.Hour)}, nil
}

// gitDir is the repository's .git folder, which the config's file:// URL
// names.
func (g *gitRepo) gitDir() string { return filepath.Join(g.dir, ".git") }

func (g *gitRepo) sign(who object.Signature) *object.Signature {
	g.tick = g.tick.Add(time.Minute)
	who.When = g.tick
	return &who
}

// commit writes files on branch and commits them. A new branch starts
// from parents[0] (or empty); extra parents make a merge commit.
func (g *gitRepo) commit(branch string, files map[string]string, msg string, who object.Signature, parents ...plumbing.Hash) (string, error) {
	ref := plumbing.NewBranchReferenceName(branch)
	if cur, err := g.r.Reference(ref, true); err == nil {
		if err := g.wt.Checkout(&git.CheckoutOptions{Branch: ref, Force: true}); err != nil {
			return "", err
		}
		if len(parents) > 0 && parents[0] != cur.Hash() {
			return "", fmt.Errorf("first parent of %s must be its tip", branch)
		}
	} else if len(parents) > 0 {
		// A new branch starting at its first parent.
		if err := g.r.Storer.SetReference(plumbing.NewHashReference(ref, parents[0])); err != nil {
			return "", err
		}
		if err := g.wt.Checkout(&git.CheckoutOptions{Branch: ref, Force: true}); err != nil {
			return "", err
		}
	} else if err := g.r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, ref)); err != nil {
		return "", err
	}
	for path, content := range files {
		full := filepath.Join(g.dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return "", err
		}
		if _, err := g.wt.Add(path); err != nil {
			return "", err
		}
	}
	h, err := g.wt.Commit(msg, &git.CommitOptions{Author: g.sign(who), Committer: g.sign(who), Parents: parents, AllowEmptyCommits: true})
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (g *gitRepo) tip(branch string) plumbing.Hash {
	ref, err := g.r.Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		return plumbing.ZeroHash
	}
	return ref.Hash()
}

// version returns the version of service's descriptor at branch's tip.
func (g *gitRepo) version(branch, service string) (string, error) {
	c, err := g.r.CommitObject(g.tip(branch))
	if err != nil {
		return "", err
	}
	f, err := c.File("services/" + service + ".yaml")
	if err != nil {
		return "", err
	}
	text, err := f.Contents()
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, "version: "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s has no version on %s", service, branch)
}

// merge merges from into into: the versions of from, the rest of into,
// as Git's three-way merge does for these files; the merge commit has
// into's tip as first parent. A version from skipped (or rejected) is
// merged like any other: the promotion gate is what stops it.
func (g *gitRepo) merge(from, into string, who object.Signature, port int) (string, error) {
	files, err := g.carry(from, into, port, services...)
	if err != nil {
		return "", err
	}
	return g.commit(into, files, fmt.Sprintf("Merge branch '%s' into %s", from, into), who, g.tip(into), g.tip(from))
}

// promote writes one commit on into that sets service's version to the
// one on from, keeping into's own fields, as `gitmon promote --service`
// does.
func (g *gitRepo) promote(from, into, service string, who object.Signature, port int) (string, error) {
	files, err := g.carry(from, into, port, service)
	if err != nil {
		return "", err
	}
	v, err := g.version(from, service)
	if err != nil {
		return "", err
	}
	return g.commit(into, files, fmt.Sprintf("Promote %s %s from %s to %s", service, v, from, into), who, g.tip(into))
}

// carry returns the descriptors of svcs for into, at from's versions.
func (g *gitRepo) carry(from, into string, port int, svcs ...string) (map[string]string, error) {
	files := map[string]string{}
	for _, svc := range svcs {
		v, err := g.version(from, svc)
		if err != nil {
			return nil, err
		}
		files["services/"+svc+".yaml"] = descriptor(svc, into, v, "8080", port)
	}
	return files, nil
}
