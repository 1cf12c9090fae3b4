// Package recipientkeystest makes recipients' S/MIME certificates and
// OpenPGP keys for tests, with the private halves that decrypt what is
// encrypted for them.
package recipientkeystest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// SMIME is a recipient's S/MIME certificate and RSA key.
type SMIME struct {
	// CertPEM is the certificate (PEM), what is put on record.
	CertPEM []byte
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// Key is the private key.
	Key *rsa.PrivateKey
	// CertFile and KeyFile hold CertPEM and the PKCS#8 PEM key, for
	// openssl cms -decrypt -recip CertFile -inkey KeyFile.
	CertFile, KeyFile string
}

// Options change a generated certificate.
type Options struct {
	// NotAfter, when set, ends the certificate's validity (default in an
	// hour); NotBefore is a minute before now, or before NotAfter.
	NotAfter time.Time
	// KeyUsage, when set, replaces KeyEncipherment|DigitalSignature.
	KeyUsage x509.KeyUsage
}

// NewSMIME issues a self-signed S/MIME certificate (RSA 2048, e-mail
// protection) for addresses.
func NewSMIME(t testing.TB, o Options, addresses ...string) *SMIME {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	notAfter := o.NotAfter
	if notAfter.IsZero() {
		notAfter = now.Add(time.Hour)
	}
	notBefore := now.Add(-time.Minute)
	if !notBefore.Before(notAfter) {
		notBefore = notAfter.Add(-time.Hour)
	}
	usage := o.KeyUsage
	if usage == 0 {
		usage = x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: "carenotify test recipient"},
		NotBefore:      notBefore,
		NotAfter:       notAfter,
		KeyUsage:       usage,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		EmailAddresses: addresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &SMIME{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Cert:    cert, Key: key,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
	}
	if err := os.WriteFile(s.CertFile, s.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// PGP is a recipient's OpenPGP key.
type PGP struct {
	// PublicArmored is the ASCII-armored public key, what is put on record.
	PublicArmored []byte
	// Entity holds the private key, to decrypt with.
	Entity *openpgp.Entity
	// SecretArmored is the ASCII-armored secret key (unprotected), for
	// gpg --import.
	SecretArmored []byte
}

// NewPGP generates an OpenPGP key (Ed25519 with a Curve25519 encryption
// subkey) whose user id has address; lifetime 0 never expires.
func NewPGP(t testing.TB, address string, lifetime time.Duration) *PGP {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, KeyLifetimeSecs: uint32(lifetime / time.Second)}
	e, err := openpgp.NewEntity("Test Recipient", "", address, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pub, sec bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	w, err = armor.Encode(&sec, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	return &PGP{PublicArmored: pub.Bytes(), Entity: e, SecretArmored: sec.Bytes()}
}
