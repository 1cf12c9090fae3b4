// Package audittest gives tests real audit keys and a real audit Writer on
// an embedded JetStream server.
package audittest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/audit"
)

// Keys writes a fresh pseudonym key and checkpoint signing key into a
// temporary directory and returns their paths.
func Keys(t testing.TB) (pseudonymFile, signingFile string) {
	t.Helper()
	dir := t.TempDir()
	pseudonymFile = filepath.Join(dir, "pseudonym.key")
	signingFile = filepath.Join(dir, "audit-signing.key")
	if err := audit.GeneratePseudonymKey(pseudonymFile); err != nil {
		t.Fatalf("audit pseudonym key: %v", err)
	}
	if _, err := audit.GenerateSigningKey(signingFile); err != nil {
		t.Fatalf("audit signing key: %v", err)
	}
	return pseudonymFile, signingFile
}

// Writer returns a Writer for service on js (declaring the AUDIT stream),
// closed when the test ends, and its pseudonym key (for audit.Query).
func Writer(t testing.TB, js jetstream.JetStream, service string) (*audit.Writer, []byte) {
	t.Helper()
	pk, sk := Keys(t)
	w, err := audit.NewServiceWriter(t.Context(), js, service, pk, sk, 1)
	if err != nil {
		t.Fatalf("audit writer: %v", err)
	}
	t.Cleanup(func() { _ = w.Close(context.WithoutCancel(t.Context())) })
	key, err := audit.LoadPseudonymKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return w, key
}
