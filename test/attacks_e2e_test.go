package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// The defects testing as an attacker found in wave 1 (issue 7), each
// against the real daemon and a real Git server.

// TestAttack_ForcePushAwayAndBack: `push -f X~1`, then `push -f Z` back
// to the old tip: X..Z were processed once and are not processed again.
func TestAttack_ForcePushAwayAndBack(t *testing.T) {
	for _, mode := range []string{"reject", "allow"} {
		t.Run(mode, func(t *testing.T) {
			repo := NewGitRepo(t)
			url := gitserver.Daemon(t, repo)
			repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
			base := repo.Commit("qa", "payments 1.0.0", Alice, Alice)
			d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true,
				Policy: "  committers: [\"*@example.com\"]\n  force_push: " + mode + "\n"})
			aStart(t, d, base)

			repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0"))
			x := repo.Commit("qa", "payments 1.1.0", Alice, Alice)
			aWantStatus(t, d.RecordFor("qa", "payments", x), "succeeded", "deploy")
			repo.WriteFile(aPath("payments"), Descriptor("payments", "1.2.0"))
			z := repo.Commit("qa", "payments 1.2.0", Alice, Alice)
			aWantStatus(t, d.RecordFor("qa", "payments", z), "succeeded", "deploy")

			repo.ForcePush("qa", base) // X~1
			aEvent(d, "force_push", func(e Event) bool { return e.Commit == base })
			repo.ForcePush("qa", z) // and back
			// A new commit on top: once it is decided, the way back was
			// processed; it is the only thing that deploys after it.
			repo.WriteFile(aPath("payments"), Descriptor("payments", "1.3.0"))
			w := repo.Commit("qa", "payments 1.3.0", Alice, Alice)
			aWantStatus(t, d.RecordFor("qa", "payments", w), "succeeded", "deploy")
			perCommit := map[string]int{}
			for _, rec := range d.Records() {
				perCommit[rec.Commit]++
			}
			for _, c := range []string{x, z} {
				if perCommit[c] != 1 {
					t.Errorf("commit %.10s has %d records, want 1 (processed once per environment)", c, perCommit[c])
				}
			}
			want := []string{aDeployLine("payments", "1.1.0", "deploy", x), aDeployLine("payments", "1.2.0", "deploy", z)}
			want = append(want, aDeployLine("payments", "1.3.0", "deploy", w))
			aWantDeployed(t, d, want...)
		})
	}
}

// TestAttack_LaunderingThroughABrokenDescriptor: an outsider's image
// hidden in a descriptor that does not parse is rejected (descriptor);
// the allowed committer who repairs the syntax does not take it over.
func TestAttack_LaunderingThroughABrokenDescriptor(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0", "image: registry.example.com/payments:1.0.0"))
	base := repo.Commit("qa", "payments 1.0.0", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0", "image: evil.example.net/payments:1.0.0", "version: 1.0.0"))
	bad := repo.Commit("qa", "tidy", Mallory, Mallory)
	r := d.RecordFor("qa", "payments", bad)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "descriptor", bad, "")

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0", "image: evil.example.net/payments:1.0.0"))
	fix := repo.Commit("qa", "fix the duplicate key", Alice, Alice)
	r = d.RecordFor("qa", "payments", fix)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "committers", bad, "image")
	aWantDeployed(t, d)

	// Overwriting the image with an allowed commit deploys again.
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.1", "image: registry.example.com/payments:1.0.1"))
	good := repo.Commit("qa", "payments 1.0.1", Alice, Alice)
	aWantStatus(t, d.RecordFor("qa", "payments", good), "succeeded", "deploy")
}

// TestAttack_PoisonousCommit: a 1 MB commit message with a descriptor of
// 1,100 leaf fields (rejected: more than 1,000) and one of 900 (kept once
// per commit, capped): the database stays small, and the next commit
// deploys as usual.
func TestAttack_PoisonousCommit(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	repo.WriteFile(aPath("orders"), Descriptor("orders", "1.0.0"))
	base := repo.Commit("qa", "two services", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	params := func(n int) string {
		var b strings.Builder
		b.WriteString("params:\n")
		for i := range n {
			fmt.Fprintf(&b, "  k%04d: %d\n", i, i)
		}
		return b.String()
	}
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0", params(1100)))
	repo.WriteFile(aPath("orders"), Descriptor("orders", "1.1.0", params(900)))
	huge := "payments and orders\n\n" + strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	poison := repo.Commit("qa", huge, Alice, Alice)
	r := d.RecordFor("qa", "payments", poison)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "descriptor", poison, "")
	if !strings.Contains(r.Reasons[0].Message, "at most 1000") {
		t.Errorf("the reason does not say the bound: %q", r.Reasons[0].Message)
	}
	aWantStatus(t, d.RecordFor("qa", "orders", poison), "succeeded", "deploy")

	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.2.0"))
	next := repo.Commit("qa", "payments 1.2.0", Alice, Alice)
	aWantStatus(t, d.RecordFor("qa", "payments", next), "succeeded", "deploy")

	var size int64
	filepath.Walk(filepath.Join(d.Dir, "state"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), "gitmon.db") {
			size += fi.Size()
		}
		return nil
	})
	if size > 8<<20 {
		t.Errorf("the database takes %d bytes after one 1 MiB message: it is not kept once, capped", size)
	}
}

// TestAttack_PlanAgreesWithServe: plan names only what the commit
// touches, takes short SHAs and refs/heads/…, and an older commit is no
// change.
func TestAttack_PlanAgreesWithServe(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	repo.WriteFile(aPath("orders"), Descriptor("orders", "1.0.0"))
	base := repo.Commit("qa", "two services", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	// Long ago: a skipped change of orders.
	repo.WriteFile(aPath("orders"), Descriptor("orders", "1.1.0"))
	skipped := repo.Commit("qa", "orders 1.1.0 [skip deploy]", Alice, Alice)
	aWantStatus(t, d.RecordFor("qa", "orders", skipped), "skipped", "deploy")

	// A branch with one commit of Mallory's that touches payments only.
	repo.AutoPush = false
	repo.Branch("pr", "qa")
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.1"))
	evil := repo.Commit("pr", "payments 1.0.1", Mallory, Mallory)
	repo.AutoPush = true
	repo.Push("pr")

	for _, ref := range []string{"pr", "refs/heads/pr", evil, evil[:10]} {
		code, entries := bPlan(t, d, "--env", "qa", "--ref", ref)
		if code != 4 || len(entries) != 1 || entries[0].Service != "payments" || entries[0].Decision != "reject" {
			t.Errorf("plan --ref %s: exit %d %+v; want exit 4 and payments rejected only", ref, code, entries)
		}
	}
	// An older commit of the branch: serve would process nothing new.
	if code, entries := bPlan(t, d, "--env", "qa", "--ref", base[:12]); code != 0 || len(entries) != 0 {
		t.Errorf("plan of an older commit: exit %d %+v; want exit 0 and nothing", code, entries)
	}
	if r := d.Gitmon("plan", "--config", d.Config, "--env", "qa", "--ref", "no-such-ref"); r.code != 2 || !strings.Contains(r.stderr, "no such branch, tag or commit") {
		t.Errorf("plan of an unknown ref: %v; want exit 2 naming the ref", r)
	}
}
