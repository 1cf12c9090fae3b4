package envelopetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/carenotify/carenotify/pkg/envelope"
)

// MemStore is an in-memory envelope.KeyStore with the same semantics as the
// JetStream one: Create fails with ErrKeyExists when the id is stored,
// Update is a compare-and-set on Revision. The zero value is ready to use.
type MemStore struct {
	mu   sync.Mutex
	rev  uint64
	keys map[string]envelope.WrappedKey
}

var _ envelope.KeyStore = (*MemStore)(nil)

// Get returns the wrapped key id.
func (m *MemStore) Get(_ context.Context, id string) (envelope.WrappedKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.keys[id]
	if !ok {
		return envelope.WrappedKey{}, fmt.Errorf("get %s: %w", id, envelope.ErrKeyNotFound)
	}
	w.Ciphertext = slices.Clone(w.Ciphertext)
	return w, nil
}

// Create stores w as id unless id is stored.
func (m *MemStore) Create(_ context.Context, id string, w envelope.WrappedKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[id]; ok {
		return fmt.Errorf("create %s: %w", id, envelope.ErrKeyExists)
	}
	m.put(id, w)
	return nil
}

// Update replaces id with w if its revision is revision.
func (m *MemStore) Update(_ context.Context, id string, w envelope.WrappedKey, revision uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.keys[id]; !ok || old.Revision != revision {
		return fmt.Errorf("update %s: %w", id, envelope.ErrRevisionConflict)
	}
	m.put(id, w)
	return nil
}

// List returns the stored ids, sorted.
func (m *MemStore) List(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.keys))
	for id := range m.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func (m *MemStore) put(id string, w envelope.WrappedKey) {
	if m.keys == nil {
		m.keys = map[string]envelope.WrappedKey{}
	}
	m.rev++
	w.Revision = m.rev
	w.Ciphertext = slices.Clone(w.Ciphertext)
	m.keys[id] = w
}

// Keyring writes a fresh random primary KEK to a temporary directory and
// returns the directory and the loaded keyring.
func Keyring(t testing.TB) (dir string, kr *envelope.Keyring) {
	t.Helper()
	dir = t.TempDir()
	kid, err := envelope.GenerateKEK(dir)
	if err != nil {
		t.Fatalf("generate kek: %v", err)
	}
	if err := envelope.SetPrimary(dir, kid); err != nil {
		t.Fatalf("set primary: %v", err)
	}
	kr, err = envelope.LoadKeyring(dir)
	if err != nil {
		t.Fatalf("load keyring: %v", err)
	}
	return dir, kr
}

// Sealer returns a Sealer on a fresh random keyring and an empty MemStore.
func Sealer(t testing.TB, opts ...envelope.Option) *envelope.Sealer {
	t.Helper()
	_, kr := Keyring(t)
	return envelope.NewSealer(kr, &MemStore{}, opts...)
}
