package policy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/trust"
	"github.com/gitmon-dev/gitmon/policy"
)

// signed returns c as verified by a key with the given identities.
func signed(c policy.Commit, typ, key string, ids ...string) policy.Commit {
	c.Signature = &policy.Signature{Signer: trust.Signer{Type: typ, Key: key, Identities: ids}}
	return c
}

func refused(c policy.Commit, err error) policy.Commit {
	c.Signature = &policy.Signature{Err: err}
	return c
}

func requireSignatures(merges string) func(*policy.Config) {
	return func(c *policy.Config) {
		c.Signatures = policy.Signatures{Required: true, AllowedSignersFile: "/trust/allowed_signers"}
		c.Merges = merges
	}
}

func TestSignaturesRule(t *testing.T) {
	good := desc(t)
	alice := commit("a1", "alice@example.com", "bump")
	bob := commit("b2", "bob@platform.example.com", "ports")
	mallory := commit("c3", "mallory@evil.example", "sneak")
	aliceSSH := signed(alice, "ssh", "SHA256:alice", "alice@example.com")
	unknown := fmt.Errorf("%w: SSH key SHA256:x", trust.ErrUnknownKey)

	merge := signed(commit("d4", "noreply@github.com", "Merge pull request #7"), "pgp", "4AEE18F83AFDEB23", "noreply@github.com")
	merge.Committer.Email = "noreply@github.com"
	merge.Author = alice.Author

	type want struct {
		decision policy.Decision
		rules    string // the reasons' rules, in order
		contains string // in the first reason's message
		verified bool
	}
	cases := []struct {
		name     string
		mod      func(*policy.Config)
		commit   policy.Commit
		attr     policy.Attribution
		want     want
		identity string // want the record's signer identity ("": none)
	}{
		{"signed by the committer's key", requireSignatures(policy.MergesFirstParent), aliceSSH, nil,
			want{policy.Allow, "", "", true}, "alice@example.com"},
		{"not required: nothing verified", nil, alice, nil, want{policy.Allow, "", "", false}, ""},
		{"not verified by the caller fails closed", requireSignatures(policy.MergesFirstParent), alice, nil,
			want{policy.Reject, "signatures", "was not verified", false}, ""},
		{"unsigned", requireSignatures(policy.MergesFirstParent), refused(alice, trust.ErrUnsigned), nil,
			want{policy.Reject, "signatures", "the commit is not signed", false}, ""},
		{"unknown key", requireSignatures(policy.MergesFirstParent), refused(alice, unknown), nil,
			want{policy.Reject, "signatures", "not in the trusted keys", false}, ""},
		{"expired", requireSignatures(policy.MergesFirstParent), refused(alice, fmt.Errorf("%w: line 3", trust.ErrExpired)), nil,
			want{policy.Reject, "signatures", "expired", false}, ""},
		{"tampered", requireSignatures(policy.MergesFirstParent), refused(alice, fmt.Errorf("%w: x", trust.ErrBadSignature)), nil,
			want{policy.Reject, "signatures", "does not match", false}, ""},
		{"a key that may not sign for the committer", requireSignatures(policy.MergesFirstParent),
			signed(alice, "ssh", "SHA256:bob", "bob@platform.example.com"), nil,
			want{policy.Reject, "signatures", "may sign for bob@platform.example.com, not for its committer alice@example.com", false}, ""},
		{"identity: author checks the author", func(c *policy.Config) {
			requireSignatures(policy.MergesFirstParent)(c)
			c.Identity = policy.IdentityAuthor
		}, func() policy.Commit {
			c := signed(alice, "ssh", "SHA256:alice", "alice@example.com")
			c.Committer.Email = "ci@example.com"
			return c
		}(), nil, want{policy.Allow, "", "", true}, "alice@example.com"},
		{"a verified identity outside the allowlist", requireSignatures(policy.MergesFirstParent),
			signed(mallory, "ssh", "SHA256:mallory", "mallory@evil.example"), nil,
			want{policy.Reject, "committers", "mallory@evil.example", true}, ""},
		{"an unsigned commit rides along", requireSignatures(policy.MergesFirstParent), aliceSSH,
			policy.Attribution{"version": {aliceSSH}, "ports": {refused(bob, trust.ErrUnsigned)}},
			want{policy.Reject, "signatures", "(it last changed ports)", false}, ""},
		{"a host-signed web merge", requireSignatures(policy.MergesFirstParent), merge, nil,
			want{policy.Allow, "", "", true}, "noreply@github.com"},
		{"a merge bringing in an unsigned commit, first_parent", requireSignatures(policy.MergesFirstParent),
			withMergedIn(merge, refused(bob, trust.ErrUnsigned)), nil, want{policy.Allow, "", "", true}, "noreply@github.com"},
		{"a merge bringing in an unsigned commit, all", requireSignatures(policy.MergesAll),
			withMergedIn(merge, aliceSSH, refused(bob, trust.ErrUnsigned)), nil,
			want{policy.Reject, "signatures", "brought in by merge d4d4d4d4d4d4", false}, "noreply@github.com"},
		{"a merge bringing in signed commits, all", requireSignatures(policy.MergesAll),
			withMergedIn(merge, aliceSSH), nil, want{policy.Allow, "", "", true}, "noreply@github.com"},
		{"a merge whose side cannot be listed, all", requireSignatures(policy.MergesAll),
			func() policy.Commit { m := merge; m.MergedInErr = fmt.Errorf("more than 100000 commits"); return m }(), nil,
			want{policy.Reject, "signatures", "cannot be listed", false}, "noreply@github.com"},
		{"all: a side commit outside the allowlist", func(c *policy.Config) { c.Merges = policy.MergesAll },
			withMergedIn(merge, mallory), nil, want{policy.Reject, "committers", "mallory", false}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := engine(t, func(c *policy.Config) {
				c.Committers = list("alice@example.com", "*@platform.example.com", "noreply@github.com")
				if tc.mod != nil {
					tc.mod(c)
				}
			}, nil)
			attr := tc.attr
			if attr == nil {
				attr = policy.Attribution{}
			}
			v := e.Evaluate(context.Background(), &policy.Change{Commit: tc.commit, LastGood: good, LastAttempted: good,
				Requested: desc(t, "version: 1.4.2", "ports: [8080, 8081]"), Attribution: attr}, now)
			rulesOK := (tc.want.rules == "") == (len(v.Reasons) == 0)
			for _, r := range v.Reasons {
				rulesOK = rulesOK && r.Rule == tc.want.rules
			}
			if v.Decision != tc.want.decision || !rulesOK {
				t.Fatalf("decision %s, reasons %v; want %s with %q", v.Decision, v.Reasons, tc.want.decision, tc.want.rules)
			}
			if tc.want.contains != "" && !strings.Contains(v.Reasons[0].Message, tc.want.contains) {
				t.Errorf("reason %q, want it to say %q", v.Reasons[0].Message, tc.want.contains)
			}
			if v.Verified != tc.want.verified {
				t.Errorf("verified %v, want %v", v.Verified, tc.want.verified)
			}
			switch {
			case tc.identity == "" && tc.want.decision == policy.Allow && v.Signer != nil:
				t.Errorf("signer %+v, want none", v.Signer)
			case tc.identity != "" && (v.Signer == nil || v.Signer.Identity != tc.identity):
				t.Errorf("signer %+v, want identity %s", v.Signer, tc.identity)
			}
			for _, c := range v.Commits {
				if c.Verified != (c.Signer != "") || (c.Verified && !tc.want.verified && tc.want.decision == policy.Allow) {
					t.Errorf("contribution %+v", c)
				}
			}
		})
	}
}

