package limits

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// ConcurrencyWait is how long a delivery waits for a concurrency slot
// before asking again (plus up to as much again at random, so that
// waiting workers do not ask in step).
const ConcurrencyWait = 500 * time.Millisecond

// Limiter is app.Limiter on Redis.
type Limiter struct {
	c    *redis.Client
	rate *redis_rate.Limiter
}

var _ app.Limiter = (*Limiter)(nil)

// New returns a Limiter on c.
func New(c *redis.Client) *Limiter { return &Limiter{c: c, rate: redis_rate.NewLimiter(c)} }

// ConcurrencyKey is the sorted set of tenant's deliveries under way to
// destination.
func ConcurrencyKey(tenant, destination string) string {
	return store.Key(tenant, "email", "conc", destination)
}

// RateKey is the GCRA state of tenant × destination (redis_rate prefixes
// it with "rate:").
func RateKey(tenant, destination string) string {
	return store.Key(tenant, "email", "rate", destination)
}

// WarmupKey is identity's counter for the UTC day of t.
func WarmupKey(identity string, t time.Time) string {
	return "cn:email:warmup:{" + identity + "}:" + t.UTC().Format(time.DateOnly)
}

// acquireScript takes a slot of KEYS[1] for member ARGV[3], leased ARGV[2]
// ms, unless ARGV[1] slots are taken; expired leases are dropped first.
// Returns 1 when taken.
var acquireScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1
`)

// Acquire implements app.Limiter: the concurrency slot first, then the
// rate token (a slot taken for a message the rate refuses is given back).
func (l *Limiter) Acquire(ctx context.Context, tenant, destination string, lim app.Limit, lease time.Duration) (app.Permit, error) {
	var p app.Permit
	if lim.Concurrency > 0 {
		key, member := ConcurrencyKey(tenant, destination), rand.Text()
		ok, err := acquireScript.Run(ctx, l.c, []string{key}, lim.Concurrency, lease.Milliseconds(), member).Bool()
		if err != nil {
			return app.Permit{}, fmt.Errorf("concurrency limit: %w", err)
		}
		if !ok {
			return app.Permit{Wait: ConcurrencyWait + mrand.N(ConcurrencyWait), Reason: app.ThrottleConcurrency}, nil
		}
		p.Release = func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			// On failure the lease ends by itself.
			_ = l.c.ZRem(ctx, key, member).Err()
		}
	}
	if lim.Rate > 0 {
		res, err := l.rate.Allow(ctx, RateKey(tenant, destination), redis_rate.Limit{
			Rate: lim.Rate, Burst: lim.BurstOrRate(), Period: lim.Period(),
		})
		if err == nil && res.Allowed > 0 {
			return p, nil
		}
		if p.Release != nil {
			p.Release(context.WithoutCancel(ctx))
		}
		if err != nil {
			return app.Permit{}, fmt.Errorf("rate limit: %w", err)
		}
		return app.Permit{Wait: max(res.RetryAfter, time.Millisecond), Reason: app.ThrottleRate}, nil
	}
	return p, nil
}

// warmupScript raises KEYS[1] unless it has reached ARGV[1]; the counter
// lives two days. Returns 1 when raised.
var warmupScript = redis.NewScript(`
local n = tonumber(redis.call("GET", KEYS[1]) or "0")
if n >= tonumber(ARGV[1]) then
  return 0
end
redis.call("INCR", KEYS[1])
redis.call("EXPIRE", KEYS[1], 172800)
return 1
`)

// CountWarmup implements app.Limiter.
func (l *Limiter) CountWarmup(ctx context.Context, identity string, now time.Time, limit int) (bool, error) {
	ok, err := warmupScript.Run(ctx, l.c, []string{WarmupKey(identity, now)}, limit).Bool()
	if err != nil {
		return false, fmt.Errorf("warm-up count: %w", err)
	}
	return ok, nil
}
