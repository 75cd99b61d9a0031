package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrUnknownRef is wrapped by Resolve for a ref that names nothing.
var ErrUnknownRef = errors.New("no such branch, tag or commit")

// Resolve returns the commit a ref names, fetching it first: a branch
// (B or refs/heads/B), a tag (T or refs/tags/T; an annotated tag is
// peeled to its commit), or a full or abbreviated SHA of a commit the
// store holds (fetch the branch that has it first).
func (r *Repo) Resolve(ctx context.Context, ref string) (string, error) {
	branch := strings.TrimPrefix(ref, "refs/heads/")
	tag := strings.TrimPrefix(ref, "refs/tags/")
	if !strings.HasPrefix(ref, "refs/tags/") {
		if tips, err := r.ListBranches(ctx); err != nil {
			return "", err
		} else if sha, ok := tips[branch]; ok {
			if err := r.Fetch(ctx, branch); err != nil {
				return "", err
			}
			return sha, nil
		}
	}
	if !strings.HasPrefix(ref, "refs/heads/") {
		if sha, ok, err := r.fetchTag(ctx, tag); err != nil || ok {
			return sha, err
		}
	}
	if len(ref) < 4 || len(ref) > 40 || strings.Trim(strings.ToLower(ref), "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q: %w", ref, ErrUnknownRef)
	}
	if sha, ok := r.lookup(ref); ok {
		return sha, nil
	}
	// A commit of a branch not fetched yet (a pull request's): fetch
	// every branch once, then look again.
	tips, err := r.ListBranches(ctx)
	if err != nil {
		return "", err
	}
	for b := range tips {
		if err := r.Fetch(ctx, b); err != nil {
			return "", err
		}
	}
	if sha, ok := r.lookup(ref); ok {
		return sha, nil
	}
	return "", fmt.Errorf("%q: %w", ref, ErrUnknownRef)
}

// lookup finds the commit a full or abbreviated SHA names in the store.
func (r *Repo) lookup(prefix string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st == nil {
		return "", false
	}
	repo, err := git.Open(r.st, nil)
	if err != nil {
		return "", false
	}
	h, err := repo.ResolveRevision(plumbing.Revision(strings.ToLower(prefix)))
	if err != nil {
		return "", false
	}
	if _, err := r.commitObject(*h); err != nil {
		return "", false
	}
	return h.String(), true
}

// fetchTag fetches tag name, if the remote has it, and returns its commit.
func (r *Repo) fetchTag(ctx context.Context, name string) (string, bool, error) {
	if name == "" || checkBranch(name) != nil {
		return "", false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st == nil {
		return "", false, errors.New("repository is closed")
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	auth, proxy, err := r.transport(ctx)
	if err != nil {
		return "", false, err
	}
	refName := plumbing.NewTagReferenceName(name)
	err = r.remote.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName, RefSpecs: []gitconfig.RefSpec{gitconfig.RefSpec("+" + refName.String() + ":" + refName.String())},
		Auth: auth, CABundle: r.ca, ProxyOptions: proxy, Tags: git.NoTags,
	})
	if errors.Is(err, git.NoMatchingRefSpecError{}) {
		return "", false, nil
	}
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		var none git.NoMatchingRefSpecError
		if errors.As(err, &none) {
			return "", false, nil
		}
		return "", false, r.remoteErr(ctx, "fetch tag "+name+" from", err)
	}
	ref, err := r.st.Reference(refName)
	if err != nil {
		return "", false, nil
	}
	h := ref.Hash()
	if t, err := object.GetTag(r.st, h); err == nil {
		c, err := t.Commit()
		if err != nil {
			return "", false, fmt.Errorf("tag %s: %w", name, err)
		}
		h = c.Hash
	}
	if err := r.verify(ctx, h); err != nil {
		return "", false, fmt.Errorf("tag %s at %s: %w", name, h, err)
	}
	return h.String(), true, nil
}
