package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"

	"github.com/gitmon-dev/gitmon/internal/redact"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

func TestMain(m *testing.M) {
	// file:// and local paths run git-upload-pack in this process's
	// environment: keep it hermetic too.
	for _, kv := range [][2]string{{"GIT_CONFIG_GLOBAL", "/dev/null"}, {"GIT_CONFIG_NOSYSTEM", "1"}, {"SSH_AUTH_SOCK", ""}} {
		os.Setenv(kv[0], kv[1])
	}
	os.Exit(m.Run())
}

const (
	alice       = "Alice <alice@example.com>"
	bob         = "Bob <bob@example.com>"
	descriptors = "services/*.yaml"
	user        = "gitmon-bot"
	token       = "t0ken-for-tests"
)

// sharedCache is one bounded cache for every Repo, as the daemon has.
var sharedCache = cache.NewObjectLRU(8 * cache.MiByte)

// transports serve a gitserver.Repo over each supported transport and
// return the config that reaches it.
var transports = []struct {
	name  string
	serve func(t *testing.T, repo *gitserver.Repo) Remote
}{
	{"file", func(t *testing.T, repo *gitserver.Repo) Remote {
		return Remote{URL: "file://" + repo.Bare}
	}},
	{"path", func(t *testing.T, repo *gitserver.Repo) Remote {
		return Remote{URL: repo.Bare}
	}},
	{"git", func(t *testing.T, repo *gitserver.Repo) Remote {
		return Remote{URL: gitserver.Daemon(t, repo), Insecure: true}
	}},
	{"http", func(t *testing.T, repo *gitserver.Repo) Remote {
		url, _ := gitserver.HTTP(t, repo, user, token)
		return Remote{URL: url, Insecure: true, Username: user, Password: token}
	}},
	{"https", func(t *testing.T, repo *gitserver.Repo) Remote {
		s := gitserver.StartHTTPS(t, repo, user, token)
		return Remote{URL: s.URL, CAFile: s.CAFile, Username: user, Password: token}
	}},
	{"ssh", func(t *testing.T, repo *gitserver.Repo) Remote {
		url, key, knownHosts := gitserver.SSH(t, repo)
		return sshRemote(t, url, key, knownHosts)
	}},
}

// sshRemote reaches url with the key in keyFile, trusting knownHosts.
func sshRemote(t *testing.T, url, keyFile, knownHosts string) Remote {
	t.Helper()
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return Remote{URL: url, SSHKey: string(key), SSHKeyFile: keyFile, KnownHostsFile: knownHosts}
}

