package trust

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxKeyringSize bounds an armored keyring file.
const MaxKeyringSize = 8 << 20

// ReadKeyring reads armored OpenPGP public keys: one or more
// "-----BEGIN PGP PUBLIC KEY BLOCK-----" blocks, one after the other.
func ReadKeyring(r io.Reader, file string) (openpgp.EntityList, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKeyringSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(data) > MaxKeyringSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, MaxKeyringSize)
	}
	var list openpgp.EntityList
	rd := bytes.NewReader(data)
	for n := 1; ; n++ {
		block, err := armor.Decode(rd)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: armor block %d: %w", file, n, err)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("%s: armor block %d is %q, want %q", file, n, block.Type, openpgp.PublicKeyType)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: armor block %d: %w", file, n, err)
		}
		for _, e := range el {
			if e.PrivateKey != nil {
				return nil, fmt.Errorf("%s: armor block %d holds a private key; export public keys only", file, n)
			}
		}
		list = append(list, el...)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: no %s", file, openpgp.PublicKeyType)
	}
	return list, nil
}

// VerifyPGP checks an armored OpenPGP detached signature over payload
// against keyring. The signing key (primary or subkey), its primary key and
// the binding signatures must be unexpired and unrevoked both at when (the
// commit's committer time) and now. The identities are the e-mails of the
// key's unrevoked user IDs.
func VerifyPGP(payload, armoredSig []byte, when time.Time, keyring openpgp.EntityList) (Signer, error) {
	return verifyPGP(payload, armoredSig, when, time.Now(), keyring)
}

func verifyPGP(payload, armoredSig []byte, when, now time.Time, keyring openpgp.EntityList) (Signer, error) {
	if len(bytes.TrimSpace(armoredSig)) == 0 {
		return Signer{}, ErrUnsigned
	}
	if len(armoredSig) > maxSignatureSize {
		return Signer{}, reason(ErrBadSignature, "signature larger than %d bytes", maxSignatureSize)
	}
	block, err := armor.Decode(bytes.NewReader(armoredSig))
	if err != nil {
		return Signer{}, reason(ErrBadSignature, "unreadable OpenPGP armor: %v", err)
	}
	if block.Type != openpgp.SignatureType {
		return Signer{}, reason(ErrBadSignature, "armor is %q, want %q", truncate(block.Type), openpgp.SignatureType)
	}
	body, err := io.ReadAll(block.Body)
	if err != nil {
		return Signer{}, reason(ErrBadSignature, "unreadable OpenPGP armor: %v", err)
	}
	// A signature must be verified by a key valid when the commit was made:
	// the library checks expiry and revocation at config.Time.
	cfg := &packet.Config{Time: func() time.Time { return when }}
	sig, entity, err := openpgp.VerifyDetachedSignature(keyring, bytes.NewReader(payload), bytes.NewReader(body), cfg)
	if err != nil {
		return Signer{}, pgpReason(err, when)
	}
	if sig.IssuerKeyId == nil {
		return Signer{}, reason(ErrBadSignature, "signature names no issuer")
	}
	fpr := strings.ToUpper(fmt.Sprintf("%x", entity.PrimaryKey.Fingerprint))
	// The library checked at when; check again at now, ourselves.
	for _, t := range []time.Time{when, now} {
		if err := keyValidAt(keyring, entity, *sig.IssuerKeyId, sig, t); err != nil {
			return Signer{}, fmt.Errorf("OpenPGP key %s: %w", fpr, err)
		}
	}
	signer := Signer{Type: "pgp", Key: fpr, Until: pgpUntil(keyring, entity, *sig.IssuerKeyId, sig, now)}
	for _, id := range entity.Identities {
		if id.UserId == nil || id.UserId.Email == "" || id.Revoked(now) || id.Revoked(when) {
			continue
		}
		signer.Identities = append(signer.Identities, id.UserId.Email)
	}
	if len(signer.Identities) == 0 {
		return Signer{}, reason(ErrNotAllowed, "OpenPGP key %s has no unrevoked user ID with an e-mail", fpr)
	}
	return signer, nil
}

