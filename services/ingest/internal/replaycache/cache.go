package replaycache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/store"
)

// Cache is the replay cache on Redis.
type Cache struct {
	c redis.Cmdable
}

// New returns a Cache on c.
func New(c redis.Cmdable) *Cache { return &Cache{c: c} }

// Key returns the Redis key of signature sig of source in tenant.
func Key(tenant, source string, sig []byte) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(sig)
	return store.Key(tenant, "ingest", "sig", hex.EncodeToString(h.Sum(nil)))
}

// Claim records sig of source for ttl. It reports false when the
// signature was claimed before (a replay); an error when Redis did not
// answer, which the caller must treat as "refuse" (fail closed).
func (c *Cache) Claim(ctx context.Context, tenant, source string, sig []byte, ttl time.Duration) (bool, error) {
	ok, err := c.c.SetNX(ctx, Key(tenant, source, sig), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("replay cache: %w", err)
	}
	return ok, nil
}

// Release forgets sig of source: the request it signed was not accepted
// (a 5xx answer), so the sender's retry of the same request is no replay.
func (c *Cache) Release(ctx context.Context, tenant, source string, sig []byte) error {
	if err := c.c.Del(ctx, Key(tenant, source, sig)).Err(); err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	return nil
}
