package trust

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

func TestVerifyPGPCommitsSignedByGit(t *testing.T) {
	r := newRepo(t)
	h := newGPGHome(t, "")
	alice := h.genKey("Alice", "alice@example.com", "0")
	mallory := h.genKey("Mallory", "mallory@example.com", "0")
	shortLived := h.genKey("Alice", "alice-short@example.com", "1d")
	revoked := h.genKey("Alice", "alice-revoked@example.com", "0")

	// A key that was valid in 2020 and expired in 2021, used back then.
	old := newGPGHome(t, "20200101T000000")
	oldKey := old.genKey("Alice", "alice-old@example.com", "1y")

	signed := r.commit(nil, h.gitConfig(alice)...)
	byMallory := r.commit(nil, h.gitConfig(mallory)...)
	// Committed (by its date) two days after the key's one-day life.
	afterExpiry := r.commit(gitDate(time.Now().Add(48*time.Hour)), h.gitConfig(shortLived)...)
	byRevoked := r.commit(nil, h.gitConfig(revoked)...)
	oldSigned := r.commit(gitDate(time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC)), old.gitConfig(oldKey)...)
	unsigned := r.commit(nil)
	h.revoke(revoked)

	ring := append(h.keyring(alice, shortLived, revoked), old.keyring(oldKey)...)
	tampered := []byte(strings.Replace(string(payload(t, signed)), "change", "chanGe", 1))

	cases := []struct {
		name    string
		payload []byte
		sig     string
		when    time.Time
		ring    openpgp.EntityList
		want    error
	}{
		{"known key", payload(t, signed), signed.PGPSignature, signed.Committer.When, ring, nil},
		{"unknown key", payload(t, byMallory), byMallory.PGPSignature, byMallory.Committer.When, ring, ErrUnknownKey},
		{"expired at the commit's time", payload(t, afterExpiry), afterExpiry.PGPSignature, afterExpiry.Committer.When, ring, ErrExpired},
		{"valid then, expired now", payload(t, oldSigned), oldSigned.PGPSignature, oldSigned.Committer.When, ring, ErrExpired},
		{"revoked", payload(t, byRevoked), byRevoked.PGPSignature, byRevoked.Committer.When, ring, ErrRevoked},
		{"tampered", tampered, signed.PGPSignature, signed.Committer.When, ring, ErrBadSignature},
		{"unsigned", payload(t, unsigned), unsigned.PGPSignature, unsigned.Committer.When, ring, ErrUnsigned},
		{"an SSH armor", payload(t, signed), "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n", signed.Committer.When, ring, ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := VerifyPGP(tc.payload, []byte(tc.sig), tc.when, tc.ring)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Type != "pgp" || s.Key != alice || !s.Matches("alice@example.com") || s.Matches("mallory@example.com") {
				t.Fatalf("signer = %+v, want key %s", s, alice)
			}
		})
	}
	// The old key did sign validly in 2020: only now's check refuses it.
	if _, err := verifyPGP(payload(t, oldSigned), []byte(oldSigned.PGPSignature), oldSigned.Committer.When, oldSigned.Committer.When, ring); err != nil {
		t.Fatalf("at its own time the old signature is refused: %v", err)
	}
}

func TestReadKeyringErrors(t *testing.T) {
	for name, text := range map[string]string{
		"empty":     "",
		"garbage":   "not a key\n",
		"signature": "-----BEGIN PGP SIGNATURE-----\n\niQ==\n-----END PGP SIGNATURE-----\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadKeyring(strings.NewReader(text), "trust/keys.asc")
			if err == nil || !strings.HasPrefix(err.Error(), "trust/keys.asc: ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
