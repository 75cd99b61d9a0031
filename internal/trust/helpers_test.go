package trust

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// repo is a real Git repository in a temporary folder, committed to by the
// real git binary.
type repo struct {
	t   testing.TB
	dir string
	env []string
}

func newRepo(t testing.TB) *repo {
	t.Helper()
	r := &repo{t: t, dir: t.TempDir(), env: append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.com",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.com")}
	r.git(nil, "init", "-q", "-b", "main")
	return r
}

func (r *repo) git(env []string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(append([]string{}, r.env...), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes a file and commits it with extra git -c settings (signing
// ones) and environment, returning the commit as go-git reads it.
func (r *repo) commit(env []string, config ...string) *object.Commit {
	r.t.Helper()
	name := filepath.Join(r.dir, "f")
	if err := os.WriteFile(name, []byte(time.Now().String()), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git(nil, "add", "f")
	args := []string{}
	for _, c := range config {
		args = append(args, "-c", c)
	}
	args = append(args, "commit", "-q", "-m", "change")
	if len(config) > 0 {
		args = append(args, "-S")
	}
	r.git(env, args...)
	return r.head()
}

// commitObject is the commit sha as go-git reads it.
func (r *repo) commitObject(sha string) *object.Commit {
	r.t.Helper()
	g, err := git.PlainOpen(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := g.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func (r *repo) head() *object.Commit {
	r.t.Helper()
	g, err := git.PlainOpen(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	ref, err := g.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := g.CommitObject(ref.Hash())
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// payload is what the commit's signature covers.
func payload(t testing.TB, c *object.Commit) []byte {
	t.Helper()
	enc := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(enc); err != nil {
		t.Fatal(err)
	}
	rd, err := enc.Reader()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sshKey makes an ed25519 key pair with ssh-keygen; it returns the private
// key's path and the public key line.
func sshKey(t testing.TB, dir, name string) (string, string) {
	t.Helper()
	priv := filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", priv).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return priv, strings.TrimSpace(string(pub))
}

func sshConfig(key string) []string {
	return []string{"gpg.format=ssh", "user.signingkey=" + key}
}
