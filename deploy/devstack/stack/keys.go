package stack

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/envelope"
)

// ensureKeyring returns dir after making sure it holds a development
// keyring: one key-encryption key, made primary, created on first run and
// kept in var/keys afterwards (so data sealed by an earlier run still opens).
// Production keyrings come from mounted secrets, never from here.
func ensureKeyring(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "primary")); err == nil {
		return dir, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("dev keyring: %w", err)
	}
	kid, err := envelope.GenerateKEK(dir)
	if err != nil {
		return "", fmt.Errorf("dev keyring: %w", err)
	}
	if err := envelope.SetPrimary(dir, kid); err != nil {
		return "", fmt.Errorf("dev keyring: %w", err)
	}
	return dir, nil
}

// AuditKeys are the development audit trail's key files.
type AuditKeys struct {
	// Pseudonym turns patient ids into keyed hashes in the trail.
	Pseudonym string
	// Signing signs checkpoints; Verify is its public half, for
	// `carenotifyctl audit verify --verify-key`.
	Signing, Verify string
}

// ensureAuditKeys creates the development audit keys in dir on first run.
func ensureAuditKeys(dir string) (AuditKeys, error) {
	k := AuditKeys{
		Pseudonym: filepath.Join(dir, "pseudonym.key"),
		Signing:   filepath.Join(dir, "audit-signing.key"),
		Verify:    filepath.Join(dir, "audit-verify.pem"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return k, fmt.Errorf("dev audit keys: %w", err)
	}
	if _, err := os.Stat(k.Pseudonym); errors.Is(err, os.ErrNotExist) {
		if err := audit.GeneratePseudonymKey(k.Pseudonym); err != nil {
			return k, fmt.Errorf("dev audit keys: %w", err)
		}
	}
	if _, err := os.Stat(k.Signing); errors.Is(err, os.ErrNotExist) {
		pub, err := audit.GenerateSigningKey(k.Signing)
		if err != nil {
			return k, fmt.Errorf("dev audit keys: %w", err)
		}
		if err := audit.WriteVerifyKey(k.Verify, pub); err != nil {
			return k, fmt.Errorf("dev audit keys: %w", err)
		}
	}
	return k, nil
}

// ensureSecretFile writes 32 random bytes, base64, to path on first run
// (e.g. the email channel's unsubscribe-token key).
func ensureSecretFile(path string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("dev secret: %w", err)
	}
	return path, nil
}
