package envelope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// DataKeysBucket is the JetStream key-value bucket that holds the wrapped
// data keys, one entry per tenant-day keyed by the data key id.
const DataKeysBucket = "CN_DATA_KEYS"

// kvValue is the JSON value of a CN_DATA_KEYS entry. Ciphertext is base64
// (encoding/json's encoding of []byte).
type kvValue struct {
	KEK        string `json:"kek"`
	Ciphertext []byte `json:"ciphertext"`
}

type kvStore struct{ kv jetstream.KeyValue }

var _ KeyStore = (*kvStore)(nil)

// DataKeysConfig is the configuration of the CN_DATA_KEYS bucket: file
// storage, replicas copies (at least 1), and one revision per key, so that a
// re-wrap leaves no copy wrapped by the old KEK in the bucket.
func DataKeysConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       DataKeysBucket,
		Description:  "carenotify data keys, wrapped by key-encryption keys (never in clear).",
		MaxValueSize: 1 << 10,
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
	}
}

// NewKVStore creates or updates the CN_DATA_KEYS bucket (see
// [DataKeysConfig]) and returns a KeyStore on it. Services call it at start,
// all with the same replicas.
func NewKVStore(ctx context.Context, js jetstream.JetStream, replicas int) (KeyStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, DataKeysConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("declare bucket %s: %w", DataKeysBucket, err)
	}
	return &kvStore{kv: kv}, nil
}

// OpenKVStore returns a KeyStore on the existing CN_DATA_KEYS bucket without
// changing its configuration, for tools. If the bucket does not exist the
// error wraps jetstream.ErrBucketNotFound.
func OpenKVStore(ctx context.Context, js jetstream.JetStream) (KeyStore, error) {
	kv, err := js.KeyValue(ctx, DataKeysBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", DataKeysBucket, err)
	}
	return &kvStore{kv: kv}, nil
}

func (s *kvStore) Get(ctx context.Context, id string) (WrappedKey, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return WrappedKey{}, fmt.Errorf("get %s: %w", id, ErrKeyNotFound)
	}
	if err != nil {
		return WrappedKey{}, fmt.Errorf("get %s: %w", id, err)
	}
	var v kvValue
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.KEK == "" {
		return WrappedKey{}, fmt.Errorf("get %s: malformed entry", id)
	}
	return WrappedKey{KEK: v.KEK, Ciphertext: v.Ciphertext, Revision: e.Revision()}, nil
}

func (s *kvStore) Create(ctx context.Context, id string, w WrappedKey) error {
	b, err := json.Marshal(kvValue{KEK: w.KEK, Ciphertext: w.Ciphertext})
	if err != nil {
		return fmt.Errorf("create %s: %w", id, err)
	}
	if _, err := s.kv.Create(ctx, id, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("create %s: %w", id, ErrKeyExists)
		}
		return fmt.Errorf("create %s: %w", id, err)
	}
	return nil
}

func (s *kvStore) Update(ctx context.Context, id string, w WrappedKey, revision uint64) error {
	b, err := json.Marshal(kvValue{KEK: w.KEK, Ciphertext: w.Ciphertext})
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	if _, err := s.kv.Update(ctx, id, b, revision); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("update %s: %w", id, ErrRevisionConflict)
		}
		return fmt.Errorf("update %s: %w", id, err)
	}
	return nil
}

func (s *kvStore) List(ctx context.Context) ([]string, error) {
	ids, err := s.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return ids, nil
}