// keyValidAt checks the key that made sig, in entity, at t.
func keyValidAt(keyring openpgp.EntityList, entity *openpgp.Entity, keyID uint64, sig *packet.Signature, t time.Time) error {
	self, primaryID := entity.PrimarySelfSignature()
	if self == nil {
		return reason(ErrNotAllowed, "no valid self-signature")
	}
	if entity.Revoked(t) || (primaryID != nil && primaryID.Revoked(t)) {
		return reason(ErrRevoked, "revoked at %s", t.UTC().Format(time.RFC3339))
	}
	if entity.PrimaryKey.KeyExpired(self, t) || self.SigExpired(t) {
		return reason(ErrExpired, "expired or not yet valid at %s", t.UTC().Format(time.RFC3339))
	}
	if sig.SigExpired(t) {
		return reason(ErrExpired, "the signature is expired at %s", t.UTC().Format(time.RFC3339))
	}
	if keyID == entity.PrimaryKey.KeyId {
		return nil
	}
	for _, k := range keyring.KeysByIdUsage(keyID, packet.KeyFlagSign) {
		if k.Entity != entity || k.PublicKey.KeyId != keyID {
			continue
		}
		if k.Revoked(t) {
			return reason(ErrRevoked, "signing subkey %X revoked at %s", keyID, t.UTC().Format(time.RFC3339))
		}
		if k.PublicKey.KeyExpired(k.SelfSignature, t) || k.SelfSignature.SigExpired(t) {
			return reason(ErrExpired, "signing subkey %X expired or not yet valid at %s", keyID, t.UTC().Format(time.RFC3339))
		}
		return nil
	}
	return reason(ErrNotAllowed, "subkey %X is not a signing key of it", keyID)
}

func pgpReason(err error, when time.Time) error {
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return reason(ErrUnknownKey, "OpenPGP signature by a key not in the keyring")
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return reason(ErrRevoked, "OpenPGP key revoked at %s", when.UTC().Format(time.RFC3339))
	case errors.Is(err, pgperrors.ErrKeyExpired), errors.Is(err, pgperrors.ErrSignatureExpired):
		return reason(ErrExpired, "OpenPGP key or signature expired at %s", when.UTC().Format(time.RFC3339))
	default:
		return reason(ErrBadSignature, "OpenPGP: %v", err)
	}
}

// pgpUntil is the earliest future time at which a check of keyValidAt,
// or the identities, may change: an expiry of the keys, their binding
// signatures or sig, or a revocation dated later than now.
func pgpUntil(keyring openpgp.EntityList, entity *openpgp.Entity, keyID uint64, sig *packet.Signature, now time.Time) time.Time {
	var u time.Time
	add := func(ts ...time.Time) { u = earliest(u, now, ts...) }
	revs := func(list []*packet.Signature) {
		for _, r := range list {
			add(r.CreationTime)
		}
	}
	add(lifetimeEnd(sig.CreationTime, sig.SigLifetimeSecs))
	if self, _ := entity.PrimarySelfSignature(); self != nil {
		add(lifetimeEnd(entity.PrimaryKey.CreationTime, self.KeyLifetimeSecs), lifetimeEnd(self.CreationTime, self.SigLifetimeSecs))
	}
	revs(entity.Revocations)
	for _, id := range entity.Identities {
		revs(id.Revocations)
	}
	if keyID != entity.PrimaryKey.KeyId {
		for _, k := range keyring.KeysByIdUsage(keyID, packet.KeyFlagSign) {
			if k.Entity != entity || k.PublicKey.KeyId != keyID || k.SelfSignature == nil {
				continue
			}
			add(lifetimeEnd(k.PublicKey.CreationTime, k.SelfSignature.KeyLifetimeSecs), lifetimeEnd(k.SelfSignature.CreationTime, k.SelfSignature.SigLifetimeSecs))
			revs(k.Revocations)
		}
	}
	return u
}

// lifetimeEnd is created plus an OpenPGP lifetime; zero for none.
func lifetimeEnd(created time.Time, secs *uint32) time.Time {
	if secs == nil || *secs == 0 {
		return time.Time{}
	}
	return created.Add(time.Duration(*secs) * time.Second)
}
