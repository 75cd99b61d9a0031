// Package monitor watches repositories. It lists refs cheaply on every
// poll, fetches only a branch whose tip moved (incrementally, into an
// on-disk object store under the state folder), walks first-parent history
// since the last processed commit, detects rewrites, and reads descriptor
// files at commits. It knows nothing of policy or runners.
package monitor

import (
	"time"
)

// Signature is a commit's author or committer.
type Signature struct {
	Name  string
	Email string
	When  time.Time
}

// Commit is one commit, as the walk returns it.
type Commit struct {
	SHA       string
	Parents   []string // Parents[0] is the first parent
	Message   string
	Author    Signature
	Committer Signature
}

// FileChange is one file a commit changed against its first parent,
// among those matching a descriptors glob. A blob id of "" means the file
// is absent on that side (added or deleted).
type FileChange struct {
	Path    string
	OldBlob string
	NewBlob string
}

// File is one file at a commit.
type File struct {
	Path string
	Blob string
	Size int64
}

// Rewrite says a new tip does not descend from the last processed commit.
type Rewrite struct {
	// MergeBase is the newest first-parent ancestor of the new tip that
	// is also an ancestor of the old one; "" if the histories share none.
	MergeBase string
	// Dropped are the old first-parent commits after the merge base,
	// newest first.
	Dropped []string
}
