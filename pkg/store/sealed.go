package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/envelope"
)

// ErrNotFound is returned when a key does not exist (or has expired).
var ErrNotFound = errors.New("not found")

// SealedKind is the Binding.Kind of values sealed by SetSealed.
const SealedKind = "redis"

// SetSealed seals value (PHI) for tenant and stores it at key with ttl (0:
// no expiry). The ciphertext is bound to tenant and key: copied to another
// key it no longer opens.
//
// c is a *redis.Client or, on Redis Cluster, a *redis.ClusterClient.
func SetSealed(ctx context.Context, c redis.Cmdable, s *envelope.Sealer, tenant, key string, value []byte, ttl time.Duration) error {
	sealed, err := Seal(ctx, s, tenant, key, value)
	if err != nil {
		return fmt.Errorf("set sealed value: %w", err)
	}
	if err := c.Set(ctx, key, sealed, ttl).Err(); err != nil {
		return fmt.Errorf("set sealed value: %w", err)
	}
	return nil
}

// GetSealed reads and opens the value SetSealed stored at key for tenant.
// A missing key is ErrNotFound; an altered value, or one moved from another
// key or tenant, fails with envelope.ErrTampered.
func GetSealed(ctx context.Context, c redis.Cmdable, s *envelope.Sealer, tenant, key string) ([]byte, error) {
	sealed, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get sealed value: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get sealed value: %w", err)
	}
	value, err := s.Open(ctx, sealed, sealedBinding(tenant, key))
	if err != nil {
		return nil, fmt.Errorf("get sealed value: %w", err)
	}
	return value, nil
}

// Seal seals value (PHI) for tenant and key as SetSealed does, for callers
// that write it themselves (in a MULTI or a script). The result opens
// with Open, or GetSealed once stored at key.
func Seal(ctx context.Context, s *envelope.Sealer, tenant, key string, value []byte) ([]byte, error) {
	sealed, err := s.Seal(ctx, value, sealedBinding(tenant, key))
	if err != nil {
		return nil, fmt.Errorf("seal value: %w", err)
	}
	return sealed, nil
}

// Open opens a value that Seal or SetSealed sealed for tenant and key,
// read by the caller. An altered value, or one moved from another key or
// tenant, fails with envelope.ErrTampered.
func Open(ctx context.Context, s *envelope.Sealer, tenant, key string, sealed []byte) ([]byte, error) {
	value, err := s.Open(ctx, sealed, sealedBinding(tenant, key))
	if err != nil {
		return nil, fmt.Errorf("open sealed value: %w", err)
	}
	return value, nil
}

func sealedBinding(tenant, key string) envelope.Binding {
	return envelope.Binding{Tenant: tenant, Kind: SealedKind, ID: key}
}
