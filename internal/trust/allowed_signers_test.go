package trust

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq5kq4xHtQY7LkUxW8fS5yQkD0k1DkJ0W2cYQZq3m3Z"

func TestParseAllowedSigners(t *testing.T) {
	as := mustAllowed(t, "# comment\n\n  alice@example.com,bob@example.com "+edKey+" laptop\n"+
		`*@example.com cert-authority,namespaces="git,file",valid-after=20240102Z,VALID-BEFORE="203001021530" `+edKey+"\n")
	if len(as.Entries) != 2 {
		t.Fatalf("entries = %d", len(as.Entries))
	}
	e := as.Entries[1]
	if e.Line != 4 || !e.CertAuthority || e.Namespaces != "git,file" || e.Principals != "*@example.com" {
		t.Fatalf("entry = %+v", e)
	}
	if !e.ValidAfter.Equal(time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("valid-after = %v", e.ValidAfter)
	}
	if !e.ValidBefore.Equal(time.Date(2030, 1, 2, 15, 30, 0, 0, time.Local)) {
		t.Fatalf("valid-before = %v", e.ValidBefore)
	}
}

func TestParseAllowedSignersErrors(t *testing.T) {
	cases := []struct{ name, text, field string }{
		{"no key", "alice@example.com\n", "key"},
		{"options but no key", "alice@example.com cert-authority\n", "key"},
		{"bad base64", "alice@example.com ssh-ed25519 !!!\n", "key"},
		{"bad key after options", "alice@example.com cert-authority ssh-ed25519 AAAA\n", "key"},
		{"type mismatch", "alice@example.com cert-authority ssh-rsa " + strings.Fields(edKey)[1] + "\n", "key"},
		{"unknown option", "alice@example.com no-touch-required " + edKey + "\n", "options"},
		{"bad date", "alice@example.com valid-after=2024-01-01 " + edKey + "\n", "valid-after"},
		{"bad month", "alice@example.com valid-before=20241301 " + edKey + "\n", "valid-before"},
		{"window inverted", "alice@example.com valid-after=20250101,valid-before=20240101 " + edKey + "\n", "valid-before"},
		{"empty namespaces", `alice@example.com namespaces="" ` + edKey + "\n", "namespaces"},
		{"twice", "alice@example.com cert-authority,cert-authority " + edKey + "\n", "cert-authority"},
		{"empty principal", "alice@example.com,,bob@example.com " + edKey + "\n", "principals"},
		{"unterminated quote", `alice@example.com namespaces="git ` + edKey + "\n", "options"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAllowedSigners(strings.NewReader("# first\n"+tc.text), "trust/allowed_signers")
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.File != "trust/allowed_signers" || pe.Line != 2 || pe.Field != tc.field {
				t.Fatalf("error at %s:%d field %q, want line 2 field %q: %v", pe.File, pe.Line, pe.Field, tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), "trust/allowed_signers:2: ") {
				t.Fatalf("message %q does not start with file:line", err)
			}
		})
	}
}

// Every bad line is reported, not only the first.
func TestParseAllowedSignersReportsEveryLine(t *testing.T) {
	_, err := ParseAllowedSigners(strings.NewReader("a@x\n"+"b@x "+edKey+"\nc@x bogus "+edKey+"\n"), "f")
	if err == nil || !strings.Contains(err.Error(), "f:1: key") || !strings.Contains(err.Error(), "f:3: options") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseAllowedSignersBounds(t *testing.T) {
	big := strings.Repeat("#"+strings.Repeat("x", 99)+"\n", MaxAllowedSignersSize/100+1)
	if _, err := ParseAllowedSigners(strings.NewReader(big), "f"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized file: err = %v", err)
	}
	many := strings.Repeat("\n", MaxAllowedSignersLines+1)
	if _, err := ParseAllowedSigners(strings.NewReader(many), "f"); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("too many lines: err = %v", err)
	}
	long := "a@x " + strings.Repeat("A", maxLineLen+1) + "\n"
	if _, err := ParseAllowedSigners(strings.NewReader(long), "f"); err == nil {
		t.Fatal("an over-long line was accepted")
	}
}

func FuzzParseAllowedSigners(f *testing.F) {
	f.Add("alice@example.com " + edKey + "\n")
	f.Add(`*@example.com cert-authority,namespaces="git",valid-after=20240101Z,valid-before=203001011200 ` + edKey + " c\n# x\n")
	f.Add(`"a b@x" namespaces="g it" ` + edKey)
	f.Fuzz(func(t *testing.T, text string) {
		as, err := ParseAllowedSigners(strings.NewReader(text), "f")
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "f" {
				t.Fatalf("error without file position: %v", err)
			}
			return
		}
		for _, e := range as.Entries {
			if e.Key == nil || e.Principals == "" || e.Line < 1 {
				t.Fatalf("incomplete entry %+v", e)
			}
		}
	})
}
