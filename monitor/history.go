package monitor

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// errClosed is returned by a Repo after Close, or after its store could
// not be rebuilt.
var errClosed = errors.New("the repository's object store is closed")

// store returns the open store; r.mu must be held.
func (r *Repo) store() (*filesystem.Storage, error) {
	if r.st == nil {
		return nil, errClosed
	}
	return r.st, nil
}

// parseSHA accepts a full 40-hex object name.
func parseSHA(s string) (plumbing.Hash, error) {
	if len(s) != 40 {
		return plumbing.ZeroHash, fmt.Errorf("%q is not a full SHA-1", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("%q is not a full SHA-1", s)
	}
	return plumbing.NewHash(s), nil
}

// commitObject reads a commit from the store; r.mu must be held.
func (r *Repo) commitObject(h plumbing.Hash) (*object.Commit, error) {
	st, err := r.store()
	if err != nil {
		return nil, err
	}
	c, err := object.GetCommit(st, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("commit %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", h, err)
	}
	return c, nil
}

func toCommit(c *object.Commit) Commit {
	parents := make([]string, len(c.ParentHashes))
	for i, p := range c.ParentHashes {
		parents[i] = p.String()
	}
	return Commit{
		SHA:       c.Hash.String(),
		Parents:   parents,
		Message:   c.Message,
		Author:    Signature{Name: c.Author.Name, Email: c.Author.Email, When: c.Author.When},
		Committer: Signature{Name: c.Committer.Name, Email: c.Committer.Email, When: c.Committer.When},
	}
}

// Commit returns the commit sha from the local store.
func (r *Repo) Commit(ctx context.Context, sha string) (Commit, error) {
	h, err := parseSHA(sha)
	if err != nil {
		return Commit{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.commitObject(h)
	if err != nil {
		return Commit{}, err
	}
	return toCommit(c), nil
}

// Walk returns the first-parent commits after from up to and including
// to, oldest first; to's first-parent history must be in the local store
// (Fetch first). With from == "" it returns just to.
//
// When from is not an ancestor of to (a rewrite), Walk also returns a
// Rewrite, and the commits are those after its merge base: the newest
// first-parent ancestor of to that is also an ancestor of from (or the
// whole first-parent history of to when there is none). When from is an
// ancestor of to only through a merge's other parent, the commits are
// to's first-parent commits that from does not reach, and there is no
// Rewrite.
//
// limit bounds the commits returned, and the dropped commits of a
// Rewrite: more is an error wrapping ErrLimit. limit <= 0 means
// DefaultWalkLimit. Telling a rewrite apart reads the whole history of
// from and of to, which the common case (from on to's first-parent
// history) never does.
func (r *Repo) Walk(ctx context.Context, from, to string, limit int) ([]Commit, *Rewrite, error) {
	if limit <= 0 {
		limit = DefaultWalkLimit
	}
	toH, err := parseSHA(to)
	if err != nil {
		return nil, nil, err
	}
	var fromH plumbing.Hash
	if from != "" {
		if fromH, err = parseSHA(from); err != nil {
			return nil, nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tip, err := r.commitObject(toH)
	if err != nil {
		return nil, nil, err
	}
	if from == "" {
		return []Commit{toCommit(tip)}, nil, nil
	}

	// The common case: from is on to's first-parent history.
	chain, found, err := r.firstParents(ctx, tip, fromH, limit+1)
	if err != nil {
		return nil, nil, err
	}
	if found {
		if len(chain) > limit {
			return nil, nil, fmt.Errorf("%d first-parent commits from %s to %s: %w (%d)", len(chain), from, to, ErrLimit, limit)
		}
		return oldestFirst(chain), nil, nil
	}

	// from is elsewhere: find the newest first-parent ancestor of to
	// that from reaches.
	fromC, err := r.commitObject(fromH)
	if err != nil {
		return nil, nil, fmt.Errorf("walking from %s: %w", from, err)
	}
	ancFrom, err := r.ancestors(ctx, fromH)
	if err != nil {
		return nil, nil, err
	}
	base, commits := "", chain
	for i, c := range chain {
		if _, ok := ancFrom[c.Hash]; ok {
			base, commits = c.Hash.String(), chain[:i]
			break
		}
	}
	if len(commits) > limit {
		return nil, nil, fmt.Errorf("more than %d first-parent commits from %s to %s: %w", limit, from, to, ErrLimit)
	}
	ancTo, err := r.ancestors(ctx, toH)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := ancTo[fromH]; ok {
		return oldestFirst(commits), nil, nil
	}
	// A rewrite: the old first-parent commits to no longer reaches.
	rw := &Rewrite{MergeBase: base}
	for c := fromC; ; {
		if _, ok := ancTo[c.Hash]; ok {
			break
		}
		if len(rw.Dropped) == limit {
			return nil, nil, fmt.Errorf("more than %d commits dropped from %s: %w", limit, from, ErrLimit)
		}
		rw.Dropped = append(rw.Dropped, c.Hash.String())
		if len(c.ParentHashes) == 0 {
			break
		}
		if c, err = r.commitObject(c.ParentHashes[0]); err != nil {
			return nil, nil, err
		}
	}
	return oldestFirst(commits), rw, nil
}

// firstParents follows tip's first parents, newest first, until it
// meets stop (found, not included), the root, or max commits.
func (r *Repo) firstParents(ctx context.Context, tip *object.Commit, stop plumbing.Hash, max int) (chain []*object.Commit, found bool, err error) {
	for c := tip; ; {
		if c.Hash == stop {
			return chain, true, nil
		}
		if len(chain) == max {
			return chain, false, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		chain = append(chain, c)
		if len(c.ParentHashes) == 0 {
			return chain, false, nil
		}
		if c, err = r.commitObject(c.ParentHashes[0]); err != nil {
			return nil, false, err
		}
	}
}

// ancestors returns every commit h reaches, h included.
func (r *Repo) ancestors(ctx context.Context, h plumbing.Hash) (map[plumbing.Hash]struct{}, error) {
	seen := map[plumbing.Hash]struct{}{h: {}}
	queue := []plumbing.Hash{h}
	for len(queue) > 0 {
		if len(seen)%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c, err := r.commitObject(queue[0])
		if err != nil {
			return nil, err
		}
		queue = queue[1:]
		for _, p := range c.ParentHashes {
			if _, ok := seen[p]; !ok {
				seen[p] = struct{}{}
				queue = append(queue, p)
			}
		}
	}
	return seen, nil
}

func oldestFirst(chain []*object.Commit) []Commit {
	out := make([]Commit, len(chain))
	for i, c := range chain {
		out[len(chain)-1-i] = toCommit(c)
	}
	return out
}

// IsAncestor reports whether commit a is b or an ancestor of b. Both
// must be in the local store.
func (r *Repo) IsAncestor(ctx context.Context, a, b string) (bool, error) {
	ah, err := parseSHA(a)
	if err != nil {
		return false, err
	}
	bh, err := parseSHA(b)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.commitObject(ah); err != nil {
		return false, err
	}
	seen := map[plumbing.Hash]struct{}{bh: {}}
	queue := []plumbing.Hash{bh}
	for len(queue) > 0 {
		if queue[0] == ah {
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		c, err := r.commitObject(queue[0])
		if err != nil {
			return false, err
		}
		queue = queue[1:]
		for _, p := range c.ParentHashes {
			if _, ok := seen[p]; !ok {
				seen[p] = struct{}{}
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}
