package trust

import (
	"bytes"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Keys are the keys one environment trusts (policy.signatures): the SSH
// keys of an allowed_signers file and the OpenPGP keys of a keyring.
// Either may be absent. Keys is read-only once built and safe for
// concurrent use.
type Keys struct {
	// Signers is the parsed allowed_signers_file; nil when none is set.
	Signers *AllowedSigners
	// Keyring is the parsed gpg_keyring_file; nil when none is set.
	Keyring openpgp.EntityList
}

// Armor headers that tell an SSH signature from an OpenPGP one.
var (
	sshArmor = []byte("-----BEGIN SSH SIGNATURE-----")
	pgpArmor = []byte("-----BEGIN PGP SIGNATURE-----")
)

// Verify checks an armored signature over payload, as VerifySSH or
// VerifyPGP by its armor, at when (the commit's committer time) and now.
// A signature of a kind no file of k can check names an unknown key.
func (k *Keys) Verify(payload, sig []byte, when, now time.Time) (Signer, error) {
	s := bytes.TrimLeft(sig, " \t\r\n")
	switch {
	case len(s) == 0:
		return Signer{}, ErrUnsigned
	case bytes.HasPrefix(s, sshArmor):
		if k == nil || k.Signers == nil {
			return Signer{}, reason(ErrUnknownKey, "an SSH signature, and no allowed_signers_file is set")
		}
		return verifySSH(payload, sig, when, now, k.Signers)
	case bytes.HasPrefix(s, pgpArmor):
		if k == nil || len(k.Keyring) == 0 {
			return Signer{}, reason(ErrUnknownKey, "an OpenPGP signature, and no gpg_keyring_file is set")
		}
		return verifyPGP(payload, sig, when, now, k.Keyring)
	default:
		line, _, _ := bytes.Cut(s, []byte("\n"))
		return Signer{}, reason(ErrBadSignature, "a signature gitmon cannot check (%q): only SSH and OpenPGP ones", truncate(string(line)))
	}
}

// VerifyCommit verifies a raw commit object (the bytes its SHA names, as
// `git cat-file commit` prints them): its gpgsig header over the rest
// (SplitCommit), at its committer time and now. This is what gitmon
// checks of every commit of step 1, and what a commit gitmon writes must
// pass.
func (k *Keys) VerifyCommit(raw []byte, now time.Time) (Signer, error) {
	payload, sig, err := SplitCommit(raw)
	if err != nil {
		return Signer{}, err
	}
	if len(sig) == 0 {
		return Signer{}, ErrUnsigned
	}
	when, err := CommitTime(payload)
	if err != nil {
		return Signer{}, reason(ErrBadSignature, "%v", err)
	}
	return k.Verify(payload, sig, when, now)
}

// LoadKeys reads and parses the trust files of policy.signatures; an
// empty name skips that file. read reads a file (os.ReadFile). Errors
// name the file, and for allowed_signers the line and field.
func LoadKeys(allowedSigners, keyring string, read func(string) ([]byte, error)) (*Keys, error) {
	k := &Keys{}
	if allowedSigners != "" {
		data, err := read(allowedSigners)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", allowedSigners, err)
		}
		if k.Signers, err = ParseAllowedSigners(bytes.NewReader(data), allowedSigners); err != nil {
			return nil, err
		}
	}
	if keyring != "" {
		data, err := read(keyring)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyring, err)
		}
		if k.Keyring, err = ReadKeyring(bytes.NewReader(data), keyring); err != nil {
			return nil, err
		}
	}
	return k, nil
}
