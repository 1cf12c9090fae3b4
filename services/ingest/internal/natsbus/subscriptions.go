package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// SubscriptionsBucket is the KV bucket of subscription states. Its keys
// are <source>.<subscription id> and its values JSON app.SubscriptionState:
// numbers, times and ids of Subscription resources, no PHI.
const SubscriptionsBucket = "INGEST_SUBSCRIPTIONS"

// SubscriptionStore implements app.SubscriptionStore on JetStream KV.
type SubscriptionStore struct{ kv jetstream.KeyValue }

var _ app.SubscriptionStore = (*SubscriptionStore)(nil)

// NewSubscriptionStore creates or updates the bucket.
func NewSubscriptionStore(ctx context.Context, js jetstream.JetStream, replicas int) (*SubscriptionStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: SubscriptionsBucket, Description: "ingest: FHIR subscription event numbers and heartbeats (no PHI)",
		History: 1, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create kv %s: %w", SubscriptionsBucket, err)
	}
	return &SubscriptionStore{kv: kv}, nil
}

// Load returns every stored state.
func (s *SubscriptionStore) Load(ctx context.Context) ([]app.SubscriptionState, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list subscription keys: %w", err)
	}
	var out []app.SubscriptionState
	for k := range keys.Keys() {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get subscription state: %w", err)
		}
		var st app.SubscriptionState
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			return nil, fmt.Errorf("decode subscription state: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// Save stores st.
func (s *SubscriptionStore) Save(ctx context.Context, st app.SubscriptionState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, st.Source+"."+st.Subscription, b); err != nil {
		return fmt.Errorf("put subscription state: %w", err)
	}
	return nil
}