// open makes a Repo with its own store.
func open(t testing.TB, cfg Remote) *Repo {
	t.Helper()
	r, err := NewRepo(cfg, Options{Dir: filepath.Join(t.TempDir(), "objects"), Cache: sharedCache, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// seed gives repo a history of n commits on qa, each changing one
// service, and a prod branch at qa's tip. AutoPush is off while seeding.
func seed(t testing.TB, repo *gitserver.Repo, n int) {
	t.Helper()
	repo.AutoPush = false
	repo.WriteFile("README.md", "# deployments\n")
	for i := 0; i < n; i++ {
		repo.WriteFile(fmt.Sprintf("services/svc-%02d.yaml", i%10),
			fmt.Sprintf("service: svc-%02d\nversion: 1.0.%d\ndomain: svc-%02d.qa.example.com\n", i%10, i, i%10))
		repo.WriteFile(fmt.Sprintf("docs/notes-%02d.md", i), strings.Repeat("notes ", 50+i))
		repo.Commit("qa", fmt.Sprintf("change %d", i), alice, alice)
	}
	repo.Push("qa")
	repo.AutoPush = true
	repo.Branch("prod", "qa")
}

func shas(cs []Commit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.SHA
	}
	return out
}

func countObjects(t *testing.T, r *Repo) int {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	iter, err := r.st.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := iter.ForEach(func(plumbing.EncodedObject) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustFetch(t *testing.T, r *Repo, branch string) {
	t.Helper()
	if err := r.Fetch(context.Background(), branch); err != nil {
		t.Fatalf("Fetch(%s): %v", branch, err)
	}
}

func mustWalk(t *testing.T, r *Repo, from, to string, limit int) ([]Commit, *Rewrite) {
	t.Helper()
	cs, rw, err := r.Walk(context.Background(), from, to, limit)
	if err != nil {
		t.Fatalf("Walk(%.7s, %.7s): %v", from, to, err)
	}
	return cs, rw
}

// TestTransports runs one suite against every transport, over real
// servers: listing, incremental fetches, first-parent walks through
// merges and promotions, rewrites, file changes and blobs.
func TestTransports(t *testing.T) {
	gitserver.Require(t)
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := gitserver.NewRepo(t)
			seed(t, repo, 30)
			r := open(t, tc.serve(t, repo))
			suite(t, repo, r)
		})
	}
}

func suite(t *testing.T, repo *gitserver.Repo, r *Repo) {
	ctx := context.Background()
	repo.Tag("v1", repo.Head("qa"))

	// Listing: branches only, no tags, nothing fetched.
	branches, err := r.ListBranches(ctx)
	if err != nil {
		t.Fatalf("ListBranches: %v", err)
	}
	if want := map[string]string{"qa": repo.Head("qa"), "prod": repo.Head("prod")}; !reflect.DeepEqual(branches, want) {
		t.Fatalf("ListBranches = %v, want %v", branches, want)
	}
	if n := countObjects(t, r); n != 0 {
		t.Fatalf("listing stored %d objects", n)
	}

	// A first fetch brings the history; the next, after one commit,
	// brings only that commit's objects.
	mustFetch(t, r, "qa")
	before := countObjects(t, r)
	if before < 100 {
		t.Fatalf("first fetch stored only %d objects", before)
	}
	a := repo.Head("qa")
	repo.WriteFile("services/svc-01.yaml", "service: svc-01\nversion: 2.0.0\n")
	b := repo.Commit("qa", "bump svc-01", alice, bob)
	mustFetch(t, r, "qa")
	// The commit, the root tree, services/, and one blob.
	if grown := countObjects(t, r) - before; grown < 4 || grown > 6 {
		t.Fatalf("incremental fetch grew the store by %d objects (of %d), want 4", grown, before)
	}
	if err := r.Fetch(ctx, "qa"); err != nil {
		t.Fatalf("fetch with nothing new: %v", err)
	}

	cs, rw := mustWalk(t, r, a, b, 100)
	if rw != nil || !reflect.DeepEqual(shas(cs), []string{b}) {
		t.Fatalf("Walk(a, b) = %v, %+v", shas(cs), rw)
	}
	if c := cs[0]; c.Message != "bump svc-01\n" || c.Author.Email != "alice@example.com" ||
		c.Committer.Name != "Bob" || !reflect.DeepEqual(c.Parents, []string{a}) || c.Committer.When.IsZero() {
		t.Fatalf("commit = %+v", c)
	}
	changed, err := r.Changed(ctx, cs[0], descriptors)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0].Path != "services/svc-01.yaml" || changed[0].OldBlob == "" || changed[0].NewBlob == "" {
		t.Fatalf("Changed = %+v", changed)
	}
	blob, err := r.ReadBlob(ctx, changed[0].NewBlob, 1024)
	if err != nil || string(blob) != "service: svc-01\nversion: 2.0.0\n" {
		t.Fatalf("ReadBlob = %q, %v", blob, err)
	}

	// A merge: its second parent's commits are not in the walk.
	repo.Branch("feature", "qa")
	repo.WriteFile("services/feat.yaml", "service: feat\n")
	s1 := repo.Commit("feature", "feature 1", alice, alice)
	repo.WriteFile("services/feat.yaml", "service: feat\nversion: 1\n")
	s2 := repo.Commit("feature", "feature 2", alice, alice)
	repo.WriteFile("README.md", "# deployments, on qa\n")
	c := repo.Commit("qa", "readme", alice, alice)
	m := repo.Merge("qa", "feature", "merge feature", bob)
	repo.Remove("services/svc-02.yaml")
	d := repo.Commit("qa", "drop svc-02", alice, alice)
	mustFetch(t, r, "qa")
	cs, rw = mustWalk(t, r, b, d, 100)
	if rw != nil || !reflect.DeepEqual(shas(cs), []string{c, m, d}) {
		t.Fatalf("Walk through a merge = %v %+v, want [c m d] = %v", shas(cs), rw, []string{c, m, d})
	}
	if !reflect.DeepEqual(cs[1].Parents, []string{c, s2}) {
		t.Fatalf("merge parents = %v", cs[1].Parents)
	}
	changed, err = r.Changed(ctx, cs[1], descriptors) // against the first parent
	if err != nil || len(changed) != 1 || changed[0].Path != "services/feat.yaml" || changed[0].OldBlob != "" {
		t.Fatalf("Changed(merge) = %+v, %v", changed, err)
	}
	changed, err = r.Changed(ctx, cs[0], descriptors) // README only
	if err != nil || changed == nil || len(changed) != 0 {
		t.Fatalf("Changed(readme) = %#v, %v", changed, err)
	}
	changed, err = r.Changed(ctx, cs[2], descriptors)
	if err != nil || len(changed) != 1 || changed[0].Path != "services/svc-02.yaml" || changed[0].NewBlob != "" {
		t.Fatalf("Changed(delete) = %+v, %v", changed, err)
	}
	for _, q := range []struct {
		a, b string
		want bool
	}{{s1, d, true}, {a, d, true}, {d, d, true}, {d, a, false}, {s2, c, false}} {
		if got, err := r.IsAncestor(ctx, q.a, q.b); err != nil || got != q.want {
			t.Errorf("IsAncestor(%.7s, %.7s) = %v, %v; want %v", q.a, q.b, got, err, q.want)
		}
	}
	// From a commit that only a merge's second parent reaches: no
	// rewrite, and the first-parent commits it does not reach.
	cs, rw = mustWalk(t, r, s1, d, 100)
	if rw != nil || !reflect.DeepEqual(shas(cs), []string{c, m, d}) {
		t.Fatalf("Walk(s1, d) = %v %+v", shas(cs), rw)
	}
	if _, _, err := r.Walk(ctx, b, d, 2); !errors.Is(err, ErrLimit) {
		t.Fatalf("Walk over the limit: %v", err)
	}
	cs, _ = mustWalk(t, r, "", d, 100)
	if !reflect.DeepEqual(shas(cs), []string{d}) {
		t.Fatalf("Walk from nothing = %v", shas(cs))
	}

	// A promotion: prod's first-parent history holds the merge only.
	p0 := repo.Head("prod")
	p1 := repo.Merge("prod", "qa", "promote qa", bob)
	branches, err = r.ListBranches(ctx)
	if err != nil || branches["prod"] != p1 || branches["feature"] != s2 {
		t.Fatalf("ListBranches = %v, %v", branches, err)
	}
	mustFetch(t, r, "prod")
	cs, rw = mustWalk(t, r, p0, p1, 100)
	if rw != nil || !reflect.DeepEqual(shas(cs), []string{p1}) {
		t.Fatalf("Walk(prod) = %v %+v", shas(cs), rw)
	}
	files, err := r.Files(ctx, p1, descriptors)
	if err != nil || len(files) != 10 || files[0].Path != "services/feat.yaml" || files[1].Path != "services/svc-00.yaml" || files[1].Size == 0 {
		t.Fatalf("Files(prod) = %+v, %v", files, err)
	}

	// A force-push: the rewrite names its merge base and the dropped
	// commits, newest first, and the walk goes on from the merge base.
	repo.ForcePush("qa", c)
	e := repo.Commit("qa", "after the force-push", alice, alice)
	mustFetch(t, r, "qa")
	cs, rw = mustWalk(t, r, d, e, 100)
	if !reflect.DeepEqual(shas(cs), []string{e}) || rw == nil || rw.MergeBase != c || !reflect.DeepEqual(rw.Dropped, []string{d, m}) {
		t.Fatalf("Walk after force-push = %v %+v; want [e], base c, dropped [d m]", shas(cs), rw)
	}
	if ok, err := r.IsAncestor(ctx, d, e); err != nil || ok {
		t.Fatalf("IsAncestor(d, e) = %v, %v", ok, err)
	}

	// A force-push to an unrelated history: no merge base, every commit.
	repo.WriteFile("services/new.yaml", "service: new\n")
	o1 := repo.Commit("orphan", "new history", alice, alice)
	o2 := repo.Commit("orphan", "new history 2", alice, alice)
	repo.ForcePush("qa", o2)
	mustFetch(t, r, "qa")
	cs, rw = mustWalk(t, r, e, o2, 100)
	if !reflect.DeepEqual(shas(cs), []string{o1, o2}) || rw == nil || rw.MergeBase != "" || len(rw.Dropped) != 30+3 || rw.Dropped[0] != e {
		t.Fatalf("Walk to an unrelated history = %v %+v", shas(cs), rw)
	}
	changed, err = r.Changed(ctx, cs[0], descriptors) // a root commit: every file
	if err != nil || len(changed) != 1 || changed[0].Path != "services/new.yaml" || changed[0].OldBlob != "" {
		t.Fatalf("Changed(root) = %+v, %v", changed, err)
	}

	// A deleted branch, and one that never existed.
	repo.DeleteBranch("feature")
	if err := r.Fetch(ctx, "feature"); !errors.Is(err, ErrNoBranch) {
		t.Fatalf("Fetch(deleted branch) = %v, want ErrNoBranch", err)
	}
}

