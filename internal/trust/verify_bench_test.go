package trust

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// BenchmarkVerify measures one commit's verification against hashing the
// same payload with SHA-256, in the same run.
func BenchmarkVerify(b *testing.B) {
	b.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	b.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	r := newRepo(b)
	key, pub := sshKey(b, b.TempDir(), "alice")
	sshCommit := r.commit(nil, sshConfig(key)...)
	h := newGPGHome(b, "")
	fpr := h.genKey("Alice", "alice@example.com", "0")
	pgpCommit := r.commit(nil, h.gitConfig(fpr)...)
	ring := h.keyring(fpr)
	// A realistic file: a team of 50 keys, the signer's last.
	var lines strings.Builder
	for i := 0; i < 49; i++ {
		_, other := sshKey(b, b.TempDir(), "k")
		lines.WriteString("someone@example.com " + other + "\n")
	}
	lines.WriteString("alice@example.com " + pub + "\n")
	as, err := ParseAllowedSigners(strings.NewReader(lines.String()), "f")
	if err != nil {
		b.Fatal(err)
	}
	sshPayload, pgpPayload := payload(b, sshCommit), payload(b, pgpCommit)

	b.Run("baseline-sha256", func(b *testing.B) {
		for b.Loop() {
			sha256.Sum256(sshPayload)
		}
	})
	b.Run("ssh", func(b *testing.B) {
		for b.Loop() {
			if _, err := VerifySSH(sshPayload, []byte(sshCommit.PGPSignature), sshCommit.Committer.When, as); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pgp", func(b *testing.B) {
		for b.Loop() {
			if _, err := VerifyPGP(pgpPayload, []byte(pgpCommit.PGPSignature), pgpCommit.Committer.When, ring); err != nil {
				b.Fatal(err)
			}
		}
	})
}
