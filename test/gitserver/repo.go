package gitserver

import (
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Repo is a bare repository that the servers serve, plus a work clone
// that its helpers change with the git CLI and push from. Every helper
// fails the test on error.
//
// Files are staged with WriteFile and Remove and land in the next Commit,
// on the branch Commit names. While AutoPush is true (the default), every
// helper that makes or moves a commit publishes it to the bare repository
// at once; set it to false to batch several commits into one Push.
type Repo struct {
	// Bare is the bare repository's path; its folder is what the servers
	// serve, and its base name is the repository's name in their URLs.
	Bare string
	// Work is the work clone's path.
	Work string
	// AutoPush publishes every change at once (default true).
	AutoPush bool

	t       testing.TB
	mu      sync.Mutex
	pending []change
}

type change struct {
	path    string
	content string
	remove  bool
}

// NewRepo creates an empty bare repository and its work clone in
// t.TempDir().
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	dir := t.TempDir()
	r := &Repo{
		Bare:     filepath.Join(dir, "srv", "deployments.git"),
		Work:     filepath.Join(dir, "work"),
		AutoPush: true,
		t:        t,
	}
	if _, err := runGit(dir, nil, "init", "-q", "--bare", "-b", "main", r.Bare); err != nil {
		t.Fatal(err)
	}
	if _, err := runGit(dir, nil, "init", "-q", "-b", "main", r.Work); err != nil {
		t.Fatal(err)
	}
	r.Git("remote", "add", "origin", r.Bare)
	return r
}

// Git runs git in the work clone and returns its trimmed output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	out, err := runGit(r.Work, nil, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// BareGit runs git in the bare repository and returns its trimmed output.
func (r *Repo) BareGit(args ...string) string {
	r.t.Helper()
	out, err := runGit(r.Bare, nil, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// WriteFile stages a file (a slash path relative to the repository root)
// with content, for the next Commit.
func (r *Repo) WriteFile(path, content string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, change{path: path, content: content})
}

// Remove stages the deletion of a file for the next Commit.
func (r *Repo) Remove(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, change{path: path, remove: true})
}