// TestFiles covers globs, additions, deletions and sizes on one commit
// history, over file://.
func TestFiles(t *testing.T) {
	gitserver.Require(t)
	ctx := context.Background()
	repo := gitserver.NewRepo(t)
	repo.WriteFile("services/a.yaml", "service: a\n")
	repo.WriteFile("services/b.yaml", "service: b\n")
	repo.WriteFile("services/notes.txt", "not a descriptor\n")
	repo.WriteFile("services/sub/deep.yaml", "service: deep\n")
	repo.WriteFile("other/x.yaml", "service: x\n")
	repo.WriteFile("top.yaml", "service: top\n")
	root := repo.Commit("qa", "root", alice, alice)
	repo.WriteFile("services/a.yaml", "service: a\nversion: 2\n")
	repo.Remove("services/b.yaml")
	repo.WriteFile("services/c.yaml", "service: c\n")
	repo.WriteFile("services/sub/deep.yaml", "service: deep\nversion: 2\n")
	repo.WriteFile("other/x.yaml", "service: x\nversion: 2\n")
	second := repo.Commit("qa", "second", alice, alice)

	r := open(t, Remote{URL: "file://" + repo.Bare})
	mustFetch(t, r, "qa")
	rootC, err := r.Commit(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	secondC, err := r.Commit(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	blob := func(p, at string) string { return repo.BareGit("rev-parse", at+":"+p) }
	for _, tc := range []struct {
		name    string
		commit  Commit
		pattern string
		want    []FileChange
	}{
		{"root adds every match", rootC, descriptors, []FileChange{
			{Path: "services/a.yaml", NewBlob: blob("services/a.yaml", root)},
			{Path: "services/b.yaml", NewBlob: blob("services/b.yaml", root)},
		}},
		{"modified, deleted, added", secondC, descriptors, []FileChange{
			{Path: "services/a.yaml", OldBlob: blob("services/a.yaml", root), NewBlob: blob("services/a.yaml", second)},
			{Path: "services/b.yaml", OldBlob: blob("services/b.yaml", root)},
			{Path: "services/c.yaml", NewBlob: blob("services/c.yaml", second)},
		}},
		{"deeper glob", secondC, "services/*/*.yaml", []FileChange{
			{Path: "services/sub/deep.yaml", OldBlob: blob("services/sub/deep.yaml", root), NewBlob: blob("services/sub/deep.yaml", second)},
		}},
		{"wildcard folder", secondC, "*/x.yaml", []FileChange{
			{Path: "other/x.yaml", OldBlob: blob("other/x.yaml", root), NewBlob: blob("other/x.yaml", second)},
		}},
		{"character class", secondC, "services/[ab].yaml", []FileChange{
			{Path: "services/a.yaml", OldBlob: blob("services/a.yaml", root), NewBlob: blob("services/a.yaml", second)},
			{Path: "services/b.yaml", OldBlob: blob("services/b.yaml", root)},
		}},
		{"no match", secondC, "top.yaml", []FileChange{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Changed(ctx, tc.commit, tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Changed = %+v\nwant      %+v", got, tc.want)
			}
		})
	}

	files, err := r.Files(ctx, second, descriptors)
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Path: "services/a.yaml", Blob: blob("services/a.yaml", second), Size: int64(len("service: a\nversion: 2\n"))},
		{Path: "services/c.yaml", Blob: blob("services/c.yaml", second), Size: int64(len("service: c\n"))},
	}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("Files = %+v\nwant    %+v", files, want)
	}
	if files, err := r.Files(ctx, second, "*.yaml"); err != nil || len(files) != 1 || files[0].Path != "top.yaml" {
		t.Fatalf("Files(*.yaml) = %+v, %v", files, err)
	}
	if _, err := r.Files(ctx, second, "services/[.yaml"); err == nil {
		t.Fatal("a bad glob was accepted")
	}
	if _, err := r.Commit(ctx, strings.Repeat("ab", 20)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Commit(unknown) = %v, want ErrNotFound", err)
	}
}

