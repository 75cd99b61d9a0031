package trust

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// reasons are the errors a verification may return; anything else (or a
// panic) is a bug.
var reasons = []error{ErrUnsigned, ErrUnknownKey, ErrExpired, ErrRevoked, ErrBadSignature, ErrNotAllowed}

func oneReason(err error) bool {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// FuzzVerifyCommit feeds hostile commit objects, with hostile SSH and
// OpenPGP armor in their gpgsig header, through SplitCommit, CommitTime
// and Keys.VerifyCommit against real keys: no panic, every refusal one of
// the typed reasons, and no mutation verifies except one that leaves the
// payload and signature as signed.
func FuzzVerifyCommit(f *testing.F) {
	f.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	f.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	r := newRepo(f)
	key, pub := sshKey(f, f.TempDir(), "alice")
	h := newGPGHome(f, "")
	fpr := h.genKey("Alice", "alice@example.com", "0")
	sshSigned := r.raw(r.commit(nil, sshConfig(key)...).Hash.String())
	pgpSigned := r.raw(r.commit(nil, h.gitConfig(fpr)...).Hash.String())
	keys := &Keys{Signers: mustAllowedTB(f, "alice@example.com "+pub+"\n"), Keyring: h.keyring(fpr)}
	f.Add(sshSigned)
	f.Add(pgpSigned)
	f.Add(r.raw(r.commit(nil).Hash.String()))
	f.Add([]byte("tree x\ncommitter a <b> 1 +0000\ngpgsig -----BEGIN SSH SIGNATURE-----\n U1NIU0lHAAAAAQ==\n -----END SSH SIGNATURE-----\n\nm"))
	f.Add([]byte("tree x\ncommitter a <b> 1 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n\n wsBcBAABCAAQBQJ=\n -----END PGP SIGNATURE-----\n\nm"))
	f.Add([]byte("gpgsig \n"))
	now := time.Now()
	goodSSH, _, _ := SplitCommit(sshSigned)
	goodPGP, _, _ := SplitCommit(pgpSigned)
	f.Fuzz(func(t *testing.T, raw []byte) {
		payload, sig, err := SplitCommit(raw)
		if err != nil {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("SplitCommit: %v is no typed reason", err)
			}
			return
		}
		if len(payload)+len(sig) > len(raw) {
			t.Fatalf("payload %d + signature %d bytes from %d", len(payload), len(sig), len(raw))
		}
		_, _ = CommitTime(raw)
		s, err := keys.VerifyCommit(raw, now)
		if err != nil {
			if !oneReason(err) {
				t.Fatalf("VerifyCommit: %v is no typed reason", err)
			}
			return
		}
		if !bytes.Equal(payload, goodSSH) && !bytes.Equal(payload, goodPGP) {
			t.Fatalf("a payload nobody signed verified as %+v:\n%q", s, raw)
		}
	})
}

func mustAllowedTB(t testing.TB, text string) *AllowedSigners {
	t.Helper()
	as, err := ParseAllowedSigners(bytes.NewReader([]byte(text)), "allowed_signers")
	if err != nil {
		t.Fatal(err)
	}
	return as
}
