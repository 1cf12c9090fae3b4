package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