// Commit checks out branch (a new, empty one if it does not exist yet),
// applies the staged files, commits them (an empty commit if nothing is
// staged) with the given identities ("Name <email>"), pushes when
// AutoPush is set, and returns the commit's SHA.
func (r *Repo) Commit(branch, msg, author, committer string) string {
	r.t.Helper()
	r.checkout(branch)
	r.apply()
	r.Git("add", "-A")
	env := append(ident(r.t, "AUTHOR", author), ident(r.t, "COMMITTER", committer)...)
	// The message goes through a file: a hostile one can be larger than
	// an argument may be.
	// Like -m, the message ends with a newline.
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	msgFile := filepath.Join(r.t.TempDir(), "message")
	if err := os.WriteFile(msgFile, []byte(msg), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if _, err := runGit(r.Work, env, "commit", "-q", "--allow-empty", "--no-verify", "--cleanup=verbatim", "-F", msgFile); err != nil {
		r.t.Fatal(err)
	}
	sha := r.Git("rev-parse", "HEAD")
	r.autoPush(branch)
	return sha
}

// Branch creates or moves branch name to from (a branch or a SHA) and
// pushes it when AutoPush is set.
func (r *Repo) Branch(name, from string) {
	r.t.Helper()
	sha := r.Git("rev-parse", "--verify", "-q", from+"^{commit}")
	r.Git("update-ref", "refs/heads/"+name, sha)
	r.autoPush(name)
}

// Tag creates a lightweight tag at sha and pushes it at once.
func (r *Repo) Tag(name, sha string) {
	r.t.Helper()
	r.Git("update-ref", "refs/tags/"+name, sha)
	r.Git("push", "-q", "origin", "refs/tags/"+name+":refs/tags/"+name)
}

// Merge merges branch from into branch into with a real
// `git merge --no-ff` (a promotion), committed by committer (also the
// author), pushes when AutoPush is set, and returns the merge commit.
// A conflict fails the test.
func (r *Repo) Merge(into, from, msg, committer string) string {
	r.t.Helper()
	r.checkout(into)
	env := append(ident(r.t, "AUTHOR", committer), ident(r.t, "COMMITTER", committer)...)
	if _, err := runGit(r.Work, env, "merge", "-q", "--no-ff", "--no-edit", "-m", msg, "refs/heads/"+from); err != nil {
		_, _ = runGit(r.Work, nil, "merge", "--abort")
		r.t.Fatal(err)
	}
	sha := r.Git("rev-parse", "HEAD")
	r.autoPush(into)
	return sha
}

// ForcePush moves branch to sha, locally and on the server, whatever it
// pointed at before.
func (r *Repo) ForcePush(branch, sha string) {
	r.t.Helper()
	r.Git("checkout", "-q", "--detach")
	r.Git("update-ref", "refs/heads/"+branch, sha)
	r.Git("push", "-q", "--force", "origin", sha+":refs/heads/"+branch)
}

// DeleteBranch deletes branch, locally and on the server.
func (r *Repo) DeleteBranch(name string) {
	r.t.Helper()
	if r.Head(name) != "" {
		r.Git("push", "-q", "origin", "--delete", "refs/heads/"+name)
	}
	if _, err := runGit(r.Work, nil, "rev-parse", "--verify", "-q", "refs/heads/"+name); err == nil {
		r.Git("checkout", "-q", "--detach")
		r.Git("update-ref", "-d", "refs/heads/"+name)
	}
}

// Push publishes branch to the server as a fast-forward.
func (r *Repo) Push(branch string) {
	r.t.Helper()
	r.Git("push", "-q", "origin", "refs/heads/"+branch+":refs/heads/"+branch)
}

// Head returns the SHA branch points at on the server, or "" if the
// server has no such branch.
func (r *Repo) Head(branch string) string {
	r.t.Helper()
	out, err := runGit(r.Bare, nil, "rev-parse", "--verify", "-q", "refs/heads/"+branch)
	if err != nil {
		return ""
	}
	return out
}

func (r *Repo) autoPush(branch string) {
	r.t.Helper()
	if r.AutoPush {
		r.Push(branch)
	}
}

// checkout makes branch the work clone's clean current branch, creating
// it empty (orphan) when it does not exist locally.
func (r *Repo) checkout(branch string) {
	r.t.Helper()
	if _, err := runGit(r.Work, nil, "rev-parse", "--verify", "-q", "refs/heads/"+branch); err == nil {
		r.Git("checkout", "-q", "-f", branch)
	} else {
		r.Git("switch", "-q", "--discard-changes", "--orphan", branch)
	}
	r.Git("clean", "-q", "-f", "-d", "-x")
}

// apply writes the staged files into the work tree.
func (r *Repo) apply() {
	r.t.Helper()
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, c := range pending {
		p := filepath.Join(r.Work, filepath.FromSlash(c.path))
		if c.remove {
			if err := os.Remove(p); err != nil {
				r.t.Fatalf("removing %s: %v", c.path, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
}

// ident turns "Name <email>" into GIT_<ROLE>_NAME and GIT_<ROLE>_EMAIL.
func ident(t testing.TB, role, s string) []string {
	t.Helper()
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name == "" {
		// Bare e-mail: the local part is the name.
		email := strings.Trim(strings.TrimSpace(s), "<>")
		if !strings.Contains(email, "@") {
			t.Fatalf("identity %q is not \"Name <email>\"", s)
		}
		name := email[:strings.Index(email, "@")]
		return []string{"GIT_" + role + "_NAME=" + name, "GIT_" + role + "_EMAIL=" + email}
	}
	return []string{"GIT_" + role + "_NAME=" + a.Name, "GIT_" + role + "_EMAIL=" + a.Address}
}
