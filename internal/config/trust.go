package config

import (
	"bytes"
	"path/filepath"

	"github.com/gitmon-dev/gitmon/internal/trust"
	"github.com/gitmon-dev/gitmon/internal/yamlx"
	"github.com/gitmon-dev/gitmon/policy"
)

// trustFile is one parsed trust file, kept so that a file named by the
// global policy and by several environments is read once.
type trustFile struct {
	signers *trust.AllowedSigners
	keyring trust.Keys
	ok      bool
}

// trustKeys reads and parses the trust files of an effective policy
// (policy.signatures, under prefix): every bad allowed_signers line is
// reported with the file's line and field, a bad keyring with its armor
// block. A file that cannot be read is a problem of the machine. It
// returns nil when neither file is set, or one could not be used.
func (l *loader) trustKeys(prefix string, pc *policy.Config) *trust.Keys {
	s := pc.Signatures
	if s.AllowedSignersFile == "" && s.GPGKeyringFile == "" {
		return nil
	}
	if l.trust == nil {
		l.trust = map[string]*trustFile{}
	}
	keys := &trust.Keys{}
	ok := true
	if f := s.AllowedSignersFile; f != "" {
		tf := l.trustFile(yamlx.Join(prefix, "signatures.allowed_signers_file"), f, func(data []byte, tf *trustFile) error {
			var err error
			tf.signers, err = trust.ParseAllowedSigners(bytes.NewReader(data), l.shown(f))
			return err
		})
		ok = ok && tf.ok
		keys.Signers = tf.signers
	}
	if f := s.GPGKeyringFile; f != "" {
		tf := l.trustFile(yamlx.Join(prefix, "signatures.gpg_keyring_file"), f, func(data []byte, tf *trustFile) error {
			var err error
			tf.keyring.Keyring, err = trust.ReadKeyring(bytes.NewReader(data), l.shown(f))
			return err
		})
		ok = ok && tf.ok
		keys.Keyring = tf.keyring.Keyring
	}
	if !ok {
		return nil
	}
	return keys
}

// trustFile reads and parses file once, reporting its problems at path.
func (l *loader) trustFile(path, file string, parse func([]byte, *trustFile) error) *trustFile {
	if tf, seen := l.trust[file]; seen {
		return tf
	}
	tf := &trustFile{}
	l.trust[file] = tf
	data, err := l.opts.ReadFile(file)
	if err != nil {
		l.machinef(path, "cannot read %q: %s", l.shown(file), describeReadError(err))
		return tf
	}
	if err := parse(data, tf); err != nil {
		// One problem per bad line, each naming file:line and field.
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				l.errorf(path, "%v", e)
			}
		} else {
			l.errorf(path, "%v", err)
		}
		return tf
	}
	tf.ok = true
	return tf
}

// shown is a resolved path as problems name it: relative to the config's
// folder when it lies under it, as it was most likely written.
func (l *loader) shown(abs string) string {
	if rel, err := filepath.Rel(l.dir, abs); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return abs
}
