// Package trust verifies commit signatures against the keys an operator
// trusts: SSH keys listed in git's allowed_signers format and armored
// OpenPGP public keys (SPEC §5 Signatures). It is pure: a verdict depends
// only on the signed payload, the signature, the commit's time, the trust
// files and the clock, so the decider can consume it as part of a commit's
// identity.
package trust

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The reasons a signature is refused. Every error VerifySSH and VerifyPGP
// return wraps exactly one of them, so the decider can word rule
// `signatures` with errors.Is.
var (
	ErrUnsigned     = errors.New("the commit is not signed")
	ErrUnknownKey   = errors.New("the signing key is not in the trusted keys")
	ErrExpired      = errors.New("the signing key is expired or not yet valid")
	ErrRevoked      = errors.New("the signing key is revoked")
	ErrBadSignature = errors.New("the signature does not match the commit")
	ErrNotAllowed   = errors.New("the signing key is not allowed to sign commits")
)

// Signer is who a valid signature binds a commit to.
type Signer struct {
	Type string // "ssh" or "pgp"
	// Key identifies the signing key: "SHA256:…" for SSH, the upper-case
	// hex fingerprint for OpenPGP.
	Key string
	// Identities are the e-mails the key may sign for: the principals of
	// its allowed_signers lines (patterns, as ssh-keygen matches them), or
	// the e-mails of its OpenPGP user IDs.
	Identities []string
	// Until is when the verdict may next change as time passes: the
	// earliest future valid-before, valid-after, certificate, key or
	// signature expiry, or revocation date of what made it; zero when
	// nothing bounds it. A caller that keeps the verdict verifies again
	// once now is not before Until.
	Until time.Time
}

// Matches reports whether email is one of the signer's identities.
// E-mails compare case-insensitively, as the committers allowlist does;
// SSH principals are pattern-lists ("*", "?", "!negation").
func (s Signer) Matches(email string) bool {
	email = strings.ToLower(email)
	if s.Type == "ssh" {
		return matchPatternList(email, strings.ToLower(strings.Join(s.Identities, ",")))
	}
	for _, id := range s.Identities {
		if strings.EqualFold(id, email) {
			return true
		}
	}
	return false
}

// matchPatternList is ssh_config(5)'s pattern-list match: a negated pattern
// that matches refuses, otherwise any positive pattern that matches accepts.
func matchPatternList(s, list string) bool {
	matched := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if p == "" || !matchPattern(s, p) {
			continue
		}
		if neg {
			return false
		}
		matched = true
	}
	return matched
}

// matchPattern matches s against a glob of "*" (any run) and "?" (any one
// byte), iteratively, so hostile patterns cost O(len(s)·len(p)) at most.
func matchPattern(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// reason wraps one of the Err* reasons with what was seen.
func reason(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}

// earliest returns the earliest of ts that is after now, or u when none
// is earlier than it (the zero u counts as "none yet").
func earliest(u, now time.Time, ts ...time.Time) time.Time {
	for _, t := range ts {
		if t.After(now) && (u.IsZero() || t.Before(u)) {
			u = t
		}
	}
	return u
}