func TestReadBlobCap(t *testing.T) {
	gitserver.Require(t)
	ctx := context.Background()
	repo := gitserver.NewRepo(t)
	big := strings.Repeat("x: 1\n", 300<<10/5) // 300 KiB
	repo.WriteFile("services/big.yaml", big)
	repo.WriteFile("services/small.yaml", "service: small\n")
	sha := repo.Commit("qa", "big", alice, alice)
	r := open(t, Remote{URL: repo.Bare})
	mustFetch(t, r, "qa")
	files, err := r.Files(ctx, sha, descriptors)
	if err != nil || len(files) != 2 || files[0].Size != int64(len(big)) {
		t.Fatalf("Files = %+v, %v", files, err)
	}
	if _, err := r.ReadBlob(ctx, files[0].Blob, 256<<10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadBlob over the cap = %v, want ErrTooLarge", err)
	}
	if b, err := r.ReadBlob(ctx, files[0].Blob, int64(len(big))); err != nil || string(b) != big {
		t.Fatalf("ReadBlob at exactly the cap: %d bytes, %v", len(b), err)
	}
	if b, err := r.ReadBlob(ctx, files[1].Blob, 256<<10); err != nil || string(b) != "service: small\n" {
		t.Fatalf("ReadBlob = %q, %v", b, err)
	}
	if _, err := r.ReadBlob(ctx, strings.Repeat("0", 40), 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadBlob(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := r.ReadBlob(ctx, "HEAD", 10); err == nil {
		t.Fatal("ReadBlob accepted a name that is not a SHA")
	}
}

// TestWrongPassword: the error says what failed, and never holds the
// password.
func TestWrongPassword(t *testing.T) {
	gitserver.Require(t)
	repo := gitserver.NewRepo(t)
	seed(t, repo, 2)
	url, _ := gitserver.HTTP(t, repo, user, token)
	const canary = "canary-Pa55w0rd/@:%-7f3a9"
	for name, cfg := range map[string]Remote{
		"wrong password": {URL: url, Insecure: true, Username: user, Password: canary},
		"no credentials": {URL: url, Insecure: true},
	} {
		t.Run(name, func(t *testing.T) {
			r := open(t, cfg)
			_, listErr := r.ListBranches(context.Background())
			fetchErr := r.Fetch(context.Background(), "qa")
			for _, err := range []error{listErr, fetchErr} {
				if !errors.Is(err, ErrAuth) {
					t.Fatalf("error %v does not match ErrAuth", err)
				}
				for _, text := range []string{err.Error(), fmt.Sprintf("%+v %#v %q", err, err, err)} {
					for _, secret := range []string{canary, "Pa55w0rd", "canary-Pa55w0rd%2F"} {
						if strings.Contains(text, secret) {
							t.Fatalf("error text holds the password: %s", text)
						}
					}
				}
				if !strings.Contains(err.Error(), redact.URL(url)) {
					t.Errorf("error %q does not name the repository", err)
				}
			}
			t.Logf("error: %v", listErr)
		})
	}
}

// TestServerDownThenBack: polls fail while the server is down, and work
// again once it is back on the same port.
func TestServerDownThenBack(t *testing.T) {
	gitserver.Require(t)
	ctx := context.Background()
	repo := gitserver.NewRepo(t)
	seed(t, repo, 3)
	s := gitserver.StartHTTP(t, repo, user, token)
	r := open(t, Remote{URL: s.URL, Insecure: true, Username: user, Password: token})
	if _, err := r.ListBranches(ctx); err != nil {
		t.Fatal(err)
	}
	mustFetch(t, r, "qa")
	old := repo.Head("qa")

	s.Stop()
	if _, err := r.ListBranches(ctx); err == nil || errors.Is(err, ErrAuth) {
		t.Fatalf("ListBranches with the server down = %v", err)
	}
	if err := r.Fetch(ctx, "qa"); err == nil {
		t.Fatal("Fetch with the server down succeeded")
	}

	s.Start()
	tip := repo.Commit("qa", "while it was down", alice, alice)
	branches, err := r.ListBranches(ctx)
	if err != nil || branches["qa"] != tip {
		t.Fatalf("ListBranches after restart = %v, %v", branches, err)
	}
	mustFetch(t, r, "qa")
	if cs, _ := mustWalk(t, r, old, tip, 10); len(cs) != 1 {
		t.Fatalf("Walk = %v", shas(cs))
	}
}

// TestSSHHostKey: a host key known_hosts does not hold is refused.
func TestSSHHostKey(t *testing.T) {
	gitserver.Require(t)
	repo := gitserver.NewRepo(t)
	seed(t, repo, 1)
	url, key, _ := gitserver.SSH(t, repo)
	_, _, otherHosts := gitserver.SSH(t, repo)
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, knownHosts := range map[string]string{"another host's key": otherHosts, "unknown host": empty} {
		t.Run(name, func(t *testing.T) {
			r := open(t, sshRemote(t, url, key, knownHosts))
			if _, err := r.ListBranches(context.Background()); !errors.Is(err, ErrHostKey) {
				t.Fatalf("ListBranches = %v, want ErrHostKey", err)
			}
			if err := r.Fetch(context.Background(), "qa"); !errors.Is(err, ErrHostKey) {
				t.Fatalf("Fetch = %v, want ErrHostKey", err)
			}
		})
	}
}

// TestSSHAliases: git+ssh:// and ssh+git:// are ssh://.
func TestSSHAliases(t *testing.T) {
	gitserver.Require(t)
	repo := gitserver.NewRepo(t)
	seed(t, repo, 1)
	url, key, knownHosts := gitserver.SSH(t, repo)
	for _, scheme := range []string{"git+ssh", "SSH+git"} {
		r := open(t, sshRemote(t, scheme+strings.TrimPrefix(url, "ssh"), key, knownHosts))
		if branches, err := r.ListBranches(context.Background()); err != nil || branches["qa"] != repo.Head("qa") {
			t.Fatalf("%s: ListBranches = %v, %v", scheme, branches, err)
		}
		mustFetch(t, r, "qa")
	}
}

// TestTimeout: a server that accepts and never answers costs one
// attempt's timeout, whatever the transport.
func TestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // and say nothing
		}
	}()
	addr := ln.Addr().String()
	keyFile := filepath.Join(t.TempDir(), "id")
	gitserver.Require(t)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyFile).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	for _, cfg := range []Remote{
		{URL: "git://" + addr + "/repo.git", Insecure: true},
		{URL: "http://" + addr + "/repo.git", Insecure: true},
		sshRemote(t, "ssh://git@"+addr+"/repo.git", keyFile, filepath.Join(t.TempDir(), "none")),
	} {
		t.Run(strings.SplitN(cfg.URL, ":", 2)[0], func(t *testing.T) {
			if strings.HasPrefix(cfg.URL, "ssh") {
				// known_hosts must exist; its content does not matter here.
				os.WriteFile(cfg.KnownHostsFile, nil, 0o600)
			}
			r, err := NewRepo(cfg, Options{Dir: t.TempDir(), Cache: sharedCache, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			start := time.Now()
			_, err = r.ListBranches(context.Background())
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("ListBranches = %v, want a deadline error", err)
			}
			err = r.Fetch(context.Background(), "qa")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Fetch = %v, want a deadline error", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("two attempts took %s with a 300ms timeout", d)
			}
		})
	}
}

