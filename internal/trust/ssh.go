package trust

import (
	"bytes"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// gitNamespace is the sshsig namespace git signs commits in.
const gitNamespace = "git"

// maxSignatureSize bounds an armored signature; real ones are well under
// 4 KiB (RSA-4096 with certificates included).
const maxSignatureSize = 64 << 10

// VerifySSH checks an armored SSH signature ("-----BEGIN SSH SIGNATURE-----",
// what git stores in a commit's gpgsig header) over payload, the commit
// object without that header. The key, or with cert-authority the CA of
// its certificate, must be listed in as for namespace "git", and valid both
// at when (the commit's committer time) and now.
func VerifySSH(payload, armoredSig []byte, when time.Time, as *AllowedSigners) (Signer, error) {
	return verifySSH(payload, armoredSig, when, time.Now(), as)
}

func verifySSH(payload, armoredSig []byte, when, now time.Time, as *AllowedSigners) (Signer, error) {
	if len(bytes.TrimSpace(armoredSig)) == 0 {
		return Signer{}, ErrUnsigned
	}
	if len(armoredSig) > maxSignatureSize {
		return Signer{}, reason(ErrBadSignature, "signature larger than %d bytes", maxSignatureSize)
	}
	sig, err := sshsig.Unarmor(armoredSig)
	if err != nil {
		return Signer{}, reason(ErrBadSignature, "unreadable SSH signature: %v", err)
	}
	if sig.Namespace != gitNamespace {
		return Signer{}, reason(ErrBadSignature, "namespace %q, want %q", truncate(sig.Namespace), gitNamespace)
	}
	signing := sig.PublicKey
	cert, isCert := sig.PublicKey.(*ssh.Certificate)
	if isCert {
		signing = cert.Key
	}
	fp := ssh.FingerprintSHA256(signing)
	var entries []AllowedSigner
	if as != nil {
		for _, e := range as.Entries {
			if isCert && e.CertAuthority && bytes.Equal(e.Key.Marshal(), cert.SignatureKey.Marshal()) ||
				!isCert && !e.CertAuthority && bytes.Equal(e.Key.Marshal(), signing.Marshal()) {
				entries = append(entries, e)
			}
		}
	}
	if len(entries) == 0 {
		return Signer{}, reason(ErrUnknownKey, "SSH key %s", fp)
	}
	if err := sshsig.Verify(bytes.NewReader(payload), sig, sig.PublicKey, sig.HashAlgorithm, gitNamespace); err != nil {
		return Signer{}, reason(ErrBadSignature, "SSH key %s: %v", fp, err)
	}
	signer := Signer{Type: "ssh", Key: fp}
	var first error
	for _, e := range entries {
		// A line's window opening or closing later changes the verdict.
		signer.Until = earliest(signer.Until, now, e.ValidAfter, e.ValidBefore)
		ids, err := e.admits(cert, when, now)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		signer.Identities = append(signer.Identities, ids...)
	}
	if isCert && cert.ValidBefore != ssh.CertTimeInfinity && cert.ValidBefore < 1<<62 {
		signer.Until = earliest(signer.Until, now, time.Unix(int64(cert.ValidBefore), 0))
	}
	if len(signer.Identities) == 0 {
		return Signer{}, first
	}
	return signer, nil
}

// admits checks one matching line's namespaces and validity window (and
// for a certificate its type, CA signature, validity and principals) and
// returns the identities it grants.
func (e AllowedSigner) admits(cert *ssh.Certificate, when, now time.Time) ([]string, error) {
	fp := ssh.FingerprintSHA256(e.Key)
	if e.Namespaces != "" && !matchPatternList(gitNamespace, e.Namespaces) {
		return nil, reason(ErrNotAllowed, "SSH key %s (line %d) is limited to namespaces %q", fp, e.Line, e.Namespaces)
	}
	for _, t := range []time.Time{when, now} {
		if !e.ValidAfter.IsZero() && t.Before(e.ValidAfter) {
			return nil, reason(ErrExpired, "SSH key %s (line %d) is valid after %s, not at %s", fp, e.Line, e.ValidAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
		}
		if !e.ValidBefore.IsZero() && t.After(e.ValidBefore) {
			return nil, reason(ErrExpired, "SSH key %s (line %d) was valid before %s, not at %s", fp, e.Line, e.ValidBefore.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
		}
	}
	if cert == nil {
		return splitPrincipals(e.Principals), nil
	}
	return e.certPrincipals(cert, when, now)
}

func (e AllowedSigner) certPrincipals(cert *ssh.Certificate, when, now time.Time) ([]string, error) {
	if cert.CertType != ssh.UserCert {
		return nil, reason(ErrNotAllowed, "certificate %q is not a user certificate", truncate(cert.KeyId))
	}
	var ids []string
	for _, p := range cert.ValidPrincipals {
		if matchPatternList(p, e.Principals) {
			ids = append(ids, p)
		}
	}
	if len(ids) == 0 {
		return nil, reason(ErrNotAllowed, "certificate %q has no principal that line %d allows", truncate(cert.KeyId), e.Line)
	}
	for _, t := range []time.Time{when, now} {
		checker := ssh.CertChecker{Clock: func() time.Time { return t }}
		if err := checker.CheckCert(ids[0], cert); err != nil {
			if !certValidAt(cert, t) { // CheckCert's time errors are not typed
				return nil, reason(ErrExpired, "certificate %q: %v", truncate(cert.KeyId), err)
			}
			return nil, reason(ErrBadSignature, "certificate %q: %v", truncate(cert.KeyId), err)
		}
	}
	return ids, nil
}

func certValidAt(cert *ssh.Certificate, t time.Time) bool {
	u := uint64(t.Unix())
	return u >= cert.ValidAfter && (cert.ValidBefore == ssh.CertTimeInfinity || u < cert.ValidBefore)
}

func splitPrincipals(list string) []string {
	var out []string
	for _, p := range bytes.Split([]byte(list), []byte(",")) {
		if len(p) > 0 {
			out = append(out, string(p))
		}
	}
	return out
}
