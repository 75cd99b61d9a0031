package store

import (
	"context"
	"slices"
	"testing"

	"github.com/gitmon-dev/gitmon/policy"
)

// Commit objects are kept once per repository with the records they were
// verified for; a merge's list, once known, stays. A record's verified and
// signer survive the write, a re-decision and a read.
func TestCommitObjectsAndSigner(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r := pendingRecord(t, 1, "1.0.0")
	r.Verified, r.Signer = true, &policy.Signer{Type: "ssh", Key: "SHA256:k", Identity: "alice@example.com"}
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(1), Records: []*Record{r},
		Objects: []CommitObject{{SHA: sha(1), Object: []byte("tree x\n\nm\n")}, {SHA: sha(2), Object: []byte("merge"), KnownMergedIn: true, MergedIn: []string{sha(3)}}}}))
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(2),
		Objects: []CommitObject{{SHA: sha(1), Object: []byte("tree x\n\nm\n"), KnownMergedIn: true}, {SHA: sha(2), Object: []byte("merge"), KnownMergedIn: true}}}))
	got, err := s.CommitObjects(ctx, "deployments", []string{sha(1), sha(2), sha(4)})
	must(t, err)
	if len(got) != 2 || string(got[sha(1)].Object) != "tree x\n\nm\n" || !got[sha(1)].KnownMergedIn || len(got[sha(1)].MergedIn) != 0 {
		t.Errorf("objects %+v", got)
	}
	if m := got[sha(2)]; !m.KnownMergedIn || !slices.Equal(m.MergedIn, []string{sha(3)}) {
		t.Errorf("a merge's list was replaced: %+v", m)
	}
	if other, _ := s.CommitObjects(ctx, "other", []string{sha(1)}); len(other) != 0 {
		t.Errorf("another repository reads %+v", other)
	}
	back := get(t, s, r.ID)
	if !back.Verified || back.Signer == nil || *back.Signer != *r.Signer {
		t.Fatalf("read back verified %v signer %+v", back.Verified, back.Signer)
	}
	back.Verified, back.Signer, back.Status = false, nil, StatusRejected
	must(t, s.Decide(ctx, back, nil))
	if again := get(t, s, r.ID); again.Verified || again.Signer != nil {
		t.Errorf("after Decide: verified %v signer %+v", again.Verified, again.Signer)
	}
}