// TestFetchRepairsStore: a store that lost objects it claims to have is
// rebuilt by the next fetch.
func TestFetchRepairsStore(t *testing.T) {
	gitserver.Require(t)
	ctx := context.Background()
	repo := gitserver.NewRepo(t)
	seed(t, repo, 5)
	dir := filepath.Join(t.TempDir(), "objects")
	cfg := Remote{URL: "file://" + repo.Bare}
	r, err := NewRepo(cfg, Options{Dir: dir, Cache: cache.NewObjectLRU(cache.MiByte)})
	if err != nil {
		t.Fatal(err)
	}
	mustFetch(t, r, "qa")
	mustFetch(t, r, "prod")
	first, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*"))
	if err != nil || len(first) == 0 {
		t.Fatalf("packs: %v %v", first, err)
	}
	repo.WriteFile("services/svc-01.yaml", "service: svc-01\nversion: 9\n")
	repo.Commit("qa", "one", alice, alice)
	mustFetch(t, r, "qa")
	r.Close()
	// Lose the first pack: the store still holds the newest commit, so
	// go-git asks for nothing older.
	for _, f := range first {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	r, err = NewRepo(cfg, Options{Dir: dir, Cache: cache.NewObjectLRU(cache.MiByte)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	repo.WriteFile("services/svc-02.yaml", "service: svc-02\nversion: 9\n")
	tip := repo.Commit("qa", "two", alice, alice)
	mustFetch(t, r, "qa")
	cs, _ := mustWalk(t, r, "", tip, 10)
	if files, err := r.Files(ctx, cs[0].SHA, descriptors); err != nil || len(files) != 5 {
		t.Fatalf("Files after repair = %+v, %v", files, err)
	}
	// The rebuild fetched prod again too.
	if _, err := r.Files(ctx, repo.Head("prod"), descriptors); err != nil {
		t.Fatalf("prod after repair: %v", err)
	}
}

func TestNewRepoErrors(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]Remote{
		"no URL":           {},
		"ssh without key":  {URL: "ssh://git@example.com/repo.git"},
		"ssh with bad key": {URL: "ssh://git@example.com/repo.git", SSHKey: "not a key"},
		"missing CA":       {URL: "https://example.com/repo.git", CAFile: filepath.Join(dir, "none.pem")},
		"bad glob":         {URL: "https://example.com/repo.git", Descriptors: "services/[.yaml"},
		"plain git://":     {URL: "git://example.com/repo.git"},
		"plain http://":    {URL: "http://example.com/repo.git"},
	} {
		if _, err := NewRepo(cfg, Options{Dir: filepath.Join(dir, name)}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r, err := NewRepo(Remote{URL: "https://example.com/repo.git"}, Options{Dir: filepath.Join(dir, "ok")})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Fetch(context.Background(), "qa:refs/heads/x"); err == nil {
		t.Error("Fetch accepted a refspec for a branch name")
	}
	if err := r.Fetch(context.Background(), "-qa"); err == nil {
		t.Error("Fetch accepted a branch name starting with '-'")
	}
}

// TestRemoteHidesSecrets: printing a Remote, however, shows none of its
// secrets.
func TestRemoteHidesSecrets(t *testing.T) {
	r := Remote{URL: "https://example.com/repo.git", Username: "user-canary", Password: "pw-canary", SSHKey: "key-canary"}
	for _, text := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s %q", r, r, r, r, r), fmt.Sprintf("%v", &r)} {
		if strings.Contains(text, "canary") {
			t.Errorf("printed Remote holds a secret: %s", text)
		}
	}
}

// TestHTTPKeepAlive: polls reuse one connection, with and without a
// CA bundle.
func TestHTTPKeepAlive(t *testing.T) {
	gitserver.Require(t)
	repo := gitserver.NewRepo(t)
	seed(t, repo, 1)
	for _, s := range []*gitserver.HTTPServer{gitserver.StartHTTP(t, repo, user, token), gitserver.StartHTTPS(t, repo, user, token)} {
		r := open(t, Remote{URL: s.URL, Insecure: true, CAFile: s.CAFile, Username: user, Password: token})
		before := s.Conns.Load()
		for i := 0; i < 5; i++ {
			if _, err := r.ListBranches(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.Conns.Load() - before; n != 1 {
			t.Errorf("%s: 5 polls opened %d connections, want 1", s.URL, n)
		}
	}
}

// TestFetchRepairsEmptyRef: gitmon killed while go-git wrote a ref leaves
// an empty ref file (seen in the SIGKILL soak); every later fetch failed
// with "ref file is empty" for ever. The next fetch repairs the store.
func TestFetchRepairsEmptyRef(t *testing.T) {
	gitserver.Require(t)
	ctx := context.Background()
	repo := gitserver.NewRepo(t)
	seed(t, repo, 3)
	dir := filepath.Join(t.TempDir(), "objects")
	cfg := Remote{URL: "file://" + repo.Bare}
	r, err := NewRepo(cfg, Options{Dir: dir, Cache: cache.NewObjectLRU(cache.MiByte)})
	if err != nil {
		t.Fatal(err)
	}
	mustFetch(t, r, "qa")
	mustFetch(t, r, "prod")
	r.Close()
	for _, b := range []string{"qa", "prod"} {
		if err := os.WriteFile(filepath.Join(dir, "refs", "remotes", "origin", b), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err = NewRepo(cfg, Options{Dir: dir, Cache: cache.NewObjectLRU(cache.MiByte)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	repo.WriteFile("services/svc-01.yaml", "service: svc-01\nversion: 9\n")
	tip := repo.Commit("qa", "one", alice, alice)
	mustFetch(t, r, "qa")
	if files, err := r.Files(ctx, tip, descriptors); err != nil || len(files) != 3 {
		t.Fatalf("Files after repair = %+v, %v", files, err)
	}
	if _, err := r.Files(ctx, repo.Head("prod"), descriptors); err != nil {
		t.Fatalf("prod after repair: %v", err)
	}
}
