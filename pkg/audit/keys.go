package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// PseudonymKeySize is the length of the pseudonym key in bytes.
const PseudonymKeySize = 32

// Key files hold secrets, so the errors below name the file and what is
// wrong with it, never any of its content.

// LoadPseudonymKey reads the pseudonym key from a file holding 32 bytes in
// standard base64 (surrounding whitespace ignored), as mounted from a
// Kubernetes Secret.
func LoadPseudonymKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pseudonym key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) != PseudonymKeySize {
		return nil, fmt.Errorf("pseudonym key %s: want %d bytes in base64", path, PseudonymKeySize)
	}
	return key, nil
}

// GeneratePseudonymKey writes a new random pseudonym key to path (mode
// 0600). It refuses to overwrite an existing file: losing the key makes
// every stored patient reference unsearchable.
func GeneratePseudonymKey(path string) error {
	key := make([]byte, PseudonymKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate pseudonym key: %w", err)
	}
	return writeNew(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
}

// LoadSigningKey reads the Ed25519 key that signs checkpoints, from a PEM
// "PRIVATE KEY" (PKCS #8) file or from a file holding the 32-byte seed or
// the 64-byte private key in standard base64.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	key, err := parsePrivate(b)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return key, nil
}

// GenerateSigningKey writes a new Ed25519 signing key to path as PEM
// PKCS #8 (mode 0600, never overwriting) and returns its public key.
func GenerateSigningKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	if err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, err
	}
	return pub, nil
}

// WriteVerifyKey writes pub to path as a PEM "PUBLIC KEY" (PKIX) file
// (mode 0600, never overwriting).
func WriteVerifyKey(path string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("encode verify key: %w", err)
	}
	return writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// LoadVerifyKey reads the Ed25519 public key that verifies checkpoints,
// from a PEM "PUBLIC KEY" file or from any file [LoadSigningKey] accepts.
func LoadVerifyKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read verify key: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil && blk.Type == "PUBLIC KEY" {
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("verify key %s: not a PKIX public key", path)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("verify key %s: not an Ed25519 key", path)
		}
		return pub, nil
	}
	priv, err := parsePrivate(b)
	if err != nil {
		return nil, fmt.Errorf("verify key %s: %w", path, err)
	}
	return priv.Public().(ed25519.PublicKey), nil
}

func parsePrivate(b []byte) (ed25519.PrivateKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PRIVATE KEY" {
			return nil, errors.New("want a PEM PRIVATE KEY block")
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, errors.New("not a PKCS #8 private key")
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, errors.New("not an Ed25519 key")
		}
		return priv, nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, errors.New("neither PEM nor base64")
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !bytes.Equal(priv, raw) {
			return nil, errors.New("public half does not match the seed")
		}
		return priv, nil
	}
	return nil, fmt.Errorf("want a %d-byte seed or %d-byte key", ed25519.SeedSize, ed25519.PrivateKeySize)
}

// writeNew creates path with mode 0600 and writes b, failing if the file
// exists.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return nil
}