func withMergedIn(m policy.Commit, cs ...policy.Commit) policy.Commit {
	m.MergedIn = cs
	return m
}

// A record's contributions say which were verified, and by whom.
func TestSignaturesContributions(t *testing.T) {
	good := desc(t)
	alice := signed(commit("a1", "alice@example.com", "bump"), "ssh", "SHA256:alice", "*@example.com")
	bob := signed(commit("b2", "bob@platform.example.com", "ports"), "pgp", "ABCD", "bob@platform.example.com")
	v := engine(t, requireSignatures(policy.MergesFirstParent), nil).Evaluate(context.Background(), &policy.Change{
		Commit: alice, LastGood: good, LastAttempted: good, Requested: desc(t, "version: 1.4.2", "ports: [8080, 8081]"),
		Attribution: policy.Attribution{"version": {alice}, "ports": {bob}}}, now)
	if v.Decision != policy.Allow || !v.Verified || v.Signer == nil || *v.Signer != (policy.Signer{Type: "ssh", Key: "SHA256:alice", Identity: "alice@example.com"}) {
		t.Fatalf("verdict %s %+v, verified %v, signer %+v", v.Decision, v.Reasons, v.Verified, v.Signer)
	}
	got := map[string]string{}
	for _, c := range v.Commits {
		if c.Verified {
			got[c.Commit] = c.Signer
		}
	}
	if got[alice.SHA] != "alice@example.com" || got[bob.SHA] != "bob@platform.example.com" {
		t.Errorf("contributions %+v", v.Commits)
	}
}
