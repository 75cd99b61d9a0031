package trust

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustAllowed(t *testing.T, text string) *AllowedSigners {
	t.Helper()
	as, err := ParseAllowedSigners(strings.NewReader(text), "allowed_signers")
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func TestVerifySSHCommitsSignedByGit(t *testing.T) {
	r := newRepo(t)
	keys := t.TempDir()
	alice, alicePub := sshKey(t, keys, "alice")
	mallory, _ := sshKey(t, keys, "mallory")

	signed := r.commit(nil, sshConfig(alice)...)
	unknown := r.commit(nil, sshConfig(mallory)...)
	unsigned := r.commit(nil)

	tampered := payload(t, signed)
	tampered = []byte(strings.Replace(string(tampered), "change", "chanGe", 1))

	listed := "alice@example.com " + alicePub + "\n"
	cases := []struct {
		name    string
		payload []byte
		sig     string
		when    time.Time
		allowed string
		want    error
	}{
		{"valid", payload(t, signed), signed.PGPSignature, signed.Committer.When, listed, nil},
		{"unknown key", payload(t, unknown), unknown.PGPSignature, unknown.Committer.When, listed, ErrUnknownKey},
		{"unsigned", payload(t, unsigned), unsigned.PGPSignature, unsigned.Committer.When, listed, ErrUnsigned},
		{"tampered", tampered, signed.PGPSignature, signed.Committer.When, listed, ErrBadSignature},
		{"valid-before in the past", payload(t, signed), signed.PGPSignature, signed.Committer.When,
			`alice@example.com valid-before="20200101Z" ` + alicePub, ErrExpired},
		{"valid-after in the future", payload(t, signed), signed.PGPSignature, signed.Committer.When,
			`alice@example.com valid-after=29990101 ` + alicePub, ErrExpired},
		{"committed before valid-after", payload(t, signed), signed.PGPSignature, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC),
			`alice@example.com valid-after=20100101Z ` + alicePub, ErrExpired},
		{"other namespace only", payload(t, signed), signed.PGPSignature, signed.Committer.When,
			`alice@example.com namespaces="file" ` + alicePub, ErrNotAllowed},
		{"listed as a CA only", payload(t, signed), signed.PGPSignature, signed.Committer.When,
			`alice@example.com cert-authority ` + alicePub, ErrUnknownKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := VerifySSH(tc.payload, []byte(tc.sig), tc.when, mustAllowed(t, tc.allowed))
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if s.Key != "" {
					t.Fatalf("a refused signature named a signer: %+v", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Type != "ssh" || !strings.HasPrefix(s.Key, "SHA256:") || !s.Matches("Alice@Example.com") || s.Matches("mallory@example.com") {
				t.Fatalf("signer = %+v", s)
			}
		})
	}
}

// A key listed on several lines gets the identities of every line that
// admits it, and a wildcard principal matches as ssh-keygen does.
func TestVerifySSHIdentitiesAcrossLines(t *testing.T) {
	r := newRepo(t)
	alice, alicePub := sshKey(t, t.TempDir(), "alice")
	c := r.commit(nil, sshConfig(alice)...)
	as := mustAllowed(t, "# team\n*@example.com,!bot@example.com "+alicePub+"\n\nalice@corp.example "+`namespaces="git,file" `+alicePub+"\nold@example.org valid-before=20000101 "+alicePub+"\n")
	s, err := VerifySSH(payload(t, c), []byte(c.PGPSignature), c.Committer.When, as)
	if err != nil {
		t.Fatal(err)
	}
	for email, want := range map[string]bool{"alice@example.com": true, "alice@corp.example": true, "bot@example.com": false, "old@example.org": false, "x@evil.example": false} {
		if got := s.Matches(email); got != want {
			t.Errorf("Matches(%q) = %v, want %v (identities %q)", email, got, want, s.Identities)
		}
	}
}
