package envelope

import (
	"context"
	"errors"
	"fmt"
)

// Errors. Callers test them with errors.Is; the messages around them carry
// at most a data key id (tenant and date) or a KEK id, never PHI or key
// material.
var (
	// ErrNotSealed means a value is not a sealed value at all (no "CN"
	// magic). It is never a reason to use the bytes as plaintext.
	ErrNotSealed = errors.New("not a sealed value")
	// ErrTampered means a sealed value or a wrapped data key failed
	// authentication: it was altered, truncated, or opened with another
	// binding (record, kind or tenant) than it was sealed with. The error
	// deliberately does not say which.
	ErrTampered = errors.New("sealed value failed authentication")
	// ErrUnknownKey means the data key named in a sealed value, or the KEK
	// that wraps it, cannot be found.
	ErrUnknownKey = errors.New("unknown key")

	// ErrKeyNotFound is returned by KeyStore.Get for a data key id that is
	// not stored.
	ErrKeyNotFound = errors.New("data key not found")
	// ErrKeyExists is returned by KeyStore.Create when the id is already
	// stored: the first writer wins.
	ErrKeyExists = errors.New("data key exists")
	// ErrRevisionConflict is returned by KeyStore.Update when the stored
	// revision is not the one given: someone else updated the key first.
	ErrRevisionConflict = errors.New("data key revision conflict")
)

// A WrappedKey is a data key encrypted under a key-encryption key.
type WrappedKey struct {
	// KEK is the id of the key-encryption key that wraps this data key.
	KEK string
	// Ciphertext is the data key sealed with AES-256-GCM under KEK: a
	// 12-byte nonce, the encrypted key and the 16-byte tag.
	Ciphertext []byte
	// Revision is the store's revision of this entry, for Update. Create
	// and Update ignore it.
	Revision uint64
}

// A KeyStore stores wrapped data keys by id ("<tenant>.<YYYYMMDD>"). It
// never sees a data key in clear. Implementations must be safe for
// concurrent use, also by several processes: [NewKVStore] is the one used in
// production.
type KeyStore interface {
	// Get returns the wrapped key id, or an error wrapping ErrKeyNotFound.
	Get(ctx context.Context, id string) (WrappedKey, error)
	// Create stores w as id if id is not stored yet; otherwise it fails
	// with an error wrapping ErrKeyExists (the first writer wins).
	Create(ctx context.Context, id string, w WrappedKey) error
	// Update replaces id with w if its stored revision is revision;
	// otherwise it fails with an error wrapping ErrRevisionConflict.
	Update(ctx context.Context, id string, w WrappedKey, revision uint64) error
	// List returns the ids of every stored key.
	List(ctx context.Context) ([]string, error)
}

// KEKUsage counts the data keys in ks by the id of the KEK that wraps them.
// A KEK that wraps no data key any more can be retired.
func KEKUsage(ctx context.Context, ks KeyStore) (map[string]int, error) {
	ids, err := ks.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list data keys: %w", err)
	}
	usage := map[string]int{}
	for _, id := range ids {
		w, err := ks.Get(ctx, id)
		if errors.Is(err, ErrKeyNotFound) {
			continue // deleted since List
		}
		if err != nil {
			return nil, fmt.Errorf("get data key %s: %w", id, err)
		}
		usage[w.KEK]++
	}
	return usage, nil
}
