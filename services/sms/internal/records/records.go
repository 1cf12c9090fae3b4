// Package records is the sms service's app.Store on Redis: idempotency
// keys, delivery records and per-message locks,
// none of them holding PHI (no number, no body).
package records

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/sms/internal/app"
)

// Hash fields of a delivery record.
const (
	fStatus       = "status"
	fAttempts     = "attempts"
	fReason       = "reason"
	fProviderCode = "provider_code"
	fUpdatedAt    = "updated_at"
	fExpiresAt    = "expires_at"
	fIdemHash     = "idempotency_key_sha256"
	fIdemKey      = "idempotency_key"
	fCommitted    = "committed"
	fProviderID   = "provider_id"
	fSegments     = "segments"
)

// Store is app.Store on Redis.
type Store struct {
	c *redis.Client
}

var _ app.Store = (*Store)(nil)

// New returns a Store using c.
func New(c *redis.Client) *Store { return &Store{c: c} }

// IdempotencyKey is the Redis key of an idempotency key's hash.
func IdempotencyKey(tenant, keyHash string) string {
	return store.Key(tenant, "sms", "idem", keyHash)
}

// RecordKey is the Redis key of a message's delivery record.
func RecordKey(tenant, id string) string { return store.Key(tenant, "sms", "msg", id) }

func lockKey(tenant, id string) string { return store.Key(tenant, "sms", "lock", id) }

// ClaimIdempotencyKey implements app.Store.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, tenant, keyHash, id string, ttl time.Duration) (string, bool, error) {
	return store.Claim(ctx, s.c, IdempotencyKey(tenant, keyHash), id, ttl)
}

// CreateRecord implements app.Store.
func (s *Store) CreateRecord(ctx context.Context, r app.Record, ttl time.Duration) error {
	k := RecordKey(r.Tenant, r.ID)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fields(r))
		p.PExpire(ctx, k, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("create record: %w", err)
	}
	return nil
}

// Commit implements app.Store.
func (s *Store) Commit(ctx context.Context, tenant, id, keyHash string, ttl time.Duration) error {
	k := RecordKey(tenant, id)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fCommitted, "1")
		p.PExpire(ctx, k, ttl)
		p.PExpire(ctx, IdempotencyKey(tenant, keyHash), ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit record: %w", err)
	}
	return nil
}

// Forget implements app.Store.
func (s *Store) Forget(ctx context.Context, tenant, id, keyHash string) error {
	if err := store.DeleteIf(ctx, s.c, IdempotencyKey(tenant, keyHash), id); err != nil {
		return fmt.Errorf("forget message: %w", err)
	}
	if err := s.c.Del(ctx, RecordKey(tenant, id)).Err(); err != nil {
		return fmt.Errorf("forget message: %w", err)
	}
	return nil
}

// Record implements app.Store.
func (s *Store) Record(ctx context.Context, tenant, id string) (app.Record, error) {
	h, err := s.c.HGetAll(ctx, RecordKey(tenant, id)).Result()
	if err != nil {
		return app.Record{}, fmt.Errorf("read record: %w", err)
	}
	if len(h) == 0 || h[fStatus] == "" {
		return app.Record{}, app.ErrNotFound
	}
	r := app.Record{
		ID: id, Tenant: tenant, Status: app.Status(h[fStatus]), Reason: h[fReason],
		IdempotencyKeyHash: h[fIdemHash], IdempotencyKey: h[fIdemKey], Committed: h[fCommitted] == "1",
		ProviderID: h[fProviderID],
	}
	r.Attempts, _ = strconv.Atoi(h[fAttempts])
	r.ProviderCode, _ = strconv.Atoi(h[fProviderCode])
	r.Segments, _ = strconv.Atoi(h[fSegments])
	r.UpdatedAt, _ = time.Parse(time.RFC3339Nano, h[fUpdatedAt])
	r.ExpiresAt, _ = time.Parse(time.RFC3339Nano, h[fExpiresAt])
	return r, nil
}

// UpdateRecord implements app.Store. It also marks the record committed
// (a worker holds the message, so it is in the outbox) and extends the
// idempotency key with it, in case Send could not.
func (s *Store) UpdateRecord(ctx context.Context, r app.Record, ttl time.Duration) error {
	k := RecordKey(r.Tenant, r.ID)
	r.Committed = true
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fields(r))
		p.PExpire(ctx, k, ttl)
		if r.IdempotencyKeyHash != "" {
			p.PExpire(ctx, IdempotencyKey(r.Tenant, r.IdempotencyKeyHash), ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update record: %w", err)
	}
	return nil
}

// Lock implements app.Store.
func (s *Store) Lock(ctx context.Context, tenant, id string, ttl time.Duration) (func(context.Context), bool, error) {
	return store.Lock(ctx, s.c, lockKey(tenant, id), ttl)
}

// fields returns the hash fields of r.
func fields(r app.Record) map[string]any {
	committed := "0"
	if r.Committed {
		committed = "1"
	}
	return map[string]any{
		fStatus:       string(r.Status),
		fAttempts:     r.Attempts,
		fReason:       r.Reason,
		fProviderCode: r.ProviderCode,
		fUpdatedAt:    r.UpdatedAt.UTC().Format(time.RFC3339Nano),
		fExpiresAt:    r.ExpiresAt.UTC().Format(time.RFC3339Nano),
		fIdemHash:     r.IdempotencyKeyHash,
		fIdemKey:      r.IdempotencyKey,
		fCommitted:    committed,
		fProviderID:   r.ProviderID,
		fSegments:     r.Segments,
	}
}
