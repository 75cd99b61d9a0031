package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// glob matches slash paths with path.Match. Since '*' and '?' never match
// a '/', a path matches only if it has as many segments as the pattern,
// so whole subtrees can be skipped by their first segments.
type glob struct {
	pattern string
	segs    []string
	// prune is false when the pattern has '[' or '\\', whose classes
	// and escapes could match a '/': then every folder is searched.
	prune bool
}

func newGlob(pattern string) (glob, error) {
	if _, err := path.Match(pattern, ""); err != nil || pattern == "" {
		return glob{}, fmt.Errorf("%q is not a valid glob", pattern)
	}
	return glob{
		pattern: pattern,
		segs:    strings.Split(pattern, "/"),
		prune:   !strings.ContainsAny(pattern, `[\`),
	}, nil
}

// descend reports whether files under dir (depth segments deep, name its
// last segment) could match.
func (g glob) descend(name string, depth int) bool {
	if !g.prune {
		return true
	}
	if depth >= len(g.segs)-1 {
		return false
	}
	ok, _ := path.Match(g.segs[depth], name)
	return ok
}

func (g glob) match(p string) bool {
	ok, _ := path.Match(g.pattern, p)
	return ok
}

// isFile reports whether a tree entry is a file whose blob a descriptor
// could be: a regular or executable file, or a symlink (whose blob is
// the link's target). Submodules are not.
func isFile(m filemode.FileMode) bool {
	return m == filemode.Regular || m == filemode.Executable || m == filemode.Deprecated || m == filemode.Symlink
}

// tree reads a tree object; r.mu must be held.
func (r *Repo) tree(h plumbing.Hash) (*object.Tree, error) {
	st, err := r.store()
	if err != nil {
		return nil, err
	}
	t, err := object.GetTree(st, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("tree %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", h, err)
	}
	return t, nil
}

// Changed returns the files matching glob (path.Match on the slash path,
// such as "services/*.yaml") whose blob differs between c and its first
// parent (every matching file for a root commit), sorted by path. Added
// files have OldBlob "", deleted ones NewBlob "". Only the folders the
// glob can match are read, and unchanged subtrees are skipped by hash.
func (r *Repo) Changed(ctx context.Context, c Commit, pattern string) ([]FileChange, error) {
	g, err := newGlob(pattern)
	if err != nil {
		return nil, err
	}
	h, err := parseSHA(c.SHA)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	commit, newTree, err := r.commitTree(h)
	if err != nil {
		return nil, err
	}
	var oldTree *object.Tree
	if len(commit.ParentHashes) > 0 {
		parent, err := r.commitObject(commit.ParentHashes[0])
		if err != nil {
			return nil, err
		}
		if oldTree, err = r.tree(parent.TreeHash); err != nil {
			return nil, err
		}
	}
	changes := []FileChange{}
	if err := r.diff(ctx, g, "", 0, oldTree, newTree, &changes); err != nil {
		return nil, err
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, nil
}

// diff compares two trees (nil is empty) at dir, depth segments deep.
func (r *Repo) diff(ctx context.Context, g glob, dir string, depth int, oldT, newT *object.Tree, out *[]FileChange) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	type pair struct{ old, new *object.TreeEntry }
	entries := map[string]*pair{}
	var names []string
	add := func(t *object.Tree, isNew bool) {
		if t == nil {
			return
		}
		for i := range t.Entries {
			e := &t.Entries[i]
			p := entries[e.Name]
			if p == nil {
				p = &pair{}
				entries[e.Name] = p
				names = append(names, e.Name)
			}
			if isNew {
				p.new = e
			} else {
				p.old = e
			}
		}
	}
	add(oldT, false)
	add(newT, true)
	for _, name := range names {
		p := entries[name]
		if p.old != nil && p.new != nil && p.old.Hash == p.new.Hash && p.old.Mode == p.new.Mode {
			continue
		}
		full := path.Join(dir, name)
		if g.match(full) {
			var fc FileChange
			if p.old != nil && isFile(p.old.Mode) {
				fc.OldBlob = p.old.Hash.String()
			}
			if p.new != nil && isFile(p.new.Mode) {
				fc.NewBlob = p.new.Hash.String()
			}
			if fc.OldBlob != fc.NewBlob {
				fc.Path = full
				*out = append(*out, fc)
			}
		}
		if !g.descend(name, depth) {
			continue
		}
		var sub [2]*object.Tree
		for i, e := range []*object.TreeEntry{p.old, p.new} {
			if e != nil && e.Mode == filemode.Dir {
				t, err := r.tree(e.Hash)
				if err != nil {
					return err
				}
				sub[i] = t
			}
		}
		if sub[0] == nil && sub[1] == nil {
			continue
		}
		if err := r.diff(ctx, g, full, depth+1, sub[0], sub[1], out); err != nil {
			return err
		}
	}
	return nil
}

// Files returns every file matching glob at commit sha, sorted by path,
// with its blob's size.
func (r *Repo) Files(ctx context.Context, sha, pattern string) ([]File, error) {
	g, err := newGlob(pattern)
	if err != nil {
		return nil, err
	}
	h, err := parseSHA(sha)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, root, err := r.commitTree(h)
	if err != nil {
		return nil, err
	}
	files := []File{}
	if err := r.list(ctx, g, "", 0, root, &files); err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

func (r *Repo) list(ctx context.Context, g glob, dir string, depth int, t *object.Tree, out *[]File) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, e := range t.Entries {
		full := path.Join(dir, e.Name)
		switch {
		case isFile(e.Mode):
			if !g.match(full) {
				continue
			}
			size, err := r.st.EncodedObjectSize(e.Hash)
			if err != nil {
				return fmt.Errorf("blob %s (%s): %w", e.Hash, full, notFound(err))
			}
			*out = append(*out, File{Path: full, Blob: e.Hash.String(), Size: size})
		case e.Mode == filemode.Dir && g.descend(e.Name, depth):
			sub, err := r.tree(e.Hash)
			if err != nil {
				return err
			}
			if err := r.list(ctx, g, full, depth+1, sub, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func notFound(err error) error {
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return ErrNotFound
	}
	return err
}

// ReadBlob returns the content of blob, or an error wrapping ErrTooLarge,
// without reading it, if it is larger than max bytes.
func (r *Repo) ReadBlob(ctx context.Context, blob string, max int64) ([]byte, error) {
	h, err := parseSHA(blob)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.store()
	if err != nil {
		return nil, err
	}
	size, err := st.EncodedObjectSize(h)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", blob, notFound(err))
	}
	if size > max {
		return nil, fmt.Errorf("blob %s is %d bytes, more than %d: %w", blob, size, max, ErrTooLarge)
	}
	obj, err := st.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", blob, notFound(err))
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", blob, err)
	}
	defer rd.Close()
	var buf bytes.Buffer
	buf.Grow(int(size))
	if _, err := io.Copy(&buf, io.LimitReader(rd, max+1)); err != nil {
		return nil, fmt.Errorf("blob %s: %w", blob, err)
	}
	if int64(buf.Len()) > max {
		return nil, fmt.Errorf("blob %s is more than %d bytes: %w", blob, max, ErrTooLarge)
	}
	return buf.Bytes(), nil
}

// commitTree reads a commit and its root tree; the caller holds r.mu.
func (r *Repo) commitTree(h plumbing.Hash) (*object.Commit, *object.Tree, error) {
	commit, err := r.commitObject(h)
	if err != nil {
		return nil, nil, err
	}
	tree, err := r.tree(commit.TreeHash)
	if err != nil {
		return nil, nil, err
	}
	return commit, tree, nil
}
