package recipientkeys

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// maxKeyBytes bounds one certificate or OpenPGP key as given.
const maxKeyBytes = 64 << 10

// ParseSMIME checks an S/MIME certificate (PEM "CERTIFICATE", or DER) and
// returns its DER bytes and the e-mail addresses it is for (its
// rfc822Name subject alternative names, normalised). It must hold an RSA
// key of at least 2048 bits, be valid at now, name at least one address,
// and, when it states key usages, allow key encipherment and e-mail
// protection. Errors never quote the certificate.
func ParseSMIME(b []byte, now time.Time) (der []byte, addresses []string, err error) {
	if len(b) > maxKeyBytes {
		return nil, nil, fmt.Errorf("certificate is larger than %d bytes", maxKeyBytes)
	}
	der = b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("PEM block is %q, want CERTIFICATE", blk.Type)
		}
		der = blk.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, errors.New("not an X.509 certificate (PEM or DER)")
	}
	if err := usableSMIME(cert, now); err != nil {
		return nil, nil, err
	}
	for _, a := range cert.EmailAddresses {
		if n, ok := app.NormalizeAddress(a); ok && !slices.Contains(addresses, n) {
			addresses = append(addresses, n)
		}
	}
	if len(addresses) == 0 {
		return nil, nil, errors.New("certificate names no e-mail address (rfc822Name subject alternative name)")
	}
	return bytes.Clone(der), addresses, nil
}

func usableSMIME(cert *x509.Certificate, now time.Time) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("certificate key is not RSA (S/MIME encryption here needs RSA)")
	}
	if pub.N.BitLen() < 2048 {
		return fmt.Errorf("certificate RSA key has %d bits, want at least 2048", pub.N.BitLen())
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return errors.New("certificate is not valid now (expired or not yet valid)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		return errors.New("certificate key usage does not allow key encipherment")
	}
	if len(cert.ExtKeyUsage) > 0 && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return errors.New("certificate extended key usage does not allow e-mail protection")
	}
	return nil
}

// ParsePGP checks an OpenPGP public key (ASCII-armored, or binary) and
// returns it binary, with the e-mail addresses of its user ids
// (normalised). It must be exactly one key (entity) with an
// encryption-capable key valid at now and a user id with an address, and
// hold no secret key material.
func ParsePGP(b []byte, now time.Time) (key []byte, addresses []string, err error) {
	if len(b) > maxKeyBytes {
		return nil, nil, fmt.Errorf("OpenPGP key is larger than %d bytes", maxKeyBytes)
	}
	var list openpgp.EntityList
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN PGP")) {
		list, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	} else {
		list, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		return nil, nil, errors.New("not an OpenPGP public key (armored or binary)")
	}
	if len(list) != 1 {
		return nil, nil, fmt.Errorf("holds %d OpenPGP keys, want exactly one", len(list))
	}
	e := list[0]
	if e.PrivateKey != nil {
		return nil, nil, errors.New("holds a secret key: give the public key only")
	}
	if err := usablePGP(e, now); err != nil {
		return nil, nil, err
	}
	for _, id := range e.Identities {
		if id.UserId == nil {
			continue
		}
		if n, ok := app.NormalizeAddress(id.UserId.Email); ok && !slices.Contains(addresses, n) {
			addresses = append(addresses, n)
		}
	}
	if len(addresses) == 0 {
		return nil, nil, errors.New("OpenPGP key has no user id with an e-mail address")
	}
	slices.Sort(addresses)
	var out bytes.Buffer
	if err := e.Serialize(&out); err != nil {
		return nil, nil, errors.New("OpenPGP key cannot be serialised")
	}
	return out.Bytes(), addresses, nil
}

func usablePGP(e *openpgp.Entity, now time.Time) error {
	if _, ok := e.EncryptionKey(now); !ok {
		return errors.New("OpenPGP key has no encryption key valid now (expired, revoked or sign-only)")
	}
	return nil
}

// FieldError says which field of a key record is wrong and why; it never
// quotes the field's value.
type FieldError struct {
	Field, Description string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Description }

// NewRecord checks the keys given for address (either may be empty, not
// both) and returns the record to put on record. Each key must be usable
// (ParseSMIME, ParsePGP) and name address. Errors are *FieldError with
// field "address", "smime_certificate" or "openpgp_public_key".
func NewRecord(address string, smime, pgp []byte, now time.Time) (app.KeyRecord, error) {
	a, ok := app.NormalizeAddress(address)
	if !ok {
		return app.KeyRecord{}, &FieldError{"address", "must be one bare address (RFC 5322 addr-spec, no display name)"}
	}
	if len(smime) == 0 && len(pgp) == 0 {
		return app.KeyRecord{}, &FieldError{"smime_certificate", "smime_certificate or openpgp_public_key is required"}
	}
	r := app.KeyRecord{UpdatedAt: now.UTC()}
	if len(smime) > 0 {
		der, addrs, err := ParseSMIME(smime, now)
		switch {
		case err != nil:
			return app.KeyRecord{}, &FieldError{"smime_certificate", err.Error()}
		case !slices.Contains(addrs, a):
			return app.KeyRecord{}, &FieldError{"smime_certificate", "certificate does not name the address (rfc822Name)"}
		}
		r.SMIME = der
	}
	if len(pgp) > 0 {
		key, addrs, err := ParsePGP(pgp, now)
		switch {
		case err != nil:
			return app.KeyRecord{}, &FieldError{"openpgp_public_key", err.Error()}
		case !slices.Contains(addrs, a):
			return app.KeyRecord{}, &FieldError{"openpgp_public_key", "no user id of the key has the address"}
		}
		r.PGP = key
	}
	return r, nil
}

// SMIMEInfo describes a certificate on record without naming its holder.
type SMIMEInfo struct {
	// SHA256 is the hex SHA-256 fingerprint of the DER certificate.
	SHA256 string
	// NotAfter ends its validity.
	NotAfter time.Time
}

// DescribeSMIME describes a DER certificate.
func DescribeSMIME(der []byte) (SMIMEInfo, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return SMIMEInfo{}, errors.New("not an X.509 certificate")
	}
	sum := sha256.Sum256(der)
	return SMIMEInfo{SHA256: hex.EncodeToString(sum[:]), NotAfter: cert.NotAfter}, nil
}

// DescribePGP returns the hex fingerprint of a binary OpenPGP key's
// primary key.
func DescribePGP(key []byte) (string, error) {
	list, err := openpgp.ReadKeyRing(bytes.NewReader(key))
	if err != nil || len(list) != 1 {
		return "", errors.New("not one OpenPGP key")
	}
	return hex.EncodeToString(list[0].PrimaryKey.Fingerprint), nil
}
