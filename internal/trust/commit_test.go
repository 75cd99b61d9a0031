package trust

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// raw is the commit object git stores for sha.
func (r *repo) raw(sha string) []byte {
	r.t.Helper()
	cmd := exec.Command("git", "cat-file", "commit", sha)
	cmd.Dir = r.dir
	cmd.Env = r.env
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("git cat-file: %v", err)
	}
	return out
}

// SplitCommit cuts a commit object as git does: its payload is what
// go-git encodes without the signature, and its signature what go-git
// read, for SSH, OpenPGP and unsigned commits and for a signed merge.
func TestSplitCommitAgreesWithGit(t *testing.T) {
	r := newRepo(t)
	key, _ := sshKey(t, t.TempDir(), "alice")
	h := newGPGHome(t, "")
	fpr := h.genKey("Alice", "alice@example.com", "0")
	commits := []string{
		r.commit(nil, sshConfig(key)...).Hash.String(),
		r.commit(nil, h.gitConfig(fpr)...).Hash.String(),
		r.commit(nil).Hash.String(),
	}
	r.git(nil, "checkout", "-q", "-b", "side", "HEAD~2")
	if err := os.WriteFile(filepath.Join(r.dir, "g"), []byte("side"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.git(nil, "add", "g")
	r.git(nil, "commit", "-q", "-m", "side")
	r.git(nil, "checkout", "-q", "main")
	r.git(nil, "-c", "gpg.format=ssh", "-c", "user.signingkey="+key, "merge", "-q", "-S", "--no-ff", "-m", "merge side\n\nbody", "side")
	commits = append(commits, r.head().Hash.String())
	for _, sha := range commits {
		c := r.commitObject(sha)
		p, sig, err := SplitCommit(r.raw(sha))
		if err != nil {
			t.Fatalf("%s: %v", sha, err)
		}
		if want := payload(t, c); !bytes.Equal(p, want) {
			t.Errorf("%s: payload\n%q\nwant\n%q", sha, p, want)
		}
		if string(sig) != c.PGPSignature {
			t.Errorf("%s: signature\n%q\nwant\n%q", sha, sig, c.PGPSignature)
		}
		when, err := CommitTime(p)
		if err != nil || !when.Equal(c.Committer.When) {
			t.Errorf("%s: committer time %v, %v; want %v", sha, when, err, c.Committer.When)
		}
	}
}

func TestSplitCommitHostile(t *testing.T) {
	base := "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1700000000 +0100\n"
	sig := "gpgsig -----BEGIN SSH SIGNATURE-----\n AAAA\n -----END SSH SIGNATURE-----\n"
	cases := []struct {
		name, raw string
		want      error
		sig       string
	}{
		{"unsigned", base + "\nmsg\n", nil, ""},
		{"signed", base + sig + "\nmsg\n", nil, "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"},
		{"two signatures", base + sig + sig + "\nmsg\n", ErrBadSignature, ""},
		{"gpgsig in the message is no signature", base + "\n" + sig, nil, ""},
		{"gpgsig inside another header", base + "mergetag object x\n gpgsig y\n\nmsg\n", nil, ""},
		{"no message", base + sig, nil, "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"},
		{"too large", base + "\n" + strings.Repeat("x", MaxCommitSize), ErrBadSignature, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, s, err := SplitCommit([]byte(tc.raw))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if string(s) != tc.sig {
				t.Errorf("signature %q, want %q", s, tc.sig)
			}
			if bytes.Contains(p, []byte("\ngpgsig ")) && tc.sig != "" {
				t.Errorf("payload keeps the signature: %q", p)
			}
		})
	}
	for _, bad := range []string{"tree x\n", "committer A 12 +0000\n", "committer A <a> x +0000\n", "committer A <a>\n", "committer A <a> -5 +0000\n"} {
		if _, err := CommitTime([]byte(bad)); err == nil {
			t.Errorf("CommitTime(%q) read a time", bad)
		}
	}
}

// VerifyCommit checks raw objects signed by the real git with either kind
// of key, and refuses one whose body was rewritten under its signature.
func TestVerifyCommit(t *testing.T) {
	r := newRepo(t)
	key, pub := sshKey(t, t.TempDir(), "alice")
	h := newGPGHome(t, "")
	fpr := h.genKey("Alice", "alice@example.com", "0")
	sshSigned := r.commit(nil, sshConfig(key)...).Hash.String()
	pgpSigned := r.commit(nil, h.gitConfig(fpr)...).Hash.String()
	unsigned := r.commit(nil).Hash.String()
	dir := t.TempDir()
	as := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(as, []byte("alice@example.com "+pub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ring := filepath.Join(dir, "keys.asc")
	if err := os.WriteFile(ring, h.gpg("", "--armor", "--export", fpr), 0o644); err != nil {
		t.Fatal(err)
	}
	both, err := LoadKeys(as, ring, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	sshOnly, err := LoadKeys(as, "", os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tampered := bytes.Replace(r.raw(sshSigned), []byte("\nchange"), []byte("\nchanGe"), 1)
	cases := []struct {
		name string
		keys *Keys
		raw  []byte
		want error
		typ  string
	}{
		{"ssh", both, r.raw(sshSigned), nil, "ssh"},
		{"pgp", both, r.raw(pgpSigned), nil, "pgp"},
		{"pgp without a keyring", sshOnly, r.raw(pgpSigned), ErrUnknownKey, ""},
		{"unsigned", both, r.raw(unsigned), ErrUnsigned, ""},
		{"tampered", both, tampered, ErrBadSignature, ""},
		{"no keys", nil, r.raw(sshSigned), ErrUnknownKey, ""},
		{"x509", both, []byte("tree x\ncommitter A <a> 1 +0000\ngpgsig -----BEGIN SIGNED MESSAGE-----\n x\n\nm"), ErrBadSignature, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.keys.VerifyCommit(tc.raw, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && (s.Type != tc.typ || !s.Matches("alice@example.com")) {
				t.Fatalf("signer %+v", s)
			}
		})
	}
	if _, err := LoadKeys(filepath.Join(dir, "nope"), "", os.ReadFile); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("a missing file: %v", err)
	}
}

// Until says when a verdict must be checked again: the valid-before of
// the line that admitted the key.
func TestVerifyUntil(t *testing.T) {
	r := newRepo(t)
	key, pub := sshKey(t, t.TempDir(), "alice")
	c := r.commit(nil, sshConfig(key)...)
	now := time.Now()
	as := mustAllowed(t, `alice@example.com valid-before="29990101Z" `+pub+"\nbob@example.com valid-after=29980101Z "+pub+"\n")
	s, err := verifySSH(payload(t, c), []byte(c.PGPSignature), c.Committer.When, now, as)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2998, 1, 1, 0, 0, 0, 0, time.UTC); !s.Until.Equal(want) {
		t.Errorf("Until = %v, want %v (bob's line opens then)", s.Until, want)
	}
	s, err = verifySSH(payload(t, c), []byte(c.PGPSignature), c.Committer.When, now, mustAllowed(t, "alice@example.com "+pub))
	if err != nil || !s.Until.IsZero() {
		t.Errorf("an unbounded line: Until %v, %v", s.Until, err)
	}
	h := newGPGHome(t, "")
	fpr := h.genKey("Alice", "alice@example.com", "2y")
	pc := r.commit(nil, h.gitConfig(fpr)...)
	ps, err := verifyPGP(payload(t, pc), []byte(pc.PGPSignature), pc.Committer.When, now, h.keyring(fpr))
	if err != nil {
		t.Fatal(err)
	}
	if d := ps.Until.Sub(now); d < 365*24*time.Hour || d > 3*365*24*time.Hour {
		t.Errorf("a two-year key: Until %v", ps.Until)
	}
}
