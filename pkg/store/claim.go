package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimScript sets KEYS[1] to ARGV[1] with a TTL of ARGV[2] ms unless it
// exists, and returns the value it holds afterwards.
var claimScript = redis.NewScript(`
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  return ARGV[1]
end
return redis.call("GET", KEYS[1])
`)

// Claim stores value at key for ttl unless key exists, atomically, and
// returns the value key holds afterwards and whether this call stored it:
// the building block of idempotency keys (the first caller's message id
// wins, later callers learn it).
func Claim(ctx context.Context, c redis.Cmdable, key, value string, ttl time.Duration) (stored string, claimed bool, err error) {
	got, err := claimScript.Run(ctx, c, []string{key}, value, ttl.Milliseconds()).Text()
	if err != nil {
		return "", false, fmt.Errorf("claim key: %w", err)
	}
	return got, got == value, nil
}

// deleteIfScript deletes KEYS[1] if it still holds ARGV[1].
var deleteIfScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`)

// DeleteIf deletes key if it still holds value (a claim or a lock of
// this caller's, not one taken since it expired).
func DeleteIf(ctx context.Context, c redis.Cmdable, key, value string) error {
	if err := deleteIfScript.Run(ctx, c, []string{key}, value).Err(); err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	return nil
}

// Lock takes a lock at key for ttl; ok is false when another holds it.
// unlock releases it if it is still this caller's (it expires by itself
// otherwise) and bounds its own call to five seconds.
func Lock(ctx context.Context, c redis.Cmdable, key string, ttl time.Duration) (unlock func(context.Context), ok bool, err error) {
	token := rand.Text()
	ok, err = c.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("lock: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	unlock = func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = DeleteIf(ctx, c, key, token)
	}
	return unlock, true, nil
}
